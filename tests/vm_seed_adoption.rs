//! Nodes provisioned by the seed tool (thin LV `metadata` with ext4 holding
//! `satellite-id`) are adopted without data loss when the ID matches, and reset when
//! it differs — also when the metadata LV is inactive and must be activated to read,
//! when an activation killed midway left its device created but empty, and when
//! its pool's device was left suspended (a read would wait forever).
mod common;

use common::*;
use vmtest::DiskSpec;

/// The seed tool's layout, built with the lvm2 CLI as the seed did.
const SEED_LAYOUT: &str = r#"
seed_layout() {
  pvcreate -q "$1" && vgcreate -q "$2" "$1" &&
  lvcreate -q --type thin-pool -l 100%FREE -n linstor-pool "$2" &&
  lvcreate -q --type thin --virtualsize 100M --thinpool linstor-pool --name metadata "$2" &&
  mkfs.ext4 -q "/dev/mapper/$2-metadata" && mount "/dev/mapper/$2-metadata" /mnt &&
  printf %s "$3" > /mnt/satellite-id && umount /mnt &&
  lvcreate -q -V 32m -T "$2/linstor-pool" -n pvcdata &&
  mkfs.ext4 -q "/dev/mapper/$2-pvcdata" && mount "/dev/mapper/$2-pvcdata" /mnt &&
  echo precious > /mnt/data && umount /mnt
}
step seed-a seed_layout /dev/vda1 seeda node-01
step seed-b seed_layout /dev/vdb1 seedb old-id
step deactivate-b vgchange -an seedb
step seqno-a vgs --reportformat json -o vg_name,vg_seqno,vg_tags seeda
step status-a $LPD status --partition-label seed-a --volume-group seeda --pool linstor-pool --json
step dry-adopt $LPD --partition-label seed-a --volume-group seeda --pool linstor-pool --satellite-id node-01 --on-failure exit --dry-run
step adopt $LPD --partition-label seed-a --volume-group seeda --pool linstor-pool --satellite-id node-01 --on-failure exit
step adopted vgs --reportformat json -o vg_name,vg_seqno,vg_tags seeda
step adopted-lvs lvs --reportformat json -o lv_name seeda
step read-a sh -c 'mount -o ro /dev/mapper/seeda-pvcdata /mnt && cat /mnt/data; umount /mnt'
step again $LPD --partition-label seed-a --volume-group seeda --pool linstor-pool --satellite-id node-01 --on-failure exit
step status-b $LPD status --partition-label seed-b --volume-group seedb --pool linstor-pool
step reset-b $LPD --partition-label seed-b --volume-group seedb --pool linstor-pool --satellite-id new-id --on-failure exit
step reset-vgs vgs --reportformat json -o vg_name,vg_tags seedb
step reset-lvs lvs --reportformat json -o lv_name seedb
step seed-c seed_layout /dev/vdc1 seedc node-01
step deactivate-c vgchange -an seedc
step cut-c sh -c 'u=$(lvs --noheadings -o vg_uuid,lv_uuid seedc/metadata | tr -d " -"); dmsetup create seedc-metadata --notable -u "LVM-$u"'
step cut-c-state dmsetup table seedc-metadata
step adopt-c $LPD --partition-label seed-c --volume-group seedc --pool linstor-pool --satellite-id node-01 --on-failure exit
step adopted-c vgs --noheadings -o vg_tags seedc
step read-c sh -c 'lvchange -ay seedc/pvcdata && mount -o ro /dev/mapper/seedc-pvcdata /mnt && cat /mnt/data; umount /mnt'
step seed-d seed_layout /dev/vdd1 seedd node-01
step suspend-d dmsetup suspend seedd-linstor--pool-tpool
step adopt-d timeout 120 $LPD --partition-label seed-d --volume-group seedd --pool linstor-pool --satellite-id node-01 --on-failure exit
step adopted-d vgs --noheadings -o vg_tags seedd
step resumed-d dmsetup info -c --noheadings -o attr seedd-linstor--pool-tpool
step read-d sh -c 'mount -o ro /dev/mapper/seedd-pvcdata /mnt && cat /mnt/data; umount /mnt'
"#;

