//! The `/dev/<vg>` folder. LVM keeps one symlink per active LV there and, with
//! `udev_rules = 0` (how this tool and LINSTOR's satellite run it), creates and
//! removes those links itself at the end of each command. A command killed midway
//! leaves the folder behind; `vgcreate` then refuses the name forever ("already
//! exists in filesystem"). This reads what is there so the planner can tell such
//! leftovers (only symlinks) from anything else (which is never ours to remove).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::ffi::dir::{list_folder, EntryKind};
use crate::observe::live::dm::parse_lvm_dm_uuid;
use crate::observe::lvm::uuid::LvmUuid;

use serde::Serialize;

/// More entries than a VG folder ever holds; a larger folder is not a VG folder.
const MAX_ENTRIES: usize = 65_536;

/// One entry of `/dev/<vg>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum VgDevEntry {
    /// A symlink, as LVM makes them (`pool -> ../dm-4`), and what it reaches: a
    /// live LV's link reaches its device; a leftover dangles.
    Symlink {
        name: String,
        target: PathBuf,
        reaches: LinkReach,
    },
    /// A symlink not followed: the VG of this name is the one on the partition, so
    /// its links are LVM's for it and no decision reads where they lead (see
    /// [`Follow::No`]). A steady start on a VG of 1,000 LVs so makes no system call
    /// per link.
    LinkNotFollowed { name: String },
    /// Anything else: a device node, a file, a folder. Not LVM's.
    Other { name: String },
}

/// What a symlink of `/dev/<vg>` leads to right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum LinkReach {
    /// No device: the link dangles (an LV deactivated by a command killed before it
    /// removed the link).
    Nothing,
    /// A live device-mapper device of the volume group with this id. A killed
    /// command's stale link can reach one under any name: device-mapper reuses the
    /// minor of a device it removed (`lvol0 -> ../dm-3` after LVM's temporary
    /// `lvol0` was removed and the pool's `_tmeta` took `dm-3`).
    VolumeGroupDevice {
        #[serde(serialize_with = "LvmUuid::serialize_undashed")]
        vg_uuid: LvmUuid,
    },
    /// Any other live device: a disk, a device of no volume group, or one whose
    /// device-mapper uuid could not be read.
    OtherDevice,
}

impl LinkReach {
    pub fn is_live(self) -> bool {
        !matches!(self, LinkReach::Nothing)
    }
}

/// How much of each symlink [`read_vg_dev_dir`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    /// The target and the live device it reaches (a readlink, two stats and, for a
    /// live link, one sysfs read).
    TargetAndDevice,
    /// Nothing ([`VgDevEntry::LinkNotFollowed`]): the folder's listing tells
    /// symlinks from other entries.
    No,
}

/// What `/dev/<vg>` is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum VgDevDir {
    #[default]
    Absent,
    /// A folder with these entries (sorted by name).
    Folder {
        path: PathBuf,
        entries: Vec<VgDevEntry>,
    },
    /// Something that is not a folder (a device node such as `/dev/vda`, a file).
    NotAFolder { path: PathBuf },
}

impl VgDevDir {
    /// A folder of symlinks only: what LVM leaves, and nothing else.
    pub fn holds_only_symlinks(&self) -> bool {
        match self {
            VgDevDir::Folder { entries, .. } => entries.iter().all(|e| {
                matches!(
                    e,
                    VgDevEntry::Symlink { .. } | VgDevEntry::LinkNotFollowed { .. }
                )
            }),
            _ => false,
        }
    }
}

/// Reads `<dev>/<vg>` (`dev` stands for `/dev`), following symlinks as `follow` says.
pub fn read_vg_dev_dir(dev: &Path, vg: &str, follow: Follow) -> io::Result<VgDevDir> {
    let path = dev.join(vg);
    let meta = match fs::symlink_metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(VgDevDir::Absent),
        Err(e) => return Err(e),
    };
    if !meta.is_dir() {
        return Ok(VgDevDir::NotAFolder { path });
    }
    let mut entries = Vec::new();
    for entry in list_folder(&path, MAX_ENTRIES)? {
        let entry_path = path.join(&entry.name);
        let name = entry.name.to_string_lossy().into_owned();
        let is_symlink = match entry.kind {
            EntryKind::Symlink => true,
            EntryKind::Unknown => fs::symlink_metadata(&entry_path)?.is_symlink(),
            EntryKind::Directory | EntryKind::Other => false,
        };
        // A link LVM removes between the listing and its readlink (an LV deactivated
        // meanwhile) is gone, not an error.
        let target = || match fs::read_link(&entry_path) {
            Ok(target) => Ok(Some(target)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        };
        entries.push(match (is_symlink, follow) {
            (false, _) => VgDevEntry::Other { name },
            (true, Follow::No) => VgDevEntry::LinkNotFollowed { name },
            (true, Follow::TargetAndDevice) => match target()? {
                Some(target) => VgDevEntry::Symlink {
                    target,
                    reaches: link_reach(&entry_path),
                    name,
                },
                None => continue,
            },
        });
    }
    entries.sort_by(|a, b| entry_name(a).cmp(entry_name(b)));
    Ok(VgDevDir::Folder { path, entries })
}

