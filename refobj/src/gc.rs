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
//!    Unlike CPython's, the count is not clamped at zero when objects die
//!    (on this heap; `ouro::sync`'s counts allocations only): a heap that
//!    is not growing (objects freed as fast as they are made) does not pay
//!    for young collections, and the heap cannot grow by more than the
//!    effective threshold of tracked objects without one. It is not clamped
//!    at any other floor either, on purpose: after a structure of N tracked
//!    objects is freed by reference count, cyclic garbage made afterwards
//!    waits for up to N + threshold allocations before a young collection
//!    looks at it. The memory stays bounded by what the program already
//!    held (the garbage reuses the freed objects' memory, so the tracked
//!    objects never exceed their earlier peak plus the threshold); what
//!    waits is the garbage's `Drop`s. A clamp would cost a comparison on
//!    every drop of a tracked object and would break the live count the
//!    full-collection rule below reads. A program that needs such garbage
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
//! use ouro_refobj::{Gc, Trace, Visitor, gc};
//! use std::cell::RefCell;
//!
//! struct Node { next: RefCell<Option<Gc<Node>>> }
//! impl Trace for Node {
//!     fn trace(&self, v: &mut Visitor<'_>) { self.next.trace(v) }
//! }
//!
//! gc::disable();
//! let a = Gc::new(Node { next: RefCell::new(None) });
//! let b = Gc::new(Node { next: RefCell::new(Some(a.clone())) });
//! assert_eq!(gc::get_referents(&b)[0].downcast::<Node>().map(|n| Gc::ptr_eq(&n, &a)), Some(true));
//! assert_eq!(gc::get_referrers(&a).len(), 1);
//! let objs = gc::get_objects(Some(0));
//! assert!(objs.iter().all(|o| o.type_name().ends_with("Node")));
//! ```

use core::any::TypeId;
use core::fmt;
use core::ptr::NonNull;
use std::collections::HashMap;
use std::io::{self, Write};

pub use ouro_cyclegc::control::{
    add_callback, clear_garbage, collect, collect_generation, disable, enable, freeze, get_count,
    get_debug, get_freeze_count, get_stats, get_threshold, is_enabled, remove_callback, set_debug,
    set_threshold, unfreeze,
};
pub use ouro_cyclegc::{CallbackId, CallbackInfo, DebugFlags, GenerationStats, Phase};
use ouro_cyclegc::{ObjHeader, raw};

use crate::handle::Gc;

/// A tracked object seen through the `gc` module, like an object in the list
/// Python's `gc.get_objects()` returns.
///
/// It holds a strong reference, so the object stays alive while the
/// `ObjectInfo` exists (as a Python list of objects would keep them alive).
pub struct ObjectInfo {
    obj: NonNull<ObjHeader>,
    generation: Option<Option<usize>>,
}

impl ObjectInfo {
    /// # Safety
    /// `obj` is a live tracked object and the caller gives up one counted
    /// strong reference to it.
    unsafe fn from_raw(obj: NonNull<ObjHeader>, generation: Option<Option<usize>>) -> Self {
        ObjectInfo { obj, generation }
    }

    fn header(&self) -> &ObjHeader {
        // SAFETY: the info holds a strong reference, so the object is live.
        unsafe { self.obj.as_ref() }
    }

    /// The type name of the value (`core::any::type_name`).
    pub fn type_name(&self) -> &'static str {
        (self.header().vtable().type_name)()
    }

    /// The address of the object (the same for every handle to it; compare
    /// with `Gc::as_ptr(&h) as usize` minus nothing: it is the header's
    /// address, stable while the object lives).
    pub fn address(&self) -> usize {
        self.obj.as_ptr().addr()
    }

    /// The strong count, not counting the reference this `ObjectInfo` holds.
    pub fn refcount(&self) -> usize {
        self.header().strong() - 1
    }

    /// The generation the object is in, `None` when frozen (or no longer
    /// tracked).
    pub fn generation(&self) -> Option<usize> {
        match self.generation {
            Some(g) if self.header().is_tracked() => g,
            // SAFETY: the object is live.
            _ => unsafe { raw::generation_of(self.obj) },
        }
    }

    /// A handle to the object if its value is a `T`.
    pub fn downcast<T: 'static>(&self) -> Option<Gc<T>> {
        let h = self.header();
        if (h.vtable().type_id)() != TypeId::of::<T>() || !h.is_live() {
            return None;
        }
        h.inc_strong();
        // SAFETY: the value is a `T` (same `TypeId`, and tracked objects are
        // sized `GcBox<T>`s built by `Gc::new`); one reference was counted.
        Some(unsafe { Gc::from_box(self.obj.cast()) })
    }

    fn same(&self, other: NonNull<ObjHeader>) -> bool {
        self.obj == other
    }
}

impl Clone for ObjectInfo {
    fn clone(&self) -> Self {
        self.header().inc_strong();
        ObjectInfo {
            obj: self.obj,
            generation: self.generation,
        }
    }
}

impl Drop for ObjectInfo {
    fn drop(&mut self) {
        // SAFETY: the info owns one strong reference to a tracked object.
        unsafe { raw::release_ref(self.obj) }
    }
}

impl fmt::Debug for ObjectInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectInfo")
            .field("type_name", &self.type_name())
            .field("address", &format_args!("{:#x}", self.address()))
            .field("refcount", &self.refcount())
            .finish()
    }
}

