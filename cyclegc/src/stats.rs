//! Per-generation statistics, as `gc.get_stats()` reports them.

/// What the collections of one generation have done so far
/// (CPython's `gc.get_stats()` entries).
///
/// ```
/// # mod ouro { pub mod gc { pub use ::ouro_cyclegc::control::*; pub use ::ouro_cyclegc::GenerationStats; } }
/// use ouro::gc::{self, GenerationStats};
///
/// let before: GenerationStats = gc::get_stats()[2];
/// gc::collect();
/// let after = gc::get_stats()[2];
/// assert_eq!(after.collections, before.collections + 1);
/// assert!(after.collected >= before.collected);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct GenerationStats {
    /// Number of collections of this generation.
    pub collections: usize,
    /// Objects found unreachable by those collections and freed, or kept in
    /// `garbage()` by `DebugFlags::SAVEALL` (CPython counts those as
    /// collected too).
    pub collected: usize,
    /// Objects found that could not be freed: cycles that only the edges of
    /// non-structural `Trace` impls keep alive (the collector does not count
    /// those edges, so it cannot free such a cycle; it finds it with every
    /// edge counted, counts it here at each collection that finds it, names
    /// the type in a `log` warning once, and keeps it in `garbage()` under
    /// `SAVEALL`). ouro has no legacy finalizers, so with derived impls this
    /// stays 0.
    pub uncollectable: usize,
}

impl GenerationStats {
    /// Counts one collection of this generation (both heaps' collectors).
    pub(crate) fn record(&mut self, collected: usize, uncollectable: usize) {
        self.collections += 1;
        self.collected += collected;
        self.uncollectable += uncollectable;
    }
}
