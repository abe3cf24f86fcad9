//! The threaded rows: `ouro::sync::Gc` against the thread-safe handles of
//! `std` (`Arc`, the floor: no collector), gcmodule (`ThreadedCc` in one
//! process-wide `ThreadedObjectSpace`) and dumpster (`dumpster::sync::Gc`).
//! Each node is a `Mutex<Vec<_>>` of handles, as each library's docs show;
//! gcmodule's values are reached through `ThreadedCc::borrow()`, which holds
//! its collector off while the borrow lives.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::clock::Stamp;
use crate::heap::{Counter, Failure, Tok};
use crate::workloads::{Outcome, Rng};

pub const WORKLOADS: &[(&str, &str)] = &[
    (
        "threads_clone_drop",
        "2 threads, each 1M clone+drop pairs of one shared handle (the sum of both threads' CPU time)",
    ),
    (
        "threads_cycles",
        "500k two-node cycles whose halves are made on different threads: each of 2 threads allocates one half of every pair, each links its halves to the other thread's, each drops its own handles, then one full collection on a third thread (the sum of all threads' CPU time)",
    ),
    (
        "threads_dumpster_churn",
        "dumpster's multiref churn on 2 threads: each thread 50 roots and 500k random ops on thread-safe nodes (a `Mutex<Vec<_>>` of handles), then drop all and collect (the sum of both threads' CPU time)",
    ),
    (
        "threads_binary_trees_weak_18",
        "benchmarks-game binary trees, max depth 18, weak parent pointers, on 2 threads: each its own stretch and long-lived tree and half of each depth's trees (the sum of both threads' CPU time); libraries with weak handles only",
    ),
    (
        "threads_long_lived_churn",
        "a long-lived heap plus churn on 2 threads: 1M live nodes held (1000 chains of 1000, built first), then each thread 1M steps each making a node with a child and a link into the old nodes, kept in a window of the last 1000; every 100th closes a two-node cycle (the sum of all threads' CPU time)",
    ),
];

const PER_THREAD: usize = 1_000_000;
/// Pairs of `threads_cycles`.
const PAIRS: usize = 500_000;

#[derive(dumpster::Trace)]
pub struct Shared {
    value: u64,
    _tok: Tok,
}

fn shared() -> Shared {
    Shared {
        value: 1,
        _tok: Tok::new(),
    }
}

/// `Shared` for ouro: an untracked leaf (nothing in it can hold a handle).
#[derive(ouro::Trace)]
pub struct OuroShared {
    value: u64,
    #[trace(skip)]
    _tok: Tok,
}

/// `Shared` for gcmodule: a leaf too (`is_type_tracked` stays `false`).
pub struct GcModuleShared {
    value: u64,
    _tok: Tok,
}

impl gcmodule::Trace for GcModuleShared {}

/// Runs `f` on 2 threads and adds up their CPU times.
fn on_two_threads(f: impl Fn() + Sync) -> Duration {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    let start = Stamp::now();
                    f();
                    start.elapsed()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    })
}

/// A thread-safe churn node: a list of handles behind a `Mutex`.
trait SyncHeap: 'static {
    type H: Clone + Send + Sync;
    fn node() -> Self::H;
    fn push(from: &Self::H, to: Self::H);
    fn swap_remove(from: &Self::H, i: usize) -> Option<Self::H>;
    fn extra_len(from: &Self::H) -> usize;
    fn collect();
    /// Called once before the workload (turning automatic collection off).
    fn prepare() {}
}

pub struct ArcNode {
    extra: Mutex<Vec<Arc<ArcNode>>>,
    _tok: Tok,
}

#[derive(dumpster::Trace)]
pub struct DumpsterNode {
    extra: Mutex<Vec<dumpster::sync::Gc<DumpsterNode>>>,
    _tok: Tok,
}

#[derive(ouro::Trace)]
pub struct OuroNode {
    extra: Mutex<Vec<ouro::sync::Gc<OuroNode>>>,
    #[trace(skip)]
    _tok: Tok,
}

pub struct GcModuleNode {
    extra: Mutex<Vec<gcmodule::ThreadedCc<GcModuleNode>>>,
    _tok: Tok,
}

impl gcmodule::Trace for GcModuleNode {
    fn trace(&self, tracer: &mut gcmodule::Tracer) {
        self.extra.trace(tracer);
    }
    fn is_type_tracked() -> bool {
        true
    }
}

/// gcmodule's threaded handles live in an object space; one for the process.
static SPACE: std::sync::LazyLock<gcmodule::ThreadedObjectSpace> =
    std::sync::LazyLock::new(gcmodule::ThreadedObjectSpace::default);

macro_rules! mutex_node_ops {
    () => {
        fn push(from: &Self::H, to: Self::H) {
            from.extra.lock().unwrap().push(to);
        }
        fn swap_remove(from: &Self::H, i: usize) -> Option<Self::H> {
            let mut extra = from.extra.lock().unwrap();
            (i < extra.len()).then(|| extra.swap_remove(i))
        }
        fn extra_len(from: &Self::H) -> usize {
            from.extra.lock().unwrap().len()
        }
    };
}

