//! The single-threaded workloads, written once over [`Heap`]. Each returns
//! the time it measured (this thread's CPU time) or why it has none, and
//! checks with the drop counter that the library freed what it should.

use std::hint::black_box;
use std::time::Duration;

use crate::clock::Stamp;
use crate::heap::{Counter, Failure, Heap};

pub type Outcome = Result<Duration, Failure>;

/// Every single-threaded workload: name, what it does (for the docs).
pub const WORKLOADS: &[(&str, &str)] = &[
    ("clone_drop", "2M clone+drop pairs of one handle"),
    (
        "alloc_drop",
        "1M acyclic nodes allocated and dropped at once, then one full collection",
    ),
    (
        "cycles_500k",
        "500k two-node cycles created and dropped, then one full collection",
    ),
    (
        "ring_1m",
        "one 1M-node ring created and dropped, then one full collection",
    ),
    (
        "full_collect_live_1m",
        "one full collection over 1M live nodes (1000 chains of 1000, held from a Vec); only the collection is timed",
    ),
    (
        "young_collect_old_1m",
        "5 times: 500 young live nodes pointing into 1M old ones + 250 garbage two-node cycles, then the youngest collection; only the collections are timed",
    ),
    (
        "binary_trees_parent_18",
        "a depth-18 binary tree (524k nodes) with strong parent back-pointers, dropped, then one full collection",
    ),
    (
        "dumpster_churn",
        "dumpster's multiref churn: 50 roots, 1M random ops (create, link, drop root, unlink), seed fixed, then drop all and collect",
    ),
    (
        "rustcc_binary_trees",
        "rust-cc's binary trees: benchmarks-game binary-trees, max depth 14 (acyclic), a collection after each depth",
    ),
    (
        "rustcc_binary_trees_parent",
        "rust-cc's binary trees whose children point back to the root, max depth 14, a collection after each depth",
    ),
    (
        "rustcc_linked_list",
        "rust-cc's large linked list: a 4096-node doubly linked list built 30 times, each dropped and collected",
    ),
    (
        "binary_trees_weak_18",
        "benchmarks-game binary trees, max depth 18, with weak parent pointers (acyclic: reference counting frees everything); libraries with weak handles only",
    ),
    (
        "long_lived_churn",
        "a long-lived heap plus churn: 1M live nodes held (1000 chains of 1000), then 2M steps each making a node with a child and a link into the old nodes, kept in a window of the last 1000; every 100th closes a two-node cycle",
    ),
    (
        "rustcc_stress",
        "rust-cc's stress test: 2^15 labelled nodes, 2^15 random edges, truncated by 1024 with a collection after each step",
    ),
];

const MILLION: usize = 1_000_000;

pub fn run<H: Heap>(workload: &str) -> Outcome {
    H::prepare();
    match workload {
        "clone_drop" => clone_drop::<H>(),
        "alloc_drop" => alloc_drop::<H>(),
        "cycles_500k" => cycles::<H>(MILLION / 2),
        "ring_1m" => ring::<H>(MILLION),
        "full_collect_live_1m" => full_collect_live::<H>(),
        "young_collect_old_1m" => young_collect::<H>(),
        "binary_trees_parent_18" => tree_with_parents::<H>(18),
        "dumpster_churn" => churn::<H>(50, MILLION),
        "rustcc_binary_trees" => rustcc_binary_trees::<H>(14, false),
        "rustcc_binary_trees_parent" => rustcc_binary_trees::<H>(14, true),
        "rustcc_linked_list" => rustcc_linked_list::<H>(4096, 30),
        "rustcc_stress" => rustcc_stress::<H>(1 << 15, 1 << 15, 1024),
        "long_lived_churn" => long_lived_churn::<H>(2 * MILLION, 1000, 100),
        other => Err(Failure::Wrong(format!("unknown workload {other}"))),
    }
}

/// A fixed-seed generator (SplitMix64), so every library sees the same
/// sequence of operations.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0), by multiply-shift.
    pub fn below(&mut self, n: usize) -> usize {
        (((self.next() >> 32) * n as u64) >> 32) as usize
    }
}

/// Ends a workload: collect, and check every node made was dropped.
fn finish<H: Heap>(counter: Counter) -> Result<(), Failure> {
    H::collect();
    counter.all_freed()
}

fn clone_drop<H: Heap>() -> Outcome {
    let counter = Counter::start();
    let a = H::node(1);
    let start = Stamp::now();
    for _ in 0..2 * MILLION {
        drop(black_box(black_box(&a).clone()));
    }
    let t = start.elapsed();
    assert_eq!(H::value(&a), 1);
    drop(a);
    finish::<H>(counter)?;
    Ok(t)
}

fn alloc_drop<H: Heap>() -> Outcome {
    let counter = Counter::start();
    let start = Stamp::now();
    for i in 0..MILLION {
        drop(black_box(H::node(i as u64)));
    }
    H::collect();
    let t = start.elapsed();
    counter.all_freed()?;
    Ok(t)
}

