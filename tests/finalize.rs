//! Finalizers, resurrection and what the collector leaves behind, in the
//! style of CPython's `test_gc`: a finalizer sees its whole cycle intact
//! (PEP 442) and may resurrect it; a resurrected object is freed exactly
//! once when it dies again, and its weak handles work while it lives; every
//! object the collector frees gives its memory back, whichever path it took
//! (no finalizer, finalizer, resurrection, `SAVEALL`, a panic, a handle that
//! a `Drop` moves out, a weak handle that outlives the collection).

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};

use ouro::{Finalize, Gc, Trace, Weak, gc};

/// Objects of this thread's heap whose memory is not freed yet. The facade
/// has no memory statistics for the thread's heap; the engine's count is
/// the exact way to see that a dead object's memory went back to the pool.
fn live_objects() -> usize {
    ouro_cyclegc::raw::live_objects()
}

/// The message of a panic payload.
fn message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else {
        String::from("(not a string)")
    }
}

thread_local! {
    static DROPS: Cell<usize> = const { Cell::new(0) };
    /// What the finalizers read: `100 * own value + peer's value`.
    static SEEN: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
    /// Where resurrecting finalizers put their peers.
    static SAVED: RefCell<Vec<Gc<Node>>> = const { RefCell::new(Vec::new()) };
}

fn drops() -> usize {
    DROPS.with(Cell::get)
}

fn seen() -> Vec<u32> {
    let mut v = SEEN.with(|s| s.borrow().clone());
    v.sort_unstable();
    v
}

fn take_saved() -> Vec<Gc<Node>> {
    SAVED.with(|s| std::mem::take(&mut *s.borrow_mut()))
}

/// Starts a test on this thread's heap with its garbage collected, counters
/// zeroed and automatic collections off (so every count below is exact);
/// returns the number of live objects to come back to.
fn fresh() -> usize {
    gc::disable();
    gc::collect();
    DROPS.with(|d| d.set(0));
    SEEN.with(|s| s.borrow_mut().clear());
    drop(take_saved());
    live_objects()
}

/// Counts its drops; a skipped field.
struct Tally;

impl Drop for Tally {
    fn drop(&mut self) {
        DROPS.with(|d| d.set(d.get() + 1));
    }
}

/// An object of a two-object cycle, or of a self-loop (its peer is itself).
#[derive(Trace)]
#[trace(finalize)]
struct Node {
    value: u32,
    /// The finalizer resurrects the peer (and so the whole cycle).
    resurrect: bool,
    #[trace(skip)]
    _tally: Tally,
    peer: RefCell<Option<Gc<Node>>>,
}

impl Finalize for Node {
    fn finalize(&self) {
        // The whole cycle is intact: the peer's value (or its own, through
        // a handle, in a self-loop) can be read, and a handle cloned.
        let peer = self.peer.borrow().clone().expect("the cycle is intact");
        SEEN.with(|s| s.borrow_mut().push(100 * self.value + peer.value));
        if self.resurrect {
            SAVED.with(|s| s.borrow_mut().push(peer));
        }
    }
}

fn node(value: u32, resurrect: bool) -> Gc<Node> {
    Gc::new(Node {
        value,
        resurrect,
        _tally: Tally,
        peer: RefCell::new(None),
    })
}

/// A two-object cycle `1 <-> 2`.
fn pair(resurrect: bool) -> (Gc<Node>, Gc<Node>) {
    let (a, b) = (node(1, resurrect), node(2, resurrect));
    *a.peer.borrow_mut() = Some(b.clone());
    *b.peer.borrow_mut() = Some(a.clone());
    (a, b)
}

/// A self-loop `1 -> 1`.
fn self_loop(resurrect: bool) -> Gc<Node> {
    let a = node(1, resurrect);
    *a.peer.borrow_mut() = Some(a.clone());
    a
}

/// Defect 3 (PEP 442): a finalizer dereferenced a peer of its cycle and
/// panicked "from inside Trace::trace".
#[test]
fn finalizer_reads_its_cycle_peer() {
    let start = fresh();
    let (a, b) = pair(false);
    drop((a, b));
    assert_eq!(gc::collect(), 2);
    assert_eq!(
        seen(),
        [102, 201],
        "each finalizer read itself and its peer"
    );
    assert_eq!(drops(), 2);
    assert_eq!(live_objects(), start);
}

/// Defect 3, self-loop: the finalizer reads its own value through the
/// handle it holds to itself.
#[test]
fn finalizer_reads_itself_through_its_self_loop() {
    let start = fresh();
    drop(self_loop(false));
    assert_eq!(gc::collect(), 1);
    assert_eq!(seen(), [101]);
    assert_eq!(drops(), 1);
    assert_eq!(live_objects(), start);
}

