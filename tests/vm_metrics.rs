//! Metrics where operators look: `status --format openmetrics` on a provisioned pool
//! holding data reports what LVM itself reports (`lvs`, `vgs`), and a provisioning
//! run with `--metrics-file` leaves one whole `.prom` file (no temporary file, a
//! symlink at its name replaced, not written through) on success and on a refusal.
//! Every exposition text is also checked by the host's `promtool check metrics`
//! (the parser node_exporter's textfile collector uses).
mod common;

use common::*;
use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use vmtest::{DiskSpec, GuestRun};

/// The satellite ID: quotes, a backslash and non-ASCII, which the info metric's
/// label must carry exactly (LVM tags cannot; see src/satellite_id.rs).
const ID: &str = "node \"a\\b\" é";
/// As written in the guest's sh, inside single quotes.
const ID_IN_SH: &str = "'node \"a\\b\" é'";

#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Reads exposition text: samples (`name{a="v",…} value`), label values unescaped.
fn parse(text: &str) -> Vec<Sample> {
    assert!(text.ends_with("# EOF\n"), "no `# EOF` at the end:\n{text}");
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| parse_line(line).unwrap_or_else(|| panic!("unreadable sample line {line:?}")))
        .collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let name = line[..name_end].to_owned();
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices();
        let mut key = String::new();
        let mut value = String::new();
        let mut in_value = false;
        loop {
            let (at, c) = chars.next()?;
            match (in_value, c) {
                (false, '}') => {
                    rest = &inner[at + 1..];
                    break;
                }
                (false, ',') => {}
                (false, '=') => {
                    chars.next().filter(|(_, q)| *q == '"')?;
                    in_value = true;
                }
                (false, c) => key.push(c),
                (true, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                (true, '"') => {
                    labels.insert(std::mem::take(&mut key), std::mem::take(&mut value));
                    in_value = false;
                }
                (true, c) => value.push(c),
            }
        }
    }
    let value = rest.trim().parse().ok()?;
    Some(Sample {
        name,
        labels,
        value,
    })
}

fn only<'a>(samples: &'a [Sample], name: &str, what: &str) -> &'a Sample {
    let found: Vec<&Sample> = samples.iter().filter(|s| s.name == name).collect();
    match found.as_slice() {
        [one] => one,
        other => panic!("{what}: expected one sample of {name}, got {other:?}"),
    }
}

fn value(samples: &[Sample], name: &str, what: &str) -> f64 {
    only(samples, name, what).value
}

/// `promtool check metrics` (Debian package `prometheus`) accepts `text`.
fn promtool_accepts(text: &str, what: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run promtool ({e}); install it: `apt-get install prometheus` (or `cargo xtask deps`)")
        });
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write;
        stdin
            .write_all(text.as_bytes())
            .unwrap_or_else(|e| panic!("cannot feed promtool: {e}"));
    }
    let output = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("promtool failed: {e}"));
    assert!(
        output.status.success(),
        "promtool check metrics rejected {what}:\n{}{}\n--- text ---\n{text}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The metrics a step printed (checked by promtool first).
fn metrics_of(run: &GuestRun, step: &str) -> Vec<Sample> {
    let text = &run.expect_success(step).stdout;
    promtool_accepts(text, step);
    parse(text)
}

/// The run outcome samples: outcome label → value.
fn outcomes(samples: &[Sample]) -> BTreeMap<String, f64> {
    samples
        .iter()
        .filter(|s| s.name == "linstor_provision_disk_run_outcome")
        .map(|s| (s.labels["outcome"].clone(), s.value))
        .collect()
}

fn lvm_commands_logged(run: &GuestRun, step: &str) -> f64 {
    let stderr = &run.step(step).stderr;
    let count = stderr
        .split("lvm_commands=")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse::<f64>().ok());
    count.unwrap_or_else(|| panic!("step {step} logged no lvm_commands=:\n{stderr}"))
}

fn close(a: f64, b: f64, tolerance: f64) -> bool {
    (a - b).abs() <= tolerance
}

