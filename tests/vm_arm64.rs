//! The arm64 artifact (`cargo xtask dist --target aarch64`: static musl, LVM linked
//! in) on an arm64 machine: Debian's arm64 cloud kernel under `qemu-system-aarch64`
//! (TCG, `-machine virt`) with virtio GPT disks and an arm64 Debian userland
//! (lvm2 and thin_check as on a node, used here only to check the tool's work with
//! LVM's own reports). The engine's essential scenarios, in two boots:
//!
//! 1. fresh provision (3 LVM commands); steady start (0 commands, seqno unchanged);
//!    reset to another satellite ID (old LVs gone, new VG and tag); SIGKILL after an
//!    LVM command (the tool's fault-injection hook) and at six instants spread over a
//!    measured reset, each followed by a rerun that must converge to an active,
//!    tagged pool; a second disk provisioned with a thin volume holding data; and a
//!    power cut (the hook: `sysrq-b`, nothing synced) inside the thin-pool creation
//!    of a reset, which ends the boot.
//! 2. the cut disk: the rerun converges to the cut run's ID and the run after it
//!    has nothing to do; the second disk's partition was grown on the host in
//!    between: the pool grows with it (pvresize, lvextend, and the activation the
//!    reboot made necessary), its thin volume's data intact, then steady again.
//!
//! The artifact's path comes from `$LINSTOR_PROVISION_DISK_ARM64_BIN` (`cargo xtask
//! test` sets it after building the artifact); without it this test fails, never
//! skips.
mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use vmtest::{Arch, BootOptions, DiskSpec, GuestRun, TestBed};

const ARM64_ENV: &str = "LINSTOR_PROVISION_DISK_ARM64_BIN";

fn artifact() -> PathBuf {
    let Some(path) = std::env::var_os(ARM64_ENV).filter(|p| !p.is_empty()) else {
        panic!(
            "${ARM64_ENV} is not set: run this test via `cargo xtask test`, or build the arm64 \
             artifact with `cargo xtask dist --target aarch64` and set \
             {ARM64_ENV}=target/dist/aarch64/linstor-provision-disk"
        );
    };
    let path = PathBuf::from(path);
    assert!(
        path.is_file(),
        "${ARM64_ENV} names {}, which does not exist; build it with `cargo xtask dist --target aarch64`",
        path.display()
    );
    path
}

/// Fails unless `path` is a 64-bit little-endian aarch64 ELF executable without a
/// program interpreter (statically linked).
fn assert_static_aarch64(path: &Path) {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let u16_at = |at: usize| u16::from_le_bytes([data[at], data[at + 1]]);
    assert!(
        data.len() > 0x40 && data.starts_with(b"\x7fELF") && data[4] == 2 && data[5] == 1,
        "{} is not a 64-bit little-endian ELF file",
        path.display()
    );
    assert_eq!(
        u16_at(0x12),
        183,
        "{}: ELF machine {} is not aarch64 (183)",
        path.display(),
        u16_at(0x12)
    );
    let mut phoff_bytes = [0u8; 8];
    phoff_bytes.copy_from_slice(&data[0x20..0x28]);
    let phoff = usize::try_from(u64::from_le_bytes(phoff_bytes)).unwrap_or(usize::MAX);
    let (phentsize, phnum) = (usize::from(u16_at(0x36)), usize::from(u16_at(0x38)));
    for i in 0..phnum {
        let at = phoff + i * phentsize;
        let kind = data
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .unwrap_or_else(|| panic!("{}: program header {i} is cut off", path.display()));
        assert_ne!(
            kind,
            3,
            "{} has a program interpreter (PT_INTERP): it is not statically linked",
            path.display()
        );
    }
}

