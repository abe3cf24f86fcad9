//! A small DOM whose event listeners capture the element they hang on: each
//! listener is an `ouro::Closure`, whose captures the collector traces, so
//! the element <-> listener cycles are collected once the tree is dropped.
//!
//! Run with `cargo run --example dom`.

use ouro::{Callback, Closure, Gc, Trace, Weak, gc};
use std::cell::{Cell, RefCell};

/// An event, passed to listeners by reference.
struct Event {
    kind: &'static str,
}

#[derive(Trace)]
struct Element {
    tag: String,
    clicks: Cell<u32>,
    parent: RefCell<Option<Weak<Element>>>,
    children: RefCell<Vec<Gc<Element>>>,
    listeners: RefCell<Vec<Box<dyn Callback<Event>>>>,
}

fn element(tag: &str) -> Gc<Element> {
    Gc::new(Element {
        tag: tag.to_owned(),
        clicks: Cell::new(0),
        parent: RefCell::new(None),
        children: RefCell::new(Vec::new()),
        listeners: RefCell::new(Vec::new()),
    })
}

fn append(parent: &Gc<Element>, child: Gc<Element>) {
    *child.parent.borrow_mut() = Some(Gc::downgrade(parent));
    parent.children.borrow_mut().push(child);
}

/// Delivers `event` to `target`'s listeners, then to its ancestors'.
fn dispatch(target: &Gc<Element>, event: &Event) {
    let mut at = Some(target.clone());
    while let Some(el) = at {
        for l in el.listeners.borrow().iter() {
            l.call(event);
        }
        at = el.parent.borrow().as_ref().and_then(Weak::upgrade);
    }
}

fn main() {
    gc::disable(); // collect by hand below, to show what is freed
    let body = element("body");
    let button = element("button");
    append(&body, button.clone());

    // Each listener captures the element it is added to: a cycle.
    for el in [&body, &button] {
        let listener = Closure::new(el.clone(), |el: &Gc<Element>, ev: &Event| {
            if ev.kind == "click" {
                el.clicks.set(el.clicks.get() + 1);
            }
        });
        el.listeners.borrow_mut().push(Box::new(listener));
    }

    dispatch(&button, &Event { kind: "click" });
    assert_eq!((button.clicks.get(), body.clicks.get()), (1, 1));
    println!("{} and {} saw the click", button.tag, body.tag);

    let watch = (Gc::downgrade(&body), Gc::downgrade(&button));
    drop((body, button));
    // Reference counting alone cannot free them: each listener holds its
    // element. The collector sees the captures, and frees both.
    assert!(watch.0.upgrade().is_some());
    let freed = gc::collect();
    assert_eq!(freed, 2);
    assert!(watch.0.upgrade().is_none() && watch.1.upgrade().is_none());
    println!("collected {freed} elements with their listeners");
}
