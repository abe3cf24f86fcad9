//! `Trace` for std types.
//!
//! Values stored inline (fields, `Option`, tuples, arrays, `RefCell`) are
//! traced in place. Containers that own separate memory (`Box`, `Vec`,
//! `VecDeque`, the maps and sets) first claim themselves in the visitor and
//! then trace their elements as owned memory (empty ones are skipped: they
//! hold no edge); see `ouro_cyclegc::Visitor` for
//! why edges in memory the visitor cannot prove owned are ignored.
//!
//! Every impl that traces elements is structural exactly when they are
//! (`Structural::YES.and(T::structural())`): `#[derive(Trace)]` relies on it
//! for the containers of `crate::__private::types`.

use core::cell::{Cell, OnceCell, RefCell};
use core::marker::PhantomData;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::rc::Rc;
use std::sync::{Arc, Mutex, RwLock, TryLockError};

use ouro_cyclegc::Visitor;

use crate::{Structural, Trace};

macro_rules! leaf {
    ($($t:ty),* $(,)?) => {$(
        impl Trace for $t {
            #[inline(always)]
            fn trace(&self, _: &mut Visitor<'_>) {}
            #[inline(always)]
            fn needs_trace() -> bool {
                false
            }
            #[inline(always)]
            fn structural() -> Structural<Self> {
                Structural::YES
            }
            #[inline(always)]
            fn has_finalizer() -> bool {
                false
            }
        }
    )*};
}

/// Unsized leaves: nothing to ask statically (only sized types answer).
macro_rules! unsized_leaf {
    ($($t:ty),* $(,)?) => {$(
        impl Trace for $t {
            #[inline(always)]
            fn trace(&self, _: &mut Visitor<'_>) {}
        }
    )*};
}

leaf!(
    (),
    bool,
    char,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64,
    String,
    &'static str,
    core::num::NonZeroU8,
    core::num::NonZeroU16,
    core::num::NonZeroU32,
    core::num::NonZeroU64,
    core::num::NonZeroUsize,
    core::num::NonZeroI32,
    core::num::NonZeroI64,
    core::num::NonZeroIsize,
    core::sync::atomic::AtomicBool,
    core::sync::atomic::AtomicUsize,
    core::sync::atomic::AtomicIsize,
    core::sync::atomic::AtomicU32,
    core::sync::atomic::AtomicU64,
    core::sync::atomic::AtomicI32,
    core::sync::atomic::AtomicI64,
    core::time::Duration,
    std::time::Instant,
    std::time::SystemTime,
    std::path::PathBuf,
    std::ffi::OsString,
    core::cmp::Ordering,
    core::any::TypeId,
);

unsized_leaf!(str);

impl<T: ?Sized> Trace for PhantomData<T> {
    #[inline(always)]
    fn needs_trace() -> bool {
        false
    }
    #[inline(always)]
    fn structural() -> Structural<Self> {
        Structural::YES
    }
    #[inline(always)]
    fn has_finalizer() -> bool {
        false
    }
    fn trace(&self, _: &mut Visitor<'_>) {}
}

/// `Rc` and `Arc` share their value with owners the collector cannot see, so
/// they are opaque: handles inside them act as roots (cycles through them
/// leak, as with plain `Rc`).
impl<T: ?Sized> Trace for Rc<T> {
    #[inline(always)]
    fn needs_trace() -> bool {
        false
    }
    #[inline(always)]
    fn structural() -> Structural<Self> {
        Structural::YES
    }
    #[inline(always)]
    fn has_finalizer() -> bool {
        false
    }
    fn trace(&self, _: &mut Visitor<'_>) {}
}

/// See the `Rc` impl.
impl<T: ?Sized> Trace for Arc<T> {
    #[inline(always)]
    fn needs_trace() -> bool {
        false
    }
    #[inline(always)]
    fn structural() -> Structural<Self> {
        Structural::YES
    }
    #[inline(always)]
    fn has_finalizer() -> bool {
        false
    }
    fn trace(&self, _: &mut Visitor<'_>) {}
}

/// `Cell` holds only `Copy` data here, which cannot be a handle.
impl<T: Copy> Trace for Cell<T> {
    #[inline(always)]
    fn needs_trace() -> bool {
        false
    }
    #[inline(always)]
    fn structural() -> Structural<Self> {
        Structural::YES
    }
    #[inline(always)]
    fn has_finalizer() -> bool {
        false
    }
    fn trace(&self, _: &mut Visitor<'_>) {}
}

impl<T: Trace> Trace for Option<T> {
    #[inline(always)]
    fn needs_trace() -> bool {
        T::needs_trace()
    }
    #[inline(always)]
    fn structural() -> Structural<Self> {
        Structural::YES.and(T::structural())
    }
    #[inline(always)]
    fn has_finalizer() -> bool {
        false
    }
    #[inline]
    fn trace(&self, v: &mut Visitor<'_>) {
        if let Some(x) = self {
            x.trace(v)
        }
    }
}

impl<T: Trace, E: Trace> Trace for Result<T, E> {
    #[inline(always)]
    fn needs_trace() -> bool {
        T::needs_trace() || E::needs_trace()
    }
    #[inline(always)]
    fn structural() -> Structural<Self> {
        Structural::YES.and(T::structural()).and(E::structural())
    }
    #[inline(always)]
    fn has_finalizer() -> bool {
        false
    }
    fn trace(&self, v: &mut Visitor<'_>) {
        match self {
            Ok(x) => x.trace(v),
            Err(e) => e.trace(v),
        }
    }
}

impl<T: Trace, const N: usize> Trace for [T; N] {
    #[inline(always)]
    fn needs_trace() -> bool {
        T::needs_trace()
    }
    #[inline(always)]
    fn structural() -> Structural<Self> {
        Structural::YES.and(T::structural())
    }
    #[inline(always)]
    fn has_finalizer() -> bool {
        false
    }
    #[inline]
    fn trace(&self, v: &mut Visitor<'_>) {
        if T::needs_trace() {
            for x in self {
                x.trace(v)
            }
        }
    }
}

/// Unsized: its answers are asked through a value (see `Box`'s impl).
impl<T: Trace> Trace for [T] {
    #[inline]
    fn trace(&self, v: &mut Visitor<'_>) {
        if T::needs_trace() {
            for x in self {
                x.trace(v)
            }
        }
    }
}

/// A value borrowed mutably while a collection runs cannot be read: it is
/// skipped, so whatever it holds counts as referenced from outside (it stays
/// alive).
impl<T: Trace> Trace for RefCell<T> {
    #[inline(always)]
    fn needs_trace() -> bool {
        T::needs_trace()
    }
    #[inline(always)]
    fn structural() -> Structural<Self> {
        Structural::YES.and(T::structural())
    }
    #[inline(always)]
    fn has_finalizer() -> bool {
        false
    }
    #[inline]
    fn trace(&self, v: &mut Visitor<'_>) {
        if T::needs_trace()
            && let Ok(x) = self.try_borrow()
        {
            x.trace(v)
        }
    }
}

impl<T: Trace> Trace for OnceCell<T> {
    #[inline(always)]
    fn needs_trace() -> bool {
        T::needs_trace()
    }
    #[inline(always)]
    fn structural() -> Structural<Self> {
        Structural::YES.and(T::structural())
    }
    #[inline(always)]
    fn has_finalizer() -> bool {
        false
    }
    fn trace(&self, v: &mut Visitor<'_>) {
        if let Some(x) = self.get() {
            x.trace(v)
        }
    }
}

/// A locked mutex is skipped like a mutably borrowed `RefCell`; a poisoned
/// one is traced.
impl<T: Trace> Trace for Mutex<T> {
    #[inline(always)]
    fn needs_trace() -> bool {
        T::needs_trace()
    }
    #[inline(always)]
    fn structural() -> Structural<Self> {
        Structural::YES.and(T::structural())
    }
    #[inline(always)]
    fn has_finalizer() -> bool {
        false
    }
    fn trace(&self, v: &mut Visitor<'_>) {
        if T::needs_trace() {
            // The guard goes back to the visitor: the concurrent collector
            // keeps it while it verifies (see `ouro_cyclegc::sync`).
            let guard = match self.try_lock() {
                Ok(x) => x,
                Err(TryLockError::Poisoned(p)) => p.into_inner(),
                Err(TryLockError::WouldBlock) => return v.lock_busy(),
            };
            v.trace_mutex_guard(guard, |x, v| x.trace(v));
        }
    }
}

/// Write-locked: skipped, like a locked `Mutex`.
impl<T: Trace> Trace for RwLock<T> {
    #[inline(always)]
    fn needs_trace() -> bool {
        T::needs_trace()
    }
    #[inline(always)]
    fn structural() -> Structural<Self> {
        Structural::YES.and(T::structural())
    }
    #[inline(always)]
    fn has_finalizer() -> bool {
        false
    }
    fn trace(&self, v: &mut Visitor<'_>) {
        if T::needs_trace() {
            let guard = match self.try_read() {
                Ok(x) => x,
                Err(TryLockError::Poisoned(p)) => p.into_inner(),
                Err(TryLockError::WouldBlock) => return v.lock_busy(),
            };
            v.trace_read_guard(guard, |x, v| x.trace(v));
        }
    }
}

/// Traces `elems`, which live in memory owned by `container`.
///
/// # Safety
/// `elems` is memory uniquely owned by `container` (its buffer, pointee or
/// entry) for the duration of the call.
#[inline]
unsafe fn trace_in<T: ?Sized + Trace>(v: &mut Visitor<'_>, elems: &T) {
    // SAFETY: forwarded contract; the container was claimed by the caller.
    unsafe { v.trace_owned(elems, |e, v| e.trace(v)) }
}

/// `T` may be unsized (a trait object, `str`, a slice), so what its type
/// says is asked through the value, from its concrete type (for a trait
/// object, through its vtable): the box counts as needing tracing and as
/// structural, and its `trace` leaves out a value whose type is not
/// structural where the collector must not run its `trace` (see
/// `Visitor::enter_unstructural`). For a sized `T` the answers are
/// constants and the checks fold away.
impl<T: Trace + ?Sized> Trace for Box<T> {
    #[inline(always)]
    fn structural() -> Structural<Self> {
        Structural::YES
    }
    #[inline(always)]
    fn has_finalizer() -> bool {
        false
    }
    #[inline]
    fn trace(&self, v: &mut Visitor<'_>) {
        let value: &T = self;
        let info = <T as crate::__private::TraceDyn>::__ouro_info(value);
        if info.needs_trace
            && v.claim_container(self)
            && (info.structural || v.enter_unstructural(info.type_name))
        {
            // SAFETY: a `Box` uniquely owns its pointee.
            unsafe { trace_in(v, value) }
        }
    }
}

impl<T: Trace> Trace for Vec<T> {
    #[inline(always)]
    fn needs_trace() -> bool {
        T::needs_trace()
    }
    #[inline(always)]
    fn structural() -> Structural<Self> {
        Structural::YES.and(T::structural())
    }
    #[inline(always)]
    fn has_finalizer() -> bool {
        false
    }
    #[inline]
    fn trace(&self, v: &mut Visitor<'_>) {
        if T::needs_trace() && !self.is_empty() && v.claim_container(self) {
            // SAFETY: a `Vec` uniquely owns its buffer.
            unsafe { trace_in(v, self.as_slice()) }
        }
    }
}

impl<T: Trace> Trace for VecDeque<T> {
    #[inline(always)]
    fn needs_trace() -> bool {
        T::needs_trace()
    }
    #[inline(always)]
    fn structural() -> Structural<Self> {
        Structural::YES.and(T::structural())
    }
    #[inline(always)]
    fn has_finalizer() -> bool {
        false
    }
    fn trace(&self, v: &mut Visitor<'_>) {
        if T::needs_trace() && !self.is_empty() && v.claim_container(self) {
            let (a, b) = self.as_slices();
            // SAFETY: a `VecDeque` uniquely owns its buffer; the two slices
            // are disjoint parts of it.
            unsafe {
                trace_in(v, a);
                trace_in(v, b);
            }
        }
    }
}

impl<K: Trace, V: Trace, S> Trace for HashMap<K, V, S> {
    #[inline(always)]
    fn needs_trace() -> bool {
        K::needs_trace() || V::needs_trace()
    }
    #[inline(always)]
    fn structural() -> Structural<Self> {
        Structural::YES.and(K::structural()).and(V::structural())
    }
    #[inline(always)]
    fn has_finalizer() -> bool {
        false
    }
    fn trace(&self, v: &mut Visitor<'_>) {
        if Self::needs_trace() && !self.is_empty() && v.claim_container(self) {
            for (k, x) in self {
                // SAFETY: a `HashMap` uniquely owns its entries.
                unsafe {
                    trace_in(v, k);
                    trace_in(v, x);
                }
            }
        }
    }
}

impl<T: Trace, S> Trace for HashSet<T, S> {
    #[inline(always)]
    fn needs_trace() -> bool {
        T::needs_trace()
    }
    #[inline(always)]
    fn structural() -> Structural<Self> {
        Structural::YES.and(T::structural())
    }
    #[inline(always)]
    fn has_finalizer() -> bool {
        false
    }
    fn trace(&self, v: &mut Visitor<'_>) {
        if T::needs_trace() && !self.is_empty() && v.claim_container(self) {
            for x in self {
                // SAFETY: a `HashSet` uniquely owns its entries.
                unsafe { trace_in(v, x) }
            }
        }
    }
}

impl<K: Trace, V: Trace> Trace for BTreeMap<K, V> {
    #[inline(always)]
    fn needs_trace() -> bool {
        K::needs_trace() || V::needs_trace()
    }
    #[inline(always)]
    fn structural() -> Structural<Self> {
        Structural::YES.and(K::structural()).and(V::structural())
    }
    #[inline(always)]
    fn has_finalizer() -> bool {
        false
    }
    fn trace(&self, v: &mut Visitor<'_>) {
        if Self::needs_trace() && !self.is_empty() && v.claim_container(self) {
            for (k, x) in self {
                // SAFETY: a `BTreeMap` uniquely owns its entries.
                unsafe {
                    trace_in(v, k);
                    trace_in(v, x);
                }
            }
        }
    }
}

impl<T: Trace> Trace for BTreeSet<T> {
    #[inline(always)]
    fn needs_trace() -> bool {
        T::needs_trace()
    }
    #[inline(always)]
    fn structural() -> Structural<Self> {
        Structural::YES.and(T::structural())
    }
    #[inline(always)]
    fn has_finalizer() -> bool {
        false
    }
    fn trace(&self, v: &mut Visitor<'_>) {
        if T::needs_trace() && !self.is_empty() && v.claim_container(self) {
            for x in self {
                // SAFETY: a `BTreeSet` uniquely owns its entries.
                unsafe { trace_in(v, x) }
            }
        }
    }
}

macro_rules! tuple {
    ($($n:tt $t:ident),+) => {
        impl<$($t: Trace),+> Trace for ($($t,)+) {
            #[inline(always)]
            fn needs_trace() -> bool {
                $($t::needs_trace())||+
            }
            #[inline(always)]
            fn structural() -> Structural<Self> {
                Structural::YES $(.and($t::structural()))+
            }
            #[inline(always)]
            fn has_finalizer() -> bool {
                false
            }
            fn trace(&self, v: &mut Visitor<'_>) {
                $(self.$n.trace(v);)+
            }
        }
    };
}

tuple!(0 A);
tuple!(0 A, 1 B);
tuple!(0 A, 1 B, 2 C);
tuple!(0 A, 1 B, 2 C, 3 D);
tuple!(0 A, 1 B, 2 C, 3 D, 4 E);
tuple!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F);
tuple!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G);
tuple!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H);
tuple!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H, 8 I);
tuple!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H, 8 I, 9 J);
tuple!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H, 8 I, 9 J, 10 K);
tuple!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H, 8 I, 9 J, 10 K, 11 L);
