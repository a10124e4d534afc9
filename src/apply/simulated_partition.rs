//! A partition and its LVM, simulated for the unit tests: the state the planner reads
//! (an [`ObservedPartition`]) changed by each LVM command line the way LVM changes
//! it, and refusing what LVM refuses. [`SimulatedMachine`] observes it and
//! [`RecordingLvm`] runs commands on it, so `converge` runs end to end without a
//! machine. Every test state is built here, through a few builders.
use super::converge::Machine;
use super::leftovers::RemovalContext;
use super::lock::LockError;
use super::thin_check::ThinCheck;
use super::{command, ApplyError, LvmExecutor};
use crate::config::names::test_names::{lv, vg};
use crate::config::{ProvisionConfig, ProvisionInputs};
use crate::observe::live::{DmUnavailable, LiveError};
use crate::observe::lvm::LvmUuid;
use crate::observe::partition::{BlockDevice, DeviceKind, DiscoveryBackend, LabelSource};
use crate::observe::phase_timer::PhaseTimer;
use crate::observe::snapshot::{Expectations, ObserveError, Resolved, Snapshot};
use crate::observe::state::{
    InUseWithoutMetadata, LvFacts, LvKind, MetadataCopy, ObservedPartition, OwnMetadataAreas,
    PartitionFacts, PeRange, PreflightFacts, PvFacts, SatelliteIdReading, StaleDevice,
    TornMetadata, TransactionMismatch, VgFacts,
};
use crate::observe::vg_dev_dir::{LinkReach, VgDevDir, VgDevEntry};
use crate::plan::Action;
use crate::satellite_id;
use crate::units::{Bytes, CheckedSub, ExtentSize, Extents, Sectors};
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

pub const MIB: u64 = 1 << 20;
pub const GIB: u64 = 1 << 30;
/// LVM's default extent size and first-extent offset.
pub const EXTENT: u64 = 4 * MIB;
pub const PE_START: u64 = MIB;
pub const DEVNODE: &str = "/dev/vda1";
pub const VG: &str = "linstor-vg";
pub const POOL: &str = "linstor-pool";
/// The seed tool's LV holding its `satellite-id` file.
pub const SEED_LV: &str = "metadata";
/// The `-tpool` device-mapper name of the configured pool.
pub const POOL_DM: &str = "linstor--vg-linstor--pool-tpool";

/// The example configuration (satellite `node-01`).
pub fn config() -> ProvisionConfig {
    config_for("node-01", false)
}

pub fn config_for(satellite_id: &str, force: bool) -> ProvisionConfig {
    let inputs = ProvisionInputs {
        satellite_id: satellite_id.to_owned(),
        force,
        ..ProvisionInputs::example()
    };
    match ProvisionConfig::from_inputs(inputs) {
        Ok(config) => config,
        Err(e) => panic!("test config invalid: {e}"),
    }
}

/// How the pool's devices are, beside its metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolActivity {
    /// Its `-tpool` device serves I/O.
    Serving,
    /// No device at all (LINSTOR never activates a pool).
    Idle,
    /// Idle, and an activation cut off midway left its metadata LV active alone.
    IdleComponentsActive,
    /// Its device exists but is suspended.
    Suspended,
    /// An activation cut off midway left a `-tpool` device that maps nothing.
    Unloaded,
    /// A removal killed midway left a live `-tpool` device LVM no longer sees.
    Unheld,
}

/// The partition, what LVM wrote on it, and what device-mapper has active.
#[derive(Debug, Clone)]
pub struct SimulatedPartition {
    pub observed: ObservedPartition,
    /// What the seed tool's `satellite-id` file holds, readable once its LV is active.
    pub seed_file_id: Option<String>,
    /// Device-mapper cannot be listed: the snapshot's `active_volumes` error.
    pub device_mapper_unavailable: bool,
    /// What the preflight pass reads (a clean, writable partition by default).
    pub preflight: PreflightFacts,
    /// The VG the intact copy in a torn metadata area describes (see [`Self::torn`]):
    /// what `pvck --repair` writes back.
    pub torn_copy: Option<VgFacts>,
    /// The transaction id of an earlier pool's superblock that the configured
    /// pool's metadata device still holds (LVM's wipe of it was lost): the kernel
    /// reports it while the pool serves, until the pool is removed.
    pub stale_pool_superblock: Option<u64>,
    next_uuid: u32,
    /// Where the extents of the PV `pvcreate` made start (after its metadata area).
    pe_start: u64,
    /// What the device's I/O hints add to `pe_start` beyond LVM's 1 MiB default
    /// alignment (`set_pe_align`): a RAID's optimal I/O size, say.
    pub data_alignment_extra: u64,
}

impl SimulatedPartition {
    /// A partition of `size` bytes without any signature.
    pub fn blank(size: u64) -> Self {
        SimulatedPartition {
            observed: ObservedPartition {
                partition: PartitionFacts {
                    devnode: PathBuf::from(DEVNODE),
                    major: 254,
                    minor: 1,
                    label: "linstor-storage".into(),
                    size_bytes: bytes(size),
                },
                foreign_signature: None,
                physical_volume: None,
                wanted_vg_name_elsewhere: Vec::new(),
                leftovers: Default::default(),
                host_lvm: Default::default(),
                preflight: Default::default(),
                pool_metadata_usage: None,
            },
            seed_file_id: None,
            device_mapper_unavailable: false,
            preflight: PreflightFacts::default(),
            torn_copy: None,
            stale_pool_superblock: None,
            next_uuid: 0,
            pe_start: PE_START,
            data_alignment_extra: 0,
        }
    }

    /// An orphan PV whose metadata area's header never reached the disk (the label
    /// did): what a power loss inside the first `pvcreate` can leave.
    pub fn unwritten_header(size: u64) -> Self {
        let mut state = Self::orphan_pv(size);
        let Some(pv) = state.observed.physical_volume.as_mut() else {
            panic!("no PV: {state:?}")
        };
        pv.unwritten_metadata_header = Some(crate::observe::state::UnwrittenMetadataHeader {
            area_start: 4096,
            area_size: PE_START - 4096,
            metadata_areas: 1,
            unwritten_areas: 1,
            marked_in_use: false,
            stray_sectors: Vec::new(),
            pv_uuid_at: Vec::new(),
            copies: Vec::new(),
            listed_by: Vec::new(),
            unreadable: Vec::new(),
        });
        state
    }

    /// `state` with its last commit torn: the metadata-area header points at text
    /// that never reached the disk, and the intact copy left in the buffer is
    /// `state`'s VG (none for an orphan PV: a torn first commit).
    pub fn torn(mut state: Self) -> Self {
        let Some(pv) = state.observed.physical_volume.as_mut() else {
            panic!("no PV to tear: {state:?}")
        };
        let copy = pv.volume_group.take();
        pv.in_use_without_metadata = None;
        pv.torn_metadata = Some(TornMetadata {
            area_start: 4096,
            area_size: PE_START - 4096,
            // Right after the copy, where LVM writes the next commit.
            slot_offset: if copy.is_some() { 7168 } else { 512 },
            slot_size: 2279,
            recorded_checksum: 0xaaaa,
            computed_checksum: 0xbbbb,
            areas_in_use: 1,
            metadata_areas: 1,
            stray_sectors: Vec::new(),
            first_text: copy.is_none(),
            copies: copy
                .iter()
                .map(|vg| MetadataCopy {
                    offset: 5120,
                    size: 2000,
                    checksum: 0xcccc,
                    seqno: vg.seqno,
                    volume_group: vg.name.clone(),
                    vg_id: vg.uuid,
                    names_this_pv: true,
                    spans_other_pvs: false,
                    satellite_id: match &vg.satellite_id {
                        SatelliteIdReading::Tag(id) => Some(id.clone()),
                        _ => None,
                    },
                    seed_layout: false,
                    padded: true,
                    next_offset: Some(7168),
                    system_id: None,
                    lock_type: None,
                })
                .collect(),
            listed_by: Vec::new(),
            unreadable: Vec::new(),
        });
        state.torn_copy = copy;
        state
    }

