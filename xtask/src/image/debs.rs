//! Where a variant's thin_check and its libraries come from: this machine's installed
//! packages when the variant is this machine's architecture, otherwise Debian's
//! packages of that architecture, downloaded with a private apt configuration (the
//! system's sources, keys and checks; not its package lists, its dpkg database or
//! its architectures) and unpacked with `dpkg-deb -x` into a cache below `target/`.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::packages::Arch;

/// The package whose `thin_check` the image ships; its `Depends` are followed.
pub const THIN_CHECK_PACKAGE: &str = "thin-provisioning-tools";

/// Marks a complete cache; it holds the packages and versions unpacked.
const READY: &str = "READY";
/// `path<TAB>package` for every path the unpacked packages hold.
const OWNERS: &str = "owners.tsv";

/// A root folder holding Debian packages' files, and who owns them.
pub struct PackageRoot {
    /// `/` for this machine, else the folder the packages are unpacked into.
    pub root: PathBuf,
    /// For unpacked packages: image path (`/usr/sbin/thin_check`) → package.
    /// None for this machine, where `dpkg-query -S` answers.
    owners: Option<BTreeMap<String, String>>,
    /// `package version` lines (unpacked packages only), for the build's log.
    pub versions: Vec<String>,
}

impl PackageRoot {
    fn this_machine() -> PackageRoot {
        PackageRoot {
            root: PathBuf::from("/"),
            owners: None,
            versions: Vec::new(),
        }
    }

    /// The file or symlink at image path `path` (absolute) inside this root.
    pub fn host_path(&self, path: &Path) -> PathBuf {
        match path.strip_prefix("/") {
            Ok(relative) => self.root.join(relative),
            Err(_) => self.root.join(path),
        }
    }

    /// The package that installed the image path `path`, None if no package did.
    pub fn owner(&self, path: &Path) -> Option<String> {
        match &self.owners {
            Some(owners) => owners.get(path.to_str()?).cloned(),
            None => dpkg_owner(path),
        }
    }
}

/// The Debian package that installed `path` on this machine (`dpkg-query -S`).
fn dpkg_owner(path: &Path) -> Option<String> {
    let out = Command::new("dpkg-query")
        .arg("-S")
        .arg(path)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let owner = text
        .lines()
        .filter(|line| !line.starts_with("diversion "))
        .find_map(|line| line.split_once(": ").map(|(package, _)| package.to_owned()))?;
    // `libc6:amd64` → `libc6`; one path has one owner here.
    Some(
        owner
            .split([':', ','])
            .next()
            .unwrap_or(&owner)
            .trim()
            .to_owned(),
    )
}

