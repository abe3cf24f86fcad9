//! Step 1: taking the generations out of the shards into the table.

use super::*;

/// Step 1: takes generations `0..=generation` of every shard. The first
/// part of step 2 (copying each strong count into `gc_refs`) is done here,
/// while the header is in the cache anyway.
///
/// The table is laid out before anything is taken ([`TableLayout`]), from the
/// lengths of the lists read under each shard's lock: each shard's lists
/// oldest generation first (objects are given back in table order, so each
/// shard's lists stay in allocation order), and the shards in turns (see
/// [`TableLayout::plan`]). Each object is then
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
pub(super) fn take(h: &SyncHeap, t: &mut Tables, generation: usize) {
    let gens = generation + 1;
    let mut lens = [[0usize; 3]; SHARDS];
    for (slot, lens) in h.shards.iter().zip(&mut lens) {
        let shard = prims::lock(&slot.0);
        for (len, list) in lens.iter_mut().zip(&shard.lists[..gens]) {
            *len = list.len;
        }
    }
    let layout = TableLayout::plan(&lens, gens, &mut t.run_starts);
    t.heap_bits = h.id << HEAP_SHIFT;
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
                    plan.place(run_starts, k)
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
    t.state.resize(n, State::Unknown);
    t.exclusive_seen.clear();
}