struct ArcHeap;

impl SyncHeap for ArcHeap {
    type H = Arc<ArcNode>;
    fn node() -> Self::H {
        Arc::new(ArcNode {
            extra: Mutex::new(Vec::new()),
            _tok: Tok::new(),
        })
    }
    mutex_node_ops!();
    fn collect() {}
}

struct OuroSync;

impl SyncHeap for OuroSync {
    type H = ouro::sync::Gc<OuroNode>;
    fn node() -> Self::H {
        ouro::sync::Gc::new(OuroNode {
            extra: Mutex::new(Vec::new()),
            _tok: Tok::new(),
        })
    }
    mutex_node_ops!();
    fn collect() {
        ouro::sync::gc::collect();
        // What automatic collections claimed is dropped by the background
        // thread: wait for it, so the drop counter sees it.
        ouro::sync::gc::wait_for_drops();
    }
}

/// `ouro_sync` with automatic collection off: collects only where the
/// workload does, like gcmodule (which never collects on its own).
struct OuroSyncManual;

impl SyncHeap for OuroSyncManual {
    type H = ouro::sync::Gc<OuroNode>;
    fn prepare() {
        ouro::sync::gc::disable();
    }
    fn node() -> Self::H {
        OuroSync::node()
    }
    mutex_node_ops!();
    fn collect() {
        ouro::sync::gc::collect();
        // What automatic collections claimed is dropped by the background
        // thread: wait for it, so the drop counter sees it.
        ouro::sync::gc::wait_for_drops();
    }
}

struct GcModuleThreaded;

impl SyncHeap for GcModuleThreaded {
    type H = gcmodule::ThreadedCc<GcModuleNode>;
    fn node() -> Self::H {
        SPACE.create(GcModuleNode {
            extra: Mutex::new(Vec::new()),
            _tok: Tok::new(),
        })
    }
    fn push(from: &Self::H, to: Self::H) {
        from.borrow().extra.lock().unwrap().push(to);
    }
    fn swap_remove(from: &Self::H, i: usize) -> Option<Self::H> {
        let node = from.borrow();
        let mut extra = node.extra.lock().unwrap();
        (i < extra.len()).then(|| extra.swap_remove(i))
    }
    fn extra_len(from: &Self::H) -> usize {
        from.borrow().extra.lock().unwrap().len()
    }
    fn collect() {
        SPACE.collect_cycles();
    }
}

struct DumpsterSync;

impl SyncHeap for DumpsterSync {
    type H = dumpster::sync::Gc<DumpsterNode>;
    fn node() -> Self::H {
        dumpster::sync::Gc::new(DumpsterNode {
            extra: Mutex::new(Vec::new()),
            _tok: Tok::new(),
        })
    }
    mutex_node_ops!();
    fn collect() {
        dumpster::sync::collect();
    }
}

