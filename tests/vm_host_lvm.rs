//! Host LVM integration (issue 9, item 3), with the guest's Debian LVM playing
//! the host:
//! - `use_devicesfile = 1` and a devices file listing another disk's PV: the
//!   provisioned PV is entered in it next to the other one, the host's unscoped
//!   `pvs`/`vgs` see linstor-vg, a steady start runs no LVM command, and a reset
//!   leaves the file listing the new PVID (no dead `IDNAME=.` line) with the host
//!   still seeing the VG;
//! - `use_devicesfile = 1` without a devices file: provisioned, no file created
//!   (creating one would hide every other PV from the host);
//! - no devices file and a `global_filter` that rejects the partition: refused,
//!   naming the rule, nothing written; `--force` provisions with a warning.
//!
//! Every check is collected and the test fails listing all that failed, so a run
//! against an old build (LINSTOR_PROVISION_DISK_BIN) reports every item at once.
mod common;

use common::*;
use vmtest::{DiskSpec, GuestRun};

const DEVICES_FILE: &str = "/etc/lvm/devices/system.devices";

/// The guest's lvm.conf (vmtest's, plus the host settings under test).
fn lvm_conf(devices: &str) -> String {
    format!(
        "cat > /etc/lvm/lvm.conf <<'EOF'\n\
devices {{\n    obtain_device_list_from_udev = 0\n    external_device_info_source = \"none\"\n    {devices}\n}}\n\
activation {{\n    udev_sync = 0\n    udev_rules = 0\n    monitoring = 0\n}}\n\
global {{\n    use_lvmpolld = 0\n    event_activation = 0\n}}\n\
EOF\n"
    )
}

fn script() -> String {
    let file = DEVICES_FILE;
    let with_file = lvm_conf("use_devicesfile = 1");
    let filtered = lvm_conf("use_devicesfile = 1\n    global_filter = [ \"r|^/dev/vdd1$|\" ]");
    format!(
        r#"
{with_file}
mkdir -p /etc/lvm/devices
rm -f {file}
PVS='pvs --reportformat json -o pv_name,pv_uuid,vg_name'
VGS='vgs --reportformat json -o vg_name,vg_tags'
N='--partition-label nofile --volume-group nvg --pool pool --on-failure exit'
F='--partition-label filtered --volume-group fvg --pool pool --on-failure exit'

# 2. use_devicesfile=1 without a file: provisioned, no file created.
step n-first $LPD $N --satellite-id node-01
step n-file sh -c "test -e {file} && echo PRESENT || echo ABSENT"
step n-steady $LPD $N --satellite-id node-01

# 1. A devices file listing another disk's PV.
# Scoped, so LVM does not create the file itself; lvmdevices does.
step a-pv-other pvcreate --devices /dev/vdb1 /dev/vdb1
step a-add-other lvm lvmdevices --adddev /dev/vdb1
step a-file-before cat {file}
step a-first $LPD $P --satellite-id node-01
step a-file sh -c 'cat {file} 2>/dev/null || echo NO-DEVICES-FILE'
step a-pvs $PVS
step a-vgs $VGS
step a-file-after-host sh -c 'cat {file} 2>/dev/null || echo NO-DEVICES-FILE'
step a-status $LPD status --partition-label linstor-storage --volume-group linstor-vg --pool linstor-pool --json
step a-status-text $LPD status --partition-label linstor-storage --volume-group linstor-vg --pool linstor-pool
step a-steady env LOG_LEVEL=debug $LPD $P --satellite-id node-01
step a-file-steady sh -c 'cat {file} 2>/dev/null || echo NO-DEVICES-FILE'
step a-reset $LPD $P --satellite-id node-02
step a-file-reset sh -c 'cat {file} 2>/dev/null || echo NO-DEVICES-FILE'
step a-pvs-reset $PVS
step a-vgs-reset $VGS
step a-file-reset-after-host sh -c 'cat {file} 2>/dev/null || echo NO-DEVICES-FILE'
step a-steady-reset env LOG_LEVEL=debug $LPD $P --satellite-id node-02

# 1b. The devices file's folder read-only (a pod mounting /etc/lvm read-only): a
# reset would stop at lvmdevices after removing the old PV; refused first.
step ro-bind sh -c 'mount --bind /etc/lvm/devices /etc/lvm/devices && mount -o remount,bind,ro /etc/lvm/devices'
step ro-check sh -c 'touch /etc/lvm/devices/x 2>&1; test ! -e /etc/lvm/devices/x'
step ro-vgs-before $VGS
step ro-reset env LOG_LEVEL=debug $LPD $P --satellite-id node-03
step ro-vgs-after $VGS
step ro-unbind umount /etc/lvm/devices

# 3. No devices file, a global_filter rejecting the partition.
rm -f {file}
{filtered}
step f-sum-before sum_head 4194304 /dev/vdd1
step f-refused env LOG_LEVEL=debug $LPD $F --satellite-id node-01
step f-sum-after sum_head 4194304 /dev/vdd1
step f-forced $LPD $F --satellite-id node-01 --force
step f-vgs vgs --reportformat json -o vg_name,vg_tags --devices /dev/vdd1 fvg
step f-file sh -c "test -e {file} && echo PRESENT || echo ABSENT"
"#
    )
}

