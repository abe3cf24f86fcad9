//! Trait objects and closures as traced edges, on both heaps: a cycle
//! through each kind of edge (`Box<dyn Trait>`, `Vec<Box<dyn Trait>>`,
//! `Option<Box<dyn Trait>>`, `Gc<dyn Trait>`, a `Closure`'s captures) is
//! collected; one through a trait object whose concrete type's `Trace` is
//! not structural is kept and reported (counted as uncollectable, named in
//! one warning, kept under `SAVEALL`); an edge a `trace` reports from memory
//! its object does not own is named in one warning.
//!
//! The process-wide heap is shared by the tests of this binary: its tests
//! run one at a time (`SYNC`). Each test uses types of its own, so that each
//! type's one warning belongs to one test.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Mutex, MutexGuard};

use ouro::{Callback, Closure, Gc, Structural, Trace, Visitor, Weak, coerce_gc, gc};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The `log` records of target `ouro::gc` at level `warn`.
static WARNINGS: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.target() == "ouro::gc" && m.level() == log::Level::Warn
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            lock(&WARNINGS).push(r.args().to_string());
        }
    }
    fn flush(&self) {}
}

fn capture_warnings() {
    let _ = log::set_logger(&Capture);
    log::set_max_level(log::LevelFilter::Warn);
}

/// The warnings that name `type_name` (a full path, as `type_name` gives).
fn warnings_naming(type_name: &str) -> Vec<String> {
    let quoted = format!("`{type_name}`");
    lock(&WARNINGS)
        .iter()
        .filter(|l| l.contains(&quoted))
        .cloned()
        .collect()
}

/// The thread-local heap of this test's thread, quiet.
fn local() {
    capture_warnings();
    gc::disable();
    gc::collect();
}

mod local {
    use super::*;

    trait Shape: Trace {
        fn area(&self) -> f64;
    }

    /// A shape that points back at a node.
    #[derive(Trace)]
    struct Back {
        node: RefCell<Option<Gc<Node>>>,
    }

    impl Shape for Back {
        fn area(&self) -> f64 {
            1.0
        }
    }

    #[derive(Trace)]
    struct Node {
        boxed: RefCell<Option<Box<dyn Shape>>>,
        many: RefCell<Vec<Box<dyn Shape>>>,
        plain: RefCell<Box<dyn Shape>>,
        shared: RefCell<Option<Gc<dyn Shape>>>,
    }

    #[derive(Trace)]
    struct Empty;
    impl Shape for Empty {
        fn area(&self) -> f64 {
            0.0
        }
    }

    fn node() -> Gc<Node> {
        Gc::new(Node {
            boxed: RefCell::new(None),
            many: RefCell::new(Vec::new()),
            plain: RefCell::new(Box::new(Empty)),
            shared: RefCell::new(None),
        })
    }

    fn back(n: &Gc<Node>) -> Back {
        Back {
            node: RefCell::new(Some(n.clone())),
        }
    }

    /// Drops `n`, whose only other handle is in the cycle, and checks that
    /// one collection frees `objects` objects and `n` with them.
    fn collected(n: Gc<Node>, objects: usize) {
        let w = Gc::downgrade(&n);
        assert!(Gc::is_tracked(&n));
        drop(n);
        assert!(w.upgrade().is_some());
        assert_eq!(gc::collect(), objects);
        assert!(w.upgrade().is_none());
    }

    #[test]
    fn cycle_through_option_box_dyn() {
        local();
        let n = node();
        *n.boxed.borrow_mut() = Some(Box::new(back(&n)));
        assert_eq!(gc::get_referents(&n).len(), 1);
        collected(n, 1);
    }

    #[test]
    fn cycle_through_vec_of_box_dyn() {
        local();
        let n = node();
        n.many.borrow_mut().push(Box::new(Empty));
        n.many.borrow_mut().push(Box::new(back(&n)));
        n.many.borrow_mut().push(Box::new(back(&n)));
        assert_eq!(n.many.borrow().iter().map(|s| s.area()).sum::<f64>(), 2.0);
        collected(n, 1);
    }

    #[test]
    fn cycle_through_box_dyn() {
        local();
        let n = node();
        *n.plain.borrow_mut() = Box::new(back(&n));
        collected(n, 1);
    }

