//! Lists every device-mapper device with its uuid in one `DM_LIST_DEVICES` ioctl.
//!
//! The devicemapper crate's `list_devices` asks for names and device numbers only,
//! so learning a device's uuid took one more ioctl per device: a start on a node
//! with 1,000 thin volumes and 1,000 other mappings paid 2,000 of them. Since
//! ioctl interface 4.45 (Linux 5.14) the kernel appends each device's uuid to the
//! list when asked with `DM_UUID_FLAG` (drivers/md/dm-ioctl.c, `list_devices`);
//! an older kernel ignores the flag and marks no record, which the caller sees as
//! [`ListedDevice::uuid`] = [`UuidInList::NotReported`].

use std::fs::OpenOptions;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};

use devicemapper_sys::{dm_ioctl, DM_IOCTL, DM_LIST_DEVICES_CMD};

const DM_CONTROL: &str = "/dev/mapper/control";
/// The version sent: `DM_LIST_DEVICES` exists since 4.0; the uuids need 4.45 but
/// an older kernel answers without them instead of refusing.
const DM_INTERFACE_VERSION: [u32; 3] = [4, 0, 0];
/// `DM_UUID_FLAG` (linux/dm-ioctl.h): append uuids to the list.
const DM_UUID_FLAG: u32 = 1 << 14;
/// `DM_BUFFER_FULL_FLAG`: the list did not fit; ask again with more room.
const DM_BUFFER_FULL_FLAG: u32 = 1 << 8;
const DM_NAME_LIST_FLAG_HAS_UUID: u32 = 1;
const DM_NAME_LIST_FLAG_DOESNT_HAVE_UUID: u32 = 2;
/// First buffer: ~200 LVM devices; doubled while the kernel says it is full.
const FIRST_BUFFER_BYTES: usize = 64 * 1024;
/// The kernel caps one ioctl's buffer far below this; a list that needs more is an error.
const MAX_BUFFER_BYTES: usize = 64 * 1024 * 1024;
/// The buffer size the last successful list needed.
static LAST_FIT: AtomicUsize = AtomicUsize::new(FIRST_BUFFER_BYTES);

nix::ioctl_readwrite!(raw_dm_list_devices, DM_IOCTL, DM_LIST_DEVICES_CMD, dm_ioctl);

/// What the kernel said about a listed device's uuid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UuidInList {
    Uuid(String),
    /// The device has no uuid (e.g. `dmsetup create` without `-u`).
    None,
    /// The kernel predates uuids in the list: ask the device itself.
    NotReported,
}

/// One device of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedDevice {
    pub name: String,
    pub major: u32,
    pub minor: u32,
    pub uuid: UuidInList,
}

/// Why the list could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DmListError {
    #[error("cannot open {DM_CONTROL}: {0}")]
    Control(std::io::Error),
    #[error("DM_LIST_DEVICES failed: {0}")]
    Ioctl(nix::Error),
    #[error("the device-mapper list is malformed: {0}")]
    Malformed(&'static str),
    #[error("the device-mapper list does not fit in {MAX_BUFFER_BYTES} bytes")]
    TooLarge,
}

/// Bytes one device takes in the kernel's list as LINSTOR's volumes name them: the
/// record header (12), the name (`<vg>-pvc--…_00000`, ~70), event number and
/// flags (8) and the uuid (`LVM-` and 64 characters), each part 8-byte aligned:
/// ~170. A little more, so that the first guess fits.
const EXPECTED_BYTES_PER_DEVICE: usize = 192;

/// The first buffer for a list of about `devices` devices, when this process has
/// not listed before (or needed less): the kernel copies the whole buffer in and
/// out and walks every device on each attempt, and on a node with 2,000 devices a
/// 64 KiB start took four attempts.
fn first_buffer_bytes(devices: usize, last_fit: usize) -> usize {
    let header = std::mem::size_of::<dm_ioctl>();
    let guess = devices
        .saturating_mul(EXPECTED_BYTES_PER_DEVICE)
        .saturating_add(header)
        .min(MAX_BUFFER_BYTES);
    // Whole u64 words (the buffer is a `Vec<u64>`).
    guess
        .max(last_fit)
        .max(FIRST_BUFFER_BYTES)
        .next_multiple_of(8)
}

