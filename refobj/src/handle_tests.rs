//! Tests of the `Rc` vocabulary of the thread-local handles (std's
//! documented behaviour of each method) and of tracked slices; they also
//! run under Miri (`handle_tests` filter).

use core::cell::{Cell, RefCell};
use std::borrow::Cow;
use std::rc::Rc;

use crate::{Gc, Trace, Visitor, Weak, gc};

/// A node whose edges are a slice object: cycles go through `Gc<[Gc<S>]>`.
struct S {
    edges: RefCell<Option<Gc<[Gc<S>]>>>,
    drops: Rc<Cell<usize>>,
}

impl Trace for S {
    fn structural() -> crate::Structural<Self> {
        // SAFETY: `trace` only calls `trace` on a field, whose type's impls are
        // ouro's own (structural).
        unsafe { crate::Structural::promise() }
    }
    fn trace(&self, v: &mut Visitor<'_>) {
        self.edges.trace(v);
    }
}

impl Drop for S {
    fn drop(&mut self) {
        self.drops.set(self.drops.get() + 1);
    }
}

impl Clone for S {
    fn clone(&self) -> Self {
        S {
            edges: RefCell::new(self.edges.borrow().clone()),
            drops: self.drops.clone(),
        }
    }
}

fn s(drops: &Rc<Cell<usize>>) -> Gc<S> {
    Gc::new(S {
        edges: RefCell::new(None),
        drops: drops.clone(),
    })
}

fn quiet() -> Rc<Cell<usize>> {
    gc::disable();
    Rc::new(Cell::new(0))
}

#[test]
fn slice_cycle_is_collected() {
    let d = quiet();
    let a = s(&d);
    let b = s(&d);
    let edges: Gc<[Gc<S>]> = vec![a.clone(), b.clone()].into();
    assert!(Gc::is_tracked(&edges));
    assert_eq!(gc::get_referents(&edges).len(), 2);
    *a.edges.borrow_mut() = Some(edges.clone());
    *b.edges.borrow_mut() = Some(edges.clone());
    let watch = Gc::downgrade(&edges);
    drop((a, b, edges));
    assert_eq!(d.get(), 0);
    assert_eq!(gc::collect(), 3);
    assert_eq!(d.get(), 2);
    assert!(watch.upgrade().is_none());
    drop(watch); // frees the slice's memory through its weak handle
}

#[test]
fn slice_constructors_are_tracked_and_freed_by_counting() {
    let d = quiet();
    let from_iter: Gc<[Gc<S>]> = (0..3).map(|_| s(&d)).collect();
    let from_array: Gc<[Gc<S>]> = Gc::from([s(&d)]);
    let from_slice: Gc<[Gc<S>]> = Gc::from(&from_iter[..]);
    let from_cow: Gc<[Gc<S>]> = Gc::from(Cow::Borrowed(&from_array[..]));
    let empty: Gc<[Gc<S>]> = Gc::default();
    for g in [&from_iter, &from_array, &from_slice, &from_cow, &empty] {
        assert!(Gc::is_tracked(g));
    }
    assert_eq!(from_slice.len(), 3);
    assert!(empty.is_empty());
    assert!(!Gc::is_tracked(&Gc::<[u64]>::from(vec![1, 2])));
    drop((from_iter, from_array, from_slice, from_cow, empty));
    assert_eq!(d.get(), 4);
    assert_eq!(gc::collect(), 0);
}

#[test]
fn over_aligned_tracked_slice() {
    #[repr(align(64))]
    struct Big(Gc<u8>);
    impl Trace for Big {
        fn structural() -> crate::Structural<Self> {
            // SAFETY: `trace` only calls `trace` on a field.
            unsafe { crate::Structural::promise() }
        }
        fn trace(&self, v: &mut Visitor<'_>) {
            self.0.trace(v)
        }
    }
    quiet();
    let x = Gc::new(7u8);
    let big: Gc<[Big]> = (0..3).map(|_| Big(x.clone())).collect();
    assert_eq!((Gc::as_ptr(&big) as *const Big).addr() % 64, 0);
    assert_eq!(Gc::strong_count(&x), 4);
    drop(big);
    assert_eq!(Gc::strong_count(&x), 1);
}

#[test]
fn strings() {
    let a: Gc<str> = Gc::from("abc");
    let b: Gc<str> = Gc::from(String::from("abc"));
    let c: Gc<str> = Gc::from(Cow::Owned::<str>("abc".into()));
    let e: Gc<str> = Gc::default();
    assert!(a == b && b == c);
    assert_eq!(&*e, "");
}

