//! Tests of the process-wide heap (`sync`) that change its global modes
//! (thresholds, `disable`, `SAVEALL`, `freeze`) or read global numbers. They
//! run in a process of their own, away from the unit tests, whose
//! collections these modes would change (a frozen or saved cycle is not
//! freed), and one at a time.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use ouro_refobj::sync::{Gc, gc};
use ouro_refobj::{Structural, Trace, Visitor};

static LOCK: Mutex<()> = Mutex::new(());

fn lock() -> std::sync::MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

struct Node {
    edges: Mutex<Vec<Gc<Node>>>,
    drops: Arc<AtomicUsize>,
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

impl Drop for Node {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

fn node(_id: usize, drops: &Arc<AtomicUsize>) -> Gc<Node> {
    Gc::new(Node {
        edges: Mutex::new(Vec::new()),
        drops: drops.clone(),
    })
}

fn link(a: &Gc<Node>, b: &Gc<Node>) {
    a.edges.lock().unwrap().push(b.clone());
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
    // Other tests collect at the same time (one heap per process): keep
    // only the calls made by this thread's collection.
    let me = std::thread::current().id();
    let id = gc::add_callback(move |info| {
        if std::thread::current().id() == me {
            i2.lock().unwrap().push((info.phase, info.generation))
        }
    });
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
    let listed = |generation| {
        gc::get_objects(generation)
            .iter()
            .any(|o| o.address() == Gc::as_ptr(&b) as usize)
    };
    assert!(listed(None));
    gc::freeze();
    assert!(gc::get_freeze_count() >= 1);
    // Frozen objects are left out of every listing, `None` included (as in
    // Python, and on the thread-local heap: gc_tests.rs).
    assert!(!listed(None));
    assert_eq!(
        gc::get_objects(Some(2))
            .iter()
            .filter(|o| o.address() == Gc::as_ptr(&b) as usize)
            .count(),
        0
    );
    gc::unfreeze();
    assert_eq!(gc::get_freeze_count(), 0);
    assert!(listed(None));
    link(&b, &b);
    drop(b);
    gc::collect();
    assert_eq!(drops.load(Ordering::SeqCst), 2);
}

#[test]
fn gc_functions_work_inside_callbacks_and_drops() {
    let _l = lock();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let target = Arc::new(AtomicUsize::new(0));
    let t2 = target.clone();
    let me = std::thread::current().id();
    let id = gc::add_callback(move |info| {
        if std::thread::current().id() != me {
            return; // another test's collection
        }
        // None of these may wait for the collection that calls us.
        let inner = gc::collect();
        let count = gc::get_count();
        let stats = gc::get_stats();
        let want = t2.load(Ordering::SeqCst);
        let listed = gc::get_objects(None).iter().any(|o| o.address() == want);
        gc::freeze();
        gc::unfreeze();
        s2.lock()
            .unwrap()
            .push((info.phase, inner, count.len(), stats.len(), listed));
    });
    struct CollectsOnDrop(Mutex<Option<Gc<CollectsOnDrop>>>);
    impl Trace for CollectsOnDrop {
        fn structural() -> Structural<Self> {
            // SAFETY: `trace` only calls `trace` on fields.
            unsafe { Structural::promise() }
        }
        fn trace(&self, v: &mut Visitor<'_>) {
            self.0.trace(v);
        }
    }
    impl Drop for CollectsOnDrop {
        fn drop(&mut self) {
            // A `Drop` runs with no collector lock held: this is a
            // collection of its own (nothing left to find), with its own
            // callbacks, between the outer one's `Start` and `Stop`.
            assert_eq!(gc::collect(), 0);
            let _ = gc::get_referrers(self.0.get_mut().unwrap().as_ref().unwrap());
        }
    }
    let a = Gc::new(CollectsOnDrop(Mutex::new(None)));
    *a.0.lock().unwrap() = Some(a.clone());
    target.store(Gc::as_ptr(&a) as usize, Ordering::SeqCst);
    drop(a);
    gc::collect();
    assert!(gc::remove_callback(id));
    let seen = seen.lock().unwrap();
    // Listed at the start (on its list), gone at the end (collected). The
    // callbacks' own `collect()` returns 0 at once (they run under the
    // collector lock); the `Drop`'s collection comes between.
    assert_eq!(
        *seen,
        vec![
            (gc::Phase::Start, 0, 3, 3, true),
            (gc::Phase::Start, 0, 3, 3, false),
            (gc::Phase::Stop, 0, 3, 3, false),
            (gc::Phase::Stop, 0, 3, 3, false)
        ]
    );
}

/// `write_dot` draws roots as green boxes, objects no root reaches and
/// those `SAVEALL` kept as red octagons, the rest as ellipses: the same
/// things as on the thread-local heap (`gc_tests.rs`,
/// `dot_marks_saved_objects_as_garbage`).
#[test]
fn dot_colours_roots_garbage_and_saved_objects() {
    let _l = lock();
    let drops = Arc::new(AtomicUsize::new(0));
    let addr = |g: &Gc<Node>| Gc::as_ptr(g) as usize;
    gc::disable();
    let (s1, s2) = (node(1, &drops), node(2, &drops));
    link(&s1, &s2);
    link(&s2, &s1);
    let saved = addr(&s1);
    drop((s1, s2));
    gc::set_debug(gc::DebugFlags::SAVEALL);
    gc::collect();
    gc::set_debug(gc::DebugFlags::empty());
    let root = node(3, &drops);
    let child = node(4, &drops);
    link(&root, &child);
    let (g1, g2) = (node(5, &drops), node(6, &drops));
    link(&g1, &g2);
    link(&g2, &g1);
    let (r, c, g) = (addr(&root), addr(&child), addr(&g1));
    drop((child, g1, g2));
    let mut out = Vec::new();
    gc::write_dot(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let kind_of = |a: usize| {
        // Each node is named by its value's address (as on the
        // thread-local heap: one renderer draws both).
        let node = format!("o{a:x} [");
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with(&node))
            .unwrap();
        if line.contains("shape=box") {
            "root"
        } else if line.contains("shape=octagon") {
            "garbage"
        } else {
            "reachable"
        }
    };
    assert_eq!(kind_of(r), "root", "{text}");
    assert_eq!(kind_of(c), "reachable", "{text}");
    assert_eq!(kind_of(g), "garbage", "{text}");
    assert_eq!(kind_of(saved), "garbage", "{text}");
    drop(root);
    gc::clear_garbage();
    gc::enable();
    gc::collect();
    assert_eq!(drops.load(Ordering::SeqCst), 6);
}

/// A callback that removes itself, and whose captured state panics when
/// dropped: the panic comes out of `collect()` once the collection is done
/// (the collection finishes: `wait_for_drops` returns), and the callback is
/// gone, as on the thread-local heap (`gc_tests.rs`,
/// `panic_dropping_a_removed_callback`).
#[test]
fn panic_dropping_a_removed_callback() {
    struct PanicsOnDrop;
    impl Drop for PanicsOnDrop {
        fn drop(&mut self) {
            panic!("callback state dropped");
        }
    }
    let _l = lock();
    gc::disable();
    let me = Arc::new(Mutex::new(None));
    let calls = Arc::new(AtomicUsize::new(0));
    let (me2, calls2, state) = (me.clone(), calls.clone(), PanicsOnDrop);
    let id = gc::add_callback(move |_| {
        let _state = &state;
        calls2.fetch_add(1, Ordering::SeqCst);
        if let Some(id) = *me2.lock().unwrap() {
            assert!(gc::remove_callback(id));
        }
    });
    *me.lock().unwrap() = Some(id);
    let drops = Arc::new(AtomicUsize::new(0));
    let (a, b) = (node(1, &drops), node(2, &drops));
    link(&a, &b);
    link(&b, &a);
    drop((a, b));
    let p = std::panic::catch_unwind(gc::collect).unwrap_err();
    assert_eq!(p.downcast_ref::<&str>(), Some(&"callback state dropped"));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    gc::wait_for_drops();
    // The collection went on after the panic and freed the cycle.
    assert_eq!(drops.load(Ordering::SeqCst), 2);
    gc::collect();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(!gc::remove_callback(id));
    gc::enable();
}

static LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.target() == "ouro::gc"
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            LOG.lock().unwrap().push(r.args().to_string());
        }
    }
    fn flush(&self) {}
}

