//! Object headers: the reference counts, the flags, the per-type vtable and
//! the generation-list links.
//!
//! Every object lives in one allocation. A handle points at the
//! [`ObjHeader`]; the value follows it. Objects whose type can hold handles
//! (tracked objects) carry a [`GcLinks`] prefix right before the header, the
//! way CPython puts `PyGC_Head` before `PyObject`:
//!
//! ```text
//!   tracked object (32-byte header)            untracked object (16-byte header)
//!
//!   +---------------------------+ <- allocation start
//!   | next: *GcLinks            |  GcLinks (16 B): generation list links
//!   | prev: *GcLinks / gc_refs  |
//!   +---------------------------+ <- handle  +---------------------------+ <- allocation start, handle
//!   | strong: u32 | weak: u32   |  ObjHeader |  strong: u32 | weak: u32  |
//!   | vtable ptr | flags (11 b) |  (16 B)    |  vtable ptr | flags       |
//!   +---------------------------+            +---------------------------+
//!   | value: T                  |            | value: T                  |
//!   +---------------------------+            +---------------------------+
//! ```
//!
//! The flags live in the low bits of the vtable pointer (vtables are aligned
//! to 2048 bytes). While a collection runs, `prev` holds the object's
//! `gc_refs` (a count with no provenance) instead of a pointer; the collector
//! restores the links before it returns, as CPython does with `_gc_prev`.
//!
//! When the alignment of `T` is above 16, the prefix grows to that alignment
//! so that the value stays aligned; `GcLinks` always sits immediately before
//! the header.

use core::alloc::Layout;
use core::cell::Cell;
use core::ptr::{self, NonNull};

use crate::Visitor;

/// The value has been dropped (by its count reaching zero or by the
/// collector), is being dropped, or was never initialised. Dereferencing a
/// handle to such an object panics.
pub(crate) const DEAD: usize = 1 << 0;
/// The value has not been written yet (`Gc::new_cyclic`, deep copy).
pub(crate) const UNINIT: usize = 1 << 1;
/// The allocation has a `GcLinks` prefix (the type can hold handles).
pub(crate) const HAS_LINKS: usize = 1 << 2;
/// The object is on a generation list (or one of the collector's lists).
pub(crate) const TRACKED: usize = 1 << 3;
/// Part of the set a running collection is counting (`gc_refs` in `prev`):
/// set from `update_refs` to the end of `move_unreachable`, and during the
/// resurrection check; never on an object the collector has let go of, nor
/// while finalizers or drops run. Such objects cannot be dereferenced and
/// are never freed by a decref.
pub(crate) const SCANNING: usize = 1 << 4;
/// Found unreachable by the running collection; still protected from being
/// freed by a decref until the collector releases it.
pub(crate) const UNREACHABLE: usize = 1 << 5;
/// `Finalize` has run (PEP 442: at most once).
pub(crate) const FINALIZED: usize = 1 << 6;
/// Weak references were cleared by the collector; `upgrade` returns `None`.
/// Set on the unreachable set before finalizers run; cleared again if the
/// set is resurrected (kept on saved `SAVEALL` garbage and dead objects).
pub(crate) const WEAK_CLEARED: usize = 1 << 7;
/// `get_mut` handed out `&mut T`: do not trace while the handle is unique.
pub(crate) const EXCLUSIVE: usize = 1 << 8;
/// Death hooks (`weakref`) wait for this object in the heap's side table
/// (`hooks`): read where a value dies, so objects without hooks pay one
/// test of a flag word already loaded there.
pub(crate) const HOOKED: usize = 1 << 9;
/// The value is pinned (`Gc::pin`): it is never moved out of the object nor
/// handed out as `&mut` (`get_mut`, `try_unwrap`, `make_mut` refuse), even
/// through a handle obtained by introspection (`ObjectInfo::downcast`).
pub(crate) const PINNED: usize = 1 << 10;

const FLAG_BITS: usize = 11;
const FLAG_MASK: usize = (1 << FLAG_BITS) - 1;

/// Flags that make a dereference panic.
pub const NO_DEREF: usize = DEAD | UNINIT | SCANNING;

