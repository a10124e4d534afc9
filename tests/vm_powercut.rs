//! Power cuts in the middle of every LVM write step: of a first provision, of a
//! reset, and of growing a pool whose satellite ID matches. The guest resets itself
//! (`echo b > /proc/sysrq-trigger` from the tool's test hook
//! `LINSTOR_PROVISION_DISK_TEST_POWERCUT_DURING=N:MS`: nothing synced, page cache
//! lost), the same disk images boot again, and the rerun must leave a correct,
//! fully provisioned partition — with a matching ID, with the thin LV and its file
//! intact.
//!
//! "In the middle": a probe disk runs the same sequence first and the test times
//! each command from the tool's JSON log; each cut then lands at 40% of that
//! command's duration (halved and retried if the tool finished first: TCG
//! timings vary between boots). One cut per boot; each boot first checks the previous
//! cut's disk, then cuts the next one. Every disk has its own label and VG.
mod common;

use common::*;
use serde_json::Value;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;
use vmtest::{BootOptions, DiskSpec, GuestRun, TestBed};

const HOOK: &str = "LINSTOR_PROVISION_DISK_TEST_POWERCUT_DURING";

fn provision(label: &str, vg: &str, id: &str) -> String {
    format!(
        "$LPD --partition-label {label} --volume-group {vg} --pool linstor-pool \
         --on-failure exit --satellite-id {id}"
    )
}

fn power_boot(bed: &TestBed, script: &str) -> GuestRun {
    let options = BootOptions {
        timeout: Duration::from_secs(900),
        power_cut_expected: true,
        kernel_args: FAULT_INJECTION_KEY.to_owned(),
        ..BootOptions::default()
    };
    match bed.boot(&options, &format!("{PRELUDE}{script}")) {
        Ok(run) => {
            eprintln!(
                "guest ran {} steps in {:?} (power cut: {})",
                run.steps.len(),
                run.elapsed,
                run.power_cut
            );
            run
        }
        Err(e) => panic!("VM boot failed: {e}"),
    }
}

/// Seconds of the day of an RFC 3339 timestamp (`…T05:52:09.123456Z`).
fn seconds(ts: &str) -> f64 {
    let time = ts.split('T').nth(1).unwrap_or_default();
    let time = time.trim_end_matches('Z');
    let mut parts = time.split(':');
    let mut total = 0.0;
    for unit in [3600.0, 60.0, 1.0] {
        let v: f64 = parts
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("bad timestamp {ts:?}"));
        total += v * unit;
    }
    total
}

/// The tool's JSON log lines in `text`.
fn log_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| l.find('{').map(|at| &l[at..]))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("timestamp").is_some())
        .collect()
}

/// Each action line (one per LVM command) is logged as the command starts: the
/// removals carry an `action` field, every other action's message is its
/// description (`create …`, `grow …`, `tag …`, `activate …`).
fn is_action(line: &Value) -> bool {
    let message = text(&line["message"]);
    line["level"] == "INFO"
        && (line.get("action").is_some()
            || ["create ", "grow ", "tag ", "activate "]
                .iter()
                .any(|p| message.starts_with(p)))
}

/// How long each LVM command of a JSON-logged run took, in ms: from its action
/// line to the next one (the last one: to the success line).
fn command_durations(run: &GuestRun, step: &str) -> Vec<u64> {
    let stderr = &expect_exit(run, step, 0).stderr;
    let lines = log_lines(stderr);
    let mut marks: Vec<f64> = lines
        .iter()
        .filter(|l| is_action(l))
        .map(|l| seconds(&text(&l["timestamp"])))
        .collect();
    let done = lines
        .iter()
        .find(|l| l["message"] == "disk provisioning completed successfully")
        .unwrap_or_else(|| panic!("{step}: no success line:\n{stderr}"));
    marks.push(seconds(&text(&done["timestamp"])));
    marks
        .windows(2)
        .map(|w| ((w[1] - w[0]).max(0.0) * 1000.0) as u64)
        .collect()
}

/// One planned power cut: disk (label = VG name), the ID the run provisions,
/// which command, and when.
#[derive(Debug, Clone)]
struct Cut {
    name: String,
    id: &'static str,
    command: usize,
    delay_ms: u64,
    /// The thin LV `pvc-1` must survive (matching ID) with its file.
    keeps_thin: bool,
}

/// Guest shell that cuts the power during `cut`. If the tool ends before the cut
/// fires, the script ends normally and the test fails on `power_cut`.
fn cut_script(cut: &Cut) -> String {
    format!(
        "echo 'powercut-test: {name} command {n} after {ms} ms'\n\
         env {HOOK}={n}:{ms} {tool} --log-format json 2>/dev/console\n\
         echo \"powercut-test: the tool exited $? before the power cut\"\n",
        name = cut.name,
        n = cut.command,
        ms = cut.delay_ms,
        tool = provision(&cut.name, &cut.name, cut.id),
    )
}