    /// An orphan PV, as `pvcreate` leaves it.
    pub fn orphan_pv(size: u64) -> Self {
        let mut sim = Self::blank(size);
        sim.apply(&Action::CreatePhysicalVolume {
            device: PathBuf::from(DEVNODE),
            overwrite_signature: None,
            metadata_area_bytes: crate::plan::sizing::metadata_area_request(bytes(size)),
        });
        sim
    }

    /// An orphan PV with LVM's default metadata area, as a reset by an older
    /// version leaves it when cut off after `pvcreate`.
    pub fn orphan_pv_with_default_area(size: u64) -> Self {
        let mut sim = Self::blank(size);
        sim.apply(&Action::CreatePhysicalVolume {
            device: PathBuf::from(DEVNODE),
            overwrite_signature: None,
            metadata_area_bytes: None,
        });
        sim
    }

    /// A PV marked in use whose metadata area is empty: a `vgcreate` cut off before
    /// its first commit.
    pub fn interrupted_vgcreate(size: u64) -> Self {
        let mut sim = Self::orphan_pv(size);
        if let Some(pv) = sim.observed.physical_volume.as_mut() {
            pv.in_use_without_metadata = Some(InUseWithoutMetadata {
                own_areas: OwnMetadataAreas::EmptyInUse,
                listed_by: Vec::new(),
                unreadable: Vec::new(),
            });
        }
        sim
    }

    /// A VG named `name` tagged for `satellite_id`, without LVs.
    pub fn volume_group(size: u64, name: &str, satellite_id: &str) -> Self {
        let mut sim = Self::orphan_pv(size);
        let tag = match satellite_id::encode_tag(satellite_id) {
            Ok(tag) => tag,
            Err(e) => panic!("{e}"),
        };
        sim.apply(&Action::CreateVolumeGroup {
            volume_group: vg(name),
            device: PathBuf::from(DEVNODE),
            satellite_id_tag: tag,
        });
        sim
    }

    /// What this tool makes for `satellite_id` on a partition of `size`: VG, pool
    /// serving, and one thin volume LINSTOR made in it.
    pub fn provisioned(size: u64, satellite_id: &str) -> Self {
        let mut sim = Self::volume_group(size, VG, satellite_id);
        let defaults = config();
        let vg_facts = sim.vg();
        let layout = vg_facts.and_then(|vg| {
            crate::plan::sizing::pool_layout(
                vg.free_extents,
                vg.extent_size,
                defaults.chunk_size_bytes,
            )
            .map(|l| (l, l.metadata.checked_mul(vg.extent_size)))
        });
        let Some((layout, Some(metadata_bytes))) = layout else {
            panic!("no pool fits {size} bytes");
        };
        sim.apply(&Action::CreateThinPool {
            volume_group: vg(VG),
            pool: lv(POOL),
            chunk_size_bytes: layout.chunk,
            zero_new_blocks: defaults.zero_new_blocks,
            data_extents: layout.data,
            metadata_bytes,
        });
        sim.add_lv(thin_volume("pvc-1"));
        sim
    }

    /// What the seed tool made: a VG without our tag, its pool, and its `metadata`
    /// thin LV whose file holds `seed_id`; the ID is read as `reading` says.
    pub fn seed_layout(size: u64, seed_id: &str, reading: SatelliteIdReading) -> Self {
        let mut sim = Self::provisioned(size, "unused");
        sim.add_lv(thin_volume(SEED_LV));
        if let Some(lv) = sim.lv_mut(SEED_LV) {
            lv.active = matches!(reading, SatelliteIdReading::SeedFile(_));
        }
        sim.seed_file_id = Some(seed_id.to_owned());
        sim.vg_mut().satellite_id = reading;
        sim.vg_mut().satellite_id_tag = None;
        sim
    }

    /// Sets the pool's devices as `activity` says (see [`PoolActivity`]).
    pub fn set_pool_activity(&mut self, activity: PoolActivity) {
        let (serving_now, present_now, unloaded_now, unheld_now) = match activity {
            PoolActivity::Serving => (true, true, None, None),
            PoolActivity::Idle | PoolActivity::IdleComponentsActive => (false, false, None, None),
            PoolActivity::Suspended => (false, true, None, None),
            PoolActivity::Unloaded => (false, false, Some(POOL_DM.to_owned()), None),
            PoolActivity::Unheld => (true, true, None, Some(POOL_DM.to_owned())),
        };
        for lv in &mut self.vg_mut().logical_volumes {
            if let LvKind::ThinPool {
                serving,
                pool_device_present,
                unloaded_pool_device,
                unheld_pool_device,
                ..
            } = &mut lv.kind
            {
                *serving = serving_now;
                *pool_device_present = present_now;
                *unloaded_pool_device = unloaded_now.clone();
                *unheld_pool_device = unheld_now.clone();
                lv.active = present_now;
            }
            if is_component(&lv.name, POOL) {
                lv.active = present_now
                    || (activity == PoolActivity::IdleComponentsActive
                        && lv.name.ends_with("_tmeta"));
            }
        }
    }

    /// The pool name is taken by what a thin-pool `lvcreate` cut off midway leaves:
    /// a plain LV beside LVM's spare.
    pub fn interrupted_pool_creation(size: u64, satellite_id: &str) -> Self {
        let mut sim = Self::volume_group(size, VG, satellite_id);
        sim.add_lv(plain_lv(POOL, false, EXTENT));
        sim.add_lv(plain_lv("lvol0_pmspare", false, EXTENT));
        sim
    }

    /// The configured VG recording no satellite ID (before tearing it: a copy that is
    /// not provably ours).
    pub fn torn_without_tag() -> Self {
        let mut sim = Self::volume_group(GIB, VG, "node-01");
        let vg = sim.vg_mut();
        vg.satellite_id = SatelliteIdReading::Absent;
        vg.satellite_id_tag = None;
        sim
    }

    /// A thin-pool `lvcreate` killed while making its spare: a visible `lvol0`.
    pub fn interrupted_spare_creation(size: u64, satellite_id: &str) -> Self {
        let mut sim = Self::volume_group(size, VG, satellite_id);
        sim.add_lv(plain_lv("lvol0", true, EXTENT));
        sim
    }

    /// Adds an LV to the VG (its extents come out of the free ones).
    pub fn add_lv(&mut self, lv: LvFacts) {
        self.vg_mut().logical_volumes.push(lv);
        self.settle();
    }

    /// Device-mapper devices stacked on the partition that no VG lists.
    pub fn add_stale_device(&mut self, dm_name: &str, held_by: Option<&str>) {
        self.observed.leftovers.stale_devices.push(StaleDevice {
            dm_name: dm_name.to_owned(),
            held_by: held_by.map(str::to_owned),
        });
    }

