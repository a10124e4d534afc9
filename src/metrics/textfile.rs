//! Writes a metrics file the way node_exporter's textfile collector needs it: the
//! collector may read the folder at any instant, so the file appears whole or not at
//! all. The text goes to a temporary file in the same folder (same filesystem, so the
//! rename is atomic), created exclusively and without following a symlink (a link
//! planted at the temporary name is never written through), flushed to disk, then
//! renamed over the final name (which replaces a symlink there, not its target), and
//! the folder is flushed so the rename survives a power cut.
//!
//! The temporary name is hidden and does not end in `.prom`, so the collector never
//! reads a half-written file.
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Writes `text` to `path` atomically (see the module docs).
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let name = path.file_name().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the metrics file path names no file",
        )
    })?;
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".{}.tmp", std::process::id()));
    let temp = folder.join(temp_name);
    let result =
        write_then_rename(&temp, path, text).and_then(|()| File::open(&folder)?.sync_all());
    if result.is_err() {
        // Only our own temporary file; a failure to remove it changes nothing.
        let _ = std::fs::remove_file(&temp);
    }
    result
}

fn write_then_rename(temp: &Path, path: &Path, text: &str) -> std::io::Result<()> {
    let create = || {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(
                nix::fcntl::OFlag::O_NOFOLLOW.bits() | nix::fcntl::OFlag::O_CLOEXEC.bits(),
            )
            .open(temp)
    };
    let mut file = match create() {
        // One left by an earlier process with our pid (a kill before the rename):
        // unlink never follows a symlink, so this removes only the name.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::remove_file(temp)?;
            create()?
        }
        other => other?,
    };
    // Readable by a node_exporter that is not root, whatever the umask: LVM's
    // initialisation sets its global/umask (0077 by default) for the whole process.
    file.set_permissions(std::fs::Permissions::from_mode(0o644))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(temp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::partition::test_tree::TempDir;

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map(|it| {
                it.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    #[test]
    fn the_file_is_replaced_whole_and_no_temporary_file_is_left() {
        let dir = TempDir::new("metrics-atomic");
        let path = dir.path().join("lpd.prom");
        for text in ["first\n", "second, longer\n"] {
            assert!(write_atomically(&path, text).is_ok());
            assert_eq!(std::fs::read_to_string(&path).ok().as_deref(), Some(text));
        }
        assert_eq!(entries(dir.path()), vec!["lpd.prom".to_owned()]);
        let mode = std::fs::metadata(&path).map(|m| m.permissions().mode() & 0o777);
        assert_eq!(
            mode.ok(),
            Some(0o644),
            "readable by a node_exporter that is not root"
        );
    }

    #[test]
    fn a_symlink_at_the_temporary_or_final_name_is_never_written_through() {
        let dir = TempDir::new("metrics-symlink");
        let target = dir.path().join("precious");
        if let Err(e) = std::fs::write(&target, "keep") {
            panic!("{e}");
        }
        let path = dir.path().join("lpd.prom");
        let temp = dir
            .path()
            .join(format!(".lpd.prom.{}.tmp", std::process::id()));
        for link in [&temp, &path] {
            if let Err(e) = std::os::unix::fs::symlink(&target, link) {
                panic!("{e}");
            }
        }
        assert!(write_atomically(&path, "metrics\n").is_ok());
        assert_eq!(
            std::fs::read_to_string(&target).ok().as_deref(),
            Some("keep")
        );
        assert_eq!(
            std::fs::read_to_string(&path).ok().as_deref(),
            Some("metrics\n")
        );
        let is_link = std::fs::symlink_metadata(&path).map(|m| m.file_type().is_symlink());
        assert_eq!(is_link.ok(), Some(false), "the link itself is replaced");
        assert_eq!(
            entries(dir.path()),
            vec!["lpd.prom".to_owned(), "precious".to_owned()]
        );
    }

    #[test]
    fn a_missing_folder_is_an_error_and_leaves_nothing() {
        let dir = TempDir::new("metrics-missing");
        let path = dir.path().join("absent").join("lpd.prom");
        assert!(write_atomically(&path, "x").is_err());
        assert_eq!(entries(dir.path()), Vec::<String>::new());
    }
}
