//! [`X86Mmu`]: the 4-level page tables of one user address space, behind `vm::Mmu`.
//!
//! Layout: a PML4 whose upper 256 entries are copies of the boot PML4's (the shared kernel
//! half), and whose lower 256 entries lead to PDPT -> PD -> PT pages created on demand by `map`.
//! Intermediate user entries are PRESENT | WRITABLE | USER (the leaf decides); a leaf is PRESENT,
//! WRITABLE iff WRITE, USER iff USER, NO_EXECUTE unless EXECUTE. READ is implied by PRESENT: a
//! mapping without permissions has no entry at all (the VM unmaps instead).
//!
//! Page-table pages come from [`DirectPhysMem`] as [`FrameKind::Table`] frames. `map` allocates
//! every missing level before linking any, so running out of frames changes nothing. `unmap`
//! unlinks every intermediate table it leaves empty, and the frames are returned at the next
//! `flush` — after the TLB and the paging-structure caches of every CPU forgot them (the
//! shootdown to the CPUs of its mask returns only after each flushed). Dropping the `X86Mmu`
//! frees every table (never the leaf frames: they belong to VMOs).
//!
//! Only addresses below `extable::USER_END` are managed: a request for a kernel-half address is
//! refused (`map`) or clipped (`unmap`, `protect`), so no `X86Mmu` call can change the shared
//! kernel half.

use super::phys::TableRef;
use super::{globals, pte, DirectPhysMem, FrameKind};
use crate::extable::USER_END;
use abi::Status;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use vm::{FlushScope, Mmu, MmuFlags, PhysAddr, PhysMem, TlbFlush};

/// Entry flags of an intermediate (non-leaf) user table entry.
const TABLE_FLAGS: u64 = pte::PRESENT | pte::WRITABLE | pte::USER;

/// The page tables of one user address space (see the module docs).
pub struct X86Mmu {
    phys: Arc<DirectPhysMem>,
    offset: u64,
    root: u64,
    /// Intermediate tables owned: linked ones plus `pending_free`.
    tables: usize,
    /// Present leaf entries.
    mapped: usize,
    /// Tables unlinked by `unmap`, returned to `phys` by the next `flush`.
    pending_free: Vec<u64>,
    /// The CPUs that have this address space loaded (bit i: CPU i), kept by the kernel's switch
    /// (`kernel::mm::switch_aspace`): the targets of this address space's shootdowns.
    cpus: Arc<AtomicU64>,
}

fn index(vaddr: u64, level: u32) -> usize {
    ((vaddr >> (12 + 9 * level)) & 511) as usize
}

fn leaf_bits(flags: MmuFlags) -> u64 {
    let mut e = pte::PRESENT;
    if flags.contains(MmuFlags::WRITE) {
        e |= pte::WRITABLE;
    }
    if flags.contains(MmuFlags::USER) {
        e |= pte::USER;
    }
    if !flags.contains(MmuFlags::EXECUTE) {
        e |= pte::NO_EXECUTE;
    }
    e
}

fn flags_of(entry: u64) -> MmuFlags {
    let mut f = MmuFlags::READ;
    if entry & pte::WRITABLE != 0 {
        f = f | MmuFlags::WRITE;
    }
    if entry & pte::NO_EXECUTE == 0 {
        f = f | MmuFlags::EXECUTE;
    }
    if entry & pte::USER != 0 {
        f = f | MmuFlags::USER;
    }
    f
}

/// The user-half byte range `[start, end)` of `page_count` pages at `vaddr`, or `None` if empty.
fn user_range(vaddr: usize, page_count: usize) -> Option<(u64, u64)> {
    let start = vaddr as u64 & !0xfff;
    let len = (page_count as u64).saturating_mul(4096);
    let end = start.saturating_add(len).min(USER_END);
    (start < end).then_some((start, end))
}

