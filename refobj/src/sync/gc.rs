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
//! Cycles are freed only through values whose `Trace` is structural
//! ([`Trace::STRUCTURAL`](crate::Trace::STRUCTURAL)), as on the thread-local
//! heap, and by the same rule a cycle kept alive only by another impl is
//! reported, never leaked silently: each collection that finds it counts
//! its objects as `uncollectable` (in [`get_stats`], in the `Stop`
//! callback's [`CallbackInfo`] and in the `STATS` log line), names the
//! type in a `log` warning (target `ouro::gc`, once per type in the
//! process) that gives both fixes, and, under [`DebugFlags::SAVEALL`], keeps
//! its objects in [`garbage`]. So `uncollectable` counts the objects a
//! collection found and did not free: the unreachable ones `SAVEALL` kept,
//! and those only non-structural impls keep alive. The report is the
//! collector's reading of edges it does not trust: a thread mutating the
//! cycle meanwhile may make it wrong; nothing is freed on its strength.
//!
//! ```
//! use ouro_refobj::sync::{Gc, gc};
//! use ouro_refobj::{Trace, Visitor};
//! use std::sync::Mutex;
//!
//! struct Node { next: Mutex<Option<Gc<Node>>> }
//! impl Trace for Node {
//!     fn trace(&self, v: &mut Visitor<'_>) { self.next.trace(v) }
//! }
//!
//! let a = Gc::new(Node { next: Mutex::new(None) });
//! let b = Gc::new(Node { next: Mutex::new(Some(a.clone())) });
//! let refs = gc::get_referents(&b);
//! assert!(Gc::ptr_eq(&refs[0].downcast::<Node>().unwrap(), &a));
//! assert!(gc::get_referrers(&a).iter().any(|r| r.downcast::<Node>().is_some_and(|n| Gc::ptr_eq(&n, &b))));
//! ```

use core::fmt;
use std::io;

#[cfg(loom)]
#[doc(hidden)]
pub use ouro_cyclegc::sync::control::set_chunk_for_loom;
pub use ouro_cyclegc::sync::control::{
    add_callback, clear_garbage, collect, collect_generation, disable, enable, freeze, get_count,
    get_debug, get_freeze_count, get_stats, get_threshold, is_enabled, remove_callback, set_debug,
    set_threshold, unfreeze, wait_for_drops,
};
use ouro_cyclegc::sync::{ObjectRef, control};
pub use ouro_cyclegc::{CallbackId, CallbackInfo, DebugFlags, GenerationStats, Phase};

use super::Gc;

/// A tracked object of the process-wide heap seen through the `gc` module.
/// It holds a strong reference, so the object stays alive while it exists.
#[derive(Clone)]
pub struct ObjectInfo(ObjectRef);

impl ObjectInfo {
    /// The type name of the value.
    pub fn type_name(&self) -> &'static str {
        self.0.type_name()
    }

    /// The address of the value (`Gc::as_ptr(&h) as usize` for a handle
    /// `h` to it).
    pub fn address(&self) -> usize {
        self.0.address()
    }

    /// The strong count, not counting the reference this `ObjectInfo` holds.
    pub fn refcount(&self) -> usize {
        self.0.refcount()
    }

    /// The generation (0, 1, 2), `None` when frozen.
    pub fn generation(&self) -> Option<usize> {
        self.0.generation()
    }

    /// A handle to the object if its value is a `T`.
    pub fn downcast<T: 'static>(&self) -> Option<Gc<T>> {
        if self.0.type_id() != core::any::TypeId::of::<T>() {
            return None;
        }
        let r = self.0.clone();
        // SAFETY: the type matches (`TypeId`), and `r` is one counted strong
        // reference that the handle takes over.
        Some(unsafe { Gc::from_raw(r.into_raw()) })
    }
}

impl fmt::Debug for ObjectInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectInfo")
            .field("type_name", &self.type_name())
            .field("address", &format_args!("{:#x}", self.address()))
            .field("refcount", &self.refcount())
            .field("generation", &self.generation())
            .finish()
    }
}

fn wrap(v: Vec<ObjectRef>) -> Vec<ObjectInfo> {
    v.into_iter().map(ObjectInfo).collect()
}

/// Every tracked object of `generation` (every generation and the frozen
/// set for `None`), as `gc.get_objects()`.
pub fn get_objects(generation: Option<usize>) -> Vec<ObjectInfo> {
    wrap(control::get_objects(generation))
}

/// The tracked objects `obj`'s value holds handles to.
pub fn get_referents<T>(obj: &Gc<T>) -> Vec<ObjectInfo> {
    // SAFETY: we hold a strong reference through a shared borrow.
    wrap(unsafe { control::get_referents(Gc::header_ptr(obj)) })
}

/// The tracked objects whose values hold a handle to `obj`.
pub fn get_referrers<T>(obj: &Gc<T>) -> Vec<ObjectInfo> {
    wrap(control::get_referrers(Gc::header_ptr(obj)))
}

/// The objects kept by [`DebugFlags::SAVEALL`] (Python's `gc.garbage`): the
/// unreachable ones, and the uncollectable ones (cycles through a
/// non-structural `Trace` impl, see [`GenerationStats::uncollectable`]). They
/// stay alive until [`clear_garbage`].
pub fn garbage() -> Vec<ObjectInfo> {
    wrap(control::garbage())
}

/// Writes the object graph as a Graphviz `digraph` (see [`crate::gc::write_dot`]).
pub fn write_dot(w: impl io::Write) -> io::Result<()> {
    control::write_dot(w)
}
