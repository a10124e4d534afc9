//! `deploy/linstor-provision-disk.service`, booted: a minimal Debian root with
//! systemd as PID 1 (`vmtest::SystemdBoot`), the static binary in
//! `/usr/local/bin`, the repo's unit installed byte for byte and enabled (all its
//! hardening on), `/etc/default/linstor-provision-disk` written per boot, and a
//! stand-in `linstor-satellite.service` that records when it started.
//!
//! Boot 1, the right label: the unit ends active (exited, Result=success), the
//! satellite starts after it, and the thin pool exists, active, tagged with the
//! env file's SATELLITE_ID. Boot 2, same disk, a label no partition has: the unit
//! fails, the satellite never starts (enabling the unit made it `Requires=` it),
//! the journal names the missing label and the labels that exist, and the VG is
//! untouched.
//!
//! The binary under test (`$LINSTOR_PROVISION_DISK_BIN`) must be the static
//! artifact of `cargo xtask dist`: that is what the unit's install notes ship.
mod common;

use common::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use vmtest::{DiskSpec, GuestRun, SystemdBoot, TestBed};

const UNIT: &str = "linstor-provision-disk.service";
const SATELLITE: &str = "linstor-satellite.service";
const SATELLITE_ID: &str = "node-systemd-01";
const MISSING_LABEL: &str = "no-such-partition";

/// Stand-in for LINSTOR's satellite: records its start (uptime) in /run and on
/// the console. Enabled like a real satellite (multi-user.target wants it).
const STAND_IN_UNIT: &str = "[Unit]\n\
Description=Stand-in for the LINSTOR satellite (vmtest)\n\n\
[Service]\n\
Type=oneshot\n\
RemainAfterExit=yes\n\
ExecStart=/usr/local/sbin/linstor-satellite-stand-in\n\n\
[Install]\n\
WantedBy=multi-user.target\n";

const STAND_IN_SCRIPT: &str = "#!/bin/sh\n\
read up _ </proc/uptime\n\
echo \"$up\" >/run/linstor-satellite.started\n\
echo \"linstor-satellite stand-in started at uptime $up\" >/dev/console\n";

/// What the reporter prints after multi-user.target and the satellite's job.
const REPORT: &str = r#"
SHOW='systemctl show -p ActiveState,SubState,Result,ExecMainStatus,ExecMainStartTimestampMonotonic,ExecMainExitTimestampMonotonic,ActiveEnterTimestampMonotonic,InactiveExitTimestampMonotonic'
step ours $SHOW linstor-provision-disk.service
step satellite $SHOW linstor-satellite.service
step wiring systemctl show -p Requires,After linstor-satellite.service
step installed systemctl show -p FragmentPath,DropInPaths,UnitFileState linstor-provision-disk.service
step hardening systemctl show -p ProtectSystem,ReadWritePaths,PrivateTmp,PrivateNetwork,MemoryDenyWriteExecute,NoNewPrivileges,ProtectClock,DevicePolicy,DeviceAllow linstor-provision-disk.service
step unit-file cat /etc/systemd/system/linstor-provision-disk.service
step journal journalctl -b --no-pager -o cat -u linstor-provision-disk.service
step satellite-journal journalctl -b --no-pager -o cat -u linstor-satellite.service
step marker cat /run/linstor-satellite.started
step backup cat /etc/lvm/backup/linstor-vg
step vgs vgs --reportformat json -o vg_name,vg_tags,vg_seqno linstor-vg
step lvs lvs --reportformat json -o lv_name,lv_attr linstor-vg
step failed systemctl list-units --failed --no-legend --plain
"#;

fn env_file(label: &str) -> String {
    format!(
        "# written by tests/vm_systemd_unit.rs\n\
         PARTITION_LABEL={label}\n\
         VOLUME_GROUP=linstor-vg\n\
         POOL=linstor-pool\n\
         SATELLITE_ID={SATELLITE_ID}\n"
    )
}

fn repo_unit() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(UNIT)
}

/// Whether an ELF executable has no program interpreter (PT_INTERP), i.e. is
/// statically linked. None: not a 64-bit little-endian ELF file.
fn is_static_elf(bytes: &[u8]) -> Option<bool> {
    if bytes.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let u16_at = |at: usize| Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?));
    let phoff =
        usize::try_from(u64::from_le_bytes(bytes.get(0x20..0x28)?.try_into().ok()?)).ok()?;
    let entry_size = usize::from(u16_at(0x36)?);
    let entries = usize::from(u16_at(0x38)?);
    for i in 0..entries {
        let at = phoff.checked_add(i.checked_mul(entry_size)?)?;
        let p_type = u32::from_le_bytes(bytes.get(at..at.checked_add(4)?)?.try_into().ok()?);
        if p_type == 3 {
            return Some(false);
        }
    }
    Some(true)
}

