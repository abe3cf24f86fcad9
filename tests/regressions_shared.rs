//! Reproducers from the independent review of the process-wide heap
//! (`sync`): each test is an attempt to break a rule of the protocol from
//! safe code, kept so that the fix stays fixed.
//!
//! The tests whose doc names a finding (`sr01`-`sr11`) reproduced a bug
//! when written (findings 1-11 of the review; 1, 2 and 4-10 were fixed in
//! 3380bad and run as regression tests; several were only visible as UB
//! under Miri: `cargo +nightly miri test --test regressions_shared`); those
//! naming a probe (`sp01`-`sp04`) are attacks the design withstood.
//!
//! The heap is process-wide and shared by the tests of this binary: they
//! run one at a time (`serialized`), and assert only on their own objects.
#![allow(dead_code)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, mpsc};
use std::time::{Duration, Instant};

use ouro::sync::Gc;
use ouro::{Trace, Visitor};

/// `sync::gc`, except that `collect()` also waits for the drops of the
/// other collections ([`gc::wait_for_drops`](ouro::sync::gc::wait_for_drops)):
/// every test of this process shares the heap, and another test's
/// collection, or an automatic one (whose garbage the background thread
/// drops), may have claimed this test's garbage.
mod gc {
    pub(super) use ouro::sync::gc::*;

    pub(super) fn collect() -> usize {
        let n = ouro::sync::gc::collect();
        ouro::sync::gc::wait_for_drops();
        n
    }
}

fn relock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Takes the process-wide heap for one test (some set global flags, such
/// as `SAVEALL`).
fn serialized() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    relock(&LOCK)
}

/// A node with a lock-protected edge list and a drop counter of its own.
struct Node {
    id: usize,
    edges: Mutex<Vec<Gc<Node>>>,
    drops: Arc<AtomicUsize>,
}

impl Trace for Node {
    fn structural() -> ouro::Structural<Self> {
        // SAFETY: `trace` only calls `trace` on fields.
        unsafe { ouro::Structural::promise() }
    }
    fn has_finalizer() -> bool {
        false
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
    relock(&a.edges).push(b.clone());
}

// ---------------------------------------------------------------------------
// Finding 1: `gc::get_objects` hands out a shared handle to an object whose
// `&mut T` from `Gc::get_mut` is alive.
// ---------------------------------------------------------------------------

struct Exclusive {
    x: u64,
    _edge: Mutex<Option<Gc<Exclusive>>>,
}

impl Trace for Exclusive {
    fn structural() -> ouro::Structural<Self> {
        // SAFETY: `trace` only calls `trace` on fields.
        unsafe { ouro::Structural::promise() }
    }
    fn trace(&self, v: &mut Visitor<'_>) {
        self._edge.trace(v);
    }
}

/// `get_objects` takes a strong reference to every listed object without
/// looking at `EXCLUSIVE`; `ObjectInfo::downcast` turns it into a `Gc<T>`,
/// so safe code holds `&T` and `&mut T` to the same value (UB under Miri;
/// natively: the alias exists). It also breaks I3: the count is now 2, so
/// the next collection's guess clears `EXCLUSIVE` and traces the value
/// while the `&mut T` is alive.
///
/// Review finding 1 (`sr01`).
#[test]
fn get_objects_leaves_out_an_object_borrowed_by_get_mut() {
    let _serial = serialized();
    let mut h = Gc::new(Exclusive {
        x: 1,
        _edge: Mutex::new(None),
    });
    let addr = Gc::as_ptr(&h) as usize;
    let r: &mut Exclusive = Gc::get_mut(&mut h).unwrap();
    let alias = gc::get_objects(None)
        .into_iter()
        .filter(|o| o.address() == addr)
        .find_map(|o| o.downcast::<Exclusive>());
    if let Some(a) = &alias {
        r.x = 2;
        // A read through the shared alias while `r` is alive.
        assert_eq!(a.x, 2);
        r.x = 3;
    }
    assert!(
        alias.is_none(),
        "get_objects returned a handle to a value mutably borrowed through get_mut"
    );
}

// ---------------------------------------------------------------------------
// Finding 2: a `Drop` of garbage that moves a handle to another garbage
// object out of the cycle leaves a strong handle to freed memory.
// ---------------------------------------------------------------------------

/// Larger than the pool's classes would matter natively; under Miri every
/// object comes from the system allocator, so a free is visible.
struct Stasher {
    other: Mutex<Option<Gc<Stasher>>>,
    stash: Arc<Mutex<Vec<Gc<Stasher>>>>,
    id: usize,
}

impl Trace for Stasher {
    fn structural() -> ouro::Structural<Self> {
        // SAFETY: `trace` only calls `trace` on fields.
        unsafe { ouro::Structural::promise() }
    }
    fn trace(&self, v: &mut Visitor<'_>) {
        self.other.trace(v);
    }
}

impl Drop for Stasher {
    fn drop(&mut self) {
        if let Some(o) = self
            .other
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            relock(&self.stash).push(o);
        }
    }
}

/// Step 6 drops every value of G', then releases each strong side's weak
/// count unconditionally (`collect.rs`, the loop after the drops), even if a
/// `Drop` moved a strong handle to a G' object out of the garbage (here into
/// an `Arc<Mutex<Vec<_>>>`). That handle then points to freed memory: its
/// deref (documented to panic) reads a freed header, and its drop writes
/// one. The thread-local heap frees only when `strong == 0 && weak == 0`.
///
/// Review finding 2 (`sr02`).
#[test]
fn handle_escaping_from_a_garbage_drop_keeps_its_object() {
    let _serial = serialized();
    let stash = Arc::new(Mutex::new(Vec::new()));
    let a = Gc::new(Stasher {
        other: Mutex::new(None),
        stash: stash.clone(),
        id: 1,
    });
    let b = Gc::new(Stasher {
        other: Mutex::new(Some(a.clone())),
        stash: stash.clone(),
        id: 2,
    });
    *relock(&a.other) = Some(b.clone());
    drop((a, b));
    for _ in 0..4 {
        if !relock(&stash).is_empty() {
            break;
        }
        gc::collect();
    }
    let escaped = core::mem::take(&mut *relock(&stash));
    assert_eq!(escaped.len(), 2, "the cycle was not collected");
    for h in &escaped {
        // Documented: a dead value panics. Reading the header is already a
        // use after free when the memory was released.
        let r = catch_unwind(AssertUnwindSafe(|| h.id));
        assert!(r.is_err());
    }
    // Each escaped handle owns the dead header now: dropping it releases
    // the memory (before the fix this wrote to freed memory).
    drop(escaped);
}

