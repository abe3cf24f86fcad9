//! Unit tests of the process-wide heap (`sync::Gc`). The heap is shared by
//! every test of the process, so tests check their own objects (drop
//! counters, weak handles) rather than global counts, except under `LOCK`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::sync::{Gc, Weak, gc};
use crate::{Trace, Visitor};

/// Serialises the tests that change settings or read global numbers.
static LOCK: Mutex<()> = Mutex::new(());

fn lock() -> std::sync::MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

struct Node {
    id: usize,
    edges: Mutex<Vec<Gc<Node>>>,
    drops: Arc<AtomicUsize>,
}

impl Trace for Node {
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

#[test]
fn acyclic_values_drop_at_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    let a = node(1, &drops);
    let b = node(2, &drops);
    link(&a, &b);
    drop(b);
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    drop(a);
    assert_eq!(drops.load(Ordering::SeqCst), 2);
}

#[test]
fn a_cycle_is_collected() {
    let drops = Arc::new(AtomicUsize::new(0));
    let a = node(1, &drops);
    let b = node(2, &drops);
    link(&a, &b);
    link(&b, &a);
    let w = Gc::downgrade(&a);
    drop((a, b));
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    gc::collect();
    assert_eq!(drops.load(Ordering::SeqCst), 2);
    assert!(w.upgrade().is_none());
}

#[test]
fn a_reachable_cycle_survives() {
    let drops = Arc::new(AtomicUsize::new(0));
    let a = node(1, &drops);
    let b = node(2, &drops);
    link(&a, &b);
    link(&b, &a);
    gc::collect();
    gc::collect();
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    assert_eq!(a.edges.lock().unwrap()[0].id, 2);
    drop(b);
    gc::collect();
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    drop(a);
    gc::collect();
    assert_eq!(drops.load(Ordering::SeqCst), 2);
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
    let first = node(0, &drops);
    let mut prev = first.clone();
    for i in 1..n {
        let x = node(i, &drops);
        link(&prev, &x);
        prev = x;
    }
    link(&prev, &first);
    drop((first, prev));
    gc::collect();
    assert_eq!(drops.load(Ordering::SeqCst), n + 1);
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
    // Resurrected: alive, finalized, weak references cleared.
    let back = SAVED.lock().unwrap().pop().unwrap();
    assert!(Gc::is_finalized(&back));
    assert!(w.upgrade().is_none());
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
fn settings_and_introspection() {
    let _l = lock();
    let old = gc::get_threshold();
    gc::set_threshold([10, 5, 5]);
    assert_eq!(gc::get_threshold(), [10, 5, 5]);
    gc::set_threshold(old);
    gc::disable();
    assert!(!gc::is_enabled());
    gc::enable();
    let drops = Arc::new(AtomicUsize::new(0));
    let a = node(1, &drops);
    let b = node(2, &drops);
    link(&a, &b);
    let r = gc::get_referents(&a);
    assert_eq!(r.len(), 1);
    assert!(Gc::ptr_eq(&r[0].downcast::<Node>().unwrap(), &b));
    assert!(r[0].downcast::<u32>().is_none());
    assert_eq!(r[0].refcount(), 2);
    let rr = gc::get_referrers(&b);
    assert!(
        rr.iter()
            .any(|o| o.downcast::<Node>().is_some_and(|n| Gc::ptr_eq(&n, &a)))
    );
    let all = gc::get_objects(None);
    assert!(all.iter().any(|o| o.address() == Gc::as_ptr(&a) as usize));
    drop((r, rr, all));
    let mut dot = Vec::new();
    gc::write_dot(&mut dot).unwrap();
    let dot = String::from_utf8(dot).unwrap();
    assert!(dot.starts_with("digraph"));
    let before = gc::get_stats()[2].collections;
    let infos = Arc::new(Mutex::new(Vec::new()));
    let i2 = infos.clone();
    let id = gc::add_callback(move |info| i2.lock().unwrap().push((info.phase, info.generation)));
    gc::collect();
    assert!(gc::remove_callback(id));
    assert!(!gc::remove_callback(id));
    assert_eq!(
        *infos.lock().unwrap(),
        vec![(gc::Phase::Start, 2), (gc::Phase::Stop, 2)]
    );
    assert!(gc::get_stats()[2].collections > before);
}

#[test]
fn saveall_and_freeze() {
    let _l = lock();
    let drops = Arc::new(AtomicUsize::new(0));
    let a = node(1, &drops);
    link(&a, &a);
    let addr = Gc::as_ptr(&a) as usize;
    drop(a);
    gc::set_debug(gc::DebugFlags::SAVEALL);
    gc::collect();
    gc::set_debug(gc::DebugFlags::empty());
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    let g = gc::garbage();
    assert!(g.iter().any(|o| o.address() == addr));
    drop(g);
    gc::clear_garbage();
    gc::collect();
    assert_eq!(drops.load(Ordering::SeqCst), 1);

    let b = node(2, &drops);
    gc::freeze();
    assert!(gc::get_freeze_count() >= 1);
    assert_eq!(
        gc::get_objects(Some(2))
            .iter()
            .filter(|o| o.address() == Gc::as_ptr(&b) as usize)
            .count(),
        0
    );
    gc::unfreeze();
    assert_eq!(gc::get_freeze_count(), 0);
    link(&b, &b);
    drop(b);
    gc::collect();
    assert_eq!(drops.load(Ordering::SeqCst), 2);
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
    assert_eq!(drops.load(Ordering::SeqCst), total + 1);
}

#[test]
fn gc_functions_work_inside_callbacks_and_drops() {
    let _l = lock();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let id = gc::add_callback(move |info| {
        // None of these may wait for the collection that calls us.
        let inner = gc::collect();
        let count = gc::get_count();
        let stats = gc::get_stats();
        let objs = gc::get_objects(None).len();
        gc::freeze();
        gc::unfreeze();
        s2.lock().unwrap().push((
            info.phase,
            inner,
            count.len(),
            stats.len(),
            objs > usize::MAX,
        ));
    });
    struct CollectsOnDrop(Mutex<Option<Gc<CollectsOnDrop>>>);
    impl Trace for CollectsOnDrop {
        fn trace(&self, v: &mut Visitor<'_>) {
            self.0.trace(v);
        }
    }
    impl Drop for CollectsOnDrop {
        fn drop(&mut self) {
            assert_eq!(gc::collect(), 0);
            let _ = gc::get_referrers(self.0.get_mut().unwrap().as_ref().unwrap());
        }
    }
    let a = Gc::new(CollectsOnDrop(Mutex::new(None)));
    *a.0.lock().unwrap() = Some(a.clone());
    drop(a);
    gc::collect();
    assert!(gc::remove_callback(id));
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert!(
        seen.iter()
            .all(|&(_, inner, c, s, f)| inner == 0 && c == 3 && s == 3 && !f)
    );
}
