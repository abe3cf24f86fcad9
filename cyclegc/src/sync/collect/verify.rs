//! Steps 2 to 4 for what the first pass left: the global guess, the
//! verification (mark, re-read, propagate failures) and the claim.

use super::*;

/// The verification's traversal: holds guards, counts edges between
/// candidates.
pub(super) struct Verify<'t> {
    pub(super) objs: &'t [NonNull<SyncHeader>],
    pub(super) heap_bits: u32,
    pub(super) state: &'t [State],
    pub(super) counted: &'t mut [u32],
    pub(super) edges: &'t mut Vec<Ix>,
    pub(super) busy: bool,
    /// For the exclusive probe: the object looked for, and whether found.
    pub(super) probe: Option<(NonNull<SyncHeader>, bool)>,
}

impl SyncSink for Verify<'_> {
    fn edge(&mut self, target: NonNull<SyncHeader>) {
        if let Some((t, found)) = &mut self.probe {
            *found |= *t == target;
            return;
        }
        if let Some((i, _)) = owned_index(target, self.objs, self.heap_bits)
            && self.state[i] == State::Candidate
        {
            self.counted[i] += 1;
            self.edges.push(i);
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

/// Steps 3 and 4 for the global candidates (`cands`): what they claim. A
/// panic of a `trace` goes to `panic`, and every candidate survives.
pub(super) fn verify_global(
    t: &mut Tables,
    scratch: &bumpalo::Bump,
    saveall: bool,
    panic: &mut Option<Panic>,
) -> Claimed {
    let mut traced = Traced::default();
    if let Some(p) = tracing(|| catch(|| traced = verify_trace(t, scratch))) {
        keep_first(panic, Some(p));
        release_guards(&mut t.guards);
        for s in &mut t.state {
            if matches!(*s, State::Candidate | State::Failed) {
                *s = State::Reachable;
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

/// Step 2 over what the first pass did not claim: CPython's
/// move_unreachable on the `gc_refs` the first pass computed (the strong
/// counts it read, minus every edge it recorded: update_refs and
/// subtract_refs), which raced the mutators (a guess). The claimed garbage
/// is not a root, and its edges count (they will be gone with it). The
/// candidates end in state `State::Candidate`; the roots stay `State::Unknown`.
///
/// Most objects of a collection are roots, so the walk starts from the
/// other side: the objects with `gc_refs <= 0` are marked first (usually
/// few, often none, and then there is nothing else to do), and only edges
/// into them are followed.
#[inline(never)]
pub(super) fn guess(t: &mut Tables) {
    let n = t.objs.len();
    let mut others = 0usize;
    for (s, &r) in t.state.iter_mut().zip(&t.refs) {
        if *s == State::Unknown && r <= 0 {
            *s = State::Candidate;
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
    let reach_from = |k: Ix, state: &mut [State], work: &mut Vec<Ix>| {
        for &j in &adj[adj_start[k] as usize..adj_start[k.get() + 1] as usize] {
            if state[j] == State::Candidate {
                state[j] = State::Reachable;
                work.push(j);
            }
        }
    };
    for i in 0..n {
        if state[i] == State::Unknown {
            reach_from(Ix::new(i), state, work);
        }
    }
    while let Some(k) = work.pop() {
        reach_from(k, state, work);
    }
}

/// The verification, written once for both of its drivers: the first
/// pass's, per chunk ([`end_chunk`]: chunk-local indices, the trial's
/// words, the chunk's recorded edges), and the global one
/// ([`verify_trace`], [`verify_check`], [`claim_and_release`],
/// [`claim_unshared`]: positions in `cands`, the marks' words, counted
/// edges). The rules for one object ([`rule::mark`], [`rule::recheck`],
/// [`rule::claim`], [`rule::withdraw_claim`]) and the loops of (c), (d)
/// and step 4 ([`rule::check`], [`rule::propagate_failures`],
/// [`rule::claim_all`]) are here; each driver says only how it lists its
/// candidates ([`rule::Candidates`], [`rule::Claims`]). The marks of (b)
/// stay with the drivers: the chunk's compares each mark with the word its
/// trial read, the global one's with nothing (its (c) does). A change to
/// what makes a candidate garbage is made here once.
pub(super) mod rule {
    use super::*;

    /// Step 3 (b): marks `obj`; returns the word the mark found.
    #[inline(always)]
    pub(in super::super) fn mark(obj: NonNull<SyncHeader>) -> u64 {
        // SAFETY: in the tables and not freed (I1, I2, I4; see `owned`).
        unsafe { owned(obj) }
            .counts
            .fetch_or(MARKED, Ordering::SeqCst)
    }

    /// Step 3 (c) for a candidate whose mark found `seen` and whose strong
    /// count the verification explained by `counted` edges (each in a
    /// candidate's value or in G'). Reads the weak count first (see
    /// [`claim_unshared`]), then the counts word again. The candidate
    /// passes if the mark was its own (`seen` unmarked), the word is still
    /// `seen` marked, its strong count is `counted`, that count is above
    /// zero unless `claimed` (the resurrection check) or the object is a
    /// zombie, and it carries `CLAIMED` exactly when `claimed`. `None` if it
    /// fails; else whether it has a weak handle.
    #[inline(always)]
    pub(in super::super) fn recheck(
        obj: NonNull<SyncHeader>,
        seen: u64,
        counted: u64,
        claimed: bool,
    ) -> Option<bool> {
        // SAFETY: in the tables and not freed (I1, I2, I4; see `owned`).
        let o = unsafe { owned(obj) };
        let w = o.weak.load(Ordering::Acquire);
        let now = o.counts.load(Ordering::SeqCst);
        let strong = now & STRONG_MASK;
        let ok = seen & MARKED == 0
            && now == seen | MARKED
            && strong == counted
            && (strong > 0 || claimed || o.flags.load(Ordering::Acquire) & ZOMBIE != 0)
            && ((now & CLAIMED != 0) == claimed);
        ok.then_some(w > 1)
    }

    /// One verification's candidates, in the index space of its driver:
    /// the chunk's (chunk-local indices, the trial's words) or the global
    /// one's (positions in `cands` with their table indices, the marks'
    /// words, the counted edges).
    pub(in super::super) trait Candidates {
        /// A candidate, as the driver lists it.
        type K: Copy;
        /// Whether it passed every check so far.
        fn is_candidate(&self, k: Self::K) -> bool;
        /// Its object.
        fn obj(&self, k: Self::K) -> NonNull<SyncHeader>;
        /// The word its mark found.
        fn seen(&self, k: Self::K) -> u64;
        /// The edges the verification counted to it.
        fn counted(&self, k: Self::K) -> u64;
        /// It passed (c).
        fn pass(&mut self, k: Self::K);
        /// It failed: noted for (d) ([`propagate_failures`]).
        fn fail(&mut self, k: Self::K);
    }

    /// Step 3 (c), after every mark of (b), for the candidates `list`:
    /// reads every candidate's word again ([`recheck`]); each one passes
    /// or fails. (d) follows ([`propagate_failures`], on the driver's
    /// edges). `claimed`: the counts carry `CLAIMED` (the resurrection
    /// check). `no_weak`: a candidate with a weak handle fails (for
    /// [`claim_unshared`]). Returns whether a candidate that passed has a
    /// weak handle.
    #[inline(always)]
    pub(in super::super) fn check<C: Candidates>(
        list: impl Iterator<Item = C::K>,
        c: &mut C,
        claimed: bool,
        no_weak: bool,
    ) -> bool {
        let mut weak = false;
        for k in list {
            if !c.is_candidate(k) {
                continue;
            }
            match recheck(c.obj(k), c.seen(k), c.counted(k), claimed) {
                Some(w) if !(no_weak && w) => {
                    weak |= w;
                    c.pass(k);
                }
                _ => c.fail(k),
            }
        }
        weak
    }

    /// Step 3 (d): everything reachable from a failed candidate along the
    /// counted edges fails too. `work` holds the failed ones; `edges(k)`
    /// lists `k`'s counted edges; `fail(j)` fails `j` if it has not failed
    /// yet and returns what to push on `work` for it.
    #[inline(always)]
    pub(in super::super) fn propagate_failures<W: Copy, T, I: Iterator<Item = T>>(
        work: &mut Vec<W>,
        edges: impl Fn(W) -> I,
        mut fail: impl FnMut(T) -> Option<W>,
    ) {
        while let Some(k) = work.pop() {
            for j in edges(k) {
                if let Some(next) = fail(j) {
                    work.push(next);
                }
            }
        }
    }

    /// Step 4 for a verified candidate whose mark found `seen`: claims it,
    /// by a compare-exchange if `cas` (an `upgrade` may race it: `Err` if
    /// one got in first), else by a plain store (sound only after the
    /// checks of [`claim_unshared`]); then sets `set` and clears `clear` in
    /// its flags (exclusive: claimed garbage, I4). Returns the flags before.
    #[inline(always)]
    pub(in super::super) fn claim(
        o: &SyncHeader,
        seen: u64,
        cas: bool,
        set: u32,
        clear: u32,
    ) -> Result<u32, ()> {
        if cas {
            o.counts
                .compare_exchange(
                    seen | MARKED,
                    seen | CLAIMED,
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                )
                .map_err(|_| ())?;
        } else {
            debug_assert_eq!(o.counts.load(Ordering::Relaxed), seen | MARKED);
            o.counts.store(seen | CLAIMED, Ordering::Relaxed);
        }
        let f = o.flags.load(Ordering::Relaxed);
        o.flags.store((f | set) & !clear, Ordering::Release);
        Ok(f)
    }

    /// One verification's candidates as step 4 goes through them (see
    /// [`Candidates`]).
    pub(in super::super) trait Claims {
        /// A candidate, as the driver lists it.
        type K: Copy;
        /// Whether it passed the verification.
        fn passed(&self, k: Self::K) -> bool;
        /// Its object.
        fn obj(&self, k: Self::K) -> NonNull<SyncHeader>;
        /// The word its mark found.
        fn seen(&self, k: Self::K) -> u64;
        /// It is claimed now.
        fn claimed(&mut self, k: Self::K);
        /// It is not (it failed): its mark goes, as the driver says.
        fn not_claimed(&mut self, k: Self::K);
        /// Done with it, claimed or not (its guards may go).
        fn done(&mut self, k: Self::K);
    }

    /// Step 4 over the candidates `list`, in that order: claims each one
    /// that passed ([`claim`], by compare-exchange if `cas`, with the flags
    /// `set` and `clear`) and lets the others go. Notes what it claims in
    /// `found` and `needs_finalize`; returns how many it claimed. `Err(k)`:
    /// an `upgrade` got in first at `k` (nothing after it was touched); the
    /// driver withdraws.
    #[inline(always)]
    pub(in super::super) fn claim_all<C: Claims>(
        list: impl Iterator<Item = C::K>,
        c: &mut C,
        (cas, set, clear): (bool, u32, u32),
        out: &mut Claimed,
    ) -> Result<usize, C::K> {
        let mut n = 0;
        // `has_finalizer` of the last vtable seen (runs of one type are usual).
        let mut last_vtable: Option<(&SyncVTable, bool)> = None;
        for k in list {
            if !c.passed(k) {
                c.not_claimed(k);
                c.done(k);
                continue;
            }
            // SAFETY: in the tables and not freed (I1, I2, I4; see `owned`).
            let o = unsafe { owned(c.obj(k)) };
            let seen = c.seen(k);
            let f = claim(o, seen, cas, set, clear).map_err(|()| k)?;
            c.claimed(k);
            n += 1;
            out.found += usize::from(seen & STRONG_MASK != 0);
            let has_finalizer = match last_vtable {
                Some((vt, fin)) if core::ptr::eq(vt, o.vtable) => fin,
                _ => {
                    last_vtable = Some((o.vtable, o.vtable.has_finalizer));
                    o.vtable.has_finalizer
                }
            };
            out.needs_finalize |= has_finalizer && f & FINALIZED == 0;
            c.done(k);
        }
        Ok(n)
    }

    /// Withdraws the claim on `obj` made by [`claim`] without `DEAD`: its
    /// flags first (exclusive while it is claimed, I4; a mutator may set
    /// `ZOMBIE` once the claim ends), then the claim (see [`unclaim`]).
    pub(in super::super) fn withdraw_claim(obj: NonNull<SyncHeader>) {
        // SAFETY: in the tables and not freed (I1, I2, I4; see `owned`).
        unsafe { owned(obj) }.update_flags_exclusively(0, WEAK_CLEARED);
        unclaim(obj);
    }
}

/// What the first half of the verification saw of the candidates.
#[derive(Clone, Copy, Default)]
pub(super) struct Traced {
    /// Some candidate had a weak handle (its weak count was above 1).
    pub(super) weak: bool,
    /// Some candidate has a finalizer that has not run.
    pub(super) finalize: bool,
}

/// Step 3 (a) and (b) over the objects in state `State::Candidate`: traces each
/// one with the guards kept (`guard_start` says whose they are), then
/// marks each one (`snap`); the ones that cannot be checked become
/// `State::Failed` (unmarked: `NOT_MARKED`), their positions in `failed`. The proof
/// needs every mark after every trace, and before any read of (c).
#[inline(never)]
pub(super) fn verify_trace(t: &mut Tables, scratch: &bumpalo::Bump) -> Traced {
    let n = t.objs.len();
    let mut seen = Traced::default();
    t.counted.clear();
    t.counted.resize(n, 0);
    t.edges.clear();
    t.edge_start.clear();
    t.snap.clear();
    t.guard_start.clear();
    t.failed.clear();
    t.pos.clear();
    for k in (0..t.cands.len()).map(Pos::new) {
        let c = t.cands[k.get()];
        t.edge_start.push(t.edges.len() as u32);
        t.guard_start.push(t.guards.len() as u32);
        t.snap.push(NOT_MARKED);
        if t.state[c] != State::Candidate {
            continue;
        }
        let obj = t.objs[c];
        // SAFETY: in the tables and not freed (I1, I2, I4; see `owned`).
        let o = unsafe { owned(obj) };
        seen.weak |= o.weak.load(Ordering::Relaxed) > 1;
        let f = o.flags.load(Ordering::Acquire);
        seen.finalize |= o.vtable.has_finalizer && f & FINALIZED == 0;
        // Only a structural `trace` lets the collector hold every lock it
        // counted a handle behind (see "Which values the verification
        // accepts" in the module docs).
        if !o.vtable.structural || f & EXCLUSIVE != 0 {
            t.state[c] = State::Failed;
            t.failed.push(k);
            continue;
        }
        let mut sink = Verify {
            objs: &t.objs,
            heap_bits: t.heap_bits,
            state: &t.state,
            counted: &mut t.counted,
            edges: &mut t.edges,
            busy: false,
            probe: None,
        };
        // SAFETY: owned by this collection, not exclusive.
        unsafe { trace_with(obj, &mut sink, Some(&mut t.guards), scratch) };
        if sink.busy {
            t.state[c] = State::Failed;
            t.failed.push(k);
        }
    }
    t.edge_start.push(t.edges.len() as u32);
    t.guard_start.push(t.guards.len() as u32);
    // (b): mark every candidate whose trace could be checked, after every
    // trace of (a) and before any read of (c).
    for (&c, snap) in t.cands.iter().zip(&mut t.snap) {
        if t.state[c] == State::Candidate {
            *snap = rule::mark(t.objs[c]);
        }
    }
    seen
}

/// In `Tables::snap`: the candidate was not marked (it failed before (b),
/// or was no candidate). A mark never returns a word with `MARKED` set.
pub(super) const NOT_MARKED: u64 = MARKED;

/// Adds the edges the first pass recorded from the garbage it claimed
/// (`chunk_garbage`) to the counted edges of the global candidates they
/// point to.
pub(super) fn count_claimed_edges(t: &mut Tables) {
    for &i in &t.chunk_garbage {
        debug_assert_eq!(t.state[i], State::Garbage);
        let (s, e) = (t.adj_start[i] as usize, t.adj_start[i.get() + 1] as usize);
        for x in s..e {
            let j = t.adj[x];
            if t.state[j] == State::Candidate {
                t.counted[j] += 1;
            }
        }
    }
}

/// Step 3 (c) and (d), after [`verify_trace`] ([`rule::check`] on the
/// global candidates): every candidate becomes `State::Garbage` or
/// `State::Failed`. The guards stay held. `claimed`: the counts carry
/// `CLAIMED` (the resurrection check). `no_weak`: a candidate with a weak
/// handle fails (for [`claim_unshared`]).
#[inline(never)]
pub(super) fn verify_check(t: &mut Tables, claimed: bool, no_weak: bool) {
    // (c)
    let Tables {
        objs,
        state,
        cands,
        snap,
        counted,
        failed,
        ..
    } = &mut *t;
    let list = cands.iter().zip(snap.iter()).enumerate();
    let list = list.map(|(k, (&c, &seen))| (Pos::new(k), c, seen));
    let mut global = GlobalCandidates {
        objs,
        state,
        counted,
        failed,
    };
    rule::check(list, &mut global, claimed, no_weak);
    // (d)
    propagate_failures(t);
}

/// The global candidates, for [`rule::check`]: each listed as its position
/// in `cands`, its table index and the word its mark found.
struct GlobalCandidates<'a> {
    objs: &'a [NonNull<SyncHeader>],
    state: &'a mut [State],
    counted: &'a [u32],
    failed: &'a mut Vec<Pos>,
}

impl rule::Candidates for GlobalCandidates<'_> {
    type K = (Pos, Ix, u64);
    #[inline(always)]
    fn is_candidate(&self, (_, c, _): Self::K) -> bool {
        self.state[c] == State::Candidate
    }
    #[inline(always)]
    fn obj(&self, (_, c, _): Self::K) -> NonNull<SyncHeader> {
        self.objs[c]
    }
    #[inline(always)]
    fn seen(&self, (_, _, seen): Self::K) -> u64 {
        seen
    }
    #[inline(always)]
    fn counted(&self, (_, c, _): Self::K) -> u64 {
        u64::from(self.counted[c])
    }
    #[inline(always)]
    fn pass(&mut self, (_, c, _): Self::K) {
        self.state[c] = State::Garbage;
    }
    #[inline(always)]
    fn fail(&mut self, (p, c, _): Self::K) {
        self.state[c] = State::Failed;
        self.failed.push(p);
    }
}

/// Step 3 (d): everything reachable from a failed candidate (the positions
/// in `failed`) along the counted edges fails too (`State::Garbage` or `State::Candidate`
/// objects reached become `State::Failed`).
pub(super) fn propagate_failures(t: &mut Tables) {
    if t.failed.is_empty() {
        return;
    }
    if t.pos.is_empty() {
        t.pos.resize(t.objs.len(), Pos::default());
        for (k, &c) in t.cands.iter().enumerate() {
            t.pos[c] = Pos::new(k);
        }
    }
    let Tables {
        state,
        edges,
        edge_start,
        failed,
        pos,
        ..
    } = t;
    let counted_edges = |k: Pos| {
        edges[edge_start[k.get()] as usize..edge_start[k.get() + 1] as usize]
            .iter()
            .copied()
    };
    rule::propagate_failures(failed, counted_edges, |j| {
        matches!(state[j], State::Candidate | State::Garbage).then(|| {
            state[j] = State::Failed;
            pos[j]
        })
    });
}

/// What the claims found out about G' on their way.
#[derive(Default, Clone, Copy)]
pub(super) struct Claimed {
    /// Something is claimed.
    pub(super) ok: bool,
    /// Objects of G' that still had a strong count (not zombies).
    pub(super) found: usize,
    /// Some object of G' has a finalizer that has not run.
    pub(super) needs_finalize: bool,
    /// Some claimed objects got step 6's flags (`DEAD`) with the claim.
    pub(super) dead_folded: bool,
    /// Some did not.
    pub(super) not_folded: bool,
}

impl Claimed {
    pub(super) fn merge(&mut self, other: Claimed) {
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
pub(super) fn claim_and_release(t: &mut Tables) -> Claimed {
    let mut out = Claimed::default();
    // `upgrade` fails from here on either way; `WEAK_CLEARED` keeps it
    // failing while finalizers run (as in Python), until the claim is
    // withdrawn.
    if let Err((k, ..)) = claim_global(t, (true, WEAK_CLEARED, 0), &mut out) {
        withdraw(t, k.get());
        release_guards(&mut t.guards);
        return Claimed::default();
    }
    out.ok = out.found > 0 || t.cands.iter().any(|&c| t.state[c] == State::Garbage);
    out.not_folded = out.ok;
    out
}

/// Step 4 over the global candidates ([`rule::claim_all`]), from the last
/// one, releasing each one's guards once it is claimed (or failed).
#[inline(always)]
fn claim_global(
    t: &mut Tables,
    how: (bool, u32, u32),
    out: &mut Claimed,
) -> Result<usize, GlobalKey> {
    let Tables {
        objs,
        state,
        cands,
        snap,
        guards,
        guard_start,
        ..
    } = t;
    let list = cands.iter().zip(snap.iter()).zip(guard_start.iter());
    let list = list.enumerate().rev();
    let list = list.map(|(k, ((&c, &seen), &from))| (Pos::new(k), c, seen, from));
    let mut global = GlobalClaims {
        objs,
        state,
        guards,
    };
    rule::claim_all(list, &mut global, how, out)
}

/// The global candidates, for [`rule::claim_all`]: each listed as its
/// position in `cands`, its table index, the word its mark found and where
/// its guards start.
struct GlobalClaims<'a> {
    objs: &'a [NonNull<SyncHeader>],
    state: &'a mut [State],
    guards: &'a mut Vec<KeptGuard>,
}

/// A global candidate in step 4: its position in `cands`, its table index,
/// the word its mark found, where its guards start.
type GlobalKey = (Pos, Ix, u64, u32);

impl rule::Claims for GlobalClaims<'_> {
    type K = GlobalKey;
    #[inline(always)]
    fn passed(&self, (_, c, ..): Self::K) -> bool {
        self.state[c] == State::Garbage
    }
    #[inline(always)]
    fn obj(&self, (_, c, ..): Self::K) -> NonNull<SyncHeader> {
        self.objs[c]
    }
    #[inline(always)]
    fn seen(&self, (_, _, seen, _): Self::K) -> u64 {
        seen
    }
    #[inline(always)]
    fn claimed(&mut self, _: Self::K) {}
    #[inline(always)]
    fn not_claimed(&mut self, (_, c, seen, _): Self::K) {
        if self.state[c] == State::Failed {
            unmark(self.objs[c], seen);
            self.state[c] = State::Reachable;
        }
    }
    #[inline(always)]
    fn done(&mut self, (.., from): Self::K) {
        release_guards_from(self.guards, from as usize);
    }
}

/// The flags a claimed object of G' gets in [`claim_unshared`] when no
/// finalizer can run (`dead`): step 6's as well as step 4's.
pub(super) const DEAD_SET: u32 = WEAK_CLEARED | DEAD;

pub(super) const DEAD_CLEAR: u32 = LINKED | IN_COLLECTOR;

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
pub(super) fn claim_unshared(t: &mut Tables, dead: bool) -> Claimed {
    let (set, clear) = if dead {
        (DEAD_SET, DEAD_CLEAR)
    } else {
        (WEAK_CLEARED, 0)
    };
    let mut out = Claimed::default();
    let Ok(n) = claim_global(t, (false, set, clear), &mut out) else {
        unreachable!("a claim by a store cannot fail");
    };
    out.ok = n > 0;
    out.dead_folded = out.ok && dead;
    out.not_folded = out.ok && !dead;
    out
}

/// Withdraws the claims made by `claim_and_release` after position `k`
/// (it goes backwards), clears the marks it has not reached, and returns
/// every candidate to the survivors.
pub(super) fn withdraw(t: &mut Tables, k: usize) {
    for &d in &t.cands[k + 1..] {
        if t.state[d] == State::Garbage {
            rule::withdraw_claim(t.objs[d]);
        }
    }
    for (&d, &seen) in t.cands[..=k].iter().zip(&t.snap) {
        unmark(t.objs[d], seen);
    }
    for &d in &t.cands {
        if matches!(t.state[d], State::Garbage | State::Failed) {
            t.state[d] = State::Reachable;
        }
    }
}

/// Clears the mark of a candidate that is not claimed (step 3 (b); `seen`
/// is the word the mark returned, or [`NOT_MARKED`]). A drop that took the
/// count from above zero to zero while the mark was set did nothing else
/// (`dec_strong`): the collector takes that zero over (I5), and the object
/// becomes a zombie, dropped when given back.
#[inline]
pub(super) fn unmark(obj: NonNull<SyncHeader>, seen: u64) {
    if seen == NOT_MARKED {
        return;
    }
    // SAFETY: in the tables and not freed (I1, I2, I4; see `owned`).
    let o = unsafe { owned(obj) };
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
#[inline]
pub(super) fn unclaim(obj: NonNull<SyncHeader>) {
    // SAFETY: in the tables and not freed (I1, I2, I4; see `owned`).
    let o = unsafe { owned(obj) };
    let old = o.counts.fetch_and(!(CLAIMED | MARKED), Ordering::AcqRel);
    if old & CLAIMED != 0 && old & STRONG_MASK == 0 {
        o.flags.fetch_or(ZOMBIE, Ordering::Release);
    }
}
