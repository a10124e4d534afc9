//! The plain-data picture of one partition that the planner works from. Built by
//! [`super::snapshot::observe_partition`] from the native readers; built by hand in tests.
pub use super::host_lvm_facts::{DevicesFileFacts, FilterRejection, HostLvmFacts, VgLocking};
pub use super::live::ThinPoolMode;
use super::lvm::LvmUuid;
pub use super::preflight::{ForeignSignature, Preflight, PreflightFacts};
use super::vg_dev_dir::VgDevDir;
use crate::units::{Bytes, ExtentSize, Extents};
use serde::Serialize;
use std::path::PathBuf;

/// Everything the planner needs to know about the labeled partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObservedPartition {
    pub partition: PartitionFacts,
    /// A non-LVM signature on the partition (filesystem, LUKS, swap, ...), by name.
    pub foreign_signature: Option<String>,
    /// The LVM physical volume on the partition, if it carries an LVM label.
    pub physical_volume: Option<PvFacts>,
    /// Devices other than the partition that hold a VG with the configured name.
    pub wanted_vg_name_elsewhere: Vec<PathBuf>,
    /// What interrupted LVM commands left outside the metadata.
    pub leftovers: Leftovers,
    /// What the host's LVM configuration (devices file, filters) means for the
    /// partition: whether the host will see the VG.
    pub host_lvm: HostLvmFacts,
    /// What must hold before a plan writes (read only for plans that write; not
    /// part of `status`'s JSON, which lists the signatures itself).
    #[serde(skip)]
    pub preflight: Preflight,
    /// How full the configured pool's metadata is, read from its device-mapper
    /// status when the pool serves I/O (the planner doubles it at 75%).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool_metadata_usage: Option<PoolMetadataUsage>,
}

/// State outside LVM's metadata that a command killed midway leaves behind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Leftovers {
    /// LVM device-mapper devices stacked on the partition that the VG on it does not
    /// list (or all of them, when no VG is there), in removal order.
    pub stale_devices: Vec<StaleDevice>,
    /// `/dev/<configured VG name>`.
    pub vg_dev_dir: VgDevDir,
}

/// A device-mapper device left active by an interrupted command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaleDevice {
    pub dm_name: String,
    /// What holds it open, when something does: then it is not ours to remove.
    pub held_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionFacts {
    pub devnode: PathBuf,
    pub major: u32,
    pub minor: u32,
    pub label: String,
    /// Current size of the partition (BLKGETSIZE64).
    pub size_bytes: Bytes,
}

/// Used and total bytes of a thin pool's metadata device, as the kernel reports
/// them, with the pool's mode and `needs_check` flag: the kernel grows neither
/// the metadata nor the data of a pool flagged `needs_check`, whatever LVM commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PoolMetadataUsage {
    pub used_bytes: Bytes,
    pub total_bytes: Bytes,
    pub mode: ThinPoolMode,
    pub needs_check: bool,
}

