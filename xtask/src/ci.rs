//! The CI steps: fmt, clippy, the MSRV check, tests, the AddressSanitizer
//! tests, loom, Miri and the bench build.

use std::fs;
use std::path::{Path, PathBuf};

use crate::session::{Result, Session};
use crate::workspace::{Package, Workspace};

/// The steps of `cargo xtask ci`, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    Fmt,
    Clippy,
    Msrv,
    Test,
    Asan,
    Loom,
    Miri,
    Bench,
}

impl Step {
    pub(crate) const ALL: [Step; 8] = [
        Step::Fmt,
        Step::Clippy,
        Step::Msrv,
        Step::Test,
        Step::Asan,
        Step::Loom,
        Step::Miri,
        Step::Bench,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Step::Fmt => "fmt",
            Step::Clippy => "clippy",
            Step::Msrv => "msrv",
            Step::Test => "test",
            Step::Asan => "asan",
            Step::Loom => "loom",
            Step::Miri => "miri",
            Step::Bench => "bench",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// The crates with `unsafe` code, whose unit tests run under Miri. Kept in
/// this one place; a crate missing from the workspace, or without a lib
/// target yet, is skipped rather than failing the run.
pub(crate) const MIRI_PACKAGES: [&str; 3] = ["ouro-pool", "ouro-cyclegc", "ouro-refobj"];

/// Integration tests (package, test target) that drive the unsafe paths
/// through the public API: Miri runs them beside the unit tests of
/// `MIRI_PACKAGES`. Kept in this one place; a target not in the workspace
/// (yet) is left out with a message. They shrink their loops under
/// `cfg(miri)`.
pub(crate) const MIRI_INTEGRATION_TESTS: [(&str, &str); 14] = [
    ("ouro-gc", "deep"),
    ("ouro-gc", "derive"),
    ("ouro-gc", "deep_copy"),
    ("ouro-gc", "teardown"),
    ("ouro-gc", "finalize"),
    ("ouro-gc", "collect"),
    ("ouro-gc", "sync_report"),
    ("ouro-gc", "dyn_edges"),
    ("ouro-gc", "sync_heap"),
    ("ouro-gc", "adversarial_new"),
    ("ouro-gc", "gc_semantics"),
    ("ouro-gc", "regressions_local"),
    ("ouro-gc", "regressions_shared"),
    ("ouro-gc", "object_info"),
];

/// What unsafe code looks like in source text (prose saying "without
/// `unsafe`" does not count).
const UNSAFE_CODE: [&str; 3] = ["unsafe {", "unsafe fn", "unsafe impl"];

/// Tests the Tree Borrows pass leaves to the Stacked Borrows pass (names
/// contain one of these): the ones whose point is size (deep structures on
/// a small stack, long random programs against a model, several arenas'
/// worth of blocks). They repeat the code paths that the small tests take
/// once, and they are most of a pass's time. A test renamed away from
/// this list only makes the Tree Borrows pass slower.
/// Integration-test binaries the Tree Borrows pass leaves to the Stacked
/// Borrows pass: suites that run the same public paths as the others once
/// more (the gc semantics on both heaps, the renamed review findings), to
/// keep CI within its time.
const TREE_BORROWS_SKIP_BINARIES: [&str; 3] =
    ["gc_semantics", "regressions_local", "regressions_shared"];

/// `targets` (`--test <name>` pairs) without the binaries named in `skip`.
fn without_binaries(targets: &[String], skip: &[&str]) -> Vec<String> {
    targets
        .chunks(2)
        .filter(|pair| !(pair.len() == 2 && skip.contains(&pair[1].as_str())))
        .flatten()
        .cloned()
        .collect()
}

const TREE_BORROWS_SKIP: [&str; 10] = [
    "on_a_small_stack",
    "on_a_2_mib_stack",
    "million_node",
    "iteratively",
    "without_recursion",
    "matches_model",
    "against_the_model",
    "memory_goes_back_to_the_os",
    "arenas_stay_sorted",
    "plans_lay_out_the_lists",
];

/// The Miri flags of the strict passes (STYLE.md, "Tests").
const MIRI_STRICT: &str = "-Zmiri-strict-provenance -Zmiri-symbolic-alignment-check";

/// The nightly pinned by shared/TOOLCHAIN.md as the fallback that has Miri.
const PINNED_NIGHTLY: &str = "nightly-2026-05-20";

/// Runs `step` as part of `cargo xtask ci` (or alone, for `asan`, `miri`,
/// `loom`, `bench --no-run`). `test_args` go to the test harness (ASan, loom
/// and Miri).
pub(crate) fn run_step(session: &mut Session, step: Step, test_args: &[String]) -> Result<()> {
    match step {
        Step::Fmt => {
            ensure_cargo_tool(session, "fmt", "rustfmt");
            session.step("fmt", session.cargo().args(["fmt", "--all", "--check"]))
        }
        Step::Clippy => {
            ensure_cargo_tool(session, "clippy", "clippy");
            let clippy = [
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ];
            session.step("clippy", session.cargo().args(clippy))
        }
        Step::Msrv => msrv(session),
        Step::Test => session.step("test", session.cargo().args(["test", "--workspace"])),
        Step::Asan => asan(session, test_args),
        Step::Loom => loom(session, test_args),
        Step::Miri => miri(session, test_args),
        Step::Bench => {
            session.step(
                "bench build",
                session.cargo().args(["bench", "--workspace", "--no-run"]),
            )?;
            // The reports of `cargo xtask bench` and `compare` live in the
            // bench workspace, outside `cargo test --workspace`.
            let bench_dir = session.root().join("bench");
            let mut report = session.cargo();
            report
                .args(["test", "-p", "ouro-report", "--manifest-path"])
                .arg(bench_dir.join("Cargo.toml"))
                .env("CARGO_TARGET_DIR", bench_dir.join("target"));
            session.step("bench report tests", &mut report)
        }
    }
}

/// Adds the rustup component behind `cargo <tool>` when the tool is missing
/// (a minimal toolchain profile has neither rustfmt nor clippy). If that
/// fails too, the step itself fails with cargo's message.
fn ensure_cargo_tool(session: &mut Session, tool: &str, component: &str) {
    if !session.probe(session.cargo().args([tool, "--version"])) {
        session.attempt(
            &format!("{tool}: add {component}"),
            session
                .rustup_active()
                .args(["component", "add", component]),
        );
    }
}

/// A directory beside the main target dir (`target/loom`, `target/miri`):
/// different flags would otherwise rebuild the main one from scratch.
fn side_target_dir(workspace: &Workspace, name: &str) -> PathBuf {
    workspace.target_dir.join(name)
}

/// Packages with a `tests/loom.rs` (a test target named `loom`).
pub(crate) fn loom_packages(workspace: &Workspace) -> Vec<&Package> {
    workspace
        .packages
        .iter()
        .filter(|p| p.has_target("test", Some("loom")))
        .collect()
}

fn loom(session: &mut Session, test_args: &[String]) -> Result<()> {
    let workspace = Workspace::load(session)?;
    let packages = loom_packages(&workspace);
    if packages.is_empty() {
        session.skip("loom", "no workspace package has tests/loom.rs yet");
        return Ok(());
    }
    let preemptions = std::env::var("LOOM_MAX_PREEMPTIONS").unwrap_or_else(|_| "2".to_owned());
    let mut cmd = session.cargo();
    cmd.env("RUSTFLAGS", "--cfg loom")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env("LOOM_MAX_PREEMPTIONS", preemptions)
        .env("CARGO_TARGET_DIR", side_target_dir(&workspace, "loom"))
        .args(["test", "--release"]);
    for package in &packages {
        cmd.args(["-p", &package.name]);
    }
    cmd.args(["--test", "loom"]);
    if !test_args.is_empty() {
        cmd.arg("--").args(test_args);
    }
    session.step("loom", &mut cmd)?;
    // Models of crate internals live beside them, in `loom_tests` modules
    // of the collector's library (they need `pub(crate)` items).
    if workspace.package(LOOM_UNIT_PACKAGE).is_some() && test_args.is_empty() {
        let mut unit = session.cargo();
        unit.env("RUSTFLAGS", "--cfg loom")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env(
                "LOOM_MAX_PREEMPTIONS",
                std::env::var("LOOM_MAX_PREEMPTIONS").unwrap_or_else(|_| "2".to_owned()),
            )
            .env("CARGO_TARGET_DIR", side_target_dir(&workspace, "loom"))
            .args([
                "test",
                "--release",
                "-p",
                LOOM_UNIT_PACKAGE,
                "--lib",
                "loom_tests",
            ]);
        session.step("loom (unit models)", &mut unit)?;
    }
    Ok(())
}

/// The package whose library has `loom_tests` modules.
const LOOM_UNIT_PACKAGE: &str = "ouro-cyclegc";

/// The cfg the AddressSanitizer build sets (declared in the workspace's
/// `unexpected_cfgs`): the pool takes its arenas from `System` so that
/// LeakSanitizer sees into them (pool/src/os.rs), and the slowest tests
/// shrink their loops.
const SANITIZE_CFG: &str = "ouro_sanitize";

/// The workspace's unit and integration tests (no doctests, benches or
/// xtask) built with AddressSanitizer on nightly, in `target/asan`, with
/// LeakSanitizer on: any leak or memory error fails the step. `--target`
/// keeps the sanitizer flags off build scripts and proc macros. The
/// prebuilt standard library is not instrumented, which only means that
/// errors inside it go unseen; ouro's own code and the tests are.
fn asan(session: &mut Session, test_args: &[String]) -> Result<()> {
    let workspace = Workspace::load(session)?;
    let toolchain = nightly_toolchain(session, &ASAN_NEEDS)?;
    let host = session
        .cargo_toolchain(&toolchain)
        .arg("-vV")
        .output()
        .ok()
        .and_then(|out| host_triple(&String::from_utf8_lossy(&out.stdout)))
        .ok_or("asan: could not read the host triple from `cargo -vV`")?;
    if !host.contains("-linux") {
        session.skip("asan", "LeakSanitizer needs Linux");
        return Ok(());
    }
    let flags = format!("-Zsanitizer=address --cfg {SANITIZE_CFG}");
    // A user's own ASAN_OPTIONS come after ours (the last one wins).
    let mut options = "detect_leaks=1".to_owned();
    if let Ok(extra) = std::env::var("ASAN_OPTIONS")
        && !extra.is_empty()
    {
        options = format!("{options}:{extra}");
    }
    let mut cmd = session.cargo_toolchain(&toolchain);
    cmd.env("RUSTFLAGS", &flags)
        .env("RUSTDOCFLAGS", &flags)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTDOCFLAGS")
        .env("ASAN_OPTIONS", options)
        .env("CARGO_TARGET_DIR", side_target_dir(&workspace, "asan"))
        .args([
            "test",
            "--workspace",
            "--exclude",
            "xtask",
            "--target",
            &host,
        ])
        // Unit and integration tests; every binary runs, so that one run
        // shows every report.
        .args(["--tests", "--no-fail-fast"]);
    if !test_args.is_empty() {
        cmd.arg("--").args(test_args);
    }
    session.step("asan", &mut cmd)
}

/// The `host:` line of `cargo -vV` (or `rustc -vV`).
fn host_triple(version: &str) -> Option<String> {
    version
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(|host| host.trim().to_owned())
}

/// Whether any `.rs` file under `dir` mentions one of `needles`, in its
/// name or its text.
fn sources_mention(dir: &Path, needles: &[&str]) -> bool {
    let Ok(entries) = fs::read_dir(dir) else {
        return false;
    };
    entries.filter_map(|e| e.ok()).any(|entry| {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            name != "target" && !name.starts_with('.') && sources_mention(&path, needles)
        } else {
            name.ends_with(".rs")
                && (needles.iter().any(|n| name.contains(n))
                    || fs::read_to_string(&path)
                        .is_ok_and(|text| needles.iter().any(|n| text.contains(n))))
        }
    })
}

/// What a nightly step needs from its toolchain.
#[derive(Debug)]
struct NightlyNeeds {
    /// The step's name, for messages and the install steps' names.
    step: &'static str,
    /// A variable naming the toolchain to use as is.
    override_var: &'static str,
    /// `cargo` arguments that succeed only when the toolchain has what
    /// the step needs.
    probe: &'static [&'static str],
    /// The rustup components to add when the probe fails.
    components: &'static [&'static str],
}

