//! The thread-local heap: object memory, the generations, the settings, and
//! what happens when a reference count reaches zero.

use crate::callbacks::Slot;
use core::alloc::Layout;
use core::any::TypeId;
use core::cell::{Cell, RefCell};
use core::mem::{self, MaybeUninit};
use core::ptr::{self, NonNull};

use ouro_pool::Pool;

use crate::debug::{Callbacks, DebugFlags};
use crate::header::{self, DEAD, GcLinks, HAS_LINKS, HOOKED, ObjHeader, TRACKED, VTable};
use crate::hooks::Hooks;
use crate::list;
use crate::settings::{Local, Shell};

/// Number of generations.
pub const GENERATIONS: usize = 3;
/// CPython's default thresholds.
pub const DEFAULT_THRESHOLDS: [usize; GENERATIONS] = [700, 10, 10];
/// Nested drops deeper than this are deferred to the trash list (CPython's
/// trashcan uses 50 levels as well).
const TRASH_DEPTH: usize = 50;

/// The per-thread heap behind `Gc<T>`.
pub(crate) struct Heap {
    pub(crate) pool: Pool,
    /// The generation lists.
    pub(crate) heads: [GcLinks; GENERATIONS],
    /// The settings, the counts and statistics of the generations, and the
    /// schedule's state shared with the process-wide heap (see
    /// `settings`).
    pub(crate) shell: Shell<Local>,
    /// Frozen objects (`gc::freeze`): never scanned.
    pub(crate) permanent: GcLinks,
    /// The collector's working lists (a collection never re-enters).
    pub(crate) young: GcLinks,
    pub(crate) unreachable: GcLinks,
    /// The report's working list: survivors that only a non-structural
    /// `trace` keeps alive (see `collect::report_uncollectable`).
    pub(crate) uncollectable: GcLinks,
    pub(crate) collecting: Cell<bool>,
    /// The rest of the schedule's state (see `schedule`): tracked objects
    /// that survived the last full collection,
    pub(crate) live_after_full: Cell<usize>,
    /// and tracked allocations minus deallocations since then, up to the
    /// last collection (gen 0's count holds the rest).
    pub(crate) growth: Cell<isize>,
    /// Scratch memory for collections, reset (not freed) after each one.
    pub(crate) scratch: RefCell<bumpalo::Bump>,
    /// Depth of nested value drops, for the trashcan.
    pub(crate) drop_depth: Cell<usize>,
    /// Tracked objects whose drop was deferred, linked through
    /// `GcLinks::next`.
    pub(crate) trash: Cell<*mut GcLinks>,
    /// Untracked objects whose drop was deferred (see [`Deferred`]).
    deferred: RefCell<Vec<Deferred>>,
    /// Set when `trash` or `deferred` gets an object; cleared when both are
    /// empty again.
    trash_pending: Cell<bool>,
    pub(crate) callbacks: Callbacks,
    /// Unreachable objects kept by `DebugFlags::SAVEALL`, each holding one
    /// strong reference.
    pub(crate) garbage: RefCell<Vec<NonNull<ObjHeader>>>,
    /// Death hooks (`weakref`), by object address (see `hooks`).
    pub(crate) hooks: Hooks,
    /// Types already named in a warning about a cycle their non-structural
    /// `trace` keeps alive (once per type and thread).
    pub(crate) warned: RefCell<Vec<TypeId>>,
    /// The same, for the types of values behind a vtable (a trait object's
    /// concrete type, which may have no `TypeId`): by name.
    pub(crate) warned_names: RefCell<Vec<&'static str>>,
    /// Types named in a warning about an edge their `trace` reported from
    /// memory the object does not own (once per type and thread).
    pub(crate) rejected: RefCell<Vec<TypeId>>,
    /// Such types met by the running collection, warned about when it ends.
    pub(crate) rejected_pending: RefCell<Vec<fn() -> &'static str>>,
    /// Objects allocated and not yet freed, plus one that the thread holds
    /// until its exit hook ([`HeapGuard`]) has run. The heap is freed when
    /// this reaches zero ([`reap`]): while any object of it is alive, it
    /// stays, whatever the order of the thread-locals' destructors.
    pub(crate) refs: Cell<usize>,
    /// The thread's exit hook has run (or could not be registered: the heap
    /// was made during thread teardown), so the thread holds no reference.
    exited: Cell<bool>,
}

