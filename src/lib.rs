#![doc = include_str!("../docs/crate.md")]

pub mod guide;

pub use ouro_refobj::{
    Callback, Closure, DeepCopier, DeepCopy, Finalize, Gc, Structural, Trace, Visitor, Weak,
    coerce_gc, deep_copy, gc, sync, weakref,
};
// The derives share their traits' names (different namespaces, like serde's).
// Their documentation lives here, where its examples can use `ouro::` paths.
#[doc = include_str!("derive_deep_copy.md")]
pub use ouro_macros::DeepCopy;
#[doc = include_str!("derive_trace.md")]
pub use ouro_macros::Trace;
#[doc(inline)]
pub use ouro_pool as pool;
// For the code `#[derive(Trace)]` generates.
#[doc(hidden)]
pub use ouro_refobj::__private;
