//! Steps 5 and 6: finalizers and their re-verification, `SAVEALL`,
//! dropping G' and freeing it, and the zombies' drops.

use super::*;

impl Batch {
    /// Step 5 after the finalizers ran, under the collector lock again (the
    /// re-verification traces values and may give G' back: I6): verifies G'
    /// again; if a finalizer resurrected any of it, withdraws the claims and
    /// gives it all back.
    pub(super) fn after_finalizers(&mut self, h: &SyncHeap, state: &mut CollectorState) {
        let t = &mut self.t;
        let scratch = &state.scratch;
        // Re-verify exactly G' (the rest is given back already).
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
        if let Some(p) = r {
            keep_first(&mut self.panic, Some(p));
        }
        if !intact {
            // Resurrected (or the check could not finish): nothing is freed
            // now, the claims are withdrawn. The objects live on, so do
            // their weak handles (as when a claim is withdrawn in step 4).
            for &c in &t.cands {
                let i = c;
                if matches!(
                    t.state[i],
                    State::Candidate | State::Failed | State::Garbage
                ) {
                    rule::withdraw_claim(t.objs[i]);
                    t.state[i] = State::Reachable;
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
                // SAFETY: in the tables and not freed (I1, I2, I4; see `owned`).
                unsafe { owned(t.objs[c]) }
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
                t.state[c] == State::Garbage
                    // SAFETY: in the tables and not freed (I1, I2, I4; see `owned`).
                    && unsafe { owned(t.objs[c]) }
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
    pub(super) fn save_all(&mut self, h: &SyncHeap) {
        let t = &mut self.t;
        let mut saved = prims::lock(&h.garbage);
        for &c in &t.cands {
            let i = c;
            if t.state[i] == State::Garbage {
                let obj = t.objs[i];
                // SAFETY: in the tables and not freed (I1, I2, I4; see `owned`).
                let o = unsafe { owned(obj) };
                // Exclusive: claimed. A zombie is one no longer: the saved
                // reference keeps it.
                o.update_flags_exclusively(0, ZOMBIE);
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
        self.back.give(h, t, |_| true, &mut self.zombies);
        self.rest = Rest::Nothing;
    }

    /// Step 6: drops G' and ends its claims, group by group.
    pub(super) fn destroy_all(&mut self) {
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
pub(super) fn mark_dead(t: &Tables, whole: bool) {
    let dead = |c: Ix| {
        if t.state[c] == State::Garbage {
            // Exclusive: claimed garbage (I4).
            // SAFETY: in the tables and not freed (I1, I2, I4; see `owned`).
            unsafe { owned(t.objs[c]) }.update_flags_exclusively(DEAD, LINKED | IN_COLLECTOR);
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
    free.clear();
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
    // SAFETY: blocks whose last count of any kind was released above, each
    // once.
    unsafe { heap::free_blocks(free) };
    free.clear();
}

pub(super) fn finalize_all(
    t: &mut Tables,
    panic_payload: &mut Option<Box<dyn std::any::Any + Send>>,
) {
    let mut k = 0;
    while k < t.cands.len() {
        let r = catch(|| {
            while k < t.cands.len() {
                let i = t.cands[k];
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
