//! The arm64 artifact (`cargo xtask dist --target aarch64`: static musl, LVM linked
//! in) on an arm64 machine: Debian's arm64 cloud kernel under `qemu-system-aarch64`
//! (TCG, `-machine virt`) with virtio GPT disks and an arm64 Debian userland
//! (lvm2 and thin_check as on a node, used here only to check the tool's work with
//! LVM's own reports). The engine's essential scenarios, in two boots:
//!
//! 1. fresh provision (3 LVM commands), its metadata area where LVM puts it on 4 KiB
//!    pages; steady start (0 commands, seqno unchanged); reset to another satellite
//!    ID (old LVs gone, new VG and tag); SIGKILL after an LVM command (the tool's
//!    fault-injection hook); a device-mapper device with an LVM uuid of our VG on the
//!    partition that no VG lists, removed by the tool's own `DM_DEV_REMOVE` ioctl
//!    (built by hand, so its layout on arm64 is what this checks); SIGKILLs at six
//!    instants spread over a measured reset, at least one inside an LVM command, each
//!    followed by a rerun that must converge to an active, tagged pool; a second disk
//!    provisioned with a thin volume holding data; and a power cut (the hook:
//!    `sysrq-b`, nothing synced) inside the thin-pool creation of a reset, which ends
//!    the boot.
//! 2. the cut disk: the plan after the reboot still creates the pool (the cut came
//!    before lvcreate finished), the rerun converges to the cut run's ID and the run
//!    after it has nothing to do; the second disk's partition was grown on the host
//!    in between and its VG activated, as on a node: the live pool grows with it
//!    (pvresize, lvextend, nothing else), its thin volume's data intact, then steady.
//!
//! A third boot runs Debian's 16 KiB-page kernel (the Raspberry Pi 5's page size,
//! [`Arch::Aarch64Pages16K`]): its modules loaded like the 4K kernel's; fresh (LVM
//! puts the metadata area at the page size, and the tool reads it there), steady,
//! reset, and a grow of the partition in the guest with the pool inactive (pvresize,
//! lvextend, activation).
//!
//! The artifact's path comes from `$LINSTOR_PROVISION_DISK_ARM64_BIN` (`cargo xtask
//! test` sets it after building the artifact); without it this test fails, never
//! skips.
mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
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

/// One arm64 guest at a time: the kill instants are measured against a reference run
/// in the same guest, which a second guest competing for the CPU would skew.
static ONE_GUEST_AT_A_TIME: Mutex<()> = Mutex::new(());

fn arm64_boot(bed: &TestBed, faults: bool, script: &str) -> GuestRun {
    arm64_boot_on(Arch::Aarch64, bed, faults, script)
}

fn arm64_boot_on(arch: Arch, bed: &TestBed, faults: bool, script: &str) -> GuestRun {
    let options = BootOptions {
        arch,
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
                "{arch:?} guest ran {} steps in {:?} (script started at uptime {:?})",
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
PVS='pvs --reportformat json --units b --nosuffix -o pv_name,pv_size,dev_size,vg_name'
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

/// The tool's JSON log lines in `text` (anything before a line's `{` dropped, e.g.
/// the console's prefix).
fn json_log(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| l.find('{').map(|at| &l[at..]))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("timestamp").is_some())
        .collect()
}

/// The tool's line for an action of a reset that runs an LVM command, logged as the
/// command starts: the removals carry an `action` field, pvcreate, vgcreate and the
/// pool read `create …`.
fn is_action_line(line: &Value) -> bool {
    line["level"] == "INFO"
        && (line.get("action").is_some() || text(&line["message"]).starts_with("create "))
}

/// LVM's report that a command of a reset succeeded: lvremove, vgremove, pvremove,
/// pvcreate and vgcreate say `… successfully …`, lvcreate `Logical volume "…" created.`
fn is_lvm_success(line: &Value) -> bool {
    let message = text(&line["message"]);
    message.contains("successfully")
        || (message.starts_with("Logical volume ") && message.ends_with(" created."))
}

/// Where a `killat` step's SIGKILL landed.
enum KillLanding {
    /// The tool had finished (exit 0).
    Finished,
    /// Before the first LVM command, or after LVM reported command `after` done.
    Between { after: usize, last: String },
    /// Inside LVM command `command` (1-based): its action line was logged, LVM's
    /// success report for it was not.
    Inside { command: usize, last: String },
}

