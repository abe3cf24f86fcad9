//! The automatic schedule on both heaps: cyclic garbage made steadily is
//! found without an explicit `collect()`, and a stable old generation does
//! not get scanned again while only short-lived objects come and go. The
//! process-wide heap's tests change its settings, so they run one at a
//! time (`SYNC`), in this binary of their own.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use ouro::{Gc, Trace, gc};

const SCALE: usize = if cfg!(miri) { 1 } else { 20 };

thread_local! {
    static DROPS: Cell<usize> = const { Cell::new(0) };
}

struct Counted;

impl Drop for Counted {
    fn drop(&mut self) {
        DROPS.with(|d| d.set(d.get() + 1));
    }
}

#[derive(Trace)]
struct Node {
    next: RefCell<Option<Gc<Node>>>,
    #[trace(skip)]
    _c: Counted,
}

fn node(next: Option<Gc<Node>>) -> Gc<Node> {
    Gc::new(Node {
        next: RefCell::new(next),
        _c: Counted,
    })
}

fn drops() -> usize {
    DROPS.with(Cell::get)
}

/// On a thread of its own (a fresh heap with the default settings).
fn on_fresh_thread(f: impl FnOnce() + Send + 'static) {
    std::thread::spawn(f).join().unwrap();
}

#[test]
fn thread_heap_collects_cycles_made_steadily_without_collect() {
    on_fresh_thread(|| {
        let pairs = 5_000 * SCALE;
        let mut most_waiting = 0;
        for i in 0..pairs {
            let a = node(None);
            let b = node(Some(a.clone()));
            *a.next.borrow_mut() = Some(b);
            most_waiting = most_waiting.max(2 * (i + 1) - drops());
        }
        // Young garbage waits for a young collection at most: the young
        // threshold (700, at most 16 times that while collections find
        // nothing), never for the program to call `collect()`.
        assert!(drops() > 0, "no automatic collection found the cycles");
        assert!(
            most_waiting <= 2 * 700 * 16,
            "{most_waiting} garbage objects waited at once"
        );
        assert!(gc::get_stats()[0].collections > 0);
    });
}

#[test]
fn thread_heap_collection_finding_much_garbage_keeps_young_collections_at_threshold0() {
    on_fresh_thread(|| {
        // Older collections come after every other younger one here, so
        // that the test does not have to wait for the default's 121 young
        // collections.
        gc::set_threshold([700, 1, 1]);
        // A ring built node by node: the young collections meanwhile find
        // nothing and back off. Dropped, it is garbage only an older
        // collection sees (its first nodes left generation 0 long ago).
        let ring = 10 * 700 + 1;
        let first = node(None);
        let mut last = first.clone();
        for _ in 1..ring {
            last = node(Some(last));
        }
        *first.next.borrow_mut() = Some(last);
        let (dropped, backed_off) = (drops(), gc::get_stats());
        drop(first);
        // The automatic collections find it (no explicit `collect()`: those
        // do not steer the schedule).
        let mut kept = Vec::new();
        while drops() - dropped < ring {
            kept.push(node(None));
            assert!(
                kept.len() < 1 << 20,
                "no automatic collection found the ring"
            );
        }
        let young = |s: [gc::GenerationStats; 3]| s[0].collections + s[1].collections;
        assert!(young(gc::get_stats()) > young(backed_off));
        // All they scanned was mostly garbage: young collections stay near
        // threshold0 instead of backing off again on their own silence
        // (backed off, 16 x 700 allocations would run none).
        let before = young(gc::get_stats());
        kept.extend((0..8 * 700 + 1).map(|_| node(None)));
        let ran = young(gc::get_stats()) - before;
        assert!(
            ran >= 7,
            "{ran} young collections in 8 x threshold0 allocations"
        );
        drop(kept);
    });
}

