//! The unsafe object API of the process-wide heap, for the typed layer
//! (`ouro_refobj::sync`). Each function states what the caller guarantees.

use core::fmt;
use core::ptr::NonNull;

use super::header::*;
use super::heap::{self, heap};
use super::prims::{self, Ordering};
pub use crate::hooks::{HookId, SyncHook};

/// Allocates an object for `vt` with one strong reference (or none when
/// `strong` is 0, for `new_cyclic`) and an uninitialised value. May run an
/// automatic collection first (on this thread). The caller writes the value
/// at `SyncHeader::value_ptr`, then calls [`publish`] (or [`abandon`]).
///
/// Inlined: with the typed layer's constant vtable, the block's layout is a
/// constant.
///
/// # Safety
/// `vt` is the vtable the typed layer built for the value's type: its
/// `layout` (and `value_offset`) describe the header followed by that
/// value, so that the block allocated from it holds them.
#[inline]
pub unsafe fn allocate(vt: &'static SyncVTable, strong: bool) -> NonNull<SyncHeader> {
    debug_assert!(vt.sized, "ouro: allocate with an unsized vtable");
    let h = heap();
    if vt.tracked {
        super::control::maybe_collect(h);
    }
    heap::allocate(vt, u64::from(strong), h)
}

/// [`allocate`] in `heap` instead of the default heap (an untracked
/// object belongs to no heap: it is allocated as by [`allocate`]). May run
/// an automatic collection of `heap` first (on this thread).
///
/// # Safety
/// `vt` is the vtable the typed layer built for the value's type: its
/// `layout` (and `value_offset`) describe the header followed by that
/// value, so that the block allocated from it holds them.
pub unsafe fn allocate_in(
    vt: &'static SyncVTable,
    strong: bool,
    heap: &super::control::Heap,
) -> NonNull<SyncHeader> {
    let h = heap.inner();
    if vt.tracked {
        super::control::maybe_collect(h);
    }
    heap::allocate(vt, u64::from(strong), h)
}

/// [`allocate`] for a slice of `len` elements: `vt.sized` is false and
/// `vt.layout` is the element's layout. The value starts at
/// `SyncHeader::value_ptr`; its length is kept in the object for the
/// collector and for freeing it.
///
/// # Safety
/// `vt` is the vtable the typed layer built for the slice's element type
/// (its `layout` is the element's).
pub unsafe fn allocate_unsized(
    vt: &'static SyncVTable,
    len: usize,
    strong: bool,
) -> NonNull<SyncHeader> {
    assert!(!vt.sized, "ouro: allocate_unsized with a sized vtable");
    let h = heap();
    if vt.tracked {
        super::control::maybe_collect(h);
    }
    heap::allocate_unsized(vt, len, u64::from(strong), h)
}

/// Makes a newly initialised object visible to the collector, with one
/// strong reference.
///
/// # Safety
/// `obj` came from [`allocate`], its value is initialised, and `publish` was
/// not called for it before.
pub unsafe fn publish(obj: NonNull<SyncHeader>) {
    // SAFETY: caller contract.
    let o = unsafe { obj.as_ref() };
    // `new_cyclic`: the count becomes 1 only now, so `upgrade` failed until
    // the value was written. `Release` publishes the value to upgraders.
    if o.counts.load(Ordering::Relaxed) & STRONG_MASK == 0 {
        o.counts.fetch_add(STRONG_ONE, Ordering::Release);
    }
    if o.vtable.tracked {
        // SAFETY: caller contract.
        unsafe { heap::link(obj) };
    }
}

/// Allocates an object with one strong reference whose value the caller
/// writes later through its handle (`sync::Gc::new_uninit`): it is not
/// linked (the collector never reads it), and dropping its last handle
/// frees it without dropping the value. [`publish_uninit`] makes it an
/// ordinary object once the value is written. May run an automatic
/// collection first.
///
/// # Safety
/// `vt` is the vtable the typed layer built for the value's type: its
/// `layout` (and `value_offset`) describe the header followed by that
/// value, so that the block allocated from it holds them.
pub unsafe fn allocate_uninit(vt: &'static SyncVTable) -> NonNull<SyncHeader> {
    // SAFETY: forwarded contract.
    let obj = unsafe { allocate(vt, true) };
    // SAFETY: fresh, not shared yet: only this thread can reach it.
    unsafe { obj.as_ref() }.update_flags_exclusively(UNINIT, 0);
    obj
}

