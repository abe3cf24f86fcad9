//! `sync_clone_drop` measured in pairs: the ratio of `ouro::sync::Gc`'s
//! clone+drop time to `Arc`'s, with the two measured alternately in one
//! process.
//!
//! Criterion's `sync_clone_drop` group (benches/sync.rs) measures each row
//! on its own, seconds apart. On the shared bench machine the speed of a
//! core drifts by more than the 5-20% that matter here between those
//! seconds: six criterion runs of the same build put the 1-thread ratio
//! anywhere between 0.81 and 1.24. Here each round times a block of pairs
//! of each kind back to back (each side first in every other round), so
//! that both see the same machine, and the ratio of the two medians is
//! stable to about 2% on one thread (0.985-1.017 in twelve runs; a build
//! whose `clone` and `drop` compiled to `lock xadd` instead of `Arc`'s
//! `lock inc`/`lock dec` read 1.19-1.21 in every run). With two threads
//! hammering one handle it still moves from run to run (0.80-1.46 in
//! twelve runs, median 0.94): a round's time depends mostly on whether
//! the two threads really ran at once. (With `ouro_sync` always first in
//! its round the two-thread median was 1.08 in 25 runs: the order
//! mattered, hence the alternation.)
//!
//! `cargo bench --bench sync_paired` (also run by `cargo xtask bench`; it
//! takes criterion's `--quick` and a name filter, and without `--bench`, as
//! under `cargo test --benches`, runs one small round as a smoke test).
//! The handles are the same values as in benches/sync.rs; times are thread
//! CPU time, as there.

use std::sync::{Arc, Mutex};

use ouro::Trace;
use ouro::sync;

#[path = "common/clock.rs"]
mod clock;
#[path = "common/hammer.rs"]
mod hammer;
use hammer::hammer;

const NAME: &str = "sync_clone_drop_paired";

#[derive(Trace)]
struct SyncNode {
    next: Mutex<Option<sync::Gc<SyncNode>>>,
    value: u64,
}

struct ArcNode {
    _next: Mutex<Option<Arc<ArcNode>>>,
    value: u64,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let benching = args.iter().any(|a| a == "--bench");
    let quick = args.iter().any(|a| a == "--quick");
    // A positional argument is a name filter, as criterion's.
    if let Some(filter) = args.iter().find(|a| !a.starts_with('-'))
        && !NAME.contains(filter.as_str())
    {
        return;
    }
    let (rounds, iters) = match (benching, quick) {
        (false, _) => (1, 10_000),
        (true, true) => (5, 2_000_000),
        (true, false) => (41, 1_000_000),
    };
    let gc = sync::Gc::new(SyncNode {
        next: Mutex::new(None),
        value: 1,
    });
    let arc = Arc::new(ArcNode {
        _next: Mutex::new(None),
        value: 1,
    });
    for threads in [1, 2] {
        let (mut ours, mut theirs): (Vec<f64>, Vec<f64>) = (0..rounds)
            .map(|round| {
                // Each side goes first in every other round: the first
                // block of a round follows the other side's block of the
                // round before, the second its own side's.
                let (a, b) = if round % 2 == 0 {
                    let a = hammer(&gc, threads, iters);
                    (a, hammer(&arc, threads, iters))
                } else {
                    let b = hammer(&arc, threads, iters);
                    (hammer(&gc, threads, iters), b)
                };
                (a.as_secs_f64(), b.as_secs_f64())
            })
            .unzip();
        // Medians of each side's times, not of the rounds' ratios: with two
        // threads a round's time depends on whether the two really ran at
        // once (on this shared machine often not), and a ratio of two such
        // rounds can be anything from 0.1 to 10.
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let (a, b) = (median(&mut ours), median(&mut theirs));
        if benching {
            let ns = |t: f64| t * 1e9 / iters as f64;
            println!(
                "{NAME}/{threads}: {:.2} ns a pair against arc's {:.2} (medians of {rounds} \
                 alternating rounds of {iters} pairs): {:.3}x",
                ns(a),
                ns(b),
                a / b
            );
        }
    }
    assert_eq!(sync::Gc::strong_count(&gc), 1);
    assert_eq!(Arc::strong_count(&arc), 1);
    assert_eq!((gc.value, arc.value), (1, 1));
}
