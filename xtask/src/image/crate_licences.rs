//! The licence texts of the Rust crates linked into the static binary. Each crate on
//! crates.io carries its own (MIT notices name their authors), so they are collected
//! from the crates' sources as cargo resolved them for the shipped build.
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

/// The shipped build's features (as `cargo xtask dist` builds it).
const FEATURES: &str = "lvm2cmd,static-blkid";
const ROOT_PACKAGE: &str = "linstor-provision-disk";

/// One crate linked into the binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crate {
    pub name: String,
    pub version: String,
    /// The licence expression of its manifest.
    pub license: String,
    /// (file name, text) of its LICENSE*/LICENCE*/COPYING*/NOTICE* files.
    pub texts: Vec<(String, String)>,
}

/// The crates the shipped binary links (normal dependencies, transitively, for the
/// musl target `target` and the dist features), without the workspace's own packages.
pub fn linked_crates(workspace: &Path, target: &str) -> Result<Vec<Crate>, String> {
    let output = crate::packages::cargo()
        .current_dir(workspace)
        .args(["metadata", "--format-version", "1", "--locked"])
        .args(["--filter-platform", target])
        .args(["--no-default-features", "--features", FEATURES])
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let metadata: Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("cargo metadata printed no JSON: {e}"))?;
    let ids = linked_ids(&metadata)?;
    let mut crates = Vec::new();
    for package in metadata["packages"].as_array().into_iter().flatten() {
        let id = package["id"].as_str().unwrap_or_default();
        if !ids.contains(id) || package["source"].is_null() {
            continue; // not linked, or a workspace member (ours)
        }
        let manifest = package["manifest_path"].as_str().unwrap_or_default();
        let dir = Path::new(manifest)
            .parent()
            .ok_or_else(|| format!("cargo metadata names no folder for {id}"))?;
        crates.push(Crate {
            name: package["name"].as_str().unwrap_or_default().to_owned(),
            version: package["version"].as_str().unwrap_or_default().to_owned(),
            license: package["license"]
                .as_str()
                .unwrap_or("(no licence expression)")
                .to_owned(),
            texts: licence_files(dir)?,
        });
    }
    crates.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
    Ok(crates)
}

/// Package ids reachable from the root package through normal dependencies; a
/// proc-macro crate runs in the compiler only, so it and what only it uses are left out.
fn linked_ids(metadata: &Value) -> Result<BTreeSet<String>, String> {
    let proc_macros: BTreeSet<&str> = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| {
            p["targets"].as_array().into_iter().flatten().any(|t| {
                t["kind"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|k| k == "proc-macro")
            })
        })
        .filter_map(|p| p["id"].as_str())
        .collect();
    let nodes: BTreeMap<&str, &Value> = metadata["resolve"]["nodes"]
        .as_array()
        .ok_or("cargo metadata has no resolve graph")?
        .iter()
        .filter_map(|node| Some((node["id"].as_str()?, node)))
        .collect();
    let root = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == ROOT_PACKAGE && p["source"].is_null())
        .and_then(|p| p["id"].as_str())
        .ok_or_else(|| format!("cargo metadata does not list {ROOT_PACKAGE}"))?;
    let mut seen = BTreeSet::new();
    let mut todo = vec![root.to_owned()];
    while let Some(id) = todo.pop() {
        if !seen.insert(id.clone()) {
            continue;
        }
        let Some(node) = nodes.get(id.as_str()) else {
            continue;
        };
        for dep in node["deps"].as_array().into_iter().flatten() {
            let normal = dep["dep_kinds"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|kind| kind["kind"].is_null());
            match dep["pkg"].as_str() {
                Some(pkg) if normal && !proc_macros.contains(pkg) => todo.push(pkg.to_owned()),
                _ => {}
            }
        }
    }
    Ok(seen)
}

/// The licence files at the top of a crate's source folder.
fn licence_files(dir: &Path) -> Result<Vec<(String, String)>, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut texts = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let upper = name.to_ascii_uppercase();
        let is_licence = ["LICENSE", "LICENCE", "COPYING", "NOTICE", "UNLICENSE"]
            .iter()
            .any(|prefix| upper.starts_with(prefix));
        if is_licence && entry.path().is_file() {
            let text = std::fs::read_to_string(entry.path())
                .map_err(|e| format!("cannot read {}: {e}", entry.path().display()))?;
            texts.push((name, text));
        }
    }
    texts.sort();
    Ok(texts)
}

/// One notice file for all crates; a text identical (up to whitespace) to one given
/// before is referred to instead of repeated.
pub fn notice(crates: &[Crate]) -> String {
    let mut out = String::from(
        "Rust crates linked into /usr/local/bin/linstor-provision-disk, with the licence\n\
         texts each crate carries (as resolved by cargo for the shipped build).\n",
    );
    let mut printed: BTreeMap<String, String> = BTreeMap::new();
    for krate in crates {
        out.push_str(&format!(
            "\n=== {} {} — {}\n",
            krate.name, krate.version, krate.license
        ));
        if krate.texts.is_empty() {
            out.push_str(
                "(the crate ships no licence file; its licence expression above applies)\n",
            );
        }
        for (file, text) in &krate.texts {
            let key: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
            let here = format!("{} {}/{file}", krate.name, krate.version);
            match printed.get(&key) {
                Some(first) => out.push_str(&format!("--- {file}: same text as {first}\n")),
                None => {
                    out.push_str(&format!("--- {file}\n{}\n", text.trim_end()));
                    printed.insert(key, here);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_texts_are_referred_to_once_printed() {
        let mit = |who: &str| {
            format!("MIT License\n\nCopyright (c) {who}\n\nPermission is hereby granted")
        };
        let crates = vec![
            Crate {
                name: "a".into(),
                version: "1.0.0".into(),
                license: "MIT OR Apache-2.0".into(),
                texts: vec![
                    ("LICENSE-APACHE".into(), "Apache text".into()),
                    ("LICENSE-MIT".into(), mit("A")),
                ],
            },
            Crate {
                name: "b".into(),
                version: "2.0.0".into(),
                license: "Apache-2.0".into(),
                texts: vec![("LICENSE".into(), "Apache  text\n".into())],
            },
            Crate {
                name: "c".into(),
                version: "0.1.0".into(),
                license: "MIT".into(),
                texts: vec![("LICENSE".into(), mit("C"))],
            },
        ];
        let text = notice(&crates);
        assert_eq!(text.matches("Apache text").count(), 1, "{text}");
        assert!(text.contains("--- LICENSE: same text as a 1.0.0/LICENSE-APACHE"));
        assert!(text.contains("Copyright (c) A") && text.contains("Copyright (c) C"));
    }

    #[test]
    fn the_shipped_build_links_known_crates_with_their_texts() {
        let crates = linked_crates(&super::super::workspace_root(), "x86_64-unknown-linux-musl")
            .unwrap_or_else(|e| panic!("{e}"));
        let names: Vec<&str> = crates.iter().map(|c| c.name.as_str()).collect();
        for expected in ["clap", "nix", "serde"] {
            assert!(names.contains(&expected), "{expected} missing: {names:?}");
        }
        // Build-only, compiler-only (proc-macro) and feature-gated crates are not
        // linked into the musl build.
        for absent in ["bindgen", "udev", "cc", "serde_derive", "syn"] {
            assert!(!names.contains(&absent), "{absent} listed: {names:?}");
        }
        let clap = crates
            .iter()
            .find(|c| c.name == "clap")
            .unwrap_or_else(|| panic!("no clap"));
        assert!(
            !clap.texts.is_empty(),
            "clap's licence files were not found"
        );
    }
}