/// `STATS` logs one line per collection in the thread-local heap's shape
/// (`gc_tests.rs`, `stats_flag_logs_one_line_per_collection`), named `sync
/// gc`.
#[test]
fn stats_line() {
    let _l = lock();
    let _ = log::set_logger(&Capture);
    log::set_max_level(log::LevelFilter::Info);
    gc::disable();
    let drops = Arc::new(AtomicUsize::new(0));
    let (a, b) = (node(1, &drops), node(2, &drops));
    link(&a, &b);
    link(&b, &a);
    drop((a, b));
    gc::set_debug(gc::DebugFlags::STATS);
    gc::collect();
    gc::set_debug(gc::DebugFlags::empty());
    gc::enable();
    let log = LOG.lock().unwrap();
    let line = log
        .iter()
        .find(|l| l.starts_with("sync gc: generation 2: scanned "))
        .unwrap_or_else(|| panic!("{log:?}"));
    let rest = line.split_once(", ").map(|(_, r)| r).unwrap();
    assert!(
        rest.starts_with("unreachable 2, collected 2, uncollectable 0, ") && rest.ends_with(" ms"),
        "{line}"
    );
}

fn lines_ending(addr: usize) -> Vec<String> {
    let tag = format!("@{addr:#x}>");
    LOG.lock()
        .unwrap()
        .iter()
        .filter(|l| l.ends_with(&tag))
        .cloned()
        .collect()
}

