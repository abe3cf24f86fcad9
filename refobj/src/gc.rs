//! The `gc` module: Python's `gc` for ouro's thread-local heap.
//!
//! Every function reads or changes only the calling thread's heap and
//! settings. The control half (`collect`, thresholds, counts, stats) runs
//! and tunes collections; the introspection half finds leaks the way Python
//! developers do: list the tracked objects, walk referents and referrers,
//! keep the garbage for inspection, freeze a long-lived heap, and draw the
//! object graph.
//!
//! # When an automatic collection runs
//!
//! The thresholds keep CPython's names, defaults (`[700, 10, 10]`) and
//! round-trip through [`get_threshold`]/[`set_threshold`]; a `threshold0`
//! of 0, like [`disable`], turns automatic collection off. What they
//! trigger (the same rule on `ouro::sync`'s heap):
//!
//! 1. A young collection (generation 0) runs when generation 0's count, the
//!    tracked objects allocated minus those freed since its last collection
//!    ([`get_count`]`()[0]`, shown as 0 while more were freed), passes the
//!    *effective* young threshold: `threshold0`, doubled after each young or
//!    middle collection that finds no garbage, up to 16 times `threshold0`,
//!    and back to `threshold0` as soon as a collection finds garbage (or
//!    [`set_threshold`] is called). A middle or full collection whose
//!    garbage is at least an eighth of what it scanned also holds the young
//!    threshold at `threshold0` until the next collection of that
//!    generation finds less: cycles that die only after leaving generation
//!    0 (a large structure built, then dropped) are invisible to young
//!    collections, and backing off on their silence would make the
//!    collections that do find them 16 times rarer too.
//!
//!    While the young threshold is fully backed off (16 times, not held),
//!    a young collection moves its survivors straight into the oldest
//!    generation instead of the middle one: the program is building
//!    structures that stay, and scanning each of them a second time in a
//!    middle collection would find nothing either. Garbage among them is
//!    found by the next full collection (rule 3), and once a collection
//!    finds garbage the middle generation is used again. The price: a
//!    program that builds large cyclic structures (each outliving several
//!    young collections) and drops them without calling [`collect`] keeps
//!    them until that full collection, which with the default thresholds
//!    needs at least `11 * 11 * 16 * 700` (about 1.35 million) tracked
//!    allocations while nothing else is found, and the live heap, such
//!    garbage included, to have grown by a quarter since the last full
//!    collection (rule 3): the garbage waiting stays within about a quarter
//!    of the heap. Then the schedule holds the young threshold and collects
//!    the middle generation again.
//!    (Rings of 20 000 nodes made and dropped in a loop: at most about 1.45
//!    million of their objects alive or waiting at once, against about
//!    275 000 when the middle generation got them.) Such a program can call
//!    [`collect`] after dropping a structure, or lower the thresholds.
//!
//!    While fully backed off, only one young collection in four examines
//!    generation 0 (and the one after which a middle collection is due);
//!    the others *pass*: they move generation 0 into the middle generation
//!    unexamined, which costs a list splice instead of a scan of every
//!    object (on a program that builds a large structure, young scans that
//!    keep finding nothing cost about half of what building it does). A
//!    pass is a collection like any other for [`get_stats`], the callbacks
//!    (`collected` 0) and [`get_count`]; its `STATS` line says `promoted
//!    into generation 1 unexamined`. The examined one decides what happens
//!    to the passed batches: finding nothing, it takes them along into the
//!    oldest generation with its survivors; finding garbage, it leaves them
//!    in the middle generation and puts its survivors there too, the young
//!    threshold comes back, and the next middle collection (within
//!    `threshold1 + 1` young collections) examines them. So the garbage of
//!    a passed batch waits a few young collections longer, never for a
//!    full collection.
//!
//!    Only automatic collections move the effective threshold: an explicit
//!    [`collect`] or [`collect_generation`] (which a program typically
//!    calls right after dropping its cycles) says nothing about what the
//!    automatic ones would find.
//!
//!    Unlike CPython's, the count is not clamped at zero when objects die
//!    (on either heap): a heap that is not growing (objects freed as fast
//!    as they are made) does not pay for young collections, and the heap
//!    cannot grow by more than the effective threshold of tracked objects
//!    without one. It is not clamped at any other floor either, on
//!    purpose: after a structure of N tracked objects is freed by reference
//!    count, cyclic garbage made afterwards waits for up to N + threshold
//!    allocations before a young collection looks at it. The memory stays
//!    bounded by what the program already held (the garbage reuses the
//!    freed objects' memory, so the tracked objects never exceed their
//!    earlier peak plus the threshold); what waits is the garbage's
//!    `Drop`s. A clamp would cost a comparison on every drop of a tracked
//!    object and would break the live count the full-collection rule below
//!    reads. A program that needs such garbage
//!    dropped promptly after a large free calls
//!    [`collect_generation`]`(0)`.
//! 2. As in CPython, the middle generation is collected instead when
//!    `count[1]` (young collections since its last collection) passes
//!    `threshold1`, and the oldest when `count[2]` passes `threshold2` ...
//! 3. ... but a full collection also needs the **live** tracked objects to
//!    have grown by more than 25% since the last full collection (otherwise
//!    the middle generation is collected). CPython's rule counts the objects
//!    *promoted* into the oldest generation since then and never subtracts
//!    those that die afterwards by reference count, so short-lived objects
//!    that were alive at a young collection keep triggering full scans of a
//!    large old generation that is neither growing nor changing (the
//!    benchmarks-game binary trees spent 85% of their time there). Here an
//!    object freed by reference count leaves the count, so full
//!    collections follow the growth of the heap, and their total work stays
//!    within a small constant of the program's own.
//!
//! Every automatic collection, like an explicit one, is counted in
//! [`get_stats`] and seen by the [`add_callback`] callbacks.
//!
//! # When a thread ends
//!
//! The heap is collected once more when the thread's locals are destroyed.
//! Thread-locals destroyed after that (those first used before the
//! thread's first `Gc`) may still hold, make and drop handles: the heap
//! lives as long as any of its objects, and is made anew if it is used
//! after it was freed. On Unix, a last sweep after every thread-local's
//! destructor drops the callbacks, releases the saved garbage, unfreezes,
//! and collects the cycles those late destructors let go, so nothing is
//! left behind; elsewhere such cycles stay allocated.
//!
//! ```
//! # extern crate ouro_refobj as ouro;
//! # use ouro_macros::Trace;
//! use ouro::{Gc, Trace, gc};
//! use std::cell::RefCell;
//!
//! #[derive(Trace)]
//! struct Node { next: RefCell<Option<Gc<Node>>> }
//!
//! gc::disable();
//! let a = Gc::new(Node { next: RefCell::new(None) });
//! let b = Gc::new(Node { next: RefCell::new(Some(a.clone())) });
//! assert_eq!(gc::get_referents(&b)[0].downcast::<Node>().map(|n| Gc::ptr_eq(&n, &a)), Some(true));
//! assert_eq!(gc::get_referrers(&a).len(), 1);
//! let objs = gc::get_objects(Some(0));
//! assert!(objs.iter().all(|o| o.type_name().ends_with("Node")));
//! ```

