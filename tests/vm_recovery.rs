//! Runs killed with SIGKILL at every step boundary converge when rerun; a grown
//! partition grows the pool without losing a thin LV, also when killed midway.
mod common;

use common::*;
use vmtest::DiskSpec;

/// busybox sh reports a child killed by SIGKILL as 128 + 9.
const KILLED: i32 = 137;

/// Guest shell: rerun with a kill after the first LVM command until a run succeeds;
/// each killed run must have made one step of progress. Steps are `<prefix>-<n>`.
fn kill_loop(prefix: &str, id: &str, max: u32) -> String {
    let mut script = String::new();
    for n in 1..=max {
        script.push_str(&format!(
            "step {prefix}-{n} env LINSTOR_PROVISION_DISK_TEST_KILL_AFTER=1 $LPD $P --satellite-id {id}\n"
        ));
    }
    script
}

/// How many runs of a kill loop were killed before one completed (which must then
/// have run no command at all: everything was done by the killed runs).
fn killed_runs(run: &vmtest::GuestRun, prefix: &str, max: u32) -> u32 {
    for n in 1..=max {
        let step = run.step(&format!("{prefix}-{n}"));
        if step.exit_code == 0 {
            assert!(
                step.stderr.contains("lvm_commands=0"),
                "{prefix}-{n}: {}",
                step.stderr
            );
            return n - 1;
        }
        assert_eq!(
            step.exit_code, KILLED,
            "{prefix}-{n} neither finished nor was killed:\n{}",
            step.stderr
        );
    }
    panic!("{prefix}: no run completed within {max} attempts");
}

#[test]
fn runs_killed_at_every_step_boundary_converge() {
    let bed = bed(vec![
        DiskSpec::new("storage", 1024).partition("linstor-storage", None)
    ]);
    let mut script = kill_loop("fresh", "node-01", 5);
    script.push_str("step thin lvcreate -V 64m -T linstor-vg/linstor-pool -n pvc-1\n");
    script.push_str(&kill_loop("reset", "node-02", 7));
    script.push_str(
        "step vgs vgs --reportformat json -o vg_name,vg_tags,vg_free_count linstor-vg\n\
         step lvs lvs -a --reportformat json -o lv_name linstor-vg\n\
         step pvs pvs --reportformat json -o pv_name,vg_name\n\
         step held-thin lvcreate -V 64m -T linstor-vg/linstor-pool -n pvc-held\n\
         step held-reset env LINSTOR_PROVISION_DISK_TEST_HOLD_OPEN=1500 $LPD $P --satellite-id node-03\n\
         step held-lvs lvs --noheadings -o lv_name linstor-vg\n",
    );
    let run = boot_injecting_faults(&bed, false, &script);
    // Fresh: pvcreate, vgcreate, lvcreate — each killed right after.
    assert_eq!(killed_runs(&run, "fresh", 5), 3);
    run.expect_success("thin");
    // Reset: lvremove, vgremove — then the orphan PV is reused: vgcreate, lvcreate.
    assert_eq!(killed_runs(&run, "reset", 7), 4);
    let vg = vg_row(&run, "vgs");
    assert_eq!(text(&vg["vg_tags"]), "linstor-satellite-id=node-02");
    // Free: the room to double the pool's metadata and its spare once (one extent
    // each; docs/incoming/wt-sizing.md).
    assert_eq!(number(&vg["vg_free_count"]), 2);
    let lvs = lv_names(&run, "lvs");
    assert!(
        lvs.contains(&"linstor-pool".to_owned()) && !lvs.contains(&"pvc-1".to_owned()),
        "{lvs:?}"
    );
    assert_eq!(
        rows(&run, "pvs", "pv").len(),
        1,
        "exactly one PV, on the partition"
    );
    // A thin volume's device held open for 1.5 s as the reset's native removal
    // starts (as udev's blkid holds one for a moment after a write): the removal
    // waits for it, as LVM would, and the reset completes in this run.
    run.expect_success("held-thin");
    let held = expect_provisioned(&run, "held-reset");
    let waited_ms = held
        .stderr
        .lines()
        .find(|l| l.contains("removed the thin volumes' device-mapper devices"))
        .and_then(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("duration_ms="))
        })
        .and_then(|ms| ms.parse::<u64>().ok());
    assert!(
        held.stderr.contains("holding the device open") && waited_ms.is_some_and(|ms| ms >= 1400),
        "the removal did not wait for the held device ({waited_ms:?} ms):\n{}",
        held.stderr
    );
    assert!(
        !run.expect_success("held-lvs").stdout.contains("pvc-held"),
        "{}",
        run.step("held-lvs").stdout
    );
}

