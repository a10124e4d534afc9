//! Will LVM be able to build the thin pool? Asked before a plan that creates one
//! runs its first command: a reset's `lvremove`/`vgremove` succeed whatever the
//! host's lvm.conf says, and only the final `lvcreate --type thin-pool` (LVM2
//! 2.03.16: `_update_extents_params` in tools/lvcreate.c, `update_thin_pool_params`
//! in lib/metadata/thin_manip.c, `create_pool` in lib/metadata/pool_manip.c) finds
//! out that it cannot — by then the old volume group is gone.
//!
//! What `lvcreate --type thin-pool --extents 100%FREE --chunksize C` needs, for `F`
//! free extents of `E` bytes:
//! - `C ≤ F × E` ("data volume cannot be smaller than chunk size");
//! - `F > 2 × M`, where `M` is the metadata LV in extents — LVM's estimate of 64 B per
//!   chunk, at least 2 MiB, rounded up to extents — taken twice, for the metadata and
//!   its spare ("Not enough space for thin pool creation");
//! - `F × E` within what the largest pool metadata (15.81 GiB) can map at `C`
//!   ("cannot address more then … of thin pool data space");
//! - the new metadata LV can be activated read-write, to zero it: `volume_list` must
//!   admit the VG, `read_only_volume_list` must not name it;
//! - `thin_pool_metadata_require_separate_pvs` off (one PV).
//!
//! The capacity rules are checked where the plan also creates the VG (a fresh
//! partition or a reset), with the extent size the host's lvm.conf gives `vgcreate`
//! and the `pe_start` LVM gives the PV this tool creates (after the metadata area
//! `plan::sizing` chooses, at LVM's 1 MiB alignment). `M` is LVM's estimate: the
//! least `plan::sizing::pool_layout` falls back to on a small partition.
use super::spare::{pool_metadata_extents, CHUNKS_PER_METADATA_SECTOR, MAX_METADATA_SECTORS};
use super::{Action, Plan, Refusal};
use crate::config::ProvisionConfig;
use crate::observe::host_lvm::PoolCreationSettings;
use crate::observe::preflight::ThinPoolTarget;
use crate::observe::state::{ObservedPartition, Preflight};
use crate::units::{Bytes, ExtentSize, Extents, Sectors};
use thiserror::Error;

/// LVM's default extent size (`allocation/physical_extent_size`, 4 MiB).
const DEFAULT_EXTENT_BYTES: u128 = 4 << 20;
/// The most pool metadata LVM gives a pool with `thin_pool_crop_metadata` on: the
/// kernel's limit (DM_THIN_MAX_METADATA_SIZE, 33161216 sectors). Growth stops
/// here, or LVM would clamp every request and the planner ask again forever.
/// Refusals use LVM's default, slightly larger maximum
/// ([`super::spare::MAX_METADATA_SECTORS`]), so they never depend on the setting.
pub const MAX_POOL_METADATA_BYTES: Bytes = Bytes(33_161_216 * 512);

/// Why the thin pool could not be built, in the words of the fix.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PoolObstacle {
    #[error("the host's lvm.conf sets activation/volume_list = [{}], which does not admit volume group {volume_group}: LVM could not activate the new pool's metadata to zero it. Add \"{volume_group}\" or \"@{tag}\" to volume_list", listed.join(", "))]
    VolumeListExcludes {
        volume_group: String,
        tag: String,
        listed: Vec<String>,
    },
    #[error("the host's lvm.conf lists volume group {volume_group} in activation/read_only_volume_list (entry \"{entry}\"): the new pool's metadata would be activated read-only and could not be zeroed. Remove that entry")]
    ReadOnlyVolumeList { volume_group: String, entry: String },
    #[error("the host's lvm.conf sets allocation/thin_pool_metadata_require_separate_pvs = 1: LVM would place the pool's metadata on another PV, and this volume group has only the one partition. Set it to 0 (or override it for this VG with a profile)")]
    MetadataNeedsSeparatePv,
    #[error("a chunk size of {} is larger than the {} the partition leaves for pool data; choose a smaller CHUNK_SIZE", shown(*chunk), shown(*data))]
    ChunkLargerThanData { chunk: Bytes, data: Bytes },
    #[error("the partition has room for {free} extents of {}, and the pool's metadata, its spare and its data need at least {needed}: grow the partition or lower allocation/physical_extent_size in the host's lvm.conf", shown(*extent))]
    PartitionTooSmall {
        free: u128,
        extent: Bytes,
        needed: u128,
    },
    #[error("the kernel has no device-mapper thin-pool target loaded, and there is no modprobe where LVM runs it (/usr/sbin/modprobe): load it on the host (`modprobe dm_thin_pool`, and list it in /etc/modules-load.d/ so every boot does)")]
    ThinPoolTargetMissing,
    #[error("with chunks of {}, the largest pool metadata LVM makes maps at most {} of data, and the partition gives the pool {}; choose a larger CHUNK_SIZE", shown(*chunk), shown(*most), shown(*data))]
    ChunkTooSmallForPool {
        chunk: Bytes,
        data: Bytes,
        most: Bytes,
    },
}

