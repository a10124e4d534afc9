//! What the partition holds, as metrics: the VG's free extents and metadata area,
//! the thin pool's data and metadata use, the recorded satellite ID. Everything is
//! read from a [`Snapshot`] that `status` and the planner already take; nothing
//! more is asked of the machine.
use super::families::*;
use super::{Samples, Value};
use crate::observe::lvm::mda::MDA_HEADER_SIZE;
use crate::observe::lvm::MetadataAreaState;
use crate::observe::snapshot::Snapshot;
use crate::observe::state::{LvKind, SatelliteIdReading};

/// How full one metadata area is, in LVM's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetadataAreaUse {
    /// The area, its header included (`vg_mda_size`).
    pub size_bytes: u64,
    /// The committed text.
    pub text_bytes: u64,
    /// How much the text may grow (`vg_mda_free`).
    pub free_bytes: u64,
}

/// LVM 2.03's arithmetic (`read_metadata_location_summary` in
/// lib/format_text/format-text.c): the largest text it commits is half the area
/// after the header, less one sector (each copy starts on a sector boundary); free
/// is what is left of that, in whole sectors.
pub fn metadata_area_use(area: &MetadataAreaState) -> Option<MetadataAreaUse> {
    let text_bytes = area.committed?.size;
    let largest_text = (area.size.checked_sub(MDA_HEADER_SIZE)? / 2).checked_sub(512)?;
    let free_bytes = largest_text.saturating_sub(text_bytes) / 512 * 512;
    Some(MetadataAreaUse {
        size_bytes: area.size,
        text_bytes,
        free_bytes,
    })
}

/// The samples for the partition labeled `partition_label` as `snapshot` saw it;
/// `pool` names the thin pool whose usage the snapshot read (if any).
pub fn add_partition_samples(
    samples: &mut Samples,
    snapshot: &Snapshot,
    partition_label: &str,
    pool: Option<&str>,
) {
    let Some(vg) = snapshot
        .observed
        .physical_volume
        .as_ref()
        .and_then(|pv| pv.volume_group.as_ref())
    else {
        return;
    };
    let vg_labels = [
        ("partition_label", partition_label),
        ("vg", vg.name.as_str()),
    ];
    match &vg.satellite_id {
        SatelliteIdReading::Tag(id) | SatelliteIdReading::SeedFile(id) => {
            let source = match &vg.satellite_id {
                SatelliteIdReading::Tag(_) => "vg-tag",
                _ => "seed-file",
            };
            let mut labels = vg_labels.to_vec();
            labels.extend([("satellite_id", id.as_str()), ("source", source)]);
            samples.add(&SATELLITE_ID_INFO, &labels, Value::from(true));
        }
        _ => {}
    }
    samples.add(
        &VG_FREE_EXTENTS,
        &vg_labels,
        Value::Integer(u128::from(vg.free_extents.count())),
    );
    if let Some(bytes) = vg.free_extents.checked_mul(vg.extent_size) {
        samples.add(&VG_FREE_BYTES, &vg_labels, Value::Integer(bytes.0));
    }
    // LVM reports the smallest area's figures; the partition has one in practice.
    let area = snapshot
        .physical_volume
        .iter()
        .flat_map(|pv| &pv.metadata_area_states)
        .filter_map(metadata_area_use)
        .min_by_key(|area| area.free_bytes);
    if let Some(area) = area {
        for (family, value) in [
            (&VG_METADATA_AREA_SIZE_BYTES, area.size_bytes),
            (&VG_METADATA_AREA_USED_BYTES, area.text_bytes),
            (&VG_METADATA_AREA_FREE_BYTES, area.free_bytes),
        ] {
            samples.add(family, &vg_labels, Value::Integer(u128::from(value)));
        }
    }
    let Some(pool) = pool else { return };
    let pool_labels = [
        ("partition_label", partition_label),
        ("vg", vg.name.as_str()),
        ("pool", pool),
    ];
    let serving = vg
        .logical_volumes
        .iter()
        .find(|lv| lv.name == pool)
        .and_then(|lv| match lv.kind {
            LvKind::ThinPool { serving, .. } => Some(serving),
            _ => None,
        });
    let Some(serving) = serving else { return };
    samples.add(&POOL_ACTIVE, &pool_labels, Value::from(serving));
    if let Some(Ok(usage)) = &snapshot.pool_usage {
        for (family, value) in [
            (&POOL_DATA_USED_BYTES, usage.data_used_bytes),
            (&POOL_DATA_SIZE_BYTES, usage.data_total_bytes),
            (&POOL_METADATA_USED_BYTES, usage.metadata_used_bytes),
            (&POOL_METADATA_SIZE_BYTES, usage.metadata_total_bytes),
        ] {
            samples.add(family, &pool_labels, Value::Integer(value.0));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::lvm::RawLocn;

    fn area(size: u64, text: Option<u64>) -> MetadataAreaState {
        MetadataAreaState {
            start: 4096,
            size,
            ignored: false,
            committed: text.map(|size| RawLocn {
                offset: 512,
                size,
                checksum: 0,
                flags: 0,
            }),
            seqno: text.map(|_| 1),
        }
    }

    /// pvcreate's default area (1 MiB less the 4 KiB before it: 1,044,480 bytes) as
    /// `vgs -o vg_mda_size,vg_mda_free --units b` reports it for a 1,234-byte text:
    /// (1,044,480 − 512) / 2 − 512 = 521,472; less 1,234 is 520,238, down to whole
    /// sectors 520,192.
    #[test]
    fn free_space_follows_lvms_arithmetic() {
        assert_eq!(
            metadata_area_use(&area(1_044_480, Some(1234))),
            Some(MetadataAreaUse {
                size_bytes: 1_044_480,
                text_bytes: 1234,
                free_bytes: 520_192
            })
        );
        assert_eq!(
            metadata_area_use(&area(1_044_480, Some(600_000))).map(|a| a.free_bytes),
            Some(0)
        );
        assert_eq!(metadata_area_use(&area(1_044_480, None)), None);
        assert_eq!(
            metadata_area_use(&area(100, Some(1))),
            None,
            "no room at all"
        );
    }
}
