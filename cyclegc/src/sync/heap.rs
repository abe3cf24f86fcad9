//! The process-wide heap: shards of generation lists, the settings, object
//! memory, and what a mutator does when a strong count reaches zero.

use core::alloc::Layout;
use core::ptr::{self, NonNull};

use super::header::*;
use super::prims::{self, AtomicUsize, Mutex, Ordering, SpinGuard, SpinLock};
use crate::settings::{Shared, Shell};

/// Number of shards (one lock each).
pub(crate) const SHARDS: usize = 16;
/// Allocations a shard counts locally before adding them to the global
/// generation-0 count (one shared atomic per batch, not per allocation).
const YOUNG_BATCH: usize = 16;
/// Nested drops deeper than this are deferred (the trashcan).
const TRASH_DEPTH: u32 = 50;

/// A list of objects linked through their `SyncLinks` (I1 says who may use
/// it).
pub(crate) struct List {
    pub(crate) head: *mut SyncHeader,
    pub(crate) tail: *mut SyncHeader,
    pub(crate) len: usize,
}

// SAFETY: a `List` is only a pair of pointers; the objects it links are
// accessed under the rules of I1 (the shard lock or collector ownership).
unsafe impl Send for List {}

impl List {
    pub(crate) const fn new() -> Self {
        List {
            head: ptr::null_mut(),
            tail: ptr::null_mut(),
            len: 0,
        }
    }

    /// Appends `obj`.
    ///
    /// # Safety
    /// `obj` is a live tracked object on no list, and the caller may write
    /// its links (I1).
    pub(crate) unsafe fn push(&mut self, obj: NonNull<SyncHeader>) {
        // SAFETY: caller contract; `tail`, when not null, is a live member
        // whose links the caller may write too.
        unsafe {
            let l = SyncHeader::links(obj).as_ref();
            *l.next.get() = ptr::null_mut();
            *l.prev.get() = self.tail;
            match NonNull::new(self.tail) {
                Some(t) => *SyncHeader::links(t).as_ref().next.get() = obj.as_ptr(),
                None => self.head = obj.as_ptr(),
            }
        }
        self.tail = obj.as_ptr();
        self.len += 1;
    }

    /// Removes `obj`.
    ///
    /// # Safety
    /// `obj` is a member of this list, and the caller may write the links of
    /// every member (I1).
    pub(crate) unsafe fn unlink(&mut self, obj: NonNull<SyncHeader>) {
        // SAFETY: caller contract.
        unsafe {
            let l = SyncHeader::links(obj).as_ref();
            let (next, prev) = (*l.next.get(), *l.prev.get());
            match NonNull::new(prev) {
                Some(p) => *SyncHeader::links(p).as_ref().next.get() = next,
                None => self.head = next,
            }
            match NonNull::new(next) {
                Some(n) => *SyncHeader::links(n).as_ref().prev.get() = prev,
                None => self.tail = prev,
            }
        }
        self.len -= 1;
    }

    /// Moves all of `other` to the end of `self`.
    ///
    /// # Safety
    /// As `unlink`, for both lists.
    pub(crate) unsafe fn append(&mut self, other: &mut List) {
        let Some(first) = NonNull::new(other.head) else {
            return;
        };
        // SAFETY: caller contract.
        unsafe {
            *SyncHeader::links(first).as_ref().prev.get() = self.tail;
            match NonNull::new(self.tail) {
                Some(t) => *SyncHeader::links(t).as_ref().next.get() = first.as_ptr(),
                None => self.head = first.as_ptr(),
            }
        }
        self.tail = other.tail;
        self.len += other.len;
        *other = List::new();
    }

    /// Calls `f` on every member, in order; `f` may relink the member it is
    /// given (the next one is read before the call).
    ///
    /// # Safety
    /// As `unlink`.
    pub(crate) unsafe fn for_each(&self, mut f: impl FnMut(NonNull<SyncHeader>)) {
        let mut p = self.head;
        while let Some(o) = NonNull::new(p) {
            // SAFETY: caller contract.
            p = unsafe { *SyncHeader::links(o).as_ref().next.get() };
            f(o);
        }
    }
}

impl List {
    /// Calls `f` on every member with its position in the list, walking
    /// from both ends at once (head, tail, second, second to last, ...):
    /// two independent chains of loads, so that the cache misses of a long
    /// list not in the cache overlap. `f` may overwrite the links of the
    /// member it is given (both neighbours are read before the call).
    ///
    /// Panics (before calling `f` on anything past the end) if the list is
    /// shorter than its `len`.
    ///
    /// # Safety
    /// As `unlink`.
    #[inline(always)]
    pub(crate) unsafe fn for_each_from_both_ends(
        &self,
        mut f: impl FnMut(NonNull<SyncHeader>, usize),
    ) {
        let (mut front, mut back) = (self.head, self.tail);
        let (mut i, mut j) = (0, self.len);
        let step = |p: *mut SyncHeader, forward: bool| {
            let o = NonNull::new(p).expect("ouro: a generation list is shorter than its length");
            // SAFETY: caller contract.
            let l = unsafe { SyncHeader::links(o).as_ref() };
            // SAFETY: as above.
            let to = unsafe {
                if forward {
                    *l.next.get()
                } else {
                    *l.prev.get()
                }
            };
            (o, to)
        };
        while i < j {
            let (o, next) = step(front, true);
            front = next;
            f(o, i);
            i += 1;
            if i < j {
                let (o, prev) = step(back, false);
                back = prev;
                j -= 1;
                f(o, j);
            }
        }
    }
}

