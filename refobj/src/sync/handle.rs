//! `sync::Gc<T>` and `sync::Weak<T>`.

use core::alloc::Layout;
use core::any::TypeId;
use core::borrow::Borrow;
use core::cmp::Ordering;
use core::fmt;
use core::hash::{Hash, Hasher};
use core::marker::PhantomData;
use core::mem::{self, ManuallyDrop};
use core::ops::Deref;
use core::ptr::{self, NonNull};

use ouro_cyclegc::sync::{SyncHeader, SyncVTable, raw};

use crate::{Trace, Visitor};

/// One object: the header, then the value. Public (hidden) only so that
/// [`sync::coerce_gc!`](crate::sync::coerce_gc) can coerce a pointer to it.
#[doc(hidden)]
#[repr(C)]
#[allow(missing_debug_implementations)]
pub struct SyncBox<T: ?Sized> {
    header: SyncHeader,
    pub(crate) value: T,
}

/// The vtables of `SyncBox<T>`, one static per type and answers of its
/// `Trace` impl (`N`: needs tracing, `S`: structural, `F`: has a
/// finalizer).
pub(crate) struct VTableOf<T, const N: bool, const S: bool, const F: bool>(PhantomData<T>);

/// The vtable of `SyncBox<T>`: a constant once inlined (see
/// `crate::handle::vtable_of`).
#[inline(always)]
pub(crate) fn vtable_of<T: Trace + Send + Sync + 'static>() -> &'static SyncVTable {
    match (
        T::needs_trace(),
        T::structural().is_made(),
        T::has_finalizer(),
    ) {
        (true, true, false) => &VTableOf::<T, true, true, false>::VTABLE,
        (true, true, true) => &VTableOf::<T, true, true, true>::VTABLE,
        (true, false, false) => &VTableOf::<T, true, false, false>::VTABLE,
        (true, false, true) => &VTableOf::<T, true, false, true>::VTABLE,
        (false, true, false) => &VTableOf::<T, false, true, false>::VTABLE,
        (false, true, true) => &VTableOf::<T, false, true, true>::VTABLE,
        (false, false, false) => &VTableOf::<T, false, false, false>::VTABLE,
        (false, false, true) => &VTableOf::<T, false, false, true>::VTABLE,
    }
}

impl<T: Trace + Send + Sync + 'static, const N: bool, const S: bool, const F: bool>
    VTableOf<T, N, S, F>
{
    const VTABLE: SyncVTable = SyncVTable {
        trace: trace_value::<T>,
        finalize: finalize_value::<T>,
        drop_value: drop_value::<T>,
        layout: Layout::new::<SyncBox<T>>(),
        value_offset: mem::offset_of!(SyncBox<T>, value),
        type_name: core::any::type_name::<T>,
        type_id: TypeId::of::<T>,
        has_finalizer: F,
        tracked: N,
        structural: S,
    };
}

/// # Safety
/// `obj` is the header of a live `SyncBox<T>` with an initialised value that
/// no `&mut` aliases.
unsafe fn trace_value<T: Trace>(obj: NonNull<SyncHeader>, v: &mut Visitor<'_>) {
    // SAFETY: caller contract.
    unsafe { (*obj.cast::<SyncBox<T>>().as_ptr()).value.trace(v) }
}

/// # Safety
/// As `trace_value`.
unsafe fn finalize_value<T: Trace>(obj: NonNull<SyncHeader>) {
    // SAFETY: caller contract.
    unsafe { (*obj.cast::<SyncBox<T>>().as_ptr()).value.finalize() }
}

/// # Safety
/// As `trace_value`; the value is dropped once and never used again.
unsafe fn drop_value<T>(obj: NonNull<SyncHeader>) {
    // SAFETY: caller contract.
    unsafe { ptr::drop_in_place(&raw mut (*obj.cast::<SyncBox<T>>().as_ptr()).value) }
}

