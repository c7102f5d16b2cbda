//! The child side of the fuzzer: a seeded generator of typed-but-random system calls.
//!
//! Safety model: the calls may destroy only what this module owns and no Rust code uses. Every
//! VMAR handle in the pool is a region inside the *playground* (a sub-VMAR of the root that holds
//! nothing else) or the root of a process this child created; its own root VMAR, process and
//! thread are used only by calls that cannot hurt it (information, waits with bounded deadlines,
//! non-overwriting maps, reads) — except for deliberate, rare self-kills and exits, which the
//! parent counts. Pointers the kernel may write through point into the *scratch* region (a VMAR
//! holding one read-write and one read-only mapping and otherwise unmapped), so an over-long copy
//! faults instead of overwriting live data.

use alloc::vec::Vec;

use abi::kstats;
use abi::rights::*;
use abi::syscall_numbers::*;
use abi::vm_options::*;
use zx::raw::syscall8;
use zx::rt::Startup;
use zx::{Handle, Vmo};

/// splitmix64 finalizer: a good 64-bit mix of `x`.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

const PAGE: u64 = 4096;
const PLAYGROUND_SIZE: u64 = 64 << 20;
const SCRATCH_SIZE: u64 = 4 * PAGE;
/// Scratch VMAR: `[0, SCRATCH_SIZE)` read-write, one read-only page at `RO_AT`, the rest unmapped.
const SCRATCH_VMAR_SIZE: u64 = 16 * PAGE;
const RO_AT: u64 = 8 * PAGE;
/// Scratch offsets of the byte buffer and the handle list of channel and state calls (page 1
/// and page 2 of the read-write scratch; page 0 holds the out-parameter slots).
const BYTES_AT: u64 = PAGE;
const HANDLES_AT: u64 = 2 * PAGE;

/// Thread handles of this process's fuzzing threads and racer (never given exception channels
/// or new register state).
struct OwnThreads([core::sync::atomic::AtomicU32; 8]);

impl OwnThreads {
    fn insert(&self, h: u32) {
        for slot in &self.0 {
            if slot
                .compare_exchange(
                    0,
                    h,
                    core::sync::atomic::Ordering::SeqCst,
                    core::sync::atomic::Ordering::SeqCst,
                )
                .is_ok()
            {
                return;
            }
        }
    }

    fn contains(&self, h: u32) -> bool {
        h != 0
            && self
                .0
                .iter()
                .any(|s| s.load(core::sync::atomic::Ordering::SeqCst) == h)
    }
}

static OWN_THREADS: OwnThreads = OwnThreads([const { core::sync::atomic::AtomicU32::new(0) }; 8]);

/// Most handles kept in the pool; beyond, a random one is closed.
const MAX_POOL: usize = 64;
/// Most processes created (not counting those already killed).
const MAX_PROCESSES: usize = 6;

struct Fuzz {
    rng: u64,
    pool: Vec<u32>,
    /// VMARs known by type: (handle, base, size); may be stale.
    vmars: Vec<(u32, u64, u64)>,
    /// VMOs known by type (may be stale).
    vmos: Vec<u32>,
    /// Threads of created processes (may be stale).
    threads: Vec<u32>,
    /// Channel endpoints (may be stale or closed).
    channels: Vec<u32>,
    /// Exception handles read from exception channels (may be stale).
    exceptions: Vec<u32>,
    /// Mappings made: (vmar, address, length); may be gone.
    maps: Vec<(u32, u64, u64)>,
    closed: Vec<u32>,
    processes: Vec<u32>,
    playground: u64,
    /// The playground's own handle: never in the pool (so never closed), only in sane calls.
    pg_handle: u32,
    scratch: u64,
    own_process: u32,
    own_root: u32,
    own_thread: u32,
    counter: u32,
    /// Which u64 of the counter VMO this fuzzer reports in (one per fuzzing thread).
    slot: u64,
    calls: u64,
    /// Successful calls per syscall number (for `verbose`).
    ok: [u32; 64],
}

