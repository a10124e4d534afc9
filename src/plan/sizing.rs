//! How large this tool makes what it creates, for a node that lives for years
//! (LINSTOR makes a thin volume per resource and one per snapshot).
//!
//! **The PV's metadata area.** LVM keeps two copies of the VG's metadata text in
//! the area (the committed one and the new one of a commit) and rounds each to a
//! 512-byte boundary after a 512-byte header; LVM2 2.03.16 refuses a text larger
//! than `(area - 512) / 2 - 512` bytes (`_vg_write_raw`, lib/format_text/
//! format-text.c: "exceeds maximum metadata size"). LVM's default area (1 MiB
//! minus the 4 KiB before it) holds 521,472 bytes: about 1,200 LINSTOR volumes.
//! Measured with LVM 2.03.16 (`vgcfgrestore` of LINSTOR-like VGs, LVM's own
//! re-export): 1,000 LVs (half `pvc-<uuid>_00000` thin volumes, half read-only
//! snapshots `pvc-<uuid>_00000_snapshot-<uuid>` with origins and activation skip,
//! each with one tag) → 432,848 bytes; 10,000 → 4,329,850: 433 bytes per LV. The
//! area is sized for 10,000 LVs at twice that (longer names, more tags) plus
//! 64 KiB for the VG, the PV and the pool: text 8,725,536 bytes → area
//! `2 × (8,725,536 + 512) + 512` = 17,452,608 bytes → `--metadatasize 17m`; LVM
//! extends the area to the next MiB boundary of `pe_start` (18 MiB − 4 KiB,
//! largest text 9,434,368 bytes: ~21,000 LVs at the measured size).
//!
//! **The pool's metadata.** LVM's estimate is 64 bytes per data chunk
//! (`_estimate_metadata_size`, lib/metadata/thin_manip.c), at least 2 MiB. The
//! pool gets twice that, and the VG keeps free what doubling it once more takes
//! (the metadata's growth and its spare's): `_tmeta` is the one thing in a pool
//! that, full, stops every volume.
use crate::units::{Bytes, ExtentSize, Extents};

/// LVM 2.03.16's text per LV of a LINSTOR VG (see the module doc).
pub const MEASURED_TEXT_BYTES_PER_LV: u64 = 433;
/// LVs the metadata area is sized for.
pub const PLANNED_LVS: u64 = 10_000;
/// The VG's own text, its PV, the pool and its hidden LVs, with room to spare.
const TEXT_BASE_BYTES: u64 = 64 << 10;
/// `MDA_HEADER_SIZE`: the area's first sector holds its header.
const MDA_HEADER_BYTES: u64 = 512;
/// Partitions smaller than this keep LVM's default area: the sized area (18 MiB)
/// would take a noticeable share of them, and they cannot hold 10,000 volumes
/// of any use anyway.
pub const MIN_PARTITION_FOR_SIZED_AREA: Bytes = Bytes(4 << 30);

/// The largest metadata text LVM writes into an area of `area_bytes` (header
/// included): two copies, each starting on a sector boundary.
pub fn largest_text_bytes(area_bytes: u64) -> u64 {
    (area_bytes.saturating_sub(MDA_HEADER_BYTES) / 2).saturating_sub(512)
}

/// LVM reads and writes metadata through its block cache, `io_memory_size`
/// (8192 KiB by default: 64 blocks of 128 KiB). LVM 2.03.16 warns "metadata may
/// not be usable with current io_memory_size" once the largest text plus 1 MiB
/// exceeds the cache (`label_scan`, lib/label/label.c), and a text larger than
/// the cache cannot be read or written at all. With LVM's default that is 7 MiB
/// of text, less than the sized area's rule: what an area holds in practice is the
/// smaller of the two.
pub const IO_MEMORY_TEXT_LIMIT_BYTES: u64 = (8192 - 1024) << 10;

/// The text an area of `area_bytes` holds without LVM's io_memory_size warning.
pub fn usable_text_bytes(area_bytes: u64) -> u64 {
    largest_text_bytes(area_bytes).min(IO_MEMORY_TEXT_LIMIT_BYTES)
}

/// The area two copies of `text_bytes` need, by the same rule.
fn area_for_text(text_bytes: u64) -> u64 {
    2 * (text_bytes + 512) + MDA_HEADER_BYTES
}

/// The area this tool asks `pvcreate` for (`--metadatasize`): room for the text
/// of [`PLANNED_LVS`] at twice the measured size, in whole MiB.
pub fn sized_metadata_area() -> Bytes {
    let text = PLANNED_LVS * 2 * MEASURED_TEXT_BYTES_PER_LV + TEXT_BASE_BYTES;
    Bytes(u128::from(area_for_text(text).div_ceil(1 << 20)) << 20)
}

