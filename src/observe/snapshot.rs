//! One read-only pass over the labeled partition: resolve it, size it, probe its
//! signatures, read its LVM metadata, match it with device-mapper, and read the
//! satellite ID. Nothing is written and nothing is activated.
use super::device_size::DeviceSizeError;
use super::host_lvm::ETC_LVM;
use super::host_lvm_facts::read_host_lvm_facts;
use super::live::{self, ActiveLv, LiveError, LvmLayer, ThinPoolUsage};
use std::collections::HashSet;

use super::lvm::{self, LvmReadError, LvmUuid, PvOnDisk, SegmentKind, VgMetadata};
use super::partition::{self, BlockDevice, DeviceKind, DiscoveryBackend, ResolveError};
use super::phase_timer::PhaseTimer;
use super::preflight::{self, Preflight, PreflightError, PreflightFacts};
use super::seed_layout::{read_seed_satellite_id, SEED_ID_LV};
use super::signature::{self, ProbeError, Signature};
use super::state::{
    InUseWithoutMetadata, Leftovers, LvFacts, LvKind, MetadataCopy, ObservedPartition,
    OwnMetadataAreas, PartitionFacts, PeRange, PoolMetadataUsage, PvFacts, SatelliteIdReading,
    StaleDevice, TornMetadata, TransactionMismatch, UnwrittenMetadataHeader, VgFacts, VgListingPv,
};
use super::vg_dev_dir::{read_vg_dev_dir, Follow, VgDevDir};
use super::{device_size, live::holders};
use crate::satellite_id;
use crate::units::{Bytes, DeviceRange, Extents, Sectors};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::ffi::dm_list::ListedDevice;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ObserveError {
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error("cannot read the size of {}: {source}", device.display())]
    Size {
        device: PathBuf,
        #[source]
        source: DeviceSizeError,
    },
    #[error("cannot probe {} for signatures: {source}", device.display())]
    Probe {
        device: PathBuf,
        #[source]
        source: ProbeError,
    },
    #[error("cannot read LVM metadata on {}: {source}; the metadata may be damaged — inspect with `pvck {}` before anything else", device.display(), device.display())]
    Lvm {
        device: PathBuf,
        /// Boxed: the reader's error is large and this one travels on every `?`.
        #[source]
        source: Box<LvmReadError>,
    },
    #[error("cannot read what interrupted LVM commands may have left on {}: {source}", device.display())]
    Leftovers {
        device: PathBuf,
        #[source]
        source: LeftoversError,
    },
    #[error("the LVM metadata on {} holds an impossible number: {detail}; nothing was written. Inspect it with `pvck {}` and `vgcfgbackup`", device.display(), device.display())]
    ImpossibleNumber { device: PathBuf, detail: String },
    #[error("cannot establish that {} may be written ({source}); nothing was written", device.display())]
    Preflight {
        device: PathBuf,
        /// Boxed: it carries a device-mapper error, and this one travels on every `?`.
        #[source]
        source: Box<PreflightError>,
    },
}

/// Why the devices interrupted LVM commands may have left could not be read.
#[derive(Debug, Error)]
pub enum LeftoversError {
    #[error(transparent)]
    Stacked(LiveError),
    #[error("device-mapper could not be queried: {0}")]
    DeviceMapper(#[source] Arc<LiveError>),
    #[error("cannot read /dev/{name}: {source}")]
    VgDevDir {
        name: String,
        #[source]
        source: std::io::Error,
    },
}

/// Serializes an error as its message (the form these fields always had).
fn error_text<T: Serialize, E: std::fmt::Display, S: serde::Serializer>(
    value: &Result<T, E>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    value
        .as_ref()
        .map_err(ToString::to_string)
        .serialize(serializer)
}

fn optional_error_text<T: Serialize, E: std::fmt::Display, S: serde::Serializer>(
    value: &Option<Result<T, E>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    value
        .as_ref()
        .map(|v| v.as_ref().map_err(ToString::to_string))
        .serialize(serializer)
}

/// Everything read about the partition, for `status` and for the planner.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub device: BlockDevice,
    pub logical_sector_size: u32,
    pub signatures: Vec<Signature>,
    pub physical_volume: Option<PvOnDisk>,
    /// This VG's active device-mapper devices, or why they could not be listed.
    #[serde(serialize_with = "error_text")]
    pub active_volumes: Result<Vec<ActiveLv>, Arc<LiveError>>,
    /// Usage of the thin pool named in [`Expectations::pool`], when it is active.
    #[serde(serialize_with = "optional_error_text")]
    pub pool_usage: Option<Result<ThinPoolUsage, Arc<LiveError>>>,
    /// The planner's view.
    pub observed: ObservedPartition,
    /// Every LVM device-mapper device this pass saw (any VG): what a planned
    /// removal of a device by name is bound to, by uuid and device number.
    #[serde(skip)]
    pub lvm_devices: Vec<ActiveLv>,
}

/// What the caller wants to manage there (for name checks and pool usage).
pub struct Expectations<'a> {
    /// The VG to be managed: other devices holding a VG of this name are reported.
    pub volume_group: Option<&'a str>,
    /// The thin pool whose usage to read (for `status`; costs device-mapper queries).
    pub pool: Option<&'a str>,
    /// Probe for other signatures even where an LVM label is found (for `status`;
    /// the planner ignores them there, so provisioning skips the probe).
    pub signatures_beside_lvm_label: bool,
    /// Ask device-mapper the state (open count, table) of every active LV. When
    /// `false`, the VG's thin volumes (other than the seed tool's LV) are taken
    /// from the device list alone, as active, serving and unopened: a steady start
    /// then costs no ioctl per thin volume. Only a plan that removes LVs reads
    /// their open counts, so a caller planning with `false` must observe again with
    /// `true` before acting on a plan that does anything.
    pub every_lv_state: bool,
    /// Take the VG's devices from the device-mapper list the label search read
    /// ([`Resolved::dm_list_at_resolve`]) instead of listing them again: for a
    /// start's first look, taken right after it, when no other instance held the
    /// partition in between. Any plan that writes is decided again from a new look.
    pub reuse_resolve_dm_list: bool,
}

/// The block devices of the machine and the one carrying the label.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The partition carrying the label. The listing it was found in is not kept:
    /// it lacks unlabeled device-mapper devices' sizes and dm names and whole
    /// disks' sizes (see
    /// [`partition::list_block_devices_for_labels`]), so decisions about the other
    /// devices list them in full when they need them.
    pub device: BlockDevice,
    /// Where to list the devices in full when a decision needs the others.
    pub backend: DiscoveryBackend,
    /// The device-mapper list the label search read (the sysfs backend reads one to
    /// skip LVM's volumes), for [`Expectations::reuse_resolve_dm_list`].
    pub dm_list_at_resolve: Option<Arc<Vec<ListedDevice>>>,
}

