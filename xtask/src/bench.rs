//! `cargo xtask bench`: this tool against the seed Go tool's command sequence, in
//! one VM boot (qemu TCG, Debian's kernel), so machine load affects both alike.
//!
//! Two disks, one per side, each with one GPT partition. Side "ours" runs the
//! release binary, "static" the dist artifact; side "seed" runs a shell script that
//! issues the lvm2 CLI commands the seed tool issued (see [`SEED_SCRIPT`]). Cases:
//!
//! - first provision (the partition wiped before each run, outside the timing) and
//!   reset (a new satellite ID every run): [`RUNS`] runs per side, each timed alone;
//! - steady state (same satellite ID) and bare start (`--version`): [`RUNS`] loops
//!   of [`LOOP`] back-to-back starts per side, timed as a whole, so the clock's own
//!   processes are paid once per loop.
//!
//! Per run, outside the timed region: the VG's `vg_seqno` (metadata writes). Per
//! case and side, one extra run under `strace -f -e trace=execve` (processes
//! spawned), one under GNU time (peak RSS), one under `strace -f -c` (system calls)
//! and one under `strace -f -y` (bytes read from /dev nodes); five steady starts
//! at `LOG_LEVEL=debug` give the per-phase breakdown. Writes the tables, the targets
//! and the breakdown to stdout and target/bench/results.md, and
//! docs/bench-ratios.png (gnuplot).
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use vmtest::{BootOptions, DiskSpec, TestBed};

const RUNS: usize = 5;
/// Starts per timed loop (steady and bare): the loop's clock reads are paid once.
const LOOP: usize = 20;
/// The seed's steady sequence takes ~1 s; fewer starts per loop.
const SEED_LOOP: usize = 3;
const CASES: [&str; 3] = ["first", "steady", "reset"];
/// ours: the release build (dynamically linked: liblvm2cmd, libudev and their
/// ~20 libraries); static: the shipping artifact of `cargo xtask dist` (musl,
/// LVM linked in), benchmarked when it has been built; seed: the script.
const SIDES: [&str; 3] = ["ours", "static", "seed"];

/// The seed tool's sequence with the lvm2 CLI. Decisions are made with shell
/// pattern matching on the JSON reports and builtins (`read`, `printf`), so the
/// only processes are the commands the seed tool itself ran; the mount point
/// exists beforehand (the Go tool made its temp dir in-process).
pub(crate) const SEED_SCRIPT: &str = r#"#!/bin/sh
# seed.sh LABEL VG POOL ID — the seed tool's command sequence
set -e
pv=/dev/disk/by-partlabel/$1 vg=$2 pool=$3 id=$4 mnt=/tmp/seed-mnt
meta=/dev/$vg/metadata
pvs=$(pvs --reportformat=json -o pv_name,vg_name)
vgs=$(vgs --reportformat=json -o vg_name)
lvs=$(lvs --reportformat=json -o lv_name "$vg" 2>/dev/null) || lvs=
case "$lvs" in *'"lv_name":"metadata"'*)
  mount "$meta" "$mnt"
  # (no trailing newline: `read` returns 1 at EOF but has read the ID)
  read -r old <"$mnt/satellite-id" || :
  umount "$mnt"
  if [ "$old" != "$id" ]; then
    echo "satellite id mismatch, resetting lvm configuration existing=$old expected=$id" >&2
    echo "removing logical volumes ..." >&2
    lvremove -f -y "$vg"
    echo "removing volume group ..." >&2
    vgremove -f -y "$vg"
    echo "removing physical volume ..." >&2
    pvremove -f -y "$pv"
    pvs= vgs= lvs=
  fi
esac
case "$pvs" in *"\"vg_name\":\"$vg\""*) ;; *)
  pvcreate -y "$pv" ;;
esac
pvresize "$pv"
case "$vgs" in *"\"vg_name\":\"$vg\""*) ;; *)
  vgcreate "$vg" "$pv" ;;
esac
case "$lvs" in *"\"lv_name\":\"$pool\""*) ;; *)
  lvcreate -y -l 100%FREE -T "$vg/$pool"
  lvcreate -y -V 100M -T "$vg/$pool" -n metadata
  mkfs.ext4 -q "$meta"
  mount "$meta" "$mnt"
  printf %s "$id" >"$mnt/satellite-id"
  umount "$mnt"
