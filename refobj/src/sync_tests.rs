//! Unit tests of the process-wide heap (`sync::Gc`). The heap is shared by
//! every test of the process, so tests check their own objects (drop
//! counters, weak handles) rather than global counts. Tests that change the
//! heap's modes live in the workspace's `tests/gc_semantics.rs` (run one at
//! a time, in a process of their own, on both heaps).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::sync::{Gc, Weak};
use crate::{Trace, Visitor};

/// `sync::gc`, except that `collect()` also waits for the drops of the
/// other collections ([`gc::wait_for_drops`](crate::sync::gc::wait_for_drops)):
/// every test of this process shares the heap, and another test's
/// collection, or an automatic one (whose garbage the background thread
/// drops), may have claimed this test's garbage.
mod gc {
    #[allow(unused_imports)] // these tests need only `collect`, for now
    pub(super) use crate::sync::gc::*;

    pub(super) fn collect() -> usize {
        let n = crate::sync::gc::collect();
        crate::sync::gc::wait_for_drops();
        n
    }
}

struct Node {
    id: usize,
    edges: Mutex<Vec<Gc<Node>>>,
    drops: Arc<AtomicUsize>,
}

impl Trace for Node {
    fn structural() -> crate::Structural<Self> {
        // SAFETY: `trace` only calls `trace` on fields.
        unsafe { crate::Structural::promise() }
    }
    fn trace(&self, v: &mut Visitor<'_>) {
        self.edges.trace(v);
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

fn node(id: usize, drops: &Arc<AtomicUsize>) -> Gc<Node> {
    Gc::new(Node {
        id,
        edges: Mutex::new(Vec::new()),
        drops: drops.clone(),
    })
}

fn link(a: &Gc<Node>, b: &Gc<Node>) {
    a.edges.lock().unwrap().push(b.clone());
}

/// `n` nodes (ids `0..n`), each linked to the next: the first and the last.
fn chain(n: usize, drops: &Arc<AtomicUsize>) -> (Gc<Node>, Gc<Node>) {
    let first = node(0, drops);
    let mut last = first.clone();
    for i in 1..n {
        let next = node(i, drops);
        link(&last, &next);
        last = next;
    }
    (first, last)
}

#[test]
fn cycles_across_threads() {
    let drops = Arc::new(AtomicUsize::new(0));
    let a = node(1, &drops);
    let d2 = drops.clone();
    let b = std::thread::spawn(move || node(2, &d2)).join().unwrap();
    link(&a, &b);
    link(&b, &a);
    let t = std::thread::spawn(move || drop(b));
    drop(a);
    t.join().unwrap();
    std::thread::spawn(gc::collect).join().unwrap();
    assert_eq!(drops.load(Ordering::SeqCst), 2);
}

#[test]
fn a_self_loop_and_a_long_ring() {
    let drops = Arc::new(AtomicUsize::new(0));
    let a = node(0, &drops);
    link(&a, &a);
    drop(a);
    let n = if cfg!(miri) { 20 } else { 2000 };
    let (first, prev) = chain(n, &drops);
    link(&prev, &first);
    drop((first, prev));
    gc::collect();
    assert_eq!(drops.load(Ordering::SeqCst), n + 1);
}

/// A node holding more handles than one chunk of the collector's first pass
/// takes (the chunk ends after it), its children pointing back to it from
/// later chunks: found partly by the first pass, partly by the global steps.
#[test]
fn a_node_with_more_handles_than_a_chunk() {
    let drops = Arc::new(AtomicUsize::new(0));
    let n = if cfg!(miri) { 40 } else { 10_000 };
    let hub = node(0, &drops);
    for i in 0..n {
        let child = node(i + 1, &drops);
        link(&child, &hub);
        link(&hub, &child);
        // A small cycle of its own below every tenth child.
        if i % 10 == 0 {
            let leaf = node(0, &drops);
            link(&leaf, &child);
            link(&child, &leaf);
        }
    }
    let leaves = n.div_ceil(10);
    // (A child without a leaf: `n / 2 + 1` is not a multiple of 10.)
    let reachable = hub.edges.lock().unwrap()[n / 2 + 1].clone();
    drop(hub);
    gc::collect();
    // Everything is reachable from `reachable`.
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    assert_eq!(reachable.edges.lock().unwrap().len(), 1);
    drop(reachable);
    gc::collect();
    assert_eq!(drops.load(Ordering::SeqCst), 1 + n + leaves);
}

/// Garbage after a stretch of live objects longer than a chunk: the first
/// pass traces the live chunks without keeping guards, so the chunks of
/// garbage that follow are traced twice (first without guards, then with
/// them) before their claims.
#[test]
fn garbage_after_live_chunks() {
    let live_drops = Arc::new(AtomicUsize::new(0));
    let drops = Arc::new(AtomicUsize::new(0));
    let (live, pairs) = if cfg!(miri) { (6, 3) } else { (3_000, 700) };
    let (first, last) = chain(live, &live_drops);
    drop(last);
    for i in 0..pairs {
        let a = node(i, &drops);
        let b = node(i, &drops);
        link(&a, &b);
        link(&b, &a);
    }
    gc::collect();
    assert_eq!(drops.load(Ordering::SeqCst), 2 * pairs);
    assert_eq!(live_drops.load(Ordering::SeqCst), 0);
    // The chain is intact.
    let mut len = 1;
    let mut at = first.clone();
    loop {
        let next = at.edges.lock().unwrap().first().cloned();
        match next {
            Some(n) => {
                at = n;
                len += 1;
            }
            None => break,
        }
    }
    assert_eq!(len, live);
    drop((at, first));
    if live_drops.load(Ordering::SeqCst) != live {
        // Owned by another test's collection when dropped (see
        // `acyclic_values_drop_at_once`).
        gc::collect();
    }
    assert_eq!(live_drops.load(Ordering::SeqCst), live);
}

#[test]
fn a_locked_mutex_keeps_the_cycle_until_released() {
    let drops = Arc::new(AtomicUsize::new(0));
    let a = node(1, &drops);
    link(&a, &a);
    let w = Gc::downgrade(&a);
    let strong = w.upgrade().unwrap();
    let guard = strong.edges.lock().unwrap();
    // Hold the lock from another handle, then drop both handles: a locked
    // value is never collected from under the guard.
    drop(a);
    gc::collect();
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    drop(guard);
    drop(strong);
    gc::collect();
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn weak_handles() {
    let drops = Arc::new(AtomicUsize::new(0));
    let a = node(1, &drops);
    let w = Gc::downgrade(&a);
    assert_eq!(Gc::weak_count(&a), 1);
    assert_eq!(w.strong_count(), 1);
    assert_eq!(w.upgrade().map(|g| g.id), Some(1));
    drop(a);
    assert!(w.upgrade().is_none());
    assert_eq!(w.strong_count(), 0);
    let empty: Weak<Node> = Weak::new();
    assert!(empty.upgrade().is_none());
}

#[test]
fn new_cyclic_and_parent_pointers() {
    struct Tree {
        parent: Mutex<Weak<Tree>>,
        me: Weak<Tree>,
        kids: Mutex<Vec<Gc<Tree>>>,
    }
    impl Trace for Tree {
        fn structural() -> crate::Structural<Self> {
            // SAFETY: `trace` only calls `trace` on fields.
            unsafe { crate::Structural::promise() }
        }
        fn trace(&self, v: &mut Visitor<'_>) {
            self.kids.trace(v);
        }
    }
    let root = Gc::new_cyclic(|me| {
        assert!(me.upgrade().is_none());
        Tree {
            parent: Mutex::new(Weak::new()),
            me: me.clone(),
            kids: Mutex::new(vec![]),
        }
    });
    let kid = Gc::new_cyclic(|me| Tree {
        parent: Mutex::new(root.me.clone()),
        me: me.clone(),
        kids: Mutex::new(vec![]),
    });
    root.kids.lock().unwrap().push(kid.clone());
    let p = kid.parent.lock().unwrap().upgrade().unwrap();
    assert!(Gc::ptr_eq(&p, &root));
    assert!(Gc::ptr_eq(&kid.me.upgrade().unwrap(), &kid));
}

#[test]
fn get_mut_and_try_unwrap() {
    let mut a = Gc::new(Mutex::new(vec![1]));
    Gc::get_mut(&mut a).unwrap().get_mut().unwrap().push(2);
    let b = a.clone();
    assert!(Gc::get_mut(&mut a).is_none());
    let a = Gc::try_unwrap(a).unwrap_err();
    drop(b);
    assert_eq!(Gc::try_unwrap(a).unwrap().into_inner().unwrap(), vec![1, 2]);
    let s = Gc::new(String::from("untracked"));
    assert!(!Gc::is_tracked(&s));
    assert_eq!(Gc::try_unwrap(s).unwrap(), "untracked");
}

#[test]
fn get_mut_object_in_a_cycle_is_still_collected() {
    // `get_mut` marks the object; once its only handle sits inside another
    // object the collector can tell the `&mut` is over.
    let drops = Arc::new(AtomicUsize::new(0));
    let mut a = node(1, &drops);
    let b = node(2, &drops);
    link(&b, &a);
    drop(b.clone());
    Gc::get_mut(&mut node(9, &drops));
    let a_mut = Gc::get_mut(&mut a);
    assert!(a_mut.is_none()); // b holds a handle too
    let mut c = node(3, &drops);
    Gc::get_mut(&mut c)
        .unwrap()
        .edges
        .get_mut()
        .unwrap()
        .push(b.clone());
    link(&b, &c);
    drop((a, b, c));
    gc::collect();
    gc::collect();
    assert_eq!(drops.load(Ordering::SeqCst), 4);
}

struct Phoenix {
    me: Mutex<Option<Gc<Phoenix>>>,
    finalized: Arc<AtomicUsize>,
}

static SAVED: Mutex<Vec<Gc<Phoenix>>> = Mutex::new(Vec::new());

impl Trace for Phoenix {
    fn structural() -> crate::Structural<Self> {
        // SAFETY: `trace` only calls `trace` on fields.
        unsafe { crate::Structural::promise() }
    }
    fn trace(&self, v: &mut Visitor<'_>) {
        self.me.trace(v);
    }
    fn finalize(&self) {
        self.finalized.fetch_add(1, Ordering::SeqCst);
        if let Some(me) = &*self.me.lock().unwrap() {
            SAVED.lock().unwrap().push(me.clone());
        }
    }
}

#[test]
fn finalizers_run_once_and_resurrection_is_detected() {
    let fin = Arc::new(AtomicUsize::new(0));
    let p = Gc::new(Phoenix {
        me: Mutex::new(None),
        finalized: fin.clone(),
    });
    *p.me.lock().unwrap() = Some(p.clone());
    let w = Gc::downgrade(&p);
    drop(p);
    gc::collect();
    assert_eq!(fin.load(Ordering::SeqCst), 1);
    // Resurrected: alive, finalized, its weak handles upgrade again.
    let back = SAVED.lock().unwrap().pop().unwrap();
    assert!(Gc::is_finalized(&back));
    assert!(w.upgrade().is_some_and(|p| Gc::ptr_eq(&p, &back)));
    back.me.lock().unwrap().take();
    *back.me.lock().unwrap() = Some(back.clone());
    drop(back);
    gc::collect();
    // Not finalized again, and freed this time.
    assert_eq!(fin.load(Ordering::SeqCst), 1);
    assert!(SAVED.lock().unwrap().is_empty());
}

#[test]
fn drop_of_garbage_sees_dead_neighbours_as_panics_not_ub() {
    struct Peek {
        other: Mutex<Option<Gc<Peek>>>,
        saw: Arc<AtomicUsize>,
    }
    impl Trace for Peek {
        fn structural() -> crate::Structural<Self> {
            // SAFETY: `trace` only calls `trace` on fields.
            unsafe { crate::Structural::promise() }
        }
        fn trace(&self, v: &mut Visitor<'_>) {
            self.other.trace(v);
        }
    }
    impl Drop for Peek {
        fn drop(&mut self) {
            if let Some(o) = self.other.get_mut().unwrap().take() {
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let _ = o.other.try_lock().is_ok();
                }));
                if r.is_err() {
                    self.saw.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
    }
    let saw = Arc::new(AtomicUsize::new(0));
    let a = Gc::new(Peek {
        other: Mutex::new(None),
        saw: saw.clone(),
    });
    let b = Gc::new(Peek {
        other: Mutex::new(Some(a.clone())),
        saw: saw.clone(),
    });
    *a.other.lock().unwrap() = Some(b.clone());
    drop((a, b));
    gc::collect();
    // The whole garbage is marked dead before any value is dropped, so
    // each `Drop` finds its neighbour dead (a panic, never a read of a
    // dropped value).
    assert_eq!(saw.load(Ordering::SeqCst), 2);
}

#[test]
fn rwlock_and_deep_chains() {
    struct R {
        next: RwLock<Option<Gc<R>>>,
    }
    impl Trace for R {
        fn structural() -> crate::Structural<Self> {
            // SAFETY: `trace` only calls `trace` on fields.
            unsafe { crate::Structural::promise() }
        }
        fn trace(&self, v: &mut Visitor<'_>) {
            self.next.trace(v);
        }
    }
    let n = if cfg!(miri) { 200 } else { 100_000 };
    let head = Gc::new(R {
        next: RwLock::new(None),
    });
    let mut cur = head.clone();
    for _ in 0..n {
        let x = Gc::new(R {
            next: RwLock::new(None),
        });
        *cur.next.write().unwrap() = Some(x.clone());
        cur = x;
    }
    *cur.next.write().unwrap() = Some(head.clone());
    drop(cur);
    // Break the ring: dropping the head frees the whole chain without
    // overflowing the stack (the trashcan).
    head.next.write().unwrap().take();
    drop(head);
}

#[test]
fn concurrent_mutation_while_collecting() {
    let drops = Arc::new(AtomicUsize::new(0));
    let threads = if cfg!(miri) { 2 } else { 4 };
    let rounds = if cfg!(miri) { 3 } else { 300 };
    let shared = node(0, &drops);
    std::thread::scope(|s| {
        for t in 0..threads {
            let shared = &shared;
            let drops = &drops;
            s.spawn(move || {
                for r in 0..rounds {
                    let a = node(t * 1000 + r, drops);
                    let b = node(t * 1000 + r + 1, drops);
                    link(&a, &b);
                    link(&b, &a);
                    link(&a, shared);
                    if r % 3 == 0 {
                        // Keep some alive through the shared node for a while.
                        shared.edges.lock().unwrap().push(a.clone());
                    }
                    if r % 5 == 0 {
                        shared.edges.lock().unwrap().clear();
                    }
                    if r % 7 == t {
                        gc::collect();
                    }
                    // Everything reachable stays intact.
                    let _ = a.edges.lock().unwrap()[0].edges.lock().unwrap()[0].id;
                }
            });
        }
    });
    shared.edges.lock().unwrap().clear();
    let total = threads * rounds * 2;
    gc::collect();
    assert_eq!(drops.load(Ordering::SeqCst), total);
    drop(shared);
    gc::collect(); // see `acyclic_values_drop_at_once`
    assert_eq!(drops.load(Ordering::SeqCst), total + 1);
}

/// A value whose finalizer asks for the referents of its own (claimed)
/// self-cycle.
struct Introspect {
    me: Mutex<Option<Gc<Introspect>>>,
    seen: Arc<AtomicUsize>,
}

impl Trace for Introspect {
    fn structural() -> crate::Structural<Self> {
        // SAFETY: `trace` only calls `trace` on fields.
        unsafe { crate::Structural::promise() }
    }
    fn trace(&self, v: &mut Visitor<'_>) {
        self.me.trace(v);
    }
    fn finalize(&self) {
        // Not under the lock: the trace of `get_referents` takes it.
        let me = self.me.lock().unwrap().clone();
        if let Some(me) = me {
            let referents = gc::get_referents(&me);
            self.seen.fetch_add(referents.len(), Ordering::SeqCst);
        }
    }
}

/// `ObjectRef::try_new` made its `ObjectRef` before it knew whether the
/// count was taken (`bool::then_some`), and dropped it on failure: a
/// failed try (the target claimed by the collector, or its count zero)
/// released a count it never took. Here `get_referents` in a finalizer
/// fails on the claimed self-cycle, which then looked resurrected (its
/// count one short of its handles) and was dropped as a zombie with its
/// count wrapped below zero, its weak handle showing 2^62 - 1 strong ones.
#[test]
fn a_failed_introspection_upgrade_releases_no_count() {
    let seen = Arc::new(AtomicUsize::new(0));
    let p = Gc::new(Introspect {
        me: Mutex::new(None),
        seen: seen.clone(),
    });
    *p.me.lock().unwrap() = Some(p.clone());
    let w = Gc::downgrade(&p);
    drop(p);
    gc::collect();
    assert_eq!(
        seen.load(Ordering::SeqCst),
        0,
        "a claimed object is not handed out"
    );
    assert!(w.upgrade().is_none());
    assert_eq!(w.strong_count(), 0, "no count released twice");
}
