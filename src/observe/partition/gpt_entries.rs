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
    #[error(
        "GPT entry {number} lies at sectors {gpt_start}+{gpt_sectors}, but the kernel's \
         partition {number} at {kernel_start}+{kernel_sectors} (512-byte sectors): the \
         kernel's partition table is out of date (run `partprobe {}`, or reboot)",
        disk.display()
    )]
    KernelTableStale {
        disk: PathBuf,
        number: u32,
        gpt_start: u64,
        gpt_sectors: u64,
        kernel_start: u64,
        kernel_sectors: u64,
    },
    #[error("{} belongs to a sysfs tree that is not this machine's, so its GPT is not read", disk.display())]
    NotThisMachine { disk: PathBuf },
}

/// Reads the partition names of a disk's GPT.
pub trait GptEntryReader: fmt::Debug + Send + Sync {
    /// The names in the GPT of the disk at `disk` (its device node), or why
    /// they could not be read.
    fn read_names(&self, disk: &Path) -> Result<GptNames, GptReadError>;

    /// [`Self::read_names`], for a disk whose partitions the kernel knows as
    /// `partitions` (number, kernel name): a reader that can may check the
    /// table it reads is the one the kernel parsed.
    fn read_names_of(
        &self,
        disk: &Path,
        partitions: &[(u32, &str)],
    ) -> Result<GptNames, GptReadError> {
        let _ = partitions;
        self.read_names(disk)
    }
}

/// One GPT entry: its name and where it lies, in 512-byte sectors (sysfs's
/// `start`/`size` unit, and libblkid's).
#[derive(Debug, Clone, PartialEq, Eq)]
struct GptEntry {
    name: Option<String>,
    start: u64,
    sectors: u64,
}

type GptTable = BTreeMap<u32, GptEntry>;

fn names_of(table: GptTable) -> GptNames {
    table.into_iter().map(|(n, e)| (n, e.name)).collect()
}

/// The real reader: libblkid probing the disk's partition table.
#[derive(Debug, Clone, Copy, Default)]
pub struct Libblkid;

impl GptEntryReader for Libblkid {
    fn read_names(&self, disk: &Path) -> Result<GptNames, GptReadError> {
        libblkid_entries(disk).map(names_of)
    }
}

fn libblkid_entries(disk: &Path) -> Result<GptTable, GptReadError> {
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
    let mut names = GptTable::new();
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
        // libblkid's start and size are in 512-byte sectors, never negative.
        let start = u64::try_from(*entry.get_start().as_ref()).unwrap_or(u64::MAX);
        let sectors = u64::try_from(*entry.get_size().as_ref()).unwrap_or(u64::MAX);
        names.insert(
            number,
            GptEntry {
                name,
                start,
                sectors,
            },
        );
    }
    Ok(names)
}

/// The reader a start uses: the primary GPT read straight off the disk (two
/// `pread`s, both CRC32s checked), and libblkid whenever that read is not the
/// plain case — no protective MBR, a bad checksum, a header or entry size out of
/// the ordinary, a name that is not valid UTF-16. In the plain case the answer is
/// libblkid's (entry `i` is partition `i + 1`, the UTF-16LE name up to its first
/// NUL, trailing whitespace removed); libblkid's probe costs far more than the
/// read under emulation, and where no udev database names the partitions every
/// start confirms the kernel's 7-bit name this way.
#[derive(Debug, Clone, Copy, Default)]
pub struct DirectThenLibblkid;

impl GptEntryReader for DirectThenLibblkid {
    fn read_names(&self, disk: &Path) -> Result<GptNames, GptReadError> {
        direct_then_libblkid(disk, &BTreeMap::new())
    }

    fn read_names_of(
        &self,
        disk: &Path,
        partitions: &[(u32, &str)],
    ) -> Result<GptNames, GptReadError> {
        let mut kernel = BTreeMap::new();
        for (number, name) in partitions {
            match kernel_range(name) {
                Some(range) => {
                    kernel.insert(*number, range);
                }
                // Without the kernel's range the direct read proves nothing.
                None => return libblkid_checked(disk, &BTreeMap::new()),
            }
        }
        direct_then_libblkid(disk, &kernel)
    }
}

