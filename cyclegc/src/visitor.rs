//! The visitor handed to `Trace::trace`, and how it refuses edges it cannot
//! prove.
//!
//! `Trace` is a safe trait, so the collector does not believe a reported
//! edge just because `trace` reported it. An edge counts only if the handle
//! that reports it lives in memory the traced object owns:
//!
//! - the object's own value (the base *frame*), or
//! - memory owned by a container that itself lives in owned memory (a `Vec`'s
//!   buffer, a `Box`'s pointee, a map's entries). Only ouro's own container
//!   impls open such frames (through `unsafe` hooks), one per element.
//!
//! Within a frame every handle counts once: the frame keeps a bitmap of the
//! words already reported, so visiting the same field twice counts it once.
//! A handle in a global, on the stack, or inside memory shared with other
//! owners (`Rc`) is ignored: the object it points to then looks referenced
//! from outside, which at worst leaks. Counting too few edges is the safe
//! direction; counting too many could make the collector drop a value that is
//! still borrowed, so the rules exist to make that impossible.
//!
//! Around the visitor, the collector adds: a handle cloned by user code while
//! a scan runs counts on both sides (edges are compared with the strong count
//! at decision time, not a snapshot); objects being scanned cannot be
//! dereferenced from `trace`, so one object's `trace` cannot reach into
//! another's value and move handles around.
//!
//! # Only structural `trace`s are counted
//!
//! The rules above bound what one report can count, not what user code does
//! between two reports. A `trace` is safe code: it can report a handle,
//! move it through a `RefCell::borrow_mut` (or a `Mutex::lock`) to another
//! field of its own value, and report it again. Both reports are of a
//! handle in owned memory, at two addresses, so one handle counts twice;
//! with a reference into that object kept alive across the collection by
//! the caller, the collector would then drop a value that is still
//! borrowed. Documenting this does not make it sound, so the collectors
//! subtract only the edges of *structural* impls (`Trace::structural`, a
//! bit of the vtable that only the collector reads): those derived by
//! `#[derive(Trace)]`, ouro's own, and hand-written ones that promise it
//! with `unsafe`. Such a `trace` cannot count a handle twice:
//!
//! - it runs no user code. A derived `trace` calls `trace` on each field and
//!   nothing else, and it is structural only if every field's impl is; ouro's
//!   impls call `trace` on owned fields and elements, borrow a `RefCell`
//!   with `try_borrow` and take a lock with `try_lock` (neither runs user
//!   code; a busy one is skipped), and a handle's own impl reports the
//!   handle without reading its target. So nothing moves, clones or drops a
//!   handle while the edges are subtracted — no other code runs at all then
//!   (the objects of other types are not traced), and another thread cannot
//!   touch these handles (`Gc` is `!Send`, and a value holding one is
//!   `!Sync`);
//! - so the subtraction sees each handle where it was when the collection
//!   began, and counts it at most once: within one object the frame bitmap
//!   rejects a second report of the same address, and two objects never
//!   report the same address (a frame is an object's own value or memory its
//!   containers uniquely own).
//!
//! The edges of any other `trace` count as references from outside (they are
//! not subtracted), which can only make objects look *more* reachable. Its
//! `trace` still runs where more reachable is the safe direction: to
//! propagate reachability from the survivors (a lie there keeps more alive)
//! and for introspection. A cycle through such an object is therefore not
//! collected; it is *reported*, never leaked silently: when a collection
//! skipped such edges, a second trial deletion over its survivors subtracts
//! every edge, and what would have been unreachable is counted as
//! uncollectable and named in a warning (see `collect::report_uncollectable`).
//! That pass frees nothing, so a lying `trace` can only make the report
//! wrong.

use core::fmt;
use core::mem::MaybeUninit;
use core::ptr::NonNull;

use crate::collect;
use crate::header::ObjHeader;

/// How deeply containers may nest inside one object before the visitor stops
/// accepting edges (further edges are ignored, which is conservative).
const MAX_FRAMES: usize = 48;
/// Frames up to this many bytes use the inline bitmap (one bit per word).
const INLINE_BITS_BYTES: usize = 64 * 8;

