//! The planner: a pure function from what was observed on the partition and what the
//! operator asked for to an ordered list of actions — or a refusal that says why
//! nothing may be written. Almost all decisions of the tool live here.
mod action;
mod host_lvm;
mod pool_health;
pub(crate) mod pool_preconditions;
mod preflight;
mod refusal;
pub mod sizing;
mod spare;
#[cfg(test)]
mod tests;
mod torn;

pub use action::{Action, UnreadablePv};
pub use host_lvm::host_lvm_warnings;
pub use pool_health::pool_warnings;
pub use preflight::{needs_facts as needs_preflight, writes};
pub use refusal::Refusal;

use crate::config::names::{LvName, NameError, VgName};
use crate::config::ProvisionConfig;
use crate::observe::state::{
    InUseWithoutMetadata, LvFacts, LvKind, ObservedPartition, OwnMetadataAreas, PvFacts,
    SatelliteIdReading, VgFacts, VgLocking,
};
use crate::observe::vg_dev_dir::{is_lv_link, LinkReach, VgDevDir, VgDevEntry};
use crate::satellite_id;
use crate::units::{Bytes, CheckedSub, DeviceRange, ExtentSize, Extents};
use serde::Serialize;

/// LVM's smallest thin pool metadata size.
const MIN_POOL_METADATA_BYTES: Bytes = Bytes(2 << 20);
/// Thin pool metadata needs about 64 bytes per data chunk (LVM's own estimate).
const POOL_METADATA_BYTES_PER_CHUNK: u128 = 64;

/// A satellite-ID change: the storage on the partition was made for another node
/// identity and will be reset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reset {
    /// The ID recorded on disk; `None` when the VG records none (JSON: `""`).
    #[serde(serialize_with = "serialize_none_as_empty")]
    pub existing: Option<String>,
    pub expected: String,
}

impl Reset {
    /// The recorded ID as logs and JSON show it: empty when there is none.
    pub fn existing_shown(&self) -> &str {
        self.existing.as_deref().unwrap_or_default()
    }
}

/// Plans' JSON predates `Option` here and spelled "none recorded" as `""`.
fn serialize_none_as_empty<S: serde::Serializer>(
    value: &Option<String>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(value.as_deref().unwrap_or_default())
}

/// What to do, in order. An empty plan means the partition is already as wanted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub reset: Option<Reset>,
    pub actions: Vec<Action>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }
}

/// Decides what to do with the partition.
pub fn plan(observed: &ObservedPartition, config: &ProvisionConfig) -> Result<Plan, Refusal> {
    // A torn commit or a metadata area without a header first, and alone: nothing
    // else on the partition can be judged while its VG cannot be read.
    if let Some(torn_metadata) = observed
        .physical_volume
        .as_ref()
        .and_then(|pv| pv.torn_metadata.as_ref())
    {
        let plan = torn::plan(observed, torn_metadata, config)?;
        preflight::check(observed, &plan)?;
        return Ok(plan);
    }
    if let Some(unwritten) = observed
        .physical_volume
        .as_ref()
        .and_then(|pv| pv.unwritten_metadata_header.as_ref())
    {
        let plan = torn::plan_unwritten(observed, unwritten)?;
        preflight::check(observed, &plan)?;
        return Ok(plan);
    }
    let cleanup = remove_stale_devices(observed)?;
    let mut plan = plan_lvm(observed, config)?;
    clear_volume_group_path(observed, config, &mut plan.actions)?;
    plan.actions.splice(0..0, cleanup);
    host_lvm::integrate(observed, config, &mut plan)?;
    refuse_native_removals_under_lvmlockd(observed, &plan)?;
    preflight::check(observed, &plan)?;
    pool_preconditions::check(observed, config, &plan)?;
    Ok(plan)
}

/// A native device removal is safe only under LVM's lock of the VG, which under
/// lvmlockd is no file this tool can take.
fn refuse_native_removals_under_lvmlockd(
    observed: &ObservedPartition,
    plan: &Plan,
) -> Result<(), Refusal> {
    if observed.host_lvm.vg_locking != VgLocking::Lvmlockd {
        return Ok(());
    }
    let dm_names: Vec<String> = plan
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::RemoveStaleDevices { dm_names } => Some(dm_names.iter().cloned()),
            _ => None,
        })
        .flatten()
        .collect();
    if dm_names.is_empty() {
        return Ok(());
    }
    Err(Refusal::NativeRemovalUnderLvmlockd {
        device: observed.partition.devnode.clone(),
        dm_names,
    })
}

/// Device-mapper devices an interrupted command left stacked on the partition go
/// first: LVM would trip over them (a name in use, a device busy).
fn remove_stale_devices(observed: &ObservedPartition) -> Result<Option<Action>, Refusal> {
    let stale = &observed.leftovers.stale_devices;
    if let Some((device, holder)) = stale
        .iter()
        .find_map(|d| d.held_by.as_ref().map(|holder| (d, holder)))
    {
        return Err(Refusal::StaleDeviceInUse {
            device: observed.partition.devnode.clone(),
            dm_name: device.dm_name.clone(),
            holder: holder.clone(),
        });
    }
    Ok((!stale.is_empty()).then(|| Action::RemoveStaleDevices {
        dm_names: stale.iter().map(|d| d.dm_name.clone()).collect(),
    }))
}

