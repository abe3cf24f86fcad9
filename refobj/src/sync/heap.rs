//! Heaps of one's own (`ouro::sync::Heap`).

use core::fmt;
use std::io;

use ouro_cyclegc::sync::control;

use super::Gc;
use super::gc::{CallbackId, CallbackInfo, DebugFlags, GenerationStats, ObjectInfo, wrap};

/// A heap of its own for [`sync::Gc`](super::Gc) objects, beside the
/// process-wide default heap that [`Gc::new`] uses (as crossbeam-epoch's
/// `Collector::new()` beside its default collector). It has its own
/// generations, thresholds, statistics, debug flags, callbacks, frozen set
/// and `SAVEALL` garbage, and its collections look at its objects only: the
/// methods are those of [`sync::gc`](super::gc), for this heap. Objects go
/// in with [`Gc::new_in`]; their clones, drops and weak handles behave as
/// any other's.
///
/// A handle from one heap's object to another heap's object counts, for
/// the target's heap, as a reference from outside: a cycle that spans two
/// heaps is never collected (by either heap). [`Heap::cross_heap_edges`]
/// counts such handles, so that such a cycle can be found.
///
/// A heap lives until the process ends (about 3 KiB; a process can make
/// 4095). Dropping the `Heap` runs a full collection of it, waits for its
/// drops, and moves the objects still alive in it (and its `SAVEALL`
/// garbage) to the default heap, whose collections find them from then on:
/// objects may outlive the `Heap` they were made in.
///
/// ```
/// # extern crate ouro_refobj as ouro;
/// # use ouro_macros::Trace;
/// use ouro::sync::{Gc, Heap};
/// use ouro::Trace;
/// use std::sync::Mutex;
///
/// #[derive(Trace)]
/// struct Node { next: Mutex<Option<Gc<Node>>> }
///
/// let heap = Heap::new();
/// let a = Gc::new_in(Node { next: Mutex::new(None) }, &heap);
/// *a.next.lock().unwrap() = Some(a.clone()); // a cycle in `heap`
/// drop(a);
/// assert_eq!(heap.collect(), 1);
/// assert_eq!(heap.get_stats()[2].collected, 1);
/// ```
pub struct Heap(control::Heap);

impl Heap {
    /// Makes a new heap, with the default settings.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// let heap = ouro::sync::Heap::new();
    /// assert!(heap.is_enabled());
    /// ```
    ///
    /// # Panics
    ///
    /// If the process made 4095 heaps already (they are never freed).
    pub fn new() -> Heap {
        Heap(control::Heap::new())
    }

    pub(crate) fn engine(&self) -> &control::Heap {
        &self.0
    }

    /// [`gc::collect`](super::gc::collect) for this heap: a full collection
    /// of its objects; returns the number of unreachable ones found.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// let heap = ouro::sync::Heap::new();
    /// assert_eq!(heap.collect(), 0);
    /// ```
    pub fn collect(&self) -> usize {
        self.0.collect()
    }

    /// [`gc::collect_generation`](super::gc::collect_generation) for this
    /// heap.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// let heap = ouro::sync::Heap::new();
    /// assert_eq!(heap.collect_generation(0), 0);
    /// ```
    pub fn collect_generation(&self, generation: usize) -> usize {
        self.0.collect_generation(generation)
    }

    /// [`gc::wait_for_drops`](super::gc::wait_for_drops) for this heap's
    /// collections.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// let heap = ouro::sync::Heap::new();
    /// heap.wait_for_drops();
    /// ```
    pub fn wait_for_drops(&self) {
        self.0.wait_for_drops()
    }

    /// Turns this heap's automatic collection on.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// let heap = ouro::sync::Heap::new();
    /// heap.disable();
    /// heap.enable();
    /// assert!(heap.is_enabled());
    /// ```
    pub fn enable(&self) {
        self.0.enable()
    }

