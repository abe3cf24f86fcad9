//! The Graphviz drawing of a heap (`gc::write_dot`), written once for both
//! kinds of heap: each lists its objects and edges as [`DotNode`]s, and
//! [`write_dot`] decides what is a root, what is garbage, and draws them.

use std::io::{self, Write};

/// One object of the drawing.
#[doc(hidden)]
#[derive(Debug)]
pub struct DotNode {
    /// The value's address (`ObjectInfo::address`), also the node's name.
    pub addr: usize,
    pub type_name: &'static str,
    /// The strong count, without any reference the caller's listing holds.
    pub strong: usize,
    pub frozen: bool,
    /// The nodes (indices) its value holds handles to, once per handle.
    pub edges: Vec<usize>,
}

/// Writes `nodes` as a Graphviz `digraph`: objects held from outside the
/// heap (more strong references than edges from the listed objects) are
/// roots, green boxes; objects no root reaches, and those `SAVEALL` kept
/// (their addresses in `saved`: held by that list, not roots), are red
/// octagons; the rest are ellipses; frozen objects have a double border.
#[doc(hidden)]
pub fn write_dot(nodes: &[DotNode], saved: &[usize], mut w: impl Write) -> io::Result<()> {
    let mut inner = vec![0usize; nodes.len()];
    for n in nodes {
        for &j in &n.edges {
            inner[j] += 1;
        }
    }
    let is_saved: Vec<bool> = nodes.iter().map(|n| saved.contains(&n.addr)).collect();
    let roots: Vec<bool> = (0..nodes.len())
        .map(|i| !is_saved[i] && nodes[i].strong > inner[i])
        .collect();
    let mut reachable = roots.clone();
    let mut stack: Vec<usize> = (0..nodes.len()).filter(|&i| roots[i]).collect();
    while let Some(i) = stack.pop() {
        for &j in &nodes[i].edges {
            if !reachable[j] {
                reachable[j] = true;
                stack.push(j);
            }
        }
    }
    writeln!(w, "digraph ouro {{")?;
    writeln!(w, "  rankdir=LR;")?;
    writeln!(w, "  node [fontname=\"monospace\", fontsize=10];")?;
    for (i, n) in nodes.iter().enumerate() {
        let name = n
            .type_name
            .rsplit("::")
            .next()
            .unwrap_or("?")
            .replace('"', "'");
        let style = if roots[i] {
            "shape=box, style=filled, fillcolor=\"#b7e4a0\""
        } else if !reachable[i] || is_saved[i] {
            "shape=octagon, style=filled, fillcolor=\"#f4a6a6\""
        } else {
            "shape=ellipse"
        };
        let frozen = if n.frozen { ", peripheries=2" } else { "" };
        writeln!(
            w,
            "  o{:x} [label=\"{}\\nrefs={}\", {}{}];",
            n.addr, name, n.strong, style, frozen
        )?;
    }
    for n in nodes {
        for &j in &n.edges {
            writeln!(w, "  o{:x} -> o{:x};", n.addr, nodes[j].addr)?;
        }
    }
    writeln!(w, "}}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(addr: usize, strong: usize, edges: Vec<usize>) -> DotNode {
        DotNode {
            addr,
            type_name: "m::T",
            strong,
            frozen: false,
            edges,
        }
    }

    #[test]
    fn roots_garbage_and_saved() {
        // 0 is held from outside and points to 1; 2 and 3 form a cycle no
        // root reaches; 4 is held only by `garbage()`.
        let nodes = [
            node(0x10, 1, vec![1]),
            node(0x20, 1, vec![]),
            node(0x30, 1, vec![3]),
            node(0x40, 1, vec![2]),
            node(0x50, 1, vec![]),
        ];
        let mut out = Vec::new();
        write_dot(&nodes, &[0x50], &mut out).unwrap();
        let dot = String::from_utf8(out).unwrap();
        let line = |a: &str| {
            dot.lines()
                .find(|l| l.starts_with(&format!("  o{a} [")))
                .unwrap()
                .to_owned()
        };
        assert!(line("10").contains("shape=box"));
        assert!(line("20").contains("shape=ellipse"));
        assert!(line("30").contains("shape=octagon"));
        assert!(line("40").contains("shape=octagon"));
        assert!(line("50").contains("shape=octagon"));
        assert!(dot.contains("  o10 -> o20;"));
    }
}
