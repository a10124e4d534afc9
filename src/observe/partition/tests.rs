//! Discovery and label resolution against a fake sysfs tree and udev database.

use super::test_tree::{self, FakeSysfs};
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
    assert_eq!(vda2.size_bytes, Bytes(10_000 * 512));
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
fn the_label_listing_skips_only_details_of_devices_without_a_partition_name() {
    let fake = machine();
    // A kpartx-style mapping of a GPT partition: udev gives it a partition label.
    fake.add_dm("dm-1", 1, "loop0p1", "part1-loop0");
    fake.add_udev_db(253, 1, &[("ID_PART_ENTRY_NAME", "boot")]);
    fake.set_gpt_name("vda", 1, Some("boot"));
    let full = ok(fake.backend().list_block_devices());
    let for_labels = ok(fake.backend().list_for_labels());
    let names =
        |list: &[BlockDevice]| -> Vec<String> { list.iter().map(|d| d.name.clone()).collect() };
    assert_eq!(names(&full), names(&for_labels));
    for (whole, light) in full.iter().zip(&for_labels) {
        assert_eq!(
            whole.partition_label, light.partition_label,
            "{}",
            whole.name
        );
        assert_eq!(whole.kind, light.kind, "{}", whole.name);
        if whole.name == "dm-0" {
            // An LVM volume: no label, so only what finding a label needs.
            assert_eq!(
                (light.size_bytes, light.dm_name.as_deref()),
                (Bytes(0), None)
            );
            assert!(whole.size_bytes > Bytes(0) && whole.dm_name.is_some());
        } else if whole.kind == DeviceKind::Disk && whole.dm_name.is_none() {
            // A whole disk is no GPT entry: listed, its size not read.
            assert_eq!(light.size_bytes, Bytes(0), "{}", whole.name);
            assert_eq!(
                BlockDevice {
                    size_bytes: whole.size_bytes,
                    ..light.clone()
                },
                *whole
            );
        } else {
            // Everything but the size, which the label listing never reads.
            assert_eq!(light.size_bytes, Bytes(0), "{}", whole.name);
            assert_eq!(
                BlockDevice {
                    size_bytes: whole.size_bytes,
                    ..light.clone()
                },
                *whole,
                "{}",
                whole.name
            );
        }
    }
    // Both list the labeled mapping, so a duplicate label is still seen.
    let found = find_by_label_with(&for_labels, "boot", fake.gpts.as_ref());
    assert!(
        matches!(found, Err(ResolveError::Ambiguous { .. })),
        "{found:?}"
    );
}

#[test]
fn a_device_mapper_device_with_any_label_is_listed_in_full_for_labels() {
    let fake = machine();
    fake.add_dm("dm-2", 2, "crypt-x", "CRYPT-x");
    let uevent = fake.sys().join("devices/virtual/block/dm-2/uevent");
    test_tree::write(
        &uevent,
        "MAJOR=253\nMINOR=2\nDEVNAME=dm-2\nDEVTYPE=disk\nPARTNAME=boot\n",
    );
    let full = ok(fake.backend().list_block_devices());
    let for_labels = ok(fake.backend().list_for_labels());
    let dm2 = |list: &[BlockDevice]| list.iter().find(|d| d.name == "dm-2").cloned();
    assert!(dm2(&full).is_some_and(|d| d.size_bytes > Bytes(0)));
    // In full but for the size, which no label search reads.
    assert_eq!(
        dm2(&full).map(|d| BlockDevice {
            size_bytes: Bytes(0),
            ..d
        }),
        dm2(&for_labels)
    );
}

/// Only a partition (or a kpartx mapping) is a GPT entry: udev's blkid sets
/// ID_PART_ENTRY_NAME for nothing else, so a whole disk's udev entry is not read
/// when searching for a label. A local rule that names a disk anyway shows in the
/// full listing, never as a candidate.
#[test]
fn a_whole_disk_is_never_a_label_candidate() {
    let fake = machine();
    fake.add_udev_db(7, 0, &[("ID_PART_ENTRY_NAME", "boot")]);
    let full = ok(fake.backend().list_block_devices());
    let loop0 = |list: &[BlockDevice]| list.iter().find(|d| d.name == "loop0").cloned();
    assert_eq!(
        loop0(&full).and_then(|d| d.partition_label),
        Some("boot".to_owned())
    );
    let for_labels = ok(fake.backend().list_for_labels());
    assert_eq!(loop0(&for_labels).map(|d| d.partition_label), Some(None));
    assert_eq!(
        ok(fake.backend().resolve_partition_by_label("boot")).name,
        "vda1"
    );
}