/// One shard: its generation lists (index 3: frozen objects).
pub(crate) struct Shard {
    pub(crate) lists: [List; 4],
    /// Tracked allocations minus frees of linked objects, not yet added
    /// to `SyncHeap::young`.
    young_local: isize,
}

/// A shard lock on its own cache line (a spin lock: see
/// `prims::SpinLock` for why).
#[repr(align(128))]
pub(crate) struct ShardSlot(pub(crate) SpinLock<Shard>);

/// State only the running collection touches (behind `SyncHeap::collector`).
pub(crate) struct CollectorState {
    /// Tracked objects that survived the last full collection (the
    /// schedule measures the heap's growth from it).
    pub(crate) live_after_full: usize,
    pub(crate) scratch: bumpalo::Bump,
    pub(crate) tables: super::collect::Tables,
}

/// A heap: the process-wide default one (id 0), or one made with
/// `control::Heap::new` (see [`new_heap`]).
pub(crate) struct SyncHeap {
    /// Its id, kept in the flags of its tracked objects (`HEAP_MASK`).
    pub(crate) id: u32,
    pub(crate) shards: [ShardSlot; SHARDS],
    next_shard: AtomicUsize,
    /// Tracked allocations minus frees by reference count since the last
    /// collection (approximate: counted in batches per shard), wrapping:
    /// read as an `isize` ([`SyncHeap::young_count`]), negative when more
    /// were freed than allocated.
    pub(crate) young: AtomicUsize,
    /// The settings, the counts and statistics of the generations, and the
    /// schedule's state shared with the thread-local heap (see
    /// `settings`). The backoff is written under the collector
    /// lock or by `set_threshold`.
    pub(crate) shell: Shell<Shared>,
    /// Held for the whole of a collection (one at a time). Functions that
    /// must not overlap a collection take it too, except on the collecting
    /// thread itself (see `control::exclude_collection`).
    pub(crate) collector: Mutex<CollectorState>,
    /// Objects kept by `SAVEALL`, each with one strong reference.
    pub(crate) garbage: Mutex<Vec<super::raw::ObjectRef>>,
    /// The types named in a warning of the report already (once per
    /// heap: `collect::report`).
    pub(crate) warned: Mutex<Vec<core::any::TypeId>>,
    /// The same for the types of values behind a vtable (trait objects'
    /// concrete types), by name.
    pub(crate) warned_names: Mutex<Vec<&'static str>>,
    pub(crate) callbacks: Mutex<super::control::SyncCallbacks>,
    /// The collections whose finalizers and drops have not finished
    /// (`control::wait_for_drops`), and the condition variable signalled
    /// when one finishes. Std's types also under loom: the lock is held for
    /// a push or a removal only, and no model waits on it.
    pub(crate) unfinished: std::sync::Mutex<super::control::Unfinished>,
    pub(crate) finished: std::sync::Condvar,
    /// Under loom: the first pass's chunk size (a setting of the model, so
    /// a std atomic, not a loom one).
    #[cfg(loom)]
    pub(crate) loom_chunk: std::sync::atomic::AtomicUsize,
}

impl SyncHeap {
    fn new(id: u32) -> SyncHeap {
        SyncHeap {
            id,
            shards: core::array::from_fn(|_| {
                ShardSlot(SpinLock::new(Shard {
                    lists: [List::new(), List::new(), List::new(), List::new()],
                    young_local: 0,
                }))
            }),
            next_shard: AtomicUsize::new(0),
            young: AtomicUsize::new(0),
            shell: Shell::new(),
            collector: Mutex::new(CollectorState {
                live_after_full: 0,
                scratch: bumpalo::Bump::new(),
                tables: Default::default(),
            }),
            garbage: Mutex::new(Vec::new()),
            warned: Mutex::new(Vec::new()),
            warned_names: Mutex::new(Vec::new()),
            callbacks: Mutex::new(super::control::SyncCallbacks::default()),
            unfinished: std::sync::Mutex::new(super::control::Unfinished::default()),
            finished: std::sync::Condvar::new(),
            #[cfg(loom)]
            loom_chunk: std::sync::atomic::AtomicUsize::new(2),
        }
    }

    /// Generation 0's count as `get_count` shows it (never negative).
    pub(crate) fn young_count(&self) -> usize {
        (self.young.load(Ordering::Relaxed) as isize).max(0) as usize
    }

