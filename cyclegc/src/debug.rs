//! Debug flags and collection callbacks (Python's `gc.set_debug` and
//! `gc.callbacks`).

use core::fmt;
use core::ops::{BitOr, BitOrAssign};
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
    /// collected, uncollectable, time. A young collection that promoted
    /// generation 0 unexamined (a backed-off schedule's pass: see the `gc`
    /// module) says so instead, with its time.
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

/// The callbacks of the thread-local heap (see `callbacks` for the
/// rules, shared with the process-wide heaps).
pub(crate) type Callbacks =
    core::cell::RefCell<crate::callbacks::CallbackList<dyn FnMut(&CallbackInfo)>>;

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

/// The `STATS` line of a young collection that promoted generation 0
/// unexamined (`schedule::examines`).
pub(crate) fn log_pass(module: &str, into: usize, elapsed: std::time::Duration) {
    log::info!(
        target: "ouro::gc",
        "{module}: generation 0: promoted into generation {into} unexamined (young \
         collections found nothing lately), {:.3} ms",
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