// ---------------------------------------------------------------------------
// Finding 3: the verification keeps a guard to a lock whose memory a user
// lock (not kept) protects; another thread frees it before the release.
// ---------------------------------------------------------------------------

type Inner = Mutex<Option<Gc<Holder>>>;

struct Holder {
    /// Locked by `trace` itself with `lock()` (not through ouro's impl).
    outer: Mutex<Option<Box<Inner>>>,
    /// Armed flag and the two rendezvous with the other thread.
    sync: Arc<(AtomicBool, Barrier, Barrier)>,
}

impl Trace for Holder {
    fn trace(&self, v: &mut Visitor<'_>) {
        let g = relock(&self.outer);
        let mut in_verify = false;
        if let Some(b) = &*g {
            // `Box::trace` opens a frame for the pointee; the inner
            // `Mutex::trace` hands its guard to the visitor, which keeps it
            // (the pointee is in an owned frame) in the verification.
            b.trace(v);
            in_verify = b.try_lock().is_err();
        }
        drop(g);
        let (armed, reached, done) = &*self.sync;
        if in_verify && armed.swap(false, Ordering::SeqCst) {
            // The outer lock is free again; the collector still holds the
            // inner guard. Let the other thread free the box.
            reached.wait();
            done.wait();
        }
    }
}

