//! Unit tests of the handles and the collector (they also run under Miri).
//!
//! The semantic tests follow the cases of CPython's `Lib/test/test_gc.py`
//! that apply to the engine, in ouro's terms.

use core::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;

use crate::{Gc, Trace, Visitor, Weak, gc};

/// A graph node: edges in a `RefCell<Vec<_>>`, a shared drop counter.
struct Node {
    id: usize,
    edges: RefCell<Vec<Gc<Node>>>,
    drops: Rc<Cell<usize>>,
}

impl Trace for Node {
    fn structural() -> crate::Structural<Self> {
        // SAFETY: `trace` only calls `trace` on fields, whose types' impls
        // are ouro's own (structural).
        unsafe { crate::Structural::promise() }
    }
    fn trace(&self, v: &mut Visitor<'_>) {
        self.edges.trace(v);
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.drops.set(self.drops.get() + 1);
    }
}

fn node(id: usize, drops: &Rc<Cell<usize>>) -> Gc<Node> {
    Gc::new(Node {
        id,
        edges: RefCell::new(Vec::new()),
        drops: drops.clone(),
    })
}

fn link(a: &Gc<Node>, b: &Gc<Node>) {
    a.edges.borrow_mut().push(b.clone());
}

fn counter() -> Rc<Cell<usize>> {
    Rc::new(Cell::new(0))
}

/// Keeps automatic collection out of a test's way.
fn quiet() {
    gc::disable();
}

#[test]
fn cycles_through_std_containers() {
    quiet();
    struct Holder {
        map: RefCell<HashMap<u32, Gc<Holder>>>,
        boxed: RefCell<Option<Box<Gc<Holder>>>>,
        opt: RefCell<Option<Gc<Holder>>>,
        tuple: RefCell<(u8, Vec<Gc<Holder>>)>,
        drops: Rc<Cell<usize>>,
    }
    impl Trace for Holder {
        fn structural() -> crate::Structural<Self> {
            // SAFETY: `trace` only calls `trace` on fields, whose types' impls
            // are ouro's own (structural).
            unsafe { crate::Structural::promise() }
        }
        fn trace(&self, v: &mut Visitor<'_>) {
            self.map.trace(v);
            self.boxed.trace(v);
            self.opt.trace(v);
            self.tuple.trace(v);
        }
    }
    impl Drop for Holder {
        fn drop(&mut self) {
            self.drops.set(self.drops.get() + 1);
        }
    }
    let d = counter();
    let make = || {
        Gc::new(Holder {
            map: RefCell::new(HashMap::new()),
            boxed: RefCell::new(None),
            opt: RefCell::new(None),
            tuple: RefCell::new((0, Vec::new())),
            drops: d.clone(),
        })
    };
    let (a, b, c, e) = (make(), make(), make(), make());
    a.map.borrow_mut().insert(1, b.clone());
    *b.boxed.borrow_mut() = Some(Box::new(c.clone()));
    *c.opt.borrow_mut() = Some(e.clone());
    e.tuple.borrow_mut().1.push(a.clone());
    drop((a, b, c, e));
    assert_eq!(gc::collect(), 4);
    assert_eq!(d.get(), 4);
}

#[test]
fn untracked_types_are_never_tracked() {
    quiet();
    let s = Gc::new(String::from("x"));
    let n = Gc::new(5u64);
    let v = Gc::new(vec![1u8, 2, 3]);
    assert!(!Gc::is_tracked(&s) && !Gc::is_tracked(&n) && !Gc::is_tracked(&v));
    assert_eq!(gc::get_count()[0], 0);
    let d = counter();
    let a = node(0, &d);
    assert!(Gc::is_tracked(&a));
    assert_eq!(gc::get_count()[0], 1);
    drop(a);
    assert_eq!(gc::get_count()[0], 0);
}

#[test]
fn get_count_follows_allocations_and_collections() {
    quiet();
    let d = counter();
    let nodes: Vec<_> = (0..10).map(|i| node(i, &d)).collect();
    assert_eq!(gc::get_count(), [10, 0, 0]);
    gc::collect_generation(0);
    assert_eq!(gc::get_count(), [0, 1, 0]);
    gc::collect_generation(1);
    assert_eq!(gc::get_count(), [0, 0, 1]);
    gc::collect();
    assert_eq!(gc::get_count(), [0, 0, 0]);
    drop(nodes);
}