/// `1 GiB`, `252 MiB`, `4 KiB`: the largest binary unit that divides the size.
fn shown(size: Bytes) -> String {
    let units = [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")];
    for (shift, unit) in units {
        if size.0 >= 1 << shift && size.0.is_multiple_of(1 << shift) {
            return format!("{} {unit}", size.0 >> shift);
        }
    }
    format!("{} bytes", size.0)
}

/// Refuses a plan that creates the thin pool when LVM could not create it.
pub(super) fn check(
    observed: &ObservedPartition,
    config: &ProvisionConfig,
    plan: &Plan,
) -> Result<(), Refusal> {
    if !plan
        .actions
        .iter()
        .any(|a| matches!(a, Action::CreateThinPool { .. }))
    {
        return Ok(());
    }
    let settings = &observed.host_lvm.pool_creation;
    let creates_vg = plan
        .actions
        .iter()
        .any(|a| matches!(a, Action::CreateVolumeGroup { .. }));
    let target_missing = matches!(
        &observed.preflight,
        Preflight::Gathered(facts) if facts.thin_pool_target == ThinPoolTarget::Unavailable
    );
    // The host's lists and the capacity are judged for a new VG only (fresh or
    // reset): an existing VG may carry tags of the operator's that volume_list
    // names, and where the VG stays, LVM's own refusal destroys nothing.
    let obstacle = target_missing
        .then_some(PoolObstacle::ThinPoolTargetMissing)
        .or_else(|| {
            creates_vg
                .then(|| {
                    host_settings_obstacle(settings, config).or_else(|| {
                        capacity_obstacle(observed.partition.size_bytes, settings, config)
                    })
                })
                .flatten()
        });
    match obstacle {
        None => Ok(()),
        Some(why) => Err(Refusal::PoolCannotBeCreated {
            device: observed.partition.devnode.clone(),
            volume_group: config.volume_group.to_string(),
            why: Box::new(why),
        }),
    }
}

fn host_settings_obstacle(
    settings: &PoolCreationSettings,
    config: &ProvisionConfig,
) -> Option<PoolObstacle> {
    let vg = config.volume_group.as_str();
    let tag = config.satellite_id_tag.as_str();
    if let Some(listed) = &settings.volume_list {
        if !listed.iter().any(|entry| names_whole_vg(entry, vg, tag)) {
            return Some(PoolObstacle::VolumeListExcludes {
                volume_group: vg.to_owned(),
                tag: tag.to_owned(),
                listed: listed.iter().map(|e| format!("\"{e}\"")).collect(),
            });
        }
    }
    if let Some(entry) = settings
        .read_only_volume_list
        .iter()
        .flatten()
        .find(|entry| names_whole_vg(entry, vg, tag))
    {
        return Some(PoolObstacle::ReadOnlyVolumeList {
            volume_group: vg.to_owned(),
            entry: entry.clone(),
        });
    }
    settings
        .metadata_requires_separate_pvs
        .then_some(PoolObstacle::MetadataNeedsSeparatePv)
}

/// A volume_list entry that admits every LV of the VG, as LVM matches it
/// (`_lv_passes_volumes_filter`): the VG's name, or one of its tags. A `vg/lv`
/// entry admits only that LV, not the metadata LV `lvcreate` activates; `@*` needs
/// host tags, which a VG made by this tool never carries.
fn names_whole_vg(entry: &str, vg: &str, tag: &str) -> bool {
    entry == vg || entry.strip_prefix('@') == Some(tag)
}

/// The extent size the host's lvm.conf gives `vgcreate` and the extents a new
/// VG on the whole partition has, with the PV this tool creates (its `pe_start`
/// after the sized metadata area). Saturates: the refusals below judge the rest.
pub(super) fn new_vg_extents(
    partition: Bytes,
    settings: &PoolCreationSettings,
) -> (ExtentSize, Extents) {
    let extent_bytes = settings
        .physical_extent_size_kib
        .map_or(DEFAULT_EXTENT_BYTES, |kib| u128::from(kib) * 1024);
    let pe_start = super::sizing::pe_start_for(super::sizing::metadata_area_request(partition));
    let free = partition.0.saturating_sub(pe_start.0) / extent_bytes;
    let extent = u64::try_from(extent_bytes / 512)
        .ok()
        .and_then(|sectors| ExtentSize::from_sectors(Sectors(sectors)))
        .unwrap_or(ExtentSize::DEFAULT);
    (
        extent,
        Extents::new(u64::try_from(free).unwrap_or(u64::MAX)),
    )
}

/// What the pool's `lvcreate` would refuse on a new VG of the whole partition.
fn capacity_obstacle(
    partition: Bytes,
    settings: &PoolCreationSettings,
    config: &ProvisionConfig,
) -> Option<PoolObstacle> {
    let (extent_size, free_extents) = new_vg_extents(partition, settings);
    let extent = extent_size.bytes().0;
    let free = u128::from(free_extents.count());
    let data = free * extent;
    let chunk = config
        .chunk_size_bytes
        .unwrap_or_else(|| super::sizing::policy_chunk_size(Bytes(data)))
        .0;
    // The least `plan::sizing::pool_layout` falls back to: LVM's own estimate.
    let metadata_extents = pool_metadata_extents(free_extents, extent_size, Bytes(chunk))
        .map_or(0, |extents| u128::from(extents.count()));
    if free <= 2 * metadata_extents {
        return Some(PoolObstacle::PartitionTooSmall {
            free,
            extent: Bytes(extent),
            needed: 2 * metadata_extents + 1,
        });
    }
    // LVM compares the chunk with the data LV, not with all free space: the
    // largest data LV is what that least layout leaves (metadata and spare off).
    let data_lv = (free - 2 * metadata_extents) * extent;
    if chunk > data_lv {
        return Some(PoolObstacle::ChunkLargerThanData {
            chunk: Bytes(chunk),
            data: Bytes(data_lv),
        });
    }
    // LVM compares in whole extents: max_data / extent < free extents.
    let most = MAX_METADATA_SECTORS * (chunk / 512) * CHUNKS_PER_METADATA_SECTOR * 512;
    if most / extent < free {
        return Some(PoolObstacle::ChunkTooSmallForPool {
            chunk: Bytes(chunk),
            data: Bytes(data),
            most: Bytes(most),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ProvisionInputs;

    fn config(chunk: &str) -> ProvisionConfig {
        let inputs = ProvisionInputs {
            chunk_size: Some(chunk.into()),
            ..ProvisionInputs::example()
        };
        match ProvisionConfig::from_inputs_with_dev(inputs, std::path::Path::new("/nonexistent")) {
            Ok(config) => config,
            Err(e) => panic!("{e}"),
        }
    }

    const MIB: u128 = 1 << 20;
    const GIB: u128 = 1 << 30;
    const TIB: u128 = 1 << 40;

    fn capacity(partition: u128, extent_kib: Option<u64>, chunk: &str) -> Option<PoolObstacle> {
        let settings = PoolCreationSettings {
            physical_extent_size_kib: extent_kib,
            ..PoolCreationSettings::default()
        };
        capacity_obstacle(Bytes(partition), &settings, &config(chunk))
    }

    #[test]
    fn sizes_read_as_an_operator_writes_them() {
        assert_eq!(shown(Bytes(GIB)), "1 GiB");
        assert_eq!(shown(Bytes(252 * MIB)), "252 MiB");
        assert_eq!(shown(Bytes(3 * TIB)), "3 TiB");
        assert_eq!(shown(Bytes(1536)), "1536 bytes");
        let message = PoolObstacle::ChunkLargerThanData {
            chunk: Bytes(GIB),
            data: Bytes(252 * MIB),
        }
        .to_string();
        assert!(
            message.starts_with("a chunk size of 1 GiB is larger than the 252 MiB"),
            "{message}"
        );
    }

    #[test]
    fn ordinary_partitions_can_hold_the_pool() {
        for size in [16 * MIB, 256 * MIB, 2 * GIB, TIB, 100 * TIB] {
            assert_eq!(capacity(size, None, "512K"), None, "{size}");
        }
        assert_eq!(capacity(2 * GIB, None, "64K"), None);
        assert_eq!(capacity(2 * GIB, None, "1G"), None);
    }

    #[test]
    fn a_chunk_larger_than_the_data_is_refused() {
        assert!(matches!(
            capacity(600 * MIB, None, "1G"),
            Some(PoolObstacle::ChunkLargerThanData { .. })
        ));
        // 1 GiB of free space, but the data LV is what metadata and spare leave:
        // 1 MiB pe_start + 257 extents, 2 of them metadata and spare.
        let free = MIB + 257 * 4 * MIB;
        assert_eq!(
            capacity(free, None, "1G"),
            Some(PoolObstacle::ChunkLargerThanData {
                chunk: Bytes(GIB),
                data: Bytes(255 * 4 * MIB),
            })
        );
        assert_eq!(capacity(free + 8 * MIB, None, "1G"), None);
    }

    #[test]
    fn too_few_extents_for_metadata_spare_and_data_are_refused() {
        // 1 MiB pe_start + 3 extents of 4 MiB: metadata, spare and one data extent.
        assert_eq!(capacity(13 * MIB, None, "512K"), None);
        assert!(matches!(
            capacity(12 * MIB, None, "512K"),
            Some(PoolObstacle::PartitionTooSmall {
                free: 2,
                needed: 3,
                ..
            })
        ));
        // 64 MiB extents on 128 MiB: one extent.
        assert!(matches!(
            capacity(128 * MIB, Some(65536), "512K"),
            Some(PoolObstacle::PartitionTooSmall { free: 1, .. })
        ));
    }

    #[test]
    fn small_chunks_cannot_map_huge_pools() {
        // 64 KiB chunks: 15.81 GiB of metadata maps ~15.8 TiB.
        assert!(matches!(
            capacity(20 * TIB, None, "64K"),
            Some(PoolObstacle::ChunkTooSmallForPool { .. })
        ));
        assert_eq!(capacity(20 * TIB, None, "512K"), None);
    }

    #[test]
    fn volume_lists_are_matched_as_lvm_matches_them() {
        let config = config("512K");
        let with = |volume_list: Option<Vec<&str>>, read_only: Option<Vec<&str>>| {
            host_settings_obstacle(
                &PoolCreationSettings {
                    volume_list: volume_list.map(|l| l.into_iter().map(String::from).collect()),
                    read_only_volume_list: read_only
                        .map(|l| l.into_iter().map(String::from).collect()),
                    ..PoolCreationSettings::default()
                },
                &config,
            )
        };
        assert_eq!(with(None, None), None);
        assert_eq!(with(Some(vec!["vg0", "linstor-vg"]), None), None);
        assert_eq!(
            with(Some(vec!["@linstor-satellite-id=node-01"]), None),
            None
        );
        for excluding in [
            vec![],
            vec!["nosuchvg"],
            vec!["linstor-vg/linstor-pool"],
            vec!["@*"],
            vec!["linstor-vgx"],
        ] {
            assert!(
                matches!(
                    with(Some(excluding.clone()), None),
                    Some(PoolObstacle::VolumeListExcludes { .. })
                ),
                "{excluding:?}"
            );
        }
        assert!(matches!(
            with(None, Some(vec!["linstor-vg"])),
            Some(PoolObstacle::ReadOnlyVolumeList { .. })
        ));
        assert_eq!(with(None, Some(vec!["linstor-vg/other-lv"])), None);
        assert_eq!(with(None, Some(vec!["linstor-vgx", "other/lv"])), None);
        assert_eq!(
            host_settings_obstacle(
                &PoolCreationSettings {
                    metadata_requires_separate_pvs: true,
                    ..PoolCreationSettings::default()
                },
                &config
            ),
            Some(PoolObstacle::MetadataNeedsSeparatePv)
        );
    }
}
