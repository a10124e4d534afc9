//! Host-side helpers: running commands, finding tools, the cache folder.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::VmError;

/// Runs a command and returns its stdout; a non-zero exit becomes an error
/// whose message carries stderr and `hint`.
pub(crate) fn run(cmd: &mut Command, hint: &str) -> Result<String, VmError> {
    let shown = format!("{cmd:?}");
    let out = cmd.output().map_err(|e| VmError::Command {
        command: shown.clone(),
        status: "could not start".into(),
        stderr: e.to_string(),
        hint: hint.to_string(),
    })?;
    if !out.status.success() {
        return Err(VmError::Command {
            command: shown,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            hint: hint.to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> VmError {
    let context = context.into();
    move |source| VmError::Io { context, source }
}

const SEARCH_DIRS: &[&str] = &["/usr/sbin", "/usr/bin", "/sbin", "/bin"];

/// Finds a host program in the system directories (not $PATH, so a user's
/// ~/bin can't change what goes into the guest).
pub(crate) fn find_program(name: &str, package: &str) -> Result<PathBuf, VmError> {
    for dir in SEARCH_DIRS {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return Ok(p);
        }
    }
    Err(VmError::MissingTool {
        what: name.to_string(),
        package: package.to_string(),
        detail: format!("not found in {}", SEARCH_DIRS.join(", ")),
    })
}

/// The cache folder: `$VMTEST_CACHE_DIR`, else `<target dir>/vmtest-cache`
/// where the target dir is `$CARGO_TARGET_DIR` or the workspace's `target/`.
pub(crate) fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("VMTEST_CACHE_DIR") {
        return PathBuf::from(d);
    }
    target_dir().join("vmtest-cache")
}

pub(crate) fn target_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR") {
        let d = PathBuf::from(d);
        if d.is_absolute() {
            return d;
        }
        return workspace_root().join(d);
    }
    workspace_root().join("target")
}

fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// An exclusive lock on a file in the cache, held until dropped, so that
/// concurrent tests (threads or processes) build each cached thing once.
pub(crate) struct CacheLock {
    _file: File,
}

pub(crate) fn lock_cache(dir: &Path, name: &str) -> Result<CacheLock, VmError> {
    std::fs::create_dir_all(dir).map_err(io_err(format!(
        "creating cache folder {} (set VMTEST_CACHE_DIR to a writable folder)",
        dir.display()
    )))?;
    let path = dir.join(format!("{name}.lock"));
    let file = File::create(&path).map_err(io_err(format!("creating {}", path.display())))?;
    file.lock()
        .map_err(io_err(format!("locking {}", path.display())))?;
    Ok(CacheLock { _file: file })
}

/// Writes `data` to `path` atomically (temp file + rename).
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<(), VmError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io_err(format!("creating {}", dir.display())))?;
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(io_err(format!(
        "creating a temporary file in {}",
        dir.display()
    )))?;
    std::fs::write(tmp.path(), data)
        .map_err(io_err(format!("writing {}", tmp.path().display())))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644))
            .map_err(io_err(format!("chmod {}", tmp.path().display())))?;
    }
    tmp.persist(path).map_err(|e| VmError::Io {
        context: format!("renaming into {}", path.display()),
        source: e.error,
    })?;
    Ok(())
}
