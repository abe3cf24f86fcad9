//! `ouro::deep_copy` with `#[derive(DeepCopy)]`, as a user sees it: a DAG
//! with shared children, a doubly linked list, a graph with self-loops, a
//! 100,000-node ring on a small stack, a tree with parent pointers, and
//! `#[deep_copy(shallow)]` fields. Each copy is checked by walking the source
//! and the copy side by side.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use ouro::{DeepCopy, Gc, Trace, Weak, deep_copy, gc};

/// Shared by a graph and its copy (never deep-copied).
#[derive(Trace)]
struct Config {
    name: String,
}

/// A graph node: strong edges, a weak back link, two shallow fields.
#[derive(Trace, DeepCopy)]
struct Node {
    id: u32,
    label: String,
    edges: RefCell<Vec<Gc<Node>>>,
    back: RefCell<Option<Weak<Node>>>,
    #[deep_copy(shallow)]
    config: Gc<Config>,
    #[deep_copy(shallow)]
    #[trace(skip)]
    tag: Rc<str>,
}

/// The graph's shared parts, and a counter of live nodes.
struct World {
    config: Gc<Config>,
    tag: Rc<str>,
}

impl World {
    fn new() -> World {
        World {
            config: Gc::new(Config { name: "cfg".into() }),
            tag: "tag".into(),
        }
    }

    fn node(&self, id: u32) -> Gc<Node> {
        Gc::new(Node {
            id,
            label: format!("n{id}"),
            edges: RefCell::new(Vec::new()),
            back: RefCell::new(None),
            config: self.config.clone(),
            tag: self.tag.clone(),
        })
    }
}

fn link(a: &Gc<Node>, b: &Gc<Node>) {
    a.edges.borrow_mut().push(b.clone());
}

fn set_back(a: &Gc<Node>, b: &Gc<Node>) {
    *a.back.borrow_mut() = Some(Gc::downgrade(b));
}

fn addr<T>(g: &Gc<T>) -> usize {
    Gc::as_ptr(g).addr()
}

/// Walks `src` and `copy` side by side (iteratively) and checks that the
/// copy has the same shape, shares no node with the source, shares the
/// shallow fields, and maps weak links into the copy exactly when their
/// target is part of the graph. Returns the nodes of the copy, in the walk's
/// order.
fn check_copy(src: &Gc<Node>, copy: &Gc<Node>) -> Vec<Gc<Node>> {
    let mut map: HashMap<usize, Gc<Node>> = HashMap::from([(addr(src), copy.clone())]);
    let mut seen_copies = HashSet::from([addr(copy)]);
    let mut todo = vec![(src.clone(), copy.clone())];
    let mut pairs = Vec::new();
    while let Some((s, c)) = todo.pop() {
        assert!(!Gc::ptr_eq(&s, &c));
        assert_eq!((s.id, &s.label), (c.id, &c.label));
        assert!(Gc::ptr_eq(&s.config, &c.config), "shallow Gc field copied");
        assert!(Rc::ptr_eq(&s.tag, &c.tag), "shallow Rc field copied");
        let (se, ce) = (s.edges.borrow(), c.edges.borrow());
        assert_eq!(se.len(), ce.len());
        for (a, b) in se.iter().zip(ce.iter()) {
            match map.get(&addr(a)) {
                Some(known) => assert!(Gc::ptr_eq(known, b), "a shared node was copied twice"),
                None => {
                    assert!(seen_copies.insert(addr(b)), "two nodes became one");
                    map.insert(addr(a), b.clone());
                    todo.push((a.clone(), b.clone()));
                }
            }
        }
        drop((se, ce));
        pairs.push((s, c));
    }
    assert!(
        map.keys().all(|a| !seen_copies.contains(a)),
        "the copy shares a node with the source"
    );
    for (s, c) in &pairs {
        let sb = s.back.borrow().as_ref().and_then(Weak::upgrade);
        let cb = c.back.borrow().as_ref().and_then(Weak::upgrade);
        match (sb, cb) {
            (None, None) => {}
            (Some(t), Some(u)) => match map.get(&addr(&t)) {
                Some(mapped) => assert!(Gc::ptr_eq(mapped, &u), "weak link not mapped"),
                None => assert!(Gc::ptr_eq(&t, &u), "weak link outside the graph changed"),
            },
            _ => panic!("weak link lost or invented"),
        }
    }
    pairs.into_iter().map(|(_, c)| c).collect()
}

fn on_small_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn dag_with_shared_children() {
    let w = World::new();
    let root = w.node(0);
    let shared = w.node(1);
    let (a, b) = (w.node(2), w.node(3));
    link(&root, &a);
    link(&root, &b);
    link(&a, &shared);
    link(&b, &shared);
    link(&b, &shared);
    let copy = deep_copy(&root);
    assert_eq!(check_copy(&root, &copy).len(), 4);
    let ca = copy.edges.borrow()[0].clone();
    let cb = copy.edges.borrow()[1].clone();
    let cs = ca.edges.borrow()[0].clone();
    assert!(Gc::ptr_eq(&cs, &cb.edges.borrow()[0]));
    assert!(Gc::ptr_eq(&cs, &cb.edges.borrow()[1]));
    // Counts as if the copy were built by hand.
    assert_eq!(Gc::strong_count(&cs), 4);
    assert_eq!(Gc::strong_count(&copy), 1);
    drop((root, a, b, shared, ca, cb, cs, copy));
    assert_eq!(Gc::strong_count(&w.config), 1);
    assert_eq!(gc::collect(), 0);
}

