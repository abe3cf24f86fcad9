//! Attacks on ouro's soundness claims that currently succeed. Each test is
//! ignored (so the suite passes) with the finding in its reason; run one
//! with `cargo test --test adversarial_findings -- --ignored <name>`.

use std::cell::Cell;

use ouro::{Gc, Trace, Visitor, gc};

mod inconsistent_trace {
    use super::*;

    thread_local! {
        static DROPS: Cell<usize> = const { Cell::new(0) };
    }

    #[derive(Trace)]
    struct Leaf {
        name: String,
        // Makes the type tracked.
        _next: Option<Gc<Leaf>>,
    }
    impl Drop for Leaf {
        fn drop(&mut self) {
            DROPS.with(|d| d.set(d.get() + 1));
        }
    }

    /// Reports its child on the first call only: the subtract pass counts
    /// the edge, the reachability pass never sees it.
    struct Fickle {
        calls: Cell<u32>,
        child: Gc<Leaf>,
    }
    impl Trace for Fickle {
        fn trace(&self, v: &mut Visitor<'_>) {
            let n = self.calls.get();
            self.calls.set(n + 1);
            if n == 0 {
                self.child.trace(v);
            }
        }
    }

    #[test]
    #[ignore = "finding: a trace that reports an edge in subtract but not in move_unreachable makes collect() drop a borrowed value"]
    fn trace_reporting_fewer_edges_in_the_second_pass_drops_a_live_value() {
        gc::disable();
        DROPS.with(|d| d.set(0));
        let root = Gc::new(Fickle {
            calls: Cell::new(0),
            child: Gc::new(Leaf {
                name: "still borrowed".to_string(),
                _next: None,
            }),
        });
        let leaf: &Leaf = &root.child;
        gc::collect();
        // The leaf is reachable from a live root: its value must not be
        // dropped. Reading it first shows the use after free under Miri.
        let read = leaf.name.clone();
        assert_eq!(
            DROPS.with(Cell::get),
            0,
            "collect() dropped a value still borrowed"
        );
        assert_eq!(read, "still borrowed");
    }
}
