//! ouro: CPython's memory-management model for Rust graphs.
