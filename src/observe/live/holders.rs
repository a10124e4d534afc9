//! Who holds a block device: the kernel lists, in `/sys/class/block/<name>/holders/`,
//! every device stacked on it (an LVM volume on a PV, a crypt mapping, …).
//! A partition with holders is in use, whatever its signature says.

use std::fs;
use std::io;
use std::path::PathBuf;

use serde::Serialize;

use super::LiveError;
use crate::ffi::dir::list_folder;
use crate::ffi::dm_list::{ListedDevice, UuidInList};
use crate::observe::attribute_file::read_attribute_line;

/// More holders than any real device has (each is a device stacked directly on it).
const MAX_HOLDERS: usize = 4096;

/// A device stacked directly on another one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Holder {
    /// Kernel name (`dm-3`).
    pub name: String,
    /// Device-mapper name (`linstor--vg-linstor--pool_tdata`) if it is a DM device.
    pub dm_name: Option<String>,
    /// Device-mapper uuid (`LVM-…`) if it is a DM device that has one.
    pub dm_uuid: Option<String>,
}

/// Reads holders from a sysfs tree (the machine's `/sys`, or a fake one in tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldersReader {
    sys: PathBuf,
}

impl Default for HoldersReader {
    fn default() -> Self {
        Self::with_root("/sys")
    }
}

fn read_trimmed(path: PathBuf) -> Result<Option<String>, LiveError> {
    match read_attribute_line(&path) {
        Ok(line) => Ok(line.filter(|s| !s.is_empty())),
        Err(source) => Err(LiveError::Io { path, source }),
    }
}

impl HoldersReader {
    /// `sys` stands for `/sys`.
    pub fn with_root(sys: impl Into<PathBuf>) -> Self {
        Self { sys: sys.into() }
    }

