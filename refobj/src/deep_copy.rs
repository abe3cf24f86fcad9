//! Deep copy of object graphs: [`deep_copy`], the counterpart of Python's
//! `copy.deepcopy`, and the [`DeepCopy`] trait it calls on every value.
//!
//! # How a copy is built
//!
//! The copier keeps a *memo* from the address of each source object to its
//! copy, as `copy.deepcopy`'s `memo` dict does. When it meets a source
//! `Gc<T>` for the first time it allocates the copy's object *uninitialised*
//! (a *placeholder*: `raw::new_uninit`, flags `UNINIT | DEAD`), records it in
//! the memo, and only then copies the value. A path that leads back to the
//! same source object while its value is being copied finds the placeholder
//! in the memo and gets a handle to it: that is how a cycle in the source
//! becomes a cycle in the copy, and how a node reached twice becomes one
//! node. When the value is complete it is written into the placeholder and
//! `raw::init_object` marks it initialised and tracks it.
//!
//! Placeholders are safe to hand out because of three facts about the
//! engine, each checked in `ouro-cyclegc`:
//!
//! - Dereferencing a handle whose object has `UNINIT` set panics
//!   (`Gc::deref` checks `is_live`), and `Weak::upgrade` of it returns
//!   `None`, so neither a `DeepCopy` impl, nor a `Drop` or `finalize` run by
//!   an automatic collection during the copy, can read a value that does not
//!   exist yet.
//! - `raw::new_uninit` does not link the object into a generation; only
//!   `raw::init_object` does. The collector therefore never traces or frees a
//!   placeholder: an edge to it from an initialised copy is an edge to an
//!   untracked object, which every visitor mode ignores.
//! - If the copy is abandoned (a `DeepCopy` impl panics), releasing the last
//!   handle to a placeholder finds `DEAD` set in `Heap::release` and frees the
//!   memory without calling `drop_value`; `release_weak` does the same for
//!   the last weak handle.
//!
//! The memo holds one strong reference to every copy (so nothing that is
//! already copied can be collected while the rest is built: it is reachable
//! from outside the heap) and one to every source object (so a source object
//! cannot be freed and its address reused for another object while the
//! copy runs; Python's `deepcopy` keeps its originals alive in the memo for
//! the same reason). Both are released when the copy is done, or when it
//! unwinds.

use core::alloc::Layout;
use core::any::TypeId;
use core::cell::{Cell, RefCell};
use core::fmt;
use core::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use core::marker::PhantomData;
use core::mem::ManuallyDrop;
use core::ptr::{self, NonNull};
use std::any::Any;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

use ouro_cyclegc::{ObjHeader, raw};

use crate::Trace;
use crate::handle::{Gc, GcBox, slice_vtable_of, tracked_slice_box, vtable_of};
use crate::weak::Weak;

/// How many `Gc` levels one chain of nested copies may go down before the
/// copier defers the next object to its work list.
///
/// Copying a value copies the objects it holds from inside its own
/// `deep_copy` call, so a plain recursive copy of a 100,000-node linked list
/// or ring needs 100,000 nested frames and overflows the stack. Past this
/// depth the copier still creates the placeholder (so the memo, the sharing
/// and the cycles are exactly as in a recursive copy) but pushes the value's
/// copy on a work list that [`deep_copy`] drains in a loop. The stack then
/// holds at most `MAX_DEPTH` nested object copies whatever the graph, like
/// CPython's trashcan bounds nested deallocations (it uses 50 levels). The
/// work list costs one push and pop per deferred object and keeps the source
/// alive through the memo; a smaller limit defers more objects (worse
/// locality), a larger one uses more stack. 32 levels of a typical node are a
/// few kilobytes in an optimised build and stay far below 2 MiB in a debug
/// build.
///
/// Only nesting through `Gc` is bounded: a value that nests deeply *inside*
/// one object (a `Box` linked list) recurses as deeply as it nests, as its
/// `Drop` does.
const MAX_DEPTH: usize = 32;

/// Copies a value for [`deep_copy`]: the counterpart of Python's
/// `__deepcopy__`.
///
/// `deep_copy` returns a new value that owns copies of everything the
/// original owns. Fields that hold handles copy them with the handles'
/// impls, which consult the copier's memo: a `Gc` reached twice is copied
/// once, and a cycle stays a cycle. Implement it with `#[derive(DeepCopy)]`
/// (`#[deep_copy(shallow)]` on a field clones the field instead, so the copy
/// shares it):
///
/// ```
/// # extern crate ouro_refobj as ouro;
/// # use ouro_macros::{DeepCopy, Trace};
/// use ouro::{DeepCopy, Gc, Trace, deep_copy};
/// use std::cell::RefCell;
///
/// #[derive(Trace, DeepCopy)]
/// struct Doc {
///     title: String,
///     links: RefCell<Vec<Gc<Doc>>>,
/// }
///
/// let doc = Gc::new(Doc { title: "index".into(), links: RefCell::new(vec![]) });
/// doc.links.borrow_mut().push(doc.clone()); // links to itself
/// let copy = deep_copy(&doc);
/// assert_eq!(copy.title, "index");
/// assert!(Gc::ptr_eq(&copy.links.borrow()[0], &copy)); // the copy's own loop
/// # doc.links.borrow_mut().clear();
/// # copy.links.borrow_mut().clear();
/// ```
///
/// Or by hand, by copying every field:
///
/// ```
/// # extern crate ouro_refobj as ouro;
/// use ouro::{DeepCopier, DeepCopy, Gc, Trace, Visitor, deep_copy};
/// use std::cell::RefCell;
/// use std::rc::Rc;
///
/// struct Node {
///     label: Rc<str>, // shared with the copy, like `#[deep_copy(shallow)]`
///     next: RefCell<Option<Gc<Node>>>,
/// }
/// impl Trace for Node {
///     fn trace(&self, v: &mut Visitor<'_>) {
///         self.next.trace(v);
///     }
/// }
/// impl DeepCopy for Node {
///     fn deep_copy(&self, copier: &mut DeepCopier<'_>) -> Self {
///         Node { label: self.label.clone(), next: self.next.deep_copy(copier) }
///     }
/// }
///
/// let a = Gc::new(Node { label: "a".into(), next: RefCell::new(None) });
/// *a.next.borrow_mut() = Some(a.clone()); // a self-loop
/// let b = deep_copy(&a);
/// assert!(!Gc::ptr_eq(&a, &b));
/// assert!(Gc::ptr_eq(b.next.borrow().as_ref().unwrap(), &b)); // still a loop
/// assert!(Rc::ptr_eq(&a.label, &b.label));
/// # *a.next.borrow_mut() = None;
/// # *b.next.borrow_mut() = None;
/// ```
///
/// A `DeepCopy` impl is ordinary safe code: it may panic (the copy is then
/// abandoned and everything it made is released), and a handle it gets for
/// an object that is still being copied panics when dereferenced.
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not implement `ouro::DeepCopy`",
    label = "this type must implement `DeepCopy` to be deep-copied",
    note = "derive it with `#[derive(DeepCopy)]`, implement it by hand, or mark the field `#[deep_copy(shallow)]` to clone it instead"
)]
pub trait DeepCopy: Sized {
    /// Returns a copy of `self` that shares no handle with it (except where
    /// the impl chooses to share, as `#[deep_copy(shallow)]` fields do).
    fn deep_copy(&self, copier: &mut DeepCopier<'_>) -> Self;
}

/// The state of one [`deep_copy`] call, handed to every
/// [`DeepCopy::deep_copy`].
///
/// It cannot be built outside `deep_copy`: it borrows the memo that lives in
/// that call's frame (hence the lifetime), so every object it creates is
/// finished, or released, before `deep_copy` returns. A `DeepCopy` impl only
/// passes it on to the `deep_copy` of each field.
pub struct DeepCopier<'a> {
    memo: &'a mut Memo,
}

impl fmt::Debug for DeepCopier<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeepCopier")
            .field("copied", &self.memo.slots.len())
            .field("pending", &self.memo.pending.len())
            .field("depth", &self.memo.depth)
            .finish()
    }
}

