//! The aarch64 guest's kernel and userland. Both come from one Debian arm64 root
//! made by `mmdebstrap --variant=extract --architectures=arm64`: extract unpacks
//! the packages (with their dependencies) and runs no maintainer script, so no
//! arm64 code runs on the host and no emulation (binfmt, qemu-user) is needed. The
//! host's apt configuration is not touched. The root is cached under
//! `<cache>/arm64-root` (lock + READY marker naming its inputs), like the x86
//! kernel.
//!
//! The guest is built like the x86 one ([`crate::initramfs`]): the same skeleton,
//! `/init`, `step` library, lvm.conf and kernel modules, with the programs taken
//! from the arm64 root, each with the libraries its ELF headers name (the host's
//! `ldd` can't run arm64 programs). busybox makes its own applet links at boot.
//!
//! [`Arch::Aarch64Pages16K`] boots the same userland on Debian's 16 KiB-page kernel
//! ([`KERNEL_16K_PACKAGE`], only in bookworm-security), unpacked the same way into
//! `<cache>/arm64-16k-kernel` (its `/boot` and `/lib/modules` kept, the rest of that
//! root dropped) and cached like the root.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cpio::Tree;
use crate::host::{self, io_err, run};
use crate::initramfs::{self, Collector, Userspace};
use crate::kernel::{self, Kernel};
use crate::sysroot::Sysroot;
use crate::{elf, Arch, BootOptions, VmError};

/// Debian suite and mirror of the arm64 root.
const SUITE: &str = "bookworm";
const MIRROR: &str = "http://deb.debian.org/debian";

/// Debian's arm64 kernel with 16 KiB pages (the metapackage of the current
/// 6.12 build). Bookworm has it only in its security suite, [`SECURITY_SOURCE`].
pub const KERNEL_16K_PACKAGE: &str = "linux-image-6.12-arm64-16k";
/// The apt sources of the 16K kernel's root: bookworm for its dependencies, and the
/// security suite that carries the kernel (deb.debian.org serves it, as on the host).
const KERNEL_16K_SOURCES: [&str; 2] = [
    "deb http://deb.debian.org/debian bookworm main",
    SECURITY_SOURCE,
];
const SECURITY_SOURCE: &str = "deb http://deb.debian.org/debian-security bookworm-security main";

/// The packages of the arm64 root (mmdebstrap adds their dependencies): the
/// kernel, and the userland the x86 guest takes from the host, as far as an
/// engine test needs it.
pub const AARCH64_ROOT_PACKAGES: &[&str] = &[
    "linux-image-cloud-arm64",
    "busybox-static",
    "dash",
    "lvm2",
    "dmsetup",
    "thin-provisioning-tools",
    "util-linux",
    "mount",
    "kmod",
    "gdisk",
    "e2fsprogs",
];

/// Host packages an aarch64 boot needs besides [`crate::HOST_PACKAGES`].
pub const AARCH64_HOST_PACKAGES: &[&str] = &["qemu-system-arm", "mmdebstrap", "dash"];

/// Host programs an aarch64 boot runs: (name, package).
const HOST_PROGRAMS: &[(&str, &str)] = &[
    ("qemu-system-aarch64", "qemu-system-arm"),
    ("mmdebstrap", "mmdebstrap"),
    ("sgdisk", "gdisk"),
    ("dash", "dash"),
    ("depmod", "kmod"),
    ("modprobe", "kmod"),
];

/// Guest programs, found in the root's `/usr/sbin`, `/usr/bin`, `/sbin` or `/bin`.
const PROGRAMS: &[&str] = &[
    "lvm",
    "dmsetup",
    "pdata_tools",
    "mke2fs",
    "mkfs.ext4",
    "e2fsck",
    "blkid",
    "wipefs",
    "lsblk",
    "blockdev",
    "partx",
    "losetup",
    "mount",
    "umount",
    "findmnt",
    "flock",
    "mkswap",
    "sgdisk",
    "kmod",
    "modprobe",
    "insmod",
    "lsmod",
    "rmmod",
];

const PROGRAM_DIRS: &[&str] = &["/usr/sbin", "/usr/bin", "/sbin", "/bin"];

/// Where arm64 libraries live in a Debian root (multiarch first).
const LIB_DIRS: &[&str] = &[
    "/lib/aarch64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/lib",
    "/usr/lib",
];

/// Left out of the root (dpkg `path-exclude`): nothing the guest reads.
const EXCLUDED_PATHS: &[&str] = &[
    "/usr/share/doc/*",
    "/usr/share/man/*",
    "/usr/share/info/*",
    "/usr/share/locale/*",
];

