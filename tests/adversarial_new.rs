//! Hostile safe code against the surface added in the session that brought
//! dyn-compatible `Trace`, Rc/Arc's vocabulary, slices, `ouro::weakref`,
//! the debug flags' object lines and `sync::deep_copy`. Each test is an
//! attack; those that pass are kept as regression tests, a finding that is
//! not fixed is `#[ignore]`d with its cause.
//!
//! Thread-local tests run on a fresh thread (their own heap); tests of the
//! process-wide heap run one at a time (`sync_guarded`).

use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::rc::Rc;

use ouro::{Gc, Trace, Visitor, Weak, coerce_gc, gc, weakref};

fn sync_guarded(f: impl FnOnce() + Send + 'static) {
    static SYNC_HEAP: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = SYNC_HEAP.lock().unwrap_or_else(|e| e.into_inner());
    guarded(f);
}

/// Runs `f` on a new thread (its own thread-local heap).
fn guarded(f: impl FnOnce() + Send + 'static) {
    let h = std::thread::Builder::new()
        .stack_size(4 << 20)
        .spawn(f)
        .unwrap();
    if let Err(p) = h.join() {
        resume_unwind(p)
    }
}

/// Runs `f`, which must panic; returns the panic message.
fn panics(f: impl FnOnce()) -> String {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(()) => panic!("expected a panic"),
        Err(p) => p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_default(),
    }
}

trait Shape: Trace {
    fn area(&self) -> u64;
}

#[derive(Trace)]
struct Small(u8);
impl Shape for Small {
    fn area(&self) -> u64 {
        self.0 as u64
    }
}

/// `coerce_gc!`'s cast is `p as _`; a pointer cast from a wide pointer to
/// a thin one would compile (it drops the metadata), but the source handle
/// must be of a sized type (`__ouro_coerce` is on `impl<T> Gc<T>`), so a
/// `Gc<dyn Shape>` or `Gc<[u8]>` cannot reach it (compile error, checked by
/// hand). A change between two sized types panics; so does a cast between
/// two sized types of the same size through a generic.
#[test]
fn coerce_between_sized_types_panics() {
    fn cast<A: Trace + 'static, B: 'static>(a: Gc<A>) -> Gc<B> {
        coerce_gc!(a)
    }
    fn sync_cast<A: 'static, B: 'static>(a: ouro::sync::Gc<A>) -> ouro::sync::Gc<B> {
        ouro::sync::coerce_gc!(a)
    }
    guarded(|| {
        let a = Gc::new(Small(1));
        let w = Gc::downgrade(&a);
        let msg = panics(|| drop(cast::<Small, String>(a)));
        assert!(msg.contains("coerce_gc"), "{msg}");
        // The handle moved into the failed cast was released, not leaked.
        assert!(w.upgrade().is_none());
        let same: Gc<Small> = cast::<Small, Small>(Gc::new(Small(2)));
        assert_eq!(same.0, 2);
        let a = ouro::sync::Gc::new(5u32);
        let msg = panics(|| drop(sync_cast::<u32, f32>(a)));
        assert!(msg.contains("coerce_gc"), "{msg}");
    });
}

/// The coerced handle to an array of a tracked type: a cycle through the
/// slice view is collected, deep-copied (its length comes from the handle,
/// the object has none recorded) and introspected.
#[derive(Trace, ouro::DeepCopy)]
struct Link {
    id: u32,
    next: RefCell<Option<Gc<[Link]>>>,
}

#[test]
fn coerced_array_as_slice_cycle() {
    guarded(|| {
        let s: Gc<[Link]> = coerce_gc!(Gc::new([
            Link {
                id: 1,
                next: RefCell::new(None)
            },
            Link {
                id: 2,
                next: RefCell::new(None)
            },
        ]));
        *s[1].next.borrow_mut() = Some(s.clone());
        let c = copy_slice(&s);
        assert_eq!(c.len(), 2);
        assert_eq!(c[1].id, 2);
        assert!(Gc::ptr_eq(c[1].next.borrow().as_ref().unwrap(), &c));
        let objs = gc::get_objects(None);
        for o in &objs {
            let _ = o.referents();
            let _ = o.referrers();
            assert!(
                o.downcast::<[Link; 2]>().is_none()
                    || o.address() == Gc::as_ptr(&s).cast::<u8>().addr()
            );
        }
        let ws = Gc::downgrade(&s);
        let wc = Gc::downgrade(&c);
        drop((s, c, objs));
        assert!(gc::collect() >= 2);
        assert!(ws.upgrade().is_none());
        assert!(wc.upgrade().is_none());
    });
}

/// `deep_copy` takes a sized root: a slice is copied through one.
#[derive(Trace, ouro::DeepCopy)]
struct Root<T: Trace + ouro::DeepCopy + 'static>(Gc<[T]>);

fn copy_slice<T: Trace + ouro::DeepCopy + 'static>(s: &Gc<[T]>) -> Gc<[T]> {
    ouro::deep_copy(&Gc::new(Root(s.clone()))).0.clone()
}

/// Slices of zero-sized tracked elements, empty tracked slices and
/// over-aligned elements: made, cycled, collected, copied.
#[derive(Trace, ouro::DeepCopy)]
#[repr(align(128))]
struct Wide {
    next: RefCell<Option<Gc<[Wide]>>>,
}