/// dpkg's architecture of this machine (`amd64`, `arm64`).
pub fn native_debian_arch() -> Result<String, String> {
    let out = Command::new("dpkg")
        .arg("--print-architecture")
        .output()
        .map_err(|e| format!("cannot run dpkg --print-architecture: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "dpkg --print-architecture failed with {}",
            out.status
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The packages the variant for `arch` takes thin_check from.
pub fn for_arch(arch: Arch) -> Result<PackageRoot, String> {
    if native_debian_arch()? == arch.debian_arch() {
        return Ok(PackageRoot::this_machine());
    }
    unpacked(arch, &crate::packages::target_dir().join("image-debs"))
}

/// [`THIN_CHECK_PACKAGE`] of `arch` and every package it depends on, unpacked into
/// `cache/<arch>/root`; downloaded once, then reused while `READY` is there.
pub fn unpacked(arch: Arch, cache: &Path) -> Result<PackageRoot, String> {
    let dir = cache.join(arch.debian_arch());
    let root = dir.join("root");
    let ready = dir.join(READY);
    if !ready.exists() {
        fetch(arch, &dir)?;
    }
    let versions = read(&ready)?.lines().map(str::to_owned).collect();
    let mut owners = BTreeMap::new();
    for line in read(&dir.join(OWNERS))?.lines() {
        let (path, package) = line.split_once('\t').ok_or_else(|| {
            format!(
                "{} has a line without a tab: {line:?}; delete {} to download again",
                dir.join(OWNERS).display(),
                dir.display()
            )
        })?;
        owners.insert(path.to_owned(), package.to_owned());
    }
    Ok(PackageRoot {
        root,
        owners: Some(owners),
        versions,
    })
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn mkdir(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))
}

/// Downloads and unpacks into the empty folder `dir`, writing `READY` last.
fn fetch(arch: Arch, dir: &Path) -> Result<(), String> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)
            .map_err(|e| format!("cannot clear the half-made {}: {e}", dir.display()))?;
    }
    let apt_dir = dir.join("apt");
    let download = dir.join("download");
    let root = dir.join("root");
    for folder in [
        apt_dir.join("lists/partial"),
        apt_dir.join("cache/archives/partial"),
        apt_dir.join("sources.list.d"),
        download.clone(),
        root.clone(),
    ] {
        mkdir(&folder)?;
    }
    write_sources(&apt_dir)?;
    write(&apt_dir.join("status"), "")?;
    let apt = private_apt(&apt_dir, arch);
    crate::packages::run(Command::new("apt-get").args(&apt).arg("update"))
        .map_err(|e| format!("{e}; is the Debian archive reachable?"))?;

    // Breadth-first over `Pre-Depends`/`Depends`, one apt-get download per round.
    let mut wanted = vec![THIN_CHECK_PACKAGE.to_owned()];
    let mut seen = BTreeSet::new();
    let mut debs = BTreeMap::new();
    while !wanted.is_empty() {
        crate::packages::run(
            Command::new("apt-get")
                .args(&apt)
                .arg("download")
                .args(&wanted)
                .current_dir(&download),
        )
        .map_err(|e| {
            format!(
                "{e}; the {} image variant needs these {} packages",
                arch.oci_arch(),
                arch.debian_arch()
            )
        })?;
        seen.extend(wanted.iter().cloned());
        let mut next = BTreeSet::new();
        for package in std::mem::take(&mut wanted) {
            let deb = downloaded_deb(&download, &package, arch)?;
            for field in ["Pre-Depends", "Depends"] {
                for dependency in depends(&control_field(&deb, field)?) {
                    if !seen.contains(&dependency) {
                        next.insert(dependency);
                    }
                }
            }
            debs.insert(package, deb);
        }
        wanted = next.into_iter().collect();
    }

    let mut owners = String::new();
    let mut versions = String::new();
    for (package, deb) in &debs {
        crate::packages::run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(&root))?;
        for path in deb_paths(deb)? {
            owners.push_str(&format!("{path}\t{package}\n"));
        }
        versions.push_str(&format!(
            "{package} {}\n",
            control_field(deb, "Version")?.trim()
        ));
    }
    write(&dir.join(OWNERS), &owners)?;
    write(&dir.join(READY), &versions)
}

/// apt options for a private package index of `arch` alone: the system's sources
/// (copied by [`write_sources`]) and keys, no installed packages.
fn private_apt(apt_dir: &Path, arch: Arch) -> Vec<String> {
    let options = [
        format!(
            "Dir::Etc::SourceList={}",
            apt_dir.join("sources.list").display()
        ),
        format!(
            "Dir::Etc::SourceParts={}",
            apt_dir.join("sources.list.d").display()
        ),
        format!("Dir::State::Lists={}", apt_dir.join("lists").display()),
        format!("Dir::State::status={}", apt_dir.join("status").display()),
        format!("Dir::Cache={}", apt_dir.join("cache").display()),
        format!("APT::Architecture={}", arch.debian_arch()),
        format!("APT::Architectures={}", arch.debian_arch()),
        // Downloads land in a root-owned folder; don't drop to the _apt user.
        "APT::Sandbox::User=root".to_owned(),
    ];
    let mut args = vec!["-q".to_owned()];
    for option in options {
        args.push("-o".to_owned());
        args.push(option);
    }
    args
}

