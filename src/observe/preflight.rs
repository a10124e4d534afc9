//! What must be true before a plan writes anything, so that no LVM command refuses
//! halfway through it (a reset whose `pvremove` refuses after `vgremove` ran has
//! already destroyed the VG). Gathered only for plans that write — a steady start
//! reads none of it — and whenever the signature probe runs anyway.
//!
//! LVM2 2.03.16 checks these inside `pvremove`/`pvcreate` (`pvcreate_each_device` in
//! tools/toollib.c: the device filters with the full md check, then an exclusive
//! open), while `lvremove`/`vgremove` before them use the quick md check and no
//! exclusive open. What each of LVM's checks becomes here:
//!
//! | LVM's check | here |
//! |---|---|
//! | md component, full check (0.90/1.0 at the end, 1.1 at 0, 1.2 at 4 KiB; `dev-md.c`) | libblkid's full probe, beside our label too (`linux_raid_member`) |
//! | swap and LUKS signatures (`pvcreate`'s wipe prompt, answered "no") | the same probe (`swap`, `crypto_LUKS`) |
//! | firmware raid, lvm1, partition table inside the partition (`fwraid`, `signature`, `partitioned` filters) | the same probe (`*_raid_member`, `LVM1_member`, PTTYPE) |
//! | multipath component (`mpath` filter: an `mpath-` holder of the disk) | holders of the partition and of its disk |
//! | exclusive open (`label_scan_devs_excl`): an assembled md array, a dm-crypt or other device-mapper mapping, a mount, active swap | sysfs holders that LVM did not make; with no holders, an `O_EXCL` open |
//! | read-only device (the write fails with `EROFS`) | `BLKROGET` and sysfs `ro` of the partition and its disk |
//! | devices file, `filter`/`global_filter`, duplicate PVs | every command is scoped with `--devices`, which bypasses them (the host's `global_filter` is the planner's own refusal) |
//! | `pv_min_size` (`usable` filter, 2 MiB by default) | not checked: only a blank partition can be that small, and there `pvcreate` is the first command |
//! | multipath `wwids` file (a disk multipathd would claim but has not yet) | not checked: no holder exists yet; the static LVM reads that file only if the host's is mounted in |
use super::live::{HoldersReader, LiveError, StackedDevice};
use super::md_magic::{self, MdMagic};
use super::signature::{Signature, Usage};
use crate::ffi::blkdev;
use crate::observe::attribute_file::read_attribute_line;
use nix::libc;
use std::io;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Whether the facts were gathered: a plan that writes is decided only with them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Preflight {
    /// Not read (a start that found an LVM label and has planned nothing yet).
    #[default]
    NotGathered,
    Gathered(PreflightFacts),
}

/// What stands in the way of writing to the partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PreflightFacts {
    /// Every signature libblkid finds other than our LVM label, beside it too.
    pub foreign_signatures: Vec<ForeignSignature>,
    /// Who uses the partition (or its disk) besides LVM, in words.
    pub users: Vec<String>,
    /// Why writes would fail with `EROFS`; empty when the device is writable.
    pub read_only: Vec<String>,
    /// md metadata where LVM's full md check finds it (magic only, no checksum):
    /// `pvremove`/`pvcreate`/`vgcreate` refuse the device then.
    pub lvm_md_component: Option<MdMagic>,
    /// Whether LVM will find the kernel's thin-pool target when it creates a pool.
    pub thin_pool_target: ThinPoolTarget,
}

/// How LVM's `lvcreate` will find the thin-pool target (`target_present_version`
/// in lib/activate/activate.c: the kernel's target list, then
/// `/sys/module/dm_thin_pool`, then its compiled-in `modprobe dm-thin-pool`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ThinPoolTarget {
    /// Registered with device-mapper, or its module is loaded.
    #[default]
    Loaded,
    /// Not loaded, but a `modprobe` is where LVM runs it from, with the running
    /// kernel's modules beside it.
    Loadable,
    /// Neither: LVM's `lvcreate` would fail ("Required device-mapper target(s) not
    /// detected") — in a container image without modprobe, after a reset.
    Unavailable,
}

/// Where LVM runs modprobe from: the static build's configure found
/// `/usr/sbin/modprobe`; distribution builds use that or `/sbin/modprobe`.
const MODPROBE_PATHS: [&str; 2] = ["/usr/sbin/modprobe", "/sbin/modprobe"];

/// One signature that is not our LVM label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignSignature {
    /// libblkid's TYPE (e.g. `linux_raid_member`), for `wipefs --types`.
    pub type_name: String,
    pub usage: Usage,
    /// libblkid's words: type, usage, offset, label, uuid.
    pub described: String,
}

