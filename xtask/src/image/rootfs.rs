//! The image's files as one sorted map from path to entry. Both outputs are written
//! from it: the folder the Dockerfile copies ([`write_dir`]) and the OCI layer
//! ([`tar_of`]), so the two cannot list different files.
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use super::{licences, Metadata};

pub const BINARY: &str = "/usr/local/bin/linstor-provision-disk";
/// The seed's pod spec runs `homelab-helper linstor-provision-disk`; the binary drops
/// that prefix.
pub const ALIAS: &str = "/usr/local/bin/homelab-helper";
/// The seed's recovery step is `rm /tmp/.disk-provisioner-wait` in the container; the
/// image has no coreutils, so `rm` is the binary, which removes only the hold marker.
pub const RM: &str = "/usr/bin/rm";
/// LVM runs this (its built-in `thin_check_executable`) when it activates a thin pool.
pub const THIN_CHECK: &str = "/usr/sbin/thin_check";
/// World-writable with the sticky bit: the tool's hold marker lives here.
pub const TMP: &str = "/tmp";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    Dir,
    File(Vec<u8>),
    Symlink(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Permission bits, including setuid/setgid/sticky.
    pub mode: u32,
    pub content: Content,
}

/// Paths relative to `/` (no leading slash). The map's order is the order both
/// writers use: a folder sorts before what it holds.
pub type Files = BTreeMap<String, Entry>;

/// Collects entries, adding the folders they need and refusing two different entries
/// at one path.
#[derive(Default)]
pub struct Tree {
    files: Files,
}

impl Tree {
    pub fn add(&mut self, path: &Path, entry: Entry) -> Result<(), String> {
        let key = relative_key(path)?;
        let mut parents: Vec<&Path> = Path::new(&key).ancestors().skip(1).collect();
        parents.reverse();
        for parent in parents.into_iter().filter(|p| !p.as_os_str().is_empty()) {
            let dir = Entry {
                mode: 0o755,
                content: Content::Dir,
            };
            let parent_key = parent.to_string_lossy().into_owned();
            match self.files.get(&parent_key) {
                None => {
                    self.files.insert(parent_key, dir);
                }
                Some(Entry {
                    content: Content::Dir,
                    ..
                }) => {}
                Some(other) => {
                    return Err(format!(
                        "/{key} needs /{parent_key} to be a folder, but the image already has \
                         {other:?} there"
                    ))
                }
            }
        }
        match self.files.get(&key) {
            Some(existing) if *existing != entry => Err(format!(
                "two different entries for /{key} in the image: {} and {}",
                describe(existing),
                describe(&entry)
            )),
            _ => {
                self.files.insert(key, entry);
                Ok(())
            }
        }
    }

    pub fn add_file(&mut self, path: &Path, bytes: Vec<u8>, mode: u32) -> Result<(), String> {
        self.add(
            path,
            Entry {
                mode,
                content: Content::File(bytes),
            },
        )
    }

    pub fn add_symlink(&mut self, path: &Path, target: &str) -> Result<(), String> {
        self.add(
            path,
            Entry {
                mode: 0o777,
                content: Content::Symlink(target.to_owned()),
            },
        )
    }

    /// Copies `path` from this machine to the same path in the image; a symlink stays
    /// a symlink, and what it points to is copied too.
    pub fn copy_from_host(&mut self, path: &Path) -> Result<(), String> {
        let mut path = path.to_path_buf();
        for _ in 0..8 {
            let meta = std::fs::symlink_metadata(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path)
                    .map_err(|e| format!("cannot read the symlink {}: {e}", path.display()))?;
                let target_text = target.to_str().ok_or_else(|| {
                    format!("the symlink {} points to a non-UTF-8 path", path.display())
                })?;
                self.add_symlink(&path, target_text)?;
                let parent = path.parent().unwrap_or(Path::new("/"));
                path = normalize(&parent.join(target));
                continue;
            }
            if !meta.is_file() {
                return Err(format!(
                    "{} is neither a file nor a symlink; the image copies only those",
                    path.display()
                ));
            }
            let bytes =
                std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            return self.add_file(&path, bytes, meta.permissions().mode() & 0o7777);
        }
        Err(format!(
            "{} is a chain of more than 8 symlinks",
            path.display()
        ))
    }

    pub fn into_files(self) -> Files {
        self.files
    }
}

fn describe(entry: &Entry) -> String {
    match &entry.content {
        Content::Dir => format!("a folder (mode {:o})", entry.mode),
        Content::File(bytes) => format!("a file of {} bytes (mode {:o})", bytes.len(), entry.mode),
        Content::Symlink(target) => format!("a symlink to {target}"),
    }
}

/// `/usr/sbin/x` → `usr/sbin/x`; refuses `.`, `..` and relative paths.
fn relative_key(path: &Path) -> Result<String, String> {
    let mut parts = Vec::new();
    for component in path.components() {
        match component {
            Component::RootDir => {}
            Component::Normal(part) => {
                parts.push(part.to_str().ok_or_else(|| {
                    format!("{} is not UTF-8; image paths must be", path.display())
                })?)
            }
            _ => {
                return Err(format!(
                    "{} is not a plain absolute path; image paths must be",
                    path.display()
                ))
            }
        }
    }
    if !path.is_absolute() || parts.is_empty() {
        return Err(format!(
            "{} is not an absolute path below /",
            path.display()
        ));
    }
    Ok(parts.join("/"))
}

/// Resolves `.` and `..` lexically (symlink targets on Debian stay inside `/`).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(part) => out.push(part),
            _ => {}
        }
    }
    out
}

