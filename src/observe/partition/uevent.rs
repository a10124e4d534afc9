//! The kernel's `uevent` files: one `KEY=VALUE` per line.
//!
//! The kernel writes values verbatim (a GPT name with spaces stays one value),
//! so only the first `=` splits a line. Values are bytes, not text: kernels
//! before the 2025 fix write a GPT name's non-ASCII characters into `PARTNAME`
//! as single raw bytes (0xE9 for "é"), which is not UTF-8.

use std::collections::BTreeMap;

/// Parses a `uevent` file's exact bytes. Keys are ASCII in practice; a line
/// whose key is not UTF-8 carries nothing we can use and is skipped, as are
/// lines without `=`.
pub(crate) fn parse_uevent_bytes(bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    bytes
        .split(|&b| b == b'\n')
        .filter_map(|line| {
            let at = line.iter().position(|&b| b == b'=')?;
            let key = std::str::from_utf8(line.get(..at)?).ok()?;
            Some((key.to_owned(), line.get(at + 1..)?.to_vec()))
        })
        .collect()
}

/// Parses the text of a sysfs `uevent` file into its keys and values.
pub(crate) fn parse_uevent(text: &str) -> BTreeMap<String, String> {
    parse_uevent_bytes(text.as_bytes())
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_first_equals_and_keeps_spaces() {
        let map = parse_uevent("MAJOR=254\nMINOR=1\nDEVNAME=vda1\nPARTNAME=my data = x \n\n");
        assert_eq!(map.get("MAJOR").map(String::as_str), Some("254"));
        assert_eq!(
            map.get("PARTNAME").map(String::as_str),
            Some("my data = x ")
        );
        assert_eq!(map.len(), 4);
    }

    #[test]
    fn keeps_non_utf8_values_as_bytes() {
        let map = parse_uevent_bytes(b"MAJOR=254\nPARTNAME=stockage-\xe9\n\xff\xfe=x\nnoequals\n");
        assert_eq!(
            map.get("PARTNAME").map(Vec::as_slice),
            Some(&b"stockage-\xe9"[..])
        );
        assert_eq!(map.get("MAJOR").map(Vec::as_slice), Some(&b"254"[..]));
        assert_eq!(map.len(), 2);
    }
}