/// `--metadatasize` for a new PV on a partition of `partition`: `None` keeps
/// LVM's default (a small partition).
pub fn metadata_area_request(partition: Bytes) -> Option<Bytes> {
    (partition >= MIN_PARTITION_FOR_SIZED_AREA).then(sized_metadata_area)
}

/// The `pe_start` LVM gives a new PV with that request: the area starts 4 KiB in
/// and extents start at the next MiB boundary after it (LVM's default data
/// alignment).
pub fn pe_start_for(request: Option<Bytes>) -> Bytes {
    match request {
        None => Bytes(1 << 20),
        Some(area) => Bytes((area.0 + 4096).div_ceil(1 << 20) << 20),
    }
}

/// What status says of an area: its size, the largest text, how full it is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MetadataAreaUse {
    pub size_bytes: u64,
    /// The area's rule (two copies).
    pub largest_text_bytes: u64,
    /// What it holds in practice: at most [`IO_MEMORY_TEXT_LIMIT_BYTES`].
    pub usable_text_bytes: u64,
    pub text_bytes: u64,
    pub used_percent: u64,
    /// ≥ 50% used, or an area smaller than this tool makes: what to do.
    pub warning: Option<String>,
}

/// Judges an area of `size_bytes` holding a text of `text_bytes` with `lvs` LVs
/// on a partition of `partition`.
pub fn metadata_area_use(
    size_bytes: u64,
    text_bytes: u64,
    lvs: usize,
    partition: Bytes,
) -> MetadataAreaUse {
    let largest = usable_text_bytes(size_bytes);
    let used_percent = (u128::from(text_bytes) * 100)
        .checked_div(u128::from(largest))
        .map_or(100, |p| u64::try_from(p).unwrap_or(u64::MAX));
    let per_lv = u64::try_from(lvs)
        .ok()
        .filter(|n| *n > 0)
        .map_or(MEASURED_TEXT_BYTES_PER_LV, |n| {
            (text_bytes / n).max(MEASURED_TEXT_BYTES_PER_LV)
        });
    let fits = largest / per_lv;
    // What LVM makes of the request: the area up to pe_start, 4 KiB in.
    let sized = metadata_area_request(partition)
        .and_then(|area| u64::try_from(pe_start_for(Some(area)).0 - 4096).ok())
        .map_or(0, usable_text_bytes);
    let warning = if used_percent >= 50 {
        Some(format!(
            "the VG metadata area is {used_percent}% used ({text_bytes} of {largest} bytes, room for about {fits} LVs in all): when it is full LVM refuses every new volume and snapshot. An area cannot grow in place; move the volumes off this node and reset it (a new SATELLITE_ID) to get an area for {PLANNED_LVS} LVs"
        ))
    } else if largest < sized {
        Some(format!(
            "the VG metadata area holds at most {largest} bytes of text (about {fits} LVs), made before this tool sized it for {PLANNED_LVS} LVs; nothing changes it in place: the fix is a reset (a new SATELLITE_ID) once the volumes are moved off this node"
        ))
    } else {
        None
    };
    MetadataAreaUse {
        size_bytes,
        largest_text_bytes: largest_text_bytes(size_bytes),
        usable_text_bytes: largest,
        text_bytes,
        used_percent,
        warning,
    }
}

/// LVM's default thin-pool chunk policy ("generic", `update_thin_pool_params`):
/// 64 KiB, doubled while the metadata estimate for `data` exceeds 128 MiB
/// (`DEFAULT_THIN_POOL_OPTIMAL_METADATA_SIZE`), up to 1 GiB. 100 GiB → 64 KiB,
/// 1 TiB → 512 KiB, 8 TiB → 4 MiB.
pub fn policy_chunk_size(data: Bytes) -> Bytes {
    const OPTIMAL_METADATA: u128 = 128 << 20;
    let mut chunk: u128 = 64 << 10;
    while data.0 / chunk * 64 > OPTIMAL_METADATA && chunk < 1 << 30 {
        chunk <<= 1;
    }
    Bytes(chunk)
}

/// LVM's estimate of a pool's metadata: 64 bytes per chunk of `data`, at least
/// 2 MiB (`DEFAULT_THIN_POOL_MIN_METADATA_SIZE`). `None` for a zero chunk.
pub fn lvm_metadata_estimate(data: Bytes, chunk: Bytes) -> Option<Bytes> {
    let chunks = data.0.checked_div(chunk.0)?;
    Some(Bytes(chunks.checked_mul(64)?.max(2 << 20)))
}

/// The most pool metadata this tool asks for: the kernel's limit (15.81 GiB),
/// which LVM never exceeds whatever `thin_pool_crop_metadata` says — asked for
/// more, it would clamp, and the next start would ask again.
fn max_metadata(extent: ExtentSize) -> Option<Extents> {
    extent.extents_in(super::pool_preconditions::MAX_POOL_METADATA_BYTES)
}