    /// Tracked objects on the generation lists (frozen ones included).
    /// Takes each shard's lock in turn; with no collection running, that is
    /// every tracked object alive.
    pub(crate) fn live_tracked(&self) -> usize {
        self.shards
            .iter()
            .map(|s| prims::lock(&s.0).lists.iter().map(|l| l.len).sum::<usize>())
            .sum()
    }
}

#[cfg(not(loom))]
static HEAP: std::sync::LazyLock<SyncHeap> = std::sync::LazyLock::new(|| SyncHeap::new(0));

#[cfg(loom)]
loom::lazy_static! {
    static ref HEAP: SyncHeap = SyncHeap::new(0);
}

/// The process-wide heap.
#[cfg(loom)]
#[inline]
pub(crate) fn heap() -> &'static SyncHeap {
    &HEAP
}

/// `HEAP` once it is made (null before): one plain load on the hot paths.
/// `LazyLock`'s own check inlines its cold initialisation's setup into
/// every caller (measured: a third of `link`'s instructions).
#[cfg(not(loom))]
static HEAP_MADE: std::sync::atomic::AtomicPtr<SyncHeap> =
    std::sync::atomic::AtomicPtr::new(ptr::null_mut());

/// The process-wide heap.
#[cfg(not(loom))]
#[inline(always)]
pub(crate) fn heap() -> &'static SyncHeap {
    let p = HEAP_MADE.load(std::sync::atomic::Ordering::Acquire);
    // SAFETY: only ever set to `&*HEAP`, a `'static` (the acquire load
    // synchronises with the release store that published it, which came
    // after its initialisation).
    match unsafe { p.as_ref() } {
        Some(h) => h,
        None => make_heap(),
    }
}

#[cfg(not(loom))]
#[cold]
#[inline(never)]
fn make_heap() -> &'static SyncHeap {
    let h: &'static SyncHeap = &HEAP;
    HEAP_MADE.store(
        ptr::from_ref(h).cast_mut(),
        std::sync::atomic::Ordering::Release,
    );
    h
}

/// The most heaps a process can make (`HEAP_MASK` has 12 bits; id 0 is the
/// default heap). Heaps are never freed (see [`new_heap`]), so this bounds
/// the memory they keep: about 3 KiB each.
pub(crate) const MAX_HEAPS: usize = (HEAP_MASK >> HEAP_SHIFT) as usize;

/// The heaps made so far, by id (index 0 unused: the default heap is
/// `HEAP`). Std's atomics also under loom: the models use the default heap
/// only.
static REGISTRY: [std::sync::atomic::AtomicPtr<SyncHeap>; MAX_HEAPS + 1] =
    [const { std::sync::atomic::AtomicPtr::new(ptr::null_mut()) }; MAX_HEAPS + 1];
static NEXT_ID: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);

/// Makes a new heap, or `None` when the process made [`MAX_HEAPS`]
/// already. The heap is leaked: its objects may outlive the handle that
/// made it (a dropped handle moves its survivors to the default heap,
/// [`migrate`]), and a collection, a queued batch or a mutator may still
/// hold a reference to it, so it is never freed and its id never reused.
pub(crate) fn new_heap() -> Option<&'static SyncHeap> {
    let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if id > MAX_HEAPS {
        NEXT_ID.store(MAX_HEAPS + 1, std::sync::atomic::Ordering::Relaxed);
        return None;
    }
    let h: &'static SyncHeap = Box::leak(Box::new(SyncHeap::new(id as u32)));
    REGISTRY[id].store(
        ptr::from_ref(h).cast_mut(),
        std::sync::atomic::Ordering::Release,
    );
    Some(h)
}

/// The heap with this id (0: the default heap).
#[inline(always)]
pub(crate) fn heap_by_id(id: u32) -> &'static SyncHeap {
    if id == 0 { heap() } else { made_heap(id) }
}

#[cold]
#[inline(never)]
fn made_heap(id: u32) -> &'static SyncHeap {
    let p = REGISTRY[id as usize].load(std::sync::atomic::Ordering::Acquire);
    // SAFETY: an id is written into an object's flags only after `new_heap`
    // published the heap under it (the object was allocated in that heap,
    // whose reference the allocator held); heaps are leaked, never freed.
    unsafe { p.as_ref() }.expect("ouro: an object names a heap that does not exist")
}

/// The heap `o` belongs to and its home shard's lock, taken. Loops while
/// a dropped heap moves `o` to the default heap between the read of its
/// id and the lock (`migrate` rewrites the id under that lock).
#[inline(always)]
pub(crate) fn lock_home(o: &SyncHeader) -> (&'static SyncHeap, SpinGuard<'static, Shard>) {
    // The default heap's objects never move (`migrate` moves objects into
    // it): no loop on its path, whose invariants the compiler would
    // otherwise hoist into every caller's prologue.
    if o.heap_id() == 0 {
        let h = heap();
        return (h, prims::lock(&h.shards[o.shard()].0));
    }
    lock_made_home(o)
}