const MIRI_NEEDS: NightlyNeeds = NightlyNeeds {
    step: "miri",
    override_var: "XTASK_MIRI_TOOLCHAIN",
    probe: &["miri", "--version"],
    components: &["miri", "rust-src"],
};

/// AddressSanitizer links the prebuilt standard library (no `-Zbuild-std`),
/// so any nightly will do.
const ASAN_NEEDS: NightlyNeeds = NightlyNeeds {
    step: "asan",
    override_var: "XTASK_ASAN_TOOLCHAIN",
    probe: &["--version"],
    components: &[],
};

/// Finds a nightly with what `needs` asks for, adding the components (or
/// installing the pinned nightly) when missing; see shared/TOOLCHAIN.md.
fn nightly_toolchain(session: &mut Session, needs: &NightlyNeeds) -> Result<String> {
    if let Ok(toolchain) = std::env::var(needs.override_var) {
        return Ok(toolchain);
    }
    // RUSTUP_AUTO_INSTALL=0: asking about a missing toolchain must not
    // download it.
    let ready = |session: &Session, toolchain: &str| {
        session.probe(
            session
                .cargo_toolchain(toolchain)
                .env("RUSTUP_AUTO_INSTALL", "0")
                .args(needs.probe),
        )
    };
    if ready(session, "nightly") {
        return Ok("nightly".to_owned());
    }
    if ready(session, PINNED_NIGHTLY) {
        return Ok(PINNED_NIGHTLY.to_owned());
    }
    // Add the components only to a `nightly` that is already there: with
    // no `nightly` installed, rustup could fetch the newest one instead.
    let listed = session.rustup().args(["toolchain", "list"]).output();
    let nightly_installed =
        listed.is_ok_and(|out| has_plain_nightly(&String::from_utf8_lossy(&out.stdout)));
    if nightly_installed && !needs.components.is_empty() {
        let added = session.attempt(
            &format!("{}: add components", needs.step),
            session
                .rustup()
                .args(["component", "add", "--toolchain", "nightly"])
                .args(needs.components),
        );
        if added && ready(session, "nightly") {
            return Ok("nightly".to_owned());
        }
    } else if !nightly_installed {
        eprintln!("xtask: {}: no `nightly` toolchain installed", needs.step);
    }
    // Never a plain `nightly` install: the newest nightly may lack Miri.
    let mut install = session.rustup();
    install.args([
        "toolchain",
        "install",
        PINNED_NIGHTLY,
        "--profile",
        "minimal",
        "--no-self-update",
    ]);
    if !needs.components.is_empty() {
        install.args(["-c", &needs.components.join(",")]);
    }
    session.step(&format!("{}: install toolchain", needs.step), &mut install)?;
    Ok(PINNED_NIGHTLY.to_owned())
}

