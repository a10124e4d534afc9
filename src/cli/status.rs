//! `status`: what is on the labeled partition, read natively; writes nothing.
use super::args::{StatusArgs, StatusFormat};
use super::render::{human_size, percent};
use super::CliError;
use crate::observe::live::ThinPoolUsage;
use crate::observe::lvm::LvmUuid;
use crate::observe::partition::DiscoveryBackend;
use crate::observe::snapshot::{observe_partition, Expectations, Snapshot};
use crate::observe::state::{
    DevicesFileFacts, HostLvmFacts, InUseWithoutMetadata, LvKind, OwnMetadataAreas,
    SatelliteIdReading, TornMetadata, UnwrittenMetadataHeader, VgFacts,
};
use crate::plan::sizing::{self, metadata_area_use, MetadataAreaUse};
use crate::units::{Bytes, Extents};
use serde::Serialize;

#[derive(Debug, Serialize)]
struct StatusReport<'a> {
    partition: &'a crate::observe::partition::BlockDevice,
    size_bytes: Bytes,
    logical_sector_size: u32,
    signatures: Vec<String>,
    physical_volume: Option<PvReport<'a>>,
    /// Device-mapper could not be queried (activity and usage unknown).
    device_mapper_error: Option<String>,
    /// Whether the configured pool's device serves I/O (None: no such pool, or no
    /// POOL given).
    pool_active: Option<bool>,
    pool_usage: Option<&'a ThinPoolUsage>,
    pool_usage_error: Option<String>,
    /// `listed`, `not listed` or `not in use`; `unknown` when the host's LVM
    /// configuration could not be read.
    host_devices_file: &'static str,
    host_lvm: &'a HostLvmFacts,
    /// The PV's metadata area: its size, the largest VG text LVM writes into it
    /// (two copies must fit), how full it is, and a warning at 50% or for an area
    /// smaller than this tool makes (the fix is a reset).
    metadata_area: Option<MetadataAreaUse>,
    /// The configured pool's metadata against LVM's estimate and the VG's room
    /// to double it once.
    pool_metadata: Option<PoolMetadataReport>,
}

/// The pool's metadata: what it is, what LVM would have given it, and whether the
/// VG keeps room to double it (a pool made by an older version does not).
#[derive(Debug, Serialize)]
struct PoolMetadataReport {
    size_bytes: Bytes,
    lvm_estimate_bytes: Bytes,
    free_extents: u64,
    doubling_room_extents: u64,
    warning: Option<String>,
}

#[derive(Debug, Serialize)]
struct PvReport<'a> {
    uuid: &'a LvmUuid,
    recorded_device_size: Bytes,
    /// Marked in use, but no VG metadata on the partition (see the planner).
    in_use_without_metadata: Option<&'a InUseWithoutMetadata>,
    volume_group: Option<&'a VgFacts>,
    /// A torn metadata commit (absent from the JSON when there is none).
    #[serde(skip_serializing_if = "Option::is_none")]
    torn_metadata: Option<&'a TornMetadata>,
    /// A metadata area whose header was never written (absent when there is none).
    #[serde(skip_serializing_if = "Option::is_none")]
    unwritten_metadata_header: Option<&'a UnwrittenMetadataHeader>,
}

