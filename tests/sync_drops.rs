//! Finalizers and drops of the process-wide heap's garbage run with no
//! collector lock held, so that they can do what user code can do anywhere
//! else: join a thread that collects, take a lock that a thread in
//! `collect()` holds, collect, allocate (defect 8 of the external audit:
//! each of the first three hung). Automatic collections hand their garbage
//! to the background thread, so that allocating under a lock that a garbage
//! `Drop` takes does not hang either.
//!
//! `collect()` still drops, before it returns, the garbage that automatic
//! collections claimed and the background thread has not dropped yet: it
//! drops what is queued itself, and waits for what the background thread is
//! dropping, but only so long (its `Drop` may wait for the caller).
//!
//! Each scenario runs on a thread of its own and fails the test if it has
//! not finished after 60 s (a deadlock: the thread is left behind). The
//! tests change the threshold, so this binary is a process of its own, and
//! they run one at a time (`LOCK`). The collector's log records (target
//! `ouro::gc`) are kept in `LOG` from the first test on.

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

/// The collector's log records (target `ouro::gc`, debug and up).
static LOG: Mutex<Vec<(log::Level, String)>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.target() == "ouro::gc" && m.level() <= log::Level::Debug
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            lock(&LOG).push((r.level(), r.args().to_string()));
        }
    }
    fn flush(&self) {}
}

/// The log records at `level` that contain `text`.
fn logged(level: log::Level, text: &str) -> usize {
    lock(&LOG)
        .iter()
        .filter(|(l, m)| *l == level && m.contains(text))
        .count()
}

/// What the collector logs each time `collect()` stops waiting for the
/// background thread.
const STOPPED_WAITING: &str = "stopped waiting for the background thread";

