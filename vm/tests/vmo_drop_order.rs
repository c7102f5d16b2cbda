//! The address-space references a VMO walk upgrades are dropped after the VMO lock.
//!
//! A decommit, a shrink or a stepped decommit walks the VMO's mappings under the VMO lock and
//! upgrades each mapping's `Weak<AddressSpace>` to unmap its pages. When every other holder lets
//! go of the address space during that walk (a process dying on another CPU), the walk's
//! reference is the last: dropping it runs `AddressSpace::drop`, which locks each mapped VMO to
//! remove its back-references. Dropped under the walk's VMO lock, that is a self-deadlock.
//!
//! Each test builds exactly that interleaving on one thread: the only other reference sits in a
//! thread-local slot that the MMU empties from inside the walk's `unmap`. The call must return
//! (within a generous timeout; a deadlock spins forever) and the address space must be gone,
//! with its back-reference removed from the VMO.

mod common;

use std::cell::RefCell;
use std::sync::mpsc;
use std::sync::{Arc, Weak};
use std::time::Duration;

use abi::vm_options::*;
use abi::{Status, PAGE_SIZE};
use vm::soft_mmu::{SoftMmu, SoftPhysMem};
use vm::{AddressSpace, AspaceConfig, Mmu, MmuFlags, PhysAddr, PhysMem, SplitMix64, TlbFlush, Vmo};

const PAGE: u64 = PAGE_SIZE as u64;
const BASE: usize = 0x100_0000;
const LEN: usize = 1 << 30;

thread_local! {
    /// Per address space, the last reference but the walk's; each address space's MMU drops
    /// its own inside the walk's `unmap`.
    static OTHER_HOLDERS: RefCell<Vec<Option<Arc<AddressSpace>>>> = const { RefCell::new(Vec::new()) };
}

/// The software MMU, plus: every `unmap` lets go of the address space's [`OTHER_HOLDERS`] slot.
struct LettingGoMmu(Box<dyn Mmu>, usize);

impl Mmu for LettingGoMmu {
    fn map(&mut self, vaddr: usize, paddr: PhysAddr, flags: MmuFlags) -> Result<TlbFlush, Status> {
        self.0.map(vaddr, paddr, flags)
    }

    fn unmap(&mut self, vaddr: usize, page_count: usize) -> TlbFlush {
        let flush = self.0.unmap(vaddr, page_count);
        // Not the last reference: the walk holds one while it calls this.
        let mine = OTHER_HOLDERS.with(|h| h.borrow_mut().get_mut(self.1).and_then(Option::take));
        drop(mine);
        flush
    }

    fn protect(&mut self, vaddr: usize, page_count: usize, flags: MmuFlags) -> TlbFlush {
        self.0.protect(vaddr, page_count, flags)
    }

    fn query(&self, vaddr: usize) -> Option<(PhysAddr, MmuFlags)> {
        self.0.query(vaddr)
    }

    fn for_each_mapped(
        &self,
        vaddr: usize,
        page_count: usize,
        visit: &mut dyn FnMut(usize, PhysAddr, MmuFlags),
    ) {
        self.0.for_each_mapped(vaddr, page_count, visit)
    }

    fn flush(&mut self, flush: TlbFlush) {
        self.0.flush(flush)
    }
}

/// Maps a committed 4-page resizable VMO into `aspaces` fresh address spaces, each of whose only
/// strong reference is then its [`OTHER_HOLDERS`] slot; runs `op` on the VMO; checks every
/// address space is gone and the VMO kept no back-reference. Runs on its own thread: a deadlock
/// fails the test after the timeout instead of hanging the run.
fn last_reference_dropped_inside(what: &'static str, aspaces: usize, op: fn(&Vmo)) {
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let phys = SoftPhysMem::new(64);
        let shared: Arc<dyn PhysMem> = phys.clone();
        let vmo = Vmo::create(shared, 4 * PAGE, abi::vmo_options::ZX_VMO_RESIZABLE).unwrap();
        vmo.commit(0, 4 * PAGE).unwrap();
        let mut weak: Vec<Weak<AddressSpace>> = Vec::new();
        for i in 0..aspaces {
            let (soft, _probe) = SoftMmu::boxed();
            let aspace = AddressSpace::new(
                AspaceConfig::user(BASE, LEN),
                Box::new(LettingGoMmu(soft, i)),
                Box::new(SplitMix64::new(1)),
            )
            .unwrap();
            aspace
                .root_vmar()
                .map(
                    ZX_VM_PERM_READ | ZX_VM_PERM_WRITE | ZX_VM_MAP_RANGE | ZX_VM_ALLOW_FAULTS,
                    0,
                    &vmo,
                    0,
                    4 * PAGE_SIZE,
                    common::VMAR_RIGHTS,
                    common::VMO_RIGHTS,
                )
                .unwrap();
            weak.push(Arc::downgrade(&aspace));
            OTHER_HOLDERS.with(|h| h.borrow_mut().push(Some(aspace)));
        }
        op(&vmo);
        let alive = weak.iter().filter(|w| w.upgrade().is_some()).count();
        let backrefs = vmo.mapping_count();
        let _ = done_tx.send((alive, backrefs));
    });
    let (alive, backrefs) = match done_rx.recv_timeout(Duration::from_secs(20)) {
        Ok(result) => result,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!(
            "{what}: did not return (the last address-space reference was dropped under the VMO lock, which its drop takes again)"
        ),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what}: the test thread panicked"),
    };
    assert_eq!(
        alive, 0,
        "{what}: address spaces outlived the call (their slot's reference was not let go)"
    );
    assert_eq!(
        backrefs, 0,
        "{what}: the dropped address spaces left back-references in the VMO"
    );
}

#[test]
fn decommit_drops_the_last_aspace_reference_after_the_vmo_lock() {
    last_reference_dropped_inside("decommit", 1, |vmo| vmo.decommit(0, PAGE).unwrap());
}

#[test]
fn shrink_drops_the_last_aspace_reference_after_the_vmo_lock() {
    last_reference_dropped_inside("resize", 1, |vmo| vmo.resize(PAGE).unwrap());
}

#[test]
fn stepped_decommit_drops_the_last_aspace_reference_after_the_vmo_lock() {
    last_reference_dropped_inside("decommit_page_in_steps", 1, |vmo| {
        vmo.decommit_page_in_steps(0, 1, &mut || {}).unwrap()
    });
}

/// More address spaces than the walk keeps without the heap (8).
#[test]
fn decommit_over_twenty_dying_aspaces_drops_each_after_the_vmo_lock() {
    last_reference_dropped_inside("decommit x20", 20, |vmo| vmo.decommit(0, 2 * PAGE).unwrap());
}

/// One step would cover all twenty mappings; the walk ends a step early when its inline room
/// is full.
#[test]
fn stepped_decommit_over_twenty_dying_aspaces_drops_each_after_the_vmo_lock() {
    last_reference_dropped_inside("decommit_page_in_steps x20", 20, |vmo| {
        vmo.decommit_page_in_steps(1, 64, &mut || {}).unwrap()
    });
}