/// Marks the value of an object from [`allocate_uninit`] as written and
/// links it if its type is tracked.
///
/// # Safety
/// `obj` came from [`allocate_uninit`], its value is written, the caller
/// holds a strong reference to it, and this is called once.
pub unsafe fn publish_uninit(obj: NonNull<SyncHeader>) {
    // SAFETY: caller contract.
    let o = unsafe { obj.as_ref() };
    // A read-modify-write: other handles may exist, but none of them writes
    // the flags of an unlinked object with a count we keep above zero.
    o.flags.fetch_and(!UNINIT, Ordering::Release);
    if o.vtable.tracked {
        // SAFETY: caller contract: value written, not linked yet.
        unsafe { heap::link(obj) };
    }
}

/// The number of elements of an unsized object (a slice).
///
/// # Safety
/// `obj` came from [`allocate_unsized`] and is still allocated.
pub unsafe fn unsized_len(obj: NonNull<SyncHeader>) -> usize {
    // SAFETY: caller contract.
    unsafe { heap::unsized_len(obj) }
}

/// Removes a strong reference unless it is the last one (`Arc::into_inner`
/// over several handles): returns `true` if it did (the count stays above
/// zero), `false` if the count is 1 and the caller's handle is the last.
///
/// # Safety
/// The caller owns a strong reference to `obj`; after `true` it no longer
/// does.
pub unsafe fn dec_strong_unless_last(obj: NonNull<SyncHeader>) -> bool {
    // SAFETY: caller contract.
    let counts = &unsafe { obj.as_ref() }.counts;
    let mut c = counts.load(Ordering::Relaxed);
    loop {
        if c & STRONG_MASK <= 1 {
            return false;
        }
        // `Release` as `dec_strong`: our uses of the value happen before the
        // drop of the last handle. The flags in the high bits are kept.
        match counts.compare_exchange_weak(c, c - STRONG_ONE, Ordering::Release, Ordering::Relaxed)
        {
            Ok(_) => return true,
            Err(now) => c = now,
        }
    }
}

/// Marks the value of an object not yet published as pinned: from then on
/// [`begin_exclusive`] and [`begin_unwrap`] refuse it (`sync::Gc::pin`).
///
/// # Safety
/// `obj` came from [`allocate`] and is not published yet (no other thread
/// can see it).
pub unsafe fn pin_unpublished(obj: NonNull<SyncHeader>) {
    // SAFETY: caller contract: only this thread can reach the object.
    unsafe { obj.as_ref() }.update_flags_exclusively(PINNED, 0);
}

/// Whether `obj`'s value is pinned.
///
/// # Safety
/// The caller holds a reference to `obj`.
pub unsafe fn is_pinned(obj: NonNull<SyncHeader>) -> bool {
    // SAFETY: caller contract.
    unsafe { obj.as_ref() }.flags.load(Ordering::Relaxed) & PINNED != 0
}

/// Allocates a *placeholder* for a deep copy: an object with `strong`
/// strong references whose value is not written yet. Until
/// [`fill_placeholder`], dereferencing a handle to it panics (`DEAD`), a
/// weak handle does not upgrade (`WEAK_CLEARED`), and the collector does
/// not see it (it is not linked; an edge to it counts as a reference from
/// outside). If its last handle goes first, it is freed without a value
/// drop. May run an automatic collection first (on this thread).
///
/// # Safety
/// `vt` is the vtable the typed layer built for the value's type: its
/// `layout` (and `value_offset`) describe the header followed by that
/// value, so that the block allocated from it holds them.
pub unsafe fn allocate_placeholder(vt: &'static SyncVTable, strong: u64) -> NonNull<SyncHeader> {
    let h = heap();
    if vt.tracked {
        super::control::maybe_collect(h);
    }
    let obj = heap::allocate(vt, strong, h);
    // SAFETY: fresh from `allocate`.
    let o = unsafe { obj.as_ref() };
    // Exclusive: not shared yet.
    o.update_flags_exclusively(DEAD | WEAK_CLEARED, 0);
    obj
}