/// Finds the partition labeled `label` (exactly one, or an error listing what exists).
pub fn resolve(
    label: &str,
    backend: DiscoveryBackend,
    timer: &mut PhaseTimer,
) -> Result<Resolved, ObserveError> {
    let (devices, dm_list) = partition::list_block_devices_for_labels_keeping_dm_list(backend)
        .map_err(ResolveError::from)?;
    timer.lap("list_devices");
    let device = partition::find_by_label(&devices, label)?;
    timer.lap("find_label");
    Ok(Resolved {
        device,
        backend,
        dm_list_at_resolve: dm_list.map(Arc::new),
    })
}

/// [`resolve`], then [`observe_resolved`].
pub fn observe_partition(
    label: &str,
    backend: DiscoveryBackend,
    expect: &Expectations<'_>,
) -> Result<Snapshot, ObserveError> {
    let mut timer = PhaseTimer::start("observe");
    let snapshot = observe_resolved(&resolve(label, backend, &mut timer)?, expect, &mut timer);
    timer.log();
    snapshot
}

/// Reads everything about an already resolved partition.
pub fn observe_resolved(
    resolved: &Resolved,
    expect: &Expectations<'_>,
    timer: &mut PhaseTimer,
) -> Result<Snapshot, ObserveError> {
    let Resolved {
        device,
        backend,
        dm_list_at_resolve,
    } = resolved;
    // The other devices in full, listed only when a decision needs them (rare: a PV
    // without metadata here, or the wanted VG name not found here).
    let all_devices = || {
        partition::list_block_devices(*backend)
            .map_err(|e| ObserveError::from(ResolveError::from(e)))
    };
    let label = device.partition_label.as_deref().unwrap_or_default();
    let devnode = device.devnode.clone();
    let (size_bytes, logical_sector_size) = device_size::size_and_logical_sector(&devnode)
        .map_err(|source| ObserveError::Size {
            device: devnode.clone(),
            source,
        })?;
    timer.lap("size");
    let physical_volume = lvm::read_pv_on_disk(&devnode).map_err(|source| ObserveError::Lvm {
        device: devnode.clone(),
        source: Box::new(source),
    })?;
    timer.lap("read_pv");
    // Beside an LVM label the signatures matter only to a plan that writes, which
    // asks for them separately ([`observe_preflight`]), and to `status`: a steady
    // start never probes.
    let probed = physical_volume.is_none() || expect.signatures_beside_lvm_label;
    let signatures = if probed {
        let found = probe(&devnode)?;
        timer.lap("probe_signatures");
        found
    } else {
        Vec::new()
    };
    let vg = physical_volume
        .as_ref()
        .and_then(|pv| pv.vg_metadata.as_ref());
    let stacked_error = |e| ObserveError::Leftovers {
        device: devnode.clone(),
        source: LeftoversError::Stacked(e),
    };
    let holders_reader = live::HoldersReader::default();
    // The devices mapping the partition itself (a pool's `_tdata` and `_tmeta`).
    let direct = holders_reader
        .holders(&device.name)
        .map_err(stacked_error)?;
    timer.lap("holders");
    // Device-mapper is asked only when something could be active: a VG is there, or
    // devices are stacked on the partition.
    let all_active: Result<Vec<ActiveLv>, Arc<LiveError>> = if vg.is_none() && direct.is_empty() {
        Ok(Vec::new())
    } else {
        // Without `every_lv_state`, the state of the VG's thin volumes is not asked
        // (their ids in one set: a lookup per listed device, not a scan of the VG).
        let thin_volumes_here: HashSet<LvmUuid> = vg
            .map(|vg| {
                vg.logical_volumes
                    .iter()
                    .filter(|lv| {
                        lv.name != SEED_ID_LV
                            && matches!(
                                lv.segments.first().map(|s| &s.kind),
                                Some(SegmentKind::Thin { .. })
                            )
                    })
                    .map(|lv| lv.id)
                    .collect()
            })
            .unwrap_or_default();
        let thin_volume_here = |parsed: &live::LvmDmUuid| {
            parsed.layer.is_none()
                && vg.is_some_and(|vg| vg.id == parsed.vg_uuid)
                && thin_volumes_here.contains(&parsed.lv_uuid)
        };
        // Only the devices of VGs that live (or lived) on this partition are read:
        // the VG there and any whose devices map it directly. Another VG's devices
        // (a second pool on another disk, with its own thousand volumes) decide
        // nothing here; they are reported from the list alone.
        let vgs_here = vgs_on_partition(vg, &direct);
        // Every device mapping the partition (read just now) must be in that list:
        // one missing was made since (another instance came and went before the
        // lock, say, leaving a stale device), and the list is read again.
        let listed = dm_list_at_resolve.as_deref().filter(|listed| {
            expect.reuse_resolve_dm_list
                && !expect.every_lv_state
                && live::list_covers_holders(listed, &direct)
        });
        live::active_lvm_volumes_asking(listed, &|parsed| {
            expect.every_lv_state
                || (vgs_here.contains(&parsed.vg_uuid) && !thin_volume_here(parsed))
        })
        .map_err(Arc::new)
    };
    timer.lap("dm_list");
    // The whole stack (every thin volume on the pool, everything on them) is walked
    // only when a decision reads it: the preflight of a partition without a PV, and
    // stale devices, which can exist only where device-mapper lists a device of a VG
    // of this partition that its metadata does not. A steady start on a pool of
    // 1,000 thin volumes so reads two holders instead of a thousand.
    let stacked = if physical_volume.is_none() || may_have_stale_devices(vg, &direct, &all_active) {
        let walked = live::stacked_on(&holders_reader, &device.name).map_err(stacked_error)?;
        timer.lap("stacked");
        walked
    } else {
        Vec::new()
    };
    // Probed anyway (a partition without an LVM label, which every plan writes to):
    // the other preflight facts cost a few system calls more.
    let preflight = if physical_volume.is_none() {
        let facts = preflight_facts(device, &signatures, &stacked)?;
        timer.lap("preflight");
        Preflight::Gathered(facts)
    } else {
        Preflight::NotGathered
    };
    let active_volumes: Result<Vec<ActiveLv>, Arc<LiveError>> = match vg {
        None => Ok(Vec::new()),
        Some(vg) => all_active
            .clone()
            .map(|all| all.into_iter().filter(|v| v.vg_uuid == vg.id).collect()),
    };
    let leftovers = Leftovers {
        stale_devices: stale_devices(&stacked, vg, &all_active).map_err(|source| {
            ObserveError::Leftovers {
                device: devnode.clone(),
                source,
            }
        })?,
        vg_dev_dir: match expect.volume_group {
            None => VgDevDir::Absent,
            // The VG of this name is the one here: its links are LVM's for it, and
            // only a plan that writes (a reset's `vgcreate`) reads where they lead and
            // whether they reach a device: a link that is not LVM's is refused before
            // the reset removes anything. Such a plan is decided from a look with
            // every volume's state, so the first look (a steady start's only one)
            // does not list the folder: 1,000 names on a LINSTOR node.
            Some(name) if vg.is_some_and(|vg| vg.name == name) && !expect.every_lv_state => {
                VgDevDir::NotRead
            }
            // Elsewhere the links are followed: they tell leftovers from a VG of that
            // name active on another device.
            Some(name) => {
                read_vg_dev_dir(Path::new("/dev"), name, Follow::TargetAndDevice, &|ids| {
                    vg.is_some_and(|vg| {
                        vg.id == ids.vg_uuid
                            && vg.logical_volumes.iter().any(|lv| lv.id == ids.lv_uuid)
                    })
                })
                .map_err(|source| ObserveError::Leftovers {
                    device: devnode.clone(),
                    source: LeftoversError::VgDevDir {
                        name: name.to_owned(),
                        source,
                    },
                })?
            }
        },
    };
    timer.lap("leftovers");
    let pool_usage = match (vg, expect.pool, &active_volumes) {
        (Some(vg), Some(pool), Ok(active)) => vg.lv(pool).and_then(|pool_lv| {
            live::thin_pool_device(active, &vg.id, &pool_lv.id)
                .map(|dev| live::thin_pool_usage(&dev.dm_name).map_err(Arc::new))
        }),
        _ => None,
    };

    timer.lap("pool_usage");
    // Every signature libblkid found other than our LVM label, in its words.
    let foreign: Vec<String> = signatures
        .iter()
        .filter(|s| !s.is_lvm_label())
        .map(Signature::to_string)
        .collect();
    let foreign_signature = (!foreign.is_empty()).then(|| foreign.join("; "));
    let pv_facts = match &physical_volume {
        None => None,
        Some(pv) => {
            // Only a PV marked in use without VG metadata here needs the other
            // devices: they decide whether its VG lives on elsewhere.
            let others = if (pv.is_in_vg() && pv.vg_metadata.is_none())
                || !pv.torn_areas.is_empty()
                || !pv.unwritten_areas.is_empty()
            {
                vgs_listing_pv(&all_devices()?, device, &pv.pv_uuid)
            } else {
                OtherDevices::default()
            };
            let after_cleanup = active_volumes
                .as_ref()
                .map(|active| without_stale_openers(active, &stacked, &leftovers.stale_devices));
            Some(pv_facts(
                &devnode,
                pv,
                &after_cleanup.map_err(Clone::clone),
                others,
                pool_usage.as_ref().and_then(|u| u.as_ref().ok()),
            )?)
        }
    };
    timer.lap("pv_facts");
    let vg_name_here = pv_facts
        .as_ref()
        .and_then(|pv| pv.volume_group.as_ref())
        .map(|vg| vg.name.as_str());
    let wanted_vg_name_elsewhere = match expect.volume_group {
        Some(wanted) if vg_name_here != Some(wanted) => {
            vg_name_holders(&all_devices()?, device, wanted)
        }
        _ => Vec::new(),
    };
    timer.lap("vg_name_elsewhere");
    // Read once per observation (~0.1 ms for Debian's 110 KiB lvm.conf).
    let host_lvm = read_host_lvm_facts(
        Path::new(ETC_LVM),
        Path::new("/dev"),
        &devnode,
        physical_volume.as_ref().map(|pv| &pv.pv_uuid),
    );
    timer.lap("host_lvm");
    let observed = ObservedPartition {
        partition: PartitionFacts {
            devnode,
            major: device.major,
            minor: device.minor,
            label: label.to_owned(),
            size_bytes,
        },
        // With an LVM label there, the preflight (for plans that write) judges the
        // other signatures; this field is the rule for a partition without one.
        foreign_signature: if physical_volume.is_some() {
            None
        } else {
            foreign_signature
        },
        physical_volume: pv_facts,
        wanted_vg_name_elsewhere,
        leftovers,
        host_lvm,
        preflight,
        pool_metadata_usage: pool_usage.as_ref().and_then(|u| u.as_ref().ok()).map(|u| {
            PoolMetadataUsage {
                used_bytes: u.metadata_used_bytes,
                total_bytes: u.metadata_total_bytes,
                mode: u.mode,
                needs_check: u.needs_check,
            }
        }),
    };
    Ok(Snapshot {
        // The label search reads no sizes (the sysfs backend leaves 0): the one
        // asked of the kernel just now stands in.
        device: BlockDevice {
            size_bytes,
            ..device.clone()
        },
        logical_sector_size,
        signatures,
        physical_volume,
        active_volumes,
        pool_usage,
        observed,
        lvm_devices: all_active.unwrap_or_default(),
    })
}

