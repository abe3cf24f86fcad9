//! ouro-cyclegc: the cycle collector engine behind ouro's handles.

mod visitor;

pub use visitor::Visitor;
