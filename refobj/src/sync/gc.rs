//! Python's `gc` module for the process-wide heap behind
//! [`sync::Gc`](super::Gc).
//!
//! The same functions as [`crate::gc`], with the same meaning, over one heap
//! shared by every thread: the settings, counts, statistics, callbacks,
//! garbage and frozen set are process-wide. A collection can be requested
//! from any thread. Its critical part (finding and claiming the garbage)
//! runs one at a time; finalizers and drops run after it, with no
//! collector lock held, so that they may do anything user code may do
//! elsewhere (join a thread that collects, take a lock, collect, allocate).
//!
//! [`collect`] waits for the critical part of a collection in progress and
//! then runs its own: when it returns, everything that was unreachable when
//! it was called has been claimed (weak handles to it no longer upgrade),
//! and what this call claimed has been finalized and dropped on the calling
//! thread. Garbage another collection claimed is dropped by that one, maybe
//! later; [`wait_for_drops`] waits for it. Automatic collections find and
//! claim garbage on the allocating thread, and leave its finalizers and
//! drops to a background thread (`ouro-sync-gc`, started the first time
//! one has something to drop): the allocating thread may hold a lock that a
//! `Drop` takes. A panic in a finalizer or `Drop` that the background
//! thread runs is logged (`log` target `ouro::gc`); from [`collect`] it
//! propagates once the heap is consistent. Callbacks must be `Send`: they
//! run on whichever thread runs that part of a collection (`Stop` after the
//! drops, so on the background thread for an automatic collection that
//! found garbage), holding the collector lock, one at a time; [`get_stats`]
//! counts a collection when it calls `Stop`.
//!
//! Automatic collections follow the thread-local heap's schedule (see
//! [`crate::gc`]), with one difference: a young collection that moves its
//! survivors straight into the oldest generation takes the middle
//! generation along (so `get_objects(Some(1))` is empty after it); a pass
//! relabels each object it moves, shard by shard. Each
//! shard's objects then stay in the order they were made, and a cycle
//! made across threads stays within one chunk of the collector's first
//! pass, where it is cheapest to prove garbage.
//!
//! Cycles are freed only through values whose `Trace` is structural
//! ([`Trace::structural`](crate::Trace::structural)), as on the thread-local
//! heap, and by the same rule a cycle kept alive only by another impl is
//! reported, never leaked silently: each collection that finds it counts
//! its objects as `uncollectable` (in [`get_stats`], in the `Stop`
//! callback's [`CallbackInfo`] and in the `STATS` log line), names the
//! type in a `log` warning (target `ouro::gc`, once per type and heap:
//! the default heap and each [`Heap`](super::Heap)) that gives both fixes, and, under [`DebugFlags::SAVEALL`], keeps
//! its objects in [`garbage`]. So `uncollectable` counts the objects a
//! collection found and could not free: those only non-structural impls
//! keep alive (the unreachable ones `SAVEALL` kept count as `collected`,
//! as in CPython). The report is the
//! collector's reading of edges it does not trust: a thread mutating the
//! cycle meanwhile may make it wrong; nothing is freed on its strength.
//!
//! ```
//! # extern crate ouro_refobj as ouro;
//! # use ouro_macros::Trace;
//! use ouro::Trace;
//! use ouro::sync::{Gc, gc};
//! use std::sync::Mutex;
//!
//! #[derive(Trace)]
//! struct Node { next: Mutex<Option<Gc<Node>>> }
//!
//! let a = Gc::new(Node { next: Mutex::new(None) });
//! let b = Gc::new(Node { next: Mutex::new(Some(a.clone())) });
//! let refs = gc::get_referents(&b);
//! assert!(Gc::ptr_eq(&refs[0].downcast::<Node>().unwrap(), &a));
//! assert!(gc::get_referrers(&a).iter().any(|r| r.downcast::<Node>().is_some_and(|n| Gc::ptr_eq(&n, &b))));
//! ```

use std::io;

#[cfg(loom)]
#[doc(hidden)]
pub use ouro_cyclegc::sync::control::set_chunk_for_loom;
use ouro_cyclegc::sync::{ObjectRef, control};
pub use ouro_cyclegc::{CallbackId, CallbackInfo, DebugFlags, GenerationStats, Phase};

use super::Gc;
use crate::object_info::{RawObject, check_generation, object_info};

impl RawObject for ObjectRef {
    type Handle<T: 'static> = Gc<T>;

