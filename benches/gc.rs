//! `Gc<T>` against `Rc<T>`, and the cycle collector on large heaps.
//!
//! Groups (the `ouro_*` function is the baseline of `cargo xtask bench`):
//!
//! - `clone_drop`: one `clone` + `drop` of a handle (`ouro_gc`, `rc`).
//! - `new_drop`: allocate an acyclic node and drop it at once (`ouro_gc`,
//!   `rc`). The node type can hold a handle, so the ouro object is tracked
//!   (linked into generation 0 and unlinked again).
//! - `cycles_500k`: 500k two-object cycles, dropped, then one `collect()`;
//!   only the collection is timed (1M objects). `Rc` has no row: it leaks
//!   these cycles, there is nothing to compare.
//! - `ring_1m_collect`: one ring of 1M nodes, dropped, then one `collect()`;
//!   only the collection is timed. No `Rc` row (it leaks).
//! - `full_collect_live_1m`: `collect()` with 1M live objects that all
//!   survive: `ouro_gc` is a 1M-node chain held by one handle (survival is
//!   found by propagation), `ouro_gc_vec_roots` is 1M unlinked nodes each
//!   held from a `Vec` (every one is a root).
//! - `gen0_collect_with_old`: `collect_generation(0)` over 1000 young objects
//!   (500 live ones that point into the old generation, 250 garbage
//!   two-object cycles) with 0, 100k or 1M objects in the old generation; the
//!   times should not depend on the old generation's size.
//!
//! Automatic collection is turned off (`gc::disable()`) for the collector
//! groups: a collection triggered while the heap is built would move objects
//! between generations and spend time outside the timed region in an
//! uncontrolled way. `clone_drop` and `new_drop` keep it on, as a user would
//! (neither changes the generation-0 count: `new` + `drop` adds one and takes
//! it off again). Every collector bench asserts the number of objects the
//! collection found, so it cannot silently measure nothing.
//!
//! Times are the bench thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`, user +
//! system, on 64-bit Linux), not wall time: the benches run on shared
//! machines where other processes take turns on the cores, and waiting for a
//! core is not ouro's cost. `benches/cpython_gc.py` measures CPython the same
//! way. Set `OURO_BENCH_WALL=1` to time with the wall clock instead.
//!
//! Per-object times are the group's time divided by the object count in the
//! group name (1M for `cycles_500k`, `ring_1m_collect` and
//! `full_collect_live_1m`; 1000 young objects for `gen0_collect_with_old`).
//! Peak RSS is measured by `examples/rss.rs`; CPython's numbers for the same
//! shapes come from `benches/cpython_gc.py`.

use std::cell::RefCell;
use std::hint::black_box;
use std::rc::Rc;

use std::time::Duration;

use criterion::{Criterion, SamplingMode};
use ouro::{Gc, Trace, gc};

#[path = "common/clock.rs"]
mod clock;
use clock::Stamp;

/// Times `iters` runs of `f` with the bench clock.
fn time_loop<O>(iters: u64, mut f: impl FnMut() -> O) -> Duration {
    let start = Stamp::now();
    for _ in 0..iters {
        black_box(f());
    }
    start.elapsed()
}

/// A graph node: one link and a word of payload (24 bytes).
#[derive(Trace)]
struct Node {
    next: RefCell<Option<Gc<Node>>>,
    value: u64,
}

impl Node {
    fn new(value: u64) -> Gc<Node> {
        Gc::new(Node {
            next: RefCell::new(None),
            value,
        })
    }

    fn link(from: &Gc<Node>, to: &Gc<Node>) {
        *from.next.borrow_mut() = Some(to.clone());
    }
}

/// The same node for `Rc`.
struct RcNode {
    #[allow(dead_code)] // Only there to make the shape match `Node`.
    next: RefCell<Option<Rc<RcNode>>>,
    value: u64,
}

const MILLION: usize = 1_000_000;

/// Settings for the groups whose single iteration takes milliseconds and
/// needs a large heap built first (outside the timed region).
fn big(group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
}

/// Makes sure a bench starts from an empty heap and leaves none behind.
fn assert_heap_empty() {
    assert_eq!(gc::collect(), 0, "a previous bench left garbage behind");
}

fn clone_drop(c: &mut Criterion) {
    let mut group = c.benchmark_group("clone_drop");
    let a = Node::new(1);
    group.bench_function("ouro_gc", |b| {
        b.iter_custom(|iters| time_loop(iters, || black_box(&a).clone()))
    });
    let r = Rc::new(RcNode {
        next: RefCell::new(None),
        value: 1,
    });
    group.bench_function("rc", |b| {
        b.iter_custom(|iters| time_loop(iters, || black_box(&r).clone()))
    });
    group.finish();
    assert_eq!(Gc::strong_count(&a), 1);
    assert_eq!(Rc::strong_count(&r), 1);
    assert_eq!((a.value, r.value), (1, 1));
}

