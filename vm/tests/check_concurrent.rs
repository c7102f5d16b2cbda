//! `AddressSpace::check_invariants` while operations of another address space run on another
//! thread (as the kernel's check of every live address space runs while other CPUs work): a map
//! of a shared VMO elsewhere holds a back-reference promise on it, and a decommit of that VMO
//! removes entries of this space under the VMO and MMU locks alone. Neither is a broken
//! invariant of this space, so the check must pass throughout.
mod common;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;

use common::*;
use vm::MmuFlags;

#[test]
fn check_passes_while_another_space_maps_and_decommits_a_shared_vmo() {
    let a = Fixture::new();
    let b = Fixture::new();
    let vmo = a.vmo(8);
    let (sub, base) = a.sub(8);
    a.map_at(&sub, 0, &vmo, 8);
    let stop = Arc::new(AtomicBool::new(false));
    let other = {
        let (stop, vmo) = (stop.clone(), vmo.clone());
        std::thread::spawn(move || {
            let (bsub, _) = b.sub(8);
            let mut rounds = 0u64;
            while !stop.load(SeqCst) {
                let at = b.map_at(&bsub, 0, &vmo, 8);
                b.touch(at, MmuFlags::WRITE).unwrap();
                vmo.decommit(0, (8 * PAGE) as u64).unwrap();
                bsub.unmap(at, 8 * PAGE, VMAR_RIGHTS).unwrap();
                rounds += 1;
            }
            rounds
        })
    };
    let start = std::time::Instant::now();
    let mut checks = 0u64;
    while start.elapsed() < std::time::Duration::from_secs(2) {
        for p in 0..8 {
            a.touch(base + p * PAGE, MmuFlags::WRITE).unwrap();
        }
        if let Err(e) = a.aspace.check_invariants() {
            stop.store(true, SeqCst);
            let _ = other.join();
            panic!("check {checks} failed while another space works on the VMO: {e}");
        }
        checks += 1;
    }
    stop.store(true, SeqCst);
    let rounds = other.join().unwrap();
    assert!(rounds > 0 && checks > 0, "{rounds} rounds, {checks} checks");
    a.aspace.check_invariants().unwrap();
}
