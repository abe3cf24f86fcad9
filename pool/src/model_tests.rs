//! Model-based tests: random programs of alloc/free/write/check run against
//! `Pool` and `SyncPool` and checked against a simple model.

use core::alloc::Layout;
use core::ptr::NonNull;

use proptest::prelude::*;
use proptest::test_runner::Config;

use crate::size_class::{class_of, class_size};
use crate::{Pool, PoolStats, SyncPool};

/// The crate's one proptest configuration.
fn config() -> Config {
    Config {
        cases: if cfg!(miri) { 8 } else { 256 },
        failure_persistence: if cfg!(miri) {
            None
        } else {
            Config::default().failure_persistence
        },
        ..Config::default()
    }
}

#[derive(Clone, Debug)]
enum Op {
    Alloc { size: usize, align_log2: u32 },
    Free { index: usize },
    Write { index: usize, byte: u8 },
    Check { index: usize },
}

/// Decodes one random word into an operation. (A plain `u32` strategy
/// keeps generation cheap under Miri, where `prop_oneof!` of tuples costs
/// seconds per program; shrinking still shortens the program and moves every
/// word towards 0, an allocation of 0 bytes.)
fn decode(word: u32) -> Op {
    let v = (word >> 4) as usize;
    match word & 15 {
        0..=4 => Op::Alloc {
            size: v % 601,
            align_log2: (v >> 10) as u32 % 6,
        },
        5 => Op::Alloc {
            size: 1 + v % 512,
            align_log2: 3,
        },
        6..=9 => Op::Free { index: v },
        10..=12 => Op::Write {
            index: v,
            byte: (v >> 16) as u8,
        },
        _ => Op::Check { index: v },
    }
}

fn op() -> impl Strategy<Value = Op> {
    any::<u32>().prop_map(decode)
}

fn program() -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(op(), 1..if cfg!(miri) { 48 } else { 300 })
}

/// What the model needs from an allocator.
trait Allocator {
    fn alloc(&self, layout: Layout) -> Option<NonNull<u8>>;
    /// # Safety
    /// As `Pool::dealloc`.
    unsafe fn dealloc(&self, ptr: NonNull<u8>, layout: Layout);
    fn stats(&self) -> PoolStats;
}

impl Allocator for Pool {
    fn alloc(&self, layout: Layout) -> Option<NonNull<u8>> {
        Pool::alloc(self, layout)
    }
    unsafe fn dealloc(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded.
        unsafe { Pool::dealloc(self, ptr, layout) }
    }
    fn stats(&self) -> PoolStats {
        Pool::stats(self)
    }
}

impl Allocator for SyncPool {
    fn alloc(&self, layout: Layout) -> Option<NonNull<u8>> {
        SyncPool::alloc(self, layout)
    }
    unsafe fn dealloc(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded.
        unsafe { SyncPool::dealloc(self, ptr, layout) }
    }
    fn stats(&self) -> PoolStats {
        SyncPool::stats(self)
    }
}

/// A live block in the model: where, its layout, and the byte it holds.
struct Live {
    ptr: NonNull<u8>,
    layout: Layout,
    fill: u8,
}

fn check_contents(block: &Live) -> Result<(), TestCaseError> {
    for i in 0..block.layout.size() {
        // SAFETY: the block is live and `size` bytes long, all written.
        let byte = unsafe { *block.ptr.as_ptr().add(i) };
        prop_assert_eq!(byte, block.fill, "block {:p} byte {} changed", block.ptr, i);
    }
    Ok(())
}

fn check_stats(stats: &PoolStats, live: &[Live]) -> Result<(), TestCaseError> {
    let mut per_class = [0usize; crate::NUM_CLASSES];
    let (mut system_blocks, mut system_bytes, mut bytes) = (0, 0, 0);
    for block in live {
        match class_of(block.layout) {
            Some(class) => {
                per_class[class] += 1;
                bytes += class_size(class);
            }
            None if block.layout.size() > 0 => {
                system_blocks += 1;
                system_bytes += block.layout.size();
            }
            None => {}
        }
    }
    for (class, entry) in stats.classes.iter().enumerate() {
        prop_assert_eq!(entry.blocks_in_use, per_class[class], "class {}", class);
        prop_assert_eq!(
            entry.blocks_in_use + entry.blocks_free,
            entry.pools * crate::heap::pool_capacity(class)
        );
    }
    prop_assert_eq!(stats.bytes_in_use, bytes);
    prop_assert_eq!(stats.system_blocks, system_blocks);
    prop_assert_eq!(stats.system_bytes, system_bytes);
    prop_assert_eq!(stats.bytes_reserved, stats.arenas * crate::ARENA_SIZE);
    prop_assert_eq!(
        stats.pools() + stats.free_pools,
        stats.arenas * (crate::ARENA_SIZE / crate::POOL_SIZE)
    );
    Ok(())
}