/// Copies the object graph reachable from `root` with Python's
/// `copy.deepcopy` semantics, and returns the copy of `root`.
///
/// - A node reached twice in the source (shared children of a DAG) is one
///   node in the copy; a cycle in the source is a cycle in the copy.
/// - The copy shares no `Gc` with the source, except through fields whose
///   `DeepCopy` impl shares on purpose (`#[deep_copy(shallow)]`).
/// - A `Weak` is mapped to the copy of its target when the target is part of
///   the copied graph (a parent pointer in a copied tree points into the
///   copy); a `Weak` to an object outside the graph keeps pointing at the
///   original (Python's `deepcopy` returns a weakref as it is); a `Weak`
///   whose target is gone stays empty. "Part of the graph" means "in the
///   memo when the copy is done". Most weak handles point to objects
///   already copied (ancestors, previous nodes) and are mapped at once. A
///   weak handle met *before* its target (a weak link to a later sibling)
///   cannot be fixed once it is stored in its owner's value, so when the
///   first pass finds such a handle whose target did end up in the copy, the
///   copy is made again, knowing the graph: a weak handle to any object of
///   it copies its target as soon as it is met (the result is the same
///   graph, walked in another order, provided the `DeepCopy` impls make the
///   same choices twice; otherwise such a weak handle may come out empty).
///   That second pass doubles the cost (and calls every `DeepCopy` impl
///   twice; the discarded first copy is freed, its cycles by the collector),
///   so it is only taken when needed: never for trees with parent pointers,
///   lists with back links, or weak handles to objects outside the graph;
///   a ring with back links does take it (the first node's link to the
///   last).
/// - The stack depth does not grow with the graph: copying a 100,000-node
///   ring works on a thread with a 2 MiB stack (see `MAX_DEPTH` in the
///   source).
///
/// # Cost
///
/// Per copied object: one allocation, one memo insertion (a hash table keyed
/// by address, with a multiplicative hash), one reference-count increment
/// and decrement on the source, and generation-0 tracking like `Gc::new`
/// (automatic collections run during the copy as they would while building
/// the graph by hand). Each further handle to an already copied object costs
/// a memo lookup and a count increment. For a large graph each of these is
/// a cache miss (the memo's bucket, the copy's header, the source value),
/// and they dominate.
///
/// `benches/deep_copy.rs` (group `deep_copy_1m` in `cargo xtask bench`)
/// copies a 1M-node random graph with three edges per node. On the 2-core
/// development VM, shared with other builds (so take ±30%), it measured
/// 2.7 µs per node when automatic collections ran during the copy and
/// 1.3 µs with them off: the difference was the collections that a million
/// new tracked objects trigger (about 1300 young, 120 middle and 3 full
/// collections). `deep_copy` now holds automatic collection off while it
/// runs, so it costs the lower figure. A copy written by hand
/// for this one shape, indexing a `Vec` instead of consulting a memo, takes
/// 1.2 µs per node with collection on and 0.38 µs with it off
/// (`by_hand_gc_off`, 3.4 times as fast as `ouro_deep_copy_gc_off`): that
/// is the price of the memo and of the depth-first walk over random
/// memory, which work for any graph.
///
/// Memory, while the copy runs: the memo's table takes 17 bytes per bucket
/// (a 16-byte entry, address to copy, and a control byte) and 8/7 to 16/7
/// buckets per copied object, and the list of references the memo owns 24
/// bytes per object (up to twice that as the `Vec` grows). For a million
/// objects that is 2^21 buckets (36 MB, 53 MB while the table grows from
/// 2^20) plus 24 to 48 MB, on top of the copy. The work list holds 24 bytes
/// per deferred object not yet filled. A second pass (see above) adds a set
/// of the graph's addresses (9 bytes per bucket). All of it is freed before
/// `deep_copy` returns.
///
/// # Examples
///
/// ```
/// # extern crate ouro_refobj as ouro;
/// # use ouro_macros::{DeepCopy, Trace};
/// use ouro::{DeepCopy, Gc, Trace, deep_copy};
///
/// #[derive(Trace, DeepCopy)]
/// struct Pair(Gc<String>, Gc<String>);
///
/// let s = Gc::new(String::from("shared"));
/// let p = Gc::new(Pair(s.clone(), s));
/// let q = deep_copy(&p);
/// assert!(Gc::ptr_eq(&q.0, &q.1)); // still shared...
/// assert!(!Gc::ptr_eq(&q.0, &p.0)); // ...but a new string
/// ```
///
/// Automatic collections are held off while the copy runs.
///
/// # Panics
///
/// Propagates a panic of any `DeepCopy` impl (for example
/// `RefCell::deep_copy` of a mutably borrowed cell); the objects created so
/// far are released (cycles among them go at the next collection) and no
/// value that was never written is dropped. Panics if a `DeepCopy` impl
/// caught a panic from a nested copy and went on: the objects whose copy
/// was interrupted could never be finished.
pub fn deep_copy<T: DeepCopy + Trace + 'static>(root: &Gc<T>) -> Gc<T> {
    // Nothing the copy creates can become garbage before it returns, so
    // automatic collections while copying would only rescan the copy (on a
    // 1M-node graph they doubled the cost). They are held off and the
    // caller's setting restored, even on a panic; the allocation counter
    // keeps counting, so the next allocation afterwards collects as usual.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            if self.0 {
                crate::gc::enable();
            }
        }
    }
    let _restore = Restore(crate::gc::is_enabled());
    crate::gc::disable();
    let mut memo = Memo::new(AddrSet::default());
    let copy = DeepCopier { memo: &mut memo }.run(root);
    let Some(inside) = memo.second_pass() else {
        return copy;
    };
    drop(copy);
    drop(memo);
    let mut memo = Memo::new(inside);
    DeepCopier { memo: &mut memo }.run(root)
}

/// A multiplicative hash for object addresses, folded so that the low bits
/// (which pick the bucket) depend on the high bits of the product: object
/// addresses are 16-byte aligned, so their own low bits are always zero.
/// std's SipHash would be several times slower for an 8-byte key, and
/// addresses are not attacker-chosen.
#[derive(Default)]
struct AddrHasher(u64);

impl Hasher for AddrHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not used for `usize` keys; correct for anything else.
        for &b in bytes {
            self.write_usize(b as usize);
        }
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        let h = (n as u64 ^ self.0).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = h ^ (h >> 32);
    }
}

type AddrBuild = BuildHasherDefault<AddrHasher>;
type AddrSet = HashSet<usize, AddrBuild>;

/// What the memo owns for one copied object. For an object of the
/// process-wide heap, `src` and `copy` are `SyncHeader` pointers cast to
/// this type: only the slot's `ops` (which know the heap) and
/// `sync_copy::checked_copy` look through them.
#[derive(Clone, Copy)]
struct Slot {
    /// The source object; the memo holds one counted strong reference.
    src: NonNull<ObjHeader>,
    /// The copy (a placeholder until filled); the memo holds one counted
    /// strong reference.
    copy: NonNull<ObjHeader>,
    /// The operations for the value type of both objects.
    ops: &'static Ops,
}

/// Type-erased operations on `GcBox<T>` objects, one static per `T`. The
/// memo stores these instead of a `Box<dyn Any>` per object: no allocation
/// per copied object, and the slot stays 24 bytes.
struct Ops {
    /// Gives up one counted strong reference (drops a `Gc<T>`).
    release: unsafe fn(NonNull<ObjHeader>),
    /// Copies the source value into the placeholder and initialises it.
    fill: unsafe fn(NonNull<ObjHeader>, NonNull<ObjHeader>, &mut DeepCopier<'_>),
}

struct OpsOf<T>(PhantomData<T>);

impl<T: DeepCopy + Trace + 'static> OpsOf<T> {
    const OPS: Ops = Ops {
        release: release_strong::<T>,
        fill: fill::<T>,
    };
}

struct SliceOpsOf<T>(PhantomData<T>);

impl<T: DeepCopy + Trace + 'static> SliceOpsOf<T> {
    const OPS: Ops = Ops {
        release: release_slice,
        fill: fill_slice::<T>,
    };
}

/// # Safety
/// `obj` is a tracked object holding a `[T]` (a tracked slice, or an array
/// seen as a slice through `coerce_gc!`) and the caller gives up one counted
/// strong reference to it.
unsafe fn release_slice(obj: NonNull<ObjHeader>) {
    // SAFETY: caller contract. Through the vtable, which measures both
    // kinds of object (a coerced array keeps its array vtable and has no
    // recorded length).
    unsafe { raw::release_ref(obj) }
}