#[test]
fn young_collection_does_not_touch_older_generations() {
    quiet();
    let d = counter();
    // An old cycle, promoted to generation 1.
    let old = node(0, &d);
    link(&old, &old);
    gc::collect_generation(0);
    drop(old);
    // A young cycle.
    let young = node(1, &d);
    link(&young, &young);
    drop(young);
    assert_eq!(gc::collect_generation(0), 1);
    assert_eq!(d.get(), 1);
    assert_eq!(gc::collect_generation(1), 1);
    assert_eq!(d.get(), 2);
    let stats = gc::get_stats();
    assert_eq!(stats[0].collections, 2);
    assert_eq!(stats[0].collected, 1);
    assert_eq!(stats[1].collections, 1);
    assert_eq!(stats[1].collected, 1);
}

#[test]
fn threshold_triggers_automatic_collection() {
    gc::enable();
    gc::set_threshold([5, 10, 10]);
    let d = counter();
    let before = gc::get_stats()[0].collections;
    for i in 0..4 {
        let a = node(i, &d);
        link(&a, &a);
    }
    assert_eq!(gc::get_stats()[0].collections, before);
    // More than 5 tracked allocations since the last collection: the next
    // allocation collects generation 0.
    let keep: Vec<_> = (0..3).map(|i| node(100 + i, &d)).collect();
    assert_eq!(gc::get_stats()[0].collections, before + 1);
    assert_eq!(d.get(), 4);
    // Disabled: nothing runs.
    gc::disable();
    assert!(!gc::is_enabled());
    for i in 0..20 {
        let a = node(i, &d);
        link(&a, &a);
    }
    assert_eq!(gc::get_stats()[0].collections, before + 1);
    // A threshold of 0 disables automatic collection too.
    gc::enable();
    gc::set_threshold([0, 10, 10]);
    for i in 0..20 {
        drop(node(i, &d));
    }
    assert_eq!(gc::get_stats()[0].collections, before + 1);
    assert_eq!(gc::get_threshold(), [0, 10, 10]);
    gc::set_threshold(crate::gc::get_threshold().map(|_| 700));
    drop(keep);
    gc::collect();
}

#[test]
fn full_collection_waits_for_the_live_heap_to_grow_by_a_quarter() {
    gc::enable();
    gc::set_threshold([1, 1, 1]);
    let d = counter();
    // Many long-lived objects, then a full collection records their number.
    let live: Vec<_> = (0..64).map(|i| node(i, &d)).collect();
    gc::collect();
    let full_before = gc::get_stats()[2].collections;
    // Short-lived batches, alive long enough to be promoted to the oldest
    // generation, then freed by reference count: young and middle
    // collections run, but the live heap never grows by a quarter, so no automatic
    // full collection (CPython's rule counts every promotion).
    for b in 0..50 {
        let batch: Vec<_> = (0..15).map(|i| node(b * 15 + i, &d)).collect();
        drop(batch);
    }
    assert_eq!(gc::get_stats()[2].collections, full_before);
    assert!(gc::get_stats()[1].collections > 0);
    // New live objects: a full collection happens once the heap has grown
    // by more than a quarter (64 live after the last one), and soon after.
    let mut more = Vec::new();
    while gc::get_stats()[2].collections == full_before {
        assert!(more.len() < 1000, "no full collection as the heap grew");
        more.push(node(more.len(), &d));
    }
    assert!(
        more.len() > 16,
        "a full collection after {} new objects",
        more.len()
    );
    gc::set_threshold([700, 10, 10]);
    drop((live, more));
}

struct Fin {
    me: RefCell<Option<Gc<Fin>>>,
    finalized: Rc<Cell<usize>>,
    drops: Rc<Cell<usize>>,
    on_finalize: fn(&Fin),
}

impl Trace for Fin {
    fn structural() -> crate::Structural<Self> {
        // SAFETY: `trace` only calls `trace` on fields, whose types' impls
        // are ouro's own (structural).
        unsafe { crate::Structural::promise() }
    }
    fn trace(&self, v: &mut Visitor<'_>) {
        self.me.trace(v);
    }
    fn finalize(&self) {
        self.finalized.set(self.finalized.get() + 1);
        (self.on_finalize)(self);
    }
}

impl Drop for Fin {
    fn drop(&mut self) {
        self.drops.set(self.drops.get() + 1);
    }
}

