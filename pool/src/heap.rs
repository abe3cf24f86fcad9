//! The allocator core: arenas cut into pools cut into blocks.
//!
//! This is the one module of the crate that touches raw memory. `Heap` is
//! CPython's obmalloc state for one owner: `Pool` wraps one heap in a cell,
//! `SyncPool` keeps one heap per shard behind a lock.
//!
//! Memory layout:
//!
//! * An **arena** is `ARENA_SIZE` bytes from the OS (`os`), aligned to
//!   `ARENA_SIZE` (so to `POOL_SIZE`): exactly `POOLS_PER_ARENA` pools. Its bookkeeping
//!   (`Arena`) lives in a separate small `System` allocation.
//! * A **pool** starts with a `PoolHeader`; the rest is blocks of one size
//!   class. Masking a block's address with `!POOL_MASK` finds its header.
//! * A free **block** stores the address of the next free block of its pool
//!   in its first word.
//!
//! Lists (all intrusive, all O(1) to update):
//!
//! * `usedpools[class]`: doubly linked pools of that class with at least one
//!   free block. Invariant: a pool is on this list iff its `freeblock` is
//!   non-null. Allocation pops from the head pool's `freeblock` list; when
//!   that list runs dry, the next never-used block is appended bump-style,
//!   and when there is none the pool is full and leaves the list.
//! * `usable_arenas`: doubly linked arenas with at least one free pool,
//!   sorted by ascending number of free pools, so new pools come from the
//!   fullest arena and the emptier ones get a chance to empty out completely.
//!   `nfp2lasta[n]` is the last arena with `n` free pools, which makes keeping
//!   the order O(1) (the trick of CPython 3.8's obmalloc).
//! * `all_arenas`: every arena, for statistics and for `Drop`.
//!
//! Hysteresis: the last empty pool of a class stays on its class list, and
//! completely free arenas are kept as spares, up to as many as are in use
//! (at least one), so an alloc/free loop does not thrash pools or go to the
//! OS on every iteration, and a program that frees a large structure and
//! builds the next one does not fault in fresh pages for it. Everything else
//! empty goes back at once (pools to their arena, surplus arenas to the OS);
//! `trim` releases the rest.

use core::alloc::Layout;
use core::ptr::{self, NonNull};
use std::alloc::{GlobalAlloc, System};

use crate::size_class::class_size;
use crate::size_class::{ARENA_SIZE, NUM_CLASSES, POOL_MASK, POOL_SIZE, POOLS_PER_ARENA};
use crate::stats::PoolStats;
use crate::{arena_map, os};

/// `PoolHeader::magic`: this is a pool header.
const POOL_MAGIC: u32 = 0x6f75_726f; // "ouro"

/// The header at the start of every pool.
///
/// The first cache line holds what stays constant while any block of the
/// pool is live (read by other threads freeing into a `SyncPool`); the
/// second holds what the owner writes on every allocation and free, so a
/// remote free does not pull the owner's hot line over.
#[repr(C)]
struct PoolHeader {
    /// The size class served (or last served, while `free`).
    class: u32,
    /// `POOL_MAGIC` (checked by debug assertions).
    magic: u32,
    /// The arena holding this pool.
    arena: *mut Arena,
    /// `Heap::id` of the owning heap (checked by debug assertions).
    owner: usize,
    /// `SyncPool` shard owning the arena (0 for `Pool`). Set before the first
    /// block of the pool is handed out and constant while any block is live,
    /// so any thread holding a live block may read it.
    shard: u16,
    /// On its arena's free list, serving no class. Its free-block list is
    /// kept intact, so it can serve `class` again without initialisation.
    free: bool,
    _cold_end: [u8; 64 - 27],
    /// Head of the free-block list; null exactly when the pool is full.
    /// Every block on the list is free and its first word links to the next.
    freeblock: *mut u8,
    /// Blocks handed out and not freed yet.
    count: u32,
    /// Offset of the first never-used block.
    next_offset: u32,
    /// Largest offset at which a whole block still fits.
    max_offset: u32,
    /// Empty, but kept on its class list to avoid thrashing (counted in
    /// `Arena::nkept`).
    kept: bool,
    /// Links on `usedpools[class]` (both), or the arena's free pools (`next`).
    next: *mut PoolHeader,
    prev: *mut PoolHeader,
    /// Debug builds: one bit per 16-byte granule, set for the first granule
    /// of every live block (catches double frees and bad pointers).
    #[cfg(debug_assertions)]
    live: [u64; POOL_SIZE / 16 / 64],
}

const _: () = assert!(core::mem::offset_of!(PoolHeader, freeblock) == 64);

/// Offset of the first block in a pool.
const HEADER_SIZE: usize = (size_of::<PoolHeader>() + 15) & !15;

const _: () = assert!(HEADER_SIZE.is_multiple_of(16) && HEADER_SIZE < POOL_SIZE / 8);

/// Blocks in a pool of size class `class`.
#[inline]
pub(crate) const fn pool_capacity(class: usize) -> usize {
    (POOL_SIZE - HEADER_SIZE) / class_size(class)
}

