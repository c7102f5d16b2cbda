//! Charging follows the caller (issue 10, item 7): a `victim` child that drives a kernel-wide
//! pool as far as the kernel lets it (unstarted threads spread over unstarted children of its
//! own; handles parked in channel queues) is refused at its own account's limit, while this
//! process (its parent) can still spawn, create threads, VMOs and channels. Killing the victim
//! gives everything back: the kernel's counters return to their baseline.

use abi::kstats;
use abi::rights::ZX_RIGHT_SAME_RIGHTS;
use abi::signals::{ZX_PROCESS_TERMINATED, ZX_THREAD_TERMINATED};
use abi::Status;
use alloc::vec::Vec;
use zx::process::spawn;
use zx::{println, Channel, Thread, Vmo};

use super::util::*;
use crate::harness::{Ctx, Failure, TestResult};

tests!(
    threads_spread_over_children_leave_the_parent_its_share,
    handles_parked_in_channels_leave_the_parent_its_share,
);

/// `victim` cases (user/victim): `SPREAD_THREADS`, `PARK_HANDLES`, and the mailbox flag.
const VICTIM_SPREAD_THREADS: u64 = 52;
const VICTIM_PARK_HANDLES: u64 = 53;
const QUOTA_DONE: u64 = 1 << 63;

/// Spawns `victim` with `case` and a mailbox VMO; waits until it reports (count, status) and
/// returns them with the child, which keeps what it made until killed.
fn run_victim(ctx: &Ctx, case: u64) -> Result<(zx::process::Child, u64, Status), Failure> {
    let mailbox = vmo(1)?;
    let theirs = check!(mailbox.handle().duplicate(ZX_RIGHT_SAME_RIGHTS));
    let child = match spawn(&ctx.ramdisk, "victim", theirs, case) {
        Ok(c) => c,
        Err(e) => fail!("spawn victim: {e}"),
    };
    let deadline = zx::clock_get_monotonic() + 120_000_000_000;
    loop {
        let mut word = [0u8; 16];
        check!(mailbox.read(&mut word, 0));
        let count = u64::from_le_bytes(word[..8].try_into().unwrap_or_default());
        if count & QUOTA_DONE != 0 {
            let status = i64::from_le_bytes(word[8..].try_into().unwrap_or_default());
            return Ok((child, count & !QUOTA_DONE, Status::from_raw(status as i32)));
        }
        let soon = zx::clock_get_monotonic() + 10_000_000;
        if child
            .process
            .handle()
            .wait_one(ZX_PROCESS_TERMINATED, soon)
            .is_ok()
        {
            fail!(
                "the victim died before reporting: {:?}",
                child.process.info()
            );
        }
        ensure!(
            zx::clock_get_monotonic() < deadline,
            "the victim did not report within 120 s"
        );
    }
}

/// Runs `victim` (exit 0) and `child` once before the baseline, so the pages of their images
/// the ramdisk VMO commits on first use are not counted as a leak.
fn warm_up(ctx: &Ctx) -> TestResult {
    ensure_eq!(ctx.run_victim(0)?, 0);
    ensure_eq!(check!(ctx.spawn("child", 0)?.wait()), 0);
    Ok(())
}

/// Kills `child`, waits for it, and checks the counters return to `before` (a dead thread's
/// kernel stack is reaped a moment later, so it waits a little for them).
fn kill_and_check(
    ctx: &Ctx,
    child: zx::process::Child,
    before: &[u64; kstats::COUNT],
) -> TestResult {
    check!(child.process.kill());
    check!(child
        .process
        .handle()
        .wait_one(ZX_PROCESS_TERMINATED, i64::MAX));
    drop(child);
    let names = [
        "free frames",
        "page-table pages",
        "kernel stacks",
        "handles",
        "processes",
    ];
    let mut after = check!(zx::leak_check_stats());
    for _ in 0..100 {
        if after[..names.len()] == before[..names.len()] {
            break;
        }
        let _ = ctx
            .thread
            .handle()
            .wait_one(ZX_THREAD_TERMINATED, zx::clock_get_monotonic() + 10_000_000);
        after = check!(zx::leak_check_stats());
    }
    if after[..names.len()] != before[..names.len()] {
        fail!(
            "counters {names:?}: {:?} before, {:?} after",
            &before[..names.len()],
            &after[..names.len()]
        );
    }
    ensure_eq!(after[kstats::INVARIANT_FAILURES], 0);
    Ok(())
}

