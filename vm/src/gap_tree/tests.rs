use super::*;
use std::collections::BTreeMap;

const PAGE: usize = 0x1000;
const GIB: usize = 1 << 30;

fn tree(entries: &[(usize, usize)]) -> GapTree<u32> {
    let mut t = GapTree::new(0x10_0000, 0x100_0000);
    for (i, &(b, l)) in entries.iter().enumerate() {
        assert!(t.insert(b, l, i as u32).is_ok(), "insert {b:#x}+{l:#x}");
    }
    t.check_invariants().unwrap();
    t
}

fn collect(t: &GapTree<u32>) -> Vec<(usize, usize, u32)> {
    t.iter().map(|(b, l, v)| (b, l, *v)).collect()
}

#[test]
fn empty_tree() {
    let t: GapTree<u32> = GapTree::new(0x1000, 0x9000);
    assert_eq!(t.range_base(), 0x1000);
    assert_eq!(t.range_end(), 0xa000);
    assert_eq!(t.len(), 0);
    assert!(t.is_empty());
    assert_eq!(t.max_gap(), 0x9000);
    assert!(t.get(0x1000).is_none());
    assert!(t.find(0x1000).is_none());
    assert!(t.prev_entry(usize::MAX).is_none());
    assert!(t.next_entry(0).is_none());
    assert_eq!(t.iter().count(), 0);
    assert_eq!(t.overlapping(0, usize::MAX).count(), 0);
    assert_eq!(t.first_fit(0x9000, 1, 0, usize::MAX), Some(0x1000));
    assert_eq!(t.last_fit(0x1000, PAGE, 0, usize::MAX), Some(0x9000));
    assert_eq!(t.first_fit(0x9001, 1, 0, usize::MAX), None);
    assert!(t.is_free(0x1000, 0x9000));
    t.check_invariants().unwrap();
    let d: GapTree<u32> = GapTree::default();
    assert_eq!(d.max_gap(), 0);
    assert_eq!(d.first_fit(1, 1, 0, usize::MAX), None);
}

#[test]
fn new_saturates_span() {
    let t: GapTree<u32> = GapTree::new(usize::MAX - 10, 100);
    assert_eq!(t.range_end(), usize::MAX);
    assert_eq!(t.max_gap(), 10);
    t.check_invariants().unwrap();
}

#[test]
fn insert_rejections() {
    let mut t = tree(&[(0x20_0000, 0x1000)]);
    assert_eq!(t.insert(0x30_0000, 0, 1), Err(1), "len 0");
    assert_eq!(t.insert(0xf_f000, 0x1000, 2), Err(2), "below span");
    assert_eq!(t.insert(0xf_f000, 0x2000, 3), Err(3), "straddles span base");
    assert_eq!(
        t.insert(0x10f_f000, 0x2000, 4),
        Err(4),
        "straddles span end"
    );
    assert_eq!(t.insert(0x110_0000, 0x1000, 5), Err(5), "above span");
    assert_eq!(t.insert(usize::MAX, 1, 6), Err(6));
    assert_eq!(t.insert(0x30_0000, usize::MAX, 7), Err(7), "overflow");
    assert_eq!(t.insert(0x20_0000, 0x1000, 8), Err(8), "duplicate");
    assert_eq!(
        t.insert(0x1f_f000, 0x1001, 9),
        Err(9),
        "overlaps from the left"
    );
    assert_eq!(
        t.insert(0x20_0fff, 0x10, 10),
        Err(10),
        "overlaps from the right"
    );
    assert_eq!(t.insert(0x20_0100, 0x10, 11), Err(11), "contained");
    assert_eq!(t.insert(0x1f_0000, 0x10_0000, 12), Err(12), "containing");
    assert_eq!(t.len(), 1);
    // Touching on both sides and at both span edges is fine.
    assert_eq!(t.insert(0x1f_f000, 0x1000, 13), Ok(()));
    assert_eq!(t.insert(0x20_1000, 0x1000, 14), Ok(()));
    assert_eq!(t.insert(0x10_0000, 0x1000, 15), Ok(()));
    assert_eq!(t.insert(0x10f_f000, 0x1000, 16), Ok(()));
    t.check_invariants().unwrap();
    assert_eq!(
        collect(&t),
        vec![
            (0x10_0000, 0x1000, 15),
            (0x1f_f000, 0x1000, 13),
            (0x20_0000, 0x1000, 0),
            (0x20_1000, 0x1000, 14),
            (0x10f_f000, 0x1000, 16),
        ]
    );
}

