//! Helpers shared by the VM tests: a test bed with this crate's binary, boots that
//! fail loudly, and readers for LVM's JSON reports.
#![allow(dead_code)]
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;
use vmtest::{BootOptions, DiskSpec, GuestRun, Step, TestBed};

pub const BIN: &str = env!("CARGO_BIN_EXE_linstor-provision-disk");

/// Environment variable naming another build of the tool to test instead of
/// [`BIN`] (`cargo xtask test` sets it to the dist artifact for a second run of
/// the engine scenarios).
pub const BIN_OVERRIDE_ENV: &str = "LINSTOR_PROVISION_DISK_BIN";

/// The binary under test: `$LINSTOR_PROVISION_DISK_BIN` when set, else the one
/// cargo built for this test run. A set but missing file fails the test.
pub fn binary_under_test() -> PathBuf {
    match std::env::var_os(BIN_OVERRIDE_ENV) {
        Some(path) if !path.is_empty() => {
            let path = PathBuf::from(path);
            assert!(
                path.is_file(),
                "${BIN_OVERRIDE_ENV} names {}, which does not exist (build it with `cargo xtask dist`)",
                path.display()
            );
            eprintln!("testing {} (from ${BIN_OVERRIDE_ENV})", path.display());
            path
        }
        _ => PathBuf::from(BIN),
    }
}

/// Whether the binary under test has the libudev discovery backend (the static
/// dist build has only sysfs, and rejects `--discovery udev` with exit 2).
pub fn binary_has_udev() -> bool {
    let binary = binary_under_test();
    let status = std::process::Command::new(&binary)
        .args(["--discovery", "udev", "--version"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()))
        .status;
    match status.code() {
        Some(0) => true,
        Some(2) => false,
        other => panic!(
            "{} --discovery udev --version exited {other:?}",
            binary.display()
        ),
    }
}

/// Shell prelude for guest scripts: `$LPD` is the binary, `$P` the common flags;
/// `sum_head BYTES FILE` prints the sha256 of FILE's first BYTES bytes and fails,
/// printing no sum, unless all of them were read (the guest's dash has no
/// `pipefail`: `head … | sha256sum` succeeds with the empty input's sum when the
/// read fails, so two failed reads compare equal).
pub const PRELUDE: &str = "LPD=/usr/local/bin/linstor-provision-disk\n\
P='--partition-label linstor-storage --volume-group linstor-vg --pool linstor-pool --on-failure exit'\n\
mkdir -p /mnt\n\
sum_head() {\n\
  head -c \"$1\" \"$2\" >/tmp/sum-head || { echo \"sum_head: cannot read $2\" >&2; return 1; }\n\
  _sum_n=$(wc -c </tmp/sum-head)\n\
  [ \"$_sum_n\" -eq \"$1\" ] || { echo \"sum_head: read $_sum_n of $1 bytes of $2\" >&2; return 1; }\n\
  sha256sum </tmp/sum-head && rm -f /tmp/sum-head\n\
}\n";

/// Bytes [`sum_step`] sums: the label, the metadata area and the start of the data.
pub const SUM_BYTES: u64 = 4 * 1024 * 1024;

/// A guest step printing the sha256 of `dev`'s first [`SUM_BYTES`]; it fails when
/// the device cannot be read in full.
pub fn sum_step(step: &str, dev: &str) -> String {
    format!("step {step} sum_head {SUM_BYTES} {dev}\n")
}

pub fn bed(disks: Vec<DiskSpec>) -> TestBed {
    match TestBed::new(disks) {
        Ok(bed) => bed.with_binary(&binary_under_test()),
        Err(e) => panic!("could not set up the VM test bed: {e}"),
    }
}

/// The kernel command-line word that lets the tool's fault-injection variables act
/// (src/apply/fault_injection.rs); only boots that inject faults pass it.
pub const FAULT_INJECTION_KEY: &str = "linstor_provision_disk.fault_injection=allow";

pub fn boot(bed: &TestBed, udevd: bool, script: &str) -> GuestRun {
    boot_with(bed, udevd, "", script)
}

/// [`boot`] with the fault-injection key on the kernel command line.
pub fn boot_injecting_faults(bed: &TestBed, udevd: bool, script: &str) -> GuestRun {
    boot_with(bed, udevd, FAULT_INJECTION_KEY, script)
}

