//! Why the planner refuses to write anything. Each message says what was found,
//! what was expected, and what the operator can do.
use std::path::{Path, PathBuf};
use thiserror::Error;

fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn show(path: &Path) -> String {
    path.display().to_string()
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Refusal {
    #[error("{} carries a foreign signature ({signature}), not LVM; refusing to overwrite it. If the data there is disposable, rerun with --force (FORCE=true); otherwise check PARTITION_LABEL", show(device))]
    ForeignSignature { device: PathBuf, signature: String },
    #[error("volume group {volume_group} on {} also uses other devices ({}); this tool only manages a VG that lives entirely on its partition. Move the VG off the other devices (pvmove/vgreduce) or use a different partition", show(device), other_pvs.join(", "))]
    VolumeGroupSpansDevices {
        volume_group: String,
        device: PathBuf,
        other_pvs: Vec<String>,
    },
    #[error("{} is a PV of a volume group but holds no copy of its volume group's metadata (made with --pvmetadatacopies 0), so the VG lives on other devices too; this tool manages only a VG entirely on its partition. Inspect with `pvs -o+vg_name {}`", show(device), show(device))]
    PvWithoutMetadata { device: PathBuf },
    #[error("the satellite ID recorded on volume group {volume_group} could not be read ({reason}); refusing to guess, since a wrong guess would wipe the storage. Fix the cause and rerun")]
    SatelliteIdUnreadable {
        volume_group: String,
        reason: String,
    },
    #[error("logical volume {volume_group}/{logical_volume} must be removed for the reset but is open ({holder}); stop whatever uses it (the LINSTOR satellite, DRBD, a mount) and rerun")]
    LogicalVolumeOpen {
        volume_group: String,
        logical_volume: String,
        holder: String,
    },
    #[error("a volume group named {volume_group} already exists on {}; VG names must be unique on a host. Choose another VOLUME_GROUP or remove that VG", list(devices))]
    VolumeGroupNameTaken {
        volume_group: String,
        devices: Vec<PathBuf>,
    },
    #[error("{} holds volume group {volume_group}, which records no satellite ID and is not the configured VOLUME_GROUP; it looks like someone else's. Rerun with --force (FORCE=true) to wipe it, or fix PARTITION_LABEL/VOLUME_GROUP", show(device))]
    ForeignVolumeGroup {
        volume_group: String,
        device: PathBuf,
    },
    #[error("{} holds volume group {found} made for this satellite ID, but VOLUME_GROUP is {wanted}; set VOLUME_GROUP={found}, or rename it with `vgrename {found} {wanted}`", show(device))]
    VolumeGroupNameMismatch {
        found: String,
        wanted: String,
        device: PathBuf,
    },
    #[error("{volume_group}/{name} exists but is a {kind}, not a thin pool; choose another POOL or remove that LV")]
    PoolNameTaken {
        volume_group: String,
        name: String,
        kind: String,
    },
}
