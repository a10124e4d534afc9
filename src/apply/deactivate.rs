//! A reset's native step: the active thin volumes of the VG about to be wiped lose
//! their device-mapper devices, one `DM_DEV_REMOVE` each. LVM's `lvremove` would
//! commit the VG's metadata and message the pool once per volume (a minute for
//! 1,000 volumes), and even `vgchange --activate n` runs its whole deactivation
//! path per volume; removing a thin device writes nothing to the pool's metadata.
//! `vgchange` then deactivates what is left and the PV's label is wiped.
//!
//! The same re-checks as every native removal (see [`super::leftovers`]): under
//! LVM's lock of the VG, each device must still be the one observed (uuid, name,
//! device number) and neither held nor open; anything else stops the step and the
//! partition is observed again, so a volume put to use since is never pulled away.
use std::collections::HashMap;
use std::time::Instant;

use super::leftovers::{
    current_device, not_observed, remove_with_node, why_not_remove, ExpectedDevice, LeftoverError,
    RemovalContext,
};
use super::vg_lock::VgLock;
use crate::config::names::VgName;
use crate::observe::live::{ActiveLv, LvmLayer};
use crate::observe::state::VgLocking;

/// Removes the devices named `dm_names` (the active thin volumes of `volume_group`
/// and, last, a `-tpool` only they held, as the plan's observation saw them), in
/// order.
pub fn deactivate_thin_volumes(
    volume_group: &VgName,
    dm_names: &[String],
    context: &RemovalContext<'_>,
) -> Result<(), LeftoverError> {
    let Some(first) = dm_names.first() else {
        return Ok(());
    };
    let lock_dir = match context.vg_locking {
        VgLocking::Files { dir } => dir,
        VgLocking::Lvmlockd => {
            return Err(LeftoverError::Lvmlockd {
                dm_name: first.clone(),
            })
        }
    };
    let started = Instant::now();
    let _lvm_lock = VgLock::acquire(lock_dir, volume_group.as_str())?;
    let observed: HashMap<&str, &ActiveLv> = context
        .observed
        .iter()
        .map(|device| (device.dm_name.as_str(), device))
        .collect();
    for name in dm_names {
        let device = observed
            .get(name.as_str())
            .ok_or_else(|| not_observed(name))?;
        // A thin volume's own device, or a pool's `-tpool` the planner listed
        // after them (held by nothing else once they are gone); never another
        // layer, which `vgchange` deactivates with its LV.
        if !matches!(device.layer, None | Some(LvmLayer::Tpool)) {
            return Err(LeftoverError::ChangedSinceObserved {
                dm_name: name.clone(),
                why: "it is a layer device, neither a thin volume's nor a pool's -tpool"
                    .to_owned(),
            });
        }
        let expected = ExpectedDevice::of(device, false);
        let current = current_device(&expected)?;
        if let Some(why) = why_not_remove(&expected, current.as_ref(), false) {
            return Err(LeftoverError::ChangedSinceObserved {
                dm_name: name.clone(),
                why,
            });
        }
        remove_with_node(&expected)?;
        tracing::debug!(dm_name = %name, dm_uuid = %expected.dm_uuid, "removed a thin volume's device-mapper device");
    }
    tracing::info!(
        volume_group = %volume_group,
        devices = dm_names.len(),
        duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "removed the thin volumes' device-mapper devices"
    );
    Ok(())
}