struct Zst;
impl Trace for Zst {
    fn needs_trace() -> bool {
        true
    }
    fn trace(&self, _: &mut Visitor<'_>) {}
}
impl ouro::DeepCopy for Zst {
    fn deep_copy(&self, _: &mut ouro::DeepCopier<'_>) -> Self {
        Zst
    }
}

#[test]
fn odd_slices() {
    guarded(|| {
        for n in [0usize, 1, 3] {
            let z: Gc<[Zst]> = (0..n).map(|_| Zst).collect::<Vec<_>>().into();
            assert!(Gc::is_tracked(&z));
            assert_eq!(z.len(), n);
            let c = copy_slice(&z);
            assert_eq!(c.len(), n);
            let w: Gc<[Wide]> = (0..n)
                .map(|_| Wide {
                    next: RefCell::new(None),
                })
                .collect::<Vec<_>>()
                .into();
            assert_eq!(Gc::as_ptr(&w).cast::<u8>().addr() % 128, 0);
            if n > 0 {
                *w[n - 1].next.borrow_mut() = Some(w.clone());
            }
            let wc = copy_slice(&w);
            assert_eq!(Gc::as_ptr(&wc).cast::<u8>().addr() % 128, 0);
            let weak = Gc::downgrade(&w);
            drop((w, wc));
            let _ = gc::collect();
            assert!(weak.upgrade().is_none());
        }
        let e: Gc<[Link]> = Vec::new().into();
        assert_eq!(e.len(), 0);
        let ws: Weak<[Link]> = Gc::downgrade(&e);
        drop(e);
        assert!(ws.upgrade().is_none());
        assert_eq!(ws.strong_count(), 0);
    });
}

#[test]
fn sync_odd_slices() {
    #[derive(Trace)]
    #[repr(align(256))]
    struct SWide {
        next: std::sync::Mutex<Option<ouro::sync::Gc<[SWide]>>>,
    }
    sync_guarded(|| {
        for n in [0usize, 1, 2] {
            let w: ouro::sync::Gc<[SWide]> = (0..n)
                .map(|_| SWide {
                    next: std::sync::Mutex::new(None),
                })
                .collect::<Vec<_>>()
                .into();
            assert_eq!(ouro::sync::Gc::as_ptr(&w).cast::<u8>().addr() % 256, 0);
            if n > 0 {
                *w[n - 1].next.lock().unwrap() = Some(w.clone());
            }
            let weak = ouro::sync::Gc::downgrade(&w);
            drop(w);
            let _ = ouro::sync::gc::collect();
            assert!(weak.upgrade().is_none());
            let a: ouro::sync::Gc<[SWide]> = ouro::sync::coerce_gc!(ouro::sync::Gc::new([
                SWide {
                    next: std::sync::Mutex::new(None)
                },
                SWide {
                    next: std::sync::Mutex::new(None)
                },
            ]));
            *a[0].next.lock().unwrap() = Some(a.clone());
            for o in ouro::sync::gc::get_objects(None) {
                let _ = o.referents();
                let _ = o.referrers();
            }
            let weak = ouro::sync::Gc::downgrade(&a);
            drop(a);
            let _ = ouro::sync::gc::collect();
            assert!(weak.upgrade().is_none());
        }
    });
}

/// Every method of a `Weak::new()` and of a weak handle whose value died.
#[test]
fn empty_and_dangling_weaks() {
    guarded(|| {
        let e: Weak<Small> = Weak::new();
        assert!(e.upgrade().is_none());
        assert_eq!(e.strong_count(), 0);
        assert_eq!(e.weak_count(), 0);
        assert!(e.ptr_eq(&Weak::new()));
        let p = e.as_ptr();
        let e2 = e.clone();
        let raw = e2.into_raw();
        assert_eq!(raw, p);
        // SAFETY: from `into_raw`, given back once.
        let back = unsafe { Weak::from_raw(raw) };
        assert!(back.upgrade().is_none());
        let _ = format!("{e:?} {back:?}");
        assert_eq!(std::mem::size_of::<Option<Weak<Small>>>(), 8);
        let o: Option<Weak<Small>> = Some(Weak::new());
        assert!(o.is_some());

        let g = Gc::new(Small(3));
        let d = Gc::downgrade(&g);
        let d2 = d.clone();
        drop(g);
        assert!(d.upgrade().is_none());
        assert_eq!(d.strong_count(), 0);
        let _ = d.weak_count();
        assert!(d.ptr_eq(&d2));
        assert!(!d.ptr_eq(&Weak::new()));
        let raw = d2.into_raw();
        // SAFETY: as above.
        let back = unsafe { Weak::from_raw(raw) };
        assert!(back.ptr_eq(&d));
        drop((d, back));

        // A dangling weak to a tracked slice and to a trait object.
        let s: Gc<dyn Shape> = coerce_gc!(Gc::new(Small(4)));
        assert_eq!(s.area(), 4);
        let ws = Gc::downgrade(&s);
        drop(s);
        assert!(ws.upgrade().is_none());
        assert_eq!(ws.strong_count(), 0);
        let _ = ws.as_ptr();
        let _ = ws.clone();

        let se: ouro::sync::Weak<u64> = ouro::sync::Weak::new();
        assert!(se.upgrade().is_none());
        assert_eq!(se.strong_count(), 0);
        assert_eq!(se.weak_count(), 0);
        let raw = se.clone().into_raw();
        // SAFETY: as above.
        let back = unsafe { ouro::sync::Weak::from_raw(raw) };
        assert!(back.ptr_eq(&se));
        let _ = format!("{se:?}");
        let g = ouro::sync::Gc::new(9u64);
        let d = ouro::sync::Gc::downgrade(&g);
        drop(g);
        assert!(d.upgrade().is_none());
        let raw = d.clone().into_raw();
        // SAFETY: as above.
        drop(unsafe { ouro::sync::Weak::from_raw(raw) });
        assert_eq!(d.strong_count(), 0);
    });
}

/// A pinned value reached through introspection and the other handles'
/// paths: nothing moves it or hands out `&mut` to it, and it is dropped in
/// place.
#[derive(Trace)]
struct Pinned {
    me: RefCell<Option<Gc<Pinned>>>,
    #[trace(skip)]
    at: Cell<usize>,
    #[trace(skip)]
    _pin: std::marker::PhantomPinned,
}
impl Drop for Pinned {
    fn drop(&mut self) {
        let here = std::ptr::from_ref(self).addr();
        assert!(
            self.at.get() == 0 || self.at.get() == here,
            "a pinned value moved"
        );
    }
}
impl Clone for Pinned {
    fn clone(&self) -> Self {
        Pinned {
            me: RefCell::new(None),
            at: Cell::new(0),
            _pin: std::marker::PhantomPinned,
        }
    }
}

#[test]
fn pinned_value_never_moves() {
    guarded(|| {
        let p = Gc::pin(Pinned {
            me: RefCell::new(None),
            at: Cell::new(0),
            _pin: std::marker::PhantomPinned,
        });
        p.at.set(std::ptr::from_ref::<Pinned>(&p).addr());
        let mut found: Vec<Gc<Pinned>> = gc::get_objects(None)
            .iter()
            .filter_map(|o| o.downcast::<Pinned>())
            .collect();
        assert_eq!(found.len(), 1);
        let mut h = found.pop().unwrap();
        assert!(Gc::is_pinned(&h));
        assert!(Gc::get_mut(&mut h).is_none());
        let Err(h) = Gc::try_unwrap(h) else {
            panic!("moved a pinned value")
        };
        let mut h2 = h.clone();
        let m = Gc::make_mut(&mut h2);
        m.at.set(0);
        assert!(!Gc::ptr_eq(&h, &h2));
        // The last handle: into_inner drops it in place instead.
        drop(p);
        assert_eq!(Gc::into_inner(h).map(|_| ()), None);
        // A cycle through the pinned value, reached by a weakref callback.
        let p = Gc::pin(Pinned {
            me: RefCell::new(None),
            at: Cell::new(0),
            _pin: std::marker::PhantomPinned,
        });
        p.at.set(std::ptr::from_ref::<Pinned>(&p).addr());
        let h = gc::get_objects(None)
            .iter()
            .find_map(|o| o.downcast::<Pinned>())
            .unwrap();
        *p.me.borrow_mut() = Some(h.clone());
        let got = Rc::new(Cell::new(false));
        let g2 = got.clone();
        let _r = weakref::ref_with_callback(&h, move |w| {
            assert!(w.upgrade().is_none());
            g2.set(true);
        });
        drop((p, h));
        assert_eq!(gc::collect(), 1);
        assert!(got.get());
        // The same on the process-wide heap.
        #[derive(Trace)]
        struct SPinned {
            #[trace(skip)]
            v: u32,
            #[trace(skip)]
            _pin: std::marker::PhantomPinned,
            me: std::sync::Mutex<Option<ouro::sync::Gc<SPinned>>>,
        }
        impl Clone for SPinned {
            fn clone(&self) -> Self {
                SPinned {
                    v: self.v,
                    _pin: std::marker::PhantomPinned,
                    me: Default::default(),
                }
            }
        }
        let sp = ouro::sync::Gc::pin(SPinned {
            v: 1,
            _pin: std::marker::PhantomPinned,
            me: Default::default(),
        });
        let mut h = ouro::sync::gc::get_objects(None)
            .iter()
            .find_map(|o| o.downcast::<SPinned>())
            .unwrap();
        assert!(ouro::sync::Gc::get_mut(&mut h).is_none());
        let Err(h) = ouro::sync::Gc::try_unwrap(h) else {
            panic!("moved a pinned value")
        };
        let mut h2 = h.clone();
        ouro::sync::Gc::make_mut(&mut h2);
        assert!(!ouro::sync::Gc::ptr_eq(&h, &h2));
        drop(sp);
        assert!(ouro::sync::Gc::into_inner(h).is_none());
    });
}

/// A cycle node whose `Drop` and finalizer can be steered.
#[derive(Trace)]
#[trace(finalize)]
struct Node {
    id: u32,
    next: RefCell<Option<Gc<Node>>>,
}

thread_local! {
    static STASH: RefCell<Vec<Gc<Node>>> = const { RefCell::new(Vec::new()) };
    static RESURRECT: Cell<bool> = const { Cell::new(false) };
}

impl ouro::Finalize for Node {
    fn finalize(&self) {
        if RESURRECT.with(Cell::get) {
            // Resurrects the whole cycle through the other node's handle.
            let n = self.next.borrow().clone();
            STASH.with(|s| s.borrow_mut().extend(n));
        }
    }
}

fn ring() -> (Gc<Node>, Gc<Node>) {
    let a = Gc::new(Node {
        id: 1,
        next: RefCell::new(None),
    });
    let b = Gc::new(Node {
        id: 2,
        next: RefCell::new(Some(a.clone())),
    });
    *a.next.borrow_mut() = Some(b.clone());
    (a, b)
}

fn counter() -> (Rc<Cell<u32>>, impl Fn() + Clone + 'static) {
    let c = Rc::new(Cell::new(0));
    let c2 = c.clone();
    (c, move || c2.set(c2.get() + 1))
}

/// A hook's object is resurrected by its finalizer: the hook waits until
/// the value really dies, and runs once.
#[test]
fn hook_on_resurrected_object_waits() {
    guarded(|| {
        let (a, b) = ring();
        let (n, bump) = counter();
        let b2 = bump.clone();
        let _r = weakref::ref_with_callback(&a, move |w| {
            assert!(w.upgrade().is_none());
            b2()
        });
        let f = weakref::finalize(&b, bump);
        RESURRECT.with(|r| r.set(true));
        drop((a, b));
        let _ = gc::collect();
        assert_eq!(n.get(), 0, "a hook ran for a resurrected object");
        assert!(f.alive());
        let live = STASH.with(|s| s.borrow().clone());
        assert!(!live.is_empty());
        for x in &live {
            assert!(x.id == 1 || x.id == 2);
        }
        drop(live);
        RESURRECT.with(|r| r.set(false));
        STASH.with(|s| s.borrow_mut().clear());
        let _ = gc::collect();
        assert_eq!(n.get(), 2);
        assert!(!f.alive());
    });
}

/// A callback drops the map that registered hooks on objects dying in the
/// same collection, a panicking callback among them, a callback that
/// collects and allocates (so a new object can take a freed address).
#[test]
fn callbacks_that_drop_maps_panic_collect_and_allocate() {
    guarded(|| {
        let map: Rc<RefCell<Option<weakref::WeakValueMap<u32, Node>>>> =
            Rc::new(RefCell::new(Some(weakref::WeakValueMap::new())));
        let set: Rc<RefCell<Option<weakref::WeakSet<Node>>>> =
            Rc::new(RefCell::new(Some(weakref::WeakSet::new())));
        let keys: Rc<RefCell<Option<weakref::WeakKeyMap<Node, String>>>> =
            Rc::new(RefCell::new(Some(weakref::WeakKeyMap::new())));
        let (a, b) = ring();
        let (c, d) = ring();
        for (i, x) in [&a, &b, &c, &d].into_iter().enumerate() {
            map.borrow_mut().as_mut().unwrap().insert(i as u32, x);
            set.borrow_mut().as_mut().unwrap().insert(x);
            keys.borrow_mut()
                .as_mut()
                .unwrap()
                .insert(x, format!("{i}"));
        }
        let (m, s, k) = (map.clone(), set.clone(), keys.clone());
        let _r1 = weakref::ref_with_callback(&a, move |_| {
            m.borrow_mut().take();
            s.borrow_mut().take();
            k.borrow_mut().take();
        });
        let _r2 = weakref::ref_with_callback(&b, |_| panic!("hostile callback"));
        let (n, bump) = counter();
        let _r3 = weakref::ref_with_callback(&c, move |_| {
            let _ = gc::collect();
            // New objects of the same size, which may reuse freed
            // addresses: none may inherit a hook.
            let fresh: Vec<_> = (0..8).map(|_| ring()).collect();
            drop(fresh);
            let _ = gc::collect();
            bump();
        });
        let (n2, bump2) = counter();
        let _f = weakref::finalize(&d, bump2);
        drop((a, b, c, d));
        let msg = panics(|| {
            let _ = gc::collect();
        });
        assert!(msg.contains("hostile callback"), "{msg}");
        assert_eq!(n.get(), 1);
        assert_eq!(n2.get(), 1);
        assert!(map.borrow().is_none());
        // Nothing left over: more rings live and die without hooks.
        for _ in 0..4 {
            let (x, y) = ring();
            drop((x, y));
            let _ = gc::collect();
        }
        assert_eq!(n.get(), 1);
        assert_eq!(n2.get(), 1);
    });
}

/// A stale finalizer (its object died) detached or called after a new
/// object took the address and a hook: the new hook stays.
#[test]
fn stale_finalizer_does_not_touch_a_reused_address() {
    guarded(|| {
        let (n, bump) = counter();
        let mut stale = Vec::new();
        let mut addrs = std::collections::HashSet::new();
        for _ in 0..16 {
            let x = Gc::new(Small(1));
            addrs.insert(Gc::as_ptr(&x).addr());
            stale.push(weakref::finalize(&x, bump.clone()));
        }
        assert_eq!(n.get(), 16);
        let mut fresh = Vec::new();
        let mut fins = Vec::new();
        for _ in 0..16 {
            let x = Gc::new(Small(2));
            fins.push(weakref::finalize(&x, bump.clone()));
            fresh.push(x);
        }
        assert!(fresh.iter().any(|x| addrs.contains(&Gc::as_ptr(x).addr())));
        for f in &stale {
            assert!(!f.alive());
            assert!(!f.detach());
            assert!(!f.call());
        }
        assert!(fins.iter().all(weakref::Finalizer::alive));
        drop(fresh);
        assert_eq!(n.get(), 32);
    });
}

/// `Finalizer::call`, `detach` and `alive` from inside its own callback,
/// and `call` racing the object's death.
#[test]
fn finalizer_reentered_from_its_callback() {
    guarded(|| {
        let slot: Rc<RefCell<Option<weakref::Finalizer>>> = Rc::new(RefCell::new(None));
        let (n, bump) = counter();
        let s = slot.clone();
        let x = Gc::new(Small(1));
        let f = weakref::finalize(&x, move || {
            bump();
            let f = s.borrow_mut().take().unwrap();
            assert!(!f.alive());
            assert!(!f.call());
            assert!(!f.detach());
        });
        *slot.borrow_mut() = Some(f.clone());
        assert!(f.call());
        assert_eq!(n.get(), 1);
        drop(x);
        assert_eq!(n.get(), 1);
        // Run by the object's death instead.
        let s = slot.clone();
        let (n, bump) = counter();
        let x = Gc::new(Small(1));
        let f = weakref::finalize(&x, move || {
            bump();
            let f = s.borrow_mut().take().unwrap();
            assert!(!f.call());
        });
        *slot.borrow_mut() = Some(f.clone());
        drop(x);
        assert_eq!(n.get(), 1);
        assert!(!f.call());
    });
}

/// Hooks of objects `SAVEALL` kept wait; released by `clear_garbage`, they
/// run once.
#[test]
fn hooks_of_saved_garbage() {
    guarded(|| {
        gc::set_debug(gc::DebugFlags::SAVEALL);
        let (a, b) = ring();
        let (n, bump) = counter();
        let _f = weakref::finalize(&a, bump.clone());
        let _r = weakref::ref_with_callback(&b, move |_| bump());
        drop((a, b));
        let _ = gc::collect();
        assert_eq!(n.get(), 0);
        let g = gc::garbage();
        assert_eq!(g.len(), 2);
        for o in &g {
            for r in o.referents() {
                let _ = r.referrers();
            }
            assert!(o.downcast::<Node>().is_some());
        }
        drop(g);
        gc::set_debug(gc::DebugFlags::empty());
        gc::clear_garbage();
        let _ = gc::collect();
        assert_eq!(n.get(), 2);
        let _ = gc::collect();
        assert_eq!(n.get(), 2);
    });
}

thread_local! {
    static KEEP: RefCell<Option<Gc<Node>>> = const { RefCell::new(None) };
}

/// Hooks that run while the thread exits (the object held by a
/// thread-local), and that allocate, collect and register more hooks then.
#[test]
fn hooks_during_thread_exit() {
    let ran = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let r = ran.clone();
    std::thread::spawn(move || {
        let (a, b) = ring();
        let r2 = r.clone();
        let f = weakref::finalize(&a, move || {
            r2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = catch_unwind(|| {
                let (x, _y) = ring();
                let _g = weakref::finalize(&x, || {});
                let _ = gc::collect();
            });
        });
        // Dropping the handle keeps the finalizer registered.
        drop(f);
        KEEP.with(|k| *k.borrow_mut() = Some(a));
        drop(b);
    })
    .join()
    .unwrap();
    assert_eq!(ran.load(std::sync::atomic::Ordering::SeqCst), 1);
}

mod sync_copy {
    use super::*;
    use ouro::sync::Gc as SGc;
    use ouro::{DeepCopier, DeepCopy};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering::SeqCst};

