//! CPython's trashcan, at full size: deep structures are dropped and
//! collected iteratively, on a thread with a 2 MiB stack.
#![cfg(not(miri))] // sized for native runs; the unit tests cover it under Miri

use std::cell::RefCell;

use ouro::{Gc, Trace, gc};

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
        for _ in 0..10_000_000 {
            head = Some(Gc::new(Link { next: head }));
        }
        drop(head);
        assert_eq!(gc::get_count()[0], 0);
    });
}

#[derive(Trace)]
struct Ring {
    next: RefCell<Option<Gc<Ring>>>,
}

#[test]
fn collecting_a_million_node_ring() {
    on_small_stack(|| {
        gc::disable();
        let first = Gc::new(Ring {
            next: RefCell::new(None),
        });
        let mut prev = first.clone();
        for _ in 1..1_000_000 {
            let x = Gc::new(Ring {
                next: RefCell::new(None),
            });
            *prev.next.borrow_mut() = Some(x.clone());
            prev = x;
        }
        *prev.next.borrow_mut() = Some(first.clone());
        drop((first, prev));
        assert_eq!(gc::collect(), 1_000_000);
        assert_eq!(gc::collect(), 0);
    });
}
