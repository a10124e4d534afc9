//! Sizes as operators write them: `512K`, `1M`, `65536` (bytes). Binary units.
use crate::units::Bytes;
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SizeError {
    #[error("`{0}` is not a size; write a number of bytes or use a K, M or G suffix (e.g. 512K)")]
    Unparsable(String),
    #[error("{0} is not a valid thin pool chunk size: it must be a multiple of 64K between 64K and 1G (LVM's rule)")]
    BadChunkSize(Bytes),
}

/// Parses `N`, `NK`, `NM`, `NG` (case-insensitive, optional trailing `B` or `iB`).
pub fn parse_size(text: &str) -> Result<Bytes, SizeError> {
    let unparsable = || SizeError::Unparsable(text.to_owned());
    let trimmed = text.trim();
    let lower = trimmed.to_ascii_lowercase();
    let without_b = lower
        .strip_suffix("ib")
        .or_else(|| lower.strip_suffix('b'))
        .unwrap_or(&lower);
    let (digits, multiplier) = match without_b.chars().last() {
        Some('k') => (&without_b[..without_b.len() - 1], 1u64 << 10),
        Some('m') => (&without_b[..without_b.len() - 1], 1 << 20),
        Some('g') => (&without_b[..without_b.len() - 1], 1 << 30),
        _ => (without_b, 1),
    };
    let number: u64 = digits.parse().map_err(|_| unparsable())?;
    // Sizes an operator writes stay within 64 bits, as the kernel's do.
    number
        .checked_mul(multiplier)
        .map(Bytes::from)
        .ok_or_else(unparsable)
}

/// Parses and checks a thin pool chunk size (LVM: 64 KiB..1 GiB, multiple of 64 KiB).
pub fn parse_thin_chunk_size(text: &str) -> Result<Bytes, SizeError> {
    let bytes = parse_size(text)?;
    const STEP: u128 = 64 << 10;
    if !(STEP..=1 << 30).contains(&bytes.0) || bytes.0 % STEP != 0 {
        return Err(SizeError::BadChunkSize(bytes));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("512K"), Ok(Bytes(512 * 1024)));
        assert_eq!(parse_size("1m"), Ok(Bytes(1 << 20)));
        assert_eq!(parse_size("2GiB"), Ok(Bytes(2 << 30)));
        assert_eq!(parse_size("65536"), Ok(Bytes(65536)));
        assert!(parse_size("").is_err());
        assert!(parse_size("K").is_err());
        assert!(parse_size("-1K").is_err());
        assert!(parse_size("99999999999999999999G").is_err());
    }

    #[test]
    fn chunk_sizes_follow_lvm_rules() {
        assert_eq!(parse_thin_chunk_size("64K"), Ok(Bytes(64 << 10)));
        assert_eq!(parse_thin_chunk_size("1G"), Ok(Bytes(1 << 30)));
        assert!(parse_thin_chunk_size("32K").is_err());
        assert_eq!(
            parse_thin_chunk_size("96K").map_err(|e| e.to_string()),
            Err("98304 bytes is not a valid thin pool chunk size: it must be a multiple of 64K between 64K and 1G (LVM's rule)".to_owned())
        );
        assert!(parse_thin_chunk_size("2G").is_err());
    }
}
