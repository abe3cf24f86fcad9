//! The visitor handed to `Trace::trace`.

use core::marker::PhantomData;

/// Receives the edges of an object graph from `Trace::trace`.
///
/// Users never build one; they pass it on to the `trace` of each field.
#[derive(Debug)]
pub struct Visitor<'a> {
    _marker: PhantomData<&'a mut ()>,
}
