//! ktests of the x86_64 MMU under the real VM: page-table bits, mappings reached through user
//! addresses from ring 0 (fault-safe copies, SMAP-bracketed), demand faults through the hook,
//! protect/unmap/decommit invalidating a warm TLB, out-of-frames behaviour, and exact
//! page-table and frame accounting.

use super::*;
use crate::frame_alloc;
use abi::vm_options::*;
use alloc::vec::Vec;
use arch::extable::{copy_from_user, copy_to_user, CopyError, USER_END};
use arch::paging::{kernel_root_phys, leaf_entry, live_table_pages, pte, tlb_stats};
use arch::trap::FaultAccess;
use ktest::{ensure, ensure_eq, ktest, Failure};
use vm::{FlushScope, Mmu, MmuFlags, PhysAddr, PhysMem, SplitMix64, Vmar, Vmo, ALL_RIGHTS};

/// `expr?` for `Result<_, Status>`, failing the test with the expression and the status.
macro_rules! check {
    ($e:expr) => {
        $e.map_err(|s| {
            Failure::new(
                alloc::format!("{} -> {:?}", stringify!($e), s),
                file!(),
                line!(),
            )
        })?
    };
}

macro_rules! fail {
    ($($arg:tt)+) => {
        Failure::new(alloc::format!($($arg)+), file!(), line!())
    };
}

const PAGE: usize = 4096;
const R: u32 = ZX_VM_PERM_READ;
const RW: u32 = ZX_VM_PERM_READ | ZX_VM_PERM_WRITE;
const URW: MmuFlags = MmuFlags::READ.union(MmuFlags::WRITE).union(MmuFlags::USER);
const UR: MmuFlags = MmuFlags::READ.union(MmuFlags::USER);
const LEAF_BITS: u64 = pte::PRESENT | pte::WRITABLE | pte::USER | pte::NO_EXECUTE;

/// A user address space made current for one test; the kernel table is current again when it
/// drops (also when a check fails half-way).
struct Current {
    aspace: Arc<AddressSpace>,
    root: u64,
}

impl Current {
    fn new() -> Result<Current, Failure> {
        let user = check!(new_user_aspace(Box::new(SplitMix64::new(0x5eed))));
        let (aspace, root) = (user.aspace.clone(), user.root);
        drop(switch_aspace(Some(user)));
        ensure_eq!(arch::paging::active_root_phys(), root);
        Ok(Current { aspace, root })
    }

    fn vmar(&self) -> Vmar {
        self.aspace.root_vmar()
    }
}

impl Drop for Current {
    fn drop(&mut self) {
        drop(switch_aspace(None));
    }
}

/// Loads a bare `X86Mmu` root into CR3 until dropped.
struct Activated;

impl Activated {
    fn new(root: u64) -> Activated {
        arch::paging::activate(root);
        Activated
    }
}

impl Drop for Activated {
    fn drop(&mut self) {
        arch::paging::activate(kernel_root_phys());
    }
}

/// Takes frames from the allocator until only `left` are free; gives them back on drop.
struct Hoard(Vec<Frame>);

/// Frames user-space allocations can still take (free ones beyond the kernel reserve).
fn user_free() -> u64 {
    frame_alloc::stats()
        .free
        .saturating_sub(frame_alloc::reserve())
}

impl Hoard {
    /// Takes frames until only `left` are available to user-space allocations (the kernel
    /// reserve stays free for the heap).
    fn leave(left: u64) -> Hoard {
        let mut frames = Vec::with_capacity(frame_alloc::stats().free as usize);
        while user_free() > left {
            match frame_alloc::alloc() {
                Some(f) => frames.push(f),
                None => break,
            }
        }
        Hoard(frames)
    }
}

impl Drop for Hoard {
    fn drop(&mut self) {
        for f in self.0.drain(..) {
            frame_alloc::free(f).expect("hoarded frame");
        }
    }
}

/// Frame and page-table counters to compare against after a test.
#[derive(Debug, PartialEq, Eq)]
struct Counts {
    free_frames: usize,
    table_pages: usize,
    data_frames: usize,
}