pub fn run(args: &StatusArgs, backend: DiscoveryBackend) -> Result<(), CliError> {
    let expect = Expectations {
        volume_group: args.volume_group.as_deref(),
        pool: args.pool.as_deref(),
        signatures_beside_lvm_label: true,
        every_lv_state: true,
        reuse_resolve_dm_list: false,
    };
    let snapshot =
        observe_partition(&args.partition_label, backend, &expect).map_err(CliError::failed)?;
    if args.output_format() == StatusFormat::Openmetrics {
        let mut samples = crate::metrics::Samples::default();
        crate::metrics::partition::add_partition_samples(
            &mut samples,
            &snapshot,
            &args.partition_label,
            args.pool.as_deref(),
        );
        print!("{}", samples.render());
        return Ok(());
    }
    let pv = snapshot.observed.physical_volume.as_ref();
    let report = StatusReport {
        partition: &snapshot.device,
        size_bytes: snapshot.observed.partition.size_bytes,
        logical_sector_size: snapshot.logical_sector_size,
        signatures: snapshot
            .signatures
            .iter()
            .map(|s| s.type_name.clone())
            .collect(),
        physical_volume: pv.map(|pv| PvReport {
            uuid: &pv.uuid,
            recorded_device_size: pv.recorded_device_size,
            in_use_without_metadata: pv.in_use_without_metadata.as_ref(),
            volume_group: pv.volume_group.as_ref(),
            torn_metadata: pv.torn_metadata.as_ref(),
            unwritten_metadata_header: pv.unwritten_metadata_header.as_ref(),
        }),
        device_mapper_error: snapshot
            .active_volumes
            .as_ref()
            .err()
            .map(ToString::to_string),
        pool_active: args.pool.as_deref().and_then(|pool| {
            pv.and_then(|pv| pv.volume_group.as_ref())
                .and_then(|vg| vg.logical_volumes.iter().find(|lv| lv.name == pool))
                .and_then(|lv| match lv.kind {
                    LvKind::ThinPool { serving, .. } => Some(serving),
                    _ => None,
                })
        }),
        pool_usage: snapshot.pool_usage.as_ref().and_then(|u| u.as_ref().ok()),
        pool_usage_error: snapshot
            .pool_usage
            .as_ref()
            .and_then(|u| u.as_ref().err())
            .map(ToString::to_string),
        host_devices_file: match &snapshot.observed.host_lvm.error {
            Some(_) => "unknown",
            None => snapshot.observed.host_lvm.devices_file.summary(),
        },
        host_lvm: &snapshot.observed.host_lvm,
        metadata_area: metadata_area(&snapshot),
        pool_metadata: args
            .pool
            .as_deref()
            .and_then(|pool| pool_metadata(&snapshot, pool)),
    };
    if args.output_format() == StatusFormat::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(CliError::failed)?
        );
    } else {
        print!("{}", text(&snapshot, &report, args));
    }
    Ok(())
}

