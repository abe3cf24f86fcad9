//! `Gc<T>`: the single-threaded reference-counted handle.

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
use core::panic::{AssertUnwindSafe, RefUnwindSafe, UnwindSafe};
use core::pin::Pin;
use core::ptr::{self, NonNull};
use std::borrow::Cow;

use ouro_cyclegc::{ObjHeader, VTable, Visitor, raw};

use crate::Trace;
use crate::weak::Weak;

/// One allocation: the header, then the value. Public (hidden) only so that
/// [`coerce_gc!`](crate::coerce_gc) can coerce a pointer to it; its fields
/// are not.
#[doc(hidden)]
#[repr(C)]
#[allow(missing_debug_implementations)]
pub struct GcBox<T: ?Sized> {
    pub(crate) header: ObjHeader,
    pub(crate) value: T,
}

/// The vtables of `GcBox<T>`, one static per type and answers of its
/// `Trace` impl (`S`: structural, `F`: has a finalizer).
pub(crate) struct VTableOf<T, const S: bool, const F: bool>(PhantomData<T>);

/// The vtable of `GcBox<T>`. The answers of `T`'s impl are constants once
/// inlined, so this is a constant too (a static).
#[inline(always)]
pub(crate) fn vtable_of<T: Trace + 'static>() -> &'static VTable {
    match (T::structural().is_made(), T::has_finalizer()) {
        (true, false) => &VTableOf::<T, true, false>::VTABLE,
        (true, true) => &VTableOf::<T, true, true>::VTABLE,
        (false, false) => &VTableOf::<T, false, false>::VTABLE,
        (false, true) => &VTableOf::<T, false, true>::VTABLE,
    }
}

/// `p` with its data address (and provenance) replaced by `data`, keeping
/// its metadata (a length, a trait object's vtable): what
/// `ptr::with_metadata_of` does, which is not stable yet.
pub(crate) fn with_data<T: ?Sized>(mut p: *mut T, data: *mut u8) -> *mut T {
    const {
        assert!(mem::size_of::<*mut T>().is_multiple_of(mem::size_of::<*mut u8>()));
    }
    // SAFETY: a pointer to `T` is its data address (a `*mut u8`), followed
    // by its metadata when `T` is unsized: the layout rustc gives every
    // pointer, which the standard library's own `set_ptr_value` relied on
    // before `with_metadata_of`. Only that first word is written.
    unsafe { (&raw mut p).cast::<*mut u8>().write(data) };
    p
}

impl<T: Trace + 'static, const S: bool, const F: bool> VTableOf<T, S, F> {
    pub(crate) const VTABLE: VTable = VTable {
        trace: trace_value::<T>,
        finalize: finalize_value::<T>,
        drop_value: drop_value::<T>,
        layout: Layout::new::<GcBox<T>>(),
        value_offset: mem::offset_of!(GcBox<T>, value),
        type_name: core::any::type_name::<T>,
        type_id: TypeId::of::<T>,
        has_finalizer: F,
        sized: true,
        structural: S,
    };
}

/// # Safety
/// `obj` is the header of a live `GcBox<T>` with an initialised value.
unsafe fn trace_value<T: Trace>(obj: NonNull<ObjHeader>, v: &mut Visitor<'_>) {
    // SAFETY: caller contract.
    unsafe { (*obj.cast::<GcBox<T>>().as_ptr()).value.trace(v) }
}

/// # Safety
/// As `trace_value`.
unsafe fn finalize_value<T: Trace>(obj: NonNull<ObjHeader>) {
    // SAFETY: caller contract.
    unsafe { (*obj.cast::<GcBox<T>>().as_ptr()).value.finalize() }
}

/// # Safety
/// As `trace_value`; the value is dropped once and never used again.
unsafe fn drop_value<T>(obj: NonNull<ObjHeader>) {
    // SAFETY: caller contract.
    unsafe { ptr::drop_in_place(&raw mut (*obj.cast::<GcBox<T>>().as_ptr()).value) }
}

/// A single-threaded reference-counted handle with cycle collection: the
/// counterpart of a Python object reference (`Py<T>`), and of `Rc<T>`.
///
/// Cloning a `Gc` adds a reference; dropping the last one drops the value and
/// frees its memory at once, as in CPython. Values that take part in
/// reference cycles (a tree with parent pointers, a doubly linked list) are
/// freed by the cycle collector: automatically after enough allocations, or
/// by [`gc::collect()`](crate::gc::collect).
///
/// Memory comes from the thread's pool allocator; `Gc` is `!Send` and
/// `!Sync`, like `Rc`. Objects whose type has `Trace::needs_trace() == false`
/// are never tracked and cost the collector nothing.
///
/// # Examples
///
/// ```
/// # extern crate ouro_refobj as ouro;
/// # use ouro_macros::Trace;
/// use ouro::{Gc, Trace, gc};
/// use std::cell::RefCell;
///
/// #[derive(Trace)]
/// struct Node {
///     next: RefCell<Option<Gc<Node>>>,
/// }
///
/// let a = Gc::new(Node { next: RefCell::new(None) });
/// *a.next.borrow_mut() = Some(a.clone()); // a cycle
/// assert_eq!(Gc::strong_count(&a), 2);
/// drop(a); // unreachable now, but the count is still 1
/// assert_eq!(gc::collect(), 1);
/// ```
///
/// A `Gc` belongs to the thread that made it (its heap is thread-local), so
/// it cannot be sent to another thread:
///
/// ```compile_fail
/// # extern crate ouro_refobj as ouro;
/// let a = ouro::Gc::new(1);
/// std::thread::spawn(move || println!("{}", a)); // error: `Gc<i32>` is not `Send`
/// ```
///
/// Unlike `Rc<T>`, `Gc<T>` is invariant in `T`, so a handle cannot be used
/// at a shorter lifetime (with `get_mut`, that could store a short-lived
/// reference into an object that introspection later hands out as `'static`):
///
/// ```compile_fail
/// # extern crate ouro_refobj as ouro;
/// use ouro::Gc;
/// let g: Gc<&'static str> = Gc::new("static");
/// let local = String::from("short");
/// let mut short: Gc<&str> = g; // error: `Gc` is invariant
/// *Gc::get_mut(&mut short).unwrap() = &local;
/// ```
///
/// # `Rc` methods that `Gc` does not have
/// `Gc` has `Rc`'s methods under their names, except:
/// - `get_mut_unchecked` (unstable in std): a `&mut T` while other handles
///   exist would be read concurrently by the collector, which traces the
///   value through any handle's object at any allocation; [`Gc::get_mut`]
///   and [`Gc::make_mut`] mark the object so the collector keeps off it,
///   which needs the uniqueness check.
/// - the allocator-parameterised variants (`new_in`, `Rc<T, A>`): every
///   object lives in the thread's pool, where the collector can find it.
/// - `Gc<T>` is invariant in `T` (see above), so there is no unsizing
///   coercion such as `Rc<[T; N]>` to `Rc<[T]>` (`CoerceUnsized` is
///   unstable too).
///
/// # Panics
/// Dereferencing panics if the value is not available: when the collector
/// already dropped it (possible only with a `Trace` impl that reports edges
/// the value does not own, or from the `Drop` of another object of the same
/// garbage), while it is still being built (`Gc::new_cyclic`, `deep_copy`),
/// or from inside `Trace::trace` during a collection.
pub struct Gc<T: ?Sized> {
    ptr: NonNull<GcBox<T>>,
    _owns: PhantomData<GcBox<T>>,
    /// `Gc<T>` is invariant in `T` (unlike `Rc`): with `get_mut` and
    /// `ObjectInfo::downcast` (whose `TypeId` ignores lifetimes), a covariant
    /// handle could store a short-lived reference in an object that is
    /// later handed out with its original `'static` type.
    _invariant: PhantomData<*mut T>,
}