    /// 0: copy normally; 1: panic once the root's children are copied.
    static MODE: AtomicU8 = AtomicU8::new(0);
    static DROPS: AtomicUsize = AtomicUsize::new(0);

    #[derive(Trace)]
    pub(super) struct SNode {
        #[trace(skip)]
        id: u32,
        // Not through the `SGc` alias: the derive would not recognise the
        // handle, the type would not be structural, and ouro::sync would
        // leak (and report) its cycles.
        up: Mutex<Option<ouro::sync::Gc<SNode>>>,
        kids: Mutex<Vec<ouro::sync::Gc<SNode>>>,
    }
    impl Drop for SNode {
        fn drop(&mut self) {
            DROPS.fetch_add(1, SeqCst);
        }
    }

    impl DeepCopy for SNode {
        fn deep_copy(&self, c: &mut DeepCopier<'_>) -> Self {
            let kids: Vec<SGc<SNode>> = self
                .kids
                .lock()
                .unwrap()
                .iter()
                .map(|k| k.deep_copy(c))
                .collect();
            let up = self.up.lock().unwrap().deep_copy(c);
            if self.id == 0 {
                // Each kid's copy holds the root's placeholder.
                let ph = kids[0].up.lock().unwrap().clone().unwrap();
                // Reading it panics; so does every path to `&mut`.
                assert!(catch_unwind(AssertUnwindSafe(|| ph.id)).is_err());
                let w = SGc::downgrade(&ph);
                assert!(w.upgrade().is_none());
                // Another thread gets handles to it and to the copies.
                let (p2, k2) = (ph.clone(), kids[0].clone());
                std::thread::spawn(move || {
                    assert!(catch_unwind(AssertUnwindSafe(|| p2.id)).is_err());
                    let mut p3 = p2.clone();
                    assert!(SGc::get_mut(&mut p3).is_none());
                    let Err(p3) = SGc::try_unwrap(p3) else {
                        panic!("took a placeholder")
                    };
                    drop(p3);
                    let _f = ouro::sync::weakref::finalize(&p2, || panic!("hook on a placeholder"));
                    // A kid's copy may still be a placeholder (filled later).
                    if let Ok(id) = catch_unwind(AssertUnwindSafe(|| k2.id)) {
                        assert_eq!(id, 1);
                    }
                    let _ = ouro::sync::gc::collect();
                    drop(p2);
                })
                .join()
                .unwrap();
                // Introspection through the copies' edges.
                for o in ouro::sync::gc::get_objects(None) {
                    for r in o.referents() {
                        // Was a finding: the root's placeholder, a
                        // referent of its kids' copies, downcast to a
                        // handle (whose `Deref` panicked).
                        if let Some(n) = r.downcast::<SNode>() {
                            let _ = n.id;
                        }
                        let _ = r.referrers();
                    }
                }
                let _ = ouro::sync::gc::collect();
                if MODE.load(SeqCst) == 1 {
                    panic!("hostile copy");
                }
            }
            SNode {
                id: self.id,
                up: Mutex::new(up),
                kids: Mutex::new(kids),
            }
        }
    }

