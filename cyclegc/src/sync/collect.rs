//! One collection of the process-wide heap: the steps of the protocol in
//! the module documentation of `sync`, in order.

use core::ptr::NonNull;
use std::panic::{self, AssertUnwindSafe};
use std::time::Instant;

use super::header::*;
use super::heap::{self, CollectorState, List, SHARDS, SyncHeap};
use super::prims::{self, Ordering};
use crate::debug::{DebugFlags, Found, Phase};
use crate::visitor::{KeptGuard, SyncSink, Visitor};

mod report;

/// Per-object state in the collector's tables.
const UNKNOWN: u8 = 0;
const REACHABLE: u8 = 1;
/// A candidate of the guess (step 2).
const CANDIDATE: u8 = 2;
/// A candidate that failed verification (step 3).
const FAILED: u8 = 3;
/// Verified garbage (G').
const GARBAGE: u8 = 4;
/// Destroyed: not given back.
const GONE: u8 = 5;
/// Destroyed, and its claim ended (freed, or left to a handle a `Drop`
/// moved out).
const ENDED: u8 = 7;

/// The collector's tables, kept between collections so that their capacity
/// is reused (a collection allocates only when the heap has grown).
#[derive(Default)]
pub(crate) struct Tables {
    objs: Vec<NonNull<SyncHeader>>,
    refs: Vec<i64>,
    state: Vec<u8>,
    /// Edges counted by the verification, per candidate (`counted`), and
    /// their targets (`edges`, grouped by source: `edge_start`).
    counted: Vec<u32>,
    edges: Vec<u32>,
    edge_start: Vec<u32>,
    cands: Vec<u32>,
    snap: Vec<u64>,
    work: Vec<u32>,
    guards: Vec<KeptGuard>,
    /// Where each candidate's guards start in `guards` (by position in
    /// `cands`; one more entry at the end).
    guard_start: Vec<u32>,
    /// Table index -> position in `cands`, built when a failure needs it.
    pos: Vec<u32>,
    /// The first place in `objs` of each run of a list (`take`'s layout),
    /// and the places a list left empty.
    run_starts: Vec<usize>,
    holes: Vec<usize>,
    /// Each object's counts word as the first pass read it (before its
    /// trace).
    words: Vec<u64>,
    /// The current chunk's `gc_refs` and marks, by index in the chunk
    /// (after the first pass, the report's, by table index: [`report`]).
    local_refs: Vec<i64>,
    local_mark: Vec<u8>,
    local_work: Vec<u32>,
    /// The current chunk's candidates, by index in the chunk.
    chunk_cands: Vec<u32>,
    /// `refs` of the current chunk before a trace without guards, put back
    /// if the chunk is traced again with them (`first_pass`).
    refs_before: Vec<i64>,
    /// Whether the last chunk of the last first pass had no candidates: the
    /// next first pass then starts without keeping guards.
    last_chunk_clean: bool,
    /// Blocks to free at the end of a collection (freed in one batch).
    free: Vec<(NonNull<u8>, core::alloc::Layout)>,
    /// (traced object, exclusive target) pairs seen by the guess.
    exclusive_seen: Vec<(u32, NonNull<SyncHeader>)>,
    /// Edges seen by the guess, grouped by source.
    adj: Vec<u32>,
    adj_start: Vec<u32>,
    /// G' claimed by the first pass, chunk by chunk (in table order), and
    /// where each chunk's part ends (`group_end`).
    chunk_garbage: Vec<u32>,
    group_end: Vec<u32>,
    /// G' claimed by the global steps, in table order.
    global_garbage: Vec<u32>,
    /// The objects the first pass traced whose `trace` is not structural
    /// (and found no lock busy), in table order: roots for the collection,
    /// whose recorded edges only the report trusts ([`report`]).
    untrusted: Vec<u32>,
    /// Those of `untrusted` that are structural but hold a value whose
    /// `trace` is not (a trait object's), with that value's type.
    inner_untrusted: Vec<(u32, crate::visitor::TypeName)>,
}

// SAFETY: the raw pointers in the tables are only used by the thread that
// holds the collector lock, which owns the objects they point to (I1).
unsafe impl Send for Tables {}

/// The index of a collector-owned object, kept in its `prev` link.
///
/// # Safety
/// `obj` has `IN_COLLECTOR` set (the running collection owns its links).
#[inline(always)]
unsafe fn index_of(obj: NonNull<SyncHeader>) -> usize {
    // SAFETY: caller contract (I1 (b)).
    unsafe { (*SyncHeader::links(obj).as_ref().prev.get()).addr() }
}

/// Records `i` as the index of a collector-owned object (see [`index_of`]).
///
/// # Safety
/// As [`index_of`].
#[inline(always)]
unsafe fn set_index(obj: NonNull<SyncHeader>, i: usize) {
    // SAFETY: caller contract (I1 (b)).
    unsafe { *SyncHeader::links(obj).as_ref().prev.get() = core::ptr::without_provenance_mut(i) };
}

/// The collector-table index of `target` if the running collection owns
/// it (checked against the table, so that a stale index can never name
/// another object), with the flags it read (the `EXCLUSIVE` of an object
/// this collection owns changes only in `take`).
#[inline(always)]
fn owned_index(target: NonNull<SyncHeader>, objs: &[NonNull<SyncHeader>]) -> Option<(usize, u32)> {
    // SAFETY: the handle that reported `target` keeps it alive.
    let f = unsafe { target.as_ref() }.flags.load(Ordering::Acquire);
    if f & IN_COLLECTOR == 0 {
        return None;
    }
    // SAFETY: `IN_COLLECTOR` is set, and only this collection sets it.
    let i = unsafe { index_of(target) };
    (objs.get(i) == Some(&target)).then_some((i, f))
}

/// The first pass's traversal: records the edges into the taken objects,
/// grouped by source (`Tables::adj_start`), and whether a lock was busy.
/// The guards are kept (by the visitor) until the object's chunk is done.
struct Record<'t> {
    objs: &'t [NonNull<SyncHeader>],
    adj: &'t mut Vec<u32>,
    exclusive_seen: &'t mut Vec<(u32, NonNull<SyncHeader>)>,
    current: u32,
    busy: bool,
    /// A value inside whose `trace` is not structural, by type.
    unstructural: Option<fn() -> &'static str>,
}

impl SyncSink for Record<'_> {
    fn edge(&mut self, target: NonNull<SyncHeader>) {
        let Some((i, f)) = owned_index(target, self.objs) else {
            return;
        };
        self.adj.push(i as u32);
        if f & EXCLUSIVE != 0 {
            self.exclusive_seen.push((self.current, target));
        }
    }
    fn lock_busy(&mut self) {
        self.busy = true;
    }
    fn unstructural(&mut self, type_name: fn() -> &'static str) {
        self.unstructural = Some(type_name);
    }
}

/// The verification's traversal: holds guards, counts edges between
/// candidates.
struct Verify<'t> {
    objs: &'t [NonNull<SyncHeader>],
    state: &'t [u8],
    counted: &'t mut [u32],
    edges: &'t mut Vec<u32>,
    busy: bool,
    /// For the exclusive probe: the object looked for, and whether found.
    probe: Option<(NonNull<SyncHeader>, bool)>,
}

impl SyncSink for Verify<'_> {
    fn edge(&mut self, target: NonNull<SyncHeader>) {
        if let Some((t, found)) = &mut self.probe {
            *found |= *t == target;
            return;
        }
        if let Some((i, _)) = owned_index(target, self.objs)
            && self.state[i] == CANDIDATE
        {
            self.counted[i] += 1;
            self.edges.push(i as u32);
        }
    }
    fn lock_busy(&mut self) {
        self.busy = true;
    }
    /// The candidate cannot be verified (its `trace` runs code the
    /// collector cannot hold locks across): it fails, as with a busy lock.
    fn unstructural(&mut self, _: fn() -> &'static str) {
        self.busy = true;
    }
}

/// Traces the value of a collector-owned object with `sink`, keeping the
/// lock guards in `guards` if given.
///
/// # Safety
/// `obj` is owned by the running collection (I2), not `EXCLUSIVE` (I3).
#[inline]
unsafe fn trace_with(
    obj: NonNull<SyncHeader>,
    sink: &mut dyn SyncSink,
    guards: Option<&mut Vec<KeptGuard>>,
    scratch: &bumpalo::Bump,
) {
    let mut v = Visitor::new_sync(sink, guards, scratch);
    // SAFETY: caller contract: the value is intact and nobody holds `&mut`.
    v.with_sync_object(obj, |v| unsafe { (obj.as_ref().vtable.trace)(obj, v) });
}

/// Drops the held guards, innermost first.
fn release_guards(guards: &mut Vec<KeptGuard>) {
    // Innermost first: an inner guard may borrow from an outer one's data.
    while let Some(g) = guards.pop() {
        drop(g);
    }
}

/// What a collection did.
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct Outcome {
    pub(crate) unreachable: usize,
    pub(crate) collected: usize,
    pub(crate) uncollectable: usize,
}

/// A panic caught in user code, kept until the heap is consistent.
pub(crate) type Panic = Box<dyn std::any::Any + Send>;

/// What is left of a collection once its critical part is done.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Rest {
    /// Nothing but the zombies' drops (if any).
    Nothing,
    /// Step 5 (G' is `cands`), then step 6 unless a finalizer resurrected
    /// some of G'.
    Finalize,
    /// Step 6.
    Destroy,
}

/// A collection whose critical part is done (steps 1 to 4 and the give-back
/// of the survivors, under the collector lock): what is left runs without
/// that lock, in [`finish`]. The batch owns the claimed garbage G' (I4) and
/// the zombies found while giving objects back (I2).
pub(crate) struct Batch {
    t: Tables,
    generation: usize,
    start: Instant,
    outcome: Outcome,
    rest: Rest,
    /// G' is listed in `cands` (finalizers or `SAVEALL`), not per group in
    /// `chunk_garbage` and `global_garbage`.
    whole: bool,
    saveall: bool,
    back: GiveBack,
    zombies: Vec<NonNull<SyncHeader>>,
    /// The non-structural types whose values the report found keeping
    /// cycles alive (warned about in [`finish`], once per process).
    reported: Vec<&'static SyncVTable>,
    /// The same for the non-structural values inside structural ones
    /// (trait objects'), by their types' names.
    reported_names: Vec<fn() -> &'static str>,
    /// The objects `DebugFlags::COLLECTABLE` / `UNCOLLECTABLE` name, logged
    /// in [`finish`] (without the collector lock: a logger is user code).
    found: Vec<Found>,
    /// The first panic of user code (a callback or a `trace` so far).
    pub(crate) panic: Option<Panic>,
    /// Its entry in `SyncHeap::unfinished` (`control::wait_for_drops`).
    ticket: Option<u64>,
}

