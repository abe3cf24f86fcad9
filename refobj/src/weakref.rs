//! Python's `weakref` module for the thread-local heap: finalizers that run
//! when an object dies, weak references with a callback, and the weak
//! containers [`WeakValueMap`], [`WeakKeyMap`] and [`WeakSet`].
//!
//! Everything here rests on *death hooks*: closures that run once when an
//! object's value dies — its last handle is dropped, the cycle collector
//! frees it, or `Gc::try_unwrap` takes the value out. They run where the
//! value dies, just before it is dropped (as CPython calls weak-reference
//! callbacks before it clears the object), with `Weak::upgrade` on the
//! object already failing; a hook cannot reach the dying value. A panic in
//! a hook does not stop the other hooks nor the drop of the value; it is
//! resumed afterwards, like a panic of the value's `Drop` (from a
//! collection: by `gc::collect`).
//!
//! Objects that have no hook pay nothing for the feature but one test of a
//! header bit where their value dies: the hooks wait in a side table of the
//! heap, keyed by object. What a hook captures is held strongly until it
//! runs or is removed, so a hook that captures a handle to its own object
//! keeps that object alive forever (as in Python). Objects kept by
//! `DebugFlags::SAVEALL` are not dead: their hooks wait.
//!
//! ```
//! # extern crate ouro_refobj as ouro;
//! use ouro::{Gc, weakref};
//! use std::cell::Cell;
//! use std::rc::Rc;
//!
//! let log = Rc::new(Cell::new(0));
//! let obj = Gc::new(String::from("resource"));
//! let seen = log.clone();
//! let f = weakref::finalize(&obj, move || seen.set(seen.get() + 1));
//! assert!(f.alive());
//! drop(obj); // the last handle: the finalizer runs now
//! assert_eq!(log.get(), 1);
//! assert!(!f.alive());
//! ```

use core::borrow::Borrow;
use core::cell::{Cell, RefCell, RefMut};
use core::fmt;
use core::hash::Hash;
use std::collections::HashMap;
use std::rc::Rc;

use ouro_cyclegc::{HookId, raw};

use crate::handle::Gc;
use crate::weak::Weak;

/// A hook that is registered: the address of its object and its id.
#[derive(Clone, Copy, Debug)]
struct Registered {
    addr: usize,
    id: HookId,
}

