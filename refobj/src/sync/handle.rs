//! `sync::Gc<T>` and `sync::Weak<T>`.

use core::alloc::Layout;
use core::any::TypeId;
use core::borrow::Borrow;
use core::cmp::Ordering;
use core::fmt;
use core::hash::{Hash, Hasher};
use core::marker::PhantomData;
use core::mem::MaybeUninit;
use core::mem::{self, ManuallyDrop};
use core::ops::Deref;
use core::panic::AssertUnwindSafe;
use core::pin::Pin;
use core::ptr::{self, NonNull};
use std::borrow::Cow;

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
        sized: true,
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
/// # `Arc` methods that `sync::Gc` does not have
/// As [`crate::Gc`]: no `get_mut_unchecked` (a `&mut T` while other handles
/// exist would race with the concurrent collector, which reads the value of
/// any object it examines; [`Gc::get_mut`] and [`Gc::make_mut`] mark the
/// object so the collector keeps off it, which needs the uniqueness check),
/// no allocator parameter (every object lives in ouro's pool, where the
/// collector finds it), and no unsizing coercion (`Gc<T>` is invariant in
/// `T`, and `CoerceUnsized` is unstable).
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

impl<T> Gc<T> {
    /// # Safety
    /// The caller gives up one counted strong reference to a live object of
    /// type `T`.
    #[inline(always)]
    pub(crate) unsafe fn from_header(obj: NonNull<SyncHeader>) -> Self {
        Gc {
            ptr: obj.cast(),
            _owns: PhantomData,
            _invariant: PhantomData,
        }
    }
}

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
            ptr: this.ptr,
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

impl<T: ?Sized> Gc<T> {
    /// Consumes the handle and returns the pointer to the value, as
    /// `Arc::into_raw`. The strong reference stays counted (the collector
    /// sees it as a reference from outside) until [`Gc::from_raw`] or
    /// [`Gc::decrement_strong_count`] gives it back.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::sync::Gc;
    /// let x = Gc::new("hello".to_owned());
    /// let x_ptr = Gc::into_raw(x);
    /// assert_eq!(unsafe { &*x_ptr }, "hello");
    /// let x = unsafe { Gc::from_raw(x_ptr) };
    /// assert_eq!(&*x, "hello");
    /// ```
    pub fn into_raw(this: Self) -> *const T {
        let ptr = Gc::as_ptr(&this);
        mem::forget(this);
        ptr
    }

    /// Rebuilds a handle from a pointer returned by [`Gc::into_raw`], taking
    /// over the strong reference it carried, as `Arc::from_raw`.
    ///
    /// # Safety
    /// `ptr` was returned by `Gc::<U>::into_raw` where `U` is `T` (or, for a
    /// slice `T = [E]`, a slice of the same element type); the strong
    /// reference it carried was not given back already. Otherwise this is a
    /// use after free or a double free.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::sync::Gc;
    /// let p = Gc::into_raw(Gc::new(10));
    /// // SAFETY: `p` comes from `into_raw` and is given back once.
    /// let x = unsafe { Gc::from_raw(p) };
    /// assert_eq!(*x, 10);
    /// ```
    pub unsafe fn from_raw(ptr: *const T) -> Self {
        // SAFETY: caller contract: a counted strong reference keeps the
        // value alive, so `align_of_val` reads a live value's metadata.
        let align = mem::align_of_val(unsafe { &*ptr });
        let header = mem::size_of::<SyncHeader>();
        let offset = header.next_multiple_of(align.max(mem::align_of::<SyncHeader>()));
        // SAFETY: the value sits `offset` bytes after the header (`repr(C)`),
        // in the same allocation; the cast keeps the metadata.
        let boxed = unsafe { ptr.byte_sub(offset) } as *mut SyncBox<T>;
        Gc {
            // SAFETY: inside an allocation, so not null.
            ptr: unsafe { NonNull::new_unchecked(boxed) },
            _owns: PhantomData,
            _invariant: PhantomData,
        }
    }

