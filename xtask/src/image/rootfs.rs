//! The image's files as one sorted map from path to entry. Both outputs are written
//! from it: the folder the Dockerfile copies ([`write_dir`]) and the OCI layer
//! ([`tar_of`]), so the two cannot list different files.
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path};

use super::libraries::{self, normalize};
use super::{debs, licences, Metadata};
use crate::packages::Arch;
use vmtest::elf;

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

    /// Copies `path` from below `root` (`/` for this machine) to the same path in the
    /// image; a symlink stays a symlink, and what it points to (inside the image) is
    /// copied too.
    pub fn copy_from(&mut self, root: &Path, path: &Path) -> Result<(), String> {
        let mut path = path.to_path_buf();
        for _ in 0..8 {
            let source = root.join(relative_key(&path)?);
            let meta = std::fs::symlink_metadata(&source)
                .map_err(|e| format!("cannot read {}: {e}", source.display()))?;
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&source)
                    .map_err(|e| format!("cannot read the symlink {}: {e}", source.display()))?;
                let target_text = target.to_str().ok_or_else(|| {
                    format!(
                        "the symlink {} points to a non-UTF-8 path",
                        source.display()
                    )
                })?;
                self.add_symlink(&path, target_text)?;
                let parent = path.parent().unwrap_or(Path::new("/"));
                path = normalize(&parent.join(target));
                continue;
            }
            if !meta.is_file() {
                return Err(format!(
                    "{} is neither a file nor a symlink; the image copies only those",
                    source.display()
                ));
            }
            let bytes = std::fs::read(&source)
                .map_err(|e| format!("cannot read {}: {e}", source.display()))?;
            return self.add_file(&path, bytes, meta.permissions().mode() & 0o7777);
        }
        Err(format!(
            "{} is a chain of more than 8 symlinks",
            root.join(relative_key(&path)?).display()
        ))
    }

    /// [`Tree::copy_from`] this machine.
    pub fn copy_from_host(&mut self, path: &Path) -> Result<(), String> {
        self.copy_from(Path::new("/"), path)
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

/// Everything the image variant for `arch` holds: the static binary (from
/// `artifact`), its aliases, `/tmp`, thin_check of `arch` (this machine's when it is
/// `arch`, else Debian's packages of `arch`, see [`debs`]) with exactly the loader and
/// libraries it loads, and the licence texts.
pub fn plan(artifact: &Path, meta: &Metadata, arch: Arch) -> Result<Files, String> {
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

    let packages = debs::for_arch(arch)?;
    if !packages.versions.is_empty() {
        eprintln!(
            "xtask: the {} image's thin_check and libraries come from {} ({})",
            arch.oci_arch(),
            packages.root.display(),
            packages.versions.join(", ")
        );
    }
    let thin_check = Path::new(THIN_CHECK);
    if std::fs::symlink_metadata(packages.host_path(thin_check)).is_err() {
        return Err(format!(
            "{} is missing; the image ships thin-provisioning-tools' thin_check: install it \
             (`sudo cargo xtask deps`)",
            packages.host_path(thin_check).display()
        ));
    }
    tree.copy_from(&packages.root, thin_check)?;
    let libraries = libraries::closure(&packages, thin_check, arch)?;
    for library in &libraries {
        tree.copy_from(&packages.root, library)?;
    }
    let mut shipped = vec![thin_check.to_path_buf()];
    shipped.extend(libraries);
    licences::add(&mut tree, &shipped, meta, &packages, arch)?;
    Ok(tree.into_files())
}

/// Fails unless `artifact` is a static ELF executable for `arch`: the wrong build in
/// a variant would start nowhere.
pub fn check_artifact(artifact: &Path, arch: Arch) -> Result<(), String> {
    let bytes =
        std::fs::read(artifact).map_err(|e| format!("cannot read {}: {e}", artifact.display()))?;
    let needs =
        elf::loader_needs(&bytes).map_err(|why| format!("{}: {why}", artifact.display()))?;
    let expected = libraries::elf_machine(arch);
    if needs.machine != expected {
        return Err(format!(
            "{} is built for {}, but the {} image variant needs {}; build it with \
             `cargo xtask dist --target {}`",
            artifact.display(),
            elf::machine_name(needs.machine),
            arch.oci_arch(),
            elf::machine_name(expected),
            arch.name()
        ));
    }
    if let Some(interpreter) = needs.interpreter {
        return Err(format!(
            "{} loads {interpreter}, expected a static executable (the image has no libraries \
             for it)",
            artifact.display()
        ));
    }
    Ok(())
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