/// [`lock_home`] for an object that was in a made heap when looked at.
#[inline(never)]
fn lock_made_home(o: &SyncHeader) -> (&'static SyncHeap, SpinGuard<'static, Shard>) {
    loop {
        let id = o.heap_id();
        let h = heap_by_id(id);
        let shard = prims::lock(&h.shards[o.shard()].0);
        if id == 0 || o.heap_id() == id {
            return (h, shard);
        }
    }
}

/// Moves every tracked object of `from` (no collection of it running, no
/// batch of it unfinished, no object of it being allocated) to the same
/// generation of the default heap, and writes id 0 into their flags, under
/// both shard locks (`lock_home` re-reads the id under the lock).
pub(crate) fn migrate(from: &SyncHeap) {
    let to = heap();
    debug_assert_ne!(from.id, 0, "the default heap is never migrated");
    for (src, dst) in from.shards.iter().zip(&to.shards) {
        // Lock order: a made heap's shard before the default heap's (the
        // only place that holds two shard locks).
        let mut a = prims::lock(&src.0);
        let mut b = prims::lock(&dst.0);
        for g in 0..a.lists.len() {
            let mut l = core::mem::replace(&mut a.lists[g], List::new());
            // SAFETY: under the shard locks of both heaps, with no
            // collection of `from` running (I1 (a)).
            unsafe {
                l.for_each(|o| {
                    o.as_ref().flags.fetch_and(!HEAP_MASK, Ordering::Release);
                });
                b.lists[g].append(&mut l);
            }
        }
    }
}

#[cfg(all(not(loom), not(miri)))]
static POOL: ouro_pool::SyncPool = ouro_pool::SyncPool::new();

/// Allocates object memory (the pool; the system allocator under loom and
/// Miri, where the pool's own protocol is checked separately).
fn alloc_block(layout: Layout) -> NonNull<u8> {
    #[cfg(all(not(loom), not(miri)))]
    let p = POOL.alloc(layout);
    #[cfg(any(loom, miri))]
    // SAFETY: object layouts have a non-zero size (the header).
    let p = NonNull::new(unsafe { std::alloc::alloc(layout) });
    match p {
        Some(p) => p,
        None => std::alloc::handle_alloc_error(layout),
    }
}

/// # Safety
/// `p` came from `alloc_block(layout)` and is not used again.
unsafe fn free_block(p: NonNull<u8>, layout: Layout) {
    #[cfg(all(not(loom), not(miri)))]
    // SAFETY: caller contract.
    unsafe {
        POOL.dealloc(p, layout)
    }
    #[cfg(any(loom, miri))]
    // SAFETY: caller contract.
    unsafe {
        std::alloc::dealloc(p.as_ptr(), layout)
    }
}

/// The allocation layout of an object with this vtable, and the offset of
/// its header in it.
#[inline]
pub(crate) fn layout_of(vt: &SyncVTable) -> (Layout, usize) {
    if !vt.tracked {
        return (vt.layout, 0);
    }
    let links = Layout::new::<SyncLinks>();
    match links.extend(vt.layout) {
        Ok((l, off)) => (l.pad_to_align(), off),
        Err(_) => std::alloc::handle_alloc_error(vt.layout),
    }
}

/// Header + value layout of a slice of `len` elements of `vt` (whose
/// `layout` is the element's), and the offset of the value in it.
pub(crate) fn unsized_boxed(vt: &SyncVTable, len: usize) -> (Layout, usize) {
    let array =
        match Layout::from_size_align(vt.layout.size().saturating_mul(len), vt.layout.align()) {
            Ok(a) => a,
            Err(_) => panic!("ouro: slice too large"),
        };
    match Layout::new::<SyncHeader>().extend(array) {
        Ok((l, off)) => (l.pad_to_align(), off),
        Err(_) => panic!("ouro: slice too large"),
    }
}

/// The offset of the header in the block of an unsized object of `vt`: the
/// block starts with the length (one `usize`), then the links if tracked
/// (immediately before the header), then the header at its alignment.
/// Independent of the length.
#[inline]
fn unsized_header_offset(vt: &SyncVTable) -> usize {
    let align = vt.layout.align().max(core::mem::align_of::<SyncHeader>());
    let fixed = core::mem::size_of::<usize>()
        + if vt.tracked {
            core::mem::size_of::<SyncLinks>()
        } else {
            0
        };
    fixed.next_multiple_of(align)
}

/// The block layout of an unsized object of `vt` with `len` elements, and
/// the offset of its header in it.
pub(crate) fn unsized_layout(vt: &SyncVTable, len: usize) -> (Layout, usize) {
    let (boxed, _) = unsized_boxed(vt, len);
    let off = unsized_header_offset(vt);
    match off
        .checked_add(boxed.size())
        .map(|size| Layout::from_size_align(size, boxed.align()))
    {
        Some(Ok(l)) => (l, off),
        _ => panic!("ouro: slice too large"),
    }
}