/// Everything the image holds: the static binary (from `artifact`), its alias, this
/// machine's thin_check with exactly the libraries `ldd` lists, `/tmp` and the
/// licence texts.
pub fn plan(artifact: &Path, meta: &Metadata) -> Result<Files, String> {
    let mut tree = Tree::default();
    let binary =
        std::fs::read(artifact).map_err(|e| format!("cannot read {}: {e}", artifact.display()))?;
    tree.add_file(Path::new(BINARY), binary, 0o755)?;
    let alias_target = Path::new(BINARY)
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    tree.add_symlink(Path::new(ALIAS), &alias_target)?;
    tree.add_symlink(Path::new(RM), BINARY)?;
    tree.add(
        Path::new(TMP),
        Entry {
            mode: 0o1777,
            content: Content::Dir,
        },
    )?;

    let thin_check = std::fs::canonicalize(THIN_CHECK).map_err(|e| {
        format!(
            "cannot find {THIN_CHECK} ({e}); the image ships this machine's copy: install \
             thin-provisioning-tools (`sudo cargo xtask deps`)"
        )
    })?;
    tree.copy_from_host(Path::new(THIN_CHECK))?;
    let libraries = shared_libraries(&thin_check)?;
    for library in &libraries {
        tree.copy_from_host(library)?;
    }
    let mut shipped = vec![thin_check];
    shipped.extend(libraries);
    licences::add(&mut tree, &shipped, meta)?;
    Ok(tree.into_files())
}

/// The shared libraries and the loader `ldd` lists for `executable`, at the paths it
/// names.
fn shared_libraries(executable: &Path) -> Result<Vec<PathBuf>, String> {
    let out = Command::new("ldd")
        .arg(executable)
        .output()
        .map_err(|e| format!("cannot run ldd {}: {e}", executable.display()))?;
    if !out.status.success() {
        return Err(format!(
            "ldd {} failed with {}: {}",
            executable.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    parse_ldd(&String::from_utf8_lossy(&out.stdout))
        .map_err(|why| format!("ldd {}: {why}", executable.display()))
}

/// Paths from `ldd` output: `name => /path (0x…)` and the loader's `/path (0x…)`;
/// the vDSO (no path) is part of the kernel.
pub fn parse_ldd(output: &str) -> Result<Vec<PathBuf>, String> {
    let mut paths = Vec::new();
    for line in output.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let resolved = match line.split_once("=>") {
            Some((name, rest)) => {
                let rest = rest.trim();
                if rest.starts_with("not found") {
                    return Err(format!(
                        "the library {} is not found; install the package that provides it",
                        name.trim()
                    ));
                }
                rest
            }
            None => line,
        };
        let first = resolved.split_whitespace().next().unwrap_or("");
        if first.starts_with('/') {
            paths.push(PathBuf::from(first));
        } else if line.contains("not a dynamic executable") || line.contains("statically linked") {
            return Err(format!("expected a dynamic executable, ldd says {line:?}"));
        }
    }
    if paths.is_empty() {
        return Err(format!("no library paths in {output:?}"));
    }
    Ok(paths)
}

/// Bytes held in regular files.
pub fn file_bytes(files: &Files) -> u64 {
    files
        .values()
        .map(|entry| match &entry.content {
            Content::File(bytes) => bytes.len() as u64,
            _ => 0,
        })
        .sum()
}

/// Writes `files` into `dir`, replacing what was there, all timestamps `epoch`.
pub fn write_dir(files: &Files, dir: &Path, epoch: u64) -> Result<(), String> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)
            .map_err(|e| format!("cannot remove the old {}: {e}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for (path, entry) in files {
        let dest = dir.join(path);
        let written = match &entry.content {
            Content::Dir => std::fs::create_dir(&dest),
            Content::File(bytes) => std::fs::write(&dest, bytes),
            Content::Symlink(target) => std::os::unix::fs::symlink(target, &dest),
        };
        written.map_err(|e| format!("cannot create {}: {e}", dest.display()))?;
        if !matches!(entry.content, Content::Symlink(_)) {
            std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(entry.mode))
                .map_err(|e| format!("cannot set the mode of {}: {e}", dest.display()))?;
        }
    }
    // Contents before their folders: creating an entry changes its folder's mtime.
    let time = filetime::FileTime::from_unix_time(i64::try_from(epoch).unwrap_or(0), 0);
    for path in files.keys().rev() {
        let dest = dir.join(path);
        filetime::set_symlink_file_times(&dest, time, time)
            .map_err(|e| format!("cannot set the times of {}: {e}", dest.display()))?;
    }
    Ok(())
}

/// `files` as a tar stream: ustar headers, owner 0:0 with no names, every mtime
/// `epoch`, in the map's order — the same bytes for the same files.
pub fn tar_of(files: &Files, epoch: u64) -> Result<Vec<u8>, String> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, entry) in files {
        let mut header = tar::Header::new_ustar();
        header.set_mtime(epoch);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mode(entry.mode);
        let appended = match &entry.content {
            Content::Dir => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                builder.append_data(&mut header, format!("{path}/"), std::io::empty())
            }
            Content::File(bytes) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(bytes.len() as u64);
                builder.append_data(&mut header, path, bytes.as_slice())
            }
            Content::Symlink(target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                builder.append_link(&mut header, path, target)
            }
        };
        appended.map_err(|e| format!("cannot add /{path} to the tar: {e}"))?;
    }
    builder
        .into_inner()
        .map_err(|e| format!("cannot finish the tar: {e}"))
}
