//! Reads of sysfs attributes and other small kernel-made files: one `openat`, one
//! `read` into a stack buffer, one `close`. `std::fs::read` would also `fstat` the
//! file and allocate a page-sized buffer per file, which musl's allocator maps and
//! unmaps every time: a discovery pass reads dozens of these files on every start.
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use crate::ffi::open::open_read_only;

/// One stack buffer's worth: a 4 KiB page, what sysfs attributes fit in on most
/// kernels (16 KiB- and 64 KiB-page kernels allow more; see [`read_attribute`]).
const CHUNK: usize = 4096;

/// The bytes of the sysfs attribute at `path`, or `None` if it does not exist.
/// A sysfs attribute is generated whole on the first read, so a read that does not
/// fill the buffer has it all; one that does (a larger page size) reads on to EOF.
pub fn read_attribute(path: &Path) -> io::Result<Option<Vec<u8>>> {
    let mut file = match open_read_only(path, 0) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut buffer = [0u8; CHUNK];
    let length = read_retrying(&mut file, &mut buffer)?;
    let mut content = buffer.get(..length).map(<[u8]>::to_vec).unwrap_or_default();
    if length == CHUNK {
        read_rest(&mut file, &mut content)?;
    }
    Ok(Some(content))
}

/// [`read_attribute`] as text (lossy UTF-8), without trailing newlines.
pub fn read_attribute_line(path: &Path) -> io::Result<Option<String>> {
    Ok(read_attribute(path)?.map(|bytes| {
        let text = String::from_utf8_lossy(&bytes);
        text.trim_end_matches('\n').to_owned()
    }))
}

/// The number a sysfs attribute holds (`size`, `start`: one decimal line), or
/// `None` when the attribute is missing, unreadable or not a number.
pub fn read_number(path: &Path) -> Option<u64> {
    read_attribute_line(path).ok()??.trim().parse().ok()
}

/// The whole small regular file at `path` (a udev database entry, which can exceed
/// a page), or `None` if it does not exist. The same reads as [`read_attribute`]: a
/// read of a regular file on tmpfs (where /run/udev lives) returns less than asked
/// only at its end, and udev replaces its database files by rename, never writes
/// them in place. (A FUSE direct-io mount at /run/udev would break this.)
pub fn read_small_file(path: &Path) -> io::Result<Option<Vec<u8>>> {
    read_attribute(path)
}

/// Appends what is left of `file` to `content`, a page at a time.
fn read_rest(file: &mut File, content: &mut Vec<u8>) -> io::Result<()> {
    let mut buffer = [0u8; CHUNK];
    loop {
        let length = read_retrying(file, &mut buffer)?;
        match buffer.get(..length) {
            Some(chunk) if !chunk.is_empty() => content.extend_from_slice(chunk),
            _ => return Ok(()),
        }
    }
}

fn read_retrying(file: &mut File, buffer: &mut [u8]) -> io::Result<usize> {
    loop {
        match file.read(buffer) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("lpd-attribute-file-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            panic!("cannot create {}: {e}", dir.display());
        }
        dir
    }

    #[test]
    fn a_missing_attribute_is_none_and_a_present_one_is_its_bytes() {
        let dir = scratch("attr");
        let path = dir.join("size");
        assert!(matches!(read_attribute(&path), Ok(None)));
        if let Err(e) = std::fs::write(&path, b"2095071\n") {
            panic!("{e}");
        }
        assert_eq!(
            read_attribute(&path).ok().flatten(),
            Some(b"2095071\n".to_vec())
        );
        assert_eq!(
            read_attribute_line(&path).ok().flatten().as_deref(),
            Some("2095071")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_small_file_longer_than_a_page_is_read_whole() {
        let dir = scratch("long");
        let path = dir.join("b254:1");
        let content: Vec<u8> = (0..10_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        if let Err(e) = std::fs::write(&path, &content) {
            panic!("{e}");
        }
        assert_eq!(read_small_file(&path).ok().flatten(), Some(content));
        assert!(matches!(read_small_file(&dir.join("absent")), Ok(None)));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_attribute_larger_than_a_4k_page_is_read_whole() {
        // A 16 KiB-page kernel's sysfs may hand out up to 16 KiB.
        let dir = scratch("big");
        let path = dir.join("uevent");
        let content: Vec<u8> = (0..CHUNK * 3 + 17).map(|i| b'A' + (i % 26) as u8).collect();
        if let Err(e) = std::fs::write(&path, &content) {
            panic!("{e}");
        }
        assert_eq!(read_attribute(&path).ok().flatten(), Some(content));
        let exact: Vec<u8> = vec![b'x'; CHUNK];
        if let Err(e) = std::fs::write(&path, &exact) {
            panic!("{e}");
        }
        assert_eq!(read_attribute(&path).ok().flatten(), Some(exact));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_folder_is_an_error_not_absent() {
        let dir = scratch("dir");
        assert!(read_attribute(&dir).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