/// The length of an unsized object.
///
/// # Safety
/// `obj` is an allocated header of an unsized object (from
/// [`allocate_unsized`]).
pub(crate) unsafe fn unsized_len(obj: NonNull<SyncHeader>) -> usize {
    // SAFETY: caller contract.
    let off = unsized_header_offset(unsafe { obj.as_ref() }.vtable);
    // SAFETY: `allocate_unsized` wrote the length at the block's start,
    // `off` bytes before the header, and it never changes.
    unsafe { obj.cast::<u8>().sub(off).cast::<usize>().read() }
}

prims::thread_local_cell! {
    /// This thread's shard (`usize::MAX`: not assigned yet).
    static SHARD: usize = usize::MAX;
}
prims::thread_local_cell! {
    /// Set while this thread runs a collection (the collector's own
    /// `Drop`/`finalize`/`trace` calls must not wait for it): the id of its
    /// heap plus one (0: none).
    static COLLECTING: u32 = 0;
}
prims::thread_local_cell! {
    /// Set while this thread finishes a collection (`collect::finish`: its
    /// finalizers and drops, without the collector lock).
    static FINISHING: bool = false;
}
prims::thread_local_cell! {
    /// Set while this thread runs `trace` for a collection (see
    /// `raw::check_deref`).
    static TRACING: bool = false;
}
prims::thread_local_cell! {
    /// Depth of nested drops of values (the trashcan).
    static DROP_DEPTH: u32 = 0;
}
prims::thread_local_cell! {
    /// Objects whose drop was deferred by the trashcan.
    static TRASH: Trash = Trash::EMPTY;
}

/// This thread's trash: two stacks, read together (one thread-local access
/// when the outermost drop checks them).
#[derive(Clone, Copy)]
struct Trash {
    /// Tracked objects, linked through `SyncLinks::next`.
    tracked: *mut SyncHeader,
    /// Untracked objects (see [`Deferred`]).
    untracked: *mut Deferred,
}

impl Trash {
    const EMPTY: Trash = Trash {
        tracked: ptr::null_mut(),
        untracked: ptr::null_mut(),
    };
}

/// An untracked object whose drop the trashcan deferred, on this thread's
/// `Trash::untracked` stack.
///
/// Tracked objects wait on `TRASH` through their own links; an untracked
/// object has none, and no word of its header is free: other threads may
/// still read and write the counts and flags through weak handles. So each
/// waits in a small node of its own, allocated when it is deferred and
/// freed when it is drained. That happens once in [`TRASH_DEPTH`] levels
/// of a chain, and an ordinary drop pays nothing for it (the depth check
/// was there for tracked objects). The stacks are destructor-free
/// thread-locals, usable during thread teardown; they are empty whenever
/// no drop is in progress.
struct Deferred {
    next: *mut Deferred,
    obj: NonNull<SyncHeader>,
}

/// Whether this thread runs the critical part of a collection (of any
/// heap).
pub(crate) fn is_collecting_thread() -> bool {
    COLLECTING.try_with(|c| c.get()).unwrap_or(0) != 0
}

/// Whether this thread runs the critical part of a collection of `h`.
pub(crate) fn is_collecting(h: &SyncHeap) -> bool {
    COLLECTING.try_with(|c| c.get()).unwrap_or(0) == h.id + 1
}

pub(crate) fn is_tracing() -> bool {
    TRACING.try_with(|c| c.get()).unwrap_or(false)
}

pub(crate) fn set_tracing(on: bool) {
    let _ = TRACING.try_with(|c| c.set(on));
}

/// Sets what [`is_collecting`] answers: the id of the heap plus one, 0
/// for none; returns the previous value.
pub(crate) fn set_collecting_thread(v: u32) -> u32 {
    COLLECTING.try_with(|c| c.replace(v)).unwrap_or(0)
}

/// Whether this thread is finishing a collection (running its finalizers
/// or drops): an allocation there does not start an automatic collection.
pub(crate) fn is_finishing() -> bool {
    FINISHING.try_with(|c| c.get()).unwrap_or(false)
}

/// Marks the current thread as finishing a collection while alive.
pub(crate) struct Finishing(bool);

impl Finishing {
    pub(crate) fn start() -> Finishing {
        let was = is_finishing();
        let _ = FINISHING.try_with(|c| c.set(true));
        Finishing(was)
    }
}

impl Drop for Finishing {
    fn drop(&mut self) {
        let _ = FINISHING.try_with(|c| c.set(self.0));
    }
}

fn my_shard() -> usize {
    let h = heap();
    SHARD
        .try_with(|s| {
            let v = s.get();
            if v != usize::MAX {
                v
            } else {
                let v = h.next_shard.fetch_add(1, Ordering::Relaxed) % SHARDS;
                s.set(v);
                v
            }
        })
        .unwrap_or(0)
}

