//! Discovery and label resolution against a fake sysfs tree and udev database.

use super::test_tree::FakeSysfs;
use super::*;

/// vda with three partitions: label only in the kernel's PARTNAME (vda1),
/// only in udev's database (vda2), and none at all (vda3); plus a loop
/// device, a RAM disk and an LVM volume.
fn machine() -> FakeSysfs {
    let fake = FakeSysfs::new();
    fake.add_disk("vda", 254, 0, 20_000);
    fake.add_partition("vda", "vda1", (254, 1), 1, 2048, Some("boot"));
    fake.add_partition("vda", "vda2", (254, 2), 2, 10_000, None);
    fake.add_udev_db(
        254,
        2,
        &[
            ("ID_PART_ENTRY_NAME", "linstor\\x20storage"),
            ("ID_PART_ENTRY_UUID", "6A9F2E4C-0D1B-4F47-9B8E-2C55A0F0E1D2"),
            ("ID_PART_ENTRY_NUMBER", "2"),
        ],
    );
    fake.add_partition("vda", "vda3", (254, 3), 3, 100, None);
    fake.add_disk("loop0", 7, 0, 4096);
    fake.add_disk("ram0", 1, 0, 8192);
    fake.add_dm(
        "dm-0",
        0,
        "linstor--vg-linstor--pool",
        "LVM-abcdefghijklmnopqrstuvwxyz012345ABCDEFGHIJKLMNOPQRSTUVWXYZ012345-tpool",
    );
    fake
}

fn ok<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("unexpected error: {e}"),
    }
}

#[test]
fn lists_devices_with_kinds_sizes_and_parents() {
    let fake = machine();
    let devices = ok(fake.backend().list_block_devices());
    let names: Vec<&str> = devices.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["loop0", "dm-0", "vda", "vda1", "vda2", "vda3"]);

    let vda2 = &devices[4];
    assert_eq!(vda2.devnode, PathBuf::from("/dev/vda2"));
    assert_eq!((vda2.major, vda2.minor), (254, 2));
    assert_eq!(vda2.kind, DeviceKind::Partition);
    assert_eq!(vda2.parent.as_deref(), Some("vda"));
    assert_eq!(vda2.size_bytes, 10_000 * 512);
    assert_eq!(vda2.partition_number, Some(2));
    assert_eq!(
        vda2.partition_uuid.as_deref(),
        Some("6a9f2e4c-0d1b-4f47-9b8e-2c55a0f0e1d2")
    );

    let vda = &devices[2];
    assert_eq!((vda.kind, vda.parent.as_deref()), (DeviceKind::Disk, None));
    assert_eq!(vda.partition_number, None);

    let dm = &devices[1];
    assert_eq!(dm.kind, DeviceKind::DeviceMapper);
    assert_eq!(dm.dm_name.as_deref(), Some("linstor--vg-linstor--pool"));
    assert!(dm.dm_uuid.as_deref().is_some_and(|u| u.starts_with("LVM-")));
}

#[test]
fn label_only_in_kernel_partname() {
    let fake = machine();
    let d = ok(fake.backend().resolve_partition_by_label("boot"));
    assert_eq!(d.name, "vda1");
    assert_eq!(d.label_source, Some(LabelSource::Kernel));
}

#[test]
fn label_only_in_udev_db_with_escaped_space() {
    let fake = machine();
    let d = ok(fake.backend().resolve_partition_by_label("linstor storage"));
    assert_eq!(d.name, "vda2");
    assert_eq!(d.label_source, Some(LabelSource::Udev));
    // The escaped spelling is not the label.
    assert!(matches!(
        fake.backend()
            .resolve_partition_by_label("linstor\\x20storage"),
        Err(ResolveError::NotFound { .. })
    ));
}

#[test]
fn labels_with_spaces_and_utf8_in_partname() {
    let fake = FakeSysfs::new();
    fake.add_disk("sda", 8, 0, 1000);
    fake.add_partition("sda", "sda1", (8, 1), 1, 500, Some("my data disk"));
    fake.add_partition("sda", "sda2", (8, 2), 2, 500, Some("Größe ✓"));
    assert_eq!(
        ok(fake.backend().resolve_partition_by_label("my data disk")).name,
        "sda1"
    );
    assert_eq!(
        ok(fake.backend().resolve_partition_by_label("Größe ✓")).name,
        "sda2"
    );
    // Exact match only: no trimming, no case folding.
    assert!(fake
        .backend()
        .resolve_partition_by_label("my data disk ")
        .is_err());
    assert!(fake
        .backend()
        .resolve_partition_by_label("MY DATA DISK")
        .is_err());
}