impl Fuzz {
    fn next(&mut self) -> u64 {
        self.rng = mix(self.rng);
        self.rng
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }

    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.below(from.len() as u64) as usize]
    }

    /// A handle for a call that may destroy the object.
    fn handle(&mut self) -> u64 {
        match self.below(20) {
            0 => 0,
            1 => self.next() as u32 as u64,
            2 => u32::MAX as u64,
            3 if !self.closed.is_empty() => {
                let c = self.closed.clone();
                self.pick(&c) as u64
            }
            _ if !self.pool.is_empty() => {
                let p = self.pool.clone();
                self.pick(&p) as u64
            }
            _ => self.next() as u32 as u64,
        }
    }

    /// A handle for a call that cannot hurt this process: also its own objects.
    fn safe_handle(&mut self) -> u64 {
        match self.below(8) {
            0 => self.own_process as u64,
            1 => self.own_root as u64,
            2 => self.own_thread as u64,
            _ => self.handle(),
        }
    }

    /// Sizes and lengths: around zero, pages, the playground and 2^64.
    fn len(&mut self) -> u64 {
        match self.below(16) {
            0 => 0,
            1 => self.below(PAGE * 2),
            2 => PAGE,
            3 => PAGE * (1 + self.below(16)),
            4 => PAGE * (1 + self.below(16)) + self.pick(&[1, PAGE - 1, PAGE / 2]),
            5 => u64::MAX - self.below(2) * (PAGE - 1),
            6 => (1 << 63) + self.below(2) * PAGE,
            7 => PLAYGROUND_SIZE - self.below(2) * PAGE,
            8 => PLAYGROUND_SIZE + PAGE,
            9 => 1 << self.below(64),
            10 => (1 << 47) - self.below(2) * PAGE,
            11 => self.next(),
            12 => u64::MAX - self.below(PAGE * 4),
            _ => PAGE * (1 + self.below(4)),
        }
    }

    /// Offsets into a VMO (small lengths dominate; boundaries too).
    fn offset(&mut self) -> u64 {
        match self.below(6) {
            0 | 1 => 0,
            2 => PAGE * self.below(32),
            3 => self.below(PAGE * 8),
            _ => self.len(),
        }
    }

    /// Addresses for unmap/protect/op_range and map offsets: mostly inside the playground.
    fn vaddr(&mut self) -> u64 {
        match self.below(12) {
            0 => 0,
            1 => self.next(),
            2 => 0xffff_8000_0000_0000 + PAGE * self.below(16),
            3 => 0x0000_8000_0000_0000 - PAGE * self.below(2),
            4 => self.playground - PAGE,
            5 => self.playground + PLAYGROUND_SIZE - PAGE * self.below(2),
            6 => self.playground + self.below(PLAYGROUND_SIZE),
            _ => self.playground + PAGE * self.below(PLAYGROUND_SIZE / PAGE / 64),
        }
    }

    /// VMAR-relative offsets (map, allocate).
    fn vmar_offset(&mut self) -> u64 {
        match self.below(6) {
            0 | 1 => 0,
            2 => PAGE * self.below(256),
            3 => self.len(),
            4 => self.playground.wrapping_add(PAGE * self.below(16)),
            _ => self.below(PLAYGROUND_SIZE) & !(PAGE - 1),
        }
    }

    /// Option words: known bits, single bits, alignments, unknown bits.
    fn options(&mut self, known: u32) -> u64 {
        let o = match self.below(8) {
            0 => 0,
            1 => 1 << self.below(32),
            2 => u32::MAX,
            3 => (self.below(34) as u32) << ZX_VM_ALIGN_BASE | (self.next() as u32 & known),
            4 => self.next() as u32,
            _ => self.next() as u32 & known,
        };
        if self.chance(64) {
            // Upper bits of the register: the kernel must use the low 32 only.
            return o as u64 | (self.next() << 32);
        }
        o as u64
    }

    fn rights(&mut self) -> u64 {
        match self.below(6) {
            0 => ZX_RIGHT_SAME_RIGHTS as u64,
            1 => 0,
            2 => self.next() as u32 as u64,
            3 => (ZX_RIGHT_SAME_RIGHTS | (self.next() as u32)) as u64,
            _ => (self.next() as u32 & 0x01ff_ffff) as u64,
        }
    }

    /// An out-buffer: one time in four a wild pointer and length, otherwise the scratch bytes
    /// with one of `sizes`.
    fn buffer_or_wild(&mut self, sizes: &[u64]) -> (u64, u64) {
        if self.chance(4) {
            (self.ptr(), self.len())
        } else {
            (self.scratch + BYTES_AT, self.pick(sizes))
        }
    }

    /// A pointer the kernel may read or write `len` bytes through.
    fn ptr(&mut self) -> u64 {
        match self.below(14) {
            0 => 0,
            1 => 1 + self.below(PAGE),
            2 => 0xffff_8000_0000_0000 + self.below(1 << 20),
            3 => 0xffff_ffff_8000_0000 + self.below(1 << 20),
            4 => 0x0000_8000_0000_0000 - self.below(16),
            5 => u64::MAX - self.below(16),
            6 => self.scratch + RO_AT + self.below(PAGE),
            7 => self.scratch + SCRATCH_SIZE - self.below(16),
            8 => self.scratch + SCRATCH_VMAR_SIZE - PAGE,
            9 => self.scratch + self.below(SCRATCH_SIZE),
            _ => self.out_slot(),
        }
    }

    /// A valid, aligned slot in scratch memory (for out-parameters).
    fn out_slot(&mut self) -> u64 {
        self.scratch + 8 * self.below(64)
    }

    /// An out-pointer: usually a valid slot, sometimes anything.
    fn out(&mut self) -> u64 {
        if self.chance(6) {
            self.ptr()
        } else {
            self.out_slot()
        }
    }

    fn read_slot(&self, at: u64) -> u64 {
        if at >= self.scratch && at + 8 <= self.scratch + SCRATCH_SIZE && at.is_multiple_of(8) {
            // SAFETY: `at` is an aligned u64 inside the read-write scratch mapping, which only
            // the kernel writes (never concurrently: this process has one thread).
            unsafe { (at as *const u64).read_volatile() }
        } else {
            0
        }
    }

    /// A channel handle (or sometimes anything).
    fn some_channel(&mut self) -> u64 {
        if self.channels.is_empty() || self.chance(6) {
            return self.handle();
        }
        let c = self.channels.clone();
        self.pick(&c) as u64
    }

    /// Whether `h` names this process, its root VMAR or one of its threads.
    fn is_own(&self, h: u64) -> bool {
        let h = h as u32;
        h == self.own_process
            || h == self.own_root
            || h == self.own_thread
            || OWN_THREADS.contains(h)
    }

    /// Writes a u32 into the scratch region (a handle list for the kernel to read).
    fn write_slot32(&self, at: u64, v: u32) {
        if at >= self.scratch && at + 4 <= self.scratch + SCRATCH_SIZE && at.is_multiple_of(4) {
            // SAFETY: `at` is an aligned u32 inside this fuzzer's read-write scratch mapping, which
            // only this thread and the kernel (during this thread's calls) touch.
            unsafe { (at as *mut u32).write_volatile(v) }
        }
    }

    /// Reads a u32 the kernel wrote into the scratch region.
    fn read_slot32(&self, at: u64) -> u32 {
        if at >= self.scratch && at + 4 <= self.scratch + SCRATCH_SIZE && at.is_multiple_of(4) {
            // SAFETY: as in `write_slot32`.
            unsafe { (at as *const u32).read_volatile() }
        } else {
            0
        }
    }

    fn add(&mut self, h: u32) {
        if h == 0 || self.pool.contains(&h) {
            return;
        }
        if self.pool.len() >= MAX_POOL {
            let i = self.below(self.pool.len() as u64) as usize;
            let old = self.pool.swap_remove(i);
            self.raw(ZX_SYS_HANDLE_CLOSE, [old as u64, 0, 0, 0, 0, 0, 0, 0]);
            self.forget(old);
        }
        self.pool.push(h);
    }

    fn forget(&mut self, h: u32) {
        self.pool.retain(|&x| x != h);
        self.vmars.retain(|&(x, _, _)| x != h);
        self.maps.retain(|&(x, _, _)| x != h);
        self.vmos.retain(|&x| x != h);
        self.threads.retain(|&x| x != h);
        self.channels.retain(|&x| x != h);
        self.exceptions.retain(|&x| x != h);
        if self.closed.len() >= 16 {
            self.closed.remove(0);
        }
        self.closed.push(h);
    }

    fn raw(&mut self, nr: u32, a: [u64; 8]) -> i64 {
        self.calls += 1;
        // SAFETY: see the module documentation: every pointer is null, invalid (the kernel must
        // refuse it), or inside the scratch region or the playground, which no Rust code uses
        // except through `read_slot`; destructive calls only reach objects this module owns.
        let r = unsafe {
            syscall8(
                nr,
                a[0] as usize,
                a[1] as usize,
                a[2] as usize,
                a[3] as usize,
                a[4] as usize,
                a[5] as usize,
                a[6] as usize,
                a[7] as usize,
            )
        };
        if r == 0 {
            if let Some(n) = self.ok.get_mut(nr as usize) {
                *n += 1;
            }
        }
        r as i64
    }

    fn remember<T>(list: &mut Vec<T>, v: T) {
        if list.len() >= 32 {
            list.remove(0);
        }
        list.push(v);
    }

    /// A known VMAR (handle, base, size), if any.
    fn some_vmar(&mut self) -> Option<(u32, u64, u64)> {
        if self.vmars.is_empty() || self.chance(3) {
            if self.pg_handle != 0 {
                return Some((self.pg_handle, self.playground, PLAYGROUND_SIZE));
            }
            return None;
        }
        let i = self.below(self.vmars.len() as u64) as usize;
        Some(self.vmars[i])
    }

    fn some_of(&mut self, which: u8) -> u64 {
        let list = if which == 0 {
            &self.vmos
        } else {
            &self.threads
        };
        if list.is_empty() {
            return self.handle();
        }
        let i = self.below(list.len() as u64) as usize;
        let list = if which == 0 {
            &self.vmos
        } else {
            &self.threads
        };
        list[i] as u64
    }

    /// Plausible permissions (and sometimes one more known flag).
    fn perms(&mut self) -> u64 {
        let p = self.pick(&[
            ZX_VM_PERM_READ,
            ZX_VM_PERM_READ | ZX_VM_PERM_WRITE,
            ZX_VM_PERM_READ | ZX_VM_PERM_EXECUTE,
            ZX_VM_PERM_READ | ZX_VM_PERM_WRITE | ZX_VM_PERM_EXECUTE,
            0,
        ]);
        let extra = if self.chance(3) {
            1 << self.below(15)
        } else {
            0
        };
        (p | extra) as u64
    }

    /// A well-formed call of the VM syscalls (most of them should succeed), so the fuzzer gets
    /// deep into the VMAR trees instead of bouncing off argument checks. Returns false if there
    /// was nothing to work on.
    fn sane_step(&mut self) -> bool {
        let Some((v, base, size)) = self.some_vmar() else {
            return false;
        };
        let pages = (size / PAGE).max(1);
        let mut at = PAGE * self.below(pages);
        let mut len = (PAGE * (1 + self.below(16))).min(size.saturating_sub(at).max(PAGE));
        let (mut v, mut base) = (v, base);
        if !self.maps.is_empty() && self.chance(2) {
            // A part (or all, or a bit more) of a mapping made earlier.
            let i = self.below(self.maps.len() as u64) as usize;
            let (mv, ma, ml) = self.maps[i];
            let mp = ml / PAGE;
            let first = self.below(mp);
            (v, base, at) = (mv, ma, PAGE * first);
            len = PAGE * (1 + self.below(mp - first + 1));
            if self.chance(4) {
                // Across other mappings or past the end of the VMAR.
                len += PAGE * self.below(32);
            }
        }
        if self.chance(300) {
            // Memory pressure: a VMO that commits (nearly) all free memory, kept in the pool, so
            // later calls meet NO_MEMORY in page-table, VMO and kernel-object allocations.
            let out = self.scratch + 544;
            let size = self.pick(&[32u64 << 20, 96 << 20, 128 << 20]);
            if self.raw(ZX_SYS_VMO_CREATE, [size, 0, out, 0, 0, 0, 0, 0]) == 0 {
                let h = self.read_slot(out) as u32;
                self.raw(ZX_SYS_VMO_OP_RANGE, [h as u64, 1, 0, size, 0, 0, 0, 0]);
                self.add(h);
                Self::remember(&mut self.vmos, h);
            }
        }
        if self.chance(40) {
            self.exception_drill();
        }
        if self.chance(16) {
            // A fresh VMO that every map fits in.
            let out = self.scratch + 536;
            let o = self.pick(&[0u64, 2]);
            if self.raw(ZX_SYS_VMO_CREATE, [PAGE * 64, o, out, 0, 0, 0, 0, 0]) == 0 {
                let h = self.read_slot(out) as u32;
                self.add(h);
                Self::remember(&mut self.vmos, h);
            }
        }
        if v == self.pg_handle && self.chance(8) {
            // Cheap check: a destroyed playground answers BAD_STATE; replace it.
            let r = self.raw(
                ZX_SYS_VMAR_UNMAP,
                [v as u64, self.playground, 0, 0, 0, 0, 0, 0],
            );
            if r == abi::Status::ERR_BAD_STATE.into_raw() as i64 {
                self.new_playground();
                return true;
            }
        }
        match self.below(9) {
            0 => {
                let o = ZX_VM_CAN_MAP_READ | ZX_VM_CAN_MAP_WRITE | ZX_VM_CAN_MAP_EXECUTE;
                let o = o as u64
                    | self.pick(&[
                        0,
                        0,
                        ZX_VM_SPECIFIC,
                        ZX_VM_COMPACT,
                        ZX_VM_CAN_MAP_SPECIFIC,
                        ZX_VM_OFFSET_IS_UPPER_LIMIT,
                    ]) as u64;
                let off = if o & (ZX_VM_SPECIFIC | ZX_VM_OFFSET_IS_UPPER_LIMIT) as u64 != 0 {
                    at
                } else {
                    0
                };
                let l = PAGE * (1 + self.below(64));
                let (oh, oa) = (self.out_slot(), self.out_slot() + 8);
                let oa = if oa == oh { oh + 8 } else { oa };
                let r = self.raw(ZX_SYS_VMAR_ALLOCATE, [v as u64, o, off, l, oh, oa, 0, 0]);
                if r == abi::Status::ERR_BAD_STATE.into_raw() as i64 && v == self.pg_handle {
                    self.new_playground();
                }
                if r == 0 {
                    let (h, a) = (self.read_slot(oh) as u32, self.read_slot(oa));
                    self.add(h);
                    Self::remember(&mut self.vmars, (h, a, l));
                }
            }
            1 | 2 => {
                let vmo = self.some_of(0);
                let mut o = self.perms();
                if self.chance(2) {
                    o |= (ZX_VM_SPECIFIC
                        | if self.chance(3) {
                            ZX_VM_SPECIFIC_OVERWRITE
                        } else {
                            0
                        }) as u64;
                }
                if self.chance(6) {
                    o |= ZX_VM_MAP_RANGE as u64;
                }
                let off = if o & ZX_VM_SPECIFIC as u64 != 0 {
                    at
                } else {
                    0
                };
                let out = self.out_slot();
                let vo = PAGE * self.below(8);
                let r = self.raw(ZX_SYS_VMAR_MAP, [v as u64, o, off, vmo, vo, len, out, 0]);
                if r == 0 {
                    let a = self.read_slot(out);
                    Self::remember(&mut self.maps, (v, a, len));
                }
            }
            3 => {
                self.raw(ZX_SYS_VMAR_UNMAP, [v as u64, base + at, len, 0, 0, 0, 0, 0]);
            }
            4 | 5 => {
                let o = self.perms();
                self.raw(
                    ZX_SYS_VMAR_PROTECT,
                    [v as u64, o, base + at, len, 0, 0, 0, 0],
                );
            }
            6 => {
                let op = self.pick(&[1u64, 2, 3, 4, 10, 12, 13]);
                self.raw(
                    ZX_SYS_VMAR_OP_RANGE,
                    [v as u64, op, base + at, len, 0, 0, 0, 0],
                );
            }
            7 => {
                let p = if self.processes.is_empty() {
                    self.own_process
                } else {
                    let ps = self.processes.clone();
                    self.pick(&ps)
                };
                let (out, l) = (self.scratch + 256, self.below(SCRATCH_SIZE - 256));
                let nr = if p == self.own_process {
                    ZX_SYS_PROCESS_READ_MEMORY
                } else {
                    self.pick(&[ZX_SYS_PROCESS_READ_MEMORY, ZX_SYS_PROCESS_WRITE_MEMORY])
                };
                let act = self.out_slot();
                self.raw(nr, [p as u64, base + at, out, l, act, 0, 0, 0]);
            }
            _ => {
                if self.chance(8) {
                    self.raw(ZX_SYS_VMAR_DESTROY, [v as u64, 0, 0, 0, 0, 0, 0, 0]);
                } else {
                    let vmo = self.some_of(0);
                    if self.chance(3) {
                        // A child of a pooled VMO (snapshot, resizable snapshot, slice, at least
                        // on write, read-only snapshot), kept in the pool to be mapped, written,
                        // cloned again and closed by later steps.
                        let opt = self.pick(&[1u64, 1 | 4, 8, 16, 1 | 32]);
                        let (off, l) = (PAGE * self.below(8), PAGE * self.below(16));
                        let out = self.out_slot();
                        let r = self.raw(ZX_SYS_VMO_CREATE_CHILD, [vmo, opt, off, l, out, 0, 0, 0]);
                        if r == 0 {
                            let c = self.read_slot(out) as u32;
                            self.add(c);
                            Self::remember(&mut self.vmos, c);
                        }
                    }
                    let op = self.pick(&[1u64, 2, 10, 12]);
                    let (off, l) = (PAGE * self.below(16), PAGE * self.below(16));
                    self.raw(ZX_SYS_VMO_OP_RANGE, [vmo, op, off, l, 0, 0, 0, 0]);
                    if self.chance(3) {
                        let size = PAGE * self.below(24);
                        self.raw(ZX_SYS_VMO_SET_SIZE, [vmo, size, 0, 0, 0, 0, 0, 0]);
                    }
                }
            }
        }
        true
    }

    /// A well-formed exception round trip: a new process with an exception channel (ours),
    /// started at an address its empty address space does not map, so its thread faults at
    /// once; the exception message is read when it comes (its handle joins the pool and the
    /// exception list, for property, get_thread/process, state and close calls later). A
    /// channel pair with a small message carrying a handle goes along.
    fn exception_drill(&mut self) {
        let (po, vo, co, to) = (
            self.scratch + 560,
            self.scratch + 568,
            self.scratch + 576,
            self.scratch + 584,
        );
        if self.processes.len() >= MAX_PROCESSES {
            let p = self.processes.remove(0);
            self.raw(ZX_SYS_TASK_KILL, [p as u64, 0, 0, 0, 0, 0, 0, 0]);
        }
        let name = self.scratch + BYTES_AT;
        if self.raw(ZX_SYS_PROCESS_CREATE, [0, name, 4, 0, po, vo, 0, 0]) != 0 {
            return;
        }
        let (p, v) = (self.read_slot(po) as u32, self.read_slot(vo) as u32);
        self.processes.push(p);
        self.add(p);
        self.add(v);
        let on_thread = self.chance(2);
        if !on_thread
            && self.raw(
                ZX_SYS_TASK_CREATE_EXCEPTION_CHANNEL,
                [p as u64, 0, co, 0, 0, 0, 0, 0],
            ) != 0
        {
            return;
        }
        if self.raw(ZX_SYS_THREAD_CREATE, [p as u64, name, 4, 0, to, 0, 0, 0]) != 0 {
            return;
        }
        let t = self.read_slot(to) as u32;
        self.add(t);
        Self::remember(&mut self.threads, t);
        if on_thread
            && self.raw(
                ZX_SYS_TASK_CREATE_EXCEPTION_CHANNEL,
                [t as u64, 0, co, 0, 0, 0, 0, 0],
            ) != 0
        {
            return;
        }
        let ch = self.read_slot(co) as u32;
        self.add(ch);
        Self::remember(&mut self.channels, ch);
        // Entry and stack in user space, but nothing is mapped there in the new process.
        let (entry, stack) = (self.playground, self.playground + PAGE);
        if self.raw(
            ZX_SYS_PROCESS_START,
            [p as u64, t as u64, entry, stack, 0, 0, 0, 0],
        ) != 0
        {
            return;
        }
        let deadline = zx::clock_get_monotonic() + 20_000_000;
        let observed = self.scratch + 592;
        self.raw(
            ZX_SYS_OBJECT_WAIT_ONE,
            [
                ch as u64,
                abi::signals::ZX_CHANNEL_READABLE as u64,
                deadline as u64,
                observed,
                0,
                0,
                0,
                0,
            ],
        );
        let (ab, ah) = (self.scratch + 600, self.scratch + 608);
        let (b, hp) = (self.scratch + BYTES_AT, self.scratch + HANDLES_AT);
        if self.raw(ZX_SYS_CHANNEL_READ, [ch as u64, 0, b, hp, 1024, 4, ab, ah]) == 0
            && self.read_slot(ah) == 1
        {
            let e = self.read_slot32(hp);
            self.add(e);
            Self::remember(&mut self.exceptions, e);
        }
        // A plain channel with one small message and a duplicate of the process handle.
        let (c0, c1) = (self.scratch + 616, self.scratch + 624);
        if self.raw(ZX_SYS_CHANNEL_CREATE, [0, c0, c1, 0, 0, 0, 0, 0]) == 0 {
            let (a, b2) = (self.read_slot(c0) as u32, self.read_slot(c1) as u32);
            for h in [a, b2] {
                self.add(h);
                Self::remember(&mut self.channels, h);
            }
            let d = self.scratch + 632;
            if self.raw(
                ZX_SYS_HANDLE_DUPLICATE,
                [p as u64, ZX_RIGHT_SAME_RIGHTS as u64, d, 0, 0, 0, 0, 0],
            ) == 0
            {
                self.write_slot32(hp, self.read_slot(d) as u32);
                self.raw(ZX_SYS_CHANNEL_WRITE, [a as u64, 0, b, 16, hp, 1, 0, 0]);
            }
        }
    }

    /// A new playground after the old one was destroyed (through a duplicate in the pool).
    /// Structures random arguments rarely build, each of which once crashed or froze the kernel:
    /// long chains and trees of channels freed at once, thousands of mappings of a large
    /// committed VMO reported by `ZX_INFO_*_MAPS` and destroyed together, splits under memory
    /// pressure, and unstarted children whose address spaces are filled through their handles.
    fn structure_step(&mut self) {
        match self.below(4) {
            0 => self.channel_tree(),
            1 => self.many_mappings(),
            2 => self.split_under_pressure(),
            _ => self.unstarted_children(),
        }
    }

    /// Creates a channel pair, hangs a chain (or a tree) of up to 2 000 endpoints below one
    /// end through queued messages, then usually closes that end (freeing the whole structure
    /// at once) or keeps it in the pool.
    fn channel_tree(&mut self) {
        let (o0, o1) = (self.scratch + 592, self.scratch + 600);
        if self.raw(ZX_SYS_CHANNEL_CREATE, [0, o0, o1, 0, 0, 0, 0, 0]) != 0 {
            return;
        }
        let (head, mut tail) = (self.read_slot32(o0), self.read_slot32(o1));
        let depth = self.pick(&[8u64, 80, 500, 2000]);
        let fan = if self.chance(3) { 2 } else { 1 };
        for _ in 0..depth {
            // `fan` new pairs: their first ends go in one message on `tail`; the walk goes on
            // below the last pair's second end.
            let mut next = 0;
            for k in 0..fan {
                if self.raw(ZX_SYS_CHANNEL_CREATE, [0, o0, o1, 0, 0, 0, 0, 0]) != 0 {
                    break;
                }
                self.write_slot32(self.scratch + HANDLES_AT + 4 * k, self.read_slot32(o0));
                if next != 0 {
                    self.raw(ZX_SYS_HANDLE_CLOSE, [next as u64, 0, 0, 0, 0, 0, 0, 0]);
                }
                next = self.read_slot32(o1);
            }
            if next == 0 {
                break;
            }
            let r = self.raw(
                ZX_SYS_CHANNEL_WRITE,
                [
                    tail as u64,
                    0,
                    self.scratch + BYTES_AT,
                    8,
                    self.scratch + HANDLES_AT,
                    fan,
                    0,
                    0,
                ],
            );
            self.raw(ZX_SYS_HANDLE_CLOSE, [tail as u64, 0, 0, 0, 0, 0, 0, 0]);
            tail = next;
            if r != 0 {
                break;
            }
        }
        self.raw(ZX_SYS_HANDLE_CLOSE, [tail as u64, 0, 0, 0, 0, 0, 0, 0]);
        if self.chance(4) {
            self.add(head);
            Self::remember(&mut self.channels, head);
        } else {
            self.raw(ZX_SYS_HANDLE_CLOSE, [head as u64, 0, 0, 0, 0, 0, 0, 0]);
        }
    }

    /// Maps one committed VMO (up to 2 048 pages) up to 2 000 times into a fresh region of this
    /// process's root, asks for `ZX_INFO_VMAR_MAPS` and `ZX_INFO_PROCESS_MAPS` (whose
    /// committed-page counts once cost mappings x pages), then destroys the region at once.
    fn many_mappings(&mut self) {
        let (ov, oh, oa) = (self.scratch + 592, self.scratch + 600, self.scratch + 608);
        let pages = self.pick(&[16u64, 256, 2048]);
        let count = self.pick(&[100u64, 1000, 2000]);
        let region = pages * PAGE * count;
        if self.raw(ZX_SYS_VMO_CREATE, [pages * PAGE, 0, ov, 0, 0, 0, 0, 0]) != 0 {
            return;
        }
        let vmo = self.read_slot(ov);
        self.raw(ZX_SYS_VMO_OP_RANGE, [vmo, 1, 0, pages * PAGE, 0, 0, 0, 0]);
        let o = (ZX_VM_CAN_MAP_READ | ZX_VM_CAN_MAP_WRITE | ZX_VM_CAN_MAP_SPECIFIC) as u64;
        let r = self.raw(
            ZX_SYS_VMAR_ALLOCATE,
            [self.own_root as u64, o, 0, region, oh, oa, 0, 0],
        );
        if r == 0 {
            let vmar = self.read_slot(oh);
            let out = self.out_slot();
            let perms = (ZX_VM_PERM_READ | ZX_VM_PERM_WRITE) as u64;
            for _ in 0..count {
                if self.raw(
                    ZX_SYS_VMAR_MAP,
                    [vmar, perms, 0, vmo, 0, pages * PAGE, out, 0],
                ) != 0
                {
                    break;
                }
            }
            let (buf, size) = (self.scratch + BYTES_AT, PAGE);
            let (act, avail) = (self.scratch + 616, self.scratch + 624);
            self.raw(
                ZX_SYS_OBJECT_GET_INFO,
                [
                    vmar,
                    abi::info::topic::ZX_INFO_VMAR_MAPS as u64,
                    buf,
                    size,
                    act,
                    avail,
                    0,
                    0,
                ],
            );
            self.raw(
                ZX_SYS_OBJECT_GET_INFO,
                [
                    self.own_process as u64,
                    abi::info::topic::ZX_INFO_PROCESS_MAPS as u64,
                    buf,
                    size,
                    act,
                    avail,
                    0,
                    0,
                ],
            );
            if self.chance(2) {
                self.raw(
                    ZX_SYS_VMAR_UNMAP,
                    [vmar, self.read_slot(oa), region, 0, 0, 0, 0, 0],
                );
            }
            self.raw(ZX_SYS_VMAR_DESTROY, [vmar, 0, 0, 0, 0, 0, 0, 0]);
            self.raw(ZX_SYS_HANDLE_CLOSE, [vmar, 0, 0, 0, 0, 0, 0, 0]);
        }
        self.raw(ZX_SYS_HANDLE_CLOSE, [vmo, 0, 0, 0, 0, 0, 0, 0]);
    }

    /// Commits (nearly) all free memory, then protects and unmaps every other page of a
    /// 256-page mapping in the playground: each split needs kernel memory while none is left
    /// (the answer is `NO_MEMORY` with nothing changed, or success); then frees the memory.
    fn split_under_pressure(&mut self) {
        if self.pg_handle == 0 {
            return;
        }
        let (ob, ov, om) = (self.scratch + 592, self.scratch + 600, self.scratch + 608);
        let size = self.pick(&[96u64 << 20, 128 << 20]);
        let big = if self.raw(ZX_SYS_VMO_CREATE, [size, 0, ob, 0, 0, 0, 0, 0]) == 0 {
            let h = self.read_slot(ob);
            self.raw(ZX_SYS_VMO_OP_RANGE, [h, 1, 0, size, 0, 0, 0, 0]);
            h
        } else {
            0
        };
        let pages = 256;
        if self.raw(ZX_SYS_VMO_CREATE, [pages * PAGE, 0, ov, 0, 0, 0, 0, 0]) == 0 {
            let vmo = self.read_slot(ov);
            let perms = (ZX_VM_PERM_READ | ZX_VM_PERM_WRITE) as u64;
            let pg = self.pg_handle as u64;
            if self.raw(ZX_SYS_VMAR_MAP, [pg, perms, 0, vmo, 0, pages * PAGE, om, 0]) == 0 {
                let at = self.read_slot(om);
                for i in (0..pages).step_by(2) {
                    let ro = ZX_VM_PERM_READ as u64;
                    self.raw(
                        ZX_SYS_VMAR_PROTECT,
                        [pg, ro, at + i * PAGE, PAGE, 0, 0, 0, 0],
                    );
                }
                for i in (1..pages).step_by(2) {
                    self.raw(ZX_SYS_VMAR_UNMAP, [pg, at + i * PAGE, PAGE, 0, 0, 0, 0, 0]);
                }
                // Whatever the splits did, the whole range can be unmapped.
                self.raw(ZX_SYS_VMAR_UNMAP, [pg, at, pages * PAGE, 0, 0, 0, 0, 0]);
            }
            self.raw(ZX_SYS_HANDLE_CLOSE, [vmo, 0, 0, 0, 0, 0, 0, 0]);
        }
        if big != 0 {
            self.raw(ZX_SYS_HANDLE_CLOSE, [big, 0, 0, 0, 0, 0, 0, 0]);
        }
    }

    /// Creates up to four processes with a few threads each, never started, and maps a one-page
    /// VMO into each of their root VMARs up to 2 000 times through our handles; usually kills
    /// and closes them again (each counts against `MAX_PROCESSES` while kept).
    fn unstarted_children(&mut self) {
        let (op, ov, ot, om, oo) = (
            self.scratch + 592,
            self.scratch + 600,
            self.scratch + 608,
            self.scratch + 616,
            self.scratch + 624,
        );
        if self.raw(ZX_SYS_VMO_CREATE, [PAGE, 0, oo, 0, 0, 0, 0, 0]) != 0 {
            return;
        }
        let vmo = self.read_slot(oo);
        let n = 1 + self.below(4);
        for _ in 0..n {
            if self.processes.len() >= MAX_PROCESSES {
                let p = self.processes.remove(0);
                self.raw(ZX_SYS_TASK_KILL, [p as u64, 0, 0, 0, 0, 0, 0, 0]);
            }
            let r = self.raw(
                ZX_SYS_PROCESS_CREATE,
                [0, self.scratch + BYTES_AT, 4, 0, op, ov, 0, 0],
            );
            if r != 0 {
                break;
            }
            let (p, v) = (self.read_slot(op), self.read_slot(ov));
            for _ in 0..self.below(8) {
                if self.raw(
                    ZX_SYS_THREAD_CREATE,
                    [p, self.scratch + BYTES_AT, 4, 0, ot, 0, 0, 0],
                ) == 0
                {
                    let t = self.read_slot(ot);
                    self.raw(ZX_SYS_HANDLE_CLOSE, [t, 0, 0, 0, 0, 0, 0, 0]);
                }
            }
            let perms = ZX_VM_PERM_READ as u64;
            for _ in 0..self.pick(&[10u64, 500, 2000]) {
                if self.raw(ZX_SYS_VMAR_MAP, [v, perms, 0, vmo, 0, PAGE, om, 0]) != 0 {
                    break;
                }
            }
            self.raw(ZX_SYS_HANDLE_CLOSE, [v, 0, 0, 0, 0, 0, 0, 0]);
            if self.chance(3) {
                self.processes.push(p as u32);
            } else {
                self.raw(ZX_SYS_TASK_KILL, [p, 0, 0, 0, 0, 0, 0, 0]);
                self.raw(ZX_SYS_HANDLE_CLOSE, [p, 0, 0, 0, 0, 0, 0, 0]);
            }
        }
        self.raw(ZX_SYS_HANDLE_CLOSE, [vmo, 0, 0, 0, 0, 0, 0, 0]);
    }

    fn new_playground(&mut self) {
        let o = ZX_VM_CAN_MAP_READ
            | ZX_VM_CAN_MAP_WRITE
            | ZX_VM_CAN_MAP_EXECUTE
            | ZX_VM_CAN_MAP_SPECIFIC;
        let (oh, oa) = (self.scratch + 512, self.scratch + 520);
        let r = self.raw(
            ZX_SYS_VMAR_ALLOCATE,
            [
                self.own_root as u64,
                o as u64,
                0,
                PLAYGROUND_SIZE,
                oh,
                oa,
                0,
                0,
            ],
        );
        self.raw(
            ZX_SYS_HANDLE_CLOSE,
            [self.pg_handle as u64, 0, 0, 0, 0, 0, 0, 0],
        );
        self.pg_handle = 0;
        if r == 0 {
            self.pg_handle = self.read_slot(oh) as u32;
            self.playground = self.read_slot(oa);
            self.duplicate_playground();
        }
    }

    /// Puts a duplicate of the playground handle into the pool (for the destructive calls).
    fn duplicate_playground(&mut self) {
        let out = self.scratch + 528;
        if self.raw(
            ZX_SYS_HANDLE_DUPLICATE,
            [
                self.pg_handle as u64,
                ZX_RIGHT_SAME_RIGHTS as u64,
                out,
                0,
                0,
                0,
                0,
                0,
            ],
        ) == 0
        {
            let d = self.read_slot(out) as u32;
            self.add(d);
            Self::remember(&mut self.vmars, (d, self.playground, PLAYGROUND_SIZE));
        }
    }

    /// Runs one random call.
    fn step(&mut self) {
        if self.chance(200) {
            self.structure_step();
            return;
        }
        if self.chance(2) && self.sane_step() {
            return;
        }
        let nr = match self.below(54) {
            0..=37 => self.below(ZX_SYS_COUNT as u64) as u32,
            // Channels and exceptions need a few objects around to get anywhere.
            50 => ZX_SYS_CHANNEL_CREATE,
            51 => ZX_SYS_CHANNEL_READ,
            52 => ZX_SYS_CHANNEL_WRITE,
            53 => ZX_SYS_TASK_CREATE_EXCEPTION_CHANNEL,
            38 => ZX_SYS_COUNT + self.below(4) as u32,
            39 => u32::MAX - self.below(2) as u32,
            // Weight the object-creating calls up so there is something to work on.
            40..=42 => ZX_SYS_VMO_CREATE,
            43..=44 => ZX_SYS_VMAR_MAP,
            45..=46 => ZX_SYS_VMAR_ALLOCATE,
            47 => ZX_SYS_HANDLE_DUPLICATE,
            48 => ZX_SYS_PROCESS_CREATE,
            _ => ZX_SYS_VMAR_PROTECT,
        };
        let all_vm = (1 << 15) - 1;
        match nr {
            ZX_SYS_VMAR_ALLOCATE => {
                let (h, o, off, size) = (
                    self.handle(),
                    self.options(all_vm),
                    self.vmar_offset(),
                    self.len(),
                );
                let (oh, oa) = (self.out(), self.out());
                if self.raw(nr, [h, o, off, size, oh, oa, 0, 0]) == 0 {
                    let child = self.read_slot(oh) as u32;
                    self.add(child);
                    let a = self.read_slot(oa);
                    Self::remember(&mut self.vmars, (child, a, size));
                }
            }
            ZX_SYS_VMAR_MAP => {
                let h = self.handle();
                let o = self.options(all_vm);
                let (off, vmo, vo, len, out) = (
                    self.vmar_offset(),
                    self.handle(),
                    self.offset(),
                    self.len(),
                    self.out(),
                );
                let junk = self.next();
                self.raw(nr, [h, o, off, vmo, vo, len, out, junk]);
            }
            ZX_SYS_VMAR_UNMAP => {
                let (h, a, l) = (self.handle(), self.vaddr(), self.len());
                self.raw(nr, [h, a, l, 0, 0, 0, 0, 0]);
            }
            ZX_SYS_VMAR_PROTECT => {
                let (h, o, a, l) = (
                    self.handle(),
                    self.options(all_vm),
                    self.vaddr(),
                    self.len(),
                );
                self.raw(nr, [h, o, a, l, 0, 0, 0, 0]);
            }
            ZX_SYS_VMAR_DESTROY => {
                let h = self.handle();
                self.raw(nr, [h, 0, 0, 0, 0, 0, 0, 0]);
            }
            ZX_SYS_VMAR_OP_RANGE | ZX_SYS_VMO_OP_RANGE => {
                let h = self.handle();
                let op = if self.chance(4) {
                    self.next() as u32 as u64
                } else {
                    self.below(16)
                };
                let (a, l) = if nr == ZX_SYS_VMAR_OP_RANGE {
                    (self.vaddr(), self.len())
                } else {
                    (self.offset(), self.len())
                };
                // Committing huge ranges only fills memory slowly: keep commits small.
                let l = if op == 1 && l > (1 << 22) && l < (1 << 46) {
                    l & ((1 << 22) - 1)
                } else {
                    l
                };
                let (b, bl) = (self.ptr(), self.len());
                self.raw(nr, [h, op, a, l, b, bl, 0, 0]);
            }
            ZX_SYS_VMO_CREATE => {
                let size = match self.below(4) {
                    0 => self.len(),
                    _ => PAGE * self.below(32) + self.pick(&[0, 0, 1, PAGE - 1]),
                };
                let o = self.options(0x7);
                let out = self.out();
                if self.raw(nr, [size, o, out, 0, 0, 0, 0, 0]) == 0 {
                    let h = self.read_slot(out) as u32;
                    self.add(h);
                    Self::remember(&mut self.vmos, h);
                }
            }
            ZX_SYS_VMO_READ | ZX_SYS_VMO_WRITE => {
                let (h, b, off) = (self.handle(), self.ptr(), self.offset());
                let l = if self.chance(3) {
                    self.len()
                } else {
                    self.below(SCRATCH_SIZE)
                };
                self.raw(nr, [h, b, off, l, 0, 0, 0, 0]);
            }
            ZX_SYS_VMO_GET_SIZE => {
                let (h, out) = (self.safe_handle(), self.out());
                self.raw(nr, [h, out, 0, 0, 0, 0, 0, 0]);
            }
            ZX_SYS_VMO_SET_SIZE => {
                let h = self.handle();
                let size = if self.chance(3) {
                    self.len()
                } else {
                    PAGE * self.below(64) + self.below(2)
                };
                self.raw(nr, [h, size, 0, 0, 0, 0, 0, 0]);
            }
            ZX_SYS_VMO_CREATE_CHILD => {
                let (h, o, off, size, out) = (
                    self.handle(),
                    self.options(0x3f),
                    self.offset(),
                    self.len(),
                    self.out(),
                );
                if self.raw(nr, [h, o, off, size, out, 0, 0, 0]) == 0 {
                    let c = self.read_slot(out) as u32;
                    self.add(c);
                    Self::remember(&mut self.vmos, c);
                }
            }
            ZX_SYS_VMO_REPLACE_AS_EXECUTABLE => {
                let (h, vmex, out) = (self.handle(), self.handle(), self.out());
                let r = self.raw(nr, [h, vmex, out, 0, 0, 0, 0, 0]);
                if r == 0 {
                    self.forget(h as u32);
                    let n = self.read_slot(out) as u32;
                    self.add(n);
                }
            }
            ZX_SYS_HANDLE_CLOSE => {
                let h = self.handle();
                if self.raw(nr, [h, 0, 0, 0, 0, 0, 0, 0]) == 0 {
                    self.forget(h as u32);
                }
            }
            ZX_SYS_HANDLE_DUPLICATE | ZX_SYS_HANDLE_REPLACE => {
                let (h, r, out) = (self.handle(), self.rights(), self.out());
                let res = self.raw(nr, [h, r, out, 0, 0, 0, 0, 0]);
                if nr == ZX_SYS_HANDLE_REPLACE
                    && self.pool.contains(&(h as u32))
                    && res != abi::Status::ERR_BAD_HANDLE.into_raw() as i64
                {
                    // Replace consumes the handle even when it fails (Zircon).
                    self.forget(h as u32);
                }
                if res == 0 {
                    let n = self.read_slot(out) as u32;
                    self.add(n);
                }
            }
            ZX_SYS_OBJECT_GET_INFO => {
                let h = self.safe_handle();
                let topic = if self.chance(5) {
                    self.next() as u32 as u64
                } else {
                    self.pick(&[
                        0u64,
                        1,
                        2,
                        3 | 1 << 28,
                        4,
                        7,
                        10,
                        12,
                        13,
                        13 | 1 << 28,
                        14 | 2 << 28,
                        19,
                        23,
                        23 | 1 << 28,
                        23 | 2 << 28,
                        27,
                        36,
                    ])
                };
                let (b, bl) = (
                    self.ptr(),
                    if self.chance(2) {
                        self.below(SCRATCH_SIZE)
                    } else {
                        self.len()
                    },
                );
                let (act, av) = (self.out(), self.out());
                self.raw(nr, [h, topic, b, bl, act, av, 0, 0]);
            }
            ZX_SYS_OBJECT_WAIT_ONE => {
                let (h, s) = (self.safe_handle(), self.next() as u32 as u64);
                let now = zx::clock_get_monotonic();
                let deadline = match self.below(4) {
                    0 => 0,
                    1 => i64::MIN,
                    2 => now.saturating_add(self.below(200_000) as i64),
                    _ => now - 1,
                };
                let out = self.out();
                self.raw(nr, [h, s, deadline as u64, out, 0, 0, 0, 0]);
            }
            ZX_SYS_PROCESS_CREATE => {
                let live = self.processes.len();
                let (job, name, nl, o, po, vo) = (
                    self.handle(),
                    self.ptr(),
                    self.below(40),
                    self.options(0),
                    self.out(),
                    self.out(),
                );
                let nl = if self.chance(8) { self.len() } else { nl };
                let (job, name, o) = if self.chance(2) {
                    (0, self.scratch, 0)
                } else {
                    (job, name, o)
                };
                if live >= MAX_PROCESSES {
                    let p = self.processes.remove(0);
                    self.raw(ZX_SYS_TASK_KILL, [p as u64, 0, 0, 0, 0, 0, 0, 0]);
                }
                if self.raw(nr, [job, name, nl, o, po, vo, 0, 0]) == 0 {
                    let (p, v) = (self.read_slot(po) as u32, self.read_slot(vo) as u32);
                    self.processes.push(p);
                    self.add(p);
                    self.add(v);
                    Self::remember(
                        &mut self.vmars,
                        (v, 0x20_0000, (1 << 47) - 0x20_0000 - PAGE),
                    );
                }
            }
            ZX_SYS_PROCESS_START => {
                let (p, t, e, s, a1, a2) = (
                    self.handle(),
                    self.handle(),
                    self.vaddr(),
                    self.vaddr(),
                    self.handle(),
                    self.next(),
                );
                let r = self.raw(nr, [p, t, e, s, a1, a2, 0, 0]);
                if r == 0 || self.pool.contains(&(a1 as u32)) {
                    // The transferred handle is consumed (on failure too, as in Zircon).
                    self.forget(a1 as u32);
                }
            }
            ZX_SYS_THREAD_CREATE => {
                // Never in this process: starting such a thread at a random entry would kill it
                // every time (rarely is fine: see `self_harm`).
                let (p, name, nl, o, out) = (
                    self.handle(),
                    self.ptr(),
                    self.below(40),
                    self.options(0),
                    self.out(),
                );
                if self.raw(nr, [p, name, nl, o, out, 0, 0, 0]) == 0 {
                    let t = self.read_slot(out) as u32;
                    self.add(t);
                    Self::remember(&mut self.threads, t);
                }
            }
            ZX_SYS_THREAD_START => {
                let (t, e, s, a1, a2) = (
                    self.handle(),
                    self.vaddr(),
                    self.vaddr(),
                    self.next(),
                    self.next(),
                );
                self.raw(nr, [t, e, s, a1, a2, 0, 0, 0]);
            }
            ZX_SYS_PROCESS_EXIT | ZX_SYS_THREAD_EXIT => self.self_harm(nr),
            ZX_SYS_TASK_KILL => {
                if self.chance(400) {
                    self.self_harm(nr);
                } else {
                    let h = self.handle();
                    self.raw(nr, [h, 0, 0, 0, 0, 0, 0, 0]);
                }
            }
            ZX_SYS_PROCESS_READ_MEMORY | ZX_SYS_PROCESS_WRITE_MEMORY => {
                let own = self.chance(3);
                let p = if own {
                    self.own_process as u64
                } else {
                    self.handle()
                };
                // Own memory is written only inside the playground.
                let a = if own && nr == ZX_SYS_PROCESS_WRITE_MEMORY {
                    self.playground + self.below(PLAYGROUND_SIZE)
                } else {
                    self.vaddr()
                };
                let (b, l, out) = (
                    self.ptr(),
                    if self.chance(3) {
                        self.len()
                    } else {
                        self.below(SCRATCH_SIZE)
                    },
                    self.out(),
                );
                self.raw(nr, [p, a, b, l, out, 0, 0, 0]);
            }
            ZX_SYS_CHANNEL_CREATE => {
                let (o, a, b) = (self.options(0), self.out(), self.out());
                let o = if self.chance(4) { o } else { 0 };
                if self.raw(nr, [o, a, b, 0, 0, 0, 0, 0]) == 0 {
                    for at in [a, b] {
                        let h = self.read_slot(at) as u32;
                        self.add(h);
                        Self::remember(&mut self.channels, h);
                    }
                }
            }
            ZX_SYS_CHANNEL_WRITE => {
                let ch = self.some_channel();
                let o = if self.chance(4) { self.options(0) } else { 0 };
                // Bytes from anywhere (the kernel copies them in); sizes around Zircon's limits.
                let sane = self.chance(2);
                let (b, nb) = if sane {
                    (self.scratch + BYTES_AT, self.pick(&[0u64, 8, 64]))
                } else {
                    (
                        self.ptr(),
                        self.pick(&[0u64, 1, 8, 100, 4096, 65536, 65537, 1 << 32]),
                    )
                };
                // Handles: pool values written into the scratch handle buffer (the transfer
                // consumes them, whatever the outcome), or a bad pointer.
                let nh = if sane {
                    self.below(3)
                } else {
                    self.pick(&[0u64, 1, 2, 3, 64, 65, 1 << 31])
                };
                let hp = if !sane && self.chance(6) {
                    self.ptr()
                } else {
                    self.scratch + HANDLES_AT
                };
                let mut sent = Vec::new();
                if hp == self.scratch + HANDLES_AT {
                    for i in 0..nh.min(64) {
                        let h = match self.below(8) {
                            0 => self.next() as u32,
                            1 => ch as u32,
                            _ if !self.pool.is_empty() => {
                                let p = self.pool.clone();
                                self.pick(&p)
                            }
                            _ => 0,
                        };
                        self.write_slot32(hp + 4 * i, h);
                        sent.push(h);
                    }
                }
                self.raw(nr, [ch, o, b, nb, hp, nh, 0, 0]);
                for h in sent {
                    if self.pool.contains(&h) {
                        self.forget(h);
                    }
                }
            }
            ZX_SYS_CHANNEL_READ => {
                let ch = self.some_channel();
                let o = if self.chance(4) { self.options(0) } else { 0 };
                let (b, nb) = if self.chance(5) {
                    (self.ptr(), self.len())
                } else {
                    (self.scratch + BYTES_AT, self.pick(&[0u64, 8, 64, 1024]))
                };
                let (hp, nh) = if self.chance(5) {
                    (self.ptr(), self.len())
                } else {
                    (self.scratch + HANDLES_AT, self.pick(&[0u64, 1, 4, 64]))
                };
                let (ab, ah) = (self.out(), self.out());
                if self.raw(nr, [ch, o, b, hp, nb, nh, ab, ah]) == 0
                    && hp == self.scratch + HANDLES_AT
                {
                    let got = (self.read_slot(ah) as u32 as u64).min(nh).min(64);
                    for i in 0..got {
                        let h = self.read_slot32(hp + 4 * i);
                        self.add(h);
                        // Exception channels carry one exception handle per message.
                        if got == 1 && nb >= 8 {
                            Self::remember(&mut self.exceptions, h);
                        }
                    }
                }
            }
            ZX_SYS_TASK_CREATE_EXCEPTION_CHANNEL => {
                // Never on this process or its threads: a fuzzing thread that faulted would wait
                // for an answer nobody gives. Created processes and threads (which fault at once
                // when started at random entries) and random values only.
                let t = match self.below(4) {
                    0 if !self.processes.is_empty() => {
                        let p = self.processes.clone();
                        self.pick(&p) as u64
                    }
                    1 if !self.threads.is_empty() => {
                        let t = self.threads.clone();
                        self.pick(&t) as u64
                    }
                    _ => self.handle(),
                };
                let t = if self.is_own(t) { 0 } else { t };
                let (o, out) = (if self.chance(4) { self.options(0) } else { 0 }, self.out());
                if self.raw(nr, [t, o, out, 0, 0, 0, 0, 0]) == 0 {
                    let h = self.read_slot(out) as u32;
                    self.add(h);
                    Self::remember(&mut self.channels, h);
                }
            }
            ZX_SYS_THREAD_READ_STATE | ZX_SYS_THREAD_WRITE_STATE => {
                let t = if self.threads.is_empty() || self.chance(3) {
                    self.handle()
                } else {
                    self.some_of(1)
                };
                // Writes never reach this process's own threads.
                let t = if nr == ZX_SYS_THREAD_WRITE_STATE && self.is_own(t) {
                    0
                } else {
                    t
                };
                let kind = if self.chance(4) {
                    self.next() as u32 as u64
                } else {
                    self.below(3)
                };
                let (b, l) = self.buffer_or_wild(&[0, 8, 160, 168, 176, 1024]);
                self.raw(nr, [t, kind, b, l, 0, 0, 0, 0]);
            }
            ZX_SYS_OBJECT_GET_PROPERTY | ZX_SYS_OBJECT_SET_PROPERTY => {
                let h = if nr == ZX_SYS_OBJECT_GET_PROPERTY {
                    self.safe_handle()
                } else if !self.exceptions.is_empty() && self.chance(2) {
                    let e = self.exceptions.clone();
                    self.pick(&e) as u64
                } else {
                    self.handle()
                };
                let prop = if self.chance(5) {
                    self.next() as u32 as u64
                } else {
                    self.pick(&[2u64, 3, 4, 5, 6, 7, 16, 17, 18, 0])
                };
                let (b, l) = self.buffer_or_wild(&[0, 4, 8, 31, 32, 64]);
                self.raw(nr, [h, prop, b, l, 0, 0, 0, 0]);
            }
            ZX_SYS_EXCEPTION_GET_THREAD | ZX_SYS_EXCEPTION_GET_PROCESS => {
                let e = if self.exceptions.is_empty() || self.chance(3) {
                    self.handle()
                } else {
                    let e = self.exceptions.clone();
                    self.pick(&e) as u64
                };
                let out = self.out();
                if self.raw(nr, [e, out, 0, 0, 0, 0, 0, 0]) == 0 {
                    let h = self.read_slot(out) as u32;
                    self.add(h);
                    if nr == ZX_SYS_EXCEPTION_GET_THREAD {
                        Self::remember(&mut self.threads, h);
                    }
                }
            }
            ZX_SYS_SYSTEM_GET_FEATURES => {
                let kind = if self.chance(4) {
                    self.next() as u32 as u64
                } else {
                    self.below(6)
                };
                let out = self.out();
                self.raw(nr, [kind, out, 0, 0, 0, 0, 0, 0]);
            }
            ZX_SYS_DEBUG_WRITE => {
                // Only invalid buffers or empty writes: random bytes would garble the log.
                let b = self.ptr();
                let valid = b >= self.scratch && b < self.scratch + SCRATCH_VMAR_SIZE;
                let l = if valid { 0 } else { self.len() };
                self.raw(nr, [b, l, 0, 0, 0, 0, 0, 0]);
            }
            ZX_SYS_DEBUG_KERNEL_STATS => {
                let (b, l) = (self.ptr(), self.pick(&[0, 8, 64, 71, 72, u64::MAX]));
                self.raw(nr, [b, l, 0, 0, 0, 0, 0, 0]);
                if self.chance(20) {
                    self.check_invariants();
                }
            }
            _ => {
                let mut a = [0u64; 8];
                for x in a.iter_mut() {
                    *x = match self.below(3) {
                        0 => self.handle(),
                        1 => self.ptr(),
                        _ => self.len(),
                    };
                }
                self.raw(nr, a);
            }
        }
    }

    /// Rare deliberate deaths: exit, thread exit, killing itself.
    fn self_harm(&mut self, nr: u32) {
        if !self.chance(200) {
            return;
        }
        self.report();
        let code = self.next();
        match nr {
            ZX_SYS_PROCESS_EXIT => self.raw(nr, [code, 0, 0, 0, 0, 0, 0, 0]),
            ZX_SYS_THREAD_EXIT => {
                // The racer must end too, or the process lives on without its main thread.
                STOP.store(true, core::sync::atomic::Ordering::Relaxed);
                self.raw(nr, [0; 8])
            }
            _ => self.raw(nr, [self.own_process as u64, 0, 0, 0, 0, 0, 0, 0]),
        };
    }

    /// Writes the call count to the parent's counter VMO.
    fn report(&mut self) {
        let n = self.calls + 1;
        let bytes = n.to_ne_bytes();
        // SAFETY: the kernel reads 8 bytes from `bytes`.
        unsafe {
            syscall8(
                ZX_SYS_VMO_WRITE,
                self.counter as usize,
                bytes.as_ptr() as usize,
                8 * self.slot as usize,
                8,
                0,
                0,
                0,
                0,
            );
        }
    }

    /// Asks the kernel to check every address space; a failure ends the child with code 2.
    fn check_invariants(&mut self) {
        if let Ok(s) = zx::debug_kernel_stats() {
            if s[kstats::INVARIANT_FAILURES] != 0 {
                zx::println!(
                    "fuzz: child: address-space invariants broken after {} calls",
                    self.calls
                );
                self.report();
                zx::Process::exit(2);
            }
        }
    }
}

