//! Where the satellite ID lives: a tag on the volume group.
//!
//! LVM tags allow only `A-Z a-z 0-9 _ + . - / = ! : & #`, yet a satellite ID may be
//! any string. The ID is stored as `linstor-satellite-id=<encoded>`, where every
//! byte outside a conservative safe set (and the escape byte `&` itself) becomes
//! `&XX` (two uppercase hex digits). Decoding reverses it exactly, so any ID
//! round-trips. Reading needs only the VG metadata text: nothing is activated.
//!
//! A configured ID must not start or end with whitespace nor contain a control
//! character ([`check_configured`]): those come from a Secret made from a file (its
//! trailing newline) or a stray keystroke, and would make the node another node. An
//! ID recorded with such characters by an earlier version or the seed tool names the
//! same node as the configured ID without them ([`same_node`]).
use std::fmt;
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
    #[error("the satellite ID{shown} has {character} {place} — {advice}")]
    StrayCharacter {
        /// The ID, quoted and escaped, when short enough to show (else empty).
        shown: String,
        character: CodePoint,
        place: Place,
        advice: &'static str,
    },
    #[error("the satellite-ID tag `{tag}` is malformed at byte {offset}: {reason}; it was not written by this tool — fix or remove it with `vgchange --deltag`")]
    Malformed {
        tag: String,
        offset: usize,
        reason: &'static str,
    },
}

/// A character as `U+000A (line feed)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodePoint(pub char);

impl fmt::Display for CodePoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.0 {
            '\0' => Some("NUL"),
            '\t' => Some("tab"),
            '\n' => Some("line feed"),
            '\r' => Some("carriage return"),
            ' ' => Some("space"),
            '\u{7f}' => Some("delete"),
            '\u{a0}' => Some("no-break space"),
            _ => None,
        };
        write!(f, "U+{:04X}", u32::from(self.0))?;
        match name {
            Some(name) => write!(f, " ({name})"),
            None => Ok(()),
        }
    }
}

/// Where a stray character sits in a configured ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    Start,
    End { character: usize, byte: usize },
    Inside { character: usize, byte: usize },
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Start => write!(f, "at the start (character 1, byte offset 0)"),
            Place::End { character, byte } => {
                write!(f, "at the end (character {character}, byte offset {byte})")
            }
            Place::Inside { character, byte } => {
                write!(f, "at character {character} (byte offset {byte})")
            }
        }
    }
}

/// Longest ID an error message quotes.
const MAX_SHOWN_ID_BYTES: usize = 80;

/// A stray character at either end: whitespace, a control character, or an
/// invisible format character (a byte-order mark from a file saved on Windows, a
/// zero-width space, a direction mark) that no operator types on purpose. Inside an
/// ID only control characters are stray: emoji sequences join with U+200D.
fn is_stray(character: char) -> bool {
    character.is_whitespace() || character.is_control() || is_invisible_format(character)
}

/// Unicode's default-ignorable format characters that can end up around an ID.
fn is_invisible_format(character: char) -> bool {
    matches!(
        character,
        '\u{00AD}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
    )
}

/// Rejects a configured ID with leading or trailing whitespace (Unicode
/// `White_Space`) or a control character (C0, DEL, C1) anywhere, naming the first
/// one found: the start, then the end, then the inside. Inner spaces stay valid.
pub fn check_configured(id: &str) -> Result<(), SatelliteIdError> {
    let mut characters = id.char_indices().enumerate();
    let found = match (id.chars().next(), id.chars().next_back()) {
        (Some(first), _) if is_stray(first) => Some((first, Place::Start)),
        (_, Some(last)) if is_stray(last) => Some((
            last,
            Place::End {
                character: id.chars().count(),
                byte: id.len() - last.len_utf8(),
            },
        )),
        _ => characters.find_map(|(index, (byte, character))| {
            character.is_control().then_some((
                character,
                Place::Inside {
                    character: index + 1,
                    byte,
                },
            ))
        }),
    };
    let Some((character, place)) = found else {
        return Ok(());
    };
    let advice = match (place, character) {
        (Place::End { .. }, '\n' | '\r') => {
            "a Secret or ConfigMap made from a file keeps its trailing newline? trim it"
        }
        (Place::Start | Place::End { .. }, _) => {
            "surrounding whitespace and control characters are not part of an ID; trim it"
        }
        (Place::Inside { .. }, _) => {
            "control characters are not allowed in a satellite ID; remove it (do not replace it: a node recorded under this ID is recognised under the ID without it, and keeps its storage)"
        }
    };
    Err(SatelliteIdError::StrayCharacter {
        shown: if id.len() <= MAX_SHOWN_ID_BYTES {
            format!(" {id:?}")
        } else {
            String::new()
        },
        character: CodePoint(character),
        place,
        advice,
    })
}

