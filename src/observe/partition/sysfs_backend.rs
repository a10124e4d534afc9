//! Discovery from sysfs and udev's database files, without libudev.
//!
//! This is what the static (musl) build uses. It reads the same sources libudev
//! reads — `/sys/class/block/*/uevent`, the sysfs attributes, and
//! `/run/udev/data/b<major>:<minor>` — so both backends agree. The roots are
//! injectable so tests can run against a fake tree.
//!
//! One device that cannot be read (an unreadable file, a malformed number) is
//! left out of the list with a warning naming it; it never hides the others.

use std::fmt;
use std::fs;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::ffi::dir::list_folder;
use crate::ffi::dm_list::{list_devices_with_uuids_expecting, ListedDevice, UuidInList};
use crate::observe::attribute_file::{read_attribute, read_small_file};

use super::gpt_entries::{DirectThenLibblkid, GptEntryReader, NoGptAccess};
use super::raw::{is_ignored, RawDevice};
use super::udev_db::parse_udev_db;
use super::uevent::parse_uevent_bytes;
use super::{BlockDevice, DiscoveryError};

/// More block devices than a machine has (the kernel's own dm and loop limits are
/// lower); a listing beyond it is refused rather than read without end.
const MAX_BLOCK_DEVICES: usize = 1 << 20;

/// How much of each device a listing reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Depth {
    Full,
    /// Enough to find partitions by label (see [`SysfsBackend::list_for_labels`]).
    Labels,
}

/// Reads block devices from a sysfs tree and (if present) udev's database.
#[derive(Clone)]
pub struct SysfsBackend {
    sys: PathBuf,
    run_udev: PathBuf,
    gpt: Arc<dyn GptEntryReader>,
    /// The tree is this machine's: device-mapper's own list may stand in for
    /// reading each `dm-N` folder (see [`NoLabelPossible`]).
    machine_device_mapper: bool,
}

impl fmt::Debug for SysfsBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SysfsBackend")
            .field("sys", &self.sys)
            .field("run_udev", &self.run_udev)
            .field("gpt", &self.gpt)
            .finish()
    }
}

impl Default for SysfsBackend {
    fn default() -> Self {
        Self::new()
    }
}

