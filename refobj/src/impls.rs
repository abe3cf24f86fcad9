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
//! (`Structural::YES.and(T::STRUCTURAL)`): `#[derive(Trace)]` relies on it
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
            const NEEDS_TRACE: bool = false;
            const HAS_FINALIZER: bool = false;
            const STRUCTURAL: Structural<Self> = Structural::YES;
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
    str,
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
    std::path::Path,
    std::ffi::OsString,
    std::ffi::OsStr,
    core::cmp::Ordering,
    core::any::TypeId,
);

impl<T: ?Sized> Trace for PhantomData<T> {
    const NEEDS_TRACE: bool = false;
    const STRUCTURAL: Structural<Self> = Structural::YES;
    const HAS_FINALIZER: bool = false;
    fn trace(&self, _: &mut Visitor<'_>) {}
}

/// `Rc` and `Arc` share their value with owners the collector cannot see, so
/// they are opaque: handles inside them act as roots (cycles through them
/// leak, as with plain `Rc`).
impl<T: ?Sized> Trace for Rc<T> {
    const NEEDS_TRACE: bool = false;
    const STRUCTURAL: Structural<Self> = Structural::YES;
    const HAS_FINALIZER: bool = false;
    fn trace(&self, _: &mut Visitor<'_>) {}
}

/// See the `Rc` impl.
impl<T: ?Sized> Trace for Arc<T> {
    const NEEDS_TRACE: bool = false;
    const STRUCTURAL: Structural<Self> = Structural::YES;
    const HAS_FINALIZER: bool = false;
    fn trace(&self, _: &mut Visitor<'_>) {}
}

/// `Cell` holds only `Copy` data here, which cannot be a handle.
impl<T: Copy> Trace for Cell<T> {
    const NEEDS_TRACE: bool = false;
    const STRUCTURAL: Structural<Self> = Structural::YES;
    const HAS_FINALIZER: bool = false;
    fn trace(&self, _: &mut Visitor<'_>) {}
}

impl<T: Trace> Trace for Option<T> {
    const NEEDS_TRACE: bool = T::NEEDS_TRACE;
    const STRUCTURAL: Structural<Self> = Structural::YES.and(T::STRUCTURAL);
    const HAS_FINALIZER: bool = false;
    #[inline]
    fn trace(&self, v: &mut Visitor<'_>) {
        if let Some(x) = self {
            x.trace(v)
        }
    }
}

impl<T: Trace, E: Trace> Trace for Result<T, E> {
    const NEEDS_TRACE: bool = T::NEEDS_TRACE || E::NEEDS_TRACE;
    const STRUCTURAL: Structural<Self> = Structural::YES.and(T::STRUCTURAL).and(E::STRUCTURAL);
    const HAS_FINALIZER: bool = false;
    fn trace(&self, v: &mut Visitor<'_>) {
        match self {
            Ok(x) => x.trace(v),
            Err(e) => e.trace(v),
        }
    }
}

impl<T: Trace, const N: usize> Trace for [T; N] {
    const NEEDS_TRACE: bool = T::NEEDS_TRACE;
    const STRUCTURAL: Structural<Self> = Structural::YES.and(T::STRUCTURAL);
    const HAS_FINALIZER: bool = false;
    fn trace(&self, v: &mut Visitor<'_>) {
        if T::NEEDS_TRACE {
            for x in self {
                x.trace(v)
            }
        }
    }
}

impl<T: Trace> Trace for [T] {
    const NEEDS_TRACE: bool = T::NEEDS_TRACE;
    const STRUCTURAL: Structural<Self> = Structural::YES.and(T::STRUCTURAL);
    const HAS_FINALIZER: bool = false;
    fn trace(&self, v: &mut Visitor<'_>) {
        if T::NEEDS_TRACE {
            for x in self {
                x.trace(v)
            }
        }
    }
}

/// A value borrowed mutably while a collection runs cannot be read: it is
/// skipped, so whatever it holds counts as referenced from outside (it stays
/// alive).
impl<T: Trace + ?Sized> Trace for RefCell<T> {
    const NEEDS_TRACE: bool = T::NEEDS_TRACE;
    const STRUCTURAL: Structural<Self> = Structural::YES.and(T::STRUCTURAL);
    const HAS_FINALIZER: bool = false;
    #[inline]
    fn trace(&self, v: &mut Visitor<'_>) {
        if T::NEEDS_TRACE
            && let Ok(x) = self.try_borrow()
        {
            x.trace(v)
        }
    }
}

impl<T: Trace> Trace for OnceCell<T> {
    const NEEDS_TRACE: bool = T::NEEDS_TRACE;
    const STRUCTURAL: Structural<Self> = Structural::YES.and(T::STRUCTURAL);
    const HAS_FINALIZER: bool = false;
    fn trace(&self, v: &mut Visitor<'_>) {
        if let Some(x) = self.get() {
            x.trace(v)
        }
    }
}

/// A locked mutex is skipped like a mutably borrowed `RefCell`; a poisoned
/// one is traced.
impl<T: Trace + ?Sized> Trace for Mutex<T> {
    const NEEDS_TRACE: bool = T::NEEDS_TRACE;
    const STRUCTURAL: Structural<Self> = Structural::YES.and(T::STRUCTURAL);
    const HAS_FINALIZER: bool = false;
    fn trace(&self, v: &mut Visitor<'_>) {
        if T::NEEDS_TRACE {
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
impl<T: Trace + ?Sized> Trace for RwLock<T> {
    const NEEDS_TRACE: bool = T::NEEDS_TRACE;
    const STRUCTURAL: Structural<Self> = Structural::YES.and(T::STRUCTURAL);
    const HAS_FINALIZER: bool = false;
    fn trace(&self, v: &mut Visitor<'_>) {
        if T::NEEDS_TRACE {
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

impl<T: Trace + ?Sized> Trace for Box<T> {
    const NEEDS_TRACE: bool = T::NEEDS_TRACE;
    const STRUCTURAL: Structural<Self> = Structural::YES.and(T::STRUCTURAL);
    const HAS_FINALIZER: bool = false;
    fn trace(&self, v: &mut Visitor<'_>) {
        if T::NEEDS_TRACE && v.claim_container(self) {
            // SAFETY: a `Box` uniquely owns its pointee.
            unsafe { trace_in(v, &**self) }
        }
    }
}

impl<T: Trace> Trace for Vec<T> {
    const NEEDS_TRACE: bool = T::NEEDS_TRACE;
    const STRUCTURAL: Structural<Self> = Structural::YES.and(T::STRUCTURAL);
    const HAS_FINALIZER: bool = false;
    fn trace(&self, v: &mut Visitor<'_>) {
        if T::NEEDS_TRACE && !self.is_empty() && v.claim_container(self) {
            // SAFETY: a `Vec` uniquely owns its buffer.
            unsafe { trace_in(v, self.as_slice()) }
        }
    }
}

impl<T: Trace> Trace for VecDeque<T> {
    const NEEDS_TRACE: bool = T::NEEDS_TRACE;
    const STRUCTURAL: Structural<Self> = Structural::YES.and(T::STRUCTURAL);
    const HAS_FINALIZER: bool = false;
    fn trace(&self, v: &mut Visitor<'_>) {
        if T::NEEDS_TRACE && !self.is_empty() && v.claim_container(self) {
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
    const NEEDS_TRACE: bool = K::NEEDS_TRACE || V::NEEDS_TRACE;
    const STRUCTURAL: Structural<Self> = Structural::YES.and(K::STRUCTURAL).and(V::STRUCTURAL);
    const HAS_FINALIZER: bool = false;
    fn trace(&self, v: &mut Visitor<'_>) {
        if Self::NEEDS_TRACE && !self.is_empty() && v.claim_container(self) {
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
    const NEEDS_TRACE: bool = T::NEEDS_TRACE;
    const STRUCTURAL: Structural<Self> = Structural::YES.and(T::STRUCTURAL);
    const HAS_FINALIZER: bool = false;
    fn trace(&self, v: &mut Visitor<'_>) {
        if T::NEEDS_TRACE && !self.is_empty() && v.claim_container(self) {
            for x in self {
                // SAFETY: a `HashSet` uniquely owns its entries.
                unsafe { trace_in(v, x) }
            }
        }
    }
}

impl<K: Trace, V: Trace> Trace for BTreeMap<K, V> {
    const NEEDS_TRACE: bool = K::NEEDS_TRACE || V::NEEDS_TRACE;
    const STRUCTURAL: Structural<Self> = Structural::YES.and(K::STRUCTURAL).and(V::STRUCTURAL);
    const HAS_FINALIZER: bool = false;
    fn trace(&self, v: &mut Visitor<'_>) {
        if Self::NEEDS_TRACE && !self.is_empty() && v.claim_container(self) {
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
    const NEEDS_TRACE: bool = T::NEEDS_TRACE;
    const STRUCTURAL: Structural<Self> = Structural::YES.and(T::STRUCTURAL);
    const HAS_FINALIZER: bool = false;
    fn trace(&self, v: &mut Visitor<'_>) {
        if T::NEEDS_TRACE && !self.is_empty() && v.claim_container(self) {
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
            const NEEDS_TRACE: bool = $($t::NEEDS_TRACE)||+;
            const STRUCTURAL: Structural<Self> = Structural::YES $(.and($t::STRUCTURAL))+;
            const HAS_FINALIZER: bool = false;
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
