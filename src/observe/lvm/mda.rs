//! The metadata area: a 512-byte header, then a circular buffer of VG text.
//!
//! Header layout (little-endian):
//! ```text
//!  0  checksum  u32      LVM checksum of bytes 4..512
//!  4  magic     16 bytes " LVM2 x[5A%r0N*>"
//! 20  version   u32      1
//! 24  start     u64      byte offset of this area on the device
//! 32  size      u64      size of the area including this header
//! 40  raw_locns[0] (offset u64, size u64, checksum u32, flags u32)  slot 0
//! 64  raw_locns[1] (same layout)                                  slot 1
//! ```
//! LVM2 (`lib/format_text/format-text.c`) uses exactly these two slots, by index:
//! slot 0 locates the committed metadata text (offset relative to the area
//! start), slot 1 the text of a change being committed. Slot 0 is empty when its
//! offset and size are both 0 (an orphan PV), and its flags say whether the whole
//! area is ignored: an ignored area (`pvcreate --metadataignore y`, `vgchange
//! --vgmetadatacopies N`) is written as `{0, 0, 0, RAW_LOCN_IGNORED}`. So the
//! slots are read by position, never cut at the first zero offset. Text that
//! reaches the end of the area continues right after the header (at area start +
//! 512); its checksum covers both parts in order.

use std::io::{Read, Seek};

use serde::Serialize;

use super::crc::{calc_crc, lvm_crc, INITIAL_CRC};
use super::io::{le_u32, le_u64, read_exact_at, show_bytes};
use super::LvmReadError;

/// Size of the metadata-area header.
pub const MDA_HEADER_SIZE: u64 = 512;
/// Magic of a text-format metadata area.
pub const FMTT_MAGIC: &[u8; 16] = b" LVM2 x[5A%r0N*>";
/// The only metadata-area version.
pub const FMTT_VERSION: u32 = 1;
/// `raw_locn` flag: this area is ignored (`pvchange --metadataignore y`).
pub const RAW_LOCN_IGNORED: u32 = 0x1;
/// The most metadata text this reader accepts (LVM's own texts are a few KiB
/// to a few MiB; this bounds what a hostile header can make us allocate).
pub const MAX_METADATA_TEXT: u64 = 16 * 1024 * 1024;

const RAW_LOCN_START: usize = 40;
const RAW_LOCN_SIZE: usize = 24;
/// Slots LVM reads: 0 = committed, 1 = precommitted.
const RAW_LOCN_SLOTS: usize = 2;

/// Where one copy of the metadata text is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RawLocn {
    /// Offset of the text from the start of the metadata area.
    pub offset: u64,
    /// Length of the text in bytes.
    pub size: u64,
    /// LVM checksum of the text.
    pub checksum: u32,
    /// Flags ([`RAW_LOCN_IGNORED`]).
    pub flags: u32,
}

/// A verified metadata-area header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MdaHeader {
    /// Byte offset of the area on the device.
    pub start: u64,
    /// Size of the area in bytes, header included.
    pub size: u64,
    /// The two text slots as stored (`[0]` = committed, `[1]` = precommitted),
    /// empty slots included.
    pub raw_locns: Vec<RawLocn>,
}

impl MdaHeader {
    /// The committed metadata location: slot 0, unless the area is ignored or
    /// the slot is empty (offset and size 0), as LVM2 decides.
    pub fn committed(&self) -> Option<RawLocn> {
        self.raw_locns
            .first()
            .copied()
            .filter(|r| r.flags & RAW_LOCN_IGNORED == 0)
            .filter(|r| r.offset != 0 || r.size != 0)
    }

    /// True when the area is marked ignored.
    pub fn is_ignored(&self) -> bool {
        self.raw_locns
            .first()
            .is_some_and(|r| r.flags & RAW_LOCN_IGNORED != 0)
    }
}

