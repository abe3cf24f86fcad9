//! The collection: CPython's trial deletion, in the order of
//! `Modules/gcmodule.c` (3.9+), over ouro's headers.
//!
//! Collecting generation `g`:
//! 1. the lists of generations `0..=g` are moved onto the `young` list;
//! 2. `update_refs`: every young object is marked `SCANNING` and its edge
//!    count (kept in the `prev` link, which is not needed while scanning:
//!    the list is walked through `next` only) is set to zero. (Folding
//!    this pass into step 3 for a full collection, marking each object as
//!    the walk or its first edge reaches it, saves a pass over the heap,
//!    but leaves the objects not reached yet unprotected while `trace`s
//!    run: a `trace` whose `Structural` promise is false could then free
//!    one the walk is about to read. Marked first, such an object is only
//!    ever freed by the collection.);
//! 3. `subtract_refs`: `trace` is called on each young object whose `trace`
//!    is structural, and every accepted edge to a young object adds one to
//!    the target's edge count. The edges of the other objects are not
//!    counted (they act as references from outside), so no user code runs
//!    in this step: see "Only structural `trace`s are counted" in `visitor`;
//! 4. `move_unreachable`: an object whose strong count is above its edge
//!    count is referenced from outside the young set; it and everything it
//!    reaches (found by tracing again, with every `trace`) survive, the rest
//!    is moved to the `unreachable` list. An object moved there and reached
//!    later goes back right after the object reaching it (depth first, where
//!    CPython puts it at the tail), so survivors stay in an order the next
//!    collection walks with few such moves and few cache misses. The walk
//!    restores the `prev` links as it goes;
//! 5. `mark_unreachable`: weak references to the unreachable objects are
//!    cleared and their values marked dead, before more user code runs;
//! 6. `report_uncollectable`, only if step 3 left objects untraced: steps 2
//!    to 4 again over the survivors, counting every edge; what this finds
//!    unreachable is kept alive by non-structural `trace`s only. It is
//!    reported (CPython's "uncollectable"), not freed;
//! 7. survivors move to generation `g + 1`;
//! 8. finalizers of the unreachable objects run (once per object), and the
//!    set is checked again: if a finalizer made any of it reachable, all of
//!    it survives this time;
//! 9. otherwise every value is dropped, which drops the handles inside and
//!    breaks the cycles, and the memory is freed where no handle is left.
//!
//! The edge count is compared against the strong count *at the time of the
//! check*, not a snapshot: a handle cloned by user code while the scan runs
//! adds to both sides.
//!
//! User code (`trace`, `finalize`, `Drop`) runs at several points. None of it
//! can unlink or free an object of the working set: a decref to zero leaves
//! `SCANNING`/`UNREACHABLE` objects alone, and the collector looks at their
//! counts when it lets go of them. A panic in user code is caught, the heap is
//! put back in order, and the first panic is resumed when the collection is
//! over. A panic from `trace` aborts the collection (everything survives),
//! or the report (nothing is reported).

use crate::callbacks::Slot;
use core::ptr::{self, NonNull};
use std::panic;
use std::time::{Duration, Instant};

use bumpalo::collections::Vec as BumpVec;

use crate::debug::{CallbackInfo, DebugFlags, Found, Phase};
use crate::header::{
    DEAD, EXCLUSIVE, FINALIZED, GcLinks, HOOKED, ObjHeader, SCANNING, TRACKED, UNREACHABLE, VTable,
    WEAK_CLEARED,
};
use crate::heap::{GENERATIONS, Heap};
use crate::list::{self, Link};
use crate::visitor::{Mode, TypeName, Visitor};

/// Bit 0 of the scan word: reached from a surviving object.
const REACHED: usize = 1;

/// State shared with the visitor during `move_unreachable`.
pub(crate) struct Scan {
    /// Where the next object reached on the unreachable list goes back:
    /// right after the object being traced, or after the last one put back
    /// while tracing it (see `reach_unreachable`).
    insert_after: core::cell::Cell<Link>,
}

#[inline(always)]
fn scan_word(l: Link) -> usize {
    // SAFETY: `l` is the links of a live object in the working set.
    unsafe { l.as_ref() }.prev.get().addr()
}

#[inline(always)]
fn set_scan_word(l: Link, v: usize) {
    // SAFETY: as in `scan_word`. The word is a count, not a pointer: it is
    // stored without provenance and replaced by a real pointer before the
    // link is used as one again.
    unsafe { l.as_ref() }
        .prev
        .set(ptr::without_provenance_mut(v))
}

/// Visitor callback in `subtract_refs`.
#[inline(always)]
pub(crate) fn subtract_edge(target: NonNull<ObjHeader>) {
    // SAFETY: `Visitor::visit_handle`'s caller keeps `target` alive.
    let h = unsafe { target.as_ref() };
    if h.flags() & SCANNING == 0 {
        return;
    }
    // SAFETY: working-set objects are tracked, so they have links.
    let l = unsafe { ObjHeader::links(target) };
    set_scan_word(l, scan_word(l) + 2);
}

/// Visitor callback in `move_unreachable` (inlined into every `trace`: the
/// rare move back from the unreachable list is a call).
#[inline(always)]
pub(crate) fn reach_edge(scan: &Scan, target: NonNull<ObjHeader>) {
    // SAFETY: as in `subtract_edge`.
    let f = unsafe { target.as_ref() }.flags();
    if f & SCANNING == 0 {
        return;
    }
    // SAFETY: as in `subtract_edge`.
    let l = unsafe { ObjHeader::links(target) };
    if f & UNREACHABLE != 0 {
        reach_unreachable(scan, target, l);
    } else {
        let v = scan_word(l);
        if v & REACHED == 0 {
            set_scan_word(l, v | REACHED);
        }
    }
}

