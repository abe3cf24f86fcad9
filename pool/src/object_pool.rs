//! `ObjectPool<T>`: reuse of whole objects.

use core::fmt;
use core::mem::ManuallyDrop;
use core::ops::{Deref, DerefMut};
use std::sync::{Mutex, MutexGuard, PoisonError};

type Create<T> = Box<dyn Fn() -> T + Send + Sync>;
type Reset<T> = Box<dyn Fn(&mut T) + Send + Sync>;

/// A pool of reusable objects: [`get`](ObjectPool::get) hands out an idle
/// object (or creates one), and the returned [`Pooled`] guard puts it back
/// when dropped — after running the reset hook, and only while fewer than
/// `capacity` objects are idle (otherwise the object is dropped).
///
/// Useful for buffers, scratch vectors and other objects whose allocation
/// is worth keeping. The pool is `Sync` when `T: Send`, so threads may share
/// it.
///
/// # Examples
///
/// ```
/// # mod ouro { pub mod pool { pub use ::ouro_pool::*; } }
/// use ouro::pool::ObjectPool;
///
/// let buffers = ObjectPool::new(4, || Vec::<u8>::with_capacity(1024)).with_reset(Vec::clear);
/// {
///     let mut buf = buffers.get();
///     buf.extend_from_slice(b"hello");
///     assert_eq!(&buf[..], b"hello");
/// } // `buf` is cleared and goes back to the pool here
/// assert_eq!(buffers.idle(), 1);
/// let buf = buffers.get();
/// assert!(buf.is_empty() && buf.capacity() >= 1024);
/// ```
pub struct ObjectPool<T> {
    idle: Mutex<Vec<T>>,
    capacity: usize,
    create: Create<T>,
    reset: Option<Reset<T>>,
}

impl<T> ObjectPool<T> {
    /// A pool keeping at most `capacity` idle objects, creating new ones with
    /// `create`.
    pub fn new(capacity: usize, create: impl Fn() -> T + Send + Sync + 'static) -> Self {
        Self {
            idle: Mutex::new(Vec::new()),
            capacity,
            create: Box::new(create),
            reset: None,
        }
    }

    /// Sets the hook run on every object returned to the pool (for example
    /// `Vec::clear`), so `get` always sees a clean object.
    pub fn with_reset(mut self, reset: impl Fn(&mut T) + Send + Sync + 'static) -> Self {
        self.reset = Some(Box::new(reset));
        self
    }

    fn idle_list(&self) -> MutexGuard<'_, Vec<T>> {
        // A panic while holding the lock cannot leave the Vec inconsistent.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An idle object, or a new one if none is idle.
    pub fn get(&self) -> Pooled<'_, T> {
        let value = self.idle_list().pop().unwrap_or_else(|| (self.create)());
        Pooled {
            pool: self,
            value: ManuallyDrop::new(value),
        }
    }

    /// Adds `value` to the idle objects (after the reset hook), or drops it
    /// when `capacity` objects are idle already.
    pub fn put(&self, mut value: T) {
        if let Some(reset) = &self.reset {
            reset(&mut value);
        }
        let mut idle = self.idle_list();
        if idle.len() < self.capacity {
            idle.push(value);
        } else {
            drop(idle);
            drop(value);
        }
    }

    /// Number of idle objects.
    pub fn idle(&self) -> usize {
        self.idle_list().len()
    }

    /// The most idle objects kept.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

impl<T> fmt::Debug for ObjectPool<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectPool")
            .field("idle", &self.idle())
            .field("capacity", &self.capacity)
            .field("reset", &self.reset.is_some())
            .finish_non_exhaustive()
    }
}

/// An object taken from an [`ObjectPool`]; dereferences to it and gives it
/// back to the pool on drop.
///
/// ```
/// # mod ouro { pub mod pool { pub use ::ouro_pool::*; } }
/// use ouro::pool::{ObjectPool, Pooled};
///
/// let strings = ObjectPool::new(2, String::new);
/// let mut s = strings.get();
/// s.push_str("kept");
/// let owned: String = Pooled::into_inner(s); // taken out of the pool for good
/// assert_eq!(owned, "kept");
/// assert_eq!(strings.idle(), 0);
/// ```
pub struct Pooled<'a, T> {
    pool: &'a ObjectPool<T>,
    /// Taken out only in `drop` and `into_inner`.
    value: ManuallyDrop<T>,
}

impl<T> Pooled<'_, T> {
    /// Keeps the object instead of returning it to the pool.
    pub fn into_inner(this: Self) -> T {
        let mut this = ManuallyDrop::new(this);
        // SAFETY: `this` is never dropped, so `value` is taken exactly once.
        unsafe { ManuallyDrop::take(&mut this.value) }
    }
}

impl<T> Deref for Pooled<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> DerefMut for Pooled<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

impl<T> Drop for Pooled<'_, T> {
    fn drop(&mut self) {
        // SAFETY: `drop` runs once and `value` is not used afterwards.
        let value = unsafe { ManuallyDrop::take(&mut self.value) };
        self.pool.put(value);
    }
}

impl<T: fmt::Debug> fmt::Debug for Pooled<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.value, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn capacity_bounds_idle_objects() {
        static CREATED: AtomicUsize = AtomicUsize::new(0);
        let pool = ObjectPool::new(2, || {
            CREATED.fetch_add(1, Ordering::Relaxed);
            String::from("fresh")
        })
        .with_reset(|s: &mut String| s.clear());
        let guards: Vec<_> = (0..3).map(|_| pool.get()).collect();
        assert_eq!(CREATED.load(Ordering::Relaxed), 3);
        drop(guards);
        assert_eq!(pool.idle(), 2);
        let mut a = pool.get();
        assert_eq!(*a, "", "reset hook ran");
        a.push_str("kept");
        let kept = Pooled::into_inner(a);
        assert_eq!(kept, "kept");
        assert_eq!(pool.idle(), 1);
        assert_eq!(CREATED.load(Ordering::Relaxed), 3);
        assert_eq!(pool.capacity(), 2);
    }

    #[test]
    fn shared_between_threads() {
        let pool = ObjectPool::new(8, || vec![0u8; 16]);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..if cfg!(miri) { 5 } else { 1000 } {
                        let mut v = pool.get();
                        v[0] = v[0].wrapping_add(1);
                    }
                });
            }
        });
        assert!(pool.idle() <= 8);
    }
}
