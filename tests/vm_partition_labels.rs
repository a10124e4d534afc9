//! Partition labels the kernel cannot spell, on real GPT disks made by sgdisk.
//!
//! The guest's kernel reduces GPT names to 7 bits in `PARTNAME` ("stockage-é"
//! becomes `stockage-i`, "Łódź" becomes `Asdz`) and keeps trailing spaces; libblkid
//! (udev's `ID_PART_ENTRY_NAME`, or the tool reading the GPT entry) decodes the
//! full name and trims trailing whitespace. Without udevd the tool must still
//! resolve non-ASCII labels exactly — and must not take the kernel's 7-bit
//! spelling for a label nobody gave — and both backends must agree on trailing
//! whitespace. (Kernels before the 2025 fix write raw Latin-1 bytes into
//! `PARTNAME` instead; that case is covered by the unit tests' fake sysfs.)
mod common;

use common::*;
use serde_json::Value;
use vmtest::{DiskSpec, GuestRun};

/// (device node, label, label source) of every labelled partition in a
/// `devices --json` step.
fn labels(run: &GuestRun, step: &str) -> Vec<(String, String, String)> {
    json(run, step)
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| !d["partition_label"].is_null())
        .map(|d: &Value| {
            (
                text(&d["devnode"]),
                text(&d["partition_label"]),
                text(&d["label_source"]),
            )
        })
        .collect()
}

fn label_of<'a>(all: &'a [(String, String, String)], node: &str) -> (&'a str, &'a str) {
    all.iter()
        .find(|(n, _, _)| n == node)
        .map(|(_, l, s)| (l.as_str(), s.as_str()))
        .unwrap_or_else(|| panic!("{node} is not listed with a label: {all:?}"))
}

const FLAGS: &str = "--pool pool --satellite-id n --on-failure exit";