/// Parses and verifies a 512-byte metadata-area header read from byte
/// `expected_start` of the device, in an area the PV header says is
/// `area_size` bytes long.
pub fn parse_mda_header(
    buf: &[u8],
    expected_start: u64,
    area_size: u64,
) -> Result<MdaHeader, LvmReadError> {
    let at = |pos: u64| expected_start.saturating_add(pos);
    let bad = |pos: u64, found: String, expected: String| LvmReadError::MdaHeader {
        offset: at(pos),
        found,
        expected,
    };
    let buf = match buf.get(..MDA_HEADER_SIZE as usize) {
        Some(b) => b,
        None => {
            return Err(LvmReadError::Truncated {
                what: "metadata area header",
                offset: expected_start,
                wanted: MDA_HEADER_SIZE,
                got: buf.len() as u64,
            })
        }
    };
    let stored = le_u32(buf, 0).unwrap_or(0);
    let computed = lvm_crc(&buf[4..]);
    if stored != computed {
        // A wrong magic explains a wrong checksum better: say that first.
        if &buf[4..20] != FMTT_MAGIC {
            return Err(bad(
                4,
                format!("magic {}", show_bytes(&buf[4..20])),
                format!("{:?} (no LVM metadata area here)", " LVM2 x[5A%r0N*>"),
            ));
        }
        return Err(LvmReadError::MdaHeaderChecksum {
            offset: expected_start,
            stored,
            computed,
        });
    }
    if &buf[4..20] != FMTT_MAGIC {
        return Err(bad(
            4,
            format!("magic {}", show_bytes(&buf[4..20])),
            format!("{:?}", " LVM2 x[5A%r0N*>"),
        ));
    }
    let version = le_u32(buf, 20).unwrap_or(0);
    if version != FMTT_VERSION {
        return Err(bad(
            20,
            format!("version {version}"),
            format!("version {FMTT_VERSION}"),
        ));
    }
    let start = le_u64(buf, 24).unwrap_or(0);
    if start != expected_start {
        return Err(bad(
            24,
            format!("an area that says it starts at byte {start}"),
            format!("byte {expected_start}, where the PV header put it"),
        ));
    }
    let size = le_u64(buf, 32).unwrap_or(0);
    if size <= MDA_HEADER_SIZE || (area_size != 0 && size > area_size) {
        return Err(bad(
            32,
            format!("area size {size}"),
            format!(
                "more than the {MDA_HEADER_SIZE}-byte header and at most the \
                 {area_size} bytes the PV header gives the area"
            ),
        ));
    }
    if start.checked_add(size).is_none() {
        return Err(bad(
            32,
            format!("an area of {size} bytes at byte {start}, past 2^64"),
            "an area inside the device".into(),
        ));
    }
    // Both slots are read by position: an empty or ignored slot 0 still carries
    // the area's flags.
    let raw_locns = (0..RAW_LOCN_SLOTS)
        .map(|slot| {
            let pos = RAW_LOCN_START + slot * RAW_LOCN_SIZE;
            RawLocn {
                offset: le_u64(buf, pos).unwrap_or(0),
                size: le_u64(buf, pos + 8).unwrap_or(0),
                checksum: le_u32(buf, pos + 16).unwrap_or(0),
                flags: le_u32(buf, pos + 20).unwrap_or(0),
            }
        })
        .collect();
    Ok(MdaHeader {
        start,
        size,
        raw_locns,
    })
}