fn fin(on_finalize: fn(&Fin)) -> (Gc<Fin>, Rc<Cell<usize>>, Rc<Cell<usize>>) {
    let (f, d) = (counter(), counter());
    let a = Gc::new(Fin {
        me: RefCell::new(None),
        finalized: f.clone(),
        drops: d.clone(),
        on_finalize,
    });
    *a.me.borrow_mut() = Some(a.clone());
    (a, f, d)
}

thread_local! {
    static SAVED: RefCell<Option<Gc<Fin>>> = const { RefCell::new(None) };
    static WEAK: RefCell<Option<Weak<Fin>>> = const { RefCell::new(None) };
    static SEEN_WEAK_ALIVE: Cell<Option<bool>> = const { Cell::new(None) };
}

#[test]
fn finalizer_runs_once_before_drop() {
    quiet();
    let (a, f, d) = fin(|_| {});
    drop(a);
    assert_eq!(gc::collect(), 1);
    assert_eq!((f.get(), d.get()), (1, 1));
}

#[test]
fn weak_references_are_cleared_before_finalizers() {
    quiet();
    let (a, f, d) = fin(|_| {
        let alive = WEAK.with(|w| w.borrow().as_ref().unwrap().upgrade().is_some());
        SEEN_WEAK_ALIVE.with(|s| s.set(Some(alive)));
    });
    WEAK.with(|w| *w.borrow_mut() = Some(Gc::downgrade(&a)));
    drop(a);
    assert_eq!(gc::collect(), 1);
    assert_eq!(SEEN_WEAK_ALIVE.with(|s| s.get()), Some(false));
    assert_eq!((f.get(), d.get()), (1, 1));
    let w = WEAK.with(|w| w.borrow_mut().take()).unwrap();
    assert!(w.upgrade().is_none());
    assert_eq!(w.strong_count(), 0);
}

#[test]
fn resurrection_keeps_the_set_and_finalizes_once() {
    quiet();
    let (a, f, d) = fin(|this| {
        let me = this.me.borrow().clone();
        SAVED.with(|s| *s.borrow_mut() = me);
    });
    let w = Gc::downgrade(&a);
    drop(a);
    assert_eq!(gc::collect(), 1);
    assert_eq!(
        (f.get(), d.get()),
        (1, 0),
        "resurrected: finalized, not dropped"
    );
    let saved = SAVED.with(|s| s.borrow_mut().take()).unwrap();
    assert!(
        w.upgrade().is_some_and(|a| Gc::ptr_eq(&a, &saved)),
        "a resurrected object's weak handles upgrade while it lives"
    );
    assert!(Gc::is_finalized(&saved));
    assert_eq!(saved.finalized.get(), 1);
    drop(saved);
    assert_eq!(gc::collect(), 1);
    assert_eq!(
        (f.get(), d.get()),
        (1, 1),
        "the finalizer does not run twice"
    );
    assert!(w.upgrade().is_none());
}

#[test]
fn finalizer_may_allocate_and_call_collect() {
    quiet();
    let (a, f, d) = fin(|_| {
        let d = counter();
        let x = node(7, &d);
        link(&x, &x);
        assert_eq!(gc::collect(), 0, "no nested collection");
        drop(x);
    });
    drop(a);
    assert_eq!(gc::collect(), 1);
    assert_eq!((f.get(), d.get()), (1, 1));
    // The node made by the finalizer is an ordinary cycle now.
    assert_eq!(gc::collect(), 1);
}

#[test]
fn panic_in_drop_propagates_after_the_heap_is_consistent() {
    quiet();
    struct Boom {
        next: RefCell<Option<Gc<Boom>>>,
        drops: Rc<Cell<usize>>,
        boom: bool,
    }
    impl Trace for Boom {
        fn structural() -> crate::Structural<Self> {
            // SAFETY: `trace` only calls `trace` on fields, whose types' impls
            // are ouro's own (structural).
            unsafe { crate::Structural::promise() }
        }
        fn trace(&self, v: &mut Visitor<'_>) {
            self.next.trace(v);
        }
    }
    impl Drop for Boom {
        fn drop(&mut self) {
            self.drops.set(self.drops.get() + 1);
            if self.boom {
                panic!("boom");
            }
        }
    }
    let d = counter();
    let a = Gc::new(Boom {
        next: RefCell::new(None),
        drops: d.clone(),
        boom: true,
    });
    let b = Gc::new(Boom {
        next: RefCell::new(None),
        drops: d.clone(),
        boom: false,
    });
    *a.next.borrow_mut() = Some(b.clone());
    *b.next.borrow_mut() = Some(a.clone());
    drop((a, b));
    let r = panic::catch_unwind(gc::collect);
    assert!(r.is_err());
    assert_eq!(d.get(), 2, "both values dropped once despite the panic");
    // The heap still works.
    let d2 = counter();
    let x = node(0, &d2);
    link(&x, &x);
    drop(x);
    assert_eq!(gc::collect(), 1);
    assert_eq!(d2.get(), 1);
}

