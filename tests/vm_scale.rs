//! A steady start's cost does not grow with the node's other devices and grows
//! little with its volumes: the same start with 0 and with N active thin volumes
//! in the pool plus N other block devices (loop devices: whole virtual disks as
//! DRBD's are) opens the same sysfs files, makes one device-mapper status per
//! active LVM device (its open count, which a reset's refusal needs) and checks
//! the VG's `/dev/<vg>` links; today's main opens ~5 sysfs files per device. Counted with strace, not
//! timed: counts do not depend on the machine's load. The same boot records a
//! bare `--version` start against an empty-pool steady start (system calls, and
//! the times as a ratio in the test's output, never asserted).
mod common;

use common::*;
use vmtest::scale::SCALE_SH;
use vmtest::DiskSpec;

/// Thin volumes and other devices added for the second count.
const N: usize = 300;

/// What one strace'd start did.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    /// `openat`/`open` of a path under /sys.
    sysfs_opens: usize,
    /// `readlink`/`readlinkat` and `getdents64` calls (folder walks).
    walks: usize,
    /// ioctls strace decodes as device-mapper's (`DM_…`).
    dm_ioctls: usize,
    /// `DM_LIST_DEVICES` among them: a list that did not fit its buffer is asked
    /// again, the kernel walking every device each time.
    dm_lists: usize,
    /// Opens of the VG's `/dev/linstor-vg` folder (one link per volume).
    vg_dev_dir_opens: usize,
    /// Every system call (`strace -f -c` total).
    total: u64,
}

