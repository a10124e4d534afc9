//! Table-driven tests of the planner over every state the partition can be in.
use super::*;
use crate::config::{ProvisionConfig, ProvisionInputs};
use crate::observe::state::{PartitionFacts, PvFacts};
use std::path::PathBuf;

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;
const EXTENT: u64 = 4 * MIB;
const PE_START: u64 = MIB;

fn config() -> ProvisionConfig {
    config_with(false)
}

fn config_with(force: bool) -> ProvisionConfig {
    let inputs = ProvisionInputs {
        force,
        ..ProvisionInputs::example()
    };
    match ProvisionConfig::from_inputs(inputs) {
        Ok(config) => config,
        Err(e) => panic!("test config invalid: {e}"),
    }
}

fn dev() -> PathBuf {
    PathBuf::from("/dev/vda1")
}

fn blank(size: u64) -> ObservedPartition {
    ObservedPartition {
        partition: PartitionFacts {
            devnode: dev(),
            major: 254,
            minor: 1,
            label: "linstor-storage".into(),
            size_bytes: size,
        },
        foreign_signature: None,
        physical_volume: None,
        wanted_vg_name_elsewhere: Vec::new(),
    }
}

fn orphan_pv(size: u64) -> ObservedPartition {
    let mut observed = blank(size);
    observed.physical_volume = Some(PvFacts {
        uuid: "pv-uuid".into(),
        recorded_device_size: size,
        in_vg_without_metadata: false,
        interrupted_vg_creation: false,
        volume_group: None,
    });
    observed
}

fn pool(data: u64, metadata: u64) -> LvFacts {
    LvFacts {
        name: "linstor-pool".into(),
        kind: LvKind::ThinPool {
            metadata_size_bytes: metadata,
            chunk_size_bytes: 512 * 1024,
            zero_new_blocks: false,
        },
        visible: true,
        size_bytes: data,
        active: true,
        open_by: None,
    }
}

fn thin(name: &str) -> LvFacts {
    LvFacts {
        name: name.into(),
        kind: LvKind::Thin {
            pool: "linstor-pool".into(),
        },
        visible: true,
        size_bytes: 10 * GIB,
        active: false,
        open_by: None,
    }
}

fn hidden(name: &str) -> LvFacts {
    LvFacts {
        name: name.into(),
        kind: LvKind::Other {
            segment_type: "striped".into(),
        },
        visible: false,
        size_bytes: EXTENT,
        active: false,
        open_by: None,
    }
}

/// A provisioned 1 GiB partition: the pool fills the VG (no free extents).
fn provisioned(id: SatelliteIdReading) -> ObservedPartition {
    let size = GIB;
    let pe_count = (size - PE_START) / EXTENT;
    let mut observed = orphan_pv(size);
    if let Some(pv) = observed.physical_volume.as_mut() {
        pv.volume_group = Some(VgFacts {
            name: "linstor-vg".into(),
            uuid: "vg-uuid".into(),
            seqno: 7,
            extent_size_bytes: EXTENT,
            pe_start_bytes: PE_START,
            pv_extent_count: pe_count,
            free_extents: 0,
            other_pvs: Vec::new(),
            satellite_id: id,
            logical_volumes: vec![
                pool((pe_count - 2) * EXTENT, EXTENT),
                hidden("linstor-pool_tdata"),
                hidden("linstor-pool_tmeta"),
                hidden("lvol0_pmspare"),
                thin("pvc-1"),
            ],
        });
    }
    observed
}

fn vg_mut(observed: &mut ObservedPartition) -> &mut VgFacts {
    match observed
        .physical_volume
        .as_mut()
        .and_then(|pv| pv.volume_group.as_mut())
    {
        Some(vg) => vg,
        None => panic!("fixture has no VG"),
    }
}

fn tag(id: &str) -> SatelliteIdReading {
    SatelliteIdReading::Tag(id.into())
}

