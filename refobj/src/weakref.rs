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
use core::cell::{Cell, RefCell};
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

/// Keys (with the number of the entry they were queued for) whose values
/// died since the last purge: the death hooks push here, the map purges.
type Queue<K> = Rc<RefCell<Vec<(K, u64)>>>;

/// How many of the deaths queued in `q` satisfy `still_listed`, without
/// holding the queue while it runs: it hashes and compares keys (user
/// code), which may drop the last handle to another value of the map,
/// whose death hook queues onto `q` (a borrow held across that made the
/// hook panic and its death was lost; on the process-wide heap, a lock
/// held across it deadlocked). The queue is taken out and put back, deaths
/// queued meanwhile after it, also when `still_listed` panics.
fn count_queued<K>(q: &RefCell<Vec<(K, u64)>>, still_listed: impl Fn(&K, u64) -> bool) -> usize {
    struct Back<'a, K>(&'a RefCell<Vec<(K, u64)>>, Vec<(K, u64)>);
    impl<K> Drop for Back<'_, K> {
        fn drop(&mut self) {
            let q = self.0;
            let mut q = q.borrow_mut();
            let newer = core::mem::replace(&mut *q, core::mem::take(&mut self.1));
            q.extend(newer);
        }
    }
    let taken = core::mem::take(&mut *q.borrow_mut());
    let back = Back(q, taken);
    back.1.iter().filter(|(k, n)| still_listed(k, *n)).count()
}

/// The next entry number of a map: tells a queued death from a later entry
/// under the same key.
fn next_number(c: &Cell<u64>) -> u64 {
    let n = c.get();
    c.set(n + 1);
    n
}

/// One entry of a [`WeakValueMap`]. The hook is the first field, so that
/// it is removed before anything else of the entry is dropped.
struct ValueEntry<V: ?Sized> {
    _hook: HookGuard,
    value: Weak<V>,
    number: u64,
}

/// A map whose values are held weakly (Python's `WeakValueDictionary`): an
/// entry goes away when its value dies.
///
/// Each entry puts a death hook on its value, which queues the key; the
/// map removes queued entries at its next call, so dead entries cost no
/// sweep over the map. [`len`](WeakValueMap::len) counts the live entries.
///
/// # Examples
///
/// A cache that does not keep its objects alive:
///
/// ```
/// # extern crate ouro_refobj as ouro;
/// use ouro::{Gc, weakref::WeakValueMap};
///
/// let mut cache = WeakValueMap::new();
/// let big = Gc::new(vec![0u8; 1024]);
/// cache.insert("big", &big);
/// assert!(Gc::ptr_eq(&cache.get("big").unwrap(), &big));
/// assert_eq!(cache.len(), 1);
/// drop(big);
/// assert!(cache.get("big").is_none());
/// assert_eq!(cache.len(), 0);
/// ```
pub struct WeakValueMap<K, V: ?Sized> {
    map: HashMap<K, ValueEntry<V>>,
    dead: Queue<K>,
    numbers: Cell<u64>,
}

impl<K: Eq + Hash + Clone + 'static, V: ?Sized + 'static> WeakValueMap<K, V> {
    /// An empty map.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// let m: ouro::weakref::WeakValueMap<u32, String> = ouro::weakref::WeakValueMap::new();
    /// assert!(m.is_empty());
    /// ```
    pub fn new() -> Self {
        WeakValueMap {
            map: HashMap::new(),
            dead: Rc::new(RefCell::new(Vec::new())),
            numbers: Cell::new(0),
        }
    }

    /// Removes the entries whose values died (queued by their hooks).
    /// Removing them drops keys (user code), which may kill more values:
    /// repeated until the queue stays empty.
    fn purge(&mut self) {
        loop {
            let dead = core::mem::take(&mut *self.dead.borrow_mut());
            if dead.is_empty() {
                return;
            }
            let mut gone = Vec::with_capacity(dead.len());
            for (k, n) in &dead {
                if self.map.get(k).is_some_and(|e| e.number == *n) {
                    gone.extend(self.map.remove_entry(k));
                }
            }
            // Keys and entries are dropped (user code) once the queue and
            // the map are consistent again.
            drop((dead, gone));
        }
    }

