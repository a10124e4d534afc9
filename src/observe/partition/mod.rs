//! Block devices, and the one partition this tool owns, found by its GPT label.
//!
//! Two backends read the same facts: libudev (feature `udev`) and plain sysfs
//! plus udev's database files (always available; the static build's only one).
//! They differ only in enumeration; `raw` turns what either reads into a
//! [`BlockDevice`], and [`find_by_label`] does the matching for both.
//!
//! # Where a label comes from, and when a GPT is read
//!
//! Labels compare by the rule in `label`: the GPT name as libblkid decodes
//! it, trailing whitespace removed, on both sides. udev's `ID_PART_ENTRY_NAME`
//! is that name already. Without udev's database (a container without the
//! host's `/run/udev`, a host without udevd) only the kernel's `PARTNAME` is
//! left, and it is a 7-bit reduction of the name: "stockage-é" appears as
//! `stockage-i` on a current kernel and with a raw 0xE9 byte on older ones.
//! So the GPT entry itself is read with libblkid — one probe of the disk, never
//! of the partition's contents — in exactly these cases, and no others:
//!
//! 1. listing: a `PARTNAME` that provably lost characters (`!` or bytes
//!    outside printable ASCII) is replaced by its GPT entry name, so that
//!    `devices` and error messages show the real name;
//! 2. resolving: a partition matched only through its `PARTNAME` is confirmed
//!    against its GPT entry before it is used, because a plain-ASCII
//!    `PARTNAME` may stand for a non-ASCII name ("stockage-i" for
//!    "stockage-é"). That is one probe of the disk holding the match, the disk
//!    about to be written to anyway; if it cannot be read the match is refused;
//! 3. resolving a label that is not printable ASCII: every partition known
//!    only by a plain `PARTNAME` could be a reduction of it, so their disks'
//!    GPTs are read to find every partition that carries it.
//!
//! A steady start therefore reads no GPT when udev's database is there, and
//! reads one disk's GPT when it is not (plus the disks of visibly mangled
//! names, and all labelled disks only for a non-ASCII wanted label or when
//! the label is not found, to list the real names in the error). The
//! `devices` command reads the GPT of every disk with a kernel-named
//! partition ([`list_block_devices_with_gpt_names`]).
//!
//! One device that cannot be read never breaks the listing: it is left out
//! with a warning, and a GPT that cannot be read leaves the kernel's name,
//! marked [`LabelSource::KernelLossy`] when it is known to be wrong.

mod gpt_entries;
mod label;
mod raw;
mod sysfs_backend;
#[cfg(test)]
pub(crate) mod test_tree;
#[cfg(test)]
mod tests;
#[cfg(feature = "udev")]
mod udev_backend;
mod udev_db;
mod uevent;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::units::Bytes;
use serde::Serialize;

pub use gpt_entries::{
    DirectThenLibblkid, EntryUnreadable, GptEntryReader, GptReadError, Libblkid, NoGptAccess,
};
pub use sysfs_backend::SysfsBackend;

use gpt_entries::relabel_from_gpt;
use label::{is_printable_ascii, trim_label};

/// The text parsers of the sysfs backend, public for the fuzz tests
/// (tests/fuzz_targets.rs); the tool itself reaches them through [`SysfsBackend`].
#[doc(hidden)]
pub mod parsers {
    use std::collections::BTreeMap;

    /// The properties (`E:` lines) of a udev database file.
    pub fn parse_udev_db(text: &str) -> BTreeMap<String, String> {
        super::udev_db::parse_udev_db(text)
    }

    /// Undoes the `\xNN` escaping udev applies to blkid values.
    pub fn decode_udev_escapes(value: &str) -> String {
        super::udev_db::decode_udev_escapes(value)
    }

    /// The keys and values of a sysfs `uevent` file.
    pub fn parse_uevent(text: &str) -> BTreeMap<String, String> {
        super::uevent::parse_uevent(text)
    }
}

/// Where block-device facts are read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscoveryBackend {
    /// libudev, via the `udev` crate (only in builds with the `udev` feature).
    #[cfg(feature = "udev")]
    Udev,
    /// sysfs and `/run/udev/data` read directly.
    Sysfs,
}

impl Default for DiscoveryBackend {
    /// libudev when compiled in, sysfs otherwise.
    fn default() -> Self {
        #[cfg(feature = "udev")]
        {
            DiscoveryBackend::Udev
        }
        #[cfg(not(feature = "udev"))]
        {
            DiscoveryBackend::Sysfs
        }
    }
}

impl fmt::Display for DiscoveryBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            #[cfg(feature = "udev")]
            DiscoveryBackend::Udev => "udev",
            DiscoveryBackend::Sysfs => "sysfs",
        })
    }
}