/// Marks the value of a placeholder as written and makes the object
/// visible to the collector (its strong count stays as it is).
///
/// # Safety
/// `obj` came from [`allocate_placeholder`] and still has a strong
/// reference (the caller's), its value is now completely written, and
/// `fill_placeholder` was not called for it before.
pub unsafe fn fill_placeholder(obj: NonNull<SyncHeader>) {
    // SAFETY: caller contract.
    let o = unsafe { obj.as_ref() };
    // An atomic update: handles to the placeholder may be on other threads
    // (they can only clone, drop or fail to dereference it). `Release`
    // publishes the value to those that see the bits cleared.
    o.flags.fetch_and(!(DEAD | WEAK_CLEARED), Ordering::Release);
    // SAFETY: caller contract; the count is above zero, so `publish` adds
    // none.
    unsafe { publish(obj) };
}

/// Frees an object whose value was never written.
///
/// # Safety
/// `obj` came from [`allocate`], was not published, and its value was never
/// written; the caller does not use it again.
pub unsafe fn abandon(obj: NonNull<SyncHeader>) {
    // SAFETY: caller contract.
    unsafe { heap::abandon(obj) }
}

/// Adds a strong reference (`clone`).
///
/// # Safety
/// The caller holds a strong reference to `obj`.
#[inline]
pub unsafe fn inc_strong(obj: NonNull<SyncHeader>) {
    // SAFETY: caller contract.
    let old = unsafe { obj.as_ref() }
        .counts
        .fetch_add(STRONG_ONE, Ordering::Relaxed);
    // `MARKED` is the sign bit: this is `Arc`'s `lock inc` + `jle`. Only
    // the sign of `old` may be used here: any other use of it needs the old
    // value in a register, and the increment becomes a `lock xadd`
    // (measured: 1.2x `Arc`'s time for a clone and a drop).
    if (old as i64) < 0 {
        // SAFETY: caller contract.
        unsafe { clone_of_marked(obj) }
    }
}

/// The slow path of [`inc_strong`]: the collector is verifying the object
/// (`MARKED`). The mark is cleared before the new handle exists for the
/// caller, so the verification fails (step 3 (c)) unless it read the count
/// before the increment and the handle is neither counted nor dropped
/// before that read (see the module docs, step 3).
///
/// # Safety
/// The caller holds a strong reference to `obj`.
#[cold]
#[inline(never)]
unsafe fn clone_of_marked(obj: NonNull<SyncHeader>) {
    // SAFETY: caller contract.
    let counts = &unsafe { obj.as_ref() }.counts;
    if counts.load(Ordering::Relaxed) & STRONG_MASK >= STRONG_LIMIT {
        count_overflow();
    }
    // `Relaxed`: every later use of the new handle (its drop, or a store
    // that the collector's trace reads under a lock) comes after this in
    // the caller's thread, and so after it in the word's modification order
    // or in happens-before, which is what step 3's argument needs.
    counts.fetch_and(!MARKED, Ordering::Relaxed);
}

/// Removes a strong reference (`drop`); drops the value and frees the
/// memory when it was the last.
///
/// # Safety
/// The caller owns a strong reference to `obj` and gives it up.
#[inline]
pub unsafe fn dec_strong(obj: NonNull<SyncHeader>) {
    // SAFETY: caller contract.
    let old = unsafe { obj.as_ref() }
        .counts
        .fetch_sub(STRONG_ONE, Ordering::Release);
    // Exactly 1: the last handle, neither `CLAIMED` (I4) nor `MARKED` (the
    // collector is verifying the object, and takes the zero over when it
    // clears the mark: I5). `Arc`'s `lock dec` + `jne`.
    if old == STRONG_ONE {
        // SAFETY: we took the count to zero (I4: not claimed).
        unsafe { heap::strong_zero(obj) }
    }
}

/// Adds a strong reference if the value is still alive and not claimed by
/// the collector (`Weak::upgrade`). Returns whether it did.
///
/// # Safety
/// The caller holds a weak (or strong) reference to `obj`.
pub unsafe fn try_inc_strong(obj: NonNull<SyncHeader>) -> bool {
    // SAFETY: caller contract.
    let o = unsafe { obj.as_ref() };
    let mut c = o.counts.load(Ordering::Relaxed);
    loop {
        if c & STRONG_MASK == 0 || c & CLAIMED != 0 {
            return false;
        }
        if c & STRONG_MASK >= STRONG_LIMIT {
            count_overflow();
        }
        // An increment clears the mark, as `clone` does.
        match o.counts.compare_exchange_weak(
            c,
            (c + STRONG_ONE) & !MARKED,
            Ordering::Acquire,
            Ordering::Relaxed,
        ) {
            Ok(_) => return true,
            Err(x) => c = x,
        }
    }
}