/// Calls `f(vaddr, entry)` for every present leaf entry in `[start, end)` below `table`. With
/// `prune`, a child table left empty is unlinked and pushed there (the owner frees it at its
/// next flush). Cost: proportional to the present tables met, never to the size of the range.
/// Recursion depth: the table's level, at most 3.
fn visit_leaves(
    table: TableRef<'_>,
    start: u64,
    end: u64,
    mut prune: Option<&mut Vec<u64>>,
    f: &mut dyn FnMut(u64, &AtomicU64),
) {
    let level = table.level();
    let shift = 12 + 9 * level;
    let mut va = start;
    while va < end {
        // va < USER_END = 2^47, so the next slot boundary cannot overflow.
        let slot_end = (((va >> shift) + 1) << shift).min(end);
        let i = index(va, level);
        let entry = table.entry(i);
        if level == 0 {
            if entry.load(Ordering::Relaxed) & pte::PRESENT != 0 {
                f(va, entry);
            }
        } else if let Some(child) = table.child(i) {
            visit_leaves(child, va, slot_end, prune.as_deref_mut(), f);
            if let Some(list) = prune.as_deref_mut() {
                if child
                    .entries()
                    .iter()
                    .all(|x| x.load(Ordering::Relaxed) == 0)
                {
                    entry.store(0, Ordering::SeqCst);
                    list.push(child.phys());
                }
            }
        } else {
            debug_assert!(
                entry.load(Ordering::Relaxed) & pte::HUGE == 0,
                "huge page in a user table"
            );
        }
        va = slot_end;
    }
}

/// Returns `table` and every table below it to `phys` (the `X86Mmu` owning them is being
/// dropped). Recursion depth: the table's level, at most 2.
fn free_subtree(phys: &DirectPhysMem, table: TableRef<'_>) {
    for i in 0..512 {
        if let Some(child) = table.child(i) {
            free_subtree(phys, child);
        }
    }
    phys.release(table.phys(), FrameKind::Table);
}

