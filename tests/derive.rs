//! `#[derive(Trace)]` as a user sees it: which shapes compile, what
//! `needs_trace()` comes out as, and how the attributes behave.
// The derive's output must compile in a crate that forbids `unsafe`.
#![forbid(unsafe_code)]

use ouro::{Finalize, Trace, Visitor};
use std::cell::Cell;
use std::marker::PhantomData;

/// A leaf that can never hold a handle.
struct Plain;

impl Trace for Plain {
    fn needs_trace() -> bool {
        false
    }
    fn trace(&self, _: &mut Visitor<'_>) {}
}

/// Stands for a type that may hold a handle.
struct Edge;

impl Trace for Edge {
    fn trace(&self, _: &mut Visitor<'_>) {}
}

/// An owning pointer whose `needs_trace()` follows its content, like `Box`.
struct Owned<T>(Box<T>);

impl<T: Trace> Trace for Owned<T> {
    fn needs_trace() -> bool {
        T::needs_trace()
    }
    fn trace(&self, visitor: &mut Visitor<'_>) {
        self.0.trace(visitor);
    }
}

/// Carries a lifetime and a const parameter.
struct Borrowed<'a, const N: usize>(PhantomData<&'a [u8; N]>);

impl<const N: usize> Trace for Borrowed<'_, N> {
    fn needs_trace() -> bool {
        false
    }
    fn trace(&self, _: &mut Visitor<'_>) {}
}

fn needs_trace<T: Trace>() -> bool {
    T::needs_trace()
}

#[derive(Trace)]
struct Unit;

#[derive(Trace)]
struct EmptyNamed {}

#[derive(Trace)]
struct EmptyTuple();

#[derive(Trace)]
struct Named {
    _a: Plain,
    _b: Plain,
}

#[derive(Trace)]
struct Tuple(Plain, Edge);

#[derive(Trace)]
#[allow(dead_code)]
enum Never {}

#[derive(Trace)]
#[allow(dead_code)]
enum Shapes<'a, T, const N: usize>
where
    T: Send,
{
    Unit,
    Tuple(T, Borrowed<'a, N>),
    Named { value: T, plain: Plain },
}

#[test]
fn needs_trace_is_false_without_fields() {
    assert!(!needs_trace::<Unit>());
    assert!(!needs_trace::<EmptyNamed>());
    assert!(!needs_trace::<EmptyTuple>());
    assert!(!needs_trace::<Never>());
}

#[test]
fn needs_trace_is_the_or_of_the_fields() {
    assert!(!needs_trace::<Named>());
    assert!(needs_trace::<Tuple>());
    assert!(!needs_trace::<Shapes<'static, Plain, 3>>());
    assert!(needs_trace::<Shapes<'static, Edge, 3>>());
    assert!(!needs_trace::<Shapes<'static, Shapes<'static, Plain, 1>, 2>>());
    assert!(needs_trace::<Shapes<'static, Shapes<'static, Edge, 1>, 2>>());
}

#[test]
fn needs_trace_is_a_constant() {
    assert!(!<Named as Trace>::needs_trace());
    assert!(<Tuple as Trace>::needs_trace());
}

#[derive(Trace)]
struct Skipped {
    // Neither `Trace` nor counted in `needs_trace()`.
    #[trace(skip)]
    _file: Option<std::fs::File>,
    #[trace(skip)]
    _edge: Edge,
    // std's weak pointers are not collector handles.
    #[trace(skip)]
    _weak: std::rc::Weak<u8>,
    _plain: Plain,
}

#[derive(Trace)]
#[allow(dead_code)]
enum SkippedInVariants {
    A(#[trace(skip)] std::fs::File, Plain),
    B {
        #[trace(skip)]
        socket: std::net::UdpSocket,
        plain: Plain,
    },
}

#[test]
fn skipped_fields_do_not_count() {
    assert!(!needs_trace::<Skipped>());
    assert!(!needs_trace::<SkippedInVariants>());
}

/// Recursive through an owning pointer: the field naming the type counts as
/// `true`, so the constant does not depend on itself.
#[derive(Trace)]
struct List {
    _value: Plain,
    _next: Owned<List>,
}

#[derive(Trace)]
#[trace(needs_trace = false)]
struct PlainList {
    _value: Plain,
    _next: Owned<PlainList>,
}

/// Mutual recursion the derive cannot see needs the attribute on one side.
#[derive(Trace)]
#[trace(needs_trace = false)]
struct Ping {
    _pong: Owned<Pong>,
}

#[derive(Trace)]
struct Pong {
    _ping: Owned<Ping>,
}

#[derive(Trace)]
#[trace(needs_trace = true)]
struct Forced {
    _plain: Plain,
}

#[test]
fn recursion_and_needs_trace_override() {
    assert!(needs_trace::<List>());
    assert!(!needs_trace::<PlainList>());
    assert!(!needs_trace::<Ping>());
    assert!(!needs_trace::<Pong>());
    assert!(needs_trace::<Forced>());
}

thread_local! {
    static FINALIZED: Cell<u32> = const { Cell::new(0) };
}

#[derive(Trace)]
#[trace(finalize)]
struct WithFinalizer {
    _plain: Plain,
}

impl Finalize for WithFinalizer {
    fn finalize(&self) {
        FINALIZED.with(|f| f.set(f.get() + 1));
    }
}

#[derive(Trace)]
struct WithoutFinalizer;

#[test]
fn finalize_forwards_to_finalize_impl() {
    FINALIZED.with(|f| f.set(0));
    Trace::finalize(&WithFinalizer { _plain: Plain });
    assert_eq!(FINALIZED.with(Cell::get), 1);
    Trace::finalize(&WithoutFinalizer);
    assert_eq!(FINALIZED.with(Cell::get), 1);
}

/// The `crate` override, through the crate that defines the trait.
#[derive(Trace)]
#[trace(crate = "ouro_refobj")]
struct ThroughRefobj {
    _edge: Edge,
}

mod reexport {
    pub(crate) use ouro::{Finalize, Structural, Trace, Visitor};
}

#[derive(Trace)]
#[trace(crate = "crate::reexport", finalize)]
struct ThroughModule(Plain);

/// A recursive type through a `crate` path compiles, but is not structural:
/// the recursion's checks would come from the user's path, which could fake
/// them (a review finding: a fake `__private::same` forged the promise).
#[derive(Trace)]
#[trace(crate = "crate::reexport")]
struct ThroughModuleList {
    _next: Option<Box<Self>>,
}

impl Finalize for ThroughModule {
    fn finalize(&self) {}
}

#[test]
fn crate_override() {
    assert!(needs_trace::<ThroughRefobj>());
    assert!(!needs_trace::<ThroughModule>());
    assert!(!<ThroughModuleList as Trace>::structural().is_made());
}

/// Field types and names that come from a `macro_rules!` still resolve.
macro_rules! traced_struct {
    ($name:ident, $field:ident: $ty:ty) => {
        #[derive(Trace)]
        struct $name {
            $field: $ty,
        }
    };
}

traced_struct!(FromMacro, visitor: Edge);

#[test]
fn derive_inside_macro_rules() {
    assert!(needs_trace::<FromMacro>());
    let _ = FromMacro { visitor: Edge }.visitor;
}

/// A generic last field. (Derived types are sized: only ouro implements
/// `Trace` for unsized types, `str`, slices and trait objects.)
#[derive(Trace)]
struct Tail<T> {
    _plain: Plain,
    _rest: T,
}

/// DESIGN.md's example: a `'static` bound and recursion through `Gc`.
#[derive(Trace)]
struct W<T: 'static> {
    _next: std::cell::RefCell<Option<ouro::Gc<W<T>>>>,
    _v: T,
}

#[test]
fn unsized_and_bounded_parameters() {
    assert!(!needs_trace::<Tail<Vec<Plain>>>());
    assert!(needs_trace::<Tail<Vec<Edge>>>());
    assert!(!needs_trace::<Tail<[Plain; 4]>>());
    assert!(needs_trace::<W<u8>>());
}

/// Derived types in real graphs: cycles through every field shape are
/// reclaimed by the collector, plain types are never tracked.
mod collector {
    use ouro::{Finalize, Gc, Trace, Weak, gc};
    use std::cell::{Cell, RefCell};

    thread_local! {
        static DROPS: Cell<usize> = const { Cell::new(0) };
        static FINALIZED: Cell<usize> = const { Cell::new(0) };
    }

    /// Counts its drops; not `Trace`, so it is always a skipped field.
    struct Tally;

    impl Drop for Tally {
        fn drop(&mut self) {
            DROPS.with(|d| d.set(d.get() + 1));
        }
    }

    fn drops() -> usize {
        DROPS.with(Cell::get)
    }

    /// Starts a test on an empty heap with zeroed counters; automatic
    /// collections are off so the counts below are exact.
    fn fresh() {
        gc::disable();
        gc::collect();
        DROPS.with(|d| d.set(0));
        FINALIZED.with(|f| f.set(0));
    }

    #[derive(Trace)]
    struct TreeNode {
        name: String,
        #[trace(skip)]
        _tally: Tally,
        parent: RefCell<Option<Weak<TreeNode>>>,
        children: RefCell<Vec<Gc<TreeNode>>>,
    }

    impl TreeNode {
        fn new(name: &str) -> Gc<TreeNode> {
            Gc::new(TreeNode {
                name: name.to_owned(),
                _tally: Tally,
                parent: RefCell::new(None),
                children: RefCell::new(Vec::new()),
            })
        }

        fn adopt(parent: &Gc<TreeNode>, child: Gc<TreeNode>) {
            *child.parent.borrow_mut() = Some(Gc::downgrade(parent));
            parent.children.borrow_mut().push(child);
        }
    }

    #[test]
    fn tree_with_weak_parents_is_freed_by_counting() {
        fresh();
        let root = TreeNode::new("root");
        for i in 0..3 {
            let child = TreeNode::new(&format!("child {i}"));
            TreeNode::adopt(&child, TreeNode::new("grandchild"));
            TreeNode::adopt(&root, child);
        }
        let grandchild = root.children.borrow()[1].children.borrow()[0].clone();
        let parent = grandchild.parent.borrow().as_ref().and_then(Weak::upgrade);
        assert_eq!(parent.map(|p| p.name.clone()).as_deref(), Some("child 1"));
        assert!(Gc::is_tracked(&root));
        drop(grandchild);
        drop(root);
        assert_eq!(drops(), 7);
        assert_eq!(gc::collect(), 0);
    }

    /// The same tree with strong parent pointers: every edge is a cycle.
    #[derive(Trace)]
    struct StrongNode {
        #[trace(skip)]
        _tally: Tally,
        parent: RefCell<Option<Gc<StrongNode>>>,
        children: RefCell<Vec<Gc<StrongNode>>>,
    }

    #[test]
    fn tree_with_strong_parents_is_collected() {
        fresh();
        let new = || {
            Gc::new(StrongNode {
                _tally: Tally,
                parent: RefCell::new(None),
                children: RefCell::new(Vec::new()),
            })
        };
        let root = new();
        for _ in 0..4 {
            let child = new();
            *child.parent.borrow_mut() = Some(root.clone());
            root.children.borrow_mut().push(child);
        }
        let weak = Gc::downgrade(&root);
        drop(root);
        assert_eq!(
            drops(),
            0,
            "the cycles keep the tree alive until a collection"
        );
        assert_eq!(gc::collect(), 5);
        assert_eq!(drops(), 5);
        assert!(weak.upgrade().is_none());
    }

    #[derive(Trace)]
    struct ListNode {
        value: u32,
        #[trace(skip)]
        _tally: Tally,
        prev: RefCell<Option<Gc<ListNode>>>,
        next: RefCell<Option<Gc<ListNode>>>,
    }

    #[test]
    fn doubly_linked_ring_is_collected() {
        fresh();
        let nodes: Vec<Gc<ListNode>> = (0..10)
            .map(|value| {
                Gc::new(ListNode {
                    value,
                    _tally: Tally,
                    prev: RefCell::new(None),
                    next: RefCell::new(None),
                })
            })
            .collect();
        for (i, node) in nodes.iter().enumerate() {
            let next = &nodes[(i + 1) % nodes.len()];
            *node.next.borrow_mut() = Some(next.clone());
            *next.prev.borrow_mut() = Some(node.clone());
        }
        let third = nodes[2].next.borrow().as_ref().map(|n| n.value);
        assert_eq!(third, Some(3));
        drop(nodes);
        assert_eq!(drops(), 0);
        assert_eq!(gc::collect(), 10);
        assert_eq!(drops(), 10);
    }

    #[derive(Trace)]
    struct SelfLoop {
        #[trace(skip)]
        _tally: Tally,
        me: RefCell<Option<Gc<Self>>>,
    }

    #[test]
    fn self_loop_is_collected() {
        fresh();
        let node = Gc::new(SelfLoop {
            _tally: Tally,
            me: RefCell::new(None),
        });
        *node.me.borrow_mut() = Some(node.clone());
        assert_eq!(Gc::strong_count(&node), 2);
        drop(node);
        assert_eq!(drops(), 0);
        assert_eq!(gc::collect(), 1);
        assert_eq!(drops(), 1);
    }

    /// A payload that counts its drops and holds no handle.
    #[derive(Trace)]
    struct Payload {
        id: u64,
        #[trace(skip)]
        _tally: Tally,
    }

    /// A generic enum with every variant shape; cycles go through the tuple
    /// and the named variant.
    #[derive(Trace)]
    enum Cons<T> {
        Nil,
        Pair(T, RefCell<Option<Gc<Cons<T>>>>),
        Named {
            head: T,
            tail: RefCell<Option<Gc<Cons<T>>>>,
        },
    }

    impl<T> Cons<T> {
        fn tail(&self) -> Option<&RefCell<Option<Gc<Cons<T>>>>> {
            match self {
                Cons::Nil => None,
                Cons::Pair(_, tail) | Cons::Named { tail, .. } => Some(tail),
            }
        }
    }

    #[test]
    fn generic_enum_cycle_is_collected() {
        fresh();
        let payload = |id| Payload { id, _tally: Tally };
        let a = Gc::new(Cons::Pair(payload(1), RefCell::new(None)));
        let b = Gc::new(Cons::Named {
            head: payload(2),
            tail: RefCell::new(Some(a.clone())),
        });
        let nil = Gc::new(Cons::<Payload>::Nil);
        *a.tail().unwrap().borrow_mut() = Some(b.clone());
        assert!(Gc::is_tracked(&a));
        if let Cons::Named { head, .. } = &*b {
            assert_eq!(head.id, 2);
        }
        drop((a, b));
        assert_eq!(drops(), 0);
        assert_eq!(gc::collect(), 2);
        assert_eq!(drops(), 2);
        assert!(matches!(*nil, Cons::Nil));
    }

    /// A tuple struct in a cycle of two.
    #[derive(Trace)]
    struct Link(RefCell<Option<Gc<Link>>>, #[trace(skip)] Tally);

    #[test]
    fn tuple_struct_cycle_is_collected() {
        fresh();
        let a = Gc::new(Link(RefCell::new(None), Tally));
        let b = Gc::new(Link(RefCell::new(Some(a.clone())), Tally));
        *a.0.borrow_mut() = Some(b);
        drop(a);
        assert_eq!(drops(), 0);
        assert_eq!(gc::collect(), 2);
        assert_eq!(drops(), 2);
    }

    /// Containers nested several levels deep still expose their handles.
    #[derive(Trace)]
    #[allow(clippy::type_complexity)] // the nesting is the point
    struct Nested {
        #[trace(skip)]
        _tally: Tally,
        edges: RefCell<Vec<(u8, Option<Box<[Gc<Nested>; 1]>>)>>,
        by_name: RefCell<std::collections::BTreeMap<String, Vec<Gc<Nested>>>>,
    }

    #[test]
    fn nested_containers_cycle_is_collected() {
        fresh();
        let new = || {
            Gc::new(Nested {
                _tally: Tally,
                edges: RefCell::new(Vec::new()),
                by_name: RefCell::new(Default::default()),
            })
        };
        let (a, b) = (new(), new());
        a.edges.borrow_mut().push((0, Some(Box::new([b.clone()]))));
        b.by_name.borrow_mut().insert("a".into(), vec![a.clone()]);
        drop((a, b));
        assert_eq!(drops(), 0);
        assert_eq!(gc::collect(), 2);
        assert_eq!(drops(), 2);
    }

    #[derive(Trace)]
    #[trace(finalize)]
    struct Finalized {
        #[trace(skip)]
        _tally: Tally,
        me: RefCell<Option<Gc<Finalized>>>,
    }

    impl Finalize for Finalized {
        fn finalize(&self) {
            // The whole cycle is still intact while finalizers run.
            assert!(self.me.borrow().is_some());
            FINALIZED.with(|f| f.set(f.get() + 1));
        }
    }

    #[test]
    fn finalize_runs_once_before_the_cycle_is_dropped() {
        fresh();
        let node = Gc::new(Finalized {
            _tally: Tally,
            me: RefCell::new(None),
        });
        *node.me.borrow_mut() = Some(node.clone());
        drop(node);
        assert_eq!(gc::collect(), 1);
        assert_eq!(FINALIZED.with(Cell::get), 1);
        assert_eq!(drops(), 1);
        assert_eq!(gc::collect(), 0);
        assert_eq!(FINALIZED.with(Cell::get), 1);
    }

    #[derive(Trace)]
    struct Record {
        id: u64,
        name: String,
        tags: Vec<String>,
        scores: std::collections::HashMap<String, f64>,
        extra: Option<Box<(i32, char)>>,
        #[trace(skip)]
        _tally: Tally,
    }

    #[derive(Trace)]
    struct Wrapper<T>(T, u8);

    /// Recursive through `Box`: the derive keeps it tracked...
    #[derive(Trace)]
    struct BoxList {
        value: u32,
        next: Option<Box<BoxList>>,
    }

    /// ...unless told that it holds no handle.
    #[derive(Trace)]
    #[trace(needs_trace = false)]
    struct PlainBoxList {
        value: u32,
        next: Option<Box<PlainBoxList>>,
    }

    #[test]
    fn plain_types_are_never_tracked() {
        fresh();
        assert!(!<Record as Trace>::needs_trace());
        let record = Gc::new(Record {
            id: 1,
            name: "r".into(),
            tags: vec!["a".into()],
            scores: Default::default(),
            extra: Some(Box::new((1, 'x'))),
            _tally: Tally,
        });
        assert!(!Gc::is_tracked(&record));
        assert_eq!(
            (record.id, record.name.as_str(), record.tags.len()),
            (1, "r", 1)
        );
        assert!(record.scores.is_empty() && record.extra.is_some());

        let plain = Gc::new(Wrapper(
            Payload {
                id: 7,
                _tally: Tally,
            },
            0,
        ));
        assert!(!Gc::is_tracked(&plain));
        assert_eq!((plain.0.id, plain.1), (7, 0));
        let with_handle = Gc::new(Wrapper(Some(plain.clone()), 1));
        assert!(Gc::is_tracked(&with_handle));

        let boxed = Gc::new(BoxList {
            value: 1,
            next: Some(Box::new(BoxList {
                value: 2,
                next: None,
            })),
        });
        assert!(Gc::is_tracked(&boxed));
        let plain_boxed = Gc::new(PlainBoxList {
            value: 1,
            next: None,
        });
        assert!(!Gc::is_tracked(&plain_boxed));
        assert_eq!(boxed.next.as_ref().map(|n| n.value), Some(2));
        assert_eq!(
            (boxed.value, plain_boxed.value, plain_boxed.next.is_none()),
            (1, 1, true)
        );

        drop((record, plain, with_handle, boxed, plain_boxed));
        assert_eq!(drops(), 2);
        assert_eq!(gc::collect(), 0);
    }
}

/// Which derived types are *structural* (`Trace::structural`), and what the
/// thread-safe collector does with one that is not.
mod structural {
    use ouro::sync::{Gc, gc};
    use ouro::{Trace, Visitor};
    use std::cell::RefCell;
    use std::collections::{BTreeMap, HashMap};
    use std::marker::PhantomData;
    use std::sync::{Mutex, MutexGuard, PoisonError};

    fn structural<T: Trace>() -> bool {
        T::structural().is_made()
    }

    fn relock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
        m.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Holds a handle behind one of two locks. Its hand-written `trace`
    /// locks `a` itself, reports the handle it finds there, moves it to `b`
    /// and lets ouro's `Mutex` impl report it again from `b`: one handle
    /// counted twice in one trace. Safe code, and not structural.
    struct Locking<T> {
        a: Mutex<Option<Gc<T>>>,
        b: Mutex<Option<Gc<T>>>,
    }

    impl<T> Locking<T> {
        fn empty() -> Self {
            Locking {
                a: Mutex::new(None),
                b: Mutex::new(None),
            }
        }
    }

    impl<T> Trace for Locking<T> {
        fn trace(&self, v: &mut Visitor<'_>) {
            let moved = {
                let mut a = relock(&self.a);
                if a.is_none()
                    && let Ok(mut b) = self.b.try_lock()
                {
                    *a = b.take();
                }
                a.trace(v);
                a.take()
            };
            match self.b.try_lock() {
                Ok(mut b) => *b = moved,
                Err(_) => *relock(&self.a) = moved,
            }
            self.b.trace(v);
        }
    }

    #[derive(Trace)]
    struct Holder {
        name: String,
        link: Locking<Self>,
    }

    #[derive(Trace)]
    struct Paired<T> {
        pair: (Locking<T>, PhantomData<Self>),
    }

    #[test]
    fn field_naming_the_type_inside_a_lock_taking_type_is_not_structural() {
        assert!(!structural::<Locking<u8>>());
        assert!(!structural::<Holder>());
        assert!(!structural::<Paired<u8>>());
    }

    #[derive(Trace)]
    struct BoxList {
        _next: Option<Box<Self>>,
    }

    #[derive(Trace)]
    struct VecTree {
        _kids: Vec<VecTree>,
    }

    #[derive(Trace)]
    struct GcGraph {
        _edges: RefCell<Vec<ouro::Gc<Self>>>,
    }

    #[derive(Trace)]
    struct Named {
        _kids: HashMap<String, Self>,
        _shared: Mutex<Option<Gc<Named>>>,
    }

    #[derive(Trace)]
    struct Sorted<K: Ord, V> {
        _kids: BTreeMap<K, Self>,
        _value: V,
    }

    #[derive(Trace)]
    #[allow(dead_code)]
    enum Expr<T> {
        Leaf(T),
        Pair(Box<(Expr<T>, Self)>),
        Many([Option<Box<Self>>; 2], std::vec::Vec<Self>),
    }

    #[test]
    fn recursive_types_are_structural_when_their_fields_are() {
        assert!(structural::<BoxList>());
        assert!(structural::<VecTree>());
        assert!(structural::<GcGraph>());
        assert!(structural::<Named>());
        assert!(structural::<Sorted<u32, u8>>());
        assert!(!structural::<Sorted<u32, Locking<u8>>>());
        assert!(structural::<Expr<String>>());
        assert!(!structural::<Expr<Locking<u8>>>());
        // The test file's `W<T>`: `RefCell<Option<Gc<W<T>>>>`.
        assert!(structural::<super::W<u8>>());
        assert!(<BoxList as Trace>::structural().is_made());
    }

    /// The attack of a non-structural field: the cycle `h -> h` goes
    /// through `Locking`, whose `trace` counts the one inner handle twice,
    /// so the strong count (2: the inner handle and `h`) looks explained by
    /// edges from inside the cycle. Were `Holder` structural, the collector
    /// would drop its value while `r` still borrows it (it did, before the
    /// derive asked `Locking<Self>`).
    #[test]
    fn lock_taking_field_keeps_a_borrowed_cycle_alive() {
        let h = Gc::new(Holder {
            name: String::from("held"),
            link: Locking::empty(),
        });
        *relock(&h.link.a) = Some(h.clone());
        let weak = Gc::downgrade(&h);
        let r: &Holder = &h;
        gc::collect();
        gc::collect();
        assert_eq!(r.name, "held");
        let inner = relock(&r.link.a)
            .take()
            .or_else(|| relock(&r.link.b).take());
        assert!(inner.is_some(), "the cycle's edge is gone");
        drop(inner);
        drop(h);
        assert!(weak.upgrade().is_none());
    }
}

/// Two types that contain each other through owning containers: asking
/// either one's answers would ask the other forever; in debug builds the
/// derive names them in a panic (rustc rejected such types when the answers
/// were constants).
mod mutual {
    use ouro::Trace;

    #[derive(Trace)]
    struct Ping {
        _pong: Vec<Pong>,
    }

    #[derive(Trace)]
    struct Pong {
        _ping: Vec<Ping>,
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "contain each other")]
    fn needs_trace_names_the_cycle() {
        let _ = <Ping as Trace>::needs_trace();
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "is structural")]
    fn structural_names_the_cycle() {
        let _ = <Pong as Trace>::structural();
    }
}
