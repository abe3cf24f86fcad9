//! CPython's trashcan: deep structures are dropped and collected
//! iteratively, on a thread with a 2 MiB stack, whether their objects are
//! tracked or not, on both heaps. Full size natively (a recursive drop would
//! overflow the stack); a few hundred nodes under Miri, which checks the
//! iterative paths' memory accesses, not their depth.

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use ouro::{Gc, Trace, Visitor, Weak, gc};

/// Length of the chains (a full-size run needs the trashcan: without it,
/// dropping one overflows the stack).
const CHAIN: usize = if cfg!(miri) { 300 } else { 1_000_000 };

/// The list's length; the ring is a tenth of it.
const LIST: usize = if cfg!(miri) { 500 } else { 10_000_000 };

fn on_small_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

#[derive(Trace)]
struct Link {
    next: Option<Gc<Link>>,
}

#[test]
fn dropping_a_ten_million_node_list() {
    on_small_stack(|| {
        gc::disable();
        let mut head = None;
        for _ in 0..LIST {
            head = Some(Gc::new(Link { next: head }));
        }
        drop(head);
        assert_eq!(gc::get_count()[0], 0);
    });
}

#[derive(Trace)]
struct Ring {
    next: RefCell<Option<Gc<Ring>>>,
}

#[test]
fn collecting_a_million_node_ring() {
    on_small_stack(|| {
        gc::disable();
        let first = Gc::new(Ring {
            next: RefCell::new(None),
        });
        let mut prev = first.clone();
        for _ in 1..LIST / 10 {
            let x = Gc::new(Ring {
                next: RefCell::new(None),
            });
            *prev.next.borrow_mut() = Some(x.clone());
            prev = x;
        }
        *prev.next.borrow_mut() = Some(first.clone());
        drop((first, prev));
        assert_eq!(gc::collect(), LIST / 10);
        assert_eq!(gc::collect(), 0);
    });
}

/// Counts its drops.
struct Counted(&'static AtomicUsize);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

/// A node of a chain through slices: each `Gc<[SliceLink]>` is a tracked
/// object (its element type holds a handle), so dropping the chain goes
/// through the tracked objects' deferral, which measures each slice from
/// the length stored in its allocation.
struct SliceLink {
    next: Option<Gc<[SliceLink]>>,
    _count: Counted,
}

impl Trace for SliceLink {
    fn structural() -> ouro::Structural<Self> {
        // SAFETY: `trace` only calls `trace` on a field, whose type's impls are
        // ouro's own.
        unsafe { ouro::Structural::promise() }
    }
    fn trace(&self, v: &mut Visitor<'_>) {
        self.next.trace(v)
    }
}

#[test]
fn dropping_a_long_chain_through_slices() {
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    on_small_stack(|| {
        let mut head: Option<Gc<[SliceLink]>> = None;
        for _ in 0..CHAIN {
            head = Some(Gc::from(vec![SliceLink {
                next: head.take(),
                _count: Counted(&DROPS),
            }]));
        }
        assert!(Gc::is_tracked(head.as_ref().unwrap()));
        drop(head);
        assert_eq!(DROPS.load(SeqCst), CHAIN);
    });
}

/// A chain of a type that says it holds no handle (`needs_trace() == false`,
/// so untracked) although it does: the handles act as roots.
struct Untracked {
    _next: Option<Gc<Untracked>>,
    _count: Counted,
}

impl Trace for Untracked {
    fn needs_trace() -> bool {
        false
    }
    fn trace(&self, _: &mut Visitor<'_>) {}
}

#[test]
fn dropping_a_long_untracked_chain() {
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    on_small_stack(|| {
        let mut head = None;
        for _ in 0..CHAIN {
            head = Some(Gc::new(Untracked {
                _next: head.take(),
                _count: Counted(&DROPS),
            }));
        }
        assert!(!Gc::is_tracked(head.as_ref().unwrap()));
        drop(head);
        assert_eq!(DROPS.load(SeqCst), CHAIN);
    });
}

#[test]
fn dropping_a_long_untracked_chain_with_weak_handles() {
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    on_small_stack(|| {
        let mut head = None;
        let mut weak: Vec<Weak<Untracked>> = Vec::new();
        for i in 0..CHAIN {
            let node = Gc::new(Untracked {
                _next: head.take(),
                _count: Counted(&DROPS),
            });
            if i % 3 == 0 {
                weak.push(Gc::downgrade(&node));
            }
            head = Some(node);
        }
        drop(head);
        assert_eq!(DROPS.load(SeqCst), CHAIN);
        assert!(weak.iter().all(|w| w.upgrade().is_none()));
    });
}

#[derive(Trace)]
struct SyncLink {
    next: Option<ouro::sync::Gc<SyncLink>>,
    #[trace(skip)]
    _count: Counted,
}

#[test]
fn dropping_a_long_sync_chain() {
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    on_small_stack(|| {
        let mut head = None;
        for _ in 0..CHAIN {
            head = Some(ouro::sync::Gc::new(SyncLink {
                next: head.take(),
                _count: Counted(&DROPS),
            }));
        }
        drop(head);
        assert_eq!(DROPS.load(SeqCst), CHAIN);
    });
}

struct SyncUntracked {
    _next: Option<ouro::sync::Gc<SyncUntracked>>,
    _count: Counted,
}

impl Trace for SyncUntracked {
    fn needs_trace() -> bool {
        false
    }
    fn trace(&self, _: &mut Visitor<'_>) {}
}

#[test]
fn dropping_a_long_untracked_sync_chain() {
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    on_small_stack(|| {
        let mut head = None;
        let mut weak = Vec::new();
        for i in 0..CHAIN {
            let node = ouro::sync::Gc::new(SyncUntracked {
                _next: head.take(),
                _count: Counted(&DROPS),
            });
            if i % 3 == 0 {
                weak.push(ouro::sync::Gc::downgrade(&node));
            }
            head = Some(node);
        }
        assert!(!ouro::sync::Gc::is_tracked(head.as_ref().unwrap()));
        drop(head);
        assert_eq!(DROPS.load(SeqCst), CHAIN);
        assert!(weak.iter().all(|w| w.upgrade().is_none()));
    });
}

/// An untracked node whose `Drop` panics when it is `bomb`.
struct Fragile {
    _next: Option<Gc<Fragile>>,
    bomb: bool,
    _count: Counted,
}

impl Trace for Fragile {
    fn needs_trace() -> bool {
        false
    }
    fn trace(&self, _: &mut Visitor<'_>) {}
}

impl Drop for Fragile {
    fn drop(&mut self) {
        if self.bomb {
            panic!("a deep node's drop panics");
        }
    }
}

/// A panic in a deferred drop leaves the rest of the trash for the next
/// outermost release: every value is still dropped once.
#[test]
fn a_panicking_drop_deep_in_an_untracked_chain() {
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    const LEN: usize = 300;
    on_small_stack(|| {
        let mut head = None;
        for i in 0..LEN {
            head = Some(Gc::new(Fragile {
                _next: head.take(),
                bomb: i == LEN - 120,
                _count: Counted(&DROPS),
            }));
        }
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(head)));
        assert!(r.is_err());
        drop(Gc::new(0));
        assert_eq!(DROPS.load(SeqCst), LEN);
    });
}