/// Bookkeeping of one arena (kept outside the arena, in a `System` block).
struct Arena {
    /// Start of the `ARENA_SIZE` region, aligned to `POOL_SIZE`.
    base: NonNull<u8>,
    /// Pools that were used and are free again (linked through `next`).
    freepools: *mut PoolHeader,
    /// Free pools: those on `freepools` plus the never-used ones.
    nfreepools: usize,
    /// Index of the first never-used pool.
    pool_bump: usize,
    /// Pools of this arena that are empty but kept on their class list.
    nkept: usize,
    /// Links on `usable_arenas` (only while `nfreepools > 0`).
    next: *mut Arena,
    prev: *mut Arena,
    /// Links on `all_arenas`.
    all_next: *mut Arena,
    all_prev: *mut Arena,
    /// Shard of the owning `SyncPool` heap.
    shard: u16,
}

/// Source of `Heap::id`s, assigned when a heap creates its first arena.
static NEXT_HEAP_ID: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(1);

/// One owner's arenas, pools and free lists.
///
/// Invariants (relied on by every `SAFETY` comment below):
/// * every pointer reachable from the lists points into a live arena
///   allocated by this heap (or to its `Arena` record), and is derived from
///   the arena's `base`, so it carries the provenance of the whole arena;
/// * the lists are as described in the module docs.
pub(crate) struct Heap {
    usedpools: [*mut PoolHeader; NUM_CLASSES],
    usable_arenas: *mut Arena,
    nfp2lasta: [*mut Arena; POOLS_PER_ARENA + 1],
    all_arenas: *mut Arena,
    narenas: usize,
    /// Arenas with every pool free, kept as spares (at most
    /// `spare_limit()` except transiently).
    empty_arenas: usize,
    /// Nonzero once the heap has an arena; unique per heap.
    id: usize,
    /// Blocks and bytes currently served by `System` (used by `Pool` only).
    pub(crate) system_blocks: usize,
    pub(crate) system_bytes: usize,
}

// SAFETY: a heap exclusively owns its arenas; nothing in it is tied to a
// thread, so moving it to another thread is fine.
unsafe impl Send for Heap {}

impl core::fmt::Debug for Heap {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Heap")
            .field("arenas", &self.narenas)
            .finish_non_exhaustive()
    }
}

/// The header of the pool holding `block`, as a pointer with the arena's
/// provenance (see `arena_map`); null if no arena holds `block`.
#[inline(always)]
fn pool_of(block: *mut u8) -> *mut PoolHeader {
    arena_map::locate(block.addr() & !POOL_MASK).cast()
}

/// The pool of a live block, looked up once for freeing several blocks of
/// the same pool (`SyncPool::dealloc_batch`).
#[derive(Clone, Copy)]
pub(crate) struct PoolRef {
    base: usize,
    pool: *mut PoolHeader,
}

impl PoolRef {
    /// The pool of `block`.
    #[inline]
    pub(crate) fn of(block: NonNull<u8>) -> PoolRef {
        PoolRef {
            base: block.addr().get() & !POOL_MASK,
            pool: pool_of(block.as_ptr()),
        }
    }

    /// Whether `block` lies in this pool.
    #[inline]
    pub(crate) fn holds(&self, block: NonNull<u8>) -> bool {
        block.addr().get() & !POOL_MASK == self.base
    }

    /// The `SyncPool` shard that owns the pool.
    ///
    /// # Safety
    /// A block of this pool is live (not freed yet).
    #[inline]
    pub(crate) unsafe fn shard(&self) -> usize {
        // SAFETY: a live block keeps its pool's header initialised, and the
        // `shard` field constant (see the field).
        unsafe { (*self.pool).shard as usize }
    }
}

/// The `SyncPool` shard that owns `block`.
///
/// # Safety
/// `block` is a live block handed out by some `Heap` (not freed yet).
#[inline]
pub(crate) unsafe fn shard_of(block: NonNull<u8>) -> usize {
    // SAFETY: the block is live, so its pool header is initialised and its
    // `shard` field does not change until the block is freed (see the field).
    unsafe { (*pool_of(block.as_ptr())).shard as usize }
}

/// Debug builds: panics unless `block` was handed out for a layout of size
/// class `class`.
///
/// # Safety
/// `block` is a live block handed out by some `Heap`.
#[cfg(debug_assertions)]
pub(crate) unsafe fn debug_check_layout(block: NonNull<u8>, layout: Layout) {
    let pool = pool_of(block.as_ptr());
    assert!(
        !pool.is_null(),
        "ouro-pool: dealloc of {block:p}, which no pool allocated (layout {layout:?})"
    );
    // SAFETY: the block is live, so its header is initialised; `class` is
    // constant while the block is live.
    let (magic, class) = unsafe { ((*pool).magic, (*pool).class) };
    assert!(
        magic == POOL_MAGIC,
        "ouro-pool: dealloc of {block:p}, which no pool allocated (layout {layout:?})"
    );
    let expected = crate::size_class::class_of(layout).unwrap_or(usize::MAX);
    assert!(
        class as usize == expected,
        "ouro-pool: dealloc of {block:p} with layout {layout:?}, but it is a {}-byte block \
         (alloc and dealloc layouts differ, or a double free)",
        class_size(class as usize)
    );
}

