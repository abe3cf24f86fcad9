//! The cost of the `gc` introspection features: a full collection over a
//! large live heap, with and without `gc::freeze()` (frozen objects are never
//! scanned, so the collection should cost nothing for them).

use std::cell::RefCell;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use ouro::{Gc, Trace, gc};

#[derive(Trace)]
struct Node {
    next: RefCell<Option<Gc<Node>>>,
}

const LIVE: usize = 1_000_000;

fn live_list(n: usize) -> Gc<Node> {
    let head = Gc::new(Node {
        next: RefCell::new(None),
    });
    let mut cur = head.clone();
    for _ in 1..n {
        let x = Gc::new(Node {
            next: RefCell::new(None),
        });
        *cur.next.borrow_mut() = Some(x.clone());
        cur = x;
    }
    head
}

fn collect_iters(iters: u64) -> Duration {
    let t = Instant::now();
    for _ in 0..iters {
        black_box(gc::collect());
    }
    t.elapsed()
}

fn freeze(c: &mut Criterion) {
    gc::disable();
    let mut g = c.benchmark_group("full_collect_1m_live_freeze");
    g.sample_size(10);
    let heap = live_list(LIVE);
    g.bench_function("ouro_scanned", |b| b.iter_custom(collect_iters));
    gc::freeze();
    assert_eq!(gc::get_freeze_count(), LIVE);
    g.bench_function("ouro_frozen", |b| b.iter_custom(collect_iters));
    gc::unfreeze();
    g.finish();
    drop(heap);
    gc::collect();
}

fn main() {
    // `criterion_group!` would generate an undocumented public function.
    let mut c = Criterion::default().configure_from_args();
    freeze(&mut c);
    c.final_summary();
}
