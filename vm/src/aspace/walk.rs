//! Introspection: [`WalkCursor`] and [`RegionInfo`], the iterative pre-order walk of a VMAR's
//! subtree (whole or in bounded steps) and [`AddressSpace::dump`].

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use abi::PAGE_SIZE;

use super::{AddressSpace, Child, RegionId, Tree, VmarNode};
use crate::arch_traits::MmuFlags;
use crate::mapping::VmMapping;
use crate::vmo::Vmo;

/// Where a walk of a VMAR's subtree in steps stands (see [`crate::Vmar::walk_step`]): a stack
/// of (VMAR, depth, address its remaining children start at), as deep as the nesting.
#[derive(Debug, Default)]
pub struct WalkCursor {
    stack: Vec<(RegionId, usize, usize)>,
    started: bool,
}

impl WalkCursor {
    /// A walk not yet started.
    pub fn new() -> WalkCursor {
        WalkCursor::default()
    }

    /// True once a step found nothing left to list.
    pub fn is_done(&self) -> bool {
        self.started && self.stack.is_empty()
    }
}

/// One entry of an introspection walk (see [`AddressSpace::walk`]), in address order, parents
/// before their children.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegionInfo {
    /// A VMAR.
    Vmar {
        /// Nesting depth (the walk's starting VMAR is 0).
        depth: usize,
        /// First byte.
        base: usize,
        /// Size in bytes.
        size: usize,
        /// Which permissions mappings inside may have (CAN_MAP_READ/WRITE/EXECUTE).
        can_map: MmuFlags,
        /// CAN_MAP_SPECIFIC.
        can_map_specific: bool,
        /// COMPACT.
        compact: bool,
    },
    /// A mapping.
    Mapping {
        /// Nesting depth.
        depth: usize,
        /// First byte.
        base: usize,
        /// Size in bytes.
        size: usize,
        /// Current protection.
        perms: MmuFlags,
        /// Maximum protection reachable through protect.
        max_perms: MmuFlags,
        /// The mapped VMO's id.
        vmo_id: u64,
        /// The mapped VMO's name (`ZX_PROP_NAME`), NUL-padded.
        vmo_name: [u8; abi::info::ZX_MAX_NAME_LEN],
        /// Offset of the mapping's first byte in the VMO.
        vmo_offset: u64,
        /// Committed VMO pages inside the mapping's window.
        committed_page_count: usize,
    },
}

impl AddressSpace {
    /// Lists the VMAR `from` and everything below it, in address order (parents first), or
    /// `None` when `from` is destroyed. O(n) plus the committed-page counts.
    pub(crate) fn walk_from(&self, from: RegionId) -> Option<Vec<RegionInfo>> {
        let tree = self.tree.lock();
        tree.node(from)?;
        let mut cursor = WalkCursor::new();
        let entries = Self::walk_step_locked(&tree, from, &mut cursor, usize::MAX, false);
        Some(entries.into_iter().map(|(info, _)| info).collect())
    }

    /// The next at most `max` entries of the walk of `from` that `cursor` is at (the first
    /// step starts it), without the committed-page counts (left 0): beside each entry the
    /// mapped VMO (`None` for a VMAR), so the caller counts with [`Vmo::committed_pages_in`]
    /// after the tree lock is released. `None` when `from` is destroyed before the first step.
    /// O(log n + max) under the tree lock (times the nesting depth at a resume).
    ///
    /// Between two steps the tree may change: each entry is exact when taken, and the walk goes
    /// on after the last entry it returned (a VMAR destroyed meanwhile is skipped with what is
    /// below it; a region created behind the cursor is not seen), so a walk is not a snapshot.
    pub(crate) fn walk_step(
        &self,
        from: RegionId,
        cursor: &mut WalkCursor,
        max: usize,
    ) -> Option<Vec<(RegionInfo, Option<Arc<Vmo>>)>> {
        let tree = self.tree.lock();
        if !cursor.started {
            tree.node(from)?;
        }
        Some(Self::walk_step_locked(&tree, from, cursor, max, true))
    }

