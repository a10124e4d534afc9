//! Host LVM integration: every LVM command this tool runs is scoped with
//! `--devices`, which bypasses the host's devices file and filters. This part of
//! the planner makes sure the host will see the VG anyway: the PV is entered in the
//! host's devices file when one is in use (and a PV about to be destroyed is taken
//! out first), and a host `global_filter` that hides the partition is refused.
use super::{Action, Plan, Refusal};
use crate::config::ProvisionConfig;
use crate::observe::state::{DevicesFileFacts, FilterRejection, ObservedPartition};

/// Adds the devices file steps to `plan`, or refuses when the host would not see
/// the VG. `--force` skips the integration where it cannot be done (see
/// [`host_lvm_warnings`]).
pub(super) fn integrate(
    observed: &ObservedPartition,
    config: &ProvisionConfig,
    plan: &mut Plan,
) -> Result<(), Refusal> {
    let host = &observed.host_lvm;
    let device = &observed.partition.devnode;
    if let Some(error) = &host.error {
        if config.force {
            return Ok(());
        }
        return Err(Refusal::HostLvmConfigUnreadable {
            volume_group: config.volume_group.to_string(),
            error: error.clone(),
        });
    }
    let DevicesFileFacts::InUse {
        path,
        listed,
        listed_pvid,
        version,
        version_too_new,
        folder_read_only,
        ..
    } = &host.devices_file
    else {
        return match &host.global_filter_rejects {
            Some(rejection) if !config.force => Err(Refusal::HostGlobalFilterRejects {
                device: device.clone(),
                volume_group: config.volume_group.to_string(),
                rule: rejection.rule.clone(),
                file: where_set(rejection),
            }),
            _ => Ok(()),
        };
    };
    let mut edits = Vec::new();
    // The PV on the partition now is destroyed by these steps.
    let destroys_pv = plan.actions.iter().position(|a| {
        matches!(
            a,
            Action::RemovePhysicalVolume { .. } | Action::ReinitializePhysicalVolume { .. }
        )
    });
    if let (Some(at), Some(pvid)) = (destroys_pv, listed_pvid) {
        edits.push((
            at,
            Action::RemoveFromDevicesFile {
                pvid: *pvid,
                devices_file: path.clone(),
            },
        ));
    }
    let creates_pv = plan.actions.iter().any(|a| {
        matches!(
            a,
            Action::CreatePhysicalVolume { .. } | Action::ReinitializePhysicalVolume { .. }
        )
    });
    let pv_after_plan = creates_pv || observed.physical_volume.is_some();
    if pv_after_plan && (creates_pv || !listed) {
        edits.push((
            plan.actions.len(),
            Action::AddToDevicesFile {
                device: device.clone(),
                devices_file: path.clone(),
            },
        ));
    }
    if edits.is_empty() {
        return Ok(());
    }
    if *folder_read_only {
        if config.force {
            return Ok(());
        }
        return Err(Refusal::DevicesFileReadOnly {
            path: path.clone(),
            device: device.clone(),
        });
    }
    if *version_too_new {
        if config.force {
            return Ok(());
        }
        return Err(Refusal::DevicesFileTooNew {
            path: path.clone(),
            version: version.clone().unwrap_or_default(),
            device: device.clone(),
        });
    }
    // Later positions first, so earlier ones stay valid.
    for (at, action) in edits.into_iter().rev() {
        plan.actions.insert(at, action);
    }
    Ok(())
}

fn where_set(rejection: &FilterRejection) -> String {
    rejection.file.as_ref().map_or_else(
        || "the host's LVM configuration".to_owned(),
        |file| file.display().to_string(),
    )
}

/// What the operator should know about the host's LVM configuration although
/// nothing is refused: what `--force` skipped, filters that hide the VG from the
/// host's own commands, dead devices file lines naming the partition.
pub fn host_lvm_warnings(observed: &ObservedPartition, config: &ProvisionConfig) -> Vec<String> {
    let host = &observed.host_lvm;
    let device = observed.partition.devnode.display();
    let vg = &config.volume_group;
    let mut warnings = Vec::new();
    if let Some(error) = &host.error {
        if config.force {
            warnings.push(format!(
                "--force: {error}; provisioning without entering the PV in the host's devices file, so the host may not see volume group {vg}"
            ));
        }
        return warnings;
    }
    if let Some(rejection) = &host.global_filter_rejects {
        if config.force {
            warnings.push(format!(
                "--force: the host's global_filter rule `{}` in {} rejects {device}: the host's LVM and a satellite using the host's LVM configuration will not see volume group {vg}",
                rejection.rule,
                where_set(rejection)
            ));
        }
    }
    if let Some(rejection) = &host.filter_rejects {
        warnings.push(format!(
            "the host's filter rule `{}` in {} rejects {device}: the host's own LVM commands will not see volume group {vg} (a satellite passing its own filter still does)",
            rejection.rule,
            where_set(rejection)
        ));
    }
    if let DevicesFileFacts::InUse {
        path,
        listed,
        version,
        version_too_new,
        folder_read_only,
        dead_pvids,
        ..
    } = &host.devices_file
    {
        if (*version_too_new || *folder_read_only) && !*listed && config.force {
            warnings.push(format!(
                "--force: the host's devices file {} {}; the PV is not entered in it — run the host's `lvmdevices --adddev {device}`",
                path.display(),
                if *folder_read_only {
                    "is in a read-only folder".to_owned()
                } else {
                    format!(
                        "has VERSION={}, newer than this tool's LVM writes",
                        version.as_deref().unwrap_or_default()
                    )
                }
            ));
        }
        for pvid in dead_pvids {
            warnings.push(format!(
                "the host's devices file {} has an entry for {device} with PVID {pvid}, which is not the PV there (left by a reset made without this tool's devices file support); the host warns about it on every command. If that PV is gone for good, remove the entry with `lvmdevices --delpvid {pvid}`",
                path.display()
            ));
        }
    }
    warnings
}
