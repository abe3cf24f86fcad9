//! The threaded rows: the thread-safe handles of `std` (`Arc`) and dumpster
//! (`dumpster::sync::Gc`). `ouro::sync::Gc` does not exist yet, so ouro has
//! no row here.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::Stamp;
use crate::heap::{Counter, Failure, Tok};
use crate::workloads::Outcome;

pub const WORKLOADS: &[(&str, &str)] = &[(
    "threads_clone_drop",
    "2 threads, each 1M clone+drop pairs of one shared handle (the sum of both threads' CPU time)",
)];

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

pub fn run(library: &str, workload: &str) -> Outcome {
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