#[test]
fn thread_heap_explicit_collections_do_not_move_the_young_threshold() {
    on_fresh_thread(|| {
        let young = || gc::get_stats()[0].collections;
        // Live nodes only: the young collections find nothing and back off
        // to 16 x 700 (after 700, 1400, 2800 and 5600 more allocations).
        let mut kept: Vec<_> = (0..30 * 700).map(|_| node(None)).collect();
        assert_eq!(young(), 4);
        // A program that collects right after dropping its cycles: the
        // explicit collection finds garbage ...
        for _ in 0..100 {
            let a = node(None);
            *a.next.borrow_mut() = Some(a.clone());
        }
        assert_eq!(gc::collect(), 100);
        // ... which says nothing about what automatic collections would
        // find: the young threshold stays backed off.
        kept.extend((0..16 * 700).map(|_| node(None)));
        assert_eq!(young(), 4, "the young threshold came back to 700");
        kept.push(node(None));
        assert_eq!(young(), 5);
        // Fully backed off, three young collections pass: generation 0 goes
        // to the middle generation unexamined ...
        assert!(gc::get_objects(Some(1)).len() >= 16 * 700);
        while young() < 8 {
            kept.push(node(None));
        }
        // ... and the fourth examines it, finds nothing, and moves its
        // survivors straight into the oldest generation, the passed
        // batches along.
        assert_eq!(gc::get_objects(Some(1)).len(), 0);
        assert!(gc::get_objects(Some(2)).len() >= 4 * 16 * 700);
    });
}

/// Young collections made while fully backed off, in order: whether each
/// found a garbage cycle made in its own batch (`collections` counts the
/// young collections started so far; `allocate` makes one live, acyclic
/// object; `cycle` makes a garbage cycle and says whether it is freed or
/// collected yet). Then, allocating on, no cycle waits for a full
/// collection: those of the passed batches go within a few thousand
/// allocations too, with no explicit `collect()`.
fn cycle_found_in_each_batch(
    collections: &dyn Fn() -> usize,
    allocate: &mut dyn FnMut(),
    cycle: &dyn Fn() -> Box<dyn Fn() -> bool>,
) -> Vec<bool> {
    // Live objects only: the young threshold doubles four times (after
    // collections finding nothing), then stays backed off.
    while collections() < 4 {
        allocate();
    }
    let mut gone = Vec::new();
    let found = (0..8)
        .map(|_| {
            let n = collections();
            gone.push(cycle());
            while collections() == n {
                allocate();
            }
            gone.last().unwrap()()
        })
        .collect();
    // Back at threshold0, a middle collection comes within `threshold1 + 1`
    // young collections and examines the passed batches.
    let mut more = 0;
    while !gone.iter().all(|g| g()) {
        allocate();
        more += 1;
        assert!(
            more < 12 * 700 * 2,
            "a passed cycle waits for a full collection"
        );
    }
    found
}

/// While fully backed off, three young collections pass unexamined (their
/// garbage goes to generation 1 with them); the fourth examines, finds its
/// cycle, and the young threshold comes back: every later one examines.
const PASS_PATTERN: [bool; 8] = [false, false, false, true, true, true, true, true];

/// A callback counting the young collections that start on this thread's
/// heap: its id and the count.
fn count_young_collections() -> (gc::CallbackId, Rc<Cell<usize>>) {
    let young = Rc::new(Cell::new(0));
    let y = young.clone();
    let id = gc::add_callback(move |i| {
        if i.phase == gc::Phase::Start && i.generation == 0 {
            y.set(y.get() + 1);
        }
    });
    (id, young)
}

/// A garbage two-node cycle; says whether it was collected yet.
fn garbage_cycle() -> Box<dyn Fn() -> bool> {
    let a = node(None);
    *a.next.borrow_mut() = Some(node(Some(a.clone())));
    let w = Gc::downgrade(&a);
    Box::new(move || w.upgrade().is_none())
}

#[test]
fn thread_heap_backed_off_young_collections_examine_one_time_in_four() {
    on_fresh_thread(|| {
        let (id, young) = count_young_collections();
        let mut kept = Vec::new();
        let found = cycle_found_in_each_batch(
            &|| young.get(),
            &mut || kept.push(node(None)),
            &garbage_cycle,
        );
        assert_eq!(found, PASS_PATTERN);
        gc::remove_callback(id);
        assert_eq!(gc::collect(), 0, "nothing was left for a full collection");
        drop(kept);
    });
}

