//! Discovery from sysfs and udev's database files, without libudev.
//!
//! This is what the static (musl) build uses. It reads the same sources libudev
//! reads — `/sys/class/block/*/uevent`, the sysfs attributes, and
//! `/run/udev/data/b<major>:<minor>` — so both backends agree. The roots are
//! injectable so tests can run against a fake tree.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::raw::{is_ignored, RawDevice};
use super::udev_db::parse_udev_db;
use super::uevent::parse_uevent;
use super::{BlockDevice, DiscoveryError};

/// Reads block devices from a sysfs tree and (if present) udev's database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysfsBackend {
    sys: PathBuf,
    run_udev: PathBuf,
}

impl Default for SysfsBackend {
    fn default() -> Self {
        Self::new()
    }
}

/// Reads an optional file: a missing file is `None`, any other failure is an
/// error naming the path.
fn read_optional(path: &Path) -> Result<Option<String>, DiscoveryError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(DiscoveryError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

impl SysfsBackend {
    /// The machine's own `/sys` and `/run/udev`.
    pub fn new() -> Self {
        Self::with_roots("/sys", "/run/udev")
    }

    /// A tree rooted elsewhere: `sys` stands for `/sys`, `run_udev` for
    /// `/run/udev` (its `data/` folder holds the database).
    pub fn with_roots(sys: impl Into<PathBuf>, run_udev: impl Into<PathBuf>) -> Self {
        Self {
            sys: sys.into(),
            run_udev: run_udev.into(),
        }
    }

    /// `<sys>/class/block`, where every block device has an entry.
    pub fn class_block(&self) -> PathBuf {
        self.sys.join("class/block")
    }

    /// All block devices except RAM disks, ordered by device number.
    pub fn list_block_devices(&self) -> Result<Vec<BlockDevice>, DiscoveryError> {
        let dir = self.class_block();
        let entries = fs::read_dir(&dir).map_err(|source| DiscoveryError::Io {
            path: dir.clone(),
            source,
        })?;
        let mut devices = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| DiscoveryError::Io {
                path: dir.clone(),
                source,
            })?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if is_ignored(&name) {
                continue;
            }
            if let Some(raw) = self.read_device(&name)? {
                devices.push(raw.into_block_device()?);
            }
        }
        devices.sort_by_key(|d| (d.major, d.minor));
        Ok(devices)
    }

    /// Reads one device; `None` if it disappeared while we looked (a loop
    /// device being detached, say), which is not an error.
    fn read_device(&self, name: &str) -> Result<Option<RawDevice>, DiscoveryError> {
        let dev_dir = self.class_block().join(name);
        let Some(uevent) = read_optional(&dev_dir.join("uevent"))? else {
            tracing::debug!(device = name, "block device vanished during discovery");
            return Ok(None);
        };
        let mut properties = parse_uevent(&uevent);
        let Some(size) = read_optional(&dev_dir.join("size"))? else {
            tracing::debug!(device = name, "block device vanished during discovery");
            return Ok(None);
        };
        if let (Some(major), Some(minor)) = (properties.get("MAJOR"), properties.get("MINOR")) {
            let db = self.run_udev.join("data").join(format!("b{major}:{minor}"));
            if let Some(text) = read_optional(&db)? {
                for (k, v) in parse_udev_db(&text) {
                    properties.entry(k).or_insert(v);
                }
            }
        }
        let partition = read_optional(&dev_dir.join("partition"))?;
        let dm_name = read_optional(&dev_dir.join("dm/name"))?;
        let dm_uuid = read_optional(&dev_dir.join("dm/uuid"))?;
        let parent = if partition.is_some() {
            parent_disk(&dev_dir)
        } else {
            None
        };
        Ok(Some(RawDevice {
            name: name.to_owned(),
            origin: dev_dir,
            properties,
            size: Some(size),
            partition,
            dm_name,
            dm_uuid,
            parent,
        }))
    }
}

/// A partition's sysfs folder sits inside its disk's folder
/// (`/sys/devices/…/vda/vda1`), so the disk is the parent folder's name.
fn parent_disk(dev_dir: &Path) -> Option<String> {
    let real = fs::canonicalize(dev_dir).ok()?;
    let parent = real.parent()?;
    parent
        .join("dev")
        .exists()
        .then(|| parent.file_name().map(|n| n.to_string_lossy().into_owned()))
        .flatten()
}
