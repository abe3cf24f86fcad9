//! `cargo xtask compare` and the report of `cargo xtask bench`: the
//! orchestration only. The harness (`ouro-bench`) and the reports
//! (`ouro-report`: markdown, SVG, JSON) live in `bench/`, a workspace of
//! its own (see its Cargo.toml for why), built in release into
//! `bench/target` (or `$OURO_COMPARE_TARGET_DIR`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::session::{Result, Session};

/// `bench/` and its target directory.
fn bench_dirs(session: &Session) -> (PathBuf, PathBuf) {
    let bench_dir = session.root().join("bench");
    let target = std::env::var_os("OURO_COMPARE_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| bench_dir.join("target"));
    (bench_dir, target)
}

/// Builds `packages` of the bench workspace in release.
fn build(session: &mut Session, step: &str, packages: &[&str]) -> Result<(PathBuf, PathBuf)> {
    let (bench_dir, target) = bench_dirs(session);
    let mut build = session.cargo();
    build
        .args(["build", "--release", "--manifest-path"])
        .arg(bench_dir.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target);
    for package in packages {
        build.args(["-p", package]);
    }
    session.step(step, &mut build)?;
    Ok((bench_dir, target.join("release")))
}

/// Builds and runs the comparison, then writes docs/benchmarks.md and
/// docs/benchmarks.svg (or, with `json`, prints the document). `args` go to
/// `ouro-bench all` (`--runs 5`, `--lib ouro,gc`, `--workload ring_1m`,
/// `--python python3`).
pub(crate) fn run(session: &mut Session, json: bool, args: &[String]) -> Result<()> {
    let (bench_dir, bin) = build(session, "compare build", &["ouro-bench", "ouro-report"])?;
    let output_path = bin.join("compare.json");
    let output = fs::File::create(&output_path)
        .map_err(|e| format!("cannot create {}: {e}", output_path.display()))?;
    let mut bench = Command::new(bin.join("ouro-bench"));
    bench
        .arg("all")
        .args(args)
        .current_dir(session.root())
        .stdout(Stdio::from(output));
    session.step("compare run", &mut bench)?;

    let mut report = Command::new(bin.join("ouro-report"));
    report
        .arg("compare")
        .arg(&output_path)
        .arg("--docs")
        .arg(session.root().join("docs"))
        .arg("--lock")
        .arg(bench_dir.join("Cargo.lock"));
    if json {
        report.arg("--json");
    }
    session.step("compare report", &mut report)
}

/// Prints a table (or, with `json`, a JSON document) of the criterion
/// results under `criterion_dir`; with `since`, only those written at or
/// after that time.
pub(crate) fn criterion_report(
    session: &mut Session,
    criterion_dir: &Path,
    since: Option<SystemTime>,
    json: bool,
) -> Result<()> {
    let (_, bin) = build(session, "bench report build", &["ouro-report"])?;
    let mut report = Command::new(bin.join("ouro-report"));
    report.arg("criterion").arg(criterion_dir);
    if let Some(since) = since {
        let secs = since.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        report.arg("--since").arg(secs.to_string());
    }
    if json {
        report.arg("--json");
    }
    session.step("bench report", &mut report)
}
