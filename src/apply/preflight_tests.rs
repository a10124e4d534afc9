//! Preflight, then destroy: the planner's refusals when a later step of a writing
//! plan would be refused, and `converge` reading the preflight facts only for plans
//! that write — and writing nothing when they refuse.
use super::converge::{ConvergeError, Outcome};
use super::converge_tests::Bed;
use super::simulated_partition::{
    bytes, config, config_for, PoolActivity, SimulatedPartition, DEVNODE, GIB,
};
use crate::observe::signature::Usage;
use crate::observe::state::{ForeignSignature, Preflight, PreflightFacts};
use crate::plan::{needs_preflight, plan, writes, Action, Refusal};
use std::path::PathBuf;

fn md_1_0() -> ForeignSignature {
    ForeignSignature {
        type_name: "linux_raid_member".into(),
        usage: Usage::Raid,
        described: "linux_raid_member (raid) at byte 1073733632, uuid 1b2c".into(),
    }
}

fn swap() -> ForeignSignature {
    ForeignSignature {
        type_name: "swap".into(),
        usage: Usage::Other,
        described: "swap (other) at byte 4086".into(),
    }
}

fn with_signatures(found: Vec<ForeignSignature>) -> PreflightFacts {
    PreflightFacts {
        foreign_signatures: found,
        ..PreflightFacts::default()
    }
}

/// A node provisioned for `node-02` (so `node-01` resets it), with `facts` gathered.
fn reset_with(facts: PreflightFacts) -> SimulatedPartition {
    let mut sim = SimulatedPartition::provisioned(GIB, "node-02");
    sim.observed.preflight = Preflight::Gathered(facts);
    sim
}

fn refusal(sim: &SimulatedPartition, force: bool) -> Refusal {
    match plan(&sim.observed, &config_for("node-01", force)) {
        Err(refusal) => refusal,
        Ok(plan) => panic!("expected a refusal, planned {:?}", plan.actions),
    }
}

#[test]
fn a_reset_beside_an_md_superblock_is_refused_even_with_force() {
    for force in [false, true] {
        let text = match refusal(&reset_with(with_signatures(vec![md_1_0()])), force) {
            r @ Refusal::SignatureBesideLvmLabel { .. } => r.to_string(),
            other => panic!("{other:?}"),
        };
        for needle in [
            "/dev/vda1 carries this tool's LVM label",
            "linux_raid_member (raid) at byte 1073733632",
            "md component",
            "in this reset that refusal would come after lvremove and vgremove",
            "--force does not override",
            "wipefs --all --types linux_raid_member /dev/vda1",
        ] {
            assert!(text.contains(needle), "{needle:?} missing: {text}");
        }
    }
}

