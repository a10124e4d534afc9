//! What the static musl builds of LVM2 and libblkid share: Debian source packages
//! fetched through a private `deb-src` list (the system's apt configuration is not
//! touched), kernel headers for musl-gcc, logged build steps and a cache key.
use super::toolchain::CToolchain;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A source package unpacked by [`fetch`].
pub(super) struct SourcePackage {
    /// The unpacked tree.
    pub dir: PathBuf,
    /// Debian's version of the package, e.g. `2.38.1-5+deb12u3`.
    pub debian_version: String,
}

/// Downloads Debian's source packages `names` into `work/download` and unpacks
/// each into `work/<name>`, in the order given.
pub(super) fn fetch(work: &Path, names: &[&str]) -> Result<Vec<SourcePackage>, String> {
    let apt_dir = work.join("apt");
    write_source_lists(&apt_dir)?;
    let apt = private_apt(&apt_dir);
    run_logged(
        Command::new("apt-get").args(&apt).arg("update"),
        &work.join("apt-update.log"),
        "apt-get update (deb-src lists) failed; is the Debian archive reachable?",
    )?;
    let download = work.join("download");
    mkdir(&download)?;
    run_logged(
        Command::new("apt-get")
            .args(&apt)
            .args(["source", "--download-only"])
            .args(names)
            .current_dir(&download),
        &work.join("apt-source.log"),
        &format!("apt-get source --download-only {} failed", names.join(" ")),
    )?;
    let mut unpacked = Vec::new();
    for name in names {
        let prefix = format!("{name}_");
        let dsc = find_dsc(&download, &prefix)?;
        let debian_version = dsc
            .file_stem()
            .map(|s| s.to_string_lossy().trim_start_matches(&prefix).to_owned())
            .unwrap_or_default();
        let dir = work.join(name);
        // apt verified the files against the archive's signed index already.
        run_logged(
            Command::new("dpkg-source")
                .args(["--no-check", "-x"])
                .arg(&dsc)
                .arg(&dir),
            &work.join("dpkg-source.log"),
            "dpkg-source -x failed (packages dpkg-dev, xz-utils)",
        )?;
        unpacked.push(SourcePackage {
            dir,
            debian_version,
        });
    }
    Ok(unpacked)
}

/// `cflags` plus a mapping of `target` (where the sources are unpacked and built,
/// and where the headers of the static libblkid live) to a fixed name, for every
/// path the compiler writes into an object (`__FILE__`, `assert`, debug info): the
/// archives are then the same whatever the checkout's path, as is the artifact
/// (the Rust side maps the same folder to the same name, see
/// `super::remap_path_flags`). Not part of the cache keys: it names this machine's
/// folder, and a cache copied to another checkout stays valid.
pub(super) fn cflags_for(cflags: &str, target: &Path) -> String {
    format!(
        "{cflags} -ffile-prefix-map={}=/build/target",
        target.display()
    )
}

