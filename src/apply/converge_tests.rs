//! `converge` driven end to end on a simulated partition: which commands each start
//! runs, what it leaves, and how it stops when it cannot finish.
use super::converge::{converge_on, ConvergeError, Outcome, MAX_ROUNDS};
use super::lock::LockError;
use super::simulated_partition::{
    bytes, config, config_for, thin_volume, whole, PoolActivity, RecordingLvm, SimulatedMachine,
    SimulatedPartition, DEVNODE, EXTENT, GIB, POOL, POOL_DM, SEED_LV, VG,
};
use crate::config::ProvisionConfig;
use crate::observe::live::LiveError;
use crate::observe::phase_timer::PhaseTimer;
use crate::observe::state::{DevicesFileFacts, LvKind, SatelliteIdReading};
use crate::observe::vg_dev_dir::{LinkReach, VgDevEntry};
use crate::plan::{plan, Action, Refusal};
use crate::units::Extents;
use proptest::prelude::*;
use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;

const PVCREATE: &str = "pvcreate --quiet --quiet /dev/vda1";
const VGCREATE: &str = "vgcreate --addtag linstor-satellite-id=node-01 linstor-vg /dev/vda1";
/// The pool on a 1 GiB partition: 255 extents less one of metadata (twice LVM's
/// 2 MiB minimum, rounded up), its spare and two kept free to double them once.
const POOL_CREATE: &str = "lvcreate --yes --type thin-pool --extents 251 --poolmetadatasize 4096k --chunksize 512k --zero n --name linstor-pool linstor-vg";
/// The 3 GiB a partition grown from 1 GiB to 4 GiB adds.
const POOL_EXTEND: &str = "lvextend --extents +768 linstor-vg/linstor-pool";
const POOL_ACTIVATE: &str = "lvchange --activate y --ignoreactivationskip linstor-vg/linstor-pool";
const POOL_REFRESH: &str = "lvchange --refresh linstor-vg/linstor-pool";
const VGTAG: &str = "vgchange --addtag linstor-satellite-id=node-01 linstor-vg";
const SEED_ACTIVATE: &str = "lvchange --activate y linstor-vg/metadata";
const RESET: [&str; 6] = [
    "lvremove --force linstor-vg",
    "vgremove --force linstor-vg",
    "pvremove --yes /dev/vda1",
    PVCREATE,
    VGCREATE,
    POOL_CREATE,
];

/// A simulated partition with the machine observing it and the executor writing it
/// (shared with the preflight tests).
pub(super) struct Bed {
    partition: Rc<RefCell<SimulatedPartition>>,
    pub(super) machine: SimulatedMachine,
    pub(super) lvm: RecordingLvm,
}

impl Bed {
    pub(super) fn new(start: SimulatedPartition) -> Bed {
        let partition = Rc::new(RefCell::new(start));
        Bed {
            machine: SimulatedMachine::new(&partition),
            lvm: RecordingLvm::new(&partition),
            partition,
        }
    }

    fn converge(&mut self, config: &ProvisionConfig) -> Result<Outcome, ConvergeError> {
        self.run(config, false)
    }

    pub(super) fn run(
        &mut self,
        config: &ProvisionConfig,
        dry_run: bool,
    ) -> Result<Outcome, ConvergeError> {
        converge_on(
            &mut self.machine,
            config,
            &mut self.lvm,
            dry_run,
            &mut PhaseTimer::start("test"),
        )
    }

    /// A new run on the same partition (a restarted container).
    fn restart(&mut self) {
        self.lvm = RecordingLvm::new(&self.partition);
    }

    fn state(&self) -> SimulatedPartition {
        self.partition.borrow().clone()
    }

    fn log(&self) -> Vec<&str> {
        self.lvm.log.iter().map(String::as_str).collect()
    }
}

fn converged(outcome: Result<Outcome, ConvergeError>) -> (usize, usize) {
    match outcome {
        Ok(Outcome::Converged {
            commands, rounds, ..
        }) => (commands, rounds),
        other => panic!("expected convergence, got {other:?}"),
    }
}

/// What every successful run leaves: the configured VG tagged for the satellite, the
/// pool on all of it but the room to double its metadata once (none on a partition
/// too small for it) and serving, nothing left over, nothing more to do.
fn assert_provisioned(sim: &SimulatedPartition, config: &ProvisionConfig) {
    let next = plan(&sim.observed, config);
    assert!(
        next.as_ref().is_ok_and(|p| p.is_empty()),
        "next plan: {next:?}"
    );
    let Some(vg) = sim.vg() else {
        panic!("no VG: {sim:?}")
    };
    assert_eq!(vg.name, config.volume_group);
    assert_eq!(
        vg.satellite_id,
        SatelliteIdReading::Tag(config.satellite_id.clone())
    );
    let extents_of = |suffix: &str| {
        vg.logical_volumes
            .iter()
            .find(|lv| lv.name.ends_with(suffix))
            .and_then(|lv| vg.extent_size.extents_in(lv.size_bytes))
            .unwrap_or(Extents::ZERO)
    };
    let room = crate::plan::sizing::doubling_room(
        extents_of("_tmeta"),
        extents_of("_pmspare"),
        vg.extent_size,
    );
    assert!(
        vg.free_extents.is_zero() || Some(vg.free_extents) == room,
        "free {:?}, room {room:?}: {vg:?}",
        vg.free_extents
    );
    let size = sim.observed.partition.size_bytes;
    assert_eq!(
        vg.pv_extent_count.count(),
        whole(size - vg.pe_start_bytes) / whole(vg.extent_size.bytes())
    );
    assert_eq!(sim.pool_state(), Some((true, true)), "{vg:?}");
    assert!(sim.observed.leftovers.stale_devices.is_empty());
}

#[test]
fn a_blank_partition_is_provisioned_with_the_pool_sized_from_the_vg_made() {
    let mut bed = Bed::new(SimulatedPartition::blank(GIB));
    // Round 1 sizes the pool from the VG round 0 made.
    assert_eq!(converged(bed.converge(&config())), (3, 2));
    assert_eq!(bed.log(), [PVCREATE, VGCREATE, POOL_CREATE]);
    assert_eq!(bed.machine.locks_taken, 1);
    assert_provisioned(&bed.state(), &config());
}

