//! The gc module's settings and schedule state, written once for both heaps.
//!
//! Both heaps offer the same functions (`enable`, `set_threshold`,
//! `get_count`, `get_stats`, `set_debug`, ...) with the same meaning:
//! [`Shell`] holds what they read and write and implements that meaning
//! once, as the pool crate writes one algorithm behind two locking
//! policies. The [`Policy`] chooses the cells: plain `Cell`s for the
//! thread-local heap (its allocation path reads the young count and
//! trigger with ordinary loads), relaxed atomics and a lock for the
//! process-wide heap (read and written from any thread; a setting changed
//! on one thread is seen by the next collection, with no ordering against
//! anything else).
//!
//! What differs between the heaps stays in them: how generation 0 is
//! counted (every allocation on the thread-local heap; in per-shard
//! batches on the shared one) and how the live objects are counted for the
//! schedule.

use core::cell::Cell;

use crate::debug::DebugFlags;
use crate::heap::{DEFAULT_THRESHOLDS, GENERATIONS};
use crate::schedule::Counters;
use crate::stats::GenerationStats;

/// A place holding a `T`, read and written through a shared reference.
pub(crate) trait Slot<T: Copy> {
    fn new(value: T) -> Self;
    fn get(&self) -> T;
    fn set(&self, value: T);
    /// Replaces the value with `f` of it, as one step: a compare-and-swap
    /// loop on an atomic, so that two threads updating at once lose
    /// neither update.
    fn update(&self, f: impl Fn(T) -> T) {
        self.set(f(self.get()));
    }
}

impl<T: Copy> Slot<T> for Cell<T> {
    #[inline(always)]
    fn new(value: T) -> Self {
        Cell::new(value)
    }
    #[inline(always)]
    fn get(&self) -> T {
        Cell::get(self)
    }
    #[inline(always)]
    fn set(&self, value: T) {
        Cell::set(self, value)
    }
}

/// Per-generation counts, thresholds and statistics, in the layout a heap
/// keeps them (the collectors index them directly).
pub(crate) trait Generations {
    fn new(thresholds: [usize; GENERATIONS]) -> Self;
    /// `get_count()[g]` for `g > 0` (generation 0 is counted by the heap).
    fn count(&self, g: usize) -> usize;
    fn threshold(&self, g: usize) -> usize;
    fn set_threshold(&self, g: usize, t: usize);
    /// Sets `get_count()[g]` for `g > 0`.
    fn set_count(&self, g: usize, c: usize);
    fn stats(&self) -> [GenerationStats; GENERATIONS];
    /// Adds a collection of generation `g` to its statistics.
    fn record(&self, g: usize, collected: usize, uncollectable: usize);
}

/// The cells a heap's [`Shell`] is made of.
pub(crate) trait Policy {
    type Bool: Slot<bool>;
    type U32: Slot<u32>;
    type Usize: Slot<usize>;
    type Flags: Slot<DebugFlags>;
    type Gens: Generations;
    /// `young_trigger` says "off" while automatic collection is disabled.
    /// Only where one thread writes it: on the process-wide heap the
    /// `adapt` of a collection finishing on another thread could read
    /// `enabled` before an `enable()` and store "off" after it, leaving
    /// collections enabled but never due; that heap checks `enabled` on
    /// its slow path instead.
    const TRIGGER_FOLDS_ENABLED: bool;
}

/// The settings and schedule state of one heap.
pub(crate) struct Shell<P: Policy> {
    /// Counts, thresholds and statistics per generation.
    pub(crate) gens: P::Gens,
    pub(crate) enabled: P::Bool,
    /// The schedule's state (see `schedule`): doublings of threshold 0 in
    /// force and the hold bits.
    pub(crate) backoff: P::U32,
    /// The effective young threshold, at most `isize::MAX` (that value
    /// while automatic collection is off: threshold 0 is 0, or, on the
    /// thread-local heap, disabled: see `Policy::TRIGGER_FOLDS_ENABLED`);
    /// the heap compares its young count with it before each tracked
    /// allocation.
    pub(crate) young_trigger: P::Usize,
    pub(crate) debug: P::Flags,
}