impl<T: ?Sized> Gc<T> {
    #[inline(always)]
    pub(crate) fn header(&self) -> &ObjHeader {
        // SAFETY: a handle keeps its allocation alive; the header is at
        // offset 0 of the `repr(C)` box and is always initialised.
        unsafe { &*self.ptr.as_ptr().cast::<ObjHeader>() }
    }

    #[inline(always)]
    pub(crate) fn obj(&self) -> NonNull<ObjHeader> {
        self.ptr.cast()
    }

    /// The object, with the handle's strong reference.
    pub(crate) fn into_header(this: Self) -> NonNull<ObjHeader> {
        ManuallyDrop::new(this).obj()
    }

    /// Builds a handle that takes over one strong reference.
    ///
    /// # Safety
    /// `ptr` is a live `GcBox<T>` and the caller gives up one counted
    /// strong reference to it.
    #[inline(always)]
    pub(crate) unsafe fn from_box(ptr: NonNull<GcBox<T>>) -> Self {
        Gc {
            ptr,
            _owns: PhantomData,
            _invariant: PhantomData,
        }
    }

    /// Whether both handles point to the same object (Python's `is`).
    #[inline]
    pub fn ptr_eq(this: &Self, other: &Self) -> bool {
        ptr::addr_eq(this.ptr.as_ptr(), other.ptr.as_ptr())
    }

    /// The address of the value (Python's `id()`). It stays valid as long as
    /// a handle exists, but is only dereferenceable while the value is alive.
    #[inline]
    pub fn as_ptr(this: &Self) -> *const T {
        // SAFETY: the box is allocated; no reference to the value is made.
        unsafe { &raw const (*this.ptr.as_ptr()).value }
    }