#[test]
fn insert_fills_whole_span_and_top_of_address_space() {
    let mut t = GapTree::new(usize::MAX - 0x3000, 0x3000);
    assert_eq!(t.insert(usize::MAX - 0x3000, 0x3000, 'a'), Ok(()));
    assert_eq!(t.max_gap(), 0);
    assert!(!t.is_free(usize::MAX - 1, 1));
    assert_eq!(
        t.find(usize::MAX - 1).map(|e| e.0),
        Some(usize::MAX - 0x3000)
    );
    assert!(t.find(usize::MAX).is_none());
    assert_eq!(t.first_fit(1, 1, 0, usize::MAX), None);
    assert_eq!(t.remove(usize::MAX - 0x3000), Some((0x3000, 'a')));
    let mut whole: GapTree<()> = GapTree::new(0, usize::MAX);
    assert_eq!(whole.insert(0, usize::MAX, ()), Ok(()));
    assert_eq!(whole.max_gap(), 0);
    assert_eq!(whole.find(usize::MAX - 1).map(|e| e.1), Some(usize::MAX));
    whole.check_invariants().unwrap();
}

#[test]
fn remove_and_slot_reuse() {
    let mut t = tree(&[
        (0x20_0000, 0x1000),
        (0x30_0000, 0x2000),
        (0x40_0000, 0x3000),
    ]);
    assert_eq!(t.remove(0x30_0001), None);
    assert_eq!(t.remove(0x30_0000), Some((0x2000, 1)));
    assert_eq!(t.remove(0x30_0000), None);
    t.check_invariants().unwrap();
    assert_eq!(t.len(), 2);
    let slots = t.leaves.len();
    assert_eq!(t.insert(0x50_0000, 0x1000, 7), Ok(()));
    assert_eq!(t.leaves.len(), slots, "no new leaf");
    t.check_invariants().unwrap();
    for b in [0x20_0000, 0x40_0000, 0x50_0000] {
        assert!(t.remove(b).is_some());
        t.check_invariants().unwrap();
    }
    assert!(t.is_empty());
    assert_eq!(t.max_gap(), 0x100_0000);
    assert_eq!(t.remove(0x20_0000), None);
}

#[test]
fn freed_nodes_are_reused() {
    // Enough entries for three levels; emptying and refilling must not grow either arena.
    let mut t = GapTree::new(0, 1 << 40);
    let n = 3000usize;
    for i in 0..n {
        assert_eq!(t.insert(i * 2 * PAGE, PAGE, i), Ok(()));
    }
    assert!(t.height >= 3, "height {}", t.height);
    let (leaves, internals) = (t.leaves.len(), t.internals.len());
    for i in 0..n {
        assert_eq!(t.remove(i * 2 * PAGE), Some((PAGE, i)));
    }
    t.check_invariants().unwrap();
    assert!(t.is_empty());
    assert_eq!((t.root, t.height), (NIL, 0));
    for i in (0..n).rev() {
        assert_eq!(t.insert(i * 2 * PAGE, PAGE, i), Ok(()));
    }
    t.check_invariants().unwrap();
    assert_eq!((t.leaves.len(), t.internals.len()), (leaves, internals));
}