fn infos(raw: Vec<(NonNull<ObjHeader>, Option<usize>)>) -> Vec<ObjectInfo> {
    raw.into_iter()
        // SAFETY: `raw::snapshot` took one strong reference per entry.
        .map(|(o, g)| unsafe { ObjectInfo::from_raw(o, Some(g)) })
        .collect()
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
/// If `generation > 2`.
pub fn get_objects(generation: Option<usize>) -> Vec<ObjectInfo> {
    infos(raw::snapshot(generation, false))
}

fn referents_of(obj: NonNull<ObjHeader>) -> Vec<ObjectInfo> {
    let mut out = Vec::new();
    // SAFETY: the caller keeps `obj` alive; each reported target is live
    // (its handle is borrowed during the report) and gets a new reference.
    unsafe {
        raw::referents(obj, &mut |t| {
            t.as_ref().inc_strong();
            out.push(ObjectInfo::from_raw(t, None));
        })
    };
    out
}

/// The tracked objects `obj` refers to: the edges its `Trace` impl reports
/// that the collector counts (Python's `gc.get_referents`).
pub fn get_referents<T: ?Sized>(obj: &Gc<T>) -> Vec<ObjectInfo> {
    if !Gc::is_tracked(obj) {
        return Vec::new();
    }
    referents_of(obj.obj())
}

/// The tracked objects that refer to `obj` (Python's `gc.get_referrers`).
///
/// This traces every tracked object of the heap: a debugging tool, not for
/// hot paths.
pub fn get_referrers<T: ?Sized>(obj: &Gc<T>) -> Vec<ObjectInfo> {
    let target = obj.obj();
    infos(raw::snapshot(None, true))
        .into_iter()
        .filter(|o| referents_of(o.obj).iter().any(|r| r.same(target)))
        .collect()
}

/// The objects kept by [`DebugFlags::SAVEALL`] (Python's `gc.garbage`): the
/// unreachable ones, and the uncollectable ones (cycles through a
/// non-structural `Trace` impl, see [`GenerationStats::uncollectable`]). They
/// stay alive until [`clear_garbage`].
pub fn garbage() -> Vec<ObjectInfo> {
    raw::garbage()
        .into_iter()
        // SAFETY: `raw::garbage` took one strong reference per entry.
        .map(|o| unsafe { ObjectInfo::from_raw(o, None) })
        .collect()
}

/// Writes every tracked object and edge as a Graphviz `digraph`.
///
/// - Each node is an object, labelled with its type name and refcount.
/// - Objects held from outside the heap (more strong references than edges
///   from tracked objects: locals, globals, untracked objects) are roots,
///   drawn as green boxes.
/// - Objects not reachable from any root are garbage a collection would
///   free, drawn as red octagons.
/// - Everything else is a plain ellipse; frozen objects are dashed.
///
/// Render with `dot -Tsvg heap.dot -o heap.svg`.
pub fn write_dot(mut w: impl Write) -> io::Result<()> {
    let objs = infos(raw::snapshot(None, true));
    let index: HashMap<usize, usize> = objs
        .iter()
        .enumerate()
        .map(|(i, o)| (o.address(), i))
        .collect();
    let mut edges: Vec<(usize, usize)> = Vec::new();
    let mut inner = vec![0usize; objs.len()];
    for (i, o) in objs.iter().enumerate() {
        for r in referents_of(o.obj) {
            if let Some(&j) = index.get(&r.address()) {
                edges.push((i, j));
                inner[j] += 1;
            }
        }
    }
    let refcounts: Vec<usize> = objs.iter().map(|o| o.refcount()).collect();
    let roots: Vec<bool> = (0..objs.len()).map(|i| refcounts[i] > inner[i]).collect();
    let mut reachable = roots.clone();
    let mut stack: Vec<usize> = (0..objs.len()).filter(|&i| roots[i]).collect();
    let mut out_edges = vec![Vec::new(); objs.len()];
    for &(a, b) in &edges {
        out_edges[a].push(b);
    }
    while let Some(i) = stack.pop() {
        for &j in &out_edges[i] {
            if !reachable[j] {
                reachable[j] = true;
                stack.push(j);
            }
        }
    }
    writeln!(w, "digraph ouro {{")?;
    writeln!(w, "  rankdir=LR;")?;
    writeln!(w, "  node [fontname=\"monospace\", fontsize=10];")?;
    for (i, o) in objs.iter().enumerate() {
        let name = o
            .type_name()
            .rsplit("::")
            .next()
            .unwrap_or("?")
            .replace('"', "'");
        let style = if roots[i] {
            "shape=box, style=filled, fillcolor=\"#b7e4a0\""
        } else if !reachable[i] {
            "shape=octagon, style=filled, fillcolor=\"#f4a6a6\""
        } else {
            "shape=ellipse"
        };
        let frozen = if o.generation.flatten().is_none() {
            ", peripheries=2"
        } else {
            ""
        };
        writeln!(
            w,
            "  o{:x} [label=\"{}\\nrefs={}\", {}{}];",
            o.address(),
            name,
            refcounts[i],
            style,
            frozen
        )?;
    }
    for (a, b) in edges {
        writeln!(w, "  o{:x} -> o{:x};", objs[a].address(), objs[b].address())?;
    }
    writeln!(w, "}}")
}
