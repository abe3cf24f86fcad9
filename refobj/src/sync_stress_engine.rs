//! The engine of the multi-threaded stress test of the process-wide heap
//! (`sync::Gc`), checked against a reachability model. It is compiled twice:
//! by the Miri-size unit test (`refobj/src/sync_stress_tests.rs`) and by the
//! CI-size integration test (`tests/sync_stress.rs`). Each includer defines a
//! sibling module `api` exporting `Gc`, `Weak`, `gc`, `Trace` and `Visitor`.
//!
//! # The model and why it stays exact on several threads
//!
//! Every mutation of the graph — a new node linked into the roots, an edge
//! added or removed, a root dropped, cloned or handed to another thread — is
//! done on the real heap *and* on the model under one lock (`Shared::state`).
//! So under that lock the model's roots and edges are exactly the real ones,
//! except for temporary handles a thread holds outside the lock (a handle it
//! just took out of the graph and is about to drop, a node it allocated and
//! has not linked yet, a weak handle it upgraded). Those only keep *more*
//! objects alive, so "reachable in the model ⇒ not dropped" holds at every
//! moment the lock is held, and after the threads have joined (no temporaries
//! left) the model is exact both ways.
//!
//! Everything that does not need the model runs outside the lock, so that it
//! really races the mutators and the collectors of the other threads:
//! `gc::collect` and `gc::collect_generation` (explicit, and automatic inside
//! `Gc::new` with a small threshold), allocation, `Weak::upgrade` of any node
//! ever made (garbage or not, from any thread), and the drops of handles just
//! removed from the graph (which run destructors and may cascade).
//!
//! # What is checked
//!
//! - Every node carries its id and a `dropped` flag; every access goes
//!   through [`Node::live`], which asserts the flag is clear and the drop
//!   table has no entry for it. `Drop` asserts it runs once per node.
//! - Every walk along the real graph compares each step with the model
//!   (same edge count, same target id at the same index).
//! - Periodically, under the lock: no node reachable in the model has been
//!   dropped.
//! - A weak handle of a node reachable in the model upgrades.
//! - A node whose weak handle upgraded outside the lock (possibly garbage
//!   that a collection is judging at that moment) is adopted as a root, and
//!   then everything reachable from it, walked on the real graph, is alive
//!   and matches the model (the claim of a garbage set is all or nothing).
//! - After the threads join and one `gc::collect()`: exactly the nodes
//!   unreachable in the model have been dropped, each once; after the roots
//!   are dropped and another `gc::collect()`: all of them, each once, and no
//!   weak handle upgrades.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use super::api::{Gc, Structural, Trace, Visitor, Weak, gc};

/// One run of the stress test.
#[derive(Clone, Copy, Debug)]
pub(super) struct Config {
    /// The seed of every thread's RNG (thread `t` uses stream `t`).
    pub(super) seed: u64,
    /// Mutator threads.
    pub(super) threads: usize,
    /// Operations per thread.
    pub(super) ops: usize,
    /// `Some(t)`: run with `gc::set_threshold(t)` (and `gc::enable()`) and
    /// restore the old threshold afterwards. `None`: leave the process-wide
    /// settings alone (other tests of the process may be reading them).
    pub(super) threshold: Option<[usize; 3]>,
    /// Out of 100 operations, how many request a collection.
    pub(super) collect_percent: usize,
    /// Check the model's reachable set against the drop table every this
    /// many operations of a thread.
    pub(super) check_every: usize,
    /// `true`: a single `gc::collect()` must free exactly the unreachable
    /// nodes. `false`: other tests of the process may freeze the heap or keep
    /// garbage (`SAVEALL`) for a moment, so a few more collections are
    /// allowed before the "everything unreachable is freed" check fails.
    pub(super) strict: bool,
    /// Give every node a weak handle (kept in `Shared::weaks`), or none. A
    /// collection whose candidates have no weak handle takes another path
    /// through the collector (it claims without a compare-exchange), so the
    /// test runs both ways.
    pub(super) weak: bool,
}

/// Which node ids have been dropped, and how often (must stay 0 or 1).
struct DropTable {
    drops: Box<[AtomicU32]>,
}

impl DropTable {
    fn count(&self, id: usize) -> u32 {
        self.drops[id].load(SeqCst)
    }
}