/// FNV-1a of `text`: a cache key, not a security boundary.
pub(super) fn cache_key(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Empties `work` (a previous build may have stopped half-way) and creates it.
pub(super) fn fresh_dir(work: &Path) -> Result<(), String> {
    if work.exists() {
        std::fs::remove_dir_all(work)
            .map_err(|e| format!("cannot clear {}: {e}", work.display()))?;
    }
    mkdir(work)
}

/// apt options that point at a private source list and package index, so the
/// system's apt configuration and lists stay as they are.
fn private_apt(apt_dir: &Path) -> Vec<String> {
    vec![
        "-q".into(),
        "-o".into(),
        format!(
            "Dir::Etc::SourceList={}",
            apt_dir.join("sources.list").display()
        ),
        "-o".into(),
        format!(
            "Dir::Etc::SourceParts={}",
            apt_dir.join("sources.list.d").display()
        ),
        "-o".into(),
        format!("Dir::State::Lists={}", apt_dir.join("lists").display()),
        "-o".into(),
        format!("Dir::Cache={}", apt_dir.join("cache").display()),
        // Downloads land in a root-owned folder; don't drop to the _apt user.
        "-o".into(),
        "APT::Sandbox::User=root".into(),
    ]
}

/// The system's `deb` entries turned into `deb-src` entries (same mirrors, suites,
/// keys), in a private apt folder.
fn write_source_lists(apt_dir: &Path) -> Result<(), String> {
    let parts = apt_dir.join("sources.list.d");
    mkdir(&parts)?;
    mkdir(&apt_dir.join("lists/partial"))?;
    mkdir(&apt_dir.join("cache/archives/partial"))?;
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
        if name.ends_with(".list") {
            for line in text.lines() {
                if let Some(rest) = line.trim_start().strip_prefix("deb ") {
                    one_line.push_str(&format!("deb-src {rest}\n"));
                }
            }
        } else if name.ends_with(".sources") {
            for stanza in text.split("\n\n") {
                let is_deb = stanza.lines().any(|l| {
                    l.strip_prefix("Types:")
                        .is_some_and(|t| t.split_whitespace().any(|t| t == "deb"))
                });
                let enabled = !stanza
                    .lines()
                    .any(|l| l.trim().eq_ignore_ascii_case("Enabled: no"));
                if is_deb && enabled {
                    for line in stanza.lines() {
                        if line.starts_with("Types:") {
                            deb822.push_str("Types: deb-src\n");
                        } else if !line.starts_with('#') {
                            deb822.push_str(line);
                            deb822.push('\n');
                        }
                    }
                    deb822.push('\n');
                }
            }
        }
    }
    if one_line.is_empty() && deb822.is_empty() {
        return Err("no `deb` entry found in /etc/apt/sources.list or /etc/apt/sources.list.d/*.{list,sources}: \
             the static build downloads Debian's source packages (lvm2, libaio, util-linux) from the same archive; \
             configure apt for a Debian archive first"
            .into());
    }
    write(&apt_dir.join("sources.list"), &one_line)?;
    write(&parts.join("deb-src.sources"), &deb822)
}

fn find_dsc(dir: &Path, prefix: &str) -> Result<PathBuf, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    entries
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name().is_some_and(|n| {
                let n = n.to_string_lossy();
                n.starts_with(prefix) && n.ends_with(".dsc")
            })
        })
        .ok_or_else(|| format!("apt-get source left no {prefix}*.dsc in {}", dir.display()))
}

/// A folder with `linux`, `asm`, `asm-generic` linked from the installed kernel
/// headers for the toolchain's architecture: musl-gcc searches only musl's include
/// folder.
pub(super) fn kernel_header_dir(work: &Path, toolchain: &CToolchain) -> Result<PathBuf, String> {
    let dir = work.join("kernel-headers");
    mkdir(&dir)?;
    for (name, host, package) in toolchain.kernel_headers {
        if !Path::new(host).is_dir() {
            return Err(format!(
                "{host} is missing; install it with: apt-get install {package}"
            ));
        }
        std::os::unix::fs::symlink(host, dir.join(name))
            .map_err(|e| format!("cannot link {} to {host}: {e}", dir.join(name).display()))?;
    }
    Ok(dir)
}

/// Runs a command with its output in `log`; on failure the error carries the
/// log's tail, the hint and the log's path.
pub(super) fn run_logged(command: &mut Command, log: &Path, hint: &str) -> Result<(), String> {
    eprintln!("xtask: running {command:?} (log: {})", log.display());
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let err = file
        .try_clone()
        .map_err(|e| format!("cannot open {}: {e}", log.display()))?;
    let status = command
        .stdout(file)
        .stderr(err)
        .status()
        .map_err(|e| format!("cannot start {command:?}: {e}; {hint}"))?;
    if status.success() {
        return Ok(());
    }
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(25)..].join("\n");
    Err(format!(
        "{command:?} failed with {status}\n--- last lines of {} ---\n{tail}\n---\n{hint}",
        log.display()
    ))
}

pub(super) fn mkdir(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))
}

pub(super) fn copy(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::copy(from, to)
        .map(|_| ())
        .map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), to.display()))
}

pub(super) fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
