//! Host tests of the VMO: sizes, counts, reads and writes, commit and decommit, resize, the
//! content size, discardable locks, and the page walks of the direct copies.

use super::*;
use crate::soft_mmu::SoftPhysMem;

fn phys(frames: usize) -> (Arc<SoftPhysMem>, Arc<dyn PhysMem>) {
    let p = SoftPhysMem::new(frames);
    let d: Arc<dyn PhysMem> = p.clone();
    (p, d)
}

#[test]
fn create_rounds_up_and_rejects_bad_options_and_overflow() {
    let (_, p) = phys(4);
    let vmo = Vmo::create(p.clone(), 1, 0).unwrap();
    assert_eq!(vmo.page_count(), 1);
    assert_eq!(vmo.size(), 4096);
    assert_eq!(
        Vmo::create(p.clone(), 0, 1 << 7).unwrap_err(),
        Status::ERR_INVALID_ARGS
    );
    assert_eq!(
        Vmo::create(p, u64::MAX, 0).unwrap_err(),
        Status::ERR_OUT_OF_RANGE
    );
}

#[test]
fn range_counts_match_a_page_walk() {
    let (_, p) = phys(2048);
    let pages = 5 * COUNT_RUN + 17;
    let vmo = Vmo::create(p, pages * PAGE, 0).unwrap();
    use crate::RandomSource;
    let mut rng = crate::SplitMix64::new(7);
    for round in 0..200 {
        let a = rng.next_u64() % pages;
        let b = a + rng.next_u64() % (pages - a) + 1;
        if round % 3 == 2 {
            vmo.decommit(a * PAGE, (b - a) * PAGE).unwrap();
        } else {
            vmo.commit(a * PAGE, (b - a) * PAGE).unwrap();
        }
        for _ in 0..20 {
            let lo = rng.next_u64() % (pages + 1);
            let hi = lo + rng.next_u64() % (pages + 1 - lo);
            let want = vmo.lock().pages.range(lo..hi).count();
            assert_eq!(vmo.committed_pages_in(lo, hi), want, "[{lo}, {hi})");
        }
    }
    let total: u64 = vmo.lock().run_counts.values().map(|&n| u64::from(n)).sum();
    assert_eq!(total as usize, vmo.committed_page_count());
}

#[test]
fn read_of_uncommitted_is_zero_and_does_not_commit() {
    let (sp, p) = phys(4);
    let vmo = Vmo::create(p, 3 * 4096, 0).unwrap();
    let mut buf = [0xffu8; 100];
    vmo.read(4000, &mut buf).unwrap();
    assert_eq!(buf, [0u8; 100]);
    assert_eq!(vmo.committed_page_count(), 0);
    assert_eq!(sp.used_frames(), 0);
}

#[test]
fn write_spanning_pages_commits_both_and_reads_back() {
    let (sp, p) = phys(4);
    let vmo = Vmo::create(p, 3 * 4096, 0).unwrap();
    let data: Vec<u8> = (0..200u8).collect();
    vmo.write(4000, &data).unwrap();
    assert_eq!(vmo.committed_page_count(), 2);
    assert_eq!(sp.used_frames(), 2);
    let mut back = [0u8; 200];
    vmo.read(4000, &mut back).unwrap();
    assert_eq!(&back[..], &data[..]);
}

#[test]
fn out_of_range_and_overflowing_ranges() {
    let (_, p) = phys(4);
    let vmo = Vmo::create(p, 4096, 0).unwrap();
    let mut buf = [0u8; 2];
    assert_eq!(vmo.read(4095, &mut buf), Err(Status::ERR_OUT_OF_RANGE));
    assert_eq!(vmo.write(u64::MAX, &buf), Err(Status::ERR_OUT_OF_RANGE));
    assert_eq!(vmo.commit(0, u64::MAX), Err(Status::ERR_OUT_OF_RANGE));
    assert_eq!(vmo.decommit(4096, 1), Err(Status::ERR_OUT_OF_RANGE));
    assert_eq!(vmo.commit(4096, 0), Ok(()));
}

#[test]
fn commit_runs_out_of_frames_then_decommit_returns_them() {
    let (sp, p) = phys(2);
    let vmo = Vmo::create(p, 3 * 4096, 0).unwrap();
    assert_eq!(vmo.commit(0, 3 * 4096), Err(Status::ERR_NO_MEMORY));
    assert_eq!(sp.free_frames(), 0);
    vmo.decommit(0, 3 * 4096).unwrap();
    assert_eq!(sp.free_frames(), 2);
    assert_eq!(vmo.committed_page_count(), 0);
}

