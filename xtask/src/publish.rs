//! `cargo xtask publish-check`: what `cargo publish` would upload builds,
//! and its tests compile, with nothing but the packaged files.
//!
//! 1. `cargo publish --dry-run --workspace` packages every publishable crate
//!    and verifies them in dependency order (cargo resolves the internal
//!    dependencies from a temporary local registry of the crates it just
//!    packaged, as crates.io will once they are uploaded in that order).
//! 2. `cargo package --workspace --no-verify` writes the same archives to
//!    `target/package`; each `.crate` is unpacked outside the workspace and its tests (unit,
//!    integration, examples) are built and its doctests run, with
//!    `[patch.crates-io]` pointing the internal dependencies at the other
//!    unpacked crates: a dev-dependency that `cargo package` stripped (a
//!    path without a version) shows up here as an unresolved import.

use std::fs;
use std::path::{Path, PathBuf};

use crate::ci::manifest_string;
use crate::session::{Result, Session};
use crate::workspace::Workspace;

/// The published crates, in the order `cargo publish` uploads them.
pub(crate) const PUBLISHED: [&str; 5] = [
    "ouro-pool",
    "ouro-cyclegc",
    "ouro-macros",
    "ouro-refobj",
    "ouro-gc",
];

pub(crate) fn publish_check(session: &mut Session, allow_dirty: bool) -> Result<()> {
    let workspace = Workspace::load(session)?;
    let mut dry_run = session.cargo();
    dry_run.args(["publish", "--dry-run", "--workspace"]);
    if allow_dirty {
        dry_run.arg("--allow-dirty");
    }
    session.step("publish --dry-run", &mut dry_run)?;
    // The dry run keeps its archives in a scratch place of its own; this
    // writes them where `cargo package` documents them, `target/package`.
    let mut package = session.cargo();
    package.args(["package", "--workspace", "--no-verify"]);
    if allow_dirty {
        package.arg("--allow-dirty");
    }
    session.step("package", &mut package)?;

    let scratch = std::env::temp_dir().join(format!("ouro-publish-check-{}", std::process::id()));
    let _ = fs::remove_dir_all(&scratch);
    fs::create_dir_all(&scratch).map_err(|e| format!("creating {}: {e}", scratch.display()))?;
    let root = workspace
        .package("ouro-gc")
        .ok_or("publish-check: no package ouro-gc in the workspace")?;
    let manifest = fs::read_to_string(root.dir.join("Cargo.toml"))
        .map_err(|e| format!("publish-check: reading Cargo.toml: {e}"))?;
    // Every crate takes `version.workspace = true`.
    let version =
        manifest_string(&manifest, "version").ok_or("publish-check: no `version` in Cargo.toml")?;
    let package_dir = workspace.target_dir.join("package");
    let mut unpacked = Vec::new();
    for name in PUBLISHED {
        let archive = package_dir.join(format!("{name}-{version}.crate"));
        session.step(
            &format!("unpack {name}"),
            std::process::Command::new("tar")
                .arg("xzf")
                .arg(&archive)
                .arg("-C")
                .arg(&scratch),
        )?;
        unpacked.push((name, scratch.join(format!("{name}-{version}"))));
    }
    let patches: Vec<String> = unpacked
        .iter()
        .map(|(name, dir)| format!("patch.crates-io.{name}.path={}", toml_string(dir)))
        .collect();
    let target_dir = scratch.join("target");
    for (name, dir) in &unpacked {
        for (what, args) in [
            ("tests build", &["test", "--no-run", "--all-targets"][..]),
            ("doctests", &["test", "--doc"][..]),
        ] {
            let mut cmd = packaged_cargo(session, dir, &target_dir, &patches);
            cmd.args(args);
            session.step(&format!("{name}: {what}"), &mut cmd)?;
        }
    }
    let _ = fs::remove_dir_all(&scratch);
    Ok(())
}

/// `cargo` run inside an unpacked crate, with the internal crates patched
/// to their unpacked copies.
fn packaged_cargo(
    session: &Session,
    dir: &Path,
    target_dir: &PathBuf,
    patches: &[String],
) -> std::process::Command {
    let mut cmd = session.cargo();
    cmd.current_dir(dir).env("CARGO_TARGET_DIR", target_dir);
    for patch in patches {
        cmd.args(["--config", patch]);
    }
    cmd
}

/// A path as a TOML basic string.
fn toml_string(path: &Path) -> String {
    let text = path.display().to_string();
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_paths_for_toml() {
        assert_eq!(toml_string(Path::new("/tmp/a b")), "\"/tmp/a b\"");
        assert_eq!(toml_string(Path::new("C:\\x\"y")), "\"C:\\\\x\\\"y\"");
    }
}
