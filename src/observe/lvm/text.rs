//! A parser for LVM's metadata text ("Text Format Volume Group").
//!
//! The syntax: a file is a list of entries; an entry is `key = value` or
//! `name { entries }`. Values are integers (`-12`), floats (`1.5`), strings
//! (`"..."` where `\"` and `\\` stand for `"` and `\` and any other
//! backslash is kept, or `'...'` taken verbatim) and flat arrays of those
//! (`[ "a", 1, ]`). `#` starts a comment that runs to the end of the line. Keys and section names are runs
//! of characters other than blanks and `#={}[],"'`.
//!
//! The tree is flat and borrows from the text. Every entry of the whole text
//! lives in one `Vec`, in text order (a section's entry is followed by all of its
//! contents, and knows where they end), and every array element in another; a
//! section or array is a range of one of them. Keys
//! and strings without escapes are slices of the text. So a 10,000-LV text costs
//! a handful of allocations, not one per section, array or word (a LINSTOR
//! node's text grows by ~430 bytes per volume and is read on every start).
//! [`Tree::root`] and the view types [`Section`], [`Node`] and [`Value`] are
//! cheap copies that look into it.
//!
//! Limits keep hostile input harmless: sections nest at most [`MAX_DEPTH`]
//! deep and a text holds at most [`MAX_NODES`] values and sections.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use serde::ser::{SerializeSeq, SerializeStruct};
use serde::{Serialize, Serializer};

use super::LvmReadError;

/// Deepest section nesting accepted (LVM itself writes 4 levels).
pub const MAX_DEPTH: usize = 32;
/// Most entries and array elements a text may hold.
pub const MAX_NODES: usize = 1_000_000;

/// A parsed metadata text: all its entries and array elements, flat.
#[derive(Debug, Clone, Default)]
pub struct Tree<'a> {
    /// Every entry in text order: a section's entry comes right before its
    /// contents (entries of sub-sections included).
    entries: Vec<Entry<'a>>,
    /// Every array element; each array's elements are one contiguous run.
    items: Vec<Scalar<'a>>,
    /// The top level: all of `entries`.
    root: Block,
}

/// Where a section's contents are in [`Tree::entries`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Block {
    /// The first entry of the contents.
    start: usize,
    /// One past the last entry of the contents (of its sub-sections' too).
    end: usize,
    /// How many entries the section itself has (not counting sub-sections').
    len: usize,
}

/// One `key = value` or `name { ... }` as stored in the tree.
#[derive(Debug, Clone, PartialEq)]
struct Entry<'a> {
    key: Cow<'a, str>,
    node: Stored<'a>,
}

/// The right-hand side of an entry as stored: arrays and sections are ranges of
/// [`Tree::items`] and [`Tree::entries`].
#[derive(Debug, Clone, PartialEq)]
enum Stored<'a> {
    Int(i64),
    Float(f64),
    Str(Cow<'a, str>),
    Array(Range<usize>),
    Section(Block),
}

/// An array element (arrays are flat: an element is never an array).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Scalar<'a> {
    /// An integer.
    Int(i64),
    /// A number with a decimal point.
    Float(f64),
    /// A string, escapes resolved (invalid UTF-8 replaced by U+FFFD).
    Str(Cow<'a, str>),
}

/// A value on the right of `=`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Value<'t> {
    /// An integer.
    Int(i64),
    /// A number with a decimal point.
    Float(f64),
    /// A string, escapes resolved (invalid UTF-8 replaced by U+FFFD).
    Str(&'t str),
    /// A flat array.
    Array(&'t [Scalar<'t>]),
}

/// The right-hand side of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Node<'t> {
    /// `key = value`
    Value(Value<'t>),
    /// `name { ... }`
    Section(Section<'t>),
}

/// A list of entries in text order (keys may repeat; lookups take the first).
#[derive(Clone, Copy)]
pub struct Section<'t> {
    tree: &'t Tree<'t>,
    /// The section's contents, sub-sections' included.
    contents: &'t [Entry<'t>],
    /// How many entries the section itself has.
    len: usize,
}

