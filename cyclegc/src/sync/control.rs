//! The `gc` module functions over the process-wide heap (`ouro::sync::gc`).
//!
//! The same functions as the thread-local [`crate::control`], with the same
//! meaning, except that every thread sees the same heap, settings and
//! statistics. A collection can be requested from any thread. Its critical
//! part (steps 1 to 4 and 7 of the protocol) holds the collector lock; its
//! finalizers and drops run after the lock is released, so that they can
//! do what user code can do anywhere else (join a thread that collects,
//! take a lock that a collecting thread holds, collect, allocate).
//!
//! - `collect()` waits for the critical part of a collection in progress,
//!   then runs its own, and finalizes and drops what it claimed on the
//!   calling thread before it returns. So it does with the garbage that
//!   earlier automatic collections left queued for the background thread;
//!   the batch that thread is dropping at that moment it waits for, at most
//!   one second (`background`). Garbage that another thread's `collect()`
//!   claimed is dropped by that thread, maybe after this `collect()`
//!   returns; it cannot be reached any more (`Weak::upgrade` fails on it).
//!   [`wait_for_drops`] waits for everything, without a bound.
//! - An automatic collection runs its critical part on the allocating
//!   thread, and hands what is left to a background thread
//!   (`background`), since the allocating thread may hold a lock that a
//!   `Drop` of the garbage takes.
//! - The `Start` and `Stop` callbacks run under the collector lock, one at a
//!   time, on the thread that runs that part: `Stop` after the drops, so,
//!   for an automatic collection that found garbage, on the background
//!   thread or in the `collect()` that took its garbage over. Another
//!   collection's callbacks may come between a `Start` and its `Stop`.
//!   `get_stats()` counts a collection once it has dropped its garbage,
//!   when `Stop` is called.
//!
//! Called on the thread that holds the collector lock (from a callback or a
//! `trace`), `collect()` returns 0 at once. Called from a finalizer or a
//! `Drop` that a collection runs, it collects (no lock is held there); an
//! allocation there does not start an automatic collection.

use core::ptr::NonNull;
use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

use super::background;
use super::collect::{self, Outcome};
use super::header::*;
use super::heap::{self, CollectorState, List, SyncHeap, heap};
use super::prims::{self, MutexGuard, Ordering};
use super::raw::ObjectRef;
use crate::callbacks::{CallbackList, Slot};
use crate::debug::{CallbackId, CallbackInfo, DebugFlags, Phase};
use crate::dot::DotNode;
use crate::heap::GENERATIONS;
use crate::stats::GenerationStats;
use crate::visitor::{Mode, SyncSink, Visitor};

type Callback = Box<dyn FnMut(&CallbackInfo) + Send>;

/// The callbacks of a process-wide heap (the rules of `callbacks`, shared
/// with the thread-local heap).
pub(crate) type SyncCallbacks = CallbackList<dyn FnMut(&CallbackInfo) + Send>;

impl<F: ?Sized> Slot<F> for prims::Mutex<CallbackList<F>> {
    fn with<R>(&self, f: impl FnOnce(&mut CallbackList<F>) -> R) -> R {
        f(&mut prims::lock(self))
    }
}

/// Runs the callbacks for one phase; returns the first panic.
pub(crate) fn invoke_callbacks(
    h: &heap::SyncHeap,
    phase: Phase,
    generation: usize,
    o: Outcome,
    start: Instant,
) -> Option<Box<dyn std::any::Any + Send>> {
    if h.callbacks.is_empty() {
        return None;
    }
    let info = CallbackInfo {
        phase,
        generation,
        collected: o.collected,
        uncollectable: o.uncollectable,
        duration: if phase == Phase::Start {
            Duration::ZERO
        } else {
            start.elapsed()
        },
    };
    h.callbacks.invoke(|f| f(&info))
}

/// Whether any callback is registered.
pub(crate) fn has_callbacks(h: &heap::SyncHeap) -> bool {
    !h.callbacks.is_empty()
}

/// Registers `f` to be called at the start and the end of every collection
/// (from the thread that runs that part of it, holding the collector lock;
/// see the module docs).
pub fn add_callback(f: impl FnMut(&CallbackInfo) + Send + 'static) -> CallbackId {
    add_callback_in(heap(), Box::new(f))
}

fn add_callback_in(h: &SyncHeap, f: Callback) -> CallbackId {
    h.callbacks.add(f)
}

