//! The low-level object API the typed layer (`ouro-refobj`) is built on.
//!
//! These functions work on type-erased headers; the caller supplies the
//! layout and a vtable that match the value, which is why they are `unsafe`.

use core::alloc::Layout;
use core::ptr::NonNull;

use crate::header::{
    DEAD, EXCLUSIVE, HAS_LINKS, HOOKED, ObjHeader, SCANNING, TRACKED, UNINIT, UNREACHABLE, VTable,
};
use crate::heap::{Heap, with_heap};
pub use crate::hooks::{Hook, HookId};
use crate::list;

/// Allocates an object with one strong reference, lets `write` initialise the
/// value, and tracks the object if `tracked`. May run an automatic
/// collection first (before allocating).
///
/// # Safety
/// `boxed` is the layout of the header followed by the value (value at
/// `vtable.value_offset`); `vtable` describes the value (for tracked objects
/// it must be a sized type whose `layout` is `boxed`); `write` initialises
/// the value completely and does not panic.
#[inline]
pub unsafe fn new_object(
    boxed: Layout,
    vtable: &'static VTable,
    tracked: bool,
    write: impl FnOnce(NonNull<ObjHeader>),
) -> NonNull<ObjHeader> {
    // The value is written outside the heap closures: captured by them, it
    // would be copied from one closure's frame into the next on the way in
    // (a store-forwarding stall per allocation).
    let obj = with_heap(|heap| {
        if tracked {
            heap.count_and_collect();
        }
        // The value is written right away and `write` cannot panic, so the
        // header gets its final flags at once.
        heap.alloc_object(boxed, vtable, tracked, 1, if tracked { TRACKED } else { 0 })
    });
    // Nothing runs between the allocation and the link but the write (no
    // collection, no user code): the object is seen by the collector only
    // once linked, with its value in place.
    write(obj);
    if tracked {
        // SAFETY: `obj` has links (allocated tracked), is on no list, its
        // flags say TRACKED, and its value was just written; this thread's
        // heap allocated it and is still alive (the object counts in its
        // `refs`), so `with_heap` finds the same heap.
        with_heap(|heap| unsafe { heap.link_new(obj) });
    }
    obj
}

/// Allocates an object whose value is not written yet, with `strong` strong
/// and `weak` weak references. Dereferencing it panics until
/// [`init_object`] is called.
///
/// # Safety
/// As [`new_object`] for `boxed` and `vtable`.
pub unsafe fn new_uninit(
    boxed: Layout,
    vtable: &'static VTable,
    tracked: bool,
    strong: u32,
    weak: u32,
) -> NonNull<ObjHeader> {
    with_heap(|heap| {
        if tracked {
            heap.count_and_collect();
        }
        let obj = heap.alloc_object(boxed, vtable, tracked, strong, DEAD | UNINIT);
        // SAFETY: freshly allocated, not shared yet.
        let h = unsafe { obj.as_ref() };
        for _ in 0..weak {
            h.inc_weak();
        }
        obj
    })
}

/// Marks the value of an object from [`new_uninit`] as written and tracks it.
///
/// # Safety
/// `obj` came from [`new_uninit`] with the same `tracked`, its value is now
/// completely written, and `init_object` was not called on it before.
pub unsafe fn init_object(obj: NonNull<ObjHeader>) {
    with_heap(|heap| {
        // SAFETY: caller contract.
        let h = unsafe { obj.as_ref() };
        h.mark_init();
        if h.has(HAS_LINKS) {
            // SAFETY: caller contract: has links, value written, not tracked.
            unsafe { heap.track(obj) };
        }
    })
}

/// Sets the strong count of an object whose value is not written yet.
///
/// # Safety
/// `obj` is live; the caller accounts for the handles it creates or destroys.
pub unsafe fn set_strong(obj: NonNull<ObjHeader>, n: usize) {
    // SAFETY: caller contract.
    let h = unsafe { obj.as_ref() };
    while h.strong() < n {
        h.inc_strong();
    }
    while h.strong() > n {
        h.dec_strong();
    }
}

