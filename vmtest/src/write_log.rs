//! The write log QEMU's `blklogwrites` block driver keeps on the host: the format of
//! the kernel's dm-log-writes target, so every write, flush and FUA the guest sent to
//! a disk can be replayed in order onto the image the run started from.
//!
//! ```text
//! sector 0      superblock: u64 magic, u64 version, u64 nr_entries, u32 sector size
//! sector 1      entry 0: u64 sector, u64 nr_sectors, u64 flags, u64 data_len
//! sector 2..    entry 0's data: nr_sectors sectors (writes only)
//! …             entry 1, its data, …
//! ```
//! All numbers little-endian; `sector` and `nr_sectors` count log sectors
//! (the superblock's sector size, 512 unless the log was made otherwise).

/// `WRITE_LOG_MAGIC` of dm-log-writes.
pub const LOG_MAGIC: u64 = 0x006a_7366_7773_6872;
/// The only version dm-log-writes and QEMU write.
pub const LOG_VERSION: u64 = 1;
/// A cache flush: every write completed before it is durable.
pub const FLAG_FLUSH: u64 = 1;
/// Forced unit access: this write is durable once it completed.
pub const FLAG_FUA: u64 = 2;
pub const FLAG_DISCARD: u64 = 4;
/// A userspace mark (dm-log-writes' `dmsetup message`); QEMU writes none.
pub const FLAG_MARK: u64 = 8;

/// One logged request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// First sector (of the log's sector size) the request covers.
    pub sector: u64,
    pub nr_sectors: u64,
    pub flags: u64,
    /// The written bytes (`nr_sectors` × sector size); empty for flushes,
    /// discards and marks.
    pub data: Vec<u8>,
}

impl LogEntry {
    pub fn is_flush(&self) -> bool {
        self.flags & FLAG_FLUSH != 0
    }

    pub fn is_fua(&self) -> bool {
        self.flags & FLAG_FUA != 0
    }

    pub fn is_discard(&self) -> bool {
        self.flags & FLAG_DISCARD != 0
    }

    /// A request that changes the disk's content: a write with data or a discard.
    pub fn changes_content(&self) -> bool {
        self.flags & FLAG_MARK == 0 && self.nr_sectors > 0
    }
}

/// A parsed log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteLog {
    pub sector_size: u32,
    pub entries: Vec<LogEntry>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LogError {
    #[error("the write log is {0} bytes, shorter than its 28-byte superblock")]
    Short(usize),
    #[error(
        "the write log's magic is {found:#x}, expected {LOG_MAGIC:#x} (not a dm-log-writes log)"
    )]
    Magic { found: u64 },
    #[error("the write log has version {0}, expected {LOG_VERSION}")]
    Version(u64),
    #[error("the write log's sector size is {0}; expected a power of two from 512 to 65536")]
    SectorSize(u32),
    #[error(
        "the write log's superblock records {expected} entries, but entry {index} at byte \
         {offset} runs past the end of the {len}-byte file (a log whose QEMU was killed?)"
    )]
    Truncated {
        expected: u64,
        index: u64,
        offset: u64,
        len: usize,
    },
    #[error("entry {index} of the write log holds an impossible number ({what})")]
    Overflow { index: u64, what: &'static str },
}

