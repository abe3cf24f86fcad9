//! Cycles of the process-wide heap that only a non-structural `Trace` impl
//! keeps alive: kept and reported, as on the thread-local heap
//! (`tests/collect.rs`): counted as `uncollectable` in the statistics and
//! the callbacks, named in a `log` warning once per type, kept in
//! `sync::gc::garbage()` under `SAVEALL`.
//!
//! The heap, its settings and statistics are shared by every test of this
//! binary: the tests run one at a time (`LOCK`), with automatic collection
//! off, and each one looks at the difference its own collections make.
//! Each test uses types of its own (the `K` parameter), so that each
//! type's one warning belongs to one test.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use ouro::sync::{Gc, Weak, gc};
use ouro::{Structural, Trace, Visitor};

static LOCK: Mutex<()> = Mutex::new(());

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Takes the heap for one test: no automatic collection, no debug flags,
/// nothing left to drop from earlier collections.
fn serialized() -> MutexGuard<'static, ()> {
    let guard = lock(&LOCK);
    gc::disable();
    gc::set_debug(gc::DebugFlags::empty());
    gc::wait_for_drops();
    capture_warnings();
    guard
}

/// The `log` records of target `ouro::gc` at level `warn`.
static WARNINGS: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.target() == "ouro::gc" && m.level() == log::Level::Warn
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            lock(&WARNINGS).push(r.args().to_string());
        }
    }
    fn flush(&self) {}
}

fn capture_warnings() {
    let _ = log::set_logger(&Capture);
    log::set_max_level(log::LevelFilter::Warn);
}

/// The warnings that name `type_name` (a full path, as `type_name` gives).
fn warnings_naming(type_name: &str) -> Vec<String> {
    let quoted = format!("`{type_name}`");
    lock(&WARNINGS)
        .iter()
        .filter(|l| l.contains(&quoted))
        .cloned()
        .collect()
}

fn uncollectable() -> usize {
    gc::get_stats()[2].uncollectable
}

/// Counts the drops of the values it is part of.
struct Tally(Arc<AtomicUsize>);

