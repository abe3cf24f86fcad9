//! The benchmarks-game binary trees with weak parent pointers, on the
//! libraries that have weak handles (ouro, `Rc`, bacon_rajan_cc; the
//! thread-safe ones: `ouro::sync`, `Arc`). Every node holds its two
//! children by strong handle and its parent by weak handle, so reference
//! counting frees everything: a cycle collector has nothing to find here,
//! and whatever it spends is overhead.
//!
//! The program: a stretch tree of depth max+1, a long-lived tree of depth
//! max held to the end, then for each depth d in 4..=max by 2,
//! 2^(max-d+4) trees of depth d, each built bottom-up, walked and dropped.

use std::cell::RefCell;
use std::hint::black_box;
use std::sync::Mutex;

use crate::clock::Stamp;
use crate::heap::{Counter, Failure, Tok};
use crate::workloads::Outcome;

pub const MIN_DEPTH: u32 = 4;

/// A tree node of one library: children by strong handle, the parent by
/// weak handle (set once the parent exists).
pub trait Tree: 'static {
    type H;
    fn prepare() {}
    fn node(left: Option<Self::H>, right: Option<Self::H>) -> Self::H;
    /// Points `child`'s parent link at `parent` (weakly).
    fn set_parent(child: &Self::H, parent: &Self::H);
    fn children(h: &Self::H) -> (Option<&Self::H>, Option<&Self::H>);
    /// Whether `h`'s parent link upgrades (checked on a few nodes).
    fn has_parent(h: &Self::H) -> bool;
    fn collect();
}

fn build<T: Tree>(depth: u32) -> T::H {
    if depth == 0 {
        return T::node(None, None);
    }
    let l = build::<T>(depth - 1);
    let r = build::<T>(depth - 1);
    let n = T::node(Some(l), Some(r));
    if let (Some(l), Some(r)) = T::children(&n) {
        T::set_parent(l, &n);
        T::set_parent(r, &n);
    }
    n
}

fn check<T: Tree>(h: &T::H) -> u64 {
    match T::children(h) {
        (Some(l), Some(r)) => 1 + check::<T>(l) + check::<T>(r),
        _ => 1,
    }
}

/// The binary-trees program at depth `max`, doing `share` of each depth's
/// iterations (1 = all of them; 2 = half, for each of two threads).
pub fn program<T: Tree>(max: u32, share: u64) -> Result<u64, Failure> {
    let mut sum = check::<T>(&build::<T>(max + 1));
    let long_lived = build::<T>(max);
    for depth in (MIN_DEPTH..=max).step_by(2) {
        let iterations = (1u64 << (max - depth + MIN_DEPTH)) / share;
        for _ in 0..iterations {
            sum += check::<T>(black_box(&build::<T>(depth)));
        }
    }
    sum += check::<T>(&long_lived);
    let child = T::children(&long_lived).0.expect("a tree of depth > 0");
    if !T::has_parent(child) {
        return Err(Failure::Wrong("a parent link did not upgrade".into()));
    }
    drop(long_lived);
    Ok(sum)
}

pub fn run<T: Tree>(max: u32) -> Outcome {
    T::prepare();
    let counter = Counter::start();
    let start = Stamp::now();
    black_box(program::<T>(max, 1)?);
    T::collect();
    let t = start.elapsed();
    counter.all_freed()?;
    Ok(t)
}

/// The single-threaded tree node of a library with `Gc`-like handles in
/// a `RefCell`.
macro_rules! tree_lib {
    ($name:ident, $node:ident, $gc:ty, $weak:ty, $new:expr, $down:expr, $collect:expr, $prepare:expr) => {
        pub struct $node {
            left: Option<$gc>,
            right: Option<$gc>,
            parent: RefCell<Option<$weak>>,
            _tok: Tok,
        }
        pub struct $name;
        impl Tree for $name {
            type H = $gc;
            fn prepare() {
                $prepare
            }
            fn node(left: Option<$gc>, right: Option<$gc>) -> $gc {
                $new($node {
                    left,
                    right,
                    parent: RefCell::new(None),
                    _tok: Tok::new(),
                })
            }
            fn set_parent(child: &$gc, parent: &$gc) {
                *child.parent.borrow_mut() = Some($down(parent));
            }
            fn children(h: &$gc) -> (Option<&$gc>, Option<&$gc>) {
                (h.left.as_ref(), h.right.as_ref())
            }
            fn has_parent(h: &$gc) -> bool {
                h.parent
                    .borrow()
                    .as_ref()
                    .is_some_and(|w| w.upgrade().is_some())
            }
            fn collect() {
                $collect
            }
        }
    };
}

pub mod ouro_tree {
    use super::*;
    use ouro::{Gc, Trace, Weak, gc};

    #[derive(Trace)]
    pub struct OuroNode {
        left: Option<Gc<OuroNode>>,
        right: Option<Gc<OuroNode>>,
        parent: RefCell<Option<Weak<OuroNode>>>,
        #[trace(skip)]
        _tok: Tok,
    }

    pub struct Ouro;
    pub struct OuroManual;