    /// Adds one to the strong count of the object `ptr` points into, as
    /// `Arc::increment_strong_count`.
    ///
    /// # Safety
    /// `ptr` came from [`Gc::into_raw`] (as for [`Gc::from_raw`]) and its
    /// object still has a strong reference.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::sync::Gc;
    /// let p = Gc::into_raw(Gc::new(5));
    /// unsafe {
    ///     Gc::increment_strong_count(p);
    ///     let five = Gc::from_raw(p);
    ///     assert_eq!(2, Gc::strong_count(&five));
    ///     Gc::decrement_strong_count(p);
    ///     assert_eq!(1, Gc::strong_count(&five));
    /// }
    /// ```
    pub unsafe fn increment_strong_count(ptr: *const T) {
        // SAFETY: caller contract; the rebuilt handle is not dropped.
        let this = ManuallyDrop::new(unsafe { Gc::from_raw(ptr) });
        let _extra: ManuallyDrop<Gc<T>> = ManuallyDrop::new(Gc::clone(&this));
    }

    /// Removes one from the strong count of the object `ptr` points into,
    /// as `Arc::decrement_strong_count`.
    ///
    /// # Safety
    /// `ptr` came from [`Gc::into_raw`], and the reference given up here was
    /// counted for it and is not given up twice.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::sync::Gc;
    /// let five = Gc::new(5);
    /// let p = Gc::into_raw(five.clone());
    /// unsafe { Gc::decrement_strong_count(p) };
    /// assert_eq!(1, Gc::strong_count(&five));
    /// ```
    pub unsafe fn decrement_strong_count(ptr: *const T) {
        // SAFETY: caller contract.
        drop(unsafe { Gc::from_raw(ptr) })
    }

