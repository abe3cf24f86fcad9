//! Thread-safe handles: [`Gc<T>`] and [`Weak<T>`] over one process-wide
//! heap, with a concurrent cycle collector ([`gc`]).
//!
//! `sync::Gc<T>` is to [`crate::Gc`] what `Arc` is to `Rc`: it is `Send` and
//! `Sync` when `T` is, cloning and dropping are single atomic operations, and
//! the value lives on a heap shared by all threads. Cycles — also cycles
//! that span objects made on different threads — are found by a cycle
//! collector that runs on whichever thread asks (automatically on the
//! allocating thread, whose garbage a background thread then drops, or by
//! [`gc::collect`]) while the other threads go on cloning, dropping,
//! allocating and mutating. How that stays sound is
//! written down in `ouro_cyclegc::sync`.
//!
//! Values must be `Trace + Send + Sync + 'static`: the collector reads them
//! from its own thread and drops garbage there. Mutate them through `Mutex`,
//! `RwLock` or atomics inside `T`. Cycles are collected through values
//! whose `Trace` is *structural* ([`Trace::structural`](crate::Trace::structural)):
//! `#[derive(Trace)]` (in the `ouro` crate) is; a hand-written impl says so
//! with an `unsafe` promise, as here (a cycle through any other impl is
//! kept and reported, as on the thread-local heap: see [`gc`]):
//!
//! ```
//! # extern crate ouro_refobj as ouro;
//! use ouro::sync::{Gc, gc};
//! use ouro::{Structural, Trace, Visitor};
//! use std::sync::Mutex;
//!
//! struct Node { next: Mutex<Option<Gc<Node>>> }
//! impl Trace for Node {
//!     fn structural() -> Structural<Self> {
//!         // SAFETY: `trace` only calls `trace` on a field of ouro's types.
//!         unsafe { Structural::promise() }
//!     }
//!     fn trace(&self, v: &mut Visitor<'_>) { self.next.trace(v) }
//! }
//!
//! let a = Gc::new(Node { next: Mutex::new(None) });
//! let b = Gc::new(Node { next: Mutex::new(Some(a.clone())) });
//! *a.next.lock().unwrap() = Some(b.clone()); // a <-> b
//! let (wa, wb) = (Gc::downgrade(&a), Gc::downgrade(&b));
//! // Each half of the cycle is dropped on its own thread.
//! std::thread::spawn(move || drop(a)).join().unwrap();
//! std::thread::spawn(move || drop(b)).join().unwrap();
//! gc::collect();
//! assert!(wa.upgrade().is_none() && wb.upgrade().is_none());
//! ```

pub mod gc;
pub(crate) mod handle;
mod heap;
pub mod weakref;

#[doc(inline)]
pub use crate::__coerce_sync_gc as coerce_gc;
pub use crate::deep_copy::sync_deep_copy as deep_copy;
#[doc(hidden)]
pub use handle::SyncBox;
pub use handle::{Gc, Weak};
pub use heap::Heap;
