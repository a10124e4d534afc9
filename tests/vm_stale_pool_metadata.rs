//! A reset whose pool `lvcreate` lost a write to a power cut: the new pool's LVM
//! metadata (transaction 0, no thin volume) reached the disk, LVM's wipe of the new
//! `_tmeta`'s start did not (LVM flushes nothing in between). dm-thin then opens the
//! removed pool's metadata superblock under the new pool, and LINSTOR's first
//! `lvcreate` fails ("Cannot use thin pool … with transaction id 1 for thin
//! volumes. Expected transaction id 0."). Built for real in the guest: the old
//! pool's `_tmeta` is saved with dd, the reset runs, and the saved metadata is
//! written back over the new `_tmeta` (the "wipe lost" state).
//!
//! A start must then re-create the pool (LVM records no thin volume in it, so
//! nothing there is ours to keep): exit 0, LINSTOR's `lvcreate` works, `thin_check`
//! is clean, the next start writes nothing. The same mismatch under a pool that
//! LVM records a thin volume in is refused with nothing written.
mod common;

use common::*;
use vmtest::DiskSpec;

/// Guest shell: `tmeta_at` prints the `_tmeta` device's start and length on the
/// partition in sectors (one linear segment: LVM allocates it in one piece on a
/// fresh PV; the `tmeta-*` steps show the table).
const HELPERS: &str = r#"
TMETA=linstor--vg-linstor--pool_tmeta
tmeta_at() { set -- $(dmsetup table $TMETA); [ "$3" = linear ] && echo "$5 $2"; }
seqno() { vgs --noheadings -o vg_seqno linstor-vg | tr -d ' '; }
"#;

const SCRIPT: &str = r#"
step prov-a $LPD $P --satellite-id node-a
step thin-a lvcreate -V 64m -T linstor-vg/linstor-pool -n pvc-1
step write-a dd if=/dev/urandom of=/dev/mapper/linstor--vg-pvc--1 bs=1M count=4 conv=fsync
step tmeta-a dmsetup table $TMETA
set -- $(tmeta_at); OLD=$1; OLD_LEN=$2
step deactivate-a vgchange -an linstor-vg
step save-old sh -c "[ -n '$OLD' ] && dd if=/dev/vda1 of=/tmp/old-tmeta bs=512 skip=$OLD count=$OLD_LEN 2>/dev/null"
step reset-b $LPD $P --satellite-id node-b
step tmeta-b dmsetup table $TMETA
set -- $(tmeta_at); NEW=$1; NEW_LEN=$2
step tmeta-lvs lvs -a --noheadings -o lv_name,seg_pe_ranges linstor-vg
step where sh -c "echo $OLD $OLD_LEN $NEW $NEW_LEN"
step save-fresh sh -c "[ -n '$NEW' ] && dd if=/dev/vda1 of=/tmp/fresh-tmeta bs=512 skip=$NEW count=$NEW_LEN 2>/dev/null"
step deactivate-b vgchange -an linstor-vg
step lose-wipe sh -c "[ -n '$NEW' ] && dd if=/tmp/old-tmeta of=/dev/vda1 bs=512 seek=$NEW conv=notrunc,fsync 2>/dev/null"
step stale-activate lvchange -ay linstor-vg/linstor-pool
step stale-kernel dmsetup status linstor--vg-linstor--pool
step stale-status $LPD status --partition-label linstor-storage --volume-group linstor-vg --pool linstor-pool
step stale-dry $LPD $P --satellite-id node-b --dry-run
step stale-deactivate vgchange -an linstor-vg
step start-b $LPD $P --satellite-id node-b --log-level debug
step linstor lvcreate --virtualsize 8M linstor-vg --thinpool linstor-pool --name r_00000
step seq-before seqno
step again $LPD $P --satellite-id node-b
step seq-after seqno
set -- $(tmeta_at); NOW=$1; NOW_LEN=$2
step deactivate-c vgchange -an linstor-vg
step check-map sh -c "[ -n '$NOW' ] && dmsetup create pooltx-check --readonly --table '0 $NOW_LEN linear /dev/vda1 $NOW'"
step check-node dmsetup mknodes pooltx-check
step thin-check thin_check /dev/mapper/pooltx-check
step check-unmap dmsetup remove pooltx-check
step with-volume-stale sh -c "[ -n '$NOW' ] && dd if=/tmp/fresh-tmeta of=/dev/vda1 bs=512 seek=$NOW conv=notrunc,fsync 2>/dev/null"
step with-volume-activate lvchange -ay linstor-vg/linstor-pool
step with-volume-kernel dmsetup status linstor--vg-linstor--pool-tpool
step with-volume-seq-before seqno
step with-volume-lvs-before lvs --noheadings -o lv_name linstor-vg
step with-volume $LPD $P --satellite-id node-b
step with-volume-seq-after seqno
step with-volume-lvs-after lvs --noheadings -o lv_name linstor-vg
"#;

