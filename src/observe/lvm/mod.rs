//! A native reader of LVM2's on-disk metadata: label, PV header, metadata-area
//! header and the VG metadata text, read straight off a block device with
//! every checksum verified. No `lvm` process runs, nothing is written and
//! nothing is activated.
//!
//! Where things are on a PV (byte offsets; a typical `pvcreate`):
//! ```text
//!     512  label sector: "LABELONE", sector no., crc, "LVM2 001"   (label.rs)
//!     544  PV header: uuid, device size, data/metadata/bootloader  (pv_header.rs)
//!          area lists
//!    4096  metadata area header: crc, magic, start, size, raw_locns (mda.rs)
//!    4608  circular buffer of VG metadata text                     (text.rs,
//! 1048576  first physical extent (pe_start)                         metadata.rs)
//! ```
//!
//! Facts a consumer (the planner) can rely on:
//! - The VG `seqno` is in the VG text ([`VgMetadata::seqno`]); every
//!   metadata change increments it, so an unchanged seqno proves nothing was
//!   written. VG tags are [`VgMetadata::tags`], verbatim.
//! - A PV is identified by its uuid; the `device` path in the VG text
//!   ([`PvInMetadata::device_hint`]) is only where LVM last saw it.
//! - Thin pool `P` is an LV with a `thin-pool` segment naming its hidden
//!   sub-LVs `P_tdata` (data) and `P_tmeta` (metadata); a VG with a pool also
//!   has the hidden spare `lvol0_pmspare`. Hidden LVs lack `VISIBLE` in their
//!   status ([`LvInMetadata::is_visible`]). Thin LVs have a `thin` segment naming
//!   the pool.
//! - A PV made with `--pvmetadatacopies 0` carries no VG text:
//!   [`PvOnDisk::vg_metadata`] is `None` although [`PvOnDisk::is_in_vg`] is true.
//! - The text is read from the committed location only; with several copies
//!   the highest seqno wins and every copy must verify.
//!
//! What the reader returns, and what it refuses: a device with no `LABELONE`
//! in its first four sectors is `Ok(None)`. A label, header or text that is
//! present but damaged (bad checksum, impossible offsets, bad syntax) is an
//! [`LvmReadError`], never "no LVM here".

mod crc;
mod error;
mod io;
pub mod label;
pub mod mda;
pub mod metadata;
pub mod pv_header;
pub mod synthetic;
pub mod text;
pub mod uuid;

use std::io::{Read, Seek};
use std::path::Path;

use serde::Serialize;

pub use crc::{calc_crc, lvm_crc, INITIAL_CRC};
pub use error::LvmReadError;
pub use io::PositionedReader;
pub use mda::{MdaHeader, RawLocn, RingCopy};
pub use metadata::{LvInMetadata, PvInMetadata, Segment, SegmentKind, VgMetadata};
pub use pv_header::{Area, PV_EXT_USED};
pub use uuid::{LvmUuid, UuidError};

use crate::units::Bytes;
use label::{LABEL_SCAN_SECTORS, SECTOR_SIZE};

/// Everything LVM keeps on one PV.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PvOnDisk {
    /// Sector (0..4) holding the label; LVM writes it to sector 1.
    pub label_sector: u64,
    /// PV uuid (shown as LVM prints it, 6-4-4-4-4-4-6).
    pub pv_uuid: LvmUuid,
    /// Device size recorded in the PV header (updated by pvresize).
    pub device_size: Bytes,
    /// Data areas; `data_areas[0].offset` is `pe_start` in bytes.
    pub data_areas: Vec<Area>,
    /// Metadata areas (offset and size in bytes).
    pub metadata_areas: Vec<Area>,
    /// Bootloader areas (PV header extension version 2).
    pub bootloader_areas: Vec<Area>,
    /// PV header extension version (0 = none, 2 = current).
    pub extension_version: u32,
    /// PV header extension flags; [`PV_EXT_USED`] = the PV belongs to a VG.
    pub extension_flags: u32,
    /// What each metadata area holds, in the order of `metadata_areas`.
    pub metadata_area_states: Vec<MetadataAreaState>,
    /// The VG metadata: the newest (highest seqno) copy among the metadata
    /// areas. `None` when no area holds any: an orphan PV, or a PV of a VG
    /// created with `--pvmetadatacopies 0` (then [`Self::is_in_vg`] is true).
    /// Serialised as `metadata`: the `metadata` subcommand's JSON shape.
    #[serde(rename = "metadata")]
    pub vg_metadata: Option<VgMetadata>,
    /// `seqno` of [`Self::vg_metadata`].
    pub mda_seqno: Option<u64>,
    /// Metadata areas whose committed text does not match its recorded checksum:
    /// a commit whose header reached the disk and whose text did not (a power loss
    /// before the disk flushed its cache), or damage. Their text is not read into
    /// [`Self::vg_metadata`]; the intact older copies still in their buffers are
    /// listed instead. Absent from the JSON when empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub torn_areas: Vec<TornArea>,
    /// Metadata areas whose header sector is all zeros: `pvcreate` wrote the label
    /// and the disk lost the area's header (a power loss before its cache flushed).
    /// LVM cannot read such a PV (`found magic bytes 00 …`) nor `pvcreate -ff` it.
    /// Absent from the JSON when empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unwritten_areas: Vec<UnwrittenArea>,
}