#[test]
fn random_updates_match_btreemap_on_deep_trees() {
    // The proptest below uses a small span (a few levels at most); this drives splits, merges
    // and redistributions at every level of a 4-5 level tree, in random order.
    let mut t = GapTree::new(PAGE, 1 << 30);
    let mut m: BTreeMap<usize, (usize, u64)> = BTreeMap::new();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for step in 0..60_000u64 {
        let slot = (next() % 20_000) as usize;
        let base = PAGE + slot * 4 * PAGE;
        // Grow for the first half, then shrink: the population passes through every height.
        let insert = if step < 30_000 {
            next() % 4 != 0
        } else {
            next() % 4 == 0
        };
        if insert {
            let len = (1 + next() % 4) as usize * PAGE;
            let ok = t.insert(base, len, step).is_ok();
            assert_eq!(ok, !m.contains_key(&base), "insert {base:#x}");
            if ok {
                m.insert(base, (len, step));
            }
        } else {
            assert_eq!(t.remove(base), m.remove(&base), "remove {base:#x}");
        }
        if step % 5_000 == 0 {
            t.check_invariants().unwrap();
            // Every entry's neighbours, so leaf boundaries (first and last of a leaf) are hit.
            let keys: Vec<(usize, usize)> = m.iter().map(|(&b, &(l, _))| (b, l)).collect();
            for (i, &(b, l)) in keys.iter().enumerate() {
                let got = t
                    .find_with_neighbours(b + l - 1)
                    .map(|(p, (eb, _, _), n)| (p.map(|e| e.0), eb, n.map(|e| e.0)));
                let want = (
                    i.checked_sub(1).map(|j| keys[j].0),
                    b,
                    keys.get(i + 1).map(|e| e.0),
                );
                assert_eq!(got, Some(want), "find_with_neighbours at entry {b:#x}");
            }
        }
        if step % 997 == 0 {
            let a = PAGE + (next() % (80_000 * PAGE as u64)) as usize;
            let want = m.range(..=a).next_back().map(|(&b, _)| b);
            assert_eq!(t.prev_entry(a).map(|e| e.0), want);
            let want = m.range(a + 1..).next().map(|(&b, _)| b);
            assert_eq!(t.next_entry(a).map(|e| e.0), want);
            // find_with_neighbours: the entry containing `a` (if any) with the entries
            // right before and after it.
            let containing = m
                .range(..=a)
                .next_back()
                .filter(|(&b, &(l, _))| a < b + l)
                .map(|(&b, &(l, v))| (b, l, v));
            let got = t
                .find_with_neighbours(a)
                .map(|(p, (b, l, v), n)| (p.map(|e| e.0), (b, l, *v), n.map(|e| e.0)));
            let want = containing.map(|(b, l, v)| {
                let p = m.range(..b).next_back().map(|(&pb, _)| pb);
                let n = m.range(b + 1..).next().map(|(&nb, _)| nb);
                (p, (b, l, v), n)
            });
            assert_eq!(got, want, "find_with_neighbours({a:#x})");
        }
    }
    t.check_invariants().unwrap();
    let all: Vec<_> = t.iter().map(|(b, l, v)| (b, l, *v)).collect();
    let want: Vec<_> = m.iter().map(|(&b, &(l, v))| (b, l, v)).collect();
    assert_eq!(all, want);
    for b in m.keys().copied().collect::<Vec<_>>() {
        assert!(t.remove(b).is_some());
    }
    t.check_invariants().unwrap();
    assert!(t.is_empty());
}

#[test]
fn get_and_get_mut_need_exact_base() {
    let mut t = tree(&[(0x20_0000, 0x3000)]);
    assert_eq!(t.get(0x20_0000), Some((0x3000, &0)));
    assert_eq!(t.get(0x20_1000), None);
    *t.get_mut(0x20_0000).unwrap().1 = 42;
    assert!(t.get_mut(0x20_0001).is_none());
    assert_eq!(t.get(0x20_0000), Some((0x3000, &42)));
}

#[test]
fn set_len_shrink_and_grow() {
    let mut t = tree(&[(0x20_0000, 0x3000), (0x30_0000, 0x1000)]);
    assert_eq!(t.set_len(0x20_0000, 0x1000), Ok(()));
    t.check_invariants().unwrap();
    assert!(t.is_free(0x20_1000, 0x2000));
    assert_eq!(
        t.set_len(0x20_0000, 0x10_0000),
        Ok(()),
        "grow up to the neighbour"
    );
    t.check_invariants().unwrap();
    assert_eq!(
        t.set_len(0x20_0000, 0x10_1000),
        Err(()),
        "into the neighbour"
    );
    assert_eq!(t.set_len(0x20_0000, 0), Err(()));
    assert_eq!(t.set_len(0x20_0001, 0x1000), Err(()), "not a base");
    assert_eq!(t.set_len(0x30_0000, usize::MAX), Err(()), "overflow");
    assert_eq!(
        t.set_len(0x30_0000, 0xe0_0000),
        Ok(()),
        "up to the span end"
    );
    assert_eq!(
        t.set_len(0x30_0000, 0xe0_0001),
        Err(()),
        "past the span end"
    );
    assert_eq!(t.get(0x30_0000), Some((0xe0_0000, &1)));
    assert_eq!(t.max_gap(), 0x10_0000);
    t.check_invariants().unwrap();
}