#[test]
fn seed_nodes_are_adopted_or_reset() {
    let bed = bed(vec![
        DiskSpec::new("seed-a", 512).partition("seed-a", None),
        DiskSpec::new("seed-b", 512).partition("seed-b", None),
        DiskSpec::new("seed-c", 512).partition("seed-c", None),
        DiskSpec::new("seed-d", 512).partition("seed-d", None),
    ]);
    let run = boot(&bed, false, SEED_LAYOUT);
    for s in ["seed-a", "seed-b", "deactivate-b"] {
        run.expect_success(s);
    }
    // status reads the seed's ID from the active metadata LV, without mounting.
    let status = json(&run, "status-a");
    assert_eq!(
        status["physical_volume"]["volume_group"]["satellite_id"]["source"],
        "seed-file"
    );
    assert_eq!(
        status["physical_volume"]["volume_group"]["satellite_id"]["value"],
        "node-01"
    );

    // Same ID: the only write is recording the ID as a VG tag; data survives.
    let planned = dry_run_steps(&run, "dry-adopt");
    assert_eq!(
        planned,
        vec!["tag volume group seeda with linstor-satellite-id=node-01".to_owned()]
    );
    expect_provisioned(&run, "adopt");
    assert_eq!(applied_steps(&run, "adopt", &planned), planned);
    let before = vg_row(&run, "seqno-a");
    let after = vg_row(&run, "adopted");
    assert_eq!(
        number(&after["vg_seqno"]),
        number(&before["vg_seqno"]) + 1,
        "exactly one metadata write"
    );
    assert_eq!(text(&after["vg_tags"]), "linstor-satellite-id=node-01");
    let lvs = lv_names(&run, "adopted-lvs");
    for lv in ["linstor-pool", "metadata", "pvcdata"] {
        assert!(lvs.contains(&lv.to_owned()), "{lv} lost: {lvs:?}");
    }
    assert_eq!(run.expect_success("read-a").stdout.trim(), "precious");
    assert!(expect_provisioned(&run, "again")
        .stderr
        .contains("lvm_commands=0"));

    // Different ID, metadata LV inactive: activated, read, then reset.
    assert!(run
        .expect_success("status-b")
        .stdout
        .contains("inactive metadata LV"));
    let reset = expect_provisioned(&run, "reset-b");
    assert!(
        reset.stderr.contains("existing=old-id") && reset.stderr.contains("expected=new-id"),
        "{}",
        reset.stderr
    );
    assert_eq!(
        text(&vg_row(&run, "reset-vgs")["vg_tags"]),
        "linstor-satellite-id=new-id"
    );
    let lvs = lv_names(&run, "reset-lvs");
    assert_eq!(lvs, vec!["linstor-pool".to_owned()], "old LVs must be gone");

    // An activation killed between creating the metadata LV's device and loading
    // its table: activating the LV loads the table into it; read and adopted.
    for s in ["seed-c", "deactivate-c", "cut-c"] {
        run.expect_success(s);
    }
    assert_eq!(run.expect_success("cut-c-state").stdout.trim(), "");
    let adopted = expect_provisioned(&run, "adopt-c");
    assert!(
        adopted.stderr.contains("activate seedc/metadata"),
        "{}",
        adopted.stderr
    );
    assert_eq!(
        run.expect_success("adopted-c").stdout.trim(),
        "linstor-satellite-id=node-01"
    );
    assert_eq!(run.expect_success("read-c").stdout.trim(), "precious");

    // The pool under the seed's metadata LV suspended: refreshed first, then read
    // (a read before would wait forever), adopted, data intact.
    run.expect_success("seed-d");
    run.expect_success("suspend-d");
    let adopted = expect_provisioned(&run, "adopt-d");
    assert!(
        adopted.stderr.contains("refresh thin pool"),
        "{}",
        adopted.stderr
    );
    assert_eq!(
        run.expect_success("adopted-d").stdout.trim(),
        "linstor-satellite-id=node-01"
    );
    let attr = &run.expect_success("resumed-d").stdout;
    assert!(!attr.trim().contains('s'), "still suspended: {attr:?}");
    assert_eq!(run.expect_success("read-d").stdout.trim(), "precious");
}
