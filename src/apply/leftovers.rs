//! The two steps that are not LVM commands: clearing what an interrupted LVM
//! command left outside the metadata. LVM has no command for either — it removes
//! only devices and links of LVs its metadata lists — so they are done here, each
//! re-checking at the moment of writing that it touches only such leftovers.
use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::vg_lock::{volume_group_of, VgLock, VgLockError};
use crate::ffi::dm_remove::{remove_device_by_uuid, DmRemoveError};
use crate::observe::live::{self, ActiveLv};
use crate::observe::lvm::{read_pv_on_disk, LvmUuid};
use crate::observe::snapshot::Snapshot;
use crate::observe::state::{StaleDevice, VgLocking};
use crate::observe::vg_dev_dir::{is_lv_link, reaches_live_device};

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
    /// Not a failure: the device is no longer the one the plan was made for, so
    /// nothing is removed and the partition is observed again.
    #[error("device-mapper device {dm_name} changed since it was observed ({why}); not removing it, observing again")]
    ChangedSinceObserved { dm_name: String, why: String },
    #[error("cannot re-check device-mapper device {dm_name} before removing it: {why}; nothing was removed")]
    Recheck { dm_name: String, why: String },
    #[error("the host's LVM uses lvmlockd (global/use_lvmlockd = 1), whose locks this tool cannot take; not removing device-mapper device {dm_name} natively")]
    Lvmlockd { dm_name: String },
}

impl LeftoverError {
    /// The plan no longer fits what is there: observe again rather than fail.
    pub fn is_changed_since_observed(&self) -> bool {
        matches!(self, LeftoverError::ChangedSinceObserved { .. })
    }
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> LeftoverError + '_ {
    move |source| LeftoverError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What a planned removal of devices (named in the plan) is checked against: the
/// observation the plan was made from.
#[derive(Debug, Clone, Copy)]
pub struct RemovalContext<'a> {
    /// The partition the devices are stacked on; its VG metadata is read again.
    pub partition: &'a Path,
    pub vg_locking: &'a VgLocking,
    /// The LVM devices the observation saw (any VG).
    pub observed: &'a [ActiveLv],
    /// The devices the observation found listed by no VG (the others are a listed
    /// pool's idle `-tpool` device).
    pub unlisted: &'a [StaleDevice],
}

impl<'a> RemovalContext<'a> {
    pub fn of(snapshot: &'a Snapshot) -> Self {
        RemovalContext {
            partition: &snapshot.observed.partition.devnode,
            vg_locking: &snapshot.observed.host_lvm.vg_locking,
            observed: &snapshot.lvm_devices,
            unlisted: &snapshot.observed.leftovers.stale_devices,
        }
    }
}

/// One device as observed: what must still hold right before it is removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedDevice {
    pub dm_name: String,
    /// `LVM-<vg uuid><lv uuid>[-<layer>]`: the removal goes by this.
    pub dm_uuid: String,
    pub vg_uuid: LvmUuid,
    pub lv_uuid: LvmUuid,
    pub major: u32,
    pub minor: u32,
    /// Planned because no VG lists its LV: the VG must still not list it.
    pub unlisted: bool,
}

impl ExpectedDevice {
    /// The device the observation saw under `dm_name`, or `ChangedSinceObserved`.
    pub fn bind(dm_name: &str, context: &RemovalContext<'_>) -> Result<Self, LeftoverError> {
        let device = context
            .observed
            .iter()
            .find(|d| d.dm_name == dm_name)
            .ok_or_else(|| not_observed(dm_name))?;
        Ok(ExpectedDevice::of(
            device,
            context.unlisted.iter().any(|s| s.dm_name == dm_name),
        ))
    }

    /// `device` as observed; `unlisted`: no VG listed its LV.
    pub fn of(device: &ActiveLv, unlisted: bool) -> Self {
        ExpectedDevice {
            dm_name: device.dm_name.clone(),
            dm_uuid: format!(
                "LVM-{}{}{}",
                device.vg_uuid.undashed(),
                device.lv_uuid.undashed(),
                device
                    .layer
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default()
            ),
            vg_uuid: device.vg_uuid,
            lv_uuid: device.lv_uuid,
            major: device.major,
            minor: device.minor,
            unlisted,
        }
    }
}

