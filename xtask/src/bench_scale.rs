//! `cargo xtask bench --scale`: what a steady start costs as the node fills up, in
//! one VM boot (qemu TCG, udevd running), for the static artifact against the
//! seed's command sequence (the same script as `cargo xtask bench`).
//!
//! Two 32 GiB disks (sparse), one per side: every thin device takes at least one
//! 4 KiB block of the pool's metadata, and LVM's estimate for a 4 GiB pool (4 MiB)
//! runs out near 900 (`create_thin` then fails with EOPNOTSUPP). Points, in this
//! order in the same boot:
//!
//! - `0`: the fresh pool, nothing else on the node;
//! - `d`: plus 1,000 other block devices (loop devices: see vmtest's `scale`
//!   module for why they stand for DRBD's);
//! - `100`, `1000`: plus that many active thin volumes in each side's pool (added
//!   by `add_thins`: one metadata restore, not 1,000 `lvcreate`s).
//!
//! At each point, once `udevadm settle` returns (timed): 5 loops of 10 steady starts of the artifact and 5 of 10
//! `--version` starts (mean per start, median of the loops), 2 runs of the seed's
//! steady sequence, and one steady start each under `strace -f -c` (system calls)
//! and `strace -e trace=open,openat,ioctl,…` (sysfs opens, device-mapper ioctls),
//! the VG's seqno around them. Then a reset (new satellite ID) of each side's
//! 1,000-thin pool, timed once, and the reader's parse of a generated 10,000-LV
//! text (`examples/parse_scale.rs`, 11 parses, median). Writes
//! target/bench/scale.md and prints it; the table and chart go into BENCHMARKS.md
//! by hand.
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;
use vmtest::{BootOptions, DiskSpec, TestBed};

use crate::bench::{host_tool, median, phase_medians, syscall_total, SEED_SCRIPT};

/// (tag, thin volumes, other devices) in the order measured.
const POINTS: [(&str, u32, u32); 4] = [
    ("0", 0, 0),
    ("d", 0, 1000),
    ("100", 100, 1000),
    ("1000", 1000, 1000),
];
const LOOPS: usize = 5;
const STARTS_PER_LOOP: usize = 10;
const SEED_RUNS: usize = 2;

const GUEST_LIB: &str = r#"
mkdir -p /tmp/seed-mnt
st() { /usr/local/bin/lpd-static --partition-label static --volume-group static-vg --pool pool --on-failure exit --satellite-id "$1"; }
seed() { sh /tmp/seed.sh seed seed-vg pool "$1"; }
record() { echo "$*" >>/tmp/results; }
# timed LABEL CMD...: one run; appends `LABEL rc µs`.
timed() {
  _l=$1; shift
  _t0=$(gdate +%s%N); "$@" >/tmp/log-$_l 2>&1; _rc=$?; _t1=$(gdate +%s%N)
  record "$_l $_rc $(( (_t1 - _t0) / 1000 ))"
  [ $_rc = 0 ] || { echo "bench: $_l failed:"; cat /tmp/log-$_l; }
}
# loopt LABEL K CMD...: K back-to-back runs; appends `LABEL rc mean-µs`.
loopt() {
  _l=$1 _k=$2; shift 2; _i=0 _rc=0
  _t0=$(gdate +%s%N)
  while [ $_i -lt $_k ]; do "$@" >/tmp/log-$_l 2>&1 || _rc=$?; _i=$((_i + 1)); done
  _t1=$(gdate +%s%N)
  record "$_l $_rc $(( (_t1 - _t0) / 1000 / _k ))"
}
seqno() { set -- $(vgs --noheadings -o vg_seqno "$1" 2>/dev/null); echo "${1:-0}"; }
point() {
  _p=$1 _r=0
  _s0=$(seqno static-vg)
  while [ $_r -lt LOOPS ]; do
    loopt steady-$_p STARTS st node-01
    loopt bare-$_p STARTS /usr/local/bin/lpd-static --version
    _r=$((_r + 1))
  done
  _r=0
  while [ $_r -lt SEED_RUNS ]; do timed seed-$_p seed node-01; _r=$((_r + 1)); done
  strace -f -c -o /tmp/sc-$_p /usr/local/bin/lpd-static --partition-label static --volume-group static-vg --pool pool --on-failure exit --satellite-id node-01 >/dev/null 2>&1
  strace -f -qq -o /tmp/tr-$_p -e trace=open,openat,ioctl,readlink,readlinkat,getdents64 /usr/local/bin/lpd-static --partition-label static --volume-group static-vg --pool pool --on-failure exit --satellite-id node-01 >/dev/null 2>&1
  _i=0
  while [ $_i -lt 5 ]; do LOG_LEVEL=debug st node-01 2>&1 | grep ' timings ' >>/tmp/phases-$_p; _i=$((_i + 1)); done
  record "seqno-$_p 0 $(( $(seqno static-vg) - _s0 ))"
  # The thin volumes really active on each side (a pool whose metadata is full
  # takes no more: the table shows what was measured).
  for _vg in static-vg seed-vg; do
    _c=0
    for _l in $(lvs --noheadings -o lv_name -S 'lv_active=active' "$_vg"); do case $_l in pvc-*) _c=$((_c + 1)) ;; esac; done
    record "active-$_vg-$_p 0 $_c"
  done
}
"#;