/// `vgcreate` refuses a name for which `/dev/<name>` exists. LVM's own links there,
/// left by a command killed midway, are cleared right before it; anything else is a
/// refusal.
fn clear_volume_group_path(
    observed: &ObservedPartition,
    config: &ProvisionConfig,
    actions: &mut Vec<Action>,
) -> Result<(), Refusal> {
    let Some(at) = actions.iter().position(|a| {
        matches!(a, Action::CreateVolumeGroup { volume_group, .. } if *volume_group == config.volume_group)
    }) else {
        return Ok(());
    };
    let taken = |path: &std::path::Path, found: String| {
        Err(Refusal::VolumeGroupPathTaken {
            volume_group: config.volume_group.to_string(),
            path: path.to_path_buf(),
            found,
        })
    };
    let path = match &observed.leftovers.vg_dev_dir {
        VgDevDir::Absent => return Ok(()),
        // A first look's: refused here, decided again from a look that reads it.
        VgDevDir::NotRead => {
            return taken(
                &std::path::Path::new("/dev").join(config.volume_group.as_str()),
                "a folder this look did not read".to_owned(),
            )
        }
        VgDevDir::NotAFolder { path } => return taken(path, "not a folder".to_owned()),
        VgDevDir::Folder { path, entries } => {
            let foreign: Vec<&str> = entries
                .iter()
                .filter_map(|e| match e {
                    VgDevEntry::Other { name } => Some(name.as_str()),
                    VgDevEntry::Symlink { .. } | VgDevEntry::LinkNotFollowed { .. } => None,
                })
                .collect();
            if !foreign.is_empty() {
                return taken(
                    path,
                    format!("it holds {}, which are not symlinks", foreign.join(", ")),
                );
            }
            // Links LVM (or udev) did not make: someone else's, never cleared. A link
            // whose target was not read cannot be judged: refused, not removed (a
            // plan that writes is always observed with the targets read).
            let not_lvms: Vec<String> = entries
                .iter()
                .filter_map(|e| match e {
                    VgDevEntry::Symlink { name, target, .. }
                        if !is_lv_link(&config.volume_group, target) =>
                    {
                        Some(format!("`{name}` -> {}", target.display()))
                    }
                    VgDevEntry::LinkNotFollowed { name } => {
                        Some(format!("`{name}` (a link whose target was not read)"))
                    }
                    _ => None,
                })
                .collect();
            if !not_lvms.is_empty() {
                return taken(
                    path,
                    format!(
                        "it holds {}, which are not links to device-mapper devices of volume group {}",
                        not_lvms.join(", "),
                        config.volume_group
                    ),
                );
            }
            // Links that still reach a device belong to a live VG of that name — one
            // this partition's VG (removed by the plan before this step) or, when no
            // VG of that name is here, one we cannot see. Only leftovers we remove
            // first (stale devices) may still resolve at planning time.
            let ours_here = observed
                .physical_volume
                .as_ref()
                .and_then(|pv| pv.volume_group.as_ref())
                .filter(|vg| vg.name == config.volume_group);
            let live: Vec<(&str, &std::path::Path, &LinkReach)> = entries
                .iter()
                .filter_map(|e| match e {
                    VgDevEntry::Symlink {
                        name,
                        target,
                        reaches,
                    } if reaches.is_live() => Some((name.as_str(), target.as_path(), reaches)),
                    _ => None,
                })
                .collect();
            // Here, a live link must dangle once the reset has removed what it
            // removes, or the folder's removal would refuse it after the VG was gone
            // (so it is refused now):
            // - a link through a `/dev/mapper` node reaching a device the VG lists
            //   (any name: a killed command's link of LVM's temporary `lvol0`); when
            //   that device goes, the node dangles or, its minor reused, names
            //   another device: stale either way;
            // - a `../dm-N` link reaching a device the VG lists, named after a
            //   visible volume (LVM removes that volume's link by its name);
            // - a link reaching a stale device the plan removes first.
            match ours_here {
                Some(vg) => {
                    let removed_with_the_vg =
                        |name: &str, target: &std::path::Path, reaches: &LinkReach| match reaches {
                            LinkReach::ListedVolume { .. } => {
                                target
                                    .parent()
                                    .and_then(std::path::Path::file_name)
                                    .is_some_and(|d| d == "mapper")
                                    || vg
                                        .logical_volumes
                                        .iter()
                                        .any(|lv| lv.visible && lv.name == name)
                            }
                            LinkReach::OtherDevice {
                                dm_name: Some(dm_name),
                            } => observed
                                .leftovers
                                .stale_devices
                                .iter()
                                .any(|d| d.dm_name == *dm_name && d.held_by.is_none()),
                            LinkReach::OtherDevice { dm_name: None } | LinkReach::Nothing => false,
                        };
                    let elsewhere: Vec<&str> = live
                        .iter()
                        .filter(|(name, target, reaches)| {
                            !removed_with_the_vg(name, target, reaches)
                        })
                        .map(|(name, ..)| *name)
                        .collect();
                    if !elsewhere.is_empty() {
                        return taken(
                            path,
                            format!(
                                "its links {} reach live devices that the reset of this volume group does not remove",
                                elsewhere.join(", ")
                            ),
                        );
                    }
                }
                None if !live.is_empty() && observed.leftovers.stale_devices.is_empty() => {
                    return taken(
                        path,
                        format!(
                            "its links {} reach live devices: a volume group of that name is active elsewhere",
                            live.iter().map(|(name, ..)| *name).collect::<Vec<_>>().join(", ")
                        ),
                    );
                }
                None => {}
            }
            path.clone()
        }
    };
    actions.insert(at, Action::RemoveStaleVolumeGroupPath { path });
    Ok(())
}

