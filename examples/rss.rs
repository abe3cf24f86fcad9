//! Peak memory of 1M tracked nodes with a 24-byte payload.
//!
//! ```text
//! cargo run --release --example rss -- ouro [count]
//! cargo run --release --example rss -- rc [count]
//! ```
//!
//! Builds a chain of `count` (default 1,000,000) nodes, each holding a link
//! to the next and a `u64` (24 bytes of payload: the `RefCell` borrow flag,
//! the link and the word), with `ouro::Gc` or `std::rc::Rc`, then prints the
//! process's peak resident set (`VmHWM` from `/proc/self/status`) in MiB,
//! before building, after building, and the current RSS (`VmRSS`) once
//! everything was freed again.

use std::cell::RefCell;
use std::rc::Rc;

use ouro::{Gc, Trace, gc};

#[derive(Trace)]
struct Node {
    next: RefCell<Option<Gc<Node>>>,
    value: u64,
}

struct RcNode {
    next: RefCell<Option<Rc<RcNode>>>,
    value: u64,
}

const _: () = assert!(size_of::<Node>() == 24 && size_of::<RcNode>() == 24);

/// A field of `/proc/self/status` (in kB there) in MiB.
fn status_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kb: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"));
    kb / 1024.0
}

fn build_ouro(count: usize) -> u64 {
    let mut head = Gc::new(Node {
        next: RefCell::new(None),
        value: 0,
    });
    for i in 1..count as u64 {
        head = Gc::new(Node {
            next: RefCell::new(Some(head)),
            value: i,
        });
    }
    println!("peak after build:   {:7.1} MiB", status_mib("VmHWM"));
    let value = head.value;
    // Dropping a long chain does not recurse (ouro's trashcan).
    drop(head);
    assert_eq!(gc::collect(), 0);
    value
}

fn build_rc(count: usize) -> u64 {
    let mut head = Rc::new(RcNode {
        next: RefCell::new(None),
        value: 0,
    });
    for i in 1..count as u64 {
        head = Rc::new(RcNode {
            next: RefCell::new(Some(head)),
            value: i,
        });
    }
    println!("peak after build:   {:7.1} MiB", status_mib("VmHWM"));
    let value = head.value;
    // `Rc`'s own drop of a 1M chain would recurse 1M deep: unlink first.
    let mut cur = Some(head);
    while let Some(node) = cur {
        cur = node.next.borrow_mut().take();
    }
    value
}

fn main() {
    let mut args = std::env::args().skip(1);
    let library = args.next().unwrap_or_else(|| "ouro".to_owned());
    let count: usize = args
        .next()
        .map(|n| n.parse().expect("count must be a number"))
        .unwrap_or(1_000_000);
    // Automatic collections would only scan the chain (it all survives).
    gc::disable();
    println!("{library}: {count} nodes of a 24-byte payload");
    println!("peak before build:  {:7.1} MiB", status_mib("VmHWM"));
    let last = match library.as_str() {
        "ouro" => build_ouro(count),
        "rc" => build_rc(count),
        other => {
            eprintln!("usage: rss (ouro | rc) [count]; unknown library `{other}`");
            std::process::exit(2);
        }
    };
    assert_eq!(last, count as u64 - 1);
    println!("rss after freeing:  {:7.1} MiB", status_mib("VmRSS"));
}
