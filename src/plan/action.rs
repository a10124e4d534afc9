//! The steps a plan is made of. Each is one LVM command when applied, and each is
//! safe to repeat: a run killed between two steps converges when rerun.
use crate::config::names::{LvName, VgName};
use crate::observe::lvm::LvmUuid;
use crate::observe::seed_layout::SEED_ID_LV;
use crate::units::{Bytes, Extents, WholeBinaryUnits};
use serde::Serialize;
use std::fmt;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    /// Activate the seed tool's `metadata` LV so its satellite-ID file can be read.
    #[serde(rename = "activate-seed-metadata-lv")]
    ActivateSeedIdLv {
        volume_group: VgName,
    },
    /// A reset's first step, before `lvremove`: the active thin volumes' devices
    /// removed natively (`DM_DEV_REMOVE`, several at once, each re-checked unheld
    /// under the VG's lock), then a pool's `-tpool` that only they held. Not an LVM
    /// command and no metadata write: `lvremove` then finds the volumes inactive.
    RemoveThinVolumeDevices {
        volume_group: VgName,
        dm_names: Vec<String>,
    },
    RemoveLogicalVolumes {
        volume_group: VgName,
        names: Vec<LvName>,
    },
    RemoveVolumeGroup {
        volume_group: VgName,
    },
    RemovePhysicalVolume {
        device: PathBuf,
    },
    CreatePhysicalVolume {
        device: PathBuf,
        /// A foreign signature that `--force` allows to be overwritten.
        overwrite_signature: Option<String>,
        /// `--metadatasize`: room for the text of 10,000 LVs (see `plan::sizing`);
        /// `None` keeps LVM's default (a small partition).
        #[serde(skip_serializing_if = "Option::is_none")]
        metadata_area_bytes: Option<Bytes>,
    },
    /// `pvcreate` again over a PV an interrupted `vgcreate` left marked in use, or
    /// over an orphan PV (no LVs) with an area smaller than this tool makes.
    ReinitializePhysicalVolume {
        device: PathBuf,
        /// As for [`Action::CreatePhysicalVolume`].
        #[serde(skip_serializing_if = "Option::is_none")]
        metadata_area_bytes: Option<Bytes>,
        /// Why: an orphan PV's small area (not part of the JSON).
        #[serde(skip)]
        small_area: bool,
    },
    /// Remove a thin pool with no thin volumes whose metadata device holds an
    /// earlier pool's superblock (`lvremove` deactivates it first); it is then
    /// created again, and LVM wipes the new metadata's start.
    RemoveStalePool {
        volume_group: VgName,
        pool: LvName,
        on_disk_transaction: u64,
        recorded_transaction: u64,
    },
    /// Remove one LV: what an interrupted thin-pool `lvcreate` left under the pool's name.
    RemoveIncompletePool {
        volume_group: VgName,
        pool: LvName,
    },
    /// Remove one LV: the plain `lvol<N>` an interrupted thin-pool `lvcreate` made as
    /// the pool's metadata spare before any pool existed.
    RemoveIncompleteSpare {
        volume_group: VgName,
        name: LvName,
    },
    ResizePhysicalVolume {
        device: PathBuf,
        from_bytes: Bytes,
        to_bytes: Bytes,
    },
    CreateVolumeGroup {
        volume_group: VgName,
        device: PathBuf,
        satellite_id_tag: String,
    },
    /// Record the satellite ID on an adopted VG (one the seed tool made).
    TagVolumeGroup {
        volume_group: VgName,
        satellite_id_tag: String,
    },
    /// Replace the satellite-ID tag of a VG whose recorded ID differs from the
    /// configured one only by surrounding whitespace or control characters (the same
    /// node): one `vgchange`, one metadata write.
    RetagVolumeGroup {
        volume_group: VgName,
        old_tag: String,
        new_tag: String,
    },
    CreateThinPool {
        volume_group: VgName,
        pool: LvName,
        chunk_size_bytes: Bytes,
        zero_new_blocks: bool,
        /// The data LV's extents and the metadata's size (twice LVM's estimate),
        /// leaving free the room to double the metadata once (`plan::sizing`).
        data_extents: Extents,
        metadata_bytes: Bytes,
    },
    ExtendPoolMetadata {
        volume_group: VgName,
        pool: LvName,
        to_bytes: Bytes,
    },
    /// Double the pool's metadata: it is at least 75% used and the VG has room.
    GrowFullPoolMetadata {
        volume_group: VgName,
        pool: LvName,
        from_bytes: Bytes,
        to_bytes: Bytes,
        used_percent: u64,
    },
    /// Give the pool the VG's free extents beyond the metadata's doubling room.
    ExtendThinPool {
        volume_group: VgName,
        pool: LvName,
        by_extents: Extents,
    },
    /// Deactivate the pool's data/metadata LVs left active on their own by an
    /// activation cut off midway (LVM refuses to activate the pool while they are).
    DeactivatePoolComponents {
        volume_group: VgName,
        names: Vec<LvName>,
    },
    /// Reload and resume a pool device that exists but does not serve I/O.
    RefreshThinPool {
        volume_group: VgName,
        pool: LvName,
    },
    /// Activate the thin pool: LINSTOR never does, and reads an inactive pool as full.
    /// Not a metadata write.
    ActivateThinPool {
        volume_group: VgName,
        pool: LvName,
    },
    /// Remove device-mapper devices stacked on the partition that no VG lists (left
    /// by an interrupted command), in this order. Not an LVM command: LVM only
    /// removes devices its metadata knows.
    RemoveStaleDevices {
        dm_names: Vec<String>,
    },
    /// Remove `/dev/<vg>` when it holds only symlinks, once no VG of that name is
    /// left: LVM's own links, left by an interrupted command, make `vgcreate` refuse
    /// the name.
    RemoveStaleVolumeGroupPath {
        path: PathBuf,
    },
    /// Enter the partition's PV in the host's LVM devices file (`lvmdevices
    /// --adddev`), so the host's own LVM and its boot-time autoactivation see the VG.
    AddToDevicesFile {
        device: PathBuf,
        /// The devices file `lvmdevices` edits, made durable after it.
        devices_file: PathBuf,
    },
    /// Write back the copy of the VG's metadata committed just before a torn commit (a
    /// metadata-area header that reached the disk while the text it points at did
    /// not) with LVM's own `pvck --repair`, from that copy's text. The copy is where
    /// the fields say (its offset from the area start, its size with the terminating
    /// NUL) and is checked against `checksum` again before it is written.
    RestoreTornMetadata {
        device: PathBuf,
        volume_group: VgName,
        seqno: u64,
        /// The copy is the torn commit's predecessor (`false`: the newest intact
        /// copy, the commits between it and the torn one lost too).
        predecessor: bool,
        area_start: u64,
        area_size: u64,
        offset: u64,
        size: u64,
        checksum: u32,
    },
    /// Erase the LVM label of a PV no VG can have lived on, which LVM can neither
    /// read nor `pvcreate -ff` (the rescan fails on its metadata area). Its label
    /// sector is zeroed, as `pvremove` does; then the partition is blank.
    EraseTornPhysicalVolume {
        device: PathBuf,
        because: UnreadablePv,
    },
    /// Drop the entry of a PV about to be destroyed from the host's devices file
    /// (`lvmdevices --delpvid`), before a host command turns it into a dead line.
    RemoveFromDevicesFile {
        #[serde(serialize_with = "LvmUuid::serialize_undashed")]
        pvid: LvmUuid,
        /// The devices file `lvmdevices` edits, made durable after it.
        devices_file: PathBuf,
    },
}