struct Node {
    id: usize,
    dropped: AtomicBool,
    edges: Mutex<Vec<Gc<Node>>>,
    table: Arc<DropTable>,
}

impl Node {
    /// Checks that the value has not been dropped, then gives it back: every
    /// access to a node goes through here.
    fn live(&self) -> &Node {
        assert!(
            !self.dropped.load(SeqCst),
            "node {} was accessed after its drop",
            self.id
        );
        assert_eq!(
            self.table.count(self.id),
            0,
            "node {} was accessed although the drop table has it",
            self.id
        );
        self
    }

    fn edges(&self) -> MutexGuard<'_, Vec<Gc<Node>>> {
        self.live().edges.lock().unwrap()
    }
}

impl Trace for Node {
    fn structural() -> Structural<Self> {
        // SAFETY: `trace` only calls `trace` on a field of ouro's types.
        unsafe { Structural::promise() }
    }
    fn trace(&self, v: &mut Visitor<'_>) {
        self.edges.trace(v);
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        assert!(
            !self.dropped.swap(true, SeqCst),
            "node {} dropped twice (flag)",
            self.id
        );
        let before = self.table.drops[self.id].fetch_add(1, SeqCst);
        assert_eq!(before, 0, "node {} dropped twice (drop table)", self.id);
    }
}

/// xorshift64*, seeded through splitmix64 so that nearby seeds and streams
/// give unrelated sequences.
struct Rng(u64);