/// Where the kernel has partition `name`: sysfs `start` and `size`, in 512-byte
/// sectors whatever the disk's logical sector size.
fn kernel_range(name: &str) -> Option<(u64, u64)> {
    let dir = Path::new("/sys/class/block").join(name);
    // One open, read and close per attribute (std's read_to_string adds an fcntl, an
    // fstat and a second read; without udevd every start makes these reads).
    let read = |file: &str| crate::observe::attribute_file::read_number(&dir.join(file));
    Some((read("start")?, read("size")?))
}

/// The direct read, accepted only if every partition in `kernel` (number →
/// start, size) lies where the entry of that number does; else libblkid.
fn direct_then_libblkid(
    disk: &Path,
    kernel: &BTreeMap<u32, (u64, u64)>,
) -> Result<GptNames, GptReadError> {
    let why = match read_primary_gpt(disk) {
        Ok(table) => match range_mismatch(&table, kernel) {
            None => return Ok(names_of(table)),
            Some((number, ..)) => format!("entry {number} is not where the kernel has it"),
        },
        Err(why) => why,
    };
    tracing::debug!(disk = %disk.display(), "GPT not read directly ({why}); asking libblkid");
    libblkid_checked(disk, kernel)
}

/// libblkid's reading; if it too puts a partition elsewhere than the kernel
/// does, the kernel parsed another (older) table.
fn libblkid_checked(
    disk: &Path,
    kernel: &BTreeMap<u32, (u64, u64)>,
) -> Result<GptNames, GptReadError> {
    let table = libblkid_entries(disk)?;
    if let Some((number, gpt, (kernel_start, kernel_sectors))) = range_mismatch(&table, kernel) {
        return Err(GptReadError::KernelTableStale {
            disk: disk.to_owned(),
            number,
            gpt_start: gpt.start,
            gpt_sectors: gpt.sectors,
            kernel_start,
            kernel_sectors,
        });
    }
    Ok(names_of(table))
}

/// The first partition the kernel has at another place than `table`'s entry
/// of that number. A number `table` lacks is not a mismatch here: the caller
/// reports it as a missing entry.
fn range_mismatch<'t>(
    table: &'t GptTable,
    kernel: &BTreeMap<u32, (u64, u64)>,
) -> Option<(u32, &'t GptEntry, (u64, u64))> {
    kernel.iter().find_map(|(number, range)| {
        let entry = table.get(number)?;
        ((entry.start, entry.sectors) != *range).then_some((*number, entry, *range))
    })
}

/// Largest entry array read directly (128 entries of 128 bytes is the norm: 16 KiB).
const MAX_GPT_ENTRY_BYTES: u64 = 1 << 20;

fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn le_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn read_primary_gpt(disk: &Path) -> Result<GptTable, String> {
    let file = crate::ffi::open::open_read_only(disk, 0).map_err(|e| e.to_string())?;
    let sector =
        u64::from(crate::ffi::blkdev::logical_sector_size(&file).map_err(|e| e.to_string())?);
    let disk_bytes = crate::ffi::blkdev::size_bytes(&file).map_err(|e| e.to_string())?;
    gpt_entries_from(&file, sector, disk_bytes)
}