// SAFETY: the pointers in a batch are to objects only it can reach: claimed
// garbage (I4, and no other thread can reach G' by the proof of step 3) and
// zombies (count zero, unlinked, owned by the collection: I2). Whichever
// thread finishes the batch is the only one that uses them. Its tables hold
// no lock guard (released before the critical part ends, checked in
// `collect`); the re-verification takes and releases its own on the thread
// that finishes.
unsafe impl Send for Batch {}

impl Batch {
    /// Whether [`finish`] runs finalizers or `Drop`s (user code that must
    /// not run where the caller may hold locks, as at an allocation).
    pub(crate) fn runs_user_code(&self) -> bool {
        self.rest != Rest::Nothing || !self.zombies.is_empty()
    }
}

/// The critical part of a collection of generations `0..=generation`: the
/// `Start` callbacks, steps 1 to 4, and step 7 for the survivors. The caller
/// holds the collector lock (`state`) and has marked this thread as
/// collecting. No finalizer or `Drop` runs here: that is for [`finish`],
/// after the caller has released the lock.
/// Collects generation `generation` (and the younger ones). `automatic`:
/// the schedule chose it, and the survivors go to generation `into` (see
/// `schedule::promote_to`); only those collections adapt the schedule's
/// backoff. Otherwise (`None`, an explicit collection) they go to
/// `generation + 1` (2 at most).
pub(crate) fn collect(
    h: &SyncHeap,
    state: &mut CollectorState,
    generation: usize,
    automatic: Option<usize>,
) -> Batch {
    let start = Instant::now();
    let cb_panic =
        super::control::invoke_callbacks(h, Phase::Start, generation, Outcome::default(), start);
    h.young.store(0, Ordering::Relaxed);
    let mut b = Batch {
        t: core::mem::take(&mut state.tables),
        generation,
        start,
        outcome: Outcome::default(),
        rest: Rest::Nothing,
        whole: false,
        saveall: false,
        back: GiveBack {
            generation,
            into: automatic.unwrap_or((generation + 1).min(2)),
            automatic: automatic.is_some(),
            survivors: 0,
        },
        zombies: Vec::new(),
        reported: Vec::new(),
        reported_names: Vec::new(),
        found: Vec::new(),
        panic: cb_panic,
        ticket: None,
    };
    critical(h, state, &mut b);
    // No lock guard leaves the critical part (a batch may be finished on
    // another thread).
    debug_assert!(b.t.guards.is_empty(), "guards kept after the claim");
    state.scratch.reset();
    if b.rest != Rest::Finalize {
        // Everything went back (after finalizers, `finish` does this).
        b.back.finish(state);
    }
    // The counters drive the schedule: they change now (CPython's meaning).
    if generation + 1 < h.gen_counts.len() {
        h.gen_counts[generation + 1].fetch_add(1, Ordering::Relaxed);
    }
    for c in &h.gen_counts[1..=generation] {
        c.store(0, Ordering::Relaxed);
    }
    if b.runs_user_code() {
        b.ticket = Some(super::control::register_unfinished(h));
    }
    b
}

/// The rest of a collection, run without the collector lock: step 5 (the
/// finalizers; then, holding the lock again, the re-verification), step 6
/// (drops and frees), the zombies' drops, the statistics and the `Stop`
/// callbacks (holding the lock again, as the `Start` ones). A panic in
/// user code does not stop the rest: the first one is returned, with the
/// heap consistent.
pub(crate) fn finish(h: &SyncHeap, mut b: Batch) -> (Outcome, Option<Panic>) {
    let _finishing = heap::Finishing::start();
    if b.rest == Rest::Finalize {
        finalize_all(&mut b.t, &mut b.panic);
        let mut state = prims::lock(&h.collector);
        let _c = super::control::Collecting::start();
        b.after_finalizers(h, &mut state);
        b.back.finish(&mut state);
        state.scratch.reset();
    }
    if b.rest == Rest::Destroy {
        b.destroy_all();
    }
    drop_zombies(core::mem::take(&mut b.zombies), &mut b.panic);
    report::warn_new_types(h, &b.reported, &b.reported_names, &mut b.panic);
    if !b.found.is_empty()
        && let Some(p) = catch(|| b.found.iter().for_each(|f| f.log()))
    {
        b.panic.get_or_insert(p);
    }
    let (generation, outcome) = (b.generation, b.outcome);
    {
        let mut stats = prims::lock(&h.stats);
        let st = &mut stats[generation];
        st.collections += 1;
        st.collected += outcome.collected;
        st.uncollectable += outcome.uncollectable;
    }
    // After an automatic collection, the young threshold backs off or comes
    // back (`schedule`); an explicit one says nothing about them.
    if b.back.automatic {
        let backoff = h.backoff.load(Ordering::Relaxed);
        h.backoff.store(
            crate::schedule::after_collection(
                backoff,
                generation,
                outcome.unreachable,
                b.back.survivors + outcome.unreachable,
            ),
            Ordering::Relaxed,
        );
        h.update_trigger();
    }
    // A logger is user code: its panic must not skip the ticket and the
    // `Stop` callbacks below (`wait_for_drops` would wait forever).
    if h.debug().contains(DebugFlags::STATS)
        && let Some(p) = catch(|| {
            log::info!(
                target: "ouro::gc",
                "sync gc: generation {generation}: {} unreachable, {} collected, {} uncollectable, {:.3} ms",
                outcome.unreachable,
                outcome.collected,
                outcome.uncollectable,
                b.start.elapsed().as_secs_f64() * 1e3
            )
        })
    {
        b.panic.get_or_insert(p);
    }
    if let Some(ticket) = b.ticket.take() {
        super::control::unregister_unfinished(h, ticket);
    }
    // The `Stop` callbacks run under the collector lock, as the `Start`
    // ones (one callback at a time; `collect()` from one returns at once).
    // The tables go back for the next collection to reuse.
    let callbacks = super::control::has_callbacks(h);
    let mut state = if callbacks {
        Some(prims::lock(&h.collector))
    } else {
        prims::try_lock(&h.collector)
    };
    if let Some(s) = &mut state
        && s.tables.objs.capacity() < b.t.objs.capacity()
    {
        s.tables = core::mem::take(&mut b.t);
    }
    if callbacks {
        let _c = super::control::Collecting::start();
        let p = super::control::invoke_callbacks(h, Phase::Stop, generation, outcome, b.start);
        if let Some(p) = p {
            b.panic.get_or_insert(p);
        }
    }
    drop(state);
    (outcome, b.panic)
}

/// What a `COLLECTABLE` / `UNCOLLECTABLE` line says about `obj`, an
/// object this collection owns (its header is readable, I2).
fn found_line(obj: NonNull<SyncHeader>, collectable: bool) -> Found {
    let o = unsafe_ref(obj);
    Found {
        collectable,
        type_name: o.vtable.type_name,
        // SAFETY: the header is readable (above); the value's address is
        // computed, not read.
        address: unsafe { SyncHeader::value_ptr(obj) }.as_ptr().addr(),
    }
}

fn catch(f: impl FnOnce()) -> Option<Panic> {
    panic::catch_unwind(AssertUnwindSafe(f)).err()
}

/// Steps 1 to 4 and 7 for the survivors (see [`collect`]); says in
/// `b.rest` what is left.
fn critical(h: &SyncHeap, state: &mut CollectorState, b: &mut Batch) {
    let scratch = &state.scratch;
    let t = &mut b.t;
    take(h, t, b.generation);
    let n = t.objs.len();
    // Read once: a claim may already mark the garbage dead, which `SAVEALL`
    // must not find.
    let saveall = h.debug().contains(DebugFlags::SAVEALL);
    b.saveall = saveall;

    // Steps 2 to 4 chunk by chunk (`first_pass`).
    let mut claimed = Claimed::default();
    let chunk = chunk_size(h);
    let r = tracing(|| catch(|| claimed = first_pass(t, scratch, chunk, !saveall)));
    if let Some(p) = r {
        b.panic.get_or_insert(p);
        withdraw_first_pass(t);
        b.back.give(h, t, |_| true, &mut b.zombies);
        return;
    }
    if !t.exclusive_seen.is_empty() {
        if let Some(p) = tracing(|| catch(|| release_stale_exclusives(t, scratch))) {
            b.panic.get_or_insert(p);
        }
        release_guards(&mut t.guards);
    }

    // Step 2 for the rest, on the recorded edges.
    guess(t);
    t.cands.clear();
    for (i, &s) in t.state.iter().enumerate() {
        if s == CANDIDATE {
            t.cands.push(i as u32);
        }
    }

    // Steps 3 and 4 for the global candidates.
    if !t.cands.is_empty() {
        claimed.merge(verify_global(t, scratch, saveall, &mut b.panic));
    }
    t.global_garbage.clear();
    for &c in &t.cands {
        if t.state[c as usize] == GARBAGE {
            t.global_garbage.push(c);
        }
    }
    // G' is `chunk_garbage` and `global_garbage`. Finalizers and `SAVEALL`
    // work on all of it at once: for them, from here on `cands` is G', in
    // table order.
    b.whole = claimed.needs_finalize || saveall;
    if b.whole {
        t.cands.clear();
        for i in 0..n {
            if t.state[i] == GARBAGE {
                t.cands.push(i as u32);
            }
        }
    }
    // Reported, not collected: what only non-structural values keep alive
    // (while the survivors are still ours; not after a `trace` panicked,
    // which may have left garbage unclaimed).
    if !t.untrusted.is_empty() && b.panic.is_none() {
        let log = h.debug().contains(DebugFlags::UNCOLLECTABLE);
        let r = report::report_uncollectable(h, t, saveall, log);
        (
            b.outcome.uncollectable,
            b.reported,
            b.reported_names,
            b.found,
        ) = (r.found, r.types, r.names, r.lines);
    }
    // Everything but the garbage goes back now, before any user code runs
    // (finalizers, drops, zombies): a thread waiting in `get_mut` for one
    // of these objects must not wait for that code.
    b.back.give(h, t, |s| s != GARBAGE, &mut b.zombies);
    if !claimed.ok {
        return;
    }
    if h.debug().contains(DebugFlags::COLLECTABLE) {
        // Named as found, before finalizers run (as CPython does: a set a
        // finalizer resurrects is named too); logged in `finish`.
        for (i, &s) in t.state.iter().enumerate() {
            if s == GARBAGE {
                b.found.push(found_line(t.objs[i], true));
            }
        }
    }
    if claimed.needs_finalize {
        if claimed.dead_folded {
            // A finalizer may resurrect them: not dead yet.
            for &c in &t.cands {
                unsafe_ref(t.objs[c as usize])
                    .update_flags_exclusively(LINKED | IN_COLLECTOR, DEAD);
            }
        }
        b.rest = Rest::Finalize;
        return;
    }
    // Objects whose count reached zero during the collection (zombies) were
    // freed by counting, not found by the collector: not counted.
    b.outcome.unreachable = claimed.found;
    if saveall {
        b.save_all(h);
        return;
    }
    if claimed.not_folded {
        mark_dead(t, b.whole);
    }
    b.outcome.collected = claimed.found;
    b.rest = Rest::Destroy;
}

