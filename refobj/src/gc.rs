//! The `gc` module: Python's `gc` for ouro's thread-local heap.
//!
//! Every function reads or changes only the calling thread's heap and
//! settings.

pub use ouro_cyclegc::GenerationStats;
pub use ouro_cyclegc::control::{
    collect, collect_generation, disable, enable, get_count, get_stats, get_threshold, is_enabled,
    set_threshold,
};