/// The VGs that live or lived on the partition: the one there and any whose devices
/// map it directly (a VG removed or replaced while its devices stayed).
fn vgs_on_partition(vg: Option<&VgMetadata>, direct: &[live::Holder]) -> Vec<LvmUuid> {
    vg.map(|vg| vg.id)
        .into_iter()
        .chain(
            direct
                .iter()
                .filter_map(|h| live::parse_lvm_dm_uuid(h.dm_uuid.as_deref()?))
                .map(|parsed| parsed.vg_uuid),
        )
        .collect()
}

/// What a plan that writes needs established first (see [`preflight`]): the full
/// signature probe (beside our LVM label too), the partition's users and whether it
/// is read-only. Read only once a first plan writes, so steady starts never probe.
pub fn observe_preflight(
    resolved: &Resolved,
    timer: &mut PhaseTimer,
) -> Result<PreflightFacts, ObserveError> {
    let device = &resolved.device;
    let signatures = probe(&device.devnode)?;
    timer.lap("probe_signatures");
    let stacked = live::stacked_on(&live::HoldersReader::default(), &device.name).map_err(|e| {
        ObserveError::Leftovers {
            device: device.devnode.clone(),
            source: LeftoversError::Stacked(e),
        }
    })?;
    let facts = preflight_facts(device, &signatures, &stacked)?;
    timer.lap("preflight");
    Ok(facts)
}

fn probe(devnode: &Path) -> Result<Vec<Signature>, ObserveError> {
    signature::probe_signatures(devnode).map_err(|source| ObserveError::Probe {
        device: devnode.to_path_buf(),
        source,
    })
}

fn preflight_facts(
    device: &BlockDevice,
    signatures: &[Signature],
    stacked: &[live::StackedDevice],
) -> Result<PreflightFacts, ObserveError> {
    let target = preflight::Target {
        devnode: &device.devnode,
        name: &device.name,
        parent: device.parent.as_deref(),
    };
    preflight::gather(&target, signatures, stacked, Path::new("/sys")).map_err(|source| {
        ObserveError::Preflight {
            device: device.devnode.clone(),
            source: Box::new(source),
        }
    })
}

/// What the machine's other block devices say about a PV.
#[derive(Debug, Default)]
pub struct OtherDevices {
    /// VGs whose metadata lists the PV, with the devices carrying it.
    pub listed_by: Vec<VgListingPv>,
    /// Devices with an LVM label that could not be read: `(device, why)`.
    pub unreadable: Vec<(PathBuf, String)>,
}

