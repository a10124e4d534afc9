//! udev's device database (`/run/udev/data/b<major>:<minor>`) and the escaping
//! udev applies to values it got from blkid.
//!
//! The static (musl) build cannot link libudev, so it reads the database file
//! directly. Only `E:KEY=VALUE` lines (properties) matter here; `S:` (symlinks),
//! `I:`, `G:`, `Q:`, `V:` lines are bookkeeping.

use std::collections::BTreeMap;

/// Parses the properties (`E:` lines) of a udev database file.
pub(crate) fn parse_udev_db(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| line.strip_prefix("E:"))
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Undoes blkid's value encoding, which udev applies to `ID_PART_ENTRY_NAME`:
/// whitespace and characters outside a safe set (a backslash included) are
/// written as `\xNN`, valid multi-byte UTF-8 is kept. Because a literal
/// backslash is itself escaped, decoding is unambiguous. Anything that is not a
/// well-formed `\xNN` is kept as it is.
pub(crate) fn decode_udev_escapes(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && bytes.get(i + 1) == Some(&b'x') {
            let hex = bytes
                .get(i + 2..i + 4)
                .and_then(|h| std::str::from_utf8(h).ok());
            if let Some(byte) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_only_property_lines() {
        let db = "S:disk/by-partlabel/data\nI:123\nE:ID_PART_ENTRY_NAME=data\\x20disk\n\
                  E:ID_PART_ENTRY_UUID=1b2c\nG:systemd\nV:1\n";
        let map = parse_udev_db(db);
        assert_eq!(map.len(), 2);
        assert_eq!(
            map.get("ID_PART_ENTRY_NAME").map(String::as_str),
            Some("data\\x20disk")
        );
    }

    #[test]
    fn decodes_hex_escapes_and_keeps_utf8() {
        assert_eq!(decode_udev_escapes("data\\x20disk"), "data disk");
        assert_eq!(decode_udev_escapes("a\\x5cx20b"), "a\\x20b");
        assert_eq!(decode_udev_escapes("größe\\x20✓"), "größe ✓");
        assert_eq!(decode_udev_escapes("\\xc3\\xa4"), "ä");
        // Malformed escapes are left alone.
        assert_eq!(decode_udev_escapes("bad\\x2"), "bad\\x2");
        assert_eq!(decode_udev_escapes("bad\\xzz!"), "bad\\xzz!");
        assert_eq!(decode_udev_escapes("end\\"), "end\\");
    }
}