/// The unpacked arm64 root: the kernel to boot and the files for the guest.
#[derive(Debug, Clone)]
pub(crate) struct Root {
    /// [`Arch::Aarch64`] (the root's own cloud kernel, 4 KiB pages) or
    /// [`Arch::Aarch64Pages16K`] (the 16K kernel, unpacked beside the root).
    pub(crate) arch: Arch,
    pub(crate) kernel: Kernel,
    pub(crate) sysroot: Sysroot,
}

fn sysroot(dir: &Path) -> Sysroot {
    Sysroot {
        dir: dir.to_path_buf(),
        lib_dirs: LIB_DIRS,
        machine: elf::EM_AARCH64,
        arch: "arm64",
    }
}

/// Checks the host programs and the options an aarch64 boot supports.
pub(crate) fn check(opts: &BootOptions) -> Result<(), VmError> {
    let mut missing: Vec<&str> = Vec::new();
    let mut packages: Vec<&str> = Vec::new();
    for (program, package) in HOST_PROGRAMS {
        if host::find_program(program, package).is_err() {
            missing.push(program);
            if !packages.contains(package) {
                packages.push(package);
            }
        }
    }
    if !missing.is_empty() {
        return Err(VmError::MissingTool {
            what: missing.join(", "),
            package: packages.join(" "),
            detail: "needed to build and boot the aarch64 guest".into(),
        });
    }
    if opts.udevd || opts.containers {
        return Err(VmError::Spec(
            "the aarch64 guest has no udevd and no container tooling; boot it with \
             `udevd: false, containers: false`"
                .into(),
        ));
    }
    Ok(())
}

/// What the root is made from; a change rebuilds it.
fn root_inputs() -> String {
    format!(
        "mmdebstrap --variant=extract --architectures=arm64 suite={SUITE} mirror={MIRROR} \
         include={} exclude={} v1",
        AARCH64_ROOT_PACKAGES.join(","),
        EXCLUDED_PATHS.join(",")
    )
}

/// Returns the cached arm64 root with the kernel of `arch` (its own for
/// [`Arch::Aarch64`], the 16K kernel for [`Arch::Aarch64Pages16K`]), building
/// either on first use (or when its inputs changed).
pub(crate) fn ensure(cache: &Path, arch: Arch) -> Result<Root, VmError> {
    let mut root = ensure_root(cache)?;
    match arch {
        Arch::Aarch64 => {}
        Arch::Aarch64Pages16K => root.kernel = ensure_16k_kernel(cache)?,
        Arch::X86_64 => {
            return Err(VmError::Spec(
                "the arm64 guest root was asked for an x86_64 boot".into(),
            ))
        }
    }
    root.arch = arch;
    Ok(root)
}

