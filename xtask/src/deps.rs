//! Installs the Debian packages needed to build the tool and run its VM tests.
use std::process::Command;

/// Debian packages for the build (libudev, bindgen's libclang, liblvm2cmd) and the
/// checks around it. The VM test bed's own packages (qemu, GPT tools, the guest's
/// lvm2/udev/mkfs userspace) are `vmtest::HOST_PACKAGES`.
pub const PACKAGES: &[&str] = &[
    "pkg-config",
    "libudev-dev",
    "libclang-dev",
    "clang",
    "liblvm2-dev",
    // libblkid-rs: signature and partition-table probing (the glibc build links it).
    "libblkid-dev",
    "cpio",
    "zstd",
    // deploy/ checks: systemd-analyze verify, and a venv for kubernetes-validate.
    "systemd",
    "python3-venv",
    // tests/vm_systemd_unit.rs: the Debian root its systemd boot runs (vmtest::SystemdBoot).
    "mmdebstrap",
    // `cargo xtask bench`: execve counts, peak RSS, and the ratio chart.
    "strace",
    "time",
    "gnuplot-nox",
    // xtask's image tests run the arm64 image's thin_check (qemu-aarch64-static).
    "qemu-user-static",
    // promtool: tests/vm_metrics.rs and tests/deploy_manifests.rs check the metrics
    // text and the alert rules with it.
    "prometheus",
];

/// Offline Kubernetes schema validator (ships the published JSON schemas), from PyPI.
const KUBERNETES_VALIDATE: &str = "kubernetes-validate==1.37.0";
const VALIDATOR_VENV: &str = "target/deploy-check/venv";

fn missing_packages(packages: &[&'static str]) -> Vec<&'static str> {
    packages
        .iter()
        .copied()
        .filter(|package| {
            let installed = Command::new("dpkg-query")
                .args(["-W", "-f=${Status}", package])
                .output()
                .map(|out| String::from_utf8_lossy(&out.stdout).contains("install ok installed"))
                .unwrap_or(false);
            !installed
        })
        .collect()
}

pub fn install() -> Result<(), String> {
    install_debian_packages()?;
    install_schema_validator()
}

/// A private venv holding kubernetes-validate, used by tests/deploy_manifests.rs.
fn install_schema_validator() -> Result<(), String> {
    let tool = format!("{VALIDATOR_VENV}/bin/kubernetes-validate");
    let works = Command::new(&tool)
        .arg("--version")
        .output()
        .map(|out| out.status.success())
        .unwrap_or(false);
    if works {
        return Ok(());
    }
    crate::run(Command::new("python3").args(["-m", "venv", VALIDATOR_VENV]))?;
    crate::run(Command::new(format!("{VALIDATOR_VENV}/bin/pip")).args([
        "install",
        "--quiet",
        KUBERNETES_VALIDATE,
    ]))
}

/// Everything: these, the VM bed's, and those `cargo xtask dist` (for every
/// architecture, so the aarch64 cross toolchain too) and `cargo xtask image` need
/// (listed in dist and image.rs so that those alone, e.g. in a container build,
/// install no VM tooling).
fn install_debian_packages() -> Result<(), String> {
    install_packages(PACKAGES)?;
    install_packages(vmtest::HOST_PACKAGES)?;
    // qemu-system-aarch64 for tests/vm_arm64.rs.
    install_packages(vmtest::AARCH64_HOST_PACKAGES)?;
    for arch in crate::dist::Arch::ALL {
        crate::dist::install_packages_for(arch)?;
    }
    install_packages(crate::image::PACKAGES)?;
    install_packages(crate::image::ARCHIVE_PACKAGES)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Adds `arch` (a Debian architecture name, e.g. arm64) to dpkg's foreign
/// architectures unless it is there or native, so that `<package>:<arch>` can be
/// installed. The package lists are refreshed by [`install_packages`], which runs
/// `apt-get update` before installing whatever is missing.
pub fn ensure_foreign_architecture(arch: &str) -> Result<(), String> {
    let listed = |args: &[&str]| -> Result<bool, String> {
        let out = Command::new("dpkg")
            .args(args)
            .output()
            .map_err(|e| format!("cannot run dpkg {}: {e}", args.join(" ")))?;
        if !out.status.success() {
            return Err(format!(
                "dpkg {} failed with {}",
                args.join(" "),
                out.status
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .any(|known| known == arch))
    };
    if listed(&["--print-architecture"])? || listed(&["--print-foreign-architectures"])? {
        return Ok(());
    }
    if !is_root() {
        return Err(format!(
            "dpkg does not know the {arch} architecture, which the cross build installs packages of; \
             run `sudo cargo xtask deps`, or `sudo dpkg --add-architecture {arch} && sudo apt-get update`"
        ));
    }
    eprintln!("xtask: adding the {arch} architecture to dpkg");
    crate::run(Command::new("dpkg").args(["--add-architecture", arch]))
}

/// Installs those of `packages` that are missing (as root), or says how to.
pub fn install_packages(packages: &[&'static str]) -> Result<(), String> {
    let missing = missing_packages(packages);
    if missing.is_empty() {
        return Ok(());
    }
    if !is_root() {
        return Err(format!(
            "missing Debian packages: {}; run `sudo cargo xtask deps` or `sudo apt-get install {}`",
            missing.join(" "),
            missing.join(" ")
        ));
    }
    eprintln!("xtask: installing {}", missing.join(" "));
    crate::run(Command::new("apt-get").arg("update").arg("-q"))?;
    crate::run(
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}
