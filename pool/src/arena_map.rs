//! Address -> arena lookup, so the allocator reaches a pool header through a
//! pointer with the arena's own provenance.
//!
//! A block pointer handed back to `dealloc` may have passed through a `Box`
//! or a reference, which under Rust's aliasing models (Stacked Borrows, Tree
//! Borrows) narrows what it may access to the block itself: reading the pool
//! header through it would be undefined behaviour. So the allocator only
//! takes the *address* from the caller's pointer and the provenance from the
//! arena's base pointer, found here.
//!
//! Arenas are aligned to `ARENA_SIZE`, so `address >> 20` names one arena. A
//! two-level table maps it to the arena's base pointer: a static first level
//! of 16384 entries, and second levels of 16384 entries (each covering
//! 16 GiB of address space) allocated from `System` on first use and never
//! freed. A lookup is two dependent loads.
//!
//! The table is written when an arena is created or freed, and read when a
//! block of it is freed; the block's allocation happened after the arena's
//! registration (and its free before the arena's removal), so the
//! release/acquire pairs here are belt and braces. These atomics stay std's
//! under loom: the lookup is not part of the concurrent protocol.

use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicPtr, Ordering};
use std::alloc::{GlobalAlloc, Layout, System};

use crate::size_class::ARENA_SIZE;

const CHUNK_SHIFT: u32 = ARENA_SIZE.trailing_zeros();
const LEVEL_BITS: u32 = 14;
const LEVEL_LEN: usize = 1 << LEVEL_BITS;

const _: () = assert!(ARENA_SIZE.is_power_of_two() && CHUNK_SHIFT + 2 * LEVEL_BITS >= 48);

type Leaf = [AtomicPtr<u8>; LEVEL_LEN];

static ROOT: [AtomicPtr<Leaf>; LEVEL_LEN] = [const { AtomicPtr::new(ptr::null_mut()) }; LEVEL_LEN];

/// Root and leaf indices of the arena holding `addr`, or `None` beyond the
/// 48-bit address space the table covers.
#[inline(always)]
fn indices(addr: usize) -> Option<(usize, usize)> {
    let chunk = addr >> CHUNK_SHIFT;
    let root = chunk >> LEVEL_BITS;
    (root < LEVEL_LEN).then_some((root, chunk & (LEVEL_LEN - 1)))
}

/// Records the arena starting at `base` (aligned to `ARENA_SIZE`). Returns
/// `None` if the table cannot cover it (out of memory for a leaf, or an
/// address beyond 48 bits).
pub(crate) fn register(base: NonNull<u8>) -> Option<()> {
    debug_assert_eq!(base.as_ptr().addr() % ARENA_SIZE, 0);
    let (root, index) = indices(base.as_ptr().addr())?;
    let mut leaf = ROOT[root].load(Ordering::Acquire);
    if leaf.is_null() {
        // SAFETY: `Leaf` has a nonzero size; all-zero bytes are a valid
        // array of null `AtomicPtr`s.
        let fresh = unsafe { System.alloc_zeroed(Layout::new::<Leaf>()) }.cast::<Leaf>();
        if fresh.is_null() {
            return None;
        }
        match ROOT[root].compare_exchange(
            ptr::null_mut(),
            fresh,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => leaf = fresh,
            Err(winner) => {
                // SAFETY: `fresh` was allocated above and never shared.
                unsafe { System.dealloc(fresh.cast(), Layout::new::<Leaf>()) };
                leaf = winner;
            }
        }
    }
    // SAFETY: leaves are never freed.
    unsafe { (*leaf)[index].store(entry(base), Ordering::Release) };
    Some(())
}

/// What the table stores for the arena at `base`: `locate` takes only the
/// provenance of an entry (and whether it is null), never its address. In
/// the AddressSanitizer build (`--cfg ouro_sanitize`, where arenas are heap
/// blocks, see `os`) the address is inverted so that LeakSanitizer does not
/// count the table as a reference to the arena: the table is an index, not
/// an owner, and an arena its heap lost must show up as a leak.
#[inline(always)]
fn entry(base: NonNull<u8>) -> *mut u8 {
    if cfg!(ouro_sanitize) {
        // Never null: `base` is aligned to `ARENA_SIZE`, so its low bits
        // are zero and become ones.
        base.as_ptr().map_addr(|addr| !addr)
    } else {
        base.as_ptr()
    }
}

/// Forgets the arena starting at `base` (registered before).
pub(crate) fn unregister(base: NonNull<u8>) {
    if let Some((root, index)) = indices(base.as_ptr().addr()) {
        let leaf = ROOT[root].load(Ordering::Acquire);
        debug_assert!(!leaf.is_null());
        if !leaf.is_null() {
            // SAFETY: leaves are never freed.
            unsafe { (*leaf)[index].store(ptr::null_mut(), Ordering::Release) };
        }
    }
}

/// `addr` as a pointer with the provenance of the arena that holds it, or
/// null if no registered arena holds it.
#[inline(always)]
pub(crate) fn locate(addr: usize) -> *mut u8 {
    let Some((root, index)) = indices(addr) else {
        return ptr::null_mut();
    };
    let leaf = ROOT[root].load(Ordering::Acquire);
    if leaf.is_null() {
        return ptr::null_mut();
    }
    // SAFETY: leaves are never freed.
    let base = unsafe { (*leaf)[index].load(Ordering::Acquire) };
    if base.is_null() {
        base
    } else {
        base.with_addr(addr)
    }
}