impl<P: Policy> Shell<P> {
    /// CPython's defaults: enabled, thresholds `[700, 10, 10]`, no flags.
    pub(crate) fn new() -> Self {
        Shell {
            gens: P::Gens::new(DEFAULT_THRESHOLDS),
            enabled: Slot::new(true),
            backoff: Slot::new(0),
            young_trigger: Slot::new(DEFAULT_THRESHOLDS[0]),
            debug: Slot::new(DebugFlags::empty()),
        }
    }

    /// `gc.enable()`.
    pub(crate) fn enable(&self) {
        self.enabled.set(true);
        self.update_trigger();
    }

    /// `gc.disable()`: explicit collections still run.
    pub(crate) fn disable(&self) {
        self.enabled.set(false);
        self.update_trigger();
    }

    /// `gc.isenabled()`.
    pub(crate) fn is_enabled(&self) -> bool {
        self.enabled.get()
    }

    /// `gc.get_threshold()`.
    pub(crate) fn get_threshold(&self) -> [usize; GENERATIONS] {
        core::array::from_fn(|g| self.gens.threshold(g))
    }

    /// `gc.set_threshold()`: a threshold 0 of 0 turns automatic collection
    /// off; the young threshold in force starts again from threshold 0.
    pub(crate) fn set_threshold(&self, thresholds: [usize; GENERATIONS]) {
        for (g, t) in thresholds.into_iter().enumerate() {
            self.gens.set_threshold(g, t);
        }
        self.backoff.set(0);
        self.update_trigger();
    }

    /// `gc.get_count()`, given generation 0's count (never negative).
    pub(crate) fn get_count(&self, young: usize) -> [usize; GENERATIONS] {
        core::array::from_fn(|g| if g == 0 { young } else { self.gens.count(g) })
    }

    /// `gc.get_stats()`.
    pub(crate) fn get_stats(&self) -> [GenerationStats; GENERATIONS] {
        self.gens.stats()
    }

    /// `gc.set_debug()`.
    pub(crate) fn set_debug(&self, flags: DebugFlags) {
        crate::debug::hint_if_stats_unseen(flags);
        self.debug.set(flags);
    }

    /// `gc.get_debug()`.
    pub(crate) fn debug(&self) -> DebugFlags {
        self.debug.get()
    }

    /// Recomputes `young_trigger` after a change of the thresholds, of
    /// `enabled` or of the backoff.
    pub(crate) fn update_trigger(&self) {
        let t0 = self.gens.threshold(0);
        let t = if (!P::TRIGGER_FOLDS_ENABLED || self.enabled.get()) && t0 > 0 {
            crate::schedule::young_threshold(t0, self.backoff.get()).min(isize::MAX as usize)
        } else {
            isize::MAX as usize
        };
        self.young_trigger.set(t);
    }

    /// After a collection of `generation`, CPython's counters: the next
    /// generation counts it, the collected ones (above generation 0, which
    /// the heap counts itself) start again from zero. Called by the
    /// collector only (one at a time on each heap).
    pub(crate) fn count_collection(&self, generation: usize) {
        if generation + 1 < GENERATIONS {
            let c = self.gens.count(generation + 1);
            self.gens.set_count(generation + 1, c.saturating_add(1));
        }
        for g in 1..=generation {
            self.gens.set_count(g, 0);
        }
    }

    /// Adds a finished collection of `generation` to `get_stats()`:
    /// `collected` includes what `SAVEALL` kept (CPython's count).
    pub(crate) fn record(&self, generation: usize, collected: usize, uncollectable: usize) {
        self.gens.record(generation, collected, uncollectable);
    }

    /// After an automatic collection of `generation` that found
    /// `unreachable` of the `scanned` objects: the young threshold backs
    /// off or comes back (`schedule::after_collection`). An explicit
    /// collection says nothing about the automatic ones (a program that
    /// collects right after dropping its cycles would otherwise keep the
    /// young threshold from backing off), so it does not call this.
    pub(crate) fn adapt(&self, generation: usize, unreachable: usize, scanned: usize) {
        // One step: on the shared heap a pass (under the collector lock)
        // may count itself meanwhile (`adapt` runs when the collection is
        // finished, without that lock); neither may undo the other.
        self.backoff
            .update(|b| crate::schedule::after_collection(b, generation, unreachable, scanned));
        self.update_trigger();
    }

