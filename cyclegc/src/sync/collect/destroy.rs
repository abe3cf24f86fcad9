//! Steps 5 and 6: the shared heap's primitives of the unreachable-set
//! pipeline (`crate::unreachable`): finalizers and their re-verification,
//! `SAVEALL`, dropping G' and freeing it; and the zombies' drops.

use super::*;

/// Where G' (the claimed garbage) is listed once the claims are made.
#[derive(Debug, Default)]
pub(super) enum GarbageList {
    /// By group: chunk by chunk (`t.chunk_garbage`, the groups ending at
    /// `t.group_end`), then `t.global_garbage`; step 6 drops and frees each
    /// group while its memory is in the cache.
    #[default]
    Groups,
    /// All of it, in table order: finalizers and `SAVEALL` work on the
    /// whole set at once (a finalizer may move handles anywhere inside
    /// it). The vector is the one `t.cands` had (its allocation reused),
    /// given back to `t.cands` when the batch is done.
    Whole(Vec<Ix>),
}

impl GarbageList {
    /// The whole of G' (empty when it is listed by group).
    pub(super) fn whole(&self) -> &[Ix] {
        match self {
            GarbageList::Groups => &[],
            GarbageList::Whole(g) => g,
        }
    }
}

/// G' as the pipeline of `crate::unreachable` sees it: claimed (I4), used
/// holding the collector lock (in the critical part, or again after the
/// finalizers); the finalizers and the drops run without it (I6), in
/// [`finish`].
pub(super) struct Claims<'a> {
    pub(super) b: &'a mut Batch,
    pub(super) scratch: &'a bumpalo::Bump,
    /// Something is claimed.
    pub(super) ok: bool,
    /// Some object of G' has a finalizer that has not run.
    pub(super) unfinalized: bool,
    /// Some claims set `DEAD` with the claim (`Claimed::dead_folded`).
    pub(super) dead_folded: bool,
    /// Some objects of G' are not marked dead yet.
    pub(super) dead_missing: bool,
    /// The objects of G' that still had a strong count (not zombies: those
    /// were freed by counting, not found by the collector).
    pub(super) found: usize,
}

impl<'a> Claims<'a> {
    /// G' as the claims left it.
    pub(super) fn claimed(b: &'a mut Batch, scratch: &'a bumpalo::Bump, c: &Claimed) -> Self {
        Claims {
            b,
            scratch,
            ok: c.ok,
            unfinalized: c.needs_finalize,
            dead_folded: c.dead_folded,
            dead_missing: c.not_folded,
            found: c.found,
        }
    }

    /// G' once its finalizers ran (its values were made readable for them).
    pub(super) fn finalized(b: &'a mut Batch, scratch: &'a bumpalo::Bump) -> Self {
        Claims {
            b,
            scratch,
            ok: true,
            unfinalized: false,
            dead_folded: false,
            dead_missing: true,
            found: 0,
        }
    }
}

impl crate::unreachable::UnreachableSet for Claims<'_> {
    fn saveall(&self) -> bool {
        self.b.saveall
    }

    fn is_empty(&self) -> bool {
        !self.ok
    }

    fn has_unfinalized(&self) -> bool {
        self.unfinalized
    }

    /// The claims made with `DEAD` lose it: a finalizer may resurrect them.
    /// What was found is counted now, as on the thread-local heap: a set
    /// the finalizers resurrect was still found unreachable.
    fn keep_values(&mut self) {
        self.b.outcome.unreachable = self.found;
        if self.dead_folded {
            let t = &self.b.t;
            for &c in self.b.garbage.whole() {
                // SAFETY: in the tables and not freed (I1, I2, I4; see `owned`).
                unsafe { owned(t.objs[c]) }.update_flags_exclusively(LINKED | IN_COLLECTOR, DEAD);
            }
        }
        self.dead_missing = true;
    }

    fn resurrected(&mut self) -> bool {
        match self.b.reverify(self.scratch) {
            Some(found) => {
                self.found = found;
                false
            }
            None => true,
        }
    }

    fn revive(&mut self) {
        self.b.withdraw_all();
    }

    fn save(&mut self) {
        self.b.outcome.unreachable = self.found;
        self.b.save_all();
    }

    fn doom(&mut self) {
        self.b.outcome.unreachable = self.found;
        if self.dead_missing {
            mark_dead(&self.b.t, &self.b.garbage);
        }
        self.b.outcome.collected = self.found;
    }
}

