//! A parser for LVM's metadata text ("Text Format Volume Group").
//!
//! The syntax: a file is a list of entries; an entry is `key = value` or
//! `name { entries }`. Values are integers (`-12`), floats (`1.5`), strings
//! (`"..."` where `\"` and `\\` stand for `"` and `\` and any other
//! backslash is kept, or `'...'` taken verbatim) and flat arrays of those
//! (`[ "a", 1, ]`). `#` starts a comment that runs to the end of the line. Keys and section names are runs
//! of characters other than blanks and `#={}[],"'`.
//!
//! The tree borrows from the text: keys and strings without escapes are slices of
//! it, so a 10,000-LV text costs one allocation per section and array, not one per
//! word (a LINSTOR node's text grows by ~430 bytes per volume and is read on every
//! start).
//!
//! Limits keep hostile input harmless: sections nest at most [`MAX_DEPTH`]
//! deep and a text holds at most [`MAX_NODES`] values and sections.

use std::borrow::Cow;

use serde::Serialize;

use super::LvmReadError;

/// Deepest section nesting accepted (LVM itself writes 4 levels).
pub const MAX_DEPTH: usize = 32;
/// Most entries and array elements a text may hold.
pub const MAX_NODES: usize = 1_000_000;

/// A value on the right of `=`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Value<'a> {
    /// An integer.
    Int(i64),
    /// A number with a decimal point.
    Float(f64),
    /// A string, escapes resolved (invalid UTF-8 replaced by U+FFFD).
    Str(Cow<'a, str>),
    /// A flat array.
    Array(Vec<Value<'a>>),
}

/// The right-hand side of an entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Node<'a> {
    /// `key = value`
    Value(Value<'a>),
    /// `name { ... }`
    Section(Section<'a>),
}

/// A list of entries in text order (keys may repeat; lookups take the first).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Section<'a> {
    /// `(key, node)` pairs in the order they appear.
    pub entries: Vec<(Cow<'a, str>, Node<'a>)>,
}

impl<'a> Section<'a> {
    /// The first entry named `key`.
    pub fn get(&self, key: &str) -> Option<&Node<'a>> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, n)| n)
    }

    /// The value of `key = value`, if `key` is a value entry.
    pub fn value(&self, key: &str) -> Option<&Value<'a>> {
        match self.get(key) {
            Some(Node::Value(v)) => Some(v),
            _ => None,
        }
    }

    /// The section `key { ... }`, if `key` is a section.
    pub fn section(&self, key: &str) -> Option<&Section<'a>> {
        match self.get(key) {
            Some(Node::Section(s)) => Some(s),
            _ => None,
        }
    }

    /// All sub-sections, in order.
    pub fn sections(&self) -> impl Iterator<Item = (&str, &Section<'a>)> {
        self.entries.iter().filter_map(|(k, n)| match n {
            Node::Section(s) => Some((k.as_ref(), s)),
            Node::Value(_) => None,
        })
    }
}

/// Parses a whole metadata text.
pub fn parse(text: &[u8]) -> Result<Section<'_>, LvmReadError> {
    let mut p = Parser {
        text,
        pos: 0,
        nodes: 0,
    };
    let root = p.entries(0)?;
    p.skip_blank();
    if p.pos < text.len() {
        return Err(p.error(&p.describe_here(), "a key or end of text"));
    }
    Ok(root)
}

struct Parser<'a> {
    text: &'a [u8],
    pos: usize,
    nodes: usize,
}

