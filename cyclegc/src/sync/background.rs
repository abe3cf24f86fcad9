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
//! - Memory stays bounded by the collections' own pace: while a batch waits
//!   that the thread has not started, no automatic collection starts
//!   (`has_backlog`), so at most one batch waits and one is dropped; the
//!   garbage made meanwhile stays on the generation lists.
//! - Nothing needs the thread for correctness: `collect()` never waits for
//!   it (only [`super::control::wait_for_drops`] does), and the process can
//!   exit while it runs or waits (it is never joined): garbage it has not
//!   dropped by then is not dropped, as a `static`'s value is not.
//! - A panic in a finalizer or a `Drop` it runs does not stop the others
//!   (the heap is made consistent as for `collect()`); the panic hook has
//!   reported it, and it is logged (`log::error!`, target `ouro::gc`), as
//!   there is no caller to propagate it to.
//!
//! Under loom and Miri there is no thread: the batch is finished at once on
//! the allocating thread (the models and Miri runs check the collection,
//! not the hand-off, and Miri reports a thread still running at exit).

use super::collect::{self, Batch};
use super::heap::heap;

/// Finishes `batch` away from the allocating thread.
pub(crate) fn hand_off(batch: Batch) {
    #[cfg(not(any(loom, miri)))]
    imp::hand_off(batch);
    #[cfg(any(loom, miri))]
    finish_and_log(batch);
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
    let (_, p) = collect::finish(heap(), batch);
    if let Some(p) = p {
        log::error!(
            target: "ouro::gc",
            "sync gc: a finalizer or Drop panicked while an automatic collection dropped its \
             garbage (the rest of the garbage was dropped)"
        );
        // A payload whose own drop panics must not end the thread.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(p)));
    }
}

#[cfg(not(any(loom, miri)))]
mod imp {
    use std::collections::VecDeque;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Condvar, Mutex, MutexGuard};

    use super::{Batch, finish_and_log};

    struct Queue {
        batches: VecDeque<Batch>,
        started: bool,
    }

    static QUEUE: Mutex<Queue> = Mutex::new(Queue {
        batches: VecDeque::new(),
        started: false,
    });
    static WAKE: Condvar = Condvar::new();
    /// `QUEUE.batches` is not empty (read without the lock by
    /// `has_backlog`; a stale answer only moves an automatic collection by
    /// one allocation).
    pub(super) static BACKLOG: AtomicBool = AtomicBool::new(false);

    fn queue() -> MutexGuard<'static, Queue> {
        QUEUE.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn hand_off(batch: Batch) {
        let mut q = queue();
        if !q.started {
            let spawned = std::thread::Builder::new()
                .name("ouro-sync-gc".into())
                .spawn(run);
            if let Err(e) = spawned {
                drop(q);
                log::warn!(
                    target: "ouro::gc",
                    "sync gc: could not start the background thread ({e}); dropping the \
                     garbage of an automatic collection on the allocating thread"
                );
                finish_and_log(batch);
                return;
            }
            q.started = true;
            log::debug!(
                target: "ouro::gc",
                "sync gc: started the thread `ouro-sync-gc`, which drops the garbage of \
                 automatic collections"
            );
        }
        q.batches.push_back(batch);
        BACKLOG.store(true, Ordering::Relaxed);
        drop(q);
        WAKE.notify_one();
    }

    fn run() {
        loop {
            let batch = {
                let mut q = queue();
                loop {
                    if let Some(b) = q.batches.pop_front() {
                        BACKLOG.store(!q.batches.is_empty(), Ordering::Relaxed);
                        break b;
                    }
                    q = WAKE.wait(q).unwrap_or_else(|p| p.into_inner());
                }
            };
            finish_and_log(batch);
        }
    }
}
