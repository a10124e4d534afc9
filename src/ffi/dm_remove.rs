//! Removes one device-mapper device by its DM uuid (`DM_DEV_REMOVE`), without udev
//! synchronisation.
//!
//! By uuid, not by name: a name is free for anyone to take as soon as its device is
//! gone, while LVM's uuids (`LVM-<vg uuid><lv uuid>[-<layer>]`) name one LV's device.
//! The kernel (drivers/md/dm-ioctl.c, `__find_device_hash_cell`) looks a device up by
//! `uuid` when it is set and then requires `name` empty and `dev` 0; it refuses
//! (EBUSY) while anything holds the device open.
//!
//! The devicemapper crate's `device_remove` waits on a SysV semaphore that udev's
//! rules complete whenever `/run/udev/control` exists. In a container (its own IPC
//! namespace, the host's `/run/udev` mounted) the host's udev completes a semaphore
//! in another namespace and the wait never ends; LVM itself runs with
//! `udev_sync = 0` for the same reason. This sends the ioctl with no cookie: udev
//! still sees the removal, nobody waits for it.

use std::ffi::CString;
use std::fs::OpenOptions;
use std::os::fd::AsRawFd;

use devicemapper_sys::{dm_ioctl, DM_DEV_REMOVE_CMD, DM_IOCTL, DM_UUID_LEN};

/// `DM_DEV_REMOVE` exists since ioctl interface 4.0.0.
const DM_INTERFACE_VERSION: [u32; 3] = [4, 0, 0];
const DM_CONTROL: &str = "/dev/mapper/control";

nix::ioctl_readwrite!(raw_dm_dev_remove, DM_IOCTL, DM_DEV_REMOVE_CMD, dm_ioctl);

/// Why a removal failed.
#[derive(Debug, thiserror::Error)]
pub enum DmRemoveError {
    #[error("device-mapper uuid {0:?} is empty, too long or contains a NUL byte")]
    BadUuid(String),
    #[error("cannot open {DM_CONTROL}: {0}")]
    Control(std::io::Error),
    #[error("the kernel refused to remove device-mapper device {name:?} (uuid {uuid}): {errno}")]
    Ioctl {
        name: String,
        uuid: String,
        errno: nix::Error,
    },
}

/// Removes the device-mapper device whose DM uuid is `uuid`; `name` is only for the
/// error text.
pub fn remove_device_by_uuid(uuid: &str, name: &str) -> Result<(), DmRemoveError> {
    let bad_uuid = || DmRemoveError::BadUuid(uuid.to_owned());
    let c_uuid = CString::new(uuid).map_err(|_| bad_uuid())?;
    let bytes = c_uuid.as_bytes_with_nul();
    if bytes.len() <= 1 || bytes.len() > DM_UUID_LEN as usize {
        return Err(bad_uuid());
    }
    let control = OpenOptions::new()
        .read(true)
        .write(true)
        .open(DM_CONTROL)
        .map_err(DmRemoveError::Control)?;
    let mut header = dm_ioctl {
        version: DM_INTERFACE_VERSION,
        // The header alone: DM_DEV_REMOVE takes no payload.
        data_size: std::mem::size_of::<dm_ioctl>() as u32,
        data_start: std::mem::size_of::<dm_ioctl>() as u32,
        // `name` stays empty and `dev` 0: the kernel then looks up by uuid only.
        ..dm_ioctl::default()
    };
    for (slot, byte) in header.uuid.iter_mut().zip(bytes) {
        *slot = *byte as std::os::raw::c_char;
    }
    // SAFETY: `control` is an open descriptor of the device-mapper control node for
    // the whole call, and `header` is a live, fully initialised `struct dm_ioctl`
    // whose `data_size` is exactly its own size, so the kernel reads and writes
    // only inside it.
    unsafe { raw_dm_dev_remove(control.as_raw_fd(), &mut header) }.map_err(|errno| {
        DmRemoveError::Ioctl {
            name: name.to_owned(),
            uuid: uuid.to_owned(),
            errno,
        }
    })?;
    Ok(())
}