impl Drop for Tally {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// The derived half of the cycles below.
#[derive(Trace)]
struct Inner<const K: u8> {
    outer: Mutex<Option<Gc<Unpromised<K>>>>,
    #[trace(skip)]
    _tally: Tally,
}

/// A hand-written `trace` that only visits its field, without the promise:
/// not structural.
struct Unpromised<const K: u8> {
    inner: Mutex<Option<Gc<Inner<K>>>>,
    _tally: Tally,
}

impl<const K: u8> Trace for Unpromised<K> {
    fn trace(&self, v: &mut Visitor<'_>) {
        self.inner.trace(v);
    }
}

/// An unreachable cycle `Unpromised -> Inner -> Unpromised`; a weak handle
/// to its hand-written object.
fn unpromised_cycle<const K: u8>(drops: &Arc<AtomicUsize>) -> Weak<Unpromised<K>> {
    let u = Gc::new(Unpromised::<K> {
        inner: Mutex::new(None),
        _tally: Tally(drops.clone()),
    });
    let i = Gc::new(Inner::<K> {
        outer: Mutex::new(Some(u.clone())),
        _tally: Tally(drops.clone()),
    });
    *lock(&u.inner) = Some(i);
    Gc::downgrade(&u)
}

/// Breaks the cycle by hand; both objects go.
fn break_cycle<const K: u8>(w: &Weak<Unpromised<K>>) {
    let u = w.upgrade().expect("the cycle was kept");
    let i = lock(&u.inner).take();
    drop(i);
    drop(u);
    assert!(w.upgrade().is_none());
}

#[test]
fn a_cycle_through_a_hand_written_trace_is_kept_and_reported() {
    let _serial = serialized();
    let drops = Arc::new(AtomicUsize::new(0));
    let stops = Arc::new(Mutex::new(Vec::new()));
    let seen = stops.clone();
    let id = gc::add_callback(move |info| {
        if info.phase == gc::Phase::Stop {
            lock(&seen).push(info.uncollectable);
        }
    });
    let before = uncollectable();
    let w = unpromised_cycle::<1>(&drops);
    assert_eq!(gc::collect(), 0, "not found unreachable");
    assert_eq!(drops.load(Ordering::SeqCst), 0, "not freed");
    assert_eq!(uncollectable(), before + 2, "counted");
    assert_eq!(*lock(&stops), [2], "the callback sees it");
    let name = std::any::type_name::<Unpromised<1>>();
    let warned = warnings_naming(name);
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(warned[0].contains("#[derive(Trace)]"), "{}", warned[0]);
    assert!(warned[0].contains("Structural::promise()"), "{}", warned[0]);
    assert!(warned[0].contains("sync::gc::get_stats()"), "{}", warned[0]);
    assert!(
        warnings_naming(std::any::type_name::<Inner<1>>()).is_empty(),
        "the derived type is not to blame"
    );
    // Found again by the next full collection; the warning is not repeated.
    assert_eq!(gc::collect(), 0);
    assert_eq!(uncollectable(), before + 4);
    assert_eq!(warnings_naming(name).len(), 1, "once per type");
    gc::remove_callback(id);
    // Still intact, and readable.
    let u = w.upgrade().expect("kept");
    assert!(lock(&u.inner).is_some());
    drop(u);
    break_cycle(&w);
    assert_eq!(drops.load(Ordering::SeqCst), 2, "each dropped once");
}

/// A derived cycle, dropped by its owner.
#[derive(Trace)]
struct Pair {
    other: Mutex<Option<Gc<Pair>>>,
    #[trace(skip)]
    _tally: Tally,
}

fn drop_a_derived_pair(drops: &Arc<AtomicUsize>) {
    let new = || {
        Gc::new(Pair {
            other: Mutex::new(None),
            _tally: Tally(drops.clone()),
        })
    };
    let (a, b) = (new(), new());
    *lock(&a.other) = Some(b.clone());
    *lock(&b.other) = Some(a.clone());
}

#[test]
fn a_derived_cycle_beside_a_reported_one_is_collected_and_not_counted() {
    let _serial = serialized();
    let (kept, collected) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let before = uncollectable();
    let w = unpromised_cycle::<2>(&kept);
    drop_a_derived_pair(&collected);
    assert_eq!(gc::collect(), 2, "the derived pair");
    assert_eq!(collected.load(Ordering::SeqCst), 2);
    assert_eq!(kept.load(Ordering::SeqCst), 0);
    assert_eq!(uncollectable(), before + 2, "only the reported cycle");
    assert_eq!(
        warnings_naming(std::any::type_name::<Unpromised<2>>()).len(),
        1
    );
    break_cycle(&w);
    assert_eq!(kept.load(Ordering::SeqCst), 2);
}

#[test]
fn saveall_keeps_a_reported_cycle_in_garbage() {
    let _serial = serialized();
    let drops = Arc::new(AtomicUsize::new(0));
    gc::clear_garbage();
    gc::set_debug(gc::DebugFlags::SAVEALL);
    let before = uncollectable();
    let w = unpromised_cycle::<3>(&drops);
    assert_eq!(gc::collect(), 0);
    assert_eq!(uncollectable(), before + 2);
    let saved = gc::garbage();
    let mut names: Vec<_> = saved.iter().map(|o| o.type_name()).collect();
    names.sort_unstable();
    let mut want = [
        std::any::type_name::<Inner<3>>(),
        std::any::type_name::<Unpromised<3>>(),
    ];
    want.sort_unstable();
    assert_eq!(names, want);
    // Held strongly: each has its cycle's reference, the saved one and the
    // one `garbage()` handed out.
    assert!(saved.iter().all(|o| o.refcount() >= 2));
    let u = saved
        .iter()
        .find_map(|o| o.downcast::<Unpromised<3>>())
        .unwrap();
    assert!(lock(&u.inner).is_some(), "alive and readable");
    drop((u, saved));
    // Kept by `garbage()`, they are not found again.
    assert_eq!(gc::collect(), 0);
    assert_eq!(uncollectable(), before + 2);
    gc::set_debug(gc::DebugFlags::empty());
    gc::clear_garbage();
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    break_cycle(&w);
    assert_eq!(drops.load(Ordering::SeqCst), 2);
}

/// The same shape as `Unpromised`, with the promise.
struct Promised {
    me: Mutex<Option<Gc<Promised>>>,
    _tally: Tally,
}

impl Trace for Promised {
    fn structural() -> Structural<Self> {
        // SAFETY: `trace` only calls `trace` on a field, whose type's impl is
        // ouro's own (structural).
        unsafe { Structural::promise() }
    }
    fn trace(&self, v: &mut Visitor<'_>) {
        self.me.trace(v);
    }
}

#[test]
fn a_hand_written_trace_with_the_promise_is_collected() {
    let _serial = serialized();
    let drops = Arc::new(AtomicUsize::new(0));
    let before = uncollectable();
    let a = Gc::new(Promised {
        me: Mutex::new(None),
        _tally: Tally(drops.clone()),
    });
    *lock(&a.me) = Some(a.clone());
    drop(a);
    assert_eq!(gc::collect(), 1);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    assert_eq!(uncollectable(), before);
    assert!(warnings_naming(std::any::type_name::<Promised>()).is_empty());
}

/// A derived self-cycle that holds a hand-written leaf.
#[derive(Trace)]
struct Holder {
    me: Mutex<Option<Gc<Holder>>>,
    leaf: Gc<Unpromised<5>>,
    #[trace(skip)]
    _tally: Tally,
}

/// The report subtracts only the edges between survivors: a non-structural
/// object that only garbage holds is not reported (it goes with the
/// garbage).
#[test]
fn a_hand_written_object_that_only_garbage_holds_is_not_reported() {
    let _serial = serialized();
    let drops = Arc::new(AtomicUsize::new(0));
    let before = uncollectable();
    let h = Gc::new(Holder {
        me: Mutex::new(None),
        leaf: Gc::new(Unpromised::<5> {
            inner: Mutex::new(None),
            _tally: Tally(drops.clone()),
        }),
        _tally: Tally(drops.clone()),
    });
    *lock(&h.me) = Some(h.clone());
    drop(h);
    // The leaf is not verified (its `trace` is not structural), but is
    // dropped with the value that holds it.
    assert!(gc::collect() >= 1);
    assert_eq!(drops.load(Ordering::SeqCst), 2);
    assert_eq!(uncollectable(), before);
    assert!(warnings_naming(std::any::type_name::<Unpromised<5>>()).is_empty());
}

/// A derived type whose handle field names `sync::Gc` through a renamed
/// import: the derive cannot see that `Aliased<Self>` is ouro's handle, so
/// the type is not structural and its cycles are not collected on this
/// heap. They are reported, as for a hand-written `trace`: counted as
/// uncollectable and named in a warning (never a silent leak).
mod renamed {
    use ouro::sync::Gc as Aliased;
    use std::sync::Mutex;

    #[derive(ouro::Trace)]
    pub(super) struct Renamed {
        pub(super) me: Mutex<Option<Aliased<Renamed>>>,
    }
}

#[test]
fn a_cycle_through_a_renamed_handle_is_reported() {
    let _g = serialized();
    use renamed::Renamed;
    assert!(
        !<Renamed as Trace>::structural().is_made(),
        "the derive does not know the alias"
    );
    let before = uncollectable();
    let a = Gc::new(Renamed {
        me: Mutex::new(None),
    });
    *lock(&a.me) = Some(a.clone());
    let w = Gc::downgrade(&a);
    drop(a);
    assert_eq!(gc::collect(), 0);
    gc::wait_for_drops();
    assert!(w.upgrade().is_some(), "kept");
    assert_eq!(uncollectable() - before, 1);
    let name = std::any::type_name::<Renamed>();
    assert_eq!(warnings_naming(name).len(), 1, "{:?}", lock(&WARNINGS));
    // Broken by hand, it goes by its count.
    let a = w.upgrade().unwrap();
    lock(&a.me).take();
    drop(a);
    assert!(w.upgrade().is_none());
}
