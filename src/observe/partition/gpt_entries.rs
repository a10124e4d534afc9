//! Partition names read from the GPT itself, through libblkid's
//! partition-table probing: the full UTF-16 name decoded to UTF-8, with
//! trailing whitespace removed (libblkid's rule, see [`super::label`]).
//!
//! Reading a disk's GPT means opening the disk, so it is done only where the
//! kernel's 7-bit `PARTNAME` cannot be trusted, one probe per disk; see the
//! module documentation of [`super`] for when that is.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use libblkid_rs::{BlkidErr, BlkidFltr, BlkidProbe};

use super::label::trim_label;
use super::{BlockDevice, DeviceKind, LabelSource};

/// The GPT entry names of one disk, by partition number (`None`: no name).
pub(crate) type GptNames = BTreeMap<u32, Option<String>>;

/// Why a disk's GPT entry names could not be read.
#[derive(Debug, thiserror::Error)]
pub enum GptReadError {
    #[error("libblkid cannot open it: {0}")]
    Open(#[source] BlkidErr),
    #[error("libblkid cannot set up partition probing: {0}")]
    Setup(#[source] BlkidErr),
    #[error("libblkid found no readable GPT: {0}")]
    NoReadableGpt(#[source] BlkidErr),
    #[error("libblkid found no partition table: {0}")]
    NoTable(#[source] BlkidErr),
    #[error("its partition table is {table_type:?}, not GPT, so it holds no partition names")]
    NotGpt { table_type: String },
    #[error("libblkid cannot count its partitions: {0}")]
    Count(#[source] BlkidErr),
    #[error("libblkid cannot read GPT entry {index}: {source}")]
    Entry {
        index: i32,
        #[source]
        source: BlkidErr,
    },
    #[error("libblkid cannot number GPT entry {index}: {source}")]
    EntryNumber {
        index: i32,
        #[source]
        source: BlkidErr,
    },
    #[error("GPT entry {number}'s name is not valid UTF-16: {source}")]
    EntryName {
        number: u32,
        #[source]
        source: BlkidErr,
    },
    #[error("{} belongs to a sysfs tree that is not this machine's, so its GPT is not read", disk.display())]
    NotThisMachine { disk: PathBuf },
}

/// Reads the partition names of a disk's GPT.
pub trait GptEntryReader: fmt::Debug + Send + Sync {
    /// The names in the GPT of the disk at `disk` (its device node), or why
    /// they could not be read.
    fn read_names(&self, disk: &Path) -> Result<GptNames, GptReadError>;
}

/// The real reader: libblkid probing the disk's partition table.
#[derive(Debug, Clone, Copy, Default)]
pub struct Libblkid;

impl GptEntryReader for Libblkid {
    fn read_names(&self, disk: &Path) -> Result<GptNames, GptReadError> {
        tracing::debug!(disk = %disk.display(), "reading GPT entry names with libblkid");
        let mut probe = BlkidProbe::new_from_filename(disk).map_err(GptReadError::Open)?;
        probe
            .enable_superblocks(false)
            .and_then(|()| probe.enable_partitions(true))
            // Only the GPT prober: the names live there, and the other partition
            // table probers would only cost reads.
            .and_then(|()| probe.filter_partition_types(BlkidFltr::Onlyin, &["gpt"]))
            .map_err(GptReadError::Setup)?;
        let mut list = match probe.get_partitions() {
            Ok(list) => list,
            Err(e) => return Err(no_gpt_here(disk, e)),
        };
        let table_type = list
            .get_table()
            .and_then(|t| t.get_type())
            .map_err(GptReadError::NoTable)?;
        if table_type != "gpt" {
            return Err(GptReadError::NotGpt { table_type });
        }
        let count = list.number_of_partitions().map_err(GptReadError::Count)?;
        let mut names = GptNames::new();
        for index in 0..count {
            let entry = list
                .get_partition(index)
                .map_err(|source| GptReadError::Entry { index, source })?;
            let number = entry
                .get_partno()
                .map_err(|source| GptReadError::EntryNumber { index, source })?;
            let name = entry
                .get_name()
                .map_err(|source| GptReadError::EntryName { number, source })?;
            let name = name
                .as_deref()
                .map(trim_label)
                .filter(|n| !n.is_empty())
                .map(str::to_owned);
            names.insert(number, name);
        }
        Ok(names)
    }
}

/// Used for trees that are not this machine's (`SysfsBackend::with_roots`):
/// their device nodes are not ours to open.
/// Why `disk` has no GPT, naming the partition table it has if libblkid finds one
/// (asked only on this error path: the GPT-only probe above is the cheap one).
fn no_gpt_here(disk: &Path, gpt_error: BlkidErr) -> GptReadError {
    let other_table = BlkidProbe::new_from_filename(disk)
        .ok()
        .and_then(|mut probe| {
            probe.enable_superblocks(false).ok()?;
            probe.enable_partitions(true).ok()?;
            let mut list = probe.get_partitions().ok()?;
            list.get_table().and_then(|t| t.get_type()).ok()
        });
    match other_table {
        Some(table_type) => GptReadError::NotGpt { table_type },
        None => GptReadError::NoReadableGpt(gpt_error),
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct NoGptAccess;

impl GptEntryReader for NoGptAccess {
    fn read_names(&self, disk: &Path) -> Result<GptNames, GptReadError> {
        Err(GptReadError::NotThisMachine {
            disk: disk.to_owned(),
        })
    }
}

/// The device node of a partition's disk: the disk's own entry if listed
/// (its `DEVNAME` may differ from its kernel name), else `/dev/<disk>`.
fn disk_node(devices: &[BlockDevice], disk: &str) -> PathBuf {
    devices
        .iter()
        .find(|d| d.kind == DeviceKind::Disk && d.name == disk)
        .map(|d| d.devnode.clone())
        .unwrap_or_else(|| Path::new("/dev").join(disk))
}

/// Why the GPT name of one partition could not be read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EntryUnreadable {
    #[error("sysfs does not show which disk {} belongs to", partition.display())]
    NoDisk { partition: PathBuf },
    /// The disk's GPT could not be read (shared by its partitions).
    #[error(transparent)]
    Gpt(Arc<GptReadError>),
    #[error("sysfs gives {} no partition number", partition.display())]
    NoPartitionNumber { partition: PathBuf },
    #[error(
        "its GPT has no entry {number}, though the kernel has a partition {}: \
         the kernel's partition table is out of date (run `partprobe {}`)",
        partition.display(),
        disk.display()
    )]
    NoEntry {
        number: u32,
        partition: PathBuf,
        disk: PathBuf,
    },
}

/// A partition whose GPT name could not be read.
#[derive(Debug, Clone)]
pub(crate) struct Unreadable {
    /// Index into the device list.
    pub index: usize,
    pub disk: PathBuf,
    pub cause: EntryUnreadable,
}

/// Replaces the label of every partition that `wanted` selects by its GPT
/// entry name (source [`LabelSource::GptEntry`]), reading each disk once.
/// Partitions whose name could not be read keep their label and are returned.
pub(crate) fn relabel_from_gpt(
    devices: &mut [BlockDevice],
    reader: &dyn GptEntryReader,
    wanted: impl Fn(&BlockDevice) -> bool,
) -> Vec<Unreadable> {
    let mut by_disk: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (index, device) in devices.iter().enumerate() {
        if device.kind == DeviceKind::Partition && wanted(device) {
            if let Some(disk) = &device.parent {
                by_disk.entry(disk.clone()).or_default().push(index);
            }
        }
    }
    let mut unreadable = Vec::new();
    // Partitions whose disk is unknown cannot be read.
    for (index, device) in devices.iter().enumerate() {
        if device.kind == DeviceKind::Partition && device.parent.is_none() && wanted(device) {
            unreadable.push(Unreadable {
                index,
                disk: PathBuf::new(),
                cause: EntryUnreadable::NoDisk {
                    partition: device.devnode.clone(),
                },
            });
        }
    }
    for (disk, indices) in by_disk {
        let node = disk_node(devices, &disk);
        let names = reader.read_names(&node).map_err(Arc::new);
        for index in indices {
            let Some(device) = devices.get_mut(index) else {
                continue;
            };
            let found = match (&names, device.partition_number) {
                (Err(gpt), _) => Err(EntryUnreadable::Gpt(Arc::clone(gpt))),
                (Ok(_), None) => Err(EntryUnreadable::NoPartitionNumber {
                    partition: device.devnode.clone(),
                }),
                (Ok(names), Some(number)) => {
                    names
                        .get(&number)
                        .cloned()
                        .ok_or_else(|| EntryUnreadable::NoEntry {
                            number,
                            partition: device.devnode.clone(),
                            disk: node.clone(),
                        })
                }
            };
            match found {
                Ok(name) => {
                    device.label_source = name.as_ref().map(|_| LabelSource::GptEntry);
                    device.partition_label = name;
                }
                Err(cause) => unreadable.push(Unreadable {
                    index,
                    disk: node.clone(),
                    cause,
                }),
            }
        }
    }
    unreadable
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::partition::test_tree::TempDir;

    /// A 1 MiB image whose sector 0 is an MBR (DOS) partition table with one Linux
    /// partition: no GPT.
    fn dos_image(dir: &TempDir) -> PathBuf {
        let mut image = vec![0u8; 1 << 20];
        let entry = 446;
        image[entry + 4] = 0x83; // type: Linux
        image[entry + 8..entry + 12].copy_from_slice(&2048u32.to_le_bytes()); // first LBA
        image[entry + 12..entry + 16].copy_from_slice(&8u32.to_le_bytes()); // sectors
        image[510] = 0x55;
        image[511] = 0xaa;
        let path = dir.path().join("dos.img");
        if let Err(e) = std::fs::write(&path, &image) {
            panic!("cannot write {}: {e}", path.display());
        }
        path
    }

    #[test]
    fn a_disk_with_another_table_is_refused_naming_that_table() {
        let dir = TempDir::new("gpt-entries");
        let image = dos_image(&dir);
        match Libblkid.read_names(&image) {
            Ok(names) => panic!("a DOS table read as GPT: {names:?}"),
            Err(GptReadError::NotGpt { table_type }) => assert_eq!(table_type, "dos"),
            Err(other) => panic!("expected NotGpt naming \"dos\", got {other:?}"),
        }
    }
}
