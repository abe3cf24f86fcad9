//! The panic policy of both kinds of heap, in one place: user code (a
//! `Drop`, `finalize`, `trace`, a callback, a hook, a logger) runs under
//! `catch_unwind`; the collection goes on and the first panic is resumed
//! once the heap is consistent; the others are dropped, and a payload
//! whose own `Drop` panics is leaked rather than let that second panic
//! escape.

use std::panic::{self, AssertUnwindSafe};

/// A panic payload of user code, kept until the heap is consistent.
pub(crate) type Panic = Box<dyn std::any::Any + Send>;

/// Runs `f`, catching a panic; returns the payload.
pub(crate) fn catch(f: impl FnOnce()) -> Option<Panic> {
    panic::catch_unwind(AssertUnwindSafe(f)).err()
}

/// Keeps `p` in `slot` if it is the first panic; drops it otherwise.
pub(crate) fn keep_first(slot: &mut Option<Panic>, p: Option<Panic>) {
    if slot.is_none() {
        *slot = p;
    } else if let Some(extra) = p {
        drop_payload(extra);
    }
}

/// Drops a panic payload that will not be resumed; if its `Drop` panics,
/// that second payload is leaked.
pub(crate) fn drop_payload(p: Panic) {
    if let Err(again) = panic::catch_unwind(AssertUnwindSafe(|| drop(p))) {
        core::mem::forget(again);
    }
}