/// One thread's share of the churn (see `workloads::churn`).
fn churn_thread<H: SyncHeap>(seed: u64, initial: usize, ops: usize) {
    let mut rng = Rng::new(seed);
    let mut roots: Vec<H::H> = (0..initial).map(|_| H::node()).collect();
    for _ in 0..ops {
        match rng.below(4) {
            0 => roots.push(H::node()),
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
}

fn threaded_churn<H: SyncHeap>() -> Outcome {
    H::prepare();
    let counter = Counter::start();
    let seeds = AtomicU64::new(0xd0_0d1e);
    let t = on_two_threads(|| {
        churn_thread::<H>(seeds.fetch_add(1, Relaxed), 50, PER_THREAD / 2);
        H::collect();
    });
    let start = Stamp::now();
    H::collect();
    let t = t + start.elapsed();
    counter.all_freed()?;
    Ok(t)
}

/// Runs `f` and `g` on two threads at once; their results and the sum of
/// their CPU times.
fn both<A: Send, B: Send>(
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

/// Runs `f` on this thread; its result and CPU time.
fn timed<R>(f: impl FnOnce() -> R) -> (R, Duration) {
    let start = Stamp::now();
    let r = f();
    (r, start.elapsed())
}

/// `threads_cycles`: each pair's halves are made, linked and dropped on
/// different threads, then collected on a third one.
fn threaded_cycles<H: SyncHeap>() -> Outcome {
    H::prepare();
    let counter = Counter::start();
    // Allocate: each thread one half of every pair (both at once).
    let make = || (0..PAIRS).map(|_| H::node()).collect::<Vec<H::H>>();
    let (a, b, t_make) = both(make, make);
    // Link: each thread points its halves at the other thread's.
    let link = |from: &[H::H], to: &[H::H]| {
        for (x, y) in from.iter().zip(to) {
            H::push(x, y.clone());
        }
    };
    let ((), (), t_link) = both(|| link(&a, &b), || link(&b, &a));
    // Drop: each thread its own handles; nothing is freed (all cycles).
    let ((), (), t_drop) = both(move || drop(a), move || drop(b));
    // Collect, on a thread that made none of the objects.
    let ((), t_collect) = std::thread::scope(|s| s.spawn(|| timed(H::collect)).join().unwrap());
    counter.all_freed()?;
    Ok(t_make + t_link + t_drop + t_collect)
}

/// `threads_long_lived_churn` (see `workloads::long_lived_churn`).
fn threaded_long_lived_churn<H: SyncHeap>() -> Outcome {
    const STEPS: usize = 1_000_000;
    const WINDOW: usize = 1000;
    const CYCLE_EVERY: usize = 100;
    H::prepare();
    let counter = Counter::start();
    let (old, t_old) = timed(|| {
        (0..1000)
            .map(|_| {
                let mut head = H::node();
                for _ in 1..1000 {
                    let node = H::node();
                    H::push(&node, head);
                    head = node;
                }
                head
            })
            .collect::<Vec<H::H>>()
    });
    let t = on_two_threads(|| {
        let mut recent: Vec<Option<H::H>> = (0..WINDOW).map(|_| None).collect();
        for i in 0..STEPS {
            let a = H::node();
            let b = H::node();
            H::push(&a, old[i % old.len()].clone());
            if i % CYCLE_EVERY == 0 {
                H::push(&b, a.clone());
            }
            H::push(&a, b);
            recent[i % WINDOW] = Some(a);
        }
    });
    let start = Stamp::now();
    drop(old);
    H::collect();
    let t = t + t_old + start.elapsed();
    counter.all_freed()?;
    Ok(t)
}

pub fn run(library: &str, workload: &str) -> Outcome {
    if workload == "threads_binary_trees_weak_18" {
        use crate::trees::{run_threaded, sync_trees::*};
        return match library {
            "ouro_sync" => run_threaded::<OuroSync>(18),
            "ouro_sync_manual" => run_threaded::<OuroSyncManual>(18),
            "arc" => run_threaded::<ArcTree>(18),
            _ => Err(Failure::NotApplicable("no weak handle")),
        };
    }
    if workload == "threads_long_lived_churn" {
        return match library {
            "ouro_sync" => threaded_long_lived_churn::<OuroSync>(),
            "ouro_sync_manual" => threaded_long_lived_churn::<OuroSyncManual>(),
            "arc" => Err(Failure::NotApplicable("no collector: leaks every cycle")),
            "gcmodule_threaded" => threaded_long_lived_churn::<GcModuleThreaded>(),
            "dumpster_sync" => threaded_long_lived_churn::<DumpsterSync>(),
            _ => Err(Failure::NotApplicable("no thread-safe handle")),
        };
    }
    if workload == "threads_dumpster_churn" {
        return match library {
            "ouro_sync" => threaded_churn::<OuroSync>(),
            "ouro_sync_manual" => threaded_churn::<OuroSyncManual>(),
            "arc" => threaded_churn::<ArcHeap>(),
            "gcmodule_threaded" => threaded_churn::<GcModuleThreaded>(),
            "dumpster_sync" => threaded_churn::<DumpsterSync>(),
            _ => Err(Failure::NotApplicable("no thread-safe handle")),
        };
    }
    if workload == "threads_cycles" {
        return match library {
            "ouro_sync" => threaded_cycles::<OuroSync>(),
            "ouro_sync_manual" => threaded_cycles::<OuroSyncManual>(),
            "arc" => Err(Failure::NotApplicable("no collector: leaks every cycle")),
            "gcmodule_threaded" => threaded_cycles::<GcModuleThreaded>(),
            "dumpster_sync" => threaded_cycles::<DumpsterSync>(),
            _ => Err(Failure::NotApplicable("no thread-safe handle")),
        };
    }
    if workload != "threads_clone_drop" {
        return Err(Failure::NotApplicable("single-threaded workload"));
    }
    let counter = Counter::start();
    let t = match library {
        "ouro_sync" | "ouro_sync_manual" => {
            let a = ouro::sync::Gc::new(OuroShared {
                value: 1,
                _tok: Tok::new(),
            });
            let t = on_two_threads(|| {
                for _ in 0..PER_THREAD {
                    drop(black_box(black_box(&a).clone()));
                }
            });
            assert_eq!(a.value, 1);
            t
        }
        "gcmodule_threaded" => {
            let a = SPACE.create(GcModuleShared {
                value: 1,
                _tok: Tok::new(),
            });
            let t = on_two_threads(|| {
                for _ in 0..PER_THREAD {
                    drop(black_box(black_box(&a).clone()));
                }
            });
            assert_eq!(a.borrow().value, 1);
            t
        }
        "arc" => {
            let a = Arc::new(shared());
            let t = on_two_threads(|| {
                for _ in 0..PER_THREAD {
                    drop(black_box(black_box(&a).clone()));
                }
            });
            assert_eq!(a.value, 1);
            t
        }
        "dumpster_sync" => {
            let a = dumpster::sync::Gc::new(shared());
            let t = on_two_threads(|| {
                for _ in 0..PER_THREAD {
                    drop(black_box(black_box(&a).clone()));
                }
            });
            assert_eq!(a.value, 1);
            drop(a);
            dumpster::sync::collect();
            t
        }
        _ => return Err(Failure::NotApplicable("no thread-safe handle")),
    };
    counter.all_freed()?;
    Ok(t)
}
