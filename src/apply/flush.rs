//! Durable writes: a cache flush of the partition's disk after every step that wrote.
//!
//! LVM 2.03 writes its metadata with `O_DIRECT` through its bcache and never asks the
//! disk to empty its volatile write cache (`bcache_flush` only waits for the writes to
//! complete; `dev_flush` is compiled only without `O_DIRECT`). A power loss may then
//! drop any subset of the writes since the last cache flush — a metadata-area header
//! without the text it points to, a pool `lvcreate` half on disk. A flush after each
//! step bounds what a power loss can take to the step in flight.
//!
//! `fsync(2)` on a block device's file descriptor sends the FLUSH: the kernel's
//! `blkdev_fsync` (block/fops.c) writes back the device's page cache and then calls
//! `blkdev_issue_flush`. `BLKFLSBUF` does not: `blkdev_flushbuf` (block/ioctl.c) runs
//! `fsync_bdev` (`sync_blockdev`: write back and wait, no flush request) and
//! `invalidate_bdev` — it empties the kernel's cache, not the disk's. The flush goes
//! to the whole disk (a partition has no cache of its own); a read-only descriptor is
//! enough, so a read-only device never fails here for the wrong reason.
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

/// Sends `device`'s disk a cache flush and waits for it; returns how long it took.
pub fn flush_device(device: &Path) -> io::Result<Duration> {
    let started = Instant::now();
    let file = crate::ffi::open::open_read_only(device, 0)?;
    file.sync_all()?;
    Ok(started.elapsed())
}

/// Makes a file's content and its name durable: `fsync` of the file, then of its
/// folder (which holds the rename that put it there). A file that is gone leaves
/// its folder to sync.
///
/// LVM 2.03.16 writes the devices file as `system.devices_new`, renames it over the
/// old one and fsyncs the folder, but never the file itself (`device_ids_write`;
/// the file's fsync came in 2.03.24). Where the file system commits a rename before
/// the renamed file's data (XFS, ext4 without `auto_da_alloc`), a power loss then
/// leaves an empty devices file, and the host sees no PV at all.
///
/// A folder whose file system cannot fsync folders (`EINVAL`: some network and
/// host-share file systems a hostPath may be) is not an error: the file's own sync
/// stands, and LVM ignores that failure too.
pub fn sync_file_and_folder(file: &Path) -> io::Result<Duration> {
    let started = Instant::now();
    match std::fs::File::open(file) {
        Ok(opened) => opened.sync_all()?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let folder = match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    match std::fs::File::open(folder)?.sync_all() {
        Err(e) if e.raw_os_error() == Some(nix::libc::EINVAL) => tracing::warn!(
            folder = %folder.display(),
            "this file system cannot sync a folder (EINVAL); the devices file itself is synced"
        ),
        other => other?,
    }
    Ok(started.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flush_of_a_missing_device_is_an_error() {
        assert!(flush_device(Path::new("/nonexistent/lpd-flush")).is_err());
        // A regular file flushes like a device does (fsync).
        let path = std::env::temp_dir().join(format!("lpd-flush-{}", std::process::id()));
        assert!(std::fs::write(&path, b"x").is_ok());
        assert!(flush_device(&path).is_ok());
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_file_and_its_folder_sync_and_a_gone_file_leaves_its_folder() {
        let folder = std::env::temp_dir().join(format!("lpd-sync-{}", std::process::id()));
        assert!(std::fs::create_dir_all(&folder).is_ok());
        let file = folder.join("system.devices");
        assert!(std::fs::write(&file, b"VERSION=1.1.1\n").is_ok());
        assert!(sync_file_and_folder(&file).is_ok());
        assert!(std::fs::remove_file(&file).is_ok());
        assert!(sync_file_and_folder(&file).is_ok());
        // A folder that is not there is an error: nothing was made durable.
        assert!(sync_file_and_folder(&folder.join("gone/system.devices")).is_err());
        let _ = std::fs::remove_dir_all(&folder);
    }
}
