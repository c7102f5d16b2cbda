//! One step of the property test: [`World::step`] predicts an operation's outcome from the model,
//! runs it on the implementation, compares the statuses and, on success, updates the model.

use super::*;

impl World {
    /// Runs one step: predicts, executes, compares the status and updates the model.
    pub(crate) fn step(&mut self, op: &Op) -> Result<(), String> {
        let before = (self.pages.len(), self.vmars.len(), self.free_frames());
        let r = self.step_inner(op);
        if std::env::var_os("VM_MODEL_STATS").is_some() {
            let name = format!("{op:?}");
            let name = name.split([' ', '{']).next().unwrap_or("").to_string();
            let changed = before != (self.pages.len(), self.vmars.len(), self.free_frames());
            let last = self.last_status.take();
            if std::env::var_os("VM_MODEL_TRACE").is_some() {
                eprintln!("{op:?} -> {last:?}");
            }
            *STATS
                .lock()
                .unwrap()
                .entry(format!("{name} {last:?} changed={changed}"))
                .or_default() += 1;
        }
        r
    }

    fn step_inner(&mut self, op: &Op) -> Result<(), String> {
        match *op {
            Op::Allocate {
                parent,
                mode,
                off,
                size,
                align,
                can_map,
                specific,
                compact,
            } => {
                let v = self.pick_vmar(parent);
                let mode = [Mode::Any, Mode::Specific, Mode::Upper][mode as usize % 3];
                let n = size as usize % 12;
                let (align_bits, align_log2) = align_table(align);
                let (cm_bits, cm) = can_map_bits(if can_map < 128 { 7 } else { can_map });
                let specific = specific || can_map & 1 != 0;
                let off_pages = match mode {
                    Mode::Any => 0,
                    _ => self.offset_for(v, mode, off, n),
                };
                let mut options = cm_bits | align_bits;
                options |= match mode {
                    Mode::Specific => ZX_VM_SPECIFIC,
                    Mode::Upper => ZX_VM_OFFSET_IS_UPPER_LIMIT,
                    _ => 0,
                };
                if specific {
                    options |= ZX_VM_CAN_MAP_SPECIFIC;
                }
                if compact {
                    options |= ZX_VM_COMPACT;
                }
                let predicted = self.predict_place(
                    v,
                    mode,
                    off_pages,
                    n,
                    align_log2,
                    cm,
                    Status::ERR_NO_RESOURCES,
                );
                let actual =
                    self.vmars[v]
                        .h
                        .allocate(options, off_pages * PAGE, n * PAGE, VMAR_RIGHTS);
                match (predicted, actual) {
                    (Ok(place), Ok((h, addr))) => {
                        self.check_place(v, &place, n, addr)?;
                        if h.base() != addr || h.size() != n * PAGE {
                            return Err("allocate: handle geometry".into());
                        }
                        self.vmars.push(MVmar {
                            h,
                            base: addr / PAGE,
                            pages: n,
                            can_map: cm,
                            specific,
                            parent: Some(v),
                            alive: true,
                        });
                        Ok(())
                    }
                    (Err(e), Err(a)) if e == a => {
                        self.last_status = Some(a);
                        Ok(())
                    }
                    (p, a) => Err(format!(
                        "allocate: predicted {:?}, got {:?}",
                        p.map(|_| ()),
                        a.map(|(_, addr)| addr)
                    )),
                }
            }
            Op::Map {
                vmar,
                vmo,
                mode,
                off,
                vmo_off,
                len,
                perms,
                map_range,
                allow_faults,
                vmar_rights,
                vmo_rights,
                align,
            } => {
                let Some(o) = self.pick_vmo(vmo) else {
                    return Ok(());
                };
                // Often the root (big enough for most requests), else any VMAR.
                let v = if vmar < 96 { 0 } else { self.pick_vmar(vmar) };
                let mode =
                    [Mode::Any, Mode::Specific, Mode::Overwrite, Mode::Upper][mode as usize % 4];
                let n = pages_of(len);
                let vmo_pages = self.vmos[o].pages;
                let vmo_off = if vmo_off < 160 && n as u64 <= vmo_pages {
                    vmo_off as u64 % (vmo_pages - n as u64 + 1) // fits in the VMO
                } else {
                    vmo_off as u64 % (vmo_pages + 2)
                };
                let off_pages = match mode {
                    Mode::Any => 0,
                    _ => self.offset_for(v, mode, off, n),
                };
                let vmar_rights = match vmar_rights % 12 {
                    10 => VMAR_RIGHTS & !ZX_RIGHT_WRITE,
                    11 => VMAR_RIGHTS & !ZX_RIGHT_EXECUTE,
                    _ => VMAR_RIGHTS,
                };
                let vmo_rights = match vmo_rights % 24 {
                    20 => VMO_RIGHTS & !ZX_RIGHT_WRITE,
                    21 => VMO_RIGHTS & !ZX_RIGHT_EXECUTE,
                    22 => VMO_RIGHTS & !ZX_RIGHT_MAP,
                    23 => ZX_RIGHT_READ | ZX_RIGHT_MAP,
                    _ => VMO_RIGHTS,
                };
                let (align_bits, align_log2) = align_table(align);
                let perm_bits = perms_table(perms);
                let mut options = perm_bits | align_bits;
                options |= match mode {
                    Mode::Any => 0,
                    Mode::Specific => ZX_VM_SPECIFIC,
                    Mode::Overwrite => ZX_VM_SPECIFIC_OVERWRITE,
                    Mode::Upper => ZX_VM_OFFSET_IS_UPPER_LIMIT,
                };
                if map_range {
                    options |= ZX_VM_MAP_RANGE;
                }
                if allow_faults {
                    options |= ZX_VM_ALLOW_FAULTS;
                }
                let (p, valid) = model_perms(perm_bits);
                let allowed = rights_perms(vmo_rights).intersection(rights_perms(vmar_rights));
                let m = &self.vmos[o];
                let predicted = if vmo_rights & ZX_RIGHT_MAP == 0 {
                    Err(Status::ERR_ACCESS_DENIED)
                } else if !valid {
                    Err(Status::ERR_INVALID_ARGS)
                } else if map_range && mode == Mode::Overwrite {
                    Err(Status::ERR_INVALID_ARGS)
                } else if !allowed.contains(p) {
                    Err(Status::ERR_ACCESS_DENIED)
                } else if !allow_faults && m.resizable {
                    Err(Status::ERR_NOT_SUPPORTED)
                } else if m.slice.is_some() && vmo_off + n as u64 > m.pages {
                    // A slice's window must lie inside the slice, even with ALLOW_FAULTS, and
                    // before the placement (`Vmar::map`; a deviation, docs/conformance.md).
                    Err(Status::ERR_BUFFER_TOO_SMALL)
                } else {
                    // The spec's BUFFER_TOO_SMALL comes after every placement check.
                    let past_end = !allow_faults && vmo_off + n as u64 > m.pages;
                    self.predict_place(
                        v,
                        mode,
                        off_pages,
                        n,
                        align_log2,
                        p,
                        Status::ERR_NO_RESOURCES,
                    )
                    .and_then(|place| {
                        if past_end {
                            Err(Status::ERR_BUFFER_TOO_SMALL)
                        } else {
                            Ok(place)
                        }
                    })
                };
                let handle = self.vmos[o].handle.clone().unwrap();
                let actual = self.vmars[v].h.map(
                    options,
                    off_pages * PAGE,
                    &handle,
                    vmo_off * PAGE as u64,
                    n * PAGE,
                    vmar_rights,
                    vmo_rights,
                );
                drop(handle);
                match (predicted, actual) {
                    (Ok(place), Ok(addr)) => {
                        self.check_place(v, &place, n, addr)?;
                        let base = addr / PAGE;
                        // A mapping of a slice maps (and holds) its root's window.
                        let (o, vmo_off) = self.resolve(o, vmo_off);
                        let max = allowed.intersection(self.vmars[v].can_map);
                        let seg = self.fresh_seg();
                        for i in 0..n {
                            // SPECIFIC_OVERWRITE replaces whatever the VMAR mapped there.
                            self.pages.insert(
                                base + i,
                                MPage {
                                    vmar: v,
                                    vmo: o,
                                    idx: vmo_off + i as u64,
                                    perms: p,
                                    max,
                                    seg,
                                },
                            );
                        }
                        if map_range && !p.is_empty() {
                            let vmo_ref = self.vmos[o].weak.upgrade().unwrap();
                            for i in 0..n {
                                let idx = vmo_off + i as u64;
                                if self.vmos[o].committed.contains_key(&idx)
                                    && self.mmu.query((base + i) * PAGE).is_none()
                                {
                                    return Err(format!(
                                        "MAP_RANGE left page {:#x} (vmo page {idx}, frame {:?}) unmapped",
                                        base + i,
                                        vmo_ref.frame_of(idx)
                                    ));
                                }
                            }
                        }
                        Ok(())
                    }
                    (Err(e), Err(a)) if e == a => {
                        self.last_status = Some(a);
                        Ok(())
                    }
                    (p, a) => Err(format!("map: predicted {:?}, got {a:x?}", p.map(|_| ()))),
                }
            }
            Op::Unmap {
                vmar,
                off,
                len,
                op_children,
            } => {
                let (v, rel) = self.pick_range(vmar, off);
                let n = pages_of(len);
                let vm = &self.vmars[v];
                let start = (vm.base as isize + rel) as usize;
                let end = start + n;
                let rights = if op_children {
                    VMAR_RIGHTS
                } else {
                    VMAR_RIGHTS & !ZX_RIGHT_OP_CHILDREN
                };
                let predicted = if n == 0 {
                    Err(Status::ERR_INVALID_ARGS)
                } else if !vm.alive {
                    Err(Status::ERR_BAD_STATE)
                } else if start < vm.base || end > vm.end() {
                    Err(Status::ERR_INVALID_ARGS)
                } else {
                    let kids: Vec<usize> = (0..self.vmars.len())
                        .filter(|&c| {
                            let c = &self.vmars[c];
                            c.alive && c.parent == Some(v) && c.base < end && start < c.end()
                        })
                        .collect();
                    if kids.iter().any(|&c| {
                        !op_children || self.vmars[c].base < start || self.vmars[c].end() > end
                    }) {
                        Err(Status::ERR_INVALID_ARGS)
                    } else {
                        // ZIRCON: a range holding nothing is OK (the spec text says NOT_FOUND).
                        Ok(kids)
                    }
                };
                let actual = vm.h.unmap(start * PAGE, n * PAGE, rights);
                match (predicted, actual) {
                    (Ok(kids), Ok(())) => {
                        for c in kids {
                            self.kill_vmar(c);
                        }
                        self.pages
                            .retain(|&p, m| !(m.vmar == v && start <= p && p < end));
                        Ok(())
                    }
                    (Err(e), Err(a)) if e == a => {
                        self.last_status = Some(a);
                        Ok(())
                    }
                    (p, a) => Err(format!("unmap: predicted {:?}, got {a:?}", p.map(|_| ()))),
                }
            }
            Op::Protect {
                vmar,
                off,
                len,
                perms,
                rights,
            } => {
                let (v, rel) = self.pick_range(vmar, off);
                let n = pages_of(len);
                let vm = &self.vmars[v];
                let start = (vm.base as isize + rel) as usize;
                let end = start + n;
                let rights = match rights % 5 {
                    0 | 1 => VMAR_RIGHTS,
                    2 => VMAR_RIGHTS & !ZX_RIGHT_WRITE,
                    3 => VMAR_RIGHTS & !ZX_RIGHT_EXECUTE,
                    _ => VMAR_RIGHTS & !ZX_RIGHT_OP_CHILDREN,
                };
                let perm_bits = perms_table(perms);
                let (p, valid) = model_perms(perm_bits);
                let predicted = if !rights_perms(rights).contains(p) {
                    Err(Status::ERR_ACCESS_DENIED)
                } else if !valid || n == 0 {
                    Err(Status::ERR_INVALID_ARGS)
                } else if !vm.alive {
                    Err(Status::ERR_BAD_STATE)
                } else if start < vm.base || end > vm.end() {
                    Err(Status::ERR_INVALID_ARGS)
                } else if rights & ZX_RIGHT_OP_CHILDREN == 0
                    && self
                        .vmars
                        .iter()
                        .any(|c| c.alive && c.parent == Some(v) && c.base < end && start < c.end())
                {
                    // SPEC: a sub-region in the range (even an empty one) without OP_CHILDREN.
                    Err(Status::ERR_INVALID_ARGS)
                } else {
                    let mut r = Ok(());
                    for page in start..end {
                        let Some(m) = self.pages.get(&page) else {
                            r = Err(Status::ERR_NOT_FOUND);
                            break;
                        };
                        if !m.max.contains(p) {
                            r = Err(Status::ERR_ACCESS_DENIED);
                            break;
                        }
                        if m.vmar != v {
                            if rights & ZX_RIGHT_OP_CHILDREN == 0 {
                                r = Err(Status::ERR_INVALID_ARGS);
                                break;
                            }
                            if !m.perms.contains(p) {
                                r = Err(Status::ERR_ACCESS_DENIED);
                                break;
                            }
                        }
                    }
                    r
                };
                let actual = vm.h.protect(perm_bits, start * PAGE, n * PAGE, rights);
                match (predicted, actual) {
                    (Ok(()), Ok(())) => {
                        self.protect_pages(start, end, p);
                        Ok(())
                    }
                    (Err(e), Err(a)) if e == a => {
                        self.last_status = Some(a);
                        Ok(())
                    }
                    (p, a) => Err(format!("protect: predicted {p:?}, got {a:?}")),
                }
            }
            Op::Destroy { vmar, op_children } => {
                let v = self.pick_vmar(vmar);
                let rights = if op_children {
                    VMAR_RIGHTS
                } else {
                    VMAR_RIGHTS & !ZX_RIGHT_OP_CHILDREN
                };
                let predicted = if !op_children {
                    Err(Status::ERR_ACCESS_DENIED)
                } else if v == 0 {
                    Err(Status::ERR_NOT_SUPPORTED)
                } else if !self.vmars[v].alive {
                    Err(Status::ERR_BAD_STATE)
                } else {
                    Ok(())
                };
                let actual = self.vmars[v].h.destroy(rights);
                match (predicted, actual) {
                    (Ok(()), Ok(())) => {
                        self.kill_vmar(v);
                        Ok(())
                    }
                    (Err(e), Err(a)) if e == a => {
                        self.last_status = Some(a);
                        Ok(())
                    }
                    (p, a) => Err(format!("destroy: predicted {p:?}, got {a:?}")),
                }
            }
            Op::VmarOpRange {
                vmar,
                op,
                off,
                len,
                rights,
            } => {
                let (v, rel) = self.pick_range(vmar, off);
                let n = pages_of(len);
                let start = (self.vmars[v].base as isize + rel) as usize;
                let end = start + n;
                let op = [
                    ZX_VMAR_OP_COMMIT,
                    ZX_VMAR_OP_DECOMMIT,
                    ZX_VMAR_OP_MAP_RANGE,
                    ZX_VMAR_OP_DONT_NEED,
                    ZX_VMAR_OP_ALWAYS_NEED,
                    0x7777,
                ][op as usize % 6];
                let rights = match rights % 4 {
                    0 | 1 => VMAR_RIGHTS,
                    2 => VMAR_RIGHTS & !ZX_RIGHT_WRITE,
                    _ => VMAR_RIGHTS & !ZX_RIGHT_OP_CHILDREN,
                };
                let predicted = self.predict_op_range(v, op, start, end, rights);
                let actual = self.vmars[v]
                    .h
                    .op_range(op, start * PAGE, n * PAGE, rights, 0);
                self.last_status = actual.err();
                if predicted != actual {
                    return Err(format!(
                        "op_range {op}: predicted {predicted:?}, got {actual:?}"
                    ));
                }
                Ok(())
            }
            Op::Fault { page, access } => {
                // Mostly a mapped page (most interesting), sometimes any page around the space.
                let p = match self
                    .pages
                    .keys()
                    .nth(page as usize % self.pages.len().max(1))
                {
                    Some(&p) if page < 200 => p,
                    _ => BASE_PAGE + page as usize % (SPACE_PAGES + 2) - 1,
                };
                let access = [R, W, X, MmuFlags::NONE][access as usize % 4];
                let need = if access.is_empty() { R } else { access };
                let predicted = match self.pages.get(&p).copied() {
                    None => Err(Status::ERR_NOT_FOUND),
                    Some(m) if !m.perms.contains(need) => Err(Status::ERR_ACCESS_DENIED),
                    Some(m) if m.idx >= self.vmos[m.vmo].pages => Err(Status::ERR_OUT_OF_RANGE),
                    // A write commits (copying a shared frame); a read or execute maps what
                    // is there, the zero page for a page not committed.
                    Some(m) if access.contains(W) => {
                        self.commit_pages_for_write(m.vmo, m.idx, m.idx + 1)
                    }
                    Some(_) => Ok(()),
                };
                let actual = self.aspace.fault(p * PAGE + 123, access | MmuFlags::USER);
                self.last_status = actual.err();
                if predicted != actual {
                    return Err(format!("fault: predicted {predicted:?}, got {actual:?}"));
                }
                if actual.is_ok() {
                    let m = self.pages[&p];
                    let vmo = self.vmos[m.vmo].weak.upgrade().unwrap();
                    // A frame other VMOs hold too is mapped without write access; a page
                    // not committed shows the zero page, read-only.
                    let shared = self.frame_at(m.vmo, m.idx).map(|f| self.holders(f)) > Some(1);
                    let want = match vmo.frame_of(m.idx) {
                        Some(frame) => {
                            let perms = if shared {
                                m.perms.difference(W)
                            } else {
                                m.perms
                            };
                            (frame, perms | MmuFlags::USER)
                        }
                        None => (
                            self.phys.zero_frame(),
                            m.perms.difference(W) | MmuFlags::USER,
                        ),
                    };
                    if self.mmu.query(p * PAGE) != Some(want) {
                        return Err(format!(
                            "fault: pte {:?}, want {want:?}",
                            self.mmu.query(p * PAGE)
                        ));
                    }
                }
                Ok(())
            }
            Op::VmoCreate { pages, resizable } => {
                if self.vmos.iter().filter(|v| v.alive).count() >= MAX_LIVE_VMOS {
                    return Ok(());
                }
                let n = pages as u64 % 9;
                let phys: Arc<dyn PhysMem> = self.phys.clone();
                let opts = if resizable { ZX_VMO_RESIZABLE } else { 0 };
                let vmo = Vmo::create(phys, n * PAGE as u64, opts).map_err(|e| format!("{e:?}"))?;
                self.vmos.push(MVmo {
                    weak: Arc::downgrade(&vmo),
                    id: vmo.id(),
                    handle: Some(vmo),
                    pages: n,
                    committed: BTreeMap::new(),
                    resizable,
                    alive: true,
                    slice: None,
                });
                Ok(())
            }
            Op::VmoCommit { vmo, off, len } | Op::VmoDecommit { vmo, off, len } => {
                let Some(o) = self.pick_vmo(vmo) else {
                    return Ok(());
                };
                let commit = matches!(op, Op::VmoCommit { .. });
                let first = off as u64 % (self.vmos[o].pages + 2);
                let end = first + len as u64 % 5;
                let predicted = if end > self.vmos[o].pages {
                    Err(Status::ERR_OUT_OF_RANGE)
                } else if commit {
                    self.commit_pages_for_write(o, first, end)
                } else {
                    self.decommit_pages(o, first, end);
                    Ok(())
                };
                let h = self.vmos[o].handle.clone().unwrap();
                let (bo, bl) = (first * PAGE as u64, (end - first) * PAGE as u64);
                let actual = if commit {
                    h.commit(bo, bl)
                } else {
                    h.decommit(bo, bl)
                };
                self.last_status = actual.err();
                if predicted != actual {
                    return Err(format!(
                        "vmo (de)commit: predicted {predicted:?}, got {actual:?}"
                    ));
                }
                Ok(())
            }
            Op::VmoResize { vmo, pages } => {
                let Some(o) = self.pick_vmo(vmo) else {
                    return Ok(());
                };
                let n = pages as u64 % 9;
                let predicted = if !self.vmos[o].resizable {
                    Err(Status::ERR_UNAVAILABLE)
                } else {
                    let m = &mut self.vmos[o];
                    m.committed.retain(|&i, _| i < n);
                    m.pages = n;
                    Ok(())
                };
                let actual = self.vmos[o]
                    .handle
                    .as_ref()
                    .unwrap()
                    .resize(n * PAGE as u64);
                self.last_status = actual.err();
                if predicted != actual {
                    return Err(format!("resize: predicted {predicted:?}, got {actual:?}"));
                }
                Ok(())
            }
            Op::VmoDrop { vmo } => {
                if let Some(o) = self.pick_vmo(vmo) {
                    self.vmos[o].handle = None;
                }
                Ok(())
            }
            Op::VmoChild {
                vmo,
                kind,
                off,
                pages,
                resizable,
            } => self.step_child(vmo, kind, off, pages, resizable),
            Op::VmoWrite { vmo, page, byte } => {
                let Some(o) = self.pick_vmo(vmo) else {
                    return Ok(());
                };
                let idx = page as u64 % (self.vmos[o].pages + 1);
                let predicted = if idx >= self.vmos[o].pages {
                    Err(Status::ERR_OUT_OF_RANGE)
                } else {
                    self.commit_pages_for_write(o, idx, idx + 1).map(|()| {
                        let frame = self.frame_at(o, idx).unwrap();
                        self.content.insert(frame, byte);
                    })
                };
                let h = self.vmos[o].handle.clone().unwrap();
                let actual = h.write(idx * PAGE as u64, &[byte]);
                self.last_status = actual.err();
                if predicted != actual {
                    return Err(format!(
                        "vmo write: predicted {predicted:?}, got {actual:?}"
                    ));
                }
                Ok(())
            }
        }
    }