/// The device entries (`IDTYPE=` lines) of a devices file printed by a step.
fn entries(run: &GuestRun, step: &str) -> Vec<String> {
    run.step(step)
        .stdout
        .lines()
        .filter(|l| l.starts_with("IDTYPE="))
        .map(str::to_owned)
        .collect()
}

fn field<'a>(entry: &'a str, key: &str) -> &'a str {
    entry
        .split_whitespace()
        .find_map(|f| f.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
        .unwrap_or_default()
}

/// `(pv_name, undashed pv_uuid, vg_name)` rows of an unscoped `pvs` report.
fn pvs(run: &GuestRun, step: &str) -> Vec<(String, String, String)> {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(&run.step(step).stdout) else {
        return Vec::new();
    };
    value["report"][0]["pv"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|row| {
            (
                text(&row["pv_name"]),
                text(&row["pv_uuid"]).replace('-', ""),
                text(&row["vg_name"]),
            )
        })
        .collect()
}

fn vgs(run: &GuestRun, step: &str) -> Vec<(String, String)> {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(&run.step(step).stdout) else {
        return Vec::new();
    };
    value["report"][0]["vg"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|row| (text(&row["vg_name"]), text(&row["vg_tags"])))
        .collect()
}

/// The PVID the host's `pvs` reports for `device`.
fn pvid_of(rows: &[(String, String, String)], device: &str) -> String {
    rows.iter()
        .find(|(name, _, _)| name == device)
        .map(|(_, uuid, _)| uuid.clone())
        .unwrap_or_default()
}

/// The file lists exactly `/dev/vdb1` (PVID `other`) and `/dev/vda1` with PVID
/// `ours`, and no dead line.
fn check_file(checks: &mut Checks, run: &GuestRun, step: &str, other: &str, ours: &str) {
    let lines = entries(run, step);
    let all = run.step(step).stdout.clone();
    checks.that(
        lines.len() == 2,
        format!("{step}: expected 2 device lines (vdb1, vda1):\n{all}"),
    );
    checks.that(
        lines
            .iter()
            .any(|l| field(l, "DEVNAME") == "/dev/vdb1" && field(l, "PVID") == other),
        format!("{step}: /dev/vdb1 with PVID {other} is not listed:\n{all}"),
    );
    checks.that(
        !ours.is_empty()
            && lines.iter().any(|l| {
                field(l, "DEVNAME") == "/dev/vda1"
                    && field(l, "IDNAME") != "."
                    && field(l, "PVID") == ours
            }),
        format!("{step}: /dev/vda1 with PVID {ours:?} is not listed:\n{all}"),
    );
    checks.that(
        !lines.iter().any(|l| field(l, "IDNAME") == "."),
        format!("{step}: a dead IDNAME=. line:\n{all}"),
    );
}