#[test]
fn label_only_in_kernel_partname_is_confirmed_by_the_gpt() {
    let fake = machine();
    let listed = ok(fake.backend().list_block_devices());
    assert_eq!(listed[3].label_source, Some(LabelSource::Kernel));
    assert!(fake.gpts.reads().is_empty(), "listing read a GPT");
    let d = ok(fake.backend().resolve_partition_by_label("boot"));
    assert_eq!(d.name, "vda1");
    assert_eq!(d.label_source, Some(LabelSource::GptEntry));
    assert_eq!(fake.gpts.reads(), ["vda"]);
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
fn labels_with_spaces_and_utf8_names() {
    let fake = FakeSysfs::new();
    fake.add_disk("sda", 8, 0, 1000);
    fake.add_partition("sda", "sda1", (8, 1), 1, 500, Some("my data disk"));
    // What a current kernel shows for "Größe ✓": 7 bits per UTF-16 unit.
    fake.add_partition_bytes("sda", "sda2", (8, 2), 2, 500, Some(b"Gr6_e !"));
    fake.set_gpt_name("sda", 2, Some("Größe ✓"));
    assert_eq!(
        ok(fake.backend().resolve_partition_by_label("my data disk")).name,
        "sda1"
    );
    let d = ok(fake.backend().resolve_partition_by_label("Größe ✓"));
    assert_eq!(
        (d.name.as_str(), d.label_source),
        ("sda2", Some(LabelSource::GptEntry))
    );
    // No case folding.
    assert!(fake
        .backend()
        .resolve_partition_by_label("MY DATA DISK")
        .is_err());
}

#[test]
fn non_utf8_partname_never_breaks_the_listing() {
    let fake = FakeSysfs::new();
    fake.add_disk("sda", 8, 0, 1000);
    fake.add_disk("sdb", 8, 16, 1000);
    // A kernel before the 2025 fix: "é" (U+00E9) as the single byte 0xE9.
    fake.add_partition_bytes("sda", "sda1", (8, 1), 1, 500, Some(b"stockage-\xe9"));
    fake.set_gpt_name("sda", 1, Some("stockage-é"));
    fake.add_partition("sda", "sda2", (8, 2), 2, 500, Some("plain"));
    fake.add_partition_bytes("sdb", "sdb1", (8, 17), 1, 500, Some(b"caf\xe9"));
    fake.make_gpt_unreadable("sdb");
    let devices = ok(fake.backend().list_block_devices());
    let labels: Vec<(&str, Option<&str>, Option<LabelSource>)> = devices
        .iter()
        .map(|d| {
            (
                d.name.as_str(),
                d.partition_label.as_deref(),
                d.label_source,
            )
        })
        .collect();
    assert_eq!(
        labels,
        [
            ("sda", None, None),
            ("sda1", Some("stockage-é"), Some(LabelSource::GptEntry)),
            ("sda2", Some("plain"), Some(LabelSource::Kernel)),
            ("sdb", None, None),
            ("sdb1", Some("caf\u{fffd}"), Some(LabelSource::KernelLossy)),
        ]
    );
    // Only the disks of mangled names were read, once each.
    assert_eq!(fake.gpts.reads(), ["sda", "sdb"]);
    assert_eq!(
        ok(fake.backend().resolve_partition_by_label("stockage-é")).name,
        "sda1"
    );
    // A mangled name is shown, never matched.
    assert!(matches!(
        fake.backend().resolve_partition_by_label("caf\u{fffd}"),
        Err(ResolveError::NotFound { .. })
    ));
}

#[test]
fn seven_bit_partname_does_not_stand_for_the_real_name() {
    // A current kernel shows "stockage-é" as "stockage-i" and "Łódź" as "Asdz".
    let fake = FakeSysfs::new();
    fake.add_disk("vda", 254, 0, 1000);
    fake.add_partition_bytes("vda", "vda1", (254, 1), 1, 500, Some(b"stockage-i"));
    fake.set_gpt_name("vda", 1, Some("stockage-é"));
    fake.add_disk("vdb", 254, 16, 1000);
    fake.add_partition_bytes("vdb", "vdb1", (254, 17), 1, 500, Some(b"Asdz"));
    fake.set_gpt_name("vdb", 1, Some("Łódź"));
    match fake.backend().resolve_partition_by_label("stockage-i") {
        Err(e @ ResolveError::NotFound { .. }) => {
            let text = e.to_string();
            // The error lists the real names, read from the GPTs.
            assert!(text.contains("\"stockage-é\" on /dev/vda1"), "{text}");
            assert!(text.contains("\"Łódź\" on /dev/vdb1"), "{text}");
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    // vda to confirm the match, vdb for the error message.
    assert_eq!(fake.gpts.reads(), ["vda", "vdb"]);
    // A non-ASCII label reads every disk with a kernel-named partition.
    let d = ok(fake.backend().resolve_partition_by_label("Łódź"));
    assert_eq!(
        (d.name.as_str(), d.label_source),
        ("vdb1", Some(LabelSource::GptEntry))
    );
    assert_eq!(fake.gpts.reads(), ["vda", "vdb", "vda", "vdb"]);
}

#[test]
fn steady_resolution_reads_only_the_matched_disk_or_none() {
    let fake = FakeSysfs::new();
    for (i, disk) in ["vda", "vdb", "vdc"].iter().enumerate() {
        let minor = 16 * i as u32;
        fake.add_disk(disk, 254, minor, 1000);
        fake.add_partition(
            disk,
            &format!("{disk}1"),
            (254, minor + 1),
            1,
            500,
            Some(disk),
        );
    }
    assert_eq!(
        ok(fake.backend().resolve_partition_by_label("vdb")).name,
        "vdb1"
    );
    assert_eq!(fake.gpts.reads(), ["vdb"]);
    // With udev's database, nothing is read at all.
    let fake = FakeSysfs::new();
    fake.add_disk("vda", 254, 0, 1000);
    fake.add_partition("vda", "vda1", (254, 1), 1, 500, Some("data"));
    fake.add_udev_db(254, 1, &[("ID_PART_ENTRY_NAME", "data")]);
    assert_eq!(
        ok(fake.backend().resolve_partition_by_label("data")).label_source,
        Some(LabelSource::Udev)
    );
    assert!(fake.gpts.reads().is_empty());
}

/// The cause of an `Unconfirmed` refusal, and the refusal's text.
fn unconfirmed(result: Result<BlockDevice, ResolveError>) -> (EntryUnreadable, String) {
    match result {
        Err(e) => {
            let text = e.to_string();
            match e {
                ResolveError::Unconfirmed { source, .. } => (*source, text),
                other => panic!("expected Unconfirmed, got {other:?}"),
            }
        }
        Ok(device) => panic!("expected Unconfirmed, got {device:?}"),
    }
}

#[test]
fn unconfirmable_kernel_match_is_refused() {
    let fake = machine();
    fake.make_gpt_unreadable("vda");
    let (cause, text) = unconfirmed(fake.backend().resolve_partition_by_label("boot"));
    assert!(matches!(cause, EntryUnreadable::Gpt(_)), "{cause:?}");
    assert!(
        text.contains("/dev/vda1") && text.contains("/dev/vda "),
        "{text}"
    );
    // The errno, not its text: glibc says "Input/output error", musl "I/O error".
    assert!(text.contains("(os error 5)"), "{text}");
    assert!(text.contains("refusing to guess"), "{text}");
    assert!(text.contains("/run/udev"), "{text}");
    // A stale kernel table (the GPT has no such entry) is not confirmation either.
    let fake = FakeSysfs::new();
    fake.add_disk("vda", 254, 0, 1000);
    fake.add_partition_bytes("vda", "vda2", (254, 2), 2, 500, Some(b"data"));
    fake.set_gpt_name("vda", 1, Some("data"));
    let (cause, text) = unconfirmed(fake.backend().resolve_partition_by_label("data"));
    assert!(
        matches!(cause, EntryUnreadable::NoEntry { number: 2, .. }),
        "{cause:?}"
    );
    assert!(
        text.contains("no entry 2") && text.contains("partprobe"),
        "{text}"
    );
}

#[test]
fn trailing_whitespace_is_trimmed_by_both_backends_and_the_operator_label() {
    // The kernel keeps "data  "; blkid (GPT read, udev's database) trims it.
    let fake = FakeSysfs::new();
    fake.add_disk("vda", 254, 0, 1000);
    fake.add_partition_bytes("vda", "vda1", (254, 1), 1, 500, Some(b"data  "));
    fake.set_gpt_name("vda", 1, Some("data"));
    let kernel = ok(fake.backend().list_block_devices());
    assert_eq!(kernel[1].partition_label.as_deref(), Some("data"));
    fake.add_udev_db(254, 1, &[("ID_PART_ENTRY_NAME", "data")]);
    let udev = ok(fake.backend().list_block_devices());
    assert_eq!(udev[1].partition_label, kernel[1].partition_label);
    for asked in ["data", "data  ", "data\t"] {
        assert_eq!(
            ok(fake.backend().resolve_partition_by_label(asked)).name,
            "vda1",
            "{asked:?}"
        );
    }
    // Leading and inner whitespace count.
    assert!(fake.backend().resolve_partition_by_label(" data").is_err());
    // Names differing only in trailing whitespace are one label: ambiguous.
    fake.add_partition_bytes("vda", "vda2", (254, 2), 2, 500, Some(b"data"));
    fake.set_gpt_name("vda", 2, Some("data"));
    assert!(matches!(
        fake.backend().resolve_partition_by_label("data"),
        Err(ResolveError::Ambiguous { .. })
    ));
}

#[test]
fn one_unreadable_device_is_left_out() {
    let fake = machine();
    // A malformed device number, and a uevent that cannot be read at all.
    fake.add_disk("vdx", 254, 32, 100);
    super::test_tree::write(
        &fake.sys().join("devices/virtual/block/vdx/uevent"),
        "MAJOR=x\nMINOR=1\n",
    );
    fake.add_disk("vdy", 254, 48, 100);
    let uevent = fake.sys().join("devices/virtual/block/vdy/uevent");
    if let Err(e) = std::fs::remove_file(&uevent).and_then(|()| std::fs::create_dir(&uevent)) {
        panic!("{e}");
    }
    let names: Vec<String> = ok(fake.backend().list_block_devices())
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(names, ["loop0", "dm-0", "vda", "vda1", "vda2", "vda3"]);
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
