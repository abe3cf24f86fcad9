//! The callback list of a heap (`gc.callbacks`), written once for both
//! kinds of heap: the thread-local heap keeps it in a `RefCell`, the
//! process-wide ones behind a `Mutex`. [`Slot`] is all each gives this
//! code: a way to reach the list for a moment, never across a callback.
//!
//! Rules, so that callbacks can use the `gc` module freely: `add_callback`
//! inside a callback registers from the next phase on (a callback added at
//! `Start` is called at the `Stop` of the same collection);
//! `remove_callback` inside a callback (of itself or another) takes effect
//! at once, and the removed callback is dropped once it returns; a
//! panicking callback (or a panicking `Drop` of a removed one) does not
//! stop the others, and the first panic is given back to be resumed when
//! the collection is over.

use core::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};

use crate::debug::CallbackId;

pub(crate) use crate::panics::Panic;
use crate::panics::keep_first;

struct Entry<F: ?Sized> {
    id: CallbackId,
    /// `None` while the callback runs.
    f: Option<Box<F>>,
    removed: bool,
}

/// The registered callbacks of one heap (`F`: the callback's `dyn` type).
pub(crate) struct CallbackList<F: ?Sized> {
    entries: Vec<Entry<F>>,
    next_id: u64,
    /// While callbacks run, removed entries are only marked (indices stay).
    invoking: bool,
}

impl<F: ?Sized> Default for CallbackList<F> {
    fn default() -> Self {
        CallbackList {
            entries: Vec::new(),
            next_id: 0,
            invoking: false,
        }
    }
}

/// Where a heap keeps its [`CallbackList`]; the operations are written
/// once, over [`Slot::with`].
pub(crate) trait Slot<F: ?Sized> {
    /// Runs `f` on the list (a borrow or a lock held for the call only).
    fn with<R>(&self, f: impl FnOnce(&mut CallbackList<F>) -> R) -> R;

    fn is_empty(&self) -> bool {
        self.with(|l| l.entries.is_empty())
    }

    fn add(&self, f: Box<F>) -> CallbackId {
        self.with(|l| {
            let id = CallbackId(l.next_id);
            l.next_id += 1;
            l.entries.push(Entry {
                id,
                f: Some(f),
                removed: false,
            });
            id
        })
    }

    /// Unregisters `id`; returns whether it was registered, and the
    /// callback for the caller to drop once it let go of the heap (its
    /// `Drop` is user code: it may call into `gc` again).
    fn remove(&self, id: CallbackId) -> (bool, Option<Box<F>>) {
        self.with(|l| {
            let Some(e) = l.entries.iter_mut().find(|e| e.id == id && !e.removed) else {
                return (false, None);
            };
            e.removed = true;
            let f = e.f.take();
            if !l.invoking {
                l.entries.retain(|e| !e.removed);
            }
            (true, f)
        })
    }

    /// Unregisters every callback and returns them, for the caller to drop.
    fn take_all(&self) -> Vec<Box<F>> {
        self.with(|l| core::mem::take(&mut l.entries))
            .into_iter()
            .filter_map(|e| e.f)
            .collect()
    }

    /// Calls every callback registered before this call with `call`;
    /// returns the first panic.
    fn invoke(&self, mut call: impl FnMut(&mut F)) -> Option<Panic> {
        /// Resets `invoking` even if something below unwinds.
        struct Invoking<'a, F: ?Sized, S: Slot<F> + ?Sized>(
            &'a S,
            bool,
            core::marker::PhantomData<Box<F>>,
        );
        impl<F: ?Sized, S: Slot<F> + ?Sized> Drop for Invoking<'_, F, S> {
            fn drop(&mut self) {
                let outer = self.1;
                let dropped: Vec<Entry<F>> = self.0.with(|l| {
                    l.invoking = outer;
                    if outer {
                        return Vec::new();
                    }
                    let (gone, kept) = core::mem::take(&mut l.entries)
                        .into_iter()
                        .partition(|e| e.removed);
                    l.entries = kept;
                    gone
                });
                // Their callbacks were taken out (and dropped) already.
                drop(dropped);
            }
        }
        let (n, outer) =
            self.with(|l| (l.entries.len(), core::mem::replace(&mut l.invoking, true)));
        let _invoking = Invoking(self, outer, core::marker::PhantomData);
        let mut first = None;
        for i in 0..n {
            let Some(mut f) = self.with(|l| match l.entries.get_mut(i) {
                Some(e) if !e.removed => e.f.take(),
                _ => None,
            }) else {
                continue;
            };
            if let Err(p) = panic::catch_unwind(AssertUnwindSafe(|| call(&mut f))) {
                keep_first(&mut first, Some(p));
            }
            let removed = self.with(|l| match l.entries.get_mut(i) {
                Some(e) if !e.removed => {
                    e.f = Some(f);
                    None
                }
                _ => Some(f),
            });
            // Removed while it ran: its captured state's `Drop` is user
            // code too.
            if let Some(f) = removed
                && let Err(p) = panic::catch_unwind(AssertUnwindSafe(|| drop(f)))
            {
                keep_first(&mut first, Some(p));
            }
        }
        first
    }
}

impl<F: ?Sized> Slot<F> for RefCell<CallbackList<F>> {
    fn with<R>(&self, f: impl FnOnce(&mut CallbackList<F>) -> R) -> R {
        f(&mut self.borrow_mut())
    }
}
