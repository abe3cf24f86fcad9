//! Steps 2 to 4 chunk by chunk: the first pass over the taken objects,
//! which records every edge for the global guess and verifies and claims
//! the cycles that stay inside one chunk.

use super::*;

/// The first pass's traversal: records the edges into the taken objects,
/// grouped by source (`Tables::adj_start`), and whether a lock was busy.
/// The guards are kept (by the visitor) until the object's chunk is done.
pub(super) struct Record<'t> {
    pub(super) objs: &'t [NonNull<SyncHeader>],
    pub(super) heap_bits: u32,
    pub(super) adj: &'t mut Vec<Ix>,
    pub(super) exclusive_seen: &'t mut Vec<(Ix, NonNull<SyncHeader>)>,
    pub(super) current: Ix,
    pub(super) busy: bool,
    /// A value inside whose `trace` is not structural, by type.
    pub(super) unstructural: Option<fn() -> &'static str>,
}

impl SyncSink for Record<'_> {
    fn edge(&mut self, target: NonNull<SyncHeader>) {
        let Some((i, f)) = owned_index(target, self.objs, self.heap_bits) else {
            return;
        };
        self.adj.push(i);
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

/// A `trace` of the first pass panicked: withdraws the claims of the chunks
/// done so far, flags first (a mutator may set `ZOMBIE` once the claim
/// ends), and makes every object a survivor. The guards go first.
pub(super) fn withdraw_first_pass(t: &mut Tables) {
    release_guards(&mut t.guards);
    for (s, &obj) in t.state.iter_mut().zip(&t.objs) {
        if *s == State::Garbage {
            // SAFETY: in the tables and not freed (I1, I2, I4; see `owned`).
            unsafe { owned(obj) }
                .update_flags_exclusively(LINKED | IN_COLLECTOR, DEAD | WEAK_CLEARED);
            unclaim(obj);
        }
        *s = State::Reachable;
    }
}

/// Objects per chunk of the first pass: the collector holds the locks
/// inside a chunk's values from each one's trace to the end of the chunk,
/// about 30 ns per object (so a mutator that wants one of them waits some
/// tens of microseconds at most). Small under Miri, so that its few objects
/// span several chunks and the global step runs too (loom models choose).
pub(super) const CHUNK: usize = if cfg!(miri) { 2 } else { 1024 };

/// Handles (edges into the taken objects) after which a chunk ends even if
/// it has fewer than `CHUNK` objects.
pub(super) const CHUNK_EDGES: usize = 8 * CHUNK;

/// The first pass's chunk size: [`CHUNK`], or under loom the model's choice.
pub(super) fn chunk_size(h: &SyncHeap) -> usize {
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
pub(super) fn first_pass(
    t: &mut Tables,
    scratch: &bumpalo::Bump,
    chunk: usize,
    fold_dead: bool,
) -> Claimed {
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
        heap_bits,
        ..
    } = t;
    let heap_bits = *heap_bits;
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
        // Edges from earlier chunks only ever took a little off: this one
        // is `EXCLUSIVE` (see `take`), not read.
        if *refs > ROOT_REFS / 2 {
            *local = ROOT_REFS;
            continue;
        }
        if let Some(&ahead) = objs.get(i + PREFETCH) {
            prims::prefetch(ahead.as_ptr());
        }
        let obj = objs[i];
        // SAFETY: in the tables and not freed (I1, I2, I4; see `owned`).
        let o = unsafe { owned(obj) };
        let word = o.counts.load(Ordering::SeqCst);
        *word_slot = word;
        let mut sink = Record {
            objs,
            heap_bits,
            adj,
            exclusive_seen,
            current: Ix::new(i),
            busy: false,
            unstructural: None,
        };
        // Only a structural `trace` keeps its guards (`trace_recording`).
        let mut structural = o.vtable.structural;
        if let Some(name) = trace_recording(&mut sink, obj, structural && hold, guards, scratch) {
            structural = false;
            if !sink.busy {
                inner_untrusted.push((Ix::new(i), name));
            }
        }
        if !structural && !sink.busy {
            untrusted.push(Ix::new(i));
        }
        // A busy lock hid some edges: a root too.
        *local = start_trial(refs, word, sink.busy || !structural);
    }
    local_refs.truncate(end - lo);
    adj_start[end] = adj.len() as u32;
    end
}

/// An object's start in the trial, given its counts `word` (edges from
/// earlier chunks were subtracted from `refs` already): its strong count,
/// or `ROOT_REFS` if some of its edges are hidden (`root`). Adds it to the
/// global `refs` and returns it (the chunk's own `gc_refs`).
#[inline(always)]
fn start_trial(refs: &mut i64, word: u64, root: bool) -> i64 {
    let r = if root {
        *refs = ROOT_REFS;
        ROOT_REFS
    } else {
        (word & STRONG_MASK) as i64
    };
    *refs = refs.saturating_add(r);
    r
}

