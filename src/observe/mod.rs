//! The read side: everything the tool learns about the machine, without writing.

pub mod attribute_file;
pub mod blockdev;
pub mod host_lvm;
pub mod host_lvm_facts;
pub mod live;
pub mod lvm;
pub mod partition;
pub mod phase_timer;
pub mod satellite_id;
pub mod seed_layout;
pub mod signature;
pub mod snapshot;
pub mod state;
pub mod vg_dev_dir;