/// `fill` for a tracked slice: copies the elements of `src` and writes them
/// into the placeholder `copy` (of the same length).
///
/// # Safety
/// As `fill`, with `SliceOpsOf::<T>::OPS`.
unsafe fn fill_slice<T: DeepCopy + Trace + 'static>(
    src: NonNull<ObjHeader>,
    copy: NonNull<ObjHeader>,
    copier: &mut DeepCopier<'_>,
) {
    // SAFETY: as in `fill`: the memo keeps the source alive, the handle only
    // borrows its reference. Its length is the copy's (recorded in
    // `copy_slice` from the source handle's metadata): a source made by
    // `coerce_gc!` from an array has none recorded.
    let src = ManuallyDrop::new(unsafe {
        let len = (&raw const (*tracked_slice_box::<T>(copy).as_ptr()).value).len();
        let fat = ptr::slice_from_raw_parts_mut(src.as_ptr().cast::<T>(), len) as *mut GcBox<[T]>;
        Gc::<[T]>::from_box(NonNull::new_unchecked(fat))
    });
    copier.memo.depth += 1;
    // `Deref` panics if the source value itself is not available; a panic in
    // an element's copy drops the elements copied so far.
    let mut values: Vec<T> = src.iter().map(|x| x.deep_copy(copier)).collect();
    copier.memo.depth -= 1;
    // SAFETY: `copy` came from `raw::new_uninit` with the layout of a
    // tracked slice of `src.len()` elements and `SliceVTable::<T>` (see
    // `copy_slice`), its length recorded; the memo keeps it allocated and
    // no one can have a reference to its value (`UNINIT`). The elements are
    // moved in once (the vector keeps its buffer only), then `init_object`
    // is called once (caller contract).
    unsafe {
        let dst = &raw mut (*tracked_slice_box::<T>(copy).as_ptr()).value;
        // The same source object, so the same length (and a type checked
        // through the memo).
        assert_eq!(
            values.len(),
            dst.len(),
            "ouro::deep_copy: a slice changed length"
        );
        ptr::copy_nonoverlapping(values.as_ptr(), dst.cast::<T>(), values.len());
        values.set_len(0);
        raw::init_object(copy);
    }
    copier.memo.unfilled -= 1;
}

/// # Safety
/// `obj` is a `GcBox<T>` and the caller gives up one counted strong
/// reference to it.
unsafe fn release_strong<T>(obj: NonNull<ObjHeader>) {
    // SAFETY: caller contract; dropping the handle decrements the count and
    // releases the object (without dropping an unwritten value) at zero.
    drop(unsafe { Gc::<T>::from_box(obj.cast::<GcBox<T>>()) });
}

/// Copies the value of `src` and writes it into the placeholder `copy`.
///
/// # Safety
/// `src` and `copy` are the source and the placeholder of one memo slot of
/// `copier` whose `ops` are `OpsOf::<T>::OPS`, and `copy` has not been
/// filled before (it is filled once: by `copy_gc` at once or from the work
/// list, never both).
unsafe fn fill<T: DeepCopy + Trace + 'static>(
    src: NonNull<ObjHeader>,
    copy: NonNull<ObjHeader>,
    copier: &mut DeepCopier<'_>,
) {
    // SAFETY: the memo holds a counted strong reference to `src` until the
    // copier is dropped, which outlives this call; the handle is never
    // dropped (`ManuallyDrop`), so it only borrows that reference.
    let src = ManuallyDrop::new(unsafe { Gc::<T>::from_box(src.cast::<GcBox<T>>()) });
    copier.memo.depth += 1;
    // `Deref` panics if the source value itself is not available.
    let value = T::deep_copy(&src, copier);
    copier.memo.depth -= 1;
    // SAFETY: `copy` came from `raw::new_uninit` with `GcBox<T>`'s layout and
    // vtable and `T::needs_trace()` (`copy_gc`), the memo keeps it allocated,
    // and no one can have a reference to its value: every dereference of it
    // panics while `UNINIT` is set. The value is written once, completely,
    // then `init_object` is called once (caller contract).
    unsafe {
        (&raw mut (*copy.cast::<GcBox<T>>().as_ptr()).value).write(value);
        raw::init_object(copy);
    }
    copier.memo.unfilled -= 1;
}

/// The header of a copy found in the memo, checked to be a `GcBox<T>`.
///
/// A source address always belongs to the same object while the memo keeps
/// it alive, so the check cannot fail in safe code; it is what makes the
/// casts below sound without relying on that argument. The copy's header is
/// loaded for the count increment anyway, and its vtable is a static of `T`.
#[inline]
fn checked_copy<T: ?Sized + 'static>(copy: NonNull<ObjHeader>) -> NonNull<ObjHeader> {
    // SAFETY: the memo holds a strong reference to every copy it lists.
    let vtable = unsafe { copy.as_ref() }.vtable();
    if (vtable.type_id)() != TypeId::of::<T>() {
        type_mismatch()
    }
    copy
}

#[cold]
#[inline(never)]
fn type_mismatch() -> ! {
    panic!(
        "ouro::deep_copy: one source address was met with two different types \
         (was the source graph changed during the copy?)"
    )
}

/// The memo and work list of one copy pass.
struct Memo {
    /// Source object address -> its copy. Only the copy is stored (16-byte
    /// entries): the table is the one random-access structure of the copy,
    /// and halving its entries made the copy of a 1M-node random graph about
    /// 30% faster (`ouro_deep_copy_gc_off`: 2.9 s -> 2.1 s on a loaded VM)
    /// than 32-byte entries holding the whole slot.
    copies: HashMap<usize, NonNull<ObjHeader>, AddrBuild>,
    /// The references the memo owns, in the order the copies were made
    /// (released in that order, which walks the copies in allocation order).
    slots: Vec<Slot>,
    /// Placeholders whose value is still to be copied (past `MAX_DEPTH`).
    pending: Vec<Slot>,
    /// Nested object copies on the stack right now.
    depth: usize,
    /// Placeholders created and not filled yet.
    unfilled: usize,
    /// Targets of weak handles that were left pointing at the original
    /// because their target was not in the memo yet.
    weak_to_source: Vec<usize>,
    /// Second pass: the objects of the copied graph (found by the first
    /// pass); a weak handle to one of them copies it at once.
    inside: AddrSet,
    /// Copies of untracked unsized objects (`Gc<str>`, slices of leaf
    /// types), which cannot lead back to themselves: source address -> the
    /// pair `(source, copy)` (the source handle keeps the address from being
    /// reused during the copy).
    leaves: HashMap<usize, Box<dyn Any>, AddrBuild>,
}

impl Memo {
    fn new(inside: AddrSet) -> Memo {
        Memo {
            copies: HashMap::default(),
            slots: Vec::new(),
            pending: Vec::new(),
            depth: 0,
            unfilled: 0,
            weak_to_source: Vec::new(),
            inside,
            leaves: HashMap::default(),
        }
    }

    /// After a first pass: if a weak handle was left pointing at an original
    /// that turned out to be part of the copy, the addresses of every object
    /// of the graph, for the second pass. All of them, not just the targets
    /// found: copying a target early changes the order of the walk, and
    /// other weak handles may then be met before their targets.
    fn second_pass(&self) -> Option<AddrSet> {
        self.weak_to_source
            .iter()
            .any(|a| self.copies.contains_key(a))
            .then(|| self.copies.keys().copied().collect())
    }
}

impl Drop for Memo {
    fn drop(&mut self) {
        self.copies.clear();
        for slot in core::mem::take(&mut self.slots) {
            // SAFETY: the memo counted one strong reference to each of the
            // two objects of every slot, of the slot's type, and gives both up
            // here, once (the slots were taken out of the memo).
            unsafe {
                (slot.ops.release)(slot.copy);
                (slot.ops.release)(slot.src);
            }
        }
    }
}

