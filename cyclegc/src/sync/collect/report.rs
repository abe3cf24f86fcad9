//! The report of a collection that met values whose `trace` is not
//! structural (*Report* in the module documentation of `sync`, under "How
//! the steps run"): the survivors that only those values' edges keep alive are
//! counted as uncollectable, their types named in a warning once per
//! process, and, under `SAVEALL`, kept in `garbage()`. Nothing is freed or
//! claimed on the strength of it.
//!
//! It works on what the first pass recorded (the words it read, the edges
//! it recorded, the non-structural ones too) and on the verdict of the
//! claims, and reads nothing but the headers of objects the collection
//! owns: no lock is taken, no value is traced again. A racing mutator can
//! make the result wrong; a wrong result only makes the report wrong.

use core::any::TypeId;

use super::{Ix, Panic, ROOT_REFS, State, Tables, catch, keep_first, owned};
use crate::sync::header::{STRONG_MASK, SyncVTable};
use crate::sync::heap::SyncHeap;
use crate::sync::prims::{self, Ordering};
use crate::sync::raw::ObjectRef;

/// The report's marks, by table index (in `Tables::report_mark`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Reach {
    /// Claimed (G'): not part of the report.
    Gone,
    /// A survivor not reached (yet).
    Unreached,
    /// A survivor whose `trace` is not structural, before the roots are
    /// known.
    Untrusted,
    /// Reachable with every recorded edge trusted.
    Reached,
    /// Unreachable with every recorded edge trusted, and reached from an
    /// unreachable non-structural value: reported.
    Found,
}

/// What a report found.
#[derive(Default)]
pub(super) struct Reported {
    /// Objects reported: counted in `uncollectable`.
    pub(super) found: usize,
    /// The non-structural types among them, each once.
    pub(super) types: Vec<&'static SyncVTable>,
    /// The types of the non-structural values inside structural ones
    /// (trait objects'), each once.
    pub(super) names: Vec<fn() -> &'static str>,
    /// Them, for `DebugFlags::UNCOLLECTABLE` (empty unless `log`).
    pub(super) lines: Vec<crate::debug::Found>,
}

/// Finds the survivors of this collection (what the claims left) that
/// would be unreachable had the recorded edges of the non-structural values
/// (`Tables::untrusted`) been trusted, counts them, and keeps a strong
/// reference to each in `garbage()` under `saveall`. Called after the
/// claims and before the survivors are given back (the collection still
/// owns them: their headers are readable, I2), only when the first pass met
/// a non-structural value.
pub(super) fn report_uncollectable(
    h: &SyncHeap,
    t: &mut Tables,
    saveall: bool,
    log: bool,
) -> Reported {
    debug_assert!(!t.untrusted.is_empty());
    trial_with_every_edge(t);
    reach_from_untrusted(t);
    keep_found(h, t, saveall, log)
}

/// The edges the first pass recorded from table object `k`.
fn edges<'a>(adj: &'a [Ix], adj_start: &[u32], k: Ix) -> &'a [Ix] {
    &adj[adj_start[k] as usize..adj_start[k.get() + 1] as usize]
}

/// Trial deletion over the survivors with every recorded edge trusted: the
/// strong count the first pass read, minus the edges recorded from other
/// survivors (a handle held by the claimed garbage goes with it, and counts
/// as external here); the roots are the survivors with a remainder, and
/// those whose edges were not all recorded (`EXCLUSIVE`, not traced, or a
/// lock busy: `ROOT_REFS`). Marks `Reached` everything reachable from them.
fn trial_with_every_edge(t: &mut Tables) {
    let Tables {
        state,
        refs,
        words,
        adj,
        adj_start,
        untrusted,
        local_refs: rem,
        report_mark: mark,
        work,
        ..
    } = t;
    let n = state.len();
    mark.clear();
    mark.resize(n, Reach::Unreached);
    for &u in untrusted.iter() {
        mark[u] = Reach::Untrusted;
    }
    rem.clear();
    rem.resize(n, 0);
    for (i, (&s, &w)) in state.iter().zip(words.iter()).enumerate() {
        let i = Ix::new(i);
        if s == State::Garbage {
            mark[i] = Reach::Gone;
        } else {
            rem[i] += (w & STRONG_MASK) as i64;
            for &j in edges(adj, adj_start, i) {
                rem[j] -= 1;
            }
        }
    }
    work.clear();
    for (i, (m, &r)) in mark.iter_mut().zip(rem.iter()).enumerate() {
        let root = match *m {
            Reach::Gone => continue,
            Reach::Untrusted => r > 0,
            _ => r > 0 || refs[i] > ROOT_REFS / 2,
        };
        *m = if root {
            Reach::Reached
        } else {
            Reach::Unreached
        };
        if root {
            work.push(Ix::new(i));
        }
    }
    mark_from(adj, adj_start, mark, work, Reach::Reached);
}

