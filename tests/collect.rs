//! The cycle collector as a user sees it: what happens to the objects it
//! finds unreachable.

use std::cell::{Cell, RefCell};

use ouro::{Finalize, Gc, Structural, Trace, Weak, gc};

thread_local! {
    static DROPS: Cell<usize> = const { Cell::new(0) };
    static SEEN: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
}

fn drops() -> usize {
    DROPS.with(Cell::get)
}

/// Counts its drops in `DROPS` (per test thread).
struct Tally;

impl Drop for Tally {
    fn drop(&mut self) {
        DROPS.with(|d| d.set(d.get() + 1));
    }
}

/// Every test runs on its own thread, so its heap is its own.
fn fresh() {
    gc::disable();
    gc::set_debug(gc::DebugFlags::empty());
}

#[derive(Trace)]
struct Node {
    value: u32,
    next: RefCell<Option<Gc<Node>>>,
    #[trace(skip)]
    _tally: Tally,
}

fn node(value: u32) -> Gc<Node> {
    Gc::new(Node {
        value,
        next: RefCell::new(None),
        _tally: Tally,
    })
}

/// Garbage kept by `SAVEALL` is alive: it can be read through the handles
/// `garbage()` gives (it used to stay marked as being scanned when no
/// object of it had a finalizer, so every dereference panicked).
#[test]
fn saved_garbage_of_a_derived_cycle_can_be_read() {
    fresh();
    gc::set_debug(gc::DebugFlags::SAVEALL);
    let a = node(7);
    *a.next.borrow_mut() = Some(a.clone());
    drop(a);
    assert_eq!(gc::collect(), 1);
    let saved = gc::garbage();
    assert_eq!(saved.len(), 1);
    let a = saved[0].downcast::<Node>().expect("saved garbage is alive");
    assert_eq!(a.value, 7);
    gc::set_debug(gc::DebugFlags::empty());
    a.next.borrow_mut().take();
    drop((a, saved));
    gc::clear_garbage();
    assert_eq!(drops(), 1);
}

/// A collected object that a `Weak` still points to is freed when that
/// `Weak` goes (it used to stay allocated, marked as being scanned): the
/// next object of its size gets its block back (the pool reuses the most
/// recently freed block first).
#[test]
fn a_collected_object_is_freed_by_its_last_weak() {
    fresh();
    let a = node(1);
    *a.next.borrow_mut() = Some(a.clone());
    let addr = Gc::as_ptr(&a).addr();
    let w: Weak<Node> = Gc::downgrade(&a);
    drop(a);
    assert_eq!(gc::collect(), 1);
    assert_eq!(drops(), 1);
    assert!(w.upgrade().is_none());
    drop(w);
    let b = node(2);
    assert_eq!(Gc::as_ptr(&b).addr(), addr, "the block was freed");
}

#[derive(Trace)]
#[trace(finalize)]
struct Peer {
    value: u32,
    peer: RefCell<Option<Gc<Peer>>>,
}

impl Finalize for Peer {
    fn finalize(&self) {
        // Reads the other object of the cycle.
        let peer = self.peer.borrow().as_ref().map_or(0, |p| p.value);
        SEEN.with(|s| s.borrow_mut().push(peer));
    }
}

/// Finalizers see every object of their cycle intact, and can read them.
#[test]
fn a_finalizer_can_read_the_other_objects_of_its_cycle() {
    fresh();
    let new = |value| {
        Gc::new(Peer {
            value,
            peer: RefCell::new(None),
        })
    };
    let (a, b) = (new(1), new(2));
    *a.peer.borrow_mut() = Some(b.clone());
    *b.peer.borrow_mut() = Some(a.clone());
    let (wa, wb) = (Gc::downgrade(&a), Gc::downgrade(&b));
    drop((a, b));
    assert_eq!(gc::collect(), 2);
    let mut seen = SEEN.with(|s| s.take());
    seen.sort_unstable();
    assert_eq!(seen, [1, 2], "each finalizer read its peer's value");
    assert!(wa.upgrade().is_none() && wb.upgrade().is_none());
}

// ---------------------------------------------------------------------------
// Cycles are collected only through structural `Trace` impls (audit defect
// 6); the others are reported.