/// Debug builds: no check.
///
/// # Safety
/// `block` is a live block handed out by some `Heap`.
#[cfg(not(debug_assertions))]
#[inline(always)]
pub(crate) unsafe fn debug_check_layout(_block: NonNull<u8>, _layout: Layout) {}

/// Serves `layout` from the system allocator (zero-size layouts get a
/// dangling, aligned pointer, as `Box` does: `System` may not be asked for 0
/// bytes).
#[inline(never)]
pub(crate) fn system_alloc(layout: Layout) -> Option<NonNull<u8>> {
    if layout.size() == 0 {
        return NonNull::new(ptr::without_provenance_mut(layout.align()));
    }
    // SAFETY: the size is nonzero.
    NonNull::new(unsafe { System.alloc(layout) })
}

/// Releases what `system_alloc` returned.
///
/// # Safety
/// `ptr` came from `system_alloc(layout)` and is not used afterwards.
#[inline(never)]
pub(crate) unsafe fn system_dealloc(ptr: NonNull<u8>, layout: Layout) {
    if layout.size() != 0 {
        // SAFETY: by the caller, `ptr` was allocated by `System` with `layout`.
        unsafe { System.dealloc(ptr.as_ptr(), layout) }
    }
}

/// A misuse caught by the debug checks of `Heap::free`.
///
/// A value rather than a panic, so that `SyncPool` can release its lock
/// before panicking: formatting the message allocates, which would re-enter
/// the allocator when it is the global one.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BadFree {
    block: *mut u8,
    #[cfg_attr(not(debug_assertions), allow(dead_code))]
    kind: BadFreeKind,
}

#[derive(Clone, Copy, Debug)]
#[cfg_attr(not(debug_assertions), allow(dead_code))]
enum BadFreeKind {
    NotAPool,
    EmptyPool,
    OtherHeap,
    NotABlock,
    DoubleFree,
}

impl BadFree {
    /// Panics with the message for this misuse.
    #[cold]
    #[inline(never)]
    #[track_caller]
    pub(crate) fn raise(self) -> ! {
        panic!("{self}")
    }
}

impl core::fmt::Display for BadFree {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let block = self.block;
        match self.kind {
            BadFreeKind::NotAPool => {
                write!(f, "ouro-pool: free of {block:p}, which no pool allocated")
            }
            BadFreeKind::EmptyPool => {
                write!(
                    f,
                    "ouro-pool: double free of {block:p} (its pool is already empty)"
                )
            }
            BadFreeKind::OtherHeap => {
                write!(
                    f,
                    "ouro-pool: block {block:p} freed into a pool that did not allocate it"
                )
            }
            BadFreeKind::NotABlock => {
                write!(
                    f,
                    "ouro-pool: free of {block:p}, which is not the start of a block"
                )
            }
            BadFreeKind::DoubleFree => write!(f, "ouro-pool: double free of block {block:p}"),
        }
    }
}

impl Heap {
    /// An empty heap; it gets memory on its first allocation.
    pub(crate) const fn new() -> Self {
        Self {
            usedpools: [ptr::null_mut(); NUM_CLASSES],
            usable_arenas: ptr::null_mut(),
            nfp2lasta: [ptr::null_mut(); POOLS_PER_ARENA + 1],
            all_arenas: ptr::null_mut(),
            narenas: 0,
            empty_arenas: 0,
            id: 0,
            system_blocks: 0,
            system_bytes: 0,
        }
    }

    /// Pops a block of class `class` from the class's current pool, or
    /// returns `None` when the class has no pool with a free block.
    #[inline(always)]
    pub(crate) fn pop(&mut self, class: usize) -> Option<NonNull<u8>> {
        let pool = self.usedpools[class];
        if pool.is_null() {
            return None;
        }
        // SAFETY: pools on `usedpools` are initialised pools of live arenas
        // of this heap with a non-null `freeblock` (list invariant); the head
        // of the free-block list is a free block whose first word is a link.
        unsafe {
            let block = (*pool).freeblock;
            debug_assert!(!block.is_null(), "ouro-pool: full pool on a class list");
            let next = block.cast::<*mut u8>().read();
            (*pool).freeblock = next;
            let count = (*pool).count;
            (*pool).count = count + 1;
            if count == 0 {
                self.unkeep(pool);
            }
            if next.is_null() {
                self.extend_or_unlink(pool, class);
            }
            #[cfg(debug_assertions)]
            {
                let (word, bit) = live_bit(block);
                assert!(
                    (*pool).live[word] & bit == 0,
                    "ouro-pool: block {block:p} handed out twice"
                );
                (*pool).live[word] |= bit;
            }
            Some(NonNull::new_unchecked(block))
        }
    }

    /// `pool` handed out its first block (after being fresh or kept empty).
    ///
    /// # Safety
    /// `pool` is an initialised pool of this heap.
    #[inline(never)]
    unsafe fn unkeep(&mut self, pool: *mut PoolHeader) {
        // SAFETY: by the caller; its arena is live.
        unsafe {
            if (*pool).kept {
                (*pool).kept = false;
                (*(*pool).arena).nkept -= 1;
            }
        }
    }

