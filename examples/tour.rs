//! A tour of ouro: `cargo run --release --example tour [-- <output dir>]`.
//!
//! Each part of the library has its own function; `main` runs them in turn
//! and ends with a summary. The heap drawing goes to the directory given as
//! the first argument, else to `ouro-tour` in the system's temporary
//! directory (printed at the start).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use ouro::pool::Pool;

#[path = "tour_parts/gc_tour.rs"]
mod gc_tour;
#[path = "tour_parts/more_tour.rs"]
mod more_tour;

fn main() {
    let out_dir = std::env::args_os()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("ouro-tour"));
    if let Err(e) = std::fs::create_dir_all(&out_dir) {
        eprintln!("tour: cannot create {}: {e}", out_dir.display());
        std::process::exit(1);
    }
    println!("The tour writes its files to {}\n", out_dir.display());

    let speedup = pool_tour();
    let gc = gc_tour::gc_tour(&out_dir);
    let copy = more_tour::deep_copy_tour();
    let sync = more_tour::sync_tour();

    println!("\n== Summary ==");
    println!("  pool         {speedup:.2}x the system allocator's speed on small blocks");
    println!(
        "  gc           the cycle collector freed {} objects that counting could not",
        gc.collected
    );
    println!("  deep_copy    {copy}");
    println!("  sync         {sync}");
    if gc.files.is_empty() {
        println!("  files        none written");
    }
    for file in &gc.files {
        println!("  file         {}", file.display());
    }
}

/// Block sizes of the tour's workload: mostly small, like a Python heap
/// (a fixed xorshift sequence, so every allocator sees the same program).
fn sizes(n: usize) -> Vec<usize> {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            match x % 8 {
                0..=3 => 16 + (x >> 8) as usize % 49,  // 16..64
                4..=6 => 64 + (x >> 8) as usize % 193, // 64..256
                _ => 256 + (x >> 8) as usize % 257,    // 256..512
            }
        })
        .collect()
}

/// Runs the workload: `sizes.len()` allocations into a ring of `window` live
/// blocks (each allocation frees the block it replaces), then frees the rest.
/// `peak` is called once, with every slot of the ring live.
fn workload(
    sizes: &[usize],
    window: usize,
    mut alloc: impl FnMut(Layout) -> NonNull<u8>,
    mut dealloc: impl FnMut(NonNull<u8>, Layout),
    mut peak: impl FnMut(),
) -> Duration {
    let mut ring: Vec<Option<(NonNull<u8>, Layout)>> = vec![None; window];
    let start = Instant::now();
    for (i, &size) in sizes.iter().enumerate() {
        let slot = &mut ring[i % window];
        if let Some((ptr, layout)) = slot.take() {
            dealloc(ptr, layout);
        }
        let layout = Layout::from_size_align(size, 8).unwrap();
        let ptr = alloc(layout);
        // SAFETY: a fresh block of at least 16 bytes.
        unsafe { ptr.as_ptr().write_bytes(i as u8, 16) };
        *slot = Some((black_box(ptr), layout));
        if i + 1 == sizes.len() / 2 {
            peak();
        }
    }
    for (ptr, layout) in ring.into_iter().flatten() {
        dealloc(ptr, layout);
    }
    start.elapsed()
}

/// ouro-pool: allocate and free a few million blocks of mixed sizes, show
/// the pool's statistics and its speed against the system allocator;
/// returns the pool's speed relative to the system allocator's.
fn pool_tour() -> f64 {
    const ALLOCATIONS: usize = 4_000_000;
    const WINDOW: usize = 100_000;
    println!("== ouro::pool — pymalloc's arenas, pools and size classes ==\n");
    let sizes = sizes(ALLOCATIONS);

    let pool = Pool::new();
    let pool_time = workload(
        &sizes,
        WINDOW,
        |layout| pool.alloc(layout).expect("out of memory"),
        // SAFETY: `workload` frees each block once, with its layout.
        |ptr, layout| unsafe { pool.dealloc(ptr, layout) },
        || {
            println!(
                "Pool statistics with {WINDOW} blocks live:\n{}\n",
                pool.stats()
            )
        },
    );
    let after = pool.stats();
    println!(
        "After freeing everything: {} blocks in use, {} arena(s) ({} KiB) still reserved",
        after.blocks_in_use(),
        after.arenas,
        after.bytes_reserved / 1024
    );
    pool.trim();
    println!("After trim(): {} arenas reserved\n", pool.stats().arenas);

    // Timings: the best of three alternating runs of each, so a busy machine
    // disturbs the comparison less.
    let mut pool_time = pool_time;
    let mut system_time = Duration::MAX;
    for round in 0..3 {
        if round > 0 {
            pool_time = pool_time.min(workload(
                &sizes,
                WINDOW,
                |layout| pool.alloc(layout).expect("out of memory"),
                // SAFETY: `workload` frees each block once, with its layout.
                |ptr, layout| unsafe { pool.dealloc(ptr, layout) },
                || {},
            ));
        }
        system_time = system_time.min(workload(
            &sizes,
            WINDOW,
            // SAFETY: nonzero sizes.
            |layout| NonNull::new(unsafe { System.alloc(layout) }).expect("out of memory"),
            // SAFETY: `workload` frees each block once, with its layout.
            |ptr, layout| unsafe { System.dealloc(ptr.as_ptr(), layout) },
            || {},
        ));
    }
    let per_op = |t: Duration| t.as_nanos() as f64 / ALLOCATIONS as f64;
    println!(
        "{ALLOCATIONS} allocations and frees of 16..512 bytes, {WINDOW} live at a time (best of 3):"
    );
    println!(
        "  ouro::pool::Pool      {:>8.1} ms  ({:.1} ns per alloc+free)",
        pool_time.as_secs_f64() * 1e3,
        per_op(pool_time)
    );
    println!(
        "  std::alloc::System    {:>8.1} ms  ({:.1} ns per alloc+free)",
        system_time.as_secs_f64() * 1e3,
        per_op(system_time)
    );
    let speedup = system_time.as_secs_f64() / pool_time.as_secs_f64();
    println!("  Pool is {speedup:.2}x the speed of the system allocator");
    speedup
}
