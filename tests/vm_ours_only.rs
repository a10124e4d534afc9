//! The tool acts only on what is its own, with real LVM in the VM:
//! (a) a seed-like VG of another name, untagged, its `metadata` LV inactive;
//! (b) the same with its pool's components left active, and with its pool
//!     suspended — each refused (exit 1) with not one device-mapper device
//!     created, removed, resumed or suspended and the VG's seqno unchanged;
//! (c) a user's 12 MiB `lvol0` in our tagged VG without a pool — refused by name,
//!     its data and the VG untouched;
//! (d) the spare LVM really leaves when the pool's `lvcreate` is killed while
//!     zeroing it is still recognised (exactly its size) and removed.
mod common;

use common::*;
use vmtest::DiskSpec;

/// The tool's settings for cases (a) and (b), each given its own VOLUME_GROUP
/// after them, so that what one case does cannot decide another's outcome.
const OURS: &str = "--pool linstor-pool --satellite-id node-01 --on-failure exit --volume-group";

const SCRIPT: &str = r#"
# A seed-like layout (thin pool, thin LV `metadata` with ext4 holding another
# node's satellite-id, a thin volume with data) in VG `$2`, untagged, inactive.
seed_like() {
  pvcreate -q "$1" && vgcreate -q "$2" "$1" &&
  lvcreate -q --type thin-pool -l 100%FREE -n linstor-pool "$2" &&
  lvcreate -q --type thin --virtualsize 100M --thinpool linstor-pool --name metadata "$2" &&
  mkfs.ext4 -q "/dev/mapper/$2-metadata" && mount "/dev/mapper/$2-metadata" /mnt &&
  printf %s other-node > /mnt/satellite-id && umount /mnt &&
  lvcreate -q -V 32m -T "$2/linstor-pool" -n data &&
  mkfs.ext4 -q "/dev/mapper/$2-data" && mount "/dev/mapper/$2-data" /mnt &&
  echo precious > /mnt/file && umount /mnt &&
  vgchange -an "$2"
}
# What an activation killed after loading the pool's components leaves: the
# component LV $2 of VG $1 live on its own (LVM refuses to activate components of
# a pool with thin volumes, so its device is made here as LVM would: its DM uuid,
# a linear table over its extents on PV $3).
strand() {
  u=$(lvs --noheadings -o vg_uuid,lv_uuid "$1/$2" | tr -d ' -')
  size=$(lvs --noheadings --units s --nosuffix -o lv_size "$1/$2" | tr -d ' ')
  first=$(lvs --noheadings -o seg_pe_ranges "$1/$2" | tr -d ' ' | sed 's/.*://; s/-.*//')
  start=$(pvs --noheadings --units s --nosuffix -o pe_start "$3" | tr -d ' ')
  extent=$(vgs --noheadings --units s --nosuffix -o vg_extent_size "$1" | tr -d ' ')
  dmsetup create "$(echo "$1" | sed 's/-/--/g')-$(echo "$2" | sed 's/-/--/g')" -u "LVM-$u" \
    --table "0 $size linear $3 $((start + first * extent))"
}
dm_state() { dmsetup info -c --noheadings -o name,attr,open --sort name; ls /sys/block | grep dm- | sort; }
seqno() { vgs --devices "$1" --noheadings -o vg_seqno "$2" | tr -d ' '; }
read_data() { lvchange -ay "$1/data" && mount -o ro "/dev/mapper/$1-data" /mnt && cat /mnt/file; umount /mnt; }

# (a) inactive metadata LV
step a-make seed_like /dev/vda1 othera
step a-dm-before dm_state
step a-seqno-before seqno /dev/vda1 othera
step a-run $LPD --partition-label seed-a $OURS vg-a
step a-dm-after dm_state
step a-seqno-after seqno /dev/vda1 othera
step a-data read_data othera

# (b) components active on their own (an activation cut off midway)
step b-make seed_like /dev/vdb1 otherb
strand_components() { strand otherb linstor-pool_tmeta /dev/vdb1 && strand otherb linstor-pool_tdata /dev/vdb1; }
step b-components strand_components
step b-dm-before dm_state
step b-seqno-before seqno /dev/vdb1 otherb
step b-run $LPD --partition-label seed-b $OURS vg-b
step b-dm-after dm_state
step b-seqno-after seqno /dev/vdb1 otherb

