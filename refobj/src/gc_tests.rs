//! Tests of the introspection half of `gc` (they also run under Miri).

use core::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::panic;
use std::rc::Rc;
use std::sync::Mutex;

use crate::gc::{self, CallbackInfo, DebugFlags, Phase};
use crate::{Gc, Trace, Visitor};

struct N {
    name: &'static str,
    edges: RefCell<Vec<Gc<N>>>,
    drops: Rc<Cell<usize>>,
}

impl Trace for N {
    fn structural() -> crate::Structural<Self> {
        // SAFETY: `trace` only calls `trace` on fields, whose types' impls
        // are ouro's own (structural).
        unsafe { crate::Structural::promise() }
    }
    fn trace(&self, v: &mut Visitor<'_>) {
        self.edges.trace(v);
    }
}

impl Drop for N {
    fn drop(&mut self) {
        self.drops.set(self.drops.get() + 1);
    }
}

fn n(name: &'static str, drops: &Rc<Cell<usize>>) -> Gc<N> {
    Gc::new(N {
        name,
        edges: RefCell::new(Vec::new()),
        drops: drops.clone(),
    })
}

fn link(a: &Gc<N>, b: &Gc<N>) {
    a.edges.borrow_mut().push(b.clone());
}

fn names(infos: &[gc::ObjectInfo]) -> Vec<&'static str> {
    let mut v: Vec<_> = infos
        .iter()
        .map(|o| o.downcast::<N>().unwrap().name)
        .collect();
    v.sort_unstable();
    v
}

/// `ObjectInfo::address` is the value's address, as on the process-wide
/// heap (`refobj/tests/sync_modes.rs`, `settings_and_introspection`).
#[test]
fn address_is_the_value_address() {
    let d = Rc::new(Cell::new(0));
    let a = n("a", &d);
    let want = Gc::as_ptr(&a) as usize;
    let infos = gc::get_referents(&Gc::new(RefCell::new(vec![a.clone()])));
    assert_eq!(infos.len(), 1);
    assert_eq!(infos[0].address(), want);
    assert!(gc::get_objects(None).iter().any(|o| o.address() == want));
}

/// Frozen objects are left out of `get_objects(None)` (as in Python, and
/// on the process-wide heap: `refobj/tests/sync_modes.rs`,
/// `saveall_and_freeze`).
#[test]
fn get_objects_leaves_frozen_objects_out() {
    let d = Rc::new(Cell::new(0));
    let a = n("a", &d);
    let want = Gc::as_ptr(&a) as usize;
    let listed = || gc::get_objects(None).iter().any(|o| o.address() == want);
    assert!(listed());
    gc::freeze();
    assert!(!listed());
    gc::unfreeze();
    assert!(listed());
}

#[test]
fn get_objects_follows_promotions() {
    gc::disable();
    let d = Rc::new(Cell::new(0));
    let (a, b, c) = (n("a", &d), n("b", &d), n("c", &d));
    let _untracked = Gc::new(5u32);
    assert_eq!(names(&gc::get_objects(Some(0))), ["a", "b", "c"]);
    assert!(gc::get_objects(Some(1)).is_empty());
    gc::collect_generation(0);
    assert!(gc::get_objects(Some(0)).is_empty());
    let g1 = gc::get_objects(Some(1));
    assert_eq!(names(&g1), ["a", "b", "c"]);
    assert!(g1.iter().all(|o| o.generation() == Some(1)));
    assert!(
        g1.iter().all(|o| o.refcount() == 1),
        "the info's own reference is not counted"
    );
    gc::collect();
    assert_eq!(names(&gc::get_objects(Some(2))), ["a", "b", "c"]);
    assert_eq!(gc::get_objects(None).len(), 3);
    assert!(gc::get_objects(None)[0].downcast::<u32>().is_none());
    // The infos hold references, like the list Python returns.
    drop((a, b, c));
    assert_eq!(gc::get_objects(None).len(), 3);
    drop(g1);
    assert!(gc::get_objects(None).is_empty());
}

#[test]
fn referents_and_referrers_of_a_known_graph() {
    gc::disable();
    let d = Rc::new(Cell::new(0));
    let (a, b, c) = (n("a", &d), n("b", &d), n("c", &d));
    link(&a, &b);
    link(&a, &c);
    link(&b, &c);
    link(&c, &c);
    assert_eq!(names(&gc::get_referents(&a)), ["b", "c"]);
    assert_eq!(names(&gc::get_referents(&b)), ["c"]);
    assert_eq!(names(&gc::get_referrers(&c)), ["a", "b", "c"]);
    assert!(gc::get_referrers(&a).is_empty());
    assert!(gc::get_referents(&Gc::new(1u8)).is_empty());
    // Introspection keeps no reference behind.
    assert_eq!(Gc::strong_count(&c), 4);
}