    /// The free list of `pool` ran dry: hand out one more never-used block,
    /// or take the pool off its class list if it is full.
    ///
    /// # Safety
    /// `pool` is on `usedpools[class]` with a null `freeblock`.
    #[inline(never)]
    unsafe fn extend_or_unlink(&mut self, pool: *mut PoolHeader, class: usize) {
        // SAFETY: by the caller `pool` is an initialised pool of this heap;
        // `next_offset <= max_offset` means a whole block fits at
        // `next_offset` inside the pool.
        unsafe {
            let offset = (*pool).next_offset;
            if offset <= (*pool).max_offset {
                let block = pool.cast::<u8>().add(offset as usize);
                block.cast::<*mut u8>().write(ptr::null_mut());
                (*pool).freeblock = block;
                (*pool).next_offset = offset + class_size(class) as u32;
            } else {
                self.unlink_used(pool, class);
            }
        }
    }

    /// Slow path of allocation: put a fresh pool on the class list (from the
    /// fullest usable arena, or a new arena) and allocate from it.
    #[cold]
    #[inline(never)]
    pub(crate) fn alloc_slow(&mut self, class: usize, shard: usize) -> Option<NonNull<u8>> {
        if let Some(block) = self.pop(class) {
            return Some(block);
        }
        if self.usable_arenas.is_null() {
            self.new_arena(shard)?;
        }
        let arena = self.usable_arenas;
        // SAFETY: `arena` heads `usable_arenas`, so it is live, has at least
        // one free pool and the fewest free pools of all usable arenas. Pool
        // addresses are derived from its `base`.
        unsafe {
            let nf = (*arena).nfreepools;
            debug_assert!(nf >= 1);
            let mut reuse = false;
            let pool = if !(*arena).freepools.is_null() {
                let pool = (*arena).freepools;
                (*arena).freepools = (*pool).next;
                // Like CPython: a pool that served this class before still
                // has its header and its (complete) free list.
                reuse = (*pool).class as usize == class;
                pool
            } else {
                let index = (*arena).pool_bump;
                debug_assert!(index < POOLS_PER_ARENA);
                (*arena).pool_bump = index + 1;
                (*arena)
                    .base
                    .as_ptr()
                    .add(index * POOL_SIZE)
                    .cast::<PoolHeader>()
            };
            if nf == POOLS_PER_ARENA {
                self.empty_arenas -= 1;
            }
            (*arena).nfreepools = nf - 1;
            if self.nfp2lasta[nf] == arena {
                // `arena` was first (it is the head) and last of its group.
                self.nfp2lasta[nf] = ptr::null_mut();
            }
            if nf == 1 {
                // Full: leave `usable_arenas`.
                self.usable_arenas = (*arena).next;
                if !self.usable_arenas.is_null() {
                    (*self.usable_arenas).prev = ptr::null_mut();
                }
                (*arena).next = ptr::null_mut();
            } else {
                // The head had the fewest free pools, so it is alone with nf - 1.
                debug_assert!(self.nfp2lasta[nf - 1].is_null());
                self.nfp2lasta[nf - 1] = arena;
            }
            if reuse {
                debug_assert!((*pool).count == 0 && !(*pool).kept && !(*pool).freeblock.is_null());
                (*pool).free = false;
                (*pool).next = ptr::null_mut();
                (*pool).prev = ptr::null_mut();
                debug_assert!(self.usedpools[class].is_null());
                self.usedpools[class] = pool;
            } else {
                self.init_pool(pool, class, arena);
            }
        }
        self.pop(class)
    }

    /// Makes `pool` serve `class` and puts it at the head of the class list.
    ///
    /// # Safety
    /// `pool` is a pool of `arena` (a live arena of this heap) that is not on
    /// any list; the class list is empty.
    unsafe fn init_pool(&mut self, pool: *mut PoolHeader, class: usize, arena: *mut Arena) {
        let size = class_size(class);
        // SAFETY: by the caller `pool` is `POOL_SIZE` bytes of this heap's
        // memory that nobody else uses; `HEADER_SIZE + size <= POOL_SIZE`.
        unsafe {
            let first = pool.cast::<u8>().add(HEADER_SIZE);
            first.cast::<*mut u8>().write(ptr::null_mut());
            pool.write(PoolHeader {
                freeblock: first,
                count: 0,
                class: class as u32,
                next_offset: (HEADER_SIZE + size) as u32,
                max_offset: (POOL_SIZE - size) as u32,
                next: self.usedpools[class],
                prev: ptr::null_mut(),
                arena,
                owner: self.id,
                shard: (*arena).shard,
                free: false,
                _cold_end: [0; 64 - 27],
                kept: false,
                magic: POOL_MAGIC,
                #[cfg(debug_assertions)]
                live: [0; POOL_SIZE / 16 / 64],
            });
            debug_assert!(self.usedpools[class].is_null());
            self.usedpools[class] = pool;
        }
    }