fn guest_script() -> String {
    let mut s = String::new();
    s.push_str("cat >/tmp/seed.sh <<'SEED_EOF'\n");
    s.push_str(SEED_SCRIPT);
    s.push_str("SEED_EOF\n");
    s.push_str(vmtest::scale::SCALE_SH);
    s.push_str(
        &GUEST_LIB
            .replace("LOOPS", &LOOPS.to_string())
            .replace("STARTS", &STARTS_PER_LOOP.to_string())
            .replace("SEED_RUNS", &SEED_RUNS.to_string()),
    );
    s.push_str("step prov-static st node-01\nstep prov-seed seed node-01\n");
    let (mut thins, mut devices) = (0, 0);
    for (tag, want_thins, want_devices) in POINTS {
        if want_devices > devices {
            let _ = writeln!(s, "step devices-{tag} add_other_devices {want_devices}");
            devices = want_devices;
        }
        if want_thins > thins {
            let more = want_thins - thins;
            let _ = writeln!(
                s,
                "step thins-static-{tag} add_thins static-vg pool {more}\n\
                 step thins-seed-{tag} add_thins seed-vg pool {more}"
            );
            thins = want_thins;
        }
        // udevd works through the new devices for seconds after they appear (2,000
        // device-mapper devices at the last point): measured before it is done, every
        // start, `--version` too, pays for its work.
        let _ = writeln!(
            s,
            "timed settle-{tag} udevadm settle --timeout=900\npoint {tag}"
        );
    }
    s.push_str(
        "step parse /usr/local/bin/parse_scale 10000 11\n\
         timed reset-static st node-02\n\
         timed reset-seed seed node-02\n\
         step results cat /tmp/results\n",
    );
    for (tag, ..) in POINTS {
        let _ = writeln!(
            s,
            "step sc-{tag} cat /tmp/sc-{tag}\nstep tr-{tag} cat /tmp/tr-{tag}\nstep phases-{tag} cat /tmp/phases-{tag}"
        );
    }
    s.push_str("step uname uname -r\nstep cpu sh -c 'grep -m1 \"model name\" /proc/cpuinfo; nproc; grep MemTotal /proc/meminfo'\n");
    s
}

fn build_parse_example() -> Result<PathBuf, String> {
    crate::run(crate::cargo().args(["build", "--release", "--example", "parse_scale"]))?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    Ok(target.join("release/examples/parse_scale"))
}

/// Counts in an `strace -e trace=…` log: sysfs opens, device-mapper ioctls.
fn trace_counts(trace: &str) -> (usize, usize) {
    let lines = || trace.lines().filter(|l| !l.contains("resumed>"));
    (
        lines()
            .filter(|l| l.contains("open") && l.contains("\"/sys/"))
            .count(),
        lines()
            .filter(|l| l.contains("ioctl(") && l.contains("DM_"))
            .count(),
    )
}