#[test]
fn find_edges() {
    let t = tree(&[
        (0x20_0000, 0x2000),
        (0x20_2000, 0x1000),
        (0x30_0000, 0x1000),
    ]);
    assert!(t.find(0x1f_ffff).is_none());
    assert_eq!(t.find(0x20_0000), Some((0x20_0000, 0x2000, &0)));
    assert_eq!(t.find(0x20_1fff), Some((0x20_0000, 0x2000, &0)));
    assert_eq!(t.find(0x20_2000), Some((0x20_2000, 0x1000, &1)));
    assert!(t.find(0x20_3000).is_none());
    assert_eq!(t.find(0x30_0fff).map(|e| e.0), Some(0x30_0000));
    assert!(t.find(0x30_1000).is_none());
    assert!(t.find(0).is_none());
    assert!(t.find(usize::MAX).is_none());
    let mut t = t;
    *t.find_mut(0x20_2800).unwrap().2 = 9;
    assert_eq!(t.get(0x20_2000), Some((0x1000, &9)));
    assert!(t.find_mut(0x20_3000).is_none());
}

#[test]
fn overlapping_ranges() {
    let t = tree(&[
        (0x20_0000, 0x1000),
        (0x20_2000, 0x1000),
        (0x20_4000, 0x1000),
    ]);
    let bases = |s, e| t.overlapping_bases(s, e);
    assert_eq!(bases(0, usize::MAX), vec![0x20_0000, 0x20_2000, 0x20_4000]);
    assert_eq!(bases(0x20_0fff, 0x20_2001), vec![0x20_0000, 0x20_2000]);
    assert_eq!(
        bases(0x20_1000, 0x20_2000),
        Vec::<usize>::new(),
        "only touching"
    );
    assert_eq!(bases(0x20_1000, 0x20_4001), vec![0x20_2000, 0x20_4000]);
    assert_eq!(bases(0x20_2800, 0x20_2801), vec![0x20_2000]);
    assert_eq!(
        bases(0x20_4000, 0x20_4000),
        Vec::<usize>::new(),
        "start == end"
    );
    assert_eq!(
        bases(0x20_5000, 0x20_0000),
        Vec::<usize>::new(),
        "start > end"
    );
    assert_eq!(bases(usize::MAX - 1, usize::MAX), Vec::<usize>::new());
    let v: Vec<_> = t.overlapping(0x20_3000, 0x20_5000).collect();
    assert_eq!(v, vec![(0x20_4000, 0x1000, &2)]);
    let mut it = t.overlapping(0, usize::MAX);
    assert_eq!(it.by_ref().count(), 3);
    assert!(it.next().is_none(), "fused");
}

#[test]
fn is_free_edges() {
    let t = tree(&[(0x20_0000, 0x1000), (0x20_2000, 0x1000)]);
    assert!(t.is_free(0x20_1000, 0x1000), "exactly the hole");
    assert!(!t.is_free(0x20_1000, 0x1001));
    assert!(!t.is_free(0x20_0fff, 0x1000));
    assert!(!t.is_free(0x20_1000, 0));
    assert!(!t.is_free(0x20_1000, usize::MAX));
    assert!(!t.is_free(usize::MAX, 1));
    assert!(t.is_free(0x10_0000, 0x10_0000), "from the span base");
    assert!(!t.is_free(0xf_ffff, 2), "below the span");
    assert!(t.is_free(0x20_3000, 0xef_d000), "to the span end");
    assert!(!t.is_free(0x20_3000, 0xef_d001), "past the span end");
    assert!(!t.is_free(0x1f_0000, 0x3_0000), "covers everything");
}

#[test]
fn prev_and_next_entry() {
    let t = tree(&[(0x20_0000, 0x1000), (0x30_0000, 0x1000)]);
    assert!(t.prev_entry(0x1f_ffff).is_none());
    assert_eq!(t.prev_entry(0x20_0000).map(|e| e.0), Some(0x20_0000));
    assert_eq!(t.prev_entry(0x2f_ffff).map(|e| e.0), Some(0x20_0000));
    assert_eq!(t.prev_entry(usize::MAX).map(|e| e.0), Some(0x30_0000));
    assert_eq!(t.next_entry(0).map(|e| e.0), Some(0x20_0000));
    assert_eq!(t.next_entry(0x20_0000).map(|e| e.0), Some(0x30_0000));
    assert!(t.next_entry(0x30_0000).is_none());
    assert!(t.next_entry(usize::MAX).is_none());
}

#[test]
fn max_gap_tracks_outer_and_inner_gaps() {
    let mut t = tree(&[(0x10_0000, 0x1000), (0x10f_f000, 0x1000)]);
    assert_eq!(t.max_gap(), 0xff_e000, "inner gap");
    assert_eq!(t.insert(0x80_0000, 0x1000, 2), Ok(()));
    assert_eq!(t.max_gap(), 0x10f_f000 - 0x80_1000, "upper inner gap");
    t.remove(0x10_0000);
    assert_eq!(
        t.max_gap(),
        0x10f_f000 - 0x80_1000,
        "leading gap is smaller"
    );
    t.remove(0x10f_f000);
    assert_eq!(t.max_gap(), 0x110_0000 - 0x80_1000, "trailing gap");
    t.check_invariants().unwrap();
}