impl Batch {
    /// Step 5 after the finalizers ran, under the collector lock again (the
    /// re-verification traces values and may give G' back: I6): verifies G'
    /// again; if a finalizer resurrected any of it, withdraws the claims and
    /// gives it all back.
    fn after_finalizers(&mut self, h: &SyncHeap, state: &mut CollectorState) {
        let t = &mut self.t;
        let scratch = &state.scratch;
        // Re-verify exactly G' (the rest is given back already).
        for &c in &t.cands {
            if t.state[c as usize] == GARBAGE {
                t.state[c as usize] = CANDIDATE;
            }
        }
        let r = tracing(|| {
            catch(|| {
                verify_trace(t, scratch);
                verify_check(t, true, false);
            })
        });
        release_guards(&mut t.guards);
        let intact = r.is_none() && t.cands.iter().all(|&c| t.state[c as usize] != FAILED);
        if let Some(p) = r {
            self.panic.get_or_insert(p);
        }
        if !intact {
            // Resurrected (or the check could not finish): nothing is freed
            // now, the claims are withdrawn. The objects live on, so do
            // their weak handles (as when a claim is withdrawn in step 4).
            for &c in &t.cands {
                let i = c as usize;
                if matches!(t.state[i], CANDIDATE | FAILED | GARBAGE) {
                    // Exclusive: still claimed (I4), and before the claim
                    // ends (a mutator may set `ZOMBIE` after that).
                    unsafe_ref(t.objs[i]).update_flags_exclusively(0, WEAK_CLEARED);
                    unclaim(t.objs[i]);
                    t.state[i] = REACHABLE;
                }
            }
            self.back.give(h, t, |_| true, &mut self.zombies);
            self.rest = Rest::Nothing;
            return;
        }
        // Intact: the objects stay claimed; only the marks go. (A drop to
        // zero of a claimed object does nothing whether or not it is
        // marked, I4: step 6 reads the counts.)
        for (&c, &seen) in t.cands.iter().zip(&t.snap) {
            if seen != NOT_MARKED {
                unsafe_ref(t.objs[c as usize])
                    .counts
                    .fetch_and(!MARKED, Ordering::AcqRel);
            }
        }
        // Counted again after the finalizers: they may have moved handles
        // around (zombies were freed by counting: not counted).
        let garbage = t
            .cands
            .iter()
            .filter(|&&c| {
                t.state[c as usize] == GARBAGE
                    && unsafe_ref(t.objs[c as usize])
                        .counts
                        .load(Ordering::Relaxed)
                        & STRONG_MASK
                        != 0
            })
            .count();
        self.outcome.unreachable = garbage;
        if self.saveall {
            self.save_all(h);
            return;
        }
        mark_dead(t, true);
        self.outcome.collected = garbage;
        self.rest = Rest::Destroy;
    }

    /// `SAVEALL`: keeps G' (`cands`), one strong reference each, in
    /// `garbage()`, and gives it back.
    fn save_all(&mut self, h: &SyncHeap) {
        let t = &mut self.t;
        let mut saved = prims::lock(&h.garbage);
        for &c in &t.cands {
            let i = c as usize;
            if t.state[i] == GARBAGE {
                let obj = t.objs[i];
                let o = unsafe_ref(obj);
                // Exclusive: claimed. A zombie is one no longer: the saved
                // reference keeps it.
                o.update_flags_exclusively(0, ZOMBIE);
                let _ = o
                    .counts
                    .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |c| {
                        Some((c + STRONG_ONE) & !CLAIMED)
                    });
                saved.push(super::raw::ObjectRef { obj });
                t.state[i] = REACHABLE;
            }
        }
        // Saved objects count as collected (CPython's count); the report's
        // objects (if any) are counted as uncollectable already.
        self.outcome.collected += self.outcome.unreachable;
        drop(saved);
        self.back.give(h, t, |_| true, &mut self.zombies);
        self.rest = Rest::Nothing;
    }

    /// Step 6: drops G' and ends its claims, group by group.
    fn destroy_all(&mut self) {
        let t = &mut self.t;
        let panic_payload = &mut self.panic;
        let mut layouts = heap::LayoutCache::new();
        if self.whole {
            // Finalizers may have moved handles anywhere inside G': one group.
            let all = core::mem::take(&mut t.cands);
            destroy(t, &all, &mut layouts, panic_payload);
            t.cands = all;
        } else {
            // Chunk by chunk, then the global garbage: each group's memory
            // is still in the cache when its counts are checked and its
            // blocks freed. Every handle to an object a chunk claimed is in
            // a value that chunk claimed (its chunk-local `gc_refs` were
            // zero, and every chunk object with an edge to it was claimed
            // too, by (d)); any G' value may hold handles to the global
            // garbage, which comes last. Soundness does not rest on the
            // order: a count still above zero when checked is handled as a
            // handle moved out of the garbage (the claim ends, and the last
            // handle's drop releases the header).
            let chunks = core::mem::take(&mut t.chunk_garbage);
            let mut from = 0;
            for g in 0..t.group_end.len() {
                let to = t.group_end[g] as usize;
                destroy(t, &chunks[from..to], &mut layouts, panic_payload);
                from = to;
            }
            t.chunk_garbage = chunks;
            let global = core::mem::take(&mut t.global_garbage);
            destroy(t, &global, &mut layouts, panic_payload);
            t.global_garbage = global;
        }
    }
}

/// Step 6's first part, for claims that did not set `DEAD` already: sets
/// it on all of G' (`cands` if `whole`, else the per-group lists) and
/// clears `IN_COLLECTOR`: a handle a `Drop` moves out may outlive this
/// collection, and a later one must not take the stale index in `prev`
/// for its own.
fn mark_dead(t: &Tables, whole: bool) {
    let dead = |c: u32| {
        if t.state[c as usize] == GARBAGE {
            // Exclusive: claimed garbage (I4).
            unsafe_ref(t.objs[c as usize]).update_flags_exclusively(DEAD, LINKED | IN_COLLECTOR);
        }
    };
    if whole {
        t.cands.iter().for_each(|&c| dead(c));
    } else {
        t.chunk_garbage
            .iter()
            .chain(&t.global_garbage)
            .for_each(|&c| dead(c));
    }
}

/// Step 6 for the G' objects at table indices `list`: drops their values,
/// ends their claims and frees the blocks nobody holds any more.
fn destroy(
    t: &mut Tables,
    list: &[u32],
    layouts: &mut heap::LayoutCache,
    panic_payload: &mut Option<Box<dyn std::any::Any + Send>>,
) {
    // Borrowed apart: the drops are opaque calls, after which anything
    // reached through `t` would be read again.
    let Tables {
        objs, state, free, ..
    } = t;
    let objs: &[NonNull<SyncHeader>] = objs;
    let mut k = 0;
    let mut hook_panic = None;
    while k < list.len() {
        let r = catch(|| {
            while k < list.len() {
                if let Some(&ahead) = list.get(k + PREFETCH) {
                    prims::prefetch(objs[ahead as usize].as_ptr());
                }
                let i = list[k] as usize;
                k += 1;
                if state[i] == GARBAGE {
                    state[i] = GONE;
                    let obj = objs[i];
                    if unsafe_ref(obj).has(HOOKED) {
                        // Death hooks run before the value drops (see
                        // `hooks`), without the collector lock.
                        let hooks = crate::hooks::sync_take(obj.as_ptr().addr());
                        if let Some(p) = crate::hooks::run_all(hooks) {
                            hook_panic.get_or_insert(p);
                        }
                    }
                    // SAFETY: verified garbage, claimed (I4): the collector
                    // owns the value; it is dropped once (state GONE).
                    unsafe { (obj.as_ref().vtable.drop_value)(obj) };
                }
            }
        });
        if let Some(p) = r {
            panic_payload.get_or_insert(p);
        }
    }
    if let Some(p) = hook_panic {
        panic_payload.get_or_insert(p);
    }
    free.clear();
    for &c in list {
        let i = c as usize;
        if state[i] != GONE {
            continue;
        }
        // Done with, whatever follows: the claim ends once.
        state[i] = ENDED;
        let obj = objs[i];
        // The claim ends. A count left above zero means a `Drop` moved a
        // handle to this object out of the garbage (or a value of a later
        // group still holds one): that handle now owns the header (the value
        // is `DEAD`), and its drop releases it.
        let counts = &unsafe_ref(obj).counts;
        // No handle left: nobody can change the count any more, so no
        // read-modify-write is needed to end the claim.
        let old = match counts.load(Ordering::Acquire) {
            c if c & STRONG_MASK == 0 => c,
            _ => counts.fetch_and(!CLAIMED, Ordering::AcqRel),
        };
        if old & STRONG_MASK == 0 {
            // SAFETY: the strong side's weak count, released once; the
            // memory is freed below, after this loop's last read.
            if let Some(block) = unsafe { heap::release_weak_deferred(obj, layouts) } {
                free.push(block);
            }
        }
    }
    // SAFETY: blocks whose last count of any kind was released above, each
    // once.
    unsafe { heap::free_blocks(free) };
    free.clear();
}

/// Marks the collecting thread as tracing while `f` runs: dereferencing an
/// object the collection owns panics then (see `raw::check_deref`), so one
/// object's `trace` cannot reach into another's value.
fn tracing<R>(f: impl FnOnce() -> R) -> R {
    struct Off;
    impl Drop for Off {
        fn drop(&mut self) {
            heap::set_tracing(false);
        }
    }
    heap::set_tracing(true);
    let _off = Off;
    f()
}

/// A `trace` of the first pass panicked: withdraws the claims of the chunks
/// done so far, flags first (a mutator may set `ZOMBIE` once the claim
/// ends), and makes every object a survivor. The guards go first.
fn withdraw_first_pass(t: &mut Tables) {
    release_guards(&mut t.guards);
    for (s, &obj) in t.state.iter_mut().zip(&t.objs) {
        if *s == GARBAGE {
            unsafe_ref(obj).update_flags_exclusively(LINKED | IN_COLLECTOR, DEAD | WEAK_CLEARED);
            unclaim(obj);
        }
        *s = REACHABLE;
    }
}