/// The transaction id of a `dmsetup status` line of a thin-pool device.
fn kernel_transaction(run: &vmtest::GuestRun, step: &str) -> String {
    let out = &run.expect_success(step).stdout;
    let fields: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(fields.get(2), Some(&"thin-pool"), "{step}: {out:?}");
    fields.get(3).map(|s| (*s).to_owned()).unwrap_or_default()
}

#[test]
fn a_pool_reading_an_earlier_pools_metadata_is_created_again() {
    let bed = bed(vec![
        DiskSpec::new("storage", 1024).partition("linstor-storage", None)
    ]);
    let run = boot(&bed, false, &format!("{HELPERS}{SCRIPT}"));
    // The state is built as described, or the test says where it went wrong.
    for s in [
        "thin-a",
        "write-a",
        "deactivate-a",
        "save-old",
        "save-fresh",
        "deactivate-b",
        "lose-wipe",
        "stale-activate",
        "stale-deactivate",
    ] {
        run.expect_success(s);
    }
    expect_provisioned(&run, "prov-a");
    expect_provisioned(&run, "reset-b");
    let table = |s: &str| run.expect_success(s).stdout.trim().to_owned();
    for s in ["tmeta-a", "tmeta-b"] {
        assert_eq!(
            table(s).lines().count(),
            1,
            "{s}: _tmeta is one segment: {}",
            table(s)
        );
    }
    let where_ = table("where");
    eprintln!(
        "old _tmeta (start, sectors) and new: {where_}; lvs: {}",
        table("tmeta-lvs")
    );
    assert_eq!(
        kernel_transaction(&run, "stale-kernel"),
        "1",
        "the new pool must open the old pool's superblock (transaction 1)"
    );

    let mut checks = Checks::default();
    for needle in ["another pool's", "transaction 1 on disk, LVM expects 0"] {
        checks.that(
            run.step("stale-status").stdout.contains(needle),
            format!(
                "stale-status lacks {needle:?}:\n{}",
                run.step("stale-status").stdout
            ),
        );
    }
    let dry = &run.step("stale-dry");
    checks.that(
        format!("{}{}", dry.stdout, dry.stderr).contains(
            "its metadata on disk belongs to an earlier pool (transaction 1 on disk, LVM expects 0 with no thin volumes)",
        ),
        format!(
            "stale-dry does not plan the pool's removal:\n{}\n{}",
            dry.stdout, dry.stderr
        ),
    );
    eprintln!("start-b:\n{}", run.step("start-b").stderr.trim_end());
    checks.exit(&run, "start-b", 0);
    checks.says(
        &run,
        "start-b",
        "the pool's metadata on disk belongs to an earlier pool: transaction 1 on disk, LVM expects 0 with no thin volumes; re-creating it",
    );
    checks.exit(&run, "linstor", 0);
    checks.steady(&run, "again");
    checks.same(&run, "seq-before", "seq-after");
    for s in [
        "deactivate-c",
        "check-map",
        "check-node",
        "thin-check",
        "check-unmap",
    ] {
        checks.exit(&run, s, 0);
    }

    // A pool LVM records a thin volume in, opening metadata of another
    // transaction (the fresh pool's, 0, where LVM expects 1): refused, nothing
    // written, the volume kept.
    for s in ["with-volume-stale", "with-volume-activate"] {
        checks.exit(&run, s, 0);
    }
    if run.step("with-volume-kernel").exit_code == 0 {
        checks.that(
            kernel_transaction(&run, "with-volume-kernel") == "0",
            format!(
                "with-volume-kernel: {}",
                run.step("with-volume-kernel").stdout
            ),
        );
    }
    checks.refused_before_lvm(
        &run,
        "with-volume",
        &[
            "holds thin volumes (r_00000)",
            "transaction 0 where LVM's metadata records transaction 1",
            "thin_dump",
            "lvconvert --repair linstor-vg/linstor-pool",
        ],
    );
    checks.same(&run, "with-volume-seq-before", "with-volume-seq-after");
    checks.same(&run, "with-volume-lvs-before", "with-volume-lvs-after");
    checks.finish();
}
