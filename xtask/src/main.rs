//! Project automation: `cargo xtask <command>`.
//!
//! - `deps`  installs the Debian packages the build and the VM tests need (as root);
//! - `test`  runs every check and test: fmt, clippy, unit tests, fuzz-style tests,
//!   and the VM tests (a VM that cannot start fails the run, it never skips);
//! - `demo`  boots a throwaway VM with a labeled virtual disk and runs the tool in it;
//! - `shipped-checks` runs clippy and the unit tests on the shipped build's target
//!   and features alone (`test` runs them too);
//! - `dist`  builds the shipping artifact `target/dist/linstor-provision-disk`: one
//!   static musl executable with LVM2's liblvm2cmd linked in;
//! - `crash` runs the full crash-state exploration (tests/vm_crash_states.rs) and
//!   writes its report to `target/crash/`;
//! - `render` writes the image reference of `deploy/image.env` into the manifests and
//!   the Dockerfile;
//! - `release [--dry-run]` builds and verifies a release's assets (see `release.rs`);
//! - `image` builds the container image for amd64 and arm64 from the artifacts, as a
//!   multi-arch OCI archive and one docker-archive per architecture in
//!   `target/image/` (no daemon).
mod bench;
mod bench_scale;
mod crash;
mod demo;
mod deps;
mod dist;
mod image;
mod image_name;
#[cfg(test)]
mod module_graph;
mod packages;
mod release;