/// Steps 3 and 4 for the global candidates (`cands`): what they claim. A
/// panic of a `trace` goes to `panic`, and every candidate survives.
fn verify_global(
    t: &mut Tables,
    scratch: &bumpalo::Bump,
    saveall: bool,
    panic: &mut Option<Panic>,
) -> Claimed {
    let mut traced = Traced::default();
    if let Some(p) = tracing(|| catch(|| traced = verify_trace(t, scratch))) {
        panic.get_or_insert(p);
        release_guards(&mut t.guards);
        for s in &mut t.state {
            if matches!(*s, CANDIDATE | FAILED) {
                *s = REACHABLE;
            }
        }
        return Claimed::default();
    }
    // The first pass's claimed garbage holds handles too: its values cannot
    // change any more (nobody can reach them), so the edges it recorded
    // count as counted edges.
    count_claimed_edges(t);
    if traced.weak {
        verify_check(t, false, false);
        claim_and_release(t)
    } else {
        verify_check(t, false, true);
        claim_unshared(t, !traced.finalize && !saveall)
    }
}

/// Dereferences a header the running collection owns.
#[inline(always)]
fn unsafe_ref<'a>(obj: NonNull<SyncHeader>) -> &'a SyncHeader {
    // SAFETY: every pointer in the tables is an object owned by the running
    // collection (I1, I2), alive until the collection frees it (and then it
    // is never dereferenced again: state GONE, then ENDED).
    unsafe { obj.as_ref() }
}

/// `gc_refs` of an object that is a root for this collection whatever its
/// count: one the collector must not read (`EXCLUSIVE`), or cannot verify
/// (a busy lock, a `trace` that is not structural).
const ROOT_REFS: i64 = i64::MAX / 2;

/// Step 1: takes generations `0..=generation` of every shard. The first
/// part of step 2 (copying each strong count into `gc_refs`) is done here,
/// while the header is in the cache anyway.
///
/// The table is laid out before anything is taken ([`TableLayout`]), from the
/// lengths of the lists read under each shard's lock: oldest generation
/// first (objects are given back in table order, so each shard's lists
/// stay in allocation order), and the lists of one generation from
/// different shards in turns (see [`TableLayout::plan`]). Each object is then
/// written to its place while its list is walked, and its index into its
/// `prev` link, once. A list that changed in between (allocations and drops
/// go on) puts what it gained after everything planned and leaves a hole
/// where it lost something; the holes are filled from the end of the table
/// afterwards ([`fill_holes`]).
///
/// Each list is walked from both ends at once
/// ([`List::for_each_from_both_ends`]): on a heap larger than the cache the
/// walk is a chain of cache misses, and two chains overlap them (1M live
/// objects: the collection took 0.9x the time).
#[inline(never)]
fn take(h: &SyncHeap, t: &mut Tables, generation: usize) {
    let gens = generation + 1;
    let mut lens = [[0usize; 3]; SHARDS];
    for (slot, lens) in h.shards.iter().zip(&mut lens) {
        let shard = prims::lock(&slot.0);
        for (len, list) in lens.iter_mut().zip(&shard.lists[..gens]) {
            *len = list.len;
        }
    }
    let layout = TableLayout::plan(&lens, gens, &mut t.run_starts);
    t.objs.clear();
    t.refs.clear();
    t.objs.resize(layout.planned, NonNull::dangling());
    t.refs.resize(layout.planned, 0);
    t.holes.clear();
    for (s, slot) in h.shards.iter().enumerate() {
        let mut shard = prims::lock(&slot.0);
        for g in (0..gens).rev() {
            let list = core::mem::replace(&mut shard.lists[g], List::new());
            let plan = layout.lists[s][g];
            // Gained since the lengths were read: after everything else.
            let extra = t.objs.len();
            if list.len > plan.len {
                t.objs
                    .resize(extra + (list.len - plan.len), NonNull::dangling());
                t.refs.resize(extra + (list.len - plan.len), 0);
            }
            let run_starts = &t.run_starts;
            let place = |k: usize| {
                if k < plan.len {
                    run_starts[plan.first_run + (k >> plan.turn_shift)] + (k & plan.turn_mask())
                } else {
                    extra + (k - plan.len)
                }
            };
            // Lost since: holes.
            for k in list.len..plan.len {
                t.holes.push(place(k));
            }
            let (objs, refs) = (&mut t.objs[..], &mut t.refs[..]);
            // SAFETY: we hold the shard lock (I1 (a)) and took the list.
            unsafe { list.for_each_from_both_ends(|o, k| take_one(o, place(k), objs, refs)) };
        }
    }
    fill_holes(
        &mut t.objs,
        &mut t.refs,
        &mut t.holes,
        NonNull::dangling(),
        // SAFETY: taken above: `IN_COLLECTOR` is set.
        |o, i| unsafe { set_index(o, i) },
    );
    debug_assert!(t.objs.iter().all(|&o| o != NonNull::dangling()));
    let n = t.objs.len();
    t.state.clear();
    t.state.resize(n, UNKNOWN);
    t.exclusive_seen.clear();
}

/// Takes one object: sets `IN_COLLECTOR` and writes the object and its
/// `gc_refs` start to place `i` of the table, and `i` to its `prev` link.
///
/// # Safety
/// The caller holds the object's shard lock and took it off its list
/// (I1 (a)).
#[inline(always)]
unsafe fn take_one(
    o: NonNull<SyncHeader>,
    i: usize,
    objs: &mut [NonNull<SyncHeader>],
    refs: &mut [i64],
) {
    let h = unsafe_ref(o);
    let f = h.flags.load(Ordering::Relaxed);
    // The strong count is added by the first pass, which reads it just
    // before the trace.
    let mut r = 0;
    let mut clear = 0;
    if f & EXCLUSIVE != 0 {
        let c = h.counts.load(Ordering::Relaxed);
        if c & STRONG_MASK > 1 || h.weak.load(Ordering::Relaxed) > 1 {
            // Another handle exists, so the `&mut T` from `get_mut` ended
            // (I3); `get_mut` cannot run while we hold the shard lock, nor
            // afterwards while we own the object.
            clear = EXCLUSIVE;
        } else {
            // Unreadable: a root for this collection.
            r = ROOT_REFS;
        }
    }
    // Exclusive: under the shard lock while listed.
    h.flags
        .store((f | IN_COLLECTOR) & !clear, Ordering::Release);
    // SAFETY: the flag is set.
    unsafe { set_index(o, i) };
    objs[i] = o;
    refs[i] = r;
}

/// Where one shard's list of one generation goes in the table: its first
/// `len` members in runs of `2^turn_shift` places (the last run shorter),
/// starting at `Tables::run_starts[first_run..]`.
#[derive(Clone, Copy, Default)]
struct ListPlan {
    len: usize,
    turn_shift: u32,
    first_run: usize,
}

impl ListPlan {
    fn turn_mask(self) -> usize {
        (1usize << self.turn_shift) - 1
    }
}

/// The layout of the table, planned from the lengths of the lists.
struct TableLayout {
    lists: [[ListPlan; 3]; SHARDS],
    /// Places planned in all.
    planned: usize,
}

impl TableLayout {
    /// Plans the table for lists of lengths `lens[shard][generation]`
    /// (generations `0..gens`), oldest generation first. The lists of one
    /// generation follow each other in shard order, unless two of them are
    /// large ([`worth_interleaving`]): then they go in turns of
    /// `CHUNK / lists` places (rounded down to a power of two, at least 16),
    /// so that objects that threads allocated at about the same time (a
    /// structure built by several threads at once, whose halves live in
    /// different shards) fall into the same chunk of the first pass instead
    /// of chunks far apart: the first pass can then verify their cycles
    /// without a second trace. Writes the runs' first places to
    /// `run_starts`.
    fn plan(lens: &[[usize; 3]; SHARDS], gens: usize, run_starts: &mut Vec<usize>) -> TableLayout {
        run_starts.clear();
        let mut layout = TableLayout {
            lists: [[ListPlan::default(); 3]; SHARDS],
            planned: 0,
        };
        let mut pos = 0;
        for g in (0..gens).rev() {
            let streams = lens.iter().filter(|l| l[g] > 0).count();
            let interleave = worth_interleaving(lens.iter().map(|l| l[g]));
            let turn_shift = if interleave {
                (CHUNK / streams).max(16).ilog2()
            } else {
                usize::BITS - 1
            };
            let turn = 1usize << turn_shift;
            // Each list's runs are contiguous in `run_starts`.
            let mut rounds = 0;
            for (plan, l) in layout.lists.iter_mut().zip(lens) {
                let runs = l[g].div_ceil(turn);
                plan[g] = ListPlan {
                    len: l[g],
                    turn_shift,
                    first_run: run_starts.len(),
                };
                run_starts.resize(run_starts.len() + runs, 0);
                rounds = rounds.max(runs);
            }
            // One run of each list per round.
            for r in 0..rounds {
                for plan in &layout.lists {
                    let plan = plan[g];
                    if r < plan.len.div_ceil(turn) {
                        run_starts[plan.first_run + r] = pos;
                        pos += (plan.len - (r << turn_shift)).min(turn);
                    }
                }
            }
        }
        layout.planned = pos;
        layout
    }
}

/// Whether the lists of one generation (their lengths, one per shard) are
/// worth interleaving in the table (see [`TableLayout::plan`]): when at least two
/// of them have more than an eighth of a chunk. Otherwise all but one are
/// small (typically a thread that allocates a little beside the one that
/// built the heap), and their place in the table hardly matters.
fn worth_interleaving(lens: impl Iterator<Item = usize>) -> bool {
    lens.filter(|&len| len > CHUNK / 8).nth(1).is_some()
}

/// Fills the `holes` (places in `items` holding `hole`) with the last
/// items that are not holes, and shortens `items` (and `refs`, kept in
/// step) to what is left; `moved(item, place)` is called for every item
/// moved. Sorts `holes`.
fn fill_holes<T: Copy + PartialEq>(
    items: &mut Vec<T>,
    refs: &mut Vec<i64>,
    holes: &mut [usize],
    hole: T,
    mut moved: impl FnMut(T, usize),
) {
    holes.sort_unstable();
    let mut end = items.len();
    for &h in holes.iter() {
        while end > 0 && items[end - 1] == hole {
            end -= 1;
        }
        if h >= end {
            break;
        }
        end -= 1;
        items[h] = items[end];
        refs[h] = refs[end];
        moved(items[h], h);
    }
    items.truncate(end);
    refs.truncate(end);
}

/// How many objects ahead the passes over the table prefetch (see
/// `prims::prefetch`).
const PREFETCH: usize = 8;

/// Objects per chunk of the first pass: the collector holds the locks
/// inside a chunk's values from each one's trace to the end of the chunk,
/// about 30 ns per object (so a mutator that wants one of them waits some
/// tens of microseconds at most). Small under Miri, so that its few objects
/// span several chunks and the global step runs too (loom models choose).
const CHUNK: usize = if cfg!(miri) { 2 } else { 1024 };

/// Handles (edges into the taken objects) after which a chunk ends even if
/// it has fewer than `CHUNK` objects.
const CHUNK_EDGES: usize = 8 * CHUNK;

/// The first pass's chunk size: [`CHUNK`], or under loom the model's choice.
fn chunk_size(h: &SyncHeap) -> usize {
    #[cfg(loom)]
    return h.loom_chunk.load(std::sync::atomic::Ordering::Relaxed);
    #[cfg(not(loom))]
    {
        let _ = h;
        CHUNK
    }
}

