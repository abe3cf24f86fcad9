//! The threaded rows: the thread-safe handles of `std` (`Arc`) and dumpster
//! (`dumpster::sync::Gc`). `ouro::sync::Gc` does not exist yet, so ouro has
//! no row here.

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
        "threads_dumpster_churn",
        "dumpster's multiref churn on 2 threads: each thread 50 roots and 500k random ops on thread-safe nodes (a `Mutex<Vec<_>>` of handles), then drop all and collect (the sum of both threads' CPU time)",
    ),
];

const PER_THREAD: usize = 1_000_000;

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

pub fn run(library: &str, workload: &str) -> Outcome {
    if workload == "threads_dumpster_churn" {
        return match library {
            "arc" => threaded_churn::<ArcHeap>(),
            "dumpster_sync" => threaded_churn::<DumpsterSync>(),
            _ => Err(Failure::NotApplicable("no thread-safe handle")),
        };
    }
    if workload != "threads_clone_drop" {
        return Err(Failure::NotApplicable("single-threaded workload"));
    }
    let counter = Counter::start();
    let t = match library {
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