impl<'a> Tree<'a> {
    /// The top level of the text.
    pub fn root(&self) -> Section<'_> {
        self.section(&self.root)
    }

    fn section(&self, b: &Block) -> Section<'_> {
        Section {
            tree: self,
            contents: self.entries.get(b.start..b.end).unwrap_or(&[]),
            len: b.len,
        }
    }
}

/// A section's own entries, skipping over its sub-sections' contents.
struct Children<'t> {
    rest: &'t [Entry<'t>],
}

impl<'t> Iterator for Children<'t> {
    type Item = &'t Entry<'t>;

    fn next(&mut self) -> Option<&'t Entry<'t>> {
        let (first, after) = self.rest.split_first()?;
        let inside = match &first.node {
            Stored::Section(b) => b.end.saturating_sub(b.start),
            _ => 0,
        };
        self.rest = after.get(inside..).unwrap_or(&[]);
        Some(first)
    }
}

impl<'t> Section<'t> {
    fn children(&self) -> Children<'t> {
        Children {
            rest: self.contents,
        }
    }

    fn node(&self, stored: &'t Stored<'t>) -> Node<'t> {
        let tree = self.tree;
        match stored {
            Stored::Int(i) => Node::Value(Value::Int(*i)),
            Stored::Float(f) => Node::Value(Value::Float(*f)),
            Stored::Str(s) => Node::Value(Value::Str(s)),
            Stored::Array(r) => Node::Value(Value::Array(tree.items.get(r.clone()).unwrap_or(&[]))),
            Stored::Section(b) => Node::Section(tree.section(b)),
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the section has no entries.
    pub fn is_empty(&self) -> bool {
        self.contents.is_empty()
    }

    /// All `(key, node)` pairs in the order they appear.
    pub fn entries(&self) -> impl Iterator<Item = (&'t str, Node<'t>)> + 't {
        let this = *self;
        self.children()
            .map(move |e| (e.key.as_ref(), this.node(&e.node)))
    }

    /// The first entry named `key`.
    pub fn get(&self, key: &str) -> Option<Node<'t>> {
        self.children()
            .find(|e| *e.key == *key)
            .map(|e| self.node(&e.node))
    }

    /// The value of `key = value`, if `key` is a value entry.
    pub fn value(&self, key: &str) -> Option<Value<'t>> {
        match self.get(key) {
            Some(Node::Value(v)) => Some(v),
            _ => None,
        }
    }

    /// The section `key { ... }`, if `key` is a section.
    pub fn section(&self, key: &str) -> Option<Section<'t>> {
        match self.get(key) {
            Some(Node::Section(s)) => Some(s),
            _ => None,
        }
    }

    /// All sub-sections, in order.
    pub fn sections(&self) -> impl Iterator<Item = (&'t str, Section<'t>)> + 't {
        let tree = self.tree;
        self.children().filter_map(move |e| match &e.node {
            Stored::Section(b) => Some((e.key.as_ref(), tree.section(b))),
            _ => None,
        })
    }
}

impl fmt::Debug for Section<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Section")
            .field("entries", &Entries(*self))
            .finish()
    }
}

/// A section's entries, for `Debug` and `Serialize` as a list of pairs.
struct Entries<'t>(Section<'t>);

impl fmt::Debug for Entries<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.entries()).finish()
    }
}

impl Serialize for Entries<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for pair in self.0.entries() {
            seq.serialize_element(&pair)?;
        }
        seq.end()
    }
}

impl PartialEq for Section<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.entries().eq(other.entries())
    }
}

impl Serialize for Section<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Section", 1)?;
        s.serialize_field("entries", &Entries(*self))?;
        s.end()
    }
}

impl Serialize for Tree<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.root().serialize(serializer)
    }
}