#[test]
fn first_and_last_fit_basics() {
    // Span [1 MiB, 17 MiB); holes: [1M, 2M) [2M+4K, 3M) [3M+8K, 17M).
    let t = tree(&[(0x20_0000, 0x1000), (0x30_0000, 0x2000)]);
    assert_eq!(t.first_fit(PAGE, PAGE, 0, usize::MAX), Some(0x10_0000));
    assert_eq!(t.last_fit(PAGE, PAGE, 0, usize::MAX), Some(0x10f_f000));
    assert_eq!(t.first_fit(0x10_0000, PAGE, 0, usize::MAX), Some(0x10_0000));
    assert_eq!(t.first_fit(0x10_0001, 1, 0, usize::MAX), Some(0x30_2000));
    assert_eq!(
        t.first_fit(0xff_000, PAGE, 0x20_0000, usize::MAX),
        Some(0x20_1000)
    );
    assert_eq!(t.first_fit(0xff_001, 1, 0x20_0000, 0x30_0000), None);
    assert_eq!(t.last_fit(0x1000, PAGE, 0, 0x30_0000), Some(0x2f_f000));
    assert_eq!(t.last_fit(0x1000, PAGE, 0, 0x30_0fff), Some(0x2f_f000));
    assert_eq!(t.last_fit(0x1000, PAGE, 0, 0x20_0800), Some(0x1f_f000));
    // Windows.
    assert_eq!(t.first_fit(0x800, 1, 0x20_0800, 0x20_1800), Some(0x20_1000));
    assert_eq!(t.last_fit(0x800, 1, 0x20_0800, 0x20_1800), Some(0x20_1000));
    assert_eq!(t.first_fit(0x801, 1, 0x20_0800, 0x20_1800), None);
    assert_eq!(
        t.first_fit(1, 1, 0x30_0000, 0x30_0000),
        None,
        "empty window"
    );
    assert_eq!(t.first_fit(1, 1, 0x30_0000, 0x20_0000), None, "lo > hi");
    assert_eq!(t.first_fit(1, 1, usize::MAX, usize::MAX), None);
    assert_eq!(t.last_fit(1, 1, 0, 0), None);
    // Degenerate arguments.
    assert_eq!(t.first_fit(0, 1, 0, usize::MAX), None);
    assert_eq!(
        t.first_fit(PAGE, 0, 0, usize::MAX),
        Some(0x10_0000),
        "align 0 = 1"
    );
    assert_eq!(
        t.first_fit(PAGE, 3, 0, usize::MAX),
        None,
        "not a power of two"
    );
    assert_eq!(t.last_fit(PAGE, 0x3000, 0, usize::MAX), None);
    assert_eq!(t.first_fit(usize::MAX, 1, 0, usize::MAX), None);
    assert_eq!(t.last_fit(usize::MAX, 1, 0, usize::MAX), None);
    assert_eq!(t.first_fit(1, 1 << (usize::BITS - 1), 0, usize::MAX), None);
}

#[test]
fn fit_with_large_alignment() {
    // A 64 GiB span with small mappings scattered over it; 4 GiB alignment.
    let g4 = 4 * GIB;
    let mut t = GapTree::new(PAGE, 64 * GIB - PAGE);
    // Block every 4 GiB boundary below 32 GiB with a one-page mapping.
    for i in 1..8 {
        assert_eq!(t.insert(i * g4, PAGE, i), Ok(()));
    }
    t.check_invariants().unwrap();
    // Plenty of 2 GiB gaps, but none at a 4 GiB boundary before 32 GiB.
    assert_eq!(t.first_fit(2 * GIB, g4, 0, usize::MAX), Some(8 * g4));
    assert_eq!(t.last_fit(2 * GIB, g4, 0, usize::MAX), Some(15 * g4));
    assert_eq!(t.first_fit(2 * GIB, g4, 0, 8 * g4 + 2 * GIB - 1), None);
    assert_eq!(t.last_fit(2 * GIB, g4, 0, 8 * g4 + 2 * GIB), Some(8 * g4));
    // Page alignment finds the first hole right away.
    assert_eq!(t.first_fit(2 * GIB, PAGE, 0, usize::MAX), Some(PAGE));
    // Offsets below alignment: the span base is not 4 GiB-aligned, so 0 is not a candidate.
    assert_eq!(t.first_fit(PAGE, g4, 0, g4 + PAGE), None);
    assert_eq!(t.first_fit(PAGE, GIB, 0, usize::MAX), Some(GIB));
}