/// A metadata area the label lists whose header was never written (its sector is
/// all zeros), and what its buffer holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnwrittenArea {
    /// Byte offset of the area on the device.
    pub start: u64,
    /// Area size in bytes, header included (as the PV header lists it).
    pub size: u64,
    /// Intact copies of VG metadata in the area's buffer (an earlier PV's, left by
    /// a reset: `pvremove` erases the label, not the buffer).
    pub copies: Vec<RingCopy>,
    /// Non-zero sectors of the buffer no copy accounts for, as area offsets.
    pub stray_sectors: Vec<u64>,
    /// Area offsets where this PV's uuid appears in the buffer (in a copy or not):
    /// text written for this PV.
    pub pv_uuid_at: Vec<u64>,
}

/// A metadata area whose header points at text that does not match the checksum the
/// header records for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TornArea {
    /// Byte offset of the area on the device.
    pub start: u64,
    /// Area size in bytes, header included.
    pub size: u64,
    /// The committed slot, pointing at the text that is not there.
    pub committed: RawLocn,
    /// What the bytes the slot points at sum to.
    pub computed_checksum: u32,
    /// Intact copies of VG metadata still in the area's buffer, in buffer order
    /// ([`mda::search_ring`]).
    pub copies: Vec<RingCopy>,
    /// Non-zero sectors of the buffer no copy and not the torn text accounts for
    /// ([`mda::stray_sectors`]), as area offsets.
    pub stray_sectors: Vec<u64>,
}

/// What one metadata area holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MetadataAreaState {
    /// Byte offset of the area on the device.
    pub start: u64,
    /// Area size in bytes, header included.
    pub size: u64,
    /// The area is marked ignored (`pvchange --metadataignore y`).
    pub ignored: bool,
    /// Where the committed text is (absent: the area holds no metadata).
    pub committed: Option<RawLocn>,
    /// The `seqno` of the text in this area.
    pub seqno: Option<u64>,
}

impl PvOnDisk {
    /// Where the first extent starts.
    pub fn pe_start_bytes(&self) -> Option<Bytes> {
        self.data_areas.first().map(|a| Bytes::from(a.offset))
    }

    /// True when this PV belongs to a VG: it holds VG metadata, or its
    /// header's extension flag says so (a PV without metadata copies).
    pub fn is_in_vg(&self) -> bool {
        self.vg_metadata.is_some() || self.extension_flags & PV_EXT_USED != 0
    }

    /// This PV's own entry in its VG's metadata.
    pub fn in_vg_metadata(&self) -> Option<&PvInMetadata> {
        self.vg_metadata.as_ref()?.pv_by_id(&self.pv_uuid)
    }
}

/// Reads the LVM state of the block device (or image file) at `dev`.
/// `Ok(None)`: the device carries no LVM label.
pub fn read_pv_on_disk(dev: &Path) -> Result<Option<PvOnDisk>, LvmReadError> {
    let device = dev.display().to_string();
    let mut file = crate::ffi::open::open_read_only(dev, 0)
        .map(io::PositionedReader::new)
        .map_err(|source| LvmReadError::Io {
            device: device.clone(),
            what: "device (opening read-only)",
            offset: 0,
            source,
        })?;
    parse_pv_on_disk(&mut file).map_err(|e| match e {
        LvmReadError::Io {
            what,
            offset,
            source,
            ..
        } => LvmReadError::Io {
            device,
            what,
            offset,
            source,
        },
        other => other,
    })
}