impl X86Mmu {
    /// A new, empty user address space: a fresh PML4 whose kernel half is shared with the boot
    /// table. `phys` must be [`super::phys_mem`] (the only `PhysMem` whose frames page tables can
    /// point at; anything else is `ERR_INVALID_ARGS`). No frame -> `ERR_NO_MEMORY`.
    pub fn new_user(phys: Arc<dyn PhysMem>) -> Result<X86Mmu, Status> {
        let g = globals();
        if Arc::as_ptr(&phys) as *const u8 != Arc::as_ptr(&g.phys) as *const u8 {
            return Err(Status::ERR_INVALID_ARGS);
        }
        let phys = g.phys.clone();
        let root = phys.claim(FrameKind::Root)?;
        // SAFETY: the boot PML4 is live forever; `root` is a zeroed table frame we just claimed
        // (a PML4 without links yet), mapped at the physical offset like every frame.
        let (kernel, new) = unsafe {
            (
                TableRef::new(g.phys_offset, g.kernel_root, 3),
                TableRef::new(g.phys_offset, root, 3),
            )
        };
        for i in 256..512 {
            new.entry(i)
                .store(kernel.entry(i).load(Ordering::Relaxed), Ordering::Relaxed);
        }
        Ok(X86Mmu {
            offset: g.phys_offset,
            phys,
            root,
            tables: 0,
            mapped: 0,
            pending_free: Vec::new(),
            cpus: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The mask of CPUs that have this address space loaded, for the code that loads it (set a
    /// CPU's bit before loading the root into CR3, clear it after loading another).
    pub fn cpu_mask(&self) -> Arc<AtomicU64> {
        self.cpus.clone()
    }

    /// Physical address of the PML4: what [`super::activate`] loads into CR3.
    pub fn root_phys(&self) -> u64 {
        self.root
    }

    /// Page-table pages this address space owns, the PML4 included.
    pub fn table_pages(&self) -> usize {
        self.tables + 1
    }

    /// Present leaf entries (mapped pages).
    pub fn mapped_pages(&self) -> usize {
        self.mapped
    }

    fn is_active(&self) -> bool {
        crate::cpu::cr3() == self.root
    }

    /// The PML4. Every table below it is reached through [`TableRef::child`].
    fn root_table(&self) -> TableRef<'_> {
        // SAFETY: `self.root` is this address space's PML4, allocated until `drop`; its tables
        // are unlinked before they are freed, and freed only in `flush` and `drop` (`&mut self`),
        // so none is freed while this borrow of `self` lasts.
        unsafe { TableRef::new(self.offset, self.root, 3) }
    }
}

impl Mmu for X86Mmu {
    fn map(&mut self, vaddr: usize, paddr: PhysAddr, flags: MmuFlags) -> Result<TlbFlush, Status> {
        let va = vaddr as u64;
        if !va.is_multiple_of(4096) || va >= USER_END || flags.perms().is_empty() {
            return Err(Status::ERR_INVALID_ARGS);
        }
        // Only VMO frames may appear in user space: never a page table or kernel memory.
        if self.phys.kind_of(paddr.0) != Some(FrameKind::Data) {
            return Err(Status::ERR_INVALID_ARGS);
        }
        // Find the deepest existing table on the path.
        let mut t = self.root_table();
        while let Some(child) = t.child(index(va, t.level())) {
            t = child;
        }
        // Allocate every missing level first: on failure nothing is linked.
        let mut fresh = [0u64; 3];
        let need = t.level() as usize;
        for i in 0..need {
            match self.phys.claim(FrameKind::Table) {
                Ok(f) => fresh[i] = f,
                Err(e) => {
                    for &f in &fresh[..i] {
                        self.phys.release(f, FrameKind::Table);
                    }
                    return Err(e);
                }
            }
        }
        for &f in &fresh[..need] {
            // `f` is a zeroed table we own: once linked, it is `t`'s child.
            let i = index(va, t.level());
            t.entry(i).store(f | TABLE_FLAGS, Ordering::SeqCst);
            t = t.child(i).expect("the table just linked");
        }
        // `t` is now the PT covering `va`.
        let old = t
            .entry(index(va, 0))
            .swap(paddr.0 | leaf_bits(flags), Ordering::SeqCst);
        self.tables += need;
        if old & pte::PRESENT == 0 {
            self.mapped += 1;
            // x86 caches no translation for a non-present entry: nothing to invalidate.
            Ok(TlbFlush::none())
        } else {
            Ok(TlbFlush::for_pages(vaddr, 1))
        }
    }

    fn unmap(&mut self, vaddr: usize, page_count: usize) -> TlbFlush {
        let Some((start, end)) = user_range(vaddr, page_count) else {
            return TlbFlush::none();
        };
        let mut token = TlbFlush::none();
        let mut removed = 0;
        // The list moves out for the walk (no allocation), so the walk can borrow the tables.
        let mut pending_free = core::mem::take(&mut self.pending_free);
        visit_leaves(
            self.root_table(),
            start,
            end,
            Some(&mut pending_free),
            &mut |va, entry| {
                if entry.swap(0, Ordering::SeqCst) & pte::PRESENT != 0 {
                    removed += 1;
                    let t = core::mem::replace(&mut token, TlbFlush::none());
                    token = t.merge(TlbFlush::for_pages(va as usize, 1));
                }
            },
        );
        self.pending_free = pending_free;
        self.mapped -= removed;
        token
    }

    fn protect(&mut self, vaddr: usize, page_count: usize, flags: MmuFlags) -> TlbFlush {
        if flags.perms().is_empty() {
            // No x86 entry can be present and unreadable.
            return self.unmap(vaddr, page_count);
        }
        let Some((start, end)) = user_range(vaddr, page_count) else {
            return TlbFlush::none();
        };
        let bits = leaf_bits(flags);
        let mut token = TlbFlush::none();
        visit_leaves(self.root_table(), start, end, None, &mut |va, entry| {
            let changed = entry.fetch_update(Ordering::SeqCst, Ordering::Relaxed, |old| {
                let new = (old & (pte::ADDR_MASK | pte::ACCESSED | pte::DIRTY)) | bits;
                (new != old).then_some(new)
            });
            // Only a change that takes a right away needs a flush: a cached entry with fewer
            // rights than the table at worst causes one page fault, which drops that entry
            // (the fault path finds the page mapped as it should be and returns).
            let restricts = |old: u64| {
                let gone = old & !bits & (pte::WRITABLE | pte::USER | pte::PRESENT);
                let nx_added = bits & !old & pte::NO_EXECUTE;
                gone != 0 || nx_added != 0
            };
            if changed.is_ok_and(restricts) {
                let t = core::mem::replace(&mut token, TlbFlush::none());
                token = t.merge(TlbFlush::for_pages(va as usize, 1));
            }
        });
        token
    }

    fn query(&self, vaddr: usize) -> Option<(PhysAddr, MmuFlags)> {
        let va = vaddr as u64;
        if va >= USER_END {
            return None;
        }
        let mut t = self.root_table();
        while let Some(child) = t.child(index(va, t.level())) {
            t = child;
        }
        if t.level() != 0 {
            return None;
        }
        let e = t.entry(index(va, 0)).load(Ordering::Relaxed);
        (e & pte::PRESENT != 0).then(|| (PhysAddr(e & pte::ADDR_MASK), flags_of(e)))
    }

    fn for_each_mapped(
        &self,
        vaddr: usize,
        page_count: usize,
        visit: &mut dyn FnMut(usize, PhysAddr, MmuFlags),
    ) {
        let Some((start, end)) = user_range(vaddr, page_count) else {
            return;
        };
        // `&self` keeps every table alive: only `&mut self` calls change or free them.
        visit_leaves(self.root_table(), start, end, None, &mut |va, entry| {
            let e = entry.load(Ordering::Relaxed);
            if e & pte::PRESENT != 0 {
                visit(va as usize, PhysAddr(e & pte::ADDR_MASK), flags_of(e));
            }
        });
    }

    fn flush(&mut self, flush: TlbFlush) {
        let (scope, _) = flush.into_scope();
        // Without PCIDs, loading CR3 drops every non-global entry, so an address space that is
        // not loaded has nothing cached on this CPU; the other CPUs that have it loaded get one
        // shootdown for the whole token, and this returns once each has flushed.
        let active = self.is_active();
        let others = self.cpus.load(Ordering::SeqCst);
        let remote = match scope {
            FlushScope::Nothing if self.pending_free.is_empty() => None,
            // Unlinked tables only: the paging-structure caches must forget them.
            FlushScope::Nothing | FlushScope::All => Some(crate::tlb::Scope::All),
            FlushScope::Range { start, end } => Some(crate::tlb::Scope::Pages {
                start: start as u64,
                pages: ((end - start) / 4096) as u64,
            }),
        };
        if active {
            match scope {
                FlushScope::Nothing => {
                    if !self.pending_free.is_empty() {
                        super::flush_all_local();
                        super::count_flush(0);
                    }
                }
                FlushScope::Range { start, end } => {
                    let mut va = start as u64;
                    while va < end as u64 {
                        super::invlpg(va);
                        va += 4096;
                    }
                    super::count_flush((end - start) / 4096);
                }
                FlushScope::All => {
                    super::flush_all_local();
                    super::count_flush(0);
                }
            }
        }
        if let Some(remote) = remote {
            crate::tlb::shootdown(others, remote);
        }
        // Every invlpg or CR3 load above also dropped the paging-structure caches, so the
        // unlinked tables can be reused now.
        for t in self.pending_free.drain(..) {
            self.phys.release(t, FrameKind::Table);
            self.tables -= 1;
        }
    }
}

impl Drop for X86Mmu {
    fn drop(&mut self) {
        let me = 1u64 << crate::percpu::cpu_index();
        assert!(
            self.cpus.load(Ordering::SeqCst) & !me == 0,
            "page tables freed while another CPU has them loaded"
        );
        if self.is_active() {
            super::activate(super::kernel_root_phys());
        }
        let root = self.root_table();
        for i in 0..256 {
            if let Some(pdpt) = root.child(i) {
                free_subtree(&self.phys, pdpt);
            }
        }
        for t in self.pending_free.drain(..) {
            self.phys.release(t, FrameKind::Table);
        }
        self.phys.release(self.root, FrameKind::Root);
    }
}

impl core::fmt::Debug for X86Mmu {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("X86Mmu")
            .field("root", &format_args!("{:#x}", self.root))
            .field("table_pages", &self.table_pages())
            .field("mapped_pages", &self.mapped)
            .finish()
    }
}
