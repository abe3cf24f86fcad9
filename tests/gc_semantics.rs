//! The gc module's semantics, from Python's `gc` documentation and the
//! cases CPython's own `gc` tests cover, written once and run against both
//! heaps: `mod local` (`ouro::gc`, `ouro::Gc`) and `mod shared`
//! (`ouro::sync::gc`, `ouro::sync::Gc`).
//!
//! The cases live in the `semantic_suite!` macro; each heap module supplies
//! `Gc`, `Weak`, `gc`, `heap()` (takes the heap for one test: automatic
//! collection off, no debug flags, nothing left from earlier tests) and
//! `settle()` (waits until what a collection claimed has been dropped).
//! After the suite, each heap module has the few tests of what only that
//! heap does (an exact allocation-triggered collection on the thread-local
//! heap; a `Drop` that collects during a collection on the process-wide
//! one).
//!
//! The thread-local heap is the test thread's own. The process-wide heap is
//! shared by every test of this binary: its tests run one at a time (a
//! lock), and each asserts on its own objects, on the value a collection it
//! ran returns, or on differences of the statistics.

/// Counts the drops of the values it is part of.
struct Tally(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Tally {
    fn drop(&mut self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A drop counter and the `Tally`s that feed it.
#[derive(Clone, Default)]
struct Drops(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Drops {
    fn tally(&self) -> Tally {
        Tally(self.0.clone())
    }

    fn count(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The lines the collectors logged (target `ouro::gc`), with the thread
/// that logged them: the thread-local heaps' tests run in parallel, and
/// addresses are reused across threads.
static LOG: std::sync::Mutex<Vec<(std::thread::ThreadId, String)>> =
    std::sync::Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.target() == "ouro::gc"
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            lock(&LOG).push((std::thread::current().id(), r.args().to_string()));
        }
    }
    fn flush(&self) {}
}

/// Installs the capturing logger (once per process).
fn capture_log() {
    let _ = log::set_logger(&Capture);
    log::set_max_level(log::LevelFilter::Info);
}

/// The lines this thread logged.
fn logged_here() -> Vec<String> {
    let me = std::thread::current().id();
    lock(&LOG)
        .iter()
        .filter(|(t, _)| *t == me)
        .map(|(_, l)| l.clone())
        .collect()
}

/// The lines this thread logged about the object at `addr`.
fn logged_naming(addr: usize) -> Vec<String> {
    let tag = format!("@{addr:#x}>");
    logged_here()
        .into_iter()
        .filter(|l| l.ends_with(&tag))
        .collect()
}

/// The suite; expanded once per heap.
macro_rules! semantic_suite {
    () => {
        use std::collections::HashMap;
        use std::sync::{Arc, Mutex};

        use ouro::{Finalize, Trace};

        use super::{Drops, Tally, lock};

        /// A Python-like value: lists, tuples and dicts hold values, and
        /// any of them can close a cycle.
        #[derive(Trace)]
        #[allow(dead_code)]
        enum Value {
            Int(i64),
            List(Gc<List>),
            Tuple(Gc<Tuple>),
            Dict(Gc<Dict>),
            Instance(Gc<Instance>),
        }

        #[derive(Trace)]
        struct List {
            items: Mutex<Vec<Value>>,
            #[trace(skip)]
            _tally: Tally,
        }

        #[derive(Trace)]
        struct Tuple {
            items: Vec<Value>,
            #[trace(skip)]
            _tally: Tally,
        }

        #[derive(Trace)]
        struct Dict {
            entries: Mutex<HashMap<String, Value>>,
            #[trace(skip)]
            _tally: Tally,
        }

        /// A class: it knows its instances (as a registry would).
        #[derive(Trace)]
        struct Class {
            instances: Mutex<Vec<Gc<Instance>>>,
            #[trace(skip)]
            _tally: Tally,
        }

        /// An instance: its class, and attributes.
        #[derive(Trace)]
        struct Instance {
            class: Option<Gc<Class>>,
            attrs: Mutex<HashMap<String, Value>>,
            #[trace(skip)]
            _tally: Tally,
        }

        fn list(d: &Drops) -> Gc<List> {
            Gc::new(List {
                items: Mutex::new(Vec::new()),
                _tally: d.tally(),
            })
        }

        fn dict(d: &Drops) -> Gc<Dict> {
            Gc::new(Dict {
                entries: Mutex::new(HashMap::new()),
                _tally: d.tally(),
            })
        }

        fn instance(d: &Drops, class: Option<Gc<Class>>) -> Gc<Instance> {
            Gc::new(Instance {
                class,
                attrs: Mutex::new(HashMap::new()),
                _tally: d.tally(),
            })
        }

        /// An object of a cycle whose finalizer records that it ran and,
        /// if asked, resurrects its peer (and so the cycle) into `saved`.
        #[derive(Trace)]
        #[trace(finalize)]
        struct Fin {
            value: u32,
            #[trace(skip)]
            log: Arc<FinLog>,
            #[trace(skip)]
            _tally: Tally,
            peer: Mutex<Option<Gc<Fin>>>,
            /// Something only this object holds: alive as long as it is.
            child: Mutex<Option<Gc<List>>>,
        }

        #[derive(Default)]
        struct FinLog {
            finalized: Mutex<Vec<u32>>,
            resurrect: std::sync::atomic::AtomicBool,
            saved: Mutex<Vec<Gc<Fin>>>,
        }

        impl FinLog {
            fn finalized(&self) -> Vec<u32> {
                let mut v = lock(&self.finalized).clone();
                v.sort_unstable();
                v
            }

            fn set_resurrect(&self, on: bool) {
                self.resurrect
                    .store(on, std::sync::atomic::Ordering::SeqCst);
            }

            fn take_saved(&self) -> Vec<Gc<Fin>> {
                std::mem::take(&mut *lock(&self.saved))
            }
        }

        impl Finalize for Fin {
            fn finalize(&self) {
                lock(&self.log.finalized).push(self.value);
                if self.log.resurrect.load(std::sync::atomic::Ordering::SeqCst) {
                    let peer = lock(&self.peer).clone().expect("the cycle is intact");
                    lock(&self.log.saved).push(peer);
                }
            }
        }

        fn fin(d: &Drops, log: &Arc<FinLog>, value: u32) -> Gc<Fin> {
            Gc::new(Fin {
                value,
                log: log.clone(),
                _tally: d.tally(),
                peer: Mutex::new(None),
                child: Mutex::new(None),
            })
        }

        /// A two-object cycle of finalizable objects `value <-> value + 1`.
        fn fin_pair(d: &Drops, log: &Arc<FinLog>, value: u32) -> (Gc<Fin>, Gc<Fin>) {
            let (a, b) = (fin(d, log, value), fin(d, log, value + 1));
            *lock(&a.peer) = Some(b.clone());
            *lock(&b.peer) = Some(a.clone());
            (a, b)
        }

        /// A two-list cycle `a <-> b`, given up; weak handles to both.
        fn list_pair(d: &Drops) -> (Weak<List>, Weak<List>) {
            let (a, b) = (list(d), list(d));
            lock(&a.items).push(Value::List(b.clone()));
            lock(&b.items).push(Value::List(a.clone()));
            (Gc::downgrade(&a), Gc::downgrade(&b))
        }

        fn addr<T>(g: &Gc<T>) -> usize {
            Gc::as_ptr(g) as usize
        }

        fn addresses(infos: &[gc::ObjectInfo]) -> Vec<usize> {
            let mut v: Vec<usize> = infos.iter().map(|o| o.address()).collect();
            v.sort_unstable();
            v
        }

        /// The recorded callback infos, in order.
        fn record_callbacks() -> (gc::CallbackId, Arc<Mutex<Vec<gc::CallbackInfo>>>) {
            let seen = Arc::new(Mutex::new(Vec::new()));
            let sink = seen.clone();
            let id = gc::add_callback(move |info| lock(&sink).push(*info));
            (id, seen)
        }

        #[test]
        fn list_that_contains_itself_is_collected() {
            let _heap = heap();
            let d = Drops::default();
            let l = list(&d);
            lock(&l.items).push(Value::List(l.clone()));
            assert_eq!(Gc::strong_count(&l), 2);
            let w = Gc::downgrade(&l);
            drop(l);
            assert!(w.upgrade().is_some(), "the cycle keeps itself alive");
            assert_eq!(d.count(), 0);
            assert_eq!(gc::collect(), 1);
            settle();
            assert!(w.upgrade().is_none());
            assert_eq!(d.count(), 1);
            assert_eq!(gc::collect(), 0);
        }

        #[test]
        fn dict_that_contains_itself_is_collected() {
            let _heap = heap();
            let d = Drops::default();
            let m = dict(&d);
            lock(&m.entries).insert("self".into(), Value::Dict(m.clone()));
            let w = Gc::downgrade(&m);
            drop(m);
            assert_eq!(gc::collect(), 1);
            settle();
            assert!(w.upgrade().is_none());
            assert_eq!(d.count(), 1);
        }

        #[test]
        fn tuple_inside_a_list_that_it_contains_is_collected() {
            let _heap = heap();
            let d = Drops::default();
            let l = list(&d);
            let t = Gc::new(Tuple {
                items: vec![Value::Int(1), Value::List(l.clone())],
                _tally: d.tally(),
            });
            lock(&l.items).push(Value::Tuple(t));
            drop(l);
            assert_eq!(gc::collect(), 2);
            settle();
            assert_eq!(d.count(), 2);
        }

        #[test]
        fn class_and_its_instances_are_collected_together() {
            let _heap = heap();
            let d = Drops::default();
            let class = Gc::new(Class {
                instances: Mutex::new(Vec::new()),
                _tally: d.tally(),
            });
            for _ in 0..3 {
                let i = instance(&d, Some(class.clone()));
                lock(&class.instances).push(i);
            }
            let w = Gc::downgrade(&class);
            drop(class);
            assert_eq!(gc::collect(), 4);
            settle();
            assert!(w.upgrade().is_none());
            assert_eq!(d.count(), 4);
        }

        #[test]
        fn instance_whose_attribute_is_itself_is_collected() {
            let _heap = heap();
            let d = Drops::default();
            let i = instance(&d, None);
            lock(&i.attrs).insert("me".into(), Value::Instance(i.clone()));
            drop(i);
            assert_eq!(gc::collect(), 1);
            settle();
            assert_eq!(d.count(), 1);
        }

        #[test]
        fn instance_cycle_through_a_dict_attribute_is_collected() {
            let _heap = heap();
            let d = Drops::default();
            let i = instance(&d, None);
            let m = dict(&d);
            lock(&m.entries).insert("owner".into(), Value::Instance(i.clone()));
            lock(&i.attrs).insert("dict".into(), Value::Dict(m));
            drop(i);
            assert_eq!(gc::collect(), 2);
            settle();
            assert_eq!(d.count(), 2);
        }

        #[test]
        fn acyclic_objects_are_freed_by_reference_counting_alone() {
            let _heap = heap();
            let d = Drops::default();
            let (a, b) = (list(&d), list(&d));
            lock(&a.items).push(Value::List(b.clone()));
            drop(b);
            assert_eq!(d.count(), 0, "a still holds b");
            drop(a);
            assert_eq!(d.count(), 2, "freed when the last handle went");
            assert_eq!(gc::collect(), 0, "nothing left for the collector");
        }

        #[test]
        fn two_object_cycle_is_collected() {
            let _heap = heap();
            let d = Drops::default();
            let (a, b) = (list(&d), list(&d));
            lock(&a.items).push(Value::List(b.clone()));
            lock(&b.items).push(Value::List(a.clone()));
            let w = Gc::downgrade(&a);
            drop((a, b));
            assert_eq!(d.count(), 0);
            assert_eq!(gc::collect(), 2);
            settle();
            assert_eq!(d.count(), 2);
            assert!(w.upgrade().is_none());
        }

        #[test]
        fn reachable_cycle_survives_until_released() {
            let _heap = heap();
            let d = Drops::default();
            let (a, b) = (list(&d), list(&d));
            lock(&a.items).push(Value::List(b.clone()));
            lock(&b.items).push(Value::List(a.clone()));
            assert_eq!(gc::collect(), 0);
            assert_eq!(gc::collect(), 0);
            settle();
            assert_eq!(d.count(), 0);
            let first = match &lock(&a.items)[0] {
                Value::List(l) => Gc::ptr_eq(l, &b),
                _ => false,
            };
            assert!(first, "still readable");
            drop(b);
            assert_eq!(gc::collect(), 0, "a still reaches b");
            settle();
            assert_eq!(d.count(), 0);
            drop(a);
            assert_eq!(gc::collect(), 2);
            settle();
            assert_eq!(d.count(), 2);
        }

        #[test]
        fn collect_returns_the_number_of_unreachable_objects() {
            let _heap = heap();
            let d = Drops::default();
            let before = gc::get_stats();
            let _ = list_pair(&d);
            let l = list(&d);
            lock(&l.items).push(Value::List(l.clone()));
            drop(l);
            let (a, b, c) = (list(&d), list(&d), list(&d));
            lock(&a.items).push(Value::List(b.clone()));
            lock(&b.items).push(Value::List(c.clone()));
            lock(&c.items).push(Value::List(a.clone()));
            drop((a, b, c));
            assert_eq!(gc::collect(), 6);
            settle();
            assert_eq!(d.count(), 6);
            let after = gc::get_stats();
            assert_eq!(after[2].collections, before[2].collections + 1);
            assert_eq!(after[2].collected, before[2].collected + 6);
            assert_eq!(after[2].uncollectable, before[2].uncollectable);
            assert_eq!(gc::collect(), 0, "a second collection finds nothing");
        }

        #[test]
        fn explicit_collection_works_while_automatic_collection_is_off() {
            let _heap = heap();
            gc::disable();
            assert!(!gc::is_enabled());
            let d = Drops::default();
            let _ = list_pair(&d);
            assert_eq!(gc::collect(), 2);
            settle();
            assert_eq!(d.count(), 2);
            gc::enable();
            assert!(gc::is_enabled());
            gc::disable();
            assert!(!gc::is_enabled());
        }

        #[test]
        fn disabled_collector_does_not_collect_on_allocation() {
            let _heap = heap();
            let old = gc::get_threshold();
            gc::set_threshold([1, 1, 1]);
            let before = gc::get_stats();
            let d = Drops::default();
            for _ in 0..10 {
                let _ = list_pair(&d);
            }
            assert_eq!(gc::get_stats(), before, "no collection ran");
            assert_eq!(d.count(), 0);
            gc::set_threshold(old);
            assert_eq!(gc::collect(), 20);
            settle();
            assert_eq!(d.count(), 20);
        }

        #[test]
        fn thresholds_are_kept_as_set() {
            let _heap = heap();
            let old = gc::get_threshold();
            gc::set_threshold([1_234, 5, 6]);
            assert_eq!(gc::get_threshold(), [1_234, 5, 6]);
            gc::set_threshold([0, 10, 10]);
            assert_eq!(gc::get_threshold(), [0, 10, 10]);
            gc::set_threshold(old);
            assert_eq!(gc::get_threshold(), old);
        }

        #[test]
        fn get_count_counts_tracked_allocations_since_the_last_young_collection() {
            let _heap = heap();
            gc::collect();
            settle();
            assert_eq!(
                gc::get_count(),
                [0, 0, 0],
                "a full collection resets the counts"
            );
            let d = Drops::default();
            // Under Miri, still more than a batch of the process-wide heap.
            let n = if cfg!(miri) { 40 } else { 100 };
            let kept: Vec<Gc<List>> = (0..n).map(|_| list(&d)).collect();
            let young = gc::get_count()[0];
            if EXACT_YOUNG_COUNT {
                assert_eq!(young, n);
            } else {
                // Counted in batches: some, and no more than were made.
                assert!(young > 0 && young <= n, "{young}");
            }
            // Objects the collector does not track are not counted.
            let untracked: Vec<Gc<u64>> = (0..n as u64).map(Gc::new).collect();
            assert_eq!(gc::get_count()[0], young);
            gc::collect_generation(0);
            assert_eq!(gc::get_count()[0], 0, "a young collection resets it");
            drop((kept, untracked));
        }

        #[test]
        fn collecting_a_generation_counts_in_the_next_one() {
            let _heap = heap();
            let d = Drops::default();
            let _kept = list(&d);
            gc::collect();
            gc::collect_generation(0);
            assert_eq!(gc::get_count(), [0, 1, 0]);
            gc::collect_generation(1);
            assert_eq!(gc::get_count(), [0, 0, 1]);
            gc::collect_generation(2);
            assert_eq!(gc::get_count(), [0, 0, 0]);
        }

        #[test]
        #[should_panic]
        fn collecting_a_generation_past_the_oldest_panics() {
            let _heap = heap();
            gc::collect_generation(3);
        }

        #[test]
        fn survivors_move_to_older_generations() {
            let _heap = heap();
            let d = Drops::default();
            let a = list(&d);
            let generation_of = |a: &Gc<List>| {
                gc::get_objects(None)
                    .iter()
                    .find(|o| o.address() == addr(a))
                    .map(|o| o.generation())
                    .expect("a tracked object is listed")
            };
            assert_eq!(generation_of(&a), Some(0));
            assert!(addresses(&gc::get_objects(Some(0))).contains(&addr(&a)));
            gc::collect_generation(0);
            assert_eq!(generation_of(&a), Some(1));
            assert!(addresses(&gc::get_objects(Some(1))).contains(&addr(&a)));
            assert!(!addresses(&gc::get_objects(Some(0))).contains(&addr(&a)));
            gc::collect_generation(1);
            assert_eq!(generation_of(&a), Some(2));
            gc::collect();
            assert_eq!(generation_of(&a), Some(2), "the oldest generation keeps it");
        }

        #[test]
        fn object_info_describes_the_value() {
            let _heap = heap();
            let d = Drops::default();
            let a = list(&d);
            let extra = a.clone();
            let info = gc::get_objects(None)
                .into_iter()
                .find(|o| o.address() == addr(&a))
                .expect("listed");
            assert_eq!(Gc::strong_count(&a), 3, "a, extra and the info's own");
            assert_eq!(
                info.refcount(),
                2,
                "the info's own reference is not counted"
            );
            assert!(info.type_name().ends_with("List"), "{}", info.type_name());
            let back = info.downcast::<List>().expect("a List");
            assert!(Gc::ptr_eq(&back, &a));
            assert!(info.downcast::<Dict>().is_none());
            drop((back, extra));
        }

        #[test]
        fn get_referents_lists_the_handles_an_object_holds() {
            let _heap = heap();
            let d = Drops::default();
            let (b, c) = (list(&d), dict(&d));
            let a = list(&d);
            lock(&a.items).push(Value::List(b.clone()));
            lock(&a.items).push(Value::Int(3));
            lock(&a.items).push(Value::Dict(c.clone()));
            let mut expected = vec![addr(&b), addr(&c)];
            expected.sort_unstable();
            assert_eq!(addresses(&gc::get_referents(&a)), expected);
            assert!(
                gc::get_referents(&b).is_empty(),
                "an empty list holds nothing"
            );
        }

        #[test]
        fn get_referrers_finds_the_objects_holding_a_handle() {
            let _heap = heap();
            let d = Drops::default();
            let target = list(&d);
            let (a, b) = (list(&d), dict(&d));
            lock(&a.items).push(Value::List(target.clone()));
            lock(&b.entries).insert("t".into(), Value::List(target.clone()));
            let _bystander = list(&d);
            let mut expected = vec![addr(&a), addr(&b)];
            expected.sort_unstable();
            assert_eq!(addresses(&gc::get_referrers(&target)), expected);
            assert!(gc::get_referrers(&a).is_empty());
        }

        #[test]
        fn only_objects_that_can_hold_handles_are_tracked() {
            let _heap = heap();
            let d = Drops::default();
            assert!(!Gc::is_tracked(&Gc::new(1_i64)));
            assert!(!Gc::is_tracked(&Gc::new(String::from("text"))));
            assert!(!Gc::is_tracked(&Gc::new(vec![1_u8, 2, 3])));
            // A container is tracked even while empty.
            assert!(Gc::is_tracked(&list(&d)));
            assert!(Gc::is_tracked(&dict(&d)));
            assert!(Gc::is_tracked(&instance(&d, None)));
        }

        #[test]
        fn frozen_objects_are_left_alone_until_unfrozen() {
            let _heap = heap();
            let d = Drops::default();
            let frozen_before = gc::get_freeze_count();
            let (a, b) = (list(&d), list(&d));
            lock(&a.items).push(Value::List(b.clone()));
            lock(&b.items).push(Value::List(a.clone()));
            gc::freeze();
            assert_eq!(gc::get_freeze_count(), frozen_before + 2);
            assert_eq!(gc::get_count()[0], 0, "the young generation is empty");
            for g in 0..3 {
                assert!(!addresses(&gc::get_objects(Some(g))).contains(&addr(&a)));
            }
            assert!(
                !addresses(&gc::get_objects(None)).contains(&addr(&a)),
                "every listing leaves frozen objects out, as in Python"
            );
            let wa = Gc::downgrade(&a);
            drop((a, b));
            assert_eq!(gc::collect(), 0, "a frozen cycle is not scanned");
            settle();
            assert!(wa.upgrade().is_some());
            assert_eq!(d.count(), 0);
            gc::unfreeze();
            assert_eq!(gc::get_freeze_count(), 0);
            let a = wa.upgrade().unwrap();
            assert!(addresses(&gc::get_objects(Some(2))).contains(&addr(&a)));
            assert!(addresses(&gc::get_objects(None)).contains(&addr(&a)));
            drop(a);
            assert_eq!(gc::collect(), 2);
            settle();
            assert_eq!(d.count(), 2);
        }

        #[test]
        fn callbacks_see_start_and_stop_with_the_collection_info() {
            let _heap = heap();
            let d = Drops::default();
            let (id, seen) = record_callbacks();
            let _ = list_pair(&d);
            assert_eq!(gc::collect(), 2);
            settle();
            let infos = lock(&seen).clone();
            assert_eq!(infos.len(), 2, "{infos:?}");
            let (start, stop) = (infos[0], infos[1]);
            assert_eq!(start.phase, gc::Phase::Start);
            assert_eq!(start.generation, 2);
            assert_eq!((start.collected, start.uncollectable), (0, 0));
            assert_eq!(start.duration, std::time::Duration::ZERO);
            assert_eq!(stop.phase, gc::Phase::Stop);
            assert_eq!(stop.generation, 2);
            assert_eq!((stop.collected, stop.uncollectable), (2, 0));
            assert!(gc::remove_callback(id));
            assert!(!gc::remove_callback(id), "already removed");
            gc::collect();
            assert_eq!(lock(&seen).len(), 2, "a removed callback is not called");
        }

        #[test]
        fn callbacks_are_told_the_generation_collected() {
            let _heap = heap();
            let (id, seen) = record_callbacks();
            gc::collect_generation(0);
            gc::collect_generation(1);
            let generations: Vec<(gc::Phase, usize)> = lock(&seen)
                .iter()
                .map(|i| (i.phase, i.generation))
                .collect();
            assert_eq!(
                generations,
                [
                    (gc::Phase::Start, 0),
                    (gc::Phase::Stop, 0),
                    (gc::Phase::Start, 1),
                    (gc::Phase::Stop, 1),
                ]
            );
            assert!(gc::remove_callback(id));
        }

        #[test]
        fn callbacks_run_in_the_order_they_were_added() {
            let _heap = heap();
            let order = Arc::new(Mutex::new(Vec::new()));
            let ids: Vec<gc::CallbackId> = (0..3)
                .map(|n| {
                    let order = order.clone();
                    gc::add_callback(move |info| {
                        if info.phase == gc::Phase::Start {
                            lock(&order).push(n);
                        }
                    })
                })
                .collect();
            gc::collect();
            assert_eq!(*lock(&order), [0, 1, 2]);
            for id in ids {
                assert!(gc::remove_callback(id));
            }
        }

        #[test]
        fn saveall_keeps_unreachable_objects_in_garbage() {
            let _heap = heap();
            let d = Drops::default();
            assert!(gc::garbage().is_empty());
            gc::set_debug(gc::DebugFlags::SAVEALL);
            let (wa, wb) = list_pair(&d);
            let mut expected = vec![addr(&wa.upgrade().unwrap()), addr(&wb.upgrade().unwrap())];
            assert_eq!(gc::collect(), 2, "kept objects count as collected");
            settle();
            gc::set_debug(gc::DebugFlags::empty());
            assert_eq!(d.count(), 0);
            // Weak handles are cleared before the objects are kept, as
            // CPython clears weak references to all unreachable objects.
            assert!(wa.upgrade().is_none() && wb.upgrade().is_none());
            let kept = addresses(&gc::garbage());
            expected.sort_unstable();
            assert_eq!(kept, expected);
            let readable = gc::garbage()[0].downcast::<List>().expect("a List");
            assert_eq!(lock(&readable.items).len(), 1);
            drop(readable);
            gc::clear_garbage();
            assert!(gc::garbage().is_empty());
            assert_eq!(gc::collect(), 2, "released: collected again");
            settle();
            assert_eq!(d.count(), 2);
        }

        #[test]
        fn garbage_stays_empty_without_saveall() {
            let _heap = heap();
            let d = Drops::default();
            let _ = list_pair(&d);
            assert_eq!(gc::collect(), 2);
            settle();
            assert!(gc::garbage().is_empty());
        }

        #[test]
        fn cycle_with_finalizers_is_finalized_once_and_freed() {
            let _heap = heap();
            let d = Drops::default();
            let log = Arc::new(FinLog::default());
            let (a, b) = fin_pair(&d, &log, 1);
            drop((a, b));
            assert_eq!(gc::collect(), 2);
            settle();
            assert_eq!(log.finalized(), [1, 2]);
            assert_eq!(d.count(), 2);
            assert!(gc::garbage().is_empty(), "finalizers do not make garbage");
        }

        #[test]
        fn resurrected_cycle_lives_and_is_not_finalized_again() {
            let _heap = heap();
            let d = Drops::default();
            let log = Arc::new(FinLog::default());
            log.set_resurrect(true);
            let (a, b) = fin_pair(&d, &log, 1);
            let child = list(&d);
            *lock(&a.child) = Some(child);
            drop((a, b));
            gc::collect();
            settle();
            assert_eq!(log.finalized(), [1, 2]);
            assert_eq!(d.count(), 0, "resurrected: nothing dropped");
            let saved = log.take_saved();
            assert_eq!(saved.len(), 2);
            // What the resurrected objects reach is alive and intact.
            for s in &saved {
                let peer = lock(&s.peer).clone().expect("intact");
                assert_ne!(peer.value, s.value);
            }
            let one = saved.iter().find(|s| s.value == 1).unwrap();
            assert!(lock(&one.child).is_some());
            log.set_resurrect(false);
            drop(saved);
            gc::collect();
            settle();
            assert_eq!(log.finalized(), [1, 2], "a finalizer runs once per object");
            assert_eq!(d.count(), 3, "freed the second time, with its child");
        }

        /// A resurrection in a collection keeps that collection's other
        /// unreachable objects for one more collection (CPython 3.9 and
        /// later frees them at once); they are finalized once, and the next
        /// collection frees them while the resurrected cycle lives on.
        #[test]
        fn resurrection_delays_other_garbage_by_one_collection() {
            let _heap = heap();
            let d = Drops::default();
            let resurrecting = Arc::new(FinLog::default());
            resurrecting.set_resurrect(true);
            let plain = Arc::new(FinLog::default());
            let kept = Drops::default();
            drop(fin_pair(&kept, &resurrecting, 1));
            drop(fin_pair(&d, &plain, 10));
            let _ = list_pair(&d);
            gc::collect();
            settle();
            assert_eq!(resurrecting.finalized(), [1, 2]);
            assert_eq!(plain.finalized(), [10, 11]);
            assert_eq!(d.count(), 0, "kept for one collection");
            resurrecting.set_resurrect(false);
            let saved = resurrecting.take_saved();
            gc::collect();
            settle();
            assert_eq!(d.count(), 4, "the other cycles are freed next");
            assert_eq!(plain.finalized(), [10, 11], "not finalized again");
            assert_eq!(kept.count(), 0, "the resurrected cycle lives");
            drop(saved);
            gc::collect();
            settle();
            assert_eq!(kept.count(), 2);
            assert_eq!(resurrecting.finalized(), [1, 2]);
        }

        #[test]
        fn weak_handles_to_collected_objects_are_cleared() {
            let _heap = heap();
            let d = Drops::default();
            let log = Arc::new(FinLog::default());
            let (a, b) = fin_pair(&d, &log, 1);
            let (wa, wb) = (Gc::downgrade(&a), Gc::downgrade(&b));
            drop((a, b));
            gc::collect();
            settle();
            assert!(wa.upgrade().is_none());
            assert!(wb.upgrade().is_none());
        }

        /// `a -> b`.
        fn link(a: &Gc<List>, b: &Gc<List>) {
            lock(&a.items).push(Value::List(b.clone()));
        }

        /// A list that holds itself.
        fn self_cycle(d: &Drops) -> Gc<List> {
            let l = list(d);
            link(&l, &l);
            l
        }

        /// A value whose `trace` is not promised structural: a cycle
        /// through it is reported, never freed.
        struct Opaque {
            me: Mutex<Option<Gc<Opaque>>>,
        }

        impl Trace for Opaque {
            fn trace(&self, v: &mut ouro::Visitor<'_>) {
                self.me.trace(v);
            }
        }

        #[test]
        fn object_infos_hold_their_objects() {
            let _heap = heap();
            let d = Drops::default();
            let a = list(&d);
            let (w, at) = (Gc::downgrade(&a), addr(&a));
            let untracked = Gc::new(5_u64);
            let infos = gc::get_objects(None);
            assert!(
                !addresses(&infos).contains(&addr(&untracked)),
                "only tracked objects are listed"
            );
            drop(a);
            settle();
            assert_eq!(d.count(), 0, "the list holds a reference, as Python's does");
            assert!(addresses(&gc::get_objects(None)).contains(&at));
            drop(infos);
            settle();
            assert_eq!(d.count(), 1);
            assert!(w.upgrade().is_none());
            assert!(!addresses(&gc::get_objects(None)).contains(&at));
        }

        #[test]
        fn introspection_keeps_no_reference_behind() {
            let _heap = heap();
            let d = Drops::default();
            let (a, b) = (list(&d), self_cycle(&d));
            link(&a, &b);
            let mut expected = vec![addr(&a), addr(&b)];
            expected.sort_unstable();
            assert_eq!(
                addresses(&gc::get_referrers(&b)),
                expected,
                "an object that holds itself is its own referrer"
            );
            assert_eq!(addresses(&gc::get_referents(&b)), [addr(&b)]);
            assert!(gc::get_referents(&Gc::new(1_u8)).is_empty());
            let _ = gc::get_objects(None);
            let mut dot = Vec::new();
            gc::write_dot(&mut dot).unwrap();
            assert_eq!(Gc::strong_count(&b), 3, "b, a's and its own");
            assert_eq!(Gc::strong_count(&a), 1);
            lock(&b.items).clear();
        }

        #[test]
        fn object_info_walks_referents_and_referrers_without_downcasts() {
            let _heap = heap();
            let d = Drops::default();
            let (l, m) = (list(&d), dict(&d));
            link(&l, &l);
            lock(&l.items).push(Value::Dict(m.clone()));
            lock(&m.entries).insert("back".into(), Value::List(l.clone()));
            // l -> m -> l by `ObjectInfo` alone.
            let there = gc::get_referents(&m).remove(0);
            assert_eq!(there.address(), addr(&l));
            assert!(there.type_name().ends_with("List"), "{}", there.type_name());
            let next = there.referents();
            let mut expected = vec![addr(&l), addr(&m)];
            expected.sort_unstable();
            assert_eq!(addresses(&next), expected);
            let dict_info = next.iter().find(|o| o.address() == addr(&m)).unwrap();
            assert!(dict_info.type_name().ends_with("Dict"));
            assert_eq!(addresses(&dict_info.referrers()), [addr(&l)]);
            assert_eq!(addresses(&there.referrers()), expected);
            assert!(Gc::ptr_eq(&dict_info.downcast::<Dict>().unwrap(), &m));
            drop((there, next, l, m));
            assert_eq!(gc::collect(), 2);
            settle();
            assert_eq!(d.count(), 2);
        }

        #[test]
        fn callbacks_may_use_the_gc_module() {
            let _heap = heap();
            let d = Drops::default();
            let kept = list(&d);
            let want = addr(&kept);
            let calls = Arc::new(Mutex::new(Vec::new()));
            let me = Arc::new(Mutex::new(None::<gc::CallbackId>));
            let added = Arc::new(Mutex::new(None::<gc::CallbackId>));
            let (c, me2, added2) = (calls.clone(), me.clone(), added.clone());
            let first = gc::add_callback(move |info| {
                // None of these waits for the collection that calls it.
                let inner = gc::collect();
                let listed = addresses(&gc::get_objects(None)).contains(&want);
                let (count, stats) = (gc::get_count(), gc::get_stats());
                lock(&c).push((info.phase, inner, listed, count.len(), stats.len()));
                if info.phase == gc::Phase::Stop {
                    // Add one for later, and remove ourselves.
                    let c2 = c.clone();
                    let id = gc::add_callback(move |i| lock(&c2).push((i.phase, 99, false, 0, 0)));
                    *lock(&added2) = Some(id);
                    assert!(gc::remove_callback(lock(&me2).unwrap()));
                }
            });
            *lock(&me) = Some(first);
            gc::collect();
            assert_eq!(
                *lock(&calls),
                [
                    (gc::Phase::Start, 0, true, 3, 3),
                    (gc::Phase::Stop, 0, true, 3, 3)
                ],
                "no collection inside a callback"
            );
            lock(&calls).clear();
            gc::collect();
            assert_eq!(
                *lock(&calls),
                [
                    (gc::Phase::Start, 99, false, 0, 0),
                    (gc::Phase::Stop, 99, false, 0, 0)
                ],
                "only the added callback runs now"
            );
            assert!(!gc::remove_callback(first));
            let added = lock(&added).take().unwrap();
            assert!(gc::remove_callback(added));
            drop(kept);
        }

        #[test]
        fn a_panicking_callback_leaves_the_heap_consistent() {
            let _heap = heap();
            let id = gc::add_callback(|info| {
                if info.phase == gc::Phase::Stop {
                    panic!("callback failed")
                }
            });
            let d = Drops::default();
            drop(self_cycle(&d));
            let p = std::panic::catch_unwind(gc::collect).unwrap_err();
            assert_eq!(p.downcast_ref::<&str>(), Some(&"callback failed"));
            settle();
            assert_eq!(d.count(), 1, "the collection completed");
            assert!(gc::remove_callback(id));
            assert_eq!(gc::collect(), 0);
        }

        /// A callback that removes itself, and whose captured state panics
        /// when dropped: the panic comes out of `collect()` once the
        /// collection is done, and the callback is gone.
        #[test]
        fn panic_dropping_a_removed_callback_comes_out_of_collect() {
            struct PanicsOnDrop;
            impl Drop for PanicsOnDrop {
                fn drop(&mut self) {
                    panic!("callback state dropped");
                }
            }
            let _heap = heap();
            let me = Arc::new(Mutex::new(None));
            let calls = Arc::new(Mutex::new(0));
            let (me2, calls2, state) = (me.clone(), calls.clone(), PanicsOnDrop);
            let id = gc::add_callback(move |_| {
                let _state = &state;
                *lock(&calls2) += 1;
                if let Some(id) = *lock(&me2) {
                    assert!(gc::remove_callback(id));
                }
            });
            *lock(&me) = Some(id);
            let d = Drops::default();
            let _ = list_pair(&d);
            let p = std::panic::catch_unwind(gc::collect).unwrap_err();
            assert_eq!(p.downcast_ref::<&str>(), Some(&"callback state dropped"));
            assert_eq!(*lock(&calls), 1);
            settle();
            assert_eq!(d.count(), 2, "the collection went on and freed the cycle");
            gc::collect();
            assert_eq!(*lock(&calls), 1);
            assert!(!gc::remove_callback(id));
        }

        #[test]
        fn saveall_counts_kept_objects_as_collected_and_keeps_only_them() {
            let _heap = heap();
            let d = Drops::default();
            let live = self_cycle(&d);
            let stops = Arc::new(Mutex::new(Vec::new()));
            let seen = stops.clone();
            let id = gc::add_callback(move |i| {
                if i.phase == gc::Phase::Stop {
                    lock(&seen).push((i.collected, i.uncollectable));
                }
            });
            gc::set_debug(gc::DebugFlags::SAVEALL);
            drop(list(&d)); // freed by counting, never garbage
            settle();
            assert_eq!(d.count(), 1);
            let _ = list_pair(&d);
            let before = gc::get_stats()[2];
            assert_eq!(gc::collect(), 2);
            settle();
            gc::set_debug(gc::DebugFlags::empty());
            assert!(gc::remove_callback(id));
            let after = gc::get_stats()[2];
            assert_eq!(
                (
                    after.collected - before.collected,
                    after.uncollectable - before.uncollectable
                ),
                (2, 0),
                "counted as collected, as CPython counts saved objects"
            );
            assert_eq!(*lock(&stops), [(2, 0)]);
            assert_eq!(d.count(), 1, "nothing freed");
            let kept = addresses(&gc::garbage());
            assert_eq!(kept.len(), 2);
            assert!(
                !kept.contains(&addr(&live)),
                "a reachable cycle is not kept"
            );
            gc::clear_garbage();
            assert_eq!(gc::collect(), 2);
            settle();
            assert_eq!(d.count(), 3);
            lock(&live.items).clear();
        }

        #[test]
        fn debug_flags_round_trip() {
            let _heap = heap();
            gc::set_debug(gc::DebugFlags::STATS | gc::DebugFlags::SAVEALL);
            assert_eq!(
                gc::get_debug(),
                gc::DebugFlags::STATS | gc::DebugFlags::SAVEALL
            );
            assert_eq!(
                format!("{:?}", gc::get_debug()),
                "DebugFlags(STATS | SAVEALL)"
            );
            gc::set_debug(gc::DebugFlags::empty());
            assert!(gc::get_debug().is_empty());
            assert_eq!(
                gc::DebugFlags::LEAK,
                gc::DebugFlags::COLLECTABLE
                    | gc::DebugFlags::UNCOLLECTABLE
                    | gc::DebugFlags::SAVEALL
            );
            assert_eq!(
                format!("{:?}", gc::DebugFlags::LEAK | gc::DebugFlags::STATS),
                "DebugFlags(STATS | COLLECTABLE | UNCOLLECTABLE | SAVEALL)"
            );
        }

        #[test]
        fn stats_flag_logs_one_line_per_collection() {
            let _heap = heap();
            super::capture_log();
            let d = Drops::default();
            let _ = list_pair(&d);
            gc::set_debug(gc::DebugFlags::STATS);
            gc::collect();
            gc::set_debug(gc::DebugFlags::empty());
            settle();
            let lines: Vec<String> = super::logged_here()
                .into_iter()
                .filter(|l| l.starts_with(STATS_PREFIX))
                .collect();
            assert_eq!(lines.len(), 1, "{lines:?}");
            let rest = lines[0]
                .strip_prefix(STATS_PREFIX)
                .and_then(|l| l.strip_prefix("generation 2: scanned "))
                .and_then(|l| l.split_once(", "))
                .map(|(_, r)| r)
                .unwrap_or_else(|| panic!("{lines:?}"));
            assert!(
                rest.starts_with("unreachable 2, collected 2, uncollectable 0, ")
                    && rest.ends_with(" ms"),
                "{lines:?}"
            );
        }

        /// A set its finalizers resurrect was found unreachable, and
        /// nothing of it was collected: the STATS line says so, the same on
        /// both heaps (the shared heap used to say "unreachable 0").
        #[test]
        fn stats_line_counts_a_resurrected_set_as_unreachable() {
            let _heap = heap();
            super::capture_log();
            let d = Drops::default();
            let log = Arc::new(FinLog::default());
            log.set_resurrect(true);
            let (a, b) = fin_pair(&d, &log, 1);
            drop((a, b));
            gc::set_debug(gc::DebugFlags::STATS);
            gc::collect();
            gc::set_debug(gc::DebugFlags::empty());
            settle();
            log.set_resurrect(false);
            drop(log.take_saved());
            gc::collect();
            settle();
            let lines: Vec<String> = super::logged_here()
                .into_iter()
                .filter(|l| l.starts_with(STATS_PREFIX))
                .collect();
            assert_eq!(lines.len(), 1, "{lines:?}");
            assert!(
                lines[0].contains(", unreachable 2, collected 0, uncollectable 0, "),
                "{lines:?}"
            );
            assert_eq!(d.count(), 2, "freed when it died again");
        }

        #[test]
        fn collectable_flag_logs_one_line_per_object_found() {
            let _heap = heap();
            super::capture_log();
            let d = Drops::default();
            let (a, b) = (list(&d), list(&d));
            link(&a, &b);
            link(&b, &a);
            let (pa, pb) = (addr(&a), addr(&b));
            drop((a, b));
            gc::set_debug(gc::DebugFlags::COLLECTABLE);
            assert_eq!(gc::collect(), 2);
            gc::set_debug(gc::DebugFlags::empty());
            settle();
            assert_eq!(d.count(), 2, "freed as usual");
            let name = std::any::type_name::<List>();
            for p in [pa, pb] {
                assert_eq!(
                    super::logged_naming(p),
                    [format!("collectable <{name} @{p:#x}>")],
                    "one line for the object at {p:#x}"
                );
            }
        }

        #[test]
        fn leak_flags_log_and_keep_collectable_and_uncollectable_objects() {
            let _heap = heap();
            super::capture_log();
            let d = Drops::default();
            let a = self_cycle(&d);
            let o = Gc::new(Opaque {
                me: Mutex::new(None),
            });
            *lock(&o.me) = Some(o.clone());
            let (pa, po) = (addr(&a), addr(&o));
            drop((a, o));
            let before = gc::get_stats()[2];
            gc::set_debug(gc::DebugFlags::LEAK);
            assert_eq!(gc::collect(), 1);
            gc::set_debug(gc::DebugFlags::empty());
            settle();
            let after = gc::get_stats()[2];
            assert_eq!(
                (
                    after.collected - before.collected,
                    after.uncollectable - before.uncollectable
                ),
                (1, 1),
                "the saved object counts as collected, the reported one as uncollectable"
            );
            assert_eq!(
                super::logged_naming(pa),
                [format!(
                    "collectable <{} @{pa:#x}>",
                    std::any::type_name::<List>()
                )]
            );
            assert_eq!(
                super::logged_naming(po),
                [format!(
                    "uncollectable <{} @{po:#x}>",
                    std::any::type_name::<Opaque>()
                )]
            );
            let kept = gc::garbage();
            assert_eq!(kept.len(), 2, "SAVEALL kept both");
            let o = kept.iter().find_map(|k| k.downcast::<Opaque>()).unwrap();
            drop(kept);
            gc::clear_garbage();
            lock(&o.me).take();
            drop(o);
            assert_eq!(gc::collect(), 1);
            settle();
            assert_eq!(d.count(), 1);
        }

        /// `write_dot` draws every object and edge: roots as boxes, objects
        /// reachable from them as ellipses, objects no root reaches and
        /// those `SAVEALL` kept as octagons; each node is named by its
        /// value's address.
        #[test]
        fn write_dot_draws_every_object_and_edge_by_kind() {
            let _heap = heap();
            let d = Drops::default();
            let (s1, s2) = (list(&d), list(&d));
            link(&s1, &s2);
            link(&s2, &s1);
            let (saved1, saved2) = (addr(&s1), addr(&s2));
            drop((s1, s2));
            gc::set_debug(gc::DebugFlags::SAVEALL);
            assert_eq!(gc::collect(), 2);
            gc::set_debug(gc::DebugFlags::empty());
            let (root, child) = (list(&d), list(&d));
            link(&root, &child);
            link(&child, &root);
            let (g1, g2) = (list(&d), list(&d));
            link(&g1, &g2);
            link(&g2, &g1);
            let (r, c, x1, x2) = (addr(&root), addr(&child), addr(&g1), addr(&g2));
            drop((child, g1, g2)); // g1, g2: garbage; child: reachable
            let mut out = Vec::new();
            gc::write_dot(&mut out).unwrap();
            let text = String::from_utf8(out).unwrap();
            assert!(text.starts_with("digraph ouro {") && text.trim_end().ends_with('}'));
            let ours: HashMap<String, &str> = [
                (r, "root"),
                (c, "child"),
                (x1, "g1"),
                (x2, "g2"),
                (saved1, "s1"),
                (saved2, "s2"),
            ]
            .into_iter()
            .map(|(a, n)| (format!("o{a:x}"), n))
            .collect();
            let mut edges = Vec::new();
            let mut kinds = HashMap::new();
            for line in text.lines().map(str::trim) {
                if let Some((a, b)) = line.strip_suffix(';').and_then(|l| l.split_once(" -> ")) {
                    if let (Some(a), Some(b)) = (ours.get(a), ours.get(b)) {
                        edges.push((*a, *b));
                    }
                } else if let Some((id, _)) = line.split_once(" [label=") {
                    if let Some(name) = ours.get(id) {
                        let kind = if line.contains("shape=box") {
                            "root"
                        } else if line.contains("shape=octagon") {
                            "garbage"
                        } else {
                            "reachable"
                        };
                        kinds.insert(*name, kind);
                    }
                }
            }
            edges.sort_unstable();
            assert_eq!(
                edges,
                [
                    ("child", "root"),
                    ("g1", "g2"),
                    ("g2", "g1"),
                    ("root", "child"),
                    ("s1", "s2"),
                    ("s2", "s1"),
                ],
                "{text}"
            );
            let mut kinds: Vec<_> = kinds.into_iter().collect();
            kinds.sort_unstable();
            assert_eq!(
                kinds,
                [
                    ("child", "reachable"),
                    ("g1", "garbage"),
                    ("g2", "garbage"),
                    ("root", "root"),
                    ("s1", "garbage"),
                    ("s2", "garbage"),
                ],
                "{text}"
            );
            gc::clear_garbage();
            lock(&root.items).clear();
            drop(root);
            assert_eq!(gc::collect(), 4);
            settle();
            assert_eq!(d.count(), 6);
        }
    };
}

/// The thread-local heap: each test thread has its own.
mod local {
    use ouro::{Gc, Weak, gc};

    fn heap() {
        gc::disable();
        gc::set_debug(gc::DebugFlags::empty());
        gc::clear_garbage();
        gc::collect();
    }

    fn settle() {}

    /// `get_count()[0]` counts each allocation.
    const EXACT_YOUNG_COUNT: bool = true;

    /// How a `STATS` line starts.
    const STATS_PREFIX: &str = "gc: ";

    semantic_suite!();

    /// Automatic collections, triggered by allocations past the young
    /// threshold, call the callbacks too (this heap counts each
    /// allocation, so the trigger is exact).
    #[test]
    fn automatic_collections_call_the_callbacks() {
        heap();
        let (id, seen) = record_callbacks();
        gc::set_threshold([2, 10, 10]);
        gc::enable();
        let d = Drops::default();
        let keep: Vec<Gc<List>> = (0..3).map(|_| list(&d)).collect();
        gc::disable();
        gc::set_threshold([700, 10, 10]);
        assert!(gc::remove_callback(id));
        let young: Vec<_> = lock(&seen)
            .iter()
            .filter(|i| i.generation == 0)
            .map(|i| i.phase)
            .collect();
        assert_eq!(young, [gc::Phase::Start, gc::Phase::Stop]);
        drop(keep);
    }
}

/// The process-wide heap: one test at a time.
mod shared {
    use std::sync::MutexGuard;

    use ouro::sync::{Gc, Weak, gc};

    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn heap() -> MutexGuard<'static, ()> {
        let guard = super::lock(&LOCK);
        gc::disable();
        gc::set_debug(gc::DebugFlags::empty());
        gc::clear_garbage();
        gc::collect();
        gc::wait_for_drops();
        guard
    }

    fn settle() {
        gc::wait_for_drops();
    }

    /// `get_count()[0]` counts allocations in batches per shard.
    const EXACT_YOUNG_COUNT: bool = false;

    /// How a `STATS` line starts.
    const STATS_PREFIX: &str = "sync gc: ";

    semantic_suite!();

    /// A `Drop` run by a collection runs with no collector lock held: a
    /// collection it starts is one of its own (with its own callbacks,
    /// between the outer one's `Start` and `Stop`), and the gc functions,
    /// `freeze` included, work inside callbacks without waiting for the
    /// collection that calls them.
    #[test]
    fn a_drop_run_by_a_collection_may_collect() {
        use std::sync::atomic::{AtomicUsize, Ordering};

        struct CollectsOnDrop(Mutex<Option<Gc<CollectsOnDrop>>>);
        impl ouro::Trace for CollectsOnDrop {
            fn structural() -> ouro::Structural<Self> {
                // SAFETY: `trace` only calls `trace` on fields.
                unsafe { ouro::Structural::promise() }
            }
            fn trace(&self, v: &mut ouro::Visitor<'_>) {
                self.0.trace(v);
            }
        }
        impl Drop for CollectsOnDrop {
            fn drop(&mut self) {
                assert_eq!(gc::collect(), 0);
                let _ = gc::get_referrers(self.0.get_mut().unwrap().as_ref().unwrap());
            }
        }

        let _heap = heap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        let target = Arc::new(AtomicUsize::new(0));
        let t2 = target.clone();
        let id = gc::add_callback(move |info| {
            let inner = gc::collect();
            let want = t2.load(Ordering::SeqCst);
            let listed = gc::get_objects(None).iter().any(|o| o.address() == want);
            gc::freeze();
            gc::unfreeze();
            lock(&s2).push((info.phase, inner, listed));
        });
        let a = Gc::new(CollectsOnDrop(Mutex::new(None)));
        *lock(&a.0) = Some(a.clone());
        target.store(Gc::as_ptr(&a) as usize, Ordering::SeqCst);
        drop(a);
        assert_eq!(gc::collect(), 1);
        settle();
        assert!(gc::remove_callback(id));
        // Listed at the start, gone once collected; the callbacks' own
        // `collect()` returns 0 at once; the `Drop`'s collection comes
        // between the outer `Start` and `Stop`.
        assert_eq!(
            *lock(&seen),
            [
                (gc::Phase::Start, 0, true),
                (gc::Phase::Start, 0, false),
                (gc::Phase::Stop, 0, false),
                (gc::Phase::Stop, 0, false)
            ]
        );
    }
}