    /// Maps `key` to `value`, held weakly; returns the value it replaces,
    /// if that is still alive.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::{Gc, weakref::WeakValueMap};
    /// let mut m = WeakValueMap::new();
    /// let (a, b) = (Gc::new(1), Gc::new(2));
    /// assert!(m.insert(7, &a).is_none());
    /// assert!(Gc::ptr_eq(&m.insert(7, &b).unwrap(), &a));
    /// ```
    pub fn insert(&mut self, key: K, value: &Gc<V>) -> Option<Gc<V>> {
        self.purge();
        let number = next_number(&self.numbers);
        let dead = self.dead.clone();
        let k = key.clone();
        let hook = Registered::add(value, Box::new(move || dead.borrow_mut().push((k, number))));
        if hook.is_none() {
            // Dead already: nothing to hold.
            return self.remove(&key);
        }
        let entry = ValueEntry {
            _hook: HookGuard(hook),
            value: Gc::downgrade(value),
            number,
        };
        let old = self.map.insert(key, entry);
        old.and_then(|e| e.value.upgrade())
    }

    /// A handle to the value of `key`, if it is still alive.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::{Gc, weakref::WeakValueMap};
    /// let mut m = WeakValueMap::new();
    /// let a = Gc::new(1);
    /// m.insert("a", &a);
    /// assert_eq!(*m.get("a").unwrap(), 1);
    /// assert!(m.get("b").is_none());
    /// ```
    pub fn get<Q>(&self, key: &Q) -> Option<Gc<V>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.get(key)?.value.upgrade()
    }

    /// Whether `key` maps to a live value.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::{Gc, weakref::WeakValueMap};
    /// let mut m = WeakValueMap::new();
    /// let a = Gc::new(1);
    /// m.insert(1, &a);
    /// assert!(m.contains_key(&1));
    /// drop(a);
    /// assert!(!m.contains_key(&1));
    /// ```
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map
            .get(key)
            .is_some_and(|e| e.value.strong_count() > 0)
    }

    /// Removes `key`; returns its value if it was still alive.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::{Gc, weakref::WeakValueMap};
    /// let mut m = WeakValueMap::new();
    /// let a = Gc::new(1);
    /// m.insert(1, &a);
    /// assert!(Gc::ptr_eq(&m.remove(&1).unwrap(), &a));
    /// assert!(m.is_empty());
    /// ```
    pub fn remove<Q>(&mut self, key: &Q) -> Option<Gc<V>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.purge();
        let e = self.map.remove(key)?;
        e.value.upgrade()
    }

    /// The number of entries whose values are alive.
    ///
    /// Counted as entries minus the deaths queued since the map's last
    /// `&mut` call (none in the common case). From inside a
    /// `Drop` or a hook of a collection that is freeing values of the map,
    /// values whose hooks have not run yet are still counted.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::{Gc, weakref::WeakValueMap};
    /// let mut m = WeakValueMap::new();
    /// let (a, b) = (Gc::new(1), Gc::new(2));
    /// m.insert(1, &a);
    /// m.insert(2, &b);
    /// drop(a);
    /// assert_eq!(m.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        let queued = count_queued(&self.dead, |k, n| {
            self.map.get(k).is_some_and(|e| e.number == n)
        });
        self.map.len() - queued
    }

    /// Whether no entry has a live value.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// let m = ouro::weakref::WeakValueMap::<u8, u8>::default();
    /// assert!(m.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every entry.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::{Gc, weakref::WeakValueMap};
    /// let mut m = WeakValueMap::new();
    /// let a = Gc::new(1);
    /// m.insert(1, &a);
    /// m.clear();
    /// assert!(m.is_empty());
    /// ```
    pub fn clear(&mut self) {
        let map = core::mem::take(&mut self.map);
        drop(map);
        self.dead.borrow_mut().clear();
    }

    /// The live entries, each with a strong handle to its value (taken as
    /// the iteration reaches it).
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::{Gc, weakref::WeakValueMap};
    /// let mut m = WeakValueMap::new();
    /// let (a, b) = (Gc::new(1), Gc::new(2));
    /// m.insert("a", &a);
    /// m.insert("b", &b);
    /// drop(b);
    /// let live: Vec<_> = m.iter().map(|(k, v)| (*k, *v)).collect();
    /// assert_eq!(live, [("a", 1)]);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (&K, Gc<V>)> + '_ {
        self.map
            .iter()
            .filter_map(|(k, e)| Some((k, e.value.upgrade()?)))
    }
}

