//! The pool metadata spare a thin-pool `lvcreate` leaves behind when it is killed
//! after preparing the spare and before the pool's own commit.
//!
//! LVM2 2.03.16 (`tools/lvcreate.c` `_update_extents_params`, then
//! `lib/metadata/pool_manip.c` `handle_pool_metadata_spare`) sizes the pool's
//! metadata from the data extents the command asked for (`-l 100%FREE`: every free
//! extent of the VG) before anything is allocated, and creates the spare with
//! exactly as many extents, as a plain visible linear LV named `lvol<N>` (committed,
//! activated, zeroed, deactivated); it is renamed `lvol<N>_pmspare` only with the
//! pool's commit. Only an LV that is exactly that — size, layout, position, nothing
//! else recorded, nobody holding it — is removed; anything else may be someone's
//! data and is refused.
use super::Refusal;
use crate::config::ProvisionConfig;
use crate::observe::state::{LvFacts, LvKind, PeRange, SatelliteIdReading, VgFacts};
use crate::units::{Bytes, ExtentSize, Extents};

/// LVM's smallest thin-pool metadata: `DEFAULT_THIN_POOL_MIN_METADATA_SIZE` (2 MiB).
const MIN_METADATA_SECTORS: u128 = 2 * 2048;
/// LVM's largest thin-pool metadata without `allocation/thin_pool_crop_metadata`
/// (its default): `2 * DEFAULT_THIN_POOL_MAX_METADATA_SIZE_V1_KB` sectors.
pub(super) const MAX_METADATA_SECTORS: u128 = 2 * 255 * ((1 << 14) - 64) * 4;
/// A spare is never larger than 16 GiB (`handle_pool_metadata_spare`'s `MAX_SIZE`).
const MAX_SPARE_SECTORS: u128 = 2 * 16 * 1024 * 1024;
/// Pool metadata takes 64 bytes per data chunk: 8 per 512-byte sector.
pub(super) const CHUNKS_PER_METADATA_SECTOR: u128 = 512 / 64;

/// What to do with the `lvol<N>` LVs of a VG this tool tagged that has no thin pool
/// yet: the names to remove (each exactly the spare LVM would have made), or a
/// refusal naming the first that is not.
pub(super) fn interrupted_spare_creations<'a>(
    vg: &'a VgFacts,
    config: &ProvisionConfig,
) -> Result<Vec<&'a str>, Refusal> {
    let ours_without_pool = matches!(vg.satellite_id, SatelliteIdReading::Tag(_))
        && !vg
            .logical_volumes
            .iter()
            .any(|lv| matches!(lv.kind, LvKind::ThinPool { .. }) || lv.name.ends_with("_pmspare"));
    if !ours_without_pool {
        return Ok(Vec::new());
    }
    vg.logical_volumes
        .iter()
        .filter(|lv| lv.visible && is_automatic_name(&lv.name))
        .filter(
            |lv| matches!(&lv.kind, LvKind::Other { segment_type } if segment_type == "striped"),
        )
        .map(|lv| match why_not_the_spare(vg, lv, config) {
            None => Ok(lv.name.as_str()),
            Some(why) => Err(Refusal::NotAnInterruptedSpare {
                volume_group: vg.name.clone(),
                logical_volume: lv.name.clone(),
                size: lv.size_bytes,
                why,
            }),
        })
        .collect()
}