impl std::fmt::Display for KillLanding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KillLanding::Finished => write!(f, "the tool had finished"),
            KillLanding::Between { after, last } => {
                write!(f, "between LVM commands, after {after} (last line: {last})")
            }
            KillLanding::Inside { command, last } => {
                write!(f, "inside LVM command {command} (last line: {last})")
            }
        }
    }
}

fn describe(landings: &[KillLanding]) -> String {
    landings
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Reads a `killat` step (run with `--log-format json`).
fn kill_landing(run: &GuestRun, step: &str) -> KillLanding {
    landing_in(step, &run.expect_success(step).stdout)
}

/// Where the SIGKILL landed, from what `killat` printed in `step`.
fn landing_in(step: &str, out: &str) -> KillLanding {
    match out.lines().find(|l| l.starts_with("rc=")) {
        Some("rc=137") => {}
        Some("rc=0") => return KillLanding::Finished,
        other => panic!("{step}: the tool neither was killed nor succeeded ({other:?}):\n{out}"),
    }
    let log = json_log(out);
    let last = log
        .last()
        .map_or_else(|| "(nothing logged)".to_owned(), |l| text(&l["message"]));
    let actions = log.iter().filter(|l| is_action_line(l)).count();
    let unfinished = log
        .iter()
        .rposition(is_action_line)
        .is_some_and(|at| !log[at + 1..].iter().any(is_lvm_success));
    if unfinished {
        KillLanding::Inside {
            command: actions,
            last,
        }
    } else {
        KillLanding::Between {
            after: actions,
            last,
        }
    }
}

/// Where `linstor-provision-disk metadata --json` (the tool's own reader) found the
/// PV's first metadata area and data area: (metadata offset, metadata size, data
/// offset), in bytes.
fn pv_areas(run: &GuestRun, step: &str) -> (u64, u64, u64) {
    let pv = json(run, step);
    let first = |key: &str| -> Value {
        pv[key]
            .as_array()
            .and_then(|areas| areas.first())
            .cloned()
            .unwrap_or_else(|| panic!("step {step}: no {key} in {pv}"))
    };
    let (metadata, data) = (first("metadata_areas"), first("data_areas"));
    let field = |area: &Value, key: &str| {
        area[key]
            .as_u64()
            .unwrap_or_else(|| panic!("step {step}: no numeric {key} in {area}"))
    };
    (
        field(&metadata, "offset"),
        field(&metadata, "size"),
        field(&data, "offset"),
    )
}

/// LVM 2.03.16 puts the first metadata area at the page size (its start is the
/// label scan area rounded up to the page size, format-text.c) and ends it at the
/// 1 MiB data alignment, where the data area starts; on 4 KiB pages that is the
/// familiar 4096 + 1044480. The tool found it there by reading the PV header.
fn assert_metadata_area_at_page_size(run: &GuestRun, step: &str, page_size: u64) {
    let (offset, size, data) = pv_areas(run, step);
    assert_eq!(
        offset, page_size,
        "step {step}: the metadata area starts at {offset}, not at the page size {page_size}"
    );
    assert_eq!(
        (offset + size, data),
        (1 << 20, 1 << 20),
        "step {step}: the metadata area ({offset}+{size}) does not end where the data area \
         ({data}) starts, at 1 MiB"
    );
}

/// The first boot's script (see the module documentation).
fn first_script() -> String {
    let mut s = String::from(
        r#"
step arch uname -m
step version $LPD --version
step fresh $LPD $P --satellite-id node-a
step metadata-fresh $LPD metadata --json /dev/vda1
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
step stale-vgs-before $VGS linstor-vg
step stale-make sh -c 'u=$(vgs --noheadings -o vg_uuid linstor-vg | tr -d " -"); dmsetup create linstor--vg-ghost -u "LVM-${u}ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ" --table "0 2048 linear /dev/vda1 2048"'
step stale-seen dmsetup info -c --noheadings -o name,uuid linstor--vg-ghost
step stale-run $LPD $P --satellite-id node-c
step stale-gone dmsetup info linstor--vg-ghost
step stale-vgs $VGS linstor-vg
step stale-lvs $LVS linstor-vg
step ref-thin lvcreate -q -V 32m -T linstor-vg/linstor-pool -n pvc-ref
step ref timed reset $LPD $P --satellite-id node-k2
"#,
    );
    for (n, percent) in KILL_PERCENTS.iter().enumerate() {
        s.push_str(&format!(
            "step kill-{n}-thin lvcreate -q -V 32m -T linstor-vg/linstor-pool -n pvc-{n}\n\
             step kill-{n} killat reset {percent} $P --satellite-id {id} --log-format json\n\
             step kill-{n}-rerun $LPD $P --satellite-id {id}\n\
             step kill-{n}-state pool_state linstor-vg\n\
             step kill-{n}-lvs sh -c 'lvs --noheadings -o lv_name linstor-vg | tr -d \" \"'\n",
            id = kill_target(n),
        ));
    }
    s.push_str(
        r#"
step grow-fresh $LPD $GROW --satellite-id node-g
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
    // --version names the commit and the LVM and libblkid linked into the artifact.
    let version = &run.expect_success("version").stdout;
    for expected in [
        concat!("linstor-provision-disk ", env!("CARGO_PKG_VERSION"), "\n"),
        "\ncommit: ",
        "\nLVM: 2.03.16-2 (device-mapper library 1.02.185 (2022-05-18); linked statically)\n",
        "\nlibblkid: 2.38.1 (04-Aug-2022)",
    ] {
        assert!(
            version.contains(expected),
            "--version lacks {expected:?}:\n{version}"
        );
    }

    // Fresh: PV, tagged VG and the pool on all free space, active.
    expect_commands(run, "fresh", 3);
    assert_metadata_area_at_page_size(run, "metadata-fresh", Arch::Aarch64.page_size());
    let fresh = vg_row(run, "vgs-fresh");
    assert_eq!(text(&fresh["vg_tags"]), "linstor-satellite-id=node-a");
    // Free: the room to double the pool's metadata and its spare once (one extent each; docs/incoming/wt-sizing.md).
    assert_eq!(
        number(&fresh["vg_free_count"]),
        2,
        "pool not on all space but the doubling room"
    );
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
    check_stale_device_removed(run);

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
        eprintln!("SIGKILL at {percent}% of the reset: {landing}");
        landings.push(landing);
    }
    check_kill_landings(&landings);

    // The second disk, for growing in the next boot.
    expect_commands(run, "grow-fresh", 3);
    for s in ["grow-thin", "grow-marker", "grow-off"] {
        run.expect_success(s);
    }

    check_cut_in_command_6(run)
}

/// A device-mapper device with an LVM uuid of our VG, stacked on the partition, that
/// no VG lists (what a command killed between activating and committing leaves): the
/// tool removes it with its own DM_DEV_REMOVE ioctl, writes no metadata, and the
/// pool stays active.
fn check_stale_device_removed(run: &GuestRun) {
    let ghost = run.expect_success("stale-seen").stdout.trim().to_owned();
    assert!(
        ghost.starts_with("linstor--vg-ghost:LVM-"),
        "the stale device was not made: {ghost:?}"
    );
    let stale = expect_provisioned(run, "stale-run");
    assert!(
        stale
            .stderr
            .contains("removed a device-mapper device no volume group lists")
            && stale.stderr.contains("linstor--vg-ghost"),
        "the tool did not say it removed linstor--vg-ghost:\n{}",
        stale.stderr
    );
    assert_eq!(commands(run, "stale-run"), 0, "{}", stale.stderr);
    let gone = run.step("stale-gone");
    assert_ne!(
        gone.exit_code, 0,
        "dmsetup still finds linstor--vg-ghost after the tool removed it:\n{}",
        gone.stdout
    );
    assert_eq!(
        vg_row(run, "stale-vgs")["vg_seqno"],
        vg_row(run, "stale-vgs-before")["vg_seqno"],
        "removing the stale device wrote VG metadata"
    );
    assert_pool_active(run, "stale-lvs");
}

/// Half the SIGKILLs at least landed while the tool ran, and one inside an LVM
/// command (between commands is the easy case).
fn check_kill_landings(landings: &[KillLanding]) {
    let landed = landings
        .iter()
        .filter(|l| !matches!(l, KillLanding::Finished))
        .count();
    assert!(
        landed * 2 >= KILL_PERCENTS.len(),
        "only {landed} of {} SIGKILLs landed while the tool ran: {}",
        KILL_PERCENTS.len(),
        describe(landings)
    );
    assert!(
        landings
            .iter()
            .any(|l| matches!(l, KillLanding::Inside { .. })),
        "no SIGKILL landed inside an LVM command (an action line without LVM's success \
         report after it): {}",
        describe(landings)
    );
}

/// The power cut landed inside command 6 of the reset (the tool had logged its
/// action line, LVM had not reported it done); returns the ID of the cut run.
fn check_cut_in_command_6(run: &GuestRun) -> String {
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
    let log = json_log(after);
    run.check(
        !log.iter()
            .any(|l| l["message"] == "disk provisioning completed successfully"),
        "the cut run finished before the power cut",
    );
    // Each LVM command is logged as it starts; the sixth started, and LVM did not
    // report it done. (The plan after the reboot, checked with the second boot,
    // shows that lvcreate had not finished even where its last lines were lost.)
    let actions = log.iter().filter(|l| is_action_line(l)).count();
    assert_eq!(
        actions, 6,
        "the power cut landed elsewhere than in command 6 of the reset:\n{after}"
    );
    let pool_created =
        |l: &Value| text(&l["message"]).starts_with("Logical volume \"linstor-pool\" created");
    assert!(
        !log.iter().any(pool_created),
        "LVM reported the pool created before the power cut, so the cut came after \
         command 6:\n{after}"
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
step grow-on vgchange -ay grow-vg
step grow-lvs-before $LVS grow-vg
step grow-live-before dmsetup table grow--vg-linstor--pool-tpool
{}"#,
        grow_steps("grow-vg", "$GROW --satellite-id node-g")
    )
}

/// The grow steps on a partition that grew since its pool was made: `--dry-run`, the
/// run, LVM's reports, the live pool device's table, a steady run, and the data
/// of the thin volume `keep`.
fn grow_steps(vg: &str, args: &str) -> String {
    let mapper = vg.replace('-', "--");
    format!(
        r#"step grow-pvs-before $PVS
step grow-plan $LPD {args} --dry-run
step grow $LPD {args}
step grow-pvs $PVS
step grow-vgs $VGS {vg}
step grow-lvs $LVS {vg}
step grow-live dmsetup table {mapper}-linstor--pool-tpool
step grow-steady $LPD {args}
step grow-data sh -c 'lvchange -ay {vg}/keep && head -c 32 /dev/mapper/{mapper}-keep | tr -d "\0"'
"#
    )
}

/// The `pv_size` and `dev_size` of `vg`'s PV.
fn pv_sizes(run: &GuestRun, step: &str, vg: &str) -> (u64, u64) {
    let all = rows(run, step, "pv");
    let row = all
        .iter()
        .find(|r| text(&r["vg_name"]) == vg)
        .unwrap_or_else(|| panic!("step {step}: no PV of {vg} in {all:?}"));
    (number(&row["pv_size"]), number(&row["dev_size"]))
}

/// The length in bytes of a live device-mapper table (`dmsetup table`: `0 <sectors>
/// <target> …`): what the kernel serves, whatever LVM's metadata says.
fn live_table_bytes(run: &GuestRun, step: &str) -> u64 {
    let table = run.expect_success(step).stdout.trim().to_owned();
    let mut fields = table.split_whitespace();
    let (start, sectors, target) = (fields.next(), fields.next(), fields.next());
    assert_eq!(
        (start, target),
        (Some("0"), Some("thin-pool")),
        "step {step}: not a one-segment thin-pool table: {table:?}"
    );
    sectors
        .and_then(|n| n.parse::<u64>().ok())
        .and_then(|n| n.checked_mul(512))
        .unwrap_or_else(|| panic!("step {step}: no length in {table:?}"))
}

/// Checks [`grow_steps`]: the plan is exactly `expected` (each a prefix of a step),
/// the run carried it out with one LVM command per step; the PV fills the partition,
/// the pool took the VG's free space (over `min_growth` more than `pool_before`) and
/// the kernel's pool device has that size, active; then nothing to do, and `keep`
/// still reads `marker`.
fn check_grow(
    run: &GuestRun,
    vg: &str,
    expected: &[&str],
    pool_before: u64,
    min_growth: u64,
    marker: &str,
) {
    let (pv_before, dev) = pv_sizes(run, "grow-pvs-before", vg);
    assert!(
        dev >= pv_before + min_growth,
        "the partition did not grow: PV {pv_before}, device {dev}"
    );
    let plan = dry_run_steps(run, "grow-plan");
    assert!(
        plan.len() == expected.len()
            && plan
                .iter()
                .zip(expected)
                .all(|(step, prefix)| step.starts_with(prefix)),
        "the grow plan is {plan:?}, expected steps starting {expected:?}"
    );
    let grow = expect_provisioned(run, "grow");
    assert_eq!(
        applied_steps(run, "grow", &plan),
        plan,
        "the grow run did not carry out its plan:\n{}",
        grow.stderr
    );
    assert_eq!(
        usize::try_from(commands(run, "grow")).ok(),
        Some(expected.len()),
        "{}",
        grow.stderr
    );
    let (pv_after, dev_after) = pv_sizes(run, "grow-pvs", vg);
    assert!(
        pv_after + (8 << 20) >= dev_after && pv_after >= pv_before + min_growth,
        "the PV did not grow: {pv_before} -> {pv_after} on a {dev_after}-byte partition"
    );
    // Free: the room to double the pool's metadata and its spare once (one extent each; docs/incoming/wt-sizing.md).
    assert_eq!(number(&vg_row(run, "grow-vgs")["vg_free_count"]), 2);
    let pool_after = grow_pool_size(run, "grow-lvs");
    assert!(
        pool_after >= pool_before + min_growth,
        "pool {pool_before} -> {pool_after} bytes"
    );
    assert_pool_active(run, "grow-lvs");
    assert_eq!(
        live_table_bytes(run, "grow-live"),
        pool_after,
        "the kernel's pool device does not have the pool's new size"
    );
    expect_commands(run, "grow-steady", 0);
    assert_eq!(
        run.expect_success("grow-data").stdout,
        marker,
        "the thin volume's data changed"
    );
}

/// The plan after the power cut's reboot still creates the pool: the cut came before
/// lvcreate finished (had it finished, only the pool's activation would be left).
fn check_cut_plan(run: &GuestRun) {
    let plan = dry_run_steps(run, "cut-plan");
    eprintln!("after the power cut the rerun planned {plan:?}");
    assert!(
        plan.iter()
            .any(|step| step.starts_with("create thin pool linstor-vg/linstor-pool ")),
        "after the power cut the plan does not create the pool, so the cut came after \
         lvcreate finished: {plan:?}"
    );
}

fn check_second(run: &GuestRun, cut_id: &str) {
    // The power-cut disk: cut inside lvcreate, then converged to the cut run's ID,
    // then nothing to do.
    check_cut_plan(run);
    expect_provisioned(run, "cut-rerun");
    expect_commands(run, "cut-steady", 0);
    let vg = vg_row(run, "cut-vgs");
    assert_eq!(
        text(&vg["vg_tags"]),
        format!("linstor-satellite-id={cut_id}")
    );
    // Free: the room to double the pool's metadata and its spare once (one extent each; docs/incoming/wt-sizing.md).
    assert_eq!(number(&vg["vg_free_count"]), 2, "pool not at full size");
    assert_eq!(number(&vg["pv_count"]), 1);
    let lvs = lv_names(run, "cut-lvs");
    assert!(!lvs.contains(&"pvc-cut".to_owned()), "{lvs:?}");
    assert_pool_active(run, "cut-lvs");

    check_live_grow(run);
}

/// The grown partition under a live pool (its VG activated, as at a node's boot):
/// pvresize and lvextend, no activation; the kernel's pool device grows with the
/// metadata, and the thin volume's data stays.
fn check_live_grow(run: &GuestRun) {
    run.expect_success("grow-on");
    assert_pool_active(run, "grow-lvs-before");
    let pool_before = grow_pool_size(run, "grow-lvs-before");
    assert_eq!(
        live_table_bytes(run, "grow-live-before"),
        pool_before,
        "the pool device before the grow"
    );
    check_grow(
        run,
        "grow-vg",
        &[
            "grow physical volume /dev/vdb1 ",
            "grow thin pool grow-vg/linstor-pool by ",
        ],
        pool_before,
        400 << 20,
        "precious-arm64",
    );
}

/// The 16 KiB-page boot's script (see the module documentation).
fn pages_16k_script() -> String {
    format!(
        "{PAGES_16K_STEPS}{}",
        grow_steps("linstor-vg", "$P --satellite-id node-16b")
    )
}

/// The 16 KiB-page boot's steps before the grow. The partition takes half the disk;
/// `grow_partition` moves its end to the disk's end in the guest, and the kernel
/// rereads the table (BLKRRPART, as at a reboot: nothing holds the partition once
/// the VG is inactive). Not `partx --update`: it re-adds the partition through BLKPG,
/// which drops the kernel's PARTNAME, and without udev the label is then gone.
const PAGES_16K_STEPS: &str = r#"
grow_partition() {
  first=$(sgdisk --info=1 "$1" | sed -n 's/^First sector: \([0-9]*\).*/\1/p')
  sgdisk --delete=1 --new=1:$first:0 --change-name=1:$2 "$1" >/dev/null &&
    blockdev --rereadpt "$1"
}
step arch uname -m
step kernel uname -r
step pagesize sh -c 'grep -m1 KernelPageSize /proc/self/smaps'
step modules cat /proc/modules
step fresh $LPD $P --satellite-id node-16a
step metadata-fresh $LPD metadata --json /dev/vda1
step vgs-fresh $VGS linstor-vg
step lvs-fresh $LVS linstor-vg
step steady $LPD $P --satellite-id node-16a
step vgs-steady $VGS linstor-vg
step thin lvcreate -q -V 32m -T linstor-vg/linstor-pool -n pvc-1
step reset $LPD $P --satellite-id node-16b
step metadata-reset $LPD metadata --json /dev/vda1
step vgs-reset $VGS linstor-vg
step lvs-reset $LVS linstor-vg
step grow-thin lvcreate -q -V 32m -T linstor-vg/linstor-pool -n keep
step grow-marker sh -c 'printf precious-16k | dd of=/dev/mapper/linstor--vg-keep conv=fsync 2>/dev/null'
step grow-lvs-before $LVS linstor-vg
step grow-off vgchange -an linstor-vg
step grow-part grow_partition /dev/vda linstor-storage
"#;

/// Kernel modules the bed loads at every boot that the 16K kernel builds as modules
/// (it has virtio_pci built in).
const MODULES_16K: [&str; 4] = ["virtio_blk", "virtio_rng", "dm_mod", "dm_thin_pool"];

/// The guest runs the 16k kernel with 16 KiB pages, its modules loaded from the
/// initramfs at boot like the 4K kernel's.
fn check_16k_kernel(run: &GuestRun) {
    assert_eq!(run.expect_success("arch").stdout.trim(), "aarch64");
    let page = &run.expect_success("pagesize").stdout;
    let kib = (Arch::Aarch64Pages16K.page_size() / 1024).to_string();
    assert_eq!(
        page.split_whitespace().collect::<Vec<_>>(),
        ["KernelPageSize:", kib.as_str(), "kB"],
        "the guest's pages are not 16 KiB: {page:?}"
    );
    let kernel = run.expect_success("kernel").stdout.trim().to_owned();
    assert!(
        kernel.ends_with("-arm64-16k"),
        "the guest runs kernel {kernel}, not Debian's 16k flavour"
    );
    // Loaded like the 4K kernel's: from the initramfs, by modprobe, at boot.
    let loaded: Vec<String> = run
        .expect_success("modules")
        .stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect();
    for module in MODULES_16K {
        assert!(
            loaded.iter().any(|m| m == module),
            "module {module} is not loaded on the 16K kernel: {loaded:?}"
        );
    }
    run.check(
        !run.console.contains("vmtest: modprobe"),
        "a module failed to load on the 16K kernel",
    );
}

/// LVM in the tool saw 16 KiB pages: it says so when it sizes the metadata area.
fn check_lvm_saw_16k_pages(run: &GuestRun) {
    let fresh_log = &run.step("fresh").stderr;
    assert!(
        fresh_log.contains("for non-standard page size 16384"),
        "LVM in the tool did not see 16 KiB pages (it says so when it sizes the \
         metadata area):\n{fresh_log}"
    );
}

fn check_16k(run: &GuestRun) {
    check_16k_kernel(run);

    // Fresh: LVM (in the tool) put the metadata area at the 16 KiB page size, and
    // the tool's own reader finds it there.
    expect_commands(run, "fresh", 3);
    check_lvm_saw_16k_pages(run);
    assert_metadata_area_at_page_size(run, "metadata-fresh", Arch::Aarch64Pages16K.page_size());
    let fresh = vg_row(run, "vgs-fresh");
    assert_eq!(text(&fresh["vg_tags"]), "linstor-satellite-id=node-16a");
    // Free: the room to double the pool's metadata and its spare once (one extent each; docs/incoming/wt-sizing.md).
    assert_eq!(
        number(&fresh["vg_free_count"]),
        2,
        "pool not on all space but the doubling room"
    );
    assert_pool_active(run, "lvs-fresh");

    // Steady: read natively at that offset, nothing written.
    expect_commands(run, "steady", 0);
    assert_eq!(vg_row(run, "vgs-steady")["vg_seqno"], fresh["vg_seqno"]);

    // Reset: the old VG's LVs gone, a new VG with the new tag, its metadata area
    // again at the page size.
    run.expect_success("thin");
    let reset = expect_provisioned(run, "reset");
    assert_eq!(commands(run, "reset"), 6, "{}", reset.stderr);
    assert_metadata_area_at_page_size(run, "metadata-reset", Arch::Aarch64Pages16K.page_size());
    let after = vg_row(run, "vgs-reset");
    assert_eq!(text(&after["vg_tags"]), "linstor-satellite-id=node-16b");
    assert_ne!(after["vg_uuid"], fresh["vg_uuid"], "the VG was not remade");
    let lvs = lv_names(run, "lvs-reset");
    assert!(!lvs.contains(&"pvc-1".to_owned()), "{lvs:?}");
    assert_pool_active(run, "lvs-reset");

    // Grow, with the pool inactive: pvresize, lvextend, activation.
    for s in ["grow-thin", "grow-marker", "grow-off", "grow-part"] {
        run.expect_success(s);
    }
    let pool_before = grow_pool_size(run, "grow-lvs-before");
    check_grow(
        run,
        "linstor-vg",
        &[
            "grow physical volume /dev/vda1 ",
            "grow thin pool linstor-vg/linstor-pool by ",
            "activate thin pool linstor-vg/linstor-pool ",
        ],
        pool_before,
        300 << 20,
        "precious-16k",
    );
}

/// The artifact, checked, in a bed with `disks`.
fn bed_with_artifact(disks: Vec<DiskSpec>) -> TestBed {
    let artifact = artifact();
    assert_static_aarch64(&artifact);
    match TestBed::new(disks) {
        // As $LPD, whatever the artifact's file is called.
        Ok(bed) => bed.with_file(&artifact, "/usr/local/bin/linstor-provision-disk"),
        Err(e) => panic!("could not set up the VM test bed: {e}"),
    }
}

#[test]
fn arm64_artifact_fresh_steady_reset_kills_power_cut_and_grow() {
    let _one = ONE_GUEST_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let started = Instant::now();
    let bed = bed_with_artifact(vec![
        DiskSpec::new("storage", 1024).partition("linstor-storage", None),
        DiskSpec::new("grow", 512).partition("linstor-grow", None),
    ]);
    let first = arm64_boot(&bed, true, &first_script());
    let cut_id = check_first(&first);
    grow_disk(&bed.disk_path("grow"), "1G", "linstor-grow");
    let second = arm64_boot(&bed, false, &second_script(&cut_id));
    check_second(&second, &cut_id);
    eprintln!(
        "arm64 scenarios: boots of {:?} and {:?}, {:?} in all",
        first.elapsed,
        second.elapsed,
        started.elapsed()
    );
}

#[test]
fn arm64_artifact_on_16k_pages_fresh_steady_reset_and_grow() {
    let _one = ONE_GUEST_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let started = Instant::now();
    let bed = bed_with_artifact(vec![
        DiskSpec::new("pages16k", 768).partition("linstor-storage", Some(384))
    ]);
    let run = arm64_boot_on(Arch::Aarch64Pages16K, &bed, false, &pages_16k_script());
    check_16k(&run);
    eprintln!(
        "16K-page scenarios: a boot of {:?}, {:?} in all",
        run.elapsed,
        started.elapsed()
    );
}

// Checks of the checks, without a VM: each new verdict above can go the other way.

fn log_line(message: &str, action: bool) -> String {
    let mut line = serde_json::json!({
        "timestamp": "2026-01-01T00:00:00Z",
        "level": "INFO",
        "message": message,
    });
    if action {
        line["action"] = Value::from(message);
    }
    line.to_string()
}

#[test]
fn a_sigkill_is_inside_a_command_until_lvm_reports_it_done() {
    let removing = log_line("removing logical volumes", true);
    let removed = log_line("Logical volume \"pvc-0\" successfully removed.", false);
    let creating = log_line(
        "create thin pool linstor-vg/linstor-pool on all free space",
        false,
    );
    let warning = log_line("WARNING: Consider disabling zeroing (-Zn)", false);
    let created = log_line("Logical volume \"linstor-pool\" created.", false);
    let killed = |lines: &[&str]| format!("delay=1.000s of 9000ms\nrc=137\n{}\n", lines.join("\n"));
    let landing = |lines: &[&str]| landing_in("test", &killed(lines));
    assert!(matches!(
        landing(&[&removing]),
        KillLanding::Inside { command: 1, .. }
    ));
    assert!(matches!(
        landing(&[&removing, &removed]),
        KillLanding::Between { after: 1, .. }
    ));
    assert!(matches!(
        landing(&[&removing, &removed, &creating, &warning]),
        KillLanding::Inside { command: 2, .. }
    ));
    assert!(matches!(
        landing(&[&removing, &removed, &creating, &warning, &created]),
        KillLanding::Between { after: 2, .. }
    ));
    assert!(matches!(
        landing(&[]),
        KillLanding::Between { after: 0, .. }
    ));
    assert!(matches!(
        landing_in("test", "delay=9.000s of 9000ms\nrc=0\n"),
        KillLanding::Finished
    ));
}

#[test]
#[should_panic(expected = "no SIGKILL landed inside an LVM command")]
fn sigkills_that_all_land_between_commands_fail() {
    let between = |after| KillLanding::Between {
        after,
        last: "Volume group \"linstor-vg\" successfully removed".into(),
    };
    check_kill_landings(&[
        between(1),
        between(2),
        between(3),
        between(4),
        between(5),
        KillLanding::Finished,
    ]);
}

/// A first boot's console after a power cut in a reset's command 6, LVM having
/// logged `extra` after the command's action line.
fn cut_console(extra: &[String]) -> GuestRun {
    let mut lines: Vec<String> = [
        "removing logical volumes",
        "removing volume group",
        "removing physical volume",
        "create physical volume on /dev/vda1",
        "create volume group linstor-vg on /dev/vda1 tagged linstor-satellite-id=node-p1",
        "create thin pool linstor-vg/linstor-pool on all free space",
    ]
    .iter()
    .map(|m| log_line(m, m.starts_with("removing")))
    .collect();
    lines.extend(extra.iter().cloned());
    GuestRun {
        steps: Vec::new(),
        console: format!(
            "{CUT_MARKER}node-p1 (40 ms into command 6)\n{}\n{CUT_HOOK}: power cut now\n",
            lines.join("\n")
        ),
        script_exit_code: -1,
        power_cut: true,
        guest_uptime_at_script: None,
        elapsed: Duration::ZERO,
    }
}

#[test]
fn a_power_cut_inside_lvcreate_passes_the_check() {
    let warning = log_line("WARNING: Consider disabling zeroing (-Zn)", false);
    assert_eq!(check_cut_in_command_6(&cut_console(&[warning])), "node-p1");
}

#[test]
#[should_panic(expected = "LVM reported the pool created before the power cut")]
fn a_power_cut_after_lvcreate_reported_the_pool_fails_the_check() {
    let created = log_line("Logical volume \"linstor-pool\" created.", false);
    check_cut_in_command_6(&cut_console(&[created]));
}
