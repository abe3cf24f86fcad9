//! `Pool`: the single-threaded allocator.

use core::alloc::Layout;
use core::cell::UnsafeCell;
use core::fmt;
use core::ptr::NonNull;

use crate::heap::{self, Heap};
use crate::size_class::class_of;
use crate::stats::PoolStats;

/// A single-threaded small-object allocator: pymalloc for one owner.
///
/// Requests of 1 to 512 bytes aligned to at most 16 are served from 32 size
/// classes (16, 32, ... 512 bytes) carved out of 16 KiB pools in 1 MiB
/// arenas; anything else goes to [`std::alloc::System`] transparently. Both
/// [`alloc`](Pool::alloc) and [`dealloc`](Pool::dealloc) are O(1) and take
/// `&self`; the fast paths are a pop from or push to a free list.
///
/// `Pool` is `Send` but not `Sync`: one thread at a time. For a thread-safe
/// allocator (and a `#[global_allocator]`) use [`SyncPool`](crate::SyncPool).
///
/// # When memory goes back to the OS
///
/// A pool whose last block is freed goes back to its arena (except the last
/// pool of its size class, kept to avoid thrashing), and an arena whose
/// pools are all free goes back to the OS, except spares: as many free
/// arenas as arenas in use are kept (at least one), so a program that frees
/// a large structure and builds another does not pay a page fault per page
/// of fresh memory. Reserved memory therefore stays within twice what is in
/// use (plus one arena) and never above the most that was in use at once;
/// freeing everything leaves a single spare arena. New pools come from the
/// fullest arena so the others can empty out. [`trim`](Pool::trim) releases
/// the kept pools and the spare arenas too. Dropping
/// the `Pool` returns all of its arenas: **every block it handed out becomes
/// dangling, and must not be used (or deallocated) after the pool is
/// dropped.**
///
/// # Examples
///
/// ```
/// # mod ouro { pub mod pool { pub use ::ouro_pool::*; } }
/// use std::alloc::Layout;
/// use ouro::pool::Pool;
///
/// let pool = Pool::new();
/// let layout = Layout::new::<u64>();
/// let block = pool.alloc(layout).expect("out of memory");
/// // SAFETY: the block is valid for `layout` until it is deallocated.
/// unsafe {
///     block.cast::<u64>().write(7);
///     assert_eq!(block.cast::<u64>().read(), 7);
///     pool.dealloc(block, layout);
/// }
/// assert_eq!(pool.stats().blocks_in_use(), 0);
/// ```
pub struct Pool {
    heap: UnsafeCell<Heap>,
}

impl Pool {
    /// An empty pool; it takes memory from the OS on first use.
    pub const fn new() -> Self {
        Self {
            heap: UnsafeCell::new(Heap::new()),
        }
    }

    /// Allocates a block for `layout`.
    ///
    /// Returns `None` only when memory runs out. A zero-size layout gets a
    /// dangling pointer aligned to `layout.align()` (as `Box` does for
    /// zero-size types); layouts over 512 bytes or aligned over 16 are
    /// served by the system allocator. Every pool block is 16-aligned.
    #[inline]
    pub fn alloc(&self, layout: Layout) -> Option<NonNull<u8>> {
        match class_of(layout) {
            Some(class) => {
                // SAFETY: `Pool` is `!Sync` and no heap method calls back
                // into the pool, so this is the only reference to the heap.
                let heap = unsafe { &mut *self.heap.get() };
                match heap.pop(class) {
                    Some(block) => Some(block),
                    None => heap.alloc_slow(class, 0),
                }
            }
            None => self.alloc_system(layout),
        }
    }

    #[inline(never)]
    fn alloc_system(&self, layout: Layout) -> Option<NonNull<u8>> {
        let block = heap::system_alloc(layout)?;
        if layout.size() != 0 {
            // SAFETY: as in `alloc`: the only reference to the heap.
            let heap = unsafe { &mut *self.heap.get() };
            heap.system_blocks += 1;
            heap.system_bytes += layout.size();
        }
        Some(block)
    }

    /// Returns a block to the pool.
    ///
    /// # Safety
    ///
    /// * `ptr` was returned by [`alloc`](Pool::alloc) of this same pool with
    ///   this same `layout`, and has not been deallocated since;
    /// * the block is not used after this call.
    ///
    /// Debug builds check this for pool blocks and panic with a clear message
    /// on a double free, a block of another pool, or a layout of another
    /// size class.
    #[inline]
    pub unsafe fn dealloc(&self, ptr: NonNull<u8>, layout: Layout) {
        if class_of(layout).is_some() {
            // SAFETY: by the caller, `ptr` is a live block of this pool's heap.
            unsafe { heap::debug_check_layout(ptr, layout) };
            // SAFETY: as in `alloc`: the only reference to the heap.
            let heap = unsafe { &mut *self.heap.get() };
            // SAFETY: by the caller, `ptr` came from this heap and is not used again.
            if let Err(bad) = unsafe { heap.free(ptr) } {
                bad.raise();
            }
        } else {
            // SAFETY: by the caller, `ptr` came from `alloc_system(layout)`.
            unsafe { self.dealloc_system(ptr, layout) };
        }
    }

