//! Tests of `weakref` on both heaps: Python's documented behaviour of
//! `weakref.finalize`, `weakref.ref` callbacks and the weak containers, and
//! the engine's death hooks (they also run under Miri).

use core::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;

use ouro_cyclegc::raw;

use crate::gc::{self, DebugFlags};
use crate::weakref::{self, WeakKeyMap, WeakSet, WeakValueMap};
use crate::{Gc, Trace, Visitor};

/// A node that can make cycles and counts its drops.
struct Node {
    next: RefCell<Option<Gc<Node>>>,
    drops: Rc<Cell<usize>>,
}

impl Trace for Node {
    fn structural() -> crate::Structural<Self> {
        // SAFETY: `trace` only calls `trace` on a field of ouro's types.
        unsafe { crate::Structural::promise() }
    }
    fn trace(&self, v: &mut Visitor<'_>) {
        self.next.trace(v);
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.drops.set(self.drops.get() + 1);
    }
}

fn node(drops: &Rc<Cell<usize>>) -> Gc<Node> {
    Gc::new(Node {
        next: RefCell::new(None),
        drops: drops.clone(),
    })
}

fn counter() -> (Rc<Cell<usize>>, impl FnOnce() + 'static) {
    let c = Rc::new(Cell::new(0));
    let c2 = c.clone();
    (c, move || c2.set(c2.get() + 1))
}

#[test]
fn a_finalizer_runs_when_the_last_handle_is_dropped() {
    let (runs, f) = counter();
    let obj = Gc::new(String::from("x"));
    let fin = weakref::finalize(&obj, f);
    let other = obj.clone();
    drop(obj);
    assert_eq!(runs.get(), 0, "a handle is left");
    assert!(fin.alive());
    drop(other);
    assert_eq!(runs.get(), 1);
    assert!(!fin.alive());
    assert!(!fin.call(), "ran already");
    assert!(!fin.detach(), "ran already");
}

#[test]
fn a_finalizer_runs_from_a_collection_of_cyclic_garbage() {
    gc::disable();
    let drops = Rc::new(Cell::new(0));
    let (a, b) = (node(&drops), node(&drops));
    *a.next.borrow_mut() = Some(b.clone());
    *b.next.borrow_mut() = Some(a.clone());
    let (runs, f) = counter();
    let fin = weakref::finalize(&a, f);
    let seen_dead = Rc::new(Cell::new(false));
    let (w, s) = (Gc::downgrade(&a), seen_dead.clone());
    let _fin2 = weakref::finalize(&b, move || s.set(w.upgrade().is_none()));
    drop((a, b));
    assert_eq!(runs.get(), 0);
    assert_eq!(gc::collect(), 2);
    assert_eq!(runs.get(), 1);
    assert_eq!(drops.get(), 2);
    assert!(!fin.alive());
    assert!(seen_dead.get(), "hooks see their cycle dead");
}

#[test]
fn a_detached_finalizer_never_runs() {
    let obj = Gc::new(1);
    let fin = weakref::finalize(&obj, || panic!("detached"));
    assert!(fin.alive());
    assert!(fin.detach());
    assert!(!fin.alive());
    assert!(!fin.detach(), "only the first detach finds it pending");
    drop(obj);
    assert!(!fin.call());
}

#[test]
fn calling_a_finalizer_early_runs_it_once() {
    let (runs, f) = counter();
    let obj = Gc::new(1);
    let fin = weakref::finalize(&obj, f);
    let clone = fin.clone();
    assert!(clone.call());
    assert_eq!(runs.get(), 1);
    assert!(!fin.alive(), "clones share the state");
    assert!(!fin.call());
    drop(obj);
    assert_eq!(runs.get(), 1);
    assert_eq!(format!("{fin:?}"), "Finalizer { alive: false }");
}

#[test]
fn dropping_the_finalizer_object_does_not_cancel_it() {
    let (runs, f) = counter();
    let obj = Gc::new(1);
    drop(weakref::finalize(&obj, f));
    drop(obj);
    assert_eq!(runs.get(), 1);
}

