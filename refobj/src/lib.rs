//! ouro-refobj: the typed handles `Gc<T>` and `Weak<T>` and the `Trace` trait.
