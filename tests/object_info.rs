//! The `ObjectInfo` contract and `get_objects`' range, the same on both
//! heaps: the cases are written once (`object_info_suite!`) and run against
//! `ouro::gc` (mod `local`) and `ouro::sync::gc` (mod `shared`). The tests
//! run one at a time: the shared heap's `get_objects` of one test would
//! otherwise hold references to another's objects while it reads their
//! counts.

/// Taken by each test for its whole run.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

macro_rules! object_info_suite {
    () => {
        use std::sync::Mutex;

        use ouro::Trace;

        #[derive(Trace)]
        struct Node {
            next: Mutex<Option<Gc<Node>>>,
        }

        fn node(next: Option<Gc<Node>>) -> Gc<Node> {
            Gc::new(Node {
                next: Mutex::new(next),
            })
        }

        /// The info of `obj` among `get_objects(None)`.
        fn info_of(obj: &Gc<Node>) -> gc::ObjectInfo {
            gc::get_objects(None)
                .into_iter()
                .find(|o| o.downcast::<Node>().is_some_and(|n| Gc::ptr_eq(&n, obj)))
                .expect("a tracked object is listed")
        }

        fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        }

        #[test]
        fn address_is_the_value_address_as_gc_as_ptr() {
            let _serial = crate::serial();
            let a = node(None);
            let b = node(Some(a.clone()));
            assert_eq!(info_of(&a).address(), Gc::as_ptr(&a) as usize);
            assert_eq!(info_of(&b).address(), Gc::as_ptr(&b) as usize);
            // The same through a referent and a referrer.
            let refs = gc::get_referents(&b);
            assert_eq!(refs.len(), 1);
            assert_eq!(refs[0].address(), Gc::as_ptr(&a) as usize);
            assert!(
                gc::get_referrers(&a)
                    .iter()
                    .any(|r| r.address() == Gc::as_ptr(&b) as usize)
            );
        }

        #[test]
        fn refcount_leaves_out_the_info_own_reference() {
            let _serial = crate::serial();
            let a = node(None);
            let extra = a.clone();
            assert_eq!(info_of(&a).refcount(), 2);
            drop(extra);
            assert_eq!(info_of(&a).refcount(), 1);
        }

        #[test]
        fn type_name_and_downcast() {
            let _serial = crate::serial();
            let a = node(None);
            let info = info_of(&a);
            assert!(info.type_name().ends_with("Node"));
            assert!(info.downcast::<u32>().is_none());
            assert!(Gc::ptr_eq(&info.downcast::<Node>().unwrap(), &a));
        }

        #[test]
        fn debug_shows_type_name_address_refcount_and_generation() {
            let _serial = crate::serial();
            let a = node(None);
            let info = info_of(&a);
            let shown = format!("{info:?}");
            let expected = format!(
                "ObjectInfo {{ type_name: {:?}, address: {:#x}, refcount: 1, generation: {:?} }}",
                info.type_name(),
                Gc::as_ptr(&a) as usize,
                info.generation(),
            );
            assert_eq!(shown, expected);
            assert!(info.generation().is_some_and(|g| g < 3));
        }

        #[test]
        fn get_objects_lists_each_generation_and_panics_past_the_oldest() {
            let _serial = crate::serial();
            for g in 0..3 {
                // In range: no panic.
                drop(gc::get_objects(Some(g)));
            }
            for g in [3, 4, usize::MAX] {
                let p = std::panic::catch_unwind(|| gc::get_objects(Some(g)))
                    .expect_err("a generation past 2 panics");
                let msg = panic_message(p);
                assert!(
                    msg.contains("get_objects: generation must be 0, 1 or 2")
                        && msg.contains(&format!("got {g}")),
                    "{msg}"
                );
            }
        }
    };
}

mod local {
    use ouro::{Gc, gc};
    object_info_suite!();
}

mod shared {
    use ouro::sync::{Gc, gc};
    object_info_suite!();
}