fn le64(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

/// Parses a whole log file.
pub fn parse(bytes: &[u8]) -> Result<WriteLog, LogError> {
    if bytes.len() < 28 {
        return Err(LogError::Short(bytes.len()));
    }
    let magic = le64(bytes, 0);
    if magic != LOG_MAGIC {
        return Err(LogError::Magic { found: magic });
    }
    let version = le64(bytes, 8);
    if version != LOG_VERSION {
        return Err(LogError::Version(version));
    }
    let nr_entries = le64(bytes, 16);
    let sector_size = u32::from_le_bytes([bytes[24], bytes[25], bytes[26], bytes[27]]);
    if !(512..=65536).contains(&sector_size) || !sector_size.is_power_of_two() {
        return Err(LogError::SectorSize(sector_size));
    }
    let ss = u64::from(sector_size);
    let mut entries = Vec::new();
    let mut offset = ss;
    for index in 0..nr_entries {
        let truncated = || LogError::Truncated {
            expected: nr_entries,
            index,
            offset,
            len: bytes.len(),
        };
        let header_end = offset.checked_add(32).ok_or_else(truncated)?;
        if header_end > bytes.len() as u64 {
            return Err(truncated());
        }
        let at = offset as usize;
        let sector = le64(bytes, at);
        let nr_sectors = le64(bytes, at + 8);
        let flags = le64(bytes, at + 16);
        let carries_data = flags & (FLAG_DISCARD | FLAG_MARK) == 0 && nr_sectors > 0;
        let data_len = if carries_data {
            nr_sectors.checked_mul(ss).ok_or(LogError::Overflow {
                index,
                what: "nr_sectors × sector size",
            })?
        } else {
            0
        };
        sector
            .checked_add(nr_sectors)
            .and_then(|end| end.checked_mul(ss))
            .ok_or(LogError::Overflow {
                index,
                what: "sector + nr_sectors",
            })?;
        let data_start = offset + ss;
        let data_end = data_start.checked_add(data_len).ok_or_else(truncated)?;
        if data_end > bytes.len() as u64 {
            return Err(truncated());
        }
        entries.push(LogEntry {
            sector,
            nr_sectors,
            flags,
            data: bytes[data_start as usize..data_end as usize].to_vec(),
        });
        offset = data_end;
    }
    Ok(WriteLog {
        sector_size,
        entries,
    })
}

/// Applies `entry` to `image` (an image file's bytes, grown if the write reaches past
/// its end): writes put their data, discards zero (QEMU's `discard=unmap` punches
/// holes, which read back as zeros).
pub fn apply(image: &mut Vec<u8>, entry: &LogEntry, sector_size: u32) {
    if !entry.changes_content() {
        return;
    }
    let ss = sector_size as usize;
    let start = entry.sector as usize * ss;
    let len = entry.nr_sectors as usize * ss;
    if image.len() < start + len {
        image.resize(start + len, 0);
    }
    if entry.is_discard() {
        image[start..start + len].fill(0);
    } else {
        image[start..start + len].copy_from_slice(&entry.data);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a log the way QEMU writes one: (sector, flags, data sectors' bytes).
    pub(crate) fn build(entries: &[(u64, u64, Vec<u8>)], nr_sectors_of_discard: u64) -> Vec<u8> {
        let mut out = vec![0u8; 512];
        out[0..8].copy_from_slice(&LOG_MAGIC.to_le_bytes());
        out[8..16].copy_from_slice(&LOG_VERSION.to_le_bytes());
        out[16..24].copy_from_slice(&(entries.len() as u64).to_le_bytes());
        out[24..28].copy_from_slice(&512u32.to_le_bytes());
        for (sector, flags, data) in entries {
            let mut header = vec![0u8; 512];
            let nr = if flags & FLAG_DISCARD != 0 {
                nr_sectors_of_discard
            } else {
                data.len() as u64 / 512
            };
            header[0..8].copy_from_slice(&sector.to_le_bytes());
            header[8..16].copy_from_slice(&nr.to_le_bytes());
            header[16..24].copy_from_slice(&flags.to_le_bytes());
            header[24..32].copy_from_slice(&(data.len() as u64).to_le_bytes());
            out.extend_from_slice(&header);
            out.extend_from_slice(data);
        }
        out
    }

    #[test]
    fn parses_writes_flushes_and_discards_in_order() {
        let bytes = build(
            &[
                (8, 0, vec![1u8; 1024]),
                (0, FLAG_FLUSH, Vec::new()),
                (100, FLAG_FUA, vec![2u8; 512]),
                (64, FLAG_DISCARD, Vec::new()),
            ],
            16,
        );
        let log = parse(&bytes).expect("valid log");
        assert_eq!(log.sector_size, 512);
        assert_eq!(log.entries.len(), 4);
        assert_eq!(log.entries[0].sector, 8);
        assert_eq!(log.entries[0].nr_sectors, 2);
        assert_eq!(log.entries[0].data, vec![1u8; 1024]);
        assert!(log.entries[1].is_flush() && !log.entries[1].changes_content());
        assert!(log.entries[2].is_fua());
        assert!(log.entries[3].is_discard() && log.entries[3].data.is_empty());
        assert_eq!(log.entries[3].nr_sectors, 16);
    }

    #[test]
    fn replaying_reproduces_the_writes() {
        let bytes = build(
            &[
                (1, 0, vec![7u8; 512]),
                (1, 0, vec![9u8; 512]),
                (2, FLAG_DISCARD, Vec::new()),
            ],
            1,
        );
        let log = parse(&bytes).expect("valid log");
        let mut image = vec![5u8; 4 * 512];
        for e in &log.entries {
            apply(&mut image, e, log.sector_size);
        }
        assert_eq!(&image[..512], &[5u8; 512][..]);
        assert_eq!(&image[512..1024], &[9u8; 512][..]);
        assert_eq!(&image[1024..1536], &[0u8; 512][..]);
        assert_eq!(&image[1536..], &[5u8; 512][..]);
    }

    #[test]
    fn rejects_what_is_not_a_complete_log() {
        assert_eq!(parse(&[0u8; 10]), Err(LogError::Short(10)));
        assert!(matches!(
            parse(&[0u8; 512]),
            Err(LogError::Magic { found: 0 })
        ));
        let mut bytes = build(&[(8, 0, vec![1u8; 1024])], 0);
        bytes.truncate(bytes.len() - 1);
        assert!(matches!(
            parse(&bytes),
            Err(LogError::Truncated { index: 0, .. })
        ));
        let mut bytes = build(&[], 0);
        bytes[24..28].copy_from_slice(&500u32.to_le_bytes());
        assert_eq!(parse(&bytes), Err(LogError::SectorSize(500)));
        let mut huge = build(&[(u64::MAX, 0, vec![0u8; 512])], 0);
        huge[512 + 8..512 + 16].copy_from_slice(&1u64.to_le_bytes());
        assert!(matches!(parse(&huge), Err(LogError::Overflow { .. })));
    }
}