    macro_rules! ouro_tree {
        ($name:ident, $prepare:expr) => {
            impl Tree for $name {
                type H = Gc<OuroNode>;
                fn prepare() {
                    $prepare
                }
                fn node(left: Option<Self::H>, right: Option<Self::H>) -> Self::H {
                    Gc::new(OuroNode {
                        left,
                        right,
                        parent: RefCell::new(None),
                        _tok: Tok::new(),
                    })
                }
                fn set_parent(child: &Self::H, parent: &Self::H) {
                    *child.parent.borrow_mut() = Some(Gc::downgrade(parent));
                }
                fn children(h: &Self::H) -> (Option<&Self::H>, Option<&Self::H>) {
                    (h.left.as_ref(), h.right.as_ref())
                }
                fn has_parent(h: &Self::H) -> bool {
                    h.parent
                        .borrow()
                        .as_ref()
                        .is_some_and(|w| w.upgrade().is_some())
                }
                fn collect() {
                    gc::collect();
                }
            }
        };
    }
    ouro_tree!(Ouro, ());
    ouro_tree!(OuroManual, gc::disable());
}

pub mod rc_tree {
    use super::*;
    use std::rc::{Rc, Weak};
    tree_lib!(
        RcTree,
        RcNode,
        Rc<RcNode>,
        Weak<RcNode>,
        Rc::new,
        Rc::downgrade,
        (),
        ()
    );
}

pub mod bacon_tree {
    use super::*;
    use bacon_rajan_cc::{Cc, Trace, Tracer, Weak, collect_cycles};
    tree_lib!(
        BaconTree,
        BaconNode,
        Cc<BaconNode>,
        Weak<BaconNode>,
        Cc::new,
        |p: &Cc<BaconNode>| p.downgrade(),
        collect_cycles(),
        ()
    );

    impl Trace for BaconNode {
        fn trace(&self, tracer: &mut Tracer) {
            if let Some(l) = &self.left {
                l.trace(tracer);
            }
            if let Some(r) = &self.right {
                r.trace(tracer);
            }
        }
    }
}

/// The thread-safe tree node of a library: the parent link in a `Mutex`.
pub mod sync_trees {
    use super::*;
    use std::sync::Arc;

    #[derive(ouro::Trace)]
    pub struct OuroNode {
        left: Option<ouro::sync::Gc<OuroNode>>,
        right: Option<ouro::sync::Gc<OuroNode>>,
        parent: Mutex<Option<ouro::sync::Weak<OuroNode>>>,
        #[trace(skip)]
        _tok: Tok,
    }

    pub struct ArcNode {
        left: Option<Arc<ArcNode>>,
        right: Option<Arc<ArcNode>>,
        parent: Mutex<Option<std::sync::Weak<ArcNode>>>,
        _tok: Tok,
    }

    pub struct OuroSync;
    pub struct OuroSyncManual;
    pub struct ArcTree;

    macro_rules! sync_tree {
        ($name:ident, $node:ident, $gc:ty, $new:expr, $down:expr, $collect:expr, $prepare:expr) => {
            impl Tree for $name {
                type H = $gc;
                fn prepare() {
                    $prepare
                }
                fn node(left: Option<$gc>, right: Option<$gc>) -> $gc {
                    $new($node {
                        left,
                        right,
                        parent: Mutex::new(None),
                        _tok: Tok::new(),
                    })
                }
                fn set_parent(child: &$gc, parent: &$gc) {
                    *child.parent.lock().unwrap() = Some($down(parent));
                }
                fn children(h: &$gc) -> (Option<&$gc>, Option<&$gc>) {
                    (h.left.as_ref(), h.right.as_ref())
                }
                fn has_parent(h: &$gc) -> bool {
                    h.parent
                        .lock()
                        .unwrap()
                        .as_ref()
                        .is_some_and(|w| w.upgrade().is_some())
                }
                fn collect() {
                    $collect
                }
            }
        };
    }
    sync_tree!(
        OuroSync,
        OuroNode,
        ouro::sync::Gc<OuroNode>,
        ouro::sync::Gc::new,
        ouro::sync::Gc::downgrade,
        {
            ouro::sync::gc::collect();
            ouro::sync::gc::wait_for_drops();
        },
        ()
    );
    sync_tree!(
        OuroSyncManual,
        OuroNode,
        ouro::sync::Gc<OuroNode>,
        ouro::sync::Gc::new,
        ouro::sync::Gc::downgrade,
        {
            ouro::sync::gc::collect();
            ouro::sync::gc::wait_for_drops();
        },
        ouro::sync::gc::disable()
    );
    sync_tree!(
        ArcTree,
        ArcNode,
        Arc<ArcNode>,
        Arc::new,
        Arc::downgrade,
        (),
        ()
    );
}

/// The threaded rows: two threads, each running the program with half of
/// each depth's iterations (each its own stretch and long-lived tree); the
/// sum of both threads' CPU time.
pub fn run_threaded<T: Tree>(max: u32) -> Outcome
where
    T::H: Send,
{
    T::prepare();
    let counter = Counter::start();
    let times: Vec<Result<std::time::Duration, Failure>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(move || {
                    let start = Stamp::now();
                    black_box(program::<T>(max, 2)?);
                    Ok(start.elapsed())
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let start = Stamp::now();
    T::collect();
    let mut t = start.elapsed();
    for r in times {
        t += r?;
    }
    counter.all_freed()?;
    Ok(t)
}
