//! Heaps of one's own (`ouro::sync::Heap`): each test owns the heaps it
//! counts, so the counts are exact while other tests use theirs (and the
//! default heap) in parallel.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use ouro::Trace;
use ouro::sync::{Gc, Heap, Weak, gc};

#[derive(Trace)]
struct Node {
    next: Mutex<Option<Gc<Node>>>,
}

/// Drops counted per test (each test has its own counter).
#[derive(Trace)]
struct Counted {
    #[trace(skip)]
    drops: &'static AtomicUsize,
    next: Mutex<Option<Gc<Counted>>>,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::Relaxed);
    }
}

fn heap() -> Heap {
    let h = Heap::new();
    // Exact counts: no automatic collection in the middle of a test.
    h.disable();
    h
}

/// A ring of `n` nodes in `heap`, dropped; returns a weak handle to one.
fn ring_in(heap: &Heap, n: usize) -> Weak<Node> {
    let first = Gc::new_in(
        Node {
            next: Mutex::new(None),
        },
        heap,
    );
    let mut last = first.clone();
    for _ in 1..n {
        let x = Gc::new_in(
            Node {
                next: Mutex::new(None),
            },
            heap,
        );
        *last.next.lock().unwrap() = Some(x.clone());
        last = x;
    }
    *last.next.lock().unwrap() = Some(first.clone());
    Gc::downgrade(&first)
}

#[test]
fn two_heaps_collect_independently() {
    let (a, b) = (heap(), heap());
    let wa = ring_in(&a, 2);
    let wb = ring_in(&b, 3);
    assert_eq!(a.get_objects(None).len(), 2);
    assert_eq!(b.get_objects(None).len(), 3);
    assert_eq!(a.collect(), 2);
    assert!(wa.upgrade().is_none());
    // `b`'s ring is untouched by `a`'s collection.
    assert!(wb.upgrade().is_some());
    assert_eq!(b.get_objects(None).len(), 3);
    assert_eq!(b.collect(), 3);
    assert!(wb.upgrade().is_none());
    // Statistics per heap.
    let (sa, sb) = (a.get_stats(), b.get_stats());
    assert_eq!((sa[2].collections, sa[2].collected), (1, 2));
    assert_eq!((sb[2].collections, sb[2].collected), (1, 3));
    assert_eq!(a.collect(), 0);
    assert_eq!(a.get_stats()[2].collections, 2);
    assert_eq!(b.get_stats()[2].collections, 1);
}

#[test]
fn default_heap_does_not_see_a_made_heap() {
    let a = heap();
    let w = ring_in(&a, 4);
    let mine = w.upgrade().unwrap();
    let addr = Gc::as_ptr(&mine) as usize;
    assert!(!gc::get_objects(None).iter().any(|o| o.address() == addr));
    assert!(a.get_objects(None).iter().any(|o| o.address() == addr));
    drop(mine);
    // The default heap's collections leave it alone.
    gc::collect();
    assert!(w.upgrade().is_some());
    assert_eq!(a.collect(), 4);
    assert!(w.upgrade().is_none());
}

#[test]
fn settings_and_callbacks_are_per_heap() {
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let (a, b) = (heap(), heap());
    a.set_threshold([5, 6, 7]);
    assert_eq!(a.get_threshold(), [5, 6, 7]);
    assert_ne!(b.get_threshold(), [5, 6, 7]);
    let id = a.add_callback(|_| {
        CALLS.fetch_add(1, Ordering::Relaxed);
    });
    b.collect();
    assert_eq!(CALLS.load(Ordering::Relaxed), 0);
    a.collect();
    assert_eq!(CALLS.load(Ordering::Relaxed), 2);
    assert!(a.remove_callback(id));
    assert!(!b.remove_callback(id));
}