/// Block devices other than `own` whose VG metadata lists PV `pv_uuid`; LVM's own
/// LVs are skipped (a PV stacked on one of them is not something this tool's
/// partition can belong to), devices without an LVM label are not reported.
fn vgs_listing_pv(devices: &[BlockDevice], own: &BlockDevice, pv_uuid: &LvmUuid) -> OtherDevices {
    let mut found = OtherDevices::default();
    for d in devices
        .iter()
        .filter(|d| d.devnode != own.devnode && d.size_bytes > Bytes(0))
        .filter(|d| !is_lvm_lv(d))
    {
        match lvm::read_pv_on_disk(&d.devnode) {
            // A torn VG there might list this PV: not a device that can be read.
            Ok(Some(pv)) if !pv.torn_areas.is_empty() => found.unreadable.push((
                d.devnode.clone(),
                "its LVM metadata is torn (a header points at text that is not there)".to_owned(),
            )),
            // A metadata area without a header there: its buffer may hold a VG's
            // text listing this PV that LVM cannot read either.
            Ok(Some(pv)) if !pv.unwritten_areas.is_empty() && pv.vg_metadata.is_none() => {
                found.unreadable.push((
                    d.devnode.clone(),
                    "a metadata area of its LVM label has no header".to_owned(),
                ))
            }
            Ok(Some(pv)) => {
                let Some(vg) = pv.vg_metadata.filter(|vg| vg.pv_by_id(pv_uuid).is_some()) else {
                    continue;
                };
                match found
                    .listed_by
                    .iter_mut()
                    .find(|l| l.volume_group == vg.name)
                {
                    Some(listing) => listing.devices.push(d.devnode.clone()),
                    None => found.listed_by.push(VgListingPv {
                        volume_group: vg.name,
                        devices: vec![d.devnode.clone()],
                    }),
                }
            }
            Ok(None) => {}
            Err(e) => found.unreadable.push((d.devnode.clone(), e.to_string())),
        }
    }
    found
}

fn is_lvm_lv(d: &BlockDevice) -> bool {
    d.kind == DeviceKind::DeviceMapper
        && d.dm_uuid.as_deref().is_some_and(|u| u.starts_with("LVM-"))
}

/// The planner's facts about the PV on the partition (`devnode`, for messages),
/// given what device-mapper has active and what the other devices say about it.
/// `pool_usage`, the configured pool's status when it was read already, spares
/// reading it again for its transaction id.
pub fn pv_facts(
    devnode: &Path,
    pv: &PvOnDisk,
    active_volumes: &Result<Vec<ActiveLv>, Arc<LiveError>>,
    others: OtherDevices,
    pool_usage: Option<&ThinPoolUsage>,
) -> Result<PvFacts, ObserveError> {
    let impossible = |detail: String| ObserveError::ImpossibleNumber {
        device: devnode.to_owned(),
        detail,
    };
    let pe_start = pv.pe_start_bytes().unwrap_or_default();
    let metadata_bytes_at_end = pv
        .metadata_areas
        .iter()
        .filter(|area| pe_start > Bytes(0) && Bytes::from(area.offset) >= pe_start)
        .try_fold(Bytes(0), |sum, area| {
            sum.checked_add(Bytes::from(area.size))?
                .within_device_range()
        })
        .ok_or_else(|| impossible("metadata areas whose sizes add up past 2^64 bytes".into()))?;
    if let Some(torn) = pv.torn_areas.first() {
        return Ok(PvFacts {
            uuid: pv.pv_uuid,
            recorded_device_size: pv.device_size,
            metadata_bytes_at_end,
            pe_start_bytes: pe_start,
            in_use_without_metadata: None,
            volume_group: None,
            torn_metadata: Some(torn_metadata(pv, torn, others)),
            unwritten_metadata_header: None,
        });
    }
    if let Some(area) = pv.unwritten_areas.first() {
        return Ok(PvFacts {
            uuid: pv.pv_uuid,
            recorded_device_size: pv.device_size,
            metadata_bytes_at_end,
            pe_start_bytes: pe_start,
            in_use_without_metadata: None,
            volume_group: None,
            torn_metadata: None,
            unwritten_metadata_header: Some(UnwrittenMetadataHeader {
                area_start: area.start,
                area_size: area.size,
                metadata_areas: pv.metadata_area_states.len(),
                unwritten_areas: pv.unwritten_areas.len(),
                marked_in_use: pv.extension_flags & lvm::PV_EXT_USED != 0,
                stray_sectors: area.stray_sectors.clone(),
                pv_uuid_at: area.pv_uuid_at.clone(),
                copies: metadata_copies(pv, &area.copies, area.size),
                listed_by: others.listed_by,
                unreadable: others.unreadable,
            }),
        });
    }
    let in_use_without_metadata = (pv.is_in_vg() && pv.vg_metadata.is_none()).then(|| {
        let states = &pv.metadata_area_states;
        InUseWithoutMetadata {
            own_areas: if states.is_empty() {
                OwnMetadataAreas::None
            } else if states.iter().all(|m| m.ignored) {
                OwnMetadataAreas::Ignored
            } else {
                OwnMetadataAreas::EmptyInUse
            },
            listed_by: others.listed_by,
            unreadable: others.unreadable,
        }
    });
    Ok(PvFacts {
        uuid: pv.pv_uuid,
        recorded_device_size: pv.device_size,
        metadata_bytes_at_end,
        pe_start_bytes: pe_start,
        in_use_without_metadata,
        volume_group: match &pv.vg_metadata {
            None => None,
            Some(vg) => Some(vg_facts(devnode, pv, vg, active_volumes, pool_usage)?),
        },
        torn_metadata: None,
        unwritten_metadata_header: None,
    })
}

/// The intact copies found in an area's buffer (of `area_size` bytes), as the
/// planner judges them, newest first.
fn metadata_copies(pv: &PvOnDisk, found: &[lvm::RingCopy], area_size: u64) -> Vec<MetadataCopy> {
    let mut copies: Vec<MetadataCopy> = found
        .iter()
        .map(|copy| MetadataCopy {
            offset: copy.offset,
            size: copy.size,
            checksum: copy.checksum,
            seqno: copy.seqno,
            volume_group: copy.metadata.name.clone(),
            vg_id: copy.metadata.id,
            names_this_pv: copy.metadata.pv_by_id(&pv.pv_uuid).is_some(),
            spans_other_pvs: copy
                .metadata
                .physical_volumes
                .iter()
                .any(|entry| entry.id != pv.pv_uuid),
            satellite_id: satellite_id::from_vg_tags(&copy.metadata.tags)
                .ok()
                .flatten(),
            seed_layout: copy.metadata.lv(SEED_ID_LV).is_some(),
            padded: copy.padded,
            next_offset: lvm::mda::next_text_offset(area_size, copy.offset, copy.size),
            system_id: copy.metadata.system_id.clone().filter(|s| !s.is_empty()),
            lock_type: copy.metadata.lock_type.clone().filter(|s| !s.is_empty()),
        })
        .collect();
    copies.sort_by_key(|c| std::cmp::Reverse(c.seqno));
    copies
}