/// The system's `deb` sources (one-line and deb822 files), copied as they are.
fn write_sources(apt_dir: &Path) -> Result<(), String> {
    let mut one_line = String::new();
    let mut deb822 = String::new();
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(entries) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        more.sort();
        files.extend(more);
    }
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let name = file.to_string_lossy();
        if name.ends_with(".list") || name.ends_with("sources.list") {
            for line in text.lines().map(str::trim_start) {
                if line.starts_with("deb ") {
                    one_line.push_str(line);
                    one_line.push('\n');
                }
            }
        } else if name.ends_with(".sources") {
            deb822.push_str(&text);
            deb822.push_str("\n\n");
        }
    }
    if one_line.is_empty() && deb822.is_empty() {
        return Err(
            "no apt source in /etc/apt/sources.list or /etc/apt/sources.list.d/: the image's \
             arm64 variant downloads Debian's thin-provisioning-tools:arm64 and its libraries \
             from the archive this machine uses; configure apt for a Debian archive first"
                .into(),
        );
    }
    write(&apt_dir.join("sources.list"), &one_line)?;
    write(&apt_dir.join("sources.list.d/system.sources"), &deb822)
}

/// The `.deb` that `apt-get download <package>` left in `dir`.
fn downloaded_deb(dir: &Path, package: &str, arch: Arch) -> Result<PathBuf, String> {
    let prefix = format!("{package}_");
    let suffix = format!("_{}.deb", arch.debian_arch());
    let all = "_all.deb";
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    entries
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name().is_some_and(|n| {
                let n = n.to_string_lossy();
                n.starts_with(&prefix) && (n.ends_with(&suffix) || n.ends_with(all))
            })
        })
        .ok_or_else(|| {
            format!(
                "apt-get download {package} left no {prefix}*{suffix} in {}",
                dir.display()
            )
        })
}

/// One field of a .deb's control file; empty when the package has none.
fn control_field(deb: &Path, field: &str) -> Result<String, String> {
    let out = Command::new("dpkg-deb")
        .arg("--field")
        .arg(deb)
        .arg(field)
        .output()
        .map_err(|e| format!("cannot run dpkg-deb --field {}: {e}", deb.display()))?;
    if !out.status.success() {
        return Err(format!(
            "dpkg-deb --field {} {field} failed with {}: {}",
            deb.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Package names of a `Depends` value: the first of each set of alternatives,
/// without version or architecture qualifiers.
pub fn depends(value: &str) -> Vec<String> {
    value
        .split(',')
        .filter_map(|clause| {
            let first = clause.split('|').next()?.trim();
            let name = first.split([' ', '(', '[']).next()?.trim();
            let name = name.split(':').next()?;
            (!name.is_empty()).then(|| name.to_owned())
        })
        .collect()
}

/// The image paths (`/usr/sbin/thin_check`) of what `deb` holds, folders left out.
fn deb_paths(deb: &Path) -> Result<Vec<String>, String> {
    let out = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(deb)
        .output()
        .map_err(|e| format!("cannot run dpkg-deb --fsys-tarfile {}: {e}", deb.display()))?;
    if !out.status.success() {
        return Err(format!(
            "dpkg-deb --fsys-tarfile {} failed with {}",
            deb.display(),
            out.status
        ));
    }
    let mut archive = tar::Archive::new(out.stdout.as_slice());
    let entries = archive
        .entries()
        .map_err(|e| format!("cannot read the files of {}: {e}", deb.display()))?;
    let mut paths = Vec::new();
    for entry in entries {
        let entry =
            entry.map_err(|e| format!("cannot read the files of {}: {e}", deb.display()))?;
        if entry.header().entry_type().is_dir() {
            continue;
        }
        let path = entry
            .path()
            .map_err(|e| format!("a file of {} has a bad name: {e}", deb.display()))?;
        let text = path.to_string_lossy();
        let relative = text.trim_start_matches("./").trim_start_matches('/');
        if relative.contains(['\t', '\n']) {
            return Err(format!(
                "{} holds {relative:?}, a name with a tab or newline",
                deb.display()
            ));
        }
        paths.push(format!("/{relative}"));
    }
    Ok(paths)
}
