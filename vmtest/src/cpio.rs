//! A small in-memory file tree serialised as a "newc" cpio archive, the
//! format the kernel unpacks into its initial rootfs.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Node {
    Dir,
    File { data: Vec<u8>, mode: u32 },
    Symlink(String),
    CharDev { major: u32, minor: u32, mode: u32 },
}

/// Paths are stored relative to `/`, without a leading slash. Parent
/// directories are created implicitly.
#[derive(Debug, Default, Clone)]
pub(crate) struct Tree {
    entries: BTreeMap<String, Node>,
}

const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFCHR: u32 = 0o020_000;

impl Tree {
    pub(crate) fn new() -> Tree {
        Tree::default()
    }

    pub(crate) fn contains(&self, path: &str) -> bool {
        self.entries.contains_key(path.trim_start_matches('/'))
    }

    fn add_parents(&mut self, path: &str) {
        let mut cur = String::new();
        let parts: Vec<&str> = path.split('/').collect();
        for part in &parts[..parts.len().saturating_sub(1)] {
            if !cur.is_empty() {
                cur.push('/');
            }
            cur.push_str(part);
            self.entries.entry(cur.clone()).or_insert(Node::Dir);
        }
    }

    pub(crate) fn insert(&mut self, path: &str, node: Node) {
        let path = path.trim_start_matches('/').to_string();
        self.add_parents(&path);
        self.entries.insert(path, node);
    }

    pub(crate) fn dir(&mut self, path: &str) {
        let path = path.trim_start_matches('/');
        if !self.entries.contains_key(path) {
            self.insert(path, Node::Dir);
        }
    }

    pub(crate) fn file(&mut self, path: &str, data: impl Into<Vec<u8>>, mode: u32) {
        self.insert(
            path,
            Node::File {
                data: data.into(),
                mode,
            },
        );
    }

    pub(crate) fn symlink(&mut self, path: &str, target: &str) {
        self.insert(path, Node::Symlink(target.to_string()));
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn data_bytes(&self) -> u64 {
        self.entries
            .values()
            .map(|n| match n {
                Node::File { data, .. } => data.len() as u64,
                _ => 0,
            })
            .sum()
    }

    /// Serialises the tree (sorted, so parents come before children, and
    /// with fixed timestamps, so the bytes depend on the contents only).
    pub(crate) fn to_cpio(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data_bytes() as usize + self.len() * 256);
        for (ino, (path, node)) in (1u32..).zip(&self.entries) {
            let (mode, data, rdev): (u32, &[u8], (u32, u32)) = match node {
                Node::Dir => (S_IFDIR | 0o755, &[], (0, 0)),
                Node::File { data, mode } => (S_IFREG | (mode & 0o7777), data, (0, 0)),
                Node::Symlink(target) => (S_IFLNK | 0o777, target.as_bytes(), (0, 0)),
                Node::CharDev { major, minor, mode } => {
                    (S_IFCHR | (mode & 0o7777), &[], (*major, *minor))
                }
            };
            let nlink = if matches!(node, Node::Dir) { 2 } else { 1 };
            write_entry(&mut out, ino, path, mode, nlink, data, rdev);
        }
        write_entry(&mut out, 0, "TRAILER!!!", 0, 1, &[], (0, 0));
        pad4(&mut out);
        out
    }
}

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

fn write_entry(
    out: &mut Vec<u8>,
    ino: u32,
    name: &str,
    mode: u32,
    nlink: u32,
    data: &[u8],
    rdev: (u32, u32),
) {
    let fields = [
        ino,
        mode,
        0, // uid
        0, // gid
        nlink,
        0, // mtime
        data.len() as u32,
        0, // devmajor
        0, // devminor
        rdev.0,
        rdev.1,
        name.len() as u32 + 1,
        0, // check
    ];
    out.extend_from_slice(b"070701");
    for f in fields {
        out.extend_from_slice(format!("{f:08x}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad4(out);
    out.extend_from_slice(data);
    pad4(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout_and_alignment() {
        let mut t = Tree::new();
        t.file("etc/x", b"hello".to_vec(), 0o644);
        t.symlink("bin", "usr/bin");
        let bytes = t.to_cpio();
        assert_eq!(bytes.len() % 4, 0);
        // first entry is "bin" (sorted), a symlink
        assert!(bytes.starts_with(b"070701"));
        let name_at = 110;
        assert_eq!(&bytes[name_at..name_at + 3], b"bin");
        assert!(bytes.windows(10).any(|w| w == b"TRAILER!!!"));
        assert!(t.contains("/etc"));
        assert!(t.contains("etc/x"));
    }
}