use packages::{cargo, run};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("deps") => deps::install(),
        Some("test") => deps::install().and_then(|()| test(&args[1..])),
        Some("bench") if args.iter().any(|a| a == "--scale") => {
            deps::install().and_then(|()| bench_scale::run())
        }
        Some("bench") => deps::install().and_then(|()| bench::run(&args[1..])),
        Some("demo") => deps::install().and_then(|()| demo::run(&args[1..])),
        Some("crash") => deps::install().and_then(|()| crash::run_crash(&args[1..])),
        Some("dist") => dist::command(&args[1..]),
        Some("render") => image_name::command(&args[1..]),
        Some("release") => {
            packages::install_packages(packages::DIST).and_then(|()| release::command(&args[1..]))
        }
        Some("shipped-checks") => packages::install_for_dist(packages::Arch::X86_64)
            .and_then(|()| shipped_feature_checks(&args[1..])),
        Some("image") => {
            packages::install_packages(packages::DIST).and_then(|()| image::run(&args[1..]))
        }
        _ => {
            eprintln!(
                "usage: cargo xtask <deps|test|demo|crash|shipped-checks|dist|image|render|release>\n\
                 \x20 deps   install the Debian packages needed to build and test (needs root)\n\
                 \x20 test   fmt + clippy + unit tests + VM tests (everything CI runs)\n\
                 \x20 demo   boot a throwaway VM with a disk labeled linstor-storage and run the tool\n\
                 \x20 crash  explore crash states of every scenario (x86_64, arm64), report in target/crash/:\n\
                 \x20        [--seed N] [--states N] [--jobs N] [--arches x86_64,arm64], or --replay DIR --state N\n\
                 \x20 shipped-checks  clippy and unit tests of the shipped build alone (musl, no udev,\n\
                 \x20        static LVM2 and libblkid; part of `test`)\n\
                 \x20 dist   build target/dist/linstor-provision-disk (static musl, LVM2 linked in);\n\
                 \x20        `dist --target aarch64` (or arm64) builds target/dist/aarch64/linstor-provision-disk,\n\
                 \x20        `--target all` both\n\
                 \x20 image  build the amd64 + arm64 container image: target/image/linstor-provision-disk.oci.tar\n\
                 \x20        (multi-arch index), .docker.tar (amd64) and .arm64.docker.tar;\n\
                 \x20        `image --rootfs-only` writes only the amd64 image's files to target/image/rootfs/\n\
                 \x20 render  write deploy/image.env's IMAGE and SOURCE into deploy/*.yaml and the Dockerfile\n\
                 \x20 release [--dry-run]  build both binaries and the image, write target/release-assets/\n\
                 \x20        (binaries, OCI archive, SBOM, manifests, SHA256SUMS), push the image index with\n\
                 \x20        skopeo (--dry-run: to the OCI layout target/release-oci/) and verify them"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The VM scenarios that run a second time with the dist artifact as the binary
/// under test (tests/common/mod.rs reads `LINSTOR_PROVISION_DISK_BIN`). The static
/// build has no libudev backend; `vm_discovery` then checks that `--discovery udev`
/// is rejected and runs its udev steps with the sysfs backend.
const ENGINE_VM_TESTS: &[&str] = &[
    "vm_provision",
    "vm_recovery",
    "vm_seed_adoption",
    "vm_discovery",
];

/// VM scenarios that run only with the dist artifact: the binary that ships is
/// the one whose refusals, recovery and LINSTOR-readiness they prove.
const ARTIFACT_VM_TESTS: &[&str] = &[
    "vm_bad_inputs",
    // A seeded sample (2 states per scenario; arm64: fresh provision only).
    "vm_crash_states",
    "vm_durable_writes",
    "vm_foreign_lvm",
    "vm_host_lvm",
    "vm_kill_torture",
    "vm_metrics",
    "vm_leftovers",
    "vm_linstor",
    "vm_operator_inputs",
    "vm_ours_only",
    "vm_partition_labels",
    "vm_pool_life",
    "vm_pool_preflight",
    "vm_preflight",
    "vm_scale",
    "vm_signatures",
    "vm_torn_metadata",
    "vm_stale_pool_metadata",
];

/// VM scenarios that test what ships around the artifact: the container image run by
/// runc and podman (`LINSTOR_PROVISION_DISK_IMAGE_DIR` names the folder with its
/// archives) and the systemd unit.
const IMAGE_VM_TESTS: &[&str] = &["vm_image_runc", "vm_image_podman", "vm_systemd_unit"];

/// VM scenarios of the arm64 artifact in an arm64 guest
/// (`LINSTOR_PROVISION_DISK_ARM64_BIN` names it).
const ARM64_VM_TESTS: &[&str] = &["vm_arm64"];

/// Builds the multi-arch image twice, in two folders, from `artifacts` (one per
/// architecture), and fails unless both builds have the same image index digest
/// (which covers every variant's manifest). Returns the first folder.
fn reproducible_image(
    artifacts: &[(dist::Arch, std::path::PathBuf)],
) -> Result<std::path::PathBuf, String> {
    let dir = image::image_dir(image::IMAGE_SUBDIR);
    let first = image::build(artifacts, &dir)?;
    let second = image::build(artifacts, &image::image_dir("image-check"))?;
    if first.index_digest != second.index_digest {
        return Err(format!(
            "the image is not reproducible: {} has index {} (manifests {:?}), {} has {} \
             (manifests {:?}); compare the two archives' blobs to see what differs",
            first.oci_archive.display(),
            first.index_digest,
            first.manifests,
            second.oci_archive.display(),
            second.index_digest,
            second.manifests
        ));
    }
    eprintln!(
        "xtask: image reproducible: two builds gave index {} (manifests {:?})",
        first.index_digest, first.manifests
    );
    Ok(dir)
}

/// Integration test targets of the main package (`tests/*.rs`), by name.
fn integration_tests() -> Result<Vec<String>, String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests");
    let entries =
        std::fs::read_dir(&dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut names = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
            .path();
        if path.extension().is_some_and(|e| e == "rs") {
            if let Some(stem) = path.file_stem() {
                names.push(stem.to_string_lossy().into_owned());
            }
        }
    }
    names.sort();
    Ok(names)
}

/// Clippy and the unit tests on what ships: the musl target with the dist build's
/// features and environment (no libudev, liblvm2cmd and libblkid linked
/// statically), so code only that build compiles (the sysfs-only discovery, the
/// musl allocator) is linted and tested too, not only the glibc build's.
fn shipped_feature_checks(extra: &[String]) -> Result<(), String> {
    let shipped = dist::StaticBuild::ensure(dist::Arch::X86_64)?;
    run(shipped
        .cargo(&[
            "clippy",
            "--package",
            "linstor-provision-disk",
            "--all-targets",
            "--locked",
        ])?
        .args(["--", "-D", "warnings"]))?;
    // A static musl executable runs on this (glibc) host as it is.
    run(shipped
        .cargo(&[
            "test",
            "--package",
            "linstor-provision-disk",
            "--lib",
            "--bins",
            "--locked",
        ])?
        .args(extra))
}

fn test(extra: &[String]) -> Result<(), String> {
    let started = std::time::Instant::now();
    run(cargo().args(["fmt", "--all", "--check"]))?;
    deps::actionlint()?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    let lint_done = started.elapsed();
    // The shipping artifact first: tests/vm_static.rs boots it in a VM without any
    // lvm2 userspace, and the engine scenarios run again with it below.
    let artifact = dist::run()?;
    let artifacts = [
        (dist::Arch::X86_64, artifact.clone()),
        (dist::Arch::Aarch64, dist::run_for(dist::Arch::Aarch64)?),
    ];
    let image_dir = reproducible_image(&artifacts)?;
    // The release's assets from the binaries and image just built (nothing is built
    // again), pushed to a local OCI layout instead of the registry, and verified.
    release::assemble(&artifacts, &image::oci_archive_path(&image_dir), true)?;
    let dist_done = started.elapsed();
    let tests = integration_tests()?;
    for name in ARTIFACT_VM_TESTS
        .iter()
        .chain(IMAGE_VM_TESTS)
        .chain(ARM64_VM_TESTS)
    {
        if !tests.iter().any(|t| t == name) {
            return Err(format!(
                "ARTIFACT_VM_TESTS, IMAGE_VM_TESTS or ARM64_VM_TESTS names {name}, but tests/{name}.rs does not exist"
            ));
        }
    }
    // Unit tests of every crate, the test bed's own tests, then every integration
    // test not reserved for the artifact, with the debug build.
    run(cargo()
        .args(["test", "--workspace", "--lib", "--bins"])
        .args(extra))?;
    run(cargo()
        .args(["test", "--package", "vmtest", "--tests"])
        .args(extra)
        .env("LINSTOR_PROVISION_DISK_REQUIRE_VM", "1"))?;
    let mut debug_pass = cargo();
    debug_pass.args(["test", "--package", "linstor-provision-disk"]);
    for name in tests.iter().filter(|t| {
        !ARTIFACT_VM_TESTS.contains(&t.as_str())
            && !IMAGE_VM_TESTS.contains(&t.as_str())
            && !ARM64_VM_TESTS.contains(&t.as_str())
    }) {
        debug_pass.args(["--test", name]);
    }
    run(debug_pass
        .args(extra)
        .env("LINSTOR_PROVISION_DISK_REQUIRE_VM", "1")
        .env("LINSTOR_PROVISION_DISK_DIST", &artifact))?;
    let debug_done = started.elapsed();
    shipped_feature_checks(extra)?;
    let tests_done = started.elapsed();
    let mut again = cargo();
    again.args(["test", "--package", "linstor-provision-disk"]);
    for name in ENGINE_VM_TESTS.iter().chain(ARTIFACT_VM_TESTS) {
        again.args(["--test", name]);
    }
    run(again
        .args(extra)
        .env("LINSTOR_PROVISION_DISK_REQUIRE_VM", "1")
        .env("LINSTOR_PROVISION_DISK_DIST", &artifact)
        .env("LINSTOR_PROVISION_DISK_BIN", &artifact)
        .env(
            "LINSTOR_PROVISION_DISK_ARM64_BIN",
            dist::artifact_path_for(dist::Arch::Aarch64),
        ))?;
    // The arm64 artifact (built for the image above) in an arm64 guest.
    let mut arm64_pass = cargo();
    arm64_pass.args(["test", "--package", "linstor-provision-disk"]);
    for name in ARM64_VM_TESTS {
        arm64_pass.args(["--test", name]);
    }
    run(arm64_pass
        .args(extra)
        .env("LINSTOR_PROVISION_DISK_REQUIRE_VM", "1")
        .env(
            "LINSTOR_PROVISION_DISK_ARM64_BIN",
            dist::artifact_path_for(dist::Arch::Aarch64),
        ))?;
    let artifact_done = started.elapsed();
    let mut image_pass = cargo();
    image_pass.args(["test", "--package", "linstor-provision-disk"]);
    for name in IMAGE_VM_TESTS {
        image_pass.args(["--test", name]);
    }
    run(image_pass
        .args(extra)
        .env("LINSTOR_PROVISION_DISK_REQUIRE_VM", "1")
        .env("LINSTOR_PROVISION_DISK_BIN", &artifact)
        .env("LINSTOR_PROVISION_DISK_IMAGE_DIR", &image_dir))?;
    let all_done = started.elapsed();
    eprintln!(
        "xtask: test timings: fmt+clippy {:.0?}, dist and image twice {:.0?}, unit and debug-build tests {:.0?}, clippy and unit tests of the shipped feature set {:.0?}, VM tests with the dist artifact {:.0?}, image VM tests {:.0?}; total {:.0?}",
        lint_done,
        dist_done - lint_done,
        debug_done - dist_done,
        tests_done - debug_done,
        artifact_done - tests_done,
        all_done - artifact_done,
        all_done
    );
    Ok(())
}
