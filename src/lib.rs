//! linstor-provision-disk keeps one GPT partition provisioned as an LVM thin pool
//! for a LINSTOR satellite.
//!
//! The modules follow the way the tool works:
//! - [`observe`] reads the machine natively (udev/sysfs, LVM's on-disk metadata,
//!   device-mapper, block-device ioctls) into plain data, writing nothing;
//! - [`cli`] parses arguments and turns observed data into what an operator reads;
//! - [`ffi`] is the only place with `unsafe`: raw ioctls (and, later, liblvm2cmd).
#![deny(unsafe_code)]

pub mod apply;
pub mod cli;
pub mod config;
#[allow(unsafe_code)]
pub mod ffi;
pub mod observe;
pub mod plan;
pub mod units;