impl<K: Eq + Hash + Clone + 'static, V: ?Sized + 'static> Default for WeakValueMap<K, V> {
    fn default() -> Self {
        WeakValueMap::new()
    }
}

impl<K: fmt::Debug, V: ?Sized + fmt::Debug> fmt::Debug for WeakValueMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.map
                    .iter()
                    .filter_map(|(k, e)| Some((k, e.value.upgrade()?))),
            )
            .finish()
    }
}

/// One entry of a [`WeakKeyMap`]. The hook is the first field, so that it
/// is removed before the value (user code) is dropped.
struct KeyEntry<K: ?Sized, V> {
    hook: HookGuard,
    key: Weak<K>,
    value: V,
    number: u64,
}

/// A map whose keys are objects held weakly and compared by identity
/// (Python's `WeakKeyDictionary`, for objects that hash by `id`): an entry
/// goes away, with its value, when its key dies.
///
/// Dead entries are queued by the keys' death hooks and removed at the
/// map's next call; [`len`](WeakKeyMap::len) counts the live entries.
///
/// # Examples
///
/// Data attached to objects without changing their type:
///
/// ```
/// # extern crate ouro_refobj as ouro;
/// use ouro::{Gc, weakref::WeakKeyMap};
///
/// let mut notes = WeakKeyMap::new();
/// let (a, b) = (Gc::new(1), Gc::new(1)); // equal values, two objects
/// notes.insert(&a, "first");
/// notes.insert(&b, "second");
/// assert_eq!(notes.get(&a), Some(&"first"));
/// drop(a);
/// assert_eq!(notes.len(), 1);
/// assert_eq!(notes.get(&b), Some(&"second"));
/// ```
pub struct WeakKeyMap<K: ?Sized, V> {
    /// By the address of the key's header, stable while the entry's weak
    /// handle keeps the header allocated.
    map: HashMap<usize, KeyEntry<K, V>>,
    dead: Queue<usize>,
    numbers: Cell<u64>,
}

fn addr_of<T: ?Sized>(g: &Gc<T>) -> usize {
    g.obj().as_ptr().addr()
}

