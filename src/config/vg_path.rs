//! LVM's `validate_new_vg_name`: `vgcreate` refuses a name whose `/dev/<name>`
//! already exists ("already exists in filesystem"). Met only at `vgcreate`, that
//! refusal comes after a reset has already removed the old VG; checked here, it
//! comes before anything is read.
//!
//! `/dev/<vg>` of the VG this tool keeps is LVM's own folder of LV links, and a
//! kill can leave it behind empty or with dangling links (the planner clears those):
//! neither is a reason to refuse. Anything else at that path belongs to someone else.
//!
//! Here only what the folder's listing tells is judged (a file, a device node, a
//! folder): where each link leads is read by the planner, and only for a plan that
//! runs `vgcreate` — a steady start on a VG of 1,000 volumes so reads no link.
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
    match read_vg_dev_dir(dev, vg, Follow::No, &|_| false).map_err(unreadable)? {
        // (A read never says `NotRead`.)
        VgDevDir::Absent | VgDevDir::NotRead => Ok(()),
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
                    VgDevEntry::Symlink { .. } | VgDevEntry::LinkNotFollowed { .. } => {}
                }
            }
            Ok(())
        }
    }
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
    fn device_nodes_files_and_non_links_are_taken() {
        let dev = TempDir::new("vgpath-taken");
        must(fs::write(dev.path().join("vda"), ""));
        must(symlink("/proc/self/fd/0", dev.path().join("stdin")));
        let text = message(dev.path(), "vda");
        assert!(
            text.contains("vda already exists and is a file") && text.contains("VOLUME_GROUP"),
            "{text}"
        );
        assert!(message(dev.path(), "stdin").contains("is a symlink"));

        // A folder with a file in it is someone's, even next to LVM's links.
        must(fs::create_dir(dev.path().join("mixed")));
        must(symlink("../dm-3", dev.path().join("mixed/pool")));
        must(fs::write(dev.path().join("mixed/notes"), "mine"));
        assert!(message(dev.path(), "mixed").contains("`notes`, which is not a symlink"));

        // Links are not followed here: where they lead is the planner's question
        // (`vg_dev_dir::is_lv_link`), asked before a `vgcreate` only.
        must(fs::create_dir(dev.path().join("vg")));
        must(symlink(
            "/dev/mapper/other-pool",
            dev.path().join("vg/pool"),
        ));
        assert_eq!(message(dev.path(), "vg"), "");
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
    }
}
