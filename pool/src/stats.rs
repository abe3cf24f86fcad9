//! `PoolStats`: what `sys._debugmallocstats` reports, as a value.

use core::fmt;

use crate::size_class::{ARENA_SIZE, NUM_CLASSES, POOL_SIZE, class_size};

/// Statistics of one size class.
///
/// ```
/// # mod ouro { pub mod pool { pub use ::ouro_pool::*; } }
/// use ouro::pool::Pool;
/// use std::alloc::Layout;
///
/// let pool = Pool::new();
/// let layout = Layout::from_size_align(24, 8).unwrap(); // the 32-byte class
/// let block = pool.alloc(layout).unwrap();
/// let class = *pool.stats().class_for(24).unwrap();
/// assert_eq!((class.block_size, class.blocks_in_use, class.pools), (32, 1, 1));
/// // SAFETY: `block` came from `pool.alloc(layout)` and is freed once.
/// unsafe { pool.dealloc(block, layout) };
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClassStats {
    /// Block size of the class in bytes (16, 32, ... 512).
    pub block_size: usize,
    /// Pools serving the class.
    pub pools: usize,
    /// Blocks handed out and not freed.
    pub blocks_in_use: usize,
    /// Free blocks in the class's pools (including never-used space).
    pub blocks_free: usize,
}

/// A snapshot of an allocator's memory: per size class, per arena, and what
/// was passed through to the system allocator.
///
/// Returned by [`Pool::stats`](crate::Pool::stats) and
/// [`SyncPool::stats`](crate::SyncPool::stats); derived on demand by walking
/// the arenas, so it costs nothing on the allocation path. `Display` prints
/// a table like CPython's `sys._debugmallocstats()`.
///
/// # Examples
///
/// ```
/// # mod ouro { pub mod pool { pub use ::ouro_pool::*; } }
/// use std::alloc::Layout;
/// use ouro::pool::Pool;
///
/// let pool = Pool::new();
/// let layout = Layout::from_size_align(40, 8).unwrap();
/// let block = pool.alloc(layout).unwrap();
/// let stats = pool.stats();
/// assert_eq!(stats.class_for(40).unwrap().blocks_in_use, 1);
/// assert_eq!(stats.bytes_in_use, 48); // the 48-byte class
/// assert_eq!(stats.arenas, 1);
/// println!("{stats}");
/// // SAFETY: `block` came from `pool.alloc(layout)` and is not used again.
/// unsafe { pool.dealloc(block, layout) };
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolStats {
    /// One entry per size class, index `i` for blocks of `16 * (i + 1)` bytes.
    pub classes: [ClassStats; NUM_CLASSES],
    /// Arenas obtained from the OS and not returned yet.
    pub arenas: usize,
    /// Pools in those arenas that serve no size class.
    pub free_pools: usize,
    /// Bytes held from the OS for arenas (`arenas * ARENA_SIZE`).
    pub bytes_reserved: usize,
    /// Bytes in blocks handed out (block sizes, not requested sizes).
    pub bytes_in_use: usize,
    /// Live allocations passed to the system allocator (larger than 512
    /// bytes or aligned to more than 16).
    pub system_blocks: usize,
    /// Bytes of those allocations.
    pub system_bytes: usize,
}

impl PoolStats {
    /// No memory at all (computed at compile time, so `stats()` starts from a
    /// plain copy).
    const EMPTY: Self = {
        let mut classes = [ClassStats {
            block_size: 0,
            pools: 0,
            blocks_in_use: 0,
            blocks_free: 0,
        }; NUM_CLASSES];
        let mut class = 0;
        while class < NUM_CLASSES {
            classes[class].block_size = class_size(class);
            class += 1;
        }
        Self {
            classes,
            arenas: 0,
            free_pools: 0,
            bytes_reserved: 0,
            bytes_in_use: 0,
            system_blocks: 0,
            system_bytes: 0,
        }
    };
}

impl Default for PoolStats {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl PoolStats {
    /// The statistics of the class that serves requests of `size` bytes, or
    /// `None` when such requests go to the system allocator.
    pub fn class_for(&self, size: usize) -> Option<&ClassStats> {
        let class = size.checked_sub(1)? / 16;
        self.classes.get(class)
    }

    /// Blocks in use over all classes.
    pub fn blocks_in_use(&self) -> usize {
        self.classes.iter().map(|c| c.blocks_in_use).sum()
    }

    /// Free blocks over all classes' pools.
    pub fn blocks_free(&self) -> usize {
        self.classes.iter().map(|c| c.blocks_free).sum()
    }

    /// Pools serving some class.
    pub fn pools(&self) -> usize {
        self.classes.iter().map(|c| c.pools).sum()
    }
}

/// Writes `bytes` as a human-readable amount (no allocation).
struct Bytes(usize);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        if b >= 1 << 30 {
            write!(f, "{:.1} GiB", b as f64 / (1u64 << 30) as f64)
        } else if b >= 1 << 20 {
            write!(f, "{:.1} MiB", b as f64 / (1u64 << 20) as f64)
        } else if b >= 1 << 10 {
            write!(f, "{:.1} KiB", b as f64 / 1024.0)
        } else {
            write!(f, "{b} B")
        }
    }
}

impl fmt::Display for PoolStats {
    /// A table of the classes that have pools, then the totals.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "class   size   pools      in use        free   usage")?;
        for (class, c) in self.classes.iter().enumerate() {
            if c.pools == 0 {
                continue;
            }
            let total = c.blocks_in_use + c.blocks_free;
            let usage = if total == 0 {
                0.0
            } else {
                100.0 * c.blocks_in_use as f64 / total as f64
            };
            writeln!(
                f,
                "{class:>5} {:>6} {:>7} {:>11} {:>11} {usage:>6.1}%",
                c.block_size, c.pools, c.blocks_in_use, c.blocks_free
            )?;
        }
        writeln!(
            f,
            "total        {:>7} {:>11} {:>11}",
            self.pools(),
            self.blocks_in_use(),
            self.blocks_free()
        )?;
        writeln!(
            f,
            "arenas: {} of {} ({} reserved), free pools: {} of {}",
            self.arenas,
            Bytes(ARENA_SIZE),
            Bytes(self.bytes_reserved),
            self.free_pools,
            Bytes(POOL_SIZE)
        )?;
        write!(
            f,
            "in use: {} in blocks; system allocator: {} blocks, {}",
            Bytes(self.bytes_in_use),
            self.system_blocks,
            Bytes(self.system_bytes)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_lists_used_classes_and_totals() {
        let mut stats = PoolStats::default();
        stats.classes[3].pools = 1;
        stats.classes[3].blocks_in_use = 10;
        stats.classes[3].blocks_free = 330;
        stats.arenas = 1;
        stats.bytes_reserved = ARENA_SIZE;
        stats.bytes_in_use = 640;
        let text = stats.to_string();
        assert!(
            text.contains("    3     64       1          10         330"),
            "{text}"
        );
        assert!(
            text.contains("arenas: 1 of 1.0 MiB (1.0 MiB reserved)"),
            "{text}"
        );
        assert!(text.contains("in use: 640 B"), "{text}");
        assert_eq!(stats.class_for(64).unwrap().blocks_in_use, 10);
        assert!(stats.class_for(0).is_none() && stats.class_for(513).is_none());
    }
}
