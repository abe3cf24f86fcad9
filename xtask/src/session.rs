//! Running commands as named, timed steps, and the summary at the end.

use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The error type of xtask: a message for the user.
#[derive(Debug)]
pub(crate) struct Error(pub(crate) String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for Error {
    fn from(message: String) -> Self {
        Error(message)
    }
}

impl From<&str> for Error {
    fn from(message: &str) -> Self {
        Error(message.to_owned())
    }
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Passed,
    Failed,
    Skipped,
}

#[derive(Debug)]
struct StepRecord {
    name: String,
    outcome: Outcome,
    elapsed: Duration,
    note: String,
}

/// The steps run so far by one xtask invocation.
#[derive(Debug)]
pub(crate) struct Session {
    root: PathBuf,
    started: Instant,
    steps: Vec<StepRecord>,
}

impl Session {
    pub(crate) fn new(root: PathBuf) -> Self {
        Session {
            root,
            started: Instant::now(),
            steps: Vec::new(),
        }
    }

    /// The workspace root, where every command runs.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// `cargo` as the user invoked it: `$CARGO` (set by `cargo run` to the
    /// toolchain's own cargo), else `cargo` from `PATH`.
    pub(crate) fn cargo(&self) -> Command {
        let program = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(program);
        cmd.current_dir(&self.root);
        cmd
    }

    /// `cargo +<toolchain>`: this needs rustup's `cargo` proxy, not `$CARGO`
    /// (which is the stable toolchain's binary and knows no `+toolchain`).
    /// The variables rustup and `cargo run` set for the stable toolchain are
    /// removed so that nothing pins the child back to it.
    pub(crate) fn cargo_toolchain(&self, toolchain: &str) -> Command {
        let mut cmd = Command::new(rustup_proxy("cargo"));
        cmd.arg(format!("+{toolchain}"));
        cmd.current_dir(&self.root);
        for var in [
            "CARGO",
            "RUSTUP_TOOLCHAIN",
            "RUSTUP_TOOLCHAIN_SOURCE",
            "RUSTC",
            "RUSTDOC",
        ] {
            cmd.env_remove(var);
        }
        cmd
    }

    /// `rustup` itself.
    pub(crate) fn rustup(&self) -> Command {
        let mut cmd = Command::new(rustup_proxy("rustup"));
        cmd.current_dir(&self.root);
        cmd.env_remove("RUSTUP_TOOLCHAIN")
            .env_remove("RUSTUP_TOOLCHAIN_SOURCE");
        cmd
    }

    /// `rustup` acting on the toolchain that runs xtask (the stable one).
    pub(crate) fn rustup_active(&self) -> Command {
        let mut cmd = Command::new(rustup_proxy("rustup"));
        cmd.current_dir(&self.root);
        cmd
    }

    /// Runs `cmd` as the step `name`: prints it, times it, records it, and
    /// turns a bad exit status into an error naming the step.
    pub(crate) fn step(&mut self, name: &str, cmd: &mut Command) -> Result<()> {
        eprintln!("==> {}", display_command(cmd));
        let start = Instant::now();
        let status = cmd.status();
        let elapsed = start.elapsed();
        let failure = match status {
            Ok(status) if status.success() => None,
            Ok(status) => Some(format!("{status}")),
            Err(err) => Some(format!("could not start {:?}: {err}", cmd.get_program())),
        };
        let outcome = if failure.is_some() {
            Outcome::Failed
        } else {
            Outcome::Passed
        };
        self.steps.push(StepRecord {
            name: name.to_owned(),
            outcome,
            elapsed,
            note: String::new(),
        });
        match failure {
            None => Ok(()),
            Some(why) => Err(Error(format!(
                "step `{name}` failed ({why})\n  command: {}",
                display_command(cmd)
            ))),
        }
    }

    /// Runs `lanes` of steps side by side: the steps of a lane one after
    /// another (a lane stops at its first failure), the lanes at the same
    /// time, each on a thread of its own. For single-threaded tools (a Miri
    /// run uses one core; CI has two). The first lane's output comes as it
    /// is written; the other lanes' output is kept and printed, step by
    /// step, once all lanes are done. The steps are recorded lane by lane,
    /// each with its own time and the note "in parallel"; the error is the
    /// first lane's failure, else the next lane's.
    pub(crate) fn lanes(&mut self, lanes: Vec<Vec<(String, Command)>>) -> Result<()> {
        let ran: Vec<Vec<LaneStep>> = std::thread::scope(|scope| {
            let threads: Vec<_> = lanes
                .into_iter()
                .enumerate()
                .map(|(i, lane)| scope.spawn(move || run_lane(i == 0, lane)))
                .collect();
            threads
                .into_iter()
                .map(|t| t.join().expect("a lane's thread panicked"))
                .collect()
        });
        let mut first_error = None;
        for (i, lane) in ran.into_iter().enumerate() {
            for step in lane {
                if i > 0 {
                    eprintln!("==> {}   (ran beside lane 1)", step.command);
                    print!("{}", String::from_utf8_lossy(&step.stdout));
                    eprint!("{}", String::from_utf8_lossy(&step.stderr));
                }
                let outcome = if step.failure.is_some() {
                    Outcome::Failed
                } else {
                    Outcome::Passed
                };
                self.steps.push(StepRecord {
                    name: step.name.clone(),
                    outcome,
                    elapsed: step.elapsed,
                    note: "in parallel".to_owned(),
                });
                if let Some(why) = step.failure {
                    first_error.get_or_insert(Error(format!(
                        "step `{}` failed ({why})\n  command: {}",
                        step.name, step.command
                    )));
                }
            }
        }
        match first_error {
            None => Ok(()),
            Some(err) => Err(err),
        }
    }

    /// Runs `cmd` quietly to ask a question (does miri exist?); not a step.
    /// Output is discarded; returns whether it succeeded.
    pub(crate) fn probe(&self, cmd: &mut Command) -> bool {
        eprintln!("==> {}   (probe)", display_command(cmd));
        cmd.stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }

    /// Runs `cmd` as step `name` but carries on when it fails; returns
    /// whether it succeeded. For fallbacks (installing a component).
    pub(crate) fn attempt(&mut self, name: &str, cmd: &mut Command) -> bool {
        match self.step(name, cmd) {
            Ok(()) => true,
            Err(err) => {
                if let Some(last) = self.steps.last_mut() {
                    last.note = "failed; carried on".to_owned();
                }
                eprintln!("xtask: {err}\nxtask: carrying on");
                false
            }
        }
    }

    /// Records a step that was not run, with the reason.
    pub(crate) fn skip(&mut self, name: &str, why: &str) {
        eprintln!("==> skipping {name}: {why}");
        self.steps.push(StepRecord {
            name: name.to_owned(),
            outcome: Outcome::Skipped,
            elapsed: Duration::ZERO,
            note: why.to_owned(),
        });
    }

    /// The summary table: every step, its outcome and its time.
    pub(crate) fn summary(&self) -> String {
        let width = self
            .steps
            .iter()
            .map(|s| s.name.len())
            .max()
            .unwrap_or(0)
            .max(4);
        let mut out = String::from("\nxtask summary:\n");
        for step in &self.steps {
            let outcome = match step.outcome {
                Outcome::Passed => "ok",
                Outcome::Failed => "FAILED",
                Outcome::Skipped => "skipped",
            };
            let note = if step.note.is_empty() {
                String::new()
            } else {
                format!("  ({})", step.note)
            };
            let line = format!(
                "  {:<width$}  {:>8}  {:<7}{}",
                step.name,
                format_duration(step.elapsed),
                outcome,
                note
            );
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out.push_str(&format!(
            "  {:<width$}  {:>8}\n",
            "total",
            format_duration(self.started.elapsed())
        ));
        out
    }

    /// The outcome of every recorded step, in order.
    #[cfg(test)]
    fn outcomes(&self) -> Vec<Outcome> {
        self.steps.iter().map(|s| s.outcome).collect()
    }
}

/// One step a lane ran: its output when it was kept.
struct LaneStep {
    name: String,
    command: String,
    elapsed: Duration,
    failure: Option<String>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// Runs the steps of one lane until one fails; `live` lets their output
/// through as it comes, else it is kept.
fn run_lane(live: bool, lane: Vec<(String, Command)>) -> Vec<LaneStep> {
    let mut ran = Vec::new();
    for (name, mut cmd) in lane {
        let command = display_command(&cmd);
        if live {
            eprintln!("==> {command}");
        }
        let start = Instant::now();
        let (status, stdout, stderr) = if live {
            (cmd.status(), Vec::new(), Vec::new())
        } else {
            match cmd.output() {
                Ok(out) => (Ok(out.status), out.stdout, out.stderr),
                Err(err) => (Err(err), Vec::new(), Vec::new()),
            }
        };
        let failure = match status {
            Ok(status) if status.success() => None,
            Ok(status) => Some(format!("{status}")),
            Err(err) => Some(format!("could not start {:?}: {err}", cmd.get_program())),
        };
        let failed = failure.is_some();
        ran.push(LaneStep {
            name,
            command,
            elapsed: start.elapsed(),
            failure,
            stdout,
            stderr,
        });
        if failed {
            break;
        }
    }
    ran
}

/// `name` from `$CARGO_HOME/bin` when it is there (where rustup puts its
/// proxies), else from `PATH`.
fn rustup_proxy(name: &str) -> PathBuf {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")));
    if let Some(candidate) = cargo_home.map(|home| home.join("bin").join(name))
        && candidate.is_file()
    {
        return candidate;
    }
    PathBuf::from(name)
}

/// `1m 02s`, `14.3s`, `0.20s`.
pub(crate) fn format_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs >= 60.0 {
        let whole = d.as_secs();
        format!("{}m {:02}s", whole / 60, whole % 60)
    } else if secs >= 10.0 {
        format!("{secs:.1}s")
    } else {
        format!("{secs:.2}s")
    }
}

/// The command as a shell line: explicitly set variables first, then the
/// program (just `cargo` when it is a path to a cargo binary) and arguments.
pub(crate) fn display_command(cmd: &Command) -> String {
    let mut parts = Vec::new();
    for (key, value) in cmd.get_envs() {
        if let Some(value) = value {
            parts.push(format!("{}={}", key.to_string_lossy(), shell_quote(value)));
        }
    }
    let program = Path::new(cmd.get_program());
    let shown = match program.file_name() {
        Some(name) if name == "cargo" || name == "rustup" => name,
        _ => program.as_os_str(),
    };
    parts.push(shell_quote(shown));
    parts.extend(cmd.get_args().map(shell_quote));
    parts.join(" ")
}

fn shell_quote(s: &OsStr) -> String {
    let s = s.to_string_lossy();
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_=+./:,@%^".contains(c));
    if plain {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_commands_like_a_shell_line() {
        let mut cmd = Command::new("/home/u/.rustup/toolchains/stable/bin/cargo");
        cmd.env("RUSTFLAGS", "--cfg loom")
            .args(["test", "--release", "it's"]);
        assert_eq!(
            display_command(&cmd),
            "RUSTFLAGS='--cfg loom' cargo test --release 'it'\\''s'"
        );
        let plain = Command::new("/usr/bin/true");
        assert_eq!(display_command(&plain), "/usr/bin/true");
    }

    #[test]
    fn formats_durations() {
        assert_eq!(format_duration(Duration::from_millis(200)), "0.20s");
        assert_eq!(format_duration(Duration::from_millis(14_349)), "14.3s");
        assert_eq!(format_duration(Duration::from_secs(62)), "1m 02s");
    }

    #[test]
    fn lanes_run_side_by_side_and_stop_at_their_first_failure() {
        let mut session = Session::new(std::env::temp_dir());
        let step = |name: &str, program: &str| (name.to_owned(), Command::new(program));
        let err = session
            .lanes(vec![
                vec![step("a1", "true"), step("a2", "true")],
                vec![step("b1", "false"), step("b2", "true")],
            ])
            .unwrap_err();
        assert!(err.0.starts_with("step `b1` failed"), "{err}");
        // b2 did not run: its lane stopped at b1.
        assert_eq!(
            session.outcomes(),
            [Outcome::Passed, Outcome::Passed, Outcome::Failed]
        );
        assert!(session.summary().contains("(in parallel)"));
        session
            .lanes(vec![vec![step("c", "true")], vec![step("d", "true")]])
            .unwrap();
    }

    #[test]
    fn records_steps_and_reports_failures_by_name() {
        let mut session = Session::new(std::env::temp_dir());
        session.step("yes", &mut Command::new("true")).unwrap();
        let err = session.step("no", &mut Command::new("false")).unwrap_err();
        assert!(err.0.starts_with("step `no` failed"), "{err}");
        assert!(!session.attempt("fallback", &mut Command::new("false")));
        session.skip("later", "nothing to do");
        assert_eq!(
            session.outcomes(),
            [
                Outcome::Passed,
                Outcome::Failed,
                Outcome::Failed,
                Outcome::Skipped
            ]
        );
        let summary = session.summary();
        for needle in [
            "yes",
            "FAILED",
            "carried on",
            "skipped  (nothing to do)",
            "total",
        ] {
            assert!(
                summary.contains(needle),
                "{needle:?} missing from\n{summary}"
            );
        }
    }
}