fn counts() -> Counts {
    let phys = arch::paging::direct_phys_mem();
    Counts {
        // Frames the heap holds in between are not a leak: count them with the free ones.
        free_frames: phys.free_frames() + crate::heap::frames() as usize,
        table_pages: live_table_pages(),
        data_frames: phys.count(arch::paging::FrameKind::Data),
    }
}

fn read_user(addr: usize, len: usize) -> Result<Vec<u8>, CopyError> {
    let mut buf = alloc::vec![0u8; len];
    copy_from_user(&mut buf, addr as u64).map(|()| buf)
}

fn leaf(root: u64, addr: usize) -> Result<u64, Failure> {
    leaf_entry(root, addr as u64).ok_or_else(|| fail!("no page-table entry for {addr:#x}"))
}

ktest! {
    fn features_enabled() {
        let f = arch::paging::features();
        ensure!(f.nx, "NX must be on");
        let cr4 = x86_64::registers::control::Cr4::read_raw();
        ensure_eq!(cr4 & (1 << 20) != 0, f.smep);
        ensure_eq!(cr4 & (1 << 21) != 0, f.smap);
        let efer = x86_64::registers::model_specific::Efer::read_raw();
        ensure!(efer & (1 << 11) != 0, "EFER.NXE is off");
        // The boot tool runs TCG with `-cpu qemu64,+smep,+smap`: both must be on there.
        if !boot_uses_kvm() {
            ensure!(f.smep && f.smap, "SMEP/SMAP expected under TCG: {:?}", f);
        }
        Ok(())
    }
}

/// KVM guests see the host CPU's features; TCG (our default) sees the `-cpu` we pass.
fn boot_uses_kvm() -> bool {
    let leaf = core::arch::x86_64::__cpuid(0x4000_0000);
    // "KVMKVMKVM\0\0\0" in ebx, ecx, edx.
    leaf.ebx == 0x4b4d_564b && leaf.ecx == 0x564b_4d56 && leaf.edx == 0x4d
}

ktest! {
    fn phys_mem_counts_the_holders_of_a_shared_frame() {
        let phys = arch::paging::phys_mem();
        let free = phys.free_frames();
        let frame = check!(phys.alloc_zeroed());
        ensure!(!phys.is_shared(frame));
        ensure_eq!(phys.holders(frame), 1);
        phys.share(frame);
        ensure!(phys.is_shared(frame), "two holders");
        ensure_eq!(phys.holders(frame), 2);
        phys.share(frame);
        ensure_eq!(phys.holders(frame), 3);
        ensure!(!phys.release(frame), "two holders left");
        ensure!(phys.is_shared(frame), "two holders left");
        ensure_eq!(phys.holders(frame), 2);
        ensure!(!phys.release(frame), "one holder left");
        ensure!(!phys.is_shared(frame), "one holder left");
        ensure_eq!(phys.holders(frame), 1);
        ensure_eq!(phys.free_frames(), free - 1);
        ensure!(phys.release(frame), "the last holder frees");
        ensure_eq!(phys.free_frames(), free);
        Ok(())
    }
}