#[test]
fn any_foreign_signature_beside_the_label_stops_a_grow_and_a_reset() {
    let mut grown = SimulatedPartition::provisioned(GIB, "node-01");
    grown.observed.partition.size_bytes = bytes(2 * GIB);
    grown.observed.preflight = Preflight::Gathered(with_signatures(vec![swap()]));
    match refusal(&grown, false) {
        Refusal::SignatureBesideLvmLabel {
            types, consequence, ..
        } => {
            assert_eq!(types, ["swap"]);
            assert!(consequence.contains("swap and LUKS"), "{consequence}");
            assert!(
                !consequence.contains("reset"),
                "a grow is no reset: {consequence}"
            );
        }
        other => panic!("{other:?}"),
    }
    let both = reset_with(with_signatures(vec![md_1_0(), swap()]));
    match refusal(&both, false) {
        Refusal::SignatureBesideLvmLabel {
            types, signatures, ..
        } => {
            assert_eq!(types, ["linux_raid_member", "swap"]);
            assert!(signatures.contains("; swap (other)"), "{signatures}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_user_lvm_did_not_make_or_a_read_only_device_refuses_any_write() {
    let in_use = PreflightFacts {
        users: vec!["md0 (an assembled md raid array)".into()],
        ..PreflightFacts::default()
    };
    for force in [false, true] {
        match refusal(&reset_with(in_use.clone()), force) {
            Refusal::PartitionInUse { device, users } => {
                assert_eq!(device, PathBuf::from(DEVNODE));
                assert_eq!(users, ["md0 (an assembled md raid array)"]);
            }
            other => panic!("{other:?}"),
        }
    }
    // A blank partition with FORCE still may not be written while md holds it.
    let mut blank = SimulatedPartition::blank(GIB);
    blank.observed.foreign_signature = Some("linux_raid_member (raid)".into());
    blank.observed.preflight = Preflight::Gathered(PreflightFacts {
        foreign_signatures: vec![md_1_0()],
        ..in_use
    });
    assert!(matches!(
        refusal(&blank, true),
        Refusal::PartitionInUse { .. }
    ));
    let read_only = PreflightFacts {
        read_only: vec!["the kernel's read-only flag is set (BLKROGET)".into()],
        ..PreflightFacts::default()
    };
    let text = refusal(&reset_with(read_only), true).to_string();
    assert!(
        text.starts_with("/dev/vda1 is read-only (the kernel's read-only flag is set (BLKROGET))"),
        "{text}"
    );
    assert!(text.contains("blockdev --setrw /dev/vda1"), "{text}");
}

#[test]
fn plans_that_write_nothing_need_no_preflight_and_are_not_refused() {
    // An activation of an idle pool writes no metadata: the probe is skipped, and
    // even a gathered md superblock does not stop it.
    let mut idle = SimulatedPartition::provisioned(GIB, "node-01");
    idle.set_pool_activity(PoolActivity::Idle);
    let planned = plan(&idle.observed, &config());
    let Ok(planned) = planned else {
        panic!("{planned:?}")
    };
    assert!(!planned.actions.is_empty());
    assert!(!planned.actions.iter().any(writes));
    assert!(!needs_preflight(&idle.observed, &planned));
    idle.observed.preflight = Preflight::Gathered(with_signatures(vec![md_1_0()]));
    assert!(plan(&idle.observed, &config()).is_ok());
    // Without our label the foreign signature is --force's to decide, as before.
    let mut blank = SimulatedPartition::blank(GIB);
    blank.observed.foreign_signature = Some("swap (other) at byte 4086".into());
    blank.observed.preflight = Preflight::Gathered(with_signatures(vec![swap()]));
    assert!(matches!(
        refusal(&blank, false),
        Refusal::ForeignSignature { .. }
    ));
    let forced = plan(&blank.observed, &config_for("node-01", true));
    assert!(
        forced.as_ref().is_ok_and(|p| matches!(
            p.actions.first(),
            Some(Action::CreatePhysicalVolume {
                overwrite_signature: Some(_),
                ..
            })
        )),
        "{forced:?}"
    );
}

#[test]
fn converge_reads_the_facts_only_for_a_plan_that_writes_and_then_writes_nothing() {
    // Steady: no preflight pass (no probe), nothing run.
    let mut steady = Bed::new(SimulatedPartition::provisioned(GIB, "node-01"));
    assert!(matches!(
        steady.run(&config_for("node-01", false), false),
        Ok(Outcome::Converged { commands: 0, .. })
    ));
    assert_eq!(steady.machine.preflights, 0);

    // A reset over an md superblock: one preflight pass, refused, not a command run.
    let mut start = SimulatedPartition::provisioned(GIB, "node-02");
    start.preflight = with_signatures(vec![md_1_0()]);
    let mut reset = Bed::new(start);
    match reset.run(&config_for("node-01", false), false) {
        Err(ConvergeError::Refused(Refusal::SignatureBesideLvmLabel { .. })) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(reset.machine.preflights, 1);
    assert!(reset.lvm.log.is_empty(), "{:?}", reset.lvm.log);

    // A dry run refuses as the real run would.
    match reset.run(&config_for("node-01", false), true) {
        Err(ConvergeError::Refused(Refusal::SignatureBesideLvmLabel { .. })) => {}
        other => panic!("{other:?}"),
    }

    // A clean partition: the reset goes ahead after one preflight pass per
    // round that writes (the reset's, and the pool's sized from the new VG).
    let mut clean = Bed::new(SimulatedPartition::provisioned(GIB, "node-02"));
    assert!(matches!(
        clean.run(&config_for("node-01", false), false),
        Ok(Outcome::Converged { commands: 6, .. })
    ));
    assert_eq!(clean.machine.preflights, 2);
}