    /// Whether the value is pinned (made by [`Gc::pin`]).
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::sync::Gc;
    /// assert!(!Gc::is_pinned(&Gc::new(1)));
    /// ```
    pub fn is_pinned(this: &Self) -> bool {
        // SAFETY: a handle keeps the object alive.
        unsafe { raw::is_pinned(this.obj()) }
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
}

impl<T: Trace + Send + Sync + 'static> Gc<T> {
    /// Puts `value` in a new object on the process-wide heap.
    ///
    /// A tracked object joins generation 0; this may run an automatic
    /// collection first, on this thread.
    #[inline]
    pub fn new(value: T) -> Gc<T> {
        // SAFETY: `vtable_of::<T>()` is `T`'s vtable.
        let obj = unsafe { raw::allocate(vtable_of::<T>(), true) };
        // SAFETY: `allocate` returned an object of this vtable's layout with
        // an unwritten value; it is written once, then published.
        unsafe {
            (&raw mut (*obj.cast::<SyncBox<T>>().as_ptr()).value).write(value);
            raw::publish(obj);
            Gc::from_header(obj)
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
        // SAFETY: `vtable_of::<T>()` is `T`'s vtable.
        let obj = unsafe { raw::allocate_in(vtable_of::<T>(), true, heap.engine()) };
        // SAFETY: as in `new`.
        unsafe {
            (&raw mut (*obj.cast::<SyncBox<T>>().as_ptr()).value).write(value);
            raw::publish(obj);
            Gc::from_header(obj)
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
        // SAFETY: `vtable_of::<T>()` is `T`'s vtable.
        let obj = unsafe { raw::allocate(vtable_of::<T>(), false) };
        let abandon = Abandon(obj);
        // SAFETY: a weak reference for `weak`, counted now.
        unsafe { raw::inc_weak(obj) };
        let weak = Weak {
            ptr: obj.cast::<SyncBox<T>>(),
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
        unsafe { Gc::from_header(obj) }
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

    /// Returns the value if this is the only strong handle, as
    /// `Arc::into_inner`; otherwise drops the handle and returns `None`.
    /// Called on each handle of an object, from any threads, it returns the
    /// value exactly once — unless the last call comes while the value is
    /// pinned or from the collecting thread while its collection holds the
    /// object: the value is then dropped as usual.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::sync::Gc;
    /// let x = Gc::new(3);
    /// let y = Gc::clone(&x);
    /// let t = std::thread::spawn(move || Gc::into_inner(y));
    /// let a = Gc::into_inner(x);
    /// let b = t.join().unwrap();
    /// assert_eq!(a.or(b), Some(3)); // exactly one of them has it
    /// assert!(a.is_none() || b.is_none());
    /// ```
    pub fn into_inner(this: Self) -> Option<T> {
        let mut this = this;
        loop {
            // SAFETY: we own a strong reference; after `true` we do not.
            if unsafe { raw::dec_strong_unless_last(this.obj()) } {
                mem::forget(this);
                return None;
            }
            match Gc::try_unwrap(this) {
                Ok(v) => return Some(v),
                Err(h) if h.header().strong() <= 1 => {
                    // The last handle, but the value cannot be moved out
                    // (pinned, dead, or held by our own collection).
                    drop(h);
                    return None;
                }
                Err(h) => this = h, // cloned meanwhile (`upgrade`): again
            }
        }
    }

    /// Returns the value if this is the only strong handle, or else a clone
    /// of it, as `Arc::unwrap_or_clone`.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::sync::Gc;
    /// let a = Gc::new(String::from("x"));
    /// let b = a.clone();
    /// assert_eq!(Gc::unwrap_or_clone(a), "x"); // cloned
    /// assert_eq!(Gc::unwrap_or_clone(b), "x"); // moved out
    /// ```
    pub fn unwrap_or_clone(this: Self) -> T
    where
        T: Clone,
    {
        Gc::try_unwrap(this).unwrap_or_else(|gc| (*gc).clone())
    }

    /// Mutable access to the value, cloning it into a new object first if
    /// other handles share it, as `Arc::make_mut`: with other strong
    /// handles the value is cloned; with only weak ones it is moved to a new
    /// object and the weak handles are disassociated (they stop
    /// upgrading); with none, no new object is made. A pinned value is
    /// always cloned.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::sync::Gc;
    /// let mut data = Gc::new(5);
    /// *Gc::make_mut(&mut data) += 1; // won't clone anything
    /// let mut other_data = Gc::clone(&data); // won't clone inner data
    /// *Gc::make_mut(&mut data) += 1; // clones inner data
    /// *Gc::make_mut(&mut data) += 1; // won't clone anything
    /// *Gc::make_mut(&mut other_data) *= 2; // won't clone anything
    /// assert_eq!(*data, 8);
    /// assert_eq!(*other_data, 12);
    ///
    /// let mut data = Gc::new(75);
    /// let weak = Gc::downgrade(&data);
    /// *Gc::make_mut(&mut data) += 1;
    /// assert!(weak.upgrade().is_none()); // disassociated
    /// ```
    pub fn make_mut(this: &mut Self) -> &mut T
    where
        T: Clone,
    {
        if Gc::get_mut(this).is_none() {
            struct Abandon(NonNull<SyncHeader>);
            impl Drop for Abandon {
                fn drop(&mut self) {
                    // SAFETY: the clone panicked: the value was never
                    // written and the object never published.
                    unsafe { raw::abandon(self.0) }
                }
            }
            // Allocate first: this may run a collection; then nothing that
            // can panic runs between moving the value out and storing the
            // new handle.
            // SAFETY: `vtable_of::<T>()` is `T`'s vtable.
            let obj = unsafe { raw::allocate(vtable_of::<T>(), true) };
            let abandon = Abandon(obj);
            // SAFETY: we hold a strong reference; `begin_unwrap` succeeds
            // only if it is the only one (weak handles aside), and then
            // hands us the value, moved out once, and the object, released
            // once (its weak handles stop upgrading).
            let moved = unsafe { !raw::is_dead(this.obj()) && raw::begin_unwrap(this.obj()) };
            // A panic of a death hook run where the value leaves the old
            // object: resumed once `this` holds the new handle (unwinding
            // before would leave `this` with the released object).
            let mut hook_panic = None;
            let value = if moved {
                // SAFETY: as above.
                unsafe {
                    let v = ptr::read(&raw const (*this.ptr.as_ptr()).value);
                    let obj = this.obj();
                    hook_panic = std::panic::catch_unwind(AssertUnwindSafe(|| {
                        raw::finish_unwrap(obj);
                    }))
                    .err();
                    v
                }
            } else {
                (**this).clone()
            };
            mem::forget(abandon);
            // SAFETY: written once, then published.
            let fresh = unsafe {
                (&raw mut (*obj.cast::<SyncBox<T>>().as_ptr()).value).write(value);
                raw::publish(obj);
                Gc::from_header(obj)
            };
            if moved {
                // SAFETY: the old reference was given up by `begin_unwrap`;
                // overwrite the handle without dropping it.
                unsafe { ptr::write(this, fresh) };
                if let Some(p) = hook_panic {
                    std::panic::resume_unwind(p);
                }
            } else {
                *this = fresh;
            }
        }
        match Gc::get_mut(this) {
            Some(v) => v,
            None => unreachable!("ouro: make_mut's new object has one handle"),
        }
    }

    /// Puts `value` in a new object and pins it, as `Arc::pin`. Every handle
    /// to the object, including those introspection hands out, refuses to
    /// move the value or hand out `&mut` to it ([`Gc::get_mut`],
    /// [`Gc::try_unwrap`], [`Gc::into_inner`], [`Gc::make_mut`]).
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use std::pin::Pin;
    /// let p: Pin<ouro::sync::Gc<u8>> = ouro::sync::Gc::pin(5);
    /// assert_eq!(*p, 5);
    /// ```
    pub fn pin(value: T) -> Pin<Gc<T>> {
        // SAFETY: `vtable_of::<T>()` is `T`'s vtable.
        let obj = unsafe { raw::allocate(vtable_of::<T>(), true) };
        // SAFETY: written once; pinned before it is published; then one
        // strong reference is ours.
        let this = unsafe {
            (&raw mut (*obj.cast::<SyncBox<T>>().as_ptr()).value).write(value);
            raw::pin_unpublished(obj);
            raw::publish(obj);
            Gc::from_header(obj)
        };
        // SAFETY: the value is never moved nor handed out as `&mut` again
        // (every handle refuses once `PINNED` is set), and the collector
        // drops values in place.
        unsafe { Pin::new_unchecked(this) }
    }

    /// A new object whose value is not written yet, as `Arc::new_uninit`:
    /// write it through [`Gc::get_mut`], then call [`Gc::assume_init`]. The
    /// collector does not see the object before that.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::sync::Gc;
    /// let mut five = Gc::<u32>::new_uninit();
    /// Gc::get_mut(&mut five).unwrap().write(5);
    /// let five = unsafe { five.assume_init() };
    /// assert_eq!(*five, 5)
    /// ```
    pub fn new_uninit() -> Gc<MaybeUninit<T>> {
        // SAFETY: `vtable_of::<T>()` is `T`'s vtable.
        let obj = unsafe { raw::allocate_uninit(vtable_of::<T>()) };
        // SAFETY: one strong reference; `MaybeUninit<T>` has `T`'s layout,
        // and the value is not dropped while `UNINIT` is set.
        unsafe { Gc::from_header(obj) }
    }
}

impl<T: Trace + Send + Sync + 'static> Gc<MaybeUninit<T>> {
    /// Converts to `Gc<T>`, as `Arc::assume_init`; the object joins the
    /// collector's lists if `T` can hold handles.
    ///
    /// # Safety
    /// The value is initialised, and the handle came from [`Gc::new_uninit`]
    /// (the only way to make a `Gc<MaybeUninit<T>>`: `MaybeUninit` does not
    /// implement `Trace`). Call it once per object.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::sync::Gc;
    /// let mut s = Gc::<String>::new_uninit();
    /// Gc::get_mut(&mut s).unwrap().write("hi".into());
    /// let s = unsafe { s.assume_init() };
    /// assert_eq!(*s, "hi");
    /// ```
    pub unsafe fn assume_init(self) -> Gc<T> {
        let this = ManuallyDrop::new(self);
        // SAFETY: caller contract.
        unsafe { raw::publish_uninit(this.obj()) };
        // SAFETY: the strong reference moves to the new handle; the layouts
        // agree.
        unsafe { Gc::from_header(this.obj()) }
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
/// A `Box<str>` or a boxed slice becomes a `sync::Gc<str>` or
/// `sync::Gc<[T]>` (tracked when `T` can hold handles).
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
///
/// let text: Gc<str> = Gc::from(Box::<str>::from("boxed"));
/// assert_eq!(&*text, "boxed");
/// let items: Gc<[u8]> = Gc::from(vec![1, 2].into_boxed_slice());
/// assert_eq!(*items, [1, 2]);
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
    /// The box, or [`DANGLING`] for `Weak::new()` (a sentinel address, as
    /// `std::sync::Weak`, so that `Option<Weak<T>>` is one pointer).
    ptr: NonNull<SyncBox<T>>,
    _invariant: PhantomData<*mut T>,
}

/// The address of `Weak::new()`: never that of an allocation (odd).
const DANGLING: usize = usize::MAX;

#[inline(always)]
fn is_dangling<T: ?Sized>(ptr: *const T) -> bool {
    ptr.cast::<()>().addr() == DANGLING
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
            ptr: obj.cast(),
            _invariant: PhantomData,
        }
    }

    /// A weak handle that never upgrades (no allocation).
    pub const fn new() -> Weak<T> {
        Weak {
            // SAFETY: `DANGLING` is not zero.
            ptr: unsafe { NonNull::new_unchecked(ptr::without_provenance_mut(DANGLING)) },
            _invariant: PhantomData,
        }
    }

    /// Rebuilds a weak handle from a pointer returned by
    /// [`Weak::into_raw`], taking over the weak reference it carried, as
    /// `std::sync::Weak::from_raw`. Works after the value is gone. Only for
    /// sized `T` (as [`crate::Weak::from_raw`]).
    ///
    /// # Safety
    /// `ptr` came from `Weak::<T>::into_raw` and the weak reference it
    /// carries was not taken back already.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::sync::{Gc, Weak};
    /// let strong = Gc::new(5);
    /// let raw = Gc::downgrade(&strong).into_raw();
    /// // SAFETY: `raw` came from `into_raw` and is given back once.
    /// let weak = unsafe { Weak::from_raw(raw) };
    /// assert_eq!(*weak.upgrade().unwrap(), 5);
    /// ```
    pub unsafe fn from_raw(ptr: *const T) -> Self {
        let boxed = if is_dangling(ptr) {
            ptr as *mut SyncBox<T>
        } else {
            // SAFETY: caller contract: the value sits at this offset in its
            // box, which the weak reference keeps allocated.
            unsafe { ptr.byte_sub(mem::offset_of!(SyncBox<T>, value)) as *mut SyncBox<T> }
        };
        Weak {
            // SAFETY: the sentinel or an address inside an allocation.
            ptr: unsafe { NonNull::new_unchecked(boxed) },
            _invariant: PhantomData,
        }
    }
}

impl<T: ?Sized> Weak<T> {
    #[inline(always)]
    fn header(&self) -> Option<&SyncHeader> {
        if is_dangling(self.ptr.as_ptr()) {
            return None;
        }
        // SAFETY: the weak count we hold keeps the header allocated.
        Some(unsafe { self.ptr.cast::<SyncHeader>().as_ref() })
    }

    /// A strong handle, if the value is still alive and not found
    /// unreachable by the collector.
    pub fn upgrade(&self) -> Option<Gc<T>> {
        self.header()?;
        let p = self.ptr.cast::<SyncHeader>();
        // SAFETY: we hold a weak reference.
        if unsafe { raw::upgrade(p) } {
            // SAFETY: one strong reference was just counted for us.
            Some(Gc {
                ptr: self.ptr,
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

    /// The number of weak handles, as `std::sync::Weak::weak_count`: 0 for
    /// `Weak::new()` and once no strong handle is left.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::sync::Gc;
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

    /// The weak count kept in the header, also once the value is gone (the
    /// loom models check that each count is released once).
    #[cfg(loom)]
    #[doc(hidden)]
    pub fn weak_count_for_loom(&self) -> usize {
        self.header().map_or(0, |h| h.weak())
    }

    /// Whether both point to the same object (or both are `Weak::new()`).
    pub fn ptr_eq(&self, other: &Self) -> bool {
        ptr::addr_eq(self.ptr.as_ptr(), other.ptr.as_ptr())
    }

    /// The pointer to the value, as `std::sync::Weak::as_ptr`: only
    /// dereferenceable while a strong handle keeps the value alive;
    /// dangling for `Weak::new()`.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::sync::Gc;
    /// let strong = Gc::new("hello".to_owned());
    /// let weak = Gc::downgrade(&strong);
    /// assert!(std::ptr::eq(&*strong, weak.as_ptr()));
    /// ```
    pub fn as_ptr(&self) -> *const T {
        if is_dangling(self.ptr.as_ptr()) {
            self.ptr.as_ptr() as *const T
        } else {
            // SAFETY: the box is allocated; no reference is made.
            unsafe { &raw const (*self.ptr.as_ptr()).value }
        }
    }

    /// Consumes the weak handle and returns the pointer to the value, as
    /// `std::sync::Weak::into_raw`; the weak reference stays counted until
    /// [`Weak::from_raw`] takes it back.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::sync::{Gc, Weak};
    /// let strong = Gc::new("hello".to_owned());
    /// let raw = Gc::downgrade(&strong).into_raw();
    /// assert_eq!(1, Gc::weak_count(&strong));
    /// drop(unsafe { Weak::from_raw(raw) });
    /// assert_eq!(0, Gc::weak_count(&strong));
    /// ```
    pub fn into_raw(self) -> *const T {
        let p = self.as_ptr();
        mem::forget(self);
        p
    }
}

impl<T> Default for Weak<T> {
    fn default() -> Self {
        Weak::new()
    }
}

impl<T: ?Sized> Clone for Weak<T> {
    fn clone(&self) -> Self {
        if self.header().is_some() {
            // SAFETY: we hold a weak reference.
            unsafe { raw::inc_weak(self.ptr.cast()) };
        }
        Weak {
            ptr: self.ptr,
            _invariant: PhantomData,
        }
    }
}

impl<T: ?Sized> Drop for Weak<T> {
    fn drop(&mut self) {
        if self.header().is_some() {
            // SAFETY: we own this weak reference.
            unsafe { raw::dec_weak(self.ptr.cast()) };
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

/// The vtables of a `sync::Gc<[T]>`, one per answer of `T`'s impl (`N`:
/// needs tracing, `S`: structural; a slice has no finalizer of its own):
/// `layout` is one element's; the length is kept in the object
/// (`raw::unsized_len`).
struct SliceVTableOf<T, const N: bool, const S: bool>(PhantomData<T>);

impl<T: Trace + 'static, const N: bool, const S: bool> SliceVTableOf<T, N, S> {
    const VTABLE: SyncVTable = SyncVTable {
        trace: trace_slice::<T>,
        finalize: finalize_slice::<T>,
        drop_value: drop_slice::<T>,
        layout: Layout::new::<T>(),
        value_offset: mem::offset_of!(SyncBox<[T; 0]>, value),
        type_name: core::any::type_name::<[T]>,
        type_id: TypeId::of::<[T]>,
        has_finalizer: false,
        tracked: N,
        sized: false,
        structural: S,
    };
}

/// The vtable of a `SyncBox<[T]>` (a constant once inlined).
#[inline(always)]
fn slice_vtable_of<T: Trace + 'static>() -> &'static SyncVTable {
    match (T::needs_trace(), T::structural().is_made()) {
        (true, true) => &SliceVTableOf::<T, true, true>::VTABLE,
        (true, false) => &SliceVTableOf::<T, true, false>::VTABLE,
        (false, true) => &SliceVTableOf::<T, false, true>::VTABLE,
        (false, false) => &SliceVTableOf::<T, false, false>::VTABLE,
    }
}

/// The value of a slice object.
///
/// # Safety
/// `obj` is an allocated slice object of element type `T`.
unsafe fn slice_value<T>(obj: NonNull<SyncHeader>) -> *mut [T] {
    // SAFETY: caller contract.
    let len = unsafe { raw::unsized_len(obj) };
    // SAFETY: the elements start at the value offset, in the allocation.
    let data = unsafe { SyncHeader::value_ptr(obj) };
    ptr::slice_from_raw_parts_mut(data.cast::<T>().as_ptr(), len)
}

/// # Safety
/// `obj` is a live slice object whose elements no `&mut` aliases.
unsafe fn trace_slice<T: Trace>(obj: NonNull<SyncHeader>, v: &mut Visitor<'_>) {
    // SAFETY: caller contract.
    unsafe { (*slice_value::<T>(obj)).trace(v) }
}

/// # Safety
/// As `trace_slice`.
unsafe fn finalize_slice<T: Trace>(obj: NonNull<SyncHeader>) {
    // SAFETY: caller contract.
    unsafe { (*slice_value::<T>(obj)).finalize() }
}

/// # Safety
/// As `trace_slice`; the elements are dropped once and never used again.
unsafe fn drop_slice<T>(obj: NonNull<SyncHeader>) {
    // SAFETY: caller contract.
    unsafe { ptr::drop_in_place(slice_value::<T>(obj)) }
}

/// Moves the elements of `v` into a new, published slice object with one
/// strong reference (the code of `Gc::<[T]>::from_vec`, also reached from a
/// `Box<[T]>` whose `[T]: Send + Sync` does not let the compiler see
/// `T: Send + Sync`).
///
/// # Safety
/// `T` is `Send + Sync` (the object may be traced, finalized and dropped on
/// any thread).
pub(crate) unsafe fn slice_object<T: Trace + 'static>(v: Vec<T>) -> NonNull<SyncHeader> {
    let len = v.len();
    // SAFETY: `slice_vtable_of::<T>()` is the vtable of `[T]`, by element.
    let obj = unsafe { raw::allocate_unsized(slice_vtable_of::<T>(), len, true) };
    let mut v = ManuallyDrop::new(v);
    // SAFETY: the object has room for `len` elements at its value
    // address (`allocate_unsized`); they are moved in once (the vector
    // keeps its buffer only), then the object is published.
    unsafe {
        let dst = SyncHeader::value_ptr(obj).cast::<T>();
        ptr::copy_nonoverlapping(v.as_ptr(), dst.as_ptr(), len);
        v.set_len(0);
        ManuallyDrop::drop(&mut v);
        raw::publish(obj);
    }
    obj
}

impl<T: Trace + Send + Sync + 'static> Gc<[T]> {
    /// Moves the elements of `v` into a new slice object on the
    /// process-wide heap: tracked when `T` can hold handles, so cycles
    /// through it are collected.
    fn from_vec(v: Vec<T>) -> Gc<[T]> {
        let len = v.len();
        // SAFETY: `T: Send + Sync` (this impl's bounds).
        let obj = unsafe { slice_object(v) };
        let fat = ptr::slice_from_raw_parts_mut(obj.as_ptr().cast::<T>(), len) as *mut SyncBox<[T]>;
        Gc {
            // SAFETY: from a non-null header pointer; one strong reference.
            ptr: unsafe { NonNull::new_unchecked(fat) },
            _owns: PhantomData,
            _invariant: PhantomData,
        }
    }
}

impl<T: Trace + Send + Sync + 'static> From<Vec<T>> for Gc<[T]> {
    /// Moves the elements into a new object, as `Arc::from(Vec<T>)`.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// let s: ouro::sync::Gc<[u32]> = vec![1, 2, 3].into();
    /// assert_eq!(&*s, &[1, 2, 3]);
    /// ```
    fn from(v: Vec<T>) -> Self {
        Gc::from_vec(v)
    }
}

impl<T: Trace + Send + Sync + Clone + 'static> From<&[T]> for Gc<[T]> {
    /// Clones the elements into a new object, as `Arc::from(&[T])`.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// let s: ouro::sync::Gc<[i32]> = ouro::sync::Gc::from(&[1, 2, 3][..]);
    /// assert_eq!(&[1, 2, 3], &s[..]);
    /// ```
    fn from(s: &[T]) -> Self {
        Gc::from_vec(s.to_vec())
    }
}

impl<T: Trace + Send + Sync + 'static, const N: usize> From<[T; N]> for Gc<[T]> {
    /// As `Arc::from([T; N])`.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// let s: ouro::sync::Gc<[i32]> = ouro::sync::Gc::from([1, 2, 3]);
    /// assert_eq!(&[1, 2, 3], &s[..]);
    /// ```
    fn from(a: [T; N]) -> Self {
        Gc::from_vec(Vec::from(a))
    }
}

impl<T: Trace + Send + Sync + Clone + 'static> From<Cow<'_, [T]>> for Gc<[T]> {
    /// As `Arc::from(Cow<[T]>)`.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use std::borrow::Cow;
    /// let s: ouro::sync::Gc<[i32]> = ouro::sync::Gc::from(Cow::Borrowed(&[1, 2][..]));
    /// assert_eq!(&[1, 2], &s[..]);
    /// ```
    fn from(cow: Cow<'_, [T]>) -> Self {
        match cow {
            Cow::Borrowed(s) => Gc::from(s),
            Cow::Owned(v) => Gc::from(v),
        }
    }
}

impl<T: Trace + Send + Sync + 'static> FromIterator<T> for Gc<[T]> {
    /// As `Arc<[T]>: FromIterator<T>`.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// let evens: ouro::sync::Gc<[u8]> = (0..10).filter(|&x| x % 2 == 0).collect();
    /// assert_eq!(&[0, 2, 4, 6, 8], &evens[..]);
    /// ```
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        Gc::from_vec(iter.into_iter().collect())
    }
}

impl<T: Trace + Send + Sync + 'static> Default for Gc<[T]> {
    /// An empty slice, as `Arc::<[T]>::default()`.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// let s: ouro::sync::Gc<[u8]> = Default::default();
    /// assert!(s.is_empty());
    /// ```
    fn default() -> Self {
        Gc::from_vec(Vec::new())
    }
}