/// `reach_edge` for an object on the unreachable list: tentatively
/// unreachable, but reached after all, it goes back to `young` right after
/// the object being traced (after those put back before it by the same
/// `trace`, in the order they are reached), so the walk reaches it next and
/// traces it: a depth-first walk, not CPython's breadth-first one (which
/// puts it back at the tail). The survivors then stay in the order they are
/// reached, each after what reaches it: the next collection finds them
/// reachable on the first visit, and a structure built from its root down
/// stays in its allocation (address) order, which later passes over the
/// list walk with few cache misses.
///
/// Objects on the unreachable list have real `prev` pointers; the `prev`
/// words of the nodes of `young` after the cursor hold scan words and are
/// left alone (the walk sets the head's `prev` when it ends).
#[inline(never)]
fn reach_unreachable(scan: &Scan, target: NonNull<ObjHeader>, l: Link) {
    let at = scan.insert_after.get();
    // SAFETY: both lists are well formed at this point (the unreachable
    // list through both links, `young` through `next`); `target` is alive
    // (as in `subtract_edge`) and `l` its links; `at` is a node of `young`
    // (the object being traced, or one put back after it).
    unsafe {
        list::unlink(l);
        list::set_next(l, list::next(at));
        list::set_next(at, l);
        target.as_ref().clear(UNREACHABLE);
    }
    set_scan_word(l, REACHED);
    scan.insert_after.set(l);
}

/// Calls the object's `trace` with `v` (one visitor serves a whole pass).
#[inline(always)]
fn trace_object(obj: NonNull<ObjHeader>, v: &mut Visitor<'_>) {
    // SAFETY: callers pass live objects of the working set.
    let vt = unsafe { obj.as_ref() }.vtable();
    // SAFETY: `obj` is live and its value is initialised (not DEAD: dead
    // objects are never on a list).
    v.with_object(obj, |v| unsafe { (vt.trace)(obj, v) });
    if v.take_rejected() {
        note_rejected(vt);
    }
}

/// Notes that a `trace` of `vt`'s type reported an edge from memory its
/// object does not own (ignored: see `visitor`), to be named in a warning
/// when the collection ends, once per type and thread.
#[cold]
#[inline(never)]
fn note_rejected(vt: &VTable) {
    crate::heap::with_heap(|heap| {
        let id = (vt.type_id)();
        let mut seen = heap.rejected.borrow_mut();
        if !seen.contains(&id) {
            seen.push(id);
            heap.rejected_pending.borrow_mut().push(vt.type_name);
        }
    });
}

/// Names a type whose `trace` reported a handle the collector could not
/// count (see `note_rejected`), for both heaps.
#[cold]
pub(crate) fn warn_rejected(type_name: &str) {
    log::warn!(
        target: "ouro::gc",
        "the `Trace` impl of `{type_name}` reported a handle (or a container of handles) that \
         is not inside the value it traces: the cycle collector ignores such edges, so a cycle \
         through them is never collected. Report only what the value owns (its fields and \
         what ouro's containers hold): a handle kept in an `Rc`, a global or a local is not \
         owned; hold it in the value (or a `Vec`, `Box`, `RefCell`... of it) instead, and \
         prefer `#[derive(Trace)]`. This warning is shown once per type and thread."
    );
}

/// Iterates a list through `next`, reading the next node before `f` runs.
/// The caller guarantees no node is unlinked during the walk except by `f`
/// on the current node.
unsafe fn for_each(head: Link, mut f: impl FnMut(NonNull<ObjHeader>)) {
    // SAFETY: forwarded contract.
    unsafe {
        let mut cur = list::next(head);
        while cur != head {
            let nx = list::next(cur);
            f(GcLinks::header(cur));
            cur = nx;
        }
    }
}

fn update_refs(young: Link) -> usize {
    let mut n = 0;
    // SAFETY: `young` is a well-formed list of tracked objects.
    unsafe {
        for_each(young, |obj| {
            n += 1;
            let h = obj.as_ref();
            let l = ObjHeader::links(obj);
            h.set(SCANNING);
            // `&mut T` from `Gc::get_mut` can only still be alive while the
            // handle is the only reference of any kind.
            if h.has(EXCLUSIVE) && !(h.strong() == 1 && h.weak() == 0) {
                h.clear(EXCLUSIVE);
            }
            set_scan_word(l, 0);
        })
    }
    n
}

use crate::panics::{Panic, catch, keep_first};

/// [`run`] with a panic slot of its own (a `Start` callback's panic is no
/// `trace` panic: the collection goes on as usual).
fn run_alone(
    heap: &Heap,
    generation: usize,
    old: usize,
    automatic: Option<bool>,
    scratch: &bumpalo::Bump,
) -> (Outcome, Option<Panic>) {
    let mut panic = None;
    let outcome = run(heap, generation, old, automatic, scratch, &mut panic);
    (outcome, panic)
}

/// Which reported edges trial deletion subtracts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Trust {
    /// Only those of a structural `trace` (`VTable::structural`): the
    /// collection, whose verdict frees memory.
    Structural,
    /// Every edge: the report, which frees nothing.
    All,
}

/// What `subtract_refs` did.
struct Subtracted {
    /// The payload of a `trace` that panicked.
    panic: Option<Panic>,
    /// A non-structural object was left untraced (its edges count as
    /// references from outside), or a non-structural value inside one
    /// (a trait object's: see `Visitor::enter_unstructural`).
    untrusted: bool,
}