    fn type_name(&self) -> &'static str {
        ObjectRef::type_name(self)
    }

    fn type_id(&self) -> core::any::TypeId {
        ObjectRef::type_id(self)
    }

    fn value_address(&self) -> usize {
        self.address()
    }

    fn strong(&self) -> usize {
        self.refcount() + 1
    }

    fn generation(&self) -> Option<usize> {
        ObjectRef::generation(self)
    }

    fn is_live(&self) -> bool {
        // SAFETY: this holds a strong reference.
        !unsafe { ouro_cyclegc::sync::raw::is_dead(self.header()) }
    }

    unsafe fn into_handle<T: 'static>(self) -> Gc<T> {
        // SAFETY: the value is a live `T` (caller contract); this is one
        // counted strong reference that the handle takes over.
        unsafe { Gc::from_header(self.into_raw()) }
    }

    fn referents(&self) -> Vec<ObjectRef> {
        // SAFETY: this holds a strong reference for the whole call.
        unsafe { control::get_referents(self.header()) }
    }

    fn referrers(&self) -> Vec<ObjectRef> {
        control::get_referrers(self.header())
    }
}

object_info! {
    /// A tracked object of the process-wide heap seen through the `gc`
    /// module, like an object in the list Python's `gc.get_objects()`
    /// returns.
    raw: ObjectRef,
    handle: Gc,
    referents: {
    /// # Examples
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// # use ouro_macros::Trace;
    /// use ouro::Trace;
    /// use ouro::sync::{Gc, gc};
    ///
    /// #[derive(Trace)]
    /// struct Leaf { n: u32 }
    /// #[derive(Trace)]
    /// struct Middle { leaf: Gc<Leaf> }
    /// #[derive(Trace)]
    /// struct Root { middle: Gc<Middle> }
    ///
    /// let leaf = Gc::new(Leaf { n: 1 });
    /// let root = Gc::new(Root { middle: Gc::new(Middle { leaf: leaf.clone() }) });
    /// let middle = gc::get_referents(&root).remove(0);
    /// let next = middle.referents().remove(0);
    /// assert!(Gc::ptr_eq(&next.downcast::<Leaf>().unwrap(), &leaf));
    /// ```
    }
    referrers: {
    /// # Examples
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// # use ouro_macros::Trace;
    /// use ouro::Trace;
    /// use ouro::sync::{Gc, gc};
    ///
    /// #[derive(Trace)]
    /// struct Leaf { n: u32 }
    /// #[derive(Trace)]
    /// struct Middle { leaf: Gc<Leaf> }
    /// #[derive(Trace)]
    /// struct Root { middle: Gc<Middle> }
    ///
    /// let leaf = Gc::new(Leaf { n: 1 });
    /// let root = Gc::new(Root { middle: Gc::new(Middle { leaf: leaf.clone() }) });
    /// let middle = gc::get_referrers(&leaf).remove(0);
    /// let up = middle.referrers();
    /// assert!(up.iter().any(|o| o.downcast::<Root>().is_some_and(|r| Gc::ptr_eq(&r, &root))));
    /// ```
    }
}

pub(crate) fn wrap(v: Vec<ObjectRef>) -> Vec<ObjectInfo> {
    v.into_iter().map(ObjectInfo).collect()
}

/// Every tracked object of `generation` (all three generations for `None`;
/// frozen objects are not included, as in Python's `gc.get_objects()` and
/// on the thread-local heap).
///
/// # Panics
/// If `generation > 2` (CPython raises `ValueError`), as on the
/// thread-local heap.
///
/// # Examples
///
/// ```
/// # extern crate ouro_refobj as ouro;
/// # use ouro_macros::Trace;
/// use ouro::Trace;
/// use ouro::sync::{Gc, gc};
/// use std::sync::Mutex;
///
/// #[derive(Trace)]
/// struct Node { next: Mutex<Option<Gc<Node>>> }
///
/// let a = Gc::new(Node { next: Mutex::new(None) });
/// assert!(gc::get_objects(None)
///     .iter()
///     .any(|o| o.downcast::<Node>().is_some_and(|n| Gc::ptr_eq(&n, &a))));
/// ```
pub fn get_objects(generation: Option<usize>) -> Vec<ObjectInfo> {
    check_generation("ouro::sync::gc::get_objects", generation);
    wrap(control::get_objects(generation))
}

/// The tracked objects `obj`'s value holds handles to. To go on from one
/// of them without knowing its type, use [`ObjectInfo::referents`].
///
/// # Examples
///
/// ```
/// # extern crate ouro_refobj as ouro;
/// # use ouro_macros::Trace;
/// use ouro::Trace;
/// use ouro::sync::{Gc, gc};
/// use std::sync::Mutex;
///
/// #[derive(Trace)]
/// struct Node { next: Mutex<Option<Gc<Node>>> }
///
/// let a = Gc::new(Node { next: Mutex::new(None) });
/// let b = Gc::new(Node { next: Mutex::new(Some(a.clone())) });
/// let refs = gc::get_referents(&b);
/// assert!(Gc::ptr_eq(&refs[0].downcast::<Node>().unwrap(), &a));
/// ```
pub fn get_referents<T>(obj: &Gc<T>) -> Vec<ObjectInfo> {
    // SAFETY: we hold a strong reference through a shared borrow.
    wrap(unsafe { control::get_referents(Gc::header_ptr(obj)) })
}