fn kinds(plan: &Plan) -> Vec<&'static str> {
    plan.actions
        .iter()
        .map(|action| match action {
            Action::ActivateSeedMetadataLv { .. } => "activate-seed-lv",
            Action::RemoveLogicalVolumes { .. } => "lvremove",
            Action::RemoveVolumeGroup { .. } => "vgremove",
            Action::RemovePhysicalVolume { .. } => "pvremove",
            Action::CreatePhysicalVolume { .. } => "pvcreate",
            Action::ResizePhysicalVolume { .. } => "pvresize",
            Action::ReinitializePhysicalVolume { .. } => "pvcreate-ff",
            Action::RemoveIncompletePool { .. } => "lvremove-one",
            Action::CreateVolumeGroup { .. } => "vgcreate",
            Action::TagVolumeGroup { .. } => "vgtag",
            Action::CreateThinPool { .. } => "pool-create",
            Action::ExtendPoolMetadata { .. } => "pool-metadata-extend",
            Action::ExtendThinPool { .. } => "pool-extend",
        })
        .collect()
}

fn planned(observed: &ObservedPartition, config: &ProvisionConfig) -> Plan {
    match plan(observed, config) {
        Ok(plan) => plan,
        Err(refusal) => panic!("unexpected refusal: {refusal}"),
    }
}

#[test]
fn every_partition_state_gets_the_right_plan() {
    const FRESH: &[&str] = &["pvcreate", "vgcreate", "pool-create"];
    const RESET: &[&str] = &[
        "lvremove",
        "vgremove",
        "pvremove",
        "pvcreate",
        "vgcreate",
        "pool-create",
    ];
    let mut grown = provisioned(tag("node-01"));
    grown.partition.size_bytes = 4 * GIB;
    let mut pool_missing = provisioned(tag("node-01"));
    vg_mut(&mut pool_missing).logical_volumes.clear();
    vg_mut(&mut pool_missing).free_extents = 255;
    let mut free_space = provisioned(tag("node-01"));
    vg_mut(&mut free_space).free_extents = 3;
    let mut empty_vg_other_id = provisioned(tag("old"));
    vg_mut(&mut empty_vg_other_id).logical_volumes.clear();
    let mut tagless_same_name = provisioned(SatelliteIdReading::Absent);
    vg_mut(&mut tagless_same_name).logical_volumes.clear();

    let mut interrupted_vgcreate = orphan_pv(GIB);
    if let Some(pv) = interrupted_vgcreate.physical_volume.as_mut() {
        pv.interrupted_vg_creation = true;
    }
    let mut interrupted_pool = provisioned(tag("node-01"));
    vg_mut(&mut interrupted_pool).logical_volumes[0].kind = LvKind::Other {
        segment_type: "striped".into(),
    };
    vg_mut(&mut interrupted_pool).logical_volumes.truncate(1);
    vg_mut(&mut interrupted_pool)
        .logical_volumes
        .push(hidden("lvol0_pmspare"));

    let table: Vec<(&str, ObservedPartition, Vec<&str>)> = vec![
        (
            "vgcreate cut off (PV marked used, no VG)",
            interrupted_vgcreate,
            vec!["pvcreate-ff", "vgcreate", "pool-create"],
        ),
        (
            "thin-pool lvcreate cut off",
            interrupted_pool,
            vec!["lvremove-one", "pool-create"],
        ),
        ("blank partition", blank(GIB), FRESH.to_vec()),
        (
            "orphan PV (killed after pvcreate/vgremove)",
            orphan_pv(GIB),
            vec!["vgcreate", "pool-create"],
        ),
        (
            "steady state: same ID, full pool",
            provisioned(tag("node-01")),
            vec![],
        ),
        ("partition grew", grown, vec!["pvresize", "pool-extend"]),
        (
            "pool missing (killed after vgcreate)",
            pool_missing,
            vec!["pool-create"],
        ),
        ("free extents left", free_space, vec!["pool-extend"]),
        ("different ID", provisioned(tag("node-02")), RESET.to_vec()),
        (
            "different ID, no LVs (killed after lvremove)",
            empty_vg_other_id,
            RESET[1..].to_vec(),
        ),
        (
            "seed layout, same ID",
            provisioned(SatelliteIdReading::SeedFile("node-01".into())),
            vec!["vgtag"],
        ),
        (
            "seed layout, other ID",
            provisioned(SatelliteIdReading::SeedFile("x".into())),
            RESET.to_vec(),
        ),
        (
            "seed LV inactive",
            provisioned(SatelliteIdReading::SeedLvInactive),
            vec!["activate-seed-lv"],
        ),
        (
            "our VG name, no ID recorded",
            tagless_same_name,
            RESET[1..].to_vec(),
        ),
    ];
    for (name, observed, expected) in table {
        let plan = planned(&observed, &config());
        assert_eq!(kinds(&plan), expected, "{name}");
    }
}

