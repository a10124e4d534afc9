//! Block devices, and the one partition this tool owns, found by its GPT label.
//!
//! Two backends read the same facts: libudev (feature `udev`) and plain sysfs
//! plus udev's database files (always available; the static build's only one).
//! They differ only in enumeration; [`raw`] turns what either reads into a
//! [`BlockDevice`], and [`find_by_label`] does the matching for both.

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
use std::path::PathBuf;
use std::str::FromStr;

use serde::Serialize;

pub use sysfs_backend::SysfsBackend;

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
    /// The kernel's `PARTNAME` uevent key (non-ASCII characters come out as `!`).
    Kernel,
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
    /// Size from sysfs (512-byte units × 512).
    pub size_bytes: u64,
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
        .map(|d| format!("{} ({} bytes)", d.devnode.display(), d.size_bytes))
        .collect();
    format!(
        "{} devices have the GPT partition label {label:?}: {}; refusing to pick one. Give \
         all but the intended partition a different label (`sgdisk --change-name`), or detach \
         the disk that should not be used; `lsblk -o NAME,PARTLABEL` shows the labels",
        devices.len(),
        list.join(", ")
    )
}

/// All block devices except RAM disks, ordered by device number.
pub fn list_block_devices(backend: DiscoveryBackend) -> Result<Vec<BlockDevice>, DiscoveryError> {
    match backend {
        #[cfg(feature = "udev")]
        DiscoveryBackend::Udev => udev_backend::list_block_devices(),
        DiscoveryBackend::Sysfs => SysfsBackend::new().list_block_devices(),
    }
}

/// The one device whose GPT partition label is exactly `label`.
pub fn resolve_partition_by_label(
    label: &str,
    backend: DiscoveryBackend,
) -> Result<BlockDevice, ResolveError> {
    let devices = list_block_devices(backend)?;
    find_by_label(&devices, label)
}

impl SysfsBackend {
    /// [`resolve_partition_by_label`] against this backend's tree.
    pub fn resolve_partition_by_label(&self, label: &str) -> Result<BlockDevice, ResolveError> {
        find_by_label(&self.list_block_devices()?, label)
    }
}

/// Picks the device labelled exactly `label` (byte-for-byte; no trimming or
/// case folding) out of `devices`. Never guesses: zero or several matches are
/// errors that list what was found.
pub fn find_by_label(devices: &[BlockDevice], label: &str) -> Result<BlockDevice, ResolveError> {
    let matches: Vec<&BlockDevice> = devices
        .iter()
        .filter(|d| d.partition_label.as_deref() == Some(label))
        .collect();
    match matches.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(ResolveError::NotFound {
            label: label.to_owned(),
            existing_labels: devices
                .iter()
                .filter_map(|d| Some((d.partition_label.clone()?, d.devnode.clone())))
                .collect(),
        }),
        many => Err(ResolveError::Ambiguous {
            label: label.to_owned(),
            devices: many.iter().map(|d| (*d).clone()).collect(),
        }),
    }
}
