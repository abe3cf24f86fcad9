//! `SyncPool` as the `#[global_allocator]` of this test binary: ordinary
//! `Vec`/`Box`/`String` code on several threads, and a debug-build misuse
//! that must panic with its message (not deadlock re-entering the allocator).
#![cfg(not(loom))]

use std::alloc::{GlobalAlloc, Layout};
use std::collections::BTreeMap;

use ouro_pool::SyncPool;

#[global_allocator]
static ALLOC: SyncPool = SyncPool::new();

#[test]
fn collections_on_several_threads() {
    let rounds = if cfg!(miri) { 20 } else { 2_000 };
    let handles: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                let mut map = BTreeMap::new();
                for i in 0..rounds {
                    map.insert(i, format!("thread {t} item {i}"));
                    if i % 3 == 0 {
                        map.remove(&(i / 2));
                    }
                }
                // Hand the map to the main thread: freed over there.
                map
            })
        })
        .collect();
    let maps: Vec<BTreeMap<i32, String>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    for (t, map) in maps.iter().enumerate() {
        for (i, s) in map {
            assert_eq!(*s, format!("thread {t} item {i}"));
        }
    }
    drop(maps);
    let stats = ALLOC.stats();
    assert!(stats.arenas >= 1, "{stats}");
}

#[test]
#[cfg(debug_assertions)]
#[should_panic(expected = "double free")]
fn double_free_panics_with_a_message() {
    let layout = Layout::new::<[u64; 4]>();
    // SAFETY: deliberately wrong: the second `dealloc` is a double free,
    // which the debug check reports before touching the free list.
    unsafe {
        let keep = GlobalAlloc::alloc(&ALLOC, layout);
        let block = GlobalAlloc::alloc(&ALLOC, layout);
        GlobalAlloc::dealloc(&ALLOC, block, layout);
        GlobalAlloc::dealloc(&ALLOC, block, layout);
        GlobalAlloc::dealloc(&ALLOC, keep, layout);
    }
}