/// Guest shell that reruns the tool on the disk of an earlier cut and reports.
fn verify_script(cut: &Cut) -> String {
    let n = &cut.name;
    let tool = provision(n, n, cut.id);
    let mut s = format!(
        "step {n}-after-cut lvs -a --reportformat json -o lv_name,lv_attr {n}\n\
         step {n}-plan {tool} --dry-run\n\
         step {n}-rerun {tool}\n\
         step {n}-steady {tool}\n\
         step {n}-vgs vgs --reportformat json -o vg_name,vg_tags,vg_free_count,pv_count {n}\n\
         step {n}-lvs lvs -a --reportformat json -o lv_name {n}\n\
         step {n}-pvs pvs --reportformat json -o pv_name,vg_name\n\
         step {n}-status $LPD status --partition-label {n} --volume-group {n} --pool linstor-pool --json\n"
    );
    if cut.keeps_thin {
        s.push_str(&format!(
            "step {n}-read sh -c 'lvchange -ay {n}/pvc-1 && mount -o ro /dev/mapper/{n}-pvc--1 /mnt && cat /mnt/data; umount /mnt'\n"
        ));
    }
    s
}

/// Checks a disk after the rerun that followed a cut; returns the plan the rerun
/// started from (for the report).
fn verify(run: &GuestRun, cut: &Cut) -> Vec<String> {
    let n = &cut.name;
    let plan = dry_run_steps(run, &format!("{n}-plan"));
    expect_provisioned(run, &format!("{n}-rerun"));
    let steady = expect_provisioned(run, &format!("{n}-steady"));
    assert!(
        steady.stderr.contains("lvm_commands=0"),
        "{n}: the run after the rerun still had work:\n{}",
        steady.stderr
    );
    let vg = vg_row(run, &format!("{n}-vgs"));
    assert_eq!(
        text(&vg["vg_tags"]),
        format!("linstor-satellite-id={}", cut.id),
        "{n}"
    );
    // Free: only the room to double the pool's metadata and its spare once
    // (docs/incoming/wt-sizing.md): 2 extents at 1 GiB, 4–6 at the grown 3–5 GiB;
    // the steady rerun above proves it is exactly what the planner keeps.
    let free = number(&vg["vg_free_count"]);
    assert!(
        (2..=6).contains(&free),
        "{n}: pool not at full size: {free} free"
    );
    assert_eq!(number(&vg["pv_count"]), 1, "{n}");
    let lvs = lv_names(run, &format!("{n}-lvs"));
    assert!(lvs.contains(&"linstor-pool".to_owned()), "{n}: {lvs:?}");
    assert_eq!(
        lvs.contains(&"pvc-1".to_owned()),
        cut.keeps_thin,
        "{n}: thin LV kept/removed wrongly: {lvs:?}"
    );
    let pvs: Vec<String> = rows(run, &format!("{n}-pvs"), "pv")
        .iter()
        .filter(|r| text(&r["vg_name"]) == *n)
        .map(|r| text(&r["pv_name"]))
        .collect();
    assert_eq!(pvs.len(), 1, "{n}: PVs {pvs:?}");
    let status = json(run, &format!("{n}-status"));
    let status_vg = &status["physical_volume"]["volume_group"];
    assert_eq!(status_vg["satellite_id"]["value"], cut.id, "{status}");
    assert_eq!(status_vg["name"], n.as_str(), "{status}");
    if cut.keeps_thin {
        assert_eq!(
            run.expect_success(&format!("{n}-read")).stdout.trim(),
            "precious",
            "{n}: the thin LV's file"
        );
    }
    plan
}

/// Where the cut landed: the number of LVM commands the tool had started
/// (action lines on the console after this boot's cut marker).
fn landed_in(run: &GuestRun, cut: &Cut) -> usize {
    run.check(
        run.power_cut,
        &format!("{}: the power was not cut during the run", cut.name),
    );
    run.check(
        run.console.contains(&format!("{HOOK}: power cut now")),
        &format!("{}: the hook's power-cut line is missing", cut.name),
    );
    let marker = format!("powercut-test: {} command", cut.name);
    let after = run.console.split(&marker).nth(1).unwrap_or_default();
    log_lines(after).iter().filter(|l| is_action(l)).count()
}