fn new_drop(c: &mut Criterion) {
    let mut group = c.benchmark_group("new_drop");
    group.bench_function("ouro_gc", |b| {
        b.iter_custom(|iters| {
            time_loop(iters, || {
                Gc::new(Node {
                    next: RefCell::new(None),
                    value: black_box(7),
                })
            })
        })
    });
    group.bench_function("rc", |b| {
        b.iter_custom(|iters| {
            time_loop(iters, || {
                Rc::new(RcNode {
                    next: RefCell::new(None),
                    value: black_box(7),
                })
            })
        })
    });
    group.finish();
    assert_heap_empty();
}

/// Builds `pairs` two-object cycles and drops every handle to them.
fn make_pairs(pairs: usize) {
    for i in 0..pairs {
        let a = Node::new(i as u64);
        let b = Node::new(i as u64);
        Node::link(&a, &b);
        Node::link(&b, &a);
    }
}

fn cycles_500k(c: &mut Criterion) {
    gc::disable();
    let mut group = c.benchmark_group("cycles_500k");
    big(&mut group);
    group.bench_function("ouro_gc", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                make_pairs(MILLION / 2);
                let start = Stamp::now();
                let found = gc::collect();
                total += start.elapsed();
                assert_eq!(found, MILLION);
            }
            total
        })
    });
    group.finish();
    gc::enable();
}

/// Builds a ring of `n` nodes and returns one handle to it.
fn make_ring(n: usize) -> Gc<Node> {
    let first = Node::new(0);
    let mut last = first.clone();
    for i in 1..n {
        let node = Node::new(i as u64);
        Node::link(&last, &node);
        last = node;
    }
    Node::link(&last, &first);
    first
}

fn ring_1m_collect(c: &mut Criterion) {
    gc::disable();
    let mut group = c.benchmark_group("ring_1m_collect");
    big(&mut group);
    group.bench_function("ouro_gc", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                drop(make_ring(MILLION));
                let start = Stamp::now();
                let found = gc::collect();
                total += start.elapsed();
                assert_eq!(found, MILLION);
            }
            total
        })
    });
    group.finish();
    gc::enable();
}

/// A chain of `n` nodes held by the returned handle (the first node).
fn make_chain(n: usize) -> Gc<Node> {
    let mut head = Node::new(0);
    for i in 1..n {
        let node = Node::new(i as u64);
        *node.next.borrow_mut() = Some(head);
        head = node;
    }
    head
}

fn full_collect_live_1m(c: &mut Criterion) {
    gc::disable();
    let mut group = c.benchmark_group("full_collect_live_1m");
    big(&mut group);
    {
        let chain = make_chain(MILLION);
        group.bench_function("ouro_gc", |b| {
            b.iter_custom(|iters| time_loop(iters, || assert_eq!(gc::collect(), 0)))
        });
        assert_eq!(chain.value, MILLION as u64 - 1);
    }
    assert_heap_empty();
    {
        let roots: Vec<Gc<Node>> = (0..MILLION as u64).map(Node::new).collect();
        group.bench_function("ouro_gc_vec_roots", |b| {
            b.iter_custom(|iters| time_loop(iters, || assert_eq!(gc::collect(), 0)))
        });
        assert_eq!(roots.len(), MILLION);
    }
    group.finish();
    assert_heap_empty();
    gc::enable();
}

const YOUNG_LIVE: usize = 500;
const YOUNG_PAIRS: usize = 250;

fn gen0_collect_with_old(c: &mut Criterion) {
    gc::disable();
    let mut group = c.benchmark_group("gen0_collect_with_old");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for (name, old_count) in [
        ("ouro_gc_old_0", 0),
        ("ouro_gc_old_100k", 100_000),
        ("ouro_gc_old_1m", MILLION),
    ] {
        // The old generation: each old node links to the previous one.
        let old: Vec<Gc<Node>> = {
            let mut v: Vec<Gc<Node>> = Vec::with_capacity(old_count);
            for i in 0..old_count {
                let node = Node::new(i as u64);
                if let Some(prev) = v.last() {
                    Node::link(&node, prev);
                }
                v.push(node);
            }
            v
        };
        assert_eq!(gc::collect(), 0);
        let stride = (old_count / YOUNG_LIVE).max(1);
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut young = Vec::with_capacity(YOUNG_LIVE);
                for _ in 0..iters {
                    for i in 0..YOUNG_LIVE {
                        let node = Node::new(i as u64);
                        if let Some(target) = old.get(i * stride) {
                            Node::link(&node, target);
                        }
                        young.push(node);
                    }
                    make_pairs(YOUNG_PAIRS);
                    let start = Stamp::now();
                    let found = gc::collect_generation(0);
                    total += start.elapsed();
                    assert_eq!(found, 2 * YOUNG_PAIRS);
                    // Survivors went to generation 1; dropping them frees them.
                    young.clear();
                }
                total
            })
        });
        assert_eq!(old.len(), old_count);
        drop(old);
        assert_heap_empty();
    }
    group.finish();
    gc::enable();
}

fn main() {
    // `criterion_group!` would generate an undocumented public function.
    let mut c = Criterion::default().configure_from_args();
    clone_drop(&mut c);
    new_drop(&mut c);
    cycles_500k(&mut c);
    ring_1m_collect(&mut c);
    full_collect_live_1m(&mut c);
    gen0_collect_with_old(&mut c);
    c.final_summary();
}