/// Resurrection: nothing is dropped; when the cycle dies again it is found
/// again, not finalized again, dropped and freed exactly once, even with a
/// weak handle that outlives both collections (defect 2: the second
/// collection left the objects marked as scanned, so the weak handle's drop
/// never freed the memory).
#[test]
fn resurrected_cycle_is_freed_exactly_once_when_it_dies_again() {
    let start = fresh();
    let (a, b) = pair(true);
    let weak = Gc::downgrade(&a);
    drop((a, b));
    assert_eq!(gc::collect(), 2);
    assert_eq!(drops(), 0, "resurrected: nothing dropped");
    let saved = take_saved();
    assert_eq!(saved.len(), 2);
    assert!(saved.iter().all(Gc::is_finalized));
    assert_eq!(
        saved[0].value + saved[1].value,
        3,
        "resurrected values read"
    );
    drop(saved);
    assert_eq!(gc::collect(), 2);
    assert_eq!(drops(), 2);
    assert_eq!(seen(), [102, 201], "finalizers ran once");
    assert_eq!(gc::collect(), 0);
    assert_eq!(drops(), 2, "dropped exactly once");
    assert!(weak.upgrade().is_none());
    assert_eq!(
        live_objects(),
        start + 1,
        "the weak handle holds one header"
    );
    drop(weak);
    assert_eq!(live_objects(), start);
}

/// The same for a resurrected self-loop.
#[test]
fn resurrected_self_loop_is_freed_exactly_once_when_it_dies_again() {
    let start = fresh();
    let a = self_loop(true);
    let weak = Gc::downgrade(&a);
    drop(a);
    assert_eq!(gc::collect(), 1);
    assert_eq!(drops(), 0);
    drop(take_saved());
    assert_eq!(gc::collect(), 1);
    assert_eq!((seen().len(), drops()), (1, 1));
    drop(weak);
    assert_eq!(live_objects(), start);
}

/// Defect 9: after a resurrection, weak handles to the living object
/// upgrade. The flag lives in the object, not in the handles, so the
/// handles made before the collection upgrade again too (in CPython those
/// stay cleared); they fail only while the collector holds the object as
/// garbage, and for good once it is dropped.
#[test]
fn weak_handles_of_a_resurrected_object_upgrade() {
    let start = fresh();
    let (a, b) = pair(true);
    let old = Gc::downgrade(&a);
    drop((a, b));
    assert_eq!(gc::collect(), 2);
    let saved = take_saved();
    let new = Gc::downgrade(&saved[0]);
    let up = new
        .upgrade()
        .expect("a new weak handle of a live object upgrades");
    assert!(Gc::ptr_eq(&up, &saved[0]));
    assert!(old.upgrade().is_some(), "the resurrected object lives");
    drop((up, saved));
    assert_eq!(gc::collect(), 2);
    assert!(new.upgrade().is_none() && old.upgrade().is_none());
    drop((new, old));
    assert_eq!(live_objects(), start);
}

/// Defect 2's reproducer: a derived self-cycle without a finalizer whose
/// weak handle outlives the collection. Every object's memory must come
/// back (it grew by 4 KiB per iteration).
#[test]
fn weak_handle_outliving_a_collection_frees_the_memory() {
    #[derive(Trace)]
    struct Big {
        me: RefCell<Option<Gc<Big>>>,
        #[trace(skip)]
        _tally: Tally,
        pad: [u8; 4096],
    }
    let start = fresh();
    let rounds = if cfg!(miri) { 4 } else { 200 };
    for _ in 0..rounds {
        let b = Gc::new(Big {
            me: RefCell::new(None),
            _tally: Tally,
            pad: [7; 4096],
        });
        *b.me.borrow_mut() = Some(b.clone());
        let weak: Weak<Big> = Gc::downgrade(&b);
        drop(b);
        assert_eq!(gc::collect(), 1);
        assert!(weak.upgrade().is_none());
        drop(weak);
    }
    assert_eq!(drops(), rounds);
    assert!(gc::get_objects(None).is_empty());
    assert_eq!(live_objects(), start);
}

thread_local! {
    static ESCAPED: RefCell<Vec<Gc<Escaper>>> = const { RefCell::new(Vec::new()) };
}

/// Moves its peer handle out of the garbage when dropped.
#[derive(Trace)]
struct Escaper {
    #[trace(skip)]
    _tally: Tally,
    peer: RefCell<Option<Gc<Escaper>>>,
}

impl Drop for Escaper {
    fn drop(&mut self) {
        if let Some(p) = self.peer.get_mut().take() {
            ESCAPED.with(|e| e.borrow_mut().push(p));
        }
    }
}