/// Whether `link` leads to a block device the kernel has right now. A node alone
/// proves nothing: a killed command can leave `/dev/mapper/<name>` behind for a
/// device that is gone.
pub fn reaches_live_device(link: &Path) -> bool {
    live_block_device(link).is_some()
}

/// The sysfs folder of the live device `link` leads to (`Some(None)`: it leads to
/// something that is not a block device, which counts as live); `None` when it
/// dangles.
fn live_block_device(link: &Path) -> Option<Option<PathBuf>> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    match fs::metadata(link) {
        Ok(meta) if meta.file_type().is_block_device() => {
            let dev = meta.rdev();
            let (major, minor) = (nix::sys::stat::major(dev), nix::sys::stat::minor(dev));
            let sysfs = PathBuf::from(format!("/sys/dev/block/{major}:{minor}"));
            sysfs.exists().then_some(Some(sysfs))
        }
        Ok(_) => Some(None),
        Err(_) => None,
    }
}

/// What `link` reaches: nothing, a device of an LVM volume group (read from the
/// device-mapper uuid in sysfs, `LVM-<vg id><lv id>[-<layer>]`), or anything else.
fn link_reach(link: &Path) -> LinkReach {
    match live_block_device(link) {
        None => LinkReach::Nothing,
        Some(None) => LinkReach::OtherDevice,
        Some(Some(sysfs)) => fs::read_to_string(sysfs.join("dm/uuid"))
            .ok()
            .and_then(|uuid| parse_lvm_dm_uuid(uuid.trim_end()))
            .map_or(LinkReach::OtherDevice, |dm| LinkReach::VolumeGroupDevice {
                vg_uuid: dm.vg_uuid,
            }),
    }
}

/// What LVM (or udev) makes in `/dev/<vg>`: `lv -> /dev/mapper/<vg>-<lv>` (LVM,
/// with `udev_rules = 0`; hyphens in the names doubled) or `lv -> ../dm-N` (udev).
pub fn is_lv_link(vg: &str, target: &Path) -> bool {
    let Some(file) = target.file_name().and_then(|f| f.to_str()) else {
        return false;
    };
    if let Some(number) = file.strip_prefix("dm-") {
        return !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit());
    }
    let in_mapper = target
        .parent()
        .and_then(Path::file_name)
        .is_some_and(|dir| dir == "mapper");
    // The VG/LV separator is the first single hyphen; LV names never start with `-`.
    let lv_part = file.strip_prefix(&format!("{}-", vg.replace('-', "--")));
    in_mapper && lv_part.is_some_and(|lv| !lv.is_empty() && !lv.starts_with('-'))
}

fn entry_name(entry: &VgDevEntry) -> &str {
    match entry {
        VgDevEntry::Symlink { name, .. }
        | VgDevEntry::LinkNotFollowed { name }
        | VgDevEntry::Other { name } => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::partition::test_tree::TempDir;

    #[test]
    fn tells_lvm_leftovers_from_anything_else() {
        let dev = TempDir::new("vgdev");
        let read = |vg: &str| match read_vg_dev_dir(dev.path(), vg, Follow::TargetAndDevice) {
            Ok(d) => d,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(read("linstor-vg"), VgDevDir::Absent);

        let folder = dev.path().join("linstor-vg");
        if let Err(e) = fs::create_dir(&folder)
            .and_then(|()| std::os::unix::fs::symlink("../dm-4", folder.join("linstor-pool")))
        {
            panic!("{e}");
        }
        let leftover = read("linstor-vg");
        assert!(leftover.holds_only_symlinks(), "{leftover:?}");
        // Not followed: the same folder, the link named and nothing read of it.
        match read_vg_dev_dir(dev.path(), "linstor-vg", Follow::No) {
            Ok(VgDevDir::Folder { entries, .. }) => assert_eq!(
                entries,
                vec![VgDevEntry::LinkNotFollowed {
                    name: "linstor-pool".to_owned()
                }]
            ),
            other => panic!("{other:?}"),
        }

        if let Err(e) = fs::write(folder.join("notes"), "mine") {
            panic!("{e}");
        }
        assert!(!read("linstor-vg").holds_only_symlinks());

        if let Err(e) = fs::write(dev.path().join("vda"), "") {
            panic!("{e}");
        }
        assert!(matches!(read("vda"), VgDevDir::NotAFolder { .. }));
    }
}
