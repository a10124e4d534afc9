//! Durable writes: the disk's cache-flush counter (`/sys/block/vda/stat`, field 16
//! "flush requests completed"; fields 10/11 are I/O ticks) read around each start of
//! the tool. Every LVM command that writes is followed by at least one flush; a steady
//! start and the activation of the pool after a reboot send none. LVM itself never
//! flushes (it writes with O_DIRECT and only waits for completion), so before this
//! tool flushed, a whole first provision reached the disk's volatile cache only.
mod common;

use common::*;
use vmtest::{DiskSpec, GuestRun};

/// The steps measuring one start: the flush counter before and after it, the start at
/// debug level (every LVM command line and every flush is logged).
///
/// The disk is settled first: dm-thin commits its metadata on its own (every second
/// after a change, with a flush), and a commit due from the previous start's pool
/// work is the kernel's, not this start's. `settle` waits until the disk's write and
/// flush counters stay still for over a second (at most ~12 s, else the step fails).
fn measured(name: &str, id: &str) -> String {
    format!(
        "settle() {{ a=$(awk '{{print $7, $16}}' $1); n=0; while [ $n -lt 10 ]; do sleep 1.2; b=$(awk '{{print $7, $16}}' $1); [ \"$a\" = \"$b\" ] && return 0; a=$b; n=$((n+1)); done; return 1; }}\n\
         step {name}-settle settle /sys/block/vda/stat\n\
         step {name}-before cat /sys/block/vda/stat\n\
         step {name} env LOG_LEVEL=debug $LPD $P --satellite-id {id}\n\
         step {name}-after cat /sys/block/vda/stat\n"
    )
}

/// Field 16 of a `/sys/block/<disk>/stat` line: flush requests completed.
fn flush_count(run: &GuestRun, step: &str) -> u64 {
    let out = &run.expect_success(step).stdout;
    let fields: Vec<&str> = out.split_whitespace().collect();
    assert!(
        fields.len() >= 17,
        "{step}: /sys/block/vda/stat has no flush fields (a kernel before 5.5?): {out:?}"
    );
    fields[15]
        .parse()
        .unwrap_or_else(|_| panic!("{step}: field 16 of {out:?} is not a number"))
}

/// Seconds since midnight of a log line's leading RFC 3339 timestamp.
fn seconds_of_day(line: &str) -> Option<f64> {
    let time = line.split('T').nth(1)?.split('Z').next()?;
    let mut parts = time.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s)
}

/// What one measured start did.
#[derive(Debug)]
struct Measured {
    /// LVM commands that write (all but activations and refreshes).
    writing_commands: usize,
    /// Flushes the disk completed during the start.
    disk_flushes: u64,
    /// Flush durations the tool logged, in µs.
    flush_us: Vec<u64>,
    /// From the first to the last log line, in ms.
    total_ms: f64,
}

fn measure(run: &GuestRun, name: &str) -> Measured {
    run.expect_success(&format!("{name}-settle"));
    let step = expect_provisioned(run, name);
    let commands: Vec<&str> = step
        .stderr
        .lines()
        .filter(|l| l.contains("running lvm command"))
        .collect();
    let writing_commands = commands
        .iter()
        .filter(|l| !l.contains("lvchange --activate") && !l.contains("lvchange --refresh"))
        .count();
    let flush_us = step
        .stderr
        .lines()
        .filter(|l| l.contains("flushed the disk's write cache"))
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("duration_us="))
                .and_then(|v| v.parse().ok())
        })
        .collect();
    let times: Vec<f64> = step.stderr.lines().filter_map(seconds_of_day).collect();
    let total_ms = match (times.first(), times.last()) {
        (Some(a), Some(b)) => (b - a) * 1000.0,
        _ => 0.0,
    };
    let before = flush_count(run, &format!("{name}-before"));
    let after = flush_count(run, &format!("{name}-after"));
    Measured {
        writing_commands,
        disk_flushes: after.saturating_sub(before),
        flush_us,
        total_ms,
    }
}