/// Unregisters a callback; `false` if it was not registered.
pub fn remove_callback(id: CallbackId) -> bool {
    remove_callback_in(heap(), id)
}

fn remove_callback_in(h: &SyncHeap, id: CallbackId) -> bool {
    let (found, f) = h.callbacks.remove(id);
    // Dropped without the lock: its `Drop` is user code.
    drop(f);
    found
}

/// Waits for a running collection and keeps others from starting, unless
/// this thread is the one collecting (a callback, `finalize` or `Drop`
/// calling the `gc` functions): then the objects that collection examines
/// are simply not on the lists.
fn exclude_collection(h: &SyncHeap) -> Option<MutexGuard<'_, CollectorState>> {
    (!heap::is_collecting(h)).then(|| prims::lock(&h.collector))
}

/// Marks the current thread as the collecting one (holding the collector
/// lock) while alive.
pub(crate) struct Collecting(u32);

impl Collecting {
    pub(crate) fn start(h: &SyncHeap) -> Collecting {
        Collecting(heap::set_collecting_thread(h.id + 1))
    }
}

impl Drop for Collecting {
    fn drop(&mut self) {
        heap::set_collecting_thread(self.0);
    }
}

fn run(
    h: &'static SyncHeap,
    mut state: MutexGuard<'_, CollectorState>,
    generation: usize,
) -> usize {
    let batch = {
        let _c = Collecting::start(h);
        collect::collect(h, &mut state, generation, None)
    };
    // The garbage earlier automatic collections claimed (handed off under
    // the collector lock, so all of it is queued or being finished now).
    let mut pending = background::take_pending();
    drop(state);
    // Theirs first (their `Stop` callbacks come in the critical parts'
    // order), then ours, then the wait for the one the background thread is
    // finishing, which goes on meanwhile.
    let mut p = None;
    pending.finish_taken(&mut p);
    let (outcome, p2) = collect::finish(h, batch);
    pending.wait_for_running();
    collect::keep_first(&mut p, p2);
    if let Some(p) = p {
        panic::resume_unwind(p);
    }
    outcome.unreachable
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
pub fn collect() -> usize {
    collect_generation(GENERATIONS - 1)
}

/// Collects generations `0..=generation` (panics if `generation > 2`), as
/// [`collect`] does.
pub fn collect_generation(generation: usize) -> usize {
    collect_generation_in(heap(), generation)
}

fn collect_generation_in(h: &'static SyncHeap, generation: usize) -> usize {
    assert!(
        generation < GENERATIONS,
        "ouro::sync::gc::collect_generation: generation {generation} does not exist (0, 1 or 2)"
    );
    // On the collecting thread (of any heap: a second collector lock taken
    // there could be waited for by the first one's collection).
    if heap::is_collecting_thread() {
        return 0;
    }
    run(h, prims::lock(&h.collector), generation)
}

/// The collections whose finalizers and drops have not finished, by
/// ticket (in the order of their critical parts).
#[derive(Default)]
pub(crate) struct Unfinished {
    next: u64,
    open: Vec<u64>,
}

fn lock_unfinished(h: &heap::SyncHeap) -> std::sync::MutexGuard<'_, Unfinished> {
    h.unfinished.lock().unwrap_or_else(|p| p.into_inner())
}

/// Registers a collection whose critical part just ended (under the
/// collector lock, so tickets follow the critical parts' order).
pub(crate) fn register_unfinished(h: &heap::SyncHeap) -> u64 {
    let mut u = lock_unfinished(h);
    let ticket = u.next;
    u.next += 1;
    u.open.push(ticket);
    ticket
}

/// The collection with `ticket` has finished its drops.
pub(crate) fn unregister_unfinished(h: &heap::SyncHeap, ticket: u64) {
    lock_unfinished(h).open.retain(|&t| t != ticket);
    h.finished.notify_all();
}