    fn tree() -> SGc<SNode> {
        let root = SGc::new(SNode {
            id: 0,
            up: Mutex::new(None),
            kids: Mutex::new(vec![]),
        });
        for id in 1..4 {
            let k = SGc::new(SNode {
                id,
                up: Mutex::new(Some(root.clone())),
                kids: Mutex::new(vec![]),
            });
            root.kids.lock().unwrap().push(k);
        }
        root
    }

    /// A `DeepCopy` impl that reads the placeholder of the object being
    /// copied, sends it and the finished copies to another thread, collects,
    /// introspects, and (second run) panics midway: no value is read before
    /// it exists, and the abandoned copy frees everything.
    #[test]
    fn hostile_sync_deep_copy() {
        sync_guarded(|| {
            MODE.store(0, SeqCst);
            let root = tree();
            let c = ouro::sync::deep_copy(&root);
            assert_eq!(c.kids.lock().unwrap().len(), 3);
            for k in c.kids.lock().unwrap().iter() {
                assert!(SGc::ptr_eq(k.up.lock().unwrap().as_ref().unwrap(), &c));
            }
            let wc = SGc::downgrade(&c);
            drop(c);
            let _ = ouro::sync::gc::collect();
            assert!(wc.upgrade().is_none());
            DROPS.store(0, SeqCst);
            MODE.store(1, SeqCst);
            let msg = panics(|| drop(ouro::sync::deep_copy(&root)));
            assert!(msg.contains("hostile copy"), "{msg}");
            let _ = ouro::sync::gc::collect();
            // The three finished kid copies are dropped; the root's
            // placeholder had no value.
            assert_eq!(DROPS.load(SeqCst), 3);
            MODE.store(0, SeqCst);
            let wr = SGc::downgrade(&root);
            drop(root);
            let _ = ouro::sync::gc::collect();
            assert!(wr.upgrade().is_none());
        });
    }
}

