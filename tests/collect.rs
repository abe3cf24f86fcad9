//! The cycle collector as a user sees it: what happens to the objects it
//! finds unreachable.

use std::cell::{Cell, RefCell};

use ouro::{Finalize, Gc, Trace, Weak, gc};

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
