//! When automatic collections run: one rule for both heaps, as a pure
//! function of a few counters that each heap keeps ([`Counters`]).
//!
//! The rule keeps CPython's three thresholds and their meaning for the
//! young generations, and changes two things:
//!
//! 1. **The young threshold backs off while young collections find
//!    nothing.** A collection of generation 0 or 1 that finds no
//!    unreachable object doubles the effective threshold of generation 0
//!    (up to [`MAX_BACKOFF`] doublings, `threshold0 << 4`); one that finds
//!    any garbage brings it back to `threshold0`. A middle or full
//!    collection whose garbage is at least an eighth of what it scanned
//!    ([`HOLD_FRACTION`]) also *holds* the young threshold at
//!    `threshold0` until a collection of that generation finds less:
//!    cycles that die only after their objects left generation 0 (large
//!    structures built, then dropped) are invisible to young collections,
//!    and backing off on their silence would make the older generations'
//!    collections, which find that garbage, 16 times rarer too (rust-cc's
//!    parent-pointer trees: peak RSS 1.5x). A program that makes no
//!    cycles pays for a young collection every ~11k allocations instead of
//!    every 700; one that makes them keeps CPython's pace, and at worst 16
//!    times its young garbage waits before being found. While fully backed
//!    off, a young collection promotes its survivors straight into the
//!    oldest generation ([`promote_to`]): a growing heap whose young
//!    collections find nothing is not scanned again by middle collections
//!    that would find nothing either (its garbage waits for rule 2). Only
//!    automatic collections feed [`after_collection`]: an explicit one,
//!    typically made right after the program dropped its cycles, says
//!    nothing about what the automatic ones find.
//!
//!    While fully backed off, only one young collection in
//!    `PASSES + 1` examines generation 0 ([`examines`]), and so does the
//!    one before each middle collection; the others *pass*: they promote
//!    generation 0 into the middle generation unexamined, trace nothing,
//!    find nothing, and cost one list splice (a relabel per object on the
//!    shared heap). A program that builds a large structure without making
//!    cycles otherwise pays a young scan of every object it builds (about
//!    half the cost of building it), for collections that keep finding
//!    nothing. The examined ones still watch for cycles, and decide where
//!    the passed batches go ([`survivors_into`]): finding nothing, they
//!    take them along into the oldest generation with their own
//!    survivors; finding garbage, they leave them in the middle generation
//!    with their survivors, the young threshold comes back, every young
//!    collection examines again, and the next middle collection examines
//!    the passed batches (their garbage waits for at most `threshold1 + 1`
//!    young collections, never for a full one).
//! 2. **A full collection waits for the heap to grow.** CPython holds one
//!    off until the objects *promoted* into the oldest generation since the
//!    last full collection exceed 25% of those that survived it, and never
//!    subtracts the promoted objects that die by reference count afterwards:
//!    short-lived objects that happened to be alive at a young collection
//!    keep triggering full scans of a large, unchanging old generation.
//!    Here a full collection needs the tracked objects alive *now* (objects
//!    freed by reference count do not count) to exceed those alive after
//!    the last full collection by [`FULL_GROWTH_PERCENT`] (25%, CPython's
//!    ratio, on net growth instead of promotions). A full collection scans
//!    the live heap, and the next one waits for a quarter of it to be
//!    allocated *and still alive*, so their total work stays within a
//!    small constant of the program's own; an old generation that is not
//!    growing is not scanned again, however much short-lived churn passes
//!    through the young ones.

use crate::heap::GENERATIONS;

/// Doublings of the young threshold while young collections find nothing.
pub(crate) const MAX_BACKOFF: u32 = 4;

/// The bits of the backoff state that count the doublings.
const DOUBLINGS: u32 = 0xf;

/// While fully backed off, the young collections in a row that promote
/// generation 0 unexamined before one examines it ([`examines`]).
pub(crate) const PASSES: u32 = 3;

/// The bits of the backoff state that count those passes since the last
/// collection that examined anything.
const PASS_SHIFT: u32 = 4;
const PASS_MASK: u32 = 0xf << PASS_SHIFT;
static_assertions::const_assert!(PASSES < 1 << (8 - PASS_SHIFT));
static_assertions::const_assert!(MAX_BACKOFF <= DOUBLINGS);

