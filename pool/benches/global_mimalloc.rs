//! The `Vec`/`Box` workload of `common/workload.rs` with mimalloc as the
//! global allocator (`global_vec_box/mimalloc`).

// criterion's macros generate undocumented public functions.
#![allow(missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};

#[path = "common/workload.rs"]
mod workload;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn bench(c: &mut Criterion) {
    workload::bench(c, "mimalloc");
}

criterion_group!(benches, bench);
criterion_main!(benches);
