//! Sizes of a block device, asked of the kernel through ioctls.
//!
//! sysfs reports sizes in 512-byte units; the ioctls give the exact byte size
//! and the sector sizes LVM aligns to. Devices are opened read-only so that
//! asking never needs write access or disturbs an exclusive opener.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use crate::ffi::blkdev;
use crate::units::Bytes;

/// A size query on a block device failed.
#[derive(Debug, thiserror::Error)]
pub enum DeviceSizeError {
    #[error("cannot open {} read-only to ask its {what}: {source}", path.display())]
    Open {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error(
        "cannot ask {} for its {what} ({ioctl} failed: {source}); expected a block device \
         (is the path a regular file or a character device?)",
        path.display()
    )]
    Ioctl {
        path: PathBuf,
        what: &'static str,
        ioctl: &'static str,
        #[source]
        source: io::Error,
    },
}

fn open_read_only(path: &Path, what: &'static str) -> Result<File, DeviceSizeError> {
    crate::ffi::open::open_read_only(path, 0).map_err(|source| DeviceSizeError::Open {
        path: path.to_path_buf(),
        what,
        source,
    })
}

fn ioctl_error(
    path: &Path,
    what: &'static str,
    ioctl: &'static str,
    e: nix::Error,
) -> DeviceSizeError {
    DeviceSizeError::Ioctl {
        path: path.to_path_buf(),
        what,
        ioctl,
        source: io::Error::from(e),
    }
}

/// Exact size (`BLKGETSIZE64`) and logical sector size (`BLKSSZGET`, bytes) of
/// the block device at `path`, asked through one open.
pub fn size_and_logical_sector(path: &Path) -> Result<(Bytes, u32), DeviceSizeError> {
    let file = open_read_only(path, "size")?;
    let size =
        blkdev::size_bytes(&file).map_err(|e| ioctl_error(path, "size", "BLKGETSIZE64", e))?;
    let sector = blkdev::logical_sector_size(&file)
        .map_err(|e| ioctl_error(path, "logical sector size", "BLKSSZGET", e))?;
    Ok((Bytes::from(size), sector))
}

/// Exact size of the block device at `path` (`BLKGETSIZE64`).
pub fn device_size_bytes(path: &Path) -> Result<Bytes, DeviceSizeError> {
    const WHAT: &str = "size";
    let file = open_read_only(path, WHAT)?;
    blkdev::size_bytes(&file)
        .map(Bytes::from)
        .map_err(|e| ioctl_error(path, WHAT, "BLKGETSIZE64", e))
}

/// Logical sector size of the block device at `path` (`BLKSSZGET`), usually
/// 512 or 4096: the unit partition tables and LVM's label sector are counted in.
pub fn logical_sector_size(path: &Path) -> Result<u32, DeviceSizeError> {
    const WHAT: &str = "logical sector size";
    let file = open_read_only(path, WHAT)?;
    blkdev::logical_sector_size(&file).map_err(|e| ioctl_error(path, WHAT, "BLKSSZGET", e))
}

/// Physical block size of the block device at `path` (`BLKPBSZGET`).
pub fn physical_block_size(path: &Path) -> Result<u32, DeviceSizeError> {
    const WHAT: &str = "physical block size";
    let file = open_read_only(path, WHAT)?;
    blkdev::physical_block_size(&file).map_err(|e| ioctl_error(path, WHAT, "BLKPBSZGET", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::observe::partition::test_tree::TempDir;
    use std::process::Command;

    /// A loop device over a temporary file, detached on drop. Needs root and
    /// `losetup` (Debian package `mount`).
    struct Loop {
        node: PathBuf,
        _dir: TempDir,
    }

    impl Loop {
        fn attach(bytes: u64, sector_size: u32) -> Loop {
            let dir = TempDir::new("blockdev-loop");
            let backing = dir.path().join("backing.img");
            if let Err(e) = File::create(&backing).and_then(|f| f.set_len(bytes)) {
                panic!("cannot create {}: {e}", backing.display());
            }
            let out = Command::new("losetup")
                .args([
                    "--find",
                    "--show",
                    "--sector-size",
                    &sector_size.to_string(),
                ])
                .arg(&backing)
                .output();
            match out {
                Ok(o) if o.status.success() => Loop {
                    node: PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()),
                    _dir: dir,
                },
                Ok(o) => panic!(
                    "losetup failed (this test needs root and loop devices): {}",
                    String::from_utf8_lossy(&o.stderr)
                ),
                Err(e) => panic!("cannot run losetup (apt-get install mount): {e}"),
            }
        }
    }

    impl Drop for Loop {
        fn drop(&mut self) {
            let _ = Command::new("losetup").arg("-d").arg(&self.node).status();
        }
    }

    #[test]
    fn loop_device_size_and_sector_size() {
        let dev = Loop::attach(3 << 20, 4096);
        let size = device_size_bytes(&dev.node);
        assert!(
            matches!(size, Ok(s) if s == Bytes(3 << 20)),
            "{:?}: {size:?}",
            dev.node
        );
        let lss = logical_sector_size(&dev.node);
        assert!(matches!(lss, Ok(4096)), "{:?}: {lss:?}", dev.node);
        let pbs = physical_block_size(&dev.node);
        assert!(matches!(pbs, Ok(s) if s >= 512), "{:?}: {pbs:?}", dev.node);
    }

    #[test]
    fn regular_file_gives_an_error_naming_the_path() {
        let dir = std::env::temp_dir().join(format!("lpd-blockdev-{}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| e.to_string())
            .ok();
        let file = dir.join("not-a-device");
        std::fs::write(&file, b"x").ok();
        let err = device_size_bytes(&file).err();
        let text = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            text.contains("not-a-device") && text.contains("BLKGETSIZE64"),
            "{text}"
        );

        let missing = device_size_bytes(Path::new("/nonexistent/dev/xyz"));
        assert!(matches!(missing, Err(DeviceSizeError::Open { .. })));
    }
}
