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
    #[error("the LVM metadata on {} is torn: the metadata area header at byte {area_start} points at {slot_size} bytes of text at byte {text_at} that sum to {computed:#010x}, not the recorded {recorded:#010x} (a commit whose header reached the disk while its text did not, e.g. a power loss; LVM shows VG [unknown]). {found}; this tool restores only its own volume group ({volume_group}, tagged with a satellite ID, on this PV alone), so nothing was written. List the intact copies with `pvck --dump metadata_search {}`; to restore copy N: `pvck --dump metadata_search --settings seqno=N -f FILE {}`, then `pvck --repair -f FILE {}`", show(device), show(device), show(device), show(device))]
    TornMetadataNotOurs {
        device: PathBuf,
        area_start: u64,
        slot_size: u64,
        text_at: u64,
        recorded: u32,
        computed: u32,
        /// What is left in the area's buffer, and why it is not provably ours.
        found: String,
        volume_group: String,
    },
    #[error("the LVM label on {} lists a metadata area at byte {area_start} whose header was never written (its sector is all zeros: the label of a pvcreate reached the disk, its header did not, e.g. a power loss; LVM can neither read nor pvcreate -ff this PV), and {found}, so a volume group may have lived here: nothing was written. Inspect with `pvck --dump headers {}` and `pvck --dump metadata_search {}`; if nothing there is needed, erase the label with `wipefs --all --types LVM2_member {}` and run this tool again", show(device), show(device), show(device), show(device))]
    UnwrittenMetadataHeader {
        device: PathBuf,
        area_start: u64,
        /// Why the PV is not provably an interrupted `pvcreate`.
        found: String,
    },
    #[error("{} carries a foreign signature ({signature}), not LVM; refusing to overwrite it. If the data there is disposable, rerun with --force (FORCE=true); otherwise check PARTITION_LABEL", show(device))]
    ForeignSignature { device: PathBuf, signature: String },
    #[error("volume group {volume_group} on {} also uses other devices ({}); this tool only manages a VG that lives entirely on its partition. Move the VG off the other devices (pvmove/vgreduce) or use a different partition", show(device), other_pvs.join(", "))]
    VolumeGroupSpansDevices {
        volume_group: String,
        device: PathBuf,
        other_pvs: Vec<String>,
    },
    #[error("{} is marked as a PV of a volume group but holds no copy of that VG's metadata: {own_areas}; {found}. Re-creating the PV would destroy that VG's data, so nothing was written. Inspect with `pvs -o+vg_name,pv_mda_count,pv_mda_used_count` with the VG's other disks attached, and remove the PV from its VG (vgreduce) if this partition is really free", show(device))]
    PvOfVolumeGroupElsewhere {
        device: PathBuf,
        /// What the PV's own metadata areas hold.
        own_areas: String,
        /// Which VGs on other devices list it, or that none could be found.
        found: String,
    },
    #[error("volume group {volume_group} on {} records no satellite ID and is not the seed tool's layout (no `metadata` LV), but holds logical volumes: {}. Resetting it would destroy them. If they are disposable, rerun with --force (FORCE=true); otherwise check PARTITION_LABEL/VOLUME_GROUP", show(device), volumes.join(", "))]
    UntaggedVolumeGroupHoldsVolumes {
        volume_group: String,
        device: PathBuf,
        volumes: Vec<String>,
    },
    #[error("the LVM metadata on {} holds an impossible number: {what}; nothing was written. Inspect it with `pvck {}`", show(device), show(device))]
    ImpossibleNumber { device: PathBuf, what: String },
    #[error("the LVM metadata on {} names a {what} `{name}` that is not a valid LVM name ({reason}); it will not be put on an LVM command line, so nothing was written. Inspect the metadata with `pvck --dump metadata {}`", show(device), show(device))]
    InvalidNameOnDisk {
        device: PathBuf,
        what: &'static str,
        name: String,
        reason: String,
    },
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
    #[error("{} holds volume group {volume_group} with the seed tool's layout (an LV named `metadata`), but VOLUME_GROUP is {wanted} and the VG carries no satellite-ID tag of this tool's; only the configured VG or one this tool tagged is adopted, so nothing was activated or written. If it is this node's storage from the seed tool, set VOLUME_GROUP={volume_group}; if it is disposable, rerun with --force (FORCE=true); otherwise check PARTITION_LABEL", show(device))]
    ForeignSeedLayout {
        volume_group: String,
        wanted: String,
        device: PathBuf,
    },
    #[error("{volume_group}/{logical_volume} ({size}) is in volume group {volume_group}, made for this satellite ID and still without its thin pool, but it is not the metadata spare an interrupted `lvcreate --type thin-pool` leaves: {why}. It may hold someone's data, so it was not removed and nothing was written. If it is disposable, remove it (`lvremove {volume_group}/{logical_volume}`); otherwise move it off this partition or rename it (`lvrename {volume_group} {logical_volume} NEW`) and rerun")]
    NotAnInterruptedSpare {
        volume_group: String,
        logical_volume: String,
        size: crate::units::Bytes,
        why: String,
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
    #[error("thin pool {volume_group}/{pool} {}, but its metadata device reports transaction {on_disk} where LVM's metadata records transaction {recorded}: the pool's metadata on disk does not match LVM's, and re-creating the pool could destroy volumes. Nothing was written. Inspect the metadata with `thin_dump` (pool deactivated, on its _tmeta) and repair it with `lvconvert --repair {volume_group}/{pool}`, then rerun", if thin_volumes.is_empty() { "holds no thin volume in LVM's metadata but has had some (LVM's transaction is past 0)".to_owned() } else { format!("holds thin volumes ({})", thin_volumes.join(", ")) })]
    PoolTransactionMismatch {
        volume_group: String,
        pool: String,
        thin_volumes: Vec<String>,
        on_disk: u64,
        recorded: u64,
    },
    #[error("device-mapper device {dm_name} is stacked on {} but no volume group there lists it (an interrupted LVM command left it), and it is {holder}; stop whatever uses it and rerun", show(device))]
    StaleDeviceInUse {
        device: PathBuf,
        dm_name: String,
        holder: String,
    },
    #[error("device-mapper devices {} on {} must be removed, and this tool removes them itself (LVM has no command for devices its metadata does not list) under LVM's lock of their volume group; but the host's LVM uses lvmlockd (global/use_lvmlockd = 1), whose locks this tool cannot take, so an LVM command on another node or process could be building them. Nothing was written. Remove them by hand once no LVM command runs (`dmsetup remove <name>`), then rerun", dm_names.join(", "), show(device))]
    NativeRemovalUnderLvmlockd {
        device: PathBuf,
        dm_names: Vec<String>,
    },
    #[error("{} exists and is not a leftover of LVM's ({found}); vgcreate would refuse the name {volume_group}. Remove or rename it, or choose another VOLUME_GROUP", show(path))]
    VolumeGroupPathTaken {
        volume_group: String,
        path: PathBuf,
        found: String,
    },
    #[error("{error}. Nothing was written. Fix the host's LVM configuration, or rerun with --force (FORCE=true) to provision without entering the PV in the host's devices file (the host may then not see volume group {volume_group})")]
    HostLvmConfigUnreadable { volume_group: String, error: String },
    #[error("the host's LVM devices file {} has VERSION={version}, a newer format than this tool's LVM writes (major {}); nothing was written. Rerun with --force (FORCE=true) to provision without editing it, then enter the PV with the host's own `lvmdevices --adddev {}`", show(path), crate::observe::host_lvm::DEVICES_FILE_MAJOR, show(device))]
    DevicesFileTooNew {
        path: PathBuf,
        version: String,
        device: PathBuf,
    },
    #[error("the host's LVM devices file {} is in use and must be edited for {}, but its folder is read-only (in a pod, mount the host's /etc/lvm read-write); nothing was written — a reset would otherwise stop after removing the old PV. Rerun with --force (FORCE=true) to provision without editing it, then enter the PV with the host's own `lvmdevices --adddev {}`", show(path), show(device), show(device))]
    DevicesFileReadOnly { path: PathBuf, device: PathBuf },
    #[error("{} carries this tool's LVM label and beside it {signatures}; {consequence}. Nothing was written, and --force does not override this: erase only that signature if it is stale (`wipefs --all --types {} {}`), or check PARTITION_LABEL", show(device), types.join(","), show(device))]
    SignatureBesideLvmLabel {
        device: PathBuf,
        /// libblkid's descriptions, `; `-separated.
        signatures: String,
        /// libblkid's TYPEs, for `wipefs --types`.
        types: Vec<String>,
        /// What the signature means for the plan's LVM commands.
        consequence: String,
    },
    #[error("{} is in use by {}, which LVM did not make; LVM's pvremove/pvcreate would refuse it (they open it exclusively) after earlier steps had already written. Nothing was written, and --force does not override this: stop that user if it is not needed (`mdadm --stop`, `cryptsetup close`, `umount`, `swapoff`), or check PARTITION_LABEL", show(device), users.join(", "))]
    PartitionInUse { device: PathBuf, users: Vec<String> },
    #[error("{} is read-only ({}); every LVM write would fail, so nothing was written. Make it writable (`blockdev --setrw {}`, or the disk's or hypervisor's write protection) and rerun", show(device), why.join("; "), show(device))]
    PartitionReadOnly { device: PathBuf, why: Vec<String> },
    #[error("the host's global_filter rule `{rule}` in {file} rejects {} (or one of its /dev/disk names): the host's LVM and a satellite using the host's LVM configuration would not see volume group {volume_group}; nothing was written. Change the filter to accept the partition, or rerun with --force (FORCE=true)", show(device))]
    HostGlobalFilterRejects {
        device: PathBuf,
        volume_group: String,
        rule: String,
        file: String,
    },
    #[error("LVM would take {} for an md raid member: {format} metadata magic at byte {offset}, where LVM's pvremove/pvcreate look for it (without the checksum libblkid checks), so they would refuse the partition after earlier steps had already written. Nothing was written, and --force does not override this: check with `mdadm --examine {}`; if no array uses it, zero those 4 bytes (`dd if=/dev/zero of={} bs=1 count=4 seek={offset} conv=notrunc`) and rerun", show(device), show(device), show(device))]
    LvmSeesMdComponent {
        device: PathBuf,
        format: &'static str,
        offset: u64,
    },
    #[error("LVM could not create the thin pool on {} in volume group {volume_group}: {why}. Nothing was written (LVM finds this out only in the pool's lvcreate, after a reset has removed the old volume group)", show(device))]
    PoolCannotBeCreated {
        device: PathBuf,
        volume_group: String,
        why: Box<super::pool_preconditions::PoolObstacle>,
    },
}
