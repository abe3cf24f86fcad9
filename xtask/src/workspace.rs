//! What the workspace holds, read from `cargo metadata`: packages, their
//! targets, and the target directory. xtask discovers rather than lists, so
//! crates and test files added later are picked up without editing xtask.

use std::path::PathBuf;
use std::process::Stdio;

use crate::json::Json;
use crate::session::{Result, Session};

/// One workspace member.
#[derive(Debug, Clone)]
pub(crate) struct Package {
    pub(crate) name: String,
    /// The directory holding the package's `Cargo.toml`.
    pub(crate) dir: PathBuf,
    pub(crate) targets: Vec<Target>,
}

/// One build target of a package (`lib`, `test`, `bench`, ...).
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) name: String,
    /// Cargo's kinds, e.g. `["lib"]`, `["proc-macro"]`, `["test"]`.
    pub(crate) kinds: Vec<String>,
}

impl Package {
    /// Whether the package has a target of `kind` named `name` (any name if
    /// `None`).
    pub(crate) fn has_target(&self, kind: &str, name: Option<&str>) -> bool {
        self.targets
            .iter()
            .any(|t| t.kinds.iter().any(|k| k == kind) && name.is_none_or(|n| t.name == n))
    }
}

/// The workspace as cargo sees it.
#[derive(Debug)]
pub(crate) struct Workspace {
    pub(crate) packages: Vec<Package>,
    /// Honours `CARGO_TARGET_DIR` and `build.target-dir`.
    pub(crate) target_dir: PathBuf,
}

impl Workspace {
    /// Runs `cargo metadata --no-deps` (quick: no dependency resolution).
    pub(crate) fn load(session: &Session) -> Result<Workspace> {
        let output = session
            .cargo()
            .args(["metadata", "--no-deps", "--format-version", "1"])
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("could not run cargo metadata: {e}"))?;
        if !output.status.success() {
            return Err(format!("cargo metadata failed ({})", output.status).into());
        }
        let text = String::from_utf8(output.stdout)
            .map_err(|_| "cargo metadata printed invalid UTF-8".to_owned())?;
        Workspace::from_metadata(&text)
    }

    pub(crate) fn from_metadata(text: &str) -> Result<Workspace> {
        let doc = Json::parse(text).map_err(|e| format!("cargo metadata: {e}"))?;
        let target_dir = doc
            .get("target_directory")
            .and_then(Json::as_str)
            .ok_or("cargo metadata: no target_directory")?;
        let packages = doc
            .get("packages")
            .and_then(Json::as_array)
            .ok_or("cargo metadata: no packages")?
            .iter()
            .map(parse_package)
            .collect::<Result<Vec<_>>>()?;
        Ok(Workspace {
            packages,
            target_dir: PathBuf::from(target_dir),
        })
    }

    pub(crate) fn package(&self, name: &str) -> Option<&Package> {
        self.packages.iter().find(|p| p.name == name)
    }
}

fn parse_package(value: &Json) -> Result<Package> {
    let name = value
        .get("name")
        .and_then(Json::as_str)
        .ok_or("cargo metadata: package without name")?;
    let manifest = value
        .get("manifest_path")
        .and_then(Json::as_str)
        .ok_or("cargo metadata: package without manifest_path")?;
    let dir = PathBuf::from(manifest)
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default();
    let targets = value
        .get("targets")
        .and_then(Json::as_array)
        .unwrap_or_default()
        .iter()
        .map(|t| Target {
            name: t
                .get("name")
                .and_then(Json::as_str)
                .unwrap_or_default()
                .to_owned(),
            kinds: t
                .get("kind")
                .and_then(Json::as_array)
                .unwrap_or_default()
                .iter()
                .filter_map(Json::as_str)
                .map(str::to_owned)
                .collect(),
        })
        .collect();
    Ok(Package {
        name: name.to_owned(),
        dir,
        targets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const METADATA: &str = r#"{"packages":[
        {"name":"ouro-pool","manifest_path":"/w/pool/Cargo.toml","targets":[
            {"kind":["lib"],"name":"ouro_pool","src_path":"/w/pool/src/lib.rs"},
            {"kind":["test"],"name":"loom","src_path":"/w/pool/tests/loom.rs"},
            {"kind":["bench"],"name":"alloc","src_path":"/w/pool/benches/alloc.rs"}]},
        {"name":"ouro-macros","manifest_path":"/w/macros/Cargo.toml","targets":[
            {"kind":["proc-macro"],"name":"ouro_macros","src_path":"/w/macros/src/lib.rs"}]}],
        "workspace_members":[],"target_directory":"/w/target","version":1,"workspace_root":"/w"}"#;

    #[test]
    fn reads_packages_targets_and_target_dir() {
        let ws = Workspace::from_metadata(METADATA).unwrap();
        assert_eq!(ws.target_dir, PathBuf::from("/w/target"));
        let pool = ws.package("ouro-pool").unwrap();
        assert_eq!(pool.dir, PathBuf::from("/w/pool"));
        assert!(pool.has_target("lib", None));
        assert!(pool.has_target("test", Some("loom")));
        assert!(!pool.has_target("test", Some("other")));
        let macros = ws.package("ouro-macros").unwrap();
        assert!(!macros.has_target("lib", None));
        assert!(ws.package("nope").is_none());
    }
}
