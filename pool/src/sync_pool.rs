//! `SyncPool`: the thread-safe allocator, usable as `#[global_allocator]`.
//!
//! Protocol (every atomic in it is model-checked in `tests/loom.rs`):
//!
//! * The pool is `SHARDS` heaps, each behind a spin lock (`Shard::locked`,
//!   acquire on lock, release on unlock). Each thread is bound to one shard
//!   (a hint in a destructor-free thread-local, handed out round robin), which
//!   acts as that thread's cache of pools: with up to `SHARDS` threads the
//!   lock is never contended and stays in the thread's own cache.
//! * Every pool records its shard (`heap::shard_of`). A thread freeing a block
//!   of its own shard frees it under the lock. A block of another shard is
//!   pushed on that shard's `remote` stack (a Treiber push: the link is
//!   written into the block, then a release CAS publishes it), without
//!   taking any lock.
//! * The owner takes the whole stack with one acquire swap — there is no
//!   single-element pop, so there is no ABA — and frees the blocks into its
//!   heap. It does so under its lock whenever a size class runs out of free
//!   blocks (before taking a new pool), and in `stats` and `trim`.

use core::alloc::{GlobalAlloc, Layout};
use core::fmt;
use core::ptr::{self, NonNull};
use std::alloc::System;

use crate::heap::{self, BadFree, Heap};
use crate::size_class::class_of;
use crate::stats::PoolStats;
use crate::sync::{self, AtomicBool, AtomicPtr, AtomicUsize, Ordering, UnsafeCell};

/// Number of shards (a power of two).
#[cfg(not(loom))]
const SHARDS: usize = 16;
#[cfg(loom)]
const SHARDS: usize = 2;

const _: () = assert!(SHARDS.is_power_of_two());

/// `const fn` normally, plain `fn` under loom (loom's atomics are not const).
macro_rules! const_unless_loom {
    ($(#[$attr:meta])* $vis:vis fn $name:ident() -> $ret:ty $body:block) => {
        #[cfg(not(loom))]
        $(#[$attr])* $vis const fn $name() -> $ret $body
        #[cfg(loom)]
        $(#[$attr])* $vis fn $name() -> $ret $body
    };
}

/// One heap and its lock, plus the stack of blocks freed by other threads.
#[repr(align(128))]
struct Shard {
    /// The spin lock guarding `heap`.
    locked: AtomicBool,
    /// Only accessed while `locked` is held by the accessing thread.
    heap: UnsafeCell<Heap>,
    /// Live system-allocator blocks and bytes counted on this shard (wrapping:
    /// a block may be freed on another shard; only the sum is meaningful).
    system_blocks: AtomicUsize,
    system_bytes: AtomicUsize,
    /// Blocks of this shard freed by other threads, linked through their
    /// first word. On its own cache line: other threads write it.
    remote: Remote,
}

#[repr(align(128))]
struct Remote(AtomicPtr<u8>);

/// Proof that the current thread holds a shard's lock; unlocks on drop.
struct Locked<'a> {
    shard: &'a Shard,
}

impl Shard {
    const_unless_loom! {
        fn new() -> Self {
            Self {
                locked: AtomicBool::new(false),
                heap: UnsafeCell::new(Heap::new()),
                system_blocks: AtomicUsize::new(0),
                system_bytes: AtomicUsize::new(0),
                remote: Remote(AtomicPtr::new(ptr::null_mut())),
            }
        }
    }

    #[inline]
    fn lock(&self) -> Locked<'_> {
        if self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_contended();
        }
        Locked { shard: self }
    }

    #[cold]
    #[inline(never)]
    fn lock_contended(&self) {
        let mut spins = 0u32;
        loop {
            while self.locked.load(Ordering::Relaxed) {
                sync::spin(spins);
                spins = spins.saturating_add(1);
            }
            if self
                .locked
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
        }
    }

    /// Pushes `block` on the remote-free stack.
    ///
    /// # Safety
    /// `block` is a live block of this shard's heap, given up by the caller.
    #[inline]
    unsafe fn push_remote(&self, block: NonNull<u8>) {
        let mut head = self.remote.0.load(Ordering::Relaxed);
        loop {
            // SAFETY: the caller gave the block up and it is at least 16
            // bytes, 16-aligned: its first word is ours to use as the link.
            unsafe { block.as_ptr().cast::<*mut u8>().write(head) };
            match self.remote.0.compare_exchange_weak(
                head,
                block.as_ptr(),
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(current) => head = current,
            }
        }
    }

    /// Counts a system-allocator block of `size` bytes (`sign` +1 or -1).
    #[inline]
    fn count_system(&self, blocks: usize, bytes: usize, add: bool) {
        if add {
            self.system_blocks.fetch_add(blocks, Ordering::Relaxed);
            self.system_bytes.fetch_add(bytes, Ordering::Relaxed);
        } else {
            self.system_blocks.fetch_sub(blocks, Ordering::Relaxed);
            self.system_bytes.fetch_sub(bytes, Ordering::Relaxed);
        }
    }
}

