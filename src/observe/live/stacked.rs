//! Everything stacked on the partition, directly or through other devices: LVM's
//! device-mapper devices (and anything built on them). Read from sysfs `holders/`,
//! which the kernel keeps from the device tables themselves — so this finds the
//! devices that really use the partition even when LVM's metadata no longer lists
//! them (a command killed between activating a device and committing metadata).
//!
//! The result is in removal order: every device comes after all devices stacked on
//! it, so removing them front to back never pulls a device from under another.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::dm::{parse_lvm_dm_uuid, DmParseError};
use super::holders::HoldersReader;
use super::LiveError;
use crate::observe::lvm::LvmUuid;

/// More devices than any real stack has; bounds what a hostile sysfs can make us walk.
/// A LINSTOR node's pool carries every thin volume and active snapshot (10,000 LVs
/// is a size the tool plans for), each a holder of the pool's device.
const MAX_STACKED_DEVICES: usize = 1 << 16;

/// One device stacked on the partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StackedDevice {
    /// Kernel name (`dm-3`).
    pub kernel_name: String,
    pub dm_name: Option<String>,
    pub dm_uuid: Option<String>,
    /// Kernel names of the devices stacked directly on this one.
    pub holders: Vec<String>,
    /// Stacked directly on the partition: its table maps the partition itself.
    pub on_partition: bool,
}

impl StackedDevice {
    /// `(vg uuid, lv uuid)`, when LVM made this device.
    pub fn lvm_ids(&self) -> Option<(LvmUuid, LvmUuid)> {
        let parsed = parse_lvm_dm_uuid(self.dm_uuid.as_deref()?)?;
        Some((parsed.vg_uuid, parsed.lv_uuid))
    }
}

/// Devices stacked on `/sys/class/block/<partition>`, in removal order.
pub fn stacked_on(
    reader: &HoldersReader,
    partition: &str,
) -> Result<Vec<StackedDevice>, LiveError> {
    let mut found: BTreeMap<String, StackedDevice> = BTreeMap::new();
    let mut queue = vec![partition.to_owned()];
    let mut seen = BTreeSet::from([partition.to_owned()]);
    while let Some(name) = queue.pop() {
        let holders = reader.holders(&name)?;
        if let Some(device) = found.get_mut(&name) {
            device.holders = holders.iter().map(|h| h.name.clone()).collect();
        }
        for holder in holders {
            if !seen.insert(holder.name.clone()) {
                continue;
            }
            if seen.len() > MAX_STACKED_DEVICES {
                return Err(LiveError::Parse {
                    dm_name: partition.to_owned(),
                    source: DmParseError {
                        what: "devices stacked on the partition",
                        found: format!("more than {MAX_STACKED_DEVICES}"),
                        detail: "sysfs lists an impossible number of holders".to_owned(),
                    },
                });
            }
            queue.push(holder.name.clone());
            found.insert(
                holder.name.clone(),
                StackedDevice {
                    on_partition: name == partition,
                    kernel_name: holder.name,
                    dm_name: holder.dm_name,
                    dm_uuid: holder.dm_uuid,
                    holders: Vec::new(),
                },
            );
        }
    }
    Ok(removal_order(found))
}

/// Orders devices so that each comes after every device stacked on it.
fn removal_order(mut pending: BTreeMap<String, StackedDevice>) -> Vec<StackedDevice> {
    let mut ordered = Vec::with_capacity(pending.len());
    while !pending.is_empty() {
        let ready: Vec<String> = pending
            .values()
            .filter(|d| d.holders.iter().all(|h| !pending.contains_key(h)))
            .map(|d| d.kernel_name.clone())
            .collect();
        // A cycle cannot exist in a real device stack; if sysfs shows one, keep the
        // rest in name order rather than loop.
        let ready = if ready.is_empty() {
            pending.keys().cloned().collect()
        } else {
            ready
        };
        for name in ready {
            if let Some(device) = pending.remove(&name) {
                ordered.push(device);
            }
        }
    }
    ordered
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::partition::test_tree::FakeSysfs;

    const VG: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    const POOL: &str = "PPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPP";
    const THIN: &str = "TTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTT";

    #[test]
    fn a_thin_stack_is_listed_top_down() {
        let fake = FakeSysfs::new();
        fake.add_disk("vda", 254, 0, 1000);
        fake.add_partition("vda", "vda1", (254, 1), 1, 900, Some("linstor-storage"));
        fake.add_dm("dm-0", 0, "vg-pool_tmeta", &format!("LVM-{VG}{POOL}-tmeta"));
        fake.add_dm("dm-1", 1, "vg-pool_tdata", &format!("LVM-{VG}{POOL}-tdata"));
        fake.add_dm("dm-2", 2, "vg-pool-tpool", &format!("LVM-{VG}{POOL}-tpool"));
        fake.add_dm("dm-3", 3, "vg-thin", &format!("LVM-{VG}{THIN}"));
        fake.add_dm("dm-4", 4, "vg-pool", &format!("LVM-{VG}{POOL}-pool"));
        fake.add_holder("vda/vda1", "dm-0");
        fake.add_holder("vda/vda1", "dm-1");
        fake.add_holder("dm-0", "dm-2");
        fake.add_holder("dm-1", "dm-2");
        fake.add_holder("dm-2", "dm-3");
        fake.add_holder("dm-2", "dm-4");
        let reader = HoldersReader::with_root(fake.sys());
        let stack = match stacked_on(&reader, "vda1") {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        let names: Vec<&str> = stack.iter().map(|d| d.kernel_name.as_str()).collect();
        let position = |n: &str| names.iter().position(|x| *x == n);
        assert_eq!(names.len(), 5, "{names:?}");
        for (upper, lower) in [
            ("dm-3", "dm-2"),
            ("dm-4", "dm-2"),
            ("dm-2", "dm-0"),
            ("dm-2", "dm-1"),
        ] {
            assert!(
                position(upper) < position(lower),
                "{upper} before {lower}: {names:?}"
            );
        }
        let direct: Vec<&str> = stack
            .iter()
            .filter(|d| d.on_partition)
            .map(|d| d.kernel_name.as_str())
            .collect();
        assert_eq!(direct.len(), 2, "{direct:?}");
        assert!(direct.contains(&"dm-0") && direct.contains(&"dm-1"));
        let thin = stack.iter().find(|d| d.kernel_name == "dm-3");
        assert_eq!(
            thin.and_then(StackedDevice::lvm_ids),
            LvmUuid::parse(VG).ok().zip(LvmUuid::parse(THIN).ok())
        );
    }

    #[test]
    fn nothing_stacked_is_an_empty_list_and_a_missing_device_an_error() {
        let fake = FakeSysfs::new();
        fake.add_disk("vda", 254, 0, 1000);
        fake.add_partition("vda", "vda1", (254, 1), 1, 900, Some("x"));
        let reader = HoldersReader::with_root(fake.sys());
        assert!(matches!(stacked_on(&reader, "vda1"), Ok(s) if s.is_empty()));
        assert!(stacked_on(&reader, "vdz9").is_err());
    }
}
