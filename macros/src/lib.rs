//! ouro-macros: `#[derive(Trace)]` and `#[derive(DeepCopy)]` for ouro.
//!
//! CPython's types tell the cycle collector what they hold with a
//! `tp_traverse` slot written by hand in C; these derives write the Rust
//! equivalent, `Trace::trace`, from the fields of a type, and compute at
//! compile time whether the type can hold a handle at all (CPython only
//! finds out at run time, when it untracks tuples of atomics).
//!
//! Use them through the facade crate, `ouro-gc` (library `ouro`), which
//! re-exports each derive next to its trait (`ouro::Trace` is both) and
//! documents them (this example is tested there):
//!
//! ```ignore
//! use ouro::Trace;
//!
//! #[derive(Trace)]
//! struct Point {
//!     x: i64,
//!     y: i64,
//! }
//!
//! // Nothing in a `Point` can ever hold a handle: it is never tracked.
//! assert!(!<Point as Trace>::needs_trace());
//! ```
//!
//! This crate only holds the entry points; `expand` builds the impls and
//! `attr` parses the helper attributes.

mod attr;
mod expand;

use proc_macro::TokenStream;
use syn::{DeriveInput, parse_macro_input};

/// Derives `ouro::Trace`: the type reports every handle its fields hold to
/// the cycle collector.
///
/// Use it through the facade crate, `ouro-gc` (`use ouro::Trace;`), where
/// it is documented with examples:
/// <https://docs.rs/ouro-gc/latest/ouro/derive.Trace.html>.
#[proc_macro_derive(Trace, attributes(trace))]
pub fn derive_trace(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand::trace(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Derives `ouro::DeepCopy`, for `ouro::deep_copy`.
///
/// Use it through the facade crate, `ouro-gc` (`use ouro::DeepCopy;`),
/// where it is documented with examples:
/// <https://docs.rs/ouro-gc/latest/ouro/derive.DeepCopy.html>.
#[proc_macro_derive(DeepCopy, attributes(deep_copy))]
pub fn derive_deep_copy(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand::deep_copy(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