/// `lvol<N>`: the name LVM gives an LV created without one.
fn is_automatic_name(name: &str) -> bool {
    name.strip_prefix("lvol")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Why `lv` is not the spare LVM made for the configured pool; `None` when it is.
fn why_not_the_spare(vg: &VgFacts, lv: &LvFacts, config: &ProvisionConfig) -> Option<String> {
    if let Some(holder) = &lv.open_by {
        return Some(format!("it is open ({holder})"));
    }
    let Some(at) = lv.plain_linear_at else {
        return Some(
            "its metadata is not that of a new linear LV (one linear segment on this PV, status READ, WRITE, VISIBLE, no flags, no tags)"
                .to_owned(),
        );
    };
    let extent = vg.extent_size;
    let Some(count) = extent
        .extents_in(lv.size_bytes)
        .filter(|n| n.checked_mul(extent) == Some(lv.size_bytes))
    else {
        return Some("its size is not a whole number of extents".to_owned());
    };
    // The spare was allocated from the free space the command saw: as large as
    // the metadata this tool asks for (`plan::sizing`), or — a pool `lvcreate` of
    // an earlier version, `-l 100%FREE` — as LVM's estimate.
    let data = vg.free_extents.checked_add(count);
    let ours = data
        .and_then(|data| super::sizing::pool_layout(data, extent, config.chunk_size_bytes))
        .map(|layout| layout.spare);
    let chunk = config.chunk_size_bytes.unwrap_or(Bytes(512 << 10));
    let earlier = data.and_then(|data| spare_extents(data, extent, chunk));
    if ours != Some(count) && earlier != Some(count) {
        return Some(format!(
            "it has {} extents; for a pool over the {} extents then free this tool makes the spare {}",
            count.count(),
            data.map_or_else(|| "more than 2^64".to_owned(), |n| n.count().to_string()),
            ours.map_or_else(|| "impossible".to_owned(), |n| format!("{} extents", n.count())),
        ));
    }
    let expected_at = allocation_start(
        &vg.free_areas,
        PeRange {
            start: at,
            count: count.count(),
        },
    );
    if expected_at != Some(at) {
        return Some(format!(
            "it starts at extent {at}; LVM would have allocated the spare at {}",
            expected_at.map_or_else(|| "no extent".to_owned(), |pe| format!("extent {pe}")),
        ));
    }
    None
}

/// The extents LVM 2.03.16 gives the metadata of a new thin pool over `data`
/// extents with chunks of `chunk` (`update_thin_pool_params`): its estimate of 64
/// bytes per chunk, rounded up to whole extents and clamped to LVM's minimum and
/// maximum. `None` for a chunk of under a sector or sizes past 2^128.
pub(super) fn pool_metadata_extents(
    data: Extents,
    extent: ExtentSize,
    chunk: Bytes,
) -> Option<Extents> {
    let extent_sectors = u128::from(extent.sectors().0);
    let chunk_sectors = chunk.0 / 512;
    let round_up = |sectors: u128| -> Option<u128> {
        sectors
            .checked_add(extent_sectors - 1)
            .map(|s| s / extent_sectors * extent_sectors)
    };
    let estimate = u128::from(data.count())
        .checked_mul(extent_sectors)?
        .checked_div(chunk_sectors.checked_mul(CHUNKS_PER_METADATA_SECTOR)?)?;
    let metadata = round_up(estimate)?.clamp(
        round_up(MIN_METADATA_SECTORS)?,
        round_up(MAX_METADATA_SECTORS)?,
    );
    u64::try_from(metadata / extent_sectors)
        .ok()
        .map(Extents::new)
}

/// The extents LVM gives the metadata spare of that pool: as many as the
/// metadata, at most 16 GiB.
pub(super) fn spare_extents(data: Extents, extent: ExtentSize, chunk: Bytes) -> Option<Extents> {
    let metadata = pool_metadata_extents(data, extent, chunk)?;
    let max_spare = MAX_SPARE_SECTORS.div_ceil(u128::from(extent.sectors().0));
    Some(Extents::new(
        u64::try_from(max_spare).map_or(metadata.count(), |m| metadata.count().min(m)),
    ))
}

/// Where LVM's normal allocation puts a new linear LV of `taken.count` extents,
/// given the free areas now and the range `taken` it occupies: the start of the
/// largest free area it saw (the first of equals, in PE order). `None` when no area
/// could have held it.
fn allocation_start(free_now: &[PeRange], taken: PeRange) -> Option<u64> {
    let mut areas: Vec<PeRange> = free_now.to_vec();
    areas.push(taken);
    areas.sort_unstable_by_key(|a| a.start);
    let mut merged: Vec<PeRange> = Vec::new();
    for area in areas {
        match merged.last_mut() {
            Some(last) if last.start.checked_add(last.count) == Some(area.start) => {
                last.count = last.count.checked_add(area.count)?;
            }
            _ => merged.push(area),
        }
    }
    let largest = merged.iter().map(|a| a.count).max()?;
    merged
        .iter()
        .find(|a| a.count == largest && a.count >= taken.count)
        .map(|a| a.start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::Sectors;

    fn extent_mib(mib: u64) -> ExtentSize {
        match ExtentSize::from_sectors(Sectors(mib * 2048)) {
            Some(size) => size,
            None => panic!("{mib} MiB is an extent size"),
        }
    }

    /// Numbers LVM 2.03.16 printed for `lvcreate --type thin-pool -l 100%FREE`.
    #[test]
    fn the_spare_has_the_size_lvm_gives_the_pool_metadata() {
        let four = extent_mib(4);
        let kib = |n: u128| Bytes(n << 10);
        // 1 GiB partition: 255 extents, 64 KiB chunks: 2040 sectors → one extent.
        assert_eq!(
            spare_extents(Extents::new(255), four, kib(64)),
            Some(Extents::new(1))
        );
        // 100 GiB with 64 KiB chunks: 25600 extents → 100 MiB estimate → 25 extents.
        assert_eq!(
            spare_extents(Extents::new(25_600), four, kib(64)),
            Some(Extents::new(25))
        );
        // 100 GiB with 512 KiB chunks: 12.5 MiB → 4 extents.
        assert_eq!(
            spare_extents(Extents::new(25_600), four, kib(512)),
            Some(Extents::new(4))
        );
        // A tiny VG gets LVM's 2 MiB minimum, rounded up to an extent.
        assert_eq!(
            spare_extents(Extents::new(3), four, kib(64)),
            Some(Extents::new(1))
        );
        // 64 TiB with 64 KiB chunks hits the ~15.9 GiB maximum (V1 metadata).
        let huge = Extents::new(64 << 18);
        assert_eq!(
            spare_extents(huge, four, kib(64)),
            Some(Extents::new((MAX_METADATA_SECTORS as u64).div_ceil(8192)))
        );
        assert_eq!(spare_extents(Extents::new(255), four, Bytes(0)), None);
    }

    #[test]
    fn lvm_allocates_at_the_start_of_the_largest_free_area() {
        let range = |start, count| PeRange { start, count };
        // A fresh VG: the spare took the start of the only area.
        assert_eq!(allocation_start(&[range(1, 254)], range(0, 1)), Some(0));
        // With a user's LV at 10..20, the larger area (20..255) wins.
        assert_eq!(
            allocation_start(&[range(0, 10), range(21, 234)], range(20, 1)),
            Some(20)
        );
        assert_eq!(
            allocation_start(&[range(1, 9), range(20, 235)], range(0, 1)),
            Some(20)
        );
        // Equal areas: the first in PE order.
        assert_eq!(
            allocation_start(&[range(1, 9), range(20, 10)], range(0, 1)),
            Some(0)
        );
    }
}
