//! ouro-pool: a pymalloc-style small-object allocator.
//!
//! This crate will hold `Pool`, `SyncPool`, `PoolStats`, `FreeList<T>` and
//! `ObjectPool<T>` (see DESIGN.md, "ouro-pool").
