//! Tests of `sync::deep_copy` (hand-written `DeepCopy` impls; the derive is
//! tested at the facade level). They run under Miri.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::sync::{Gc, Weak, deep_copy, gc};
use crate::{DeepCopier, DeepCopy, Structural, Trace, Visitor};

struct Node {
    id: usize,
    edges: Mutex<Vec<Gc<Node>>>,
    back: RwLock<Option<Weak<Node>>>,
    live: Arc<AtomicIsize>,
    /// `deep_copy` of this node panics.
    poison: bool,
    /// `deep_copy` of this node runs a full collection first.
    collect: bool,
}

impl Trace for Node {
    fn structural() -> Structural<Self> {
        // SAFETY: `trace` only calls `trace` on a field of ouro's types.
        unsafe { Structural::promise() }
    }
    fn trace(&self, v: &mut Visitor<'_>) {
        self.edges.trace(v);
    }
}

impl DeepCopy for Node {
    fn deep_copy(&self, c: &mut DeepCopier<'_>) -> Self {
        assert!(!self.poison, "poisoned node {}", self.id);
        if self.collect {
            gc::collect();
        }
        let copy = Node {
            id: self.id,
            edges: self.edges.deep_copy(c),
            back: self.back.deep_copy(c),
            live: self.live.clone(),
            poison: false,
            collect: self.collect,
        };
        self.live.fetch_add(1, Ordering::SeqCst);
        copy
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}

fn node(id: usize, live: &Arc<AtomicIsize>) -> Gc<Node> {
    live.fetch_add(1, Ordering::SeqCst);
    Gc::new(Node {
        id,
        edges: Mutex::new(Vec::new()),
        back: RwLock::new(None),
        live: live.clone(),
        poison: false,
        collect: false,
    })
}

fn link(a: &Gc<Node>, b: &Gc<Node>) {
    a.edges.lock().unwrap().push(b.clone());
}

fn edges(a: &Gc<Node>) -> Vec<Gc<Node>> {
    a.edges.lock().unwrap().clone()
}

fn unlink(g: &Gc<Node>) {
    let edges = std::mem::take(&mut *g.edges.lock().unwrap());
    for e in edges {
        unlink(&e);
    }
}

#[test]
fn shared_nodes_stay_shared() {
    let live = Arc::new(AtomicIsize::new(0));
    let (root, l, r, shared) = (
        node(0, &live),
        node(1, &live),
        node(2, &live),
        node(3, &live),
    );
    link(&root, &l);
    link(&root, &r);
    link(&l, &shared);
    link(&r, &shared);
    let copy = deep_copy(&root);
    let (cl, cr) = (edges(&copy)[0].clone(), edges(&copy)[1].clone());
    assert_eq!((cl.id, cr.id), (1, 2));
    assert!(
        Gc::ptr_eq(&edges(&cl)[0], &edges(&cr)[0]),
        "one shared copy"
    );
    assert!(!Gc::ptr_eq(&edges(&cl)[0], &shared));
    assert_eq!(live.load(Ordering::SeqCst), 8);
    drop((copy, cl, cr, root, l, r, shared));
    assert_eq!(live.load(Ordering::SeqCst), 0);
}

#[test]
fn cycles_stay_cycles_and_weak_links_follow_the_copy() {
    let live = Arc::new(AtomicIsize::new(0));
    let (a, b) = (node(0, &live), node(1, &live));
    link(&a, &b);
    link(&b, &a);
    *b.back.write().unwrap() = Some(Gc::downgrade(&a));
    let outside = node(9, &live);
    *a.back.write().unwrap() = Some(Gc::downgrade(&outside));
    let a2 = deep_copy(&a);
    let b2 = edges(&a2)[0].clone();
    assert!(Gc::ptr_eq(&edges(&b2)[0], &a2), "a cycle of its own");
    let back = b2.back.read().unwrap().as_ref().unwrap().upgrade().unwrap();
    assert!(Gc::ptr_eq(&back, &a2), "a weak link into the copy");
    let out = a2.back.read().unwrap().as_ref().unwrap().upgrade().unwrap();
    assert!(Gc::ptr_eq(&out, &outside), "a weak link out of the graph");
    drop((back, out, b2));
    unlink(&a);
    unlink(&a2);
    drop((a, b, a2, outside));
    assert_eq!(live.load(Ordering::SeqCst), 0);
}

/// A weak link met before its target (the first node's link to the last)
/// takes the second pass.
#[test]
fn a_ring_with_back_links_points_into_the_copy() {
    let live = Arc::new(AtomicIsize::new(0));
    let n = 5;
    let nodes: Vec<_> = (0..n).map(|i| node(i, &live)).collect();
    for i in 0..n {
        link(&nodes[i], &nodes[(i + 1) % n]);
        *nodes[i].back.write().unwrap() = Some(Gc::downgrade(&nodes[(i + n - 1) % n]));
    }
    let c0 = deep_copy(&nodes[0]);
    let mut cur = c0.clone();
    for _ in 0..n {
        let next = edges(&cur)[0].clone();
        let back = next
            .back
            .read()
            .unwrap()
            .as_ref()
            .unwrap()
            .upgrade()
            .unwrap();
        assert!(Gc::ptr_eq(&back, &cur));
        cur = next;
    }
    assert!(Gc::ptr_eq(&cur, &c0));
    drop(cur);
    unlink(&c0);
    unlink(&nodes[0]);
    drop((c0, nodes));
    gc::collect();
    assert_eq!(live.load(Ordering::SeqCst), 0);
}

#[test]
fn a_long_ring_copies_on_a_small_stack() {
    let n = if cfg!(miri) { 100 } else { 20_000 };
    let t = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            let live = Arc::new(AtomicIsize::new(0));
            let first = node(0, &live);
            let mut prev = first.clone();
            for i in 1..n {
                let nd = node(i, &live);
                link(&prev, &nd);
                prev = nd;
            }
            link(&prev, &first);
            drop(prev);
            let copy = deep_copy(&first);
            assert_eq!(live.load(Ordering::SeqCst), 2 * n as isize);
            // Break both rings without recursing through them.
            for g in [first, copy] {
                let mut cur = g.edges.lock().unwrap().pop();
                while let Some(c) = cur {
                    cur = c.edges.lock().unwrap().pop();
                }
            }
            assert_eq!(live.load(Ordering::SeqCst), 0);
        })
        .unwrap();
    t.join().unwrap();
}