#[test]
fn finalizers_run_in_registration_order_and_on_try_unwrap() {
    let order = Rc::new(RefCell::new(Vec::new()));
    let obj = Gc::new(String::from("v"));
    for i in 0..3 {
        let o = order.clone();
        weakref::finalize(&obj, move || o.borrow_mut().push(i));
    }
    let v = Gc::try_unwrap(obj).unwrap();
    assert_eq!(v, "v");
    assert_eq!(*order.borrow(), [0, 1, 2]);
}

#[test]
fn a_panicking_finalizer_does_not_stop_the_drop_nor_the_other_hooks() {
    let before = raw::live_objects();
    let drops = Rc::new(Cell::new(0));
    let obj = node(&drops);
    let (runs, f) = counter();
    weakref::finalize(&obj, || panic!("hook"));
    weakref::finalize(&obj, f);
    let r = panic::catch_unwind(AssertUnwindSafe(|| drop(obj)));
    assert!(r.is_err(), "the panic is resumed");
    assert_eq!(runs.get(), 1, "the other hook ran");
    assert_eq!(drops.get(), 1, "the value was dropped");
    assert_eq!(raw::live_objects(), before, "and freed");
}

#[test]
fn a_panicking_hook_in_a_collection_is_resumed_after_it() {
    gc::disable();
    let drops = Rc::new(Cell::new(0));
    let a = node(&drops);
    *a.next.borrow_mut() = Some(a.clone());
    let (runs, f) = counter();
    weakref::finalize(&a, || panic!("hook"));
    weakref::finalize(&a, f);
    drop(a);
    assert!(panic::catch_unwind(gc::collect).is_err());
    assert_eq!((runs.get(), drops.get()), (1, 1));
    assert_eq!(gc::collect(), 0, "the heap is consistent");
    assert!(gc::get_objects(None).is_empty());
}

#[test]
fn a_hook_may_drop_the_last_handle_of_another_hooked_object() {
    let (runs, f) = counter();
    let inner = Gc::new(2);
    weakref::finalize(&inner, f);
    let outer = Gc::new(1);
    weakref::finalize(&outer, move || drop(inner));
    drop(outer);
    assert_eq!(runs.get(), 1);
}

#[test]
fn a_finalizer_of_an_object_kept_by_saveall_waits() {
    gc::disable();
    gc::set_debug(DebugFlags::SAVEALL);
    let drops = Rc::new(Cell::new(0));
    let a = node(&drops);
    *a.next.borrow_mut() = Some(a.clone());
    let (runs, f) = counter();
    let fin = weakref::finalize(&a, f);
    drop(a);
    assert_eq!(gc::collect(), 1);
    assert_eq!(runs.get(), 0, "kept alive in garbage()");
    gc::set_debug(DebugFlags::empty());
    gc::clear_garbage();
    gc::collect();
    assert_eq!(runs.get(), 1);
    assert!(!fin.alive());
}

/// The side table is keyed by address: an object later allocated at a dead
/// object's address inherits nothing from it.
#[test]
fn a_new_object_at_a_dead_objects_address_starts_without_hooks() {
    let (runs, f) = counter();
    let a = Gc::new(7u64);
    let addr = Gc::as_ptr(&a).addr();
    let fa = weakref::finalize(&a, f);
    drop(a);
    assert_eq!(runs.get(), 1);
    let b = Gc::new(8u64);
    assert_eq!(Gc::as_ptr(&b).addr(), addr, "the pool reuses the block");
    let (runs_b, g) = counter();
    let fb = weakref::finalize(&b, g);
    assert!(!fa.detach() && !fa.call(), "the old finalizer is gone");
    assert!(fb.alive());
    drop(b);
    assert_eq!((runs.get(), runs_b.get()), (1, 1));
}

