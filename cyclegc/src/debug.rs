//! Debug flags and collection callbacks (Python's `gc.set_debug` and
//! `gc.callbacks`).

use core::cell::{Cell, RefCell};
use core::fmt;
use core::ops::{BitOr, BitOrAssign};
use std::panic::{self, AssertUnwindSafe};
use std::time::Duration;

/// Debugging options of the collector, combinable with `|`
/// (Python's `gc.DEBUG_*`).
///
/// ```
/// # mod ouro { pub mod gc { pub use ::ouro_cyclegc::DebugFlags; } }
/// use ouro::gc::DebugFlags;
/// let f = DebugFlags::STATS | DebugFlags::SAVEALL;
/// assert!(f.contains(DebugFlags::SAVEALL));
/// assert!(DebugFlags::empty().is_empty());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct DebugFlags(pub(crate) u32);

impl DebugFlags {
    /// Log a summary of every collection through the `log` facade (target
    /// `ouro::gc`, level `info`): generation, objects scanned, unreachable,
    /// collected, uncollectable, time.
    ///
    /// The lines go wherever the program's logger sends them; with no logger
    /// installed (`log`'s default) nothing is printed. Install one, e.g.
    /// `env_logger` run with `RUST_LOG=ouro::gc=info`, or read the same
    /// numbers from `get_stats()` or a callback. Setting `STATS` while no
    /// logger is installed prints a one-line hint saying so to stderr, once
    /// per process.
    pub const STATS: DebugFlags = DebugFlags(1);
    /// Log one line per collectable object a collection found (freed, or
    /// kept by `SAVEALL`), as CPython's `DEBUG_COLLECTABLE` prints
    /// `gc: collectable <type @addr>`: through the `log` facade, target
    /// `ouro::gc`, level `info`, as `collectable <type @0xaddr>` (the
    /// address of the object's header, `ObjectInfo::address`). The lines
    /// are written when the collection is over, not while it runs.
    ///
    /// ```
    /// # mod ouro { pub mod gc { pub use ::ouro_cyclegc::DebugFlags; } }
    /// use ouro::gc::DebugFlags;
    /// assert!(DebugFlags::LEAK.contains(DebugFlags::COLLECTABLE));
    /// ```
    pub const COLLECTABLE: DebugFlags = DebugFlags(2);
    /// Log one line per uncollectable object a collection found (a cycle
    /// that only the edges of non-structural `Trace` impls keep alive; see
    /// `GenerationStats::uncollectable`), as CPython's
    /// `DEBUG_UNCOLLECTABLE`: `uncollectable <type @0xaddr>`, target
    /// `ouro::gc`, level `info`.
    ///
    /// ```
    /// # mod ouro { pub mod gc { pub use ::ouro_cyclegc::DebugFlags; } }
    /// use ouro::gc::DebugFlags;
    /// assert!(DebugFlags::LEAK.contains(DebugFlags::UNCOLLECTABLE));
    /// ```
    pub const UNCOLLECTABLE: DebugFlags = DebugFlags(4);
    /// Keep unreachable objects in `garbage()` instead of freeing them, and
    /// the uncollectable ones a collection reports too. Saved unreachable
    /// objects are counted as collected (as CPython counts them), the
    /// reported ones as uncollectable.
    pub const SAVEALL: DebugFlags = DebugFlags(32);
    /// `COLLECTABLE | UNCOLLECTABLE | SAVEALL` (CPython's `DEBUG_LEAK`):
    /// log what each collection finds and keep it for inspection.
    ///
    /// ```
    /// # mod ouro { pub mod gc { pub use ::ouro_cyclegc::DebugFlags; } }
    /// use ouro::gc::DebugFlags;
    /// assert_eq!(
    ///     DebugFlags::LEAK,
    ///     DebugFlags::COLLECTABLE | DebugFlags::UNCOLLECTABLE | DebugFlags::SAVEALL
    /// );
    /// ```
    pub const LEAK: DebugFlags = DebugFlags(2 | 4 | 32);

    /// No flags.
    pub const fn empty() -> DebugFlags {
        DebugFlags(0)
    }

    /// Whether no flag is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: DebugFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for DebugFlags {
    type Output = DebugFlags;
    fn bitor(self, rhs: DebugFlags) -> DebugFlags {
        DebugFlags(self.0 | rhs.0)
    }
}

impl BitOrAssign for DebugFlags {
    fn bitor_assign(&mut self, rhs: DebugFlags) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for DebugFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names = Vec::new();
        if self.contains(DebugFlags::STATS) {
            names.push("STATS");
        }
        if self.contains(DebugFlags::COLLECTABLE) {
            names.push("COLLECTABLE");
        }
        if self.contains(DebugFlags::UNCOLLECTABLE) {
            names.push("UNCOLLECTABLE");
        }
        if self.contains(DebugFlags::SAVEALL) {
            names.push("SAVEALL");
        }
        if names.is_empty() {
            f.write_str("DebugFlags(empty)")
        } else {
            write!(f, "DebugFlags({})", names.join(" | "))
        }
    }
}