fn cycles<H: Heap>(pairs: usize) -> Outcome {
    let counter = Counter::start();
    let start = Stamp::now();
    for i in 0..pairs {
        let a = H::node(i as u64);
        let b = H::node(i as u64);
        H::set(&a, 0, Some(b.clone()));
        H::set(&b, 0, Some(a));
    }
    H::collect();
    let t = start.elapsed();
    counter.all_freed()?;
    Ok(t)
}

fn ring<H: Heap>(n: usize) -> Outcome {
    let counter = Counter::start();
    let start = Stamp::now();
    {
        let first = H::node(0);
        let mut last = first.clone();
        for i in 1..n {
            let node = H::node(i as u64);
            H::set(&last, 0, Some(node.clone()));
            last = node;
        }
        H::set(&last, 0, Some(first));
    }
    H::collect();
    let t = start.elapsed();
    counter.all_freed()?;
    Ok(t)
}

/// `chains` chains of `len` nodes each (every node links to the previous
/// one); returns the last node of each chain.
fn chains<H: Heap>(chains: usize, len: usize) -> Vec<H::H> {
    (0..chains)
        .map(|c| {
            let mut head = H::node((c * len) as u64);
            for i in 1..len {
                let node = H::node((c * len + i) as u64);
                H::set(&node, 0, Some(head));
                head = node;
            }
            head
        })
        .collect()
}

fn needs_collector<H: Heap>() -> Result<(), Failure> {
    if H::COLLECTS {
        Ok(())
    } else {
        Err(Failure::NotApplicable("no collector"))
    }
}

fn full_collect_live<H: Heap>() -> Outcome {
    needs_collector::<H>()?;
    let counter = Counter::start();
    let roots = chains::<H>(1000, 1000);
    H::collect();
    let before = counter.dropped();
    let start = Stamp::now();
    H::collect();
    let t = start.elapsed();
    if counter.dropped() != before {
        return Err(Failure::Wrong("a collection dropped live nodes".into()));
    }
    drop(roots);
    finish::<H>(counter)?;
    Ok(t)
}

fn young_collect<H: Heap>() -> Outcome {
    needs_collector::<H>()?;
    const LIVE: usize = 500;
    const PAIRS: usize = 250;
    let counter = Counter::start();
    let old = chains::<H>(1000, 1000);
    // Two full collections move the old nodes to the oldest generation.
    H::collect();
    H::collect();
    let mut total = Duration::ZERO;
    let mut young = Vec::with_capacity(LIVE);
    let old_dropped = counter.dropped();
    for round in 0..5 {
        for i in 0..LIVE {
            let node = H::node(i as u64);
            H::set(&node, 0, Some(old[i % old.len()].clone()));
            young.push(node);
        }
        for i in 0..PAIRS {
            let a = H::node(i as u64);
            let b = H::node(i as u64);
            H::set(&a, 0, Some(b.clone()));
            H::set(&b, 0, Some(a));
        }
        let start = Stamp::now();
        H::collect_young();
        total += start.elapsed();
        // At most the pairs made so far and the young nodes of the earlier
        // rounds can be freed by now. Fewer is allowed: an automatic
        // collection in the middle of a pair can promote one half, and a
        // young collection does not look at older generations. The full
        // collection at the end must free everything.
        let freed = counter.dropped() - old_dropped;
        let expected = 2 * PAIRS * (round + 1) + LIVE * round;
        if freed > expected {
            return Err(Failure::Wrong(format!(
                "after young collection {round}: {freed} nodes freed, over {expected}"
            )));
        }
        young.clear();
    }
    drop(old);
    finish::<H>(counter)?;
    Ok(total)
}

/// A full binary tree of the given depth: children in slots 0 and 1, and
/// in slot 2 a back-pointer to `up`. With `root`, every node below points
/// back to `root` instead of to its parent.
fn tree<H: Heap>(depth: u32, up: Option<&H::H>, root: Option<&H::H>) -> H::H {
    let node = H::node(depth as u64);
    H::set(&node, 2, up.cloned());
    if depth > 0 {
        let up = root.unwrap_or(&node);
        let left = tree::<H>(depth - 1, Some(up), root);
        let right = tree::<H>(depth - 1, Some(up), root);
        H::set(&node, 0, Some(left));
        H::set(&node, 1, Some(right));
    }
    node
}

fn tree_with_parents<H: Heap>(depth: u32) -> Outcome {
    let counter = Counter::start();
    let start = Stamp::now();
    drop(tree::<H>(depth, None, None));
    H::collect();
    let t = start.elapsed();
    counter.all_freed()?;
    Ok(t)
}

/// An acyclic binary tree, or (`to_root`) one whose every node below the
/// root points back to the root.
fn check_tree<H: Heap>(depth: u32, to_root: bool) -> u64 {
    let root = H::node(depth as u64);
    if depth > 0 {
        for slot in 0..2 {
            let child = if to_root {
                tree::<H>(depth - 1, Some(&root), Some(&root))
            } else {
                plain_tree::<H>(depth - 1)
            };
            H::set(&root, slot, Some(child));
        }
    }
    count_nodes::<H>(&root)
}