/// Allocates an object with one strong reference (`strong` = 1) or none
/// (`strong` = 0, for `new_cyclic`), with an uninitialised value. A tracked
/// object is not linked yet: call `link` once the value is written.
#[inline]
pub(crate) fn allocate(vt: &'static SyncVTable, strong: u64, h: &SyncHeap) -> NonNull<SyncHeader> {
    let (layout, off) = layout_of(vt);
    let block = alloc_block(layout);
    let shard = my_shard() as u32;
    let flags = if vt.tracked {
        HAS_LINKS | (shard << SHARD_SHIFT) | (h.id << HEAP_SHIFT)
    } else {
        0
    };
    // SAFETY: `off` is inside the block (from `layout_of`), aligned for the
    // header.
    let obj = unsafe { block.add(off) }.cast::<SyncHeader>();
    // SAFETY: as above; the memory is fresh.
    unsafe { obj.write(SyncHeader::new(vt, strong, flags)) };
    obj
}

/// [`allocate`] for an unsized value (a slice of `len` elements of `vt`):
/// the length is written in the block, before the header.
pub(crate) fn allocate_unsized(
    vt: &'static SyncVTable,
    len: usize,
    strong: u64,
    h: &SyncHeap,
) -> NonNull<SyncHeader> {
    let (layout, off) = unsized_layout(vt, len);
    let block = alloc_block(layout);
    let shard = my_shard() as u32;
    let flags = if vt.tracked {
        HAS_LINKS | (shard << SHARD_SHIFT) | (h.id << HEAP_SHIFT)
    } else {
        0
    };
    // SAFETY: the block starts with room for the length (`unsized_layout`),
    // aligned for it (the block's alignment is at least a `usize`'s).
    unsafe { block.cast::<usize>().write(len) };
    // SAFETY: `off` is inside the block, aligned for the header.
    let obj = unsafe { block.add(off) }.cast::<SyncHeader>();
    // SAFETY: as above; the memory is fresh.
    unsafe { obj.write(SyncHeader::new(vt, strong, flags)) };
    obj
}

/// Links a tracked object into generation 0 of its shard; returns whether
/// enough allocations happened for an automatic collection to be due.
///
/// # Safety
/// `obj` came from `allocate`, its value is initialised, and it is not
/// linked yet.
pub(crate) unsafe fn link(obj: NonNull<SyncHeader>) {
    // SAFETY: caller contract.
    let o = unsafe { obj.as_ref() };
    let (h, mut shard) = lock_home(o);
    // SAFETY: a new object is on no list; we hold its shard's lock (I1).
    unsafe { shard.lists[0].push(obj) };
    // Exclusive: under the shard lock, and not yet listed.
    o.update_flags_exclusively(LINKED, 0);
    shard.young_local += 1;
    if shard.young_local >= YOUNG_BATCH as isize {
        h.young
            .fetch_add(shard.young_local as usize, Ordering::Relaxed);
        shard.young_local = 0;
    }
}

/// The strong count of `obj` reached zero (its old value was 1, without
/// `CLAIMED`): unlink it, or hand it to the running collection.
///
/// # Safety
/// The caller's decrement took the count to zero; `obj` is not used by the
/// caller afterwards.
pub(crate) unsafe fn strong_zero(obj: NonNull<SyncHeader>) {
    super::prims::fence(Ordering::Acquire);
    // SAFETY: the strong side's weak count keeps the header alive.
    let o = unsafe { obj.as_ref() };
    if o.flags.load(Ordering::Relaxed) & LINKED != 0 {
        let (h, mut shard) = lock_home(o);
        let f = o.flags.load(Ordering::Relaxed);
        if f & IN_COLLECTOR != 0 {
            // I2: the collector reads this value; it drops it later.
            o.flags.fetch_or(ZOMBIE, Ordering::Release);
            return;
        }
        let g = ((f & GEN_MASK) >> GEN_SHIFT) as usize;
        // SAFETY: `LINKED` without `IN_COLLECTOR`: the object is on list `g`
        // of its shard, whose lock we hold (I1).
        unsafe { shard.lists[g].unlink(obj) };
        // Exclusive: under the shard lock.
        o.update_flags_exclusively(0, LINKED);
        // Freed by its count: it leaves generation 0's count (CPython's
        // meaning: allocations minus deallocations).
        shard.young_local -= 1;
        if shard.young_local <= -(YOUNG_BATCH as isize) {
            h.young
                .fetch_sub(shard.young_local.unsigned_abs(), Ordering::Relaxed);
            shard.young_local = 0;
        }
    }
    // SAFETY: unlinked, count zero: this thread owns the value.
    unsafe { drop_unlinked(obj) }
}