#[test]
fn fit_near_top_of_address_space() {
    let top = usize::MAX - 0xfff; // the last page, [top, MAX)
    let mut t = GapTree::new(top - 0x10_0000, 0x10_0000 + 0xfff);
    assert_eq!(t.range_end(), usize::MAX);
    assert_eq!(t.last_fit(PAGE, PAGE, 0, usize::MAX), Some(top - PAGE));
    assert_eq!(t.last_fit(0xfff, 1, 0, usize::MAX), Some(top));
    assert_eq!(
        t.first_fit(PAGE, 1 << 40, 0, usize::MAX),
        None,
        "align-up would overflow"
    );
    assert_eq!(t.insert(top - PAGE, PAGE, 1), Ok(()));
    assert_eq!(t.first_fit(PAGE, PAGE, top - PAGE, usize::MAX), None);
    assert_eq!(t.first_fit(0xfff, 1, top - PAGE, usize::MAX), Some(top));
    assert_eq!(t.last_fit(PAGE, PAGE, 0, usize::MAX), Some(top - 2 * PAGE));
    t.check_invariants().unwrap();
}

#[test]
fn iter_in_order_after_many_updates() {
    // A deterministic shuffle (multiplicative hash) of page-sized entries.
    let mut t = GapTree::new(0, 1 << 40);
    let n = 2000usize;
    for i in 0..n {
        let slot = (i * 7919) % n;
        assert_eq!(t.insert(slot * 2 * PAGE, PAGE, slot), Ok(()));
    }
    t.check_invariants().unwrap();
    let bases: Vec<usize> = t.iter().map(|e| e.0).collect();
    assert_eq!(bases, (0..n).map(|s| s * 2 * PAGE).collect::<Vec<_>>());
    for s in (0..n).step_by(3) {
        assert_eq!(t.remove(s * 2 * PAGE), Some((PAGE, s)));
    }
    t.check_invariants().unwrap();
    assert_eq!(t.iter().count(), n - n.div_ceil(3));
    // Slots 0, 3, 6, ... are gone: holes [0, 2P), [5P, 8P), [11P, 14P), ...
    assert_eq!(t.first_fit(2 * PAGE, PAGE, 0, usize::MAX), Some(0));
    assert_eq!(t.first_fit(3 * PAGE, PAGE, 0, usize::MAX), Some(5 * PAGE));
    assert_eq!(
        t.first_fit(3 * PAGE, PAGE, 6 * PAGE, usize::MAX),
        Some(11 * PAGE)
    );
    assert_eq!(t.last_fit(3 * PAGE, PAGE, 0, 11 * PAGE), Some(5 * PAGE));
}

#[test]
fn height_stays_logarithmic() {
    // Sequential inserts are the worst case for an unbalanced tree; this is a sanity check
    // on the balancing, not a timing test.
    let mut t = GapTree::new(0, usize::MAX);
    let n = 1usize << 15;
    for i in 0..n {
        assert_eq!(t.insert(i * PAGE, PAGE, ()), Ok(()));
    }
    t.check_invariants().unwrap();
    // At least LEAF_MIN entries per leaf and INNER_MIN children per internal node (root: 2).
    let h = t.height as f64;
    assert!(
        h <= 2.0 + (n as f64 / 2.0).log(LEAF_MIN.min(INNER_MIN) as f64),
        "height {h}"
    );
    assert_eq!(t.first_fit(PAGE, PAGE, 0, usize::MAX), Some(n * PAGE));
    assert_eq!(t.max_gap(), usize::MAX - n * PAGE);
    for i in (0..n).rev() {
        assert!(t.remove(i * PAGE).is_some());
    }
    t.check_invariants().unwrap();
    assert!(t.is_empty());
}