#[test]
fn resize_needs_resizable_and_shrink_frees_pages() {
    let (sp, p) = phys(4);
    let fixed = Vmo::create(p.clone(), 4096, 0).unwrap();
    assert_eq!(fixed.resize(8192), Err(Status::ERR_UNAVAILABLE));
    let vmo = Vmo::create(p, 4 * 4096, ZX_VMO_RESIZABLE).unwrap();
    vmo.commit(0, 4 * 4096).unwrap();
    vmo.resize(4096 + 1).unwrap();
    assert_eq!(vmo.page_count(), 2);
    assert_eq!(sp.used_frames(), 2);
    vmo.resize(8 * 4096).unwrap();
    let mut buf = [1u8; 4];
    vmo.read(3 * 4096, &mut buf).unwrap();
    assert_eq!(buf, [0; 4], "regrown pages read as zeros");
    assert_eq!(vmo.resize(u64::MAX), Err(Status::ERR_OUT_OF_RANGE));
}

#[test]
fn content_size_follows_create_resize_and_set() {
    let (_, p) = phys(4);
    let vmo = Vmo::create(p.clone(), 5000, ZX_VMO_RESIZABLE).unwrap();
    assert_eq!(vmo.content_size(), 5000, "the unrounded creation size");
    assert_eq!(vmo.size(), 8192);
    vmo.set_content_size(100);
    assert_eq!(vmo.content_size(), 100);
    assert_eq!(vmo.size(), 8192, "the VMO's size stays");
    vmo.set_content_size(1 << 40);
    assert_eq!(
        vmo.content_size(),
        1 << 40,
        "beyond the size is kept as given"
    );
    vmo.resize(5461).unwrap();
    assert_eq!(vmo.content_size(), 5461, "resize sets the unrounded size");
    assert_eq!(vmo.resize(u64::MAX), Err(Status::ERR_OUT_OF_RANGE));
    assert_eq!(vmo.content_size(), 5461, "a failed resize leaves it");
    let fixed = Vmo::create(p, 4096, 0).unwrap();
    assert_eq!(fixed.resize(8192), Err(Status::ERR_UNAVAILABLE));
    assert_eq!(fixed.content_size(), 4096);
}

#[test]
fn discardable_lock_counts_whole_vmo_only() {
    let (_, p) = phys(4);
    let plain = Vmo::create(p.clone(), 3 * 4096, 0).unwrap();
    let ns = Err(Status::ERR_NOT_SUPPORTED);
    assert_eq!(plain.lock_discardable(0, 3 * 4096), ns);
    assert_eq!(plain.unlock_discardable(0, 3 * 4096), ns);
    assert_eq!(plain.lock_discardable(0, 4096), ns, "before the range");
    let vmo = Vmo::create(p, 3 * 4096, ZX_VMO_DISCARDABLE).unwrap();
    let oor = Err(Status::ERR_OUT_OF_RANGE);
    for (off, len) in [(0, 4096), (4096, 2 * 4096), (4096, 4096), (0, 4 * 4096)] {
        assert_eq!(vmo.lock_discardable(off, len), oor, "{off} {len}");
        assert_eq!(vmo.unlock_discardable(off, len), oor, "{off} {len}");
    }
    assert_eq!(
        vmo.unlock_discardable(0, 3 * 4096),
        Err(Status::ERR_BAD_STATE)
    );
    vmo.lock_discardable(0, 3 * 4096).unwrap();
    vmo.lock_discardable(0, 3 * 4096).unwrap();
    assert!(vmo.is_locked());
    vmo.unlock_discardable(0, 3 * 4096).unwrap();
    assert!(vmo.is_locked(), "one lock left");
    vmo.unlock_discardable(0, 3 * 4096).unwrap();
    assert!(!vmo.is_locked());
    assert_eq!(
        vmo.unlock_discardable(0, 3 * 4096),
        Err(Status::ERR_BAD_STATE)
    );
}

/// One piece a page walk hands out: `(frame, offset in page, len)`.
type Piece = (Option<PhysAddr>, usize, usize);