/// The tracked objects whose values hold a handle to `obj`. To go on from
/// one of them without knowing its type, use [`ObjectInfo::referrers`].
///
/// # Examples
///
/// ```
/// # extern crate ouro_refobj as ouro;
/// # use ouro_macros::Trace;
/// use ouro::Trace;
/// use ouro::sync::{Gc, gc};
/// use std::sync::Mutex;
///
/// #[derive(Trace)]
/// struct Node { next: Mutex<Option<Gc<Node>>> }
///
/// let a = Gc::new(Node { next: Mutex::new(None) });
/// let b = Gc::new(Node { next: Mutex::new(Some(a.clone())) });
/// let who = gc::get_referrers(&a);
/// assert!(who.iter().any(|o| o.downcast::<Node>().is_some_and(|n| Gc::ptr_eq(&n, &b))));
/// ```
pub fn get_referrers<T>(obj: &Gc<T>) -> Vec<ObjectInfo> {
    wrap(control::get_referrers(Gc::header_ptr(obj)))
}

/// The objects kept by [`DebugFlags::SAVEALL`] (Python's `gc.garbage`): the
/// unreachable ones, and the uncollectable ones (cycles through a
/// non-structural `Trace` impl, see [`GenerationStats::uncollectable`]). They
/// stay alive until [`clear_garbage`].
///
/// # Examples
///
/// ```
/// # extern crate ouro_refobj as ouro;
/// # use ouro_macros::Trace;
/// use ouro::Trace;
/// use ouro::sync::{Gc, gc};
/// use std::sync::Mutex;
///
/// #[derive(Trace)]
/// struct Node { next: Mutex<Option<Gc<Node>>> }
///
/// // With `DebugFlags::SAVEALL` set, what collections find stays here for
/// // inspection (process-wide) until `clear_garbage`.
/// for o in gc::garbage() {
///     println!("{} at {:#x}", o.type_name(), o.address());
/// }
/// ```
pub fn garbage() -> Vec<ObjectInfo> {
    wrap(control::garbage())
}

/// Writes the object graph as a Graphviz `digraph` (see [`crate::gc::write_dot`]).
///
/// # Examples
///
/// ```
/// # extern crate ouro_refobj as ouro;
/// # use ouro_macros::Trace;
/// use ouro::Trace;
/// use ouro::sync::{Gc, gc};
/// use std::sync::Mutex;
///
/// #[derive(Trace)]
/// struct Node { next: Mutex<Option<Gc<Node>>> }
///
/// let a = Gc::new(Node { next: Mutex::new(None) });
/// let mut out = Vec::new();
/// gc::write_dot(&mut out).unwrap();
/// assert!(String::from_utf8(out).unwrap().starts_with("digraph"));
/// # drop(a);
/// ```
pub fn write_dot(w: impl io::Write) -> io::Result<()> {
    control::write_dot(w)
}

// The control functions: the engine's, documented here for users of the
// facade (examples with `ouro::` paths).

crate::gc_functions::gc_functions! {
    prelude: "# extern crate ouro_refobj as ouro;\n# use ouro_macros::Trace;\nuse ouro::Trace;\nuse ouro::sync::{Gc, gc};\nuse std::sync::Mutex;\n\n#[derive(Trace)]\nstruct Node { next: Mutex<Option<Gc<Node>>> }\n",
    empty: "Mutex::new(None)",
    link: "lock().unwrap()",
    heap: "the process-wide heap (on every thread)",
}