/// A node whose `trace` is not promised structural.
struct Opaque {
    me: Mutex<Option<Gc<Opaque>>>,
}

impl Trace for Opaque {
    fn trace(&self, v: &mut Visitor<'_>) {
        self.me.trace(v);
    }
}

#[test]
fn leak_flags_log_each_object_and_saveall_counts_as_collected() {
    let _l = lock();
    let _ = log::set_logger(&Capture);
    log::set_max_level(log::LevelFilter::Info);
    gc::collect();
    let drops = Arc::new(AtomicUsize::new(0));
    let (a, b) = (node(1, &drops), node(2, &drops));
    link(&a, &b);
    link(&b, &a);
    let (pa, pb) = (Gc::as_ptr(&a).addr(), Gc::as_ptr(&b).addr());
    let o = Gc::new(Opaque {
        me: Mutex::new(None),
    });
    *o.me.lock().unwrap() = Some(o.clone());
    let po = Gc::as_ptr(&o).addr();
    drop((a, b, o));
    let before = gc::get_stats()[2];
    let stops = Arc::new(Mutex::new(Vec::new()));
    let seen = stops.clone();
    let id = gc::add_callback(move |i| {
        if i.phase == gc::Phase::Stop {
            seen.lock().unwrap().push((i.collected, i.uncollectable));
        }
    });
    gc::set_debug(gc::DebugFlags::LEAK);
    assert_eq!(gc::collect(), 2);
    gc::set_debug(gc::DebugFlags::empty());
    gc::remove_callback(id);
    let after = gc::get_stats()[2];
    assert_eq!(
        (
            after.collected - before.collected,
            after.uncollectable - before.uncollectable
        ),
        (2, 1),
        "saved objects count as collected, the reported one as uncollectable"
    );
    assert_eq!(*stops.lock().unwrap(), [(2, 1)]);
    let node_name = std::any::type_name::<Node>();
    for p in [pa, pb] {
        assert_eq!(
            lines_ending(p),
            [format!("collectable <{node_name} @{p:#x}>")]
        );
    }
    assert_eq!(
        lines_ending(po),
        [format!(
            "uncollectable <{} @{po:#x}>",
            std::any::type_name::<Opaque>()
        )]
    );
    let kept = gc::garbage();
    assert_eq!(kept.len(), 3, "SAVEALL kept all three");
    let o = kept.iter().find_map(|k| k.downcast::<Opaque>()).unwrap();
    drop(kept);
    gc::clear_garbage();
    o.me.lock().unwrap().take();
    drop(o);
    gc::collect();
    assert_eq!(drops.load(Ordering::SeqCst), 2);
}

#[test]
fn collectable_flag_names_freed_objects() {
    let _l = lock();
    let _ = log::set_logger(&Capture);
    log::set_max_level(log::LevelFilter::Info);
    let drops = Arc::new(AtomicUsize::new(0));
    let a = node(1, &drops);
    link(&a, &a);
    let pa = Gc::as_ptr(&a).addr();
    drop(a);
    gc::set_debug(gc::DebugFlags::COLLECTABLE);
    gc::collect();
    gc::set_debug(gc::DebugFlags::empty());
    assert_eq!(drops.load(Ordering::SeqCst), 1, "freed as usual");
    let name = std::any::type_name::<Node>();
    assert!(lines_ending(pa).contains(&format!("collectable <{name} @{pa:#x}>")));
}

#[test]
fn object_info_walks_referents_and_referrers() {
    let _l = lock();
    let drops = Arc::new(AtomicUsize::new(0));
    let (a, b) = (node(1, &drops), node(2, &drops));
    link(&a, &b);
    let ib = gc::get_referents(&a).remove(0);
    assert!(Gc::ptr_eq(&ib.downcast::<Node>().unwrap(), &b));
    assert!(ib.referents().is_empty());
    let up = ib.referrers();
    assert_eq!(up.len(), 1);
    assert!(Gc::ptr_eq(&up[0].downcast::<Node>().unwrap(), &a));
    assert_eq!(up[0].referents()[0].address(), ib.address());
}
