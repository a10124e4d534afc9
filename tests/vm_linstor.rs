//! The pool, used the way its real consumer uses it: LINSTOR's satellite (LVM_THIN
//! provider) runs its own LVM commands against `VG/POOL` after every start of this
//! tool. Its command sequence, with the piraeus satellite image's LVM settings, runs
//! after a fresh provision, after a reboot that activated nothing, after a reset,
//! after a grow, and after adopting a seed-tool node. Free space must be non-zero and
//! match the pool; create, activate, resize, snapshot and delete must succeed; and the
//! tool's next start must write nothing while LINSTOR's changes (zeroing, its
//! volumes, its tags) stay as LINSTOR left them.
mod common;

use common::*;
use vmtest::{BootOptions, DiskSpec, GuestRun};

/// Guest shell functions: `satellite_cycle PREFIX DEV VG POOL` runs LINSTOR's
/// commands as steps named `PREFIX-…`. LINSTOR scopes every command with a device
/// filter built from the pool's PVs; the piraeus image's lvm.conf adds the rest.
const SATELLITE: &str = r#"
cat > /etc/lvm/lvm.conf <<'EOF'
devices {
    global_filter = [ "r|^/dev/drbd|" ]
    obtain_device_list_from_udev = 0
    use_devicesfile = 0
}
activation {
    udev_sync = 0
    udev_rules = 0
    monitoring = 0
}
global {
    use_lvmpolld = 0
    event_activation = 0
}
EOF
satellite_cycle() {
  p=$1; dev=$2; vg=$3; pool=$4
  f="devices { filter=['a|$dev|','r|.*|'] }"
  step $p-vgs vgs --config "$f" -o vg_name,vg_extent_size,vg_size,vg_free --separator ';' --units k --noheadings --nosuffix $vg
  step $p-lvs lvs --config "$f" -o lv_name,lv_path,lv_size,vg_name,pool_lv,data_percent,lv_attr,metadata_percent,chunk_size,stripes --separator ';' --noheadings --units k --nosuffix $vg
  step $p-probe-create lvcreate --config "$f" --virtualsize 1024k $vg --thinpool $pool --name .probeVolumeThinProv
  step $p-probe-remove lvremove --config "$f" -f $vg/.probeVolumeThinProv
  step $p-create lvcreate --config "$f" --virtualsize 65536k $vg --thinpool $pool --name ${p}_00000
  step $p-activate lvchange --config "$f" -ay -K $vg/${p}_00000
  step $p-node test -b /dev/$vg/${p}_00000
  step $p-write sh -c "printf linstor-$p | dd of=/dev/$vg/${p}_00000 conv=fsync 2>/dev/null"
  step $p-resize lvresize --config "$f" --size 131072k $vg/${p}_00000 -f
  step $p-snap lvcreate --config "$f" --snapshot --setactivationskip y --ignoreactivationskip --activate y --name $vg/${p}_00000_snap $vg/${p}_00000 -pr
  step $p-snap-read sh -c "head -c 12 /dev/$vg/${p}_00000_snap"
  step $p-snap-delete lvremove --config "$f" -f $vg/${p}_00000_snap
  step $p-tag lvchange --config "$f" --addtag linstor-owned $vg/${p}_00000
  step $p-lvs-after lvs --config "$f" -o lv_name,lv_size,data_percent,lv_attr --separator ';' --noheadings --units k --nosuffix $vg
}
seqno() { vgs --noheadings -o vg_seqno "$1" | tr -d ' '; }
"#;

/// The thin pool's row of LINSTOR's `lvs` report: `(size_k, data_percent, attr)`.
fn pool_row(run: &GuestRun, step: &str, pool: &str) -> (f64, String, String) {
    let out = &run.expect_success(step).stdout;
    let line = out
        .lines()
        .map(str::trim)
        .find(|l| l.split(';').next() == Some(pool))
        .unwrap_or_else(|| panic!("{step}: no row for {pool}:\n{out}"));
    let cols: Vec<&str> = line.split(';').collect();
    assert!(cols.len() >= 10, "{step}: short row {line:?}");
    let size: f64 = cols[2]
        .parse()
        .unwrap_or_else(|_| panic!("{step}: size {:?}", cols[2]));
    (size, cols[5].to_owned(), cols[6].to_owned())
}

/// `vg_free` of LINSTOR's `vgs` report, and the VG size, in KiB.
fn vg_sizes(run: &GuestRun, step: &str) -> (f64, f64) {
    let out = &run.expect_success(step).stdout;
    let cols: Vec<&str> = out.trim().split(';').collect();
    assert_eq!(cols.len(), 4, "{step}: {out:?}");
    let parse = |s: &str| -> f64 {
        s.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{step}: not a number {s:?}"))
    };
    (parse(cols[2]), parse(cols[3]))
}

