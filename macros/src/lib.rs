//! ouro-macros: `#[derive(Trace)]` and `#[derive(DeepCopy)]` for ouro.
//!
//! CPython's types tell the cycle collector what they hold with a
//! `tp_traverse` slot written by hand in C; these derives write the Rust
//! equivalent, `Trace::trace`, from the fields of a type, and compute at
//! compile time whether the type can hold a handle at all (CPython only
//! finds out at run time, when it untracks tuples of atomics).
//!
//! Use them through the `ouro` crate, which re-exports each derive next to
//! its trait (`ouro::Trace` is both):
//!
//! ```
//! use ouro::Trace;
//!
//! #[derive(Trace)]
//! struct Point {
//!     x: i64,
//!     y: i64,
//! }
//!
//! // Nothing in a `Point` can ever hold a handle: it is never tracked.
//! assert!(!<Point as Trace>::NEEDS_TRACE);
//! ```
//!
//! This crate only holds the entry points; `expand` builds the impls and
//! `attr` parses the helper attributes.

mod attr;
mod expand;

use proc_macro::TokenStream;
use syn::{DeriveInput, parse_macro_input};

/// Derives `ouro::Trace`: the type reports every handle its fields hold to
/// the cycle collector.
///
/// Works on structs (named, tuple and unit), and on enums with any mix of
/// variant shapes. Each type parameter gets a `T: Trace` bound; lifetimes,
/// const parameters and the type's own `where` clause pass through
/// unchanged. Unions and `#[repr(packed)]` types are rejected.
///
/// The bound is added for every type parameter, even one that appears only
/// in skipped fields or in a `PhantomData`; implement `Trace` by hand when
/// such a parameter must accept types without `Trace`.
///
/// The generated impl:
/// - `trace` calls `Trace::trace` on every field, except skipped ones and
///   those whose type has `NEEDS_TRACE == false`;
/// - `NEEDS_TRACE` is the OR of `<FieldType as Trace>::NEEDS_TRACE` over the
///   fields that are not skipped, and `false` when there are none, so a type
///   made only of numbers, strings and skipped fields is never tracked by the
///   collector and costs nothing at collection time;
/// - `STRUCTURAL` (see below) is made when every traced field's type is
///   structural;
/// - `finalize` is the default no-op, or forwards to `ouro::Finalize` with
///   `#[trace(finalize)]`.
///
/// ```
/// use ouro::{Gc, Trace, Weak};
/// use std::cell::RefCell;
///
/// #[derive(Trace)]
/// struct Node {
///     name: String,
///     parent: RefCell<Option<Weak<Node>>>,
///     children: RefCell<Vec<Gc<Node>>>,
/// }
///
/// #[derive(Trace)]
/// enum Value<T> {
///     Nil,
///     Leaf(T),
///     Pair { car: Gc<Value<T>>, cdr: Gc<Value<T>> },
/// }
///
/// assert!(<Node as Trace>::NEEDS_TRACE);
/// assert!(<Value<u32> as Trace>::NEEDS_TRACE);
/// ```
///
/// # Attributes
///
/// On a field:
/// - `#[trace(skip)]`: the field is neither traced nor counted in
///   `NEEDS_TRACE`, and its type need not implement `Trace` (a file, a
///   foreign type). A field whose type names `Gc` or `Weak` cannot be
///   skipped: that would hide an edge from the collector and leak every
///   cycle through it. (std's `Weak` written as `std::rc::Weak`,
///   `rc::Weak` or `std::sync::Weak` is not taken for a handle.)
///
/// On the type:
/// - `#[trace(finalize)]`: `Trace::finalize` calls the type's own
///   `ouro::Finalize` impl, which must exist.
/// - `#[trace(needs_trace = true)]` or `false`: sets `NEEDS_TRACE` instead
///   of computing it from the fields (see the limitation below).
/// - `#[trace(crate = "path")]`: where the ouro items are found, for crates
///   that re-export ouro under another name (default `::ouro`; e.g.
///   `crate = "ouro_refobj"`): `Trace`, `Visitor`, `Structural`,
///   `__private` for a type that contains itself (a glob re-export `pub
///   use ouro::*;` brings it), and `Finalize` with `#[trace(finalize)]`.
///
/// # Structural
///
/// The generated `trace` only calls `trace` on the fields, so the derived
/// impl makes the promise of `Trace::STRUCTURAL` (which the thread-safe
/// collector, `ouro::sync`, needs to collect cycles through a type) exactly
/// when every traced field's type makes it: a field of a type whose
/// hand-written `trace` takes a lock itself makes the derived type not
/// structural. The promise is made with `unsafe` inside the generated code,
/// which is this crate's responsibility: deriving `Trace` works in a crate
/// with `#![forbid(unsafe_code)]` (the lint does not report code written by
/// another crate's macro).
///
/// A field whose type contains the type itself is read coinductively: the
/// type is structural if every field is, assuming the type itself is. The
/// derive looks for `Self` and for the type's name with its own generic
/// parameters (`Node`, `self::Node`, `W<'a, T>`) through tuples, arrays,
/// slices and std's containers (`Option`, `Result`, `Box`, `Vec`,
/// `VecDeque`, `HashMap`, `HashSet`, `BTreeMap`, `BTreeSet`, `RefCell`,
/// `OnceCell`, `Mutex`, `RwLock`; a type of one of these names that is not
/// std's is a compile error there, unless written with a path such as
/// `self::Box`). Under a handle (`Gc`, `Weak`), `PhantomData`, `Rc` or
/// `Arc`, whose impls do not look at their argument, nothing needs assuming.
/// The type named anywhere else (inside another type, `Self::Assoc`,
/// `<Self as Tr>::X`, `crate::path::Node`, `Node<u8>` in `Node<T>`) makes
/// the derived type not structural, which is safe: only the thread-safe
/// collector reads it, and it leaks such cycles instead of freeing them.
///
/// ```
/// use ouro::{Gc, Trace};
/// use std::cell::RefCell;
/// use std::collections::HashMap;
///
/// #[derive(Trace)]
/// struct Dir {
///     entries: HashMap<String, Dir>,
///     parent: RefCell<Option<Gc<Dir>>>,
/// }
///
/// assert!(<Dir as Trace>::STRUCTURAL.is_made());
/// ```
///
/// ```
/// use ouro::{Finalize, Trace};
///
/// #[derive(Trace)]
/// #[trace(finalize)]
/// struct Connection {
///     #[trace(skip)]
///     socket: std::net::UdpSocket,
///     sent: u64,
/// }
///
/// impl Finalize for Connection {
///     fn finalize(&self) {
///         // Runs before a cycle holding this connection is dropped.
///     }
/// }
/// # assert!(!<Connection as Trace>::NEEDS_TRACE);
/// ```
///
/// # Recursive types and `NEEDS_TRACE`
///
/// `Gc<T>` and `Weak<T>` report `NEEDS_TRACE == true` without looking at
/// `T`, so types that are recursive through handles need nothing special.
/// A type that is recursive through an owning pointer (`Option<Box<Self>>`)
/// would make its `NEEDS_TRACE` depend on itself, which rustc rejects as a
/// cycle in constant evaluation. The derive avoids this for direct recursion:
/// a field whose type mentions the type's own name (or `Self`) counts as
/// `true`, which is always correct but keeps the type tracked even when it
/// holds only plain data. Recursion the derive cannot see (through a type
/// alias, or two types that contain each other) still makes rustc report the
/// cycle. Write the answer down with `#[trace(needs_trace = false)]` (or
/// `true`):
///
/// ```
/// use ouro::Trace;
///
/// #[derive(Trace)]
/// #[trace(needs_trace = false)]
/// struct List {
///     value: u32,
///     next: Option<Box<List>>,
/// }
///
/// assert!(!<List as Trace>::NEEDS_TRACE);
/// ```
///
/// A wrong `needs_trace = false` is not unsound: the handles inside act as
/// roots, so the cycles through them leak.
///
/// `STRUCTURAL` has no such attribute. Direct recursion is handled (see
/// [Structural](#structural)); a type alias of the type inside a container
/// of its own fields, or two types that contain each other through owning
/// containers (`A` holds `Option<Box<B>>`, `B` holds `Option<Box<A>>`),
/// make rustc report the cycle (E0391) for `STRUCTURAL` even with
/// `needs_trace` set. Write the type's name instead of the alias; for
/// mutual recursion, hold one side through a `Gc`, or implement `Trace` by
/// hand for one of the two types (it is then not structural unless it
/// promises so).
///
/// # Errors
///
/// Misuse is a compile error on the offending attribute or field, and all
/// the errors of an item are reported at once:
/// - an unknown, misplaced, malformed or repeated attribute;
/// - `#[trace(skip)]` on a field whose type names `Gc` or `Weak`;
/// - a union, or a `#[repr(packed)]` type;
/// - a traced field whose type does not implement `Trace`: rustc reports
///   ``field `file` of `Conn` has type `File`, which does not implement
///   `ouro::Trace` `` on the field's type, and suggests `#[trace(skip)]`;
/// - `#[trace(finalize)]` on a type without a `Finalize` impl.
///
/// # Generated code
///
/// The impl lives in a `const _: () = { ... };` block together with one
/// small private helper trait per traced field (implemented for every
/// `Trace` type), which exists only to give rustc the field's name for the
/// error above; the field's `NEEDS_TRACE` and `trace` are reached through it
/// and inline to direct calls.
#[proc_macro_derive(Trace, attributes(trace))]
pub fn derive_trace(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand::trace(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Derives `ouro::DeepCopy`: `deep_copy` copies every field with
/// `DeepCopy::deep_copy`, so that `ouro::deep_copy` copies a whole graph
/// (shared nodes stay shared, cycles stay cycles, like Python's
/// `copy.deepcopy`).
///
/// Works on structs (named, tuple and unit) and enums; each type parameter
/// gets a `T: DeepCopy` bound, and `where` clauses are kept. Unions and
/// `#[repr(packed)]` types are rejected.
///
/// # Attributes
///
/// - `#[deep_copy(shallow)]` on a field: the field is cloned with `Clone`
///   instead of deep-copied, so the copy shares it (e.g. the same `Rc`, or a
///   `Gc` that should keep pointing at the original).
/// - `#[deep_copy(crate = "path")]` on the type: where the ouro items are
///   found (default `::ouro`).
///
/// # Errors
///
/// Misuse is a compile error on the offending attribute or field, all of an
/// item's errors at once: an unknown, misplaced or malformed attribute, a
/// union or `#[repr(packed)]` type, a field whose type does not implement
/// `DeepCopy` (the message names the field and suggests
/// `#[deep_copy(shallow)]`), and a shallow field whose type is not `Clone`.
#[proc_macro_derive(DeepCopy, attributes(deep_copy))]
pub fn derive_deep_copy(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand::deep_copy(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
