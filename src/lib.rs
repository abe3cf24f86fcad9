//! ouro: CPython's memory-management model for Rust graphs.

pub use ouro_refobj::{Finalize, Trace, Visitor};
