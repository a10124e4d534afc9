//! A torn metadata commit: the metadata-area header on the partition points at text
//! that never reached the disk (its checksum does not match). LVM then reads VG
//! `[unknown]` forever and `vgck --updatemetadata` cannot help with one metadata area.
//! What is left in the area's circular buffer decides:
//!
//! - the commit's predecessor is still intact: LVM writes each commit right after
//!   the previous one, rounded up to a sector, or back at the buffer's start when
//!   less than a sector is left (`_next_rlocn_offset`), so the copy whose next
//!   offset is the torn slot's is the one committed just before. When it is this
//!   tool's VG (the configured name, a satellite-ID tag or the seed tool's `metadata`
//!   volume, this PV alone, no system ID
//!   or lock type) on a PV with one metadata area, it is written back with LVM's own
//!   `pvck --repair`, and the next round plans from the restored VG as from any
//!   interrupted command;
//! - the predecessor is gone too (several commits in one flush epoch lost, as the
//!   pool's `lvcreate` makes): the newest intact copy listing this PV is the state
//!   just before the lost commits, when they, laid out from its end to the torn
//!   text, cannot have wrapped over it. Every lost commit was written after the
//!   disk's last cache flush, so nothing that followed them was durable either: a
//!   thin device dm-thin created for one of them is committed with a flush (a
//!   `create_thin` message commits the pool), which would have kept the commit. That
//!   copy is restored under the same conditions; a pool whose transaction the
//!   restored copy does not match is then refused by the next round, never removed;
//! - no copy precedes the torn text, the slot is the buffer's start and the rest of
//!   the buffer holds no text of this PV (only zeros and copies naming other PVs, a
//!   reset's leftovers): the torn text was `vgcreate`'s first commit; a VG that never
//!   had a second commit cannot have had LVs, so its label is erased and
//!   provisioning starts over on the blank partition (LVM's `pvcreate -ff` cannot:
//!   it rescans the device, fails on the torn text and stops);
//! - anything else is refused, naming what was found and LVM's repair commands.
//!
//! A label whose one metadata area has no header at all (its sector all zeros:
//! `pvcreate`'s label write reached the disk, its header write did not) can hold no
//! commit, since every commit rewrites the header. When the buffer holds nothing of
//! this PV (no copy, no sector naming its uuid, nothing but zeros in the 4 KiB
//! `pvcreate` zeroes, where its VG's first commit would start) and no other device
//! lists it, its label is erased and provisioning starts over; otherwise it is
//! refused. Sectors beyond that span, such as the tail of a removed PV's copy whose
//! start `pvcreate` zeroed, are older than the label. What this leaves out: a VG
//! whose commits all followed this `pvcreate` with no flush, whose header writes
//! were all lost and whose texts were kept only past the first 4 KiB, each without
//! the part naming this PV; LVM writes each text in one request.
//!
//! The PV's uuid is what ties a copy to this PV: `pvcreate` makes a new one each
//! time, so copies a reset left behind in the buffer (the old PV's) never match.
use super::action::UnreadablePv;
use super::{check_name_on_disk, Action, Plan, Refusal};
use crate::config::names::VgName;
use crate::config::ProvisionConfig;
use crate::observe::state::{
    MetadataCopy, ObservedPartition, TornMetadata, UnwrittenMetadataHeader, VgListingPv,
};

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
    let predecessors: Vec<&MetadataCopy> = torn
        .copies
        .iter()
        .filter(|c| c.next_offset == Some(torn.slot_offset))
        .collect();
    let newest_of_this_pv = newest_of_this_pv(torn).map_err(|why| {
        refuse(format!(
            "no intact copy ends where the torn text begins (the commit before it is gone too), and {why}"
        ))
    });
    let (newest, predecessor) = match predecessors.as_slice() {
        [] => match newest_of_this_pv? {
            None if torn.first_text => return start_over(observed, torn).map_err(refuse),
            None => {
                return Err(refuse(format!(
                    "no intact copy ends where the torn text begins (the commit before it is gone too), and none lists this PV{}",
                    remaining_of_this_pv(torn)
                )))
            }
            Some(copy) => match lost_commits_overwrite(torn, &copy) {
                None => (copy, false),
                Some(why) => {
                    return Err(refuse(format!(
                        "no intact copy ends where the torn text begins (the commit before it is gone too), and the newest copy listing this PV (seqno {}, byte {}) cannot be shown to precede the lost commits: {why}",
                        copy.seqno,
                        torn.area_start.saturating_add(copy.offset)
                    )))
                }
            },
        },
        [one] => ((*one).clone(), true),
        _ => {
            return Err(refuse(format!(
                "{} intact copies end where the torn text begins, so which came just before it is unknown",
                predecessors.len()
            )))
        }
    };
    if let Some(why) = not_restorable(torn, &newest, predecessor, config) {
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
            predecessor,
            area_start: torn.area_start,
            area_size: torn.area_size,
            offset: newest.offset,
            size: newest.size,
            checksum: newest.checksum,
        }],
    })
}