#[test]
fn doubly_linked_list() {
    let w = World::new();
    let n = if cfg!(miri) { 30 } else { 2000 };
    let first = w.node(0);
    let mut last = first.clone();
    for i in 1..n {
        let next = w.node(i);
        link(&last, &next);
        set_back(&next, &last);
        last = next;
    }
    let copy = deep_copy(&first);
    let nodes = check_copy(&first, &copy);
    assert_eq!(nodes.len(), n as usize);
    let copy_last = nodes.last().unwrap();
    assert_eq!(copy_last.id, n - 1);
    let prev = copy_last.back.borrow().as_ref().unwrap().upgrade().unwrap();
    assert!(Gc::ptr_eq(&prev.edges.borrow()[0], copy_last));
    drop((first, last, copy, nodes, prev));
    // `prev` links are weak: counting frees both lists.
    assert_eq!(Gc::strong_count(&w.config), 1);
    assert_eq!(gc::collect(), 0);
}

#[test]
fn graph_with_self_loops() {
    let w = World::new();
    let nodes: Vec<_> = (0..6).map(|i| w.node(i)).collect();
    for (i, n) in nodes.iter().enumerate() {
        link(n, n);
        link(n, &nodes[(i + 1) % 6]);
        link(n, &nodes[(i * 5 + 2) % 6]);
        set_back(n, &nodes[(i + 3) % 6]);
    }
    let copy = deep_copy(&nodes[0]);
    let copies = check_copy(&nodes[0], &copy);
    assert_eq!(copies.len(), 6);
    for c in &copies {
        assert!(Gc::ptr_eq(&c.edges.borrow()[0], c));
    }
    drop((nodes, copy, copies));
    assert_eq!(gc::collect(), 12);
    assert_eq!(Gc::strong_count(&w.config), 1);
}

#[test]
fn ring_of_100k_on_a_2_mib_stack() {
    on_small_stack(|| {
        let w = World::new();
        let n = if cfg!(miri) { 100 } else { 100_000 };
        let first = w.node(0);
        let mut last = first.clone();
        for i in 1..n {
            let next = w.node(i);
            link(&last, &next);
            last = next;
        }
        link(&last, &first);
        drop(last);
        let copy = deep_copy(&first);
        assert_eq!(check_copy(&first, &copy).len(), n as usize);
        drop((first, copy));
        assert_eq!(gc::collect(), 2 * n as usize);
        assert_eq!(Gc::strong_count(&w.config), 1);
    });
}

/// A tree with parent pointers, as in DESIGN.md's example.
#[derive(Trace, DeepCopy)]
struct TreeNode {
    name: String,
    parent: RefCell<Option<Weak<TreeNode>>>,
    children: RefCell<Vec<Gc<TreeNode>>>,
}

fn tree_node(name: &str, parent: Option<&Gc<TreeNode>>) -> Gc<TreeNode> {
    let n = Gc::new(TreeNode {
        name: name.into(),
        parent: RefCell::new(parent.map(Gc::downgrade)),
        children: RefCell::new(Vec::new()),
    });
    if let Some(p) = parent {
        p.children.borrow_mut().push(n.clone());
    }
    n
}

#[test]
fn tree_with_parent_pointers() {
    let root = tree_node("root", None);
    let sub = tree_node("sub", Some(&root));
    let leaf = tree_node("leaf", Some(&sub));
    // The whole tree: parent pointers point into the copy.
    let copy = deep_copy(&root);
    let csub = copy.children.borrow()[0].clone();
    let cleaf = csub.children.borrow()[0].clone();
    assert_eq!((&*csub.name, &*cleaf.name), ("sub", "leaf"));
    let up = cleaf.parent.borrow().as_ref().unwrap().upgrade().unwrap();
    assert!(Gc::ptr_eq(&up, &csub));
    let up = csub.parent.borrow().as_ref().unwrap().upgrade().unwrap();
    assert!(Gc::ptr_eq(&up, &copy));
    // A subtree: its root's parent is outside the copy and stays the original.
    let sub2 = deep_copy(&sub);
    assert!(!Gc::ptr_eq(&sub2, &sub));
    let up = sub2.parent.borrow().as_ref().unwrap().upgrade().unwrap();
    assert!(Gc::ptr_eq(&up, &root));
    let leaf2 = sub2.children.borrow()[0].clone();
    assert!(!Gc::ptr_eq(&leaf2, &leaf));
    let up = leaf2.parent.borrow().as_ref().unwrap().upgrade().unwrap();
    assert!(Gc::ptr_eq(&up, &sub2));
    drop((root, sub, leaf, copy, csub, cleaf, sub2, leaf2, up));
    assert_eq!(gc::collect(), 0, "parent links are weak: nothing cyclic");
}