/// Steps 2 and 3, first part: the first pass over the taken objects, in
/// chunks of [`CHUNK`] objects in table order. For each chunk: read each
/// object's counts word, then trace it with the guards kept (recording its
/// edges for step 2); then run trial deletion inside the chunk, on those
/// words and edges, and verify the chunk's candidates exactly as step 3
/// verifies the global ones (the candidates' values were traced with their
/// guards kept, and are marked after the chunk's last trace; a mark must
/// find the word read before the trace, whose count the trial explained);
/// claim what passes, unmark the rest and release the chunk's guards. Garbage whose cycles stay inside one chunk (objects allocated
/// together and dropped together) is then found with one trace; the rest
/// goes to the global guess (`guess`), which uses the recorded edges.
///
/// Keeping a guard costs a push and, at the end of the chunk, an indirect
/// call to drop it; on a heap of live objects that is about a sixth of the
/// pass, for nothing. So a chunk that follows one without candidates is
/// traced first with every guard released at once; only if that trace
/// finds candidates is the chunk traced again, with the guards kept (its
/// objects are in the cache by then), and its candidates verified and
/// claimed as above. Nothing is claimed on the strength of a trace whose
/// guards were released: that trace is only a guess, like step 2's.
///
/// The claim: with a plain store when no candidate of the chunk has a weak
/// handle (see [`claim_unshared`] for why that is sound once the checks are
/// done), marking the objects dead in the same store if `fold_dead`; else
/// with compare-exchanges, and a failed one withdraws the chunk's claims.
#[inline(never)]
fn first_pass(t: &mut Tables, scratch: &bumpalo::Bump, chunk: usize, fold_dead: bool) -> Claimed {
    let n = t.objs.len();
    t.adj.clear();
    // One entry per object (and one past the last in `adj_start`), written
    // in table order below.
    t.adj_start.clear();
    t.adj_start.resize(n + 1, 0);
    t.words.clear();
    t.words.resize(n, 0);
    t.chunk_garbage.clear();
    t.group_end.clear();
    t.untrusted.clear();
    t.inner_untrusted.clear();
    let mut out = Claimed::default();
    let mut lo = 0;
    // Whether to keep the guards of the next chunk: only after a chunk
    // with candidates (see above); for the first chunk, if the last chunk
    // of the last collection had some (the youngest objects, like the first
    // chunk of most collections: a program that makes cyclic garbage
    // usually keeps doing so). Under loom the first chunk is traced without
    // them first, so that the models (whose objects fit in one or two
    // chunks) go through the second trace.
    let mut hold = !cfg!(loom) && !t.last_chunk_clean;
    while lo < n {
        let end = (lo + chunk).min(n);
        let (mut hi, mut cands);
        if hold {
            hi = trace_chunk(t, scratch, lo, end, true);
            cands = local_trial(t, lo, hi, true);
        } else {
            let (excl, untrusted, inner) = (
                t.exclusive_seen.len(),
                t.untrusted.len(),
                t.inner_untrusted.len(),
            );
            t.refs_before.clear();
            t.refs_before.extend_from_slice(&t.refs[lo..end]);
            hi = trace_chunk(t, scratch, lo, end, false);
            cands = local_trial(t, lo, hi, false);
            if cands {
                // Again, keeping the guards this time (the objects are in
                // the cache now); forget the first trace, which changed
                // nothing outside the chunk.
                t.adj.truncate(t.adj_start[lo] as usize);
                t.refs[lo..end].copy_from_slice(&t.refs_before);
                t.exclusive_seen.truncate(excl);
                t.untrusted.truncate(untrusted);
                t.inner_untrusted.truncate(inner);
                hi = trace_chunk(t, scratch, lo, hi, true);
                cands = local_trial(t, lo, hi, true);
            } else {
                subtract_chunk_edges(t, lo);
            }
        }
        // The chunk's objects are all in `adj_start` now, and its last
        // edge ends where `adj` does. Candidates (if any) were traced with
        // their guards kept.
        if cands && let Some(chunk) = end_chunk(t, lo, hi, fold_dead) {
            out.merge(chunk);
        }
        release_guards(&mut t.guards);
        hold = cands;
        lo = hi;
    }
    if n > 0 {
        t.last_chunk_clean = !hold;
    }
    out
}

/// Step 3 (a) for one chunk of the first pass, objects `lo..hi`: reads
/// each one's counts word (for the trial), then traces it with the guards kept (if `hold`;
/// else released as soon as the lock's contents are traced), recording its
/// edges. The chunk's own `gc_refs` (`local_refs`) start at the strong
/// counts. A chunk ends early once its objects hold `CHUNK_EDGES` handles
/// (the time the guards are held is bounded by the work, not only by the
/// number of objects): returns where it ended.
///
/// The tables are borrowed apart and written through slices: the trace is
/// an opaque call, after which every `Vec` reached through `t` would be
/// read again from memory.
#[inline(always)]
fn trace_chunk(t: &mut Tables, scratch: &bumpalo::Bump, lo: usize, hi: usize, hold: bool) -> usize {
    let Tables {
        objs,
        refs,
        words,
        adj,
        adj_start,
        exclusive_seen,
        guards,
        local_refs,
        untrusted,
        inner_untrusted,
        ..
    } = t;
    let objs: &[NonNull<SyncHeader>] = objs;
    local_refs.clear();
    local_refs.resize(hi - lo, 0);
    let first_edge = adj.len();
    let mut end = hi;
    let slots = refs[lo..hi]
        .iter_mut()
        .zip(&mut words[lo..hi])
        .zip(&mut adj_start[lo..hi])
        .zip(local_refs.iter_mut());
    for (i, (((refs, word_slot), start), local)) in (lo..hi).zip(slots) {
        if adj.len() - first_edge > CHUNK_EDGES {
            end = i;
            break;
        }
        *start = adj.len() as u32;
        // Edges from earlier chunks only ever took a little off.
        if *refs > ROOT_REFS / 2 {
            // `EXCLUSIVE` (see `take`): not read.
            *local = ROOT_REFS;
            continue;
        }
        if let Some(&ahead) = objs.get(i + PREFETCH) {
            prims::prefetch(ahead.as_ptr());
        }
        let obj = objs[i];
        let o = unsafe_ref(obj);
        let word = o.counts.load(Ordering::SeqCst);
        *word_slot = word;
        let mut sink = Record {
            objs,
            adj,
            exclusive_seen,
            current: i as u32,
            busy: false,
            unstructural: None,
        };
        // Only a structural `trace` lets the collector hold every lock it
        // counted a handle behind (see "Which values the verification
        // accepts" in the module docs): the guards of any other are not
        // kept (a lock its `trace` took itself may free a kept one), and it
        // is a root; its edges are recorded for the report (`untrusted`).
        let mut structural = o.vtable.structural;
        let (guards_before, edges_before, excl_before) =
            (guards.len(), sink.adj.len(), sink.exclusive_seen.len());
        let kept = if structural && hold {
            Some(&mut *guards)
        } else {
            None
        };
        // SAFETY: owned by this collection, not exclusive.
        unsafe { trace_with(obj, &mut sink, kept, scratch) };
        // A value inside whose `trace` is not structural (a trait
        // object's): the object is not structural after all. With guards
        // kept the value was not traced (`Visitor::enter_unstructural`):
        // let go of the object's guards and trace it again without them,
        // recording every edge for the report.
        if let Some(name) = sink.unstructural.take() {
            if structural && hold {
                while guards.len() > guards_before {
                    drop(guards.pop());
                }
                sink.adj.truncate(edges_before);
                sink.exclusive_seen.truncate(excl_before);
                sink.busy = false;
                // SAFETY: as above.
                unsafe { trace_with(obj, &mut sink, None, scratch) };
            }
            structural = false;
            if !sink.busy {
                inner_untrusted.push((i as u32, name));
            }
        }
        if !structural && !sink.busy {
            untrusted.push(i as u32);
        }
        // A busy lock hid some edges: a root too.
        let r = if sink.busy || !structural {
            *refs = ROOT_REFS;
            ROOT_REFS
        } else {
            (word & STRONG_MASK) as i64
        };
        // (Edges from earlier chunks were subtracted already.)
        *refs = refs.saturating_add(r);
        *local = r;
    }
    local_refs.truncate(end - lo);
    adj_start[end] = adj.len() as u32;
    end
}

/// Chunk-local marks of [`end_chunk`].
const L_UNKNOWN: u8 = 0;
const L_REACHABLE: u8 = 1;
const L_CANDIDATE: u8 = 2;
const L_FAILED: u8 = 3;

/// The edges of one chunk of the first pass (objects `lo..`), by object.
#[derive(Clone, Copy)]
struct ChunkEdges<'a> {
    adj: &'a [u32],
    adj_start: &'a [u32],
    lo: usize,
}

impl<'a> ChunkEdges<'a> {
    fn new(adj: &'a [u32], adj_start: &'a [u32], lo: usize) -> Self {
        ChunkEdges {
            adj,
            adj_start: &adj_start[lo..],
            lo,
        }
    }

    /// The edges of chunk object `k`, as chunk indices (edges that leave
    /// the chunk wrap around to large values, which the callers skip).
    #[inline(always)]
    fn of(self, k: usize) -> impl Iterator<Item = usize> + 'a {
        let (s, e) = (self.adj_start[k] as usize, self.adj_start[k + 1] as usize);
        let lo = self.lo;
        self.adj[s..e]
            .iter()
            .map(move |&j| (j as usize).wrapping_sub(lo))
    }
}

/// Subtracts every edge of the chunk starting at `lo` (the last one traced)
/// from the global `gc_refs`: step 2 needs no other pass over the edges.
fn subtract_chunk_edges(t: &mut Tables, lo: usize) {
    for &j in &t.adj[t.adj_start[lo] as usize..] {
        t.refs[j as usize] -= 1;
    }
}

