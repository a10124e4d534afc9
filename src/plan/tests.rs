//! Table-driven tests of the planner over every state the partition can be in.
use super::*;
use crate::config::names::test_names::{lv, vg};
use crate::config::{ProvisionConfig, ProvisionInputs};
use crate::observe::lvm::LvmUuid;
use crate::observe::state::{
    InUseWithoutMetadata, OwnMetadataAreas, PartitionFacts, PoolMetadataUsage, PvFacts,
    StaleDevice, ThinPoolMode, VgListingPv,
};
use crate::units::{ExtentSize, Sectors};
use std::path::PathBuf;

const GIB: Bytes = Bytes(1 << 30);
const MIB: Bytes = Bytes(1 << 20);
const EXTENT: Bytes = Bytes(4 << 20);
const PE_START: Bytes = MIB;

fn gib(n: u64) -> Bytes {
    Bytes(u128::from(n) << 30)
}

/// The fixtures' 4 MiB extents.
fn extent_size() -> ExtentSize {
    match ExtentSize::from_sectors(Sectors(8192)) {
        Some(size) => size,
        None => panic!("8192 sectors is an extent size"),
    }
}

/// Whole extents in `bytes` of a fixture.
fn whole_extents(bytes: Bytes) -> Extents {
    match extent_size().extents_in(bytes) {
        Some(extents) => extents,
        None => panic!("{bytes} is too large for a fixture"),
    }
}

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

/// An LVM id for tests (`text` must be one).
fn uuid(text: &str) -> LvmUuid {
    match LvmUuid::parse(text) {
        Ok(id) => id,
        Err(e) => panic!("{e}"),
    }
}

fn dev() -> PathBuf {
    PathBuf::from("/dev/vda1")
}

fn blank(size: Bytes) -> ObservedPartition {
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
        leftovers: Default::default(),
        host_lvm: Default::default(),
        preflight: Default::default(),
        pool_metadata_usage: None,
    }
}

fn orphan_pv(size: Bytes) -> ObservedPartition {
    let mut observed = blank(size);
    observed.physical_volume = Some(PvFacts {
        uuid: uuid("pvuuid-pvuu-idpv-uuid-pvuu-idpv-uuidpv"),
        recorded_device_size: size,
        metadata_bytes_at_end: Bytes(0),
        pe_start_bytes: PE_START,
        in_use_without_metadata: None,
        volume_group: None,
        torn_metadata: None,
        unwritten_metadata_header: None,
    });
    observed
}

fn pool(data: Bytes, metadata: Bytes) -> LvFacts {
    LvFacts {
        name: "linstor-pool".into(),
        kind: LvKind::ThinPool {
            metadata_size_bytes: metadata,
            chunk_size_bytes: Bytes(512 << 10),
            zero_new_blocks: false,
            serving: true,
            pool_device_present: true,
            unloaded_pool_device: None,
            unheld_pool_device: None,
            tpool_without_own_device: None,
            transaction_mismatch: None,
        },
        visible: true,
        size_bytes: data,
        active: true,
        open_by: None,
        dm_name: None,
        plain_linear_at: None,
    }
}

fn thin(name: &str) -> LvFacts {
    LvFacts {
        name: name.into(),
        kind: LvKind::Thin {
            pool: "linstor-pool".into(),
        },
        visible: true,
        size_bytes: gib(10),
        active: false,
        open_by: None,
        dm_name: None,
        plain_linear_at: None,
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
        dm_name: None,
        plain_linear_at: None,
    }
}