impl Registered {
    /// Adds `f` as a death hook of `obj`; `None` if the value is not alive.
    fn add<T: ?Sized>(obj: &Gc<T>, f: Box<dyn FnOnce()>) -> Option<Registered> {
        let o = obj.obj();
        // SAFETY: `obj` is a handle to an object of this thread's heap.
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
    f: Cell<Option<Box<dyn FnOnce()>>>,
    hook: Cell<Option<Registered>>,
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
/// use ouro::{Gc, weakref};
///
/// let obj = Gc::new(5);
/// let f = weakref::finalize(&obj, || println!("gone"));
/// assert!(f.detach(), "it was pending");
/// assert!(!f.alive());
/// drop(obj); // prints nothing: detached
/// ```
#[derive(Clone)]
pub struct Finalizer {
    state: Rc<FinalizerState>,
}

impl Finalizer {
    /// Whether the function is still pending: not run, not detached.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::{Gc, weakref};
    /// let obj = Gc::new(1);
    /// let f = weakref::finalize(&obj, || {});
    /// assert!(f.alive());
    /// drop(obj);
    /// assert!(!f.alive());
    /// ```
    pub fn alive(&self) -> bool {
        let f = self.state.f.take();
        let alive = f.is_some();
        self.state.f.set(f);
        alive
    }

    /// Cancels the finalizer: its function will never run (and is dropped
    /// now). Returns whether it was still pending (Python's `detach`
    /// returns `None` when it was not).
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::{Gc, weakref};
    /// let obj = Gc::new(1);
    /// let f = weakref::finalize(&obj, || panic!("never runs"));
    /// assert!(f.detach());
    /// assert!(!f.detach(), "only once");
    /// drop(obj);
    /// ```
    pub fn detach(&self) -> bool {
        let f = self.state.f.take();
        if let Some(r) = self.state.hook.take() {
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
    /// use ouro::{Gc, weakref};
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    ///
    /// let runs = Rc::new(Cell::new(0));
    /// let obj = Gc::new(1);
    /// let r = runs.clone();
    /// let f = weakref::finalize(&obj, move || r.set(r.get() + 1));
    /// assert!(f.call());
    /// assert!(!f.call(), "at most once");
    /// drop(obj);
    /// assert_eq!(runs.get(), 1);
    /// ```
    pub fn call(&self) -> bool {
        let f = self.state.f.take();
        if let Some(r) = self.state.hook.take() {
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
/// `Gc::try_unwrap` takes the value out (Python's `weakref.finalize`).
///
/// `f` runs just before the value is dropped, when `Weak::upgrade` on the
/// object already fails. It must not capture a handle to `obj` itself: that
/// handle would keep the object alive for ever. If the value is already
/// dead (a handle that a `Drop` kept from collected garbage), the
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
/// use ouro::{Gc, Trace, gc, weakref};
/// use std::cell::{Cell, RefCell};
/// use std::rc::Rc;
///
/// #[derive(Trace)]
/// struct Node { next: RefCell<Option<Gc<Node>>> }
///
/// let a = Gc::new(Node { next: RefCell::new(None) });
/// *a.next.borrow_mut() = Some(a.clone()); // a cycle
/// let done = Rc::new(Cell::new(false));
/// let d = done.clone();
/// let f = weakref::finalize(&a, move || d.set(true));
/// drop(a);
/// assert!(!done.get(), "the cycle keeps it alive");
/// gc::collect();
/// assert!(done.get() && !f.alive());
/// ```
pub fn finalize<T: ?Sized>(obj: &Gc<T>, f: impl FnOnce() + 'static) -> Finalizer {
    let state = Rc::new(FinalizerState {
        f: Cell::new(Some(Box::new(f))),
        hook: Cell::new(None),
    });
    let shared = state.clone();
    let hook = Registered::add(
        obj,
        Box::new(move || {
            shared.hook.set(None);
            if let Some(f) = shared.f.take() {
                f();
            }
        }),
    );
    match hook {
        Some(r) => state.hook.set(Some(r)),
        None => drop(state.f.take()),
    }
    Finalizer { state }
}

/// A weak reference with a callback (Python's `weakref.ref(obj, callback)`),
/// made by [`ref_with_callback`].
///
/// The callback runs once when the referent dies, with a [`Weak`] to it
/// (which no longer upgrades; use it to tell which referent died). If the
/// `WeakRef` is dropped first, the callback never runs (as in Python).
pub struct WeakRef<T: ?Sized> {
    weak: Weak<T>,
    hook: Option<Registered>,
}

impl<T: ?Sized> WeakRef<T> {
    /// A strong handle if the referent is still alive.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::{Gc, weakref};
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
    /// use ouro::{Gc, weakref};
    /// let obj = Gc::new(3);
    /// let r = weakref::ref_with_callback(&obj, |_| {});
    /// assert!(r.weak().ptr_eq(&Gc::downgrade(&obj)));
    /// ```
    pub fn weak(&self) -> &Weak<T> {
        &self.weak
    }
}

impl<T: ?Sized> Drop for WeakRef<T> {
    fn drop(&mut self) {
        if let Some(r) = self.hook.take() {
            r.remove();
        }
    }
}

impl<T: ?Sized> fmt::Debug for WeakRef<T> {
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
/// use ouro::{Gc, weakref};
/// use std::cell::Cell;
/// use std::rc::Rc;
///
/// let died = Rc::new(Cell::new(false));
/// let obj = Gc::new(String::from("x"));
/// let d = died.clone();
/// let r = weakref::ref_with_callback(&obj, move |w| {
///     assert!(w.upgrade().is_none(), "already dead");
///     d.set(true);
/// });
/// drop(obj);
/// assert!(died.get());
/// assert!(r.upgrade().is_none());
///
/// // Dropped before its referent: no callback.
/// let obj = Gc::new(String::from("y"));
/// let r = weakref::ref_with_callback(&obj, |_| panic!("never runs"));
/// drop(r);
/// drop(obj);
/// ```
pub fn ref_with_callback<T: ?Sized + 'static>(
    obj: &Gc<T>,
    callback: impl FnOnce(&Weak<T>) + 'static,
) -> WeakRef<T> {
    let weak = Gc::downgrade(obj);
    let w = weak.clone();
    let hook = Registered::add(obj, Box::new(move || callback(&w)));
    WeakRef { weak, hook }
}

/// The cell a death queue lives in.
type Slot<K> = RefCell<Vec<(K, u64)>>;

/// Keys (with the number of the entry they were queued for) whose values
/// died since the last purge: the death hooks push here, the map purges.
type Queue<K> = Rc<Slot<K>>;

fn new_queue<K>() -> Queue<K> {
    Rc::new(RefCell::new(Vec::new()))
}

/// The contents of a death queue.
fn queue<K>(q: &Slot<K>) -> RefMut<'_, Vec<(K, u64)>> {
    q.borrow_mut()
}

/// The address that identifies an object while a weak handle keeps its
/// header allocated.
fn addr_of<T: ?Sized>(g: &Gc<T>) -> usize {
    g.obj().as_ptr().addr()
}

crate::weakref_maps::weak_collections! {
    root: "ouro::",
    unsized: [?Sized],
    obj: [?Sized + 'static],
    send: [],
}