/// Whether `recorded` (read off the disk) names the node `configured` names: equal,
/// or equal once its control characters (anywhere) and surrounding whitespace are
/// dropped — the ID an earlier version or the seed tool recorded from a Secret with
/// a trailing newline, which the operator has since trimmed.
pub fn same_node(recorded: &str, configured: &str) -> bool {
    recorded == configured || {
        let kept: String = recorded.chars().filter(|c| !c.is_control()).collect();
        kept.trim_matches(is_stray) == configured
    }
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

/// The tag among a VG's tags that records the satellite ID, exactly as stored
/// (several: the first; [`from_vg_tags`] refuses them).
pub fn recorded_tag<S: AsRef<str>>(tags: &[S]) -> Option<&str> {
    tags.iter()
        .map(AsRef::as_ref)
        .find(|tag| tag.starts_with(TAG_PREFIX))
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

    fn stray(id: &str) -> String {
        match check_configured(id) {
            Err(e) => e.to_string(),
            Ok(()) => panic!("{id:?} accepted"),
        }
    }

    #[test]
    fn configured_ids_with_stray_characters_are_refused_naming_them() {
        assert_eq!(
            stray("node-01\n"),
            "the satellite ID \"node-01\\n\" has U+000A (line feed) at the end (character 8, byte offset 7) — a Secret or ConfigMap made from a file keeps its trailing newline? trim it"
        );
        let space = stray("node-01 ");
        assert!(
            space.contains("U+0020 (space) at the end (character 8, byte offset 7)")
                && space.contains("trim it"),
            "{space}"
        );
        let leading = stray(" node-01");
        assert!(leading.contains("U+0020 (space) at the start"), "{leading}");
        let inner = stray("no\u{7}de");
        assert!(
            inner.contains("U+0007 at character 3 (byte offset 2)")
                && inner.contains("control characters are not allowed"),
            "{inner}"
        );
        // Byte offsets count UTF-8 bytes, characters count characters.
        let after_umlaut = stray("ü\u{85}x");
        assert!(
            after_umlaut.contains("U+0085 at character 2 (byte offset 2)"),
            "{after_umlaut}"
        );
        assert!(stray("ü\u{a0}")
            .contains("U+00A0 (no-break space) at the end (character 2, byte offset 2)"));
        assert!(stray("\u{3000}x").contains("U+3000 at the start"));
        assert!(stray("x\u{7f}").contains("U+007F (delete) at the end"));
        assert!(!stray(&format!("{}\n", "x".repeat(200))).contains("xxx"));
        // Invisible at either end: a byte-order mark, a zero-width space.
        assert!(stray("\u{FEFF}node-01").contains("U+FEFF"));
        assert!(stray("node-01\u{200B}").contains("at the end"));
        assert!(stray("rack\t01").contains("do not replace it"));
    }

    #[test]
    fn ordinary_odd_ids_stay_valid() {
        for id in [
            "node-01",
            "node 01",
            "a \"b\" & 'c'",
            "ünïcödé",
            "🚀 rocket",
            "👨\u{200D}👩\u{200D}👧 family",
            "x",
        ] {
            assert_eq!(check_configured(id), Ok(()), "{id:?}");
        }
    }

    #[test]
    fn a_recorded_id_with_stray_characters_is_the_same_node() {
        for recorded in [
            "node-01",
            "node-01\n",
            "node-01\r\n",
            " node-01",
            "\tnode-01 \n",
            "node\u{0}-01",
            "node-01\u{85}",
            "\u{FEFF}node-01",
            "node-01\u{200B}\n",
        ] {
            assert!(same_node(recorded, "node-01"), "{recorded:?}");
        }
        for recorded in ["node-02", "node-01x", "node -01", "node-0", "", "\n"] {
            assert!(!same_node(recorded, "node-01"), "{recorded:?}");
        }
    }

    #[test]
    fn the_recorded_tag_is_returned_as_stored() {
        assert_eq!(
            recorded_tag(&["x", "linstor-satellite-id=node-01&0A"]),
            Some("linstor-satellite-id=node-01&0A")
        );
        assert_eq!(recorded_tag(&["x"]), None);
    }

    proptest! {
        #[test]
        fn a_checked_id_is_its_own_node_and_its_stray_variants_too(id in "\\PC{1,40}", pad in "[ \\t\\n\\r\\u{0}\\u{85}]{0,3}") {
            if check_configured(&id).is_ok() {
                let padded = [pad.as_str(), id.as_str(), pad.as_str()].concat();
                prop_assert!(same_node(&padded, &id));
            }
        }

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
