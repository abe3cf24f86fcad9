//! Items for the code `#[derive(Trace)]` generates; not part of the API.
//!
//! A derived impl is structural when every traced field's type is. A field
//! whose type contains the derived type itself (`Option<Box<Self>>`) cannot
//! ask its type, whose `STRUCTURAL` would then depend on itself (rustc
//! rejects that, E0391). The derive reads such a field coinductively: it
//! asks the field type with every occurrence of the derived type replaced by
//! [`Recursive`], a type that counts as structural, which is sound when the
//! derived type is structural wherever it occurs. It only looks through
//! tuples, arrays and std's containers ([`types`]), whose impls here are
//! structural exactly when their elements' are: the field type is asked
//! with each container replaced by std's own, and [`same`] checks that the
//! field type as written is that type (with the derived type for the
//! placeholder), so that a type or alias of the same name cannot stand in
//! for it. Anywhere else the field makes the type not structural.

use ouro_cyclegc::Visitor;

use crate::{Structural, Trace};

/// Stands for the derived type where it occurs inside one of its own
/// fields' types, assumed structural. Uninhabited: no value of it exists.
#[derive(Debug)]
pub enum Recursive {}

impl Trace for Recursive {
    const HAS_FINALIZER: bool = false;
    const STRUCTURAL: Structural<Self> = Structural::YES;
    fn trace(&self, _: &mut Visitor<'_>) {
        match *self {}
    }
}

/// The containers the derive looks through, under their names. Each one's
/// `Trace` impl (in this crate) traces its elements and nothing else, and
/// is structural exactly when the elements' impls are; keep it so.
pub mod types {
    pub use core::cell::{OnceCell, RefCell};
    pub use core::option::Option;
    pub use core::result::Result;
    pub use std::boxed::Box;
    pub use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
    pub use std::sync::{Mutex, RwLock};
    pub use std::vec::Vec;
}

mod sealed {
    /// Keeps [`Same`](super::Same) to the one impl below.
    #[allow(unreachable_pub)]
    pub trait Same<T: ?Sized> {}
    impl<T: ?Sized> Same<T> for T {}
}

/// `Self` and `T` are the same type. Sealed: an impl outside this crate
/// would let a type of a container's name stand in for it.
#[diagnostic::on_unimplemented(
    message = "`#[derive(Trace)]` took `{Self}` for `{T}`, but it is another type",
    label = "this type has the name of a std container, and holds the derived type",
    note = "write your own type with a path (`self::Name<..>`), so that the derive does not take it for std's; the derived impl is then not structural"
)]
pub trait Same<T: ?Sized>: sealed::Same<T> {}

impl<T: ?Sized> Same<T> for T {}

/// Checks, at compile time, that `A` and `B` are the same type.
pub const fn same<A: Same<B> + ?Sized, B: ?Sized>() {}