/// Waits until every collection that claimed garbage before this call
/// (including one whose critical part is in progress) has finalized and
/// dropped it: another thread's [`collect`], or an automatic collection
/// (whose garbage the background thread drops, or a `collect()` that took
/// it over).
///
/// [`collect()`] already drops, before it returns, all the garbage that was
/// unreachable at its call except what another thread is dropping at that
/// moment; this waits for that too, and without a bound. A `Drop` that
/// such a collection runs may wait for this thread (for a lock it holds,
/// or for it to end): then this waits forever, as a `join` would. Called
/// from a `Drop`, a finalizer or a callback that a collection runs, it
/// returns at once.
///
/// ```
/// use ouro_cyclegc::sync::control::{collect, wait_for_drops};
/// collect();
/// wait_for_drops(); // every garbage value found so far has been dropped
/// ```
pub fn wait_for_drops() {
    wait_for_drops_in(heap())
}

fn wait_for_drops_in(h: &SyncHeap) {
    if heap::is_collecting_thread() || heap::is_finishing() {
        return;
    }
    // A critical part in progress claims before it lets go of the lock.
    drop(prims::lock(&h.collector));
    let mut u = lock_unfinished(h);
    let upto = u.next;
    while u.open.iter().any(|&t| t < upto) {
        u = h.finished.wait(u).unwrap_or_else(|p| p.into_inner());
    }
}

/// The automatic collection, called before allocating a tracked object:
/// collects what the schedule says (see `schedule`).
#[inline]
pub(crate) fn maybe_collect(h: &'static SyncHeap) {
    if h.young_count() <= crate::settings::Slot::get(&h.shell.young_trigger) {
        return;
    }
    // Not from inside a collection (its callbacks, finalizers or drops:
    // DESIGN 6), and not while the background thread still has the last
    // automatic collection's garbage waiting (so that at most one batch
    // waits; the garbage made meanwhile stays on the lists, found later).
    if !h.shell.is_enabled()
        || heap::is_collecting_thread()
        || heap::is_finishing()
        || background::has_backlog()
    {
        return;
    }
    // Another thread collecting already: go on allocating.
    let Some(mut state) = prims::try_lock(&h.collector) else {
        return;
    };
    let mut counters = h.shell.counters(h.young_count(), 0, state.live_after_full);
    // Counting the live objects takes every shard lock: only when a full
    // collection is otherwise due.
    if counters.counts[2] > counters.thresholds[2] {
        counters.live = h.live_tracked();
    }
    let Some(due) = h.shell.due(&counters) else {
        return;
    };
    if !due.examine {
        let (start, p) = {
            let _c = Collecting::start(h);
            collect::pass(h, due.into)
        };
        drop(state);
        if let Some(p) = collect::finish_pass(h, due.into, start, p) {
            panic::resume_unwind(p);
        }
        return;
    }
    let mut batch = {
        let _c = Collecting::start(h);
        collect::collect(h, &mut state, due.generation, Some(due.into))
    };
    // A panic of a callback or a `trace` in the critical part goes to the
    // allocating thread (the heap is consistent); one of a finalizer or a
    // `Drop` on the background thread is logged there.
    let mut p = batch.panic.take();
    if batch.runs_user_code() {
        // Queued before the lock goes: a `collect()` whose critical part
        // comes later finds it (`run`).
        let handed = background::hand_off(batch);
        drop(state);
        handed.complete();
    } else {
        drop(state);
        // Nothing to drop: the statistics and `Stop` callbacks, here.
        let (_, p2) = collect::finish(h, batch);
        collect::keep_first(&mut p, p2);
    }
    if let Some(p) = p {
        panic::resume_unwind(p);
    }
}

/// Under loom only: sets the number of objects per chunk of a collection's
/// first pass (the models run with one chunk for everything, and with one
/// object per chunk, so that both the chunk verification and the global one
/// are checked).
#[cfg(loom)]
pub fn set_chunk_for_loom(objects: usize) {
    heap()
        .loom_chunk
        .store(objects.max(1), std::sync::atomic::Ordering::Relaxed);
}

/// Turns automatic collection on.
pub fn enable() {
    enable_in(heap())
}

fn enable_in(h: &SyncHeap) {
    h.shell.enable();
}

/// Turns automatic collection off.
pub fn disable() {
    disable_in(heap())
}

fn disable_in(h: &SyncHeap) {
    h.shell.disable();
}

/// Whether automatic collection is on.
pub fn is_enabled() -> bool {
    is_enabled_in(heap())
}

fn is_enabled_in(h: &SyncHeap) -> bool {
    h.shell.is_enabled()
}