use core::ptr::NonNull;
use std::collections::HashMap;
use std::io::{self, Write};

use ouro_cyclegc::dot::DotNode;
pub use ouro_cyclegc::{CallbackId, CallbackInfo, DebugFlags, GenerationStats, Phase};
use ouro_cyclegc::{ObjHeader, control, raw};

use crate::handle::Gc;
use crate::object_info::{RawObject, check_generation, object_info};

/// A strong reference to a tracked object of this thread's heap, with the
/// generation it was listed in (`None`: not known, found as a referent).
#[derive(PartialEq, Eq)]
pub(crate) struct LocalRef {
    obj: NonNull<ObjHeader>,
    generation: Option<Option<usize>>,
}

impl LocalRef {
    /// # Safety
    /// `obj` is a live tracked object and the caller gives up one counted
    /// strong reference to it.
    unsafe fn from_raw(obj: NonNull<ObjHeader>, generation: Option<Option<usize>>) -> Self {
        LocalRef { obj, generation }
    }

    fn header(&self) -> &ObjHeader {
        // SAFETY: this holds a strong reference, so the object is live.
        unsafe { self.obj.as_ref() }
    }
}

impl Clone for LocalRef {
    fn clone(&self) -> Self {
        self.header().inc_strong();
        LocalRef {
            obj: self.obj,
            generation: self.generation,
        }
    }
}