fn arm64_boot(bed: &TestBed, faults: bool, script: &str) -> GuestRun {
    let options = BootOptions {
        arch: Arch::Aarch64,
        timeout: Duration::from_secs(600),
        power_cut_expected: faults,
        kernel_args: if faults {
            FAULT_INJECTION_KEY.to_owned()
        } else {
            String::new()
        },
        ..BootOptions::default()
    };
    match bed.boot(&options, &format!("{PRELUDE}{HELPERS}{script}")) {
        Ok(run) => {
            eprintln!(
                "arm64 guest ran {} steps in {:?} (script started at uptime {:?})",
                run.steps.len(),
                run.elapsed,
                run.guest_uptime_at_script
            );
            run
        }
        Err(e) => panic!("arm64 VM boot failed: {e}"),
    }
}

/// Guest helpers. `timed KIND CMD…` keeps how long CMD took (ms) as KIND's
/// reference; `killat KIND PCT ARGS…` starts the tool, SIGKILLs it after PCT% of
/// that reference and prints `rc=<exit status>` (137: killed; 0: it had finished)
/// and what the tool logged. `pool_state VG` prints `pool;data%;tags` (a data
/// percentage only when the pool is active).
const HELPERS: &str = r#"
VGS='vgs --reportformat json -o vg_name,vg_uuid,vg_seqno,vg_tags,vg_free_count,pv_count'
LVS='lvs -a --reportformat json --units b --nosuffix -o lv_name,lv_attr,lv_size'
GROW='--partition-label linstor-grow --volume-group grow-vg --pool linstor-pool --on-failure exit'
now_ms() { read up _ </proc/uptime; cs=$(echo "$up" | tr -d .); echo $((cs * 10)); }
timed() {
  kind=$1; shift
  t0=$(now_ms); "$@"; rc=$?; t1=$(now_ms)
  echo $((t1 - t0)) >/tmp/ref-$kind
  return $rc
}
killat() {
  ref=$(cat /tmp/ref-$1); ms=$((ref * $2 / 100)); shift 2
  d=$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))
  echo "delay=${d}s of ${ref}ms"
  $LPD "$@" >/tmp/killed.log 2>&1 &
  pid=$!
  sleep "$d"
  kill -9 "$pid" 2>/dev/null
  wait "$pid"
  echo "rc=$?"
  cat /tmp/killed.log
  return 0
}
pool_state() {
  lvs --noheadings --separator ';' -o lv_name,data_percent,vg_tags "$1/linstor-pool" | tr -d ' '
}
"#;

/// Instants of the SIGKILLs, in percent of the measured reset.
const KILL_PERCENTS: [u32; 6] = [10, 25, 40, 55, 70, 85];

/// The ID the `n`th killed reset goes to (alternating, so every round is a reset).
fn kill_target(n: usize) -> &'static str {
    if n.is_multiple_of(2) {
        "node-k1"
    } else {
        "node-k2"
    }
}

/// Power-cut delays into command 6 of a reset (the thin pool's creation), tried in
/// turn until one lands before the tool finishes (0 always does).
const CUT_DELAYS_MS: [u32; 4] = [40, 20, 5, 0];
const CUT_MARKER: &str = "arm64-cut: reset to ";
const CUT_HOOK: &str = "LINSTOR_PROVISION_DISK_TEST_POWERCUT_DURING";