fn text(snapshot: &Snapshot, report: &StatusReport<'_>, args: &StatusArgs) -> String {
    let mut out = String::new();
    let mut line = |key: &str, value: String| out.push_str(&format!("{key:<14}{value}\n"));
    let device = &snapshot.device;
    line(
        "partition",
        format!(
            "{} ({}:{}), label {:?}, {}, {} B sectors",
            device.devnode.display(),
            device.major,
            device.minor,
            args.partition_label,
            human_size(report.size_bytes),
            report.logical_sector_size
        ),
    );
    line(
        "signatures",
        if report.signatures.is_empty() {
            "none".to_owned()
        } else {
            report.signatures.join(", ")
        },
    );
    host_lvm_lines(report, &mut line);
    let Some(pv) = &report.physical_volume else {
        line("lvm", "no physical volume on the partition".to_owned());
        return out;
    };
    line(
        "pv",
        format!(
            "uuid {}, recorded size {}",
            pv.uuid,
            human_size(pv.recorded_device_size)
        ),
    );
    if let Some(area) = &report.metadata_area {
        line(
            "metadata area",
            format!(
                "{}, largest VG text {} (within the default io_memory_size), {} used ({}%)",
                human_size(Bytes::from(area.size_bytes)),
                human_size(Bytes::from(area.usable_text_bytes)),
                human_size(Bytes::from(area.text_bytes)),
                area.used_percent
            ),
        );
        if let Some(warning) = &area.warning {
            line("warning", warning.clone());
        }
    }

    if let Some(torn) = pv.torn_metadata {
        line(
            "vg",
            format!(
                "unreadable: torn metadata commit (the header at byte {} points at text that is not there); {} intact older copies{}",
                torn.area_start,
                torn.copies.len(),
                torn.copies.first().map_or(String::new(), |c| format!(
                    ", newest volume group {} seqno {}",
                    c.volume_group, c.seqno
                ))
            ),
        );
        return out;
    }
    if let Some(unwritten) = pv.unwritten_metadata_header {
        line(
            "vg",
            format!(
                "unreadable: the metadata area at byte {} has no header (never written); {} intact metadata copies in its buffer",
                unwritten.area_start,
                unwritten.copies.len()
            ),
        );
        return out;
    }
    if let Some(in_use) = pv.in_use_without_metadata {
        line("vg", in_use_text(in_use));
        return out;
    }
    let Some(vg) = pv.volume_group else {
        line("vg", "none (orphan PV)".to_owned());
        return out;
    };
    let expected = match &args.volume_group {
        Some(wanted) if wanted != &vg.name => format!(" — expected {wanted}"),
        _ => String::new(),
    };
    line(
        "vg",
        format!(
            "{}{expected} (uuid {}, seqno {}), extent {}, {} extents, {} free",
            vg.name,
            vg.uuid,
            vg.seqno,
            human_size(vg.extent_size.bytes()),
            vg.pv_extent_count.count(),
            vg.free_extents.count()
        ),
    );
    if !vg.other_pvs.is_empty() {
        line("other pvs", vg.other_pvs.join(", "));
    }
    line(
        "satellite id",
        match &vg.satellite_id {
            SatelliteIdReading::Tag(id) => format!("{id:?} (VG tag)"),
            SatelliteIdReading::SeedFile(id) => format!("{id:?} (seed tool's metadata LV)"),
            SatelliteIdReading::SeedLvInactive => {
                "recorded by the seed tool on the inactive metadata LV (provisioning activates and reads it)".to_owned()
            }
            SatelliteIdReading::SeedLvUnloaded { dm_name } => format!(
                "recorded by the seed tool on the metadata LV, whose device {dm_name} an interrupted activation left empty (provisioning activates and reads it)"
            ),
            SatelliteIdReading::SeedPoolSuspended { pool } => format!(
                "recorded by the seed tool on the metadata LV; its pool {pool} is suspended (provisioning refreshes it, then reads)"
            ),
            SatelliteIdReading::Absent => "none recorded".to_owned(),
            SatelliteIdReading::Unreadable(why) => format!("UNREADABLE: {why}"),
        },
    );
    for lv in vg.logical_volumes.iter().filter(|lv| lv.visible) {
        let state = match (&lv.open_by, lv.active) {
            (Some(holder), _) => format!("open: {holder}"),
            (None, true) => "active".to_owned(),
            (None, false) => "inactive".to_owned(),
        };
        let what = match &lv.kind {
            LvKind::ThinPool {
                metadata_size_bytes,
                chunk_size_bytes,
                zero_new_blocks,
                serving,
                transaction_mismatch,
                ..
            } => format!(
                "thin pool, {} data, {} metadata, chunk {}, zeroing {}, {}{}",
                human_size(lv.size_bytes),
                human_size(*metadata_size_bytes),
                human_size(*chunk_size_bytes),
                if *zero_new_blocks { "on" } else { "off" },
                if *serving {
                    "pool device active"
                } else {
                    "pool device NOT active (LINSTOR would see it as full; a start of this tool activates it)"
                },
                match transaction_mismatch {
                    Some(m) => format!(
                        "; its metadata on disk is another pool's: transaction {} on disk, LVM expects {} (LINSTOR cannot create volumes in it; see the plan)",
                        m.on_disk, m.recorded
                    ),
                    None => String::new(),
                }
            ),
            LvKind::Thin { pool } => format!(
                "thin volume in {pool}, {} virtual",
                human_size(lv.size_bytes)
            ),
            LvKind::Other { segment_type } => {
                format!("{segment_type}, {}", human_size(lv.size_bytes))
            }
        };
        line("lv", format!("{} — {what}, {state}", lv.name));
    }
    if let Some(error) = &report.device_mapper_error {
        line("activity", format!("unknown: {error}"));
    }
    if let Some(usage) = report.pool_usage {
        line(
            "pool usage",
            format!(
                "data {} of {}, metadata {} of {}",
                percent(usage.data_used_blocks, usage.data_total_blocks),
                human_size(usage.data_total_bytes),
                percent(usage.metadata_used_blocks, usage.metadata_total_blocks),
                human_size(usage.metadata_total_bytes)
            ),
        );
    } else if let Some(error) = &report.pool_usage_error {
        line("pool usage", format!("unknown: {error}"));
    }
    if let Some(meta) = &report.pool_metadata {
        line(
            "pool metadata",
            format!(
                "{} (LVM's estimate {}), {} free extents, doubling it takes {}",
                human_size(meta.size_bytes),
                human_size(meta.lvm_estimate_bytes),
                meta.free_extents,
                meta.doubling_room_extents
            ),
        );
        if let Some(warning) = &meta.warning {
            line("warning", warning.clone());
        }
    }
    out
}

/// The first metadata area that holds the VG's text (LVM writes the same text to
/// every area), judged by [`metadata_area_use`].
fn metadata_area(snapshot: &Snapshot) -> Option<MetadataAreaUse> {
    let pv = snapshot.physical_volume.as_ref()?;
    let area = pv
        .metadata_area_states
        .iter()
        .find(|a| !a.ignored && a.committed.is_some())
        .or_else(|| pv.metadata_area_states.iter().find(|a| !a.ignored))?;
    let text = area.committed.map_or(0, |locn| locn.size);
    let lvs = pv
        .vg_metadata
        .as_ref()
        .map_or(0, |vg| vg.logical_volumes.len());
    Some(metadata_area_use(
        area.size,
        text,
        lvs,
        snapshot.observed.partition.size_bytes,
    ))
}

