//! Discovery through libudev (the `udev` crate), for the ordinary glibc build.
//!
//! libudev reads the same uevent files, sysfs attributes and database as the
//! sysfs backend; this module only enumerates and copies what it reports into
//! a [`RawDevice`], so label choice and parsing are shared.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use super::raw::{is_ignored, RawDevice};
use super::{BlockDevice, DiscoveryError};

fn text(v: Option<&OsStr>) -> Option<String> {
    v.map(|s| s.to_string_lossy().into_owned())
}

fn udev_error(source: std::io::Error) -> DiscoveryError {
    DiscoveryError::Udev { source }
}

/// All block devices libudev knows, except RAM disks, ordered by device number.
/// A device whose record is malformed is left out with a warning.
pub fn list_block_devices() -> Result<Vec<BlockDevice>, DiscoveryError> {
    let mut enumerator = udev::Enumerator::new().map_err(udev_error)?;
    enumerator.match_subsystem("block").map_err(udev_error)?;
    let mut devices = Vec::new();
    for device in enumerator.scan_devices().map_err(udev_error)? {
        let syspath = device.syspath().to_path_buf();
        // The sysfs folder name, as the sysfs backend sees it (libudev's
        // sysname turns `!` into `/`).
        let name = match syspath.file_name() {
            Some(n) => n.to_string_lossy().into_owned(),
            None => continue,
        };
        if is_ignored(&name) {
            continue;
        }
        let partname = device
            .property_value("PARTNAME")
            .map(|v| v.as_bytes().to_vec());
        let properties = device
            .properties()
            .map(|p| {
                (
                    p.name().to_string_lossy().into_owned(),
                    p.value().to_string_lossy().into_owned(),
                )
            })
            .collect();
        let Some(size) = text(device.attribute_value("size")) else {
            tracing::debug!(device = %name, "block device vanished during discovery");
            continue;
        };
        let partition = text(device.attribute_value("partition"));
        let parent = if partition.is_some() {
            device
                .parent_with_subsystem_devtype("block", "disk")
                .ok()
                .flatten()
                .and_then(|p| {
                    p.syspath()
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                })
        } else {
            None
        };
        let raw = RawDevice {
            origin: PathBuf::from(&syspath),
            properties,
            partname,
            size: Some(size),
            partition,
            dm_name: text(device.attribute_value("dm/name")),
            dm_uuid: text(device.attribute_value("dm/uuid")),
            parent,
            name,
        };
        match raw.into_block_device() {
            Ok(device) => devices.push(device),
            Err(e) => tracing::warn!(
                device = %syspath.display(),
                "block device left out of discovery, it could not be read: {e}"
            ),
        }
    }
    devices.sort_by_key(|d| (d.major, d.minor));
    Ok(devices)
}