/// When a callback is called: once before (`Start`) and once after
/// (`Stop`) every collection.
///
/// ```
/// # mod ouro { pub mod gc { pub use ::ouro_cyclegc::control::*; pub use ::ouro_cyclegc::{CallbackId, CallbackInfo, Phase}; } }
/// use ouro::gc::{self, Phase};
/// use std::cell::RefCell;
/// use std::rc::Rc;
///
/// let phases = Rc::new(RefCell::new(Vec::new()));
/// let seen = phases.clone();
/// let id = gc::add_callback(move |info| seen.borrow_mut().push(info.phase));
/// gc::collect();
/// assert_eq!(*phases.borrow(), [Phase::Start, Phase::Stop]);
/// gc::remove_callback(id);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Before a collection.
    Start,
    /// After a collection.
    Stop,
}

/// What a callback is told (Python's callback `info` dict).
///
/// ```
/// # mod ouro { pub mod gc { pub use ::ouro_cyclegc::control::*; pub use ::ouro_cyclegc::{CallbackId, CallbackInfo, Phase}; } }
/// use ouro::gc::{self, CallbackInfo, Phase};
/// use std::cell::Cell;
/// use std::rc::Rc;
///
/// let last = Rc::new(Cell::new(None::<CallbackInfo>));
/// let seen = last.clone();
/// let id = gc::add_callback(move |info| {
///     if info.phase == Phase::Stop {
///         seen.set(Some(*info));
///     }
/// });
/// gc::collect_generation(2);
/// let info = last.get().expect("the Stop phase ran");
/// assert_eq!(info.generation, 2);
/// assert_eq!(info.collected, 0); // nothing to collect here
/// gc::remove_callback(id);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallbackInfo {
    /// Start or stop.
    pub phase: Phase,
    /// The oldest generation collected.
    pub generation: usize,
    /// Objects collected (0 at `Start`): freed, or kept in `garbage()` by
    /// `SAVEALL` (CPython counts those as collected too).
    pub collected: usize,
    /// Objects found that could not be freed (0 at `Start`): those that
    /// only the edges of non-structural `Trace` impls keep alive (see
    /// `GenerationStats::uncollectable`).
    pub uncollectable: usize,
    /// Time the collection took (zero at `Start`).
    pub duration: Duration,
}

/// Identifies a registered callback, for `remove_callback`.
///
/// ```
/// # mod ouro { pub mod gc { pub use ::ouro_cyclegc::control::*; pub use ::ouro_cyclegc::{CallbackId, CallbackInfo, Phase}; } }
/// use ouro::gc::{self, CallbackId};
///
/// let id: CallbackId = gc::add_callback(|_| {});
/// assert!(gc::remove_callback(id));
/// assert!(!gc::remove_callback(id), "removed already");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallbackId(pub(crate) u64);

type Callback = Box<dyn FnMut(&CallbackInfo)>;

struct Entry {
    id: CallbackId,
    /// `None` while the callback runs.
    f: Option<Callback>,
    removed: bool,
}

/// The registered callbacks of one heap.
///
/// Rules, so that callbacks can use the `gc` module freely: callbacks run
/// while the collection is marked as running, so a `collect()` inside one
/// returns 0 at once; `add_callback` inside a callback registers from the
/// next phase on (a callback added at `Start` is called at the `Stop` of the
/// same collection); `remove_callback` inside a callback (of itself or
/// another) takes effect at once; a panicking callback does not stop the
/// others, and the first panic is resumed when the collection is over.
#[derive(Default)]
pub(crate) struct Callbacks {
    entries: RefCell<Vec<Entry>>,
    next_id: Cell<u64>,
    /// While callbacks run, removed entries are only marked (indices stay).
    invoking: Cell<bool>,
}

