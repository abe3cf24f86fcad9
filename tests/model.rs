//! Model-based test of the collector: random programs mutate an object graph
//! (add and remove edges, add and drop roots, collect) and every step is
//! checked against a reference reachability model:
//! - nothing reachable from a root is ever dropped;
//! - after a full collection everything unreachable has been dropped;
//! - every value is dropped exactly once.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::rc::Rc;

use ouro::{Gc, Trace, Weak, gc};
use proptest::prelude::*;
use proptest::strategy::ValueTree;

#[derive(Trace)]
struct Node {
    id: usize,
    edges: RefCell<Vec<Gc<Node>>>,
    drops: Rc<RefCell<Vec<u32>>>,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.drops.borrow_mut()[self.id] += 1;
    }
}

#[derive(Clone, Debug)]
enum Op {
    New,
    CloneRoot(usize),
    DropRoot(usize),
    AddEdge(usize, usize),
    RemoveEdge(usize, usize),
    Collect(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::New),
        1 => any::<usize>().prop_map(Op::CloneRoot),
        3 => any::<usize>().prop_map(Op::DropRoot),
        6 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Op::AddEdge(a, b)),
        2 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Op::RemoveEdge(a, b)),
        1 => (0..3usize).prop_map(Op::Collect),
    ]
}

/// The reference model: node ids, their edges, the roots.
#[derive(Default)]
struct Model {
    edges: BTreeMap<usize, Vec<usize>>,
    roots: Vec<usize>,
}

impl Model {
    fn reachable(&self) -> HashSet<usize> {
        let mut seen = HashSet::new();
        let mut stack: Vec<usize> = self.roots.clone();
        while let Some(n) = stack.pop() {
            if seen.insert(n) {
                stack.extend(self.edges[&n].iter().copied());
            }
        }
        seen
    }
}

fn run(ops: Vec<Op>, threshold0: usize) {
    gc::enable();
    gc::set_threshold([threshold0, 2, 2]);
    let drops = Rc::new(RefCell::new(Vec::<u32>::new()));
    let mut model = Model::default();
    let mut roots: Vec<Gc<Node>> = Vec::new();
    let mut weaks: Vec<Weak<Node>> = Vec::new();

    let check = |model: &Model, full: bool| {
        let reach = model.reachable();
        let d = drops.borrow();
        for (id, &n) in d.iter().enumerate() {
            assert!(n <= 1, "node {id} dropped {n} times");
            if reach.contains(&id) {
                assert_eq!(n, 0, "reachable node {id} was dropped");
            } else if full {
                assert_eq!(n, 1, "unreachable node {id} survived a full collection");
            }
        }
    };

    // Long programs check the model every 25 steps to stay fast.
    let every = if ops.len() > 1000 { 25 } else { 1 };
    for (step, op) in ops.into_iter().enumerate() {
        let reach: Vec<usize> = {
            let mut r: Vec<_> = model.reachable().into_iter().collect();
            r.sort_unstable();
            r
        };
        let get =
            |id: usize, weaks: &[Weak<Node>]| weaks[id].upgrade().expect("reachable node is alive");
        match op {
            Op::New => {
                let id = weaks.len();
                drops.borrow_mut().push(0);
                let n = Gc::new(Node {
                    id,
                    edges: RefCell::new(Vec::new()),
                    drops: drops.clone(),
                });
                weaks.push(Gc::downgrade(&n));
                model.edges.insert(id, Vec::new());
                model.roots.push(id);
                roots.push(n);
            }
            Op::CloneRoot(i) if !roots.is_empty() => {
                let i = i % roots.len();
                roots.push(roots[i].clone());
                model.roots.push(model.roots[i]);
            }
            Op::DropRoot(i) if !roots.is_empty() => {
                let i = i % roots.len();
                roots.swap_remove(i);
                model.roots.swap_remove(i);
            }
            Op::AddEdge(a, b) if !reach.is_empty() => {
                let (a, b) = (reach[a % reach.len()], reach[b % reach.len()]);
                let (na, nb) = (get(a, &weaks), get(b, &weaks));
                na.edges.borrow_mut().push(nb);
                model.edges.get_mut(&a).unwrap().push(b);
            }
            Op::RemoveEdge(a, k) if !reach.is_empty() => {
                let a = reach[a % reach.len()];
                let na = get(a, &weaks);
                let len = na.edges.borrow().len();
                if len > 0 {
                    let removed = na.edges.borrow_mut().remove(k % len);
                    let m = model.edges.get_mut(&a).unwrap().remove(k % len);
                    assert_eq!(removed.id, m);
                }
            }
            Op::Collect(g) => {
                gc::collect_generation(g);
            }
            _ => {}
        }
        if step % every == 0 {
            check(&model, false);
        }
    }
    gc::collect();
    check(&model, true);
    // Drop everything: all values dropped exactly once.
    drop(roots);
    model.roots.clear();
    gc::collect();
    check(&model, true);
    gc::set_threshold([700, 10, 10]);
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: if cfg!(miri) { 4 } else { 256 },
        failure_persistence: if cfg!(miri) {
            None
        } else {
            ProptestConfig::default().failure_persistence
        },
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn collector_matches_reachability_model(
        ops in prop::collection::vec(op(), 1..if cfg!(miri) { 40 } else { 400 }),
        threshold0 in prop_oneof![Just(0usize), 1usize..20],
    ) {
        run(ops, threshold0);
    }
}

/// Thousands of operations in one program, with frequent automatic
/// collections.
#[test]
fn long_random_program() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let n = if cfg!(miri) { 100 } else { 10_000 };
    let ops = prop::collection::vec(op(), n)
        .new_tree(&mut runner)
        .unwrap()
        .current();
    run(ops, 5);
}
