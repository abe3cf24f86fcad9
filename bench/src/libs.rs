//! One adapter per library, each written the way that library's docs show:
//!
//! - `ouro`: `ouro::Gc`, `#[derive(Trace)]` with `#[trace(skip)]` on the drop
//!   counter, `std::cell::RefCell`; `gc::collect()` and
//!   `gc::collect_generation(0)`. Automatic collection stays on (default
//!   thresholds).
//! - `ouro_manual`: the same with automatic collection off (`gc::disable()`),
//!   collecting only where the workload does, like gcmodule and
//!   bacon_rajan_cc, which never collect on their own.
//! - `rc`: `std::rc::Rc` + `RefCell`; no collector, so cycles leak.
//! - `gcmodule`: `gcmodule::Cc` + `RefCell`, a hand-written `Trace` whose
//!   `is_type_tracked` returns `true`: the crate's docs say recursive types
//!   need exactly that (its derive would recurse through `Cc<Self>`).
//!   `collect_thread_cycles()`; the crate never collects on its own.
//! - `bacon_rajan_cc`: `bacon_rajan_cc::Cc` + `RefCell`, a hand-written
//!   `Trace` (the crate has no derive); `collect_cycles()`, which scans the
//!   buffered possible roots (it never collects on its own).
//! - `dumpster`: `dumpster::unsync::Gc`, `#[derive(Trace)]`, `RefCell`,
//!   `unsync::collect()`; automatic collection with the default condition.
//! - `gc` (rust-gc): `gc::Gc` + `gc::GcCell`, `#[derive(Trace, Finalize)]`
//!   with `#[unsafe_ignore_trace]` on the drop counter; `force_collect()`.
//!   It is a tracing mark-sweep: nothing is freed before a collection.

use std::cell::RefCell;

use crate::heap::{Heap, Tok};

/// The node accessors every `RefCell`-based adapter shares.
macro_rules! refcell_node_ops {
    () => {
        fn set(from: &Self::H, i: usize, to: Option<Self::H>) {
            let old = std::mem::replace(&mut from.slots.borrow_mut()[i], to);
            drop(old);
        }
        fn get(from: &Self::H, i: usize) -> Option<Self::H> {
            from.slots.borrow()[i].clone()
        }
        fn push(from: &Self::H, to: Self::H) {
            from.extra.borrow_mut().push(to);
        }
        fn swap_remove(from: &Self::H, i: usize) -> Option<Self::H> {
            let mut extra = from.extra.borrow_mut();
            (i < extra.len()).then(|| extra.swap_remove(i))
        }
        fn extra_len(from: &Self::H) -> usize {
            from.extra.borrow().len()
        }
        fn value(h: &Self::H) -> u64 {
            h.value
        }
    };
}

pub mod ouro_lib {
    use super::*;
    use ouro::{Gc, Trace, gc};

    #[derive(Trace)]
    pub struct Node {
        slots: RefCell<[Option<Gc<Node>>; 3]>,
        extra: RefCell<Vec<Gc<Node>>>,
        value: u64,
        #[trace(skip)]
        _tok: Tok,
    }

    pub struct Ouro;

    impl Heap for Ouro {
        type H = Gc<Node>;
        fn node(value: u64) -> Gc<Node> {
            Gc::new(Node {
                slots: RefCell::new([None, None, None]),
                extra: RefCell::new(Vec::new()),
                value,
                _tok: Tok::new(),
            })
        }
        refcell_node_ops!();
        fn collect() {
            gc::collect();
        }
        fn collect_young() {
            gc::collect_generation(0);
        }
    }

    pub struct OuroManual;

    impl Heap for OuroManual {
        type H = Gc<Node>;
        fn prepare() {
            gc::disable();
        }
        fn node(value: u64) -> Gc<Node> {
            Ouro::node(value)
        }
        refcell_node_ops!();
        fn collect() {
            gc::collect();
        }
        fn collect_young() {
            gc::collect_generation(0);
        }
    }
}

pub mod rc_lib {
    use super::*;
    use std::rc::Rc;

    pub struct Node {
        slots: RefCell<[Option<Rc<Node>>; 3]>,
        extra: RefCell<Vec<Rc<Node>>>,
        value: u64,
        _tok: Tok,
    }

    pub struct RcHeap;

    impl Heap for RcHeap {
        type H = Rc<Node>;
        const COLLECTS: bool = false;
        fn node(value: u64) -> Rc<Node> {
            Rc::new(Node {
                slots: RefCell::new([None, None, None]),
                extra: RefCell::new(Vec::new()),
                value,
                _tok: Tok::new(),
            })
        }
        refcell_node_ops!();
        fn collect() {}
    }
}