/// An untracked object whose drop the trashcan deferred.
///
/// Tracked objects wait on the trash list through their own links; an
/// untracked object has none, and its 16-byte header has no spare word
/// while weak handles may read it. Nor is the header enough to drop it
/// later: for a `Gc<[T]>` the length lives only in the handle, so the
/// handle's drop closure must be kept too. So these wait on a side stack.
/// It is rare (one object in [`TRASH_DEPTH`] levels of a chain, and the
/// stack stays as short as the frontier of deferred objects), and costs
/// the ordinary drop nothing but the depth check it already had.
struct Deferred {
    obj: NonNull<ObjHeader>,
    boxed: Layout,
    /// The drop closure given to `release`, moved here bytewise (pointer
    /// provenance included): it fits in two words (checked when deferring).
    closure: MaybeUninit<[usize; 2]>,
    /// Moves the closure out of `closure` and calls it.
    call: unsafe fn(*mut MaybeUninit<[usize; 2]>),
}

/// # Safety
/// `closure` holds an `F` written by `Heap::defer_untracked`, not yet
/// called; it is moved out here and must not be used again.
unsafe fn call_deferred<F: FnOnce()>(closure: *mut MaybeUninit<[usize; 2]>) {
    // SAFETY: caller contract; `defer_untracked` checked size and alignment.
    let f = unsafe { closure.cast::<F>().read() };
    f()
}

impl Heap {
    /// A heap; `thread_ref`: the thread holds a reference to it, released
    /// by its exit hook.
    fn new(thread_ref: bool) -> Box<Heap> {
        let links = || GcLinks {
            next: Cell::new(ptr::null_mut()),
            prev: Cell::new(ptr::null_mut()),
        };
        Box::new(Heap {
            pool: Pool::new(),
            heads: [links(), links(), links()],
            shell: Shell::new(),
            permanent: links(),
            young: links(),
            unreachable: links(),
            uncollectable: links(),
            collecting: Cell::new(false),
            live_after_full: Cell::new(0),
            growth: Cell::new(0),
            scratch: RefCell::new(bumpalo::Bump::new()),
            drop_depth: Cell::new(0),
            trash: Cell::new(ptr::null_mut()),
            deferred: RefCell::new(Vec::new()),
            trash_pending: Cell::new(false),
            callbacks: Callbacks::default(),
            garbage: RefCell::new(Vec::new()),
            hooks: Hooks::default(),
            warned: RefCell::new(Vec::new()),
            warned_names: RefCell::new(Vec::new()),
            rejected: RefCell::new(Vec::new()),
            rejected_pending: RefCell::new(Vec::new()),
            refs: Cell::new(usize::from(thread_ref)),
            exited: Cell::new(!thread_ref),
        })
    }

    /// Makes every list head an empty list. The heads point at themselves,
    /// so this runs once the heap is at its final address (see `init_heap`:
    /// after `Box::into_raw`, so the pointers keep a valid provenance).
    fn init_lists(&self) {
        for head in &self.heads {
            list::init(head);
        }
        list::init(&self.permanent);
        list::init(&self.young);
        list::init(&self.unreachable);
        list::init(&self.uncollectable);
    }

    /// Objects allocated and not yet freed, counted by walking the pool
    /// (every block of the heap's pool is an object): a check of `refs`, and
    /// `raw::live_objects` for tests.
    pub(crate) fn live_objects(&self) -> usize {
        let s = self.pool.stats();
        s.blocks_in_use() + s.system_blocks
    }

    /// Objects allocated and not yet freed.
    fn objects(&self) -> usize {
        self.refs.get() - usize::from(!self.exited.get())
    }

