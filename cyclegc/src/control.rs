//! The control half of the `gc` module: run collections and tune them.
//! Everything here acts on the calling thread's heap only.

use crate::callbacks::Slot;
use crate::heap::{GENERATIONS, with_heap};
use crate::stats::GenerationStats;

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
/// ```
/// use ouro_cyclegc::control::collect;
/// assert_eq!(collect(), 0); // nothing to collect on a fresh thread
/// ```
pub fn collect() -> usize {
    collect_generation(GENERATIONS - 1)
}

/// Collects generation `generation` and all younger ones (Python's
/// `gc.collect(generation)`); returns the number of unreachable objects
/// found.
///
/// # Panics
/// If `generation > 2`; and as [`collect`] for panics from user code.
pub fn collect_generation(generation: usize) -> usize {
    assert!(
        generation < GENERATIONS,
        "ouro::gc::collect_generation: generation must be 0, 1 or 2, got {generation}"
    );
    let found = with_heap(|h| crate::collect::collect(h, generation).map_or(0, |o| o.unreachable));
    // During thread teardown, the collection may have freed the heap's last
    // objects.
    crate::heap::reap();
    found
}

/// Turns automatic collection on.
pub fn enable() {
    with_heap(|h| h.shell.enable())
}

/// Turns automatic collection off; explicit `collect()` still works.
pub fn disable() {
    with_heap(|h| h.shell.disable())
}

/// Whether automatic collection is on.
pub fn is_enabled() -> bool {
    with_heap(|h| h.shell.is_enabled())
}

/// The collection counters (Python's `gc.get_count()`): for generation 0,
/// tracked allocations minus deallocations since its last collection (0
/// while more were freed than allocated); for generations 1 and 2,
/// collections of the next younger generation since their own last
/// collection.
pub fn get_count() -> [usize; 3] {
    with_heap(|h| h.shell.get_count(h.young_count()))
}

/// The collection thresholds (default `[700, 10, 10]`).
pub fn get_threshold() -> [usize; 3] {
    with_heap(|h| h.shell.get_threshold())
}

/// Sets the collection thresholds. A `threshold0` of 0 disables automatic
/// collection, as in Python. The young threshold in force starts again
/// from `threshold0` (see the `gc` module docs for how it backs off).
pub fn set_threshold(thresholds: [usize; 3]) {
    with_heap(|h| h.shell.set_threshold(thresholds))
}

/// Per-generation statistics since the thread's heap was created.
pub fn get_stats() -> [GenerationStats; 3] {
    with_heap(|h| h.shell.get_stats())
}

/// Moves every tracked object to the permanent generation: frozen objects
/// are never scanned (CPython's answer to copy-on-write after `fork`, and a
/// way to make collections skip a large long-lived heap).
///
/// ```
/// use ouro_cyclegc::control;
/// control::freeze();
/// assert_eq!(control::get_freeze_count(), 0); // nothing tracked yet
/// control::unfreeze();
/// ```
pub fn freeze() {
    with_heap(|h| {
        let perm = crate::list::node(&h.permanent);
        for g in 0..GENERATIONS {
            // SAFETY: the generation lists and the permanent list are well
            // formed; the running collection (if any) owns only its own lists.
            unsafe { crate::list::splice(h.gen_head(g), perm) };
        }
        h.fold_young_count();
    })
}

/// Moves the frozen objects back into the oldest generation.
pub fn unfreeze() {
    with_heap(|h| {
        // SAFETY: as in `freeze`.
        unsafe {
            crate::list::splice(crate::list::node(&h.permanent), h.gen_head(GENERATIONS - 1))
        };
    })
}

/// Number of frozen objects.
pub fn get_freeze_count() -> usize {
    // SAFETY: the permanent list is well formed.
    with_heap(|h| unsafe { crate::list::len(crate::list::node(&h.permanent)) })
}

/// Sets the debugging flags (see `DebugFlags::STATS` for where its lines
/// go).
pub fn set_debug(flags: crate::DebugFlags) {
    with_heap(|h| h.shell.set_debug(flags))
}

/// The debugging flags.
pub fn get_debug() -> crate::DebugFlags {
    with_heap(|h| h.shell.debug())
}

/// Registers `f` to be called at the start and the end of every collection
/// of this thread's heap, automatic ones included.
///
/// Inside a callback, `collect()` returns 0 at once (a collection is
/// running), `add_callback` registers from the next phase on (one added at
/// `Start` is called at the `Stop` of the same collection) and
/// `remove_callback` takes effect at once. A panic in a callback is resumed
/// after the collection is complete.
pub fn add_callback(f: impl FnMut(&crate::CallbackInfo) + 'static) -> crate::CallbackId {
    with_heap(|h| h.callbacks.add(Box::new(f)))
}

/// Unregisters a callback; `false` if it was not registered.
pub fn remove_callback(id: crate::CallbackId) -> bool {
    let (found, f) = with_heap(|h| h.callbacks.remove(id));
    // Dropped once the heap is no longer borrowed: what it captured may be
    // the heap's last objects, and then the heap frees itself (during
    // thread teardown).
    drop(f);
    crate::heap::reap();
    found
}

/// Releases the objects kept by `DebugFlags::SAVEALL`. Those still in
/// cycles are freed by the next collection (if `SAVEALL` is off by then).
pub fn clear_garbage() {
    let saved = with_heap(|h| core::mem::take(&mut *h.garbage.borrow_mut()));
    for obj in saved {
        // SAFETY: each entry holds one strong reference (taken when saved).
        unsafe { crate::raw::release_ref(obj) };
    }
}