    /// zx_vmo_create_child: a snapshot (`kind` 0 or 1: SNAPSHOT or SNAPSHOT_AT_LEAST_ON_WRITE,
    /// RESIZABLE with `resizable`) gets its parent's frames in its window (equal model frames:
    /// shared), a slice (`kind` 2) is a window onto its parent's root. Statuses as
    /// `Vmo::create_child` documents them for what is generated here.
    fn step_child(
        &mut self,
        vmo: u8,
        kind: u8,
        off: u8,
        pages: u8,
        resizable: bool,
    ) -> Result<(), String> {
        if self.vmos.iter().filter(|v| v.alive).count() >= MAX_LIVE_VMOS {
            return Ok(());
        }
        let Some(o) = self.pick_vmo(vmo) else {
            return Ok(());
        };
        let parent_pages = self.vmos[o].pages;
        let slice = kind % 3 == 2;
        // A slice mostly fits its parent (to be mapped and written later); the rest anywhere.
        let (first, n) = if slice && off < 200 && parent_pages > 0 {
            let n = 1 + pages as u64 % parent_pages;
            (off as u64 % (parent_pages - n + 1), n)
        } else {
            (off as u64 % (parent_pages + 2), pages as u64 % 9)
        };
        let options = match kind % 3 {
            0 => ZX_VMO_CHILD_SNAPSHOT,
            1 => ZX_VMO_CHILD_SNAPSHOT_AT_LEAST_ON_WRITE,
            _ => ZX_VMO_CHILD_SLICE,
        } | if resizable && !slice {
            ZX_VMO_CHILD_RESIZABLE
        } else {
            0
        };
        let predicted = if slice {
            if first + n > parent_pages {
                Err(Status::ERR_INVALID_ARGS)
            } else if self.vmos[o].resizable {
                Err(Status::ERR_NOT_SUPPORTED)
            } else {
                Ok(BTreeMap::new())
            }
        } else if self.vmos[o].slice.is_some() {
            Err(Status::ERR_NOT_SUPPORTED)
        } else {
            Ok(self.vmos[o]
                .committed
                .range(first..(first + n).min(parent_pages).max(first))
                .map(|(&i, &f)| (i - first, f))
                .collect())
        };
        let h = self.vmos[o].handle.clone().unwrap();
        let actual = h.create_child(options, first * PAGE as u64, n * PAGE as u64);
        self.last_status = actual.as_ref().err().copied();
        match (predicted, actual) {
            (Ok(committed), Ok(child)) => {
                let slice = slice.then(|| self.resolve(o, first));
                self.vmos.push(MVmo {
                    weak: Arc::downgrade(&child),
                    id: child.id(),
                    handle: Some(child),
                    pages: n,
                    committed,
                    resizable: resizable && slice.is_none(),
                    alive: true,
                    slice,
                });
                Ok(())
            }
            (Err(p), Err(a)) if p == a => Ok(()),
            (p, a) => Err(format!(
                "create_child {options:#x} at page {first} +{n}: predicted {:?}, got {:?}",
                p.map(drop),
                a.map(drop)
            )),
        }
    }