/// A spare is never larger than 16 GiB (`handle_pool_metadata_spare`).
pub fn spare_for(metadata: Extents, extent: ExtentSize) -> Option<Extents> {
    let most = extent.extents_covering(Bytes(16 << 30))?;
    Some(Extents::new(metadata.count().min(most.count())))
}

/// Twice `metadata`, within LVM's maximum.
pub fn doubled(metadata: Extents, extent: ExtentSize) -> Option<Extents> {
    Some(Extents::new(
        metadata
            .checked_times(2)?
            .count()
            .min(max_metadata(extent)?.count()),
    ))
}

/// Free extents that let `metadata` (with a spare of `spare`) double once: the
/// metadata's growth plus the spare's.
pub fn doubling_room(metadata: Extents, spare: Extents, extent: ExtentSize) -> Option<Extents> {
    let to = doubled(metadata, extent)?;
    let spare_to = spare_for(to, extent)?;
    to.checked_sub(metadata)?
        .checked_add(spare_to.saturating_sub(spare))
}

/// Metadata for a pool over `data` with `chunk`: twice LVM's estimate, in whole
/// extents, within LVM's maximum.
pub fn lifetime_metadata(data: Bytes, chunk: Bytes, extent: ExtentSize) -> Option<Extents> {
    let twice = Bytes(lvm_metadata_estimate(data, chunk)?.0.checked_mul(2)?);
    let wanted = extent.extents_covering(twice)?;
    Some(Extents::new(
        wanted.count().min(max_metadata(extent)?.count()),
    ))
}

/// How a new pool divides the VG's free extents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolLayout {
    pub chunk: Bytes,
    pub metadata: Extents,
    pub spare: Extents,
    /// Left free: what doubling the metadata once takes (zero on a partition too
    /// small for it).
    pub reserve: Extents,
    pub data: Extents,
}

