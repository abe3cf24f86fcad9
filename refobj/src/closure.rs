//! `Closure`: a closure whose captured handles the collector sees.

use core::fmt;

use ouro_cyclegc::Visitor;

use crate::{Structural, Trace};

/// A closure the cycle collector can see into: its captured state is a
/// traced value (`env`), and its code is a plain `fn` pointer, which
/// captures nothing. A closure literal that captures nothing coerces to
/// one, so the usual way to make one is
/// `Closure::new(captures, |captures, arg| ...)`.
///
/// A Rust closure (`Box<dyn Fn(&Event)>`) is opaque: the handles it
/// captures cannot be traced, so a listener that captures the node it
/// hangs on makes a cycle no collector can free. With `Closure` the
/// captures are a field like any other: `Closure<Env, Arg, R>` implements
/// [`Trace`] through `Env` (structural when `Env`'s impl is), and
/// [`Callback<Arg, R>`], a dyn-compatible trait with `Trace` as a
/// supertrait, so closures with different captures can be kept together
/// as `Box<dyn Callback<Event>>` (add `+ Send + Sync` on
/// [`sync`](crate::sync)'s heap: a `Closure` is `Send`/`Sync` when its
/// `Env` is).
///
/// The argument is passed by reference (`call(&arg)`), for any lifetime;
/// pass several as a tuple or a struct.
///
/// ```
/// # extern crate ouro_refobj as ouro;
/// # use ouro_macros::Trace;
/// use ouro::{Callback, Closure, Gc, Trace, gc};
/// use std::cell::{Cell, RefCell};
///
/// #[derive(Trace)]
/// struct Button {
///     clicks: Cell<u32>,
///     on_click: RefCell<Vec<Box<dyn Callback<str>>>>,
/// }
///
/// let button = Gc::new(Button { clicks: Cell::new(0), on_click: RefCell::new(vec![]) });
/// // The listener captures the button it hangs on: a cycle.
/// let listener = Closure::new(button.clone(), |button: &Gc<Button>, who: &str| {
///     button.clicks.set(button.clicks.get() + 1);
///     println!("clicked by {who}");
/// });
/// button.on_click.borrow_mut().push(Box::new(listener));
///
/// for l in button.on_click.borrow().iter() {
///     l.call("me");
/// }
/// assert_eq!(button.clicks.get(), 1);
///
/// let watch = Gc::downgrade(&button);
/// drop(button);
/// gc::collect();
/// assert!(watch.upgrade().is_none()); // the cycle was collected
/// ```
///
/// A closure that captures a variable does not coerce to a `fn` pointer,
/// so it cannot hide a handle in a `Closure`:
///
/// ```compile_fail
/// # extern crate ouro_refobj as ouro;
/// use ouro::{Closure, Gc};
/// let hidden = Gc::new(1);
/// let c = Closure::new((), move |_: &(), _: &()| println!("{}", hidden));
/// ```
pub struct Closure<Env, Arg: ?Sized, R = ()> {
    env: Env,
    code: fn(&Env, &Arg) -> R,
}

impl<Env, Arg: ?Sized, R> Closure<Env, Arg, R> {
    /// A closure of `code` over `env`. `code` is a `fn` pointer: a named
    /// function, or a closure literal that captures nothing; what it needs
    /// goes in `env`.
    pub fn new(env: Env, code: fn(&Env, &Arg) -> R) -> Self {
        Closure { env, code }
    }

    /// Calls the code with the captured state and `arg`.
    ///
    /// ```
    /// # extern crate ouro_refobj as ouro;
    /// let add = ouro::Closure::new(40, |n: &i32, m: &i32| n + m);
    /// assert_eq!(add.call(&2), 42);
    /// ```
    #[inline]
    pub fn call(&self, arg: &Arg) -> R {
        (self.code)(&self.env, arg)
    }

    /// The captured state.
    pub fn env(&self) -> &Env {
        &self.env
    }

    /// The captured state, taken back.
    pub fn into_env(self) -> Env {
        self.env
    }
}

impl<Env: Clone, Arg: ?Sized, R> Clone for Closure<Env, Arg, R> {
    fn clone(&self) -> Self {
        Closure {
            env: self.env.clone(),
            code: self.code,
        }
    }
}

impl<Env: fmt::Debug, Arg: ?Sized, R> fmt::Debug for Closure<Env, Arg, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Closure")
            .field("env", &self.env)
            .field("code", &(self.code as *const ()))
            .finish()
    }
}

/// Traces the captured state; the code is a `fn` pointer, which holds
/// nothing.
impl<Env: Trace, Arg: ?Sized, R> Trace for Closure<Env, Arg, R> {
    #[inline]
    fn trace(&self, visitor: &mut Visitor<'_>) {
        if Env::needs_trace() {
            self.env.trace(visitor)
        }
    }
    #[inline(always)]
    fn needs_trace() -> bool {
        Env::needs_trace()
    }
    #[inline(always)]
    fn structural() -> Structural<Self> {
        Structural::YES.and(Env::structural())
    }
    #[inline(always)]
    fn has_finalizer() -> bool {
        false
    }
}

/// A traced callable: what [`Closure`] is, seen through a trait object
/// (`Box<dyn Callback<Event>>`, `Gc<dyn Callback<Event>>`), so that closures
/// with different captures share one type. `Trace` is a supertrait, so the
/// collector traces what a callback captures.
///
/// ```
/// # extern crate ouro_refobj as ouro;
/// use ouro::{Callback, Closure};
/// let double: Box<dyn Callback<u32, u32>> = Box::new(Closure::new(2, |k: &u32, n: &u32| k * n));
/// assert_eq!(double.call(&21), 42);
/// ```
pub trait Callback<Arg: ?Sized, R = ()>: Trace {
    /// Calls it with `arg`.
    fn call(&self, arg: &Arg) -> R;
}

impl<Env: Trace, Arg: ?Sized, R> Callback<Arg, R> for Closure<Env, Arg, R> {
    #[inline]
    fn call(&self, arg: &Arg) -> R {
        Closure::call(self, arg)
    }
}