/// Steps 5 and 6's user code, run without the collector lock (I6).
impl crate::unreachable::RunsUserCode for Batch {
    fn finalize_each(&mut self) {
        finalize_all(&self.t, self.garbage.whole(), &mut self.panic);
    }

    fn destroy(&mut self) {
        self.destroy_all();
    }
}

impl Batch {
    /// The unreachable-set pipeline's steps that run user code, without the
    /// collector lock but for the re-check after the finalizers (I6).
    pub(super) fn finish_pipeline(&mut self, h: &SyncHeap) {
        let rest = self.rest;
        self.rest = crate::unreachable::finish(self, rest, |b| {
            let mut state = prims::lock(&h.collector);
            let _c = super::super::control::Collecting::start(h);
            let rest =
                crate::unreachable::after_finalizers(&mut Claims::finalized(b, &state.scratch));
            b.back.finish(&mut state);
            state.scratch.reset();
            rest
        });
        if let GarbageList::Whole(g) = core::mem::take(&mut self.garbage) {
            // Its allocation, back to `cands` for the next collection.
            self.t.cands = g;
        }
    }

    /// Step 5's re-verification, holding the collector lock again (it
    /// traces values and may give G' back: I6): verifies G' again. Intact:
    /// the marks go, and G' is counted again (the finalizers may have moved
    /// handles around): `Some(count)`. Resurrected, or the check could not
    /// finish: `None`, with G' still claimed.
    fn reverify(&mut self, scratch: &bumpalo::Bump) -> Option<usize> {
        let t = &mut self.t;
        // G' becomes the verification's candidates (the rest is given back
        // already); its own list is `cands`' until the check is over.
        let GarbageList::Whole(garbage) = &mut self.garbage else {
            unreachable!("ouro: finalizers ran on garbage listed by group");
        };
        core::mem::swap(&mut t.cands, garbage);
        for &c in &t.cands {
            if t.state[c] == State::Garbage {
                t.state[c] = State::Candidate;
            }
        }
        let r = tracing(|| {
            catch(|| {
                verify_trace(t, scratch);
                verify_check(t, true, false);
            })
        });
        release_guards(&mut t.guards);
        let intact = r.is_none() && t.cands.iter().all(|&c| t.state[c] != State::Failed);
        core::mem::swap(&mut t.cands, garbage);
        if let Some(p) = r {
            keep_first(&mut self.panic, Some(p));
        }
        intact.then(|| unmark_and_count(t, garbage, &t.snap))
    }

    /// Step 5 when a finalizer resurrected some of G' (or the check could
    /// not finish): nothing is freed now, the claims are withdrawn. The
    /// objects live on, so do their weak handles (as when a claim is
    /// withdrawn in step 4).
    fn withdraw_all(&mut self) {
        let t = &mut self.t;
        for &i in self.garbage.whole() {
            if matches!(
                t.state[i],
                State::Candidate | State::Failed | State::Garbage
            ) {
                rule::withdraw_claim(t.objs[i]);
                t.state[i] = State::Reachable;
            }
        }
        self.back.give(self.heap, t, |_| true, &mut self.zombies);
    }