/// Counts the edges inside the young set: those `trust` accepts. An object
/// whose `trace` is not structural is not traced (with `Trust::Structural`),
/// so no user code runs here: see the module docs of `visitor`.
///
/// Objects marked `EXCLUSIVE` (a `&mut T` from `Gc::get_mut` may be alive)
/// are not traced at first. While such a borrow is alive, the one handle is
/// in memory the collector cannot trace (a local, or a mutably borrowed
/// `RefCell`/`Mutex`, or the value of another exclusive object), so its
/// strong count stays above its edge count. Once the edges explain the whole
/// count, the borrow must be over: the flag is cleared and the object traced,
/// which can prove the same for objects it points to.
fn subtract_refs<'b>(
    young: Link,
    scratch: &'b bumpalo::Bump,
    trust: Trust,
    mut inner: Option<&mut BumpVec<'b, (NonNull<ObjHeader>, TypeName)>>,
) -> Subtracted {
    let mut untrusted = false;
    let panic = catch(|| {
        let mut v = Visitor::new(Mode::Subtract, Some(scratch));
        if trust == Trust::All {
            v.set_trust_all();
        }
        let mut count = |obj: NonNull<ObjHeader>, v: &mut Visitor<'_>| {
            // SAFETY: working-set objects stay alive during the collection.
            if trust == Trust::All || unsafe { obj.as_ref() }.vtable().structural {
                trace_object(obj, v);
                // A value inside whose `trace` is not structural (a trait
                // object's) was left out (or, for the report, traced).
                if let Some(name) = v.take_unstructural() {
                    untrusted = true;
                    if let Some(inner) = &mut inner {
                        inner.push((obj, name));
                    }
                }
            } else {
                untrusted = true;
            }
        };
        let mut skipped = BumpVec::new_in(scratch);
        // SAFETY: `young` is a list of working-set objects; `trace` cannot
        // unlink them (they are `SCANNING`).
        unsafe {
            for_each(young, |obj| {
                if obj.as_ref().has(EXCLUSIVE) {
                    skipped.push(obj);
                } else {
                    count(obj, &mut v);
                }
            })
        }
        let mut changed = true;
        while changed {
            changed = false;
            for &obj in skipped.iter() {
                // SAFETY: working-set objects stay alive during the collection.
                let h = unsafe { obj.as_ref() };
                // SAFETY: as above; tracked objects have links.
                let edges = scan_word(unsafe { ObjHeader::links(obj) }) >> 1;
                if h.has(EXCLUSIVE) && h.strong() <= edges {
                    h.clear(EXCLUSIVE);
                    count(obj, &mut v);
                    changed = true;
                }
            }
        }
    });
    Subtracted { panic, untrusted }
}

/// Splits `young` into survivors (left on `young`, `prev` links restored,
/// `SCANNING` cleared) and the unreachable set. Returns the number of
/// survivors. `abort` makes every object survive without tracing.
///
/// `structural`: every `trace` the walk can run is structural (the
/// subtraction traced every object and met no non-structural value), so
/// the walk runs no user code: nothing can drop a handle or unlink an
/// object while it runs, and each survivor is let go of as soon as it is
/// walked, which saves `restore_young`'s pass over the survivors.
///
/// # Safety
/// `young` holds the working set, marked by `update_refs` and counted by
/// `subtract_refs`; `unreachable` is an empty list; `structural` only as
/// described.
unsafe fn move_unreachable<'b>(
    young: Link,
    unreachable: Link,
    scratch: &'b bumpalo::Bump,
    pending: &mut BumpVec<'b, NonNull<ObjHeader>>,
    panic: &mut Option<Panic>,
    structural: bool,
) -> usize {
    let scan = Scan {
        insert_after: core::cell::Cell::new(young),
    };
    let mut v = Visitor::new(Mode::Reachable(&scan), Some(scratch));
    let mut walk = Walk {
        prev: young,
        survivors: 0,
        aborted: panic.is_some(),
        release: structural,
    };
    // One `catch_unwind` for the whole walk (not one per object): if a
    // `trace` panics, the walk resumes at the same object with `aborted`
    // set, and everything survives.
    loop {
        let p = catch(|| {
            // SAFETY: `young` holds working-set objects linked through
            // `next`; `walk.prev` is the last node walked (or the head);
            // `release` as the caller promised.
            unsafe { walk.run(young, unreachable, &scan, &mut v, pending) }
        });
        match p {
            None => break,
            Some(p) => {
                keep_first(panic, Some(p));
                walk.aborted = true;
                // SAFETY: the lists are consistent between two steps of the
                // walk: a panic can only come from `trace`, which runs
                // before the current node is moved.
                unsafe {
                    // Everything tentatively unreachable survives too.
                    list::set_prev(young, gc_tail_after(walk.prev, young));
                    list::splice(unreachable, young);
                    for_each(young, |o| o.as_ref().clear(UNREACHABLE));
                }
            }
        }
    }
    if !walk.release || walk.aborted {
        // SAFETY: the walk is over; `young` is linked through `next`. The
        // survivors the walk let go of already are restored again, to the
        // same links (it is idempotent: `queue_if_dead` took a reference
        // to those it queued).
        unsafe { restore_young(young, pending) };
    }
    walk.survivors
}

/// After the walk: restores the `prev` links of the survivors, lets go of
/// them (clears `SCANNING`), and queues those whose last handle went away
/// meanwhile. Runs no user code.
///
/// # Safety
/// `young` is linked through `next`; its nodes' `prev` words may hold scan
/// words or stale pointers.
unsafe fn restore_young(young: Link, pending: &mut BumpVec<'_, NonNull<ObjHeader>>) {
    // SAFETY: forwarded contract.
    unsafe {
        let mut prev = young;
        let mut cur = list::next(young);
        while cur != young {
            list::set_prev(cur, prev);
            let obj = GcLinks::header(cur);
            obj.as_ref().clear(SCANNING);
            queue_if_dead(pending, obj);
            prev = cur;
            cur = list::next(cur);
        }
        list::set_prev(young, prev);
    }
}

/// Queues `obj` for release if no handle is left; the queue owns one counted
/// reference to it, so nothing can free it before the queue is processed.
///
/// # Safety
/// `obj` is live and no longer protected by the collector.
unsafe fn queue_if_dead(pending: &mut BumpVec<'_, NonNull<ObjHeader>>, obj: NonNull<ObjHeader>) {
    // SAFETY: caller contract.
    let h = unsafe { obj.as_ref() };
    if h.strong() == 0 {
        h.inc_strong();
        pending.push(obj);
    }
}

