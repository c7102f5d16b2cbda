//! `cargo bench -p vm`: cost of map, unmap, protect, fault, decommit, allocate and destroy with
//! 100, 1 000, 10 000 and 100 000 existing mappings in ONE VMAR (the root of a 1 TiB space).
//!
//! Steady state: every measured operation is undone right after (map+unmap at a random spot,
//! protect toggles of a random mapping, write fault on a fresh page of a random mapping then
//! decommit, allocate+destroy), so the population stays at n. All mappings share ONE VMO (each
//! maps its own page of it), so per-VMO back-reference bookkeeping is exercised at full size.
//!
//! Method (robust to a noisy, shared machine): all four populations are built first, then the
//! rounds are interleaved round-robin — round r measures every n once (the order of the n rotates
//! from round to round), so a burst of load from other jobs hits every n alike instead of one n.
//! Within a round, each (op, n) is a short untimed warm-up (WARMUP calls) followed by ITERS timed
//! calls; the figure is the MEDIAN over the rounds of the per-round mean. Nothing is pinned.
//!
//! Environment (for profiling runs): `VM_BENCH_ROUNDS` (default 15), `VM_BENCH_ITERS` (default
//! 2 000), `VM_BENCH_SIZES` (comma-separated, default `100,1000,10000,100000`).
//!
//! Output: the method, a table, the ratio cost(largest n) / cost(smallest n) per operation, one
//! line per figure: `BENCH op=<op> n=<n> ns=<median ns per call>`, and last the price of one
//! dependent cache miss on this machine (a pointer chase) with the ratio each operation would
//! have if its lookup at the largest n took exactly one such miss more than at the smallest
//! (`BENCH op=<op> one_miss_floor=<r>`): the yardstick for how many misses a ratio stands for.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use abi::vm_options::*;
use abi::PAGE_SIZE;
use vm::rng::RandomSource;
use vm::soft_mmu::{SoftMmu, SoftPhysMem};
use vm::{AddressSpace, AspaceConfig, MmuFlags, PhysMem, SplitMix64, Vmar, Vmo, ALL_RIGHTS};

const SIZES: [usize; 4] = [100, 1_000, 10_000, 100_000];
const ROUNDS: usize = 15;
const ITERS: usize = 2_000;
const WARMUP: usize = 200;
const OPS: [&str; 7] = [
    "map", "unmap", "protect", "fault", "decommit", "allocate", "destroy",
];
const RW: u32 = ZX_VM_PERM_READ | ZX_VM_PERM_WRITE;

struct Setup {
    aspace: Arc<AddressSpace>,
    root: Vmar,
    vmo: Arc<Vmo>,
    /// (base, vmo page) of every long-lived mapping.
    maps: Vec<(usize, u64)>,
    rng: SplitMix64,
    next_page: u64,
}

fn pick(rng: &mut SplitMix64, n: usize) -> usize {
    (rng.next_u64() % n as u64) as usize
}

impl Setup {
    fn new(n: usize) -> Setup {
        let (mmu, _probe) = SoftMmu::boxed();
        let config = AspaceConfig::user(1 << 30, 1 << 40);
        let aspace = AddressSpace::new(config, mmu, Box::new(SplitMix64::new(n as u64))).unwrap();
        let root = aspace.root_vmar();
        let phys = SoftPhysMem::new(64);
        let phys: Arc<dyn PhysMem> = phys;
        let vmo = Vmo::create(phys, (4 * n as u64 + 1_000_000) * PAGE_SIZE as u64, 0).unwrap();
        let mut s = Setup {
            aspace,
            root,
            vmo,
            maps: Vec::with_capacity(n),
            rng: SplitMix64::new(0xbe9c_u64 ^ n as u64),
            next_page: 0,
        };
        for _ in 0..n {
            let page = s.fresh_page();
            let base = s.map_page(page);
            s.maps.push((base, page));
        }
        s
    }

    fn fresh_page(&mut self) -> u64 {
        self.next_page += 1;
        self.next_page
    }

    fn map_page(&self, page: u64) -> usize {
        self.root
            .map(
                RW,
                0,
                &self.vmo,
                page * PAGE_SIZE as u64,
                PAGE_SIZE,
                ALL_RIGHTS,
                ALL_RIGHTS,
            )
            .unwrap()
    }