/// A program builds a large structure (its young collections find nothing,
/// back off fully and start to pass), then makes only cyclic garbage: the
/// cycles of the batches passed at the switch are found by the next middle
/// collection, not left for a full one, which a stable heap never gets.
/// (`young` counts the young collections started so far.)
fn phase_switch_leaves_no_garbage_waiting(
    young: &dyn Fn() -> usize,
    allocate: &mut dyn FnMut(),
    cycle: &dyn Fn() -> Box<dyn Fn() -> bool>,
    collect: &dyn Fn(),
) {
    for _ in 0..100_000 {
        allocate();
    }
    collect();
    let before = young();
    let mut first = Vec::new();
    while young() < before + 40 {
        let gone = cycle();
        if first.len() < 20_000 {
            first.push(gone);
        }
    }
    let waiting = first.iter().filter(|gone| !gone()).count();
    assert_eq!(waiting, 0, "garbage cycles of the first batches still wait");
}

#[test]
fn thread_heap_garbage_passed_at_a_phase_switch_does_not_wait_for_a_full_collection() {
    on_fresh_thread(|| {
        let (id, young) = count_young_collections();
        let mut kept = Vec::new();
        phase_switch_leaves_no_garbage_waiting(
            &|| young.get(),
            &mut || kept.push(node(None)),
            &garbage_cycle,
            &|| {
                gc::collect();
            },
        );
        gc::remove_callback(id);
        drop(kept);
    });
}

#[test]
fn thread_heap_stable_old_generation_and_young_churn_run_no_full_collection() {
    on_fresh_thread(|| {
        // Small thresholds, so that middle collections come often and the
        // oldest generation's count passes its threshold many times.
        gc::set_threshold([100, 2, 2]);
        // A long-lived heap, then one full collection (the schedule measures
        // growth from what survives it).
        let old: Vec<_> = (0..500 * SCALE).map(|_| node(None)).collect();
        gc::collect();
        let started = std::rc::Rc::new(Cell::new([0usize; 3]));
        let seen = started.clone();
        gc::add_callback(move |info| {
            if info.phase == gc::Phase::Stop {
                let mut s = seen.get();
                s[info.generation] += 1;
                seen.set(s);
            }
        });
        let before = gc::get_stats();
        // Short-lived lists of 20% of the old heap, partly promoted by young
        // and middle collections, then freed by reference count. CPython's
        // rule would scan the old heap again every time the promoted ones
        // added up to 25% of it.
        for _ in 0..20 {
            let mut head = None;
            for _ in 0..100 * SCALE {
                head = Some(node(head));
            }
            drop(head);
        }
        let after = gc::get_stats();
        assert_eq!(after[2].collections, before[2].collections);
        let young = after[0].collections - before[0].collections;
        let middle = after[1].collections - before[1].collections;
        if !cfg!(miri) {
            assert!(young > 0, "no young collection");
        }
        // Callbacks see every automatic collection that `get_stats` counts.
        assert_eq!(started.get(), [young, middle, 0]);
        assert_eq!(old.len(), 500 * SCALE);
    });
}

#[test]
fn thread_heap_full_collection_runs_once_the_live_heap_grows_by_a_quarter() {
    on_fresh_thread(|| {
        gc::set_threshold([10, 2, 2]);
        let mut live: Vec<_> = (0..500 * SCALE).map(|_| node(None)).collect();
        gc::collect();
        let full = gc::get_stats()[2].collections;
        while gc::get_stats()[2].collections == full {
            assert!(
                live.len() < 5_000 * SCALE,
                "the heap grew tenfold, no full collection"
            );
            live.push(node(None));
        }
        assert!(
            live.len() > 625 * SCALE,
            "full collection at {} live",
            live.len()
        );
    });
}

