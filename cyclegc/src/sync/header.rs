//! The header of an object on the process-wide heap, and its bits.

use core::alloc::Layout;
use core::cell::UnsafeCell;
use core::fmt;
use core::ptr::NonNull;

use super::prims::{AtomicU32, AtomicU64, Ordering};
use crate::Visitor;

/// One strong reference in `counts`.
pub(crate) const STRONG_ONE: u64 = 1;
/// The strong count's bits.
pub(crate) const STRONG_MASK: u64 = (1 << 62) - 1;
/// The collector has claimed the object as garbage: `upgrade` fails, and a
/// decrement to zero does not free it (I4).
pub(crate) const CLAIMED: u64 = 1 << 62;
/// The collector is verifying the object (step 3 (b) to its end): set by
/// the collector's mark, cleared by any increment (`clone`'s slow path,
/// `upgrade`) and by the collector. The sign bit, so that `clone` finds it
/// with the flags of its one `lock inc`, as `Arc` finds its overflow.
pub(crate) const MARKED: u64 = 1 << 63;
/// A strong count at or above this aborts the process (as `Arc` does near
/// `isize::MAX`). Only checked where an increment takes a slow path: the
/// fast path of `clone` does not check it, and reaching it takes 2^61
/// increments without a decrement (see the module docs, "Orderings").
pub(crate) const STRONG_LIMIT: u64 = 1 << 61;

/// The object has `SyncLinks` before its header (it is tracked).
pub(crate) const HAS_LINKS: u32 = 1 << 0;
/// The value was dropped (or is being dropped): dereferencing panics.
pub(crate) const DEAD: u32 = 1 << 1;
/// The collector owns the object's links and may read its value (I1, I2).
pub(crate) const IN_COLLECTOR: u32 = 1 << 2;
/// The strong count reached zero while `IN_COLLECTOR` was set: the
/// collector drops the object when it gives it back.
pub(crate) const ZOMBIE: u32 = 1 << 3;
/// `get_mut` handed out a `&mut T` that may still be alive (I3).
pub(crate) const EXCLUSIVE: u32 = 1 << 4;
/// `finalize` ran (at most once).
pub(crate) const FINALIZED: u32 = 1 << 5;
/// The collector cleared the weak references (`upgrade` returns `None`).
pub(crate) const WEAK_CLEARED: u32 = 1 << 6;
/// The object is on a shard list (set once the value is initialised).
pub(crate) const LINKED: u32 = 1 << 7;
/// Death hooks (`weakref`) were added for the object (see `hooks`): its
/// death looks the side table up. Set under the rules of the flag word
/// (`raw::add_death_hook`), never cleared while the object lives.
pub(crate) const HOOKED: u32 = 1 << 10;
pub(crate) const GEN_SHIFT: u32 = 8;
pub(crate) const GEN_MASK: u32 = 0b11 << GEN_SHIFT;
/// The generation value of frozen objects.
pub(crate) const FROZEN_GEN: u32 = 3;
pub(crate) const SHARD_SHIFT: u32 = 12;
pub(crate) const SHARD_MASK: u32 = 0b1111 << SHARD_SHIFT;
/// The value is pinned (`sync::Gc::pin`): it is never moved out nor handed
/// out as `&mut`. Set before the object is published, never cleared.
pub(crate) const PINNED: u32 = 1 << 16;
/// The value is not written yet (`sync::Gc::new_uninit`): the object is not
/// linked, and a drop of its last handle frees it without dropping the value.
pub(crate) const UNINIT: u32 = 1 << 17;
/// The heap a tracked object belongs to (`heap::heap_of`): 0 for the
/// process-wide default heap, otherwise the id of a heap made with
/// `control::Heap::new`. Written when the object is allocated, and
/// rewritten only when a dropped heap hands its survivors to the default
/// one (under both shard locks, `heap::migrate`).
pub(crate) const HEAP_SHIFT: u32 = 20;
pub(crate) const HEAP_MASK: u32 = 0xfff << HEAP_SHIFT;

/// Per-type operations, built by the typed layer (`ouro_refobj::sync`).
#[derive(Debug)]
pub struct SyncVTable {
    /// Calls `Trace::trace` on the value.
    pub trace: unsafe fn(NonNull<SyncHeader>, &mut Visitor<'_>),
    /// Calls `Trace::finalize` on the value.
    pub finalize: unsafe fn(NonNull<SyncHeader>),
    /// Drops the value in place.
    pub drop_value: unsafe fn(NonNull<SyncHeader>),
    /// Layout of header + value (without the links prefix); for an unsized
    /// value (`sized == false`), the layout of one element of the slice.
    pub layout: Layout,
    /// Offset of the value from the header.
    pub value_offset: usize,
    /// `core::any::type_name` of the value.
    pub type_name: fn() -> &'static str,
    /// `TypeId` of the value.
    pub type_id: fn() -> core::any::TypeId,
    /// Whether `finalize` may do anything.
    pub has_finalizer: bool,
    /// Whether the type can hold handles (`Trace::needs_trace`).
    pub tracked: bool,
    /// Whether the value is sized. An unsized value is a slice (or `str`):
    /// `layout` is its element's, and its length is stored in its block
    /// (see [`SyncHeader::boxed_layout`]).
    pub sized: bool,
    /// Whether the type's `trace` only calls `trace` on what the value owns
    /// (`Trace::structural`): the verification (step 3) only accepts such
    /// objects.
    pub structural: bool,
}

/// The links before a tracked object's header (see I1 for who may touch
/// them). While the collector owns the object, `prev` holds its index in the
/// collector's tables instead of a pointer.
#[repr(C)]
pub(crate) struct SyncLinks {
    pub(crate) next: UnsafeCell<*mut SyncHeader>,
    pub(crate) prev: UnsafeCell<*mut SyncHeader>,
}

/// The part of every object on the process-wide heap that handles point at.
#[repr(C)]
pub struct SyncHeader {
    pub(crate) counts: AtomicU64,
    pub(crate) weak: AtomicU32,
    pub(crate) flags: AtomicU32,
    pub(crate) vtable: &'static SyncVTable,
}

static_assertions::assert_eq_size!(SyncLinks, [usize; 2]);
#[cfg(all(not(loom), target_pointer_width = "64"))]
static_assertions::assert_eq_size!(SyncHeader, [u64; 3]);

impl fmt::Debug for SyncHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.counts.load(Ordering::Relaxed);
        f.debug_struct("SyncHeader")
            .field("type", &(self.vtable.type_name)())
            .field("strong", &(c & STRONG_MASK))
            .field("claimed", &(c & CLAIMED != 0))
            .field("marked", &(c & MARKED != 0))
            .field("weak", &self.weak.load(Ordering::Relaxed).saturating_sub(1))
            .field(
                "flags",
                &format_args!("{:#x}", self.flags.load(Ordering::Relaxed)),
            )
            .finish()
    }
}

