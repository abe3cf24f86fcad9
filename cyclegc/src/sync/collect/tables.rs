//! The collector's tables: one row per taken object, in the index space
//! `take` lays out; the per-object states; the primitives every step
//! uses to reach a collector-owned object.

use super::*;

/// Per-object state in the collector's tables (`Tables::state`), from
/// `take` (everything `Unknown`) to the give-back (`Given`) or the end of
/// step 6 (`Ended`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub(super) enum State {
    /// Not decided: a root of the guess, or not looked at yet.
    Unknown,
    /// Reached from a root, or a candidate put back (a failed verification
    /// or a withdrawn claim): a survivor.
    Reachable,
    /// A candidate of the guess (step 2).
    Candidate,
    /// A candidate that failed verification (step 3).
    Failed,
    /// Verified garbage (G'), claimed or about to be (step 4).
    Garbage,
    /// Destroyed: not given back.
    Gone,
    /// Given back already (step 7).
    Given,
    /// Destroyed, and its claim ended (freed, or left to a handle a `Drop`
    /// moved out).
    Ended,
}
static_assertions::assert_eq_size!(State, u8);

/// A `u32` index of one of the tables' index spaces: the compiler keeps
/// them apart.
macro_rules! index_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Debug)]
        #[repr(transparent)]
        pub(super) struct $name(u32);

        impl $name {
            #[inline(always)]
            pub(super) fn new(i: usize) -> Self {
                debug_assert!(u32::try_from(i).is_ok(), "index {i} over u32");
                Self(i as u32)
            }

            #[inline(always)]
            pub(super) fn get(self) -> usize {
                self.0 as usize
            }
        }
    };
}

index_type!(
    /// A table index: a place in `objs` and in every per-object vector
    /// (`refs`, `state`, `words`, `adj_start`, ...), fixed by `take`.
    Ix
);
// The per-object vectors are indexed by `Ix` directly (`t.state[c]`); the
// other spaces convert explicitly (`snap[k.get()]`), so that a position used
// as a table index stands out.
impl<T> core::ops::Index<Ix> for [T] {
    type Output = T;
    #[inline(always)]
    fn index(&self, i: Ix) -> &T {
        &self[i.get()]
    }
}

impl<T> core::ops::IndexMut<Ix> for [T] {
    #[inline(always)]
    fn index_mut(&mut self, i: Ix) -> &mut T {
        &mut self[i.get()]
    }
}

impl<T> core::ops::Index<Ix> for Vec<T> {
    type Output = T;
    #[inline(always)]
    fn index(&self, i: Ix) -> &T {
        &self[i.get()]
    }
}

impl<T> core::ops::IndexMut<Ix> for Vec<T> {
    #[inline(always)]
    fn index_mut(&mut self, i: Ix) -> &mut T {
        &mut self[i.get()]
    }
}

index_type!(
    /// A position in `cands`, and in the vectors kept in step with it
    /// (`snap`, `edge_start`, `guard_start`).
    Pos
);
index_type!(
    /// An index inside the current chunk of the first pass (`local_refs`,
    /// `local_mark`): the table index less the chunk's first.
    Local
);