/// Enums and generics go through the derive too. The derive bounds `T` by
/// `DeepCopy` only; `Gc<Expr<T>>: DeepCopy` needs `Expr<T>: Trace`, hence
/// the `Trace` bound written on the parameter.
#[derive(Trace, DeepCopy)]
enum Expr<T: Trace + 'static> {
    Leaf(T),
    Pair(Gc<Expr<T>>, Gc<Expr<T>>),
    Shared(#[deep_copy(shallow)] Gc<Expr<T>>),
    Counted {
        hits: Cell<u32>,
        inner: Box<Option<Gc<Expr<T>>>>,
    },
}

#[test]
fn enums_generics_and_shallow_variants() {
    let leaf = Gc::new(Expr::Leaf(String::from("x")));
    let pair = Gc::new(Expr::Pair(leaf.clone(), leaf.clone()));
    let outer = Gc::new(Expr::Counted {
        hits: Cell::new(3),
        inner: Box::new(Some(Gc::new(Expr::Pair(
            pair.clone(),
            Gc::new(Expr::Shared(pair.clone())),
        )))),
    });
    let copy = deep_copy(&outer);
    let Expr::Counted { hits, inner } = &*copy else {
        panic!()
    };
    assert_eq!(hits.get(), 3);
    let Expr::Pair(cpair, cshared) = &**(**inner).as_ref().unwrap() else {
        panic!()
    };
    assert!(!Gc::ptr_eq(cpair, &pair));
    let Expr::Shared(s) = &**cshared else {
        panic!()
    };
    assert!(Gc::ptr_eq(s, &pair), "a shallow field keeps the original");
    let Expr::Pair(l, r) = &**cpair else { panic!() };
    assert!(Gc::ptr_eq(l, r));
    assert!(!Gc::ptr_eq(l, &leaf));
    assert!(matches!(&**l, Expr::Leaf(s) if s == "x"));
}

#[test]
fn trait_and_derive_share_the_name() {
    fn copies<T: ouro::DeepCopy>() {}
    copies::<Node>();
    copies::<Vec<Gc<Node>>>();
    let _: fn(&Gc<Node>) -> Gc<Node> = ouro::deep_copy::<Node>;
    let _ = core::mem::size_of::<ouro::DeepCopier<'static>>();
}

/// `ouro::sync::deep_copy` with the derive: a tree with weak parent
/// pointers and a shared leaf, behind `Mutex` and `RwLock`, on the
/// process-wide heap.
mod sync_heap {
    use std::sync::{Arc, Mutex, RwLock};

    use ouro::sync::{Gc, Weak, deep_copy, gc};
    use ouro::{DeepCopy, Trace};

    #[derive(Trace, DeepCopy)]
    struct Tree {
        name: String,
        parent: RwLock<Weak<Tree>>,
        children: Mutex<Vec<Gc<Tree>>>,
        #[deep_copy(shallow)]
        #[trace(skip)]
        tag: Arc<str>,
    }

    fn tree(name: &str, tag: &Arc<str>) -> Gc<Tree> {
        Gc::new(Tree {
            name: name.into(),
            parent: RwLock::new(Weak::new()),
            children: Mutex::new(Vec::new()),
            tag: tag.clone(),
        })
    }

    fn adopt(parent: &Gc<Tree>, child: &Gc<Tree>) {
        parent.children.lock().unwrap().push(child.clone());
        *child.parent.write().unwrap() = Gc::downgrade(parent);
    }

    #[test]
    fn a_tree_with_parent_pointers_and_a_shared_leaf() {
        let tag: Arc<str> = "t".into();
        let (root, a, b, leaf) = (
            tree("root", &tag),
            tree("a", &tag),
            tree("b", &tag),
            tree("leaf", &tag),
        );
        adopt(&root, &a);
        adopt(&root, &b);
        adopt(&a, &leaf);
        b.children.lock().unwrap().push(leaf.clone()); // shared
        let copy = deep_copy(&root);
        let kids = copy.children.lock().unwrap().clone();
        assert_eq!(
            kids.iter().map(|k| k.name.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        for k in &kids {
            let up = k.parent.read().unwrap().upgrade().unwrap();
            assert!(
                Gc::ptr_eq(&up, &copy),
                "parent pointers point into the copy"
            );
        }
        let l1 = kids[0].children.lock().unwrap()[0].clone();
        let l2 = kids[1].children.lock().unwrap()[0].clone();
        assert!(Gc::ptr_eq(&l1, &l2), "the shared leaf stays shared");
        assert!(!Gc::ptr_eq(&l1, &leaf));
        assert!(Arc::ptr_eq(&l1.tag, &tag), "shallow fields are cloned");
        let w = Gc::downgrade(&copy);
        drop((copy, kids, l1, l2));
        gc::collect();
        assert!(w.upgrade().is_none(), "the copy is freed on its own");
        assert_eq!(
            root.children.lock().unwrap().len(),
            2,
            "the source is intact"
        );
    }
}
