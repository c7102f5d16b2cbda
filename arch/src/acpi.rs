//! The ACPI tables, read with the rust-osdev `acpi` crate (5.2, without its `alloc`/`aml`
//! features: the table parsing needs no heap and no AML interpreter). The kernel needs one fact
//! from them today: the processors the firmware lists in the MADT.
//!
//! Tables are reached through the bootloader's physical-memory mapping (the firmware keeps them
//! in memory the boot memory map never calls usable), so "mapping" a region is an offset and
//! unmapping is nothing.

use acpi::madt::{Madt, MadtEntry};
use acpi::{AcpiHandler, AcpiTables, PhysicalMapping};
use core::ptr::NonNull;

/// Most processors [`processors`] reports.
pub const MAX_PROCESSORS: usize = 256;

#[derive(Clone, Copy)]
struct OffsetHandler {
    phys_offset: u64,
}

impl AcpiHandler for OffsetHandler {
    unsafe fn map_physical_region<T>(
        &self,
        physical_address: usize,
        size: usize,
    ) -> PhysicalMapping<Self, T> {
        let virt = (self.phys_offset + physical_address as u64) as *mut T;
        // SAFETY: all physical memory is mapped at `phys_offset` for the kernel's lifetime (the
        // bootloader's mapping covers RAM and at least the first 4 GiB, where firmware puts the
        // tables); the caller (the `acpi` crate) reads `size` bytes of a table there.
        unsafe {
            PhysicalMapping::new(
                physical_address,
                NonNull::new(virt).expect("physical mapping at address 0"),
                size,
                size,
                *self,
            )
        }
    }

    fn unmap_physical_region<T>(_region: &PhysicalMapping<Self, T>) {}
}

/// The enabled processors of the MADT: their local APIC ids, in table order.
#[derive(Clone, Debug)]
pub struct Processors {
    ids: [u32; MAX_PROCESSORS],
    len: usize,
    /// Processor entries without the Enabled flag (online-capable ones included), plus those
    /// beyond [`MAX_PROCESSORS`].
    pub skipped: usize,
}

impl Processors {
    /// The local APIC ids.
    pub fn apic_ids(&self) -> &[u32] {
        &self.ids[..self.len]
    }
}

/// Reads the MADT through the RSDP at physical `rsdp_addr` and lists the enabled processors
/// (local APIC and local x2APIC entries with the Enabled flag; "online capable" ones that are not
/// enabled are counted in `skipped`, as processors the firmware has not started).
///
/// # Safety
///
/// `rsdp_addr` must be the physical address of the firmware's RSDP (the bootloader's
/// `BootInfo::rsdp_addr`), and `phys_offset` the virtual address at which all physical memory
/// (the first 4 GiB at least) is mapped.
pub unsafe fn processors(rsdp_addr: u64, phys_offset: u64) -> Result<Processors, &'static str> {
    let handler = OffsetHandler { phys_offset };
    // SAFETY: `rsdp_addr` is the firmware's RSDP (caller contract), mapped through the handler.
    let tables = unsafe { AcpiTables::from_rsdp(handler, rsdp_addr as usize) }
        .map_err(|_| "no valid RSDP/RSDT")?;
    let madt = tables.find_table::<Madt>().map_err(|_| "no MADT")?;
    let mut out = Processors {
        ids: [0; MAX_PROCESSORS],
        len: 0,
        skipped: 0,
    };
    for entry in madt.get().entries() {
        let (id, flags) = match entry {
            MadtEntry::LocalApic(e) => (u32::from(e.apic_id), e.flags),
            MadtEntry::LocalX2Apic(e) => (e.x2apic_id, e.flags),
            _ => continue,
        };
        if flags & 1 == 0 || out.len == MAX_PROCESSORS {
            out.skipped += 1;
            continue;
        }
        if !out.apic_ids().contains(&id) {
            out.ids[out.len] = id;
            out.len += 1;
        }
    }
    Ok(out)
}