/// Traces taken object `obj` for [`trace_chunk`], recording its edges in
/// `sink` and keeping its lock guards in `guards` if `keep`. Only a
/// structural `trace` lets the collector hold every lock it counted a
/// handle behind (see "Which values the verification accepts" in the module
/// docs): the guards of any other are not kept (a lock its `trace` took
/// itself may free a kept one), and it is a root; its edges are recorded for
/// the report (`untrusted`). A value inside whose `trace` is not structural
/// (a trait object's) makes the object not structural after all: with
/// guards kept that value was not traced (`Visitor::enter_unstructural`), so
/// the object's guards go and it is traced again without them, recording
/// every edge for the report. Returns that value's type, if any.
#[inline(always)]
fn trace_recording(
    sink: &mut Record<'_>,
    obj: NonNull<SyncHeader>,
    keep: bool,
    guards: &mut Vec<KeptGuard>,
    scratch: &bumpalo::Bump,
) -> Option<crate::visitor::TypeName> {
    let (guards_before, edges_before, excl_before) =
        (guards.len(), sink.adj.len(), sink.exclusive_seen.len());
    // SAFETY: owned by this collection, not exclusive.
    unsafe { trace_with(obj, sink, keep.then_some(&mut *guards), scratch) };
    let name = sink.unstructural.take()?;
    if keep {
        release_guards_from(guards, guards_before);
        sink.adj.truncate(edges_before);
        sink.exclusive_seen.truncate(excl_before);
        sink.busy = false;
        // SAFETY: as above.
        unsafe { trace_with(obj, sink, None, scratch) };
    }
    Some(name)
}

/// Chunk-local marks of [`local_trial`] and [`end_chunk`], by index in
/// the chunk (`Tables::local_mark`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Mark {
    /// Not reached from the chunk's roots: a candidate of the chunk.
    Unknown,
    /// Reached from an object referenced from outside the chunk.
    Reachable,
    /// A candidate that passed (b) so far.
    Candidate,
    /// A candidate that failed.
    Failed,
}

/// The edges of one chunk of the first pass (objects `lo..`), by object.
#[derive(Clone, Copy)]
pub(super) struct ChunkEdges<'a> {
    pub(super) adj: &'a [Ix],
    pub(super) adj_start: &'a [u32],
    pub(super) lo: usize,
}

impl<'a> ChunkEdges<'a> {
    pub(super) fn new(adj: &'a [Ix], adj_start: &'a [u32], lo: usize) -> Self {
        ChunkEdges {
            adj,
            adj_start: &adj_start[lo..],
            lo,
        }
    }

    /// The edges of chunk object `k`, as chunk indices (edges that leave
    /// the chunk wrap around to large values, which the callers skip).
    #[inline(always)]
    pub(super) fn of(self, k: Local) -> impl Iterator<Item = usize> + 'a {
        let k = k.get();
        let (s, e) = (self.adj_start[k] as usize, self.adj_start[k + 1] as usize);
        let lo = self.lo;
        self.adj[s..e]
            .iter()
            .map(move |&j| j.get().wrapping_sub(lo))
    }
}