#[test]
fn make_mut_follows_rc() {
    let mut data = Gc::new(5);
    let before = Gc::as_ptr(&data);
    *Gc::make_mut(&mut data) += 1; // unique: in place
    assert_eq!(Gc::as_ptr(&data), before);
    let other = data.clone();
    *Gc::make_mut(&mut data) += 1; // shared: cloned
    assert_ne!(Gc::as_ptr(&data), before);
    assert_eq!((*data, *other), (7, 6));
    assert_eq!((Gc::strong_count(&data), Gc::strong_count(&other)), (1, 1));

    // Weak handles only: moved, and the weak handles disassociated.
    let mut data = Gc::new(String::from("x"));
    let weak = Gc::downgrade(&data);
    let s_ptr = data.as_ptr();
    let m = Gc::make_mut(&mut data);
    assert_eq!(m.as_ptr(), s_ptr); // the String moved, not cloned
    m.push('y');
    assert!(weak.upgrade().is_none());
    assert_eq!(weak.weak_count(), 0);
    assert_eq!(Gc::weak_count(&data), 0);
    assert_eq!(&*data, "xy");
}

#[test]
fn make_mut_clone_of_tracked_object_is_tracked_and_collected() {
    let d = quiet();
    let mut a = s(&d);
    let keep = a.clone();
    Gc::make_mut(&mut a); // a clone: a new tracked object
    assert!(!Gc::ptr_eq(&a, &keep));
    assert!(Gc::is_tracked(&a));
    let edges: Gc<[Gc<S>]> = Gc::from([a.clone()]);
    *a.edges.borrow_mut() = Some(edges);
    drop(a);
    assert_eq!(gc::collect(), 2);
    assert_eq!(d.get(), 1);
    drop(keep);
    assert_eq!(d.get(), 2);
}

#[test]
fn unwrap_or_clone_and_into_inner() {
    let x = Gc::new(3);
    assert_eq!(Gc::unwrap_or_clone(x), 3);
    let x = Gc::new(4);
    let y = x.clone();
    assert_eq!(Gc::unwrap_or_clone(x), 4);
    assert_eq!(Gc::strong_count(&y), 1);

    let x = Gc::new(String::from("z"));
    let y = x.clone();
    let w = Gc::downgrade(&x);
    assert_eq!(Gc::into_inner(y), None);
    assert_eq!(Gc::into_inner(x).as_deref(), Some("z"));
    assert!(w.upgrade().is_none());
}

#[test]
fn into_raw_from_raw_round_trip() {
    let x = Gc::new(String::from("hello"));
    let w = Gc::downgrade(&x);
    let p = Gc::into_raw(x);
    // SAFETY: `p` came from `into_raw`; the reference is alive.
    assert_eq!(unsafe { &*p }, "hello");
    assert_eq!(w.strong_count(), 1);
    // SAFETY: `p` came from `into_raw`; counts given back once each.
    unsafe {
        Gc::increment_strong_count(p);
        assert_eq!(w.strong_count(), 2);
        Gc::decrement_strong_count(p);
        assert_eq!(w.strong_count(), 1);
        drop(Gc::from_raw(p));
    }
    assert!(w.upgrade().is_none());

    // Unsized: a slice and a string.
    let sl: Gc<[u16]> = Gc::from([1, 2, 3]);
    let p = Gc::into_raw(sl);
    // SAFETY: as above.
    let sl = unsafe { Gc::from_raw(p) };
    assert_eq!(&*sl, &[1, 2, 3]);
    let st: Gc<str> = Gc::from("hey");
    let p = Gc::into_raw(st);
    // SAFETY: as above.
    let st = unsafe { Gc::from_raw(p) };
    assert_eq!(&*st, "hey");
}

#[test]
fn into_raw_keeps_a_cycle_alive_until_from_raw() {
    let d = quiet();
    let a = s(&d);
    let edges: Gc<[Gc<S>]> = Gc::from([a.clone()]);
    *a.edges.borrow_mut() = Some(edges);
    let p = Gc::into_raw(a);
    // The raw pointer is a reference from outside: nothing is garbage.
    assert_eq!(gc::collect(), 0);
    assert_eq!(d.get(), 0);
    // SAFETY: `p` came from `into_raw`, given back once.
    drop(unsafe { Gc::from_raw(p) });
    assert_eq!(gc::collect(), 2);
    assert_eq!(d.get(), 1);
}

