//! The Kubernetes termination message (`kubectl describe pod` shows it). Written
//! only into a file that is already there and is a regular file or a FIFO, found
//! without following a symlink: the kubelet bind-mounts a regular file, and nothing
//! else at that path (a device node, a directory, a symlink to anything) is ours to
//! create, truncate or write through.
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Writes `message` as one line into `path` when it is a regular file or a FIFO.
pub fn write(path: &Path, message: &str) {
    let Ok(found) = std::fs::symlink_metadata(path) else {
        return;
    };
    let kind = found.file_type();
    if !(kind.is_file() || kind.is_fifo()) {
        tracing::warn!(
            path = %path.display(),
            "not writing the termination message: the path is not a regular file or FIFO (a symlink, device or folder is left alone)"
        );
        return;
    }
    if let Err(e) = write_into(path, message) {
        tracing::warn!(path = %path.display(), error = %e, "cannot write the termination message");
    }
}

fn write_into(path: &Path, message: &str) -> std::io::Result<()> {
    // No O_CREAT, no O_TRUNC, no following a symlink swapped in since; O_NONBLOCK so
    // a FIFO nobody reads fails at once (ENXIO) instead of blocking the run.
    let mut file = OpenOptions::new()
        .write(true)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits() | nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(path)?;
    let kind = file.metadata()?.file_type();
    if kind.is_file() {
        file.set_len(0)?;
    } else if !kind.is_fifo() {
        return Err(std::io::Error::other(
            "it changed into something other than a regular file or FIFO",
        ));
    }
    file.write_all(message.replace('\n', " ").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::partition::test_tree::TempDir;

    #[test]
    fn a_regular_file_gets_the_message_on_one_line() {
        let dir = TempDir::new("termlog-file");
        let path = dir.path().join("termination-log");
        if let Err(e) = std::fs::write(&path, "an older and longer message") {
            panic!("{e}");
        }
        write(&path, "refused:\nwhy");
        assert_eq!(
            std::fs::read_to_string(&path).ok().as_deref(),
            Some("refused: why")
        );
    }

    #[test]
    fn nothing_is_created_and_no_symlink_or_folder_is_written_through() {
        let dir = TempDir::new("termlog-other");
        let missing = dir.path().join("missing");
        write(&missing, "x");
        assert!(std::fs::symlink_metadata(&missing).is_err());
        let target = dir.path().join("target");
        if let Err(e) = std::fs::write(&target, "keep") {
            panic!("{e}");
        }
        let link = dir.path().join("link");
        if let Err(e) = std::os::unix::fs::symlink(&target, &link) {
            panic!("{e}");
        }
        write(&link, "x");
        assert_eq!(
            std::fs::read_to_string(&target).ok().as_deref(),
            Some("keep")
        );
        let folder = dir.path().join("folder");
        if let Err(e) = std::fs::create_dir(&folder) {
            panic!("{e}");
        }
        write(&folder, "x");
        assert!(folder.is_dir());
    }
}