impl Locked<'_> {
    /// Runs `f` on the heap, which the held lock makes exclusive.
    #[inline(always)]
    fn with_heap<R>(&self, f: impl FnOnce(&mut Heap) -> R) -> R {
        self.shard.heap.with_mut(|heap| {
            // SAFETY: `self` proves this thread holds the shard's lock, and
            // the heap is only accessed under it; `f` does not lock again.
            f(unsafe { &mut *heap })
        })
    }

    /// Frees every block other threads pushed on the remote stack (stopping
    /// at a misuse caught by the debug checks).
    fn drain(&self, heap: &mut Heap) -> Result<(), BadFree> {
        if self.shard.remote.0.load(Ordering::Relaxed).is_null() {
            return Ok(());
        }
        let mut block = self.shard.remote.0.swap(ptr::null_mut(), Ordering::Acquire);
        while let Some(b) = NonNull::new(block) {
            // SAFETY: the acquire swap synchronises with the release CAS that
            // pushed `b`, so its link word is visible; the pusher gave the
            // block up and it belongs to this shard's heap, locked by `self`.
            unsafe {
                block = b.as_ptr().cast::<*mut u8>().read();
                heap.free(b)?;
            }
        }
        Ok(())
    }
}

impl Drop for Locked<'_> {
    #[inline]
    fn drop(&mut self) {
        self.shard.locked.store(false, Ordering::Release);
    }
}

/// A thread-safe small-object allocator with per-thread heaps; it can be the
/// program's `#[global_allocator]`.
///
/// Same size classes, pools and arenas as [`Pool`](crate::Pool), in 16 heap
/// shards. Each thread is bound to a shard (round robin on its first
/// allocation), which serves as that thread's cache of pools: with up to 16
/// threads no two threads share a shard and the shard's lock is never
/// contended. A block may be freed on any thread: a free from another shard's
/// thread is a lock-free push onto the owning shard's remote list, which the
/// owner reclaims when it next runs out of free blocks in a size class.
///
/// Layouts of size zero, over 512 bytes or aligned over 16 go to
/// [`std::alloc::System`].
///
/// Memory goes back to the OS as with [`Pool`](crate::Pool) (blocks freed
/// by other threads count once their owner reclaims them; [`trim`]
/// reclaims them at once). Dropping a `SyncPool` that is not a `static`
/// returns all of its arenas: **its blocks must not be used after that.**
///
/// [`trim`]: SyncPool::trim
///
/// # Examples
///
/// As the global allocator:
///
/// ```
/// # mod ouro { pub mod pool { pub use ::ouro_pool::*; } }
/// use ouro::pool::SyncPool;
///
/// #[global_allocator]
/// static ALLOC: SyncPool = SyncPool::new();
///
/// let v: Vec<Box<u32>> = (0..100).map(Box::new).collect();
/// assert_eq!(*v[42], 42);
/// assert!(ALLOC.stats().blocks_in_use() >= 100);
/// ```
///
/// Shared between threads, freeing on another thread:
///
/// ```
/// # mod ouro { pub mod pool { pub use ::ouro_pool::*; } }
/// use std::alloc::Layout;
/// use ouro::pool::SyncPool;
///
/// let pool = SyncPool::new();
/// let layout = Layout::new::<[u8; 24]>();
/// struct Block(std::ptr::NonNull<u8>);
/// // SAFETY: the block is handed over whole; nothing else points to it.
/// unsafe impl Send for Block {}
///
/// let block = Block(pool.alloc(layout).unwrap());
/// std::thread::scope(|s| {
///     s.spawn(|| {
///         let block = block;
///         // SAFETY: the block came from `pool.alloc(layout)` and the main
///         // thread no longer uses it.
///         unsafe { pool.dealloc(block.0, layout) };
///     });
/// });
/// assert_eq!(pool.stats().blocks_in_use(), 0);
/// ```
pub struct SyncPool {
    shards: [Shard; SHARDS],
    /// Next shard to hand out to a thread without one.
    next_shard: AtomicUsize,
}

