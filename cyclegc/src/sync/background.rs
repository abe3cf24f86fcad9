//! The background thread that finishes automatic collections.
//!
//! An automatic collection runs its critical part on the thread that
//! allocates, which may hold locks of its own: a `Drop` or finalizer of the
//! garbage that takes one of them would wait for that thread forever if it
//! ran there. So what is left of the collection (`collect::finish`: the
//! finalizers, the drops, the statistics and the `Stop` callbacks) goes to
//! one thread, `ouro-sync-gc`, started by the first automatic collection
//! that finds something to drop (a program that makes no garbage of the
//! process-wide heap never starts it).
//!
//! - The batch is queued while the collector lock is still held
//!   ([`hand_off`]), so a `collect()` whose critical part comes later finds
//!   it, queued or being finished.
//! - `collect()` takes over what the thread has not started
//!   ([`take_pending`]): it finishes those batches itself, on the calling
//!   thread, as its own garbage (their panics go to its caller). For the
//!   batch the thread is finishing at that moment it waits, at most
//!   [`WAIT_BOUND`]: a `Drop` of that batch may be waiting for a lock the
//!   caller of `collect()` holds, or for the caller to end. Past the bound
//!   `collect()` returns anyway and says so (`log::debug!` each time, and
//!   once `log::warn!`, target `ouro::gc`);
//!   [`super::control::wait_for_drops`] waits without a bound. On the
//!   thread itself (a `Drop` of the batch it finishes calls `collect()`)
//!   there is no wait: that batch is the caller's own.
//! - Memory stays bounded by the collections' own pace: while a batch waits
//!   that the thread has not started, no automatic collection starts
//!   (`has_backlog`), so at most one batch waits and one is dropped; the
//!   garbage made meanwhile stays on the generation lists.
//! - Nothing needs the thread for correctness: the process can exit while
//!   it runs or waits (it is never joined): garbage it has not dropped by
//!   then is not dropped, as a `static`'s value is not.
//! - A panic in a finalizer or a `Drop` it runs does not stop the others
//!   (the heap is made consistent as for `collect()`); the panic hook has
//!   reported it, and it is logged (`log::error!`, target `ouro::gc`), as
//!   there is no caller to propagate it to.
//!
//! The thread finishes a batch as a whole, not object by object from a
//! cursor that `collect()` could advance too: a batch is one collection's
//! tables (G' in groups whose claims end group by group after their drops;
//! finalizers that must all have run before the re-verification), a state
//! that one thread at a time owns, with no lock in its per-object loops. So
//! `collect()` may wait for the rest of a whole batch's drops, not just one
//! object's; the bound covers both.
//!
//! Under loom and Miri there is no thread: the batch is finished at once on
//! the allocating thread (the models and Miri runs check the collection,
//! not the hand-off, and Miri reports a thread still running at exit).

use std::time::Duration;

use super::collect::{self, Batch, Panic, keep_first};

/// How long `collect()` waits for the batch the thread is finishing.
///
/// Long enough for any batch that is merely large: the thread drops
/// millions of objects a second, and a batch is what one automatic
/// collection found (the bench's churn leaves batches of a few thousand
/// nodes, well under a millisecond); a batch whose `Drop`s do slow work
/// (I/O, joins) is rare. Short enough that a `collect()` whose caller holds
/// a lock that such a `Drop` waits for (the deadlock this bound exists for)
/// costs a pause, not a hang. (Under loom there is no background thread.)
#[cfg_attr(loom, allow(dead_code))]
pub(crate) const WAIT_BOUND: Duration = Duration::from_secs(1);

/// The garbage of automatic collections that a `collect()` takes over: the
/// batches the thread had not started, and the number of the one it was
/// finishing (none on the thread itself).
pub(crate) struct Pending {
    batches: Vec<Batch>,
    running: Option<u64>,
}