    /// The number of strong handles (`sys.getrefcount` without the temporary).
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
        this.header().inc_weak();
        // SAFETY: one weak reference was just counted for it.
        unsafe { Weak::from_box(this.ptr) }
    }

    /// Whether the collector tracks the object (it is on a generation list):
    /// false for types with `needs_trace() == false` and for dead objects.
    pub fn is_tracked(this: &Self) -> bool {
        this.header().is_tracked()
    }

    /// Whether the object's finalizer has run (it runs at most once).
    pub fn is_finalized(this: &Self) -> bool {
        this.header().is_finalized()
    }

    /// Mutable access if this is the only handle (no other strong or weak
    /// handles), as `Rc::get_mut`.
    ///
    /// While the `&mut T` lives, the collector does not trace the value.
    /// Returns `None` as well while a collection holds the object (from a
    /// `Drop` or finalizer it runs) and for a pinned value ([`Gc::pin`]).
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::Gc;
    /// let mut x = Gc::new(3);
    /// *Gc::get_mut(&mut x).unwrap() = 4;
    /// assert_eq!(*x, 4);
    /// let _y = x.clone();
    /// assert!(Gc::get_mut(&mut x).is_none());
    /// ```
    pub fn get_mut(this: &mut Self) -> Option<&mut T> {
        let h = this.header();
        // SAFETY: a handle keeps its object live.
        let held = unsafe { raw::is_held_by_collector(this.obj()) };
        if h.strong() != 1 || h.weak() != 0 || !h.is_live() || held || h.is_pinned() {
            return None;
        }
        // SAFETY: live object.
        unsafe { raw::mark_exclusive(this.obj()) };
        // SAFETY: this is the only handle, there are no weak handles, the
        // value is initialised and alive, and the collector will not read it
        // while the handle stays unique (EXCLUSIVE); `&mut self` keeps the
        // handle unique for the lifetime of the result.
        Some(unsafe { &mut (*this.ptr.as_ptr()).value })
    }

    /// Consumes the handle and returns the pointer to the value, as
    /// `Rc::into_raw`. The strong reference stays counted: the object stays
    /// alive (the collector sees the reference as one from outside, like any
    /// handle it cannot find in another object) until the pointer is given
    /// back to [`Gc::from_raw`] and that handle dropped, or the count is
    /// decremented with [`Gc::decrement_strong_count`]. Forgetting it leaks
    /// the object, as with `Rc`.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::Gc;
    /// let x = Gc::new("hello".to_owned());
    /// let x_ptr = Gc::into_raw(x);
    /// assert_eq!(unsafe { &*x_ptr }, "hello");
    /// let x = unsafe { Gc::from_raw(x_ptr) }; // back to a handle, no leak
    /// assert_eq!(&*x, "hello");
    /// ```
    pub fn into_raw(this: Self) -> *const T {
        let ptr = Gc::as_ptr(&this);
        mem::forget(this);
        ptr
    }

    /// Rebuilds a handle from a pointer returned by [`Gc::into_raw`], taking
    /// over the strong reference it carried, as `Rc::from_raw`.
    ///
    /// # Safety
    /// `ptr` was returned by `Gc::<U>::into_raw` (on this thread) where `U`
    /// has the same size and alignment as `T` and is the same type for a
    /// sized `T`, or where `U` is `[T; N]`-like with `T = [E]` (as `Rc`);
    /// the strong reference it carried was not given back already
    /// (each `into_raw` is matched by at most one `from_raw` or
    /// [`Gc::decrement_strong_count`]). Otherwise this is a use after free or
    /// a double free.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::Gc;
    /// let x = Gc::new(10);
    /// let p = Gc::into_raw(x);
    /// // SAFETY: `p` comes from `into_raw` and is given back once.
    /// let x = unsafe { Gc::from_raw(p) };
    /// assert_eq!(*x, 10);
    /// assert_eq!(Gc::strong_count(&x), 1);
    /// ```
    pub unsafe fn from_raw(ptr: *const T) -> Self {
        // SAFETY: caller contract: `ptr` points at the value of a box that
        // a counted strong reference keeps alive, so `align_of_val` reads a
        // live value's metadata (for sized types it reads nothing).
        let offset = value_offset(mem::align_of_val(unsafe { &*ptr }));
        // SAFETY: the value sits `offset` bytes after the start of its box
        // (`repr(C)`: the header, then the value at its alignment), in the
        // same allocation, and the cast keeps the metadata.
        let boxed = unsafe { ptr.byte_sub(offset) } as *mut GcBox<T>;
        // SAFETY: non-null (inside an allocation); the caller gives up the
        // strong reference `into_raw` kept.
        unsafe { Gc::from_box(NonNull::new_unchecked(boxed)) }
    }

    /// Adds one to the strong count of the object `ptr` points into, as
    /// `Rc::increment_strong_count`.
    ///
    /// # Safety
    /// `ptr` was returned by [`Gc::into_raw`] (as for [`Gc::from_raw`]) and
    /// its object still has at least one strong reference (the one the
    /// pointer carries, typically).
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::Gc;
    /// let five = Gc::new(5);
    /// let p = Gc::into_raw(five);
    /// unsafe {
    ///     Gc::increment_strong_count(p);
    ///     let five = Gc::from_raw(p);
    ///     assert_eq!(2, Gc::strong_count(&five));
    ///     Gc::decrement_strong_count(p);
    ///     assert_eq!(1, Gc::strong_count(&five));
    /// }
    /// ```
    pub unsafe fn increment_strong_count(ptr: *const T) {
        // SAFETY: caller contract; the rebuilt handle is not dropped, so the
        // reference the pointer carries stays where it was.
        let this = ManuallyDrop::new(unsafe { Gc::from_raw(ptr) });
        let _extra: ManuallyDrop<Gc<T>> = ManuallyDrop::new(Gc::clone(&this));
    }

    /// Removes one from the strong count of the object `ptr` points into,
    /// dropping the value if it was the last, as
    /// `Rc::decrement_strong_count`.
    ///
    /// # Safety
    /// `ptr` was returned by [`Gc::into_raw`] (as for [`Gc::from_raw`]), and
    /// the reference given up here was counted for it (by `into_raw` or
    /// [`Gc::increment_strong_count`]) and is not given up twice.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::Gc;
    /// let five = Gc::new(5);
    /// let p = Gc::into_raw(five.clone());
    /// assert_eq!(2, Gc::strong_count(&five));
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
    /// use ouro::Gc;
    /// assert!(!Gc::is_pinned(&Gc::new(1)));
    /// ```
    pub fn is_pinned(this: &Self) -> bool {
        this.header().is_pinned()
    }

    /// The layout of the box, read without making a reference to the value:
    /// the value may be in the middle of being dropped (the collector drops a
    /// value that holds a handle or weak handle to its own object), and a
    /// shared reference to it would alias the `&mut` of `drop_in_place`.
    ///
    /// # Safety
    /// `ptr` is an allocated box (its memory not freed).
    pub(crate) unsafe fn box_layout(ptr: NonNull<GcBox<T>>) -> Layout {
        // SAFETY: caller contract; the header is disjoint from the value.
        let h = unsafe { &*ptr.as_ptr().cast::<ObjHeader>() };
        let vt = h.vtable();
        if vt.sized {
            // Sized values (every not-yet-written one among them): the vtable
            // has the layout, and no reference to the value is made.
            vt.layout
        } else if h.has_links() {
            // Tracked slices keep their length in the allocation; no
            // reference to the value (which the collector may have dropped)
            // is made.
            // SAFETY: caller contract.
            unsafe { ObjHeader::boxed_layout(ptr.cast()) }
        } else {
            // Untracked unsized values (`Gc<str>`, slices of leaf types) are
            // always written at creation; the collector never drops them,
            // and a handle or weak handle to one cannot sit inside its own
            // value while it is being dropped (its count is zero then, and
            // weak handles are held off by `release`), so no `&mut` to it
            // exists.
            // SAFETY: caller contract.
            Layout::for_value(unsafe { &*ptr.as_ptr() })
        }
    }

    #[cold]
    #[inline(never)]
    fn drop_slow(&mut self) {
        let ptr = self.ptr;
        // SAFETY: the box is allocated (its count just reached zero but
        // memory is only freed by `release`).
        let layout = unsafe { Self::box_layout(ptr) };
        // SAFETY: strong count is zero, `layout` is the box's, and the
        // closure drops the value in place exactly once; it owns the only
        // thing it uses (the pointer, two words at most), so it can run
        // later.
        unsafe {
            raw::release(ptr.cast(), layout, move || {
                ptr::drop_in_place(&raw mut (*ptr.as_ptr()).value)
            })
        }
    }
}