/// Why LVM cannot read a PV whose label [`Action::EraseTornPhysicalVolume`] erases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnreadablePv {
    /// The header points at a first commit whose text never reached the disk.
    TornFirstCommit,
    /// The metadata area's header sector is all zeros (`pvcreate`'s write lost).
    HeaderNeverWritten,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::ActivateSeedIdLv { volume_group } => write!(
                f,
                "activate {volume_group}/{SEED_ID_LV} to read the satellite ID the seed tool stored"
            ),
            Action::RemoveThinVolumeDevices {
                volume_group,
                dm_names,
            } => write!(
                f,
                "deactivate the {} active thin volume device(s) of {volume_group} natively before removing its logical volumes",
                dm_names.len()
            ),
            Action::RemoveLogicalVolumes { volume_group, names } => {
                write!(f, "remove logical volumes {} of {volume_group}", joined(names))
            }
            Action::RemoveVolumeGroup { volume_group } => {
                write!(f, "remove volume group {volume_group}")
            }
            Action::RemovePhysicalVolume { device } => {
                write!(f, "remove physical volume {}", device.display())
            }
            Action::CreatePhysicalVolume {
                device,
                overwrite_signature,
                ..
            } => match overwrite_signature {
                Some(signature) => write!(
                    f,
                    "create physical volume on {} (overwriting its {signature} signature, --force)",
                    device.display()
                ),
                None => write!(f, "create physical volume on {}", device.display()),
            },
            Action::ReinitializePhysicalVolume {
                device,
                small_area: true,
                ..
            } => write!(
                f,
                "re-create physical volume on {} with a metadata area for {} LVs (it holds no volume group, and its area is smaller)",
                device.display(),
                super::sizing::PLANNED_LVS
            ),
            Action::ReinitializePhysicalVolume { device, .. } => write!(
                f,
                "re-create physical volume on {} (an interrupted vgcreate left it marked in use, with no volume group)",
                device.display()
            ),
            Action::RemoveStalePool {
                volume_group,
                pool,
                on_disk_transaction,
                recorded_transaction,
            } => write!(
                f,
                "remove thin pool {volume_group}/{pool} to create it again: its metadata on disk belongs to an earlier pool (transaction {on_disk_transaction} on disk, LVM expects {recorded_transaction} with no thin volumes)"
            ),
            Action::RemoveIncompletePool { volume_group, pool } => write!(
                f,
                "remove {volume_group}/{pool}, a thin pool whose creation was interrupted"
            ),
            Action::RemoveIncompleteSpare { volume_group, name } => write!(
                f,
                "remove {volume_group}/{name}, a pool metadata spare whose creation was interrupted"
            ),
            Action::ResizePhysicalVolume {
                device,
                from_bytes,
                to_bytes,
            } => write!(
                f,
                "grow physical volume {} from {} MiB to {} MiB (the partition grew)",
                device.display(),
                from_bytes.whole_mib(),
                to_bytes.whole_mib()
            ),
            Action::CreateVolumeGroup {
                volume_group,
                device,
                satellite_id_tag,
            } => write!(
                f,
                "create volume group {volume_group} on {} tagged {satellite_id_tag}",
                device.display()
            ),
            Action::TagVolumeGroup {
                volume_group,
                satellite_id_tag,
            } => write!(f, "tag volume group {volume_group} with {satellite_id_tag}"),
            Action::RetagVolumeGroup {
                volume_group,
                old_tag,
                new_tag,
            } => write!(
                f,
                "re-tag volume group {volume_group}: replace {old_tag} with {new_tag} (the recorded satellite ID differs only by surrounding whitespace or control characters: the same node)"
            ),
            Action::CreateThinPool {
                volume_group,
                pool,
                chunk_size_bytes,
                zero_new_blocks,
                data_extents,
                metadata_bytes,
            } => write!(
                f,
                "create thin pool {volume_group}/{pool} of {data_extents} (chunk size {} KiB, zeroing {}, metadata {} MiB: twice LVM's estimate, with room left to double it)",
                chunk_size_bytes.whole_kib(),
                if *zero_new_blocks { "on" } else { "off" },
                metadata_bytes.whole_mib()
            ),
            Action::GrowFullPoolMetadata {
                volume_group,
                pool,
                from_bytes,
                to_bytes,
                used_percent,
            } => write!(
                f,
                "grow thin pool metadata of {volume_group}/{pool} from {} MiB to {} MiB: it is {used_percent}% used (at 75% it is doubled while the volume group has room; full metadata stops the pool)",
                from_bytes.whole_mib(),
                to_bytes.whole_mib()
            ),
            Action::ExtendPoolMetadata {
                volume_group,
                pool,
                to_bytes,
            } => write!(
                f,
                "grow thin pool metadata of {volume_group}/{pool} to {} MiB",
                to_bytes.whole_mib()
            ),
            Action::ExtendThinPool {
                volume_group,
                pool,
                by_extents,
            } => write!(f, "grow thin pool {volume_group}/{pool} by {by_extents}"),
            Action::DeactivatePoolComponents {
                volume_group,
                names,
            } => write!(
                f,
                "deactivate {} of {volume_group}, left active by an interrupted activation",
                joined(names)
            ),
            Action::RefreshThinPool { volume_group, pool } => write!(
                f,
                "refresh thin pool {volume_group}/{pool} (its device exists but does not serve I/O)"
            ),
            Action::ActivateThinPool { volume_group, pool } => write!(
                f,
                "activate thin pool {volume_group}/{pool} (LINSTOR needs it active)"
            ),
            Action::RemoveStaleDevices { dm_names } => write!(
                f,
                "remove device-mapper devices {} left by an interrupted LVM command",
                dm_names.join(", ")
            ),
            Action::RemoveStaleVolumeGroupPath { path } => write!(
                f,
                "remove {} if it still holds only links an interrupted LVM command left",
                path.display()
            ),
            Action::AddToDevicesFile { device, .. } => write!(
                f,
                "enter physical volume {} in the host's LVM devices file",
                device.display()
            ),
            Action::RestoreTornMetadata {
                device,
                volume_group,
                seqno,
                predecessor,
                area_start,
                offset,
                ..
            } => write!(
                f,
                "restore volume group {volume_group} on {} from the {} (seqno {seqno}, at byte {}): the last commit's header reached the disk, its text did not{} (pvck --repair)",
                device.display(),
                if *predecessor {
                    "metadata copy committed just before the torn one"
                } else {
                    "newest intact metadata copy"
                },
                area_start.saturating_add(*offset),
                if *predecessor {
                    ""
                } else {
                    ", nor the texts of the commits between them"
                }
            ),
            Action::EraseTornPhysicalVolume { device, because } => write!(
                f,
                "erase the LVM label of {} ({}) and start over",
                device.display(),
                match because {
                    UnreadablePv::TornFirstCommit =>
                        "its vgcreate's first commit tore: no volume group was ever complete there",
                    UnreadablePv::HeaderNeverWritten =>
                        "its metadata area's header never reached the disk: no volume group was ever committed there",
                }
            ),
            Action::RemoveFromDevicesFile { pvid, .. } => write!(
                f,
                "remove PVID {}, the physical volume about to be replaced, from the host's LVM devices file",
                pvid.undashed()
            ),
        }
    }
}

/// `a, b, c`.
fn joined(names: &[LvName]) -> String {
    names
        .iter()
        .map(LvName::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}