/// What is left of a torn metadata area: its intact copies, newest first.
fn torn_metadata(pv: &PvOnDisk, torn: &lvm::TornArea, others: OtherDevices) -> TornMetadata {
    let copies = metadata_copies(pv, &torn.copies, torn.size);
    TornMetadata {
        area_start: torn.start,
        area_size: torn.size,
        slot_offset: torn.committed.offset,
        slot_size: torn.committed.size,
        recorded_checksum: torn.committed.checksum,
        computed_checksum: torn.computed_checksum,
        areas_in_use: pv
            .metadata_area_states
            .iter()
            .filter(|area| !area.ignored)
            .count(),
        metadata_areas: pv.metadata_area_states.len(),
        stray_sectors: torn.stray_sectors.clone(),
        first_text: torn.committed.offset == lvm::mda::MDA_HEADER_SIZE,
        copies,
        listed_by: others.listed_by,
        unreadable: others.unreadable,
    }
}

/// Devices other than `own` that hold a PV of a VG named `name`. Devices that can't
/// be read (empty drives, devices vanishing) are skipped; LVM's own LVs too.
fn vg_name_holders(devices: &[BlockDevice], own: &BlockDevice, name: &str) -> Vec<PathBuf> {
    devices
        .iter()
        .filter(|d| d.devnode != own.devnode && d.size_bytes > Bytes(0))
        .filter(|d| !is_lvm_lv(d))
        .filter(|d| match lvm::read_pv_on_disk(&d.devnode) {
            Ok(Some(pv)) => pv.vg_metadata.is_some_and(|vg| vg.name == name),
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
    devnode: &Path,
    pv: &PvOnDisk,
    vg: &VgMetadata,
    active_volumes: &Result<Vec<ActiveLv>, Arc<LiveError>>,
    pool_usage: Option<&ThinPoolUsage>,
) -> Result<VgFacts, ObserveError> {
    let impossible = |detail: String| ObserveError::ImpossibleNumber {
        device: devnode.to_owned(),
        detail,
    };
    // The extent size was checked when the metadata was read (non-zero, 32 bits).
    let extent = vg.extent_size;
    let own = vg.pv_by_id(&pv.pv_uuid);
    let own_key = own.map(|entry| entry.key.as_str());
    let pv_extent_count = own.map_or(Extents::ZERO, |entry| entry.pe_count);
    let pe_start_bytes = own
        .map_or(Some(Bytes(0)), |entry| {
            entry.pe_start.bytes().within_device_range()
        })
        .ok_or_else(|| {
            impossible(format!(
                "this PV's pe_start in volume group {} is past 2^64 bytes",
                vg.name
            ))
        })?;
    let allocated = vg
        .logical_volumes
        .iter()
        .flat_map(|lv| &lv.segments)
        .try_fold(Extents::ZERO, |sum, segment| match &segment.kind {
            SegmentKind::Striped { stripes, .. } => {
                // Stripes share the segment's extents evenly.
                let mine = stripes
                    .iter()
                    .filter(|(key, _)| Some(key.as_str()) == own_key)
                    .count() as u64;
                if mine == 0 {
                    return Some(sum);
                }
                let per_stripe = segment.extent_count.checked_share(stripes.len() as u64)?;
                sum.checked_add(per_stripe.checked_times(mine)?)
            }
            _ => Some(sum),
        })
        .ok_or_else(|| {
            impossible(format!(
                "the LVs of volume group {} use more than 2^64 extents",
                vg.name
            ))
        })?;
    let free_extents = pv_extent_count.checked_sub(allocated).ok_or_else(|| {
        impossible(format!(
            "volume group {} allocates {allocated} on this PV, which has {}",
            vg.name,
            pv_extent_count.count()
        ))
    })?;
    let bytes_of = |extents: Option<Extents>, lv: &str| {
        extents
            .and_then(|n| n.checked_mul(extent))
            .and_then(DeviceRange::within_device_range)
            .ok_or_else(|| {
                impossible(format!(
                    "LV {}/{lv} is larger than 2^64 bytes ({} extents of {})",
                    vg.name,
                    extents.map_or_else(|| "more than 2^64".to_owned(), |n| n.count().to_string()),
                    extent.bytes()
                ))
            })
    };
    // LVM keeps a chunk size as 32 bits of sectors, and a pool of zero-byte
    // chunks is no pool: neither can be planned with.
    let chunk_bytes = |chunk: Sectors, lv: &str| {
        (Sectors(1)..=Sectors(u32::MAX.into()))
            .contains(&chunk)
            .then(|| chunk.bytes())
            .ok_or_else(|| {
                impossible(format!(
                    "thin pool {}/{lv} has a chunk size of {chunk} (expected 1 to 2^32 - 1 sectors)",
                    vg.name
                ))
            })
    };
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
    // Each LV's devices by uuid, indexed once: a scan of every active device per
    // LV cost 1,000,000 comparisons at 1,000 active thin volumes.
    let mut devices_of: std::collections::HashMap<&LvmUuid, Vec<&ActiveLv>> =
        std::collections::HashMap::new();
    for device in active.into_iter().flatten() {
        if device.vg_uuid == vg.id {
            devices_of.entry(&device.lv_uuid).or_default().push(device);
        }
    }
    let logical_volumes = vg
        .logical_volumes
        .iter()
        .map(|lv| -> Result<LvFacts, ObserveError> {
            let devices: Vec<&ActiveLv> = devices_of.get(&lv.id).cloned().unwrap_or_default();
            let top = devices.iter().find(|a| a.layer.is_none());
            let tpool = |a: &&&ActiveLv| a.layer == Some(LvmLayer::Tpool);
            let kind = match lv.segments.first().map(|s| &s.kind) {
                Some(SegmentKind::ThinPool {
                    metadata_lv,
                    chunk_size_sectors,
                    zero_new_blocks,
                    transaction_id,
                    ..
                }) => LvKind::ThinPool {
                    metadata_size_bytes: match vg.lv(metadata_lv) {
                        None => Bytes(0),
                        Some(m) => bytes_of(m.checked_extent_count(), &m.name)?,
                    },
                    chunk_size_bytes: chunk_bytes(*chunk_size_sectors, &lv.name)?,
                    zero_new_blocks: *zero_new_blocks,
                    // Its `-tpool` device serves I/O (named `vg-pool` while no thin
                    // volume uses the pool, `vg-pool-tpool` after): LVM then reports
                    // data usage, which is what LINSTOR reads.
                    serving: devices.iter().filter(tpool).any(|a| a.serving),
                    pool_device_present: devices.iter().filter(tpool).any(|a| a.live_table),
                    unloaded_pool_device: devices
                        .iter()
                        .filter(tpool)
                        .find(|a| !a.live_table && a.open_count == 0)
                        .map(|a| a.dm_name.clone()),
                    // Only a used pool (transaction id > 0) is looked up by LVM
                    // without its layer; a new one's only device carries the
                    // `-tpool` uuid and LVM sees it.
                    unheld_pool_device: devices
                        .iter()
                        .filter(tpool)
                        .find(|a| {
                            *transaction_id > 0
                                && top.is_none()
                                && a.live_table
                                && a.open_count == 0
                        })
                        .map(|a| a.dm_name.clone()),
                    tpool_without_own_device: devices
                        .iter()
                        .filter(tpool)
                        .find(|a| {
                            a.live_table && !devices.iter().any(|d| d.layer == Some(LvmLayer::Pool))
                        })
                        .map(|a| a.dm_name.clone()),
                    transaction_mismatch: devices
                        .iter()
                        .filter(tpool)
                        .find(|a| a.serving)
                        .and_then(|a| {
                            kernel_transaction_mismatch(&a.dm_name, *transaction_id, pool_usage)
                        }),
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
            Ok(LvFacts {
                name: lv.name.clone(),
                kind,
                visible: lv.is_visible(),
                size_bytes: bytes_of(lv.checked_extent_count(), &lv.name)?,
                active: !devices.is_empty(),
                open_by: top
                    .filter(|a| a.open_count > 0)
                    .map(|a| describe_holders(a)),
                // Only when it is the LV's one device: an origin's `-real` below it
                // (an external origin, an old-style snapshot) is LVM's to take down.
                dm_name: top
                    .filter(|_| devices.len() == 1)
                    .map(|a| a.dm_name.clone()),
                plain_linear_at: plain_linear_at(lv, own_key),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(VgFacts {
        name: vg.name.clone(),
        uuid: vg.id,
        seqno: vg.seqno,
        extent_size: extent,
        pe_start_bytes,
        pv_extent_count,
        free_extents,
        other_pvs,
        satellite_id: read_satellite_id(vg, active.map(Vec::as_slice)),
        satellite_id_tag: satellite_id::recorded_tag(&vg.tags).map(str::to_owned),
        logical_volumes,
        free_areas: free_areas(vg, own_key, pv_extent_count),
        access_restrictions: access_restrictions(vg),
    })
}

/// The VG fields LVM checks before it lets this host change the VG at all.
fn access_restrictions(vg: &VgMetadata) -> Vec<String> {
    fn set(value: &Option<String>) -> Option<&str> {
        value.as_deref().filter(|v| !v.is_empty())
    }
    let mut found = Vec::new();
    if let Some(id) = set(&vg.system_id) {
        found.push(format!("system ID {id}"));
    }
    // "none" is what `vgchange --locktype none` writes: a local VG to LVM.
    if let Some(lock) = set(&vg.lock_type).filter(|lock| *lock != "none") {
        found.push(format!("lock type {lock}"));
    }
    for status in ["EXPORTED", "CLUSTERED"] {
        if vg.status.iter().any(|s| s == status) {
            found.push(format!("status {status}"));
        }
    }
    if !vg.status.iter().any(|s| s == "WRITE") {
        found.push("read-only (no WRITE status)".to_owned());
    }
    found
}

/// The serving pool device's transaction id, when it is not the one LVM records.
/// A status that cannot be read is logged and counts as no mismatch: LVM's own
/// commands then report the pool's trouble.
fn kernel_transaction_mismatch(
    dm_name: &str,
    recorded: u64,
    read_already: Option<&ThinPoolUsage>,
) -> Option<TransactionMismatch> {
    let usage = match read_already.filter(|u| u.dm_name == dm_name) {
        Some(usage) => Ok(usage.clone()),
        None => live::thin_pool_usage(dm_name),
    };
    match usage {
        Ok(usage) => (usage.transaction_id != recorded).then_some(TransactionMismatch {
            on_disk: usage.transaction_id,
            recorded,
        }),
        Err(e) => {
            tracing::warn!(device = %dm_name, "cannot read the thin pool's transaction id: {e}");
            None
        }
    }
}

/// The first PE of `lv` when its metadata is exactly what `lvcreate` writes for a
/// new linear LV on this PV (LVM2 2.03: status `READ, WRITE, VISIBLE`, nothing in
/// `flags` or `tags`, one `striped` segment of one stripe).
fn plain_linear_at(lv: &lvm::LvInMetadata, own_key: Option<&str>) -> Option<u64> {
    let mut status: Vec<&str> = lv.status.iter().map(String::as_str).collect();
    status.sort_unstable();
    if status != ["READ", "VISIBLE", "WRITE"] || !lv.flags.is_empty() || !lv.tags.is_empty() {
        return None;
    }
    match lv.segments.as_slice() {
        [segment] => match &segment.kind {
            SegmentKind::Striped {
                stripe_size: None,
                stripes,
            } => match stripes.as_slice() {
                [(key, first)] if Some(key.as_str()) == own_key && segment.start_extent == 0 => {
                    Some(*first)
                }
                _ => None,
            },
            _ => None,
        },
        _ => None,
    }
}

/// This PV's unallocated extent ranges, in PE order. Ranges past 2^64 (metadata
/// the reader let through but no PV holds) count as allocated to the end.
fn free_areas(vg: &VgMetadata, own_key: Option<&str>, pv_extents: Extents) -> Vec<PeRange> {
    let end = pv_extents.count();
    let mut used: Vec<(u64, u64)> = Vec::new();
    for segment in vg.logical_volumes.iter().flat_map(|lv| &lv.segments) {
        let SegmentKind::Striped { stripes, .. } = &segment.kind else {
            continue;
        };
        let Some(per_stripe) = segment.extent_count.checked_share(stripes.len() as u64) else {
            continue;
        };
        for (_, first) in stripes
            .iter()
            .filter(|(key, _)| Some(key.as_str()) == own_key)
        {
            let last = first.checked_add(per_stripe.count()).unwrap_or(end);
            used.push((*first, last));
        }
    }
    used.sort_unstable();
    let mut areas = Vec::new();
    let mut next = 0;
    for (first, last) in used {
        if first > next {
            areas.push(PeRange {
                start: next,
                count: first.min(end).saturating_sub(next),
            });
        }
        next = next.max(last);
    }
    if next < end {
        areas.push(PeRange {
            start: next,
            count: end - next,
        });
    }
    areas.retain(|a| a.count > 0);
    areas
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
fn read_satellite_id(vg: &VgMetadata, active: Option<&[ActiveLv]>) -> SatelliteIdReading {
    match satellite_id::from_vg_tags(&vg.tags) {
        Ok(Some(id)) => return SatelliteIdReading::Tag(id),
        Ok(None) => {}
        Err(e) => return SatelliteIdReading::Unreadable(e.to_string()),
    }
    let Some(seed_lv) = vg.lv(SEED_ID_LV) else {
        return SatelliteIdReading::Absent;
    };
    let Some(active) = active else {
        return SatelliteIdReading::Unreadable(
            "the seed tool's metadata LV exists but device-mapper could not be queried".to_owned(),
        );
    };
    // Reads from a thin volume wait while its pool's device is suspended (a command
    // killed between suspend and resume, e.g. while sending thin messages): resume
    // the pool first instead of hanging on the read.
    if let Some(pool) = seed_lv.segments.iter().find_map(|s| match &s.kind {
        SegmentKind::Thin { thin_pool, .. } => vg.lv(thin_pool),
        _ => None,
    }) {
        if active.iter().any(|a| {
            a.vg_uuid == vg.id
                && a.lv_uuid == pool.id
                && a.layer == Some(LvmLayer::Tpool)
                && a.live_table
                && !a.serving
        }) {
            return SatelliteIdReading::SeedPoolSuspended {
                pool: pool.name.clone(),
            };
        }
    }
    match active
        .iter()
        .find(|a| a.vg_uuid == vg.id && a.lv_uuid == seed_lv.id && a.layer.is_none())
    {
        None => SatelliteIdReading::SeedLvInactive,
        Some(device) if !device.live_table && device.open_count == 0 => {
            SatelliteIdReading::SeedLvUnloaded {
                dm_name: device.dm_name.clone(),
            }
        }
        Some(device) if !device.serving => SatelliteIdReading::Unreadable(format!(
            "its device {} is suspended; resume it (`lvchange --refresh {}/{}`) and rerun",
            device.dm_name, vg.name, SEED_ID_LV
        )),
        Some(device) => match read_seed_satellite_id(&device_node(device)) {
            Ok(id) => SatelliteIdReading::SeedFile(id),
            Err(e) => SatelliteIdReading::Unreadable(e.to_string()),
        },
    }
}

/// The VG's devices as they will be once the stale devices are gone (every plan
/// removes them first): openers that are stale devices no longer count. A pool
/// device whose only holder is a stale thin device is then unheld, and the plan
/// built from this view treats it so in the same run.
fn without_stale_openers(
    active: &[ActiveLv],
    stacked: &[live::StackedDevice],
    stale: &[StaleDevice],
) -> Vec<ActiveLv> {
    let stale_kernel_names: Vec<&str> = stacked
        .iter()
        .filter(|d| {
            d.dm_name
                .as_ref()
                .is_some_and(|name| stale.iter().any(|s| &s.dm_name == name))
        })
        .map(|d| d.kernel_name.as_str())
        .collect();
    active
        .iter()
        .map(|a| {
            let kernel_name = format!("dm-{}", a.minor);
            let stale_openers = stacked
                .iter()
                .find(|d| d.kernel_name == kernel_name)
                .map_or(0, |d| {
                    d.holders
                        .iter()
                        .filter(|h| stale_kernel_names.contains(&h.as_str()))
                        .count()
                });
            ActiveLv {
                open_count: a
                    .open_count
                    .saturating_sub(u32::try_from(stale_openers).unwrap_or(u32::MAX)),
                ..a.clone()
            }
        })
        .collect()
}

/// Whether [`stale_devices`] could find anything: device-mapper lists a device of a
/// VG that lived on this partition (the one there now, or one whose devices map the
/// partition directly) that the metadata does not list. Every stale device is such a
/// device, so `false` means none without walking the stack; an unreadable
/// device-mapper answers `true` (the walk then reports the error as before).
fn may_have_stale_devices(
    vg: Option<&VgMetadata>,
    direct: &[live::Holder],
    all_active: &Result<Vec<ActiveLv>, Arc<LiveError>>,
) -> bool {
    let Ok(active) = all_active else {
        return true;
    };
    let ours = vgs_on_partition(vg, direct);
    // The VG's LV ids in one set: a lookup per active device, not a scan of the VG.
    let listed: HashSet<LvmUuid> = vg
        .map(|vg| vg.logical_volumes.iter().map(|lv| lv.id).collect())
        .unwrap_or_default();
    active.iter().any(|a| {
        ours.contains(&a.vg_uuid)
            && !(vg.is_some_and(|vg| vg.id == a.vg_uuid) && listed.contains(&a.lv_uuid))
    })
}

/// LVM devices stacked on the partition that the VG there does not list: what a
/// command killed between activating and committing (or removing and committing)
/// leaves. Devices of other tools stacked on ours are never listed; they only make
/// the LVM device under them held.
fn stale_devices(
    stacked: &[live::StackedDevice],
    vg: Option<&VgMetadata>,
    all_active: &Result<Vec<ActiveLv>, Arc<LiveError>>,
) -> Result<Vec<StaleDevice>, LeftoversError> {
    let listed = |vg_uuid: &LvmUuid, lv_uuid: &LvmUuid| {
        vg.is_some_and(|vg| {
            vg.id == *vg_uuid && vg.logical_volumes.iter().any(|lv| lv.id == *lv_uuid)
        })
    };
    // Only VGs that lived on this partition: the one there now, and any whose
    // devices map the partition directly (a VG removed or replaced while its devices
    // stayed). Another VG stacked on one of our volumes (a guest's PV on a thin
    // volume) is someone else's, whatever its metadata says.
    let ours: Vec<LvmUuid> = vg
        .map(|vg| vg.id)
        .into_iter()
        .chain(
            stacked
                .iter()
                .filter(|d| d.on_partition)
                .filter_map(|d| d.lvm_ids().map(|(vg_uuid, _)| vg_uuid)),
        )
        .collect();
    let stale: Vec<&live::StackedDevice> = stacked
        .iter()
        .filter(|d| {
            d.lvm_ids().is_some_and(|(vg_uuid, lv_uuid)| {
                ours.contains(&vg_uuid) && !listed(&vg_uuid, &lv_uuid)
            })
        })
        .collect();
    if stale.is_empty() {
        return Ok(Vec::new());
    }
    let active = all_active
        .as_ref()
        .map_err(|e| LeftoversError::DeviceMapper(Arc::clone(e)))?;
    let is_stale = |kernel_name: &str| stale.iter().any(|d| d.kernel_name == kernel_name);
    Ok(stale
        .iter()
        .filter_map(|d| {
            let dm_name = d.dm_name.clone()?;
            let others: Vec<&String> = d.holders.iter().filter(|h| !is_stale(h)).collect();
            let open_count = active
                .iter()
                .find(|a| a.dm_name == dm_name)
                .map_or(0, |a| a.open_count);
            let stacked_openers = u32::try_from(d.holders.len()).unwrap_or(u32::MAX);
            let held_by = if !others.is_empty() {
                Some(format!(
                    "held by {}",
                    others
                        .iter()
                        .map(|h| h.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            } else if open_count > stacked_openers {
                Some(format!(
                    "open {open_count} time(s), e.g. mounted or used by a process"
                ))
            } else {
                None
            };
            Some(StaleDevice { dm_name, held_by })
        })
        .collect())
}

/// A node for an active LVM device: `/dev/mapper/<name>` when it is there and is
/// that device, else the kernel's own `/dev/dm-<minor>` (devtmpfs). An activation
/// killed before LVM created its nodes leaves the device without the former.
fn device_node(device: &ActiveLv) -> PathBuf {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mapper = Path::new("/dev/mapper").join(&device.dm_name);
    let wanted = nix::sys::stat::makedev(u64::from(device.major), u64::from(device.minor));
    match std::fs::metadata(&mapper) {
        Ok(meta) if meta.file_type().is_block_device() && meta.rdev() == wanted => mapper,
        _ => PathBuf::from(format!("/dev/dm-{}", device.minor)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The PV `PPPP…` on /dev/vda1, in a VG whose text says `pe_start` (sectors),
    /// `extent_size` (sectors) and a pool of `pool_extents` extents.
    fn facts_of(
        pe_start: u64,
        extent_size: u64,
        pool_extents: u64,
    ) -> Result<crate::observe::state::PvFacts, ObserveError> {
        let text = format!(
            "linstor-vg {{\nid = \"{VG}\"\nseqno = 1\nstatus = [\"READ\", \"WRITE\"]\n\
             extent_size = {extent_size}\nphysical_volumes {{\npv0 {{\n\
             id = \"PPPPPP-PPPP-PPPP-PPPP-PPPP-PPPP-PPPPPP\"\nstatus = [\"ALLOCATABLE\"]\n\
             pe_start = {pe_start}\npe_count = 100\n}}\n}}\nlogical_volumes {{\npool {{\n\
             id = \"LLLLLL-LLLL-LLLL-LLLL-LLLL-LLLL-LLLLLL\"\n\
             status = [\"READ\", \"WRITE\", \"VISIBLE\"]\nsegment_count = 1\nsegment1 {{\n\
             start_extent = 0\nextent_count = {pool_extents}\ntype = \"thin-pool\"\n\
             metadata = \"pool_tmeta\"\npool = \"pool_tdata\"\ntransaction_id = 0\n\
             chunk_size = 128\n}}\n}}\n}}\n}}\n\
             contents = \"Text Format Volume Group\"\nversion = 1\n"
        );
        let vg_metadata = match lvm::parse_metadata_text(text.as_bytes()) {
            Ok(metadata) => metadata,
            Err(e) => panic!("{e}"),
        };
        let pv = PvOnDisk {
            label_sector: 1,
            pv_uuid: id("PPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPP"),
            device_size: Bytes(1 << 30),
            data_areas: vec![lvm::Area {
                offset: 1 << 20,
                size: 0,
            }],
            metadata_areas: vec![lvm::Area {
                offset: 4096,
                size: 1 << 20,
            }],
            bootloader_areas: Vec::new(),
            extension_version: 2,
            extension_flags: lvm::PV_EXT_USED,
            metadata_area_states: Vec::new(),
            vg_metadata: Some(vg_metadata),
            mda_seqno: Some(1),
            torn_areas: Vec::new(),
            unwritten_areas: Vec::new(),
        };
        pv_facts(
            Path::new("/dev/vda1"),
            &pv,
            &Ok(Vec::new()),
            OtherDevices::default(),
            None,
        )
    }

    /// Sizes past what a block device can hold are refused even where 128-bit
    /// byte counts would not wrap.
    #[test]
    fn sizes_past_a_device_are_impossible_numbers() {
        assert!(facts_of(2048, 8192, 10).is_ok());
        let detail = |result: Result<crate::observe::state::PvFacts, ObserveError>| match result {
            Err(ObserveError::ImpossibleNumber { detail, .. }) => detail,
            other => panic!("expected an impossible number, got {other:?}"),
        };
        assert!(detail(facts_of(1 << 56, 8192, 10))
            .contains("pe_start in volume group linstor-vg is past 2^64 bytes"));
        let lv = detail(facts_of(2048, u64::from(u32::MAX), 1 << 24));
        assert!(
            lv.contains("LV linstor-vg/pool is larger than 2^64 bytes"),
            "{lv}"
        );
    }

    const VG: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    const OLD_VG: &str = "OOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOO";
    const GUEST_VG: &str = "GGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGG";

    fn id(text: &str) -> LvmUuid {
        match LvmUuid::parse(text) {
            Ok(id) => id,
            Err(e) => panic!("{e}"),
        }
    }

    fn device(
        name: &str,
        uuid: String,
        on_partition: bool,
        holders: &[&str],
    ) -> live::StackedDevice {
        live::StackedDevice {
            kernel_name: name.to_owned(),
            dm_name: Some(format!("dm-name-{name}")),
            dm_uuid: Some(uuid),
            holders: holders.iter().map(|h| (*h).to_owned()).collect(),
            on_partition,
        }
    }

    #[test]
    fn only_devices_of_vgs_that_lived_on_the_partition_are_leftovers() {
        let lv = |c: char| c.to_string().repeat(32);
        let stacked = vec![
            // A guest VG's LV on one of our thin volumes: not ours, never a leftover.
            device("dm-9", format!("LVM-{GUEST_VG}{}", lv('g')), false, &[]),
            // Our listed thin volume, holding the guest's PV.
            device("dm-3", format!("LVM-{VG}{}", lv('t')), false, &["dm-9"]),
            // A device of a VG that was on this partition before a reset.
            device("dm-5", format!("LVM-{OLD_VG}{}", lv('o')), true, &[]),
        ];
        let metadata = VgMetadata {
            name: "linstor-vg".to_owned(),
            id: id(VG),
            seqno: 1,
            status: Vec::new(),
            flags: Vec::new(),
            tags: Vec::new(),
            extent_size: crate::units::ExtentSize::from_sectors(Sectors(8192))
                .unwrap_or_else(|| panic!("8192 sectors is an extent size")),
            max_lv: 0,
            max_pv: 0,
            system_id: None,
            lock_type: None,
            physical_volumes: Vec::new(),
            logical_volumes: vec![crate::observe::lvm::LvInMetadata {
                name: "thin".to_owned(),
                id: id(&lv('t')),
                status: Vec::new(),
                flags: Vec::new(),
                tags: Vec::new(),
                creation_time: None,
                creation_host: None,
                segments: Vec::new(),
            }],
            creation_host: None,
            creation_time: None,
            description: None,
        };
        let stale = match stale_devices(&stacked, Some(&metadata), &Ok(Vec::new())) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        let names: Vec<&str> = stale.iter().map(|d| d.dm_name.as_str()).collect();
        assert_eq!(names, ["dm-name-dm-5"]);
        // Stale devices whose openers device-mapper cannot tell are not guessed at.
        let unavailable = Err(Arc::new(LiveError::DeviceMapperUnavailable {
            source: live::DmUnavailable::NoControlNode,
        }));
        assert!(matches!(
            stale_devices(&stacked, Some(&metadata), &unavailable),
            Err(LeftoversError::DeviceMapper(_))
        ));
    }
}