/// An unknown or not-compiled-in backend name.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UnknownBackend(String);

impl FromStr for DiscoveryBackend {
    type Err = UnknownBackend;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            #[cfg(feature = "udev")]
            "udev" => Ok(DiscoveryBackend::Udev),
            #[cfg(not(feature = "udev"))]
            "udev" => Err(UnknownBackend(
                "this build has no libudev discovery backend (it was built without the `udev` \
                 feature, as the static build is); use `sysfs`, which reads the same facts"
                    .to_owned(),
            )),
            "sysfs" => Ok(DiscoveryBackend::Sysfs),
            other => Err(UnknownBackend(format!(
                "unknown discovery backend {other:?}; expected `udev` or `sysfs`"
            ))),
        }
    }
}

/// What kind of block device an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    /// A whole disk (including loop devices and zram).
    Disk,
    /// A kernel partition of a disk.
    Partition,
    /// A device-mapper device (`dm-N`): LVM volumes, crypt mappings, …
    DeviceMapper,
}

/// Where a partition label was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelSource {
    /// udev's `ID_PART_ENTRY_NAME` (blkid's full decoding of the GPT name).
    Udev,
    /// The kernel's `PARTNAME` uevent key, printable ASCII: the GPT name unless
    /// that held non-ASCII characters the kernel reduced to 7 bits, which only
    /// the GPT entry can tell (a match on it is confirmed before use).
    Kernel,
    /// The GPT entry's name, read from the disk by libblkid's partition-table
    /// probing (where udev had not recorded the name and the kernel's could not
    /// be trusted).
    GptEntry,
    /// The kernel's `PARTNAME`, which provably lost characters (`!`, or bytes
    /// outside printable ASCII, shown as U+FFFD when not UTF-8), and the GPT
    /// entry could not be read. Shown, never matched.
    KernelLossy,
}

/// One block device as the kernel (and udev, if it has seen it) describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlockDevice {
    /// Kernel name: `vda1`, `loop0`, `dm-3`.
    pub name: String,
    /// Device node: `/dev/vda1`.
    pub devnode: PathBuf,
    pub major: u32,
    pub minor: u32,
    pub kind: DeviceKind,
    /// For partitions, the kernel name of the disk they are on (`vda`).
    pub parent: Option<String>,
    /// Size from sysfs (its `size` counts 512-byte sectors).
    pub size_bytes: Bytes,
    /// GPT partition name, decoded (may contain spaces and any UTF-8).
    pub partition_label: Option<String>,
    pub label_source: Option<LabelSource>,
    /// GPT unique partition GUID, lower case.
    pub partition_uuid: Option<String>,
    pub partition_number: Option<u32>,
    /// Device-mapper name (`linstor--vg-linstor--pool`) for `dm-N` devices.
    pub dm_name: Option<String>,
    /// Device-mapper uuid (`LVM-…` for LVM volumes).
    pub dm_uuid: Option<String>,
}

/// Reading the machine's block devices failed.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("cannot read {}: {source}; block-device discovery needs sysfs (and, in a \
             container, /run/udev from the host for partition labels)", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: {what} is {found:?}, expected {expected}", path.display())]
    Parse {
        path: PathBuf,
        what: String,
        found: String,
        expected: &'static str,
    },
    #[error(
        "libudev could not enumerate block devices: {source}; try the sysfs discovery backend"
    )]
    Udev {
        #[source]
        source: io::Error,
    },
}

/// Resolving the partition label to exactly one device failed.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("{}", not_found_message(label, existing_labels))]
    NotFound {
        label: String,
        /// Every labelled partition that does exist: (label, device node).
        existing_labels: Vec<(String, PathBuf)>,
    },
    #[error("{}", ambiguous_message(label, devices))]
    Ambiguous {
        label: String,
        devices: Vec<BlockDevice>,
    },
    #[error(
        "{}: its kernel partition name (PARTNAME) matches {label:?}, but its GPT entry on {} \
         could not be read to confirm the name ({source}). The kernel reduces GPT names to \
         7-bit ASCII (\"stockage-é\" becomes \"stockage-i\"), so its name alone may belong to \
         a differently named partition; refusing to guess. Make sure the disk is readable and \
         holds a GPT, or give this tool udev's database (mount the host's /run/udev) so udev's \
         full name is used",
        device.display(),
        disk.display()
    )]
    Unconfirmed {
        label: String,
        device: PathBuf,
        disk: PathBuf,
        /// Boxed: the cause is large and this error travels on every `?`.
        #[source]
        source: Box<EntryUnreadable>,
    },
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
}