/// `[tracked allocations minus objects freed by reference count since the
/// last collection (0 while more were freed), collections of 0 since the
/// last of 1, collections of 1 since the last of 2]`. Allocations are
/// counted in small batches per shard, so the first number is approximate.
pub fn get_count() -> [usize; GENERATIONS] {
    get_count_in(heap())
}

fn get_count_in(h: &SyncHeap) -> [usize; GENERATIONS] {
    h.shell.get_count(h.young_count())
}

/// The thresholds.
pub fn get_threshold() -> [usize; GENERATIONS] {
    get_threshold_in(heap())
}

fn get_threshold_in(h: &SyncHeap) -> [usize; GENERATIONS] {
    h.shell.get_threshold()
}

/// Sets the thresholds (a threshold0 of 0 turns automatic collection off).
pub fn set_threshold(thresholds: [usize; GENERATIONS]) {
    set_threshold_in(heap(), thresholds)
}

fn set_threshold_in(h: &SyncHeap, thresholds: [usize; GENERATIONS]) {
    h.shell.set_threshold(thresholds)
}

/// Statistics per generation (`collected`: the objects freed, and the
/// unreachable ones kept by `SAVEALL`, as CPython counts them;
/// `uncollectable`: those that only non-structural `Trace` impls keep
/// alive; as on the thread-local heap).
pub fn get_stats() -> [GenerationStats; GENERATIONS] {
    get_stats_in(heap())
}

fn get_stats_in(h: &SyncHeap) -> [GenerationStats; GENERATIONS] {
    h.shell.get_stats()
}

/// Sets the debug flags.
pub fn set_debug(flags: DebugFlags) {
    set_debug_in(heap(), flags)
}

fn set_debug_in(h: &SyncHeap, flags: DebugFlags) {
    h.shell.set_debug(flags)
}

/// The debug flags.
pub fn get_debug() -> DebugFlags {
    heap().shell.debug()
}

/// The objects kept by `DebugFlags::SAVEALL`: the unreachable ones, and
/// the uncollectable ones the report found (see the `sync` module docs).
pub fn garbage() -> Vec<ObjectRef> {
    prims::lock(&heap().garbage).clone()
}

fn garbage_in(h: &SyncHeap) -> Vec<ObjectRef> {
    prims::lock(&h.garbage).clone()
}

/// Releases the objects kept by `DebugFlags::SAVEALL`.
pub fn clear_garbage() {
    clear_garbage_in(heap())
}

fn clear_garbage_in(h: &SyncHeap) {
    let v = core::mem::take(&mut *prims::lock(&h.garbage));
    drop(v);
}

/// Moves every tracked object to the frozen set: never scanned again until
/// [`unfreeze`].
pub fn freeze() {
    freeze_in(heap())
}

fn freeze_in(h: &SyncHeap) {
    let _state = exclude_collection(h);
    for slot in &h.shards {
        let mut shard = prims::lock(&slot.0);
        for g in 0..GENERATIONS {
            let mut l = core::mem::replace(&mut shard.lists[g], List::new());
            // SAFETY: under the shard lock, no collection running (I1 (a)).
            unsafe {
                l.for_each(|o| set_gen(o, FROZEN_GEN));
                shard.lists[FROZEN_GEN as usize].append(&mut l);
            }
        }
    }
}

/// Moves the frozen objects to the oldest generation.
pub fn unfreeze() {
    unfreeze_in(heap())
}

fn unfreeze_in(h: &SyncHeap) {
    let _state = exclude_collection(h);
    for slot in &h.shards {
        let mut shard = prims::lock(&slot.0);
        let mut l = core::mem::replace(&mut shard.lists[FROZEN_GEN as usize], List::new());
        // SAFETY: as in `freeze`.
        unsafe {
            l.for_each(|o| set_gen(o, 2));
            shard.lists[2].append(&mut l);
        }
    }
}

/// The number of frozen objects.
pub fn get_freeze_count() -> usize {
    get_freeze_count_in(heap())
}

fn get_freeze_count_in(h: &SyncHeap) -> usize {
    h.shards
        .iter()
        .map(|s| prims::lock(&s.0).lists[FROZEN_GEN as usize].len)
        .sum()
}

fn set_gen(obj: NonNull<SyncHeader>, g: u32) {
    // SAFETY: the caller holds the shard lock of a listed object.
    let o = unsafe { obj.as_ref() };
    let mut f = o.flags.load(Ordering::Relaxed);
    loop {
        let new = (f & !GEN_MASK) | (g << GEN_SHIFT);
        match o
            .flags
            .compare_exchange_weak(f, new, Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(_) => return,
            Err(x) => f = x,
        }
    }
}

