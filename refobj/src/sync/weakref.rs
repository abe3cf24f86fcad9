//! Python's `weakref` module for the process-wide heap: finalizers that run
//! when an object dies, weak references with a callback, and the weak
//! containers [`WeakValueMap`], [`WeakKeyMap`] and [`WeakSet`].
//!
//! Everything here rests on *death hooks*: closures that run once when an
//! object's value dies — its last handle is dropped, the cycle collector
//! frees it, or `Gc::try_unwrap` takes the value out. They run where the
//! value dies, just before it is dropped (as CPython calls weak-reference
//! callbacks before it clears the object), with `Weak::upgrade` on the
//! object already failing; a hook cannot reach the dying value. That may be
//! on any thread: the one that drops the last handle, the one collecting,
//! or the background thread that drops an automatic collection's garbage,
//! so finalizers and callbacks are `Send`. They never run under the
//! collector's lock. A panic in
//! a hook does not stop the other hooks nor the drop of the value; it is
//! resumed afterwards, like a panic of the value's `Drop` (from a
//! collection: by `gc::collect`).
//!
//! Objects that have no hook pay nothing for the feature but one test of a
//! header bit where their value dies: the hooks wait in a side table of the
//! heap, keyed by object. A finalizer added from a finalizer of the
//! collection that is freeing its object (on the collecting thread) cannot
//! be registered: it starts detached. What a hook captures is held strongly until it
//! runs or is removed, so a hook that captures a handle to its own object
//! keeps that object alive forever (as in Python). Objects kept by
//! `DebugFlags::SAVEALL` are not dead: their hooks wait.
//!
//! ```
//! # extern crate ouro_refobj as ouro;
//! use ouro::sync::{Gc, weakref};
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//!
//! let log = Arc::new(AtomicUsize::new(0));
//! let obj = Gc::new(String::from("resource"));
//! let seen = log.clone();
//! let f = weakref::finalize(&obj, move || {
//!     seen.fetch_add(1, Ordering::SeqCst);
//! });
//! assert!(f.alive());
//! std::thread::spawn(move || drop(obj)).join().unwrap(); // the last handle
//! assert_eq!(log.load(Ordering::SeqCst), 1);
//! assert!(!f.alive());
//! ```

use core::borrow::Borrow;
use core::fmt;
use core::hash::Hash;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use ouro_cyclegc::HookId;
use ouro_cyclegc::sync::raw;

use super::{Gc, Weak};

/// Locks a mutex of this module: none is held while user code runs, so a
/// poisoned one is consistent.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A hook that is registered: the address of its object and its id.
#[derive(Clone, Copy, Debug)]
struct Registered {
    addr: usize,
    id: HookId,
}

impl Registered {
    /// Adds `f` as a death hook of `obj`; `None` if the value is not alive.
    fn add<T>(obj: &Gc<T>, f: Box<dyn FnOnce() + Send>) -> Option<Registered> {
        let o = Gc::header_ptr(obj);
        // SAFETY: `obj` is a strong handle to the object.
        let id = unsafe { raw::add_death_hook(o, f) }.ok()?;
        Some(Registered {
            addr: o.as_ptr().addr(),
            id,
        })
    }

    /// Removes the hook if it has not run; drops it (user code) after the
    /// table is let go of. Returns whether it was still registered.
    fn remove(self) -> bool {
        let f = raw::remove_death_hook(self.addr, self.id);
        let found = f.is_some();
        drop(f);
        found
    }
}

/// Removes its hook (if any, and if it has not run) when dropped.
struct HookGuard(Option<Registered>);

impl Drop for HookGuard {
    fn drop(&mut self) {
        if let Some(r) = self.0.take() {
            r.remove();
        }
    }
}

/// The state a [`Finalizer`] shares with its hook.
struct FinalizerState {
    f: Mutex<Option<Box<dyn FnOnce() + Send>>>,
    hook: Mutex<Option<Registered>>,
}

/// A finalizer registered with [`finalize`] (Python's `weakref.finalize`).
///
/// Its function runs at most once: when the object dies, or earlier through
/// [`call`](Finalizer::call), and never after [`detach`](Finalizer::detach).
/// Dropping the `Finalizer` does not cancel it (as in Python, the
/// registration outlives the finalizer object); clones share the state.
///
/// ```
/// # extern crate ouro_refobj as ouro;
/// use ouro::sync::{Gc, weakref};
///
/// let obj = Gc::new(5);
/// let f = weakref::finalize(&obj, || println!("gone"));
/// assert!(f.detach(), "it was pending");
/// assert!(!f.alive());
/// drop(obj); // prints nothing: detached
/// ```
#[derive(Clone)]
pub struct Finalizer {
    state: Arc<FinalizerState>,
}