    /// Something up the stack may be using the heap: a value is being
    /// dropped or a collection runs. (Outside of these, no `&Heap` is held
    /// across user code: the functions that run user code drop it first.)
    fn in_use(&self) -> bool {
        self.drop_depth.get() != 0 || self.collecting.get()
    }

    /// The list head of generation `g`.
    #[inline(always)]
    pub(crate) fn gen_head(&self, g: usize) -> list::Link {
        list::node(&self.heads[g])
    }

    /// Allocation layout of an object whose header + value is `boxed`.
    #[inline(always)]
    pub(crate) fn alloc_layout(boxed: Layout, tracked: bool) -> (Layout, usize) {
        if tracked {
            let prefix = header::prefix_size(boxed.align());
            let size = prefix + boxed.size();
            // SAFETY-free arithmetic: `boxed` is a valid layout and the prefix
            // is a multiple of its alignment, so the sum cannot overflow
            // `isize` in practice; a failure here is a bug, not user input.
            let layout = Layout::from_size_align(size, boxed.align().max(8))
                .expect("ouro: object too large");
            (layout, prefix)
        } else {
            (boxed, 0)
        }
    }

    /// Frees the memory of an object whose value is gone.
    ///
    /// # Safety
    /// `obj` was allocated by this heap with header+value layout `boxed`, is
    /// on no list, its value is dropped or was never written, and no handle
    /// or weak handle to it remains.
    #[inline]
    pub(crate) unsafe fn free(&self, obj: NonNull<ObjHeader>, boxed: Layout) {
        // SAFETY: caller guarantees `obj` is still allocated.
        let tracked = unsafe { obj.as_ref() }.has(HAS_LINKS);
        let (layout, prefix) = Self::alloc_layout(boxed, tracked);
        self.refs.set(self.refs.get() - 1);
        // SAFETY: the allocation starts `prefix` bytes before the header
        // (`alloc_object`), in the same allocation.
        let start = unsafe { obj.cast::<u8>().byte_sub(prefix) };
        // SAFETY: `start` came from `self.pool.alloc(layout)` with this layout
        // and is freed once (caller contract).
        unsafe { self.pool.dealloc(start, layout) };
    }

    /// Allocates an object with header + value layout `boxed`: the header is
    /// written with `strong` references and the flags `initial` (plus
    /// `HAS_LINKS` for a tracked object); the object is on no list.
    #[inline]
    pub(crate) fn alloc_object(
        &self,
        boxed: Layout,
        vtable: &'static VTable,
        tracked: bool,
        strong: u32,
        initial: usize,
    ) -> NonNull<ObjHeader> {
        let (layout, prefix) = Self::alloc_layout(boxed, tracked);
        let Some(start) = self.pool.alloc(layout) else {
            std::alloc::handle_alloc_error(layout)
        };
        self.refs.set(self.refs.get() + 1);
        // SAFETY: `prefix < layout.size()` and the header is aligned because
        // `prefix` is a multiple of `boxed.align()`.
        let obj = unsafe { start.byte_add(prefix) }.cast::<ObjHeader>();
        let flags = initial | if tracked { HAS_LINKS } else { 0 };
        // SAFETY: `obj` is in bounds, aligned, and not yet shared.
        unsafe { obj.write(ObjHeader::new(vtable, flags, strong)) };
        obj
    }

    /// Links a freshly initialised tracked object into generation 0 (it was
    /// counted by `count_and_collect` when it was allocated).
    ///
    /// # Safety
    /// `obj` is a live object with `HAS_LINKS`, on no list, value written.
    #[inline]
    pub(crate) unsafe fn track(&self, obj: NonNull<ObjHeader>) {
        // SAFETY: caller contract.
        unsafe {
            obj.as_ref().set(TRACKED);
            self.link_new(obj);
        }
    }

    /// `track` for an object whose flags already say `TRACKED`.
    ///
    /// # Safety
    /// As `track`.
    #[inline]
    pub(crate) unsafe fn link_new(&self, obj: NonNull<ObjHeader>) {
        // SAFETY: caller contract.
        unsafe { list::push_back(self.gen_head(0), ObjHeader::links(obj)) };
    }