/// The state of `move_unreachable`'s walk, kept outside `catch_unwind`.
struct Walk {
    /// The last node kept on `young` (its `prev` is restored).
    prev: Link,
    survivors: usize,
    /// A `trace` panicked: every remaining object survives, untraced.
    aborted: bool,
    /// No user code runs in the walk: each survivor is let go of (links
    /// restored, `SCANNING` cleared) as soon as it is walked. An object let
    /// go of is no longer `SCANNING`, so `reach_edge` leaves it alone, and
    /// the nodes not yet walked keep their scan words.
    release: bool,
}

impl Walk {
    /// # Safety
    /// As `move_unreachable`: the `prev` words of the nodes after
    /// `self.prev` hold scan words, or real pointers for nodes that came
    /// back from `unreachable`; `release` only if no `trace` the walk can
    /// run is user code.
    unsafe fn run(
        &mut self,
        young: Link,
        unreachable: Link,
        scan: &Scan,
        v: &mut Visitor<'_>,
        pending: &mut BumpVec<'_, NonNull<ObjHeader>>,
    ) {
        // Neither changes during one run (kept in registers across the
        // calls to `trace`).
        let (aborted, release) = (self.aborted, self.release);
        // SAFETY: forwarded contract.
        unsafe {
            let mut gc = list::next(self.prev);
            while gc != young {
                let obj = GcLinks::header(gc);
                let h = obj.as_ref();
                let w = scan_word(gc);
                let reachable = aborted || w & REACHED != 0 || h.strong() > (w >> 1);
                if reachable {
                    if !aborted && !h.has(EXCLUSIVE) {
                        scan.insert_after.set(gc);
                        trace_object(obj, v);
                    }
                    // It stays `SCANNING` (protected, its scan word in
                    // `prev`) until the walk is over: a later `trace` could
                    // otherwise drop its last handle and unlink it from
                    // under the walk. `restore_young` lets go of it, unless
                    // no `trace` here is user code: then nothing can.
                    self.survivors += 1;
                    if release {
                        list::set_prev(gc, self.prev);
                        h.clear(SCANNING);
                        queue_if_dead(pending, obj);
                    }
                    self.prev = gc;
                } else {
                    list::set_next(self.prev, list::next(gc));
                    list::push_back(unreachable, gc);
                    h.set(UNREACHABLE);
                }
                gc = list::next(self.prev);
            }
            list::set_prev(young, self.prev);
        }
    }
}

/// The tail of `young` when the walk is at `gc`: the last node reachable
/// through `next` (the head's `prev` is not kept up to date during the walk:
/// see `reach_unreachable`).
unsafe fn gc_tail_after(gc: Link, young: Link) -> Link {
    // SAFETY: forwarded contract; walking `next` from a live node of `young`.
    unsafe {
        let mut cur = gc;
        while list::next(cur) != young {
            cur = list::next(cur);
        }
        cur
    }
}

/// Ends the collector's hold on an object of the unreachable set (revived,
/// saved or destroyed), clearing `also` with `UNREACHABLE`. From here on the
/// last decref (`Heap::release`) or weak drop (`Heap::release_weak`) frees
/// it; both rely on it carrying neither `SCANNING` nor `UNREACHABLE`.
fn let_go(h: &ObjHeader, also: usize) {
    debug_assert!(
        !h.has(SCANNING),
        "ouro: an object left the collector while marked as scanned"
    );
    h.clear(UNREACHABLE | also);
}

/// Checks whether finalizers made any unreachable object reachable again:
/// recounts the edges inside the set (those of structural `trace`s only, as
/// `subtract_refs`: no user code runs); an object with more strong
/// references than edges from the set is referenced from outside.
fn resurrected(heap: &Heap, scratch: &bumpalo::Bump, panic: &mut Option<Panic>) -> bool {
    let unreachable = list::node(&heap.unreachable);
    // SAFETY: the unreachable list is well formed and protected; the walk
    // uses `next` only while the `prev` words hold counts, and restores them.
    unsafe {
        for_each(unreachable, |obj| {
            obj.as_ref().set(SCANNING);
            set_scan_word(ObjHeader::links(obj), 0);
        });
        let p = catch(|| {
            let mut v = Visitor::new(Mode::Subtract, Some(scratch));
            for_each(unreachable, |obj| {
                if obj.as_ref().vtable().structural {
                    trace_object(obj, &mut v)
                }
            });
        });
        let mut any = p.is_some();
        keep_first(panic, p);
        let mut prev = unreachable;
        let mut cur = list::next(unreachable);
        while cur != unreachable {
            let obj = GcLinks::header(cur);
            let h = obj.as_ref();
            if h.strong() > scan_word(cur) >> 1 {
                any = true;
            }
            h.clear(SCANNING);
            list::set_prev(cur, prev);
            prev = cur;
            cur = list::next(cur);
        }
        list::set_prev(unreachable, prev);
        any
    }
}

/// What one collection did.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Outcome {
    /// Objects scanned (the young set).
    pub(crate) scanned: usize,
    /// Objects found unreachable.
    pub(crate) unreachable: usize,
    /// Objects whose values were dropped.
    pub(crate) collected: usize,
    /// Unreachable objects kept in `garbage` (`DebugFlags::SAVEALL`).
    pub(crate) saved: usize,
    /// Survivors that only the edges of non-structural `trace`s keep alive
    /// (`report_uncollectable`): not freed, reported.
    pub(crate) reported: usize,
}

impl Outcome {
    /// What the statistics and the callbacks count as collected: freed, or
    /// kept by `SAVEALL` (as CPython counts them).
    fn collected_or_saved(&self) -> usize {
        self.collected + self.saved
    }

    /// What the collection found and could not free (`uncollectable` in
    /// the statistics and the callbacks).
    fn uncollectable(&self) -> usize {
        self.reported
    }
}

/// Collects generation `generation` (and the younger ones). Returns `None`
/// when a collection is already running on this thread.
pub(crate) fn collect(heap: &Heap, generation: usize) -> Option<Outcome> {
    collect_into(
        heap,
        generation,
        (generation + 1).min(GENERATIONS - 1),
        None,
    )
}