/// A thread-safe reference-counted handle with cycle collection: the
/// counterpart of `Arc<T>`, on ouro's process-wide heap.
///
/// Cloning adds a reference and dropping removes one (a single atomic
/// operation each, as `Arc`); dropping the last one drops the value at
/// once — unless a collection is examining the object at that moment: the
/// drop then happens when that collection gives the object back, on the
/// collecting thread (the collector may be reading the value; dropping it
/// under its feet would be a use after free). Cycles are freed by the
/// concurrent collector ([`gc`](super::gc)).
/// `Send` and `Sync` when `T` is; like [`crate::Gc`], invariant in `T`.
///
/// ```
/// # extern crate ouro_refobj as ouro;
/// use ouro::sync::Gc;
/// let a = Gc::new(5);
/// let b = a.clone();
/// let t = std::thread::spawn(move || *b + 1);
/// assert_eq!(t.join().unwrap(), 6);
/// assert_eq!(Gc::strong_count(&a), 1);
/// ```
///
/// A graph shared between threads, with a cycle the collector frees:
///
/// ```
/// # extern crate ouro_refobj as ouro;
/// # use ouro_macros::Trace;
/// use ouro::Trace;
/// use ouro::sync::{Gc, gc};
/// use std::sync::Mutex;
///
/// #[derive(Trace)]
/// struct Node {
///     name: String,
///     edges: Mutex<Vec<Gc<Node>>>,
/// }
///
/// let a = Gc::new(Node { name: "a".into(), edges: Mutex::new(vec![]) });
/// let b = Gc::new(Node { name: "b".into(), edges: Mutex::new(vec![a.clone()]) });
/// let a2 = a.clone();
/// std::thread::spawn(move || a2.edges.lock().unwrap().push(b)) // a <-> b
///     .join()
///     .unwrap();
/// let watch = Gc::downgrade(&a);
/// drop(a);
/// gc::collect();
/// assert!(watch.upgrade().is_none());
/// ```
///
/// # Panics
/// Dereferencing panics if the collector already dropped the value: only
/// possible from the `Drop` of another object of the same garbage, or with a
/// `Trace` impl that reports edges the value does not own.
pub struct Gc<T: ?Sized> {
    ptr: NonNull<SyncBox<T>>,
    _owns: PhantomData<SyncBox<T>>,
    _invariant: PhantomData<*mut T>,
}

// SAFETY: like `Arc<T>`: the counts are atomic, and sharing a handle shares
// `&T` across threads (needs `Sync`) and may drop `T` on another thread
// (needs `Send`).
unsafe impl<T: ?Sized + Send + Sync> Send for Gc<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send + Sync> Sync for Gc<T> {}

impl<T: ?Sized> Gc<T> {
    #[inline(always)]
    fn obj(&self) -> NonNull<SyncHeader> {
        self.ptr.cast()
    }

    #[inline(always)]
    fn header(&self) -> &SyncHeader {
        // SAFETY: a handle keeps the object alive; the header is at offset 0.
        unsafe { self.obj().as_ref() }
    }

    pub(crate) fn header_ptr(this: &Self) -> NonNull<SyncHeader> {
        this.obj()
    }

    /// # Safety
    /// `ptr` is a live object; the caller gives up one counted strong
    /// reference to it.
    #[inline(always)]
    unsafe fn from_nonnull(ptr: NonNull<SyncBox<T>>) -> Self {
        Gc {
            ptr,
            _owns: PhantomData,
            _invariant: PhantomData,
        }
    }

    /// The object, with the handle's strong reference.
    pub(crate) fn into_header(this: Self) -> NonNull<SyncHeader> {
        ManuallyDrop::new(this).obj()
    }

    /// Whether both handles point to the same object (Python's `is`).
    #[inline]
    pub fn ptr_eq(this: &Self, other: &Self) -> bool {
        ptr::addr_eq(this.ptr.as_ptr(), other.ptr.as_ptr())
    }

    /// The address of the value (Python's `id()`).
    #[inline]
    pub fn as_ptr(this: &Self) -> *const T {
        // SAFETY: the box is allocated; no reference is made.
        unsafe { &raw const (*this.ptr.as_ptr()).value }
    }

    /// The number of strong handles.
    #[inline]
    pub fn strong_count(this: &Self) -> usize {
        this.header().strong()
    }

    /// The number of weak handles.
    #[inline]
    pub fn weak_count(this: &Self) -> usize {
        this.header().weak()
    }

    /// Makes a weak handle to this object.
    pub fn downgrade(this: &Self) -> Weak<T> {
        // SAFETY: we hold a strong reference.
        unsafe { raw::inc_weak(this.obj()) };
        Weak {
            ptr: Some(this.ptr),
            _invariant: PhantomData,
        }
    }