/// Decides the LVM steps: create, keep, grow, activate or reset.
fn plan_lvm(observed: &ObservedPartition, config: &ProvisionConfig) -> Result<Plan, Refusal> {
    let Some(pv) = &observed.physical_volume else {
        let overwrite_signature = match &observed.foreign_signature {
            Some(signature) if !config.force => {
                return Err(Refusal::ForeignSignature {
                    device: observed.partition.devnode.clone(),
                    signature: signature.clone(),
                })
            }
            other => other.clone(),
        };
        ensure_vg_name_free(observed, config)?;
        let mut actions = vec![create_pv(observed, overwrite_signature)];
        actions.extend(create_vg_and_pool(observed, config)?);
        return Ok(Plan {
            reset: None,
            actions,
        });
    };
    if let Some(in_use) = &pv.in_use_without_metadata {
        if !in_use.proves_interrupted_vg_creation() {
            return Err(member_of_volume_group_elsewhere(observed, in_use));
        }
    }
    let Some(vg) = &pv.volume_group else {
        // An orphan PV: a previous run stopped after pvcreate or after vgremove, or
        // (proved above) a vgcreate was cut off before its first commit.
        ensure_vg_name_free(observed, config)?;
        let mut actions = Vec::new();
        let sized = sizing::metadata_area_request(observed.partition.size_bytes);
        // An interrupted reset leaves the old, small area: it holds no LVs, so it
        // is made again with the sized one (its pe_start tells the area's size).
        let small_area = pv.in_use_without_metadata.is_none()
            && sized.is_some_and(|area| pv.pe_start_bytes < sizing::pe_start_for(Some(area)));
        let reinitialise = pv.in_use_without_metadata.is_some() || small_area;
        if reinitialise {
            actions.push(Action::ReinitializePhysicalVolume {
                device: observed.partition.devnode.clone(),
                metadata_area_bytes: sized,
                small_area,
            });
        }
        if observed.partition.size_bytes > pv.recorded_device_size {
            actions.push(Action::ResizePhysicalVolume {
                device: observed.partition.devnode.clone(),
                from_bytes: pv.recorded_device_size,
                to_bytes: observed.partition.size_bytes,
            });
        }
        // The PV stays (unless re-created just above): its own pe_start and
        // metadata area at the end decide the VG's extents.
        let layout = (!reinitialise).then_some((pv.pe_start_bytes, pv.metadata_bytes_at_end));
        actions.extend(create_vg_and_pool_on(observed, config, layout)?);
        return Ok(Plan {
            reset: None,
            actions,
        });
    };
    let vg_name = check_name_on_disk(observed, "volume group", &vg.name, VgName::on_disk)?;
    if !vg.other_pvs.is_empty() {
        return Err(Refusal::VolumeGroupSpansDevices {
            volume_group: vg.name.clone(),
            device: observed.partition.devnode.clone(),
            other_pvs: vg.other_pvs.clone(),
        });
    }
    if !is_ours(vg, config) {
        return not_ours(observed, vg, &vg_name, config);
    }
    let recorded = match &vg.satellite_id {
        SatelliteIdReading::Unreadable(reason) => {
            return Err(Refusal::SatelliteIdUnreadable {
                volume_group: vg.name.clone(),
                reason: reason.clone(),
            })
        }
        SatelliteIdReading::SeedLvInactive | SatelliteIdReading::SeedLvUnloaded { .. } => {
            let mut actions = Vec::new();
            for pool in idle_pools(vg) {
                actions.extend(unblock_idle_pool(observed, vg, &vg_name, pool)?);
            }
            actions.push(Action::ActivateSeedIdLv {
                volume_group: vg_name,
            });
            return Ok(Plan {
                reset: None,
                actions,
            });
        }
        SatelliteIdReading::SeedPoolSuspended { pool } => {
            return Ok(Plan {
                reset: None,
                actions: vec![Action::RefreshThinPool {
                    volume_group: vg_name,
                    pool: check_name_on_disk(observed, "logical volume", pool, LvName::on_disk)?,
                }],
            });
        }
        SatelliteIdReading::Tag(id) | SatelliteIdReading::SeedFile(id) => Some(id.as_str()),
        SatelliteIdReading::Absent => None,
    };
    match recorded {
        Some(id) if satellite_id::same_node(id, &config.satellite_id) => {
            keep_and_grow(observed, pv, vg, &vg_name, config)
        }
        Some(id) => reset(observed, vg, &vg_name, config, Some(id)),
        // A VG of the configured name that records no ID, empty or holding only the
        // pool, is the one this partition was dedicated to (the seed tool left such
        // VGs behind): reset it as the seed would. One holding other volumes, or a
        // VG of another name, is someone else's unless --force says otherwise.
        None if vg.name == config.volume_group => {
            let volumes = volumes_besides_pool(vg, config);
            if !volumes.is_empty() && !config.force {
                return Err(Refusal::UntaggedVolumeGroupHoldsVolumes {
                    volume_group: vg.name.clone(),
                    device: observed.partition.devnode.clone(),
                    volumes,
                });
            }
            reset(observed, vg, &vg_name, config, None)
        }
        None if config.force => reset(observed, vg, &vg_name, config, None),
        None => Err(Refusal::ForeignVolumeGroup {
            volume_group: vg.name.clone(),
            device: observed.partition.devnode.clone(),
        }),
    }
}

/// A VG this tool may act on: the configured one, or one it tagged. Every step
/// that activates, refreshes or removes anything runs only on such a VG.
fn is_ours(vg: &VgFacts, config: &ProvisionConfig) -> bool {
    vg.name == config.volume_group || matches!(vg.satellite_id, SatelliteIdReading::Tag(_))
}

/// Another VG on the partition: nothing of it is activated to read an ID (the
/// seed tool's `metadata` LV included); refused, or wiped whole under --force.
fn not_ours(
    observed: &ObservedPartition,
    vg: &VgFacts,
    vg_name: &VgName,
    config: &ProvisionConfig,
) -> Result<Plan, Refusal> {
    let device = observed.partition.devnode.clone();
    match &vg.satellite_id {
        SatelliteIdReading::SeedFile(id) if *id == config.satellite_id => {
            Err(Refusal::VolumeGroupNameMismatch {
                found: vg.name.clone(),
                wanted: config.volume_group.to_string(),
                device,
            })
        }
        SatelliteIdReading::Unreadable(reason) => Err(Refusal::SatelliteIdUnreadable {
            volume_group: vg.name.clone(),
            reason: reason.clone(),
        }),
        SatelliteIdReading::SeedFile(id) if config.force => {
            reset(observed, vg, vg_name, config, Some(id))
        }
        _ if config.force => reset(observed, vg, vg_name, config, None),
        SatelliteIdReading::Absent | SatelliteIdReading::Tag(_) => {
            Err(Refusal::ForeignVolumeGroup {
                volume_group: vg.name.clone(),
                device,
            })
        }
        _ => Err(Refusal::ForeignSeedLayout {
            volume_group: vg.name.clone(),
            wanted: config.volume_group.to_string(),
            device,
        }),
    }
}