impl<K: ?Sized + 'static, V> WeakKeyMap<K, V> {
    /// An empty map.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// let m: ouro::weakref::WeakKeyMap<u32, String> = ouro::weakref::WeakKeyMap::new();
    /// assert!(m.is_empty());
    /// ```
    pub fn new() -> Self {
        WeakKeyMap {
            map: HashMap::new(),
            dead: Rc::new(RefCell::new(Vec::new())),
            numbers: Cell::new(0),
        }
    }

    /// Removes the entries whose keys died; dropping their values may kill
    /// more keys: repeated until the queue stays empty.
    fn purge(&mut self) {
        loop {
            let dead = core::mem::take(&mut *self.dead.borrow_mut());
            if dead.is_empty() {
                return;
            }
            let mut gone = Vec::with_capacity(dead.len());
            for (a, n) in dead {
                if self.map.get(&a).is_some_and(|e| e.number == n) {
                    gone.push(self.map.remove(&a));
                }
            }
            drop(gone);
        }
    }

    /// Maps the object `key` to `value`; returns the value it replaces.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::{Gc, weakref::WeakKeyMap};
    /// let mut m = WeakKeyMap::new();
    /// let k = Gc::new(0);
    /// assert_eq!(m.insert(&k, 1), None);
    /// assert_eq!(m.insert(&k, 2), Some(1));
    /// ```
    pub fn insert(&mut self, key: &Gc<K>, value: V) -> Option<V> {
        self.purge();
        let addr = addr_of(key);
        if let Some(e) = self.map.get_mut(&addr) {
            return Some(core::mem::replace(&mut e.value, value));
        }
        let number = next_number(&self.numbers);
        let dead = self.dead.clone();
        let hook = Registered::add(
            key,
            Box::new(move || dead.borrow_mut().push((addr, number))),
        );
        if hook.is_some() {
            let e = KeyEntry {
                hook: HookGuard(hook),
                key: Gc::downgrade(key),
                value,
                number,
            };
            self.map.insert(addr, e);
        }
        None
    }

    /// The value of the object `key`.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::{Gc, weakref::WeakKeyMap};
    /// let mut m = WeakKeyMap::new();
    /// let k = Gc::new(0);
    /// m.insert(&k, "v");
    /// assert_eq!(m.get(&k), Some(&"v"));
    /// assert_eq!(m.get(&Gc::new(0)), None, "another object");
    /// ```
    pub fn get(&self, key: &Gc<K>) -> Option<&V> {
        // A live key's address cannot be a dead entry's: that entry's weak
        // handle keeps its header allocated.
        self.map.get(&addr_of(key)).map(|e| &e.value)
    }

    /// The value of the object `key`, mutably.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::{Gc, weakref::WeakKeyMap};
    /// let mut m = WeakKeyMap::new();
    /// let k = Gc::new(0);
    /// m.insert(&k, 1);
    /// *m.get_mut(&k).unwrap() += 1;
    /// assert_eq!(m.get(&k), Some(&2));
    /// ```
    pub fn get_mut(&mut self, key: &Gc<K>) -> Option<&mut V> {
        self.map.get_mut(&addr_of(key)).map(|e| &mut e.value)
    }

    /// Whether the object `key` has an entry.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::{Gc, weakref::WeakKeyMap};
    /// let mut m = WeakKeyMap::new();
    /// let k = Gc::new(0);
    /// m.insert(&k, ());
    /// assert!(m.contains_key(&k));
    /// ```
    pub fn contains_key(&self, key: &Gc<K>) -> bool {
        self.map.contains_key(&addr_of(key))
    }

    /// Removes the entry of the object `key` and returns its value.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::{Gc, weakref::WeakKeyMap};
    /// let mut m = WeakKeyMap::new();
    /// let k = Gc::new(0);
    /// m.insert(&k, 5);
    /// assert_eq!(m.remove(&k), Some(5));
    /// assert_eq!(m.remove(&k), None);
    /// ```
    pub fn remove(&mut self, key: &Gc<K>) -> Option<V> {
        self.purge();
        let KeyEntry { hook, value, .. } = self.map.remove(&addr_of(key))?;
        drop(hook);
        Some(value)
    }

    /// The number of entries whose keys are alive (as
    /// [`WeakValueMap::len`] counts them).
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::{Gc, weakref::WeakKeyMap};
    /// let mut m = WeakKeyMap::new();
    /// let (a, b) = (Gc::new(1), Gc::new(2));
    /// m.insert(&a, ());
    /// m.insert(&b, ());
    /// drop(b);
    /// assert_eq!(m.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        let dead = RefCell::borrow(&self.dead);
        let queued = dead
            .iter()
            .filter(|(a, n)| self.map.get(a).is_some_and(|e| e.number == *n))
            .count();
        self.map.len() - queued
    }

    /// Whether no entry has a live key.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// let m = ouro::weakref::WeakKeyMap::<u8, u8>::default();
    /// assert!(m.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every entry.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::{Gc, weakref::WeakKeyMap};
    /// let mut m = WeakKeyMap::new();
    /// let k = Gc::new(1);
    /// m.insert(&k, 1);
    /// m.clear();
    /// assert!(m.is_empty());
    /// ```
    pub fn clear(&mut self) {
        let map = core::mem::take(&mut self.map);
        drop(map);
        self.dead.borrow_mut().clear();
    }

    /// The live entries: a strong handle to each key (taken as the
    /// iteration reaches it) and its value.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::{Gc, weakref::WeakKeyMap};
    /// let mut m = WeakKeyMap::new();
    /// let (a, b) = (Gc::new("a"), Gc::new("b"));
    /// m.insert(&a, 1);
    /// m.insert(&b, 2);
    /// drop(a);
    /// let live: Vec<_> = m.iter().map(|(k, v)| (*k, *v)).collect();
    /// assert_eq!(live, [("b", 2)]);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (Gc<K>, &V)> + '_ {
        self.map
            .values()
            .filter_map(|e| Some((e.key.upgrade()?, &e.value)))
    }
}