fn boot_with(bed: &TestBed, udevd: bool, kernel_args: &str, script: &str) -> GuestRun {
    let options = BootOptions {
        udevd,
        timeout: Duration::from_secs(900),
        kernel_args: kernel_args.to_owned(),
        ..BootOptions::default()
    };
    let script = format!("{PRELUDE}{script}");
    match bed.boot(&options, &script) {
        Ok(run) => {
            eprintln!("guest ran {} steps in {:?}", run.steps.len(), run.elapsed);
            run
        }
        Err(e) => panic!("VM boot failed: {e}"),
    }
}

/// Fails with the step's output unless it exited with `code`.
pub fn expect_exit<'a>(run: &'a GuestRun, name: &str, code: i32) -> &'a Step {
    let step = run.step(name);
    run.check(
        step.exit_code == code,
        &format!(
            "step {name} exited {} (expected {code})\n--- stdout ---\n{}\n--- stderr ---\n{}",
            step.exit_code, step.stdout, step.stderr
        ),
    );
    step
}

/// A successful provisioning run: exit 0 and the seed's success line.
pub fn expect_provisioned<'a>(run: &'a GuestRun, name: &str) -> &'a Step {
    let step = expect_exit(run, name, 0);
    run.check(
        step.stderr
            .contains("disk provisioning completed successfully"),
        &format!("step {name} did not log success:\n{}", step.stderr),
    );
    step
}

pub fn json(run: &GuestRun, name: &str) -> Value {
    let out = &run.expect_success(name).stdout;
    serde_json::from_str(out)
        .unwrap_or_else(|e| panic!("step {name} printed invalid JSON ({e}):\n{out}"))
}

/// Rows of an LVM JSON report (`vgs`/`lvs`/`pvs --reportformat json`).
pub fn rows(run: &GuestRun, name: &str, kind: &str) -> Vec<Value> {
    json(run, name)["report"][0][kind]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

pub fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

pub fn number(value: &Value) -> u64 {
    text(value)
        .parse()
        .unwrap_or_else(|_| panic!("not a number: {value}"))
}

/// The one row of a single-VG `vgs` report.
pub fn vg_row(run: &GuestRun, name: &str) -> Value {
    let all = rows(run, name, "vg");
    match all.as_slice() {
        [one] => one.clone(),
        other => panic!("step {name}: expected one VG row, got {other:?}"),
    }
}

/// LV names (brackets of hidden LVs removed) of an `lvs` report.
pub fn lv_names(run: &GuestRun, name: &str) -> Vec<String> {
    rows(run, name, "lv")
        .iter()
        .map(|row| {
            text(&row["lv_name"])
                .trim_matches(|c| c == '[' || c == ']')
                .to_owned()
        })
        .collect()
}

/// The numbered steps a `--dry-run` printed (`  1. create ...` → `create ...`).
pub fn dry_run_steps(run: &GuestRun, name: &str) -> Vec<String> {
    run.expect_success(name)
        .stdout
        .lines()
        .filter_map(|line| {
            let trimmed = line.trim_start();
            let (number, rest) = trimmed.split_once(". ")?;
            number.parse::<u32>().ok().map(|_| rest.to_owned())
        })
        .collect()
}

/// The actions a real run logged, in order (each applied action is one INFO line
/// whose message is the action's description).
pub fn applied_steps(run: &GuestRun, name: &str, dry: &[String]) -> Vec<String> {
    let stderr = &run.step(name).stderr;
    let mut found = Vec::new();
    for line in stderr.lines() {
        for step in dry {
            if line.contains(step.as_str()) {
                found.push(step.clone());
            }
        }
    }
    found
}

/// Grows a disk image and its only partition on the host, between boots: the
/// partition keeps its start sector and label and ends at the new end of the disk.
pub fn grow_disk(image: &std::path::Path, size: &str, label: &str) {
    use std::process::Command;
    let run = |cmd: &mut Command| -> String {
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
        assert!(
            out.status.success(),
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let info = run(Command::new("sgdisk").arg("--info=1").arg(image));
    let first_sector = info
        .lines()
        .find_map(|line| line.strip_prefix("First sector: "))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("sgdisk shows no first sector:\n{info}"))
        .to_owned();
    run(Command::new("truncate").args(["--size", size]).arg(image));
    run(Command::new("sgdisk")
        .arg("--move-second-header")
        .arg(image));
    run(Command::new("sgdisk")
        .arg("--delete=1")
        .arg(format!("--new=1:{first_sector}:0"))
        .arg(format!("--change-name=1:{label}"))
        .arg(image));
}

/// Boots with `options` and keeps the whole guest console in
/// `target/tmp/<test>-<first step>.console`, for reading what an assertion on one
/// step does not show.
pub fn boot_keeping_console(
    bed: &TestBed,
    options: &BootOptions,
    script: &str,
    test: &str,
) -> GuestRun {
    let run = match bed.boot(options, script) {
        Ok(run) => run,
        Err(e) => panic!("VM boot failed: {e}"),
    };
    let log = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "{test}-{}.console",
        run.steps.first().map_or("none", |s| s.name.as_str())
    ));
    match std::fs::write(&log, &run.console) {
        Ok(()) => eprintln!("guest console: {}", log.display()),
        Err(e) => eprintln!("cannot keep the guest console in {}: {e}", log.display()),
    }
    run
}