#[derive(Clone, Copy)]
struct Frame {
    start: usize,
    /// Bytes from `start`.
    len: usize,
    bits: u64,
    /// Bitmap for frames larger than `INLINE_BITS_BYTES`, from the scratch
    /// arena (null when not needed, or when it could not be had).
    big: *mut u64,
}

impl Frame {
    /// No memory: every address is outside.
    const EMPTY: Frame = Frame {
        start: 0,
        len: 0,
        bits: 0,
        big: core::ptr::null_mut(),
    };
}

/// `core::any::type_name` of a type, as a function (a trait object's
/// concrete type is only known through such a pointer).
pub(crate) type TypeName = fn() -> &'static str;

/// What a traversal does with each accepted edge.
pub(crate) enum Mode<'a> {
    /// Count the edge against the target's `gc_refs` (trial deletion).
    Subtract,
    /// Mark the target reachable (and move it back from the unreachable list).
    Reachable(&'a collect::Scan),
    /// Hand the target to a callback (introspection).
    Collect(&'a mut dyn FnMut(NonNull<ObjHeader>)),
    /// A traversal of the process-wide heap (`sync`): edges of
    /// `sync::Gc` handles go to the sink, thread-local handles are ignored.
    Sync(&'a mut dyn SyncSink),
}

/// What a traversal of the process-wide heap does with what it finds.
pub(crate) trait SyncSink {
    /// An accepted edge to `target` (alive for the duration of the call).
    fn edge(&mut self, target: NonNull<crate::sync::SyncHeader>);
    /// A lock inside the traced value could not be taken.
    fn lock_busy(&mut self) {}
    /// The traced value holds a value (a trait object's) whose `trace` is
    /// not structural, of type `type_name`: the traversal traces it only
    /// when it keeps no lock guards (see `Visitor::enter_unstructural`).
    fn unstructural(&mut self, type_name: fn() -> &'static str) {
        let _ = type_name;
    }
}

/// A lock guard kept by a traversal, type-erased in three words (a
/// verification keeps one per lock of every candidate, so the size counts):
/// the guard itself when it fits in two words (std's guards do), else a
/// pointer to it (in the scratch arena, or boxed).
pub(crate) struct KeptGuard {
    inline: MaybeUninit<[usize; 2]>,
    /// Drops what `inline` holds, given a pointer to `inline`.
    drop: unsafe fn(*mut u8),
}

impl Drop for KeptGuard {
    /// Drops the guard (unlocks).
    fn drop(&mut self) {
        // SAFETY: `inline` holds what `drop` was made for (see
        // `Visitor::keep_guard`); it is dropped once, with `self`.
        unsafe { (self.drop)(self.inline.as_mut_ptr().cast::<u8>()) }
    }
}

/// # Safety
/// `p` holds a pointer that came from `Box::<G>::into_raw`, not used again.
unsafe fn drop_boxed<G>(p: *mut u8) {
    // SAFETY: caller contract.
    drop(unsafe { Box::from_raw(p.cast::<*mut G>().read()) })
}

/// # Safety
/// `p` holds a pointer to a live `G` (in the scratch arena) that is dropped
/// once and never used again.
unsafe fn drop_pointed<G>(p: *mut u8) {
    // SAFETY: caller contract.
    unsafe { core::ptr::drop_in_place(p.cast::<*mut G>().read()) }
}

/// # Safety
/// `p` points to a live `G` that is dropped once and never used again.
unsafe fn drop_erased<G>(p: *mut u8) {
    // SAFETY: caller contract.
    unsafe { core::ptr::drop_in_place(p.cast::<G>()) }
}

/// Receives the edges of an object graph from `Trace::trace`.
///
/// Users never build one; they pass it on to the `trace` of each field. See
/// the module documentation of `ouro_cyclegc::visitor` for why some reported
/// edges are ignored.
pub struct Visitor<'a> {
    mode: Mode<'a>,
    /// Where lock guards are kept until the traversal's owner releases them
    /// (the concurrent collector's verification); `None`: dropped at once.
    guards: Option<&'a mut Vec<KeptGuard>>,
    scratch: Option<&'a bumpalo::Bump>,
    /// Open frames: `top` is the innermost one (an empty frame while
    /// `depth` is 0), `frames[0..depth - 1]` the outer ones, outermost
    /// first; the rest of `frames` is never read. The innermost frame is
    /// kept apart, where every reported handle is checked against it
    /// without an index.
    depth: usize,
    top: Frame,
    frames: [MaybeUninit<Frame>; MAX_FRAMES],
    /// With `Mode::Subtract`: also trace the values whose `trace` is not
    /// structural (the report, which frees nothing).
    trust_all: bool,
    /// The type of the last value met whose `trace` is not structural
    /// (`enter_unstructural`), until taken.
    unstructural: Option<fn() -> &'static str>,
    /// A handle or container was reported from memory the traced object
    /// does not own (the edge was ignored), until taken.
    rejected: bool,
}

impl fmt::Debug for Visitor<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match self.mode {
            Mode::Subtract => "subtract",
            Mode::Reachable(_) => "reachable",
            Mode::Collect(_) => "collect",
            Mode::Sync(_) => "sync",
        };
        f.debug_struct("Visitor")
            .field("mode", &mode)
            .field("depth", &self.depth)
            .finish()
    }
}

