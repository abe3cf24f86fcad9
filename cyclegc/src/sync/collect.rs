//! One collection of the process-wide heap: the steps of the protocol in
//! the module documentation of `sync`, in order.

use core::ptr::NonNull;
use std::time::Instant;

use super::header::*;
use super::heap::{self, CollectorState, List, SHARDS, Shard, SyncHeap};
use super::prims::{self, Ordering};
use crate::debug::{DebugFlags, Found, Phase};
use crate::visitor::{KeptGuard, SyncSink, Visitor};

mod destroy;
mod first_pass;
mod give_back;
mod report;
mod tables;
mod take;
mod verify;

use destroy::*;
use first_pass::*;
use give_back::*;
use tables::*;
use take::*;
use verify::*;

pub(crate) use destroy::drop_zombies;
pub(crate) use tables::Tables;

/// What a collection did.
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct Outcome {
    pub(crate) unreachable: usize,
    pub(crate) collected: usize,
    pub(crate) uncollectable: usize,
}

pub(crate) use crate::panics::{Panic, catch, keep_first};

// What is left of a collection once its critical part is done, besides
// the zombies' drops: the finalizers (step 5, G' listed whole), then step 6
// unless a finalizer resurrected some of G'; or step 6.
use crate::unreachable::Rest;

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
    /// Where G' is listed, once claimed.
    garbage: GarbageList,
    saveall: bool,
    back: GiveBack,
    zombies: Vec<NonNull<SyncHeader>>,
    /// The non-structural types whose values the report found keeping
    /// cycles alive (warned about in [`finish`], once per heap).
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
    /// The heap it collected (heaps are never freed).
    pub(crate) heap: &'static SyncHeap,
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
    h: &'static SyncHeap,
    state: &mut CollectorState,
    generation: usize,
    automatic: Option<usize>,
) -> Batch {
    let start = Instant::now();
    let cb_panic =
        super::control::invoke_callbacks(h, Phase::Start, generation, Outcome::default(), start);
    h.young.store(0, Ordering::Relaxed);
    let mut b = Batch {
        heap: h,
        t: core::mem::take(&mut state.tables),
        generation,
        start,
        outcome: Outcome::default(),
        rest: Rest::Nothing,
        garbage: GarbageList::Groups,
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
    // Everything but G' went back, unmarked (I5); G' is claimed and
    // unmarked too (the claim replaced the mark).
    debug_assert!(
        b.t.state.iter().zip(&b.t.objs).all(|(&s, &o)| match s {
            State::Given => true,
            // SAFETY: claimed garbage is the batch's (I4).
            State::Garbage => unsafe { owned(o) }.counts.load(Ordering::Relaxed) & MARKED == 0,
            _ => false,
        }),
        "I5: the critical part ends with an object neither given back nor claimed, or marked"
    );
    state.scratch.reset();
    if b.rest != Rest::Finalize {
        // Everything went back (after finalizers, `finish` does this).
        b.back.finish(state);
    }
    // The counters drive the schedule: they change now (CPython's meaning).
    h.shell.count_collection(generation);
    if b.runs_user_code() {
        b.ticket = Some(super::control::register_unfinished(h));
    }
    b
}

/// An automatic young collection that examines nothing
/// (`schedule::examines`): the `Start` callbacks, then generation 0 moves
/// to generation `into` unexamined, shard by shard. It finds nothing and
/// runs no `trace`, finalizer or `Drop`. The caller holds the collector
/// lock and has marked this thread as collecting; it calls
/// [`finish_pass`] once it has released the lock. Returns when it started
/// and a callback's panic.
pub(crate) fn pass(h: &'static SyncHeap, into: usize) -> (Instant, Option<Panic>) {
    let start = Instant::now();
    let p = super::control::invoke_callbacks(h, Phase::Start, 0, Outcome::default(), start);
    h.young.store(0, Ordering::Relaxed);
    for slot in &h.shards {
        promote_unexamined(&mut prims::lock(&slot.0), into);
    }
    h.shell.count_collection(0);
    h.shell.pass();
    (start, p)
}

/// The end of a [`pass`], without the collector lock (a logger is user
/// code): its statistics, its `STATS` line and the `Stop` callbacks (under
/// the lock again, as for any collection). Returns the first panic.
pub(crate) fn finish_pass(
    h: &'static SyncHeap,
    into: usize,
    start: Instant,
    mut panic: Option<Panic>,
) -> Option<Panic> {
    h.shell.record(0, 0, 0);
    if h.shell.debug().contains(DebugFlags::STATS)
        && let Some(p) = catch(|| crate::debug::log_pass("sync gc", into, start.elapsed()))
    {
        keep_first(&mut panic, Some(p));
    }
    if super::control::has_callbacks(h) {
        let _state = prims::lock(&h.collector);
        let _c = super::control::Collecting::start(h);
        let p = super::control::invoke_callbacks(h, Phase::Stop, 0, Outcome::default(), start);
        keep_first(&mut panic, p);
    }
    panic
}

/// The rest of a collection, run without the collector lock: step 5 (the
/// finalizers; then, holding the lock again, the re-verification), step 6
/// (drops and frees), the zombies' drops, the statistics and the `Stop`
/// callbacks (holding the lock again, as the `Start` ones). A panic in
/// user code does not stop the rest: the first one is returned, with the
/// heap consistent.
pub(crate) fn finish(h: &SyncHeap, mut b: Batch) -> (Outcome, Option<Panic>) {
    let _finishing = heap::Finishing::start();
    b.finish_pipeline(h);
    drop_zombies(core::mem::take(&mut b.zombies), &mut b.panic);
    report::warn_new_types(h, &b.reported, &b.reported_names, &mut b.panic);
    if !b.found.is_empty()
        && let Some(p) = catch(|| b.found.iter().for_each(|f| f.log()))
    {
        keep_first(&mut b.panic, Some(p));
    }
    let (generation, outcome) = (b.generation, b.outcome);
    h.shell
        .record(generation, outcome.collected, outcome.uncollectable);
    // After an automatic collection, the young threshold backs off or comes
    // back (`schedule`); an explicit one says nothing about them.
    // `scanned` is what was taken (as the `STATS` line and the thread-local
    // heap count it): a set that finalizers resurrected, or that `SAVEALL`
    // kept, was given back with the survivors and is counted as
    // unreachable too, so survivors plus unreachable would count it twice.
    if b.back.automatic {
        h.shell
            .adapt(generation, outcome.unreachable, b.t.objs.len());
    }
    // A logger is user code: its panic must not skip the ticket and the
    // `Stop` callbacks below (`wait_for_drops` would wait forever).
    if h.shell.debug().contains(DebugFlags::STATS)
        && let Some(p) = catch(|| {
            crate::debug::log_stats(
                "sync gc",
                generation,
                b.t.objs.len(),
                outcome.unreachable,
                outcome.collected,
                outcome.uncollectable,
                b.start.elapsed(),
            )
        })
    {
        keep_first(&mut b.panic, Some(p));
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
        let _c = super::control::Collecting::start(h);
        let p = super::control::invoke_callbacks(h, Phase::Stop, generation, outcome, b.start);
        if let Some(p) = p {
            keep_first(&mut b.panic, Some(p));
        }
    }
    drop(state);
    (outcome, b.panic)
}

/// Steps 1 to 4 and 7 for the survivors (see [`collect`]); says in
/// `b.rest` what is left.
fn critical(h: &SyncHeap, state: &mut CollectorState, b: &mut Batch) {
    let scratch = &state.scratch;
    take(h, &mut b.t, b.generation);
    // Read once: a claim may already mark the garbage dead, which `SAVEALL`
    // must not find.
    b.saveall = h.shell.debug().contains(DebugFlags::SAVEALL);
    let Some(mut claimed) = b.first_pass(h, scratch) else {
        // A `trace` panicked: everything went back.
        return;
    };
    claimed.merge(b.global_pass(scratch));
    b.list_garbage(&claimed);
    // Reported, not collected: what only non-structural values keep alive
    // (while the survivors are still ours; not after a `trace` panicked,
    // which may have left garbage unclaimed).
    if !b.t.untrusted.is_empty() && b.panic.is_none() {
        let log = h.shell.debug().contains(DebugFlags::UNCOLLECTABLE);
        let r = report::report_uncollectable(h, &mut b.t, b.saveall, log);
        (
            b.outcome.uncollectable,
            b.reported,
            b.reported_names,
            b.found,
        ) = (r.found, r.types, r.names, r.lines);
    }
    // Where the survivors go, now that the collection knows what it found
    // (`schedule::survivors_into`): with generation 1 (the batches passes
    // left there, older) along into 2, or joining it.
    if b.back.automatic {
        let found = usize::from(claimed.ok);
        (b.back.into, _) = crate::schedule::survivors_into(b.back.into, b.generation, found);
    }
    // Everything but the garbage goes back now, before any user code runs
    // (finalizers, drops, zombies): a thread waiting in `get_mut` for one
    // of these objects must not wait for that code.
    b.back
        .give(h, &mut b.t, |s| s != State::Garbage, &mut b.zombies);
    if claimed.ok && h.shell.debug().contains(DebugFlags::COLLECTABLE) {
        // Named as found, before finalizers run (as CPython does: a set a
        // finalizer resurrects is named too); logged in `finish`.
        for (i, &s) in b.t.state.iter().enumerate() {
            if s == State::Garbage {
                b.found.push(found_line(b.t.objs[i], true));
            }
        }
    }
    // The unreachable-set pipeline as far as it goes under the lock.
    b.rest = crate::unreachable::plan(&mut Claims::claimed(b, scratch, &claimed));
}

/// What a `COLLECTABLE` / `UNCOLLECTABLE` line says about `obj`, an
/// object this collection owns (its header is readable, I2).
fn found_line(obj: NonNull<SyncHeader>, collectable: bool) -> Found {
    // SAFETY: in the tables and not freed (I1, I2, I4; see `owned`).
    let o = unsafe { owned(obj) };
    Found {
        collectable,
        type_name: o.vtable.type_name,
        // SAFETY: the header is readable (above); the value's address is
        // computed, not read.
        address: unsafe { SyncHeader::value_ptr(obj) }.as_ptr().addr(),
    }
}

impl Batch {
    /// Steps 2 to 4 chunk by chunk ([`first_pass`]), then the `EXCLUSIVE`
    /// bits it found stale. If a `trace` panicked, the claims are
    /// withdrawn and every object goes back: `None`.
    fn first_pass(&mut self, h: &SyncHeap, scratch: &bumpalo::Bump) -> Option<Claimed> {
        let t = &mut self.t;
        let mut claimed = Claimed::default();
        let (chunk, fold_dead) = (chunk_size(h), !self.saveall);
        if let Some(p) = tracing(|| catch(|| claimed = first_pass(t, scratch, chunk, fold_dead))) {
            keep_first(&mut self.panic, Some(p));
            withdraw_first_pass(t);
            // Unexamined after all: like a collection that found garbage,
            // it leaves generation 1 (passed batches) for the next middle
            // collection to examine.
            if self.back.automatic {
                (self.back.into, _) =
                    crate::schedule::survivors_into(self.back.into, self.generation, 1);
            }
            self.back.give(h, t, |_| true, &mut self.zombies);
            return None;
        }
        if !t.exclusive_seen.is_empty() {
            if let Some(p) = tracing(|| catch(|| release_stale_exclusives(t, scratch))) {
                keep_first(&mut self.panic, Some(p));
            }
            release_guards(&mut t.guards);
        }
        Some(claimed)
    }

    /// Step 2 for what the first pass left, on the recorded edges
    /// ([`guess`]), then steps 3 and 4 for its candidates
    /// ([`verify_global`]); lists what they claimed in `global_garbage`.
    fn global_pass(&mut self, scratch: &bumpalo::Bump) -> Claimed {
        let t = &mut self.t;
        guess(t);
        t.cands.clear();
        for (i, &s) in t.state.iter().enumerate() {
            if s == State::Candidate {
                t.cands.push(Ix::new(i));
            }
        }
        let mut claimed = Claimed::default();
        if !t.cands.is_empty() {
            claimed = verify_global(t, scratch, self.saveall, &mut self.panic);
        }
        t.global_garbage.clear();
        for &c in &t.cands {
            if t.state[c] == State::Garbage {
                t.global_garbage.push(c);
            }
        }
        claimed
    }

    /// G' is `chunk_garbage` and `global_garbage`. Finalizers and `SAVEALL`
    /// work on all of it at once: then it is listed whole, in table order.
    fn list_garbage(&mut self, claimed: &Claimed) {
        let t = &mut self.t;
        if claimed.needs_finalize || self.saveall {
            let mut g = core::mem::take(&mut t.cands);
            g.clear();
            for (i, &s) in t.state.iter().enumerate() {
                if s == State::Garbage {
                    g.push(Ix::new(i));
                }
            }
            self.garbage = GarbageList::Whole(g);
        }
    }
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