    /// Counts a new tracked allocation and runs an automatic collection if
    /// the count passes the effective young threshold (`young_trigger`). As
    /// in CPython, this happens before the new object is tracked; here it
    /// also happens before it is allocated, so a panic from user code in
    /// the collection leaves no half-made object behind (the value being
    /// moved in is simply dropped).
    #[inline]
    pub(crate) fn count_and_collect(&self) {
        let g0 = &self.shell.gens[0];
        let c = g0.count.get().wrapping_add(1);
        g0.count.set(c);
        if c as isize > self.shell.young_trigger.get() as isize {
            self.maybe_collect();
        }
    }

    #[cold]
    #[inline(never)]
    fn maybe_collect(&self) {
        if self.shell.is_enabled() && !self.collecting.get() {
            crate::collect::collect_generations(self);
        }
    }

    /// Generation 0's count as `get_count` shows it (never negative).
    pub(crate) fn young_count(&self) -> usize {
        (self.shell.gens[0].count.get() as isize).max(0) as usize
    }

    /// Moves generation 0's count into `growth` and resets it (when a
    /// collection starts, and when `freeze` empties the generation).
    pub(crate) fn fold_young_count(&self) {
        let c = self.shell.gens[0].count.replace(0) as isize;
        self.growth.set(self.growth.get().wrapping_add(c));
    }

    /// Tracked objects alive now, as the schedule counts them.
    pub(crate) fn live_tracked(&self) -> usize {
        let net = self
            .growth
            .get()
            .wrapping_add(self.shell.gens[0].count.get() as isize);
        self.live_after_full.get().saturating_add_signed(net)
    }

    /// Handles a strong count that just reached zero: drops the value now
    /// (through `drop_value`), leaves it to the collector, or defers it to
    /// the trash (beyond [`TRASH_DEPTH`] nested drops, tracked or not).
    ///
    /// # Safety
    /// `obj` is a live object of this heap with a zero strong count and
    /// header+value layout `boxed`; `drop_value` drops its value in place,
    /// and uses nothing that may go away before the object is freed (it can
    /// be called after this function returns).
    #[inline(always)]
    pub(crate) unsafe fn release<F: FnOnce()>(
        &self,
        obj: NonNull<ObjHeader>,
        boxed: Layout,
        drop_value: F,
    ) {
        // SAFETY: caller contract: `obj` is still allocated.
        let h = unsafe { obj.as_ref() };
        let f = h.flags();
        if f & (header::SCANNING | header::UNREACHABLE) != 0 {
            // The running collection owns it and checks the count when it lets go.
            debug_assert!(
                self.collecting.get(),
                "ouro: an object outlived the collection that held it"
            );
            return;
        }
        if f & DEAD != 0 {
            // The value is gone (collected, or never written).
            if h.weak() == 0 {
                // SAFETY: no handles, no weak handles, value gone, on no list
                // (dead objects are unlinked when they die).
                unsafe { self.free(obj, boxed) };
            }
            return;
        }
        let depth = self.drop_depth.get();
        if f & TRACKED != 0 {
            // SAFETY: tracked objects are on a well-formed generation list
            // (not in a collection: checked above).
            unsafe { list::unlink(ObjHeader::links(obj)) };
            let c = &self.shell.gens[0].count;
            c.set(c.get().wrapping_sub(1));
            if depth >= TRASH_DEPTH {
                h.clear(TRACKED);
                self.push_trash(obj);
                return;
            }
        } else if depth >= TRASH_DEPTH {
            // SAFETY: caller contract (`drop_value` outlives this call).
            unsafe { self.defer_untracked(obj, boxed, drop_value) };
            return;
        }
        // One update of the flag word (two would stall on store forwarding).
        h.replace_flags(TRACKED, DEAD);
        // SAFETY: the value is dead, the object unlinked and without handles.
        unsafe { self.drop_then_free(obj, boxed, drop_value) };
        if depth == 0 && self.trash_pending.get() {
            self.drain_trash();
        }
    }