ktest! {
    fn x86mmu_map_query_protect_unmap() {
        let phys = arch::paging::phys_mem();
        let before = counts();
        let mut mmu = check!(X86Mmu::new_user(phys.clone()));
        ensure_eq!(live_table_pages(), before.table_pages + 1);
        ensure_eq!(mmu.table_pages(), 1);
        let frame = check!(phys.alloc_zeroed());
        let va = 0x0000_1234_5678_9000usize;
        let t = check!(mmu.map(va, frame, URW));
        ensure_eq!(t.scope(), FlushScope::Nothing); // a new entry: nothing cached to invalidate
        mmu.flush(t);
        ensure_eq!(mmu.table_pages(), 4); // PML4 + PDPT + PD + PT
        ensure_eq!(mmu.mapped_pages(), 1);
        ensure_eq!(mmu.query(va), Some((frame, URW)));
        ensure_eq!(mmu.query(va + 0x123), Some((frame, URW)));
        ensure_eq!(mmu.query(va + PAGE), None);
        let e = leaf(mmu.root_phys(), va)?;
        ensure_eq!(e & LEAF_BITS, LEAF_BITS); // P W U NX
        ensure_eq!(e & pte::ADDR_MASK, frame.0);
        // Protect to read+execute: W and NX cleared.
        let t = mmu.protect(va, 1, UR | MmuFlags::EXECUTE);
        ensure!(t.scope() != FlushScope::Nothing);
        mmu.flush(t);
        ensure_eq!(leaf(mmu.root_phys(), va)? & LEAF_BITS, pte::PRESENT | pte::USER);
        ensure_eq!(mmu.query(va), Some((frame, UR | MmuFlags::EXECUTE)));
        // Protecting to the same flags changes nothing and needs no flush.
        let t = mmu.protect(va, 1, UR | MmuFlags::EXECUTE);
        ensure_eq!(t.scope(), FlushScope::Nothing);
        mmu.flush(t);
        // Refusals: kernel half, unaligned, no permissions, frames that are not VMO data.
        let bad = Err(Status::ERR_INVALID_ARGS);
        ensure_eq!(mmu.map(0xffff_8000_0000_0000, frame, UR), bad);
        ensure_eq!(mmu.map(USER_END as usize, frame, UR), bad);
        ensure_eq!(mmu.map(va + PAGE + 1, frame, UR), bad);
        ensure_eq!(mmu.map(va + PAGE, frame, MmuFlags::USER), bad);
        ensure_eq!(mmu.map(va + PAGE, PhysAddr(mmu.root_phys()), UR), bad);
        ensure_eq!(mmu.map(va + PAGE, PhysAddr(0x1000), UR), bad);
        ensure_eq!(mmu.table_pages(), 4);
        // The kernel half is the boot table's: same translation of a kernel address.
        let kaddr = &before as *const Counts as u64;
        ensure!(leaf_entry(kernel_root_phys(), kaddr).is_some());
        ensure_eq!(leaf_entry(mmu.root_phys(), kaddr), leaf_entry(kernel_root_phys(), kaddr));
        // Unmap the whole user half: cost follows the present tables, and they are all freed.
        let t = mmu.unmap(0, (USER_END as usize) / PAGE);
        ensure!(t.scope() != FlushScope::Nothing);
        mmu.flush(t);
        ensure_eq!(mmu.query(va), None);
        ensure_eq!(mmu.mapped_pages(), 0);
        ensure_eq!(mmu.table_pages(), 1);
        ensure_eq!(live_table_pages(), before.table_pages + 1);
        let t = mmu.unmap(0, (USER_END as usize) / PAGE);
        ensure_eq!(t.scope(), FlushScope::Nothing);
        mmu.flush(t);
        // Kernel-half requests are clipped away.
        let t = mmu.unmap(0xffff_8000_0000_0000, 16);
        ensure_eq!(t.scope(), FlushScope::Nothing);
        mmu.flush(t);
        drop(mmu);
        phys.free(frame);
        ensure_eq!(counts(), before);
        Ok(())
    }
}

ktest! {
    fn x86mmu_rejects_foreign_phys_mem() {
        let soft: Arc<dyn PhysMem> = vm::soft_mmu::SoftPhysMem::new(4);
        ensure_eq!(X86Mmu::new_user(soft).err(), Some(Status::ERR_INVALID_ARGS));
        Ok(())
    }
}

ktest! {
    fn x86mmu_out_of_frames_changes_nothing() {
        let phys = arch::paging::phys_mem();
        let before = counts();
        let frame = check!(phys.alloc_zeroed());
        let mut mmu = check!(X86Mmu::new_user(phys.clone()));
        let va = 0x0000_0040_0000_0000usize;
        for left in 0..3 {
            let hoard = Hoard::leave(left);
            ensure_eq!(user_free(), left);
            ensure_eq!(mmu.map(va, frame, URW), Err(Status::ERR_NO_MEMORY));
            // The tables allocated before the failure went back; nothing was linked.
            ensure_eq!(user_free(), left);
            ensure_eq!(mmu.table_pages(), 1);
            ensure_eq!(mmu.query(va), None);
            drop(hoard);
        }
        {
            let _hoard = Hoard::leave(3);
            let t = check!(mmu.map(va, frame, URW));
            mmu.flush(t);
            ensure_eq!(user_free(), 0);
            ensure_eq!(mmu.table_pages(), 4);
            // Same PT: needs no frame at all.
            let t = check!(mmu.map(va + PAGE, frame, UR));
            mmu.flush(t);
            ensure_eq!(mmu.mapped_pages(), 2);
        }
        drop(mmu);
        phys.free(frame);
        ensure_eq!(counts(), before);
        Ok(())
    }
}

