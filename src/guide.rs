//! A guide to ouro in short chapters, each a working program (every example
//! here is a doctest).
//!
//! 1. [Trees with parent pointers](trees): `Weak` back-pointers.
//! 2. [Listeners and closures](listeners): what a callback may capture.
//! 3. [Finalizers and resurrection](finalizers): `#[trace(finalize)]`.
//! 4. [Deep copy](deep_copy): `deep_copy` and `#[derive(DeepCopy)]`.
//! 5. [Threads](threads): `ouro::sync`, structural traces, where drops run.
//! 6. [Finding a leak](leaks): `get_referrers`, `write_dot`, `STATS`.
//! 7. [Tuning](tuning): thresholds, `disable`, `freeze`.
//! 8. [The pool as the global allocator](mod@global_allocator).

#[doc = include_str!("../docs/guide/trees.md")]
pub mod trees {}
#[doc = include_str!("../docs/guide/listeners.md")]
pub mod listeners {}
#[doc = include_str!("../docs/guide/finalizers.md")]
pub mod finalizers {}
#[doc = include_str!("../docs/guide/deep_copy.md")]
pub mod deep_copy {}
#[doc = include_str!("../docs/guide/threads.md")]
pub mod threads {}
#[doc = include_str!("../docs/guide/leaks.md")]
pub mod leaks {}
#[doc = include_str!("../docs/guide/tuning.md")]
pub mod tuning {}
#[doc = include_str!("../docs/guide/global_allocator.md")]
pub mod global_allocator {}