impl Callbacks {
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.borrow().is_empty()
    }

    pub(crate) fn add(&self, f: Callback) -> CallbackId {
        let id = CallbackId(self.next_id.get());
        self.next_id.set(self.next_id.get() + 1);
        self.entries.borrow_mut().push(Entry {
            id,
            f: Some(f),
            removed: false,
        });
        id
    }

    /// Unregisters `id`; returns whether it was registered, and the
    /// callback for the caller to drop (its `Drop` may call into `gc`
    /// again, and may release the heap's last objects).
    pub(crate) fn remove(&self, id: CallbackId) -> (bool, Option<Callback>) {
        let mut dropped = None;
        let found = {
            let mut entries = self.entries.borrow_mut();
            match entries.iter_mut().find(|e| e.id == id && !e.removed) {
                Some(e) => {
                    e.removed = true;
                    dropped = e.f.take();
                    true
                }
                None => false,
            }
        };
        if !self.invoking.get() {
            self.entries.borrow_mut().retain(|e| !e.removed);
        }
        (found, dropped)
    }

    /// Unregisters every callback and returns them, for the caller to drop.
    pub(crate) fn take_all(&self) -> Vec<Callback> {
        self.entries
            .take()
            .into_iter()
            .filter_map(|e| e.f)
            .collect()
    }

    /// Calls every callback registered before this call; returns the first
    /// panic.
    pub(crate) fn invoke(&self, info: &CallbackInfo) -> Option<Box<dyn std::any::Any + Send>> {
        let n = self.entries.borrow().len();
        let mut first: Option<Box<dyn std::any::Any + Send>> = None;
        let mut keep = |p: Box<dyn std::any::Any + Send>| match first {
            None => first = Some(p),
            // Only the first panic is resumed; the others are dropped, under
            // `catch_unwind` as a payload's own `Drop` could panic (then that
            // one's payload is leaked).
            Some(_) => {
                if let Err(again) = panic::catch_unwind(AssertUnwindSafe(|| drop(p))) {
                    core::mem::forget(again);
                }
            }
        };
        let outer = self.invoking.replace(true);
        // Reset even if something below unwinds.
        struct Invoking<'a>(&'a Cell<bool>, bool);
        impl Drop for Invoking<'_> {
            fn drop(&mut self) {
                self.0.set(self.1);
            }
        }
        let _invoking = Invoking(&self.invoking, outer);
        for i in 0..n {
            let (id, f) = {
                let mut entries = self.entries.borrow_mut();
                let e = &mut entries[i];
                (e.id, if e.removed { None } else { e.f.take() })
            };
            if let Some(mut f) = f {
                let r = panic::catch_unwind(AssertUnwindSafe(|| f(info)));
                if let Err(p) = r {
                    keep(p);
                }
                let mut entries = self.entries.borrow_mut();
                let e = &mut entries[i];
                debug_assert_eq!(e.id, id);
                if e.removed {
                    drop(entries);
                    // Its captured state's `Drop` is user code too.
                    if let Err(p) = panic::catch_unwind(AssertUnwindSafe(|| drop(f))) {
                        keep(p);
                    }
                } else {
                    e.f = Some(f);
                }
            }
        }
        if !outer {
            self.entries.borrow_mut().retain(|e| !e.removed);
        }
        first
    }
}

/// Logs the `STATS` record of one collection (target `ouro::gc`, level
/// info), in one shape for both heaps: `gc: generation 2: scanned 3,
/// unreachable 2, collected 2, uncollectable 0, 0.015 ms` (`sync gc` on the
/// process-wide heap). `log::Log` is user code: the callers catch a panic.
pub(crate) fn log_stats(
    module: &str,
    generation: usize,
    scanned: usize,
    unreachable: usize,
    collected: usize,
    uncollectable: usize,
    elapsed: std::time::Duration,
) {
    log::info!(
        target: "ouro::gc",
        "{module}: generation {generation}: scanned {scanned}, unreachable {unreachable}, \
         collected {collected}, uncollectable {uncollectable}, {:.3} ms",
        elapsed.as_secs_f64() * 1e3
    );
}

/// Prints, once per process, a hint to stderr when `STATS` is set but no
/// logger is installed (`log::max_level()` is `Off`, its value until a
/// logger sets one), so that `set_debug(STATS)` is not silently useless.
pub(crate) fn hint_if_stats_unseen(flags: DebugFlags) {
    static HINTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if flags.contains(DebugFlags::STATS)
        && log::max_level() == log::LevelFilter::Off
        && !HINTED.swap(true, std::sync::atomic::Ordering::Relaxed)
    {
        eprintln!(
            "ouro: DebugFlags::STATS logs through the `log` crate (target `ouro::gc`, level \
             info), and no logger is installed; install one (e.g. env_logger with \
             RUST_LOG=ouro::gc=info) or read gc::get_stats()"
        );
    }
}

/// An object a collection found, to be named in a `COLLECTABLE` or
/// `UNCOLLECTABLE` line once the collection is over (the logger is user
/// code: it does not run while the collector holds its working sets).
#[derive(Clone, Copy)]
pub(crate) struct Found {
    pub(crate) collectable: bool,
    pub(crate) type_name: fn() -> &'static str,
    pub(crate) address: usize,
}

impl Found {
    /// Writes the line (CPython's `gc: collectable <type @addr>`).
    pub(crate) fn log(self) {
        let kind = if self.collectable {
            "collectable"
        } else {
            "uncollectable"
        };
        log::info!(
            target: "ouro::gc",
            "{kind} <{} @{:#x}>",
            (self.type_name)(),
            self.address
        );
    }
}