/// `make_mut` moves the value out when only weak handles share it, which
/// is a death of the old object: its hooks run there. A panicking hook
/// must not leave `this` holding the released object (it would be
/// released again when dropped).
#[test]
fn make_mut_with_a_panicking_death_hook() {
    guarded(|| {
        let mut g = Gc::new(String::from("x"));
        let w = Gc::downgrade(&g);
        let _r = weakref::ref_with_callback(&g, |_| panic!("hook"));
        let msg = panics(|| {
            Gc::make_mut(&mut g).push('y');
        });
        assert!(msg.contains("hook"), "{msg}");
        assert!(w.upgrade().is_none());
        assert_eq!(Gc::strong_count(&g), 1);
        assert_eq!(&*g, "x");
        Gc::make_mut(&mut g).push('z');
        assert_eq!(&*g, "xz");
        drop((g, w));
        let mut g = ouro::sync::Gc::new(String::from("x"));
        let w = ouro::sync::Gc::downgrade(&g);
        let _r = ouro::sync::weakref::ref_with_callback(&g, |_| panic!("hook"));
        let msg = panics(|| {
            ouro::sync::Gc::make_mut(&mut g).push('y');
        });
        assert!(msg.contains("hook"), "{msg}");
        assert!(w.upgrade().is_none());
        assert_eq!(ouro::sync::Gc::strong_count(&g), 1);
        assert_eq!(&*g, "x");
        drop((g, w));
    });
}

/// `try_unwrap` with a panicking hook: the value is dropped (once) by the
/// unwind, the object freed.
#[test]
fn try_unwrap_with_a_panicking_death_hook() {
    guarded(|| {
        let g = Gc::new(String::from("x"));
        let w = Gc::downgrade(&g);
        let _r = weakref::ref_with_callback(&g, |_| panic!("hook"));
        let msg = panics(|| drop(Gc::try_unwrap(g)));
        assert!(msg.contains("hook"), "{msg}");
        assert!(w.upgrade().is_none());
        let g = ouro::sync::Gc::new(String::from("x"));
        let w = ouro::sync::Gc::downgrade(&g);
        let _r = ouro::sync::weakref::ref_with_callback(&g, |_| panic!("hook"));
        let msg = panics(|| drop(ouro::sync::Gc::into_inner(g)));
        assert!(msg.contains("hook"), "{msg}");
        assert!(w.upgrade().is_none());
    });
}

/// A logger that collects, allocates on both heaps, and panics on some
/// lines, with every object line of the debug flags on: the collection
/// that writes the lines is not corrupted, and a logger's panic does not
/// leave an object half-collected.
mod logger {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};

    static ARMED: AtomicBool = AtomicBool::new(false);
    thread_local! {
        /// Only the test's own thread is steered: a collection the logger
        /// ran on another test's thread would change what that test sees.
        static HERE: Cell<bool> = const { Cell::new(false) };
    }
    static LINES: AtomicUsize = AtomicUsize::new(0);
    static DEPTH: AtomicUsize = AtomicUsize::new(0);
    static PANICKED: AtomicUsize = AtomicUsize::new(0);

    struct Hostile;
    impl log::Log for Hostile {
        fn enabled(&self, _: &log::Metadata<'_>) -> bool {
            true
        }
        fn log(&self, r: &log::Record<'_>) {
            if !ARMED.load(SeqCst) || !HERE.try_with(Cell::get).unwrap_or(false) {
                return;
            }
            let n = LINES.fetch_add(1, SeqCst);
            let _ = format!("{}", r.args());
            if DEPTH.fetch_add(1, SeqCst) == 0 {
                let _ = gc::collect();
                let (a, _b) = ring();
                drop(a);
                let s = ouro::sync::Gc::new(7u32);
                let _ = ouro::sync::gc::collect();
                drop(s);
                DEPTH.fetch_sub(1, SeqCst);
                if n % 3 == 1 {
                    PANICKED.fetch_add(1, SeqCst);
                    panic!("hostile logger");
                }
            } else {
                DEPTH.fetch_sub(1, SeqCst);
            }
        }
        fn flush(&self) {}
    }
    static LOGGER: Hostile = Hostile;

    #[test]
    fn reentrant_panicking_logger() {
        sync_guarded(|| {
            let _ = log::set_logger(&LOGGER);
            log::set_max_level(log::LevelFilter::Trace);
            HERE.with(|h| h.set(true));
            ARMED.store(true, SeqCst);
            let flags = gc::DebugFlags::COLLECTABLE
                | gc::DebugFlags::UNCOLLECTABLE
                | gc::DebugFlags::LEAK
                | gc::DebugFlags::STATS;
            gc::set_debug(flags);
            ouro::sync::gc::set_debug(flags);
            for _ in 0..if cfg!(miri) { 2 } else { 6 } {
                let (a, b) = ring();
                let w = Gc::downgrade(&a);
                drop((a, b));
                let _ = catch_unwind(gc::collect);
                let _ = catch_unwind(gc::collect);
                assert!(w.upgrade().is_none());
                #[derive(Trace)]
                struct S {
                    next: std::sync::Mutex<Option<ouro::sync::Gc<S>>>,
                }
                let x = ouro::sync::Gc::new(S {
                    next: Default::default(),
                });
                *x.next.lock().unwrap() = Some(x.clone());
                let w = ouro::sync::Gc::downgrade(&x);
                drop(x);
                let _ = catch_unwind(ouro::sync::gc::collect);
                let _ = catch_unwind(ouro::sync::gc::collect);
                assert!(w.upgrade().is_none());
            }
            ARMED.store(false, SeqCst);
            gc::set_debug(gc::DebugFlags::empty());
            ouro::sync::gc::set_debug(gc::DebugFlags::empty());
            assert!(LINES.load(SeqCst) > 0);
            assert!(PANICKED.load(SeqCst) > 0);
        });
    }
}

/// Introspection from the `Drop` of garbage: the dying objects' handles
/// lead to values the collector already dropped, or is about to.
#[derive(Trace)]
struct Peek {
    next: RefCell<Option<Gc<Peek>>>,
}
impl Drop for Peek {
    fn drop(&mut self) {
        if let Some(n) = self.next.borrow().as_ref() {
            for r in gc::get_referents(n).into_iter().chain(gc::get_referrers(n)) {
                let _ = r.referents();
                let _ = r.referrers();
                if let Some(p) = r.downcast::<Peek>() {
                    let _ = p.next.borrow().is_some();
                }
            }
            for o in gc::get_objects(None) {
                let _ = o.referents();
                let _ = o.referrers();
                if let Some(p) = o.downcast::<Peek>() {
                    let _ = p.next.borrow().is_some();
                }
            }
        }
    }
}

#[test]
fn introspection_from_drop_of_garbage() {
    guarded(|| {
        let a = Gc::new(Peek {
            next: RefCell::new(None),
        });
        let b = Gc::new(Peek {
            next: RefCell::new(Some(a.clone())),
        });
        let c = Gc::new(Peek {
            next: RefCell::new(Some(b.clone())),
        });
        *a.next.borrow_mut() = Some(c.clone());
        drop((a, b, c));
        assert_eq!(gc::collect(), 3);
    });
    #[derive(Trace)]
    struct SPeek {
        next: std::sync::Mutex<Option<ouro::sync::Gc<SPeek>>>,
    }
    impl Drop for SPeek {
        fn drop(&mut self) {
            let n = self.next.lock().unwrap_or_else(|p| p.into_inner()).clone();
            if let Some(n) = n {
                for r in ouro::sync::gc::get_referents(&n)
                    .into_iter()
                    .chain(ouro::sync::gc::get_referrers(&n))
                {
                    let _ = r.referents();
                    let _ = r.referrers();
                    if let Some(p) = r.downcast::<SPeek>() {
                        let _ = p.next.lock().is_ok();
                    }
                }
            }
        }
    }
    sync_guarded(|| {
        let a = ouro::sync::Gc::new(SPeek {
            next: Default::default(),
        });
        let b = ouro::sync::Gc::new(SPeek {
            next: std::sync::Mutex::new(Some(a.clone())),
        });
        let c = ouro::sync::Gc::new(SPeek {
            next: std::sync::Mutex::new(Some(b.clone())),
        });
        *a.next.lock().unwrap() = Some(c.clone());
        let w = ouro::sync::Gc::downgrade(&a);
        drop((a, b, c));
        let _ = ouro::sync::gc::collect();
        assert!(w.upgrade().is_none());
    });
}