/// Tells the racer thread to stop.
static STOP: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
/// Size of the racer thread's stack.
const RACER_STACK: u64 = 16 * PAGE;

/// A second thread of the child: VM calls on the playground (`arg1` = its handle, `arg2` = its
/// base) that race with the main thread's (preemption can switch between them anywhere). Uses no
/// heap and nothing of the main thread's state.
extern "C" fn racer(pg: u64, base: u64) -> ! {
    let mut rng = mix(base ^ pg);
    let mut buf = [0u64; 64];
    let vmo = {
        let mut out = 0u32;
        // SAFETY: `out` is a valid u32 the kernel writes.
        unsafe {
            syscall8(
                ZX_SYS_VMO_CREATE,
                16 * PAGE as usize,
                0,
                &mut out as *mut u32 as usize,
                0,
                0,
                0,
                0,
                0,
            )
        };
        out as u64
    };
    while !STOP.load(core::sync::atomic::Ordering::Relaxed) {
        rng = mix(rng);
        let at = base + PAGE * (rng % 64);
        let len = PAGE * (1 + (rng >> 8) % 16);
        let p = buf.as_mut_ptr() as usize;
        let out = &mut buf[63] as *mut u64 as usize;
        let (nr, a): (u32, [u64; 7]) = match (rng >> 16) % 8 {
            0 => (
                ZX_SYS_VMAR_MAP,
                [
                    pg,
                    (ZX_VM_PERM_READ | ZX_VM_PERM_WRITE | ZX_VM_SPECIFIC_OVERWRITE) as u64,
                    at - base,
                    vmo,
                    0,
                    len,
                    out as u64,
                ],
            ),
            1 => (ZX_SYS_VMAR_UNMAP, [pg, at, len, 0, 0, 0, 0]),
            2 => (
                ZX_SYS_VMAR_PROTECT,
                [pg, ZX_VM_PERM_READ as u64, at, len, 0, 0, 0],
            ),
            3 => (
                ZX_SYS_VMAR_OP_RANGE,
                [pg, 1 + (rng >> 24) % 2, at, len, 0, 0, 0],
            ),
            4 => (
                ZX_SYS_VMO_OP_RANGE,
                [vmo, 1 + (rng >> 24) % 2, 0, 16 * PAGE, 0, 0, 0],
            ),
            5 => (
                ZX_SYS_VMO_WRITE,
                [vmo, p as u64, (rng >> 24) % (20 * PAGE), 256, 0, 0, 0],
            ),
            6 => (
                ZX_SYS_VMAR_MAP,
                [
                    pg,
                    (ZX_VM_PERM_READ | ZX_VM_MAP_RANGE) as u64,
                    0,
                    vmo,
                    0,
                    len,
                    out as u64,
                ],
            ),
            _ => (
                ZX_SYS_VMO_SET_SIZE,
                [vmo, PAGE * ((rng >> 24) % 20), 0, 0, 0, 0, 0],
            ),
        };
        // SAFETY: every pointer is into `buf` (on this thread's stack, 512 bytes, writes of at
        // most 8 bytes at `out` or reads of 256 bytes); the VMAR calls reach only the
        // playground, which no Rust code uses.
        unsafe {
            syscall8(
                nr,
                a[0] as usize,
                a[1] as usize,
                a[2] as usize,
                a[3] as usize,
                a[4] as usize,
                a[5] as usize,
                a[6] as usize,
                0,
            );
        }
    }
    zx::Thread::exit()
}