/// `Weak::upgrade`: as [`try_inc_strong`], and `false` while the collector
/// has the object's weak references cleared (from its claim until the value
/// is dropped, or until the claim is withdrawn: a resurrected object's weak
/// handles upgrade again).
///
/// # Safety
/// The caller holds a weak reference to `obj`.
pub unsafe fn upgrade(obj: NonNull<SyncHeader>) -> bool {
    // SAFETY: caller contract.
    if unsafe { obj.as_ref() }.has(WEAK_CLEARED) {
        return false;
    }
    // SAFETY: caller contract.
    unsafe { try_inc_strong(obj) }
}

/// Adds a weak reference (`downgrade`, `Weak::clone`).
///
/// # Safety
/// The caller holds a strong or weak reference to `obj`.
#[inline]
pub unsafe fn inc_weak(obj: NonNull<SyncHeader>) {
    // SAFETY: caller contract.
    let old = unsafe { obj.as_ref() }.weak.fetch_add(1, Ordering::Relaxed);
    if old > u32::MAX / 2 {
        count_overflow();
    }
}

/// Removes a weak reference; frees the memory when it was the last count.
///
/// # Safety
/// The caller owns a weak reference to `obj` and gives it up.
#[inline]
pub unsafe fn dec_weak(obj: NonNull<SyncHeader>) {
    // SAFETY: caller contract.
    unsafe { heap::release_weak(obj) }
}

/// Panics unless the value of `obj` may be dereferenced.
///
/// # Safety
/// The caller holds a strong reference to `obj`.
#[inline(always)]
pub unsafe fn check_deref(obj: NonNull<SyncHeader>) {
    // SAFETY: caller contract.
    let f = unsafe { obj.as_ref() }.flags.load(Ordering::Relaxed);
    if f & (DEAD | IN_COLLECTOR) != 0 {
        deref_slow(f)
    }
}

#[cold]
#[inline(never)]
#[track_caller]
fn deref_slow(f: u32) {
    if f & DEAD != 0 {
        panic!(
            "ouro::sync::Gc: dereferenced a value the cycle collector has already dropped \
             (a handle reached from the `Drop` of another object in the same garbage cycle)"
        )
    }
    // Owned by a running collection: other threads go on using it; the
    // collector's own `trace` calls may not (one object's `trace` reaching
    // into another's value could move handles the collector counted).
    if heap::is_tracing() {
        panic!(
            "ouro::sync::Gc: dereferenced a handle from inside `Trace::trace` during a \
             collection; `trace` may only report handles (call `trace` on them)"
        )
    }
}

/// Whether `obj`'s value was dropped (or is being dropped) by the collector.
///
/// # Safety
/// The caller holds a reference to `obj`.
pub unsafe fn is_dead(obj: NonNull<SyncHeader>) -> bool {
    // SAFETY: caller contract.
    unsafe { obj.as_ref() }.has(DEAD)
}

/// Whether the finalizer of `obj` has run.
///
/// # Safety
/// The caller holds a reference to `obj`.
pub unsafe fn is_finalized(obj: NonNull<SyncHeader>) -> bool {
    // SAFETY: caller contract.
    unsafe { obj.as_ref() }.has(FINALIZED)
}

/// Whether `obj` is tracked by the collector.
///
/// # Safety
/// The caller holds a reference to `obj`.
pub unsafe fn is_tracked(obj: NonNull<SyncHeader>) -> bool {
    // SAFETY: caller contract.
    let o = unsafe { obj.as_ref() };
    // Not before `publish_uninit` (`Gc::new_uninit`).
    o.vtable.tracked && o.flags.load(Ordering::Acquire) & UNINIT == 0
}