/// [`read_primary_gpt`] of an open disk of `disk_bytes` bytes whose logical
/// sectors are `sector` bytes. Besides the checksums it makes the checks of the
/// kernel's GPT parser (block/partitions/efi.c) that decide whether the kernel
/// took this table: a table the kernel would reject is not read here.
fn gpt_entries_from(
    file: &std::fs::File,
    sector: u64,
    disk_bytes: u64,
) -> Result<GptTable, String> {
    use std::os::unix::fs::FileExt;
    let last_lba = (disk_bytes / sector.max(1))
        .checked_sub(1)
        .ok_or("an empty disk")?;
    let sector_bytes = usize::try_from(sector).map_err(|_| "sector size")?;
    if !(512..=4096).contains(&sector_bytes) {
        return Err(format!("sector size {sector}"));
    }
    // LBA 0 (protective MBR) and LBA 1 (GPT header) in one read.
    let mut head = vec![0u8; 2 * sector_bytes];
    file.read_exact_at(&mut head, 0)
        .map_err(|e| e.to_string())?;
    let mbr = &head[..sector_bytes];
    // The kernel's protective entry: type 0xEE starting at LBA 1.
    let protective = mbr.get(510..512) == Some(&[0x55, 0xaa][..])
        && (0..4).any(|i| {
            let at = 446 + 16 * i;
            mbr.get(at + 4) == Some(&0xee) && le_u32(mbr, at + 8) == Some(1)
        });
    if !protective {
        return Err("no protective MBR".into());
    }
    let header = &head[sector_bytes..];
    if header.get(..8) != Some(&b"EFI PART"[..]) {
        return Err("no GPT signature".into());
    }
    let header_size = le_u32(header, 12).ok_or("header")? as usize;
    if header_size < 92 || header_size > sector_bytes {
        return Err(format!("header size {header_size}"));
    }
    let crc32 = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
    let mut zeroed = header[..header_size].to_vec();
    zeroed[16..20].fill(0);
    if crc32.checksum(&zeroed) != le_u32(header, 16).ok_or("header")? {
        return Err("header checksum".into());
    }
    if le_u64(header, 24) != Some(1) {
        return Err("the header is not at LBA 1".into());
    }
    let first_usable = le_u64(header, 40).ok_or("header")?;
    let last_usable = le_u64(header, 48).ok_or("header")?;
    let entries_lba = le_u64(header, 72).ok_or("header")?;
    let count = u64::from(le_u32(header, 80).ok_or("header")?);
    let entry_size = u64::from(le_u32(header, 84).ok_or("header")?);
    // The kernel takes only 128-byte entries and a usable area on the disk.
    if entry_size != 128 {
        return Err(format!("entry size {entry_size}"));
    }
    if last_usable > last_lba {
        return Err(format!(
            "last usable LBA {last_usable} beyond the disk's {last_lba}"
        ));
    }
    if first_usable > last_usable {
        return Err(format!(
            "first usable LBA {first_usable} after the last, {last_usable}"
        ));
    }
    let bytes = count
        .checked_mul(entry_size)
        .filter(|b| *b <= MAX_GPT_ENTRY_BYTES)
        .ok_or("entry array size")?;
    let offset = entries_lba
        .checked_mul(sector)
        .ok_or("entry array offset")?;
    let mut entries = vec![0u8; usize::try_from(bytes).map_err(|_| "entry array size")?];
    file.read_exact_at(&mut entries, offset)
        .map_err(|e| e.to_string())?;
    if crc32.checksum(&entries) != le_u32(header, 88).ok_or("header")? {
        return Err("entry array checksum".into());
    }
    let mut names = GptTable::new();
    let entry_len = usize::try_from(entry_size).map_err(|_| "entry size")?;
    for (index, entry) in entries.chunks_exact(entry_len).enumerate() {
        // An all-zero type GUID marks an unused entry; numbering counts it anyway.
        if entry[..16].iter().all(|b| *b == 0) {
            continue;
        }
        // libblkid leaves out an entry outside the usable area: not the plain case.
        let (first, last) = (
            le_u64(entry, 32).ok_or("entry")?,
            le_u64(entry, 40).ok_or("entry")?,
        );
        if first < first_usable || last > last_usable || first > last {
            return Err(format!("entry {} lies outside the usable area", index + 1));
        }
        let units: Vec<u16> = entry[56..128]
            .chunks_exact(2)
            .map(|p| u16::from_le_bytes([p[0], p[1]]))
            .take_while(|u| *u != 0)
            .collect();
        // libblkid decodes each UTF-16 unit alone, so a surrogate pair (a
        // character beyond U+FFFF) comes out differently there: not plain.
        if units.iter().any(|u| (0xd800..=0xdfff).contains(u)) {
            return Err(format!("entry {}'s name has UTF-16 surrogates", index + 1));
        }
        let name = String::from_utf16(&units).map_err(|_| "a name that is not UTF-16")?;
        let number = u32::try_from(index + 1).map_err(|_| "entry number")?;
        let name = Some(trim_label(&name))
            .filter(|n| !n.is_empty())
            .map(str::to_owned);
        // In 512-byte sectors, as sysfs and libblkid count.
        let per_sector = sector / 512;
        let start = first.checked_mul(per_sector).ok_or("entry start")?;
        let sectors = (last - first + 1)
            .checked_mul(per_sector)
            .ok_or("entry size")?;
        names.insert(
            number,
            GptEntry {
                name,
                start,
                sectors,
            },
        );
    }
    Ok(names)
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
        let partitions: Vec<(u32, &str)> = indices
            .iter()
            .filter_map(|i| devices.get(*i))
            .filter_map(|d| Some((d.partition_number?, d.name.as_str())))
            .collect();
        let names = reader.read_names_of(&node, &partitions).map_err(Arc::new);
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

    fn sgdisk(args: &[&str]) {
        match std::process::Command::new("sgdisk").args(args).output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => panic!("sgdisk {args:?}: {}", String::from_utf8_lossy(&out.stderr)),
            Err(e) => panic!("sgdisk is missing (apt-get install gdisk): {e}"),
        }
    }

    #[test]
    fn the_direct_read_gives_libblkids_names_or_defers_to_it() {
        let dir = TempDir::new("gpt-direct");
        let path = dir.path().join("gpt.img");
        if let Err(e) = std::fs::write(&path, vec![0u8; 8 << 20]) {
            panic!("{e}");
        }
        let img = path.to_string_lossy().into_owned();
        sgdisk(&[
            "--clear",
            "--new=1:2048:+1M",
            "--change-name=1:linstor-storage",
            "--new=3:0:+1M",
            "--change-name=3:Ünïcode name  ",
            "--new=4:0:+1M",
            &img,
        ]);
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) => panic!("{e}"),
        };
        let direct = match gpt_entries_from(&file, 512, 8 << 20) {
            Ok(table) => names_of(table),
            Err(e) => panic!("the plain GPT was not read directly: {e}"),
        };
        let blkid = match Libblkid.read_names(&path) {
            Ok(names) => names,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(direct, blkid);
        assert_eq!(direct.get(&1), Some(&Some("linstor-storage".to_owned())));
        assert_eq!(direct.get(&3), Some(&Some("Ünïcode name".to_owned())));
        assert_eq!(direct.get(&4), Some(&None));
        assert_eq!(direct.get(&2), None);
        // A damaged entry array is not the plain case: the direct read declines.
        let mut bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => panic!("{e}"),
        };
        bytes[2 * 512 + 56] ^= 0x20;
        if let Err(e) = std::fs::write(&path, &bytes) {
            panic!("{e}");
        }
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) => panic!("{e}"),
        };
        assert!(gpt_entries_from(&file, 512, 8 << 20).is_err());
    }

    /// An 8 MiB `sgdisk` image: partition 1 `linstor-storage` at 2048+2048.
    fn plain_image(dir: &TempDir) -> PathBuf {
        let path = dir.path().join("gpt.img");
        if let Err(e) = std::fs::write(&path, vec![0u8; 8 << 20]) {
            panic!("{e}");
        }
        let img = path.to_string_lossy().into_owned();
        sgdisk(&[
            "--clear",
            "--new=1:2048:+1M",
            "--change-name=1:linstor-storage",
            &img,
        ]);
        path
    }

    fn read_image(path: &Path) -> Vec<u8> {
        std::fs::read(path).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Writes `bytes` back with the header's and entry array's CRC32s made
    /// right again (512-byte sectors, entries at LBA 2), so only the field
    /// changed by the test is out of the ordinary.
    fn write_with_crcs(path: &Path, mut bytes: Vec<u8>) {
        let crc32 = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
        let h = 512;
        let count =
            u32::from_le_bytes([bytes[h + 80], bytes[h + 81], bytes[h + 82], bytes[h + 83]]);
        let size = u32::from_le_bytes([bytes[h + 84], bytes[h + 85], bytes[h + 86], bytes[h + 87]]);
        let array = (count * size) as usize;
        let entries_crc = crc32.checksum(&bytes[1024..1024 + array]);
        bytes[h + 88..h + 92].copy_from_slice(&entries_crc.to_le_bytes());
        bytes[h + 16..h + 20].fill(0);
        let header_crc = crc32.checksum(&bytes[h..h + 92]);
        bytes[h + 16..h + 20].copy_from_slice(&header_crc.to_le_bytes());
        std::fs::write(path, bytes).unwrap_or_else(|e| panic!("{e}"));
    }

    fn direct(path: &Path) -> Result<GptTable, String> {
        let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{e}"));
        gpt_entries_from(&file, 512, 8 << 20)
    }

    #[test]
    fn the_direct_read_makes_the_kernels_header_checks() {
        let dir = TempDir::new("gpt-kernel-checks");
        let path = plain_image(&dir);
        let plain = read_image(&path);
        write_with_crcs(&path, plain.clone());
        assert!(
            direct(&path).is_ok(),
            "the re-checksummed plain image must read"
        );

        // Entries of 256 bytes: valid for the UEFI spec, not for the kernel.
        let mut bytes = plain.clone();
        bytes[512 + 84..512 + 88].copy_from_slice(&256u32.to_le_bytes());
        bytes[512 + 80..512 + 84].copy_from_slice(&64u32.to_le_bytes());
        write_with_crcs(&path, bytes);
        let err = direct(&path).err().unwrap_or_default();
        assert!(err.contains("entry size 256"), "{err}");

        // Last usable LBA beyond the disk's last LBA.
        let mut bytes = plain.clone();
        bytes[512 + 48..512 + 56].copy_from_slice(&(16_384u64).to_le_bytes());
        write_with_crcs(&path, bytes);
        let err = direct(&path).err().unwrap_or_default();
        assert!(err.contains("beyond the disk"), "{err}");

        // First usable after last usable.
        let mut bytes = plain.clone();
        bytes[512 + 40..512 + 48].copy_from_slice(&(16_000u64).to_le_bytes());
        bytes[512 + 48..512 + 56].copy_from_slice(&(15_000u64).to_le_bytes());
        write_with_crcs(&path, bytes);
        let err = direct(&path).err().unwrap_or_default();
        assert!(err.contains("after the last"), "{err}");

        // The protective 0xEE entry must start at LBA 1.
        let mut bytes = plain.clone();
        let ee = (0..4)
            .map(|i| 446 + 16 * i)
            .find(|at| bytes[at + 4] == 0xee)
            .unwrap_or_else(|| panic!("sgdisk wrote no 0xEE entry"));
        bytes[ee + 8..ee + 12].copy_from_slice(&2u32.to_le_bytes());
        write_with_crcs(&path, bytes);
        let err = direct(&path).err().unwrap_or_default();
        assert!(err.contains("protective"), "{err}");
    }

    #[test]
    fn a_name_with_surrogates_is_left_to_libblkid() {
        let dir = TempDir::new("gpt-surrogates");
        let path = plain_image(&dir);
        let mut bytes = read_image(&path);
        // Entry 1's name becomes "a𝄞" (U+1D11E: the pair D834 DD1E).
        let name = 1024 + 56;
        bytes[name..name + 72].fill(0);
        for (i, unit) in [0x61u16, 0xd834, 0xdd1e].iter().enumerate() {
            bytes[name + 2 * i..name + 2 * i + 2].copy_from_slice(&unit.to_le_bytes());
        }
        write_with_crcs(&path, bytes);
        let err = direct(&path).err().unwrap_or_default();
        assert!(err.contains("surrogates"), "{err}");
        // The start still gets an answer: libblkid's.
        let via = DirectThenLibblkid
            .read_names(&path)
            .unwrap_or_else(|e| panic!("{e}"));
        let blkid = Libblkid.read_names(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(via, blkid);
    }

    #[test]
    fn a_range_the_kernel_does_not_have_is_not_trusted() {
        let dir = TempDir::new("gpt-range");
        let path = plain_image(&dir);
        let table = direct(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            table.get(&1).map(|e| (e.start, e.sectors)),
            Some((2048, 2048))
        );
        // Where the kernel agrees, the direct read is the answer.
        let agreed = BTreeMap::from([(1, (2048, 2048))]);
        assert!(range_mismatch(&table, &agreed).is_none());
        let names = direct_then_libblkid(&path, &agreed).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(names.get(&1), Some(&Some("linstor-storage".to_owned())));
        // The kernel has partition 1 elsewhere: neither reading is the kernel's
        // table, so the start is refused with the partprobe hint.
        let moved = BTreeMap::from([(1, (4096, 2048))]);
        assert!(range_mismatch(&table, &moved).is_some());
        match direct_then_libblkid(&path, &moved) {
            Err(e @ GptReadError::KernelTableStale { number: 1, .. }) => {
                assert!(e.to_string().contains("partprobe"), "{e}");
            }
            other => panic!("expected KernelTableStale, got {other:?}"),
        }
        // A 4 KiB-sector disk: LBAs count 4 KiB, sysfs still 512 bytes.
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{e}"));
        if let Ok(t) = gpt_entries_from(&file, 4096, 64 << 20) {
            panic!("a 512-byte-sector GPT read as 4 KiB: {t:?}");
        }
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
