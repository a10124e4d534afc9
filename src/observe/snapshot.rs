//! One read-only pass over the labeled partition: resolve it, size it, probe its
//! signatures, read its LVM metadata, match it with device-mapper, and read the
//! satellite ID. Nothing is written and nothing is activated.
use super::live::{self, ActiveLv, ThinPoolUsage};
use super::lvm::{self, PhysicalVolume, SegmentKind, VolumeGroupMetadata};
use super::partition::{self, BlockDevice, DeviceKind, DiscoveryBackend, ResolveError};
use super::satellite_id;
use super::seed_layout::{read_seed_satellite_id, SEED_METADATA_LV};
use super::signature::{self, Signature, SignatureKind};
use super::state::{
    LvFacts, LvKind, ObservedPartition, PartitionFacts, PvFacts, SatelliteIdReading, VgFacts,
};
use super::{blockdev, live::holders};
use serde::Serialize;
use std::path::{Path, PathBuf};
use thiserror::Error;

const SECTOR: u64 = 512;

#[derive(Debug, Error)]
pub enum ObserveError {
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error("cannot read the size of {}: {detail}", device.display())]
    Size { device: PathBuf, detail: String },
    #[error("cannot probe {} for signatures: {detail}", device.display())]
    Probe { device: PathBuf, detail: String },
    #[error("cannot read LVM metadata on {}: {detail}; the metadata may be damaged — inspect with `pvck {}` before anything else", device.display(), device.display())]
    Lvm { device: PathBuf, detail: String },
    #[error("{0}")]
    DeviceMapper(String),
}

/// Everything read about the partition, for `status` and for the planner.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub device: BlockDevice,
    pub logical_sector_size: u32,
    pub signatures: Vec<Signature>,
    pub physical_volume: Option<PhysicalVolume>,
    /// This VG's active device-mapper devices, or why they could not be listed.
    pub active_volumes: Result<Vec<ActiveLv>, String>,
    /// Usage of the thin pool named in [`Expectations::pool`], when it is active.
    pub pool_usage: Option<Result<ThinPoolUsage, String>>,
    /// The planner's view.
    pub observed: ObservedPartition,
}

/// What the caller wants to manage there (for name checks and pool usage).
pub struct Expectations<'a> {
    /// The VG to be managed: other devices holding a VG of this name are reported.
    pub volume_group: Option<&'a str>,
    /// The thin pool whose usage to read (for `status`; costs device-mapper queries).
    pub pool: Option<&'a str>,
}

/// LVM writes uuids with dashes; device-mapper uuids carry them without.
fn undashed(uuid: &str) -> String {
    uuid.chars().filter(|c| *c != '-').collect()
}

/// The block devices of the machine and the one carrying the label.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub devices: Vec<BlockDevice>,
    pub device: BlockDevice,
}

/// Finds the partition labeled `label` (exactly one, or an error listing what exists).
pub fn resolve(label: &str, backend: DiscoveryBackend) -> Result<Resolved, ObserveError> {
    let devices = partition::list_block_devices(backend).map_err(ResolveError::from)?;
    let device = partition::find_by_label(&devices, label)?;
    Ok(Resolved { devices, device })
}

/// [`resolve`], then [`observe_resolved`].
pub fn observe_partition(
    label: &str,
    backend: DiscoveryBackend,
    expect: &Expectations<'_>,
) -> Result<Snapshot, ObserveError> {
    observe_resolved(&resolve(label, backend)?, expect)
}