impl<T: Trace + 'static> Gc<T> {
    /// `this` with its pointer cast by `f` (the code of
    /// [`coerce_gc!`](crate::coerce_gc)).
    ///
    /// # Safety
    /// `f` is `|p| p as _`: the cast is to a pointer to `GcBox<U>`, which
    /// from a pointer to a sized `GcBox<T>` is either an unsizing (`U` a
    /// trait object `T` implements, or a slice of `T`'s array) or, for a
    /// sized `U`, a pointer cast, which is checked here to be to `T` itself.
    #[doc(hidden)]
    pub unsafe fn __ouro_coerce<U: ?Sized + 'static>(
        this: Self,
        f: impl FnOnce(*const GcBox<T>) -> *const GcBox<U>,
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
        unsafe { Gc::from_box(NonNull::new_unchecked(coerced)) }
    }

    /// Puts `value` in a new object with one handle.
    ///
    /// Tracked objects (types with `needs_trace()`) join generation 0; this may
    /// run an automatic collection first (see [`gc`](crate::gc)).
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// let five = ouro::Gc::new(5);
    /// assert_eq!(*five, 5);
    /// ```
    #[inline]
    pub fn new(value: T) -> Gc<T> {
        // SAFETY: the layout and vtable are `GcBox<T>`'s; the closure writes
        // the whole value and cannot panic.
        let obj = unsafe {
            raw::new_object(
                Layout::new::<GcBox<T>>(),
                vtable_of::<T>(),
                T::needs_trace(),
                |obj| (&raw mut (*obj.cast::<GcBox<T>>().as_ptr()).value).write(value),
            )
        };
        // SAFETY: `new_object` returned a live box with one strong reference.
        unsafe { Gc::from_box(obj.cast()) }
    }

    /// Builds a value that holds a weak handle to itself, as
    /// `Rc::new_cyclic`. Upgrading the weak handle inside `data_fn` returns
    /// `None`: the value does not exist yet.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::{Gc, Weak};
    /// struct Me { me: Weak<Me> }
    /// impl ouro::Trace for Me { fn trace(&self, _: &mut ouro::Visitor<'_>) {} }
    /// let a = Gc::new_cyclic(|w| Me { me: w.clone() });
    /// assert!(Gc::ptr_eq(&a.me.upgrade().unwrap(), &a));
    /// ```
    pub fn new_cyclic(data_fn: impl FnOnce(&Weak<T>) -> T) -> Gc<T> {
        // SAFETY: layout and vtable are `GcBox<T>`'s; one weak reference is
        // counted for `weak` below.
        let obj = unsafe {
            raw::new_uninit(
                Layout::new::<GcBox<T>>(),
                vtable_of::<T>(),
                T::needs_trace(),
                0,
                1,
            )
        };
        // SAFETY: the weak reference counted above.
        let weak = unsafe { Weak::from_box(obj.cast::<GcBox<T>>()) };
        let value = data_fn(&weak);
        // SAFETY: the value is written once, completely; then the object gets
        // its first strong handle and is tracked.
        unsafe {
            (&raw mut (*obj.cast::<GcBox<T>>().as_ptr()).value).write(value);
            raw::set_strong(obj, 1);
            raw::init_object(obj);
        }
        drop(weak);
        // SAFETY: one strong reference was set above.
        unsafe { Gc::from_box(obj.cast()) }
    }

    /// Returns the value if this is the only strong handle, as
    /// `Rc::try_unwrap`; otherwise gives the handle back. Weak handles stop
    /// upgrading.
    pub fn try_unwrap(this: Self) -> Result<T, Self> {
        let h = this.header();
        // SAFETY: a handle keeps its object live.
        let held = unsafe { raw::is_held_by_collector(this.obj()) };
        if h.strong() != 1 || !h.is_live() || held || h.is_pinned() {
            return Err(this);
        }
        let this = ManuallyDrop::new(this);
        // SAFETY: single strong handle, live value, not held by the
        // collector; the value is moved out once, then the memory released;
        // the handle is forgotten so it is not dropped again.
        unsafe {
            raw::begin_unwrap(this.obj());
            let value = ptr::read(&raw const (*this.ptr.as_ptr()).value);
            raw::finish_unwrap(this.obj(), Layout::new::<GcBox<T>>());
            Ok(value)
        }
    }

    /// Returns the value if this is the only strong handle, as
    /// `Rc::into_inner`; otherwise drops the handle and returns `None`.
    /// Called on each of the handles of an object, it returns the value
    /// exactly once — unless the last call comes while a collection holds
    /// the object (from a `Drop` or finalizer the collector runs) or the
    /// value is pinned: then the value is dropped as usual instead.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::Gc;
    /// let x = Gc::new(3);
    /// assert_eq!(Gc::into_inner(x), Some(3));
    ///
    /// let x = Gc::new(4);
    /// let y = Gc::clone(&x);
    /// assert_eq!(Gc::into_inner(y), None);
    /// assert_eq!(Gc::into_inner(x), Some(4));
    /// ```
    pub fn into_inner(this: Self) -> Option<T> {
        Gc::try_unwrap(this).ok()
    }

    /// Returns the value if this is the only strong handle, or else a clone
    /// of it, as `Rc::unwrap_or_clone`.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::Gc;
    /// let inner = String::from("test");
    /// let ptr = inner.as_ptr();
    /// let gc = Gc::new(inner);
    /// let inner = Gc::unwrap_or_clone(gc);
    /// assert!(std::ptr::eq(ptr, inner.as_ptr())); // moved out, not cloned
    ///
    /// let gc = Gc::new(inner);
    /// let gc2 = gc.clone();
    /// let inner = Gc::unwrap_or_clone(gc);
    /// assert!(!std::ptr::eq(ptr, inner.as_ptr())); // shared: cloned
    /// assert_eq!(*gc2, inner);
    /// ```
    pub fn unwrap_or_clone(this: Self) -> T
    where
        T: Clone,
    {
        Gc::try_unwrap(this).unwrap_or_else(|gc| (*gc).clone())
    }

    /// Mutable access to the value, cloning it into a new object first if
    /// other handles share it, as `Rc::make_mut` ("clone on write").
    ///
    /// If other strong handles exist, the value is cloned into a new object
    /// (tracked like any new one) and `this` moves to it; the others keep
    /// the old object. If only weak handles share it, the value is moved to
    /// a new object and the weak handles are disassociated: they stop
    /// upgrading, as with `Rc`. If `this` is the only handle, no new object
    /// is made. A pinned value ([`Gc::pin`]) and one a collection holds
    /// (from a `Drop` or finalizer it runs) are always cloned.
    ///
    /// While the `&mut T` lives, the collector does not trace the value.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::Gc;
    /// let mut data = Gc::new(5);
    /// *Gc::make_mut(&mut data) += 1; // won't clone anything
    /// let mut other_data = Gc::clone(&data); // won't clone inner data
    /// *Gc::make_mut(&mut data) += 1; // clones inner data
    /// *Gc::make_mut(&mut data) += 1; // won't clone anything
    /// *Gc::make_mut(&mut other_data) *= 2; // won't clone anything
    /// assert_eq!(*data, 8);
    /// assert_eq!(*other_data, 12);
    /// ```
    ///
    /// Weak handles are disassociated:
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::Gc;
    /// let mut data = Gc::new(75);
    /// let weak = Gc::downgrade(&data);
    /// assert!(75 == *data);
    /// assert!(75 == *weak.upgrade().unwrap());
    /// *Gc::make_mut(&mut data) += 1;
    /// assert!(76 == *data);
    /// assert!(weak.upgrade().is_none());
    /// ```
    pub fn make_mut(this: &mut Self) -> &mut T
    where
        T: Clone,
    {
        if Gc::get_mut(this).is_none() {
            let mut moved = false;
            // A panic of a death hook run where the value leaves the old
            // object: resumed once `this` holds the new handle (unwinding
            // before would leave `this` with the released object).
            let mut hook_panic = None;
            // `new_cyclic` allocates (and may run an automatic collection,
            // which runs user code) before it calls the closure, so the
            // uniqueness check below sees the final counts, and nothing that
            // can panic runs between moving the value out and putting the
            // new handle in `this`.
            let fresh = Gc::new_cyclic(|_| {
                let h = this.header();
                // SAFETY: `this` keeps its object live.
                let held = unsafe { raw::is_held_by_collector(this.obj()) };
                if h.strong() == 1 && h.is_live() && !held && !h.is_pinned() {
                    moved = true;
                    // SAFETY: the only strong handle (the others are weak),
                    // live value, not held by the collector: the value is
                    // moved out once and the old object released to its
                    // weak handles, which can no longer upgrade (`DEAD`).
                    unsafe {
                        raw::begin_unwrap(this.obj());
                        let value = ptr::read(&raw const (*this.ptr.as_ptr()).value);
                        let obj = this.obj();
                        hook_panic = std::panic::catch_unwind(AssertUnwindSafe(|| {
                            raw::finish_unwrap(obj, Layout::new::<GcBox<T>>());
                        }))
                        .err();
                        value
                    }
                } else {
                    (**this).clone()
                }
            });
            if moved {
                // SAFETY: the old handle's reference was given up above (its
                // object is released); overwrite it without dropping it.
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

    /// Puts `value` in a new object and pins it, as `Rc::pin`: the value
    /// never moves again. ouro enforces that for every handle to the object,
    /// including those introspection hands out ([`gc::ObjectInfo::downcast`](crate::gc::ObjectInfo::downcast)):
    /// [`Gc::get_mut`], [`Gc::try_unwrap`], [`Gc::into_inner`] and
    /// [`Gc::make_mut`] never move a pinned value or hand out `&mut` to it.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::Gc;
    /// use std::pin::Pin;
    /// let p: Pin<Gc<u8>> = Gc::pin(5);
    /// assert_eq!(*p, 5);
    /// ```
    pub fn pin(value: T) -> Pin<Gc<T>> {
        let this = Gc::new(value);
        // SAFETY: a handle keeps its object live.
        unsafe { raw::pin(this.obj()) };
        // SAFETY: the value is never moved nor handed out as `&mut` again:
        // every handle refuses once `PINNED` is set (above), and the
        // collector drops values in place.
        unsafe { Pin::new_unchecked(this) }
    }

    /// A new object whose value is not written yet, as `Rc::new_uninit`.
    /// Write it through [`Gc::get_mut`] (or `Gc::as_ptr`), then call
    /// [`Gc::assume_init`]. The collector does not track the object before
    /// `assume_init` (it cannot trace an unwritten value), so handles stored
    /// in the value meanwhile are not seen by it until then.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::Gc;
    /// let mut five = Gc::<u32>::new_uninit();
    /// // Deferred initialization:
    /// Gc::get_mut(&mut five).unwrap().write(5);
    /// let five = unsafe { five.assume_init() };
    /// assert_eq!(*five, 5)
    /// ```
    pub fn new_uninit() -> Gc<MaybeUninit<T>> {
        // SAFETY: layout and vtable are `GcBox<T>`'s, which is also the
        // layout of `GcBox<MaybeUninit<T>>`; the value is only reached as a
        // `MaybeUninit` until `assume_init`, and the object is on no list,
        // so the collector never reads it.
        let obj = unsafe {
            raw::new_unlinked(
                Layout::new::<GcBox<T>>(),
                vtable_of::<T>(),
                T::needs_trace(),
            )
        };
        // SAFETY: a live box with one strong reference.
        unsafe { Gc::from_box(obj.cast()) }
    }
}

impl<T: Trace + 'static> Gc<MaybeUninit<T>> {
    /// Converts to `Gc<T>`, as `Rc::assume_init`; the object joins the
    /// collector's generation 0 if `T` can hold handles.
    ///
    /// # Safety
    /// The value is initialised, as for `MaybeUninit::assume_init`, and the
    /// handle came from [`Gc::new_uninit`] (the only way to make a
    /// `Gc<MaybeUninit<T>>`, since `MaybeUninit` does not implement
    /// `Trace`).
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::Gc;
    /// let mut s = Gc::<String>::new_uninit();
    /// Gc::get_mut(&mut s).unwrap().write("hi".into());
    /// // SAFETY: written just above.
    /// let s = unsafe { s.assume_init() };
    /// assert_eq!(*s, "hi");
    /// ```
    pub unsafe fn assume_init(self) -> Gc<T> {
        let this = ManuallyDrop::new(self);
        // SAFETY: caller contract: from `new_unlinked` (via `new_uninit`),
        // value written.
        unsafe { raw::link_object(this.obj()) };
        // SAFETY: `MaybeUninit<T>` has `T`'s layout and the value is
        // initialised; the strong reference moves to the new handle.
        unsafe { Gc::from_box(this.ptr.cast()) }
    }
}

impl<T: ?Sized> Deref for Gc<T> {
    type Target = T;

    #[inline(always)]
    fn deref(&self) -> &T {
        let h = self.header();
        if !h.is_live() {
            h.deref_failed()
        }
        // SAFETY: the value is initialised and not dropped (checked above),
        // and it cannot be dropped while this borrow of the handle lives: the
        // handle counts as a reference the collector can see (it only drops
        // values of objects whose every strong reference it found inside the
        // garbage, see `ouro_cyclegc::visitor`).
        unsafe { &(*self.ptr.as_ptr()).value }
    }
}

impl<T: ?Sized> Clone for Gc<T> {
    #[inline(always)]
    fn clone(&self) -> Self {
        self.header().inc_strong_clone();
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
        if self.header().dec_strong() == 0 {
            self.drop_slow();
        }
    }
}

impl<T: ?Sized> Trace for Gc<T> {
    // A handle is an edge whatever `T` is (and asks nothing of `T`, so
    // recursive types do not make these answers recursive).
    #[inline(always)]
    fn structural() -> crate::Structural<Self> {
        crate::Structural::YES
    }
    #[inline(always)]
    fn has_finalizer() -> bool {
        false
    }

    #[inline(always)]
    fn trace(&self, visitor: &mut Visitor<'_>) {
        // SAFETY: `self` is a live handle at this address; it keeps the
        // target alive for the duration of the call.
        unsafe { visitor.visit_handle(ptr::from_ref(self).cast(), self.obj()) }
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

impl<T: Default + Trace + 'static> Default for Gc<T> {
    fn default() -> Self {
        Gc::new(T::default())
    }
}

impl<T: Trace + 'static> From<T> for Gc<T> {
    fn from(value: T) -> Self {
        Gc::new(value)
    }
}

/// Moves a boxed value into a new object, as `Rc::from(Box<T>)`: the way to
/// a `Gc<dyn Trait>` from a `Box<dyn Trait>` (for one from a `Gc` of the
/// concrete type, without a copy, see [`coerce_gc!`](crate::coerce_gc)).
/// The object is the one `Gc::new` makes for the concrete type, tracked if
/// that type needs tracing; `trait Shape: Trace` makes `dyn Shape: Trace`.
///
/// ```
/// # extern crate ouro_refobj as ouro;
/// # use ouro_macros::Trace;
/// use ouro::{Gc, Trace, Weak, gc};
/// use std::cell::RefCell;
///
/// trait Shape: Trace {
///     fn area(&self) -> f64;
/// }
///
/// #[derive(Trace)]
/// struct Group {
///     parts: RefCell<Vec<Gc<dyn Shape>>>,
/// }
/// impl Shape for Group {
///     fn area(&self) -> f64 {
///         self.parts.borrow().iter().map(|p| p.area()).sum()
///     }
/// }
///
/// let g: Gc<dyn Shape> = Gc::from(Box::new(Group { parts: RefCell::new(vec![]) }) as Box<dyn Shape>);
/// let w: Weak<dyn Shape> = Gc::downgrade(&g);
/// assert!(Gc::is_tracked(&g));
/// assert_eq!(g.area(), 0.0);
/// drop(g);
/// assert!(w.upgrade().is_none());
/// # let _ = gc::collect();
/// ```
impl<T: ?Sized + Trace + 'static> From<Box<T>> for Gc<T> {
    fn from(value: Box<T>) -> Self {
        // Only the metadata of this pointer is used (the box is freed).
        let meta = ptr::from_ref::<T>(&*value).cast_mut() as *mut GcBox<T>;
        // SAFETY: the strong reference is taken over below.
        let obj = unsafe { <T as crate::__private::TraceDyn>::__ouro_into_gc(value) };
        let fat = with_data(meta, obj.as_ptr().cast::<u8>());
        // SAFETY: `obj` is a live box holding the value that was in `value`
        // (moved as its own type: the box's header has that type's vtable,
        // and the value sits where `GcBox<T>` puts it with that type's
        // alignment, which `T`'s metadata gives), with one strong reference.
        unsafe { Gc::from_box(NonNull::new_unchecked(fat)) }
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

impl<T: ?Sized> Unpin for Gc<T> {}

// As `Rc`: a handle only gives shared access to the value, so unwinding
// through code that holds one leaves nothing half-changed that it exposes,
// beyond what `T`'s own shared references do.
impl<T: ?Sized + RefUnwindSafe> UnwindSafe for Gc<T> {}
impl<T: ?Sized + RefUnwindSafe> RefUnwindSafe for Gc<T> {}

/// The offset of a value of alignment `align` in its box (`repr(C)`: the
/// header, then the value at its alignment).
#[inline(always)]
pub(crate) const fn value_offset(align: usize) -> usize {
    let header = mem::size_of::<ObjHeader>();
    (header + align - 1) & !(align - 1)
}

/// Vtable of an untracked unsized value: the collector never calls the
/// function pointers (untracked objects are never traced, finalized or
/// dropped by it), they only give the type's name and id.
struct UnsizedVTable<T: ?Sized>(PhantomData<T>);

/// # Safety
/// Never called: untracked objects are not on any generation list.
unsafe fn unreachable_trace(_: NonNull<ObjHeader>, _: &mut Visitor<'_>) {}
/// # Safety
/// Never called, as above.
unsafe fn unreachable_op(_: NonNull<ObjHeader>) {}

impl<T: ?Sized + 'static> UnsizedVTable<T> {
    const VTABLE: VTable = VTable {
        trace: unreachable_trace,
        finalize: unreachable_op,
        drop_value: unreachable_op,
        // Only meaningful for sized, tracked values; unsized boxes are
        // measured with `Layout::for_value`.
        layout: Layout::new::<ObjHeader>(),
        value_offset: mem::size_of::<ObjHeader>(),
        type_name: core::any::type_name::<T>,
        type_id: TypeId::of::<T>,
        has_finalizer: false,
        sized: false,
        // Never traced (untracked); `false` is the safe answer anyway.
        structural: false,
    };
}

/// The vtables of a tracked `Gc<[T]>`, one per answer of `T`'s
/// `structural` (`S`; a slice has no finalizer of its own): `layout` is one
/// element's, and the element count is kept in the allocation
/// (`ObjHeader::boxed_layout`).
pub(crate) struct SliceVTable<T, const S: bool>(PhantomData<T>);

impl<T: Trace + 'static, const S: bool> SliceVTable<T, S> {
    pub(crate) const VTABLE: VTable = VTable {
        trace: trace_slice::<T>,
        finalize: finalize_slice::<T>,
        drop_value: drop_slice::<T>,
        layout: Layout::new::<T>(),
        value_offset: value_offset(mem::align_of::<T>()),
        type_name: core::any::type_name::<[T]>,
        type_id: TypeId::of::<[T]>,
        has_finalizer: false,
        sized: false,
        structural: S,
    };
}

/// The vtable of a tracked `GcBox<[T]>` (a constant once inlined).
#[inline(always)]
pub(crate) fn slice_vtable_of<T: Trace + 'static>() -> &'static VTable {
    if T::structural().is_made() {
        &SliceVTable::<T, true>::VTABLE
    } else {
        &SliceVTable::<T, false>::VTABLE
    }
}

/// The value of a tracked slice object.
///
/// # Safety
/// `obj` is the header of an allocated tracked `GcBox<[T]>` (made by
/// `Gc::from_vec`, which recorded its length).
unsafe fn slice_value<T>(obj: NonNull<ObjHeader>) -> *mut [T] {
    // SAFETY: caller contract: a tracked slice, allocated.
    let len = unsafe {
        obj.cast::<u8>()
            .sub(ouro_cyclegc::SLICE_LEN_OFFSET)
            .cast::<usize>()
            .read()
    };
    // SAFETY: the elements start `value_offset` bytes after the header, in
    // the same allocation.
    let data = unsafe { obj.cast::<u8>().add(value_offset(mem::align_of::<T>())) };
    ptr::slice_from_raw_parts_mut(data.cast::<T>().as_ptr(), len)
}

/// The box of a tracked slice object, with its length.
///
/// # Safety
/// `obj` is the header of an allocated tracked `GcBox<[T]>` whose length
/// was recorded (`ObjHeader::write_slice_len`).
pub(crate) unsafe fn tracked_slice_box<T>(obj: NonNull<ObjHeader>) -> NonNull<GcBox<[T]>> {
    // SAFETY: caller contract.
    let len = unsafe { slice_value::<T>(obj) }.len();
    let fat = ptr::slice_from_raw_parts_mut(obj.as_ptr().cast::<T>(), len) as *mut GcBox<[T]>;
    // SAFETY: from a non-null header pointer.
    unsafe { NonNull::new_unchecked(fat) }
}

/// # Safety
/// `obj` is a live tracked `GcBox<[T]>` with initialised elements.
unsafe fn trace_slice<T: Trace>(obj: NonNull<ObjHeader>, v: &mut Visitor<'_>) {
    // SAFETY: caller contract.
    unsafe { (*slice_value::<T>(obj)).trace(v) }
}

/// # Safety
/// As `trace_slice`.
unsafe fn finalize_slice<T: Trace>(obj: NonNull<ObjHeader>) {
    // SAFETY: caller contract.
    unsafe { (*slice_value::<T>(obj)).finalize() }
}

/// # Safety
/// As `trace_slice`; the elements are dropped once and never used again.
unsafe fn drop_slice<T>(obj: NonNull<ObjHeader>) {
    // SAFETY: caller contract.
    unsafe { ptr::drop_in_place(slice_value::<T>(obj)) }
}

impl<T: Trace + 'static> Gc<[T]> {
    /// Moves the elements of `v` into a new `Gc<[T]>`: tracked by the
    /// collector when `T` can hold handles (`Trace::needs_trace`), so
    /// cycles through the slice are collected; untracked otherwise.
    fn from_vec(v: Vec<T>) -> Gc<[T]> {
        let len = v.len();
        let tracked = T::needs_trace();
        let (boxed, offset, vtable) = if tracked {
            let boxed = ouro_cyclegc::slice_box_layout(Layout::new::<T>(), len)
                .expect("ouro: slice too large");
            (
                boxed,
                value_offset(mem::align_of::<T>()),
                slice_vtable_of::<T>(),
            )
        } else {
            let (boxed, offset) = Layout::new::<ObjHeader>()
                .extend(Layout::array::<T>(len).expect("ouro: slice too large"))
                .expect("ouro: slice too large");
            (boxed.pad_to_align(), offset, &UnsizedVTable::<[T]>::VTABLE)
        };
        debug_assert_eq!(offset, mem::offset_of!(GcBox<[T; 0]>, value));
        let mut v = mem::ManuallyDrop::new(v);
        // SAFETY: `boxed` is the header + value layout of `GcBox<[T]>` with
        // `len` elements (header, then the array at `offset`, as `repr(C)`
        // places it; for a tracked slice, `slice_box_layout`'s, which the
        // heap gives a prefix with room for the length); the closure records
        // the length (tracked) and moves all `len` elements in, and cannot
        // panic. An untracked object's vtable functions are never called; a
        // tracked one's read the length written here.
        let obj = unsafe {
            raw::new_object(boxed, vtable, tracked, |obj| {
                if tracked {
                    ObjHeader::write_slice_len(obj, len);
                }
                let dst = obj.cast::<u8>().add(offset).cast::<T>();
                ptr::copy_nonoverlapping(v.as_ptr(), dst.as_ptr(), len);
                v.set_len(0);
            })
        };
        // The elements now belong to the object; free the old buffer only.
        // SAFETY: `v` has length 0 and owns its buffer.
        unsafe { mem::ManuallyDrop::drop(&mut v) };
        let fat = ptr::slice_from_raw_parts_mut(obj.as_ptr().cast::<T>(), len) as *mut GcBox<[T]>;
        // SAFETY: `obj` is a live box with one strong reference holding
        // `len` initialised elements; the fat pointer carries that length.
        unsafe { Gc::from_box(NonNull::new_unchecked(fat)) }
    }
}