#[derive(Debug, Error)]
pub enum PreflightError {
    #[error("cannot list what holds it: {0}")]
    Holders(#[source] LiveError),
    #[error("cannot read {}: {source}", path.display())]
    Sysfs {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot open it to ask whether it is read-only: {0}")]
    Open(#[source] io::Error),
    #[error("BLKROGET failed: {0}")]
    ReadOnlyFlag(#[source] nix::Error),
    #[error("cannot list device-mapper's targets: {0}")]
    Targets(#[source] LiveError),
    #[error("cannot read its size or block size: {0}")]
    Size(#[source] nix::Error),
    #[error("cannot read the bytes where LVM looks for md metadata: {0}")]
    MdMagic(#[source] io::Error),
}

/// Where the facts are read from: the device node, its kernel name and its disk's.
pub struct Target<'a> {
    pub devnode: &'a Path,
    pub name: &'a str,
    pub parent: Option<&'a str>,
}

/// Reads the preflight facts of the partition, given the signatures the full probe
/// found and the devices stacked on it.
pub fn gather(
    target: &Target<'_>,
    signatures: &[Signature],
    stacked: &[StackedDevice],
    sys: &Path,
) -> Result<PreflightFacts, PreflightError> {
    let foreign_signatures = signatures
        .iter()
        .filter(|s| !s.is_lvm_label())
        .map(|s| ForeignSignature {
            type_name: s.type_name.clone(),
            usage: s.usage,
            described: s.to_string(),
        })
        .collect();
    let mut users = users(stacked, target.parent, sys)?;
    // Nothing stacked: an exclusive opener can only be a mount, active swap or a
    // program (device-mapper's own claim would show as a holder).
    if stacked.iter().all(|d| !d.on_partition) && exclusively_open(target.devnode)? {
        users.push(
            "an exclusive opener (a mounted filesystem, active swap, or a program such as mdadm)"
                .to_owned(),
        );
    }
    let mut read_only = Vec::new();
    let device =
        crate::ffi::open::open_read_only(target.devnode, 0).map_err(PreflightError::Open)?;
    if blkdev::is_read_only(&device).map_err(PreflightError::ReadOnlyFlag)? {
        read_only.push("the kernel's read-only flag is set (BLKROGET)".to_owned());
    }
    read_only.extend(sysfs_read_only(
        std::iter::once(target.name).chain(target.parent),
        sys,
    )?);
    Ok(PreflightFacts {
        foreign_signatures,
        users,
        read_only,
        lvm_md_component: lvm_md_component(&device)?,
        thin_pool_target: thin_pool_target(sys)?,
    })
}

/// Devices stacked directly on the partition that LVM did not make, and whatever
/// holds its whole disk (a multipath map, an md array of whole disks).
fn users(
    stacked: &[StackedDevice],
    disk: Option<&str>,
    sys: &Path,
) -> Result<Vec<String>, PreflightError> {
    let mut users: Vec<String> = stacked
        .iter()
        .filter(|d| d.on_partition && d.lvm_ids().is_none())
        .map(|d| describe_user(&d.kernel_name, d.dm_name.as_deref(), d.dm_uuid.as_deref()))
        .collect();
    if let Some(disk) = disk {
        let reader = HoldersReader::with_root(sys);
        for holder in reader.holders(disk).map_err(PreflightError::Holders)? {
            users.push(format!(
                "{} holds the whole disk {disk}",
                describe_user(
                    &holder.name,
                    holder.dm_name.as_deref(),
                    holder.dm_uuid.as_deref()
                )
            ));
        }
    }
    Ok(users)
}

fn thin_pool_target(sys: &Path) -> Result<ThinPoolTarget, PreflightError> {
    let targets = super::live::dm::target_names().map_err(PreflightError::Targets)?;
    if targets.iter().any(|t| t == "thin-pool") || sys.join("module/dm_thin_pool").is_dir() {
        return Ok(ThinPoolTarget::Loaded);
    }
    // modprobe needs the running kernel's modules too (a container with kmod but
    // without the host's /lib/modules cannot load anything).
    let modules = read_attribute_line(Path::new("/proc/sys/kernel/osrelease"))
        .ok()
        .flatten()
        .map(|release| Path::new("/lib/modules").join(release.trim()));
    Ok(
        if MODPROBE_PATHS.iter().any(|p| Path::new(p).exists())
            && modules.is_some_and(|dir| dir.is_dir())
        {
            ThinPoolTarget::Loadable
        } else {
            ThinPoolTarget::Unavailable
        },
    )
}

/// What LVM's full md check would find on the device ([`super::md_magic`]).
fn lvm_md_component(device: &std::fs::File) -> Result<Option<MdMagic>, PreflightError> {
    let size = blkdev::size_bytes(device).map_err(PreflightError::Size)?;
    let block = blkdev::logical_sector_size(device).map_err(PreflightError::Size)?;
    md_magic::find(device, size / 512, u64::from(block)).map_err(PreflightError::MdMagic)
}

/// `md0 (an md array)`, `mpatha (a multipath map)`, … in words an operator knows.
fn describe_user(kernel_name: &str, dm_name: Option<&str>, dm_uuid: Option<&str>) -> String {
    let shown = dm_name.unwrap_or(kernel_name);
    let what = match dm_uuid {
        Some(uuid) if uuid.starts_with("mpath-") => "a multipath map",
        Some(uuid) if uuid.starts_with("CRYPT-") => "a dm-crypt mapping",
        Some(uuid) if uuid.starts_with("LVM-") => "a volume of another volume group",
        _ if dm_name.is_some() => "a device-mapper device",
        _ if kernel_name.starts_with("md") => "an assembled md raid array",
        _ if kernel_name.starts_with("bcache") => "a bcache device",
        _ => "a device stacked on it",
    };
    format!("{shown} ({what})")
}

/// `true` when another holder claimed the device exclusively (`EBUSY` on `O_EXCL`).
fn exclusively_open(devnode: &Path) -> Result<bool, PreflightError> {
    match crate::ffi::open::open_read_only(devnode, libc::O_EXCL) {
        Ok(_) => Ok(false),
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => Ok(true),
        Err(e) => Err(PreflightError::Open(e)),
    }
}

/// The block devices among `names` whose sysfs `ro` flag is set.
fn sysfs_read_only<'a>(
    names: impl Iterator<Item = &'a str>,
    sys: &Path,
) -> Result<Vec<String>, PreflightError> {
    let mut why = Vec::new();
    for name in names {
        let path = sys.join("class/block").join(name).join("ro");
        match read_attribute_line(&path) {
            Ok(Some(flag)) if flag.trim() == "1" => why.push(format!("{} is 1", path.display())),
            Ok(_) => {}
            Err(source) => return Err(PreflightError::Sysfs { path, source }),
        }
    }
    Ok(why)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::live::stacked_on;
    use crate::observe::partition::test_tree::FakeSysfs;

    #[test]
    fn users_are_what_lvm_did_not_make_on_the_partition_or_its_disk() {
        let fake = FakeSysfs::new();
        fake.add_disk("vda", 254, 0, 1000);
        fake.add_partition("vda", "vda1", (254, 1), 1, 900, Some("linstor-storage"));
        let vg = "A".repeat(32);
        let lv = "B".repeat(32);
        fake.add_dm("dm-0", 0, "vg-pool_tdata", &format!("LVM-{vg}{lv}"));
        fake.add_holder("vda/vda1", "dm-0");
        let stacked =
            |fake: &FakeSysfs| match stacked_on(&HoldersReader::with_root(fake.sys()), "vda1") {
                Ok(s) => s,
                Err(e) => panic!("{e}"),
            };
        // Our own LVM device: not a user.
        let ours = users(&stacked(&fake), Some("vda"), &fake.sys());
        assert!(matches!(&ours, Ok(u) if u.is_empty()), "{ours:?}");
        // An md array on the partition and a multipath map over the whole disk are.
        fake.add_disk("md0", 9, 0, 800);
        fake.add_holder("vda/vda1", "md0");
        fake.add_dm("dm-7", 7, "mpatha", "mpath-3600a0b8");
        fake.add_holder("vda", "dm-7");
        let found = users(&stacked(&fake), Some("vda"), &fake.sys());
        assert_eq!(
            found.ok(),
            Some(vec![
                "md0 (an assembled md raid array)".to_owned(),
                "mpatha (a multipath map) holds the whole disk vda".to_owned(),
            ])
        );
    }

    #[test]
    fn a_read_only_flag_of_the_partition_or_its_disk_is_reported() {
        let fake = FakeSysfs::new();
        fake.add_disk("vda", 254, 0, 1000);
        fake.add_partition("vda", "vda1", (254, 1), 1, 900, Some("linstor-storage"));
        let names = || ["vda1", "vda"].into_iter();
        // No `ro` file (an old kernel) or `0`: writable.
        assert!(matches!(sysfs_read_only(names(), &fake.sys()), Ok(w) if w.is_empty()));
        let ro = fake.sys().join("class/block/vda/ro");
        if let Err(e) = std::fs::write(&ro, "1\n") {
            panic!("{e}");
        }
        let why = sysfs_read_only(names(), &fake.sys());
        assert_eq!(why.ok(), Some(vec![format!("{} is 1", ro.display())]));
    }

    #[test]
    fn users_are_named_as_an_operator_knows_them() {
        assert_eq!(
            describe_user("md0", None, None),
            "md0 (an assembled md raid array)"
        );
        assert_eq!(
            describe_user("dm-4", Some("mpatha"), Some("mpath-3600a0b8")),
            "mpatha (a multipath map)"
        );
        assert_eq!(
            describe_user("dm-5", Some("secret"), Some("CRYPT-LUKS2-abc")),
            "secret (a dm-crypt mapping)"
        );
        assert_eq!(
            describe_user("dm-6", Some("plain"), None),
            "plain (a device-mapper device)"
        );
    }
}