/// A `trace` behind a `Box<dyn>` edge that reports a different number of
/// edges at each call (none, once, twice, to the same handle), inside a
/// derived (structural) type in a garbage cycle, while a handle on the
/// stack keeps one of its targets alive: that target is never freed, the
/// garbage is collected or reported, never half-freed.
struct Liar {
    calls: Cell<usize>,
    held: RefCell<Vec<Gc<Node>>>,
}
impl Trace for Liar {
    fn trace(&self, v: &mut Visitor<'_>) {
        let n = self.calls.get();
        self.calls.set(n + 1);
        for h in self.held.borrow().iter() {
            for _ in 0..(n % 3) {
                h.trace(v);
            }
        }
    }
}
impl Shape for Liar {
    fn area(&self) -> u64 {
        self.held.borrow().len() as u64
    }
}

#[derive(Trace)]
struct Holder {
    shape: Box<dyn Shape>,
    me: RefCell<Option<Gc<Holder>>>,
}

#[test]
fn lying_trace_behind_a_dyn_edge() {
    guarded(|| {
        for round in 0..if cfg!(miri) { 3 } else { 9 } {
            let (a, b) = ring();
            let liar = Liar {
                calls: Cell::new(round),
                held: RefCell::new(vec![a.clone(), b]),
            };
            let h = Gc::new(Holder {
                shape: Box::new(liar),
                me: RefCell::new(None),
            });
            *h.me.borrow_mut() = Some(h.clone());
            // Also through From<Box<dyn>>: a handle to the trait object.
            let d: Gc<dyn Shape> = Gc::from(Box::new(Liar {
                calls: Cell::new(round + 1),
                held: RefCell::new(vec![a.clone()]),
            }) as Box<dyn Shape>);
            let wh = Gc::downgrade(&h);
            drop(h);
            for _ in 0..3 {
                let _ = gc::collect();
                // `a` is held here: alive and intact whatever was reported.
                assert_eq!(a.id, 1);
                assert_eq!(a.next.borrow().as_ref().unwrap().id, 2);
                assert_eq!(d.area(), 1);
            }
            drop(d);
            let _ = wh.upgrade().map(|h| *h.me.borrow_mut() = None);
            drop(a);
            let _ = gc::collect();
        }
    });
}

#[test]
fn sync_lying_trace_behind_a_dyn_edge() {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    #[derive(Trace)]
    struct Leaf {
        #[trace(skip)]
        id: u32,
        next: Mutex<Option<ouro::sync::Gc<Leaf>>>,
    }
    trait SShape: Trace + Send + Sync {
        fn n(&self) -> usize;
    }
    struct SLiar {
        calls: AtomicUsize,
        held: Mutex<Vec<ouro::sync::Gc<Leaf>>>,
    }
    impl Trace for SLiar {
        fn trace(&self, v: &mut Visitor<'_>) {
            let n = self.calls.fetch_add(1, SeqCst);
            // Takes a lock and reports a varying number of edges: not
            // structural (the default answer), which the collector checks.
            for h in self.held.lock().unwrap().iter() {
                for _ in 0..(n % 3) {
                    h.trace(v);
                }
            }
        }
    }
    impl SShape for SLiar {
        fn n(&self) -> usize {
            self.held.lock().unwrap().len()
        }
    }
    #[derive(Trace)]
    struct SHolder {
        shape: Box<dyn SShape>,
        me: Mutex<Option<ouro::sync::Gc<SHolder>>>,
    }
    sync_guarded(|| {
        for round in 0..if cfg!(miri) { 3 } else { 9 } {
            let a = ouro::sync::Gc::new(Leaf {
                id: 1,
                next: Mutex::new(None),
            });
            *a.next.lock().unwrap() = Some(a.clone());
            let liar = SLiar {
                calls: AtomicUsize::new(round),
                held: Mutex::new(vec![a.clone()]),
            };
            let h = ouro::sync::Gc::new(SHolder {
                shape: Box::new(liar),
                me: Mutex::new(None),
            });
            *h.me.lock().unwrap() = Some(h.clone());
            let d: ouro::sync::Gc<dyn SShape> = ouro::sync::Gc::from(Box::new(SLiar {
                calls: AtomicUsize::new(round + 1),
                held: Mutex::new(vec![a.clone()]),
            })
                as Box<dyn SShape>);
            let wh = ouro::sync::Gc::downgrade(&h);
            drop(h);
            // Another thread keeps changing the liar's edges meanwhile.
            let d2 = d.clone();
            let a2 = a.clone();
            let t = std::thread::spawn(move || {
                for _ in 0..if cfg!(miri) { 2 } else { 50 } {
                    let _ = d2.n();
                    let _ = ouro::sync::Gc::downgrade(&a2).upgrade();
                }
            });
            for _ in 0..3 {
                let _ = ouro::sync::gc::collect();
                assert_eq!(a.id, 1);
                assert_eq!(a.next.lock().unwrap().as_ref().unwrap().id, 1);
                assert_eq!(d.n(), 1);
            }
            t.join().unwrap();
            drop(d);
            if let Some(h) = wh.upgrade() {
                *h.me.lock().unwrap() = None;
            }
            *a.next.lock().unwrap() = None;
            drop(a);
            let _ = ouro::sync::gc::collect();
        }
    });
}

/// `From<Box<dyn>>` and `From<Box<[T]>>`/`From<Box<str>>` with zero-sized,
/// over-aligned and empty values on both heaps: the wide pointer built by
/// overwriting the data word must address the value where the box put it.
#[derive(Trace, Clone, Copy)]
#[repr(align(256))]
struct Aligned(u8);
impl Shape for Aligned {
    fn area(&self) -> u64 {
        self.0 as u64
    }
}
#[derive(Trace)]
struct Nothing;
impl Shape for Nothing {
    fn area(&self) -> u64 {
        42
    }
}
trait SyncShape: Trace + Send + Sync {
    fn area(&self) -> u64;
}
impl SyncShape for Aligned {
    fn area(&self) -> u64 {
        self.0 as u64
    }
}
impl SyncShape for Nothing {
    fn area(&self) -> u64 {
        42
    }
}

