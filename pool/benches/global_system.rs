//! The `Vec`/`Box` workload of `common/workload.rs` with system as the
//! global allocator (`global_vec_box/system`).

// criterion's macros generate undocumented public functions.
#![allow(missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};

#[path = "common/workload.rs"]
mod workload;

// The default global allocator: `std::alloc::System`.

fn bench(c: &mut Criterion) {
    workload::bench(c, "system");
}

criterion_group!(benches, bench);
criterion_main!(benches);