    /// `/dev/linstor-vg` with these entries.
    pub fn set_vg_folder(&mut self, entries: Vec<VgDevEntry>) {
        self.observed.leftovers.vg_dev_dir = VgDevDir::Folder {
            path: Path::new("/dev").join(VG),
            entries,
        };
    }

    pub fn vg(&self) -> Option<&VgFacts> {
        self.observed
            .physical_volume
            .as_ref()
            .and_then(|pv| pv.volume_group.as_ref())
    }

    pub fn vg_mut(&mut self) -> &mut VgFacts {
        match self
            .observed
            .physical_volume
            .as_mut()
            .and_then(|pv| pv.volume_group.as_mut())
        {
            Some(vg) => vg,
            None => panic!("the simulated partition has no VG"),
        }
    }

    pub fn lv(&self, name: &str) -> Option<&LvFacts> {
        self.vg()
            .and_then(|vg| vg.logical_volumes.iter().find(|lv| lv.name == name))
    }

    pub fn lv_mut(&mut self, name: &str) -> Option<&mut LvFacts> {
        self.vg_mut()
            .logical_volumes
            .iter_mut()
            .find(|lv| lv.name == name)
    }

    /// The pool's device state: `(serving, pool_device_present)`.
    pub fn pool_state(&self) -> Option<(bool, bool)> {
        self.lv(POOL).and_then(|lv| match lv.kind {
            LvKind::ThinPool {
                serving,
                pool_device_present,
                ..
            } => Some((serving, pool_device_present)),
            _ => None,
        })
    }

    /// Applies `action` as the tool would (its command line, or the native removal);
    /// panics where LVM would refuse: for building states only.
    fn apply(&mut self, action: &Action) {
        let result = match action {
            Action::RemoveStaleDevices { dm_names } => self.remove_stale_devices(dm_names),
            Action::RemoveStaleVolumeGroupPath { path } => self.remove_volume_group_path(path),
            _ => match command::command_line(action, Path::new(DEVNODE), &ThinCheck::Installed) {
                Some(line) => self.run(&line),
                None => Ok(()),
            },
        };
        if let Err(e) = result {
            panic!("building a simulated state: {e}");
        }
    }