/// Whether `rustup toolchain list` shows an undated `nightly`
/// (`nightly-x86_64-unknown-linux-gnu`, not `nightly-2026-05-20-...`).
fn has_plain_nightly(toolchain_list: &str) -> bool {
    toolchain_list.lines().any(|line| {
        let name = line.split_whitespace().next().unwrap_or_default();
        name == "nightly"
            || name
                .strip_prefix("nightly-")
                .is_some_and(|host| !host.starts_with(|c: char| c.is_ascii_digit()))
    })
}

fn miri(session: &mut Session, test_args: &[String]) -> Result<()> {
    let workspace = Workspace::load(session)?;
    let mut packages = Vec::new();
    for name in MIRI_PACKAGES {
        match workspace.package(name) {
            Some(p) if p.has_target("lib", None) => packages.push(p),
            Some(_) => eprintln!("xtask: miri: {name} has no lib target yet; leaving it out"),
            None => eprintln!("xtask: miri: {name} is not in the workspace; leaving it out"),
        }
    }
    // The list is fixed; say so when another library crate grows `unsafe`.
    for package in &workspace.packages {
        let listed = MIRI_PACKAGES.contains(&package.name.as_str());
        if !listed
            && package.name != "xtask"
            && package.has_target("lib", None)
            && sources_mention(&package.dir.join("src"), &UNSAFE_CODE)
        {
            eprintln!(
                "xtask: miri: warning: {} has unsafe code but is not in MIRI_PACKAGES \
                 (xtask/src/ci.rs)",
                package.name
            );
        }
    }
    if packages.is_empty() {
        session.skip("miri", "none of the Miri crates has a lib target yet");
        return Ok(());
    }
    let toolchain = nightly_toolchain(session, &MIRI_NEEDS)?;
    let target_dir = side_target_dir(&workspace, "miri");
    session.step(
        "miri: setup",
        session
            .cargo_toolchain(&toolchain)
            .env("CARGO_TARGET_DIR", &target_dir)
            .args(["miri", "setup"]),
    )?;

    // A user's own MIRIFLAGS (a seed, say) come after ours.
    let extra = std::env::var("MIRIFLAGS").unwrap_or_default();
    let flags = |ours: &str| {
        if extra.is_empty() {
            ours.to_owned()
        } else {
            format!("{ours} {extra}")
        }
    };
    let make = |pkgs: &[&Package], targets: &[String], flags: String, filter: &[&str]| {
        let mut cmd = session.cargo_toolchain(&toolchain);
        cmd.env("MIRIFLAGS", flags)
            .env("CARGO_TARGET_DIR", &target_dir)
            .args(["miri", "test"]);
        for package in pkgs {
            cmd.args(["-p", &package.name]);
        }
        cmd.args(targets).arg("--").args(filter).args(test_args);
        cmd
    };
    let lib = ["--lib".to_owned()];
    let (it_packages, it_targets) = miri_integration_tests(&workspace);

    let stacked = flags(MIRI_STRICT);
    let mut tree_filter = Vec::new();
    for name in TREE_BORROWS_SKIP {
        tree_filter.extend(["--skip", name]);
    }
    let tree = flags(&format!("-Zmiri-tree-borrows {MIRI_STRICT}"));
    let tree_targets = without_binaries(&it_targets, &TREE_BORROWS_SKIP_BINARIES);

    // Two lanes of about the same length, run side by side: a Miri run
    // uses one core, and CI has two. The unit tests under Stacked Borrows
    // are one lane; the integration tests under Stacked Borrows and both
    // Tree Borrows passes the other. (Cargo holds the target directory's
    // lock while it builds only, so the lanes share `target/miri`.)
    let mut first = vec![(
        "miri: stacked borrows".to_owned(),
        make(&packages, &lib, stacked.clone(), &[]),
    )];
    let mut second = Vec::new();
    if !it_targets.is_empty() {
        second.push((
            "miri: stacked borrows, integration".to_owned(),
            make(&it_packages, &it_targets, stacked, &[]),
        ));
    }
    second.push((
        "miri: tree borrows".to_owned(),
        make(&packages, &lib, tree.clone(), &tree_filter),
    ));
    if !tree_targets.is_empty() {
        second.push((
            "miri: tree borrows, integration".to_owned(),
            make(&it_packages, &tree_targets, tree, &tree_filter),
        ));
    }
    if lanes_wanted() < 2 {
        first.append(&mut second);
    }
    session.lanes(vec![first, second])
}