/// Subtracts every edge of the chunk starting at `lo` (the last one traced)
/// from the global `gc_refs`: step 2 needs no other pass over the edges.
fn subtract_chunk_edges(t: &mut Tables, lo: usize) {
    for &j in &t.adj[t.adj_start[lo] as usize..] {
        t.refs[j] -= 1;
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
            refs[j] -= 1;
        }
        if let Some(r) = local_refs.get_mut(j.get().wrapping_sub(lo)) {
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
    local_mark.resize(m, Mark::Unknown);
    let local_mark = &mut local_mark[..m];
    local_work.clear();
    for (k, (&r, mark)) in local_refs.iter().zip(local_mark.iter_mut()).enumerate() {
        if r > 0 {
            *mark = Mark::Reachable;
            local_work.push(Local::new(k));
        }
    }
    while let Some(k) = local_work.pop() {
        for j in edges.of(k) {
            if let Some(mark @ &mut Mark::Unknown) = local_mark.get_mut(j) {
                *mark = Mark::Reachable;
                local_work.push(Local::new(j));
            }
        }
    }
    local_mark.contains(&Mark::Unknown)
}

/// The end of one chunk of the first pass (objects `lo..hi`) whose trial
/// ([`local_trial`]) left candidates. The chunk was traced with its guards
/// kept, and they are still held: step 3's (b), (c) and (d) on the
/// candidates, and step 4 for those that pass (the others are unmarked),
/// by the verification's rules ([`rule`]). What it claims (`None` if an
/// `upgrade` got in first and the chunk's claims were withdrawn). The
/// chunk's marks are kept in `local_mark`; only claimed objects change
/// state (to `State::Garbage`): failed ones are left to the global steps.
#[inline(always)]
pub(super) fn end_chunk(t: &mut Tables, lo: usize, hi: usize, fold_dead: bool) -> Option<Claimed> {
    mark_chunk(t, lo, hi);
    let weak = check_chunk(t, lo, hi);
    claim_chunk(t, lo, weak, fold_dead)
}

/// Step 3 (b) on the chunk's candidates (listed in `chunk_cands`): marks
/// each one, all before any read of (c). A candidate fails unless the mark
/// finds the word read before its trace, whose strong count the trial
/// explained by the chunk's counted edges (`r == 0`). The words the marks
/// returned replace those in `words` (`unmark` needs them).
#[inline(always)]
fn mark_chunk(t: &mut Tables, lo: usize, hi: usize) {
    let Tables {
        objs,
        words,
        local_refs,
        local_mark,
        local_work,
        chunk_cands,
        ..
    } = t;
    let m = hi - lo;
    chunk_cands.clear();
    let slots = local_mark[..m]
        .iter_mut()
        .zip(&objs[lo..hi])
        .zip(&mut words[lo..hi])
        .zip(&local_refs[..m]);
    for (k, (((mark, &o), seen), &r)) in slots.enumerate() {
        if *mark != Mark::Unknown {
            continue;
        }
        let marked = rule::mark(o);
        chunk_cands.push(Local::new(k));
        if marked == *seen && marked & (MARKED | CLAIMED) == 0 && r == 0 {
            *mark = Mark::Candidate;
        } else {
            *mark = Mark::Failed;
            local_work.push(Local::new(k));
        }
        *seen = marked;
    }
}

/// Step 3 (c) and (d) inside the chunk ([`rule::check`] on the chunk's
/// candidates; their whole strong count is counted: `r == 0` in (b)), the
/// failures propagated along the chunk's edges. Whether a candidate that
/// passed has a weak handle.
#[inline(always)]
fn check_chunk(t: &mut Tables, lo: usize, hi: usize) -> bool {
    let Tables {
        objs,
        words,
        adj,
        adj_start,
        local_mark,
        local_work,
        chunk_cands,
        ..
    } = t;
    let mut chunk = ChunkCandidates {
        objs: &objs[lo..hi],
        words: &words[lo..hi],
        mark: &mut local_mark[..hi - lo],
        work: local_work,
    };
    let weak = rule::check(
        chunk_cands.iter().map(|k| k.get()),
        &mut chunk,
        false,
        false,
    );
    let (work, mark) = (chunk.work, chunk.mark);
    let edges = ChunkEdges::new(adj, adj_start, lo);
    rule::propagate_failures(
        work,
        |k| edges.of(k),
        |j| match mark.get_mut(j) {
            Some(m @ &mut Mark::Candidate) => {
                *m = Mark::Failed;
                Some(Local::new(j))
            }
            _ => None,
        },
    );
    weak
}

/// The candidates of one chunk, as chunk-local indices, for
/// [`rule::check`].
struct ChunkCandidates<'a> {
    objs: &'a [NonNull<SyncHeader>],
    /// The words the chunk's marks found.
    words: &'a [u64],
    mark: &'a mut [Mark],
    /// The failed ones, for (d).
    work: &'a mut Vec<Local>,
}

impl rule::Candidates for ChunkCandidates<'_> {
    type K = usize;
    #[inline(always)]
    fn is_candidate(&self, k: usize) -> bool {
        self.mark[k] == Mark::Candidate
    }
    #[inline(always)]
    fn obj(&self, k: usize) -> NonNull<SyncHeader> {
        self.objs[k]
    }
    #[inline(always)]
    fn seen(&self, k: usize) -> u64 {
        self.words[k]
    }
    /// The trial explained the whole strong count (`r == 0` in (b)).
    #[inline(always)]
    fn counted(&self, k: usize) -> u64 {
        self.seen(k) & STRONG_MASK
    }
    /// A candidate that passed stays `Mark::Candidate` until the claim.
    #[inline(always)]
    fn pass(&mut self, _: usize) {}
    #[inline(always)]
    fn fail(&mut self, k: usize) {
        self.mark[k] = Mark::Failed;
        self.work.push(Local::new(k));
    }
}