    #[test]
    fn cycle_through_gc_dyn_from_box() {
        local();
        let n = node();
        let s: Gc<dyn Shape> = Gc::from(Box::new(back(&n)) as Box<dyn Shape>);
        assert!(Gc::is_tracked(&s));
        let w: Weak<dyn Shape> = Gc::downgrade(&s);
        assert_eq!(w.upgrade().unwrap().area(), 1.0);
        *n.shared.borrow_mut() = Some(s);
        collected(n, 2);
        assert!(w.upgrade().is_none());
    }

    #[test]
    fn cycle_through_coerced_gc_dyn() {
        local();
        let n = node();
        let b = Gc::new(back(&n));
        let s: Gc<dyn Shape> = coerce_gc!(b.clone());
        let again: Gc<dyn Shape> = coerce_gc!(b.clone());
        assert!(Gc::ptr_eq(&again, &s));
        assert_eq!(Gc::strong_count(&b), 3);
        drop(again);
        drop(b);
        *n.shared.borrow_mut() = Some(s);
        collected(n, 2);
    }

    #[test]
    fn gc_dyn_of_an_untracked_type_stays_untracked() {
        local();
        let s: Gc<dyn Shape> = Gc::from(Box::new(Empty) as Box<dyn Shape>);
        assert!(!Gc::is_tracked(&s));
        let c: Gc<dyn Shape> = coerce_gc!(Gc::new(Empty));
        assert!(!Gc::is_tracked(&c));
        assert_eq!(s.area() + c.area(), 0.0);
    }

    #[test]
    fn gc_str_and_slice_from_box() {
        let s: Gc<str> = Gc::from(Box::<str>::from("text"));
        assert_eq!(&*s, "text");
        let v: Gc<[u32]> = Gc::from(vec![1, 2, 3].into_boxed_slice());
        assert_eq!(&*v, &[1, 2, 3]);
        let a: Gc<[u32]> = coerce_gc!(Gc::new([4u32, 5]));
        assert_eq!(&*a, &[4, 5]);
    }

    /// A DOM node whose listeners capture it.
    #[derive(Trace)]
    struct Element {
        clicks: std::cell::Cell<u32>,
        listeners: RefCell<Vec<Box<dyn Callback<u32>>>>,
    }

    #[test]
    fn cycle_through_closure_env() {
        local();
        let e = Gc::new(Element {
            clicks: std::cell::Cell::new(0),
            listeners: RefCell::new(Vec::new()),
        });
        let listener = Closure::new(e.clone(), |e: &Gc<Element>, n: &u32| {
            e.clicks.set(e.clicks.get() + n)
        });
        e.listeners.borrow_mut().push(Box::new(listener));
        for l in e.listeners.borrow().iter() {
            l.call(&2);
        }
        assert_eq!(e.clicks.get(), 2);
        let w = Gc::downgrade(&e);
        drop(e);
        assert_eq!(gc::collect(), 1);
        assert!(w.upgrade().is_none());
    }

    #[test]
    fn closure_as_gc_dyn_callback() {
        local();
        let e = Gc::new(Element {
            clicks: std::cell::Cell::new(0),
            listeners: RefCell::new(Vec::new()),
        });
        let c: Gc<dyn Callback<u32>> = coerce_gc!(Gc::new(Closure::new(
            e.clone(),
            |e: &Gc<Element>, n: &u32| e.clicks.set(*n)
        )));
        c.call(&7);
        assert_eq!(e.clicks.get(), 7);
        assert!(Gc::is_tracked(&c));
        drop(e);
        drop(c);
    }

    /// A shape whose hand-written `trace` makes no promise.
    struct Unpromised {
        node: RefCell<Option<Gc<Node>>>,
    }
    impl Trace for Unpromised {
        fn trace(&self, v: &mut Visitor<'_>) {
            self.node.trace(v)
        }
    }
    impl Shape for Unpromised {
        fn area(&self) -> f64 {
            2.0
        }
    }

