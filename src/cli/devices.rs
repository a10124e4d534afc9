//! `devices`: every disk and partition with what is on it, for debugging.
use super::args::DevicesArgs;
use super::render::{human_size, table};
use super::CliError;
use crate::observe::live::holders;
use crate::observe::lvm::{self, LvmUuid};
use crate::observe::partition::{self, BlockDevice, DeviceKind, DiscoveryBackend};
use crate::observe::signature::{self, Signature};
use crate::units::Bytes;
use serde::Serialize;

/// One row of the enumeration.
#[derive(Debug, Serialize)]
struct DeviceReport {
    #[serde(flatten)]
    device: BlockDevice,
    /// Every signature libblkid found (TYPE or PTTYPE, USAGE, offset, label, uuid).
    signatures: Vec<Signature>,
    /// The PV's uuid and VG name when the device is an LVM PV.
    pv_uuid: Option<LvmUuid>,
    volume_group: Option<String>,
    /// Devices stacked on this one (device-mapper names where known).
    holders: Vec<String>,
    /// Anything that could not be read about this device.
    errors: Vec<String>,
}

fn inspect(device: BlockDevice) -> DeviceReport {
    let mut errors = Vec::new();
    let signatures = match signature::probe_signatures(&device.devnode) {
        Ok(found) => found,
        Err(e) => {
            errors.push(format!("signatures: {e}"));
            Vec::new()
        }
    };
    let (mut pv_uuid, mut volume_group) = (None, None);
    if signatures.iter().any(Signature::is_lvm_label) {
        match lvm::read_pv_on_disk(&device.devnode) {
            Ok(Some(pv)) => {
                volume_group = pv.vg_metadata.as_ref().map(|vg| vg.name.clone());
                pv_uuid = Some(pv.pv_uuid);
            }
            Ok(None) => {}
            Err(e) => errors.push(format!("lvm: {e}")),
        }
    }
    let holders = match holders::holders(&device.name) {
        Ok(found) => found
            .into_iter()
            .map(|h| h.dm_name.unwrap_or(h.name))
            .collect(),
        Err(e) => {
            errors.push(format!("holders: {e}"));
            Vec::new()
        }
    };
    DeviceReport {
        signatures,
        device,
        pv_uuid,
        volume_group,
        holders,
        errors,
    }
}

pub fn run(args: &DevicesArgs, backend: DiscoveryBackend) -> Result<(), CliError> {
    let devices =
        partition::list_block_devices_with_gpt_names(backend).map_err(CliError::failed)?;
    // Unattached loop devices (size 0) are noise.
    let reports: Vec<DeviceReport> = devices
        .into_iter()
        .filter(|d| !(d.size_bytes == Bytes(0) && d.name.starts_with("loop")))
        .map(inspect)
        .collect();
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&reports).map_err(CliError::failed)?
        );
        return Ok(());
    }
    let dash = |value: Option<&str>| value.unwrap_or("-").to_owned();
    // One entry per signature, in libblkid's order; "-" when it found none.
    fn joined<'a>(values: impl Iterator<Item = &'a str>) -> String {
        let list: Vec<&str> = values.collect();
        if list.is_empty() {
            "-".to_owned()
        } else {
            list.join(",")
        }
    }
    let rows: Vec<Vec<String>> = reports
        .iter()
        .map(|r| {
            let d = &r.device;
            vec![
                d.devnode.display().to_string(),
                format!("{}:{}", d.major, d.minor),
                human_size(d.size_bytes),
                match d.kind {
                    DeviceKind::Disk => "disk",
                    DeviceKind::Partition => "part",
                    DeviceKind::DeviceMapper => "dm",
                }
                .to_owned(),
                dash(d.partition_label.as_deref().or(d.dm_name.as_deref())),
                dash(d.partition_uuid.as_deref()),
                joined(r.signatures.iter().map(|s| s.type_name.as_str())),
                joined(r.signatures.iter().map(|s| s.usage.as_str())),
                dash(r.volume_group.as_deref()),
                if r.holders.is_empty() {
                    "-".to_owned()
                } else {
                    r.holders.join(",")
                },
                if r.errors.is_empty() {
                    String::new()
                } else {
                    r.errors.join("; ")
                },
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            &[
                "DEVICE",
                "MAJ:MIN",
                "SIZE",
                "TYPE",
                "LABEL/DM NAME",
                "PARTUUID",
                "BLKID TYPE",
                "USAGE",
                "VG",
                "HOLDERS",
                "ERRORS"
            ],
            &rows
        )
    );
    Ok(())
}