/// A provisioned 1 GiB partition: the pool fills the VG (no free extents).
fn provisioned(id: SatelliteIdReading) -> ObservedPartition {
    let size = GIB;
    let pe_count = whole_extents(size - PE_START);
    let mut observed = orphan_pv(size);
    if let Some(pv) = observed.physical_volume.as_mut() {
        pv.volume_group = Some(VgFacts {
            name: "linstor-vg".into(),
            uuid: uuid("vguuid-vguu-idvg-uuid-vguu-idvg-uuidvg"),
            seqno: 7,
            extent_size: extent_size(),
            pe_start_bytes: PE_START,
            pv_extent_count: pe_count,
            free_extents: Extents::ZERO,
            other_pvs: Vec::new(),
            satellite_id: id,
            satellite_id_tag: None,
            free_areas: Vec::new(),
            access_restrictions: Vec::new(),
            logical_volumes: vec![
                pool(EXTENT * (pe_count.count() - 2), EXTENT),
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
            Action::ActivateSeedIdLv { .. } => "activate-seed-lv",
            Action::RemoveThinVolumeDevices { .. } => "dm-remove-thin",
            Action::RemoveLogicalVolumes { .. } => "lvremove",
            Action::RemoveVolumeGroup { .. } => "vgremove",
            Action::RemovePhysicalVolume { .. } => "pvremove",
            Action::CreatePhysicalVolume { .. } => "pvcreate",
            Action::GrowFullPoolMetadata { .. } => "lvextend-full-metadata",
            Action::ResizePhysicalVolume { .. } => "pvresize",
            Action::ReinitializePhysicalVolume { .. } => "pvcreate-ff",
            Action::RemoveIncompletePool { .. } => "lvremove-one",
            Action::RemoveStalePool { .. } => "lvremove-stale-pool",
            Action::RemoveIncompleteSpare { .. } => "lvremove-spare",
            Action::CreateVolumeGroup { .. } => "vgcreate",
            Action::TagVolumeGroup { .. } => "vgtag",
            Action::RetagVolumeGroup { .. } => "vgretag",
            Action::CreateThinPool { .. } => "pool-create",
            Action::ExtendPoolMetadata { .. } => "pool-metadata-extend",
            Action::ExtendThinPool { .. } => "pool-extend",
            Action::ActivateThinPool { .. } => "pool-activate",
            Action::RefreshThinPool { .. } => "pool-refresh",
            Action::DeactivatePoolComponents { .. } => "components-deactivate",
            Action::RemoveStaleDevices { .. } => "dm-remove-stale",
            Action::RemoveStaleVolumeGroupPath { .. } => "rm-stale-vg-dir",
            Action::AddToDevicesFile { .. } => "devices-add",
            Action::RemoveFromDevicesFile { .. } => "devices-del",
            Action::RestoreTornMetadata { .. } => "restore-torn",
            Action::EraseTornPhysicalVolume { .. } => "erase-torn-pv",
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
    grown.partition.size_bytes = gib(4);
    let mut pool_missing = provisioned(tag("node-01"));
    vg_mut(&mut pool_missing).logical_volumes.clear();
    vg_mut(&mut pool_missing).free_extents = Extents::new(255);
    let mut free_space = provisioned(tag("node-01"));
    vg_mut(&mut free_space).free_extents = Extents::new(3);
    let mut empty_vg_other_id = provisioned(tag("old"));
    vg_mut(&mut empty_vg_other_id).logical_volumes.clear();
    let mut tagless_same_name = provisioned(SatelliteIdReading::Absent);
    vg_mut(&mut tagless_same_name).logical_volumes.clear();

    let interrupted_vgcreate = in_use_without_metadata(OwnMetadataAreas::EmptyInUse, &[]);
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

/// A VG that records no ID resets with `existing: None`, which plans' JSON and
/// the dry-run line have always shown as an empty string.
#[test]
fn reset_without_a_recorded_id_shows_it_empty() {
    let reset = Reset {
        existing: None,
        expected: "node-01".into(),
    };
    assert_eq!(reset.existing_shown(), "");
    assert_eq!(
        serde_json::to_string(&reset).ok().as_deref(),
        Some(r#"{"existing":"","expected":"node-01"}"#)
    );
}

#[test]
fn reset_reports_both_ids_and_removes_only_this_vg() {
    let plan = planned(&provisioned(tag("node-02")), &config());
    assert_eq!(
        plan.reset,
        Some(Reset {
            existing: Some("node-02".into()),
            expected: "node-01".into()
        })
    );
    assert_eq!(
        plan.actions[0],
        Action::RemoveLogicalVolumes {
            volume_group: vg("linstor-vg"),
            names: vec![lv("linstor-pool"), lv("pvc-1")],
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
    grown.partition.size_bytes = gib(4);
    let old_count = whole_extents(GIB - PE_START);
    let new_count = whole_extents(gib(4) - PE_START);
    let plan = planned(&grown, &config());
    assert_eq!(
        plan.actions.last(),
        Some(&Action::ExtendThinPool {
            volume_group: vg("linstor-vg"),
            pool: lv("linstor-pool"),
            // Two stay free: the room to double the metadata (one extent) and
            // its spare once, which the fixture's pool (made with none) lacked.
            by_extents: Extents::new(new_count.count() - old_count.count() - 2),
        })
    );
}

#[test]
fn a_partition_a_little_larger_than_the_pv_is_steady() {
    let mut observed = provisioned(tag("node-01"));
    let pe_count = vg_mut(&mut observed).pv_extent_count;
    observed.partition.size_bytes = PE_START + EXTENT * (pe_count.count() + 1) - Bytes(1);
    assert!(planned(&observed, &config()).is_empty());
}

#[test]
fn huge_growth_grows_pool_metadata_first() {
    let mut grown = provisioned(tag("node-01"));
    grown.partition.size_bytes = gib(4096);
    let plan = planned(&grown, &config());
    assert_eq!(
        kinds(&plan),
        vec!["pvresize", "pool-metadata-extend", "pool-extend"]
    );
    let needed =
        required_pool_metadata_bytes(gib(4096), Bytes(512 << 10)).unwrap_or(Bytes(u128::MAX));
    assert!(plan.actions.iter().any(|a| matches!(a,
        Action::ExtendPoolMetadata { to_bytes, .. } if *to_bytes >= needed && *to_bytes % EXTENT == Bytes(0))));
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

    let no_metadata_copy = in_use_without_metadata(OwnMetadataAreas::None, &[]);
    // A plain LV under the pool's name without LVM's spare LV is someone's data.
    let mut plain_lv_named_like_pool = provisioned(tag("node-01"));
    vg_mut(&mut plain_lv_named_like_pool).logical_volumes = vec![LvFacts {
        kind: LvKind::Other {
            segment_type: "striped".into(),
        },
        ..pool(GIB, Bytes(0))
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
            "no copy of the VG's metadata is readable on this machine",
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
            overwrite_signature: Some("ext4".into()),
            metadata_area_bytes: sizing::metadata_area_request(foreign.partition.size_bytes),
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

fn set_pool_serving(observed: &mut ObservedPartition, now: bool) {
    for lv in &mut vg_mut(observed).logical_volumes {
        if let LvKind::ThinPool {
            serving,
            pool_device_present,
            ..
        } = &mut lv.kind
        {
            *serving = now;
            *pool_device_present = now;
        }
    }
}

#[test]
fn an_idle_pool_is_activated_and_an_active_one_left_alone() {
    let mut idle = provisioned(tag("node-01"));
    set_pool_serving(&mut idle, false);
    assert_eq!(kinds(&planned(&idle, &config())), ["pool-activate"]);
    // Growth first, activation last: lvextend does not activate an idle pool.
    let mut grown = idle.clone();
    grown.partition.size_bytes = gib(2);
    let steps = kinds(&planned(&grown, &config()));
    assert_eq!(steps.first(), Some(&"pvresize"), "{steps:?}");
    assert_eq!(steps.last(), Some(&"pool-activate"), "{steps:?}");
    assert!(planned(&provisioned(tag("node-01")), &config()).is_empty());
    // Killed inside the activation: the metadata LV alone is active.
    let mut half = idle.clone();
    for lv in &mut vg_mut(&mut half).logical_volumes {
        lv.active = lv.name == "linstor-pool_tmeta";
    }
    let plan = planned(&half, &config());
    assert_eq!(kinds(&plan), ["components-deactivate", "pool-activate"]);
    assert_eq!(
        plan.actions.first(),
        Some(&Action::DeactivatePoolComponents {
            volume_group: vg("linstor-vg"),
            names: vec![lv("linstor-pool_tmeta")],
        })
    );
    // Killed inside a grow of an idle pool: unblock first, grow, then activate.
    let mut half_grown = half.clone();
    half_grown.partition.size_bytes = gib(2);
    let steps = kinds(&planned(&half_grown, &config()));
    assert_eq!(steps.first(), Some(&"components-deactivate"), "{steps:?}");
    assert_eq!(steps.last(), Some(&"pool-activate"), "{steps:?}");
    // A reset creates the pool active; nothing extra to activate.
    let steps = kinds(&planned(
        &idle,
        &ProvisionConfig {
            satellite_id: "node-02".into(),
            ..config()
        },
    ));
    assert!(!steps.contains(&"pool-activate"), "{steps:?}");
}

#[test]
fn devices_left_by_an_interrupted_command_are_removed_first_unless_held() {
    use crate::observe::state::StaleDevice;
    let mut observed = blank(GIB);
    observed.leftovers.stale_devices = vec![
        StaleDevice {
            dm_name: "linstor--vg-linstor--pool".into(),
            held_by: None,
        },
        StaleDevice {
            dm_name: "linstor--vg-lvol0".into(),
            held_by: None,
        },
    ];
    let plan = planned(&observed, &config());
    assert_eq!(
        kinds(&plan),
        ["dm-remove-stale", "pvcreate", "vgcreate", "pool-create"]
    );
    assert_eq!(
        plan.actions.first(),
        Some(&Action::RemoveStaleDevices {
            dm_names: vec![
                "linstor--vg-linstor--pool".into(),
                "linstor--vg-lvol0".into()
            ]
        })
    );
    observed.leftovers.stale_devices[1].held_by = Some("held by drbd1000".into());
    assert!(matches!(
        plan_result(&observed),
        Err(Refusal::StaleDeviceInUse { dm_name, .. }) if dm_name == "linstor--vg-lvol0"
    ));
}

#[test]
fn native_removals_are_refused_when_the_host_locks_with_lvmlockd() {
    use crate::observe::state::{StaleDevice, VgLocking};
    let mut observed = provisioned(tag("node-01"));
    observed.host_lvm.vg_locking = VgLocking::Lvmlockd;
    // Nothing to remove natively: lvmlockd changes nothing.
    assert!(planned(&observed, &config()).is_empty());
    observed.leftovers.stale_devices = vec![StaleDevice {
        dm_name: "linstor--vg-ghost".into(),
        held_by: None,
    }];
    let why = refusal(&observed, &config());
    assert!(
        why.contains("linstor--vg-ghost") && why.contains("use_lvmlockd = 1"),
        "{why}"
    );
    // A locking folder of the host's own is no reason to refuse.
    observed.host_lvm.vg_locking = VgLocking::Files {
        dir: PathBuf::from("/run/lvm-locks-test"),
    };
    assert_eq!(kinds(&planned(&observed, &config())), ["dm-remove-stale"]);
}

/// A reset first removes the active thin volumes' devices natively (not the
/// inactive ones'), then a `-tpool` only they held; never for a VG with a system ID,
/// lock type or status LVM checks first, nor under lvmlockd (whose VG lock is no
/// file this tool can take): `lvremove` then deactivates them after its checks.
#[test]
fn a_reset_removes_only_active_thin_volumes_devices_natively() {
    use crate::observe::state::VgLocking;
    let mut observed = provisioned(tag("node-02"));
    let facts = vg_mut(&mut observed);
    facts.logical_volumes.push(thin("pvc-2"));
    for lv in &mut facts.logical_volumes {
        if lv.name == "pvc-1" {
            lv.dm_name = Some("linstor--vg-pvc--1".into());
            lv.active = true;
        }
    }
    let first = |observed: &ObservedPartition| planned(observed, &config()).actions[0].clone();
    let native = |dm_names: &[&str]| Action::RemoveThinVolumeDevices {
        volume_group: vg("linstor-vg"),
        dm_names: dm_names.iter().map(|n| (*n).to_owned()).collect(),
    };
    assert_eq!(first(&observed), native(&["linstor--vg-pvc--1"]));
    assert_eq!(
        kinds(&planned(&observed, &config()))[..4],
        ["dm-remove-thin", "lvremove", "vgremove", "pvremove"]
    );
    // A pool active through its thin volumes only: its `-tpool` goes after them.
    let tpool = "linstor--vg-linstor--pool-tpool";
    let mut implicit = observed.clone();
    for lv in &mut vg_mut(&mut implicit).logical_volumes {
        if let LvKind::ThinPool {
            tpool_without_own_device,
            ..
        } = &mut lv.kind
        {
            *tpool_without_own_device = Some(tpool.into());
        }
    }
    assert_eq!(first(&implicit), native(&["linstor--vg-pvc--1", tpool]));
    // Another active volume of that pool is LVM's (an origin with a `-real` layer
    // below its device: no `dm_name`): the `-tpool` stays for LVM too.
    let mut origin = implicit.clone();
    if let Some(lv) = vg_mut(&mut origin)
        .logical_volumes
        .iter_mut()
        .find(|lv| lv.name == "pvc-2")
    {
        lv.active = true;
    }
    assert_eq!(first(&origin), native(&["linstor--vg-pvc--1"]));
    // A pool none of the listed volumes uses keeps its device (a new pool's only
    // device carries the `-tpool` uuid).
    let mut other_pool = implicit.clone();
    for lv in &mut vg_mut(&mut other_pool).logical_volumes {
        if let LvKind::Thin { pool } = &mut lv.kind {
            *pool = "pool2".into();
        }
    }
    assert_eq!(first(&other_pool), native(&["linstor--vg-pvc--1"]));
    // No thin volume active: nothing native, not even that `-tpool`.
    for lv in &mut vg_mut(&mut implicit).logical_volumes {
        if lv.name == "pvc-1" {
            lv.dm_name = None;
            lv.active = false;
        }
    }
    assert_eq!(kinds(&planned(&implicit, &config()))[0], "lvremove");
    // LVM's checks first where it has any.
    let mut restricted = observed.clone();
    vg_mut(&mut restricted).access_restrictions = vec!["system ID host-b".into()];
    assert_eq!(kinds(&planned(&restricted, &config()))[0], "lvremove");
    let mut shared = observed.clone();
    shared.host_lvm.vg_locking = VgLocking::Lvmlockd;
    assert_eq!(kinds(&planned(&shared, &config()))[0], "lvremove");
    // A VG of ours under another name: LVM removes its `/dev/<vg>` links itself.
    let mut renamed = observed.clone();
    vg_mut(&mut renamed).name = "old-vg".into();
    assert_eq!(kinds(&planned(&renamed, &config()))[0], "lvremove");
    // An open volume refuses the whole reset before anything is removed.
    if let Some(lv) = vg_mut(&mut observed)
        .logical_volumes
        .iter_mut()
        .find(|lv| lv.name == "pvc-1")
    {
        lv.open_by = Some("drbd1000".into());
    }
    assert!(refusal(&observed, &config()).contains("drbd1000"));
}

fn plan_result(observed: &ObservedPartition) -> Result<Plan, Refusal> {
    plan(observed, &config())
}

#[test]
fn a_volume_group_folder_left_behind_is_cleared_before_vgcreate_only() {
    use crate::observe::vg_dev_dir::{LinkReach, VgDevDir, VgDevEntry};
    let folder = |entries: Vec<VgDevEntry>| VgDevDir::Folder {
        path: PathBuf::from("/dev/linstor-vg"),
        entries,
    };
    let link = VgDevEntry::Symlink {
        name: "linstor-pool".into(),
        target: PathBuf::from("../dm-4"),
        reaches: LinkReach::Nothing,
    };
    let mut observed = orphan_pv(GIB);
    observed.leftovers.vg_dev_dir = folder(vec![link.clone()]);
    assert_eq!(
        kinds(&planned(&observed, &config())),
        ["rm-stale-vg-dir", "vgcreate", "pool-create"]
    );
    // In a reset the folder is still LVM's own at planning time; it is cleared (if
    // LVM left it) right before vgcreate.
    let mut reset = provisioned(tag("node-02"));
    reset.leftovers.vg_dev_dir = folder(vec![link.clone()]);
    let steps = kinds(&planned(&reset, &config()));
    let at = steps.iter().position(|s| *s == "vgcreate");
    assert!(
        at.is_some_and(|i| i > 0 && steps[i - 1] == "rm-stale-vg-dir"),
        "{steps:?}"
    );
    // With the VG there and kept, the folder is LVM's business.
    let mut steady = provisioned(tag("node-01"));
    steady.leftovers.vg_dev_dir = folder(vec![link.clone()]);
    assert!(planned(&steady, &config()).is_empty());
    // Anything but symlinks, or not a folder at all: never ours.
    observed.leftovers.vg_dev_dir = folder(vec![
        link,
        VgDevEntry::Other {
            name: "notes".into(),
        },
    ]);
    assert!(matches!(
        plan_result(&observed),
        Err(Refusal::VolumeGroupPathTaken { found, .. }) if found.contains("notes")
    ));
    // A link that still reaches a device belongs to a live VG of that name that we
    // could not see (e.g. on an unreadable disk): never ours.
    let mut live = orphan_pv(GIB);
    live.leftovers.vg_dev_dir = folder(vec![VgDevEntry::Symlink {
        name: "data".into(),
        target: PathBuf::from("../dm-7"),
        reaches: LinkReach::OtherDevice { dm_name: None },
    }]);
    assert!(matches!(
        plan_result(&live),
        Err(Refusal::VolumeGroupPathTaken { found, .. }) if found.contains("data")
    ));
    // Links LVM did not make (into another VG's names, to a disk), or links whose
    // target was not read: refused before vgcreate, in a reset as on a blank PV.
    for foreign in [
        VgDevEntry::Symlink {
            name: "pool".into(),
            target: PathBuf::from("/dev/mapper/linstor--vg2-pool"),
            reaches: LinkReach::Nothing,
        },
        VgDevEntry::Symlink {
            name: "254:0".into(),
            target: PathBuf::from("../vda"),
            reaches: LinkReach::Nothing,
        },
        VgDevEntry::LinkNotFollowed {
            name: "pvc-1_00000".into(),
        },
    ] {
        for mut start in [orphan_pv(GIB), provisioned(tag("node-02"))] {
            start.leftovers.vg_dev_dir = folder(vec![foreign.clone()]);
            let refused = plan_result(&start);
            assert!(
                matches!(&refused, Err(Refusal::VolumeGroupPathTaken { found, .. })
                    if found.contains("not links to device-mapper devices")),
                "{foreign:?}: {refused:?}"
            );
        }
        // Kept, the VG's folder is LVM's business, whatever it holds.
        let mut steady = provisioned(tag("node-01"));
        steady.leftovers.vg_dev_dir = folder(vec![foreign]);
        assert!(planned(&steady, &config()).is_empty());
    }
    // In a reset, a live link that would still be live once the reset has removed
    // the VG is refused before anything is removed: one to a device no volume of
    // the VG is (`x -> ../dm-9`, another VG's; `pvc-1`, named after our volume but
    // reaching a disk), or a `../dm-N` link to our hidden `_tmeta` under a name LVM
    // does not remove.
    let listed = |dm_name: &str| LinkReach::ListedVolume {
        dm_name: dm_name.into(),
    };
    let other = |dm_name: &str| LinkReach::OtherDevice {
        dm_name: Some(dm_name.into()),
    };
    let mut reset = provisioned(tag("node-02"));
    for (name, target, reaches) in [
        ("x", "../dm-9", other("other--vg-data")),
        ("pvc-1", "../dm-9", other("other--vg-data")),
        ("pvc-1", "../dm-9", LinkReach::OtherDevice { dm_name: None }),
        (
            "lvol0",
            "../dm-3",
            listed("linstor--vg-linstor--pool_tmeta"),
        ),
        (
            "pvc-1",
            "/dev/mapper/linstor--vg-ghost",
            other("linstor--vg-ghost"),
        ),
    ] {
        reset.leftovers.vg_dev_dir = folder(vec![VgDevEntry::Symlink {
            name: name.into(),
            target: PathBuf::from(target),
            reaches: reaches.clone(),
        }]);
        let refused = plan_result(&reset);
        assert!(
            matches!(&refused, Err(Refusal::VolumeGroupPathTaken { found, .. })
                if found.contains("does not remove") && found.contains(name)),
            "{name} {reaches:?}: {refused:?}"
        );
    }
    // Links that dangle once the reset has removed the VG: a `../dm-N` link named
    // after a visible volume (LVM removes it by name), a link through a
    // `/dev/mapper` node to any device the VG lists, a link the observation found
    // stale (`lvol0` through a node whose minor the pool's `_tmeta` took), and a
    // link to a stale device the plan removes first.
    for (name, target, reaches) in [
        ("pvc-1", "../dm-3", listed("linstor--vg-pvc--1")),
        (
            "lvol0",
            "/dev/mapper/linstor--vg-linstor--pool_tmeta",
            listed("linstor--vg-linstor--pool_tmeta"),
        ),
        ("lvol0", "/dev/mapper/linstor--vg-lvol0", LinkReach::Nothing),
    ] {
        reset.leftovers.vg_dev_dir = folder(vec![VgDevEntry::Symlink {
            name: name.into(),
            target: PathBuf::from(target),
            reaches,
        }]);
        let steps = kinds(&planned(&reset, &config()));
        assert!(steps.contains(&"rm-stale-vg-dir"), "{name}: {steps:?}");
    }
    // `linstor-vg` is not a prefix of `linstor--vg2-…` once hyphens are doubled, and
    // VG `a`'s prefix `a-` also starts VG `a-b`'s `a--b-lv`.
    use crate::observe::vg_dev_dir::is_lv_link;
    use std::path::Path;
    assert!(is_lv_link(
        "linstor-vg",
        Path::new("/dev/mapper/linstor--vg-linstor--pool")
    ));
    assert!(is_lv_link("linstor-vg", Path::new("../dm-12")));
    assert!(!is_lv_link(
        "linstor-vg",
        Path::new("/dev/mapper/linstor--vg2-pool")
    ));
    assert!(!is_lv_link("a", Path::new("/dev/mapper/a--b-lv")));
    assert!(is_lv_link("a", Path::new("/dev/mapper/a-lv")));
    observed.leftovers.vg_dev_dir = VgDevDir::NotAFolder {
        path: PathBuf::from("/dev/linstor-vg"),
    };
    assert!(matches!(
        plan_result(&observed),
        Err(Refusal::VolumeGroupPathTaken { .. })
    ));
}

/// A PV marked in use whose own areas hold no VG metadata; `listed_by` names VGs on
/// other devices (each on `/dev/vdb1`) that list it.
fn in_use_without_metadata(own_areas: OwnMetadataAreas, listed_by: &[&str]) -> ObservedPartition {
    let mut observed = orphan_pv(GIB);
    if let Some(pv) = observed.physical_volume.as_mut() {
        pv.in_use_without_metadata = Some(InUseWithoutMetadata {
            own_areas,
            listed_by: listed_by
                .iter()
                .map(|vg| VgListingPv {
                    volume_group: (*vg).to_owned(),
                    devices: vec![PathBuf::from("/dev/vdb1")],
                })
                .collect(),
            unreadable: Vec::new(),
        });
    }
    observed
}

fn refusal(observed: &ObservedPartition, config: &ProvisionConfig) -> String {
    match plan(observed, config) {
        Ok(plan) => panic!("expected a refusal, got {plan:?}"),
        Err(refusal) => refusal.to_string(),
    }
}

#[test]
fn a_pv_in_use_is_re_created_only_when_no_vg_can_hold_it() {
    // Only an empty area in use, with no other device listing the PV, proves an
    // interrupted vgcreate.
    let cut = in_use_without_metadata(OwnMetadataAreas::EmptyInUse, &[]);
    assert_eq!(kinds(&planned(&cut, &config()))[0], "pvcreate-ff");
    // Everything else is a member of a VG kept elsewhere: refused, even with --force.
    for own in [
        OwnMetadataAreas::None,
        OwnMetadataAreas::Ignored,
        OwnMetadataAreas::EmptyInUse,
    ] {
        let listed = in_use_without_metadata(own, &["othervg"]);
        for force in [false, true] {
            let text = refusal(&listed, &config_with(force));
            assert!(
                text.contains("volume group othervg on /dev/vdb1 lists this PV"),
                "{own:?}: {text}"
            );
        }
    }
    let detached = in_use_without_metadata(OwnMetadataAreas::Ignored, &[]);
    let text = refusal(&detached, &config_with(true));
    assert!(text.contains("marked ignored"), "{text}");
    assert!(
        text.contains("no copy of the VG's metadata is readable on this machine; the other PVs of its VG may be detached"),
        "{text}"
    );
    // A device that could not be read might hold the VG: no proof, no re-creation.
    let mut unreadable = in_use_without_metadata(OwnMetadataAreas::EmptyInUse, &[]);
    if let Some(in_use) = unreadable
        .physical_volume
        .as_mut()
        .and_then(|pv| pv.in_use_without_metadata.as_mut())
    {
        in_use.unreadable = vec![(PathBuf::from("/dev/vdc"), "bad checksum".into())];
    }
    let text = refusal(&unreadable, &config());
    assert!(
        text.contains("/dev/vdc carries an LVM label but could not be read (bad checksum)"),
        "{text}"
    );
}

/// The provisioned fixture with a second metadata area of `mda_end` bytes at the
/// end of a partition of `size`, and the extent count LVM gives that PV.
fn two_metadata_areas(size: Bytes, mda_end: Bytes) -> ObservedPartition {
    let mut observed = provisioned(tag("node-01"));
    observed.partition.size_bytes = size;
    if let Some(pv) = observed.physical_volume.as_mut() {
        pv.metadata_bytes_at_end = mda_end;
    }
    let vg = vg_mut(&mut observed);
    vg.pv_extent_count = whole_extents(size - PE_START - mda_end);
    observed
}

#[test]
fn a_second_metadata_area_at_the_end_takes_its_space_from_the_extents() {
    // (size - pe_start) is a whole number of extents: only subtracting the second
    // area gives LVM's count, and the steady state plans nothing.
    let steady = two_metadata_areas(GIB + PE_START, MIB);
    assert_eq!(
        vg_mut(&mut steady.clone()).pv_extent_count,
        Extents::new(whole_extents(GIB).count() - 1)
    );
    assert!(planned(&steady, &config()).is_empty());
    // Growth by three extents beyond the area: pvresize, two kept free as the
    // metadata's doubling room (the pool predates it), the pool takes one.
    let mut grown = steady.clone();
    grown.partition.size_bytes += EXTENT * 3u64;
    assert_eq!(
        planned(&grown, &config()).actions.last(),
        Some(&Action::ExtendThinPool {
            volume_group: vg("linstor-vg"),
            pool: lv("linstor-pool"),
            by_extents: Extents::new(1),
        })
    );
    // Growth that leaves the area a byte short of a whole new extent: nothing to do.
    let mut little = steady;
    little.partition.size_bytes += MIB - Bytes(1);
    assert!(planned(&little, &config()).is_empty());
}

#[test]
fn an_untagged_vg_of_our_name_with_volumes_is_refused_unless_forced() {
    let mut foreign_lv = provisioned(SatelliteIdReading::Absent);
    let text = refusal(&foreign_lv, &config());
    assert!(text.contains("holds logical volumes: pvc-1"), "{text}");
    assert!(text.contains("--force"), "{text}");
    assert!(planned(&foreign_lv, &config_with(true)).reset.is_some());
    // Only the pool (and its hidden parts) or nothing: reset as the seed would.
    vg_mut(&mut foreign_lv)
        .logical_volumes
        .retain(|lv| lv.name != "pvc-1");
    assert_eq!(kinds(&planned(&foreign_lv, &config()))[0], "lvremove");
    vg_mut(&mut foreign_lv).logical_volumes.clear();
    assert_eq!(kinds(&planned(&foreign_lv, &config()))[0], "vgremove");
    // A VG tagged for another satellite is ours: its volumes go in a reset.
    assert!(planned(&provisioned(tag("node-02")), &config())
        .reset
        .is_some());
}

#[test]
fn impossible_numbers_are_refused_not_wrapped() {
    let mut huge_pool = provisioned(tag("node-01"));
    // Two of the free extents are the metadata's doubling room; three go to the pool.
    vg_mut(&mut huge_pool).free_extents = Extents::new(5);
    vg_mut(&mut huge_pool).logical_volumes[0].size_bytes = Bytes(u128::MAX) - EXTENT;
    assert!(refusal(&huge_pool, &config()).contains("impossible number"));
    // Past what any block device can hold, though 128-bit arithmetic would not wrap.
    let mut past_device_range = provisioned(tag("node-01"));
    vg_mut(&mut past_device_range).free_extents = Extents::new(5);
    vg_mut(&mut past_device_range).logical_volumes[0].size_bytes =
        Bytes(u128::from(u64::MAX)) - EXTENT;
    let text = refusal(&past_device_range, &config());
    assert!(
        text.contains("impossible number") && text.contains("past 2^64 bytes"),
        "{text}"
    );
    // A partition of more than 2^64 extents.
    let mut huge_partition = provisioned(tag("node-01"));
    huge_partition.partition.size_bytes = Bytes(u128::MAX);
    assert!(refusal(&huge_partition, &config()).contains("impossible number"));
    // A zero extent size is not representable: the metadata reader refuses it
    // (observe::lvm::tests::impossible_extent_sizes_are_read_errors).
    assert_eq!(
        required_pool_metadata_bytes(Bytes(u128::MAX), Bytes(1)),
        None
    );
    assert_eq!(required_pool_metadata_bytes(GIB, Bytes(0)), None);
}

#[test]
fn names_read_from_disk_never_reach_a_command_line_unchecked() {
    let mut spaced_vg = provisioned(tag("node-02"));
    vg_mut(&mut spaced_vg).name = "vg --yes".into();
    let text = refusal(&spaced_vg, &config_with(true));
    assert!(text.contains("volume group `vg --yes`"), "{text}");
    let mut spaced_lv = provisioned(tag("node-02"));
    vg_mut(&mut spaced_lv).logical_volumes[4].name = "pvc-1 -ff".into();
    let text = refusal(&spaced_lv, &config());
    assert!(text.contains("logical volume `pvc-1 -ff`"), "{text}");
}

/// Images made by real LVM (tests/fixtures/lvm/make-member-fixtures.sh) read,
/// turned into the planner's facts and planned, as a start of the tool would.
mod from_lvm_images {
    use super::*;
    use crate::observe::lvm::{parse_pv_on_disk, tests::load_image};
    use crate::observe::snapshot::{pv_facts, OtherDevices};
    use std::io::Cursor;

    fn observed_from(image: &str, others: OtherDevices) -> ObservedPartition {
        let bytes = load_image(image);
        let pv = match parse_pv_on_disk(Cursor::new(&bytes)) {
            Ok(Some(pv)) => pv,
            other => panic!("{image}: {other:?}"),
        };
        let facts = match pv_facts(&dev(), &pv, &Ok(Vec::new()), others, None) {
            Ok(facts) => facts,
            Err(e) => panic!("{image}: {e}"),
        };
        let mut observed = blank(Bytes::from(bytes.len()));
        observed.physical_volume = Some(facts);
        observed
    }

    fn listed_by(vg: &str) -> OtherDevices {
        OtherDevices {
            listed_by: vec![VgListingPv {
                volume_group: vg.into(),
                devices: vec![PathBuf::from("/dev/vdb1")],
            }],
            unreadable: Vec::new(),
        }
    }

    #[test]
    fn ignored_area_is_a_member_of_a_vg_elsewhere() {
        let observed = observed_from("member-ignored-a", OtherDevices::default());
        let in_use = observed
            .physical_volume
            .as_ref()
            .and_then(|pv| pv.in_use_without_metadata.as_ref());
        assert_eq!(in_use.map(|i| i.own_areas), Some(OwnMetadataAreas::Ignored));
        let text = refusal(&observed, &config_with(true));
        assert!(text.contains("may be detached"), "{text}");
        let text = refusal(
            &observed_from("member-ignored-a", listed_by("othervg")),
            &config(),
        );
        assert!(text.contains("volume group othervg on /dev/vdb1"), "{text}");
    }

    #[test]
    fn no_metadata_area_is_a_member_of_a_vg_elsewhere() {
        let observed = observed_from("vg-mdas-b", listed_by("vg-mdas"));
        let text = refusal(&observed, &config_with(true));
        assert!(text.contains("--pvmetadatacopies 0"), "{text}");
        assert!(text.contains("volume group vg-mdas on /dev/vdb1"), "{text}");
    }

    #[test]
    fn two_metadata_areas_plan_no_pvresize_until_the_partition_grows() {
        let observed = observed_from("two-mdas", OtherDevices::default());
        let pv = observed
            .physical_volume
            .as_ref()
            .map(|pv| pv.metadata_bytes_at_end);
        assert!(pv.is_some_and(|bytes| bytes > Bytes(0)), "{pv:?}");
        // The fixture has no pool yet: the plan creates it, and resizes nothing.
        assert_eq!(kinds(&planned(&observed, &config())), vec!["pool-create"]);
        let mut grown = observed;
        grown.partition.size_bytes += MIB;
        assert_eq!(
            kinds(&planned(&grown, &config())),
            vec!["pvresize", "pool-create"]
        );
    }
}

#[test]
fn a_seed_adoption_killed_inside_its_activation_is_unblocked_first() {
    let mut observed = provisioned(SatelliteIdReading::SeedLvInactive);
    set_pool_serving(&mut observed, false);
    for lv in &mut vg_mut(&mut observed).logical_volumes {
        lv.active = lv.name == "linstor-pool_tmeta";
    }
    assert_eq!(
        kinds(&planned(&observed, &config())),
        ["components-deactivate", "activate-seed-lv"]
    );
    // Nothing stranded: just the activation that reads the seed's ID.
    for lv in &mut vg_mut(&mut observed).logical_volumes {
        lv.active = false;
    }
    assert_eq!(kinds(&planned(&observed, &config())), ["activate-seed-lv"]);
}

/// Our tagged 1 GiB VG with no pool and one plain visible LV `name` of `extents`
/// at PE `at`, the rest free: what a thin-pool `lvcreate` killed after making its
/// spare leaves when `extents` is the spare's size and `at` is 0.
fn vg_with_plain_lv(name: &str, extents: u64, at: u64) -> ObservedPartition {
    let mut observed = provisioned(tag("node-01"));
    let vg = vg_mut(&mut observed);
    let total = vg.pv_extent_count.count();
    vg.logical_volumes = vec![LvFacts {
        name: name.into(),
        kind: LvKind::Other {
            segment_type: "striped".into(),
        },
        visible: true,
        size_bytes: EXTENT * extents,
        active: true,
        open_by: None,
        dm_name: None,
        plain_linear_at: Some(at),
    }];
    vg.free_extents = Extents::new(total - extents);
    vg.free_areas = [(0, at), (at + extents, total - at - extents)]
        .into_iter()
        .filter(|(_, count)| *count > 0)
        .map(|(start, count)| crate::observe::state::PeRange { start, count })
        .collect();
    observed
}

#[test]
fn a_pool_creation_killed_while_making_its_spare_is_cleaned_up() {
    // 254 free + 1 extents of 4 MiB with 512 KiB chunks: LVM's spare is one extent.
    let observed = vg_with_plain_lv("lvol0", 1, 0);
    let plan = planned(&observed, &config());
    assert_eq!(kinds(&plan), ["lvremove-spare", "pool-create"]);
    assert!(matches!(
        &plan.actions[0],
        Action::RemoveIncompleteSpare { name, .. } if name.as_str() == "lvol0"
    ));
    // The partition grew since: judged before the pvresize changes the VG.
    let mut grown = observed.clone();
    grown.partition.size_bytes = gib(2);
    assert_eq!(
        kinds(&planned(&grown, &config())),
        ["lvremove-spare", "pvresize", "pool-create"]
    );
    // Not in a VG we tagged, or beside a pool: not looked at as a spare.
    let mut untagged_seed = observed.clone();
    vg_mut(&mut untagged_seed).satellite_id = SatelliteIdReading::SeedFile("node-01".into());
    assert_eq!(
        kinds(&planned(&untagged_seed, &config())),
        ["vgtag", "pool-create"]
    );
}

#[test]
fn an_lvol_that_is_not_exactly_the_spare_is_refused_by_name() {
    let refused = |observed: &ObservedPartition, why: &str| match plan(observed, &config()) {
        Err(Refusal::NotAnInterruptedSpare {
            logical_volume,
            why: found,
            ..
        }) => {
            assert_eq!(logical_volume, "lvol0");
            assert!(found.contains(why), "{found} lacks {why}");
        }
        other => panic!("expected a refusal naming lvol0 ({why}), got {other:?}"),
    };
    // A user's 12 MiB lvol0: three extents where LVM makes a spare of one.
    let users = vg_with_plain_lv("lvol0", 3, 0);
    refused(&users, "it has 3 extents");
    let text = plan(&users, &config()).err().map(|r| r.to_string());
    assert!(
        text.as_deref()
            .is_some_and(|t| t.contains("linstor-vg/lvol0")
                && t.contains("not removed")
                && t.contains("lvremove linstor-vg/lvol0")),
        "{text:?}"
    );
    // The right size, somewhere LVM would not have put it.
    refused(&vg_with_plain_lv("lvol0", 1, 7), "starts at extent 7");
    // Open, or not recorded as a new linear LV (several segments, flags, tags).
    let mut open = vg_with_plain_lv("lvol0", 1, 0);
    vg_mut(&mut open).logical_volumes[0].open_by = Some("mounted".into());
    refused(&open, "open");
    let mut shaped = vg_with_plain_lv("lvol0", 1, 0);
    vg_mut(&mut shaped).logical_volumes[0].plain_linear_at = None;
    refused(&shaped, "not that of a new linear LV");
    // Sized for another chunk size than the one configured.
    let mut other_chunk = vg_with_plain_lv("lvol0", 1, 0);
    vg_mut(&mut other_chunk).logical_volumes[0].size_bytes = EXTENT * 2u64;
    vg_mut(&mut other_chunk).free_extents = Extents::new(253);
    vg_mut(&mut other_chunk).free_areas = vec![crate::observe::state::PeRange {
        start: 2,
        count: 253,
    }];
    refused(&other_chunk, "it has 2 extents");
    // Not an automatic name: someone's volume beside which the pool is made.
    let named = vg_with_plain_lv("lvolx", 3, 0);
    assert_eq!(kinds(&planned(&named, &config())), ["pool-create"]);
}

mod host_lvm_integration {
    use super::*;
    use crate::observe::state::{DevicesFileFacts, FilterRejection, HostLvmFacts};

    const PVID: &str = "pvuuidpvuuidpvuuidpvuuidpvuuid00";

    fn file_path() -> PathBuf {
        PathBuf::from("/etc/lvm/devices/system.devices")
    }

    fn devices_file(listed: bool, listed_pvid: Option<&str>) -> HostLvmFacts {
        HostLvmFacts {
            devices_file: DevicesFileFacts::InUse {
                path: file_path(),
                listed,
                listed_pvid: listed_pvid.map(uuid),
                version: Some("1.1.7".into()),
                version_too_new: false,
                folder_read_only: false,
                dead_pvids: Vec::new(),
            },
            ..HostLvmFacts::default()
        }
    }

    fn with_host(mut observed: ObservedPartition, host: HostLvmFacts) -> ObservedPartition {
        observed.host_lvm = host;
        observed
    }

    /// The partition's PV is listed under its own PVID.
    fn listed() -> HostLvmFacts {
        devices_file(true, Some(PVID))
    }

    fn not_listed() -> HostLvmFacts {
        devices_file(false, None)
    }

    #[test]
    fn the_pv_is_entered_last_whenever_the_devices_file_is_in_use_and_lacks_it() {
        let cases: Vec<(&str, ObservedPartition, Vec<&str>)> = vec![
            (
                "fresh",
                with_host(blank(GIB), not_listed()),
                vec!["pvcreate", "vgcreate", "pool-create", "devices-add"],
            ),
            (
                "orphan PV, not listed",
                with_host(orphan_pv(GIB), not_listed()),
                vec!["vgcreate", "pool-create", "devices-add"],
            ),
            (
                "orphan PV, listed",
                with_host(orphan_pv(GIB), listed()),
                vec!["vgcreate", "pool-create"],
            ),
            (
                "steady, listed: nothing at all",
                with_host(provisioned(tag("node-01")), listed()),
                vec![],
            ),
            (
                "steady, not listed (provisioned before, or a kill before the add)",
                with_host(provisioned(tag("node-01")), not_listed()),
                vec!["devices-add"],
            ),
            (
                "seed adoption",
                with_host(
                    provisioned(SatelliteIdReading::SeedFile("node-01".into())),
                    not_listed(),
                ),
                vec!["vgtag", "devices-add"],
            ),
            (
                "reset of a listed PV: out before pvremove, the new one in at the end",
                with_host(provisioned(tag("other")), listed()),
                vec![
                    "lvremove",
                    "vgremove",
                    "devices-del",
                    "pvremove",
                    "pvcreate",
                    "vgcreate",
                    "pool-create",
                    "devices-add",
                ],
            ),
            (
                "reset of an unlisted PV",
                with_host(provisioned(tag("other")), not_listed()),
                vec![
                    "lvremove",
                    "vgremove",
                    "pvremove",
                    "pvcreate",
                    "vgcreate",
                    "pool-create",
                    "devices-add",
                ],
            ),
            (
                "not in use: no devices file steps",
                with_host(provisioned(tag("other")), HostLvmFacts::default()),
                vec![
                    "lvremove",
                    "vgremove",
                    "pvremove",
                    "pvcreate",
                    "vgcreate",
                    "pool-create",
                ],
            ),
        ];
        for (what, observed, expected) in cases {
            assert_eq!(kinds(&planned(&observed, &config())), expected, "{what}");
        }
    }

    #[test]
    fn the_steps_name_the_partition_and_the_old_pvid() {
        let plan = planned(&with_host(provisioned(tag("other")), listed()), &config());
        assert!(plan.actions.contains(&Action::RemoveFromDevicesFile {
            pvid: uuid(PVID),
            devices_file: file_path(),
        }));
        assert_eq!(
            plan.actions.last(),
            Some(&Action::AddToDevicesFile {
                device: dev(),
                devices_file: file_path(),
            })
        );
    }

    #[test]
    fn a_pv_recreated_after_an_interrupted_vgcreate_leaves_the_file_first() {
        let mut observed = with_host(orphan_pv(GIB), listed());
        if let Some(pv) = observed.physical_volume.as_mut() {
            pv.in_use_without_metadata = Some(InUseWithoutMetadata {
                own_areas: OwnMetadataAreas::EmptyInUse,
                listed_by: Vec::new(),
                unreadable: Vec::new(),
            });
        }
        assert_eq!(
            kinds(&planned(&observed, &config())),
            [
                "devices-del",
                "pvcreate-ff",
                "vgcreate",
                "pool-create",
                "devices-add"
            ]
        );
    }

    #[test]
    fn an_unreadable_host_configuration_is_refused_unless_forced() {
        let host = HostLvmFacts {
            error: Some("cannot read /etc/lvm/lvm.conf: Permission denied".into()),
            ..HostLvmFacts::default()
        };
        let observed = with_host(blank(GIB), host);
        let why = refusal(&observed, &config());
        assert!(why.contains("/etc/lvm/lvm.conf"), "{why}");
        assert!(why.contains("FORCE=true"), "{why}");
        // Even a steady start: the host's view can't be checked.
        let steady = with_host(provisioned(tag("node-01")), observed.host_lvm.clone());
        assert!(plan(&steady, &config()).is_err());
        let forced = planned(&observed, &config_with(true));
        assert_eq!(kinds(&forced), ["pvcreate", "vgcreate", "pool-create"]);
        let warnings = host_lvm_warnings(&observed, &config_with(true));
        assert!(
            warnings.len() == 1 && warnings[0].contains("Permission denied"),
            "{warnings:?}"
        );
        assert!(host_lvm_warnings(&observed, &config()).is_empty());
    }

    #[test]
    fn a_devices_file_newer_than_our_lvm_is_refused_only_when_it_needs_an_edit() {
        let mut host = not_listed();
        if let DevicesFileFacts::InUse {
            version,
            version_too_new,
            ..
        } = &mut host.devices_file
        {
            *version = Some("2.0.1".into());
            *version_too_new = true;
        }
        let why = refusal(&with_host(blank(GIB), host.clone()), &config());
        assert!(why.contains("VERSION=2.0.1"), "{why}");
        assert!(why.contains("/etc/lvm/devices/system.devices"), "{why}");
        assert!(why.contains("lvmdevices --adddev /dev/vda1"), "{why}");
        let forced = planned(&with_host(blank(GIB), host.clone()), &config_with(true));
        assert_eq!(kinds(&forced), ["pvcreate", "vgcreate", "pool-create"]);
        if let DevicesFileFacts::InUse {
            listed,
            listed_pvid,
            ..
        } = &mut host.devices_file
        {
            *listed = true;
            *listed_pvid = Some(uuid(PVID));
        }
        assert!(planned(&with_host(provisioned(tag("node-01")), host), &config()).is_empty());
    }

    fn global_filter(rule: &str) -> HostLvmFacts {
        HostLvmFacts {
            global_filter_rejects: Some(FilterRejection {
                rule: rule.into(),
                file: Some(PathBuf::from("/etc/lvm/lvm.conf")),
            }),
            ..HostLvmFacts::default()
        }
    }

    #[test]
    fn a_global_filter_hiding_the_partition_is_refused_unless_forced() {
        let observed = with_host(blank(GIB), global_filter("r|^/dev/vda1$|"));
        let why = refusal(&observed, &config());
        assert!(
            why.contains(
                "global_filter rule `r|^/dev/vda1$|` in /etc/lvm/lvm.conf rejects /dev/vda1"
            ),
            "{why}"
        );
        assert!(why.contains("linstor-vg"), "{why}");
        let forced = planned(&observed, &config_with(true));
        assert_eq!(kinds(&forced), ["pvcreate", "vgcreate", "pool-create"]);
        let warnings = host_lvm_warnings(&observed, &config_with(true));
        assert!(
            warnings.len() == 1 && warnings[0].contains("r|^/dev/vda1$|"),
            "{warnings:?}"
        );
        // Refused on a steady start too: the host still would not see the VG.
        let steady = with_host(provisioned(tag("node-01")), global_filter("r|.*|"));
        assert!(plan(&steady, &config()).is_err());
    }

    #[test]
    fn a_plain_filter_and_dead_lines_are_warnings_only() {
        let host = HostLvmFacts {
            filter_rejects: Some(FilterRejection {
                rule: "r|vd|".into(),
                file: None,
            }),
            ..HostLvmFacts::default()
        };
        let observed = with_host(provisioned(tag("node-01")), host);
        assert!(planned(&observed, &config()).is_empty());
        let warnings = host_lvm_warnings(&observed, &config());
        assert!(
            warnings.len() == 1 && warnings[0].contains("filter rule `r|vd|`"),
            "{warnings:?}"
        );

        let mut host = listed();
        if let DevicesFileFacts::InUse { dead_pvids, .. } = &mut host.devices_file {
            dead_pvids.push("deadbeef".into());
        }
        let observed = with_host(provisioned(tag("node-01")), host);
        assert!(planned(&observed, &config()).is_empty());
        let warnings = host_lvm_warnings(&observed, &config());
        assert!(
            warnings.len() == 1 && warnings[0].contains("lvmdevices --delpvid deadbeef"),
            "{warnings:?}"
        );
    }

    #[test]
    fn devices_file_steps_print_readably() {
        assert_eq!(
            Action::AddToDevicesFile {
                device: dev(),
                devices_file: file_path(),
            }
            .to_string(),
            "enter physical volume /dev/vda1 in the host's LVM devices file"
        );
        assert!(Action::RemoveFromDevicesFile {
            pvid: uuid(PVID),
            devices_file: file_path(),
        }
        .to_string()
        .contains("remove PVID pvuuidpvuuidpvuuidpvuuidpvuuid00,"));
    }

    #[test]
    fn a_read_only_devices_file_folder_is_refused_before_a_reset_unless_forced() {
        let read_only = |mut host: HostLvmFacts| {
            if let DevicesFileFacts::InUse {
                folder_read_only, ..
            } = &mut host.devices_file
            {
                *folder_read_only = true;
            }
            host
        };
        let reset = with_host(
            provisioned(tag("node-00")),
            read_only(devices_file(true, Some(PVID))),
        );
        assert!(matches!(
            plan(&reset, &config()),
            Err(Refusal::DevicesFileReadOnly { .. })
        ));
        let forced = planned(&reset, &config_with(true));
        assert!(!kinds(&forced).iter().any(|k| k.starts_with("devices-")));
        // Nothing to edit (a steady, listed node): nothing refused.
        let steady = with_host(
            provisioned(tag("node-01")),
            read_only(devices_file(true, Some(PVID))),
        );
        assert!(planned(&steady, &config()).is_empty());
    }
}

#[test]
fn a_suspended_pool_device_is_refreshed_not_its_components_deactivated() {
    let mut observed = provisioned(tag("node-01"));
    for lv in &mut vg_mut(&mut observed).logical_volumes {
        if let LvKind::ThinPool { serving, .. } = &mut lv.kind {
            *serving = false; // present, but suspended or without a live table
        }
        lv.active = lv.name.starts_with("linstor-pool");
    }
    assert_eq!(kinds(&planned(&observed, &config())), ["pool-refresh"]);
}

#[test]
fn a_pool_device_never_loaded_is_removed_before_the_activation() {
    let mut observed = provisioned(tag("node-01"));
    for lv in &mut vg_mut(&mut observed).logical_volumes {
        if let LvKind::ThinPool {
            serving,
            pool_device_present,
            unloaded_pool_device,
            ..
        } = &mut lv.kind
        {
            *serving = false;
            *pool_device_present = false;
            *unloaded_pool_device = Some("linstor--vg-linstor--pool-tpool".into());
        }
        lv.active = lv.name.starts_with("linstor-pool");
    }
    assert_eq!(
        kinds(&planned(&observed, &config())),
        ["dm-remove-stale", "components-deactivate", "pool-activate"]
    );
}

#[test]
fn a_reset_first_clears_a_pool_device_a_killed_removal_left() {
    let mut observed = provisioned(tag("node-02"));
    for lv in &mut vg_mut(&mut observed).logical_volumes {
        if let LvKind::ThinPool {
            serving,
            pool_device_present,
            unloaded_pool_device,
            ..
        } = &mut lv.kind
        {
            *serving = false;
            *pool_device_present = false;
            *unloaded_pool_device = Some("linstor--vg-linstor--pool-tpool".into());
        }
    }
    let steps = kinds(&planned(&observed, &config()));
    assert_eq!(steps[..2], ["dm-remove-stale", "lvremove"], "{steps:?}");
    for lv in &mut vg_mut(&mut observed).logical_volumes {
        if let LvKind::ThinPool {
            pool_device_present,
            unloaded_pool_device,
            ..
        } = &mut lv.kind
        {
            *pool_device_present = true; // suspended
            *unloaded_pool_device = None;
        }
    }
    let steps = kinds(&planned(&observed, &config()));
    assert_eq!(steps[..2], ["pool-refresh", "lvremove"], "{steps:?}");
}

#[test]
fn a_reset_first_removes_a_pool_device_lvm_no_longer_sees() {
    let mut observed = provisioned(tag("node-02"));
    for lv in &mut vg_mut(&mut observed).logical_volumes {
        if let LvKind::ThinPool {
            unheld_pool_device, ..
        } = &mut lv.kind
        {
            *unheld_pool_device = Some("linstor--vg-linstor--pool-tpool".into());
        }
    }
    let plan = planned(&observed, &config());
    assert_eq!(kinds(&plan)[..2], ["dm-remove-stale", "lvremove"]);
    assert!(matches!(
        &plan.actions[0],
        Action::RemoveStaleDevices { dm_names } if dm_names == &["linstor--vg-linstor--pool-tpool"]
    ));
}

#[test]
fn a_pool_device_lvm_no_longer_sees_is_kept_when_the_id_matches() {
    let mut observed = provisioned(tag("node-01"));
    for lv in &mut vg_mut(&mut observed).logical_volumes {
        if let LvKind::ThinPool {
            unheld_pool_device, ..
        } = &mut lv.kind
        {
            *unheld_pool_device = Some("linstor--vg-linstor--pool-tpool".into());
        }
    }
    // It serves: LINSTOR's lvcreate and lvs use it as it is.
    assert!(planned(&observed, &config()).actions.is_empty());
}

#[test]
fn an_empty_seed_metadata_device_is_activated_and_a_suspended_seed_pool_refreshed() {
    let mut observed = provisioned(SatelliteIdReading::SeedLvUnloaded {
        dm_name: "linstor--vg-metadata".into(),
    });
    // LVM loads the table into the empty device itself; removing it natively could
    // race a host activation that is about to load it.
    assert_eq!(kinds(&planned(&observed, &config())), ["activate-seed-lv"]);
    vg_mut(&mut observed).satellite_id = SatelliteIdReading::SeedPoolSuspended {
        pool: "linstor-pool".into(),
    };
    assert_eq!(kinds(&planned(&observed, &config())), ["pool-refresh"]);
}

/// The JSON of the observed facts and of a plan that carries every size field is
/// part of the interface (`status --json`, `--dry-run`): pinned byte for byte.
#[test]
fn observed_and_plan_json_are_pinned() {
    let mut grown = provisioned(tag("node-01"));
    grown.partition.size_bytes = gib(4096);
    if let Some(pv) = grown.physical_volume.as_mut() {
        pv.metadata_bytes_at_end = MIB;
    }
    vg_mut(&mut grown).free_extents = Extents::new(3);
    let observed = serde_json::to_string(&grown).unwrap_or_default();
    let plan = serde_json::to_string(&planned(&grown, &config())).unwrap_or_default();
    let fresh = serde_json::to_string(&planned(&blank(GIB), &config())).unwrap_or_default();
    assert_eq!(observed, "{\"partition\":{\"devnode\":\"/dev/vda1\",\"major\":254,\"minor\":1,\"label\":\"linstor-storage\",\"size_bytes\":4398046511104},\"foreign_signature\":null,\"physical_volume\":{\"uuid\":\"pvuuid-pvuu-idpv-uuid-pvuu-idpv-uuidpv\",\"recorded_device_size\":1073741824,\"metadata_bytes_at_end\":1048576,\"in_use_without_metadata\":null,\"volume_group\":{\"name\":\"linstor-vg\",\"uuid\":\"vguuid-vguu-idvg-uuid-vguu-idvg-uuidvg\",\"seqno\":7,\"extent_size_bytes\":4194304,\"pe_start_bytes\":1048576,\"pv_extent_count\":255,\"free_extents\":3,\"other_pvs\":[],\"satellite_id\":{\"source\":\"tag\",\"value\":\"node-01\"},\"logical_volumes\":[{\"name\":\"linstor-pool\",\"kind\":{\"type\":\"thin-pool\",\"metadata_size_bytes\":4194304,\"chunk_size_bytes\":524288,\"zero_new_blocks\":false,\"serving\":true,\"pool_device_present\":true,\"unloaded_pool_device\":null,\"unheld_pool_device\":null},\"visible\":true,\"size_bytes\":1061158912,\"active\":true,\"open_by\":null},{\"name\":\"linstor-pool_tdata\",\"kind\":{\"type\":\"other\",\"segment_type\":\"striped\"},\"visible\":false,\"size_bytes\":4194304,\"active\":false,\"open_by\":null},{\"name\":\"linstor-pool_tmeta\",\"kind\":{\"type\":\"other\",\"segment_type\":\"striped\"},\"visible\":false,\"size_bytes\":4194304,\"active\":false,\"open_by\":null},{\"name\":\"lvol0_pmspare\",\"kind\":{\"type\":\"other\",\"segment_type\":\"striped\"},\"visible\":false,\"size_bytes\":4194304,\"active\":false,\"open_by\":null},{\"name\":\"pvc-1\",\"kind\":{\"type\":\"thin\",\"pool\":\"linstor-pool\"},\"visible\":true,\"size_bytes\":10737418240,\"active\":false,\"open_by\":null}]}},\"wanted_vg_name_elsewhere\":[],\"leftovers\":{\"stale_devices\":[],\"vg_dev_dir\":{\"state\":\"absent\"}},\"host_lvm\":{\"devices_file\":{\"state\":\"not-in-use\"},\"global_filter_rejects\":null,\"filter_rejects\":null,\"error\":null}}");
    assert_eq!(plan, "{\"reset\":null,\"actions\":[{\"action\":\"resize-physical-volume\",\"device\":\"/dev/vda1\",\"from_bytes\":1073741824,\"to_bytes\":4398046511104},{\"action\":\"extend-pool-metadata\",\"volume_group\":\"linstor-vg\",\"pool\":\"linstor-pool\",\"to_bytes\":1073741824},{\"action\":\"extend-thin-pool\",\"volume_group\":\"linstor-vg\",\"pool\":\"linstor-pool\",\"by_extents\":1047301}]}");
    assert_eq!(fresh, "{\"reset\":null,\"actions\":[{\"action\":\"create-physical-volume\",\"device\":\"/dev/vda1\",\"overwrite_signature\":null},{\"action\":\"create-volume-group\",\"volume_group\":\"linstor-vg\",\"device\":\"/dev/vda1\",\"satellite_id_tag\":\"linstor-satellite-id=node-01\"},{\"action\":\"create-thin-pool\",\"volume_group\":\"linstor-vg\",\"pool\":\"linstor-pool\",\"chunk_size_bytes\":524288,\"zero_new_blocks\":false,\"data_extents\":251,\"metadata_bytes\":4194304}]}");
}

#[test]
fn an_id_recorded_with_stray_characters_is_re_tagged_in_one_step_not_reset() {
    for recorded in [
        "node-01\n",
        "node-01 ",
        " node-01",
        "node-01\r\n",
        "node\u{7}-01",
    ] {
        let plan = planned(&provisioned(tag(recorded)), &config());
        assert_eq!(plan.reset, None, "{recorded:?}");
        let old_tag = match crate::satellite_id::encode_tag(recorded) {
            Ok(tag) => tag,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(
            plan.actions,
            [Action::RetagVolumeGroup {
                volume_group: vg("linstor-vg"),
                old_tag,
                new_tag: "linstor-satellite-id=node-01".into(),
            }],
            "{recorded:?}"
        );
    }
    // The tag as stored is the one removed, whatever its spelling.
    let mut observed = provisioned(tag("node-01\n"));
    vg_mut(&mut observed).satellite_id_tag = Some("linstor-satellite-id=node-01&0a".into());
    assert!(matches!(
        &planned(&observed, &config()).actions[..],
        [Action::RetagVolumeGroup { old_tag, .. }] if old_tag == "linstor-satellite-id=node-01&0a"
    ));
    // Re-tagging goes with whatever else the VG needs, before it.
    let mut observed = provisioned(tag("node-01\n"));
    observed.partition.size_bytes = gib(2);
    assert_eq!(
        kinds(&planned(&observed, &config())),
        ["vgretag", "pvresize", "pool-extend"]
    );
}

#[test]
fn an_id_that_differs_by_more_than_stray_characters_is_still_another_node() {
    for recorded in [
        "node-01x",
        "node -01",
        "node-0",
        "Node-01",
        "node-01\u{a0}x",
    ] {
        let plan = planned(&provisioned(tag(recorded)), &config());
        assert_eq!(
            plan.reset.as_ref().and_then(|r| r.existing.as_deref()),
            Some(recorded),
            "{recorded:?}"
        );
    }
}

#[test]
fn a_seed_file_id_with_a_trailing_newline_is_adopted_with_the_tag_added() {
    let plan = planned(
        &provisioned(SatelliteIdReading::SeedFile("node-01\n".into())),
        &config(),
    );
    assert_eq!(plan.reset, None);
    assert_eq!(kinds(&plan), ["vgtag"]);
}

#[test]
fn a_re_tag_prints_both_tags() {
    let action = Action::RetagVolumeGroup {
        volume_group: vg("linstor-vg"),
        old_tag: "linstor-satellite-id=node-01&0A".into(),
        new_tag: "linstor-satellite-id=node-01".into(),
    };
    assert_eq!(
        action.to_string(),
        "re-tag volume group linstor-vg: replace linstor-satellite-id=node-01&0A with linstor-satellite-id=node-01 (the recorded satellite ID differs only by surrounding whitespace or control characters: the same node)"
    );
    assert_eq!(
        serde_json::to_value(&action).ok(),
        Some(serde_json::json!({
            "action": "retag-volume-group",
            "volume_group": "linstor-vg",
            "old_tag": "linstor-satellite-id=node-01&0A",
            "new_tag": "linstor-satellite-id=node-01",
        }))
    );
}

#[test]
fn pool_metadata_growth_stops_at_lvms_largest() {
    // 200 TiB at 512 KiB chunks wants ~25 GiB of metadata; LVM makes at most 15.81 GiB.
    let mut grown = provisioned(tag("node-01"));
    grown.partition.size_bytes = gib(200 << 10);
    let plan = planned(&grown, &config());
    let most = crate::plan::pool_preconditions::MAX_POOL_METADATA_BYTES;
    assert!(plan.actions.iter().any(|a| matches!(a,
        Action::ExtendPoolMetadata { to_bytes, .. } if *to_bytes <= most && *to_bytes > most - EXTENT)));
    // Once there, later starts ask for no more (they did, forever, before).
    let at_most = whole_extents(most);
    if let Some(vg) = grown
        .physical_volume
        .as_mut()
        .and_then(|pv| pv.volume_group.as_mut())
    {
        let pe_count = whole_extents(gib(200 << 10) - PE_START);
        vg.pv_extent_count = pe_count;
        vg.free_extents = Extents::new(1);
        vg.logical_volumes[0] = pool(
            EXTENT * (pe_count.count() - 1 - 2 * at_most.count()),
            EXTENT * at_most.count(),
        );
    }
    assert!(!kinds(&planned(&grown, &config())).contains(&"pool-metadata-extend"));
}

#[test]
fn a_pool_lvm_could_not_create_is_refused_before_a_reset_destroys_anything() {
    use crate::observe::host_lvm::PoolCreationSettings;
    let mut observed = provisioned(tag("node-00"));
    observed.host_lvm.pool_creation = PoolCreationSettings {
        volume_list: Some(vec!["nosuchvg".into()]),
        ..PoolCreationSettings::default()
    };
    let refused = refusal(&observed, &config());
    assert!(
        refused.contains("volume_list") && refused.contains("Nothing was written"),
        "{refused}"
    );
    // The same node with its own ID keeps its pool: nothing to create, nothing refused.
    let mut steady = provisioned(tag("node-01"));
    steady.host_lvm.pool_creation = observed.host_lvm.pool_creation.clone();
    assert!(planned(&steady, &config()).is_empty());
    // A chunk larger than the partition's data space.
    let mut small = provisioned(tag("node-00"));
    small.partition.size_bytes = Bytes(600 << 20);
    let big_chunk = ProvisionConfig {
        chunk_size_bytes: Some(Bytes(1 << 30)),
        ..config()
    };
    let refused = refusal(&small, &big_chunk);
    assert!(refused.contains("chunk size of"), "{refused}");
}

#[test]
fn md_magic_where_lvm_looks_refuses_plans_that_write_a_label() {
    use crate::observe::md_magic::MdMagic;
    use crate::observe::state::{Preflight, PreflightFacts};
    let magic = PreflightFacts {
        lvm_md_component: Some(MdMagic {
            format: "md 1.0",
            offset: 1_073_733_632,
        }),
        ..PreflightFacts::default()
    };
    let mut reset = provisioned(tag("node-00"));
    reset.preflight = Preflight::Gathered(magic.clone());
    let refused = refusal(&reset, &config());
    assert!(
        refused.contains("md 1.0") && refused.contains("1073733632"),
        "{refused}"
    );
    // A superblock libblkid reports too: its refusal, with the wipefs advice.
    let mut both = provisioned(tag("node-00"));
    if let Preflight::Gathered(facts) = &reset.preflight {
        both.preflight = Preflight::Gathered(PreflightFacts {
            foreign_signatures: vec![crate::observe::preflight::ForeignSignature {
                type_name: "linux_raid_member".into(),
                usage: crate::observe::signature::Usage::Raid,
                described: "linux_raid_member (raid) at byte 1073733632".into(),
            }],
            ..facts.clone()
        });
    }
    let refused = refusal(&both, &config());
    assert!(
        refused.contains("wipefs --all --types linux_raid_member"),
        "{refused}"
    );
    // A grow: LVM checks the whole device once the PV's size and the device's
    // differ, so pvresize would refuse too.
    let mut grown = provisioned(tag("node-01"));
    grown.partition.size_bytes = gib(2);
    grown.preflight = Preflight::Gathered(magic.clone());
    assert!(refusal(&grown, &config()).contains("md 1.0 metadata magic"));
    // A re-tag or an activation writes no label: nothing refused.
    let mut retag = provisioned(tag("node-01\n"));
    retag.preflight = Preflight::Gathered(magic);
    assert_eq!(kinds(&planned(&retag, &config())).len(), 1);
}

#[test]
fn a_missing_thin_pool_target_is_refused_only_when_lvm_could_not_load_it() {
    use crate::observe::preflight::ThinPoolTarget;
    use crate::observe::state::{Preflight, PreflightFacts};
    let with = |target: ThinPoolTarget, id: &str| {
        let mut observed = provisioned(tag(id));
        observed.preflight = Preflight::Gathered(PreflightFacts {
            thin_pool_target: target,
            ..PreflightFacts::default()
        });
        plan(&observed, &config())
    };
    let refused = match with(ThinPoolTarget::Unavailable, "node-00") {
        Err(refusal) => refusal.to_string(),
        Ok(plan) => panic!("a reset without a thin-pool target was planned: {plan:?}"),
    };
    assert!(refused.contains("modprobe dm_thin_pool"), "{refused}");
    assert!(with(ThinPoolTarget::Loadable, "node-00").is_ok());
    assert!(with(ThinPoolTarget::Loaded, "node-00").is_ok());
    // Nothing to create: a steady node is not refused for it.
    assert!(matches!(with(ThinPoolTarget::Unavailable, "node-01"), Ok(p) if p.is_empty()));
}

/// A seed-like VG of another name, untagged: every reading of the seed layout is
/// refused before anything of it is activated, refreshed or deactivated.
#[test]
fn a_seed_layout_in_a_vg_of_another_name_is_refused_before_anything_is_activated() {
    let readings = [
        SatelliteIdReading::SeedLvInactive,
        SatelliteIdReading::SeedLvUnloaded {
            dm_name: "data-metadata".into(),
        },
        SatelliteIdReading::SeedPoolSuspended {
            pool: "linstor-pool".into(),
        },
        SatelliteIdReading::SeedFile("node-02".into()),
    ];
    for reading in readings {
        let mut observed = provisioned(reading.clone());
        vg_mut(&mut observed).name = "data".into();
        // Stranded components and a leftover device would each be a first step.
        set_pool_serving(&mut observed, false);
        for lv in &mut vg_mut(&mut observed).logical_volumes {
            lv.active = lv.name == "linstor-pool_tmeta";
        }
        observed.leftovers.stale_devices.push(StaleDevice {
            dm_name: "data-old".into(),
            held_by: None,
        });
        match plan(&observed, &config()) {
            Err(Refusal::ForeignSeedLayout {
                volume_group,
                wanted,
                ..
            }) => {
                assert_eq!(
                    (volume_group.as_str(), wanted.as_str()),
                    ("data", "linstor-vg")
                );
            }
            other => panic!("{reading:?}: expected a refusal, got {other:?}"),
        }
        // --force wipes it whole, without reading (activating) the seed's LV first.
        let forced = planned(&observed, &config_with(true));
        assert!(forced.reset.is_some(), "{reading:?}");
        assert!(
            !kinds(&forced).contains(&"activate-seed-lv")
                && !kinds(&forced).contains(&"components-deactivate"),
            "{reading:?}: {:?}",
            kinds(&forced)
        );
    }
    // Its ID already readable and ours: the name mismatch is named, nothing else.
    let mut same = provisioned(SatelliteIdReading::SeedFile("node-01".into()));
    vg_mut(&mut same).name = "data".into();
    assert!(matches!(
        plan(&same, &config_with(true)),
        Err(Refusal::VolumeGroupNameMismatch { found, .. }) if found == "data"
    ));
}

/// The configured VG (or one we tagged) is still adopted, recovered and reset.
#[test]
fn only_the_configured_or_tagged_vg_is_adopted() {
    let mut seed = provisioned(SatelliteIdReading::SeedLvInactive);
    assert_eq!(kinds(&planned(&seed, &config())), ["activate-seed-lv"]);
    vg_mut(&mut seed).name = "other".into();
    assert!(plan(&seed, &config()).is_err());
    // Tagged by this tool under another name: ours (a reset for another ID).
    let mut tagged = provisioned(tag("node-02"));
    vg_mut(&mut tagged).name = "other".into();
    let plan_tagged = planned(&tagged, &config());
    assert_eq!(
        plan_tagged
            .actions
            .first()
            .map(ToString::to_string)
            .as_deref(),
        Some("remove logical volumes linstor-pool, pvc-1 of other")
    );
    // Untagged, another name, no seed layout: someone else's.
    let mut foreign = provisioned(SatelliteIdReading::Absent);
    vg_mut(&mut foreign).name = "other".into();
    assert!(matches!(
        plan(&foreign, &config()),
        Err(Refusal::ForeignVolumeGroup { .. })
    ));
}

/// At 75% used the pool's metadata is doubled — when the VG has the room (the
/// metadata's growth and its spare's); without room, or below 75%, a start writes
/// nothing (a pool an older version made, with no free extents, stays as it is).
#[test]
fn full_pool_metadata_is_doubled_only_with_room() {
    let used = |percent: u128| {
        Some(PoolMetadataUsage {
            used_bytes: Bytes((EXTENT.0 * percent).div_ceil(100)),
            total_bytes: EXTENT,
            mode: ThinPoolMode::ReadWrite,
            needs_check: false,
        })
    };
    let mut full = provisioned(tag("node-01"));
    full.pool_metadata_usage = used(80);
    assert!(planned(&full, &config()).is_empty());
    vg_mut(&mut full).free_extents = Extents::new(2);
    let plan = planned(&full, &config());
    assert_eq!(
        plan.actions,
        vec![Action::GrowFullPoolMetadata {
            volume_group: vg("linstor-vg"),
            pool: lv("linstor-pool"),
            from_bytes: EXTENT,
            to_bytes: EXTENT * 2u64,
            used_percent: 80,
        }]
    );
    assert!(plan.actions[0].to_string().contains("it is 80% used"));
    // One extent is not room for the metadata and its spare: nothing.
    vg_mut(&mut full).free_extents = Extents::new(1);
    assert!(planned(&full, &config()).is_empty());
    // Below 75%, the room stays free.
    vg_mut(&mut full).free_extents = Extents::new(2);
    full.pool_metadata_usage = used(74);
    assert!(planned(&full, &config()).is_empty());
    // Doubled and grown in one start: the rest beyond the new room goes to data.
    full.pool_metadata_usage = used(90);
    vg_mut(&mut full).free_extents = Extents::new(10);
    assert_eq!(
        kinds(&planned(&full, &config())),
        vec!["lvextend-full-metadata", "pool-extend"]
    );
}

/// An orphan PV (an interrupted reset) on a partition of 4 GiB or more with LVM's
/// default area holds no LVs: it is made again with the sized area rather than
/// keeping room for ~1,200 LVs for the node's life. One with the sized area, or on
/// a small partition, is used as it is.
#[test]
fn an_orphan_pv_with_a_small_area_gets_the_sized_one() {
    let big = Bytes(8 << 30);
    let observed = orphan_pv(big);
    let plan = planned(&observed, &config());
    assert_eq!(kinds(&plan), ["pvcreate-ff", "vgcreate", "pool-create"]);
    assert!(matches!(&plan.actions[0],
        Action::ReinitializePhysicalVolume { metadata_area_bytes: Some(area), small_area: true, .. }
            if *area == sizing::sized_metadata_area()));
    assert!(
        plan.actions[0]
            .to_string()
            .contains("metadata area for 10000 LVs"),
        "{}",
        plan.actions[0]
    );
    let mut sized = orphan_pv(big);
    if let Some(pv) = sized.physical_volume.as_mut() {
        pv.pe_start_bytes = sizing::pe_start_for(sizing::metadata_area_request(big));
    }
    assert_eq!(
        kinds(&planned(&sized, &config())),
        ["vgcreate", "pool-create"]
    );
    assert_eq!(
        kinds(&planned(&orphan_pv(GIB), &config())),
        ["vgcreate", "pool-create"]
    );
}

/// The kernel grows neither metadata nor data of a pool flagged needs_check (nor
/// of a read-only one), and a `_tmeta` whose size the kernel does not show was
/// grown once already without effect: a start writes nothing to the pool, and
/// logs why, naming the repair.
#[test]
fn a_pool_the_kernel_will_not_grow_is_left_alone_and_named() {
    let usage = |percent: u128, total: Bytes, mode, needs_check| {
        Some(PoolMetadataUsage {
            used_bytes: Bytes((total.0 * percent).div_ceil(100)),
            total_bytes: total,
            mode,
            needs_check,
        })
    };
    let mut full = provisioned(tag("node-01"));
    vg_mut(&mut full).free_extents = Extents::new(10);
    full.pool_metadata_usage = usage(90, EXTENT, ThinPoolMode::ReadWrite, false);
    let growing = planned(&full, &config());
    assert_eq!(
        kinds(&growing),
        vec!["lvextend-full-metadata", "pool-extend"]
    );
    assert!(pool_warnings(&full, &config(), &growing).is_empty());
    for (mode, needs_check, says) in [
        (ThinPoolMode::ReadWrite, true, "needs_check"),
        (ThinPoolMode::ReadOnly, false, "read-only"),
    ] {
        full.pool_metadata_usage = usage(90, EXTENT, mode, needs_check);
        let plan = planned(&full, &config());
        assert!(plan.is_empty(), "{says}: {:?}", plan.actions);
        let warnings = pool_warnings(&full, &config(), &plan);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains(says), "{warnings:?}");
        assert!(
            warnings[0].contains("lvconvert --repair linstor-vg/linstor-pool"),
            "{warnings:?}"
        );
    }
    // LVM's `_tmeta` was doubled, the kernel still uses the old size: no second
    // doubling on top, whatever the use.
    full.pool_metadata_usage = usage(95, Bytes(EXTENT.0 / 2), ThinPoolMode::ReadWrite, false);
    let plan = planned(&full, &config());
    assert!(plan.is_empty(), "{:?}", plan.actions);
    let warnings = pool_warnings(&full, &config(), &plan);
    assert!(
        warnings.len() == 1 && warnings[0].contains("did not reach the kernel"),
        "{warnings:?}"
    );
    // Out of data space is the state growing the data cures: the pool grows.
    full.pool_metadata_usage = usage(10, EXTENT, ThinPoolMode::OutOfDataSpace, false);
    assert_eq!(kinds(&planned(&full, &config())), vec!["pool-extend"]);
}

/// A start that finds the metadata at 75% or more and cannot double it says so
/// (status alone used to).
#[test]
fn full_metadata_without_room_is_logged() {
    let mut full = provisioned(tag("node-01"));
    full.pool_metadata_usage = Some(PoolMetadataUsage {
        used_bytes: Bytes((EXTENT.0 * 8).div_ceil(10)),
        total_bytes: EXTENT,
        mode: ThinPoolMode::ReadWrite,
        needs_check: false,
    });
    let plan = planned(&full, &config());
    assert!(plan.is_empty());
    let warnings = pool_warnings(&full, &config(), &plan);
    assert!(
        warnings.len() == 1 && warnings[0].contains("80% used") && warnings[0].contains("no room"),
        "{warnings:?}"
    );
}

/// A pool on an orphan PV (made by hand, or left by an interrupted run) counts the
/// PV's own extents: a second metadata area at the end takes one here, and a pool
/// planned over the partition's would ask LVM for an extent that is not there.
#[test]
fn a_pool_on_an_orphan_pv_counts_its_own_extents() {
    let size = PE_START + EXTENT * 128u64;
    let mut observed = orphan_pv(size);
    if let Some(pv) = observed.physical_volume.as_mut() {
        pv.metadata_bytes_at_end = MIB;
    }
    let data = planned(&observed, &config())
        .actions
        .iter()
        .find_map(|a| match a {
            Action::CreateThinPool { data_extents, .. } => Some(*data_extents),
            _ => None,
        });
    // 127 extents: one of metadata, one of spare, two kept to double them.
    assert_eq!(data, Some(Extents::new(123)));
}

/// The area size of [`torn`]'s metadata area.
const TORN_AREA: u64 = 1_044_480;

/// A copy of 2000 bytes at sector `seqno` of the buffer.
fn copy(seqno: u64, volume_group: &str, id: Option<&str>) -> crate::observe::state::MetadataCopy {
    copy_at(512 * seqno, seqno, volume_group, id)
}

fn copy_at(
    offset: u64,
    seqno: u64,
    volume_group: &str,
    id: Option<&str>,
) -> crate::observe::state::MetadataCopy {
    crate::observe::state::MetadataCopy {
        offset,
        size: 2000,
        checksum: 0x1000 + seqno as u32,
        seqno,
        volume_group: volume_group.to_owned(),
        vg_id: uuid("vguuid-vguu-idvg-uuid-vguu-idvg-uuidvg"),
        names_this_pv: true,
        spans_other_pvs: false,
        satellite_id: id.map(str::to_owned),
        seed_layout: false,
        padded: true,
        next_offset: crate::observe::lvm::mda::next_text_offset(TORN_AREA, offset, 2000),
        system_id: None,
        lock_type: None,
    }
}

/// An orphan PV whose one metadata area is torn at `slot_offset`, with `copies`
/// left in its buffer.
fn torn(slot_offset: u64, copies: Vec<crate::observe::state::MetadataCopy>) -> ObservedPartition {
    let mut observed = orphan_pv(gib(1));
    if let Some(pv) = observed.physical_volume.as_mut() {
        pv.torn_metadata = Some(crate::observe::state::TornMetadata {
            area_start: 4096,
            area_size: TORN_AREA,
            slot_offset,
            slot_size: 2279,
            recorded_checksum: 0xaaaa,
            computed_checksum: 0xbbbb,
            areas_in_use: 1,
            metadata_areas: 1,
            stray_sectors: Vec::new(),
            first_text: slot_offset == 512,
            copies,
            listed_by: Vec::new(),
            unreadable: Vec::new(),
        });
    }
    observed
}

fn torn_mut(observed: &mut ObservedPartition) -> &mut crate::observe::state::TornMetadata {
    match observed
        .physical_volume
        .as_mut()
        .and_then(|pv| pv.torn_metadata.as_mut())
    {
        Some(t) => t,
        None => panic!("not torn"),
    }
}

fn torn_refusal(observed: &ObservedPartition) -> String {
    match plan(observed, &config()) {
        Err(refusal @ Refusal::TornMetadataNotOurs { .. }) => refusal.to_string(),
        other => panic!("expected a torn-metadata refusal, got {other:?}"),
    }
}

#[test]
fn a_torn_commit_of_our_vg_is_restored_from_the_copy_committed_just_before_it() {
    // seqno 5 at 2560..4560: LVM's next commit goes to 4608.
    let observed = torn(
        4608,
        vec![
            copy(5, "linstor-vg", Some("node-01")),
            copy(4, "linstor-vg", Some("node-01")),
        ],
    );
    let plan = planned(&observed, &config());
    assert_eq!(kinds(&plan), ["restore-torn"]);
    assert!(plan.reset.is_none(), "a torn commit never resets");
    assert!(matches!(
        &plan.actions[0],
        Action::RestoreTornMetadata {
            seqno: 5,
            offset: 2560,
            size: 2000,
            checksum: 0x1005,
            area_start: 4096,
            ..
        }
    ));
    assert!(plan.actions[0]
        .to_string()
        .contains("seqno 5, at byte 6656"));
    // Another satellite ID recorded: restored all the same (the next round resets, as
    // it would have without the power loss).
    let other_id = torn(4608, vec![copy(5, "linstor-vg", Some("node-02"))]);
    assert_eq!(kinds(&planned(&other_id, &config())), ["restore-torn"]);
    // Not the highest seqno: the adjacent one. A higher seqno elsewhere (an earlier
    // incarnation of the VG, or a copy of another PV) is not what the torn commit
    // followed.
    let mut mixed = torn(
        4096,
        vec![
            copy(9, "linstor-vg", Some("old")),
            copy(4, "linstor-vg", Some("node-01")),
        ],
    );
    assert!(matches!(
        &planned(&mixed, &config()).actions[0],
        Action::RestoreTornMetadata { seqno: 4, .. }
    ));
    torn_mut(&mut mixed).copies[0].names_this_pv = false;
    assert!(matches!(
        &planned(&mixed, &config()).actions[0],
        Action::RestoreTornMetadata { seqno: 4, .. }
    ));
    // A torn commit at the buffer's start after a wrap: its predecessor ends within
    // the last sector of the area.
    let wrapped = torn(
        512,
        vec![
            copy_at(TORN_AREA - 2100, 7, "linstor-vg", Some("node-01")),
            copy(3, "linstor-vg", Some("node-01")),
        ],
    );
    assert!(matches!(
        &planned(&wrapped, &config()).actions[0],
        Action::RestoreTornMetadata { seqno: 7, .. }
    ));
}

/// Several commits of one flush epoch lost (the pool's `lvcreate` commits three
/// times with no flush): the predecessor is gone too, and the newest intact copy of
/// this PV is the state before them, restored unless the lost span (from its end to
/// the torn text) could have wrapped over it.
#[test]
fn a_torn_commit_whose_predecessor_is_lost_too_restores_the_newest_intact_copy() {
    // seqno 5 at 2560..4560; commits 6 and 7 lost at 4608 and 6656, 8 torn at 9216.
    let observed = torn(
        9216,
        vec![
            copy(5, "linstor-vg", Some("node-01")),
            copy(4, "linstor-vg", Some("node-01")),
        ],
    );
    let plan = planned(&observed, &config());
    assert!(plan.reset.is_none(), "a torn commit never resets");
    assert!(
        matches!(
            &plan.actions[..],
            [Action::RestoreTornMetadata {
                seqno: 5,
                predecessor: false,
                offset: 2560,
                ..
            }]
        ),
        "{plan:?}"
    );
    assert!(plan.actions[0]
        .to_string()
        .contains("newest intact metadata copy (seqno 5, at byte 6656)"));
    // A higher seqno of another PV (a reset's leftovers) is not the state before.
    let mut old = copy(30, "linstor-vg", Some("node-00"));
    old.names_this_pv = false;
    let mut with_old = observed.clone();
    torn_mut(&mut with_old).copies.insert(0, old);
    assert!(matches!(
        &planned(&with_old, &config()).actions[..],
        [Action::RestoreTornMetadata { seqno: 5, .. }]
    ));
    // The lost span wraps over the copy: it cannot be the state before them.
    let mut near_end = torn(2048, vec![copy_at(3072, 5, "linstor-vg", Some("node-01"))]);
    torn_mut(&mut near_end).slot_size = 1500;
    let text = torn_refusal(&near_end);
    assert!(text.contains("wrap over it"), "{text}");
    // A VG made again on this PV (a reset cut off after vgremove, then vgcreate on
    // the orphan PV): the removed VG's texts stay in the buffer, its seqnos above
    // the new VG's. Copies of two VG ids: refused, never the removed VG restored.
    let mut removed = copy_at(40960, 80, "linstor-vg", Some("node-01"));
    removed.vg_id = uuid("oldvgu-idol-dvgu-idol-dvgu-idol-dvguid");
    let mut remade = observed.clone();
    torn_mut(&mut remade).copies.insert(0, removed);
    let text = torn_refusal(&remade);
    assert!(
        text.contains("a volume group was made again on it"),
        "{text}"
    );
    // After an earlier recovery the restored text is in the buffer twice: where
    // pvck wrote it back (512, unpadded) and where LVM first wrote it (2560). LVM
    // went on from 512: the lost commits lie from 2560 (their writes never landed,
    // so the old copy's bytes are still there) up to the torn text at 6656. The
    // span fits behind both places, and the text counts as padded.
    let mut by_pvck = copy_at(512, 5, "linstor-vg", Some("node-01"));
    by_pvck.padded = false;
    by_pvck.checksum = 0x1005;
    let twice = torn(
        6656,
        vec![by_pvck.clone(), copy(5, "linstor-vg", Some("node-01"))],
    );
    assert!(
        matches!(
            &planned(&twice, &config()).actions[..],
            [Action::RestoreTornMetadata { seqno: 5, .. }]
        ),
        "{:?}",
        plan_result(&twice)
    );
    // Two different texts under one seqno: refused.
    let mut differs = by_pvck;
    differs.checksum = 0x9999;
    let text = torn_refusal(&torn(
        6656,
        vec![differs, copy(5, "linstor-vg", Some("node-01"))],
    ));
    assert!(
        text.contains("two different intact texts carry seqno 5"),
        "{text}"
    );
    // Not ours, or no copy of this PV at all: refused as before.
    let text = torn_refusal(&torn(9216, vec![copy(5, "other-vg", Some("node-01"))]));
    assert!(text.contains("not the configured VOLUME_GROUP"), "{text}");
    let text = torn_refusal(&torn(9216, vec![]));
    assert!(text.contains("none lists this PV"), "{text}");
}

#[test]
fn the_next_commit_goes_where_lvm_puts_it() {
    use crate::observe::lvm::mda::next_text_offset;
    assert_eq!(next_text_offset(TORN_AREA, 512, 1000), Some(1536));
    assert_eq!(next_text_offset(TORN_AREA, 512, 1024), Some(1536));
    assert_eq!(next_text_offset(TORN_AREA, 512, 1025), Some(2048));
    // Less than a sector left after the text: back to the start.
    assert_eq!(next_text_offset(TORN_AREA, TORN_AREA - 600, 200), Some(512));
    assert_eq!(
        next_text_offset(TORN_AREA, TORN_AREA - 1024, 400),
        Some(TORN_AREA - 512)
    );
    // A wrapped text: it continues after the header.
    assert_eq!(
        next_text_offset(TORN_AREA, TORN_AREA - 512, 1000),
        Some(1024)
    );
    assert_eq!(next_text_offset(TORN_AREA, 100, 10), None);
    assert_eq!(next_text_offset(TORN_AREA, TORN_AREA, 10), None);
    assert_eq!(next_text_offset(TORN_AREA, 512, u64::MAX), None);
}

/// A tear of the seed adoption's tagging commit: the predecessor is the seed tool's
/// untagged VG with its `metadata` volume, restored so the next round adopts it again.
#[test]
fn a_torn_seed_adoption_restores_the_untagged_seed_layout() {
    let mut seed = copy(5, "linstor-vg", None);
    seed.seed_layout = true;
    let observed = torn(4608, vec![seed]);
    let plan = planned(&observed, &config());
    assert_eq!(kinds(&plan), ["restore-torn"]);
    assert!(plan.reset.is_none());
}

#[test]
fn a_torn_commit_not_provably_ours_is_refused_naming_the_repair() {
    let cases = [
        (
            torn(4608, vec![copy(5, "other-vg", Some("node-01"))]),
            "not the configured VOLUME_GROUP linstor-vg",
        ),
        (
            torn(4608, vec![copy(5, "linstor-vg", None)]),
            "records no satellite ID of this tool's and is no seed-tool layout",
        ),
        (
            torn(4608, vec![]),
            "no intact copy ends where the torn text begins",
        ),
    ];
    for (observed, why) in cases {
        let text = torn_refusal(&observed);
        assert!(text.contains(why), "{text}");
        assert!(text.contains("pvck --repair -f FILE /dev/vda1"), "{text}");
    }
    assert!(torn_refusal(&torn(9216, vec![])).contains("at byte 13312"));
    let ours = torn(4608, vec![copy(5, "linstor-vg", Some("node-01"))]);
    let mut spanning = ours.clone();
    torn_mut(&mut spanning).copies[0].spans_other_pvs = true;
    let mut two_areas = ours.clone();
    torn_mut(&mut two_areas).areas_in_use = 2;
    torn_mut(&mut two_areas).metadata_areas = 2;
    let mut ignored_second_area = ours.clone();
    torn_mut(&mut ignored_second_area).metadata_areas = 2;
    let mut system_id = ours.clone();
    torn_mut(&mut system_id).copies[0].system_id = Some("otherhost".into());
    let mut lock_type = ours.clone();
    torn_mut(&mut lock_type).copies[0].lock_type = Some("sanlock".into());
    let mut unpadded = ours.clone();
    torn_mut(&mut unpadded).copies[0].padded = false;
    let mut not_this_pv = ours.clone();
    torn_mut(&mut not_this_pv).copies[0].names_this_pv = false;
    let mut two_predecessors = ours.clone();
    let twin = copy_at(512, 2, "linstor-vg", Some("node-01"));
    torn_mut(&mut two_predecessors)
        .copies
        .push(crate::observe::state::MetadataCopy {
            size: 4000,
            next_offset: Some(4608),
            ..twin
        });
    let mut listed = torn(512, vec![]);
    torn_mut(&mut listed).listed_by.push(VgListingPv {
        volume_group: "elsewhere".into(),
        devices: vec![PathBuf::from("/dev/vdb1")],
    });
    for (observed, why) in [
        (spanning, "also uses other PVs"),
        (two_areas, "2 metadata areas (2 in use"),
        (ignored_second_area, "2 metadata areas (1 in use"),
        (system_id, "records system ID otherhost"),
        (lock_type, "records lock type sanlock"),
        (unpadded, "not zero-padded"),
        (not_this_pv, "does not list this PV"),
        (
            two_predecessors,
            "2 intact copies end where the torn text begins",
        ),
        (listed, "volume group elsewhere lists this PV"),
    ] {
        let text = torn_refusal(&observed);
        assert!(text.contains(why), "{text}");
    }
}

#[test]
fn a_torn_first_commit_with_nothing_of_this_pv_left_starts_over() {
    let first = torn(512, vec![]);
    let plan = planned(&first, &config());
    assert_eq!(kinds(&plan), ["erase-torn-pv"]);
    assert!(plan.reset.is_none());
    // Copies of a PV a reset replaced do not count: still a first commit.
    let mut old = copy(40, "linstor-vg", Some("node-00"));
    old.names_this_pv = false;
    assert_eq!(
        kinds(&planned(&torn(512, vec![old.clone()]), &config())),
        ["erase-torn-pv"]
    );
    // A copy of this PV anywhere in the buffer: the slot at 512 may follow a wrap
    // (or a pvck --repair, which writes there), so the text is not provably a
    // first commit; refused, never erased.
    let mut ours_later = copy(40, "linstor-vg", Some("node-01"));
    ours_later.padded = false;
    let text = torn_refusal(&torn(512, vec![old.clone(), ours_later]));
    assert!(
        text.contains(
            "the newest intact copy listing this PV is volume group linstor-vg at seqno 40"
        ),
        "{text}"
    );
    assert!(text.contains("not zero-padded"), "{text}");
    // Bytes nothing accounts for within the 4 KiB pvcreate zeroes: not erased on the
    // absence of recognised copies.
    let mut strays = torn(512, vec![old]);
    torn_mut(&mut strays).stray_sectors = vec![2048, 8192];
    let text = torn_refusal(&strays);
    assert!(
        text.contains("1 sector(s) of the area's first 4096 bytes, which pvcreate zeroes (the first at byte 6144)"),
        "{text}"
    );
    // Beyond them: older than the label (a removed PV's copy's tail), not a reason
    // to stop.
    torn_mut(&mut strays).stray_sectors = vec![4096, 8192];
    assert_eq!(kinds(&planned(&strays, &config())), ["erase-torn-pv"]);
    let mut ignored_second_area = torn(512, vec![]);
    torn_mut(&mut ignored_second_area).metadata_areas = 2;
    assert!(torn_refusal(&ignored_second_area).contains("2 metadata areas"));
    let mut huge = torn(512, vec![]);
    torn_mut(&mut huge).slot_size = TORN_AREA / 2;
    assert!(torn_refusal(&huge).contains("more than half"));
}

/// An orphan PV whose one metadata area's header sector is all zeros, with `copies`
/// left in its buffer.
fn unwritten_header(copies: Vec<crate::observe::state::MetadataCopy>) -> ObservedPartition {
    let mut observed = orphan_pv(gib(1));
    if let Some(pv) = observed.physical_volume.as_mut() {
        pv.unwritten_metadata_header = Some(crate::observe::state::UnwrittenMetadataHeader {
            area_start: 4096,
            area_size: TORN_AREA,
            metadata_areas: 1,
            unwritten_areas: 1,
            marked_in_use: false,
            stray_sectors: Vec::new(),
            pv_uuid_at: Vec::new(),
            copies,
            listed_by: Vec::new(),
            unreadable: Vec::new(),
        });
    }
    observed
}

/// A label whose metadata area never got its header (a power loss inside the first
/// `pvcreate`): erased and started over when nothing says a VG lived there; with a
/// copy of this PV in the buffer, anything unexplained there, another device listing
/// it or more than one area, refused with nothing written.
#[test]
fn a_label_whose_metadata_header_never_arrived_starts_over_only_when_nothing_lived_there() {
    use crate::plan::UnreadablePv;
    let blank = unwritten_header(vec![]);
    let erase = |observed: &ObservedPartition| match plan(observed, &config()) {
        Ok(p) => p.actions,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(
        erase(&blank),
        vec![Action::EraseTornPhysicalVolume {
            device: PathBuf::from("/dev/vda1"),
            because: UnreadablePv::HeaderNeverWritten,
        }]
    );
    // A reset's pvcreate: the buffer still holds the removed PV's copies (another
    // uuid).
    let mut earlier_pv = copy(3, "linstor-vg", Some("node-01"));
    earlier_pv.names_this_pv = false;
    let after_reset = unwritten_header(vec![earlier_pv]);
    assert_eq!(erase(&after_reset).len(), 1);

    let refused = |observed: &ObservedPartition, why: &str| match plan(observed, &config()) {
        Err(refusal @ Refusal::UnwrittenMetadataHeader { .. }) => {
            let text = refusal.to_string();
            assert!(text.contains(why), "{text}");
            assert!(
                text.contains("wipefs --all --types LVM2_member /dev/vda1"),
                "{text}"
            );
        }
        other => panic!("expected a refusal naming {why}, got {other:?}"),
    };
    refused(
        &unwritten_header(vec![copy(3, "linstor-vg", Some("node-01"))]),
        "volume group linstor-vg at seqno 3",
    );
    let with = |change: &dyn Fn(&mut crate::observe::state::UnwrittenMetadataHeader)| {
        let mut observed = blank.clone();
        if let Some(u) = observed
            .physical_volume
            .as_mut()
            .and_then(|pv| pv.unwritten_metadata_header.as_mut())
        {
            change(u);
        }
        observed
    };
    // Beyond the 4 KiB pvcreate zeroes: the tail of a removed PV's copy, kept.
    assert_eq!(
        erase(&with(&|u| u.stray_sectors = vec![4096, 4608])).len(),
        1
    );
    refused(
        &with(&|u| u.stray_sectors = vec![1024, 4096]),
        "the first at byte 5120",
    );
    refused(
        &with(&|u| {
            u.stray_sectors = vec![4096];
            u.pv_uuid_at = vec![4200];
        }),
        "names this PV's uuid at byte 8296",
    );
    refused(&with(&|u| u.metadata_areas = 2), "2 metadata areas");
    // Marked in use: a VG's member (its metadata perhaps on other disks, this area
    // ignored), never erased on what this area lacks.
    refused(
        &with(&|u| u.marked_in_use = true),
        "marks it as a member of a volume group",
    );
    refused(
        &with(&|u| {
            u.listed_by = vec![crate::observe::state::VgListingPv {
                volume_group: "data".into(),
                devices: vec![PathBuf::from("/dev/sdb")],
            }]
        }),
        "volume group data lists this PV",
    );
    refused(
        &with(&|u| u.unreadable = vec![(PathBuf::from("/dev/sdc"), "I/O error".into())]),
        "/dev/sdc cannot be read",
    );
}

/// The erase and the restore are checked like every other writing step: never on
/// a partition something holds, nor where LVM's md check refuses the next round's
/// pvcreate (or pvck's label write).
#[test]
fn torn_metadata_steps_pass_the_preflight_checks() {
    use crate::observe::md_magic::MdMagic;
    use crate::observe::state::{Preflight, PreflightFacts};
    let magic = PreflightFacts {
        lvm_md_component: Some(MdMagic {
            format: "md 1.0",
            offset: 1_073_733_632,
        }),
        ..PreflightFacts::default()
    };
    let held = PreflightFacts {
        users: vec!["held by dm-7".into()],
        ..PreflightFacts::default()
    };
    let erase = torn(512, vec![]);
    let restore = torn(4608, vec![copy(5, "linstor-vg", Some("node-01"))]);
    let unwritten = unwritten_header(vec![]);
    for observed in [erase, restore, unwritten] {
        assert!(crate::plan::preflight::needs_facts(
            &observed,
            &planned(&observed, &config())
        ));
        for (facts, why) in [(&magic, "md 1.0"), (&held, "dm-7")] {
            let mut gathered = observed.clone();
            gathered.preflight = Preflight::Gathered(facts.clone());
            let refused = refusal(&gathered, &config());
            assert!(refused.contains(why), "{refused}");
        }
    }
}

/// `provisioned` with the pool's kernel transaction id `on_disk` against LVM's
/// `recorded` one, and its thin volumes kept only when `with_thin_volumes`.
fn pool_with_transactions(
    on_disk: u64,
    recorded: u64,
    with_thin_volumes: bool,
) -> ObservedPartition {
    let mut observed = provisioned(tag("node-01"));
    let lvs = &mut vg_mut(&mut observed).logical_volumes;
    if !with_thin_volumes {
        lvs.retain(|lv| !matches!(lv.kind, LvKind::Thin { .. }));
    }
    for lv in lvs {
        if let LvKind::ThinPool {
            transaction_mismatch,
            ..
        } = &mut lv.kind
        {
            *transaction_mismatch = (on_disk != recorded)
                .then_some(crate::observe::state::TransactionMismatch { on_disk, recorded });
        }
    }
    observed
}

#[test]
fn a_pool_without_thin_volumes_reading_an_earlier_pools_metadata_is_removed() {
    let observed = pool_with_transactions(1, 0, false);
    let plan = planned(&observed, &config());
    assert_eq!(kinds(&plan), ["lvremove-stale-pool"]);
    assert_eq!(
        plan.actions[0].to_string(),
        "remove thin pool linstor-vg/linstor-pool to create it again: its metadata on disk belongs to an earlier pool (transaction 1 on disk, LVM expects 0 with no thin volumes)"
    );
    assert!(plan.reset.is_none());
    // Once removed, the VG without its pool gets it created again.
    let mut removed = observed.clone();
    vg_mut(&mut removed)
        .logical_volumes
        .retain(|lv| !lv.name.starts_with("linstor-pool") && lv.name != "lvol0_pmspare");
    vg_mut(&mut removed).free_extents = Extents::new(255);
    assert_eq!(kinds(&planned(&removed, &config())), ["pool-create"]);
}

#[test]
fn a_pool_with_thin_volumes_and_another_transaction_on_disk_is_refused() {
    let observed = pool_with_transactions(1, 3, true);
    match plan(&observed, &config()) {
        Err(refusal @ Refusal::PoolTransactionMismatch { .. }) => {
            let text = refusal.to_string();
            for part in [
                "pvc-1",
                "transaction 1",
                "transaction 3",
                "thin_dump",
                "lvconvert --repair linstor-vg/linstor-pool",
                "Nothing was written",
            ] {
                assert!(text.contains(part), "{part:?} missing from: {text}");
            }
        }
        other => panic!("expected a transaction-mismatch refusal, got {other:?}"),
    }
}

/// A pool past transaction 0 has had volumes: its mismatch is refused even when
/// LVM lists none now (rolled-back metadata of ours must not cost the pool).
#[test]
fn a_pool_past_transaction_zero_with_another_transaction_on_disk_is_refused() {
    let observed = pool_with_transactions(5, 2, false);
    match plan(&observed, &config()) {
        Err(refusal @ Refusal::PoolTransactionMismatch { .. }) => {
            let text = refusal.to_string();
            assert!(text.contains("has had some"), "{text}");
        }
        other => panic!("expected a transaction-mismatch refusal, got {other:?}"),
    }
}

#[test]
fn matching_transaction_ids_leave_nothing_to_do() {
    for with_thin_volumes in [false, true] {
        let observed = pool_with_transactions(4, 4, with_thin_volumes);
        assert!(planned(&observed, &config()).actions.is_empty());
    }
}