fn commands(run: &GuestRun, step: &str) -> u32 {
    let stderr = &run.step(step).stderr;
    stderr
        .split_whitespace()
        .find_map(|word| word.strip_prefix("lvm_commands="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("step {step} logged no lvm_commands=N:\n{stderr}"))
}

/// A successful run that ran exactly `n` LVM commands.
fn expect_commands(run: &GuestRun, step: &str, n: u32) {
    let s = expect_provisioned(run, step);
    assert_eq!(
        commands(run, step),
        n,
        "step {step} ran another number of LVM commands:\n{}",
        s.stderr
    );
}

fn lv_attr(run: &GuestRun, step: &str, lv: &str) -> String {
    rows(run, step, "lv")
        .iter()
        .find(|row| text(&row["lv_name"]) == lv)
        .map(|row| text(&row["lv_attr"]))
        .unwrap_or_else(|| panic!("step {step}: no LV {lv}:\n{}", run.step(step).stdout))
}

/// The thin pool is active (`lv_attr` state `a`), as LINSTOR needs it.
fn assert_pool_active(run: &GuestRun, step: &str) {
    let attr = lv_attr(run, step, "linstor-pool");
    assert_eq!(
        attr.chars().nth(4),
        Some('a'),
        "step {step}: linstor-pool is not active ({attr})"
    );
}

/// A `pool_state` line: the pool reports data usage (active) and the VG has `id`'s tag.
fn assert_pool_state(run: &GuestRun, step: &str, id: &str) {
    let line = run.expect_success(step).stdout.trim().to_owned();
    let cols: Vec<&str> = line.split(';').collect();
    assert_eq!(cols.len(), 3, "{step}: {line:?}");
    assert_eq!(cols[0], "linstor-pool", "{step}: {line:?}");
    assert!(
        cols[1].parse::<f64>().is_ok(),
        "{step}: the pool reports no data usage (inactive): {line:?}"
    );
    assert_eq!(
        cols[2],
        format!("linstor-satellite-id={id}"),
        "{step}: {line:?}"
    );
}

/// Where a `killat` step's SIGKILL landed: None when the tool had finished, else
/// the last line it logged (an action line: inside that LVM command).
fn kill_landing(run: &GuestRun, step: &str) -> Option<String> {
    let out = &run.expect_success(step).stdout;
    match out.lines().find(|l| l.starts_with("rc=")) {
        Some("rc=137") => Some(
            out.lines()
                .rfind(|l| !l.starts_with("rc=") && !l.starts_with("delay="))
                .unwrap_or("(nothing logged)")
                .to_owned(),
        ),
        Some("rc=0") => None,
        other => panic!("{step}: the tool neither was killed nor succeeded ({other:?}):\n{out}"),
    }
}

/// The first boot's script (see the module documentation).
fn first_script() -> String {
    let mut s = String::from(
        r#"
step arch uname -m
step version $LPD --version
step fresh $LPD $P --satellite-id node-a
step vgs-fresh $VGS linstor-vg
step lvs-fresh $LVS linstor-vg
step steady $LPD $P --satellite-id node-a
step vgs-steady $VGS linstor-vg
step thin lvcreate -q -V 32m -T linstor-vg/linstor-pool -n pvc-1
step reset $LPD $P --satellite-id node-b
step vgs-reset $VGS linstor-vg
step lvs-reset $LVS linstor-vg
step kill-after env LINSTOR_PROVISION_DISK_TEST_KILL_AFTER=2 $LPD $P --satellite-id node-c
step kill-after-rerun $LPD $P --satellite-id node-c
step kill-after-state pool_state linstor-vg
step kill-after-steady $LPD $P --satellite-id node-c
step ref-thin lvcreate -q -V 32m -T linstor-vg/linstor-pool -n pvc-ref
step ref timed reset $LPD $P --satellite-id node-k2
"#,
    );
    for (n, percent) in KILL_PERCENTS.iter().enumerate() {
        s.push_str(&format!(
            "step kill-{n}-thin lvcreate -q -V 32m -T linstor-vg/linstor-pool -n pvc-{n}\n\
             step kill-{n} killat reset {percent} $P --satellite-id {id}\n\
             step kill-{n}-rerun $LPD $P --satellite-id {id}\n\
             step kill-{n}-state pool_state linstor-vg\n\
             step kill-{n}-lvs sh -c 'lvs --noheadings -o lv_name linstor-vg | tr -d \" \"'\n",
            id = kill_target(n),
        ));
    }
    s.push_str(
        r#"
step grow-fresh $LPD $GROW --satellite-id node-g
step grow-lvs-fresh $LVS grow-vg
step grow-thin lvcreate -q -V 32m -T grow-vg/linstor-pool -n keep
step grow-marker sh -c 'printf precious-arm64 | dd of=/dev/mapper/grow--vg-keep conv=fsync 2>/dev/null'
step grow-off vgchange -an grow-vg
"#,
    );
    // Last: resets with a power cut inside the thin pool's creation, the delay
    // halving until the cut lands before the tool finishes.
    s.push_str("from=node-k2; to=node-p1\n");
    for delay in CUT_DELAYS_MS {
        s.push_str(&format!(
            "lvcreate -q -V 32m -T linstor-vg/linstor-pool -n pvc-cut\n\
             echo \"{CUT_MARKER}$to ({delay} ms into command 6)\"\n\
             env {CUT_HOOK}=6:{delay} $LPD $P --satellite-id $to --log-format json 2>/dev/console\n\
             echo \"arm64-cut: the tool exited $? before the power cut\"\n\
             t=$from; from=$to; to=$t\n"
        ));
    }
    s
}

/// The size of the grow disk's pool in an `lvs` step.
fn grow_pool_size(run: &GuestRun, step: &str) -> u64 {
    rows(run, step, "lv")
        .iter()
        .find(|row| text(&row["lv_name"]) == "linstor-pool")
        .map(|row| number(&row["lv_size"]))
        .unwrap_or_else(|| panic!("step {step}: no linstor-pool:\n{}", run.step(step).stdout))
}

/// Checks the first boot; returns the ID of the run the power cut interrupted.
fn check_first(run: &GuestRun) -> String {
    assert_eq!(
        run.expect_success("arch").stdout.trim(),
        "aarch64",
        "the guest is not arm64"
    );
    run.expect_success("version");

    // Fresh: PV, tagged VG and the pool on all free space, active.
    expect_commands(run, "fresh", 3);
    let fresh = vg_row(run, "vgs-fresh");
    assert_eq!(text(&fresh["vg_tags"]), "linstor-satellite-id=node-a");
    assert_eq!(number(&fresh["vg_free_count"]), 0, "pool not on all space");
    assert_pool_active(run, "lvs-fresh");

    // Steady: no LVM command, no metadata write.
    expect_commands(run, "steady", 0);
    assert!(
        !run.step("steady").stderr.contains("running lvm command"),
        "{}",
        run.step("steady").stderr
    );
    assert_eq!(vg_row(run, "vgs-steady")["vg_seqno"], fresh["vg_seqno"]);

    // Reset: the seed's log lines, a new VG with the new tag, the thin LV gone.
    run.expect_success("thin");
    let reset = expect_provisioned(run, "reset");
    for line in [
        "satellite id mismatch, resetting lvm configuration",
        "removing logical volumes",
        "removing volume group",
        "removing physical volume",
    ] {
        assert!(
            reset.stderr.contains(line),
            "reset log lacks {line:?}:\n{}",
            reset.stderr
        );
    }
    assert_eq!(commands(run, "reset"), 6, "{}", reset.stderr);
    let after_reset = vg_row(run, "vgs-reset");
    assert_eq!(text(&after_reset["vg_tags"]), "linstor-satellite-id=node-b");
    assert_ne!(
        after_reset["vg_uuid"], fresh["vg_uuid"],
        "the VG was not remade"
    );
    let lvs = lv_names(run, "lvs-reset");
    assert!(!lvs.contains(&"pvc-1".to_owned()), "{lvs:?}");
    assert_pool_active(run, "lvs-reset");

    // SIGKILL right after the second LVM command of a reset (the VG is gone, the
    // PV not yet), then a rerun that converges and a steady start.
    let killed = expect_exit(run, "kill-after", 137);
    assert!(
        killed
            .stderr
            .contains("LINSTOR_PROVISION_DISK_TEST_KILL_AFTER reached"),
        "the kill hook did not fire:\n{}",
        killed.stderr
    );
    expect_provisioned(run, "kill-after-rerun");
    assert_pool_state(run, "kill-after-state", "node-c");
    expect_commands(run, "kill-after-steady", 0);

    // SIGKILLs spread over a measured reset (with a thin LV to remove each time).
    run.expect_success("ref-thin");
    expect_commands(run, "ref", 6);
    let mut landings = Vec::new();
    for (n, percent) in KILL_PERCENTS.iter().enumerate() {
        run.expect_success(&format!("kill-{n}-thin"));
        let landing = kill_landing(run, &format!("kill-{n}"));
        expect_provisioned(run, &format!("kill-{n}-rerun"));
        assert_pool_state(run, &format!("kill-{n}-state"), kill_target(n));
        assert_eq!(
            run.expect_success(&format!("kill-{n}-lvs")).stdout.trim(),
            "linstor-pool",
            "kill-{n}: after the reset only the new pool is left"
        );
        eprintln!(
            "SIGKILL at {percent}% of the reset: {}",
            landing.as_deref().unwrap_or("the tool had finished")
        );
        landings.push(landing);
    }
    let landed = landings.iter().flatten().count();
    assert!(
        landed * 2 >= KILL_PERCENTS.len(),
        "only {landed} of {} SIGKILLs landed while the tool ran: {landings:?}",
        KILL_PERCENTS.len()
    );

    // The second disk, for growing in the next boot.
    expect_commands(run, "grow-fresh", 3);
    for s in ["grow-thin", "grow-marker", "grow-off"] {
        run.expect_success(s);
    }

    // The power cut: inside command 6 (the tool had logged its action line, not
    // its success line).
    run.check(run.power_cut, "the power was never cut");
    run.check(
        run.console.contains(&format!("{CUT_HOOK}: power cut now")),
        "the hook's power-cut line is missing",
    );
    let after = run
        .console
        .rsplit_once(CUT_MARKER)
        .map(|(_, after)| after)
        .unwrap_or_else(|| panic!("no {CUT_MARKER:?} on the console"));
    let id = after
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    eprintln!(
        "power cut during the reset to {}",
        after.lines().next().unwrap_or_default()
    );
    let log: Vec<Value> = after
        .lines()
        .filter_map(|l| l.find('{').map(|at| &l[at..]))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("timestamp").is_some())
        .collect();
    run.check(
        !log.iter()
            .any(|l| l["message"] == "disk provisioning completed successfully"),
        "the cut run finished before the power cut",
    );
    // Each LVM command is logged as it starts: the removals with an `action`
    // field, pvcreate, vgcreate and the pool as `create …`.
    let actions = log
        .iter()
        .filter(|l| {
            l["level"] == "INFO"
                && (l.get("action").is_some() || text(&l["message"]).starts_with("create "))
        })
        .count();
    assert_eq!(
        actions, 6,
        "the power cut landed elsewhere than in command 6 of the reset:\n{after}"
    );
    id
}