/// Every tracked object of generation `generation` (all three generations
/// for `None`; frozen objects are not included, as in Python), each held by
/// a new strong reference.
///
/// # Panics
/// If `generation > 2`.
pub fn get_objects(generation: Option<usize>) -> Vec<ObjectRef> {
    get_objects_in(heap(), generation)
}

fn get_objects_in(h: &SyncHeap, generation: Option<usize>) -> Vec<ObjectRef> {
    if let Some(g) = generation {
        assert!(
            g < GENERATIONS,
            "ouro::sync::gc::get_objects: generation must be 0, 1 or 2 (or None for all three), got {g}"
        );
    }
    let _state = exclude_collection(h);
    let mut out = Vec::new();
    for slot in &h.shards {
        let shard = prims::lock(&slot.0);
        for (g, list) in shard.lists.iter().enumerate() {
            if generation.map_or(g == FROZEN_GEN as usize, |want| want != g) {
                continue;
            }
            // SAFETY: under the shard lock with no collection running (I1
            // (a)); listed objects are alive while listed.
            unsafe {
                list.for_each(|o| {
                    // An object whose `&mut T` from `get_mut` may be alive
                    // is left out: a handle to it would alias that borrow
                    // (`EXCLUSIVE` is only set under this shard lock).
                    if o.as_ref().flags.load(Ordering::Relaxed) & EXCLUSIVE != 0 {
                        return;
                    }
                    if let Some(r) = ObjectRef::try_new(o) {
                        out.push(r)
                    }
                })
            };
        }
    }
    out
}

struct Edges<'a>(&'a mut Vec<NonNull<SyncHeader>>);

impl SyncSink for Edges<'_> {
    fn edge(&mut self, target: NonNull<SyncHeader>) {
        self.0.push(target);
    }
}

/// Takes a reference to each target while the reporting handle is alive.
struct Referents<'a>(&'a mut Vec<ObjectRef>);

impl SyncSink for Referents<'_> {
    fn edge(&mut self, target: NonNull<SyncHeader>) {
        // SAFETY: the reporting handle keeps `target` alive during the call.
        if let Some(r) = unsafe { ObjectRef::try_new(target) } {
            self.0.push(r);
        }
    }
}

/// The objects `obj`'s value holds handles to (each once per handle).
///
/// # Safety
/// The caller holds a strong reference to `obj` through a shared borrow
/// (so no `&mut` to the value exists).
pub unsafe fn get_referents(obj: NonNull<SyncHeader>) -> Vec<ObjectRef> {
    // SAFETY: caller contract.
    let o = unsafe { obj.as_ref() };
    if !o.vtable.tracked || o.has(DEAD) {
        return Vec::new();
    }
    let mut out = Vec::new();
    let bump = bumpalo::Bump::new();
    {
        let mut sink = Referents(&mut out);
        let mut v = Visitor::new(Mode::Sync(&mut sink), Some(&bump));
        // SAFETY: the value is alive and only shared borrows of it exist.
        v.with_sync_object(obj, |v| unsafe { (o.vtable.trace)(obj, v) });
    }
    out
}

