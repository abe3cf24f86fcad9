//! Single-threaded alloc+free pairs: `Pool` and `SyncPool` against the
//! system allocator and mimalloc (called directly, not as global allocator).
//!
//! Groups `pool_alloc_free_{16,64,256}_{lifo,shuffled}`: each iteration
//! allocates a batch of blocks and frees them in reverse (LIFO) or in a fixed
//! random order; throughput is in alloc+free pairs.

// criterion's macros generate undocumented public functions.
#![allow(missing_docs)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::ptr::NonNull;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mimalloc::MiMalloc;
use ouro_pool::{Pool, SyncPool};

/// Blocks per batch.
const BATCH: usize = 100;

/// An allocator under test.
trait Allocator {
    fn alloc(&self, layout: Layout) -> *mut u8;
    /// # Safety
    /// `ptr` came from `alloc(layout)` of this allocator.
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout);
}

impl Allocator for Pool {
    #[inline]
    fn alloc(&self, layout: Layout) -> *mut u8 {
        Pool::alloc(self, layout).unwrap().as_ptr()
    }
    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded from the caller.
        unsafe { Pool::dealloc(self, NonNull::new_unchecked(ptr), layout) }
    }
}

impl Allocator for SyncPool {
    #[inline]
    fn alloc(&self, layout: Layout) -> *mut u8 {
        SyncPool::alloc(self, layout).unwrap().as_ptr()
    }
    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded from the caller.
        unsafe { SyncPool::dealloc(self, NonNull::new_unchecked(ptr), layout) }
    }
}

/// Any `GlobalAlloc`, called directly.
struct Global<A>(A);

impl<A: GlobalAlloc> Allocator for Global<A> {
    #[inline]
    fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the bench layouts have nonzero sizes.
        unsafe { self.0.alloc(layout) }
    }
    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded from the caller.
        unsafe { self.0.dealloc(ptr, layout) }
    }
}

/// Allocates a batch and frees it in `order`.
#[inline(never)]
fn batch<A: Allocator>(a: &A, layout: Layout, order: &[usize], slots: &mut [*mut u8; BATCH]) {
    for slot in slots.iter_mut() {
        let p = a.alloc(layout);
        // SAFETY: the block holds at least one byte.
        unsafe { p.write(1) };
        *slot = black_box(p);
    }
    for &i in order {
        // SAFETY: allocated above with `layout`, freed once.
        unsafe { a.dealloc(slots[i], layout) };
    }
}

/// A fixed pseudo-random permutation of `0..n` (xorshift, Fisher-Yates).
fn shuffled(n: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for i in (1..n).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
    v
}

fn bench(c: &mut Criterion) {
    let pool = Pool::new();
    let sync_pool = SyncPool::new();
    let system = Global(System);
    let mimalloc = Global(MiMalloc);
    for size in [16, 64, 256] {
        let layout = Layout::from_size_align(size, 8).unwrap();
        for (name, order) in [
            ("lifo", (0..BATCH).rev().collect::<Vec<_>>()),
            ("shuffled", shuffled(BATCH)),
        ] {
            let mut group = c.benchmark_group(format!("pool_alloc_free_{size}_{name}"));
            group.throughput(Throughput::Elements(BATCH as u64));
            let mut slots = [std::ptr::null_mut(); BATCH];
            group.bench_function("ouro_pool", |b| {
                b.iter(|| batch(&pool, layout, &order, &mut slots))
            });
            group.bench_function("sync_pool", |b| {
                b.iter(|| batch(&sync_pool, layout, &order, &mut slots))
            });
            group.bench_function("system", |b| {
                b.iter(|| batch(&system, layout, &order, &mut slots))
            });
            group.bench_function("mimalloc", |b| {
                b.iter(|| batch(&mimalloc, layout, &order, &mut slots))
            });
            group.finish();
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
