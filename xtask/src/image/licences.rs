//! The licence texts of what the image ships, as Debian records them: each package's
//! `/usr/share/doc/<package>/copyright` and the `/usr/share/common-licenses/` texts
//! those files cite, plus a copyright file for this tool.
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::debs::PackageRoot;
use super::libraries;
use super::rootfs::{Tree, BINARY};
use super::Metadata;
use crate::packages::Arch;

const DOC: &str = "/usr/share/doc";
const COMMON_LICENSES: &str = "/usr/share/common-licenses/";

/// Code linked into the static binary: the name its copyright file is shipped under,
/// the installed packages (built from the same source) that carry that file, and what
/// it is.
const STATIC_PARTS: &[(&str, &[&str], &str)] = &[
    (
        "lvm2",
        &["lvm2", "dmsetup", "libdevmapper1.02.1"],
        "LVM2's command library and libdevmapper",
    ),
    (
        "util-linux",
        &["util-linux", "libblkid1"],
        "libblkid from util-linux",
    ),
    ("libaio1", &["libaio1", "libaio1t64"], "libaio"),
    ("musl", &["musl"], "the musl C library"),
];

/// Adds the copyright files of the packages (in `packages`) that own `shipped`, of
/// the static binary's parts, this tool's own, and every common licence text they
/// cite. The static parts' and common licence texts are this machine's: they are the
/// same for every architecture.
pub fn add(
    tree: &mut Tree,
    shipped: &[PathBuf],
    meta: &Metadata,
    packages: &PackageRoot,
    arch: Arch,
) -> Result<(), String> {
    let mut texts = Vec::new();
    let owners: BTreeSet<String> = shipped
        .iter()
        .map(|path| owning_package(packages, path))
        .collect::<Result<_, _>>()?;
    for package in &owners {
        texts.push(add_package_copyright(tree, packages, package)?);
    }
    for (name, candidates, _) in STATIC_PARTS {
        let text = read_copyright_of_any(candidates)?;
        let path = Path::new(DOC).join(name).join("copyright");
        tree.add_file(&path, text.clone().into_bytes(), 0o644)?;
        texts.push(text);
    }
    let own = own_copyright(meta);
    tree.add_file(
        &Path::new(DOC).join(super::NAME).join("copyright"),
        own.clone().into_bytes(),
        0o644,
    )?;
    texts.push(own);
    let crates =
        super::crate_licences::linked_crates(&super::workspace_root(), arch.rust_target())?;
    tree.add_file(
        &Path::new(DOC).join(super::NAME).join("rust-crates"),
        super::crate_licences::notice(&crates).into_bytes(),
        0o644,
    )?;
    let cited: BTreeSet<String> = texts.iter().flat_map(|text| cited_licences(text)).collect();
    for name in cited {
        tree.copy_from_host(&Path::new(COMMON_LICENSES).join(&name))
            .map_err(|e| format!("a shipped copyright file cites {COMMON_LICENSES}{name}: {e}"))?;
    }
    Ok(())
}

/// The Debian package that installed image path `path` in `packages` (or the file
/// its links lead to).
pub fn owning_package(packages: &PackageRoot, path: &Path) -> Result<String, String> {
    let mut tried = vec![path.to_path_buf()];
    if let Ok(target) = libraries::resolve(packages, path) {
        tried.push(target);
    }
    // This machine's `/lib` is a link to `/usr/lib`; dpkg knows only one of the two.
    if let Ok(real) = std::fs::canonicalize(packages.host_path(path)) {
        tried.push(real);
    }
    tried
        .iter()
        .find_map(|candidate| packages.owner(candidate))
        .ok_or_else(|| {
            format!(
                "no Debian package owns {} below {}; the image ships only packaged files, \
                 whose copyright it can ship too",
                path.display(),
                packages.root.display()
            )
        })
}

/// Ships `/usr/share/doc/<package>/copyright` from `packages`; a doc folder that
/// Debian links to another package's (libstdc++6 → gcc-12-base) stays a link.
/// Returns the text.
fn add_package_copyright(
    tree: &mut Tree,
    packages: &PackageRoot,
    package: &str,
) -> Result<String, String> {
    let dir = Path::new(DOC).join(package);
    let on_disk = packages.host_path(&dir);
    let meta = std::fs::symlink_metadata(&on_disk).map_err(|e| {
        format!(
            "cannot read {} ({e}); is the package {package} installed?",
            on_disk.display()
        )
    })?;
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(&on_disk)
            .map_err(|e| format!("cannot read the symlink {}: {e}", on_disk.display()))?;
        let sibling = target
            .to_str()
            .filter(|t| !t.is_empty() && !t.contains('/'))
            .ok_or_else(|| {
                format!(
                    "{} links to {}, expected another folder in {DOC}",
                    on_disk.display(),
                    target.display()
                )
            })?;
        tree.add_symlink(&dir, sibling)?;
        return add_package_copyright(tree, packages, sibling);
    }
    let path = dir.join("copyright");
    tree.copy_from(&packages.root, &path)?;
    let on_disk = packages.host_path(&path);
    std::fs::read_to_string(&on_disk).map_err(|e| format!("cannot read {}: {e}", on_disk.display()))
}

fn read_copyright_of_any(packages: &[&str]) -> Result<String, String> {
    for package in packages {
        let path = Path::new(DOC).join(package).join("copyright");
        if let Ok(text) = std::fs::read_to_string(&path) {
            return Ok(text);
        }
    }
    Err(format!(
        "none of {} is installed, so there is no copyright file for a part of the static \
         binary; install one (`sudo cargo xtask deps`)",
        packages.join(", ")
    ))
}

/// Names of the `/usr/share/common-licenses/` texts `text` cites.
pub fn cited_licences(text: &str) -> Vec<String> {
    text.match_indices(COMMON_LICENSES)
        .map(|(at, _)| {
            let rest = &text[at + COMMON_LICENSES.len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '_'))
                .collect();
            name.trim_end_matches('.').to_owned()
        })
        .filter(|name| !name.is_empty())
        .collect()
}

fn own_copyright(meta: &Metadata) -> String {
    let mut text = format!(
        "{name} {version}\n{source}\n\n\
         {BINARY} is free software under the GNU General Public License version 2 only\n\
         (GPL-2.0-only); the licence text is {COMMON_LICENSES}GPL-2.\n\n\
         It is one static executable that also holds:\n",
        name = super::NAME,
        version = meta.version,
        source = meta.source,
    );
    for (name, _, what) in STATIC_PARTS {
        text.push_str(&format!(" - {what}: {DOC}/{name}/copyright\n"));
    }
    text.push_str(
        " - Rust crates from crates.io, each under its own licence: their names,\n   \
         versions, licence expressions and licence texts are in rust-crates next to\n   \
         this file.\n\n\
         /usr/sbin/thin_check (thin-provisioning-tools) and the libraries it loads are\n\
         Debian's; their copyright files are in the folders next to this one.\n",
    );
    text
}