impl Drop for LocalRef {
    fn drop(&mut self) {
        // SAFETY: this owns one strong reference to a tracked object.
        unsafe { raw::release_ref(self.obj) }
    }
}

impl RawObject for LocalRef {
    type Handle<T: 'static> = Gc<T>;

    fn type_name(&self) -> &'static str {
        (self.header().vtable().type_name)()
    }

    fn type_id(&self) -> core::any::TypeId {
        (self.header().vtable().type_id)()
    }

    fn value_address(&self) -> usize {
        self.obj.as_ptr().addr() + self.header().vtable().value_offset
    }

    fn strong(&self) -> usize {
        self.header().strong()
    }

    fn generation(&self) -> Option<usize> {
        match self.generation {
            Some(g) if self.header().is_tracked() => g,
            // SAFETY: the object is live.
            _ => unsafe { raw::generation_of(self.obj) },
        }
    }

    fn is_live(&self) -> bool {
        self.header().is_live()
    }

    unsafe fn into_handle<T: 'static>(self) -> Gc<T> {
        let obj = core::mem::ManuallyDrop::new(self).obj;
        // SAFETY: the value is a live `T` (caller contract; tracked objects
        // are sized `GcBox<T>`s built by `Gc::new`); the reference this held
        // is counted, and the handle takes it over.
        unsafe { Gc::from_box(obj.cast()) }
    }

    fn referents(&self) -> Vec<LocalRef> {
        referents_of(self.obj)
    }

    fn referrers(&self) -> Vec<LocalRef> {
        referrers_of(self.obj)
    }
}

object_info! {
    /// A tracked object seen through the `gc` module, like an object in the
    /// list Python's `gc.get_objects()` returns.
    raw: LocalRef,
    handle: Gc,
    referents: {
    /// # Examples
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// # use ouro_macros::Trace;
    /// use ouro::{Gc, Trace, gc};
    /// use std::cell::RefCell;
    ///
    /// #[derive(Trace)]
    /// struct Leaf { parent: RefCell<Option<Gc<Root>>> }
    /// #[derive(Trace)]
    /// struct Middle { leaf: Gc<Leaf> }
    /// #[derive(Trace)]
    /// struct Root { middle: RefCell<Option<Gc<Middle>>> }
    ///
    /// let root = Gc::new(Root { middle: RefCell::new(None) });
    /// let leaf = Gc::new(Leaf { parent: RefCell::new(Some(root.clone())) });
    /// *root.middle.borrow_mut() = Some(Gc::new(Middle { leaf: leaf.clone() }));
    /// // root -> Middle -> Leaf -> root, without naming Middle's type.
    /// let middle = gc::get_referents(&root).remove(0);
    /// let next = middle.referents().remove(0);
    /// assert!(Gc::ptr_eq(&next.downcast::<Leaf>().unwrap(), &leaf));
    /// let back = next.referents().remove(0);
    /// assert!(Gc::ptr_eq(&back.downcast::<Root>().unwrap(), &root));
    /// # *root.middle.borrow_mut() = None;
    /// ```
    }
    referrers: {
    /// # Examples
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// # use ouro_macros::Trace;
    /// use ouro::{Gc, Trace, gc};
    /// use std::cell::RefCell;
    ///
    /// // A tracked leaf (a type that can hold handles): the collector only
    /// // follows edges to tracked objects.
    /// #[derive(Trace)]
    /// struct Leaf { next: RefCell<Option<Gc<Leaf>>> }
    /// #[derive(Trace)]
    /// struct Middle { leaf: Gc<Leaf> }
    /// #[derive(Trace)]
    /// struct Root { middle: Gc<Middle> }
    ///
    /// let leaf = Gc::new(Leaf { next: RefCell::new(None) });
    /// let root = Gc::new(Root { middle: Gc::new(Middle { leaf: leaf.clone() }) });
    /// // Who holds the leaf, and who holds that?
    /// let middle = gc::get_referrers(&leaf).remove(0);
    /// let up = middle.referrers().remove(0);
    /// assert!(Gc::ptr_eq(&up.downcast::<Root>().unwrap(), &root));
    /// ```
    }
}

