//! ouro-pool: a pymalloc-style small-object allocator.
//!
//! Small requests (1 to 512 bytes, aligned to at most 16) are served from 32
//! size classes spaced 16 bytes apart; each class takes 16 KiB pools out of
//! 1 MiB arenas obtained from the OS, and allocation and free are O(1) pops
//! and pushes on intrusive free lists. Everything else goes to the system
//! allocator transparently.
//!
//! This is CPython's `obmalloc` (arenas > pools > blocks, `usedpools`,
//! `nfp2lasta`) brought to Rust. Unlike the folklore about Python, memory
//! goes back: new pools come from the fullest arena, and arenas whose pools
//! are all free are returned to the OS beyond a few spares (no more than the
//! arenas in use).
//!
//! * [`Pool`]: single-threaded (`Send`, `!Sync`), `const fn new()`.
//! * [`SyncPool`]: thread-safe, per-thread shards, frees from any thread,
//!   implements [`GlobalAlloc`](core::alloc::GlobalAlloc).
//! * [`PoolStats`]: per size class blocks in use and free, pools, arenas and
//!   bytes (`sys._debugmallocstats`), printable as a table.
//! * [`FreeList`]: a typed free list of boxes; [`ObjectPool`]: reusable
//!   objects with a capacity and a reset hook.
//!
//! # Examples
//!
//! ```
//! use std::alloc::Layout;
//! use ouro_pool::Pool;
//!
//! let pool = Pool::new();
//! let layout = Layout::new::<[u64; 4]>();
//! let blocks: Vec<_> = (0..1000).map(|_| pool.alloc(layout).unwrap()).collect();
//! println!("{}", pool.stats()); // one 32-byte class, 1000 blocks in use
//! assert_eq!(pool.stats().blocks_in_use(), 1000);
//! for block in blocks {
//!     // SAFETY: each block came from `pool.alloc(layout)` and is freed once.
//!     unsafe { pool.dealloc(block, layout) };
//! }
//! pool.trim();
//! assert_eq!(pool.stats().arenas, 0); // back to the OS
//! ```
//!
//! The whole program can run on it:
//!
//! ```
//! #[global_allocator]
//! static ALLOC: ouro_pool::SyncPool = ouro_pool::SyncPool::new();
//! # fn main() { let _ = vec![Box::new(1)]; }
//! ```

mod arena_map;
mod free_list;
mod heap;
mod object_pool;
mod os;
mod pool;
mod size_class;
mod stats;
mod sync;
mod sync_pool;

#[cfg(all(test, not(loom)))]
mod model_tests;

pub use free_list::FreeList;
pub use object_pool::{ObjectPool, Pooled};
pub use pool::Pool;
pub use size_class::{ALIGNMENT, ARENA_SIZE, MAX_SMALL_SIZE, NUM_CLASSES, POOL_SIZE};
pub use stats::{ClassStats, PoolStats};
pub use sync_pool::SyncPool;