fn counts(run: &vmtest::GuestRun, tag: &str) -> Counts {
    let trace = &expect_exit(run, &format!("trace-{tag}"), 0).stdout;
    let summary = &expect_exit(run, &format!("summary-{tag}"), 0).stdout;
    let total = summary
        .lines()
        .rev()
        .find(|l| l.trim_end().ends_with("total"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no total in the strace summary {tag}:\n{summary}"));
    let lines = || trace.lines().filter(|l| !l.contains("resumed>"));
    Counts {
        sysfs_opens: lines()
            .filter(|l| l.contains("open") && l.contains("\"/sys/"))
            .count(),
        walks: lines()
            .filter(|l| l.contains("readlink") || l.contains("getdents64("))
            .count(),
        dm_ioctls: lines()
            .filter(|l| l.contains("ioctl(") && l.contains("DM_"))
            .count(),
        dm_lists: lines()
            .filter(|l| l.contains("ioctl(") && l.contains("DM_LIST_DEVICES"))
            .count(),
        vg_dev_dir_opens: lines()
            .filter(|l| l.contains("open") && l.contains("\"/dev/linstor-vg\""))
            .count(),
        total,
    }
}

/// A steady start under strace twice (calls by kind, then the summary) and the
/// exit code of a plain one.
fn counted_start(tag: &str) -> String {
    format!(
        "step steady-{tag} $LPD $P --satellite-id node-01\n\
         strace -f -qq -o /tmp/trace-{tag} -e trace=open,openat,ioctl,readlink,readlinkat,getdents64 $LPD $P --satellite-id node-01 >/dev/null 2>&1\n\
         strace -f -c -o /tmp/summary-{tag} $LPD $P --satellite-id node-01 >/dev/null 2>&1\n\
         step trace-{tag} cat /tmp/trace-{tag}\n\
         step summary-{tag} cat /tmp/summary-{tag}\n"
    )
}

#[test]
fn steady_start_cost_is_flat_in_thin_volumes_and_devices() {
    let bed = bed(vec![
        DiskSpec::new("disk", 2048).partition("linstor-storage", None),
        DiskSpec::new("other", 2048).partition("other-storage", None),
    ])
    .with_file(
        std::path::Path::new("/usr/bin/strace"),
        "/usr/local/bin/strace",
    )
    .with_file(
        std::path::Path::new("/usr/bin/date"),
        "/usr/local/bin/gdate",
    );
    let mut script = String::from(SCALE_SH);
    script.push_str(
        "step provision $LPD $P --satellite-id node-01\n\
         step provision-other $LPD --partition-label other-storage --volume-group other-vg --pool pool --on-failure exit --satellite-id node-01\n",
    );
    script.push_str(&counted_start("0"));
    // --version against the empty-pool steady start: system calls, and 20 starts of
    // each timed as a loop (recorded, not asserted).
    script.push_str(
        "strace -f -c -o /tmp/summary-version $LPD --version >/dev/null 2>&1\n\
         step summary-version cat /tmp/summary-version\n\
         loop20() { _t0=$(gdate +%s%N); _i=0; while [ $_i -lt 20 ]; do \"$@\" >/dev/null 2>&1; _i=$((_i + 1)); done; _t1=$(gdate +%s%N); echo $(( (_t1 - _t0) / 20000 )); }\n\
         step time-version loop20 $LPD --version\n\
         step time-steady loop20 $LPD $P --satellite-id node-01\n\
         step phases-0 env LOG_LEVEL=debug $LPD $P --satellite-id node-01\n",
    );
    script.push_str(&format!(
        "step add-thins add_thins linstor-vg linstor-pool {N}\n\
         step add-other-thins add_thins other-vg pool {N}\n\
         step other-lvs lvs --noheadings -o lv_name,lv_active other-vg\n\
         step add-devices add_other_devices {N}\n\
         step thin-lvs lvs --noheadings -o lv_name,lv_active linstor-vg\n\
         step seqno-before vgs --noheadings -o vg_seqno linstor-vg\n"
    ));
    script.push_str(&counted_start("n"));
    script.push_str("step seqno-after vgs --noheadings -o vg_seqno linstor-vg\n");
    let run = boot(&bed, false, &script);

    expect_provisioned(&run, "provision");
    expect_exit(&run, "steady-0", 0);
    expect_exit(&run, "add-thins", 0);
    expect_exit(&run, "add-devices", 0);
    let active = expect_exit(&run, "thin-lvs", 0)
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("pvc-") && l.contains("active"))
        .count();
    assert_eq!(active, N, "{N} active thin volumes expected");
    // Another VG on another disk (a second pool) with as many active volumes: their
    // devices are listed, never asked their state.
    expect_provisioned(&run, "provision-other");
    expect_exit(&run, "add-other-thins", 0);
    let other_active = expect_exit(&run, "other-lvs", 0)
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("pvc-") && l.contains("active"))
        .count();
    assert_eq!(
        other_active, N,
        "{N} active thin volumes expected in other-vg"
    );
    expect_exit(&run, "steady-n", 0);
    assert_eq!(
        run.step("seqno-before").stdout.trim(),
        run.step("seqno-after").stdout.trim(),
        "the steady start at scale wrote metadata"
    );

    let empty = counts(&run, "0");
    let full = counts(&run, "n");
    let version_total = counts_total(&run, "version");
    let ms = |step: &str| -> f64 {
        expect_exit(&run, step, 0)
            .stdout
            .trim()
            .parse::<f64>()
            .unwrap_or(f64::NAN)
            / 1000.0
    };
    let (version_ms, steady_ms) = (ms("time-version"), ms("time-steady"));
    let phases = expect_exit(&run, "phases-0", 0);
    let timings = phases
        .stderr
        .lines()
        .chain(phases.stdout.lines())
        .find(|l| l.contains(" timings "))
        .unwrap_or("(no timings line)");
    eprintln!(
        "steady start, empty pool: {empty:?}\n\
         steady start, {N} thin volumes + {N} loop devices: {full:?}\n\
         --version: {version_total} system calls; times (20-start loops, no udevd): \
         --version {version_ms:.1} ms, empty steady {steady_ms:.1} ms, ratio {:.2}\n\
         empty steady phases: {timings}",
        steady_ms / version_ms
    );
    // The decision reads the same sysfs files whatever the node holds.
    assert!(
        full.sysfs_opens <= empty.sysfs_opens + 4,
        "sysfs opens grew with the node: {} with nothing, {} with {N} thin volumes and {N} devices",
        empty.sysfs_opens,
        full.sysfs_opens
    );
    // Folder walks: the same folders, longer listings (a getdents64 per ~100 names).
    // No readlink per `/dev/<vg>` link: where they lead is read only by a plan that
    // runs vgcreate.
    assert!(
        full.walks <= empty.walks + N / 25 + 8,
        "folder walks or readlinks grew with the thin volumes: {} → {}",
        empty.walks,
        full.walks
    );
    // Device-mapper: one list, and the state of the pool's devices only. The thin
    // volumes' open counts are asked only by a plan that removes (none here), and
    // another VG's devices never.
    assert!(
        full.dm_ioctls <= empty.dm_ioctls + 4,
        "device-mapper ioctls grew with the thin volumes: {} with none, {} with {N}",
        empty.dm_ioctls,
        full.dm_ioctls
    );
    // One device-mapper list, sized for the devices `/sys/block` names: with 2N
    // thin volumes (~100 KiB of names and uuids) a 64 KiB first buffer took two.
    assert_eq!(
        (empty.dm_lists, full.dm_lists),
        (1, 1),
        "DM_LIST_DEVICES calls (empty node, {N} + {N} thin volumes)"
    );
    // `/dev/<vg>` is listed once, by the configuration check: the first look, which
    // decides nothing on it, does not list its N links again.
    assert_eq!(
        (empty.vg_dev_dir_opens, full.vg_dev_dir_opens),
        (1, 1),
        "opens of /dev/linstor-vg (empty node, {N} thin volumes)"
    );
    // Nothing grows per thin volume or other device but their names in the listings
    // (and the larger metadata text's reads).
    let per_thin = (full.total as f64 - empty.total as f64) / N as f64;
    assert!(
        per_thin <= 0.5,
        "system calls grew by {per_thin:.2} per added thin volume and device ({} → {})",
        empty.total,
        full.total
    );
}

fn counts_total(run: &vmtest::GuestRun, tag: &str) -> u64 {
    expect_exit(run, &format!("summary-{tag}"), 0)
        .stdout
        .lines()
        .rev()
        .find(|l| l.trim_end().ends_with("total"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}