esac
lvextend -l +100%FREE "$vg/$pool" || true
echo "disk provisioning completed successfully" >&2
"#;

/// Guest shell: one measured run. `measure SIDE CASE RUN ID MODE` (MODE: time,
/// trace, rss) appends `side case run mode rc µs seqno-before seqno-after` to
/// /tmp/results; each run's output goes to /tmp/log-*.
const GUEST_LIB: &str = r#"
mkdir -p /tmp/seed-mnt
ours() { $PFX /usr/local/bin/linstor-provision-disk --partition-label ours --volume-group ours-vg --pool pool --on-failure exit --satellite-id "$1"; }
static() { $PFX /usr/local/bin/lpd-static --partition-label static --volume-group static-vg --pool pool --on-failure exit --satellite-id "$1"; }
seed() { $PFX sh /tmp/seed.sh seed seed-vg pool "$1"; }
vgof() { echo "$1-vg"; }
wipe() {
  vg=$(vgof "$1")
  lvremove -q -f -y "$vg" >/dev/null 2>&1; vgremove -q -f -y "$vg" >/dev/null 2>&1
  pvremove -q -f -y "/dev/disk/by-partlabel/$1" >/dev/null 2>&1
  wipefs -q -a "/dev/disk/by-partlabel/$1" >/dev/null 2>&1
  true
}
seqno() { s=$(vgs --noheadings -o vg_seqno "$(vgof "$1")" 2>/dev/null) || s=0; echo ${s:-0}; }
measure() {
  side=$1 case=$2 run=$3 id=$4 mode=$5 log=/tmp/log-$1-$2-$3-$5
  [ "$case" = first ] && wipe "$side"
  before=$(seqno "$side")
  sync; echo 3 >/proc/sys/vm/drop_caches
  case $mode in
    time) PFX= ;;
    trace) PFX="strace -f -qq -e trace=execve -e signal=none -o /tmp/trace-$side-$case" ;;
    rss) PFX="gtime -f %M -o /tmp/rss-$side-$case" ;;
    syscalls) PFX="strace -f -c -o /tmp/syscalls-$side-$case" ;;
    reads) PFX="$READS -o /tmp/reads-$side-$case" ;;
  esac
  t0=$(gdate +%s%N); "$side" "$id" >"$log" 2>&1; rc=$?; t1=$(gdate +%s%N)
  after=$(seqno "$side")
  echo "$side $case $run $mode $rc $(( (t1 - t0) / 1000 )) $before $after" >>/tmp/results
  [ $rc = 0 ] || { echo "bench: $side $case $run $mode failed:"; cat "$log"; }
}
# Process start-up alone: `--version` (loads the binary, parses flags).
version() { $PFX "$1" --version; }
# Back-to-back starts, timed as one loop so the clock's own processes are paid once:
# `loop SIDE CASE RUN N ID` appends the mean µs per start. CASE steady runs the side
# with ID (nothing to do, caches warm); CASE bare runs `--version` of the side's binary.
loop() {
  side=$1 case=$2 run=$3 n=$4 id=$5 log=/tmp/log-$1-$2-$3-loop i=0 rc=0 PFX=
  before=$(seqno "$side")
  t0=$(gdate +%s%N)
  while [ $i -lt $n ]; do
    if [ "$case" = bare ]; then version "$(binof "$side")" >"$log" 2>&1 || rc=$?
    else "$side" "$id" >"$log" 2>&1 || rc=$?; fi
    i=$((i + 1))
  done
  t1=$(gdate +%s%N)
  after=$(seqno "$side")
  echo "$side $case $run loop $rc $(( (t1 - t0) / 1000 / n )) $before $after" >>/tmp/results
  [ $rc = 0 ] || { echo "bench: $side $case $run loop failed:"; cat "$log"; }
}
binof() { case $1 in ours) echo /usr/local/bin/linstor-provision-disk ;; static) echo /usr/local/bin/lpd-static ;; esac; }
# `--version` under strace: system calls and bytes read from /dev nodes.
bare_counts() {
  PFX="strace -f -c -o /tmp/syscalls-$1-bare" version "$(binof "$1")" >/dev/null 2>&1
  PFX="$READS -o /tmp/reads-$1-bare" version "$(binof "$1")" >/dev/null 2>&1
}
READS="strace -f -qq -y -e trace=read,pread64,readv,preadv,preadv2 -e signal=none"
# Where a steady start spends its time (the tool's own debug timings line).
phases() {
  i=0 PFX=
  while [ $i -lt 5 ]; do
    LOG_LEVEL=debug "$1" node-01 2>&1 | grep ' timings ' >>/tmp/phases-$1
    i=$((i + 1))
  done
}
"#;

