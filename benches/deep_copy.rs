//! `ouro::deep_copy` of a 1M-node random graph.
//!
//! Group `deep_copy_1m` (per-node times are the group's time divided by
//! 1,000,000):
//!
//! - `ouro_deep_copy`: `deep_copy` of a `Gc<Graph>` whose `Vec` holds 1M
//!   nodes, each with 3 edges to random nodes (fixed seed, so cycles and
//!   shared nodes everywhere). Automatic collection is on, as a user would
//!   have it: the collections that the 1M new tracked objects trigger are
//!   part of the cost.
//! - `ouro_deep_copy_gc_off`: the same with `gc::disable()`, the cost of the
//!   copy itself (memo, allocation, tracking).
//! - `by_hand`: the copy a user would write knowing the shape (every node
//!   has its index in the `Vec`, so a `Vec` replaces the memo), with
//!   automatic collection on: the floor that allocation and tracking set.
//!   `by_hand_gc_off` is the same with `gc::disable()`; against
//!   `ouro_deep_copy_gc_off` it shows what the memo costs.
//!
//! Only the copy is timed; dropping it and the `collect()` that frees its
//! cycles run outside the timed region.

use std::cell::RefCell;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode};
use ouro::{DeepCopy, Gc, Trace, deep_copy, gc};

const NODES: usize = 1_000_000;
const EDGES: usize = 3;

#[derive(Trace, DeepCopy)]
struct Node {
    index: u32,
    edges: RefCell<Vec<Gc<Node>>>,
}

#[derive(Trace, DeepCopy)]
struct Graph {
    nodes: Vec<Gc<Node>>,
}

/// xorshift64: a fixed, dependency-free sequence.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

fn random_graph() -> Gc<Graph> {
    let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
    let nodes: Vec<Gc<Node>> = (0..NODES)
        .map(|i| {
            Gc::new(Node {
                index: i as u32,
                edges: RefCell::new(Vec::with_capacity(EDGES)),
            })
        })
        .collect();
    for n in &nodes {
        let mut edges = n.edges.borrow_mut();
        for _ in 0..EDGES {
            edges.push(nodes[(rng.next() % NODES as u64) as usize].clone());
        }
    }
    Gc::new(Graph { nodes })
}

/// The copy written by hand: the index of each node replaces the memo.
fn copy_by_hand(g: &Gc<Graph>) -> Gc<Graph> {
    let nodes: Vec<Gc<Node>> = g
        .nodes
        .iter()
        .map(|n| {
            Gc::new(Node {
                index: n.index,
                edges: RefCell::new(Vec::with_capacity(EDGES)),
            })
        })
        .collect();
    for (src, dst) in g.nodes.iter().zip(&nodes) {
        let mut edges = dst.edges.borrow_mut();
        for e in src.edges.borrow().iter() {
            edges.push(nodes[e.index as usize].clone());
        }
    }
    Gc::new(Graph { nodes })
}

fn time_copies(
    iters: u64,
    gc_on: bool,
    copy: impl Fn(&Gc<Graph>) -> Gc<Graph>,
    g: &Gc<Graph>,
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        if gc_on {
            gc::enable();
        } else {
            gc::disable();
        }
        let start = Instant::now();
        let c = black_box(copy(g));
        total += start.elapsed();
        gc::enable();
        assert_eq!(c.nodes.len(), NODES);
        assert!(!Gc::ptr_eq(&c.nodes[0], &g.nodes[0]));
        drop(c);
        gc::collect();
    }
    total
}

fn deep_copy_1m(c: &mut Criterion) {
    let g = random_graph();
    gc::collect(); // the graph is now old: it is not rescanned by young collections
    let mut group = c.benchmark_group("deep_copy_1m");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5));
    group.bench_function("ouro_deep_copy", |b| {
        b.iter_custom(|iters| time_copies(iters, true, deep_copy, &g))
    });
    group.bench_function("ouro_deep_copy_gc_off", |b| {
        b.iter_custom(|iters| time_copies(iters, false, deep_copy, &g))
    });
    group.bench_function("by_hand", |b| {
        b.iter_custom(|iters| time_copies(iters, true, copy_by_hand, &g))
    });
    group.bench_function("by_hand_gc_off", |b| {
        b.iter_custom(|iters| time_copies(iters, false, copy_by_hand, &g))
    });
    group.finish();
    drop(g);
    gc::collect();
}

fn main() {
    // `criterion_group!` would generate an undocumented public function.
    let mut c = Criterion::default().configure_from_args();
    deep_copy_1m(&mut c);
    c.final_summary();
}
