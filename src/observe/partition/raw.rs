//! What a backend collects about one block device, and the single place that
//! turns it into a [`BlockDevice`]. Both backends feed this, so they differ
//! only in how they enumerate and read — never in how a label is chosen.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::label::{kernel_name, trim_label, KernelName};
use super::udev_db::decode_udev_escapes;
use super::{BlockDevice, DeviceKind, DiscoveryError, LabelSource};
use crate::units::Sectors;

/// Unprocessed facts about one block device.
#[derive(Debug, Default)]
pub(crate) struct RawDevice {
    /// Kernel name, the last component of the sysfs path (`vda1`, `dm-0`).
    pub name: String,
    /// Where the facts came from, for error messages (`/sys/class/block/vda1`).
    pub origin: PathBuf,
    /// Kernel uevent keys merged with udev properties (`MAJOR`, `PARTNAME`,
    /// `ID_PART_ENTRY_NAME`, …); values that are not UTF-8 are shown with U+FFFD.
    pub properties: BTreeMap<String, String>,
    /// The exact bytes of the kernel's `PARTNAME` (not always UTF-8).
    pub partname: Option<Vec<u8>>,
    /// sysfs `size` attribute: size in 512-byte units, as text.
    pub size: Option<String>,
    /// sysfs `partition` attribute: partition number, as text.
    pub partition: Option<String>,
    /// sysfs `dm/name` and `dm/uuid` attributes, for device-mapper devices.
    pub dm_name: Option<String>,
    pub dm_uuid: Option<String>,
    /// Kernel name of the disk a partition belongs to.
    pub parent: Option<String>,
}

