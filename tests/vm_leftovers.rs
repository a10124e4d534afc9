//! What the leftover and activation handling must never touch, and where it must not
//! loop (each case found by a hostile review of the recovery code):
//! - a guest VG whose PV is one of our thin volumes is not a leftover of ours;
//! - a pool device that exists but is suspended is refreshed, not worked around;
//! - an activation LVM silently skips (`activation/volume_list`) is reported with its
//!   cause instead of looping;
//! - `/dev/<vg>` links that still reach a device are a live VG's, never cleared; a
//!   link LVM did not make in the kept VG's folder is read only by a reset, which
//!   refuses before removing anything;
//! - a pool device a killed removal left live but held by nothing (LVM then counts
//!   the pool inactive and cannot deactivate its components) is cleared by a reset,
//!   also when a stale thin device (removed first) is what still holds it, and
//!   only once LVM's lock of the VG is free (an LVM command may be building it);
//! - what a removal finds once it holds that lock is re-checked: a device made again
//!   under the planned name, a device that gained a holder, a partition node swapped
//!   underneath; the lock is the one in the host's `global/locking_dir`, and under
//!   lvmlockd nothing is removed natively.
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
step foreign-link sh -c 'mkdir -p /dev/unheld-vg && ln -s /etc/hostname /dev/unheld-vg/notes'
step foreign-steady $LPD $U --satellite-id node-04
step foreign-reset $LPD $U --satellite-id node-05
step foreign-kept sh -c 'lvs --noheadings -o lv_name,vg_tags unheld-vg | tr -s " "'
step foreign-still readlink /dev/unheld-vg/notes
step foreign-gone rm /dev/unheld-vg/notes
step foreign-after $LPD $U --satellite-id node-05
step foreign-lvs sh -c 'lvs --noheadings -o lv_name,vg_tags unheld-vg | tr -s " "'
step elsewhere-link sh -c 'test -b /dev/dm-0 && mkdir -p /dev/unheld-vg && ln -s ../dm-0 /dev/unheld-vg/x'
step elsewhere-reset $LPD $U --satellite-id node-06
step elsewhere-kept sh -c 'lvs --noheadings -o lv_name,vg_tags unheld-vg | tr -s " "'
step elsewhere-still readlink /dev/unheld-vg/x
step elsewhere-gone rm /dev/unheld-vg/x
step elsewhere-after $LPD $U --satellite-id node-06
step lvol0-link sh -c 'n=$(dmsetup ls | awk "/^unheld--vg-pool_tmeta/ {print \$1}") && set -- $(stat -L -c "%t %T" "/dev/mapper/$n") && mknod /dev/mapper/unheld--vg-lvol0 b $((0x$1)) $((0x$2)) && mkdir -p /dev/unheld-vg && ln -s /dev/mapper/unheld--vg-lvol0 /dev/unheld-vg/lvol0 && test -b /dev/unheld-vg/lvol0 && readlink /dev/unheld-vg/lvol0'
step lvol1-link sh -c 'test -b /dev/dm-0 && set -- $(stat -L -c "%t %T" /dev/dm-0) && mknod /dev/mapper/unheld--vg-lvol1 b $((0x$1)) $((0x$2)) && ln -s /dev/mapper/unheld--vg-lvol1 /dev/unheld-vg/lvol1 && test -b /dev/unheld-vg/lvol1'
step lvol0-reset $LPD $U --satellite-id node-07
step lvol0-gone sh -c '! test -L /dev/unheld-vg/lvol0 && ! test -L /dev/unheld-vg/lvol1'
step lvol0-lvs sh -c 'lvs --noheadings -o lv_name,vg_tags unheld-vg | tr -s " "'
step swapped-link sh -c 'test -b /dev/dm-0 && mkdir -p /dev/unheld-vg && ln -sfn ../dm-0 /dev/unheld-vg/pool'
step swapped-reset $LPD $U --satellite-id node-08
step swapped-kept sh -c 'lvs --noheadings -o lv_name,vg_tags unheld-vg | tr -s " "'
step swapped-still readlink /dev/unheld-vg/pool
step swapped-back rm /dev/unheld-vg/pool
step swapped-after $LPD $U --satellite-id node-08
step swapped-lvs sh -c 'lvs --noheadings -o lv_name,vg_tags unheld-vg | tr -s " "'
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

    // Someone's link in the kept VG's /dev folder: a steady start does not read it
    // (nor any of LVM's links there) and is no reason to refuse; a reset, whose
    // `vgcreate` would clear the folder, refuses before removing anything.
    run.expect_success("foreign-link");
    let steady = expect_provisioned(&run, "foreign-steady");
    run.check(
        steady.stderr.contains("lvm_commands=0"),
        &format!(
            "a steady start wrote with a foreign link in /dev/unheld-vg:\n{}",
            steady.stderr
        ),
    );
    let refused = expect_exit(&run, "foreign-reset", 1);
    run.check(
        refused.stderr.contains("/dev/unheld-vg")
            && refused.stderr.contains("`notes` -> /etc/hostname")
            && refused
                .stderr
                .contains("not links to device-mapper devices"),
        &format!("expected a refusal naming the link:\n{}", refused.stderr),
    );
    assert_eq!(
        run.expect_success("foreign-kept").stdout.trim(),
        "pool linstor-satellite-id=node-04",
        "the refused reset changed the volume group"
    );
    assert_eq!(
        run.expect_success("foreign-still").stdout.trim(),
        "/etc/hostname",
        "the refused reset removed someone's link"
    );
    run.expect_success("foreign-gone");
    expect_provisioned(&run, "foreign-after");
    assert_eq!(
        run.expect_success("foreign-lvs").stdout.trim(),
        "pool linstor-satellite-id=node-05"
    );

    // A live link in the kept VG's folder to another VG's device (a udev-style
    // `../dm-N`): the reset's removal of the folder would refuse it only after the VG
    // was gone; it is refused before anything is removed.
    run.expect_success("elsewhere-link");
    let refused = expect_exit(&run, "elsewhere-reset", 1);
    run.check(
        refused.stderr.contains("/dev/unheld-vg")
            && refused.stderr.contains(
                "x reach live devices that the reset of this volume group does not remove",
            ),
        &format!(
            "expected a refusal naming the live link:\n{}",
            refused.stderr
        ),
    );
    assert_eq!(
        run.expect_success("elsewhere-kept").stdout.trim(),
        "pool linstor-satellite-id=node-05",
        "the refused reset changed the volume group"
    );
    assert_eq!(
        run.expect_success("elsewhere-still").stdout.trim(),
        "../dm-0"
    );
    run.expect_success("elsewhere-gone");
    expect_provisioned(&run, "elsewhere-after");

    // What a kill inside the pool's `lvcreate` leaves (found by vm_kill_torture): the
    // link and `/dev/mapper` node of LVM's temporary `lvol0`, whose device-mapper
    // minor the pool's devices took next. It reaches this VG's device under a name
    // the VG does not list; the reset removes the VG's devices, the link dangles and
    // goes with the folder.
    assert_eq!(
        run.expect_success("lvol0-link").stdout.trim(),
        "/dev/mapper/unheld--vg-lvol0"
    );
    // The same node left behind, its minor now another VG's device (a device made
    // on the host while the reset ran, or before): stale too, since the device it
    // reaches has another name. Removed with the folder, never a reason to stop.
    run.expect_success("lvol1-link");
    expect_provisioned(&run, "lvol0-reset");
    run.expect_success("lvol0-gone");
    assert_eq!(
        run.expect_success("lvol0-lvs").stdout.trim(),
        "pool linstor-satellite-id=node-07",
        "the reset did not give a fresh pool"
    );

    // A link named after the VG's own pool but leading to another VG's device: not
    // LVM's for this VG, whatever its name; refused before anything is removed.
    run.expect_success("swapped-link");
    let refused = expect_exit(&run, "swapped-reset", 1);
    run.check(
        refused.stderr.contains(
            "pool reach live devices that the reset of this volume group does not remove",
        ),
        &format!(
            "expected a refusal naming the swapped link:\n{}",
            refused.stderr
        ),
    );
    assert_eq!(
        run.expect_success("swapped-kept").stdout.trim(),
        "pool linstor-satellite-id=node-07",
        "the refused reset changed the volume group"
    );
    assert_eq!(run.expect_success("swapped-still").stdout.trim(), "../dm-0");
    run.expect_success("swapped-back");
    expect_provisioned(&run, "swapped-after");
    assert_eq!(
        run.expect_success("swapped-lvs").stdout.trim(),
        "pool linstor-satellite-id=node-08",
    );
}