/// The refusal for a PV marked in use whose VG metadata is not on the partition and
/// that cannot be proved to be an interrupted `vgcreate`.
fn member_of_volume_group_elsewhere(
    observed: &ObservedPartition,
    in_use: &InUseWithoutMetadata,
) -> Refusal {
    let own_areas = match in_use.own_areas {
        OwnMetadataAreas::None => {
            "it has no metadata area (made with --pvmetadatacopies 0), so its VG keeps its metadata on other PVs"
        }
        OwnMetadataAreas::Ignored => {
            "its metadata areas are marked ignored (--metadataignore y or vgchange --vgmetadatacopies), so its VG keeps its metadata on other PVs"
        }
        OwnMetadataAreas::EmptyInUse => {
            "its metadata area is empty, as an interrupted vgcreate leaves it, but that cannot be proved"
        }
    };
    let mut found: Vec<String> = in_use
        .listed_by
        .iter()
        .map(|listing| {
            let devices: Vec<String> = listing
                .devices
                .iter()
                .map(|d| d.display().to_string())
                .collect();
            format!(
                "volume group {} on {} lists this PV",
                listing.volume_group,
                devices.join(", ")
            )
        })
        .collect();
    if found.is_empty() {
        found.push(
            "no copy of the VG's metadata is readable on this machine; the other PVs of its VG may be detached"
                .to_owned(),
        );
    }
    for (device, why) in &in_use.unreadable {
        found.push(format!(
            "{} carries an LVM label but could not be read ({why}), so it may hold the VG",
            device.display()
        ));
    }
    Refusal::PvOfVolumeGroupElsewhere {
        device: observed.partition.devnode.clone(),
        own_areas: own_areas.to_owned(),
        found: found.join("; "),
    }
}

/// Visible LVs of `vg` other than the configured thin pool (hidden LVs belong to a
/// visible one: the pool's data, metadata and spare, or another volume's parts).
fn volumes_besides_pool(vg: &VgFacts, config: &ProvisionConfig) -> Vec<String> {
    vg.logical_volumes
        .iter()
        .filter(|lv| lv.visible)
        .filter(|lv| !(lv.name == config.pool && matches!(lv.kind, LvKind::ThinPool { .. })))
        .map(|lv| lv.name.clone())
        .collect()
}

/// Names read from the metadata go on LVM command lines (split on whitespace):
/// each must pass LVM's naming rules first, which `make` (a validator of the name
/// type the command line takes) checks.
fn check_name_on_disk<T>(
    observed: &ObservedPartition,
    what: &'static str,
    name: &str,
    make: fn(&str) -> Result<T, NameError>,
) -> Result<T, Refusal> {
    make(name).map_err(|e| Refusal::InvalidNameOnDisk {
        device: observed.partition.devnode.clone(),
        what,
        name: name.to_owned(),
        reason: name_problem(&e),
    })
}

/// What is wrong with a name, without the validator's wording of what it names.
fn name_problem(error: &NameError) -> String {
    match error {
        NameError::Empty { .. } => "it is empty".to_owned(),
        NameError::TooLong { len, .. } => format!(
            "it is {len} characters long, LVM allows at most {}",
            crate::config::names::MAX_NAME_LEN
        ),
        NameError::BadCharacter { found, .. } => {
            format!("it contains {found:?}; LVM names use only A-Z a-z 0-9 + _ . -")
        }
        NameError::Reserved { reason, .. } => (*reason).to_owned(),
        other => other.to_string(),
    }
}

fn ensure_vg_name_free(
    observed: &ObservedPartition,
    config: &ProvisionConfig,
) -> Result<(), Refusal> {
    if observed.wanted_vg_name_elsewhere.is_empty() {
        return Ok(());
    }
    Err(Refusal::VolumeGroupNameTaken {
        volume_group: config.volume_group.to_string(),
        devices: observed.wanted_vg_name_elsewhere.clone(),
    })
}

/// `pvcreate` with the metadata area this tool sizes for the partition.
fn create_pv(observed: &ObservedPartition, overwrite_signature: Option<String>) -> Action {
    Action::CreatePhysicalVolume {
        device: observed.partition.devnode.clone(),
        overwrite_signature,
        metadata_area_bytes: sizing::metadata_area_request(observed.partition.size_bytes),
    }
}

/// `vgcreate` and the pool over the extents the new VG will have, computed as LVM
/// computes them (the host's extent size, `pe_start` after the sized area).
fn create_vg_and_pool(
    observed: &ObservedPartition,
    config: &ProvisionConfig,
) -> Result<[Action; 2], Refusal> {
    create_vg_and_pool_on(observed, config, None)
}

/// [`create_vg_and_pool`] on an existing orphan PV whose `pe_start` and metadata
/// area at the end (`pv`) are known; `None`: the PV the plan creates.
fn create_vg_and_pool_on(
    observed: &ObservedPartition,
    config: &ProvisionConfig,
    pv: Option<(Bytes, Bytes)>,
) -> Result<[Action; 2], Refusal> {
    let (extent, mut free) = pool_preconditions::new_vg_extents(
        observed.partition.size_bytes,
        &observed.host_lvm.pool_creation,
    );
    if let Some((pe_start, at_end)) = pv.filter(|(pe_start, _)| *pe_start > Bytes(0)) {
        free = observed
            .partition
            .size_bytes
            .checked_sub(pe_start)
            .and_then(|rest| rest.checked_sub(at_end))
            .and_then(|usable| extent.extents_in(usable))
            .unwrap_or(Extents::ZERO);
    }
    Ok([
        Action::CreateVolumeGroup {
            volume_group: config.volume_group.clone(),
            device: observed.partition.devnode.clone(),
            satellite_id_tag: config.satellite_id_tag.clone(),
        },
        create_pool(observed, config, extent, free)?,
    ])
}

/// The pool over `available` extents (free ones plus an existing spare's), laid
/// out by [`sizing::pool_layout`]; refused when not even metadata, spare and one
/// data extent fit.
fn create_pool(
    observed: &ObservedPartition,
    config: &ProvisionConfig,
    extent: ExtentSize,
    available: Extents,
) -> Result<Action, Refusal> {
    let layout = sizing::pool_layout(available, extent, config.chunk_size_bytes)
        .and_then(|l| Some((l, l.metadata.checked_mul(extent)?)));
    let Some((layout, metadata_bytes)) = layout else {
        return Err(Refusal::PoolCannotBeCreated {
            device: observed.partition.devnode.clone(),
            volume_group: config.volume_group.to_string(),
            why: Box::new(no_layout_why(available, extent, config.chunk_size_bytes)),
        });
    };
    Ok(Action::CreateThinPool {
        volume_group: config.volume_group.clone(),
        pool: config.pool.clone(),
        chunk_size_bytes: layout.chunk,
        zero_new_blocks: config.zero_new_blocks,
        data_extents: layout.data,
        metadata_bytes,
    })
}