/// LVM's `pe_start` follows the device's I/O hints: a VG with fewer extents than
/// predicted still gets its pool, sized from the VG observed after `vgcreate`
/// (an exact `--extents` from the prediction would be refused — after a reset
/// had destroyed the old VG).
#[test]
fn the_pool_fits_a_vg_smaller_than_predicted() {
    for start in [
        SimulatedPartition::blank(GIB),
        SimulatedPartition::provisioned(GIB, "node-02"),
    ] {
        let mut start = start;
        // More than the doubling room the prediction leaves free (2 extents).
        start.data_alignment_extra = 16 << 20;
        let mut bed = Bed::new(start);
        let predicted = match bed.run(&config(), true) {
            Ok(Outcome::Planned(plan)) => plan.actions.iter().find_map(|a| match a {
                Action::CreateThinPool { data_extents, .. } => Some(*data_extents),
                _ => None,
            }),
            other => panic!("{other:?}"),
        };
        let (_, rounds) = converged(bed.converge(&config()));
        assert_eq!(rounds, 2);
        let state = bed.state();
        assert_provisioned(&state, &config());
        let made = bed.log().into_iter().find(|c| c.contains("thin-pool"));
        let four_fewer = predicted.map(|p| format!("--extents {} ", p.count() - 4));
        assert!(
            made.as_ref()
                .zip(four_fewer.as_ref())
                .is_some_and(|(m, t)| m.contains(t.as_str())),
            "{made:?} {four_fewer:?}"
        );
    }
}

/// An orphan PV with LVM's default area on 8 GiB (a reset cut off after an older
/// version's pvcreate) is made again with the sized area, then provisioned.
#[test]
fn an_orphan_pv_with_the_default_area_is_made_again_sized() {
    let mut bed = Bed::new(SimulatedPartition::orphan_pv_with_default_area(8 * GIB));
    let (_, rounds) = converged(bed.converge(&config()));
    assert_eq!(rounds, 2);
    let log = bed.log();
    assert_eq!(
        log.first().copied(),
        Some("pvcreate -ff --yes --metadatasize 17408k /dev/vda1"),
        "{log:?}"
    );
    let state = bed.state();
    assert_provisioned(&state, &config());
    let pe_start = state
        .observed
        .physical_volume
        .as_ref()
        .and_then(|pv| pv.volume_group.as_ref())
        .map(|vg| vg.pe_start_bytes);
    assert_eq!(pe_start, Some(crate::units::Bytes(18 << 20)));
}

#[test]
fn a_steady_start_runs_no_command() {
    let mut bed = Bed::new(SimulatedPartition::provisioned(GIB, "node-01"));
    let before = bed.state().observed;
    assert_eq!(converged(bed.converge(&config())), (0, 0));
    assert!(bed.log().is_empty());
    assert_eq!(bed.machine.observations, 1);
    // No LV's open count is asked on a steady start.
    assert_eq!(bed.machine.lv_state_observations, 0);
    assert_eq!(bed.state().observed, before);
    // Its one look took the VG's devices from the label search's list.
    assert_eq!(bed.machine.reused_resolve_dm_list, [true]);
}

#[test]
fn only_a_first_look_with_an_uncontended_lock_reuses_the_resolve_dm_list() {
    // A fresh provision looks many times; only the first may reuse the list read
    // before the lock (every later look follows writes).
    let mut bed = Bed::new(SimulatedPartition::blank(GIB));
    let _ = converged(bed.converge(&config()));
    let looks = &bed.machine.reused_resolve_dm_list;
    assert!(looks.len() > 2, "{looks:?}");
    assert_eq!(looks.iter().filter(|&&r| r).count(), 1, "{looks:?}");
    assert!(looks[0]);
    // Another instance held the partition first: nothing read before counts.
    let mut bed = Bed::new(SimulatedPartition::provisioned(GIB, "node-01"));
    bed.machine.lock_contended = true;
    assert_eq!(converged(bed.converge(&config())), (0, 0));
    assert_eq!(bed.machine.reused_resolve_dm_list, [false]);
}

#[test]
fn a_dry_run_plans_and_writes_nothing() {
    let mut bed = Bed::new(SimulatedPartition::blank(GIB));
    match bed.run(&config(), true) {
        Ok(Outcome::Planned(plan)) => assert_eq!(plan.actions.len(), 3),
        other => panic!("{other:?}"),
    }
    assert!(bed.log().is_empty());
    assert_eq!(bed.machine.locks_taken, 0);
}

#[test]
fn another_satellite_id_resets_the_partition() {
    let mut bed = Bed::new(SimulatedPartition::provisioned(GIB, "node-02"));
    assert_eq!(converged(bed.converge(&config())), (6, 2));
    assert_eq!(bed.log(), RESET);
    let state = bed.state();
    assert_provisioned(&state, &config());
    // LINSTOR's volumes went with the old identity.
    assert!(state.lv("pvc-1").is_none());
}

/// Two active thin volumes (one inactive): their devices go natively, then LVM's
/// removal as ever, which finds them inactive.
#[test]
fn a_reset_removes_active_thin_volumes_devices_natively_first() {
    let mut start = SimulatedPartition::provisioned(GIB, "node-02");
    for name in ["pvc-2", "pvc-3"] {
        start.vg_mut().logical_volumes.push(thin_volume(name));
    }
    for (name, dm_name) in [
        ("pvc-1", "linstor--vg-pvc--1"),
        ("pvc-3", "linstor--vg-pvc--3"),
    ] {
        if let Some(lv) = start.lv_mut(name) {
            lv.active = true;
            lv.dm_name = Some(dm_name.into());
        }
    }
    let mut bed = Bed::new(start);
    assert_eq!(converged(bed.converge(&config())), (6, 2));
    let mut expected = vec!["deactivate-thin-volumes linstor--vg-pvc--1,linstor--vg-pvc--3"];
    expected.extend(RESET);
    assert_eq!(bed.log(), expected);
    assert_provisioned(&bed.state(), &config());
}

/// A thin volume put to use between the look and its removal stops the step
/// before any LVM command; the next round looks again.
#[test]
fn a_thin_volume_changed_before_its_removal_is_looked_at_again_before_lvremove() {
    let mut start = SimulatedPartition::provisioned(GIB, "node-02");
    if let Some(lv) = start.lv_mut("pvc-1") {
        lv.active = true;
        lv.dm_name = Some("linstor--vg-pvc--1".into());
    }
    let mut bed = Bed::new(start);
    bed.lvm.removals_finding_changes = 1;
    let (_, rounds) = converged(bed.converge(&config()));
    let log = bed.log();
    assert_eq!(log[0], "deactivate-thin-volumes linstor--vg-pvc--1");
    assert_eq!(log[1], "deactivate-thin-volumes linstor--vg-pvc--1");
    assert_eq!(log[2..], RESET);
    assert_eq!(rounds, 3);
    assert_provisioned(&bed.state(), &config());
}

#[test]
fn a_grown_partition_grows_the_pool() {
    let mut start = SimulatedPartition::provisioned(GIB, "node-01");
    start.observed.partition.size_bytes = bytes(4 * GIB);
    let mut bed = Bed::new(start);
    assert_eq!(converged(bed.converge(&config())), (2, 1));
    assert_eq!(bed.log(), ["pvresize /dev/vda1", POOL_EXTEND]);
    let state = bed.state();
    assert_provisioned(&state, &config());
    assert!(state.lv("pvc-1").is_some());
    // Huge growth needs more pool metadata first (and as much spare).
    let mut start = SimulatedPartition::provisioned(GIB, "node-01");
    start.observed.partition.size_bytes = bytes(4096 * GIB);
    let mut bed = Bed::new(start);
    assert_eq!(converged(bed.converge(&config())), (3, 1));
    let log = bed.log();
    assert!(
        log[1].starts_with("lvextend --poolmetadatasize "),
        "{log:?}"
    );
    assert!(log[2].starts_with("lvextend --extents +"), "{log:?}");
    assert_provisioned(&bed.state(), &config());
}