fn not_found_message(label: &str, existing: &[(String, PathBuf)]) -> String {
    let mut msg = format!("no partition has the GPT partition label {label:?}; ");
    if existing.is_empty() {
        msg.push_str(
            "no partition on this machine has a label at all (is the disk GPT-partitioned and \
             its partition table read by the kernel?)",
        );
    } else {
        let list: Vec<String> = existing
            .iter()
            .map(|(l, node)| format!("{l:?} on {}", node.display()))
            .collect();
        msg.push_str(&format!("the labels that exist are: {}", list.join(", ")));
    }
    msg.push_str(
        ". Set the partition label to use (PARTITION_LABEL) to one of them, or give the \
         partition that label (e.g. `sgdisk --change-name=<N>:<label> <disk>`); \
         `lsblk -o NAME,PARTLABEL` shows the labels",
    );
    msg
}

fn ambiguous_message(label: &str, devices: &[BlockDevice]) -> String {
    let list: Vec<String> = devices
        .iter()
        .map(|d| match d.size_bytes.0 {
            0 => d.devnode.display().to_string(),
            bytes => format!("{} ({bytes} bytes)", d.devnode.display()),
        })
        .collect();
    format!(
        "{} devices have the GPT partition label {label:?}: {}; refusing to pick one. Give \
         all but the intended partition a different label (`sgdisk --change-name`), or detach \
         the disk that should not be used; `lsblk -o NAME,PARTLABEL` shows the labels",
        devices.len(),
        list.join(", ")
    )
}

/// `device` with its size, for the refusal that names it: the label search's
/// listing reads no sizes (the sysfs backend leaves 0), so it is read once, from
/// sysfs, when the refusal is made. Unknown stays 0 (the message then gives none).
fn with_size(mut device: BlockDevice) -> BlockDevice {
    if device.size_bytes.0 == 0 {
        let path = Path::new("/sys/class/block")
            .join(&device.name)
            .join("size");
        if let Some(sectors) = crate::observe::attribute_file::read_number(&path) {
            device.size_bytes = Bytes(u128::from(sectors) * 512);
        }
    }
    device
}

/// All block devices except RAM disks, ordered by device number. A device that
/// cannot be read is left out with a warning; only an unreadable sysfs (or
/// libudev failing as a whole) is an error.
pub fn list_block_devices(backend: DiscoveryBackend) -> Result<Vec<BlockDevice>, DiscoveryError> {
    match backend {
        #[cfg(feature = "udev")]
        DiscoveryBackend::Udev => {
            let mut devices = udev_backend::list_block_devices()?;
            relabel_lossy(&mut devices, &DirectThenLibblkid);
            Ok(devices)
        }
        DiscoveryBackend::Sysfs => SysfsBackend::new().list_block_devices(),
    }
}

/// [`list_block_devices`] as finding a partition by its label needs it: with the
/// sysfs backend, unlabeled device-mapper devices come without size and dm name,
/// whole disks without size (see [`SysfsBackend::list_for_labels`]); libudev
/// hands out everything anyway.
pub fn list_block_devices_for_labels(
    backend: DiscoveryBackend,
) -> Result<Vec<BlockDevice>, DiscoveryError> {
    match backend {
        #[cfg(feature = "udev")]
        DiscoveryBackend::Udev => list_block_devices(backend),
        DiscoveryBackend::Sysfs => SysfsBackend::new().list_for_labels(),
    }
}

/// [`list_block_devices_for_labels`], and the device-mapper list the sysfs backend
/// read on the way (see [`SysfsBackend::list_for_labels_keeping_dm_list`]).
pub fn list_block_devices_for_labels_keeping_dm_list(
    backend: DiscoveryBackend,
) -> Result<
    (
        Vec<BlockDevice>,
        Option<Vec<crate::ffi::dm_list::ListedDevice>>,
    ),
    DiscoveryError,
> {
    match backend {
        #[cfg(feature = "udev")]
        DiscoveryBackend::Udev => Ok((list_block_devices(backend)?, None)),
        DiscoveryBackend::Sysfs => SysfsBackend::new().list_for_labels_keeping_dm_list(),
    }
}

/// [`list_block_devices`], with every kernel-named partition's label replaced
/// by its GPT entry name (one libblkid probe per disk with such a partition):
/// for `devices`, whose whole purpose is to show the real names, and which is
/// not run on every start.
pub fn list_block_devices_with_gpt_names(
    backend: DiscoveryBackend,
) -> Result<Vec<BlockDevice>, DiscoveryError> {
    let mut devices = list_block_devices(backend)?;
    relabel_kernel_named(&mut devices, &Libblkid, "list it by its real name");
    Ok(devices)
}

