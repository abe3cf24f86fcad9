//! The process-wide heap behind `ouro::sync::Gc<T>`: a concurrent cycle
//! collector that never stops the world.
//!
//! This module is the protocol's specification; the code in its submodules
//! follows it step by step and cites the invariants by name (**I1**…).
//!
//! # Objects
//!
//! A tracked object is `SyncLinks` (two list links, 16 B) followed by a
//! [`SyncHeader`] (24 B) and the value. The header has three atomics:
//!
//! - `counts: AtomicU64` — the strong count in bits 0..62, the `CLAIMED`
//!   bit 62 and the `MARKED` bit 63 (step 3). `clone` is one `fetch_add(1)`
//!   whose slow path is taken when the old word is negative (`MARKED`), and
//!   `drop` one `fetch_sub(1)` whose slow path is taken when the old word is
//!   exactly 1: on x86-64 the same `lock inc` + `jle` and `lock dec` + `jne`
//!   as `Arc`.
//! - `weak: AtomicU32` — weak handles, plus one held by the strong side
//!   collectively (as in `Arc`); the memory is freed when it reaches 0.
//! - `flags: AtomicU32` — `IN_COLLECTOR`, `ZOMBIE`, `EXCLUSIVE`, `DEAD`,
//!   `FINALIZED`, `WEAK_CLEARED`, the generation, the home shard and the
//!   heap's id (see "Heaps").
//!
//! Untracked objects (`Trace::needs_trace == false`) have no links, are on
//! no list, and behave exactly like `Arc`.
//!
//! # Lists and ownership
//!
//! Every tracked object has a *home shard* (the allocating thread's, one of
//! 16). A shard is a lock around four lists (generations 0, 1, 2 and the
//! frozen objects): a spin lock taken with a compare-and-swap and released
//! with a release store (`prims::SpinLock`; acquire/release, as a `Mutex`),
//! since a mutator takes it on every link and unlink. **I1**: an object's links are read or written only (a)
//! under its home shard's lock while `IN_COLLECTOR` is clear, or (b) by the
//! collection that set `IN_COLLECTOR` while it is set (and I6). `IN_COLLECTOR`
//! is set and cleared only by a collection, under the home shard's lock or
//! on objects it claimed.
//!
//! # Heaps
//!
//! Everything here is per heap: the process-wide default heap (id 0), or
//! one made with [`control::Heap::new`] (ids 1 to 4095, in bits 20-31 of
//! a tracked object's `flags`, written at its allocation). A mutator finds
//! its object's shard through that id (`heap::lock_home`; the default
//! heap's path costs one `id == 0` branch). A collection takes, traces as
//! its own and claims only objects of its heap: an object of another heap
//! is a target outside the collection, so a handle to it is an external
//! reference, and one from it a reference from outside (a cycle spanning
//! two heaps is never collected; `Heap::cross_heap_edges` counts such
//! handles). Two heaps' collections may run at the same time: an object
//! counts as owned by the running collection only with `IN_COLLECTOR` and
//! that collection's heap id (`tables::owned_index`), so neither reads
//! links the other owns. The thread-local "collecting" mark names the heap;
//! `collect()` on a thread that collects any heap returns 0 at once.
//!
//! Made heaps are never freed (their ids are never reused): a batch, a
//! mutator or an object may name a heap after its `Heap` is dropped. A
//! dropped `Heap` collects itself, waits for its drops, and moves what is
//! left to the same generations of the default heap, rewriting the id
//! under both shard locks; a mutator re-reads the id after taking a shard
//! lock and retries if it changed. (A `Heap` dropped by the thread that
//! is collecting it, from its own callback or drop, moves its lists only:
//! objects that collection gives back later stay in the made heap, alive
//! and sound, found by no collection.)
//!
//! # Mutators
//!
//! - *Allocation* writes the header, then links the object into generation 0
//!   of its shard under the shard lock.
//! - *Clone* and *drop* are single atomic operations on `counts` (`Relaxed`
//!   increment; `Release` decrement, `Acquire` fence on reaching zero, as
//!   `Arc`). They take no lock and never wait. A clone of a `MARKED` object
//!   then clears the mark (a second read-modify-write) before it returns
//!   the new handle.
//! - *Drop to zero* (the old word was 1: `CLAIMED` and `MARKED` clear) locks
//!   the home shard. If `IN_COLLECTOR` is clear, it unlinks the object,
//!   unlocks, drops the value and releases the strong side's weak count. If
//!   `IN_COLLECTOR` is set, it sets `ZOMBIE` and unlocks: the collector now
//!   owns the object and drops it when it gives the object back (**I2**: the
//!   value of an object with `IN_COLLECTOR` set is never dropped or moved by
//!   a mutator, so the collector may read it).
//! - `Gc::get_mut` / `Gc::try_unwrap` need a unique handle. Under the shard
//!   lock they check that `IN_COLLECTOR` is clear (otherwise they wait for
//!   the collection to give the object back, or, on the collecting thread
//!   itself, fail) and set `EXCLUSIVE` (get_mut) or take the value
//!   (try_unwrap). **I3**: the collector never reads the value of an object
//!   whose `EXCLUSIVE` bit is set; the bit is cleared when the strong or weak
//!   count shows that the `&mut T` can no longer be alive, and by the
//!   verification below.
//! - `Weak::upgrade` is a compare-exchange on `counts` that fails when the
//!   strong count is 0 or `CLAIMED` is set, and clears `MARKED`.
//! - **I5**: while `MARKED` is set, a drop that takes the strong count to
//!   zero does nothing else (the old word was not 1); the collector takes
//!   that zero over when it clears the mark (the object becomes a zombie,
//!   see step 7). The collector sets `MARKED` only on objects it owns and
//!   clears it on every one of them (with the claim, or by itself) before
//!   it gives them back or runs user code.
//!
//! # A collection
//!
//! The *critical part* of a collection (steps 1 to 4, and step 7 for the
//! survivors) holds the collector lock, so one runs at a time
//! (`collect()` waits for the one in progress). Finalizers, drops and
//! frees run after the lock is released (see "Where user code runs").
//!
//! 1. **Take.** For each shard, under its lock: take generations `0..=g`,
//!    set `IN_COLLECTOR` on every object. The objects (the set *W*) now
//!    belong to the collector (I1, I2); allocation, clone, drop and mutation
//!    go on in every thread.
//! 2. **Guess** (CPython's trial deletion, racing the mutators). Copy each
//!    strong count into `gc_refs`, subtract one for every edge found by
//!    `trace` from inside W, keep everything reachable from an object with
//!    `gc_refs > 0`. Locks inside values are only *tried*; a busy lock hides
//!    its edges, which only makes more objects look reachable. Because
//!    counts and edges change under it, the result is only a guess: the set
//!    *G* of candidates. **Nothing is freed on the strength of the guess.**
//! 3. **Verify** G. (a) Trace every candidate again, this time *holding*
//!    every `Mutex`/`RwLock` guard that ouro's `Trace` impls take (the
//!    visitor keeps them until step 4), counting for each candidate the
//!    edges from candidates to it. A lock that cannot be taken at once
//!    marks its object as failed. (b) **Mark** every candidate, after every
//!    trace of (a): `fetch_or(MARKED)` on its `counts`, which returns its
//!    word at that moment. (c) Read every candidate's weak count, then its
//!    `counts` word again. A candidate fails if the word is not the one its
//!    mark returned with `MARKED` set, if its strong count at the mark
//!    differs from its counted edges, if it is `EXCLUSIVE`, or if its count
//!    is 0 without `ZOMBIE` (a mutator is between its decrement and its
//!    shard lock). (d) Everything reachable from a failed candidate along
//!    the counted edges fails too. The rest, *G'*, is garbage; the failed
//!    candidates are unmarked (I5):
//!
//!    *Proof.* Let T be a moment after the last mark of (b) and before the
//!    first read of (c). After its trace in (a) no handle can leave a slot
//!    inside a candidate's value: a slot is either in a lock the collector
//!    holds, or in plain memory that nobody can mutate (no `&mut` exists: I3
//!    and `IN_COLLECTOR` exclude `get_mut`, `try_unwrap` and drops). So the
//!    handles counted in (a) all exist at each candidate's mark and at T,
//!    each counted once (the visitor's frame rules). Take a candidate o
//!    that passes (c). Between its mark and its read in (c) no handle to o
//!    was made or dropped: an `upgrade` clears `MARKED`; a `clone` clears it
//!    before it returns the handle it made, and that handle can be stored
//!    where (a) counts it, or dropped, only after that; a drop of a handle
//!    that existed at the mark is the drop of a counted one (their number
//!    is the strong count at the mark), which cannot happen before step 4.
//!    So every handle to o at T is one counted in (a), and for every o in
//!    G' `strong(o) = counted(o) <= handles to o inside G' values <=
//!    strong(o)` (the counted edges from failed candidates made their
//!    targets fail in (d)): at T every handle to a G' object lives inside a
//!    G' value. Any `&T` into a G' value would have to be borrowed from a
//!    handle outside G' (Rust's borrows form a chain back to an owner), so
//!    none exists, and no thread can reach G' again except through
//!    `Weak::upgrade`.
//!
//!    The proof needs only this: every candidate's value was traced with
//!    its guards kept until the claim, and every mark comes after every
//!    trace and before every read of (c). It holds for any candidate set,
//!    however it was chosen. That is what the first pass below uses.
//!
//! 4. **Claim.** Compare-exchange each G' `counts` word from the value read
//!    in (c) to the same count with `CLAIMED` set and `MARKED` clear. From
//!    then on `upgrade` fails; a failed exchange (an `upgrade` got there
//!    first) returns all of G to the survivors, unmarked. Set
//!    `WEAK_CLEARED`, then release the held guards. When no candidate has a
//!    weak handle (its weak count is 1 in (c), which comes after T), the
//!    claim is a plain store: by the proof nobody else can reach a G' object
//!    any more, so nobody else writes its word, and nothing can make the
//!    claim fail. (c) reads the weak count *before* the word: an `upgrade`
//!    whose weak handle is then dropped is either seen by the word read
//!    (the weak count's `Release` decrement comes after the upgrade, and
//!    the weak read is `Acquire`), or came after the weak read found no
//!    weak handle, which cannot be (a new weak handle needs a strong one
//!    outside G'). Read the other way round, an upgrade between the two
//!    reads would go unseen, and the plain store would overwrite its count
//!    (the loom model `upgrade_during_the_mark` found this); `DEAD` (step 6) is then set in the
//!    same pass when no finalizer can run, and each candidate's guards are
//!    released right after its claim. Everything but G' is given back now
//!    (step 7), before any user code runs: a thread waiting in `get_mut` for
//!    one of those objects must not wait for finalizers or drops.
//!
//! **How the steps run.** Steps 2 to 4 are done twice, first on small sets:
//!
//! - *First pass*, in chunks of 1024 objects of W in table order: read each
//!   object's word, trace it with its guards kept (recording its edges:
//!   this is step 2's trace too, and step 3 (a)), then run trial deletion
//!   *inside the chunk* (edges from outside the chunk count as external)
//!   and step 3 (b), (c) and (d) on the chunk's candidates (a mark must
//!   return the word read before the trace, the count the trial explained
//!   by the counted edges), claim what passes (step 4), unmark the rest,
//!   and release the chunk's guards. By the remark after the proof this is a
//!   verification like any other. Garbage whose cycles stay inside one
//!   chunk (objects allocated together and dropped together, the common
//!   case) is traced once. A mutator that wants a lock of a chunk object
//!   waits at most until the end of that chunk (tens of microseconds; a
//!   chunk also ends after 8192 recorded handles). Keeping guards has a
//!   cost, so a chunk that follows one without candidates is traced first
//!   with each guard released right after its lock's contents are traced;
//!   only if trial deletion inside the chunk then finds candidates is the
//!   chunk traced again with the guards kept (its words read again too),
//!   and only that second trace is verified and claimed: the first one is a
//!   guess like step 2's. Step 1 lays W out for
//!   this: each shard's lists oldest generation first (so that the lists,
//!   given back in table order, stay in allocation order), and, when two
//!   shards' lists are large, the shards in turns of `1024 / shards`
//!   objects (rounded down to a power of two), each shard's lists as one
//!   stream, so that the two halves of a structure that two threads built
//!   at once share a chunk whichever generations they reached. The layout is planned from the lists' lengths (read under each
//!   shard's lock first), so that the take writes each object to its place
//!   at once; what a list gained or lost in between goes to the end of the
//!   table, or leaves a hole that the end of the table fills.
//! - *Global*: step 2's guess over all of W on the words and edges the
//!   first pass recorded (no second trace; the claimed garbage is not a
//!   root, and its edges count), then steps 3 and 4 on the candidates left.
//!   Step 3 (b) counts the edges the first pass recorded from the claimed
//!   garbage as counted edges: those values cannot change any more (nobody
//!   can reach them), so they are frozen as surely as a held lock.
//! - *Report*, only if the first pass traced a value whose `trace` is not
//!   structural (see "Which values the verification accepts"): such a
//!   value is a root, but its edges are recorded like any other's. Over the
//!   survivors (everything not claimed), step 2's guess again with every
//!   recorded edge trusted: the strong count the first pass read, minus
//!   the edges recorded from other survivors (a handle inside the claimed
//!   garbage goes with it: external), keeping everything reachable from
//!   those with a remainder and from those whose edges were not all
//!   recorded (`EXCLUSIVE`, or a lock busy). What this leaves and a
//!   non-structural value reaches is *reported*: counted as uncollectable,
//!   its non-structural types named in a `log` warning once per heap
//!   (after the critical part, without the lock: a logger is user code),
//!   and under `SAVEALL` kept in `garbage()`. The report takes no lock and
//!   traces nothing again; it only reads the collector's tables and the
//!   headers of objects it owns (I2), before step 7 gives them back. It
//!   claims and frees nothing, so a mutator racing it can only make it
//!   wrong. Its `SAVEALL` references are taken as `Weak::upgrade` takes
//!   one, which fails on a count that reached zero: an object a mutator is
//!   dropping meanwhile (one of I2's zombies) is never brought back.
//! 5. **Finalize.** If some object of G' has a finalizer, run each
//!    finalizer at most once (`FINALIZED`), then verify G' again (steps 3a-d
//!    with the claimed counts): if a finalizer resurrected anything, none of
//!    G' is freed now (PEP 442) and the claims are withdrawn, after clearing
//!    `WEAK_CLEARED` (the objects live on, and so do their weak handles).
//!    Finalizers may dereference every object of G' (`IN_COLLECTOR` stops
//!    only the collector's own `trace` calls, `raw::check_deref`).
//! 6. **Destroy.** Set `DEAD` on all of G' (dereferencing a handle to it now
//!    panics) and clear `IN_COLLECTOR`, drop every value, then end each
//!    claim: if no handle is left, release the strong side's weak count and
//!    free the memory whose weak count reached zero; if a `Drop` moved a
//!    handle out of the garbage, that handle keeps the (dead) header and
//!    its drop releases it (the value is never dropped twice). A drop that
//!    decrements a `CLAIMED` count to zero does nothing (**I4**: a `CLAIMED`
//!    object is freed only by the collector). Without finalizers this goes
//!    group by group, while each group's memory is in the cache: the
//!    garbage each chunk of the first pass claimed, then what the global
//!    steps claimed (every handle to an object a chunk claimed is in a value
//!    that chunk claimed; handles to the global garbage may be in any G'
//!    value). The order is for speed only: a count above zero at the end of
//!    the claim takes the moved-handle path above, whichever value holds it.
//! 7. **Give back** (the survivors after step 4; G' after a withdrawn claim
//!    or under `SAVEALL`). Under each shard lock: clear `IN_COLLECTOR`,
//!    link the objects into generation `g + 1` (an automatic young
//!    collection may promote into generation 2: it first moves generation
//!    1 there, whose objects are older, so that each shard's lists, oldest
//!    first, stay in allocation order for step 1), and collect the objects
//!    marked `ZOMBIE` meanwhile; drop those after unlocking. While a
//!    collection owns an object, a deref of it from a `trace` the collector
//!    runs panics (one object's `trace` may not reach into another's value).
//!
//! # Where user code runs
//!
//! Under the collector lock, a collection runs no `Drop`, no finalizer and
//! no logger: only `trace` (structural, or a root) and the `Start`/`Stop`
//! callbacks,
//! with the thread marked as collecting (so `collect()` there returns 0).
//! When the critical part ends, the collection holds its claimed garbage G'
//! (I4) and the zombies it collected while giving objects back (I2), and
//! lets the lock go. Then, without it (`collect::finish`): the finalizers;
//! the lock again for the re-verification of step 5 and, if the claims are
//! withdrawn, the give-back; without it, step 6 and the zombies' drops;
//! the report's warnings and the statistics; the lock again for the `Stop`
//! callbacks. So a `Drop` or
//! finalizer can join a thread that is in `collect()`, take a lock that such
//! a thread holds, collect (a collection of its own, nested on this thread)
//! or allocate (no automatic collection starts there, DESIGN 6).
//!
//! **I6**: while a collection owns objects outside its critical part (G'
//! with `IN_COLLECTOR` set, until step 6 clears it), it writes their links,
//! and clears `IN_COLLECTOR` on objects it gives back, only while holding
//! the collector lock again. Another collection reads the index in the
//! `prev` link of any object with `IN_COLLECTOR` it meets (to find it is not
//! one of its own: `owned_index` compares with its table), and a finalizer
//! may have stored a handle to a G' object in an object it takes; the lock
//! keeps that read from racing the write. The re-verification holds the
//! lock for the same reason (it reads `prev` of whatever its trace meets).
//!
//! An automatic collection runs its critical part on the allocating
//! thread, which may hold a lock a `Drop` of the garbage takes: the rest
//! goes to a background thread (`background`), unless nothing is left to
//! drop. It is queued before the collector lock is released, so that a
//! later critical part finds it.
//!
//! `collect()` waits for the critical part of a collection in progress,
//! then runs its own. Before it returns it finalizes and drops, on the
//! calling thread, what it claimed and what earlier automatic collections
//! left queued for the background thread (it takes those batches over, in
//! its critical part); and it waits for the batch the background thread is
//! dropping, at most one second, since a `Drop` of that batch may be
//! waiting for the caller (for a lock it holds, or for it to end). It never
//! waits for the drops of another thread's `collect()`: a `Drop` of that
//! garbage may be joining the caller. Nor, on the background thread itself,
//! for the batch the caller is part of. So when it returns, everything that
//! was unreachable at the call has been finalized and dropped, except what
//! another thread is dropping at that moment (another thread's
//! `collect()`, or the background thread past the bound) and what a
//! finalizer resurrected (PEP 442); all of it has been claimed by some
//! collection (`Weak::upgrade` fails on it). `wait_for_drops()` waits for
//! the rest, without a bound (tickets in `SyncHeap::unfinished`). A panic
//! in user code never stops the rest of a collection: `collect()`
//! propagates the first one (of its own garbage or of what it took over)
//! when the heap is consistent; the background thread logs it.
//!
//! # Orderings
//!
//! The counts use the orderings of `Arc` (the increment may be reordered
//! with anything; the decrement is `Release` so that all uses of the value
//! happen before the `Acquire` fence of the thread that frees it). The
//! verification marks and reads `counts` with `SeqCst` and takes locks with
//! acquire/release semantics, so step (c) sees every count change that
//! happened before a guard it holds was released by a mutator. The clear of
//! `MARKED` in `clone` is `Relaxed`: what step 3 needs of it is that every
//! later use of the new handle (its drop, or its store into a slot that
//! (a) reads under the slot's lock) comes after it, and those uses are
//! ordered after it by the mutator's own program order and the lock.
//! Unmarking is `AcqRel`: when it finds a zero reached while marked (I5) it
//! reads the dropper's `Release` decrement, as `Arc`'s `Acquire` fence
//! does. `flags` bits
//! that matter across threads (`IN_COLLECTOR`, `ZOMBIE`, `EXCLUSIVE`) are
//! written under the shard lock, whose acquire/release orders them;
//! `DEAD`/`WEAK_CLEARED`/`FINALIZED` are written by the collector on objects
//! it has claimed (no other thread writes their flags, I4), and read with
//! `Acquire`. Memory is never freed
//! while another thread can still read it: the strong side frees only after
//! its count reached zero under the shard lock (I1, I2), weak handles keep
//! the header (the weak count), and the collector frees only G' (unreachable
//! by the proof, I4).
//!
//! No deferred reclamation scheme (hazard pointers, or crossbeam's deferred
//! frees) is needed, because no thread ever reads memory it does not hold
//! a count or a lock for: a handle's strong count keeps the value, a weak
//! count keeps the header (`upgrade` reads only the header), the shard lock
//! or `IN_COLLECTOR` keeps the links, a visited handle keeps its target for
//! the duration of the visit, and the collector frees only what it proved
//! nobody can reach. A design where the collector walked lists that
//! mutators unlink from without a lock would need one; the shard locks are
//! what makes this one simpler.
//!
//! The strong count has 62 bits. `clone`'s fast path does not test it for
//! overflow (the sign bit it tests is `MARKED`): reaching 2^62 takes 2^62
//! increments without a decrement, 146 years at one a nanosecond, the same
//! kind of bound as `Arc`'s argument that no program has `isize::MAX`
//! threads racing its check. (Were it reached, the carry would set
//! `CLAIMED`, and the object would leak.) The slow paths of an increment
//! (`clone` of a marked object, `upgrade`) abort at 2^61, as `Arc` does at
//! `isize::MAX`. A version counter in the word, which this design had
//! before the mark, made `clone` and `drop` test bits of the old word that
//! the flags of one `lock add` do not show, which cost 1.2x `Arc`'s time
//! for a clone and a drop.
//!
//! # What it costs
//!
//! Clone and drop: one atomic each, the same instructions as `Arc`'s
//! (another one for a clone while the collector verifies the object).
//! Dereference: one `Acquire`
//! load of `flags` (to panic on a collected value instead of reading it).
//! Allocation and drop to zero: one uncontended shard lock. A collection
//! holds each shard lock while it reads the lengths of its lists, while it
//! takes that shard's objects (a pass over them) and while it gives back at most 4096 of them at a time; it holds
//! the locks inside a chunk's values for the chunk's first pass (tens of
//! microseconds), and the locks inside the global candidates' values during
//! their verification — candidates are almost always garbage, which no
//! other thread can touch. Each candidate costs one more read-modify-write,
//! its mark (two if it fails: the unmark). The memory of the garbage goes
//! back to the pool in one batch. A collection that leaves user code to run
//! after its critical part also takes the `unfinished` lock twice (its
//! ticket), and one with finalizers or `Stop` callbacks takes the collector
//! lock once more; an automatic one that found garbage hands it to the
//! background thread (a queue lock and a wake-up), which drops it on
//! another core while the allocating thread goes on. Every `collect()`
//! takes that queue lock too, under the collector lock, to take the queued
//! batches over. The report costs one
//! more pass over the table and the recorded edges, only in a collection
//! that met a value whose `trace` is not structural.
//!
//! # Which values the verification accepts
//!
//! Step 3 relies on the collector holding every lock behind which it counted
//! a handle, which it can only do for the locks it takes itself, through
//! ouro's `Trace` impls for `Mutex` and `RwLock`; and on `trace` having no
//! other effect. A hand-written `trace` that takes a lock *itself*
//! (`self.m.lock().unwrap().trace(v)`) releases it before the verification
//! ends, and another thread could then move a handle between that lock and
//! a slot not counted yet (so that one handle counts twice) or free a lock
//! the visitor keeps; a `trace` that dereferences handles or mutates values
//! can do the same. So the verification only accepts objects whose type's
//! `trace` is *structural* ([`SyncVTable::structural`], from
//! `Trace::structural`: it only calls `trace` on what the value owns).
//! `#[derive(Trace)]` and ouro's impls are; a hand-written impl is only if
//! it promises so with `unsafe`. Cycles through other values are never
//! freed by this collector, as on the thread-local heap (which counts only
//! structural edges for a reason of its own: see `visitor`, "Only
//! structural `trace`s are counted"). They are kept, and reported (*Report*
//! above): counted as `uncollectable` in the statistics and the callbacks
//! at each collection that finds them, their type named in a `log` warning
//! once, kept in `garbage()` under `SAVEALL` — the thread-local heap's
//! rule.

mod background;
mod collect;
pub mod control;
mod header;
mod heap;
pub(crate) mod prims;
pub mod raw;

pub use header::{SyncHeader, SyncVTable};
pub use raw::ObjectRef;