/// Trial deletion inside one traced chunk of the first pass (objects
/// `lo..hi`): subtracts the edges inside the chunk from the chunk's own
/// `gc_refs` (and, if `global`, every edge of the chunk from the global
/// ones, as [`subtract_chunk_edges`] does) and marks everything reachable
/// from a chunk object with references from outside the chunk
/// (`local_mark`). Whether anything is left unmarked: the chunk's
/// candidates.
#[inline(always)]
fn local_trial(t: &mut Tables, lo: usize, hi: usize, global: bool) -> bool {
    let Tables {
        refs,
        adj,
        adj_start,
        local_refs,
        local_mark,
        local_work,
        ..
    } = t;
    let m = hi - lo;
    let first = adj_start[lo] as usize;
    let local_refs = &mut local_refs[..m];
    for &j in &adj[first..] {
        if global {
            refs[j as usize] -= 1;
        }
        if let Some(r) = local_refs.get_mut((j as usize).wrapping_sub(lo)) {
            *r -= 1;
        }
    }
    // Everything in the chunk referenced from outside it: the global steps
    // decide.
    if local_refs.iter().all(|&r| r > 0) {
        return false;
    }
    let edges = ChunkEdges::new(adj, adj_start, lo);
    local_mark.clear();
    local_mark.resize(m, L_UNKNOWN);
    let local_mark = &mut local_mark[..m];
    local_work.clear();
    for (k, (&r, mark)) in local_refs.iter().zip(local_mark.iter_mut()).enumerate() {
        if r > 0 {
            *mark = L_REACHABLE;
            local_work.push(k as u32);
        }
    }
    while let Some(k) = local_work.pop() {
        for j in edges.of(k as usize) {
            if let Some(mark @ &mut L_UNKNOWN) = local_mark.get_mut(j) {
                *mark = L_REACHABLE;
                local_work.push(j as u32);
            }
        }
    }
    local_mark.contains(&L_UNKNOWN)
}

/// The end of one chunk of the first pass (objects `lo..hi`) whose trial
/// ([`local_trial`]) left candidates. The chunk was traced with its guards
/// kept, and they are still held: step 3's (b), (c) and (d) on the
/// candidates, and step 4 for those that pass (the others are unmarked). What it claims (`None` if an `upgrade`
/// got in first and the chunk's claims were withdrawn). The chunk's marks
/// are kept in `local_mark`; only claimed objects change state (to
/// `GARBAGE`): failed ones are left to the global steps.
#[inline(always)]
fn end_chunk(t: &mut Tables, lo: usize, hi: usize, fold_dead: bool) -> Option<Claimed> {
    let Tables {
        objs,
        state,
        words,
        adj,
        adj_start,
        local_refs,
        local_mark,
        local_work,
        chunk_garbage,
        group_end,
        chunk_cands,
        ..
    } = t;
    let m = hi - lo;
    let local_refs = &local_refs[..m];
    let edges = ChunkEdges::new(adj, adj_start, lo);
    let local_mark = &mut local_mark[..m];
    // Step 3 (b) on the chunk's candidates (listed in `chunk_cands`): mark
    // each one, all before any read of (c). A candidate fails unless the
    // mark finds the word read before its trace, whose strong count the
    // trial explained by the chunk's counted edges (`r == 0`). The words
    // the marks returned replace those in `words` (`unmark` needs them).
    let mut weak = false;
    chunk_cands.clear();
    let slots = local_mark
        .iter_mut()
        .zip(&objs[lo..hi])
        .zip(&mut words[lo..hi])
        .zip(local_refs.iter());
    for (k, (((mark, &o), seen), &r)) in slots.enumerate() {
        if *mark != L_UNKNOWN {
            continue;
        }
        let marked = unsafe_ref(o).counts.fetch_or(MARKED, Ordering::SeqCst);
        chunk_cands.push(k as u32);
        if marked == *seen && marked & (MARKED | CLAIMED) == 0 && r == 0 {
            *mark = L_CANDIDATE;
        } else {
            *mark = L_FAILED;
            local_work.push(k as u32);
        }
        *seen = marked;
    }
    // (c): read every word again; (d) inside the chunk.
    for &k in chunk_cands.iter() {
        let k = k as usize;
        if local_mark[k] != L_CANDIDATE {
            continue;
        }
        let o = unsafe_ref(objs[lo + k]);
        let seen = words[lo + k];
        // The weak count first: see `claim_unshared`.
        let w = o.weak.load(Ordering::Acquire);
        let now = o.counts.load(Ordering::SeqCst);
        let ok = now == seen | MARKED
            && (seen & STRONG_MASK > 0 || o.flags.load(Ordering::Acquire) & ZOMBIE != 0);
        if ok {
            weak |= w > 1;
        } else {
            local_mark[k] = L_FAILED;
            local_work.push(k as u32);
        }
    }
    while let Some(k) = local_work.pop() {
        for j in edges.of(k as usize) {
            if let Some(mark @ &mut L_CANDIDATE) = local_mark.get_mut(j) {
                *mark = L_FAILED;
                local_work.push(j as u32);
            }
        }
    }
    // Step 4 for the chunk.
    let (set, clear) = if fold_dead && !weak {
        (DEAD_SET, DEAD_CLEAR)
    } else {
        (WEAK_CLEARED, 0)
    };
    let mut chunk = Claimed::default();
    let first_claim = chunk_garbage.len();
    // `has_finalizer` of the last vtable seen (runs of one type are usual).
    let mut last_vtable: Option<(&SyncVTable, bool)> = None;
    for (p, &k) in chunk_cands.iter().enumerate() {
        let k = k as usize;
        let i = lo + k;
        let seen = words[i];
        if local_mark[k] != L_CANDIDATE {
            unmark(objs[i], seen);
            continue;
        }
        let o = unsafe_ref(objs[i]);
        if weak {
            if o.counts
                .compare_exchange(
                    seen | MARKED,
                    seen | CLAIMED,
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                )
                .is_err()
            {
                // An `upgrade` got in first: withdraw the chunk's claims
                // and marks (the global steps decide about all of it).
                for &j in &chunk_garbage[first_claim..] {
                    let obj = objs[j as usize];
                    unsafe_ref(obj).update_flags_exclusively(0, WEAK_CLEARED);
                    unclaim(obj);
                    state[j as usize] = UNKNOWN;
                }
                chunk_garbage.truncate(first_claim);
                for &j in &chunk_cands[p..] {
                    unmark(objs[lo + j as usize], words[lo + j as usize]);
                }
                return None;
            }
        } else {
            debug_assert_eq!(o.counts.load(Ordering::Relaxed), seen | MARKED);
            o.counts.store(seen | CLAIMED, Ordering::Relaxed);
        }
        // Exclusive: claimed garbage (I4).
        let f = o.flags.load(Ordering::Relaxed);
        o.flags.store((f | set) & !clear, Ordering::Release);
        state[i] = GARBAGE;
        chunk_garbage.push(i as u32);
        chunk.found += usize::from(seen & STRONG_MASK != 0);
        let has_finalizer = match last_vtable {
            Some((vt, fin)) if core::ptr::eq(vt, o.vtable) => fin,
            _ => {
                last_vtable = Some((o.vtable, o.vtable.has_finalizer));
                o.vtable.has_finalizer
            }
        };
        chunk.needs_finalize |= has_finalizer && f & FINALIZED == 0;
    }
    chunk.ok = chunk_garbage.len() > first_claim;
    if chunk.ok {
        group_end.push(chunk_garbage.len() as u32);
    }
    chunk.dead_folded = chunk.ok && set == DEAD_SET;
    chunk.not_folded = chunk.ok && set != DEAD_SET;
    Some(chunk)
}

/// Step 2 over what the first pass did not claim: CPython's
/// move_unreachable on the `gc_refs` the first pass computed (the strong
/// counts it read, minus every edge it recorded: update_refs and
/// subtract_refs), which raced the mutators (a guess). The claimed garbage
/// is not a root, and its edges count (they will be gone with it). The
/// candidates end in state `CANDIDATE`; the roots stay `UNKNOWN`.
///
/// Most objects of a collection are roots, so the walk starts from the
/// other side: the objects with `gc_refs <= 0` are marked first (usually
/// few, often none, and then there is nothing else to do), and only edges
/// into them are followed.
#[inline(never)]
fn guess(t: &mut Tables) {
    let n = t.objs.len();
    let mut others = 0usize;
    for (s, &r) in t.state.iter_mut().zip(&t.refs) {
        if *s == UNKNOWN && r <= 0 {
            *s = CANDIDATE;
            others += 1;
        }
    }
    if others == 0 {
        return;
    }
    // Every edge out of a root (an object neither claimed, nor a candidate,
    // nor reached) into a candidate reaches it; then the walk goes on from
    // the candidates reached, along their own edges.
    t.work.clear();
    let Tables {
        state,
        adj,
        adj_start,
        work,
        ..
    } = t;
    let reach_from = |k: usize, state: &mut [u8], work: &mut Vec<u32>| {
        for &j in &adj[adj_start[k] as usize..adj_start[k + 1] as usize] {
            if state[j as usize] == CANDIDATE {
                state[j as usize] = REACHABLE;
                work.push(j);
            }
        }
    };
    for i in 0..n {
        if state[i] == UNKNOWN {
            reach_from(i, state, work);
        }
    }
    while let Some(k) = work.pop() {
        reach_from(k as usize, state, work);
    }
}

/// An `EXCLUSIVE` object whose only handle sits in a slot the collector
/// holds cannot be mutably borrowed any more (I3): looks for that handle
/// with the parent's locks held, and clears the bit when it is there.
fn release_stale_exclusives(t: &mut Tables, scratch: &bumpalo::Bump) {
    let pairs = core::mem::take(&mut t.exclusive_seen);
    let mut no_edges = Vec::new();
    let mut counted = Vec::new();
    for &(parent, target) in &pairs {
        let p = t.objs[parent as usize];
        // (A parent the first pass claimed is garbage: nothing to learn.)
        if t.state[parent as usize] == GARBAGE
            || unsafe_ref(p).flags.load(Ordering::Acquire) & EXCLUSIVE != 0
        {
            continue;
        }
        let mut sink = Verify {
            objs: &t.objs,
            state: &[],
            counted: &mut counted,
            edges: &mut no_edges,
            busy: false,
            probe: Some((target, false)),
        };
        // SAFETY: owned by this collection, not exclusive.
        unsafe { trace_with(p, &mut sink, Some(&mut t.guards), scratch) };
        let found = !sink.busy && matches!(sink.probe, Some((_, true)));
        let tgt = unsafe_ref(target);
        if found && tgt.counts.load(Ordering::SeqCst) & STRONG_MASK == 1 {
            // The only handle is in a slot we hold: no `&mut` to it, so no
            // `&mut T` from `get_mut`; and `get_mut` cannot start while the
            // collector owns the object.
            tgt.flags.fetch_and(!EXCLUSIVE, Ordering::Relaxed);
        }
        release_guards(&mut t.guards);
    }
    t.exclusive_seen = pairs;
    t.exclusive_seen.clear();
}

/// What the first half of the verification saw of the candidates.
#[derive(Clone, Copy, Default)]
struct Traced {
    /// Some candidate had a weak handle (its weak count was above 1).
    weak: bool,
    /// Some candidate has a finalizer that has not run.
    finalize: bool,
}