impl DeepCopier<'_> {
    /// Copies `root`, then drains the work list.
    fn run<T: DeepCopy + Trace + 'static>(&mut self, root: &Gc<T>) -> Gc<T> {
        let copy = self.copy_gc(root);
        self.drain();
        copy
    }

    /// Fills the placeholders left on the work list, and checks that none
    /// is left unfinished.
    fn drain(&mut self) {
        while let Some(slot) = self.memo.pending.pop() {
            // SAFETY: pending slots come from the memo (`copy_gc`), were not
            // filled (a slot is pushed instead of being filled) and are
            // popped once.
            unsafe { (slot.ops.fill)(slot.src, slot.copy, self) };
        }
        assert!(
            self.memo.unfilled == 0,
            "ouro::deep_copy: {} objects were left unfinished: a DeepCopy impl \
             caught a panic from a nested copy and went on",
            self.memo.unfilled
        );
    }

    /// The copy of `src`: from the memo, or a new placeholder that is filled
    /// now (or, past `MAX_DEPTH`, from the work list).
    fn copy_gc<T: DeepCopy + Trace + 'static>(&mut self, src: &Gc<T>) -> Gc<T> {
        let key = src.obj().as_ptr().addr();
        let slot = match self.memo.copies.entry(key) {
            Entry::Occupied(e) => {
                let copy = checked_copy::<T>(*e.get());
                // SAFETY: the memo keeps `copy` allocated (it holds a strong
                // reference), and it is a `GcBox<T>` (checked).
                unsafe { copy.as_ref() }.inc_strong();
                // SAFETY: one strong reference was just counted for it.
                return unsafe { Gc::from_box(copy.cast()) };
            }
            Entry::Vacant(e) => {
                // SAFETY: the layout and vtable are `GcBox<T>`'s. Two strong
                // references: the memo's and the returned handle's.
                let copy = unsafe {
                    raw::new_uninit(
                        Layout::new::<GcBox<T>>(),
                        vtable_of::<T>(),
                        T::needs_trace(),
                        2,
                        0,
                    )
                };
                // The memo's counted reference to the source.
                let src_ref = ManuallyDrop::new(src.clone());
                e.insert(copy);
                let slot = Slot {
                    src: src_ref.obj(),
                    copy,
                    ops: &OpsOf::<T>::OPS,
                };
                self.memo.slots.push(slot);
                slot
            }
        };
        // SAFETY: `new_uninit` counted a strong reference for this handle.
        // It is made before the value is copied so that, if the copy panics,
        // unwinding drops it and gives that reference back.
        let handle = unsafe { Gc::from_box(slot.copy.cast::<GcBox<T>>()) };
        self.memo.unfilled += 1;
        if self.memo.depth < MAX_DEPTH {
            // SAFETY: the slot was just made for `T` and is not filled or
            // pending.
            unsafe { fill::<T>(slot.src, slot.copy, self) };
        } else {
            self.memo.pending.push(slot);
        }
        handle
    }

    /// The copy of a tracked slice: as `copy_gc`, with a placeholder of the
    /// source's length.
    fn copy_slice<T: DeepCopy + Trace + 'static>(&mut self, src: &Gc<[T]>) -> Gc<[T]> {
        let len = Gc::as_ptr(src).len();
        let key = src.obj().as_ptr().addr();
        let slot = match self.memo.copies.entry(key) {
            Entry::Occupied(e) => {
                let copy = checked_copy::<[T]>(*e.get());
                // SAFETY: the memo keeps `copy` allocated; it is a tracked
                // slice of `T` (checked) with the source's length.
                unsafe { copy.as_ref() }.inc_strong();
                // SAFETY: one strong reference was just counted for it.
                return unsafe { Gc::from_box(tracked_slice_box::<T>(copy)) };
            }
            Entry::Vacant(e) => {
                let boxed = ouro_cyclegc::slice_box_layout(Layout::new::<T>(), len)
                    .expect("ouro: slice too large");
                // SAFETY: the layout and vtable are those of a tracked slice
                // of `len` elements of `T`; its length is recorded before
                // anything else sees it. Two strong references: the memo's
                // and the returned handle's.
                let copy = unsafe {
                    let copy = raw::new_uninit(boxed, slice_vtable_of::<T>(), true, 2, 0);
                    ObjHeader::write_slice_len(copy, len);
                    copy
                };
                let src_ref = ManuallyDrop::new(src.clone());
                e.insert(copy);
                let slot = Slot {
                    src: src_ref.obj(),
                    copy,
                    ops: &SliceOpsOf::<T>::OPS,
                };
                self.memo.slots.push(slot);
                slot
            }
        };
        // SAFETY: `new_uninit` counted a strong reference for this handle.
        let handle = unsafe { Gc::from_box(tracked_slice_box::<T>(slot.copy)) };
        self.memo.unfilled += 1;
        if self.memo.depth < MAX_DEPTH {
            // SAFETY: the slot was just made for `[T]` and is not filled or
            // pending.
            unsafe { fill_slice::<T>(slot.src, slot.copy, self) };
        } else {
            self.memo.pending.push(slot);
        }
        handle
    }

    /// The copy of an untracked unsized object, made once per source object
    /// by `make`.
    fn copy_leaf<U: ?Sized + 'static>(
        &mut self,
        src: &Gc<U>,
        make: impl FnOnce(&Gc<U>, &mut Self) -> Gc<U>,
    ) -> Gc<U> {
        let key = src.obj().as_ptr().addr();
        if let Some(pair) = self.memo.leaves.get(&key) {
            if let Some((_, copy)) = pair.downcast_ref::<(Gc<U>, Gc<U>)>() {
                return copy.clone();
            }
            type_mismatch()
        }
        let copy = make(src, self);
        self.memo
            .leaves
            .insert(key, Box::new((src.clone(), copy.clone())));
        copy
    }

    /// The copy of a weak handle (see [`deep_copy`] for the rules).
    fn copy_weak<T: DeepCopy + Trace + 'static>(&mut self, src: &Weak<T>) -> Weak<T> {
        let Some(target) = src.upgrade() else {
            return Weak::new();
        };
        let key = target.obj().as_ptr().addr();
        if let Some(&copy) = self.memo.copies.get(&key) {
            let copy = checked_copy::<T>(copy);
            // SAFETY: as in `copy_gc`.
            unsafe { copy.as_ref() }.inc_weak();
            // SAFETY: one weak reference was just counted for it.
            return unsafe { Weak::from_box(copy.cast()) };
        }
        if self.memo.inside.contains(&key) {
            return Gc::downgrade(&self.copy_gc(&target));
        }
        self.memo.weak_to_source.push(key);
        src.clone()
    }
}

impl<T: DeepCopy + Trace + 'static> DeepCopy for Gc<T> {
    /// The copy of the object: made once per source object and shared by
    /// every handle to it in the copy.
    #[inline]
    fn deep_copy(&self, copier: &mut DeepCopier<'_>) -> Self {
        copier.copy_gc(self)
    }
}

impl<T: DeepCopy + Trace + 'static> DeepCopy for Gc<[T]> {
    /// A new slice object holding copies of the elements, made once per
    /// source object and shared by every handle to it in the copy. A cycle
    /// through a slice (tracked when `T` can hold handles) is a cycle in
    /// the copy.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::{Gc, deep_copy};
    /// let s: Gc<[Gc<String>]> = Gc::from([Gc::new("a".to_owned())]);
    /// let holder = Gc::new((s.clone(), s));
    /// let copy = deep_copy(&holder);
    /// assert!(Gc::ptr_eq(&copy.0, &copy.1)); // shared in the copy too
    /// assert!(!Gc::ptr_eq(&copy.0, &holder.0));
    /// assert_eq!(*copy.0[0], "a");
    /// ```
    fn deep_copy(&self, copier: &mut DeepCopier<'_>) -> Self {
        if T::needs_trace() {
            copier.copy_slice(self)
        } else {
            copier.copy_leaf(self, |src, c| src.iter().map(|x| x.deep_copy(c)).collect())
        }
    }
}

impl DeepCopy for Gc<str> {
    /// A new string object, made once per source object and shared by every
    /// handle to it in the copy.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// use ouro::{Gc, deep_copy};
    /// let s: Gc<str> = Gc::from("text");
    /// let holder = Gc::new(vec![s.clone(), s]);
    /// let copy = deep_copy(&holder);
    /// assert_eq!(&*copy[0], "text");
    /// assert!(Gc::ptr_eq(&copy[0], &copy[1]));
    /// assert!(!Gc::ptr_eq(&copy[0], &holder[0]));
    /// ```
    fn deep_copy(&self, copier: &mut DeepCopier<'_>) -> Self {
        copier.copy_leaf(self, |src, _| Gc::from(&**src))
    }
}

impl<T: DeepCopy + Trace + 'static> DeepCopy for Weak<T> {
    /// A weak handle to the copy of the target if the target is part of the
    /// copied graph, to the original otherwise (see [`deep_copy`]).
    fn deep_copy(&self, copier: &mut DeepCopier<'_>) -> Self {
        copier.copy_weak(self)
    }
}

macro_rules! atomic {
    ($($t:ty),* $(,)?) => {$(
        /// Values without handles are copied with `Clone` (Python's atomic types).
        impl DeepCopy for $t {
            #[inline(always)]
            fn deep_copy(&self, _: &mut DeepCopier<'_>) -> Self {
                self.clone()
            }
        }
    )*};
}

atomic!(
    (),
    bool,
    char,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64,
    String,
    &'static str,
    core::num::NonZeroU8,
    core::num::NonZeroU16,
    core::num::NonZeroU32,
    core::num::NonZeroU64,
    core::num::NonZeroUsize,
    core::num::NonZeroI32,
    core::num::NonZeroI64,
    core::num::NonZeroIsize,
    core::time::Duration,
    core::cmp::Ordering,
    std::path::PathBuf,
    std::ffi::OsString,
);

impl<T: ?Sized> DeepCopy for PhantomData<T> {
    fn deep_copy(&self, _: &mut DeepCopier<'_>) -> Self {
        PhantomData
    }
}

impl<T: DeepCopy> DeepCopy for Box<T> {
    fn deep_copy(&self, copier: &mut DeepCopier<'_>) -> Self {
        Box::new((**self).deep_copy(copier))
    }
}

impl<T: DeepCopy> DeepCopy for Option<T> {
    #[inline]
    fn deep_copy(&self, copier: &mut DeepCopier<'_>) -> Self {
        self.as_ref().map(|v| v.deep_copy(copier))
    }
}

impl<T: DeepCopy, E: DeepCopy> DeepCopy for Result<T, E> {
    fn deep_copy(&self, copier: &mut DeepCopier<'_>) -> Self {
        match self {
            Ok(v) => Ok(v.deep_copy(copier)),
            Err(e) => Err(e.deep_copy(copier)),
        }
    }
}