fn second_script(cut_id: &str) -> String {
    format!(
        r#"
step cut-plan $LPD $P --satellite-id {cut_id} --dry-run
step cut-rerun $LPD $P --satellite-id {cut_id}
step cut-steady $LPD $P --satellite-id {cut_id}
step cut-vgs $VGS linstor-vg
step cut-lvs $LVS linstor-vg
step grow-pvs-before pvs --reportformat json --units b --nosuffix -o pv_name,pv_size,dev_size,vg_name
step grow $LPD $GROW --satellite-id node-g
step grow-pvs pvs --reportformat json --units b --nosuffix -o pv_name,pv_size,dev_size,vg_name
step grow-vgs $VGS grow-vg
step grow-lvs $LVS grow-vg
step grow-steady $LPD $GROW --satellite-id node-g
step grow-data sh -c 'lvchange -ay grow-vg/keep && head -c 14 /dev/mapper/grow--vg-keep'
"#
    )
}

/// The `pv_size` and `dev_size` of the grow disk's PV.
fn grow_pv_sizes(run: &GuestRun, step: &str) -> (u64, u64) {
    let all = rows(run, step, "pv");
    let row = all
        .iter()
        .find(|r| text(&r["vg_name"]) == "grow-vg")
        .unwrap_or_else(|| panic!("step {step}: no PV of grow-vg in {all:?}"));
    (number(&row["pv_size"]), number(&row["dev_size"]))
}

