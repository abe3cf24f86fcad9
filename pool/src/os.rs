//! Arena memory from the OS.
//!
//! On Linux (x86-64 and AArch64) arenas are mapped and unmapped directly
//! with `mmap`/`munmap` (declared here; std already links the C library, so
//! no `libc` crate is needed), as CPython's obmalloc does: `System` (glibc's
//! `malloc`) raises its mmap threshold once a large block is freed and then
//! serves arenas from its heap, whose freed middle is never returned, so
//! peak RSS would not fall back. Elsewhere, under Miri, and in the
//! AddressSanitizer build (`--cfg ouro_sanitize`, set by `cargo xtask asan`),
//! arenas come from `std::alloc::System`: LeakSanitizer scans heap blocks
//! for pointers but not anonymous mappings, so with `mmap`ed arenas it would
//! neither see a leaked arena nor the heap memory that objects inside an
//! arena point to.

use core::ptr::NonNull;

use crate::size_class::ARENA_SIZE;

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64"),
    not(any(miri, ouro_sanitize))
))]
mod imp {
    use core::ffi::{c_int, c_long, c_void};
    use core::ptr::{self, NonNull};

    use crate::size_class::ARENA_SIZE;

    unsafe extern "C" {
        fn mmap(
            addr: *mut c_void,
            len: usize,
            prot: c_int,
            flags: c_int,
            fd: c_int,
            offset: c_long,
        ) -> *mut c_void;
        fn munmap(addr: *mut c_void, len: usize) -> c_int;
    }

    const PROT_READ: c_int = 1;
    const PROT_WRITE: c_int = 2;
    const MAP_PRIVATE: c_int = 2;
    const MAP_ANONYMOUS: c_int = 0x20;

    /// Maps `ARENA_SIZE` bytes aligned to `ARENA_SIZE`: maps twice that and
    /// unmaps the unaligned head and the tail.
    pub(super) fn alloc() -> Option<NonNull<u8>> {
        let len = 2 * ARENA_SIZE;
        // SAFETY: an anonymous private mapping at an address of the kernel's
        // choice touches no existing memory.
        let map = unsafe {
            mmap(
                ptr::null_mut(),
                len,
                PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if map.addr() == usize::MAX || map.is_null() {
            return None;
        }
        let map = map.cast::<u8>();
        let head = map.addr().next_multiple_of(ARENA_SIZE) - map.addr();
        let tail = len - head - ARENA_SIZE;
        // SAFETY: both ranges lie inside the mapping just made, are page
        // aligned (the mapping and `ARENA_SIZE` are), and nothing uses them.
        unsafe {
            if head > 0 {
                munmap(map.cast(), head);
            }
            if tail > 0 {
                munmap(map.add(head + ARENA_SIZE).cast(), tail);
            }
            NonNull::new(map.add(head))
        }
    }

    /// # Safety
    /// `base` came from `alloc` and nothing uses the arena any more.
    pub(super) unsafe fn free(base: NonNull<u8>) {
        // SAFETY: by the caller, `base..base + ARENA_SIZE` is our mapping.
        unsafe { munmap(base.as_ptr().cast(), ARENA_SIZE) };
    }
}

#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64"),
    not(any(miri, ouro_sanitize))
)))]
mod imp {
    use core::alloc::Layout;
    use core::ptr::NonNull;
    use std::alloc::{GlobalAlloc, System};

    use crate::size_class::ARENA_SIZE;

    const LAYOUT: Layout = match Layout::from_size_align(ARENA_SIZE, ARENA_SIZE) {
        Ok(layout) => layout,
        Err(_) => panic!("bad arena layout"),
    };

    pub(super) fn alloc() -> Option<NonNull<u8>> {
        // SAFETY: `LAYOUT` has a nonzero size.
        NonNull::new(unsafe { System.alloc(LAYOUT) })
    }

    /// # Safety
    /// `base` came from `alloc` and nothing uses the arena any more.
    pub(super) unsafe fn free(base: NonNull<u8>) {
        // SAFETY: by the caller, allocated by `System` with `LAYOUT`.
        unsafe { System.dealloc(base.as_ptr(), LAYOUT) };
    }
}

/// `ARENA_SIZE` bytes aligned to `ARENA_SIZE`, or `None` when out of memory.
pub(crate) fn alloc_arena() -> Option<NonNull<u8>> {
    let base = imp::alloc()?;
    debug_assert_eq!(base.as_ptr().addr() % ARENA_SIZE, 0);
    Some(base)
}

/// Returns an arena to the OS.
///
/// # Safety
/// `base` came from `alloc_arena` and nothing uses the arena any more.
pub(crate) unsafe fn free_arena(base: NonNull<u8>) {
    // SAFETY: forwarded from the caller.
    unsafe { imp::free(base) }
}
