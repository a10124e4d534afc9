//! Preflight, then destroy: a plan that writes goes ahead only when every one of its
//! steps will be allowed. LVM checks some preconditions only inside `pvremove` and
//! `pvcreate` (an md superblock at the end of the device, an exclusive holder, a
//! read-only device), after `lvremove` and `vgremove` have already destroyed the
//! volume group; LVM must never be the one that stops a half-done reset. What is
//! read for this, and how it maps to LVM's own checks: [`crate::observe::preflight`].
use super::{Action, Plan, Refusal};
use crate::observe::state::{ObservedPartition, Preflight};

/// libblkid's TYPE for an md raid member (any metadata version).
const MD_MEMBER: &str = "linux_raid_member";

/// Whether `action` writes to the partition: LVM metadata, its label, or the space
/// LVs take. Activations, refreshes and deactivations write no metadata; removing
/// device-mapper devices, `/dev/<vg>` links and devices-file lines writes nothing
/// on the partition.
pub fn writes(action: &Action) -> bool {
    match action {
        Action::RemoveLogicalVolumes { .. }
        | Action::RemoveVolumeGroup { .. }
        | Action::RemovePhysicalVolume { .. }
        | Action::CreatePhysicalVolume { .. }
        | Action::ReinitializePhysicalVolume { .. }
        | Action::RemoveIncompletePool { .. }
        | Action::RemoveStalePool { .. }
        | Action::RemoveIncompleteSpare { .. }
        | Action::ResizePhysicalVolume { .. }
        | Action::CreateVolumeGroup { .. }
        | Action::TagVolumeGroup { .. }
        | Action::RetagVolumeGroup { .. }
        | Action::CreateThinPool { .. }
        | Action::ExtendPoolMetadata { .. }
        | Action::GrowFullPoolMetadata { .. }
        | Action::ExtendThinPool { .. }
        | Action::RestoreTornMetadata { .. }
        | Action::EraseTornPhysicalVolume { .. } => true,
        Action::ActivateSeedIdLv { .. }
        | Action::DeactivatePoolComponents { .. }
        | Action::RefreshThinPool { .. }
        | Action::ActivateThinPool { .. }
        | Action::RemoveStaleDevices { .. }
        | Action::RemoveThinVolumeDevices { .. }
        | Action::RemoveStaleVolumeGroupPath { .. }
        | Action::AddToDevicesFile { .. }
        | Action::RemoveFromDevicesFile { .. } => false,
    }
}

/// A plan that writes, decided without the preflight facts: the caller reads them
/// ([`crate::observe::snapshot::observe_preflight`]) and plans again. A steady start
/// (nothing planned, or only activations) never needs them.
pub fn needs_facts(observed: &ObservedPartition, plan: &Plan) -> bool {
    observed.preflight == Preflight::NotGathered && plan.actions.iter().any(writes)
}

/// Refuses a plan that writes when a later step would be refused: the partition has
/// a user LVM did not make, is read-only, or carries a foreign signature beside our
/// LVM label. None of these yields to `--force`: a held or read-only device fails
/// LVM's commands whatever they are told, LVM's `pvremove` refuses an md component
/// (its device filter, not a question `--yes` answers), and any other signature beside the label is one `wipefs --types`
/// away from gone — the operator decides which is stale, not a flag that also
/// means "wipe a blank-looking partition".
pub(super) fn check(observed: &ObservedPartition, plan: &Plan) -> Result<(), Refusal> {
    let Preflight::Gathered(facts) = &observed.preflight else {
        return Ok(());
    };
    if !plan.actions.iter().any(writes) {
        return Ok(());
    }
    let device = observed.partition.devnode.clone();
    if !facts.users.is_empty() {
        return Err(Refusal::PartitionInUse {
            device,
            users: facts.users.clone(),
        });
    }
    if !facts.read_only.is_empty() {
        return Err(Refusal::PartitionReadOnly {
            device,
            why: facts.read_only.clone(),
        });
    }
    // LVM's full md check runs in the commands that write a label, a new VG or a
    // new PV size. A
    // raid superblock libblkid reports is refused below, with its `wipefs` advice;
    // this catches what only LVM's magic-only check sees.
    let raid_reported = facts
        .foreign_signatures
        .iter()
        .any(|s| s.usage == crate::observe::signature::Usage::Raid);
    if let Some(md) = facts.lvm_md_component.filter(|_| !raid_reported) {
        if plan.actions.iter().any(|a| {
            matches!(
                a,
                Action::RemovePhysicalVolume { .. }
                    | Action::CreatePhysicalVolume { .. }
                    | Action::ReinitializePhysicalVolume { .. }
                    | Action::CreateVolumeGroup { .. }
                    // A grown PV's recorded size differs from the device's, which
                    // makes LVM run the full check there too (lvmcache.c).
                    | Action::ResizePhysicalVolume { .. }
                    // pvck --repair writes a label; an erased torn PV is made
                    // again by the next round's pvcreate.
                    | Action::RestoreTornMetadata { .. }
                    | Action::EraseTornPhysicalVolume { .. }
            )
        }) {
            return Err(Refusal::LvmSeesMdComponent {
                device,
                format: md.format,
                offset: md.offset,
            });
        }
    }
    // Without our label the planner's foreign-signature rule (and --force) decides.
    if observed.physical_volume.is_none() || facts.foreign_signatures.is_empty() {
        return Ok(());
    }
    let found = &facts.foreign_signatures;
    let md = found.iter().any(|s| s.type_name == MD_MEMBER);
    let mut consequence = if md {
        "an md raid superblock makes the partition an md component, which LVM refuses once it \
         checks the whole device (pvremove, pvcreate, and pvresize of a grown partition)"
            .to_owned()
    } else {
        "it claims the partition for something other than LVM, which the plan's writes would \
         overwrite (LVM's pvcreate also refuses swap and LUKS signatures)"
            .to_owned()
    };
    if plan.reset.is_some() {
        consequence.push_str(
            "; in this reset that refusal would come after lvremove and vgremove had removed the \
             volume group",
        );
    }
    let mut types: Vec<String> = found.iter().map(|s| s.type_name.clone()).collect();
    types.dedup();
    Err(Refusal::SignatureBesideLvmLabel {
        device,
        signatures: found
            .iter()
            .map(|s| s.described.as_str())
            .collect::<Vec<_>>()
            .join("; "),
        types,
        consequence,
    })
}