/// The binary under test, which must be the static artifact.
fn static_binary() -> std::path::PathBuf {
    let binary = binary_under_test();
    let bytes =
        std::fs::read(&binary).unwrap_or_else(|e| panic!("cannot read {}: {e}", binary.display()));
    assert_eq!(
        is_static_elf(&bytes),
        Some(true),
        "{} is not a static executable; this test boots the shipped artifact: build it with \
         `cargo xtask dist` and set {BIN_OVERRIDE_ENV}=target/dist/linstor-provision-disk",
        binary.display()
    );
    binary
}

fn boot(bed: &TestBed, label: &str, test: &str) -> GuestRun {
    let spec = SystemdBoot::new(REPORT)
        .unit_from(&repo_unit())
        .unwrap_or_else(|e| panic!("cannot read the unit: {e}"))
        .unit(SATELLITE, STAND_IN_UNIT)
        .file(
            "/usr/local/sbin/linstor-satellite-stand-in",
            STAND_IN_SCRIPT,
            0o755,
        )
        .file(
            "/etc/default/linstor-provision-disk",
            env_file(label),
            0o644,
        )
        .enable(UNIT)
        .enable(SATELLITE)
        .report_after(SATELLITE)
        .report_after(UNIT);
    let spec = SystemdBoot {
        timeout: Duration::from_secs(600),
        ..spec
    };
    let run = match bed.boot_systemd(&spec) {
        Ok(run) => run,
        Err(e) => panic!("systemd boot failed: {e}"),
    };
    eprintln!(
        "{test}: reporter started at guest uptime {:?}; boot took {:?}",
        run.guest_uptime_at_script, run.elapsed
    );
    let log =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("vm_systemd_unit-{test}.console"));
    match std::fs::write(&log, &run.console) {
        Ok(()) => eprintln!("guest console: {}", log.display()),
        Err(e) => eprintln!("cannot keep the guest console in {}: {e}", log.display()),
    }
    run
}

/// `systemctl show` output as a map.
fn properties(run: &GuestRun, step: &str) -> BTreeMap<String, String> {
    run.expect_success(step)
        .stdout
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn property<'a>(props: &'a BTreeMap<String, String>, key: &str) -> &'a str {
    props
        .get(key)
        .unwrap_or_else(|| panic!("systemctl show printed no {key}: {props:?}"))
}

fn monotonic(props: &BTreeMap<String, String>, key: &str) -> u64 {
    property(props, key)
        .parse()
        .unwrap_or_else(|_| panic!("{key} is not a number: {props:?}"))
}

