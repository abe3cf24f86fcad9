//! ouro-refobj: the typed handles `Gc<T>` and `Weak<T>`, the `Trace` trait
//! and its impls for std types.
//!
//! This is the layer that knows `T`: it builds a vtable per type for the
//! collector engine in `ouro-cyclegc` and puts values in pool memory behind a
//! header. Like a CPython object reference, a `Gc<T>` frees its value as soon
//! as the last handle goes; the cycle collector frees what counting cannot.
//! Most users want the facade crate `ouro`, which re-exports all of this.
//!
//! ```
//! # extern crate ouro_refobj as ouro;
//! use ouro::{Gc, gc};
//! let a = Gc::new(String::from("hello"));
//! let b = a.clone();
//! assert!(Gc::ptr_eq(&a, &b));
//! assert!(!Gc::is_tracked(&a)); // a String cannot hold handles
//! assert_eq!(gc::collect(), 0);
//! ```

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
mod closure;
mod coerce;
mod deep_copy;
pub mod gc;
mod gc_functions;
mod handle;
mod impls;
mod object_info;
pub mod sync;
mod trace;
mod weak;
pub mod weakref;
mod weakref_maps;

pub use closure::{Callback, Closure};
pub use deep_copy::{DeepCopier, DeepCopy, deep_copy};
pub use handle::Gc;
#[doc(hidden)]
pub use handle::GcBox;
pub use ouro_cyclegc::Visitor;
pub use trace::{Finalize, Structural, Trace};
pub use weak::Weak;

static_assertions::assert_eq_size!(Option<Gc<u64>>, Gc<u64>);
static_assertions::assert_eq_size!(Gc<u64>, usize);
// `Weak::new()` is a sentinel address, not `None`: the niche stays free.
static_assertions::assert_eq_size!(Option<Weak<u64>>, Weak<u64>);
static_assertions::assert_eq_size!(Weak<u64>, usize);
// The thread-local heap is not thread-safe: handles must stay on their thread.
static_assertions::assert_not_impl_any!(Gc<u64>: Send, Sync);
static_assertions::assert_not_impl_any!(Weak<u64>: Send, Sync);
static_assertions::assert_not_impl_any!(gc::ObjectInfo: Send, Sync);
// The process-wide heap's handles are `Send + Sync` exactly when `T` is.
static_assertions::assert_impl_all!(sync::Gc<u64>: Send, Sync);
static_assertions::assert_impl_all!(sync::Weak<u64>: Send, Sync);
static_assertions::assert_impl_all!(sync::gc::ObjectInfo: Send, Sync);
static_assertions::assert_not_impl_any!(sync::Gc<core::cell::Cell<u64>>: Send, Sync);
static_assertions::assert_eq_size!(Option<sync::Gc<u64>>, sync::Gc<u64>);
static_assertions::assert_eq_size!(sync::Weak<u64>, usize);
static_assertions::assert_eq_size!(Option<sync::Weak<u64>>, sync::Weak<u64>);
// `weakref`: the thread-local half stays on its thread; the process-wide
// half's finalizers and containers may be shared when their contents may.
static_assertions::assert_not_impl_any!(weakref::Finalizer: Send, Sync);
static_assertions::assert_not_impl_any!(weakref::WeakValueMap<u64, u64>: Send, Sync);
static_assertions::assert_impl_all!(sync::weakref::Finalizer: Send, Sync);
static_assertions::assert_impl_all!(sync::weakref::WeakRef<u64>: Send, Sync);
static_assertions::assert_impl_all!(sync::weakref::WeakValueMap<u64, u64>: Send, Sync);
static_assertions::assert_impl_all!(sync::weakref::WeakKeyMap<u64, u64>: Send, Sync);
static_assertions::assert_impl_all!(sync::weakref::WeakSet<u64>: Send, Sync);

#[cfg(test)]
mod handle_tests;
#[cfg(test)]
mod sync_deep_copy_tests;
#[cfg(test)]
mod sync_handle_tests;
#[cfg(test)]
mod sync_stress_tests;
#[cfg(test)]
mod sync_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod weakref_tests;