#[test]
fn weak_raw_pointers() {
    let strong = Gc::new(String::from("hello"));
    let weak = Gc::downgrade(&strong);
    assert!(core::ptr::eq(&*strong, weak.as_ptr()));
    let raw = weak.into_raw();
    assert_eq!(Gc::weak_count(&strong), 1);
    // SAFETY: `raw` came from `into_raw`, given back once.
    let weak = unsafe { Weak::from_raw(raw) };
    assert_eq!(Gc::weak_count(&strong), 1);
    drop(strong);
    let raw = weak.into_raw(); // the value is gone: still a valid round trip
    // SAFETY: as above.
    let weak = unsafe { Weak::from_raw(raw) };
    assert!(weak.upgrade().is_none());
    assert_eq!(weak.weak_count(), 0);
    drop(weak);

    let none: Weak<u32> = Weak::new();
    let raw = none.into_raw();
    // SAFETY: as above.
    let none = unsafe { Weak::from_raw(raw) };
    assert!(none.upgrade().is_none());
    assert_eq!((none.weak_count(), none.strong_count()), (0, 0));
    assert!(none.ptr_eq(&Weak::new()));
    let sl: Gc<[u8]> = Gc::from([1u8]);
    assert!(core::ptr::addr_eq(
        Gc::downgrade(&sl).as_ptr(),
        Gc::as_ptr(&sl)
    ));
}

#[test]
fn option_weak_is_one_pointer() {
    assert_eq!(size_of::<Option<Weak<u64>>>(), size_of::<Weak<u64>>());
    assert_eq!(size_of::<Weak<u64>>(), size_of::<usize>());
    assert_eq!(size_of::<Option<Weak<[u8]>>>(), size_of::<Weak<[u8]>>());
}

#[test]
fn pinned_values_never_move() {
    let d = quiet();
    let p = Gc::pin(S {
        edges: RefCell::new(None),
        drops: d.clone(),
    });
    // Introspection hands out a plain handle to the pinned object...
    let objs = gc::get_objects(None);
    let mut h = objs
        .iter()
        .find_map(|o| o.downcast::<S>())
        .expect("tracked");
    drop(objs);
    drop(p);
    assert!(Gc::is_pinned(&h));
    // ...which never moves the value out or hands out `&mut`.
    assert!(Gc::get_mut(&mut h).is_none());
    let before = Gc::as_ptr(&h);
    Gc::make_mut(&mut h);
    assert_ne!(Gc::as_ptr(&h), before); // cloned, not moved
    assert!(!Gc::is_pinned(&h));
}

#[test]
fn pinned_try_unwrap_refuses() {
    let p = Gc::pin(5);
    // SAFETY: for the test only: the handle is not used to move the value.
    let g = unsafe { core::pin::Pin::into_inner_unchecked(p) };
    let g = Gc::try_unwrap(g).unwrap_err();
    assert_eq!(Gc::into_inner(g), None);
}

#[test]
fn new_uninit_then_assume_init_is_tracked() {
    let d = quiet();
    let mut u = Gc::<S>::new_uninit();
    assert!(!Gc::is_tracked(&u));
    let a = s(&d);
    Gc::get_mut(&mut u).unwrap().write(S {
        edges: RefCell::new(Some(Gc::from([a.clone()]))),
        drops: d.clone(),
    });
    // SAFETY: written above.
    let b = unsafe { u.assume_init() };
    assert!(Gc::is_tracked(&b));
    *a.edges.borrow_mut() = Some(Gc::from([b.clone()]));
    drop((a, b));
    assert_eq!(gc::collect(), 4);
    assert_eq!(d.get(), 2);

    // Dropped before it is written: nothing to drop, memory freed.
    drop(Gc::<S>::new_uninit());
    let mut five = Gc::<u32>::new_uninit();
    Gc::get_mut(&mut five).unwrap().write(5);
    // SAFETY: written above.
    assert_eq!(*unsafe { five.assume_init() }, 5);
}

static_assertions::assert_impl_all!(Gc<u64>: std::panic::UnwindSafe, std::panic::RefUnwindSafe);
static_assertions::assert_not_impl_any!(Gc<Cell<u64>>: std::panic::UnwindSafe, std::panic::RefUnwindSafe);

impl crate::DeepCopy for S {
    fn deep_copy(&self, c: &mut crate::DeepCopier<'_>) -> Self {
        S {
            edges: self.edges.deep_copy(c),
            drops: self.drops.clone(),
        }
    }
}

#[test]
fn deep_copy_keeps_cycles_through_slices() {
    let d = quiet();
    // A ring of nodes, each pointing to the next through a slice; long
    // enough to go past the copier's depth limit (its work list).
    let n = if cfg!(miri) { 40 } else { 200 };
    let nodes: Vec<Gc<S>> = (0..n).map(|_| s(&d)).collect();
    for i in 0..n {
        let next = nodes[(i + 1) % n].clone();
        *nodes[i].edges.borrow_mut() = Some(Gc::from([next, nodes[i].clone()]));
    }
    let copy = crate::deep_copy(&nodes[0]);
    let mut cur = copy.clone();
    for _ in 0..n {
        let e = cur.edges.borrow().clone().unwrap();
        assert!(Gc::is_tracked(&e));
        assert!(Gc::ptr_eq(&e[1], &cur)); // self edge maps to the copy
        assert!(!nodes.iter().any(|x| Gc::ptr_eq(x, &e[0])));
        cur = e[0].clone();
    }
    assert!(Gc::ptr_eq(&cur, &copy)); // the ring closes in the copy
    drop((cur, copy, nodes));
    assert_eq!(gc::collect(), 4 * n);
    assert_eq!(d.get(), 2 * n);
}