impl<T: DeepCopy> DeepCopy for Vec<T> {
    fn deep_copy(&self, copier: &mut DeepCopier<'_>) -> Self {
        let mut out = Vec::with_capacity(self.len());
        for v in self {
            out.push(v.deep_copy(copier));
        }
        out
    }
}

impl<T: DeepCopy> DeepCopy for VecDeque<T> {
    fn deep_copy(&self, copier: &mut DeepCopier<'_>) -> Self {
        let mut out = VecDeque::with_capacity(self.len());
        for v in self {
            out.push_back(v.deep_copy(copier));
        }
        out
    }
}

impl<K, V, S> DeepCopy for HashMap<K, V, S>
where
    K: DeepCopy + Eq + Hash,
    V: DeepCopy,
    S: BuildHasher + Clone,
{
    /// Keys and values are both copied; the copy uses a clone of the map's
    /// hasher.
    fn deep_copy(&self, copier: &mut DeepCopier<'_>) -> Self {
        let mut out = HashMap::with_capacity_and_hasher(self.len(), self.hasher().clone());
        for (k, v) in self {
            out.insert(k.deep_copy(copier), v.deep_copy(copier));
        }
        out
    }
}

impl<T, S> DeepCopy for HashSet<T, S>
where
    T: DeepCopy + Eq + Hash,
    S: BuildHasher + Clone,
{
    fn deep_copy(&self, copier: &mut DeepCopier<'_>) -> Self {
        let mut out = HashSet::with_capacity_and_hasher(self.len(), self.hasher().clone());
        for v in self {
            out.insert(v.deep_copy(copier));
        }
        out
    }
}

impl<K: DeepCopy + Ord, V: DeepCopy> DeepCopy for BTreeMap<K, V> {
    fn deep_copy(&self, copier: &mut DeepCopier<'_>) -> Self {
        let mut out = BTreeMap::new();
        for (k, v) in self {
            out.insert(k.deep_copy(copier), v.deep_copy(copier));
        }
        out
    }
}

impl<T: DeepCopy + Ord> DeepCopy for BTreeSet<T> {
    fn deep_copy(&self, copier: &mut DeepCopier<'_>) -> Self {
        let mut out = BTreeSet::new();
        for v in self {
            out.insert(v.deep_copy(copier));
        }
        out
    }
}

impl<T: DeepCopy + Copy> DeepCopy for Cell<T> {
    fn deep_copy(&self, copier: &mut DeepCopier<'_>) -> Self {
        Cell::new(self.get().deep_copy(copier))
    }
}

impl<T: DeepCopy> DeepCopy for RefCell<T> {
    /// Copies the current contents into a new cell.
    ///
    /// # Panics
    /// If the cell is mutably borrowed, as `RefCell::clone` does.
    fn deep_copy(&self, copier: &mut DeepCopier<'_>) -> Self {
        RefCell::new(self.borrow().deep_copy(copier))
    }
}

impl<T: DeepCopy, const N: usize> DeepCopy for [T; N] {
    fn deep_copy(&self, copier: &mut DeepCopier<'_>) -> Self {
        core::array::from_fn(|i| self[i].deep_copy(copier))
    }
}

macro_rules! tuple {
    ($(($($t:ident $i:tt),+))*) => {$(
        impl<$($t: DeepCopy),+> DeepCopy for ($($t,)+) {
            fn deep_copy(&self, copier: &mut DeepCopier<'_>) -> Self {
                ($(self.$i.deep_copy(copier),)+)
            }
        }
    )*};
}

tuple! {
    (A 0)
    (A 0, B 1)
    (A 0, B 1, C 2)
    (A 0, B 1, C 2, D 3)
    (A 0, B 1, C 2, D 3, E 4)
    (A 0, B 1, C 2, D 3, E 4, F 5)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7)
}

#[cfg(test)]
mod tests {
    //! Unit tests with hand-written `DeepCopy` impls (the derive lives in
    //! `ouro-macros` and is tested at the facade level); they run under Miri.

    use super::*;
    use crate::{Visitor, gc};
    use std::panic::{self, AssertUnwindSafe};
    use std::rc::Rc;

    /// A graph node: strong edges, an optional weak back link, and a counter
    /// of live values shared by a graph and its copies.
    struct Node {
        id: usize,
        edges: RefCell<Vec<Gc<Node>>>,
        back: RefCell<Option<Weak<Node>>>,
        live: Rc<Cell<isize>>,
        /// `deep_copy` of this node panics.
        poison: bool,
    }

    impl Trace for Node {
        fn structural() -> crate::Structural<Self> {
            // SAFETY: `trace` only calls `trace` on fields, whose types' impls
            // are ouro's own (structural).
            unsafe { crate::Structural::promise() }
        }
        fn trace(&self, v: &mut Visitor<'_>) {
            self.edges.trace(v);
        }
    }

    thread_local! {
        /// Makes every node copy run a young collection first, as a
        /// `DeepCopy` impl may (automatic collections are held off).
        static COLLECT_WHILE_COPYING: Cell<bool> = const { Cell::new(false) };
    }

    impl DeepCopy for Node {
        fn deep_copy(&self, c: &mut DeepCopier<'_>) -> Self {
            if self.poison {
                panic!("poisoned node {}", self.id);
            }
            if COLLECT_WHILE_COPYING.with(Cell::get) {
                gc::collect_generation(0);
            }
            let copy = Node {
                id: self.id,
                edges: self.edges.deep_copy(c),
                back: self.back.deep_copy(c),
                live: self.live.clone(),
                poison: false,
            };
            self.live.set(self.live.get() + 1);
            copy
        }
    }

    impl Drop for Node {
        fn drop(&mut self) {
            self.live.set(self.live.get() - 1);
        }
    }

    fn node(id: usize, live: &Rc<Cell<isize>>) -> Gc<Node> {
        live.set(live.get() + 1);
        Gc::new(Node {
            id,
            edges: RefCell::new(Vec::new()),
            back: RefCell::new(None),
            live: live.clone(),
            poison: false,
        })
    }

    fn link(a: &Gc<Node>, b: &Gc<Node>) {
        a.edges.borrow_mut().push(b.clone());
    }

    fn set_back(a: &Gc<Node>, b: &Gc<Node>) {
        *a.back.borrow_mut() = Some(Gc::downgrade(b));
    }

    fn addr(g: &Gc<Node>) -> usize {
        Gc::as_ptr(g).addr()
    }

    /// Walks the source and the copy side by side (iteratively) and checks
    /// that the copy is isomorphic to the source, shares no node with it,
    /// and maps weak links into the copy exactly when their target is part
    /// of the graph. Returns the number of nodes.
    fn check_copy(src: &Gc<Node>, copy: &Gc<Node>) -> usize {
        let mut map: HashMap<usize, Gc<Node>> = HashMap::new();
        let mut copies: HashSet<usize> = HashSet::new();
        let mut todo = vec![(src.clone(), copy.clone())];
        let mut pairs = Vec::new();
        map.insert(addr(src), copy.clone());
        copies.insert(addr(copy));
        while let Some((s, c)) = todo.pop() {
            assert_eq!(s.id, c.id);
            let (se, ce) = (s.edges.borrow(), c.edges.borrow());
            assert_eq!(se.len(), ce.len());
            for (a, b) in se.iter().zip(ce.iter()) {
                match map.get(&addr(a)) {
                    Some(known) => assert!(Gc::ptr_eq(known, b), "a shared node was copied twice"),
                    None => {
                        assert!(copies.insert(addr(b)), "two source nodes map to one copy");
                        map.insert(addr(a), b.clone());
                        todo.push((a.clone(), b.clone()));
                    }
                }
            }
            pairs.push((s.clone(), c.clone()));
        }
        assert!(
            map.keys().all(|a| !copies.contains(a)),
            "the copy shares a node with the source"
        );
        for (s, c) in &pairs {
            let sb = s.back.borrow().as_ref().and_then(Weak::upgrade);
            let cb = c.back.borrow().as_ref().and_then(Weak::upgrade);
            match (sb, cb) {
                (None, None) => {}
                (Some(t), Some(u)) => match map.get(&addr(&t)) {
                    Some(mapped) => {
                        assert!(Gc::ptr_eq(mapped, &u), "weak link not mapped into the copy")
                    }
                    None => assert!(Gc::ptr_eq(&t, &u), "weak link outside the graph not kept"),
                },
                _ => panic!("weak link lost or invented"),
            }
        }
        // Break the cycles of both graphs so that counting frees them.
        pairs.len()
    }

    /// Breaks every edge of the graph reachable from `g`.
    fn unlink_all(g: &Gc<Node>) {
        let mut todo = vec![g.clone()];
        while let Some(n) = todo.pop() {
            todo.extend(n.edges.borrow_mut().drain(..));
        }
    }

