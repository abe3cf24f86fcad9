//! `Gc<T>`: the single-threaded reference-counted handle.

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
    pub fn get_mut(this: &mut Self) -> Option<&mut T> {
        let h = this.header();
        // SAFETY: a handle keeps its object live.
        let held = unsafe { raw::is_held_by_collector(this.obj()) };
        if h.strong() != 1 || h.weak() != 0 || !h.is_live() || held {
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

    /// The layout of the box, read without making a reference to the value:
    /// the value may be in the middle of being dropped (the collector drops a
    /// value that holds a handle or weak handle to its own object), and a
    /// shared reference to it would alias the `&mut` of `drop_in_place`.
    ///
    /// # Safety
    /// `ptr` is an allocated box (its memory not freed).
    pub(crate) unsafe fn box_layout(ptr: NonNull<GcBox<T>>) -> Layout {
        // SAFETY: caller contract; the header is disjoint from the value.
        let vt = unsafe { &*ptr.as_ptr().cast::<ObjHeader>() }.vtable();
        if vt.sized {
            // Sized values (every tracked or not-yet-written one): the vtable
            // has the layout, and no reference to the value is made.
            vt.layout
        } else {
            // Unsized values (`Gc<str>`, `Gc<[T]>`) are untracked and always
            // written at creation; the collector never drops them, and a
            // handle or weak handle to one cannot sit inside its own value
            // while it is being dropped (its count is zero then, and weak
            // handles are held off by `release`), so no `&mut` to it exists.
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
        if h.strong() != 1 || !h.is_live() || held {
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

    #[inline]
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

impl<T: 'static> Gc<[T]> {
    /// Moves the elements of `v` into a new, untracked `Gc<[T]>`.
    ///
    /// Slices are never tracked by the collector (it needs the length of a
    /// tracked value at collection time, and a slice's length lives in the
    /// handle): handles inside a `Gc<[T]>` act as roots, so cycles through
    /// one are not collected. Use `Gc<Vec<T>>` for a collected sequence.
    fn from_vec(v: Vec<T>) -> Gc<[T]> {
        let len = v.len();
        let (boxed, offset) = Layout::new::<ObjHeader>()
            .extend(Layout::array::<T>(len).expect("ouro: slice too large"))
            .expect("ouro: slice too large");
        let boxed = boxed.pad_to_align();
        debug_assert_eq!(offset, mem::offset_of!(GcBox<[T; 0]>, value));
        let mut v = mem::ManuallyDrop::new(v);
        // SAFETY: `boxed` is the layout of `GcBox<[T]>` with `len` elements
        // (header, then the array at `offset`, as `repr(C)` places it); the
        // closure moves all `len` elements in and cannot panic; the object
        // is untracked, so the vtable's function pointers are never called.
        let obj = unsafe {
            raw::new_object(boxed, &UnsizedVTable::<[T]>::VTABLE, false, |obj| {
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

impl<T: 'static> From<Vec<T>> for Gc<[T]> {
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// let s: ouro::Gc<[u32]> = vec![1, 2, 3].into();
    /// assert_eq!(&*s, &[1, 2, 3]);
    /// ```
    fn from(v: Vec<T>) -> Self {
        Gc::from_vec(v)
    }
}

impl<T: Clone + 'static> From<&[T]> for Gc<[T]> {
    fn from(s: &[T]) -> Self {
        Gc::from_vec(s.to_vec())
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
    fn from(s: String) -> Self {
        Gc::from(s.as_str())
    }
}