ktest! {
    fn map_range_reads_and_writes_through_user_address() {
        let before = counts();
        {
            let cur = Current::new()?;
            let len = 3 * PAGE;
            let vmo = check!(Vmo::create(arch::paging::phys_mem(), len as u64, 0));
            let pattern: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            check!(vmo.write(0, &pattern));
            ensure_eq!(vmo.committed_page_count(), 3);
            let addr = check!(cur.vmar().map(
                RW | ZX_VM_MAP_RANGE, 0, &vmo, 0, len, ALL_RIGHTS, ALL_RIGHTS
            ));
            ensure!(addr >= arch::paging::USER_ASPACE_BASE as usize);
            // MAP_RANGE installed every committed page up front.
            for p in 0..3 {
                let q = cur.aspace.query(addr + p * PAGE);
                ensure_eq!(q, Some((vmo.frame_of(p as u64).ok_or_else(|| fail!("frame"))?, URW)));
                let e = leaf(cur.root, addr + p * PAGE)?;
                ensure_eq!(e & LEAF_BITS, LEAF_BITS);
            }
            ensure_eq!(read_user(addr, len), Ok(pattern.clone()));
            ensure_eq!(copy_to_user((addr + PAGE + 100) as u64, b"ring 0 via a user va"), Ok(()));
            let mut back = [0u8; 20];
            check!(vmo.read(PAGE as u64 + 100, &mut back));
            ensure_eq!(&back, b"ring 0 via a user va");
            ensure_eq!(vmo.committed_page_count(), 3);
            // An executable mapping has no NX bit.
            let rx = check!(cur.vmar().map(
                R | ZX_VM_PERM_EXECUTE | ZX_VM_MAP_RANGE, 0, &vmo, 0, PAGE, ALL_RIGHTS, ALL_RIGHTS
            ));
            ensure_eq!(leaf(cur.root, rx)? & LEAF_BITS, pte::PRESENT | pte::USER);
        }
        ensure_eq!(counts(), before);
        Ok(())
    }
}

ktest! {
    fn demand_faults_commit_on_write_and_map_the_zero_page_on_read() {
        let before = counts();
        {
            let cur = Current::new()?;
            let vmo = check!(Vmo::create(arch::paging::phys_mem(), 4 * PAGE as u64, 0));
            let addr = check!(cur.vmar().map(RW, 0, &vmo, 0, 4 * PAGE, ALL_RIGHTS, ALL_RIGHTS));
            ensure_eq!(vmo.committed_page_count(), 0);
            ensure_eq!(cur.aspace.query(addr + 2 * PAGE), None);
            let tables = live_table_pages();
            // A write fault from ring 0 (inside copy_to_user) goes through the hook.
            ensure_eq!(copy_to_user((addr + 2 * PAGE + 8) as u64, &[0xC3; 16]), Ok(()));
            ensure_eq!(vmo.committed_page_count(), 1);
            ensure!(live_table_pages() > tables, "the fault created no page tables");
            ensure_eq!(cur.aspace.query(addr + 2 * PAGE).map(|(_, f)| f), Some(URW));
            let mut got = [0u8; 16];
            check!(vmo.read(2 * PAGE as u64 + 8, &mut got));
            ensure_eq!(got, [0xC3; 16]);
            // A read fault maps the shared zero page read-only and commits nothing; a copy
            // spanning two pages faults twice.
            ensure_eq!(read_user(addr + PAGE - 8, 16), Ok(alloc::vec![0; 16]));
            ensure_eq!(vmo.committed_page_count(), 1);
            let zero = arch::paging::phys_mem().zero_frame();
            ensure_eq!(cur.aspace.query(addr), Some((zero, UR)));
            ensure_eq!(cur.aspace.query(addr + PAGE), Some((zero, UR)));
            ensure_eq!(frame_alloc::stats().free as usize + crate::heap::frames() as usize, before.free_frames - 1 - (live_table_pages() - before.table_pages));
            // A ring-0 write over the zero page faults (CR0.WP) and commits the page; the zero
            // frame stays zeros.
            ensure_eq!(copy_to_user((addr + 8) as u64, &[7; 8]), Ok(()));
            ensure_eq!(vmo.committed_page_count(), 2);
            let frame = vmo.frame_of(0);
            ensure!(frame.is_some() && frame != Some(zero), "page 0 not committed");
            ensure_eq!(cur.aspace.query(addr).map(|(_, f)| f), Some(URW));
            ensure_eq!(read_user(addr + 8, 8), Ok(alloc::vec![7; 8]));
            let mut contents = alloc::vec![0xffu8; PAGE];
            arch::paging::phys_mem().read(zero, 0, &mut contents);
            ensure!(contents.iter().all(|&b| b == 0), "the zero frame was written");
        }
        ensure_eq!(counts(), before);
        Ok(())
    }
}