/// Shell helpers for steps that run the tool while the test changes the machine: the
/// tool waits for LVM's lock of the VG (held here by `flock`), the test changes what
/// the plan was made from, then lets go of the lock.
const RECHECK_HELPERS: &str = r#"
# bg NAME CMD...: runs CMD in the background; output in /tmp/NAME.out/.err, exit code in /tmp/NAME.rc.
bg() { _n=$1; shift; ( "$@" >/tmp/$_n.out 2>/tmp/$_n.err </dev/null; echo $? >/tmp/$_n.rc.new; mv /tmp/$_n.rc.new /tmp/$_n.rc ) >/dev/null 2>&1 & }
# await TEXT FILE: waits up to 120 s for TEXT to appear in FILE.
await() { _i=0; while ! grep -q "$1" "$2" 2>/dev/null; do _i=$((_i+1)); [ $_i -gt 1200 ] && { echo "no '$1' in $2 after 120 s" >&2; cat "$2" >&2; return 1; }; sleep 0.1; done; }
# finish NAME: waits for bg NAME to end and reports its output and exit code as its own.
finish() { _i=0; while [ ! -e /tmp/$1.rc ]; do _i=$((_i+1)); [ $_i -gt 3000 ] && { echo "still running after 300 s" >&2; return 124; }; sleep 0.1; done; cat /tmp/$1.out; cat /tmp/$1.err >&2; return "$(cat /tmp/$1.rc)"; }
# hold LOCKFILE RELEASEFILE: holds LOCKFILE (flock, as an LVM command holds V_<vg>) until RELEASEFILE exists.
hold() { mkdir -p "$(dirname "$1")"; ( flock "$1" sh -c 'while [ ! -e "$0" ]; do sleep 0.1; done' "$2" ) >/dev/null 2>&1 </dev/null & sleep 1; ! flock -n "$1" true; }
# ghost NAME: a device-mapper device under NAME with an LVM uuid of linstor-vg's that
# the VG does not list, mapping the partition: what a killed LVM command leaves.
ghost() { _u=$(vgs --noheadings -o vg_uuid linstor-vg | tr -d ' -') && dmsetup create "$1" -u "LVM-${_u}$2" --table "0 2048 linear /dev/vda1 0"; }
"#;