# (b) the pool suspended under an active metadata LV
step s-make seed_like /dev/vdc1 others
step s-activate lvchange -ay others/metadata
step s-suspend dmsetup suspend others-linstor--pool-tpool
step s-dm-before dm_state
step s-seqno-before seqno /dev/vdc1 others
step s-run timeout 300 $LPD --partition-label seed-s $OURS vg-s
step s-dm-after dm_state
step s-seqno-after seqno /dev/vdc1 others
step s-resume dmsetup resume others-linstor--pool-tpool

# (c) a user's 12 MiB lvol0 in our tagged VG without a pool
step c-make sh -c 'pvcreate -q /dev/vdd1 && vgcreate -q --addtag linstor-satellite-id=node-01 users-vg /dev/vdd1 && lvcreate -q -y -L 12m users-vg && mkfs.ext4 -q /dev/mapper/users--vg-lvol0 && mount /dev/mapper/users--vg-lvol0 /mnt && echo precious > /mnt/file && umount /mnt'
step c-lvs-before lvs --noheadings -o lv_name,lv_size --units b users-vg
step c-seqno-before seqno /dev/vdd1 users-vg
step c-run $LPD --partition-label users --volume-group users-vg --pool linstor-pool --satellite-id node-01 --on-failure exit
step c-lvs-after lvs --noheadings -o lv_name,lv_size --units b users-vg
step c-seqno-after seqno /dev/vdd1 users-vg
step c-data sh -c 'mount -o ro /dev/mapper/users--vg-lvol0 /mnt && cat /mnt/file; umount /mnt'

# (d) the pool's lvcreate killed while zeroing its new spare: LVM has committed
# the spare as a visible lvol0 and activated it to zero it (64 KiB chunks on
# 16 GiB give a 16 MiB spare, long enough to zero that the kill lands inside).
spare_kill() {
  $LPD --partition-label spare --volume-group spare-vg --pool linstor-pool \
    --satellite-id node-01 --chunk-size 64K --on-failure exit >/tmp/spare.log 2>&1 &
  pid=$!
  while [ ! -e /dev/mapper/spare--vg-lvol0 ] && kill -0 "$pid" 2>/dev/null; do :; done
  kill -9 "$pid" 2>/dev/null
  wait "$pid"
  echo "rc=$?"
  cat /tmp/spare.log
}
step d-kill spare_kill
step d-state lvs -a --reportformat json -o lv_name,lv_attr,lv_size,seg_count,seg_pe_ranges --units b spare-vg
step d-recover $LPD --partition-label spare --volume-group spare-vg --pool linstor-pool --satellite-id node-01 --chunk-size 64K --on-failure exit
step d-after lvs -a --reportformat json -o lv_name,lv_attr,lv_size,seg_count,seg_pe_ranges --units b spare-vg
"#;

/// `name` → `(lv_attr, lv_size)` rows of an `lvs -a --reportformat json` step.
fn lv_table(run: &vmtest::GuestRun, step: &str) -> Vec<(String, String, String)> {
    rows(run, step, "lv")
        .iter()
        .map(|row| {
            (
                text(&row["lv_name"]),
                text(&row["lv_attr"]),
                text(&row["lv_size"]),
            )
        })
        .collect()
}

