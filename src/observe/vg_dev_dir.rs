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
use crate::observe::live::dm::{parse_lvm_dm_uuid, LvmDmUuid};

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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum LinkReach {
    /// No device: the link dangles, or it leads through a `/dev/mapper` node that
    /// now reaches a device of another name (a killed command's node whose minor
    /// device-mapper gave to a device it made next: `lvol0 ->
    /// /dev/mapper/<vg>-lvol0` after LVM's temporary `lvol0` was removed and the
    /// pool's `_tmeta` took its minor).
    Nothing,
    /// A live device of a volume (any layer) the VG on this partition lists: a
    /// reset removes it, and the link then dangles.
    ListedVolume { dm_name: String },
    /// Any other live device: another VG's, one no VG lists, a disk, or one whose
    /// name could not be read.
    OtherDevice { dm_name: Option<String> },
}

impl LinkReach {
    pub fn is_live(&self) -> bool {
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
    /// Not looked at: a start's first look at the VG of this name, which decides
    /// nothing on the folder (only a plan that runs `vgcreate` does, and such a plan
    /// is decided again from a look that reads it). The configuration check has
    /// already refused a folder holding anything but links.
    NotRead,
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

/// Reads `<dev>/<vg>` (`dev` stands for `/dev`), following symlinks as `follow` says;
/// `listed` tells the LVM devices of volumes the VG on the partition lists.
pub fn read_vg_dev_dir(
    dev: &Path,
    vg: &str,
    follow: Follow,
    listed: &dyn Fn(&LvmDmUuid) -> bool,
) -> io::Result<VgDevDir> {
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
        // The path is made only for a link that is followed or an entry of unknown
        // kind: a steady start lists a thousand names and needs nothing more.
        let entry_path = || path.join(&entry.name);
        let is_symlink = match entry.kind {
            EntryKind::Symlink => true,
            EntryKind::Unknown => fs::symlink_metadata(entry_path())?.is_symlink(),
            EntryKind::Directory | EntryKind::Other => false,
        };
        let followed = match (is_symlink, follow) {
            (true, Follow::TargetAndDevice) => {
                let link = entry_path();
                match fs::read_link(&link) {
                    Ok(target) => Some((link, target)),
                    // A link LVM removes between the listing and its readlink (an LV
                    // deactivated meanwhile) is gone, not an error.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                }
            }
            _ => None,
        };
        let name = crate::ffi::dir::name_string(entry.name);
        entries.push(match (is_symlink, followed) {
            (false, _) => VgDevEntry::Other { name },
            (true, None) => VgDevEntry::LinkNotFollowed { name },
            (true, Some((link, target))) => VgDevEntry::Symlink {
                reaches: link_reach(&link, &target, listed),
                target,
                name,
            },
        });
    }
    entries.sort_by(|a, b| entry_name(a).cmp(entry_name(b)));
    Ok(VgDevDir::Folder { path, entries })
}

/// Whether `link` (whose target is `target`) leads to a block device the kernel has
/// right now and that it names. A node alone proves nothing: a killed command can
/// leave `/dev/mapper/<name>` behind for a device that is gone, or whose minor now
/// belongs to another device.
pub fn reaches_live_device(link: &Path, target: &Path) -> bool {
    link_reach(link, target, &|_| false).is_live()
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

/// What `link` (whose target is `target`) reaches, read from the device's
/// device-mapper name and uuid in sysfs (`LVM-<vg id><lv id>[-<layer>]`).
fn link_reach(link: &Path, target: &Path, listed: &dyn Fn(&LvmDmUuid) -> bool) -> LinkReach {
    let sysfs = match live_block_device(link) {
        None => return LinkReach::Nothing,
        Some(None) => return LinkReach::OtherDevice { dm_name: None },
        Some(Some(sysfs)) => sysfs,
    };
    let read = |file: &str| {
        fs::read_to_string(sysfs.join(file))
            .ok()
            .map(|s| s.trim_end().to_owned())
    };
    let dm_name = read("dm/name");
    // A `/dev/mapper` node is named after its device: reaching a device of another
    // name, it is stale.
    let in_mapper = target
        .parent()
        .and_then(Path::file_name)
        .is_some_and(|dir| dir == "mapper");
    if in_mapper && target.file_name().and_then(|f| f.to_str()) != dm_name.as_deref() {
        return LinkReach::Nothing;
    }
    match (
        dm_name,
        read("dm/uuid").as_deref().and_then(parse_lvm_dm_uuid),
    ) {
        (Some(dm_name), Some(ids)) if listed(&ids) => LinkReach::ListedVolume { dm_name },
        (dm_name, _) => LinkReach::OtherDevice { dm_name },
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
        let read =
            |vg: &str| match read_vg_dev_dir(dev.path(), vg, Follow::TargetAndDevice, &|_| false) {
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
        match read_vg_dev_dir(dev.path(), "linstor-vg", Follow::No, &|_| false) {
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