/// The collector's tables, kept between collections so that their capacity
/// is reused (a collection allocates only when the heap has grown).
#[derive(Default)]
pub(crate) struct Tables {
    /// The heap-id bits (`HEAP_MASK`) of the heap being collected: an
    /// object with `IN_COLLECTOR` and other bits is another heap's
    /// collection's (`owned_index`).
    pub(super) heap_bits: u32,
    pub(super) objs: Vec<NonNull<SyncHeader>>,
    pub(super) refs: Vec<i64>,
    pub(super) state: Vec<State>,
    /// Edges counted by the verification, per candidate (`counted`), and
    /// their targets (`edges`, grouped by source: `edge_start`).
    pub(super) counted: Vec<u32>,
    pub(super) edges: Vec<Ix>,
    pub(super) edge_start: Vec<u32>,
    /// The global verification's candidates, in table order (what the
    /// guess left; G' again in the resurrection check). G' itself, once
    /// claimed, is listed apart (`destroy::GarbageList`).
    pub(super) cands: Vec<Ix>,
    pub(super) snap: Vec<u64>,
    /// The guess's walk (and the report's).
    pub(super) work: Vec<Ix>,
    /// The verification's failed candidates still to propagate.
    pub(super) failed: Vec<Pos>,
    pub(super) guards: Vec<KeptGuard>,
    /// Where each candidate's guards start in `guards` (by position in
    /// `cands`; one more entry at the end).
    pub(super) guard_start: Vec<u32>,
    /// Table index -> position in `cands`, built when a failure needs it.
    pub(super) pos: Vec<Pos>,
    /// The first place in `objs` of each run of a list (`take`'s layout),
    /// and the places a list left empty.
    pub(super) run_starts: Vec<usize>,
    pub(super) holes: Vec<usize>,
    /// Each object's counts word as the first pass read it (before its
    /// trace).
    pub(super) words: Vec<u64>,
    /// The current chunk's `gc_refs` and marks, by index in the chunk
    /// (after the first pass, `local_refs` is the report's, by table index:
    /// [`report`]).
    pub(super) local_refs: Vec<i64>,
    pub(super) local_mark: Vec<Mark>,
    /// The report's marks, by table index.
    pub(super) report_mark: Vec<report::Reach>,
    pub(super) local_work: Vec<Local>,
    /// The current chunk's candidates, by index in the chunk.
    pub(super) chunk_cands: Vec<Local>,
    /// `refs` of the current chunk before a trace without guards, put back
    /// if the chunk is traced again with them (`first_pass`).
    pub(super) refs_before: Vec<i64>,
    /// Whether the last chunk of the last first pass had no candidates: the
    /// next first pass then starts without keeping guards.
    pub(super) last_chunk_clean: bool,
    /// Blocks to free at the end of a collection (freed in one batch).
    pub(super) free: Vec<(NonNull<u8>, core::alloc::Layout)>,
    /// (traced object, exclusive target) pairs seen by the guess.
    pub(super) exclusive_seen: Vec<(Ix, NonNull<SyncHeader>)>,
    /// Edges seen by the guess, grouped by source.
    pub(super) adj: Vec<Ix>,
    pub(super) adj_start: Vec<u32>,
    /// G' claimed by the first pass, chunk by chunk (in table order), and
    /// where each chunk's part ends (`group_end`).
    pub(super) chunk_garbage: Vec<Ix>,
    pub(super) group_end: Vec<u32>,
    /// G' claimed by the global steps, in table order.
    pub(super) global_garbage: Vec<Ix>,
    /// The objects the first pass traced whose `trace` is not structural
    /// (and found no lock busy), in table order: roots for the collection,
    /// whose recorded edges only the report trusts ([`report`]).
    pub(super) untrusted: Vec<Ix>,
    /// Those of `untrusted` that are structural but hold a value whose
    /// `trace` is not (a trait object's), with that value's type.
    pub(super) inner_untrusted: Vec<(Ix, crate::visitor::TypeName)>,
}

// SAFETY: the raw pointers in the tables are only used by the thread that
// holds the collector lock, which owns the objects they point to (I1).
unsafe impl Send for Tables {}

/// The index of a collector-owned object, kept in its `prev` link.
///
/// # Safety
/// `obj` has `IN_COLLECTOR` set (the running collection owns its links).
#[inline(always)]
pub(super) unsafe fn index_of(obj: NonNull<SyncHeader>) -> usize {
    debug_assert_ne!(
        flag_bits(obj, IN_COLLECTOR),
        0,
        "I1 (b): a link read without `IN_COLLECTOR`"
    );
    // SAFETY: caller contract (I1 (b)).
    unsafe { (*SyncHeader::links(obj).as_ref().prev.get()).addr() }
}

/// Records `i` as the index of a collector-owned object (see [`index_of`]).
///
/// # Safety
/// As [`index_of`].
#[inline(always)]
pub(super) unsafe fn set_index(obj: NonNull<SyncHeader>, i: usize) {
    debug_assert_ne!(
        flag_bits(obj, IN_COLLECTOR),
        0,
        "I1 (b): a link written without `IN_COLLECTOR`"
    );
    // SAFETY: caller contract (I1 (b)).
    unsafe { *SyncHeader::links(obj).as_ref().prev.get() = core::ptr::without_provenance_mut(i) };
}