/// `collect`, with the survivors moved to generation `old`. `automatic`:
/// the schedule chose it (only those adapt the schedule's backoff), and
/// says whether it examines its objects (`schedule::examines`; if not,
/// generation 0 is promoted unexamined).
fn collect_into(
    heap: &Heap,
    generation: usize,
    old: usize,
    automatic: Option<bool>,
) -> Option<Outcome> {
    assert!(
        generation < GENERATIONS,
        "ouro: generation {generation} out of range 0..{GENERATIONS}"
    );
    if heap.collecting.get() {
        return None;
    }
    heap.collecting.set(true);
    // Whatever happens below, the collector is not left marked as running
    // (a stuck flag would turn every later collection into a no-op).
    struct Running<'a>(&'a Heap);
    impl Drop for Running<'_> {
        fn drop(&mut self) {
            self.0.collecting.set(false);
        }
    }
    let running = Running(heap);
    let mut panic: Option<Panic> = None;
    // Nothing below costs anything unless callbacks or STATS are in use.
    let callbacks = !heap.callbacks.is_empty();
    let stats = heap.shell.debug.get().contains(DebugFlags::STATS);
    let started = (callbacks || stats).then(Instant::now);
    if callbacks {
        let info = CallbackInfo {
            phase: Phase::Start,
            generation,
            collected: 0,
            uncollectable: 0,
            duration: Duration::ZERO,
        };
        keep_first(&mut panic, heap.callbacks.invoke(|f| f(&info)));
    }
    let mut scratch = heap.scratch.borrow_mut();
    // Apart: `run` takes any panic it holds for a `trace`'s (all survive).
    let (outcome, run_panic) = run_alone(heap, generation, old, automatic, &scratch);
    keep_first(&mut panic, run_panic);
    scratch.reset();
    drop(scratch);
    count(heap, generation, &outcome);
    if let Some(t) = started {
        let duration = t.elapsed();
        if stats {
            // A user `log::Log` may panic: caught like any user code.
            let p = catch(|| {
                if automatic == Some(false) {
                    crate::debug::log_pass("gc", old, duration);
                } else {
                    crate::debug::log_stats(
                        "gc",
                        generation,
                        outcome.scanned,
                        outcome.unreachable,
                        outcome.collected_or_saved(),
                        outcome.uncollectable(),
                        duration,
                    );
                }
            });
            keep_first(&mut panic, p);
        }
        if callbacks {
            let info = CallbackInfo {
                phase: Phase::Stop,
                generation,
                collected: outcome.collected_or_saved(),
                uncollectable: outcome.uncollectable(),
                duration,
            };
            keep_first(&mut panic, heap.callbacks.invoke(|f| f(&info)));
        }
    }
    warn_rejected_pending(heap, &mut panic);
    drop(running);
    heap.drain_trash();
    if let Some(p) = panic {
        panic::resume_unwind(p);
    }
    Some(outcome)
}

/// Adds a collection of generation `generation` to its statistics.
fn count(heap: &Heap, generation: usize, outcome: &Outcome) {
    heap.shell.record(
        generation,
        outcome.collected_or_saved(),
        outcome.uncollectable(),
    );
}

/// Warns about the types whose edges were rejected since the last time.
fn warn_rejected_pending(heap: &Heap, panic: &mut Option<Panic>) {
    let rejected = core::mem::take(&mut *heap.rejected_pending.borrow_mut());
    for type_name in rejected {
        // A user `log::Log` may panic: caught like any user code.
        keep_first(panic, catch(|| warn_rejected(type_name())));
    }
}

fn run(
    heap: &Heap,
    generation: usize,
    old: usize,
    automatic: Option<bool>,
    scratch: &bumpalo::Bump,
    panic: &mut Option<Panic>,
) -> Outcome {
    let young = list::node(&heap.young);
    let unreachable = list::node(&heap.unreachable);
    count_collection(heap, generation);
    if automatic == Some(false) {
        // A pass (`schedule::examines`): generation 0 goes to `old` (the
        // middle generation) as it is, unexamined. It runs no user code and
        // finds nothing.
        debug_assert_eq!(generation, 0, "only young collections pass");
        // SAFETY: both are well-formed generation lists, and no
        // collection is running (`collecting` is set for this one).
        unsafe { list::splice(heap.gen_head(0), heap.gen_head(old)) };
        heap.shell.pass();
        return Outcome::default();
    }
    let automatic = automatic.is_some();
    let mut pending = BumpVec::new_in(scratch);
    let trial = trial_deletion(heap, generation, scratch, &mut pending, panic);
    let (survivors, untrusted) = (trial.survivors, trial.untrusted);
    let mut outcome = Outcome {
        scanned: trial.scanned,
        ..Outcome::default()
    };
    // Read once: the marking depends on it, and user code below may change it.
    let debug = heap.shell.debug.get();
    let saveall = debug.contains(DebugFlags::SAVEALL);
    // The objects `COLLECTABLE` / `UNCOLLECTABLE` name, logged at the end.
    let mut found = BumpVec::new_in(scratch);
    // SAFETY: the unreachable list is well formed and all its objects are
    // protected (`UNREACHABLE`) until they are saved, revived or destroyed.
    let marked = unsafe { mark_unreachable(unreachable, saveall, &mut outcome) };
    if debug.contains(DebugFlags::COLLECTABLE) {
        // Named as found, before finalizers run (as CPython does: a set a
        // finalizer resurrects is named too).
        // SAFETY: as for `mark_unreachable`.
        unsafe { for_each(unreachable, |o| found.push(found_line(o, true))) };
    }
    // Not after an aborted trial deletion (a `trace` panicked, and every
    // object survived unexamined).
    if untrusted && panic.is_none() {
        let log = debug
            .contains(DebugFlags::UNCOLLECTABLE)
            .then_some(&mut found);
        outcome.reported = report_uncollectable(heap, saveall, scratch, &mut pending, panic, log);
    }
    // Where the survivors go, now that the collection knows what it found
    // (`schedule::survivors_into`): the batches passes left in the middle
    // generation go along into the oldest one first (they are older), or
    // the survivors join them there. A `trace` that panicked leaves them
    // there too: the next middle collection examines them.
    let (old, take_middle) = if automatic {
        let found = outcome.unreachable + usize::from(panic.is_some());
        crate::schedule::survivors_into(old, generation, found)
    } else {
        (old, false)
    };
    // SAFETY: `young` is a well-formed list again after `move_unreachable`
    // (and after the report, which puts back everything it takes); the
    // generation lists are well formed, and nothing else touches them while
    // the collection runs.
    unsafe {
        if take_middle {
            list::splice(heap.gen_head(1), heap.gen_head(old));
        }
        list::splice(young, heap.gen_head(old));
    }
    // SAFETY: as for `mark_unreachable`; marked by it.
    unsafe {
        dispose_unreachable(
            heap,
            old,
            marked,
            scratch,
            &mut pending,
            panic,
            &mut outcome,
        )
    };
    // Survivors and revived objects stay; saved ones stay too.
    let kept = survivors + (outcome.unreachable - outcome.collected);
    count_for_schedule(heap, generation, kept, &outcome, automatic);

    // Objects whose last handle went away while they were protected: the
    // queue holds one reference to each, released now.
    for &obj in pending.iter() {
        // SAFETY: each queued object is live (the queue's reference) and no
        // longer protected; dropping that reference frees it through the
        // normal path if it is the last one.
        let p = catch(|| unsafe { crate::raw::release_ref(obj) });
        keep_first(panic, p);
    }
    // A user `log::Log` may panic: caught like any user code.
    if !found.is_empty() {
        keep_first(panic, catch(|| found.iter().for_each(|f| f.log())));
    }
    outcome
}