/// Step 3 (a) and (b) over the objects in state `CANDIDATE`: traces each
/// one with the guards kept (`guard_start` says whose they are), then
/// marks each one (`snap`); the ones that cannot be checked become
/// `FAILED` (unmarked: `NOT_MARKED`), their positions in `work`. The proof
/// needs every mark after every trace, and before any read of (c).
#[inline(never)]
fn verify_trace(t: &mut Tables, scratch: &bumpalo::Bump) -> Traced {
    let n = t.objs.len();
    let mut seen = Traced::default();
    t.counted.clear();
    t.counted.resize(n, 0);
    t.edges.clear();
    t.edge_start.clear();
    t.snap.clear();
    t.guard_start.clear();
    t.work.clear();
    t.pos.clear();
    for k in 0..t.cands.len() {
        let c = t.cands[k] as usize;
        t.edge_start.push(t.edges.len() as u32);
        t.guard_start.push(t.guards.len() as u32);
        t.snap.push(NOT_MARKED);
        if t.state[c] != CANDIDATE {
            continue;
        }
        let obj = t.objs[c];
        let o = unsafe_ref(obj);
        seen.weak |= o.weak.load(Ordering::Relaxed) > 1;
        let f = o.flags.load(Ordering::Acquire);
        seen.finalize |= o.vtable.has_finalizer && f & FINALIZED == 0;
        // Only a structural `trace` lets the collector hold every lock it
        // counted a handle behind (see "Which values the verification
        // accepts" in the module docs).
        if !o.vtable.structural || f & EXCLUSIVE != 0 {
            t.state[c] = FAILED;
            t.work.push(k as u32);
            continue;
        }
        let mut sink = Verify {
            objs: &t.objs,
            state: &t.state,
            counted: &mut t.counted,
            edges: &mut t.edges,
            busy: false,
            probe: None,
        };
        // SAFETY: owned by this collection, not exclusive.
        unsafe { trace_with(obj, &mut sink, Some(&mut t.guards), scratch) };
        if sink.busy {
            t.state[c] = FAILED;
            t.work.push(k as u32);
        }
    }
    t.edge_start.push(t.edges.len() as u32);
    t.guard_start.push(t.guards.len() as u32);
    // (b): mark every candidate whose trace could be checked, after every
    // trace of (a) and before any read of (c).
    for (&c, snap) in t.cands.iter().zip(&mut t.snap) {
        if t.state[c as usize] == CANDIDATE {
            *snap = unsafe_ref(t.objs[c as usize])
                .counts
                .fetch_or(MARKED, Ordering::SeqCst);
        }
    }
    seen
}

/// In `Tables::snap`: the candidate was not marked (it failed before (b),
/// or was no candidate). A mark never returns a word with `MARKED` set.
const NOT_MARKED: u64 = MARKED;

/// Adds the edges the first pass recorded from the garbage it claimed
/// (`chunk_garbage`) to the counted edges of the global candidates they
/// point to.
fn count_claimed_edges(t: &mut Tables) {
    for &i in &t.chunk_garbage {
        let i = i as usize;
        debug_assert_eq!(t.state[i], GARBAGE);
        let (s, e) = (t.adj_start[i] as usize, t.adj_start[i + 1] as usize);
        for x in s..e {
            let j = t.adj[x] as usize;
            if t.state[j] == CANDIDATE {
                t.counted[j] += 1;
            }
        }
    }
}

/// Step 3 (c) and (d), after [`verify_trace`]: every candidate becomes
/// `GARBAGE` or `FAILED`. The guards stay held. `claimed`: the counts carry
/// `CLAIMED` (the resurrection check). `no_weak`: a candidate with a weak
/// handle fails (for [`claim_unshared`]).
#[inline(never)]
fn verify_check(t: &mut Tables, claimed: bool, no_weak: bool) {
    // (c)
    let Tables {
        objs,
        state,
        cands,
        snap,
        counted,
        work,
        ..
    } = &mut *t;
    for (k, (&c, &seen)) in cands.iter().zip(snap.iter()).enumerate() {
        let c = c as usize;
        if state[c] != CANDIDATE {
            continue;
        }
        let o = unsafe_ref(objs[c]);
        // The weak count first: see `claim_unshared`.
        let weak_ok = !no_weak || o.weak.load(Ordering::Acquire) == 1;
        let now = o.counts.load(Ordering::SeqCst);
        let strong = now & STRONG_MASK;
        let ok = weak_ok
            && seen & MARKED == 0
            && now == seen | MARKED
            && strong == u64::from(counted[c])
            && (strong > 0 || claimed || o.flags.load(Ordering::Acquire) & ZOMBIE != 0)
            && ((now & CLAIMED != 0) == claimed);
        if ok {
            state[c] = GARBAGE;
        } else {
            state[c] = FAILED;
            work.push(k as u32);
        }
    }
    // (d)
    propagate_failures(t);
}

/// Step 3 (d): everything reachable from a failed candidate (the positions
/// in `work`) along the counted edges fails too (`GARBAGE` or `CANDIDATE`
/// objects reached become `FAILED`).
fn propagate_failures(t: &mut Tables) {
    if t.work.is_empty() {
        return;
    }
    if t.pos.is_empty() {
        t.pos.resize(t.objs.len(), 0);
        for (k, &c) in t.cands.iter().enumerate() {
            t.pos[c as usize] = k as u32;
        }
    }
    while let Some(k) = t.work.pop() {
        let (s, e) = (
            t.edge_start[k as usize] as usize,
            t.edge_start[k as usize + 1] as usize,
        );
        for x in s..e {
            let j = t.edges[x] as usize;
            if matches!(t.state[j], CANDIDATE | GARBAGE) {
                t.state[j] = FAILED;
                t.work.push(t.pos[j]);
            }
        }
    }
}

/// What the claims found out about G' on their way.
#[derive(Default, Clone, Copy)]
struct Claimed {
    /// Something is claimed.
    ok: bool,
    /// Objects of G' that still had a strong count (not zombies).
    found: usize,
    /// Some object of G' has a finalizer that has not run.
    needs_finalize: bool,
    /// Some claimed objects got step 6's flags (`DEAD`) with the claim.
    dead_folded: bool,
    /// Some did not.
    not_folded: bool,
}

impl Claimed {
    fn merge(&mut self, other: Claimed) {
        self.ok |= other.ok;
        self.found += other.found;
        self.needs_finalize |= other.needs_finalize;
        self.dead_folded |= other.dead_folded;
        self.not_folded |= other.not_folded;
    }
}

/// Step 4: claims G' and releases the guards held since step 3. The claims
/// and releases go candidate by candidate, from the last one: a candidate's
/// guards are released once it is claimed (or failed). That is as sound as
/// releasing them all after the last claim: a claimed object can no longer
/// be reached (`upgrade` fails on it, and every handle to it is in a G'
/// value), and a failed one holds no handle to a G' object (those are all
/// in G' values). If an `upgrade` got in first (an exchange fails), the
/// claims made so far are withdrawn and nothing is claimed.
#[inline(never)]
fn claim_and_release(t: &mut Tables) -> Claimed {
    let mut out = Claimed {
        ok: true,
        ..Claimed::default()
    };
    for k in (0..t.cands.len()).rev() {
        let c = t.cands[k] as usize;
        match t.state[c] {
            GARBAGE => {
                let o = unsafe_ref(t.objs[c]);
                let seen = t.snap[k];
                if o.counts
                    .compare_exchange(
                        seen | MARKED,
                        seen | CLAIMED,
                        Ordering::SeqCst,
                        Ordering::Relaxed,
                    )
                    .is_err()
                {
                    withdraw(t, k);
                    release_guards(&mut t.guards);
                    return Claimed::default();
                }
                // Exclusive: claimed garbage (I4). `upgrade` fails from here
                // on either way; the bit keeps it failing while finalizers
                // run (as in Python), until the claim is withdrawn.
                let f = o.flags.load(Ordering::Relaxed);
                o.flags.store(f | WEAK_CLEARED, Ordering::Release);
                out.found += usize::from(seen & STRONG_MASK != 0);
                out.needs_finalize |= o.vtable.has_finalizer && f & FINALIZED == 0;
            }
            FAILED => {
                unmark(t.objs[c], t.snap[k]);
                t.state[c] = REACHABLE;
            }
            _ => {}
        }
        release_guards_from(&mut t.guards, t.guard_start[k] as usize);
    }
    out.ok = out.found > 0 || t.cands.iter().any(|&c| t.state[c as usize] == GARBAGE);
    out.not_folded = out.ok;
    out
}

/// The flags a claimed object of G' gets in [`claim_unshared`] when no
/// finalizer can run (`dead`): step 6's as well as step 4's.
const DEAD_SET: u32 = WEAK_CLEARED | DEAD;
const DEAD_CLEAR: u32 = LINKED | IN_COLLECTOR;

/// Step 4 after a verification in which no candidate had a weak handle
/// (`verify_check` with `no_weak`, so G' is final): claims G' with plain
/// stores, candidate by candidate from the last one, releasing each
/// candidate's guards once it is claimed (or failed). With `dead` (no
/// finalizer can run) the objects get step 6's flags in the same store.
///
/// Why no read-modify-write is needed, and why the early releases and the
/// early `DEAD` are invisible: by the proof of step 3, every handle to a G'
/// object is inside a G' value, and no `&T` into a G' value exists; no G'
/// object has a weak handle (checked in (c), after the marks, and before
/// the word is read again: see step 4 in the module docs), and none can be
/// made without a strong handle. So from (c) on no other thread can
/// reach a G' object, its counts or its locks, and nothing can make the
/// claim fail. A failed candidate holds no handle to a G' object (its
/// counted edges made their targets fail too, in (d)).
///
/// The order matters: every check of (c) and the whole of (d) come first.
/// Claiming one candidate before the check of another has failed would be
/// wrong: the failed one may be reachable, and reach the claimed one
/// through a field that is not behind a lock (the loom model
/// `handle_taken_out_of_cycle_during_scan` caught exactly that).
#[inline(never)]
fn claim_unshared(t: &mut Tables, dead: bool) -> Claimed {
    let (set, clear) = if dead {
        (DEAD_SET, DEAD_CLEAR)
    } else {
        (WEAK_CLEARED, 0)
    };
    let (mut ok, mut found, mut needs_finalize) = (false, 0, false);
    let Tables {
        objs,
        state,
        cands,
        snap,
        guards,
        guard_start,
        ..
    } = t;
    for ((&c, &seen), &from) in cands.iter().zip(snap.iter()).zip(guard_start.iter()).rev() {
        let c = c as usize;
        match state[c] {
            GARBAGE => {
                let o = unsafe_ref(objs[c]);
                debug_assert_eq!(o.counts.load(Ordering::Relaxed), seen | MARKED);
                o.counts.store(seen | CLAIMED, Ordering::Relaxed);
                // Exclusive: claimed garbage (I4).
                let f = o.flags.load(Ordering::Relaxed);
                o.flags.store((f | set) & !clear, Ordering::Release);
                ok = true;
                found += usize::from(seen & STRONG_MASK != 0);
                needs_finalize |= o.vtable.has_finalizer && f & FINALIZED == 0;
            }
            FAILED => {
                unmark(objs[c], seen);
                state[c] = REACHABLE;
            }
            _ => {}
        }
        release_guards_from(guards, from as usize);
    }
    Claimed {
        ok,
        found,
        needs_finalize,
        dead_folded: ok && dead,
        not_folded: ok && !dead,
    }
}