impl From<&str> for Gc<str> {
    /// Copies the string into a new object, as `Arc::from(&str)`.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// let s: ouro::sync::Gc<str> = "hello".into();
    /// assert_eq!(&*s, "hello");
    /// ```
    fn from(s: &str) -> Self {
        let bytes = ManuallyDrop::new(Gc::<[u8]>::from_vec(s.as_bytes().to_vec()));
        Gc {
            // SAFETY: the bytes are valid UTF-8 (from a `str`) and
            // `SyncBox<str>` has the layout of `SyncBox<[u8]>`; the strong
            // reference moves from `bytes` (forgotten) to the new handle.
            ptr: unsafe { NonNull::new_unchecked(bytes.ptr.as_ptr() as *mut SyncBox<str>) },
            _owns: PhantomData,
            _invariant: PhantomData,
        }
    }
}

impl From<String> for Gc<str> {
    /// As `Arc::from(String)`.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// let s: ouro::sync::Gc<str> = String::from("hi").into();
    /// assert_eq!(&*s, "hi");
    /// ```
    fn from(s: String) -> Self {
        Gc::from(s.as_str())
    }
}

impl From<Cow<'_, str>> for Gc<str> {
    /// As `Arc::from(Cow<str>)`.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use std::borrow::Cow;
    /// let s: ouro::sync::Gc<str> = ouro::sync::Gc::from(Cow::Borrowed("eggplant"));
    /// assert_eq!(&*s, "eggplant");
    /// ```
    fn from(cow: Cow<'_, str>) -> Self {
        Gc::from(&*cow)
    }
}

impl Default for Gc<str> {
    /// An empty string, as `Arc::<str>::default()`.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// let s: ouro::sync::Gc<str> = Default::default();
    /// assert_eq!(&*s, "");
    /// ```
    fn default() -> Self {
        Gc::from("")
    }
}