impl Rng {
    fn new(seed: u64, stream: u64) -> Rng {
        let mut z = seed
            .wrapping_add(stream.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-enough in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The model, and the real handles that more than one thread can reach,
/// behind one lock.
#[derive(Default)]
struct State {
    /// `edges[id]`: the ids in node `id`'s `edges`, in the same order.
    edges: Vec<Vec<usize>>,
    /// `roots[t]`: the ids of thread `t`'s own root handles, in its order.
    roots: Vec<Vec<usize>>,
    /// Handles handed to thread `t` that it has not taken yet.
    mail: Vec<Vec<Gc<Node>>>,
    mail_ids: Vec<Vec<usize>>,
    /// Handles every thread may start a walk from.
    shared: Vec<Gc<Node>>,
    shared_ids: Vec<usize>,
}

impl State {
    /// The model's reachable set, indexed by id.
    fn reachable(&self) -> Vec<bool> {
        let mut seen = vec![false; self.edges.len()];
        let mut stack: Vec<usize> = self.roots.iter().flatten().copied().collect();
        stack.extend(self.mail_ids.iter().flatten());
        stack.extend(&self.shared_ids);
        while let Some(n) = stack.pop() {
            if !seen[n] {
                seen[n] = true;
                stack.extend(&self.edges[n]);
            }
        }
        seen
    }

    /// A random node reachable from thread `t`'s roots or the shared
    /// handles, found by a short random walk along the real edges, each step
    /// compared with the model.
    fn walk(&self, t: usize, roots: &[Gc<Node>], rng: &mut Rng) -> Option<(usize, Gc<Node>)> {
        let starts = roots.len() + self.shared.len();
        if starts == 0 {
            return None;
        }
        let i = rng.below(starts);
        let (mut id, mut node) = if i < roots.len() {
            (self.roots[t][i], roots[i].clone())
        } else {
            let j = i - roots.len();
            (self.shared_ids[j], self.shared[j].clone())
        };
        assert_eq!(node.live().id, id, "a root handle differs from the model");
        for _ in 0..rng.below(5) {
            let next = {
                let real = node.edges();
                let model = &self.edges[id];
                assert_eq!(
                    real.len(),
                    model.len(),
                    "node {id}: edges differ from the model"
                );
                if real.is_empty() {
                    break;
                }
                let k = rng.below(real.len());
                assert_eq!(real[k].live().id, model[k], "node {id}: edge {k} differs");
                (model[k], real[k].clone())
            };
            (id, node) = next;
        }
        Some((id, node))
    }

    /// Walks everything reachable from `from` on the real graph: every node
    /// is alive and its edges are the model's.
    fn check_closure<'a>(&self, from: impl IntoIterator<Item = &'a Gc<Node>>) {
        let mut seen = vec![false; self.edges.len()];
        let mut stack: Vec<Gc<Node>> = from.into_iter().cloned().collect();
        while let Some(n) = stack.pop() {
            let id = n.live().id;
            if std::mem::replace(&mut seen[id], true) {
                continue;
            }
            let real = n.edges();
            let model = &self.edges[id];
            assert_eq!(
                real.len(),
                model.len(),
                "node {id}: edges differ from the model"
            );
            for (r, &m) in real.iter().zip(model) {
                assert_eq!(r.live().id, m, "node {id}: an edge differs from the model");
                stack.push(r.clone());
            }
        }
    }

    /// No node reachable in the model has been dropped.
    fn check_reachable_alive(&self, table: &DropTable) {
        for (id, r) in self.reachable().into_iter().enumerate() {
            if r {
                assert_eq!(table.count(id), 0, "node {id} is reachable but was dropped");
            }
        }
    }
}

/// What the mutator threads share.
struct Shared {
    state: Mutex<State>,
    table: Arc<DropTable>,
    /// `weaks[id]`: set when node `id` is linked into the model (under the
    /// lock), so a set entry always has a model node; read without the lock.
    weaks: Box<[OnceLock<Weak<Node>>]>,
    next_id: AtomicUsize,
    threads: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }
}

fn new_node(id: usize, table: &Arc<DropTable>) -> Node {
    Node {
        id,
        dropped: AtomicBool::new(false),
        edges: Mutex::new(Vec::new()),
        table: table.clone(),
    }
}

/// One mutator thread; returns its own roots when done.
fn mutator(sh: &Shared, cfg: &Config, t: usize) -> Vec<Gc<Node>> {
    let mut rng = Rng::new(cfg.seed, t as u64);
    let mut roots: Vec<Gc<Node>> = Vec::new();
    for step in 0..cfg.ops {
        // Handles taken out of the graph; dropped after the lock is released.
        let mut trash: Vec<Gc<Node>> = Vec::new();
        let r = rng.below(100);
        // Keep the root set from growing without bound.
        let r = if roots.len() > 24 && r < 48 { 48 } else { r };
        match r {
            // New node (allocated outside the lock: this is where automatic
            // collections run), then linked as a root, maybe with an edge
            // to or from a reachable node.
            0..15 => {
                let id = sh.next_id.fetch_add(1, SeqCst);
                let n = Gc::new(new_node(id, &sh.table));
                let mut st = sh.lock();
                if st.edges.len() <= id {
                    st.edges.resize(id + 1, Vec::new());
                }
                if cfg.weak {
                    assert!(sh.weaks[id].set(Gc::downgrade(&n)).is_ok());
                }
                match rng.below(3) {
                    0 => {
                        if let Some((b, nb)) = st.walk(t, &roots, &mut rng) {
                            n.edges().push(nb);
                            st.edges[id].push(b);
                        }
                    }
                    1 => {
                        if let Some((a, na)) = st.walk(t, &roots, &mut rng) {
                            na.edges().push(n.clone());
                            st.edges[a].push(id);
                            trash.push(na);
                        }
                    }
                    _ => {}
                }
                st.roots[t].push(id);
                roots.push(n);
            }
            // A ring of 1 to 4 new nodes, often garbage at once (only the
            // collector can free it) or hung below a reachable node; maybe
            // with an edge from the ring to a reachable node, which the
            // ring's collection must not free.
            15..23 => {
                let len = 1 + rng.below(4);
                let ring: Vec<(usize, Gc<Node>)> = (0..len)
                    .map(|_| {
                        let id = sh.next_id.fetch_add(1, SeqCst);
                        (id, Gc::new(new_node(id, &sh.table)))
                    })
                    .collect();
                let mut st = sh.lock();
                for (i, (id, n)) in ring.iter().enumerate() {
                    let (next_id, next) = &ring[(i + 1) % len];
                    n.edges().push(next.clone());
                    if st.edges.len() <= *id {
                        st.edges.resize(id + 1, Vec::new());
                    }
                    st.edges[*id].push(*next_id);
                    if cfg.weak {
                        assert!(sh.weaks[*id].set(Gc::downgrade(n)).is_ok());
                    }
                }
                let (first, head) = &ring[0];
                if rng.below(2) == 0
                    && let Some((b, nb)) = st.walk(t, &roots, &mut rng)
                {
                    head.edges().push(nb);
                    st.edges[*first].push(b);
                }
                if rng.below(3) == 0
                    && let Some((a, na)) = st.walk(t, &roots, &mut rng)
                {
                    na.edges().push(head.clone());
                    st.edges[a].push(*first);
                    trash.push(na);
                }
                drop(st);
                trash.extend(ring.into_iter().map(|(_, n)| n));
            }
            // Add an edge between two reachable nodes (often made by other
            // threads); the target handle is sometimes an upgraded weak.
            23..38 => {
                let mut st = sh.lock();
                let a = st.walk(t, &roots, &mut rng);
                let b = st.walk(t, &roots, &mut rng);
                if let (Some((a, na)), Some((b, nb))) = (a, b) {
                    let nb = match sh.weaks[b].get() {
                        Some(w) if rng.below(2) == 0 => {
                            trash.push(nb);
                            w.upgrade()
                                .expect("the weak handle of a reachable node must upgrade")
                        }
                        _ => nb,
                    };
                    assert_eq!(nb.live().id, b);
                    na.edges().push(nb);
                    st.edges[a].push(b);
                    trash.push(na);
                }
            }
            // Remove an edge of a reachable node.
            38..48 => {
                let mut st = sh.lock();
                if let Some((a, na)) = st.walk(t, &roots, &mut rng) {
                    let mut real = na.edges();
                    if !real.is_empty() {
                        let k = rng.below(real.len());
                        let h = real.swap_remove(k);
                        let m = st.edges[a].swap_remove(k);
                        assert_eq!(h.live().id, m);
                        trash.push(h);
                    }
                    drop(real);
                    trash.push(na);
                }
            }
            // Drop one of our roots.
            48..60 => {
                let mut st = sh.lock();
                if !roots.is_empty() {
                    let i = rng.below(roots.len());
                    trash.push(roots.swap_remove(i));
                    st.roots[t].swap_remove(i);
                }
            }
            // Take a new root to a reachable node.
            60..63 => {
                let mut st = sh.lock();
                if let Some((id, n)) = st.walk(t, &roots, &mut rng) {
                    roots.push(n);
                    st.roots[t].push(id);
                }
            }
            // Hand one of our roots to another thread.
            63..68 => {
                let mut st = sh.lock();
                if !roots.is_empty() && sh.threads > 1 {
                    let u = (t + 1 + rng.below(sh.threads - 1)) % sh.threads;
                    let i = rng.below(roots.len());
                    let h = roots.swap_remove(i);
                    let id = st.roots[t].swap_remove(i);
                    st.mail[u].push(h);
                    st.mail_ids[u].push(id);
                }
            }
            // Take the roots handed to us.
            68..73 => {
                let mut st = sh.lock();
                let st = &mut *st;
                roots.append(&mut st.mail[t]);
                st.roots[t].append(&mut st.mail_ids[t]);
            }
            // Publish a reachable node for every thread, or withdraw one.
            73..76 => {
                let mut st = sh.lock();
                if st.shared.len() < 8 {
                    if let Some((id, n)) = st.walk(t, &roots, &mut rng) {
                        st.shared.push(n);
                        st.shared_ids.push(id);
                    }
                } else {
                    let i = rng.below(st.shared.len());
                    trash.push(st.shared.swap_remove(i));
                    st.shared_ids.swap_remove(i);
                }
            }
            76..78 => {
                let mut st = sh.lock();
                if !st.shared.is_empty() {
                    let i = rng.below(st.shared.len());
                    trash.push(st.shared.swap_remove(i));
                    st.shared_ids.swap_remove(i);
                }
            }
            // Upgrade the weak handle of any node ever made, without the
            // lock: it may be garbage that a collection is judging right
            // now. If it upgrades, it and everything it reaches must be
            // alive; adopt it as a root half of the time.
            78..94 => {
                let made = sh.next_id.load(SeqCst);
                if made > 0 {
                    // Mostly recent nodes: the likeliest to be garbage that
                    // no collection has freed yet.
                    let id = if rng.below(4) == 0 {
                        rng.below(made)
                    } else {
                        made - 1 - rng.below(made.min(32))
                    };
                    if let Some(h) = sh.weaks[id].get().and_then(Weak::upgrade) {
                        assert_eq!(h.live().id, id);
                        if rng.below(2) == 0 {
                            let mut st = sh.lock();
                            st.check_closure([&h]);
                            st.roots[t].push(id);
                            roots.push(h);
                        } else {
                            trash.push(h);
                        }
                    }
                }
            }
            94..96 => std::thread::yield_now(),
            _ => {}
        }
        drop(trash);
        if rng.below(100) < cfg.collect_percent {
            match rng.below(3) {
                0 => {
                    gc::collect();
                }
                _ => {
                    gc::collect_generation(rng.below(3));
                }
            }
        }
        if step % cfg.check_every == 0 {
            sh.lock().check_reachable_alive(&sh.table);
        }
    }
    roots
}

/// Asserts that node `id` has been dropped exactly `want` times, for every
/// id, where `want(id)` is 0 or 1. When not `strict`, a node that should be
/// dropped and is not yet gets more collections first (see
/// [`Config::strict`]).
fn check_drops(table: &DropTable, strict: bool, what: &str, want: impl Fn(usize) -> u32) {
    let missing = |table: &DropTable| {
        (0..table.drops.len()).find(|&id| want(id) == 1 && table.count(id) == 0)
    };
    if !strict {
        for _ in 0..100 {
            if missing(table).is_none() {
                break;
            }
            std::thread::yield_now();
            gc::collect();
            gc::wait_for_drops();
        }
    }
    for id in 0..table.drops.len() {
        let (got, want) = (table.count(id), want(id));
        assert!(got <= 1, "node {id} dropped {got} times");
        assert_eq!(
            got, want,
            "{what}: node {id} dropped {got} times, expected {want}"
        );
    }
}

/// Runs the stress test once with `cfg`; panics on the first violation.
pub(super) fn run(cfg: &Config) {
    let old_threshold = cfg.threshold.map(|t| {
        let old = gc::get_threshold();
        gc::enable();
        gc::set_threshold(t);
        old
    });
    // At most 4 new nodes per operation.
    let capacity = cfg.threads * cfg.ops * 4;
    let sh = Shared {
        state: Mutex::new(State {
            roots: vec![Vec::new(); cfg.threads],
            mail: (0..cfg.threads).map(|_| Vec::new()).collect(),
            mail_ids: vec![Vec::new(); cfg.threads],
            ..State::default()
        }),
        table: Arc::new(DropTable {
            drops: (0..capacity).map(|_| AtomicU32::new(0)).collect(),
        }),
        weaks: (0..capacity).map(|_| OnceLock::new()).collect(),
        next_id: AtomicUsize::new(0),
        threads: cfg.threads,
    };
    let roots: Vec<Vec<Gc<Node>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..cfg.threads)
            .map(|t| {
                let sh = &sh;
                s.spawn(move || mutator(sh, cfg, t))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let Shared {
        state,
        table,
        weaks,
        next_id,
        ..
    } = sh;
    let mut st = state.into_inner().unwrap();
    let made = next_id.into_inner();
    assert!(made <= capacity);
    for (t, r) in roots.iter().enumerate() {
        let ids: Vec<usize> = r.iter().map(|n| n.live().id).collect();
        assert_eq!(ids, st.roots[t], "thread {t}'s roots differ from the model");
    }

    // (b) after one full collection, exactly the unreachable nodes are gone.
    let reach = st.reachable();
    gc::collect();
    // The last automatic collections' garbage may still be dropped by the
    // background thread.
    gc::wait_for_drops();
    check_drops(&table, cfg.strict, "after the threads joined", |id| {
        u32::from(id < made && !reach[id])
    });
    for (id, w) in weaks.iter().enumerate().take(made) {
        if cfg.weak {
            let up = w.get().expect("every node made was linked").upgrade();
            assert_eq!(up.is_some(), reach[id], "node {id}: upgrade after collect");
        }
    }
    st.check_closure(
        roots
            .iter()
            .flatten()
            .chain(st.mail.iter().flatten())
            .chain(&st.shared),
    );

    // Drop every root: all nodes dropped, each once.
    drop(roots);
    st.mail.clear();
    st.shared.clear();
    gc::collect();
    gc::wait_for_drops();
    check_drops(&table, cfg.strict, "after dropping every root", |id| {
        u32::from(id < made)
    });
    assert!(
        weaks
            .iter()
            .all(|w| w.get().and_then(Weak::upgrade).is_none()),
        "a weak handle upgraded after everything was dropped"
    );
    if let Some(old) = old_threshold {
        gc::set_threshold(old);
    }
}