    /// Whether the collector tracks the object (types with
    /// `needs_trace() == false` are never tracked).
    pub fn is_tracked(this: &Self) -> bool {
        // SAFETY: we hold a strong reference.
        unsafe { raw::is_tracked(this.obj()) }
    }

    /// Whether the object's finalizer has run (at most once).
    pub fn is_finalized(this: &Self) -> bool {
        // SAFETY: we hold a strong reference.
        unsafe { raw::is_finalized(this.obj()) }
    }

    /// Mutable access if this is the only handle (no other strong or weak
    /// handles), as `Arc::get_mut`.
    ///
    /// If a collection is examining the object at that moment, this waits
    /// for it to give the object back (on the collecting thread itself, from
    /// a `Drop` or `finalize`, it returns `None` instead). While the
    /// `&mut T` lives the collector does not read the value.
    pub fn get_mut(this: &mut Self) -> Option<&mut T> {
        // SAFETY: we hold a strong reference through `&mut`.
        if unsafe { raw::is_dead(this.obj()) || !raw::begin_exclusive(this.obj()) } {
            return None;
        }
        // SAFETY: the only handle, no weak handles, value alive, and the
        // collector will not read it while it is `EXCLUSIVE`; `&mut this`
        // keeps the handle unique for the lifetime of the result.
        Some(unsafe { &mut (*this.ptr.as_ptr()).value })
    }
}

impl<T> Gc<T> {
    /// `this` with its pointer cast by `f` (the code of
    /// [`sync::coerce_gc!`](crate::sync::coerce_gc)).
    ///
    /// # Safety
    /// `f` is `|p| p as _`: the cast is to a pointer to `SyncBox<U>`, which
    /// from a pointer to a sized `SyncBox<T>` is either an unsizing (`U` a
    /// trait object `T` implements, or a slice of `T`'s array) or, for a
    /// sized `U`, a pointer cast, which is checked here to be to `T` itself.
    #[doc(hidden)]
    pub unsafe fn __ouro_coerce<U: ?Sized + 'static>(
        this: Self,
        f: impl FnOnce(*const SyncBox<T>) -> *const SyncBox<U>,
    ) -> Gc<U>
    where
        T: 'static,
    {
        // A sized `U` has a thin pointer, as `T`: the cast kept the type or
        // changed it, and only the first is a coercion.
        if mem::size_of::<*const U>() == mem::size_of::<*const T>() {
            assert!(
                TypeId::of::<U>() == TypeId::of::<T>(),
                "ouro: `coerce_gc!` can only unsize a handle (to a trait object or a slice), not change its type"
            );
        }
        let ptr = ManuallyDrop::new(this).ptr;
        let coerced = f(ptr.as_ptr()).cast_mut();
        // SAFETY: an unsizing cast keeps the address (and provenance): the
        // same live object, whose strong reference moves from `this`; `U`
        // is the value's type seen through the metadata the unsizing added
        // (the header's vtable keeps the object's layout, `trace` and drop).
        unsafe { Gc::from_nonnull(NonNull::new_unchecked(coerced)) }
    }

    /// # Safety
    /// The caller gives up one counted strong reference to a live object of
    /// type `T`.
    #[inline(always)]
    pub(crate) unsafe fn from_raw(obj: NonNull<SyncHeader>) -> Self {
        Gc {
            ptr: obj.cast(),
            _owns: PhantomData,
            _invariant: PhantomData,
        }
    }
}