/// Parses a whole metadata text.
pub fn parse(text: &[u8]) -> Result<Tree<'_>, LvmReadError> {
    // LVM's texts run ~30 bytes an entry; guessing the size up front saves the
    // copies of a growing vector. The guess is capped (a 10,000-volume text has
    // ~140,000 entries): a 16 MiB text of garbage reserves ~15 MB, not ~45 MB.
    let guess = (text.len() / 24).min(1 << 18);
    let mut p = Parser {
        text,
        utf8: std::str::from_utf8(text).ok(),
        pos: 0,
        nodes: 0,
        entries: Vec::with_capacity(guess),
        items: Vec::with_capacity(guess / 4),
    };
    let len = p.entries(0)?;
    p.skip_blank();
    if p.pos < text.len() {
        return Err(p.error(&p.describe_here(), "a key or end of text"));
    }
    Ok(Tree {
        root: Block {
            start: 0,
            end: p.entries.len(),
            len,
        },
        entries: p.entries,
        items: p.items,
    })
}

struct Parser<'a> {
    text: &'a [u8],
    /// The whole text, when it is UTF-8 (LVM writes nothing else): checked once
    /// here, words and strings are then cut from it without checking each.
    utf8: Option<&'a str>,
    pos: usize,
    nodes: usize,
    /// The tree's entries so far.
    entries: Vec<Entry<'a>>,
    /// Array elements (the tree's).
    items: Vec<Scalar<'a>>,
}

/// Bytes that make up keys and section names: anything but blanks, controls
/// and `#={}[],"'`.
const WORD: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = !(b.is_ascii_whitespace()
            || b.is_ascii_control()
            || matches!(
                b,
                b'#' | b'=' | b'{' | b'}' | b'[' | b']' | b',' | b'"' | b'\''
            ));
        c += 1;
    }
    t
};

fn is_word_byte(c: u8) -> bool {
    WORD[usize::from(c)]
}

