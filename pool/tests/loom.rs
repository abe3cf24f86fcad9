//! Model checks of every atomic protocol of `SyncPool`: the shard spin lock,
//! the thread-to-shard hint, and the remote-free stack (Treiber push, swap
//! drain). Run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p ouro-pool --release --test loom`.
//!
//! Under loom a `SyncPool` has 2 shards, so with three threads two of them
//! share a shard (lock contention) and frees cross shards (remote stack).
//! Heap accesses go through loom's `UnsafeCell`, so a broken lock shows up as
//! a detected data race.
#![cfg(loom)]

use std::alloc::Layout;
use std::ptr::NonNull;

use loom::sync::Arc;
use loom::thread;
use ouro_pool::SyncPool;

fn layout(size: usize) -> Layout {
    Layout::from_size_align(size, 8).unwrap()
}

/// A block address that can cross threads.
#[derive(Clone, Copy)]
struct Block(usize);

impl Block {
    fn alloc(pool: &SyncPool, size: usize, fill: u8) -> Self {
        let ptr = pool.alloc(layout(size)).expect("out of memory");
        // SAFETY: fresh block of `size` bytes.
        unsafe { ptr.as_ptr().write_bytes(fill, size) };
        Block(ptr.as_ptr() as usize)
    }

    /// # Safety
    /// The block is live, from `pool` with `size`, and this is its last use.
    unsafe fn free(self, pool: &SyncPool, size: usize, fill: u8) {
        let ptr = NonNull::new(self.0 as *mut u8).unwrap();
        // SAFETY: by the caller.
        unsafe {
            assert_eq!(*ptr.as_ptr().add(size - 1), fill, "block contents changed");
            pool.dealloc(ptr, layout(size));
        }
    }
}

/// Two threads allocate and free on their own shards at the same time.
#[test]
fn alloc_and_free_on_two_threads() {
    loom::model(|| {
        let pool = Arc::new(SyncPool::new());
        let other = Arc::clone(&pool);
        let t = thread::spawn(move || {
            let b = Block::alloc(&other, 32, 1);
            // SAFETY: allocated just above, freed once.
            unsafe { b.free(&other, 32, 1) };
        });
        let a = Block::alloc(&pool, 32, 2);
        // SAFETY: allocated just above, freed once.
        unsafe { a.free(&pool, 32, 2) };
        t.join().unwrap();
        assert_eq!(pool.stats().blocks_in_use(), 0);
    });
}

/// Blocks are freed on another thread (remote pushes) while a thread of
/// the owning shard allocates and runs out of free blocks (a drain): no
/// block is lost whichever way the pushes and the drain interleave.
#[test]
fn remote_free_while_owner_drains() {
    loom::model(|| {
        let pool = Arc::new(SyncPool::new());
        let a = Block::alloc(&pool, 48, 3); // main thread: shard 0
        let b = Block::alloc(&pool, 48, 4);
        let p1 = Arc::clone(&pool);
        let t1 = thread::spawn(move || {
            // Shard 1: two remote pushes onto shard 0's stack.
            // SAFETY: the main thread gave `a` and `b` up to this thread.
            unsafe {
                a.free(&p1, 48, 3);
                b.free(&p1, 48, 4);
            }
        });
        let p2 = Arc::clone(&pool);
        let t2 = thread::spawn(move || {
            // Shard 0. A fresh class: its list is empty, so this drains
            // shard 0's stack, before, between or after the pushes.
            Block::alloc(&p2, 64, 5)
        });
        t1.join().unwrap();
        let c = t2.join().unwrap();
        assert_eq!(
            pool.stats().blocks_in_use(),
            1,
            "a remotely freed block was lost"
        );
        // SAFETY: allocated above, freed once.
        unsafe { c.free(&pool, 64, 5) };
    });
}

/// Two threads push on the same remote stack concurrently, then a third
/// thread on the owning shard gets both blocks back.
#[test]
fn two_remote_pushes() {
    loom::model(|| {
        let pool = Arc::new(SyncPool::new());
        let _ = Block::alloc(&pool, 512, 0); // main thread: shard 0 (kept live)
        let p1 = Arc::clone(&pool);
        // Thread 1 is on shard 1: its blocks belong to shard 1.
        let (a, b) = thread::spawn(move || (Block::alloc(&p1, 16, 6), Block::alloc(&p1, 16, 7)))
            .join()
            .unwrap();
        let p2 = Arc::clone(&pool);
        let t2 = thread::spawn(move || {
            // Shard 0: a remote push onto shard 1's stack.
            // SAFETY: handed over by thread 1, freed once.
            unsafe { a.free(&p2, 16, 6) };
        });
        // Shard 0 as well: a second, concurrent push.
        // SAFETY: handed over by thread 1, freed once.
        unsafe { b.free(&pool, 16, 7) };
        t2.join().unwrap();
        // `stats` reclaims the remote stacks: both blocks are free again...
        assert_eq!(pool.stats().blocks_in_use(), 1);
        let p3 = Arc::clone(&pool);
        // ...and on top of shard 1's free list: thread 3 (shard 1) gets them.
        let (c, d) = thread::spawn(move || (Block::alloc(&p3, 16, 8), Block::alloc(&p3, 16, 9)))
            .join()
            .unwrap();
        let mut got = [c.0, d.0];
        let mut want = [a.0, b.0];
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want, "blocks lost from the remote stack");
    });
}

/// Three threads on two shards: two of them share a shard and contend for
/// its lock while the third frees into it remotely.
#[test]
fn shared_shard_lock() {
    loom::model(|| {
        let pool = Arc::new(SyncPool::new());
        let a = Block::alloc(&pool, 32, 10); // main: shard 0
        let p1 = Arc::clone(&pool);
        let t1 = thread::spawn(move || {
            // shard 1: remote free into shard 0
            // SAFETY: handed over by the main thread, freed once.
            unsafe { a.free(&p1, 32, 10) };
        });
        let p2 = Arc::clone(&pool);
        let t2 = thread::spawn(move || {
            // shard 0, shared with main
            let b = Block::alloc(&p2, 32, 11);
            // SAFETY: allocated above, freed once.
            unsafe { b.free(&p2, 32, 11) };
        });
        let c = Block::alloc(&pool, 32, 12);
        // SAFETY: allocated above, freed once.
        unsafe { c.free(&pool, 32, 12) };
        t1.join().unwrap();
        t2.join().unwrap();
        assert_eq!(pool.stats().blocks_in_use(), 0);
    });
}

/// `trim` and `stats` (which lock every shard in turn and drain every
/// stack) run while another thread allocates and frees remotely.
#[test]
fn trim_and_stats_race_with_allocation() {
    loom::model(|| {
        let pool = Arc::new(SyncPool::new());
        let a = Block::alloc(&pool, 80, 13); // main thread: shard 0
        let p1 = Arc::clone(&pool);
        let t1 = thread::spawn(move || {
            // Shard 1: allocate on its own shard, free `a` remotely.
            let b = Block::alloc(&p1, 80, 14);
            // SAFETY: `a` was handed over by the main thread; `b` is ours.
            unsafe {
                a.free(&p1, 80, 13);
                b.free(&p1, 80, 14);
            }
        });
        pool.trim();
        let in_use = pool.stats().blocks_in_use();
        assert!(in_use <= 2, "{in_use} blocks in use");
        t1.join().unwrap();
        assert_eq!(pool.stats().blocks_in_use(), 0);
        pool.trim();
        assert_eq!(pool.stats().arenas, 0);
    });
}
