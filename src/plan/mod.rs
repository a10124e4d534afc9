//! The planner: a pure function from what was observed on the partition and what the
//! operator asked for to an ordered list of actions — or a refusal that says why
//! nothing may be written. Almost all decisions of the tool live here.
mod action;
mod refusal;
#[cfg(test)]
mod tests;

pub use action::Action;
pub use refusal::Refusal;

use crate::config::ProvisionConfig;
use crate::observe::state::{LvFacts, LvKind, ObservedPartition, SatelliteIdReading, VgFacts};
use serde::Serialize;

/// LVM's smallest thin pool metadata size.
const MIN_POOL_METADATA_BYTES: u64 = 2 << 20;
/// Thin pool metadata needs about 64 bytes per data chunk (LVM's own estimate).
const METADATA_BYTES_PER_CHUNK: u64 = 64;

/// A satellite-ID change: the storage on the partition was made for another node
/// identity and will be reset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reset {
    /// The ID recorded on disk; empty when the VG records none.
    pub existing: String,
    pub expected: String,
}

/// What to do, in order. An empty plan means the partition is already as wanted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub reset: Option<Reset>,
    pub actions: Vec<Action>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }
}

/// Decides what to do with the partition.
pub fn plan(observed: &ObservedPartition, config: &ProvisionConfig) -> Result<Plan, Refusal> {
    let Some(pv) = &observed.physical_volume else {
        let overwrite_signature = match &observed.foreign_signature {
            Some(signature) if !config.force => {
                return Err(Refusal::ForeignSignature {
                    device: observed.partition.devnode.clone(),
                    signature: signature.clone(),
                })
            }
            other => other.clone(),
        };
        ensure_vg_name_free(observed, config)?;
        let mut actions = vec![Action::CreatePhysicalVolume {
            device: observed.partition.devnode.clone(),
            overwrite_signature,
        }];
        actions.extend(create_vg_and_pool(observed, config));
        return Ok(Plan {
            reset: None,
            actions,
        });
    };
    if pv.in_vg_without_metadata {
        return Err(Refusal::PvWithoutMetadata {
            device: observed.partition.devnode.clone(),
        });
    }
    let Some(vg) = &pv.volume_group else {
        // An orphan PV: a previous run stopped after pvcreate or after vgremove.
        ensure_vg_name_free(observed, config)?;
        let mut actions = Vec::new();
        if pv.interrupted_vg_creation {
            actions.push(Action::ReinitializePhysicalVolume {
                device: observed.partition.devnode.clone(),
            });
        }
        if observed.partition.size_bytes > pv.recorded_device_size {
            actions.push(Action::ResizePhysicalVolume {
                device: observed.partition.devnode.clone(),
                from_bytes: pv.recorded_device_size,
                to_bytes: observed.partition.size_bytes,
            });
        }
        actions.extend(create_vg_and_pool(observed, config));
        return Ok(Plan {
            reset: None,
            actions,
        });
    };
    if !vg.other_pvs.is_empty() {
        return Err(Refusal::VolumeGroupSpansDevices {
            volume_group: vg.name.clone(),
            device: observed.partition.devnode.clone(),
            other_pvs: vg.other_pvs.clone(),
        });
    }
    let recorded = match &vg.satellite_id {
        SatelliteIdReading::Unreadable(reason) => {
            return Err(Refusal::SatelliteIdUnreadable {
                volume_group: vg.name.clone(),
                reason: reason.clone(),
            })
        }
        SatelliteIdReading::SeedLvInactive => {
            return Ok(Plan {
                reset: None,
                actions: vec![Action::ActivateSeedMetadataLv {
                    volume_group: vg.name.clone(),
                }],
            })
        }
        SatelliteIdReading::Tag(id) | SatelliteIdReading::SeedFile(id) => Some(id.as_str()),
        SatelliteIdReading::Absent => None,
    };
    match recorded {
        Some(id) if id == config.satellite_id => keep_and_grow(observed, vg, config),
        Some(id) => reset(observed, vg, config, id),
        // A VG of the configured name that records no ID is the one this partition
        // was dedicated to (the seed tool left such VGs behind): reset it as the seed
        // would. A VG of another name is someone else's unless --force says otherwise.
        None if vg.name == config.volume_group || config.force => reset(observed, vg, config, ""),
        None => Err(Refusal::ForeignVolumeGroup {
            volume_group: vg.name.clone(),
            device: observed.partition.devnode.clone(),
        }),
    }
}

fn ensure_vg_name_free(
    observed: &ObservedPartition,
    config: &ProvisionConfig,
) -> Result<(), Refusal> {
    if observed.wanted_vg_name_elsewhere.is_empty() {
        return Ok(());
    }
    Err(Refusal::VolumeGroupNameTaken {
        volume_group: config.volume_group.clone(),
        devices: observed.wanted_vg_name_elsewhere.clone(),
    })
}

fn create_vg_and_pool(observed: &ObservedPartition, config: &ProvisionConfig) -> [Action; 2] {
    [
        Action::CreateVolumeGroup {
            volume_group: config.volume_group.clone(),
            device: observed.partition.devnode.clone(),
            satellite_id_tag: config.satellite_id_tag.clone(),
        },
        create_pool(config),
    ]
}

fn create_pool(config: &ProvisionConfig) -> Action {
    Action::CreateThinPool {
        volume_group: config.volume_group.clone(),
        pool: config.pool.clone(),
        chunk_size_bytes: config.chunk_size_bytes,
        zero_new_blocks: config.zero_new_blocks,
    }
}