/// Replaces every plain kernel name by its GPT entry name where the GPT can
/// be read; logs (at debug level: the kernel's name stays usable) where not.
fn relabel_kernel_named(devices: &mut [BlockDevice], reader: &dyn GptEntryReader, why: &str) {
    let unreadable = relabel_from_gpt(devices, reader, |d| {
        d.label_source == Some(LabelSource::Kernel)
    });
    for u in unreadable {
        if let Some(d) = devices.get(u.index) {
            tracing::debug!(
                partition = %d.devnode.display(),
                "cannot read the GPT entry on {} to {why}: {}; the kernel's name stays",
                u.disk.display(),
                u.cause
            );
        }
    }
}

/// Listing rule 1 (module docs): kernel names that provably lost characters
/// are replaced by their GPT entry names where the GPT can be read.
pub(crate) fn relabel_lossy(devices: &mut [BlockDevice], reader: &dyn GptEntryReader) {
    let unreadable = relabel_from_gpt(devices, reader, |d| {
        d.label_source == Some(LabelSource::KernelLossy)
    });
    for u in unreadable {
        if let Some(d) = devices.get(u.index) {
            tracing::warn!(
                partition = %d.devnode.display(),
                "the kernel could not represent this partition's GPT name, and the GPT \
                 entry could not be read from {}: {}; its label is not matched",
                u.disk.display(),
                u.cause
            );
        }
    }
}

/// The one device whose GPT partition label is `label` (see [`find_by_label`]).
pub fn resolve_partition_by_label(
    label: &str,
    backend: DiscoveryBackend,
) -> Result<BlockDevice, ResolveError> {
    let devices = list_block_devices(backend)?;
    find_by_label(&devices, label)
}

impl SysfsBackend {
    /// [`resolve_partition_by_label`] against this backend's tree, over the
    /// listing a start resolves with ([`SysfsBackend::list_for_labels`]).
    pub fn resolve_partition_by_label(&self, label: &str) -> Result<BlockDevice, ResolveError> {
        find_by_label_with(&self.list_for_labels()?, label, self.gpt_reader())
    }
}

/// Picks the device labelled `label` out of `devices`, reading GPT entries
/// with libblkid where the kernel's name cannot be trusted (module docs).
/// Labels compare after trailing whitespace is removed from both (the rule of
/// `label`); nothing else is folded. Never guesses: zero or several matches
/// are errors that list what was found, and a match known only from the
/// kernel's 7-bit name is confirmed against the GPT before it is returned.
pub fn find_by_label(devices: &[BlockDevice], label: &str) -> Result<BlockDevice, ResolveError> {
    find_by_label_with(devices, label, &DirectThenLibblkid)
}

fn find_by_label_with(
    devices: &[BlockDevice],
    label: &str,
    reader: &dyn GptEntryReader,
) -> Result<BlockDevice, ResolveError> {
    let wanted = trim_label(label);
    let mut devices = devices.to_vec();
    let kernel_named = |d: &BlockDevice| d.label_source == Some(LabelSource::Kernel);
    if !is_printable_ascii(wanted) {
        // Rule 3: any plain kernel name may be the 7-bit reduction of `wanted`.
        relabel_kernel_named(&mut devices, reader, "compare it with a non-ASCII label");
    }
    // Rule 2: kernel-named candidates are confirmed against their GPT entries.
    let matches_wanted = |d: &BlockDevice| {
        d.label_source != Some(LabelSource::KernelLossy)
            && d.partition_label.as_deref() == Some(wanted)
    };
    let unconfirmed = relabel_from_gpt(&mut devices, reader, |d| {
        kernel_named(d) && matches_wanted(d)
    });
    if let Some(u) = unconfirmed.into_iter().next() {
        let device = devices
            .get(u.index)
            .map(|d| d.devnode.clone())
            .unwrap_or_default();
        return Err(ResolveError::Unconfirmed {
            label: label.to_owned(),
            device,
            disk: u.disk,
            source: Box::new(u.cause),
        });
    }
    let mut matches: Vec<BlockDevice> = devices
        .iter()
        .filter(|d| matches_wanted(d))
        .cloned()
        .collect();
    match matches.len() {
        1 => Ok(matches.remove(0)),
        0 => Err(ResolveError::NotFound {
            label: label.to_owned(),
            existing_labels: {
                // Failing anyway: show the operator the real names.
                relabel_kernel_named(&mut devices, reader, "list it by its real name");
                devices
                    .iter()
                    .filter_map(|d| Some((d.partition_label.clone()?, d.devnode.clone())))
                    .collect()
            },
        }),
        _ => Err(ResolveError::Ambiguous {
            label: label.to_owned(),
            devices: matches.into_iter().map(with_size).collect(),
        }),
    }
}
