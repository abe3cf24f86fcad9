//! One `ObjectInfo` contract for both heaps.
//!
//! `ouro::gc::ObjectInfo` and `ouro::sync::gc::ObjectInfo` stay two types
//! (one is `Send + Sync`, the other is not, and each downcasts to its own
//! heap's `Gc`), but both are made by [`object_info!`] over a [`RawObject`]:
//! what a method means, and the `Debug` format, are written here once.

use core::any::TypeId;

/// A counted, type-erased strong reference to a tracked object of one heap:
/// cloning takes another reference, dropping releases it.
pub(crate) trait RawObject: Clone + Sized {
    /// The heap's handle type.
    type Handle<T: 'static>;
    /// The value's `core::any::type_name`.
    fn type_name(&self) -> &'static str;
    /// The value's `TypeId`.
    fn type_id(&self) -> TypeId;
    /// The address of the value (`Gc::as_ptr` of a handle to it).
    fn value_address(&self) -> usize;
    /// The strong count, this reference included.
    fn strong(&self) -> usize;
    /// The generation the object is in, `None` when frozen (or no longer
    /// tracked).
    fn generation(&self) -> Option<usize>;
    /// The value is there: not dropped by the collector, not a copy
    /// `deep_copy` has not filled yet.
    fn is_live(&self) -> bool;
    /// A handle taking over this reference.
    ///
    /// # Safety
    /// The value is a `T` (`type_id` is `T`'s) and alive.
    unsafe fn into_handle<T: 'static>(self) -> Self::Handle<T>;
    /// The tracked objects the value holds handles to.
    fn referents(&self) -> Vec<Self>;
    /// The tracked objects whose values hold a handle to this one.
    fn referrers(&self) -> Vec<Self>;
}

/// A handle to the object behind `r` if its value is a `T` and alive.
pub(crate) fn downcast<R: RawObject, T: 'static>(r: &R) -> Option<R::Handle<T>> {
    if r.type_id() != TypeId::of::<T>() || !r.is_live() {
        return None;
    }
    // SAFETY: the type matches and the value is alive (checked above);
    // the clone is one counted reference the handle takes over.
    Some(unsafe { r.clone().into_handle::<T>() })
}

/// Defines `ObjectInfo` over a [`RawObject`] type whose handles are
/// `handle` (the name of the heap's `Gc` in scope), with the doc comment
/// and attributes given, and the examples of `referents` and `referrers`.
macro_rules! object_info {
    (
        $(#[$meta:meta])*
        raw: $raw:ty,
        handle: $handle:ident,
        referents: { $(#[$referents:meta])* }
        referrers: { $(#[$referrers:meta])* }
    ) => {
        $(#[$meta])*
        ///
        /// It holds a strong reference, so the object stays alive while the
        /// `ObjectInfo` exists (as a Python list of objects would keep them
        /// alive). Its `Debug` shows the type name, the address, the
        /// reference count and the generation.
        #[derive(Clone)]
        pub struct ObjectInfo(pub(crate) $raw);

        impl ObjectInfo {
            /// The type name of the value (`core::any::type_name`).
            pub fn type_name(&self) -> &'static str {
                $crate::object_info::RawObject::type_name(&self.0)
            }

            /// The address of the value (`Gc::as_ptr(&h) as usize` for a
            /// handle `h` to it, on either heap): the same for every handle
            /// to the object and stable while it lives, so it identifies
            /// the object (as Python's `id()` does).
            pub fn address(&self) -> usize {
                $crate::object_info::RawObject::value_address(&self.0)
            }

            /// The strong count, not counting the reference this
            /// `ObjectInfo` holds.
            pub fn refcount(&self) -> usize {
                $crate::object_info::RawObject::strong(&self.0).saturating_sub(1)
            }

            /// The generation the object is in (0, 1 or 2), `None` when
            /// frozen (or no longer tracked).
            pub fn generation(&self) -> Option<usize> {
                $crate::object_info::RawObject::generation(&self.0)
            }

            /// A handle to the object if its value is a `T` and alive:
            /// `None` for another type, for a value the collector dropped
            /// and for a copy `deep_copy` has not filled yet (both reachable
            /// as referents).
            pub fn downcast<T: 'static>(&self) -> Option<$handle<T>> {
                $crate::object_info::downcast::<$raw, T>(&self.0)
            }

            /// The tracked objects this object's value holds handles to:
            /// [`get_referents`] for an object of any type, so that a chain
            /// of objects of mixed types can be walked without a downcast
            /// at each hop.
            $(#[$referents])*
            pub fn referents(&self) -> Vec<ObjectInfo> {
                $crate::object_info::RawObject::referents(&self.0)
                    .into_iter()
                    .map(ObjectInfo)
                    .collect()
            }

            /// The tracked objects whose values hold a handle to this
            /// object: [`get_referrers`] for an object of any type.
            $(#[$referrers])*
            pub fn referrers(&self) -> Vec<ObjectInfo> {
                $crate::object_info::RawObject::referrers(&self.0)
                    .into_iter()
                    .map(ObjectInfo)
                    .collect()
            }
        }

        impl core::fmt::Debug for ObjectInfo {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.debug_struct("ObjectInfo")
                    .field("type_name", &self.type_name())
                    .field("address", &format_args!("{:#x}", self.address()))
                    .field("refcount", &self.refcount())
                    .field("generation", &self.generation())
                    .finish()
            }
        }
    };
}

pub(crate) use object_info;

/// The panic of `get_objects(Some(g))` for `g > 2` on either heap (CPython
/// raises `ValueError` for a generation of 3 or more).
#[track_caller]
pub(crate) fn check_generation(function: &str, generation: Option<usize>) {
    if let Some(g) = generation {
        assert!(
            g < ouro_cyclegc::GENERATIONS,
            "{function}: generation must be 0, 1 or 2 (or None for all three), got {g}"
        );
    }
}