/// What trial deletion left: how many objects it scanned, how many
/// survived, and whether a non-structural `trace` was met (the report pass
/// then looks for cycles kept only by such edges).
struct Trial {
    scanned: usize,
    survivors: usize,
    untrusted: bool,
}

/// Steps 1 to 4: merges generations `0..=generation` into `young`, counts
/// the references from outside (`update_refs`, `subtract_refs`) and moves
/// what nothing outside reaches to the unreachable list.
fn trial_deletion<'b>(
    heap: &Heap,
    generation: usize,
    scratch: &'b bumpalo::Bump,
    pending: &mut BumpVec<'b, NonNull<ObjHeader>>,
    panic: &mut Option<Panic>,
) -> Trial {
    let young = list::node(&heap.young);
    // SAFETY: the generation lists are well formed; nothing else touches
    // `young` while the collection runs.
    unsafe {
        for g in 0..=generation {
            list::splice(heap.gen_head(g), young);
        }
    }
    let scanned = update_refs(young);
    let counted = subtract_refs(young, scratch, Trust::Structural, None);
    keep_first(panic, counted.panic);
    // SAFETY: `young` was just marked and counted; `unreachable` is empty
    // between collections.
    let survivors = unsafe {
        move_unreachable(
            young,
            list::node(&heap.unreachable),
            scratch,
            pending,
            panic,
            !counted.untrusted,
        )
    };
    Trial {
        scanned,
        survivors,
        untrusted: counted.untrusted,
    }
}

/// The counters, as CPython keeps them: the next generation counts this
/// collection; the collected ones start again from zero (generation 0's
/// count goes into the schedule's `growth` first).
fn count_collection(heap: &Heap, generation: usize) {
    heap.fold_young_count();
    heap.shell.count_collection(generation);
}

/// Feeds the schedule after a collection: a full one sets the live heap it
/// measures growth from; the objects freed count as deallocations; after an
/// automatic collection, the young threshold backs off or comes back
/// (`schedule::after_collection`). An explicit collection says nothing
/// about the automatic ones: a program that collects right after dropping
/// its cycles would otherwise keep the young threshold from backing off.
fn count_for_schedule(
    heap: &Heap,
    generation: usize,
    survivors: usize,
    outcome: &Outcome,
    automatic: bool,
) {
    if generation == GENERATIONS - 1 {
        heap.live_after_full.set(survivors);
        heap.growth.set(0);
    } else {
        let g = heap.growth.get();
        heap.growth
            .set(g.wrapping_sub(outcome.collected.min(isize::MAX as usize) as isize));
    }
    if automatic {
        heap.shell
            .adapt(generation, outcome.unreachable, outcome.scanned);
    }
}

/// How the unreachable set is disposed of, decided when it is marked.
#[derive(Clone, Copy)]
struct Marked {
    /// `DebugFlags::SAVEALL`: keep the set in `garbage` (values not dead).
    saveall: bool,
    /// Some object of the set has a finalizer that has not run yet.
    finalizers: bool,
}

/// Marks the unreachable set, in one pass: weak references die (before
/// any more user code runs: the report, finalizers), values are marked dead
/// (so that a `Drop` reading another object of the garbage panics instead
/// of reading a dropped value) unless `saveall` keeps them, `SCANNING` goes
/// (finalizers and saved garbage may be dereferenced, and a dead object left
/// with handles must be freed by its last one; `UNREACHABLE` still protects
/// the set), and the set is counted.
///
/// # Safety
/// `unreachable` is well formed and its objects are protected.
unsafe fn mark_unreachable(unreachable: Link, saveall: bool, outcome: &mut Outcome) -> Marked {
    let mut finalizers = false;
    let dead = if saveall { 0 } else { DEAD };
    // SAFETY: caller contract.
    unsafe {
        for_each(unreachable, |o| {
            let h = o.as_ref();
            h.replace_flags(SCANNING, WEAK_CLEARED | dead);
            finalizers |= h.vtable().has_finalizer && !h.has(FINALIZED);
            outcome.unreachable += 1;
        })
    };
    Marked {
        saveall,
        finalizers,
    }
}