    /// zx_vmar_op_range, page by page. Mapping boundaries matter for COMMIT / DECOMMIT (each
    /// mapping's piece is one VMO call, which checks its whole range before touching a page):
    /// they are the model's own (`mappings`, which `check` compares with the walk).
    fn predict_op_range(
        &mut self,
        v: usize,
        op: u32,
        start: usize,
        end: usize,
        rights: u32,
    ) -> ZxResult {
        let is_commit = op == ZX_VMAR_OP_COMMIT;
        let is_decommit = op == ZX_VMAR_OP_DECOMMIT;
        let op_children = rights & ZX_RIGHT_OP_CHILDREN != 0;
        if !matches!(
            op,
            ZX_VMAR_OP_COMMIT
                | ZX_VMAR_OP_DECOMMIT
                | ZX_VMAR_OP_MAP_RANGE
                | ZX_VMAR_OP_DONT_NEED
                | ZX_VMAR_OP_ALWAYS_NEED
        ) {
            return Err(Status::ERR_INVALID_ARGS);
        }
        if (is_commit || is_decommit) && rights & ZX_RIGHT_WRITE == 0 {
            return Err(Status::ERR_ACCESS_DENIED);
        }
        // ZIRCON: MAP_RANGE needs READ.
        if op == ZX_VMAR_OP_MAP_RANGE && rights & ZX_RIGHT_READ == 0 {
            return Err(Status::ERR_ACCESS_DENIED);
        }
        if start == end {
            return Err(Status::ERR_INVALID_ARGS);
        }
        let vm = &self.vmars[v];
        if start < vm.base || end > vm.end() {
            return Err(Status::ERR_OUT_OF_RANGE);
        }
        if !vm.alive {
            return Err(Status::ERR_BAD_STATE);
        }
        let segments: Vec<(usize, usize)> = self
            .mappings()
            .into_iter()
            .filter(|&(b, e)| b < end && start < e)
            .map(|(b, e)| (b.max(start), e.min(end)))
            .collect();
        let mut expected = start;
        for (s, e) in segments {
            if s > expected {
                return Err(Status::ERR_BAD_STATE);
            }
            let m = self.pages[&s];
            if (is_commit || is_decommit || !op_children) && m.vmar != v {
                return Err(Status::ERR_INVALID_ARGS);
            }
            if is_commit || is_decommit {
                if !m.max.contains(W) {
                    return Err(Status::ERR_ACCESS_DENIED);
                }
                let (first, last) = (m.idx, m.idx + (e - s) as u64);
                if last > self.vmos[m.vmo].pages {
                    return Err(Status::ERR_OUT_OF_RANGE);
                }
                if is_commit {
                    self.commit_pages_for_write(m.vmo, first, last)?;
                } else {
                    self.decommit_pages(m.vmo, first, last);
                }
            }
            expected = e;
        }
        if expected < end {
            return Err(Status::ERR_BAD_STATE);
        }
        Ok(())
    }
}