/// The pieces `read_pages` hands out for `[offset, offset + len)`, and their bytes read from
/// the frames (zeros for `None`).
fn pieces_read(vmo: &Vmo, p: &dyn PhysMem, offset: u64, len: usize) -> (Vec<Piece>, Vec<u8>) {
    let mut pieces = Vec::new();
    let mut bytes = Vec::new();
    let done = vmo
        .read_pages(offset, len, &mut |frame, in_page, l| {
            let mut buf = vec![0u8; l];
            if let Some(frame) = frame {
                p.read(frame, in_page, &mut buf);
            }
            pieces.push((frame, in_page, l));
            bytes.extend_from_slice(&buf);
            true
        })
        .unwrap();
    assert_eq!(done, len, "every piece taken: the whole range is done");
    (pieces, bytes)
}

#[test]
fn read_pages_splits_at_page_boundaries_and_matches_read() {
    let (sp, p) = phys(8);
    let vmo = Vmo::create(p.clone(), 4 * PAGE, 0).unwrap();
    let data: Vec<u8> = (0..6000u32).map(|i| (i % 251) as u8).collect();
    vmo.write(PAGE + 100, &data).unwrap(); // pages 1 and 2; 0 and 3 stay uncommitted
    let used = sp.used_frames();
    let (pieces, bytes) = pieces_read(&vmo, &*p, 50, 3 * PAGE as usize);
    let shape: Vec<(bool, usize, usize)> =
        pieces.iter().map(|q| (q.0.is_some(), q.1, q.2)).collect();
    assert_eq!(
        shape,
        [
            (false, 50, 4046),
            (true, 0, 4096),
            (true, 0, 4096),
            (false, 0, 50)
        ],
        "one piece per page, frames only for committed pages"
    );
    assert_eq!(pieces[1].0, vmo.frame_of(1));
    assert_eq!(pieces[2].0, vmo.frame_of(2));
    let mut want = vec![0u8; 3 * PAGE as usize];
    vmo.read(50, &mut want).unwrap();
    assert!(bytes == want, "the pieces' bytes are what read gives");
    assert_eq!(sp.used_frames(), used, "reading commits nothing");
    assert_eq!(
        pieces_read(&vmo, &*p, 4 * PAGE, 0).0,
        [],
        "an empty range at the end hands out nothing"
    );
}

#[test]
fn page_walks_stop_at_the_first_refused_piece() {
    let (_, p) = phys(8);
    let vmo = Vmo::create(p, 4 * PAGE, 0).unwrap();
    let mut seen = Vec::new();
    let done = vmo.write_pages(100, 3 * PAGE as usize, &mut |_, in_page, l| {
        seen.push((in_page, l));
        seen.len() < 2
    });
    assert_eq!(done, Ok(3996), "the bytes of the pieces taken");
    assert_eq!(seen, [(100, 3996), (0, 4096)], "nothing after the refusal");
    assert_eq!(
        vmo.committed_page_count(),
        2,
        "the refused piece's page was committed before the callback saw it"
    );
    let mut calls = 0;
    let done = vmo.read_pages(0, 2 * PAGE as usize, &mut |_, _, _| {
        calls += 1;
        false
    });
    assert_eq!((done, calls), (Ok(0), 1));
}

#[test]
fn write_pages_commits_as_it_goes() {
    let (sp, p) = phys(2);
    let vmo = Vmo::create(p.clone(), 4 * PAGE, 0).unwrap();
    vmo.commit(PAGE, PAGE).unwrap();
    // Page 0 takes the last free frame, page 1 is committed, page 2 finds none.
    let mut seen = Vec::new();
    let r = vmo.write_pages(10, 3 * PAGE as usize, &mut |frame, in_page, l| {
        p.write(frame, in_page, &vec![0xab; l]);
        seen.push((in_page, l));
        true
    });
    assert_eq!(r, Err(Status::ERR_NO_MEMORY));
    assert_eq!(
        seen,
        [(10, 4086), (0, 4096)],
        "the pieces before the failure"
    );
    assert_eq!(
        vmo.committed_page_count(),
        2,
        "earlier pages stay committed"
    );
    assert_eq!(sp.free_frames(), 0);
    let mut back = vec![0u8; 2 * PAGE as usize];
    vmo.read(0, &mut back).unwrap();
    assert_eq!(&back[..10], [0; 10]);
    assert!(
        back[10..].iter().all(|&b| b == 0xab),
        "the pieces' bytes landed in the VMO's own frames"
    );
}