#[test]
fn check_invariants_catches_corruption() {
    let entries: Vec<(usize, usize)> = (0..100).map(|i| (0x20_0000 + i * 0x2000, 0x1000)).collect();
    let mut t = tree(&entries);
    assert!(t.height >= 2);
    let root = t.root;
    t.inner_mut(root).max_gap[0] += 1;
    assert!(t.check_invariants().is_err());
    t.inner_mut(root).max_gap[0] -= 1;
    t.check_invariants().unwrap();
    t.len += 1;
    assert!(t.check_invariants().is_err());
    t.len -= 1;
    let first = t.inner(root).child[0];
    let next = t.leaf(first).next;
    t.leaf_mut(first).next = NIL; // breaks the leaf chain
    assert!(t.check_invariants().is_err());
    t.leaf_mut(first).next = next;
    t.check_invariants().unwrap();
    let l = t.leaf(first).len;
    t.leaf_mut(first).ends[0] = 0x20_2001; // overlaps the next entry
    assert!(t.check_invariants().is_err());
    t.leaf_mut(first).ends[0] = 0x20_1000;
    t.leaf_mut(first).len = l - 1; // a value slot beyond len
    assert!(t.check_invariants().is_err());
}

#[test]
fn debug_output_lists_entries() {
    let t = tree(&[(0x20_0000, 0x1000)]);
    let s = format!("{t:?}");
    assert!(s.contains("[0x200000, 0x201000)"), "{s}");
}

// ---------------------------------------------------------------------------------------------
// Property test against a BTreeMap model.

mod model {
    use super::*;
    use proptest::prelude::*;
    use proptest::sample::Index;

    /// Span length in bytes; small so that collisions and brute-force fits are cheap.
    const SPAN: usize = 256;

    #[derive(Debug, Clone)]
    enum Op {
        Insert(usize, usize),
        Remove(Index, bool),
        SetLen(Index, usize),
        FirstFit(usize, u32, usize, usize),
        LastFit(usize, u32, usize, usize),
        IsFree(usize, usize),
        Find(usize),
        Overlapping(usize, usize),
        Neighbours(usize),
    }

    /// Offsets relative to the span base, reaching a bit below and above the span.
    fn offset() -> impl Strategy<Value = usize> {
        0..SPAN + 40
    }

    fn length() -> impl Strategy<Value = usize> {
        prop_oneof![
            6 => 0..8usize,
            3 => 0..48usize,
            1 => Just(usize::MAX),
            1 => Just(usize::MAX / 2 + 1),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (offset(), length()).prop_map(|(b, l)| Op::Insert(b, l)),
            3 => (any::<Index>(), any::<bool>()).prop_map(|(i, e)| Op::Remove(i, e)),
            2 => (any::<Index>(), length()).prop_map(|(i, l)| Op::SetLen(i, l)),
            2 => (length(), 0..7u32, offset(), offset())
                .prop_map(|(l, a, lo, hi)| Op::FirstFit(l, a, lo, hi)),
            2 => (length(), 0..7u32, offset(), offset())
                .prop_map(|(l, a, lo, hi)| Op::LastFit(l, a, lo, hi)),
            2 => (offset(), length()).prop_map(|(s, l)| Op::IsFree(s, l)),
            2 => offset().prop_map(Op::Find),
            2 => (offset(), offset()).prop_map(|(s, e)| Op::Overlapping(s, e)),
            1 => offset().prop_map(Op::Neighbours),
        ]
    }

    /// The reference: base -> (len, value), with brute-force queries.
    struct Model {
        base: usize,
        end: usize,
        map: BTreeMap<usize, (usize, u32)>,
    }

    impl Model {
        fn is_free(&self, start: usize, len: usize) -> bool {
            let Some(end) = start.checked_add(len) else {
                return false;
            };
            len != 0
                && start >= self.base
                && end <= self.end
                && self
                    .map
                    .iter()
                    .all(|(&b, &(l, _))| end <= b || b + l <= start)
        }

        fn fits(&self, len: usize, align: usize, lo: usize, hi: usize) -> Vec<usize> {
            let align = align.max(1);
            let lo = lo.max(self.base);
            let hi = hi.min(self.end);
            (lo..hi)
                .filter(|b| b % align == 0)
                .filter(|&b| b.checked_add(len).is_some_and(|e| e <= hi))
                .filter(|&b| self.is_free(b, len))
                .collect()
        }
    }

