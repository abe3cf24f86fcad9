//! CPython's trashcan: deep structures are dropped and collected
//! iteratively, on a thread with a 2 MiB stack. Full size natively (a
//! recursive drop would overflow the stack); a few hundred nodes under Miri,
//! which checks the iterative paths' memory accesses, not their depth.

use std::cell::RefCell;

use ouro::{Gc, Trace, Visitor, gc};

/// The list's length; the ring is a tenth of it.
const LIST: usize = if cfg!(miri) { 500 } else { 10_000_000 };

fn on_small_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

#[derive(Trace)]
struct Link {
    next: Option<Gc<Link>>,
}

#[test]
fn dropping_a_ten_million_node_list() {
    on_small_stack(|| {
        gc::disable();
        let mut head = None;
        for _ in 0..LIST {
            head = Some(Gc::new(Link { next: head }));
        }
        drop(head);
        assert_eq!(gc::get_count()[0], 0);
    });
}

struct Ring {
    next: RefCell<Option<Gc<Ring>>>,
}

impl Trace for Ring {
    fn trace(&self, v: &mut Visitor<'_>) {
        self.next.trace(v);
    }
}

#[test]
fn collecting_a_million_node_ring() {
    on_small_stack(|| {
        gc::disable();
        let first = Gc::new(Ring {
            next: RefCell::new(None),
        });
        let mut prev = first.clone();
        for _ in 1..LIST / 10 {
            let x = Gc::new(Ring {
                next: RefCell::new(None),
            });
            *prev.next.borrow_mut() = Some(x.clone());
            prev = x;
        }
        *prev.next.borrow_mut() = Some(first.clone());
        drop((first, prev));
        assert_eq!(gc::collect(), LIST / 10);
        assert_eq!(gc::collect(), 0);
    });
}