impl PoolMetadataUsage {
    /// Whole percent used (100 for an empty total: nothing is known to be free).
    pub fn used_percent(&self) -> u64 {
        (self.used_bytes.0.saturating_mul(100))
            .checked_div(self.total_bytes.0)
            .map_or(100, |p| u64::try_from(p).unwrap_or(u64::MAX))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PvFacts {
    pub uuid: LvmUuid,
    /// Device size recorded in the PV header (what `pvresize` last saw).
    pub recorded_device_size: Bytes,
    /// Bytes of metadata areas that lie after the first extent (a second area at
    /// the end of the device, `--pvmetadatacopies 2`): LVM subtracts them from the
    /// space extents may use, and moves them to the new end on `pvresize`.
    pub metadata_bytes_at_end: Bytes,
    /// Where its extents start (`pe_start`, the first data area's offset): a VG
    /// created on an orphan PV counts its extents from here.
    #[serde(skip)]
    pub pe_start_bytes: Bytes,
    /// The PV header says "in a VG", yet no metadata area on the partition holds
    /// that VG's metadata.
    pub in_use_without_metadata: Option<InUseWithoutMetadata>,
    pub volume_group: Option<VgFacts>,
    /// A metadata area whose header points at text that never reached the disk (or
    /// was damaged): no VG can be read, and this says what is left. Absent from the
    /// JSON when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub torn_metadata: Option<TornMetadata>,
    /// A metadata area whose header was never written (all zeros after the label):
    /// no VG can be read, and this says what is left. Absent from the JSON when
    /// there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unwritten_metadata_header: Option<UnwrittenMetadataHeader>,
}

/// A PV label whose metadata area's header sector is all zeros: the disk kept
/// `pvcreate`'s label write and lost its header write. No commit can have reached an
/// area without a header (each commit rewrites the header), so when the buffer
/// holds nothing of this PV and no other device lists it, no VG ever lived here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnwrittenMetadataHeader {
    /// Byte offset of the area on the partition, and its size (header included).
    pub area_start: u64,
    pub area_size: u64,
    /// Metadata areas of the PV, and how many have no header.
    pub metadata_areas: usize,
    pub unwritten_areas: usize,
    /// The header extension says the PV belongs to a VG (`vgcreate` marks it so
    /// before its first commit).
    pub marked_in_use: bool,
    /// Non-zero sectors of the buffer that no copy found there accounts for (area
    /// offsets): text of unknown origin, such as the tail of an earlier PV's copy
    /// whose start `pvcreate` zeroed.
    pub stray_sectors: Vec<u64>,
    /// Area offsets where this PV's uuid appears in the buffer: text written for
    /// this PV, intact or not.
    pub pv_uuid_at: Vec<u64>,
    /// The intact copies in the buffer, newest first. A reset leaves the previous
    /// PV's there; they name another uuid.
    pub copies: Vec<MetadataCopy>,
    /// VGs on other block devices whose metadata lists this PV's uuid.
    pub listed_by: Vec<VgListingPv>,
    /// Devices that carry an LVM label but could not be read: `(device, why)`.
    pub unreadable: Vec<(PathBuf, String)>,
}

/// A metadata-area header whose committed slot points at text that does not match
/// the checksum recorded for it. LVM itself then shows VG `[unknown]` on every
/// command; the intact older copies still in the area's circular buffer say what the
/// VG was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TornMetadata {
    /// Byte offset of the metadata area on the partition.
    pub area_start: u64,
    /// Size of the area (header included).
    pub area_size: u64,
    /// Where the committed slot points (bytes from the area start) and how long the
    /// text is said to be.
    pub slot_offset: u64,
    pub slot_size: u64,
    pub recorded_checksum: u32,
    pub computed_checksum: u32,
    /// Metadata areas of the PV in use (not ignored): a repair rewrites them all.
    pub areas_in_use: usize,
    /// Metadata areas of the PV, ignored ones included (`pvck --repair` rewrites
    /// an ignored one too and clears its flag).
    pub metadata_areas: usize,
    /// Non-zero sectors of the buffer that neither the torn text nor a copy found
    /// there accounts for (area offsets): text of unknown origin.
    pub stray_sectors: Vec<u64>,
    /// The slot points at the first text an area ever holds (right after its
    /// header, where `vgcreate` writes), so this may be the VG's first commit.
    pub first_text: bool,
    /// The intact copies of metadata text still in the buffer, newest (highest
    /// seqno) first.
    pub copies: Vec<MetadataCopy>,
    /// VGs on other block devices whose metadata lists this PV's uuid.
    pub listed_by: Vec<VgListingPv>,
    /// Devices that carry an LVM label but could not be read: `(device, why)`.
    pub unreadable: Vec<(PathBuf, String)>,
}