    /// Direct holders of the block device with kernel name `name` (`vda1`),
    /// sorted by name. A device without a `holders` folder has none; a device
    /// that does not exist is an error.
    pub fn holders(&self, name: &str) -> Result<Vec<Holder>, LiveError> {
        let class = self.sys.join("class/block");
        let device = class.join(name);
        let dir = device.join("holders");
        let entries = match list_folder(&dir, MAX_HOLDERS) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // An unknown device is an error, not "held by nothing" (asked only
                // here: every block device has a holders folder).
                return match fs::symlink_metadata(&device) {
                    Ok(_) => Ok(Vec::new()),
                    Err(source) => Err(LiveError::Io {
                        path: device,
                        source,
                    }),
                };
            }
            Err(source) => return Err(LiveError::Io { path: dir, source }),
        };
        let mut out = Vec::new();
        for entry in entries {
            let holder = entry.name.to_string_lossy().into_owned();
            let dm = class.join(&holder).join("dm");
            out.push(Holder {
                dm_name: read_trimmed(dm.join("name"))?,
                dm_uuid: read_trimmed(dm.join("uuid"))?,
                name: holder,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}

/// Direct holders of `/dev/<name>` on this machine.
pub fn holders(name: &str) -> Result<Vec<Holder>, LiveError> {
    HoldersReader::default().holders(name)
}

/// Whether a device-mapper list read earlier still names every device that holds
/// the partition now (same name, and same uuid where both say one): every device of
/// a VG on the partition maps it, directly or through one that does, so a device
/// made since the list was read shows up here.
pub fn list_covers_holders(listed: &[ListedDevice], holders: &[Holder]) -> bool {
    holders.iter().all(|holder| {
        let Some(name) = holder.dm_name.as_deref() else {
            // Not a device-mapper device (md, bcache): the list says nothing of it.
            return true;
        };
        let minor: Option<u32> = holder.name.strip_prefix("dm-").and_then(|n| n.parse().ok());
        listed.iter().any(|device| {
            device.name == name
                && minor.is_none_or(|minor| minor == device.minor)
                && match (&device.uuid, holder.dm_uuid.as_deref()) {
                    (UuidInList::Uuid(listed), Some(now)) => listed == now,
                    (UuidInList::None, Some(_)) => false,
                    _ => true,
                }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_holder_missing_from_an_earlier_list_makes_it_stale() {
        let listed = |name: &str, minor: u32, uuid: UuidInList| ListedDevice {
            name: name.to_owned(),
            major: 253,
            minor,
            uuid,
        };
        let holder = |minor: u32, name: Option<&str>, uuid: Option<&str>| Holder {
            name: format!("dm-{minor}"),
            dm_name: name.map(str::to_owned),
            dm_uuid: uuid.map(str::to_owned),
        };
        let list = [
            listed("vg-pool_tdata", 1, UuidInList::Uuid("LVM-aaa-tdata".into())),
            listed("vg-pool_tmeta", 0, UuidInList::NotReported),
        ];
        let tdata = holder(1, Some("vg-pool_tdata"), Some("LVM-aaa-tdata"));
        assert!(list_covers_holders(&list, &[]));
        assert!(list_covers_holders(&list, std::slice::from_ref(&tdata)));
        // The kernel did not report the uuid: the name and minor must match.
        assert!(list_covers_holders(
            &list,
            &[
                tdata.clone(),
                holder(0, Some("vg-pool_tmeta"), Some("LVM-aaa-tmeta"))
            ]
        ));
        // Made since the list: a new device, the same name with another uuid, or
        // made again under the same name (another minor).
        assert!(!list_covers_holders(
            &list,
            &[
                tdata.clone(),
                holder(2, Some("vg-lvol0"), Some("LVM-aaa-lvol0"))
            ]
        ));
        assert!(!list_covers_holders(
            &list,
            &[holder(1, Some("vg-pool_tdata"), Some("LVM-bbb-tdata"))]
        ));
        assert!(!list_covers_holders(
            &list,
            &[holder(7, Some("vg-pool_tdata"), Some("LVM-aaa-tdata"))]
        ));
        // Not a device-mapper holder: nothing to compare.
        let md = Holder {
            name: "md0".to_owned(),
            dm_name: None,
            dm_uuid: None,
        };
        assert!(list_covers_holders(&list, &[md]));
    }
    use crate::observe::partition::test_tree::FakeSysfs;

    #[test]
    fn lists_dm_holders_with_their_names() {
        let fake = FakeSysfs::new();
        fake.add_disk("vda", 254, 0, 1000);
        fake.add_partition("vda", "vda1", (254, 1), 1, 900, Some("linstor-storage"));
        fake.add_dm("dm-1", 1, "vg-pool_tdata", "LVM-xyz-tdata");
        fake.add_dm("dm-0", 0, "vg-pool_tmeta", "LVM-xyz-tmeta");
        fake.add_holder("vda/vda1", "dm-1");
        fake.add_holder("vda/vda1", "dm-0");
        let reader = HoldersReader::with_root(fake.sys());
        let holders = match reader.holders("vda1") {
            Ok(h) => h,
            Err(e) => panic!("{e}"),
        };
        let names: Vec<(&str, Option<&str>)> = holders
            .iter()
            .map(|h| (h.name.as_str(), h.dm_name.as_deref()))
            .collect();
        assert_eq!(
            names,
            [
                ("dm-0", Some("vg-pool_tmeta")),
                ("dm-1", Some("vg-pool_tdata"))
            ]
        );
        assert_eq!(holders[0].dm_uuid.as_deref(), Some("LVM-xyz-tmeta"));
        assert!(matches!(reader.holders("vda"), Ok(h) if h.is_empty()));
        match reader.holders("nonexistent") {
            Err(e @ LiveError::Io { .. }) => {
                let text = e.to_string();
                assert!(text.contains("class/block/nonexistent"), "{text}");
            }
            other => panic!("expected LiveError::Io, got {other:?}"),
        }
    }

    // Real holders (a thin pool's _tdata/_tmeta on its partition) are checked in
    // the VM: tests/vm_discovery.rs, step `devices-held`.
}
