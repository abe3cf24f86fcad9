//! Items for the code `#[derive(Trace)]` generates; not part of the API.
//!
//! A derived impl is structural when every traced field's type is. A field
//! whose type contains the derived type itself (`Vec<Self>`) cannot ask its
//! type, whose `structural()` would then ask itself forever. The derive
//! reads such a field coinductively: it
//! asks the field type with every occurrence of the derived type replaced by
//! [`Recursive`], a type that counts as structural, which is sound when the
//! derived type is structural wherever it occurs. It only looks through
//! tuples, arrays and std's containers ([`types`]), whose impls here are
//! structural exactly when their elements' are (or, for `Box`, always: it
//! checks its content when it traces it): the field type is asked
//! with each container replaced by std's own, and [`same`] checks that the
//! field type as written is that type (with the derived type for the
//! placeholder), so that a type or alias of the same name cannot stand in
//! for it. Anywhere else the field makes the type not structural.

use core::ptr::NonNull;

use ouro_cyclegc::sync::SyncHeader;
use ouro_cyclegc::{ObjHeader, Visitor};

use crate::{Structural, Trace};

/// Stands for the derived type where it occurs inside one of its own
/// fields' types, assumed structural. Uninhabited: no value of it exists.
#[derive(Debug)]
pub enum Recursive {}

impl Trace for Recursive {
    fn has_finalizer() -> bool {
        false
    }
    fn structural() -> Structural<Self> {
        Structural::YES
    }
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

/// What a value's type says about its `Trace` impl, asked through a value:
/// how ouro's containers learn it for a trait object (from its concrete
/// type, through the vtable).
#[derive(Clone, Copy, Debug)]
pub struct DynInfo {
    /// `Trace::needs_trace` of the concrete type.
    pub needs_trace: bool,
    /// Whether `Trace::structural` of the concrete type is made.
    pub structural: bool,
    /// `core::any::type_name` of the concrete type.
    pub type_name: fn() -> &'static str,
}

mod sealed_dyn {
    /// Keeps [`TraceDyn`](super::TraceDyn) to ouro's impls: a user impl
    /// could answer `structural: true` for a type that made no promise.
    #[allow(unreachable_pub)]
    pub trait Sealed {}
    impl<T: crate::Trace> Sealed for T {}
    impl Sealed for str {}
    impl<T: crate::Trace> Sealed for [T] {}
}

/// The part of `Trace` that a trait object carries in its vtable: a
/// supertrait of `Trace`, implemented by ouro only (sealed), for every sized
/// `Trace` type from its own `Trace` impl, and for `str` and slices. A
/// `dyn Shape` (with `trait Shape: Trace`) gets it from its concrete type,
/// so what it answers is what that type's impl says, and nothing else.
pub trait TraceDyn: sealed_dyn::Sealed {
    /// The answers of the value's type.
    fn __ouro_info(&self) -> DynInfo;

    /// Moves the value into a new object of the thread-local heap, as
    /// `Gc::new` would with its concrete type, and returns it with one
    /// strong reference.
    ///
    /// # Safety
    /// The caller takes over the strong reference (it makes a handle of
    /// it with the value's own metadata).
    unsafe fn __ouro_into_gc(self: Box<Self>) -> NonNull<ObjHeader>
    where
        Self: 'static;

    /// As [`__ouro_into_gc`](Self::__ouro_into_gc), on the process-wide
    /// heap.
    ///
    /// # Safety
    /// As `__ouro_into_gc`.
    unsafe fn __ouro_into_sync_gc(self: Box<Self>) -> NonNull<SyncHeader>
    where
        Self: Send + Sync + 'static;
}

impl<T: Trace> TraceDyn for T {
    #[inline(always)]
    fn __ouro_info(&self) -> DynInfo {
        DynInfo {
            needs_trace: T::needs_trace(),
            structural: T::structural().is_made(),
            type_name: core::any::type_name::<T>,
        }
    }

    unsafe fn __ouro_into_gc(self: Box<Self>) -> NonNull<ObjHeader>
    where
        Self: 'static,
    {
        crate::Gc::into_header(crate::Gc::new(*self))
    }

