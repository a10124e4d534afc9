//! Installs the Debian packages needed to build the tool and run its VM tests.
use std::process::Command;

/// Debian packages: the build (libudev, bindgen's libclang, liblvm2cmd), and the
/// VM test bed (qemu, GPT tools, the guest's lvm2/udev/mkfs userspace).
pub const PACKAGES: &[&str] = &[
    "pkg-config",
    "libudev-dev",
    "libclang-dev",
    "clang",
    "liblvm2-dev",
    "qemu-system-x86",
    "gdisk",
    "lvm2",
    "thin-provisioning-tools",
    "udev",
    "kmod",
    "busybox-static",
    "cpio",
    "e2fsprogs",
    "xfsprogs",
    "btrfs-progs",
    "cryptsetup-bin",
    "dosfstools",
    "util-linux",
    "zstd",
];

fn missing_packages() -> Vec<&'static str> {
    PACKAGES
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
    let missing = missing_packages();
    if missing.is_empty() {
        return Ok(());
    }
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false);
    if !is_root {
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