#[test]
fn metrics_match_lvm_and_the_metrics_file_is_written_atomically_on_success_and_refusal() {
    let bed = bed(vec![
        DiskSpec::new("storage", 1024).partition("linstor-storage", None),
        DiskSpec::new("other", 64).partition("other-storage", None),
    ]);
    let script = format!(
        r#"
mkdir -p /tmp/textfile
echo precious > /tmp/precious
ln -s /tmp/precious /tmp/textfile/lpd.prom
step fresh $LPD $P --satellite-id {ID_IN_SH} --metrics-file /tmp/textfile/lpd.prom
step fresh-ls ls -A /tmp/textfile
step fresh-mode stat -c '%a %F' /tmp/textfile/lpd.prom
step fresh-prom cat /tmp/textfile/lpd.prom
step precious cat /tmp/precious
step thin lvcreate -V 256m -T linstor-vg/linstor-pool -n pvc-1
step fill dd if=/dev/urandom of=/dev/mapper/linstor--vg-pvc--1 bs=1M count=48 conv=fsync
step steady env METRICS_FILE=/tmp/textfile/lpd.prom $LPD $P --satellite-id {ID_IN_SH}
step steady-prom cat /tmp/textfile/lpd.prom
step status $LPD status --partition-label linstor-storage --volume-group linstor-vg --pool linstor-pool --format openmetrics
step lvs lvs --reportformat json --units b --nosuffix -o lv_name,data_percent,metadata_percent,lv_size,lv_metadata_size linstor-vg/linstor-pool
step vgs vgs --reportformat json --units b --nosuffix -o vg_name,vg_free_count,vg_free,vg_mda_size,vg_mda_free linstor-vg
step mkfs mkfs.ext4 -q /dev/vdb1
step refused $LPD --partition-label other-storage --volume-group other-vg --pool other-pool --satellite-id n --on-failure exit --metrics-file /tmp/textfile/refused.prom
step refused-prom cat /tmp/textfile/refused.prom
step hold sh -c '/usr/local/bin/linstor-provision-disk --partition-label other-storage --volume-group other-vg --pool other-pool --satellite-id n --on-failure hold --metrics-file /tmp/textfile/held.prom >/tmp/held.log 2>&1 & echo $! >/tmp/held.pid; i=0; until [ -e /tmp/.disk-provisioner-wait ] || [ $i -ge 300 ]; do sleep 1; i=$((i+1)); done; [ -e /tmp/.disk-provisioner-wait ]'
step held-prom cat /tmp/textfile/held.prom
step held-stop sh -c 'kill $(cat /tmp/held.pid)'
step final-ls ls -A /tmp/textfile
"#
    );
    let run = boot(&bed, false, &script);

    // Success: the file replaced the symlink (its target untouched), alone in the
    // folder, readable by a non-root node exporter.
    expect_provisioned(&run, "fresh");
    assert_eq!(run.expect_success("fresh-ls").stdout.trim(), "lpd.prom");
    assert_eq!(
        run.expect_success("fresh-mode").stdout.trim(),
        "644 regular file"
    );
    assert_eq!(run.expect_success("precious").stdout.trim(), "precious");
    let fresh = metrics_of(&run, "fresh-prom");
    let what = "fresh run's file";
    assert_eq!(
        outcomes(&fresh),
        BTreeMap::from([
            ("error".to_owned(), 0.0),
            ("refusal".to_owned(), 0.0),
            ("success".to_owned(), 1.0)
        ])
    );
    assert_eq!(
        value(&fresh, "linstor_provision_disk_run_exit_code", what),
        0.0
    );
    assert_eq!(
        value(&fresh, "linstor_provision_disk_run_holding", what),
        0.0
    );
    let commands = value(&fresh, "linstor_provision_disk_run_lvm_commands", what);
    assert!(commands >= 3.0, "pvcreate, vgcreate, lvcreate: {commands}");
    assert_eq!(commands, lvm_commands_logged(&run, "fresh"));
    let duration = value(&fresh, "linstor_provision_disk_run_duration_seconds", what);
    assert!(duration > 0.0 && duration < 600.0, "{duration}");
    let run_labels = &only(&fresh, "linstor_provision_disk_run_exit_code", what).labels;
    assert_eq!(run_labels["partition_label"], "linstor-storage");
    assert_eq!(run_labels["vg"], "linstor-vg");
    assert_eq!(run_labels["pool"], "linstor-pool");
    // The run writes the pool's figures too.
    assert_eq!(
        value(&fresh, "linstor_provision_disk_pool_active", what),
        1.0
    );
    assert!(value(&fresh, "linstor_provision_disk_pool_data_size_bytes", what) > 0.0);

    // A steady start (METRICS_FILE from the environment) rewrites it: no commands.
    run.expect_success("thin");
    run.expect_success("fill");
    expect_provisioned(&run, "steady");
    let steady = metrics_of(&run, "steady-prom");
    assert_eq!(
        value(&steady, "linstor_provision_disk_run_lvm_commands", "steady"),
        0.0
    );
    assert_eq!(outcomes(&steady)["success"], 1.0);
    eprintln!(
        "run_duration_seconds: fresh {duration}, steady {}",
        value(
            &steady,
            "linstor_provision_disk_run_duration_seconds",
            "steady"
        )
    );

    // status --format openmetrics against LVM's own numbers.
    let status = metrics_of(&run, "status");
    let what = "status";
    let pool = &rows(&run, "lvs", "lv")[0];
    let percent = |key: &str| -> f64 {
        text(&pool[key])
            .parse()
            .unwrap_or_else(|_| panic!("lvs {key}: {pool}"))
    };
    let data_used = value(&status, "linstor_provision_disk_pool_data_used_bytes", what);
    let data_size = value(&status, "linstor_provision_disk_pool_data_size_bytes", what);
    let meta_used = value(
        &status,
        "linstor_provision_disk_pool_metadata_used_bytes",
        what,
    );
    let meta_size = value(
        &status,
        "linstor_provision_disk_pool_metadata_size_bytes",
        what,
    );
    assert_eq!(data_size, number(&pool["lv_size"]) as f64);
    assert_eq!(meta_size, number(&pool["lv_metadata_size"]) as f64);
    assert!(
        data_used >= 48.0 * 1024.0 * 1024.0,
        "48 MiB written: {data_used}"
    );
    // LVM prints percentages with two decimals.
    let data_percent = 100.0 * data_used / data_size;
    let meta_percent = 100.0 * meta_used / meta_size;
    assert!(
        close(data_percent, percent("data_percent"), 0.0051),
        "data {data_percent} vs lvs {}",
        percent("data_percent")
    );
    assert!(
        close(meta_percent, percent("metadata_percent"), 0.0051),
        "metadata {meta_percent} vs lvs {}",
        percent("metadata_percent")
    );
    let vg = vg_row(&run, "vgs");
    for (metric, column) in [
        ("linstor_provision_disk_vg_free_extents", "vg_free_count"),
        ("linstor_provision_disk_vg_free_bytes", "vg_free"),
        (
            "linstor_provision_disk_vg_metadata_area_size_bytes",
            "vg_mda_size",
        ),
        (
            "linstor_provision_disk_vg_metadata_area_free_bytes",
            "vg_mda_free",
        ),
    ] {
        assert_eq!(
            value(&status, metric, what),
            number(&vg[column]) as f64,
            "{metric} vs vgs {column}"
        );
    }
    let text_bytes = value(
        &status,
        "linstor_provision_disk_vg_metadata_area_used_bytes",
        what,
    );
    assert!(
        text_bytes > 1000.0 && text_bytes < number(&vg["vg_mda_size"]) as f64 / 2.0,
        "metadata text {text_bytes}"
    );
    let info = only(&status, "linstor_provision_disk_satellite_id_info", what);
    assert_eq!(info.value, 1.0);
    assert_eq!(info.labels["satellite_id"], ID, "the ID exactly");
    assert_eq!(info.labels["source"], "vg-tag");
    assert_eq!(info.labels["vg"], "linstor-vg");
    assert_eq!(info.labels["partition_label"], "linstor-storage");
    for name in [
        "linstor_provision_disk_pool_data_used_bytes",
        "linstor_provision_disk_pool_active",
    ] {
        assert_eq!(only(&status, name, what).labels["pool"], "linstor-pool");
    }

    // A refusal (a foreign filesystem on the partition) writes its file too.
    run.expect_success("mkfs");
    let refused = expect_exit(&run, "refused", 1);
    assert!(refused.stderr.contains("ext4"), "{}", refused.stderr);
    let refusal = metrics_of(&run, "refused-prom");
    let what = "refusal's file";
    assert_eq!(
        outcomes(&refusal),
        BTreeMap::from([
            ("error".to_owned(), 0.0),
            ("refusal".to_owned(), 1.0),
            ("success".to_owned(), 0.0)
        ])
    );
    assert_eq!(
        value(&refusal, "linstor_provision_disk_run_exit_code", what),
        1.0
    );
    assert_eq!(
        value(&refusal, "linstor_provision_disk_run_lvm_commands", what),
        0.0
    );
    assert!(
        value(
            &refusal,
            "linstor_provision_disk_run_duration_seconds",
            what
        ) > 0.0
    );
    assert_eq!(
        only(&refusal, "linstor_provision_disk_run_exit_code", what).labels["partition_label"],
        "other-storage"
    );
    // A run that holds after the refusal has written its file before waiting.
    run.expect_success("hold");
    let held = metrics_of(&run, "held-prom");
    let what = "held run's file";
    assert_eq!(outcomes(&held)["refusal"], 1.0);
    assert_eq!(
        value(&held, "linstor_provision_disk_run_holding", what),
        1.0
    );
    assert_eq!(
        value(&held, "linstor_provision_disk_run_exit_code", what),
        1.0
    );
    run.expect_success("held-stop");
    let mut names: Vec<&str> = run
        .expect_success("final-ls")
        .stdout
        .split_whitespace()
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["held.prom", "lpd.prom", "refused.prom"],
        "no temporary file left"
    );
}