fn run(alloc: &impl Allocator, program: &[Op]) -> Result<(), TestCaseError> {
    let mut live: Vec<Live> = Vec::new();
    let mut fill = 0u8;
    let result = (|| {
        for op in program {
            match *op {
                Op::Alloc { size, align_log2 } => {
                    let layout = Layout::from_size_align(size, 1 << align_log2).unwrap();
                    let ptr = alloc.alloc(layout).expect("out of memory");
                    prop_assert_eq!(ptr.as_ptr().addr() % layout.align(), 0);
                    if size > 0 {
                        let (start, end) = (ptr.as_ptr().addr(), ptr.as_ptr().addr() + size);
                        for other in live.iter().filter(|b| b.layout.size() > 0) {
                            let o = other.ptr.as_ptr().addr();
                            prop_assert!(
                                end <= o || o + other.layout.size() <= start,
                                "{:p} ({} bytes) overlaps {:p}",
                                ptr,
                                size,
                                other.ptr
                            );
                        }
                    }
                    fill = fill.wrapping_add(1);
                    // SAFETY: fresh block of `size` bytes.
                    unsafe { ptr.as_ptr().write_bytes(fill, size) };
                    live.push(Live { ptr, layout, fill });
                }
                Op::Free { index } if !live.is_empty() => {
                    let block = live.swap_remove(index % live.len());
                    check_contents(&block)?;
                    // SAFETY: live block of `alloc` with this layout, freed once.
                    unsafe { alloc.dealloc(block.ptr, block.layout) };
                }
                Op::Write { index, byte } if !live.is_empty() => {
                    let n = live.len();
                    let block = &mut live[index % n];
                    // SAFETY: live block of `size` bytes.
                    unsafe { block.ptr.as_ptr().write_bytes(byte, block.layout.size()) };
                    block.fill = byte;
                }
                Op::Check { index } if !live.is_empty() => {
                    check_contents(&live[index % live.len()])?
                }
                _ => {}
            }
            check_stats(&alloc.stats(), &live)?;
        }
        for block in &live {
            check_contents(block)?;
        }
        Ok(())
    })();
    for block in live.drain(..) {
        // SAFETY: live blocks of `alloc`, freed once.
        unsafe { alloc.dealloc(block.ptr, block.layout) };
    }
    let stats = alloc.stats();
    prop_assert_eq!(stats.blocks_in_use(), 0);
    prop_assert_eq!(stats.system_blocks, 0);
    result
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn pool_matches_model(program in program()) {
        let pool = Pool::new();
        run(&pool, &program)?;
        pool.trim();
        prop_assert_eq!(pool.stats().arenas, 0);
    }

    #[test]
    fn sync_pool_matches_model(program in program()) {
        let pool = SyncPool::new();
        run(&pool, &program)?;
        pool.trim();
        prop_assert_eq!(pool.stats().arenas, 0);
    }
}

/// Allocates about 200 MB in small blocks of mixed sizes, frees all of it,
/// and checks that the arenas and reserved bytes fall back.
#[test]
#[cfg_attr(miri, ignore = "allocates 200 MB")]
fn two_hundred_megabytes_come_back() {
    let pool = Pool::new();
    let target = 200 << 20;
    let mut blocks = Vec::new();
    let mut total = 0;
    let mut i = 0usize;
    while total < target {
        let size = 16 + (i * 97) % 497; // 16..=512, mixed
        let layout = Layout::from_size_align(size, 8).unwrap();
        let ptr = pool.alloc(layout).unwrap();
        // SAFETY: fresh block of at least 8 bytes.
        unsafe { ptr.cast::<usize>().write(i) };
        blocks.push((ptr, layout));
        total += size;
        i += 1;
    }
    let peak = pool.stats();
    assert!(peak.bytes_reserved >= target, "{peak}");
    assert_eq!(peak.blocks_in_use(), blocks.len());
    // Free in an interleaved order (evens, then odds) to fragment first.
    for parity in 0..2 {
        for (index, &(ptr, layout)) in blocks.iter().enumerate().filter(|(k, _)| k % 2 == parity) {
            // SAFETY: written above; each block freed once.
            unsafe {
                assert_eq!(ptr.cast::<usize>().read(), index);
                pool.dealloc(ptr, layout);
            }
        }
    }
    let after = pool.stats();
    println!(
        "peak: {} arenas, {} MiB reserved",
        peak.arenas,
        peak.bytes_reserved >> 20
    );
    println!(
        "after freeing everything: {} arenas, {} MiB reserved",
        after.arenas,
        after.bytes_reserved >> 20
    );
    assert_eq!(after.blocks_in_use(), 0);
    // Kept pools pin no arena but the last one in use, plus the spare.
    assert!(after.arenas <= 2, "{after}");
    pool.trim();
    assert_eq!(pool.stats().bytes_reserved, 0);
}