/// Returns the cached arm64 root, building it on first use (or when its inputs
/// changed).
fn ensure_root(cache: &Path) -> Result<Root, VmError> {
    let dir = cache.join("arm64-root");
    let root_dir = dir.join("root");
    let ready = dir.join("READY");
    let inputs = format!("{:016x}", crate::content_hash(root_inputs().as_bytes()));
    let _lock = host::lock_cache(cache, "arm64-root")?;
    if let Ok(text) = std::fs::read_to_string(&ready) {
        let mut lines = text.lines();
        if let (Some(key), Some(version)) = (lines.next(), lines.next()) {
            let k = kernel::kernel_at(&root_dir, version.trim());
            if key.trim() == inputs
                && k.vmlinuz.is_file()
                && k.modules_dir().join("modules.dep").is_file()
            {
                return Ok(Root {
                    arch: Arch::Aarch64,
                    kernel: k,
                    sysroot: sysroot(&root_dir),
                });
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
    let started = std::time::Instant::now();
    eprintln!("vmtest: building the arm64 guest root with mmdebstrap (once; cached)");
    let mut cmd = Command::new(host::find_program("mmdebstrap", "mmdebstrap")?);
    cmd.args([
        "--variant=extract",
        "--architectures=arm64",
        "--format=directory",
        "--quiet",
    ])
    .arg(format!("--include={}", AARCH64_ROOT_PACKAGES.join(",")));
    for path in EXCLUDED_PATHS {
        cmd.arg(format!("--dpkgopt=path-exclude={path}"));
    }
    cmd.arg(SUITE).arg(&root_dir).arg(MIRROR);
    run(
        &mut cmd,
        "mmdebstrap could not unpack the arm64 guest root; it needs Debian's archive \
         (deb.debian.org); delete target/vmtest-cache/arm64-root and retry",
    )?;
    let version = kernel::find_version(&root_dir)?;
    run(
        Command::new("depmod")
            .arg("-b")
            .arg(&root_dir)
            .arg(&version),
        "depmod (package kmod) failed on the arm64 kernel's modules",
    )?;
    let k = kernel::kernel_at(&root_dir, &version);
    host::write_atomic(&ready, format!("{inputs}\n{version}\n").as_bytes())?;
    eprintln!(
        "vmtest: arm64 root with kernel {version} ready in {:.0?}",
        started.elapsed()
    );
    Ok(Root {
        arch: Arch::Aarch64,
        kernel: k,
        sysroot: sysroot(&root_dir),
    })
}

/// What the 16K kernel is made from; a change unpacks it again.
fn kernel_16k_inputs() -> String {
    format!(
        "mmdebstrap --variant=extract --architectures=arm64 suite={SUITE} include={KERNEL_16K_PACKAGE} \
         sources={} kept=boot,lib/modules v1",
        KERNEL_16K_SOURCES.join("|")
    )
}

/// Returns the cached 16 KiB-page kernel, unpacking it on first use: mmdebstrap
/// extracts the package with its dependencies (nothing runs), then only `/boot` and
/// the modules are kept and depmod indexes them.
fn ensure_16k_kernel(cache: &Path) -> Result<Kernel, VmError> {
    let dir = cache.join("arm64-16k-kernel");
    let kernel_root = dir.join("root");
    let ready = dir.join("READY");
    let inputs = format!(
        "{:016x}",
        crate::content_hash(kernel_16k_inputs().as_bytes())
    );
    let _lock = host::lock_cache(cache, "arm64-16k-kernel")?;
    if let Ok(text) = std::fs::read_to_string(&ready) {
        let mut lines = text.lines();
        if let (Some(key), Some(version)) = (lines.next(), lines.next()) {
            let k = kernel::kernel_at(&kernel_root, version.trim());
            if key.trim() == inputs
                && k.vmlinuz.is_file()
                && k.modules_dir().join("modules.dep").is_file()
            {
                return Ok(k);
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let extract = dir.join("extract");
    std::fs::create_dir_all(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
    let started = std::time::Instant::now();
    eprintln!("vmtest: unpacking {KERNEL_16K_PACKAGE} with mmdebstrap (once; cached)");
    let mut cmd = Command::new(host::find_program("mmdebstrap", "mmdebstrap")?);
    cmd.args([
        "--variant=extract",
        "--architectures=arm64",
        "--format=directory",
        "--quiet",
    ])
    .arg(format!("--include={KERNEL_16K_PACKAGE}"));
    for path in EXCLUDED_PATHS {
        cmd.arg(format!("--dpkgopt=path-exclude={path}"));
    }
    cmd.arg(SUITE).arg(&extract).args(KERNEL_16K_SOURCES);
    run(
        &mut cmd,
        &format!(
            "mmdebstrap could not unpack {KERNEL_16K_PACKAGE}; it needs Debian's archive and its \
             security suite ({SECURITY_SOURCE}); delete target/vmtest-cache/arm64-16k-kernel and retry"
        ),
    )?;
    let version = kernel::find_version(&extract)?;
    if !version.ends_with("-16k") {
        return Err(VmError::Spec(format!(
            "{KERNEL_16K_PACKAGE} unpacked kernel {version}, which is not a 16k flavour"
        )));
    }
    // Keep what the guest boots from; the rest of that root (initramfs-tools, udev,
    // ...) is 150 MB of nothing.
    let modules = extract.join("lib/modules").join(&version);
    let kept_modules = kernel_root.join("lib/modules").join(&version);
    std::fs::create_dir_all(kernel_root.join("lib/modules"))
        .map_err(io_err(format!("creating {}", kernel_root.display())))?;
    for (from, to) in [
        (extract.join("boot"), kernel_root.join("boot")),
        (modules, kept_modules),
    ] {
        std::fs::rename(&from, &to).map_err(io_err(format!(
            "moving {} to {}",
            from.display(),
            to.display()
        )))?;
    }
    std::fs::remove_dir_all(&extract).map_err(io_err(format!("removing {}", extract.display())))?;
    run(
        Command::new("depmod")
            .arg("-b")
            .arg(&kernel_root)
            .arg(&version),
        "depmod (package kmod) failed on the 16K kernel's modules",
    )?;
    let k = kernel::kernel_at(&kernel_root, &version);
    host::write_atomic(&ready, format!("{inputs}\n{version}\n").as_bytes())?;
    eprintln!(
        "vmtest: 16K-page kernel {version} ready in {:.0?}",
        started.elapsed()
    );
    Ok(k)
}

/// The guest path of program `name` in the root.
fn find_program(root: &Sysroot, name: &str) -> Result<PathBuf, VmError> {
    for dir in PROGRAM_DIRS {
        let path = Path::new(dir).join(name);
        if std::fs::symlink_metadata(root.host_path(&path, false)?).is_ok() {
            return Ok(path);
        }
    }
    Err(VmError::Spec(format!(
        "the arm64 root {} has no {name} in {}; add its package to AARCH64_ROOT_PACKAGES",
        root.dir.display(),
        PROGRAM_DIRS.join(", ")
    )))
}

/// The base initramfs of an aarch64 guest (everything but the per-boot overlay).
pub(crate) fn base_tree(root: &Root, userspace: Userspace) -> Result<Tree, VmError> {
    let mut c = Collector::in_root(root.sysroot.clone());
    initramfs::add_skeleton(&mut c);
    // Its applet links are made by /init at boot (see guest::INIT).
    c.add_file_as(
        &root.sysroot.host_path(Path::new("/bin/busybox"), true)?,
        "usr/bin/busybox",
    )?;
    c.tree.dir(initramfs::BUSYBOX_DIR);
    c.add_path(&find_program(&root.sysroot, "dash")?)?;
    c.tree.symlink("usr/bin/sh", "dash");
    for name in PROGRAMS {
        if userspace.wants(name) {
            c.add_path(&find_program(&root.sysroot, name)?)?;
        }
    }
    for target in ["lvm", "pdata_tools"] {
        if userspace.wants(target) {
            initramfs::add_multicall_links(&mut c, target)?;
        }
    }
    let mke2fs_conf = Path::new("/etc/mke2fs.conf");
    if root.sysroot.host_path(mke2fs_conf, true)?.is_file() {
        c.add_path(mke2fs_conf)?;
    }
    initramfs::add_vmtest_files(&mut c, &root.kernel, userspace)?;
    Ok(c.tree)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_packages_are_installed_by_xtask_deps() {
        for (_, package) in HOST_PROGRAMS {
            assert!(
                AARCH64_HOST_PACKAGES.contains(package) || crate::HOST_PACKAGES.contains(package),
                "{package} is in neither AARCH64_HOST_PACKAGES nor HOST_PACKAGES"
            );
        }
    }

    #[test]
    fn paths_resolve_inside_the_root_never_on_the_host() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let root = dir.path();
        std::fs::create_dir_all(root.join("lib/aarch64-linux-gnu")).expect("mkdir");
        std::fs::create_dir_all(root.join("usr")).expect("mkdir");
        std::fs::create_dir_all(root.join("bin")).expect("mkdir");
        std::fs::write(root.join("lib/aarch64-linux-gnu/libc.so.6"), b"x").expect("write");
        std::fs::write(root.join("bin/kmod"), b"x").expect("write");
        // Absolute targets are the root's: /usr/lib -> /lib, /usr/sbin/modprobe -> /bin/kmod.
        std::os::unix::fs::symlink("/lib", root.join("usr/lib")).expect("symlink");
        std::fs::create_dir_all(root.join("usr/sbin")).expect("mkdir");
        std::os::unix::fs::symlink("/bin/kmod", root.join("usr/sbin/modprobe")).expect("symlink");
        std::os::unix::fs::symlink("loop", root.join("bin/loop")).expect("symlink");
        let sysroot = sysroot(root);
        assert_eq!(
            sysroot
                .host_path(Path::new("/usr/lib/aarch64-linux-gnu/libc.so.6"), false)
                .expect("resolves"),
            root.join("lib/aarch64-linux-gnu/libc.so.6")
        );
        assert_eq!(
            sysroot
                .host_path(Path::new("/usr/sbin/modprobe"), true)
                .expect("resolves"),
            root.join("bin/kmod")
        );
        assert_eq!(
            sysroot
                .host_path(Path::new("/usr/sbin/modprobe"), false)
                .expect("resolves"),
            root.join("usr/sbin/modprobe")
        );
        assert_eq!(
            sysroot
                .host_path(Path::new("/usr/../../bin/kmod"), true)
                .expect("resolves"),
            root.join("bin/kmod")
        );
        assert!(sysroot.host_path(Path::new("/bin/loop"), true).is_err());
        assert_eq!(
            find_program(&sysroot, "modprobe").expect("found"),
            PathBuf::from("/usr/sbin/modprobe")
        );
        assert!(find_program(&sysroot, "nonexistent").is_err());
    }
}