    /// The automatic collection the schedule asks for now, if any
    /// (`schedule::decide`, `schedule::promote_to`, `schedule::examines`).
    pub(crate) fn due(&self, counters: &Counters) -> Option<Due> {
        let generation = crate::schedule::decide(counters)?;
        let examine = crate::schedule::examines(counters, generation);
        Some(Due {
            generation,
            into: if examine {
                crate::schedule::promote_to(generation, counters.backoff)
            } else {
                crate::schedule::PASS_INTO
            },
            examine,
        })
    }

    /// After an automatic young collection that promoted generation 0
    /// unexamined (`Due::examine` was false): counts the pass
    /// (`schedule::after_pass`); the young threshold stays.
    pub(crate) fn pass(&self) {
        self.backoff.update(crate::schedule::after_pass);
    }

    /// What the schedule looks at, given the heap's own counts: generation
    /// 0's count, the tracked objects alive now and after the last full
    /// collection.
    pub(crate) fn counters(&self, young: usize, live: usize, live_after_full: usize) -> Counters {
        Counters {
            counts: self.get_count(young),
            thresholds: self.get_threshold(),
            backoff: self.backoff.get(),
            live,
            live_after_full,
        }
    }
}

/// An automatic collection the schedule asks for ([`Shell::due`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Due {
    /// The oldest generation to collect.
    pub(crate) generation: usize,
    /// The generation its survivors go to.
    pub(crate) into: usize,
    /// Whether it examines its objects; if not (a pass: only a young
    /// collection, while fully backed off), it promotes generation 0 into
    /// `into` (`schedule::PASS_INTO`) unexamined and the heap calls
    /// [`Shell::pass`] instead of [`Shell::adapt`]. An examined one puts
    /// its survivors where `schedule::survivors_into` says.
    pub(crate) examine: bool,
}

/// The thread-local heap's cells.
pub(crate) struct Local;

/// A generation's counter, threshold and statistics on the thread-local
/// heap.
pub(crate) struct Generation {
    /// Gen 0: tracked allocations minus deallocations since the last
    /// collection, wrapping: read as an `isize`, negative when more were
    /// freed than allocated (`get_count` shows 0 then); gen n > 0:
    /// collections of gen n-1 since the last collection of gen n
    /// (CPython's meaning).
    pub(crate) count: Cell<usize>,
    pub(crate) threshold: Cell<usize>,
    pub(crate) stats: Cell<GenerationStats>,
}

impl Generations for [Generation; GENERATIONS] {
    fn new(thresholds: [usize; GENERATIONS]) -> Self {
        thresholds.map(|t| Generation {
            count: Cell::new(0),
            threshold: Cell::new(t),
            stats: Cell::new(GenerationStats::default()),
        })
    }
    fn count(&self, g: usize) -> usize {
        self[g].count.get()
    }
    fn threshold(&self, g: usize) -> usize {
        self[g].threshold.get()
    }
    fn set_threshold(&self, g: usize, t: usize) {
        self[g].threshold.set(t)
    }
    fn set_count(&self, g: usize, c: usize) {
        self[g].count.set(c)
    }
    fn stats(&self) -> [GenerationStats; GENERATIONS] {
        core::array::from_fn(|g| self[g].stats.get())
    }
    fn record(&self, g: usize, collected: usize, uncollectable: usize) {
        let mut s = self[g].stats.get();
        s.record(collected, uncollectable);
        self[g].stats.set(s);
    }
}

impl Policy for Local {
    type Bool = Cell<bool>;
    type U32 = Cell<u32>;
    type Usize = Cell<usize>;
    type Flags = Cell<DebugFlags>;
    type Gens = [Generation; GENERATIONS];
    const TRIGGER_FOLDS_ENABLED: bool = true;
}

pub(crate) use shared::Shared;

/// The process-wide heap's cells: relaxed atomics (loom's under
/// `cfg(loom)`), and a lock for the statistics.
mod shared {
    use super::{GENERATIONS, Generations, Policy, Slot};
    use crate::debug::DebugFlags;
    use crate::stats::GenerationStats;
    use crate::sync::prims::{self, AtomicBool, AtomicU32, AtomicUsize, Mutex, Ordering};