/// Marks `Found` the unreached survivors reachable from an unreached
/// non-structural value: what only such values keep alive. (An unreached
/// structural cycle that no such value reaches would have been claimed
/// unless a mutator raced the verification: not reported.)
fn reach_from_untrusted(t: &mut Tables) {
    let Tables {
        adj,
        adj_start,
        untrusted,
        report_mark: mark,
        work,
        ..
    } = t;
    work.clear();
    for &u in untrusted.iter() {
        if mark[u] == Reach::Unreached {
            mark[u] = Reach::Found;
            work.push(u);
        }
    }
    mark_from(adj, adj_start, mark, work, Reach::Found);
}

/// Marks `to` every `Unreached` object reachable from those in `work`
/// (marked already) along the recorded edges.
fn mark_from(adj: &[Ix], adj_start: &[u32], mark: &mut [Reach], work: &mut Vec<Ix>, to: Reach) {
    while let Some(k) = work.pop() {
        for &j in edges(adj, adj_start, k) {
            if mark[j] == Reach::Unreached {
                mark[j] = to;
                work.push(j);
            }
        }
    }
}

/// Counts the `Found` objects still alive, lists their non-structural
/// types, and under `saveall` keeps one strong reference to each in
/// `garbage()`.
fn keep_found(h: &SyncHeap, t: &Tables, saveall: bool, log: bool) -> Reported {
    let mut out = Reported::default();
    let mut saved = Vec::new();
    for (i, (&m, &obj)) in t.report_mark.iter().zip(&t.objs).enumerate() {
        if m != Reach::Found {
            continue;
        }
        // SAFETY: in the tables and not freed (I1, I2, I4; see `owned`).
        let o = unsafe { owned(obj) };
        if saveall {
            // SAFETY: owned by this collection, so its header stays
            // readable (I2). The upgrade fails on a count that reached zero
            // (a zombie, or a mutator between its decrement and the shard
            // lock): such an object goes its own way, it is never revived.
            match unsafe { ObjectRef::try_new(obj) } {
                Some(r) => saved.push(r),
                None => continue,
            }
        } else if o.counts.load(Ordering::Relaxed) & STRONG_MASK == 0 {
            // Its last handle went meanwhile: freed, not kept.
            continue;
        }
        out.found += 1;
        if log {
            out.lines.push(super::found_line(obj, false));
        }
        let vt = o.vtable;
        if !vt.structural && !out.types.iter().any(|t| (t.type_id)() == (vt.type_id)()) {
            out.types.push(vt);
        }
        for &(k, name) in &t.inner_untrusted {
            if k.get() == i && !out.names.iter().any(|n| n() == name()) {
                out.names.push(name);
            }
        }
    }
    if !saved.is_empty() {
        prims::lock(&h.garbage).extend(saved);
    }
    out
}

/// Warns about each of `types` not warned about before by this heap
/// (`SyncHeap::warned`). Runs without the collector lock (a `log::Log` is
/// user code); the first panic of a logger goes to `panic`.
pub(super) fn warn_new_types(
    h: &SyncHeap,
    types: &[&'static SyncVTable],
    names: &[fn() -> &'static str],
    panic: &mut Option<Panic>,
) {
    if types.is_empty() && names.is_empty() {
        return;
    }
    let new_names: Vec<fn() -> &'static str> = {
        let mut warned = prims::lock(&h.warned_names);
        names
            .iter()
            .copied()
            .filter(|name| {
                let new = !warned.contains(&name());
                if new {
                    warned.push(name());
                }
                new
            })
            .collect()
    };
    for name in new_names {
        let p = catch(|| crate::collect::warn_uncollectable(name(), "sync::gc", "process"));
        if let Some(p) = p {
            keep_first(panic, Some(p));
        }
    }
    let new: Vec<&'static SyncVTable> = {
        let mut warned = prims::lock(&h.warned);
        types
            .iter()
            .copied()
            .filter(|vt| {
                let id: TypeId = (vt.type_id)();
                let new = !warned.contains(&id);
                if new {
                    warned.push(id);
                }
                new
            })
            .collect()
    };
    for vt in new {
        let p =
            catch(|| crate::collect::warn_uncollectable((vt.type_name)(), "sync::gc", "process"));
        if let Some(p) = p {
            keep_first(panic, Some(p));
        }
    }
}
