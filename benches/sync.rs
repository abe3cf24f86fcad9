//! The thread-safe heap (`ouro::sync::Gc`) against `Arc`, and its
//! concurrent collector against the single-threaded one (`ouro::Gc`).
//!
//! Groups (the first `ouro*` function by name is the baseline of
//! `cargo xtask bench`):
//!
//! - `sync_clone_drop`: one `clone` + `drop` of a handle shared by 1 or 2
//!   threads (the input), `ouro_sync` against `arc`. With 2 threads both
//!   hammer the same handle at once (one contended cache line, as in real
//!   sharing); the time is the mean CPU time of one pair on one thread.
//! - `sync_cycles`: 100k two-object cycles (200k objects) made, linked,
//!   dropped and collected; **per-object** times. `ouro_sync`: each pair's
//!   halves are allocated and linked on two different threads, each thread
//!   drops its own handles, and the collection runs on the bench thread.
//!   `ouro_sync_one_thread`: the same heap, everything on one thread.
//!   `ouro_gc`: the single-threaded `ouro::Gc` on the same shape (the
//!   baseline, so each ratio reads "x the single-threaded collector"). Input
//!   `all` times everything (sum of every thread's CPU time); input
//!   `collect` only the collection.
//! - `sync_collect_while_mutating`: one full collection over 200k live
//!   objects (held from a `Vec`, each linked to the next) and 100k garbage
//!   two-object cycles; only the collection is timed, on the collecting
//!   thread. `ouro_sync_mutator`: another thread runs [`mutate`] on the live
//!   objects for the whole collection (it allocates, clones, drops, and
//!   moves handles out of and back into their `Mutex` slots; it leaves the
//!   graph as it found it, so every row collects the same heap).
//!   `ouro_sync`: the same collection with no other thread. `ouro_gc`: the
//!   single-threaded collector on the same heap (baseline);
//!   `ouro_gc_beside_mutator`: the same, while another thread runs the same
//!   mutator on a separate `sync` heap (the machine as busy as in the
//!   `ouro_sync_mutator` row, minus the sharing of the collected objects).
//!
//!   An earlier mutator swapped new nodes into the live slots: it doubled
//!   the live heap (every slot then held one of its nodes) and made the
//!   edges random, so the `ouro_sync_mutator` row collected a heap twice
//!   the size of the others, with random memory accesses; the ratio it gave
//!   (7-13x) measured the workload, not the collector.
//!
//! Automatic collection is off (`gc::disable()`, both heaps) in the
//! collector groups, as in benches/gc.rs, and every collection's count is
//! asserted. Times are the thread CPU time of the threads doing the work
//! (`OURO_BENCH_WALL=1` for the wall clock; see benches/gc.rs for why): on
//! the shared 2-core bench machine a thread waiting for a core costs
//! nothing here, but it also means two "concurrent" threads may not really
//! overlap when the machine is busy.

use std::cell::RefCell;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, SamplingMode};
use ouro::{Trace, sync};

#[path = "common/clock.rs"]
mod clock;
use clock::Stamp;
#[path = "common/hammer.rs"]
mod hammer;
use hammer::hammer;

/// Runs `f` on this thread; its result and its time on the bench clock.
fn timed<R>(f: impl FnOnce() -> R) -> (R, Duration) {
    let start = Stamp::now();
    let r = f();
    (r, start.elapsed())
}

/// Runs `f` and `g` on two new threads at once; their results and the sum
/// of their times.
fn on_two_threads<A: Send, B: Send>(
    f: impl FnOnce() -> A + Send,
    g: impl FnOnce() -> B + Send,
) -> (A, B, Duration) {
    std::thread::scope(|s| {
        let f = s.spawn(|| timed(f));
        let g = s.spawn(|| timed(g));
        let ((a, ta), (b, tb)) = (f.join().unwrap(), g.join().unwrap());
        (a, b, ta + tb)
    })
}

/// A node of the thread-safe heap: one link and a word of payload. The
/// derive (no finalizer) is what a user writes; a hand-written `Trace` keeps
/// `has_finalizer() == true` and makes every collection verify its garbage a
/// second time (the resurrection check).
#[derive(Trace)]
struct SyncNode {
    next: Mutex<Option<sync::Gc<SyncNode>>>,
    value: u64,
}

impl SyncNode {
    fn new(value: u64) -> sync::Gc<SyncNode> {
        sync::Gc::new(SyncNode {
            next: Mutex::new(None),
            value,
        })
    }

    fn link(from: &sync::Gc<SyncNode>, to: &sync::Gc<SyncNode>) {
        *from.next.lock().unwrap() = Some(to.clone());
    }
}

/// The same node for the single-threaded heap.
#[derive(Trace)]
struct Node {
    next: RefCell<Option<ouro::Gc<Node>>>,
    value: u64,
}

impl Node {
    fn new(value: u64) -> ouro::Gc<Node> {
        ouro::Gc::new(Node {
            next: RefCell::new(None),
            value,
        })
    }

    fn link(from: &ouro::Gc<Node>, to: &ouro::Gc<Node>) {
        *from.next.borrow_mut() = Some(to.clone());
    }
}

