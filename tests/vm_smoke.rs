//! Proves the VM test bed works: a GPT partition label is visible in the
//! guest, and Debian's lvm2 builds a thin pool on it. Needs qemu-system-x86,
//! gdisk, lvm2, thin-provisioning-tools, udev, busybox-static, kmod (see .ci/run).

use std::path::Path;
use std::time::Duration;

use vmtest::{BootOptions, DiskSpec, GuestRun, TestBed};

const BIN: &str = env!("CARGO_BIN_EXE_linstor-provision-disk");
const LABEL: &str = "linstor-storage";

fn bed() -> TestBed {
    match TestBed::new(vec![DiskSpec::new("disk0", 1024).partition(LABEL, None)]) {
        Ok(bed) => bed.with_binary(Path::new(BIN)),
        Err(e) => panic!("could not set up the VM test bed: {e}"),
    }
}

fn boot(bed: &TestBed, opts: &BootOptions, script: &str) -> GuestRun {
    match bed.boot(opts, script) {
        Ok(run) => {
            eprintln!(
                "guest: script started at uptime {:?}, qemu ran {:?}",
                run.guest_uptime_at_script, run.elapsed
            );
            run
        }
        Err(e) => panic!("VM boot failed: {e}"),
    }
}

#[test]
fn guest_sees_gpt_label_and_creates_thin_pool() {
    let bed = bed();
    let run = boot(
        &bed,
        &BootOptions::default(),
        r#"
step binary test -x /usr/local/bin/linstor-provision-disk
step libs /lib64/ld-linux-x86-64.so.2 --list /usr/local/bin/linstor-provision-disk
step uevent cat /sys/class/block/vda1/uevent
step pvcreate pvcreate /dev/vda1
step vgcreate vgcreate vg /dev/vda1
step pool lvcreate --type thin-pool -L 100M -n pool vg
step thin lvcreate -V 50M -T vg/pool -n t1
step lvs lvs --reportformat json -o lv_name,vg_name,lv_attr,pool_lv
"#,
    );
    run.expect_success("binary");
    let libs = run.expect_success("libs");
    run.check(
        !libs.stdout.contains("not found"),
        &format!(
            "the binary's shared libraries are incomplete in the guest:\n{}",
            libs.stdout
        ),
    );
    let uevent = run.expect_success("uevent");
    run.check(
        uevent
            .stdout
            .lines()
            .any(|l| l == format!("PARTNAME={LABEL}")),
        &format!("vda1 uevent lacks PARTNAME={LABEL}:\n{}", uevent.stdout),
    );
    for s in ["pvcreate", "vgcreate", "pool", "thin"] {
        run.expect_success(s);
    }
    let lvs = run.expect_success("lvs");
    for lv in ["\"lv_name\":\"pool\"", "\"lv_name\":\"t1\""] {
        let compact: String = lvs.stdout.split_whitespace().collect();
        run.check(
            compact.contains(lv),
            &format!("lvs does not show {lv}:\n{}", lvs.stdout),
        );
    }
}

#[test]
fn udevd_records_partition_label() {
    let bed = bed();
    let opts = BootOptions {
        udevd: true,
        timeout: Duration::from_secs(300),
        ..BootOptions::default()
    };
    let run = boot(
        &bed,
        &opts,
        r#"
step devnum cat /sys/class/block/vda1/dev
step udevdata sh -c 'cat /run/udev/data/b$(cat /sys/class/block/vda1/dev)'
step byid ls /dev/disk/by-id/
step pool sh -c 'pvcreate -q /dev/vda1 && vgcreate -q vg /dev/vda1 && lvcreate -q --type thin-pool -L 100M -n pool vg'
step settle udevadm settle --timeout=30
step dmdata sh -c 'cat /run/udev/data/b$(cat /sys/block/dm-*/dev | tail -n 1)'
"#,
    );
    let devnum = run.expect_success("devnum").stdout.trim().to_string();
    let data = run.expect_success("udevdata");
    run.check(
        data.stdout
            .lines()
            .any(|l| l == format!("E:ID_PART_ENTRY_NAME={LABEL}")),
        &format!(
            "/run/udev/data/b{devnum} lacks ID_PART_ENTRY_NAME={LABEL}:\n{}",
            data.stdout
        ),
    );
    let byid = run.expect_success("byid");
    run.check(
        byid.stdout.contains("virtio-disk0-part1"),
        &format!("/dev/disk/by-id lacks virtio-disk0-part1:\n{}", byid.stdout),
    );
    // LVM writes with udevd running must not wait for it, and udevd sees the DM devices.
    run.expect_success("pool");
    run.expect_success("settle");
    let dm = run.expect_success("dmdata");
    run.check(
        dm.stdout.contains("DM_NAME=vg-pool"),
        &format!("udev has no DM_NAME for the pool:\n{}", dm.stdout),
    );
}
