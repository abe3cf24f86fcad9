//! Tests of the `Arc` vocabulary of `sync::Gc`/`sync::Weak` and of
//! `sync::Gc<[T]>`/`sync::Gc<str>` (std's documented behaviour). The heap is
//! shared by every test of the process: tests check their own objects.

use std::borrow::Cow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::sync::{Gc, Weak};
use crate::{Trace, Visitor};

fn collect() {
    crate::sync::gc::collect();
    crate::sync::gc::wait_for_drops();
}

/// A node whose edges are a slice object.
struct S {
    edges: Mutex<Option<Gc<[Gc<S>]>>>,
    drops: Arc<AtomicUsize>,
}

impl Clone for S {
    fn clone(&self) -> Self {
        S {
            edges: Mutex::new(self.edges.lock().unwrap().clone()),
            drops: self.drops.clone(),
        }
    }
}

impl Trace for S {
    fn structural() -> crate::Structural<Self> {
        // SAFETY: `trace` only calls `trace` on a field.
        unsafe { crate::Structural::promise() }
    }
    fn trace(&self, v: &mut Visitor<'_>) {
        self.edges.trace(v);
    }
}

impl Drop for S {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

fn s(drops: &Arc<AtomicUsize>) -> Gc<S> {
    Gc::new(S {
        edges: Mutex::new(None),
        drops: drops.clone(),
    })
}

fn counter() -> Arc<AtomicUsize> {
    Arc::new(AtomicUsize::new(0))
}

#[test]
fn sync_slice_cycle_is_collected() {
    let d = counter();
    let a = s(&d);
    let b = s(&d);
    let edges: Gc<[Gc<S>]> = vec![a.clone(), b.clone()].into();
    assert!(Gc::is_tracked(&edges));
    *a.edges.lock().unwrap() = Some(edges.clone());
    *b.edges.lock().unwrap() = Some(edges.clone());
    let watch = Gc::downgrade(&edges);
    drop((a, b, edges));
    assert_eq!(d.load(Ordering::SeqCst), 0);
    collect();
    assert_eq!(d.load(Ordering::SeqCst), 2);
    assert!(watch.upgrade().is_none());
    drop(watch);
}

#[test]
fn sync_slice_constructors() {
    let d = counter();
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
    let leaf: Gc<[u64]> = Gc::from(vec![1, 2]);
    assert!(!Gc::is_tracked(&leaf));
    // A slice crosses threads like any handle.
    let leaf2 = leaf.clone();
    assert_eq!(
        std::thread::spawn(move || leaf2.iter().sum::<u64>())
            .join()
            .unwrap(),
        3
    );
    drop((from_iter, from_array, from_slice, from_cow, empty));
    assert_eq!(d.load(Ordering::SeqCst), 4);
}

#[test]
fn sync_over_aligned_slice() {
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
    let x = Gc::new(7u8);
    let big: Gc<[Big]> = (0..3).map(|_| Big(x.clone())).collect();
    assert_eq!((Gc::as_ptr(&big) as *const Big).addr() % 64, 0);
    assert_eq!(Gc::strong_count(&x), 4);
    drop(big);
    assert_eq!(Gc::strong_count(&x), 1);
}

#[test]
fn sync_strings() {
    let a: Gc<str> = Gc::from("abc");
    let b: Gc<str> = Gc::from(String::from("abc"));
    let c: Gc<str> = Gc::from(Cow::Owned::<str>("abc".into()));
    let e: Gc<str> = Gc::default();
    assert!(a == b && b == c);
    assert_eq!(&*e, "");
    let w = Gc::downgrade(&a);
    assert_eq!(&*w.upgrade().unwrap(), "abc");
    drop((a, b, c));
    assert!(w.upgrade().is_none());
}

#[test]
fn sync_make_mut_follows_arc() {
    let mut data = Gc::new(5);
    let before = Gc::as_ptr(&data);
    *Gc::make_mut(&mut data) += 1;
    assert_eq!(Gc::as_ptr(&data), before);
    let other = data.clone();
    *Gc::make_mut(&mut data) += 1;
    assert_ne!(Gc::as_ptr(&data), before);
    assert_eq!((*data, *other), (7, 6));

    let mut data = Gc::new(String::from("x"));
    let weak = Gc::downgrade(&data);
    let s_ptr = data.as_ptr();
    let m = Gc::make_mut(&mut data);
    assert_eq!(m.as_ptr(), s_ptr); // the String moved, not cloned
    m.push('y');
    assert!(weak.upgrade().is_none());
    assert_eq!(weak.weak_count(), 0);
    assert_eq!(&*data, "xy");

    // A clone of a tracked object is a tracked object.
    let d = counter();
    let mut a = s(&d);
    let keep = a.clone();
    Gc::make_mut(&mut a);
    assert!(!Gc::ptr_eq(&a, &keep) && Gc::is_tracked(&a));
    *a.edges.lock().unwrap() = Some(Gc::from([a.clone()]));
    let w = Gc::downgrade(&a);
    drop(a);
    collect();
    assert!(w.upgrade().is_none());
    assert_eq!(d.load(Ordering::SeqCst), 1);
    drop(keep);
    assert_eq!(d.load(Ordering::SeqCst), 2);
}

#[test]
fn sync_into_inner_gives_the_value_once() {
    for _ in 0..if cfg!(miri) { 3 } else { 100 } {
        let x = Gc::new(String::from("v"));
        let handles: Vec<_> = (0..4).map(|_| x.clone()).collect();
        drop(x);
        let got: usize = handles
            .into_iter()
            .map(|h| std::thread::spawn(move || Gc::into_inner(h).is_some()))
            .map(|t| usize::from(t.join().unwrap()))
            .sum();
        assert_eq!(got, 1);
    }
    let x = Gc::new(3);
    assert_eq!(Gc::unwrap_or_clone(x.clone()), 3);
    assert_eq!(Gc::unwrap_or_clone(x), 3);
}

#[test]
fn sync_into_raw_keeps_a_cycle_alive_until_from_raw() {
    let d = counter();
    let a = s(&d);
    *a.edges.lock().unwrap() = Some(Gc::from([a.clone()]));
    let w = Gc::downgrade(&a);
    let p = Gc::into_raw(a);
    collect();
    assert_eq!(d.load(Ordering::SeqCst), 0);
    assert!(w.upgrade().is_some());
    // SAFETY: `p` came from `into_raw`; counts given back once each.
    unsafe {
        Gc::increment_strong_count(p);
        Gc::decrement_strong_count(p);
        drop(Gc::from_raw(p));
    }
    collect();
    assert_eq!(d.load(Ordering::SeqCst), 1);
    assert!(w.upgrade().is_none());

    let sl: Gc<[u16]> = Gc::from([1, 2, 3]);
    // SAFETY: as above.
    let sl = unsafe { Gc::from_raw(Gc::into_raw(sl)) };
    assert_eq!(&*sl, &[1, 2, 3]);
}

#[test]
fn sync_weak_raw_pointers_and_niche() {
    let strong = Gc::new(String::from("hello"));
    let weak = Gc::downgrade(&strong);
    assert!(core::ptr::eq(&*strong, weak.as_ptr()));
    let raw = weak.into_raw();
    // SAFETY: `raw` came from `into_raw`, given back once.
    let weak = unsafe { Weak::from_raw(raw) };
    drop(strong);
    assert!(weak.upgrade().is_none());
    assert_eq!(weak.weak_count(), 0);
    let none: Weak<u32> = Weak::new();
    // SAFETY: as above.
    let none = unsafe { Weak::from_raw(none.into_raw()) };
    assert!(none.upgrade().is_none() && none.ptr_eq(&Weak::new()));
    assert_eq!(size_of::<Option<Weak<u64>>>(), size_of::<Weak<u64>>());
    assert_eq!(size_of::<Option<Weak<[u8]>>>(), size_of::<Weak<[u8]>>());
}

#[test]
fn sync_pinned_values_never_move() {
    let p = Gc::pin(5);
    // SAFETY: for the test only: the handle is not used to move the value.
    let mut g = unsafe { core::pin::Pin::into_inner_unchecked(p) };
    assert!(Gc::is_pinned(&g));
    assert!(Gc::get_mut(&mut g).is_none());
    let before = Gc::as_ptr(&g);
    let g2 = g.clone();
    *Gc::make_mut(&mut g) += 1; // cloned
    assert_ne!(Gc::as_ptr(&g), before);
    assert!(Gc::try_unwrap(g2).is_err());
}

#[test]
fn sync_new_uninit_then_assume_init() {
    let d = counter();
    let mut u = Gc::<S>::new_uninit();
    assert!(!Gc::is_tracked(&u));
    Gc::get_mut(&mut u).unwrap().write(S {
        edges: Mutex::new(None),
        drops: d.clone(),
    });
    // SAFETY: written above.
    let a = unsafe { u.assume_init() };
    assert!(Gc::is_tracked(&a));
    *a.edges.lock().unwrap() = Some(Gc::from([a.clone()]));
    let w = Gc::downgrade(&a);
    drop(a);
    collect();
    assert!(w.upgrade().is_none());
    assert_eq!(d.load(Ordering::SeqCst), 1);
    // Dropped unwritten: freed, nothing dropped.
    drop(Gc::<S>::new_uninit());
    assert_eq!(d.load(Ordering::SeqCst), 1);
}

#[test]
fn sync_from_boxed_str_and_slice() {
    let st: Gc<str> = Gc::from(Box::<str>::from("boxed"));
    assert_eq!(&*st, "boxed");
    let d = counter();
    let a = s(&d);
    let b = s(&d);
    let boxed: Box<[Gc<S>]> = vec![a.clone(), b.clone()].into_boxed_slice();
    let edges: Gc<[Gc<S>]> = Gc::from(boxed);
    assert!(Gc::is_tracked(&edges));
    assert_eq!(edges.len(), 2);
    *a.edges.lock().unwrap() = Some(edges.clone());
    *b.edges.lock().unwrap() = Some(edges.clone());
    let watch = Gc::downgrade(&edges);
    drop((a, b, edges));
    assert_eq!(d.load(Ordering::SeqCst), 0);
    collect();
    assert_eq!(d.load(Ordering::SeqCst), 2);
    assert!(watch.upgrade().is_none());
    drop(watch);
    let leaf: Gc<[u32]> = Gc::from(vec![1, 2, 3].into_boxed_slice());
    assert!(!Gc::is_tracked(&leaf));
    assert_eq!(leaf.iter().sum::<u32>(), 6);
}