    /// Turns this heap's automatic collection off.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// let heap = ouro::sync::Heap::new();
    /// heap.disable();
    /// assert!(!heap.is_enabled());
    /// ```
    pub fn disable(&self) {
        self.0.disable()
    }

    /// Whether this heap's automatic collection is on.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// assert!(ouro::sync::Heap::new().is_enabled());
    /// ```
    pub fn is_enabled(&self) -> bool {
        self.0.is_enabled()
    }

    /// [`gc::get_count`](super::gc::get_count) for this heap.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// assert_eq!(ouro::sync::Heap::new().get_count(), [0, 0, 0]);
    /// ```
    pub fn get_count(&self) -> [usize; 3] {
        self.0.get_count()
    }

    /// This heap's thresholds (a new heap has the default ones).
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// let heap = ouro::sync::Heap::new();
    /// heap.set_threshold([100, 10, 10]);
    /// assert_eq!(heap.get_threshold(), [100, 10, 10]);
    /// ```
    pub fn get_threshold(&self) -> [usize; 3] {
        self.0.get_threshold()
    }

    /// Sets this heap's thresholds (a threshold0 of 0 turns its automatic
    /// collection off).
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// let heap = ouro::sync::Heap::new();
    /// heap.set_threshold([10, 5, 5]);
    /// assert_eq!(heap.get_threshold(), [10, 5, 5]);
    /// ```
    pub fn set_threshold(&self, thresholds: [usize; 3]) {
        self.0.set_threshold(thresholds)
    }

    /// This heap's statistics per generation.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// let heap = ouro::sync::Heap::new();
    /// heap.collect();
    /// assert_eq!(heap.get_stats()[2].collections, 1);
    /// ```
    pub fn get_stats(&self) -> [GenerationStats; 3] {
        self.0.get_stats()
    }

    /// Sets this heap's debug flags.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::sync::gc::DebugFlags;
    /// let heap = ouro::sync::Heap::new();
    /// heap.set_debug(DebugFlags::SAVEALL);
    /// assert_eq!(heap.get_debug(), DebugFlags::SAVEALL);
    /// ```
    pub fn set_debug(&self, flags: DebugFlags) {
        self.0.set_debug(flags)
    }

    /// This heap's debug flags.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// assert!(ouro::sync::Heap::new().get_debug().is_empty());
    /// ```
    pub fn get_debug(&self) -> DebugFlags {
        self.0.get_debug()
    }

    /// The objects this heap's collections kept under
    /// [`DebugFlags::SAVEALL`].
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// assert!(ouro::sync::Heap::new().garbage().is_empty());
    /// ```
    pub fn garbage(&self) -> Vec<ObjectInfo> {
        wrap(self.0.garbage())
    }

    /// Releases the objects of [`Heap::garbage`].
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// let heap = ouro::sync::Heap::new();
    /// heap.clear_garbage();
    /// assert!(heap.garbage().is_empty());
    /// ```
    pub fn clear_garbage(&self) {
        self.0.clear_garbage()
    }

    /// Moves every object of this heap to its frozen set.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// let heap = ouro::sync::Heap::new();
    /// let a = ouro::sync::Gc::new_in(vec![ouro::sync::Gc::new(())], &heap);
    /// heap.freeze();
    /// assert_eq!(heap.get_freeze_count(), 1);
    /// heap.unfreeze();
    /// assert_eq!(heap.get_freeze_count(), 0);
    /// # drop(a);
    /// ```
    pub fn freeze(&self) {
        self.0.freeze()
    }

    /// Moves this heap's frozen objects to its oldest generation.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// ouro::sync::Heap::new().unfreeze();
    /// ```
    pub fn unfreeze(&self) {
        self.0.unfreeze()
    }

    /// The number of this heap's frozen objects.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// assert_eq!(ouro::sync::Heap::new().get_freeze_count(), 0);
    /// ```
    pub fn get_freeze_count(&self) -> usize {
        self.0.get_freeze_count()
    }