    /// Drops the value of an object no handle refers to any more, then frees
    /// its memory unless weak handles remain (the last one frees it). The
    /// memory is freed even if the value's `Drop` panics (unlike `Rc`, which
    /// leaks it then).
    ///
    /// # Safety
    /// `obj` is marked `DEAD`, on no list, its strong count is zero, its
    /// value is still there and is dropped once by `drop_value`; `boxed` is
    /// its layout.
    #[inline]
    unsafe fn drop_then_free(
        &self,
        obj: NonNull<ObjHeader>,
        boxed: Layout,
        drop_value: impl FnOnce(),
    ) {
        struct FreeAfter<'a> {
            heap: &'a Heap,
            obj: NonNull<ObjHeader>,
            boxed: Layout,
            held_weak: bool,
        }
        impl Drop for FreeAfter<'_> {
            fn drop(&mut self) {
                // SAFETY: the object stays allocated until freed here.
                let h = unsafe { self.obj.as_ref() };
                let last = if self.held_weak {
                    h.dec_weak() == 0
                } else {
                    h.weak() == 0
                };
                if last {
                    // SAFETY: the value is dropped (or its drop unwound,
                    // which drops the remaining fields), no handle or weak
                    // handle is left, and the object is on no list.
                    unsafe { self.heap.free(self.obj, self.boxed) };
                }
            }
        }
        // SAFETY: caller contract.
        let h = unsafe { obj.as_ref() };
        // With weak handles around, hold one while the value drops, so that a
        // `Weak` to this object inside the value does not free the memory
        // under us. Without any, none can be inside the value either (no
        // strong handle is left to make one from).
        let held_weak = h.weak() != 0;
        if held_weak {
            h.inc_weak();
        }
        let _free = FreeAfter {
            heap: self,
            obj,
            boxed,
            held_weak,
        };
        if h.has(HOOKED) {
            // SAFETY: allocated (freed by `_free` at the earliest), HOOKED.
            unsafe { self.drop_hooked(obj, drop_value) };
        } else {
            self.drop_nested(drop_value);
        }
    }

    /// Runs the death hooks of `obj`, then drops its value (even if a hook
    /// panics; the first panic is resumed after the drop).
    ///
    /// # Safety
    /// As `drop_then_free`, for an object with `HOOKED` set; the caller
    /// frees the memory afterwards, if at all.
    #[cold]
    #[inline(never)]
    unsafe fn drop_hooked(&self, obj: NonNull<ObjHeader>, drop_value: impl FnOnce()) {
        // SAFETY: caller contract.
        let hooks = unsafe { self.hooks.take(obj) };
        self.drop_nested(|| {
            let p = crate::hooks::run_all(hooks);
            drop_value();
            if let Some(p) = p {
                std::panic::resume_unwind(p);
            }
        });
    }

    /// Runs `f` (a value drop) one level deeper; the depth is restored even
    /// if `f` panics.
    #[inline]
    pub(crate) fn drop_nested<R>(&self, f: impl FnOnce() -> R) -> R {
        struct Depth<'a>(&'a Cell<usize>);
        impl Drop for Depth<'_> {
            fn drop(&mut self) {
                self.0.set(self.0.get() - 1);
            }
        }
        self.drop_depth.set(self.drop_depth.get() + 1);
        let _guard = Depth(&self.drop_depth);
        f()
    }

    fn push_trash(&self, obj: NonNull<ObjHeader>) {
        // SAFETY: `obj` has links (it was tracked) and is on no list now, so
        // its `next` field is free to use as the trash stack's link.
        let links = unsafe { ObjHeader::links(obj) };
        // SAFETY: as above.
        unsafe { links.as_ref() }.next.set(self.trash.get());
        self.trash.set(links.as_ptr());
        self.trash_pending.set(true);
    }

    /// Defers the drop of an untracked object (see [`Deferred`]). Until it
    /// is drained the object is neither `DEAD` nor tracked: weak handles
    /// cannot upgrade (the strong count is zero) nor free it
    /// (`release_weak` waits for `DEAD`).
    ///
    /// # Safety
    /// As `release`, for an untracked object with a live value.
    #[cold]
    #[inline(never)]
    unsafe fn defer_untracked<F: FnOnce()>(
        &self,
        obj: NonNull<ObjHeader>,
        boxed: Layout,
        drop_value: F,
    ) {
        const {
            assert!(
                mem::size_of::<F>() <= mem::size_of::<[usize; 2]>()
                    && mem::align_of::<F>() <= mem::align_of::<[usize; 2]>(),
                "ouro: a drop closure must fit in two words"
            )
        };
        let mut closure = MaybeUninit::<[usize; 2]>::uninit();
        // SAFETY: `F` fits in the buffer and its alignment (checked above);
        // it is moved in once and moved out once by `call_deferred::<F>`.
        unsafe { closure.as_mut_ptr().cast::<F>().write(drop_value) };
        self.deferred.borrow_mut().push(Deferred {
            obj,
            boxed,
            closure,
            call: call_deferred::<F>,
        });
        self.trash_pending.set(true);
    }

    /// Drops the values deferred by deep nesting, iteratively. If a `Drop`
    /// panics, the rest stays for the next outermost release.
    #[cold]
    pub(crate) fn drain_trash(&self) {
        loop {
            if let Some(links) = NonNull::new(self.trash.get()) {
                // SAFETY: trash nodes are unlinked tracked objects with a zero
                // count whose value is still there (`push_trash`).
                unsafe {
                    self.trash.set(links.as_ref().next.get());
                    let obj = GcLinks::header(links);
                    let h = obj.as_ref();
                    let vt = h.vtable();
                    h.set(DEAD);
                    self.drop_then_free(obj, ObjHeader::boxed_layout(obj), || (vt.drop_value)(obj));
                }
                continue;
            }
            let next = self.deferred.borrow_mut().pop();
            let Some(Deferred {
                obj,
                boxed,
                mut closure,
                call,
            }) = next
            else {
                break;
            };
            // SAFETY: a deferred object is untracked, with a zero count and
            // its value still there (`defer_untracked`); `call` moves its
            // drop closure out of `closure` once, which drops the value.
            unsafe {
                obj.as_ref().set(DEAD);
                self.drop_then_free(obj, boxed, || call(&mut closure));
            }
        }
        self.trash_pending.set(false);
    }

    /// Frees the memory of an object whose last weak handle went away.
    ///
    /// # Safety
    /// `obj` is a live object of this heap whose weak count just reached 0.
    pub(crate) unsafe fn release_weak(&self, obj: NonNull<ObjHeader>, boxed: Layout) {
        // SAFETY: caller contract.
        let h = unsafe { obj.as_ref() };
        let f = h.flags();
        // Objects the collector let go of carry neither flag
        // (`collect::let_go`): otherwise this never frees them.
        debug_assert!(
            f & (header::SCANNING | header::UNREACHABLE) == 0 || self.collecting.get(),
            "ouro: an object outlived the collection that held it"
        );
        if h.strong() == 0
            && f & DEAD != 0
            && f & (header::SCANNING | header::UNREACHABLE | TRACKED) == 0
        {
            // SAFETY: no handles remain, the value is gone, it is on no list
            // and the collector does not hold it.
            unsafe { self.free(obj, boxed) };
        }
    }
}

