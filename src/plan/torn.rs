//! A torn metadata commit: the metadata-area header on the partition points at text
//! that never reached the disk (its checksum does not match). LVM then reads VG
//! `[unknown]` forever and `vgck --updatemetadata` cannot help with one metadata area.
//! What is left in the area's circular buffer decides:
//!
//! - the newest intact copy that lists this PV is this tool's VG (the configured
//!   name, a satellite-ID tag, no other PV): it is written back with LVM's own
//!   `pvck --repair`, and the next round plans from the restored VG as from any
//!   interrupted command (a same-ID node keeps everything; its LVs are in the copy);
//! - no intact copy lists this PV, the torn text is the first an area ever holds
//!   (`vgcreate`'s first commit) and no other device lists the PV: a VG that never
//!   had a second commit cannot have had LVs, so its label is erased and
//!   provisioning starts over on the blank partition (LVM's `pvcreate -ff` cannot:
//!   it rescans the device, fails on the torn text and stops);
//! - anything else is refused, naming what was found and LVM's repair commands.
//!
//! The PV's uuid is what ties a copy to this PV: `pvcreate` makes a new one each
//! time, so copies a reset left behind in the buffer (the old PV's) never match.
use super::{check_name_on_disk, Action, Plan, Refusal};
use crate::config::names::VgName;
use crate::config::ProvisionConfig;
use crate::observe::state::{MetadataCopy, ObservedPartition, TornMetadata};

/// The plan for a partition whose PV has a torn metadata area.
pub(super) fn plan(
    observed: &ObservedPartition,
    torn: &TornMetadata,
    config: &ProvisionConfig,
) -> Result<Plan, Refusal> {
    let device = observed.partition.devnode.clone();
    let refuse = |found: String| Refusal::TornMetadataNotOurs {
        device: device.clone(),
        area_start: torn.area_start,
        slot_size: torn.slot_size,
        text_at: torn.area_start.saturating_add(torn.slot_offset),
        recorded: torn.recorded_checksum,
        computed: torn.computed_checksum,
        found,
        volume_group: config.volume_group.to_string(),
    };
    let mine: Vec<&MetadataCopy> = torn.copies.iter().filter(|c| c.names_this_pv).collect();
    let Some(newest) = mine.first() else {
        return start_over(observed, torn).map_err(refuse);
    };
    if let Some(why) = not_restorable(torn, newest, &mine, config) {
        return Err(refuse(why));
    }
    let volume_group = check_name_on_disk(
        observed,
        "volume group",
        &newest.volume_group,
        VgName::on_disk,
    )?;
    Ok(Plan {
        reset: None,
        actions: vec![Action::RestoreTornMetadata {
            device,
            volume_group,
            seqno: newest.seqno,
            area_start: torn.area_start,
            area_size: torn.area_size,
            offset: newest.offset,
            size: newest.size,
            checksum: newest.checksum,
        }],
    })
}

/// Why the newest intact copy listing this PV may not be written back, if it may not.
fn not_restorable(
    torn: &TornMetadata,
    newest: &MetadataCopy,
    mine: &[&MetadataCopy],
    config: &ProvisionConfig,
) -> Option<String> {
    let what = format!(
        "the newest intact copy listing this PV is volume group {} at seqno {} (byte {})",
        newest.volume_group,
        newest.seqno,
        torn.area_start.saturating_add(newest.offset)
    );
    if newest.volume_group != config.volume_group.as_str() {
        return Some(format!(
            "{what}, not the configured VOLUME_GROUP {}",
            config.volume_group
        ));
    }
    if newest.satellite_id.is_none() {
        return Some(format!(
            "{what}, which records no satellite ID of this tool's"
        ));
    }
    if newest.spans_other_pvs {
        return Some(format!("{what}, which also uses other PVs"));
    }
    if torn.areas_in_use != 1 {
        return Some(format!(
            "{what}, but the PV has {} metadata areas in use (this tool repairs one)",
            torn.areas_in_use
        ));
    }
    if mine
        .iter()
        .any(|c| c.seqno == newest.seqno && c.checksum != newest.checksum)
    {
        return Some(format!(
            "{what}, and another intact copy with that seqno differs from it"
        ));
    }
    None
}

/// With no intact copy listing this PV: the PV made again, when the torn text can
/// only have been its VG's first commit; otherwise why not.
fn start_over(observed: &ObservedPartition, torn: &TornMetadata) -> Result<Plan, String> {
    let none = "no intact copy of metadata listing this PV is left in the buffer";
    if !torn.first_text {
        return Err(format!(
            "{none}, and the torn text is not the first the area held (its VG had earlier commits)"
        ));
    }
    if torn.areas_in_use != 1 {
        return Err(format!(
            "{none}, and the PV has {} metadata areas in use",
            torn.areas_in_use
        ));
    }
    if !torn.listed_by.is_empty() || !torn.unreadable.is_empty() {
        let mut others: Vec<String> = torn
            .listed_by
            .iter()
            .map(|l| format!("volume group {} lists this PV", l.volume_group))
            .collect();
        others.extend(
            torn.unreadable
                .iter()
                .map(|(d, why)| format!("{} cannot be read ({why})", d.display())),
        );
        return Err(format!("{none}, and {}", others.join("; ")));
    }
    Ok(Plan {
        reset: None,
        actions: vec![Action::EraseTornPhysicalVolume {
            device: observed.partition.devnode.clone(),
        }],
    })
}