fn is_word_byte(c: u8) -> bool {
    !(c.is_ascii_whitespace()
        || c.is_ascii_control()
        || matches!(
            c,
            b'#' | b'=' | b'{' | b'}' | b'[' | b']' | b',' | b'"' | b'\''
        ))
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    fn error(&self, found: &str, expected: &str) -> LvmReadError {
        let upto = &self.text[..self.pos.min(self.text.len())];
        let line = upto.iter().filter(|c| **c == b'\n').count() + 1;
        let line_start = upto.iter().rposition(|c| *c == b'\n').map_or(0, |i| i + 1);
        LvmReadError::Syntax {
            mda_offset: 0,
            line,
            column: self.pos - line_start + 1,
            found: found.to_owned(),
            expected: expected.to_owned(),
        }
    }

    fn describe_here(&self) -> String {
        match self.peek() {
            None => "end of text".into(),
            Some(c) if c.is_ascii_graphic() => format!("{:?}", char::from(c)),
            Some(c) => format!("byte {c:#04x}"),
        }
    }

    fn count_node(&mut self) -> Result<(), LvmReadError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(self.error(
                &format!("more than {MAX_NODES} entries"),
                "a metadata text of sensible size",
            ));
        }
        Ok(())
    }

    /// Skips whitespace and comments.
    fn skip_blank(&mut self) {
        while let Some(c) = self.peek() {
            if c.is_ascii_whitespace() {
                self.pos += 1;
            } else if c == b'#' {
                self.pos = memchr::memchr(b'\n', &self.text[self.pos..])
                    .map_or(self.text.len(), |i| self.pos + i);
            } else {
                break;
            }
        }
    }

    /// The bytes `start..self.pos` as text: borrowed unless they are not UTF-8.
    fn slice(&self, start: usize) -> Cow<'a, str> {
        String::from_utf8_lossy(&self.text[start..self.pos])
    }

    /// Entries up to `}` (depth > 0) or end of text (depth 0).
    fn entries(&mut self, depth: usize) -> Result<Section<'a>, LvmReadError> {
        // An LV's section holds ~10 entries and its segment ~7: one allocation each.
        let mut section = Section {
            entries: Vec::with_capacity(if depth == 0 { 4 } else { 12 }),
        };
        loop {
            self.skip_blank();
            match self.peek() {
                None => {
                    if depth > 0 {
                        return Err(self.error("end of text", "\"}\" closing a section"));
                    }
                    return Ok(section);
                }
                Some(b'}') => {
                    if depth == 0 {
                        return Err(self.error("\"}\" with no open section", "a key"));
                    }
                    self.pos += 1;
                    return Ok(section);
                }
                Some(c) if is_word_byte(c) => {}
                Some(_) => return Err(self.error(&self.describe_here(), "a key or section name")),
            }
            let start = self.pos;
            while self.peek().is_some_and(is_word_byte) {
                self.pos += 1;
            }
            let key = self.slice(start);
            self.count_node()?;
            self.skip_blank();
            match self.peek() {
                Some(b'=') => {
                    self.pos += 1;
                    self.skip_blank();
                    let v = self.value(true)?;
                    section.entries.push((key, Node::Value(v)));
                }
                Some(b'{') => {
                    if depth + 1 > MAX_DEPTH {
                        return Err(self.error(
                            &format!("sections nested deeper than {MAX_DEPTH}"),
                            "shallower nesting",
                        ));
                    }
                    self.pos += 1;
                    let s = self.entries(depth + 1)?;
                    section.entries.push((key, Node::Section(s)));
                }
                _ => {
                    return Err(self.error(
                        &format!("{} after key {key:?}", self.describe_here()),
                        "\"=\" or \"{\"",
                    ))
                }
            }
        }
    }

    fn value(&mut self, allow_array: bool) -> Result<Value<'a>, LvmReadError> {
        match self.peek() {
            Some(b'[') if allow_array => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_blank();
                    if self.peek() == Some(b']') {
                        self.pos += 1;
                        return Ok(Value::Array(items));
                    }
                    self.count_node()?;
                    items.push(self.value(false)?);
                    self.skip_blank();
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b']') => {}
                        _ => {
                            return Err(
                                self.error(&self.describe_here(), "\",\" or \"]\" in an array")
                            )
                        }
                    }
                }
            }
            Some(b'"') => self.double_quoted(),
            Some(b'\'') => {
                self.pos += 1;
                let start = self.pos;
                match memchr::memchr(b'\'', &self.text[start..]) {
                    Some(len) => self.pos = start + len,
                    None => {
                        self.pos = start - 1;
                        return Err(self.error("a string that is never closed", "a closing \"'\""));
                    }
                }
                let s = self.slice(start);
                self.pos += 1;
                Ok(Value::Str(s))
            }
            Some(c) if c == b'-' || c == b'+' || c.is_ascii_digit() => self.number(),
            _ => Err(self.error(
                &self.describe_here(),
                if allow_array {
                    "a value: a number, a quoted string or [ ... ]"
                } else {
                    "an array element: a number or a quoted string"
                },
            )),
        }
    }

    fn double_quoted(&mut self) -> Result<Value<'a>, LvmReadError> {
        let open = self.pos;
        let start = open + 1;
        // The common case, a string without a backslash, is a slice of the text.
        match memchr::memchr2(b'"', b'\\', &self.text[start..]) {
            Some(len) if self.text[start + len] == b'"' => {
                self.pos = start + len;
                let s = self.slice(start);
                self.pos += 1;
                return Ok(Value::Str(s));
            }
            Some(_) => {}
            None => {
                return Err(self.error("a string that is never closed", "a closing '\"'"));
            }
        }
        self.pos = start;
        let mut bytes = Vec::new();
        loop {
            match self.peek() {
                None => {
                    self.pos = open;
                    return Err(self.error("a string that is never closed", "a closing '\"'"));
                }
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(Value::Str(Cow::Owned(
                        String::from_utf8_lossy(&bytes).into_owned(),
                    )));
                }
                Some(b'\\') => {
                    self.pos += 1;
                    match self.peek() {
                        // Only `\"` and `\\` are escapes; LVM keeps any
                        // other backslash as written.
                        Some(c) => {
                            if c != b'"' && c != b'\\' {
                                bytes.push(b'\\');
                            }
                            bytes.push(c);
                            self.pos += 1;
                        }
                        None => {
                            self.pos = open;
                            return Err(self.error(
                                "a string that ends in a lone backslash",
                                "a closing '\"'",
                            ));
                        }
                    }
                }
                Some(c) => {
                    bytes.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn number(&mut self) -> Result<Value<'a>, LvmReadError> {
        let start = self.pos;
        if matches!(self.peek(), Some(b'-' | b'+')) {
            self.pos += 1;
        }
        let mut fraction = false;
        while let Some(c) = self.peek() {
            match c {
                b'0'..=b'9' => {}
                b'.' | b'e' | b'E' => fraction = true,
                _ => break,
            }
            self.pos += 1;
        }
        // Only ASCII signs, digits, '.' and 'e' were taken: always UTF-8.
        let word = std::str::from_utf8(&self.text[start..self.pos]).unwrap_or_default();
        let parsed = if fraction {
            word.parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(Value::Float)
        } else if word
            .trim_start_matches(['-', '+'])
            .strip_prefix('0')
            .is_some_and(|rest| !rest.is_empty())
        {
            // LVM reads integers with strtoll(..., 0): `010` is 8 to LVM and 10 to
            // Rust. LVM never writes one; refused rather than read differently.
            None
        } else {
            word.parse::<i64>().ok().map(Value::Int)
        };
        match parsed {
            Some(v) => Ok(v),
            None => {
                self.pos = start;
                Err(self.error(
                    &format!("number {word:?}"),
                    "a decimal integer in the 64-bit signed range without leading zeros (LVM reads those as octal) or a decimal fraction",
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_lvm_shapes() {
        let t = br#"# comment
vg {
	id = "abc"	# trailing comment
	seqno = 12
	status = ["READ", "WRITE"]
	flags = []
	weird = "a \"q\" \\ b"
	single = 'x\y'
	other = "a\nb"
	neg = -5
	zero = -0
	frac = 1.5
	lv-1.x+y_z {
		stripes = [
			"pv0", 0,
			"pv1", 20
		]
	}
}
contents = "Text Format Volume Group"
"#;
        let root = parse(t).unwrap();
        let vg = root.section("vg").unwrap();
        assert_eq!(vg.value("id"), Some(&Value::Str("abc".into())));
        assert_eq!(vg.value("seqno"), Some(&Value::Int(12)));
        assert_eq!(vg.value("flags"), Some(&Value::Array(vec![])));
        assert_eq!(vg.value("weird"), Some(&Value::Str("a \"q\" \\ b".into())));
        assert_eq!(vg.value("single"), Some(&Value::Str("x\\y".into())));
        assert_eq!(vg.value("other"), Some(&Value::Str("a\\nb".into())));
        assert_eq!(vg.value("neg"), Some(&Value::Int(-5)));
        assert_eq!(vg.value("zero"), Some(&Value::Int(0)));
        assert_eq!(vg.value("frac"), Some(&Value::Float(1.5)));
        let lv = vg.section("lv-1.x+y_z").unwrap();
        assert_eq!(
            lv.value("stripes"),
            Some(&Value::Array(vec![
                Value::Str("pv0".into()),
                Value::Int(0),
                Value::Str("pv1".into()),
                Value::Int(20)
            ]))
        );
        assert!(root.value("contents").is_some());
    }

    #[test]
    fn errors_say_where() {
        let e = parse(b"a {\n  b = \n}").unwrap_err().to_string();
        assert!(e.contains("line 3, column 1"), "{e}");
        for bad in [
            &b"a = "[..],
            b"a {",
            b"}",
            b"a = \"open",
            b"a = [1, [2]]",
            b"a = 99999999999999999999",
            b"a b",
            b"= 1",
            b"a = [1 2]",
            b"a = \"x\\",
            b"a = 010",
            b"a = -08",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn depth_is_capped() {
        let deep = "a {".repeat(MAX_DEPTH + 1) + &"}".repeat(MAX_DEPTH + 1);
        assert!(parse(deep.as_bytes()).is_err());
        let ok = "a {".repeat(MAX_DEPTH) + &"}".repeat(MAX_DEPTH);
        assert!(parse(ok.as_bytes()).is_ok());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]
        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse(&data);
        }

        #[test]
        fn lvm_alphabet_never_panics(s in "[a-z0-9 \\t\\n#={}\\[\\],\"'\\\\.-]{0,300}") {
            let _ = parse(s.as_bytes());
        }

        #[test]
        fn strings_round_trip(s in "\\PC{0,40}") {
            let escaped = s.replace('\\', "\\\\").replace('"', "\\\"");
            let text = format!("k = \"{escaped}\"");
            let root = parse(text.as_bytes()).unwrap();
            prop_assert_eq!(root.value("k"), Some(&Value::Str(s.into())));
        }
    }
}