/// Checks `locn` against the area and returns the one or two device ranges
/// `(offset, len)` the text occupies (two when it wraps).
pub fn text_ranges(header: &MdaHeader, locn: &RawLocn) -> Result<Vec<(u64, u64)>, LvmReadError> {
    let bad = |pos: u64, found: String, expected: String| LvmReadError::MdaHeader {
        offset: header.start.saturating_add(pos),
        found,
        expected,
    };
    // Checked by parse_mda_header; checked again so any header is safe here.
    let ring = header
        .size
        .checked_sub(MDA_HEADER_SIZE)
        .filter(|r| *r > 0 && header.start.checked_add(header.size).is_some())
        .ok_or_else(|| {
            bad(
                32,
                format!("area size {} at byte {}", header.size, header.start),
                format!("more than {MDA_HEADER_SIZE} bytes, inside the device"),
            )
        })?;
    if locn.offset < MDA_HEADER_SIZE || locn.offset >= header.size {
        return Err(bad(
            RAW_LOCN_START as u64,
            format!("metadata text offset {}", locn.offset),
            format!(
                "an offset in {MDA_HEADER_SIZE}..{} (inside the area, after its header)",
                header.size
            ),
        ));
    }
    if locn.size == 0 || locn.size > ring || locn.size > MAX_METADATA_TEXT {
        return Err(bad(
            RAW_LOCN_START as u64 + 8,
            format!("metadata text size {}", locn.size),
            format!(
                "1..={} bytes (the area's buffer{})",
                ring.min(MAX_METADATA_TEXT),
                if ring > MAX_METADATA_TEXT {
                    ", capped by this reader"
                } else {
                    ""
                }
            ),
        ));
    }
    // offset < size and start + size fits, so none of these can overflow.
    let first = locn.size.min(header.size.saturating_sub(locn.offset));
    let mut ranges = vec![(header.start.saturating_add(locn.offset), first)];
    let second = locn.size.saturating_sub(first);
    if second > 0 {
        ranges.push((header.start.saturating_add(MDA_HEADER_SIZE), second));
    }
    Ok(ranges)
}

/// Reads the text at `locn`, verifies its checksum, and returns it with
/// trailing NUL bytes removed.
pub fn read_metadata_text<R: Read + Seek>(
    r: &mut R,
    header: &MdaHeader,
    locn: &RawLocn,
) -> Result<Vec<u8>, LvmReadError> {
    let ranges = text_ranges(header, locn)?;
    let mut text = Vec::new();
    let mut crc = INITIAL_CRC;
    for (offset, len) in ranges {
        let part = read_exact_at(r, offset, len, "metadata text")?;
        crc = calc_crc(crc, &part);
        text.extend_from_slice(&part);
    }
    if crc != locn.checksum {
        return Err(LvmReadError::MetadataChecksum {
            offset: header.start.saturating_add(locn.offset),
            size: locn.size,
            stored: locn.checksum,
            computed: crc,
        });
    }
    while text.last() == Some(&0) {
        text.pop();
    }
    Ok(text)
}

/// An intact copy of VG metadata text found in an area's circular buffer without a
/// header slot pointing at it (see [`search_ring`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RingCopy {
    /// Offset of the text from the start of the metadata area (as in a `raw_locn`).
    pub offset: u64,
    /// Its length with the terminating NUL (what LVM records in a `raw_locn`).
    pub size: u64,
    /// LVM checksum of those bytes: what LVM recorded when it wrote them.
    pub checksum: u32,
    /// `seqno` of the VG in the text.
    pub seqno: u64,
    /// The NUL is followed by zeros up to the next sector, as LVM's own commits
    /// leave it (`pvck --repair` writes no padding). Only a padded copy is restored;
    /// an unpadded one still counts as text found in the buffer.
    pub padded: bool,
    /// The VG the text describes.
    #[serde(skip)]
    pub metadata: super::VgMetadata,
}

/// The longest first line (`<vg name> {`) a copy can start with: LVM's names are at
/// most 127 bytes.
const MAX_VG_LINE: usize = 130;

/// Every intact copy of VG metadata text in `header`'s circular buffer, in buffer
/// order, as pvck's `--dump metadata_search` finds them (LVM 2.03.16
/// `tools/pvck.c`, `_dump_all_text`): LVM starts every copy on a 512-byte boundary
/// of the buffer, so each sector is tried as a start.
///
/// No checksum is recorded for a copy that no header slot points at, so a copy is
/// taken as a copy only when it is what LVM's `_vg_write_raw` leaves: it
/// starts on a sector with the line `<vg name> {`; it ends at the first NUL byte
/// (continuing after the header when it reaches the end of the area, as a wrapped
/// copy does); and the whole text parses as a volume group of that name (grammar
/// and every field this reader checks). [`RingCopy::padded`] says whether the NUL is
/// followed by zeros up to the next sector boundary, as LVM pads each copy's last
/// sector (a copy mixing sectors of two writes fails one of these); `pvck --repair`
/// leaves no padding, so an unpadded copy is text found, not one to restore. Its checksum is computed here, so the
/// copy can be checked again, byte for byte, before it is written back.
pub fn search_ring<R: Read + Seek>(
    r: &mut R,
    header: &MdaHeader,
) -> Result<Vec<RingCopy>, LvmReadError> {
    check_searchable(header)?;
    let area = read_area(r, header)?;
    Ok(search_area(&area))
}