/// Reads the LVM state from any seekable byte source (a device, an image
/// file, a `Cursor` over bytes). `Ok(None)`: no LVM label.
pub fn parse_pv_on_disk<R: Read + Seek>(mut reader: R) -> Result<Option<PvOnDisk>, LvmReadError> {
    let r = &mut reader;
    let head = io::read_up_to(
        r,
        0,
        (LABEL_SCAN_SECTORS * SECTOR_SIZE) as u64,
        "label sectors",
    )?;
    let Some((label, sector)) = label::find_label(&head)? else {
        return Ok(None);
    };
    let sector_offset = label.sector * SECTOR_SIZE as u64;
    let header = pv_header::parse_pv_header(sector, label.contents_offset as usize, sector_offset)?;

    let mut states = Vec::with_capacity(header.metadata_areas.len());
    let mut best: Option<(u64, VgMetadata)> = None;
    let mut torn_areas = Vec::new();
    let mut unwritten_areas = Vec::new();
    for area in &header.metadata_areas {
        let raw = io::read_exact_at(r, area.offset, mda::MDA_HEADER_SIZE, "metadata area header")?;
        if raw.iter().all(|b| *b == 0) {
            // Never written: what the buffer holds is searched as in a torn area,
            // with no slot of its own.
            let blank = mda::MdaHeader {
                start: area.offset,
                size: area.size,
                raw_locns: Vec::new(),
            };
            let dashed = header.pv_uuid.dashed();
            let buffer = mda::search_unwritten_area(
                r,
                &blank,
                &[dashed.as_bytes(), header.pv_uuid.undashed().as_bytes()],
            )?;
            unwritten_areas.push(UnwrittenArea {
                start: area.offset,
                size: area.size,
                copies: buffer.copies,
                stray_sectors: buffer.stray_sectors,
                pv_uuid_at: buffer.found_at,
            });
            states.push(MetadataAreaState {
                start: area.offset,
                size: area.size,
                ignored: false,
                committed: None,
                seqno: None,
            });
            continue;
        }
        let mdah = mda::parse_mda_header(&raw, area.offset, area.size)?;
        let mut state = MetadataAreaState {
            start: mdah.start,
            size: mdah.size,
            ignored: mdah.is_ignored(),
            committed: None,
            seqno: None,
        };
        if let Some(locn) = mdah.committed() {
            let text = match mda::read_metadata_text(r, &mdah, &locn) {
                Err(LvmReadError::MetadataChecksum { computed, .. }) => {
                    state.committed = Some(locn);
                    states.push(state);
                    // The bytes the slot points at are the torn text itself,
                    // whatever they parse as.
                    let (copies, stray_sectors) = mda::search_ring_and_strays(r, &mdah, &locn)?;
                    torn_areas.push(TornArea {
                        start: mdah.start,
                        size: mdah.size,
                        committed: locn,
                        computed_checksum: computed,
                        copies,
                        stray_sectors,
                    });
                    continue;
                }
                other => other?,
            };
            let vg = parse_metadata_text(&text).map_err(|e| e.at_mda(mdah.start))?;
            state.committed = Some(locn);
            state.seqno = Some(vg.seqno);
            best = Some(match best.take() {
                None => (mdah.start, vg),
                Some((first_offset, first)) => {
                    if first.id != vg.id {
                        return Err(LvmReadError::MdaDisagree {
                            first_offset,
                            first_vg: first.name,
                            first_id: first.id.to_string(),
                            second_offset: mdah.start,
                            second_vg: vg.name,
                            second_id: vg.id.to_string(),
                        });
                    }
                    if vg.seqno > first.seqno {
                        (mdah.start, vg)
                    } else {
                        (first_offset, first)
                    }
                }
            });
        }
        states.push(state);
    }
    let vg_metadata = best.map(|(_, vg)| vg);
    Ok(Some(PvOnDisk {
        label_sector: label.sector,
        pv_uuid: header.pv_uuid,
        device_size: Bytes::from(header.device_size),
        data_areas: header.data_areas,
        metadata_areas: header.metadata_areas,
        bootloader_areas: header.bootloader_areas,
        extension_version: header.extension_version,
        extension_flags: header.extension_flags,
        metadata_area_states: states,
        mda_seqno: vg_metadata.as_ref().map(|m| m.seqno),
        vg_metadata,
        torn_areas,
        unwritten_areas,
    }))
}

/// Parses a VG metadata text (as stored in a metadata area or written by
/// `vgcfgbackup`) into typed metadata.
pub fn parse_metadata_text(text: &[u8]) -> Result<VgMetadata, LvmReadError> {
    let tree = text::parse(text)?;
    metadata::from_tree(&tree)
}

#[cfg(test)]
pub(crate) mod tests;
