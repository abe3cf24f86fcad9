//! `Weak<T>`: a handle that does not keep the value alive.

use core::fmt;
use core::marker::PhantomData;
use core::mem;
use core::ptr::{self, NonNull};

use ouro_cyclegc::{ObjHeader, Visitor, raw};

use crate::Trace;
use crate::handle::{Gc, GcBox, value_offset};

/// A weak handle, as `std::rc::Weak` and Python's `weakref.ref`.
///
/// It does not keep the value alive: [`upgrade`](Weak::upgrade) returns
/// `None` once the value was dropped. When the collector finds an object
/// unreachable, it clears the weak handles to it *before* running
/// finalizers (as in CPython), so `upgrade` returns `None` while the
/// finalizers run and for good once the value is dropped.
///
/// If a finalizer resurrects the object, its weak handles upgrade again
/// while it lives, including those made before the collection (in CPython
/// those stay cleared and only new ones work): the cleared state is kept
/// in the object, not in each handle, so that `Weak` stays one pointer and
/// its clone, drop and upgrade do no extra work.
///
/// The memory of the object stays until the last weak handle goes.
///
/// ```
/// # extern crate ouro_refobj as ouro;
/// use ouro::Gc;
/// let a = Gc::new(7);
/// let w = Gc::downgrade(&a);
/// assert_eq!(*w.upgrade().unwrap(), 7);
/// drop(a);
/// assert!(w.upgrade().is_none());
/// ```
///
/// The usual use: a back-pointer that does not keep its target alive, so
/// a tree with parent links is freed by counting alone.
///
/// ```
/// # extern crate ouro_refobj as ouro;
/// # use ouro_macros::Trace;
/// use ouro::{Gc, Trace, Weak};
/// use std::cell::RefCell;
///
/// #[derive(Trace)]
/// struct Node {
///     parent: RefCell<Weak<Node>>,
///     children: RefCell<Vec<Gc<Node>>>,
/// }
///
/// let root = Gc::new(Node { parent: RefCell::new(Weak::new()), children: RefCell::new(vec![]) });
/// let leaf = Gc::new(Node { parent: RefCell::new(Gc::downgrade(&root)), children: RefCell::new(vec![]) });
/// root.children.borrow_mut().push(leaf.clone());
/// assert!(Gc::ptr_eq(&leaf.parent.borrow().upgrade().unwrap(), &root));
/// let watch = Gc::downgrade(&root);
/// drop((root, leaf));
/// assert!(watch.upgrade().is_none()); // no cycle: freed without a collection
/// ```
pub struct Weak<T: ?Sized> {
    /// The box, or [`DANGLING`] for `Weak::new()`, which points to nothing
    /// (a sentinel address, as `std::rc::Weak`, so that `Option<Weak<T>>`
    /// is one pointer).
    ptr: NonNull<GcBox<T>>,
    _owns: PhantomData<GcBox<T>>,
    /// Invariant in `T`, like `Gc<T>` (a weak handle upgrades to one).
    _invariant: PhantomData<*mut T>,
}

/// The address of `Weak::new()`: never that of an allocation (a box is
/// aligned to at least 8, and this is odd).
const DANGLING: usize = usize::MAX;

#[inline(always)]
fn is_dangling<T: ?Sized>(ptr: *const T) -> bool {
    ptr.cast::<()>().addr() == DANGLING
}

impl<T: ?Sized> Weak<T> {
    /// # Safety
    /// `ptr` is a live box and the caller gives up one counted weak reference.
    pub(crate) unsafe fn from_box(ptr: NonNull<GcBox<T>>) -> Self {
        Weak {
            ptr,
            _owns: PhantomData,
            _invariant: PhantomData,
        }
    }

    #[inline(always)]
    fn header(&self) -> Option<&ObjHeader> {
        if is_dangling(self.ptr.as_ptr()) {
            return None;
        }
        // SAFETY: a weak handle keeps the allocation (not the value) alive;
        // the header is at offset 0 and always initialised.
        Some(unsafe { &*self.ptr.as_ptr().cast::<ObjHeader>() })
    }

    /// A strong handle if the value is still alive.
    pub fn upgrade(&self) -> Option<Gc<T>> {
        let h = self.header()?;
        if !h.can_upgrade() {
            return None;
        }
        h.inc_strong();
        // SAFETY: one strong reference was just counted; the box is live.
        Some(unsafe { Gc::from_box(self.ptr) })
    }

    /// The number of strong handles (0 once the value is gone).
    pub fn strong_count(&self) -> usize {
        match self.header() {
            Some(h) if h.can_upgrade() => h.strong(),
            _ => 0,
        }
    }

    /// The number of weak handles, as `std::rc::Weak::weak_count`: 0 for
    /// `Weak::new()` and once no strong handle is left (the value is gone).
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::Gc;
    /// let a = Gc::new(1);
    /// let w = Gc::downgrade(&a);
    /// assert_eq!(w.weak_count(), 1);
    /// drop(a);
    /// assert_eq!(w.weak_count(), 0);
    /// ```
    pub fn weak_count(&self) -> usize {
        match self.header() {
            Some(h) if h.strong() > 0 => h.weak(),
            _ => 0,
        }
    }