pub mod gcmodule_lib {
    use super::*;
    use gcmodule::{Cc, Trace, Tracer};

    pub struct Node {
        slots: RefCell<[Option<Cc<Node>>; 3]>,
        extra: RefCell<Vec<Cc<Node>>>,
        value: u64,
        _tok: Tok,
    }

    impl Trace for Node {
        fn trace(&self, tracer: &mut Tracer) {
            // `RefCell<[_; 3]>` has no impl in gcmodule; trace the slots.
            if let Ok(slots) = self.slots.try_borrow() {
                for slot in slots.iter() {
                    slot.trace(tracer);
                }
            }
            self.extra.trace(tracer);
        }
        fn is_type_tracked() -> bool {
            true
        }
    }

    pub struct GcModule;

    impl Heap for GcModule {
        type H = Cc<Node>;
        fn node(value: u64) -> Cc<Node> {
            Cc::new(Node {
                slots: RefCell::new([None, None, None]),
                extra: RefCell::new(Vec::new()),
                value,
                _tok: Tok::new(),
            })
        }
        refcell_node_ops!();
        fn collect() {
            gcmodule::collect_thread_cycles();
        }
    }
}

pub mod bacon_lib {
    use super::*;
    use bacon_rajan_cc::{Cc, Trace, Tracer, collect_cycles};

    pub struct Node {
        slots: RefCell<[Option<Cc<Node>>; 3]>,
        extra: RefCell<Vec<Cc<Node>>>,
        value: u64,
        _tok: Tok,
    }

    impl Trace for Node {
        fn trace(&self, tracer: &mut Tracer) {
            // bacon_rajan_cc has no impl for arrays; trace each slot.
            if let Ok(slots) = self.slots.try_borrow() {
                for slot in slots.iter().flatten() {
                    slot.trace(tracer);
                }
            }
            self.extra.trace(tracer);
        }
    }

    pub struct Bacon;

    impl Heap for Bacon {
        type H = Cc<Node>;
        fn node(value: u64) -> Cc<Node> {
            Cc::new(Node {
                slots: RefCell::new([None, None, None]),
                extra: RefCell::new(Vec::new()),
                value,
                _tok: Tok::new(),
            })
        }
        refcell_node_ops!();
        fn collect() {
            collect_cycles();
        }
    }
}

pub mod dumpster_lib {
    use super::*;
    use dumpster::unsync::{Gc, collect};
    use dumpster::{Trace, TraceWith, Visitor};

    /// dumpster's `Trace` is implemented through the unsafe `TraceWith`;
    /// a type with no handles accepts every visitor and does nothing.
    // SAFETY: `Tok` owns no garbage-collected handle.
    unsafe impl<V: Visitor> TraceWith<V> for Tok {
        fn accept(&self, _: &mut V) -> Result<(), ()> {
            Ok(())
        }
    }

    #[derive(Trace)]
    pub struct Node {
        slots: RefCell<[Option<Gc<Node>>; 3]>,
        extra: RefCell<Vec<Gc<Node>>>,
        value: u64,
        _tok: Tok,
    }

    pub struct Dumpster;

    impl Heap for Dumpster {
        type H = Gc<Node>;
        fn node(value: u64) -> Gc<Node> {
            Gc::new(Node {
                slots: RefCell::new([None, None, None]),
                extra: RefCell::new(Vec::new()),
                value,
                _tok: Tok::new(),
            })
        }
        refcell_node_ops!();
        fn collect() {
            collect();
        }
    }
}

// gc_derive 0.5 emits its impls inside a `const _` block.
#[allow(non_local_definitions)]
pub mod rust_gc_lib {
    use super::*;
    use gc::{Finalize, Gc, GcCell, Trace, force_collect};

    #[derive(Trace, Finalize)]
    pub struct Node {
        slots: GcCell<[Option<Gc<Node>>; 3]>,
        extra: GcCell<Vec<Gc<Node>>>,
        value: u64,
        #[unsafe_ignore_trace]
        _tok: Tok,
    }

    pub struct RustGc;

    impl Heap for RustGc {
        type H = Gc<Node>;
        fn node(value: u64) -> Gc<Node> {
            Gc::new(Node {
                slots: GcCell::new([None, None, None]),
                extra: GcCell::new(Vec::new()),
                value,
                _tok: Tok::new(),
            })
        }
        refcell_node_ops!();
        fn collect() {
            force_collect();
        }
    }
}
