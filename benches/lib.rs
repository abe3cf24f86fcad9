//! Nothing to link: the package holds ouro's criterion benches
//! (`cargo bench -p ouro-benches`, or `cargo xtask bench` for a table).