    /// Gets a new arena from the OS and makes it the only usable arena.
    #[cold]
    fn new_arena(&mut self, shard: usize) -> Option<()> {
        debug_assert!(self.usable_arenas.is_null());
        if self.id == 0 {
            self.id = NEXT_HEAP_ID.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
        }
        let base = os::alloc_arena()?;
        // SAFETY: `Arena` has a nonzero size.
        let arena = unsafe { System.alloc(Layout::new::<Arena>()) }.cast::<Arena>();
        if arena.is_null() || arena_map::register(base).is_none() {
            // SAFETY: `base` (and `arena`, if not null) were just allocated
            // with these layouts, and are not registered.
            unsafe {
                os::free_arena(base);
                if !arena.is_null() {
                    System.dealloc(arena.cast(), Layout::new::<Arena>());
                }
            }
            return None;
        }
        // SAFETY: `arena` is a fresh allocation for one `Arena`; the old
        // head of `all_arenas` is a live arena record.
        unsafe {
            arena.write(Arena {
                base,
                freepools: ptr::null_mut(),
                nfreepools: POOLS_PER_ARENA,
                pool_bump: 0,
                nkept: 0,
                next: ptr::null_mut(),
                prev: ptr::null_mut(),
                all_next: self.all_arenas,
                all_prev: ptr::null_mut(),
                shard: shard as u16,
            });
            if !self.all_arenas.is_null() {
                (*self.all_arenas).all_prev = arena;
            }
        }
        self.all_arenas = arena;
        self.narenas += 1;
        self.empty_arenas += 1;
        self.usable_arenas = arena;
        self.nfp2lasta[POOLS_PER_ARENA] = arena;
        Some(())
    }

    /// Returns `block` to its pool.
    ///
    /// Debug builds first check for a double free or a foreign pointer and
    /// return the problem instead of freeing (the caller panics, after
    /// releasing any lock: formatting a panic message allocates).
    ///
    /// # Safety
    /// `block` was handed out by `pop`/`alloc_slow` of this heap and is not
    /// used afterwards.
    #[inline(always)]
    pub(crate) unsafe fn free(&mut self, block: NonNull<u8>) -> Result<(), BadFree> {
        // SAFETY: forwarded; `PoolRef::of` is the block's own pool.
        unsafe { self.free_in(block, PoolRef::of(block)) }
    }

    /// [`free`](Self::free) with the block's pool looked up already.
    ///
    /// # Safety
    /// As `free`, and `pool` is `PoolRef::of(block)`.
    #[inline(always)]
    pub(crate) unsafe fn free_in(
        &mut self,
        block: NonNull<u8>,
        pool: PoolRef,
    ) -> Result<(), BadFree> {
        let block = block.as_ptr();
        let pool = pool.pool;
        #[cfg(debug_assertions)]
        // SAFETY: forwarded from the caller (the check itself only relies on
        // `block` pointing into memory that was handed out).
        unsafe {
            self.debug_check_free(pool, block)?
        };
        // SAFETY: by the caller `block` is a live block of this heap, so
        // `pool` is its initialised pool header; the block is at least 16
        // bytes and 16-aligned, so it can hold the link.
        unsafe {
            let last = (*pool).freeblock;
            block.cast::<*mut u8>().write(last);
            (*pool).freeblock = block;
            let count = (*pool).count - 1;
            (*pool).count = count;
            if last.is_null() || count == 0 {
                self.free_slow(pool, last.is_null());
            }
        }
        Ok(())
    }

    /// Debug builds: finds a double free or a pointer that this heap did not
    /// hand out; otherwise marks the block free in the `live` bitmap.
    ///
    /// # Safety
    /// `block` points into memory handed out by some `Heap`.
    #[cfg(debug_assertions)]
    unsafe fn debug_check_free(
        &mut self,
        pool: *mut PoolHeader,
        block: *mut u8,
    ) -> Result<(), BadFree> {
        let bad = |kind| Err(BadFree { block, kind });
        // SAFETY: by the caller `pool` is a pool header.
        unsafe {
            if pool.is_null() || (*pool).magic != POOL_MAGIC {
                return bad(BadFreeKind::NotAPool);
            }
            if (*pool).free {
                return bad(BadFreeKind::EmptyPool);
            }
            if (*pool).owner != self.id {
                return bad(BadFreeKind::OtherHeap);
            }
            let offset = block.addr() & POOL_MASK;
            let size = class_size((*pool).class as usize);
            if offset < HEADER_SIZE
                || !(offset - HEADER_SIZE).is_multiple_of(size)
                || offset >= (*pool).next_offset as usize
            {
                return bad(BadFreeKind::NotABlock);
            }
            let (word, bit) = live_bit(block);
            if (*pool).live[word] & bit == 0 {
                return bad(BadFreeKind::DoubleFree);
            }
            (*pool).live[word] &= !bit;
        }
        Ok(())
    }

