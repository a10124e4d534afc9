//! The two steps that are not LVM commands: clearing what an interrupted LVM
//! command left outside the metadata. LVM has no command for either — it removes
//! only devices and links of LVs its metadata lists — so they are done here, each
//! re-checking at the moment of writing that it touches only such leftovers.
use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::vg_lock::{volume_group_of, VgLock, VgLockError, LVM_LOCK_DIR};
use crate::ffi::dm_remove::{remove_device, DmRemoveError};
use crate::observe::vg_dev_dir::reaches_live_device;

#[derive(Debug, Error)]
pub enum LeftoverError {
    #[error(transparent)]
    Device(#[from] DmRemoveError),
    #[error("cannot clear {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} now holds {name}, which is not a dangling symlink that LVM left; leaving it alone (check which volume group it belongs to, remove it by hand if it is not needed)", path.display())]
    NotALink { path: PathBuf, name: String },
    #[error(transparent)]
    Lock(#[from] VgLockError),
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> LeftoverError + '_ {
    move |source| LeftoverError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Removes the device-mapper devices in order (each after those stacked on it), and
/// their `/dev/mapper` nodes when nothing (udev) removed them; each under LVM's lock
/// of its VG, so that no LVM command is building it at that moment.
pub fn remove_stale_devices(dm_names: &[String]) -> Result<(), LeftoverError> {
    for name in dm_names {
        let _lvm_lock = volume_group_of(name)
            .map(|vg| VgLock::acquire(Path::new(LVM_LOCK_DIR), &vg))
            .transpose()?;
        let node = Path::new("/dev/mapper").join(name);
        let dev_before = fs::symlink_metadata(&node)
            .ok()
            .filter(|m| m.file_type().is_block_device());
        remove_device(name)?;
        tracing::info!(dm_name = %name, "removed a device-mapper device no volume group lists");
        // Only the node of the device just removed: same device number, still there.
        if let Some(before) = dev_before {
            match fs::symlink_metadata(&node) {
                Ok(now) if now.file_type().is_block_device() && now.rdev() == before.rdev() => {
                    fs::remove_file(&node)
                        .or_else(ignore_missing)
                        .map_err(io_error(&node))?;
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// Removes `/dev/<vg>` if it exists and holds only symlinks (LVM's). Nothing there
/// is fine: the LVM command before this step may have removed it itself.
pub fn remove_stale_volume_group_path(path: &Path) -> Result<(), LeftoverError> {
    // Never through a symlink: a link swapped in for the folder would point the
    // removal at another folder.
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(LeftoverError::NotALink {
                path: path.to_path_buf(),
                name: "(the path itself, which is no longer a folder)".to_owned(),
            })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_error(path)(e)),
    }
    let entries = match fs::read_dir(path) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_error(path)(e)),
    };
    let mut links = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_error(path))?;
        let kind = entry.file_type().map_err(io_error(path))?;
        // Only dangling links: one that still reaches a device is a live LV's.
        if !kind.is_symlink() || reaches_live_device(&entry.path()) {
            return Err(LeftoverError::NotALink {
                path: path.to_path_buf(),
                name: entry.file_name().to_string_lossy().into_owned(),
            });
        }
        links.push(entry.path());
    }
    for link in &links {
        fs::remove_file(link)
            .or_else(ignore_missing)
            .map_err(io_error(link))?;
    }
    fs::remove_dir(path)
        .or_else(ignore_missing)
        .map_err(io_error(path))?;
    tracing::info!(path = %path.display(), links = links.len(), "removed a volume group folder an interrupted LVM command left");
    Ok(())
}

fn ignore_missing(e: io::Error) -> io::Result<()> {
    if e.kind() == io::ErrorKind::NotFound {
        Ok(())
    } else {
        Err(e)
    }
}