    /// One round: `warmup` untimed calls, then `iters` timed calls of each op; mean ns per call
    /// of each op, in OPS order.
    fn round(&mut self, warmup: usize, iters: usize) -> [f64; 7] {
        if warmup > 0 {
            self.timed(warmup);
        }
        self.timed(iters)
    }

    fn timed(&mut self, iters: usize) -> [f64; 7] {
        let mut t = [0u128; 7];
        // map + unmap at a random (ASLR) spot; the VMO window is recycled.
        let spare = self.fresh_page();
        for _ in 0..iters {
            let a = Instant::now();
            let base = self.map_page(spare);
            let b = Instant::now();
            self.root.unmap(base, PAGE_SIZE, ALL_RIGHTS).unwrap();
            let c = Instant::now();
            t[0] += (b - a).as_nanos();
            t[1] += (c - b).as_nanos();
        }
        // protect toggles on a random existing mapping.
        for _ in 0..iters / 2 {
            let (base, _) = self.maps[pick(&mut self.rng, self.maps.len())];
            let a = Instant::now();
            self.root
                .protect(ZX_VM_PERM_READ, base, PAGE_SIZE, ALL_RIGHTS)
                .unwrap();
            self.root.protect(RW, base, PAGE_SIZE, ALL_RIGHTS).unwrap();
            t[2] += a.elapsed().as_nanos();
        }
        // write fault on a fresh page of a random mapping, then decommit it (through the VMO:
        // the RangeChangeUpdate path that must find the mapping's page-table entry).
        for _ in 0..iters {
            let (base, page) = self.maps[pick(&mut self.rng, self.maps.len())];
            let a = Instant::now();
            self.aspace
                .fault(base, MmuFlags::WRITE | MmuFlags::USER)
                .unwrap();
            let b = Instant::now();
            self.vmo
                .decommit(page * PAGE_SIZE as u64, PAGE_SIZE as u64)
                .unwrap();
            let c = Instant::now();
            t[3] += (b - a).as_nanos();
            t[4] += (c - b).as_nanos();
            debug_assert!(self.aspace.query(base).is_none());
        }
        // allocate (random placement) + destroy a 4-page sub-VMAR.
        for _ in 0..iters {
            let a = Instant::now();
            let (child, _) = self
                .root
                .allocate(
                    ZX_VM_CAN_MAP_READ | ZX_VM_CAN_MAP_WRITE,
                    0,
                    4 * PAGE_SIZE,
                    ALL_RIGHTS,
                )
                .unwrap();
            let b = Instant::now();
            child.destroy(ALL_RIGHTS).unwrap();
            let c = Instant::now();
            t[5] += (b - a).as_nanos();
            t[6] += (c - b).as_nanos();
            black_box(child);
        }
        // Every op made `iters` calls (protect: iters / 2 toggle pairs).
        t.map(|v| v as f64 / (iters / 2 * 2) as f64)
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Nanoseconds per load of a pointer chase through `bytes` of memory: one 64-byte line per step,
/// the lines shuffled and linked into one cycle, so every load depends on the previous one and
/// (above the cache size) misses. This is the machine's price of ONE dependent
/// cache miss on a working set of that size, 4 KiB pages, TLB misses included — the unit in
/// which a lookup among 100 000 entries pays for what a lookup among 100 gets from L1.
fn dependent_load_ns(bytes: usize, rng: &mut SplitMix64) -> f64 {
    const LINE_WORDS: usize = 16; // 64 bytes of u32
    let lines = (bytes / 64).max(2);
    let mut order: Vec<u32> = (0..lines as u32).collect();
    for i in (1..lines).rev() {
        let j = pick(rng, i + 1);
        order.swap(i, j);
    }
    let mut next = vec![0u32; lines * LINE_WORDS];
    for k in 0..lines {
        next[order[k] as usize * LINE_WORDS] = order[(k + 1) % lines];
    }
    let steps = 1_000_000;
    let mut at = 0u32;
    for _ in 0..lines.min(steps) {
        at = next[at as usize * LINE_WORDS]; // warm-up: bring in what fits
    }
    let t = Instant::now();
    for _ in 0..steps {
        at = next[at as usize * LINE_WORDS];
    }
    let ns = t.elapsed().as_nanos() as f64 / steps as f64;
    black_box(at);
    ns
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes "--bench"; a name filter is not supported (the run is short).
    let rounds = env_usize("VM_BENCH_ROUNDS", ROUNDS).max(1);
    let iters = env_usize("VM_BENCH_ITERS", ITERS).max(2);
    let sizes: Vec<usize> = match std::env::var("VM_BENCH_SIZES") {
        Ok(v) => v.split(',').filter_map(|x| x.trim().parse().ok()).collect(),
        Err(_) => SIZES.to_vec(),
    };
    assert!(!sizes.is_empty(), "VM_BENCH_SIZES lists no size");
    let mut setups: Vec<Setup> = sizes
        .iter()
        .map(|&n| {
            let build = Instant::now();
            let s = Setup::new(n);
            eprintln!("n={n}: populated in {:?}", build.elapsed());
            s
        })
        .collect();
    // samples[i][op] = one mean per round for sizes[i].
    let mut samples: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); OPS.len()]; sizes.len()];
    for r in 0..rounds {
        for k in 0..sizes.len() {
            let i = (r + k) % sizes.len();
            let means = setups[i].round(WARMUP, iters);
            for (op, v) in means.iter().enumerate() {
                samples[i][op].push(*v);
            }
        }
    }
    for (s, &n) in setups.iter().zip(&sizes) {
        s.aspace.check_invariants().unwrap();
        assert_eq!(s.vmo.mapping_count(), n);
    }
    let table: Vec<[f64; 7]> = samples
        .iter()
        .map(|per_op| {
            let mut row = [0f64; 7];
            for (slot, v) in row.iter_mut().zip(per_op) {
                *slot = median(v.clone());
            }
            row
        })
        .collect();
    let spread: Vec<[f64; 7]> = samples
        .iter()
        .map(|per_op| {
            let mut row = [0f64; 7];
            for (slot, v) in row.iter_mut().zip(per_op) {
                let lo = v.iter().cloned().fold(f64::INFINITY, f64::min);
                let hi = v.iter().cloned().fold(0f64, f64::max);
                *slot = 100.0 * (hi - lo) / lo;
            }
            row
        })
        .collect();
    println!();
    println!(
        "method: {rounds} rounds, interleaved round-robin over n (each round measures every n \
         once, rotating the order); per (round, op, n): {WARMUP} untimed warm-up calls, then \
         {iters} timed calls (Instant around each call); figure = median over rounds of the \
         per-round mean; spread = (max - min) / min of the round means"
    );
    print!("{:>10}", "n");
    for op in OPS {
        print!("{op:>11}");
    }
    println!("   (ns per call, median of {rounds} rounds x {iters} calls)");
    for (row, n) in table.iter().zip(&sizes) {
        print!("{n:>10}");
        for v in row {
            print!("{v:>11.0}");
        }
        println!();
    }
    print!("{:>10}", "ratio");
    let last = table.len() - 1;
    let ratios: Vec<f64> = (0..OPS.len())
        .map(|i| table[last][i] / table[0][i])
        .collect();
    for r in &ratios {
        print!("{r:>11.2}");
    }
    println!(
        "   (cost({}) / cost({}), target <= 2)",
        sizes[last], sizes[0]
    );
    for (row, n) in spread.iter().zip(&sizes) {
        print!("{:>10}", format!("spread {n}"));
        for v in row {
            print!("{:>10.0}%", v);
        }
        println!();
    }
    println!();
    for (row, n) in table.iter().zip(&sizes) {
        for (op, v) in OPS.iter().zip(row) {
            println!("BENCH op={op} n={n} ns={v:.0}");
        }
    }
    for (op, r) in OPS.iter().zip(&ratios) {
        println!("BENCH op={op} ratio={r:.2}");
    }
    // The memory hierarchy's share of the ratios: what one dependent miss costs here.
    let mut rng = SplitMix64::new(7);
    let near = dependent_load_ns(256 << 10, &mut rng);
    let far = dependent_load_ns(16 << 20, &mut rng);
    println!();
    println!(
        "memory: a dependent load costs {near:.1} ns in a 256 KiB working set and {far:.1} ns in \
         a 16 MiB one (random lines, 4 KiB pages). At n = {} the structures are several MiB, so \
         an op whose lookup takes k dependent misses there, and none at n = {}, has a ratio of \
         at least 1 + k x {far:.0} / cost({}); with k = 1 that floor is:",
        sizes[last], sizes[0], sizes[0]
    );
    for (i, op) in OPS.iter().enumerate() {
        println!(
            "BENCH op={op} one_miss_floor={:.2}",
            1.0 + far / table[0][i]
        );
    }
    println!("BENCH dependent_load_ns_256k={near:.1} dependent_load_ns_16m={far:.1}");
}