#[test]
fn from_box_odd_layouts() {
    sync_guarded(|| {
        let a: Gc<dyn Shape> = Gc::from(Box::new(Aligned(9)) as Box<dyn Shape>);
        assert_eq!(Gc::as_ptr(&a).cast::<u8>().addr() % 256, 0);
        assert_eq!(a.area(), 9);
        let z: Gc<dyn Shape> = Gc::from(Box::new(Nothing) as Box<dyn Shape>);
        assert_eq!(z.area(), 42);
        let s: Gc<[Aligned]> = Gc::from(vec![Aligned(1), Aligned(2)].into_boxed_slice());
        assert_eq!(Gc::as_ptr(&s).cast::<u8>().addr() % 256, 0);
        assert_eq!(s[1].0, 2);
        let e: Gc<[Aligned]> = Gc::from(Vec::new().into_boxed_slice());
        assert!(e.is_empty());
        let st: Gc<str> = Gc::from(String::new().into_boxed_str());
        assert_eq!(&*st, "");
        let l: Gc<[Link]> = Gc::from(
            vec![Link {
                id: 5,
                next: RefCell::new(None),
            }]
            .into_boxed_slice(),
        );
        *l[0].next.borrow_mut() = Some(l.clone());
        let wl = Gc::downgrade(&l);
        let wa = Gc::downgrade(&a);
        drop((a, z, s, e, st, l));
        assert!(wa.upgrade().is_none());
        let _ = gc::collect();
        assert!(wl.upgrade().is_none());

        let a: ouro::sync::Gc<dyn SyncShape> =
            ouro::sync::Gc::from(Box::new(Aligned(9)) as Box<dyn SyncShape>);
        assert_eq!(ouro::sync::Gc::as_ptr(&a).cast::<u8>().addr() % 256, 0);
        assert_eq!(a.area(), 9);
        let z: ouro::sync::Gc<dyn SyncShape> =
            ouro::sync::Gc::from(Box::new(Nothing) as Box<dyn SyncShape>);
        assert_eq!(z.area(), 42);
        let s: ouro::sync::Gc<[Aligned]> =
            ouro::sync::Gc::from(vec![Aligned(1), Aligned(2)].into_boxed_slice());
        assert_eq!(ouro::sync::Gc::as_ptr(&s).cast::<u8>().addr() % 256, 0);
        assert_eq!(s[1].0, 2);
        let e: ouro::sync::Gc<[Aligned]> = ouro::sync::Gc::from(Vec::new().into_boxed_slice());
        assert!(e.is_empty());
        let st: ouro::sync::Gc<str> = ouro::sync::Gc::from(String::from("héllo").into_boxed_str());
        assert_eq!(&*st, "héllo");
        let wa = ouro::sync::Gc::downgrade(&a);
        drop((a, z, s, e, st));
        assert!(wa.upgrade().is_none());
    });
}

/// The process-wide heap's hooks: callbacks that drop the maps that
/// registered them, panic, collect and allocate (address reuse), a
/// finalizer called from its own callback, stale finalizers detached after
/// their address was reused, a resurrecting finalizer.
mod sync_hooks {
    use super::*;
    use ouro::sync::Gc as SGc;
    use ouro::sync::weakref as sw;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};
    use std::sync::{Arc, Mutex};

    #[derive(Trace)]
    #[trace(finalize)]
    struct R {
        #[trace(skip)]
        id: u32,
        next: Mutex<Option<ouro::sync::Gc<R>>>,
    }
    static RESURRECT: AtomicBool = AtomicBool::new(false);
    static STASH: Mutex<Vec<ouro::sync::Gc<R>>> = Mutex::new(Vec::new());
    impl ouro::Finalize for R {
        fn finalize(&self) {
            if RESURRECT.load(SeqCst) {
                let n = self.next.lock().unwrap_or_else(|p| p.into_inner()).clone();
                STASH.lock().unwrap().extend(n);
            }
        }
    }
    fn sring() -> (SGc<R>, SGc<R>) {
        let a = SGc::new(R {
            id: 1,
            next: Mutex::new(None),
        });
        let b = SGc::new(R {
            id: 2,
            next: Mutex::new(Some(a.clone())),
        });
        *a.next.lock().unwrap() = Some(b.clone());
        (a, b)
    }
    fn scounter() -> (Arc<AtomicU32>, impl Fn() + Clone + Send + 'static) {
        let c = Arc::new(AtomicU32::new(0));
        let c2 = c.clone();
        (c, move || {
            c2.fetch_add(1, SeqCst);
        })
    }

    #[test]
    fn hostile_sync_callbacks() {
        sync_guarded(|| {
            type Maps = (
                Option<sw::WeakValueMap<u32, R>>,
                Option<sw::WeakSet<R>>,
                Option<sw::WeakKeyMap<R, String>>,
            );
            let maps: Arc<Mutex<Maps>> = Arc::new(Mutex::new((
                Some(sw::WeakValueMap::new()),
                Some(sw::WeakSet::new()),
                Some(sw::WeakKeyMap::new()),
            )));
            let (a, b) = sring();
            let (c, d) = sring();
            {
                let mut m = maps.lock().unwrap();
                for (i, x) in [&a, &b, &c, &d].into_iter().enumerate() {
                    m.0.as_mut().unwrap().insert(i as u32, x);
                    m.1.as_mut().unwrap().insert(x);
                    m.2.as_mut().unwrap().insert(x, format!("{i}"));
                }
            }
            let m2 = maps.clone();
            let _r1 = sw::ref_with_callback(&a, move |_| {
                // Taken out under the lock, dropped after it.
                let old = std::mem::take(&mut *m2.lock().unwrap());
                drop(old);
            });
            let _r2 = sw::ref_with_callback(&b, |_| panic!("hostile callback"));
            let (n, bump) = scounter();
            let _r3 = sw::ref_with_callback(&c, move |_| {
                let _ = ouro::sync::gc::collect();
                let fresh: Vec<_> = (0..8).map(|_| sring()).collect();
                drop(fresh);
                let _ = ouro::sync::gc::collect();
                bump();
            });
            let slot: Arc<Mutex<Option<sw::Finalizer>>> = Arc::new(Mutex::new(None));
            let s2 = slot.clone();
            let (n2, bump2) = scounter();
            let f = sw::finalize(&d, move || {
                bump2();
                let f = s2.lock().unwrap().take().unwrap();
                assert!(!f.alive());
                assert!(!f.call());
                assert!(!f.detach());
            });
            *slot.lock().unwrap() = Some(f.clone());
            drop((a, b, c, d));
            let mut msg = String::new();
            for _ in 0..3 {
                if let Err(p) = catch_unwind(ouro::sync::gc::collect) {
                    msg = p
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .unwrap_or_default();
                }
            }
            assert!(msg.contains("hostile callback"), "{msg}");
            assert_eq!(n.load(SeqCst), 1);
            assert_eq!(n2.load(SeqCst), 1);
            assert!(!f.alive());
            assert!(maps.lock().unwrap().0.is_none());

            // Stale finalizers after address reuse.
            let (n, bump) = scounter();
            let mut stale = Vec::new();
            for _ in 0..8 {
                let x = SGc::new(5u64);
                stale.push(sw::finalize(&x, bump.clone()));
            }
            assert_eq!(n.load(SeqCst), 8);
            let fresh: Vec<_> = (0..8).map(|_| SGc::new(6u64)).collect();
            let fins: Vec<_> = fresh
                .iter()
                .map(|x| sw::finalize(x, bump.clone()))
                .collect();
            for f in &stale {
                assert!(!f.detach());
                assert!(!f.call());
            }
            assert!(fins.iter().all(sw::Finalizer::alive));
            drop(fresh);
            assert_eq!(n.load(SeqCst), 16);

            // A resurrecting finalizer: the hooks wait for the real death.
            let (a, b) = sring();
            let (n, bump) = scounter();
            let _f = sw::finalize(&a, bump.clone());
            let _r = sw::ref_with_callback(&b, move |w| {
                assert!(w.upgrade().is_none());
                bump()
            });
            RESURRECT.store(true, SeqCst);
            drop((a, b));
            let _ = ouro::sync::gc::collect();
            assert_eq!(n.load(SeqCst), 0, "a hook ran for a resurrected object");
            let live = std::mem::take(&mut *STASH.lock().unwrap());
            assert!(!live.is_empty());
            for x in &live {
                assert!(x.id == 1 || x.id == 2);
            }
            RESURRECT.store(false, SeqCst);
            drop(live);
            let _ = ouro::sync::gc::collect();
            let _ = ouro::sync::gc::collect();
            assert_eq!(n.load(SeqCst), 2);
        });
    }
}

