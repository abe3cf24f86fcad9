//! The atomics and cells the thread-safe half is written against.
//!
//! Under `cfg(loom)` these are loom's model-checked types; otherwise they are
//! std's (with a thin `UnsafeCell` wrapper that has loom's `with_mut` API), so
//! the algorithm in `sync_pool` is written once.

#[cfg(loom)]
pub(crate) use loom::{
    cell::UnsafeCell,
    sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering},
};

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};

/// `core::cell::UnsafeCell` with loom's closure-based access API.
#[cfg(not(loom))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    /// Wraps `value`.
    pub(crate) const fn new(value: T) -> Self {
        Self(core::cell::UnsafeCell::new(value))
    }

    /// Calls `f` with a raw pointer to the contents; the caller of the
    /// closure is responsible for exclusive access.
    #[inline(always)]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

/// Called in every iteration of a spin loop: a CPU hint normally, a yield to
/// the model checker under loom (loom requires spin loops to yield).
#[inline]
pub(crate) fn spin(iteration: u32) {
    #[cfg(loom)]
    {
        let _ = iteration;
        loom::thread::yield_now();
    }
    #[cfg(not(loom))]
    {
        if iteration < 64 {
            core::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}

#[cfg(not(loom))]
std::thread_local! {
    /// The shard this thread allocates from (`usize::MAX`: not assigned yet).
    /// A `Cell<usize>` has no destructor, so this needs no TLS destructor
    /// registration and never allocates: safe to use inside a global allocator.
    static SHARD_HINT: core::cell::Cell<usize> = const { core::cell::Cell::new(usize::MAX) };
}

#[cfg(loom)]
loom::thread_local! {
    static SHARD_HINT: core::cell::Cell<usize> = core::cell::Cell::new(usize::MAX);
}

/// The calling thread's shard hint, assigned on first use by `assign`.
#[inline]
pub(crate) fn shard_hint(assign: impl FnOnce() -> usize) -> usize {
    SHARD_HINT
        .try_with(|cell| {
            let hint = cell.get();
            if hint != usize::MAX {
                hint
            } else {
                let hint = assign();
                cell.set(hint);
                hint
            }
        })
        .unwrap_or(0)
}