/// The buffer after one the kernel found too small: twice as large, and the cap
/// itself tried once (a first guess sized from the device count is no power of
/// two, so doubling may step over it); `None` once the cap was too small.
fn next_buffer_bytes(bytes: usize) -> Option<usize> {
    (bytes < MAX_BUFFER_BYTES).then(|| bytes.saturating_mul(2).min(MAX_BUFFER_BYTES))
}

/// Every device-mapper device, with uuids where the kernel reports them.
pub fn list_devices_with_uuids() -> Result<Vec<ListedDevice>, DmListError> {
    list_devices_with_uuids_expecting(0)
}

/// [`list_devices_with_uuids`] when about `devices` devices are expected (the
/// `dm-N` names in `/sys/block`): the first attempt is made large enough.
pub fn list_devices_with_uuids_expecting(devices: usize) -> Result<Vec<ListedDevice>, DmListError> {
    let control = OpenOptions::new()
        .read(true)
        .write(true)
        .open(DM_CONTROL)
        .map_err(DmListError::Control)?;
    let header_len = std::mem::size_of::<dm_ioctl>();
    // Start at the size the last list of this process needed, or the expected one:
    // each doubling is a full list by the kernel.
    let mut bytes = first_buffer_bytes(devices, LAST_FIT.load(Ordering::Relaxed));
    loop {
        // u64 words: the kernel's records are 8-byte aligned, and so is the header.
        let mut buffer = vec![0u64; bytes / 8];
        let header = dm_ioctl {
            version: DM_INTERFACE_VERSION,
            data_size: u32::try_from(bytes).map_err(|_| DmListError::TooLarge)?,
            data_start: u32::try_from(header_len).map_err(|_| DmListError::TooLarge)?,
            flags: DM_UUID_FLAG,
            ..dm_ioctl::default()
        };
        let header_ptr = buffer.as_mut_ptr().cast::<dm_ioctl>();
        // SAFETY: `buffer` is a live, 8-byte aligned allocation of `bytes` bytes, at
        // least `size_of::<dm_ioctl>()`; writing the header at its start stays inside.
        unsafe { header_ptr.write(header) };
        // SAFETY: `control` is an open descriptor of the device-mapper control node;
        // the header says the buffer holds `bytes` bytes, which it does, so the
        // kernel reads and writes only inside `buffer`, which outlives the call.
        unsafe { raw_dm_list_devices(control.as_raw_fd(), header_ptr) }
            .map_err(DmListError::Ioctl)?;
        // SAFETY: the kernel wrote a `dm_ioctl` back at the same place; the buffer
        // is still live and aligned.
        let out = unsafe { header_ptr.read() };
        if out.flags & DM_BUFFER_FULL_FLAG != 0 {
            bytes = next_buffer_bytes(bytes).ok_or(DmListError::TooLarge)?;
            continue;
        }
        // SAFETY: `buffer` holds `bytes` initialised bytes (zeroed, then written by
        // the kernel); viewing u64 words as bytes is always valid.
        let raw: &[u8] = unsafe { std::slice::from_raw_parts(buffer.as_ptr().cast::<u8>(), bytes) };
        let start = usize::try_from(out.data_start).map_err(|_| DmListError::TooLarge)?;
        let end = usize::try_from(out.data_size)
            .map_err(|_| DmListError::TooLarge)?
            .min(bytes);
        let payload = raw
            .get(start..end)
            .ok_or(DmListError::Malformed("data_start beyond data_size"))?;
        LAST_FIT.store(bytes, Ordering::Relaxed);
        return parse_name_list(payload);
    }
}

fn u32_at(data: &[u8], at: usize) -> Result<u32, DmListError> {
    let word = data
        .get(at..at.checked_add(4).ok_or(DmListError::Malformed("offset"))?)
        .ok_or(DmListError::Malformed("record runs past the end"))?;
    let mut b = [0u8; 4];
    b.copy_from_slice(word);
    Ok(u32::from_ne_bytes(b))
}