fn infos(raw: Vec<(NonNull<ObjHeader>, Option<usize>)>) -> Vec<LocalRef> {
    raw.into_iter()
        // SAFETY: `raw::snapshot` took one strong reference per entry.
        .map(|(o, g)| unsafe { LocalRef::from_raw(o, Some(g)) })
        .collect()
}

fn wrap(v: Vec<LocalRef>) -> Vec<ObjectInfo> {
    v.into_iter().map(ObjectInfo).collect()
}

/// Every tracked object of generation `generation` (all three generations
/// for `None`; frozen objects are not included, as in Python).
///
/// Objects that are being scanned by a collection running right now (when
/// called from a finalizer) are not on the generation lists and not listed.
/// An object whose `&mut` from `Gc::get_mut` may still be borrowed (it was
/// never cloned since) is left out.
///
/// # Panics
/// If `generation > 2` (CPython raises `ValueError`), as on the
/// process-wide heap.
///
/// # Examples
///
/// ```
/// # extern crate ouro_refobj as ouro;
/// # use ouro_macros::Trace;
/// use ouro::{Gc, Trace, gc};
/// use std::cell::RefCell;
///
/// #[derive(Trace)]
/// struct Node { next: RefCell<Option<Gc<Node>>> }
///
/// let a = Gc::new(Node { next: RefCell::new(None) });
/// let nodes = gc::get_objects(None)
///     .iter()
///     .filter(|o| o.downcast::<Node>().is_some_and(|n| Gc::ptr_eq(&n, &a)))
///     .count();
/// assert_eq!(nodes, 1);
/// ```
pub fn get_objects(generation: Option<usize>) -> Vec<ObjectInfo> {
    check_generation("ouro::gc::get_objects", generation);
    wrap(infos(raw::snapshot(generation, false)))
}

fn referents_of(obj: NonNull<ObjHeader>) -> Vec<LocalRef> {
    let mut out = Vec::new();
    // SAFETY: the caller keeps `obj` alive; each reported target is live
    // (its handle is borrowed during the report) and gets a new reference.
    unsafe {
        raw::referents(obj, &mut |t| {
            t.as_ref().inc_strong();
            out.push(LocalRef::from_raw(t, None));
        })
    };
    out
}

/// The tracked objects `obj` refers to: the edges its `Trace` impl reports
/// that the collector counts (Python's `gc.get_referents`). To go on from
/// one of them without knowing its type, use [`ObjectInfo::referents`].
///
/// # Examples
///
/// ```
/// # extern crate ouro_refobj as ouro;
/// # use ouro_macros::Trace;
/// use ouro::{Gc, Trace, gc};
/// use std::cell::RefCell;
///
/// #[derive(Trace)]
/// struct Node { next: RefCell<Option<Gc<Node>>> }
///
/// let a = Gc::new(Node { next: RefCell::new(None) });
/// let b = Gc::new(Node { next: RefCell::new(Some(a.clone())) });
/// let refs = gc::get_referents(&b);
/// assert_eq!(refs.len(), 1);
/// assert!(Gc::ptr_eq(&refs[0].downcast::<Node>().unwrap(), &a));
/// ```
pub fn get_referents<T: ?Sized>(obj: &Gc<T>) -> Vec<ObjectInfo> {
    if !Gc::is_tracked(obj) {
        return Vec::new();
    }
    wrap(referents_of(obj.obj()))
}