thread_local! {
    /// This thread's heap: null until first used, and again once it has
    /// freed itself. Without a destructor, so it stays readable while the
    /// thread's locals are destroyed, and after.
    static HEAP: Cell<*const Heap> = const { Cell::new(ptr::null()) };
    /// Registered with the first heap; its destructor is the exit hook.
    static GUARD: HeapGuard = const { HeapGuard };
}

/// The thread's exit hook. Thread-locals are destroyed in reverse order of
/// registration, so the ones first used before the heap was made are
/// destroyed after this hook, and may hold, allocate and drop handles then.
/// How the heap ends, whatever that order and whatever they do:
///
/// 1. This hook collects the thread's garbage cycles, then releases the
///    thread's reference (`Heap::refs`). With no object left, the heap is
///    freed now; otherwise it stays as long as any object of it is alive
///    (allocations after the hook count as usual) and frees itself when
///    the last one goes ([`reap`], at the top level of the call that freed
///    it).
/// 2. Using the heap after it freed itself (from a later destructor) makes
///    a new one. Its exit hook cannot be registered any more, so it starts
///    without the thread's reference and frees itself the same way, or at
///    once if the call that made it left no object behind.
/// 3. On Unix, the end-of-thread sweep ([`end_of_thread`]) runs after every
///    thread-local's destructor: it releases what the heap holds itself
///    (`SAVEALL` garbage, callbacks, frozen objects), collects the cycles
///    that became garbage after this hook (dropped by later destructors),
///    and frees the heap when nothing is left. On other platforms such
///    cycles stay (a leak, never a dangling pointer).
struct HeapGuard;