/// Why [`sizing::pool_layout`] found no layout: a chunk larger than the data LV
/// that LVM's own metadata estimate leaves, or too few extents.
fn no_layout_why(
    available: Extents,
    extent: ExtentSize,
    chunk: Option<Bytes>,
) -> pool_preconditions::PoolObstacle {
    let all = available.checked_mul(extent).unwrap_or(Bytes(0));
    let chunk = chunk.unwrap_or_else(|| sizing::policy_chunk_size(all));
    let data_lv = sizing::lvm_metadata_estimate(all, chunk)
        .and_then(|m| extent.extents_covering(m))
        .and_then(|m| available.checked_sub(m.checked_times(2)?))
        .filter(|d| !d.is_zero())
        .and_then(|d| d.checked_mul(extent));
    match data_lv {
        Some(data) if data < chunk => {
            pool_preconditions::PoolObstacle::ChunkLargerThanData { chunk, data }
        }
        _ => pool_preconditions::PoolObstacle::PartitionTooSmall {
            free: u128::from(available.count()),
            extent: extent.bytes(),
            needed: 3,
        },
    }
}

fn reset(
    observed: &ObservedPartition,
    vg: &VgFacts,
    vg_name: &VgName,
    config: &ProvisionConfig,
    existing: Option<&str>,
) -> Result<Plan, Refusal> {
    let open = vg
        .logical_volumes
        .iter()
        .find_map(|lv| Some((lv, lv.open_by.as_ref()?)));
    if let Some((lv, holder)) = open {
        return Err(Refusal::LogicalVolumeOpen {
            volume_group: vg.name.clone(),
            logical_volume: lv.name.clone(),
            holder: holder.clone(),
        });
    }
    if vg.name != config.volume_group {
        ensure_vg_name_free(observed, config)?;
    }
    let device = observed.partition.devnode.clone();
    let mut actions = Vec::new();
    // A removal killed midway can leave a pool device suspended, never loaded, or
    // live but held by nothing LVM sees; LVM then cannot deactivate the pool's
    // components. Clear that first.
    for lv in &vg.logical_volumes {
        if let LvKind::ThinPool {
            serving,
            pool_device_present,
            unloaded_pool_device,
            unheld_pool_device,
            ..
        } = &lv.kind
        {
            if let Some(device) = unloaded_pool_device
                .as_ref()
                .or(unheld_pool_device.as_ref())
            {
                actions.push(Action::RemoveStaleDevices {
                    dm_names: vec![device.clone()],
                });
            } else if *pool_device_present && !serving {
                actions.push(Action::RefreshThinPool {
                    volume_group: vg_name.clone(),
                    pool: check_name_on_disk(
                        observed,
                        "logical volume",
                        &lv.name,
                        LvName::on_disk,
                    )?,
                });
            }
        }
    }
    actions.extend(remove_thin_volume_devices(observed, vg, vg_name, config));
    let visible: Vec<LvName> = vg
        .logical_volumes
        .iter()
        .filter(|lv| lv.visible)
        .map(|lv| check_name_on_disk(observed, "logical volume", &lv.name, LvName::user_named))
        .collect::<Result<_, _>>()?;
    if !vg.logical_volumes.is_empty() {
        actions.push(Action::RemoveLogicalVolumes {
            volume_group: vg_name.clone(),
            names: visible,
        });
    }
    actions.push(Action::RemoveVolumeGroup {
        volume_group: vg_name.clone(),
    });
    actions.push(Action::RemovePhysicalVolume {
        device: device.clone(),
    });
    actions.push(create_pv(observed, None));
    actions.extend(create_vg_and_pool(observed, config)?);
    Ok(Plan {
        reset: Some(Reset {
            existing: existing.map(str::to_owned),
            expected: config.satellite_id.clone(),
        }),
        actions,
    })
}

/// The reset's native first step: the active thin volumes' devices, removed by the
/// kernel (`DM_DEV_REMOVE`, many at once) instead of by `lvremove`, whose
/// deactivation of each volume is most of a reset's time (26 s for 1,000 under
/// TCG, against one second for `lvremove` of the same volumes inactive). Only a
/// thin volume whose own device is its only one (an origin's `-real` layer is
/// LVM's to take down), and only for the configured VG name (LVM removes the
/// `/dev/<vg>` links of what it deactivates; the folder of the configured name is
/// cleared before `vgcreate`, another name's would be left behind) of a VG any
/// host may change: with a system ID, a lock type or a status LVM checks first,
/// `lvremove` deactivates them itself after its checks. Never under lvmlockd
/// (its lock is no file this tool can take).
fn remove_thin_volume_devices(
    observed: &ObservedPartition,
    vg: &VgFacts,
    vg_name: &VgName,
    config: &ProvisionConfig,
) -> Option<Action> {
    if observed.host_lvm.vg_locking == VgLocking::Lvmlockd
        || !vg.access_restrictions.is_empty()
        || *vg_name != config.volume_group
    {
        return None;
    }
    let native = |lv: &LvFacts| matches!(lv.kind, LvKind::Thin { .. }) && lv.dm_name.is_some();
    let mut dm_names: Vec<String> = vg
        .logical_volumes
        .iter()
        .filter(|lv| matches!(lv.kind, LvKind::Thin { .. }))
        .filter_map(|lv| lv.dm_name.clone())
        .collect();
    if dm_names.is_empty() {
        return None;
    }
    // A pool active through its thin volumes only (no `-pool` device of its own):
    // its `-tpool` goes after them when every active volume of that pool is among
    // them, or LVM would count the pool inactive and find its components held (see
    // `tpool_without_own_device`). One nothing holds now is the step before's
    // leftover.
    for pool in &vg.logical_volumes {
        let LvKind::ThinPool {
            tpool_without_own_device: Some(tpool),
            unheld_pool_device: None,
            ..
        } = &pool.kind
        else {
            continue;
        };
        let mut users = vg.logical_volumes.iter().filter(|lv| {
            lv.active && matches!(&lv.kind, LvKind::Thin { pool: p } if *p == pool.name)
        });
        let first = users.next();
        if first.is_some_and(native) && users.all(native) {
            dm_names.push(tpool.clone());
        }
    }
    Some(Action::RemoveThinVolumeDevices {
        volume_group: vg_name.clone(),
        dm_names,
    })
}