impl<T: Trace + 'static> From<Vec<T>> for Gc<[T]> {
    /// Moves the elements into a new object, as `Rc::from(Vec<T>)`. The
    /// slice is tracked when `T` can hold handles, so cycles through it are
    /// collected.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// let s: ouro::Gc<[u32]> = vec![1, 2, 3].into();
    /// assert_eq!(&*s, &[1, 2, 3]);
    /// ```
    fn from(v: Vec<T>) -> Self {
        Gc::from_vec(v)
    }
}

impl<T: Trace + Clone + 'static> From<&[T]> for Gc<[T]> {
    /// Clones the elements into a new object, as `Rc::from(&[T])`.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// let original: &[i32] = &[1, 2, 3];
    /// let shared: ouro::Gc<[i32]> = ouro::Gc::from(original);
    /// assert_eq!(&[1, 2, 3], &shared[..]);
    /// ```
    fn from(s: &[T]) -> Self {
        Gc::from_vec(s.to_vec())
    }
}

impl<T: Trace + 'static, const N: usize> From<[T; N]> for Gc<[T]> {
    /// Moves the array's elements into a new slice object, as
    /// `Rc::from([T; N])`.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// let original: [i32; 3] = [1, 2, 3];
    /// let shared: ouro::Gc<[i32]> = ouro::Gc::from(original);
    /// assert_eq!(&[1, 2, 3], &shared[..]);
    /// ```
    fn from(a: [T; N]) -> Self {
        Gc::from_vec(Vec::from(a))
    }
}

