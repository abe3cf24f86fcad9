//! ouro-refobj: the typed handles `Gc<T>` and `Weak<T>` and the `Trace` trait.

mod trace;

pub use ouro_cyclegc::Visitor;
pub use trace::{Finalize, Trace};