/// Asserts everything LINSTOR needs from one `satellite_cycle`.
fn assert_satellite_cycle(run: &GuestRun, prefix: &str, pool: &str) {
    let (pool_k, data_percent, attr) = pool_row(run, &format!("{prefix}-lvs"), pool);
    // LINSTOR computes free space from data_percent; empty means "inactive" and it
    // treats the pool as full.
    let used: f64 = data_percent.trim().parse().unwrap_or_else(|_| {
        panic!("{prefix}: the pool reports no data_percent ({data_percent:?}): it is not active")
    });
    let free_k = pool_k * (100.0 - used) / 100.0;
    assert!(free_k > 0.0, "{prefix}: LINSTOR would see no free space");
    let attr: Vec<char> = attr.chars().collect();
    assert_eq!(
        attr.first(),
        Some(&'t'),
        "{prefix}: not a thin pool: {attr:?}"
    );
    let (vg_size, _vg_free) = vg_sizes(run, &format!("{prefix}-vgs"));
    assert!(
        pool_k <= vg_size && pool_k > vg_size * 0.9,
        "{prefix}: the pool ({pool_k}k) should fill the VG ({vg_size}k)"
    );
    for s in [
        "probe-create",
        "probe-remove",
        "create",
        "activate",
        "node",
        "write",
        "resize",
        "snap",
        "snap-delete",
        "tag",
    ] {
        run.expect_success(&format!("{prefix}-{s}"));
    }
    assert_eq!(
        run.expect_success(&format!("{prefix}-snap-read")).stdout,
        format!("linstor-{prefix}")
            .chars()
            .take(12)
            .collect::<String>(),
        "{prefix}: the snapshot must hold the volume's data"
    );
    let after = &run.expect_success(&format!("{prefix}-lvs-after")).stdout;
    assert!(
        after.contains(&format!("{prefix}_00000;131072")),
        "{prefix}: LINSTOR's volume was not resized:\n{after}"
    );
}

/// The tool's start right after LINSTOR used the pool wrote nothing.
fn assert_quiet_start(run: &GuestRun, step: &str, before: &str, after: &str) {
    let out = expect_provisioned(run, step);
    assert!(
        out.stderr.contains("lvm_commands=0"),
        "{step} ran LVM commands after LINSTOR's:\n{}",
        out.stderr
    );
    assert_eq!(
        run.expect_success(before).stdout.trim(),
        run.expect_success(after).stdout.trim(),
        "{step} changed the VG metadata (seqno)"
    );
}

fn options(udevd: bool) -> BootOptions {
    BootOptions {
        udevd,
        modules: vec!["dm_snapshot".to_owned()],
        timeout: std::time::Duration::from_secs(900),
        ..BootOptions::default()
    }
}

fn boot_with(bed: &vmtest::TestBed, udevd: bool, script: &str) -> GuestRun {
    let script = format!("{PRELUDE}{SATELLITE}{script}");
    boot_keeping_console(bed, &options(udevd), &script, "vm_linstor")
}