/// Drops the value of an object nobody else can reach any more (count zero,
/// on no list) and releases the strong side's weak count, with the trashcan
/// bounding the recursion.
///
/// # Safety
/// The caller owns the value of `obj` (it will not be read again).
pub(crate) unsafe fn drop_unlinked(obj: NonNull<SyncHeader>) {
    /// Restores the drop depth, also when a `Drop` panics.
    struct Depth(u32);
    impl Drop for Depth {
        fn drop(&mut self) {
            let _ = DROP_DEPTH.try_with(|d| d.set(self.0));
        }
    }
    let depth = DROP_DEPTH.try_with(|d| d.get()).unwrap_or(0);
    if depth >= TRASH_DEPTH {
        // SAFETY: the caller owns `obj`.
        unsafe { defer(obj) };
        return;
    }
    let _restore = Depth(depth);
    let _ = DROP_DEPTH.try_with(|d| d.set(depth + 1));
    // SAFETY: caller contract.
    unsafe { destroy_one(obj) };
    if depth == 0 && trash_pending() {
        drain_trash();
    }
}

/// Whether this thread's trash holds objects.
#[inline(always)]
fn trash_pending() -> bool {
    TRASH
        .try_with(|t| {
            let t = t.get();
            !t.tracked.is_null() || !t.untracked.is_null()
        })
        .unwrap_or(false)
}

/// The outermost drop empties the trash one object at a time; if a `Drop`
/// panics, the rest stays for the next one.
#[cold]
#[inline(never)]
fn drain_trash() {
    while let Some(o) = pop_trash() {
        // SAFETY: objects on the trash are owned by this thread, with a zero
        // count and unlinked (`defer`).
        unsafe { destroy_one(o) };
    }
}

/// Puts `obj` on this thread's trash: on the tracked stack through its
/// links, or in a node of its own.
///
/// # Safety
/// As `drop_unlinked`.
#[cold]
#[inline(never)]
unsafe fn defer(obj: NonNull<SyncHeader>) {
    // SAFETY: the caller owns `obj`.
    let tracked = unsafe { obj.as_ref() }.flags.load(Ordering::Relaxed) & HAS_LINKS != 0;
    let _ = TRASH.try_with(|t| {
        let mut trash = t.get();
        if tracked {
            // SAFETY: an unlinked tracked object: its links are ours.
            unsafe { *SyncHeader::links(obj).as_ref().next.get() = trash.tracked };
            trash.tracked = obj.as_ptr();
        } else {
            let node = Box::new(Deferred {
                next: trash.untracked,
                obj,
            });
            trash.untracked = Box::into_raw(node);
        }
        t.set(trash);
    });
}

/// Takes an object off this thread's trash (`None` when it is empty).
fn pop_trash() -> Option<NonNull<SyncHeader>> {
    TRASH
        .try_with(|t| {
            let mut trash = t.get();
            let obj = if let Some(o) = NonNull::new(trash.tracked) {
                // SAFETY: objects on the trash are owned by this thread; the
                // tracked ones are linked through `next`.
                trash.tracked = unsafe { *SyncHeader::links(o).as_ref().next.get() };
                o
            } else {
                let node = NonNull::new(trash.untracked)?;
                // SAFETY: nodes on the stack came from `Box::into_raw` in
                // `defer` and are taken off once.
                let node = unsafe { Box::from_raw(node.as_ptr()) };
                trash.untracked = node.next;
                node.obj
            };
            t.set(trash);
            Some(obj)
        })
        .ok()
        .flatten()
}

/// Drops the value of `obj` (even if that panics, the memory is released).
///
/// # Safety
/// As `drop_unlinked`.
unsafe fn destroy_one(obj: NonNull<SyncHeader>) {
    struct ReleaseAfter(NonNull<SyncHeader>);
    impl Drop for ReleaseAfter {
        fn drop(&mut self) {
            // SAFETY: the value is gone; this releases the strong side's
            // weak count exactly once.
            unsafe { release_weak(self.0) }
        }
    }
    let guard = ReleaseAfter(obj);
    // SAFETY: caller contract.
    let o = unsafe { obj.as_ref() };
    // `UNINIT`: never written (`Gc::new_uninit` dropped before
    // `assume_init`): nothing to drop.
    if o.flags.load(Ordering::Acquire) & (DEAD | UNINIT) != 0 {
        // Already dropped by the collector: a handle that a garbage value's
        // `Drop` moved out kept the header alive until now.
        return;
    }
    // Exclusive: nobody else can reach an object whose value we own.
    let f = o.flags.load(Ordering::Relaxed);
    o.update_flags_exclusively(DEAD, 0);
    // Death hooks run before the value drops (see `hooks`); a panic among
    // them is resumed once the value is dropped.
    let p = if f & HOOKED != 0 {
        crate::hooks::run_all(crate::hooks::sync_take(obj.as_ptr().addr()))
    } else {
        None
    };
    // SAFETY: the caller owns the value; it is dropped once.
    unsafe { (o.vtable.drop_value)(obj) };
    drop(guard);
    if let Some(p) = p {
        std::panic::resume_unwind(p);
    }
}