/// Boots once per cut (each boot checks the previous cut's disk first), then once
/// more to check the last. A cut that missed (the tool finished first: this
/// boot's timing differs from the probe's) is retried, up to [`ATTEMPTS`] times,
/// after `prepare` restored the disk's state, with half the delay.
/// Returns (cut, landed in command, plan of the rerun).
fn run_cuts(
    bed: &TestBed,
    cuts: &[Cut],
    prepare: &dyn Fn(&Cut, u32) -> String,
) -> Vec<(Cut, usize, Vec<String>)> {
    let mut report = Vec::new();
    let mut queue: std::collections::VecDeque<(Cut, u32)> =
        cuts.iter().cloned().map(|c| (c, 1)).collect();
    let mut to_verify: Option<(Cut, usize)> = None;
    let mut failures = Vec::new();
    loop {
        let next = queue.pop_front();
        if next.is_none() && to_verify.is_none() {
            break;
        }
        let mut script = String::new();
        if let Some((cut, _)) = &to_verify {
            script.push_str(&verify_script(cut));
        }
        if let Some((cut, attempt)) = &next {
            if *attempt > 1 {
                script.push_str(&prepare(cut, *attempt));
            }
            script.push_str(&cut_script(cut));
        }
        let run = power_boot(bed, &script);
        if let Some((cut, landed)) = to_verify.take() {
            // Check every disk even when one fails, so one run shows all failures.
            match catch_unwind(AssertUnwindSafe(|| verify(&run, &cut))) {
                Ok(plan) => report.push((cut, landed, plan)),
                Err(panic) => failures.push(format!(
                    "{} (cut during command {}, +{} ms, landed in {landed}): {}",
                    cut.name,
                    cut.command,
                    cut.delay_ms,
                    panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default()
                        .lines()
                        .take(8)
                        .collect::<Vec<_>>()
                        .join("\n    ")
                )),
            }
        }
        if let Some((cut, attempt)) = next {
            if run.power_cut {
                let landed = landed_in(&run, &cut);
                assert!(
                    landed >= cut.command,
                    "{}: the power went before command {} started ({landed} started)",
                    cut.name,
                    cut.command
                );
                to_verify = Some((cut, landed));
            } else {
                run.check(
                    run.console
                        .contains("powercut-test: the tool exited 0 before the power cut"),
                    &format!("{}: the tool failed without a power cut", cut.name),
                );
                assert!(
                    attempt < ATTEMPTS,
                    "{}: the tool finished before the power cut {ATTEMPTS} times",
                    cut.name
                );
                eprintln!(
                    "{}: the tool finished within {} ms; retrying with half the delay",
                    cut.name, cut.delay_ms
                );
                let mut cut = cut;
                cut.delay_ms /= 2;
                queue.push_front((cut, attempt + 1));
            }
        }
    }
    for (cut, landed, plan) in &report {
        eprintln!(
            "power cut {} during command {} (+{} ms; landed in {landed}): rerun planned {plan:?}",
            cut.name, cut.command, cut.delay_ms
        );
    }
    assert!(
        failures.is_empty(),
        "after a power cut, the rerun did not converge:\n  {}",
        failures.join("\n  ")
    );
    report
}

const ATTEMPTS: u32 = 4;

/// The device of partition 1 of the `index`th disk (no udev in these boots).
fn dev(index: usize) -> String {
    format!("/dev/vd{}1", (b'a' + index as u8) as char)
}

/// Guest shell: back to a blank partition.
fn wipe(name: &str, dev: &str) -> String {
    format!(
        "lvremove -q -f -y {name}; vgremove -q -f -y {name}; pvremove -q -f -y {dev}; wipefs -q -a {dev}\n"
    )
}

fn disk(name: &str) -> DiskSpec {
    DiskSpec::new(name, 1024).partition(name, None)
}