#[test]
fn callbacks_see_every_collection_with_exact_counts() {
    gc::disable();
    let seen: Rc<RefCell<Vec<CallbackInfo>>> = Rc::default();
    let s = seen.clone();
    let id = gc::add_callback(move |info| s.borrow_mut().push(*info));
    let d = Rc::new(Cell::new(0));
    let (a, b, c) = (n("a", &d), n("b", &d), n("c", &d));
    link(&a, &b);
    link(&b, &c);
    link(&c, &a);
    drop((a, b, c));
    assert_eq!(gc::collect(), 3);
    {
        let seen = seen.borrow();
        assert_eq!(seen.len(), 2);
        assert_eq!(
            (seen[0].phase, seen[0].generation, seen[0].collected),
            (Phase::Start, 2, 0)
        );
        assert_eq!(
            (seen[1].phase, seen[1].collected, seen[1].uncollectable),
            (Phase::Stop, 3, 0)
        );
    }
    // Automatic collections call them too.
    gc::enable();
    gc::set_threshold([2, 10, 10]);
    let keep: Vec<_> = (0..3).map(|_| n("x", &d)).collect();
    assert!(
        seen.borrow()
            .iter()
            .any(|i| i.generation == 0 && i.phase == Phase::Stop)
    );
    gc::disable();
    gc::set_threshold([700, 10, 10]);
    assert!(gc::remove_callback(id));
    assert!(!gc::remove_callback(id));
    let before = seen.borrow().len();
    gc::collect();
    assert_eq!(seen.borrow().len(), before);
    drop(keep);
}

#[test]
fn callbacks_may_use_the_gc_module() {
    gc::disable();
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    let id = Rc::new(Cell::new(None));
    let id2 = id.clone();
    let first = gc::add_callback(move |info| {
        c.set(c.get() + 1);
        assert_eq!(gc::collect(), 0, "no collection inside a callback");
        if info.phase == Phase::Stop {
            // Add one for later, and remove ourselves.
            let c2 = c.clone();
            gc::add_callback(move |_| c2.set(c2.get() + 100));
            gc::remove_callback(id2.get().unwrap());
        }
    });
    id.set(Some(first));
    gc::collect();
    assert_eq!(calls.get(), 2);
    gc::collect();
    assert_eq!(calls.get(), 202, "only the added callback runs now");
}

#[test]
fn a_panicking_callback_does_not_corrupt_the_heap() {
    gc::disable();
    let id = gc::add_callback(|info| {
        if info.phase == Phase::Stop {
            panic!("callback failed")
        }
    });
    let d = Rc::new(Cell::new(0));
    let a = n("a", &d);
    link(&a, &a);
    drop(a);
    assert!(panic::catch_unwind(gc::collect).is_err());
    assert_eq!(d.get(), 1, "the collection completed");
    gc::remove_callback(id);
    assert_eq!(gc::collect(), 0);
}

#[test]
fn saveall_keeps_exactly_the_unreachable_set() {
    gc::disable();
    gc::set_debug(DebugFlags::SAVEALL);
    let d = Rc::new(Cell::new(0));
    let (a, b) = (n("a", &d), n("b", &d));
    link(&a, &b);
    link(&b, &a);
    let live = n("live", &d);
    link(&live, &live);
    drop(n("acyclic", &d)); // freed by counting, never garbage
    assert_eq!(d.get(), 1);
    drop((a, b));
    assert_eq!(gc::collect(), 2);
    assert_eq!(d.get(), 1, "nothing freed");
    assert_eq!(names(&gc::garbage()), ["a", "b"]);
    // Counted as collected, as CPython counts saved objects.
    let stats = gc::get_stats()[2];
    assert_eq!((stats.collected, stats.uncollectable), (2, 0));
    gc::set_debug(DebugFlags::empty());
    gc::clear_garbage();
    assert!(gc::garbage().is_empty());
    assert_eq!(gc::collect(), 2);
    assert_eq!(d.get(), 3);
    drop(live);
    gc::collect();
}