/// Bits of the backoff state above the doublings: the young threshold is
/// held at `threshold0` while the last middle ([`HELD_MIDDLE`]) or full
/// ([`HELD_FULL`]) collection found a large share of garbage.
pub(crate) const HELD_MIDDLE: u32 = 1 << 8;
/// See [`HELD_MIDDLE`].
pub(crate) const HELD_FULL: u32 = 1 << 9;
const HELD: u32 = HELD_MIDDLE | HELD_FULL;

/// A middle or full collection holds the young threshold when its garbage
/// is at least `1 / HOLD_FRACTION` of the objects it scanned.
pub(crate) const HOLD_FRACTION: usize = 8;

/// Net growth of the tracked objects since the last full collection, in
/// percent of those that survived it, before the next one may run.
pub(crate) const FULL_GROWTH_PERCENT: usize = 25;

/// What the schedule looks at; each heap keeps these up to date.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    /// `get_count()`: for generation 0 the tracked allocations (minus
    /// deallocations, on the thread-local heap) since its last collection;
    /// for 1 and 2, collections of the next younger generation since their
    /// own last collection.
    pub(crate) counts: [usize; GENERATIONS],
    /// `get_threshold()`, as the user set them.
    pub(crate) thresholds: [usize; GENERATIONS],
    /// Doublings of threshold 0 in force, and the hold bits (see
    /// [`after_collection`]).
    pub(crate) backoff: u32,
    /// Tracked objects alive now.
    pub(crate) live: usize,
    /// Tracked objects that survived the last full collection.
    pub(crate) live_after_full: usize,
}

/// The effective threshold of generation 0: `threshold0` doubled `backoff`
/// times; 0 (automatic collection off) stays 0.
#[inline]
pub(crate) fn young_threshold(threshold0: usize, backoff: u32) -> usize {
    threshold0.saturating_mul(1 << (backoff & DOUBLINGS).min(MAX_BACKOFF))
}

/// Whether the young threshold is fully backed off and not held: the
/// state in which young collections promote into the oldest generation.
#[inline]
fn fully_backed_off(backoff: u32) -> bool {
    backoff & !PASS_MASK == MAX_BACKOFF
}

/// Whether the live tracked objects have grown enough since the last full
/// collection for another one.
fn heap_grew(c: &Counters) -> bool {
    let grown = c.live.saturating_sub(c.live_after_full);
    // `grown * 100 > base * percent`, without overflow.
    (grown as u128) * 100 > (c.live_after_full as u128) * FULL_GROWTH_PERCENT as u128
}

/// The generation to collect now, or `None`.
///
/// Nothing unless generation 0's count passed its effective threshold
/// ([`young_threshold`]; a `threshold0` of 0 turns automatic collection
/// off). Then the oldest generation whose count passed its threshold is
/// collected, as in CPython, except that the oldest one also needs the
/// heap to have grown ([`FULL_GROWTH_PERCENT`]); otherwise the next one.
pub(crate) fn decide(c: &Counters) -> Option<usize> {
    let t0 = young_threshold(c.thresholds[0], c.backoff);
    if c.thresholds[0] == 0 || c.counts[0] <= t0 {
        return None;
    }
    for g in (1..GENERATIONS).rev() {
        if c.counts[g] > c.thresholds[g] && (g < GENERATIONS - 1 || heap_grew(c)) {
            return Some(g);
        }
    }
    Some(0)
}

/// Where the survivors of an automatic collection of `generation` go: the
/// next generation, except that a young collection made while the young
/// threshold is fully backed off (and not held) promotes straight into the
/// oldest one. The sync heap then moves generation 1 there too, ahead of
/// the survivors (its objects are older; `sync::collect::give_back`).
pub(crate) fn promote_to(generation: usize, backoff: u32) -> usize {
    if generation == 0 && fully_backed_off(backoff) {
        GENERATIONS - 1
    } else {
        (generation + 1).min(GENERATIONS - 1)
    }
}