/// The layout of a pool over `free` extents: metadata at twice LVM's estimate
/// for all of them (the data gets slightly less: an overestimate), its spare,
/// the doubling room, the rest data. A partition too small for that goes without
/// the doubling room, then with LVM's own estimate (what `-l 100%FREE` makes);
/// `None` when not even metadata, spare and one data extent fit (the
/// preflight's refusal).
pub fn pool_layout(free: Extents, extent: ExtentSize, chunk: Option<Bytes>) -> Option<PoolLayout> {
    let all = free.checked_mul(extent)?;
    let chunk = chunk.unwrap_or_else(|| policy_chunk_size(all));
    let lifetime = lifetime_metadata(all, chunk, extent)?;
    let lvm_own = extent.extents_covering(lvm_metadata_estimate(all, chunk)?)?;
    let tiers = [(lifetime, true), (lifetime, false), (lvm_own, false)];
    tiers.into_iter().find_map(|(metadata, keep_room)| {
        let spare = spare_for(metadata, extent)?;
        let reserve = if keep_room {
            doubling_room(metadata, spare, extent)?
        } else {
            Extents::ZERO
        };
        // LVM refuses a data LV smaller than one chunk: the next tier, then.
        let data = free
            .checked_sub(metadata.checked_add(spare)?.checked_add(reserve)?)
            .filter(|d| !d.is_zero() && d.checked_mul(extent).is_some_and(|b| b >= chunk))?;
        Some(PoolLayout {
            chunk,
            metadata,
            spare,
            reserve,
            data,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::Sectors;

    const GIB: u128 = 1 << 30;
    const TIB: u128 = 1 << 40;

    fn four_mib() -> ExtentSize {
        match ExtentSize::from_sectors(Sectors(8192)) {
            Some(e) => e,
            None => panic!("4 MiB is an extent size"),
        }
    }

    #[test]
    fn the_area_holds_two_copies_of_ten_thousand_lvs() {
        let area = sized_metadata_area();
        assert_eq!(area, Bytes(17 << 20));
        // LVM extends the area to pe_start's MiB boundary: 18 MiB − 4 KiB.
        let on_disk = (18 << 20) - 4096;
        assert_eq!(pe_start_for(Some(area)), Bytes(18 << 20));
        assert_eq!(largest_text_bytes(on_disk), 9_434_368);
        assert!(largest_text_bytes(on_disk) >= PLANNED_LVS * 2 * MEASURED_TEXT_BYTES_PER_LV);
        // LVM's default: 1 MiB − 4 KiB, about 1,200 LVs.
        assert_eq!(largest_text_bytes(1_044_480), 521_472);
        assert_eq!(metadata_area_request(Bytes(GIB)), None);
        assert_eq!(metadata_area_request(Bytes(4 * GIB)), Some(area));
    }

    #[test]
    fn area_use_warns_at_half_and_names_the_reset_for_small_areas() {
        let big = (18 << 20) - 4096;
        let fine = metadata_area_use(big, 1 << 20, 2000, Bytes(TIB));
        assert_eq!(fine.warning, None);
        // Of the 7 MiB io_memory_size allows, not the area's 9,434,368 bytes.
        assert_eq!(
            (fine.largest_text_bytes, fine.usable_text_bytes),
            (9_434_368, 7 << 20)
        );
        assert_eq!(fine.used_percent, 14);
        assert_eq!(
            metadata_area_use(big, 3_600_000, 8_300, Bytes(TIB)).warning,
            None
        );
        let half = metadata_area_use(big, 3_670_016, 8_500, Bytes(TIB));
        assert!(half.warning.is_some_and(|w| w.contains("50% used")));
        let small = metadata_area_use(1_044_480, 10_000, 3, Bytes(TIB));
        assert!(small.warning.is_some_and(|w| w.contains("reset")));
        // A small partition is not expected to have the sized area.
        assert_eq!(
            metadata_area_use(1_044_480, 10_000, 3, Bytes(GIB)).warning,
            None
        );
    }

    #[test]
    fn chunk_policy_matches_lvm_generic() {
        assert_eq!(policy_chunk_size(Bytes(100 * GIB)), Bytes(64 << 10));
        assert_eq!(policy_chunk_size(Bytes(TIB)), Bytes(512 << 10));
        assert_eq!(policy_chunk_size(Bytes(8 * TIB)), Bytes(4 << 20));
        assert_eq!(policy_chunk_size(Bytes(GIB)), Bytes(64 << 10));
    }

    /// The figures docs/incoming/wt-sizing.md gives (4 MiB extents, policy chunk).
    #[test]
    fn documented_layouts() {
        let e = four_mib();
        let layout = |bytes: u128| {
            let free = Extents::new(u64::try_from(bytes / (4 << 20)).unwrap_or(0));
            match pool_layout(free, e, None) {
                Some(l) => l,
                None => panic!("{bytes}"),
            }
        };
        // 100 GiB: 64 KiB chunks, estimate 100 MiB → 200 MiB (50 extents).
        let l = layout(100 * GIB);
        assert_eq!(
            (l.chunk, l.metadata, l.spare, l.reserve),
            (
                Bytes(64 << 10),
                Extents::new(50),
                Extents::new(50),
                Extents::new(100)
            )
        );
        // 1 TiB: 512 KiB chunks, estimate 128 MiB → 256 MiB.
        let l = layout(TIB);
        assert_eq!(
            (l.chunk, l.metadata, l.reserve),
            (Bytes(512 << 10), Extents::new(64), Extents::new(128))
        );
        // 8 TiB: 4 MiB chunks, estimate 128 MiB → 256 MiB.
        let l = layout(8 * TIB);
        assert_eq!(
            (l.chunk, l.metadata, l.reserve),
            (Bytes(4 << 20), Extents::new(64), Extents::new(128))
        );
        // 1 GiB: the 2 MiB minimum, twice, in one extent; doubling needs two more.
        let l = layout(GIB);
        assert_eq!(
            (l.metadata, l.spare, l.reserve, l.data),
            (
                Extents::new(1),
                Extents::new(1),
                Extents::new(2),
                Extents::new(252)
            )
        );
        // Too small for the doubling room: none; too small for the pool: None.
        let tiny = pool_layout(Extents::new(3), e, Some(Bytes(512 << 10)));
        assert_eq!(
            tiny.map(|l| (l.reserve, l.data)),
            Some((Extents::ZERO, Extents::new(1)))
        );
        assert_eq!(pool_layout(Extents::new(2), e, None), None);
        // A 1 GiB chunk over 259 extents: the doubling room would leave the data
        // LV 255 extents (< 1 GiB), so the layout goes without it.
        let big_chunk = pool_layout(Extents::new(259), e, Some(Bytes(GIB)));
        assert_eq!(
            big_chunk.map(|l| (l.reserve, l.data)),
            Some((Extents::ZERO, Extents::new(257)))
        );
        assert_eq!(pool_layout(Extents::new(257), e, Some(Bytes(GIB))), None);
    }

    #[test]
    fn doubling_stops_at_lvm_maximum_and_the_spare_at_16_gib() {
        let e = four_mib();
        let most = match max_metadata(e) {
            Some(m) => m,
            None => panic!("max"),
        };
        assert_eq!(doubled(most, e), Some(most));
        assert_eq!(
            doubling_room(most, Extents::new(4096), e),
            Some(Extents::ZERO)
        );
        // 3 GiB metadata with a 3 GiB spare: +3 GiB metadata, +3 GiB spare.
        assert_eq!(
            doubling_room(Extents::new(768), Extents::new(768), e),
            Some(Extents::new(1536))
        );
    }
}