#[test]
fn frozen_objects_are_not_scanned_until_unfrozen() {
    gc::disable();
    let d = Rc::new(Cell::new(0));
    let a = n("a", &d);
    link(&a, &a);
    let b = n("b", &d);
    gc::freeze();
    assert_eq!(gc::get_freeze_count(), 2);
    assert!(gc::get_objects(None).is_empty());
    assert_eq!(gc::get_count()[0], 0);
    drop(a);
    assert_eq!(gc::collect(), 0, "a frozen cycle is not collected");
    assert_eq!(d.get(), 0);
    let info = gc::get_referrers(&b);
    assert!(info.is_empty());
    gc::unfreeze();
    assert_eq!(gc::get_freeze_count(), 0);
    assert_eq!(names(&gc::get_objects(Some(2))), ["a", "b"]);
    assert_eq!(gc::collect(), 1);
    assert_eq!(d.get(), 1);
    drop(b);
}

#[test]
fn debug_flags_round_trip() {
    gc::set_debug(DebugFlags::STATS | DebugFlags::SAVEALL);
    assert_eq!(gc::get_debug(), DebugFlags::STATS | DebugFlags::SAVEALL);
    assert_eq!(
        format!("{:?}", gc::get_debug()),
        "DebugFlags(STATS | SAVEALL)"
    );
    gc::set_debug(DebugFlags::empty());
    assert!(gc::get_debug().is_empty());
}

/// The lines logged, with the thread that logged them (tests run in
/// parallel, and addresses are reused across threads' heaps).
static LOG: Mutex<Vec<(std::thread::ThreadId, String)>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.target() == "ouro::gc"
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            LOG.lock()
                .unwrap()
                .push((std::thread::current().id(), r.args().to_string()));
        }
    }
    fn flush(&self) {}
}

#[test]
fn stats_flag_logs_one_line_per_collection() {
    let _ = log::set_logger(&Capture);
    log::set_max_level(log::LevelFilter::Info);
    gc::disable();
    gc::set_debug(DebugFlags::STATS);
    let d = Rc::new(Cell::new(0));
    let a = n("a", &d);
    link(&a, &a);
    drop(a);
    gc::collect();
    gc::set_debug(DebugFlags::empty());
    let log = LOG.lock().unwrap();
    // The shape of the process-wide heap's line too (`sync gc: ...`,
    // `refobj/tests/sync_modes.rs`, `stats_line`).
    assert!(
        log.iter().map(|(_, l)| l).any(|l| l.starts_with(
            "gc: generation 2: scanned 1, unreachable 1, collected 1, uncollectable 0, "
        ) && l.ends_with(" ms")),
        "{log:?}"
    );
}

/// Objects `SAVEALL` kept in `garbage()` are drawn as garbage (red
/// octagons), not as roots, as on the process-wide heap
/// (`refobj/tests/sync_modes.rs`, `dot_colours_roots_garbage_and_saved_objects`).
#[test]
fn dot_marks_saved_objects_as_garbage() {
    gc::disable();
    let d = Rc::new(Cell::new(0));
    let (s1, s2) = (n("s1", &d), n("s2", &d));
    link(&s1, &s2);
    link(&s2, &s1);
    let id = format!("o{:x} ", Gc::as_ptr(&s1) as usize);
    drop((s1, s2));
    gc::set_debug(DebugFlags::SAVEALL);
    gc::collect();
    gc::set_debug(DebugFlags::empty());
    let mut out = Vec::new();
    gc::write_dot(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with(&id))
        .unwrap();
    assert!(line.contains("shape=octagon"), "{text}");
    gc::clear_garbage();
    gc::collect();
    assert_eq!(d.get(), 2);
    gc::enable();
}

/// A callback that removes itself, and whose captured state panics when
/// dropped: the panic comes out of `collect()` once the collection is done,
/// and the callback is gone, as on the process-wide heap
/// (`refobj/tests/sync_modes.rs`, `panic_dropping_a_removed_callback`).
#[test]
fn panic_dropping_a_removed_callback() {
    struct PanicsOnDrop;
    impl Drop for PanicsOnDrop {
        fn drop(&mut self) {
            panic!("callback state dropped");
        }
    }
    let me = Rc::new(Cell::new(None));
    let calls = Rc::new(Cell::new(0));
    let (me2, calls2, state) = (me.clone(), calls.clone(), PanicsOnDrop);
    let id = gc::add_callback(move |_| {
        let _state = &state;
        calls2.set(calls2.get() + 1);
        if let Some(id) = me2.get() {
            assert!(gc::remove_callback(id));
        }
    });
    me.set(Some(id));
    let d = Rc::new(Cell::new(0));
    let (a, b) = (n("a", &d), n("b", &d));
    link(&a, &b);
    link(&b, &a);
    drop((a, b));
    let p = panic::catch_unwind(gc::collect).unwrap_err();
    assert_eq!(p.downcast_ref::<&str>(), Some(&"callback state dropped"));
    assert_eq!(calls.get(), 1);
    // The collection went on after the panic and freed the cycle.
    assert_eq!(d.get(), 2);
    gc::collect();
    assert_eq!(calls.get(), 1);
    assert!(!gc::remove_callback(id));
}