/// Per-type operations the collector needs, built by the typed layer.
///
/// The function pointers receive the object's header; the typed layer knows
/// where the value is.
#[repr(C, align(2048))]
#[derive(Debug)]
pub struct VTable {
    /// Calls `Trace::trace` on the value.
    pub trace: unsafe fn(NonNull<ObjHeader>, &mut Visitor<'_>),
    /// Calls `Trace::finalize` on the value.
    pub finalize: unsafe fn(NonNull<ObjHeader>),
    /// Drops the value in place (not the memory).
    pub drop_value: unsafe fn(NonNull<ObjHeader>),
    /// The layout of header + value (not counting the links prefix).
    pub layout: Layout,
    /// Offset of the value from the header.
    pub value_offset: usize,
    /// `core::any::type_name` of the value.
    pub type_name: fn() -> &'static str,
    /// `TypeId` of the value, for downcasts.
    pub type_id: fn() -> core::any::TypeId,
    /// Whether `finalize` may do anything (`false` lets the collector skip
    /// finalization and the resurrection check).
    pub has_finalizer: bool,
    /// Whether the value is sized, so that `layout` is the object's layout.
    /// For unsized values it is not: untracked ones (`str`, slices of leaf
    /// types) are measured by the handle's metadata; tracked ones are slices
    /// whose `layout` is the layout of one element and whose element count
    /// is stored in the allocation (see [`ObjHeader::boxed_layout`]).
    pub sized: bool,
    /// Whether `trace` is structural (`Trace::structural`): it runs no code
    /// but ouro's own impls and derived ones. Only the edges such a `trace`
    /// reports are subtracted in trial deletion (see `visitor`); read by the
    /// collector only.
    pub structural: bool,
}

// The flags need the low bits of every vtable address.
static_assertions::const_assert!(core::mem::align_of::<VTable>() >= 1 << FLAG_BITS);

/// The part of every object that handles point at.
#[repr(C)]
#[derive(Debug)]
pub struct ObjHeader {
    strong: Cell<u32>,
    weak: Cell<u32>,
    /// `&'static VTable` with the flags in its low `FLAG_BITS` bits.
    vtable: Cell<*const VTable>,
}

/// Generation-list links, the prefix of a tracked object.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct GcLinks {
    pub(crate) next: Cell<*mut GcLinks>,
    /// The previous node, or `gc_refs` (no provenance) while scanning.
    pub(crate) prev: Cell<*mut GcLinks>,
}

static_assertions::assert_eq_size!(ObjHeader, [usize; 2]);
static_assertions::assert_eq_size!(GcLinks, [usize; 2]);
static_assertions::const_assert!(
    core::mem::size_of::<ObjHeader>() + core::mem::size_of::<GcLinks>() <= 32
);

#[cold]
#[inline(never)]
#[track_caller]
fn count_overflow() -> ! {
    // Like `Rc`: the count cannot overflow without leaking handles on purpose.
    std::process::abort()
}

impl ObjHeader {
    /// A header with one strong reference and no weak ones.
    pub(crate) const fn new(vtable: &'static VTable, flags: usize, strong: u32) -> Self {
        ObjHeader {
            strong: Cell::new(strong),
            weak: Cell::new(0),
            vtable: Cell::new(ptr::from_ref(vtable).wrapping_byte_add(flags)),
        }
    }

    /// The strong count.
    #[inline(always)]
    pub fn strong(&self) -> usize {
        self.strong.get() as usize
    }

    /// The weak count.
    #[inline(always)]
    pub fn weak(&self) -> usize {
        self.weak.get() as usize
    }

    /// Adds one strong reference.
    #[inline(always)]
    pub fn inc_strong(&self) {
        let n = self.strong.get().wrapping_add(1);
        if n == 0 {
            count_overflow();
        }
        self.strong.set(n);
    }

    /// Adds one strong reference for a new handle cloned from an existing
    /// one: a `&mut T` from `Gc::get_mut` cannot be alive any more.
    #[inline(always)]
    pub fn inc_strong_clone(&self) {
        self.inc_strong();
        let v = self.vtable.get();
        if v.addr() & EXCLUSIVE != 0 {
            self.vtable.set(v.map_addr(|a| a & !EXCLUSIVE));
        }
    }