#[test]
fn page_walks_check_the_range_first() {
    let (_, p) = phys(4);
    let vmo = Vmo::create(p, 2 * PAGE, 0).unwrap();
    let oor = Err(Status::ERR_OUT_OF_RANGE);
    for (offset, len) in [(2 * PAGE - 4, 8), (u64::MAX - 2, 8), (0, usize::MAX)] {
        let mut calls = 0;
        let r = vmo.read_pages(offset, len, &mut |_, _, _| {
            calls += 1;
            true
        });
        assert_eq!(r, oor, "read [{offset:#x} + {len:#x})");
        let r = vmo.write_pages(offset, len, &mut |_, _, _| {
            calls += 1;
            true
        });
        assert_eq!(r, oor, "write [{offset:#x} + {len:#x})");
        assert_eq!(calls, 0, "a piece handed out before the range check");
    }
    assert_eq!(vmo.committed_page_count(), 0);
}

#[test]
fn backrefs_overlapping_matches_brute_force() {
    let key = |uid: u64, start: u64| BackRefKey {
        vmo_offset: start,
        aspace: uid % 3,
        uid,
    };
    let r = |len: u64| MappingRef {
        aspace: Weak::new(),
        base: 0,
        size: len as usize,
    };
    let mut refs = BackRefs::default();
    // uid -> (start, len)
    let mut all = Vec::new();
    let mut x = 12345u64;
    for uid in 0..300u64 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let start = (x >> 33) % 64 * PAGE;
        let len = ((x >> 20) % 5 + 1) * PAGE;
        assert!(refs.reserve(uid % 3, 1));
        refs.insert(key(uid, start), r(len)).ok().unwrap();
        all.push((start, len));
    }
    // Update some in place (new length), move others (new start: remove + insert, as an unmap
    // of a mapping's head does), remove others.
    for uid in (0..300u64).step_by(7) {
        let (start, _) = all[uid as usize];
        if uid % 2 == 0 {
            refs.insert(key(uid, start), r(PAGE)).ok().unwrap();
            all[uid as usize] = (start, PAGE);
        } else {
            refs.remove(key(uid, start));
            assert!(refs.reserve(uid % 3, 1));
            refs.insert(key(uid, uid % 50 * PAGE), r(PAGE))
                .ok()
                .unwrap();
            all[uid as usize] = (uid % 50 * PAGE, PAGE);
        }
    }
    let mut live: Vec<bool> = vec![true; 300];
    for uid in (0..300u64).step_by(5) {
        let (start, _) = all[uid as usize];
        refs.remove(key(uid, start));
        refs.remove(key(uid, start)); // twice: no-op
        live[uid as usize] = false;
    }
    let all: Vec<(u64, u64, u64)> = (0..300u64)
        .filter(|&uid| live[uid as usize])
        .map(|uid| (uid, all[uid as usize].0, all[uid as usize].1))
        .collect();
    refs.check().unwrap();
    assert_eq!(refs.len(), all.len());
    assert_eq!(
        refs.count_for(1),
        all.iter().filter(|e| e.0 % 3 == 1).count()
    );
    for lo in 0..70u64 {
        for hi in lo + 1..lo + 8 {
            let (lo, hi) = (lo * PAGE, hi * PAGE);
            let mut got: Vec<u64> = refs.overlapping(lo, hi).map(|(s, _)| s).collect();
            let mut want: Vec<u64> = all
                .iter()
                .filter(|(_, s, l)| *s < hi && s + l > lo)
                .map(|(_, s, _)| *s)
                .collect();
            got.sort_unstable();
            want.sort_unstable();
            assert_eq!(got, want, "window [{lo:#x}, {hi:#x})");
        }
    }
}

#[test]
fn drop_returns_every_frame() {
    let (sp, p) = phys(4);
    let vmo = Vmo::create(p, 4 * 4096, 0).unwrap();
    vmo.commit(0, 4 * 4096).unwrap();
    assert_eq!(sp.free_frames(), 0);
    drop(vmo);
    assert_eq!(sp.free_frames(), 4);
}

