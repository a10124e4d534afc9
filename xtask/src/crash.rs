//! `cargo xtask crash`: the full crash-state exploration of `tests/vm_crash_states.rs`
//! (every scenario on x86_64 and arm64, as many states as found up to `--states`),
//! with its report in `target/crash/` (`report.md`, `report.json`, and per
//! architecture and scenario the kept recording a failed state is replayed from).
//!
//! ```text
//! cargo xtask crash [--seed N] [--states N] [--samples N] [--jobs N] [--arches x86_64,arm64]
//!                   [--scenarios a,b] [--arm64-scenarios a,b]
//! cargo xtask crash --replay target/crash/x86_64/fresh --state 17
//! ```
//! The binaries under test are the dist artifacts, built first, unless
//! `LINSTOR_PROVISION_DISK_BIN` / `LINSTOR_PROVISION_DISK_ARM64_BIN` name others.

use std::path::PathBuf;

use crate::{cargo, dist, run};

/// Flags and the test's environment variable each sets.
const FLAGS: &[(&str, &str)] = &[
    ("--seed", "CRASH_SEED"),
    ("--states", "CRASH_STATES"),
    ("--samples", "CRASH_SAMPLES"),
    ("--jobs", "CRASH_JOBS"),
    ("--batch", "CRASH_BATCH"),
    ("--arches", "CRASH_ARCHES"),
    ("--scenarios", "CRASH_SCENARIOS"),
    ("--arm64-scenarios", "CRASH_ARM64_SCENARIOS"),
    ("--replay", "CRASH_REPLAY"),
    ("--state", "CRASH_STATE"),
];

/// The full run's defaults: every state found (up to 100,000) in every scenario, and
/// every scenario on arm64 too.
const DEFAULTS: &[(&str, &str)] = &[
    ("CRASH_STATES", "100000"),
    (
        "CRASH_ARM64_SCENARIOS",
        "fresh,reset,activate,grow-inactive,grow-active,seed,devices-file,devices-file-reset",
    ),
    ("CRASH_JOBS", "2"),
];

pub fn run_crash(args: &[String]) -> Result<(), String> {
    let mut env: Vec<(String, String)> = DEFAULTS
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        let Some((_, var)) = FLAGS.iter().find(|(f, _)| f == flag) else {
            return Err(format!(
                "cargo xtask crash: unknown argument {flag:?} (known: {})",
                FLAGS.iter().map(|(f, _)| *f).collect::<Vec<_>>().join(", ")
            ));
        };
        let value = rest
            .next()
            .ok_or_else(|| format!("cargo xtask crash: {flag} needs a value"))?;
        env.retain(|(k, _)| k != var);
        env.push((var.to_string(), value.clone()));
    }
    let arches = env
        .iter()
        .find(|(k, _)| k == "CRASH_ARCHES")
        .map_or("x86_64,arm64".to_owned(), |(_, v)| v.clone());
    let x86 = binary("LINSTOR_PROVISION_DISK_BIN", dist::Arch::X86_64)?;
    let arm64 = if arches.contains("arm") {
        Some(binary(
            "LINSTOR_PROVISION_DISK_ARM64_BIN",
            dist::Arch::Aarch64,
        )?)
    } else {
        None
    };
    let report = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/crash");
    let mut test = cargo();
    test.args([
        "test",
        "--package",
        "linstor-provision-disk",
        "--test",
        "vm_crash_states",
        "--",
        "--nocapture",
    ])
    .env("LINSTOR_PROVISION_DISK_REQUIRE_VM", "1")
    .env("LINSTOR_PROVISION_DISK_BIN", &x86)
    .env("LINSTOR_PROVISION_DISK_DIST", &x86)
    .env("CRASH_REPORT_DIR", &report);
    if let Some(arm64) = &arm64 {
        test.env("LINSTOR_PROVISION_DISK_ARM64_BIN", arm64);
    }
    test.envs(env);
    let result = run(&mut test);
    eprintln!(
        "xtask: crash report: {}",
        report.join("report.md").display()
    );
    result
}

/// `$var` when set, else the dist artifact of `arch`, built now.
fn binary(var: &str, arch: dist::Arch) -> Result<PathBuf, String> {
    match std::env::var_os(var).filter(|v| !v.is_empty()) {
        Some(path) => {
            eprintln!(
                "xtask: crash: testing {} (from ${var})",
                PathBuf::from(&path).display()
            );
            Ok(PathBuf::from(path))
        }
        None => dist::run_for(arch),
    }
}