    /// Removes one strong reference and returns the new count.
    #[inline(always)]
    pub fn dec_strong(&self) -> usize {
        let n = self.strong.get() - 1;
        self.strong.set(n);
        n as usize
    }

    /// Adds one weak reference (which also ends any `Gc::get_mut` borrow).
    #[inline]
    pub fn inc_weak(&self) {
        self.clear(EXCLUSIVE);
        let n = self.weak.get().wrapping_add(1);
        if n == 0 {
            count_overflow();
        }
        self.weak.set(n);
    }

    /// Removes one weak reference and returns the new count.
    #[inline]
    pub fn dec_weak(&self) -> usize {
        let n = self.weak.get() - 1;
        self.weak.set(n);
        n as usize
    }

    /// All flags.
    #[inline(always)]
    pub fn flags(&self) -> usize {
        self.vtable.get().addr() & FLAG_MASK
    }

    #[inline(always)]
    pub(crate) fn has(&self, flag: usize) -> bool {
        self.flags() & flag != 0
    }

    #[inline(always)]
    pub(crate) fn set(&self, flag: usize) {
        self.vtable.set(self.vtable.get().map_addr(|a| a | flag));
    }

    /// Clears `off` and sets `on` in one update.
    #[inline(always)]
    pub(crate) fn replace_flags(&self, off: usize, on: usize) {
        self.vtable
            .set(self.vtable.get().map_addr(|a| (a & !off) | on));
    }

    #[inline(always)]
    pub(crate) fn clear(&self, flag: usize) {
        self.vtable.set(self.vtable.get().map_addr(|a| a & !flag));
    }

    /// The vtable.
    #[inline]
    pub fn vtable(&self) -> &'static VTable {
        let p = self.vtable.get().map_addr(|a| a & !FLAG_MASK);
        // SAFETY: the field always holds a `&'static VTable` tagged with flag
        // bits that fit in its alignment (`new`, `set`, `clear` only touch
        // the low `FLAG_BITS` bits), so masking them off gives it back.
        unsafe { &*p }
    }

    /// The value can be dereferenced.
    #[inline(always)]
    pub fn is_live(&self) -> bool {
        self.flags() & NO_DEREF == 0
    }

    /// The object was allocated with generation-list links (its type can
    /// hold handles); its vtable's `layout` is then its layout.
    #[inline]
    pub fn has_links(&self) -> bool {
        self.has(HAS_LINKS)
    }

    /// The object is on a generation list.
    pub fn is_tracked(&self) -> bool {
        self.has(TRACKED)
    }

    /// The value is pinned (`Gc::pin`).
    #[inline]
    pub fn is_pinned(&self) -> bool {
        self.has(PINNED)
    }

    /// `finalize` has run.
    pub fn is_finalized(&self) -> bool {
        self.has(FINALIZED)
    }

    /// `Weak::upgrade` may succeed: the value is live and the collector has
    /// not cleared weak references to it.
    #[inline]
    pub fn can_upgrade(&self) -> bool {
        self.strong() > 0 && self.flags() & (DEAD | UNINIT | WEAK_CLEARED) == 0
    }

    /// Marks the value as written (`Gc::new_cyclic`, deep copy).
    pub(crate) fn mark_init(&self) {
        self.clear(UNINIT | DEAD);
    }

    /// The links prefix of a tracked object.
    ///
    /// # Safety
    /// `this` is a live object header with `HAS_LINKS` set.
    #[inline(always)]
    pub(crate) unsafe fn links(this: NonNull<ObjHeader>) -> NonNull<GcLinks> {
        // SAFETY: objects with `HAS_LINKS` were allocated with a `GcLinks`
        // right before the header (`heap::alloc_object`), in the same
        // allocation, so the address is in bounds and has its provenance.
        unsafe { this.cast::<GcLinks>().sub(1) }
    }

    /// The layout of header + value of `this` (not counting the links
    /// prefix): the vtable's `layout` for sized values; for a tracked slice,
    /// computed from its element layout (the vtable's `layout`) and its
    /// element count, stored [`SLICE_LEN_OFFSET`] bytes before the header.
    ///
    /// # Safety
    /// `this` is an allocated object header (its memory not freed) whose
    /// value is sized or which has links (a tracked slice, whose length was
    /// written with [`ObjHeader::write_slice_len`]).
    #[inline]
    pub unsafe fn boxed_layout(this: NonNull<ObjHeader>) -> Layout {
        // SAFETY: caller contract: the header is allocated.
        let vt = unsafe { this.as_ref() }.vtable();
        if vt.sized {
            return vt.layout;
        }
        // SAFETY: a tracked slice's length was written at this offset,
        // inside its allocation (`slice_box_layout`'s alignment makes the
        // prefix 32 bytes or more), and it never changes.
        let len = unsafe {
            this.cast::<u8>()
                .sub(SLICE_LEN_OFFSET)
                .cast::<usize>()
                .read()
        };
        match slice_box_layout(vt.layout, len) {
            Some(l) => l,
            None => unreachable!("ouro: a tracked slice's layout is checked when it is made"),
        }
    }

    /// Records the element count of a tracked slice (see
    /// [`ObjHeader::boxed_layout`]).
    ///
    /// # Safety
    /// `this` was just allocated with links and header + value layout
    /// `slice_box_layout(element, len)`, and is not shared yet.
    pub unsafe fn write_slice_len(this: NonNull<ObjHeader>, len: usize) {
        // SAFETY: the prefix of such an allocation is at least 32 bytes
        // (its alignment is at least 32), so the word 32 bytes before the
        // header is inside it and free (the links take the last 16 bytes).
        unsafe {
            this.cast::<u8>()
                .sub(SLICE_LEN_OFFSET)
                .cast::<usize>()
                .write(len)
        }
    }

    /// Explains why a dereference failed; called on the cold path.
    #[cold]
    #[inline(never)]
    #[track_caller]
    pub fn deref_failed(&self) -> ! {
        let f = self.flags();
        if f & UNINIT != 0 {
            panic!(
                "ouro: dereferenced a Gc<{}> whose value is not initialised yet \
                 (Gc::new_cyclic or deep_copy is still building it)",
                (self.vtable().type_name)()
            )
        } else if f & DEAD != 0 {
            panic!(
                "ouro: dereferenced a Gc<{}> whose value was already dropped by the \
                 cycle collector (reached from the Drop of another object of the same \
                 garbage, or through a Trace impl reporting edges the value does not own)",
                (self.vtable().type_name)()
            )
        } else {
            panic!(
                "ouro: dereferenced a Gc<{}> from inside Trace::trace while the \
                 collector was scanning it; trace must only visit fields",
                (self.vtable().type_name)()
            )
        }
    }
}

