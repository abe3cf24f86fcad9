//! `Weak<T>`: a handle that does not keep the value alive.

use core::fmt;
use core::marker::PhantomData;
use core::ptr::{self, NonNull};

use ouro_cyclegc::{ObjHeader, Visitor, raw};

use crate::Trace;
use crate::handle::{Gc, GcBox};

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
    /// `None` for `Weak::new()`, which points to nothing.
    ptr: Option<NonNull<GcBox<T>>>,
    _owns: PhantomData<GcBox<T>>,
    /// Invariant in `T`, like `Gc<T>` (a weak handle upgrades to one).
    _invariant: PhantomData<*mut T>,
}

impl<T: ?Sized> Weak<T> {
    /// # Safety
    /// `ptr` is a live box and the caller gives up one counted weak reference.
    pub(crate) unsafe fn from_box(ptr: NonNull<GcBox<T>>) -> Self {
        Weak {
            ptr: Some(ptr),
            _owns: PhantomData,
            _invariant: PhantomData,
        }
    }

    fn header(&self) -> Option<&ObjHeader> {
        // SAFETY: a weak handle keeps the allocation (not the value) alive;
        // the header is at offset 0 and always initialised.
        self.ptr
            .map(|p| unsafe { &*p.as_ptr().cast::<ObjHeader>() })
    }

    /// A strong handle if the value is still alive.
    pub fn upgrade(&self) -> Option<Gc<T>> {
        let h = self.header()?;
        if !h.can_upgrade() {
            return None;
        }
        h.inc_strong();
        // SAFETY: one strong reference was just counted; the box is live.
        Some(unsafe { Gc::from_box(self.ptr?) })
    }

    /// The number of strong handles (0 once the value is gone).
    pub fn strong_count(&self) -> usize {
        match self.header() {
            Some(h) if h.can_upgrade() => h.strong(),
            _ => 0,
        }
    }

    /// The number of weak handles (0 for `Weak::new()`).
    pub fn weak_count(&self) -> usize {
        self.header().map_or(0, |h| h.weak())
    }

    /// Whether both point to the same object (or both to none).
    pub fn ptr_eq(&self, other: &Self) -> bool {
        match (self.ptr, other.ptr) {
            (Some(a), Some(b)) => ptr::addr_eq(a.as_ptr(), b.as_ptr()),
            (None, None) => true,
            _ => false,
        }
    }
}

impl<T> Weak<T> {
    /// A weak handle to nothing: `upgrade` always returns `None`.
    pub const fn new() -> Self {
        Weak {
            ptr: None,
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
    fn drop(&mut self) {
        let Some(ptr) = self.ptr else { return };
        let Some(h) = self.header() else { return };
        if h.dec_weak() == 0 {
            // SAFETY: the allocation is live.
            let layout = unsafe { Gc::box_layout(ptr) };
            // SAFETY: weak count is zero, `layout` is the box's.
            unsafe { raw::release_weak(ptr.cast(), layout) };
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
