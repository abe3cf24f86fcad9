//! `cargo xtask`: ouro's project automation, std only so it builds in
//! seconds. Run `cargo xtask help` for the commands.
//!
//! Every command runs from the workspace root, prints each cargo call before
//! running it (`==> cargo clippy ...`), stops at the first failure with the
//! name of the step, and ends with a summary of the time each step took.
//! Packages are discovered through `cargo metadata`, so crates, loom tests
//! and benches added later are picked up without editing xtask.

mod ci;
mod compare;
mod json;
mod publish;
mod session;
mod workspace;

use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, SystemTime};

use ci::Step;
use session::{Error, Result, Session};
use workspace::Workspace;

const USAGE: &str = "\
cargo xtask <command> [options]

commands:
  ci [--skip <step>]...   fmt, clippy, msrv (cargo +<rust-version> check of the
                          library crates), test, asan, loom, miri, bench (build
                          only), in that order, stopping at the first failure;
                          --skip (repeatable, or comma-separated) leaves steps
                          out
  asan [-- <test args>]   the unit and integration tests with AddressSanitizer
                          and LeakSanitizer (nightly, -Zsanitizer=address
                          --cfg ouro_sanitize, in target/asan): any leak or
                          memory error fails it
  miri [-- <test args>]   Miri (nightly) over the unit tests of the crates with
                          unsafe code and the integration tests that drive
                          unsafe paths: Stacked Borrows and Tree Borrows (less
                          the size tests) passes with strict provenance;
                          installs the miri and rust-src components if missing
  loom [-- <test args>]   the loom models (tests/loom.rs of every package),
                          release, RUSTFLAGS=\"--cfg loom\", LOOM_MAX_PREEMPTIONS=2
  bench [--json] [--no-run | --report-only] [-- <criterion args>]
                          cargo bench --workspace, then a table per criterion
                          group with each function's time and its ratio to the
                          group's baseline (the `ouro*` function, else the
                          fastest); --json prints the same data as JSON;
                          e.g. `cargo xtask bench -- --quick` or `-- alloc`
  compare [--json] [-- <ouro-bench args>]
                          ouro against Rc, gcmodule, bacon_rajan_cc, dumpster,
                          rust-gc and CPython (bench/, a workspace of its own,
                          built in release into bench/target): writes
                          docs/benchmarks.md and docs/benchmarks.svg; --json
                          prints the raw results instead; e.g.
                          `-- --runs 5 --lib ouro,gc --workload ring_1m`
  demo [-- <args>]        cargo run --release --example tour
  publish-check [--allow-dirty]
                          cargo publish --dry-run --workspace (each crate
                          packaged and built in dependency order), then each
                          packaged crate unpacked outside the workspace: its
                          tests built and its doctests run against the other
                          packaged crates ([patch.crates-io])
  help                    this text
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    if matches!(command.as_str(), "help" | "-h" | "--help") {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let mut session = Session::new(workspace_root());
    let result = match parse(command, rest) {
        Ok(command) => run(&mut session, command),
        Err(err) => {
            eprint!("xtask: {err}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    eprint!("{}", session.summary());
    match result {
        Ok(()) => {
            eprintln!("xtask: {command} passed");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("xtask: error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root: the parent of xtask's own manifest directory.
fn workspace_root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir
        .parent()
        .map(PathBuf::from)
        .unwrap_or(manifest_dir)
}

/// A parsed command line.
#[derive(Debug, PartialEq)]
enum Command {
    Ci {
        skip: Vec<Step>,
    },
    Asan {
        test_args: Vec<String>,
    },
    Miri {
        test_args: Vec<String>,
    },
    Loom {
        test_args: Vec<String>,
    },
    Bench {
        json: bool,
        mode: BenchMode,
        args: Vec<String>,
    },
    Compare {
        json: bool,
        args: Vec<String>,
    },
    Demo {
        args: Vec<String>,
    },
    PublishCheck {
        allow_dirty: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum BenchMode {
    /// Run the benches, then report what this run measured.
    Run,
    /// Only build them (the CI step).
    NoRun,
    /// Report what criterion has on disk, without running anything.
    ReportOnly,
}

/// Splits `args` at `--`: flags before, pass-through after. Bare words
/// before `--` (a filter) are passed through too.
fn split_passthrough(args: &[String]) -> (Vec<&str>, Vec<String>) {
    let (ours, theirs) = match args.iter().position(|a| a == "--") {
        Some(i) => (&args[..i], args[i + 1..].to_vec()),
        None => (args, Vec::new()),
    };
    let mut flags = Vec::new();
    let mut passthrough = Vec::new();
    for arg in ours {
        if arg.starts_with('-') {
            flags.push(arg.as_str());
        } else {
            passthrough.push(arg.clone());
        }
    }
    passthrough.extend(theirs);
    (flags, passthrough)
}

fn parse(command: &str, rest: &[String]) -> Result<Command> {
    match command {
        "ci" => {
            let mut skip = Vec::new();
            let mut iter = rest.iter();
            while let Some(arg) = iter.next() {
                let names = match arg.strip_prefix("--skip=") {
                    Some(names) => names,
                    None if arg == "--skip" => iter.next().ok_or("--skip needs a step name")?,
                    None => return Err(format!("ci: unexpected argument `{arg}`").into()),
                };
                for name in names.split(',') {
                    let step = Step::from_name(name).ok_or_else(|| {
                        let known: Vec<&str> = Step::ALL.iter().map(|s| s.name()).collect();
                        format!("ci: unknown step `{name}` (steps: {})", known.join(", "))
                    })?;
                    skip.push(step);
                }
            }
            Ok(Command::Ci { skip })
        }
        "asan" | "miri" | "loom" => {
            let (flags, test_args) = split_passthrough(rest);
            if let Some(flag) = flags.first() {
                return Err(format!("{command}: unknown option `{flag}`").into());
            }
            Ok(match command {
                "asan" => Command::Asan { test_args },
                "miri" => Command::Miri { test_args },
                _ => Command::Loom { test_args },
            })
        }
        "bench" => {
            let (flags, args) = split_passthrough(rest);
            let mut json = false;
            let mut mode = BenchMode::Run;
            for flag in flags {
                match flag {
                    "--json" => json = true,
                    "--no-run" if mode == BenchMode::Run => mode = BenchMode::NoRun,
                    "--report-only" if mode == BenchMode::Run => mode = BenchMode::ReportOnly,
                    "--no-run" | "--report-only" => {
                        return Err("bench: --no-run and --report-only exclude each other".into());
                    }
                    other => return Err(format!("bench: unknown option `{other}`").into()),
                }
            }
            Ok(Command::Bench { json, mode, args })
        }
        "compare" => {
            let (flags, args) = split_passthrough(rest);
            let mut json = false;
            for flag in flags {
                match flag {
                    "--json" => json = true,
                    other => {
                        return Err(format!(
                            "compare: unknown option `{other}` (put ouro-bench's own options after `--`)"
                        )
                        .into());
                    }
                }
            }
            Ok(Command::Compare { json, args })
        }
        "demo" => {
            let (flags, args) = split_passthrough(rest);
            if let Some(flag) = flags.first() {
                return Err(format!(
                    "demo: unknown option `{flag}` (put the tour's own options after `--`)"
                )
                .into());
            }
            Ok(Command::Demo { args })
        }
        "publish-check" => match rest {
            [] => Ok(Command::PublishCheck { allow_dirty: false }),
            [flag] if flag == "--allow-dirty" => Ok(Command::PublishCheck { allow_dirty: true }),
            [other, ..] => Err(format!("publish-check: unexpected argument `{other}`").into()),
        },
        other => Err(format!("unknown command `{other}`").into()),
    }
}

fn run(session: &mut Session, command: Command) -> Result<()> {
    match command {
        Command::Ci { skip } => {
            for step in Step::ALL {
                if skip.contains(&step) {
                    session.skip(step.name(), "--skip");
                } else {
                    ci::run_step(session, step, &[])?;
                }
            }
            Ok(())
        }
        Command::Asan { test_args } => ci::run_step(session, Step::Asan, &test_args),
        Command::Miri { test_args } => ci::run_step(session, Step::Miri, &test_args),
        Command::Loom { test_args } => ci::run_step(session, Step::Loom, &test_args),
        Command::Bench { json, mode, args } => bench(session, json, mode, &args),
        Command::Compare { json, args } => compare::run(session, json, &args),
        Command::Demo { args } => {
            let mut cmd = session.cargo();
            cmd.args(["run", "--release", "--example", "tour"]);
            if !args.is_empty() {
                cmd.arg("--").args(args);
            }
            session.step("demo", &mut cmd)
        }
        Command::PublishCheck { allow_dirty } => publish::publish_check(session, allow_dirty),
    }
}

fn bench(session: &mut Session, json: bool, mode: BenchMode, args: &[String]) -> Result<()> {
    let started = SystemTime::now();
    match mode {
        BenchMode::NoRun => {
            if !args.is_empty() {
                return Err(Error("bench --no-run takes no criterion arguments".into()));
            }
            return ci::run_step(session, Step::Bench, &[]);
        }
        BenchMode::Run => {
            let mut cmd = session.cargo();
            cmd.args(["bench", "--workspace"]);
            if !args.is_empty() {
                cmd.arg("--").args(args);
            }
            if json {
                // Keep stdout for the JSON document alone.
                cmd.stdout(Stdio::from(std::io::stderr()));
            }
            session.step("bench", &mut cmd)?;
        }
        BenchMode::ReportOnly => {
            if !args.is_empty() {
                return Err(Error(
                    "bench --report-only takes no criterion arguments".into(),
                ));
            }
        }
    }
    let workspace = Workspace::load(session)?;
    let criterion_dir = workspace.target_dir.join("criterion");
    // Report only what this run measured (file times can lag the clock by
    // a little, hence the margin); --report-only shows everything on disk.
    let since = match mode {
        BenchMode::Run => Some(started - Duration::from_secs(2)),
        _ => None,
    };
    compare::criterion_report(session, &criterion_dir, since, json)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_line(line: &str) -> Result<Command> {
        let words: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        parse(&words[0], &words[1..])
    }

    #[test]
    fn parses_ci_skips() {
        assert_eq!(parse_line("ci").unwrap(), Command::Ci { skip: vec![] });
        assert_eq!(
            parse_line("ci --skip test --skip=miri,loom").unwrap(),
            Command::Ci {
                skip: vec![Step::Test, Step::Miri, Step::Loom]
            }
        );
        assert!(parse_line("ci --skip").is_err());
        assert!(
            parse_line("ci --skip tests")
                .unwrap_err()
                .0
                .contains("steps: fmt, clippy")
        );
        assert!(parse_line("ci --fast").is_err());
    }

    #[test]
    fn parses_bench_flags_and_passthrough() {
        assert_eq!(
            parse_line("bench --json -- --quick alloc").unwrap(),
            Command::Bench {
                json: true,
                mode: BenchMode::Run,
                args: vec!["--quick".into(), "alloc".into()]
            }
        );
        assert_eq!(
            parse_line("bench alloc").unwrap(),
            Command::Bench {
                json: false,
                mode: BenchMode::Run,
                args: vec!["alloc".into()]
            }
        );
        assert_eq!(
            parse_line("bench --report-only").unwrap(),
            Command::Bench {
                json: false,
                mode: BenchMode::ReportOnly,
                args: vec![]
            }
        );
        assert!(parse_line("bench --no-run --report-only").is_err());
        assert!(parse_line("bench --quick").is_err());
    }

    #[test]
    fn parses_test_args_and_rejects_unknown_commands() {
        assert_eq!(
            parse_line("loom -- --nocapture pool").unwrap(),
            Command::Loom {
                test_args: vec!["--nocapture".into(), "pool".into()]
            }
        );
        assert_eq!(
            parse_line("miri arena").unwrap(),
            Command::Miri {
                test_args: vec!["arena".into()]
            }
        );
        assert!(parse_line("miri --fast").is_err());
        assert_eq!(
            parse_line("asan -- derive").unwrap(),
            Command::Asan {
                test_args: vec!["derive".into()]
            }
        );
        assert_eq!(parse_line("demo").unwrap(), Command::Demo { args: vec![] });
        assert_eq!(
            parse_line("compare --json -- --runs 5").unwrap(),
            Command::Compare {
                json: true,
                args: vec!["--runs".into(), "5".into()]
            }
        );
        assert!(parse_line("compare --runs").is_err());
        assert!(parse_line("deploy").is_err());
    }
}
