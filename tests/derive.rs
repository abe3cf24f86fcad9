//! `#[derive(Trace)]` as a user sees it: which shapes compile, what
//! `NEEDS_TRACE` comes out as, and how the attributes behave.

use ouro::{Finalize, Trace, Visitor};
use std::cell::Cell;
use std::marker::PhantomData;

/// A leaf that can never hold a handle.
struct Plain;

impl Trace for Plain {
    const NEEDS_TRACE: bool = false;
    fn trace(&self, _: &mut Visitor<'_>) {}
}

/// Stands for a type that may hold a handle.
struct Edge;

impl Trace for Edge {
    fn trace(&self, _: &mut Visitor<'_>) {}
}

/// An owning pointer whose `NEEDS_TRACE` follows its content, like `Box`.
struct Owned<T>(Box<T>);

impl<T: Trace> Trace for Owned<T> {
    const NEEDS_TRACE: bool = T::NEEDS_TRACE;
    fn trace(&self, visitor: &mut Visitor<'_>) {
        self.0.trace(visitor);
    }
}

/// Carries a lifetime and a const parameter.
struct Borrowed<'a, const N: usize>(PhantomData<&'a [u8; N]>);

impl<const N: usize> Trace for Borrowed<'_, N> {
    const NEEDS_TRACE: bool = false;
    fn trace(&self, _: &mut Visitor<'_>) {}
}

const fn needs_trace<T: Trace + ?Sized>() -> bool {
    T::NEEDS_TRACE
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
    const { assert!(!<Named as Trace>::NEEDS_TRACE) };
    const { assert!(<Tuple as Trace>::NEEDS_TRACE) };
}

#[derive(Trace)]
struct Skipped {
    // Neither `Trace` nor counted in `NEEDS_TRACE`.
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
    pub(crate) use ouro::{Finalize, Trace, Visitor};
}

#[derive(Trace)]
#[trace(crate = "crate::reexport", finalize)]
struct ThroughModule(Plain);

impl Finalize for ThroughModule {
    fn finalize(&self) {}
}

#[test]
fn crate_override() {
    assert!(needs_trace::<ThroughRefobj>());
    assert!(!needs_trace::<ThroughModule>());
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
