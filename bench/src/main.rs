//! ouro against the other reference-counting and cycle-collecting handles of
//! Rust, and CPython's `gc`, on the same workloads. `cargo xtask compare`
//! builds and runs this and writes `docs/benchmarks.md`.
//!
//! ```text
//! ouro-bench all [--runs N] [--python PY] [--lib a,b] [--workload w,v]
//!                               every library x workload, each in its own
//!                               process; one JSON document on stdout
//! ouro-bench run <lib> <workload> [N]
//!                               N runs in this process: one JSON line with
//!                               the times and the peak RSS
//! ouro-bench rss <lib> <workload>   (or --rss)
//!                               one run, then the peak RSS in KiB
//! ouro-bench list               the libraries and workloads
//! ```
//!
//! One process per library and workload keeps a crash (a stack overflow in
//! a recursive collector) to one cell of the table, and makes the peak RSS
//! (`VmHWM`) that workload's alone. Times are the running thread's CPU
//! time; the cell is the median of the runs.

mod clock;
mod heap;
mod libs;
mod threaded;
mod trees;
mod workloads;

use std::fmt::Write as _;
use std::io::Read as _;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use heap::Failure;
use workloads::Outcome;

/// The single-threaded libraries, in table order.
const LIBRARIES: &[&str] = &[
    "ouro",
    "ouro_manual",
    "rc",
    "gcmodule",
    "bacon_rajan_cc",
    "dumpster",
    "gc",
];
/// The libraries of the threaded rows.
const THREADED: &[&str] = &[
    "ouro_sync",
    "ouro_sync_manual",
    "arc",
    "gcmodule_threaded",
    "dumpster_sync",
];
/// Longest a child may run before it counts as a timeout.
const TIMEOUT: Duration = Duration::from_secs(30);
/// After this much time in one child, no further run starts.
const SLOW: Duration = Duration::from_secs(1);

