//! The rules that make a partition label comparable, whichever source it came from.
//!
//! A GPT partition name is up to 36 UTF-16 code units. Three readers see it:
//!
//! - **libblkid** (udev's `ID_PART_ENTRY_NAME`, or this tool reading the GPT
//!   entry itself) decodes it fully to UTF-8 and removes trailing whitespace.
//! - **the kernel** (`PARTNAME` in `uevent`) keeps one byte per code unit and
//!   keeps trailing spaces. Before the 2025 fix that byte is the unit's low 8
//!   bits (`é`, U+00E9, comes out as the raw byte 0xE9, not UTF-8); since the fix
//!   it is the low 7 bits (`é` comes out as `i`). Either way a byte that is not
//!   printable becomes `!`. So a `PARTNAME` is the exact name only when the name
//!   was printable ASCII, and nothing in the `PARTNAME` alone proves that it was.
//!
//! The comparison rule, the same in both discovery backends: **a label is the
//! GPT name as libblkid decodes it — trailing whitespace (space, tab, newline,
//! vertical tab, form feed, carriage return) removed, everything else exact**
//! (case, leading and inner spaces, any Unicode). The operator's label is
//! trimmed the same way before it is compared, so `"data  "` asks for the
//! partition that `lsblk -o PARTLABEL` and `/dev/disk/by-partlabel/` call
//! `data`. Two partitions whose names differ only in trailing whitespace are
//! therefore the same label, and resolving it is refused as ambiguous.

/// Whitespace as C's `isspace` in the C locale, which libblkid trims.
fn is_c_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

/// `label` with trailing whitespace removed, as libblkid reports GPT names.
pub(crate) fn trim_label(label: &str) -> &str {
    label.trim_end_matches(is_c_space)
}

/// Printable ASCII (0x20–0x7E): the only names the kernel's `PARTNAME`
/// carries unchanged.
pub(crate) fn is_printable_ascii(label: &str) -> bool {
    label.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

/// What the kernel's `PARTNAME` bytes say about the GPT name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KernelName {
    /// Printable ASCII without `!`: the GPT name is this, unless it held
    /// non-ASCII characters that a 7-bit kernel turned into ASCII ones (only
    /// the GPT entry can tell).
    Plain(String),
    /// The kernel provably could not represent the name: it contains `!` (the
    /// kernel's replacement character, or a real `!`) or bytes outside
    /// printable ASCII. For display only, undecodable bytes shown as U+FFFD.
    Lossy(String),
}

/// Classifies a `PARTNAME` value (its exact bytes); `None` when it is empty
/// once trailing whitespace is removed.
pub(crate) fn kernel_name(partname: &[u8]) -> Option<KernelName> {
    let end = partname
        .iter()
        .rposition(|&b| !is_c_space(char::from(b)))
        .map_or(0, |i| i + 1);
    let bytes = partname.get(..end)?;
    if bytes.is_empty() {
        return None;
    }
    let text = String::from_utf8_lossy(bytes).into_owned();
    if bytes
        .iter()
        .all(|b| (0x20..=0x7e).contains(b) && *b != b'!')
    {
        Some(KernelName::Plain(text))
    } else {
        Some(KernelName::Lossy(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_trailing_c_whitespace_only() {
        assert_eq!(trim_label("data  "), "data");
        assert_eq!(trim_label("data\t\r\n\x0b\x0c "), "data");
        assert_eq!(trim_label("  data"), "  data");
        assert_eq!(trim_label("my data"), "my data");
        // Not C whitespace: kept.
        assert_eq!(trim_label("data\u{a0}"), "data\u{a0}");
        assert_eq!(trim_label("   "), "");
    }

    #[test]
    fn plain_ascii_partname_is_plain() {
        assert_eq!(
            kernel_name(b"linstor storage  "),
            Some(KernelName::Plain("linstor storage".into()))
        );
        assert_eq!(kernel_name(b"   "), None);
        assert_eq!(kernel_name(b""), None);
    }

    #[test]
    fn bang_and_high_bytes_are_lossy() {
        assert_eq!(
            kernel_name(b"stockage-\xe9"),
            Some(KernelName::Lossy("stockage-\u{fffd}".into()))
        );
        assert_eq!(
            kernel_name(b"gr!!e"),
            Some(KernelName::Lossy("gr!!e".into()))
        );
        // Valid UTF-8 is still not what the kernel would write for a GPT name.
        assert!(matches!(
            kernel_name("Größe".as_bytes()),
            Some(KernelName::Lossy(_))
        ));
        assert!(matches!(kernel_name(b"a\x7fb"), Some(KernelName::Lossy(_))));
    }

    #[test]
    fn printable_ascii() {
        assert!(is_printable_ascii("linstor-storage !~"));
        assert!(!is_printable_ascii("stockage-é"));
        assert!(!is_printable_ascii("tab\there"));
    }
}