/// A `trace` that panics is user code, so not structural: it panics where
/// the collector propagates reachability (`move_unreachable`) and in the
/// report. Either way the collection ends with everything kept, and the
/// panic propagates.
#[test]
fn panic_in_trace_aborts_the_collection() {
    quiet();
    thread_local! {
        /// Which call of `trace` panics (0: none); the calls are counted.
        static FAIL_AT: Cell<usize> = const { Cell::new(0) };
        static CALLS: Cell<usize> = const { Cell::new(0) };
    }
    struct Flaky {
        next: RefCell<Option<Gc<Flaky>>>,
        drops: Rc<Cell<usize>>,
    }
    impl Trace for Flaky {
        fn trace(&self, v: &mut Visitor<'_>) {
            let n = CALLS.with(|c| c.replace(c.get() + 1)) + 1;
            if FAIL_AT.with(Cell::get) == n {
                panic!("trace failed");
            }
            self.next.trace(v);
        }
    }
    impl Drop for Flaky {
        fn drop(&mut self) {
            self.drops.set(self.drops.get() + 1);
        }
    }
    let d = counter();
    let a = Gc::new(Flaky {
        next: RefCell::new(None),
        drops: d.clone(),
    });
    *a.next.borrow_mut() = Some(a.clone());
    let w = Gc::downgrade(&a);
    drop(a);
    // Call 1: the collection's walk; 2: the report's subtraction (the walk
    // that follows does not trace what it finds unreachable).
    for at in 1..=2 {
        let before = gc::get_stats()[2].uncollectable;
        CALLS.with(|c| c.set(0));
        FAIL_AT.with(|f| f.set(at));
        assert!(panic::catch_unwind(gc::collect).is_err(), "call {at}");
        assert_eq!(d.get(), 0, "nothing freed");
        assert_eq!(gc::get_stats()[2].uncollectable, before, "nothing reported");
    }
    FAIL_AT.with(|f| f.set(0));
    assert_eq!(gc::collect(), 0, "a cycle through a non-structural trace");
    assert_eq!(d.get(), 0);
    let a = w.upgrade().expect("kept");
    a.next.borrow_mut().take();
    drop(a);
    assert_eq!(d.get(), 1);
}

#[test]
fn panic_in_finalize_still_frees() {
    quiet();
    let (a, f, d) = fin(|_| panic!("finalizer failed"));
    drop(a);
    assert!(panic::catch_unwind(gc::collect).is_err());
    assert_eq!((f.get(), d.get()), (1, 1));
    assert_eq!(gc::collect(), 0);
}

/// A `trace` that reports a handle the value does not own (a global).
#[test]
fn extra_edges_to_foreign_handles_are_ignored() {
    quiet();
    thread_local!(static GLOBAL: RefCell<Option<Gc<Node>>> = const { RefCell::new(None) });
    struct Liar;
    impl Trace for Liar {
        fn trace(&self, v: &mut Visitor<'_>) {
            GLOBAL.with(|g| g.borrow().trace(v));
            GLOBAL.with(|g| g.borrow().trace(v));
        }
    }
    let d = counter();
    let target = node(1, &d);
    link(&target, &target);
    GLOBAL.with(|g| *g.borrow_mut() = Some(target.clone()));
    let liars: Vec<_> = (0..3).map(|_| Gc::new(Liar)).collect();
    // `target` has 3 references: itself, `target`, GLOBAL. The liars claim
    // 6 more edges; if they counted, it would look unreachable.
    let r = &*target;
    assert_eq!(gc::collect(), 0);
    assert_eq!(r.id, 1, "still borrowed and alive");
    drop((liars, target));
    GLOBAL.with(|g| g.borrow_mut().take());
    assert_eq!(gc::collect(), 1);
    assert_eq!(d.get(), 1);
}

