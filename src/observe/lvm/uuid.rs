//! LVM's ids (PV, VG and LV uuids): 32 characters from LVM's id alphabet. LVM
//! writes them dashed 6-4-4-4-4-4-6 in its metadata text and reports; the PV
//! header, device-mapper uuids (`LVM-<vg id><lv id>[-<layer>]`) and the devices
//! file carry them without dashes. One type holds the id, so a comparison never
//! depends on which form a value was read in.
use std::fmt;

use serde::{Serialize, Serializer};

/// Characters in an id.
pub const LVM_UUID_LEN: usize = 32;
/// Characters of the dashed form: the id and six dashes.
const DASHED_LEN: usize = LVM_UUID_LEN + 6;
/// The group lengths of the dashed form.
const GROUPS: [usize; 7] = [6, 4, 4, 4, 4, 4, 6];

/// An LVM id, validated: exactly 32 characters of the alphabet below.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LvmUuid([u8; LVM_UUID_LEN]);

/// Why a text is not an LVM id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UuidError {
    #[error("{found:?} has {count} id characters besides dashes; an LVM uuid has {LVM_UUID_LEN}")]
    Length { found: String, count: usize },
    #[error("{found:?} contains {bad:?}; LVM uuids use only 0-9 a-z A-Z ! #")]
    Character { found: String, bad: char },
}

/// LVM's id alphabet (`_c` in LVM2 lib/id/id.c): digits, letters, `!` and `#`.
pub fn is_uuid_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'!' || c == b'#'
}

impl LvmUuid {
    /// Reads an id in either form. Dashes are skipped wherever they are, as LVM's
    /// own reader (`id_read_format`) does; what remains must be 32 id characters.
    pub fn parse(text: &str) -> Result<Self, UuidError> {
        let mut id = [0u8; LVM_UUID_LEN];
        let mut count = 0usize;
        for c in text.chars().filter(|c| *c != '-') {
            if !c.is_ascii() || !is_uuid_char(c as u8) {
                return Err(UuidError::Character {
                    found: text.to_owned(),
                    bad: c,
                });
            }
            if let Some(slot) = id.get_mut(count) {
                *slot = c as u8;
            }
            count += 1;
        }
        if count != LVM_UUID_LEN {
            return Err(UuidError::Length {
                found: text.to_owned(),
                count,
            });
        }
        Ok(LvmUuid(id))
    }

    /// Reads the undashed form, as raw bytes (the PV header's field).
    pub fn from_undashed_bytes(raw: &[u8]) -> Option<Self> {
        let id: [u8; LVM_UUID_LEN] = raw.try_into().ok()?;
        id.iter().all(|c| is_uuid_char(*c)).then_some(LvmUuid(id))
    }

    /// The 32 characters without dashes (device-mapper uuids, the devices file).
    pub fn undashed(&self) -> &str {
        // Only ASCII id characters are ever stored.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The form LVM prints and writes in its metadata text: 6-4-4-4-4-4-6.
    pub fn dashed(&self) -> String {
        let mut out = String::with_capacity(DASHED_LEN);
        let mut rest = self.undashed();
        for (index, len) in GROUPS.into_iter().enumerate() {
            if index > 0 {
                out.push('-');
            }
            let (group, tail) = rest.split_at(len);
            out.push_str(group);
            rest = tail;
        }
        out
    }

    /// For `#[serde(serialize_with)]` where a value has always been shown undashed.
    pub fn serialize_undashed<S: Serializer>(id: &LvmUuid, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(id.undashed())
    }

    /// [`Self::serialize_undashed`] for an optional id (`null` when absent).
    pub fn serialize_undashed_option<S: Serializer>(
        id: &Option<LvmUuid>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match id {
            Some(id) => s.serialize_some(id.undashed()),
            None => s.serialize_none(),
        }
    }
}

impl fmt::Display for LvmUuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.dashed())
    }
}

impl fmt::Debug for LvmUuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LvmUuid({})", self.dashed())
    }
}