    pub(crate) struct Shared;

    macro_rules! relaxed_slot {
        ($atomic:ty, $t:ty) => {
            impl Slot<$t> for $atomic {
                fn new(value: $t) -> Self {
                    <$atomic>::new(value)
                }
                #[inline(always)]
                fn get(&self) -> $t {
                    self.load(Ordering::Relaxed)
                }
                #[inline(always)]
                fn set(&self, value: $t) {
                    self.store(value, Ordering::Relaxed)
                }
                fn update(&self, f: impl Fn($t) -> $t) {
                    let _ = self.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| Some(f(v)));
                }
            }
        };
    }
    relaxed_slot!(AtomicBool, bool);
    relaxed_slot!(AtomicU32, u32);
    relaxed_slot!(AtomicUsize, usize);

    /// Debug flags in an atomic.
    pub(crate) struct AtomicFlags(AtomicU32);

    impl Slot<DebugFlags> for AtomicFlags {
        fn new(value: DebugFlags) -> Self {
            AtomicFlags(AtomicU32::new(value.0))
        }
        fn get(&self) -> DebugFlags {
            DebugFlags(self.0.load(Ordering::Relaxed))
        }
        fn set(&self, value: DebugFlags) {
            self.0.store(value.0, Ordering::Relaxed)
        }
    }

    /// The process-wide heap's per-generation state.
    pub(crate) struct SharedGens {
        /// `count[1]`, `count[2]` as CPython (`count[0]` is the heap's
        /// `young`); written by the collector, readable from anywhere (also
        /// from its callbacks).
        pub(crate) gen_counts: [AtomicUsize; GENERATIONS],
        pub(crate) thresholds: [AtomicUsize; GENERATIONS],
        pub(crate) stats: Mutex<[GenerationStats; GENERATIONS]>,
    }

    impl Generations for SharedGens {
        fn new(thresholds: [usize; GENERATIONS]) -> Self {
            SharedGens {
                gen_counts: core::array::from_fn(|_| AtomicUsize::new(0)),
                thresholds: thresholds.map(AtomicUsize::new),
                stats: Mutex::new([GenerationStats::default(); GENERATIONS]),
            }
        }
        fn count(&self, g: usize) -> usize {
            self.gen_counts[g].load(Ordering::Relaxed)
        }
        fn threshold(&self, g: usize) -> usize {
            self.thresholds[g].load(Ordering::Relaxed)
        }
        fn set_threshold(&self, g: usize, t: usize) {
            self.thresholds[g].store(t, Ordering::Relaxed)
        }
        fn set_count(&self, g: usize, c: usize) {
            self.gen_counts[g].store(c, Ordering::Relaxed)
        }
        fn stats(&self) -> [GenerationStats; GENERATIONS] {
            *prims::lock(&self.stats)
        }
        fn record(&self, g: usize, collected: usize, uncollectable: usize) {
            prims::lock(&self.stats)[g].record(collected, uncollectable);
        }
    }

    impl Policy for Shared {
        type Bool = AtomicBool;
        type U32 = AtomicU32;
        type Usize = AtomicUsize;
        type Flags = AtomicFlags;
        type Gens = SharedGens;
        const TRIGGER_FOLDS_ENABLED: bool = false;
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// The shell's semantics, checked on both cell policies.
    fn semantics<P: Policy>() {
        let s = Shell::<P>::new();
        assert!(s.is_enabled());
        assert_eq!(s.get_threshold(), DEFAULT_THRESHOLDS);
        assert_eq!(s.young_trigger.get(), DEFAULT_THRESHOLDS[0]);
        assert_eq!(s.get_count(5), [5, 0, 0]);
        assert!(s.debug().is_empty());

        // Disabled, or threshold 0 of 0: no automatic collection.
        s.disable();
        assert!(!s.is_enabled());
        let off = if P::TRIGGER_FOLDS_ENABLED {
            isize::MAX as usize
        } else {
            700
        };
        assert_eq!(s.young_trigger.get(), off);
        s.enable();
        assert_eq!(s.young_trigger.get(), 700);
        s.set_threshold([0, 10, 10]);
        assert_eq!(s.young_trigger.get(), isize::MAX as usize);

        // `set_threshold` starts the young threshold again from threshold 0.
        s.set_threshold([100, 5, 6]);
        s.backoff.set(3);
        s.update_trigger();
        assert_eq!(s.young_trigger.get(), 800);
        s.set_threshold([100, 5, 6]);
        assert_eq!(s.backoff.get(), 0);
        assert_eq!(s.young_trigger.get(), 100);
        assert_eq!(s.get_threshold(), [100, 5, 6]);

        // A huge threshold stays within what the young count can reach.
        s.set_threshold([usize::MAX, 10, 10]);
        assert_eq!(s.young_trigger.get(), isize::MAX as usize);

        s.set_debug(DebugFlags::SAVEALL);
        assert_eq!(s.debug(), DebugFlags::SAVEALL);

        let c = s.counters(7, 40, 30);
        assert_eq!(c.counts, [7, 0, 0]);
        assert_eq!(c.thresholds, [usize::MAX, 10, 10]);
        assert_eq!((c.backoff, c.live, c.live_after_full), (0, 40, 30));
        assert_eq!(s.get_stats(), [GenerationStats::default(); GENERATIONS]);

        // After collections: CPython's counters and the statistics.
        s.set_threshold([700, 10, 10]);
        s.count_collection(0);
        s.count_collection(0);
        assert_eq!(s.get_count(0), [0, 2, 0]);
        s.count_collection(1);
        assert_eq!(s.get_count(0), [0, 0, 1]);
        s.count_collection(2);
        assert_eq!(s.get_count(0), [0, 0, 0]);
        s.record(1, 4, 1);
        s.record(1, 2, 0);
        let st = s.get_stats();
        assert_eq!(
            (st[1].collections, st[1].collected, st[1].uncollectable),
            (2, 6, 1)
        );
        assert_eq!(st[0], GenerationStats::default());

        // An automatic young collection that finds nothing backs off; one
        // that finds garbage brings the young threshold back.
        s.adapt(0, 0, 500);
        assert_eq!(s.backoff.get(), 1);
        assert_eq!(s.young_trigger.get(), 1400);
        s.adapt(0, 10, 500);
        assert_eq!(s.backoff.get(), 0);
        assert_eq!(s.young_trigger.get(), 700);

        // What is due: nothing below the young threshold; generation 0
        // (kept there) above it.
        assert_eq!(s.due(&s.counters(700, 0, 0)), None);
        let young = Due {
            generation: 0,
            into: 1,
            examine: true,
        };
        assert_eq!(s.due(&s.counters(701, 0, 0)), Some(young));
        // Fully backed off: three times in four a pass into the middle
        // generation, otherwise examined and planned into the oldest.
        for _ in 0..crate::schedule::MAX_BACKOFF {
            s.adapt(0, 0, 500);
        }
        let mut examined = 0;
        for _ in 0..4 * (crate::schedule::PASSES + 1) {
            let due = s.due(&s.counters(700 * 16 + 1, 0, 0)).unwrap();
            let into = if due.examine { 2 } else { 1 };
            assert_eq!((due.generation, due.into), (0, into));
            if due.examine {
                examined += 1;
                s.adapt(0, 0, 500);
            } else {
                s.pass();
            }
        }
        assert_eq!(examined, 4);
    }

    #[test]
    fn the_thread_local_shell() {
        semantics::<Local>();
    }

    #[test]
    fn the_shared_shell() {
        semantics::<Shared>();
    }
}

/// Review finding r9-1: on the process-wide heap, `enable()` racing with the
/// `adapt` of an automatic collection that finishes on another thread (the
/// background thread) must not leave automatic collection on but never
/// due (a young trigger of `isize::MAX`, which only `disabled` means).
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;

    #[test]
    fn enable_racing_an_automatic_collections_adapt_keeps_collections_due() {
        loom::model(|| {
            let s = loom::sync::Arc::new(Shell::<Shared>::new());
            s.disable();
            let s2 = s.clone();
            let t = loom::thread::spawn(move || s2.adapt(0, 10, 500));
            s.enable();
            t.join().unwrap();
            assert!(s.is_enabled());
            assert_ne!(
                s.young_trigger.get(),
                isize::MAX as usize,
                "enabled, but no automatic collection can ever be due"
            );
        });
    }
}