    /// `SAVEALL`: keeps G' (listed whole), one strong reference each, in
    /// `garbage()`, and gives it back.
    fn save_all(&mut self) {
        let t = &mut self.t;
        let mut saved = prims::lock(&self.heap.garbage);
        for &i in self.garbage.whole() {
            if t.state[i] == State::Garbage {
                let obj = t.objs[i];
                // SAFETY: in the tables and not freed (I1, I2, I4; see `owned`).
                let o = unsafe { owned(obj) };
                if o.counts.load(Ordering::Acquire) & STRONG_MASK == 0 {
                    // Its last handle went while this collection owned it:
                    // before the claim (a zombie), or after it, dropped by
                    // a finalizer of G' (the resurrection check admits a
                    // count of 0 then; no `ZOMBIE` mark: a drop to 0 of a
                    // claimed object does nothing, I4). Freed by its count,
                    // not found by the collector: `unclaim` marks it a
                    // zombie, dropped like any (by `give` and `finish`),
                    // never saved, as CPython never keeps an object its
                    // count freed.
                    unclaim(obj);
                    t.state[i] = State::Reachable;
                    continue;
                }
                let _ = o
                    .counts
                    .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |c| {
                        Some((c + STRONG_ONE) & !CLAIMED)
                    });
                saved.push(crate::sync::raw::ObjectRef { obj });
                t.state[i] = State::Reachable;
            }
        }
        // Saved objects count as collected (CPython's count); the report's
        // objects (if any) are counted as uncollectable already.
        self.outcome.collected += self.outcome.unreachable;
        drop(saved);
        self.back.give(self.heap, t, |_| true, &mut self.zombies);
    }

    /// Step 6: drops G' and ends its claims, group by group.
    fn destroy_all(&mut self) {
        let t = &mut self.t;
        let panic_payload = &mut self.panic;
        let mut layouts = heap::LayoutCache::new();
        if let GarbageList::Whole(all) = &self.garbage {
            // Finalizers may have moved handles anywhere inside G': one group.
            destroy(t, all, &mut layouts, panic_payload);
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

/// After an intact re-verification: only the marks go (a drop to zero of a
/// claimed object does nothing whether or not it is marked, I4: step 6
/// reads the counts); returns how many objects of G' still have a strong
/// count. `snap` is the verification's, in `garbage`'s order.
fn unmark_and_count(t: &Tables, garbage: &[Ix], snap: &[u64]) -> usize {
    for (&c, &seen) in garbage.iter().zip(snap) {
        if seen != NOT_MARKED {
            // SAFETY: in the tables and not freed (I1, I2, I4; see `owned`).
            unsafe { owned(t.objs[c]) }
                .counts
                .fetch_and(!MARKED, Ordering::AcqRel);
        }
    }
    garbage
        .iter()
        .filter(|&&c| {
            t.state[c] == State::Garbage
                // SAFETY: in the tables and not freed (I1, I2, I4; see `owned`).
                && unsafe { owned(t.objs[c]) }
                    .counts
                    .load(Ordering::Relaxed)
                    & STRONG_MASK
                    != 0
        })
        .count()
}

/// Step 6's first part, for claims that did not set `DEAD` already: sets
/// it on all of G' (wherever `garbage` says it is listed) and
/// clears `IN_COLLECTOR`: a handle a `Drop` moves out may outlive this
/// collection, and a later one must not take the stale index in `prev`
/// for its own.
pub(super) fn mark_dead(t: &Tables, garbage: &GarbageList) {
    let dead = |c: Ix| {
        if t.state[c] == State::Garbage {
            // Exclusive: claimed garbage (I4).
            // SAFETY: in the tables and not freed (I1, I2, I4; see `owned`).
            unsafe { owned(t.objs[c]) }.update_flags_exclusively(DEAD, LINKED | IN_COLLECTOR);
        }
    };
    if let GarbageList::Whole(all) = garbage {
        all.iter().for_each(|&c| dead(c));
    } else {
        t.chunk_garbage
            .iter()
            .chain(&t.global_garbage)
            .for_each(|&c| dead(c));
    }
}

/// Step 6 for the G' objects at table indices `list`: drops their values,
/// ends their claims and frees the blocks nobody holds any more.
pub(super) fn destroy(
    t: &mut Tables,
    list: &[Ix],
    layouts: &mut heap::LayoutCache,
    panic_payload: &mut Option<Box<dyn std::any::Any + Send>>,
) {
    // Borrowed apart: the drops are opaque calls, after which anything
    // reached through `t` would be read again.
    let Tables {
        objs, state, free, ..
    } = t;
    let objs: &[NonNull<SyncHeader>] = objs;
    drop_values(objs, state, list, panic_payload);
    free.clear();
    end_claims(objs, state, list, free, layouts);
    // SAFETY: blocks whose last count of any kind was released above, each
    // once.
    unsafe { heap::free_blocks(free) };
    free.clear();
}

/// [`destroy`]'s first half: runs the death hooks and drops the value of
/// each object of `list` still `Garbage` (then `Gone`); a panicking `Drop`
/// or hook does not keep the others from being dropped.
fn drop_values(
    objs: &[NonNull<SyncHeader>],
    state: &mut [State],
    list: &[Ix],
    panic_payload: &mut Option<Box<dyn std::any::Any + Send>>,
) {
    let mut k = 0;
    let mut hook_panic = None;
    while k < list.len() {
        let r = catch(|| {
            while k < list.len() {
                if let Some(&ahead) = list.get(k + PREFETCH) {
                    prims::prefetch(objs[ahead].as_ptr());
                }
                let i = list[k];
                k += 1;
                if state[i] == State::Garbage {
                    state[i] = State::Gone;
                    let obj = objs[i];
                    debug_assert_ne!(
                        // SAFETY: in the tables and not freed (see `owned`).
                        unsafe { owned(obj) }.counts.load(Ordering::Relaxed) & CLAIMED,
                        0,
                        "I4: garbage dropped without its claim"
                    );
                    // SAFETY: in the tables and not freed (see `owned`).
                    if unsafe { owned(obj) }.has(HOOKED) {
                        // Death hooks run before the value drops (see
                        // `hooks`), without the collector lock.
                        let hooks = crate::hooks::sync_take(obj.as_ptr().addr());
                        if let Some(p) = crate::hooks::run_all(hooks) {
                            keep_first(&mut hook_panic, Some(p));
                        }
                    }
                    // SAFETY: verified garbage, claimed (I4): the collector
                    // owns the value; it is dropped once (state State::Gone).
                    unsafe { (obj.as_ref().vtable.drop_value)(obj) };
                }
            }
        });
        if let Some(p) = r {
            keep_first(panic_payload, Some(p));
        }
    }
    if let Some(p) = hook_panic {
        keep_first(panic_payload, Some(p));
    }
}

/// [`destroy`]'s second half: ends the claim of each object of `list`
/// whose value was dropped (then `Ended`), and puts the blocks nobody holds
/// any more in `free`.
fn end_claims(
    objs: &[NonNull<SyncHeader>],
    state: &mut [State],
    list: &[Ix],
    free: &mut Vec<(NonNull<u8>, core::alloc::Layout)>,
    layouts: &mut heap::LayoutCache,
) {
    for &c in list {
        let i = c;
        if state[i] != State::Gone {
            continue;
        }
        // Done with, whatever follows: the claim ends once.
        state[i] = State::Ended;
        let obj = objs[i];
        // The claim ends. A count left above zero means a `Drop` moved a
        // handle to this object out of the garbage (or a value of a later
        // group still holds one): that handle now owns the header (the value
        // is `DEAD`), and its drop releases it.
        // SAFETY: in the tables and not freed (I1, I2, I4; see `owned`).
        let counts = &unsafe { owned(obj) }.counts;
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
}

/// Step 5's finalizers, without the collector lock (I6): runs, once per
/// object, those of G' (`garbage`) that have not run yet.
pub(super) fn finalize_all(
    t: &Tables,
    garbage: &[Ix],
    panic_payload: &mut Option<Box<dyn std::any::Any + Send>>,
) {
    let mut k = 0;
    while k < garbage.len() {
        let r = catch(|| {
            while k < garbage.len() {
                let i = garbage[k];
                k += 1;
                let obj = t.objs[i];
                // SAFETY: in the tables and not freed (I1, I2, I4; see `owned`).
                let o = unsafe { owned(obj) };
                if t.state[i] == State::Garbage
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
            keep_first(panic_payload, Some(p));
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
            keep_first(panic_payload, Some(p));
        }
    }
}