    /// What the machine shows on this pass.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            device: self.block_device(),
            logical_sector_size: 512,
            signatures: Vec::new(),
            physical_volume: None,
            active_volumes: if self.device_mapper_unavailable {
                Err(Arc::new(LiveError::DeviceMapperUnavailable {
                    source: DmUnavailable::NoControlNode,
                }))
            } else {
                Ok(Vec::new())
            },
            pool_usage: None,
            observed: self.observed_now(),
            lvm_devices: Vec::new(),
        }
    }

    /// The planner's view: what LVM recorded, with the kernel's transaction id of
    /// a serving pool whose metadata device holds an earlier pool's superblock.
    fn observed_now(&self) -> ObservedPartition {
        let mut observed = self.observed.clone();
        let Some(on_disk) = self.stale_pool_superblock else {
            return observed;
        };
        let lvs = observed
            .physical_volume
            .iter_mut()
            .filter_map(|pv| pv.volume_group.as_mut())
            .flat_map(|vg| vg.logical_volumes.iter_mut());
        for lv in lvs.filter(|lv| lv.name == POOL) {
            if let LvKind::ThinPool {
                serving: true,
                transaction_mismatch,
                ..
            } = &mut lv.kind
            {
                // A pool this simulation creates records transaction 0.
                *transaction_mismatch = (on_disk != 0).then_some(TransactionMismatch {
                    on_disk,
                    recorded: 0,
                });
            }
        }
        observed
    }

    fn block_device(&self) -> BlockDevice {
        let partition = &self.observed.partition;
        BlockDevice {
            name: "vda1".into(),
            devnode: partition.devnode.clone(),
            major: partition.major,
            minor: partition.minor,
            kind: DeviceKind::Partition,
            parent: Some("vda".into()),
            size_bytes: partition.size_bytes,
            partition_label: Some(partition.label.clone()),
            label_source: Some(LabelSource::Udev),
            partition_uuid: None,
            partition_number: Some(1),
            dm_name: None,
            dm_uuid: None,
        }
    }

    fn new_uuid(&mut self, what: &str) -> LvmUuid {
        self.next_uuid += 1;
        let text = format!(
            "sim{what}{:0>width$}",
            self.next_uuid,
            width = 29 - what.len()
        );
        LvmUuid::parse(&text).unwrap_or_else(|e| panic!("simulated uuid {text}: {e}"))
    }

    /// Runs one LVM command line (program first; the `--devices`/`--config` scope
    /// is ignored) as LVM would, or says why LVM would refuse it.
    pub fn run(&mut self, line: &[String]) -> Result<(), String> {
        let words: Vec<&str> = line
            .iter()
            .map(String::as_str)
            .take_while(|w| *w != "--devices" && *w != "--config")
            .collect();
        match words.as_slice() {
            ["pvcreate", options @ .., device] => {
                self.check_device(device)?;
                self.pvcreate(options)
            }
            ["pvremove", "--yes", device] => {
                self.check_device(device)?;
                self.pvremove()
            }
            ["pvck", "--repair", "--yes", "--file", _, device] => {
                self.check_device(device)?;
                let copy = self
                    .torn_copy
                    .take()
                    .ok_or("no metadata copy to repair from")?;
                let Some(pv) = self.observed.physical_volume.as_mut() else {
                    return Err("no PV label found".into());
                };
                pv.torn_metadata = None;
                pv.volume_group = Some(copy);
                Ok(())
            }
            ["pvresize", device] => {
                self.check_device(device)?;
                self.pvresize()
            }
            ["vgcreate", "--addtag", tag, name, device] => {
                self.check_device(device)?;
                self.vgcreate(name, tag)
            }
            ["vgchange", "--addtag", tag, name] => {
                let id = decode(tag)?;
                let vg = self.vg_named(name)?;
                vg.satellite_id = match vg.satellite_id {
                    SatelliteIdReading::Tag(_) => {
                        SatelliteIdReading::Unreadable("the VG carries several ID tags".into())
                    }
                    _ => SatelliteIdReading::Tag(id),
                };
                vg.satellite_id_tag = Some((*tag).to_owned());
                vg.seqno += 1;
                Ok(())
            }
            // LVM removes a tag the VG does not carry silently and adds the new
            // one: a wrong old tag leaves two ID tags.
            ["vgchange", "--deltag", old, "--addtag", new, name] => {
                let id = decode(new)?;
                let vg = self.vg_named(name)?;
                vg.satellite_id = if vg.satellite_id_tag.as_deref() == Some(*old) {
                    SatelliteIdReading::Tag(id)
                } else {
                    SatelliteIdReading::Unreadable("the VG carries several ID tags".into())
                };
                vg.satellite_id_tag = Some((*new).to_owned());
                vg.seqno += 1;
                Ok(())
            }
            ["vgremove", "--force", name] => {
                self.vg_named(name)?;
                self.remove_lvs(None)?;
                if let Some(pv) = self.observed.physical_volume.as_mut() {
                    pv.volume_group = None;
                }
                Ok(())
            }
            ["lvremove", "--force", target] => match target.split_once('/') {
                None => {
                    self.vg_named(target)?;
                    self.remove_lvs(None)
                }
                Some((vg, lv)) => {
                    self.vg_named(vg)?;
                    self.remove_lvs(Some(lv))
                }
            },
            ["lvcreate", "--yes", "--type", "thin-pool", "--extents", data, "--poolmetadatasize", metadata, "--chunksize", chunk, "--zero", zero, "--name", pool, vg] =>
            {
                self.vg_named(vg)?;
                let kib = |text: &str| {
                    text.strip_suffix('k')
                        .and_then(|k| k.parse::<u64>().ok())
                        .map(|k| k * 1024)
                        .ok_or_else(|| format!("bad size {text}"))
                };
                let data = data
                    .parse::<u64>()
                    .map_err(|e| format!("bad extents {data}: {e}"))?;
                let sizes = PoolSizes {
                    data_extents: data,
                    metadata_bytes: kib(metadata)?,
                    chunk_bytes: kib(chunk)?,
                };
                self.create_pool(pool, sizes, *zero == "y")
            }
            ["lvextend", "--poolmetadatasize", size, target] => {
                let bytes = size
                    .strip_suffix('k')
                    .and_then(|k| k.parse::<u64>().ok())
                    .ok_or_else(|| format!("bad metadata size {size}"))?
                    * 1024;
                let pool = self.pool_target(target)?;
                self.extend_pool_metadata(&pool, bytes)
            }
            ["lvextend", "--extents", by, target] => {
                let by = by
                    .strip_prefix('+')
                    .and_then(|n| n.parse::<u64>().ok())
                    .ok_or_else(|| format!("bad extents {by}"))?;
                let pool = self.pool_target(target)?;
                self.extend_pool(&pool, by)
            }
            ["lvchange", "--activate", "y", "--ignoreactivationskip", target] => {
                let pool = self.pool_target(target)?;
                self.activate_pool(&pool)
            }
            ["lvchange", "--activate", "y", target] => {
                let (vg, lv) = split_target(target)?;
                self.vg_named(vg)?;
                if lv != SEED_LV {
                    return Err(format!("the tool activates no LV {lv}"));
                }
                self.activate_seed_lv()
            }
            ["lvchange", "--activate", "n", targets @ ..] => {
                for target in targets {
                    let (vg, lv) = split_target(target)?;
                    self.vg_named(vg)?;
                    let Some(lv) = self.lv_mut(lv) else {
                        return Err(format!("no LV {target}"));
                    };
                    lv.active = false;
                }
                Ok(())
            }
            ["lvchange", "--refresh", target] => {
                let pool = self.pool_target(target)?;
                self.refresh_pool(&pool)
            }
            ["lvmdevices", "--adddev", device] => {
                self.check_device(device)?;
                let uuid = match &self.observed.physical_volume {
                    Some(pv) => pv.uuid,
                    None => return Err(format!("{device} is not a PV")),
                };
                match &mut self.observed.host_lvm.devices_file {
                    crate::observe::state::DevicesFileFacts::InUse {
                        listed,
                        listed_pvid,
                        ..
                    } => {
                        *listed = true;
                        *listed_pvid = Some(uuid);
                        Ok(())
                    }
                    _ => Err("the host uses no devices file".into()),
                }
            }
            ["lvmdevices", "--yes", "--delpvid", pvid] => {
                if let crate::observe::state::DevicesFileFacts::InUse {
                    listed,
                    listed_pvid,
                    ..
                } = &mut self.observed.host_lvm.devices_file
                {
                    if listed_pvid.as_ref().map(LvmUuid::undashed) == Some(*pvid) {
                        *listed = false;
                        *listed_pvid = None;
                    }
                }
                Ok(())
            }
            other => Err(format!("the simulation knows no command {other:?}")),
        }
    }

    fn check_device(&self, device: &str) -> Result<(), String> {
        if Path::new(device) == self.observed.partition.devnode {
            Ok(())
        } else {
            Err(format!("{device} is not the partition"))
        }
    }

    fn vg_named(&mut self, name: &str) -> Result<&mut VgFacts, String> {
        match self
            .observed
            .physical_volume
            .as_mut()
            .and_then(|pv| pv.volume_group.as_mut())
        {
            Some(vg) if vg.name == name => Ok(vg),
            _ => Err(format!("Volume group \"{name}\" not found")),
        }
    }

    /// `vg/pool` naming the thin pool of the VG.
    fn pool_target(&mut self, target: &str) -> Result<String, String> {
        let (vg, pool) = split_target(target)?;
        self.vg_named(vg)?;
        match self.lv(pool) {
            Some(LvFacts {
                kind: LvKind::ThinPool { .. },
                ..
            }) => Ok(pool.to_owned()),
            _ => Err(format!("{target} is not a thin pool")),
        }
    }

    fn pvcreate(&mut self, options: &[&str]) -> Result<(), String> {
        let reinitialize = options.contains(&"-ff");
        let wipe = options.contains(&"--force");
        if let Some(pv) = &self.observed.physical_volume {
            if pv.volume_group.is_some() {
                return Err("the device is a PV of a volume group".into());
            }
            if !reinitialize {
                return Err("the device is already a PV".into());
            }
        }
        if self.observed.foreign_signature.is_some() && !wipe {
            // `-qq` answers LVM's "Wipe it?" with no.
            return Err("a signature was found and not wiped".into());
        }
        let area = options
            .iter()
            .position(|o| *o == "--metadatasize")
            .and_then(|at| options.get(at + 1))
            .and_then(|size| size.strip_suffix('k'))
            .and_then(|k| k.parse::<u128>().ok())
            .map(|k| Bytes(k * 1024));
        self.pe_start = whole(crate::plan::sizing::pe_start_for(area)) + self.data_alignment_extra;
        let uuid = self.new_uuid("pv");
        self.forget_devices_file_entry();
        self.observed.foreign_signature = None;
        self.observed.physical_volume = Some(PvFacts {
            uuid,
            recorded_device_size: self.observed.partition.size_bytes,
            metadata_bytes_at_end: Bytes(0),
            pe_start_bytes: bytes(self.pe_start),
            in_use_without_metadata: None,
            volume_group: None,
            torn_metadata: None,
            unwritten_metadata_header: None,
        });
        Ok(())
    }

    fn pvremove(&mut self) -> Result<(), String> {
        match &self.observed.physical_volume {
            None => Err("no PV label found".into()),
            Some(pv) if pv.volume_group.is_some() || pv.in_use_without_metadata.is_some() => {
                Err("the PV belongs to a volume group".into())
            }
            Some(_) => {
                self.forget_devices_file_entry();
                self.observed.physical_volume = None;
                Ok(())
            }
        }
    }

    /// The native removal of active thin volumes' devices (by their DM names).
    pub fn deactivate_thin_volumes(&mut self, dm_names: &[String]) -> Result<(), String> {
        let vg = self.vg_mut();
        for name in dm_names {
            let Some(lv) = vg
                .logical_volumes
                .iter_mut()
                .find(|lv| lv.dm_name.as_deref() == Some(name.as_str()))
            else {
                return Err(format!("no active thin volume has device {name}"));
            };
            if !matches!(lv.kind, LvKind::Thin { .. }) {
                return Err(format!("{name} is not a thin volume's device"));
            }
            if let Some(holder) = &lv.open_by {
                return Err(format!("{name} is in use: {holder}"));
            }
            lv.active = false;
            lv.dm_name = None;
        }
        Ok(())
    }

    /// A destroyed PV's entry stays in the host's file as a dead line.
    fn forget_devices_file_entry(&mut self) {
        if let crate::observe::state::DevicesFileFacts::InUse {
            listed,
            listed_pvid,
            dead_pvids,
            ..
        } = &mut self.observed.host_lvm.devices_file
        {
            if let Some(pvid) = listed_pvid.take() {
                dead_pvids.push(pvid.undashed().to_owned());
            }
            *listed = false;
        }
    }

    fn pvresize(&mut self) -> Result<(), String> {
        let size = self.observed.partition.size_bytes;
        let Some(pv) = self.observed.physical_volume.as_mut() else {
            return Err("no PV label found".into());
        };
        pv.recorded_device_size = size;
        if let Some(vg) = pv.volume_group.as_mut() {
            let count = usable_extents(size, vg.pe_start_bytes, vg.extent_size);
            let allocated = vg.pv_extent_count.checked_sub(vg.free_extents);
            if Some(count) < allocated {
                return Err("cannot shrink below allocated extents".into());
            }
            vg.pv_extent_count = count;
        }
        self.settle();
        Ok(())
    }

    fn vgcreate(&mut self, name: &str, tag: &str) -> Result<(), String> {
        let id = decode(tag)?;
        if !self.observed.wanted_vg_name_elsewhere.is_empty() {
            return Err(format!("a volume group called {name} already exists"));
        }
        if name == VG && self.observed.leftovers.vg_dev_dir != VgDevDir::Absent {
            return Err(format!("/dev/{name} already exists in filesystem"));
        }
        let size = self.observed.partition.size_bytes;
        let uuid = self.new_uuid("vg");
        let Some(pv) = self.observed.physical_volume.as_mut() else {
            return Err("no PV label found".into());
        };
        if pv.volume_group.is_some() || pv.in_use_without_metadata.is_some() {
            return Err("the PV is already in a volume group".into());
        }
        let pe_start = bytes(self.pe_start);
        let count = usable_extents(size, pe_start, extent_size());
        pv.recorded_device_size = size;
        pv.volume_group = Some(VgFacts {
            name: name.to_owned(),
            uuid,
            seqno: 1,
            extent_size: extent_size(),
            pe_start_bytes: pe_start,
            pv_extent_count: count,
            free_extents: count,
            other_pvs: Vec::new(),
            satellite_id: SatelliteIdReading::Tag(id),
            satellite_id_tag: Some(tag.to_owned()),
            logical_volumes: Vec::new(),
            free_areas: Vec::new(),
            access_restrictions: Vec::new(),
        });
        Ok(())
    }

    /// `lvremove --force` of one LV or of all; LVM cannot deactivate what a
    /// removal killed midway left of a pool, nor remove an open LV.
    fn remove_lvs(&mut self, only: Option<&str>) -> Result<(), String> {
        let vg = self.vg_mut();
        if let Some(name) = only {
            if !vg.logical_volumes.iter().any(|lv| lv.name == name) {
                return Err(format!("failed to find logical volume {name}"));
            }
        }
        let targeted = |lv: &LvFacts| only.is_none_or(|name| lv.name == name);
        for lv in vg.logical_volumes.iter().filter(|lv| targeted(lv)) {
            if let Some(holder) = &lv.open_by {
                return Err(format!("logical volume {} is in use: {holder}", lv.name));
            }
            if let LvKind::ThinPool {
                serving,
                pool_device_present,
                unloaded_pool_device,
                unheld_pool_device,
                ..
            } = &lv.kind
            {
                if unloaded_pool_device.is_some()
                    || unheld_pool_device.is_some()
                    || (*pool_device_present && !serving)
                {
                    return Err(format!("cannot deactivate the components of {}", lv.name));
                }
            }
        }
        let removed: Vec<String> = vg
            .logical_volumes
            .iter()
            .filter(|lv| targeted(lv))
            .map(|lv| lv.name.clone())
            .collect();
        // A removed thin pool takes its components along, and the last pool LVM's
        // spare metadata LV.
        let pools_removed: Vec<String> = vg
            .logical_volumes
            .iter()
            .filter(|lv| targeted(lv) && matches!(lv.kind, LvKind::ThinPool { .. }))
            .map(|lv| lv.name.clone())
            .collect();
        vg.logical_volumes.retain(|lv| !targeted(lv));
        if only.is_some() && !pools_removed.is_empty() {
            vg.logical_volumes.retain(|lv| {
                !pools_removed
                    .iter()
                    .any(|pool| is_component(&lv.name, pool))
            });
            if !vg
                .logical_volumes
                .iter()
                .any(|lv| matches!(lv.kind, LvKind::ThinPool { .. }))
            {
                vg.logical_volumes
                    .retain(|lv| !lv.name.ends_with("_pmspare"));
            }
        }
        if pools_removed.iter().any(|pool| pool == POOL) {
            self.stale_pool_superblock = None;
        }
        let vg = self.vg_mut();
        if !vg.logical_volumes.iter().any(|lv| lv.name == SEED_LV)
            && !matches!(
                vg.satellite_id,
                SatelliteIdReading::Tag(_) | SatelliteIdReading::Unreadable(_)
            )
        {
            vg.satellite_id = SatelliteIdReading::Absent;
        }
        // LVM removes the links of the LVs it removes from /dev/<vg>. A stale link
        // that reached one of the VG's devices under another name dangles once they
        // are all gone.
        let vg_path = Path::new("/dev").join(&vg.name);
        if let VgDevDir::Folder { path, entries } = &mut self.observed.leftovers.vg_dev_dir {
            if *path == vg_path {
                entries.retain(
                    |e| !matches!(e, VgDevEntry::Symlink { name, .. } | VgDevEntry::LinkNotFollowed { name } if removed.contains(name)),
                );
                if only.is_none() {
                    for entry in entries.iter_mut() {
                        if let VgDevEntry::Symlink { reaches, .. } = entry {
                            if matches!(reaches, LinkReach::ListedVolume { .. }) {
                                *reaches = LinkReach::Nothing;
                            }
                        }
                    }
                }
                if entries.is_empty() {
                    self.observed.leftovers.vg_dev_dir = VgDevDir::Absent;
                }
            }
        }
        self.settle();
        Ok(())
    }

    /// `lvcreate --type thin-pool` with explicit sizes: the data, the metadata
    /// and the spare's growth must fit in the free extents.
    fn create_pool(&mut self, pool: &str, sizes: PoolSizes, zero: bool) -> Result<(), String> {
        let vg = self.vg_mut();
        if vg.logical_volumes.iter().any(|lv| lv.name == pool) {
            return Err(format!("logical volume {pool} already exists"));
        }
        let extent = whole(vg.extent_size.bytes());
        let free = vg.free_extents.count();
        let metadata = sizes.metadata_bytes.div_ceil(extent) * extent;
        let chunk_size_bytes = sizes.chunk_bytes;
        // LVM keeps one spare as large as the largest pool metadata.
        let spare_now = vg
            .logical_volumes
            .iter()
            .find(|lv| lv.name.ends_with("_pmspare"))
            .map(|lv| whole(lv.size_bytes));
        let spare_growth = metadata.saturating_sub(spare_now.unwrap_or(0)) / extent;
        let needed = sizes.data_extents + metadata / extent + spare_growth;
        if sizes.data_extents == 0 || needed > free {
            return Err(format!(
                "insufficient free space: {free} extents, {needed} needed"
            ));
        }
        let data = sizes.data_extents * extent;
        match vg
            .logical_volumes
            .iter_mut()
            .find(|lv| lv.name.ends_with("_pmspare"))
        {
            Some(spare) => spare.size_bytes = spare.size_bytes.max(bytes(metadata)),
            None => vg
                .logical_volumes
                .push(plain_lv("lvol0_pmspare", false, metadata)),
        }
        vg.logical_volumes.push(LvFacts {
            name: pool.to_owned(),
            kind: LvKind::ThinPool {
                metadata_size_bytes: bytes(metadata),
                chunk_size_bytes: bytes(chunk_size_bytes),
                zero_new_blocks: zero,
                serving: true,
                pool_device_present: true,
                unloaded_pool_device: None,
                unheld_pool_device: None,
                tpool_without_own_device: None,
                transaction_mismatch: None,
            },
            visible: true,
            size_bytes: bytes(data),
            active: true,
            open_by: None,
            dm_name: None,
            plain_linear_at: None,
        });
        for (suffix, size) in [("_tdata", data), ("_tmeta", metadata)] {
            let mut component = plain_lv(&format!("{pool}{suffix}"), false, size);
            component.active = true;
            vg.logical_volumes.push(component);
        }
        self.settle();
        Ok(())
    }

    /// LVM refuses to change or activate an idle pool while its components are
    /// active on their own or a never-loaded pool device is in the way.
    fn check_pool_unblocked(&self, pool: &str) -> Result<(), String> {
        let Some(LvFacts {
            kind:
                LvKind::ThinPool {
                    pool_device_present,
                    unloaded_pool_device,
                    ..
                },
            ..
        }) = self.lv(pool)
        else {
            return Err(format!("no thin pool {pool}"));
        };
        if let Some(device) = unloaded_pool_device {
            return Err(format!("device {device} exists without a table"));
        }
        let stranded = self.vg().is_some_and(|vg| {
            vg.logical_volumes
                .iter()
                .any(|lv| lv.active && is_component(&lv.name, pool))
        });
        if !pool_device_present && stranded {
            return Err(format!("components of {pool} are active"));
        }
        Ok(())
    }

    fn extend_pool_metadata(&mut self, pool: &str, to_bytes: u64) -> Result<(), String> {
        self.check_pool_unblocked(pool)?;
        let vg = self.vg_mut();
        let extent = whole(vg.extent_size.bytes());
        let to_bytes = to_bytes.div_ceil(extent) * extent;
        let free = vg.free_extents.count();
        let mut grown = 0;
        for lv in &mut vg.logical_volumes {
            let is_pool_metadata =
                lv.name == format!("{pool}_tmeta") || lv.name.ends_with("_pmspare");
            if is_pool_metadata && whole(lv.size_bytes) < to_bytes {
                grown += (to_bytes - whole(lv.size_bytes)) / extent;
                lv.size_bytes = bytes(to_bytes);
            }
            if let LvKind::ThinPool {
                metadata_size_bytes,
                ..
            } = &mut lv.kind
            {
                if lv.name == pool {
                    if to_bytes <= whole(*metadata_size_bytes) {
                        return Err("new metadata size is not larger".into());
                    }
                    *metadata_size_bytes = bytes(to_bytes);
                }
            }
        }
        if grown > free {
            return Err(format!(
                "insufficient free space: {free} extents, {grown} needed"
            ));
        }
        self.settle();
        Ok(())
    }

    fn extend_pool(&mut self, pool: &str, by_extents: u64) -> Result<(), String> {
        self.check_pool_unblocked(pool)?;
        let vg = self.vg_mut();
        if by_extents > vg.free_extents.count() {
            return Err(format!(
                "insufficient free space: {} extents, {by_extents} needed",
                vg.free_extents.count()
            ));
        }
        let grow = by_extents * whole(vg.extent_size.bytes());
        if grow == 0 {
            return Err("new size is not larger than the existing size".into());
        }
        for lv in &mut vg.logical_volumes {
            if lv.name == pool || lv.name == format!("{pool}_tdata") {
                lv.size_bytes = bytes(whole(lv.size_bytes) + grow);
            }
        }
        self.settle();
        Ok(())
    }

    fn activate_pool(&mut self, pool: &str) -> Result<(), String> {
        self.check_pool_unblocked(pool)?;
        for lv in &mut self.vg_mut().logical_volumes {
            if lv.name == pool {
                if let LvKind::ThinPool {
                    serving,
                    pool_device_present,
                    ..
                } = &mut lv.kind
                {
                    *serving = true;
                    *pool_device_present = true;
                }
                lv.active = true;
            }
            if is_component(&lv.name, pool) {
                lv.active = true;
            }
        }
        Ok(())
    }

    /// Activating the seed's thin LV activates its pool; its file is then read.
    fn activate_seed_lv(&mut self) -> Result<(), String> {
        let pool = match self.lv(SEED_LV).map(|lv| &lv.kind) {
            Some(LvKind::Thin { pool }) => pool.clone(),
            _ => return Err(format!("no thin LV {SEED_LV}")),
        };
        self.activate_pool(&pool)?;
        if let Some(lv) = self.lv_mut(SEED_LV) {
            lv.active = true;
        }
        self.read_seed_file();
        Ok(())
    }

    fn read_seed_file(&mut self) {
        let seed_active = self.lv(SEED_LV).is_some_and(|lv| lv.active);
        let reading = match (&self.seed_file_id, seed_active) {
            (_, false) => SatelliteIdReading::SeedLvInactive,
            (Some(id), true) => SatelliteIdReading::SeedFile(id.clone()),
            (None, true) => SatelliteIdReading::Unreadable("no satellite-id file".into()),
        };
        let vg = self.vg_mut();
        if !matches!(
            vg.satellite_id,
            SatelliteIdReading::Tag(_) | SatelliteIdReading::Absent
        ) {
            vg.satellite_id = reading;
        }
    }

    fn refresh_pool(&mut self, pool: &str) -> Result<(), String> {
        for lv in &mut self.vg_mut().logical_volumes {
            if let LvKind::ThinPool {
                serving,
                pool_device_present,
                ..
            } = &mut lv.kind
            {
                if lv.name == pool && *pool_device_present {
                    *serving = true;
                }
            }
        }
        if matches!(&self.vg_mut().satellite_id, SatelliteIdReading::SeedPoolSuspended { pool: p } if p == pool)
        {
            self.read_seed_file();
        }
        Ok(())
    }

    /// The native removal of device-mapper devices no VG lists.
    pub fn remove_stale_devices(&mut self, dm_names: &[String]) -> Result<(), String> {
        for name in dm_names {
            let leftovers = &mut self.observed.leftovers.stale_devices;
            if let Some(held) = leftovers
                .iter()
                .find(|d| &d.dm_name == name)
                .and_then(|d| d.held_by.clone())
            {
                return Err(format!("{name} is {held}"));
            }
            leftovers.retain(|d| &d.dm_name != name);
            let Some(vg) = self
                .observed
                .physical_volume
                .as_mut()
                .and_then(|pv| pv.volume_group.as_mut())
            else {
                continue;
            };
            for lv in &mut vg.logical_volumes {
                if let LvKind::ThinPool {
                    serving,
                    pool_device_present,
                    unloaded_pool_device,
                    unheld_pool_device,
                    ..
                } = &mut lv.kind
                {
                    if unloaded_pool_device.as_ref() == Some(name) {
                        *unloaded_pool_device = None;
                    }
                    if unheld_pool_device.as_ref() == Some(name) {
                        *unheld_pool_device = None;
                        *serving = false;
                        *pool_device_present = false;
                        lv.active = false;
                    }
                }
            }
        }
        Ok(())
    }

    /// The native removal of `/dev/<vg>` holding only dangling links.
    pub fn remove_volume_group_path(&mut self, path: &Path) -> Result<(), String> {
        match &self.observed.leftovers.vg_dev_dir {
            VgDevDir::Absent => Ok(()),
            VgDevDir::Folder { path: at, .. } if at != path => Ok(()),
            VgDevDir::Folder { entries, .. }
                if entries.iter().all(|e| {
                    matches!(
                        e,
                        VgDevEntry::Symlink {
                            reaches: LinkReach::Nothing,
                            ..
                        }
                    )
                }) =>
            {
                self.observed.leftovers.vg_dev_dir = VgDevDir::Absent;
                Ok(())
            }
            other => Err(format!(
                "{} is not only dangling links: {other:?}",
                path.display()
            )),
        }
    }

    /// Free extents follow from what the LVs allocate (plain LVs and pool
    /// components take extents; pools and thin volumes none of their own).
    fn settle(&mut self) {
        let Some(vg) = self
            .observed
            .physical_volume
            .as_mut()
            .and_then(|pv| pv.volume_group.as_mut())
        else {
            return;
        };
        let extent = whole(vg.extent_size.bytes());
        // Plain LVs lie one after the other from the first extent, in list order.
        let mut allocated = 0;
        for lv in &mut vg.logical_volumes {
            if matches!(lv.kind, LvKind::Other { .. }) {
                lv.plain_linear_at = Some(allocated);
                allocated += whole(lv.size_bytes) / extent;
            }
        }
        vg.free_extents = vg
            .pv_extent_count
            .checked_sub(Extents::new(allocated))
            .unwrap_or_else(|| panic!("the LVs allocate more than the PV has: {vg:?}"));
        vg.free_areas = [PeRange {
            start: allocated,
            count: vg.free_extents.count(),
        }]
        .into_iter()
        .filter(|area| area.count > 0)
        .collect();
        vg.seqno += 1;
    }
}