impl<T: Trace + Clone + 'static> From<Cow<'_, [T]>> for Gc<[T]> {
    /// Moves an owned slice in or clones a borrowed one, as
    /// `Rc::from(Cow<[T]>)`.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use std::borrow::Cow;
    /// let cow: Cow<'_, [i32]> = Cow::Borrowed(&[1, 2]);
    /// let shared: ouro::Gc<[i32]> = ouro::Gc::from(cow);
    /// assert_eq!(&[1, 2], &shared[..]);
    /// ```
    fn from(cow: Cow<'_, [T]>) -> Self {
        match cow {
            Cow::Borrowed(s) => Gc::from(s),
            Cow::Owned(v) => Gc::from(v),
        }
    }
}

impl<T: Trace + 'static> FromIterator<T> for Gc<[T]> {
    /// Collects the elements into a new slice object, as
    /// `Rc<[T]>: FromIterator<T>` (through a `Vec`).
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::Gc;
    /// let evens: Gc<[u8]> = (0..10).filter(|&x| x % 2 == 0).collect();
    /// assert_eq!(&[0, 2, 4, 6, 8], &evens[..]);
    /// ```
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        Gc::from_vec(iter.into_iter().collect())
    }
}

impl<T: Trace + 'static> Default for Gc<[T]> {
    /// An empty slice, as `Rc::<[T]>::default()`.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// let s: ouro::Gc<[u8]> = Default::default();
    /// assert!(s.is_empty());
    /// ```
    fn default() -> Self {
        Gc::from_vec(Vec::new())
    }
}