/// How many Miri lanes to run side by side: two unless
/// `XTASK_MIRI_LANES=1` asks for one (a one-core machine, or to read the
/// output in order).
fn lanes_wanted() -> usize {
    match std::env::var("XTASK_MIRI_LANES").as_deref() {
        Ok("1") => 1,
        _ => 2,
    }
}

/// The packages and `--test <name>` arguments of the
/// `MIRI_INTEGRATION_TESTS` that exist.
fn miri_integration_tests(workspace: &Workspace) -> (Vec<&Package>, Vec<String>) {
    let mut packages: Vec<&Package> = Vec::new();
    let mut targets = Vec::new();
    for (name, test) in MIRI_INTEGRATION_TESTS {
        match workspace.package(name) {
            Some(p) if p.has_target("test", Some(test)) => {
                if !packages.iter().any(|q| q.name == p.name) {
                    packages.push(p);
                }
                targets.extend(["--test".to_owned(), test.to_owned()]);
            }
            _ => eprintln!("xtask: miri: {name} has no test `{test}` yet; leaving it out"),
        }
    }
    (packages, targets)
}

/// The published crates: what `rust-version` promises to build (their
/// dev-dependencies, criterion and proptest, may need a newer toolchain).
const MSRV_PACKAGES: [&str; 5] = [
    "ouro-pool",
    "ouro-cyclegc",
    "ouro-refobj",
    "ouro-macros",
    "ouro-gc",
];