impl<'a> Visitor<'a> {
    pub(crate) fn new(mode: Mode<'a>, scratch: Option<&'a bumpalo::Bump>) -> Self {
        Visitor {
            mode,
            guards: None,
            scratch,
            depth: 0,
            top: Frame::EMPTY,
            frames: [const { MaybeUninit::uninit() }; MAX_FRAMES],
            trust_all: false,
            unstructural: None,
            rejected: false,
        }
    }

    /// A traversal of the process-wide heap that reports to `sink`, and
    /// keeps the lock guards it takes in `guards` if given.
    pub(crate) fn new_sync(
        sink: &'a mut dyn SyncSink,
        guards: Option<&'a mut Vec<KeptGuard>>,
        scratch: &'a bumpalo::Bump,
    ) -> Self {
        Visitor {
            mode: Mode::Sync(sink),
            guards,
            scratch: Some(scratch),
            depth: 0,
            top: Frame::EMPTY,
            frames: [const { MaybeUninit::uninit() }; MAX_FRAMES],
            trust_all: false,
            unstructural: None,
            rejected: false,
        }
    }

    /// With `Mode::Subtract`: trace every value, structural or not.
    pub(crate) fn set_trust_all(&mut self) {
        self.trust_all = true;
    }

    /// The type of the last value met whose `trace` is not structural
    /// since the last call, if any.
    #[inline(always)]
    pub(crate) fn take_unstructural(&mut self) -> Option<fn() -> &'static str> {
        // Read before written: the common answer costs no store.
        if self.unstructural.is_some() {
            self.unstructural.take()
        } else {
            None
        }
    }

    /// Whether an edge was ignored because it was reported from memory the
    /// traced object does not own, since the last call.
    #[inline(always)]
    pub(crate) fn take_rejected(&mut self) -> bool {
        // As `take_unstructural`.
        self.rejected && core::mem::replace(&mut self.rejected, false)
    }

    /// Called by ouro's containers that hold a value whose type is only
    /// known through a vtable (`Box<dyn Trait>`), before they trace one
    /// whose `trace` is not structural (`type_name` is its type): returns
    /// whether to trace it. Not where the collector may run no user code
    /// (the trial deletion, which then counts the value's edges as
    /// references from outside and reports what they keep alive) nor while
    /// the concurrent collector keeps lock guards; everywhere else (finding
    /// what is reachable, introspection, the report) it is traced.
    #[doc(hidden)]
    pub fn enter_unstructural(&mut self, type_name: fn() -> &'static str) -> bool {
        self.unstructural = Some(type_name);
        match &mut self.mode {
            Mode::Subtract => self.trust_all,
            Mode::Reachable(_) | Mode::Collect(_) => true,
            Mode::Sync(sink) => {
                sink.unstructural(type_name);
                self.guards.is_none()
            }
        }
    }

    /// Runs `f` with the value of `obj` as the only owned memory.
    #[inline(always)]
    pub(crate) fn with_object(&mut self, obj: NonNull<ObjHeader>, f: impl FnOnce(&mut Self)) {
        // SAFETY: callers pass live headers (objects the collector protects or
        // a handle keeps alive).
        let vt = unsafe { obj.as_ref() }.vtable();
        let start = obj.as_ptr().addr() + vt.value_offset;
        // SAFETY: live tracked objects are sized or tracked slices.
        let end = obj.as_ptr().addr() + unsafe { ObjHeader::boxed_layout(obj) }.size();
        // (`push` replaces `top` when no frame is open.)
        self.depth = 0;
        self.push(start, end);
        f(self);
        self.close_frames();
    }

    /// Runs `f` with the value of the process-wide heap object `obj` as the
    /// only owned memory.
    pub(crate) fn with_sync_object(
        &mut self,
        obj: NonNull<crate::sync::SyncHeader>,
        f: impl FnOnce(&mut Self),
    ) {
        // SAFETY: callers pass live headers.
        let vt = unsafe { obj.as_ref() }.vtable();
        let start = obj.as_ptr().addr() + vt.value_offset;
        // SAFETY: as above.
        let end =
            obj.as_ptr().addr() + unsafe { crate::sync::SyncHeader::boxed_layout(obj) }.size();
        // (`push` replaces `top` when no frame is open.)
        self.depth = 0;
        self.push(start, end);
        f(self);
        self.close_frames();
    }

    /// Closes every frame.
    #[inline(always)]
    fn close_frames(&mut self) {
        self.depth = 0;
        // An empty frame: every address is outside.
        self.top.len = 0;
    }

    /// Whether `addr` lies inside one of the currently open owned frames.
    #[inline]
    fn in_owned_frames(&self, addr: usize) -> bool {
        let inside = |f: &Frame| addr.wrapping_sub(f.start) < f.len;
        self.depth > 0
            && (inside(&self.top)
                || (0..self.depth - 1).any(|i| {
                    // SAFETY: frames below `depth - 1` were written by `push`.
                    inside(unsafe { self.frames[i].assume_init_ref() })
                }))
    }

    /// Whether a guard of a lock whose data is at `data` may be kept until
    /// the traversal's owner releases it: only when the traversal asks for
    /// that (the concurrent collector's verification), and only for a lock
    /// inside memory the traced object owns, which outlives the hold (the
    /// object is owned by the collector, and every enclosing container is
    /// itself held or immutable). A lock anywhere else (a local of `trace`)
    /// is released at once.
    fn may_keep<T: ?Sized>(&self, data: *const T) -> bool {
        if self.guards.is_none() {
            return false;
        }
        // SAFETY: `data` points to the value a live guard protects (the
        // callers' contract).
        let size = core::mem::size_of_val(unsafe { &*data });
        size > 0 && self.in_owned_frames(data.cast::<u8>().addr())
    }

    /// Moves `guard` into the traversal's kept guards.
    fn keep_guard<G>(&mut self, guard: G) {
        let mut kept = KeptGuard {
            inline: MaybeUninit::uninit(),
            drop: drop_erased::<G>,
        };
        let slot = kept.inline.as_mut_ptr();
        if core::mem::size_of::<G>() <= core::mem::size_of::<[usize; 2]>()
            && core::mem::align_of::<G>() <= core::mem::align_of::<usize>()
        {
            // SAFETY: the buffer is large and aligned enough (checked).
            unsafe { slot.cast::<G>().write(guard) };
        } else if let Some(bump) = self.scratch {
            // Not reached with std's guards (two words), kept for any other.
            let p: *mut G = bump.alloc(guard);
            // SAFETY: a pointer fits in the buffer.
            unsafe { slot.cast::<*mut G>().write(p) };
            kept.drop = drop_pointed::<G>;
        } else {
            let p = Box::into_raw(Box::new(guard));
            // SAFETY: a pointer fits in the buffer.
            unsafe { slot.cast::<*mut G>().write(p) };
            kept.drop = drop_boxed::<G>;
        }
        if let Some(guards) = &mut self.guards {
            guards.push(kept);
        }
    }

    /// Called by ouro's `Mutex` impl with the guard it took: traces the
    /// guarded value with `trace`. While the concurrent collector verifies
    /// its candidates the guard is kept (taken over before the value is
    /// traced, so that guards taken inside are released first, also when
    /// `trace` panics); otherwise it is dropped when `trace` returns or
    /// panics, without poisoning the mutex.
    #[doc(hidden)]
    #[inline]
    pub fn trace_mutex_guard<T: ?Sized>(
        &mut self,
        guard: std::sync::MutexGuard<'_, T>,
        trace: impl FnOnce(&T, &mut Self),
    ) {
        let data: *const T = &*guard;
        if self.may_keep(data) {
            self.keep_guard(guard);
            // SAFETY: the kept guard holds the lock until the traversal's
            // owner releases it, after this call; the mutex lives in owned
            // memory that outlives the hold (`may_keep`).
            trace(unsafe { &*data }, self);
        } else {
            // A panic of `trace` is held until the guard is dropped, then
            // resumed: a guard dropped while unwinding would poison the
            // mutex, which the user never took. (Kept guards are dropped by
            // their owner after it caught the panic.)
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| trace(&guard, self)));
            drop(guard);
            if let Err(p) = r {
                std::panic::resume_unwind(p);
            }
        }
    }

    /// Called by ouro's `RwLock` impl with the read guard it took: see
    /// [`trace_mutex_guard`](Self::trace_mutex_guard).
    #[doc(hidden)]
    #[inline]
    pub fn trace_read_guard<T: ?Sized>(
        &mut self,
        guard: std::sync::RwLockReadGuard<'_, T>,
        trace: impl FnOnce(&T, &mut Self),
    ) {
        let data: *const T = &*guard;
        if self.may_keep(data) {
            self.keep_guard(guard);
            // SAFETY: as in `trace_mutex_guard`.
            trace(unsafe { &*data }, self);
        } else {
            // (A read guard dropped while unwinding does not poison.)
            trace(&guard, self);
        }
    }

    /// Called by ouro's lock impls when a lock is busy: its contents are not
    /// seen by this traversal.
    #[doc(hidden)]
    pub fn lock_busy(&mut self) {
        if let Mode::Sync(sink) = &mut self.mode {
            sink.lock_busy();
        }
    }

    /// Reports a `sync::Gc` handle at `handle` pointing to `target`.
    ///
    /// # Safety
    /// `handle` is the address of a live handle and `target` the header it
    /// points to (kept alive by that handle for the duration of the call).
    #[doc(hidden)]
    #[inline]
    pub unsafe fn visit_sync_handle(
        &mut self,
        handle: *const (),
        target: NonNull<crate::sync::SyncHeader>,
    ) {
        if !matches!(self.mode, Mode::Sync(_)) || !self.claim_addr(handle.addr()) {
            return;
        }
        if let Mode::Sync(sink) = &mut self.mode {
            sink.edge(target);
        }
    }

    fn push(&mut self, start: usize, end: usize) -> bool {
        if self.depth >= MAX_FRAMES {
            return false;
        }
        let mut big = core::ptr::null_mut();
        let mut len = end - start;
        if len > INLINE_BITS_BYTES {
            let words = len.div_ceil(8).div_ceil(64);
            if let Some(bump) = self.scratch {
                match bump.try_alloc_slice_fill_copy(words, 0u64) {
                    Ok(s) => big = s.as_mut_ptr(),
                    Err(_) => return false,
                }
            } else {
                // Without scratch memory, only the first 64 words are
                // owned (`claim_addr` relies on it: a frame without `big`
                // is at most `INLINE_BITS_BYTES` long).
                len = INLINE_BITS_BYTES;
            }
        }
        if self.depth > 0 {
            self.frames[self.depth - 1].write(self.top);
        }
        self.top = Frame {
            start,
            len,
            bits: 0,
            big,
        };
        self.depth += 1;
        true
    }

    /// Closes the innermost frame (opened by a successful `push`), making
    /// the one around it innermost again, its claimed words as they were.
    #[inline]
    fn pop(&mut self) {
        self.depth -= 1;
        self.top = if self.depth > 0 {
            // SAFETY: `push` saved the frame around the one it opened here.
            unsafe { self.frames[self.depth - 1].assume_init_read() }
        } else {
            Frame::EMPTY
        };
    }

    /// Marks the word at `addr` as reported in the innermost frame; `false`
    /// when it is outside that frame (noted in `rejected`), not a whole
    /// aligned word inside it, or was reported already.
    #[inline(always)]
    fn claim_addr(&mut self, addr: usize) -> bool {
        let f = &mut self.top;
        // One compare for both checks: rotating the offset right by 3 moves
        // any misaligned low bits to the top, so a misaligned offset gives
        // a word index far above any frame's word count. (A word that
        // starts inside the frame but ends past it is not accepted either:
        // no handle or container lies there.)
        let word = addr.wrapping_sub(f.start).rotate_right(3);
        if word >= f.len / 8 {
            // (Outside every frame, as when no frame is open, nothing is
            // owned: no edge counts, and none is rejected either.)
            if self.depth != 0 {
                self.rejected = true;
            }
            return false;
        }
        if f.big.is_null() {
            // A frame without `big` is at most 64 words long (`push`), so
            // `word < 64`.
            let bit = 1u64 << (word % 64);
            if f.bits & bit != 0 {
                return false;
            }
            f.bits |= bit;
            true
        } else {
            // SAFETY: `big` holds `ceil(len / 8 / 64)` words (see `push`), and
            // `word < len / 8`.
            let slot = unsafe { &mut *f.big.add(word / 64) };
            let bit = 1u64 << (word % 64);
            if *slot & bit != 0 {
                return false;
            }
            *slot |= bit;
            true
        }
    }

    /// Claims a container that lives at `addr` inside the innermost owned
    /// frame; returns `false` if it is not in owned memory or was claimed
    /// already in this traversal of the object. ouro's container impls call
    /// this before opening frames for their elements.
    #[doc(hidden)]
    pub fn claim_container<T: ?Sized>(&mut self, container: &T) -> bool {
        self.claim_addr((container as *const T).cast::<u8>().addr())
    }

    /// Traces `elem` with its memory as the innermost owned frame.
    ///
    /// # Safety
    /// `elem` lives in memory uniquely owned by a container that
    /// [`claim_container`](Self::claim_container) accepted during this same
    /// `trace` call (its buffer, pointee or entry), and stays there for the
    /// duration of the call.
    #[doc(hidden)]
    pub unsafe fn trace_owned<T: ?Sized>(&mut self, elem: &T, trace: impl FnOnce(&T, &mut Self)) {
        let start = (elem as *const T).cast::<u8>().addr();
        let end = start + core::mem::size_of_val(elem);
        if end == start {
            return;
        }
        if self.push(start, end) {
            trace(elem, self);
            self.pop();
        }
    }

    /// Reports the handle at `handle` pointing to `target`.
    ///
    /// # Safety
    /// `handle` is the address of a live handle and `target` the header it
    /// points to (kept alive by that handle for the duration of the call).
    #[doc(hidden)]
    #[inline(always)]
    pub unsafe fn visit_handle(&mut self, handle: *const (), target: NonNull<ObjHeader>) {
        if matches!(self.mode, Mode::Sync(_)) || !self.claim_addr(handle.addr()) {
            return;
        }
        // The collection's few instructions go inline, in every `trace`;
        // introspection is a call.
        match &self.mode {
            Mode::Subtract => collect::subtract_edge(target),
            Mode::Reachable(scan) => collect::reach_edge(scan, target),
            // SAFETY: forwarded from the caller.
            _ => unsafe { self.accepted_edge(target) },
        }
    }

    /// An accepted edge to `target` (introspection).
    ///
    /// # Safety
    /// As [`visit_handle`](Self::visit_handle).
    #[inline(never)]
    unsafe fn accepted_edge(&mut self, target: NonNull<ObjHeader>) {
        if let Mode::Collect(f) = &mut self.mode {
            // SAFETY: forwarded from the caller.
            let h = unsafe { target.as_ref() };
            // Exclusive objects are left out: see `raw::snapshot`.
            if h.is_tracked() && !h.has(crate::header::EXCLUSIVE) {
                f(target)
            }
        }
    }
}