fn check_second(run: &GuestRun, cut_id: &str, pool_before: u64) {
    // The power-cut disk: converged to the cut run's ID, then nothing to do.
    let plan = dry_run_steps(run, "cut-plan");
    eprintln!("after the power cut the rerun planned {plan:?}");
    expect_provisioned(run, "cut-rerun");
    expect_commands(run, "cut-steady", 0);
    let vg = vg_row(run, "cut-vgs");
    assert_eq!(
        text(&vg["vg_tags"]),
        format!("linstor-satellite-id={cut_id}")
    );
    assert_eq!(number(&vg["vg_free_count"]), 0, "pool not at full size");
    assert_eq!(number(&vg["pv_count"]), 1);
    let lvs = lv_names(run, "cut-lvs");
    assert!(!lvs.contains(&"pvc-cut".to_owned()), "{lvs:?}");
    assert_pool_active(run, "cut-lvs");

    // The grown partition: PV, VG and pool follow it; the thin volume's data stays.
    let (pv_before, dev) = grow_pv_sizes(run, "grow-pvs-before");
    assert!(
        dev >= pv_before + (400 << 20),
        "the partition did not grow: PV {pv_before}, device {dev}"
    );
    let grow = expect_provisioned(run, "grow");
    // pvresize, lvextend, and the activation the reboot made necessary.
    assert_eq!(commands(run, "grow"), 3, "{}", grow.stderr);
    assert!(
        grow.stderr.contains("activate thin pool"),
        "the grown pool was not activated:\n{}",
        grow.stderr
    );
    let (pv_after, dev_after) = grow_pv_sizes(run, "grow-pvs");
    assert!(
        pv_after + (8 << 20) >= dev_after && pv_after > pv_before + (400 << 20),
        "the PV did not grow: {pv_before} -> {pv_after} on a {dev_after}-byte partition"
    );
    assert_eq!(number(&vg_row(run, "grow-vgs")["vg_free_count"]), 0);
    let pool_after = grow_pool_size(run, "grow-lvs");
    assert!(
        pool_after > pool_before + (400 << 20),
        "pool {pool_before} -> {pool_after} bytes"
    );
    assert_pool_active(run, "grow-lvs");
    expect_commands(run, "grow-steady", 0);
    assert_eq!(
        run.expect_success("grow-data").stdout,
        "precious-arm64",
        "the thin volume's data changed"
    );
}

#[test]
fn arm64_artifact_fresh_steady_reset_kills_power_cut_and_grow() {
    let started = Instant::now();
    let artifact = artifact();
    assert_static_aarch64(&artifact);
    let bed = match TestBed::new(vec![
        DiskSpec::new("storage", 1024).partition("linstor-storage", None),
        DiskSpec::new("grow", 512).partition("linstor-grow", None),
    ]) {
        // As $LPD, whatever the artifact's file is called.
        Ok(bed) => bed.with_file(&artifact, "/usr/local/bin/linstor-provision-disk"),
        Err(e) => panic!("could not set up the VM test bed: {e}"),
    };

    let first = arm64_boot(&bed, true, &first_script());
    let cut_id = check_first(&first);
    let pool_before = grow_pool_size(&first, "grow-lvs-fresh");
    grow_disk(&bed.disk_path("grow"), "1G", "linstor-grow");
    let second = arm64_boot(&bed, false, &second_script(&cut_id));
    check_second(&second, &cut_id, pool_before);
    eprintln!(
        "arm64 scenarios: boots of {:?} and {:?}, {:?} in all",
        first.elapsed,
        second.elapsed,
        started.elapsed()
    );
}