/// Checks the library crates with the toolchain `rust-version` names
/// (`[workspace.package]` of the root manifest), installing it with rustup's
/// minimal profile when it is missing, in `target/msrv`.
fn msrv(session: &mut Session) -> Result<()> {
    let workspace = Workspace::load(session)?;
    let root = workspace
        .package("ouro-gc")
        .ok_or("msrv: no package ouro-gc in the workspace")?;
    let manifest = fs::read_to_string(root.dir.join("Cargo.toml"))
        .map_err(|e| format!("msrv: reading Cargo.toml: {e}"))?;
    let version = manifest_string(&manifest, "rust-version")
        .ok_or("msrv: no `rust-version` in Cargo.toml")?;
    if !session.probe(
        session
            .rustup()
            .args(["run", &version, "rustc", "--version"]),
    ) {
        let install = ["toolchain", "install", &version, "--profile", "minimal"];
        session.step(
            &format!("msrv: install {version}"),
            session.rustup().args(install),
        )?;
    }
    let mut cmd = session.cargo_toolchain(&version);
    cmd.args(["check", "--lib"])
        .env("CARGO_TARGET_DIR", side_target_dir(&workspace, "msrv"));
    for package in MSRV_PACKAGES {
        cmd.args(["-p", package]);
    }
    session.step(&format!("msrv ({version})"), &mut cmd)
}