/// The newest intact copy listing this PV, when it can stand for the state before
/// lost commits: `Ok(None)` when none lists this PV; `Err` (why not) when copies of
/// two VGs list it (a VG made again on this PV: `vgremove` leaves its texts in the
/// buffer and the new VG counts its seqnos from 1 again, so seqnos do not order
/// them) or when two different texts carry the newest seqno. The same text twice
/// (the restore of an earlier recovery writes it back at the buffer's start,
/// without LVM's padding) is one copy, padded when either is; the lost commits
/// must fit behind each place it is at.
fn newest_of_this_pv(torn: &TornMetadata) -> Result<Option<MetadataCopy>, String> {
    let mine: Vec<&MetadataCopy> = torn.copies.iter().filter(|c| c.names_this_pv).collect();
    let Some(first) = mine.first() else {
        return Ok(None);
    };
    if let Some(other) = mine.iter().find(|c| c.vg_id != first.vg_id) {
        return Err(format!(
            "copies of two volume groups list this PV ({} at seqno {} and {} at seqno {}, different ids): a volume group was made again on it, so their seqnos do not say which came last",
            first.volume_group, first.seqno, other.volume_group, other.seqno
        ));
    }
    let newest: Vec<&MetadataCopy> = mine
        .iter()
        .copied()
        .filter(|c| c.seqno == first.seqno)
        .collect();
    if newest
        .iter()
        .any(|c| c.checksum != first.checksum || c.size != first.size)
    {
        return Err(format!(
            "two different intact texts carry seqno {}",
            first.seqno
        ));
    }
    // Which of them LVM went on from is not known: the lost span must fit
    // behind each.
    if let Some(why) = newest.iter().find_map(|c| lost_commits_overwrite(torn, c)) {
        return Err(format!(
            "the newest copy listing this PV (seqno {}) cannot be shown to precede the lost commits: {why}",
            first.seqno
        ));
    }
    let mut chosen = (*first).clone();
    chosen.padded = newest.iter().any(|c| c.padded);
    Ok(Some(chosen))
}

/// Bytes from area offset `from` forward to `to` in the circular buffer of an area
/// of `area_size` bytes (the buffer runs from the end of the header to the end of
/// the area); `None` for offsets outside it.
fn ring_forward(area_size: u64, from: u64, to: u64) -> Option<u64> {
    let ring_start = crate::observe::lvm::mda::MDA_HEADER_SIZE;
    let ring = area_size.checked_sub(ring_start).filter(|r| *r > 0)?;
    let from = from.checked_sub(ring_start).filter(|f| *f < ring)?;
    let to = to.checked_sub(ring_start).filter(|t| *t < ring)?;
    Some(if to >= from {
        to - from
    } else {
        ring - from + to
    })
}

/// Why the commits lost after `copy` (its successors up to the torn text, which LVM
/// lays out one after another from where `copy` ends) may have overwritten `copy`
/// itself, if they may: then `copy` is not the state just before them.
fn lost_commits_overwrite(torn: &TornMetadata, copy: &MetadataCopy) -> Option<String> {
    let forward = |from: u64, to: u64| ring_forward(torn.area_size, from, to);
    let Some(first_lost) = copy.next_offset else {
        return Some("its length does not fit the area".to_owned());
    };
    let (Some(to_torn), Some(room)) = (
        forward(first_lost, torn.slot_offset),
        forward(first_lost, copy.offset),
    ) else {
        return Some("its offsets lie outside the area's buffer".to_owned());
    };
    match to_torn.checked_add(torn.slot_size) {
        Some(lost) if lost <= room => None,
        _ => Some(format!(
            "the {} bytes from its end through the torn text wrap over it",
            to_torn.saturating_add(torn.slot_size)
        )),
    }
}

