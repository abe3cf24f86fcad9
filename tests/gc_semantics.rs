//! The gc module's semantics, from Python's `gc` documentation and the
//! cases CPython's own `gc` tests cover, written once and run against both
//! heaps: `mod local` (`ouro::gc`, `ouro::Gc`) and `mod shared`
//! (`ouro::sync::gc`, `ouro::sync::Gc`).
//!
//! The cases live in the `semantic_suite!` macro; each heap module supplies
//! `Gc`, `Weak`, `gc`, `heap()` (takes the heap for one test: automatic
//! collection off, no debug flags, nothing left from earlier tests) and
//! `settle()` (waits until what a collection claimed has been dropped).
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
            let kept: Vec<Gc<List>> = (0..100).map(|_| list(&d)).collect();
            let young = gc::get_count()[0];
            if EXACT_YOUNG_COUNT {
                assert_eq!(young, 100);
            } else {
                // Counted in batches: some, and no more than were made.
                assert!(young > 0 && young <= 100, "{young}");
            }
            // Objects the collector does not track are not counted.
            let untracked: Vec<Gc<u64>> = (0..100).map(Gc::new).collect();
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

    semantic_suite!();
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

    semantic_suite!();
}