#[test]
fn only_our_volume_group_and_lvms_own_spare_are_touched() {
    let bed = bed(vec![
        DiskSpec::new("seed-a", 512).partition("seed-a", None),
        DiskSpec::new("seed-b", 512).partition("seed-b", None),
        DiskSpec::new("seed-s", 512).partition("seed-s", None),
        DiskSpec::new("users", 512).partition("users", None),
        DiskSpec::new("spare", 16 * 1024).partition("spare", None),
    ]);
    let script = SCRIPT.replace("$OURS", OURS);
    let run = boot(&bed, false, &script);
    let mut checks = Checks::default();

    // (a), (b): refused before anything of the other VG is activated or changed.
    for step in [
        "a-make",
        "b-make",
        "b-components",
        "s-make",
        "s-activate",
        "s-suspend",
        "s-resume",
    ] {
        run.expect_success(step);
    }
    // The states were reached: components active, the pool suspended.
    checks.that(
        run.step("b-dm-before")
            .stdout
            .contains("otherb-linstor--pool_tmeta:"),
        format!(
            "otherb's component is not active:\n{}",
            run.step("b-dm-before").stdout
        ),
    );
    for (case, vg) in [("a", "othera"), ("b", "otherb"), ("s", "others")] {
        let go = format!("{case}-run");
        checks.exit(&run, &go, 1);
        checks.says(
            &run,
            &go,
            &format!("volume group {vg} with the seed tool's layout"),
        );
        checks.says(&run, &go, "nothing was activated or written");
        // No step was planned on it: each would be logged naming `vg/lv`.
        checks.that(
            !run.step(&go).stderr.contains(&format!(" {vg}/")),
            format!("{go} acted on {vg}:\n{}", run.step(&go).stderr),
        );
        checks.same(
            &run,
            &format!("{case}-dm-before"),
            &format!("{case}-dm-after"),
        );
        checks.same(
            &run,
            &format!("{case}-seqno-before"),
            &format!("{case}-seqno-after"),
        );
    }
    // Nothing of VG othera was active before; no device of it appeared.
    checks.that(
        !run.step("a-dm-after").stdout.contains("othera-"),
        format!(
            "a device of othera appeared:\n{}",
            run.step("a-dm-after").stdout
        ),
    );
    // The components stayed active, the pool stayed suspended.
    checks.that(
        run.step("b-dm-after")
            .stdout
            .contains("otherb-linstor--pool_tmeta"),
        format!(
            "otherb's component changed:\n{}",
            run.step("b-dm-after").stdout
        ),
    );
    checks.that(
        run.step("s-dm-after").stdout.lines().any(|l| {
            l.starts_with("others-linstor--pool-tpool:")
                && l.split(':').nth(1).is_some_and(|a| a.contains('s'))
        }),
        format!(
            "others' pool is no longer suspended:\n{}",
            run.step("s-dm-after").stdout
        ),
    );
    checks.that(
        run.step("a-data").stdout.trim() == "precious",
        format!("othera's data: {:?}", run.step("a-data")),
    );

    // (c): the user's lvol0 is refused by name and kept with its data.
    run.expect_success("c-make");
    checks.exit(&run, "c-run", 1);
    checks.says(&run, "c-run", "users-vg/lvol0");
    checks.says(&run, "c-run", "not the metadata spare");
    checks.says(&run, "c-run", "not removed");
    checks.same(&run, "c-lvs-before", "c-lvs-after");
    checks.same(&run, "c-seqno-before", "c-seqno-after");
    checks.that(
        run.step("c-data").stdout.trim() == "precious",
        format!("the user's data: {:?}", run.step("c-data")),
    );

    // (d): the kill landed inside the pool's lvcreate, after LVM committed the
    // spare as a visible lvol0 and before the pool: LVM's own interrupted state.
    let killed = run.expect_success("d-kill");
    checks.that(
        killed.stdout.contains("rc=137"),
        format!("the provision was not killed:\n{}", killed.stdout),
    );
    let state = lv_table(&run, "d-state");
    let names: Vec<&str> = state.iter().map(|(n, _, _)| n.as_str()).collect();
    checks.that(
        names == ["lvol0"],
        format!("the kill did not leave only the spare as lvol0: {state:?}"),
    );
    eprintln!("after the kill: {state:?}\n{}", killed.stdout);
    let spare_size = state.first().map(|(_, _, size)| size.clone());
    let recovered = expect_provisioned(&run, "d-recover");
    checks.that(
        recovered.stderr.contains(
            "remove spare-vg/lvol0, a pool metadata spare whose creation was interrupted",
        ),
        format!("lvol0 was not removed as the spare:\n{}", recovered.stderr),
    );
    let after = lv_table(&run, "d-after");
    eprintln!("after the recovery: {after:?}");
    let pmspare = after.iter().find(|(n, _, _)| n == "[lvol0_pmspare]");
    checks.that(
        after.iter().any(|(n, _, _)| n == "linstor-pool")
            && !after.iter().any(|(n, _, _)| n == "lvol0"),
        format!("not provisioned after the recovery: {after:?}"),
    );
    // LVM made the new spare from the same free space: the same size, which is
    // the size the planner required of the one it removed.
    checks.that(
        pmspare.map(|(_, _, size)| size.clone()) == spare_size,
        format!("spare sizes differ: killed {spare_size:?}, made {pmspare:?}"),
    );
    checks.finish();
}