    /// A free made `pool` non-full (`was_full`) or empty.
    ///
    /// # Safety
    /// `pool` is an initialised pool of this heap whose `freeblock` and
    /// `count` were just updated by `free`.
    #[inline(never)]
    unsafe fn free_slow(&mut self, pool: *mut PoolHeader, was_full: bool) {
        // SAFETY: by the caller; the list operations keep the list invariants.
        unsafe {
            let class = (*pool).class as usize;
            if was_full {
                // Back on the class list, at the head: it is used next.
                debug_assert!((*pool).count > 0);
                let head = self.usedpools[class];
                (*pool).next = head;
                (*pool).prev = ptr::null_mut();
                if !head.is_null() {
                    (*head).prev = pool;
                }
                self.usedpools[class] = pool;
                return;
            }
            // Empty. Keep it if it is the only pool of its class, unless
            // that would pin an otherwise empty arena.
            if (*pool).prev.is_null() && (*pool).next.is_null() {
                let arena = (*pool).arena;
                (*pool).kept = true;
                (*arena).nkept += 1;
                // `release_if_only_kept` does nothing while at most one arena
                // is in use: test that here, so an alloc/free loop on a
                // single object (the common `Gc::new` + drop) skips the call.
                if self.narenas - self.empty_arenas > 1 {
                    self.release_if_only_kept(arena);
                }
                return;
            }
            self.unlink_used(pool, class);
            self.release_pool(pool);
        }
    }

    /// Takes `pool` off `usedpools[class]`.
    ///
    /// # Safety
    /// `pool` is on `usedpools[class]`.
    unsafe fn unlink_used(&mut self, pool: *mut PoolHeader, class: usize) {
        // SAFETY: by the caller, `pool` and its neighbours are pools of this heap.
        unsafe {
            let (next, prev) = ((*pool).next, (*pool).prev);
            if prev.is_null() {
                self.usedpools[class] = next;
            } else {
                (*prev).next = next;
            }
            if !next.is_null() {
                (*next).prev = prev;
            }
            (*pool).next = ptr::null_mut();
            (*pool).prev = ptr::null_mut();
        }
    }

    /// Gives the empty `pool` back to its arena; an arena that becomes
    /// completely free goes back to the OS unless it is kept as a spare.
    ///
    /// # Safety
    /// `pool` is an empty pool of this heap on no list.
    unsafe fn release_pool(&mut self, pool: *mut PoolHeader) {
        // SAFETY: by the caller; `arena` is live (it holds `pool`), and the
        // list updates keep `usable_arenas` sorted with `nfp2lasta` exact.
        unsafe {
            let arena = (*pool).arena;
            (*pool).free = true;
            (*pool).next = (*arena).freepools;
            (*arena).freepools = pool;
            let nf = (*arena).nfreepools + 1;
            (*arena).nfreepools = nf;
            if nf == 1 {
                // It was full, so it is not on `usable_arenas`; one free pool
                // is the fewest possible, so it goes first.
                let head = self.usable_arenas;
                (*arena).prev = ptr::null_mut();
                (*arena).next = head;
                if !head.is_null() {
                    (*head).prev = arena;
                }
                self.usable_arenas = arena;
                if self.nfp2lasta[1].is_null() {
                    self.nfp2lasta[1] = arena;
                }
                return;
            }
            self.regroup(arena, nf);
            if (*arena).nkept > 0 {
                self.release_if_only_kept(arena);
                return;
            }
            if nf == POOLS_PER_ARENA {
                self.empty_arenas += 1;
                self.release_spares();
            }
        }
    }

    /// Returns completely free arenas to the OS until at most
    /// [`spare_limit`](Self::spare_limit) are kept.
    ///
    /// Spares are what a program that frees a large structure and builds
    /// another one reuses without a page fault per page (mapping, faulting
    /// in and zeroing fresh memory costs more than the allocations served
    /// from it). A new arena is mapped only when no spare is left, so the
    /// arenas held never exceed the most this heap had in use at once: the
    /// peak footprint does not grow.
    #[inline(never)]
    fn release_spares(&mut self) {
        while self.empty_arenas > self.spare_limit() {
            let arena = self.nfp2lasta[POOLS_PER_ARENA];
            debug_assert!(!arena.is_null());
            // SAFETY: `arena` is on `usable_arenas` with every pool free, so
            // no block in it is live and nothing points into it.
            unsafe {
                self.remove_usable(arena);
                self.free_arena(arena);
            }
            self.empty_arenas -= 1;
        }
    }

    /// How many completely free arenas are kept: as many as are in use
    /// (at least one, so an alloc/free loop does not go to the OS each
    /// time). Reserved memory stays within twice what is in use, and falls
    /// with it: freeing everything leaves one spare.
    #[inline]
    fn spare_limit(&self) -> usize {
        (self.narenas - self.empty_arenas).max(1)
    }

    /// If every used pool of `arena` is an empty pool kept for hysteresis and
    /// other arenas are in use (so the kept pools are not what an alloc/free
    /// loop runs on), releases the kept pools, and with them the arena.
    ///
    /// # Safety
    /// `arena` is a live arena of this heap; no pointer into it is held
    /// across the call (it may be freed).
    unsafe fn release_if_only_kept(&mut self, arena: *mut Arena) {
        // SAFETY: by the caller; pools below `pool_bump` are initialised;
        // the arena is not touched after the last `release_pool`, which may
        // free it.
        unsafe {
            let kept = (*arena).nkept;
            if kept == 0
                || kept + (*arena).nfreepools != POOLS_PER_ARENA
                || self.narenas - self.empty_arenas <= 1
            {
                return;
            }
            (*arena).nkept = 0;
            let base = (*arena).base.as_ptr();
            let mut remaining = kept;
            for index in 0..(*arena).pool_bump {
                let pool = base.add(index * POOL_SIZE).cast::<PoolHeader>();
                if !(*pool).free && (*pool).kept {
                    debug_assert_eq!((*pool).count, 0);
                    (*pool).kept = false;
                    self.unlink_used(pool, (*pool).class as usize);
                    remaining -= 1;
                    self.release_pool(pool);
                    if remaining == 0 {
                        return;
                    }
                }
            }
        }
    }

