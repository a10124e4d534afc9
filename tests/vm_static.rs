//! The shipping artifact (`cargo xtask dist`: static musl, LVM linked in) on a
//! machine with no LVM userspace at all — no lvm, no dmsetup, no lvm.conf, no
//! thin_check: a fresh provision, a steady rerun that runs no LVM command, a reset
//! with another ID, and, after a reboot left the pool inactive, a grown partition
//! whose pool LVM must activate to extend it while thin_check is missing (the tool
//! tells LVM to skip the check and logs a warning saying so).
//!
//! The artifact's path comes from `$LINSTOR_PROVISION_DISK_DIST`, which `cargo
//! xtask test` sets after building it; without it this test fails, never skips.
mod common;

use common::*;
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;
use vmtest::{BootOptions, DiskSpec, GuestRun, TestBed};

const DIST_ENV: &str = "LINSTOR_PROVISION_DISK_DIST";

fn artifact() -> PathBuf {
    let Some(path) = std::env::var_os(DIST_ENV).filter(|p| !p.is_empty()) else {
        panic!(
            "${DIST_ENV} is not set: run this test via `cargo xtask test`, or build the artifact \
             with `cargo xtask dist` and set {DIST_ENV}=target/dist/linstor-provision-disk"
        );
    };
    let path = PathBuf::from(path);
    assert!(
        path.is_file(),
        "${DIST_ENV} names {}, which does not exist; build it with `cargo xtask dist`",
        path.display()
    );
    path
}

fn boot_bare(bed: &TestBed, script: &str) -> GuestRun {
    let options = BootOptions {
        lvm2_userspace: false,
        thin_tools: false,
        timeout: Duration::from_secs(900),
        ..BootOptions::default()
    };
    match bed.boot(&options, &format!("{PRELUDE}{script}")) {
        Ok(run) => {
            eprintln!("guest ran {} steps in {:?}", run.steps.len(), run.elapsed);
            run
        }
        Err(e) => panic!("VM boot failed: {e}"),
    }
}

const STATUS: &str = "$LPD status --partition-label linstor-storage --volume-group linstor-vg --pool linstor-pool --json";

/// The VG facts of a `status --json` step.
fn status_vg(run: &GuestRun, step: &str) -> Value {
    let status = json(run, step);
    let vg = status["physical_volume"]["volume_group"].clone();
    run.check(vg.is_object(), &format!("step {step}: no VG in {status}"));
    vg
}

fn pool(vg: &Value) -> Value {
    vg["logical_volumes"]
        .as_array()
        .and_then(|lvs| lvs.iter().find(|lv| lv["name"] == "linstor-pool"))
        .cloned()
        .unwrap_or_else(|| panic!("no linstor-pool LV in {vg}"))
}

fn commands(run: &GuestRun, step: &str) -> String {
    let stderr = &run.step(step).stderr;
    stderr
        .split_whitespace()
        .find_map(|word| word.strip_prefix("lvm_commands="))
        .unwrap_or_else(|| panic!("step {step} logged no lvm_commands=:\n{stderr}"))
        .to_owned()
}

const THIN_CHECK_WARNING: &str = "thin_check is not installed";

