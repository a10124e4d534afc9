//! A root file system of another architecture (an arm64 Debian root) that guest
//! files are taken from: guest paths resolve inside it, symlinks included, never
//! on the host.

use std::path::{Path, PathBuf};

use crate::VmError;

/// A Debian root of a foreign architecture that guest files are taken from.
#[derive(Debug, Clone)]
pub(crate) struct Sysroot {
    pub(crate) dir: PathBuf,
    /// Guest folders searched for `DT_NEEDED` libraries, in order.
    pub(crate) lib_dirs: &'static [&'static str],
    /// The ELF `e_machine` every executable for this guest must have.
    pub(crate) machine: u16,
    pub(crate) arch: &'static str,
}

/// Symlink hops followed before a path counts as a loop.
const MAX_LINK_HOPS: u32 = 40;

impl Sysroot {
    /// The host file of guest path `path` (absolute): symlinks on the way are
    /// followed inside the root, an absolute target being the root's, not the
    /// host's; the last component is followed only with `follow_last`.
    pub(crate) fn host_path(&self, path: &Path, follow_last: bool) -> Result<PathBuf, VmError> {
        let mut resolved = PathBuf::from("/");
        let mut pending: Vec<std::ffi::OsString> = path
            .components()
            .rev()
            .map(|c| c.as_os_str().to_os_string())
            .collect();
        let mut hops = 0u32;
        while let Some(part) = pending.pop() {
            match part.to_str() {
                Some("/") | Some(".") => continue,
                Some("..") => {
                    resolved.pop();
                    continue;
                }
                _ => {}
            }
            let candidate = resolved.join(&part);
            let host = self
                .dir
                .join(candidate.strip_prefix("/").unwrap_or(&candidate));
            let is_last = pending.is_empty();
            if !is_last || follow_last {
                if let Ok(target) = std::fs::read_link(&host) {
                    hops += 1;
                    if hops > MAX_LINK_HOPS {
                        return Err(VmError::Spec(format!(
                            "{} in {}: more than {MAX_LINK_HOPS} symlinks (a loop?)",
                            path.display(),
                            self.dir.display()
                        )));
                    }
                    if target.is_absolute() {
                        resolved = PathBuf::from("/");
                    }
                    pending.extend(
                        target
                            .components()
                            .rev()
                            .map(|c| c.as_os_str().to_os_string()),
                    );
                    continue;
                }
            }
            resolved = candidate;
        }
        Ok(self
            .dir
            .join(resolved.strip_prefix("/").unwrap_or(&resolved)))
    }

    /// The guest path of library `name`, from the first of `lib_dirs` holding it.
    pub(crate) fn find_library(&self, name: &str, needed_by: &str) -> Result<PathBuf, VmError> {
        for dir in self.lib_dirs {
            let path = Path::new(dir).join(name);
            if std::fs::symlink_metadata(self.host_path(&path, false)?).is_ok() {
                return Ok(path);
            }
        }
        Err(VmError::Spec(format!(
            "shared library {name} (needed by {needed_by}) is not in {} under {}; add the {} \
             package that provides it to the guest root's package list",
            self.lib_dirs.join(", "),
            self.dir.display(),
            self.arch
        )))
    }
}

/// `path` without `.` and `..` components (lexically: guest paths whose folders are
/// no symlinks, as in a Debian root).
pub(crate) fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::Normal(part) => out.push(part),
            _ => {}
        }
    }
    out
}