/// Runs `scenario` on a new thread; panics with its panic, or if it has not
/// finished within 60 s.
fn finishes(what: &str, scenario: impl FnOnce() + Send + 'static) {
    let _ = log::set_logger(&Capture);
    log::set_max_level(log::LevelFilter::Debug);
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
/// automatic collection claimed it or its batch was still queued): the rest
/// of that garbage is still dropped, and the heap goes on working.
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

/// A node of the cycles below; counts its drops in `NODES_DROPPED`.
#[derive(Trace)]
struct Churned {
    next: Mutex<Option<Gc<Churned>>>,
}

static NODES_MADE: AtomicUsize = AtomicUsize::new(0);
static NODES_DROPPED: AtomicUsize = AtomicUsize::new(0);

impl Drop for Churned {
    fn drop(&mut self) {
        NODES_DROPPED.fetch_add(1, Ordering::SeqCst);
    }
}

/// Makes `rings` rings of three `Churned` nodes and drops them.
fn churn(rings: usize) {
    for _ in 0..rings {
        let node = || {
            NODES_MADE.fetch_add(1, Ordering::SeqCst);
            Gc::new(Churned {
                next: Mutex::new(None),
            })
        };
        let (a, b, c) = (node(), node(), node());
        *lock(&a.next) = Some(b.clone());
        *lock(&b.next) = Some(c.clone());
        *lock(&c.next) = Some(a);
    }
}

/// Two threads make cyclic garbage fast enough for automatic collections
/// (default thresholds), whose garbage goes to the background thread; one
/// `collect()` afterwards returns only once all of it has been dropped,
/// without `wait_for_drops()`: the batches still queued are dropped by
/// `collect()` itself, the one being dropped is waited for. (Before, about
/// one `collect()` in four returned with a batch still being dropped.)
#[test]
fn collect_drops_what_automatic_collections_left_before_it_returns() {
    let _l = lock(&LOCK);
    finishes("collect after automatic collections", || {
        let (rounds, rings) = if cfg!(miri) { (2, 100) } else { (20, 2000) };
        let before = gc::get_stats()[0].collections;
        // The default threshold (CPython's), as a failed test may have left
        // another one.
        with_threshold0(700, || {
            for round in 0..rounds {
                let threads: Vec<_> = (0..2)
                    .map(|_| std::thread::spawn(move || churn(rings)))
                    .collect();
                for t in threads {
                    t.join().unwrap();
                }
                gc::collect();
                assert_eq!(
                    NODES_DROPPED.load(Ordering::SeqCst),
                    NODES_MADE.load(Ordering::SeqCst),
                    "round {round}: garbage left undropped when collect() returned"
                );
            }
        });
        assert!(
            gc::get_stats()[0].collections > before,
            "no automatic collection ran"
        );
    });
}

/// The background thread drops an automatic collection's garbage whose
/// `Drop` waits for a lock that the caller of `collect()` holds: `collect()`
/// stops waiting for it after its bound and returns (logging why), and
/// `wait_for_drops()` sees it dropped once the lock is free.
#[test]
#[cfg_attr(miri, ignore = "no background thread under Miri")]
fn collect_returns_while_a_background_drop_waits_for_its_lock() {
    let _l = lock(&LOCK);
    finishes("collect under a lock a background Drop waits for", || {
        let user = Arc::new(Mutex::new(()));
        let dropped = Arc::new(AtomicUsize::new(0));
        let (entered_tx, entered_rx) = mpsc::channel();
        let (u, d) = (user.clone(), dropped.clone());
        garbage_dropping_with(move || {
            entered_tx.send(()).unwrap();
            drop(lock(&u));
            d.fetch_add(1, Ordering::SeqCst);
        });
        let g = lock(&user);
        // An automatic collection claims the garbage and hands it to the
        // background thread, whose `Drop` then waits for `g`.
        with_threshold0(1, || {
            let kept: Vec<_> = (0..20)
                .map(|_| Gc::new(Mutex::new(None::<Gc<u8>>)))
                .collect();
            drop(kept);
        });
        entered_rx.recv().unwrap();
        let stopped = logged(log::Level::Debug, STOPPED_WAITING);
        gc::collect();
        assert_eq!(
            dropped.load(Ordering::SeqCst),
            0,
            "the Drop ran under our lock"
        );
        assert_eq!(
            logged(log::Level::Debug, STOPPED_WAITING),
            stopped + 1,
            "collect() did not say it stopped waiting"
        );
        assert_eq!(
            logged(
                log::Level::Warn,
                "wait_for_drops() waits for it without a bound"
            ),
            1,
            "no warning (once) that collect() returned before the drops"
        );
        drop(g);
        gc::wait_for_drops();
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
    });
}

/// A `Drop` run by the background thread calls `collect()`: it collects
/// (and drops its own garbage) without waiting for the batch it is part of.
#[test]
#[cfg_attr(miri, ignore = "no background thread under Miri")]
fn a_drop_on_the_background_thread_can_collect_without_waiting_for_itself() {
    let _l = lock(&LOCK);
    finishes("Drop on the background thread calls collect()", || {
        let inner = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(None));
        let (i, s) = (inner.clone(), seen.clone());
        garbage_dropping_with(move || {
            ring(3, &i);
            gc::collect();
            let name = std::thread::current().name().map(str::to_owned);
            *lock(&s) = Some((name, i.load(Ordering::SeqCst)));
        });
        let stopped = logged(log::Level::Debug, STOPPED_WAITING);
        with_threshold0(1, || {
            let kept: Vec<_> = (0..20)
                .map(|_| Gc::new(Mutex::new(None::<Gc<u8>>)))
                .collect();
            drop(kept);
        });
        gc::wait_for_drops();
        let (name, dropped) = lock(&seen).take().expect("the Drop did not run");
        assert_eq!(name.as_deref(), Some("ouro-sync-gc"));
        assert_eq!(dropped, 3, "the Drop's collect() left its garbage");
        assert_eq!(
            logged(log::Level::Debug, STOPPED_WAITING),
            stopped,
            "the Drop's collect() waited for its own batch"
        );
    });
}