/// `Visitor::keep_guard` keeps any guard whose lock lies in an owned frame
/// (`visitor.rs`, `in_owned_frames`), but a frame is only frozen if every
/// lock around it is held too. Here `trace` locks `outer` itself and
/// releases it on return, so after the trace another thread (with a handle
/// from `Weak::upgrade`) could lock `outer` and drop the `Box` holding the
/// inner mutex, and `release_guards` would unlock freed memory (UAF under
/// Miri, before the fix).
///
/// Fixed by `Trace::structural`: `Holder`'s hand-written `trace` makes no
/// promise, so the verification never runs on it (no guard of it is ever
/// kept); its cycle is leaked instead, the safe direction. The armed
/// rendezvous would only fire in a verification, so if it ever did, the
/// other thread frees the box exactly as in the original attack.
///
/// Review finding 3 (`sr03`).
#[test]
fn guard_inside_a_box_locked_by_user_trace_is_never_kept() {
    let _serial = serialized();
    let sync = Arc::new((AtomicBool::new(true), Barrier::new(2), Barrier::new(2)));
    let h = Gc::new(Holder {
        outer: Mutex::new(Some(Box::new(Mutex::new(None)))),
        sync: sync.clone(),
    });
    if let Some(b) = &*relock(&h.outer) {
        *relock(b) = Some(h.clone());
    }
    let w = Gc::downgrade(&h);
    drop(h);
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let t = {
        let w = w.clone();
        let sync = sync.clone();
        std::thread::spawn(move || {
            let (armed, reached, done) = &*sync;
            // Wait for the rendezvous, but give up when the collections are
            // over without it (the fixed behaviour).
            loop {
                if done_rx.try_recv().is_ok() {
                    return;
                }
                if !armed.load(Ordering::SeqCst) {
                    reached.wait();
                    let s = w.upgrade().expect("not claimed yet");
                    *relock(&s.outer) = None; // frees the Box and the inner mutex
                    done.wait();
                    return;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    gc::collect();
    gc::collect();
    // The trace never ran in a verification: nothing was armed off.
    assert!(
        sync.0.load(Ordering::SeqCst),
        "a non-structural trace was verified"
    );
    done_tx.send(()).unwrap();
    t.join().unwrap();
    // Not collected (leaked, safely): break the cycle by hand.
    let s = w
        .upgrade()
        .expect("a non-structural cycle must not be collected");
    if let Some(b) = relock(&s.outer).take() {
        relock(&b).take();
    }
    drop(s);
    assert!(w.upgrade().is_none());
}

// ---------------------------------------------------------------------------
// Finding 4: a panicking `Drop` leaves `DROP_DEPTH` raised for good; the
// trashcan of that thread is never emptied again.
// ---------------------------------------------------------------------------

struct Bomb(Mutex<Option<Gc<Bomb>>>);

impl Trace for Bomb {
    fn structural() -> ouro::Structural<Self> {
        // SAFETY: `trace` only calls `trace` on fields.
        unsafe { ouro::Structural::promise() }
    }
    fn trace(&self, v: &mut Visitor<'_>) {
        self.0.trace(v);
    }
}

impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("review: Bomb dropped");
    }
}

/// `heap::drop_unlinked` sets `DROP_DEPTH` to `depth + 1`, calls the drop,
/// and restores it only on return. After one panicking `Drop` the depth
/// stays 1 on that thread: every later chain deeper than the trashcan limit
/// leaves its tail in `TRASH`, never dropped nor freed (only depth 0 empties
/// the trash).
///
/// Review finding 4 (`sr04`).
#[test]
fn trashcan_works_after_a_panicking_drop() {
    let _serial = serialized();
    std::thread::spawn(|| {
        let b = Gc::new(Bomb(Mutex::new(None)));
        assert!(catch_unwind(AssertUnwindSafe(move || drop(b))).is_err());
        let drops = Arc::new(AtomicUsize::new(0));
        const N: usize = 80;
        let head = node(0, &drops);
        let mut cur = head.clone();
        for i in 1..N {
            let n = node(i, &drops);
            link(&cur, &n);
            cur = n;
        }
        drop(cur);
        drop(head);
        assert_eq!(drops.load(Ordering::SeqCst), N, "the chain's tail leaked");
    })
    .join()
    .unwrap();
}

// ---------------------------------------------------------------------------
// Finding 5: `get_mut` waits for the collection to give its object back,
// while the collection runs user `Drop`s of garbage first.
// ---------------------------------------------------------------------------

struct Waiter {
    me: Mutex<Option<Gc<Waiter>>>,
    user_lock: Arc<Mutex<()>>,
    armed: AtomicBool,
    go: Arc<Barrier>,
    deadlocked: Arc<AtomicBool>,
}

impl Trace for Waiter {
    fn structural() -> ouro::Structural<Self> {
        // SAFETY: `trace` only calls `trace` on fields.
        unsafe { ouro::Structural::promise() }
    }
    fn trace(&self, v: &mut Visitor<'_>) {
        self.me.trace(v);
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        if !self.armed.swap(false, Ordering::SeqCst) {
            return;
        }
        self.go.wait();
        // An ordinary `Drop` that takes a user lock (bounded here so that
        // the test ends).
        let start = Instant::now();
        loop {
            if self.user_lock.try_lock().is_ok() {
                return;
            }
            if start.elapsed() > Duration::from_secs(3) {
                self.deadlocked.store(true, Ordering::SeqCst);
                return;
            }
            std::thread::yield_now();
        }
    }
}

/// Thread T holds a user lock and calls `Gc::get_mut` on its own unique
/// handle to a survivor that the running collection took (`IN_COLLECTOR`):
/// `raw::begin_exclusive` spins until step 7 gives it back. The collecting
/// thread meanwhile runs step 6, a garbage `Drop` that takes the same user
/// lock: a deadlock (here bounded to 3 s). Survivors need not be held while
/// garbage is finalized and dropped.
///
/// Review finding 5 (`sr05`).
#[test]
fn get_mut_does_not_wait_for_a_collection_running_user_drops() {
    let _serial = serialized();
    let user_lock = Arc::new(Mutex::new(()));
    let go = Arc::new(Barrier::new(2));
    let deadlocked = Arc::new(AtomicBool::new(false));
    let drops = Arc::new(AtomicUsize::new(0));
    let g = Gc::new(Waiter {
        me: Mutex::new(None),
        user_lock: user_lock.clone(),
        armed: AtomicBool::new(true),
        go: go.clone(),
        deadlocked: deadlocked.clone(),
    });
    *relock(&g.me) = Some(g.clone());
    drop(g);
    let mut x = node(7, &drops); // a survivor: T's only handle
    let (tx, rx) = mpsc::channel();
    let t = {
        let user_lock = user_lock.clone();
        let go = go.clone();
        std::thread::spawn(move || {
            let _held = relock(&user_lock);
            tx.send(()).unwrap();
            go.wait();
            let got = Gc::get_mut(&mut x).is_some();
            drop(_held);
            (got, x)
        })
    };
    rx.recv().unwrap();
    gc::collect();
    let (got, x) = t.join().unwrap();
    assert!(got);
    drop(x);
    assert!(
        !deadlocked.load(Ordering::SeqCst),
        "the collector's Drop waited on a lock held by a thread waiting in get_mut"
    );
}

// ---------------------------------------------------------------------------
// Finding 6: a panicking zombie `Drop` in step 7 leaks the other zombies.
// ---------------------------------------------------------------------------

struct Fuse {
    me: Mutex<Option<Gc<Fuse>>>,
    /// Stops the collection in its guess until the test has made zombies.
    sync: Arc<(Mutex<Option<std::thread::ThreadId>>, Barrier, Barrier)>,
}

impl Trace for Fuse {
    fn structural() -> ouro::Structural<Self> {
        // SAFETY: a test hook (waits, panics, peeks at its own lock) that otherwise only calls `trace` on fields; promised so that the verification runs on it.
        unsafe { ouro::Structural::promise() }
    }
    fn trace(&self, v: &mut Visitor<'_>) {
        self.me.trace(v);
        let (who, stop, go) = &*self.sync;
        let mut who = relock(who);
        if *who == Some(std::thread::current().id()) {
            *who = None;
            drop(who);
            stop.wait();
            go.wait();
        }
    }
}

struct PanicsOnDrop(Mutex<Option<Gc<PanicsOnDrop>>>);

impl Trace for PanicsOnDrop {
    fn structural() -> ouro::Structural<Self> {
        // SAFETY: `trace` only calls `trace` on fields.
        unsafe { ouro::Structural::promise() }
    }
    fn trace(&self, v: &mut Visitor<'_>) {
        self.0.trace(v);
    }
}

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("review: zombie Drop panics");
    }
}

/// Objects whose last handle is dropped while the collection owns them
/// become zombies, dropped by `give_back` (`collect.rs`, the final
/// `for z in zombies` loop) without `catch`: the first panicking `Drop`
/// unwinds out of `collect()` and every later zombie is leaked (unlinked,
/// count 0, never dropped or freed). The same loop in `with_all_owned`.
///
/// Review finding 6 (`sr06`).
#[test]
fn panicking_zombie_drop_does_not_leak_the_other_zombies() {
    let _serial = serialized();
    let sync = Arc::new((
        Mutex::new(Some(std::thread::current().id())),
        Barrier::new(2),
        Barrier::new(2),
    ));
    let hook = Gc::new(Fuse {
        me: Mutex::new(None),
        sync: sync.clone(),
    });
    let drops = Arc::new(AtomicUsize::new(0));
    let mut before: Vec<Gc<Node>> = (0..5).map(|i| node(i, &drops)).collect();
    let bomb = Gc::new(PanicsOnDrop(Mutex::new(None)));
    let after: Vec<Gc<Node>> = (5..10).map(|i| node(i, &drops)).collect();
    before.extend(after);
    let t = {
        let sync = sync.clone();
        std::thread::spawn(move || {
            let (_, stop, go) = &*sync;
            stop.wait();
            // The collection owns all of these now: each becomes a zombie.
            let r = catch_unwind(AssertUnwindSafe(move || {
                drop(before);
                drop(bomb);
            }));
            go.wait();
            r.is_err()
        })
    };
    let r = catch_unwind(gc::collect);
    let bomb_panicked_here = t.join().unwrap();
    drop(hook);
    assert!(
        r.is_err() || bomb_panicked_here,
        "the bomb was dropped somewhere"
    );
    gc::collect();
    assert_eq!(drops.load(Ordering::SeqCst), 10, "zombies leaked");
}

// ---------------------------------------------------------------------------
// Finding 7: a panic inside ouro's own `Mutex::trace` releases the outer
// guard while the guards taken inside it stay kept.
// ---------------------------------------------------------------------------

struct Rendezvous {
    armed: AtomicBool,
    /// The panic is raised once (later collections see a sane trace), and
    /// only in a collection run by the test's own thread.
    fired: AtomicBool,
    owner: std::thread::ThreadId,
    in_verify: AtomicBool,
    reached: Barrier,
    done: Barrier,
}

enum Item {
    Slot(Mutex<Option<Gc<Shell>>>, Arc<Rendezvous>),
    Panicker(Arc<Rendezvous>),
}

impl Trace for Item {
    fn structural() -> ouro::Structural<Self> {
        // SAFETY: a test hook (waits, panics, peeks at its own lock) that otherwise only calls `trace` on fields; promised so that the verification runs on it.
        unsafe { ouro::Structural::promise() }
    }
    fn trace(&self, v: &mut Visitor<'_>) {
        match self {
            Item::Slot(m, r) => {
                m.trace(v);
                if m.try_lock().is_err() {
                    // The visitor kept the guard: this is the verification.
                    r.in_verify.store(true, Ordering::SeqCst);
                }
            }
            Item::Panicker(r) => {
                if r.in_verify.swap(false, Ordering::SeqCst)
                    && std::thread::current().id() == r.owner
                    && !r.fired.swap(true, Ordering::SeqCst)
                {
                    panic!("review: trace panics in the verification");
                }
            }
        }
    }
}

struct Shell {
    outer: Mutex<Vec<Item>>,
    r: Arc<Rendezvous>,
}

struct WaitOnUnwind<'a>(&'a Rendezvous);

