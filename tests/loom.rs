//! Model checks of the concurrent cycle collector behind `ouro::sync::Gc`
//! (the protocol written down in `ouro_cyclegc::sync`), through the public
//! API only. Run with `cargo xtask loom`, or
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p ouro-gc --release --test loom`.
//!
//! Under `--cfg loom` the process-wide heap is a `loom::lazy_static`, so
//! every execution starts from an empty heap; its shard locks, the
//! collector lock and every header atomic are loom's, so loom explores the
//! interleavings of two threads (a collector and a mutator, or two
//! collectors) around them. Each model has 2-3 objects.
//!
//! The values are [`Node`]s. Their handles live in set-once fields
//! (`OnceLock`), filled before any other thread starts, plus one mutable
//! slot, a std `Mutex` (whose `Trace` impl the collector's verification
//! holds while it works). Threads take the slot only with [`lock`]
//! (`try_lock` and a loom yield): loom runs one thread at a time, so a real
//! block on a lock held across a loom operation would hang it. Each `Node`
//! has a `dropped` flag that its `trace`, its accessors and its `Drop`
//! assert is clear, and a drop counter outside the value; the main thread
//! keeps `Weak`s so that the memory (and the flag) stays readable, and
//! checks at the end that they hold the last count of each object.
//!
//! Loom only reorders operations on its own objects, and only those that
//! conflict: a std `Mutex` or a plain field is invisible to it. So every
//! `trace` of a `Node` and every locking of its slot also touches a loom
//! atomic of the `Node`; without it, loom never interleaves a slot move
//! with the collector's traversal. Loom does not check the plain memory of
//! values and links for data races either (it is not a loom cell): these
//! models check what the protocol promises (no use after drop, exactly one
//! drop, no leak, no deadlock), not the orderings of plain accesses.
//!
//! # What each model catches
//!
//! Each model was run against a deliberately broken collector, one break at
//! a time in `cyclegc/src/sync` (then reverted); with
//! `LOOM_MAX_PREEMPTIONS=2` loom reported (the unbroken collector also
//! passes with up to 6 preemptions, in about 20 s):
//!
//! - [`handle_taken_out_of_cycle_during_scan`]: verify step (c) without the
//!   `strong == counted` check (the guess is fooled by a handle taken out of
//!   the cycle between two count reads, and the reachable cycle is freed
//!   under the mutator).
//! - [`handles_moved_between_slots_during_scan`]: the verification dropping
//!   each guard right after its trace instead of holding it to the end of
//!   step (c) (a move during the traces of step (a) makes it count a handle
//!   twice); also the
//!   `strong == counted` break.
//! - [`last_drop_races_collection`]: `heap::strong_zero` ignoring
//!   `IN_COLLECTOR` (the mutator unlinks and drops a value the collector
//!   owns, which the collector then traces); verify step (c) accepting a
//!   count of 0 without `ZOMBIE` (the collector frees an object whose last
//!   drop is between its decrement and its shard lock, and that drop then
//!   frees it again);
//!   `give_back` keeping a `ZOMBIE` as a survivor (not dropped when the
//!   collection ends).
//! - [`upgrade_races_collection`]: `claim` ignoring a failed
//!   compare-exchange (the `upgrade` that got in first holds a handle to a
//!   value the collector then drops); also the `strong == counted` break.
//! - [`last_drop_races_the_mark`]: the unmark not taking over a zero
//!   reached while the object was marked (no `ZOMBIE`: the leaf is never
//!   dropped). A temporary panic in that branch showed that the model gets
//!   there (with one object per chunk).
//! - [`upgrade_during_the_mark`]: `upgrade` not clearing `MARKED`; step (c)
//!   reading the weak count after the counts word instead of before. The
//!   second was a real bug, in the collector before the mark too (its
//!   version counter did not help): the model, new with the mark, failed
//!   on it with one chunk for everything.
//! - [`two_collectors`]: `collect()` returning at once when another
//!   collection is running (`try_lock` instead of waiting), which breaks its
//!   promise that the caller's garbage is claimed when it returns (the weak
//!   handles upgrade), or leaves it uncollected.
//!
//! - [`report_races_the_last_drop`]: the report of uncollectable cycles
//!   (only in a collection that meets a non-structural `trace`) taking its
//!   `SAVEALL` references with a plain increment instead of an upgrade
//!   that fails on a zero count; and `ObjectRef::try_new` releasing a count
//!   on failure (a real bug, which it found).
//!
//! Every model but `two_collectors` and `report_races_the_last_drop` also
//! fails when verify step (c) accepts every candidate.
//!
//! Every model runs with two chunk sizes of the collector's first pass
//! ([`CHUNKS`]): one object per chunk (the global guess and verification
//! find the garbage) and every object in one chunk (the first pass verifies
//! and claims it). Deliberate breaks of the chunk verification, each caught
//! with the one-chunk size: every guard dropped right after its trace
//! (`handles_moved_between_slots_during_scan`); the counts word not read
//! again in (c) (`handle_taken_out_of_cycle_during_scan`); (d) skipped in
//! the chunk (the same, and `upgrade_races_collection`); a failed claim
//! exchange ignored, and plain-store claims although a candidate has a
//! weak handle (`upgrade_races_collection`). Not caught, and no bug: the
//! guards released after the chunk's last trace but before its checks
//! (inside one chunk a handle can only leave an untraced slot, which leaves
//! its target with a count its chunk does not explain), and the
//! `strong == counted` check of the chunk (the word check subsumes it
//! there, by the same argument); both stay, as the proof is written for
//! them.
//!
//! `last_drop_races_collection` also goes through the holes of the
//! collector's table: its mutator's drop to zero can unlink the leaf between
//! the collector's reading of the list lengths and its taking of the lists,
//! which leaves a planned place empty for `fill_holes`.
//!
//! A chunk that follows one without candidates is first traced with every
//! guard released at once, and traced again with the guards kept only if
//! that trace finds candidates. Under loom every chunk starts that way, the
//! first one too, so that every model goes through both traces. Claiming
//! on the strength of the first trace (skipping the second) is caught by
//! `handles_moved_between_slots_during_scan`.
//!
//! [`upgrade_withdraws_a_chunk`] covers the withdrawal of a chunk's claims
//! followed by a global claim of the same object. It aborts the process (a
//! block freed twice) when step 6 both keeps the withdrawn claim in the
//! chunk's list and processes an object's claim end more than once (state
//! `ENDED`); each of the two alone is enough, and both stay.
//!
//! Every model but `upgrade_races_collection` (which needs its weak handle)
//! also runs twice ([`both_ways`]): with the main thread holding weak
//! handles, and without any. Without weak handles the collector takes another path
//! after the checks of step 3: it claims with plain stores, marks the
//! garbage dead in the same pass and releases each candidate's guards as it
//! goes (`claim_unshared`). The variant without weak handles caught a real
//! bug in a first version of that path, which claimed candidates before the
//! (c) check of the others was done: in
//! `handle_taken_out_of_cycle_during_scan` the mutator then reached a
//! claimed, dead object through a set-once field of a candidate whose check
//! failed only later. Deliberate breaks of that path, each caught by the
//! variant without weak handles: (c) without the `strong == counted` check
//! (`handle_taken_out_of_cycle_during_scan`,
//! `handles_moved_between_slots_during_scan`); step (d) skipped (the same
//! two); every guard dropped right after its trace
//! (`handles_moved_between_slots_during_scan`). Caught by no model: the
//! global verification's (c) check that the weak count is still 1 (a weak
//! handle made between a candidate's trace and its mark, by a thread that
//! had a handle to it in a slot it locked, could then upgrade racing the
//! plain store of the claim); no model makes a weak handle during a
//! collection without keeping one from the start, which sends the global
//! steps down the other path (they choose it by the weak counts seen while
//! tracing; a chunk by those seen in (c)).
//!
//! Caught by no model, and no bug: verify step (c) comparing the counted
//! edges with the word the mark of (b) returned instead of re-reading the
//! counts, when the claim is a compare-exchange (it expects that same word
//! with `MARKED`, so a count that changed after the mark makes the claim
//! fail and nothing is freed: the re-read only fails earlier). (The
//! re-verification after finalizers has no such backstop; no model has a
//! finalizer.)
//!
//! Caught by no model, and by this argument no bug: `clone` not
//! clearing `MARKED` on its slow path. A handle that a clone makes during a
//! verification comes, through a chain of clones, from a handle that
//! existed outside the counted ones at some candidate's mark (that
//! candidate fails, and so does everything its value reaches along counted
//! edges, in (d)), or from an `upgrade` (which clears the mark). The clear
//! stays: it makes step 3's argument one about each object alone.
#![cfg(loom)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Mutex, MutexGuard, OnceLock};

use loom::thread;
use ouro::sync::{Gc, Weak, gc};
use ouro::{Structural, Trace, Visitor};

/// A tracked value: two set-once handle fields, filled before it is shared,
/// and one mutable slot.
struct Node {
    name: &'static str,
    /// Set by `Drop`; every access asserts it is clear.
    dropped: AtomicBool,
    /// Counts this value's drops; outlives the value (see [`counters`]).
    drops: &'static AtomicUsize,
    next: OnceLock<Gc<Node>>,
    side: OnceLock<Gc<Node>>,
    /// The one mutable slot. The collector's verification holds its guard
    /// across loom operations, so threads take it with [`lock`], never with
    /// `Mutex::lock` (a real block would hang loom's scheduler).
    slot: Mutex<Option<Gc<Node>>>,
    /// Touched by every trace of the value and every locking of `slot`.
    /// The std `Mutex` is invisible to loom, which only reorders operations
    /// on its own objects that conflict; this loom atomic makes a trace and
    /// a slot access conflict, so loom tries both orders.
    touch: loom::sync::atomic::AtomicUsize,
}

impl Node {
    fn new(name: &'static str, drops: &'static AtomicUsize) -> Gc<Node> {
        Gc::new(Node {
            name,
            dropped: AtomicBool::new(false),
            drops,
            next: OnceLock::new(),
            side: OnceLock::new(),
            slot: Mutex::new(None),
            touch: loom::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// Panics if the value was dropped.
    fn check(&self) -> &Self {
        assert!(
            !self.dropped.load(SeqCst),
            "{}: value used after it was dropped",
            self.name
        );
        self
    }

    fn next(&self) -> &Gc<Node> {
        self.check().next.get().expect("no next")
    }

    fn side(&self) -> &Gc<Node> {
        self.check().side.get().expect("no side")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        assert!(
            !self.dropped.swap(true, SeqCst),
            "{}: dropped twice",
            self.name
        );
        self.drops.fetch_add(1, SeqCst);
    }
}

impl Trace for Node {
    fn has_finalizer() -> bool {
        false
    }
    fn structural() -> Structural<Self> {
        // SAFETY: `trace` only calls `trace` on fields (the count of traces in
        // a loom atomic is only there to give loom a point to interleave at).
        unsafe { Structural::promise() }
    }

    fn trace(&self, v: &mut Visitor<'_>) {
        self.check().touch.fetch_add(1, SeqCst);
        if let Some(n) = self.next.get() {
            n.trace(v);
        }
        if let Some(s) = self.side.get() {
            s.trace(v);
        }
        self.slot.trace(v);
    }
}

/// Locks `node.slot`, yielding to loom while the lock is busy (held by the
/// collector, which may be in the middle of a verification).
fn lock(node: &Node) -> MutexGuard<'_, Option<Gc<Node>>> {
    loop {
        if let Ok(g) = node.check().slot.try_lock() {
            node.touch.fetch_add(1, SeqCst);
            return g;
        }
        thread::yield_now();
    }
}

/// Drop counters for one execution. Leaked (a few bytes per execution), so
/// a value dropped twice cannot take them down with it.
fn counters() -> &'static [AtomicUsize; 3] {
    Box::leak(Box::new([const { AtomicUsize::new(0) }; 3]))
}

fn drops(d: &[AtomicUsize; 3]) -> [usize; 3] {
    [d[0].load(SeqCst), d[1].load(SeqCst), d[2].load(SeqCst)]
}

/// `from.next = to` (once).
fn set_next(from: &Gc<Node>, to: &Gc<Node>) {
    assert!(from.next.set(to.clone()).is_ok(), "next set twice");
}

/// `from.side = to` (once).
fn set_side(from: &Gc<Node>, to: &Gc<Node>) {
    assert!(from.side.set(to.clone()).is_ok(), "side set twice");
}

/// The end of every model: one more full collection (from the main thread,
/// nothing else running), then every value must have been dropped exactly
/// once, and the main thread's weak handles must be the last counts.
fn collect_and_check_all_freed<const N: usize>(d: &[AtomicUsize; 3], weaks: [Weak<Node>; N]) {
    gc::collect();
    assert_eq!(&drops(d)[..N], &[1, 1, 1][..N], "drop counts");
    check_weaks(weaks);
}

/// The end of a model run without weak handles: one more full collection,
/// then every value must have been dropped exactly once and the heap must
/// be empty (nothing leaked, nothing left linked).
fn collect_and_check_all_freed_no_weak(d: &[AtomicUsize; 3], n: usize) {
    gc::collect();
    assert_eq!(&drops(d)[..n], &[1, 1, 1][..n], "drop counts");
    assert!(gc::get_objects(None).is_empty(), "objects left in the heap");
}

/// Runs `gc::collect()` on one new thread and `mutator` on another, and
/// waits for both.
fn collect_beside(mutator: impl FnOnce() + Send + 'static) {
    let collector = thread::spawn(|| {
        gc::collect();
    });
    let mutator = thread::spawn(mutator);
    collector.join().unwrap();
    mutator.join().unwrap();
}

/// The end of a [`both_ways`] model over `N` objects:
/// [`collect_and_check_all_freed`] with the main thread's weak handles (one
/// to each object), or [`collect_and_check_all_freed_no_weak`] without
/// them.
fn check_all_freed<const N: usize>(d: &[AtomicUsize; 3], weaks: Option<[Weak<Node>; N]>) {
    match weaks {
        Some(weaks) => collect_and_check_all_freed(d, weaks),
        None => collect_and_check_all_freed_no_weak(d, N),
    }
}

/// Runs `model` under loom twice: with the main thread holding a `Weak` to
/// every object (which keeps the memory readable, so that a use after drop
/// is reported by the `dropped` flag instead of reading freed memory), and
/// without any weak handle. The two take different paths through the
/// collector: a verification in which no candidate has a weak handle claims
/// in the same pass as it checks (`check_claim_release`), the other one
/// checks every candidate first.
fn both_ways(model: fn(bool)) {
    for chunk in CHUNKS {
        loom::model(move || {
            gc::set_chunk_for_loom(chunk);
            model(true)
        });
        loom::model(move || {
            gc::set_chunk_for_loom(chunk);
            model(false)
        });
    }
}

/// The chunk sizes of a collection's first pass each model runs with: one
/// object per chunk (nothing is verified in the first pass but self-loops:
/// the global guess and verification do the work), and every object in one
/// chunk (the chunk verification does it).
const CHUNKS: [usize; 2] = [1, 4];

/// Each weak handle is the last count of a freed object: it does not
/// upgrade, and no other weak count is left (or was released twice).
fn check_weaks<const N: usize>(weaks: [Weak<Node>; N]) {
    if !weaks
        .iter()
        .all(|w| w.strong_count() == 0 && w.weak_count_for_loom() == 1)
    {
        // Dropping them could free the memory a second time (and abort the
        // process instead of reporting the failing interleaving).
        std::mem::forget(weaks);
        panic!("weak counts: a count was released twice, or an object leaked");
    }
    for w in &weaks {
        assert!(w.upgrade().is_none(), "a freed value upgraded");
    }
}

/// Clone and drop racing the trial-deletion scan. A reachable cycle
/// `a <-> b` has one external handle, to `a`, owned by a mutator; the
/// mutator takes a handle to `b` out of the cycle (a clone from inside
/// `a`'s value), drops `a`, uses `b`, and finally drops `b`, which makes the
/// cycle garbage — all while another thread collects.
///
/// `b` is allocated first, so the collector reads `b`'s count before `a`'s:
/// the mutator can act between the two reads, and then the guess (step 2)
/// sees two counts fully explained by the cycle's own edges although a
/// handle to `b` lives on the mutator's stack. Only the verification stands
/// between that guess and a use after free.
///
/// Checks: nothing is dropped while the mutator holds a handle; the cycle is
/// freed exactly once by the end.
#[test]
fn handle_taken_out_of_cycle_during_scan() {
    both_ways(|weak| {
        let d = counters();
        let b = Node::new("b", &d[1]);
        let a = Node::new("a", &d[0]);
        set_next(&a, &b);
        set_next(&b, &a);
        let weaks = weak.then(|| [Gc::downgrade(&a), Gc::downgrade(&b)]);
        drop(b);

        collect_beside(move || {
            let hb = a.next().clone();
            drop(a);
            thread::yield_now();
            assert_eq!(drops(d)[..2], [0, 0], "reachable cycle dropped");
            assert!(Gc::ptr_eq(hb.next().next(), &hb));
            drop(hb);
        });

        check_all_freed(d, weaks);
    });
}

/// A drop to zero racing a collection (the `ZOMBIE` hand-off of
/// `heap::strong_zero`, and a count that is 0 before the mutator has taken
/// its shard lock). A mutator owns the only handle to a leaf `c` and drops
/// it while another thread collects a garbage cycle `a <-> b`; `c` was
/// allocated first and is taken by the collection with the cycle.
///
/// Checks: `c` is never dropped while the mutator holds its handle, and
/// once both threads are done every value was dropped exactly once (by the
/// collector, by the mutator, or by the collector's give-back of a zombie)
/// without another collection.
#[test]
fn last_drop_races_collection() {
    both_ways(|weak| {
        let d = counters();
        let c = Node::new("c", &d[2]);
        let a = Node::new("a", &d[0]);
        let b = Node::new("b", &d[1]);
        set_next(&a, &b);
        set_next(&b, &a);
        let weaks = weak.then(|| [Gc::downgrade(&a), Gc::downgrade(&b), Gc::downgrade(&c)]);
        drop((a, b));

        collect_beside(move || {
            assert_eq!(drops(d)[2], 0, "c dropped while held");
            c.check();
            drop(c);
        });

        // The collection started after `a <-> b` became garbage, and `c`'s
        // last drop either freed it or handed it to that collection.
        assert_eq!(drops(d), [1, 1, 1], "left over after the collection");
        check_all_freed(d, weaks);
    });
}

/// A drop to zero racing the collector's mark (step 3 (b), I5). A cycle
/// `a <-> b` holds the only handle to a leaf `c`, in `a`'s slot; the
/// mutator owns a handle to `b`. It takes `c`'s handle out of `a`'s slot
/// (reaching `a` through `b`), drops its handle to `b` (the cycle is
/// garbage now), and then drops `c`'s last handle.
///
/// With one object per chunk the collector can trace `a` before the take
/// and read `b`'s count after the drop; the guess then makes all three
/// candidates, and `c` fails the verification (no counted edge explains its
/// count). A drop of `c`'s last handle while `c` is marked only decrements
/// (`MARKED` is set), so the collector must take that zero over when it
/// clears the mark, and drop `c` as a zombie.
///
/// Checks: `c` intact while held; once both threads are done `c` has been
/// dropped exactly once without another collection (by the mutator, or by
/// the collection it raced); everything freed exactly once by the end.
#[test]
fn last_drop_races_the_mark() {
    both_ways(|weak| {
        let d = counters();
        let a = Node::new("a", &d[0]);
        let b = Node::new("b", &d[1]);
        let c = Node::new("c", &d[2]);
        set_next(&a, &b);
        set_next(&b, &a);
        *lock(&a) = Some(c.clone());
        let weaks = weak.then(|| [Gc::downgrade(&a), Gc::downgrade(&b), Gc::downgrade(&c)]);
        drop((a, c));

        collect_beside(move || {
            let hc = lock(b.next()).take().expect("c in a's slot");
            drop(b);
            thread::yield_now();
            assert_eq!(drops(d)[2], 0, "c dropped while held");
            hc.check();
            drop(hc);
        });

        assert_eq!(drops(d)[2], 1, "c's last drop left it undropped");
        check_all_freed(d, weaks);
    });
}

/// `Weak::upgrade` racing the collection of a garbage cycle `a <-> b`. The
/// upgrade either fails, or returns a handle whose value (and the rest of
/// the cycle, reached through it) is intact and stays intact while held,
/// across a yield to the collector. The mutator then drops its weak handle,
/// the last one to `a`, racing the collector's release of `a`'s memory.
///
/// Checks: the above, and every value dropped exactly once by the end.
#[test]
fn upgrade_races_collection() {
    for chunk in CHUNKS {
        loom::model(move || {
            gc::set_chunk_for_loom(chunk);
            upgrade_races_collection_model();
        });
    }
}

fn upgrade_races_collection_model() {
    {
        let d = counters();
        let a = Node::new("a", &d[0]);
        let b = Node::new("b", &d[1]);
        set_next(&a, &b);
        set_next(&b, &a);
        // The mutator's `wa` is the only weak handle to `a`: its drop races
        // the collector's release of `a`'s memory (the last weak count).
        let wa = Gc::downgrade(&a);
        let weaks = [Gc::downgrade(&b)];
        drop((a, b));

        collect_while_upgrading(wa, d);

        collect_and_check_all_freed(d, weaks);
    }
}

/// A collection on one thread while another upgrades `wa` (to `a` of the
/// cycle `a <-> b`, whose drops `d[0]` and `d[1]` count): the upgrade
/// either fails, or its handle's value and the rest of the cycle reached
/// through it stay intact while held, across a yield to the collector. The
/// mutator then drops `wa`, racing the collector's release of `a`'s memory.
fn collect_while_upgrading(wa: Weak<Node>, d: &'static [AtomicUsize; 3]) {
    collect_beside(move || {
        if let Some(a) = wa.upgrade() {
            a.next().check();
            thread::yield_now();
            assert!(Gc::ptr_eq(a.next().next(), &a));
            assert_eq!(drops(d)[..2], [0, 0], "upgraded cycle dropped");
        }
        drop(wa);
    });
}

/// `Weak::upgrade` during the verification of a garbage cycle `a <-> b`
/// (`b` allocated first, so checked first), by a mutator that takes a
/// handle to `b` out through the upgraded `a` and then lets go of `a`,
/// weak handle included. If the collector's re-read of `b` (step 3 (c))
/// comes before the clone and its re-read of `a` after the drops, `a`'s
/// word is back to what its mark returned and its weak count back to 1:
/// only the mark, cleared by the upgrade, tells the collector that `a` was
/// reached. Without it, a chunk claims both with plain stores (no
/// candidate has a weak handle any more) and frees `b` under the mutator.
///
/// Checks: `b` and the cycle through it intact while held; everything
/// freed exactly once by the end.
#[test]
fn upgrade_during_the_mark() {
    for chunk in CHUNKS {
        loom::model(move || {
            gc::set_chunk_for_loom(chunk);
            let d = counters();
            let b = Node::new("b", &d[1]);
            let a = Node::new("a", &d[0]);
            set_next(&a, &b);
            set_next(&b, &a);
            let wa = Gc::downgrade(&a);
            drop((a, b));

            collect_beside(move || {
                let hb = wa.upgrade().map(|ha| ha.next().clone());
                drop(wa);
                thread::yield_now();
                if let Some(hb) = hb {
                    assert_eq!(drops(d)[..2], [0, 0], "cycle dropped while held");
                    assert!(Gc::ptr_eq(hb.next().next(), &hb));
                }
            });

            collect_and_check_all_freed_no_weak(d, 2);
        });
    }
}

/// `upgrade_races_collection` with two more garbage cycles, self-loops
/// `x` and `y`, in chunks of three objects: `x, a, b` and `y`. The first
/// chunk claims `x` before it comes to `a`, and when the upgrade of `a`
/// got in first it withdraws all of its claims, `x`'s too; the second
/// chunk claims `y`; the global steps then claim `x` on their own. Each
/// must be destroyed exactly once: the destruction goes by the lists of
/// what the chunks and the global steps claimed, so a withdrawn claim must
/// leave its chunk's list (else `x` is destroyed with `y`'s chunk and again
/// with the global garbage).
///
/// Checks: as `upgrade_races_collection`, and `x` and `y` dropped exactly
/// once each by the collection.
#[test]
fn upgrade_withdraws_a_chunk() {
    loom::model(|| {
        gc::set_chunk_for_loom(3);
        let d = counters();
        let x = Node::new("x", &d[2]);
        set_next(&x, &x);
        let a = Node::new("a", &d[0]);
        let b = Node::new("b", &d[1]);
        set_next(&a, &b);
        set_next(&b, &a);
        let y = Node::new("y", &d[2]);
        set_next(&y, &y);
        let wa = Gc::downgrade(&a);
        let weaks = [Gc::downgrade(&b), Gc::downgrade(&x), Gc::downgrade(&y)];
        drop((a, b, x, y));

        collect_while_upgrading(wa, d);

        // `x` and `y` were garbage all along: that collection freed them.
        assert_eq!(drops(d)[2], 2, "x and y dropped once each");
        gc::collect();
        assert_eq!(drops(d), [1, 1, 2], "drop counts");
        check_weaks(weaks);
    });
}

/// Two threads ask for a collection together. The garbage is a cycle
/// `a <-> b` with a leaf `c` hanging off `a`; the second thread makes it
/// garbage (drops the last external handle) just before its `collect()`,
/// which promises that when it returns, everything unreachable when it was
/// called has been claimed by a collection (no weak handle to it upgrades),
/// and what it claimed itself has been dropped — whether or not the other
/// thread's collection was running. The other collection's drops run
/// without the collector lock, beside the second one's critical part.
///
/// Checks: that promise (with weak handles), no deadlock, exactly-once
/// drops once both threads are done (no collection in the main thread this
/// time: the two threads' collections must do it).
#[test]
fn two_collectors() {
    both_ways(|weak| {
        let d = counters();
        let a = Node::new("a", &d[0]);
        let b = Node::new("b", &d[1]);
        let c = Node::new("c", &d[2]);
        set_next(&a, &b);
        set_next(&b, &a);
        set_side(&a, &c);
        let weaks = weak.then(|| [Gc::downgrade(&a), Gc::downgrade(&b), Gc::downgrade(&c)]);
        let seen = weaks.clone();
        drop((b, c));

        let first = thread::spawn(|| {
            gc::collect();
        });
        let second = thread::spawn(move || {
            a.side().check();
            drop(a);
            gc::collect();
            if let Some(seen) = seen {
                assert!(
                    seen.iter().all(|w| w.upgrade().is_none()),
                    "garbage left unclaimed after collect()"
                );
            }
        });
        first.join().unwrap();
        second.join().unwrap();

        assert_eq!(drops(d), [1, 1, 1], "drop counts");
        match weaks {
            Some(weaks) => check_weaks(weaks),
            None => assert!(gc::get_objects(None).is_empty(), "objects left in the heap"),
        }
    });
}

/// Handles moved between slots during the scan: the change no count
/// reveals. The cycle is `z -> y -> x` (set-once fields) with handles to `z`
/// in two slots: `H2` in `z`'s own slot and `H` in `y`'s. The mutator owns
/// one more handle, `E`, to `z`, moves `H` from `y`'s slot to `x`'s, then
/// `H2` from `z`'s slot to `y`'s (no count changes). The collector traces
/// in allocation order, `z`, `y`, `x`: a move from a traced slot to an
/// untraced one makes it see a handle twice, so that `E` looks like an
/// internal edge — the first move can fool the guess, the second the
/// verification's counting. Only the verification holding every slot guard
/// from its first trace to its final count check keeps `z` from being freed
/// under `E`.
///
/// Checks: nothing is dropped while the mutator holds `E`; everything is
/// freed exactly once by the end.
#[test]
fn handles_moved_between_slots_during_scan() {
    both_ways(|weak| {
        let d = counters();
        let z = Node::new("z", &d[0]);
        let y = Node::new("y", &d[1]);
        let x = Node::new("x", &d[2]);
        set_next(&z, &y);
        set_next(&y, &x);
        *lock(&z) = Some(z.clone());
        *lock(&y) = Some(z.clone());
        let weaks = weak.then(|| [Gc::downgrade(&z), Gc::downgrade(&y), Gc::downgrade(&x)]);
        drop((y, x));

        collect_beside(move || {
            let (y, x) = (z.next(), z.next().next());
            let h = lock(y).take();
            assert!(h.is_some(), "H not in y's slot");
            *lock(x) = h;
            thread::yield_now();
            let h2 = lock(&z).take();
            assert!(h2.is_some(), "H2 not in z's slot");
            *lock(y) = h2;
            thread::yield_now();
            assert_eq!(drops(d), [0, 0, 0], "reachable objects dropped");
            assert!(Gc::ptr_eq(lock(x).as_ref().expect("H lost"), &z));
            assert!(Gc::ptr_eq(lock(y).as_ref().expect("H2 lost"), &z));
            drop(z);
        });

        check_all_freed(d, weaks);
    });
}

/// A value whose `Trace` impl is hand-written without the promise (not
/// structural): the collector never frees a cycle through it, and reports
/// the cycles it finds.
struct Loose {
    dropped: AtomicBool,
    drops: &'static AtomicUsize,
    /// A handle to itself (a self-cycle) until a thread takes it out.
    me: Mutex<Option<Gc<Loose>>>,
    /// As [`Node::touch`].
    touch: loom::sync::atomic::AtomicUsize,
}

impl Drop for Loose {
    fn drop(&mut self) {
        assert!(!self.dropped.swap(true, SeqCst), "loose: dropped twice");
        self.drops.fetch_add(1, SeqCst);
    }
}

impl Trace for Loose {
    fn trace(&self, v: &mut Visitor<'_>) {
        assert!(!self.dropped.load(SeqCst), "loose: traced after its drop");
        self.touch.fetch_add(1, SeqCst);
        self.me.trace(v);
    }
}

/// Locks `loose.me` as [`lock`] does.
fn lock_loose(loose: &Loose) -> MutexGuard<'_, Option<Gc<Loose>>> {
    assert!(!loose.dropped.load(SeqCst), "loose: used after its drop");
    loop {
        if let Ok(g) = loose.me.try_lock() {
            loose.touch.fetch_add(1, SeqCst);
            return g;
        }
        thread::yield_now();
    }
}

/// The report of uncollectable cycles (a collection that meets a
/// non-structural value) racing the last drops of its object, under
/// `SAVEALL`, which makes the report take a strong reference to what it
/// finds. `u` is a non-structural self-cycle; the mutator owns one more
/// handle. With `free`, it takes the self-handle out and drops both
/// handles (`u`'s count reaches zero, maybe while the collection owns it:
/// a zombie); without, it only drops its own (`u` is left an uncollectable
/// self-cycle, which the report may save while the count changes).
///
/// Breaks it catches: the report taking its references with a plain
/// increment instead of an upgrade that fails on a zero count (it brings a
/// zombie back: the block is freed twice, and the process aborts). It also
/// found a real bug: `ObjectRef::try_new`, which the report uses, released
/// a count on failure that it never took (the counts at the end: strong
/// 2^62 - 1).
///
/// Checks: no use after drop; `u` dropped exactly once by the end (after
/// `clear_garbage` and, if the cycle is left, breaking it by hand); its
/// weak handle holds the last count.
#[test]
fn report_races_the_last_drop() {
    for chunk in CHUNKS {
        for free in [true, false] {
            loom::model(move || {
                gc::set_chunk_for_loom(chunk);
                gc::set_debug(gc::DebugFlags::SAVEALL);
                let d = counters();
                let u = Gc::new(Loose {
                    dropped: AtomicBool::new(false),
                    drops: &d[0],
                    me: Mutex::new(None),
                    touch: loom::sync::atomic::AtomicUsize::new(0),
                });
                *lock_loose(&u) = Some(u.clone());
                let w = Gc::downgrade(&u);

                collect_beside(move || {
                    if free {
                        let me = lock_loose(&u).take();
                        assert!(me.is_some(), "the self-handle went");
                        drop(me);
                    }
                    drop(u);
                });

                gc::set_debug(gc::DebugFlags::empty());
                gc::clear_garbage();
                if let Some(u) = w.upgrade() {
                    assert!(!free, "freed cycle still alive");
                    let me = lock_loose(&u).take();
                    drop((me, u));
                }
                gc::collect();
                assert_eq!(d[0].load(SeqCst), 1, "drop count");
                assert!(w.upgrade().is_none(), "a freed value upgraded");
                assert_eq!(
                    (w.strong_count(), w.weak_count_for_loom()),
                    (0, 1),
                    "counts"
                );
            });
        }
    }
}