#[test]
fn a_finalizer_on_a_value_dropped_by_the_collector_starts_detached() {
    gc::disable();
    struct Keeper {
        me: RefCell<Option<Gc<Keeper>>>,
        out: Rc<RefCell<Option<Gc<Keeper>>>>,
    }
    impl Trace for Keeper {
        fn structural() -> crate::Structural<Self> {
            // SAFETY: `trace` only calls `trace` on a field of ouro's types.
            unsafe { crate::Structural::promise() }
        }
        fn trace(&self, v: &mut Visitor<'_>) {
            self.me.trace(v);
        }
    }
    impl Drop for Keeper {
        fn drop(&mut self) {
            // Moves a handle to itself out of the garbage.
            *self.out.borrow_mut() = self.me.borrow_mut().take();
        }
    }
    let out = Rc::new(RefCell::new(None));
    let k = Gc::new(Keeper {
        me: RefCell::new(None),
        out: out.clone(),
    });
    *k.me.borrow_mut() = Some(k.clone());
    drop(k);
    gc::collect();
    let dead = out.borrow_mut().take().expect("moved out");
    let fin = weakref::finalize(&dead, || panic!("never"));
    assert!(!fin.alive());
    let r = weakref::ref_with_callback(&dead, |_| panic!("never"));
    assert!(r.upgrade().is_none());
    drop(dead);
}

#[test]
fn a_weakref_callback_runs_when_the_referent_dies() {
    let obj = Gc::new(String::from("x"));
    let died = Rc::new(Cell::new(false));
    let (d, probe) = (died.clone(), Gc::downgrade(&obj));
    let r = weakref::ref_with_callback(&obj, move |w| {
        assert!(w.ptr_eq(&probe));
        assert!(w.upgrade().is_none());
        d.set(true);
    });
    assert_eq!(*r.upgrade().unwrap(), "x");
    drop(obj);
    assert!(died.get());
    assert!(r.upgrade().is_none());
    assert_eq!(format!("{r:?}"), "WeakRef { alive: false }");
}

#[test]
fn a_weakref_dropped_first_never_calls_back() {
    let before = raw::live_objects();
    let obj = Gc::new(String::from("x"));
    let r = weakref::ref_with_callback(&obj, |_| panic!("dropped first"));
    drop(r);
    drop(obj);
    assert_eq!(raw::live_objects(), before, "nothing kept");
}

#[test]
fn a_weakref_callback_runs_from_a_collection() {
    gc::disable();
    let drops = Rc::new(Cell::new(0));
    let a = node(&drops);
    *a.next.borrow_mut() = Some(a.clone());
    let (runs, f) = counter();
    let _r = weakref::ref_with_callback(&a, move |_| f());
    drop(a);
    gc::collect();
    assert_eq!(runs.get(), 1);
}

#[test]
fn a_weak_value_map_entry_goes_when_its_value_dies() {
    gc::disable();
    let drops = Rc::new(Cell::new(0));
    let mut m = WeakValueMap::new();
    let (a, b, c) = (node(&drops), node(&drops), node(&drops));
    *c.next.borrow_mut() = Some(c.clone());
    m.insert("a", &a);
    m.insert("b", &b);
    m.insert("c", &c);
    assert_eq!(m.len(), 3);
    drop(a); // by count
    assert_eq!(m.len(), 2);
    assert!(m.get("a").is_none() && !m.contains_key("a"));
    drop(c);
    assert_eq!(m.len(), 2, "c is alive until collected");
    gc::collect(); // by the collector
    assert_eq!(m.len(), 1);
    let live: Vec<_> = m.iter().map(|(k, _)| *k).collect();
    assert_eq!(live, ["b"]);
    // A key whose value died takes a new value: the queued death of the
    // old one does not remove the new entry.
    let a2 = node(&drops);
    m.insert("b", &a2);
    drop(b);
    m.insert("a", &a2);
    assert_eq!(m.len(), 2);
    assert!(Gc::ptr_eq(&m.get("b").unwrap(), &a2));
    assert!(Gc::ptr_eq(&m.remove("b").unwrap(), &a2));
    assert_eq!(m.len(), 1);
    m.clear();
    assert!(m.is_empty());
    drop(a2);
}

