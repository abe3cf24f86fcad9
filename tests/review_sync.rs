//! Review tests of the process-wide heap's collection protocol: what a
//! collection's user code (finalizers, drops, the logger) can do to the
//! collections that run it, through the public API only.
//!
//! The tests share the process-wide heap and the logger: they run one at a
//! time (`LOCK`), and each scenario runs on a thread of its own that fails
//! the test if it has not finished after 60 s (a hang).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ouro::Trace;
use ouro::sync::{Gc, gc};

static LOCK: Mutex<()> = Mutex::new(());

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// While set, the logger panics on the collector's `STATS` record.
static PANIC_ON_STATS: AtomicBool = AtomicBool::new(false);

struct Logger;

impl log::Log for Logger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.target() == "ouro::gc"
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata())
            && PANIC_ON_STATS.load(Ordering::SeqCst)
            && r.args().to_string().starts_with("sync gc: generation")
        {
            panic!("logger panics on the stats record");
        }
    }
    fn flush(&self) {}
}

/// Runs `scenario` on a new thread; panics with its panic, or if it has not
/// finished within 60 s.
fn finishes(what: &str, scenario: impl FnOnce() + Send + 'static) {
    let _ = log::set_logger(&Logger);
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
        Err(RecvTimeoutError::Timeout) => panic!("{what}: hangs (not finished after a minute)"),
    }
}

/// A cyclic node that counts its drops.
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

/// Makes a self-cycle counting its drop in `drops`, and drops it.
fn cycle(drops: &Arc<AtomicUsize>) {
    let a = Gc::new(Counted {
        next: Mutex::new(None),
        drops: drops.clone(),
    });
    *lock(&a.next) = Some(a.clone());
}

/// A logger is user code: one that panics on the `STATS` record of a
/// `collect()` makes that `collect()` panic, but the collection still ends
/// (its `Stop` callbacks run, it is counted, and `wait_for_drops` does not
/// wait for it forever).
#[test]
fn a_logger_panicking_on_the_stats_record_leaves_the_collection_finished() {
    let _g = lock(&LOCK);
    finishes("wait_for_drops after a logger panic", || {
        gc::disable();
        gc::collect();
        gc::wait_for_drops();
        let stops = Arc::new(AtomicUsize::new(0));
        let s = stops.clone();
        let id = gc::add_callback(move |info| {
            if info.phase == gc::Phase::Stop {
                s.fetch_add(1, Ordering::SeqCst);
            }
        });
        let before: usize = gc::get_stats().iter().map(|s| s.collections).sum();
        let drops = Arc::new(AtomicUsize::new(0));
        cycle(&drops);
        gc::set_debug(gc::DebugFlags::STATS);
        PANIC_ON_STATS.store(true, Ordering::SeqCst);
        let r = std::panic::catch_unwind(gc::collect);
        PANIC_ON_STATS.store(false, Ordering::SeqCst);
        gc::set_debug(gc::DebugFlags::empty());
        assert!(r.is_err(), "the logger's panic reaches the caller");
        assert_eq!(drops.load(Ordering::SeqCst), 1, "the cycle is dropped");
        gc::wait_for_drops();
        let after: usize = gc::get_stats().iter().map(|s| s.collections).sum();
        assert!(gc::remove_callback(id));
        assert_eq!(stops.load(Ordering::SeqCst), 1, "Stop callbacks ran");
        assert_eq!(after, before + 1, "the collection is counted");
        gc::enable();
    });
}

/// Channels through which `Pause`'s trace says it runs and waits to go on.
type Gate = (mpsc::Sender<()>, mpsc::Receiver<()>);
static GATE: Mutex<Option<Gate>> = Mutex::new(None);

/// A value whose `trace` (while `GATE` is set) tells the test it runs and
/// waits for the test's go: the collection owns every object meanwhile.
struct Pause;

impl Trace for Pause {
    fn structural() -> ouro::Structural<Self> {
        // SAFETY: `trace` visits nothing and mutates nothing.
        unsafe { ouro::Structural::promise() }
    }
    fn trace(&self, _: &mut ouro::Visitor<'_>) {
        if let Some((tx, rx)) = lock(&GATE).take() {
            let _ = tx.send(());
            let _ = rx.recv_timeout(Duration::from_secs(30));
        }
    }
}

/// An acyclic object whose last handle is dropped while a `SAVEALL`
/// collection owns it was freed by counting: it is dropped, never kept in
/// `garbage()` (as the report never revives such an object).
#[test]
fn saveall_does_not_revive_an_object_dropped_during_the_collection() {
    let _g = lock(&LOCK);
    finishes("saveall and a racing drop", || {
        gc::disable();
        gc::collect();
        gc::wait_for_drops();
        gc::clear_garbage();
        let pause = Gc::new(Pause);
        let drops = Arc::new(AtomicUsize::new(0));
        let z = Gc::new(Counted {
            next: Mutex::new(None),
            drops: drops.clone(),
        });
        let (to_test, from_trace) = mpsc::channel();
        let (to_trace, from_test) = mpsc::channel();
        *lock(&GATE) = Some((to_test, from_test));
        gc::set_debug(gc::DebugFlags::SAVEALL);
        let c = std::thread::spawn(gc::collect);
        from_trace.recv().unwrap();
        drop(z); // the last handle, while the collection owns `z`
        to_trace.send(()).unwrap();
        c.join().unwrap();
        gc::wait_for_drops();
        gc::set_debug(gc::DebugFlags::empty());
        let saved = gc::garbage().len();
        gc::clear_garbage();
        drop(pause);
        gc::enable();
        assert_eq!(saved, 0, "nothing was cyclic garbage");
        assert_eq!(drops.load(Ordering::SeqCst), 1, "dropped by counting");
    });
}