/// Runs `f` over every tracked object while the collector owns them all
/// (so their values can be read), then gives them back to the generations
/// they were in.
fn with_all_owned<R>(
    h: &SyncHeap,
    f: impl FnOnce(&[NonNull<SyncHeader>], &bumpalo::Bump) -> R,
) -> R {
    let _state = exclude_collection(h);
    let _c = Collecting::start(h);
    let bump = bumpalo::Bump::new();
    let mut objs: Vec<NonNull<SyncHeader>> = Vec::new();
    let mut lists: Vec<(usize, usize, List)> = Vec::new();
    for (s, slot) in h.shards.iter().enumerate() {
        let mut shard = prims::lock(&slot.0);
        for g in 0..4 {
            let l = core::mem::replace(&mut shard.lists[g], List::new());
            // SAFETY: under the shard lock (I1 (a)), then owned (I1 (b)).
            unsafe {
                l.for_each(|o| {
                    // Exclusive: under the shard lock while listed.
                    o.as_ref().update_flags_exclusively(IN_COLLECTOR, 0);
                    objs.push(o);
                })
            };
            lists.push((s, g, l));
        }
    }
    let r = panic::catch_unwind(AssertUnwindSafe(|| f(&objs, &bump)));
    let mut zombies = Vec::new();
    for (s, g, l) in lists {
        let mut shard = prims::lock(&h.shards[s].0);
        let mut keep = List::new();
        // SAFETY: owned until the flag is cleared under the shard lock (I1).
        unsafe {
            l.for_each(|o| {
                let oo = o.as_ref();
                if oo.flags.load(Ordering::Acquire) & ZOMBIE != 0 {
                    oo.flags
                        .fetch_and(!(LINKED | IN_COLLECTOR), Ordering::Relaxed);
                    zombies.push(o);
                } else {
                    oo.flags.fetch_and(!IN_COLLECTOR, Ordering::Release);
                    keep.push(o);
                }
            });
            shard.lists[g].append(&mut keep);
        }
    }
    drop(_state);
    let mut panic_payload = None;
    collect::drop_zombies(zombies, &mut panic_payload);
    match (r, panic_payload) {
        (Ok(r), None) => r,
        (Err(p), _) | (Ok(_), Some(p)) => panic::resume_unwind(p),
    }
}

/// Traces `obj` (owned by `with_all_owned`) and returns its targets.
fn targets_of(obj: NonNull<SyncHeader>, bump: &bumpalo::Bump, out: &mut Vec<NonNull<SyncHeader>>) {
    out.clear();
    // SAFETY: owned by `with_all_owned` (I2).
    let o = unsafe { obj.as_ref() };
    if o.flags.load(Ordering::Acquire) & EXCLUSIVE != 0 {
        return;
    }
    let mut sink = Edges(out);
    let mut v = Visitor::new(Mode::Sync(&mut sink), Some(bump));
    // SAFETY: owned and not exclusive (I2, I3).
    v.with_sync_object(obj, |v| unsafe { (o.vtable.trace)(obj, v) });
}

/// The tracked objects whose values hold a handle to `target`.
pub fn get_referrers(target: NonNull<SyncHeader>) -> Vec<ObjectRef> {
    get_referrers_in(heap(), target)
}

fn get_referrers_in(h: &SyncHeap, target: NonNull<SyncHeader>) -> Vec<ObjectRef> {
    with_all_owned(h, |objs, bump| {
        let mut out = Vec::new();
        let mut t = Vec::new();
        for &o in objs {
            targets_of(o, bump, &mut t);
            if t.contains(&target) {
                // SAFETY: owned objects are alive.
                if let Some(r) = unsafe { ObjectRef::try_new(o) } {
                    out.push(r);
                }
            }
        }
        out
    })
}

/// Writes every tracked object and edge as a Graphviz `digraph`, drawn as
/// the thread-local heap's (`gc::write_dot`): objects held from outside the
/// heap (more strong references than edges from other objects) are roots
/// (green boxes); objects not reachable from a root, and those `SAVEALL`
/// kept in `garbage()` (not roots), are red octagons; frozen objects have a
/// double border.
pub fn write_dot(w: impl std::io::Write) -> std::io::Result<()> {
    write_dot_in(heap(), w)
}

fn write_dot_in(h: &SyncHeap, w: impl std::io::Write) -> std::io::Result<()> {
    let saved: Vec<usize> = prims::lock(&h.garbage)
        .iter()
        .map(|r| r.address())
        .collect();
    let nodes: Vec<DotNode> = with_all_owned(h, |objs, bump| {
        let index: std::collections::HashMap<usize, usize> = objs
            .iter()
            .enumerate()
            .map(|(i, o)| (o.as_ptr().addr(), i))
            .collect();
        let mut nodes: Vec<DotNode> = objs
            .iter()
            .map(|&o| {
                // SAFETY: owned objects are alive.
                let h = unsafe { o.as_ref() };
                DotNode {
                    // SAFETY: as above.
                    addr: unsafe { SyncHeader::value_ptr(o) }.as_ptr().addr(),
                    type_name: (h.vtable.type_name)(),
                    strong: h.strong(),
                    frozen: h.generation() == FROZEN_GEN,
                    edges: Vec::new(),
                }
            })
            .collect();
        let mut t = Vec::new();
        for (i, &o) in objs.iter().enumerate() {
            targets_of(o, bump, &mut t);
            for x in &t {
                if let Some(&j) = index.get(&x.as_ptr().addr()) {
                    nodes[i].edges.push(j);
                }
            }
        }
        nodes
    });
    crate::dot::write_dot(&nodes, &saved, w)
}