    /// `Unpromised` again, for the SAVEALL test alone: the warning is once
    /// per type and heap, and the tests of this file run on parallel threads
    /// that share the captured log.
    struct UnpromisedSaved {
        node: RefCell<Option<Gc<Node>>>,
    }
    impl Trace for UnpromisedSaved {
        fn trace(&self, v: &mut Visitor<'_>) {
            self.node.trace(v)
        }
    }
    impl Shape for UnpromisedSaved {
        fn area(&self) -> f64 {
            2.0
        }
    }

    /// The same, promised.
    struct Promised {
        node: RefCell<Option<Gc<Node>>>,
    }
    impl Trace for Promised {
        fn trace(&self, v: &mut Visitor<'_>) {
            self.node.trace(v)
        }
        fn structural() -> Structural<Self> {
            // SAFETY: `trace` only calls `trace` on a field of ouro's types.
            unsafe { Structural::promise() }.and(<RefCell<Option<Gc<Node>>>>::structural())
        }
    }
    impl Shape for Promised {
        fn area(&self) -> f64 {
            3.0
        }
    }

    #[test]
    fn unstructural_dyn_edge_is_kept_and_reported_once() {
        local();
        let name = std::any::type_name::<Unpromised>();
        let before = gc::get_stats()[2].uncollectable;
        for round in 0..2 {
            let n = node();
            *n.boxed.borrow_mut() = Some(Box::new(Unpromised {
                node: RefCell::new(Some(n.clone())),
            }));
            let w = Gc::downgrade(&n);
            drop(n);
            assert_eq!(gc::collect(), 0, "round {round}");
            assert!(w.upgrade().is_some());
            // Its referents are still found (introspection traces it).
            assert_eq!(gc::get_referents(&w.upgrade().unwrap()).len(), 1);
            // Break the cycle by hand: counting then frees it.
            let n = w.upgrade().unwrap();
            *n.boxed.borrow_mut() = None;
            drop(n);
            assert!(w.upgrade().is_none());
        }
        assert_eq!(gc::get_stats()[2].uncollectable - before, 2);
        assert_eq!(warnings_naming(name).len(), 1, "{:?}", lock(&WARNINGS));
    }

    #[test]
    fn unstructural_dyn_edge_is_saved_under_saveall() {
        local();
        gc::set_debug(gc::DebugFlags::SAVEALL);
        let n = node();
        n.many.borrow_mut().push(Box::new(UnpromisedSaved {
            node: RefCell::new(Some(n.clone())),
        }));
        let w = Gc::downgrade(&n);
        drop(n);
        assert_eq!(gc::collect(), 0);
        gc::set_debug(gc::DebugFlags::empty());
        let saved = gc::garbage();
        let n = w.upgrade().unwrap();
        assert!(
            saved
                .iter()
                .any(|o| o.downcast::<Node>().is_some_and(|g| Gc::ptr_eq(&g, &n)))
        );
        drop(saved);
        n.many.borrow_mut().clear();
        drop(n);
        gc::clear_garbage();
        assert!(w.upgrade().is_none());
    }

    #[test]
    fn promised_dyn_edge_is_collected() {
        local();
        let n = node();
        *n.boxed.borrow_mut() = Some(Box::new(Promised {
            node: RefCell::new(Some(n.clone())),
        }));
        collected(n, 1);
    }

    /// Every container of ouro's, in a cycle: collected, and no edge of
    /// theirs is taken for one from memory the object does not own.
    #[derive(Trace)]
    struct Everything {
        boxed: Box<Option<Gc<Everything>>>,
        list: RefCell<Vec<Option<Gc<Everything>>>>,
        map: RefCell<std::collections::HashMap<u32, Gc<Everything>>>,
        tree: RefCell<std::collections::BTreeMap<u32, Vec<Gc<Everything>>>>,
        deque: RefCell<std::collections::VecDeque<(u8, Gc<Everything>)>>,
        locked: Mutex<Option<Gc<Everything>>>,
        once: std::cell::OnceCell<Gc<Everything>>,
        shapes: RefCell<Vec<Box<dyn Callback<()>>>>,
    }