fn c_string_at(data: &[u8], at: usize) -> Result<(String, usize), DmListError> {
    let tail = data
        .get(at..)
        .ok_or(DmListError::Malformed("string past the end"))?;
    let len = tail
        .iter()
        .position(|b| *b == 0)
        .ok_or(DmListError::Malformed("string without its NUL"))?;
    Ok((String::from_utf8_lossy(&tail[..len]).into_owned(), len))
}

fn align8(n: usize) -> Option<usize> {
    n.checked_add(7).map(|v| v & !7)
}

/// Parses the kernel's `struct dm_name_list` records: `u64 dev; u32 next; char
/// name[]`, then (8-aligned) `u32 event_nr; u32 flags;` and the uuid when flags say
/// so. An empty payload (or a first record with `dev` 0) is no devices.
pub fn parse_name_list(data: &[u8]) -> Result<Vec<ListedDevice>, DmListError> {
    let mut devices = Vec::new();
    let mut at = 0usize;
    while let Some(dev_bytes) = data.get(at..at + 8) {
        let mut b = [0u8; 8];
        b.copy_from_slice(dev_bytes);
        let dev = u64::from_ne_bytes(b);
        if dev == 0 && devices.is_empty() {
            break;
        }
        let next = u32_at(data, at + 8)?;
        let name_at = at + 12;
        let (name, name_len) = c_string_at(data, name_at)?;
        // What follows the name since 4.37 (event number) and 4.45 (flags, uuid).
        let extra_at = align8(name_at + name_len + 1).ok_or(DmListError::Malformed("offset"))?;
        let record_end = if next == 0 {
            data.len()
        } else {
            at.checked_add(next as usize)
                .ok_or(DmListError::Malformed("offset"))?
        };
        let uuid = if extra_at + 8 <= record_end {
            let flags = u32_at(data, extra_at + 4)?;
            if flags & DM_NAME_LIST_FLAG_HAS_UUID != 0 {
                UuidInList::Uuid(c_string_at(data, extra_at + 8)?.0)
            } else if flags & DM_NAME_LIST_FLAG_DOESNT_HAVE_UUID != 0 {
                UuidInList::None
            } else {
                UuidInList::NotReported
            }
        } else {
            UuidInList::NotReported
        };
        // The kernel's new_encode_dev: minor's low 8 bits, major, minor's high bits.
        let major = ((dev >> 8) & 0xfff) as u32;
        let minor = ((dev & 0xff) | ((dev >> 12) & 0xfff00)) as u32;
        devices.push(ListedDevice {
            name,
            major,
            minor,
            uuid,
        });
        if next == 0 {
            break;
        }
        if record_end <= at {
            return Err(DmListError::Malformed("a record points backwards"));
        }
        at = record_end;
    }
    Ok(devices)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_buffer_fits_a_linstor_node_in_one_attempt() {
        // A LINSTOR thin volume's device as LVM names it, with its uuid.
        let name = "linstor--vg-pvc--0000abcd--0000--4000--8000--00000000abcd_00000";
        let uuid = format!("LVM-{}", "x".repeat(64));
        let one = record(
            0,
            name,
            Some(DM_NAME_LIST_FLAG_HAS_UUID),
            Some(&uuid),
            false,
        )
        .len();
        assert!(one <= EXPECTED_BYTES_PER_DEVICE, "{one} bytes per device");
        let header = std::mem::size_of::<dm_ioctl>();
        for devices in [0, 1, 300, 2_008, 20_000] {
            let bytes = first_buffer_bytes(devices, 0);
            assert!(bytes >= devices * one + header, "{devices}: {bytes}");
            assert_eq!(bytes % 8, 0);
        }
        // Never below the fixed start or what this process needed before, never
        // beyond the cap.
        assert_eq!(first_buffer_bytes(0, 0), FIRST_BUFFER_BYTES);
        assert_eq!(first_buffer_bytes(10, 1 << 20), 1 << 20);
        assert_eq!(first_buffer_bytes(usize::MAX, 0), MAX_BUFFER_BYTES);
    }

    #[test]
    fn doubling_tries_the_cap_once_then_gives_up() {
        assert_eq!(next_buffer_bytes(64 * 1024), Some(128 * 1024));
        let guess = first_buffer_bytes(200_000, 0);
        assert!(guess > MAX_BUFFER_BYTES / 2 && guess < MAX_BUFFER_BYTES);
        assert_eq!(next_buffer_bytes(guess), Some(MAX_BUFFER_BYTES));
        assert_eq!(next_buffer_bytes(MAX_BUFFER_BYTES), None);
    }

    /// One record as the kernel lays it out (drivers/md/dm-ioctl.c).
    fn record(dev: u64, name: &str, flags: Option<u32>, uuid: Option<&str>, last: bool) -> Vec<u8> {
        let mut r = Vec::new();
        r.extend_from_slice(&dev.to_ne_bytes());
        r.extend_from_slice(&0u32.to_ne_bytes());
        r.extend_from_slice(name.as_bytes());
        r.push(0);
        while r.len() % 8 != 0 {
            r.push(0);
        }
        if let Some(flags) = flags {
            r.extend_from_slice(&7u32.to_ne_bytes());
            r.extend_from_slice(&flags.to_ne_bytes());
            if let Some(u) = uuid {
                r.extend_from_slice(u.as_bytes());
                r.push(0);
            }
        }
        while r.len() % 8 != 0 {
            r.push(0);
        }
        if !last {
            let next = r.len() as u32;
            r[8..12].copy_from_slice(&next.to_ne_bytes());
        }
        r
    }

    #[test]
    fn parses_names_devices_and_uuids() {
        // 253:3 and 253:300 (minor above 255 uses the high bits).
        let dev_3 = 253u64 << 8 | 3;
        let dev_300 = (253u64 << 8) | (300 & 0xff) | ((300u64 & !0xff) << 12);
        let mut data = record(dev_3, "vg-pool", Some(1), Some("LVM-abc-tpool"), false);
        data.extend(record(dev_300, "linear1", Some(2), None, false));
        data.extend(record(dev_3, "old", Some(0), None, true));
        let list = match parse_name_list(&data) {
            Ok(l) => l,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(
            list,
            vec![
                ListedDevice {
                    name: "vg-pool".into(),
                    major: 253,
                    minor: 3,
                    uuid: UuidInList::Uuid("LVM-abc-tpool".into())
                },
                ListedDevice {
                    name: "linear1".into(),
                    major: 253,
                    minor: 300,
                    uuid: UuidInList::None
                },
                ListedDevice {
                    name: "old".into(),
                    major: 253,
                    minor: 3,
                    uuid: UuidInList::NotReported
                },
            ]
        );
    }

    #[test]
    fn an_empty_list_and_a_kernel_without_event_numbers() {
        assert!(matches!(parse_name_list(&[0u8; 16]), Ok(l) if l.is_empty()));
        assert!(matches!(parse_name_list(&[]), Ok(l) if l.is_empty()));
        let data = record(253 << 8 | 1, "a", None, None, true);
        let Ok(list) = parse_name_list(&data) else {
            panic!("not parsed")
        };
        assert_eq!(list[0].uuid, UuidInList::NotReported);
    }

    #[test]
    fn malformed_lists_are_errors_not_panics() {
        let mut data = record(253 << 8 | 1, "abc", Some(1), Some("LVM-x"), true);
        // A name without its NUL.
        data.truncate(14);
        assert!(parse_name_list(&data).is_err());
        // A record whose `next` points backwards past itself.
        let mut data = record(253 << 8 | 1, "a", Some(2), None, false);
        data.extend(record(253 << 8 | 2, "b", Some(2), None, false));
        let second = 24usize;
        data[second + 8..second + 12].copy_from_slice(&0u32.to_ne_bytes());
        assert!(parse_name_list(&data).is_ok());
    }
}
