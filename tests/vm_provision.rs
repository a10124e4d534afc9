//! The provisioning engine in a real kernel: each scenario asserts on LVM's own view
//! afterwards (`vgs`/`lvs` JSON), and checks that `--dry-run` on the starting state
//! printed exactly the steps the real run then applied.
mod common;

use common::*;
use vmtest::DiskSpec;

/// Asserts the dry run `dry` listed exactly the actions run `real` applied.
fn dry_run_matches(run: &vmtest::GuestRun, dry: &str, real: &str) -> Vec<String> {
    let planned = dry_run_steps(run, dry);
    assert!(!planned.is_empty(), "{dry}: the dry run planned nothing");
    let applied = applied_steps(run, real, &planned);
    assert_eq!(
        applied, planned,
        "{real} applied other steps than {dry} planned"
    );
    planned
}

#[test]
fn fresh_steady_reset_and_refusals_leave_the_bystander_alone() {
    let bed = bed(vec![
        DiskSpec::new("storage", 1024).partition("linstor-storage", None),
        DiskSpec::new("bystander", 256).partition("other", None),
    ]);
    let run = boot(
        &bed,
        false,
        r#"
VGS='vgs --reportformat json -o vg_name,vg_seqno,vg_tags,vg_free_count'
LVS='lvs -a --reportformat json --units b --nosuffix -o lv_name,segtype,lv_size,pool_lv'
step by-pv pvcreate /dev/vdb1
step by-vg vgcreate bystander /dev/vdb1
step by-lv lvcreate -an -Zn -L 8m -n keep bystander
step by-before $VGS bystander
step dry-fresh $LPD $P --satellite-id node-01 --dry-run
step fresh $LPD $P --satellite-id node-01
step vgs-fresh $VGS linstor-vg
step lvs-fresh $LVS linstor-vg
step dry-steady $LPD $P --satellite-id node-01 --dry-run
step steady env LOG_LEVEL=debug $LPD $P --satellite-id node-01
step vgs-steady $VGS linstor-vg
step thin lvcreate -V 64m -T linstor-vg/linstor-pool -n pvc-1
step status $LPD status --partition-label linstor-storage --volume-group linstor-vg --pool linstor-pool --json
step status-text $LPD status --partition-label linstor-storage --volume-group linstor-vg --pool linstor-pool
step dry-reset $LPD $P --satellite-id node-02 --dry-run
step reset env LINSTOR_PROVISION_DISK_TEST_KILL_AFTER=1 LINSTOR_PROVISION_DISK_TEST_POWERCUT_DURING=1:0 $LPD $P --satellite-id node-02
step vgs-reset $VGS linstor-vg
step lvs-reset $LVS linstor-vg
step dm-reset dmsetup ls
step links-reset ls -1 /dev/linstor-vg
step reset-debug env LOG_LEVEL=debug $LPD $P --satellite-id node-05
step implicit-thin lvcreate -V 64m -T linstor-vg/linstor-pool -n pvc-implicit
step implicit-off vgchange -an linstor-vg
step implicit-on lvchange -ay linstor-vg/pvc-implicit
step implicit-dm dmsetup ls
step implicit-reset $LPD $P --satellite-id node-06
step implicit-dm-after dmsetup ls
step implicit-lvs $LVS linstor-vg
step thin-open lvcreate -V 64m -T linstor-vg/linstor-pool -n pvc-open
step mkfs mkfs.ext4 -q /dev/mapper/linstor--vg-pvc--open
step mount mount /dev/mapper/linstor--vg-pvc--open /mnt
step vgs-before-open $VGS linstor-vg
touch /tmp/termination-log
step open-refused $LPD $P --satellite-id node-03 --termination-log /tmp/termination-log
step termination cat /tmp/termination-log
step lvs-open $LVS linstor-vg
step vgs-open $VGS linstor-vg
umount /mnt
step missing $LPD --partition-label nope --volume-group x --pool y --satellite-id z --on-failure exit
step bad-name $LPD $P --volume-group 'bad name' --satellite-id node-04
step empty-id $LPD $P --satellite-id ''
step vgs-after-bad $VGS linstor-vg
step by-after $VGS bystander
step by-lvs $LVS bystander
step devices $LPD devices --json
step devices-text $LPD devices
"#,
    );
    for s in [
        "by-pv",
        "by-vg",
        "by-lv",
        "thin",
        "thin-open",
        "mkfs",
        "mount",
    ] {
        run.expect_success(s);
    }
    // Fresh disk: PV, VG tagged with the ID, thin pool with the seed's defaults.
    expect_provisioned(&run, "fresh");
    dry_run_matches(&run, "dry-fresh", "fresh");
    let vg = vg_row(&run, "vgs-fresh");
    assert_eq!(text(&vg["vg_tags"]), "linstor-satellite-id=node-01");
    // All but the room to double the pool's metadata and its spare once (one
    // extent each; docs/incoming/wt-sizing.md).
    assert_eq!(
        number(&vg["vg_free_count"]),
        2,
        "the pool should take all free space but the doubling room"
    );
    assert!(lv_names(&run, "lvs-fresh").contains(&"linstor-pool".to_owned()));

    // Same ID again: nothing planned, no LVM command, seqno unchanged.
    assert!(run
        .expect_success("dry-steady")
        .stdout
        .starts_with("nothing to do"));
    let steady = expect_provisioned(&run, "steady");
    assert!(
        steady.stderr.contains("lvm_commands=0"),
        "{}",
        steady.stderr
    );
    assert!(
        !steady.stderr.contains("running lvm command"),
        "{}",
        steady.stderr
    );
    assert_eq!(vg_row(&run, "vgs-steady")["vg_seqno"], vg["vg_seqno"]);

    // status shows the ID, the pool and its usage.
    let status = json(&run, "status");
    let status_vg = &status["physical_volume"]["volume_group"];
    assert_eq!(status_vg["satellite_id"]["value"], "node-01");
    assert_eq!(status_vg["name"], "linstor-vg");
    assert!(
        status["pool_usage"]["data_total_bytes"]
            .as_u64()
            .unwrap_or(0)
            > 0,
        "{status}"
    );
    assert!(run.step("status-text").stdout.contains("pool usage"));
    // The partition's record carries its size, whichever backend found it (the
    // label search reads none; the size asked of the kernel stands in).
    assert!(
        status["size_bytes"].as_u64().is_some_and(|b| b > 0),
        "{status}"
    );
    assert_eq!(
        status["partition"]["size_bytes"], status["size_bytes"],
        "{status}"
    );

    // Another ID: the seed's log lines, old LVs gone, new tag.
    let reset = expect_provisioned(&run, "reset");
    dry_run_matches(&run, "dry-reset", "reset");
    // The fault-injection variables were set on this run, but this boot's kernel
    // command line lacks the test bed's key: inert (no kill, no power cut), and said.
    assert!(
        reset
            .stderr
            .contains("fault-injection variables are set but ignored"),
        "{}",
        reset.stderr
    );
    for line in [
        "satellite id mismatch, resetting lvm configuration",
        "existing=node-01",
        "expected=node-02",
        "removing logical volumes",
        "removing volume group",
        "removing physical volume",
    ] {
        assert!(
            reset.stderr.contains(line),
            "reset log lacks {line:?}:\n{}",
            reset.stderr
        );
    }
    assert_eq!(
        text(&vg_row(&run, "vgs-reset")["vg_tags"]),
        "linstor-satellite-id=node-02"
    );
    let after_reset = lv_names(&run, "lvs-reset");
    assert!(
        !after_reset.contains(&"pvc-1".to_owned()),
        "{after_reset:?}"
    );
    assert!(after_reset.contains(&"linstor-pool".to_owned()));
    // The active pvc-1's device went natively before lvremove; nothing of it is
    // left in device-mapper or /dev/linstor-vg.
    assert!(
        reset
            .stderr
            .contains("removed the thin volumes' device-mapper devices")
            && reset.stderr.contains("devices=1"),
        "{}",
        reset.stderr
    );
    let dm_after_reset = run.expect_success("dm-reset");
    assert!(
        !dm_after_reset.stdout.contains("pvc--1"),
        "{}",
        dm_after_reset.stdout
    );
    assert!(dm_after_reset.stdout.contains("linstor--vg-linstor--pool"));
    let links = run.expect_success("links-reset");
    assert!(!links.stdout.contains("pvc-1"), "{}", links.stdout);

    // Removing the active pool on a reset runs no thin_check: LVM would check the
    // metadata it is about to discard after deactivating the pool (one process per
    // reset; LVM's `Executing:` line shows at LOG_LEVEL=debug, as in vm_image_runc).
    let reset_debug = expect_provisioned(&run, "reset-debug");
    assert!(
        reset_debug.stderr.contains("lvremove --force linstor-vg")
            && reset_debug.stderr.contains("existing=node-02"),
        "{}",
        reset_debug.stderr
    );
    assert!(
        !reset_debug
            .stderr
            .lines()
            .any(|line| line.contains("Executing:") && line.contains("thin_check")),
        "LVM ran thin_check while removing the pool:\n{}",
        reset_debug.stderr
    );

    // A pool activated only through a thin volume (no `-pool` device of its own):
    // once the volume's device is gone only the `-tpool` is left, which LVM counts
    // as an inactive pool whose components it cannot deactivate. The reset removes
    // that `-tpool` natively too and finishes in one run.
    for s in ["implicit-thin", "implicit-off", "implicit-on"] {
        run.expect_success(s);
    }
    let before = run.expect_success("implicit-dm").stdout.clone();
    assert!(
        before.contains("linstor--vg-linstor--pool-tpool")
            && !before
                .lines()
                .any(|l| l.starts_with("linstor--vg-linstor--pool\t")),
        "the bed did not leave the pool active through the thin volume only:\n{before}"
    );
    let implicit = expect_provisioned(&run, "implicit-reset");
    assert!(
        implicit.stderr.contains("devices=2") && implicit.stderr.contains("lvm_commands=6"),
        "{}",
        implicit.stderr
    );
    let after = run.expect_success("implicit-dm-after").stdout.clone();
    assert!(!after.contains("pvc--implicit"), "{after}");
    assert!(!lv_names(&run, "implicit-lvs").contains(&"pvc-implicit".to_owned()));

    // An open LV blocks a reset: refused, named, nothing removed, reason for Kubernetes.
    let refused = expect_exit(&run, "open-refused", 1);
    assert!(refused.stderr.contains("pvc-open"), "{}", refused.stderr);
    assert!(run.step("termination").stdout.contains("pvc-open"));
    assert!(lv_names(&run, "lvs-open").contains(&"pvc-open".to_owned()));

    // Missing label: the error lists the labels that exist.
    let missing = expect_exit(&run, "missing", 1);
    assert!(
        missing.stderr.contains("\"linstor-storage\"") && missing.stderr.contains("\"other\""),
        "{}",
        missing.stderr
    );
    // Bad input: exit 2 before the disk is touched.
    expect_exit(&run, "bad-name", 2);
    expect_exit(&run, "empty-id", 2);
    // Neither the refusal nor the bad inputs wrote metadata.
    assert_eq!(vg_row(&run, "vgs-open"), vg_row(&run, "vgs-before-open"));
    assert_eq!(
        vg_row(&run, "vgs-after-bad"),
        vg_row(&run, "vgs-before-open")
    );

    // The bystander VG on the other disk never changed.
    assert_eq!(vg_row(&run, "by-after"), vg_row(&run, "by-before"));
    assert_eq!(lv_names(&run, "by-lvs"), vec!["keep".to_owned()]);

    // devices --json is valid JSON listing both partitions with their VGs.
    let devices = json(&run, "devices");
    let by_node = |node: &str| {
        devices
            .as_array()
            .and_then(|all| all.iter().find(|d| d["devnode"] == node).cloned())
            .unwrap_or_else(|| panic!("devices lacks {node}: {devices}"))
    };
    assert_eq!(by_node("/dev/vda1")["volume_group"], "linstor-vg");
    assert_eq!(by_node("/dev/vda1")["partition_label"], "linstor-storage");
    assert_eq!(by_node("/dev/vdb1")["volume_group"], "bystander");
    // libblkid's TYPE and USAGE for every signature found: only our PV label.
    let signatures = &by_node("/dev/vda1")["signatures"];
    assert_eq!(signatures[0]["type"], "LVM2_member", "{signatures}");
    assert_eq!(signatures[0]["usage"], "raid", "{signatures}");
    assert_eq!(signatures.as_array().map(Vec::len), Some(1), "{signatures}");
    let text = &run.step("devices-text").stdout;
    assert!(text.contains("linstor-storage"), "{text}");
    let vda1 = text.lines().find(|l| l.starts_with("/dev/vda1 "));
    assert!(
        vda1.is_some_and(|row| row.contains(" LVM2_member ") && row.contains(" raid ")),
        "{text}"
    );
}