    /// Whether both point to the same object (or both to none).
    pub fn ptr_eq(&self, other: &Self) -> bool {
        ptr::addr_eq(self.ptr.as_ptr(), other.ptr.as_ptr())
    }

    /// The pointer to the value, as `std::rc::Weak::as_ptr`: it is only
    /// dereferenceable while a strong handle keeps the value alive; for
    /// `Weak::new()` it is dangling.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::Gc;
    /// let strong = Gc::new("hello".to_owned());
    /// let weak = Gc::downgrade(&strong);
    /// assert!(std::ptr::eq(&*strong, weak.as_ptr()));
    /// assert_eq!("hello", unsafe { &*weak.as_ptr() });
    /// drop(strong);
    /// // The pointer is still there, but not dereferenceable any more.
    /// ```
    pub fn as_ptr(&self) -> *const T {
        if is_dangling(self.ptr.as_ptr()) {
            // No box: the sentinel itself (with the metadata).
            self.ptr.as_ptr() as *const T
        } else {
            // SAFETY: the box is allocated; no reference is made.
            unsafe { &raw const (*self.ptr.as_ptr()).value }
        }
    }

    /// Consumes the weak handle and returns the pointer to the value, as
    /// `std::rc::Weak::into_raw`; the weak reference stays counted until
    /// [`Weak::from_raw`] takes it back.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::{Gc, Weak};
    /// let strong = Gc::new("hello".to_owned());
    /// let weak = Gc::downgrade(&strong);
    /// let raw = weak.into_raw();
    /// assert_eq!(1, Gc::weak_count(&strong));
    /// assert_eq!("hello", unsafe { &*raw });
    /// drop(unsafe { Weak::from_raw(raw) });
    /// assert_eq!(0, Gc::weak_count(&strong));
    /// ```
    pub fn into_raw(self) -> *const T {
        let p = self.as_ptr();
        core::mem::forget(self);
        p
    }
}

impl<T> Weak<T> {
    /// A weak handle to nothing: `upgrade` always returns `None`.
    pub const fn new() -> Self {
        Weak {
            // SAFETY: `DANGLING` is not zero.
            ptr: unsafe { NonNull::new_unchecked(ptr::without_provenance_mut(DANGLING)) },
            _owns: PhantomData,
            _invariant: PhantomData,
        }
    }

    /// Rebuilds a weak handle from a pointer returned by
    /// [`Weak::into_raw`], taking over the weak reference it carried, as
    /// `std::rc::Weak::from_raw`. Works after the value is gone.
    ///
    /// Only for sized `T`: for an unsized value, stable Rust cannot compute
    /// its alignment from a raw pointer without reading the value, which
    /// may already be dropped.
    ///
    /// # Safety
    /// `ptr` came from `Weak::<T>::into_raw` (on this thread) and the weak
    /// reference it carries was not taken back already.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::{Gc, Weak};
    /// let strong = Gc::new(5);
    /// let raw = Gc::downgrade(&strong).into_raw();
    /// // SAFETY: `raw` came from `into_raw` and is given back once.
    /// let weak = unsafe { Weak::from_raw(raw) };
    /// assert_eq!(*weak.upgrade().unwrap(), 5);
    /// drop(strong);
    /// assert!(weak.upgrade().is_none());
    /// ```
    pub unsafe fn from_raw(ptr: *const T) -> Self {
        let boxed = if is_dangling(ptr) {
            ptr as *mut GcBox<T>
        } else {
            // SAFETY: caller contract: the value sits at this offset in its
            // box, which the weak reference keeps allocated.
            unsafe { ptr.byte_sub(value_offset(mem::align_of::<T>())) as *mut GcBox<T> }
        };
        Weak {
            // SAFETY: the sentinel or an address inside an allocation.
            ptr: unsafe { NonNull::new_unchecked(boxed) },
            _owns: PhantomData,
            _invariant: PhantomData,
        }
    }
}

impl<T> Default for Weak<T> {
    fn default() -> Self {
        Weak::new()
    }
}

impl<T: ?Sized> Clone for Weak<T> {
    #[inline]
    fn clone(&self) -> Self {
        if let Some(h) = self.header() {
            h.inc_weak();
        }
        Weak {
            ptr: self.ptr,
            _owns: PhantomData,
            _invariant: PhantomData,
        }
    }
}

impl<T: ?Sized> Drop for Weak<T> {
    #[inline]
    fn drop(&mut self) {
        let Some(h) = self.header() else { return };
        if h.dec_weak() == 0 {
            // SAFETY: the allocation is live.
            let layout = unsafe { Gc::box_layout(self.ptr) };
            // SAFETY: weak count is zero, `layout` is the box's.
            unsafe { raw::release_weak(self.ptr.cast(), layout) };
        }
    }
}

impl<T: ?Sized> Trace for Weak<T> {
    #[inline(always)]
    fn structural() -> crate::Structural<Self> {
        crate::Structural::YES
    }
    #[inline(always)]
    fn has_finalizer() -> bool {
        false
    }

    /// A weak handle is not an edge: it does not keep anything alive.
    fn trace(&self, _: &mut Visitor<'_>) {}
}

impl<T: ?Sized> fmt::Debug for Weak<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(Weak)")
    }
}