/// Parses the `write_dot` output back: every object and edge is there, with
/// the right kind (root, reachable, garbage).
#[test]
fn dot_output_has_every_object_and_edge() {
    gc::disable();
    let d = Rc::new(Cell::new(0));
    let root = n("root", &d);
    let child = n("child", &d);
    link(&root, &child);
    link(&child, &root);
    let (g1, g2) = (n("g1", &d), n("g2", &d));
    link(&g1, &g2);
    link(&g2, &g1);
    let addr = |g: &Gc<N>| format!("o{:x}", Gc::as_ptr(g) as usize);
    let expected_edges: HashSet<(String, String)> = [
        (addr(&root), addr(&child)),
        (addr(&child), addr(&root)),
        (addr(&g1), addr(&g2)),
        (addr(&g2), addr(&g1)),
    ]
    .into_iter()
    .collect();
    let names_by_node: HashMap<String, &str> = [
        (addr(&root), "root"),
        (addr(&child), "child"),
        (addr(&g1), "g1"),
        (addr(&g2), "g2"),
    ]
    .into_iter()
    .collect();
    drop((g1, g2, child)); // g1/g2: garbage; child: reachable from root
    let mut out = Vec::new();
    gc::write_dot(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("digraph ouro {") && text.trim_end().ends_with('}'));
    let mut edges = HashSet::new();
    let mut kinds = HashMap::new();
    for line in text.lines().map(str::trim) {
        if let Some((a, b)) = line.strip_suffix(';').and_then(|l| l.split_once(" -> ")) {
            edges.insert((a.to_string(), b.to_string()));
        } else if line.starts_with('o') && line.contains("[label=") {
            let id = line.split_whitespace().next().unwrap().to_string();
            let kind = if line.contains("shape=box") {
                "root"
            } else if line.contains("shape=octagon") {
                "garbage"
            } else {
                "reachable"
            };
            kinds.insert(id, kind);
        }
    }
    assert_eq!(edges, expected_edges);
    assert_eq!(kinds.len(), 4);
    let kind_of = |name: &str| {
        let id = names_by_node.iter().find(|(_, n)| **n == name).unwrap().0;
        kinds[id]
    };
    assert_eq!(kind_of("root"), "root");
    assert_eq!(kind_of("child"), "reachable");
    assert_eq!(kind_of("g1"), "garbage");
    assert_eq!(kind_of("g2"), "garbage");
    drop(root);
    gc::collect();
}

fn obj_addr(g: &Gc<N>) -> usize {
    Gc::as_ptr(g) as usize
}

#[test]
fn saveall_counts_saved_objects_as_collected_in_callbacks() {
    gc::disable();
    gc::set_debug(DebugFlags::SAVEALL);
    let seen = Rc::new(Cell::new(None::<CallbackInfo>));
    let s = seen.clone();
    let id = gc::add_callback(move |i| {
        if i.phase == Phase::Stop {
            s.set(Some(*i))
        }
    });
    let d = Rc::new(Cell::new(0));
    let a = n("a", &d);
    link(&a, &a);
    drop(a);
    assert_eq!(gc::collect(), 1);
    gc::remove_callback(id);
    let info = seen.get().unwrap();
    assert_eq!((info.collected, info.uncollectable), (1, 0));
    gc::set_debug(DebugFlags::empty());
    gc::clear_garbage();
    assert_eq!(gc::collect(), 1);
    assert_eq!(d.get(), 1);
}

#[test]
fn debug_flags_leak_is_collectable_uncollectable_saveall() {
    assert_eq!(
        DebugFlags::LEAK,
        DebugFlags::COLLECTABLE | DebugFlags::UNCOLLECTABLE | DebugFlags::SAVEALL
    );
    assert_eq!(
        format!("{:?}", DebugFlags::LEAK | DebugFlags::STATS),
        "DebugFlags(STATS | COLLECTABLE | UNCOLLECTABLE | SAVEALL)"
    );
}

fn lines_naming(addr: usize) -> Vec<String> {
    let tag = format!("@{addr:#x}>");
    let me = std::thread::current().id();
    LOG.lock()
        .unwrap()
        .iter()
        .filter(|(t, l)| *t == me && l.ends_with(&tag))
        .map(|(_, l)| l.clone())
        .collect()
}