/// Starts [`racer`] on a stack of its own (mapped in the root VMAR, outside the playground).
fn start_racer(startup: &Startup, pg: u32, base: u64) -> Option<zx::Thread> {
    let stack = Vmo::create(RACER_STACK, 0).ok()?;
    let rw = ZX_VM_PERM_READ | ZX_VM_PERM_WRITE;
    let bottom = startup
        .root_vmar
        .map(rw, 0, &stack, 0, RACER_STACK as usize)
        .ok()?;
    let t = zx::Thread::create(&startup.process, b"racer", 0).ok()?;
    OWN_THREADS.insert(t.handle().raw());
    let top = bottom + RACER_STACK as usize - 8;
    let entry = racer as extern "C" fn(u64, u64) -> ! as usize;
    // SAFETY: `racer` shares only `STOP` (atomic) with this thread; its stack is a fresh mapping
    // nothing else uses.
    unsafe { t.start(entry, top, pg as usize, base as usize) }.ok()?;
    Some(t)
}

/// Most fuzzing threads per child (the main thread included); each reports its calls in its own
/// u64 of the counter VMO.
pub const MAX_FUZZ_THREADS: usize = 3;
/// Stack of an extra fuzzing thread.
const FUZZ_STACK: u64 = 32 * PAGE;