    /// `arena`, on `usable_arenas`, went from `nf - 1` to `nf` free pools:
    /// move it to the end of the `nf` group.
    ///
    /// # Safety
    /// `arena` is on `usable_arenas` and `nf >= 2`.
    unsafe fn regroup(&mut self, arena: *mut Arena, nf: usize) {
        // SAFETY: by the caller; every arena reached is on `usable_arenas`.
        unsafe {
            let old = nf - 1;
            let last_old = self.nfp2lasta[old];
            debug_assert!(!last_old.is_null());
            if last_old == arena {
                let prev = (*arena).prev;
                self.nfp2lasta[old] = if !prev.is_null() && (*prev).nfreepools == old {
                    prev
                } else {
                    ptr::null_mut()
                };
            }
            let target = if self.nfp2lasta[nf].is_null() {
                last_old
            } else {
                self.nfp2lasta[nf]
            };
            if target != arena {
                self.unlink_usable(arena);
                let after = (*target).next;
                (*arena).prev = target;
                (*arena).next = after;
                if !after.is_null() {
                    (*after).prev = arena;
                }
                (*target).next = arena;
            }
            self.nfp2lasta[nf] = arena;
        }
    }

    /// Takes `arena` off `usable_arenas`, keeping `nfp2lasta` exact.
    ///
    /// # Safety
    /// `arena` is on `usable_arenas`.
    unsafe fn remove_usable(&mut self, arena: *mut Arena) {
        // SAFETY: by the caller.
        unsafe {
            let nf = (*arena).nfreepools;
            if self.nfp2lasta[nf] == arena {
                let prev = (*arena).prev;
                self.nfp2lasta[nf] = if !prev.is_null() && (*prev).nfreepools == nf {
                    prev
                } else {
                    ptr::null_mut()
                };
            }
            self.unlink_usable(arena);
        }
    }

    /// Unlinks `arena` from `usable_arenas` (list links only).
    ///
    /// # Safety
    /// `arena` is on `usable_arenas`.
    unsafe fn unlink_usable(&mut self, arena: *mut Arena) {
        // SAFETY: by the caller, `arena` and its neighbours are live arenas.
        unsafe {
            let (next, prev) = ((*arena).next, (*arena).prev);
            if prev.is_null() {
                self.usable_arenas = next;
            } else {
                (*prev).next = next;
            }
            if !next.is_null() {
                (*next).prev = prev;
            }
            (*arena).next = ptr::null_mut();
            (*arena).prev = ptr::null_mut();
        }
    }

    /// Returns `arena` (completely free, on no usable list) to the OS.
    ///
    /// # Safety
    /// `arena` is a live arena of this heap with no live block, not on
    /// `usable_arenas`; nothing points into it afterwards.
    unsafe fn free_arena(&mut self, arena: *mut Arena) {
        // SAFETY: by the caller; `arena` is on `all_arenas` and was allocated
        // by `new_arena` with these layouts.
        unsafe {
            let (next, prev) = ((*arena).all_next, (*arena).all_prev);
            if prev.is_null() {
                self.all_arenas = next;
            } else {
                (*prev).all_next = next;
            }
            if !next.is_null() {
                (*next).all_prev = prev;
            }
            arena_map::unregister((*arena).base);
            os::free_arena((*arena).base);
            System.dealloc(arena.cast(), Layout::new::<Arena>());
        }
        self.narenas -= 1;
    }

    /// Releases the empty pools kept on class lists and every completely
    /// free arena.
    pub(crate) fn trim(&mut self) {
        for class in 0..NUM_CLASSES {
            let mut pool = self.usedpools[class];
            while !pool.is_null() {
                // SAFETY: `pool` is on the class list (invariant); its `next`
                // is read before it leaves the list.
                unsafe {
                    let next = (*pool).next;
                    if (*pool).count == 0 {
                        if (*pool).kept {
                            (*pool).kept = false;
                            (*(*pool).arena).nkept -= 1;
                        }
                        self.unlink_used(pool, class);
                        self.release_pool(pool);
                    }
                    pool = next;
                }
            }
        }
        loop {
            let arena = self.nfp2lasta[POOLS_PER_ARENA];
            if arena.is_null() {
                break;
            }
            // SAFETY: `arena` is on `usable_arenas` with every pool free, so
            // no block in it is live.
            unsafe {
                self.remove_usable(arena);
                self.free_arena(arena);
            }
            self.empty_arenas -= 1;
        }
        debug_assert_eq!(self.empty_arenas, 0);
    }