/// Called when a strong count reached zero.
///
/// # Safety
/// `obj` is a live object whose strong count is zero, `boxed` its header +
/// value layout, and `drop_value` drops its value in place. `drop_value`
/// may be called after this function returns (deep drops are deferred,
/// CPython's trashcan), so it must own what it uses (the handle's pointer);
/// it must fit in two words.
pub unsafe fn release(obj: NonNull<ObjHeader>, boxed: Layout, drop_value: impl FnOnce()) {
    let unused = with_heap(|heap| {
        // SAFETY: forwarded contract.
        unsafe { heap.release(obj, boxed, drop_value) };
        heap.refs.get() == 0
    });
    if unused {
        crate::heap::reap();
    }
}

/// Called when a weak count reached zero.
///
/// # Safety
/// `obj` is a live object whose weak count is zero, `boxed` its layout.
pub unsafe fn release_weak(obj: NonNull<ObjHeader>, boxed: Layout) {
    // SAFETY: forwarded contract.
    with_heap(|heap| unsafe { heap.release_weak(obj, boxed) });
    crate::heap::reap();
}

/// Marks that `&mut` access to the value was handed out (`Gc::get_mut`): the
/// collector will not trace it while the handle stays unique.
///
/// # Safety
/// `obj` is live.
pub unsafe fn mark_exclusive(obj: NonNull<ObjHeader>) {
    // SAFETY: caller contract.
    unsafe { obj.as_ref() }.set(EXCLUSIVE)
}

/// Whether the collector currently holds the object (it must not be taken
/// apart by `try_unwrap`).
///
/// # Safety
/// `obj` is live.
pub unsafe fn is_held_by_collector(obj: NonNull<ObjHeader>) -> bool {
    // SAFETY: caller contract.
    unsafe { obj.as_ref() }.flags() & (SCANNING | UNREACHABLE) != 0
}

/// Takes a live object with a single strong reference apart for
/// `try_unwrap`: unlinks it and marks its value dead, so the caller can move
/// the value out. The caller then calls [`finish_unwrap`].
///
/// # Safety
/// `obj` is live, its value is live, the strong count is 1 and the collector
/// does not hold it ([`is_held_by_collector`] is false).
pub unsafe fn begin_unwrap(obj: NonNull<ObjHeader>) {
    with_heap(|heap: &Heap| {
        // SAFETY: caller contract.
        let h = unsafe { obj.as_ref() };
        if h.has(TRACKED) {
            // SAFETY: tracked, not in a collection: on a well-formed list.
            unsafe { list::unlink(ObjHeader::links(obj)) };
            h.clear(TRACKED);
            let c = &heap.shell.gens[0].count;
            c.set(c.get().wrapping_sub(1));
        }
        h.dec_strong();
        h.set(crate::header::DEAD);
    })
}

/// Frees an object taken apart by [`begin_unwrap`] once its value has been
/// moved out, unless weak handles remain (the last one frees it).
///
/// # Safety
/// As [`begin_unwrap`], called once after it.
pub unsafe fn finish_unwrap(obj: NonNull<ObjHeader>, boxed: Layout) {
    let hooks = with_heap(|heap| {
        // SAFETY: caller contract: still allocated.
        let h = unsafe { obj.as_ref() };
        // The value left the heap: its death hooks run (taken before the
        // memory can be freed).
        let hooks = if h.has(HOOKED) {
            // SAFETY: allocated, HOOKED.
            unsafe { heap.hooks.take(obj) }
        } else {
            Vec::new()
        };
        // SAFETY: caller contract: no handle, value moved out, on no list.
        if h.weak() == 0 {
            // SAFETY: as above.
            unsafe { heap.free(obj, boxed) };
        }
        hooks
    });
    let p = if hooks.is_empty() {
        None
    } else {
        with_heap(|heap| heap.drop_nested(|| crate::hooks::run_all(hooks)))
    };
    crate::heap::reap();
    if let Some(p) = p {
        std::panic::resume_unwind(p);
    }
}