fn build_release() -> Result<PathBuf, String> {
    crate::packages::run(crate::packages::cargo().args([
        "build",
        "--release",
        "--bin",
        "linstor-provision-disk",
    ]))?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    Ok(target.join("release").join("linstor-provision-disk"))
}

pub(crate) fn host_tool(name: &str, package: &str) -> Result<PathBuf, String> {
    for dir in ["/usr/bin", "/bin", "/usr/sbin"] {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(format!(
        "{name} is missing; install it with: apt-get install {package}"
    ))
}

/// The guest script: all runs, then the results and the traces as steps.
fn guest_script(sides: &[&str]) -> String {
    let mut s = String::new();
    s.push_str("cat >/tmp/seed.sh <<'SEED_EOF'\n");
    s.push_str(SEED_SCRIPT);
    s.push_str("SEED_EOF\n");
    s.push_str(GUEST_LIB);
    for case in CASES {
        for run in 1..=RUNS + 4 {
            let mode = match run {
                r if r <= RUNS => "time",
                r if r == RUNS + 1 => "trace",
                r if r == RUNS + 2 => "rss",
                r if r == RUNS + 3 => "syscalls",
                _ => "reads",
            };
            for &side in sides {
                let id = if case == "reset" {
                    format!("node-r{run}")
                } else {
                    "node-01".to_owned()
                };
                let _ = writeln!(s, "measure {side} {case} {run} {id} {mode}");
            }
        }
    }
    // Steady starts and bare starts back to back, alternating, in the same boot.
    for run in 1..=RUNS {
        for &side in sides {
            let starts = if side == "seed" { SEED_LOOP } else { LOOP };
            let _ = writeln!(s, "loop {side} steady {run} {starts} node-01");
            if side != "seed" {
                let _ = writeln!(s, "loop {side} bare {run} {LOOP} -");
            }
        }
    }
    for &side in sides.iter().filter(|s| **s != "seed") {
        let _ = writeln!(s, "bare_counts {side}\nphases {side}");
    }
    s.push_str("step results cat /tmp/results\n");
    for case in CASES {
        for &side in sides {
            let _ = writeln!(s, "step trace-{side}-{case} cat /tmp/trace-{side}-{case}");
            let _ = writeln!(s, "step rss-{side}-{case} cat /tmp/rss-{side}-{case}");
        }
    }
    for case in CASES.iter().chain(&["bare"]) {
        for &side in sides.iter().filter(|s| **s != "seed" || *case != "bare") {
            let _ = writeln!(
                s,
                "step syscalls-{side}-{case} cat /tmp/syscalls-{side}-{case}"
            );
            let _ = writeln!(s, "step reads-{side}-{case} cat /tmp/reads-{side}-{case}");
        }
    }
    for &side in sides.iter().filter(|s| **s != "seed") {
        let _ = writeln!(s, "step phases-{side} cat /tmp/phases-{side}");
    }
    s.push_str("step uname uname -r\nstep cpu sh -c 'grep -m1 \"model name\" /proc/cpuinfo; nproc; grep MemTotal /proc/meminfo'\n");
    s
}

#[derive(Debug, Default, Clone)]
struct Row {
    times_ms: Vec<f64>,
    /// Mean ms per start of each timed loop (steady and bare cases).
    loop_ms: Vec<f64>,
    seqno_delta: Vec<i64>,
    seqno_after: Vec<i64>,
    spawned: usize,
    rss_kib: u64,
    syscalls: Option<u64>,
    block_bytes: Option<u64>,
}

/// The total number of calls in an `strace -c` summary.
pub(crate) fn syscall_total(summary: &str) -> Option<u64> {
    let total = summary
        .lines()
        .rev()
        .find(|l| l.trim_end().ends_with("total"))?;
    // % time, seconds, usecs/call, calls, [errors,] "total"
    total.split_whitespace().nth(3)?.parse().ok()
}

/// Bytes returned by reads of /dev nodes in an `strace -y` log (descriptors shown
/// as `3</dev/vda1>`), leaving out terminals and /dev/null.
fn block_bytes_read(trace: &str) -> u64 {
    trace
        .lines()
        .filter_map(|line| {
            let fd_path = line.split_once("</dev/")?.1;
            if ["null>", "tty", "console>", "pts/"]
                .iter()
                .any(|skip| fd_path.starts_with(skip))
            {
                return None;
            }
            line.rsplit_once(" = ")?
                .1
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// Per-phase medians (µs) of the tool's `start timings phases=a=1µs b=2µs …` lines,
/// in the order the phases ran.
pub(crate) fn phase_medians(lines: &str) -> Vec<(String, f64)> {
    let mut order: Vec<String> = Vec::new();
    let mut samples: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    for line in lines.lines() {
        let Some((_, phases)) = line.split_once("phases=") else {
            continue;
        };
        for word in phases.split_whitespace() {
            let Some((name, value)) = word.split_once('=') else {
                continue;
            };
            let Ok(us) = value.trim_end_matches("µs").parse::<f64>() else {
                continue;
            };
            if !order.iter().any(|n| n == name) {
                order.push(name.to_owned());
            }
            samples.entry(name.to_owned()).or_default().push(us);
        }
    }
    order
        .into_iter()
        .map(|name| {
            let m = median(samples.get(&name).map(Vec::as_slice).unwrap_or(&[]));
            (name, m)
        })
        .collect()
}

pub(crate) fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return f64::NAN;
    }
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Successful execve calls in an `strace -f -e trace=execve` log, minus the
/// side's own top process (the binary, or `sh seed.sh`): what the side spawned.
fn spawned(trace: &str) -> usize {
    trace
        .lines()
        .filter(|l| l.contains("execve") && l.trim_end().ends_with("= 0"))
        .count()
        .saturating_sub(1)
}

/// `cargo xtask bench` without `--scale` (main.rs sends `--scale` to `bench_scale`).
pub fn run(_args: &[String]) -> Result<(), String> {
    let binary = build_release()?;
    let strace = host_tool("strace", "strace")?;
    let gtime = host_tool("time", "time")?;
    let gdate = host_tool("date", "coreutils")?;
    let gnuplot = host_tool("gnuplot", "gnuplot-nox")?;
    // The shipping artifact, if `cargo xtask dist` has built it.
    let static_binary = PathBuf::from("target/dist/linstor-provision-disk");
    let sides: Vec<&str> = SIDES
        .iter()
        .copied()
        .filter(|s| *s != "static" || static_binary.is_file())
        .collect();
    if !sides.contains(&"static") {
        eprintln!(
            "xtask: {} is missing (run `cargo xtask dist` to benchmark the static artifact too)",
            static_binary.display()
        );
    }
    let mut bed = TestBed::new(
        sides
            .iter()
            .map(|s| DiskSpec::new(s, 2048).partition(s, None))
            .collect(),
    )
    .map_err(|e| e.to_string())?
    .with_binary(&binary)
    .with_file(&strace, "/usr/local/bin/strace")
    .with_file(&gtime, "/usr/local/bin/gtime")
    .with_file(&gdate, "/usr/local/bin/gdate");
    if sides.contains(&"static") {
        bed = bed.with_file(&static_binary, "/usr/local/bin/lpd-static");
    }
    let options = BootOptions {
        udevd: true,
        memory_mib: 1024,
        timeout: Duration::from_secs(3600),
        ..BootOptions::default()
    };
    eprintln!("xtask: booting the benchmark VM (TCG; {RUNS} timed runs per case and side, about 10-20 minutes)…");
    let run = bed
        .boot(&options, &guest_script(&sides))
        .map_err(|e| e.to_string())?;
    let results = &run.expect_success("results").stdout;

    let mut rows: std::collections::BTreeMap<(String, String), Row> = Default::default();
    let mut failures = Vec::new();
    for line in results.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [side, case, _run, mode, rc, us, before, after] = f[..] else {
            return Err(format!("bad result line {line:?}"));
        };
        if rc != "0" {
            failures.push(line.to_owned());
        }
        let row = rows.entry((case.to_owned(), side.to_owned())).or_default();
        if mode == "loop" {
            row.loop_ms
                .push(us.parse::<f64>().unwrap_or(f64::NAN) / 1000.0);
        }
        if mode == "time" {
            row.times_ms
                .push(us.parse::<f64>().unwrap_or(f64::NAN) / 1000.0);
            let (b, a): (i64, i64) = (before.parse().unwrap_or(0), after.parse().unwrap_or(0));
            row.seqno_delta.push(a - b);
            row.seqno_after.push(a);
        }
    }
    if !failures.is_empty() {
        return Err(format!(
            "benchmark runs failed:\n{}\n--- console tail ---\n{}",
            failures.join("\n"),
            run.console_tail(80)
        ));
    }
    let out_dir = PathBuf::from("target/bench");
    std::fs::create_dir_all(&out_dir).map_err(|e| e.to_string())?;
    for case in CASES {
        for &side in &sides {
            let row = rows.entry((case.to_owned(), side.to_owned())).or_default();
            let trace = &run.expect_success(&format!("trace-{side}-{case}")).stdout;
            // Kept to show which processes each side spawned.
            std::fs::write(out_dir.join(format!("execve-{side}-{case}.txt")), trace)
                .map_err(|e| e.to_string())?;
            row.spawned = spawned(trace);
            row.rss_kib = run
                .expect_success(&format!("rss-{side}-{case}"))
                .stdout
                .trim()
                .parse()
                .unwrap_or(0);
        }
    }

    for case in CASES.iter().chain(&["bare"]) {
        for &side in sides.iter().filter(|s| **s != "seed" || *case != "bare") {
            let row = rows.entry((case.to_string(), side.to_owned())).or_default();
            let summary = &run
                .expect_success(&format!("syscalls-{side}-{case}"))
                .stdout;
            row.syscalls = syscall_total(summary);
            let reads = &run.expect_success(&format!("reads-{side}-{case}")).stdout;
            std::fs::write(out_dir.join(format!("reads-{side}-{case}.txt")), reads)
                .map_err(|e| e.to_string())?;
            row.block_bytes = Some(block_bytes_read(reads));
        }
    }

    // The headline: the shipping (static) artifact when there is one.
    let main = if sides.contains(&"static") {
        "static"
    } else {
        "ours"
    };
    let empty = Row::default();
    let row = |case: &str, side: &str| {
        rows.get(&(case.to_owned(), side.to_owned()))
            .unwrap_or(&empty)
    };
    // Steady starts are timed in loops (warm, per start); the other cases per run.
    let ms_samples = |case: &str, side: &str| -> Vec<f64> {
        let r = row(case, side);
        if case == "steady" || case == "bare" {
            r.loop_ms.clone()
        } else {
            r.times_ms.clone()
        }
    };
    let ms_of = |case: &str, side: &str| {
        let samples = ms_samples(case, side);
        if samples.is_empty() {
            "–".to_owned()
        } else {
            format!("{:.1}", median(&samples))
        }
    };
    let mut table = String::new();
    let _ = writeln!(
        table,
        "| case | seed script ms | ours, static ms | ours, dynamic ms | **speed-up** (seed / {main}) | processes spawned seed / static / dynamic | VG metadata writes seed / static / dynamic | peak RSS MiB: largest seed process / static / dynamic |"
    );
    let _ = writeln!(table, "|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut ratios = Vec::new();
    for case in CASES {
        let seed = row(case, "seed");
        let ratio = median(&ms_samples(case, "seed")) / median(&ms_samples(case, main));
        ratios.push((case, ratio));
        let writes = |r: &Row| -> String {
            if r.times_ms.is_empty() {
                "–".into()
            } else if case == "steady" {
                // seqno before → after of the same VG.
                format!("{}", r.seqno_delta.iter().max().copied().unwrap_or(0))
            } else {
                // The VG is new: its seqno counts every write since vgcreate.
                format!("{}", r.seqno_after.iter().max().copied().unwrap_or(0))
            }
        };
        let (st, dy) = (row(case, "static"), row(case, "ours"));
        let _ = writeln!(
            table,
            "| {} | {} | {} | {} | **{ratio:.1}×** | {} / {} / {} | {} / {} / {} | {:.1} / {:.1} / {:.1} |",
            match case {
                "first" => "first provision",
                "steady" => "steady state (same ID)",
                _ => "reset (new ID)",
            },
            ms_of(case, "seed"),
            ms_of(case, "static"),
            ms_of(case, "ours"),
            seed.spawned,
            st.spawned,
            dy.spawned,
            writes(seed),
            writes(st),
            writes(dy),
            seed.rss_kib as f64 / 1024.0,
            st.rss_kib as f64 / 1024.0,
            dy.rss_kib as f64 / 1024.0,
        );
    }
    let _ = writeln!(
        table,
        "| bare start (`--version`) | – | {} | {} | – | – | – | – |",
        ms_of("bare", "static"),
        ms_of("bare", "ours")
    );

    // System calls and block-device bytes, one run each under strace.
    let mut counts = String::new();
    let _ = writeln!(
        counts,
        "| case | system calls seed / static / dynamic | bytes read from /dev nodes seed / static / dynamic |"
    );
    let _ = writeln!(counts, "|---|---:|---:|");
    let count = |v: Option<u64>| v.map_or_else(|| "–".to_owned(), |n| n.to_string());
    for case in CASES.iter().chain(&["bare"]) {
        let _ = writeln!(
            counts,
            "| {case} | {} / {} / {} | {} / {} / {} |",
            count(row(case, "seed").syscalls),
            count(row(case, "static").syscalls),
            count(row(case, "ours").syscalls),
            count(row(case, "seed").block_bytes),
            count(row(case, "static").block_bytes),
            count(row(case, "ours").block_bytes),
        );
    }

    // Where a steady start of each build spends its time (median of 5 debug runs).
    let mut breakdown = String::new();
    for &side in sides.iter().filter(|s| **s != "seed") {
        let lines = &run.expect_success(&format!("phases-{side}")).stdout;
        let phases = phase_medians(lines);
        if phases.is_empty() {
            return Err(format!(
                "the {side} build printed no `start timings` line at LOG_LEVEL=debug:\n{lines}"
            ));
        }
        let _ = writeln!(
            breakdown,
            "{side}: {}",
            phases
                .iter()
                .map(|(name, us)| format!("{name} {:.2} ms", us / 1000.0))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }

    // The issue's targets, for the headline build.
    let steady = median(&ms_samples("steady", main));
    let bare = median(&ms_samples("bare", main));
    let ratio_of = |case: &str| {
        ratios
            .iter()
            .find(|(c, _)| *c == case)
            .map_or(f64::NAN, |(_, r)| *r)
    };
    let verdict = |met: bool| if met { "yes" } else { "**no**" };
    let mut targets = String::new();
    let _ = writeln!(targets, "| target ({main} build) | result | met? |");
    let _ = writeln!(targets, "|---|---|---|");
    let _ = writeln!(
        targets,
        "| steady start ≤ 2× a bare start | {:.2}× ({steady:.1} ms / {bare:.1} ms) | {} |",
        steady / bare,
        verdict(steady <= 2.0 * bare)
    );
    for (case, floor) in [("steady", 50.0), ("first", 7.0), ("reset", 5.0)] {
        let r = ratio_of(case);
        let _ = writeln!(
            targets,
            "| {case}: ≥ {floor}× the seed | {r:.1}× | {} |",
            verdict(r >= floor)
        );
    }

    let mut raw = String::new();
    for ((case, side), r) in &rows {
        let _ = writeln!(
            raw,
            "{case:>7} {side:>6}: runs (ms) {:?}, loops (ms per start) {:?}, seqno deltas {:?}",
            r.times_ms
                .iter()
                .map(|t| t.round() as i64)
                .collect::<Vec<_>>(),
            r.loop_ms
                .iter()
                .map(|t| (t * 10.0).round() / 10.0)
                .collect::<Vec<_>>(),
            r.seqno_delta
        );
    }
    let env = format!(
        "guest kernel {}; {}; qemu TCG, 1 vCPU, {} MiB; host: {}",
        run.step("uname").stdout.trim(),
        run.step("cpu").stdout.trim().replace('\n', ", "),
        options.memory_mib,
        String::from_utf8_lossy(
            &Command::new("uname")
                .arg("-srm")
                .output()
                .map(|o| o.stdout)
                .unwrap_or_default()
        )
        .trim()
    );
    let report = format!(
        "{table}\n{targets}\nSystem calls (`strace -f -c`, all processes of the side) and bytes read from /dev nodes (`strace -f -y`), one run each:\n\n{counts}\nSteady-start breakdown (`LOG_LEVEL=debug` timings, median of 5 runs):\n```\n{breakdown}```\n\nEnvironment: {env}\n\nRaw (`bare` = `--version`):\n```\n{raw}```\n"
    );
    std::fs::write(out_dir.join("results.md"), &report).map_err(|e| e.to_string())?;
    println!("{report}");

    // The chart: three bars, the speed-up per case.
    let data: String = ratios
        .iter()
        .map(|(case, r)| format!("\"{case}\" {r:.2}\n"))
        .collect();
    std::fs::write(out_dir.join("ratios.dat"), &data).map_err(|e| e.to_string())?;
    std::fs::create_dir_all("docs").map_err(|e| e.to_string())?;
    let plot = format!(
        "set terminal pngcairo size 720,420 font 'sans,11'\n\
         set output 'docs/bench-ratios.png'\n\
         set title 'linstor-provision-disk ({main} build) vs the seed tool: seed time / our time'\n\
         set style fill solid 0.8\nset boxwidth 0.6\nset logscale y\nset yrange [1:200]\n\
         set ylabel 'times faster (log scale)'\nset grid ytics\nunset key\n\
         plot 'target/bench/ratios.dat' using 0:2:xtic(1) with boxes lc rgb '#3465a4', \
         '' using 0:2:(sprintf('%.1fx', $2)) with labels offset 0,1\n"
    );
    std::fs::write(out_dir.join("ratios.gp"), plot).map_err(|e| e.to_string())?;
    crate::packages::run(Command::new(gnuplot).arg(out_dir.join("ratios.gp")))?;
    eprintln!("xtask: wrote target/bench/results.md and docs/bench-ratios.png");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_strace_summary_total_is_the_calls_column_with_or_without_errors() {
        let with_errors = "100.00    0.013367          51       258         3 total\n";
        let without = "------ ---\n100.00    0.008231         161        51           total\n";
        assert_eq!(syscall_total(with_errors), Some(258));
        assert_eq!(syscall_total(without), Some(51));
        assert_eq!(syscall_total("no summary"), None);
    }

    #[test]
    fn only_reads_of_device_nodes_count_as_block_bytes() {
        let trace = "612 read(4</dev/vda1>, \"\\0\\0\"..., 2048) = 2048\n\
                     612 pread64(5</dev/vda>, \"EFI PART\"..., 512, 512) = 512\n\
                     612 read(3</etc/lvm/lvm.conf>, \"# x\"..., 32) = 32\n\
                     612 read(0</dev/null>, \"\", 4096) = 0\n\
                     612 read(6</dev/vda1>, 0x7f, 512) = -1 EIO (Input/output error)\n";
        assert_eq!(block_bytes_read(trace), 2560);
    }

    #[test]
    fn phase_medians_keep_the_order_the_phases_ran_in() {
        let lines = "x DEBUG start timings phases=parse_args=10µs lock=5µs total=15µs\n\
                     x DEBUG start timings phases=parse_args=30µs lock=1µs total=31µs\n\
                     x DEBUG start timings phases=parse_args=20µs lock=3µs total=23µs\n";
        assert_eq!(
            phase_medians(lines),
            vec![
                ("parse_args".to_owned(), 20.0),
                ("lock".to_owned(), 3.0),
                ("total".to_owned(), 23.0)
            ]
        );
    }
}