/// The `log` records of target `ouro::gc` at level `warn`, from every test
/// of this binary, with the thread that logged them: the warning is once
/// per type and thread heap, and two tests (threads) may make cycles of the
/// same type at once, so each test looks for its own thread and type.
static WARNINGS: std::sync::Mutex<Vec<(std::thread::ThreadId, String)>> =
    std::sync::Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.target() == "ouro::gc" && m.level() == log::Level::Warn
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            let mut w = WARNINGS.lock().unwrap_or_else(|e| e.into_inner());
            w.push((std::thread::current().id(), r.args().to_string()));
        }
    }
    fn flush(&self) {}
}

fn capture_warnings() {
    let _ = log::set_logger(&Capture);
    log::set_max_level(log::LevelFilter::Warn);
}

/// The warnings of this thread that name `type_name` (a full path, as
/// `type_name` gives).
fn warnings_naming(type_name: &str) -> Vec<String> {
    let w = WARNINGS.lock().unwrap_or_else(|e| e.into_inner());
    let quoted = format!("`{type_name}`");
    let me = std::thread::current().id();
    w.iter()
        .filter(|(t, l)| *t == me && l.contains(&quoted))
        .map(|(_, l)| l.clone())
        .collect()
}

fn uncollectable() -> usize {
    gc::get_stats().iter().map(|s| s.uncollectable).sum()
}

/// A derived member of the cycles below.
#[derive(Trace)]
struct Target {
    text: String,
    back: RefCell<Option<Gc<Mover>>>,
    #[trace(skip)]
    _tally: Tally,
}

/// The audit's reproducer: a hand-written `trace` that reports its handle,
/// moves it through a `RefCell` to its other field, and reports it again.
/// Counted, one handle would count twice.
struct Mover {
    a: RefCell<Option<Gc<Target>>>,
    b: RefCell<Option<Gc<Target>>>,
}

impl Trace for Mover {
    fn trace(&self, v: &mut ouro::Visitor<'_>) {
        let (from, to) = if self.a.borrow().is_some() {
            (&self.a, &self.b)
        } else {
            (&self.b, &self.a)
        };
        from.trace(v);
        let h = from.borrow_mut().take();
        *to.borrow_mut() = h;
        to.trace(v);
    }
}

/// Defect 6: `Mover`'s `trace` counts the handle to `target` twice, which
/// matched the one held on the stack here; the collector dropped `target`'s
/// value while `text` was borrowed (a use after free). `Mover` is not
/// structural, so its edges are not subtracted: nothing is freed. (Run
/// under Miri: `cargo miri test --test collect moves_a_handle`.)
#[test]
fn a_trace_that_moves_a_handle_between_reports_frees_nothing_borrowed() {
    fresh();
    let target = Gc::new(Target {
        text: "still here".into(),
        back: RefCell::new(None),
        _tally: Tally,
    });
    let mover = Gc::new(Mover {
        a: RefCell::new(Some(target.clone())),
        b: RefCell::new(None),
    });
    *target.back.borrow_mut() = Some(mover.clone());
    let w = Gc::downgrade(&mover);
    drop(mover);
    let text: &str = &target.text;
    assert_eq!(gc::collect(), 0);
    assert_eq!(gc::collect_generation(0), 0);
    assert_eq!(drops(), 0, "nothing dropped");
    assert_eq!(text, "still here");
    // What the lying `trace` reports only misleads the report.
    drop(target);
    let mover = w.upgrade().expect("kept");
    let t = mover
        .a
        .borrow_mut()
        .take()
        .or_else(|| mover.b.borrow_mut().take());
    t.unwrap().back.borrow_mut().take();
    drop(mover);
    assert!(w.upgrade().is_none());
    assert_eq!(drops(), 1);
}

#[derive(Trace)]
struct Pair {
    other: RefCell<Option<Gc<Pair>>>,
    #[trace(skip)]
    _tally: Tally,
}

fn pair() -> (Gc<Pair>, Gc<Pair>) {
    let new = || {
        Gc::new(Pair {
            other: RefCell::new(None),
            _tally: Tally,
        })
    };
    let (a, b) = (new(), new());
    *a.other.borrow_mut() = Some(b.clone());
    *b.other.borrow_mut() = Some(a.clone());
    (a, b)
}

#[test]
fn a_derived_cycle_is_collected() {
    fresh();
    let before = uncollectable();
    drop(pair());
    assert_eq!(gc::collect(), 2);
    assert_eq!(drops(), 2);
    assert_eq!(uncollectable(), before);
}

/// The derived half of the cycles below.
#[derive(Trace)]
struct Inner {
    outer: RefCell<Option<Gc<Unpromised>>>,
    #[trace(skip)]
    _tally: Tally,
}