/// One intact copy of VG metadata text found in a torn area's buffer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MetadataCopy {
    /// Bytes from the area start, and length with the terminating NUL.
    pub offset: u64,
    pub size: u64,
    /// What the copy sums to (checked again before it is written back).
    pub checksum: u32,
    pub seqno: u64,
    pub volume_group: String,
    /// The VG's id: a VG made again under the same name has another.
    pub vg_id: LvmUuid,
    /// The copy lists this PV (by uuid, which `pvcreate` makes new each time).
    pub names_this_pv: bool,
    /// The copy's VG also lists other PVs.
    pub spans_other_pvs: bool,
    /// The satellite ID its tag records (`None`: no tag of this tool's, or one that
    /// does not decode).
    pub satellite_id: Option<String>,
    /// The copy's VG holds the seed tool's `metadata` volume (where the seed kept the
    /// satellite ID before this tool tagged the VG).
    pub seed_layout: bool,
    /// Zero padding after the text, as LVM's commits leave it (see
    /// [`crate::observe::lvm::RingCopy::padded`]).
    pub padded: bool,
    /// Where LVM writes the commit after this copy (bytes from the area start): a
    /// copy is the torn commit's predecessor when this is the torn slot's offset.
    pub next_offset: Option<u64>,
    /// The copy's `system_id` and `lock_type` (absent or empty: none).
    pub system_id: Option<String>,
    pub lock_type: Option<String>,
}

/// A PV marked in use whose own metadata areas hold no VG metadata: either a
/// member of a VG whose metadata lives on other devices, or what a `vgcreate`
/// cut off before its first commit leaves. Only the second may be re-initialised,
/// and only when nothing on the machine says otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InUseWithoutMetadata {
    pub own_areas: OwnMetadataAreas,
    /// VGs on other block devices whose metadata lists this PV's uuid.
    pub listed_by: Vec<VgListingPv>,
    /// Devices that carry an LVM label but could not be read, so they might list
    /// this PV: `(device, why)`.
    pub unreadable: Vec<(PathBuf, String)>,
}

impl InUseWithoutMetadata {
    /// True only when the state proves the VG was never committed anywhere: this
    /// PV has a metadata area in use (not ignored) and empty, and no readable
    /// device lists the PV, and every LVM device could be read.
    pub fn proves_interrupted_vg_creation(&self) -> bool {
        self.own_areas == OwnMetadataAreas::EmptyInUse
            && self.listed_by.is_empty()
            && self.unreadable.is_empty()
    }
}

/// What this PV's own metadata areas hold when none holds VG metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OwnMetadataAreas {
    /// No metadata area at all (`pvcreate --pvmetadatacopies 0`).
    None,
    /// Every area is marked ignored (`--metadataignore y`, or `vgchange
    /// --vgmetadatacopies`): LVM keeps the VG's metadata on other PVs.
    Ignored,
    /// At least one area in use (not ignored), and all empty: what `vgcreate`
    /// leaves between marking the PV and committing the VG's first metadata.
    EmptyInUse,
}

/// A VG found on other devices that lists the partition's PV.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VgListingPv {
    pub volume_group: String,
    /// Devices carrying that VG's metadata.
    pub devices: Vec<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VgFacts {
    pub name: String,
    pub uuid: LvmUuid,
    pub seqno: u64,
    #[serde(
        rename = "extent_size_bytes",
        serialize_with = "ExtentSize::serialize_as_bytes"
    )]
    pub extent_size: ExtentSize,
    /// Where this PV's first extent starts.
    pub pe_start_bytes: Bytes,
    /// Extents this PV contributes to the VG.
    pub pv_extent_count: Extents,
    /// Extents of the VG not allocated to any LV.
    pub free_extents: Extents,
    /// PVs of the VG other than the partition (uuid and last known device).
    pub other_pvs: Vec<String>,
    pub satellite_id: SatelliteIdReading,
    /// The tag recording the satellite ID exactly as stored, for replacing it (not
    /// part of the JSON: `satellite_id` shows what it says).
    #[serde(skip)]
    pub satellite_id_tag: Option<String>,
    pub logical_volumes: Vec<LvFacts>,
    /// This PV's unallocated extents, in PE order: where LVM allocates next.
    #[serde(skip)]
    pub free_areas: Vec<PeRange>,
    /// What LVM checks before any command may change the VG on this host (e.g.
    /// "system ID host-b"): a system ID, a lock type (a shared VG), the
    /// `EXPORTED` or `CLUSTERED` status, no `WRITE` status. Empty for a VG any
    /// host's LVM may change.
    #[serde(skip)]
    pub access_restrictions: Vec<String>,
}

