//! ouro: CPython's memory-management model for Rust graphs.
//!
//! Small objects come from a pymalloc-style pool ([`pool`]), live behind a
//! `Py<T>`-like reference-counted handle ([`Gc`]), and reference cycles are
//! reclaimed by a generational cycle collector that uses CPython's
//! trial-deletion algorithm ([`gc`]). Derive [`Trace`] on your types and
//! build trees with parent pointers, doubly linked lists and object graphs
//! without leaks and without `unsafe`.
//!
//! ```
//! use ouro::{Gc, Trace, Weak, gc};
//! use std::cell::RefCell;
//!
//! #[derive(Trace)]
//! struct Node {
//!     name: String,
//!     parent: RefCell<Option<Weak<Node>>>,
//!     children: RefCell<Vec<Gc<Node>>>,
//! }
//!
//! let root = Gc::new(Node { name: "root".into(), parent: RefCell::new(None), children: RefCell::new(vec![]) });
//! let leaf = Gc::new(Node { name: "leaf".into(), parent: RefCell::new(Some(Gc::downgrade(&root))), children: RefCell::new(vec![]) });
//! root.children.borrow_mut().push(leaf.clone());
//! assert_eq!(leaf.parent.borrow().as_ref().unwrap().upgrade().unwrap().name, "root");
//! drop((root, leaf)); // freed at once: parent links are weak
//! assert_eq!(gc::collect(), 0);
//! ```

pub use ouro_refobj::{DeepCopier, DeepCopy, Finalize, Gc, Trace, Visitor, Weak, deep_copy, gc};
// The derives share their traits' names (different namespaces, like serde's).
pub use ouro_macros::{DeepCopy, Trace};
pub use ouro_pool as pool;