/// A hand-written `trace` that only visits its field, without the promise:
/// not structural.
struct Unpromised {
    inner: RefCell<Option<Gc<Inner>>>,
    _tally: Tally,
}

impl Trace for Unpromised {
    fn trace(&self, v: &mut ouro::Visitor<'_>) {
        self.inner.trace(v);
    }
}

/// The same, with the promise.
struct Promised {
    me: RefCell<Option<Gc<Promised>>>,
    _tally: Tally,
}

impl Trace for Promised {
    fn structural() -> Structural<Self> {
        // SAFETY: `trace` only calls `trace` on a field, whose type's impl is
        // ouro's own (structural).
        unsafe { Structural::promise() }
    }
    fn trace(&self, v: &mut ouro::Visitor<'_>) {
        self.me.trace(v);
    }
}

/// An unreachable cycle `Unpromised -> Inner -> Unpromised`; a weak handle
/// to its hand-written object.
fn unpromised_cycle() -> Weak<Unpromised> {
    let u = Gc::new(Unpromised {
        inner: RefCell::new(None),
        _tally: Tally,
    });
    let i = Gc::new(Inner {
        outer: RefCell::new(Some(u.clone())),
        _tally: Tally,
    });
    *u.inner.borrow_mut() = Some(i);
    Gc::downgrade(&u)
}

/// Breaks the cycle by hand; both objects go.
fn break_cycle(w: &Weak<Unpromised>) {
    let u = w.upgrade().expect("the cycle was kept");
    let i = u.inner.borrow_mut().take();
    drop(i);
    drop(u);
    assert!(w.upgrade().is_none());
}

#[test]
fn a_cycle_through_a_hand_written_trace_is_kept_and_reported() {
    fresh();
    capture_warnings();
    let stops = std::rc::Rc::new(Cell::new((0, 0)));
    let seen = stops.clone();
    let id = gc::add_callback(move |info| {
        if info.phase == gc::Phase::Stop {
            seen.set((seen.get().0 + 1, info.uncollectable));
        }
    });
    let w = unpromised_cycle();
    assert_eq!(gc::collect(), 0, "not found unreachable");
    assert_eq!(drops(), 0, "not freed");
    let stats = gc::get_stats()[2];
    assert_eq!((stats.collected, stats.uncollectable), (0, 2));
    assert_eq!(stops.get(), (1, 2), "the callback sees it");
    let name = std::any::type_name::<Unpromised>();
    let warned = warnings_naming(name);
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(warned[0].contains("#[derive(Trace)]"), "{}", warned[0]);
    assert!(warned[0].contains("Structural::promise()"), "{}", warned[0]);
    // Found again by the next full collection; the warning is not repeated.
    assert_eq!(gc::collect(), 0);
    assert_eq!(gc::get_stats()[2].uncollectable, 4);
    assert_eq!(warnings_naming(name).len(), 1, "once per type");
    // Still intact and on the generation lists.
    assert_eq!(gc::get_objects(Some(2)).len(), 2);
    gc::remove_callback(id);
    break_cycle(&w);
    assert_eq!(drops(), 2, "each dropped once");
    assert!(gc::get_objects(None).is_empty());
}

#[test]
fn saveall_keeps_a_reported_cycle_in_garbage() {
    fresh();
    capture_warnings();
    gc::set_debug(gc::DebugFlags::SAVEALL);
    let w = unpromised_cycle();
    assert_eq!(gc::collect(), 0);
    let saved = gc::garbage();
    let mut names: Vec<_> = saved.iter().map(|o| o.type_name()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            std::any::type_name::<Inner>(),
            std::any::type_name::<Unpromised>()
        ]
    );
    // Held strongly: each has its cycle's reference and the saved one.
    assert!(saved.iter().all(|o| o.refcount() >= 2));
    let u = saved
        .iter()
        .find_map(|o| o.downcast::<Unpromised>())
        .unwrap();
    assert!(u.inner.borrow().is_some(), "alive and readable");
    drop((u, saved));
    // Kept by `garbage()`, they are not found again.
    assert_eq!(gc::collect(), 0);
    assert_eq!(gc::get_stats()[2].uncollectable, 2);
    gc::set_debug(gc::DebugFlags::empty());
    gc::clear_garbage();
    assert_eq!(drops(), 0);
    break_cycle(&w);
    assert_eq!(drops(), 2);
}