/// Takes one object: sets `IN_COLLECTOR` and writes the object and its
/// `gc_refs` start to place `i` of the table, and `i` to its `prev` link.
///
/// # Safety
/// The caller holds the object's shard lock and took it off its list
/// (I1 (a)).
#[inline(always)]
pub(super) unsafe fn take_one(
    o: NonNull<SyncHeader>,
    i: usize,
    objs: &mut [NonNull<SyncHeader>],
    refs: &mut [i64],
) {
    // SAFETY: in the tables and not freed (I1, I2, I4; see `owned`).
    let h = unsafe { owned(o) };
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
/// `len` members are members `offset..offset + len` of the shard's stream
/// (its lists taken, oldest first), which is laid out in runs of
/// `2^turn_shift` places (the last run shorter) starting at
/// `Tables::run_starts[first_run..]`.
#[derive(Clone, Copy, Default)]
pub(super) struct ListPlan {
    pub(super) len: usize,
    pub(super) offset: usize,
    pub(super) turn_shift: u32,
    pub(super) first_run: usize,
}

impl ListPlan {
    pub(super) fn turn_mask(self) -> usize {
        (1usize << self.turn_shift) - 1
    }

    /// The place of member `k < len` of the list.
    #[inline(always)]
    pub(super) fn place(self, run_starts: &[usize], k: usize) -> usize {
        let j = self.offset + k;
        run_starts[self.first_run + (j >> self.turn_shift)] + (j & self.turn_mask())
    }
}

/// The layout of the table, planned from the lengths of the lists.
pub(super) struct TableLayout {
    pub(super) lists: [[ListPlan; 3]; SHARDS],
    /// Places planned in all.
    pub(super) planned: usize,
}

impl TableLayout {
    /// Plans the table for lists of lengths `lens[shard][generation]`
    /// (generations `0..gens`). Each shard's lists, oldest generation
    /// first, make one stream (in allocation order, roughly: survivors are
    /// given back in table order). The streams follow each other in shard
    /// order, unless two of them are large ([`worth_interleaving`]): then
    /// they go in turns of `CHUNK / streams` places (rounded down to a
    /// power of two, at least 16), so that objects that threads allocated
    /// at about the same time (a structure built by several threads at
    /// once, whose halves live in different shards) fall into the same
    /// chunk of the first pass instead of chunks far apart: the first pass
    /// can then verify their cycles without a second trace. The streams
    /// are interleaved whole, not generation by generation: the threads'
    /// objects are split between the generations where each thread was
    /// when a collection came, which is seldom the same place, and a
    /// generation-by-generation layout would put the two halves of what
    /// the threads made together in different generations' ranges. Writes
    /// the runs' first places to `run_starts`.
    pub(super) fn plan(
        lens: &[[usize; 3]; SHARDS],
        gens: usize,
        run_starts: &mut Vec<usize>,
    ) -> TableLayout {
        run_starts.clear();
        let mut layout = TableLayout {
            lists: [[ListPlan::default(); 3]; SHARDS],
            planned: 0,
        };
        let stream_len = |l: &[usize; 3]| l[..gens].iter().sum::<usize>();
        let streams = lens.iter().filter(|l| stream_len(l) > 0).count();
        let interleave = worth_interleaving(lens.iter().map(stream_len));
        let turn_shift = if interleave {
            (CHUNK / streams).max(16).ilog2()
        } else {
            usize::BITS - 1
        };
        let turn = 1usize << turn_shift;
        // Each stream's runs are contiguous in `run_starts`.
        let mut rounds = 0;
        for (plan, l) in layout.lists.iter_mut().zip(lens) {
            let first_run = run_starts.len();
            let mut offset = 0;
            for g in (0..gens).rev() {
                plan[g] = ListPlan {
                    len: l[g],
                    offset,
                    turn_shift,
                    first_run,
                };
                offset += l[g];
            }
            let runs = offset.div_ceil(turn);
            run_starts.resize(first_run + runs, 0);
            rounds = rounds.max(runs);
        }
        // One run of each stream per round.
        let mut pos = 0;
        for r in 0..rounds {
            for (plan, l) in layout.lists.iter().zip(lens) {
                let len = stream_len(l);
                if r < len.div_ceil(turn) {
                    run_starts[plan[0].first_run + r] = pos;
                    pos += (len - (r << turn_shift)).min(turn);
                }
            }
        }
        layout.planned = pos;
        layout
    }
}

/// Whether the shards' streams (their lengths) are worth interleaving in
/// the table (see [`TableLayout::plan`]): when at least two of them have
/// more than an eighth of a chunk. Otherwise all but one are
/// small (typically a thread that allocates a little beside the one that
/// built the heap), and their place in the table hardly matters.
pub(super) fn worth_interleaving(lens: impl Iterator<Item = usize>) -> bool {
    lens.filter(|&len| len > CHUNK / 8).nth(1).is_some()
}

/// Fills the `holes` (places in `items` holding `hole`) with the last
/// items that are not holes, and shortens `items` (and `refs`, kept in
/// step) to what is left; `moved(item, place)` is called for every item
/// moved. Sorts `holes`.
pub(super) fn fill_holes<T: Copy + PartialEq>(
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every planned place is used once, and each shard's places come in
    /// its stream's order (its lists oldest first, each in its order).
    pub(super) fn check_plan(
        lens: &[[usize; 3]; SHARDS],
        gens: usize,
    ) -> (TableLayout, Vec<usize>) {
        let mut run_starts = Vec::new();
        let layout = TableLayout::plan(lens, gens, &mut run_starts);
        let mut seen = vec![false; layout.planned];
        for (plans, l) in layout.lists.iter().zip(lens) {
            let mut last = None;
            for g in (0..gens).rev() {
                let plan = plans[g];
                assert_eq!(plan.len, l[g]);
                for k in 0..plan.len {
                    let i = plan.place(&run_starts, k);
                    assert!(!seen[i], "place {i} planned twice");
                    seen[i] = true;
                    assert!(last < Some(i), "a shard's stream out of order");
                    last = Some(i);
                }
            }
        }
        assert!(seen.iter().all(|&x| x), "a place left unplanned");
        (layout, run_starts)
    }

    #[test]
    pub(super) fn plans_lay_out_the_lists() {
        let mut lens = [[0; 3]; SHARDS];
        check_plan(&lens, 3);
        // One large stream and a small one: one after the other (under
        // Miri every stream of a 2-object chunk counts as large).
        lens[0][0] = 5000;
        lens[3][0] = 7;
        lens[3][2] = 3;
        let (layout, runs) = check_plan(&lens, 3);
        let first = |s: usize, g: usize| layout.lists[s][g].place(&runs, 0);
        if CHUNK / 8 >= 10 {
            assert_eq!((first(0, 0), first(3, 2), first(3, 0)), (0, 5000, 5003));
        }
        // Two large streams split differently between the generations: in
        // turns, each stream whole (a shard's younger list goes on where its
        // older one ended), so members at the same place of the two streams
        // are close in the table whatever their generations.
        let mut split = [[0; 3]; SHARDS];
        split[1] = [1000, 0, 2000];
        split[2] = [2500, 0, 500];
        let (layout, runs) = check_plan(&split, 3);
        let at = |s: usize, g: usize, k: usize| layout.lists[s][g].place(&runs, k);
        let turn = 1 << layout.lists[1][0].turn_shift;
        if CHUNK >= 32 {
            // Member 2100 of each stream: in generation 0 of both shards
            // (after 2000 and 500 older ones).
            let (a, b) = (at(1, 0, 100), at(2, 0, 1600));
            assert!(a.abs_diff(b) <= turn, "{a} and {b} a turn apart at most");
        }
        // Two large lists of one generation: in turns.
        lens[5][0] = 3000;
        let (layout, runs) = check_plan(&lens, 1);
        let turn = 1 << layout.lists[0][0].turn_shift;
        assert!((16..3000).contains(&turn));
        let first = |s: usize, r: usize| {
            let plan = layout.lists[s][0];
            plan.place(&runs, r << plan.turn_shift)
        };
        assert_eq!((first(0, 0), first(3, 0), first(5, 0)), (0, turn, turn + 7));
        assert_eq!(first(0, 1), 2 * turn + 7);
        check_plan(&lens, 2);
    }

    #[test]
    pub(super) fn holes_are_filled_from_the_end() {
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