/// A plain (linear) LV.
pub fn plain_lv(name: &str, visible: bool, size_bytes: u64) -> LvFacts {
    LvFacts {
        name: name.to_owned(),
        kind: LvKind::Other {
            segment_type: "striped".into(),
        },
        visible,
        size_bytes: bytes(size_bytes),
        active: false,
        open_by: None,
        dm_name: None,
        plain_linear_at: None,
    }
}

/// A thin volume in the configured pool, inactive.
pub fn thin_volume(name: &str) -> LvFacts {
    LvFacts {
        name: name.to_owned(),
        kind: LvKind::Thin { pool: POOL.into() },
        visible: true,
        size_bytes: bytes(10 * GIB),
        active: false,
        open_by: None,
        dm_name: None,
        plain_linear_at: None,
    }
}

fn is_component(name: &str, pool: &str) -> bool {
    name.strip_prefix(pool)
        .is_some_and(|suffix| suffix == "_tdata" || suffix == "_tmeta")
}

fn split_target(target: &str) -> Result<(&str, &str), String> {
    target
        .split_once('/')
        .ok_or_else(|| format!("{target} is not vg/lv"))
}

fn decode(tag: &str) -> Result<String, String> {
    match satellite_id::decode_tag(tag) {
        Ok(Some(id)) => Ok(id),
        Ok(None) => Err(format!("{tag} is not a satellite ID tag")),
        Err(e) => Err(e.to_string()),
    }
}