#[test]
fn static_artifact_provisions_without_any_lvm_userspace() {
    let artifact = artifact();
    let bed = match TestBed::new(vec![
        DiskSpec::new("storage", 1024).partition("linstor-storage", None)
    ]) {
        Ok(bed) => bed.with_binary(&artifact),
        Err(e) => panic!("could not set up the VM test bed: {e}"),
    };

    let first = boot_bare(
        &bed,
        &format!(
            r#"
step bare sh -c 'for p in lvm vgs pvcreate dmsetup thin_check pdata_tools; do command -v $p && exit 1; done; ls /etc/lvm /usr/sbin/thin_check 2>&1; exit 0'
step fresh $LPD $P --satellite-id node-a
step status-fresh {STATUS}
step mapper-fresh ls /dev/mapper
step steady $LPD $P --satellite-id node-a
step status-steady {STATUS}
step reset $LPD $P --satellite-id node-b
step status-reset {STATUS}
step metadata $LPD metadata /dev/vda1 --json
"#
        ),
    );
    let bare = first.expect_success("bare");
    first.check(
        bare.stdout.contains("No such file") && !bare.stdout.contains("/usr/sbin/lvm"),
        &format!("the guest has LVM userspace:\n{}", bare.stdout),
    );

    expect_provisioned(&first, "fresh");
    assert_eq!(commands(&first, "fresh"), "3");
    let fresh = status_vg(&first, "status-fresh");
    assert_eq!(fresh["satellite_id"]["value"], "node-a");
    assert_eq!(pool(&fresh)["active"], true);
    assert!(
        first
            .expect_success("mapper-fresh")
            .stdout
            .contains("linstor--vg-linstor--pool"),
        "{}",
        first.step("mapper-fresh").stdout
    );

    let steady = expect_provisioned(&first, "steady");
    assert_eq!(commands(&first, "steady"), "0");
    assert!(
        !steady.stderr.contains(THIN_CHECK_WARNING),
        "{}",
        steady.stderr
    );
    assert_eq!(status_vg(&first, "status-steady")["seqno"], fresh["seqno"]);

    let reset = expect_provisioned(&first, "reset");
    for line in [
        "satellite id mismatch, resetting lvm configuration",
        "removing logical volumes",
        "removing volume group",
        "removing physical volume",
    ] {
        assert!(
            reset.stderr.contains(line),
            "no {line:?} in:\n{}",
            reset.stderr
        );
    }
    let after_reset = status_vg(&first, "status-reset");
    assert_eq!(after_reset["satellite_id"]["value"], "node-b");
    assert_ne!(after_reset["uuid"], fresh["uuid"]);
    let metadata = first.expect_success("metadata").stdout.clone();
    assert!(
        metadata.contains("linstor-satellite-id=node-b"),
        "metadata --json shows no tag:\n{metadata}"
    );

    // Power off, grow the partition: the pool is inactive after the reboot; extending
    // and then activating it makes LVM check it — with no thin_check to run.
    let size_before = pool(&after_reset)["size_bytes"].as_u64().unwrap_or(0);
    grow_disk(&bed.disk_path("storage"), "2G", "linstor-storage");
    let second = boot_bare(
        &bed,
        &format!(
            r#"
step mapper-rebooted ls /dev/mapper
step status-rebooted {STATUS}
step grow $LPD $P --satellite-id node-b
step status-grown {STATUS}
step steady-again $LPD $P --satellite-id node-b
"#
        ),
    );
    let mapper = second.expect_success("mapper-rebooted").stdout.clone();
    assert!(!mapper.contains("linstor"), "pool still active: {mapper}");
    assert_eq!(
        pool(&status_vg(&second, "status-rebooted"))["active"],
        false
    );

    let grow = expect_provisioned(&second, "grow");
    // pvresize, lvextend, and the activation LINSTOR needs (lvextend leaves an
    // inactive pool inactive).
    assert_eq!(commands(&second, "grow"), "3", "{}", grow.stderr);
    assert!(
        grow.stderr.contains("activate thin pool"),
        "the grown pool was not activated:\n{}",
        grow.stderr
    );
    assert!(
        grow.stderr.contains(THIN_CHECK_WARNING)
            && grow.stderr.contains("install thin-provisioning-tools"),
        "no thin_check warning in:\n{}",
        grow.stderr
    );
    let grown = status_vg(&second, "status-grown");
    assert_eq!(grown["satellite_id"]["value"], "node-b");
    let size_after = pool(&grown)["size_bytes"].as_u64().unwrap_or(0);
    assert!(
        size_after > size_before + (512 << 20),
        "pool {size_before} -> {size_after} bytes"
    );
    let again = expect_provisioned(&second, "steady-again");
    assert_eq!(commands(&second, "steady-again"), "0");
    assert!(
        !again.stderr.contains(THIN_CHECK_WARNING),
        "{}",
        again.stderr
    );
}
