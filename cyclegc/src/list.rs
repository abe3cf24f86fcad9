//! Intrusive circular doubly linked lists of `GcLinks`, with a sentinel head.
//!
//! All functions take raw pointers: a list mixes sentinel heads (fields of
//! the heap) and object prefixes (inside object allocations). Every write
//! goes through the `Cell`s of `GcLinks`, so shared access is enough.

use core::ptr::{self, NonNull};

use crate::header::GcLinks;

/// A pointer to a list node (head or object links).
pub(crate) type Link = NonNull<GcLinks>;

#[inline(always)]
pub(crate) fn node(head: &GcLinks) -> Link {
    NonNull::from(head)
}

/// Makes `head` an empty list.
pub(crate) fn init(head: &GcLinks) {
    let p = ptr::from_ref(head).cast_mut();
    head.next.set(p);
    head.prev.set(p);
}

// The helpers below all have the same contract.
//
// # Safety
// Every pointer is a node of a well-formed list whose `prev` fields hold
// pointers (not `gc_refs`), except where a function says otherwise, and the
// nodes stay allocated for the duration of the call.

#[inline(always)]
pub(crate) unsafe fn next(n: Link) -> Link {
    // SAFETY: caller guarantees `n` is a live node; `next` of a node in a
    // well-formed circular list is never null.
    unsafe { NonNull::new_unchecked(n.as_ref().next.get()) }
}

#[inline(always)]
pub(crate) unsafe fn prev(n: Link) -> Link {
    // SAFETY: as for `next`, with `prev` holding a pointer.
    unsafe { NonNull::new_unchecked(n.as_ref().prev.get()) }
}

// The setters write without reading the old value (`Cell::set` would read
// it), because a new object's links are uninitialised until it is linked.

#[inline(always)]
pub(crate) unsafe fn set_next(n: Link, to: Link) {
    // SAFETY: caller guarantees `n` is live; the write goes through the
    // cell's `UnsafeCell`.
    unsafe { n.as_ref().next.as_ptr().write(to.as_ptr()) }
}

#[inline(always)]
pub(crate) unsafe fn set_prev(n: Link, to: Link) {
    // SAFETY: as for `set_next`.
    unsafe { n.as_ref().prev.as_ptr().write(to.as_ptr()) }
}

/// `true` when the list is empty.
pub(crate) unsafe fn is_empty(head: Link) -> bool {
    // SAFETY: forwarded contract.
    unsafe { next(head) == head }
}

/// Appends `n` (not on any list) at the tail of `head`.
#[inline(always)]
pub(crate) unsafe fn push_back(head: Link, n: Link) {
    // SAFETY: forwarded contract: `head` is a list head with a valid `prev`.
    unsafe {
        let last = prev(head);
        set_next(last, n);
        set_prev(n, last);
        set_next(n, head);
        set_prev(head, n);
    }
}

/// Removes `n` from the list it is on.
#[inline(always)]
pub(crate) unsafe fn unlink(n: Link) {
    // SAFETY: forwarded contract: `n` is on a well-formed list.
    unsafe {
        let p = prev(n);
        let nx = next(n);
        set_next(p, nx);
        set_prev(nx, p);
    }
}

/// Moves every node of `from` to the tail of `to`; `from` becomes empty.
pub(crate) unsafe fn splice(from: Link, to: Link) {
    // SAFETY: forwarded contract: both are well-formed lists.
    unsafe {
        if is_empty(from) {
            return;
        }
        let first = next(from);
        let last = prev(from);
        let to_last = prev(to);
        set_next(to_last, first);
        set_prev(first, to_last);
        set_next(last, to);
        set_prev(to, last);
        set_next(from, from);
        set_prev(from, from);
    }
}

/// Number of nodes (walks the list).
pub(crate) unsafe fn len(head: Link) -> usize {
    let mut n = 0;
    // SAFETY: forwarded contract.
    unsafe {
        let mut cur = next(head);
        while cur != head {
            n += 1;
            cur = next(cur);
        }
    }
    n
}
