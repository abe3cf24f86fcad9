//! The `Trace` and `Finalize` traits.

use core::fmt;
use core::hash::{Hash, Hasher};
use core::marker::PhantomData;

use ouro_cyclegc::Visitor;

/// Reports the handles a value owns to the cycle collector.
///
/// `Trace` is a **safe** trait: a wrong implementation (a missing edge, an
/// extra edge, an edge reported twice, a wrong `needs_trace`) can make the
/// collector leak or make a later dereference panic, but it can never cause
/// undefined behaviour.
///
/// Both collectors free cycles only through values whose impl is
/// [`structural`](Trace::structural): derived impls and ouro's own are; a
/// hand-written one is when it promises so with `unsafe`. The edges any
/// other `trace` reports count as references from outside the cycle, so a
/// cycle through such a value is kept — and reported: counted as
/// `uncollectable` in `gc::get_stats()` and the callbacks, named in a `log`
/// warning once per type, kept in `gc::garbage()` under
/// `DebugFlags::SAVEALL`. (A safe `trace` may run any code, for example
/// move a handle through a `RefCell` between two reports of it; the
/// collector cannot count on what such code reports, see
/// `ouro_cyclegc::Visitor`.)
///
/// `trace` should only report: it should not mutate the value. Reach what
/// is behind a `Mutex` or `RwLock` by calling `trace` on the lock
/// (`self.m.trace(v)`), never by locking it yourself
/// (`self.m.lock().unwrap().trace(v)`): the concurrent collector keeps the
/// locks it took through `trace` while it verifies its garbage.
///
/// `Trace` is dyn-compatible: a trait with `Trace` as a supertrait makes
/// traced trait objects (`Box<dyn Shape>`, `Vec<Box<dyn Shape>>`,
/// `Gc<dyn Shape>`), and [`Closure`](crate::Closure) is a traced closure
/// (see *Trait objects and closures* below). Only ouro implements it for
/// unsized types (`str`, slices, trait objects); the types you implement
/// it for are sized.
///
/// Implement it with `#[derive(Trace)]`:
///
/// ```
/// # extern crate ouro_refobj as ouro;
/// # use ouro_macros::Trace;
/// use ouro::{Gc, Trace, gc};
/// use std::cell::RefCell;
/// use std::collections::HashMap;
///
/// #[derive(Trace)]
/// enum Value {
///     Int(i64),
///     List(RefCell<Vec<Gc<Value>>>),
///     Dict(RefCell<HashMap<String, Gc<Value>>>),
/// }
///
/// let list = Gc::new(Value::List(RefCell::new(vec![])));
/// if let Value::List(items) = &*list {
///     items.borrow_mut().push(Gc::new(Value::Int(1)));
///     items.borrow_mut().push(list.clone()); // the list contains itself
/// }
/// drop(list);
/// assert_eq!(gc::collect(), 2); // the list, and the `Int` it held
/// ```
///
/// or by hand, by calling `trace` on every field that may hold a handle,
/// and promising that this is all it does:
///
/// ```
/// # extern crate ouro_refobj as ouro;
/// use ouro::{Gc, Structural, Trace, Visitor, gc};
/// use std::cell::RefCell;
///
/// struct Node {
///     label: String,
///     next: RefCell<Option<Gc<Node>>>,
/// }
///
/// impl Trace for Node {
///     fn trace(&self, visitor: &mut Visitor<'_>) {
///         self.next.trace(visitor);
///     }
///     // SAFETY: `trace` only calls `trace` on a field, whose type's impl is
///     // ouro's own (structural).
///     fn structural() -> Structural<Self> {
///         unsafe { Structural::promise() }
///     }
/// }
///
/// gc::disable();
/// let a = Gc::new(Node { label: "a".into(), next: RefCell::new(None) });
/// *a.next.borrow_mut() = Some(a.clone());
/// drop(a);
/// assert_eq!(gc::collect(), 1); // without the promise: 0, and reported
/// ```
///
/// # Trait objects and closures
///
/// Give a trait `Trace` as a supertrait and its trait objects are traced:
/// `Box<dyn Shape>` (alone, in a `Vec`, an `Option`...) is an edge like any
/// other container, and `Gc<dyn Shape>` is made with `Gc::from(Box<dyn
/// Shape>)` or, from a `Gc` of the concrete type without a copy, with
/// [`coerce_gc!`](crate::coerce_gc). What a trait object's `trace` is
/// worth (needs tracing, structural) is its concrete type's answer, read
/// through the vtable: a concrete type whose `trace` is not structural is
/// left out of the count, and its cycles reported, as everywhere else.
///
/// ```
/// # extern crate ouro_refobj as ouro;
/// # use ouro_macros::Trace;
/// use ouro::{Gc, Trace, gc};
/// use std::cell::RefCell;
///
/// trait Widget: Trace {
///     fn name(&self) -> String;
/// }
///
/// #[derive(Trace)]
/// struct Panel {
///     children: RefCell<Vec<Box<dyn Widget>>>,
/// }
///
/// #[derive(Trace)]
/// struct Label {
///     owner: Gc<Panel>, // points back at the panel that holds it
/// }
/// impl Widget for Label {
///     fn name(&self) -> String { "label".into() }
/// }
///
/// let panel = Gc::new(Panel { children: RefCell::new(vec![]) });
/// panel.children.borrow_mut().push(Box::new(Label { owner: panel.clone() }));
/// assert_eq!(panel.children.borrow()[0].name(), "label");
/// drop(panel);
/// assert_eq!(gc::collect(), 1); // the cycle through `Box<dyn Widget>`
/// ```
///
/// A closure's captures are hidden from the collector; a
/// [`Closure`](crate::Closure) keeps them in a traced value and its code in
/// a `fn` pointer, and [`Callback`](crate::Callback) is its trait object
/// (`Box<dyn Callback<Event>>`), so a listener that captures the node it
/// hangs on is collected with it: see `Closure`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not implement `ouro::Trace`",
    label = "this type must implement `Trace` to be traced by the cycle collector",
    note = "derive it with `#[derive(Trace)]`, implement it by hand, or mark the field `#[trace(skip)]` if it never holds a `Gc`"
)]
pub trait Trace: crate::__private::TraceDyn {
    /// Visits every handle this value owns, by calling `trace` on each field
    /// that may hold one.
    fn trace(&self, visitor: &mut Visitor<'_>);

    /// The finalizer: called at most once, by the cycle collector, before a
    /// cycle this object belongs to is dropped, while every object of the
    /// cycle is still intact (PEP 442). It may resurrect objects by storing
    /// handles somewhere reachable. An object freed by its reference count
    /// reaching zero just has its `Drop` run.
    fn finalize(&self) {}

    /// `false` for types that can never hold a handle (numbers, strings,
    /// byte buffers…). Objects of such types are never tracked by the
    /// collector and cost nothing at collection time.
    ///
    /// A function rather than a constant so that `Trace` stays
    /// dyn-compatible (`where Self: Sized`: a trait object answers through
    /// its concrete type); an override should return a constant, and the
    /// calls are inlined and folded away. Returning `false` for a type that
    /// does hold handles is not unsound: the handles inside act as roots,
    /// so cycles through them leak.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::{Gc, Trace};
    /// assert!(!<String as Trace>::needs_trace());
    /// assert!(<Vec<Gc<u8>> as Trace>::needs_trace());
    /// ```
    #[inline(always)]
    fn needs_trace() -> bool
    where
        Self: Sized,
    {
        true
    }

    /// Whether `trace` is *structural*: it only calls `trace` on what the
    /// value owns (fields, elements), and so do the impls it calls. Both
    /// collectors only free cycles through values whose type is structural.
    /// The thread-local one subtracts only the edges a structural `trace`
    /// reports: such a `trace` runs no user code, so it cannot move a handle
    /// between two reports of it and make one handle count twice (see
    /// `ouro_cyclegc::Visitor`). The thread-safe one (`sync::Gc`) must
    /// also hold every lock behind which it counted a handle, and can only
    /// hold the locks it takes itself through `trace` (a `trace` that locks
    /// a `Mutex` by itself, dereferences a handle or changes the value
    /// defeats it). `#[derive(Trace)]` and ouro's impls answer it; a
    /// hand-written impl is not structural unless it promises so with
    /// `unsafe`:
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::{Structural, Trace, Visitor, sync::Gc};
    /// use std::sync::Mutex;
    ///
    /// struct Node { next: Mutex<Option<Gc<Node>>> }
    /// impl Trace for Node {
    ///     fn trace(&self, v: &mut Visitor<'_>) { self.next.trace(v) }
    ///     // SAFETY: `trace` only calls `trace` on a field, whose type's
    ///     // impl is structural too (`and`).
    ///     fn structural() -> Structural<Self> {
    ///         unsafe { Structural::promise() }.and(<Mutex<Option<Gc<Node>>>>::structural())
    ///     }
    /// }
    /// assert!(Node::structural().is_made());
    /// ```
    ///
    /// The answer is a [`Structural<Self>`](Structural): a promise made for
    /// another type (`<u8 as Trace>::structural()`) has another type and
    /// cannot stand in for it, so safe code cannot make the promise. A
    /// trait object (`dyn Shape` where `trait Shape: Trace`) has no answer
    /// of its own: the containers that hold one (`Box<dyn Shape>`,
    /// `Gc<dyn Shape>`) ask its concrete type's, through the trait object's
    /// vtable, each time they trace it, and a value whose type is not
    /// structural is then left out of the count like any other.
    ///
    /// Not structural is never unsound; it only means that cycles through
    /// such values are kept (and reported: see the [trait docs](Trace)); the
    /// value itself is still freed when it is not part of the cycle, and its
    /// `trace` still serves to find what is reachable and for introspection.
    #[inline(always)]
    fn structural() -> Structural<Self>
    where
        Self: Sized,
    {
        Structural::NO
    }

    /// Whether [`finalize`](Trace::finalize) may do anything. `false` from
    /// `#[derive(Trace)]` (without `#[trace(finalize)]`) and ouro's own
    /// impls; the collector then neither calls `finalize` nor re-checks the
    /// garbage for resurrection, which saves a pass over it. Leave it alone
    /// in hand-written impls: `true` is always correct.
    #[doc(hidden)]
    #[inline(always)]
    fn has_finalizer() -> bool
    where
        Self: Sized,
    {
        true
    }
}

/// A promise about the `Trace` impl of `T`: see [`Trace::structural`].
///
/// The promise is typed by the impl it is about, so it cannot be borrowed
/// from another type: `fn structural() -> Structural<Self> { <u8 as
/// Trace>::structural() }` does not compile (that promise is a
/// `Structural<u8>`), and the only ways to a made promise are
/// [`promise`](Self::promise), which is `unsafe`, and the impls of ouro and
/// of `#[derive(Trace)]`.
///
/// ```compile_fail,E0308
/// use ouro_refobj::{Structural, Trace, Visitor};
///
/// struct Node;
/// impl Trace for Node {
///     fn trace(&self, _: &mut Visitor<'_>) {}
///     fn structural() -> Structural<Self> {
///         <u8 as Trace>::structural()
///     }
/// }
/// ```
pub struct Structural<T: ?Sized> {
    made: bool,
    /// Invariant in `T`: a promise about one type is never one about a
    /// subtype or supertype of it.
    of: PhantomData<fn(*const T) -> *const T>,
}

impl<T: ?Sized> Structural<T> {
    /// No promise: the default of hand-written impls.
    pub const NO: Structural<T> = Structural::new(false);
    /// What ouro's own impls and handles say (combined with their elements'
    /// promises where they trace elements).
    pub(crate) const YES: Structural<T> = Structural::new(true);