/// Reads an optional file: a missing file is `None`, any other failure is an
/// error naming the path.
fn read_optional_bytes(path: &Path) -> Result<Option<Vec<u8>>, DiscoveryError> {
    read_attribute(path).map_err(|source| DiscoveryError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// [`read_optional_bytes`] as text; bytes that are not UTF-8 are shown as U+FFFD
/// (sysfs attributes and udev's database are ASCII or UTF-8 in practice).
fn read_optional(path: &Path) -> Result<Option<String>, DiscoveryError> {
    Ok(read_optional_bytes(path)?.map(|b| String::from_utf8_lossy(&b).into_owned()))
}

impl SysfsBackend {
    /// The machine's own `/sys` and `/run/udev`; GPT entries are read with libblkid.
    pub fn new() -> Self {
        Self {
            sys: PathBuf::from("/sys"),
            run_udev: PathBuf::from("/run/udev"),
            gpt: Arc::new(DirectThenLibblkid),
            machine_device_mapper: true,
        }
    }

    /// A tree rooted elsewhere: `sys` stands for `/sys`, `run_udev` for
    /// `/run/udev` (its `data/` folder holds the database). Its device nodes
    /// are not this machine's, so no GPT is read unless
    /// [`SysfsBackend::with_gpt_reader`] says how.
    pub fn with_roots(sys: impl Into<PathBuf>, run_udev: impl Into<PathBuf>) -> Self {
        Self {
            sys: sys.into(),
            run_udev: run_udev.into(),
            gpt: Arc::new(NoGptAccess),
            machine_device_mapper: false,
        }
    }

    /// The same tree, reading GPT entry names with `reader`.
    pub fn with_gpt_reader(mut self, reader: Arc<dyn GptEntryReader>) -> Self {
        self.gpt = reader;
        self
    }

    pub(crate) fn gpt_reader(&self) -> &dyn GptEntryReader {
        self.gpt.as_ref()
    }

    /// `<sys>/class/block`, where every block device has an entry.
    pub fn class_block(&self) -> PathBuf {
        self.sys.join("class/block")
    }

    /// All block devices except RAM disks, ordered by device number. Fails only
    /// when `class/block` itself cannot be listed.
    pub fn list_block_devices(&self) -> Result<Vec<BlockDevice>, DiscoveryError> {
        self.list(Depth::Full, &NoLabelPossible::default())
    }

    /// [`Self::list_block_devices`] as finding a partition by label needs it: no
    /// device's size is read (0), a device-mapper device without a partition label
    /// (every LVM volume) is listed without `dm/name` or `dm/uuid`, and a whole disk
    /// without its udev entry. A host with many volumes and disks has many such
    /// devices, and a start reads them all. Nothing may trust these sizes.
    ///
    /// Where `<sys>/block` lists the whole disks, those that cannot carry a label
    /// are left out without reading anything of theirs (see [`NoLabelPossible`]):
    /// a node's thousands of thin volumes and DRBD devices then cost a start
    /// nothing but their names in two folder listings.
    pub fn list_for_labels(&self) -> Result<Vec<BlockDevice>, DiscoveryError> {
        self.list_for_labels_keeping_dm_list()
            .map(|(devices, _)| devices)
    }

    /// [`Self::list_for_labels`], and the device-mapper list it read (when it read
    /// one): a start's first look at the partition's VG reuses it instead of
    /// listing 2,000 devices again.
    pub fn list_for_labels_keeping_dm_list(
        &self,
    ) -> Result<(Vec<BlockDevice>, Option<Vec<ListedDevice>>), DiscoveryError> {
        let skip = NoLabelPossible::read(&self.sys, self.machine_device_mapper);
        let devices = self.list(Depth::Labels, &skip)?;
        Ok((devices, skip.dm_list))
    }

    fn list(
        &self,
        depth: Depth,
        skip: &NoLabelPossible,
    ) -> Result<Vec<BlockDevice>, DiscoveryError> {
        let dir = self.class_block();
        let entries =
            list_folder(&dir, MAX_BLOCK_DEVICES).map_err(|source| DiscoveryError::Io {
                path: dir.clone(),
                source,
            })?;
        let mut devices = Vec::new();
        for entry in entries {
            let name = crate::ffi::dir::name_string(entry.name);
            if is_ignored(&name) || skip.applies_to(&name) {
                continue;
            }
            match self
                .read_device(&name, depth)
                .and_then(|raw| raw.map(RawDevice::into_block_device).transpose())
            {
                Ok(Some(device)) => devices.push(device),
                Ok(None) => {}
                Err(e) => tracing::warn!(
                    device = %name,
                    "block device left out of discovery, it could not be read: {e}"
                ),
            }
        }
        devices.sort_by_key(|d| (d.major, d.minor));
        super::relabel_lossy(&mut devices, self.gpt_reader());
        Ok(devices)
    }

    /// Reads one device; `None` if it disappeared while we looked (a loop
    /// device being detached, say), which is not an error.
    fn read_device(&self, name: &str, depth: Depth) -> Result<Option<RawDevice>, DiscoveryError> {
        let dev_dir = self.class_block().join(name);
        let Some(uevent) = read_optional_bytes(&dev_dir.join("uevent"))? else {
            tracing::debug!(device = name, "block device vanished during discovery");
            return Ok(None);
        };
        let uevent = parse_uevent_bytes(&uevent);
        let partname = uevent.get("PARTNAME").cloned();
        let mut properties: std::collections::BTreeMap<String, String> = uevent
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
            .collect();
        // Only partitions have `partition`, only device-mapper devices (always
        // named dm-N by the kernel) have `dm/`: skip the opens that must fail.
        let device_mapper = name.starts_with("dm-");
        // A whole disk other than device-mapper (kpartx maps partitions as dm-N
        // disks) is no GPT entry: the kernel adds PARTNAME only to partitions, and
        // libblkid (udev's ID_PART_ENTRY_*) finds an entry only for a device with a
        // sysfs `partition` file or a `part*` dm uuid. Finding a label needs
        // nothing more of it; a local udev rule naming a disk does not make it one.
        let whole_disk = properties.get("DEVTYPE").is_some_and(|t| t == "disk");
        if depth == Depth::Labels && whole_disk && !device_mapper && partname.is_none() {
            return Ok(Some(RawDevice::listed_for_labels_only(
                name, dev_dir, properties,
            )));
        }
        if let (Some(major), Some(minor)) = (properties.get("MAJOR"), properties.get("MINOR")) {
            let db = self.run_udev.join("data").join(format!("b{major}:{minor}"));
            let entry = read_small_file(&db).map_err(|source| DiscoveryError::Io {
                path: db.clone(),
                source,
            })?;
            if let Some(text) = entry.map(|b| String::from_utf8_lossy(&b).into_owned()) {
                for (k, v) in parse_udev_db(&text) {
                    properties.entry(k).or_insert(v);
                }
            }
        }
        let labeled = properties.contains_key("ID_PART_ENTRY_NAME")
            || partname.is_some()
            || properties.contains_key("PARTNAME");
        if depth == Depth::Labels && device_mapper && !labeled {
            return Ok(Some(RawDevice::listed_for_labels_only(
                name, dev_dir, properties,
            )));
        }
        // A label search trusts no size (the chosen partition's is asked of the
        // kernel by ioctl; a refusal naming several reads theirs): one open, read and
        // close less per partition on every start.
        let size = if depth == Depth::Labels {
            "0".to_owned()
        } else {
            let Some(size) = read_optional(&dev_dir.join("size"))? else {
                tracing::debug!(device = name, "block device vanished during discovery");
                return Ok(None);
            };
            size
        };
        // The uevent's PARTN is the same number as `partition`; read the file only
        // when the uevent lacks it.
        let partn_in_uevent = properties.contains_key("PARTN");
        let partition = if partn_in_uevent || properties.get("DEVTYPE").is_some_and(|t| t == "disk")
        {
            None
        } else {
            read_optional(&dev_dir.join("partition"))?
        };
        let (dm_name, dm_uuid) = if device_mapper {
            (
                read_optional(&dev_dir.join("dm/name"))?,
                read_optional(&dev_dir.join("dm/uuid"))?,
            )
        } else {
            (None, None)
        };
        let parent = if partition.is_some() || partn_in_uevent {
            parent_disk(&self.class_block(), &dev_dir)
        } else {
            None
        };
        Ok(Some(RawDevice {
            name: name.to_owned(),
            origin: dev_dir,
            properties,
            partname,
            size: Some(size),
            partition,
            dm_name,
            dm_uuid,
            parent,
        }))
    }
}

/// Which devices cannot carry a GPT partition label, known without reading their
/// folders. The kernel adds `PARTNAME` only to partitions, and libblkid (udev's
/// `ID_PART_ENTRY_*`) finds a partition entry only for a device with a sysfs
/// `partition` file or a device-mapper partition mapping (dm uuid `part<N>-…`, as
/// kpartx and multipath make them). So:
///
/// - a whole disk — listed in `<sys>/block`, which holds disks and never
///   partitions — other than device-mapper carries none (loop, DRBD, NVMe, …);
/// - a device-mapper disk carries one only if its uuid starts with `part`; one
///   `DM_LIST_DEVICES` gives every uuid at once (LVM's volumes, other mappings).
///
/// Where either source is missing (a test tree, a kernel that lists no uuids) the
/// devices are read as before.
#[derive(Debug, Default)]
struct NoLabelPossible {
    whole_disks: Option<WholeDisks>,
    /// dm minors whose uuid is known and is not a partition mapping's.
    unpartitioned_dm_minors: Option<std::collections::HashSet<u32>>,
    /// The device-mapper list those minors came from.
    dm_list: Option<Vec<ListedDevice>>,
}

/// More whole disks than a machine has; beyond it the shortcut is not taken.
const MAX_WHOLE_DISKS: usize = 1 << 20;

/// The names in `<sys>/block`. Device-mapper's `dm-N` (thousands on a LINSTOR node)
/// are kept as minors: no string is allocated or hashed for them.
#[derive(Debug, Default)]
struct WholeDisks {
    dm_minors: std::collections::HashSet<u32>,
    others: std::collections::HashSet<String>,
}

impl WholeDisks {
    fn from_names(names: impl Iterator<Item = String>) -> Self {
        let mut disks = WholeDisks::default();
        for name in names {
            match dm_minor(&name) {
                Some(minor) => {
                    disks.dm_minors.insert(minor);
                }
                None => {
                    disks.others.insert(name);
                }
            }
        }
        disks
    }

    fn contains(&self, name: &str) -> bool {
        match dm_minor(name) {
            Some(minor) => self.dm_minors.contains(&minor),
            None => self.others.contains(name),
        }
    }
}

/// The minor in a kernel `dm-N` name (`None` for any other name, `dm-01` included:
/// the kernel writes no leading zeros, so such a name is not device-mapper's).
fn dm_minor(name: &str) -> Option<u32> {
    let digits = name.strip_prefix("dm-")?;
    if digits.len() > 1 && digits.starts_with('0') {
        return None;
    }
    digits
        .parse()
        .ok()
        .filter(|_| digits.bytes().all(|b| b.is_ascii_digit()))
}

impl NoLabelPossible {
    fn read(sys: &Path, machine_device_mapper: bool) -> Self {
        let whole_disks = list_folder(&sys.join("block"), MAX_WHOLE_DISKS)
            .ok()
            .map(|entries| {
                WholeDisks::from_names(
                    entries
                        .into_iter()
                        .map(|e| crate::ffi::dir::name_string(e.name)),
                )
            });
        let dm_list = if let (true, Some(disks)) = (machine_device_mapper, &whole_disks) {
            Self::list_device_mapper(disks.dm_minors.len())
        } else {
            None
        };
        Self {
            whole_disks,
            unpartitioned_dm_minors: dm_list.as_deref().map(Self::unpartitioned_dm_minors),
            dm_list,
        }
    }

    fn list_device_mapper(expected: usize) -> Option<Vec<ListedDevice>> {
        if !Path::new("/dev/mapper/control").exists() {
            return None;
        }
        match list_devices_with_uuids_expecting(expected) {
            Ok(listed) => Some(listed),
            Err(e) => {
                tracing::debug!(error = %e, "device-mapper list unavailable; reading dm-N folders");
                None
            }
        }
    }

    fn unpartitioned_dm_minors(listed: &[ListedDevice]) -> std::collections::HashSet<u32> {
        let mut minors = std::collections::HashSet::new();
        for device in listed {
            match &device.uuid {
                // Only a uuid that says "not a partition mapping" lets a
                // device go unread.
                UuidInList::Uuid(uuid) if !uuid.starts_with("part") => {}
                // A partition mapping, a mapping without a uuid (a hand-made
                // one may map a partition), or a kernel that does not say: read it.
                UuidInList::Uuid(_) | UuidInList::None | UuidInList::NotReported => continue,
            }
            minors.insert(device.minor);
        }
        minors
    }

    fn applies_to(&self, name: &str) -> bool {
        let Some(disks) = &self.whole_disks else {
            return false;
        };
        if !disks.contains(name) {
            return false;
        }
        match dm_minor(name) {
            None => true,
            Some(minor) => self
                .unpartitioned_dm_minors
                .as_ref()
                .is_some_and(|minors| minors.contains(&minor)),
        }
    }
}

/// A partition's sysfs folder sits inside its disk's folder
/// (`/sys/devices/…/vda/vda1`), so the disk is the parent folder's name. The
/// `class/block` entry is a link to that folder: one readlink names the parent
/// (canonicalizing would read every link on the way).
fn parent_disk(class_block: &Path, dev_dir: &Path) -> Option<String> {
    let parent_name = match fs::read_link(dev_dir) {
        Ok(target) => target.parent()?.file_name()?.to_owned(),
        Err(_) => fs::canonicalize(dev_dir)
            .ok()?
            .parent()?
            .file_name()?
            .to_owned(),
    };
    class_block
        .join(&parent_name)
        .join("dev")
        .exists()
        .then(|| parent_name.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_kernels_dm_names_are_taken_as_device_mapper_minors() {
        assert_eq!(dm_minor("dm-0"), Some(0));
        assert_eq!(dm_minor("dm-2047"), Some(2047));
        for other in [
            "dm-",
            "dm-01",
            "dm-+1",
            "dm-1a",
            "dm-99999999999",
            "vda",
            "xdm-1",
        ] {
            assert_eq!(dm_minor(other), None, "{other}");
        }
        let disks = WholeDisks::from_names(
            ["dm-3", "loop7", "dm-01", "vda"]
                .into_iter()
                .map(String::from),
        );
        for name in ["dm-3", "loop7", "dm-01", "vda"] {
            assert!(disks.contains(name), "{name}");
        }
        for name in ["dm-1", "vda1", "loop7p1", "dm-4"] {
            assert!(!disks.contains(name), "{name}");
        }
        assert_eq!(disks.dm_minors.len(), 1);
    }
}
