//! Thread teardown, in the spirit of CPython's `test_gc` thread-teardown
//! cases: the destructors of thread-locals run before or after ouro's own
//! exit hook (the order follows registration, last registered first), and
//! they allocate handles and store them, make and drop temporaries, drop
//! cycles and hold weak handles. Each test joins the thread and checks that
//! every value was dropped exactly once: nothing crashed and nothing was
//! left behind.

use std::any::Any;
use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use ouro::{Gc, Trace, Visitor, Weak, gc};

/// Counts its drops.
struct Counted(&'static AtomicUsize);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

impl Trace for Counted {
    fn needs_trace() -> bool {
        false
    }
    fn trace(&self, _: &mut Visitor<'_>) {}
}

#[derive(Trace)]
struct Node {
    next: RefCell<Option<Gc<Node>>>,
    #[trace(skip)]
    _count: Counted,
}

/// A ring of `n` nodes (a garbage cycle once the handle is dropped).
fn ring(drops: &'static AtomicUsize, n: usize) -> Gc<Node> {
    let first = Gc::new(Node {
        next: RefCell::new(None),
        _count: Counted(drops),
    });
    let mut last = first.clone();
    for _ in 1..n {
        let x = Gc::new(Node {
            next: RefCell::new(None),
            _count: Counted(drops),
        });
        *last.next.borrow_mut() = Some(x.clone());
        last = x;
    }
    *last.next.borrow_mut() = Some(first.clone());
    first
}

/// A closure to run at thread exit, and where to count its panic.
type ExitJob = (Box<dyn FnOnce()>, &'static AtomicUsize);

/// Runs closures when the thread's locals are destroyed. A panic there
/// would abort the process: it is counted instead, and the test fails.
struct OnExit(RefCell<Vec<ExitJob>>);

impl Drop for OnExit {
    fn drop(&mut self) {
        for (f, panics) in self.0.take() {
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err() {
                panics.fetch_add(1, SeqCst);
            }
        }
    }
}

thread_local! {
    static AT_EXIT: OnExit = const { OnExit(RefCell::new(Vec::new())) };
    /// Where exit-time closures put what they make. First used from inside
    /// `AT_EXIT`'s destructor, so it is destroyed right after it.
    static STORE: RefCell<Vec<Box<dyn Any>>> = const { RefCell::new(Vec::new()) };
}

fn store(x: impl Any) {
    STORE.with(|s| s.borrow_mut().push(Box::new(x)));
}

/// When `AT_EXIT`'s destructor runs relative to the heap's exit hook.
#[derive(Clone, Copy, Debug)]
enum Order {
    /// `AT_EXIT` is registered after the heap: destroyed before the hook.
    BeforeHook,
    /// `AT_EXIT` is registered before the heap exists: destroyed after it.
    AfterHook,
}

/// Spawns a thread that registers `AT_EXIT` in `order`, runs `body`, and
/// queues the closure it returns to run at thread exit; joins it.
fn at_thread_exit(order: Order, body: impl FnOnce() -> Box<dyn FnOnce()> + Send + 'static) {
    static PANICS: AtomicUsize = AtomicUsize::new(0);
    let before = PANICS.load(SeqCst);
    std::thread::spawn(move || {
        let register = || AT_EXIT.with(|_| ());
        let make_heap = || {
            let _ = gc::get_count();
        };
        match order {
            Order::BeforeHook => {
                make_heap();
                register();
            }
            Order::AfterHook => {
                register();
                make_heap();
            }
        }
        let f = body();
        AT_EXIT.with(|e| e.0.borrow_mut().push((f, &PANICS)));
    })
    .join()
    .unwrap();
    // Other tests' threads may count theirs at the same time: any increase
    // is a failure somewhere, reported where it is seen first.
    assert_eq!(PANICS.load(SeqCst), before, "an exit-time closure panicked");
}

/// One test per order for each scenario, each with its own drop counter.
macro_rules! in_both_orders {
    ($($(#[$m:meta])* $name:ident;)*) => {
        mod before_hook {
            $(
                $(#[$m])*
                #[test]
                fn $name() {
                    static DROPS: super::AtomicUsize = super::AtomicUsize::new(0);
                    super::$name(super::Order::BeforeHook, &DROPS);
                }
            )*
        }
        mod after_hook {
            $(
                $(#[$m])*
                #[test]
                fn $name() {
                    static DROPS: super::AtomicUsize = super::AtomicUsize::new(0);
                    super::$name(super::Order::AfterHook, &DROPS);
                }
            )*
        }
    };
}

in_both_orders! {
    /// The audit's reproducer: a `Gc` made at exit and stored in a
    /// thread-local destroyed later outlives the heap's hook (it was freed
    /// under it: a use after free).
    allocating_at_exit_and_storing_the_handle;
    /// A temporary made and dropped at exit (it made the orphan count
    /// underflow).
    a_temporary_made_and_dropped_at_exit;
    a_cycle_held_until_exit;
    a_cycle_made_and_dropped_at_exit;
    a_weak_handle_that_outlives_its_value;
    allocating_again_after_the_heap_freed_itself;
    gc_functions_after_the_heap_freed_itself;
    a_callback_holding_a_handle;
    saved_garbage;
    sync_handles_at_exit;
    sync_cycle_dropped_at_exit;
}

fn allocating_at_exit_and_storing_the_handle(order: Order, drops: &'static AtomicUsize) {
    at_thread_exit(order, move || {
        let early = Gc::new(Counted(drops));
        Box::new(move || {
            store(Gc::new(Counted(drops)));
            store(Gc::new(Node {
                next: RefCell::new(Some(ring(drops, 2))),
                _count: Counted(drops),
            }));
            drop(early);
        })
    });
    assert_eq!(drops.load(SeqCst), 5);
}

fn a_temporary_made_and_dropped_at_exit(order: Order, drops: &'static AtomicUsize) {
    at_thread_exit(order, move || {
        let held = Gc::new(Counted(drops));
        Box::new(move || {
            drop(Gc::new(Counted(drops)));
            drop(held.clone());
            drop(Gc::new(Counted(drops)));
            drop(held);
            drop(Gc::new(Counted(drops)));
        })
    });
    assert_eq!(drops.load(SeqCst), 4);
}

fn a_cycle_held_until_exit(order: Order, drops: &'static AtomicUsize) {
    at_thread_exit(order, move || {
        let r = ring(drops, 3);
        Box::new(move || drop(r))
    });
    assert_eq!(drops.load(SeqCst), 3);
}

fn a_cycle_made_and_dropped_at_exit(order: Order, drops: &'static AtomicUsize) {
    at_thread_exit(order, move || {
        Box::new(move || {
            drop(ring(drops, 4));
            gc::collect();
            drop(ring(drops, 2));
        })
    });
    assert_eq!(drops.load(SeqCst), 6);
}

fn a_weak_handle_that_outlives_its_value(order: Order, drops: &'static AtomicUsize) {
    at_thread_exit(order, move || {
        let a = Gc::new(Counted(drops));
        let w: Weak<Counted> = Gc::downgrade(&a);
        let r = ring(drops, 2);
        let wr = Gc::downgrade(&r);
        Box::new(move || {
            drop(a);
            assert!(w.upgrade().is_none());
            store(w);
            drop(r);
            store(wr);
        })
    });
    assert_eq!(drops.load(SeqCst), 3);
}

fn allocating_again_after_the_heap_freed_itself(order: Order, drops: &'static AtomicUsize) {
    at_thread_exit(order, move || {
        let last = Gc::new(Counted(drops));
        Box::new(move || {
            // After the hook, this frees the heap.
            drop(last);
            let again = Gc::new(Counted(drops));
            assert_eq!(gc::collect(), 0);
            drop(ring(drops, 2));
            assert_eq!(gc::collect(), 2);
            store(again);
            drop(Gc::new(Counted(drops)));
            store(Gc::new(Counted(drops)));
        })
    });
    assert_eq!(drops.load(SeqCst), 6);
}

fn gc_functions_after_the_heap_freed_itself(order: Order, drops: &'static AtomicUsize) {
    at_thread_exit(order, move || {
        let last = Gc::new(Counted(drops));
        Box::new(move || {
            drop(last);
            // Each may make a heap again; none may leave one behind.
            gc::collect();
            gc::disable();
            let _ = gc::get_count();
            gc::enable();
            drop(Gc::new(Counted(drops)));
            let _ = gc::get_stats();
        })
    });
    assert_eq!(drops.load(SeqCst), 2);
}

fn a_callback_holding_a_handle(order: Order, drops: &'static AtomicUsize) {
    at_thread_exit(order, move || {
        let held = Gc::new(Counted(drops));
        gc::add_callback(move |_| {
            let _ = &held;
        });
        let r = ring(drops, 2);
        let id = gc::add_callback(move |_| {
            let _ = &r;
        });
        Box::new(move || {
            // Drops the ring's last outside handle.
            assert!(gc::remove_callback(id));
        })
    });
    assert_eq!(drops.load(SeqCst), 3);
}

fn saved_garbage(order: Order, drops: &'static AtomicUsize) {
    at_thread_exit(order, move || {
        gc::set_debug(gc::DebugFlags::SAVEALL);
        drop(ring(drops, 2));
        assert_eq!(gc::collect(), 2);
        let r = ring(drops, 3);
        Box::new(move || drop(r))
    });
    assert_eq!(drops.load(SeqCst), 5);
}

#[derive(Trace)]
struct SyncNode {
    next: std::sync::Mutex<Option<ouro::sync::Gc<SyncNode>>>,
    #[trace(skip)]
    _count: Counted,
}

fn sync_handles_at_exit(order: Order, drops: &'static AtomicUsize) {
    at_thread_exit(order, move || {
        let held = ouro::sync::Gc::new(Counted(drops));
        let w = ouro::sync::Gc::downgrade(&held);
        Box::new(move || {
            store(ouro::sync::Gc::new(Counted(drops)));
            drop(ouro::sync::Gc::new(Counted(drops)));
            drop(held);
            assert!(w.upgrade().is_none());
            store(w);
        })
    });
    assert_eq!(drops.load(SeqCst), 3);
}

fn sync_cycle_dropped_at_exit(order: Order, drops: &'static AtomicUsize) {
    at_thread_exit(order, move || {
        let a = ouro::sync::Gc::new(SyncNode {
            next: std::sync::Mutex::new(None),
            _count: Counted(drops),
        });
        let b = ouro::sync::Gc::new(SyncNode {
            next: std::sync::Mutex::new(Some(a.clone())),
            _count: Counted(drops),
        });
        *a.next.lock().unwrap() = Some(b);
        Box::new(move || {
            drop(a);
            let c = ouro::sync::Gc::new(SyncNode {
                next: std::sync::Mutex::new(None),
                _count: Counted(drops),
            });
            *c.next.lock().unwrap() = Some(c.clone());
        })
    });
    ouro::sync::gc::collect();
    assert_eq!(drops.load(SeqCst), 3);
}