impl Drop for HeapGuard {
    fn drop(&mut self) {
        let p = HEAP.with(Cell::get);
        if p.is_null() {
            return;
        }
        // SAFETY: the thread's reference, released below, kept the heap
        // alive (`reap` frees it only once `refs` is zero).
        let heap = unsafe { &*p };
        debug_assert!(!heap.exited.get(), "ouro: the exit hook ran twice");
        if heap.objects() > 0 && !heap.in_use() {
            ignore_panic(|| {
                crate::collect::collect(heap, GENERATIONS - 1);
            });
        }
        heap.exited.set(true);
        heap.refs.set(heap.refs.get() - 1);
        reap();
    }
}

/// Collections the end-of-thread sweep runs at most (a finalizer may make
/// new garbage each time).
const FINAL_COLLECTIONS: usize = 4;

/// The end-of-thread sweep (point 3 of [`HeapGuard`]), after every
/// thread-local's destructor.
#[cfg_attr(not(unix), allow(dead_code))]
fn end_of_thread() {
    let p = HEAP.with(Cell::get);
    if p.is_null() {
        return;
    }
    // SAFETY: non-null `HEAP` is a live heap (see `with_heap`).
    let heap = unsafe { &*p };
    if !heap.exited.get() {
        // The thread-locals' destructors have not run yet (where they run
        // from a pthread key of their own): come back in the next round.
        thread_end::arm();
        return;
    }
    if heap.in_use() {
        return;
    }
    heap.release_own_references();
    for _ in 0..FINAL_COLLECTIONS {
        let mut found = 0;
        if heap.objects() > 0 {
            ignore_panic(|| {
                found = crate::collect::collect(heap, GENERATIONS - 1).map_or(0, |o| o.unreachable)
            });
        }
        if found == 0 {
            break;
        }
    }
    reap();
}

impl Heap {
    /// At the end of the thread, lets go of what the heap holds itself (the
    /// `SAVEALL` garbage, the callbacks and what they captured) and unfreezes
    /// the frozen objects, so that a last collection can free them: nothing
    /// can observe them any more.
    fn release_own_references(&self) {
        // SAFETY: no collection runs (`in_use`), so both lists are well formed.
        unsafe { list::splice(list::node(&self.permanent), self.gen_head(GENERATIONS - 1)) };
        self.shell.debug.set(DebugFlags(
            self.shell.debug.get().0 & !DebugFlags::SAVEALL.0,
        ));
        let garbage = mem::take(&mut *self.garbage.borrow_mut());
        let callbacks = self.callbacks.take_all();
        // User code (`Drop`) runs below, one level deep, so that nothing
        // frees the heap under this function.
        self.drop_nested(|| {
            ignore_panic(|| drop(callbacks));
            for obj in garbage {
                // SAFETY: each saved object holds one strong reference.
                ignore_panic(|| unsafe { crate::raw::release_ref(obj) });
            }
        });
    }
}