/// A `trace` that visits the same handle twice counts it once.
#[test]
fn double_visits_count_once() {
    quiet();
    struct Twice {
        next: RefCell<Option<Gc<Twice>>>,
    }
    impl Trace for Twice {
        fn structural() -> crate::Structural<Self> {
            // SAFETY: `trace` only calls `trace` on a field (twice: the visitor
            // counts it once), whose type's impl is ouro's own (structural).
            unsafe { crate::Structural::promise() }
        }
        fn trace(&self, v: &mut Visitor<'_>) {
            self.next.trace(v);
            self.next.trace(v);
        }
    }
    let a = Gc::new(Twice {
        next: RefCell::new(None),
    });
    *a.next.borrow_mut() = Some(a.clone());
    let borrowed = &*a;
    // Two references (the cycle and `a`): counted twice, `a` would vanish.
    assert_eq!(gc::collect(), 0);
    assert!(borrowed.next.borrow().is_some());
    drop(a);
    assert_eq!(gc::collect(), 1);
}

/// A `trace` that visits a handle it cloned onto the stack does not count.
#[test]
fn temporary_clones_are_not_edges() {
    quiet();
    struct Cloner {
        next: RefCell<Option<Gc<Cloner>>>,
    }
    impl Trace for Cloner {
        fn trace(&self, v: &mut Visitor<'_>) {
            let tmp = self.next.borrow().clone();
            tmp.trace(v);
            self.next.trace(v);
        }
    }
    let a = Gc::new(Cloner {
        next: RefCell::new(None),
    });
    *a.next.borrow_mut() = Some(a.clone());
    // Not structural: only the report counts its edges. Counted, the clone
    // would make `a` look unreachable (2 references, 2 edges).
    let before = gc::get_stats()[2].uncollectable;
    assert_eq!(gc::collect(), 0);
    assert_eq!(
        gc::get_stats()[2].uncollectable,
        before,
        "held: not reported"
    );
    let w = Gc::downgrade(&a);
    drop(a);
    assert_eq!(gc::collect(), 0, "not structural: kept");
    assert_eq!(gc::get_stats()[2].uncollectable, before + 1, "and reported");
    w.upgrade().unwrap().next.borrow_mut().take();
    assert!(w.upgrade().is_none());
}

/// A missing edge only leaks.
#[test]
fn missing_edges_leak_but_stay_safe() {
    quiet();
    struct Silent {
        next: RefCell<Option<Gc<Silent>>>,
        drops: Rc<Cell<usize>>,
    }
    impl Trace for Silent {
        fn trace(&self, _: &mut Visitor<'_>) {}
    }
    impl Drop for Silent {
        fn drop(&mut self) {
            self.drops.set(self.drops.get() + 1);
        }
    }
    let d = counter();
    let a = Gc::new(Silent {
        next: RefCell::new(None),
        drops: d.clone(),
    });
    *a.next.borrow_mut() = Some(a.clone());
    let w = Gc::downgrade(&a);
    drop(a);
    assert_eq!(gc::collect(), 0);
    assert_eq!(d.get(), 0);
    // Break the leak by hand.
    w.upgrade().unwrap().next.borrow_mut().take();
    assert_eq!(d.get(), 1);
}

/// `needs_trace() == false` on a type that holds handles: never tracked, leaks.
#[test]
fn wrong_needs_trace_only_leaks() {
    quiet();
    struct Hidden {
        next: RefCell<Option<Gc<Hidden>>>,
    }
    impl Trace for Hidden {
        fn needs_trace() -> bool {
            false
        }
        fn trace(&self, v: &mut Visitor<'_>) {
            self.next.trace(v);
        }
    }
    let a = Gc::new(Hidden {
        next: RefCell::new(None),
    });
    assert!(!Gc::is_tracked(&a));
    *a.next.borrow_mut() = Some(a.clone());
    let w = Gc::downgrade(&a);
    drop(a);
    assert_eq!(gc::collect(), 0);
    w.upgrade().unwrap().next.borrow_mut().take();
    assert!(w.upgrade().is_none());
}

#[test]
fn dropping_garbage_that_reads_a_peer_panics_cleanly() {
    quiet();
    struct Reader {
        peer: RefCell<Option<Gc<Reader>>>,
        name: String,
    }
    impl Trace for Reader {
        fn structural() -> crate::Structural<Self> {
            // SAFETY: `trace` only calls `trace` on fields, whose types' impls
            // are ouro's own (structural).
            unsafe { crate::Structural::promise() }
        }
        fn trace(&self, v: &mut Visitor<'_>) {
            self.peer.trace(v);
        }
    }
    impl Drop for Reader {
        fn drop(&mut self) {
            if let Some(p) = self.peer.borrow().as_ref() {
                let _ = p.name.len();
            }
        }
    }
    let a = Gc::new(Reader {
        peer: RefCell::new(None),
        name: "a".into(),
    });
    let b = Gc::new(Reader {
        peer: RefCell::new(Some(a.clone())),
        name: "b".into(),
    });
    *a.peer.borrow_mut() = Some(b.clone());
    drop((a, b));
    let err = panic::catch_unwind(gc::collect).unwrap_err();
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("already dropped"), "{msg}");
    assert_eq!(gc::collect(), 0);
}

