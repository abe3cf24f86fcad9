//! A fixed amount of `Pool` work for instruction counting:
//! `valgrind --tool=callgrind target/release/examples/hot_path 64` runs
//! 100,000 batches of 100 allocations of the given size (default 64) freed
//! in LIFO order; divide the instruction count by 10^7 for a per-pair cost.

use std::alloc::Layout;
use std::hint::black_box;
use std::ptr::NonNull;

use ouro_pool::Pool;

#[inline(never)]
fn batch(pool: &Pool, layout: Layout, slots: &mut [Option<NonNull<u8>>; 100]) {
    for slot in slots.iter_mut() {
        let block = pool.alloc(layout).expect("out of memory");
        // SAFETY: a fresh block of at least one byte.
        unsafe { block.as_ptr().write(1) };
        *slot = black_box(Some(block));
    }
    for block in slots.iter_mut().rev().filter_map(Option::take) {
        // SAFETY: allocated above with `layout`, freed once.
        unsafe { pool.dealloc(block, layout) };
    }
}

fn main() {
    let size: usize = std::env::args()
        .nth(1)
        .map_or(64, |s| s.parse().expect("a size in bytes"));
    let pool = Pool::new();
    let layout = Layout::from_size_align(size, 8).expect("a valid size");
    let mut slots = [None; 100];
    for _ in 0..100_000 {
        batch(&pool, layout, &mut slots);
    }
    println!("{}", pool.stats());
}