impl Pending {
    /// Finishes the taken batches on this thread; the first panic of their
    /// user code goes to `panic`.
    pub(crate) fn finish_taken(&mut self, panic: &mut Option<Panic>) {
        for b in self.batches.drain(..) {
            let (_, p) = collect::finish(b.heap, b);
            if let Some(p) = p {
                keep_first(panic, Some(p));
            }
        }
    }

    /// Waits for the batch the thread was finishing, at most
    /// [`WAIT_BOUND`].
    pub(crate) fn wait_for_running(self) {
        debug_assert!(self.batches.is_empty(), "taken batches left unfinished");
        #[cfg(not(any(loom, miri)))]
        if let Some(n) = self.running {
            imp::wait_for(n);
        }
        #[cfg(any(loom, miri))]
        let _ = self.running;
    }
}

/// What is left of a hand-off after the collector lock is released
/// ([`HandOff::complete`]): logging and user code, which do not run under
/// that lock.
#[must_use]
#[cfg_attr(loom, allow(dead_code))]
pub(crate) enum HandOff {
    /// Queued for the thread.
    Queued,
    /// Queued, and this hand-off started the thread.
    Started,
    /// No thread (loom, Miri, or it could not be started: why): the batch
    /// is finished on the allocating thread.
    Here(Box<Batch>, Option<std::io::Error>),
}

/// Queues `batch` for the thread, starting it if needed. The caller holds
/// the collector lock (so that a later critical part finds the batch), and
/// calls [`HandOff::complete`] once it has released it.
pub(crate) fn hand_off(batch: Batch) -> HandOff {
    #[cfg(not(any(loom, miri)))]
    return imp::hand_off(batch);
    #[cfg(any(loom, miri))]
    HandOff::Here(Box::new(batch), None)
}

impl HandOff {
    /// Logs what the hand-off did, or finishes the batch here if there is
    /// no thread. Called without the collector lock.
    pub(crate) fn complete(self) {
        match self {
            HandOff::Queued => {}
            HandOff::Started => log::debug!(
                target: "ouro::gc",
                "sync gc: started the thread `ouro-sync-gc`, which drops the garbage of \
                 automatic collections"
            ),
            HandOff::Here(batch, err) => {
                // The batch first: a logger that panics must not leave it
                // unfinished.
                finish_and_log(*batch);
                if let Some(e) = err {
                    log::warn!(
                        target: "ouro::gc",
                        "sync gc: could not start the background thread ({e}); dropped the \
                         garbage of an automatic collection on the allocating thread"
                    );
                }
            }
        }
    }
}

/// Takes the batches the thread has not started, and notes the one it is
/// finishing, for a `collect()` whose critical part just ended (called
/// under the collector lock: every batch of an earlier critical part has
/// been handed off).
pub(crate) fn take_pending() -> Pending {
    #[cfg(not(any(loom, miri)))]
    return imp::take_pending();
    #[cfg(any(loom, miri))]
    Pending {
        batches: Vec::new(),
        running: None,
    }
}

/// Whether a batch waits that the thread has not started.
#[inline]
pub(crate) fn has_backlog() -> bool {
    #[cfg(not(any(loom, miri)))]
    return imp::BACKLOG.load(std::sync::atomic::Ordering::Relaxed);
    #[cfg(any(loom, miri))]
    false
}

/// Finishes `batch` here, logging a panic of its user code.
fn finish_and_log(batch: Batch) {
    let (_, p) = collect::finish(batch.heap, batch);
    if let Some(p) = p {
        // Neither a panicking logger nor a payload whose own drop panics
        // may end the thread (the batches queued after this one would never
        // be dropped, and `wait_for_drops` would wait for them forever).
        let _ = std::panic::catch_unwind(|| {
            log::error!(
                target: "ouro::gc",
                "sync gc: a finalizer or Drop panicked while an automatic collection dropped its \
                 garbage (the rest of the garbage was dropped)"
            )
        });
        crate::panics::drop_payload(p);
    }
}

