//! The plain-data picture of one partition that the planner works from. Built by
//! [`super::observe_partition`] from the native readers; built by hand in tests.
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
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionFacts {
    pub devnode: PathBuf,
    pub major: u32,
    pub minor: u32,
    pub label: String,
    /// Current size of the partition in bytes (BLKGETSIZE64).
    pub size_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PvFacts {
    pub uuid: String,
    /// Device size recorded in the PV header (what `pvresize` last saw), bytes.
    pub recorded_device_size: u64,
    /// The PV header says it belongs to a VG, but it carries no copy of the VG's
    /// metadata (`--pvmetadatacopies 0`): the VG lives on other devices too.
    pub in_vg_without_metadata: bool,
    /// The PV header says "in a VG" and the PV has metadata areas, yet none holds any
    /// VG metadata: a `vgcreate` was cut off between marking the PV and committing the
    /// VG's first metadata. There is no VG to lose.
    pub interrupted_vg_creation: bool,
    pub volume_group: Option<VgFacts>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VgFacts {
    pub name: String,
    pub uuid: String,
    pub seqno: u64,
    pub extent_size_bytes: u64,
    /// Where this PV's first extent starts, bytes.
    pub pe_start_bytes: u64,
    /// Extents this PV contributes to the VG.
    pub pv_extent_count: u64,
    /// Extents of the VG not allocated to any LV.
    pub free_extents: u64,
    /// PVs of the VG other than the partition (uuid and last known device).
    pub other_pvs: Vec<String>,
    pub satellite_id: SatelliteIdReading,
    pub logical_volumes: Vec<LvFacts>,
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
    pub size_bytes: u64,
    /// Active in device-mapper right now.
    pub active: bool,
    /// Who holds it open (DM holders or an open count), when someone does.
    pub open_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum LvKind {
    ThinPool {
        metadata_size_bytes: u64,
        chunk_size_bytes: u64,
        zero_new_blocks: bool,
    },
    Thin {
        pool: String,
    },
    Other {
        segment_type: String,
    },
}
