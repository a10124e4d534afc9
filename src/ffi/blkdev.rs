//! Block-device ioctls (size, logical and physical sector size, read-only flag).
//!
//! The raw ioctl wrappers are `unsafe` because the kernel writes through a raw
//! pointer; the functions exported here hand it a properly sized, owned
//! integer and so are safe to call with any open file.

use std::os::fd::{AsFd, AsRawFd};

use nix::libc::{c_int, c_uint};
use nix::sys::ioctl::ioctl_num_type;

/// `_IO(0x12, 104)`: logical sector size, written as a C `int`.
const BLKSSZGET: ioctl_num_type = nix::request_code_none!(0x12, 104);
/// `_IO(0x12, 123)`: physical block size, written as a C `unsigned int`.
const BLKPBSZGET: ioctl_num_type = nix::request_code_none!(0x12, 123);
/// `_IOR(0x12, 114, size_t)`: size in bytes, written as a 64-bit integer. The
/// request number encodes `sizeof(size_t)` while the kernel always writes a
/// `u64`, so the number is built by hand rather than with `ioctl_read!`.
const BLKGETSIZE64: ioctl_num_type =
    nix::request_code_read!(0x12, 114, std::mem::size_of::<usize>());

/// `_IO(0x12, 94)`: the read-only flag, written as a C `int` (non-zero: read-only).
const BLKROGET: ioctl_num_type = nix::request_code_none!(0x12, 94);

nix::ioctl_read_bad!(raw_blkroget, BLKROGET, c_int);
nix::ioctl_read_bad!(raw_blkgetsize64, BLKGETSIZE64, u64);
nix::ioctl_read_bad!(raw_blksszget, BLKSSZGET, c_int);
nix::ioctl_read_bad!(raw_blkpbszget, BLKPBSZGET, c_uint);

/// Size of the block device open as `fd`, in bytes (`BLKGETSIZE64`).
pub fn size_bytes(fd: impl AsFd) -> nix::Result<u64> {
    let mut size: u64 = 0;
    // SAFETY: `fd` is a valid open descriptor borrowed for the duration of the
    // call, and `size` is a live, writable u64 — exactly what BLKGETSIZE64 writes.
    unsafe { raw_blkgetsize64(fd.as_fd().as_raw_fd(), &mut size) }?;
    Ok(size)
}

/// Logical sector size of the block device open as `fd` (`BLKSSZGET`).
pub fn logical_sector_size(fd: impl AsFd) -> nix::Result<u32> {
    let mut size: c_int = 0;
    // SAFETY: `fd` is a valid open descriptor borrowed for the duration of the
    // call, and `size` is a live, writable C int — what BLKSSZGET writes.
    unsafe { raw_blksszget(fd.as_fd().as_raw_fd(), &mut size) }?;
    u32::try_from(size).map_err(|_| nix::Error::EINVAL)
}

/// Physical block size of the block device open as `fd` (`BLKPBSZGET`).
pub fn physical_block_size(fd: impl AsFd) -> nix::Result<u32> {
    let mut size: c_uint = 0;
    // SAFETY: `fd` is a valid open descriptor borrowed for the duration of the
    // call, and `size` is a live, writable C unsigned int — what BLKPBSZGET writes.
    unsafe { raw_blkpbszget(fd.as_fd().as_raw_fd(), &mut size) }?;
    Ok(size)
}

/// Whether the kernel refuses writes to the block device open as `fd` (`BLKROGET`:
/// `blockdev --setro`, a write-protected disk, a read-only partition).
pub fn is_read_only(fd: impl AsFd) -> nix::Result<bool> {
    let mut flag: c_int = 0;
    // SAFETY: `fd` is a valid open descriptor borrowed for the duration of the
    // call, and `flag` is a live, writable C int — what BLKROGET writes.
    unsafe { raw_blkroget(fd.as_fd().as_raw_fd(), &mut flag) }?;
    Ok(flag != 0)
}