/// The last fault the recording hook saw, with the real hook's answer.
static SEEN: Mutex<Option<(PageFaultInfo, Result<(), Status>)>> = Mutex::new(None);

fn recording_hook(info: &PageFaultInfo) -> Result<(), Status> {
    let r = page_fault_hook(info);
    *SEEN.lock() = Some((*info, r));
    r
}

ktest! {
    fn unmapped_address_faults_cleanly() {
        let cur = Current::new()?;
        let vmo = check!(Vmo::create(arch::paging::phys_mem(), PAGE as u64, 0));
        let addr = check!(cur.vmar().map(R, 0, &vmo, 0, PAGE, ALL_RIGHTS, ALL_RIGHTS));
        let hole = addr + 16 * PAGE;
        let prev = arch::trap::set_page_fault_hook(Some(recording_hook));
        let r1 = copy_to_user(hole as u64 + 5, b"xyz");
        let seen1 = SEEN.lock().take();
        let r2 = copy_to_user(addr as u64, b"ro"); // read-only mapping
        let seen2 = SEEN.lock().take();
        let r3 = read_user(addr, 8);
        arch::trap::set_page_fault_hook(prev);
        ensure_eq!(r1, Err(CopyError::Fault { remaining: 3 }));
        let (info, result) = seen1.ok_or_else(|| fail!("the hook was not called"))?;
        ensure_eq!(result, Err(Status::ERR_NOT_FOUND));
        ensure_eq!(info.vaddr, hole as u64 + 5);
        ensure_eq!(info.access, FaultAccess::Write);
        ensure!(!info.user_mode && !info.protection);
        ensure_eq!(info.mmu_access(), MmuFlags::WRITE);
        // Writing a read-only mapping: first a not-present fault (nothing committed yet), which
        // the VM refuses for a write.
        ensure_eq!(r2, Err(CopyError::Fault { remaining: 2 }));
        ensure_eq!(seen2.map(|s| s.1), Some(Err(Status::ERR_ACCESS_DENIED)));
        ensure_eq!(r3, Ok(alloc::vec![0; 8]));
        // Kernel addresses are refused before any access.
        let mut b = [0u8; 4];
        ensure_eq!(copy_from_user(&mut b, 0xffff_8000_0000_0000), Err(CopyError::NotUser));
        Ok(())
    }
}