/// JSON shows the dashed form, as LVM's own reports do.
impl Serialize for LvmUuid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.dashed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNDASHED: &str = "A10bsifkmj0XVZ4Zemjv7aN5F3dfDeKd";
    const DASHED: &str = "A10bsi-fkmj-0XVZ-4Zem-jv7a-N5F3-dfDeKd";

    #[test]
    fn both_forms_round_trip() {
        for text in [UNDASHED, DASHED] {
            let id = LvmUuid::parse(text);
            assert_eq!(id.as_ref().map(LvmUuid::undashed), Ok(UNDASHED));
            assert_eq!(id.as_ref().map(LvmUuid::dashed).as_deref(), Ok(DASHED));
            assert_eq!(id.map(|id| id.to_string()).as_deref(), Ok(DASHED));
        }
        assert_eq!(
            LvmUuid::from_undashed_bytes(UNDASHED.as_bytes()),
            LvmUuid::parse(DASHED).ok()
        );
        let odd = LvmUuid::parse("!#0123456789abcdefghijABCDEFGHIJ");
        assert_eq!(
            odd.map(|id| id.dashed()).as_deref(),
            Ok("!#0123-4567-89ab-cdef-ghij-ABCD-EFGHIJ")
        );
    }

    #[test]
    fn ids_outside_lvms_alphabet_or_length_are_rejected() {
        for text in [
            "",
            "short",
            "A10bsi-fkmj-0XVZ-4Zem-jv7a-N5F3-dfDeK",
            "A10bsi-fkmj-0XVZ-4Zem-jv7a-N5F3-dfDeKdX",
        ] {
            assert!(
                matches!(LvmUuid::parse(text), Err(UuidError::Length { .. })),
                "{text:?}"
            );
        }
        for text in [
            "A10bsi fkmj-0XVZ-4Zem-jv7a-N5F3-dfDeKd",
            "A10bsi_fkmj0XVZ4Zemjv7aN5F3dfDeKd",
            "A10bsifkmj0XVZ4Zemjv7aN5F3dfDeKé",
            "A10bsifkmj0XVZ4Zemjv7aN5F3dfDe\0d",
        ] {
            assert!(
                matches!(LvmUuid::parse(text), Err(UuidError::Character { .. })),
                "{text:?}"
            );
        }
        assert_eq!(LvmUuid::from_undashed_bytes(DASHED.as_bytes()), None);
        assert_eq!(LvmUuid::from_undashed_bytes(&[b'-'; 32]), None);
        let message = LvmUuid::parse("vg-uuid")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(message.contains("has 6 id characters"), "{message}");
    }

    #[test]
    fn json_shows_the_dashed_form() {
        let id = LvmUuid::parse(UNDASHED).ok();
        assert_eq!(
            serde_json::to_string(&id).ok().as_deref(),
            Some(format!("\"{DASHED}\"").as_str())
        );
    }

    #[test]
    fn metadata_text_with_a_malformed_id_is_a_parse_error() {
        let text = |lv_id: &str| {
            format!(
                "vg {{\n id = \"{DASHED}\"\n seqno = 1\n status = [\"READ\", \"WRITE\"]\n \
                 extent_size = 8192\n logical_volumes {{\n lv {{\n id = \"{lv_id}\"\n \
                 status = [\"READ\", \"VISIBLE\"]\n }}\n }}\n}}\n\
                 contents = \"Text Format Volume Group\"\nversion = 1\n"
            )
        };
        let good = crate::observe::lvm::parse_metadata_text(text(UNDASHED).as_bytes());
        assert_eq!(
            good.map(|vg| (vg.id.dashed(), vg.logical_volumes[0].id.dashed()))
                .ok(),
            Some((DASHED.to_owned(), DASHED.to_owned()))
        );
        let bad = crate::observe::lvm::parse_metadata_text(text("lv-uuid with spaces").as_bytes())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            bad.contains("vg/logical_volumes/lv/id")
                && bad.contains("\"lv-uuid with spaces\" contains ' '")
                && bad.contains("expected an LVM uuid"),
            "{bad}"
        );
    }
}
