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
}

/// Held until dropped.
pub struct PartitionLock {
    _lock: Flock<File>,
}

impl PartitionLock {
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
            Ok(lock) => Ok(PartitionLock { _lock: lock }),
            Err((file, Errno::EWOULDBLOCK)) => {
                tracing::info!(device = %device.display(), "another instance is working on this partition; waiting for it to finish");
                Flock::lock(file, FlockArg::LockExclusive)
                    .map(|lock| PartitionLock { _lock: lock })
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
        assert!(first.is_ok());
        let (sender, receiver) = std::sync::mpsc::channel();
        let contender_path = path.clone();
        let contender = std::thread::spawn(move || {
            let second = PartitionLock::acquire(&contender_path);
            let _ = sender.send(second.is_ok());
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
}