ktest! {
    fn copies_that_run_into_a_hole_stop_at_its_first_byte() {
        // Two pages mapped, the second unmapped: a copy of `len` bytes starting `back` bytes
        // before the hole copies exactly `back` bytes and reports the rest, wherever in the
        // copy routine's 32-byte blocks (loads or stores) or its byte tail the fault lands.
        let before = counts();
        {
            let cur = Current::new()?;
            let vmo = check!(Vmo::create(arch::paging::phys_mem(), 2 * PAGE as u64, 0));
            let addr = check!(cur.vmar().map(RW, 0, &vmo, 0, 2 * PAGE, ALL_RIGHTS, ALL_RIGHTS));
            check!(cur.vmar().unmap(addr + PAGE, PAGE, ALL_RIGHTS));
            let hole = (addr + PAGE) as u64;
            let pattern: Vec<u8> = (0..200u32).map(|i| (i * 7 + 3) as u8).collect();
            for len in [1usize, 31, 32, 33, 64, 100, 200] {
                for back in 0..len.min(70) {
                    let start = hole - back as u64;
                    ensure_eq!(copy_to_user(addr as u64, &[0u8; PAGE]), Ok(()));
                    let r = copy_to_user(start, &pattern[..len]);
                    ensure!(r == Err(CopyError::Fault { remaining: len - back }), "to user: len {len}, {back} before the hole: {r:?}");
                    let page = read_user(addr, PAGE).map_err(|e| fail!("{e:?}"))?;
                    ensure!(page[PAGE - back..] == pattern[..back], "to user: len {len}, {back} before the hole: wrong bytes");
                    ensure!(page[..PAGE - back].iter().all(|&b| b == 0), "to user wrote before its start");
                    let mut buf = alloc::vec![0xEEu8; len];
                    let r = copy_from_user(&mut buf, start);
                    ensure!(r == Err(CopyError::Fault { remaining: len - back }), "from user: len {len}, {back} before the hole: {r:?}");
                    ensure_eq!(&buf[..back], &pattern[..back]);
                    ensure!(buf[back..].iter().all(|&b| b == 0xEE), "from user wrote past the hole: len {len}, {back} before it");
                }
            }
        }
        ensure_eq!(counts(), before);
        Ok(())
    }
}

ktest! {
    fn protect_read_only_invalidates_warm_tlb() {
        let before = counts();
        {
            let cur = Current::new()?;
            let vmo = check!(Vmo::create(arch::paging::phys_mem(), 2 * PAGE as u64, 0));
            let addr = check!(cur.vmar().map(RW, 0, &vmo, 0, 2 * PAGE, ALL_RIGHTS, ALL_RIGHTS));
            // Warm the TLB with a writable translation of both pages.
            ensure_eq!(copy_to_user(addr as u64, &[1; 2 * PAGE]), Ok(()));
            ensure_eq!(copy_to_user(addr as u64, &[2; 2 * PAGE]), Ok(()));
            let (invlpg0, _) = tlb_stats();
            check!(cur.vmar().protect(R, addr, 2 * PAGE, ALL_RIGHTS));
            ensure!(tlb_stats().0 >= invlpg0 + 2, "protect issued no invlpg");
            ensure_eq!(cur.aspace.query(addr).map(|(_, f)| f), Some(UR));
            ensure_eq!(leaf(cur.root, addr)? & LEAF_BITS, pte::PRESENT | pte::USER | pte::NO_EXECUTE);
            // The write must fault now: a stale writable TLB entry would let it through.
            ensure_eq!(copy_to_user(addr as u64 + 10, &[3; 4]), Err(CopyError::Fault { remaining: 4 }));
            ensure_eq!(copy_to_user(addr as u64 + PAGE as u64, &[3; 4]), Err(CopyError::Fault { remaining: 4 }));
            ensure_eq!(read_user(addr + 8, 4), Ok(alloc::vec![2; 4]));
            // And back to writable.
            check!(cur.vmar().protect(RW, addr, PAGE, ALL_RIGHTS));
            ensure_eq!(copy_to_user(addr as u64 + 10, &[4; 4]), Ok(()));
            ensure_eq!(read_user(addr + 8, 8), Ok(alloc::vec![2, 2, 4, 4, 4, 4, 2, 2]));
            ensure_eq!(copy_to_user(addr as u64 + PAGE as u64, &[3; 4]), Err(CopyError::Fault { remaining: 4 }));
        }
        ensure_eq!(counts(), before);
        Ok(())
    }
}

