//! Shared fixture for the VMAR integration tests: an address space on the software MMU with a
//! fixed seed, a frame allocator with a fixed frame count, and state checks.
#![allow(dead_code)]

use std::sync::Arc;

use abi::rights::*;
use abi::vm_options::*;
use abi::{Status, PAGE_SIZE};
use vm::soft_mmu::{SoftMmu, SoftMmuProbe, SoftPhysMem};
use vm::{AddressSpace, AspaceConfig, MmuFlags, PhysMem, RegionInfo, SplitMix64, Vmar, Vmo};

pub const PAGE: usize = PAGE_SIZE;
/// Where the test address space starts (non-zero, like a user aspace).
pub const ASPACE_BASE: usize = 0x100_0000;
/// 1 GiB.
pub const ASPACE_LEN: usize = 1 << 30;
/// What Zircon gives a VMAR handle by default plus READ/WRITE/EXECUTE.
pub const VMAR_RIGHTS: u32 = ZX_RIGHT_DUPLICATE
    | ZX_RIGHT_TRANSFER
    | ZX_RIGHT_READ
    | ZX_RIGHT_WRITE
    | ZX_RIGHT_EXECUTE
    | ZX_RIGHT_OP_CHILDREN
    | ZX_RIGHT_GET_PROPERTY
    | ZX_RIGHT_SET_PROPERTY
    | ZX_RIGHT_WAIT
    | ZX_RIGHT_INSPECT;
/// Default VMO rights (Zircon's ZX_DEFAULT_VMO_RIGHTS) plus EXECUTE.
pub const VMO_RIGHTS: u32 = ZX_RIGHT_DUPLICATE
    | ZX_RIGHT_TRANSFER
    | ZX_RIGHT_READ
    | ZX_RIGHT_WRITE
    | ZX_RIGHT_EXECUTE
    | ZX_RIGHT_MAP
    | ZX_RIGHT_GET_PROPERTY
    | ZX_RIGHT_SET_PROPERTY;
pub const RW: u32 = ZX_VM_PERM_READ | ZX_VM_PERM_WRITE;
pub const R: MmuFlags = MmuFlags::READ;
pub const RWU: MmuFlags = MmuFlags::READ.union(MmuFlags::WRITE).union(MmuFlags::USER);
pub const RU: MmuFlags = MmuFlags::READ.union(MmuFlags::USER);
pub const ALL_CAN_MAP: u32 = ZX_VM_CAN_MAP_READ | ZX_VM_CAN_MAP_WRITE | ZX_VM_CAN_MAP_EXECUTE;

pub struct Fixture {
    pub aspace: Arc<AddressSpace>,
    pub root: Vmar,
    pub mmu: SoftMmuProbe,
    pub phys: Arc<SoftPhysMem>,
}

impl Fixture {
    pub fn new() -> Fixture {
        Fixture::with(AspaceConfig::user(ASPACE_BASE, ASPACE_LEN), 1024, 7)
    }

    pub fn with(config: AspaceConfig, frames: usize, seed: u64) -> Fixture {
        let (mmu, probe) = SoftMmu::boxed();
        let aspace = AddressSpace::new(config, mmu, Box::new(SplitMix64::new(seed))).unwrap();
        let root = aspace.root_vmar();
        Fixture {
            aspace,
            root,
            mmu: probe,
            phys: SoftPhysMem::new(frames),
        }
    }

    pub fn vmo(&self, pages: usize) -> Arc<Vmo> {
        let phys: Arc<dyn PhysMem> = self.phys.clone();
        Vmo::create(phys, (pages * PAGE) as u64, 0).unwrap()
    }

    pub fn vmo_opts(&self, pages: usize, options: u32) -> Arc<Vmo> {
        let phys: Arc<dyn PhysMem> = self.phys.clone();
        Vmo::create(phys, (pages * PAGE) as u64, options).unwrap()
    }

    /// A sub-VMAR with every CAN_MAP flag (and SPECIFIC), at a random spot.
    pub fn sub(&self, pages: usize) -> (Vmar, usize) {
        self.root
            .allocate(
                ALL_CAN_MAP | ZX_VM_CAN_MAP_SPECIFIC,
                0,
                pages * PAGE,
                VMAR_RIGHTS,
            )
            .unwrap()
    }

    /// Maps `pages` of `vmo` RW into `vmar` at `offset` (SPECIFIC).
    pub fn map_at(&self, vmar: &Vmar, offset: usize, vmo: &Arc<Vmo>, pages: usize) -> usize {
        vmar.map(
            RW | ZX_VM_SPECIFIC,
            offset,
            vmo,
            0,
            pages * PAGE,
            VMAR_RIGHTS,
            VMO_RIGHTS,
        )
        .unwrap()
    }

    pub fn mappings(&self) -> Vec<(usize, usize, MmuFlags)> {
        self.aspace
            .walk()
            .into_iter()
            .filter_map(|i| match i {
                RegionInfo::Mapping {
                    base, size, perms, ..
                } => Some((base, size, perms)),
                _ => None,
            })
            .collect()
    }

    pub fn vmars(&self) -> Vec<(usize, usize)> {
        self.aspace
            .walk()
            .into_iter()
            .filter_map(|i| match i {
                RegionInfo::Vmar { base, size, .. } => Some((base, size)),
                _ => None,
            })
            .collect()
    }

    /// Structure invariants hold, every token was flushed, and every page-table entry lies in a
    /// mapping.
    pub fn check(&self) {
        self.aspace.check_invariants().unwrap();
        assert_eq!(
            self.mmu.outstanding_flushes(),
            0,
            "a TLB flush token was dropped"
        );
        let maps = self.mappings();
        for (vaddr, _, _) in self.mmu.entries() {
            assert!(
                maps.iter().any(|&(b, l, _)| vaddr >= b && vaddr < b + l),
                "pte {vaddr:#x} outside every mapping"
            );
        }
    }

    pub fn touch(&self, vaddr: usize, access: MmuFlags) -> Result<(), Status> {
        self.aspace.fault(vaddr, access | MmuFlags::USER)
    }
}