#[test]
fn a_weak_value_map_reinserted_key_survives_the_old_values_death() {
    let mut m = WeakValueMap::new();
    let (old, new) = (Gc::new(1), Gc::new(2));
    m.insert(1u8, &old);
    drop(old); // queued
    m.insert(1u8, &new); // purges the queue, then inserts
    assert_eq!(m.len(), 1);
    assert_eq!(*m.get(&1).unwrap(), 2);
    let other = Gc::new(3);
    m.insert(2u8, &other);
    drop(other);
    // Queued, not purged yet: `len` still counts right.
    assert_eq!(m.len(), 1);
    assert_eq!(format!("{m:?}"), "{1: 2}");
}

#[test]
fn dropping_a_weak_map_removes_its_hooks() {
    let before = raw::live_objects();
    let v = Gc::new(1);
    let k = Gc::new(2);
    {
        let mut vm = WeakValueMap::new();
        vm.insert(String::from("v"), &v);
        let mut km = WeakKeyMap::new();
        km.insert(&k, String::from("k"));
        let mut s = WeakSet::new();
        s.insert(&k);
    }
    // No hook is left to run: finalizers registered now are the only ones.
    let (runs, f) = counter();
    weakref::finalize(&v, f);
    drop((v, k));
    assert_eq!(runs.get(), 1);
    assert_eq!(raw::live_objects(), before);
}

#[test]
fn a_weak_key_map_entry_goes_when_its_key_dies() {
    gc::disable();
    let drops = Rc::new(Cell::new(0));
    let value_drops = Rc::new(Cell::new(0));
    struct V(Rc<Cell<usize>>);
    impl Drop for V {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }
    let mut m = WeakKeyMap::new();
    let (a, b) = (node(&drops), node(&drops));
    *b.next.borrow_mut() = Some(b.clone());
    m.insert(&a, V(value_drops.clone()));
    m.insert(&b, V(value_drops.clone()));
    assert_eq!(m.len(), 2);
    assert!(m.contains_key(&a));
    drop(a);
    assert_eq!(m.len(), 1);
    drop(b);
    gc::collect();
    assert_eq!(m.len(), 0);
    assert_eq!(value_drops.get(), 0, "values go at the next call");
    let c = node(&drops);
    m.insert(&c, V(value_drops.clone()));
    assert_eq!(value_drops.get(), 2, "purged");
    assert_eq!(m.iter().count(), 1);
    assert!(m.remove(&c).is_some());
    assert_eq!(value_drops.get(), 3);
}