/// A run of physical extents on the partition's PV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeRange {
    pub start: u64,
    pub count: u64,
}

/// What the disk says about the satellite ID the storage was made for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "source", content = "value", rename_all = "kebab-case")]
pub enum SatelliteIdReading {
    /// Recorded as a VG tag by this tool.
    Tag(String),
    /// Read from the seed tool's `metadata` LV (ext4 file `satellite-id`).
    SeedFile(String),
    /// The seed tool's `metadata` LV exists but is not active, so it can't be read yet.
    SeedLvInactive,
    /// The seed tool's `metadata` LV has a device that maps nothing: an activation
    /// killed after creating it and before loading its table. It reads as an error;
    /// activating the LV again loads the table into it.
    SeedLvUnloaded { dm_name: String },
    /// The pool under the seed tool's `metadata` LV is suspended: reading would
    /// wait until it is resumed.
    SeedPoolSuspended { pool: String },
    /// Nothing records an ID.
    Absent,
    /// Something records an ID but reading it failed; never treated as "different".
    Unreadable(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LvFacts {
    pub name: String,
    pub kind: LvKind,
    /// Visible LVs are the ones users made; hidden ones are LVM's sub-LVs.
    pub visible: bool,
    pub size_bytes: Bytes,
    /// Active in device-mapper right now.
    pub active: bool,
    /// Who holds it open (DM holders or an open count), when someone does.
    pub open_by: Option<String>,
    /// The device-mapper name of its own device (no layer), when that is active and
    /// is the LV's only device (not an origin with a `-real` layer below it).
    #[serde(skip)]
    pub dm_name: Option<String>,
    /// Its first physical extent, when the metadata records the LV exactly as
    /// `lvcreate` writes a new linear LV: one `striped` segment of one stripe on
    /// this PV, status `READ, WRITE, VISIBLE`, no flags, no tags.
    #[serde(skip)]
    pub plain_linear_at: Option<u64>,
}

/// A thin pool's transaction id as the kernel reads it from the metadata device,
/// against the one LVM's metadata records for the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TransactionMismatch {
    pub on_disk: u64,
    pub recorded: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum LvKind {
    ThinPool {
        metadata_size_bytes: Bytes,
        chunk_size_bytes: Bytes,
        zero_new_blocks: bool,
        /// Its `-tpool` device-mapper device serves I/O: LVM reports usage and
        /// LINSTOR can carve volumes. LINSTOR never activates a pool itself.
        serving: bool,
        /// Its `-tpool` device exists with a live table (serving, or suspended).
        pool_device_present: bool,
        /// A `-tpool` device an interrupted activation created but never loaded (no
        /// live table, not open): it maps nothing and blocks a new activation.
        unloaded_pool_device: Option<String>,
        /// A live `-tpool` device nothing holds open while the pool's own device is
        /// absent: what a removal killed after deactivating the last thin volume
        /// leaves. LVM looks a used pool up by its own device only, counts the pool
        /// inactive and then cannot deactivate the components under it.
        unheld_pool_device: Option<String>,
        /// The live `-tpool` device when the pool's own (`-pool`) device is not
        /// active: only thin volumes hold it (activated one by one, not the pool
        /// itself). Once a reset has removed their devices nothing does, and LVM
        /// counts the pool inactive and cannot deactivate its components.
        #[serde(skip)]
        tpool_without_own_device: Option<String>,
        /// The kernel's transaction id of the serving pool differs from the one
        /// LVM records: the metadata device holds another pool's superblock (a
        /// power loss kept a new pool's LVM metadata but lost LVM's wipe of its
        /// `_tmeta`). `None` when they agree or the pool does not serve.
        #[serde(skip_serializing_if = "Option::is_none")]
        transaction_mismatch: Option<TransactionMismatch>,
    },
    Thin {
        pool: String,
    },
    Other {
        segment_type: String,
    },
}