    /// The pre-order walk, resumed at `cursor`, up to `max` entries; with `uncounted`, counts
    /// are left 0 and each entry's VMO (or `None`) is returned beside it instead.
    fn walk_step_locked(
        tree: &Tree,
        from: RegionId,
        cursor: &mut WalkCursor,
        max: usize,
        uncounted: bool,
    ) -> Vec<(RegionInfo, Option<Arc<Vmo>>)> {
        // Iterative pre-order walk (no recursion, whatever the nesting depth): the cursor is a
        // stack of (vmar, depth, address to resume its children at).
        let mut out = Vec::new();
        if !cursor.started {
            cursor.started = true;
            if let Some(node) = tree.node(from) {
                out.push((vmar_info(node, 0), None));
                cursor.stack.push((from, 0, node.base));
            }
        }
        while out.len() < max {
            let Some((id, depth, resume)) = cursor.stack.pop() else {
                break;
            };
            let Some(node) = tree.node(id) else { continue };
            for (base, len, child) in node.children.overlapping(resume, node.end()) {
                if base < resume {
                    continue;
                }
                if out.len() >= max {
                    cursor.stack.push((id, depth, base));
                    break;
                }
                match child {
                    Child::Mapping(m) => {
                        out.push(mapping_info(m, base, len, depth + 1, uncounted));
                    }
                    Child::Vmar(c) => {
                        let Some(sub) = tree.node(*c) else { continue };
                        out.push((vmar_info(sub, depth + 1), None));
                        // Its children next, then the rest of this VMAR's.
                        cursor.stack.push((id, depth, base + len));
                        cursor.stack.push((*c, depth + 1, sub.base));
                        break;
                    }
                }
            }
        }
        out
    }

    /// Lists the whole tree from the root VMAR (see [`RegionInfo`]).
    pub fn walk(&self) -> Vec<RegionInfo> {
        let tree = self.tree.lock();
        let mut cursor = WalkCursor::new();
        Self::walk_step_locked(&tree, tree.root, &mut cursor, usize::MAX, false)
            .into_iter()
            .map(|(info, _)| info)
            .collect()
    }

    /// Prints the layout, one line per VMAR or mapping, indented by depth.
    pub fn dump(&self, out: &mut dyn fmt::Write) -> fmt::Result {
        for info in self.walk() {
            match info {
                RegionInfo::Vmar {
                    depth,
                    base,
                    size,
                    can_map,
                    can_map_specific,
                    compact,
                } => {
                    writeln!(
                        out,
                        "{:indent$}vmar    [{:#014x}, {:#014x}) {:>8} KiB can_map {:?}{}{}",
                        "",
                        base,
                        base + size,
                        size / 1024,
                        can_map.perms(),
                        if can_map_specific { " specific" } else { "" },
                        if compact { " compact" } else { "" },
                        indent = depth * 2
                    )?;
                }
                RegionInfo::Mapping {
                    depth,
                    base,
                    size,
                    perms,
                    max_perms,
                    vmo_id,
                    vmo_offset,
                    committed_page_count,
                    ..
                } => {
                    writeln!(
                        out,
                        "{:indent$}mapping [{:#014x}, {:#014x}) {:>8} KiB {:?} (max {:?}) vmo {} @ {:#x}, {} committed",
                        "",
                        base,
                        base + size,
                        size / 1024,
                        perms.perms(),
                        max_perms.perms(),
                        vmo_id,
                        vmo_offset,
                        committed_page_count,
                        indent = depth * 2
                    )?;
                }
            }
        }
        Ok(())
    }
}

/// The walk entry of VMAR `node` at `depth`.
fn vmar_info(node: &VmarNode, depth: usize) -> RegionInfo {
    RegionInfo::Vmar {
        depth,
        base: node.base,
        size: node.len,
        can_map: node.flags.can_map,
        can_map_specific: node.flags.can_map_specific,
        compact: node.flags.compact,
    }
}

/// The walk entry of mapping `m` (`[base, base + len)`) at `depth`; with `uncounted`, its
/// committed-page count is left 0 and its VMO returned beside it for the caller to count.
fn mapping_info(
    m: &VmMapping,
    base: usize,
    len: usize,
    depth: usize,
    uncounted: bool,
) -> (RegionInfo, Option<Arc<Vmo>>) {
    let page = PAGE_SIZE as u64;
    let first = m.vmo_offset / page;
    let end = first + (len / PAGE_SIZE) as u64;
    let (committed_page_count, vmo) = if uncounted {
        (0, Some(m.vmo.clone()))
    } else {
        (m.vmo.committed_pages_in(first, end), None)
    };
    (
        RegionInfo::Mapping {
            depth,
            base,
            size: len,
            perms: m.perms,
            max_perms: m.max_perms,
            vmo_id: m.vmo.id(),
            vmo_name: m.vmo.name(),
            vmo_offset: m.vmo_offset,
            committed_page_count,
        },
        vmo,
    )
}