/// The configured pool's metadata: size, LVM's estimate for its data, the VG's
/// free extents against the room to double it once, and what to watch.
fn pool_metadata(snapshot: &Snapshot, pool: &str) -> Option<PoolMetadataReport> {
    let vg = snapshot
        .observed
        .physical_volume
        .as_ref()?
        .volume_group
        .as_ref()?;
    let lv = vg.logical_volumes.iter().find(|lv| lv.name == pool)?;
    let LvKind::ThinPool {
        metadata_size_bytes,
        chunk_size_bytes,
        ..
    } = &lv.kind
    else {
        return None;
    };
    let extent = vg.extent_size;
    let extents_of = |suffix: &str| {
        vg.logical_volumes
            .iter()
            .find(|l| l.name.ends_with(suffix))
            .and_then(|l| extent.extents_covering(l.size_bytes))
            .unwrap_or(Extents::ZERO)
    };
    let metadata = extent.extents_covering(*metadata_size_bytes)?;
    let room = sizing::doubling_room(metadata, extents_of("_pmspare"), extent)?;
    let estimate = sizing::lvm_metadata_estimate(lv.size_bytes, *chunk_size_bytes)?;
    let used = snapshot
        .observed
        .pool_metadata_usage
        .map(|u| u.used_percent());
    let warning = match used {
        Some(p) if p >= 75 && vg.free_extents < room => Some(format!(
            "pool metadata is {p}% used and the volume group lacks the {} free extents to double it: when it is full the pool turns read-only. Grow the partition (the next start then doubles the metadata) or free volumes",
            room.count()
        )),
        Some(p) if p >= 75 => Some(format!(
            "pool metadata is {p}% used: the next start doubles it"
        )),
        _ if vg.free_extents < room => Some(format!(
            "the volume group keeps {} free extents, not the {} that doubling the pool metadata takes (a pool made by an older version); nothing is rewritten for it: the metadata is doubled when it is 75% used and the room exists, e.g. after the partition grows",
            vg.free_extents.count(),
            room.count()
        )),
        _ => None,
    };
    Some(PoolMetadataReport {
        size_bytes: *metadata_size_bytes,
        lvm_estimate_bytes: estimate,
        free_extents: vg.free_extents.count(),
        doubling_room_extents: room.count(),
        warning,
    })
}

/// The `vg` line of a PV marked in use whose VG metadata is not on the partition.
fn in_use_text(in_use: &InUseWithoutMetadata) -> String {
    let own = match in_use.own_areas {
        OwnMetadataAreas::None => "no metadata area",
        OwnMetadataAreas::Ignored => "its metadata areas ignored",
        OwnMetadataAreas::EmptyInUse => "its metadata area empty",
    };
    let listed: Vec<String> = in_use
        .listed_by
        .iter()
        .map(|l| {
            let devices: Vec<String> = l.devices.iter().map(|d| d.display().to_string()).collect();
            format!("{} (on {})", l.volume_group, devices.join(", "))
        })
        .collect();
    let found = if listed.is_empty() {
        "no VG listing it is readable on this machine".to_owned()
    } else {
        format!("listed by {}", listed.join(", "))
    };
    format!("member of a VG kept elsewhere: marked in use, {own}; {found}")
}

/// What the host's LVM configuration means for the partition: the devices file
/// state, and why the host would not see the VG.
fn host_lvm_lines(report: &StatusReport<'_>, line: &mut impl FnMut(&str, String)) {
    let host = report.host_lvm;
    if let Some(error) = &host.error {
        line("host lvm", format!("configuration unreadable: {error}"));
        return;
    }
    let state = match &host.devices_file {
        DevicesFileFacts::NotInUse => report.host_devices_file.to_owned(),
        DevicesFileFacts::InUse { path, .. } => {
            format!("{} ({})", report.host_devices_file, path.display())
        }
    };
    line("host lvm", format!("devices file {state}"));
    if let DevicesFileFacts::InUse { dead_pvids, .. } = &host.devices_file {
        for pvid in dead_pvids {
            line(
                "host warning",
                format!("dead entry for this partition with PVID {pvid}; remove it with `lvmdevices --delpvid {pvid}` if that PV is gone"),
            );
        }
    }
    for (setting, rejection) in [
        ("global_filter", &host.global_filter_rejects),
        ("filter", &host.filter_rejects),
    ] {
        if let Some(rejection) = rejection {
            let file = rejection
                .file
                .as_ref()
                .map_or_else(String::new, |f| format!(" in {}", f.display()));
            line(
                "host filter",
                format!(
                    "{setting} rule `{}`{file} rejects this partition: the host's LVM does not see its VG",
                    rejection.rule
                ),
            );
        }
    }
}
