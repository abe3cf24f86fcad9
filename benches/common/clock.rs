//! The benches' clock: this thread's CPU time where the platform has it
//! (`OURO_BENCH_WALL=1` for the wall clock), shared by `benches/gc.rs`,
//! `benches/sync.rs`, `benches/sync_paired.rs` and `common/hammer.rs`
//! through `#[path]`. See
//! `benches/gc.rs` for why.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A point in time of the bench clock.
#[derive(Clone, Copy)]
pub(crate) struct Stamp(Duration);

impl Stamp {
    pub(crate) fn now() -> Stamp {
        static WALL_START: OnceLock<Option<Instant>> = OnceLock::new();
        let wall = WALL_START.get_or_init(|| {
            let wanted = std::env::var_os("OURO_BENCH_WALL").is_some_and(|v| v != "0");
            (wanted || thread_cpu_time().is_none()).then(Instant::now)
        });
        match wall {
            Some(start) => Stamp(start.elapsed()),
            None => Stamp(thread_cpu_time().unwrap_or_default()),
        }
    }

    pub(crate) fn elapsed(self) -> Duration {
        Stamp::now().0.saturating_sub(self.0)
    }
}

/// This thread's CPU time, where the platform's `clock_gettime` is known.
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
fn thread_cpu_time() -> Option<Duration> {
    /// `struct timespec` on 64-bit Linux.
    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }
    unsafe extern "C" {
        fn clock_gettime(clock: i32, tp: *mut Timespec) -> i32;
    }
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut ts = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `clock_gettime` from the C library std links; `ts` is a valid,
    // writable `struct timespec` for the duration of the call.
    let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    (rc == 0).then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
fn thread_cpu_time() -> Option<Duration> {
    None
}