#[test]
fn a_grown_partition_grows_the_pool_and_keeps_thin_volumes() {
    let bed = bed(vec![
        DiskSpec::new("storage", 1024).partition("linstor-storage", None)
    ]);
    let first = boot(
        &bed,
        false,
        r#"
step fresh $LPD $P --satellite-id node-01
step thin lvcreate -V 64m -T linstor-vg/linstor-pool -n pvc-1
step mkfs mkfs.ext4 -q /dev/mapper/linstor--vg-pvc--1
step write sh -c 'mount /dev/mapper/linstor--vg-pvc--1 /mnt && echo precious > /mnt/data && umount /mnt'
step lvs lvs --reportformat json --units b --nosuffix -o lv_name,lv_size linstor-vg/linstor-pool
"#,
    );
    for s in ["thin", "mkfs", "write"] {
        first.expect_success(s);
    }
    expect_provisioned(&first, "fresh");
    let small = number(&rows(&first, "lvs", "lv")[0]["lv_size"]);

    grow_disk(&bed.disk_path("storage"), "4G", "linstor-storage");

    let second = boot_injecting_faults(
        &bed,
        false,
        r#"
step dry-grow $LPD $P --satellite-id node-01 --dry-run
step killed env LINSTOR_PROVISION_DISK_TEST_KILL_AFTER=1 $LPD $P --satellite-id node-01
step grow $LPD $P --satellite-id node-01
step steady $LPD $P --satellite-id node-01
step lvs lvs --reportformat json --units b --nosuffix -o lv_name,lv_size linstor-vg/linstor-pool
step vgs vgs --reportformat json -o vg_name,vg_free_count linstor-vg
step read sh -c 'lvchange -ay linstor-vg/pvc-1 && mount -o ro /dev/mapper/linstor--vg-pvc--1 /mnt && cat /mnt/data'
"#,
    );
    let planned = dry_run_steps(&second, "dry-grow");
    // After the reboot nothing activated the pool: the start activates it last.
    // The metadata grows to twice LVM's estimate for the new size first.
    assert_eq!(planned.len(), 4, "{planned:?}");
    assert!(
        planned[0].starts_with("grow physical volume")
            && planned[1].starts_with("grow thin pool metadata")
            && planned[2].starts_with("grow thin pool linstor-vg/linstor-pool by")
            && planned[3].starts_with("activate thin pool"),
        "{planned:?}"
    );
    assert_eq!(expect_exit(&second, "killed", 137).exit_code, 137);
    let grow = expect_provisioned(&second, "grow");
    assert!(
        grow.stderr.contains("lvm_commands=3"),
        "only the metadata growth, the pool extension and its activation were left:\n{}",
        grow.stderr
    );
    assert!(expect_provisioned(&second, "steady")
        .stderr
        .contains("lvm_commands=0"));
    let big = number(&rows(&second, "lvs", "lv")[0]["lv_size"]);
    assert!(
        big > small + (2 << 30),
        "pool grew from {small} only to {big}"
    );
    // ~4 GiB of 64 KiB chunks: metadata grown to 8 MiB (twice LVM's ~4 MiB
    // estimate), and free the room to double it and its spare once (2 + 2).
    assert_eq!(number(&vg_row(&second, "vgs")["vg_free_count"]), 4);
    assert_eq!(second.expect_success("read").stdout.trim(), "precious");
}
