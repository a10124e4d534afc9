//! What the leftover and activation handling must never touch, and where it must not
//! loop (each case found by a hostile review of the recovery code):
//! - a guest VG whose PV is one of our thin volumes is not a leftover of ours;
//! - a pool device that exists but is suspended is refreshed, not worked around;
//! - an activation LVM silently skips (`activation/volume_list`) is reported with its
//!   cause instead of looping;
//! - `/dev/<vg>` links that still reach a device are a live VG's, never cleared;
//! - a pool device a killed removal left live but held by nothing (LVM then counts
//!   the pool inactive and cannot deactivate its components) is cleared by a reset,
//!   also when a stale thin device (removed first) is what still holds it, and
//!   only once LVM's lock of the VG is free (an LVM command may be building it).
mod common;

use common::*;
use vmtest::DiskSpec;

#[test]
fn leftover_handling_leaves_what_is_not_ours_and_says_why_it_stops() {
    let bed = bed(vec![
        DiskSpec::new("storage", 512).partition("linstor-storage", None),
        DiskSpec::new("ghost", 256).partition("ghost", None),
        DiskSpec::new("unheld", 256).partition("unheld", None),
    ]);
    let run = boot(
        &bed,
        false,
        r#"
NEST="devices { scan_lvs=1 }"
step prov $LPD $P --satellite-id node-01
step nest lvcreate -q -V 64m -T linstor-vg/linstor-pool -n nest
step guest-pv pvcreate -q --config "$NEST" /dev/linstor-vg/nest
step guest-vg vgcreate -q --config "$NEST" guestvg /dev/linstor-vg/nest
step guest-lv lvcreate -q --config "$NEST" -L 8m -n glv guestvg
step guest-run $LPD $P --satellite-id node-01
step guest-alive dmsetup info -c --noheadings -o name guestvg-glv
step guest-link test -b /dev/guestvg/glv
step guest-off vgchange -q --config "$NEST" -an guestvg
step suspend dmsetup suspend linstor--vg-linstor--pool-tpool
step suspended-run $LPD $P --satellite-id node-01
step suspended-state dmsetup info -c --noheadings -o attr linstor--vg-linstor--pool-tpool
step suspended-usage lvs --noheadings -o data_percent linstor-vg/linstor-pool
step ghost-dir sh -c 'mkdir /dev/ghost-vg && ln -s ../dm-0 /dev/ghost-vg/data && test -b /dev/ghost-vg/data'
step ghost-run $LPD --partition-label ghost --volume-group ghost-vg --pool pool --on-failure exit --satellite-id node-01
step ghost-link test -b /dev/ghost-vg/data
step ghost-blank sh -c 'pvs /dev/vdb1 2>&1 || true'
step listed-off vgchange -an linstor-vg
step listed-conf sh -c 'cp /etc/lvm/lvm.conf /tmp/lvm.conf.orig && printf "activation {\n volume_list = [ \"nothing\" ]\n}\n" >> /etc/lvm/lvm.conf'
step listed-run $LPD $P --satellite-id node-01
step listed-restore cp /tmp/lvm.conf.orig /etc/lvm/lvm.conf
step listed-after $LPD $P --satellite-id node-01
U='--partition-label unheld --volume-group unheld-vg --pool pool --on-failure exit'
step unheld-prov $LPD $U --satellite-id node-01
step unheld-thin lvcreate -q -V 16m -T unheld-vg/pool -n pvc
step unheld-off vgchange -an unheld-vg
step unheld-on lvchange -ay unheld-vg/pvc
step unheld-cut dmsetup remove unheld--vg-pvc
step unheld-open dmsetup info -c --noheadings -o open unheld--vg-pool-tpool
step unheld-seen lvs --noheadings -o lv_attr unheld-vg/pool
step unheld-reset $LPD $U --satellite-id node-02
step unheld-lvs sh -c 'lvs --noheadings -o lv_name,vg_tags unheld-vg | tr -s " "'
step unheld-usage lvs --noheadings -o data_percent unheld-vg/pool
step stale-thin lvcreate -q -V 16m -T unheld-vg/pool -n t1
step stale-off vgchange -an unheld-vg
step stale-on lvchange -ay unheld-vg/t1
step stale-make sh -c 'u=$(vgs --noheadings -o vg_uuid unheld-vg | tr -d " -"); dmsetup create unheld--vg-ghost -u "LVM-${u}ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ" --table "0 32768 thin /dev/mapper/unheld--vg-pool-tpool 1"'
step stale-cut dmsetup remove unheld--vg-t1
step stale-open dmsetup info -c --noheadings -o open unheld--vg-pool-tpool
step stale-reset $LPD $U --satellite-id node-03
step stale-lvs sh -c 'lvs --noheadings -o lv_name,vg_tags unheld-vg | tr -s " "'
step stale-gone sh -c 'dmsetup info -c --noheadings -o name | grep -c ghost || true'
step locked-thin lvcreate -q -V 16m -T unheld-vg/pool -n t2
step locked-off vgchange -an unheld-vg
step locked-on lvchange -ay unheld-vg/t2
step locked-cut dmsetup remove unheld--vg-t2
step locked-hold sh -c 'flock /run/lock/lvm/V_unheld-vg sleep 5 </dev/null >/dev/null 2>&1 & sleep 0.5; echo held'
step locked-reset $LPD $U --satellite-id node-04
step locked-lvs sh -c 'lvs --noheadings -o lv_name,vg_tags unheld-vg | tr -s " "'
"#,
    );
    for s in ["nest", "guest-pv", "guest-vg", "guest-lv"] {
        run.expect_success(s);
    }
    expect_provisioned(&run, "prov");
    // The guest's LV sits on our thin volume; it is nobody's leftover.
    let guest = expect_provisioned(&run, "guest-run");
    run.check(
        guest.stderr.contains("lvm_commands=0") && !guest.stderr.contains("device-mapper devices"),
        &format!(
            "a guest VG's device was treated as a leftover:\n{}",
            guest.stderr
        ),
    );
    assert_eq!(
        run.expect_success("guest-alive").stdout.trim(),
        "guestvg-glv"
    );
    run.expect_success("guest-link");
    run.expect_success("guest-off");

    // A suspended pool device: refreshed (resumed), and usage readable again.
    run.expect_success("suspend");
    let suspended = expect_provisioned(&run, "suspended-run");
    run.check(
        suspended.stderr.contains("refresh thin pool"),
        &format!("expected a refresh:\n{}", suspended.stderr),
    );
    let attr = &run.expect_success("suspended-state").stdout;
    assert!(
        !attr.trim().contains('s'),
        "the pool device is still suspended: {attr:?}"
    );
    assert!(
        run.expect_success("suspended-usage")
            .stdout
            .trim()
            .parse::<f64>()
            .is_ok(),
        "no usage reported after the refresh"
    );

    // Links in /dev/ghost-vg reach a live device: refused, nothing removed or made.
    run.expect_success("ghost-dir");
    let ghost = expect_exit(&run, "ghost-run", 1);
    run.check(
        ghost.stderr.contains("/dev/ghost-vg") && ghost.stderr.contains("live devices"),
        &format!("expected a refusal naming /dev/ghost-vg:\n{}", ghost.stderr),
    );
    run.expect_success("ghost-link");
    assert!(
        !run.step("ghost-blank").stdout.contains("lvm2"),
        "a PV was created on the refused partition: {}",
        run.step("ghost-blank").stdout
    );

    // volume_list excludes our VG: a clear error naming the setting, not a loop.
    run.expect_success("listed-off");
    run.expect_success("listed-conf");
    let listed = expect_exit(&run, "listed-run", 1);
    run.check(
        listed.stderr.contains("volume_list") && !listed.stderr.contains("did not reach"),
        &format!("expected the volume_list explanation:\n{}", listed.stderr),
    );
    run.expect_success("listed-restore");
    expect_provisioned(&run, "listed-after");

    // A removal killed right after LVM deactivated the last thin volume: the pool's
    // `-tpool` device stays live, held by nothing, and LVM counts the pool inactive.
    expect_provisioned(&run, "unheld-prov");
    run.expect_success("unheld-thin");
    // Only the thin volume active (no pool device of its own), then that removed.
    run.expect_success("unheld-off");
    run.expect_success("unheld-on");
    run.expect_success("unheld-cut");
    assert_eq!(run.expect_success("unheld-open").stdout.trim(), "0");
    let attr = run.expect_success("unheld-seen").stdout.trim().to_owned();
    assert_eq!(
        attr.chars().nth(4),
        Some('-'),
        "setup: LVM was expected to count the pool inactive: {attr:?}"
    );
    let reset = expect_provisioned(&run, "unheld-reset");
    run.check(
        reset
            .stderr
            .contains("remove device-mapper devices unheld--vg-pool-tpool"),
        &format!(
            "expected the unheld pool device removed first:\n{}",
            reset.stderr
        ),
    );
    assert_eq!(
        run.expect_success("unheld-lvs").stdout.trim(),
        "pool linstor-satellite-id=node-02"
    );
    assert!(
        run.expect_success("unheld-usage")
            .stdout
            .trim()
            .parse::<f64>()
            .is_ok(),
        "the new pool reports no usage"
    );

    // The pool device held only by a thin device no VG lists (a leftover removed
    // first): the same run then finds the pool device unheld and clears it too.
    for s in [
        "stale-thin",
        "stale-off",
        "stale-on",
        "stale-make",
        "stale-cut",
    ] {
        run.expect_success(s);
    }
    assert_eq!(run.expect_success("stale-open").stdout.trim(), "1");
    let reset = expect_provisioned(&run, "stale-reset");
    run.check(
        reset.stderr.contains("unheld--vg-ghost") && reset.stderr.contains("unheld--vg-pool-tpool"),
        &format!("expected both devices removed:\n{}", reset.stderr),
    );
    assert_eq!(
        run.expect_success("stale-lvs").stdout.trim(),
        "pool linstor-satellite-id=node-03"
    );
    assert_eq!(run.expect_success("stale-gone").stdout.trim(), "0");

    // The removal waits for LVM's lock of the VG (held here by `flock`, as an LVM
    // command activating the VG would hold it), then goes on.
    for s in [
        "locked-thin",
        "locked-off",
        "locked-on",
        "locked-cut",
        "locked-hold",
    ] {
        run.expect_success(s);
    }
    let locked = expect_provisioned(&run, "locked-reset");
    run.check(
        locked
            .stderr
            .contains("holds this volume group's lock; waiting")
            && locked.stderr.contains("unheld--vg-pool-tpool"),
        &format!(
            "expected the removal to wait for LVM's lock:\n{}",
            locked.stderr
        ),
    );
    assert_eq!(
        run.expect_success("locked-lvs").stdout.trim(),
        "pool linstor-satellite-id=node-04"
    );
}