/// [`search_ring`] and [`stray_sectors`] in one read of the area.
pub fn search_ring_and_strays<R: Read + Seek>(
    r: &mut R,
    header: &MdaHeader,
    slot: &RawLocn,
) -> Result<(Vec<RingCopy>, Vec<u64>), LvmReadError> {
    check_searchable(header)?;
    let area = read_area(r, header)?;
    let copies: Vec<RingCopy> = search_area(&area)
        .into_iter()
        .filter(|copy| copy.offset != slot.offset)
        .collect();
    let strays = stray_sectors(&area, slot.offset, slot.size, &copies);
    Ok((copies, strays))
}

/// What an area's buffer holds, searched without a slot of its own.
pub struct BufferContents {
    pub copies: Vec<RingCopy>,
    pub stray_sectors: Vec<u64>,
    /// Area offsets where any of the searched byte strings appear.
    pub found_at: Vec<u64>,
}

/// What the buffer of an area whose header was never written holds: its intact
/// copies, its stray sectors, and the area offsets where `needles` (a PV's uuid in
/// its forms) appear anywhere in the buffer, in one read of the area.
pub fn search_unwritten_area<R: Read + Seek>(
    r: &mut R,
    header: &MdaHeader,
    needles: &[&[u8]],
) -> Result<BufferContents, LvmReadError> {
    check_searchable(header)?;
    let area = read_area(r, header)?;
    let copies = search_area(&area);
    let strays = stray_sectors(&area, 0, 0, &copies);
    let buffer = area.get(MDA_HEADER_SIZE as usize..).unwrap_or_default();
    let mut found: Vec<u64> = needles
        .iter()
        .filter(|needle| !needle.is_empty())
        .flat_map(|needle| {
            memchr::memmem::find_iter(buffer, needle)
                .map(|at| (at as u64).saturating_add(MDA_HEADER_SIZE))
        })
        .collect();
    found.sort_unstable();
    Ok(BufferContents {
        copies,
        stray_sectors: strays,
        found_at: found,
    })
}

/// An area this reader holds in memory whole.
fn check_searchable(header: &MdaHeader) -> Result<(), LvmReadError> {
    if header.size > MAX_METADATA_TEXT.saturating_mul(2) {
        return Err(LvmReadError::MdaHeader {
            offset: header.start.saturating_add(32),
            found: format!("a metadata area of {} bytes to search", header.size),
            expected: format!(
                "at most {} bytes (this reader's bound)",
                MAX_METADATA_TEXT * 2
            ),
        });
    }
    Ok(())
}

/// The whole area, header included (so that offsets in it are area offsets).
fn read_area<R: Read + Seek>(r: &mut R, header: &MdaHeader) -> Result<Vec<u8>, LvmReadError> {
    let mut area = Vec::new();
    let mut at = 0u64;
    while at < header.size {
        let len = (header.size - at).min(MAX_METADATA_TEXT);
        area.extend(read_exact_at(
            r,
            header.start.saturating_add(at),
            len,
            "metadata area",
        )?);
        at += len;
    }
    Ok(area)
}

/// [`search_ring`] over the bytes of a whole area.
pub fn search_area(area: &[u8]) -> Vec<RingCopy> {
    let sector = MDA_HEADER_SIZE as usize;
    (sector..area.len())
        .step_by(sector)
        .filter_map(|start| copy_at(area, start))
        .collect()
}

