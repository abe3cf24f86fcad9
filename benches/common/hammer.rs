//! The clone+drop loop of `benches/sync.rs` and `benches/sync_paired.rs`
//! (through `#[path]`; each also includes `common/clock.rs` as `clock`).

use std::hint::black_box;
use std::sync::Barrier;
use std::time::Duration;

use crate::clock::Stamp;

/// `iters` clone + drop pairs of `handle` on each of `threads` threads
/// started together; the mean time of one thread.
pub(crate) fn hammer<H: Clone + Sync>(handle: &H, threads: usize, iters: u64) -> Duration {
    let barrier = Barrier::new(threads);
    let total: Duration = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    let start = Stamp::now();
                    for _ in 0..iters {
                        black_box(black_box(handle).clone());
                    }
                    start.elapsed()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    total / threads as u32
}