/// What a fuzzing thread starts from: handles of its process, its own thread and the counter.
#[derive(Clone, Copy)]
struct Env {
    process: u32,
    root: u32,
    thread: u32,
    counter: u32,
    seed: u64,
    calls: u64,
    slot: u64,
    verbose: bool,
}

/// A fuzzer with its own playground and scratch region (`None`: setup failed).
fn setup(env: &Env) -> Option<Fuzz> {
    let root = core::mem::ManuallyDrop::new(zx::Vmar::from(Handle::from_raw(env.root)));
    let all =
        ZX_VM_CAN_MAP_READ | ZX_VM_CAN_MAP_WRITE | ZX_VM_CAN_MAP_EXECUTE | ZX_VM_CAN_MAP_SPECIFIC;
    let (playground, pg_base) = root.allocate(all, 0, PLAYGROUND_SIZE as usize).ok()?;
    let rw = ZX_VM_PERM_READ | ZX_VM_PERM_WRITE;
    let (scratch, sc_base) = root
        .allocate(
            ZX_VM_CAN_MAP_READ | ZX_VM_CAN_MAP_WRITE | ZX_VM_CAN_MAP_SPECIFIC,
            0,
            SCRATCH_VMAR_SIZE as usize,
        )
        .ok()?;
    let sv = Vmo::create(SCRATCH_SIZE, 0).ok()?;
    let ro = Vmo::create(PAGE, 0).ok()?;
    scratch
        .map(rw | ZX_VM_SPECIFIC, 0, &sv, 0, SCRATCH_SIZE as usize)
        .ok()?;
    scratch
        .map(
            ZX_VM_PERM_READ | ZX_VM_SPECIFIC,
            RO_AT as usize,
            &ro,
            0,
            PAGE as usize,
        )
        .ok()?;
    // The scratch region's handle is never closed: the kernel writes through it until the end.
    core::mem::forget(scratch);
    let mut f = Fuzz {
        rng: mix(env.seed),
        pool: Vec::with_capacity(MAX_POOL + 1),
        vmars: Vec::new(),
        vmos: Vec::new(),
        threads: Vec::new(),
        channels: Vec::new(),
        exceptions: Vec::new(),
        maps: Vec::new(),
        closed: Vec::with_capacity(17),
        processes: Vec::with_capacity(MAX_PROCESSES + 1),
        playground: pg_base as u64,
        pg_handle: 0,
        scratch: sc_base as u64,
        own_process: env.process,
        own_root: env.root,
        own_thread: env.thread,
        counter: env.counter,
        slot: env.slot,
        calls: 0,
        ok: [0; 64],
    };
    // The playground and a couple of objects to start from.
    f.pg_handle = Handle::from(playground).into_raw();
    f.duplicate_playground();
    Some(f)
}

