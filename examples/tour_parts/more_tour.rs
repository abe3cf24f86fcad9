//! The tour's deep copy and thread-safe parts.

use std::cell::RefCell;
use std::sync::Mutex;

use ouro::{DeepCopy, Gc, Trace, deep_copy, gc, sync};

/// A cell of a ring, copyable as a graph.
#[derive(Trace, DeepCopy)]
struct Cell {
    value: RefCell<u32>,
    next: RefCell<Option<Gc<Cell>>>,
}

/// Copies a ring with `deep_copy`: the copy is a ring of its own, with
/// independent values. Returns a line for the summary.
pub(crate) fn deep_copy_tour() -> String {
    println!("\n== ouro::deep_copy — Python's copy.deepcopy for graphs ==");
    const N: usize = 5;
    let ring: Vec<Gc<Cell>> = (0..N as u32)
        .map(|i| {
            Gc::new(Cell {
                value: RefCell::new(i),
                next: RefCell::new(None),
            })
        })
        .collect();
    for i in 0..N {
        *ring[i].next.borrow_mut() = Some(ring[(i + 1) % N].clone());
    }
    let copy = deep_copy(&ring[0]);
    *copy.value.borrow_mut() = 100;
    let mut at = copy.clone();
    let mut steps = 0;
    loop {
        let next = at.next.borrow().clone().expect("a ring");
        at = next;
        steps += 1;
        if Gc::ptr_eq(&at, &copy) {
            break;
        }
    }
    println!(
        "  copied a ring of {N} cells: the copy is a ring of {steps}, sharing nothing \
         (original's first value {}, copy's {})",
        ring[0].value.borrow(),
        copy.value.borrow()
    );
    drop((ring, copy, at));
    let freed = gc::collect();
    println!("  both rings are cycles: gc::collect() freed {freed} cells");
    format!("a {N}-cell ring copied into a ring of {steps} ({freed} cells freed afterwards)")
}

/// A peer of the thread-safe part.
#[derive(Trace)]
struct Peer {
    friends: Mutex<Vec<sync::Gc<Peer>>>,
}

/// Builds cycles whose halves are made on different threads and collects
/// them from the main thread. Returns a line for the summary.
pub(crate) fn sync_tour() -> String {
    println!("\n== ouro::sync — Arc-like handles and a concurrent collector ==");
    const PAIRS: usize = 1_000;
    // Only the explicit collection below, so the numbers are the same
    // every run.
    sync::gc::disable();
    let new_peer = || {
        sync::Gc::new(Peer {
            friends: Mutex::new(Vec::new()),
        })
    };
    let made_there: Vec<sync::Gc<Peer>> = std::thread::spawn(move || {
        (0..PAIRS)
            .map(|_| {
                sync::Gc::new(Peer {
                    friends: Mutex::new(Vec::new()),
                })
            })
            .collect()
    })
    .join()
    .expect("the spawned thread");
    let watch = sync::Gc::downgrade(&made_there[0]);
    for there in made_there {
        let here = new_peer();
        here.friends.lock().unwrap().push(there.clone());
        there.friends.lock().unwrap().push(here);
    }
    println!(
        "  made {PAIRS} two-peer cycles, one peer of each on another thread, and dropped them"
    );
    let found = sync::gc::collect();
    sync::gc::wait_for_drops();
    let gone = if watch.upgrade().is_none() {
        "no longer upgrades"
    } else {
        "still upgrades"
    };
    println!(
        "  sync::gc::collect() found {found} unreachable objects; a weak handle to one {gone}"
    );
    sync::gc::enable();
    format!("{PAIRS} cross-thread cycles made and dropped; the collector freed all {found} peers")
}