/// A handle that a `Drop` moves out of the garbage outlives the collection;
/// it reaches a dropped value (its deref panics) and its drop frees the
/// memory (defect 2: it did not).
#[test]
fn handle_moved_out_by_a_drop_frees_the_memory() {
    let start = fresh();
    let a = Gc::new(Escaper {
        _tally: Tally,
        peer: RefCell::new(None),
    });
    let b = Gc::new(Escaper {
        _tally: Tally,
        peer: RefCell::new(Some(a.clone())),
    });
    *a.peer.borrow_mut() = Some(b);
    drop(a);
    assert_eq!(gc::collect(), 2);
    assert_eq!(drops(), 2);
    let escaped = ESCAPED.with(|e| std::mem::take(&mut *e.borrow_mut()));
    assert_eq!(escaped.len(), 2);
    let err = panic::catch_unwind(AssertUnwindSafe(|| escaped[0].peer.borrow().is_some()))
        .expect_err("the value is gone");
    assert!(
        message(&*err).contains("already dropped"),
        "{}",
        message(&*err)
    );
    assert_eq!(live_objects(), start + 2);
    drop(escaped);
    assert_eq!(live_objects(), start);
}

/// Reads its peer's value when dropped.
#[derive(Trace)]
struct Peeker {
    value: u32,
    peer: RefCell<Option<Gc<Peeker>>>,
}

impl Drop for Peeker {
    fn drop(&mut self) {
        if let Some(p) = self.peer.get_mut().take() {
            std::hint::black_box(p.value);
        }
    }
}

/// The `Drop` of a garbage object that reads another one of the same
/// garbage panics with the "already dropped" message (not the one about
/// `Trace::trace`), `collect()` propagates it, and everything is freed.
#[test]
fn drop_reading_a_dead_peer_panics_with_already_dropped() {
    let start = fresh();
    let a = Gc::new(Peeker {
        value: 1,
        peer: RefCell::new(None),
    });
    let b = Gc::new(Peeker {
        value: 2,
        peer: RefCell::new(Some(a.clone())),
    });
    *a.peer.borrow_mut() = Some(b);
    drop(a);
    let err = panic::catch_unwind(gc::collect).expect_err("a Drop panicked");
    let msg = message(&*err);
    assert!(msg.contains("already dropped"), "{msg}");
    assert!(!msg.contains("Trace::trace"), "{msg}");
    assert_eq!(gc::collect(), 0);
    assert_eq!(live_objects(), start);
}

thread_local! {
    static FINALIZE_PANICS: Cell<bool> = const { Cell::new(false) };
}

/// A finalizer that panics.
#[derive(Trace)]
#[trace(finalize)]
struct Grumpy {
    #[trace(skip)]
    _tally: Tally,
    me: RefCell<Option<Gc<Grumpy>>>,
}

impl Finalize for Grumpy {
    fn finalize(&self) {
        assert!(self.me.borrow().is_some());
        FINALIZE_PANICS.with(|p| p.set(true));
        panic!("finalizer failed");
    }
}

/// A panicking finalizer: the panic reaches the caller of `collect()`, and
/// the cycle is still dropped and freed.
#[test]
fn cycle_with_a_panicking_finalizer_is_freed() {
    let start = fresh();
    let g = Gc::new(Grumpy {
        _tally: Tally,
        me: RefCell::new(None),
    });
    *g.me.borrow_mut() = Some(g.clone());
    let weak = Gc::downgrade(&g);
    drop(g);
    let err = panic::catch_unwind(gc::collect).expect_err("the finalizer panicked");
    assert_eq!(message(&*err), "finalizer failed");
    assert!(FINALIZE_PANICS.with(Cell::get));
    assert_eq!(drops(), 1);
    drop(weak);
    assert_eq!(live_objects(), start);
}

/// An object of a cycle without a finalizer.
#[derive(Trace)]
struct Plain {
    value: u32,
    #[trace(skip)]
    _tally: Tally,
    peer: RefCell<Option<Gc<Plain>>>,
}

/// `SAVEALL` keeps the garbage readable; once released, it is collected and
/// freed.
#[test]
fn saved_garbage_is_readable_then_freed() {
    let start = fresh();
    let plain = |value| {
        Gc::new(Plain {
            value,
            _tally: Tally,
            peer: RefCell::new(None),
        })
    };
    let (a, b) = (plain(1), plain(2));
    *a.peer.borrow_mut() = Some(b.clone());
    *b.peer.borrow_mut() = Some(a.clone());
    drop((a, b));
    gc::set_debug(gc::DebugFlags::SAVEALL);
    assert_eq!(gc::collect(), 2);
    gc::set_debug(gc::DebugFlags::empty());
    let mut values: Vec<u32> = gc::garbage()
        .iter()
        .map(|o| o.downcast::<Plain>().expect("a Plain").value)
        .collect();
    values.sort_unstable();
    assert_eq!(values, [1, 2]);
    assert_eq!(drops(), 0);
    gc::clear_garbage();
    assert_eq!(gc::collect(), 2);
    assert_eq!(drops(), 2);
    assert_eq!(live_objects(), start);
}