/// A heap of its own for `sync` objects, beside the process-wide default
/// one (as crossbeam-epoch's `Collector::new()` beside its default
/// collector): its own generations, settings, statistics, callbacks and
/// `SAVEALL` garbage, collected independently of every other heap. The
/// typed layer allocates in it with `Gc::new_in`.
///
/// An edge between two heaps counts as a reference from outside: a cycle
/// that spans two heaps is never collected by either (each sees the other's
/// handle as a root). [`Heap::cross_heap_edges`] counts such edges.
///
/// A heap lives for the rest of the process (its memory, about 3 KiB, is
/// never freed, and its id is never reused: a process can make 4095).
/// Dropping the `Heap` runs a full collection of it, waits for its drops,
/// and then moves every object still alive in it to the default heap (its
/// `SAVEALL` garbage to the default heap's `garbage()`), where later
/// collections find them: objects may outlive their heap's handle.
///
/// ```
/// use ouro_cyclegc::sync::control::Heap;
/// let heap = Heap::new();
/// heap.disable();
/// assert!(!heap.is_enabled());
/// assert_eq!(heap.collect(), 0);
/// ```
pub struct Heap {
    h: &'static SyncHeap,
}

impl Heap {
    /// Makes a new heap.
    ///
    /// # Panics
    ///
    /// If the process made 4095 heaps already (heaps are never freed).
    pub fn new() -> Heap {
        match heap::new_heap() {
            Some(h) => Heap { h },
            None => panic!("ouro::sync::Heap::new: the process made 4095 heaps already"),
        }
    }

    pub(crate) fn inner(&self) -> &'static SyncHeap {
        self.h
    }

    /// [`collect`] for this heap.
    pub fn collect(&self) -> usize {
        collect_generation_in(self.h, GENERATIONS - 1)
    }

    /// [`collect_generation`] for this heap.
    pub fn collect_generation(&self, generation: usize) -> usize {
        collect_generation_in(self.h, generation)
    }

    /// [`wait_for_drops`] for this heap's collections.
    pub fn wait_for_drops(&self) {
        wait_for_drops_in(self.h)
    }

    /// [`enable`] for this heap.
    pub fn enable(&self) {
        enable_in(self.h)
    }

    /// [`disable`] for this heap.
    pub fn disable(&self) {
        disable_in(self.h)
    }

    /// [`is_enabled`] for this heap.
    pub fn is_enabled(&self) -> bool {
        is_enabled_in(self.h)
    }

    /// [`get_count`] for this heap.
    pub fn get_count(&self) -> [usize; GENERATIONS] {
        get_count_in(self.h)
    }

    /// [`get_threshold`] for this heap.
    pub fn get_threshold(&self) -> [usize; GENERATIONS] {
        get_threshold_in(self.h)
    }

    /// [`set_threshold`] for this heap.
    pub fn set_threshold(&self, thresholds: [usize; GENERATIONS]) {
        set_threshold_in(self.h, thresholds)
    }

    /// [`get_stats`] for this heap.
    pub fn get_stats(&self) -> [GenerationStats; GENERATIONS] {
        get_stats_in(self.h)
    }

    /// [`set_debug`] for this heap.
    pub fn set_debug(&self, flags: DebugFlags) {
        set_debug_in(self.h, flags)
    }

    /// [`get_debug`] for this heap.
    pub fn get_debug(&self) -> DebugFlags {
        self.h.shell.debug()
    }

    /// [`garbage`] for this heap.
    pub fn garbage(&self) -> Vec<ObjectRef> {
        garbage_in(self.h)
    }

    /// [`clear_garbage`] for this heap.
    pub fn clear_garbage(&self) {
        clear_garbage_in(self.h)
    }

    /// [`freeze`] for this heap.
    pub fn freeze(&self) {
        freeze_in(self.h)
    }

    /// [`unfreeze`] for this heap.
    pub fn unfreeze(&self) {
        unfreeze_in(self.h)
    }

    /// [`get_freeze_count`] for this heap.
    pub fn get_freeze_count(&self) -> usize {
        get_freeze_count_in(self.h)
    }

    /// [`get_objects`] for this heap.
    pub fn get_objects(&self, generation: Option<usize>) -> Vec<ObjectRef> {
        get_objects_in(self.h, generation)
    }

    /// [`get_referrers`] among this heap's objects.
    pub fn get_referrers(&self, target: NonNull<SyncHeader>) -> Vec<ObjectRef> {
        get_referrers_in(self.h, target)
    }

    /// [`write_dot`] for this heap's objects.
    pub fn write_dot(&self, w: impl std::io::Write) -> std::io::Result<()> {
        write_dot_in(self.h, w)
    }

    /// [`add_callback`] for this heap's collections.
    pub fn add_callback(&self, f: impl FnMut(&CallbackInfo) + Send + 'static) -> CallbackId {
        add_callback_in(self.h, Box::new(f))
    }

    /// [`remove_callback`] for this heap's callbacks.
    pub fn remove_callback(&self, id: CallbackId) -> bool {
        remove_callback_in(self.h, id)
    }

    /// The handles that this heap's tracked objects hold to tracked objects
    /// of other heaps (the default heap included). Such an edge counts as
    /// a reference from outside for the heap of its target, so a cycle
    /// through it is never collected; this is the check that makes such
    /// cycles visible. Takes every object of the heap as `get_referrers`
    /// does (it traces every value).
    pub fn cross_heap_edges(&self) -> usize {
        cross_heap_edges_in(self.h)
    }
}