    fn run(span_base: usize, ops: Vec<Op>) -> Result<(), TestCaseError> {
        let mut t: GapTree<u32> = GapTree::new(span_base, SPAN);
        let mut m = Model {
            base: span_base,
            end: t.range_end(),
            map: BTreeMap::new(),
        };
        // Offsets start 20 below the span; wrapping makes "below 0" mean "near usize::MAX".
        let addr = |off: usize| span_base.wrapping_add(off).wrapping_sub(20);
        let mut next_value = 0u32;
        for op in ops {
            match op {
                Op::Insert(off, len) => {
                    let b = addr(off);
                    next_value += 1;
                    let ok = m.is_free(b, len);
                    let got = t.insert(b, len, next_value);
                    prop_assert_eq!(got.is_ok(), ok, "insert {:#x}+{:#x}", b, len);
                    if ok {
                        m.map.insert(b, (len, next_value));
                    } else {
                        prop_assert_eq!(got, Err(next_value));
                    }
                }
                Op::Remove(i, existing) => {
                    let b = if existing && !m.map.is_empty() {
                        *m.map.keys().nth(i.index(m.map.len())).unwrap()
                    } else {
                        addr(i.index(SPAN + 40))
                    };
                    prop_assert_eq!(t.remove(b), m.map.remove(&b));
                }
                Op::SetLen(i, new_len) => {
                    if m.map.is_empty() {
                        prop_assert_eq!(t.set_len(span_base, new_len), Err(()));
                        continue;
                    }
                    let b = *m.map.keys().nth(i.index(m.map.len())).unwrap();
                    let (old_len, v) = m.map.remove(&b).unwrap();
                    let ok = m.is_free(b, new_len);
                    prop_assert_eq!(t.set_len(b, new_len).is_ok(), ok);
                    m.map.insert(b, (if ok { new_len } else { old_len }, v));
                }
                Op::FirstFit(len, a, lo, hi) => {
                    let (align, lo, hi) = (1 << a >> 1, addr(lo), addr(hi));
                    let want = m.fits(len, align, lo, hi).first().copied();
                    prop_assert_eq!(t.first_fit(len, align, lo, hi), want);
                }
                Op::LastFit(len, a, lo, hi) => {
                    let (align, lo, hi) = (1 << a >> 1, addr(lo), addr(hi));
                    let want = m.fits(len, align, lo, hi).last().copied();
                    prop_assert_eq!(t.last_fit(len, align, lo, hi), want);
                }
                Op::IsFree(off, len) => {
                    let s = addr(off);
                    prop_assert_eq!(t.is_free(s, len), m.is_free(s, len));
                }
                Op::Find(off) => {
                    let a = addr(off);
                    let want = m
                        .map
                        .range(..=a)
                        .next_back()
                        .filter(|(&b, &(l, _))| a - b < l)
                        .map(|(&b, &(l, v))| (b, l, v));
                    let got = t.find(a).map(|(b, l, v)| (b, l, *v));
                    prop_assert_eq!(got, want);
                }
                Op::Overlapping(s, e) => {
                    let (s, e) = (addr(s), addr(e));
                    let want: Vec<_> = m
                        .map
                        .iter()
                        .filter(|(&b, &(l, _))| s < e && b < e && s < b + l)
                        .map(|(&b, &(l, v))| (b, l, v))
                        .collect();
                    let got: Vec<_> = t.overlapping(s, e).map(|(b, l, v)| (b, l, *v)).collect();
                    prop_assert_eq!(&got, &want);
                    let bases: Vec<_> = want.iter().map(|e| e.0).collect();
                    prop_assert_eq!(t.overlapping_bases(s, e), bases);
                }
                Op::Neighbours(off) => {
                    let a = addr(off);
                    let prev = m.map.range(..=a).next_back().map(|(&b, _)| b);
                    let next = m.map.range(a.saturating_add(1)..).next().map(|(&b, _)| b);
                    let next = if a == usize::MAX { None } else { next };
                    prop_assert_eq!(t.prev_entry(a).map(|e| e.0), prev);
                    prop_assert_eq!(t.next_entry(a).map(|e| e.0), next);
                }
            }
            if let Err(e) = t.check_invariants() {
                return Err(TestCaseError::fail(e));
            }
            prop_assert_eq!(t.len(), m.map.len());
            let all: Vec<_> = t.iter().map(|(b, l, v)| (b, l, *v)).collect();
            let want: Vec<_> = m.map.iter().map(|(&b, &(l, v))| (b, l, v)).collect();
            prop_assert_eq!(all, want);
            // max_gap: the largest hole, brute force over the sorted entries.
            let mut edge = m.base;
            let mut gap = 0;
            for (&b, &(l, _)) in &m.map {
                gap = gap.max(b - edge);
                edge = b + l;
            }
            prop_assert_eq!(t.max_gap(), gap.max(m.end - edge));
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn matches_btreemap_model(
            span_base in prop_oneof![
                Just(0usize),
                Just(0x1000usize),
                Just(usize::MAX - SPAN),
                Just(usize::MAX - SPAN + 1),
                (0..usize::MAX / 2),
            ],
            ops in prop::collection::vec(op(), 1..120),
        ) {
            run(span_base, ops)?;
        }
    }
}
