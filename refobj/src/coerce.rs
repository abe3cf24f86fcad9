//! `coerce_gc!`: a handle to a trait object (or a slice) from a handle to
//! its concrete type, without a copy.

/// Turns a [`Gc<T>`](crate::Gc) into a `Gc<U>` where `T` coerces to `U`
/// (`dyn Trait` for a `T` that implements `Trait`, `[E]` for `T = [E; N]`),
/// sharing the object: what `Rc<T> as Rc<dyn Trait>` does with std's
/// unsizing coercion, which is not stable for user types. The handle is
/// moved in (the strong count does not change); say which `U` with the type
/// of the result.
///
/// ```
/// # extern crate ouro_refobj as ouro;
/// # use ouro_macros::Trace;
/// use ouro::{Gc, Trace, coerce_gc};
/// use std::fmt::Debug;
///
/// trait Shape: Trace + Debug {
///     fn area(&self) -> f64;
/// }
/// #[derive(Trace, Debug)]
/// struct Square(f64);
/// impl Shape for Square {
///     fn area(&self) -> f64 { self.0 * self.0 }
/// }
///
/// let square = Gc::new(Square(3.0));
/// let shape: Gc<dyn Shape> = coerce_gc!(square.clone());
/// assert_eq!(shape.area(), 9.0);
/// assert_eq!(Gc::strong_count(&square), 2);
///
/// let numbers: Gc<[u8]> = coerce_gc!(Gc::new([1u8, 2, 3]));
/// assert_eq!(&*numbers, &[1, 2, 3]);
/// ```
///
/// Only an unsizing is accepted: a handle to a slice or `str` cannot be
/// reinterpreted (a thin pointer only becomes a wide one by unsizing, so
/// that does not compile), and a change between two sized types panics:
///
/// ```compile_fail
/// # extern crate ouro_refobj as ouro;
/// use ouro::{Gc, coerce_gc};
/// let s: Gc<str> = coerce_gc!(Gc::new([b'a'; 3]));
/// ```
///
/// ```should_panic
/// # extern crate ouro_refobj as ouro;
/// use ouro::{Gc, coerce_gc};
/// let n: Gc<u64> = coerce_gc!(Gc::new(1u32)); // panics: not an unsizing
/// ```
#[macro_export]
macro_rules! coerce_gc {
    ($gc:expr $(,)?) => {
        match $gc {
            gc => {
                // SAFETY: the closure is `|p| p as _`, as `__ouro_coerce`
                // requires (it checks the one cast that is not an unsizing).
                unsafe { $crate::Gc::__ouro_coerce(gc, |p| p as _) }
            }
        }
    };
}

/// [`coerce_gc!`](crate::coerce_gc) for the process-wide heap:
/// `sync::Gc<T>` to `sync::Gc<U>`.
///
/// ```
/// # extern crate ouro_refobj as ouro;
/// # use ouro_macros::Trace;
/// use ouro::Trace;
/// use ouro::sync::{Gc, coerce_gc};
///
/// trait Shape: Trace + Send + Sync {
///     fn area(&self) -> f64;
/// }
/// #[derive(Trace)]
/// struct Square(f64);
/// impl Shape for Square {
///     fn area(&self) -> f64 { self.0 * self.0 }
/// }
///
/// let shape: Gc<dyn Shape> = coerce_gc!(Gc::new(Square(2.0)));
/// assert_eq!(std::thread::spawn(move || shape.area()).join().unwrap(), 4.0);
/// ```
#[macro_export]
#[doc(hidden)]
macro_rules! __coerce_sync_gc {
    ($gc:expr $(,)?) => {
        match $gc {
            gc => {
                // SAFETY: as in `coerce_gc!`.
                unsafe { $crate::sync::Gc::__ouro_coerce(gc, |p| p as _) }
            }
        }
    };
}