impl SyncHeader {
    pub(crate) fn new(vtable: &'static SyncVTable, strong: u64, flags: u32) -> Self {
        SyncHeader {
            counts: AtomicU64::new(strong),
            weak: AtomicU32::new(1),
            flags: AtomicU32::new(flags),
            vtable,
        }
    }

    #[inline(always)]
    pub(crate) fn flags(&self) -> u32 {
        self.flags.load(Ordering::Acquire)
    }

    /// Sets and clears flag bits with a plain load and store, not a
    /// read-modify-write. Only for a writer that no other thread can race:
    /// under the object's shard lock while it is listed (every other writer
    /// of a listed object's flags holds that lock too), or on an object only
    /// this thread can reach (claimed garbage, or unlinked with a zero count).
    #[inline(always)]
    pub(crate) fn update_flags_exclusively(&self, set: u32, clear: u32) {
        let f = self.flags.load(Ordering::Relaxed);
        self.flags.store((f & !clear) | set, Ordering::Release);
    }

    #[inline(always)]
    pub(crate) fn has(&self, bit: u32) -> bool {
        self.flags() & bit != 0
    }

    /// The strong count (without the claim and mark bits).
    #[inline(always)]
    pub fn strong(&self) -> usize {
        (self.counts.load(Ordering::Relaxed) & STRONG_MASK) as usize
    }

    /// The number of weak handles.
    #[inline(always)]
    pub fn weak(&self) -> usize {
        // The strong side holds one weak count while it is alive.
        let w = self.weak.load(Ordering::Relaxed) as usize;
        if self.counts.load(Ordering::Relaxed) & STRONG_MASK == 0 {
            w
        } else {
            w.saturating_sub(1)
        }
    }

    /// The type's vtable.
    #[inline(always)]
    pub fn vtable(&self) -> &'static SyncVTable {
        self.vtable
    }

    pub(crate) fn generation(&self) -> u32 {
        (self.flags.load(Ordering::Relaxed) & GEN_MASK) >> GEN_SHIFT
    }

    /// The id of the heap the object belongs to (see [`HEAP_MASK`]).
    #[inline(always)]
    pub(crate) fn heap_id(&self) -> u32 {
        (self.flags.load(Ordering::Relaxed) & HEAP_MASK) >> HEAP_SHIFT
    }

    pub(crate) fn shard(&self) -> usize {
        ((self.flags.load(Ordering::Relaxed) & SHARD_MASK) >> SHARD_SHIFT) as usize
    }

    /// The links of a tracked object.
    ///
    /// # Safety
    /// `obj` is a live header with `HAS_LINKS`.
    #[inline(always)]
    pub(crate) unsafe fn links(obj: NonNull<SyncHeader>) -> NonNull<SyncLinks> {
        // SAFETY: tracked objects are allocated with the links immediately
        // before the header (see `heap::layout_of`).
        unsafe { obj.cast::<SyncLinks>().sub(1) }
    }

    /// The layout of header + value of `obj`: the vtable's for a sized
    /// value; for a slice, computed from its stored length.
    ///
    /// # Safety
    /// `obj` is an allocated header.
    #[inline]
    pub unsafe fn boxed_layout(obj: NonNull<SyncHeader>) -> Layout {
        // SAFETY: caller contract.
        let vt = unsafe { obj.as_ref() }.vtable;
        if vt.sized {
            vt.layout
        } else {
            // SAFETY: caller contract: an allocated slice object.
            let len = unsafe { super::heap::unsized_len(obj) };
            super::heap::unsized_boxed(vt, len).0
        }
    }

    /// Address of the value.
    ///
    /// # Safety
    /// `obj` is a live header.
    #[inline(always)]
    pub unsafe fn value_ptr(obj: NonNull<SyncHeader>) -> NonNull<u8> {
        // SAFETY: caller contract; `value_offset` is inside the allocation.
        unsafe { obj.cast::<u8>().add(obj.as_ref().vtable.value_offset) }
    }
}

#[cold]
#[inline(never)]
pub(crate) fn count_overflow() -> ! {
    std::process::abort()
}