/// Where a pass puts generation 0: the middle generation, where the next
/// examined young collection or middle collection decides its fate
/// ([`survivors_into`]).
pub(crate) const PASS_INTO: usize = 1;

/// Whether the backoff state lets a young collection pass (fully backed
/// off, fewer than `PASSES` passes since the last examined collection).
#[inline]
fn pass_due(backoff: u32) -> bool {
    fully_backed_off(backoff) && (backoff & PASS_MASK) >> PASS_SHIFT < PASSES
}

/// Whether an automatic collection of generation `generation`, decided on
/// `c`, examines its objects (trial deletion) or passes: promotes
/// generation 0 into [`PASS_INTO`] unexamined. Only a young collection made
/// while fully backed off passes, `PASSES` times in a row at most, and
/// never the one after which a middle collection is due (`count[1]`
/// reaches `threshold1`): that one examines, so the middle collection
/// finds no passed batch left to scan.
pub(crate) fn examines(c: &Counters, generation: usize) -> bool {
    generation > 0 || !pass_due(c.backoff) || c.counts[1] >= c.thresholds[1]
}

/// The backoff state after a pass: one more. If the state no longer lets
/// a young collection pass (on the shared heap, another collection's
/// `after_collection` may have changed it since the pass was decided), it
/// stays as it is.
pub(crate) fn after_pass(backoff: u32) -> u32 {
    if pass_due(backoff) {
        backoff + (1 << PASS_SHIFT)
    } else {
        backoff
    }
}

/// Where the survivors of an automatic collection of `generation` go, now
/// that it found `unreachable` objects, when the schedule planned
/// `planned` ([`promote_to`]); and whether the middle generation (what
/// passes left there) goes along into the oldest generation first.
///
/// A young collection planned into the oldest generation (fully backed
/// off) takes the middle one along if it found nothing; if it found
/// garbage, the schedule is about to come back, and the survivors join the
/// middle generation instead, where the next middle collection examines
/// them with the batches passed before. Any other collection goes where
/// it was planned.
pub(crate) fn survivors_into(
    planned: usize,
    generation: usize,
    unreachable: usize,
) -> (usize, bool) {
    if generation == 0 && planned == GENERATIONS - 1 {
        if unreachable == 0 {
            (planned, true)
        } else {
            (PASS_INTO, false)
        }
    } else {
        (planned, false)
    }
}

