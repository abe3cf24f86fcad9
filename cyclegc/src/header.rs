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
//!   | vtable ptr | flags (9 b)  |  (16 B)    |  vtable ptr | flags       |
//!   +---------------------------+            +---------------------------+
//!   | value: T                  |            | value: T                  |
//!   +---------------------------+            +---------------------------+
//! ```
//!
//! The flags live in the low bits of the vtable pointer (vtables are aligned
//! to 512 bytes). While a collection runs, `prev` holds the object's
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

const FLAG_BITS: usize = 9;
const FLAG_MASK: usize = (1 << FLAG_BITS) - 1;

/// Flags that make a dereference panic.
pub const NO_DEREF: usize = DEAD | UNINIT | SCANNING;

/// Per-type operations the collector needs, built by the typed layer.
///
/// The function pointers receive the object's header; the typed layer knows
/// where the value is.
#[repr(C, align(512))]
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
    /// Whether the value is sized, so that `layout` is the object's layout
    /// (for unsized values it is not, and the handle's metadata gives it).
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

/// Rounds the links prefix up so that the header stays aligned to `align`.
#[inline(always)]
pub(crate) const fn prefix_size(align: usize) -> usize {
    let links = core::mem::size_of::<GcLinks>();
    if align > links { align } else { links }
}
