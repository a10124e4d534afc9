//! The LVM label: a 512-byte sector in the first four sectors of the device.
//!
//! Layout (all integers little-endian):
//! ```text
//!  0  id        8 bytes  "LABELONE"
//!  8  sector    u64      number of the sector holding this label
//! 16  crc       u32      LVM checksum of bytes 20..512 of the sector
//! 20  offset    u32      where the PV header starts within the sector (32)
//! 24  type      8 bytes  "LVM2 001"
//! ```

use serde::Serialize;

use super::crc::lvm_crc;
use super::io::{le_u32, le_u64, show_bytes};
use super::LvmReadError;

/// Sector size LVM's label and headers are laid out in.
pub use crate::units::SECTOR_SIZE;
/// LVM looks for its label in this many sectors from the start.
pub const LABEL_SCAN_SECTORS: usize = 4;
/// Label identifier.
pub const LABEL_ID: &[u8; 8] = b"LABELONE";
/// Label type of the text format.
pub const LABEL_TYPE: &[u8; 8] = b"LVM2 001";
/// Size of the label header fields; the PV header can't start before this.
pub const LABEL_HEADER_SIZE: usize = 32;

/// A verified LVM label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Label {
    /// Sector (0..4) holding the label.
    pub sector: u64,
    /// Offset of the PV header within the label sector.
    pub contents_offset: u32,
}

/// Finds and verifies the label in `head` (the first bytes of the device, at
/// most four sectors are examined). `Ok(None)`: no sector starts with
/// `LABELONE`. A `LABELONE` sector that fails any check is an error, never
/// "no label": a damaged PV must not look blank.
pub fn find_label(head: &[u8]) -> Result<Option<(Label, &[u8])>, LvmReadError> {
    for (index, sector) in head
        .chunks(SECTOR_SIZE)
        .take(LABEL_SCAN_SECTORS)
        .enumerate()
    {
        if !sector.starts_with(LABEL_ID) {
            continue;
        }
        let offset = (index * SECTOR_SIZE) as u64;
        if sector.len() < SECTOR_SIZE {
            return Err(LvmReadError::Truncated {
                what: "LVM label sector",
                offset,
                wanted: SECTOR_SIZE as u64,
                got: sector.len() as u64,
            });
        }
        return parse_label_sector(sector, index as u64).map(|l| Some((l, sector)));
    }
    Ok(None)
}

/// Verifies one 512-byte sector that starts with `LABELONE`, found at sector
/// number `sector`.
pub fn parse_label_sector(sector: &[u8], index: u64) -> Result<Label, LvmReadError> {
    let offset = index * SECTOR_SIZE as u64;
    let bad = |found: String, expected: String| LvmReadError::Label {
        offset,
        found,
        expected,
    };
    if sector.len() != SECTOR_SIZE {
        return Err(bad(
            format!("a {}-byte label sector", sector.len()),
            format!("{SECTOR_SIZE} bytes"),
        ));
    }
    if !sector.starts_with(LABEL_ID) {
        return Err(bad(show_bytes(&sector[..8]), "\"LABELONE\"".into()));
    }
    let claimed = le_u64(sector, 8).unwrap_or(u64::MAX);
    if claimed != index {
        return Err(bad(
            format!("a label that says it lives in sector {claimed}"),
            format!("sector {index}, where it was found"),
        ));
    }
    let stored = le_u32(sector, 16).unwrap_or(0);
    let computed = lvm_crc(&sector[20..]);
    if stored != computed {
        return Err(LvmReadError::LabelChecksum {
            offset,
            stored,
            computed,
        });
    }
    let contents_offset = le_u32(sector, 20).unwrap_or(0);
    let co = contents_offset as usize;
    if !(LABEL_HEADER_SIZE..SECTOR_SIZE).contains(&co) {
        return Err(bad(
            format!("PV header offset {contents_offset}"),
            format!("an offset in {LABEL_HEADER_SIZE}..{SECTOR_SIZE}"),
        ));
    }
    if &sector[24..32] != LABEL_TYPE {
        return Err(bad(
            format!("label type {}", show_bytes(&sector[24..32])),
            "\"LVM2 001\" (the only label type LVM2 writes)".into(),
        ));
    }
    Ok(Label {
        sector: index,
        contents_offset,
    })
}