#[test]
fn reset_reports_both_ids_and_removes_only_this_vg() {
    let plan = planned(&provisioned(tag("node-02")), &config());
    assert_eq!(
        plan.reset,
        Some(Reset {
            existing: "node-02".into(),
            expected: "node-01".into()
        })
    );
    assert_eq!(
        plan.actions[0],
        Action::RemoveLogicalVolumes {
            volume_group: "linstor-vg".into(),
            names: vec!["linstor-pool".into(), "pvc-1".into()],
        }
    );
    assert!(plan.actions.iter().all(|action| match action {
        Action::RemovePhysicalVolume { device } | Action::CreatePhysicalVolume { device, .. } =>
            device == &dev(),
        _ => true,
    }));
}

#[test]
fn growth_plans_exactly_the_new_extents() {
    let mut grown = provisioned(tag("node-01"));
    grown.partition.size_bytes = 4 * GIB;
    let old_count = (GIB - PE_START) / EXTENT;
    let new_count = (4 * GIB - PE_START) / EXTENT;
    let plan = planned(&grown, &config());
    assert_eq!(
        plan.actions.last(),
        Some(&Action::ExtendThinPool {
            volume_group: "linstor-vg".into(),
            pool: "linstor-pool".into(),
            by_extents: new_count - old_count,
        })
    );
}

#[test]
fn a_partition_a_little_larger_than_the_pv_is_steady() {
    let mut observed = provisioned(tag("node-01"));
    let pe_count = vg_mut(&mut observed).pv_extent_count;
    observed.partition.size_bytes = PE_START + (pe_count + 1) * EXTENT - 1;
    assert!(planned(&observed, &config()).is_empty());
}

#[test]
fn huge_growth_grows_pool_metadata_first() {
    let mut grown = provisioned(tag("node-01"));
    grown.partition.size_bytes = 4096 * GIB;
    let plan = planned(&grown, &config());
    assert_eq!(
        kinds(&plan),
        vec!["pvresize", "pool-metadata-extend", "pool-extend"]
    );
    let needed = required_metadata_bytes(4096 * GIB, 512 * 1024);
    assert!(plan.actions.iter().any(|a| matches!(a,
        Action::ExtendPoolMetadata { to_bytes, .. } if *to_bytes >= needed && to_bytes % EXTENT == 0)));
}