const VALUE_EXPECTED: &str = "a value: a number, a quoted string or [ ... ]";
const ELEMENT_EXPECTED: &str = "an array element: a number or a quoted string";

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
        // Words and strings start and end next to ASCII delimiters, so on
        // character boundaries; `get` checks that anyway.
        if let Some(s) = self.utf8.and_then(|t| t.get(start..self.pos)) {
            return Cow::Borrowed(s);
        }
        let bytes = &self.text[start..self.pos];
        // Nearly every word and string is ASCII, which `from_utf8` accepts fastest;
        // only the rest pays for the lossy walk.
        match std::str::from_utf8(bytes) {
            Ok(s) => Cow::Borrowed(s),
            Err(_) => String::from_utf8_lossy(bytes),
        }
    }

    /// Entries up to `}` (depth > 0) or end of text (depth 0); returns how many.
    fn entries(&mut self, depth: usize) -> Result<usize, LvmReadError> {
        let mut len = 0;
        loop {
            self.skip_blank();
            match self.peek() {
                None => {
                    if depth > 0 {
                        return Err(self.error("end of text", "\"}\" closing a section"));
                    }
                    return Ok(len);
                }
                Some(b'}') => {
                    if depth == 0 {
                        return Err(self.error("\"}\" with no open section", "a key"));
                    }
                    self.pos += 1;
                    return Ok(len);
                }
                Some(c) if is_word_byte(c) => {}
                Some(_) => return Err(self.error(&self.describe_here(), "a key or section name")),
            }
            let start = self.pos;
            self.pos = self.text[start..]
                .iter()
                .position(|c| !is_word_byte(*c))
                .map_or(self.text.len(), |i| start + i);
            let key = self.slice(start);
            self.count_node()?;
            self.skip_blank();
            match self.peek() {
                Some(b'=') => {
                    len += 1;
                    self.pos += 1;
                    self.skip_blank();
                    let node = self.value()?;
                    self.entries.push(Entry { key, node });
                }
                Some(b'{') => {
                    len += 1;
                    if depth + 1 > MAX_DEPTH {
                        return Err(self.error(
                            &format!("sections nested deeper than {MAX_DEPTH}"),
                            "shallower nesting",
                        ));
                    }
                    self.pos += 1;
                    // The section's entry goes first; where its contents end is
                    // known once they are read.
                    let at = self.entries.len();
                    let start = at + 1;
                    self.entries.push(Entry {
                        key,
                        node: Stored::Section(Block {
                            start,
                            end: start,
                            len: 0,
                        }),
                    });
                    let inner = self.entries(depth + 1)?;
                    let end = self.entries.len();
                    if let Some(e) = self.entries.get_mut(at) {
                        e.node = Stored::Section(Block {
                            start,
                            end,
                            len: inner,
                        });
                    }
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

    /// The value after `=`: a scalar or a flat array.
    fn value(&mut self) -> Result<Stored<'a>, LvmReadError> {
        if self.peek() != Some(b'[') {
            return Ok(match self.scalar(VALUE_EXPECTED)? {
                Scalar::Int(i) => Stored::Int(i),
                Scalar::Float(f) => Stored::Float(f),
                Scalar::Str(s) => Stored::Str(s),
            });
        }
        self.pos += 1;
        let start = self.items.len();
        loop {
            self.skip_blank();
            if self.peek() == Some(b']') {
                self.pos += 1;
                return Ok(Stored::Array(start..self.items.len()));
            }
            self.count_node()?;
            let item = self.scalar(ELEMENT_EXPECTED)?;
            self.items.push(item);
            self.skip_blank();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {}
                _ => return Err(self.error(&self.describe_here(), "\",\" or \"]\" in an array")),
            }
        }
    }

    /// A number or a quoted string; `expected` names what was wanted otherwise.
    fn scalar(&mut self, expected: &str) -> Result<Scalar<'a>, LvmReadError> {
        match self.peek() {
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
                Ok(Scalar::Str(s))
            }
            Some(c) if c == b'-' || c == b'+' || c.is_ascii_digit() => self.number(),
            _ => Err(self.error(&self.describe_here(), expected)),
        }
    }

    fn double_quoted(&mut self) -> Result<Scalar<'a>, LvmReadError> {
        let open = self.pos;
        let start = open + 1;
        // The common case, a string without a backslash, is a slice of the text.
        match memchr::memchr2(b'"', b'\\', &self.text[start..]) {
            Some(len) if self.text[start + len] == b'"' => {
                self.pos = start + len;
                let s = self.slice(start);
                self.pos += 1;
                return Ok(Scalar::Str(s));
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
                    return Ok(Scalar::Str(Cow::Owned(
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

    fn number(&mut self) -> Result<Scalar<'a>, LvmReadError> {
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
                .map(Scalar::Float)
        } else if word
            .trim_start_matches(['-', '+'])
            .strip_prefix('0')
            .is_some_and(|rest| !rest.is_empty())
        {
            // LVM reads integers with strtoll(..., 0): `010` is 8 to LVM and 10 to
            // Rust. LVM never writes one; refused rather than read differently.
            None
        } else {
            word.parse::<i64>().ok().map(Scalar::Int)
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
        let tree = parse(t).unwrap();
        let root = tree.root();
        let vg = root.section("vg").unwrap();
        assert_eq!(vg.value("id"), Some(Value::Str("abc")));
        assert_eq!(vg.value("seqno"), Some(Value::Int(12)));
        assert_eq!(vg.value("flags"), Some(Value::Array(&[])));
        assert_eq!(vg.value("weird"), Some(Value::Str("a \"q\" \\ b")));
        assert_eq!(vg.value("single"), Some(Value::Str("x\\y")));
        assert_eq!(vg.value("other"), Some(Value::Str("a\\nb")));
        assert_eq!(vg.value("neg"), Some(Value::Int(-5)));
        assert_eq!(vg.value("zero"), Some(Value::Int(0)));
        assert_eq!(vg.value("frac"), Some(Value::Float(1.5)));
        let lv = vg.section("lv-1.x+y_z").unwrap();
        assert_eq!(
            lv.value("stripes"),
            Some(Value::Array(&[
                Scalar::Str("pv0".into()),
                Scalar::Int(0),
                Scalar::Str("pv1".into()),
                Scalar::Int(20)
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
            let tree = parse(text.as_bytes()).unwrap();
            prop_assert_eq!(tree.root().value("k"), Some(Value::Str(&s)));
        }
    }
}
