//! The multi-threaded stress test of the process-wide heap at Miri size.