#[test]
fn refusals_write_nothing_and_say_why() {
    let mut foreign = blank(GIB);
    foreign.foreign_signature = Some("ext4".into());
    let mut spans = provisioned(tag("node-01"));
    vg_mut(&mut spans).other_pvs = vec!["/dev/vdb1".into()];
    let mut open = provisioned(tag("node-02"));
    vg_mut(&mut open).logical_volumes[4].open_by = Some("drbd1000".into());
    let mut taken = blank(GIB);
    taken.wanted_vg_name_elsewhere = vec!["/dev/vdb1".into()];
    let mut foreign_vg = provisioned(SatelliteIdReading::Absent);
    vg_mut(&mut foreign_vg).name = "data".into();
    let mut renamed = provisioned(tag("node-01"));
    vg_mut(&mut renamed).name = "old-vg".into();
    let mut pool_is_thin = provisioned(tag("node-01"));
    vg_mut(&mut pool_is_thin).logical_volumes[0] = LvFacts {
        name: "linstor-pool".into(),
        ..thin("x")
    };

    let mut no_metadata_copy = orphan_pv(GIB);
    if let Some(pv) = no_metadata_copy.physical_volume.as_mut() {
        pv.in_vg_without_metadata = true;
    }
    // A plain LV under the pool's name without LVM's spare LV is someone's data.
    let mut plain_lv_named_like_pool = provisioned(tag("node-01"));
    vg_mut(&mut plain_lv_named_like_pool).logical_volumes = vec![LvFacts {
        kind: LvKind::Other {
            segment_type: "striped".into(),
        },
        ..pool(GIB, 0)
    }];
    let table: Vec<(&str, ObservedPartition, &str)> = vec![
        (
            "plain LV named like the pool",
            plain_lv_named_like_pool,
            "striped volume, not a thin pool",
        ),
        ("foreign signature", foreign, "foreign signature (ext4)"),
        (
            "PV of a VG kept elsewhere",
            no_metadata_copy,
            "no copy of its volume group's metadata",
        ),
        ("VG spans devices", spans, "/dev/vdb1"),
        ("open LV on reset", open, "drbd1000"),
        (
            "VG name taken elsewhere",
            taken,
            "already exists on /dev/vdb1",
        ),
        (
            "ID unreadable",
            provisioned(SatelliteIdReading::Unreadable("I/O error".into())),
            "I/O error",
        ),
        ("foreign VG", foreign_vg, "someone else's"),
        ("VG name mismatch", renamed, "VOLUME_GROUP=old-vg"),
        ("pool name is a thin LV", pool_is_thin, "not a thin pool"),
    ];
    for (name, observed, message) in table {
        match plan(&observed, &config()) {
            Ok(plan) => panic!("{name}: expected a refusal, got {plan:?}"),
            Err(refusal) => {
                let text = refusal.to_string();
                assert!(text.contains(message), "{name}: {text}");
            }
        }
    }
}

#[test]
fn force_overrides_foreign_signature_and_foreign_vg_only() {
    let mut foreign = blank(GIB);
    foreign.foreign_signature = Some("ext4".into());
    let plan = planned(&foreign, &config_with(true));
    assert_eq!(
        plan.actions[0],
        Action::CreatePhysicalVolume {
            device: dev(),
            overwrite_signature: Some("ext4".into())
        }
    );
    let mut foreign_vg = provisioned(SatelliteIdReading::Absent);
    vg_mut(&mut foreign_vg).name = "data".into();
    assert!(planned(&foreign_vg, &config_with(true)).reset.is_some());
    // --force never overrides an unreadable ID or an open LV.
    assert!(plan_refuses(
        &provisioned(SatelliteIdReading::Unreadable("x".into())),
        true
    ));
    let mut open = provisioned(tag("node-02"));
    vg_mut(&mut open).logical_volumes[4].open_by = Some("mount".into());
    assert!(plan_refuses(&open, true));
}

fn plan_refuses(observed: &ObservedPartition, force: bool) -> bool {
    plan(observed, &config_with(force)).is_err()
}

#[test]
fn plans_print_readably() {
    let plan = planned(&blank(GIB), &config());
    let lines: Vec<String> = plan.actions.iter().map(ToString::to_string).collect();
    assert_eq!(lines[0], "create physical volume on /dev/vda1");
    assert!(
        lines[1].contains("tagged linstor-satellite-id=node-01"),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].contains("chunk size 512 KiB, zeroing off"),
        "{}",
        lines[2]
    );
}
