//! Listing a folder with `getdents64` into a stack buffer.
//!
//! `std::fs::read_dir` goes through musl's `opendir`, which allocates its buffer
//! with musl's allocator (a `mmap` and `munmap` per folder in a short process) and
//! opens with an extra `fcntl`. A start lists `/sys/class/block`, the `holders/`
//! folder of every device stacked on the partition and `/dev/<vg>`; this costs one
//! `openat`, the `getdents64` calls and one `close`.
use std::ffi::OsString;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

use nix::libc;

use super::open::open_read_only;

/// What `getdents64` says an entry is (`d_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Directory,
    Symlink,
    /// Anything else the file system named (regular file, device node, …).
    Other,
    /// The file system does not say (`DT_UNKNOWN`); ask `lstat`.
    Unknown,
}

/// One entry of a folder, `.` and `..` left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: OsString,
    pub kind: EntryKind,
}

/// An entry's name as text, without copying it again when it is UTF-8 (sysfs and
/// `/dev` names always are; others are shown with U+FFFD). A listing of 3,000
/// block devices is read twice per start.
pub fn name_string(name: OsString) -> String {
    name.into_string()
        .unwrap_or_else(|raw| raw.to_string_lossy().into_owned())
}

/// Offsets in `struct linux_dirent64`: d_ino u64, d_off i64, d_reclen u16,
/// d_type u8, then the NUL-terminated name.
const RECLEN_AT: usize = 16;
const TYPE_AT: usize = 18;
const NAME_AT: usize = 19;

/// The entries of the folder at `path`, in the order the file system gives them;
/// an error once there are more than `limit` (nothing of ours holds that many).
pub fn list_folder(path: &Path, limit: usize) -> io::Result<Vec<Entry>> {
    let folder = open_read_only(path, libc::O_DIRECTORY)?;
    collect_entries(
        |buffer| {
            // SAFETY: the descriptor is open for the whole call (`folder` owns it),
            // and the kernel writes at most `buffer.len()` bytes into `buffer`.
            let got = unsafe {
                libc::syscall(
                    libc::SYS_getdents64,
                    folder.as_raw_fd(),
                    buffer.as_mut_ptr(),
                    buffer.len(),
                )
            };
            if got < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(usize::try_from(got).unwrap_or(0))
            }
        },
        limit,
        path,
    )
}

/// Bytes of records one `getdents64` may return: `/sys/class/block` on a node with
/// thousands of devices (DRBD, LINSTOR's volumes) then takes a few calls, not dozens.
const RECORD_BUFFER_BYTES: usize = 32 * 1024;

/// The kernel writes `linux_dirent64` records with 8-byte fields into this.
#[repr(C, align(8))]
struct RecordBuffer([u8; RECORD_BUFFER_BYTES]);