/// Extents LVM gives a PV on `size` bytes (no metadata area at the end).
fn usable_extents(size: Bytes, pe_start: Bytes, extent: ExtentSize) -> Extents {
    let usable = size.checked_sub(pe_start).unwrap_or(Bytes(0));
    extent
        .extents_in(usable)
        .unwrap_or_else(|| panic!("{usable} holds more extents than a u64 counts"))
}

/// A byte count the simulation computes with as a plain number.
pub fn bytes(count: u64) -> Bytes {
    Bytes::from(count)
}

/// The simulation's sizes fit in a u64: the test states are a few TiB at most.
pub fn whole(size: Bytes) -> u64 {
    u64::try_from(*size).unwrap_or_else(|_| panic!("simulated size {size} beyond u64"))
}

/// LVM's default extent size ([`EXTENT`]).
pub fn extent_size() -> ExtentSize {
    ExtentSize::from_sectors(Sectors(EXTENT / 512))
        .unwrap_or_else(|| panic!("{EXTENT} bytes is not an extent size"))
}

/// The observing side of the simulation.
pub struct SimulatedMachine {
    pub partition: Rc<RefCell<SimulatedPartition>>,
    /// Locks taken (each run that may write takes one).
    pub locks_taken: usize,
    /// Observation passes made.
    pub observations: usize,
    /// Identity checks of the locked partition made.
    pub identity_checks: usize,
    /// From this identity check on (1-based), the device node names another device.
    pub node_swapped_at_check: Option<usize>,
    /// Preflight passes made (each before a plan that writes).
    pub preflights: usize,
    /// Observation passes that asked every LV's state (open counts).
    pub lv_state_observations: usize,
    /// Per observation pass, in order: whether it took the VG's devices from the
    /// device-mapper list read while resolving.
    pub reused_resolve_dm_list: Vec<bool>,
    /// Taking the lock waits for another instance.
    pub lock_contended: bool,
}

