//! LVM's own per-VG lock, taken around the device-mapper removals this tool does
//! natively. LVM holds `V_<vg>` exclusively (flock on a file in its locking
//! directory) for the whole of an activation, from creating a device to loading and
//! resuming it, so a host command activating the VG (udev-triggered
//! `pvscan --cache -aay`, `vgchange -ay` at boot) never sees its half-made devices
//! removed under it, and this tool never mistakes them for leftovers. Our in-process
//! LVM commands take the same lock themselves, so it is held only around a removal.
//! The file is left in place when released; LVM's next locker reuses it. The folder
//! is the host's `global/locking_dir` (observed with its lvm.conf).
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum VgLockError {
    #[error("cannot open LVM's lock file {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot take LVM's lock {}: {errno}", path.display())]
    Lock { path: PathBuf, errno: Errno },
}

/// Held until dropped.
pub struct VgLock {
    _lock: Flock<File>,
}

impl VgLock {
    /// Takes `V_<vg>` exclusively in `dir`, waiting (and saying so) while an LVM
    /// command holds it. LVM unlinks a lock file when it releases it, so a lock
    /// counts only if the file locked is still the one at the path (as LVM checks).
    pub fn acquire(dir: &Path, volume_group: &str) -> Result<VgLock, VgLockError> {
        std::fs::create_dir_all(dir).map_err(|source| VgLockError::Open {
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join(format!("V_{volume_group}"));
        let mut said_waiting = false;
        loop {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .custom_flags(nix::libc::O_CLOEXEC)
                .open(&path)
                .map_err(|source| VgLockError::Open {
                    path: path.clone(),
                    source,
                })?;
            let lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(lock) => lock,
                Err((file, Errno::EWOULDBLOCK)) => {
                    if !said_waiting {
                        tracing::info!(lock = %path.display(), "an LVM command holds this volume group's lock; waiting for it");
                        said_waiting = true;
                    }
                    Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| {
                        VgLockError::Lock {
                            path: path.clone(),
                            errno,
                        }
                    })?
                }
                Err((_, errno)) => return Err(VgLockError::Lock { path, errno }),
            };
            if is_same_file(&path, &lock) {
                return Ok(VgLock { _lock: lock });
            }
            // Its holder unlinked it on release: lock the file now at the path.
        }
    }
}

fn is_same_file(path: &Path, file: &File) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(path), file.metadata()) {
        (Ok(at_path), Ok(locked)) => at_path.dev() == locked.dev() && at_path.ino() == locked.ino(),
        _ => false,
    }
}

/// The VG part of an LVM device-mapper name (`<vg>-<lv>[-<layer>]`, each `-` inside
/// a name doubled), or `None` when the name is not of that form.
pub fn volume_group_of(dm_name: &str) -> Option<String> {
    let bytes = dm_name.as_bytes();
    let mut vg = String::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                vg.push('-');
                i += 2;
            }
            b'-' => return (!vg.is_empty() && i + 1 < bytes.len()).then_some(vg),
            _ => {
                let rest = dm_name.get(i..)?;
                let c = rest.chars().next()?;
                vg.push(c);
                i += c.len_utf8();
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_volume_group_is_read_from_lvm_device_names() {
        assert_eq!(
            volume_group_of("linstor--vg-linstor--pool-tpool").as_deref(),
            Some("linstor-vg")
        );
        assert_eq!(volume_group_of("vg-lv").as_deref(), Some("vg"));
        assert_eq!(volume_group_of("seedc-metadata").as_deref(), Some("seedc"));
        assert_eq!(volume_group_of("novg"), None);
        assert_eq!(volume_group_of("-lv"), None);
        assert_eq!(volume_group_of("vg-"), None);
        assert_eq!(volume_group_of("a--b"), None);
    }

    #[test]
    fn the_lock_waits_for_its_holder() {
        let dir = std::env::temp_dir().join(format!("lpd-vglock-{}", std::process::id()));
        let first = VgLock::acquire(&dir, "vg").unwrap_or_else(|e| panic!("{e}"));
        let path = dir.join("V_vg");
        let other = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(Flock::lock(other, FlockArg::LockExclusiveNonblock).is_err());
        drop(first);
        let other = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(Flock::lock(other, FlockArg::LockExclusiveNonblock).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