/// `Gc::get_mut`: whether the caller's unique handle may hand out `&mut T`.
/// Waits while the collector owns the object (it may be reading the value);
/// fails on the collecting thread itself, which must not wait for itself.
///
/// # Safety
/// The caller holds a strong reference to `obj` through `&mut` (so it
/// cannot be cloned or downgraded during the call).
pub unsafe fn begin_exclusive(obj: NonNull<SyncHeader>) -> bool {
    // SAFETY: caller contract.
    let o = unsafe { obj.as_ref() };
    if o.flags.load(Ordering::Relaxed) & PINNED != 0 {
        // Set before the object was published, never cleared.
        return false;
    }
    loop {
        // `Acquire`, as `Arc::get_mut`: the other handles' uses of the value
        // happen before ours.
        if o.counts.load(Ordering::Acquire) & (STRONG_MASK | CLAIMED) != 1
            || o.weak.load(Ordering::Acquire) != 1
        {
            return false;
        }
        if o.flags.load(Ordering::Relaxed) & LINKED == 0 {
            // Untracked (or not yet published): the collector never reads it.
            return true;
        }
        {
            let (_, _shard) = heap::lock_home(o);
            if o.flags.load(Ordering::Relaxed) & IN_COLLECTOR == 0 {
                // I3: set under the shard lock, so a collection that takes
                // this object afterwards sees it.
                o.flags.fetch_or(EXCLUSIVE, Ordering::Relaxed);
                return true;
            }
        }
        if heap::is_collecting_thread() {
            return false;
        }
        prims::wait_a_little();
    }
}

/// `Gc::try_unwrap`: if the caller's handle is the only one, takes the
/// object from the heap; the caller then moves the value out and calls
/// [`finish_unwrap`]. Waits while the collector owns the object (fails on
/// the collecting thread itself).
///
/// # Safety
/// The caller owns a strong reference to `obj`; on `true` it gives it up.
pub unsafe fn begin_unwrap(obj: NonNull<SyncHeader>) -> bool {
    // SAFETY: caller contract.
    let o = unsafe { obj.as_ref() };
    if o.flags.load(Ordering::Relaxed) & PINNED != 0 {
        // Set before the object was published, never cleared.
        return false;
    }
    loop {
        let c = o.counts.load(Ordering::Relaxed);
        if c & (STRONG_MASK | CLAIMED) != 1 {
            return false;
        }
        if o.flags.load(Ordering::Relaxed) & LINKED == 0 {
            return o
                .counts
                .compare_exchange(c, c - STRONG_ONE, Ordering::Acquire, Ordering::Relaxed)
                .is_ok();
        }
        {
            let (_, mut shard) = heap::lock_home(o);
            let f = o.flags.load(Ordering::Relaxed);
            if f & IN_COLLECTOR == 0 {
                if o.counts
                    .compare_exchange(c, c - STRONG_ONE, Ordering::Acquire, Ordering::Relaxed)
                    .is_err()
                {
                    continue;
                }
                let g = ((f & GEN_MASK) >> GEN_SHIFT) as usize;
                // SAFETY: linked and not owned by the collector: on list `g`
                // of its shard, whose lock we hold (I1).
                unsafe { shard.lists[g].unlink(obj) };
                o.flags.fetch_and(!LINKED, Ordering::Relaxed);
                return true;
            }
        }
        if heap::is_collecting_thread() {
            return false;
        }
        prims::wait_a_little();
    }
}

/// Releases the memory after the value was moved out.
///
/// # Safety
/// `begin_unwrap(obj)` returned `true` and the value was moved out.
pub unsafe fn finish_unwrap(obj: NonNull<SyncHeader>) {
    // SAFETY: caller contract.
    let o = unsafe { obj.as_ref() };
    let f = o.flags.fetch_or(DEAD, Ordering::Release);
    // The value left the heap: its death hooks run (before the memory can
    // be freed).
    let p = if f & HOOKED != 0 {
        crate::hooks::run_all(crate::hooks::sync_take(obj.as_ptr().addr()))
    } else {
        None
    };
    // SAFETY: the strong side's weak count.
    unsafe { heap::release_weak(obj) };
    if let Some(p) = p {
        std::panic::resume_unwind(p);
    }
}