#[test]
fn every_write_reaches_the_disk_before_the_next_step() {
    let bed = bed(vec![
        DiskSpec::new("storage", 1024).partition("linstor-storage", None),
        DiskSpec::new("second", 256).partition("second", None),
    ]);
    let mut script = String::from("step write-cache cat /sys/block/vda/queue/write_cache\n");
    // pvcreate and vgcreate alone (killed after the second command, before its
    // flush): no thin pool is involved, whose metadata commits flush by themselves,
    // so every flush the disk completes here is the tool's.
    script.push_str(
        "step pv-vg-before cat /sys/block/vdb/stat\n\
         step pv-vg env LOG_LEVEL=debug LINSTOR_PROVISION_DISK_TEST_KILL_AFTER=2 $LPD --partition-label second --volume-group second --pool pool --on-failure exit --satellite-id node-01\n\
         step pv-vg-after cat /sys/block/vdb/stat\n",
    );
    script.push_str(&measured("fresh", "node-01"));
    script.push_str(&measured("steady", "node-01"));
    script.push_str(
        "step thin lvcreate -V 64m -T linstor-vg/linstor-pool -n pvc-1\n\
         step data dd if=/dev/urandom of=/dev/linstor-vg/pvc-1 bs=1M count=8 conv=fsync\n",
    );
    script.push_str(&measured("reset", "node-02"));
    script.push_str("step vgs vgs --reportformat json -o vg_name,vg_tags linstor-vg\n");
    let first = boot_injecting_faults(&bed, false, &script);
    let mut checks = Checks::default();
    checks.that(
        first.expect_success("write-cache").stdout.trim() == "write back",
        format!(
            "the guest's disk has no volatile write cache to flush: {:?}",
            first.step("write-cache").stdout
        ),
    );
    checks.that(
        text(&vg_row(&first, "vgs")["vg_tags"]) == "linstor-satellite-id=node-02",
        "the reset did not tag the VG for node-02",
    );

    // Reboot: nothing activates the pool, the start does (no write, no flush).
    let mut script = measured("activate", "node-02");
    script.push_str(&measured("steady-2", "node-02"));
    let second = boot(&bed, false, &script);

    grow_disk(&bed.disk_path("storage"), "2G", "linstor-storage");
    let third = boot(&bed, false, &measured("grow", "node-02"));

    let pv_vg = expect_exit(&first, "pv-vg", 137);
    let pv_vg_flushes =
        flush_count(&first, "pv-vg-after").saturating_sub(flush_count(&first, "pv-vg-before"));
    eprintln!("pv-vg (killed after vgcreate): {pv_vg_flushes} disk flushes");
    checks.that(
        pv_vg_flushes >= 1 && pv_vg.stderr.contains("flushed the disk's write cache"),
        format!(
            "pvcreate was not flushed before vgcreate ran: {pv_vg_flushes} disk flushes\n{}",
            pv_vg.stderr
        ),
    );
    let mut report = Vec::new();
    for (run, name, writes) in [
        (&first, "fresh", true),
        (&first, "steady", false),
        (&first, "reset", true),
        (&second, "activate", false),
        (&second, "steady-2", false),
        (&third, "grow", true),
    ] {
        let m = measure(run, name);
        report.push(format!(
            "{name}: {} writing LVM commands, {} disk flushes, flushes logged (µs) {:?}, start {:.0} ms",
            m.writing_commands, m.disk_flushes, m.flush_us, m.total_ms
        ));
        if writes {
            checks.that(
                m.writing_commands > 0,
                format!("{name}: ran no LVM command that writes: {m:?}"),
            );
            checks.that(
                m.disk_flushes >= m.writing_commands as u64,
                format!(
                    "{name}: {} LVM commands wrote, but the disk completed {} flushes: {m:?}",
                    m.writing_commands, m.disk_flushes
                ),
            );
            checks.that(
                m.flush_us.len() >= m.writing_commands,
                format!("{name}: fewer flushes logged than writing commands: {m:?}"),
            );
        } else {
            checks.that(
                m.writing_commands == 0 && m.disk_flushes == 0 && m.flush_us.is_empty(),
                format!("{name}: wrote or flushed: {m:?}"),
            );
        }
        let step = run.step(name);
        let flushes_word = format!("flushes={}", m.flush_us.len());
        checks.that(
            step.stderr.contains(&flushes_word),
            format!("{name}: the final line does not say {flushes_word}"),
        );
    }
    checks.that(
        second
            .step("activate")
            .stderr
            .contains("activate thin pool"),
        "activate: the pool was not activated after the reboot",
    );
    eprintln!("{}", report.join("\n"));
    checks.finish();
}
