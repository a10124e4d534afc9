//! Bounded reads from a seekable byte source.

use std::io::{ErrorKind, Read, Seek, SeekFrom};

use super::LvmReadError;

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
    let cap = usize::try_from(len).unwrap_or(usize::MAX);
    let mut buf = Vec::with_capacity(cap);
    let mut limited = r.take(len);
    loop {
        match limited.read_to_end(&mut buf) {
            Ok(_) => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(io(e)),
        }
    }
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
