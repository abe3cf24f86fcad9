//! Death hooks: closures that run once when an object's value dies (by its
//! count reaching zero, by the collector, or by `try_unwrap`), the engine
//! half of `weakref.finalize` and weak-reference callbacks.
//!
//! An object has no room for them, and most objects never have one. So
//! they wait in a side table of the heap keyed by the object's address, and
//! one header bit (`HOOKED`) says that an object has an entry. The paths
//! where a value dies test that bit in a flag word they have loaded anyway;
//! only an object with the bit set looks the table up.
//!
//! The rules, on both heaps:
//! - A hook is taken out of the table when its object's value dies, before
//!   the value is dropped and before the memory can be freed, so an entry's
//!   address always names the object it was added for (a later object at
//!   the same address starts with no entry).
//! - Hooks run where the value dies, before it is dropped (as CPython calls
//!   weak-reference callbacks before it clears the object): at the same
//!   safe point as the value's `Drop`, never while the collector holds its
//!   working sets in an inconsistent state, and on the process-wide heap
//!   never under the collector lock. The value cannot be reached from a
//!   hook: it is already dead (`Weak::upgrade` fails).
//! - A panicking hook does not stop the other hooks of the object nor the
//!   drop of its value: the first panic is resumed afterwards, as a panic
//!   of the value's `Drop` would be.
//! - Values kept by `DebugFlags::SAVEALL` are not dead: their hooks wait.

use core::cell::{Cell, RefCell};
use core::ptr::NonNull;
use std::collections::HashMap;

use crate::header::{DEAD, HOOKED, ObjHeader, SCANNING, UNINIT};

/// Names a death hook, to remove it before it runs.
///
/// ```
/// use ouro_cyclegc::HookId;
/// fn takes(_: HookId) {}
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HookId(pub(crate) u64);

/// A thread-local heap's hook.
pub type Hook = Box<dyn FnOnce()>;

pub(crate) use crate::panics::Panic;

/// Runs every hook, each under `catch_unwind`; returns the first panic (the
/// others are dropped, as the collector drops all but its first).
pub(crate) fn run_all<F: FnOnce()>(hooks: Vec<F>) -> Option<Panic> {
    let mut first = None;
    for h in hooks {
        crate::panics::keep_first(&mut first, crate::panics::catch(h));
    }
    first
}

/// An object and its hooks, oldest first.
type Entry = (NonNull<ObjHeader>, Vec<(u64, Hook)>);

/// The side table of a thread-local heap.
#[derive(Default)]
pub(crate) struct Hooks {
    /// Object address -> its entry.
    table: RefCell<HashMap<usize, Entry>>,
    next: Cell<u64>,
}

impl Hooks {
    /// Adds `f` to run when `obj`'s value dies; gives it back if the value
    /// is not alive (dropped, being scanned, or not written yet).
    ///
    /// # Safety
    /// `obj` is an object of this heap, kept allocated by the caller.
    pub(crate) unsafe fn add(&self, obj: NonNull<ObjHeader>, f: Hook) -> Result<HookId, Hook> {
        // SAFETY: caller contract.
        let h = unsafe { obj.as_ref() };
        if h.flags() & (DEAD | UNINIT | SCANNING) != 0 || h.strong() == 0 {
            return Err(f);
        }
        let id = self.next.get();
        self.next.set(id + 1);
        self.table
            .borrow_mut()
            .entry(obj.as_ptr().addr())
            .or_insert_with(|| (obj, Vec::new()))
            .1
            .push((id, f));
        h.set(HOOKED);
        Ok(HookId(id))
    }

    /// Removes the hook `id` added for the object at `addr`, if it has not
    /// run; the caller drops it (user code) after this returns.
    pub(crate) fn remove(&self, addr: usize, id: HookId) -> Option<Hook> {
        let mut table = self.table.borrow_mut();
        let (obj, hooks) = table.get_mut(&addr)?;
        let k = hooks.iter().position(|(i, _)| *i == id.0)?;
        let (_, f) = hooks.remove(k);
        if hooks.is_empty() {
            // SAFETY: an entry exists only while its object's value is
            // alive (`take` removes it where the value dies, before the
            // memory can be freed), so the header is readable.
            unsafe { obj.as_ref() }.clear(HOOKED);
            table.remove(&addr);
        }
        Some(f)
    }

    /// Takes the hooks of `obj`, whose value is dying, and clears its bit.
    ///
    /// # Safety
    /// `obj` is allocated and has `HOOKED` set.
    #[cold]
    #[inline(never)]
    pub(crate) unsafe fn take(&self, obj: NonNull<ObjHeader>) -> Vec<Hook> {
        // SAFETY: caller contract.
        unsafe { obj.as_ref() }.clear(HOOKED);
        let hooks = self.table.borrow_mut().remove(&obj.as_ptr().addr());
        hooks
            .map(|(_, v)| v.into_iter().map(|(_, f)| f).collect())
            .unwrap_or_default()
    }
}

/// A process-wide heap's hook.
pub type SyncHook = Box<dyn FnOnce() + Send>;

type SyncTable = std::collections::BTreeMap<usize, Vec<(u64, SyncHook)>>;

/// The process-wide heap's side table (a `BTreeMap`: its `new` is `const`).
/// Its lock is a leaf: nothing else is locked while it is held, and no user
/// code runs under it (removed hooks are dropped by the caller). Unlike the
/// thread-local heap, removing an object's last hook leaves its `HOOKED`
/// bit set (clearing it could race with another thread adding a hook): its
/// death then looks the table up and finds nothing.
static SYNC_TABLE: std::sync::Mutex<SyncTable> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());
static SYNC_NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn sync_table() -> std::sync::MutexGuard<'static, SyncTable> {
    // No user code runs under the lock, so a poisoned lock is still sound.
    SYNC_TABLE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Adds `f` to the table for the object at `addr`, whose `HOOKED` bit the
/// caller has set under the rules of the object's flag word.
pub(crate) fn sync_add(addr: usize, f: SyncHook) -> HookId {
    let id = SYNC_NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    sync_table().entry(addr).or_default().push((id, f));
    HookId(id)
}

/// Removes hook `id` of the object at `addr` if it has not run, and
/// returns it.
pub(crate) fn sync_remove(addr: usize, id: HookId) -> Option<SyncHook> {
    let mut table = sync_table();
    let hooks = table.get_mut(&addr)?;
    let k = hooks.iter().position(|(i, _)| *i == id.0)?;
    let (_, f) = hooks.remove(k);
    if hooks.is_empty() {
        table.remove(&addr);
    }
    Some(f)
}

/// Takes the hooks of the object at `addr`, whose value is dying.
#[cold]
#[inline(never)]
pub(crate) fn sync_take(addr: usize) -> Vec<SyncHook> {
    let hooks = sync_table().remove(&addr);
    hooks
        .map(|v| v.into_iter().map(|(_, f)| f).collect())
        .unwrap_or_default()
}
