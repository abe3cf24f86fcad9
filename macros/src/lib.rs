//! ouro-macros: `#[derive(Trace)]` and `#[derive(DeepCopy)]` for ouro (to come).
