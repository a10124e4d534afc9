//! The imperative shell's write side: carries out planned actions one at a time
//! through LVM, in-process (liblvm2cmd), and logs each step.
pub mod command;
pub mod converge;
#[cfg(test)]
mod converge_tests;
mod executor;
pub mod fault_injection;
pub mod leftovers;
pub mod lock;
#[cfg(test)]
mod preflight_tests;
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
    match action {
        Action::RemoveStaleDevices { dm_names } => {
            return executor.remove_stale_devices(dm_names, removal)
        }
        Action::RemoveStaleVolumeGroupPath { path } => {
            return executor.remove_stale_volume_group_path(path)
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