/// Collects failed checks instead of stopping at the first, for VM tests with many
/// steps: `finish` fails with all of them.
#[derive(Default)]
pub struct Checks(pub Vec<String>);

impl Checks {
    pub fn that(&mut self, ok: bool, what: impl Into<String>) {
        if !ok {
            self.0.push(what.into());
        }
    }

    pub fn exit(&mut self, run: &GuestRun, step: &str, code: i32) {
        let s = run.step(step);
        self.that(
            s.exit_code == code,
            format!(
                "{step}: exited {} (expected {code}); stderr:\n{}",
                s.exit_code,
                s.stderr.trim_end()
            ),
        );
    }

    pub fn says(&mut self, run: &GuestRun, step: &str, needle: &str) {
        let s = run.step(step);
        self.that(
            s.stderr.contains(needle),
            format!("{step}: stderr lacks {needle:?}:\n{}", s.stderr.trim_end()),
        );
    }

    /// A refused run: exit 1, no LVM command ran before the refusal (the tool logs
    /// each at debug), and its message says each of `needles`.
    pub fn refused_before_lvm(&mut self, run: &GuestRun, step: &str, needles: &[&str]) {
        self.exit(run, step, 1);
        let stderr = &run.step(step).stderr;
        eprintln!(
            "{step}: {}",
            stderr.trim_end().lines().last().unwrap_or_default()
        );
        self.that(
            !stderr.contains("running lvm command"),
            format!("{step}: an LVM command ran before the refusal:\n{stderr}"),
        );
        for needle in needles {
            self.says(run, step, needle);
        }
    }

    /// Both steps succeeded and printed the same: a failed read is never "unchanged".
    pub fn same(&mut self, run: &GuestRun, before: &str, after: &str) {
        let (a, b) = (run.step(before), run.step(after));
        self.that(
            a.exit_code == 0 && b.exit_code == 0,
            format!(
                "{before} exited {}, {after} exited {}: cannot compare them\n{}\n---\n{}",
                a.exit_code,
                b.exit_code,
                a.stderr.trim_end(),
                b.stderr.trim_end()
            ),
        );
        self.that(
            a.stdout == b.stdout,
            format!(
                "{before} → {after} changed:\n{}\n---\n{}",
                a.stdout, b.stdout
            ),
        );
    }

    pub fn steady(&mut self, run: &GuestRun, step: &str) {
        self.exit(run, step, 0);
        self.says(run, step, "lvm_commands=0");
        self.that(
            !run.step(step).stderr.contains("running lvm command"),
            format!("{step} ran LVM commands:\n{}", run.step(step).stderr),
        );
    }

    pub fn finish(self) {
        assert!(
            self.0.is_empty(),
            "{} check(s) failed:\n\n{}",
            self.0.len(),
            self.0.join("\n\n")
        );
    }
}

/// Environment variable naming the folder with the image archives `cargo xtask image`
/// writes (default: `<workspace>/target/image`).
pub const IMAGE_DIR_ENV: &str = "LINSTOR_PROVISION_DISK_IMAGE_DIR";

/// An image archive built by `cargo xtask image` (`linstor-provision-disk.oci.tar` or
/// `linstor-provision-disk.docker.tar`). A missing archive fails the test: the image
/// tests never pass by skipping.
pub fn image_archive(file: &str) -> PathBuf {
    let dir = match std::env::var_os(IMAGE_DIR_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/image"),
    };
    let archive = dir.join(file);
    assert!(
        archive.is_file(),
        "{} does not exist: build the image archives with `cargo xtask image` \
         (or point ${IMAGE_DIR_ENV} at a folder holding {file})",
        archive.display()
    );
    eprintln!("testing the image {}", archive.display());
    archive
}

/// Boot options for a guest that runs containers: udevd (as on a Kubernetes node),
/// runc/umoci/podman shipped, root on a tmpfs, room for image storage.
pub fn container_boot_options() -> BootOptions {
    BootOptions {
        udevd: true,
        containers: true,
        memory_mib: 2048,
        timeout: Duration::from_secs(900),
        ..BootOptions::default()
    }
}