/// Reads everything about an already resolved partition.
pub fn observe_resolved(
    resolved: &Resolved,
    expect: &Expectations<'_>,
) -> Result<Snapshot, ObserveError> {
    let Resolved { devices, device } = resolved;
    let label = device.partition_label.as_deref().unwrap_or_default();
    let devnode = device.devnode.clone();
    let size_bytes = blockdev::device_size_bytes(&devnode).map_err(|e| ObserveError::Size {
        device: devnode.clone(),
        detail: e.to_string(),
    })?;
    let logical_sector_size =
        blockdev::logical_sector_size(&devnode).map_err(|e| ObserveError::Size {
            device: devnode.clone(),
            detail: e.to_string(),
        })?;
    let signatures = signature::probe_signatures(&devnode).map_err(|e| ObserveError::Probe {
        device: devnode.clone(),
        detail: e.to_string(),
    })?;
    let physical_volume = lvm::read_physical_volume(&devnode).map_err(|e| ObserveError::Lvm {
        device: devnode.clone(),
        detail: e.to_string(),
    })?;
    let vg = physical_volume.as_ref().and_then(|pv| pv.metadata.as_ref());
    let active_volumes: Result<Vec<ActiveLv>, String> = match vg {
        None => Ok(Vec::new()),
        Some(vg) => {
            let vg_uuid = undashed(&vg.id);
            live::active_lvm_volumes()
                .map(|all| all.into_iter().filter(|v| v.vg_uuid == vg_uuid).collect())
                .map_err(|e| e.to_string())
        }
    };
    let pool_usage = match (vg, expect.pool, &active_volumes) {
        (Some(vg), Some(pool), Ok(active)) => vg.lv(pool).and_then(|pool_lv| {
            live::thin_pool_device(active, &undashed(&vg.id), &undashed(&pool_lv.id))
                .map(|dev| live::thin_pool_usage(&dev.dm_name).map_err(|e| e.to_string()))
        }),
        _ => None,
    };

    let foreign_signature = signatures
        .iter()
        .find(|s| s.kind != SignatureKind::LvmPv)
        .map(|s| s.kind.description().to_owned());
    let pv_facts = match &physical_volume {
        None => None,
        Some(pv) => Some(PvFacts {
            uuid: pv.pv_uuid.clone(),
            recorded_device_size: pv.device_size,
            in_vg_without_metadata: pv.is_in_vg()
                && pv.metadata.is_none()
                && !pv.metadata_area_states.iter().any(|m| !m.ignored),
            interrupted_vg_creation: pv.is_in_vg()
                && pv.metadata.is_none()
                && pv.metadata_area_states.iter().any(|m| !m.ignored),
            volume_group: match &pv.metadata {
                None => None,
                Some(vg) => Some(vg_facts(pv, vg, &active_volumes)?),
            },
        }),
    };
    let vg_name_here = pv_facts
        .as_ref()
        .and_then(|pv| pv.volume_group.as_ref())
        .map(|vg| vg.name.as_str());
    let wanted_vg_name_elsewhere = match expect.volume_group {
        Some(wanted) if vg_name_here != Some(wanted) => vg_name_holders(devices, device, wanted),
        _ => Vec::new(),
    };
    let observed = ObservedPartition {
        partition: PartitionFacts {
            devnode,
            major: device.major,
            minor: device.minor,
            label: label.to_owned(),
            size_bytes,
        },
        // An LVM label wins: pvcreate overwrote the start, deeper superblocks are stale.
        foreign_signature: if physical_volume.is_some() {
            None
        } else {
            foreign_signature
        },
        physical_volume: pv_facts,
        wanted_vg_name_elsewhere,
    };
    Ok(Snapshot {
        device: device.clone(),
        logical_sector_size,
        signatures,
        physical_volume,
        active_volumes,
        pool_usage,
        observed,
    })
}

/// Devices other than `own` that hold a PV of a VG named `name`. Devices that can't
/// be read (empty drives, devices vanishing) are skipped; LVM's own LVs too.
fn vg_name_holders(devices: &[BlockDevice], own: &BlockDevice, name: &str) -> Vec<PathBuf> {
    devices
        .iter()
        .filter(|d| d.devnode != own.devnode && d.size_bytes > 0)
        .filter(|d| !(d.kind == DeviceKind::DeviceMapper && d.dm_uuid.as_deref().is_some_and(|u| u.starts_with("LVM-"))))
        .filter(|d| match lvm::read_physical_volume(&d.devnode) {
            Ok(Some(pv)) => pv.metadata.is_some_and(|vg| vg.name == name),
            Ok(None) => false,
            Err(e) => {
                tracing::debug!(device = %d.devnode.display(), error = %e, "skipping unreadable device");
                false
            }
        })
        .map(|d| d.devnode.clone())
        .collect()
}

