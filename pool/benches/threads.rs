//! Two-thread producer/consumer: one thread allocates 64-byte blocks, the
//! other frees them. Group `threads_producer_consumer_64`; throughput is in
//! blocks (one allocation on the producer and one free on the consumer).

// criterion's macros generate undocumented public functions.
#![allow(missing_docs)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mimalloc::MiMalloc;
use ouro_pool::SyncPool;

/// Blocks handed over per message.
const BATCH: usize = 256;
/// Blocks per criterion iteration.
const PER_ITER: usize = 4 * BATCH;

/// Runs `iters * PER_ITER` blocks from a producer (this thread) to a
/// consumer thread; returns the time until the consumer has freed them all.
fn producer_consumer<A: GlobalAlloc + Sync>(a: &A, iters: u64) -> Duration {
    let layout = Layout::from_size_align(64, 8).unwrap();
    let (full_tx, full_rx) = mpsc::sync_channel::<Vec<usize>>(8);
    let (empty_tx, empty_rx) = mpsc::channel::<Vec<usize>>();
    for _ in 0..16 {
        empty_tx.send(Vec::with_capacity(BATCH)).unwrap();
    }
    std::thread::scope(|s| {
        s.spawn(move || {
            for mut batch in full_rx {
                for addr in batch.drain(..) {
                    // SAFETY: allocated by the producer with `layout`, handed over.
                    unsafe { a.dealloc(addr as *mut u8, layout) };
                }
                if empty_tx.send(batch).is_err() {
                    break;
                }
            }
        });
        let start = Instant::now();
        let batches = iters as usize * PER_ITER / BATCH;
        for _ in 0..batches {
            let mut batch = empty_rx.recv().unwrap();
            for _ in 0..BATCH {
                // SAFETY: nonzero size.
                let p = unsafe { a.alloc(layout) };
                // SAFETY: fresh block of 64 bytes.
                unsafe { p.write(1) };
                batch.push(p as usize);
            }
            full_tx.send(batch).unwrap();
        }
        drop(full_tx);
        // Wait for the consumer: it returns every batch.
        for _ in 0..16 {
            let _ = empty_rx.recv();
        }
        start.elapsed()
    })
}

fn bench(c: &mut Criterion) {
    let sync_pool = SyncPool::new();
    let mut group = c.benchmark_group("threads_producer_consumer_64");
    group.throughput(Throughput::Elements(PER_ITER as u64));
    group.bench_function("sync_pool", |b| {
        b.iter_custom(|iters| producer_consumer(&sync_pool, iters))
    });
    group.bench_function("system", |b| {
        b.iter_custom(|iters| producer_consumer(&System, iters))
    });
    group.bench_function("mimalloc", |b| {
        b.iter_custom(|iters| producer_consumer(&MiMalloc, iters))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