fn keep_and_grow(
    observed: &ObservedPartition,
    pv: &PvFacts,
    vg: &VgFacts,
    vg_name: &VgName,
    config: &ProvisionConfig,
) -> Result<Plan, Refusal> {
    if vg.name != config.volume_group {
        return Err(Refusal::VolumeGroupNameMismatch {
            found: vg.name.clone(),
            wanted: config.volume_group.to_string(),
            device: observed.partition.devnode.clone(),
        });
    }
    let impossible = |what: String| Refusal::ImpossibleNumber {
        device: observed.partition.devnode.clone(),
        what,
    };
    let mut actions: Vec<Action> = record_satellite_id(vg, vg_name, config)?
        .into_iter()
        .collect();
    if !vg.logical_volumes.iter().any(|lv| lv.name == config.pool) {
        // Judged against the VG as the killed `lvcreate` saw it: before a pvresize.
        for name in spare::interrupted_spare_creations(vg, config)? {
            actions.push(Action::RemoveIncompleteSpare {
                volume_group: vg_name.clone(),
                name: check_name_on_disk(observed, "logical volume", name, LvName::on_disk)?,
            });
        }
    }
    if let Some(remove) = remove_stale_pool(vg, vg_name, config)? {
        // Created again by the next round, as in a VG without its pool.
        actions.push(remove);
        return Ok(Plan {
            reset: None,
            actions,
        });
    }
    let mut free_extents = vg.free_extents;
    let extent = vg.extent_size;
    let possible_extents =
        usable_extents(observed.partition.size_bytes, pv, vg).ok_or_else(|| {
            impossible(format!(
                "a partition of {} holds more than 2^64 extents of {}",
                observed.partition.size_bytes,
                vg.extent_size.bytes()
            ))
        })?;
    if let Some(new) = possible_extents
        .checked_sub(vg.pv_extent_count)
        .filter(|new| !new.is_zero())
    {
        actions.push(Action::ResizePhysicalVolume {
            device: observed.partition.devnode.clone(),
            from_bytes: pv.recorded_device_size,
            to_bytes: observed.partition.size_bytes,
        });
        free_extents = free_extents.checked_add(new).ok_or_else(|| {
            impossible(format!(
                "{} free extents plus {} new ones is past 2^64",
                free_extents.count(),
                new.count()
            ))
        })?;
    }
    match vg.logical_volumes.iter().find(|lv| lv.name == config.pool) {
        None => {
            // Interrupted spares are removed above; a pool's spare that stays is
            // reused (and grown) by LVM.
            let removed: Vec<&str> = actions
                .iter()
                .filter_map(|a| match a {
                    Action::RemoveIncompleteSpare { name, .. } => Some(name.as_str()),
                    _ => None,
                })
                .collect();
            let available = free_extents
                .checked_add(extents_of(vg, &removed))
                .and_then(|n| n.checked_add(existing_spare(vg)))
                .ok_or_else(|| impossible("free extents past 2^64".to_owned()))?;
            actions.push(create_pool(observed, config, extent, available)?);
        }
        Some(
            pool @ LvFacts {
                kind: LvKind::ThinPool { .. },
                ..
            },
        ) => actions.extend(grow_pool(
            observed,
            vg,
            vg_name,
            config,
            pool,
            free_extents,
        )?),
        Some(other) if is_interrupted_pool_creation(vg, other) => {
            actions.push(Action::RemoveIncompletePool {
                volume_group: vg_name.clone(),
                pool: config.pool.clone(),
            });
            let freed = extents_of(vg, &[other.name.as_str()]);
            let available = free_extents
                .checked_add(freed)
                .and_then(|n| n.checked_add(existing_spare(vg)))
                .ok_or_else(|| impossible("free extents past 2^64".to_owned()))?;
            actions.push(create_pool(observed, config, extent, available)?);
        }
        Some(other) => {
            return Err(Refusal::PoolNameTaken {
                volume_group: vg.name.clone(),
                name: other.name.clone(),
                kind: match &other.kind {
                    LvKind::Thin { .. } => "thin volume".to_owned(),
                    LvKind::Other { segment_type } => format!("{segment_type} volume"),
                    LvKind::ThinPool { .. } => "thin pool".to_owned(),
                },
            })
        }
    }
    let pool_state = vg.logical_volumes.iter().find_map(|lv| match lv.kind {
        LvKind::ThinPool {
            serving,
            pool_device_present,
            ..
        } if lv.name == config.pool => Some((serving, pool_device_present)),
        _ => None,
    });
    match pool_state {
        // A pool device that exists but does not serve (suspended, or left without
        // a live table by a command killed midway) holds its components open: LVM
        // reloads and resumes it on refresh.
        Some((false, true)) => actions.push(Action::RefreshThinPool {
            volume_group: vg_name.clone(),
            pool: config.pool.clone(),
        }),
        Some((false, false)) => {
            // First: LVM refuses to resize or activate the pool while components
            // stranded by an interrupted activation are active, or while a pool
            // device it created but never loaded is in the way.
            actions.splice(
                0..0,
                unblock_idle_pool(observed, vg, vg_name, &config.pool)?,
            );
            actions.push(Action::ActivateThinPool {
                volume_group: vg_name.clone(),
                pool: config.pool.clone(),
            });
        }
        _ => {}
    }
    Ok(Plan {
        reset: None,
        actions,
    })
}

