//! Self-tests of the VM test bed: the guest's tool set works, disks keep
//! their contents across boots, and failures come back as errors.

use std::time::Duration;

use vmtest::{BootOptions, DiskSpec, TestBed, VmError};

fn bed(disks: Vec<DiskSpec>) -> TestBed {
    TestBed::new(disks).unwrap_or_else(|e| panic!("could not set up the VM test bed: {e}"))
}

#[test]
fn guest_tools_work() {
    let bed = bed(vec![
        DiskSpec::new("parts", 1024)
            .partition("fs-ext4", Some(64))
            .partition("fs-xfs", Some(320))
            .partition("fs-btrfs", Some(200))
            .partition("luks", Some(64))
            .partition("lvm", None),
        DiskSpec::new("blank", 64),
    ]);
    let opts = BootOptions {
        modules: vec!["dm_crypt".into()],
        ..BootOptions::default()
    };
    let run = bed
        .boot(
            &opts,
            r#"
step lsblk lsblk -rno NAME,PARTLABEL
step ext4 sh -c 'mkfs.ext4 -q /dev/vda1 && mount /dev/vda1 /mnt && echo hi >/mnt/f && umount /mnt'
step xfs sh -c 'mkfs.xfs -q /dev/vda2 && mount /dev/vda2 /mnt && umount /mnt'
step btrfs sh -c 'mkfs.btrfs -q /dev/vda3 && mount /dev/vda3 /mnt && umount /mnt'
step luks sh -c 'echo -n secret | cryptsetup luksFormat -q --pbkdf pbkdf2 --pbkdf-force-iterations 1000 /dev/vda4 -'
step blkid blkid -o export /dev/vda1 /dev/vda2 /dev/vda3 /dev/vda4
step open sh -c 'echo -n secret | cryptsetup open --key-file=- /dev/vda4 plain && dmsetup ls && cryptsetup close plain'
step thin sh -c 'pvcreate -q /dev/vda5 && vgcreate -q vg /dev/vda5 && lvcreate -q --type thin-pool -L 64M -n pool vg && vgchange -an vg && vgchange -ay vg'
step thin_check thin_check -V
step dmtable dmsetup table
step sgdisk sgdisk -p /dev/vda
step binary sh -c 'printf "\000\001\377"'
step exit7 sh -c 'echo out; echo err >&2; exit 7'
step blank blockdev --getsize64 /dev/vdb
step byid-missing ls /dev/disk/by-id
"#,
        )
        .unwrap_or_else(|e| panic!("VM boot failed: {e}"));
    for s in [
        "lsblk",
        "ext4",
        "xfs",
        "btrfs",
        "luks",
        "blkid",
        "open",
        "thin",
        "thin_check",
        "sgdisk",
    ] {
        run.expect_success(s);
    }
    let blkid = &run.step("blkid").stdout;
    for t in [
        "TYPE=ext4",
        "TYPE=xfs",
        "TYPE=btrfs",
        "TYPE=crypto_LUKS",
        "PARTLABEL=luks",
    ] {
        run.check(blkid.contains(t), &format!("blkid lacks {t}:\n{blkid}"));
    }
    run.check(
        run.step("dmtable").stdout.contains("thin-pool"),
        "no thin-pool table",
    );
    assert_eq!(run.step("binary").stdout_raw, vec![0u8, 1, 255]);
    let e = run.step("exit7");
    assert_eq!(
        (e.exit_code, e.stdout.as_str(), e.stderr.as_str()),
        (7, "out\n", "err\n")
    );
    assert_eq!(
        run.expect_success("blank").stdout.trim(),
        (64u64 << 20).to_string()
    );
    // No udevd: no /dev/disk/by-id.
    assert_ne!(run.step("byid-missing").exit_code, 0);
    assert_eq!(
        run.script_exit_code,
        run.step("byid-missing").exit_code,
        "the script's exit code is that of its last command"
    );
}

#[test]
fn disks_persist_across_boots_and_failures_are_errors() {
    let bed = bed(vec![DiskSpec::new("d", 256).partition("p", None)]);
    let opts = BootOptions::default();
    let first = bed
        .boot(
            &opts,
            "step vg sh -c 'pvcreate -q /dev/vda1 && vgcreate -q keep /dev/vda1'",
        )
        .unwrap_or_else(|e| panic!("first boot failed: {e}"));
    first.expect_success("vg");

    // Grow the image between boots; the guest sees the new size.
    let img = bed.disk_path("d");
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&img)
        .unwrap_or_else(|e| panic!("opening {}: {e}", img.display()));
    f.set_len(512 << 20)
        .unwrap_or_else(|e| panic!("growing {}: {e}", img.display()));
    drop(f);

    let second = bed
        .boot(
            &opts,
            "step vgs vgs --noheadings -o vg_name\nstep size blockdev --getsize64 /dev/vda\nexit 3",
        )
        .unwrap_or_else(|e| panic!("second boot failed: {e}"));
    assert_eq!(second.expect_success("vgs").stdout.trim(), "keep");
    assert_eq!(
        second.expect_success("size").stdout.trim(),
        (512u64 << 20).to_string()
    );
    assert_eq!(second.script_exit_code, 3);

    // The script never ends: the host must kill qemu at the deadline.
    let hang = bed.boot(
        &BootOptions {
            timeout: Duration::from_secs(30),
            ..BootOptions::default()
        },
        "sleep 1000",
    );
    assert!(
        matches!(hang, Err(VmError::Timeout { .. })),
        "expected a timeout, got {hang:?}"
    );

    match bed.boot(&opts, "if then fi") {
        Err(VmError::Spec(msg)) => assert!(msg.contains("syntax error"), "{msg}"),
        other => panic!("expected a syntax error, got {other:?}"),
    }

    match bed.boot(&opts, "echo c >/proc/sysrq-trigger") {
        Err(VmError::KernelPanic { console_tail }) => {
            assert!(console_tail.contains("sysrq"), "{console_tail}")
        }
        other => panic!("expected a kernel panic, got {other:?}"),
    }
}
