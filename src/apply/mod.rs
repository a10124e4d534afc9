//! The imperative shell's write side: carries out planned actions one at a time
//! through LVM, in-process (liblvm2cmd), and logs each step.
pub mod command;
pub mod converge;
#[cfg(test)]
mod converge_tests;
pub mod deactivate;
mod executor;
pub mod fault_injection;
pub mod flush;
pub mod leftovers;
pub mod lock;
#[cfg(test)]
mod preflight_tests;
pub mod restore;
#[cfg(test)]
mod simulated_partition;
pub mod thin_check;
pub mod vg_lock;

pub use executor::{ApplyError, InProcessLvm, LvmExecutor};

use crate::plan::Action;
use std::path::Path;

/// Logs and runs one action. The removal steps log the seed tool's lines.
pub fn apply_action(
    executor: &mut dyn LvmExecutor,
    action: &Action,
    partition: &Path,
    removal: &leftovers::RemovalContext<'_>,
) -> Result<(), ApplyError> {
    match action {
        Action::RemoveLogicalVolumes {
            volume_group,
            names,
        } => tracing::info!(
            volume_group = %volume_group,
            logical_volumes = %names.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(","),
            action = %action,
            "removing logical volumes"
        ),
        Action::RemoveVolumeGroup { volume_group } => {
            tracing::info!(volume_group = %volume_group, action = %action, "removing volume group")
        }
        Action::RemoveStalePool {
            volume_group,
            pool,
            on_disk_transaction,
            recorded_transaction,
        } => tracing::warn!(
            volume_group = %volume_group,
            pool = %pool,
            "the pool's metadata on disk belongs to an earlier pool: transaction {on_disk_transaction} on disk, LVM expects {recorded_transaction} with no thin volumes; re-creating it"
        ),
        Action::RemovePhysicalVolume { device } => {
            tracing::info!(device = %device.display(), action = %action, "removing physical volume")
        }
        Action::RetagVolumeGroup {
            volume_group,
            old_tag,
            new_tag,
        } => tracing::info!(
            volume_group = %volume_group,
            old_tag = %old_tag,
            new_tag = %new_tag,
            action = %action,
            "re-tagging volume group: same satellite ID but for stray characters"
        ),
        other => tracing::info!("{other}"),
    }
    let result = run_step(executor, action, partition, removal);
    // Also after a step that failed: it may have written part of its work.
    let durable = match action {
        Action::AddToDevicesFile { devices_file, .. }
        | Action::RemoveFromDevicesFile { devices_file, .. } => {
            executor.sync_devices_file(devices_file, &action.to_string())
        }
        _ if needs_flush(action) => executor.flush_partition(partition, &action.to_string()),
        _ => return result,
    };
    match (result, durable) {
        (Err(step), Err(flush)) => {
            tracing::warn!("{flush}");
            Err(step)
        }
        (result, flushed) => result.and(flushed),
    }
}

/// Steps after which the partition's disk must flush its write cache: every step that
/// writes to the partition (LVM metadata, labels, LV space), and the native removal
/// of device-mapper devices (removing a live thin-pool device commits its metadata;
/// a reset's removal of thin volumes' devices may end with the pool's `-tpool`).
/// Activations, refreshes and deactivations write nothing there and send no flush.
fn needs_flush(action: &Action) -> bool {
    crate::plan::writes(action)
        || matches!(
            action,
            Action::RemoveStaleDevices { .. } | Action::RemoveThinVolumeDevices { .. }
        )
}

fn run_step(
    executor: &mut dyn LvmExecutor,
    action: &Action,
    partition: &Path,
    removal: &leftovers::RemovalContext<'_>,
) -> Result<(), ApplyError> {
    match action {
        Action::RemoveStaleDevices { dm_names } => {
            return executor.remove_stale_devices(dm_names, removal)
        }
        Action::RemoveStaleVolumeGroupPath { path } => {
            return executor.remove_stale_volume_group_path(path)
        }
        Action::RemoveThinVolumeDevices {
            volume_group,
            dm_names,
        } => return executor.deactivate_thin_volumes(volume_group, dm_names, removal),
        Action::EraseTornPhysicalVolume { .. } => return executor.erase_torn_label(partition),
        Action::RestoreTornMetadata {
            area_start,
            area_size,
            offset,
            size,
            checksum,
            ..
        } => {
            let copy = restore::CopyAt {
                area_start: *area_start,
                area_size: *area_size,
                offset: *offset,
                size: *size,
                checksum: *checksum,
            };
            let text = executor.read_metadata_copy(partition, &copy)?;
            let file = restore::TextFile::new(&text)?;
            let result = executor.run(&restore::command_line(partition, &file.path));
            file.close();
            return result;
        }
        _ => {}
    }
    let thin_check = thin_check::ThinCheck::detect();
    thin_check.warn_if_unchecked(action);
    match command::command_line(action, partition, &thin_check) {
        Some(line) => executor.run(&line),
        None => Ok(()),
    }
}