#[test]
fn a_step_that_changes_nothing_ends_in_not_converged_after_max_rounds() {
    let start = SimulatedPartition::seed_layout(
        GIB,
        "node-01",
        SatelliteIdReading::SeedFile("node-01".into()),
    );
    let mut bed = Bed::new(start);
    bed.lvm.ignore_commands_starting = Some("vgchange --addtag");
    match bed.converge(&config()) {
        Err(ConvergeError::NotConverged(steps)) => {
            assert!(steps.contains("tag volume group linstor-vg"), "{steps}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(bed.log(), [VGTAG; MAX_ROUNDS]);
    // Each round that plans a step observes again with every LV's state, and so
    // does the last look, which decides what is left.
    assert_eq!(bed.machine.observations, 2 * MAX_ROUNDS + 1);
    assert_eq!(bed.machine.lv_state_observations, MAX_ROUNDS + 1);
}

#[test]
fn a_refusal_stops_before_anything_is_written() {
    let mut start = SimulatedPartition::blank(GIB);
    start.observed.foreign_signature = Some("ext4".into());
    let mut bed = Bed::new(start.clone());
    assert!(matches!(
        bed.converge(&config()),
        Err(ConvergeError::Refused(Refusal::ForeignSignature { .. }))
    ));
    assert!(bed.log().is_empty());
    assert_eq!(bed.state().observed, start.observed);
    // --force overwrites it.
    let mut bed = Bed::new(start);
    assert_eq!(
        converged(bed.converge(&config_for("node-01", true))),
        (3, 2)
    );
    assert_eq!(
        bed.log()[0],
        "pvcreate --force --force --yes --zero y /dev/vda1"
    );
}

#[test]
fn a_refusal_mid_way_stops_after_the_steps_that_read_more() {
    // The seed ID can be read only once its LV is active; it then says "another
    // satellite", and a reset is refused: LINSTOR's volume is open. (Its open
    // count is seen only by the observation that asks every LV's state: the
    // reset is decided on that one.)
    let mut start =
        SimulatedPartition::seed_layout(GIB, "node-02", SatelliteIdReading::SeedLvInactive);
    if let Some(lv) = start.lv_mut("pvc-1") {
        lv.open_by = Some("drbd1000".into());
    }
    let mut bed = Bed::new(start);
    match bed.converge(&config()) {
        Err(ConvergeError::Refused(Refusal::LogicalVolumeOpen { logical_volume, .. })) => {
            assert_eq!(logical_volume, "pvc-1")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(bed.log(), [SEED_ACTIVATE]);
    // And it stays refused, consistently, on the next start.
    bed.restart();
    assert!(matches!(
        bed.converge(&config()),
        Err(ConvergeError::Refused(Refusal::LogicalVolumeOpen { .. }))
    ));
    assert!(bed.log().is_empty());
}

/// A seed-like VG of another name, untagged, in every state the seed's LV and pool
/// can be found in: refused, and not one command (activation, refresh, component
/// deactivation, device removal) runs on it.
#[test]
fn a_seed_layout_of_another_name_is_refused_with_nothing_run() {
    let seed = |reading: SatelliteIdReading, activity: PoolActivity| {
        let mut sim = SimulatedPartition::seed_layout(GIB, "node-01", reading);
        sim.set_pool_activity(activity);
        sim.vg_mut().name = "data".into();
        sim
    };
    let starts = [
        seed(SatelliteIdReading::SeedLvInactive, PoolActivity::Idle),
        seed(
            SatelliteIdReading::SeedLvInactive,
            PoolActivity::IdleComponentsActive,
        ),
        seed(SatelliteIdReading::SeedLvInactive, PoolActivity::Unloaded),
        seed(
            SatelliteIdReading::SeedLvUnloaded {
                dm_name: "data-metadata".into(),
            },
            PoolActivity::Serving,
        ),
        seed(
            SatelliteIdReading::SeedPoolSuspended { pool: POOL.into() },
            PoolActivity::Suspended,
        ),
    ];
    for start in starts {
        let mut bed = Bed::new(start.clone());
        let outcome = bed.converge(&config());
        assert!(
            matches!(
                outcome,
                Err(ConvergeError::Refused(Refusal::ForeignSeedLayout { .. }))
            ),
            "{outcome:?} from {:?}",
            start.vg().map(|vg| &vg.satellite_id)
        );
        assert!(bed.log().is_empty(), "{:?}", bed.log());
        assert_eq!(bed.state().observed, start.observed);
    }
}

/// A user's 12 MiB `lvol0` in our tagged VG without a pool is refused by name and
/// kept; LVM's own spare left by a killed pool `lvcreate` is still removed.
#[test]
fn only_the_exact_spare_is_removed() {
    let mut users = SimulatedPartition::volume_group(GIB, VG, "node-01");
    users.add_lv(super::simulated_partition::plain_lv(
        "lvol0",
        true,
        3 * EXTENT,
    ));
    let mut bed = Bed::new(users.clone());
    match bed.converge(&config()) {
        Err(ConvergeError::Refused(Refusal::NotAnInterruptedSpare { logical_volume, .. })) => {
            assert_eq!(logical_volume, "lvol0")
        }
        other => panic!("{other:?}"),
    }
    assert!(bed.log().is_empty(), "{:?}", bed.log());
    assert_eq!(bed.state().observed, users.observed);
    // The genuine state, also after the partition grew: removed first, then the pool.
    let mut interrupted = SimulatedPartition::interrupted_spare_creation(GIB, "node-01");
    interrupted.observed.partition.size_bytes = bytes(2 * GIB);
    let mut bed = Bed::new(interrupted);
    assert!(bed.converge(&config()).is_ok());
    assert_eq!(
        bed.log(),
        [
            "lvremove --force linstor-vg/lvol0",
            "pvresize /dev/vda1",
            "lvcreate --yes --type thin-pool --extents 507 --poolmetadatasize 4096k --chunksize 512k --zero n --name linstor-pool linstor-vg"
        ]
    );
}

#[test]
fn an_idle_pool_is_activated_and_an_ignored_activation_is_named() {
    let mut start = SimulatedPartition::provisioned(GIB, "node-01");
    start.set_pool_activity(PoolActivity::Idle);
    let mut bed = Bed::new(start.clone());
    assert_eq!(converged(bed.converge(&config())), (1, 1));
    assert_eq!(bed.log(), [POOL_ACTIVATE]);
    assert_provisioned(&bed.state(), &config());
    // LVM's activation/volume_list skips the VG: success, and nothing active.
    let mut bed = Bed::new(start);
    bed.lvm.ignore_commands_starting = Some("lvchange --activate y");
    match bed.converge(&config()) {
        Err(ConvergeError::ActivationIgnored(step)) => {
            assert!(
                step.contains("activate thin pool linstor-vg/linstor-pool"),
                "{step}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(bed.log(), [POOL_ACTIVATE]);
    // The same for the seed's metadata LV.
    let mut bed = Bed::new(SimulatedPartition::seed_layout(
        GIB,
        "node-01",
        SatelliteIdReading::SeedLvInactive,
    ));
    bed.lvm.ignore_commands_starting = Some("lvchange --activate y");
    assert!(matches!(
        bed.converge(&config()),
        Err(ConvergeError::ActivationIgnored(_))
    ));
    assert_eq!(bed.log(), [SEED_ACTIVATE]);
}

#[test]
fn a_reset_needs_to_know_what_is_open() {
    let mut start = SimulatedPartition::provisioned(GIB, "node-02");
    start.device_mapper_unavailable = true;
    let mut bed = Bed::new(start);
    assert!(matches!(
        bed.converge(&config()),
        Err(ConvergeError::ActivityUnknown(e))
            if matches!(*e, LiveError::DeviceMapperUnavailable { .. })
    ));
    assert!(bed.log().is_empty());
}

#[test]
fn a_failed_command_stops_the_run_and_a_restart_finishes_it() {
    for start in [
        SimulatedPartition::blank(GIB),
        SimulatedPartition::provisioned(GIB, "node-02"),
    ] {
        for failing in 1..=6 {
            let mut bed = Bed::new(start.clone());
            bed.lvm.fail_command = Some(failing);
            match bed.converge(&config()) {
                Err(ConvergeError::Apply(_)) => assert_eq!(bed.log().len(), failing),
                Ok(Outcome::Converged { commands, .. }) => assert!(commands < failing),
                other => panic!("{other:?}"),
            }
            bed.restart();
            converged(bed.converge(&config()));
            assert_provisioned(&bed.state(), &config());
        }
    }
}

/// One recovery state: what the run does and that it ends provisioned.
fn recovers(what: &str, start: SimulatedPartition, expected: &[&str], rounds: usize) {
    let mut bed = Bed::new(start);
    let outcome = bed.converge(&config());
    assert!(
        matches!(outcome, Ok(Outcome::Converged { rounds: r, .. }) if r == rounds),
        "{what}: {outcome:?} after {:?}",
        bed.log()
    );
    assert_eq!(bed.log(), expected, "{what}");
    assert_provisioned(&bed.state(), &config());
}

#[test]
fn every_interrupted_state_recovers() {
    let size = GIB;
    recovers(
        "orphan PV (killed after pvcreate or vgremove)",
        SimulatedPartition::orphan_pv(size),
        &[VGCREATE, POOL_CREATE],
        2,
    );
    recovers(
        "PV marked in use, no VG (vgcreate cut off)",
        SimulatedPartition::interrupted_vgcreate(size),
        &["pvcreate -ff --yes /dev/vda1", VGCREATE, POOL_CREATE],
        2,
    );
    recovers(
        "VG without pool (killed after vgcreate)",
        SimulatedPartition::volume_group(size, VG, "node-01"),
        &[POOL_CREATE],
        1,
    );
    recovers(
        "incomplete pool (thin-pool lvcreate cut off)",
        SimulatedPartition::interrupted_pool_creation(size, "node-01"),
        &["lvremove --force linstor-vg/linstor-pool", POOL_CREATE],
        1,
    );
    recovers(
        "incomplete spare (lvcreate killed making the spare)",
        SimulatedPartition::interrupted_spare_creation(size, "node-01"),
        &["lvremove --force linstor-vg/lvol0", POOL_CREATE],
        1,
    );
    let mut components = SimulatedPartition::provisioned(size, "node-01");
    components.set_pool_activity(PoolActivity::IdleComponentsActive);
    recovers(
        "pool components active (activation cut off)",
        components,
        &[
            "lvchange --activate n linstor-vg/linstor-pool_tmeta",
            POOL_ACTIVATE,
        ],
        1,
    );
    let mut unloaded = SimulatedPartition::provisioned(size, "node-01");
    unloaded.set_pool_activity(PoolActivity::Unloaded);
    recovers(
        "pool device never loaded",
        unloaded,
        &[&format!("remove-stale-devices {POOL_DM}"), POOL_ACTIVATE],
        1,
    );
    let mut suspended = SimulatedPartition::provisioned(size, "node-01");
    suspended.set_pool_activity(PoolActivity::Suspended);
    recovers("pool suspended", suspended, &[POOL_REFRESH], 1);
    let mut unheld = SimulatedPartition::provisioned(size, "node-02");
    unheld.set_pool_activity(PoolActivity::Unheld);
    let mut expected = vec![format!("remove-stale-devices {POOL_DM}")];
    expected.extend(RESET.map(str::to_owned));
    recovers(
        "reset over a pool device a killed removal left",
        unheld,
        &expected.iter().map(String::as_str).collect::<Vec<_>>(),
        2,
    );
    let mut suspended_reset = SimulatedPartition::provisioned(size, "node-02");
    suspended_reset.set_pool_activity(PoolActivity::Suspended);
    let mut expected = vec![POOL_REFRESH];
    expected.extend(RESET);
    recovers("reset over a suspended pool", suspended_reset, &expected, 2);
    let mut stale = SimulatedPartition::blank(size);
    stale.add_stale_device("linstor--vg-linstor--pool", None);
    stale.add_stale_device("linstor--vg-lvol0", None);
    recovers(
        "devices left on a blank partition",
        stale,
        &[
            "remove-stale-devices linstor--vg-linstor--pool,linstor--vg-lvol0",
            PVCREATE,
            VGCREATE,
            POOL_CREATE,
        ],
        2,
    );
    let mut folder = SimulatedPartition::orphan_pv(size);
    folder.set_vg_folder(vec![dangling_link("linstor-pool")]);
    recovers(
        "/dev/linstor-vg left behind",
        folder,
        &[
            "remove-stale-vg-path /dev/linstor-vg",
            VGCREATE,
            POOL_CREATE,
        ],
        2,
    );
    // In a reset LVM removes its own links; the folder step finds nothing left.
    let mut reset_folder = SimulatedPartition::provisioned(size, "node-02");
    reset_folder.set_vg_folder(vec![VgDevEntry::Symlink {
        name: "linstor-pool".into(),
        target: PathBuf::from("../dm-4"),
        reaches: LinkReach::ListedVolume {
            dm_name: "linstor--vg-linstor--pool".into(),
        },
    }]);
    let mut expected = RESET[..4].to_vec();
    expected.extend([
        "remove-stale-vg-path /dev/linstor-vg",
        VGCREATE,
        POOL_CREATE,
    ]);
    recovers(
        "reset with /dev/linstor-vg",
        reset_folder.clone(),
        &expected,
        2,
    );
    // A link through a `/dev/mapper` node to a device the VG lists, under a name
    // that is no volume's: the reset removes the device, the node goes or goes
    // stale, and the folder with it.
    reset_folder.set_vg_folder(vec![VgDevEntry::Symlink {
        name: "lvol0".into(),
        target: PathBuf::from("/dev/mapper/linstor--vg-linstor--pool_tmeta"),
        reaches: LinkReach::ListedVolume {
            dm_name: "linstor--vg-linstor--pool_tmeta".into(),
        },
    }]);
    recovers(
        "reset with a link to a hidden volume",
        reset_folder,
        &expected,
        2,
    );
    let mut untagged = SimulatedPartition::volume_group(size, VG, "x");
    untagged.vg_mut().satellite_id = SatelliteIdReading::Absent;
    recovers(
        "our VG name, no ID recorded (tag missing)",
        untagged,
        &RESET[1..],
        2,
    );
    recovers(
        "seed layout, same ID: adopted",
        SimulatedPartition::seed_layout(
            size,
            "node-01",
            SatelliteIdReading::SeedFile("node-01".into()),
        ),
        &[VGTAG],
        1,
    );
    recovers(
        "seed LV inactive: activated, read, adopted",
        SimulatedPartition::seed_layout(size, "node-01", SatelliteIdReading::SeedLvInactive),
        &[SEED_ACTIVATE, VGTAG],
        2,
    );
    recovers(
        "seed LV inactive, another ID: activated, read, reset",
        SimulatedPartition::seed_layout(size, "node-02", SatelliteIdReading::SeedLvInactive),
        &[&[SEED_ACTIVATE][..], &RESET[..]].concat(),
        3,
    );
    recovers(
        "seed LV device never loaded",
        SimulatedPartition::seed_layout(
            size,
            "node-01",
            SatelliteIdReading::SeedLvUnloaded {
                dm_name: "linstor--vg-metadata".into(),
            },
        ),
        &[SEED_ACTIVATE, VGTAG],
        2,
    );
    let mut seed_suspended = SimulatedPartition::seed_layout(
        size,
        "node-01",
        SatelliteIdReading::SeedPoolSuspended { pool: POOL.into() },
    );
    seed_suspended.set_pool_activity(PoolActivity::Suspended);
    if let Some(lv) = seed_suspended.lv_mut(SEED_LV) {
        lv.active = true;
    }
    recovers(
        "seed pool suspended",
        seed_suspended,
        &[POOL_REFRESH, VGTAG],
        2,
    );
    let mut seed_idle =
        SimulatedPartition::seed_layout(size, "node-01", SatelliteIdReading::SeedLvInactive);
    seed_idle.set_pool_activity(PoolActivity::IdleComponentsActive);
    recovers(
        "seed adoption killed inside its activation",
        seed_idle,
        &[
            "lvchange --activate n linstor-vg/linstor-pool_tmeta",
            SEED_ACTIVATE,
            VGTAG,
        ],
        2,
    );
}

#[test]
fn the_devices_file_is_kept_in_step() {
    let in_use = |listed: bool| DevicesFileFacts::InUse {
        path: PathBuf::from("/etc/lvm/devices/system.devices"),
        listed,
        listed_pvid: None,
        version: Some("1.1.7".into()),
        version_too_new: false,
        folder_read_only: false,
        dead_pvids: Vec::new(),
    };
    let mut fresh = SimulatedPartition::blank(GIB);
    fresh.observed.host_lvm.devices_file = in_use(false);
    recovers(
        "fresh, devices file in use",
        fresh,
        &[
            PVCREATE,
            VGCREATE,
            POOL_CREATE,
            "lvmdevices --adddev /dev/vda1",
            // LVM 2.03.16 fsyncs only the folder: the file is synced too.
            "sync /etc/lvm/devices/system.devices",
        ],
        2,
    );
    // A listed PV is taken out before it is destroyed, the new one entered.
    let mut reset = SimulatedPartition::provisioned(GIB, "node-02");
    reset.observed.host_lvm.devices_file = in_use(false);
    let mut bed = Bed::new(reset);
    bed.lvm.ignore_commands_starting = None;
    // First provisioning step of the old PV's life: enter it.
    let old_pvid = match &bed.state().observed.physical_volume {
        Some(pv) => pv.uuid,
        None => panic!("no PV"),
    };
    if let Err(e) =
        bed.partition
            .borrow_mut()
            .run(&["lvmdevices".into(), "--adddev".into(), DEVNODE.into()])
    {
        panic!("{e}");
    }
    assert_eq!(converged(bed.converge(&config())), (8, 2));
    let log = bed.log();
    assert_eq!(
        log[2],
        format!("lvmdevices --yes --delpvid {}", old_pvid.undashed())
    );
    assert_eq!(log[3], "sync /etc/lvm/devices/system.devices");
    assert_eq!(log[4], RESET[2]);
    assert_eq!(log[8], "lvmdevices --adddev /dev/vda1");
    assert_eq!(log[9], "sync /etc/lvm/devices/system.devices");
    assert_eq!(log.len(), 10, "{log:?}");
    let state = bed.state();
    assert_provisioned(&state, &config());
    assert!(matches!(
        &state.observed.host_lvm.devices_file,
        DevicesFileFacts::InUse { listed: true, dead_pvids, .. } if dead_pvids.is_empty()
    ));
}

fn dangling_link(name: &str) -> VgDevEntry {
    VgDevEntry::Symlink {
        name: name.into(),
        target: PathBuf::from("../dm-9"),
        reaches: LinkReach::Nothing,
    }
}

/// Where a generated start begins, before leftovers are added.
#[derive(Debug, Clone, Copy)]
enum Stage {
    Blank,
    OrphanPv,
    InterruptedVgcreate,
    VolumeGroup,
    InterruptedPool,
    InterruptedSpare,
    Provisioned,
    Seed,
}

/// What the disk says about the satellite ID.
#[derive(Debug, Clone, Copy)]
enum Identity {
    Ours,
    Other,
    Absent,
}

#[derive(Debug, Clone)]
struct Start {
    stage: Stage,
    identity: Identity,
    foreign_vg_name: bool,
    seed_inactive: bool,
    activity: PoolActivity,
    open_thin_volume: bool,
    foreign_signature: bool,
    grown_gib: u64,
    stale_device: Option<bool>,
    vg_folder: bool,
    devices_file: Option<bool>,
    force: bool,
    fail_command: usize,
}

fn stage() -> impl Strategy<Value = Stage> {
    prop_oneof![
        Just(Stage::Blank),
        Just(Stage::OrphanPv),
        Just(Stage::InterruptedVgcreate),
        Just(Stage::VolumeGroup),
        Just(Stage::InterruptedPool),
        Just(Stage::InterruptedSpare),
        Just(Stage::Provisioned),
        Just(Stage::Seed),
    ]
}

fn activity() -> impl Strategy<Value = PoolActivity> {
    prop_oneof![
        3 => Just(PoolActivity::Serving),
        1 => Just(PoolActivity::Idle),
        1 => Just(PoolActivity::IdleComponentsActive),
        1 => Just(PoolActivity::Suspended),
        1 => Just(PoolActivity::Unloaded),
        1 => Just(PoolActivity::Unheld),
    ]
}

prop_compose! {
    fn start()(
        stage in stage(),
        identity in prop_oneof![Just(Identity::Ours), Just(Identity::Other), Just(Identity::Absent)],
        foreign_vg_name in prop::bool::weighted(0.15),
        seed_inactive in any::<bool>(),
        activity in activity(),
        open_thin_volume in prop::bool::weighted(0.15),
        foreign_signature in prop::bool::weighted(0.15),
        grown_gib in prop_oneof![3 => Just(0u64), 1 => 1u64..4, 1 => Just(2047u64)],
        stale_device in prop::option::weighted(0.2, prop::bool::weighted(0.2)),
        vg_folder in prop::bool::weighted(0.2),
        devices_file in prop::option::weighted(0.3, any::<bool>()),
        force in prop::bool::weighted(0.2),
        fail_command in prop_oneof![2 => Just(0usize), 1 => 1usize..9],
    ) -> Start {
        Start {
            stage, identity, foreign_vg_name, seed_inactive, activity, open_thin_volume,
            foreign_signature, grown_gib, stale_device, vg_folder, devices_file, force,
            fail_command,
        }
    }
}

/// A state a partition can be found in: a stage of provisioning, with what
/// interrupted commands, other tools and a grown partition add to it.
/// Starts only a refusal may answer are those with something not this tool's to
/// touch: a held stale device, a VG of another name, a foreign signature without
/// FORCE, an open volume in storage to reset, or an untagged VG (whose owner is
/// unknown). Every other start must end provisioned, so a planner that refused
/// too much fails the property test.
fn must_converge(start: &Start) -> bool {
    let blank_with_signature =
        matches!(start.stage, Stage::Blank) && start.foreign_signature && !start.force;
    let open_volume_to_reset = start.open_thin_volume && matches!(start.identity, Identity::Other);
    start.stale_device != Some(true)
        && !start.foreign_vg_name
        && !blank_with_signature
        && !open_volume_to_reset
        && !matches!(start.identity, Identity::Absent)
}

fn build(start: &Start) -> SimulatedPartition {
    let size = GIB;
    let id = match start.identity {
        Identity::Ours | Identity::Absent => "node-01",
        Identity::Other => "node-02",
    };
    let name = if start.foreign_vg_name { "data" } else { VG };
    let has_pool = matches!(start.stage, Stage::Provisioned | Stage::Seed);
    let mut sim = match start.stage {
        Stage::Blank => {
            let mut sim = SimulatedPartition::blank(size);
            sim.observed.foreign_signature = start.foreign_signature.then(|| "ext4".into());
            sim
        }
        Stage::OrphanPv => SimulatedPartition::orphan_pv(size),
        Stage::InterruptedVgcreate => SimulatedPartition::interrupted_vgcreate(size),
        Stage::VolumeGroup => SimulatedPartition::volume_group(size, name, id),
        Stage::InterruptedPool => SimulatedPartition::interrupted_pool_creation(size, id),
        Stage::InterruptedSpare => SimulatedPartition::interrupted_spare_creation(size, id),
        Stage::Provisioned => SimulatedPartition::provisioned(size, id),
        Stage::Seed => SimulatedPartition::seed_layout(
            size,
            id,
            if start.seed_inactive {
                SatelliteIdReading::SeedLvInactive
            } else {
                SatelliteIdReading::SeedFile(id.into())
            },
        ),
    };
    if start.foreign_vg_name && matches!(start.stage, Stage::Seed) {
        sim.vg_mut().name = "data".into();
    }
    if has_pool {
        // An active seed LV keeps its pool serving.
        let seed_active = sim.lv(SEED_LV).is_some_and(|lv| lv.active);
        if !seed_active {
            sim.set_pool_activity(start.activity);
        }
        if matches!(start.stage, Stage::Seed)
            && start.seed_inactive
            && start.activity == PoolActivity::Suspended
        {
            // The observer sees the suspended pool before the seed LV.
            if let Some(lv) = sim.lv_mut(SEED_LV) {
                lv.active = true;
            }
            sim.vg_mut().satellite_id = SatelliteIdReading::SeedPoolSuspended { pool: POOL.into() };
        }
        if start.open_thin_volume {
            if let Some(lv) = sim.lv_mut("pvc-1") {
                lv.open_by = Some("drbd1000".into());
            }
        }
    }
    if sim.vg().is_some()
        && matches!(start.identity, Identity::Absent)
        && !matches!(start.stage, Stage::Seed)
    {
        sim.vg_mut().satellite_id = SatelliteIdReading::Absent;
    }
    sim.observed.partition.size_bytes =
        bytes(whole(sim.observed.partition.size_bytes) + start.grown_gib * GIB);
    if let Some(held) = start.stale_device {
        sim.add_stale_device("linstor--vg-old", held.then_some("held by drbd1001"));
    }
    if start.vg_folder && sim.vg().is_none_or(|vg| vg.name != VG) {
        sim.set_vg_folder(vec![dangling_link("old")]);
    }
    if let Some(listed) = start.devices_file {
        let listed_pvid = sim
            .observed
            .physical_volume
            .as_ref()
            .filter(|_| listed)
            .map(|pv| pv.uuid);
        sim.observed.host_lvm.devices_file = DevicesFileFacts::InUse {
            path: PathBuf::from("/etc/lvm/devices/system.devices"),
            listed: listed_pvid.is_some(),
            listed_pvid,
            version: Some("1.1.7".into()),
            version_too_new: false,
            folder_read_only: false,
            dead_pvids: Vec::new(),
        };
    }
    sim
}

/// A pool taking every extent of a VG: the data LV's size and extents agree.
fn pool_fills_the_vg(sim: &SimulatedPartition) -> bool {
    let Some(vg) = sim.vg() else { return false };
    let allocated: u64 = vg
        .logical_volumes
        .iter()
        .filter(|lv| matches!(lv.kind, LvKind::Other { .. }))
        .map(|lv| whole(lv.size_bytes) / EXTENT)
        .sum();
    // What is not allocated is the metadata's doubling room (assert_provisioned).
    allocated + vg.free_extents.count() == vg.pv_extent_count.count()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// From every generated start (after a run killed at command N, if any), a run
    /// ends with the partition provisioned and nothing left to plan — or the
    /// planner refuses, writes nothing more, and keeps refusing.
    #[test]
    fn every_start_converges_or_is_refused_consistently(start in start()) {
        let config = config_for("node-01", start.force);
        let initial = build(&start);
        let mut bed = Bed::new(initial);
        if start.fail_command > 0 {
            bed.lvm.fail_command = Some(start.fail_command);
            let first = bed.converge(&config);
            prop_assert!(
                matches!(first, Ok(_) | Err(ConvergeError::Apply(_)) | Err(ConvergeError::Refused(_))),
                "{first:?} after {:?}", bed.log()
            );
            bed.restart();
        }
        let outcome = bed.converge(&config);
        let state = bed.state();
        match outcome {
            Ok(Outcome::Converged { rounds, .. }) => {
                prop_assert!(rounds < MAX_ROUNDS);
                assert_provisioned(&state, &config);
                prop_assert!(pool_fills_the_vg(&state));
            }
            Err(ConvergeError::Refused(refusal)) => {
                prop_assert!(
                    !must_converge(&start),
                    "refused a start this tool must serve: {refusal} from {start:?}"
                );
                let again = plan(&state.observed, &config);
                prop_assert!(
                    again.as_ref().err().map(ToString::to_string) == Some(refusal.to_string()),
                    "refused with {refusal}, replanned {again:?}"
                );
                let log_before = bed.lvm.log.clone();
                bed.restart();
                prop_assert!(matches!(bed.converge(&config), Err(ConvergeError::Refused(_))));
                prop_assert!(bed.log().is_empty(), "{log_before:?}");
            }
            other => prop_assert!(false, "{other:?} after {:?} from {start:?}", bed.log()),
        }
    }
}

#[test]
fn an_id_recorded_with_a_trailing_newline_is_re_tagged_once_and_the_volumes_kept() {
    let mut bed = Bed::new(SimulatedPartition::provisioned(GIB, "node-01\n"));
    let seqno = bed.state().vg().map(|vg| vg.seqno);
    assert_eq!(converged(bed.converge(&config())), (1, 1));
    assert_eq!(
        bed.log(),
        ["vgchange --deltag linstor-satellite-id=node-01&0A --addtag linstor-satellite-id=node-01 linstor-vg"]
    );
    let state = bed.state();
    assert_provisioned(&state, &config());
    assert_eq!(state.vg().map(|vg| vg.seqno), seqno.map(|s| s + 1));
    assert!(state.lv("pvc-1").is_some(), "LINSTOR's volume is gone");
    // The next start writes nothing.
    bed.restart();
    assert_eq!(converged(bed.converge(&config())), (0, 0));
}

#[test]
fn a_re_tag_killed_before_its_commit_is_re_tagged_on_the_next_start() {
    let mut bed = Bed::new(SimulatedPartition::provisioned(GIB, " node-01"));
    bed.lvm.ignore_commands_starting = Some("vgchange --deltag");
    assert!(matches!(
        bed.converge(&config()),
        Err(ConvergeError::NotConverged(_))
    ));
    bed.restart();
    assert_eq!(converged(bed.converge(&config())), (1, 1));
    assert_provisioned(&bed.state(), &config());
}

#[test]
fn a_seed_node_whose_file_ends_in_a_newline_is_adopted() {
    let start = SimulatedPartition::seed_layout(
        GIB,
        "node-01\n",
        SatelliteIdReading::SeedFile("node-01\n".into()),
    );
    let mut bed = Bed::new(start);
    assert_eq!(converged(bed.converge(&config())), (1, 1));
    assert_eq!(bed.log(), [VGTAG]);
    let state = bed.state();
    assert_provisioned(&state, &config());
    assert!(state.lv("pvc-1").is_some());
}

#[test]
fn a_removal_finding_its_device_changed_observes_again_before_anything_else() {
    let mut start = SimulatedPartition::blank(GIB);
    start.add_stale_device("linstor--vg-lvol0", None);
    let mut bed = Bed::new(start);
    bed.lvm.removals_finding_changes = 1;
    let (_, rounds) = converged(bed.converge(&config()));
    // Nothing after the refused removal ran in that round; the next round removed it.
    assert_eq!(
        bed.log(),
        [
            "remove-stale-devices linstor--vg-lvol0",
            "remove-stale-devices linstor--vg-lvol0",
            PVCREATE,
            VGCREATE,
            POOL_CREATE
        ]
    );
    assert_eq!(rounds, 3);
    assert_provisioned(&bed.state(), &config());
}

#[test]
fn a_removal_that_keeps_finding_changes_ends_in_not_converged() {
    let mut start = SimulatedPartition::blank(GIB);
    start.add_stale_device("linstor--vg-lvol0", None);
    let mut bed = Bed::new(start);
    bed.lvm.removals_finding_changes = usize::MAX;
    let result = bed.converge(&config());
    assert!(
        matches!(&result, Err(ConvergeError::NotConverged(left)) if left.contains("linstor--vg-lvol0")),
        "{result:?}"
    );
    assert!(bed
        .log()
        .iter()
        .all(|l| l.starts_with("remove-stale-devices")));
}

#[test]
fn a_partition_node_swapped_between_steps_stops_the_run_before_the_next_write() {
    let mut start = SimulatedPartition::blank(GIB);
    start.add_stale_device("linstor--vg-lvol0", None);
    let mut bed = Bed::new(start);
    // Check 1 opens the round, check 2 precedes the removal, check 3 pvcreate.
    bed.machine.node_swapped_at_check = Some(3);
    let result = bed.converge(&config());
    assert!(
        matches!(&result, Err(ConvergeError::Lock(LockError::Swapped { path, .. })) if path == &PathBuf::from(DEVNODE)),
        "{result:?}"
    );
    assert_eq!(bed.log(), ["remove-stale-devices linstor--vg-lvol0"]);
    // Swapped before the first round: nothing at all.
    let mut bed = Bed::new(SimulatedPartition::blank(GIB));
    bed.machine.node_swapped_at_check = Some(1);
    assert!(matches!(
        bed.converge(&config()),
        Err(ConvergeError::Lock(LockError::Swapped { .. }))
    ));
    assert!(bed.log().is_empty());
    assert_eq!(bed.machine.observations, 0);
}

/// Every step that wrote is followed by a cache flush before the next step (also a
/// step that failed); activations and steady starts send none.
#[test]
fn every_write_is_flushed_before_the_next_step_and_nothing_else_is() {
    let writes_then_flushes = |bed: &Bed| {
        let flushed: Vec<usize> = (1..=bed.lvm.log.len()).collect();
        assert_eq!(bed.lvm.flushed_at, flushed, "{:?}", bed.log());
    };
    for start in [
        SimulatedPartition::blank(GIB),
        SimulatedPartition::provisioned(GIB, "node-02"),
    ] {
        let mut bed = Bed::new(start.clone());
        converged(bed.converge(&config()));
        writes_then_flushes(&bed);
        match bed.converge(&config()) {
            Ok(Outcome::Converged { flushes, .. }) => assert_eq!(flushes, bed.log().len()),
            other => panic!("{other:?}"),
        }
        // A failed command may have written part of its work: flushed as well.
        let mut bed = Bed::new(start);
        bed.lvm.fail_command = Some(2);
        assert!(matches!(
            bed.converge(&config()),
            Err(ConvergeError::Apply(_))
        ));
        writes_then_flushes(&bed);
    }
    let mut grown = SimulatedPartition::provisioned(GIB, "node-01");
    grown.observed.partition.size_bytes = bytes(4 * GIB);
    let mut bed = Bed::new(grown);
    converged(bed.converge(&config()));
    writes_then_flushes(&bed);
    // Steady, and an activation after a reboot: no flush.
    let mut bed = Bed::new(SimulatedPartition::provisioned(GIB, "node-01"));
    converged(bed.converge(&config()));
    assert!(bed.lvm.flushed_at.is_empty());
    let mut idle = SimulatedPartition::provisioned(GIB, "node-01");
    idle.set_pool_activity(PoolActivity::Idle);
    let mut bed = Bed::new(idle);
    converged(bed.converge(&config()));
    assert_eq!(bed.log(), [POOL_ACTIVATE]);
    assert!(bed.lvm.flushed_at.is_empty());
}

const REPAIR: &str = "pvck --repair --yes --file /proc/self/fd/";

/// Torn metadata commits (header on disk, text not): our VG is restored from the
/// copy committed just before the torn one with pvck and the interrupted work
/// finished; a same-ID node keeps its volumes (never reset); a torn first commit
/// starts over; a copy that is not provably ours is refused with nothing written.
#[test]
fn torn_metadata_is_restored_restarted_or_refused() {
    // A pool lvcreate whose last commit tore: restored, then finished as before.
    let mut bed = Bed::new(SimulatedPartition::torn(
        SimulatedPartition::interrupted_pool_creation(GIB, "node-01"),
    ));
    assert_eq!(converged(bed.converge(&config())), (3, 2));
    let log = bed.log();
    assert!(
        log[0].starts_with(REPAIR) && log[0].ends_with(" /dev/vda1"),
        "{log:?}"
    );
    assert_eq!(
        log[1..],
        ["lvremove --force linstor-vg/linstor-pool", POOL_CREATE]
    );
    assert_eq!(bed.lvm.flushed_at, [1, 2, 3]);
    assert_provisioned(&bed.state(), &config());
    // A same-ID node with a thin volume: restored, nothing else, the volume kept.
    let mut bed = Bed::new(SimulatedPartition::torn(SimulatedPartition::provisioned(
        GIB, "node-01",
    )));
    assert_eq!(converged(bed.converge(&config())), (1, 1));
    assert!(bed.log()[0].starts_with(REPAIR));
    assert!(bed.state().lv("pvc-1").is_some());
    assert_provisioned(&bed.state(), &config());
    // A torn vgcreate (the area's first text, nothing of this PV left): start over.
    let mut bed = Bed::new(SimulatedPartition::torn(SimulatedPartition::orphan_pv(GIB)));
    assert_eq!(converged(bed.converge(&config())), (3, 3));
    assert_eq!(bed.lvm.flushed_at, [1, 2, 3, 4]);
    assert_eq!(
        bed.log(),
        [
            "erase-torn-label /dev/vda1",
            PVCREATE,
            VGCREATE,
            POOL_CREATE
        ]
    );
    assert_provisioned(&bed.state(), &config());
    // A label whose metadata area never got its header: the same start over.
    let mut bed = Bed::new(SimulatedPartition::unwritten_header(GIB));
    assert_eq!(converged(bed.converge(&config())), (3, 3));
    assert_eq!(
        bed.log(),
        [
            "erase-torn-label /dev/vda1",
            PVCREATE,
            VGCREATE,
            POOL_CREATE
        ]
    );
    assert_provisioned(&bed.state(), &config());
    // Someone else's VG, or one without our tag: refused, nothing run.
    for start in [
        SimulatedPartition::volume_group(GIB, "other-vg", "node-01"),
        SimulatedPartition::torn_without_tag(),
    ] {
        let mut bed = Bed::new(SimulatedPartition::torn(start));
        assert!(matches!(
            bed.converge(&config()),
            Err(ConvergeError::Refused(Refusal::TornMetadataNotOurs { .. }))
        ));
        assert!(bed.log().is_empty());
        assert!(bed.lvm.flushed_at.is_empty());
    }
    // A dry run names the repair.
    let mut bed = Bed::new(SimulatedPartition::torn(SimulatedPartition::provisioned(
        GIB, "node-01",
    )));
    match bed.run(&config(), true) {
        Ok(Outcome::Planned(plan)) => {
            assert_eq!(plan.actions.len(), 1);
            assert!(plan.actions[0].to_string().starts_with(
                "restore volume group linstor-vg on /dev/vda1 from the metadata copy committed just before the torn one"
            ));
        }
        other => panic!("{other:?}"),
    }
    assert!(bed.log().is_empty());
}

/// A power loss kept the new pool's LVM metadata (transaction 0, no thin volume)
/// but lost LVM's wipe of its `_tmeta`: the kernel reads the removed pool's
/// superblock (transaction 1). The pool comes back from LVM idle, is activated,
/// then removed, then created again (three rounds of one run); the next run
/// writes nothing.
#[test]
fn a_pool_reading_an_earlier_pools_metadata_is_created_again() {
    let mut start = SimulatedPartition::provisioned(GIB, "node-01");
    start
        .vg_mut()
        .logical_volumes
        .retain(|lv| !matches!(lv.kind, LvKind::Thin { .. }));
    start.set_pool_activity(PoolActivity::Idle);
    start.stale_pool_superblock = Some(1);
    let mut bed = Bed::new(start);
    assert_eq!(converged(bed.converge(&config())).1, 3, "{:?}", bed.log());
    assert_eq!(
        bed.log(),
        [
            POOL_ACTIVATE,
            "lvremove --force linstor-vg/linstor-pool",
            POOL_CREATE
        ]
    );
    assert_eq!(bed.state().stale_pool_superblock, None);
    assert_provisioned(&bed.state(), &config());
    bed.restart();
    assert_eq!(converged(bed.converge(&config())), (0, 0));
}

/// The same mismatch under a pool LVM records thin volumes in: refused, nothing run.
#[test]
fn a_pool_with_volumes_and_another_transaction_on_disk_is_refused() {
    let mut start = SimulatedPartition::provisioned(GIB, "node-01");
    start.stale_pool_superblock = Some(1);
    let mut bed = Bed::new(start);
    match bed.converge(&config()) {
        Err(ConvergeError::Refused(Refusal::PoolTransactionMismatch {
            on_disk, recorded, ..
        })) => {
            assert_eq!((on_disk, recorded), (1, 0));
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(bed.log().is_empty(), "{:?}", bed.log());
}