#[test]
fn a_hand_written_trace_with_the_promise_is_collected() {
    fresh();
    let a = Gc::new(Promised {
        me: RefCell::new(None),
        _tally: Tally,
    });
    *a.me.borrow_mut() = Some(a.clone());
    drop(a);
    assert_eq!(gc::collect(), 1);
    assert_eq!(drops(), 1);
    assert_eq!(gc::get_stats()[2].uncollectable, 0);
}

/// Only the edges of a non-structural `trace` are distrusted: such an
/// object that only garbage points to is garbage too.
#[test]
fn a_hand_written_object_that_only_garbage_points_to_is_collected() {
    fresh();
    #[derive(Trace)]
    struct Holder {
        me: RefCell<Option<Gc<Holder>>>,
        leaf: Gc<Unpromised>,
        #[trace(skip)]
        _tally: Tally,
    }
    let h = Gc::new(Holder {
        me: RefCell::new(None),
        leaf: Gc::new(Unpromised {
            inner: RefCell::new(None),
            _tally: Tally,
        }),
        _tally: Tally,
    });
    *h.me.borrow_mut() = Some(h.clone());
    drop(h);
    assert_eq!(gc::collect(), 2);
    assert_eq!(drops(), 2);
    assert_eq!(gc::get_stats()[2].uncollectable, 0);
}

/// A full collection counts the edges into objects the walk has not reached
/// yet (objects enter the counted set when first seen): old and young
/// objects pointing both ways are judged right, whichever comes first.
#[test]
fn a_full_collection_judges_edges_between_generations_both_ways() {
    fresh();
    let before = drops();
    // `old` survives two collections (the oldest generation); `young` is new.
    let old = node(1);
    gc::collect();
    gc::collect();
    let young = node(2);
    *young.next.borrow_mut() = Some(old.clone());
    *old.next.borrow_mut() = Some(young.clone());
    // Held from outside through `old` only: both live.
    drop(young);
    assert_eq!(gc::collect(), 0);
    assert_eq!(drops(), before);
    let young = old.next.borrow().clone().unwrap();
    assert_eq!(young.value, 2);
    // Held from outside through `young` only: both live.
    drop(old);
    assert_eq!(gc::collect(), 0);
    assert_eq!(drops(), before);
    assert_eq!(young.next.borrow().as_ref().unwrap().value, 1);
    // A chain of young objects into the old one, held by its newest end.
    let mut head = young.clone();
    for v in 3..100 {
        let n = node(v);
        *n.next.borrow_mut() = Some(head);
        head = n;
    }
    drop(young);
    assert_eq!(gc::collect(), 0);
    assert_eq!(drops(), before);
    drop(head);
    // The chain is freed by its counts up to the two-object cycle, which
    // the collector frees.
    assert_eq!(gc::collect(), 2);
    assert_eq!(drops(), before + 99);
}

/// While objects are frozen, a full collection does not count edges into
/// them (they are not part of its set): a frozen object reached only from a
/// cycle of garbage, and pointing back into it, keeps the cycle alive until
/// it is unfrozen.
#[test]
fn a_full_collection_leaves_a_frozen_target_alone() {
    fresh();
    let before = drops();
    let frozen = node(1);
    gc::freeze();
    assert_eq!(gc::get_freeze_count(), 1);
    let a = node(2);
    let b = node(3);
    *a.next.borrow_mut() = Some(b.clone());
    // b -> frozen -> a -> b: the frozen object is held only by `b`.
    *b.next.borrow_mut() = Some(frozen.clone());
    *frozen.next.borrow_mut() = Some(a.clone());
    let wf = Gc::downgrade(&frozen);
    drop((a, b, frozen));
    // The frozen object is not scanned: its edge to `a` counts as a
    // reference from outside, so the cycle survives, and so does it.
    assert_eq!(gc::collect(), 0);
    assert_eq!(gc::collect(), 0);
    assert_eq!(drops(), before);
    assert_eq!(wf.upgrade().unwrap().value, 1);
    gc::unfreeze();
    assert_eq!(gc::collect(), 3);
    assert_eq!(drops(), before + 3);
    assert!(wf.upgrade().is_none());
}

thread_local! {
    static BOOM: Cell<bool> = const { Cell::new(false) };
}

/// A `trace` with the structural promise that panics when `BOOM` is set
/// (breaking its promise, which is allowed to go wrong only safely).
struct Fragile {
    next: RefCell<Option<Gc<Node>>>,
}