/// One source object met as an array and as the slice `coerce_gc!` made
/// of it, in one `deep_copy`: the memo is keyed by address, and the two
/// views must not share one copy under two layouts.
#[derive(Trace, ouro::DeepCopy)]
struct Both {
    arr: Gc<[Link; 2]>,
    sl: Gc<[Link]>,
}

#[test]
fn deep_copy_one_object_as_array_and_slice() {
    guarded(|| {
        let arr = Gc::new([
            Link {
                id: 1,
                next: RefCell::new(None),
            },
            Link {
                id: 2,
                next: RefCell::new(None),
            },
        ]);
        let sl: Gc<[Link]> = coerce_gc!(arr.clone());
        *arr[0].next.borrow_mut() = Some(sl.clone());
        let root = Gc::new(Both { arr, sl });
        // Either order of meeting the two views.
        match catch_unwind(AssertUnwindSafe(|| ouro::deep_copy(&root))) {
            Ok(c) => {
                assert_eq!(c.arr[1].id, 2);
                assert_eq!(c.sl[1].id, 2);
            }
            Err(p) => {
                let msg = p.downcast_ref::<&str>().copied().unwrap_or_default();
                assert!(msg.contains("two different types"), "{msg}");
            }
        }
        let inner = root.arr[0].next.borrow().clone().unwrap();
        match catch_unwind(AssertUnwindSafe(|| copy_slice(&inner))) {
            Ok(c) => assert_eq!(c[0].id, 1),
            Err(p) => {
                let msg = p.downcast_ref::<&str>().copied().unwrap_or_default();
                assert!(msg.contains("two different types"), "{msg}");
            }
        }
        let w = Gc::downgrade(&root);
        *root.arr[0].next.borrow_mut() = None;
        drop((root, inner));
        let _ = gc::collect();
        assert!(w.upgrade().is_none());
    });
}

/// `new_uninit`: the object is untracked until `assume_init`; a handle
/// stored in it meanwhile, a collection, and `assume_init` of a clone.
#[test]
fn new_uninit_with_handles_and_collections() {
    guarded(|| {
        let mut u = Gc::<Node>::new_uninit();
        let (a, b) = ring();
        Gc::get_mut(&mut u).unwrap().write(Node {
            id: 9,
            next: RefCell::new(Some(a.clone())),
        });
        let _ = gc::collect();
        // SAFETY: written above.
        let n = unsafe { u.assume_init() };
        assert_eq!(n.next.borrow().as_ref().unwrap().id, 1);
        *b.next.borrow_mut() = Some(n.clone());
        let wn = Gc::downgrade(&n);
        drop((a, b, n));
        let _ = gc::collect();
        assert!(wn.upgrade().is_none());
        // Never written, dropped: nothing runs on the missing value.
        let u = Gc::<Node>::new_uninit();
        let u2 = u.clone();
        drop(u);
        let _ = gc::collect();
        drop(u2);
        let su = ouro::sync::Gc::<String>::new_uninit();
        let su2 = su.clone();
        drop(su);
        drop(su2);
    });
}

/// A cycle through an `ouro::Closure`'s environment, called through a
/// `Gc<dyn Callback>`: collected.
#[test]
fn closure_cycle() {
    #[derive(Trace)]
    struct Button {
        on_click: RefCell<Option<Gc<dyn ouro::Callback<u32, u32>>>>,
    }
    guarded(|| {
        let b = Gc::new(Button {
            on_click: RefCell::new(None),
        });
        let cb: Gc<dyn ouro::Callback<u32, u32>> = Gc::from(Box::new(ouro::Closure::new(
            b.clone(),
            |b: &Gc<Button>, x: &u32| x + b.on_click.borrow().is_some() as u32,
        ))
            as Box<dyn ouro::Callback<u32, u32>>);
        *b.on_click.borrow_mut() = Some(cb.clone());
        assert_eq!(cb.call(&1), 2);
        let w = Gc::downgrade(&b);
        drop((b, cb));
        assert_eq!(gc::collect(), 2);
        assert!(w.upgrade().is_none());
    });
}

/// A key whose `Eq` drops the last handle to another value of the same
/// `WeakValueMap` while `len()` reads the map's queue of dead entries: the
/// value's death hook queues its key on that same queue.
mod hostile_key {
    use super::*;

    thread_local! {
        static VICTIM: RefCell<Option<Gc<u32>>> = const { RefCell::new(None) };
        static SYNC_VICTIM: RefCell<Option<ouro::sync::Gc<u32>>> = const { RefCell::new(None) };
    }

    #[derive(Clone, Debug)]
    struct K(u32);
    impl std::hash::Hash for K {
        fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
            self.0.hash(h)
        }
    }
    impl PartialEq for K {
        fn eq(&self, o: &K) -> bool {
            let v = VICTIM.with(|v| v.borrow_mut().take());
            drop(v);
            let v = SYNC_VICTIM.with(|v| v.borrow_mut().take());
            drop(v);
            self.0 == o.0
        }
    }
    impl Eq for K {}

    /// Was a finding: `len()` held the queue's `RefCell` borrow (on the
    /// process-wide heap, its `Mutex`) while comparing keys; the hook of the
    /// value killed there panicked on the borrow, its death was lost (the
    /// entry stayed listed and counted), and on the process-wide heap the
    /// thread deadlocked on the lock.
    #[test]
    fn key_eq_kills_a_value_during_len() {
        guarded(|| {
            let mut m = weakref::WeakValueMap::new();
            let victim = Gc::new(1u32);
            m.insert(K(1), &victim);
            VICTIM.with(|v| *v.borrow_mut() = Some(victim));
            let other = Gc::new(2u32);
            m.insert(K(2), &other);
            drop(other);
            let r = catch_unwind(AssertUnwindSafe(|| m.len()));
            assert!(r.is_ok(), "len() panicked");
            assert_eq!(m.len(), 0);
            assert!(m.is_empty());
            assert_eq!(m.iter().count(), 0);
        });
    }

    #[test]
    fn sync_key_eq_kills_a_value_during_len() {
        sync_guarded(|| {
            let mut m = ouro::sync::weakref::WeakValueMap::new();
            let victim = ouro::sync::Gc::new(1u32);
            m.insert(K(1), &victim);
            SYNC_VICTIM.with(|v| *v.borrow_mut() = Some(victim));
            let other = ouro::sync::Gc::new(2u32);
            m.insert(K(2), &other);
            drop(other);
            // The victim dies during this call: counted or not.
            assert!(m.len() <= 1);
            assert_eq!(m.len(), 0);
            assert!(m.is_empty());
            assert_eq!(m.iter().count(), 0);
        });
    }
}