    fn on_small_stack(f: impl FnOnce() + Send + 'static) {
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(f)
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn dag_with_shared_children() {
        gc::disable();
        let live = Rc::new(Cell::new(0));
        let root = node(0, &live);
        let (a, b, c) = (node(1, &live), node(2, &live), node(3, &live));
        link(&root, &a);
        link(&root, &b);
        link(&a, &c);
        link(&b, &c);
        link(&root, &c);
        let copy = deep_copy(&root);
        assert_eq!(check_copy(&root, &copy), 4);
        assert_eq!(live.get(), 8);
        let (ca, cb) = (
            copy.edges.borrow()[0].clone(),
            copy.edges.borrow()[1].clone(),
        );
        assert!(Gc::ptr_eq(&ca.edges.borrow()[0], &cb.edges.borrow()[0]));
        // Counts are as if built by hand: the memo let go of everything.
        assert_eq!(Gc::strong_count(&copy), 1);
        assert_eq!(Gc::strong_count(&copy.edges.borrow()[2]), 3);
        assert_eq!(Gc::strong_count(&root), 1);
        drop((root, a, b, c, ca, cb, copy));
        assert_eq!(live.get(), 0);
        assert_eq!(gc::collect(), 0);
    }

    #[test]
    fn cycles_and_self_loops() {
        gc::disable();
        let live = Rc::new(Cell::new(0));
        let a = node(0, &live);
        let b = node(1, &live);
        link(&a, &a);
        link(&a, &b);
        link(&b, &a);
        link(&b, &b);
        link(&b, &b);
        let copy = deep_copy(&a);
        assert_eq!(check_copy(&a, &copy), 2);
        assert!(Gc::ptr_eq(&copy.edges.borrow()[0], &copy));
        let cb = copy.edges.borrow()[1].clone();
        assert!(Gc::ptr_eq(&cb.edges.borrow()[0], &copy));
        assert!(Gc::ptr_eq(&cb.edges.borrow()[1], &cb));
        drop((a, b, cb, copy));
        assert_eq!(gc::collect(), 4);
        assert_eq!(live.get(), 0);
    }

    /// Builds a doubly linked list (strong `next`, weak `prev`) or ring of
    /// `n` nodes; returns the first.
    fn list(n: usize, ring: bool, live: &Rc<Cell<isize>>) -> Gc<Node> {
        let first = node(0, live);
        let mut last = first.clone();
        for i in 1..n {
            let next = node(i, live);
            link(&last, &next);
            set_back(&next, &last);
            last = next;
        }
        if ring {
            link(&last, &first);
            set_back(&first, &last);
        }
        first
    }

    #[test]
    fn doubly_linked_list() {
        gc::disable();
        let live = Rc::new(Cell::new(0));
        let first = list(if cfg!(miri) { 20 } else { 1000 }, false, &live);
        let copy = deep_copy(&first);
        check_copy(&first, &copy);
        let second = copy.edges.borrow()[0].clone();
        let prev = second.back.borrow().as_ref().unwrap().upgrade().unwrap();
        assert!(Gc::ptr_eq(&prev, &copy));
        drop((first, copy, second, prev));
        assert_eq!(live.get(), 0);
    }

    #[test]
    fn long_ring_on_a_small_stack() {
        on_small_stack(|| {
            gc::disable();
            // Under Miri, three times the depth limit: the copy defers and
            // resumes its work list as often as a longer ring would.
            let n = if cfg!(miri) {
                3 * MAX_DEPTH + 4
            } else {
                100_000
            };
            let live = Rc::new(Cell::new(0));
            let ring = list(n, true, &live);
            let copy = deep_copy(&ring);
            assert_eq!(check_copy(&ring, &copy), n);
            unlink_all(&ring);
            unlink_all(&copy);
            drop((ring, copy));
            // The first node's weak link to the last is met before the last
            // node is copied: the first pass was discarded, its ring is
            // garbage for the collector.
            assert_eq!(gc::collect(), n);
            assert_eq!(live.get(), 0);
        });
    }

    #[test]
    fn long_list_on_a_small_stack() {
        on_small_stack(|| {
            gc::disable();
            // Under Miri, as for the ring.
            let n = if cfg!(miri) {
                3 * MAX_DEPTH + 4
            } else {
                1_000_000
            };
            let live = Rc::new(Cell::new(0));
            let first = list(n, false, &live);
            let copy = deep_copy(&first);
            assert_eq!(check_copy(&first, &copy), n);
            drop((first, copy));
            assert_eq!(live.get(), 0);
        });
    }

    #[test]
    fn weak_links_follow_the_copied_graph() {
        gc::disable();
        let live = Rc::new(Cell::new(0));
        let outside = node(100, &live);
        let root = node(0, &live);
        let (a, b) = (node(1, &live), node(2, &live));
        link(&root, &a);
        link(&root, &b);
        set_back(&a, &b); // met before its target: a forward weak link
        set_back(&b, &root); // a parent pointer
        set_back(&root, &outside); // outside the graph
        let copy = deep_copy(&root);
        assert_eq!(check_copy(&root, &copy), 3);
        let target = copy.back.borrow().as_ref().unwrap().upgrade().unwrap();
        assert!(Gc::ptr_eq(&target, &outside));
        // The discarded first pass is garbage: free it, then count.
        gc::collect();
        assert_eq!(live.get(), 4 + 3);

        // A dead weak link stays dead, and is not the source's.
        drop(target);
        drop(outside);
        let copy2 = deep_copy(&root);
        assert!(copy2.back.borrow().as_ref().unwrap().upgrade().is_none());
        assert_eq!(copy2.back.borrow().as_ref().unwrap().weak_count(), 0);
        drop((root, a, b, copy, copy2));
        gc::collect();
        assert_eq!(live.get(), 0);
    }

    #[test]
    fn untracked_objects_and_containers() {
        gc::disable();
        struct Bag {
            vec: Vec<Gc<String>>,
            deque: VecDeque<Gc<String>>,
            map: HashMap<u32, Gc<String>>,
            tree: BTreeMap<u32, (Gc<String>, Box<Gc<String>>)>,
            cell: Cell<u32>,
            arr: [Option<Gc<String>>; 2],
            res: Result<Gc<String>, ()>,
        }
        impl Trace for Bag {
            fn trace(&self, _: &mut Visitor<'_>) {}
        }
        impl DeepCopy for Bag {
            fn deep_copy(&self, c: &mut DeepCopier<'_>) -> Self {
                Bag {
                    vec: self.vec.deep_copy(c),
                    deque: self.deque.deep_copy(c),
                    map: self.map.deep_copy(c),
                    tree: self.tree.deep_copy(c),
                    cell: self.cell.deep_copy(c),
                    arr: self.arr.deep_copy(c),
                    res: self.res.deep_copy(c),
                }
            }
        }
        let s = Gc::new(String::from("s"));
        let bag = Gc::new(Bag {
            vec: vec![s.clone(), s.clone()],
            deque: [s.clone()].into(),
            map: [(1, s.clone())].into(),
            tree: [(1, (s.clone(), Box::new(s.clone())))].into(),
            cell: Cell::new(7),
            arr: [None, Some(s.clone())],
            res: Ok(s.clone()),
        });
        let copy = deep_copy(&bag);
        let cs = copy.vec[0].clone();
        assert!(!Gc::ptr_eq(&cs, &s));
        assert!(!Gc::is_tracked(&cs));
        assert_eq!(*cs, "s");
        for other in [
            &copy.vec[1],
            &copy.deque[0],
            &copy.map[&1],
            &copy.tree[&1].0,
            &*copy.tree[&1].1,
            copy.arr[1].as_ref().unwrap(),
            copy.res.as_ref().unwrap(),
        ] {
            assert!(Gc::ptr_eq(other, &cs));
        }
        assert_eq!(copy.cell.get(), 7);
        assert_eq!(Gc::strong_count(&cs), 9);
        assert_eq!(
            (1u8, 'x', String::from("t")).deep_copy(&mut DeepCopier {
                memo: &mut Memo::new(AddrSet::default())
            }),
            (1, 'x', "t".into())
        );
    }

    #[test]
    fn collections_during_the_copy_see_no_placeholder() {
        gc::enable();
        gc::set_threshold([2, 1, 1]);
        COLLECT_WHILE_COPYING.with(|c| c.set(true));
        let live = Rc::new(Cell::new(0));
        let n = if cfg!(miri) { 40 } else { 2000 };
        let ring = list(n, true, &live);
        // Extra cross links so that placeholders are reached from many
        // initialised copies while collections run.
        let mut nodes = vec![ring.clone()];
        for _ in 1..n {
            let next = nodes.last().unwrap().edges.borrow()[0].clone();
            nodes.push(next);
        }
        for i in 0..n {
            link(&nodes[i], &nodes[(i * 7 + 3) % n]);
        }
        drop(nodes);
        let copy = deep_copy(&ring);
        COLLECT_WHILE_COPYING.with(|c| c.set(false));
        assert!(gc::is_enabled(), "deep_copy restores automatic collection");
        assert_eq!(check_copy(&ring, &copy), n);
        // The first pass's discarded copy is a cycle: gone after a collection.
        gc::collect();
        assert_eq!(live.get() as usize, 2 * n);
        drop((ring, copy));
        gc::collect();
        assert_eq!(live.get(), 0);
        gc::set_threshold(ouro_cyclegc::DEFAULT_THRESHOLDS);
    }

    #[test]
    fn a_panicking_copy_releases_its_placeholders() {
        gc::disable();
        let live = Rc::new(Cell::new(0));
        // Under Miri, just past the depth limit (the poisoned node is 5
        // from the end, beyond it).
        let n = if cfg!(miri) { MAX_DEPTH + 8 } else { 500 };
        let ring = list(n, true, &live);
        // Poison a node deep enough that some objects were deferred, so
        // pending placeholders are released too.
        let mut poisoned = ring.clone();
        for _ in 0..n - 5 {
            let next = poisoned.edges.borrow()[0].clone();
            poisoned = next;
        }
        let bad = Gc::new(Node {
            id: 999,
            edges: RefCell::new(Vec::new()),
            back: RefCell::new(None),
            live: live.clone(),
            poison: true,
        });
        live.set(live.get() + 1);
        link(&poisoned, &bad);
        drop((poisoned, bad));
        let before = live.get();
        let r = panic::catch_unwind(AssertUnwindSafe(|| deep_copy(&ring)));
        assert!(r.is_err());
        // The copies that were finished are garbage now (cycles through
        // the freed placeholders are broken, but not all of them).
        gc::collect();
        assert_eq!(
            live.get(),
            before,
            "a copy leaked or a value was dropped twice"
        );
        assert_eq!(gc::collect(), 0);
        unlink_all(&ring);
        drop(ring);
        assert_eq!(live.get(), 0);
    }

    #[test]
    fn a_placeholder_panics_when_dereferenced() {
        gc::disable();
        struct Peek {
            me: RefCell<Option<Gc<Peek>>>,
        }
        impl Trace for Peek {
            fn trace(&self, v: &mut Visitor<'_>) {
                self.me.trace(v);
            }
        }
        // A weak handle keeps the placeholder's memory, so its header can be
        // read after the copy is abandoned.
        type Seen = Option<(Weak<Peek>, NonNull<ObjHeader>)>;
        thread_local!(static SEEN: RefCell<Seen> = const { RefCell::new(None) });
        impl DeepCopy for Peek {
            fn deep_copy(&self, c: &mut DeepCopier<'_>) -> Self {
                let me = self.me.deep_copy(c);
                let h = me.borrow().clone().unwrap();
                SEEN.with(|s| *s.borrow_mut() = Some((Gc::downgrade(&h), h.obj())));
                assert!(Gc::downgrade(&h).upgrade().is_none());
                assert!(Gc::try_unwrap(h.clone()).is_err());
                let _ = &h.me; // panics: the value is not there yet
                unreachable!()
            }
        }
        let p = Gc::new(Peek {
            me: RefCell::new(None),
        });
        *p.me.borrow_mut() = Some(p.clone());
        let err = panic::catch_unwind(AssertUnwindSafe(|| drop(deep_copy(&p)))).unwrap_err();
        let msg = err.downcast_ref::<String>().unwrap();
        assert!(msg.contains("not initialised yet"), "{msg}");
        let (w, obj) = SEEN.with(|s| s.borrow_mut().take()).unwrap();
        // SAFETY: `w` keeps the allocation and its header alive.
        let h = unsafe { obj.as_ref() };
        assert_eq!(
            h.strong(),
            0,
            "a strong reference to the placeholder leaked"
        );
        assert!(!h.is_live());
        assert_eq!(w.strong_count(), 0);
        drop(w);
        *p.me.borrow_mut() = None;
        assert_eq!(gc::collect(), 0);
    }

    #[test]
    fn a_caught_nested_panic_is_reported() {
        gc::disable();
        struct Catch(Gc<Node>);
        impl Trace for Catch {
            fn trace(&self, v: &mut Visitor<'_>) {
                self.0.trace(v);
            }
        }
        impl DeepCopy for Catch {
            fn deep_copy(&self, c: &mut DeepCopier<'_>) -> Self {
                let r = panic::catch_unwind(AssertUnwindSafe(|| self.0.deep_copy(c)));
                assert!(r.is_err());
                Catch(self.0.clone())
            }
        }
        let live = Rc::new(Cell::new(0));
        let bad = Gc::new(Node {
            id: 1,
            edges: RefCell::new(Vec::new()),
            back: RefCell::new(None),
            live: live.clone(),
            poison: true,
        });
        live.set(1);
        let c = Gc::new(Catch(bad));
        let err = panic::catch_unwind(AssertUnwindSafe(|| drop(deep_copy(&c)))).unwrap_err();
        assert!(
            err.downcast_ref::<String>()
                .unwrap()
                .contains("left unfinished")
        );
        drop(c);
        assert_eq!(live.get(), 0);
        assert_eq!(gc::collect(), 0);
    }
}

/// `deep_copy` for the process-wide heap: the same copier and memo (a
/// thread-local value may hold `sync::Gc` handles, copied with it), with
/// placeholders from `sync::raw::allocate_placeholder`.
mod sync_copy {
    use core::any::TypeId;
    use core::mem::ManuallyDrop;
    use core::ptr::NonNull;
    use std::collections::hash_map::Entry;

    use ouro_cyclegc::ObjHeader;
    use ouro_cyclegc::sync::SyncHeader;
    use ouro_cyclegc::sync::raw;

    use super::{AddrSet, DeepCopier, DeepCopy, MAX_DEPTH, Memo, Ops, Slot, type_mismatch};
    use crate::Trace;
    use crate::sync::handle::SyncBox;
    use crate::sync::{Gc, Weak};

    struct OpsOf<T>(core::marker::PhantomData<T>);

    impl<T: DeepCopy + Trace + Send + Sync + 'static> OpsOf<T> {
        const OPS: Ops = Ops {
            release: release_strong::<T>,
            fill: fill::<T>,
        };
    }

    fn erase(p: NonNull<SyncHeader>) -> NonNull<ObjHeader> {
        p.cast()
    }

    fn unerase(p: NonNull<ObjHeader>) -> NonNull<SyncHeader> {
        p.cast()
    }

    /// # Safety
    /// `obj` is an erased `SyncBox<T>` header and the caller gives up one
    /// counted strong reference to it.
    unsafe fn release_strong<T>(obj: NonNull<ObjHeader>) {
        // SAFETY: caller contract; dropping the handle decrements the count
        // and frees a placeholder without a value drop at zero.
        drop(unsafe { Gc::<T>::from_header(unerase(obj)) });
    }

    /// Copies the value of `src` into the placeholder `copy`.
    ///
    /// # Safety
    /// As `super::fill`: one unfilled slot of `copier` made for `T` on the
    /// process-wide heap, filled once.
    unsafe fn fill<T: DeepCopy + Trace + Send + Sync + 'static>(
        src: NonNull<ObjHeader>,
        copy: NonNull<ObjHeader>,
        copier: &mut DeepCopier<'_>,
    ) {
        // SAFETY: the memo holds a counted strong reference to `src` until
        // the copier is dropped; the handle only borrows it (`ManuallyDrop`).
        let src = ManuallyDrop::new(unsafe { Gc::<T>::from_header(unerase(src)) });
        copier.memo.depth += 1;
        let value = T::deep_copy(&src, copier);
        copier.memo.depth -= 1;
        let copy = unerase(copy);
        // SAFETY: `copy` came from `allocate_placeholder` with `SyncBox<T>`'s
        // vtable, the memo keeps it allocated, and no one can have a
        // reference to its value (dereferencing a placeholder panics). The
        // value is written once, completely, then the placeholder filled
        // once (caller contract).
        unsafe {
            (&raw mut (*copy.cast::<SyncBox<T>>().as_ptr()).value).write(value);
            raw::fill_placeholder(copy);
        }
        copier.memo.unfilled -= 1;
    }

