//! Step 7: giving objects back to their shards.

use super::*;

/// Step 7, in parts: gives objects back to their shards, in generation
/// `into`, and collects the zombies (for `finish` to
/// drop, after the collector lock is released).
#[derive(Clone, Copy)]
pub(super) struct GiveBack {
    pub(super) generation: usize,
    /// The generation the survivors go to.
    pub(super) into: usize,
    /// The schedule chose this collection.
    pub(super) automatic: bool,
    pub(super) survivors: usize,
}

/// Before a collection gives its survivors to a generation past the next
/// one (a young collection promoting straight into the oldest generation,
/// `schedule::promote_to`), moves the generations it skips (generation 1)
/// to the end of `target` first.
///
/// Their objects are older than the survivors, and a shard's lists, oldest
/// generation first, must stay in allocation order: the take reads them as
/// one stream so that objects allocated together (the halves of cycles that
/// threads build at once) share a chunk of the first pass. Left behind,
/// generation 1 would sit after objects younger than its own in that
/// stream, the streams of two shards would drift apart by the difference of
/// their generation 1's lengths, and cycles across them would leave their
/// chunks for the global verification. Each object moves once (then it is
/// in the oldest generation), so the relabelling costs at most one more
/// write per promoted object.
fn skip_middle(shard: &mut Shard, target: usize) {
    for g in 1..target {
        move_generation(shard, g, target);
    }
}

/// Moves the whole of generation `g` of `shard` to the end of generation
/// `target`, relabelling each object.
fn move_generation(shard: &mut Shard, g: usize, target: usize) {
    let mut moved = core::mem::replace(&mut shard.lists[g], List::new());
    let relabel = ((g ^ target) as u32) << GEN_SHIFT;
    // SAFETY: we hold the shard lock, and listed objects are owned by no
    // collection (`IN_COLLECTOR` clear: I1 (a)); their generation bits are
    // written under this lock only (a `fetch_xor`, since other bits of
    // `flags` may change without it).
    unsafe {
        moved.for_each(|o| {
            let f = o.as_ref().flags.fetch_xor(relabel, Ordering::Relaxed);
            debug_assert_eq!((f & GEN_MASK) >> GEN_SHIFT, g as u32);
        });
        shard.lists[target].append(&mut moved);
    }
}

/// A young collection that examines nothing (`schedule::examines`), on
/// one shard: generation 0 goes to generation `into` as it is, after the
/// generations it skips (older objects first, as `skip_middle` keeps the
/// stream in allocation order). The caller holds the collector lock (no
/// collection owns a listed object) and the shard's lock.
pub(super) fn promote_unexamined(shard: &mut Shard, into: usize) {
    for g in (0..into).rev() {
        move_generation(shard, g, into);
    }
}

impl GiveBack {
    /// Gives back every object whose state passes `which` (and is not
    /// destroyed or given back already); the zombies among them go to
    /// `zombies`.
    ///
    /// One pass in table order, which is shard order (`take` walks the
    /// shards in turn), giving a shard's lock back after every `GIVE_CHUNK`
    /// objects. That bounds no wait: the collector takes the lock again at
    /// once for the next chunk, and a thread waiting on it (spinning, then
    /// napping: `prims::SpinLock`) seldom gets in between, so a thread
    /// allocating on that shard may wait for the whole shard. It is
    /// progress, not a deadlock: the collector holds the lock for a bounded
    /// number of objects and never waits for that thread.
    pub(super) fn give(
        &mut self,
        h: &SyncHeap,
        t: &mut Tables,
        which: impl Fn(State) -> bool,
        zombies: &mut Vec<NonNull<SyncHeader>>,
    ) {
        const GIVE_CHUNK: usize = 4096;
        debug_assert!(
            prims::try_lock(&h.collector).is_none(),
            "I6: objects given back without the collector lock"
        );
        let target = self.into;
        let mut i = 0;
        let n = t.objs.len();
        while i < n {
            // The next object to give back starts a run of its shard.
            let st = t.state[i];
            if st == State::Gone || st == State::Given || !which(st) {
                i += 1;
                continue;
            }
            // SAFETY: in the tables and not freed (I1, I2, I4; see `owned`).
            let s = unsafe { owned(t.objs[i]) }.shard();
            let mut shard = prims::lock(&h.shards[s].0);
            if self.generation + 1 < target {
                skip_middle(&mut shard, target);
            }
            let mut keep = List::new();
            let mut taken = 0;
            while i < n && taken < GIVE_CHUNK {
                let st = t.state[i];
                if st == State::Gone || st == State::Given || !which(st) {
                    i += 1;
                    continue;
                }
                if let Some(&ahead) = t.objs.get(i + PREFETCH) {
                    prims::prefetch(ahead.as_ptr());
                }
                let obj = t.objs[i];
                // SAFETY: in the tables and not freed (I1, I2, I4; see `owned`).
                let o = unsafe { owned(obj) };
                if o.shard() != s {
                    break;
                }
                t.state[i] = State::Given;
                i += 1;
                taken += 1;
                // Exclusive flag updates: every other writer of these flags
                // (`ZOMBIE`) holds the shard lock too, which we hold.
                debug_assert_eq!(
                    o.counts.load(Ordering::Relaxed) & (MARKED | CLAIMED),
                    0,
                    "I5, I4: given back with its mark or its claim"
                );
                let f = o.flags.load(Ordering::Acquire);
                debug_assert_ne!(f & IN_COLLECTOR, 0, "I1: given back twice");
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

    pub(super) fn finish(self, state: &mut CollectorState) {
        if self.generation == 2 {
            state.live_after_full = self.survivors;
        }
    }
}