/// Kernel RAM disks (`ram0`…): never a place for a storage pool, and noise in
/// the lists shown to operators. `zram` and loop devices are kept.
pub(crate) fn is_ignored(name: &str) -> bool {
    name.strip_prefix("ram")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn non_empty(v: Option<&String>) -> Option<String> {
    v.map(|s| s.trim_end_matches('\n'))
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

impl RawDevice {
    /// A device listed only so that a label search sees it: no partition name, and
    /// no size (0), `partition`, `dm/*` or parent read.
    pub fn listed_for_labels_only(
        name: &str,
        origin: PathBuf,
        properties: BTreeMap<String, String>,
    ) -> Self {
        RawDevice {
            name: name.to_owned(),
            origin,
            properties,
            partname: None,
            size: Some("0".to_owned()),
            partition: None,
            dm_name: None,
            dm_uuid: None,
            parent: None,
        }
    }

    fn prop(&self, key: &str) -> Option<&String> {
        self.properties.get(key)
    }

    fn parse_number<T: std::str::FromStr>(
        &self,
        what: &str,
        value: Option<&String>,
    ) -> Result<T, DiscoveryError> {
        let text = value.map(|s| s.trim()).unwrap_or("");
        text.parse().map_err(|_| DiscoveryError::Parse {
            path: self.origin.clone(),
            what: what.to_owned(),
            found: text.to_owned(),
            expected: "a decimal number",
        })
    }

    /// The GPT partition label, trailing whitespace removed (see
    /// [`super::label`]): udev's `ID_PART_ENTRY_NAME` (blkid's full decoding of
    /// the UTF-16 name) when udev has seen the device, otherwise the kernel's
    /// `PARTNAME` — marked lossy where the kernel provably could not represent
    /// the name, so that the GPT entry is read instead.
    fn label(&self) -> Option<(String, LabelSource)> {
        if let Some(v) = non_empty(self.prop("ID_PART_ENTRY_NAME")) {
            let decoded = decode_udev_escapes(&v);
            let trimmed = trim_label(&decoded);
            if !trimmed.is_empty() {
                return Some((trimmed.to_owned(), LabelSource::Udev));
            }
        }
        let partname = match &self.partname {
            Some(bytes) => bytes.as_slice(),
            None => self.prop("PARTNAME").map(|v| v.as_bytes())?,
        };
        match kernel_name(partname)? {
            KernelName::Plain(name) => Some((name, LabelSource::Kernel)),
            KernelName::Lossy(shown) => Some((shown, LabelSource::KernelLossy)),
        }
    }

    fn partition_uuid(&self) -> Option<String> {
        non_empty(self.prop("ID_PART_ENTRY_UUID"))
            .or_else(|| non_empty(self.prop("PARTUUID")))
            .map(|u| u.to_ascii_lowercase())
    }

    fn devnode(&self) -> PathBuf {
        match non_empty(self.prop("DEVNAME")) {
            Some(n) if n.starts_with('/') => PathBuf::from(n),
            Some(n) => Path::new("/dev").join(n),
            None => Path::new("/dev").join(&self.name),
        }
    }

    /// Builds the public record; fails only on malformed numbers, naming where
    /// they were read.
    pub(crate) fn into_block_device(self) -> Result<BlockDevice, DiscoveryError> {
        let major = self.parse_number("MAJOR", self.prop("MAJOR"))?;
        let minor = self.parse_number("MINOR", self.prop("MINOR"))?;
        let sectors: u64 = self.parse_number("size", self.size.as_ref())?;
        let partition_number = match self.prop("PARTN").or(self.partition.as_ref()) {
            Some(v) => Some(self.parse_number("PARTN", Some(v))?),
            None => None,
        };
        let dm_name = non_empty(self.dm_name.as_ref());
        let kind = if dm_name.is_some() || self.name.starts_with("dm-") {
            DeviceKind::DeviceMapper
        } else if self.prop("DEVTYPE").map(String::as_str) == Some("partition")
            || partition_number.is_some()
        {
            DeviceKind::Partition
        } else {
            DeviceKind::Disk
        };
        let label = self.label();
        let (partition_label, label_source) = match label {
            Some((l, s)) => (Some(l), Some(s)),
            None => (None, None),
        };
        Ok(BlockDevice {
            devnode: self.devnode(),
            major,
            minor,
            kind,
            parent: if kind == DeviceKind::Partition {
                self.parent.clone()
            } else {
                None
            },
            size_bytes: Sectors(sectors).bytes(),
            partition_label,
            label_source,
            partition_uuid: self.partition_uuid(),
            partition_number,
            dm_name,
            dm_uuid: non_empty(self.dm_uuid.as_ref()),
            name: self.name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(props: &[(&str, &str)]) -> RawDevice {
        RawDevice {
            name: "vda1".into(),
            origin: "/sys/class/block/vda1".into(),
            properties: props
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            size: Some("2048\n".into()),
            partition: Some("1".into()),
            parent: Some("vda".into()),
            ..RawDevice::default()
        }
    }

    #[test]
    fn udev_label_wins_over_kernel_partname() {
        let d = raw(&[
            ("MAJOR", "254"),
            ("MINOR", "1"),
            ("DEVTYPE", "partition"),
            ("PARTNAME", "gr!!e"),
            ("ID_PART_ENTRY_NAME", "gr\\xc3\\xb6\\xc3\\x9fe"),
        ])
        .into_block_device();
        let d = d.map_err(|e| e.to_string());
        assert_eq!(
            d.as_ref().map(|d| d.partition_label.clone()),
            Ok(Some("größe".into()))
        );
        assert_eq!(
            d.as_ref().map(|d| d.label_source),
            Ok(Some(LabelSource::Udev))
        );
    }

    #[test]
    fn non_utf8_partname_is_lossy_and_trailing_spaces_go() {
        let mut r = raw(&[("MAJOR", "254"), ("MINOR", "1"), ("DEVTYPE", "partition")]);
        r.partname = Some(b"stockage-\xe9".to_vec());
        let d = r.into_block_device().map_err(|e| e.to_string());
        assert_eq!(
            d.as_ref()
                .map(|d| (d.partition_label.clone(), d.label_source)),
            Ok((
                Some("stockage-\u{fffd}".into()),
                Some(LabelSource::KernelLossy)
            ))
        );
        let mut r = raw(&[("MAJOR", "254"), ("MINOR", "1"), ("DEVTYPE", "partition")]);
        r.partname = Some(b"data  ".to_vec());
        let d = r.into_block_device().map_err(|e| e.to_string());
        assert_eq!(
            d.as_ref()
                .map(|d| (d.partition_label.clone(), d.label_source)),
            Ok((Some("data".into()), Some(LabelSource::Kernel)))
        );
    }

    #[test]
    fn malformed_major_names_the_file() {
        let e = raw(&[("MAJOR", "x"), ("MINOR", "1")])
            .into_block_device()
            .err();
        let text = e.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            text.contains("/sys/class/block/vda1") && text.contains("MAJOR"),
            "{text}"
        );
    }

    #[test]
    fn ram_disks_are_ignored_but_not_zram_or_loop() {
        assert!(is_ignored("ram0"));
        assert!(is_ignored("ram15"));
        assert!(!is_ignored("ram"));
        assert!(!is_ignored("zram0"));
        assert!(!is_ignored("loop0"));
        assert!(!is_ignored("ramdisk"));
    }
}