    const fn new(made: bool) -> Self {
        Structural {
            made,
            of: PhantomData,
        }
    }

    /// Promises that the `trace` of `T`'s impl is structural.
    ///
    /// # Safety
    /// That `trace` only calls `Trace::trace` on values the traced value
    /// owns inline or through ouro's containers (its fields and their
    /// elements) — it takes no lock itself, dereferences no handle, changes
    /// nothing — and the result is combined with [`and`](Self::and) with the
    /// `structural()` of every type whose `trace` it calls. A trait object
    /// (`dyn Shape`) has no `structural()`: trace one only through ouro's
    /// `Box` (`self.shape.trace(v)` on the `Box<dyn Shape>`), which asks its
    /// concrete type, never by calling its `trace` yourself. A false promise can
    /// make either collector free a value that is still in use.
    pub const unsafe fn promise() -> Structural<T> {
        Structural::new(true)
    }

    /// Both promises: `T`'s, and that of a type `U` whose `trace` `T`'s
    /// calls. The result is still about `T`.
    pub const fn and<U: ?Sized>(self, other: Structural<U>) -> Structural<T> {
        Structural::new(self.made && other.made)
    }

    /// Whether the promise is made.
    pub const fn is_made(self) -> bool {
        self.made
    }
}

impl<T: ?Sized> Clone for Structural<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: ?Sized> Copy for Structural<T> {}

impl<T: ?Sized> PartialEq for Structural<T> {
    fn eq(&self, other: &Self) -> bool {
        self.made == other.made
    }
}

impl<T: ?Sized> Eq for Structural<T> {}

impl<T: ?Sized> Hash for Structural<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.made.hash(state);
    }
}