impl Drop for WaitOnUnwind<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() && self.0.armed.swap(false, Ordering::SeqCst) {
            self.0.reached.wait();
            self.0.done.wait();
        }
    }
}

impl Trace for Shell {
    fn structural() -> ouro::Structural<Self> {
        // SAFETY: a test hook (waits, panics, peeks at its own lock) that otherwise only calls `trace` on fields; promised so that the verification runs on it.
        unsafe { ouro::Structural::promise() }
    }
    fn trace(&self, v: &mut Visitor<'_>) {
        let _w = WaitOnUnwind(&self.r);
        self.outer.trace(v);
    }
}

/// `impl Trace for Mutex<T>` (`impls.rs`) calls `guard.trace(v)` and only
/// then `v.keep_mutex_guard(guard)`: when a `trace` inside panics, the outer
/// guard is dropped by the unwind while the inner guards are already kept,
/// and they are released only after `catch` in `collect::run`. In between
/// (here: a `Drop` of the enclosing `trace` frame; in general any other
/// thread) the outer mutex is free: the `Vec` holding the inner mutex is
/// cleared and its buffer freed, and `release_guards` unlocks freed memory.
///
/// The heap is shared with the tests running beside this one: a collection
/// of theirs may take the cycle (or run its verification) before this
/// thread's does, and then no panic comes. The test then releases its
/// helper thread itself and tries again with a new cycle (before, it hung;
/// a temporary print showed up to 10 such misses in one run of the `sync`
/// tests).
///
/// Review finding 7 (`sr07`).
#[test]
fn panic_inside_a_mutex_trace_keeps_the_outer_guard_until_the_inner_ones_go() {
    let _serial = serialized();
    for _ in 0..100 {
        if mutex_trace_panic_attempt() {
            return;
        }
    }
    panic!("no collection of this thread verified the cycle in 100 attempts");
}

/// One attempt of finding 7's scenario: whether this thread's collection ran the
/// verification (and panicked in it).
fn mutex_trace_panic_attempt() -> bool {
    let r = Arc::new(Rendezvous {
        armed: AtomicBool::new(true),
        fired: AtomicBool::new(false),
        owner: std::thread::current().id(),
        in_verify: AtomicBool::new(false),
        reached: Barrier::new(2),
        done: Barrier::new(2),
    });
    let s = Gc::new(Shell {
        outer: Mutex::new(Vec::new()),
        r: r.clone(),
    });
    relock(&s.outer).push(Item::Slot(Mutex::new(Some(s.clone())), r.clone()));
    relock(&s.outer).push(Item::Panicker(r.clone()));
    let w = Gc::downgrade(&s);
    drop(s);
    let t = {
        let r = r.clone();
        std::thread::spawn(move || {
            r.reached.wait();
            let upgraded = w.upgrade();
            // Free the buffer holding a kept lock, if the outer lock is free
            // (with the fix the collector still holds it: nothing to do).
            if let Some(s) = &upgraded {
                let g = match s.outer.try_lock() {
                    Ok(g) => Some(g),
                    Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
                    Err(std::sync::TryLockError::WouldBlock) => None,
                };
                if let Some(mut g) = g {
                    *g = Vec::new();
                }
            }
            r.done.wait();
            let claimed = upgraded.is_none();
            drop(upgraded);
            (w, claimed)
        })
    };
    let res = catch_unwind(gc::collect);
    // No panic in this thread's collection, and the hook never waited:
    // another collection got the cycle first. Release the helper.
    let missed = res.is_ok() && r.armed.swap(false, Ordering::SeqCst);
    if missed {
        r.reached.wait();
        r.done.wait();
    }
    let (w, claimed) = t.join().unwrap();
    drop(w);
    gc::collect();
    if missed {
        return false;
    }
    assert!(res.is_err());
    assert!(!claimed, "claimed while its verification was unwinding");
    true
}

// ---------------------------------------------------------------------------
// Attacks the design withstood (regression guards).
// ---------------------------------------------------------------------------

