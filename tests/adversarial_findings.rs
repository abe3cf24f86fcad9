//! Attacks on ouro's soundness claims that currently succeed. Each test is
//! ignored (so the suite passes) with the finding in its reason; run one
//! with `cargo test --test adversarial_findings -- --ignored <name>`.

use ouro::{Gc, Trace, Visitor, gc};

mod poisoning {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};

    struct Bomb(AtomicBool);
    impl Trace for Bomb {
        fn trace(&self, _: &mut Visitor<'_>) {
            if self.0.load(SeqCst) {
                panic!("trace bomb");
            }
        }
    }

    /// Hand-written; reaches the bomb through `Mutex`'s own `Trace` impl,
    /// which locks it.
    struct TL {
        inner: Mutex<Bomb>,
        next: Mutex<Option<Gc<TL>>>,
    }
    impl Trace for TL {
        fn trace(&self, v: &mut Visitor<'_>) {
            self.next.trace(v);
            self.inner.trace(v);
        }
    }
    struct TS {
        inner: Mutex<Bomb>,
        next: Mutex<Option<ouro::sync::Gc<TS>>>,
    }
    impl Trace for TS {
        fn trace(&self, v: &mut Visitor<'_>) {
            self.next.trace(v);
            self.inner.trace(v);
        }
    }

    #[test]
    #[ignore = "finding: a trace panic under a lock taken by ouro's Mutex impl poisons the user's mutex (both heaps)"]
    fn a_trace_panic_does_not_poison_a_lock_the_user_never_took() {
        std::thread::spawn(|| {
            let a = Gc::new(TL {
                inner: Mutex::new(Bomb(true.into())),
                next: Mutex::new(None),
            });
            *a.next.lock().unwrap() = Some(a.clone());
            assert!(std::panic::catch_unwind(gc::collect).is_err());
            let poisoned = a.inner.is_poisoned();
            a.inner.clear_poison();
            a.inner.lock().unwrap().0.store(false, SeqCst);
            *a.next.lock().unwrap() = None;
            assert!(
                !poisoned,
                "thread-local heap: the collector poisoned the lock"
            );
        })
        .join()
        .unwrap();
        std::thread::spawn(|| {
            use ouro::sync::{Gc, gc};
            let a = Gc::new(TS {
                inner: Mutex::new(Bomb(true.into())),
                next: Mutex::new(None),
            });
            *a.next.lock().unwrap() = Some(a.clone());
            let _ = std::panic::catch_unwind(gc::collect);
            let poisoned = a.inner.is_poisoned();
            a.inner.clear_poison();
            a.inner.lock().unwrap().0.store(false, SeqCst);
            *a.next.lock().unwrap() = None;
            assert!(!poisoned, "sync heap: the collector poisoned the lock");
        })
        .join()
        .unwrap();
    }
}