/// Adds a death hook: `f` runs once, when the value of `obj` dies (its
/// count reaches zero, the collector frees it, or `try_unwrap` takes it
/// out), before the value is dropped. Gives `f` back if the value is not
/// alive (already dropped by the collector, or not written yet).
///
/// # Safety
/// `obj` is an object of this thread's heap and the caller holds a handle
/// to it.
pub unsafe fn add_death_hook(obj: NonNull<ObjHeader>, f: Hook) -> Result<HookId, Hook> {
    // SAFETY: forwarded contract.
    with_heap(|heap| unsafe { heap.hooks.add(obj, f) })
}

/// Removes the death hook `id` added for the object whose header is at
/// `addr`, if it has not run yet, and returns it (dropping it is the
/// caller's business: it is user code). Safe with any address: an entry
/// exists only while its object's value is alive.
pub fn remove_death_hook(addr: usize, id: HookId) -> Option<Hook> {
    with_heap(|heap| heap.hooks.remove(addr, id))
}

/// Drops one strong reference to a tracked object, freeing it through its
/// vtable if it was the last.
///
/// # Safety
/// `obj` is a live tracked object and the caller owns one counted strong
/// reference to it.
pub unsafe fn release_ref(obj: NonNull<ObjHeader>) {
    // SAFETY: caller contract.
    let h = unsafe { obj.as_ref() };
    if h.dec_strong() == 0 {
        let vt = h.vtable();
        // SAFETY: tracked objects are sized or tracked slices, which
        // `boxed_layout` measures; the closure drops the value once.
        unsafe {
            release(obj, ObjHeader::boxed_layout(obj), move || {
                (vt.drop_value)(obj)
            })
        }
    }
}

/// Takes one strong reference to each tracked object of generation `g` (all
/// generations for `None`; the frozen ones with `frozen`), with the
/// generation it is in (`None` for frozen objects). Runs no user code.
pub fn snapshot(g: Option<usize>, frozen: bool) -> Vec<(NonNull<ObjHeader>, Option<usize>)> {
    with_heap(|heap| {
        let mut out = Vec::new();
        let mut take = |head: list::Link, g: Option<usize>| {
            // SAFETY: generation lists are well formed; taking a reference
            // runs no user code, so the list does not change during the walk.
            unsafe {
                let mut cur = list::next(head);
                while cur != head {
                    let obj = crate::header::GcLinks::header(cur);
                    // Never a new reference to an object whose `&mut` from
                    // `Gc::get_mut` may be alive: the collector relies on
                    // such objects having exactly one handle.
                    // Nor to one whose count is zero: the collector (or a
                    // drop in progress) is about to release it.
                    if !obj.as_ref().has(EXCLUSIVE) && obj.as_ref().strong() > 0 {
                        obj.as_ref().inc_strong();
                        out.push((obj, g));
                    }
                    cur = list::next(cur);
                }
            }
        };
        match g {
            Some(g) => {
                assert!(
                    g < crate::GENERATIONS,
                    "ouro::gc::get_objects: generation must be 0, 1 or 2 (or None for all three), got {g}"
                );
                take(heap.gen_head(g), Some(g))
            }
            None => (0..crate::GENERATIONS).for_each(|g| take(heap.gen_head(g), Some(g))),
        }
        if frozen {
            take(list::node(&heap.permanent), None);
        }
        out
    })
}

/// The number of objects of this thread's heap whose memory is not freed
/// yet: live ones, and dead ones whose header a handle or weak handle still
/// holds. Walks the heap's pool: for tests and leak checks, not hot paths.
pub fn live_objects() -> usize {
    with_heap(|heap| heap.live_objects())
}

/// The objects kept by `DebugFlags::SAVEALL`, each with a new strong
/// reference.
pub fn garbage() -> Vec<NonNull<ObjHeader>> {
    with_heap(|heap| {
        let g = heap.garbage.borrow();
        for o in g.iter() {
            // SAFETY: saved objects are live (the list holds a reference).
            unsafe { o.as_ref() }.inc_strong();
        }
        g.clone()
    })
}

