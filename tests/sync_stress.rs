//! Multi-threaded stress test of the process-wide heap (`ouro::sync`)
//! against a reachability model, at CI size: 4 threads mutate one graph
//! (allocate, link and unlink nodes of any thread, drop, clone and hand over
//! roots, upgrade weak handles) while collections — explicit from every
//! thread, and automatic with a small threshold — race them. The engine is
//! shared with the Miri-size unit test in `refobj/src/sync_stress_tests.rs`;
//! see `refobj/src/sync_stress_engine.rs` for the model and what is checked.
//!
//! This binary owns its process's heap, so its checks are strict: one
//! `gc::collect()` after the threads join must free exactly the unreachable
//! nodes.

mod api {
    pub(super) use ouro::sync::{Gc, Weak, gc};
    pub(super) use ouro::{Structural, Trace, Visitor};
}

#[path = "../refobj/src/sync_stress_engine.rs"]
mod engine;

#[test]
fn four_threads_random_graph_ops_against_the_model() {
    let seeds: &[u64] = if cfg!(miri) {
        &[1]
    } else {
        &[1, 2, 3, 4, 5, 6, 7, 8]
    };
    for &seed in seeds {
        // Automatic collection at a small threshold, different per seed
        // (and off for one seed: only the explicit collections run).
        let threshold0 = [0, 1, 4, 16, 2, 8, 1, 32][seed as usize % 8];
        engine::run(&engine::Config {
            seed,
            threads: 4,
            ops: if cfg!(miri) { 30 } else { 5000 },
            threshold: Some([threshold0, 3, 3]),
            collect_percent: 3,
            check_every: 50,
            strict: true,
            // Odd seeds: no weak handles (the collector's other claim path).
            weak: seed % 2 == 0,
        });
    }
}