/// Counts the visited handles to tracked objects of another heap than
/// `id` (read during the visit, which keeps the target alive).
struct CrossHeap {
    id: u32,
    n: usize,
}

impl SyncSink for CrossHeap {
    fn edge(&mut self, target: NonNull<SyncHeader>) {
        // SAFETY: the handle being visited keeps `target` alive for the
        // duration of the call.
        let t = unsafe { target.as_ref() };
        if t.vtable.tracked && t.heap_id() != self.id {
            self.n += 1;
        }
    }
}

/// Handles from `h`'s tracked objects to tracked objects of another heap.
pub(crate) fn cross_heap_edges_in(h: &SyncHeap) -> usize {
    with_all_owned(h, |objs, bump| {
        let mut sink = CrossHeap { id: h.id, n: 0 };
        for &obj in objs {
            // SAFETY: owned by `with_all_owned` (I2).
            let o = unsafe { obj.as_ref() };
            if o.flags.load(Ordering::Acquire) & EXCLUSIVE != 0 {
                continue;
            }
            let mut v = Visitor::new(Mode::Sync(&mut sink), Some(bump));
            // SAFETY: owned and not exclusive (I2, I3).
            v.with_sync_object(obj, |v| unsafe { (o.vtable.trace)(obj, v) });
        }
        sink.n
    })
}

impl Default for Heap {
    fn default() -> Self {
        Heap::new()
    }
}

impl core::fmt::Debug for Heap {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Heap")
            .field("id", &self.h.id)
            .field("count", &get_count_in(self.h))
            .finish_non_exhaustive()
    }
}

impl Drop for Heap {
    fn drop(&mut self) {
        let h = self.h;
        // A full collection (unless this thread is collecting: then the
        // survivors simply move), and its drops.
        let r = panic::catch_unwind(AssertUnwindSafe(|| {
            collect_generation_in(h, GENERATIONS - 1);
            wait_for_drops_in(h);
        }));
        if heap::is_collecting(h) || heap::is_finishing() {
            // Its own collection's survivors (or resurrected garbage) are
            // given back after this: say so, rather than lose them silently.
            log::warn!(
                target: "ouro::gc",
                "an ouro::sync::Heap was dropped from inside a collection: objects that \
                 collection gives back stay in the dropped heap, and no collection examines them"
            );
        }
        {
            let state = exclude_collection(h);
            let saved = core::mem::take(&mut *prims::lock(&h.garbage));
            heap::migrate(h);
            prims::lock(&heap().garbage).extend(saved);
            // The heap itself stays (see `heap::new_heap`); its collector's
            // tables, sized for its largest collection, need not.
            if let Some(mut state) = state {
                state.tables = Default::default();
                state.scratch = bumpalo::Bump::new();
            }
        }
        if let Err(p) = r
            && !std::thread::panicking()
        {
            panic::resume_unwind(p);
        }
    }
}
