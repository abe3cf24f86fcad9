//! Per-generation statistics, as `gc.get_stats()` reports them.

/// What the collections of one generation have done so far
/// (CPython's `gc.get_stats()` entries).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct GenerationStats {
    /// Number of collections of this generation.
    pub collections: usize,
    /// Objects found unreachable and freed by those collections.
    pub collected: usize,
    /// Objects found unreachable that could not be freed. ouro frees every
    /// unreachable object (it has no legacy finalizers), so this stays 0
    /// unless objects are kept (for example by `DebugFlags::SAVEALL`).
    pub uncollectable: usize,
}
