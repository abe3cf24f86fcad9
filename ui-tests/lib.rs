//! Nothing to link: the package holds `tests/ui.rs`, the compile-fail tests
//! of `#[derive(Trace)]` and `#[derive(DeepCopy)]` (trybuild), so that the
//! facade's examples do not build trybuild and its dependencies.