    unsafe fn __ouro_into_sync_gc(self: Box<Self>) -> NonNull<SyncHeader>
    where
        Self: Send + Sync + 'static,
    {
        crate::sync::Gc::into_header(crate::sync::Gc::new(*self))
    }
}

impl TraceDyn for str {
    fn __ouro_info(&self) -> DynInfo {
        DynInfo {
            needs_trace: false,
            structural: true,
            type_name: core::any::type_name::<str>,
        }
    }

    unsafe fn __ouro_into_gc(self: Box<Self>) -> NonNull<ObjHeader>
    where
        Self: 'static,
    {
        crate::Gc::into_header(crate::Gc::<str>::from(&*self))
    }

    unsafe fn __ouro_into_sync_gc(self: Box<Self>) -> NonNull<SyncHeader>
    where
        Self: Send + Sync + 'static,
    {
        crate::sync::Gc::into_header(crate::sync::Gc::<str>::from(&*self))
    }
}

impl<T: Trace> TraceDyn for [T] {
    fn __ouro_info(&self) -> DynInfo {
        DynInfo {
            needs_trace: T::needs_trace(),
            structural: T::structural().is_made(),
            type_name: core::any::type_name::<[T]>,
        }
    }

    unsafe fn __ouro_into_gc(self: Box<Self>) -> NonNull<ObjHeader>
    where
        Self: 'static,
    {
        crate::Gc::into_header(crate::Gc::<[T]>::from(Vec::from(self)))
    }

    unsafe fn __ouro_into_sync_gc(self: Box<Self>) -> NonNull<SyncHeader>
    where
        Self: Send + Sync + 'static,
    {
        // SAFETY: `[T]: Send + Sync` (the bound above) holds exactly when
        // `T: Send + Sync`.
        unsafe { crate::sync::handle::slice_object(Vec::from(self)) }
    }
}

/// Held by a derived `needs_trace` or `structural` while it asks its
/// fields' types (see [`asking`]).
#[derive(Debug)]
pub struct Asking {
    /// Whether this guard pushed an entry on `ASKING`.
    #[cfg(debug_assertions)]
    pushed: bool,
}

#[cfg(debug_assertions)]
std::thread_local! {
    /// The derived types whose answer is being computed on this thread,
    /// with the question (`true`: `needs_trace`).
    static ASKING: core::cell::RefCell<Vec<(&'static str, bool)>> =
        const { core::cell::RefCell::new(Vec::new()) };
}

/// Called by a derived `needs_trace` (`needs`) or `structural` before it
/// asks its fields' types. Two types that contain each other through
/// owning containers (`A` holds `Vec<B>`, `B` holds `Vec<A>`) would ask
/// each other forever; in debug builds this names them in a panic instead
/// of overflowing the stack. Nothing in release builds.
#[inline(always)]
pub fn asking(type_name: fn() -> &'static str, needs: bool) -> Asking {
    #[cfg(debug_assertions)]
    {
        let name = type_name();
        // Not during the thread's teardown (thread-locals gone): no check.
        let Ok(cycle) = ASKING.try_with(|a| {
            let mut a = a.borrow_mut();
            let cycle = a
                .iter()
                .position(|&(n, q)| n == name && q == needs)
                .map(|i| {
                    a[i..]
                        .iter()
                        .map(|(n, _)| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(" -> ")
                });
            if cycle.is_none() {
                a.push((name, needs));
            }
            cycle
        }) else {
            return Asking { pushed: false };
        };
        if let Some(cycle) = cycle {
            panic!(
                "ouro: `#[derive(Trace)]`: asking whether `{name}` {} asks it again ({cycle} -> \
                 `{name}`): these types contain each other through owning containers. Hold one \
                 side through a `Gc`, or implement `Trace` by hand for one of them",
                if needs {
                    "needs tracing"
                } else {
                    "is structural"
                },
            );
        }
        Asking { pushed: true }
    }
    #[cfg(not(debug_assertions))]
    {
        let _ = (type_name, needs);
        Asking {}
    }
}

impl Drop for Asking {
    #[inline(always)]
    fn drop(&mut self) {
        #[cfg(debug_assertions)]
        if self.pushed {
            let _ = ASKING.try_with(|a| a.borrow_mut().pop());
        }
    }
}