impl<T: Trace + Send + Sync + 'static> Gc<T> {
    /// Puts `value` in a new object on the process-wide heap.
    ///
    /// A tracked object joins generation 0; this may run an automatic
    /// collection first, on this thread.
    #[inline]
    pub fn new(value: T) -> Gc<T> {
        let obj = raw::allocate(vtable_of::<T>(), true);
        // SAFETY: `allocate` returned an object of this vtable's layout with
        // an unwritten value; it is written once, then published.
        unsafe {
            (&raw mut (*obj.cast::<SyncBox<T>>().as_ptr()).value).write(value);
            raw::publish(obj);
            Gc::from_raw(obj)
        }
    }

    /// Puts `value` in a new object on `heap` instead of the process-wide
    /// default heap: [`Heap`](super::Heap)'s collections find it, the
    /// default heap's do not. Clones and drops are as for any handle.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::sync::{Gc, Heap};
    /// let heap = Heap::new();
    /// let a = Gc::new_in(vec![Gc::new(1)], &heap);
    /// assert_eq!(*a[0], 1);
    /// ```
    #[inline]
    pub fn new_in(value: T, heap: &super::Heap) -> Gc<T> {
        let obj = raw::allocate_in(vtable_of::<T>(), true, heap.engine());
        // SAFETY: as in `new`.
        unsafe {
            (&raw mut (*obj.cast::<SyncBox<T>>().as_ptr()).value).write(value);
            raw::publish(obj);
            Gc::from_raw(obj)
        }
    }

    /// Builds a value that holds a weak handle to itself, as
    /// `Arc::new_cyclic`: the weak handle does not upgrade until `data_fn`
    /// has returned.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::sync::{Gc, Weak};
    /// struct Me { me: Weak<Me> }
    /// impl ouro::Trace for Me { fn trace(&self, _: &mut ouro::Visitor<'_>) {} }
    /// let a = Gc::new_cyclic(|w| Me { me: w.clone() });
    /// assert!(Gc::ptr_eq(&a.me.upgrade().unwrap(), &a));
    /// ```
    pub fn new_cyclic(data_fn: impl FnOnce(&Weak<T>) -> T) -> Gc<T> {
        struct Abandon(NonNull<SyncHeader>);
        impl Drop for Abandon {
            fn drop(&mut self) {
                // SAFETY: the closure panicked: the value was never written
                // and the object never published.
                unsafe { raw::abandon(self.0) }
            }
        }
        let obj = raw::allocate(vtable_of::<T>(), false);
        let abandon = Abandon(obj);
        // SAFETY: a weak reference for `weak`, counted now.
        unsafe { raw::inc_weak(obj) };
        let weak = Weak {
            ptr: Some(obj.cast::<SyncBox<T>>()),
            _invariant: PhantomData,
        };
        let value = data_fn(&weak);
        mem::forget(abandon);
        // SAFETY: written once, then published with its first strong count.
        unsafe {
            (&raw mut (*obj.cast::<SyncBox<T>>().as_ptr()).value).write(value);
            raw::publish(obj);
        }
        drop(weak);
        // SAFETY: `publish` set the strong count to one, which we take.
        unsafe { Gc::from_raw(obj) }
    }

    /// Returns the value if this is the only strong handle, as
    /// `Arc::try_unwrap`; otherwise gives the handle back. Weak handles stop
    /// upgrading. Waits like [`get_mut`](Self::get_mut) while a collection
    /// examines the object.
    pub fn try_unwrap(this: Self) -> Result<T, Self> {
        // SAFETY: we own a strong reference.
        if unsafe { raw::is_dead(this.obj()) || !raw::begin_unwrap(this.obj()) } {
            return Err(this);
        }
        let this = ManuallyDrop::new(this);
        // SAFETY: `begin_unwrap` gave us the object (count zero, unlinked):
        // the value is moved out once, then the memory released.
        unsafe {
            let value = ptr::read(&raw const (*this.ptr.as_ptr()).value);
            raw::finish_unwrap(this.obj());
            Ok(value)
        }
    }
}

impl<T: ?Sized> Deref for Gc<T> {
    type Target = T;

    #[inline(always)]
    fn deref(&self) -> &T {
        // SAFETY: we hold a strong reference.
        unsafe { raw::check_deref(self.obj()) };
        // SAFETY: the value is initialised and not dropped (checked), and
        // the collector cannot drop it while this handle exists outside the
        // garbage (see `ouro_cyclegc::sync`, step 3).
        unsafe { &(*self.ptr.as_ptr()).value }
    }
}

impl<T: ?Sized> Clone for Gc<T> {
    #[inline(always)]
    fn clone(&self) -> Self {
        // SAFETY: we hold a strong reference.
        unsafe { raw::inc_strong(self.obj()) };
        Gc {
            ptr: self.ptr,
            _owns: PhantomData,
            _invariant: PhantomData,
        }
    }
}

impl<T: ?Sized> Drop for Gc<T> {
    #[inline(always)]
    fn drop(&mut self) {
        // SAFETY: we own this strong reference.
        unsafe { raw::dec_strong(self.ptr.cast()) }
    }
}

