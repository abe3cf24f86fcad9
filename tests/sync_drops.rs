//! Finalizers and drops of the process-wide heap's garbage run with no
//! collector lock held, so that they can do what user code can do anywhere
//! else: join a thread that collects, take a lock that a thread in
//! `collect()` holds, collect, allocate (defect 8 of the external audit:
//! each of the first three hung). Automatic collections hand their garbage
//! to the background thread, so that allocating under a lock that a garbage
//! `Drop` takes does not hang either.
//!
//! Each scenario runs on a thread of its own and fails the test if it has
//! not finished after 60 s (a deadlock: the thread is left behind). The
//! tests change the threshold, so this binary is a process of its own, and
//! they run one at a time (`LOCK`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ouro::sync::{Gc, gc};
use ouro::{Finalize, Trace};

static LOCK: Mutex<()> = Mutex::new(());

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs `scenario` on a new thread; panics with its panic, or if it has not
/// finished within 60 s.
fn finishes(what: &str, scenario: impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    let t = std::thread::spawn(move || {
        scenario();
        let _ = tx.send(());
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(()) => t.join().unwrap(),
        Err(RecvTimeoutError::Disconnected) => {
            if let Err(p) = t.join() {
                std::panic::resume_unwind(p);
            }
        }
        Err(RecvTimeoutError::Timeout) => panic!("{what}: deadlock (not finished after a minute)"),
    }
}

type Hook = Box<dyn FnOnce() + Send>;

/// A value whose `Drop` runs a hook, in a cycle with itself.
#[derive(Trace)]
struct OnDrop {
    me: Mutex<Option<Gc<OnDrop>>>,
    #[trace(skip)]
    hook: Mutex<Option<Hook>>,
}

impl Drop for OnDrop {
    fn drop(&mut self) {
        if let Some(f) = self.hook.get_mut().unwrap().take() {
            f();
        }
    }
}

/// Makes a self-cycle whose `Drop` runs `hook`, and drops it: garbage.
fn garbage_dropping_with(hook: impl FnOnce() + Send + 'static) {
    let a = Gc::new(OnDrop {
        me: Mutex::new(None),
        hook: Mutex::new(Some(Box::new(hook))),
    });
    *lock(&a.me) = Some(a.clone());
}

/// A value whose finalizer runs a hook, in a cycle with itself.
#[derive(Trace)]
#[trace(finalize)]
struct OnFinalize {
    me: Mutex<Option<Gc<OnFinalize>>>,
    #[trace(skip)]
    hook: Mutex<Option<Hook>>,
}

impl Finalize for OnFinalize {
    fn finalize(&self) {
        if let Some(f) = lock(&self.hook).take() {
            f();
        }
    }
}

/// A plain cyclic node that counts its drops.
#[derive(Trace)]
struct Counted {
    next: Mutex<Option<Gc<Counted>>>,
    #[trace(skip)]
    drops: Arc<AtomicUsize>,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

/// Makes a ring of `n` counted nodes and drops it.
fn ring(n: usize, drops: &Arc<AtomicUsize>) {
    let first = Gc::new(Counted {
        next: Mutex::new(None),
        drops: drops.clone(),
    });
    let mut last = first.clone();
    for _ in 1..n {
        let next = Gc::new(Counted {
            next: Mutex::new(None),
            drops: drops.clone(),
        });
        *lock(&last.next) = Some(next.clone());
        last = next;
    }
    *lock(&last.next) = Some(first);
}

/// Runs `f` with automatic collection at `threshold0` (1: before almost
/// every allocation), then puts the settings back.
fn with_threshold0<R>(threshold0: usize, f: impl FnOnce() -> R) -> R {
    let old = gc::get_threshold();
    gc::enable();
    gc::set_threshold([threshold0, old[1], old[2]]);
    let r = f();
    gc::set_threshold(old);
    r
}

#[test]
fn a_drop_can_join_a_thread_that_collects() {
    let _l = lock(&LOCK);
    finishes("Drop joins a thread in collect()", || {
        let collected = Arc::new(AtomicUsize::new(0));
        let c = collected.clone();
        garbage_dropping_with(move || {
            std::thread::spawn(gc::collect).join().unwrap();
            c.fetch_add(1, Ordering::SeqCst);
        });
        gc::collect();
        assert_eq!(collected.load(Ordering::SeqCst), 1);
    });
}

/// The thread that holds the lock enters `collect()` once the `Drop` (run
/// by another thread's collection) waits for that lock.
#[test]
fn a_drop_can_take_a_lock_held_by_a_thread_in_collect() {
    let _l = lock(&LOCK);
    finishes("Drop takes a lock held by a thread in collect()", || {
        let user = Arc::new(Mutex::new(0));
        let (entered_tx, entered_rx) = mpsc::channel();
        let u = user.clone();
        garbage_dropping_with(move || {
            entered_tx.send(()).unwrap();
            *lock(&u) += 1;
        });
        let u = user.clone();
        let holder = std::thread::spawn(move || {
            let mut g = lock(&u);
            entered_rx.recv().unwrap();
            gc::collect();
            *g += 10;
        });
        gc::collect();
        holder.join().unwrap();
        assert_eq!(*lock(&user), 11);
    });
}

#[test]
fn a_finalizer_can_take_a_lock_held_by_a_thread_in_collect() {
    let _l = lock(&LOCK);
    finishes(
        "finalizer takes a lock held by a thread in collect()",
        || {
            let user = Arc::new(Mutex::new(0));
            let (entered_tx, entered_rx) = mpsc::channel();
            let u = user.clone();
            let a = Gc::new(OnFinalize {
                me: Mutex::new(None),
                hook: Mutex::new(Some(Box::new(move || {
                    entered_tx.send(()).unwrap();
                    *lock(&u) += 1;
                }))),
            });
            *lock(&a.me) = Some(a.clone());
            let w = Gc::downgrade(&a);
            drop(a);
            let u = user.clone();
            let holder = std::thread::spawn(move || {
                let mut g = lock(&u);
                entered_rx.recv().unwrap();
                gc::collect();
                *g += 10;
            });
            gc::collect();
            holder.join().unwrap();
            assert_eq!(*lock(&user), 11);
            assert!(w.upgrade().is_none(), "the finalized cycle was not freed");
        },
    );
}

/// An automatic collection claims the garbage while the allocating thread
/// holds the lock that the garbage's `Drop` takes: the `Drop` runs on the
/// background thread once the lock is free.
#[test]
fn allocating_under_a_lock_that_a_garbage_drop_takes() {
    let _l = lock(&LOCK);
    finishes("allocation under a lock a garbage Drop takes", || {
        let user = Arc::new(Mutex::new(0));
        let u = user.clone();
        garbage_dropping_with(move || *lock(&u) += 1);
        let drops = Arc::new(AtomicUsize::new(0));
        let before = gc::get_stats()[0].collections;
        with_threshold0(1, || {
            let g = lock(&user);
            let kept: Vec<_> = (0..200)
                .map(|_| {
                    Gc::new(Counted {
                        next: Mutex::new(None),
                        drops: drops.clone(),
                    })
                })
                .collect();
            drop(g);
            drop(kept);
        });
        gc::collect();
        gc::wait_for_drops();
        assert_eq!(*lock(&user), 1, "the garbage's Drop did not run");
        assert!(
            gc::get_stats()[0].collections > before,
            "no automatic collection ran"
        );
    });
}

/// A `Drop` that calls `collect()` gets a collection of its own, which
/// drops (on that thread, before it returns) the garbage the `Drop` made.
#[test]
fn a_drop_can_collect() {
    let _l = lock(&LOCK);
    finishes("Drop calls collect()", || {
        let inner = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(AtomicUsize::new(usize::MAX));
        let (i, s) = (inner.clone(), seen.clone());
        garbage_dropping_with(move || {
            ring(3, &i);
            gc::collect();
            s.store(i.load(Ordering::SeqCst), Ordering::SeqCst);
        });
        gc::collect();
        assert_eq!(seen.load(Ordering::SeqCst), 3);
    });
}

/// A `Drop` that allocates, with automatic collection at every chance,
/// makes cyclic garbage: no collection starts inside the `Drop` (DESIGN 6),
/// and a later `collect()` frees all of it.
#[test]
fn a_drop_can_allocate_cyclic_garbage() {
    let _l = lock(&LOCK);
    finishes("Drop allocates cyclic garbage", || {
        let made = Arc::new(AtomicUsize::new(0));
        let m = made.clone();
        let rings = 50;
        with_threshold0(1, || {
            garbage_dropping_with(move || {
                for _ in 0..rings {
                    ring(4, &m);
                }
                assert_eq!(m.load(Ordering::SeqCst), 0, "collected inside the Drop");
            });
            gc::collect();
        });
        gc::collect();
        gc::wait_for_drops();
        assert_eq!(made.load(Ordering::SeqCst), 4 * rings);
    });
}

/// A `Drop` that panics while an automatic collection's garbage is dropped
/// (on the background thread; or on this one, by `collect()`, if no
/// automatic collection claimed it): the rest of that garbage is still
/// dropped, and the heap goes on working.
#[test]
fn a_panicking_drop_of_automatic_garbage_leaves_the_rest_dropped() {
    let _l = lock(&LOCK);
    finishes(
        "panicking Drop of an automatic collection's garbage",
        || {
            let drops = Arc::new(AtomicUsize::new(0));
            let d = drops.clone();
            garbage_dropping_with(move || {
                d.fetch_add(1, Ordering::SeqCst);
                panic!("a Drop that panics (expected by this test)");
            });
            ring(5, &drops);
            with_threshold0(1, || {
                let kept: Vec<_> = (0..200).map(|_| Gc::new(0u64)).collect();
                let tracked: Vec<_> = (0..200)
                    .map(|_| {
                        Gc::new(Counted {
                            next: Mutex::new(None),
                            drops: Arc::new(AtomicUsize::new(0)),
                        })
                    })
                    .collect();
                drop((kept, tracked));
            });
            // What the automatic collections left (with the panic, if the
            // garbage is among it).
            let _ = std::panic::catch_unwind(gc::collect);
            gc::wait_for_drops();
            assert_eq!(drops.load(Ordering::SeqCst), 6);
            let again = Arc::new(AtomicUsize::new(0));
            ring(2, &again);
            gc::collect();
            assert_eq!(again.load(Ordering::SeqCst), 2);
        },
    );
}