/// Boots a bed with our partition provisioned (step `prov`), a blank partition
/// labeled `swapped` (vdb1) and a bystander partition (vdc1), and runs `script`.
fn recheck_boot(script: &str) -> vmtest::GuestRun {
    let bed = bed(vec![
        DiskSpec::new("storage", 512).partition("linstor-storage", None),
        DiskSpec::new("swapped", 256).partition("swapped", None),
        DiskSpec::new("bystander", 256).partition("bystander", None),
    ]);
    let script = format!("{RECHECK_HELPERS}step prov $LPD $P --satellite-id node-01\n{script}");
    let run = boot(&bed, false, &script);
    expect_provisioned(&run, "prov");
    run
}

/// The tool's log of `name`, shown with the test's output.
fn shown<'a>(run: &'a vmtest::GuestRun, name: &str) -> &'a vmtest::Step {
    let step = run.step(name);
    eprintln!("--- {name} (exit {}) ---\n{}", step.exit_code, step.stderr);
    step
}

#[test]
fn a_device_made_again_under_the_planned_name_with_another_uuid_is_not_removed() {
    let run = recheck_boot(
        r#"
step ghost ghost linstor--vg-ghost ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ
step hold hold /run/lock/lvm/V_linstor-vg /tmp/run.release
step start bg run $LPD $P --satellite-id node-01
step waits await "waiting for it" /tmp/run.err
step swap sh -c 'dmsetup remove linstor--vg-ghost && dmsetup create linstor--vg-ghost -u OTHER-TOOL-0001 --table "0 2048 zero"'
step release touch /tmp/run.release
step run finish run
step other dmsetup info -c --noheadings -o name,uuid linstor--vg-ghost
"#,
    );
    for s in ["ghost", "hold", "start", "waits", "swap", "release"] {
        run.expect_success(s);
    }
    // The planned name now belongs to another tool's device (another uuid): it is
    // not removed, and the new look finds nothing of ours to remove.
    let renamed = shown(&run, "run");
    assert_eq!(
        run.step("other").stdout.trim(),
        "linstor--vg-ghost:OTHER-TOOL-0001",
        "the other tool's device under the planned name was removed"
    );
    expect_provisioned(&run, "run");
    run.check(
        renamed.stderr.contains("changed since it was observed")
            && renamed.stderr.contains("no device has uuid"),
        &format!(
            "expected the removal to find the uuid gone:\n{}",
            renamed.stderr
        ),
    );
}