#[test]
fn thread_heap_threshold_settings_keep_their_meaning() {
    on_fresh_thread(|| {
        assert_eq!(gc::get_threshold(), [700, 10, 10]);
        gc::set_threshold([50, 3, 4]);
        assert_eq!(gc::get_threshold(), [50, 3, 4]);
        // `get_count()[0]`: tracked allocations minus deallocations since
        // the last young collection.
        gc::collect();
        let keep: Vec<_> = (0..30).map(|_| node(None)).collect();
        assert_eq!(gc::get_count()[0], 30);
        drop(keep);
        assert_eq!(gc::get_count()[0], 0);
        // A threshold0 of 0 turns automatic collection off.
        gc::set_threshold([0, 3, 4]);
        let before = gc::get_stats()[0].collections;
        let keep: Vec<_> = (0..2_000).map(|_| node(None)).collect();
        assert_eq!(gc::get_stats()[0].collections, before);
        assert_eq!(gc::get_count()[0], 2_000);
        drop(keep);
        // So does `disable()`, until `enable()`.
        gc::set_threshold([50, 3, 4]);
        gc::disable();
        let keep: Vec<_> = (0..200).map(|_| node(None)).collect();
        assert_eq!(gc::get_stats()[0].collections, before);
        gc::enable();
        let more: Vec<_> = (0..60).map(|_| node(None)).collect();
        assert!(gc::get_stats()[0].collections > before);
        drop((keep, more));
    });
}

// The process-wide heap.

static SYNC: Mutex<()> = Mutex::new(());

fn sync_lock() -> MutexGuard<'static, ()> {
    SYNC.lock().unwrap_or_else(|p| p.into_inner())
}

static SYNC_DROPS: AtomicUsize = AtomicUsize::new(0);

struct SyncCounted;

impl Drop for SyncCounted {
    fn drop(&mut self) {
        SYNC_DROPS.fetch_add(1, Ordering::Relaxed);
    }
}

#[derive(Trace)]
struct SyncNode {
    next: Mutex<Option<ouro::sync::Gc<SyncNode>>>,
    #[trace(skip)]
    _c: SyncCounted,
}

fn sync_node(next: Option<ouro::sync::Gc<SyncNode>>) -> ouro::sync::Gc<SyncNode> {
    ouro::sync::Gc::new(SyncNode {
        next: Mutex::new(next),
        _c: SyncCounted,
    })
}

#[test]
fn sync_heap_collects_cycles_made_steadily_without_collect() {
    use ouro::sync::gc;
    let _l = sync_lock();
    gc::enable();
    gc::set_threshold([700, 10, 10]);
    let dropped = SYNC_DROPS.load(Ordering::Relaxed);
    let before = gc::get_stats()[0].collections;
    let pairs = 5_000 * SCALE;
    for _ in 0..pairs {
        let a = sync_node(None);
        let b = sync_node(Some(a.clone()));
        *a.next.lock().unwrap() = Some(b);
    }
    // The automatic collections' garbage is dropped by the background
    // thread: wait for it, without collecting.
    gc::wait_for_drops();
    let freed = SYNC_DROPS.load(Ordering::Relaxed) - dropped;
    assert!(gc::get_stats()[0].collections > before);
    // Everything but what the last few young thresholds' worth left.
    assert!(
        freed + 2 * 700 * 16 * 2 >= 2 * pairs,
        "{freed} of {} garbage objects freed",
        2 * pairs
    );
    gc::collect();
}

#[test]
fn sync_heap_stable_old_generation_and_young_churn_run_no_full_collection() {
    use ouro::sync::gc;
    let _l = sync_lock();
    gc::enable();
    gc::set_threshold([100, 2, 2]);
    let old: Vec<_> = (0..500 * SCALE).map(|_| sync_node(None)).collect();
    gc::collect();
    gc::wait_for_drops();
    let before = gc::get_stats();
    for _ in 0..20 {
        let mut head = None;
        for _ in 0..100 * SCALE {
            head = Some(sync_node(head));
        }
        drop(head);
    }
    gc::wait_for_drops();
    let after = gc::get_stats();
    assert_eq!(after[2].collections, before[2].collections);
    if !cfg!(miri) {
        assert!(after[0].collections > before[0].collections);
    }
    gc::set_threshold([700, 10, 10]);
    drop(old);
    gc::collect();
}