impl SimulatedMachine {
    pub fn new(partition: &Rc<RefCell<SimulatedPartition>>) -> Self {
        SimulatedMachine {
            partition: Rc::clone(partition),
            locks_taken: 0,
            observations: 0,
            identity_checks: 0,
            node_swapped_at_check: None,
            preflights: 0,
            lv_state_observations: 0,
            reused_resolve_dm_list: Vec::new(),
            lock_contended: false,
        }
    }
}

impl Machine for SimulatedMachine {
    /// Whether taking it waited for another instance.
    type Lock = bool;

    fn resolve(&mut self, label: &str, _timer: &mut PhaseTimer) -> Result<Resolved, ObserveError> {
        let device = self.partition.borrow().block_device();
        assert_eq!(device.partition_label.as_deref(), Some(label));
        Ok(Resolved {
            device,
            backend: DiscoveryBackend::default(),
            dm_list_at_resolve: None,
        })
    }

    fn lock_was_contended(lock: &bool) -> bool {
        *lock
    }

    fn lock(&mut self, devnode: &Path) -> Result<bool, LockError> {
        assert_eq!(devnode, Path::new(DEVNODE));
        self.locks_taken += 1;
        Ok(self.lock_contended)
    }

    fn reidentify(&mut self, _lock: &bool, resolved: &Resolved) -> Result<(), LockError> {
        self.identity_checks += 1;
        match self.node_swapped_at_check {
            Some(at) if self.identity_checks >= at => Err(LockError::Swapped {
                path: resolved.device.devnode.clone(),
                locked: "block device 254:1".to_owned(),
                now: "block device 254:17".to_owned(),
            }),
            _ => Ok(()),
        }
    }

