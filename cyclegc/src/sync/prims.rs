//! The synchronisation primitives the process-wide heap is written against:
//! loom's model-checked types under `cfg(loom)`, std's otherwise.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, fence};
#[cfg(loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, fence};
#[cfg(not(loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

pub(crate) use core::sync::atomic::Ordering;

/// Locks `m`, ignoring poison: every critical section of the heap restores
/// its invariants before it can panic (none of them calls user code).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// Tries to lock `m`, ignoring poison.
pub(crate) fn try_lock<T>(m: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
    match m.try_lock() {
        Ok(g) => Some(g),
        Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => None,
    }
}

/// One step of a wait loop: yields to the model checker under loom, to the
/// OS scheduler otherwise.
pub(crate) fn wait_a_little() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::thread::yield_now();
}

macro_rules! thread_local_cell {
    ($(#[$m:meta])* static $name:ident: $t:ty = $init:expr;) => {
        #[cfg(not(loom))]
        std::thread_local! {
            $(#[$m])* static $name: core::cell::Cell<$t> = const { core::cell::Cell::new($init) };
        }
        #[cfg(loom)]
        loom::thread_local! {
            $(#[$m])* static $name: core::cell::Cell<$t> = core::cell::Cell::new($init);
        }
    };
}
pub(crate) use thread_local_cell;

/// Asks the CPU to start loading the cache line at `p` into its caches: a
/// hint with no effect on memory, which never faults (for any address). The
/// collector's passes over its table call it a few objects ahead, so that
/// the misses of objects not touched since the last pass overlap.
#[inline(always)]
pub(crate) fn prefetch<T>(p: *const T) {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse", not(miri), not(loom)))]
    // SAFETY: `prefetcht0` has no architectural effect and cannot fault,
    // whatever the address; the `sse` target feature it needs is enabled
    // (the `cfg`).
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    };
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse", not(miri), not(loom))))]
    let _ = p;
}
