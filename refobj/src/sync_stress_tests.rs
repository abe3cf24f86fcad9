//! The multi-threaded stress test of the process-wide heap at Miri size.
//! The engine (`sync_stress_engine.rs`) is shared with the CI-size
//! integration test `tests/sync_stress.rs`; see its docs for the model and
//! what is checked.
//!
//! Natively, the other unit tests of this crate run in parallel in the same
//! process, and some change the heap's settings under their own lock, freeze
//! the heap or turn on `SAVEALL` for a moment: there this run leaves the
//! threshold alone and allows a few extra collections before it calls an
//! unreachable node leaked (`strict: false`). Under Miri the test harness
//! runs one test at a time (Miri reports one CPU), so the run owns the heap:
//! a small threshold turns automatic collection on and the checks are
//! strict. It is Miri-sized everywhere: the CI-size run is the integration
//! test, and a bigger run here would only add collections that race the
//! other unit tests' callbacks and statistics.

mod api {
    pub(super) use crate::sync::{Gc, Weak, gc};
    pub(super) use crate::{Structural, Trace, Visitor};
}

#[path = "sync_stress_engine.rs"]
mod engine;

#[test]
fn sync_stress_threads_against_the_model() {
    // With and without weak handles: the collector claims differently.
    for weak in [true, false] {
        engine::run(&engine::Config {
            seed: 0x5EED_0001,
            threads: 4,
            ops: 30,
            threshold: if cfg!(miri) { Some([2, 3, 3]) } else { None },
            collect_percent: 15,
            check_every: 10,
            strict: cfg!(miri),
            weak,
        });
    }
}