#[test]
fn the_host_sees_the_volume_group_through_its_devices_file_and_filters() {
    let bed = bed(vec![
        DiskSpec::new("ours", 128).partition("linstor-storage", None),
        DiskSpec::new("other", 64).partition("other", None),
        DiskSpec::new("nofile", 64).partition("nofile", None),
        DiskSpec::new("filtered", 64).partition("filtered", None),
    ]);
    let run = boot(&bed, false, &script());
    let mut checks = Checks::default();

    // 2. No file: provisioned, steady, and no file was created.
    checks.exit(&run, "n-first", 0);
    checks.that(
        run.step("n-file").stdout.trim() == "ABSENT",
        format!("a devices file was created: {}", run.step("n-file").stdout),
    );
    checks.exit(&run, "n-steady", 0);
    checks.says(&run, "n-steady", "lvm_commands=0");

    // 1. The setup: the file lists vdb1 only.
    run.expect_success("a-pv-other");
    run.expect_success("a-add-other");
    let before = entries(&run, "a-file-before");
    run.check(
        before.len() == 1 && field(&before[0], "DEVNAME") == "/dev/vdb1",
        &format!(
            "setup: the devices file should list /dev/vdb1 only:\n{}",
            run.step("a-file-before").stdout
        ),
    );
    let other = field(&before[0], "PVID").to_owned();

    // Provisioned and entered next to vdb1; the host's own view sees linstor-vg.
    checks.exit(&run, "a-first", 0);
    checks.says(
        &run,
        "a-first",
        "enter physical volume /dev/vda1 in the host's LVM devices file",
    );
    let first_pvs = pvs(&run, "a-pvs");
    let ours = pvid_of(&first_pvs, "/dev/vda1");
    checks.that(
        first_pvs
            .iter()
            .any(|(name, _, vg)| name == "/dev/vda1" && vg == "linstor-vg"),
        format!(
            "the host's pvs does not see /dev/vda1 in linstor-vg:\n{}{}",
            run.step("a-pvs").stdout,
            run.step("a-pvs").stderr
        ),
    );
    checks.that(
        vgs(&run, "a-vgs")
            .iter()
            .any(|(vg, tags)| vg == "linstor-vg" && tags == "linstor-satellite-id=node-01"),
        format!(
            "the host's vgs does not see linstor-vg:\n{}{}",
            run.step("a-vgs").stdout,
            run.step("a-vgs").stderr
        ),
    );
    check_file(&mut checks, &run, "a-file", &other, &ours);
    check_file(&mut checks, &run, "a-file-after-host", &other, &ours);

    // status shows it (JSON and text).
    let status: serde_json::Value =
        serde_json::from_str(&run.step("a-status").stdout).unwrap_or_default();
    checks.that(
        status["host_devices_file"] == "listed",
        format!("status JSON: {}", run.step("a-status").stdout),
    );
    checks.that(
        run.step("a-status-text")
            .stdout
            .contains("host lvm      devices file listed (/etc/lvm/devices/system.devices)"),
        format!("status text: {}", run.step("a-status-text").stdout),
    );

    // Steady: no LVM command, the file untouched (its VERSION counter included).
    checks.steady(&run, "a-steady");
    checks.that(
        run.step("a-file-steady").stdout == run.step("a-file-after-host").stdout,
        format!(
            "a steady start changed the devices file:\n{}\n---\n{}",
            run.step("a-file-after-host").stdout,
            run.step("a-file-steady").stdout
        ),
    );

    // Reset: the old PVID leaves the file, the new one enters; the host sees the VG.
    checks.exit(&run, "a-reset", 0);
    checks.says(&run, "a-reset", &format!("remove PVID {ours}"));
    let reset_pvs = pvs(&run, "a-pvs-reset");
    let new = pvid_of(&reset_pvs, "/dev/vda1");
    checks.that(
        !new.is_empty() && new != ours,
        format!(
            "the host's pvs after the reset shows /dev/vda1 with PVID {new:?} (old {ours}):\n{}{}",
            run.step("a-pvs-reset").stdout,
            run.step("a-pvs-reset").stderr
        ),
    );
    check_file(&mut checks, &run, "a-file-reset", &other, &new);
    check_file(&mut checks, &run, "a-file-reset-after-host", &other, &new);
    checks.that(
        !run.step("a-file-reset-after-host").stdout.contains(&ours),
        format!(
            "the old PVID {ours} is still in the file:\n{}",
            run.step("a-file-reset-after-host").stdout
        ),
    );
    checks.that(
        vgs(&run, "a-vgs-reset")
            .iter()
            .any(|(vg, tags)| vg == "linstor-vg" && tags == "linstor-satellite-id=node-02"),
        format!(
            "the host's vgs does not see the new linstor-vg:\n{}{}",
            run.step("a-vgs-reset").stdout,
            run.step("a-vgs-reset").stderr
        ),
    );
    checks.steady(&run, "a-steady-reset");

    // 1b. A read-only devices-file folder: the reset is refused before LVM runs.
    for step in ["ro-bind", "ro-check", "ro-unbind"] {
        run.expect_success(step);
    }
    checks.refused_before_lvm(
        &run,
        "ro-reset",
        &["its folder is read-only", "lvmdevices --adddev"],
    );
    checks.same(&run, "ro-vgs-before", "ro-vgs-after");

    // 3. Refused, naming the rule; nothing written. --force provisions, warning.
    checks.exit(&run, "f-refused", 1);
    checks.says(
        &run,
        "f-refused",
        "global_filter rule `r|^/dev/vdd1$|` in /etc/lvm/lvm.conf rejects /dev/vdd1",
    );
    checks.that(
        !run.step("f-refused").stderr.contains("running lvm command"),
        format!("f-refused ran LVM:\n{}", run.step("f-refused").stderr),
    );
    // The refused partition is unchanged (both reads succeeded, same sums).
    checks.same(&run, "f-sum-before", "f-sum-after");
    checks.exit(&run, "f-forced", 0);
    checks.says(&run, "f-forced", "--force: the host's global_filter rule");
    checks.that(
        vgs(&run, "f-vgs")
            .iter()
            .any(|(vg, tags)| vg == "fvg" && tags == "linstor-satellite-id=node-01"),
        format!(
            "--force did not provision fvg: {}",
            run.step("f-vgs").stdout
        ),
    );
    checks.that(
        run.step("f-file").stdout.trim() == "ABSENT",
        format!("a devices file was created: {}", run.step("f-file").stdout),
    );

    checks.finish();
}