/// The same shape for `Arc` (its link is never set: `Arc` has no collector).
struct ArcNode {
    #[allow(dead_code)] // Only there to make the shape match `SyncNode`.
    next: Mutex<Option<Arc<ArcNode>>>,
    value: u64,
}

/// Settings for the groups whose single iteration takes milliseconds.
fn big(group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
}

/// Makes sure a bench starts from empty heaps.
fn assert_heaps_empty() {
    assert_eq!(
        sync::gc::collect(),
        0,
        "a previous bench left garbage behind"
    );
    assert_eq!(
        ouro::gc::collect(),
        0,
        "a previous bench left garbage behind"
    );
}

fn sync_clone_drop(c: &mut Criterion) {
    let mut group = c.benchmark_group("sync_clone_drop");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    let gc = SyncNode::new(1);
    let arc = Arc::new(ArcNode {
        next: Mutex::new(None),
        value: 1,
    });
    for threads in [1, 2] {
        group.bench_with_input(BenchmarkId::new("ouro_sync", threads), &threads, |b, &t| {
            b.iter_custom(|iters| hammer(&gc, t, iters))
        });
        group.bench_with_input(BenchmarkId::new("arc", threads), &threads, |b, &t| {
            b.iter_custom(|iters| hammer(&arc, t, iters))
        });
    }
    group.finish();
    assert_eq!(sync::Gc::strong_count(&gc), 1);
    assert_eq!(Arc::strong_count(&arc), 1);
    assert_eq!((gc.value, arc.value), (1, 1));
}

const PAIRS: usize = 100_000;

/// What one `sync_cycles` iteration times.
#[derive(Clone, Copy)]
enum Timed {
    All,
    Collect,
}

impl Timed {
    fn name(self) -> &'static str {
        match self {
            Timed::All => "all",
            Timed::Collect => "collect",
        }
    }

    /// The time of one iteration: all the parts, or only the collection.
    fn pick(self, all: Duration, collect: Duration) -> Duration {
        match self {
            Timed::All => all,
            Timed::Collect => collect,
        }
    }
}

/// One `sync_cycles` row: one iteration, `(everything, collection)` times.
type Row = fn() -> (Duration, Duration);

/// `PAIRS` cross-thread cycles on the thread-safe heap, collected on this
/// thread; `(everything, collection)` times.
fn sync_pairs_two_threads() -> (Duration, Duration) {
    let make = || (0..PAIRS as u64).map(SyncNode::new).collect::<Vec<_>>();
    let (a, b, t_make) = on_two_threads(make, make);
    let link = |from: &[sync::Gc<SyncNode>], to: &[sync::Gc<SyncNode>]| {
        for (x, y) in from.iter().zip(to) {
            SyncNode::link(x, y);
        }
    };
    let ((), (), t_link) = on_two_threads(|| link(&a, &b), || link(&b, &a));
    let ((), (), t_drop) = on_two_threads(move || drop(a), move || drop(b));
    let (found, t_collect) = timed(sync::gc::collect);
    assert_eq!(found, 2 * PAIRS);
    (t_make + t_link + t_drop + t_collect, t_collect)
}

/// The same on the thread-safe heap with one thread.
fn sync_pairs_one_thread() -> (Duration, Duration) {
    let ((), t_make) = timed(|| {
        for i in 0..PAIRS as u64 {
            let a = SyncNode::new(i);
            let b = SyncNode::new(i);
            SyncNode::link(&a, &b);
            SyncNode::link(&b, &a);
        }
    });
    let (found, t_collect) = timed(sync::gc::collect);
    assert_eq!(found, 2 * PAIRS);
    (t_make + t_collect, t_collect)
}

/// The same on the single-threaded heap.
fn local_pairs() -> (Duration, Duration) {
    let ((), t_make) = timed(|| {
        for i in 0..PAIRS as u64 {
            let a = Node::new(i);
            let b = Node::new(i);
            Node::link(&a, &b);
            Node::link(&b, &a);
        }
    });
    let (found, t_collect) = timed(ouro::gc::collect);
    assert_eq!(found, 2 * PAIRS);
    (t_make + t_collect, t_collect)
}

fn sync_cycles(c: &mut Criterion) {
    assert_heaps_empty();
    sync::gc::disable();
    ouro::gc::disable();
    let mut group = c.benchmark_group("sync_cycles");
    big(&mut group);
    let objects = 2 * PAIRS as u32;
    let rows: [(&str, Row); 3] = [
        ("ouro_gc", local_pairs),
        ("ouro_sync", sync_pairs_two_threads),
        ("ouro_sync_one_thread", sync_pairs_one_thread),
    ];
    for timed_part in [Timed::All, Timed::Collect] {
        for (name, run) in rows {
            group.bench_function(BenchmarkId::new(name, timed_part.name()), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let (all, collect) = run();
                        total += timed_part.pick(all, collect);
                    }
                    total / objects
                })
            });
        }
    }
    group.finish();
    sync::gc::enable();
    ouro::gc::enable();
    assert_heaps_empty();
}