impl Finalizer {
    /// Whether the function is still pending: not run, not detached.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::sync::{Gc, weakref};
    /// let obj = Gc::new(1);
    /// let f = weakref::finalize(&obj, || {});
    /// assert!(f.alive());
    /// drop(obj);
    /// assert!(!f.alive());
    /// ```
    pub fn alive(&self) -> bool {
        lock(&self.state.f).is_some()
    }

    /// Cancels the finalizer: its function will never run (and is dropped
    /// now). Returns whether it was still pending (Python's `detach`
    /// returns `None` when it was not).
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::sync::{Gc, weakref};
    /// let obj = Gc::new(1);
    /// let f = weakref::finalize(&obj, || panic!("never runs"));
    /// assert!(f.detach());
    /// assert!(!f.detach(), "only once");
    /// drop(obj);
    /// ```
    pub fn detach(&self) -> bool {
        let f = lock(&self.state.f).take();
        let hook = lock(&self.state.hook).take();
        if let Some(r) = hook {
            r.remove();
        }
        let pending = f.is_some();
        drop(f);
        pending
    }

    /// Runs the function now if it is still pending, and returns whether it
    /// ran; it will not run again when the object dies (Python's
    /// `finalizer()`).
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::sync::{Gc, weakref};
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    ///
    /// let runs = Arc::new(AtomicUsize::new(0));
    /// let obj = Gc::new(1);
    /// let r = runs.clone();
    /// let f = weakref::finalize(&obj, move || {
    ///     r.fetch_add(1, Ordering::SeqCst);
    /// });
    /// assert!(f.call());
    /// assert!(!f.call(), "at most once");
    /// drop(obj);
    /// assert_eq!(runs.load(Ordering::SeqCst), 1);
    /// ```
    pub fn call(&self) -> bool {
        let f = lock(&self.state.f).take();
        let hook = lock(&self.state.hook).take();
        if let Some(r) = hook {
            r.remove();
        }
        match f {
            Some(f) => {
                f();
                true
            }
            None => false,
        }
    }
}

impl fmt::Debug for Finalizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Finalizer")
            .field("alive", &self.alive())
            .finish()
    }
}

/// Registers `f` to run once when `obj`'s value dies: when its last handle
/// is dropped, when the cycle collector frees it, or when
/// `Gc::try_unwrap` takes the value out (Python's `weakref.finalize`), on
/// whichever thread that happens.
///
/// `f` runs just before the value is dropped, when `Weak::upgrade` on the
/// object already fails. It must not capture a handle to `obj` itself: that
/// handle would keep the object alive for ever. If the value is already
/// dead (a handle that a `Drop` kept from collected garbage), or if this
/// thread is collecting it right now (from a finalizer of its garbage), the
/// finalizer starts detached and `f` never runs.
///
/// # Examples
///
/// A finalizer runs from a collection of cyclic garbage, as well as from
/// a free by count:
///
/// ```
/// # extern crate ouro_refobj as ouro;
/// # use ouro_macros::Trace;
/// use ouro::Trace;
/// use ouro::sync::{Gc, gc, weakref};
/// use std::sync::Mutex;
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
///
/// #[derive(Trace)]
/// struct Node { next: Mutex<Option<Gc<Node>>> }
///
/// let a = Gc::new(Node { next: Mutex::new(None) });
/// *a.next.lock().unwrap() = Some(a.clone()); // a cycle
/// let done = Arc::new(AtomicBool::new(false));
/// let d = done.clone();
/// let f = weakref::finalize(&a, move || d.store(true, Ordering::SeqCst));
/// drop(a);
/// assert!(!done.load(Ordering::SeqCst), "the cycle keeps it alive");
/// gc::collect(); // returns once the garbage is dropped
/// assert!(done.load(Ordering::SeqCst) && !f.alive());
/// ```
pub fn finalize<T>(obj: &Gc<T>, f: impl FnOnce() + Send + 'static) -> Finalizer {
    let state = Arc::new(FinalizerState {
        f: Mutex::new(Some(Box::new(f))),
        hook: Mutex::new(None),
    });
    let shared = state.clone();
    // Held across the registration, so that the hook (which may run on
    // another thread as soon as it is registered) finds it filled in.
    let mut slot = lock(&state.hook);
    let hook = Registered::add(
        obj,
        Box::new(move || {
            lock(&shared.hook).take();
            let f = lock(&shared.f).take();
            if let Some(f) = f {
                f();
            }
        }),
    );
    *slot = hook;
    drop(slot);
    if hook.is_none() {
        let f = lock(&state.f).take();
        drop(f);
    }
    Finalizer { state }
}