    /// # Safety
    /// `ptr` came from `alloc_system(layout)` and is not used again.
    #[inline(never)]
    unsafe fn dealloc_system(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: by the caller.
        unsafe { heap::system_dealloc(ptr, layout) };
        if layout.size() != 0 {
            // SAFETY: as in `alloc`: the only reference to the heap.
            let heap = unsafe { &mut *self.heap.get() };
            heap.system_blocks -= 1;
            heap.system_bytes -= layout.size();
        }
    }

    /// A snapshot of the pool's memory use (walks the arenas: O(arenas *
    /// 64), meant for diagnostics, not hot paths).
    pub fn stats(&self) -> PoolStats {
        let mut stats = PoolStats::default();
        // SAFETY: as in `alloc`: the only reference to the heap.
        unsafe { &*self.heap.get() }.add_stats(&mut stats);
        stats
    }

    /// Returns every empty pool and completely free arena to the OS,
    /// including the ones kept to avoid thrashing.
    pub fn trim(&self) {
        // SAFETY: as in `alloc`: the only reference to the heap.
        unsafe { &mut *self.heap.get() }.trim();
    }
}

impl Default for Pool {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SAFETY: as in `alloc`: the only reference to the heap.
        let arenas = unsafe { &*self.heap.get() }.arenas();
        f.debug_struct("Pool")
            .field("arenas", &arenas)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::size_class::{ARENA_SIZE, MAX_SMALL_SIZE, POOL_SIZE};

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn blocks_are_aligned_distinct_and_reused() {
        let pool = Pool::new();
        let l = layout(64, 8);
        let a = pool.alloc(l).unwrap();
        let b = pool.alloc(l).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.as_ptr().addr() % 16, 0);
        assert_eq!(b.as_ptr().addr() % 16, 0);
        // SAFETY: both came from `pool.alloc(l)`; `b` is not used again.
        unsafe { pool.dealloc(b, l) };
        let c = pool.alloc(l).unwrap();
        assert_eq!(c, b, "LIFO reuse of the freed block");
        // SAFETY: allocated above, freed once.
        unsafe {
            pool.dealloc(a, l);
            pool.dealloc(c, l);
        }
        assert_eq!(pool.stats().blocks_in_use(), 0);
    }

    #[test]
    fn every_small_size_and_alignment() {
        let pool = Pool::new();
        let mut live = Vec::new();
        for size in 1..=MAX_SMALL_SIZE {
            for align in [1, 2, 4, 8, 16] {
                let l = layout(size, align);
                let p = pool.alloc(l).unwrap();
                assert_eq!(p.as_ptr().addr() % 16, 0);
                // SAFETY: the block holds `size` bytes.
                unsafe { p.as_ptr().write_bytes(size as u8, size) };
                live.push((p, l));
            }
        }
        let stats = pool.stats();
        assert_eq!(stats.blocks_in_use(), live.len());
        assert_eq!(stats.system_blocks, 0);
        for (p, l) in live {
            // SAFETY: the block still holds what was written; freed once.
            unsafe {
                assert_eq!(*p.as_ptr().add(l.size() - 1), l.size() as u8);
                pool.dealloc(p, l);
            }
        }
        assert_eq!(pool.stats().blocks_in_use(), 0);
    }

    #[test]
    fn bad_input_goes_to_the_system() {
        let pool = Pool::new();
        for l in [
            layout(0, 1),
            layout(0, 64),
            layout(513, 8),
            layout(4096, 8),
            layout(32, 32),
            layout(16, 4096),
        ] {
            let p = pool.alloc(l).unwrap();
            assert_eq!(p.as_ptr().addr() % l.align(), 0);
            if l.size() > 0 {
                // SAFETY: the block holds `l.size()` bytes.
                unsafe { p.as_ptr().write_bytes(0xab, l.size()) };
            }
            let stats = pool.stats();
            assert_eq!(stats.arenas, 0);
            assert_eq!(stats.system_blocks, usize::from(l.size() > 0));
            assert_eq!(stats.system_bytes, l.size());
            // SAFETY: came from `pool.alloc(l)`.
            unsafe { pool.dealloc(p, l) };
            assert_eq!(pool.stats().system_blocks, 0);
        }
    }

    #[test]
    fn stats_add_up() {
        let pool = Pool::new();
        let l = layout(100, 4); // 112-byte class
        let blocks: Vec<_> = (0..1000).map(|_| pool.alloc(l).unwrap()).collect();
        let stats = pool.stats();
        let class = stats.class_for(100).unwrap();
        assert_eq!(class.block_size, 112);
        assert_eq!(class.blocks_in_use, 1000);
        let per_pool = crate::heap::pool_capacity(6);
        assert_eq!(class.pools, 1000usize.div_ceil(per_pool));
        assert_eq!(
            class.blocks_in_use + class.blocks_free,
            class.pools * per_pool
        );
        assert_eq!(stats.bytes_in_use, 1000 * 112);
        assert_eq!(stats.arenas, 1);
        assert_eq!(stats.bytes_reserved, ARENA_SIZE);
        assert_eq!(stats.pools() + stats.free_pools, ARENA_SIZE / POOL_SIZE);
        for b in blocks {
            // SAFETY: allocated above, freed once.
            unsafe { pool.dealloc(b, l) };
        }
        let stats = pool.stats();
        assert_eq!(stats.blocks_in_use(), 0);
        assert_eq!(stats.pools(), 1, "the last empty pool of the class is kept");
        pool.trim();
        assert_eq!(pool.stats().arenas, 0);
    }

    #[test]
    fn memory_goes_back_to_the_os() {
        let pool = Pool::new();
        let l = layout(256, 16);
        let n = if cfg!(miri) { 2 } else { 12 } * ARENA_SIZE / 256;
        let blocks: Vec<_> = (0..n).map(|_| pool.alloc(l).unwrap()).collect();
        let peak = pool.stats();
        assert!(peak.arenas >= n * 256 / ARENA_SIZE);
        for b in blocks {
            // SAFETY: allocated above, freed once.
            unsafe { pool.dealloc(b, l) };
        }
        let after = pool.stats();
        assert!(after.arenas <= 2, "{after}");
        pool.trim();
        assert_eq!(pool.stats().bytes_reserved, 0);
        // The pool is still usable after trimming.
        let b = pool.alloc(l).unwrap();
        // SAFETY: just allocated.
        unsafe { pool.dealloc(b, l) };
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "slow under Miri; `memory_goes_back_to_the_os` runs the spare release there"
    )]
    fn free_arenas_are_kept_as_spares_up_to_those_in_use() {
        let pool = Pool::new();
        let l = layout(256, 16);
        let per_arena = ARENA_SIZE / 256;
        let n = 8 * per_arena;
        let alloc = |n| -> Vec<_> { (0..n).map(|_| pool.alloc(l).unwrap()).collect() };
        let free = |blocks: Vec<NonNull<u8>>| {
            for b in blocks {
                // SAFETY: allocated by `alloc` above, freed once.
                unsafe { pool.dealloc(b, l) };
            }
        };
        let held = alloc(n);
        let in_use = pool.stats().arenas;
        let churn = alloc(n);
        let peak = pool.stats().arenas;
        assert!(peak > in_use);
        free(churn);
        // The churn's arenas are all free: kept as spares (there are no more
        // of them than arenas in use), so building it again maps nothing.
        let after = pool.stats();
        assert_eq!(after.arenas, peak, "{after}");
        assert!(after.arenas - in_use <= in_use);
        let churn = alloc(n);
        assert_eq!(pool.stats().arenas, peak);
        free(churn);
        // Spares fall with what is in use: freeing everything leaves the
        // last arena in use (its kept pool) and one spare.
        free(held);
        let after = pool.stats();
        assert!(after.arenas <= 2, "{after}");
        pool.trim();
        assert_eq!(pool.stats().arenas, 0);
    }

    #[test]
    fn alloc_free_loop_does_not_thrash_the_os() {
        let pool = Pool::new();
        let l = layout(64, 8);
        for _ in 0..if cfg!(miri) { 50 } else { 1000 } {
            let b = pool.alloc(l).unwrap();
            // SAFETY: just allocated.
            unsafe { pool.dealloc(b, l) };
            assert_eq!(pool.stats().arenas, 1);
        }
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "double free")]
    fn double_free_is_caught() {
        let pool = Pool::new();
        let l = layout(32, 8);
        let _keep = pool.alloc(l).unwrap();
        let b = pool.alloc(l).unwrap();
        // SAFETY: deliberately wrong: the second call is a double free, which
        // the debug assertion catches before touching the free list.
        unsafe {
            pool.dealloc(b, l);
            pool.dealloc(b, l);
        }
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "freed into a pool that did not allocate it")]
    fn free_into_the_wrong_pool_is_caught() {
        let a = Pool::new();
        let b = Pool::new();
        let l = layout(32, 8);
        let _warm = b.alloc(l).unwrap();
        let block = a.alloc(l).unwrap();
        // SAFETY: deliberately wrong; caught by the debug assertion first.
        unsafe { b.dealloc(block, l) };
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "but it is a 32-byte block")]
    fn wrong_layout_is_caught() {
        let pool = Pool::new();
        let block = pool.alloc(layout(32, 8)).unwrap();
        // SAFETY: deliberately wrong; caught by the debug assertion first.
        unsafe { pool.dealloc(block, layout(64, 8)) };
    }

    static_assertions::assert_impl_all!(Pool: Send, Default, fmt::Debug);
    static_assertions::assert_not_impl_any!(Pool: Sync);

    #[test]
    fn pool_is_send() {
        let pool = Pool::new();
        let l = layout(48, 8);
        let b = pool.alloc(l).unwrap().as_ptr().addr();
        let pool = std::thread::spawn(move || {
            let c = pool.alloc(l).unwrap();
            assert_ne!(c.as_ptr().addr(), b);
            pool
        })
        .join()
        .unwrap();
        assert_eq!(pool.stats().blocks_in_use(), 2);
    }
}