/// The tracked objects that refer to `obj` (Python's `gc.get_referrers`).
/// To go on from one of them without knowing its type, use
/// [`ObjectInfo::referrers`].
///
/// This traces every tracked object of the heap: a debugging tool, not for
/// hot paths.
///
/// # Examples
///
/// ```
/// # extern crate ouro_refobj as ouro;
/// # use ouro_macros::Trace;
/// use ouro::{Gc, Trace, gc};
/// use std::cell::RefCell;
///
/// #[derive(Trace)]
/// struct Node { next: RefCell<Option<Gc<Node>>> }
///
/// let a = Gc::new(Node { next: RefCell::new(None) });
/// let b = Gc::new(Node { next: RefCell::new(Some(a.clone())) });
/// // Who keeps `a` alive? `b` (and the local `a`, which is not an object).
/// let who = gc::get_referrers(&a);
/// assert_eq!(who.len(), 1);
/// assert!(Gc::ptr_eq(&who[0].downcast::<Node>().unwrap(), &b));
/// ```
pub fn get_referrers<T: ?Sized>(obj: &Gc<T>) -> Vec<ObjectInfo> {
    wrap(referrers_of(obj.obj()))
}

fn referrers_of(target: NonNull<ObjHeader>) -> Vec<LocalRef> {
    infos(raw::snapshot(None, true))
        .into_iter()
        .filter(|o| referents_of(o.obj).iter().any(|r| r.obj == target))
        .collect()
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
/// use ouro::{Gc, Trace, gc};
/// use std::cell::RefCell;
///
/// #[derive(Trace)]
/// struct Node { next: RefCell<Option<Gc<Node>>> }
///
/// gc::set_debug(gc::DebugFlags::SAVEALL);
/// let a = Gc::new(Node { next: RefCell::new(None) });
/// *a.next.borrow_mut() = Some(a.clone());
/// drop(a);
/// gc::collect();
/// let kept = gc::garbage();
/// assert_eq!(kept.len(), 1);
/// assert!(kept[0].type_name().ends_with("Node"));
/// drop(kept);
/// gc::set_debug(gc::DebugFlags::empty());
/// gc::clear_garbage();
/// gc::collect();
/// ```
pub fn garbage() -> Vec<ObjectInfo> {
    raw::garbage()
        .into_iter()
        // SAFETY: `raw::garbage` took one strong reference per entry.
        .map(|o| ObjectInfo(unsafe { LocalRef::from_raw(o, None) }))
        .collect()
}

/// Writes every tracked object and edge as a Graphviz `digraph`.
///
/// - Each node is an object, labelled with its type name and refcount.
/// - Objects held from outside the heap (more strong references than edges
///   from tracked objects: locals, globals, untracked objects) are roots,
///   drawn as green boxes.
/// - Objects not reachable from any root are garbage a collection would
///   free, drawn as red octagons; so are the objects `SAVEALL` kept in
///   [`garbage`] (held only by that list, they are not roots).
/// - Everything else is a plain ellipse.
///
/// The process-wide heap's `sync::gc::write_dot` draws the same things the
/// same way.
/// - Frozen objects ([`freeze`]) get a double border.
///
/// Render with `dot -Tsvg heap.dot -o heap.svg`.
///
/// # Examples
///
/// ```
/// # extern crate ouro_refobj as ouro;
/// # use ouro_macros::Trace;
/// use ouro::{Gc, Trace, gc};
/// use std::cell::RefCell;
///
/// #[derive(Trace)]
/// struct Node { next: RefCell<Option<Gc<Node>>> }
///
/// let root = Gc::new(Node { next: RefCell::new(None) });
/// let mut out = Vec::new();
/// gc::write_dot(&mut out).unwrap(); // or a `File`
/// let dot = String::from_utf8(out).unwrap();
/// assert!(dot.starts_with("digraph"));
/// assert!(dot.contains("Node"));
/// # drop(root);
/// ```
pub fn write_dot(w: impl Write) -> io::Result<()> {
    // Before the snapshot, so that its references are gone from the counts.
    let saved: Vec<usize> = garbage().iter().map(ObjectInfo::address).collect();
    let objs = wrap(infos(raw::snapshot(None, true)));
    let index: HashMap<usize, usize> = objs
        .iter()
        .enumerate()
        .map(|(i, o)| (o.address(), i))
        .collect();
    let nodes: Vec<DotNode> = objs
        .iter()
        .map(|o| DotNode {
            addr: o.address(),
            type_name: o.type_name(),
            strong: o.refcount(),
            frozen: o.0.generation.flatten().is_none(),
            edges: referents_of(o.0.obj)
                .iter()
                .filter_map(|r| index.get(&r.value_address()).copied())
                .collect(),
        })
        .collect();
    ouro_cyclegc::dot::write_dot(&nodes, &saved, w)
}

// The control functions: the engine's, documented here for users of the
// facade (examples with `ouro::` paths).

crate::gc_functions::gc_functions! {
    prelude: "# extern crate ouro_refobj as ouro;\n# use ouro_macros::Trace;\nuse ouro::{Gc, Trace, gc};\nuse std::cell::RefCell;\n\n#[derive(Trace)]\nstruct Node { next: RefCell<Option<Gc<Node>>> }\n",
    empty: "RefCell::new(None)",
    link: "borrow_mut()",
    heap: "this thread's heap",
}

/// Runs a full collection (all generations) and returns the number of
/// unreachable objects it found. A cycle through a non-structural `Trace`
/// impl is not among them: it is counted as uncollectable in
/// [`get_stats`] (see `GenerationStats::uncollectable`).
///
/// Returns 0 without doing anything when called while a collection is
/// already running on this thread (from a finalizer, a `Drop` or a `trace`).
///
/// # Panics
/// If user code (`Drop`, `finalize`, `trace`) panics during the collection,
/// the collection completes, leaves the heap consistent, and then the first
/// panic is resumed here.
///
/// # Examples
///
/// ```
/// # extern crate ouro_refobj as ouro;
/// # use ouro_macros::Trace;
/// use ouro::{Gc, Trace, gc};
/// use std::cell::RefCell;
///
/// #[derive(Trace)]
/// struct Node { next: RefCell<Option<Gc<Node>>> }
///
/// let a = Gc::new(Node { next: RefCell::new(None) });
/// *a.next.borrow_mut() = Some(a.clone()); // a cycle of one
/// drop(a);
/// assert_eq!(gc::collect(), 1);
/// ```
#[inline]
pub fn collect() -> usize {
    control::collect()
}

/// The collection counters (Python's `gc.get_count()`): for generation 0,
/// tracked allocations minus deallocations since its last collection; for
/// generations 1 and 2, collections of the next younger generation since
/// their own last collection.
///
/// # Examples
///
/// ```
/// # extern crate ouro_refobj as ouro;
/// # use ouro_macros::Trace;
/// use ouro::{Gc, Trace, gc};
/// use std::cell::RefCell;
///
/// #[derive(Trace)]
/// struct Node { next: RefCell<Option<Gc<Node>>> }
///
/// gc::disable();
/// gc::collect();
/// let a = Gc::new(Node { next: RefCell::new(None) });
/// assert_eq!(gc::get_count()[0], 1); // one tracked allocation since
/// drop(a);
/// gc::enable();
/// ```
#[inline]
pub fn get_count() -> [usize; 3] {
    control::get_count()
}

/// Registers `f` to be called at the start and the end of every collection
/// of this thread's heap, automatic ones included.
///
/// Inside a callback, `collect()` returns 0 at once (a collection is
/// running), `add_callback` registers from the next phase on (one added at
/// `Start` is called at the `Stop` of the same collection) and
/// `remove_callback` takes effect at once. A panic in a callback is resumed
/// after the collection is complete.
///
/// # Examples
///
/// ```
/// # extern crate ouro_refobj as ouro;
/// # use ouro_macros::Trace;
/// use ouro::gc::{self, Phase};
/// use std::cell::Cell;
/// use std::rc::Rc;
///
/// let stops = Rc::new(Cell::new(0));
/// let seen = stops.clone();
/// let id = gc::add_callback(move |info| {
///     if info.phase == Phase::Stop {
///         seen.set(seen.get() + 1);
///     }
/// });
/// gc::collect();
/// assert_eq!(stops.get(), 1);
/// assert!(gc::remove_callback(id));
/// ```
#[inline]
pub fn add_callback(f: impl FnMut(&CallbackInfo) + 'static) -> CallbackId {
    control::add_callback(f)
}