/// Runs `env.calls` calls on `f`, then kills the processes it created and checks the kernel's
/// invariants.
fn fuzz(f: &mut Fuzz, env: &Env) {
    while f.calls < env.calls {
        f.step();
        if f.calls.is_multiple_of(16) {
            f.report();
        }
    }
    // Kill every process created, so none outlives this child.
    for p in core::mem::take(&mut f.processes) {
        f.raw(ZX_SYS_TASK_KILL, [p as u64, 0, 0, 0, 0, 0, 0, 0]);
    }
    f.check_invariants();
    if env.verbose {
        zx::println!(
            "fuzz: child thread {}: successes per syscall number: {:?}",
            env.slot,
            &f.ok[..ZX_SYS_COUNT as usize]
        );
    }
    f.calls = f.calls.min(env.calls);
    f.calls -= 1; // `report` adds the call it is about to make.
    f.report();
}

/// Entry of an extra fuzzing thread: `arg1` points at its [`Env`] (copied at once).
extern "C" fn fuzz_thread(env: usize, _: usize) -> ! {
    // SAFETY: `env` points at an `Env` the main thread keeps alive until every extra thread has
    // reported that it copied it (`STARTED`).
    let env = unsafe { *(env as *const Env) };
    STARTED.fetch_add(1, core::sync::atomic::Ordering::SeqCst);
    if let Some(mut f) = setup(&env) {
        fuzz(&mut f, &env);
    }
    zx::Thread::exit()
}

