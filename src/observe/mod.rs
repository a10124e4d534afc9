//! The read side: everything the tool learns about the machine, without writing.
//!
//! # One vocabulary for PVs, VGs and LVs
//!
//! The same volumes are seen three ways; a type's suffix says which:
//! - **on disk**, as LVM wrote it ([`lvm`]): [`lvm::PvOnDisk`] is what one device
//!   carries (label, PV header, metadata areas); its [`lvm::VgMetadata`] is the VG
//!   metadata text, which lists [`lvm::PvInMetadata`] and [`lvm::LvInMetadata`];
//! - **in the kernel**, right now ([`live`]): `Active*`, e.g. [`live::ActiveLv`], a
//!   device-mapper device of an LV;
//! - **for the planner** ([`state`]): `*Facts` ([`state::PvFacts`],
//!   [`state::VgFacts`], [`state::LvFacts`]), the plain data [`snapshot`] derives
//!   from the other two.
//!
//! "Metadata" alone means LVM's VG metadata (`vg_metadata`). The thin pool's
//! metadata LV is `pool_metadata`/`_tmeta`; the seed tool's LV that happens to be
//! named `metadata` is [`seed_layout::SEED_ID_LV`]; the `metadata` subcommand
//! prints a [`lvm::PvOnDisk`].

pub mod attribute_file;
pub mod device_size;
pub mod host_lvm;
pub mod host_lvm_facts;
pub mod live;
pub mod lvm;
pub mod md_magic;
pub mod partition;
pub mod phase_timer;
pub mod preflight;
pub mod seed_layout;
pub mod signature;
pub mod snapshot;
pub mod state;
pub mod vg_dev_dir;