    /// Adds this heap's numbers to `stats` (derived by walking the arenas).
    pub(crate) fn add_stats(&self, stats: &mut PoolStats) {
        let mut arena = self.all_arenas;
        while !arena.is_null() {
            stats.arenas += 1;
            stats.bytes_reserved += ARENA_SIZE;
            // SAFETY: `arena` is on `all_arenas`, so it is live; pools below
            // `pool_bump` have initialised headers.
            unsafe {
                stats.free_pools += (*arena).nfreepools;
                for index in 0..(*arena).pool_bump {
                    let pool = (*arena)
                        .base
                        .as_ptr()
                        .add(index * POOL_SIZE)
                        .cast::<PoolHeader>();
                    if (*pool).free {
                        continue;
                    }
                    let class = (*pool).class as usize;
                    let count = (*pool).count as usize;
                    let entry = &mut stats.classes[class];
                    entry.pools += 1;
                    entry.blocks_in_use += count;
                    entry.blocks_free += pool_capacity(class) - count;
                    stats.bytes_in_use += count * class_size(class);
                }
                arena = (*arena).all_next;
            }
        }
        stats.system_blocks += self.system_blocks;
        stats.system_bytes += self.system_bytes;
    }

    /// Number of arenas held.
    pub(crate) fn arenas(&self) -> usize {
        self.narenas
    }
}

impl Drop for Heap {
    fn drop(&mut self) {
        let mut arena = self.all_arenas;
        while !arena.is_null() {
            // SAFETY: `arena` is on `all_arenas`, allocated by `new_arena`
            // with these layouts; the owner is being dropped, and blocks must
            // not be used after their pool is dropped (documented on `Pool`).
            unsafe {
                let next = (*arena).all_next;
                arena_map::unregister((*arena).base);
                os::free_arena((*arena).base);
                System.dealloc(arena.cast(), Layout::new::<Arena>());
                arena = next;
            }
        }
    }
}

/// Debug builds: the word and bit of `block` in its pool's `live` bitmap.
#[cfg(debug_assertions)]
fn live_bit(block: *mut u8) -> (usize, u64) {
    let granule = (block.addr() & POOL_MASK) / 16;
    (granule / 64, 1 << (granule % 64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_small() {
        const { assert!(HEADER_SIZE <= if cfg!(debug_assertions) { 240 } else { 112 }) };
        assert_eq!(pool_capacity(0), (POOL_SIZE - HEADER_SIZE) / 16);
        assert!(pool_capacity(NUM_CLASSES - 1) >= 30);
    }

    /// Checks the arena list invariants: sorted, `nfp2lasta` exact.
    fn check_arenas(heap: &Heap) {
        let mut arena = heap.usable_arenas;
        let mut prev: *mut Arena = ptr::null_mut();
        let mut last_of = [ptr::null_mut::<Arena>(); POOLS_PER_ARENA + 1];
        while !arena.is_null() {
            // SAFETY: walking the heap's own list.
            unsafe {
                assert_eq!((*arena).prev, prev);
                let nf = (*arena).nfreepools;
                assert!(nf >= 1);
                if !prev.is_null() {
                    assert!((*prev).nfreepools <= nf, "usable arenas out of order");
                }
                last_of[nf] = arena;
                let kept = (0..(*arena).pool_bump)
                    .map(|i| {
                        (*arena)
                            .base
                            .as_ptr()
                            .add(i * POOL_SIZE)
                            .cast::<PoolHeader>()
                    })
                    .filter(|&p| !(*p).free && (*p).kept)
                    .count();
                assert_eq!(kept, (*arena).nkept);
                prev = arena;
                arena = (*arena).next;
            }
        }
        assert_eq!(last_of, heap.nfp2lasta);
    }

    #[test]
    fn arenas_stay_sorted_and_empty_ones_go_back() {
        let mut heap = Heap::new();
        let class = NUM_CLASSES - 1; // 512-byte blocks: few per pool
        let per_pool = pool_capacity(class);
        let arenas = if cfg!(miri) { 2 } else { 3 };
        let n = per_pool * POOLS_PER_ARENA * arenas;
        let mut blocks: Vec<NonNull<u8>> =
            (0..n).map(|_| heap.alloc_slow(class, 0).unwrap()).collect();
        assert_eq!(heap.arenas(), arenas);
        check_arenas(&heap);
        // Free every other pool's worth in a scattered order.
        let mut i = 0;
        while i < blocks.len() {
            let end = (i + per_pool).min(blocks.len());
            for block in blocks.drain(i..end) {
                // SAFETY: allocated above, freed once.
                unsafe { heap.free(block) }.unwrap();
                if !cfg!(miri) {
                    check_arenas(&heap);
                }
            }
            check_arenas(&heap);
            i += per_pool;
        }
        for (k, block) in blocks.drain(..).rev().enumerate() {
            // SAFETY: allocated above, freed once.
            unsafe { heap.free(block) }.unwrap();
            if k % per_pool == 0 {
                check_arenas(&heap);
            }
        }
        check_arenas(&heap);
        // One empty pool stays on the class list, one free arena is the spare.
        assert!(heap.arenas() <= 2);
        heap.trim();
        check_arenas(&heap);
        assert_eq!(heap.arenas(), 0);
    }
}
