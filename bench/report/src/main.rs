//! The reporting half of `cargo xtask compare` and `cargo xtask bench`:
//! JSON in, markdown, SVG and JSON out. xtask runs the benchmarks and
//! calls this (it stays std-only and small; this crate may use serde_json).
//!
//! ```text
//! ouro-report compare <results.json> --docs <dir> --lock <Cargo.lock> [--json]
//!     the `ouro-bench all` document as <dir>/benchmarks.md and
//!     <dir>/benchmarks.svg (the markdown also on stdout); with --json, the
//!     document with the machine in front on stdout instead
//! ouro-report criterion <criterion dir> [--since <unix secs>] [--json]
//!     a table per criterion group with each function's time and its ratio
//!     to the group's baseline; --since keeps only results written at or
//!     after that time
//! ```

mod compare;
mod criterion;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

/// Errors are messages for the terminal.
pub(crate) type Result<T> = std::result::Result<T, String>;

/// Appends `s` to `out` as a JSON string literal, quotes included.
pub(crate) fn write_string(out: &mut String, s: &str) {
    out.push_str(&serde_json::Value::from(s).to_string());
}

/// Appends a number as Rust prints it (`1500`, `2.5`); JSON has no NaN or
/// infinity, so those become `null`.
pub(crate) fn write_number(out: &mut String, n: f64) {
    if n.is_finite() {
        let _ = write!(out, "{n}");
    } else {
        out.push_str("null");
    }
}

const USAGE: &str = "\
usage: ouro-report compare <results.json> --docs <dir> --lock <Cargo.lock> [--json]
       ouro-report criterion <criterion dir> [--since <unix secs>] [--json]
";

/// The options after the command: `--json`, and `--name value` pairs.
struct Options {
    path: PathBuf,
    json: bool,
    values: Vec<(String, String)>,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options> {
        let mut path = None;
        let mut json = false;
        let mut values = Vec::new();
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            match arg.as_str() {
                "--json" => json = true,
                "--docs" | "--lock" | "--since" => {
                    let value = iter.next().ok_or(format!("{arg} needs a value"))?;
                    values.push((arg.clone(), value.clone()));
                }
                other if other.starts_with('-') => {
                    return Err(format!("unknown option `{other}`"));
                }
                other if path.is_none() => path = Some(PathBuf::from(other)),
                other => return Err(format!("unexpected argument `{other}`")),
            }
        }
        let path = path.ok_or("missing the input path")?;
        Ok(Options { path, json, values })
    }

    fn value(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn required(&self, name: &str) -> Result<PathBuf> {
        self.value(name)
            .map(PathBuf::from)
            .ok_or(format!("{name} is required"))
    }
}

fn criterion(options: &Options) -> Result<()> {
    let since = match options.value("--since") {
        Some(secs) => {
            let secs: u64 = secs
                .parse()
                .map_err(|_| format!("--since: `{secs}` is not a number of seconds"))?;
            Some(UNIX_EPOCH + Duration::from_secs(secs))
        }
        None => None,
    };
    let measurements = criterion::collect(&options.path, since)?;
    if measurements.is_empty() {
        eprintln!(
            "ouro-report: no criterion results under {}",
            options.path.display()
        );
    }
    let tables = criterion::tables(&measurements);
    if options.json {
        print!("{}", criterion::to_json(&tables));
    } else {
        print!("{}", criterion::markdown(&tables));
    }
    Ok(())
}

fn run(args: &[String]) -> Result<()> {
    let Some((command, rest)) = args.split_first() else {
        return Err("missing command".into());
    };
    let options = Options::parse(rest)?;
    match command.as_str() {
        "compare" => compare::report(
            &options.path,
            &options.required("--docs")?,
            &options.required("--lock")?,
            options.json,
        ),
        "criterion" => criterion(&options),
        other => Err(format!("unknown command `{other}`")),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprint!("ouro-report: {err}\n\n{USAGE}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_json_strings_and_numbers() {
        let mut out = String::new();
        write_string(&mut out, "a\"b\\c\nd\u{1}");
        out.push(' ');
        write_number(&mut out, 1500.0);
        out.push(' ');
        write_number(&mut out, 2.5);
        out.push(' ');
        write_number(&mut out, f64::NAN);
        assert_eq!(out, r#""a\"b\\c\nd\u0001" 1500 2.5 null"#);
    }

    #[test]
    fn parses_options() {
        let args =
            |line: &str| -> Vec<String> { line.split_whitespace().map(str::to_owned).collect() };
        let o = Options::parse(&args("r.json --docs d --json --lock L")).unwrap();
        assert_eq!(o.path, PathBuf::from("r.json"));
        assert!(o.json);
        assert_eq!(o.value("--docs"), Some("d"));
        assert_eq!(o.required("--lock").unwrap(), PathBuf::from("L"));
        assert!(o.required("--since").is_err());
        assert!(Options::parse(&args("--docs")).is_err());
        assert!(Options::parse(&args("a b")).is_err());
        assert!(Options::parse(&args("a --fast")).is_err());
        assert!(run(&args("deploy x")).is_err());
    }
}