    #[test]
    fn ouro_containers_are_never_rejected() {
        local();
        let e = Gc::new(Everything {
            boxed: Box::new(None),
            list: RefCell::new(Vec::new()),
            map: RefCell::new(Default::default()),
            tree: RefCell::new(Default::default()),
            deque: RefCell::new(Default::default()),
            locked: Mutex::new(None),
            once: std::cell::OnceCell::new(),
            shapes: RefCell::new(Vec::new()),
        });
        e.list.borrow_mut().push(Some(e.clone()));
        e.map.borrow_mut().insert(1, e.clone());
        e.tree.borrow_mut().insert(2, vec![e.clone(), e.clone()]);
        e.deque.borrow_mut().push_back((3, e.clone()));
        *lock(&e.locked) = Some(e.clone());
        let _ = e.once.set(e.clone());
        e.shapes.borrow_mut().push(Box::new(Closure::new(
            e.clone(),
            |_: &Gc<Everything>, _: &()| {},
        )));
        assert_eq!(Gc::strong_count(&e), 9);
        assert_eq!(gc::get_referents(&e).len(), 8);
        let w = Gc::downgrade(&e);
        drop(e);
        assert_eq!(gc::collect(), 1);
        assert!(w.upgrade().is_none());
        let name = std::any::type_name::<Everything>();
        assert!(warnings_naming(name).is_empty(), "{:?}", lock(&WARNINGS));
    }

    /// Reports a handle it keeps in an `Rc`: memory the object does not own.
    struct Shared {
        rc: Rc<RefCell<Option<Gc<Shared>>>>,
    }
    impl Trace for Shared {
        fn trace(&self, v: &mut Visitor<'_>) {
            self.rc.borrow().trace(v)
        }
    }

    #[test]
    fn rejected_edge_is_warned_once_per_type() {
        local();
        let name = std::any::type_name::<Shared>();
        for _ in 0..3 {
            let rc = Rc::new(RefCell::new(None));
            let s = Gc::new(Shared { rc: rc.clone() });
            *rc.borrow_mut() = Some(s.clone());
            drop(s);
            assert_eq!(gc::collect(), 0);
            // Not freed: the edge was not counted (a leak, now named).
            *rc.borrow_mut() = None;
        }
        let w = warnings_naming(name);
        assert_eq!(w.len(), 1, "{:?}", lock(&WARNINGS));
        assert!(w[0].contains("not inside the value"), "{}", w[0]);
    }
}

mod shared {
    use super::{WARNINGS, lock, warnings_naming};
    use ouro::sync::{Gc, Weak, coerce_gc, gc};
    use ouro::{Callback, Closure, Structural, Trace, Visitor};
    use std::sync::{Mutex, MutexGuard};

    static SYNC: Mutex<()> = Mutex::new(());