#[test]
fn linstor_can_use_the_pool_after_every_kind_of_start() {
    let bed = bed(vec![
        DiskSpec::new("storage", 1024).partition("linstor-storage", None),
        DiskSpec::new("seed", 512).partition("seed", None),
    ]);
    // Boot 1: fresh provision, then LINSTOR; a start after it writes nothing. A pool
    // made with zeroing off gets it turned on by LINSTOR, and the tool keeps it so.
    let first = boot_with(
        &bed,
        false,
        r#"
step fresh $LPD $P --satellite-id node-01
satellite_cycle fresh /dev/vda1 linstor-vg linstor-pool
step fresh-seq-before seqno linstor-vg
step fresh-again $LPD $P --satellite-id node-01
step fresh-seq-after seqno linstor-vg
step zero-attr lvs --noheadings -o lv_attr linstor-vg/linstor-pool
step seed-layout sh -c 'pvcreate -q /dev/vdb1 && vgcreate -q seedvg /dev/vdb1 && lvcreate -q --type thin-pool --zero n -l 100%FREE -n linstor-pool seedvg && lvcreate -q -V 100M -T seedvg/linstor-pool -n metadata && mkfs.ext4 -q /dev/mapper/seedvg-metadata && mount /dev/mapper/seedvg-metadata /mnt && printf node-01 > /mnt/satellite-id && umount /mnt'
step seed-deactivate vgchange -an seedvg
step deactivate vgchange -an linstor-vg
"#,
    );
    expect_provisioned(&first, "fresh");
    assert_satellite_cycle(&first, "fresh", "linstor-pool");
    assert_quiet_start(&first, "fresh-again", "fresh-seq-before", "fresh-seq-after");
    let zero = &first.expect_success("zero-attr").stdout;
    assert_eq!(
        zero.trim().chars().nth(7),
        Some('z'),
        "a new pool zeroes new blocks by default (LINSTOR would turn it on): {zero:?}"
    );
    for s in ["seed-layout", "seed-deactivate", "deactivate"] {
        first.expect_success(s);
    }

    // Boot 2: nothing activated at boot. The tool's start activates the pool without
    // a metadata write; LINSTOR can use it. Then the seed node is adopted and used;
    // LINSTOR turns zeroing on for the seed's pool; the next start leaves it on.
    let second = boot_with(
        &bed,
        false,
        r#"
step inactive sh -c 'dmsetup ls | grep -c tpool || true'
step reboot-seq-before seqno linstor-vg
step reboot $LPD $P --satellite-id node-01
step reboot-seq-after seqno linstor-vg
satellite_cycle reboot /dev/vda1 linstor-vg linstor-pool
step reboot-seq-linstor seqno linstor-vg
step reboot-again $LPD $P --satellite-id node-01
step reboot-seq-again seqno linstor-vg
step status $LPD status --partition-label linstor-storage --volume-group linstor-vg --pool linstor-pool --json
step adopt $LPD --partition-label seed --volume-group seedvg --pool linstor-pool --satellite-id node-01 --on-failure exit
satellite_cycle adopt /dev/vdb1 seedvg linstor-pool
step adopt-zero lvchange --config "devices { filter=['a|/dev/vdb1|','r|.*|'] }" --zero y seedvg/linstor-pool
step adopt-seq-before seqno seedvg
step adopt-again $LPD --partition-label seed --volume-group seedvg --pool linstor-pool --satellite-id node-01 --on-failure exit
step adopt-seq-after seqno seedvg
step adopt-zero-attr lvs --noheadings -o lv_attr seedvg/linstor-pool
step reset $LPD $P --satellite-id node-02
satellite_cycle reset /dev/vda1 linstor-vg linstor-pool
step reset-seq-before seqno linstor-vg
step reset-again $LPD $P --satellite-id node-02
step reset-seq-after seqno linstor-vg
"#,
    );
    assert_eq!(
        second.expect_success("inactive").stdout.trim(),
        "0",
        "the test needs a boot in which nothing activated the pool"
    );
    expect_provisioned(&second, "reboot");
    assert_eq!(
        second.expect_success("reboot-seq-before").stdout.trim(),
        second.expect_success("reboot-seq-after").stdout.trim(),
        "activating the pool is not a metadata write"
    );
    assert_satellite_cycle(&second, "reboot", "linstor-pool");
    assert_quiet_start(
        &second,
        "reboot-again",
        "reboot-seq-linstor",
        "reboot-seq-again",
    );
    let status = json(&second, "status");
    assert_eq!(
        status["pool_active"],
        serde_json::Value::Bool(true),
        "status says whether the pool is active: {status}"
    );
    expect_provisioned(&second, "adopt");
    assert_satellite_cycle(&second, "adopt", "linstor-pool");
    second.expect_success("adopt-zero");
    assert_quiet_start(
        &second,
        "adopt-again",
        "adopt-seq-before",
        "adopt-seq-after",
    );
    let zero = &second.expect_success("adopt-zero-attr").stdout;
    assert_eq!(
        zero.trim().chars().nth(7),
        Some('z'),
        "LINSTOR's zeroing stays on: {zero:?}"
    );
    expect_provisioned(&second, "reset");
    assert_satellite_cycle(&second, "reset", "linstor-pool");
    assert_quiet_start(
        &second,
        "reset-again",
        "reset-seq-before",
        "reset-seq-after",
    );

    // Boot 3, after the disk grew (udevd running, as on a real host): the grow leaves
    // an active pool LINSTOR sees at its new size.
    grow_disk(&bed.disk_path("storage"), "2G", "linstor-storage");
    let third = boot_with(
        &bed,
        true,
        r#"
step grow $LPD $P --satellite-id node-02
satellite_cycle grow /dev/vda1 linstor-vg linstor-pool
step grow-seq-before seqno linstor-vg
step grow-again $LPD $P --satellite-id node-02
step grow-seq-after seqno linstor-vg
"#,
    );
    expect_provisioned(&third, "grow");
    assert_satellite_cycle(&third, "grow", "linstor-pool");
    let (vg_size, _) = vg_sizes(&third, "grow-vgs");
    assert!(
        vg_size > 1.5 * 1024.0 * 1024.0,
        "the VG did not grow with the partition: {vg_size}k"
    );
    assert_quiet_start(&third, "grow-again", "grow-seq-before", "grow-seq-after");
}