/// Step 4 for the chunk: claims the candidates that passed (by
/// compare-exchange if one has a weak handle, else by a store, then with
/// `DEAD` if `fold_dead`) and unmarks the others. If an `upgrade` got in
/// first, withdraws the chunk's claims and marks (the global steps decide
/// about all of it): `None`.
#[inline(always)]
fn claim_chunk(t: &mut Tables, lo: usize, weak: bool, fold_dead: bool) -> Option<Claimed> {
    let Tables {
        objs,
        state,
        words,
        local_mark,
        chunk_garbage,
        group_end,
        chunk_cands,
        ..
    } = t;
    let (set, clear) = if fold_dead && !weak {
        (DEAD_SET, DEAD_CLEAR)
    } else {
        (WEAK_CLEARED, 0)
    };
    let mut chunk = Claimed::default();
    let first_claim = chunk_garbage.len();
    let mut claims = ChunkClaims {
        objs: &objs[lo..],
        state: &mut state[lo..],
        words: &words[lo..],
        mark: local_mark,
        garbage: chunk_garbage,
        lo,
    };
    let list = chunk_cands.iter().enumerate().map(|(p, &k)| (p, k.get()));
    if let Err((p, _)) = rule::claim_all(list, &mut claims, (weak, set, clear), &mut chunk) {
        for &j in &chunk_garbage[first_claim..] {
            rule::withdraw_claim(objs[j]);
            state[j] = State::Unknown;
        }
        chunk_garbage.truncate(first_claim);
        for &j in &chunk_cands[p..] {
            unmark(objs[lo + j.get()], words[lo + j.get()]);
        }
        return None;
    }
    chunk.ok = chunk_garbage.len() > first_claim;
    if chunk.ok {
        group_end.push(chunk_garbage.len() as u32);
    }
    chunk.dead_folded = chunk.ok && set == DEAD_SET;
    chunk.not_folded = chunk.ok && set != DEAD_SET;
    Some(chunk)
}

/// The candidates of one chunk in step 4, for [`rule::claim_all`]: each
/// listed as its position in `chunk_cands` and its chunk-local index.
struct ChunkClaims<'a> {
    /// The tables from the chunk's first object on.
    objs: &'a [NonNull<SyncHeader>],
    state: &'a mut [State],
    words: &'a [u64],
    mark: &'a [Mark],
    /// `chunk_garbage`, in table indices.
    garbage: &'a mut Vec<Ix>,
    lo: usize,
}

impl rule::Claims for ChunkClaims<'_> {
    type K = (usize, usize);
    #[inline(always)]
    fn passed(&self, (_, k): Self::K) -> bool {
        self.mark[k] == Mark::Candidate
    }
    #[inline(always)]
    fn obj(&self, (_, k): Self::K) -> NonNull<SyncHeader> {
        self.objs[k]
    }
    #[inline(always)]
    fn seen(&self, (_, k): Self::K) -> u64 {
        self.words[k]
    }
    #[inline(always)]
    fn claimed(&mut self, (_, k): Self::K) {
        self.state[k] = State::Garbage;
        self.garbage.push(Ix::new(self.lo + k));
    }
    /// The failed ones are left to the global steps.
    #[inline(always)]
    fn not_claimed(&mut self, (_, k): Self::K) {
        unmark(self.objs[k], self.words[k]);
    }
    #[inline(always)]
    fn done(&mut self, _: Self::K) {}
}

/// An `EXCLUSIVE` object whose only handle sits in a slot the collector
/// holds cannot be mutably borrowed any more (I3): looks for that handle
/// with the parent's locks held, and clears the bit when it is there.
pub(super) fn release_stale_exclusives(t: &mut Tables, scratch: &bumpalo::Bump) {
    let pairs = core::mem::take(&mut t.exclusive_seen);
    let mut no_edges = Vec::new();
    let mut counted = Vec::new();
    for &(parent, target) in &pairs {
        let p = t.objs[parent];
        // (A parent the first pass claimed is garbage: nothing to learn.)
        if t.state[parent] == State::Garbage
            // SAFETY: in the tables and not freed (I1, I2, I4; see `owned`).
            || unsafe { owned(p) }.flags.load(Ordering::Acquire) & EXCLUSIVE != 0
        {
            continue;
        }
        let mut sink = Verify {
            objs: &t.objs,
            heap_bits: t.heap_bits,
            state: &[],
            counted: &mut counted,
            edges: &mut no_edges,
            busy: false,
            probe: Some((target, false)),
        };
        // SAFETY: owned by this collection, not exclusive.
        unsafe { trace_with(p, &mut sink, Some(&mut t.guards), scratch) };
        let found = !sink.busy && matches!(sink.probe, Some((_, true)));
        // SAFETY: in the tables and not freed (I1, I2, I4; see `owned`).
        let tgt = unsafe { owned(target) };
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