fn vg_facts(
    pv: &PhysicalVolume,
    vg: &VolumeGroupMetadata,
    active_volumes: &Result<Vec<ActiveLv>, String>,
) -> Result<VgFacts, ObserveError> {
    let extent = vg.extent_size_bytes();
    let own = vg.pv_by_id(&pv.pv_uuid);
    let own_key = own.map(|entry| entry.key.as_str()).unwrap_or_default();
    let pv_extent_count = own.map_or(0, |entry| entry.pe_count);
    let allocated: u64 = vg
        .logical_volumes
        .iter()
        .flat_map(|lv| &lv.segments)
        .map(|segment| match &segment.kind {
            SegmentKind::Striped { stripes, .. } => {
                let per_stripe = segment.extent_count / (stripes.len().max(1) as u64);
                stripes.iter().filter(|(key, _)| key == own_key).count() as u64 * per_stripe
            }
            _ => 0,
        })
        .sum();
    let other_pvs = vg
        .physical_volumes
        .iter()
        .filter(|entry| entry.id != pv.pv_uuid)
        .map(|entry| match &entry.device_hint {
            Some(hint) => format!("{hint} (PV {})", entry.id),
            None => format!("PV {}", entry.id),
        })
        .collect();
    let active = active_volumes.as_ref().ok();
    let vg_uuid = undashed(&vg.id);
    let logical_volumes = vg
        .logical_volumes
        .iter()
        .map(|lv| {
            let lv_uuid = undashed(&lv.id);
            let devices: Vec<&ActiveLv> = active
                .into_iter()
                .flatten()
                .filter(|a| a.vg_uuid == vg_uuid && a.lv_uuid == lv_uuid)
                .collect();
            let top = devices.iter().find(|a| a.layer_suffix.is_none());
            let kind = match lv.segments.first().map(|s| &s.kind) {
                Some(SegmentKind::ThinPool {
                    metadata_lv,
                    chunk_size_sectors,
                    zero_new_blocks,
                    ..
                }) => LvKind::ThinPool {
                    metadata_size_bytes: vg
                        .lv(metadata_lv)
                        .map_or(0, |m| m.extent_count() * extent),
                    chunk_size_bytes: chunk_size_sectors * SECTOR,
                    zero_new_blocks: *zero_new_blocks,
                },
                Some(SegmentKind::Thin { thin_pool, .. }) => LvKind::Thin {
                    pool: thin_pool.clone(),
                },
                Some(other) => LvKind::Other {
                    segment_type: other.type_name().to_owned(),
                },
                None => LvKind::Other {
                    segment_type: "none".to_owned(),
                },
            };
            LvFacts {
                name: lv.name.clone(),
                kind,
                visible: lv.is_visible(),
                size_bytes: lv.extent_count() * extent,
                active: !devices.is_empty(),
                open_by: top
                    .filter(|a| a.open_count > 0)
                    .map(|a| describe_holders(a)),
            }
        })
        .collect();
    Ok(VgFacts {
        name: vg.name.clone(),
        uuid: vg.id.clone(),
        seqno: vg.seqno,
        extent_size_bytes: extent,
        pe_start_bytes: own.map_or(0, |entry| entry.pe_start * SECTOR),
        pv_extent_count,
        free_extents: pv_extent_count.saturating_sub(allocated),
        other_pvs,
        satellite_id: read_satellite_id(vg, active.map(Vec::as_slice)),
        logical_volumes,
    })
}

/// Who holds an open LV: its sysfs holders by name, or at least the open count.
fn describe_holders(active: &ActiveLv) -> String {
    let kernel_name = format!("dm-{}", active.minor);
    let names: Vec<String> = holders::holders(&kernel_name)
        .unwrap_or_default()
        .into_iter()
        .map(|h| h.dm_name.unwrap_or(h.name))
        .collect();
    if names.is_empty() {
        format!(
            "{} is open {} time(s), e.g. mounted or used by DRBD",
            active.dm_name, active.open_count
        )
    } else {
        format!("{} is held by {}", active.dm_name, names.join(", "))
    }
}

/// The satellite ID: this tool's VG tag, else the seed tool's metadata LV.
fn read_satellite_id(vg: &VolumeGroupMetadata, active: Option<&[ActiveLv]>) -> SatelliteIdReading {
    match satellite_id::from_vg_tags(&vg.tags) {
        Ok(Some(id)) => return SatelliteIdReading::Tag(id),
        Ok(None) => {}
        Err(e) => return SatelliteIdReading::Unreadable(e.to_string()),
    }
    let Some(seed_lv) = vg.lv(SEED_METADATA_LV) else {
        return SatelliteIdReading::Absent;
    };
    let Some(active) = active else {
        return SatelliteIdReading::Unreadable(
            "the seed tool's metadata LV exists but device-mapper could not be queried".to_owned(),
        );
    };
    let (vg_uuid, lv_uuid) = (undashed(&vg.id), undashed(&seed_lv.id));
    match active
        .iter()
        .find(|a| a.vg_uuid == vg_uuid && a.lv_uuid == lv_uuid && a.layer_suffix.is_none())
    {
        None => SatelliteIdReading::SeedLvInactive,
        Some(device) => {
            let node = Path::new("/dev/mapper").join(&device.dm_name);
            match read_seed_satellite_id(&node) {
                Ok(id) => SatelliteIdReading::SeedFile(id),
                Err(e) => SatelliteIdReading::Unreadable(e),
            }
        }
    }
}
