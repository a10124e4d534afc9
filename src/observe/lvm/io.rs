//! Bounded reads from a seekable byte source.

use std::io::{ErrorKind, Read, Seek, SeekFrom};

use super::LvmReadError;

/// A file read with `pread` at a position kept here: `Seek` changes only that
/// position, so each read of the label, header and metadata text is one system call
/// instead of an `lseek` and a `read`.
pub struct PositionedReader {
    file: std::fs::File,
    position: u64,
}

impl PositionedReader {
    pub fn new(file: std::fs::File) -> Self {
        PositionedReader { file, position: 0 }
    }
}

impl Read for PositionedReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let got = std::os::unix::fs::FileExt::read_at(&self.file, buf, self.position)?;
        self.position = self
            .position
            .checked_add(got as u64)
            .ok_or_else(|| std::io::Error::other("read past the largest file offset"))?;
        Ok(got)
    }
}

impl Seek for PositionedReader {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let out_of_range = || std::io::Error::new(ErrorKind::InvalidInput, "seek out of range");
        self.position = match to {
            SeekFrom::Start(offset) => offset,
            SeekFrom::Current(delta) => self
                .position
                .checked_add_signed(delta)
                .ok_or_else(out_of_range)?,
            // The end is the kernel's to know.
            SeekFrom::End(_) => self.file.seek(to)?,
        };
        Ok(self.position)
    }
}

/// The largest single read the reader ever makes (the metadata-text cap).
pub const MAX_READ: u64 = super::mda::MAX_METADATA_TEXT;

/// Reads up to `len` bytes at `offset`; fewer only when the source ends.
pub fn read_up_to<R: Read + Seek>(
    r: &mut R,
    offset: u64,
    len: u64,
    what: &'static str,
) -> Result<Vec<u8>, LvmReadError> {
    let len = len.min(MAX_READ);
    let io = |source| LvmReadError::Io {
        device: "<reader>".into(),
        what,
        offset,
        source,
    };
    r.seek(SeekFrom::Start(offset)).map_err(io)?;
    // The whole length in one read where the source allows (`read_to_end` starts at
    // 8 KiB and doubles: seven `pread`s for a 1,000-volume text).
    let cap = usize::try_from(len).unwrap_or(usize::MAX);
    let mut buf = vec![0u8; cap];
    let mut filled = 0;
    while let Some(rest) = buf.get_mut(filled..).filter(|rest| !rest.is_empty()) {
        match r.read(rest) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(io(e)),
        }
    }
    buf.truncate(filled);
    Ok(buf)
}

/// Reads exactly `len` bytes at `offset`, or says how short the source was.
pub fn read_exact_at<R: Read + Seek>(
    r: &mut R,
    offset: u64,
    len: u64,
    what: &'static str,
) -> Result<Vec<u8>, LvmReadError> {
    let buf = read_up_to(r, offset, len, what)?;
    let got = buf.len() as u64;
    if got != len {
        return Err(LvmReadError::Truncated {
            what,
            offset,
            wanted: len,
            got,
        });
    }
    Ok(buf)
}

/// Little-endian field readers over a slice; `None` when out of range.
pub fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// See [`le_u32`].
pub fn le_u64(b: &[u8], at: usize) -> Option<u64> {
    let s = b.get(at..at.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Some(u64::from_le_bytes(a))
}

/// Shows bytes for an error message: printable ASCII as text, else hex.
pub fn show_bytes(b: &[u8]) -> String {
    if b.iter().all(|c| c.is_ascii_graphic() || *c == b' ') {
        format!("{:?}", String::from_utf8_lossy(b))
    } else {
        let hex: Vec<String> = b.iter().map(|c| format!("{c:02x}")).collect();
        format!("bytes {}", hex.join(" "))
    }
}

#[cfg(test)]
mod positioned_reader_tests {
    use super::*;

    #[test]
    fn reads_and_seeks_like_the_file_itself() {
        let path = std::env::temp_dir().join(format!("lpd-pread-{}", std::process::id()));
        let content: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        if let Err(e) = std::fs::write(&path, &content) {
            panic!("{e}");
        }
        let open = || match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) => panic!("{e}"),
        };
        let mut ours = PositionedReader::new(open());
        let mut plain = open();
        for (offset, len) in [(4096u64, 512u64), (0, 2048), (9216, 2280), (19_990, 100)] {
            let a = read_up_to(&mut ours, offset, len, "test").ok();
            let b = read_up_to(&mut plain, offset, len, "test").ok();
            assert!(a.is_some());
            assert_eq!(a, b, "at {offset}+{len}");
        }
        assert_eq!(ours.seek(SeekFrom::End(0)).ok(), Some(20_000));
        assert_eq!(ours.seek(SeekFrom::Current(-10)).ok(), Some(19_990));
        assert!(ours.seek(SeekFrom::Current(-30_000)).is_err());
        let _ = std::fs::remove_file(&path);
    }
}
