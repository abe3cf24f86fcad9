//! ouro-cyclegc: the cycle collector engine behind ouro's handles.
//!
//! CPython frees most objects by reference counting and finds the cycles that
//! counting cannot free with a generational collector based on trial
//! deletion. This crate is that engine: object headers with counts and
//! generation links, three generations with CPython's thresholds, and the
//! collection algorithm, over type-erased objects described by a [`VTable`].
//! The typed handles (`Gc<T>`, `Weak<T>`) and the `Trace` trait live in
//! `ouro-refobj`; most users want the facade crate `ouro`.
//!
//! ```
//! // The control functions work on the calling thread's heap.
//! use ouro_cyclegc::control;
//! control::set_threshold([1000, 10, 10]);
//! assert_eq!(control::get_threshold(), [1000, 10, 10]);
//! assert_eq!(control::collect(), 0);
//! ```

mod callbacks;
mod collect;
pub mod control;
mod debug;
#[doc(hidden)]
pub mod dot;
mod header;
mod heap;
mod hooks;
mod list;
mod panics;
pub mod raw;
mod schedule;
mod settings;
mod stats;
pub mod sync;
mod unreachable;
pub(crate) mod visitor;

pub use debug::{CallbackId, CallbackInfo, DebugFlags, Phase};
pub use header::{NO_DEREF, ObjHeader, SLICE_LEN_OFFSET, VTable, slice_box_layout};
pub use heap::{DEFAULT_THRESHOLDS, GENERATIONS};
pub use hooks::HookId;
pub use stats::GenerationStats;
pub use visitor::Visitor;