impl<T: ?Sized> Trace for Gc<T> {
    #[inline(always)]
    fn structural() -> crate::Structural<Self> {
        crate::Structural::YES
    }
    #[inline(always)]
    fn has_finalizer() -> bool {
        false
    }

    #[inline]
    fn trace(&self, visitor: &mut Visitor<'_>) {
        // SAFETY: `self` is a live handle at this address, keeping the
        // target alive for the duration of the call.
        unsafe { visitor.visit_sync_handle(ptr::from_ref(self).cast(), self.obj()) }
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Gc<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for Gc<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

impl<T: ?Sized> fmt::Pointer for Gc<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Pointer::fmt(&Gc::as_ptr(self), f)
    }
}

impl<T: ?Sized + PartialEq> PartialEq for Gc<T> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<T: ?Sized + Eq> Eq for Gc<T> {}

impl<T: ?Sized + PartialOrd> PartialOrd for Gc<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        (**self).partial_cmp(&**other)
    }
}

impl<T: ?Sized + Ord> Ord for Gc<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        (**self).cmp(&**other)
    }
}

impl<T: ?Sized + Hash> Hash for Gc<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (**self).hash(state)
    }
}

impl<T: Default + Trace + Send + Sync + 'static> Default for Gc<T> {
    fn default() -> Self {
        Gc::new(T::default())
    }
}

impl<T: Trace + Send + Sync + 'static> From<T> for Gc<T> {
    fn from(value: T) -> Self {
        Gc::new(value)
    }
}

/// Moves a boxed value into a new object, as `Arc::from(Box<T>)`: the way
/// to a `sync::Gc<dyn Trait>` from a `Box<dyn Trait>` (without a copy from
/// a `sync::Gc` of the concrete type: [`coerce_gc!`](crate::sync::coerce_gc)).
///
/// # Panics
/// For `Box<str>` and boxed slices: this heap has no unsized values of
/// its own yet.
///
/// ```
/// # extern crate ouro_refobj as ouro;
/// # use ouro_macros::Trace;
/// use ouro::Trace;
/// use ouro::sync::{Gc, Weak};
///
/// trait Shape: Trace + Send + Sync {
///     fn area(&self) -> f64;
/// }
/// #[derive(Trace)]
/// struct Square(f64);
/// impl Shape for Square {
///     fn area(&self) -> f64 { self.0 * self.0 }
/// }
///
/// let s: Gc<dyn Shape> = Gc::from(Box::new(Square(2.0)) as Box<dyn Shape>);
/// let w: Weak<dyn Shape> = Gc::downgrade(&s);
/// let t = std::thread::spawn(move || s.area());
/// assert_eq!(t.join().unwrap(), 4.0);
/// assert!(w.upgrade().is_none());
/// ```
impl<T: ?Sized + Trace + Send + Sync + 'static> From<Box<T>> for Gc<T> {
    fn from(value: Box<T>) -> Self {
        // Only the metadata of this pointer is used (the box is freed).
        let meta = ptr::from_ref::<T>(&*value).cast_mut() as *mut SyncBox<T>;
        // SAFETY: the strong reference is taken over below.
        let obj = unsafe { <T as crate::__private::TraceDyn>::__ouro_into_sync_gc(value) };
        let fat = crate::handle::with_data(meta, obj.as_ptr().cast::<u8>());
        // SAFETY: `obj` is a live object holding the value that was in
        // `value`, moved as its own type (see the thread-local `From`),
        // with one strong reference.
        unsafe {
            Gc {
                ptr: NonNull::new_unchecked(fat),
                _owns: PhantomData,
                _invariant: PhantomData,
            }
        }
    }
}

impl<T: ?Sized> Borrow<T> for Gc<T> {
    fn borrow(&self) -> &T {
        self
    }
}

impl<T: ?Sized> AsRef<T> for Gc<T> {
    fn as_ref(&self) -> &T {
        self
    }
}