/// The collector-table index of `target` if the running collection owns
/// it (checked against the table, so that a stale index can never name
/// another object), with the flags it read (the `EXCLUSIVE` of an object
/// this collection owns changes only in `take`).
#[inline(always)]
pub(super) fn owned_index(
    target: NonNull<SyncHeader>,
    objs: &[NonNull<SyncHeader>],
    heap_bits: u32,
) -> Option<(Ix, u32)> {
    // SAFETY: the handle that reported `target` keeps it alive.
    let f = unsafe { target.as_ref() }.flags.load(Ordering::Acquire);
    // Owned by a collection, of this heap (an object of another heap may be
    // owned by that heap's collection, running at the same time: its links
    // are that one's to write).
    if f & (IN_COLLECTOR | HEAP_MASK) != IN_COLLECTOR | heap_bits {
        return None;
    }
    // SAFETY: `IN_COLLECTOR` is set with this heap's id, and only this
    // collection sets it on this heap's objects.
    let i = unsafe { index_of(target) };
    (objs.get(i) == Some(&target)).then_some((Ix::new(i), f))
}

/// Traces the value of a collector-owned object with `sink`, keeping the
/// lock guards in `guards` if given.
///
/// # Safety
/// `obj` is owned by the running collection (I2), not `EXCLUSIVE` (I3).
#[inline]
pub(super) unsafe fn trace_with(
    obj: NonNull<SyncHeader>,
    sink: &mut dyn SyncSink,
    guards: Option<&mut Vec<KeptGuard>>,
    scratch: &bumpalo::Bump,
) {
    debug_assert_eq!(
        flag_bits(obj, EXCLUSIVE),
        0,
        "I3: the value of an `EXCLUSIVE` object traced"
    );
    let mut v = Visitor::new_sync(sink, guards, scratch);
    // SAFETY: caller contract: the value is intact and nobody holds `&mut`.
    v.with_sync_object(obj, |v| unsafe { (obj.as_ref().vtable.trace)(obj, v) });
}

/// The `bits` of `obj`'s flags, for the invariants' `debug_assert!`s.
#[inline(always)]
fn flag_bits(obj: NonNull<SyncHeader>, bits: u32) -> u32 {
    // SAFETY: only called on objects the running collection took, whose
    // headers stay allocated while it owns them (I2).
    unsafe { obj.as_ref() }.flags.load(Ordering::Relaxed) & bits
}

/// Drops the held guards, innermost first.
#[inline]
pub(super) fn release_guards(guards: &mut Vec<KeptGuard>) {
    // Innermost first: an inner guard may borrow from an outer one's data.
    while let Some(g) = guards.pop() {
        drop(g);
    }
}

/// The header of an object the running collection owns.
///
/// # Safety
/// `obj` is owned by the running collection: taken from its shard (under
/// the shard lock, or with `IN_COLLECTOR` set: I1), a zombie it found
/// (I2), or garbage it claimed (I4); and it is not freed (its state is not
/// [`State::Ended`]). The returned reference is not used after the
/// collection gives the object back or frees it: the caller picks `'a` no
/// longer than that.
#[inline(always)]
pub(super) unsafe fn owned<'a>(obj: NonNull<SyncHeader>) -> &'a SyncHeader {
    // SAFETY: caller contract: the object is alive and its header is only
    // ever shared (its fields are atomics or written under I1's rules).
    unsafe { obj.as_ref() }
}

/// `gc_refs` of an object that is a root for this collection whatever its
/// count: one the collector must not read (`EXCLUSIVE`), or cannot verify
/// (a busy lock, a `trace` that is not structural).
pub(super) const ROOT_REFS: i64 = i64::MAX / 2;

/// How many objects ahead the passes over the table prefetch (see
/// `prims::prefetch`).
pub(super) const PREFETCH: usize = 8;

/// Drops the guards from index `from` on, innermost first.
#[inline]
pub(super) fn release_guards_from(guards: &mut Vec<KeptGuard>, from: usize) {
    while guards.len() > from {
        drop(guards.pop());
    }
}