impl<K: ?Sized + 'static, V> Default for WeakKeyMap<K, V> {
    fn default() -> Self {
        WeakKeyMap::new()
    }
}

impl<K: ?Sized + fmt::Debug, V: fmt::Debug> fmt::Debug for WeakKeyMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.map
                    .values()
                    .filter_map(|e| Some((e.key.upgrade()?, &e.value))),
            )
            .finish()
    }
}

/// A set of objects held weakly, by identity (Python's `WeakSet`): an
/// object leaves the set when it dies.
///
/// # Examples
///
/// ```
/// # extern crate ouro_refobj as ouro;
/// use ouro::{Gc, weakref::WeakSet};
///
/// let mut live = WeakSet::new();
/// let (a, b) = (Gc::new(1), Gc::new(2));
/// assert!(live.insert(&a));
/// assert!(!live.insert(&a), "already there");
/// live.insert(&b);
/// assert_eq!(live.len(), 2);
/// drop(a);
/// assert_eq!(live.len(), 1);
/// assert!(live.contains(&b));
/// ```
pub struct WeakSet<T: ?Sized> {
    map: WeakKeyMap<T, ()>,
}

impl<T: ?Sized + 'static> WeakSet<T> {
    /// An empty set.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// let s: ouro::weakref::WeakSet<u32> = ouro::weakref::WeakSet::new();
    /// assert!(s.is_empty());
    /// ```
    pub fn new() -> Self {
        WeakSet {
            map: WeakKeyMap::new(),
        }
    }

    /// Adds the object; returns whether it was not in the set.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::{Gc, weakref::WeakSet};
    /// let mut s = WeakSet::new();
    /// let a = Gc::new(1);
    /// assert!(s.insert(&a));
    /// ```
    pub fn insert(&mut self, obj: &Gc<T>) -> bool {
        self.map.insert(obj, ()).is_none()
    }

    /// Whether the object is in the set.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::{Gc, weakref::WeakSet};
    /// let mut s = WeakSet::new();
    /// let a = Gc::new(1);
    /// s.insert(&a);
    /// assert!(s.contains(&a) && !s.contains(&Gc::new(1)));
    /// ```
    pub fn contains(&self, obj: &Gc<T>) -> bool {
        self.map.contains_key(obj)
    }

    /// Removes the object; returns whether it was in the set.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::{Gc, weakref::WeakSet};
    /// let mut s = WeakSet::new();
    /// let a = Gc::new(1);
    /// s.insert(&a);
    /// assert!(s.remove(&a));
    /// assert!(!s.remove(&a));
    /// ```
    pub fn remove(&mut self, obj: &Gc<T>) -> bool {
        self.map.remove(obj).is_some()
    }

    /// The number of live objects in the set.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::{Gc, weakref::WeakSet};
    /// let mut s = WeakSet::new();
    /// let a = Gc::new(1);
    /// s.insert(&a);
    /// assert_eq!(s.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the set has no live object.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// assert!(ouro::weakref::WeakSet::<u8>::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Removes every object.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::{Gc, weakref::WeakSet};
    /// let mut s = WeakSet::new();
    /// let a = Gc::new(1);
    /// s.insert(&a);
    /// s.clear();
    /// assert!(s.is_empty());
    /// ```
    pub fn clear(&mut self) {
        self.map.clear()
    }

    /// Strong handles to the live objects.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::{Gc, weakref::WeakSet};
    /// let mut s = WeakSet::new();
    /// let a = Gc::new(1);
    /// s.insert(&a);
    /// assert_eq!(s.iter().map(|g| *g).sum::<i32>(), 1);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = Gc<T>> + '_ {
        self.map.iter().map(|(k, _)| k)
    }
}

impl<T: ?Sized + 'static> Default for WeakSet<T> {
    fn default() -> Self {
        WeakSet::new()
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for WeakSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.map.map.values().filter_map(|e| e.key.upgrade()))
            .finish()
    }
}