#[test]
fn deep_copy_of_a_slice_that_holds_itself() {
    struct E(RefCell<Option<Gc<[E]>>>);
    impl Trace for E {
        fn structural() -> crate::Structural<Self> {
            // SAFETY: `trace` only calls `trace` on a field.
            unsafe { crate::Structural::promise() }
        }
        fn trace(&self, v: &mut Visitor<'_>) {
            self.0.trace(v)
        }
    }
    impl crate::DeepCopy for E {
        fn deep_copy(&self, c: &mut crate::DeepCopier<'_>) -> Self {
            E(self.0.deep_copy(c))
        }
    }
    quiet();
    let sl: Gc<[E]> = Gc::from([E(RefCell::new(None)), E(RefCell::new(None))]);
    *sl[0].0.borrow_mut() = Some(sl.clone());
    let root = Gc::new(vec![sl.clone()]);
    let copy = crate::deep_copy(&root);
    let c = &copy[0];
    assert!(!Gc::ptr_eq(c, &sl));
    assert!(Gc::ptr_eq(c[0].0.borrow().as_ref().unwrap(), c));
    assert!(c[1].0.borrow().is_none());
    drop((copy, root, sl));
    assert_eq!(gc::collect(), 2);

    // Strings and leaf slices: one copy per source object.
    let st: Gc<str> = Gc::from("s");
    let bytes: Gc<[u8]> = Gc::from(&b"ab"[..]);
    let root = Gc::new((st.clone(), st, bytes.clone(), bytes));
    let copy = crate::deep_copy(&root);
    assert!(Gc::ptr_eq(&copy.0, &copy.1) && Gc::ptr_eq(&copy.2, &copy.3));
    assert!(!Gc::ptr_eq(&copy.0, &root.0) && !Gc::ptr_eq(&copy.2, &root.2));
    assert_eq!((&*copy.0, &*copy.2), ("s", &b"ab"[..]));
}

#[test]
fn from_boxed_str_and_slice() {
    let d = quiet();
    let st: Gc<str> = Gc::from(Box::<str>::from("boxed"));
    assert_eq!(&*st, "boxed");
    let a = s(&d);
    let b = s(&d);
    let boxed: Box<[Gc<S>]> = vec![a.clone(), b.clone()].into_boxed_slice();
    let edges: Gc<[Gc<S>]> = Gc::from(boxed);
    assert!(Gc::is_tracked(&edges));
    assert_eq!(edges.len(), 2);
    *a.edges.borrow_mut() = Some(edges.clone());
    *b.edges.borrow_mut() = Some(edges.clone());
    let watch = Gc::downgrade(&edges);
    drop((a, b, edges));
    assert_eq!(d.get(), 0);
    assert_eq!(gc::collect(), 3);
    assert_eq!(d.get(), 2);
    assert!(watch.upgrade().is_none());
    let leaf: Gc<[u32]> = Gc::from(vec![1, 2, 3].into_boxed_slice());
    assert!(!Gc::is_tracked(&leaf));
    assert_eq!(leaf.iter().sum::<u32>(), 6);
}

#[test]
fn deep_copy_of_an_array_coerced_to_a_slice() {
    let d = quiet();
    let a = s(&d);
    let arr: Gc<[Gc<S>; 2]> = Gc::new([a.clone(), a.clone()]);
    let edges: Gc<[Gc<S>]> = crate::coerce_gc!(arr);
    *a.edges.borrow_mut() = Some(edges.clone());
    let holder = Gc::new(edges.clone());
    let copy = (*crate::deep_copy(&holder)).clone();
    assert_eq!(copy.len(), 2);
    assert!(Gc::ptr_eq(&copy[0], &copy[1]));
    assert!(!Gc::ptr_eq(&copy[0], &a));
    // The copy's node points back at the copy of the slice: a cycle.
    let back = copy[0].edges.borrow().clone().unwrap();
    assert!(Gc::ptr_eq(&back, &copy));
    drop((back, copy, edges, a, holder));
    assert_eq!(d.get(), 0);
    assert_eq!(gc::collect(), 4);
    assert_eq!(d.get(), 2);
}