/// A planned device the observation did not list: observe again, never guess.
pub(super) fn not_observed(dm_name: &str) -> LeftoverError {
    LeftoverError::ChangedSinceObserved {
        dm_name: dm_name.to_owned(),
        why: "the observation the plan was made from did not list it".to_owned(),
    }
}

/// What the kernel says now about the device with a given DM uuid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentDevice {
    pub dm_name: String,
    pub major: u32,
    pub minor: u32,
    pub open_count: u32,
    /// Kernel names of the devices stacked on it (sysfs `holders/`).
    pub holders: Vec<String>,
}

/// Why `current` (the device now carrying the expected uuid, if any) is not the
/// device the plan is about, or may not be removed now; `listed_now` says whether
/// the VG on the partition lists its LV now. `None`: remove it.
pub fn why_not_remove(
    expected: &ExpectedDevice,
    current: Option<&CurrentDevice>,
    listed_now: bool,
) -> Option<String> {
    let Some(current) = current else {
        return Some(format!("no device has uuid {} any more", expected.dm_uuid));
    };
    if current.dm_name != expected.dm_name {
        return Some(format!(
            "the device with uuid {} is now called {}",
            expected.dm_uuid, current.dm_name
        ));
    }
    if (current.major, current.minor) != (expected.major, expected.minor) {
        return Some(format!(
            "it is now device {}:{}, observed as {}:{} (it was removed and made again)",
            current.major, current.minor, expected.major, expected.minor
        ));
    }
    if !current.holders.is_empty() {
        return Some(format!("it is now held by {}", current.holders.join(", ")));
    }
    if current.open_count > 0 {
        return Some(format!("it is now open {} time(s)", current.open_count));
    }
    if expected.unlisted && listed_now {
        return Some("the volume group on the partition now lists its logical volume".to_owned());
    }
    None
}

/// Removes the device-mapper devices in order (each after those stacked on it), and
/// their `/dev/mapper` nodes when nothing (udev) removed them. Each is removed by
/// its DM uuid, under LVM's lock of its VG (so no LVM command is building it at that
/// moment), after checking under that lock that it is still the device observed:
/// same uuid, name and device number, nothing holding it, and (for a device no VG
/// listed) still unlisted. Anything else stops the plan and the partition is
/// observed again.
pub fn remove_stale_devices(
    dm_names: &[String],
    context: &RemovalContext<'_>,
) -> Result<(), LeftoverError> {
    for name in dm_names {
        let lock_dir = lock_dir(context, name)?;
        let expected = ExpectedDevice::bind(name, context)?;
        let _lvm_lock = volume_group_of(name)
            .map(|vg| VgLock::acquire(lock_dir, &vg))
            .transpose()?;
        let current = current_device(&expected)?;
        let listed_now =
            expected.unlisted && current.is_some() && is_listed_now(&expected, context.partition)?;
        if let Some(why) = why_not_remove(&expected, current.as_ref(), listed_now) {
            return Err(LeftoverError::ChangedSinceObserved {
                dm_name: name.clone(),
                why,
            });
        }
        remove_with_node(&expected)?;
        tracing::info!(dm_name = %name, dm_uuid = %expected.dm_uuid, "removed a device-mapper device no volume group lists");
    }
    Ok(())
}

/// The folder of LVM's VG lock files, under which a native removal of `dm_name`
/// runs; none under lvmlockd, whose locks this tool cannot take.
pub(super) fn lock_dir<'a>(
    context: &RemovalContext<'a>,
    dm_name: &str,
) -> Result<&'a Path, LeftoverError> {
    match context.vg_locking {
        VgLocking::Files { dir } => Ok(dir),
        VgLocking::Lvmlockd => Err(LeftoverError::Lvmlockd {
            dm_name: dm_name.to_owned(),
        }),
    }
}

/// Removes `expected`'s device by its uuid, then its `/dev/mapper` node when nothing
/// (udev) removed it: only the node of the device just removed (same device number,
/// still there).
pub(super) fn remove_with_node(expected: &ExpectedDevice) -> Result<(), LeftoverError> {
    let node = Path::new("/dev/mapper").join(&expected.dm_name);
    let dev_before = fs::symlink_metadata(&node)
        .ok()
        .filter(|m| m.file_type().is_block_device());
    remove_device_by_uuid(&expected.dm_uuid, &expected.dm_name)?;
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
    Ok(())
}