/// The value of the first `<key> = "..."` line of a manifest (std only: no
/// TOML parser; enough for the root manifest's `[workspace.package]`).
pub(crate) fn manifest_string(manifest: &str, key: &str) -> Option<String> {
    manifest.lines().find_map(|line| {
        let value = line.trim().strip_prefix(key)?.trim_start();
        let value = value.strip_prefix('=')?.trim();
        Some(value.strip_prefix('"')?.strip_suffix('"')?.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rust_version_from_the_manifest() {
        let manifest = "[workspace.package]\nversion = \"0.1.0\"\nrust-version = \"1.88\"\n";
        assert_eq!(
            manifest_string(manifest, "rust-version").as_deref(),
            Some("1.88")
        );
        assert_eq!(
            manifest_string(manifest, "version").as_deref(),
            Some("0.1.0")
        );
        let inherited = "rust-version.workspace = true\n";
        assert_eq!(manifest_string(inherited, "rust-version"), None);
        assert_eq!(
            manifest_string("[package]\nname = \"x\"\n", "rust-version"),
            None
        );
    }

    #[test]
    fn step_names_round_trip() {
        for step in Step::ALL {
            assert_eq!(Step::from_name(step.name()), Some(step));
        }
        assert_eq!(Step::from_name("lint"), None);
    }

    #[test]
    fn tree_borrows_leaves_out_the_named_binaries() {
        let targets: Vec<String> = [
            "--test",
            "deep",
            "--test",
            "gc_semantics",
            "--test",
            "collect",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            without_binaries(&targets, &["gc_semantics"]),
            ["--test", "deep", "--test", "collect"]
        );
        assert_eq!(without_binaries(&targets, &[]), targets);
        for name in TREE_BORROWS_SKIP_BINARIES {
            assert!(
                MIRI_INTEGRATION_TESTS.iter().any(|(_, t)| *t == name),
                "{name} is not a Miri integration test"
            );
        }
    }

    #[test]
    fn picks_the_integration_tests_that_exist() {
        let metadata = r#"{"packages":[
            {"name":"ouro-gc","manifest_path":"/w/Cargo.toml","targets":[
                {"kind":["lib"],"name":"ouro","src_path":"/w/src/lib.rs"},
                {"kind":["test"],"name":"derive","src_path":"/w/tests/derive.rs"},
                {"kind":["test"],"name":"deep","src_path":"/w/tests/deep.rs"},
                {"kind":["test"],"name":"model","src_path":"/w/tests/model.rs"}]}],
            "target_directory":"/w/target","version":1,"workspace_root":"/w"}"#;
        let workspace = Workspace::from_metadata(metadata).unwrap();
        let (packages, targets) = miri_integration_tests(&workspace);
        assert_eq!(packages.len(), 1);
        assert_eq!(packages[0].name, "ouro-gc");
        assert_eq!(targets, ["--test", "deep", "--test", "derive"]);
    }

    #[test]
    fn reads_the_host_triple() {
        let version = "cargo 1.97.0-nightly (abc 2026-05-19)\nrelease: 1.97.0-nightly\n\
                       host: x86_64-unknown-linux-gnu\nos: Linux\n";
        assert_eq!(
            host_triple(version).as_deref(),
            Some("x86_64-unknown-linux-gnu")
        );
        assert_eq!(host_triple("cargo 1.95.0\n"), None);
    }

    #[test]
    fn tells_a_plain_nightly_from_a_dated_one() {
        let list = "stable-x86_64-unknown-linux-gnu (active, default)\n\
                    nightly-x86_64-unknown-linux-gnu\n1.95.0-x86_64-unknown-linux-gnu\n";
        assert!(has_plain_nightly(list));
        assert!(!has_plain_nightly(
            "stable-x86_64-unknown-linux-gnu (default)\n"
        ));
        assert!(!has_plain_nightly(
            "nightly-2026-05-20-x86_64-unknown-linux-gnu\n"
        ));
        assert!(has_plain_nightly("nightly (default)\n"));
        assert!(!has_plain_nightly(""));
    }

    #[test]
    fn finds_needles_and_unsafe_code_in_sources() {
        let root = std::env::temp_dir().join(format!("xtask-sources-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("a/sub")).unwrap();
        fs::write(root.join("a/lib.rs"), "fn main() {}").unwrap();
        assert!(!sources_mention(&root.join("a"), &["needle"]));
        fs::write(root.join("a/sub/needle.rs"), "").unwrap();
        assert!(sources_mention(&root.join("a"), &["needle"]));
        fs::create_dir_all(root.join("b")).unwrap();
        fs::write(root.join("b/x.rs"), "#[test] fn needle_pin() {}").unwrap();
        fs::write(root.join("b/notes.txt"), "").unwrap();
        assert!(sources_mention(&root.join("b"), &["needle"]));
        assert!(!sources_mention(&root.join("missing"), &["needle"]));
        fs::create_dir_all(root.join("c")).unwrap();
        fs::write(root.join("c/lib.rs"), "//! Graphs without `unsafe`.").unwrap();
        assert!(!sources_mention(&root.join("c"), &UNSAFE_CODE));
        fs::write(root.join("c/raw.rs"), "unsafe impl Send for X {}").unwrap();
        assert!(sources_mention(&root.join("c"), &UNSAFE_CODE));
        fs::remove_dir_all(&root).unwrap();
    }
}