/// The backoff state after a collection of `generation` that scanned
/// `scanned` objects and found `unreachable` of them.
///
/// Any collection that finds garbage brings the young threshold back to
/// `threshold0`. A middle or full collection sets its hold bit when its
/// garbage is at least `1 / HOLD_FRACTION` of what it scanned and clears
/// it otherwise (a full one clears both: it scanned generation 1 too). A
/// young or middle collection that finds nothing doubles the young
/// threshold (up to [`MAX_BACKOFF`] times) unless a hold bit is set; a
/// full one that finds nothing leaves the doublings. The count of passes
/// starts again (see [`examines`]).
pub(crate) fn after_collection(
    backoff: u32,
    generation: usize,
    unreachable: usize,
    scanned: usize,
) -> u32 {
    let mut held = backoff & HELD;
    let mut doublings = (backoff & DOUBLINGS).min(MAX_BACKOFF);
    if generation > 0 {
        let bit = if generation == 1 { HELD_MIDDLE } else { HELD };
        held &= !bit;
        let share = unreachable.saturating_mul(HOLD_FRACTION);
        if unreachable > 0 && share >= scanned {
            held |= if generation == 1 {
                HELD_MIDDLE
            } else {
                HELD_FULL
            };
        }
    }
    if unreachable > 0 {
        doublings = 0;
    } else if generation < GENERATIONS - 1 && held == 0 {
        doublings = (doublings + 1).min(MAX_BACKOFF);
    }
    doublings | held
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters(counts: [usize; 3], live: usize, live_after_full: usize) -> Counters {
        Counters {
            counts,
            thresholds: [700, 10, 10],
            backoff: 0,
            live,
            live_after_full,
        }
    }

    #[test]
    fn nothing_runs_until_the_young_count_passes_threshold0() {
        assert_eq!(decide(&counters([700, 0, 0], 0, 0)), None);
        assert_eq!(decide(&counters([701, 0, 0], 0, 0)), Some(0));
    }

    #[test]
    fn threshold0_of_zero_turns_automatic_collection_off() {
        let mut c = counters([usize::MAX, 50, 50], 1 << 20, 0);
        c.thresholds[0] = 0;
        assert_eq!(decide(&c), None);
    }

    #[test]
    fn middle_generation_runs_after_threshold1_young_collections() {
        assert_eq!(decide(&counters([701, 10, 0], 0, 0)), Some(0));
        assert_eq!(decide(&counters([701, 11, 0], 0, 0)), Some(1));
    }

    #[test]
    fn full_collection_needs_the_live_heap_to_grow_by_a_quarter() {
        // The count of generation 2 passed its threshold, but the heap has
        // not grown since the last full collection: the middle one instead.
        assert_eq!(decide(&counters([701, 11, 11], 1000, 1000)), Some(1));
        assert_eq!(decide(&counters([701, 11, 11], 1250, 1000)), Some(1));
        assert_eq!(decide(&counters([701, 11, 11], 1251, 1000)), Some(2));
        // A heap that shrank (objects freed by reference count) does not
        // count as growth, however many objects were promoted meanwhile.
        assert_eq!(decide(&counters([701, 11, 500], 10, 1000)), Some(1));
    }

    #[test]
    fn full_collection_also_needs_threshold2_middle_collections() {
        assert_eq!(decide(&counters([701, 11, 10], 1 << 20, 1)), Some(1));
        assert_eq!(decide(&counters([701, 11, 11], 1 << 20, 1)), Some(2));
    }

    #[test]
    fn young_threshold_doubles_while_young_collections_find_nothing() {
        let mut b = 0;
        for expected in [1, 2, 3, 4, 4, 4] {
            b = after_collection(b, 0, 0, 700);
            assert_eq!(b, expected);
        }
        assert_eq!(young_threshold(700, b), 700 * 16);
        let mut c = counters([700 * 16, 0, 0], 0, 0);
        c.backoff = b;
        assert_eq!(decide(&c), None);
        c.counts[0] += 1;
        assert_eq!(decide(&c), Some(0));
        // A middle collection that finds nothing backs off too.
        assert_eq!(after_collection(1, 1, 0, 7000), 2);
    }

    #[test]
    fn finding_garbage_restores_the_young_threshold() {
        assert_eq!(after_collection(MAX_BACKOFF, 0, 1, 700), 0);
        assert_eq!(after_collection(3, 1, 5, 7000), 0);
        assert_eq!(after_collection(3, 2, 5, 70_000), 0);
        // A full collection that finds nothing says nothing about the young.
        assert_eq!(after_collection(3, 2, 0, 70_000), 3);
    }

    #[test]
    fn older_collections_finding_much_garbage_hold_the_young_threshold() {
        // A full collection where an eighth of what it scanned was garbage
        // (cycles that died after leaving generation 0): young collections
        // finding nothing no longer back off ...
        let b = after_collection(MAX_BACKOFF, 2, 1000, 8000);
        assert_eq!(young_threshold(700, b), 700);
        let b = after_collection(b, 0, 0, 700);
        let b = after_collection(b, 1, 0, 7000);
        assert_eq!(young_threshold(700, b), 700);
        // ... until a full collection finds less.
        let b = after_collection(b, 2, 999, 8000);
        assert_eq!(b, 0);
        assert_eq!(after_collection(b, 0, 0, 700), 1);
        // The same for a middle collection, cleared by the next middle one.
        let b = after_collection(MAX_BACKOFF, 1, 1000, 8000);
        assert_eq!(after_collection(b, 0, 0, 700), b);
        assert_eq!(after_collection(b, 1, 0, 8000), 1);
        // A little garbage among many survivors holds nothing.
        assert_eq!(after_collection(2, 2, 1, 1 << 20), 0);
        assert_eq!(after_collection(0, 0, 0, 700), 1);
    }

    #[test]
    fn a_fully_backed_off_young_collection_promotes_to_the_oldest() {
        assert_eq!(promote_to(0, 0), 1);
        assert_eq!(promote_to(0, MAX_BACKOFF - 1), 1);
        assert_eq!(promote_to(0, MAX_BACKOFF), 2);
        // Held (an older collection found much garbage): the middle one
        // gets the survivors again.
        assert_eq!(promote_to(0, MAX_BACKOFF | HELD_FULL), 1);
        assert_eq!(promote_to(1, MAX_BACKOFF), 2);
        assert_eq!(promote_to(2, MAX_BACKOFF), 2);
        assert_eq!(promote_to(2, 0), 2);
    }

    #[test]
    fn fully_backed_off_young_collections_examine_one_time_in_passes_plus_one() {
        let examines_at = |generation, backoff| {
            let mut c = counters([0, 0, 0], 0, 0);
            c.backoff = backoff;
            examines(&c, generation)
        };
        // Not backed off, held, or older: every collection examines.
        assert!(examines_at(0, 0));
        assert!(examines_at(0, MAX_BACKOFF - 1));
        assert!(examines_at(0, MAX_BACKOFF | HELD_MIDDLE));
        assert!(examines_at(1, MAX_BACKOFF));
        assert!(examines_at(2, MAX_BACKOFF));
        // The young collection after which a middle one is due examines.
        let mut c = counters([0, 10, 0], 0, 0);
        c.backoff = MAX_BACKOFF;
        assert!(examines(&c, 0));
        c.counts[1] = 9;
        assert!(!examines(&c, 0));
        // Fully backed off: PASSES young collections pass, the next one
        // examines; finding nothing, it starts the passes again.
        let mut b = MAX_BACKOFF;
        let mut seen = Vec::new();
        for _ in 0..2 * (PASSES + 1) {
            let e = examines_at(0, b);
            seen.push(e);
            assert_eq!(promote_to(0, b), 2, "passes promote to the oldest too");
            assert_eq!(
                young_threshold(700, b),
                700 * 16,
                "passes keep the threshold"
            );
            b = if e {
                after_collection(b, 0, 0, 11_200)
            } else {
                after_pass(b)
            };
        }
        let mut expected = vec![false; PASSES as usize];
        expected.push(true);
        expected.extend_from_within(..);
        assert_eq!(seen, expected);
        assert_eq!(b, MAX_BACKOFF);
        // An examined one that finds garbage brings everything back.
        for _ in 0..PASSES {
            b = after_pass(b);
        }
        assert_eq!(after_collection(b, 0, 2, 11_200), 0);
        // A pass counted after the state changed under it changes nothing.
        assert_eq!(after_pass(0), 0);
        assert_eq!(after_pass(b), b);
        // A middle collection examines and starts the passes again too.
        let b = after_pass(MAX_BACKOFF);
        assert_eq!(after_collection(b, 1, 0, 11_200), MAX_BACKOFF);
    }

    #[test]
    fn passed_batches_go_on_with_what_the_examined_collection_found() {
        // Nothing found: the middle generation (passed batches) goes along
        // into the oldest.
        assert_eq!(survivors_into(2, 0, 0), (2, true));
        // Garbage found: survivors join the passed batches in the middle
        // generation, for the next middle collection to examine.
        assert_eq!(survivors_into(2, 0, 5), (PASS_INTO, false));
        // Anything else goes where it was planned.
        assert_eq!(survivors_into(1, 0, 0), (1, false));
        assert_eq!(survivors_into(1, 0, 5), (1, false));
        assert_eq!(survivors_into(2, 1, 5), (2, false));
        assert_eq!(survivors_into(2, 2, 0), (2, false));
    }

    #[test]
    fn young_threshold_saturates_instead_of_overflowing() {
        assert_eq!(young_threshold(usize::MAX, MAX_BACKOFF), usize::MAX);
        assert_eq!(young_threshold(0, MAX_BACKOFF), 0);
        assert_eq!(
            decide(&Counters {
                counts: [usize::MAX, 0, 0],
                thresholds: [usize::MAX, 10, 10],
                backoff: MAX_BACKOFF,
                live: 0,
                live_after_full: 0,
            }),
            None
        );
    }
}
