//! What `deps`, `dist` and `image` share, so none of them imports another's
//! internals: the architectures that ship, every Debian package list, installing
//! packages (as root), the workspace's folders and running a command. Nothing here
//! imports another xtask module (the `module_graph_has_no_cycle` test in main.rs
//! keeps it that way).
use std::path::{Path, PathBuf};
use std::process::Command;

/// The architectures the artifact ships for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    pub const ALL: [Arch; 2] = [Arch::X86_64, Arch::Aarch64];

    /// Rust's target triple.
    pub fn rust_target(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-unknown-linux-musl",
            Arch::Aarch64 => "aarch64-unknown-linux-musl",
        }
    }

    /// Debian's name (dpkg architecture).
    pub fn debian_arch(self) -> &'static str {
        match self {
            Arch::X86_64 => "amd64",
            Arch::Aarch64 => "arm64",
        }
    }

    /// The OCI image platform's `architecture`.
    pub fn oci_arch(self) -> &'static str {
        match self {
            Arch::X86_64 => "amd64",
            Arch::Aarch64 => "arm64",
        }
    }

    /// The ELF header's e_machine (EM_X86_64, EM_AARCH64).
    pub fn elf_machine(self) -> u16 {
        match self {
            Arch::X86_64 => 62,
            Arch::Aarch64 => 183,
        }
    }

    /// The name `--target` takes; the artifact's folder below `target/dist/`.
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }

    /// One architecture by any of its usual names (Rust's, Debian's, the kernel's).
    pub fn parse(name: &str) -> Option<Arch> {
        match name {
            "x86_64" | "amd64" | "x86_64-unknown-linux-musl" => Some(Arch::X86_64),
            "aarch64" | "arm64" | "aarch64-unknown-linux-musl" => Some(Arch::Aarch64),
            _ => None,
        }
    }
}

/// Debian packages for the build (libudev, bindgen's libclang, liblvm2cmd) and the
/// checks around it. The VM test bed's own packages (qemu, GPT tools, the guest's
/// lvm2/udev/mkfs userspace) are `vmtest::HOST_PACKAGES`.
pub const DEV: &[&str] = &[
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

/// Debian packages the static build needs (`cargo xtask deps` installs them too;
/// `cargo xtask dist` alone, e.g. in a container build, installs only these). The
/// aarch64 build adds [`AARCH64_CROSS`].
pub const DIST: &[&str] = &[
    "musl-tools",
    "gcc",
    "make",
    "dpkg-dev",
    "xz-utils",
    "linux-libc-dev",
    "libclang-dev",
    "pkg-config",
];

/// Debian packages the aarch64 build needs on top of [`DIST`];
/// `musl-dev:arm64` needs the arm64 architecture added to dpkg.
pub const AARCH64_CROSS: &[&str] = &[
    "gcc-aarch64-linux-gnu",
    "binutils-aarch64-linux-gnu",
    "musl-dev:arm64",
    "linux-libc-dev-arm64-cross",
];

/// Debian packages the image's files come from: this machine's thin_check (with the
/// libraries it loads) and the copyright files of what the static binary links
/// (dmsetup carries LVM2's, musl its own). The other architecture's thin_check comes
/// from the Debian archive through apt-get and dpkg-deb, which every Debian has.
pub const IMAGE: &[&str] = &["thin-provisioning-tools", "dmsetup", "musl"];

/// Debian packages the archives need besides: skopeo writes the docker-archive and
/// the release's local OCI layout.
pub const IMAGE_ARCHIVES: &[&str] = &["skopeo"];

/// Installs (as root) the Debian packages the static build for `arch` needs, adding
/// the arm64 dpkg architecture first for aarch64 (`musl-dev:arm64`).
pub fn install_for_dist(arch: Arch) -> Result<(), String> {
    install_packages(DIST)?;
    match arch {
        Arch::X86_64 => Ok(()),
        Arch::Aarch64 => {
            ensure_foreign_architecture(arch.debian_arch())?;
            install_packages(AARCH64_CROSS)
        }
    }
}

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
    run(Command::new("dpkg").args(["--add-architecture", arch]))
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
    run(Command::new("apt-get").arg("update").arg("-q"))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

/// The workspace's root folder (this crate's parent).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// `target/`, or `CARGO_TARGET_DIR` (relative to the workspace).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace_root().join(dir),
        None => workspace_root().join("target"),
    }
}

/// Runs a command, failing with its name when it does not succeed.
pub fn run(command: &mut Command) -> Result<(), String> {
    eprintln!("xtask: running {command:?}");
    let status = command
        .status()
        .map_err(|e| format!("cannot start {command:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{command:?} failed with {status}"))
    }
}

/// The cargo that runs xtask.
pub fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// A `name = "value"` line of the `[package]` section (the values this reads hold no
/// escapes).
pub fn package_field(cargo_toml: &str, name: &str) -> Option<String> {
    let mut in_package = false;
    for line in cargo_toml.lines().map(str::trim) {
        if line.starts_with('[') {
            in_package = line == "[package]";
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if in_package && key.trim() == name {
            let value = value.trim();
            return value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .map(str::to_owned);
        }
    }
    None
}

/// The main package's version (Cargo.toml's `[package] version`): the release's.
pub fn package_version() -> Result<String, String> {
    let manifest = workspace_root().join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .map_err(|e| format!("cannot read {}: {e}", manifest.display()))?;
    package_field(&text, "version")
        .ok_or_else(|| format!("{} has no [package] version", manifest.display()))
}
