//! Opening a file read-only and close-on-exec with one system call.
//!
//! musl's `open()` (which `std::fs::File::open` calls) follows every `O_CLOEXEC`
//! open with an `fcntl(F_SETFD)` for kernels older than 2.6.23; its `openat()` does
//! not. A start opens dozens of sysfs attributes, and under emulation each system
//! call costs tens of microseconds, so the static build calls `openat` directly.
use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::FromRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::libc;

/// Opens `path` with `O_RDONLY | O_CLOEXEC` (plus `extra_flags`, e.g.
/// `O_NONBLOCK`), relative paths from the working directory.
pub fn open_read_only(path: &Path, extra_flags: libc::c_int) -> io::Result<File> {
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
    let fd = loop {
        // SAFETY: `c_path` is a NUL-terminated string that outlives the call; openat
        // with AT_FDCWD and these flags takes no other pointers and creates nothing.
        let fd = unsafe {
            libc::openat(
                libc::AT_FDCWD,
                c_path.as_ptr(),
                libc::O_RDONLY | libc::O_CLOEXEC | extra_flags,
            )
        };
        if fd >= 0 {
            break fd;
        }
        let error = io::Error::last_os_error();
        // As std's File::open does: a signal may interrupt the open.
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    };
    // SAFETY: `fd` was just returned by openat, is open, and nothing else owns it;
    // the File takes ownership and closes it once.
    Ok(unsafe { File::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn opens_for_reading_and_reports_a_missing_file_as_not_found() {
        let mut file = match open_read_only(Path::new("/proc/self/stat"), 0) {
            Ok(f) => f,
            Err(e) => panic!("{e}"),
        };
        let mut text = String::new();
        assert!(file.read_to_string(&mut text).is_ok_and(|n| n > 0));
        let missing = open_read_only(Path::new("/nonexistent/lpd-open-test"), 0);
        assert!(matches!(missing, Err(e) if e.kind() == io::ErrorKind::NotFound));
        assert!(open_read_only(Path::new("bad\0path"), 0).is_err());
    }
}
