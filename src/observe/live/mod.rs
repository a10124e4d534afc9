//! What is active right now: device-mapper devices (LVM volumes, thin-pool
//! usage) and which devices hold which (sysfs `holders/`).
//!
//! Unlike the on-disk LVM metadata, this is kernel state: it tells whether a
//! volume is open or in use before anything is removed.

pub mod dm;
pub mod holders;
pub mod stacked;

use std::io;
use std::path::PathBuf;

pub use dm::{
    active_lvm_volumes, active_lvm_volumes_asking, device_by_uuid, parse_lvm_dm_uuid,
    parse_thin_pool_status, parse_thin_pool_table, thin_pool_device, thin_pool_usage, ActiveLv,
    DeviceByUuid, DmParseError, LvmDmUuid, LvmLayer, ThinPoolCounters, ThinPoolMode,
    ThinPoolStatus, ThinPoolUsage,
};
pub use holders::{holders, list_covers_holders, Holder, HoldersReader};
pub use stacked::{stacked_on, StackedDevice};

/// Reading live kernel state failed.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error(
        "device-mapper is not available: {source}. Load the kernel modules (`modprobe dm_mod \
         dm_thin_pool`) and, in a container, make the host's /dev/mapper/control visible"
    )]
    DeviceMapperUnavailable {
        #[source]
        source: DmUnavailable,
    },
    #[error("device-mapper {op} failed{}: {source}", device.as_ref().map(|d| format!(" for {d:?}")).unwrap_or_default())]
    Dm {
        op: &'static str,
        device: Option<String>,
        #[source]
        source: devicemapper::DmError,
    },
    #[error("device-mapper device {dm_name:?} is not a thin pool: its table has target {found:?}, expected \"thin-pool\"")]
    NotAThinPool { dm_name: String, found: String },
    #[error("thin pool {dm_name:?} has failed (status {status:?}); check it with `lvs` and `thin_check` before going on")]
    ThinPoolFailed { dm_name: String, status: String },
    #[error("cannot understand {} of {dm_name:?}: {} (found {:?})", source.what, source.detail, source.found)]
    Parse {
        dm_name: String,
        #[source]
        source: DmParseError,
    },
    #[error("cannot understand device-mapper name of {dm_name:?}: {source} (found {dm_name:?})")]
    InvalidName {
        dm_name: String,
        #[source]
        source: devicemapper::DmError,
    },
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Why the device-mapper control node cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DmUnavailable {
    #[error(
        "{} does not exist (no dm-mod in this kernel, or /dev is not the host's)",
        dm::DM_CONTROL
    )]
    NoControlNode,
    #[error("cannot open {}: {source}", dm::DM_CONTROL)]
    CannotOpen {
        #[source]
        source: devicemapper::DmError,
    },
}