// SAFETY: every shard's heap is only accessed while holding the shard's lock
// (`Locked::with_heap`), which makes the accesses exclusive and ordered
// (acquire/release); the remote stacks and counters are atomics; a block
// crosses threads only through the caller (who gave it up) or the remote
// stack's release/acquire pair.
unsafe impl Sync for SyncPool {}

impl SyncPool {
    const_unless_loom! {
        /// An empty pool. `const`, so it can initialise a `static`
        /// (a `#[global_allocator]`). Under `cfg(loom)` it is not `const`.
        pub fn new() -> Self {
            Self {
                #[cfg(not(loom))]
                shards: [const { Shard::new() }; SHARDS],
                #[cfg(loom)]
                shards: core::array::from_fn(|_| Shard::new()),
                next_shard: AtomicUsize::new(0),
            }
        }
    }

    /// The calling thread's shard.
    #[inline(always)]
    fn shard_index(&self) -> usize {
        sync::shard_hint(|| self.next_shard.fetch_add(1, Ordering::Relaxed)) & (SHARDS - 1)
    }

    /// Allocates a block for `layout` from the calling thread's shard.
    ///
    /// Returns `None` only when memory runs out. Zero-size layouts get a
    /// dangling aligned pointer; layouts over 512 bytes or aligned over 16
    /// go to the system allocator.
    #[inline]
    pub fn alloc(&self, layout: Layout) -> Option<NonNull<u8>> {
        let Some(class) = class_of(layout) else {
            return self.alloc_system(layout);
        };
        let index = self.shard_index();
        let locked = self.shards[index].lock();
        let result = locked.with_heap(|heap| match heap.pop(class) {
            Some(block) => Ok(Some(block)),
            None => {
                locked.drain(heap)?;
                Ok(heap.alloc_slow(class, index))
            }
        });
        drop(locked);
        result.unwrap_or_else(|bad: BadFree| bad.raise())
    }

    #[inline(never)]
    fn alloc_system(&self, layout: Layout) -> Option<NonNull<u8>> {
        let block = heap::system_alloc(layout)?;
        if layout.size() != 0 {
            self.shards[self.shard_index()].count_system(1, layout.size(), true);
        }
        Some(block)
    }