    /// The header of a copy found in the memo, checked to be a
    /// `SyncBox<T>` (see `super::checked_copy`).
    fn checked_copy<T: 'static>(copy: NonNull<ObjHeader>) -> NonNull<SyncHeader> {
        let copy = unerase(copy);
        // SAFETY: the memo holds a strong reference to every copy it lists,
        // and this key's entry was made by this heap (addresses of the two
        // heaps' objects never coincide while both are alive).
        let vtable = unsafe { copy.as_ref() }.vtable();
        if (vtable.type_id)() != TypeId::of::<T>() {
            type_mismatch()
        }
        copy
    }

    impl DeepCopier<'_> {
        fn run_sync<T: DeepCopy + Trace + Send + Sync + 'static>(&mut self, root: &Gc<T>) -> Gc<T> {
            let copy = self.copy_sync_gc(root);
            self.drain();
            copy
        }

        fn copy_sync_gc<T: DeepCopy + Trace + Send + Sync + 'static>(
            &mut self,
            src: &Gc<T>,
        ) -> Gc<T> {
            let key = Gc::header_ptr(src).as_ptr().addr();
            let slot = match self.memo.copies.entry(key) {
                Entry::Occupied(e) => {
                    let copy = checked_copy::<T>(*e.get());
                    // SAFETY: the memo holds a strong reference to `copy`.
                    unsafe { raw::inc_strong(copy) };
                    // SAFETY: one strong reference was just counted, and the
                    // object is a `SyncBox<T>` (checked).
                    return unsafe { Gc::from_header(copy) };
                }
                Entry::Vacant(e) => {
                    // Two strong references: the memo's and the handle's.
                    // SAFETY: `vtable_of::<T>()` is `T`'s vtable.
                    let copy = erase(unsafe {
                        raw::allocate_placeholder(crate::sync::handle::vtable_of::<T>(), 2)
                    });
                    // The memo's counted reference to the source.
                    let src_ref = ManuallyDrop::new(src.clone());
                    e.insert(copy);
                    let slot = Slot {
                        src: erase(Gc::header_ptr(&src_ref)),
                        copy,
                        ops: &OpsOf::<T>::OPS,
                    };
                    self.memo.slots.push(slot);
                    slot
                }
            };
            // SAFETY: `allocate_placeholder` counted a strong reference for
            // this handle; made before the value is copied so that a panic
            // gives it back.
            let handle = unsafe { Gc::from_header(unerase(slot.copy)) };
            self.memo.unfilled += 1;
            if self.memo.depth < MAX_DEPTH {
                // SAFETY: the slot was just made for `T` and is not filled
                // or pending.
                unsafe { fill::<T>(slot.src, slot.copy, self) };
            } else {
                self.memo.pending.push(slot);
            }
            handle
        }

        fn copy_sync_weak<T: DeepCopy + Trace + Send + Sync + 'static>(
            &mut self,
            src: &Weak<T>,
        ) -> Weak<T> {
            let Some(target) = src.upgrade() else {
                return Weak::new();
            };
            let key = Gc::header_ptr(&target).as_ptr().addr();
            if let Some(&copy) = self.memo.copies.get(&key) {
                let copy = checked_copy::<T>(copy);
                // SAFETY: the memo keeps `copy` allocated.
                unsafe { raw::inc_weak(copy) };
                // SAFETY: one weak reference was just counted; a `SyncBox<T>`.
                return unsafe { Weak::from_header(copy) };
            }
            if self.memo.inside.contains(&key) {
                return Gc::downgrade(&self.copy_sync_gc(&target));
            }
            self.memo.weak_to_source.push(key);
            src.clone()
        }
    }

    impl<T: DeepCopy + Trace + Send + Sync + 'static> DeepCopy for Gc<T> {
        /// The copy of the object: made once per source object and shared
        /// by every handle to it in the copy.
        #[inline]
        fn deep_copy(&self, copier: &mut DeepCopier<'_>) -> Self {
            copier.copy_sync_gc(self)
        }
    }

    impl<T: DeepCopy + Trace + Send + Sync + 'static> DeepCopy for Weak<T> {
        /// A weak handle to the copy of the target if the target is part of
        /// the copied graph, to the original otherwise (see
        /// [`deep_copy`](crate::sync::deep_copy)).
        fn deep_copy(&self, copier: &mut DeepCopier<'_>) -> Self {
            copier.copy_sync_weak(self)
        }
    }

    /// Copies the object graph reachable from `root` with Python's
    /// `copy.deepcopy` semantics, as [`crate::deep_copy`] does on the
    /// thread-local heap: shared nodes stay shared, cycles stay cycles, a
    /// `Weak` to an object of the graph points into the copy, and the stack
    /// depth does not grow with the graph.
    ///
    /// The copy runs on the calling thread. Its objects are not visible to
    /// other threads until `deep_copy` returns them (a handle that a
    /// `DeepCopy` impl sends away meanwhile only panics if dereferenced
    /// before its object is filled in); automatic collections may run
    /// meanwhile and do not see the objects still being built.
    ///
    /// # Examples
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// # use ouro_macros::{DeepCopy, Trace};
    /// use ouro::{DeepCopy, Trace};
    /// use ouro::sync::{Gc, deep_copy};
    /// use std::sync::Mutex;
    ///
    /// #[derive(Trace, DeepCopy)]
    /// struct Node { name: String, next: Mutex<Option<Gc<Node>>> }
    ///
    /// let a = Gc::new(Node { name: "a".into(), next: Mutex::new(None) });
    /// let b = Gc::new(Node { name: "b".into(), next: Mutex::new(Some(a.clone())) });
    /// *a.next.lock().unwrap() = Some(b.clone()); // a <-> b
    /// let a2 = deep_copy(&a);
    /// let b2 = a2.next.lock().unwrap().clone().unwrap();
    /// assert_eq!((a2.name.as_str(), b2.name.as_str()), ("a", "b"));
    /// assert!(!Gc::ptr_eq(&a2, &a));
    /// let back = b2.next.lock().unwrap().clone().unwrap();
    /// assert!(Gc::ptr_eq(&back, &a2)); // the copy is a cycle of its own
    /// # *a.next.lock().unwrap() = None;
    /// # *a2.next.lock().unwrap() = None;
    /// ```
    ///
    /// # Panics
    ///
    /// As [`crate::deep_copy`]: propagates a panic of a `DeepCopy` impl
    /// (for example `Mutex::deep_copy` of a poisoned mutex, or of a mutex
    /// this thread holds), after releasing what the copy made.
    pub fn deep_copy<T: DeepCopy + Trace + Send + Sync + 'static>(root: &Gc<T>) -> Gc<T> {
        let mut memo = Memo::new(AddrSet::default());
        let copy = DeepCopier { memo: &mut memo }.run_sync(root);
        let Some(inside) = memo.second_pass() else {
            return copy;
        };
        drop(copy);
        drop(memo);
        let mut memo = Memo::new(inside);
        DeepCopier { memo: &mut memo }.run_sync(root)
    }
}