/// The intact copy starting at `start` of the area, if one does.
fn copy_at(area: &[u8], start: usize) -> Option<RingCopy> {
    let name = vg_line_name(area.get(start..)?)?;
    let ring_start = MDA_HEADER_SIZE as usize;
    // The text runs to the first NUL, wrapping once past the end of the area.
    let (text, nul_at) = match area[start..].iter().position(|b| *b == 0) {
        Some(len) => (area[start..start + len].to_vec(), start + len),
        None => {
            let rest = area.get(ring_start..start)?;
            let len = rest.iter().position(|b| *b == 0)?;
            let mut text = area[start..].to_vec();
            text.extend_from_slice(&rest[..len]);
            (text, ring_start + len)
        }
    };
    let padding_end = (nul_at / ring_start + 1) * ring_start;
    let padded = area
        .get(nul_at..padding_end.min(area.len()))?
        .iter()
        .all(|b| *b == 0);
    let metadata = super::parse_metadata_text(&text).ok()?;
    if metadata.name != name {
        return None;
    }
    let mut with_nul = text;
    with_nul.push(0);
    Some(RingCopy {
        offset: start as u64,
        size: with_nul.len() as u64,
        checksum: calc_crc(INITIAL_CRC, &with_nul),
        seqno: metadata.seqno,
        padded,
        metadata,
    })
}

/// Where LVM writes the text committed after one at `offset` of `size` bytes (NUL
/// included) in an area of `area_size` bytes: right after it, rounded up to a
/// sector, or back at the start of the buffer when less than a sector is left
/// (LVM 2.03.16 `lib/format_text/format-text.c`, `_next_rlocn_offset`). `None` for
/// numbers no area holds.
pub fn next_text_offset(area_size: u64, offset: u64, size: u64) -> Option<u64> {
    let ring_start = MDA_HEADER_SIZE;
    if size == 0 || offset < ring_start || offset >= area_size {
        return None;
    }
    let end = offset.checked_add(size)?;
    // The last byte, after wrapping past the end of the area.
    let last = if end > area_size {
        ring_start.checked_add(end - area_size)?.checked_sub(1)?
    } else {
        end - 1
    };
    if last >= area_size {
        return None;
    }
    if area_size - last < ring_start {
        return Some(ring_start);
    }
    last.checked_add(1)?.checked_next_multiple_of(ring_start)
}

/// Sectors of the area's buffer (as area offsets) that hold something other than
/// zeros and are neither within the text at `slot_offset`/`slot_size` nor within a
/// copy [`search_area`] found (from its first sector to the one with its NUL):
/// bytes no recognised metadata text accounts for.
pub fn stray_sectors(
    area: &[u8],
    slot_offset: u64,
    slot_size: u64,
    copies: &[RingCopy],
) -> Vec<u64> {
    let sector = MDA_HEADER_SIZE as usize;
    let sectors = area.len() / sector;
    let mut covered = vec![false; sectors];
    let mut cover = |offset: u64, size: u64| {
        let (Ok(offset), Ok(size)) = (usize::try_from(offset), usize::try_from(size)) else {
            return;
        };
        let mut at = offset;
        // Walk the text sector by sector, wrapping once to the buffer's start.
        let mut left = size;
        while left > 0 && at < area.len() && sectors > 1 {
            let in_sector = sector - at % sector;
            if let Some(c) = covered.get_mut(at / sector) {
                *c = true;
            }
            let step = in_sector.min(left);
            left -= step;
            at += step;
            if at >= area.len() {
                at = sector;
            }
        }
    };
    cover(slot_offset, slot_size);
    for copy in copies {
        cover(copy.offset, copy.size);
    }
    (1..sectors)
        .filter(|i| !covered[*i])
        .filter(|i| area[i * sector..(i + 1) * sector].iter().any(|b| *b != 0))
        .map(|i| (i * sector) as u64)
        .collect()
}

/// The VG name of a first line `<name> {` as LVM writes it.
fn vg_line_name(bytes: &[u8]) -> Option<&str> {
    let line_len = bytes.iter().take(MAX_VG_LINE).position(|b| *b == b'\n')?;
    let line = std::str::from_utf8(&bytes[..line_len]).ok()?;
    let name = line.strip_suffix(" {")?;
    let allowed = |c: char| c.is_ascii_alphanumeric() || "+_.-".contains(c);
    (!name.is_empty() && name.chars().all(allowed)).then_some(name)
}