#[test]
fn a_panicking_copy_releases_its_placeholders() {
    let live = Arc::new(AtomicIsize::new(0));
    let (a, b) = (node(0, &live), node(1, &live));
    live.fetch_add(1, Ordering::SeqCst);
    let poisoned = Gc::new(Node {
        id: 2,
        edges: Mutex::new(Vec::new()),
        back: RwLock::new(None),
        live: live.clone(),
        poison: true,
        collect: false,
    });
    link(&a, &b);
    link(&b, &a);
    link(&b, &poisoned);
    let r = panic::catch_unwind(AssertUnwindSafe(|| deep_copy(&a)));
    assert!(r.is_err());
    assert_eq!(
        live.load(Ordering::SeqCst),
        3,
        "no copy is left, none dropped twice"
    );
    assert!(
        !b.edges.is_poisoned(),
        "the source's mutexes are not poisoned"
    );
    unlink(&a);
    drop((a, b, poisoned));
    assert_eq!(live.load(Ordering::SeqCst), 0);
}

#[test]
fn collections_during_the_copy_see_no_placeholder() {
    let live = Arc::new(AtomicIsize::new(0));
    let mk = |id| {
        live.fetch_add(1, Ordering::SeqCst);
        Gc::new(Node {
            id,
            edges: Mutex::new(Vec::new()),
            back: RwLock::new(None),
            live: live.clone(),
            poison: false,
            collect: true,
        })
    };
    let (a, b, c) = (mk(0), mk(1), mk(2));
    link(&a, &b);
    link(&b, &c);
    link(&c, &a);
    let a2 = deep_copy(&a);
    assert_eq!(live.load(Ordering::SeqCst), 6);
    let c2 = edges(&edges(&a2)[0])[0].clone();
    assert!(Gc::ptr_eq(&edges(&c2)[0], &a2));
    drop(c2);
    drop((a, b, c, a2));
    gc::collect();
    assert_eq!(live.load(Ordering::SeqCst), 0);
}

/// A thread-local value may hold `sync::Gc` handles: one copier copies
/// both heaps' objects.
#[test]
fn a_thread_local_copy_copies_the_sync_handles_it_holds() {
    struct Holder {
        a: Gc<Node>,
        b: Gc<Node>,
    }
    impl Trace for Holder {
        fn trace(&self, _: &mut Visitor<'_>) {}
    }
    impl DeepCopy for Holder {
        fn deep_copy(&self, c: &mut DeepCopier<'_>) -> Self {
            Holder {
                a: self.a.deep_copy(c),
                b: self.b.deep_copy(c),
            }
        }
    }
    let live = Arc::new(AtomicIsize::new(0));
    let n = node(0, &live);
    let h = crate::Gc::new(Holder {
        a: n.clone(),
        b: n.clone(),
    });
    let h2 = crate::deep_copy(&h);
    assert!(Gc::ptr_eq(&h2.a, &h2.b));
    assert!(!Gc::ptr_eq(&h2.a, &n));
    drop((h, h2, n));
    assert_eq!(live.load(Ordering::SeqCst), 0);
}

#[test]
fn mutex_and_rwlock_contents_are_copied() {
    struct Pair {
        m: Mutex<Vec<u32>>,
        r: RwLock<String>,
    }
    impl Trace for Pair {
        fn trace(&self, _: &mut Visitor<'_>) {}
    }
    impl DeepCopy for Pair {
        fn deep_copy(&self, c: &mut DeepCopier<'_>) -> Self {
            Pair {
                m: self.m.deep_copy(c),
                r: self.r.deep_copy(c),
            }
        }
    }
    let p = Gc::new(Pair {
        m: Mutex::new(vec![1]),
        r: RwLock::new("x".into()),
    });
    let q = deep_copy(&p);
    q.m.lock().unwrap().push(2);
    q.r.write().unwrap().push('y');
    assert_eq!(*p.m.lock().unwrap(), [1]);
    assert_eq!(*p.r.read().unwrap(), "x");
    assert_eq!(*q.m.lock().unwrap(), [1, 2]);
    // A poisoned mutex cannot be copied.
    let p2 = p.clone();
    let _ = std::thread::spawn(move || {
        let _g = p2.m.lock().unwrap();
        panic!("poison");
    })
    .join();
    let r = panic::catch_unwind(AssertUnwindSafe(|| deep_copy(&p)));
    assert!(r.is_err());
}
