#!/usr/bin/env python3
"""CPython's `gc` on the workloads of bench/src/workloads.rs.

    python3 bench/cpython_compare.py run <workload> [runs]   # one JSON line
    python3 bench/cpython_compare.py list

A node is a `__slots__` object with three links (`a`, `b`, `up`, the Rust
node's three slots), a list of further links made on first use (the Rust
`Vec`, which allocates nothing while empty) and a value. Times are this
thread's CPU time (`time.thread_time_ns`), like the Rust side;
`OURO_BENCH_WALL=1` switches to the wall clock. Automatic collection stays
on, as in the Rust adapters, except where a workload times one collection.

The drop check: after each run, no `Node` may be left among the objects the
collector tracks (`gc.get_objects()`); a `__del__` counter would slow every
deallocation down and measure Python calls instead of CPython's memory
management. `clone_drop` and the threaded rows have no CPython equivalent
(one INCREF/DECREF pair is lost in the interpreter's dispatch).
"""

import gc
import json
import os
import sys
import time

if os.environ.get("OURO_BENCH_WALL", "0") != "0":
    clock_ns = time.perf_counter_ns
else:
    clock_ns = time.thread_time_ns

MILLION = 1_000_000
MASK = (1 << 64) - 1


class Node:
    __slots__ = ("a", "b", "up", "extra", "value")

    def __init__(self, value):
        self.a = None
        self.b = None
        self.up = None
        self.extra = None
        self.value = value


class Rng:
    """SplitMix64, the same sequence as the Rust `Rng`."""

    def __init__(self, seed):
        self.state = seed

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def below(self, n):
        return ((self.next() >> 32) * n) >> 32


class Wrong(Exception):
    pass


def alloc_drop():
    start = clock_ns()
    for i in range(MILLION):
        Node(i)
    gc.collect()
    return clock_ns() - start