    /// This heap's tracked objects of `generation` (all three for `None`;
    /// frozen objects left out), as [`gc::get_objects`](super::gc::get_objects).
    ///
    /// # Panics
    /// If `generation > 2`.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::sync::{Gc, Heap};
    /// let heap = Heap::new();
    /// let a = Gc::new_in(vec![Gc::new(1)], &heap);
    /// let objs = heap.get_objects(None);
    /// assert_eq!(objs.len(), 1);
    /// assert_eq!(objs[0].address(), Gc::as_ptr(&a) as usize);
    /// ```
    pub fn get_objects(&self, generation: Option<usize>) -> Vec<ObjectInfo> {
        crate::object_info::check_generation("ouro::sync::Heap::get_objects", generation);
        wrap(self.0.get_objects(generation))
    }

    /// This heap's tracked objects whose values hold a handle to `obj`.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::sync::{Gc, Heap};
    /// let heap = Heap::new();
    /// let a = Gc::new(vec![]);
    /// let b: Gc<Vec<Gc<Vec<()>>>> = Gc::new_in(vec![a.clone()], &heap);
    /// let who = heap.get_referrers(&a);
    /// assert_eq!(who[0].address(), Gc::as_ptr(&b) as usize);
    /// ```
    pub fn get_referrers<T>(&self, obj: &Gc<T>) -> Vec<ObjectInfo> {
        wrap(self.0.get_referrers(Gc::header_ptr(obj)))
    }

    /// Writes this heap's object graph as a Graphviz `digraph` (see
    /// [`gc::write_dot`](super::gc::write_dot)).
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// let mut out = Vec::new();
    /// ouro::sync::Heap::new().write_dot(&mut out).unwrap();
    /// assert!(String::from_utf8(out).unwrap().starts_with("digraph"));
    /// ```
    pub fn write_dot(&self, w: impl io::Write) -> io::Result<()> {
        self.0.write_dot(w)
    }

    /// Registers `f` to be called at the start and the end of each of this
    /// heap's collections (as [`gc::add_callback`](super::gc::add_callback)).
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// let heap = ouro::sync::Heap::new();
    /// let n = Arc::new(AtomicUsize::new(0));
    /// let m = n.clone();
    /// let id = heap.add_callback(move |_| { m.fetch_add(1, Ordering::Relaxed); });
    /// heap.collect();
    /// assert_eq!(n.load(Ordering::Relaxed), 2); // start and stop
    /// assert!(heap.remove_callback(id));
    /// ```
    pub fn add_callback(&self, f: impl FnMut(&CallbackInfo) + Send + 'static) -> CallbackId {
        self.0.add_callback(f)
    }

    /// Unregisters one of this heap's callbacks; `false` if it was not
    /// registered.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// let heap = ouro::sync::Heap::new();
    /// let id = heap.add_callback(|_| {});
    /// assert!(heap.remove_callback(id));
    /// assert!(!heap.remove_callback(id));
    /// ```
    pub fn remove_callback(&self, id: CallbackId) -> bool {
        self.0.remove_callback(id)
    }

    /// The handles this heap's tracked objects hold to tracked objects of
    /// other heaps (the default heap included). The target's heap counts
    /// each as a reference from outside, so a cycle through one is never
    /// collected; a count above zero after a collection of both heaps
    /// points at such a cycle. Traces every value of the heap, as
    /// [`Heap::get_referrers`] does.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::sync::{Gc, Heap};
    /// let heap = Heap::new();
    /// let a = Gc::new(vec![Gc::new(0)]); // tracked, in the default heap
    /// let b = Gc::new_in(vec![a.clone()], &heap);
    /// assert_eq!(heap.cross_heap_edges(), 1);
    /// # drop(b);
    /// ```
    pub fn cross_heap_edges(&self) -> usize {
        self.0.cross_heap_edges()
    }
}

impl Default for Heap {
    fn default() -> Self {
        Heap::new()
    }
}

impl fmt::Debug for Heap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