/// Calls `fill` (one `getdents64`) until it returns 0. A short result does not
/// mean the end: the kernel also stops early when a signal is pending.
fn collect_entries(
    mut fill: impl FnMut(&mut [u8]) -> io::Result<usize>,
    limit: usize,
    path: &Path,
) -> io::Result<Vec<Entry>> {
    let mut buffer = Box::new(RecordBuffer([0u8; RECORD_BUFFER_BYTES]));
    let mut entries = Vec::new();
    loop {
        let filled = match fill(&mut buffer.0) {
            Ok(0) => return Ok(entries),
            Ok(n) => n.min(buffer.0.len()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        parse_records(buffer.0.get(..filled).unwrap_or_default(), &mut entries)?;
        if entries.len() > limit {
            return Err(io::Error::other(format!(
                "{} holds more than {limit} entries",
                path.display()
            )));
        }
    }
}

/// Appends the entries of one `getdents64` result.
fn parse_records(mut records: &[u8], entries: &mut Vec<Entry>) -> io::Result<()> {
    let malformed = || io::Error::other("getdents64 returned a malformed record");
    while !records.is_empty() {
        let reclen_bytes = records
            .get(RECLEN_AT..RECLEN_AT + 2)
            .ok_or_else(malformed)?;
        let reclen = usize::from(u16::from_ne_bytes([reclen_bytes[0], reclen_bytes[1]]));
        let record = records.get(..reclen).ok_or_else(malformed)?;
        let kind = match record.get(TYPE_AT).copied().ok_or_else(malformed)? {
            libc::DT_DIR => EntryKind::Directory,
            libc::DT_LNK => EntryKind::Symlink,
            libc::DT_UNKNOWN => EntryKind::Unknown,
            _ => EntryKind::Other,
        };
        let name_field = record.get(NAME_AT..).ok_or_else(malformed)?;
        let name_len = name_field
            .iter()
            .position(|b| *b == 0)
            .ok_or_else(malformed)?;
        let name = name_field.get(..name_len).ok_or_else(malformed)?;
        if name != b"." && name != b".." {
            entries.push(Entry {
                name: OsString::from_vec(name.to_vec()),
                kind,
            });
        }
        if reclen == 0 {
            return Err(malformed());
        }
        records = records.get(reclen..).ok_or_else(malformed)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn lists_what_std_lists_with_kinds() {
        let dir = std::env::temp_dir().join(format!("lpd-ffi-dir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        if let Err(e) = std::fs::create_dir_all(dir.join("sub")) {
            panic!("{e}");
        }
        for i in 0..300 {
            // Enough names to need several getdents64 calls.
            if let Err(e) = std::fs::write(dir.join(format!("file-with-a-long-name-{i:04}")), b"") {
                panic!("{e}");
            }
        }
        if let Err(e) = std::os::unix::fs::symlink("sub", dir.join("link")) {
            panic!("{e}");
        }
        assert!(list_folder(&dir, 100).is_err(), "over the limit");
        let ours: BTreeMap<OsString, EntryKind> = match list_folder(&dir, 1000) {
            Ok(list) => list.into_iter().map(|e| (e.name, e.kind)).collect(),
            Err(e) => panic!("{e}"),
        };
        let std_names: Vec<OsString> = match std::fs::read_dir(&dir) {
            Ok(rd) => rd.filter_map(Result::ok).map(|e| e.file_name()).collect(),
            Err(e) => panic!("{e}"),
        };
        assert_eq!(ours.len(), std_names.len());
        assert!(std_names.iter().all(|n| ours.contains_key(n)));
        assert_eq!(
            ours.get(&OsString::from("sub")),
            Some(&EntryKind::Directory)
        );
        assert_eq!(ours.get(&OsString::from("link")), Some(&EntryKind::Symlink));
        assert!(list_folder(&dir.join("absent"), 1000).is_err());
        assert!(list_folder(&dir.join("file-with-a-long-name-0001"), 1000).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// One `linux_dirent64` record for `name`, padded to 8 bytes.
    fn record(name: &str, kind: u8) -> Vec<u8> {
        let len = (NAME_AT + name.len() + 1).div_ceil(8) * 8;
        let mut r = vec![0u8; len];
        r[RECLEN_AT..RECLEN_AT + 2].copy_from_slice(&(len as u16).to_ne_bytes());
        r[TYPE_AT] = kind;
        r[NAME_AT..NAME_AT + name.len()].copy_from_slice(name.as_bytes());
        r
    }

    #[test]
    fn a_short_result_is_not_the_end_of_the_listing() {
        // A pending signal makes the kernel return after one record ("."), with
        // most of the buffer empty; the rest comes with the next calls.
        let mut results = vec![
            record(".", libc::DT_DIR),
            [record("..", libc::DT_DIR), record("dm-0", libc::DT_LNK)].concat(),
        ]
        .into_iter();
        let listed = collect_entries(
            |buffer| match results.next() {
                Some(chunk) => {
                    buffer[..chunk.len()].copy_from_slice(&chunk);
                    Ok(chunk.len())
                }
                None => Ok(0),
            },
            10,
            Path::new("/sys/class/block"),
        );
        let names: Vec<OsString> = match listed {
            Ok(list) => list.into_iter().map(|e| e.name).collect(),
            Err(e) => panic!("{e}"),
        };
        assert_eq!(names, vec![OsString::from("dm-0")]);
    }

    #[test]
    fn malformed_records_are_errors_not_panics() {
        let mut entries = Vec::new();
        assert!(parse_records(&[1, 2, 3], &mut entries).is_err());
        let mut zero_length = vec![0u8; 24];
        zero_length[NAME_AT] = b'x';
        assert!(parse_records(&zero_length, &mut entries).is_err());
    }
}