/// Why the newest intact copy listing this PV may not be written back, if it may not.
fn not_restorable(
    torn: &TornMetadata,
    newest: &MetadataCopy,
    predecessor: bool,
    config: &ProvisionConfig,
) -> Option<String> {
    let what = format!(
        "{} is volume group {} at seqno {} (byte {})",
        if predecessor {
            "the copy committed just before the torn text"
        } else {
            "no intact copy ends where the torn text begins, and the newest intact copy listing this PV"
        },
        newest.volume_group,
        newest.seqno,
        torn.area_start.saturating_add(newest.offset)
    );
    if !newest.names_this_pv {
        return Some(format!("{what}, which does not list this PV (its uuid)"));
    }
    if !newest.padded {
        return Some(format!(
            "{what}, whose text is not zero-padded as LVM's commits are (written by pvck --repair?)"
        ));
    }
    if newest.volume_group != config.volume_group.as_str() {
        return Some(format!(
            "{what}, not the configured VOLUME_GROUP {}",
            config.volume_group
        ));
    }
    // A seed-tool layout records its ID in its `metadata` volume, not in a tag: a
    // tear of the adoption's tagging commit leaves that copy as the predecessor, and
    // the next round adopts (or refuses) it as it would have before the power loss.
    if newest.satellite_id.is_none() && !newest.seed_layout {
        return Some(format!(
            "{what}, which records no satellite ID of this tool's and is no seed-tool layout"
        ));
    }
    if newest.spans_other_pvs {
        return Some(format!("{what}, which also uses other PVs"));
    }
    if let Some(system_id) = &newest.system_id {
        return Some(format!(
            "{what}, which records system ID {system_id} (this tool restores a VG without one)"
        ));
    }
    if let Some(lock_type) = &newest.lock_type {
        return Some(format!(
            "{what}, which records lock type {lock_type} (a shared VG)"
        ));
    }
    if torn.areas_in_use != 1 || torn.metadata_areas != 1 {
        return Some(format!(
            "{what}, but the PV has {} metadata areas ({} in use; pvck --repair rewrites an ignored one too, this tool repairs a PV with one)",
            torn.metadata_areas, torn.areas_in_use
        ));
    }
    None
}

/// With no intact copy listing this PV: the PV made again, when the torn text can
/// only have been its VG's first commit; otherwise why not.
fn start_over(observed: &ObservedPartition, torn: &TornMetadata) -> Result<Plan, String> {
    let none = "the torn text is at the start of the buffer with no intact copy before it";
    let of_this_pv = remaining_of_this_pv(torn);
    if !of_this_pv.is_empty() {
        return Err(format!(
            "{none}{of_this_pv}, so it may follow a wrap and not be vgcreate's first commit"
        ));
    }
    // LVM keeps room for the old text beside the new, so a commit fills at most half
    // the buffer; a bigger extent would hide the sectors checked below.
    let buffer = torn.area_size.saturating_sub(512);
    if torn.slot_size > buffer / 2 {
        return Err(format!(
            "{none}, and the torn text is said to be {} bytes, more than half the {buffer}-byte buffer",
            torn.slot_size
        ));
    }
    // As for a label without a header: `pvcreate` zeroed the area's first 4 KiB, and
    // this PV's commits run on from the torn first one at its start, so a later one
    // kept would show there. Bytes beyond are older than the label (the tail of a
    // removed PV's copy whose start was zeroed: found by the crash explorer in a
    // reset's torn vgcreate).
    let within_zeroed = within_pvcreate_zeroes(&torn.stray_sectors);
    if let Some(first) = within_zeroed.first() {
        return Err(format!(
            "{none}, and {} sector(s) of the area's first {PVCREATE_ZEROED_BYTES} bytes, which pvcreate zeroes (the first at byte {}), hold bytes that are neither zeros nor a copy naming another PV, so later commits of this PV cannot be ruled out",
            within_zeroed.len(),
            torn.area_start.saturating_add(*first)
        ));
    }
    if torn.areas_in_use != 1 || torn.metadata_areas != 1 {
        return Err(format!(
            "{none}, and the PV has {} metadata areas",
            torn.metadata_areas
        ));
    }
    if let Some(others) = listed_elsewhere(&torn.listed_by, &torn.unreadable) {
        return Err(format!("{none}, and {others}"));
    }
    Ok(Plan {
        reset: None,
        actions: vec![Action::EraseTornPhysicalVolume {
            device: observed.partition.devnode.clone(),
            because: UnreadablePv::TornFirstCommit,
        }],
    })
}

