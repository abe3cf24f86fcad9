//! The `Vec`/`Box` workload of `common/workload.rs` with sync_pool as the
//! global allocator (`global_vec_box/sync_pool`).

// criterion's macros generate undocumented public functions.
#![allow(missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};

#[path = "common/workload.rs"]
mod workload;

#[global_allocator]
static ALLOC: ouro_pool::SyncPool = ouro_pool::SyncPool::new();

fn bench(c: &mut Criterion) {
    workload::bench(c, "sync_pool");
}

criterion_group!(benches, bench);
criterion_main!(benches);