/// A weak reference with a callback (Python's `weakref.ref(obj, callback)`),
/// made by [`ref_with_callback`].
///
/// The callback runs once when the referent dies, with a [`Weak`] to it
/// (which no longer upgrades; use it to tell which referent died). If the
/// `WeakRef` is dropped first, the callback never runs (as in Python).
pub struct WeakRef<T> {
    weak: Weak<T>,
    hook: Option<Registered>,
}

impl<T> WeakRef<T> {
    /// A strong handle if the referent is still alive.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::sync::{Gc, weakref};
    /// let obj = Gc::new(3);
    /// let r = weakref::ref_with_callback(&obj, |_| {});
    /// assert_eq!(*r.upgrade().unwrap(), 3);
    /// ```
    pub fn upgrade(&self) -> Option<Gc<T>> {
        self.weak.upgrade()
    }

    /// The plain weak handle inside.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::sync::{Gc, weakref};
    /// let obj = Gc::new(3);
    /// let r = weakref::ref_with_callback(&obj, |_| {});
    /// assert!(r.weak().ptr_eq(&Gc::downgrade(&obj)));
    /// ```
    pub fn weak(&self) -> &Weak<T> {
        &self.weak
    }
}

impl<T> Drop for WeakRef<T> {
    fn drop(&mut self) {
        if let Some(r) = self.hook.take() {
            r.remove();
        }
    }
}

impl<T> fmt::Debug for WeakRef<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeakRef")
            .field("alive", &(self.weak.strong_count() > 0))
            .finish()
    }
}

/// A weak reference to `obj` whose `callback` runs once when `obj`'s value
/// dies, unless the [`WeakRef`] was dropped before (Python's
/// `weakref.ref(obj, callback)`). The callback gets a `Weak` to the dead
/// object. If the value is already dead, the callback never runs.
///
/// # Examples
///
/// ```
/// # extern crate ouro_refobj as ouro;
/// use ouro::sync::{Gc, weakref};
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicBool, Ordering};
///
/// let died = Arc::new(AtomicBool::new(false));
/// let obj = Gc::new(String::from("x"));
/// let d = died.clone();
/// let r = weakref::ref_with_callback(&obj, move |w| {
///     assert!(w.upgrade().is_none(), "already dead");
///     d.store(true, Ordering::SeqCst);
/// });
/// drop(obj);
/// assert!(died.load(Ordering::SeqCst));
/// assert!(r.upgrade().is_none());
///
/// // Dropped before its referent: no callback.
/// let obj = Gc::new(String::from("y"));
/// let r = weakref::ref_with_callback(&obj, |_| panic!("never runs"));
/// drop(r);
/// drop(obj);
/// ```
pub fn ref_with_callback<T: Send + Sync + 'static>(
    obj: &Gc<T>,
    callback: impl FnOnce(&Weak<T>) + Send + 'static,
) -> WeakRef<T> {
    let weak = Gc::downgrade(obj);
    let w = weak.clone();
    let hook = Registered::add(obj, Box::new(move || callback(&w)));
    WeakRef { weak, hook }
}

/// The cell a death queue lives in.
type Slot<K> = Mutex<Vec<(K, u64)>>;

/// Keys (with the number of the entry they were queued for) whose values
/// died since the last purge: the death hooks push here, the map purges.
type Queue<K> = Arc<Slot<K>>;

fn new_queue<K>() -> Queue<K> {
    Arc::new(Mutex::new(Vec::new()))
}

/// The contents of a death queue.
fn queue<K>(q: &Slot<K>) -> MutexGuard<'_, Vec<(K, u64)>> {
    lock(q)
}

/// The address that identifies an object while a weak handle keeps its
/// header allocated.
fn addr_of<T>(g: &Gc<T>) -> usize {
    Gc::header_ptr(g).as_ptr().addr()
}

crate::weakref_maps::weak_collections! {
    root: "ouro::sync::",
    unsized: [],
    obj: [Send + Sync + 'static],
    send: [Send +],
}
