//! The PV header, inside the label sector right after the label fields.
//!
//! Layout (little-endian):
//! ```text
//!  0  pv uuid        32 ASCII chars, no dashes
//! 32  device size    u64, bytes
//! 40  data areas     (offset u64, size u64)* then an all-zero pair
//!     metadata areas (offset u64, size u64)* then an all-zero pair
//!     extension      version u32, flags u32, then for version >= 2
//!                    bootloader areas (offset u64, size u64)* then a zero pair
//! ```
//! Lists end at the first entry whose offset is 0. PVs written before the
//! extension existed have zeros there (version 0).

use serde::Serialize;

use super::io::{le_u32, le_u64, show_bytes};
use super::label::SECTOR_SIZE;
use super::uuid::LvmUuid;
use super::LvmReadError;

/// Length of an LVM uuid without dashes.
pub const ID_LEN: usize = 32;
/// Extension flag: the PV belongs to a VG (set even when it holds no metadata).
pub const PV_EXT_USED: u32 = 0x1;

/// A byte range on the device (`size` 0 = "to the end of the device").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Area {
    /// Start, in bytes from the start of the device.
    pub offset: u64,
    /// Length in bytes; 0 for a data area means "up to the end".
    pub size: u64,
}

/// A parsed PV header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PvHeader {
    /// The PV uuid.
    pub pv_uuid: LvmUuid,
    /// Device size recorded at pvcreate/pvresize time, bytes.
    pub device_size: u64,
    /// Data areas (normally one: where extents start, size 0).
    pub data_areas: Vec<Area>,
    /// Metadata areas (normally one at byte 4096; a second at the end if
    /// `--pvmetadatacopies 2`; none if 0).
    pub metadata_areas: Vec<Area>,
    /// Extension version (0 = no extension, 2 = current).
    pub extension_version: u32,
    /// Extension flags ([`PV_EXT_USED`]).
    pub extension_flags: u32,
    /// Bootloader areas (extension version >= 2).
    pub bootloader_areas: Vec<Area>,
}

impl PvHeader {
    /// True when the extension says the PV is in a VG.
    pub fn is_used(&self) -> bool {
        self.extension_flags & PV_EXT_USED != 0
    }
}

/// Parses the PV header in `sector` (the whole 512-byte label sector) starting
/// at `start`. `sector_offset` is the sector's byte offset on the device, for
/// error messages.
pub fn parse_pv_header(
    sector: &[u8],
    start: usize,
    sector_offset: u64,
) -> Result<PvHeader, LvmReadError> {
    let at = |pos: usize| sector_offset.saturating_add(pos as u64);
    let bad = |pos: usize, found: String, expected: &str| LvmReadError::PvHeader {
        offset: at(pos),
        found,
        expected: expected.to_owned(),
    };
    let sector = sector.get(..SECTOR_SIZE).unwrap_or(sector);
    let uuid_end = start.saturating_add(ID_LEN);
    let raw = sector.get(start..uuid_end).ok_or_else(|| {
        bad(
            start,
            "the label sector ends inside the PV uuid".into(),
            "a 32-byte PV uuid",
        )
    })?;
    let pv_uuid = LvmUuid::from_undashed_bytes(raw).ok_or_else(|| {
        bad(
            start,
            format!("PV uuid {}", show_bytes(raw)),
            "32 characters from [A-Za-z0-9!#]",
        )
    })?;
    let device_size = le_u64(sector, uuid_end).ok_or_else(|| {
        bad(
            uuid_end,
            "the label sector ends inside the device size".into(),
            "a u64 device size",
        )
    })?;
    let mut pos = uuid_end + 8;
    let data_areas = area_list(sector, &mut pos, sector_offset, "data area list")?;
    let metadata_areas = area_list(sector, &mut pos, sector_offset, "metadata area list")?;

    // The extension. Room for it is always there in headers LVM writes; a
    // sector that ends first is treated like an old PV without one.
    let (extension_version, extension_flags) = match (le_u32(sector, pos), le_u32(sector, pos + 4))
    {
        (Some(v), Some(f)) => (v, f),
        _ => (0, 0),
    };
    let mut bootloader_areas = Vec::new();
    if extension_version >= 2 {
        pos += 8;
        bootloader_areas = area_list(sector, &mut pos, sector_offset, "bootloader area list")?;
    }
    for a in data_areas
        .iter()
        .chain(&metadata_areas)
        .chain(&bootloader_areas)
    {
        if a.offset.checked_add(a.size).is_none() {
            return Err(bad(
                start,
                format!(
                    "an area at byte {} of {} bytes, past 2^64",
                    a.offset, a.size
                ),
                "areas inside the device",
            ));
        }
    }
    Ok(PvHeader {
        pv_uuid,
        device_size,
        data_areas,
        metadata_areas,
        extension_version,
        extension_flags,
        bootloader_areas,
    })
}

/// Reads `(offset, size)` pairs from `*pos` up to and including the zero
/// terminator; the list must end inside the sector.
fn area_list(
    sector: &[u8],
    pos: &mut usize,
    sector_offset: u64,
    what: &str,
) -> Result<Vec<Area>, LvmReadError> {
    let mut areas = Vec::new();
    loop {
        let (Some(offset), Some(size)) = (le_u64(sector, *pos), le_u64(sector, *pos + 8)) else {
            return Err(LvmReadError::PvHeader {
                offset: sector_offset.saturating_add(*pos as u64),
                found: format!("the {what} running past the end of the label sector"),
                expected: "a list ended by an all-zero entry inside the sector".into(),
            });
        };
        *pos += 16;
        if offset == 0 {
            return Ok(areas);
        }
        areas.push(Area { offset, size });
    }
}