/// A pool whose metadata device holds another transaction than LVM records: a
/// power loss kept the new pool's LVM metadata but lost LVM's wipe of its
/// `_tmeta` (LVM flushes nothing in between), so dm-thin reads an earlier pool's
/// superblock, and LINSTOR's first `lvcreate` fails. With no thin volume in LVM's
/// metadata nothing in the pool is ours to keep: remove it (created again
/// afterwards). With thin volumes: refuse, never remove.
fn remove_stale_pool(
    vg: &VgFacts,
    vg_name: &VgName,
    config: &ProvisionConfig,
) -> Result<Option<Action>, Refusal> {
    let Some(mismatch) = vg.logical_volumes.iter().find_map(|lv| match &lv.kind {
        LvKind::ThinPool {
            transaction_mismatch: Some(mismatch),
            ..
        } if lv.name == config.pool => Some(*mismatch),
        _ => None,
    }) else {
        return Ok(None);
    };
    let thin_volumes: Vec<String> = vg
        .logical_volumes
        .iter()
        .filter(|lv| matches!(&lv.kind, LvKind::Thin { pool } if *pool == config.pool))
        .map(|lv| lv.name.clone())
        .collect();
    // Re-created only when LVM never sent this pool a message (transaction 0): then
    // the kernel's transaction can only come from an earlier pool's superblock that
    // LVM's wipe of the new metadata did not reach. A pool past 0 has had volumes, and
    // its mismatch may be metadata of ours rolled back: refused, never removed.
    if !thin_volumes.is_empty() || mismatch.recorded != 0 {
        return Err(Refusal::PoolTransactionMismatch {
            volume_group: vg.name.clone(),
            pool: config.pool.to_string(),
            thin_volumes,
            on_disk: mismatch.on_disk,
            recorded: mismatch.recorded,
        });
    }
    Ok(Some(Action::RemoveStalePool {
        volume_group: vg_name.clone(),
        pool: config.pool.clone(),
        on_disk_transaction: mismatch.on_disk,
        recorded_transaction: mismatch.recorded,
    }))
}

/// The write that makes the VG record the configured ID, on a VG that names the same
/// node: the tag added to a seed node, or a tag recorded with stray characters
/// (surrounding whitespace, control characters) replaced in one command.
fn record_satellite_id(
    vg: &VgFacts,
    vg_name: &VgName,
    config: &ProvisionConfig,
) -> Result<Option<Action>, Refusal> {
    let SatelliteIdReading::Tag(recorded) = &vg.satellite_id else {
        return Ok(Some(Action::TagVolumeGroup {
            volume_group: vg_name.clone(),
            satellite_id_tag: config.satellite_id_tag.clone(),
        }));
    };
    if *recorded == config.satellite_id {
        return Ok(None);
    }
    // The tag exactly as stored: `--deltag` of any other spelling removes nothing.
    let old_tag = match &vg.satellite_id_tag {
        Some(tag) => tag.clone(),
        None => satellite_id::encode_tag(recorded).map_err(|e| Refusal::SatelliteIdUnreadable {
            volume_group: vg.name.clone(),
            reason: e.to_string(),
        })?,
    };
    Ok(Some(Action::RetagVolumeGroup {
        volume_group: vg_name.clone(),
        old_tag,
        new_tag: config.satellite_id_tag.clone(),
    }))
}

/// Thin pools of the VG with no pool device at all (components may be stranded).
fn idle_pools(vg: &VgFacts) -> impl Iterator<Item = &str> {
    vg.logical_volumes
        .iter()
        .filter(|lv| {
            matches!(
                lv.kind,
                LvKind::ThinPool {
                    pool_device_present: false,
                    ..
                }
            )
        })
        .map(|lv| lv.name.as_str())
}

/// An activation killed midway leaves an idle pool's component LVs active on their
/// own; LVM then refuses to activate the pool or any of its thin volumes until
/// they are deactivated.
fn deactivate_stranded_components(
    observed: &ObservedPartition,
    vg: &VgFacts,
    vg_name: &VgName,
    pool: &str,
) -> Result<Option<Action>, Refusal> {
    let names: Vec<LvName> = vg
        .logical_volumes
        .iter()
        .filter(|lv| lv.active && is_pool_component(&lv.name, pool))
        .map(|lv| check_name_on_disk(observed, "logical volume", &lv.name, LvName::on_disk))
        .collect::<Result<_, _>>()?;
    Ok(
        (!names.is_empty()).then(|| Action::DeactivatePoolComponents {
            volume_group: vg_name.clone(),
            names,
        }),
    )
}

/// What clears the way for activating an idle pool: its never-loaded pool device
/// removed, then its stranded components deactivated.
fn unblock_idle_pool(
    observed: &ObservedPartition,
    vg: &VgFacts,
    vg_name: &VgName,
    pool: &str,
) -> Result<Vec<Action>, Refusal> {
    Ok(unloaded_pool_device(vg, pool)
        .map(|unloaded| Action::RemoveStaleDevices {
            dm_names: vec![unloaded],
        })
        .into_iter()
        .chain(deactivate_stranded_components(observed, vg, vg_name, pool)?)
        .collect())
}

/// The never-loaded `-tpool` device of `pool`, if an interrupted activation left one.
fn unloaded_pool_device(vg: &VgFacts, pool: &str) -> Option<String> {
    vg.logical_volumes.iter().find_map(|lv| match &lv.kind {
        LvKind::ThinPool {
            unloaded_pool_device,
            ..
        } if lv.name == pool => unloaded_pool_device.clone(),
        _ => None,
    })
}

/// The hidden data and metadata LVs LVM names after the pool.
fn is_pool_component(name: &str, pool: &str) -> bool {
    name.strip_prefix(pool)
        .is_some_and(|suffix| suffix == "_tmeta" || suffix == "_tdata")
}

/// What a thin-pool `lvcreate` cut off midway leaves in a VG this tool made for this
/// satellite: a plain linear LV under the pool's name (the future data LV, not yet
/// converted), next to LVM's spare metadata LV, and nobody holding it open.
fn is_interrupted_pool_creation(vg: &VgFacts, lv: &LvFacts) -> bool {
    matches!(&lv.kind, LvKind::Other { segment_type } if segment_type == "striped")
        && lv.open_by.is_none()
        && matches!(vg.satellite_id, SatelliteIdReading::Tag(_))
        && vg
            .logical_volumes
            .iter()
            .any(|other| other.name == "lvol0_pmspare")
}

/// Whole extents of the LVs of `vg` named in `names`.
fn extents_of(vg: &VgFacts, names: &[&str]) -> Extents {
    let bytes = vg
        .logical_volumes
        .iter()
        .filter(|lv| names.contains(&lv.name.as_str()))
        .fold(Bytes(0), |sum, lv| {
            Bytes(sum.0.saturating_add(lv.size_bytes.0))
        });
    vg.extent_size.extents_in(bytes).unwrap_or(Extents::ZERO)
}