    /// Returns a block; any thread may free any block of this pool.
    ///
    /// # Safety
    ///
    /// * `ptr` was returned by [`alloc`](SyncPool::alloc) (or the
    ///   `GlobalAlloc` methods) of this same pool with this same `layout`,
    ///   and has not been deallocated since;
    /// * the block is not used after this call.
    ///
    /// Debug builds catch a double free, a foreign block or a layout of the
    /// wrong size class with a panic naming the problem (for a block freed
    /// from another thread, when its owner reclaims it).
    #[inline]
    pub unsafe fn dealloc(&self, ptr: NonNull<u8>, layout: Layout) {
        if class_of(layout).is_none() {
            // SAFETY: by the caller, `ptr` came from `alloc_system(layout)`.
            unsafe { self.dealloc_system(ptr, layout) };
            return;
        }
        // SAFETY: by the caller, `ptr` is a live pool block.
        unsafe { heap::debug_check_layout(ptr, layout) };
        // SAFETY: by the caller, `ptr` is a live pool block.
        let owner = unsafe { heap::shard_of(ptr) };
        debug_assert!(
            owner < SHARDS,
            "ouro-pool: free of {ptr:p}, which no SyncPool allocated"
        );
        let shard = &self.shards[owner & (SHARDS - 1)];
        if owner == self.shard_index() {
            let locked = shard.lock();
            // SAFETY: by the caller `ptr` is a live block of this pool, of
            // shard `owner`, whose heap the lock gives us; not used again.
            let result = locked.with_heap(|heap| unsafe { heap.free(ptr) });
            drop(locked);
            if let Err(bad) = result {
                bad.raise();
            }
        } else {
            // SAFETY: by the caller, a live block of shard `owner`, given up.
            unsafe { shard.push_remote(ptr) };
        }
    }

    /// Returns many blocks at once: the same as calling
    /// [`dealloc`](SyncPool::dealloc) on each, but a run of consecutive
    /// blocks of one shard is freed under one acquisition of that shard's
    /// lock, also for another thread's shard (where `dealloc` would push
    /// each block on the shard's remote stack). For a caller that frees a
    /// large batch, such as a garbage collector, this saves two atomic
    /// operations per block.
    ///
    /// # Safety
    ///
    /// Each `(ptr, layout)` pair satisfies the contract of
    /// [`dealloc`](SyncPool::dealloc), and no block appears twice.
    ///
    /// # Examples
    ///
    /// ```
    /// # mod ouro { pub mod pool { pub use ::ouro_pool::*; } }
    /// use core::alloc::Layout;
    /// use ouro::pool::SyncPool;
    ///
    /// let pool = SyncPool::new();
    /// let layout = Layout::new::<[u64; 4]>();
    /// let blocks: Vec<_> = (0..100).map(|_| (pool.alloc(layout).unwrap(), layout)).collect();
    /// // SAFETY: each block came from `pool.alloc(layout)` and is freed once.
    /// unsafe { pool.dealloc_batch(&blocks) };
    /// assert_eq!(pool.stats().blocks_in_use(), 0);
    /// ```
    pub unsafe fn dealloc_batch(&self, blocks: &[(NonNull<u8>, Layout)]) {
        let mut i = 0;
        while i < blocks.len() {
            let (ptr, layout) = blocks[i];
            if class_of(layout).is_none() {
                // SAFETY: by the caller, `ptr` came from `alloc_system(layout)`.
                unsafe { self.dealloc_system(ptr, layout) };
                i += 1;
                continue;
            }
            let mut pool = heap::PoolRef::of(ptr);
            // SAFETY: by the caller, `ptr` is a live pool block.
            let owner = unsafe { pool.shard() };
            debug_assert!(
                owner < SHARDS,
                "ouro-pool: free of {ptr:p}, which no SyncPool allocated"
            );
            let shard = &self.shards[owner & (SHARDS - 1)];
            let locked = shard.lock();
            // Every following block of the same shard, under this lock; the
            // pool is looked up again only when the block is in another one
            // (a pool with a live block left is never given back, so the
            // one at hand stays valid while its next block is to be freed).
            let result: Result<(), BadFree> = locked.with_heap(|heap| {
                while let Some(&(ptr, layout)) = blocks.get(i) {
                    if class_of(layout).is_none() {
                        break;
                    }
                    if !pool.holds(ptr) {
                        let next = heap::PoolRef::of(ptr);
                        // SAFETY: by the caller, a live pool block.
                        if unsafe { next.shard() } != owner {
                            break;
                        }
                        pool = next;
                    }
                    // SAFETY: by the caller `ptr` is a live block of this
                    // pool, of shard `owner`, whose heap the lock gives us;
                    // not used again. `pool` is its pool.
                    unsafe {
                        heap::debug_check_layout(ptr, layout);
                        heap.free_in(ptr, pool)?;
                    }
                    i += 1;
                }
                Ok(())
            });
            drop(locked);
            if let Err(bad) = result {
                bad.raise();
            }
        }
    }