fn reset(
    observed: &ObservedPartition,
    vg: &VgFacts,
    config: &ProvisionConfig,
    existing: &str,
) -> Result<Plan, Refusal> {
    if let Some(lv) = vg.logical_volumes.iter().find(|lv| lv.open_by.is_some()) {
        return Err(Refusal::LogicalVolumeOpen {
            volume_group: vg.name.clone(),
            logical_volume: lv.name.clone(),
            holder: lv.open_by.clone().unwrap_or_default(),
        });
    }
    if vg.name != config.volume_group {
        ensure_vg_name_free(observed, config)?;
    }
    let device = observed.partition.devnode.clone();
    let mut actions = Vec::new();
    let visible: Vec<String> = vg
        .logical_volumes
        .iter()
        .filter(|lv| lv.visible)
        .map(|lv| lv.name.clone())
        .collect();
    if !vg.logical_volumes.is_empty() {
        actions.push(Action::RemoveLogicalVolumes {
            volume_group: vg.name.clone(),
            names: visible,
        });
    }
    actions.push(Action::RemoveVolumeGroup {
        volume_group: vg.name.clone(),
    });
    actions.push(Action::RemovePhysicalVolume {
        device: device.clone(),
    });
    actions.push(Action::CreatePhysicalVolume {
        device,
        overwrite_signature: None,
    });
    actions.extend(create_vg_and_pool(observed, config));
    Ok(Plan {
        reset: Some(Reset {
            existing: existing.to_owned(),
            expected: config.satellite_id.clone(),
        }),
        actions,
    })
}

fn keep_and_grow(
    observed: &ObservedPartition,
    vg: &VgFacts,
    config: &ProvisionConfig,
) -> Result<Plan, Refusal> {
    if vg.name != config.volume_group {
        return Err(Refusal::VolumeGroupNameMismatch {
            found: vg.name.clone(),
            wanted: config.volume_group.clone(),
            device: observed.partition.devnode.clone(),
        });
    }
    let mut actions = Vec::new();
    if !matches!(vg.satellite_id, SatelliteIdReading::Tag(_)) {
        actions.push(Action::TagVolumeGroup {
            volume_group: vg.name.clone(),
            satellite_id_tag: config.satellite_id_tag.clone(),
        });
    }
    let mut free_extents = vg.free_extents;
    let extent = vg.extent_size_bytes.max(1);
    let possible_extents = observed
        .partition
        .size_bytes
        .saturating_sub(vg.pe_start_bytes)
        / extent;
    if possible_extents > vg.pv_extent_count {
        actions.push(Action::ResizePhysicalVolume {
            device: observed.partition.devnode.clone(),
            from_bytes: vg.pv_extent_count * extent + vg.pe_start_bytes,
            to_bytes: observed.partition.size_bytes,
        });
        free_extents += possible_extents - vg.pv_extent_count;
    }
    match vg.logical_volumes.iter().find(|lv| lv.name == config.pool) {
        None => actions.push(create_pool(config)),
        Some(LvFacts {
            kind:
                LvKind::ThinPool {
                    metadata_size_bytes,
                    chunk_size_bytes,
                    ..
                },
            size_bytes,
            ..
        }) => {
            if free_extents > 0 {
                let data_after = size_bytes + free_extents * extent;
                let needed = required_metadata_bytes(data_after, *chunk_size_bytes);
                if needed > *metadata_size_bytes {
                    let to_bytes = needed.div_ceil(extent) * extent;
                    // The pool's spare metadata LV grows along with the metadata.
                    let grown = (to_bytes - metadata_size_bytes) / extent * 2;
                    free_extents = free_extents.saturating_sub(grown);
                    actions.push(Action::ExtendPoolMetadata {
                        volume_group: vg.name.clone(),
                        pool: config.pool.clone(),
                        to_bytes,
                    });
                }
                if free_extents > 0 {
                    actions.push(Action::ExtendThinPool {
                        volume_group: vg.name.clone(),
                        pool: config.pool.clone(),
                        by_extents: free_extents,
                    });
                }
            }
        }
        Some(other) if is_interrupted_pool_creation(vg, other) => {
            actions.push(Action::RemoveIncompletePool {
                volume_group: vg.name.clone(),
                pool: config.pool.clone(),
            });
            actions.push(create_pool(config));
        }
        Some(other) => {
            return Err(Refusal::PoolNameTaken {
                volume_group: vg.name.clone(),
                name: other.name.clone(),
                kind: match &other.kind {
                    LvKind::Thin { .. } => "thin volume".to_owned(),
                    LvKind::Other { segment_type } => format!("{segment_type} volume"),
                    LvKind::ThinPool { .. } => "thin pool".to_owned(),
                },
            })
        }
    }
    Ok(Plan {
        reset: None,
        actions,
    })
}

/// What a thin-pool `lvcreate` cut off midway leaves in a VG this tool made for this
/// satellite: a plain linear LV under the pool's name (the future data LV, not yet
/// converted), next to LVM's spare metadata LV, and nobody holding it open.
fn is_interrupted_pool_creation(vg: &VgFacts, lv: &LvFacts) -> bool {
    matches!(&lv.kind, LvKind::Other { segment_type } if segment_type == "striped")
        && lv.open_by.is_none()
        && matches!(vg.satellite_id, SatelliteIdReading::Tag(_))
        && vg
            .logical_volumes
            .iter()
            .any(|other| other.name == "lvol0_pmspare")
}

/// Metadata a thin pool of `data_bytes` with `chunk_size_bytes` chunks needs.
pub fn required_metadata_bytes(data_bytes: u64, chunk_size_bytes: u64) -> u64 {
    let chunks = data_bytes / chunk_size_bytes.max(1);
    (chunks * METADATA_BYTES_PER_CHUNK).max(MIN_POOL_METADATA_BYTES)
}
