//! ouro: CPython's memory-management model for Rust graphs.

pub use ouro_refobj::{Finalize, Trace, Visitor};
// The derives share their traits' names (different namespaces, like serde's).
pub use ouro_macros::{DeepCopy, Trace};
pub use ouro_pool as pool;
