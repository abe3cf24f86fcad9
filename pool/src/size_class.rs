//! Size classes and the geometry of arenas and pools.

use core::alloc::Layout;

/// Alignment of every pool block, and the spacing of the size classes.
pub const ALIGNMENT: usize = 16;

/// The largest request served from the pools; larger ones go to the system.
pub const MAX_SMALL_SIZE: usize = 512;

/// Number of size classes: 16, 32, 48, ... 512 bytes.
pub const NUM_CLASSES: usize = MAX_SMALL_SIZE / ALIGNMENT;

/// Size of a pool: a run of blocks of one size class behind a small header.
pub const POOL_SIZE: usize = 16 * 1024;

/// Size of an arena: the unit of memory obtained from and returned to the OS.
pub const ARENA_SIZE: usize = 1024 * 1024;

/// Pools per arena.
pub(crate) const POOLS_PER_ARENA: usize = ARENA_SIZE / POOL_SIZE;

/// Mask of the offset of an address inside its pool.
pub(crate) const POOL_MASK: usize = POOL_SIZE - 1;

const _: () = assert!(POOL_SIZE.is_power_of_two() && ARENA_SIZE.is_multiple_of(POOL_SIZE));
const _: () = assert!(MAX_SMALL_SIZE.is_multiple_of(ALIGNMENT));

/// The size class serving `layout`, or `None` when the system allocator
/// must serve it (size zero, size over 512, alignment over 16).
#[inline(always)]
pub(crate) fn class_of(layout: Layout) -> Option<usize> {
    let size = layout.size();
    if size.wrapping_sub(1) < MAX_SMALL_SIZE && layout.align() <= ALIGNMENT {
        Some((size - 1) / ALIGNMENT)
    } else {
        None
    }
}

/// Block size of size class `class`.
#[inline(always)]
pub(crate) const fn class_size(class: usize) -> usize {
    (class + 1) * ALIGNMENT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_cover_one_to_512() {
        let l = |size, align| Layout::from_size_align(size, align).unwrap();
        assert_eq!(class_of(l(0, 1)), None);
        assert_eq!(class_of(l(1, 1)), Some(0));
        assert_eq!(class_of(l(16, 16)), Some(0));
        assert_eq!(class_of(l(17, 8)), Some(1));
        assert_eq!(class_of(l(512, 1)), Some(NUM_CLASSES - 1));
        assert_eq!(class_of(l(513, 1)), None);
        assert_eq!(class_of(l(64, 32)), None);
        for size in 1..=MAX_SMALL_SIZE {
            let class = class_of(l(size, 1)).unwrap();
            assert!(class_size(class) >= size && class_size(class) - size < ALIGNMENT);
        }
    }
}
