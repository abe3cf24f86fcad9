//! Review of the thread-local heap's soundness changes: attacks through the
//! public API with safe code only.

use std::cell::Cell;
use std::marker::PhantomData;

use ouro::{Gc, Trace, Visitor, gc};

/// A crate path for `#[derive(Trace)]` whose `__private` items are the
/// user's own: the real `Trace` and `Structural`, a `same` that checks
/// nothing. (The derive no longer reads `__private` from a crate path, so
/// the fakes go unused: that is the fix.)
#[allow(unused_imports, dead_code)]
mod fake {
    pub(crate) use ouro::{Structural, Trace, Visitor};
    pub(crate) mod __private {
        pub(crate) use ouro::__private::Recursive;
        pub(crate) use ouro::__private::types;
        pub(crate) const fn same<A: ?Sized, B: ?Sized>() {}
    }
}

#[derive(Trace)]
struct Target {
    name: String,
    _next: Option<Gc<Target>>,
}

/// A hand-written, non-structural impl (no promise): its `trace` reports
/// its handle on the first call only.
struct Liar<T> {
    held: Gc<Target>,
    calls: Cell<u32>,
    _of: PhantomData<T>,
}

impl<T: 'static> Trace for Liar<T> {
    fn trace(&self, v: &mut Visitor<'_>) {
        let n = self.calls.get();
        self.calls.set(n + 1);
        if n == 0 {
            self.held.trace(v);
        }
    }
}

mod forged {
    use super::*;
    // The user's `Vec` is the liar; the derive takes it for std's.
    use super::Liar as Vec;

    #[derive(Trace)]
    #[trace(crate = "super::fake")]
    pub(super) struct Node {
        pub(super) lie: Vec<Self>,
    }
}

#[test]
fn a_crate_path_cannot_forge_the_structural_promise() {
    assert!(
        !<forged::Node as Trace>::structural().is_made(),
        "the derive promised structural for a field type it never checked"
    );
}

#[test]
fn a_forged_promise_does_not_free_a_borrowed_value() {
    let target = Gc::new(Target {
        name: "still borrowed".repeat(4),
        _next: None,
    });
    let node = Gc::new(forged::Node {
        lie: Liar {
            held: target,
            calls: Cell::new(0),
            _of: PhantomData,
        },
    });
    let r: &Target = &node.lie.held;
    let freed = gc::collect();
    // Read through a reference the collection must not invalidate (the
    // string's buffer is freed if the value was dropped: Miri reports it).
    let still = r.name == "still borrowed".repeat(4);
    assert_eq!(freed, 0, "the collector dropped a borrowed value");
    assert!(still);
    drop(node);
}

mod shadowed {
    use super::*;

    /// A module-level type that a derive inside a function could take for
    /// the derived type: there, `self::Node` names this one, not the local
    /// `Node`. Its `trace` reports its handle on the first call only.
    pub(super) struct Node {
        pub(super) held: Gc<Target>,
        calls: Cell<u32>,
    }

    impl Trace for Node {
        fn trace(&self, v: &mut Visitor<'_>) {
            let n = self.calls.get();
            self.calls.set(n + 1);
            if n == 0 {
                self.held.trace(v);
            }
        }
    }

    /// A derived type local to this function, whose field names the
    /// module-level `Node` as `self::Node`: it must not be structural, and a
    /// collection must not drop a value borrowed through it.
    pub(super) fn borrow_across_a_collection() {
        #[derive(Trace)]
        struct Node {
            lie: Box<self::Node>,
        }
        assert!(
            !<Node as Trace>::structural().is_made(),
            "`self::Node` is another type than the local `Node`, and its impl makes no promise"
        );
        let node = Gc::new(Node {
            lie: Box::new(self::Node {
                held: Gc::new(Target {
                    name: "still borrowed".repeat(4),
                    _next: None,
                }),
                calls: Cell::new(0),
            }),
        });
        let r: &Target = &node.lie.held;
        let freed = gc::collect();
        let still = r.name == "still borrowed".repeat(4);
        assert_eq!(freed, 0, "the collector dropped a borrowed value");
        assert!(still);
    }
}

#[test]
fn a_self_path_to_another_type_of_the_name_is_not_taken_for_the_derived_type() {
    shadowed::borrow_across_a_collection();
}

mod deferred {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

    use super::*;

    struct Counted(&'static AtomicUsize);

    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, SeqCst);
        }
    }

    /// A node of an untracked chain.
    struct Link {
        _next: Option<Gc<[Link]>>,
        _count: Counted,
    }

    // The chain stays untracked (slices of a `NEEDS_TRACE` type are
    // tracked): these impls say the values hold no handle, so the handles in
    // them act as roots, and the drops go through the untracked deferral.
    impl ouro::Trace for Link {
        fn needs_trace() -> bool {
            false
        }
        fn trace(&self, _: &mut ouro::Visitor<'_>) {}
    }

    /// Panics in its own `Drop`, before its field (the chain) is dropped.
    struct Bomb(#[allow(dead_code)] Option<Gc<[Link]>>);

    impl ouro::Trace for Bomb {
        fn needs_trace() -> bool {
            false
        }
        fn trace(&self, _: &mut ouro::Visitor<'_>) {}
    }

    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("bomb");
        }
    }

    pub(super) fn chain_under_a_panicking_drop() -> (usize, usize) {
        static DROPS: AtomicUsize = AtomicUsize::new(0);
        const N: usize = if cfg!(miri) { 120 } else { 1000 };
        let mut head: Option<Gc<[Link]>> = None;
        for _ in 0..N {
            head = Some(Gc::from(vec![Link {
                _next: head.take(),
                _count: Counted(&DROPS),
            }]));
        }
        let bomb: Gc<[Bomb]> = Gc::from(vec![Bomb(head)]);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(bomb)));
        assert!(r.is_err());
        let after_panic = DROPS.load(SeqCst);
        // Any later drop at the top level drains what was deferred.
        drop(Gc::new(0u8));
        (after_panic, DROPS.load(SeqCst))
    }
}

#[test]
fn a_chain_under_a_panicking_drop_is_dropped_by_the_next_top_level_drop() {
    let n = if cfg!(miri) { 120 } else { 1000 };
    let (after_panic, later) = deferred::chain_under_a_panicking_drop();
    assert_eq!(later, n, "every link is dropped once, eventually");
    assert!(after_panic <= n, "{after_panic}");
}