/// The generation `obj` is in (`None` if frozen or not tracked). Walks the
/// lists: a debugging aid.
///
/// # Safety
/// `obj` is live.
pub unsafe fn generation_of(obj: NonNull<ObjHeader>) -> Option<usize> {
    // SAFETY: caller contract.
    if !unsafe { obj.as_ref() }.is_tracked() {
        return None;
    }
    // SAFETY: tracked objects have links.
    let target = unsafe { ObjHeader::links(obj) };
    with_heap(|heap| {
        (0..crate::GENERATIONS).find(|&g| {
            let head = heap.gen_head(g);
            // SAFETY: the generation lists are well formed.
            unsafe {
                let mut cur = list::next(head);
                while cur != head {
                    if cur == target {
                        return true;
                    }
                    cur = list::next(cur);
                }
            }
            false
        })
    })
}

/// Calls `f` with each tracked object `obj`'s `trace` reports (the edges the
/// collector would count). Automatic collections are held off meanwhile.
///
/// # Safety
/// `obj` is a live tracked object kept alive by the caller.
pub unsafe fn referents(obj: NonNull<ObjHeader>, f: &mut dyn FnMut(NonNull<ObjHeader>)) {
    // SAFETY: caller contract.
    let h = unsafe { obj.as_ref() };
    if !h.is_live() || h.has(EXCLUSIVE) {
        // Not initialised, dead, being scanned, or possibly `&mut` borrowed
        // through `Gc::get_mut`.
        return;
    }
    let held_off = with_heap(|heap| heap.collecting.replace(true));
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            let v = self.0;
            with_heap(|heap| heap.collecting.set(v));
        }
    }
    let _restore = Restore(held_off);
    let scratch = bumpalo::Bump::new();
    let mut v = crate::Visitor::new(crate::visitor::Mode::Collect(f), Some(&scratch));
    let vt = h.vtable();
    // SAFETY: live, initialised tracked object.
    v.with_object(obj, |v| unsafe { (vt.trace)(obj, v) });
}

/// Marks the value of `obj` as pinned (`Gc::pin`): from now on
/// [`is_pinned`] is true and the typed layer neither moves the value out
/// nor hands out `&mut` to it.
///
/// # Safety
/// `obj` is live.
pub unsafe fn pin(obj: NonNull<ObjHeader>) {
    // SAFETY: caller contract.
    unsafe { obj.as_ref() }.set(crate::header::PINNED)
}

/// Whether the value of `obj` is pinned (see [`pin`]).
///
/// # Safety
/// `obj` is live.
#[inline]
pub unsafe fn is_pinned(obj: NonNull<ObjHeader>) -> bool {
    // SAFETY: caller contract.
    unsafe { obj.as_ref() }.is_pinned()
}

/// Allocates an object with one strong reference whose value the caller
/// writes later through its handle (`Gc::new_uninit`): the header says the
/// value is live (it is a `MaybeUninit` until then), and the object has
/// links if `tracked` but is on no list, so the collector never reads it.
/// [`link_object`] tracks it once the value is written. May run an
/// automatic collection first.
///
/// # Safety
/// As [`new_object`] for `boxed` and `vtable`; until `link_object`, the
/// value is only reached as a `MaybeUninit`, whose drop does nothing.
pub unsafe fn new_unlinked(
    boxed: Layout,
    vtable: &'static VTable,
    tracked: bool,
) -> NonNull<ObjHeader> {
    with_heap(|heap| {
        if tracked {
            heap.count_and_collect();
        }
        heap.alloc_object(boxed, vtable, tracked, 1, 0)
    })
}

/// Tracks an object from [`new_unlinked`] whose value is now written, if it
/// has links and is not tracked yet (a no-op otherwise).
///
/// # Safety
/// `obj` came from [`new_unlinked`], is live, and its value is completely
/// written.
pub unsafe fn link_object(obj: NonNull<ObjHeader>) {
    // SAFETY: caller contract.
    let h = unsafe { obj.as_ref() };
    if h.has(HAS_LINKS) && !h.has(TRACKED) && h.is_live() {
        // SAFETY: has links, value written, on no list; `track` counts it
        // in generation 0 (it was counted by `count_and_collect`).
        with_heap(|heap| unsafe { heap.track(obj) });
    }
}