#[test]
fn sync_heap_young_collection_into_the_oldest_generation_takes_generation_1_along() {
    use ouro::sync::gc;
    let _l = sync_lock();
    gc::enable();
    // No middle collection: generation 1 keeps what the young collections
    // promote until one of them, fully backed off, promotes into 2.
    let t0 = if cfg!(miri) { 2 } else { 100 };
    gc::set_threshold([t0, 1000, 1000]);
    gc::collect();
    let nodes = |g| {
        gc::get_objects(Some(g))
            .iter()
            .filter(|o| o.downcast::<SyncNode>().is_some())
            .count()
    };
    // Nothing is garbage: the young threshold doubles at every collection
    // (t0, 2 t0, 4 t0, 8 t0); then three collections pass (into 1), and
    // the eighth examines and promotes into 2.
    let young = || gc::get_stats()[0].collections;
    let start = young();
    let mut live = Vec::new();
    while young() - start < 8 {
        live.push(sync_node(None));
        assert!(live.len() < 1000 * t0, "no eighth young collection");
    }
    gc::wait_for_drops();
    // What the first collections and the passes left in generation 1 went
    // on to 2 with the first survivors promoted there (older than them, it
    // goes first: each shard's lists, oldest first, stay in allocation
    // order).
    assert_eq!(nodes(1), 0);
    assert!(nodes(2) >= 63 * t0, "{}", nodes(2));
    assert_eq!(nodes(0) + nodes(2), live.len());
    gc::set_threshold([700, 10, 10]);
    drop(live);
    gc::collect();
}

/// Young collections started on the process-wide heap (counted by the
/// callback of [`sync_default_counting_young`]).
static SYNC_YOUNG: AtomicUsize = AtomicUsize::new(0);

/// The process-wide heap at its default settings with nothing waiting, and
/// a callback counting its young collections in `SYNC_YOUNG`: its id.
fn sync_default_counting_young() -> ouro::sync::gc::CallbackId {
    use ouro::sync::gc;
    gc::enable();
    gc::set_threshold([700, 10, 10]);
    gc::collect();
    gc::wait_for_drops();
    gc::add_callback(|i| {
        if i.phase == gc::Phase::Start && i.generation == 0 {
            SYNC_YOUNG.fetch_add(1, Ordering::Relaxed);
        }
    })
}

/// A garbage two-node cycle on the process-wide heap; says whether a
/// collection found it yet (it cleared its weak references when it claimed
/// it; the drops may still be on their way).
fn sync_garbage_cycle() -> Box<dyn Fn() -> bool> {
    let a = sync_node(None);
    *a.next.lock().unwrap() = Some(sync_node(Some(a.clone())));
    let w = ouro::sync::Gc::downgrade(&a);
    Box::new(move || w.upgrade().is_none())
}

#[test]
fn sync_heap_backed_off_young_collections_examine_one_time_in_four() {
    use ouro::sync::gc;
    let _l = sync_lock();
    let id = sync_default_counting_young();
    let start = SYNC_YOUNG.load(Ordering::Relaxed);
    let mut kept = Vec::new();
    let found = cycle_found_in_each_batch(
        &|| SYNC_YOUNG.load(Ordering::Relaxed) - start,
        &mut || kept.push(sync_node(None)),
        &sync_garbage_cycle,
    );
    gc::remove_callback(id);
    assert_eq!(found, PASS_PATTERN);
    gc::wait_for_drops();
    assert_eq!(gc::collect(), 0, "nothing was left for a full collection");
    drop(kept);
    gc::collect();
}

#[test]
fn sync_heap_garbage_passed_at_a_phase_switch_does_not_wait_for_a_full_collection() {
    use ouro::sync::gc;
    let _l = sync_lock();
    let id = sync_default_counting_young();
    let mut kept = Vec::new();
    phase_switch_leaves_no_garbage_waiting(
        &|| SYNC_YOUNG.load(Ordering::Relaxed),
        &mut || kept.push(sync_node(None)),
        &sync_garbage_cycle,
        &|| {
            gc::collect();
            gc::wait_for_drops();
        },
    );
    gc::remove_callback(id);
    drop(kept);
    gc::collect();
}