/// The thread-local heap's unreachable set (`heap.unreachable`), for the
/// pipeline written once in `unreachable`.
struct LocalSet<'a, 'b> {
    heap: &'a Heap,
    /// The generation survivors go to (so do revived and saved objects).
    old: usize,
    marked: Marked,
    /// `DEAD` was cleared for the finalizers (`keep_values`).
    kept: bool,
    scratch: &'b bumpalo::Bump,
    pending: &'a mut BumpVec<'b, NonNull<ObjHeader>>,
    panic: &'a mut Option<Panic>,
    outcome: &'a mut Outcome,
}

/// Calls `f` on each object of the unreachable set of a [`LocalSet`].
fn each(heap: &Heap, f: impl FnMut(NonNull<ObjHeader>)) {
    // SAFETY: the unreachable list is well formed and its objects protected
    // (`UNREACHABLE`) while a `LocalSet` exists, until the set is revived,
    // saved or destroyed (`dispose_unreachable`'s contract); `f` unlinks
    // nothing.
    unsafe { for_each(list::node(&heap.unreachable), f) }
}

impl crate::unreachable::UnreachableSet for LocalSet<'_, '_> {
    fn saveall(&self) -> bool {
        self.marked.saveall
    }

    fn is_empty(&self) -> bool {
        // SAFETY: the unreachable list is well formed (see `each`).
        unsafe { list::is_empty(list::node(&self.heap.unreachable)) }
    }

    fn has_unfinalized(&self) -> bool {
        self.marked.finalizers
    }

    fn keep_values(&mut self) {
        // `SAVEALL` did not mark them dead.
        if !self.marked.saveall {
            each(self.heap, |o| {
                // SAFETY: protected, see `each`.
                unsafe { o.as_ref() }.clear(DEAD)
            });
            self.kept = true;
        }
    }

    fn resurrected(&mut self) -> bool {
        resurrected(self.heap, self.scratch, self.panic)
    }

    fn revive(&mut self) {
        // It lives on: so do its weak handles (those made before this
        // collection too; see `Weak`).
        let pending = &mut *self.pending;
        each(self.heap, |o| {
            // SAFETY: protected until here (see `each`); `queue_if_dead`
            // takes the object once the collector lets go of it.
            unsafe {
                let_go(o.as_ref(), WEAK_CLEARED);
                queue_if_dead(pending, o);
            }
        });
        // SAFETY: the unreachable list is well formed (see `each`).
        unsafe {
            list::splice(
                list::node(&self.heap.unreachable),
                self.heap.gen_head(self.old),
            )
        };
    }

    fn save(&mut self) {
        // Keep them, alive and tracked, in `garbage`; but not an object a
        // finalizer of the set let go of the last handle to: it was freed
        // by its count while protected (CPython frees it at once), so it
        // is released like any object whose count reached zero, as on the
        // shared heap.
        let mut garbage = self.heap.garbage.borrow_mut();
        let pending = &mut *self.pending;
        let mut saved = 0;
        each(self.heap, |o| {
            // SAFETY: protected until here (see `each`).
            let h = unsafe { o.as_ref() };
            let_go(h, 0);
            if h.strong() == 0 {
                // SAFETY: live (protected until just now) and let go of;
                // the queue's reference keeps it until the collection ends.
                unsafe { queue_if_dead(pending, o) };
                return;
            }
            h.inc_strong();
            garbage.push(o);
            saved += 1;
        });
        drop(garbage);
        // SAFETY: the unreachable list is well formed (see `each`).
        unsafe {
            list::splice(
                list::node(&self.heap.unreachable),
                self.heap.gen_head(self.old),
            )
        };
        self.outcome.saved = saved;
    }

    fn doom(&mut self) {
        if self.kept {
            each(self.heap, |o| {
                // SAFETY: protected, see `each`.
                unsafe { o.as_ref() }.set(DEAD)
            });
        }
        self.outcome.collected = self.outcome.unreachable;
    }
}

impl crate::unreachable::RunsUserCode for LocalSet<'_, '_> {
    fn finalize_each(&mut self) {
        let panic = &mut *self.panic;
        each(self.heap, |o| {
            // SAFETY: protected (see `each`), values intact (`keep_values`).
            let h = unsafe { o.as_ref() };
            if h.vtable().has_finalizer && !h.has(FINALIZED) {
                h.set(FINALIZED);
                // SAFETY: the value is intact and protected (see `each`);
                // only shared references to it exist.
                let p = catch(|| unsafe { (h.vtable().finalize)(o) });
                keep_first(panic, p);
            }
        });
    }

    fn destroy(&mut self) {
        // SAFETY: the set is protected, alive and marked `DEAD` (`doom`,
        // or `mark_unreachable`).
        unsafe { destroy_unreachable(self.heap, self.panic) }
    }
}

/// Finalizes the unreachable set, then revives it (a finalizer made some of
/// it reachable), saves it (`SAVEALL`) or destroys it: the pipeline of
/// `unreachable`, on this heap's primitives.
///
/// # Safety
/// The unreachable list is well formed, its objects protected and marked by
/// `mark_unreachable` (which returned `marked`).
unsafe fn dispose_unreachable<'b>(
    heap: &Heap,
    old: usize,
    marked: Marked,
    scratch: &'b bumpalo::Bump,
    pending: &mut BumpVec<'b, NonNull<ObjHeader>>,
    panic: &mut Option<Panic>,
    outcome: &mut Outcome,
) {
    let mut set = LocalSet {
        heap,
        old,
        marked,
        kept: false,
        scratch,
        pending,
        panic,
        outcome,
    };
    crate::unreachable::dispose(&mut set);
}

/// What a `COLLECTABLE` / `UNCOLLECTABLE` line says about `o`.
///
/// # Safety
/// `o` is a live object.
unsafe fn found_line(o: NonNull<ObjHeader>, collectable: bool) -> Found {
    // SAFETY: caller contract.
    let vt = unsafe { o.as_ref() }.vtable();
    Found {
        collectable,
        type_name: vt.type_name,
        // The value's address, as `ObjectInfo::address` and `Gc::as_ptr`.
        address: o.as_ptr().addr() + vt.value_offset,
    }
}

