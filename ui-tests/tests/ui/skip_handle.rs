// `#[trace(skip)]` is refused on any field whose type names `Gc` or `Weak`,
// however deeply nested; std's `Weak` under its full path is fine, and so is
// a handle named only in a function signature (an argument or a result).
use ouro::{Gc, Trace, Weak};
use std::cell::RefCell;

#[derive(Trace)]
struct Node {
    #[trace(skip)]
    parent: RefCell<Option<Weak<Node>>>,
    #[trace(skip)]
    children: RefCell<Vec<(u32, ouro::Gc<Node>)>>,
    #[trace(skip)]
    boxed: Box<[Gc<Node>; 2]>,
    #[trace(skip)]
    fine: std::rc::Weak<u32>,
    #[trace(skip)]
    also_fine: std::sync::Weak<u32>,
    #[trace(skip)]
    listener: Box<dyn Fn(&[Gc<Node>], &str)>,
    #[trace(skip)]
    factory: fn(u32) -> Option<Weak<Node>>,
    #[trace(skip)]
    pair: Vec<(fn(&Gc<Node>), Gc<Node>)>,
}

#[derive(Trace)]
enum Link {
    Strong(#[trace(skip)] Gc<Link>),
    Plain(#[trace(skip)] String),
}

fn main() {}
