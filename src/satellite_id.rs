//! Where the satellite ID lives: a tag on the volume group.
//!
//! LVM tags allow only `A-Z a-z 0-9 _ + . - / = ! : & #`, yet a satellite ID may be
//! any string. The ID is stored as `linstor-satellite-id=<encoded>`, where every
//! byte outside a conservative safe set (and the escape byte `&` itself) becomes
//! `&XX` (two uppercase hex digits). Decoding reverses it exactly, so any ID
//! round-trips. Reading needs only the VG metadata text: nothing is activated.
use thiserror::Error;

/// Prefix of the VG tag carrying the satellite ID.
pub const TAG_PREFIX: &str = "linstor-satellite-id=";
/// LVM refuses tags longer than this many bytes.
pub const MAX_TAG_LEN: usize = 1024;

const ESCAPE: u8 = b'&';

fn is_plain(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'+' | b'.' | b'-' | b'/' | b'=' | b':')
}

/// Why a satellite ID cannot be used or read.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SatelliteIdError {
    #[error("the satellite ID is empty; set SATELLITE_ID (or --satellite-id) to a stable per-node value such as the node name")]
    Empty,
    #[error("the satellite ID is {len} bytes long once encoded into an LVM tag; the limit is {max} bytes — use a shorter ID (the node name is a good choice)")]
    TooLong { len: usize, max: usize },
    #[error("the volume group carries {count} satellite-ID tags ({tags}); expected at most one — inspect with `vgs -o vg_name,vg_tags` and remove the wrong tag with `vgchange --deltag`")]
    SeveralTags { count: usize, tags: String },
    #[error("the satellite-ID tag `{tag}` is malformed at byte {offset}: {reason}; it was not written by this tool — fix or remove it with `vgchange --deltag`")]
    Malformed {
        tag: String,
        offset: usize,
        reason: &'static str,
    },
}

/// Encodes `id` into the VG tag that records it.
pub fn encode_tag(id: &str) -> Result<String, SatelliteIdError> {
    if id.is_empty() {
        return Err(SatelliteIdError::Empty);
    }
    let mut tag = String::with_capacity(TAG_PREFIX.len() + id.len());
    tag.push_str(TAG_PREFIX);
    for &byte in id.as_bytes() {
        if is_plain(byte) {
            tag.push(char::from(byte));
        } else {
            tag.push(char::from(ESCAPE));
            tag.push_str(&format!("{byte:02X}"));
        }
    }
    if tag.len() > MAX_TAG_LEN {
        return Err(SatelliteIdError::TooLong {
            len: tag.len(),
            max: MAX_TAG_LEN,
        });
    }
    Ok(tag)
}

/// Decodes one tag; `Ok(None)` when the tag is not a satellite-ID tag.
pub fn decode_tag(tag: &str) -> Result<Option<String>, SatelliteIdError> {
    let Some(encoded) = tag.strip_prefix(TAG_PREFIX) else {
        return Ok(None);
    };
    let malformed = |offset: usize, reason: &'static str| SatelliteIdError::Malformed {
        tag: tag.to_owned(),
        offset: TAG_PREFIX.len() + offset,
        reason,
    };
    let bytes = encoded.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        if byte == ESCAPE {
            let hex = bytes
                .get(index + 1..index + 3)
                .ok_or_else(|| malformed(index, "escape `&` is not followed by two hex digits"))?;
            let text =
                std::str::from_utf8(hex).map_err(|_| malformed(index, "escape is not hex"))?;
            let value =
                u8::from_str_radix(text, 16).map_err(|_| malformed(index, "escape is not hex"))?;
            decoded.push(value);
            index += 3;
        } else if is_plain(byte) {
            decoded.push(byte);
            index += 1;
        } else {
            return Err(malformed(index, "byte outside the encoded alphabet"));
        }
    }
    if decoded.is_empty() {
        return Err(malformed(0, "the encoded ID is empty"));
    }
    String::from_utf8(decoded)
        .map(Some)
        .map_err(|_| malformed(0, "decodes to bytes that are not UTF-8"))
}

/// Finds the satellite ID among a VG's tags: `Ok(None)` when no tag records one.
pub fn from_vg_tags<S: AsRef<str>>(tags: &[S]) -> Result<Option<String>, SatelliteIdError> {
    let id_tags: Vec<&str> = tags
        .iter()
        .map(AsRef::as_ref)
        .filter(|tag| tag.starts_with(TAG_PREFIX))
        .collect();
    match id_tags.as_slice() {
        [] => Ok(None),
        [tag] => decode_tag(tag),
        several => Err(SatelliteIdError::SeveralTags {
            count: several.len(),
            tags: several.join(", "),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plain_ids_stay_readable() {
        assert_eq!(
            encode_tag("node-01").as_deref(),
            Ok("linstor-satellite-id=node-01")
        );
    }

    #[test]
    fn odd_characters_are_escaped_and_round_trip() {
        let id = "node 01 & ünïcode#@\"'\n";
        let tag = encode_tag(id).unwrap_or_default();
        assert!(tag.bytes().all(|b| is_plain(b) || b == ESCAPE), "{tag}");
        assert_eq!(decode_tag(&tag), Ok(Some(id.to_owned())));
    }

    #[test]
    fn empty_and_oversized_ids_are_rejected() {
        assert_eq!(encode_tag(""), Err(SatelliteIdError::Empty));
        assert!(matches!(
            encode_tag(&"x".repeat(MAX_TAG_LEN)),
            Err(SatelliteIdError::TooLong { .. })
        ));
        assert!(matches!(
            encode_tag(&"é".repeat(200)),
            Err(SatelliteIdError::TooLong { .. })
        ));
    }

    #[test]
    fn foreign_tags_are_ignored_and_duplicates_are_an_error() {
        assert_eq!(from_vg_tags(&["other", "x=y"]), Ok(None));
        assert_eq!(
            from_vg_tags(&["other", "linstor-satellite-id=a"]),
            Ok(Some("a".into()))
        );
        assert!(matches!(
            from_vg_tags(&["linstor-satellite-id=a", "linstor-satellite-id=b"]),
            Err(SatelliteIdError::SeveralTags { count: 2, .. })
        ));
    }

    #[test]
    fn malformed_tags_are_errors_not_ids() {
        for tag in [
            "linstor-satellite-id=",
            "linstor-satellite-id=a&4",
            "linstor-satellite-id=a&zz",
            "linstor-satellite-id=a#b",
            "linstor-satellite-id=&FF",
        ] {
            assert!(
                matches!(decode_tag(tag), Err(SatelliteIdError::Malformed { .. })),
                "{tag}"
            );
        }
    }

    proptest! {
        #[test]
        fn any_id_round_trips(id in "\\PC{1,200}") {
            if let Ok(tag) = encode_tag(&id) {
                prop_assert!(tag.len() <= MAX_TAG_LEN);
                prop_assert_eq!(decode_tag(&tag), Ok(Some(id)));
            }
        }

        #[test]
        fn decoding_arbitrary_tags_never_panics(tag in "linstor-satellite-id=.{0,64}") {
            let _ = decode_tag(&tag);
        }
    }
}