#[test]
fn mutably_borrowed_refcell_counts_as_reachable() {
    quiet();
    let d = counter();
    let a = node(0, &d);
    let b = node(1, &d);
    link(&a, &b);
    link(&b, &a);
    {
        let _held = b.edges.borrow_mut();
        assert_eq!(gc::collect(), 0);
    }
    drop((a, b));
    assert_eq!(gc::collect(), 2);
}

#[test]
fn get_mut_is_not_traced_while_unique() {
    quiet();
    let d = counter();
    let mut a = node(0, &d);
    let m = Gc::get_mut(&mut a).unwrap();
    assert_eq!(gc::collect(), 0);
    m.id = 5; // would be an aliasing violation (Miri) if the collector read it
    assert_eq!(a.id, 5);
    let b = a.clone();
    assert!(Gc::get_mut(&mut a).is_none());
    link(&a, &b);
    drop((a, b));
    assert_eq!(gc::collect(), 1);
}

#[test]
fn trace_cannot_dereference_the_scanned_set() {
    quiet();
    thread_local!(static CAUGHT: Cell<bool> = const { Cell::new(false) });
    struct Peek {
        next: RefCell<Option<Gc<Peek>>>,
    }
    impl Trace for Peek {
        fn trace(&self, v: &mut Visitor<'_>) {
            if let Some(n) = self.next.borrow().as_ref() {
                let r = panic::catch_unwind(AssertUnwindSafe(|| n.next.borrow().is_some()));
                CAUGHT.with(|c| c.set(r.is_err()));
            }
            self.next.trace(v);
        }
    }
    let a = Gc::new(Peek {
        next: RefCell::new(None),
    });
    *a.next.borrow_mut() = Some(a.clone());
    let w = Gc::downgrade(&a);
    drop(a);
    // Not structural (it dereferences a handle): kept, reported.
    assert_eq!(gc::collect(), 0);
    assert!(CAUGHT.with(|c| c.get()));
    w.upgrade().unwrap().next.borrow_mut().take();
    assert!(w.upgrade().is_none());
}

#[test]
fn allocating_in_trace_does_not_recurse() {
    gc::enable();
    gc::set_threshold([1, 10, 10]);
    thread_local!(static BUDGET: Cell<usize> = const { Cell::new(8) });
    struct Alloc {
        next: RefCell<Option<Gc<Alloc>>>,
    }
    impl Trace for Alloc {
        fn trace(&self, v: &mut Visitor<'_>) {
            if BUDGET.with(|b| b.replace(b.get().saturating_sub(1))) > 0 {
                let d = counter();
                let x = node(9, &d);
                link(&x, &x);
            }
            self.next.trace(v);
        }
    }
    let a = Gc::new(Alloc {
        next: RefCell::new(None),
    });
    *a.next.borrow_mut() = Some(a.clone());
    let w = Gc::downgrade(&a);
    drop(a);
    // Each allocation in `trace` passes threshold 0 while collecting.
    gc::collect();
    gc::disable();
    gc::set_threshold([700, 10, 10]);
    while gc::collect() > 0 {}
    assert_eq!(BUDGET.with(Cell::get), 0, "every trace allocated");
    assert_eq!(
        gc::get_objects(None).len(),
        1,
        "what they allocated was collected"
    );
    // Not structural (it allocates): its own cycle is kept; broken here.
    w.upgrade().unwrap().next.borrow_mut().take();
    assert!(w.upgrade().is_none());
}