ktest! {
    fn unmap_invalidates_warm_tlb_and_frees_tables() {
        let before = counts();
        {
            let cur = Current::new()?;
            let vmo = check!(Vmo::create(arch::paging::phys_mem(), 3 * PAGE as u64, 0));
            let addr = check!(cur.vmar().map(RW, 0, &vmo, 0, 3 * PAGE, ALL_RIGHTS, ALL_RIGHTS));
            ensure_eq!(copy_to_user(addr as u64, &[7; 3 * PAGE]), Ok(()));
            ensure_eq!(read_user(addr, 3 * PAGE), Ok(alloc::vec![7; 3 * PAGE]));
            ensure!(live_table_pages() > before.table_pages + 1);
            // Unmap the middle page: only it faults.
            check!(cur.vmar().unmap(addr + PAGE, PAGE, ALL_RIGHTS));
            ensure_eq!(read_user(addr + PAGE, 1), Err(CopyError::Fault { remaining: 1 }));
            ensure_eq!(read_user(addr, PAGE), Ok(alloc::vec![7; PAGE]));
            ensure_eq!(read_user(addr + 2 * PAGE, PAGE), Ok(alloc::vec![7; PAGE]));
            // Unmap the rest: every access faults, and the now empty tables are gone.
            check!(cur.vmar().unmap(addr, 3 * PAGE, ALL_RIGHTS));
            ensure_eq!(read_user(addr, 1), Err(CopyError::Fault { remaining: 1 }));
            ensure_eq!(copy_to_user(addr as u64 + 2 * PAGE as u64, &[1]), Err(CopyError::Fault { remaining: 1 }));
            ensure_eq!(live_table_pages(), before.table_pages + 1);
        }
        ensure_eq!(counts(), before);
        Ok(())
    }
}

ktest! {
    fn decommit_invalidates_warm_tlb() {
        let cur = Current::new()?;
        let vmo = check!(Vmo::create(arch::paging::phys_mem(), PAGE as u64, 0));
        let addr = check!(cur.vmar().map(RW, 0, &vmo, 0, PAGE, ALL_RIGHTS, ALL_RIGHTS));
        ensure_eq!(copy_to_user(addr as u64, &[0xAB; 64]), Ok(()));
        ensure_eq!(read_user(addr, 64), Ok(alloc::vec![0xAB; 64]));
        check!(vmo.decommit(0, PAGE as u64));
        ensure_eq!(cur.aspace.query(addr), None);
        // A stale entry would still show the old frame's 0xAB; a fresh fault shows zeros.
        ensure_eq!(read_user(addr, 64), Ok(alloc::vec![0; 64]));
        Ok(())
    }
}

ktest! {
    fn large_protect_flushes_everything() {
        let before = counts();
        {
            let cur = Current::new()?;
            let pages = vm::arch_traits::FLUSH_ALL_THRESHOLD_PAGES + 8;
            let len = pages * PAGE;
            let vmo = check!(Vmo::create(arch::paging::phys_mem(), len as u64, 0));
            check!(vmo.commit(0, len as u64));
            let addr = check!(cur.vmar().map(RW | ZX_VM_MAP_RANGE, 0, &vmo, 0, len, ALL_RIGHTS, ALL_RIGHTS));
            for p in 0..pages {
                ensure_eq!(copy_to_user((addr + p * PAGE) as u64, &[p as u8; 8]), Ok(()));
            }
            let (_, full0) = tlb_stats();
            check!(cur.vmar().protect(R, addr, len, ALL_RIGHTS));
            ensure_eq!(tlb_stats().1, full0 + 1);
            for p in 0..pages {
                ensure_eq!(copy_to_user((addr + p * PAGE) as u64, &[0xFF]), Err(CopyError::Fault { remaining: 1 }));
                ensure_eq!(read_user(addr + p * PAGE, 8), Ok(alloc::vec![p as u8; 8]));
            }
        }
        ensure_eq!(counts(), before);
        Ok(())
    }
}

ktest! {
    fn page_tables_and_frames_return_to_baseline() {
        let before = counts();
        let vmo = check!(Vmo::create(arch::paging::phys_mem(), PAGE as u64, 0));
        let cur = Current::new()?;
        let base = arch::paging::USER_ASPACE_BASE as usize;
        // Three mappings under three different PML4 entries: 3 tables each.
        let offsets = [0usize, 1 << 40, 64 << 40];
        for &off in &offsets {
            let a = check!(cur.vmar().map(RW | ZX_VM_SPECIFIC, off, &vmo, 0, PAGE, ALL_RIGHTS, ALL_RIGHTS));
            ensure_eq!(a, base + off);
            ensure_eq!(copy_to_user(a as u64, &[9]), Ok(()));
        }
        ensure_eq!(live_table_pages(), before.table_pages + 1 + 3 * 3);
        for &off in &offsets {
            check!(cur.vmar().unmap(base + off, PAGE, ALL_RIGHTS));
        }
        ensure_eq!(live_table_pages(), before.table_pages + 1);
        // Map again and drop the whole address space with the mappings in place.
        for &off in &offsets {
            check!(cur.vmar().map(RW | ZX_VM_SPECIFIC | ZX_VM_MAP_RANGE, off, &vmo, 0, PAGE, ALL_RIGHTS, ALL_RIGHTS));
        }
        ensure_eq!(live_table_pages(), before.table_pages + 1 + 3 * 3);
        drop(cur);
        ensure_eq!(live_table_pages(), before.table_pages);
        ensure_eq!(vmo.mapping_count(), 0);
        drop(vmo);
        ensure_eq!(counts(), before);
        Ok(())
    }
}