def cycles_500k():
    start = clock_ns()
    for i in range(MILLION // 2):
        a = Node(i)
        b = Node(i)
        a.a = b
        b.a = a
    del a, b
    gc.collect()
    return clock_ns() - start


def ring_1m():
    start = clock_ns()
    first = Node(0)
    last = first
    for i in range(1, MILLION):
        node = Node(i)
        last.a = node
        last = node
    last.a = first
    del first, last, node
    gc.collect()
    return clock_ns() - start


def chains(count, length):
    roots = []
    for c in range(count):
        head = Node(c * length)
        for i in range(1, length):
            node = Node(c * length + i)
            node.a = head
            head = node
        roots.append(head)
    return roots


def full_collect_live_1m():
    roots = chains(1000, 1000)
    gc.collect()
    start = clock_ns()
    found = gc.collect()
    t = clock_ns() - start
    if found:
        raise Wrong(f"a collection of a live heap found {found} objects")
    del roots
    return t


def young_collect_old_1m():
    old = chains(1000, 1000)
    gc.collect()
    gc.collect()
    total = 0
    young = []
    for _ in range(5):
        for i in range(500):
            node = Node(i)
            node.a = old[i % len(old)]
            young.append(node)
        for i in range(250):
            a = Node(i)
            b = Node(i)
            a.a = b
            b.a = a
        del a, b
        start = clock_ns()
        found = gc.collect(0)
        total += clock_ns() - start
        # An automatic collection may have found some pairs already; the
        # leak check after the run sees any that were never freed.
        if found > 500:
            raise Wrong(f"the young collection found {found} objects, over 500")
        young.clear()
    del old
    return total


def tree(depth, up, root):
    node = Node(depth)
    node.up = up
    if depth > 0:
        parent = node if root is None else root
        node.a = tree(depth - 1, parent, root)
        node.b = tree(depth - 1, parent, root)
    return node


def plain_tree(depth):
    node = Node(depth)
    if depth > 0:
        node.a = plain_tree(depth - 1)
        node.b = plain_tree(depth - 1)
    return node


def count_nodes(node):
    n = 1
    if node.a is not None:
        n += count_nodes(node.a)
    if node.b is not None:
        n += count_nodes(node.b)
    return n


def binary_trees_parent_18():
    start = clock_ns()
    tree(18, None, None)
    gc.collect()
    return clock_ns() - start


def check_tree(depth, to_root):
    root = Node(depth)
    if depth > 0:
        if to_root:
            root.a = tree(depth - 1, root, root)
            root.b = tree(depth - 1, root, root)
        else:
            root.a = plain_tree(depth - 1)
            root.b = plain_tree(depth - 1)
    return count_nodes(root)


def rustcc_binary_trees_impl(max_depth, to_root):
    min_depth = 4
    start = clock_ns()
    checksum = check_tree(max_depth + 1, to_root)
    gc.collect()
    long_lived = Node(0)
    long_lived.a = plain_tree(max_depth)
    for depth in range(min_depth, max_depth + 1, 2):
        for _ in range(1 << (max_depth - depth + min_depth)):
            checksum += check_tree(depth, to_root)
        gc.collect()
    checksum += count_nodes(long_lived)
    del long_lived
    gc.collect()
    return clock_ns() - start


def rustcc_binary_trees():
    return rustcc_binary_trees_impl(14, False)


def rustcc_binary_trees_parent():
    return rustcc_binary_trees_impl(14, True)


def rustcc_linked_list():
    start = clock_ns()
    for _ in range(30):
        head = Node(0)
        tail = head
        for i in range(1, 4096):
            node = Node(i)
            node.b = tail
            tail.a = node
            tail = node
        del head, tail, node
        gc.collect()
    return clock_ns() - start


def rustcc_stress():
    nodes, edges, step = 1 << 15, 1 << 15, 1024
    rng = Rng(0x5EED)
    start = clock_ns()
    all_nodes = [Node(i) for i in range(nodes)]
    for _ in range(edges):
        src = all_nodes[rng.below(nodes)]
        dst = all_nodes[rng.below(nodes)]
        if src.extra is None:
            src.extra = []
        src.extra.append(dst)
    while all_nodes:
        del all_nodes[max(len(all_nodes) - step, 0):]
        gc.collect()
    return clock_ns() - start


def swap_remove(items, i):
    last = items.pop()
    if i < len(items):
        items[i] = last


def dumpster_churn():
    rng = Rng(0xD00D1E)
    start = clock_ns()
    roots = [Node(i) for i in range(50)]
    for op in range(MILLION):
        kind = rng.below(4)
        if kind == 0:
            roots.append(Node(op))
        elif roots:
            if kind == 1:
                src = roots[rng.below(len(roots))]
                dst = roots[rng.below(len(roots))]
                if src.extra is None:
                    src.extra = []
                src.extra.append(dst)
            elif kind == 2:
                swap_remove(roots, rng.below(len(roots)))
            else:
                node = roots[rng.below(len(roots))]
                if node.extra:
                    swap_remove(node.extra, rng.below(len(node.extra)))
    del roots
    gc.collect()
    return clock_ns() - start


WORKLOADS = {
    f.__name__: f
    for f in (
        alloc_drop,
        cycles_500k,
        ring_1m,
        full_collect_live_1m,
        young_collect_old_1m,
        binary_trees_parent_18,
        dumpster_churn,
        rustcc_binary_trees,
        rustcc_binary_trees_parent,
        rustcc_linked_list,
        rustcc_stress,
    )
}

NOT_EXPRESSIBLE = {
    "clone_drop": "INCREF/DECREF is lost in interpreter dispatch",
}


def live_nodes():
    return sum(1 for o in gc.get_objects() if type(o) is Node)


def peak_rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


def result(workload, status, samples, note=""):
    ordered = sorted(samples)
    n = len(ordered)
    if n == 0:
        median = None
    elif n % 2:
        median = ordered[n // 2]
    else:
        median = (ordered[n // 2 - 1] + ordered[n // 2]) // 2
    return json.dumps(
        {
            "library": "cpython",
            "workload": workload,
            "status": status,
            "median_ns": median,
            "samples_ns": samples,
            "rss_kib": peak_rss_kib(),
            "note": note,
        }
    )


def main():
    sys.setrecursionlimit(10_000)
    if len(sys.argv) >= 2 and sys.argv[1] == "list":
        print("\n".join(WORKLOADS))
        return
    if len(sys.argv) < 3 or sys.argv[1] != "run":
        sys.exit(__doc__)
    workload = sys.argv[2]
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    if workload not in WORKLOADS:
        print(result(workload, "n/a", [], NOT_EXPRESSIBLE.get(workload, "no equivalent")))
        return
    samples = []
    started = time.perf_counter()
    for _ in range(runs):
        # As in the Rust child: no new run after 1 s, so slow shapes get
        # fewer runs and the whole comparison stays within minutes.
        if samples and time.perf_counter() - started > 1.0:
            break
        try:
            samples.append(WORKLOADS[workload]())
        except Wrong as e:
            print(result(workload, "wrong", [], str(e)))
            return
        gc.collect()
        left = live_nodes()
        if left:
            print(result(workload, "leak", [], f"{left} nodes left alive"))
            return
    print(result(workload, "ok", samples))


if __name__ == "__main__":
    main()