#[test]
fn handle_api_matches_rc() {
    quiet();
    let a = Gc::new(41);
    let b = a.clone();
    assert!(Gc::ptr_eq(&a, &b));
    assert_eq!(Gc::strong_count(&a), 2);
    assert_eq!(Gc::as_ptr(&a), Gc::as_ptr(&b));
    let w = Gc::downgrade(&a);
    assert_eq!(
        (Gc::weak_count(&a), w.strong_count(), w.weak_count()),
        (1, 2, 1)
    );
    assert_eq!(Gc::try_unwrap(a).unwrap_err(), b);
    let v = Gc::try_unwrap(b).unwrap();
    assert_eq!(v, 41);
    assert!(w.upgrade().is_none());
    assert_eq!(format!("{:?} {}", Gc::new(3), Gc::new("x")), "3 x");
    assert!(Gc::new(1) < Gc::new(2));
    assert_eq!(Gc::<u8>::default(), Gc::from(0u8));
    assert!(Weak::<u8>::new().upgrade().is_none());
    let mut u = Gc::new(String::from("a"));
    Gc::get_mut(&mut u).unwrap().push('b');
    assert_eq!(&*u, "ab");
}

#[test]
fn new_cyclic_builds_a_self_reference() {
    quiet();
    struct Me {
        me: Weak<Me>,
        seen_during_build: bool,
    }
    impl Trace for Me {
        fn trace(&self, v: &mut Visitor<'_>) {
            self.me.trace(v);
        }
    }
    let a = Gc::new_cyclic(|w| Me {
        me: w.clone(),
        seen_during_build: w.upgrade().is_some(),
    });
    assert!(!a.seen_during_build);
    assert!(Gc::ptr_eq(&a.me.upgrade().unwrap(), &a));
    assert!(Gc::is_tracked(&a));
    let w = a.me.clone();
    drop(a);
    assert!(w.upgrade().is_none());
    // A panicking builder leaks nothing and leaves no object behind.
    let r = panic::catch_unwind(|| Gc::<Me>::new_cyclic(|_| panic!("no")));
    assert!(r.is_err());
    assert_eq!(gc::collect(), 0);
}

#[test]
fn weak_inside_the_value_does_not_double_free() {
    quiet();
    struct SelfWeak {
        me: Weak<SelfWeak>,
    }
    impl Trace for SelfWeak {
        fn trace(&self, _: &mut Visitor<'_>) {}
    }
    let a = Gc::new_cyclic(|w| SelfWeak { me: w.clone() });
    assert_eq!(a.me.weak_count(), 1);
    drop(a);
}

fn scale(full: usize) -> usize {
    if cfg!(miri) { 500 } else { full }
}

#[test]
fn deep_list_drops_without_recursion() {
    // The trashcan: a long chain of `Gc`s drops iteratively. 2 MiB of stack.
    let n = scale(1_000_000);
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            quiet();
            struct L {
                next: Option<Gc<L>>,
            }
            impl Trace for L {
                fn trace(&self, v: &mut Visitor<'_>) {
                    self.next.trace(v);
                }
            }
            let mut head = None;
            for _ in 0..n {
                head = Some(Gc::new(L { next: head }));
            }
            drop(head);
            assert_eq!(gc::get_count()[0], 0);
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn large_ring_is_collected_iteratively() {
    let n = scale(200_000);
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            quiet();
            let d = counter();
            let first = node(0, &d);
            let mut prev = first.clone();
            for i in 1..n {
                let x = node(i, &d);
                link(&prev, &x);
                prev = x;
            }
            link(&prev, &first);
            drop((first, prev));
            assert_eq!(gc::collect(), n);
            assert_eq!(d.get(), n);
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn unsized_handles() {
    let s: Gc<str> = "hello".into();
    let t = s.clone();
    assert_eq!(&*t, "hello");
    assert!(!Gc::is_tracked(&s));
    let d = counter();
    let v: Gc<[Gc<Node>]> = vec![node(1, &d), node(2, &d)].into();
    assert_eq!(v.iter().map(|n| n.id).sum::<usize>(), 3);
    let w = Gc::downgrade(&v);
    drop(v);
    assert_eq!(d.get(), 2, "elements dropped with the slice");
    assert!(w.upgrade().is_none());
    let e: Gc<[u8]> = Vec::new().into();
    assert!(e.is_empty());
    let c: Gc<[String]> = (&[String::from("a")][..]).into();
    assert_eq!(c[0], "a");
}