    fn observe(
        &mut self,
        _resolved: &Resolved,
        expect: &Expectations<'_>,
        _timer: &mut PhaseTimer,
    ) -> Result<Snapshot, ObserveError> {
        self.observations += 1;
        self.reused_resolve_dm_list
            .push(expect.reuse_resolve_dm_list);
        let mut snapshot = self.partition.borrow().snapshot();
        if expect.every_lv_state {
            self.lv_state_observations += 1;
        } else {
            // As the real observer: thin volumes' open counts are not asked.
            let vg = snapshot
                .observed
                .physical_volume
                .as_mut()
                .and_then(|pv| pv.volume_group.as_mut());
            let here = vg.as_ref().map(|vg| vg.name.clone());
            for lv in vg.into_iter().flat_map(|vg| vg.logical_volumes.iter_mut()) {
                if matches!(lv.kind, LvKind::Thin { .. })
                    && lv.name != crate::observe::seed_layout::SEED_ID_LV
                {
                    lv.open_by = None;
                }
            }
            // Nor the kept VG's `/dev/<vg>` folder.
            if here.is_some() && here.as_deref() == expect.volume_group {
                snapshot.observed.leftovers.vg_dev_dir = VgDevDir::NotRead;
            }
        }
        Ok(snapshot)
    }

    fn preflight(
        &mut self,
        _resolved: &Resolved,
        _timer: &mut PhaseTimer,
    ) -> Result<PreflightFacts, ObserveError> {
        self.preflights += 1;
        Ok(self.partition.borrow().preflight.clone())
    }
}

/// A recording executor on the simulated partition.
pub struct RecordingLvm {
    partition: Rc<RefCell<SimulatedPartition>>,
    /// Every write in order: LVM command lines without their scope (`--devices …
    /// --config …`), and the native removals as `remove-stale-devices a,b` and
    /// `remove-stale-vg-path /dev/x`.
    pub log: Vec<String>,
    commands_run: usize,
    /// The LVM command with this number (1-based) fails and changes nothing: LVM
    /// refused it, or the run was killed before it committed.
    pub fail_command: Option<usize>,
    /// LVM commands starting with this succeed and change nothing, as activations do
    /// that `activation/volume_list` filters out.
    pub ignore_commands_starting: Option<&'static str>,
    /// This many native removals find their device changed since it was observed
    /// (another device under its name, a new holder) and remove nothing.
    pub removals_finding_changes: usize,
    /// Where flushes were sent: the length of [`Self::log`] at each.
    pub flushed_at: Vec<usize>,
}

impl RecordingLvm {
    pub fn new(partition: &Rc<RefCell<SimulatedPartition>>) -> Self {
        RecordingLvm {
            partition: Rc::clone(partition),
            log: Vec::new(),
            commands_run: 0,
            fail_command: None,
            ignore_commands_starting: None,
            removals_finding_changes: 0,
            flushed_at: Vec::new(),
        }
    }
}

/// How the simulation reports a command LVM would refuse.
fn refused(command: String, why: String) -> ApplyError {
    ApplyError::CommandFailed {
        command,
        status: "Failed".into(),
        errors: why,
    }
}

impl RecordingLvm {
    /// A native removal step: logged as `<step> <names>`; the next
    /// `removals_finding_changes` of them find the devices changed (observe again),
    /// the others are applied to the partition by `apply`.
    fn native_removal(
        &mut self,
        step: &str,
        dm_names: &[String],
        change: &str,
        apply: fn(&mut SimulatedPartition, &[String]) -> Result<(), String>,
    ) -> Result<(), ApplyError> {
        let line = format!("{step} {}", dm_names.join(","));
        self.log.push(line.clone());
        if self.removals_finding_changes > 0 {
            self.removals_finding_changes -= 1;
            return Err(ApplyError::Leftover(
                super::leftovers::LeftoverError::ChangedSinceObserved {
                    dm_name: dm_names.join(","),
                    why: change.to_owned(),
                },
            ));
        }
        apply(&mut self.partition.borrow_mut(), dm_names).map_err(|why| refused(line, why))
    }
}

impl LvmExecutor for RecordingLvm {
    fn run(&mut self, args: &[String]) -> Result<(), ApplyError> {
        self.commands_run += 1;
        let unscoped: Vec<&str> = args
            .iter()
            .map(String::as_str)
            .take_while(|w| *w != "--devices" && *w != "--config")
            .collect();
        let line = unscoped.join(" ");
        self.log.push(line.clone());
        if self.fail_command == Some(self.commands_run) {
            return Err(refused(line, "simulated failure".into()));
        }
        if self
            .ignore_commands_starting
            .is_some_and(|prefix| line.starts_with(prefix))
        {
            return Ok(());
        }
        self.partition
            .borrow_mut()
            .run(args)
            .map_err(|why| refused(line, why))
    }

    fn commands_run(&self) -> usize {
        self.commands_run
    }

    fn flush_partition(&mut self, _partition: &Path, _after: &str) -> Result<(), ApplyError> {
        self.flushed_at.push(self.log.len());
        Ok(())
    }

    fn flushes(&self) -> usize {
        self.flushed_at.len()
    }

    fn sync_devices_file(&mut self, file: &Path, _after: &str) -> Result<(), ApplyError> {
        self.log.push(format!("sync {}", file.display()));
        Ok(())
    }

    fn erase_torn_label(&mut self, partition: &Path) -> Result<(), ApplyError> {
        self.log
            .push(format!("erase-torn-label {}", partition.display()));
        let mut sim = self.partition.borrow_mut();
        sim.forget_devices_file_entry();
        sim.observed.physical_volume = None;
        Ok(())
    }

    /// The simulation has no bytes: the copy's text is a stand-in.
    fn read_metadata_copy(
        &mut self,
        _partition: &Path,
        _copy: &super::restore::CopyAt,
    ) -> Result<Vec<u8>, ApplyError> {
        Ok(b"simulated metadata copy\n".to_vec())
    }

    fn remove_stale_devices(
        &mut self,
        dm_names: &[String],
        _context: &RemovalContext<'_>,
    ) -> Result<(), ApplyError> {
        self.native_removal(
            "remove-stale-devices",
            dm_names,
            "simulated: another device under that name",
            SimulatedPartition::remove_stale_devices,
        )
    }

    fn deactivate_thin_volumes(
        &mut self,
        _volume_group: &crate::config::names::VgName,
        dm_names: &[String],
        _context: &RemovalContext<'_>,
    ) -> Result<(), ApplyError> {
        self.native_removal(
            "deactivate-thin-volumes",
            dm_names,
            "simulated: now open",
            SimulatedPartition::deactivate_thin_volumes,
        )
    }

    fn remove_stale_volume_group_path(&mut self, path: &Path) -> Result<(), ApplyError> {
        let line = format!("remove-stale-vg-path {}", path.display());
        self.log.push(line.clone());
        self.partition
            .borrow_mut()
            .remove_volume_group_path(path)
            .map_err(|why| refused(line, why))
    }
}

/// The sizes of a pool `lvcreate` names.
#[derive(Debug, Clone, Copy)]
struct PoolSizes {
    data_extents: u64,
    metadata_bytes: u64,
    chunk_bytes: u64,
}