#[cfg(not(any(loom, miri)))]
mod imp {
    use std::cell::Cell;
    use std::collections::VecDeque;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Condvar, Mutex, MutexGuard};
    use std::time::Instant;

    use super::{Batch, HandOff, Pending, WAIT_BOUND, finish_and_log};

    struct Queue {
        batches: VecDeque<Batch>,
        started: bool,
        /// The batches the thread has taken from `batches`, and how many of
        /// them it has finished: it is finishing batch number `taken` while
        /// `taken > done` (numbered from 1).
        taken: u64,
        done: u64,
    }

    static QUEUE: Mutex<Queue> = Mutex::new(Queue {
        batches: VecDeque::new(),
        started: false,
        taken: 0,
        done: 0,
    });
    /// Wakes the thread (a batch was queued).
    static WAKE: Condvar = Condvar::new();
    /// Wakes the `collect()`s waiting for a batch (`done` grew).
    static DONE: Condvar = Condvar::new();
    /// `QUEUE.batches` is not empty (read without the lock by
    /// `has_backlog`; a stale answer only moves an automatic collection by
    /// one allocation).
    pub(super) static BACKLOG: AtomicBool = AtomicBool::new(false);
    /// Whether a `collect()` has stopped waiting at [`WAIT_BOUND`] (the
    /// warning is given once).
    static WARNED: AtomicBool = AtomicBool::new(false);

    std::thread_local! {
        /// Set on the thread itself.
        static ON_THREAD: Cell<bool> = const { Cell::new(false) };
    }

    fn queue() -> MutexGuard<'static, Queue> {
        QUEUE.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn hand_off(batch: Batch) -> HandOff {
        let mut q = queue();
        let mut handed = HandOff::Queued;
        if !q.started {
            let spawned = std::thread::Builder::new()
                .name("ouro-sync-gc".into())
                .spawn(run);
            if let Err(e) = spawned {
                return HandOff::Here(Box::new(batch), Some(e));
            }
            q.started = true;
            handed = HandOff::Started;
        }
        q.batches.push_back(batch);
        BACKLOG.store(true, Ordering::Relaxed);
        drop(q);
        WAKE.notify_one();
        handed
    }

    pub(super) fn take_pending() -> Pending {
        let mut q = queue();
        let batches = q.batches.drain(..).collect();
        BACKLOG.store(false, Ordering::Relaxed);
        // On the thread itself the batch it is finishing is the caller's.
        let mine = ON_THREAD.try_with(Cell::get).unwrap_or(false);
        let running = (q.taken > q.done && !mine).then_some(q.taken);
        Pending { batches, running }
    }

    /// Waits until the thread has finished batch `n`, at most
    /// [`WAIT_BOUND`].
    pub(super) fn wait_for(n: u64) {
        let deadline = Instant::now() + WAIT_BOUND;
        let mut q = queue();
        while q.done < n {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                drop(q);
                stopped_waiting();
                return;
            }
            q = DONE
                .wait_timeout(q, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    fn stopped_waiting() {
        log::debug!(
            target: "ouro::gc",
            "sync gc: collect() stopped waiting for the background thread after {WAIT_BOUND:?}"
        );
        if !WARNED.swap(true, Ordering::Relaxed) {
            log::warn!(
                target: "ouro::gc",
                "sync gc: collect() returned before the background thread had dropped the \
                 garbage of an automatic collection: it waited {WAIT_BOUND:?} (a Drop or \
                 finalizer of that garbage may be waiting for a lock the caller of collect() \
                 holds, or for it to end). That garbage is dropped later; \
                 gc::wait_for_drops() waits for it without a bound. (Said once.)"
            );
        }
    }

    fn run() {
        ON_THREAD.with(|t| t.set(true));
        loop {
            let batch = {
                let mut q = queue();
                loop {
                    if let Some(b) = q.batches.pop_front() {
                        BACKLOG.store(!q.batches.is_empty(), Ordering::Relaxed);
                        q.taken += 1;
                        break b;
                    }
                    q = WAKE.wait(q).unwrap_or_else(|p| p.into_inner());
                }
            };
            finish_and_log(batch);
            queue().done += 1;
            DONE.notify_all();
        }
    }
}