/// Finds and reports the survivors that are alive only because the edges of
/// non-structural `trace`s were not subtracted (CPython's "uncollectable"
/// objects): a second trial deletion over the survivors (still on `young`)
/// that subtracts every edge. It frees nothing: what it finds goes back to
/// `young` with the others, and is counted, named in a warning (once per
/// type) and, under `saveall`, kept in `garbage`. Returns how many it found.
///
/// Its verdict rests on user code, which may lie; a lie only makes the
/// report wrong. The heap stays consistent as in a collection: the objects
/// are `SCANNING` (protected) while user code runs, and a panic from a
/// `trace` ends the report with everything kept (the first panic is
/// resumed by `collect`). Called only while no other object of the heap is
/// `SCANNING` (the unreachable set is marked).
fn report_uncollectable<'b>(
    heap: &Heap,
    saveall: bool,
    scratch: &'b bumpalo::Bump,
    pending: &mut BumpVec<'b, NonNull<ObjHeader>>,
    panic: &mut Option<Panic>,
    mut log: Option<&mut BumpVec<'b, Found>>,
) -> usize {
    let young = list::node(&heap.young);
    let found = list::node(&heap.uncollectable);
    update_refs(young);
    let mut inner = BumpVec::new_in(scratch);
    keep_first(
        panic,
        subtract_refs(young, scratch, Trust::All, Some(&mut inner)).panic,
    );
    // SAFETY: `young` was just marked and counted; `found` is empty between
    // reports.
    unsafe { move_unreachable(young, found, scratch, pending, panic, false) };
    let mut warn = BumpVec::new_in(scratch);
    let mut n = 0;
    // SAFETY: `found` is well formed (`move_unreachable` linked it), its
    // objects alive and protected (`UNREACHABLE`) until let go here.
    unsafe {
        let mut warned = heap.warned.borrow_mut();
        let mut garbage = heap.garbage.borrow_mut();
        for_each(found, |o| {
            let h = o.as_ref();
            h.clear(SCANNING | UNREACHABLE);
            if h.strong() == 0 {
                // Its last handle went during the report: freed, not kept.
                queue_if_dead(pending, o);
                return;
            }
            n += 1;
            if let Some(log) = log.as_deref_mut() {
                log.push(found_line(o, false));
            }
            let vt = h.vtable();
            let id = (vt.type_id)();
            if !vt.structural && !warned.contains(&id) {
                warned.push(id);
                warn.push(vt.type_name);
            }
            // The non-structural values inside it (trait objects'), by name.
            for &(_, name) in inner.iter().filter(|(obj, _)| *obj == o) {
                let mut names = heap.warned_names.borrow_mut();
                if !names.contains(&name()) {
                    names.push(name());
                    warn.push(name);
                }
            }
            if saveall {
                h.inc_strong();
                garbage.push(o);
            }
        });
        list::splice(found, young);
    }
    for type_name in warn {
        // A user `log::Log` may panic: caught like any user code.
        let p = catch(|| warn_uncollectable(type_name(), "gc", "thread"));
        keep_first(panic, p);
    }
    n
}

/// Names a type whose non-structural `trace` keeps a cycle alive, for both
/// heaps: `gc` is the path of the heap's `gc` module, `per` what the warning
/// is shown once for besides the type (`"thread"`, `"process"`).
#[cold]
pub(crate) fn warn_uncollectable(type_name: &str, gc: &str, per: &str) {
    log::warn!(
        target: "ouro::gc",
        "a reference cycle through `{type_name}` was not collected: its `Trace` impl is not \
         structural, so the cycle collector does not count the edges it reports (the objects \
         are counted as uncollectable in `{gc}::get_stats()`; this warning is shown once per type \
         and {per}). Derive it with `#[derive(Trace)]`, or, if its `trace` only calls `trace` \
         on fields, promise so with `fn structural() -> Structural<Self> {{ unsafe {{ \
         Structural::promise() }} }}`"
    );
}

/// Drops the values of the unreachable set and frees what no handle holds.
///
/// # Safety
/// The unreachable list is well formed, its objects protected, alive and
/// already marked `DEAD`.
unsafe fn destroy_unreachable(heap: &Heap, panic: &mut Option<Panic>) {
    let unreachable = list::node(&heap.unreachable);
    // SAFETY: caller contract; values are dropped once (every value of the
    // set is already marked DEAD, and nothing else drops a protected
    // object's value).
    unsafe {
        for_each(unreachable, |o| {
            let h = o.as_ref();
            let vt = h.vtable();
            if h.has(HOOKED) {
                // Death hooks run before the value drops, as the value's
                // `Drop` would: the set is marked and protected.
                let hooks = heap.hooks.take(o);
                keep_first(panic, heap.drop_nested(|| crate::hooks::run_all(hooks)));
            }
            let p = catch(|| heap.drop_nested(|| (vt.drop_value)(o)));
            keep_first(panic, p);
        });
        // Let go: unlink each object; free those no handle refers to. Others
        // stay allocated (dead) until their last handle goes.
        while !list::is_empty(unreachable) {
            let l = list::next(unreachable);
            list::unlink(l);
            let obj = GcLinks::header(l);
            let h = obj.as_ref();
            let_go(h, TRACKED);
            if h.strong() == 0 && h.weak() == 0 {
                heap.free(obj, ObjHeader::boxed_layout(obj));
            }
        }
    }
}

/// Automatic collection: collects what the schedule says (see `schedule`).
pub(crate) fn collect_generations(heap: &Heap) {
    let counters = heap.shell.counters(
        heap.young_count(),
        heap.live_tracked(),
        heap.live_after_full.get(),
    );
    if let Some(due) = heap.shell.due(&counters) {
        collect_into(heap, due.generation, due.into, Some(due.examine));
    }
}
