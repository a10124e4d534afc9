//! Partition resolution and refusals on real GPT disks, with udevd running: the
//! libudev and sysfs backends agree, duplicate labels are refused, and a partition
//! holding ext4 is refused (data intact) unless --force is given. Run against the
//! static build (no libudev), the "udev" steps use its sysfs backend, which reads the
//! udev database, and `--discovery udev` must be rejected with exit code 2.
mod common;

use common::*;
use vmtest::DiskSpec;

#[test]
fn discovery_duplicates_and_foreign_filesystems_with_udevd() {
    let bed = bed(vec![
        DiskSpec::new("dup-a", 256).partition("twin", None),
        DiskSpec::new("dup-b", 256).partition("twin", None),
        DiskSpec::new("ext4", 512).partition("has-ext4", None),
        DiskSpec::new("udev", 512).partition("linstor storage", None),
        DiskSpec::new("multi", 768)
            .partition("span-here", Some(256))
            .partition("span-there", Some(256))
            .partition("blank", None),
    ]);
    let has_udev = binary_has_udev();
    let udev = if has_udev { "udev" } else { "sysfs" };
    let script = r#"
step udev-backend $LPD --discovery udev --version
step udevdb sh -c 'cat /run/udev/data/b$(cat /sys/class/block/vdd1/dev)'
step devices-udev $LPD --discovery UDEV devices --json
step devices-sysfs $LPD --discovery sysfs devices --json
step dup $LPD --partition-label twin --volume-group vgt --pool pool --satellite-id n --on-failure exit
step dup-sysfs $LPD --discovery sysfs --partition-label twin --volume-group vgt --pool pool --satellite-id n --on-failure exit
step mkfs mkfs.ext4 -q -L data /dev/vdc1
step write sh -c 'mount /dev/vdc1 /mnt && echo keep-me > /mnt/file && umount /mnt'
step ext4-refused $LPD --partition-label has-ext4 --volume-group vge --pool pool --satellite-id n --on-failure exit
step ext4-intact sh -c 'mount -o ro /dev/vdc1 /mnt && cat /mnt/file; umount /mnt'
step ext4-forced $LPD --partition-label has-ext4 --volume-group vge --pool pool --satellite-id n --on-failure exit --force
step ext4-vgs vgs --reportformat json -o vg_name,vg_tags vge
step udev-fresh $LPD --discovery UDEV --partition-label 'linstor storage' --volume-group vgu --pool pool --satellite-id n --on-failure exit
step devices-held $LPD devices --json
step sysfs-steady $LPD --discovery sysfs --partition-label 'linstor storage' --volume-group vgu --pool pool --satellite-id n --on-failure exit
ln -s $LPD /tmp/homelab-helper
step seed-alias-before vgs --reportformat json -o vg_name,vg_seqno,vg_tags vgu
step seed-alias env PARTITION_LABEL='linstor storage' VOLUME_GROUP=vgu POOL=pool SATELLITE_ID=n ON_FAILURE=exit /tmp/homelab-helper linstor-provision-disk
step seed-alias-vgs vgs --reportformat json -o vg_name,vg_seqno,vg_tags vgu
step span-vg vgcreate vgspan /dev/vde1 /dev/vde2
step span-vgs-before vgs --reportformat json -o vg_name,vg_seqno,pv_count vgspan
step span-sum-before sum_head 4194304 /dev/vde1
step spans $LPD --partition-label span-here --volume-group vgspan --pool pool --satellite-id n --on-failure exit
step blank-sum-before sum_head 4194304 /dev/vde3
step name-taken $LPD --partition-label blank --volume-group vgspan --pool pool --satellite-id n --on-failure exit
step blank-sum-after sum_head 4194304 /dev/vde3
step span-sum-after sum_head 4194304 /dev/vde1
step span-vgs-after vgs --reportformat json -o vg_name,vg_seqno,pv_count vgspan
Q='--partition-label blank --volume-group vgblank --pool pool --satellite-id n --on-failure exit'
($LPD $Q >/tmp/first.log 2>&1; echo $? >/tmp/first.rc) &
step second $LPD $Q
wait
step first sh -c 'cat /tmp/first.log >&2; exit $(cat /tmp/first.rc)'
step blank-vgs vgs --reportformat json -o vg_name,vg_tags,pv_count vgblank
step hold sh -c '
  $0 --partition-label nope --volume-group v --pool p --satellite-id n --hold-marker /tmp/hold >/tmp/hold.log 2>&1 &
  pid=$!; n=0
  while [ ! -e /tmp/hold ] && [ $n -lt 60 ]; do sleep 0.5; n=$((n+1)); done
  [ -e /tmp/hold ] || { echo "no hold marker"; exit 1; }
  echo held-once; rm /tmp/hold; n=0
  while [ ! -e /tmp/hold ] && [ $n -lt 60 ]; do sleep 0.5; n=$((n+1)); done
  [ -e /tmp/hold ] && echo held-again
  kill $pid; cat /tmp/hold.log >&2' $LPD
"#
    .replace("UDEV", udev);
    let run = boot(&bed, true, &script);
    expect_exit(&run, "udev-backend", if has_udev { 0 } else { 2 });
    assert!(run
        .expect_success("udevdb")
        .stdout
        .contains("ID_PART_ENTRY_NAME=linstor"));
    // Both backends see the same devices, labels and uuids.
    let strip = |v: serde_json::Value| -> Vec<(String, String, String)> {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|d| {
                (
                    text(&d["devnode"]),
                    text(&d["partition_label"]),
                    text(&d["partition_uuid"]),
                )
            })
            .collect()
    };
    let by_udev = strip(json(&run, "devices-udev"));
    assert_eq!(by_udev, strip(json(&run, "devices-sysfs")));
    assert!(
        by_udev
            .iter()
            .any(|(node, label, _)| node == "/dev/vdd1" && label == "linstor storage"),
        "{by_udev:?}"
    );

    // Duplicate labels: refused, both devices named, none picked.
    let dup = expect_exit(&run, "dup", 1);
    assert!(
        dup.stderr.contains("/dev/vda1") && dup.stderr.contains("/dev/vdb1"),
        "{}",
        dup.stderr
    );
    // Through sysfs too, each with its size: the label search reads no sizes, the
    // refusal reads them for the devices it names.
    let dup_sysfs = expect_exit(&run, "dup-sysfs", 1);
    for device in ["/dev/vda1", "/dev/vdb1"] {
        let named = dup_sysfs.stderr.split(device).skip(1).find_map(|rest| {
            rest.strip_prefix(" (")?
                .split(' ')
                .next()?
                .parse::<u64>()
                .ok()
        });
        assert!(
            named.is_some_and(|bytes| bytes > 100 << 20),
            "{device} named without its size:\n{}",
            dup_sysfs.stderr
        );
    }

    // ext4 on the partition: refused and intact; --force overwrites it.
    run.expect_success("mkfs");
    run.expect_success("write");
    let refused = expect_exit(&run, "ext4-refused", 1);
    assert!(
        refused.stderr.contains("ext4") && refused.stderr.contains("--force"),
        "{}",
        refused.stderr
    );
    assert_eq!(run.expect_success("ext4-intact").stdout.trim(), "keep-me");
    expect_provisioned(&run, "ext4-forced");
    assert_eq!(
        text(&vg_row(&run, "ext4-vgs")["vg_tags"]),
        "linstor-satellite-id=n"
    );

    // A label with a space resolves through libudev and through sysfs alike.
    expect_provisioned(&run, "udev-fresh");
    assert!(expect_provisioned(&run, "sysfs-steady")
        .stderr
        .contains("lvm_commands=0"));

    // Holders from sysfs: the active pool's data and metadata volumes sit on the
    // partition; a partition nothing is stacked on has none.
    let devices = json(&run, "devices-held");
    let holders_of = |node: &str| -> Vec<String> {
        devices
            .as_array()
            .into_iter()
            .flatten()
            .find(|d| text(&d["devnode"]) == node)
            .map(|d| {
                let mut names: Vec<String> = d["holders"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(text)
                    .collect();
                names.sort();
                names
            })
            .unwrap_or_else(|| panic!("devices lists no {node}: {devices}"))
    };
    assert_eq!(
        holders_of("/dev/vdd1"),
        ["vgu-pool_tdata", "vgu-pool_tmeta"],
        "{devices}"
    );
    assert!(holders_of("/dev/vde3").is_empty(), "{devices}");

    // The seed's `homelab-helper linstor-provision-disk` invocation and its
    // environment variables: the same partition, found steady, nothing written.
    assert!(expect_provisioned(&run, "seed-alias")
        .stderr
        .contains("lvm_commands=0"));
    let after = vg_row(&run, "seed-alias-vgs");
    assert_eq!(vg_row(&run, "seed-alias-before"), after);
    assert_eq!(text(&after["vg_tags"]), "linstor-satellite-id=n");

    // A VG that spans another device is refused, naming it; nothing is written.
    run.expect_success("span-vg");
    let spans = expect_exit(&run, "spans", 1);
    assert!(
        spans.stderr.contains("other devices") && spans.stderr.contains("/dev/vde2"),
        "{}",
        spans.stderr
    );
    assert_eq!(
        vg_row(&run, "span-vgs-before"),
        vg_row(&run, "span-vgs-after"),
        "the refused runs changed vgspan"
    );
    assert_eq!(
        run.expect_success("span-sum-before").stdout,
        run.expect_success("span-sum-after").stdout
    );

    // A VG name already used on another device is refused; the blank partition
    // stays blank.
    let taken = expect_exit(&run, "name-taken", 1);
    assert!(
        taken.stderr.contains("already exists") && taken.stderr.contains("/dev/vde1"),
        "{}",
        taken.stderr
    );
    assert_eq!(
        run.expect_success("blank-sum-before").stdout,
        run.expect_success("blank-sum-after").stdout
    );

    // Two runs at once on one partition: both succeed, one of them does the work
    // and the other, serialised behind it, finds nothing to do.
    let first = expect_provisioned(&run, "first");
    let second = expect_provisioned(&run, "second");
    let idle = [first, second]
        .iter()
        .filter(|s| s.stderr.contains("lvm_commands=0"))
        .count();
    assert_eq!(
        idle, 1,
        "expected exactly one idle run\n--- first ---\n{}\n--- second ---\n{}",
        first.stderr, second.stderr
    );
    let blank = vg_row(&run, "blank-vgs");
    assert_eq!(text(&blank["vg_tags"]), "linstor-satellite-id=n");
    assert_eq!(text(&blank["pv_count"]), "1");

    // On failure the default is to hold: the marker appears, and after its
    // removal the run retries and holds again; the log names the missing label.
    let hold = run.expect_success("hold");
    assert!(
        hold.stdout.contains("held-once") && hold.stdout.contains("held-again"),
        "{}\n{}",
        hold.stdout,
        hold.stderr
    );
    assert!(hold.stderr.contains("nope"), "{}", hold.stderr);
}