    /// # Safety
    /// `ptr` came from `alloc_system(layout)` and is not used again.
    #[inline(never)]
    unsafe fn dealloc_system(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: by the caller.
        unsafe { heap::system_dealloc(ptr, layout) };
        if layout.size() != 0 {
            self.shards[self.shard_index()].count_system(1, layout.size(), false);
        }
    }

    /// A snapshot of the memory use of all shards. Takes each shard's lock
    /// in turn and first reclaims blocks freed by other threads.
    pub fn stats(&self) -> PoolStats {
        let mut stats = PoolStats::default();
        let (mut blocks, mut bytes) = (0usize, 0usize);
        for shard in &self.shards {
            let locked = shard.lock();
            let result = locked.with_heap(|heap| {
                let result = locked.drain(heap);
                heap.add_stats(&mut stats);
                result
            });
            drop(locked);
            if let Err(bad) = result {
                bad.raise();
            }
            blocks = blocks.wrapping_add(shard.system_blocks.load(Ordering::Relaxed));
            bytes = bytes.wrapping_add(shard.system_bytes.load(Ordering::Relaxed));
        }
        stats.system_blocks = blocks;
        stats.system_bytes = bytes;
        stats
    }

    /// Reclaims blocks freed by other threads and returns every empty pool
    /// and completely free arena to the OS.
    pub fn trim(&self) {
        for shard in &self.shards {
            let locked = shard.lock();
            let result = locked.with_heap(|heap| {
                let result = locked.drain(heap);
                heap.trim();
                result
            });
            drop(locked);
            if let Err(bad) = result {
                bad.raise();
            }
        }
    }
}

impl Default for SyncPool {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for SyncPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncPool")
            .field("shards", &SHARDS)
            .finish_non_exhaustive()
    }
}