/// What both boots must show: the repo's unit, unchanged and without drop-ins,
/// enabled, wired as the satellite's requirement, and its hardening in force
/// (no device allow-list: LVM needs every block device and /dev/mapper/control).
fn assert_installed_as_shipped(run: &GuestRun, checks: &mut Checks) {
    let shipped =
        std::fs::read(repo_unit()).unwrap_or_else(|e| panic!("cannot read the unit: {e}"));
    checks.that(
        run.expect_success("unit-file").stdout_raw == shipped,
        "the guest's unit file differs from deploy/linstor-provision-disk.service",
    );
    let installed = properties(run, "installed");
    checks.that(
        property(&installed, "FragmentPath")
            == "/etc/systemd/system/linstor-provision-disk.service"
            && property(&installed, "DropInPaths").is_empty()
            && property(&installed, "UnitFileState") == "enabled",
        format!("the unit is not installed as shipped and enabled: {installed:?}"),
    );
    let wiring = properties(run, "wiring");
    checks.that(
        property(&wiring, "Requires")
            .split_whitespace()
            .any(|u| u == UNIT)
            && property(&wiring, "After")
                .split_whitespace()
                .any(|u| u == UNIT),
        format!("{SATELLITE} does not require and follow {UNIT}: {wiring:?}"),
    );
    let hardening = properties(run, "hardening");
    for (key, value) in [
        ("ProtectSystem", "full"),
        ("ReadWritePaths", "-/etc/lvm"),
        ("PrivateTmp", "yes"),
        ("PrivateNetwork", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("NoNewPrivileges", "yes"),
        ("ProtectClock", "yes"),
        ("DevicePolicy", "auto"),
    ] {
        checks.that(
            property(&hardening, key) == value,
            format!(
                "{UNIT}: {key} is {:?}, expected {value:?}",
                property(&hardening, key)
            ),
        );
    }
    // systemctl prints DeviceAllow= only when the list has entries.
    checks.that(
        hardening
            .get("DeviceAllow")
            .is_none_or(|allowed| allowed.is_empty()),
        format!(
            "{UNIT} has a device allow-list: {:?}",
            hardening.get("DeviceAllow")
        ),
    );
}

#[test]
fn unit_provisions_before_the_satellite_and_holds_it_back_on_failure() {
    let binary = static_binary();
    let bed = match TestBed::new(vec![
        DiskSpec::new("storage", 1024).partition("linstor-storage", None)
    ]) {
        Ok(bed) => bed.with_binary(&binary),
        Err(e) => panic!("could not set up the VM test bed: {e}"),
    };

    // Boot 1: the right label.
    let good = boot(&bed, "linstor-storage", "good-label");
    let mut checks = Checks::default();
    assert_installed_as_shipped(&good, &mut checks);
    let ours = properties(&good, "ours");
    checks.that(
        property(&ours, "ActiveState") == "active"
            && property(&ours, "SubState") == "exited"
            && property(&ours, "Result") == "success"
            && property(&ours, "ExecMainStatus") == "0",
        format!(
            "{UNIT} did not succeed: {ours:?}\njournal:\n{}",
            good.step("journal").stdout
        ),
    );
    let satellite = properties(&good, "satellite");
    checks.that(
        property(&satellite, "ActiveState") == "active"
            && property(&satellite, "Result") == "success",
        format!("{SATELLITE} did not start: {satellite:?}"),
    );
    let ours_done = monotonic(&ours, "ExecMainExitTimestampMonotonic");
    let satellite_started = monotonic(&satellite, "ExecMainStartTimestampMonotonic");
    checks.that(
        ours_done > 0 && satellite_started >= ours_done,
        format!(
            "the satellite started (at {satellite_started} µs) before provisioning ended (at {ours_done} µs)"
        ),
    );
    let marker = good.expect_success("marker").stdout.trim().to_owned();
    let marker_us = marker
        .parse::<f64>()
        .map(|s| (s * 1e6) as u64)
        .unwrap_or_else(|_| panic!("the stand-in's marker is not an uptime: {marker:?}"));
    checks.that(
        marker_us >= ours_done,
        format!(
            "the stand-in ran at uptime {marker} s, before provisioning ended ({ours_done} µs)"
        ),
    );
    let journal = &good.step("journal").stdout;
    checks.that(
        journal.contains("disk provisioning completed successfully"),
        format!("the journal lacks the success line:\n{journal}"),
    );
    // LVM's metadata backup went through ProtectSystem=full (ReadWritePaths=/etc/lvm).
    checks.that(
        good.expect_success("backup")
            .stdout
            .contains(&format!("linstor-satellite-id={SATELLITE_ID}")),
        format!(
            "/etc/lvm/backup/linstor-vg lacks the tag:\n{}",
            good.step("backup").stdout
        ),
    );
    let vg = vg_row(&good, "vgs");
    checks.that(
        text(&vg["vg_tags"]) == format!("linstor-satellite-id={SATELLITE_ID}"),
        format!("the VG is not tagged with the env file's ID: {vg}"),
    );
    let pool = rows(&good, "lvs", "lv")
        .into_iter()
        .find(|row| text(&row["lv_name"]) == "linstor-pool");
    checks.that(
        pool.as_ref()
            .is_some_and(|row| text(&row["lv_attr"]).starts_with("twi-a")),
        format!("no active thin pool linstor-pool: {pool:?}"),
    );
    checks.that(
        good.expect_success("failed").stdout.trim().is_empty(),
        format!(
            "failed units after a good boot:\n{}",
            good.step("failed").stdout
        ),
    );
    checks.finish();

    // Boot 2, same disk: a label no partition has.
    let bad = boot(&bed, MISSING_LABEL, "missing-label");
    let mut checks = Checks::default();
    assert_installed_as_shipped(&bad, &mut checks);
    let ours = properties(&bad, "ours");
    checks.that(
        property(&ours, "ActiveState") == "failed"
            && property(&ours, "Result") == "exit-code"
            && property(&ours, "ExecMainStatus") != "0",
        format!("{UNIT} did not fail: {ours:?}"),
    );
    let satellite = properties(&bad, "satellite");
    checks.that(
        property(&satellite, "ActiveState") == "inactive"
            && monotonic(&satellite, "ExecMainStartTimestampMonotonic") == 0,
        format!("{SATELLITE} ran although provisioning failed: {satellite:?}"),
    );
    let satellite_journal = &bad.step("satellite-journal").stdout;
    checks.that(
        satellite_journal.contains("Dependency failed for"),
        format!("systemd did not hold {SATELLITE} back for its failed requirement:\n{satellite_journal}"),
    );
    checks.that(
        bad.step("marker").exit_code != 0,
        format!(
            "the stand-in left its marker: {}",
            bad.step("marker").stdout
        ),
    );
    let journal = &bad.step("journal").stdout;
    checks.that(
        journal.contains(MISSING_LABEL) && journal.contains("linstor-storage"),
        format!("the journal does not name the missing label and the existing one:\n{journal}"),
    );
    checks.that(
        bad.expect_success("failed").stdout.contains(UNIT),
        format!(
            "systemctl does not list {UNIT} as failed:\n{}",
            bad.step("failed").stdout
        ),
    );
    let vg_after = vg_row(&bad, "vgs");
    checks.that(
        vg_after["vg_seqno"] == vg["vg_seqno"] && vg_after["vg_tags"] == vg["vg_tags"],
        format!("the failed run changed the VG: {vg} → {vg_after}"),
    );
    checks.finish();
}