/// Runs a full collection and returns the number of unreachable objects
/// found.
///
/// Waits for the critical part of a collection in progress (on another
/// thread), then runs its own. When it returns, everything that was
/// unreachable when it was called has been finalized and dropped, except
/// what another thread is dropping at that moment (a finalizer's
/// resurrection aside, as in PEP 442):
///
/// - what this call claimed, it drops on this thread;
/// - so it does with the garbage that automatic collections claimed and
///   queued for the background thread, which has not started on it;
/// - the garbage the background thread is dropping at the call, it waits
///   for, but at most one second: a `Drop` of it may be waiting for a lock
///   this thread holds, or for this thread to end. Past that it returns
///   (logging a warning, once) and the background thread drops it later;
/// - the garbage another thread's `collect()` claimed (or took over), that
///   thread drops, maybe after this returns: this does not wait for it (a
///   `Drop` it runs may be joining this very thread).
///
/// All of it is unreachable when this returns (`Weak::upgrade` fails on
/// it), and [`wait_for_drops`] waits for the rest without a bound. As the
/// garbage is dropped here, calling this while holding a lock that a
/// garbage `Drop` takes deadlocks, as on the thread-local heap.
///
/// Called from a `Drop` or a finalizer that a collection runs, it collects
/// too (never waiting for the garbage it is itself being dropped with);
/// called from a callback (or a `trace`), it returns 0 at once.
///
/// # Panics
///
/// Propagates the first panic of a finalizer, a `Drop` or a callback that
/// it ran (after all of them have run and the heap is consistent).
///
/// # Examples
///
/// ```
/// # extern crate ouro_refobj as ouro;
/// # use ouro_macros::Trace;
/// use ouro::Trace;
/// use ouro::sync::{Gc, gc};
/// use std::sync::Mutex;
///
/// #[derive(Trace)]
/// struct Node { next: Mutex<Option<Gc<Node>>> }
///
/// fn cycle() -> ouro::sync::Weak<Node> {
///     let a = Gc::new(Node { next: Mutex::new(None) });
///     *a.next.lock().unwrap() = Some(a.clone());
///     Gc::downgrade(&a)
/// }
///
/// let watch = cycle();
/// gc::collect(); // from any thread
/// assert!(watch.upgrade().is_none());
/// ```
#[inline]
pub fn collect() -> usize {
    control::collect()
}

/// Waits until every collection that claimed garbage before this call
/// (including one whose critical part is in progress) has finalized and
/// dropped it: another thread's [`collect`], or an automatic collection
/// (whose garbage the background thread drops).
///
/// A `Drop` that such a collection runs may wait for this thread (for a
/// lock it holds, or for it to end): then this waits forever, as a `join`
/// would. Called from a `Drop`, a finalizer or a callback that a collection
/// runs, it returns at once.
///
/// # Examples
///
/// ```
/// # extern crate ouro_refobj as ouro;
/// # use ouro_macros::Trace;
/// use ouro::Trace;
/// use ouro::sync::{Gc, gc};
/// use std::sync::Mutex;
///
/// #[derive(Trace)]
/// struct Node { next: Mutex<Option<Gc<Node>>> }
///
/// fn cycle() -> ouro::sync::Weak<Node> {
///     let a = Gc::new(Node { next: Mutex::new(None) });
///     *a.next.lock().unwrap() = Some(a.clone());
///     Gc::downgrade(&a)
/// }
///
/// let watch = cycle();
/// std::thread::spawn(|| gc::collect()).join().unwrap();
/// gc::wait_for_drops(); // whatever any collection claimed has been dropped
/// assert!(watch.upgrade().is_none());
/// ```
#[inline]
pub fn wait_for_drops() {
    control::wait_for_drops()
}

/// `[tracked allocations minus objects freed by reference count since the
/// last collection, collections of 0 since the last of 1, collections of 1
/// since the last of 2]`, as on the thread-local heap ([`crate::gc`]'s
/// module docs say what triggers a collection). The first is counted in
/// small batches per shard, so it is approximate, and shown as 0 while
/// more were freed than allocated.
///
/// # Examples
///
/// ```
/// # extern crate ouro_refobj as ouro;
/// # use ouro_macros::Trace;
/// use ouro::Trace;
/// use ouro::sync::{Gc, gc};
/// use std::sync::Mutex;
///
/// #[derive(Trace)]
/// struct Node { next: Mutex<Option<Gc<Node>>> }
///
/// fn cycle() -> ouro::sync::Weak<Node> {
///     let a = Gc::new(Node { next: Mutex::new(None) });
///     *a.next.lock().unwrap() = Some(a.clone());
///     Gc::downgrade(&a)
/// }
///
/// let a = Gc::new(Node { next: Mutex::new(None) });
/// let [young, middle, old] = gc::get_count(); // shared by every thread
/// println!("{young} more young objects, {middle} and {old} collections since");
/// # drop(a);
/// ```
#[inline]
pub fn get_count() -> [usize; 3] {
    control::get_count()
}

/// Registers `f` to be called at the start and the end of every collection
/// (from the thread that runs that part of it, holding the collector lock;
/// see the module docs).
///
/// # Examples
///
/// ```
/// # extern crate ouro_refobj as ouro;
/// # use ouro_macros::Trace;
/// use ouro::sync::gc::{self, Phase};
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// let stops = Arc::new(AtomicUsize::new(0));
/// let seen = stops.clone();
/// let id = gc::add_callback(move |info| {
///     if info.phase == Phase::Stop {
///         seen.fetch_add(1, Ordering::Relaxed);
///     }
/// });
/// gc::collect();
/// gc::wait_for_drops();
/// assert!(stops.load(Ordering::Relaxed) >= 1);
/// gc::remove_callback(id);
/// ```
#[inline]
pub fn add_callback(f: impl FnMut(&CallbackInfo) + Send + 'static) -> CallbackId {
    control::add_callback(f)
}