#[test]
fn a_leftover_that_gains_a_holder_while_the_tool_waits_is_not_removed() {
    let run = recheck_boot(
        r#"
step ghost ghost linstor--vg-ghost YYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYY
step hold hold /run/lock/lvm/V_linstor-vg /tmp/run.release
step start bg run $LPD $P --satellite-id node-01
step waits await "waiting for it" /tmp/run.err
step user sh -c 'dmsetup create ghost-user --table "0 2048 linear $(dmsetup info -c --noheadings --separator : -o major,minor linstor--vg-ghost) 0"'
step release touch /tmp/run.release
step run finish run
step still dmsetup info -c --noheadings -o name linstor--vg-ghost
"#,
    );
    for s in ["ghost", "hold", "start", "waits", "user", "release"] {
        run.expect_success(s);
    }
    // Not removed; the new look refuses it, naming the holder.
    let held = shown(&run, "run");
    expect_exit(&run, "run", 1);
    run.check(
        held.stderr.contains("changed since it was observed")
            && held.stderr.contains("it is now held by dm-")
            && held
                .stderr
                .contains("linstor--vg-ghost is stacked on /dev/vda1"),
        &format!(
            "expected a re-check, then a refusal naming the holder:\n{}",
            held.stderr
        ),
    );
    assert_eq!(
        run.expect_success("still").stdout.trim(),
        "linstor--vg-ghost"
    );
}

#[test]
fn the_removal_waits_for_lvms_lock_in_the_hosts_locking_dir() {
    let run = recheck_boot(
        r#"
step ghost ghost linstor--vg-ghost XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX
step conf sh -c 'printf "global {\n    locking_dir = \"/run/lvm-locks-test\"\n}\n" >> /etc/lvm/lvm.conf'
step hold hold /run/lvm-locks-test/V_linstor-vg /tmp/run.release
step start bg run $LPD $P --satellite-id node-01
step waits await "waiting for it" /tmp/run.err
step kept dmsetup info -c --noheadings -o name linstor--vg-ghost
step release touch /tmp/run.release
step run finish run
step gone sh -c 'dmsetup info -c --noheadings -o name | grep -c ghost || true'
"#,
    );
    for s in ["ghost", "conf", "hold", "start"] {
        run.expect_success(s);
    }
    // Still there while an LVM command (here `flock`) holds the lock in the folder
    // the host's lvm.conf names; removed once it is free.
    run.expect_success("waits");
    run.expect_success("kept");
    run.expect_success("release");
    let moved = shown(&run, "run");
    expect_provisioned(&run, "run");
    run.check(
        moved
            .stderr
            .contains("lock=/run/lvm-locks-test/V_linstor-vg")
            && moved.stderr.contains("removed a device-mapper device"),
        &format!(
            "expected the wait on the host's locking_dir:\n{}",
            moved.stderr
        ),
    );
    assert_eq!(run.expect_success("gone").stdout.trim(), "0");
}

#[test]
fn native_removals_are_refused_when_the_host_uses_lvmlockd() {
    let run = recheck_boot(
        r#"
step ghost ghost linstor--vg-ghost WWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWW
step conf sh -c 'cp /etc/lvm/lvm.conf /tmp/lvm.conf.orig && printf "global {\n    use_lvmlockd = 1\n}\n" >> /etc/lvm/lvm.conf'
step run $LPD $P --satellite-id node-01
step still dmsetup info -c --noheadings -o name linstor--vg-ghost
step restore cp /tmp/lvm.conf.orig /etc/lvm/lvm.conf
step after $LPD $P --satellite-id node-01
"#,
    );
    run.expect_success("ghost");
    run.expect_success("conf");
    let lockd = shown(&run, "run");
    assert_eq!(
        run.step("still").stdout.trim(),
        "linstor--vg-ghost",
        "the leftover was removed natively although the host uses lvmlockd"
    );
    expect_exit(&run, "run", 1);
    run.check(
        lockd.stderr.contains("use_lvmlockd = 1") && lockd.stderr.contains("linstor--vg-ghost"),
        &format!("expected a refusal naming lvmlockd:\n{}", lockd.stderr),
    );
    run.expect_success("restore");
    let after = expect_provisioned(&run, "after");
    run.check(
        after.stderr.contains("removed a device-mapper device"),
        &format!(
            "expected the leftover removed once lvmlockd is off:\n{}",
            after.stderr
        ),
    );
}