/// The device carrying `expected`'s uuid now, asked by uuid (`DM_DEV_STATUS`).
pub(super) fn current_device(
    expected: &ExpectedDevice,
) -> Result<Option<CurrentDevice>, LeftoverError> {
    let recheck = |why: String| LeftoverError::Recheck {
        dm_name: expected.dm_name.clone(),
        why,
    };
    let Some(info) = live::device_by_uuid(&expected.dm_uuid).map_err(|e| recheck(e.to_string()))?
    else {
        return Ok(None);
    };
    let holders = match live::holders(&format!("dm-{}", info.minor)) {
        Ok(holders) => holders.into_iter().map(|h| h.name).collect(),
        // A device-mapper device that never had a table loaded has no block device
        // in sysfs yet (the kernel adds its disk with the first table): nothing can
        // be stacked on it. A kill between LVM's create and load leaves one.
        Err(live::LiveError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            Vec::new()
        }
        Err(e) => return Err(recheck(e.to_string())),
    };
    Ok(Some(CurrentDevice {
        dm_name: info.dm_name,
        major: info.major,
        minor: info.minor,
        open_count: info.open_count,
        holders,
    }))
}

/// Whether the VG on `partition` (read from its metadata again, under the VG's
/// lock) now lists `expected`'s LV.
fn is_listed_now(expected: &ExpectedDevice, partition: &Path) -> Result<bool, LeftoverError> {
    let pv = read_pv_on_disk(partition).map_err(|e| LeftoverError::Recheck {
        dm_name: expected.dm_name.clone(),
        why: e.to_string(),
    })?;
    Ok(pv.and_then(|pv| pv.vg_metadata).is_some_and(|vg| {
        vg.id == expected.vg_uuid
            && vg
                .logical_volumes
                .iter()
                .any(|lv| lv.id == expected.lv_uuid)
    }))
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
        // udevd removes the links of devices a reset just removed while this runs:
        // one gone since the listing is one less to remove, not a stranger.
        let target = match kind.is_symlink().then(|| fs::read_link(entry.path())) {
            Some(Err(e)) if e.kind() == io::ErrorKind::NotFound => continue,
            Some(Ok(target)) => Some(target),
            _ => None,
        };
        // Only dangling links LVM (or udev) made: one that still reaches a device is
        // a live LV's, and one of another form is not ours (it may have appeared
        // since the plan read the folder).
        let removable = target.is_some_and(|target| {
            path.file_name()
                .and_then(|vg| vg.to_str())
                .is_some_and(|vg| is_lv_link(vg, &target))
                && !reaches_live_device(&entry.path(), &target)
        });
        if !removable {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::live::LvmLayer;

    const VG: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    const LV: &str = "ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ";

    fn uuid(text: &str) -> LvmUuid {
        LvmUuid::from_undashed_bytes(text.as_bytes()).unwrap_or_else(|| panic!("{text}"))
    }

    fn active(name: &str, minor: u32, layer: Option<LvmLayer>) -> ActiveLv {
        ActiveLv {
            dm_name: name.to_owned(),
            major: 253,
            minor,
            open_count: 0,
            vg_uuid: uuid(VG),
            lv_uuid: uuid(LV),
            layer,
            serving: true,
            live_table: true,
        }
    }

    fn context<'a>(
        observed: &'a [ActiveLv],
        unlisted: &'a [StaleDevice],
        locking: &'a VgLocking,
    ) -> RemovalContext<'a> {
        RemovalContext {
            partition: Path::new("/dev/vda1"),
            vg_locking: locking,
            observed,
            unlisted,
        }
    }

    #[test]
    fn a_planned_name_is_bound_to_the_uuid_and_number_observed_under_it() {
        let observed = [
            active("vg-ghost", 4, None),
            active("vg-pool-tpool", 7, Some(LvmLayer::Tpool)),
        ];
        let unlisted = [StaleDevice {
            dm_name: "vg-ghost".into(),
            held_by: None,
        }];
        let locking = VgLocking::default();
        let context = context(&observed, &unlisted, &locking);
        let ghost = ExpectedDevice::bind("vg-ghost", &context).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ghost.dm_uuid, format!("LVM-{VG}{LV}"));
        assert_eq!((ghost.major, ghost.minor, ghost.unlisted), (253, 4, true));
        let pool =
            ExpectedDevice::bind("vg-pool-tpool", &context).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(pool.dm_uuid, format!("LVM-{VG}{LV}-tpool"));
        assert!(!pool.unlisted);
        // A name the observation did not see: observe again, never guess.
        assert!(matches!(
            ExpectedDevice::bind("vg-other", &context),
            Err(e) if e.is_changed_since_observed()
        ));
    }

    #[test]
    fn only_the_device_observed_unchanged_and_unheld_is_removed() {
        let expected = ExpectedDevice {
            dm_name: "vg-ghost".into(),
            dm_uuid: format!("LVM-{VG}{LV}"),
            vg_uuid: uuid(VG),
            lv_uuid: uuid(LV),
            major: 253,
            minor: 4,
            unlisted: true,
        };
        let same = CurrentDevice {
            dm_name: "vg-ghost".into(),
            major: 253,
            minor: 4,
            open_count: 0,
            holders: Vec::new(),
        };
        assert_eq!(why_not_remove(&expected, Some(&same), false), None);
        let cases: Vec<(&str, Option<CurrentDevice>, bool, &str)> = vec![
            ("gone", None, false, "no device has uuid"),
            (
                "renamed",
                Some(CurrentDevice {
                    dm_name: "vg-renamed".into(),
                    ..same.clone()
                }),
                false,
                "is now called vg-renamed",
            ),
            (
                "made again",
                Some(CurrentDevice {
                    minor: 9,
                    ..same.clone()
                }),
                false,
                "now device 253:9",
            ),
            (
                "held",
                Some(CurrentDevice {
                    holders: vec!["dm-12".into()],
                    ..same.clone()
                }),
                false,
                "held by dm-12",
            ),
            (
                "open",
                Some(CurrentDevice {
                    open_count: 1,
                    ..same.clone()
                }),
                false,
                "open 1 time",
            ),
            ("listed", Some(same.clone()), true, "now lists"),
        ];
        for (case, current, listed, says) in cases {
            let why = why_not_remove(&expected, current.as_ref(), listed);
            assert!(
                why.as_deref().is_some_and(|w| w.contains(says)),
                "{case}: {why:?}"
            );
        }
        // A listed pool's idle layer device is expected to be listed.
        let layer = ExpectedDevice {
            unlisted: false,
            ..expected
        };
        assert_eq!(why_not_remove(&layer, Some(&same), true), None);
    }

    #[test]
    fn a_volume_group_folder_is_removed_only_with_lvms_dangling_links() {
        use crate::observe::partition::test_tree::TempDir;
        use std::os::unix::fs::symlink;
        let dev = TempDir::new("stale-vg-path");
        let folder = dev.path().join("linstor-vg");
        let made = |r: io::Result<()>| assert!(r.is_ok(), "{r:?}");
        made(fs::create_dir(&folder));
        made(symlink("/dev/mapper/linstor--vg-pool", folder.join("pool")));
        made(symlink("../dm-4000", folder.join("pvc-1_00000")));
        // Someone's dangling link, not of LVM's form: the folder is kept.
        made(symlink("/nonexistent/notes", folder.join("notes")));
        let kept = remove_stale_volume_group_path(&folder);
        assert!(
            matches!(&kept, Err(LeftoverError::NotALink { name, .. }) if name == "notes"),
            "{kept:?}"
        );
        assert!(folder.join("pool").symlink_metadata().is_ok());
        made(fs::remove_file(folder.join("notes")));
        let removed = remove_stale_volume_group_path(&folder);
        assert!(removed.is_ok(), "{removed:?}");
        assert!(!folder.exists());
    }

    #[test]
    fn under_lvmlockd_nothing_is_removed_natively() {
        let observed = [active("vg-ghost", 4, None)];
        let locking = VgLocking::Lvmlockd;
        let result =
            remove_stale_devices(&["vg-ghost".to_owned()], &context(&observed, &[], &locking));
        assert!(
            matches!(result, Err(LeftoverError::Lvmlockd { .. })),
            "{result:?}"
        );
    }
}