    fn serialized() -> MutexGuard<'static, ()> {
        let guard = lock(&SYNC);
        super::capture_warnings();
        gc::disable();
        gc::set_debug(gc::DebugFlags::empty());
        gc::collect();
        gc::wait_for_drops();
        guard
    }

    trait Shape: Trace + Send + Sync {
        fn area(&self) -> f64;
    }

    #[derive(Trace)]
    struct Back {
        node: Mutex<Option<Gc<Node>>>,
    }
    impl Shape for Back {
        fn area(&self) -> f64 {
            1.0
        }
    }

    #[derive(Trace)]
    struct Empty;
    impl Shape for Empty {
        fn area(&self) -> f64 {
            0.0
        }
    }

    #[derive(Trace)]
    struct Node {
        boxed: Mutex<Option<Box<dyn Shape>>>,
        many: Mutex<Vec<Box<dyn Shape>>>,
        plain: Mutex<Box<dyn Shape>>,
        shared: Mutex<Option<Gc<dyn Shape>>>,
        listeners: Mutex<Vec<Box<dyn Callback<u32> + Send + Sync>>>,
    }

    fn node() -> Gc<Node> {
        Gc::new(Node {
            boxed: Mutex::new(None),
            many: Mutex::new(Vec::new()),
            plain: Mutex::new(Box::new(Empty)),
            shared: Mutex::new(None),
            listeners: Mutex::new(Vec::new()),
        })
    }

    fn back(n: &Gc<Node>) -> Back {
        Back {
            node: Mutex::new(Some(n.clone())),
        }
    }

    /// Drops `n` on another thread and checks a collection frees it.
    fn collected(n: Gc<Node>) {
        let w = Gc::downgrade(&n);
        std::thread::spawn(move || drop(n)).join().unwrap();
        assert!(w.upgrade().is_some());
        gc::collect();
        gc::wait_for_drops();
        assert!(w.upgrade().is_none());
    }

    #[test]
    fn cycles_through_each_dyn_edge_are_collected() {
        let _g = serialized();
        let n = node();
        *lock(&n.boxed) = Some(Box::new(back(&n)));
        collected(n);

        let n = node();
        lock(&n.many).push(Box::new(back(&n)));
        collected(n);

        let n = node();
        *lock(&n.plain) = Box::new(back(&n));
        collected(n);

        let n = node();
        let s: Gc<dyn Shape> = Gc::from(Box::new(back(&n)) as Box<dyn Shape>);
        let ws: Weak<dyn Shape> = Gc::downgrade(&s);
        assert_eq!(ws.upgrade().unwrap().area(), 1.0);
        *lock(&n.shared) = Some(s);
        collected(n);
        assert!(ws.upgrade().is_none());

        let n = node();
        let s: Gc<dyn Shape> = coerce_gc!(Gc::new(back(&n)));
        assert!(Gc::is_tracked(&s));
        *lock(&n.shared) = Some(s);
        collected(n);

        let n = node();
        let l = Closure::new(n.clone(), |n: &Gc<Node>, k: &u32| {
            let _ = (Gc::strong_count(n), k);
        });
        l.call(&1);
        lock(&n.listeners).push(Box::new(l));
        collected(n);
    }

    struct Unpromised {
        node: Mutex<Option<Gc<Node>>>,
    }
    impl Trace for Unpromised {
        fn trace(&self, v: &mut Visitor<'_>) {
            self.node.trace(v)
        }
    }
    impl Shape for Unpromised {
        fn area(&self) -> f64 {
            2.0
        }
    }

    struct Promised {
        node: Mutex<Option<Gc<Node>>>,
    }
    impl Trace for Promised {
        fn trace(&self, v: &mut Visitor<'_>) {
            self.node.trace(v)
        }
        fn structural() -> Structural<Self> {
            // SAFETY: `trace` only calls `trace` on a field of ouro's types.
            unsafe { Structural::promise() }.and(<Mutex<Option<Gc<Node>>>>::structural())
        }
    }
    impl Shape for Promised {
        fn area(&self) -> f64 {
            3.0
        }
    }

    #[test]
    fn unstructural_dyn_edge_is_reported_once_and_saved() {
        let _g = serialized();
        let name = std::any::type_name::<Unpromised>();
        let before = gc::get_stats()[2].uncollectable;
        let mut kept = Vec::new();
        for round in 0..2 {
            let n = node();
            *lock(&n.boxed) = Some(Box::new(Unpromised {
                node: Mutex::new(Some(n.clone())),
            }));
            let w = Gc::downgrade(&n);
            drop(n);
            gc::collect();
            gc::wait_for_drops();
            assert!(w.upgrade().is_some(), "round {round}");
            kept.push(w);
        }
        // Each collection counts what it finds: 1, then both.
        assert_eq!(gc::get_stats()[2].uncollectable - before, 3);
        assert_eq!(warnings_naming(name).len(), 1, "{:?}", lock(&WARNINGS));

        gc::set_debug(gc::DebugFlags::SAVEALL);
        gc::collect();
        gc::wait_for_drops();
        gc::set_debug(gc::DebugFlags::empty());
        let saved = gc::garbage();
        for w in &kept {
            let n = w.upgrade().unwrap();
            assert!(
                saved
                    .iter()
                    .any(|o| o.downcast::<Node>().is_some_and(|g| Gc::ptr_eq(&g, &n)))
            );
        }
        drop(saved);
        gc::clear_garbage();
        for w in kept {
            let n = w.upgrade().unwrap();
            *lock(&n.boxed) = None;
            drop(n);
            gc::wait_for_drops();
            assert!(w.upgrade().is_none());
        }
    }

    #[test]
    fn promised_dyn_edge_is_collected() {
        let _g = serialized();
        let n = node();
        *lock(&n.boxed) = Some(Box::new(Promised {
            node: Mutex::new(Some(n.clone())),
        }));
        collected(n);
    }
}