impl<T: ?Sized> fmt::Debug for Structural<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Structural").field(&self.made).finish()
    }
}

/// A finalizer that `#[derive(Trace)]` forwards `Trace::finalize` to when the
/// type carries `#[trace(finalize)]`.
///
/// ```
/// # extern crate ouro_refobj as ouro;
/// # use ouro_macros::Trace;
/// use ouro::{Finalize, Gc, Trace, gc};
/// use std::cell::{Cell, RefCell};
///
/// thread_local!(static CLOSED: Cell<u32> = const { Cell::new(0) });
///
/// #[derive(Trace)]
/// #[trace(finalize)]
/// struct Conn {
///     peer: RefCell<Option<Gc<Conn>>>,
/// }
///
/// impl Finalize for Conn {
///     fn finalize(&self) {
///         // Runs once, before the cycle is dropped; the peer is intact.
///         assert!(self.peer.borrow().is_some());
///         CLOSED.with(|c| c.set(c.get() + 1));
///     }
/// }
///
/// let a = Gc::new(Conn { peer: RefCell::new(None) });
/// let b = Gc::new(Conn { peer: RefCell::new(Some(a.clone())) });
/// *a.peer.borrow_mut() = Some(b.clone());
/// drop((a, b));
/// gc::collect();
/// assert_eq!(CLOSED.with(Cell::get), 2);
/// ```
pub trait Finalize {
    /// See [`Trace::finalize`].
    fn finalize(&self);
}