impl Default for Gc<str> {
    /// An empty string, as `Rc::<str>::default()`.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// let s: ouro::Gc<str> = Default::default();
    /// assert_eq!(&*s, "");
    /// ```
    fn default() -> Self {
        Gc::from("")
    }
}

impl From<Cow<'_, str>> for Gc<str> {
    /// Copies the string into a new object, as `Rc::from(Cow<str>)`.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use std::borrow::Cow;
    /// let cow: Cow<'_, str> = Cow::Borrowed("eggplant");
    /// let shared: ouro::Gc<str> = ouro::Gc::from(cow);
    /// assert_eq!("eggplant", &shared[..]);
    /// ```
    fn from(cow: Cow<'_, str>) -> Self {
        Gc::from(&*cow)
    }
}

impl From<&str> for Gc<str> {
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// let s: ouro::Gc<str> = "hello".into();
    /// assert_eq!(&*s, "hello");
    /// ```
    fn from(s: &str) -> Self {
        let bytes: Gc<[u8]> = Gc::from_vec(s.as_bytes().to_vec());
        let bytes = ManuallyDrop::new(bytes);
        let fat = bytes.ptr.as_ptr() as *mut GcBox<str>;
        // SAFETY: the bytes are valid UTF-8 (they came from a `str`), and
        // `GcBox<str>` has the layout of `GcBox<[u8]>`; the one strong
        // reference moves from `bytes` (forgotten) to the new handle.
        unsafe { Gc::from_box(NonNull::new_unchecked(fat)) }
    }
}

impl From<String> for Gc<str> {
    /// Copies the string into a new object, as `Rc::from(String)`.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// let s: ouro::Gc<str> = String::from("hi").into();
    /// assert_eq!(&*s, "hi");
    /// ```
    fn from(s: String) -> Self {
        Gc::from(s.as_str())
    }
}