const LIVE: usize = 200_000;
const GARBAGE_PAIRS: usize = 100_000;

/// `LIVE` nodes of the thread-safe heap, each linked to the next.
fn sync_live() -> Vec<sync::Gc<SyncNode>> {
    let live: Vec<_> = (0..LIVE as u64).map(SyncNode::new).collect();
    for w in live.windows(2) {
        SyncNode::link(&w[0], &w[1]);
    }
    live
}

fn sync_garbage() {
    for i in 0..GARBAGE_PAIRS as u64 {
        let a = SyncNode::new(i);
        let b = SyncNode::new(i);
        SyncNode::link(&a, &b);
        SyncNode::link(&b, &a);
    }
}

/// The mutator: until `stop`, over random live nodes: allocates a node
/// holding a clone of one and drops it (freed at once by counting), clones
/// and drops a handle to another, and moves the handle out of a third's
/// `Mutex` slot and back (a move no count shows, which the collector's
/// verification exists for). The graph is the same afterwards. Returns how
/// many rounds it made.
fn mutate(live: &[sync::Gc<SyncNode>], stop: &AtomicBool, running: &Barrier) -> u64 {
    let mut made = 0u64;
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    running.wait();
    while !stop.load(Ordering::Relaxed) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let n = live.len() as u64;
        let (i, j, k) = (
            (x % n) as usize,
            ((x >> 21) % n) as usize,
            ((x >> 42) % n) as usize,
        );
        let node = SyncNode::new(made);
        SyncNode::link(&node, &live[j]);
        drop(node);
        drop(black_box(live[k].clone()));
        let mut slot = live[i].next.lock().unwrap();
        let moved = slot.take();
        *slot = black_box(moved);
        drop(slot);
        made += 1;
    }
    made
}

/// One `sync_collect_while_mutating` iteration's collection, timed on this
/// thread, while another thread runs [`mutate`] on `mutated` (if given).
fn while_mutating(
    mutated: Option<&[sync::Gc<SyncNode>]>,
    rounds: &AtomicU64,
    collect: impl FnOnce() -> usize,
) -> (usize, Duration) {
    let Some(live) = mutated else {
        return timed(collect);
    };
    let stop = AtomicBool::new(false);
    let running = Barrier::new(2);
    std::thread::scope(|s| {
        let mutator = s.spawn(|| mutate(live, &stop, &running));
        running.wait();
        let r = timed(collect);
        stop.store(true, Ordering::Relaxed);
        rounds.fetch_add(mutator.join().unwrap(), Ordering::Relaxed);
        r
    })
}

fn sync_collect_while_mutating(c: &mut Criterion) {
    assert_heaps_empty();
    sync::gc::disable();
    ouro::gc::disable();
    let mut group = c.benchmark_group("sync_collect_while_mutating");
    big(&mut group);
    let rounds = AtomicU64::new(0);
    {
        let live = sync_live();
        for (name, mutated) in [("ouro_sync", None), ("ouro_sync_mutator", Some(&live[..]))] {
            group.bench_function(name, |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        sync_garbage();
                        let (found, t) = while_mutating(mutated, &rounds, sync::gc::collect);
                        // The mutator's nodes are freed by counting (also
                        // when their last drop hands them to the collector):
                        // not counted as collected.
                        assert_eq!(found, 2 * GARBAGE_PAIRS);
                        total += t;
                    }
                    total
                })
            });
        }
        // The mutator left the graph as it was.
        for w in live.windows(2) {
            let next = w[0].next.lock().unwrap();
            assert!(sync::Gc::ptr_eq(next.as_ref().unwrap(), &w[1]));
        }
    }
    assert_eq!(sync::gc::collect(), 0);
    {
        let live: Vec<_> = (0..LIVE as u64).map(Node::new).collect();
        for w in live.windows(2) {
            Node::link(&w[0], &w[1]);
        }
        // The mutator of the second row works on a `sync` heap of its own.
        let other = sync_live();
        for (name, mutated) in [
            ("ouro_gc", None),
            ("ouro_gc_beside_mutator", Some(&other[..])),
        ] {
            group.bench_function(name, |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        for i in 0..GARBAGE_PAIRS as u64 {
                            let a = Node::new(i);
                            let b = Node::new(i);
                            Node::link(&a, &b);
                            Node::link(&b, &a);
                        }
                        let (found, t) = while_mutating(mutated, &rounds, ouro::gc::collect);
                        assert_eq!(found, 2 * GARBAGE_PAIRS);
                        total += t;
                    }
                    total
                })
            });
        }
        assert_eq!(live[LIVE - 1].value, LIVE as u64 - 1);
    }
    group.finish();
    sync::gc::enable();
    ouro::gc::enable();
    assert_heaps_empty();
    // The mutators did run while the collections did.
    assert!(rounds.load(Ordering::Relaxed) > 0);
}

fn main() {
    // `criterion_group!` would generate an undocumented public function.
    let mut c = Criterion::default().configure_from_args();
    sync_clone_drop(&mut c);
    sync_cycles(&mut c);
    sync_collect_while_mutating(&mut c);
    c.final_summary();
}