/// Releases one weak count; frees the memory when it was the last.
///
/// # Safety
/// The caller owns one weak count of `obj` (a weak handle or the strong
/// side's), and does not use `obj` afterwards.
///
/// Inlined: a weak handle's drop that is not the last count is one
/// read-modify-write and no call; the free is out of line.
#[inline]
pub(crate) unsafe fn release_weak(obj: NonNull<SyncHeader>) {
    // SAFETY: caller contract.
    let weak = &unsafe { obj.as_ref() }.weak;
    // As in `release_weak_deferred`.
    if weak.load(Ordering::Acquire) != 1 && weak.fetch_sub(1, Ordering::Release) != 1 {
        return;
    }
    // SAFETY: caller contract; the caller's count is now the last one.
    unsafe { free_last(obj) }
}

/// [`release_weak`] when the caller's weak count is the last count of any
/// kind (its value still 1, or the caller's decrement took it from 1).
///
/// # Safety
/// As `release_weak`.
#[inline(never)]
unsafe fn free_last(obj: NonNull<SyncHeader>) {
    // SAFETY: caller contract.
    let (block, layout) = unsafe { last_block(obj, &mut LayoutCache::new()) };
    // SAFETY: last count of any kind: nobody can reach the memory; it came
    // from `alloc_block(layout)`.
    unsafe { free_block(block, layout) }
}

/// [`release_weak`], except that the memory, when this was the last count,
/// is returned for the caller to free (with [`free_blocks`]) instead of
/// freed.
///
/// # Safety
/// As `release_weak`; a returned block is freed exactly once, and `obj` is
/// not used after this call.
#[inline]
pub(crate) unsafe fn release_weak_deferred(
    obj: NonNull<SyncHeader>,
    layouts: &mut LayoutCache,
) -> Option<(NonNull<u8>, Layout)> {
    // SAFETY: the count we own keeps the header alive.
    let o = unsafe { obj.as_ref() };
    // A count of 1 is ours alone, and no new one can appear: a weak count is
    // only added through an existing handle, and the caller's is the last
    // (for the strong side: no strong handle is left either). Skip the
    // read-modify-write then.
    if o.weak.load(Ordering::Acquire) != 1 && o.weak.fetch_sub(1, Ordering::Release) != 1 {
        return None;
    }
    // SAFETY: the caller's count was the last.
    Some(unsafe { last_block(obj, layouts) })
}

/// The block and layout of `obj`, whose last count of any kind the caller
/// just released (its `weak` was 1, or the caller took it from 1 to 0).
///
/// # Safety
/// As above; `obj` is not used after this call.
#[inline]
unsafe fn last_block(obj: NonNull<SyncHeader>, layouts: &mut LayoutCache) -> (NonNull<u8>, Layout) {
    prims::fence(Ordering::Acquire);
    // SAFETY: caller contract: nobody else reaches the memory any more.
    let o = unsafe { obj.as_ref() };
    let (layout, off) = if o.vtable.sized {
        layouts.get(o.vtable)
    } else {
        // SAFETY: an unsized object, still allocated (we hold its last count).
        unsized_layout(o.vtable, unsafe { unsized_len(obj) })
    };
    // SAFETY: the header sits `off` bytes into the block it came in
    // (`allocate`).
    (unsafe { obj.cast::<u8>().sub(off) }, layout)
}

/// [`layout_of`] for the last vtable asked about (a collection frees runs
/// of objects of one type).
pub(crate) struct LayoutCache {
    vtable: *const SyncVTable,
    layout: (Layout, usize),
}

impl LayoutCache {
    pub(crate) fn new() -> Self {
        LayoutCache {
            vtable: ptr::null(),
            layout: (Layout::new::<u8>(), 0),
        }
    }

    #[inline]
    fn get(&mut self, vt: &'static SyncVTable) -> (Layout, usize) {
        if !ptr::eq(self.vtable, vt) {
            self.vtable = vt;
            self.layout = layout_of(vt);
        }
        self.layout
    }
}

/// Frees blocks from [`release_weak_deferred`], in one batch (the pool
/// takes each shard's lock once per run of blocks from that shard).
///
/// # Safety
/// Each block came from `release_weak_deferred` and is freed once.
pub(crate) unsafe fn free_blocks(blocks: &[(NonNull<u8>, Layout)]) {
    #[cfg(all(not(loom), not(miri)))]
    // SAFETY: caller contract: live blocks of `POOL`, given up.
    unsafe {
        POOL.dealloc_batch(blocks)
    }
    #[cfg(any(loom, miri))]
    for &(p, layout) in blocks {
        // SAFETY: caller contract.
        unsafe { free_block(p, layout) }
    }
}

/// Frees an object that never got a value (`new_cyclic` whose closure
/// panicked).
///
/// # Safety
/// `obj` came from `allocate`, is not linked, and its value was never
/// written; the caller owns the strong side.
pub(crate) unsafe fn abandon(obj: NonNull<SyncHeader>) {
    // SAFETY: caller contract.
    let o = unsafe { obj.as_ref() };
    o.flags.fetch_or(DEAD, Ordering::Release);
    // SAFETY: the strong side's weak count.
    unsafe { release_weak(obj) }
}