/// A full file system under the host's devices file (a node's root full, a common
/// Kubernetes failure): `lvmdevices` cannot write the new file. LVM 2.03.16 as
/// Debian builds it renamed the short file over the old one anyway, and every other
/// disk's entry was gone; this tool's static LVM leaves the file as it was and the
/// start fails, naming the edit, and a start after space was freed enters the PV.
#[test]
fn a_full_devices_file_folder_keeps_the_file_and_fails_the_start() {
    let bed = bed(vec![
        DiskSpec::new("ours", 128).partition("linstor-storage", None),
        DiskSpec::new("other", 64).partition("other", None),
    ]);
    let file = DEVICES_FILE;
    let conf = lvm_conf("use_devicesfile = 1");
    let script = format!(
        r#"
{conf}
mkdir -p /etc/lvm/devices
mount -t tmpfs -o size=64k tmpfs /etc/lvm/devices
step pv-other pvcreate --devices /dev/vdb1 /dev/vdb1
step add-other lvm lvmdevices --adddev /dev/vdb1
step before cat {file}
step fill sh -c 'dd if=/dev/zero of=/etc/lvm/devices/fill bs=1k 2>/dev/null; df -k /etc/lvm/devices | tail -n 1'
step full-start $LPD $P --satellite-id node-01
step after-full cat {file}
step free rm /etc/lvm/devices/fill
step rerun $LPD $P --satellite-id node-01
step after-rerun cat {file}
step steady env LOG_LEVEL=debug $LPD $P --satellite-id node-01
"#
    );
    let run = boot(&bed, false, &script);
    let mut checks = Checks::default();
    checks.exit(&run, "pv-other", 0);
    checks.exit(&run, "add-other", 0);
    let other_entries = entries(&run, "before");
    checks.that(
        other_entries.len() == 1,
        format!("setup: one entry expected:\n{}", run.step("before").stdout),
    );
    checks.that(
        run.step("fill").stdout.split_whitespace().nth(3) == Some("0"),
        format!("the folder is not full: {}", run.step("fill").stdout),
    );
    checks.exit(&run, "full-start", 1);
    checks.says(&run, "full-start", "lvmdevices --adddev /dev/vda1");
    // The file as it was: the other disk's entry kept, nothing half-written.
    checks.same(&run, "before", "after-full");
    checks.exit(&run, "free", 0);
    checks.exit(&run, "rerun", 0);
    checks.exit(&run, "after-rerun", 0);
    let after = entries(&run, "after-rerun");
    checks.that(
        other_entries.iter().all(|e| after.contains(e))
            && after
                .iter()
                .any(|l| field(l, "DEVNAME") == "/dev/vda1" && field(l, "IDNAME") != "."),
        format!(
            "after space was freed the file should list both disks:\n{}",
            run.step("after-rerun").stdout
        ),
    );
    checks.steady(&run, "steady");
    checks.finish();
}