/// Extra fuzzing threads that copied their [`Env`].
static STARTED: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

/// Starts an extra fuzzing thread on its own stack; returns its handle.
fn start_fuzz_thread(startup: &Startup, env: &mut Env) -> Option<zx::Thread> {
    let stack = Vmo::create(FUZZ_STACK, 0).ok()?;
    let rw = ZX_VM_PERM_READ | ZX_VM_PERM_WRITE;
    let bottom = startup
        .root_vmar
        .map(rw, 0, &stack, 0, FUZZ_STACK as usize)
        .ok()?;
    let t = zx::Thread::create(&startup.process, b"fuzz", 0).ok()?;
    env.thread = t.handle().raw();
    OWN_THREADS.insert(env.thread);
    let before = STARTED.load(core::sync::atomic::Ordering::SeqCst);
    let top = bottom + FUZZ_STACK as usize - 8;
    let entry = fuzz_thread as extern "C" fn(usize, usize) -> ! as usize;
    // SAFETY: the thread copies `*env` first (we wait below until it did) and then uses only its
    // own fuzzer (own playground, scratch and pool), the counter VMO word of its slot and
    // `STOP`/`STARTED` (atomics); its stack is a fresh mapping nothing else uses.
    unsafe { t.start(entry, top, env as *const Env as usize, 0) }.ok()?;
    let deadline = zx::clock_get_monotonic() + 10_000_000_000;
    while STARTED.load(core::sync::atomic::Ordering::SeqCst) == before {
        if zx::clock_get_monotonic() > deadline {
            // It never ran (killed or out of memory): do not let it read `env` later.
            let _ = t.kill();
            break;
        }
        let _ = startup.thread.handle().wait_one(
            abi::signals::ZX_THREAD_TERMINATED,
            zx::clock_get_monotonic() + 1_000_000,
        );
    }
    Some(t)
}