pub fn run() -> Result<(), String> {
    let artifact = std::env::var_os("LINSTOR_PROVISION_DISK_DIST")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/dist/linstor-provision-disk"));
    if !artifact.is_file() {
        return Err(format!(
            "{} is missing: run `cargo xtask dist` first (or set LINSTOR_PROVISION_DISK_DIST)",
            artifact.display()
        ));
    }
    let parse = build_parse_example()?;
    let strace = host_tool("strace", "strace")?;
    let gdate = host_tool("date", "coreutils")?;
    let bed = TestBed::new(vec![
        DiskSpec::new("static", 32768).partition("static", None),
        DiskSpec::new("seed", 32768).partition("seed", None),
    ])
    .map_err(|e| e.to_string())?
    .with_file(&artifact, "/usr/local/bin/lpd-static")
    .with_file(&parse, "/usr/local/bin/parse_scale")
    .with_file(&strace, "/usr/local/bin/strace")
    .with_file(&gdate, "/usr/local/bin/gdate");
    let options = BootOptions {
        udevd: true,
        memory_mib: 2048,
        timeout: Duration::from_secs(5400),
        ..BootOptions::default()
    };
    let load = String::from_utf8_lossy(
        &std::process::Command::new("uptime")
            .output()
            .map(|o| o.stdout)
            .unwrap_or_default(),
    )
    .trim()
    .to_owned();
    eprintln!(
        "xtask: booting the scale benchmark VM ({}; about 30-60 minutes under TCG)…",
        artifact.display()
    );
    let run = bed
        .boot(&options, &guest_script())
        .map_err(|e| e.to_string())?;
    for step in ["prov-static", "prov-seed", "parse"] {
        run.expect_success(step);
    }
    // A pool whose metadata fills up takes no more thin volumes: say so and go on;
    // the table shows the number active at each point.
    for (tag, ..) in POINTS.iter().skip(1) {
        for step in [format!("thins-static-{tag}"), format!("thins-seed-{tag}")] {
            if let Some(s) = run
                .steps
                .iter()
                .find(|s| s.name == step && s.exit_code != 0)
            {
                eprintln!(
                    "xtask: {step} failed (measured with the volumes that fit):\n{}",
                    s.stderr
                );
            }
        }
    }
    let results = &run.expect_success("results").stdout;
    let mut samples: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    let mut failures = Vec::new();
    for line in results.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [label, rc, value] = f[..] else {
            return Err(format!("bad result line {line:?}"));
        };
        if rc != "0" {
            failures.push(line.to_owned());
        }
        samples
            .entry(label.to_owned())
            .or_default()
            .push(value.parse().unwrap_or(f64::NAN));
    }
    if !failures.is_empty() {
        return Err(format!(
            "benchmark runs failed:\n{}\n--- console tail ---\n{}",
            failures.join("\n"),
            run.console_tail(80)
        ));
    }
    let ms = |label: &str| median(samples.get(label).map(Vec::as_slice).unwrap_or(&[])) / 1000.0;
    let steady0 = ms("steady-0");
    let mut table = String::new();
    let _ = writeln!(
        table,
        "| thin volumes (ours / seed's, active) | other devices | steady start ms | × the empty node | seed's sequence ms | seed / ours | system calls | sysfs opens | DM ioctls | VG metadata writes |"
    );
    let _ = writeln!(table, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut chart_rows = Vec::new();
    for (tag, thins, devices) in POINTS {
        let steady = ms(&format!("steady-{tag}"));
        let seed = ms(&format!("seed-{tag}"));
        let calls = syscall_total(&run.expect_success(&format!("sc-{tag}")).stdout);
        let (sysfs, dm) = trace_counts(&run.expect_success(&format!("tr-{tag}")).stdout);
        let writes = samples
            .get(&format!("seqno-{tag}"))
            .and_then(|v| v.first())
            .copied()
            .unwrap_or(f64::NAN);
        let active = |vg: &str| {
            samples
                .get(&format!("active-{vg}-{tag}"))
                .and_then(|v| v.first())
                .map_or("?".to_owned(), |n| format!("{n}"))
        };
        let _ = writeln!(
            table,
            "| {thins} ({} / {}) | {devices} | {steady:.1} | {:.2}× | {seed:.0} | {:.0}× | {} | {sysfs} | {dm} | {writes} |",
            active("static-vg"),
            active("seed-vg"),
            steady / steady0,
            seed / steady,
            calls.map_or("–".to_owned(), |c| c.to_string()),
        );
        chart_rows.push((format!("{thins} thin + {devices} dev"), steady, seed));
    }
    let bare = ms("bare-0");
    let reset_ours = ms("reset-static");
    let reset_seed = ms("reset-seed");
    let parse_line = run.expect_success("parse").stdout.trim().to_owned();
    let parse_fields: Vec<&str> = parse_line.split_whitespace().collect();
    let parse_ms = parse_fields
        .get(2)
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(f64::NAN, |us| us / 1000.0);
    let parse_bytes = parse_fields.get(1).copied().unwrap_or("?");
    let scan_ms = parse_fields
        .get(4)
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(f64::NAN, |us| us / 1000.0);
    let steady_full = ms("steady-1000");
    let seed_full = ms("seed-1000");
    let verdict = |met: bool| if met { "yes" } else { "**no**" };
    let mut targets = String::new();
    let _ = writeln!(targets, "| target | result | met? |\n|---|---|---|");
    let _ = writeln!(
        targets,
        "| steady, 1,000 thin + 1,000 devices ≤ 1.5× the empty node | {:.2}× ({steady_full:.1} / {steady0:.1} ms) | {} |",
        steady_full / steady0,
        verdict(steady_full <= 1.5 * steady0)
    );
    let _ = writeln!(
        targets,
        "| steady at 1,000 ≥ 50× faster than the seed's sequence | {:.0}× ({seed_full:.0} / {steady_full:.1} ms) | {} |",
        seed_full / steady_full,
        verdict(seed_full >= 50.0 * steady_full)
    );
    let _ = writeln!(
        targets,
        "| reset of the 1,000-thin pool ≥ 10× faster than the seed's | {:.1}× ({reset_seed:.0} / {reset_ours:.0} ms) | {} |",
        reset_seed / reset_ours,
        verdict(reset_seed >= 10.0 * reset_ours)
    );
    let _ = writeln!(
        targets,
        "| the reader parses a 10,000-LV text ({parse_bytes} bytes) in ≤ 10 ms | {parse_ms:.1} ms (one pass over its bytes that only counts newlines: {scan_ms:.1} ms) | {} |",
        verdict(parse_ms <= 10.0)
    );
    let _ = writeln!(
        targets,
        "| empty-pool steady ≤ 2× `--version` | {:.2}× ({steady0:.1} / {bare:.1} ms) | {} |",
        steady0 / bare,
        verdict(steady0 <= 2.0 * bare)
    );
    // ASCII chart: steady-start ms per point, the seed's on a second bar, log-free
    // (one '#' per ms of ours, capped; the seed's in seconds).
    let mut chart = String::new();
    for (label, steady, seed) in &chart_rows {
        let bar = "#".repeat((steady.round() as usize).min(80));
        let _ = writeln!(chart, "{label:>22} | ours {bar} {steady:.1} ms");
        let seed_bar = "=".repeat(((seed / 100.0).round() as usize).min(80));
        let _ = writeln!(
            chart,
            "{:>22} | seed {seed_bar} {:.1} s (one '=' per 100 ms)",
            "",
            seed / 1000.0
        );
    }
    let mut breakdown = String::new();
    for (tag, ..) in POINTS {
        let phases = phase_medians(&run.expect_success(&format!("phases-{tag}")).stdout);
        let _ = writeln!(
            breakdown,
            "{tag:>5}: {}",
            phases
                .iter()
                .map(|(name, us)| format!("{name} {:.2}", us / 1000.0))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let raw: String = samples
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}: {:?}\n",
                v.iter()
                    .map(|x| (x / 100.0).round() / 10.0)
                    .collect::<Vec<_>>()
            )
        })
        .collect();
    let env = format!(
        "guest kernel {}; {}; qemu TCG, 1 vCPU, {} MiB, udevd running; host load before the boot: {load}",
        run.step("uname").stdout.trim(),
        run.step("cpu").stdout.trim().replace('\n', ", "),
        options.memory_mib,
    );
    let report = format!(
        "{table}\n{targets}\n```\n{chart}```\n\nSteady-start phases (ms, median of 5 `LOG_LEVEL=debug` starts):\n```\n{breakdown}```\n\nEnvironment: {env}\n\nRaw (ms; loops are the mean per start):\n```\n{raw}```\n"
    );
    let out_dir = PathBuf::from("target/bench");
    std::fs::create_dir_all(&out_dir).map_err(|e| e.to_string())?;
    std::fs::write(out_dir.join("scale.md"), &report).map_err(|e| e.to_string())?;
    println!("{report}");
    eprintln!("xtask: wrote target/bench/scale.md");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysfs_opens_and_dm_ioctls_are_counted_from_the_trace() {
        let trace = "5 openat(AT_FDCWD, \"/sys/class/block/vda1/uevent\", O_RDONLY) = 3\n\
                     5 openat(AT_FDCWD, \"/etc/lvm/lvm.conf\", O_RDONLY) = 3\n\
                     5 ioctl(3, DM_LIST_DEVICES, {version=4.0.0}) = 0\n\
                     5 ioctl(4, BLKGETSIZE64, [1]) = 0\n\
                     5 <... openat resumed>\"/sys/x\") = 3\n";
        assert_eq!(trace_counts(trace), (1, 1));
    }

    #[test]
    fn the_guest_script_adds_devices_then_thin_volumes_once_each() {
        let s = guest_script();
        assert_eq!(s.matches("add_other_devices 1000").count(), 1);
        assert!(s.contains("add_thins static-vg pool 100\n"));
        assert!(s.contains("add_thins static-vg pool 900\n"));
        assert!(!s.contains("LOOPS") && !s.contains("SEED_RUNS"));
    }
}
