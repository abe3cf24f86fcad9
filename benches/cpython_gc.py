#!/usr/bin/env python3
"""CPython's `gc` on the shapes of benches/gc.rs, for the table beside ouro.

    python3 benches/cpython_gc.py          # timings, then peak RSS (subprocesses)
    python3 benches/cpython_gc.py --rss N  # only: peak RSS of 1M nodes, variant N

Nodes are `__slots__ = ("next", "value")` objects: a link and a word, like
the Rust `Node` (RefCell<Option<Gc<Node>>> + u64, 24 bytes). Automatic
collection is off (`gc.disable()`) while heaps are built, as in the Rust
bench; only the collection is timed for the collector shapes. Each shape is
repeated and the median is printed. Times are this thread's CPU time
(`time.thread_time_ns`), as in benches/gc.rs; `OURO_BENCH_WALL=1` switches
both to the wall clock.

Equivalents, and what has none:
- clone_drop: no honest equivalent. `b = a; del b` runs one INCREF/DECREF
  pair (about a nanosecond in C) inside several bytecodes of interpreter
  dispatch; the loop would measure the interpreter, not reference counting.
  Reported as n/a.
- new_drop: `Node(None, 7)` in a loop, the result dropped at once (object
  creation + deallocation; includes the loop's own bytecode dispatch).
- cycles_500k, ring_1m_collect: `gc.collect()` after dropping the garbage.
- full_collect_live_1m: `gc.collect()` over a 1M-node chain held by one
  name (chain), and over 1M unlinked nodes held by a list (vec_roots).
- gen0_collect_with_old: `gc.collect(0)` over 500 live young nodes pointing
  into the old generation plus 250 garbage two-node cycles, with 0 / 100k /
  1M old nodes (moved to the oldest generation by a full collection first).
- peak RSS: a fresh interpreter builds a 1M-node chain and reads VmHWM;
  `value=i` stores a distinct int per node (what holding a u64 costs in
  Python: an int object each), `value=0` shares one cached small int. The
  ouro and Rc rows come from examples/rss.rs when it is built in release
  (`$CARGO_TARGET_DIR` or target/), since `cargo xtask bench` cannot show
  memory.
"""

import gc
import os
import statistics
import subprocess
import sys
import time

MILLION = 1_000_000
YOUNG_LIVE = 500
YOUNG_PAIRS = 250

if os.environ.get("OURO_BENCH_WALL", "0") != "0":
    clock_ns = time.perf_counter_ns
    CLOCK = "wall clock"
else:
    clock_ns = time.thread_time_ns
    CLOCK = "thread CPU time"


class Node:
    __slots__ = ("next", "value")

    def __init__(self, next, value):
        self.next = next
        self.value = value


def timed(f):
    """Runs f() and returns its duration in ns."""
    start = clock_ns()
    f()
    return clock_ns() - start


def median_ns(samples):
    return statistics.median(samples)


def bench_new_drop(n=MILLION, repeat=5):
    def run():
        for _ in range(n):
            Node(None, 7)

    return median_ns([timed(run) for _ in range(repeat)]) / n, 1


def make_pairs(pairs):
    for i in range(pairs):
        a = Node(None, i)
        b = Node(a, i)
        a.next = b