// SAFETY: `alloc` returns blocks valid for the layout (pool blocks are
// 16-aligned and at least the layout's size; other layouts come from
// `System`) or null; `dealloc`/`realloc` receive, by the trait's contract,
// blocks from this allocator with their layouts, which is what
// `SyncPool::dealloc` requires.
unsafe impl GlobalAlloc for SyncPool {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        SyncPool::alloc(self, layout).map_or(ptr::null_mut(), NonNull::as_ptr)
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(ptr) = NonNull::new(ptr) {
            // SAFETY: by `GlobalAlloc::dealloc`'s contract.
            unsafe { SyncPool::dealloc(self, ptr, layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if class_of(layout).is_none() && layout.size() != 0 {
            // SAFETY: the size is nonzero (and by the caller, valid).
            let ptr = unsafe { System.alloc_zeroed(layout) };
            if !ptr.is_null() {
                self.shards[self.shard_index()].count_system(1, layout.size(), true);
            }
            return ptr;
        }
        let ptr = SyncPool::alloc(self, layout).map_or(ptr::null_mut(), NonNull::as_ptr);
        if !ptr.is_null() {
            // SAFETY: the block is valid for `layout.size()` bytes.
            unsafe { ptr.write_bytes(0, layout.size()) };
        }
        ptr
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: by `realloc`'s contract `new_size`, rounded up to the
        // alignment, does not overflow `isize`.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (class_of(layout), class_of(new_layout)) {
            (Some(old), Some(new)) if old == new => return ptr,
            (None, None) if layout.size() != 0 && new_size != 0 => {
                // SAFETY: by the caller, `ptr` came from `System` (a
                // non-class, nonzero layout) with `layout`.
                let new_ptr = unsafe { System.realloc(ptr, layout, new_size) };
                if !new_ptr.is_null() {
                    let shard = &self.shards[self.shard_index()];
                    shard.count_system(1, layout.size(), false);
                    shard.count_system(1, new_size, true);
                }
                return new_ptr;
            }
            _ => {}
        }
        let Some(new_ptr) = SyncPool::alloc(self, new_layout) else {
            return ptr::null_mut();
        };
        // SAFETY: both blocks are valid for the smaller size and distinct;
        // `ptr` came from this allocator with `layout` (caller's contract).
        unsafe {
            ptr::copy_nonoverlapping(ptr, new_ptr.as_ptr(), layout.size().min(new_size));
            GlobalAlloc::dealloc(self, ptr, layout);
        }
        new_ptr.as_ptr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::size_class::ARENA_SIZE;

    static_assertions::assert_impl_all!(SyncPool: Send, Sync, Default, fmt::Debug);

    fn layout(size: usize) -> Layout {
        Layout::from_size_align(size, 8).unwrap()
    }

    /// A block handed from one thread to another.
    struct Handoff(NonNull<u8>, usize);

    // SAFETY: the sending thread gives the block up entirely.
    unsafe impl Send for Handoff {}

    #[test]
    fn alloc_free_same_thread() {
        let pool = SyncPool::new();
        let blocks: Vec<_> = (1..=512)
            .map(|s| (pool.alloc(layout(s)).unwrap(), s))
            .collect();
        for &(b, s) in &blocks {
            // SAFETY: each block holds `s` bytes.
            unsafe { b.as_ptr().write_bytes(s as u8, s) };
        }
        assert_eq!(pool.stats().blocks_in_use(), 512);
        for (b, s) in blocks {
            // SAFETY: contents written above; freed once.
            unsafe {
                assert_eq!(*b.as_ptr().add(s - 1), s as u8);
                pool.dealloc(b, layout(s));
            }
        }
        let stats = pool.stats();
        assert_eq!(stats.blocks_in_use(), 0);
        pool.trim();
        assert_eq!(pool.stats().arenas, 0);
    }

    #[test]
    fn frees_on_other_threads() {
        let pool = SyncPool::new();
        let n = if cfg!(miri) { 50 } else { 20_000 };
        let threads = if cfg!(miri) { 2 } else { 4 };
        std::thread::scope(|s| {
            let (tx, rx) = std::sync::mpsc::channel::<Vec<Handoff>>();
            let pool = &pool;
            s.spawn(move || {
                for batch in rx {
                    for Handoff(p, size) in batch {
                        // SAFETY: allocated by a producer with `layout(size)`,
                        // filled with `size as u8`, handed over exclusively.
                        unsafe {
                            assert_eq!(*p.as_ptr(), size as u8);
                            pool.dealloc(p, layout(size));
                        }
                    }
                }
            });
            for t in 0..threads {
                let tx = tx.clone();
                s.spawn(move || {
                    let mut batch = Vec::new();
                    for i in 0..n {
                        let size = 1 + (i * 7 + t * 13) % 512;
                        let p = pool.alloc(layout(size)).unwrap();
                        // SAFETY: fresh block of `size` bytes.
                        unsafe { p.as_ptr().write_bytes(size as u8, size) };
                        batch.push(Handoff(p, size));
                        if batch.len() == 64 {
                            tx.send(std::mem::take(&mut batch)).unwrap();
                        }
                    }
                    tx.send(batch).unwrap();
                });
            }
            drop(tx);
        });
        let stats = pool.stats();
        assert_eq!(stats.blocks_in_use(), 0, "{stats}");
        pool.trim();
        assert_eq!(pool.stats().bytes_reserved, 0);
    }

    #[test]
    fn batch_frees_blocks_of_every_shard() {
        let pool = SyncPool::new();
        let n = if cfg!(miri) { 20 } else { 5_000 };
        // Blocks from three threads (three shards), sizes that include
        // system-allocator ones, interleaved the way a collector sees them.
        let per_thread: Vec<Vec<Handoff>> = std::thread::scope(|s| {
            let pool = &pool;
            let spawned: Vec<_> = (0..3)
                .map(|t| {
                    s.spawn(move || {
                        (0..n)
                            .map(|i| {
                                let size = 1 + (i * 31 + t * 7) % 700;
                                let p = pool.alloc(layout(size)).unwrap();
                                // SAFETY: fresh block of `size` bytes.
                                unsafe { p.as_ptr().write_bytes(size as u8, size) };
                                Handoff(p, size)
                            })
                            .collect()
                    })
                })
                .collect();
            spawned.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut batch = Vec::new();
        for i in 0..n {
            // Runs of a few blocks of one shard, then another shard.
            for blocks in &per_thread {
                let Handoff(p, size) = blocks[i];
                // SAFETY: filled by its allocating thread, joined above.
                assert_eq!(unsafe { *p.as_ptr() }, size as u8);
                batch.push((p, layout(size)));
            }
        }
        assert!(pool.stats().blocks_in_use() > 0);
        // SAFETY: every block was allocated from `pool` with its layout, and
        // appears once.
        unsafe { pool.dealloc_batch(&batch) };
        assert_eq!(pool.stats().blocks_in_use(), 0);
        // Nothing was left on a remote stack either: the pools are empty.
        pool.trim();
        assert_eq!(pool.stats().pools(), 0);
    }

    #[test]
    fn global_alloc_methods() {
        let pool = SyncPool::new();
        // SAFETY: nonzero layouts; every block is used within its size and
        // freed once with its current layout.
        unsafe {
            let l = layout(20);
            let p = GlobalAlloc::alloc_zeroed(&pool, l);
            assert!((0..20).all(|i| *p.add(i) == 0));
            p.write_bytes(7, 20);
            let q = GlobalAlloc::realloc(&pool, p, l, 30); // same 32-byte class
            assert_eq!(q, p);
            let r = GlobalAlloc::realloc(&pool, q, layout(30), 1000); // to the system
            assert!((0..20).all(|i| *r.add(i) == 7));
            assert_eq!(pool.stats().system_blocks, 1);
            let s = GlobalAlloc::realloc(&pool, r, layout(1000), 5000);
            assert!((0..20).all(|i| *s.add(i) == 7));
            assert_eq!(pool.stats().system_bytes, 5000);
            let t = GlobalAlloc::realloc(&pool, s, layout(5000), 100); // back to a class
            assert!((0..20).all(|i| *t.add(i) == 7));
            let stats = pool.stats();
            assert_eq!((stats.system_blocks, stats.blocks_in_use()), (0, 1));
            GlobalAlloc::dealloc(&pool, t, layout(100));
            let big = GlobalAlloc::alloc_zeroed(&pool, layout(ARENA_SIZE));
            assert_eq!(*big.add(ARENA_SIZE - 1), 0);
            GlobalAlloc::dealloc(&pool, big, layout(ARENA_SIZE));
        }
        assert_eq!(pool.stats().system_blocks, 0);
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "freed into a pool that did not allocate it")]
    fn free_into_the_wrong_pool_is_caught() {
        let a = SyncPool::new();
        let b = SyncPool::new();
        let block = a.alloc(layout(32)).unwrap();
        // SAFETY: deliberately wrong; this thread is on the same shard of
        // both pools, so `b` frees it under its lock and the debug check
        // catches it.
        unsafe { b.dealloc(block, layout(32)) };
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "double free")]
    fn double_free_is_caught() {
        let pool = SyncPool::new();
        let _keep = pool.alloc(layout(32)).unwrap();
        let b = pool.alloc(layout(32)).unwrap();
        // SAFETY: deliberately wrong; the debug assertion catches it.
        unsafe {
            pool.dealloc(b, layout(32));
            pool.dealloc(b, layout(32));
        }
    }
}