#[test]
fn a_weak_key_map_compares_keys_by_identity() {
    let mut m = WeakKeyMap::new();
    let (a, b) = (Gc::new(1), Gc::new(1));
    m.insert(&a, "a");
    assert_eq!(m.get(&b), None);
    assert_eq!(m.insert(&a, "a2"), Some("a"));
    *m.get_mut(&a).unwrap() = "a3";
    assert_eq!(m.get(&a), Some(&"a3"));
    assert_eq!(format!("{m:?}"), r#"{1: "a3"}"#);
}

#[test]
fn a_weak_set_counts_its_live_objects() {
    let mut s = WeakSet::new();
    let objs: Vec<_> = (0..5).map(Gc::new).collect();
    for o in &objs {
        assert!(s.insert(o));
    }
    assert!(!s.insert(&objs[0]));
    assert_eq!(s.len(), 5);
    let mut objs = objs;
    objs.truncate(2);
    assert_eq!(s.len(), 2);
    assert!(s.contains(&objs[1]));
    assert!(s.remove(&objs[1]));
    assert_eq!(s.len(), 1);
    assert_eq!(s.iter().map(|g| *g).collect::<Vec<_>>(), [0]);
    s.clear();
    assert!(s.is_empty());
}

mod sync {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use crate::sync::weakref::{self, WeakKeyMap, WeakSet, WeakValueMap};
    use crate::sync::{Gc, gc};
    use crate::{Structural, Trace, Visitor};

    struct Node {
        next: Mutex<Option<Gc<Node>>>,
    }

    impl Trace for Node {
        fn structural() -> Structural<Self> {
            // SAFETY: `trace` only calls `trace` on a field of ouro's types.
            unsafe { Structural::promise() }
        }
        fn trace(&self, v: &mut Visitor<'_>) {
            self.next.trace(v);
        }
    }

    fn cyclic() -> Gc<Node> {
        let a = Gc::new(Node {
            next: Mutex::new(None),
        });
        *a.next.lock().unwrap() = Some(a.clone());
        a
    }

    fn counter() -> (Arc<AtomicUsize>, impl FnOnce() + Send + 'static) {
        let c = Arc::new(AtomicUsize::new(0));
        let c2 = c.clone();
        (c, move || {
            c2.fetch_add(1, Ordering::SeqCst);
        })
    }

    #[test]
    fn a_finalizer_runs_on_the_thread_that_frees_by_count() {
        let (runs, f) = counter();
        let obj = Gc::new(String::from("x"));
        let fin = weakref::finalize(&obj, f);
        let t = std::thread::spawn(move || drop(obj));
        t.join().unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(!fin.alive());
    }

    #[test]
    fn a_finalizer_runs_from_a_collection_of_cyclic_garbage() {
        let (runs, f) = counter();
        let a = cyclic();
        let fin = weakref::finalize(&a, f);
        drop(a);
        gc::collect();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(!fin.alive());
    }

    #[test]
    fn detach_call_and_alive() {
        let obj = Gc::new(1);
        let fin = weakref::finalize(&obj, || panic!("detached"));
        assert!(fin.alive() && fin.detach() && !fin.detach() && !fin.alive());
        let (runs, f) = counter();
        let fin = weakref::finalize(&obj, f);
        assert!(fin.call() && !fin.call());
        drop(obj);
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_panicking_finalizer_is_resumed_after_the_drop() {
        let (runs, f) = counter();
        let obj = Gc::new(String::from("x"));
        let w = Gc::downgrade(&obj);
        weakref::finalize(&obj, || panic!("hook"));
        weakref::finalize(&obj, f);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(obj)));
        assert!(r.is_err());
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(w.upgrade().is_none());
    }

    #[test]
    fn a_weakref_callback_runs_unless_dropped_first() {
        let (runs, f) = counter();
        let a = cyclic();
        let r = weakref::ref_with_callback(&a, move |w| {
            assert!(w.upgrade().is_none());
            f()
        });
        let b = Gc::new(2);
        drop(weakref::ref_with_callback(&b, |_| panic!("dropped first")));
        drop((a, b));
        gc::collect();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(r.upgrade().is_none());
    }

    #[test]
    fn weak_maps_and_sets_lose_dead_entries() {
        let mut vm = WeakValueMap::new();
        let mut km = WeakKeyMap::new();
        let mut s = WeakSet::new();
        let (a, b) = (
            cyclic(),
            Gc::new(Node {
                next: Mutex::new(None),
            }),
        );
        vm.insert(1, &a);
        vm.insert(2, &b);
        km.insert(&a, "a");
        km.insert(&b, "b");
        s.insert(&a);
        s.insert(&b);
        assert_eq!((vm.len(), km.len(), s.len()), (2, 2, 2));
        // `b` dies on another thread, by count.
        std::thread::spawn(move || drop(b)).join().unwrap();
        assert_eq!((vm.len(), km.len(), s.len()), (1, 1, 1));
        assert!(vm.get(&2).is_none());
        assert_eq!(km.get(&a), Some(&"a"));
        drop(a);
        gc::collect();
        assert_eq!((vm.len(), km.len(), s.len()), (0, 0, 0));
        assert_eq!(vm.iter().count() + km.iter().count() + s.iter().count(), 0);
        let c = Gc::new(Node {
            next: Mutex::new(None),
        });
        vm.insert(3, &c);
        assert_eq!(vm.len(), 1);
        assert!(Gc::ptr_eq(&vm.remove(&3).unwrap(), &c));
    }
}