def bench_cycles(repeat=5):
    samples = []
    for _ in range(repeat):
        make_pairs(MILLION // 2)
        start = clock_ns()
        found = gc.collect()
        samples.append(clock_ns() - start)
        assert found == MILLION, found
    return median_ns(samples), MILLION


def make_ring(n):
    first = Node(None, 0)
    last = first
    for i in range(1, n):
        node = Node(None, i)
        last.next = node
        last = node
    last.next = first
    return first


def bench_ring(repeat=5):
    samples = []
    for _ in range(repeat):
        ring = make_ring(MILLION)
        del ring
        start = clock_ns()
        found = gc.collect()
        samples.append(clock_ns() - start)
        assert found == MILLION, found
    return median_ns(samples), MILLION


def make_chain(n):
    head = Node(None, 0)
    for i in range(1, n):
        head = Node(head, i)
    return head


def bench_full_live(shape, repeat=7):
    if shape == "chain":
        heap = make_chain(MILLION)
    else:
        heap = [Node(None, i) for i in range(MILLION)]
    samples = []
    for _ in range(repeat):
        start = clock_ns()
        found = gc.collect()
        samples.append(clock_ns() - start)
        assert found == 0, found
    del heap
    return median_ns(samples), MILLION


def bench_gen0(old_count, repeat=300):
    old = []
    for i in range(old_count):
        old.append(Node(old[-1] if old else None, i))
    gc.collect()
    stride = max(old_count // YOUNG_LIVE, 1)
    young = []
    samples = []
    for _ in range(repeat):
        for i in range(YOUNG_LIVE):
            j = i * stride
            young.append(Node(old[j] if j < old_count else None, i))
        make_pairs(YOUNG_PAIRS)
        start = clock_ns()
        found = gc.collect(0)
        samples.append(clock_ns() - start)
        assert found == 2 * YOUNG_PAIRS, found
        young.clear()
    del old
    gc.collect()
    return median_ns(samples), YOUNG_LIVE + 2 * YOUNG_PAIRS


def status_mib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise KeyError(field)


def rss_child(variant):
    """Peak RSS of a 1M-node chain in this (fresh) interpreter."""
    gc.disable()
    before = status_mib("VmHWM")
    head = Node(None, 0)
    if variant == "value=i":
        for i in range(1, MILLION):
            head = Node(head, i)
    else:
        for _ in range(1, MILLION):
            head = Node(head, 0)
    after = status_mib("VmHWM")
    print(f"{before:.1f} {after:.1f}")


def fmt_time(ns):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--rss":
        rss_child(sys.argv[2])
        return
    gc.disable()
    gc.collect()
    print(f"CPython {sys.version.split()[0]} gc, same shapes as benches/gc.rs ({CLOCK})\n")
    rows = [("clone_drop", "n/a (interpreter dispatch dominates)", None, None)]
    shapes = [
        ("new_drop", bench_new_drop),
        ("cycles_500k", bench_cycles),
        ("ring_1m_collect", bench_ring),
        ("full_collect_live_1m/chain", lambda: bench_full_live("chain")),
        ("full_collect_live_1m/vec_roots", lambda: bench_full_live("list")),
        ("gen0_collect_with_old/0", lambda: bench_gen0(0)),
        ("gen0_collect_with_old/100k", lambda: bench_gen0(100_000)),
        ("gen0_collect_with_old/1m", lambda: bench_gen0(MILLION)),
    ]
    for name, f in shapes:
        ns, objects = f()
        rows.append((name, fmt_time(ns), objects, ns / objects))
        print(f"  measured {name}", file=sys.stderr)
    print(f"| {'shape':<32} | {'time (median)':>13} | {'objects':>9} | {'ns/object':>9} |")
    print(f"| {'-' * 32} | {'-' * 12}: | {'-' * 8}: | {'-' * 8}: |")
    for name, t, objects, per in rows:
        if objects is None:
            print(f"| {name:<32} | {t} |")
        else:
            print(f"| {name:<32} | {t:>13} | {objects:>9} | {per:>9.1f} |")

    print("\npeak RSS (VmHWM) of a 1M-node chain, each run in a fresh process:\n")
    print(f"| {'library':<28} | {'before':>8} | {'peak':>8} | {'growth':>8} |")
    print(f"| {'-' * 28} | {'-' * 7}: | {'-' * 7}: | {'-' * 7}: |")
    runs = [
        (f"CPython __slots__, {variant}", [sys.executable, __file__, "--rss", variant], parse_python_rss)
        for variant in ("value=i", "value=0")
    ]
    rss = rss_example()
    if rss:
        runs += [(f"{lib} (examples/rss.rs)", [rss, lib], parse_rust_rss) for lib in ("ouro", "rc")]
    for name, cmd, parse in runs:
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        before, peak = parse(out)
        print(f"| {name:<28} | {before:>4.1f} MiB | {peak:>4.1f} MiB | {peak - before:>4.1f} MiB |")
    if not rss:
        print("\n(ouro and Rc rows: build `cargo build --release --example rss` first)")


def rss_example():
    """The built examples/rss.rs binary, if there is one."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(root, "target"))
    path = os.path.join(target, "release", "examples", "rss")
    return path if os.access(path, os.X_OK) else None


def parse_python_rss(out):
    before, peak = out.split()
    return float(before), float(peak)


def parse_rust_rss(out):
    values = {}
    for line in out.splitlines():
        if line.startswith("peak before build:"):
            values["before"] = float(line.split()[3])
        elif line.startswith("peak after build:"):
            values["peak"] = float(line.split()[3])
    return values["before"], values["peak"]


if __name__ == "__main__":
    main()