ktest! {
    fn out_of_frames_faults_and_maps_fail_cleanly() {
        let before = counts();
        {
            let cur = Current::new()?;
            let committed = check!(Vmo::create(arch::paging::phys_mem(), PAGE as u64, 0));
            check!(committed.commit(0, PAGE as u64));
            let lazy = check!(Vmo::create(arch::paging::phys_mem(), PAGE as u64, 0));
            let lazy_addr = check!(cur.vmar().map(RW, 0, &lazy, 0, PAGE, ALL_RIGHTS, ALL_RIGHTS));
            let regions = cur.aspace.walk().len();
            let tables = live_table_pages();
            {
                let _hoard = Hoard::leave(0);
                // MAP_RANGE needs page tables: ERR_NO_MEMORY, and the mapping is not kept.
                let r = cur.vmar().map(R | ZX_VM_MAP_RANGE, 0, &committed, 0, PAGE, ALL_RIGHTS, ALL_RIGHTS);
                ensure_eq!(r, Err(Status::ERR_NO_MEMORY));
                ensure_eq!(cur.aspace.walk().len(), regions);
                ensure_eq!(live_table_pages(), tables);
                // A demand fault with no frame left: the copy fails, the kernel goes on.
                ensure_eq!(read_user(lazy_addr, 4), Err(CopyError::Fault { remaining: 4 }));
                ensure_eq!(lazy.committed_page_count(), 0);
                ensure_eq!(live_table_pages(), tables);
            }
            ensure_eq!(read_user(lazy_addr, 4), Ok(alloc::vec![0; 4]));
        }
        ensure_eq!(counts(), before);
        Ok(())
    }
}

ktest! {
    fn flush_is_what_removes_a_stale_translation() {
        // The X86Mmu alone, so the test holds the flush token: between the PTE change and the
        // flush, TCG (and real CPUs) may still use the cached writable translation.
        let phys = arch::paging::phys_mem();
        let before = counts();
        let frame = check!(phys.alloc_zeroed());
        let mut mmu = check!(X86Mmu::new_user(phys.clone()));
        let va = 0x0000_0010_0000_0000usize;
        let t = check!(mmu.map(va, frame, URW));
        mmu.flush(t);
        let stale_write_went_through;
        {
            let _active = Activated::new(mmu.root_phys());
            ensure_eq!(copy_to_user(va as u64, &[5; 8]), Ok(()));
            let token = mmu.protect(va, 1, UR);
            stale_write_went_through = copy_to_user(va as u64 + 8, &[6; 8]).is_ok();
            mmu.flush(token);
            ensure_eq!(copy_to_user(va as u64 + 16, &[7; 8]), Err(CopyError::Fault { remaining: 8 }));
            ensure_eq!(read_user(va, 8), Ok(alloc::vec![5; 8]));
        }
        // The protect alone left the cached writable translation in place (TCG keeps TLB
        // entries until `invlpg` or a CR3 load, and nothing preempts this kernel code): the
        // write landed, so the flush is what removed the translation.
        ensure!(stale_write_went_through, "the write before the flush faulted: protect flushed by itself");
        {
            let _active = Activated::new(mmu.root_phys());
            let mut want = alloc::vec![5u8; 8];
            want.extend([6; 8]);
            want.extend([0; 8]);
            ensure_eq!(read_user(va, 24), Ok(want));
        }
        drop(mmu);
        phys.free(frame);
        ensure_eq!(counts(), before);
        Ok(())
    }
}
