//! The synchronisation primitives the process-wide heap is written against:
//! loom's model-checked types under `cfg(loom)`, std's otherwise.

#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, fence};
#[cfg(loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};

#[cfg(not(loom))]
pub(crate) use core::cell::UnsafeCell;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, fence};
#[cfg(not(loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

pub(crate) use core::sync::atomic::Ordering;

/// A lock [`lock`] takes: a `Mutex` or a [`SpinLock`].
pub(crate) trait Lock {
    type Guard<'a>
    where
        Self: 'a;
    fn take(&self) -> Self::Guard<'_>;
}

impl<T> Lock for Mutex<T> {
    type Guard<'a>
        = MutexGuard<'a, T>
    where
        T: 'a;
    #[inline]
    fn take(&self) -> MutexGuard<'_, T> {
        match self.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }
}

/// Locks `m`, ignoring poison: every critical section of the heap restores
/// its invariants before it can panic (none of them calls user code).
#[inline]
pub(crate) fn lock<L: Lock>(m: &L) -> L::Guard<'_> {
    m.take()
}

/// A spin lock around a `T`: the shard locks, which a mutator takes on
/// every allocation and every free of a tracked object, almost always
/// uncontended (each thread has a shard of its own). Taking it is one
/// compare-and-swap and releasing it one release store, where a `Mutex`'s
/// release is a second read-modify-write (it must learn whether a thread
/// sleeps on it). A waiter spins a little, then yields, then sleeps in
/// short naps: a collection holds a shard's lock while it takes that
/// shard's lists, which on a large heap is milliseconds.
///
/// The protocol is the pool's shard lock's (`ouro_pool`): acquire on
/// taking, release on giving back. Under loom it is built of loom's atomic
/// and cell, so the models check it with the heap.
pub(crate) struct SpinLock<T> {
    locked: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the lock makes accesses to `value` exclusive and ordered (the
// acquire that takes it synchronises with the release that gave it back),
// as `Mutex<T>`: `Sync` when `T: Send`.
unsafe impl<T: Send> Sync for SpinLock<T> {}
// SAFETY: owning the lock is owning the `T`.
unsafe impl<T: Send> Send for SpinLock<T> {}

/// Proof that this thread holds a [`SpinLock`]; gives it back when dropped
/// (also when unwinding: the critical sections restore their invariants
/// before anything in them can panic, as with the poison ignored above).
pub(crate) struct SpinGuard<'a, T> {
    lock: &'a SpinLock<T>,
    /// Under loom: the tracked access to the value, for as long as the
    /// guard lives (loom then reports any other access meanwhile).
    #[cfg(loom)]
    access: core::mem::ManuallyDrop<loom::cell::MutPtr<T>>,
    /// Not `Send`, as std's `MutexGuard`: the lock is given back on the
    /// thread that took it. `Sync` only as below.
    _not_send: core::marker::PhantomData<*const ()>,
}

// SAFETY: sharing the guard shares `&T` only (`Deref`), as sharing a `&T`
// does; `T: Sync` makes that sound, as for std's `MutexGuard`.
unsafe impl<T: Sync> Sync for SpinGuard<'_, T> {}

impl<T> SpinLock<T> {
    pub(crate) fn new(value: T) -> Self {
        SpinLock {
            locked: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    #[cold]
    #[inline(never)]
    fn take_contended(&self) {
        let mut waits = 0u32;
        loop {
            while self.locked.load(Ordering::Relaxed) {
                waits = waits.saturating_add(1);
                #[cfg(loom)]
                loom::thread::yield_now();
                #[cfg(not(loom))]
                if waits < 64 {
                    core::hint::spin_loop();
                } else if waits < 256 {
                    std::thread::yield_now();
                } else {
                    std::thread::sleep(std::time::Duration::from_micros(20));
                }
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
}

impl<T> Lock for SpinLock<T> {
    type Guard<'a>
        = SpinGuard<'a, T>
    where
        T: 'a;
    #[inline(always)]
    fn take(&self) -> SpinGuard<'_, T> {
        if self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.take_contended();
        }
        SpinGuard {
            lock: self,
            #[cfg(loom)]
            access: core::mem::ManuallyDrop::new(self.value.get_mut()),
            _not_send: core::marker::PhantomData,
        }
    }
}

impl<T> core::ops::Deref for SpinGuard<'_, T> {
    type Target = T;
    #[inline(always)]
    fn deref(&self) -> &T {
        #[cfg(loom)]
        // SAFETY: the guard proves this thread holds the lock: no other
        // access to the value until it is given back.
        return unsafe { loom::cell::MutPtr::deref(&*self.access) };
        #[cfg(not(loom))]
        // SAFETY: as above.
        return unsafe { &*self.lock.value.get() };
    }
}

impl<T> core::ops::DerefMut for SpinGuard<'_, T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut T {
        #[cfg(loom)]
        // SAFETY: the guard proves this thread holds the lock, and `&mut
        // self` that no other reference through this guard is alive.
        return unsafe { loom::cell::MutPtr::deref(&*self.access) };
        #[cfg(not(loom))]
        // SAFETY: as above.
        return unsafe { &mut *self.lock.value.get() };
    }
}

impl<T> SpinGuard<'_, T> {
    #[inline(always)]
    fn locked_store(&self) {
        self.lock.locked.store(false, Ordering::Release);
    }
}

impl<T> Drop for SpinGuard<'_, T> {
    #[inline(always)]
    fn drop(&mut self) {
        #[cfg(loom)]
        // SAFETY: dropped once, here; the access ends before the lock is
        // given back.
        unsafe {
            core::mem::ManuallyDrop::drop(&mut self.access)
        };
        self.locked_store();
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

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;

    /// The shard lock's protocol: two threads each make a non-atomic
    /// read-modify-write of the value under the lock; loom checks every
    /// interleaving for a data race (the guard's tracked access) and the
    /// sum shows no update was lost.
    #[test]
    fn spin_lock_excludes_and_publishes() {
        loom::model(|| {
            let l = loom::sync::Arc::new(SpinLock::new(0usize));
            let l2 = l.clone();
            let t = loom::thread::spawn(move || {
                let mut g = lock(&*l2);
                *g += 1;
            });
            {
                let mut g = lock(&*l);
                *g += 2;
            }
            t.join().unwrap();
            assert_eq!(*lock(&*l), 3);
        });
    }
}
