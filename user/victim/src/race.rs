//! Case [`CASE`] (`arg2 = region base | CASE`, `arg1` = a one-page mailbox VMO): the touching
//! side of utest's `concurrency::*_against_faulting_child` tests. The parent (utest) owns a
//! region of this process's address space (it placed it through our root VMAR before we
//! started) and races map / unmap / protect / op_range / destroy on it while our two threads
//! read its pages; a read that meets an unmapped page kills us (`ZX_TASK_RETCODE_EXCEPTION_KILL`),
//! which the parent counts as one of the legal outcomes.
//!
//! Mailbox (u64 words, shared through the VMO, both sides map it read-write):
//! `[CMD]` written by the parent, `[STATE]` by us, `[TOUCHES]` successful reads so far,
//! `[ARG]` an address, `[MASK]` a page mask, `[VALUES + i]` the first u64 of page `i`.
//! Commands: [`cmd::RUN`] (touch in a loop, the initial state), then [`cmd::STOP`] (both threads
//! stop; STATE = `STOP | DONE`), [`cmd::READ`] (read the first u64 of every page in MASK into
//! VALUES; STATE = `READ | DONE`), [`cmd::PROBE`] (probe every page in MASK for reads and
//! writes from a helper thread under an exception channel, statuses into VALUES),
//! [`cmd::READ_FAULT`] / [`cmd::WRITE_FAULT`] (read / write
//! ARG, which must kill us; if it does not, STATE = [`SURVIVED_STATE`] and we exit with 77),
//! [`cmd::EXIT`] (exit 0). Kept in sync with `user/utest/src/tests/concurrency.rs`.

use core::sync::atomic::{AtomicU64, Ordering::SeqCst};

use abi::signals::ZX_THREAD_TERMINATED;
use abi::vm_options::{ZX_VM_PERM_READ, ZX_VM_PERM_WRITE};
use zx::rt::Startup;
use zx::{Handle, Process, Thread, Vmo};

/// The case number (low 12 bits of arg2; the rest is the page-aligned region base).
pub const CASE: u64 = 40;
/// Pages in the parent's region.
pub const PAGES: usize = 32;
/// Mailbox word indices.
pub const CMD: usize = 0;
/// Our state word.
pub const STATE: usize = 1;
/// Successful touches.
pub const TOUCHES: usize = 2;
/// Address argument.
pub const ARG: usize = 3;
/// Page mask argument.
pub const MASK: usize = 4;
/// First value slot.
pub const VALUES: usize = 8;
/// Added to a command in STATE once it is done.
pub const DONE: u64 = 0x100;
/// STATE when a deliberate fault did not kill us.
pub const SURVIVED_STATE: u64 = 0x777;

/// Commands.
pub mod cmd {
    /// Touch pages in a loop.
    pub const RUN: u64 = 0;
    /// Stop touching.
    pub const STOP: u64 = 1;
    /// Read the pages in MASK.
    pub const READ: u64 = 2;
    /// Read ARG (must fault).
    pub const READ_FAULT: u64 = 3;
    /// Write ARG (must fault).
    pub const WRITE_FAULT: u64 = 4;
    /// Exit with 0.
    pub const EXIT: u64 = 5;
    /// Probe every page in MASK (`probe_for_read` and `probe_for_write`): VALUES[i] = read
    /// status | write status << 32 (raw `zx_status_t`s, 0 for OK).
    pub const PROBE: u64 = 6;
}

const PAGE: usize = 4096;

/// What the touching threads share: the mailbox and the region.
struct Shared {
    mailbox: usize,
    base: usize,
    process: u32,
}

impl Shared {
    fn word(&self, i: usize) -> &AtomicU64 {
        // SAFETY: the mailbox is a page-aligned read-write mapping of 512 u64 that stays mapped
        // for the life of the process; every access to it (here and in the parent) is atomic.
        unsafe { &*((self.mailbox + 8 * i) as *const AtomicU64) }
    }

    /// Touches pages until the parent says stop. A page is read only when
    /// `zx_process_read_memory` on ourselves just found it mapped: the parent may unmap it between
    /// the two (that window is the race; losing it kills us).
    fn touch_loop(&self, mut rng: u64) {
        let process = core::mem::ManuallyDrop::new(Process::from(Handle::from_raw(self.process)));
        let mut b = [0u8; 8];
        while self.word(CMD).load(SeqCst) == cmd::RUN {
            rng = mix(rng);
            let addr = self.base + PAGE * (rng as usize % PAGES) + 8 * ((rng >> 40) as usize % 8);
            if process.read_memory(addr, &mut b).is_ok() {
                // SAFETY: the page was mapped a moment ago; if it no longer is, the fault kills
                // this process, which is the outcome the parent checks for. No Rust reference
                // covers the region.
                let _ = unsafe { (addr as *const u64).read_volatile() };
                self.word(TOUCHES).fetch_add(1, SeqCst);
            }
        }
    }
}

fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

extern "C" fn second_toucher(shared: usize, seed: usize) -> ! {
    // SAFETY: `shared` points at the main thread's `Shared`, which lives until this thread has
    // terminated (the main thread waits for it).
    let s = unsafe { &*(shared as *const Shared) };
    s.touch_loop(seed as u64);
    Thread::exit()
}

/// Sleeps on our own thread's TERMINATED signal (which cannot assert while we wait).
fn sleep_ms(thread: &Handle, ms: i64) {
    let _ = thread.wait_one(
        ZX_THREAD_TERMINATED,
        zx::clock_get_monotonic() + ms * 1_000_000,
    );
}

/// Runs the case. Returns the exit code (0 after EXIT; anything else is a setup failure).
pub fn run(startup: &Startup) -> i64 {
    let base = (startup.arg2 & !0xfff) as usize;
    let root = &startup.root_vmar;
    // A view of arg1 that does not close it (the runtime owns `startup`).
    let mailbox_vmo = core::mem::ManuallyDrop::new(Vmo::from(Handle::from_raw(startup.arg1.raw())));
    let rw = ZX_VM_PERM_READ | ZX_VM_PERM_WRITE;
    let Ok(mailbox) = root.map(rw, 0, &mailbox_vmo, 0, PAGE) else {
        return 3;
    };
    let s = Shared {
        mailbox,
        base,
        process: startup.process.handle().raw(),
    };
    // The second toucher: its own stack, started on `second_toucher`.
    let Ok(stack) = Vmo::create(16 * PAGE as u64, 0) else {
        return 4;
    };
    let Ok(bottom) = root.map(rw, 0, &stack, 0, 16 * PAGE) else {
        return 4;
    };
    let Ok(t) = Thread::create(&startup.process, b"toucher", 0) else {
        return 5;
    };
    let entry = second_toucher as extern "C" fn(usize, usize) -> ! as usize;
    // SAFETY: the thread reads only `s` (alive until it ended, see below) and the mailbox, on a
    // stack nothing else uses.
    if unsafe {
        t.start(
            entry,
            bottom + 16 * PAGE - 8,
            &s as *const Shared as usize,
            base ^ 0x5a5a,
        )
    }
    .is_err()
    {
        return 6;
    }
    s.word(STATE).store(cmd::RUN, SeqCst);
    s.touch_loop(mix(base as u64));
    // Stopped: wait for the other toucher before saying so (its stack and `s` must outlive it).
    let _ = t.handle().wait_one(
        ZX_THREAD_TERMINATED,
        zx::clock_get_monotonic() + 30_000_000_000,
    );
    s.word(STATE).store(cmd::STOP | DONE, SeqCst);
    let me = startup.thread.handle();
    let mut last = cmd::STOP;
    loop {
        let c = s.word(CMD).load(SeqCst);
        if c == last {
            sleep_ms(me, 1);
            continue;
        }
        last = c;
        match c {
            cmd::READ => {
                let mask = s.word(MASK).load(SeqCst);
                for i in 0..PAGES {
                    if mask & (1 << i) != 0 {
                        // SAFETY: the parent says page `i` is mapped readable; if it is not, the
                        // fault kills us and the parent reports it.
                        let v = unsafe { ((base + i * PAGE) as *const u64).read_volatile() };
                        s.word(VALUES + i).store(v, SeqCst);
                    }
                }
                s.word(STATE).store(cmd::READ | DONE, SeqCst);
            }
            cmd::PROBE => {
                let mask = s.word(MASK).load(SeqCst);
                let raw = |r: Result<(), zx::Status>| match r {
                    Ok(()) => 0u64,
                    Err(e) => e.into_raw() as u32 as u64,
                };
                for i in 0..PAGES {
                    if mask & (1 << i) != 0 {
                        let addr = base + i * PAGE;
                        let r = raw(zx::probe::probe_for_read(addr));
                        let w = raw(zx::probe::probe_for_write(addr));
                        s.word(VALUES + i).store(r | w << 32, SeqCst);
                    }
                }
                s.word(STATE).store(cmd::PROBE | DONE, SeqCst);
            }
            cmd::READ_FAULT | cmd::WRITE_FAULT => {
                let addr = s.word(ARG).load(SeqCst) as usize;
                if c == cmd::READ_FAULT {
                    // SAFETY: deliberately faults: the parent says `addr` is not mapped.
                    let _ = unsafe { (addr as *const u64).read_volatile() };
                } else {
                    // SAFETY: deliberately faults: the parent says `addr` is read-only.
                    unsafe { (addr as *mut u64).write_volatile(0) };
                }
                s.word(STATE).store(SURVIVED_STATE, SeqCst);
                return crate::SURVIVED;
            }
            cmd::EXIT => return 0,
            _ => sleep_ms(me, 1),
        }
    }
}