#[test]
fn udev_name_wins_when_kernel_and_udev_differ() {
    let fake = FakeSysfs::new();
    fake.add_disk("sda", 8, 0, 1000);
    fake.add_partition("sda", "sda1", (8, 1), 1, 500, Some("gr!!e"));
    fake.add_udev_db(8, 1, &[("ID_PART_ENTRY_NAME", "größe")]);
    let d = ok(fake.backend().resolve_partition_by_label("größe"));
    assert_eq!(d.partition_label.as_deref(), Some("größe"));
}

#[test]
fn duplicate_labels_are_ambiguous_and_list_every_match() {
    let fake = FakeSysfs::new();
    fake.add_disk("vda", 254, 0, 1000);
    fake.add_disk("vdb", 254, 16, 1000);
    fake.add_partition("vda", "vda1", (254, 1), 1, 500, Some("linstor-storage"));
    fake.add_partition("vdb", "vdb1", (254, 17), 1, 700, None);
    fake.add_udev_db(254, 17, &[("ID_PART_ENTRY_NAME", "linstor-storage")]);
    match fake.backend().resolve_partition_by_label("linstor-storage") {
        Err(e @ ResolveError::Ambiguous { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("/dev/vda1") && text.contains("/dev/vdb1"),
                "{text}"
            );
            assert!(text.contains("refusing"), "{text}");
            if let ResolveError::Ambiguous { devices, .. } = e {
                let names: Vec<&str> = devices.iter().map(|d| d.name.as_str()).collect();
                assert_eq!(names, ["vda1", "vdb1"]);
            }
        }
        other => panic!("expected Ambiguous, got {other:?}"),
    }
}

#[test]
fn missing_label_lists_existing_labels_and_hints_lsblk() {
    let fake = machine();
    match fake.backend().resolve_partition_by_label("linstor-storage") {
        Err(e @ ResolveError::NotFound { .. }) => {
            let text = e.to_string();
            assert!(text.contains("\"boot\" on /dev/vda1"), "{text}");
            assert!(text.contains("\"linstor storage\" on /dev/vda2"), "{text}");
            assert!(text.contains("lsblk -o NAME,PARTLABEL"), "{text}");
            if let ResolveError::NotFound {
                existing_labels, ..
            } = e
            {
                assert_eq!(existing_labels.len(), 2);
            }
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[test]
fn no_labels_at_all_says_so() {
    let fake = FakeSysfs::new();
    fake.add_disk("vda", 254, 0, 1000);
    let text = fake
        .backend()
        .resolve_partition_by_label("x")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        text.contains("no partition on this machine has a label"),
        "{text}"
    );
}

#[test]
fn missing_sysfs_names_the_path() {
    let fake = FakeSysfs::new();
    let text = fake
        .backend()
        .list_block_devices()
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(text.contains("class/block"), "{text}");
}

#[test]
fn vanished_device_is_skipped() {
    let fake = machine();
    // A class/block entry whose target is gone, as when a loop device is
    // detached mid-scan.
    let link = fake.sys().join("class/block/loop9");
    if let Err(e) = std::os::unix::fs::symlink("../../devices/virtual/block/loop9", link) {
        panic!("{e}");
    }
    assert_eq!(ok(fake.backend().list_block_devices()).len(), 6);
}

#[test]
fn backend_names_round_trip() {
    assert_eq!(
        "sysfs".parse::<DiscoveryBackend>().ok(),
        Some(DiscoveryBackend::Sysfs)
    );
    assert_eq!(DiscoveryBackend::Sysfs.to_string(), "sysfs");
    #[cfg(feature = "udev")]
    assert_eq!(
        "udev".parse::<DiscoveryBackend>().ok(),
        Some(DiscoveryBackend::Udev)
    );
    assert!("lsblk".parse::<DiscoveryBackend>().is_err());
}

/// Both backends read the same machine the same way. Devices may come and go
/// while others' tests run, so a few attempts are allowed.
#[cfg(feature = "udev")]
#[test]
fn udev_and_sysfs_agree_on_this_machine() {
    let mut last = String::new();
    for _ in 0..5 {
        let udev = ok(list_block_devices(DiscoveryBackend::Udev));
        let sysfs = ok(list_block_devices(DiscoveryBackend::Sysfs));
        if udev == sysfs {
            assert!(!sysfs.is_empty(), "no block devices found at all");
            return;
        }
        last = format!("udev: {udev:#?}\nsysfs: {sysfs:#?}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    panic!("backends disagree:\n{last}");
}