/// Adds a death hook: `f` runs once, when the value of `obj` dies (its
/// count reaches zero, the collector frees it, or `try_unwrap` takes it
/// out), before the value is dropped, on whichever thread that happens
/// (the background thread for automatic collections). Gives `f` back if the
/// value is dead (a handle a `Drop` moved out of collected garbage), or if
/// the calling thread is the one collecting the object right now (a
/// finalizer of its own garbage).
///
/// # Safety
/// The caller holds a strong reference to `obj`.
pub unsafe fn add_death_hook(obj: NonNull<SyncHeader>, f: SyncHook) -> Result<HookId, SyncHook> {
    // SAFETY: caller contract.
    let o = unsafe { obj.as_ref() };
    loop {
        let flags = o.flags.load(Ordering::Acquire);
        if flags & DEAD != 0 {
            return Err(f);
        }
        if flags & HOOKED != 0 {
            // Never cleared while the object lives.
            break;
        }
        if flags & LINKED == 0 {
            // Untracked: every writer of its flags uses a read-modify-write
            // (or owns the object with its count at zero, which our handle
            // rules out).
            o.flags.fetch_or(HOOKED, Ordering::Relaxed);
            break;
        }
        {
            let (_, _shard) = heap::lock_home(o);
            if o.flags.load(Ordering::Relaxed) & IN_COLLECTOR == 0 {
                // As `EXCLUSIVE` (I3): every other writer of a listed
                // object's flags holds this lock, and a collection that
                // takes the object afterwards copies the bit.
                o.flags.fetch_or(HOOKED, Ordering::Relaxed);
                break;
            }
        }
        if heap::is_collecting_thread() {
            return Err(f);
        }
        prims::wait_a_little();
    }
    // The death that takes the hook happens after our handle's release, so
    // it sees both the bit and the entry.
    Ok(crate::hooks::sync_add(obj.as_ptr().addr(), f))
}

/// Removes the death hook `id` added for the object whose header is at
/// `addr`, if it has not run yet, and returns it (dropping it is the
/// caller's business: it is user code). Safe with any address: the table
/// never dereferences it.
pub fn remove_death_hook(addr: usize, id: HookId) -> Option<SyncHook> {
    crate::hooks::sync_remove(addr, id)
}

/// A strong reference to an object of the process-wide heap, type-erased
/// (what the `sync::gc` introspection functions hand out).
pub struct ObjectRef {
    pub(crate) obj: NonNull<SyncHeader>,
}

// SAFETY: objects of the process-wide heap hold `Send + Sync` values (the
// typed layer's bound), and the counts are atomic.
unsafe impl Send for ObjectRef {}
// SAFETY: as above.
unsafe impl Sync for ObjectRef {}

impl ObjectRef {
    /// Takes a new strong reference to `obj`, if it is still alive and not
    /// claimed by the collector.
    ///
    /// # Safety
    /// `obj` is kept alive (its header readable) for the duration of the
    /// call.
    pub(crate) unsafe fn try_new(obj: NonNull<SyncHeader>) -> Option<ObjectRef> {
        // SAFETY: caller contract.
        let counted = unsafe { try_inc_strong(obj) };
        // Only once the count is taken: an `ObjectRef` releases one when
        // dropped (`then_some` would make, and drop, one on failure too).
        counted.then(|| ObjectRef { obj })
    }

    /// The header.
    pub fn header(&self) -> NonNull<SyncHeader> {
        self.obj
    }

    fn get(&self) -> &SyncHeader {
        // SAFETY: we hold a strong reference.
        unsafe { self.obj.as_ref() }
    }

    /// The value's type name.
    pub fn type_name(&self) -> &'static str {
        (self.get().vtable.type_name)()
    }

    /// The value's `TypeId`.
    pub fn type_id(&self) -> core::any::TypeId {
        (self.get().vtable.type_id)()
    }

    /// The address of the value (`id()`).
    pub fn address(&self) -> usize {
        // SAFETY: we hold a strong reference.
        unsafe { SyncHeader::value_ptr(self.obj) }.as_ptr().addr()
    }

    /// The strong count, not counting this reference.
    pub fn refcount(&self) -> usize {
        self.get().strong().saturating_sub(1)
    }

    /// The generation, `None` when frozen (or untracked).
    pub fn generation(&self) -> Option<usize> {
        let o = self.get();
        let g = o.generation();
        (o.vtable.tracked && g != FROZEN_GEN).then_some(g as usize)
    }

    /// Gives up this reference without releasing it (the caller takes it
    /// over).
    pub fn into_raw(self) -> NonNull<SyncHeader> {
        let p = self.obj;
        core::mem::forget(self);
        p
    }
}

impl Clone for ObjectRef {
    fn clone(&self) -> Self {
        // SAFETY: we hold a strong reference.
        unsafe { inc_strong(self.obj) };
        ObjectRef { obj: self.obj }
    }
}

impl Drop for ObjectRef {
    fn drop(&mut self) {
        // SAFETY: we own this strong reference.
        unsafe { dec_strong(self.obj) }
    }
}

impl fmt::Debug for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectRef")
            .field("type_name", &self.type_name())
            .field("address", &format_args!("{:#x}", self.address()))
            .field("refcount", &self.refcount())
            .field("generation", &self.generation())
            .finish()
    }
}