/// Runs user code where a panic cannot go on (a thread-local destructor,
/// the end of the thread): the panic is dropped.
fn ignore_panic(f: impl FnOnce()) {
    if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        // The payload's `Drop` is user code too.
        if let Err(again) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(p))) {
            mem::forget(again);
        }
    }
}

/// The end-of-thread sweep's trigger: a pthread-specific value, whose
/// destructor runs after every thread-local's (glibc runs the
/// `__cxa_thread_atexit` destructors behind `thread_local!` first; where
/// `thread_local!` runs them from a pthread key too, the sweep re-arms
/// itself until the exit hook has run).
#[cfg(unix)]
mod thread_end {
    use std::sync::OnceLock;

    static KEY: OnceLock<Option<libc::pthread_key_t>> = OnceLock::new();

    unsafe extern "C" fn run(_: *mut libc::c_void) {
        super::end_of_thread();
    }

    /// Makes the sweep run at the end of this thread.
    pub(super) fn arm() {
        let key = *KEY.get_or_init(|| {
            let mut key: libc::pthread_key_t = 0;
            // SAFETY: `key` is a valid place for the new key, and `run` may
            // run at the end of any thread.
            let ok = unsafe { libc::pthread_key_create(&mut key, Some(run)) } == 0;
            // Out of keys: no sweep (late garbage cycles then stay).
            ok.then_some(key)
        });
        if let Some(key) = key {
            // SAFETY: `key` is a key of this process; the value is only a
            // non-null marker, never dereferenced.
            unsafe {
                libc::pthread_setspecific(key, core::ptr::NonNull::<u8>::dangling().as_ptr().cast())
            };
        }
    }
}

#[cfg(not(unix))]
mod thread_end {
    /// No end-of-thread sweep here (see `HeapGuard`).
    pub(super) fn arm() {}
}

/// Frees this thread's heap if nothing refers to it any more: no object is
/// left, the thread's exit hook has run, and nothing up the stack uses it.
/// Every entry point that can free objects calls it on its way out.
#[cold]
#[inline(never)]
pub(crate) fn reap() {
    let p = HEAP.with(Cell::get);
    if p.is_null() {
        return;
    }
    // SAFETY: non-null `HEAP` is a live heap (see `with_heap`).
    let heap = unsafe { &*p };
    if heap.refs.get() != 0 || heap.in_use() {
        return;
    }
    debug_assert_eq!(heap.live_objects(), 0, "ouro: heap freed with objects");
    HEAP.with(|h| h.set(ptr::null()));
    // SAFETY: no object is left (so no handle or weak handle can reach the
    // heap), the thread no longer holds it, nothing up the stack uses it,
    // and `HEAP` was cleared first. Dropping it may run user code (the
    // callbacks' captures); that finds no heap and makes its own.
    drop(unsafe { Box::from_raw(p.cast_mut()) });
}

#[cold]
#[inline(never)]
fn init_heap() -> *const Heap {
    // The exit hook is registered with the first heap. During thread
    // teardown it may be gone already: the heap then starts without the
    // thread's reference (see `HeapGuard`).
    let hook = GUARD.try_with(|_| ()).is_ok();
    let p = Box::into_raw(Heap::new(hook));
    // SAFETY: `p` is a fresh, valid heap; nothing else refers to it yet.
    unsafe { (*p).init_lists() };
    HEAP.with(|h| h.set(p));
    thread_end::arm();
    p
}

/// Runs `f` with this thread's heap.
#[inline(always)]
pub(crate) fn with_heap<R>(f: impl FnOnce(&Heap) -> R) -> R {
    let mut p = HEAP.with(Cell::get);
    // First use, or the heap freed itself during thread teardown. (The
    // closure is not handed to a cold function: that would build it in
    // memory on the hot path.)
    let made = p.is_null();
    if made {
        p = init_heap();
    }
    // SAFETY: non-null `HEAP` points to a live heap: `reap` frees it only
    // when no object refers to it and nothing up the stack uses it, and
    // clears `HEAP` first.
    let r = f(unsafe { &*p });
    if made {
        // After the thread's exit hook, `f` may have left nothing in it.
        reap();
    }
    r
}