#[test]
fn power_cut_during_every_write_of_a_first_provision_and_a_reset() {
    let fresh = ["fresh1", "fresh2", "fresh3"];
    let reset = ["reset1", "reset2", "reset3", "reset4", "reset5", "reset6"];
    let mut disks = vec![disk("probe")];
    disks.extend(fresh.iter().chain(&reset).map(|n| disk(n)));
    let bed = bed(disks);

    // Setup, and the probe's timings: a fresh provision, then a reset of it.
    let mut setup = format!(
        "step probe-fresh {} --log-format json\n\
         step probe-thin lvcreate -V 64m -T probe/linstor-pool -n pvc-1\n\
         step probe-reset {} --log-format json\n",
        provision("probe", "probe", "node-01"),
        provision("probe", "probe", "node-02"),
    );
    for n in reset {
        setup.push_str(&format!(
            "step setup-{n} {}\nstep thin-{n} lvcreate -V 64m -T {n}/linstor-pool -n pvc-1\n",
            provision(n, n, "node-01")
        ));
    }
    let first = power_boot(&bed, &setup);
    first.check(!first.power_cut, "the setup boot was cut");
    first.expect_success("probe-thin");
    for n in reset {
        expect_provisioned(&first, &format!("setup-{n}"));
        first.expect_success(&format!("thin-{n}"));
    }
    let fresh_ms = command_durations(&first, "probe-fresh");
    let reset_ms = command_durations(&first, "probe-reset");
    eprintln!(
        "probe: first provision commands took {fresh_ms:?} ms, reset commands {reset_ms:?} ms"
    );
    assert_eq!(
        fresh_ms.len(),
        fresh.len(),
        "a first provision runs pvcreate, vgcreate, lvcreate"
    );
    assert_eq!(
        reset_ms.len(),
        reset.len(),
        "a reset runs lvremove, vgremove, pvremove, pvcreate, vgcreate, lvcreate"
    );

    let mut cuts = Vec::new();
    for (i, n) in fresh.iter().enumerate() {
        cuts.push(Cut {
            name: n.to_string(),
            id: "node-01",
            command: i + 1,
            delay_ms: fresh_ms[i] * 2 / 5,
            keeps_thin: false,
        });
    }
    for (i, n) in reset.iter().enumerate() {
        cuts.push(Cut {
            name: n.to_string(),
            id: "node-02",
            command: i + 1,
            delay_ms: reset_ms[i] * 2 / 5,
            keeps_thin: false,
        });
    }
    let all: Vec<&str> = std::iter::once("probe")
        .chain(fresh.iter().copied())
        .chain(reset.iter().copied())
        .collect();
    let device = |name: &str| dev(all.iter().position(|n| *n == name).unwrap_or(0));
    let prepare = |cut: &Cut, _attempt: u32| {
        let mut s = wipe(&cut.name, &device(&cut.name));
        if cut.id == "node-02" {
            s.push_str(&format!(
                "{}\nlvcreate -q -V 64m -T {}/linstor-pool -n pvc-1\n",
                provision(&cut.name, &cut.name, "node-01"),
                cut.name
            ));
        }
        s
    };
    run_cuts(&bed, &cuts, &prepare);
}

#[test]
fn power_cut_while_growing_a_matching_pool_keeps_the_thin_volume() {
    let names = ["gprobe", "grow1", "grow2", "grow3"];
    let bed = bed(names.iter().map(|n| disk(n)).collect());
    let mut setup = String::new();
    for n in names {
        setup.push_str(&format!(
            "step setup-{n} {tool}\n\
             step thin-{n} sh -c 'lvcreate -q -V 64m -T {n}/linstor-pool -n pvc-1 && mkfs.ext4 -q /dev/mapper/{n}-pvc--1 && mount /dev/mapper/{n}-pvc--1 /mnt && echo precious > /mnt/data && umount /mnt && lvchange -an {n}/pvc-1'\n",
            tool = provision(n, n, "node-01")
        ));
    }
    let first = power_boot(&bed, &setup);
    for n in names {
        expect_provisioned(&first, &format!("setup-{n}"));
        first.expect_success(&format!("thin-{n}"));
        grow_disk(&bed.disk_path(n), "3G", n);
    }
    // The probe grows its pool once, timed.
    let probe = power_boot(
        &bed,
        &format!(
            "step probe-grow {} --log-format json\n",
            provision("gprobe", "gprobe", "node-01")
        ),
    );
    let grow_ms = command_durations(&probe, "probe-grow");
    eprintln!("probe: growing took {grow_ms:?} ms per command");
    // After the reboot nothing activated the pool, so the start also activates it
    // (not a metadata write; kills inside it are vm_kill_torture's).
    // The grown extents first restore the room to double the pool's metadata, then
    // its metadata grows to twice LVM's estimate, then its data (two lvextends).
    assert_eq!(
        grow_ms.len(),
        4,
        "growing after a reboot runs pvresize, the metadata's and the data's lvextend and \
         the pool's activation: {grow_ms:?}"
    );
    // One disk per metadata write, cut in its middle.
    let cuts: Vec<Cut> = grow_ms
        .iter()
        .take(3)
        .enumerate()
        .map(|(i, ms)| Cut {
            name: names[i + 1].to_owned(),
            id: "node-01",
            command: i + 1,
            delay_ms: ms * 2 / 5,
            keeps_thin: true,
        })
        .collect();
    // A missed cut: the partition grows once more (the pool and the thin LV stay).
    let regrow = |cut: &Cut, attempt: u32| {
        grow_disk(
            &bed.disk_path(&cut.name),
            &format!("{}G", 2 + attempt),
            &cut.name,
        );
        String::new()
    };
    let report = run_cuts(&bed, &cuts, &regrow);
    assert_eq!(report.len(), cuts.len());
}
