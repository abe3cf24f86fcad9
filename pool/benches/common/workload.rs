//! The `Vec`/`Box`-heavy workload run under each global allocator (group
//! `global_vec_box`), shared by the `global_*` bench binaries.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, Throughput};

/// A small tree node, boxed.
struct Node {
    value: u64,
    name: String,
    /// Boxed on purpose: the workload is about `Box` allocations.
    #[allow(clippy::vec_box)]
    children: Vec<Box<Node>>,
}

fn tree(depth: u32, value: u64) -> Box<Node> {
    let children = if depth == 0 {
        Vec::new()
    } else {
        (0..4).map(|i| tree(depth - 1, value * 4 + i)).collect()
    };
    Box::new(Node {
        value,
        name: format!("n{value}"),
        children,
    })
}

fn sum(node: &Node) -> u64 {
    node.value + node.name.len() as u64 + node.children.iter().map(|c| sum(c)).sum::<u64>()
}

/// One round: a boxed tree (341 nodes with names and child vectors), a map
/// of small vectors, and vectors grown by pushing; everything is dropped.
pub(crate) fn round() -> u64 {
    let t = tree(4, 1);
    let mut map = BTreeMap::new();
    for i in 0..200u32 {
        map.insert(
            i.wrapping_mul(2_654_435_761),
            vec![i as u8; (i % 48) as usize],
        );
    }
    let mut vs: Vec<Vec<u32>> = Vec::new();
    for i in 0..50 {
        let mut v = Vec::new();
        for j in 0..(i % 20) {
            v.push(j);
        }
        vs.push(v);
    }
    let boxes: Vec<Box<[u64; 3]>> = (0..300).map(|i| Box::new([i; 3])).collect();
    sum(&t) + map.len() as u64 + vs.iter().map(Vec::len).sum::<usize>() as u64 + boxes[7][1]
}

/// Registers the workload as `global_vec_box/<name>`, plus a four-thread
/// variant `global_vec_box_4_threads/<name>`.
pub(crate) fn bench(c: &mut Criterion, name: &str) {
    let mut group = c.benchmark_group("global_vec_box");
    group.throughput(Throughput::Elements(1));
    group.bench_function(name, |b| b.iter(|| black_box(round())));
    group.finish();
    let mut group = c.benchmark_group("global_vec_box_4_threads");
    group.throughput(Throughput::Elements(4));
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let start = std::time::Instant::now();
            std::thread::scope(|s| {
                for _ in 0..4 {
                    s.spawn(move || {
                        for _ in 0..iters {
                            black_box(round());
                        }
                    });
                }
            });
            start.elapsed()
        })
    });
    group.finish();
}