/// The child: `arg2 = seed << 20 | verbose << 19 | calls`, `arg1` = the counter VMO. Runs 1 to
/// [`MAX_FUZZ_THREADS`] fuzzing threads (each its own playground and pool, the calls split
/// between them), and in every other child a racer thread on the main fuzzer's playground.
pub fn run_child(startup: Startup) -> i64 {
    let calls = startup.arg2 & ((1 << 19) - 1);
    let verbose = startup.arg2 & (1 << 19) != 0;
    let seed = startup.arg2 >> 20;
    let threads = 1 + (mix(seed ^ 0x7472) % MAX_FUZZ_THREADS as u64);
    let mut env = Env {
        process: startup.process.handle().raw(),
        root: startup.root_vmar.raw_handle(),
        thread: startup.thread.handle().raw(),
        counter: startup.arg1.raw(),
        seed,
        calls: (calls / threads).max(1),
        slot: 0,
        verbose,
    };
    let Some(mut f) = setup(&env) else {
        return 3;
    };
    let mut extra = Vec::new();
    for slot in 1..threads {
        let mut e = Env {
            seed: mix(seed.wrapping_add(slot)),
            slot,
            ..env
        };
        if let Some(t) = start_fuzz_thread(&startup, &mut e) {
            extra.push(t);
        }
    }
    env.calls = calls - env.calls * (threads - 1).min(extra.len() as u64);
    // Every other child also races a second thread against the main one.
    let racer = if seed % 2 == 1 {
        start_racer(&startup, f.pg_handle, f.playground)
    } else {
        None
    };
    fuzz(&mut f, &env);
    STOP.store(true, core::sync::atomic::Ordering::Relaxed);
    let deadline = zx::clock_get_monotonic() + 60_000_000_000;
    for t in racer.iter().chain(extra.iter()) {
        let _ = t
            .handle()
            .wait_one(abi::signals::ZX_THREAD_TERMINATED, deadline);
    }
    f.check_invariants();
    0
}