/// A weak handle to a [`Gc`]: does not keep the value alive;
/// [`upgrade`](Weak::upgrade) returns `None` once the value is dropped or
/// the collector has found it unreachable. As with
/// [`crate::Weak`], the weak handles of an object that a finalizer
/// resurrects upgrade again while it lives (old ones too).
///
/// ```
/// # extern crate ouro_refobj as ouro;
/// # use ouro_macros::Trace;
/// use ouro::Trace;
/// use ouro::sync::{Gc, Weak};
/// use std::sync::Mutex;
///
/// #[derive(Trace)]
/// struct Child {
///     parent: Mutex<Weak<Parent>>, // does not keep the parent alive
/// }
/// #[derive(Trace)]
/// struct Parent {
///     children: Mutex<Vec<Gc<Child>>>,
/// }
///
/// let parent = Gc::new(Parent { children: Mutex::new(vec![]) });
/// let child = Gc::new(Child { parent: Mutex::new(Gc::downgrade(&parent)) });
/// parent.children.lock().unwrap().push(child.clone());
/// let seen = std::thread::spawn(move || child.parent.lock().unwrap().upgrade().is_some());
/// assert!(seen.join().unwrap());
/// let watch: Weak<Parent> = Gc::downgrade(&parent);
/// drop(parent);
/// assert!(watch.upgrade().is_none()); // freed by counting alone
/// ```
pub struct Weak<T: ?Sized> {
    ptr: Option<NonNull<SyncBox<T>>>,
    _invariant: PhantomData<*mut T>,
}

// SAFETY: as `std::sync::Weak`.
unsafe impl<T: ?Sized + Send + Sync> Send for Weak<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send + Sync> Sync for Weak<T> {}

impl<T> Weak<T> {
    /// Builds a weak handle that takes over one weak reference.
    ///
    /// # Safety
    /// `obj` is a `SyncBox<T>` and the caller gives up one counted weak
    /// reference to it.
    pub(crate) unsafe fn from_header(obj: NonNull<SyncHeader>) -> Weak<T> {
        Weak {
            ptr: Some(obj.cast()),
            _invariant: PhantomData,
        }
    }
}

impl<T: ?Sized> Weak<T> {
    /// A weak handle that never upgrades (no allocation).
    pub const fn new() -> Weak<T> {
        Weak {
            ptr: None,
            _invariant: PhantomData,
        }
    }

    fn header(&self) -> Option<&SyncHeader> {
        // SAFETY: the weak count we hold keeps the header allocated.
        self.ptr.map(|p| unsafe { p.cast::<SyncHeader>().as_ref() })
    }

    /// A strong handle, if the value is still alive and not found
    /// unreachable by the collector.
    pub fn upgrade(&self) -> Option<Gc<T>> {
        let fat = self.ptr?;
        let p = fat.cast::<SyncHeader>();
        // SAFETY: we hold a weak reference.
        if unsafe { raw::upgrade(p) } {
            // One strong reference was just counted for the handle.
            Some(Gc {
                ptr: fat,
                _owns: PhantomData,
                _invariant: PhantomData,
            })
        } else {
            None
        }
    }

    /// The number of strong handles (0 once the value is gone).
    pub fn strong_count(&self) -> usize {
        self.header().map_or(0, |h| h.strong())
    }

    /// The number of weak handles (0 for `Weak::new()`).
    pub fn weak_count(&self) -> usize {
        self.header().map_or(0, |h| h.weak())
    }

    /// Whether both point to the same object (or both are `Weak::new()`).
    pub fn ptr_eq(&self, other: &Self) -> bool {
        match (self.ptr, other.ptr) {
            (Some(a), Some(b)) => ptr::addr_eq(a.as_ptr(), b.as_ptr()),
            (None, None) => true,
            _ => false,
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
        if let Some(p) = self.ptr {
            // SAFETY: we hold a weak reference.
            unsafe { raw::inc_weak(p.cast()) };
        }
        Weak {
            ptr: self.ptr,
            _invariant: PhantomData,
        }
    }
}

impl<T: ?Sized> Drop for Weak<T> {
    fn drop(&mut self) {
        if let Some(p) = self.ptr {
            // SAFETY: we own this weak reference.
            unsafe { raw::dec_weak(p.cast()) };
        }
    }
}

impl<T: ?Sized> Trace for Weak<T> {
    // A weak handle is not an edge, but keeping `needs_trace()` true keeps
    // recursive types simple (as `crate::Weak`).
    #[inline(always)]
    fn structural() -> crate::Structural<Self> {
        crate::Structural::YES
    }
    #[inline(always)]
    fn has_finalizer() -> bool {
        false
    }
    fn trace(&self, _: &mut Visitor<'_>) {}
}

impl<T: ?Sized> fmt::Debug for Weak<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(Weak)")
    }
}