#[test]
fn labels_the_kernel_cannot_spell_resolve_exactly_with_and_without_udev() {
    let bed = bed(vec![
        DiskSpec::new("unicode", 256)
            .partition("stockage-é", Some(96))
            .partition("Łódź", None),
        DiskSpec::new("spaces", 256)
            .partition("data  ", Some(96))
            .partition("twin", Some(64))
            .partition("twin ", None),
    ]);

    // Boot 1: no udevd, so no /run/udev data: the kernel's PARTNAME and the GPT
    // itself are all there is.
    let script = format!(
        r#"
step no-udev-data sh -c '! ls /run/udev/data/b* 2>/dev/null'
step partname-e cat /sys/class/block/vda1/uevent
step partname-l cat /sys/class/block/vda2/uevent
step partname-ws cat /sys/class/block/vdb1/uevent
step devices $LPD --discovery sysfs devices --json
step seven-bit $LPD --discovery sysfs --partition-label stockage-i --volume-group vgi {FLAGS}
step seven-bit-blank wipefs /dev/vda1
step fresh-e $LPD --discovery sysfs --partition-label stockage-é --volume-group vge {FLAGS}
step steady-e $LPD --discovery sysfs --partition-label stockage-é --volume-group vge {FLAGS}
step pvs-e pvs --reportformat json -o pv_name,vg_name
step fresh-ws $LPD --discovery sysfs --partition-label data --volume-group vgd {FLAGS}
step steady-ws-as-given $LPD --discovery sysfs --partition-label 'data  ' --volume-group vgd {FLAGS}
step pvs-ws pvs --reportformat json -o pv_name,vg_name
step twin $LPD --discovery sysfs --partition-label twin --volume-group vgt {FLAGS}
"#
    );
    let run = boot(&bed, false, &script);
    run.expect_success("no-udev-data");
    // What this kernel does with each name (the premise of the test).
    let uevent = |step: &str| run.expect_success(step).stdout.clone();
    assert!(
        uevent("partname-e").contains("PARTNAME=stockage-i\n"),
        "{}",
        uevent("partname-e")
    );
    assert!(
        uevent("partname-l").contains("PARTNAME=Asdz\n"),
        "{}",
        uevent("partname-l")
    );
    assert!(
        uevent("partname-ws").contains("PARTNAME=data  \n"),
        "{}",
        uevent("partname-ws")
    );

    // The kernel's 7-bit spelling is not a label: refused, the partition untouched.
    let seven = expect_exit(&run, "seven-bit", 1);
    assert!(
        seven
            .stderr
            .contains("no partition has the GPT partition label \"stockage-i\"")
            && seven.stderr.contains("\"stockage-é\" on /dev/vda1"),
        "{}",
        seven.stderr
    );
    let blank = run.expect_success("seven-bit-blank");
    assert!(
        blank.stdout.trim().is_empty(),
        "the refused partition got a signature:\n{}",
        blank.stdout
    );

    // Every device listed; the mangled names read from the GPT, trailing spaces gone.
    let listed = labels(&run, "devices");
    assert_eq!(
        label_of(&listed, "/dev/vda1"),
        ("stockage-é", "gpt_entry"),
        "{listed:?}"
    );
    assert_eq!(
        label_of(&listed, "/dev/vda2"),
        ("Łódź", "gpt_entry"),
        "{listed:?}"
    );
    assert_eq!(
        label_of(&listed, "/dev/vdb1"),
        ("data", "gpt_entry"),
        "{listed:?}"
    );
    assert_eq!(label_of(&listed, "/dev/vdb3").0, "twin", "{listed:?}");

    // The real name resolves and provisions without udev, and is steady after.
    expect_provisioned(&run, "fresh-e");
    assert!(
        expect_provisioned(&run, "steady-e")
            .stderr
            .contains("lvm_commands=0"),
        "{}",
        run.step("steady-e").stderr
    );
    let pvs = rows(&run, "pvs-e", "pv");
    assert!(
        pvs.iter()
            .any(|r| text(&r["pv_name"]) == "/dev/vda1" && text(&r["vg_name"]) == "vge"),
        "{pvs:?}"
    );

    // Trailing whitespace: "data" and "data  " name the same partition.
    expect_provisioned(&run, "fresh-ws");
    assert!(expect_provisioned(&run, "steady-ws-as-given")
        .stderr
        .contains("lvm_commands=0"));
    let pvs = rows(&run, "pvs-ws", "pv");
    assert!(
        pvs.iter()
            .any(|r| text(&r["pv_name"]) == "/dev/vdb1" && text(&r["vg_name"]) == "vgd"),
        "{pvs:?}"
    );
    // "twin" and "twin " are one label: refused as ambiguous, both named.
    let twin = expect_exit(&run, "twin", 1);
    assert!(
        twin.stderr.contains("/dev/vdb2") && twin.stderr.contains("/dev/vdb3"),
        "{}",
        twin.stderr
    );

    // Boot 2: udevd running. Both backends list the same names, and the labels
    // resolve to the partitions provisioned above (nothing to do).
    let has_udev = binary_has_udev();
    let udev = if has_udev { "udev" } else { "sysfs" };
    let script = format!(
        r#"
step udevdb sh -c 'cat /run/udev/data/b$(cat /sys/class/block/vdb1/dev)'
step devices-udev $LPD --discovery {udev} devices --json
step devices-sysfs $LPD --discovery sysfs devices --json
step udev-e $LPD --discovery {udev} --partition-label stockage-é --volume-group vge {FLAGS}
step udev-ws $LPD --discovery {udev} --partition-label 'data  ' --volume-group vgd {FLAGS}
step sysfs-ws $LPD --discovery sysfs --partition-label data --volume-group vgd {FLAGS}
step udev-twin $LPD --discovery {udev} --partition-label 'twin ' --volume-group vgt {FLAGS}
"#
    );
    let run = boot(&bed, true, &script);
    assert!(
        run.expect_success("udevdb")
            .stdout
            .contains("ID_PART_ENTRY_NAME=data\n"),
        "udev's name keeps no trailing spaces: {}",
        run.step("udevdb").stdout
    );
    let by_udev = labels(&run, "devices-udev");
    let by_sysfs = labels(&run, "devices-sysfs");
    let names = |all: &[(String, String, String)]| -> Vec<(String, String)> {
        all.iter().map(|(n, l, _)| (n.clone(), l.clone())).collect()
    };
    assert_eq!(names(&by_udev), names(&by_sysfs));
    assert_eq!(label_of(&by_udev, "/dev/vda1"), ("stockage-é", "udev"));
    assert_eq!(label_of(&by_udev, "/dev/vdb1"), ("data", "udev"));
    // Same partitions as in boot 1, nothing created: the first run per VG after
    // the reboot only activates the pool; the second run of "data" does nothing.
    for (step, node) in [
        ("udev-e", "/dev/vda1"),
        ("udev-ws", "/dev/vdb1"),
        ("sysfs-ws", "/dev/vdb1"),
    ] {
        let log = &expect_provisioned(&run, step).stderr;
        assert!(
            log.contains(&format!("resolved partition partition={node} "))
                && !log.contains(" INFO create "),
            "{step}: {log}"
        );
    }
    assert!(run.step("sysfs-ws").stderr.contains("lvm_commands=0"));
    let twin = expect_exit(&run, "udev-twin", 1);
    assert!(
        twin.stderr.contains("/dev/vdb2") && twin.stderr.contains("/dev/vdb3"),
        "{}",
        twin.stderr
    );
}
