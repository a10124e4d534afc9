//! One run at a time per partition: an exclusive `flock` on the partition's device
//! node. Every instance on the host (container or not) sees the same node, and the
//! kernel drops the lock when the process dies, so a killed run never leaves it stuck.
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use std::fs::File;
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum LockError {
    #[error("cannot open {} to lock it: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot lock {}: {errno}", path.display())]
    Lock { path: PathBuf, errno: Errno },
    #[error("{} is no longer the partition this run resolved and locked ({locked}); it is now {now}: something replaced the device node while the tool was working. Nothing more was written. Check what changed /dev (a bind mount, mknod, a container runtime) and rerun", path.display())]
    Swapped {
        path: PathBuf,
        locked: String,
        now: String,
    },
}

/// Held until dropped.
pub struct PartitionLock {
    lock: Flock<File>,
    /// Another instance held the lock first: what was read before is out of date.
    waited: bool,
}

impl PartitionLock {
    /// Fails unless the locked descriptor is the block device `major:minor` (the
    /// partition as resolved): a node swapped before the lock was taken.
    pub fn holds_device(&self, path: &Path, major: u32, minor: u32) -> Result<(), LockError> {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let locked = self.lock.metadata().map_err(|source| LockError::Open {
            path: path.to_owned(),
            source,
        })?;
        let wanted = nix::sys::stat::makedev(u64::from(major), u64::from(minor));
        if locked.file_type().is_block_device() && locked.rdev() == wanted {
            return Ok(());
        }
        Err(LockError::Swapped {
            path: path.to_owned(),
            locked: format!("resolved as block device {major}:{minor}"),
            now: if locked.file_type().is_block_device() {
                format!(
                    "block device {}:{}",
                    nix::sys::stat::major(locked.rdev()),
                    nix::sys::stat::minor(locked.rdev())
                )
            } else {
                "not a block device".to_owned()
            },
        })
    }

    /// Fails unless `path` still names the device this lock holds: `st_rdev` of the
    /// node at the path against `fstat` of the locked descriptor. Every later write
    /// goes to `path` (LVM opens it by name), so a device swapped in under that name
    /// must stop the run.
    pub fn still_names_locked_device(&self, path: &Path) -> Result<(), LockError> {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let show = |m: &std::fs::Metadata| {
            if m.file_type().is_block_device() {
                format!(
                    "block device {}:{}",
                    nix::sys::stat::major(m.rdev()),
                    nix::sys::stat::minor(m.rdev())
                )
            } else {
                "not a block device".to_owned()
            }
        };
        let swapped = |locked: &std::fs::Metadata, now: String| LockError::Swapped {
            path: path.to_owned(),
            locked: format!("locked as {}", show(locked)),
            now,
        };
        let locked = self.lock.metadata().map_err(|source| LockError::Open {
            path: path.to_owned(),
            source,
        })?;
        match std::fs::metadata(path) {
            Ok(now) if now.file_type() == locked.file_type() && now.rdev() == locked.rdev() => {
                // A regular file (the unit tests) has no device number: its inode counts.
                if locked.file_type().is_block_device() || now.ino() == locked.ino() {
                    Ok(())
                } else {
                    Err(swapped(&locked, "another file".to_owned()))
                }
            }
            Ok(now) => Err(swapped(&locked, show(&now))),
            Err(e) => Err(swapped(&locked, format!("unreadable ({e})"))),
        }
    }
}

impl PartitionLock {
    /// Whether [`PartitionLock::acquire`] waited for another instance.
    pub fn waited(&self) -> bool {
        self.waited
    }

    /// Takes the lock, waiting (and saying so) while another instance holds it.
    pub fn acquire(device: &Path) -> Result<Self, LockError> {
        let open = || {
            crate::ffi::open::open_read_only(device, 0).map_err(|source| LockError::Open {
                path: device.to_owned(),
                source,
            })
        };
        let lock_error = |errno| LockError::Lock {
            path: device.to_owned(),
            errno,
        };
        match Flock::lock(open()?, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => Ok(PartitionLock {
                lock,
                waited: false,
            }),
            Err((file, Errno::EWOULDBLOCK)) => {
                tracing::info!(device = %device.display(), "another instance is working on this partition; waiting for it to finish");
                Flock::lock(file, FlockArg::LockExclusive)
                    .map(|lock| PartitionLock { lock, waited: true })
                    .map_err(|(_, errno)| lock_error(errno))
            }
            Err((_, errno)) => Err(lock_error(errno)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_waits_for_the_first() {
        let path = std::env::temp_dir().join(format!("lpd-lock-test-{}", std::process::id()));
        if let Err(e) = std::fs::write(&path, b"") {
            panic!("cannot create {}: {e}", path.display());
        }
        let first = PartitionLock::acquire(&path);
        // Taken at once: what was read before it is still current.
        assert!(first.as_ref().is_ok_and(|lock| !lock.waited()));
        let (sender, receiver) = std::sync::mpsc::channel();
        let contender_path = path.clone();
        let contender = std::thread::spawn(move || {
            let second = PartitionLock::acquire(&contender_path);
            // It waited: the first holder may have changed the partition.
            let _ = sender.send(second.is_ok_and(|lock| lock.waited()));
        });
        // While the first lock is held, the second must not get through.
        assert!(receiver
            .recv_timeout(std::time::Duration::from_millis(300))
            .is_err());
        drop(first);
        assert_eq!(
            receiver.recv_timeout(std::time::Duration::from_secs(5)),
            Ok(true)
        );
        let _ = contender.join();
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_node_replaced_under_the_locked_path_is_detected() {
        let path = std::env::temp_dir().join(format!("lpd-lock-swap-{}", std::process::id()));
        let other = path.with_extension("other");
        for p in [&path, &other] {
            if let Err(e) = std::fs::write(p, b"") {
                panic!("cannot create {}: {e}", p.display());
            }
        }
        let lock = PartitionLock::acquire(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(lock.still_names_locked_device(&path).is_ok());
        // Another file renamed over the path: the name now reaches something else.
        if let Err(e) = std::fs::rename(&other, &path) {
            panic!("{e}");
        }
        let err = lock.still_names_locked_device(&path).map(|_| ());
        assert!(
            matches!(&err, Err(LockError::Swapped { now, .. }) if now == "another file"),
            "{err:?}"
        );
        let _ = std::fs::remove_file(&path);
        assert!(matches!(
            lock.still_names_locked_device(&path),
            Err(LockError::Swapped { .. })
        ));
        // What was locked is not the block device the partition resolved to.
        assert!(matches!(
            lock.holds_device(&path, 254, 1),
            Err(LockError::Swapped { now, .. }) if now == "not a block device"
        ));
    }
}
