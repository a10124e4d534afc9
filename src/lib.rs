//! linstor-provision-disk keeps one GPT partition provisioned as an LVM thin pool
//! for a LINSTOR satellite.
//!
//! The modules follow the way the tool works: observe, plan, apply, until the plan
//! is empty.
//! - [`config`] validates what the operator asked for (names, sizes, the satellite
//!   ID) before the disk is touched;
//! - [`observe`] reads the machine natively (udev/sysfs, LVM's on-disk metadata,
//!   device-mapper, block-device ioctls, the host's LVM configuration) into plain
//!   data, writing nothing; its module docs define the PV/VG/LV vocabulary;
//! - [`plan`] is the pure planner: observed facts and the config in, an ordered list
//!   of actions (or a refusal) out;
//! - [`apply`] carries the actions out through LVM in-process (liblvm2cmd) and
//!   converges: observe and plan again until nothing is left to do;
//! - [`cli`] parses arguments, runs the subcommands and turns observed data into
//!   what an operator reads;
//! - [`metrics`] turns observed data and a run's outcome into Prometheus text;
//! - [`satellite_id`] encodes the satellite ID into a VG tag (config) and decodes it
//!   (observe);
//! - [`units`] holds sectors, bytes and extents as types;
//! - [`ffi`] is the only place with `unsafe`: raw ioctls, directory reads, the
//!   liblvm2cmd binding.
#![deny(unsafe_code)]

pub mod apply;
pub mod cli;
pub mod config;
#[allow(unsafe_code)]
pub mod ffi;
pub mod metrics;
pub mod observe;
pub mod plan;
pub mod satellite_id;
pub mod units;