/// Withdraws the claims made by `claim_and_release` after position `k`
/// (it goes backwards), clears the marks it has not reached, and returns
/// every candidate to the survivors.
fn withdraw(t: &mut Tables, k: usize) {
    for &d in &t.cands[k + 1..] {
        let d = d as usize;
        if t.state[d] == GARBAGE {
            let o = unsafe_ref(t.objs[d]);
            // Exclusive: still claimed. Before the claim ends: a mutator may
            // set `ZOMBIE` after that.
            o.update_flags_exclusively(0, WEAK_CLEARED);
            unclaim(t.objs[d]);
        }
    }
    for (&d, &seen) in t.cands[..=k].iter().zip(&t.snap) {
        unmark(t.objs[d as usize], seen);
    }
    for &d in &t.cands {
        if matches!(t.state[d as usize], GARBAGE | FAILED) {
            t.state[d as usize] = REACHABLE;
        }
    }
}

/// Drops the guards from index `from` on, innermost first.
fn release_guards_from(guards: &mut Vec<KeptGuard>, from: usize) {
    while guards.len() > from {
        drop(guards.pop());
    }
}

/// Clears the mark of a candidate that is not claimed (step 3 (b); `seen`
/// is the word the mark returned, or [`NOT_MARKED`]). A drop that took the
/// count from above zero to zero while the mark was set did nothing else
/// (`dec_strong`): the collector takes that zero over (I5), and the object
/// becomes a zombie, dropped when given back.
fn unmark(obj: NonNull<SyncHeader>, seen: u64) {
    if seen == NOT_MARKED {
        return;
    }
    let o = unsafe_ref(obj);
    // `AcqRel`: reads the dropper's `Release` decrement (as `Arc`'s fence).
    let old = o.counts.fetch_and(!MARKED, Ordering::AcqRel);
    if old & MARKED != 0 && old & STRONG_MASK == 0 && seen & STRONG_MASK != 0 {
        // Nobody else writes the flags of a collector-owned object whose
        // count is zero, but a read-modify-write costs nothing here.
        o.flags.fetch_or(ZOMBIE, Ordering::Release);
    }
}

/// Withdraws a claim (and a mark the resurrection check left); an object
/// left with no strong reference becomes a zombie (dropped when given
/// back).
fn unclaim(obj: NonNull<SyncHeader>) {
    let o = unsafe_ref(obj);
    let old = o.counts.fetch_and(!(CLAIMED | MARKED), Ordering::AcqRel);
    if old & CLAIMED != 0 && old & STRONG_MASK == 0 {
        o.flags.fetch_or(ZOMBIE, Ordering::Release);
    }
}

fn finalize_all(t: &mut Tables, panic_payload: &mut Option<Box<dyn std::any::Any + Send>>) {
    let mut k = 0;
    while k < t.cands.len() {
        let r = catch(|| {
            while k < t.cands.len() {
                let i = t.cands[k] as usize;
                k += 1;
                let obj = t.objs[i];
                let o = unsafe_ref(obj);
                if t.state[i] == GARBAGE
                    && o.vtable.has_finalizer
                    && o.flags.fetch_or(FINALIZED, Ordering::AcqRel) & FINALIZED == 0
                {
                    // SAFETY: the value is intact (claimed, owned by us) and
                    // only shared references to it exist.
                    unsafe { (o.vtable.finalize)(obj) };
                }
            }
        });
        if let Some(p) = r {
            panic_payload.get_or_insert(p);
        }
    }
}

/// Step 7, in parts: gives objects back to their shards, in generation
/// `into`, and collects the zombies (for `finish` to
/// drop, after the collector lock is released).
#[derive(Clone, Copy)]
struct GiveBack {
    generation: usize,
    /// The generation the survivors go to.
    into: usize,
    /// The schedule chose this collection.
    automatic: bool,
    survivors: usize,
}

/// Given back already.
const GIVEN: u8 = 6;

impl GiveBack {
    /// Gives back every object whose state passes `which` (and is not
    /// destroyed or given back already); the zombies among them go to
    /// `zombies`.
    ///
    /// One pass in table order, which is shard order (`take` walks the
    /// shards in turn), holding a shard's lock for at most `GIVE_CHUNK`
    /// objects at a time: a thread allocating on that shard waits no longer
    /// than that.
    fn give(
        &mut self,
        h: &SyncHeap,
        t: &mut Tables,
        which: impl Fn(u8) -> bool,
        zombies: &mut Vec<NonNull<SyncHeader>>,
    ) {
        const GIVE_CHUNK: usize = 4096;
        let target = self.into;
        let mut i = 0;
        let n = t.objs.len();
        while i < n {
            // The next object to give back starts a run of its shard.
            let st = t.state[i];
            if st == GONE || st == GIVEN || !which(st) {
                i += 1;
                continue;
            }
            let s = unsafe_ref(t.objs[i]).shard();
            let mut shard = prims::lock(&h.shards[s].0);
            let mut keep = List::new();
            let mut taken = 0;
            while i < n && taken < GIVE_CHUNK {
                let st = t.state[i];
                if st == GONE || st == GIVEN || !which(st) {
                    i += 1;
                    continue;
                }
                if let Some(&ahead) = t.objs.get(i + PREFETCH) {
                    prims::prefetch(ahead.as_ptr());
                }
                let obj = t.objs[i];
                let o = unsafe_ref(obj);
                if o.shard() != s {
                    break;
                }
                t.state[i] = GIVEN;
                i += 1;
                taken += 1;
                // Exclusive flag updates: every other writer of these flags
                // (`ZOMBIE`) holds the shard lock too, which we hold.
                debug_assert_eq!(
                    o.counts.load(Ordering::Relaxed) & MARKED,
                    0,
                    "given back with its mark"
                );
                let f = o.flags.load(Ordering::Acquire);
                if f & ZOMBIE != 0 {
                    o.flags
                        .store(f & !(LINKED | IN_COLLECTOR), Ordering::Release);
                    zombies.push(obj);
                    continue;
                }
                o.flags.store(
                    (f & !(IN_COLLECTOR | GEN_MASK)) | ((target as u32) << GEN_SHIFT),
                    Ordering::Release,
                );
                // SAFETY: owned by this collection until the flag is
                // cleared, under the shard lock (I1); on no list now.
                unsafe { keep.push(obj) };
            }
            self.survivors += keep.len;
            // SAFETY: we hold the shard lock; `keep`'s members are ours.
            unsafe { shard.lists[target].append(&mut keep) };
        }
    }

    fn finish(self, state: &mut CollectorState) {
        if self.generation == 2 {
            state.live_after_full = self.survivors;
        }
    }
}

/// Drops zombies (count zero, unlisted, value intact and ours: I2); a
/// panicking `Drop` does not keep the others from being dropped.
pub(crate) fn drop_zombies(
    zombies: Vec<NonNull<SyncHeader>>,
    panic_payload: &mut Option<Box<dyn std::any::Any + Send>>,
) {
    let mut k = 0;
    while k < zombies.len() {
        let r = catch(|| {
            while k < zombies.len() {
                let z = zombies[k];
                k += 1;
                // SAFETY: see above; each zombie is dropped once (`k`).
                unsafe { heap::drop_unlinked(z) };
            }
        });
        if let Some(p) = r {
            panic_payload.get_or_insert(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every planned place is used once, and each list's places come in
    /// runs in the list's order.
    fn check_plan(lens: &[[usize; 3]; SHARDS], gens: usize) -> (TableLayout, Vec<usize>) {
        let mut run_starts = Vec::new();
        let layout = TableLayout::plan(lens, gens, &mut run_starts);
        let mut seen = vec![false; layout.planned];
        let mut gen_ranges = Vec::new();
        for g in (0..gens).rev() {
            let (mut lo, mut hi) = (usize::MAX, 0);
            for (plans, l) in layout.lists.iter().zip(lens) {
                let plan = plans[g];
                assert_eq!(plan.len, l[g]);
                for k in 0..plan.len {
                    let i = run_starts[plan.first_run + (k >> plan.turn_shift)]
                        + (k & plan.turn_mask());
                    assert!(!seen[i], "place {i} planned twice");
                    seen[i] = true;
                    (lo, hi) = (lo.min(i), hi.max(i + 1));
                }
            }
            if hi > 0 {
                gen_ranges.push((lo, hi));
            }
        }
        assert!(seen.iter().all(|&x| x), "a place left unplanned");
        // Oldest generation first, each in one range.
        assert!(gen_ranges.windows(2).all(|w| w[0].1 == w[1].0));
        (layout, run_starts)
    }

    #[test]
    fn plans_lay_out_the_lists() {
        let mut lens = [[0; 3]; SHARDS];
        check_plan(&lens, 3);
        // One large list and a small one: one after the other (under Miri
        // every list of a 2-object chunk counts as large).
        lens[0][0] = 5000;
        lens[3][0] = 7;
        lens[3][2] = 3;
        let (layout, runs) = check_plan(&lens, 3);
        let first = |s: usize, g: usize| runs[layout.lists[s][g].first_run];
        if CHUNK / 8 >= 7 {
            assert_eq!((first(3, 2), first(0, 0), first(3, 0)), (0, 3, 5003));
        }
        // Two large lists of one generation: in turns.
        lens[5][0] = 3000;
        let (layout, runs) = check_plan(&lens, 1);
        let turn = 1 << layout.lists[0][0].turn_shift;
        assert!((16..3000).contains(&turn));
        let first = |s: usize, r: usize| runs[layout.lists[s][0].first_run + r];
        assert_eq!((first(0, 0), first(3, 0), first(5, 0)), (0, turn, turn + 7));
        assert_eq!(first(0, 1), 2 * turn + 7);
        check_plan(&lens, 2);
    }

    #[test]
    fn holes_are_filled_from_the_end() {
        const H: u32 = u32::MAX;
        let mut items = vec![0, 1, H, 3, 4, H, 6, H];
        let mut refs: Vec<i64> = items.iter().map(|&x| i64::from(x)).collect();
        let mut moved = Vec::new();
        fill_holes(&mut items, &mut refs, &mut [7, 2, 5], H, |x, i| {
            moved.push((x, i))
        });
        assert_eq!(items, [0, 1, 6, 3, 4]);
        assert_eq!(refs, [0, 1, 6, 3, 4]);
        assert_eq!(moved, [(6, 2)]);
        let mut items = vec![H, H];
        let mut refs = vec![0, 0];
        fill_holes(&mut items, &mut refs, &mut [1, 0], H, |_, _| {
            panic!("nothing to move")
        });
        assert!(items.is_empty() && refs.is_empty());
    }
}