/// `new_cyclic` whose closure panics after cloning the weak handle out: the
/// escaped weak never upgrades, and dropping it frees the memory once.
///
/// Review probe `sp01`.
#[test]
fn new_cyclic_panicking_with_an_escaped_weak_frees_once() {
    let _serial = serialized();
    struct Me {
        me: ouro::sync::Weak<Me>,
    }
    impl Trace for Me {
        fn structural() -> ouro::Structural<Self> {
            // SAFETY: `trace` only calls `trace` on fields.
            unsafe { ouro::Structural::promise() }
        }
        fn trace(&self, _: &mut Visitor<'_>) {}
    }
    let escaped: Arc<Mutex<Option<ouro::sync::Weak<Me>>>> = Arc::new(Mutex::new(None));
    let e2 = escaped.clone();
    let r = catch_unwind(AssertUnwindSafe(move || {
        Gc::<Me>::new_cyclic(|w| {
            *relock(&e2) = Some(w.clone());
            panic!("review: new_cyclic closure panics")
        })
    }));
    assert!(r.is_err());
    let w = relock(&escaped).take().unwrap();
    assert!(w.upgrade().is_none());
    assert_eq!(w.strong_count(), 0);
    let w2 = w.clone();
    drop(w);
    assert!(w2.upgrade().is_none());
}

/// `Weak::upgrade` racing the collection of the cycle it points into: an
/// upgrade either fails, or keeps a value that is not dropped and can be
/// read; the cycle is freed once the upgraded handles are gone.
///
/// Review probe `sp02`.
#[test]
fn upgrade_racing_a_collection_keeps_a_readable_value() {
    let _serial = serialized();
    let rounds = if cfg!(miri) { 3 } else { 200 };
    for round in 0..rounds {
        let drops = Arc::new(AtomicUsize::new(0));
        let a = node(round, &drops);
        let b = node(round + 1, &drops);
        link(&a, &b);
        link(&b, &a);
        let wa = Gc::downgrade(&a);
        drop((a, b));
        let start = Arc::new(Barrier::new(2));
        let t = {
            let start = start.clone();
            let drops = drops.clone();
            std::thread::spawn(move || {
                start.wait();
                let mut kept = None;
                for _ in 0..50 {
                    if let Some(a) = wa.upgrade() {
                        assert_eq!(a.id, round);
                        assert_eq!(drops.load(Ordering::SeqCst), 0);
                        let b = relock(&a.edges)[0].clone();
                        assert_eq!(b.id, round + 1);
                        kept = Some(a);
                    }
                    std::thread::yield_now();
                }
                drop(kept);
                wa
            })
        };
        start.wait();
        gc::collect();
        let wa = t.join().unwrap();
        for _ in 0..4 {
            if drops.load(Ordering::SeqCst) == 2 {
                break;
            }
            gc::collect();
        }
        assert_eq!(drops.load(Ordering::SeqCst), 2);
        assert!(wa.upgrade().is_none());
    }
}

/// A `trace` that panics in the guess: the collection gives everything
/// back, the panic reaches the caller of `collect()`, and once the trace
/// behaves the cycle is collected (nothing leaked, nothing freed early).
///
/// Review probe `sp03`.
#[test]
fn panicking_trace_gives_everything_back_then_its_cycle_is_collected() {
    let _serial = serialized();
    struct P {
        me: Mutex<Option<Gc<P>>>,
        fuse: AtomicBool,
        drops: Arc<AtomicUsize>,
    }
    impl Trace for P {
        fn structural() -> ouro::Structural<Self> {
            // SAFETY: a test hook (waits, panics, peeks at its own lock) that otherwise only calls `trace` on fields; promised so that the verification runs on it.
            unsafe { ouro::Structural::promise() }
        }
        fn trace(&self, v: &mut Visitor<'_>) {
            self.me.trace(v);
            if self.fuse.swap(false, Ordering::SeqCst) {
                panic!("review: trace panics once");
            }
        }
    }
    impl Drop for P {
        fn drop(&mut self) {
            self.drops.fetch_add(1, Ordering::SeqCst);
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let p = Gc::new(P {
        me: Mutex::new(None),
        fuse: AtomicBool::new(true),
        drops: drops.clone(),
    });
    *relock(&p.me) = Some(p.clone());
    let held = p.clone();
    drop(p);
    // Whoever collects first meets the panic; ours may or may not.
    let _ = catch_unwind(gc::collect);
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    assert!(relock(&held.me).is_some());
    drop(held);
    for _ in 0..4 {
        let _ = catch_unwind(gc::collect);
        if drops.load(Ordering::SeqCst) == 1 {
            break;
        }
    }
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

/// The single-threaded heap after the `Mutex`/`RwLock` impls started handing
/// their guards to the visitor: the guard is dropped at once there (no
/// lock stays held), and a cycle through a `Mutex` is still collected
/// (through a structural impl; `L`'s, which locks the fields itself to
/// check them, is not one, and its cycle is kept).
///
/// Review probe `sp04`.
#[test]
fn thread_local_heap_drops_mutex_guards_at_once() {
    let _serial = serialized();
    struct L {
        me: Mutex<Option<ouro::Gc<L>>>,
        rw: std::sync::RwLock<Option<ouro::Gc<L>>>,
        traced: Arc<AtomicUsize>,
    }
    impl Trace for L {
        fn trace(&self, v: &mut Visitor<'_>) {
            self.me.trace(v);
            self.rw.trace(v);
            // Not left locked by the visitor.
            assert!(self.me.try_lock().is_ok());
            assert!(self.rw.try_write().is_ok());
            self.traced.fetch_add(1, Ordering::SeqCst);
        }
    }
    let traced = Arc::new(AtomicUsize::new(0));
    let a = ouro::Gc::new(L {
        me: Mutex::new(None),
        rw: std::sync::RwLock::new(None),
        traced: traced.clone(),
    });
    *relock(&a.me) = Some(a.clone());
    *a.rw.write().unwrap() = Some(a.clone());
    let w = ouro::Gc::downgrade(&a);
    drop(a);
    assert_eq!(ouro::gc::collect(), 0);
    assert!(traced.load(Ordering::SeqCst) > 0);
    let a = w.upgrade().expect("kept: not structural");
    relock(&a.me).take();
    a.rw.write().unwrap().take();
    drop(a);
    assert!(w.upgrade().is_none());

    struct S {
        me: Mutex<Option<ouro::Gc<S>>>,
        rw: std::sync::RwLock<Option<ouro::Gc<S>>>,
        drops: Arc<AtomicUsize>,
    }
    impl Trace for S {
        fn structural() -> ouro::Structural<Self> {
            // SAFETY: `trace` only calls `trace` on fields, whose types' impls
            // are ouro's own (structural).
            unsafe { ouro::Structural::promise() }
        }
        fn trace(&self, v: &mut Visitor<'_>) {
            self.me.trace(v);
            self.rw.trace(v);
        }
    }
    impl Drop for S {
        fn drop(&mut self) {
            self.drops.fetch_add(1, Ordering::SeqCst);
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let a = ouro::Gc::new(S {
        me: Mutex::new(None),
        rw: std::sync::RwLock::new(None),
        drops: drops.clone(),
    });
    *relock(&a.me) = Some(a.clone());
    *a.rw.write().unwrap() = Some(a.clone());
    drop(a);
    assert_eq!(ouro::gc::collect(), 1);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

// ---------------------------------------------------------------------------
// Finding 8: nested kept guards are released outer first.
// ---------------------------------------------------------------------------

type NestInner = Mutex<Option<Gc<Nest>>>;

struct Nest {
    outer: Mutex<Option<Box<NestInner>>>,
}

impl Trace for Nest {
    fn structural() -> ouro::Structural<Self> {
        // SAFETY: `trace` only calls `trace` on fields.
        unsafe { ouro::Structural::promise() }
    }
    fn trace(&self, v: &mut Visitor<'_>) {
        self.outer.trace(v);
    }
}

struct VerifyHook {
    me: Mutex<Option<Gc<VerifyHook>>>,
    seen: Arc<AtomicBool>,
    upgraded: Arc<Barrier>,
    /// The test's thread: only its own collection waits at the barrier (a
    /// concurrent test's collection that traced this hook waited there
    /// while keeping the guard of `me`, which this test's thread was about
    /// to lock: a hang).
    owner: std::thread::ThreadId,
}

impl Trace for VerifyHook {
    fn structural() -> ouro::Structural<Self> {
        // SAFETY: a test hook (waits, panics, peeks at its own lock) that otherwise only calls `trace` on fields; promised so that the verification runs on it.
        unsafe { ouro::Structural::promise() }
    }
    fn trace(&self, v: &mut Visitor<'_>) {
        self.me.trace(v);
        if std::thread::current().id() != self.owner {
            return;
        }
        if self.me.try_lock().is_err() {
            // Our guard is kept: the verification, after `Nest` (older).
            // Wait until the other thread holds a handle (before the claim).
            if !self.seen.swap(true, Ordering::SeqCst) {
                self.upgraded.wait();
            }
        }
    }
}

/// `impl Trace for Mutex<T>` keeps its guard after tracing the contents, so
/// `Tables::guards` holds `[inner, outer]` and `release_guards` (which pops,
/// "innermost first" by its comment) unlocks the outer mutex first. Between
/// the two drops another thread can take the outer lock and free the `Box`
/// holding the inner mutex; the inner guard is then dropped on freed memory.
/// Only ouro's own impls are involved. The window is a few instructions:
/// this test is probabilistic (run it under Miri with several
/// `-Zmiri-seed`s, or natively in a loop and watch for heap corruption).
///
/// Review finding 8 (`sr08`).
#[test]
fn nested_kept_guards_are_released_inner_first() {
    let _serial = serialized();
    let rounds = if cfg!(miri) { 30 } else { 300 };
    let hits = Arc::new(AtomicUsize::new(0));
    for _ in 0..rounds {
        let n = Gc::new(Nest {
            outer: Mutex::new(Some(Box::new(Mutex::new(None)))),
        });
        if let Some(b) = &*relock(&n.outer) {
            *relock(b) = Some(n.clone());
        }
        let seen = Arc::new(AtomicBool::new(false));
        let upgraded = Arc::new(Barrier::new(2));
        let h = Gc::new(VerifyHook {
            me: Mutex::new(None),
            seen: seen.clone(),
            upgraded: upgraded.clone(),
            owner: std::thread::current().id(),
        });
        *relock(&h.me) = Some(h.clone());
        drop(h);
        let wn = Gc::downgrade(&n);
        drop(n);
        let stop = Arc::new(AtomicBool::new(false));
        let t = {
            let stop = stop.clone();
            let hits = hits.clone();
            std::thread::spawn(move || {
                while !seen.load(Ordering::SeqCst) {
                    if stop.load(Ordering::SeqCst) {
                        return wn;
                    }
                    std::thread::yield_now();
                }
                let s = wn.upgrade();
                upgraded.wait();
                if let Some(s) = s {
                    hits.fetch_add(1, Ordering::SeqCst);
                    loop {
                        if let Ok(mut g) = s.outer.try_lock() {
                            *g = None; // frees the inner mutex
                            break;
                        }
                    }
                }
                wn
            })
        };
        gc::collect();
        stop.store(true, Ordering::SeqCst);
        let wn = t.join().unwrap();
        drop(wn);
    }
    gc::collect();
    // How often the other thread raced the release at all.
    eprintln!(
        "sr08: {} of {rounds} rounds raced the release",
        hits.load(Ordering::SeqCst)
    );
}

// ---------------------------------------------------------------------------
// Finding 9: under `SAVEALL`, a zombie in G' is saved and then dropped.
// ---------------------------------------------------------------------------

struct Ycell {
    me: Mutex<Option<Gc<Ycell>>>,
    z: Mutex<Option<Gc<Node>>>,
}

impl Trace for Ycell {
    fn structural() -> ouro::Structural<Self> {
        // SAFETY: `trace` only calls `trace` on fields.
        unsafe { ouro::Structural::promise() }
    }
    fn trace(&self, v: &mut Visitor<'_>) {
        self.me.trace(v);
        self.z.trace(v);
    }
}

struct GuessHook {
    me: Mutex<Option<Gc<GuessHook>>>,
    /// Shared with the test, which disarms it itself if the hook never
    /// fired (so that the other thread is never left at the barrier).
    armed: Arc<AtomicBool>,
    sync: Arc<(Barrier, Barrier)>,
    /// The test's thread: only its own collection stops at the barriers.
    owner: std::thread::ThreadId,
}

impl Trace for GuessHook {
    fn structural() -> ouro::Structural<Self> {
        // SAFETY: a test hook (waits at barriers, peeks at its own lock) that otherwise only calls `trace` on fields; promised so that the verification runs on it.
        unsafe { ouro::Structural::promise() }
    }
    fn trace(&self, v: &mut Visitor<'_>) {
        self.me.trace(v);
        // In a trace whose guards were not kept (the first trace of a
        // chunk after a clean one), after the older objects' counts were
        // read and their traces ran.
        if std::thread::current().id() == self.owner
            && self.me.try_lock().is_ok()
            && self.armed.swap(false, Ordering::SeqCst)
        {
            self.sync.0.wait();
            self.sync.1.wait();
        }
    }
}

/// Z's only handle sits in Y (garbage); after the collection read the
/// counts, another thread upgrades a weak handle to Y, takes Z's handle
/// out and drops it: Z's count is 0 while the collection owns it, so Z is
/// a `ZOMBIE`, and the verification accepts it in G'. Under `SAVEALL` it
/// was once dropped by `give_back` while `garbage()` still held it; then
/// kept in `garbage()` with its count revived. Now it is what it is, an
/// object freed by its count: dropped once, never saved (as CPython never
/// keeps an object its count freed). Y and the hook are saved.
///
/// Runs on a heap of its own (the `SAVEALL` flag is per heap). The hook
/// fires in the first, unheld trace of a chunk, which follows a chunk
/// without candidates: the warm-up collection leaves one.
///
/// Review finding 9 (`sr09`).
#[test]
fn saveall_drops_a_zombie_instead_of_keeping_it() {
    let heap = ouro::sync::Heap::new();
    heap.disable();
    // Warm-up: one acyclic tracked object, so that the last chunk of the
    // last collection was clean.
    let warm = Gc::new_in(
        Ycell {
            me: Mutex::new(None),
            z: Mutex::new(None),
        },
        &heap,
    );
    heap.collect();
    let drops = Arc::new(AtomicUsize::new(0));
    let z = Gc::new_in(
        Node {
            id: 99,
            edges: Mutex::new(Vec::new()),
            drops: drops.clone(),
        },
        &heap,
    );
    let y = Gc::new_in(
        Ycell {
            me: Mutex::new(None),
            z: Mutex::new(Some(z)),
        },
        &heap,
    );
    *relock(&y.me) = Some(y.clone());
    let sync = Arc::new((Barrier::new(2), Barrier::new(2)));
    let armed = Arc::new(AtomicBool::new(true));
    let h = Gc::new_in(
        GuessHook {
            me: Mutex::new(None),
            armed: armed.clone(),
            sync: sync.clone(),
            owner: std::thread::current().id(),
        },
        &heap,
    );
    *relock(&h.me) = Some(h.clone());
    drop(h);
    let wy = Gc::downgrade(&y);
    drop(y);
    heap.set_debug(ouro::sync::gc::DebugFlags::SAVEALL);
    let racer = {
        let sync = sync.clone();
        std::thread::spawn(move || {
            sync.0.wait();
            let raced = if let Some(y) = wy.upgrade() {
                let z = relock(&y.z).take();
                drop(z); // count 0 while owned by the collection: a zombie
                drop(y);
                true
            } else {
                false
            };
            sync.1.wait();
            raced
        })
    };
    heap.collect();
    let fired = !armed.swap(false, Ordering::SeqCst);
    if !fired {
        // Never at the barriers: let the racer through, then fail below.
        sync.0.wait();
        sync.1.wait();
    }
    let raced = racer.join().unwrap();
    heap.wait_for_drops();
    let saved = heap.garbage().len();
    let dropped = drops.load(Ordering::SeqCst);
    heap.set_debug(ouro::sync::gc::DebugFlags::empty());
    heap.clear_garbage();
    heap.collect();
    heap.wait_for_drops();
    assert!(fired, "the hook ran in an unheld trace (the race happened)");
    assert!(raced, "Y was still alive when the racer upgraded it");
    assert_eq!(dropped, 1, "Z was freed by its count: dropped once");
    assert_eq!(saved, 2, "Y and the hook are saved, Z is not");
    assert_eq!(drops.load(Ordering::SeqCst), 1, "and never dropped again");
    drop(warm);
}

// ---------------------------------------------------------------------------
// Finding 10: step 3's proof assumes traces have no side effects on other
// objects; a `trace` can dereference a handle to another candidate (the
// sync heap does not forbid it) and move a counted handle into a slot that
// is traced later, so a live object passes verification.
// ---------------------------------------------------------------------------

struct Bv {
    /// Traced through a lock `trace` takes itself (not kept).
    slot: Mutex<Option<Gc<Node>>>,
    to_a: Mutex<Option<Gc<Av>>>,
}

impl Trace for Bv {
    fn has_finalizer() -> bool {
        false
    }
    fn trace(&self, v: &mut Visitor<'_>) {
        relock(&self.slot).trace(v);
        self.to_a.trace(v);
    }
}

struct Dv {
    m: Mutex<Option<Gc<Node>>>,
}

impl Trace for Dv {
    fn structural() -> ouro::Structural<Self> {
        // SAFETY: `trace` only calls `trace` on fields.
        unsafe { ouro::Structural::promise() }
    }
    fn has_finalizer() -> bool {
        false
    }
    fn trace(&self, v: &mut Visitor<'_>) {
        self.m.trace(v);
    }
}

struct Av {
    to_b: Gc<Bv>,
    /// Set after D is allocated (so that D is traced after A); read-locked
    /// by A's trace next to the collector's kept read guard.
    to_d: std::sync::RwLock<Option<Gc<Dv>>>,
    probe: Mutex<Option<Gc<Dv>>>,
    armed: AtomicBool,
    /// The move is attempted once (a fix may make the dereference panic;
    /// later collections must then see a well-behaved trace), and only in a
    /// collection run by the test's own thread.
    moves: AtomicBool,
    owner: std::thread::ThreadId,
    /// Rendezvous with the thread that upgrades C between guess and
    /// verification.
    sync: Arc<(Barrier, Barrier)>,
}

impl Trace for Av {
    fn has_finalizer() -> bool {
        false
    }
    fn trace(&self, v: &mut Visitor<'_>) {
        self.to_b.trace(v);
        self.to_d.trace(v); // a read guard the verification keeps
        self.probe.trace(v);
        if std::thread::current().id() != self.owner {
            return;
        }
        if self.probe.try_lock().is_err() {
            if !self.moves.swap(false, Ordering::SeqCst) {
                return;
            }
            // Verification (our guard is kept). B was traced already (its
            // slot counted C once); D is traced after us. Move C's handle
            // from B's slot to D's: counted twice. No write to our value.
            let h = relock(&self.to_b.slot).take();
            if h.is_some()
                && let Some(d) = &*self.to_d.read().unwrap()
            {
                *relock(&d.m) = h;
            }
        } else if self.armed.swap(false, Ordering::SeqCst) {
            // Guess: let the other thread take its handle to C now (after
            // the counts were read).
            self.sync.0.wait();
            self.sync.1.wait();
        }
    }
}

/// C (a live `Node`, held by thread T through a handle upgraded after the
/// guess) is counted twice by the verification: in B's slot (B's `trace`
/// locks it itself) and, after A's `trace` moved it there, in D's mutex.
/// `strong(C) = 2 = counted(C)`, so C is freed while T holds a handle
/// (UAF under Miri; natively T sees `DEAD` or C's drop counter moves).
/// The documented known limit speaks of a trace that mutates its *own*
/// value; A's trace writes only to B and D, reached by dereferencing
/// handles during the trace (nothing in the sync heap forbids that, unlike
/// the thread-local heap's "objects being scanned cannot be dereferenced").
///
/// Review finding 10 (`sr10`).
#[test]
fn trace_moving_a_handle_between_other_candidates_frees_nothing_live() {
    let _serial = serialized();
    let drops = Arc::new(AtomicUsize::new(0));
    let c = node(1234, &drops);
    let b = Gc::new(Bv {
        slot: Mutex::new(Some(c.clone())),
        to_a: Mutex::new(None),
    });
    let sync = Arc::new((Barrier::new(2), Barrier::new(2)));
    let a = Gc::new(Av {
        to_b: b.clone(),
        to_d: std::sync::RwLock::new(None),
        probe: Mutex::new(None),
        armed: AtomicBool::new(true),
        moves: AtomicBool::new(true),
        owner: std::thread::current().id(),
        sync: sync.clone(),
    });
    // Allocated after A: traced after A (same shard, same generation).
    let d = Gc::new(Dv {
        m: Mutex::new(None),
    });
    *a.to_d.write().unwrap() = Some(d.clone());
    *relock(&b.to_a) = Some(a.clone());
    let wc = Gc::downgrade(&c);
    drop((a, b, d, c));
    let t = std::thread::spawn(move || {
        sync.0.wait();
        let c = wc.upgrade();
        drop(wc);
        sync.1.wait();
        c
    });
    // A fix may refuse the dereference inside `trace` with a panic.
    let _ = catch_unwind(gc::collect);
    let c = t.join().unwrap().expect("upgraded before the verification");
    let dropped = drops.load(Ordering::SeqCst);
    if dropped != 0 {
        // C's value is gone (and its memory freed) while `c` is alive.
        let r = catch_unwind(AssertUnwindSafe(|| c.id));
        core::mem::forget(c);
        panic!("a live object was collected (deref: {:?})", r.is_ok());
    }
    assert_eq!(c.id, 1234);
}

// ---------------------------------------------------------------------------
// Finding 11 (in the fix of finding 2): an escaped handle keeps a header
// whose `IN_COLLECTOR` bit and `prev` index are stale.
// ---------------------------------------------------------------------------

struct EscapeHolder {
    me: Mutex<Option<Gc<EscapeHolder>>>,
    escaped: Mutex<Vec<Gc<Stasher>>>,
}

impl Trace for EscapeHolder {
    fn structural() -> ouro::Structural<Self> {
        // SAFETY: `trace` only calls `trace` on fields.
        unsafe { ouro::Structural::promise() }
    }
    fn has_finalizer() -> bool {
        false
    }
    fn trace(&self, v: &mut Visitor<'_>) {
        self.me.trace(v);
        self.escaped.trace(v);
    }
}

/// Step 6 ends the claim of a destroyed object but leaves `IN_COLLECTOR`
/// set and its `prev` link holding its index in that collection's tables.
/// When a `Drop` moved a handle to it out of the garbage (finding 2's case,
/// now kept alive), a later collection that traces that handle takes the
/// stale bit at its word: `owned_index` returns the old index, which now
/// belongs to an unrelated object X, and the verification counts a phantom
/// edge to X. A live X (one outside handle, count 1) then has
/// `strong == counted` and is freed while its handle is held.
///
/// Review finding 11 (`sr11`).
#[test]
fn escaped_handle_leaves_no_stale_index_for_a_phantom_edge() {
    let _serial = serialized();
    let drops = Arc::new(AtomicUsize::new(0));
    // Live objects that take the low table indices of later collections.
    let xs: Vec<Gc<Node>> = (0..64).map(|i| node(i, &drops)).collect();
    let stash = Arc::new(Mutex::new(Vec::new()));
    let a = Gc::new(Stasher {
        other: Mutex::new(None),
        stash: stash.clone(),
        id: 1,
    });
    let b = Gc::new(Stasher {
        other: Mutex::new(Some(a.clone())),
        stash: stash.clone(),
        id: 2,
    });
    *relock(&a.other) = Some(b.clone());
    drop((a, b));
    for _ in 0..4 {
        if !relock(&stash).is_empty() {
            break;
        }
        gc::collect();
    }
    let escaped = core::mem::take(&mut *relock(&stash));
    assert_eq!(escaped.len(), 2, "the cycle was not collected");
    // Garbage that holds the escaped handles (first in the next tables),
    // then more live objects: the stale indices now name live objects.
    let g = Gc::new(EscapeHolder {
        me: Mutex::new(None),
        escaped: Mutex::new(escaped),
    });
    *relock(&g.me) = Some(g.clone());
    drop(g);
    let ys: Vec<Gc<Node>> = (100..164).map(|i| node(i, &drops)).collect();
    gc::collect();
    gc::collect();
    let dropped = drops.load(Ordering::SeqCst);
    if dropped != 0 {
        // Some of them were freed while held: do not touch them again.
        core::mem::forget((xs, ys));
        panic!("{dropped} live objects were collected (phantom edges)");
    }
    drop((xs, ys));
    // A drop that lands while another test's collection owns the object is
    // finished when that collection gives it back: wait for it.
    gc::collect();
    assert_eq!(drops.load(Ordering::SeqCst), 128);
}

// ---------------------------------------------------------------------------
// Review finding r9-3: under `SAVEALL`, a finalizer that drops the last
// handle to another object of the set (its count reaches 0 while the
// collection claims it: no `ZOMBIE` mark, the resurrection check admits
// the 0) made `save_all` take it for a zombie: a debug assertion fired
// while the collector lock was held, and without it the object was given
// back to a generation list with a count of 0 and never freed (nor what
// its value holds).
// ---------------------------------------------------------------------------

/// X of the cycle X -> W -> X: its finalizer drops X's handle to W, W's last.
struct SaveX {
    w: Mutex<Option<Gc<SaveW>>>,
    drops: Arc<AtomicUsize>,
}

impl Trace for SaveX {
    fn structural() -> ouro::Structural<Self> {
        // SAFETY: `trace` only calls `trace` on fields.
        unsafe { ouro::Structural::promise() }
    }
    fn trace(&self, v: &mut Visitor<'_>) {
        self.w.trace(v);
    }
    fn finalize(&self) {
        drop(relock(&self.w).take());
    }
}

impl Drop for SaveX {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

struct SaveW {
    x: Mutex<Option<Gc<SaveX>>>,
    drops: Arc<AtomicUsize>,
}

impl Trace for SaveW {
    fn structural() -> ouro::Structural<Self> {
        // SAFETY: `trace` only calls `trace` on fields.
        unsafe { ouro::Structural::promise() }
    }
    fn has_finalizer() -> bool {
        false
    }
    fn trace(&self, v: &mut Visitor<'_>) {
        self.x.trace(v);
    }
}

impl Drop for SaveW {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

/// Under `SAVEALL`, an object whose last handle a finalizer of the set
/// drops is freed by its count (its `Drop` runs once; it is not in
/// `garbage()`), the rest of the set is saved, and nothing is left behind
/// once the garbage is cleared. Review finding r9-3.
#[test]
fn saveall_frees_an_object_a_finalizer_let_go_of() {
    let heap = ouro::sync::Heap::new();
    heap.disable();
    let x_drops = Arc::new(AtomicUsize::new(0));
    let w_drops = Arc::new(AtomicUsize::new(0));
    let x = Gc::new_in(
        SaveX {
            w: Mutex::new(None),
            drops: x_drops.clone(),
        },
        &heap,
    );
    let w = Gc::new_in(
        SaveW {
            x: Mutex::new(Some(x.clone())),
            drops: w_drops.clone(),
        },
        &heap,
    );
    *relock(&x.w) = Some(w);
    drop(x);
    heap.set_debug(ouro::sync::gc::DebugFlags::SAVEALL);
    let r = catch_unwind(AssertUnwindSafe(|| heap.collect()));
    heap.wait_for_drops();
    heap.set_debug(ouro::sync::gc::DebugFlags::empty());
    assert!(r.is_ok(), "the collection panicked");
    // W went with its last handle: dropped, not saved; X is saved.
    assert_eq!(w_drops.load(Ordering::SeqCst), 1, "W dropped once");
    assert_eq!(x_drops.load(Ordering::SeqCst), 0, "X kept in garbage()");
    let saved = heap.garbage();
    assert_eq!(saved.len(), 1);
    assert_eq!(saved[0].type_name(), core::any::type_name::<SaveX>());
    drop(saved);
    heap.clear_garbage();
    heap.wait_for_drops();
    assert_eq!(
        x_drops.load(Ordering::SeqCst),
        1,
        "X dropped with the garbage"
    );
    assert_eq!(heap.get_objects(None).len(), 0, "nothing left behind");
}
