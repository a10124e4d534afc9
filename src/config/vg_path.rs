//! LVM's `validate_new_vg_name`: `vgcreate` refuses a name whose `/dev/<name>`
//! already exists ("already exists in filesystem"). Met only at `vgcreate`, that
//! refusal comes after a reset has already removed the old VG; checked here, it
//! comes before anything is read.
//!
//! `/dev/<vg>` of the VG this tool keeps is LVM's own folder of LV links, and a
//! kill can leave it behind empty or with dangling links (the planner clears those):
//! neither is a reason to refuse. Anything else at that path belongs to someone else.
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use thiserror::Error;

use crate::observe::vg_dev_dir::{read_vg_dev_dir, Follow, VgDevDir, VgDevEntry};

/// Where LVM puts VG folders (its `devices/dir`, `/dev` unless lvm.conf says otherwise).
pub const DEV_DIR: &str = "/dev";

/// Names of `/dev` entries every Linux host has (made by devtmpfs, udev, systemd or
/// the container runtime). They are refused even when the `/dev` this tool sees
/// lacks them: a container's `/dev` is not the host's, and on the host LVM's
/// `/dev/<vg>` would collide with them.
const RESERVED: &[(&str, &str)] = &[
    (
        "mapper",
        "/dev/mapper is device-mapper's folder, where LVM puts every volume",
    ),
    (
        "disk",
        "/dev/disk holds udev's by-id, by-label and by-uuid links",
    ),
    ("block", "/dev/block holds udev's links by major:minor"),
    ("char", "/dev/char holds udev's links by major:minor"),
    ("bus", "/dev/bus holds USB device nodes"),
    ("pts", "/dev/pts is the pseudo-terminal filesystem"),
    ("shm", "/dev/shm is the shared-memory filesystem"),
    (
        "mqueue",
        "/dev/mqueue is the POSIX message-queue filesystem",
    ),
    ("hugepages", "/dev/hugepages is the huge-page filesystem"),
    ("fd", "/dev/fd links to the process's file descriptors"),
    ("net", "/dev/net holds the tun device"),
    ("input", "/dev/input holds input device nodes"),
    ("cpu", "/dev/cpu holds per-CPU device nodes"),
    ("dri", "/dev/dri holds graphics device nodes"),
    ("snd", "/dev/snd holds sound device nodes"),
    ("vfio", "/dev/vfio holds VFIO device nodes"),
];

#[derive(Debug, Error)]
pub enum VgPathError {
    #[error(
        "volume group name `{name}` is reserved: {why}, and the volume group's /dev/{name} \
         would collide with it; choose another VOLUME_GROUP"
    )]
    Reserved { name: String, why: &'static str },
    #[error(
        "{path} already exists and is {found}; LVM refuses to create a volume group whose \
         /dev path is taken (\"already exists in filesystem\"); choose another VOLUME_GROUP"
    )]
    Taken { path: PathBuf, found: String },
    #[error("cannot inspect {path} to check that the volume group name is free: {source}")]
    Unreadable { path: PathBuf, source: io::Error },
}

/// Checks that LVM can create (or keep) volume group `vg` under `dev` (`/dev`).
pub fn check_vg_path_free(dev: &Path, vg: &str) -> Result<(), VgPathError> {
    if let Some((_, why)) = RESERVED.iter().find(|(name, _)| *name == vg) {
        return Err(VgPathError::Reserved {
            name: vg.to_owned(),
            why,
        });
    }
    let path = dev.join(vg);
    let unreadable = |source| VgPathError::Unreadable {
        path: path.clone(),
        source,
    };
    let taken = |found: String| {
        Err(VgPathError::Taken {
            path: path.clone(),
            found,
        })
    };
    // Only the targets decide here: whether each link is LVM's.
    match read_vg_dev_dir(dev, vg, Follow::TargetOnly).map_err(unreadable)? {
        VgDevDir::Absent => Ok(()),
        VgDevDir::NotAFolder { path } => {
            let kind = fs::symlink_metadata(&path).map_err(unreadable)?;
            taken(describe_file_type(kind.file_type()).to_owned())
        }
        VgDevDir::Folder { entries, .. } => {
            for entry in entries {
                match entry {
                    VgDevEntry::Other { name } => {
                        return taken(format!(
                            "a folder holding `{name}`, which is not a symlink (LVM keeps only \
                             links to its volumes there)"
                        ))
                    }
                    VgDevEntry::Symlink { name, target, .. } if !is_lv_link(vg, &target) => {
                        return taken(format!(
                            "a folder holding `{name}` -> {}, which is not a link to a \
                             device-mapper device of volume group `{vg}`",
                            target.display()
                        ))
                    }
                    VgDevEntry::Symlink { .. } | VgDevEntry::LinkNotFollowed { .. } => {}
                }
            }
            Ok(())
        }
    }
}

