//! The collector half of the tour: reference cycles, what counting frees
//! and what the cycle collector frees, and a picture of the heap.

use std::cell::RefCell;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::Command;

use ouro::{Finalize, Gc, Trace, Weak, gc};

/// Prints a line when a value is dropped, so the tour shows what is freed.
struct Noisy(&'static str);

impl Drop for Noisy {
    fn drop(&mut self) {
        println!("    dropped {}", self.0);
    }
}

/// A tree node whose parent pointer is strong: parent and child form a cycle.
#[derive(Trace)]
struct TreeNode {
    #[trace(skip)]
    _name: Noisy,
    parent: RefCell<Option<Gc<TreeNode>>>,
    children: RefCell<Vec<Gc<TreeNode>>>,
}

/// The same with a weak parent pointer: no cycle, freed by counting alone.
#[derive(Trace)]
struct WeakTreeNode {
    #[trace(skip)]
    _name: Noisy,
    parent: RefCell<Weak<WeakTreeNode>>,
    children: RefCell<Vec<Gc<WeakTreeNode>>>,
}

/// A doubly linked list element.
#[derive(Trace)]
struct ListNode {
    #[trace(skip)]
    _name: Noisy,
    prev: RefCell<Option<Gc<ListNode>>>,
    next: RefCell<Option<Gc<ListNode>>>,
}

/// The observer pattern: the subject holds its observers, each observer
/// holds the subject back.
#[derive(Trace)]
#[trace(finalize)]
struct Subject {
    #[trace(skip)]
    name: Noisy,
    observers: RefCell<Vec<Gc<Observer>>>,
}

impl Finalize for Subject {
    fn finalize(&self) {
        println!(
            "    finalizing {} (its cycle is still intact: {} observers)",
            self.name.0,
            self.observers.borrow().len()
        );
    }
}

#[derive(Trace)]
struct Observer {
    #[trace(skip)]
    _name: Noisy,
    subject: RefCell<Option<Gc<Subject>>>,
}

fn tree_with_strong_parents() -> Gc<TreeNode> {
    let node = |name| {
        Gc::new(TreeNode {
            _name: Noisy(name),
            parent: RefCell::new(None),
            children: RefCell::new(vec![]),
        })
    };
    let root = node("tree root");
    for name in ["tree child a", "tree child b"] {
        let child = node(name);
        *child.parent.borrow_mut() = Some(root.clone());
        root.children.borrow_mut().push(child);
    }
    root
}

fn tree_with_weak_parents() -> Gc<WeakTreeNode> {
    let node = |name| {
        Gc::new(WeakTreeNode {
            _name: Noisy(name),
            parent: RefCell::new(Weak::new()),
            children: RefCell::new(vec![]),
        })
    };
    let root = node("weak-tree root");
    let child = node("weak-tree child");
    *child.parent.borrow_mut() = Gc::downgrade(&root);
    root.children.borrow_mut().push(child);
    root
}

fn doubly_linked_list() -> Gc<ListNode> {
    let names = ["list 1", "list 2", "list 3"];
    let nodes: Vec<_> = names
        .iter()
        .map(|&n| {
            Gc::new(ListNode {
                _name: Noisy(n),
                prev: RefCell::new(None),
                next: RefCell::new(None),
            })
        })
        .collect();
    for w in nodes.windows(2) {
        *w[0].next.borrow_mut() = Some(w[1].clone());
        *w[1].prev.borrow_mut() = Some(w[0].clone());
    }
    nodes[0].clone()
}

fn observer_cycle() -> Gc<Subject> {
    let subject = Gc::new(Subject {
        name: Noisy("subject"),
        observers: RefCell::new(vec![]),
    });
    for name in ["observer x", "observer y"] {
        let o = Gc::new(Observer {
            _name: Noisy(name),
            subject: RefCell::new(Some(subject.clone())),
        });
        subject.observers.borrow_mut().push(o);
    }
    subject
}

fn show_counts(when: &str) {
    let s = gc::get_stats();
    println!(
        "  {when:<15} get_count = {:?}, collections = [{}, {}, {}], collected = [{}, {}, {}]",
        gc::get_count(),
        s[0].collections,
        s[1].collections,
        s[2].collections,
        s[0].collected,
        s[1].collected,
        s[2].collected
    );
}

/// Writes `tour.dot` into `out_dir` and, when Graphviz is installed,
/// `tour.svg`; returns the files written.
fn draw_heap(out_dir: &Path) -> Vec<PathBuf> {
    let dot = out_dir.join("tour.dot");
    let svg = out_dir.join("tour.svg");
    match File::create(&dot)
        .map(BufWriter::new)
        .and_then(gc::write_dot)
    {
        Ok(()) => println!("  wrote {} (roots green, garbage red)", dot.display()),
        Err(e) => {
            println!("  could not write {}: {e}", dot.display());
            return Vec::new();
        }
    }
    match Command::new("dot")
        .arg("-Tsvg")
        .arg(&dot)
        .arg("-o")
        .arg(&svg)
        .status()
    {
        Ok(s) if s.success() => {
            println!("  rendered {} with Graphviz", svg.display());
            vec![dot, svg]
        }
        _ => {
            println!(
                "  (install Graphviz and run `dot -Tsvg {} -o {}` for a picture)",
                dot.display(),
                svg.display()
            );
            vec![dot]
        }
    }
}

/// What the collector part showed, for the tour's summary.
pub(crate) struct GcSummary {
    /// Objects the first `gc::collect()` found unreachable.
    pub(crate) collected: usize,
    /// The files `write_dot` (and Graphviz) wrote.
    pub(crate) files: Vec<PathBuf>,
}

/// Runs the collector tour, writing its drawing into `out_dir`.
pub(crate) fn gc_tour(out_dir: &Path) -> GcSummary {
    println!("\n== ouro::Gc and the cycle collector ==");
    // Collections are explicit in the tour, so the output is the same
    // every run.
    gc::disable();

    println!("a tree with weak parent pointers is freed by counting alone:");
    drop(tree_with_weak_parents());

    println!(
        "building cyclic structures (a tree with strong parent pointers, a doubly linked list, an observer cycle)"
    );
    let tree = tree_with_strong_parents();
    let list = doubly_linked_list();
    let subject = observer_cycle();
    let kept = tree_with_strong_parents(); // stays alive: held by a local
    show_counts("after building:");

    println!(
        "dropping the handles to the three structures: nothing is freed, the cycles keep themselves alive"
    );
    drop((tree, list, subject));
    let mut by_type = std::collections::BTreeMap::<&str, usize>::new();
    for o in gc::get_objects(None) {
        *by_type
            .entry(o.type_name().rsplit("::").next().unwrap_or("?"))
            .or_default() += 1;
    }
    println!("  gc::get_objects(None) by type: {by_type:?}");
    println!(
        "  the kept root is referred to by: {:?}",
        gc::get_referrers(&kept)
            .iter()
            .map(|o| o.type_name().rsplit("::").next().unwrap_or("?"))
            .collect::<Vec<_>>()
    );
    let files = draw_heap(out_dir);

    println!("gc::collect():");
    let found = gc::collect();
    println!("  found {found} unreachable objects");
    show_counts("after collect:");
    drop(kept);
    println!("dropping the kept tree and collecting again:");
    println!("  found {} unreachable objects", gc::collect());
    gc::enable();
    GcSummary {
        collected: found,
        files,
    }
}
