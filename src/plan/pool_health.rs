//! When a start must not grow the thin pool, and what it says about a pool whose
//! metadata is filling up.
//!
//! The kernel grows a pool's metadata or data only on the pool's resume
//! (dm-thin's `maybe_resize_metadata_dev`/`maybe_resize_data_dev`), and refuses
//! both for a pool flagged `needs_check`; a read-only pool commits nothing. LVM
//! would still commit the larger `_tmeta` to the VG metadata, and the next start
//! would see 75% again and double once more on top of a size the kernel never
//! used. So those states, and a `_tmeta` whose size the kernel does not show,
//! are their own: logged, nothing written. Warn rather than refuse: the pool is
//! active and its volumes serve I/O; a refused start would only take the seed
//! steps after it (activation, tags) away from a node that is still useful, and
//! the repair needs the pool stopped, which is the operator's call.
use super::sizing;
use super::{Action, Plan};
use crate::config::ProvisionConfig;
use crate::observe::state::{LvKind, ObservedPartition, PoolMetadataUsage, ThinPoolMode};
use crate::units::Bytes;

/// The most metadata the kernel uses of a `_tmeta` device
/// (`THIN_METADATA_MAX_SECTORS`: 255 × 2^14 blocks of 4 KiB); a larger device's
/// rest is ignored.
const KERNEL_MAX_METADATA_BYTES: u128 = 255 * (1 << 14) * 4096;
/// dm-thin's metadata block.
const METADATA_BLOCK_BYTES: u128 = 4096;
/// Used share of the metadata at which a start doubles it.
pub const DOUBLE_AT_PERCENT: u64 = 75;

/// Why a start leaves the pool `vg`/`pool` as large as it is, if it must.
pub fn growth_blocked(
    vg: &str,
    pool: &str,
    usage: &PoolMetadataUsage,
    lvm_metadata: Bytes,
) -> Option<String> {
    let repair = format!(
        "stop the pool's volumes, deactivate the pool, run `lvconvert --repair {vg}/{pool}`, then start again"
    );
    if usage.needs_check {
        return Some(format!(
            "thin pool {vg}/{pool} is flagged needs_check by the kernel: it grows neither metadata nor data until repaired, so this start leaves the pool's size alone; {repair}"
        ));
    }
    if usage.mode == ThinPoolMode::ReadOnly {
        return Some(format!(
            "thin pool {vg}/{pool} is read-only (the kernel met a metadata error): this start leaves the pool's size alone; {repair}"
        ));
    }
    let kernel_should_see = Bytes(
        (lvm_metadata.0 / METADATA_BLOCK_BYTES * METADATA_BLOCK_BYTES)
            .min(KERNEL_MAX_METADATA_BYTES),
    );
    (usage.total_bytes != kernel_should_see).then(|| {
        format!(
            "thin pool {vg}/{pool}: LVM records {lvm_metadata} of metadata but the kernel uses {}: an earlier growth did not reach the kernel (a pool flagged needs_check refuses it); this start grows nothing on top. Deactivating and activating the pool makes the kernel take LVM's size; if it is flagged needs_check, {repair}",
            usage.total_bytes
        )
    })
}

/// What a start logs about the pool: why it is not grown, or metadata at least
/// 75% used that `plan` does not double (no room left in the VG).
pub fn pool_warnings(
    observed: &ObservedPartition,
    config: &ProvisionConfig,
    plan: &Plan,
) -> Vec<String> {
    let Some(usage) = &observed.pool_metadata_usage else {
        return Vec::new();
    };
    let Some(vg) = observed
        .physical_volume
        .as_ref()
        .and_then(|pv| pv.volume_group.as_ref())
        .filter(|vg| vg.name == config.volume_group.as_str())
    else {
        return Vec::new();
    };
    let Some(LvKind::ThinPool {
        metadata_size_bytes,
        ..
    }) = vg
        .logical_volumes
        .iter()
        .find(|lv| lv.name == config.pool.as_str())
        .map(|lv| &lv.kind)
    else {
        return Vec::new();
    };
    if let Some(why) = growth_blocked(&vg.name, config.pool.as_str(), usage, *metadata_size_bytes) {
        return vec![why];
    }
    let used = usage.used_percent();
    let doubles = plan
        .actions
        .iter()
        .any(|a| matches!(a, Action::GrowFullPoolMetadata { .. }));
    if used >= DOUBLE_AT_PERCENT && !doubles {
        let extent = vg.extent_size;
        let at_most = extent
            .extents_covering(*metadata_size_bytes)
            .and_then(|m| sizing::doubled(m, extent).map(|d| d <= m))
            .unwrap_or(false);
        let why = if at_most {
            "it is at LVM's maximum size".to_owned()
        } else {
            format!(
                "the VG has no room to double it ({} free extents)",
                vg.free_extents.count()
            )
        };
        return vec![format!(
            "thin pool {}/{} metadata is {used}% used ({} of {}) and {why}: when it is full every volume of the pool stops. Free space in the VG (remove volumes or snapshots, or grow the partition) or move volumes off this node",
            vg.name, config.pool, usage.used_bytes, usage.total_bytes
        )];
    }
    Vec::new()
}