fn run_once(library: &str, workload: &str) -> Outcome {
    use libs::*;
    if threaded::WORKLOADS.iter().any(|(w, _)| *w == workload) {
        return threaded::run(library, workload);
    }
    if workload == "binary_trees_weak_18" {
        use trees::*;
        return match library {
            "ouro" => run::<ouro_tree::Ouro>(18),
            "ouro_manual" => run::<ouro_tree::OuroManual>(18),
            "rc" => run::<rc_tree::RcTree>(18),
            "bacon_rajan_cc" => run::<bacon_tree::BaconTree>(18),
            _ => Err(Failure::NotApplicable("no weak handle")),
        };
    }
    match library {
        "ouro" => workloads::run::<ouro_lib::Ouro>(workload),
        "ouro_manual" => workloads::run::<ouro_lib::OuroManual>(workload),
        "rc" => workloads::run::<rc_lib::RcHeap>(workload),
        "gcmodule" => workloads::run::<gcmodule_lib::GcModule>(workload),
        "bacon_rajan_cc" => workloads::run::<bacon_lib::Bacon>(workload),
        "dumpster" => workloads::run::<dumpster_lib::Dumpster>(workload),
        "gc" => workloads::run::<rust_gc_lib::RustGc>(workload),
        _ => Err(Failure::NotApplicable("single-threaded workload")),
    }
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One result line: `{"library":..,"workload":..,"status":..,...}`.
fn result_json(
    library: &str,
    workload: &str,
    status: &str,
    samples: &[u128],
    rss_kib: Option<u64>,
    note: &str,
) -> String {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let median = match sorted.len() {
        0 => "null".to_string(),
        n if n % 2 == 1 => sorted[n / 2].to_string(),
        n => ((sorted[n / 2 - 1] + sorted[n / 2]) / 2).to_string(),
    };
    let samples: Vec<String> = samples.iter().map(u128::to_string).collect();
    format!(
        "{{\"library\":{},\"workload\":{},\"status\":{},\"median_ns\":{median},\"samples_ns\":[{}],\"rss_kib\":{},\"note\":{}}}",
        json_str(library),
        json_str(workload),
        json_str(status),
        samples.join(","),
        rss_kib.map_or("null".into(), |k| k.to_string()),
        json_str(note),
    )
}

/// The child: `runs` runs of one workload, then one JSON line.
fn child(library: &str, workload: &str, runs: usize) -> String {
    let mut samples = Vec::new();
    let started = Instant::now();
    for _ in 0..runs {
        // A slow library gets fewer runs, so the whole table stays within
        // minutes: no new run once this one has taken `SLOW`.
        if !samples.is_empty() && started.elapsed() > SLOW {
            break;
        }
        match run_once(library, workload) {
            Ok(t) => samples.push(t.as_nanos()),
            Err(failure) => {
                let (status, note) = match failure {
                    Failure::Leak { freed, created } => {
                        ("leak", format!("freed {freed} of {created} nodes"))
                    }
                    Failure::NotApplicable(why) => ("n/a", why.to_string()),
                    Failure::Wrong(why) => ("wrong", why),
                };
                return result_json(library, workload, status, &[], clock::peak_rss_kib(), &note);
            }
        }
    }
    result_json(library, workload, "ok", &samples, clock::peak_rss_kib(), "")
}

/// What a crashed or timed-out child said last (the panic message, or "stack
/// overflow").
fn crash_note(stderr: &str, status: &std::process::ExitStatus) -> String {
    if stderr.contains("overflowed its stack") {
        return "stack overflow".into();
    }
    if let Some(line) = stderr.lines().find(|l| l.contains("panicked at")) {
        let next = stderr
            .lines()
            .skip_while(|l| !l.contains("panicked at"))
            .nth(1)
            .unwrap_or("");
        return format!("panic: {}", next.trim()).replace(line, "");
    }
    match status.code() {
        Some(code) => format!("exit code {code}"),
        None => {
            use std::os::unix::process::ExitStatusExt;
            format!("killed by signal {}", status.signal().unwrap_or(0))
        }
    }
}

/// Runs `cmd` with the timeout; `Ok(stdout)` on success, else the status
/// and note of the failure.
fn spawn_with_timeout(cmd: &mut Command) -> Result<String, (&'static str, String)> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| ("crash", format!("cannot start: {e}")))?;
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| ("crash", e.to_string()))? {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let out = out_reader.join().unwrap_or_default();
    let err = err_reader.join().unwrap_or_default();
    match status {
        None => Err(("timeout", format!("over {} s", TIMEOUT.as_secs()))),
        Some(s) if s.success() => Ok(out),
        Some(s) => Err(("crash", crash_note(&err, &s))),
    }
}

struct Options {
    runs: usize,
    python: String,
    libraries: Vec<String>,
    workloads: Vec<String>,
}

fn driver(opts: &Options) -> String {
    let exe = std::env::current_exe().expect("own path");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/cpython_compare.py");
    let mut lines = Vec::new();
    let all: Vec<(&str, &str)> = workloads::WORKLOADS
        .iter()
        .chain(threaded::WORKLOADS)
        .copied()
        .collect();
    let wanted = |name: &str, list: &[String]| list.is_empty() || list.iter().any(|l| l == name);
    for &(workload, _) in &all {
        if !wanted(workload, &opts.workloads) {
            continue;
        }
        let threaded = threaded::WORKLOADS.iter().any(|(w, _)| *w == workload);
        let libs = if threaded { THREADED } else { LIBRARIES };
        for &library in libs {
            if !wanted(library, &opts.libraries) {
                continue;
            }
            eprint!("  {workload:<28} {library:<16}");
            let started = Instant::now();
            let line = match spawn_with_timeout(Command::new(&exe).args([
                "run",
                library,
                workload,
                &opts.runs.to_string(),
            ])) {
                Ok(out) => out.trim().to_string(),
                Err((status, note)) => result_json(library, workload, status, &[], None, &note),
            };
            eprintln!(" {:>6.1} s", started.elapsed().as_secs_f64());
            lines.push(line);
        }
        if !threaded && wanted("cpython", &opts.libraries) && !opts.python.is_empty() {
            eprint!("  {workload:<28} {:<16}", "cpython");
            let started = Instant::now();
            let line = match spawn_with_timeout(Command::new(&opts.python).args([
                script,
                "run",
                workload,
                &opts.runs.to_string(),
            ])) {
                Ok(out) => out.trim().to_string(),
                Err((status, note)) => result_json("cpython", workload, status, &[], None, &note),
            };
            eprintln!(" {:>6.1} s", started.elapsed().as_secs_f64());
            lines.push(line);
        }
    }
    let python_version = Command::new(&opts.python)
        .args(["-c", "import sys; print(sys.version.split()[0])"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let mut doc = String::new();
    let clock = if std::env::var_os("OURO_BENCH_WALL").is_some_and(|v| v != "0") {
        "wall clock"
    } else {
        "thread CPU time"
    };
    let _ = write!(
        doc,
        "{{\"runs\":{},\"clock\":{},\"python\":{},\"libraries\":[{}],\"threaded_libraries\":[{}],\"workloads\":[",
        opts.runs,
        json_str(clock),
        json_str(&python_version),
        LIBRARIES
            .iter()
            .chain(["cpython"].iter())
            .map(|l| json_str(l))
            .collect::<Vec<_>>()
            .join(","),
        THREADED
            .iter()
            .map(|l| json_str(l))
            .collect::<Vec<_>>()
            .join(","),
    );
    let described: Vec<String> = all
        .iter()
        .filter(|(w, _)| wanted(w, &opts.workloads))
        .map(|(w, d)| {
            format!(
                "{{\"name\":{},\"description\":{}}}",
                json_str(w),
                json_str(d)
            )
        })
        .collect();
    doc.push_str(&described.join(","));
    doc.push_str("],\"results\":[\n");
    doc.push_str(&lines.join(",\n"));
    doc.push_str("\n]}\n");
    doc
}

fn list(s: Option<&String>) -> Vec<String> {
    s.map(|s| s.split(',').map(str::to_owned).collect())
        .unwrap_or_default()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("run") if args.len() >= 3 => {
            let runs = args.get(3).and_then(|n| n.parse().ok()).unwrap_or(3);
            println!("{}", child(&args[1], &args[2], runs));
        }
        Some("stats") if args.len() == 3 => {
            // ouro's collection counts for one run, for profiling.
            let outcome = run_once(&args[1], &args[2]);
            for (g, s) in ouro::gc::get_stats().iter().enumerate() {
                eprintln!(
                    "generation {g}: {} collections, {} collected",
                    s.collections, s.collected
                );
            }
            println!(
                "{:?}",
                outcome
                    .map(|t| t.as_secs_f64())
                    .map_err(|f| format!("{f:?}"))
            );
        }
        Some("rss" | "--rss") if args.len() == 3 => {
            let _ = run_once(&args[1], &args[2]);
            println!("{}", clock::peak_rss_kib().unwrap_or(0));
        }
        Some("list") => {
            println!("libraries: {}", LIBRARIES.join(" "));
            println!("threaded libraries: {}", THREADED.join(" "));
            for (w, d) in workloads::WORKLOADS.iter().chain(threaded::WORKLOADS) {
                println!("{w:<28} {d}");
            }
        }
        Some("all") => {
            let mut opts = Options {
                runs: 3,
                python: "python3".into(),
                libraries: Vec::new(),
                workloads: Vec::new(),
            };
            let mut iter = args[1..].iter();
            while let Some(flag) = iter.next() {
                let value = iter.next();
                match flag.as_str() {
                    "--runs" => opts.runs = value.and_then(|v| v.parse().ok()).unwrap_or(3),
                    "--python" => opts.python = value.cloned().unwrap_or_default(),
                    "--lib" => opts.libraries = list(value),
                    "--workload" => opts.workloads = list(value),
                    other => {
                        eprintln!("ouro-bench: unknown option {other}");
                        return ExitCode::from(2);
                    }
                }
            }
            // No interpreter: no CPython column rather than a column of errors.
            if !opts.python.is_empty()
                && !Command::new(&opts.python)
                    .arg("--version")
                    .stdout(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            {
                eprintln!("ouro-bench: {} not found; no CPython column", opts.python);
                opts.python.clear();
            }
            print!("{}", driver(&opts));
        }
        _ => {
            eprintln!(
                "usage: ouro-bench all | run <lib> <workload> [runs] | rss <lib> <workload> | list"
            );
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}