#[test]
fn collectable_flag_logs_one_line_per_object_found() {
    let _ = log::set_logger(&Capture);
    log::set_max_level(log::LevelFilter::Info);
    gc::disable();
    let d = Rc::new(Cell::new(0));
    let (a, b) = (n("a", &d), n("b", &d));
    link(&a, &b);
    link(&b, &a);
    let (pa, pb) = (obj_addr(&a), obj_addr(&b));
    drop((a, b));
    gc::set_debug(DebugFlags::COLLECTABLE);
    assert_eq!(gc::collect(), 2);
    gc::set_debug(DebugFlags::empty());
    assert_eq!(d.get(), 2, "freed as usual");
    let name = core::any::type_name::<N>();
    for p in [pa, pb] {
        assert_eq!(
            lines_naming(p),
            [format!("collectable <{name} @{p:#x}>")],
            "one line for the object at {p:#x}"
        );
    }
}

/// A node whose `trace` is not promised structural: a cycle through it is
/// reported as uncollectable.
struct Opaque {
    me: RefCell<Option<Gc<Opaque>>>,
}

impl Trace for Opaque {
    fn trace(&self, v: &mut Visitor<'_>) {
        self.me.trace(v);
    }
}

#[test]
fn leak_flag_logs_and_keeps_collectable_and_uncollectable_objects() {
    let _ = log::set_logger(&Capture);
    log::set_max_level(log::LevelFilter::Info);
    gc::disable();
    let d = Rc::new(Cell::new(0));
    let a = n("a", &d);
    link(&a, &a);
    let o = Gc::new(Opaque {
        me: RefCell::new(None),
    });
    *o.me.borrow_mut() = Some(o.clone());
    let (pa, po) = (obj_addr(&a), Gc::as_ptr(&o) as usize);
    drop((a, o));
    gc::set_debug(DebugFlags::LEAK);
    assert_eq!(gc::collect(), 1);
    gc::set_debug(DebugFlags::empty());
    let stats = gc::get_stats()[2];
    assert_eq!((stats.collected, stats.uncollectable), (1, 1));
    assert_eq!(
        lines_naming(pa),
        [format!(
            "collectable <{} @{pa:#x}>",
            core::any::type_name::<N>()
        )]
    );
    assert_eq!(
        lines_naming(po),
        [format!(
            "uncollectable <{} @{po:#x}>",
            core::any::type_name::<Opaque>()
        )]
    );
    let kept = gc::garbage();
    assert_eq!(kept.len(), 2, "SAVEALL kept both");
    let o = kept.iter().find_map(|k| k.downcast::<Opaque>()).unwrap();
    drop(kept);
    gc::clear_garbage();
    o.me.borrow_mut().take();
    drop(o);
    assert_eq!(gc::collect(), 1);
    assert_eq!(d.get(), 1);
}

struct Hop {
    next: RefCell<Option<Gc<Stop>>>,
}
struct Stop {
    back: RefCell<Option<Gc<Hop>>>,
    n: u32,
}
impl Trace for Hop {
    fn structural() -> crate::Structural<Self> {
        // SAFETY: `trace` only calls `trace` on a field of ouro's types.
        unsafe { crate::Structural::promise() }
    }
    fn trace(&self, v: &mut Visitor<'_>) {
        self.next.trace(v);
    }
}
impl Trace for Stop {
    fn structural() -> crate::Structural<Self> {
        // SAFETY: as for `Hop`.
        unsafe { crate::Structural::promise() }
    }
    fn trace(&self, v: &mut Visitor<'_>) {
        self.back.trace(v);
    }
}

#[test]
fn object_info_walks_a_chain_of_mixed_types_without_downcasts() {
    gc::disable();
    let hop = Gc::new(Hop {
        next: RefCell::new(None),
    });
    let stop = Gc::new(Stop {
        back: RefCell::new(Some(hop.clone())),
        n: 7,
    });
    *hop.next.borrow_mut() = Some(stop.clone());
    let start = gc::get_referrers(&hop);
    assert_eq!(start.len(), 1);
    // hop -> stop -> hop, by ObjectInfo alone.
    let there = gc::get_referents(&hop).remove(0);
    assert_eq!(there.type_name(), core::any::type_name::<Stop>());
    let back = there.referents();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].type_name(), core::any::type_name::<Hop>());
    assert!(Gc::ptr_eq(&back[0].downcast::<Hop>().unwrap(), &hop));
    let who = there.referrers();
    assert_eq!(who.len(), 1);
    assert!(Gc::ptr_eq(&who[0].downcast::<Hop>().unwrap(), &hop));
    assert_eq!(there.downcast::<Stop>().unwrap().n, 7);
    drop((start, there, back, who, stop));
    hop.next.borrow_mut().take();
    drop(hop);
    assert_eq!(gc::collect(), 0);
    assert!(gc::get_objects(None).is_empty());
}