/// The pool metadata spare LVM keeps in the VG (`*_pmspare`), in extents.
fn existing_spare(vg: &VgFacts) -> Extents {
    let spares: Vec<&str> = vg
        .logical_volumes
        .iter()
        .filter(|lv| lv.name.ends_with("_pmspare"))
        .map(|lv| lv.name.as_str())
        .collect();
    extents_of(vg, &spares)
}

/// Steady state, growth and metadata headroom of an existing pool with
/// `free_extents` free in its VG (after a planned `pvresize`):
///
/// 1. metadata at least 75% used and room in the VG: doubled (LVM grows the
///    spare with it) — the one write a steady start makes unasked, and it says why;
/// 2. free extents beyond the room to double the metadata once (the partition
///    grew): the metadata first grows to twice LVM's estimate for the new data
///    size, the rest goes to the pool's data.
///
/// A pool made by an older version (1× metadata, no free extents) is left alone:
/// status reports it.
fn grow_pool(
    observed: &ObservedPartition,
    vg: &VgFacts,
    vg_name: &VgName,
    config: &ProvisionConfig,
    pool: &LvFacts,
    mut free: Extents,
) -> Result<Vec<Action>, Refusal> {
    let LvKind::ThinPool {
        metadata_size_bytes,
        chunk_size_bytes,
        ..
    } = &pool.kind
    else {
        return Ok(Vec::new());
    };
    let extent = vg.extent_size;
    let free_seen = free;
    let too_big = || {
        Refusal::ImpossibleNumber {
        device: observed.partition.devnode.clone(),
        what: format!(
            "thin pool {}/{} of {} with {} metadata and {free_seen} free grown is past 2^64 bytes or LVM's limits",
            vg.name, config.pool, pool.size_bytes, metadata_size_bytes
        ),
    }
    };
    let blocked = observed.pool_metadata_usage.as_ref().and_then(|usage| {
        pool_health::growth_blocked(&vg.name, &config.pool, usage, *metadata_size_bytes)
    });
    if blocked.is_some() {
        // Logged by `pool_warnings`; growing it now would commit what the kernel
        // does not take.
        return Ok(Vec::new());
    }
    let mut actions = Vec::new();
    let mut metadata = extent
        .extents_covering(*metadata_size_bytes)
        .ok_or_else(too_big)?;
    let mut spare = existing_spare(vg);
    // What LVM grows when the metadata goes to `to`: the metadata and the spare.
    let growth = |metadata: Extents, spare: Extents, to: Extents| {
        let spare_to = sizing::spare_for(to, extent)?;
        to.checked_sub(metadata)?
            .checked_add(spare_to.saturating_sub(spare))
            .map(|n| (n, spare_to.max(spare)))
    };
    if let Some(usage) = &observed.pool_metadata_usage {
        let used_percent = usage.used_percent();
        let to = sizing::doubled(metadata, extent).ok_or_else(too_big)?;
        if used_percent >= pool_health::DOUBLE_AT_PERCENT && to > metadata {
            let (cost, spare_after) = growth(metadata, spare, to).ok_or_else(too_big)?;
            if cost <= free {
                actions.push(Action::GrowFullPoolMetadata {
                    volume_group: vg_name.clone(),
                    pool: config.pool.clone(),
                    from_bytes: *metadata_size_bytes,
                    to_bytes: to.checked_mul(extent).ok_or_else(too_big)?,
                    used_percent,
                });
                free = free.saturating_sub(cost);
                metadata = to;
                spare = spare_after;
            }
        }
    }
    let room = sizing::doubling_room(metadata, spare, extent).ok_or_else(too_big)?;
    let Some(grow) = free.checked_sub(room).filter(|n| !n.is_zero()) else {
        return Ok(actions);
    };
    let data_after = grow
        .checked_mul(extent)
        .and_then(|more| pool.size_bytes.checked_add(more))
        .and_then(DeviceRange::within_device_range)
        .ok_or_else(too_big)?;
    let wanted =
        sizing::lifetime_metadata(data_after, *chunk_size_bytes, extent).ok_or_else(too_big)?;
    if wanted > metadata {
        if let Some((cost, spare_after)) =
            growth(metadata, spare, wanted).filter(|(c, _)| *c <= free)
        {
            actions.push(Action::ExtendPoolMetadata {
                volume_group: vg_name.clone(),
                pool: config.pool.clone(),
                to_bytes: wanted.checked_mul(extent).ok_or_else(too_big)?,
            });
            free = free.saturating_sub(cost);
            metadata = wanted;
            spare = spare_after;
        }
    }
    let room = sizing::doubling_room(metadata, spare, extent).ok_or_else(too_big)?;
    if let Some(by_extents) = free.checked_sub(room).filter(|n| !n.is_zero()) {
        actions.push(Action::ExtendThinPool {
            volume_group: vg_name.clone(),
            pool: config.pool.clone(),
            by_extents,
        });
    }
    Ok(actions)
}

/// Metadata a thin pool of `data_bytes` with `chunk_size_bytes` chunks needs;
/// `None` for chunks of 0 bytes or metadata past 2^128 bytes.
pub fn required_pool_metadata_bytes(data_bytes: Bytes, chunk_size_bytes: Bytes) -> Option<Bytes> {
    let chunks = data_bytes.0.checked_div(chunk_size_bytes.0)?;
    chunks
        .checked_mul(POOL_METADATA_BYTES_PER_CHUNK)
        .map(|bytes| Bytes(bytes).max(MIN_POOL_METADATA_BYTES))
}

/// Extents LVM gives a PV on a partition of `size_bytes`, as LVM2 computes them
/// (`lib/format_text/format-text.c`, `_text_pv_resize` and `_text_pv_setup`):
/// the space from `pe_start` to the end, minus a second metadata area at the end
/// of the device (which `pvresize` moves to the new end, keeping its size), in
/// whole extents. A partition smaller than that space has room for none; `None`
/// when it would hold more than 2^64 extents.
fn usable_extents(size_bytes: Bytes, pv: &PvFacts, vg: &VgFacts) -> Option<Extents> {
    size_bytes
        .checked_sub(vg.pe_start_bytes)
        .and_then(|rest| rest.checked_sub(pv.metadata_bytes_at_end))
        .map_or(Some(Extents::ZERO), |usable| {
            vg.extent_size.extents_in(usable)
        })
}