/// The thread-safe heap: the same PEP 442 and resurrection guarantees.
mod shared {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Mutex, MutexGuard};

    use ouro::sync::{Gc, gc};
    use ouro::{Finalize, Trace};

    /// The heap is process-wide: a resurrection in one test would keep
    /// another test's garbage alive for a collection. One at a time.
    fn serial() -> MutexGuard<'static, ()> {
        static SERIAL: Mutex<()> = Mutex::new(());
        SERIAL.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What one test observes.
    struct Log {
        seen: Mutex<Vec<u32>>,
        saved: Mutex<Vec<Gc<Node>>>,
        drops: AtomicUsize,
    }

    impl Log {
        const fn new() -> Log {
            Log {
                seen: Mutex::new(Vec::new()),
                saved: Mutex::new(Vec::new()),
                drops: AtomicUsize::new(0),
            }
        }

        fn seen(&self) -> Vec<u32> {
            let mut v = self.seen.lock().unwrap().clone();
            v.sort_unstable();
            v
        }

        fn drops(&self) -> usize {
            self.drops.load(Ordering::SeqCst)
        }
    }

    struct Tally(&'static Log);

    impl Drop for Tally {
        fn drop(&mut self) {
            self.0.drops.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[derive(Trace)]
    #[trace(finalize)]
    struct Node {
        value: u32,
        resurrect: bool,
        #[trace(skip)]
        log: Tally,
        peer: Mutex<Option<Gc<Node>>>,
    }

    impl Finalize for Node {
        fn finalize(&self) {
            let peer = self.peer.lock().unwrap().clone().expect("intact");
            let log = self.log.0;
            log.seen.lock().unwrap().push(100 * self.value + peer.value);
            if self.resurrect {
                log.saved.lock().unwrap().push(peer);
            }
        }
    }

    fn node(log: &'static Log, value: u32, resurrect: bool) -> Gc<Node> {
        Gc::new(Node {
            value,
            resurrect,
            log: Tally(log),
            peer: Mutex::new(None),
        })
    }

    fn pair(log: &'static Log, resurrect: bool) -> (Gc<Node>, Gc<Node>) {
        let (a, b) = (node(log, 1, resurrect), node(log, 2, resurrect));
        *a.peer.lock().unwrap() = Some(b.clone());
        *b.peer.lock().unwrap() = Some(a.clone());
        (a, b)
    }

    #[test]
    fn sync_finalizer_reads_its_cycle_peer() {
        static LOG: Log = Log::new();
        let _serial = serial();
        drop(pair(&LOG, false));
        gc::collect();
        assert_eq!(LOG.seen(), [102, 201]);
        assert_eq!(LOG.drops(), 2);
    }

    #[test]
    fn sync_finalizer_reads_itself_through_its_self_loop() {
        static LOG: Log = Log::new();
        let _serial = serial();
        let a = node(&LOG, 1, false);
        *a.peer.lock().unwrap() = Some(a.clone());
        drop(a);
        gc::collect();
        assert_eq!(LOG.seen(), [101]);
        assert_eq!(LOG.drops(), 1);
    }

    /// Defect 9 on the thread-safe heap, and the resurrected cycle freed
    /// once when it dies again.
    #[test]
    fn sync_weak_handles_of_a_resurrected_object_upgrade() {
        static LOG: Log = Log::new();
        let _serial = serial();
        let (a, b) = pair(&LOG, true);
        let old = Gc::downgrade(&a);
        drop((a, b));
        gc::collect();
        assert_eq!(LOG.drops(), 0, "resurrected");
        let saved = std::mem::take(&mut *LOG.saved.lock().unwrap());
        assert_eq!(saved.len(), 2);
        assert!(saved.iter().all(Gc::is_finalized));
        let new = Gc::downgrade(&saved[0]);
        let up = new
            .upgrade()
            .expect("a new weak handle of a live object upgrades");
        assert!(Gc::ptr_eq(&up, &saved[0]));
        assert!(old.upgrade().is_some(), "the resurrected object lives");
        drop((up, saved));
        gc::collect();
        assert_eq!(LOG.drops(), 2);
        assert_eq!(LOG.seen(), [102, 201], "finalizers ran once");
        assert!(new.upgrade().is_none() && old.upgrade().is_none());
    }
}