impl Trace for Fragile {
    fn structural() -> Structural<Self> {
        // SAFETY: `trace` only calls `trace` on a field, whose type's impl is
        // ouro's own (structural); the panic runs no other code.
        unsafe { Structural::promise() }
    }
    fn trace(&self, v: &mut ouro::Visitor<'_>) {
        assert!(!BOOM.with(Cell::get), "planted trace panic");
        self.next.trace(v);
    }
}

/// A `trace` panicking while a full collection counts the edges, with
/// objects before it in the heap already counted (some reached by an edge
/// before their turn) and objects after it not reached at all: everything
/// survives, the heap is in order, and the next collection frees the
/// garbage.
#[test]
fn a_trace_panic_in_the_whole_heap_count_leaves_the_heap_in_order() {
    fresh();
    let before = drops();
    // Oldest first on the list: a garbage cycle whose older member points
    // to the newer one, then the panicking object, then another cycle.
    let a = node(1);
    let b = node(2);
    *a.next.borrow_mut() = Some(b.clone());
    *b.next.borrow_mut() = Some(a.clone());
    let fragile = Gc::new(Fragile {
        next: RefCell::new(Some(a.clone())),
    });
    let c = node(3);
    let d = node(4);
    *c.next.borrow_mut() = Some(d.clone());
    *d.next.borrow_mut() = Some(c.clone());
    drop((a, b, c, d));
    BOOM.with(|x| x.set(true));
    let r = std::panic::catch_unwind(gc::collect);
    BOOM.with(|x| x.set(false));
    assert!(r.is_err(), "the planted panic reaches the caller");
    assert_eq!(drops(), before, "nothing is freed by an aborted collection");
    let a = fragile.next.borrow().clone().unwrap();
    assert_eq!(a.value, 1);
    assert_eq!(a.next.borrow().as_ref().unwrap().value, 2);
    drop(a);
    drop(fragile);
    assert_eq!(gc::collect(), 4);
    assert_eq!(drops(), before + 4);
}

/// Promised structural, but its `trace` fills its own slot with a new
/// object the first time it runs (the promise is false: it must still go
/// wrong only safely).
struct Lazy {
    slot: RefCell<Option<Gc<Node>>>,
}

impl Trace for Lazy {
    fn structural() -> Structural<Self> {
        // SAFETY: deliberately false (the test): `trace` allocates.
        unsafe { Structural::promise() }
    }
    fn trace(&self, v: &mut ouro::Visitor<'_>) {
        if self.slot.borrow().is_none() {
            *self.slot.borrow_mut() = Some(node(7));
        }
        self.slot.trace(v);
    }
}

/// Promised structural, but its `trace` drops the handle in its own slot.
struct Dropper {
    slot: RefCell<Option<Gc<Node>>>,
}

impl Trace for Dropper {
    fn structural() -> Structural<Self> {
        // SAFETY: deliberately false (the test): `trace` drops a handle.
        unsafe { Structural::promise() }
    }
    fn trace(&self, v: &mut ouro::Visitor<'_>) {
        drop(self.slot.borrow_mut().take());
        self.slot.trace(v);
    }
}

/// A full collection, with and without frozen objects, whose `trace`s break
/// their structural promise by allocating or by dropping the last handle to
/// the object the counting pass reads next: the object made during the
/// collection is usable after it and dropped once; the one dropped is
/// dropped once, and nothing is read after it is freed (Miri checks that).
#[test]
fn a_false_structural_promise_in_a_full_collection_goes_wrong_only_safely() {
    fresh();
    for frozen in [false, true] {
        let _old = frozen.then(|| {
            let o = node(0);
            gc::freeze();
            o
        });
        let holder = Gc::new(Lazy {
            slot: RefCell::new(None),
        });
        gc::collect();
        let made = holder.slot.borrow().clone().expect("trace filled the slot");
        assert_eq!(
            made.value, 7,
            "an object made during a collection is usable"
        );
        let before = drops();
        drop((made, holder));
        assert_eq!(drops(), before + 1);
        // On the list, the dropper, then the node right after it.
        let dropper = Gc::new(Dropper {
            slot: RefCell::new(None),
        });
        *dropper.slot.borrow_mut() = Some(node(8));
        let before = drops();
        gc::collect();
        assert_eq!(drops(), before + 1, "the node is dropped once");
        drop(dropper);
        assert_eq!(gc::collect(), 0);
        if frozen {
            gc::unfreeze();
        }
    }
}