#[test]
fn saveall_garbage_is_per_heap() {
    let (a, b) = (heap(), heap());
    a.set_debug(gc::DebugFlags::SAVEALL);
    let _ = ring_in(&a, 2);
    let _ = ring_in(&b, 2);
    assert_eq!(a.collect(), 2);
    assert_eq!(b.collect(), 2);
    let kept = a.garbage();
    assert_eq!(kept.len(), 2);
    assert!(kept.iter().all(|o| o.downcast::<Node>().is_some()));
    assert!(b.garbage().is_empty());
    assert!(
        gc::garbage()
            .iter()
            .all(|o| !kept.iter().any(|k| k.address() == o.address()))
    );
    drop(kept);
    a.clear_garbage();
    assert!(a.garbage().is_empty());
}

#[test]
fn objects_outlive_their_heap() {
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    let a = heap();
    let x = Gc::new_in(
        Counted {
            drops: &DROPS,
            next: Mutex::new(None),
        },
        &a,
    );
    let y = Gc::new_in(
        Counted {
            drops: &DROPS,
            next: Mutex::new(Some(x.clone())),
        },
        &a,
    );
    *x.next.lock().unwrap() = Some(y.clone());
    let w = Gc::downgrade(&x);
    // Garbage in the heap when it goes: its drop collects it.
    let _ = ring_in(&a, 3);
    drop(a);
    // The survivors moved to the default heap and work as before.
    assert!(Gc::ptr_eq(x.next.lock().unwrap().as_ref().unwrap(), &y));
    let addr = Gc::as_ptr(&x) as usize;
    assert!(gc::get_objects(None).iter().any(|o| o.address() == addr));
    assert_eq!(DROPS.load(Ordering::Relaxed), 0);
    drop((x, y));
    // The default heap's collection frees their cycle now.
    gc::collect();
    assert!(w.upgrade().is_none());
    gc::wait_for_drops();
    assert_eq!(DROPS.load(Ordering::Relaxed), 2);
}

#[test]
fn a_cycle_across_two_heaps_is_kept_and_visible() {
    let (a, b) = (heap(), heap());
    let x = Gc::new_in(
        Node {
            next: Mutex::new(None),
        },
        &a,
    );
    let y = Gc::new_in(
        Node {
            next: Mutex::new(Some(x.clone())),
        },
        &b,
    );
    *x.next.lock().unwrap() = Some(y.clone());
    let (wx, wy) = (Gc::downgrade(&x), Gc::downgrade(&y));
    drop((x, y));
    // Each heap sees the other's handle as a reference from outside.
    assert_eq!(a.collect(), 0);
    assert_eq!(b.collect(), 0);
    assert_eq!(a.cross_heap_edges(), 1);
    assert_eq!(b.cross_heap_edges(), 1);
    // Broken by hand, both halves go by reference counting.
    let x = wx.upgrade().unwrap();
    *x.next.lock().unwrap() = None;
    drop(x);
    assert!(wx.upgrade().is_none() && wy.upgrade().is_none());
    assert_eq!(a.cross_heap_edges(), 0);
}

#[test]
fn heaps_collecting_at_once_on_two_threads() {
    // Each heap's objects point into the other's while both collect.
    let (a, b) = (heap(), heap());
    let pinned_a: Vec<Gc<Node>> = (0..32)
        .map(|_| {
            Gc::new_in(
                Node {
                    next: Mutex::new(None),
                },
                &a,
            )
        })
        .collect();
    let pinned_b: Vec<Gc<Node>> = pinned_a
        .iter()
        .map(|x| {
            Gc::new_in(
                Node {
                    next: Mutex::new(Some(x.clone())),
                },
                &b,
            )
        })
        .collect();
    for (x, y) in pinned_a.iter().zip(&pinned_b) {
        *x.next.lock().unwrap() = Some(y.clone());
    }
    let rounds = if cfg!(miri) { 2 } else { 50 };
    std::thread::scope(|s| {
        for h in [&a, &b] {
            s.spawn(move || {
                for _ in 0..rounds {
                    let _ = ring_in(h, 3);
                    assert_eq!(h.collect(), 3);
                }
            });
        }
    });
    assert_eq!(a.get_stats()[2].collected, 3 * rounds);
    assert_eq!(b.get_stats()[2].collected, 3 * rounds);
    assert_eq!(a.get_objects(None).len(), 32);
    for x in &pinned_a {
        *x.next.lock().unwrap() = None;
    }
}
