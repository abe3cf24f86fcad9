//! `FreeList<T>`: CPython's per-type free lists, typed.

use core::fmt;
use core::mem::MaybeUninit;

/// A typed free list: keeps the allocations of dropped `Box<T>`s for reuse
/// by the next `Box<T>`, like CPython's free lists for floats, tuples and
/// frames.
///
/// [`free`](FreeList::free) drops the value and keeps its memory (up to the
/// capacity; beyond it the memory is released); [`alloc`](FreeList::alloc)
/// moves a value into a kept allocation when there is one and only asks the
/// global allocator otherwise. The kept allocations are released when the
/// list is dropped or [`clear`](FreeList::clear)ed.
///
/// # Examples
///
/// ```
/// # mod ouro { pub mod pool { pub use ::ouro_pool::*; } }
/// use ouro::pool::FreeList;
///
/// let mut floats = FreeList::<f64>::new(100);
/// let a = floats.alloc(1.5);
/// let address = &*a as *const f64;
/// floats.free(a);
/// assert_eq!(floats.len(), 1);
/// let b = floats.alloc(2.5); // reuses the allocation of `a`
/// assert_eq!(&*b as *const f64, address);
/// assert_eq!(*b, 2.5);
/// ```
pub struct FreeList<T> {
    slots: Vec<Box<MaybeUninit<T>>>,
    capacity: usize,
}

impl<T> FreeList<T> {
    /// An empty free list that keeps at most `capacity` allocations.
    pub const fn new(capacity: usize) -> Self {
        Self {
            slots: Vec::new(),
            capacity,
        }
    }

    /// Boxes `value`, reusing a kept allocation if there is one.
    #[inline]
    pub fn alloc(&mut self, value: T) -> Box<T> {
        match self.slots.pop() {
            Some(slot) => {
                let raw = Box::into_raw(slot).cast::<T>();
                // SAFETY: `raw` is a live `Box` allocation for one `T` (it was
                // a `Box<MaybeUninit<T>>`, same layout); writing initialises
                // it, so it may become a `Box<T>` again.
                unsafe {
                    raw.write(value);
                    Box::from_raw(raw)
                }
            }
            None => Box::new(value),
        }
    }

    /// Drops the value in `boxed` and keeps its allocation, unless the list
    /// is at capacity (then the memory is released as usual).
    #[inline]
    pub fn free(&mut self, boxed: Box<T>) {
        if self.slots.len() >= self.capacity {
            drop(boxed);
            return;
        }
        let raw = Box::into_raw(boxed);
        // SAFETY: `raw` owns an initialised `T`; after dropping it in place
        // the allocation holds an uninitialised `T`-sized slot, which is a
        // valid `Box<MaybeUninit<T>>` (same layout). If `drop` panics, the
        // allocation leaks, which is safe.
        let slot = unsafe {
            raw.drop_in_place();
            Box::from_raw(raw.cast::<MaybeUninit<T>>())
        };
        self.slots.push(slot);
    }

    /// Number of kept allocations.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no allocation is kept.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The most allocations kept.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Releases every kept allocation.
    pub fn clear(&mut self) {
        self.slots.clear();
    }
}

impl<T> Default for FreeList<T> {
    /// A free list keeping up to 100 allocations (the size of CPython's float free list).
    fn default() -> Self {
        Self::new(100)
    }
}

impl<T> fmt::Debug for FreeList<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FreeList")
            .field("len", &self.len())
            .field("capacity", &self.capacity)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[test]
    fn reuses_and_respects_capacity() {
        let mut list = FreeList::new(2);
        let boxes: Vec<Box<[u64; 3]>> = (0..3).map(|i| list.alloc([i; 3])).collect();
        let addresses: Vec<*const [u64; 3]> = boxes.iter().map(|b| &**b as *const _).collect();
        for b in boxes {
            list.free(b);
        }
        assert_eq!(list.len(), 2);
        let again = list.alloc([9; 3]);
        assert!(addresses.contains(&(&*again as *const _)));
        assert_eq!(*again, [9; 3]);
        list.clear();
        assert!(list.is_empty());
    }

    #[test]
    fn values_are_dropped_exactly_once() {
        let counter = Rc::new(());
        let mut list = FreeList::new(10);
        let a = list.alloc(Rc::clone(&counter));
        let b = list.alloc(Rc::clone(&counter));
        assert_eq!(Rc::strong_count(&counter), 3);
        list.free(a);
        assert_eq!(Rc::strong_count(&counter), 2);
        let c = list.alloc(Rc::clone(&counter));
        drop((b, c));
        drop(list);
        assert_eq!(Rc::strong_count(&counter), 1);
    }

    #[test]
    fn zero_sized_values() {
        let mut list = FreeList::new(4);
        let a = list.alloc(());
        list.free(a);
        let _b = list.alloc(());
    }
}