/// Reproduction (a): the victim creates unstarted children and unstarted threads in them
/// (charged to the victim, the creator, not to the children) until refused with
/// `ZX_ERR_NO_RESOURCES` at its own thread budget, half of what this process had left; this
/// process can then still spawn a child that runs, and create 100 threads of its own.
fn threads_spread_over_children_leave_the_parent_its_share(ctx: &Ctx) -> TestResult {
    warm_up(ctx)?;
    let before = check!(zx::leak_check_stats());
    let (victim, threads, status) = run_victim(ctx, VICTIM_SPREAD_THREADS)?;
    let stacks = check!(zx::debug_kernel_stats())[kstats::KERNEL_STACKS];
    println!(
        "quota: the victim created {threads} threads in unstarted children, then {status:?}; kernel stacks in use {stacks}"
    );
    ensure_eq!(status, Status::ERR_NO_RESOURCES);
    ensure!(threads >= 64, "the victim got only {threads} threads");
    // This process still has its share: a child runs, and threads can be created here.
    let spawned = match ctx.spawn("child", 5) {
        Ok(c) => c.wait(),
        Err(e) => {
            drop(kill_and_check(ctx, victim, &before));
            return Err(e);
        }
    };
    let mut own = Vec::new();
    let mut refused = None;
    while own.len() < 100 {
        match Thread::create(&ctx.process, b"mine", 0) {
            Ok(t) => own.push(t),
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let created = own.len();
    drop(own);
    kill_and_check(ctx, victim, &before)?;
    ensure_eq!(check!(spawned), 5);
    ensure!(
        created == 100,
        "this process created {created} threads while the victim held its share, then {refused:?}"
    );
    Ok(())
}

/// Reproduction (b): the victim parks duplicated handles in channel queues (64 per message, a
/// new channel whenever a queue is full; queued handles stay charged to the writer) until a
/// duplicate is refused with `ZX_ERR_NO_RESOURCES` at its own handle budget, half of what this
/// process had left; this process can then still create VMOs, channels and 1000 handles.
fn handles_parked_in_channels_leave_the_parent_its_share(ctx: &Ctx) -> TestResult {
    warm_up(ctx)?;
    let before = check!(zx::leak_check_stats());
    let (victim, parked, status) = run_victim(ctx, VICTIM_PARK_HANDLES)?;
    let handles = check!(zx::debug_kernel_stats())[kstats::HANDLES];
    let mine = (|| -> Result<(), Status> {
        let v = Vmo::create(4096, 0)?;
        let (a, b) = Channel::create(0)?;
        let mut dups = Vec::new();
        for _ in 0..1000 {
            dups.push(v.handle().duplicate(ZX_RIGHT_SAME_RIGHTS)?);
        }
        a.write(b"still works", Vec::new())?;
        b.read().map(drop)
    })();
    println!(
        "quota: the victim parked {parked} handles in channel queues, then {status:?}; live handles {handles}; this process's VMO, channel and 1000 duplicates: {mine:?}"
    );
    kill_and_check(ctx, victim, &before)?;
    ensure_eq!(status, Status::ERR_NO_RESOURCES);
    ensure!(
        parked >= 16 * 1024,
        "the victim parked only {parked} handles"
    );
    ensure_eq!(mine, Ok(()));
    Ok(())
}
