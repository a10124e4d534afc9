//! The one error type of the LVM reader.

use std::io;

/// Why LVM's on-disk state could not be read. Every variant says where on the
/// device (byte offset) the problem is, what was found and what was expected.
///
/// A device that carries no LVM label at all is *not* an error: the readers
/// return `Ok(None)` for it.
#[derive(Debug, thiserror::Error)]
pub enum LvmReadError {
    /// The device could not be opened or read.
    #[error("cannot read {what} at byte {offset} of {device}: {source}")]
    Io {
        /// The device or file (or `"<reader>"` when reading from a stream).
        device: String,
        /// What was being read.
        what: &'static str,
        /// Where.
        offset: u64,
        /// The OS error.
        #[source]
        source: io::Error,
    },

    /// The device ends before a structure that LVM's headers say is there.
    #[error(
        "device ends early: {what} should be {wanted} bytes at byte {offset}, \
         but only {got} bytes could be read (truncated or damaged device?)"
    )]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Where it starts.
        offset: u64,
        /// How many bytes the headers promise.
        wanted: u64,
        /// How many the device delivered.
        got: u64,
    },

    /// A `LABELONE` sector whose checksum doesn't match its contents.
    #[error(
        "LVM label at byte {offset} has checksum {stored:#010x} but its contents \
         sum to {computed:#010x}: the label is damaged (pvck can inspect it)"
    )]
    LabelChecksum {
        /// Byte offset of the label sector.
        offset: u64,
        /// Checksum stored in the label.
        stored: u32,
        /// Checksum computed over bytes 20..512 of the sector.
        computed: u32,
    },

    /// A structurally wrong label (wrong sector number, type or header offset).
    #[error("LVM label at byte {offset}: found {found}, expected {expected}")]
    Label {
        /// Byte offset of the label sector.
        offset: u64,
        /// What was found.
        found: String,
        /// What LVM writes there.
        expected: String,
    },

    /// The PV header after the label is malformed.
    #[error("LVM PV header at byte {offset}: found {found}, expected {expected}")]
    PvHeader {
        /// Byte offset of the offending field.
        offset: u64,
        /// What was found.
        found: String,
        /// What was expected.
        expected: String,
    },

    /// A metadata-area header whose checksum doesn't match its contents.
    #[error(
        "LVM metadata area header at byte {offset} has checksum {stored:#010x} but \
         its contents sum to {computed:#010x}: the header is damaged"
    )]
    MdaHeaderChecksum {
        /// Byte offset of the metadata-area header.
        offset: u64,
        /// Checksum stored in the header.
        stored: u32,
        /// Checksum computed over bytes 4..512 of the header.
        computed: u32,
    },

    /// A malformed metadata-area header (magic, version, start, size, locations).
    #[error("LVM metadata area header at byte {offset}: found {found}, expected {expected}")]
    MdaHeader {
        /// Byte offset of the offending field.
        offset: u64,
        /// What was found.
        found: String,
        /// What was expected.
        expected: String,
    },

    /// The metadata text doesn't match the checksum recorded for it.
    #[error(
        "LVM metadata text at byte {offset} ({size} bytes) has recorded checksum \
         {stored:#010x} but sums to {computed:#010x}: the metadata is damaged \
         or was being rewritten"
    )]
    MetadataChecksum {
        /// Byte offset where the text starts on the device.
        offset: u64,
        /// Its size in bytes.
        size: u64,
        /// Checksum recorded in the metadata-area header.
        stored: u32,
        /// Checksum of the bytes read.
        computed: u32,
    },

    /// The metadata text is not valid LVM text syntax.
    #[error(
        "LVM metadata text (metadata area at byte {mda_offset}) line {line}, \
         column {column}: {found}, expected {expected}"
    )]
    Syntax {
        /// The metadata area holding the text (0 when parsing text directly).
        mda_offset: u64,
        /// 1-based line in the text.
        line: usize,
        /// 1-based column (bytes) in the line.
        column: usize,
        /// What was found.
        found: String,
        /// What the grammar allows there.
        expected: String,
    },

    /// The text parses but doesn't describe a volume group as LVM writes one.
    #[error("LVM metadata (metadata area at byte {mda_offset}) at {path}: found {found}, expected {expected}")]
    Metadata {
        /// The metadata area holding the text (0 when parsing text directly).
        mda_offset: u64,
        /// Where in the tree, e.g. `vg/logical_volumes/pool/segment1/type`.
        path: String,
        /// What was found.
        found: String,
        /// What was expected.
        expected: String,
    },

    /// Two metadata areas of one PV hold different volume groups.
    #[error(
        "the metadata areas of this PV disagree: byte {first_offset} holds VG \
         {first_vg:?} ({first_id}), byte {second_offset} holds VG {second_vg:?} \
         ({second_id}); expected one VG (vgck can repair)"
    )]
    MdaDisagree {
        /// First metadata area.
        first_offset: u64,
        /// VG name in it.
        first_vg: String,
        /// VG uuid in it.
        first_id: String,
        /// Second metadata area.
        second_offset: u64,
        /// VG name in it.
        second_vg: String,
        /// VG uuid in it.
        second_id: String,
    },
}

impl LvmReadError {
    /// Sets the metadata-area offset on text errors (the parsers don't know it).
    pub(crate) fn at_mda(mut self, offset: u64) -> Self {
        match &mut self {
            LvmReadError::Syntax { mda_offset, .. } | LvmReadError::Metadata { mda_offset, .. } => {
                *mda_offset = offset;
            }
            _ => {}
        }
        self
    }
}