/// The plan for a PV whose one metadata area's header was never written: the label
/// is erased and provisioning starts over when nothing says a VG lived here (no
/// copy of this PV in the buffer, nothing unexplained there, no other device
/// listing it); refused otherwise.
pub(super) fn plan_unwritten(
    observed: &ObservedPartition,
    unwritten: &UnwrittenMetadataHeader,
) -> Result<Plan, Refusal> {
    let device = observed.partition.devnode.clone();
    let refuse = |found: String| Refusal::UnwrittenMetadataHeader {
        device: device.clone(),
        area_start: unwritten.area_start,
        found,
    };
    if unwritten.metadata_areas != 1 || unwritten.unwritten_areas != 1 {
        return Err(refuse(format!(
            "the PV has {} metadata areas, {} without a header (LVM may still read the volume group from another: try `vgck --updatemetadata` first)",
            unwritten.metadata_areas, unwritten.unwritten_areas
        )));
    }
    // The label says the PV is in a VG: `vgcreate`/`vgextend` wrote it, not the
    // `pvcreate` this state comes from (this tool flushes after its pvcreate, so its
    // own vgcreate never follows a lost header). Its VG's metadata may live on
    // other PVs, this one's area ignored: nothing here would name it.
    if unwritten.marked_in_use {
        return Err(refuse(
            "the PV's label marks it as a member of a volume group (written by vgcreate or vgextend, not pvcreate), whose metadata may live on other devices".to_owned(),
        ));
    }
    let of_this_pv = others_of_this_pv(&unwritten.copies, unwritten.area_start);
    if !of_this_pv.is_empty() {
        return Err(refuse(format!("the area's buffer holds {of_this_pv}")));
    }
    if let Some(first) = unwritten.pv_uuid_at.first() {
        return Err(refuse(format!(
            "the area's buffer names this PV's uuid at byte {} (text written for it)",
            unwritten.area_start.saturating_add(*first)
        )));
    }
    // `pvcreate` zeroes the area's first 4 KiB before it writes the header, and a VG's
    // first commit starts right after the header: bytes beyond that span which name
    // neither this PV nor anything readable are older than this label (the tail of
    // a removed PV's copy whose start was zeroed). Within the span, they are not.
    let within_wiped = within_pvcreate_zeroes(&unwritten.stray_sectors);
    if let Some(first) = within_wiped.first() {
        return Err(refuse(format!(
            "{} sector(s) of the area's first {PVCREATE_ZEROED_BYTES} bytes, which pvcreate zeroes (the first at byte {}), hold bytes that are neither zeros nor a copy naming another PV",
            within_wiped.len(),
            unwritten.area_start.saturating_add(*first)
        )));
    }
    if let Some(others) = listed_elsewhere(&unwritten.listed_by, &unwritten.unreadable) {
        return Err(refuse(others));
    }
    Ok(Plan {
        reset: None,
        actions: vec![Action::EraseTornPhysicalVolume {
            device,
            because: UnreadablePv::HeaderNeverWritten,
        }],
    })
}

/// What `pvcreate` zeroes at the start of each new metadata area, header included
/// (LVM 2.03.16 `lib/format_text/format-text.c`: `wipe_size`, 8 sectors).
const PVCREATE_ZEROED_BYTES: u64 = 8 * 512;

/// The stray sectors (area offsets) within the span `pvcreate` zeroes.
fn within_pvcreate_zeroes(stray_sectors: &[u64]) -> Vec<u64> {
    stray_sectors
        .iter()
        .copied()
        .filter(|at| *at < PVCREATE_ZEROED_BYTES)
        .collect()
}

/// Other devices' VGs listing this PV, and devices that could not be read, as a
/// clause; `None` when there are neither.
fn listed_elsewhere(
    listed_by: &[VgListingPv],
    unreadable: &[(std::path::PathBuf, String)],
) -> Option<String> {
    if listed_by.is_empty() && unreadable.is_empty() {
        return None;
    }
    let mut others: Vec<String> = listed_by
        .iter()
        .map(|l| format!("volume group {} lists this PV", l.volume_group))
        .collect();
    others.extend(
        unreadable
            .iter()
            .map(|(d, why)| format!("{} cannot be read ({why})", d.display())),
    );
    Some(others.join("; "))
}

/// The copies in the buffer that list this PV, as a list ("" when none).
fn others_of_this_pv(copies: &[MetadataCopy], area_start: u64) -> String {
    copies
        .iter()
        .filter(|c| c.names_this_pv)
        .map(|c| {
            format!(
                "volume group {} at seqno {} (byte {})",
                c.volume_group,
                c.seqno,
                area_start.saturating_add(c.offset)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// [`others_of_this_pv`] of a torn area as a clause ("" when none).
fn remaining_of_this_pv(torn: &TornMetadata) -> String {
    match others_of_this_pv(&torn.copies, torn.area_start) {
        mine if mine.is_empty() => mine,
        mine => format!(", while copies listing this PV remain: {mine}"),
    }
}