impl GcLinks {
    /// The header that follows these links.
    ///
    /// # Safety
    /// `this` is the links prefix of a live object (not a list head).
    #[inline(always)]
    pub(crate) unsafe fn header(this: NonNull<GcLinks>) -> NonNull<ObjHeader> {
        // SAFETY: the header follows the links in the same allocation.
        unsafe { this.add(1).cast() }
    }
}

/// Where a tracked slice keeps its element count: this many bytes before
/// its header, in the padding in front of its links.
pub const SLICE_LEN_OFFSET: usize = 32;

/// The header + value layout of a tracked slice of `len` elements of layout
/// `element` (`None` if too large). Aligned to at least 32, so that the
/// links prefix (`prefix_size`) is at least 32 bytes and leaves room for the
/// element count before the links.
pub fn slice_box_layout(element: Layout, len: usize) -> Option<Layout> {
    let array = element.size().checked_mul(len)?;
    let header = core::mem::size_of::<ObjHeader>();
    let align = if element.align() > SLICE_LEN_OFFSET {
        element.align()
    } else {
        SLICE_LEN_OFFSET
    };
    // The value starts at the header's size rounded up to the element's
    // alignment, as `repr(C)` places it in `GcBox<[T]>`.
    let offset = (header + element.align() - 1) & !(element.align() - 1);
    let size = offset.checked_add(array)?;
    match Layout::from_size_align(size, align) {
        Ok(l) => Some(l.pad_to_align()),
        Err(_) => None,
    }
}

/// Rounds the links prefix up so that the header stays aligned to `align`.
#[inline(always)]
pub(crate) const fn prefix_size(align: usize) -> usize {
    let links = core::mem::size_of::<GcLinks>();
    if align > links { align } else { links }
}