/// The sum of the scaled bytes of `vmos`, rounded to whole bytes.
fn scaled_sum(vmos: &[&Arc<Vmo>]) -> u64 {
    vmos.iter()
        .fold(abi::info::ScaledBytes::default(), |acc, v| {
            acc + v.attribution(&mut || {}).scaled
        })
        .round()
}

#[test]
fn attribution_divides_shared_pages_among_their_holders() {
    use abi::info::{ScaledBytes, FRACTIONAL_BYTE};
    let (soft, p) = phys(16);
    let v = Vmo::create(p, 2 * PAGE, 0).unwrap();
    v.write(0, &[1]).unwrap();
    v.write(PAGE, &[1]).unwrap();
    let whole = v.attribution(&mut || {});
    assert_eq!(
        whole,
        Attribution {
            bytes: 2 * PAGE,
            private_bytes: 2 * PAGE,
            scaled: ScaledBytes {
                integral: 2 * PAGE,
                fractional: 0
            },
        }
    );
    let c1 = v.create_child(ZX_VMO_CHILD_SNAPSHOT, 0, 2 * PAGE).unwrap();
    let c2 = v.create_child(ZX_VMO_CHILD_SNAPSHOT, 0, PAGE).unwrap();
    let s = v.create_child(ZX_VMO_CHILD_SLICE, PAGE, PAGE).unwrap();
    // Page 0: v, c1, c2 (a third each); page 1: v, c1 (half each).
    let third = ScaledBytes::share_of(PAGE, 3);
    assert_eq!(third.integral, 1365);
    assert_eq!(third.fractional, FRACTIONAL_BYTE / 3);
    let a = v.attribution(&mut || {});
    assert_eq!((a.bytes, a.private_bytes), (2 * PAGE, 0));
    assert_eq!(a.scaled, third + ScaledBytes::share_of(PAGE, 2));
    let a2 = c2.attribution(&mut || {});
    assert_eq!((a2.bytes, a2.private_bytes, a2.scaled), (PAGE, 0, third));
    // A slice sees its root's page, but none is attributed to it.
    let sa = s.attribution(&mut || {});
    assert_eq!(
        (sa.bytes, sa.private_bytes, sa.scaled),
        (PAGE, 0, ScaledBytes::default())
    );
    assert_eq!(
        scaled_sum(&[&v, &c1, &c2, &s]),
        soft.used_frames() as u64 * PAGE
    );
    // A fork makes the writer's copy private and leaves the old frame to the others.
    c1.write(0, &[2]).unwrap();
    let a1 = c1.attribution(&mut || {});
    assert_eq!(a1.private_bytes, PAGE);
    assert_eq!(
        a1.scaled,
        ScaledBytes::share_of(PAGE, 1) + ScaledBytes::share_of(PAGE, 2)
    );
    assert_eq!(
        v.attribution(&mut || {}).scaled.integral,
        PAGE / 2 + PAGE / 2
    );
    assert_eq!(
        scaled_sum(&[&v, &c1, &c2, &s]),
        soft.used_frames() as u64 * PAGE
    );
}

#[test]
fn attribution_walks_in_steps_with_a_preemption_point_between() {
    let (_, p) = phys(2 * ATTRIBUTION_STEP + 8);
    let pages = 2 * ATTRIBUTION_STEP as u64 + 5;
    let v = Vmo::create(p, pages * PAGE, 0).unwrap();
    v.commit(0, pages * PAGE).unwrap();
    // Outside a clone family: the committed count, no walk.
    let mut steps = 0;
    let alone = v.attribution(&mut || steps += 1);
    assert_eq!(
        (alone.private_bytes, alone.scaled.integral, steps),
        (pages * PAGE, pages * PAGE, 0)
    );
    // A family member walks its pages in steps.
    let _child = v.create_child(ZX_VMO_CHILD_SNAPSHOT, 0, PAGE).unwrap();
    let mut steps = 0;
    let a = v.attribution(&mut || steps += 1);
    assert_eq!(a.bytes, pages * PAGE);
    assert_eq!(a.scaled.integral, pages * PAGE - PAGE / 2);
    assert_eq!(steps, 2, "three holds of the lock, two preemption points");
    let mut steps = 0;
    let part = v.attribution_in(3, 3 + ATTRIBUTION_STEP as u64, &mut || steps += 1);
    assert_eq!((part.bytes, steps), (ATTRIBUTION_STEP as u64 * PAGE, 0));
}
