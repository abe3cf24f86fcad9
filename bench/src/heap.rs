//! What a workload needs from a library: a node with three link slots and a
//! growable list of links behind interior mutability, and the library's way
//! to collect cycles. Every node carries a [`Tok`] so a workload can check
//! that each node it made was dropped exactly when it should be.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

static CREATED: AtomicUsize = AtomicUsize::new(0);
static DROPPED: AtomicUsize = AtomicUsize::new(0);

/// The drop counter: counts its creations and its drops.
#[derive(Debug)]
pub struct Tok(());

impl Tok {
    pub fn new() -> Tok {
        CREATED.fetch_add(1, Relaxed);
        Tok(())
    }
}

impl Drop for Tok {
    fn drop(&mut self) {
        DROPPED.fetch_add(1, Relaxed);
    }
}

/// `(created, dropped)` so far in this process.
pub fn counts() -> (usize, usize) {
    (CREATED.load(Relaxed), DROPPED.load(Relaxed))
}

/// Nodes made and nodes dropped since the last `Counter::start`.
#[derive(Clone, Copy)]
pub struct Counter((usize, usize));

impl Counter {
    pub fn start() -> Counter {
        Counter(counts())
    }

    pub fn created(self) -> usize {
        counts().0 - self.0.0
    }

    pub fn dropped(self) -> usize {
        counts().1 - self.0.1
    }

    /// Made and dropped the same number, else the leak (`dropped`, `created`).
    pub fn all_freed(self) -> Result<(), Failure> {
        let (c, d) = (self.created(), self.dropped());
        if c == d {
            Ok(())
        } else {
            Err(Failure::Leak {
                freed: d,
                created: c,
            })
        }
    }
}

/// Why a workload has no time for a library.
#[derive(Debug)]
pub enum Failure {
    /// Some nodes were never dropped.
    Leak { freed: usize, created: usize },
    /// The library has nothing that does this (e.g. `Rc` has no collector).
    NotApplicable(&'static str),
    /// The library did something it should not (dropped a live node...).
    Wrong(String),
}

/// A node handle of one library, and that library's collector.
///
/// A node holds `slots: [Option<H>; 3]` and `extra: Vec<H>`, each behind the
/// library's interior-mutability cell, a `u64` and a [`Tok`].
pub trait Heap: 'static {
    type H: Clone;
    /// Called once before the workload (settings such as turning automatic
    /// collection off).
    fn prepare() {}
    /// False for `Rc`, which has no cycle collector.
    const COLLECTS: bool = true;
    fn node(value: u64) -> Self::H;
    /// Replaces slot `i` (0..3); the old link is dropped after the borrow.
    fn set(from: &Self::H, i: usize, to: Option<Self::H>);
    fn get(from: &Self::H, i: usize) -> Option<Self::H>;
    fn push(from: &Self::H, to: Self::H);
    /// `Vec::swap_remove` on the node's list; the caller drops the result.
    fn swap_remove(from: &Self::H, i: usize) -> Option<Self::H>;
    fn extra_len(from: &Self::H) -> usize;
    fn value(h: &Self::H) -> u64;
    /// A full collection.
    fn collect();
    /// The cheapest collection that still finds young garbage: generation 0
    /// where the library has generations, else what it has.
    fn collect_young() {
        Self::collect()
    }
}