fn plain_tree<H: Heap>(depth: u32) -> H::H {
    let node = H::node(depth as u64);
    if depth > 0 {
        H::set(&node, 0, Some(plain_tree::<H>(depth - 1)));
        H::set(&node, 1, Some(plain_tree::<H>(depth - 1)));
    }
    node
}

fn count_nodes<H: Heap>(node: &H::H) -> u64 {
    1 + (0..2)
        .filter_map(|i| H::get(node, i))
        .map(|c| count_nodes::<H>(&c))
        .sum::<u64>()
}

/// The benchmarks-game binary-trees program: a stretch tree of depth
/// max+1, a long-lived tree of depth max, then for each depth d in
/// min..=max by 2, 2^(max-d+min) trees of depth d, each built, walked and
/// dropped; a collection after each depth's batch of trees.
fn rustcc_binary_trees<H: Heap>(max: u32, to_root: bool) -> Outcome {
    const MIN: u32 = 4;
    let counter = Counter::start();
    let start = Stamp::now();
    let mut checksum = check_tree::<H>(max + 1, to_root);
    H::collect();
    let long_lived = H::node(0);
    H::set(&long_lived, 0, Some(plain_tree::<H>(max)));
    for depth in (MIN..=max).step_by(2) {
        for _ in 0..1u64 << (max - depth + MIN) {
            checksum += check_tree::<H>(depth, to_root);
        }
        H::collect();
    }
    checksum += count_nodes::<H>(&long_lived);
    drop(long_lived);
    H::collect();
    let t = start.elapsed();
    black_box(checksum);
    counter.all_freed()?;
    Ok(t)
}

fn rustcc_linked_list<H: Heap>(len: usize, times: usize) -> Outcome {
    let counter = Counter::start();
    let start = Stamp::now();
    for _ in 0..times {
        let head = H::node(0);
        let mut tail = head.clone();
        for i in 1..len {
            let node = H::node(i as u64);
            H::set(&node, 1, Some(tail.clone()));
            H::set(&tail, 0, Some(node.clone()));
            tail = node;
        }
        drop((head, tail));
        H::collect();
    }
    let t = start.elapsed();
    counter.all_freed()?;
    Ok(t)
}

fn rustcc_stress<H: Heap>(nodes: usize, edges: usize, step: usize) -> Outcome {
    let counter = Counter::start();
    let mut rng = Rng::new(0x5eed);
    let start = Stamp::now();
    let mut all: Vec<H::H> = (0..nodes as u64).map(H::node).collect();
    for _ in 0..edges {
        let from = rng.below(nodes);
        let to = rng.below(nodes);
        H::push(&all[from], all[to].clone());
    }
    while !all.is_empty() {
        all.truncate(all.len().saturating_sub(step));
        H::collect();
    }
    let t = start.elapsed();
    counter.all_freed()?;
    Ok(t)
}

/// dumpster's multiref churn: nodes hold a list of handles; each step picks
/// one of four operations uniformly.
fn churn<H: Heap>(initial: usize, ops: usize) -> Outcome {
    let counter = Counter::start();
    let mut rng = Rng::new(0xd0_0d1e);
    let start = Stamp::now();
    let mut roots: Vec<H::H> = (0..initial as u64).map(H::node).collect();
    for op in 0..ops {
        match rng.below(4) {
            0 => roots.push(H::node(op as u64)),
            1 if !roots.is_empty() => {
                let from = rng.below(roots.len());
                let to = rng.below(roots.len());
                H::push(&roots[from], roots[to].clone());
            }
            2 if !roots.is_empty() => {
                let i = rng.below(roots.len());
                drop(roots.swap_remove(i));
            }
            3 if !roots.is_empty() => {
                let node = &roots[rng.below(roots.len())];
                let len = H::extra_len(node);
                if len > 0 {
                    let i = rng.below(len);
                    drop(H::swap_remove(node, i));
                }
            }
            _ => {}
        }
    }
    drop(roots);
    H::collect();
    let t = start.elapsed();
    counter.all_freed()?;
    Ok(t)
}

/// A long-lived heap plus churn: `chains` of old nodes held throughout,
/// then `steps` short-lived pairs (a node, its child, and a link from the
/// node into the old heap), each kept alive for `window` steps; every
/// `cycle_every`th pair is a two-node cycle, garbage once it leaves the
/// window.
fn long_lived_churn<H: Heap>(steps: usize, window: usize, cycle_every: usize) -> Outcome {
    let counter = Counter::start();
    let start = Stamp::now();
    let old = chains::<H>(1000, 1000);
    let mut recent: Vec<Option<H::H>> = (0..window).map(|_| None).collect();
    for i in 0..steps {
        let a = H::node(i as u64);
        let b = H::node(i as u64);
        H::set(&a, 1, Some(old[i % old.len()].clone()));
        if i % cycle_every == 0 {
            H::set(&b, 0, Some(a.clone()));
        }
        H::set(&a, 0, Some(b));
        recent[i % window] = Some(a);
    }
    drop(recent);
    drop(old);
    H::collect();
    let t = start.elapsed();
    counter.all_freed()?;
    Ok(t)
}