/// What LVM (or udev) makes in `/dev/<vg>`: `lv -> /dev/mapper/<vg>-<lv>` (LVM,
/// with `udev_rules = 0`; hyphens in the names doubled) or `lv -> ../dm-N` (udev).
fn is_lv_link(vg: &str, target: &Path) -> bool {
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

fn describe_file_type(kind: fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_block_device() {
        "a block device"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_symlink() {
        "a symlink"
    } else if kind.is_file() {
        "a file"
    } else {
        "something other than a folder"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::partition::test_tree::TempDir;
    use std::os::unix::fs::symlink;

    fn must(result: io::Result<()>) {
        if let Err(e) = result {
            panic!("{e}");
        }
    }

    fn message(dev: &Path, vg: &str) -> String {
        match check_vg_path_free(dev, vg) {
            Ok(()) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn lvm_and_host_folders_are_reserved_everywhere() {
        let dev = TempDir::new("vgpath-reserved");
        for name in ["mapper", "disk", "pts", "shm"] {
            let text = message(dev.path(), name);
            assert!(text.contains("is reserved"), "{name}: {text}");
            assert!(text.contains(&format!("/dev/{name}")), "{name}: {text}");
        }
    }

    #[test]
    fn device_nodes_files_and_foreign_links_are_taken() {
        let dev = TempDir::new("vgpath-taken");
        must(fs::write(dev.path().join("vda"), ""));
        must(symlink("/proc/self/fd/0", dev.path().join("stdin")));
        let text = message(dev.path(), "vda");
        assert!(
            text.contains("vda already exists and is a file") && text.contains("VOLUME_GROUP"),
            "{text}"
        );
        assert!(message(dev.path(), "stdin").contains("is a symlink"));

        // udev's /dev/block: links, but to disks, not to device-mapper devices.
        must(fs::create_dir(dev.path().join("byno")));
        must(symlink("../vda", dev.path().join("byno/254:0")));
        assert!(message(dev.path(), "byno").contains("254:0"));

        // A folder with a file in it is someone's, even next to LVM's links.
        must(fs::create_dir(dev.path().join("mixed")));
        must(symlink("../dm-3", dev.path().join("mixed/pool")));
        must(fs::write(dev.path().join("mixed/notes"), "mine"));
        assert!(message(dev.path(), "mixed").contains("`notes`, which is not a symlink"));

        // Links into /dev/mapper, but to another VG's volumes.
        must(fs::create_dir(dev.path().join("vg")));
        must(symlink(
            "/dev/mapper/other-pool",
            dev.path().join("vg/pool"),
        ));
        assert!(message(dev.path(), "vg").contains("other-pool"));
    }

    #[test]
    fn our_own_vg_folder_and_its_leftovers_are_accepted() {
        let dev = TempDir::new("vgpath-ours");
        assert_eq!(message(dev.path(), "linstor-vg"), "");
        let folder = dev.path().join("linstor-vg");
        // Left empty by a killed command.
        must(fs::create_dir(&folder));
        assert_eq!(message(dev.path(), "linstor-vg"), "");
        // LVM's links (dangling after a kill) and udev's.
        must(symlink(
            "/dev/mapper/linstor--vg-linstor--pool",
            folder.join("linstor-pool"),
        ));
        must(symlink("../dm-12", folder.join("pvc-1_00000")));
        assert_eq!(message(dev.path(), "linstor-vg"), "");
        // `linstor-vg` is not a prefix of `linstor--vg2-…` once hyphens are doubled.
        must(symlink(
            "/dev/mapper/linstor--vg2-pool",
            folder.join("other"),
        ));
        assert!(message(dev.path(), "linstor-vg").contains("linstor--vg2-pool"));
        // VG `a`'s prefix `a-` also starts VG `a-b`'s `a--b-lv`.
        must(fs::create_dir(dev.path().join("a")));
        must(symlink("/dev/mapper/a--b-lv", dev.path().join("a/lv")));
        assert!(message(dev.path(), "a").contains("a--b-lv"));
    }
}