pub use sync_copy::deep_copy as sync_deep_copy;

impl<T: DeepCopy> DeepCopy for std::sync::Mutex<T> {
    /// Copies the current contents into a new mutex.
    ///
    /// The mutex is held while its contents are copied (so a graph whose
    /// copy reaches other mutexes holds several at once, in the order the
    /// copy meets them); a panic of a nested copy does not poison it.
    ///
    /// # Panics
    /// If the mutex is poisoned, or held by this thread (`lock` would
    /// deadlock or panic). A mutex held by another thread is waited for.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// # use ouro_macros::{DeepCopy, Trace};
    /// use ouro::{DeepCopy, Trace};
    /// use ouro::sync::{Gc, deep_copy};
    /// use std::sync::Mutex;
    ///
    /// #[derive(Trace, DeepCopy)]
    /// struct Cell { v: Mutex<Vec<u32>> }
    ///
    /// let a = Gc::new(Cell { v: Mutex::new(vec![1, 2]) });
    /// let b = deep_copy(&a);
    /// b.v.lock().unwrap().push(3);
    /// assert_eq!(*a.v.lock().unwrap(), [1, 2]);
    /// ```
    fn deep_copy(&self, copier: &mut DeepCopier<'_>) -> Self {
        let guard = self.lock().expect("ouro::deep_copy: the mutex is poisoned");
        // A panic of a nested copy must not poison the source's mutex: the
        // guard is released first, then the panic goes on (the copy is
        // abandoned; nothing here continues it).
        let copy =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| guard.deep_copy(copier)));
        drop(guard);
        match copy {
            Ok(v) => std::sync::Mutex::new(v),
            Err(p) => std::panic::resume_unwind(p),
        }
    }
}

impl<T: DeepCopy> DeepCopy for std::sync::RwLock<T> {
    /// Copies the current contents into a new lock.
    ///
    /// # Panics
    /// If the lock is poisoned, or write-locked by this thread.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// # use ouro_macros::{DeepCopy, Trace};
    /// use ouro::{DeepCopy, Trace};
    /// use ouro::sync::{Gc, deep_copy};
    /// use std::sync::RwLock;
    ///
    /// #[derive(Trace, DeepCopy)]
    /// struct Shared { names: RwLock<Vec<String>> }
    ///
    /// let a = Gc::new(Shared { names: RwLock::new(vec!["x".into()]) });
    /// let b = deep_copy(&a);
    /// b.names.write().unwrap().clear();
    /// assert_eq!(a.names.read().unwrap().len(), 1);
    /// ```
    fn deep_copy(&self, copier: &mut DeepCopier<'_>) -> Self {
        let guard = self
            .read()
            .expect("ouro::deep_copy: the RwLock is poisoned");
        std::sync::RwLock::new(guard.deep_copy(copier))
    }
}