#[test]
fn a_partition_node_swapped_underneath_stops_the_run_before_the_next_write() {
    let run = recheck_boot(
        r#"
S='--partition-label swapped --volume-group swapped-vg --pool pool --on-failure exit'
step ghost dmsetup create swapped--vg-ghost -u LVM-SSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGG --table "0 2048 linear /dev/vdb1 0"
step hold hold /run/lock/lvm/V_swapped-vg /tmp/run.release
step start bg run $LPD $S --satellite-id node-01
step waits await "waiting for it" /tmp/run.err
step node sh -c 'n=$(tr : " " </sys/class/block/vdc1/dev) && rm /dev/vdb1 && mknod /dev/vdb1 b $n && ls -l /dev/vdb1'
step release touch /tmp/run.release
step run finish run
step restore sh -c 'n=$(tr : " " </sys/class/block/vdb1/dev) && rm -f /dev/vdb1 && mknod /dev/vdb1 b $n'
step bystander sh -c 'dd if=/dev/vdc1 bs=512 count=8 2>/dev/null | grep -c LABELONE || true'
step after $LPD $S --satellite-id node-01
"#,
    );
    for s in ["ghost", "hold", "start", "waits", "node", "release"] {
        run.expect_success(s);
    }
    // The leftover is removed while /dev/vdb1 names the bystander's device; the
    // next step (pvcreate) would write there: refused, nothing written.
    let swapped = shown(&run, "run");
    assert_eq!(
        run.expect_success("bystander").stdout.trim(),
        "0",
        "an LVM label was written to the device swapped in"
    );
    expect_exit(&run, "run", 1);
    run.check(
        swapped
            .stderr
            .contains("/dev/vdb1 is no longer the partition this run resolved"),
        &format!("expected the swapped node refused:\n{}", swapped.stderr),
    );
    run.expect_success("restore");
    expect_provisioned(&run, "after");
}

/// A kill between LVM's `DM_DEV_CREATE` and its first table load of the pool's
/// device leaves it with no table, which the kernel has not yet added as a block
/// device (no `/sys/class/block/dm-N`): nothing can hold it; it is removed and the
/// pool activated. `vm_kill_torture` first met it; the uuid re-check then failed
/// every rerun ("cannot read /sys/class/block/dm-N").
#[test]
fn a_pool_device_that_never_had_a_table_is_removed() {
    let run = recheck_boot(
        r#"
step off lvchange -an linstor-vg/linstor-pool
step notable sh -c '_v=$(vgs --noheadings -o vg_uuid linstor-vg | tr -d " -") && _l=$(lvs --noheadings -o lv_uuid linstor-vg/linstor-pool | tr -d " -") && dmsetup create --notable linstor--vg-linstor--pool -u "LVM-${_v}${_l}-tpool"'
step sysfs sh -c 'm=$(dmsetup info -c --noheadings -o minor linstor--vg-linstor--pool | tr -d " ") && test ! -e /sys/class/block/dm-$m && echo "dm-$m has no block device"'
step run $LPD $P --satellite-id node-01
step table dmsetup table linstor--vg-linstor--pool
step steady $LPD $P --satellite-id node-01
"#,
    );
    for s in ["off", "notable", "sysfs"] {
        run.expect_success(s);
    }
    let ran = shown(&run, "run");
    run.check(
        ran.exit_code == 0 && ran.stderr.contains("left by an interrupted LVM command"),
        &format!(
            "expected the table-less pool device removed:\n{}",
            ran.stderr
        ),
    );
    run.check(
        run.expect_success("table").stdout.contains("thin-pool"),
        "the pool was not activated after the table-less device was removed",
    );
    let steady = run.step("steady");
    run.check(
        steady.exit_code == 0 && steady.stderr.contains("lvm_commands=0"),
        &format!("the next start was not steady:\n{}", steady.stderr),
    );
}
