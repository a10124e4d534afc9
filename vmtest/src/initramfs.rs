//! Builds the guest's initramfs: a cached base (busybox, kernel modules,
//! lvm2 and friends) plus a small per-boot overlay (script, test binaries).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cpio::{Node, Tree};
use crate::host::{self, io_err, run};
use crate::kernel::Kernel;
use crate::sysroot::{normalize, Sysroot};
use crate::{elf, guest, VmError};

/// Modules loaded at every boot (with their dependencies).
pub(crate) const BOOT_MODULES: &[&str] = &[
    "virtio_pci",
    "virtio_blk",
    "virtio_rng",
    "dm_mod",
    "dm_thin_pool",
];

/// Modules shipped but loaded only on demand (`modprobe NAME` in a script,
/// `BootOptions::modules`, or the kernel's own autoload on mount / DM table load).
pub(crate) const EXTRA_MODULES: &[&str] = &[
    "dm_crypt",
    "dm_snapshot",
    "dm_zero",
    "dm_flakey",
    "dm_delay",
    "loop",
    "xfs",
    "btrfs",
    "xts",
    "algif_skcipher",
    "algif_hash",
    // `mdadm --create` needs the md driver and its personality.
    "md_mod",
    "raid1",
];

/// Programs copied from the host with their shared libraries:
/// (name, Debian package that provides it).
const PROGRAMS: &[(&str, &str)] = &[
    ("lvm", "lvm2"),
    ("dmsetup", "dmsetup"),
    ("pdata_tools", "thin-provisioning-tools"),
    ("mke2fs", "e2fsprogs"),
    ("mkfs.ext4", "e2fsprogs"),
    ("e2fsck", "e2fsprogs"),
    ("fsck.ext4", "e2fsprogs"),
    ("tune2fs", "e2fsprogs"),
    ("dumpe2fs", "e2fsprogs"),
    ("debugfs", "e2fsprogs"),
    ("resize2fs", "e2fsprogs"),
    ("mkfs.xfs", "xfsprogs"),
    ("xfs_repair", "xfsprogs"),
    ("xfs_growfs", "xfsprogs"),
    ("xfs_db", "xfsprogs"),
    ("mkfs.btrfs", "btrfs-progs"),
    ("btrfs", "btrfs-progs"),
    ("mkfs.vfat", "dosfstools"),
    // Makers of foreign signatures the tool must refuse.
    ("mkfs.f2fs", "f2fs-tools"),
    ("mkfs.exfat", "exfatprogs"),
    ("make-bcache", "bcache-tools"),
    ("mdadm", "mdadm"),
    ("mkswap", "util-linux"),
    ("blkid", "util-linux"),
    ("wipefs", "util-linux"),
    ("lsblk", "util-linux"),
    ("blockdev", "util-linux"),
    ("partx", "util-linux"),
    ("losetup", "mount"),
    ("mount", "mount"),
    ("umount", "mount"),
    ("findmnt", "util-linux"),
    // Holds LVM's lock files in tests (busybox has no flock).
    ("flock", "util-linux"),
    ("sgdisk", "gdisk"),
    ("cryptsetup", "cryptsetup-bin"),
    ("udevadm", "udev"),
    ("kmod", "kmod"),
    ("modprobe", "kmod"),
    ("insmod", "kmod"),
    ("lsmod", "kmod"),
    ("rmmod", "kmod"),
];

/// Container tooling shipped with `BootOptions::containers`: (name, package).
pub(crate) const CONTAINER_PROGRAMS: &[(&str, &str)] = &[
    ("runc", "runc"),
    ("umoci", "umoci"),
    ("podman", "podman"),
    ("conmon", "conmon"),
    ("catatonit", "catatonit"),
];

/// Files podman finds at fixed places rather than in PATH: (host path, package).
pub(crate) const CONTAINER_FILES: &[(&str, &str)] = &[
    ("/usr/libexec/podman/catatonit", "catatonit"),
    ("/usr/lib/podman/netavark", "netavark"),
    (
        "/usr/share/containers/seccomp.json",
        "golang-github-containers-common",
    ),
];

/// Host programs used outside the guest, or specially: (name, package).
pub(crate) const HOST_PROGRAMS: &[(&str, &str)] = &[
    ("qemu-system-x86_64", "qemu-system-x86"),
    ("sgdisk", "gdisk"),
    ("busybox", "busybox-static"),
    ("dash", "dash"),
    ("depmod", "kmod"),
    ("dpkg", "dpkg"),
    ("apt-get", "apt"),
    ("ldd", "libc-bin"),
];

/// Every Debian package the bed needs on the host.
pub(crate) fn all_programs() -> impl Iterator<Item = &'static (&'static str, &'static str)> {
    HOST_PROGRAMS.iter().chain(PROGRAMS)
}

/// Multi-call binaries whose host symlinks (e.g. pvcreate -> lvm) are shipped too.
const MULTICALL: &[&str] = &["lvm", "pdata_tools"];

pub(crate) const BUSYBOX_DIR: &str = "usr/lib/vmtest/busybox";

pub(crate) struct Collector {
    pub(crate) tree: Tree,
    ldd_done: BTreeSet<PathBuf>,
    /// Where [`Collector::add_path`] reads from: None, the host itself (libraries
    /// found with `ldd`); Some, a root of another architecture (libraries found from
    /// the ELF headers, in that root).
    sysroot: Option<Sysroot>,
}

/// Maps a host path to its place in the guest. The guest is "usr-merged":
/// /bin, /sbin, /lib and /lib64 are symlinks into /usr.
pub(crate) fn guest_path(host: &Path) -> String {
    let s = host.to_string_lossy();
    let s = s.trim_start_matches('/');
    for top in ["bin", "sbin", "lib", "lib64"] {
        if s == top {
            return format!("usr/{top}");
        }
        if let Some(rest) = s.strip_prefix(&format!("{top}/")) {
            return format!("usr/{top}/{rest}");
        }
    }
    s.to_string()
}

impl Collector {
    pub(crate) fn new() -> Collector {
        Collector {
            tree: Tree::new(),
            ldd_done: BTreeSet::new(),
            sysroot: None,
        }
    }

    /// A collector whose [`Collector::add_path`] takes guest paths from `sysroot`.
    pub(crate) fn in_root(sysroot: Sysroot) -> Collector {
        Collector {
            sysroot: Some(sysroot),
            ..Collector::new()
        }
    }

    /// Copies a host path (following symlink chains, each link kept as a link)
    /// to the same place in the guest; ELF executables bring their libraries.
    pub(crate) fn add_path(&mut self, host: &Path) -> Result<(), VmError> {
        if let Some(root) = self.sysroot.clone() {
            return self.add_root_path(&root, host);
        }
        let gp = guest_path(host);
        if self.tree.contains(&gp) {
            return Ok(());
        }
        let meta = std::fs::symlink_metadata(host)
            .map_err(io_err(format!("reading {}", host.display())))?;
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(host)
                .map_err(io_err(format!("reading link {}", host.display())))?;
            self.tree.symlink(&gp, &target.to_string_lossy());
            let resolved = if target.is_absolute() {
                target
            } else {
                host.parent().unwrap_or(Path::new("/")).join(target)
            };
            return self.add_path(&resolved);
        }
        if meta.is_dir() {
            self.tree.dir(&gp);
            return Ok(());
        }
        self.add_file_as(host, &gp)
    }

    /// Copies a host file's contents to `guest` (no symlink following at
    /// the destination); if it is a dynamic ELF executable, adds its libraries.
    pub(crate) fn add_file_as(&mut self, host: &Path, guest: &str) -> Result<(), VmError> {
        use std::os::unix::fs::PermissionsExt;
        let data = std::fs::read(host).map_err(io_err(format!("reading {}", host.display())))?;
        let mode = std::fs::metadata(host)
            .map_err(io_err(format!("reading {}", host.display())))?
            .permissions()
            .mode();
        let is_elf = data.starts_with(b"\x7fELF");
        if let Some(root) = self.sysroot.clone() {
            if is_elf && mode & 0o111 != 0 {
                self.add_root_libraries(&root, &host.display().to_string(), &data)?;
            }
            self.tree.file(guest, data, mode & 0o7777);
            return Ok(());
        }
        self.tree.file(guest, data, mode & 0o7777);
        if is_elf && mode & 0o111 != 0 {
            self.add_libraries(host)?;
        }
        Ok(())
    }

    /// [`Collector::add_path`] for a guest path in `root`: symlinks are kept as
    /// symlinks and followed (inside the root).
    fn add_root_path(&mut self, root: &Sysroot, path: &Path) -> Result<(), VmError> {
        let path = normalize(path);
        let gp = guest_path(&path);
        if self.tree.contains(&gp) {
            return Ok(());
        }
        let host = root.host_path(&path, false)?;
        let meta = std::fs::symlink_metadata(&host).map_err(io_err(format!(
            "reading {} (the guest's {})",
            host.display(),
            path.display()
        )))?;
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&host)
                .map_err(io_err(format!("reading link {}", host.display())))?;
            self.tree.symlink(&gp, &target.to_string_lossy());
            let resolved = if target.is_absolute() {
                target
            } else {
                path.parent().unwrap_or(Path::new("/")).join(target)
            };
            return self.add_root_path(root, &resolved);
        }
        if meta.is_dir() {
            self.tree.dir(&gp);
            return Ok(());
        }
        self.add_file_as(&host, &gp)
    }

    /// The program interpreter and `DT_NEEDED` libraries of ELF `data` (the file
    /// `what`), and theirs in turn, from `root`; refuses an executable of another
    /// architecture (it could not run in the guest).
    fn add_root_libraries(
        &mut self,
        root: &Sysroot,
        what: &str,
        data: &[u8],
    ) -> Result<(), VmError> {
        let needs = elf::loader_needs(data)
            .map_err(|e| VmError::Spec(format!("{what} is no usable ELF file: {e}")))?;
        if needs.machine != root.machine {
            return Err(VmError::Spec(format!(
                "{what} is an executable for ELF machine {} but the guest is {} (ELF machine {}); \
                 build it for {}",
                needs.machine, root.arch, root.machine, root.arch
            )));
        }
        if let Some(interpreter) = &needs.interpreter {
            self.add_root_path(root, Path::new(interpreter))?;
        }
        for name in &needs.needed {
            let lib = root.find_library(name, what)?;
            if !self.ldd_done.insert(lib.clone()) {
                continue;
            }
            self.add_root_path(root, &lib)?;
            let host = root.host_path(&lib, true)?;
            let lib_data =
                std::fs::read(&host).map_err(io_err(format!("reading {}", host.display())))?;
            self.add_root_libraries(root, &lib.display().to_string(), &lib_data)?;
        }
        Ok(())
    }

    fn add_libraries(&mut self, host: &Path) -> Result<(), VmError> {
        if !self.ldd_done.insert(host.to_path_buf()) {
            return Ok(());
        }
        let out = Command::new("ldd")
            .arg(host)
            .output()
            .map_err(io_err("running ldd (package libc-bin)"))?;
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            // Static executables: "not a dynamic executable".
            let all = format!("{text}{}", String::from_utf8_lossy(&out.stderr));
            if all.contains("not a dynamic executable") || all.contains("statically linked") {
                return Ok(());
            }
            return Err(VmError::Command {
                command: format!("ldd {}", host.display()),
                status: out.status.to_string(),
                stderr: all,
                hint: "could not list the shared libraries of a file for the guest".into(),
            });
        }
        for lib in parse_ldd(&text).map_err(|missing| VmError::MissingTool {
            what: format!("shared library {missing} (needed by {})", host.display()),
            package: "the package that provides it (see `ldd` output)".into(),
            detail: "ldd reports it as not found".into(),
        })? {
            self.add_path(&lib)?;
        }
        Ok(())
    }
}

/// Extracts library paths from `ldd` output; Err(name) for a missing library.
pub(crate) fn parse_ldd(text: &str) -> Result<Vec<PathBuf>, String> {
    let mut libs = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some((name, rest)) = line.split_once("=>") {
            let rest = rest.trim();
            if rest.starts_with("not found") {
                return Err(name.trim().to_string());
            }
            if let Some(path) = rest.split_whitespace().next() {
                if path.starts_with('/') {
                    libs.push(PathBuf::from(path));
                }
            }
        } else if line.starts_with('/') {
            if let Some(path) = line.split_whitespace().next() {
                libs.push(PathBuf::from(path));
            }
        }
    }
    Ok(libs)
}

/// Which optional userspace goes into a base initramfs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Userspace {
    /// lvm (with every `lvm` link), dmsetup and /etc/lvm/lvm.conf.
    pub(crate) lvm2: bool,
    /// pdata_tools (thin_check, thin_dump, … links).
    pub(crate) thin_tools: bool,
    /// runc, umoci, podman and its helpers, with their configuration.
    pub(crate) containers: bool,
}

impl Userspace {
    /// Part of the cached file's name, so variants don't replace each other.
    pub(crate) fn tag(self) -> String {
        let mut tag = String::new();
        if !self.lvm2 {
            tag.push_str("nolvm-");
        }
        if !self.thin_tools {
            tag.push_str("nothin-");
        }
        if self.containers {
            tag.push_str("containers-");
        }
        tag
    }

    pub(crate) fn wants(self, program: &str) -> bool {
        match program {
            "lvm" | "dmsetup" => self.lvm2,
            "pdata_tools" => self.thin_tools,
            _ => true,
        }
    }
}

/// Builds the base tree (everything but the per-boot overlay).
pub(crate) fn base_tree(kernel: &Kernel, userspace: Userspace) -> Result<Tree, VmError> {
    let mut c = Collector::new();
    add_skeleton(&mut c);

    // busybox: the shell and the basic utilities, as applet links in their own
    // folder, last in PATH, so real tools always win.
    let busybox = host::find_program("busybox", "busybox-static")?;
    c.add_file_as(&busybox, "usr/bin/busybox")?;
    let list = run(
        Command::new(&busybox).arg("--list"),
        "busybox --list failed; install busybox-static",
    )?;
    for applet in list.split_whitespace() {
        if applet != "busybox" {
            c.tree
                .symlink(&format!("{BUSYBOX_DIR}/{applet}"), "/usr/bin/busybox");
        }
    }
    // The shell is dash, not busybox sh: Debian's busybox-static prefers its
    // own applets over PATH, so `mount` or `losetup` in a script would not be
    // util-linux's.
    let dash = host::find_program("dash", "dash")?;
    c.add_path(&dash)?;
    c.tree.symlink("usr/bin/sh", "dash");

    for (name, package) in PROGRAMS {
        if !userspace.wants(name) {
            continue;
        }
        let p = host::find_program(name, package)?;
        c.add_path(&p)?;
    }
    for target in MULTICALL {
        if userspace.wants(target) {
            add_multicall_links(&mut c, target)?;
        }
    }
    let udevd = Path::new("/usr/lib/systemd/systemd-udevd");
    if udevd.exists() {
        c.add_path(udevd)?;
    } else {
        return Err(VmError::MissingTool {
            what: "systemd-udevd".into(),
            package: "udev".into(),
            detail: format!("{} does not exist", udevd.display()),
        });
    }
    add_dir_files(&mut c, Path::new("/usr/lib/udev/rules.d"), "udev")?;
    if userspace.containers {
        add_containers(&mut c)?;
    }
    if Path::new("/etc/mke2fs.conf").is_file() {
        c.add_path(Path::new("/etc/mke2fs.conf"))?;
    }
    add_vmtest_files(&mut c, kernel, userspace)?;
    Ok(c.tree)
}

/// The usr-merged folder layout and `/dev/console`, before any program.
pub(crate) fn add_skeleton(c: &mut Collector) {
    for top in ["bin", "sbin", "lib", "lib64"] {
        c.tree.dir(&format!("usr/{top}"));
        c.tree.symlink(top, &format!("usr/{top}"));
    }
    for d in [
        "proc",
        "sys",
        "dev",
        "run",
        "tmp",
        "root",
        "mnt",
        "etc",
        "var/tmp",
        "usr/local/bin",
        "usr/local/sbin",
    ] {
        c.tree.dir(d);
    }
    c.tree.symlink("var/run", "../run");
    c.tree.symlink("var/lock", "../run/lock");
    c.tree.insert(
        "dev/console",
        Node::CharDev {
            major: 5,
            minor: 1,
            mode: 0o600,
        },
    );
}

/// The bed's own files, the same for every architecture: configuration, `/init`,
/// the `step` library, and the kernel modules.
pub(crate) fn add_vmtest_files(
    c: &mut Collector,
    kernel: &Kernel,
    userspace: Userspace,
) -> Result<(), VmError> {
    if userspace.lvm2 {
        c.tree.file(
            "etc/lvm/lvm.conf",
            guest::LVM_CONF.as_bytes().to_vec(),
            0o644,
        );
    }
    c.tree
        .file("etc/passwd", guest::PASSWD.as_bytes().to_vec(), 0o644);
    c.tree
        .file("etc/group", guest::GROUP.as_bytes().to_vec(), 0o644);
    c.tree.file("etc/hostname", b"vmtest\n".to_vec(), 0o644);
    c.tree.file("etc/fstab", Vec::new(), 0o644);
    c.tree.symlink("etc/mtab", "/proc/self/mounts");
    c.tree.file("init", guest::INIT.as_bytes().to_vec(), 0o755);
    c.tree.file(
        "usr/lib/vmtest/steplib.sh",
        guest::STEPLIB.as_bytes().to_vec(),
        0o644,
    );
    c.tree.file(
        "etc/vmtest/boot-modules",
        BOOT_MODULES.join("\n").into_bytes(),
        0o644,
    );

    add_modules(c, kernel)
}

/// Container runtimes, podman and its configuration (see `guest::CONTAINERS_CONF`).
fn add_containers(c: &mut Collector) -> Result<(), VmError> {
    for (name, package) in CONTAINER_PROGRAMS {
        let p = host::find_program(name, package)?;
        c.add_path(&p)?;
    }
    for (path, package) in CONTAINER_FILES {
        let p = Path::new(path);
        if std::fs::symlink_metadata(p).is_err() {
            return Err(VmError::MissingTool {
                what: path.to_string(),
                package: package.to_string(),
                detail: "podman needs it in the guest".into(),
            });
        }
        c.add_path(p)?;
    }
    for (path, text) in [
        ("etc/containers/policy.json", guest::CONTAINERS_POLICY),
        ("etc/containers/storage.conf", guest::CONTAINERS_STORAGE),
        ("etc/containers/containers.conf", guest::CONTAINERS_CONF),
        ("etc/hosts", guest::HOSTS),
        ("etc/resolv.conf", ""),
    ] {
        c.tree.file(path, text.as_bytes().to_vec(), 0o644);
    }
    Ok(())
}

/// Ships every link to `target` (e.g. pvcreate -> lvm) found in the program folders:
/// the host's (usr-merged), or all four of a foreign root that may not be.
pub(crate) fn add_multicall_links(c: &mut Collector, target: &str) -> Result<(), VmError> {
    let dirs: &[&str] = if c.sysroot.is_some() {
        &["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
    } else {
        &["/usr/sbin", "/usr/bin"]
    };
    for dir in dirs {
        let listed = match &c.sysroot {
            Some(root) => root.host_path(Path::new(dir), true)?,
            None => PathBuf::from(dir),
        };
        let Ok(entries) = std::fs::read_dir(&listed) else {
            continue;
        };
        let mut links: Vec<PathBuf> = entries
            .flatten()
            .filter(|e| {
                std::fs::read_link(e.path())
                    .is_ok_and(|t| t.file_name().is_some_and(|n| n == target))
            })
            .map(|e| Path::new(dir).join(e.file_name()))
            .collect();
        links.sort();
        for link in links {
            c.add_path(&link)?;
        }
    }
    Ok(())
}

fn add_dir_files(c: &mut Collector, dir: &Path, package: &str) -> Result<(), VmError> {
    let entries = std::fs::read_dir(dir).map_err(|e| VmError::MissingTool {
        what: dir.display().to_string(),
        package: package.to_string(),
        detail: e.to_string(),
    })?;
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for p in paths {
        c.add_path(&p)?;
    }
    Ok(())
}

/// Ships the wanted modules and their dependencies, with index files made
/// by depmod for exactly that set (so guest `modprobe` works).
fn add_modules(c: &mut Collector, kernel: &Kernel) -> Result<(), VmError> {
    let mdir = kernel.modules_dir();
    let mut files: BTreeSet<PathBuf> = BTreeSet::new();
    for m in BOOT_MODULES.iter().chain(EXTRA_MODULES) {
        let out = run(
            Command::new("modprobe")
                .arg("-d")
                .arg(&kernel.root)
                .arg("-S")
                .arg(&kernel.version)
                .arg("--show-depends")
                .arg(m),
            &format!("kernel {} has no module {m}", kernel.version),
        )?;
        for line in out.lines() {
            // `insmod PATH [OPTIONS]`: options come from the host's modprobe.d
            // (mdadm's package sets `start_ro=1` for md_mod).
            if let Some(path) = line
                .trim()
                .strip_prefix("insmod ")
                .and_then(|rest| rest.split_whitespace().next())
            {
                files.insert(PathBuf::from(path));
            }
        }
    }
    let stage = tempfile::tempdir().map_err(io_err("creating a temporary folder"))?;
    let sroot = stage.path();
    let smod = sroot.join("lib/modules").join(&kernel.version);
    for f in &files {
        let rel = f.strip_prefix(&mdir).map_err(|_| {
            VmError::Spec(format!(
                "module {} is outside {}",
                f.display(),
                mdir.display()
            ))
        })?;
        let dst = smod.join(rel);
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent)
                .map_err(io_err(format!("creating {}", parent.display())))?;
        }
        std::fs::copy(f, &dst).map_err(io_err(format!("copying {}", f.display())))?;
    }
    for idx in [
        "modules.order",
        "modules.builtin",
        "modules.builtin.modinfo",
    ] {
        let src = mdir.join(idx);
        if src.is_file() {
            std::fs::copy(&src, smod.join(idx))
                .map_err(io_err(format!("copying {}", src.display())))?;
        }
    }
    run(
        Command::new("depmod")
            .arg("-b")
            .arg(sroot)
            .arg(&kernel.version),
        "depmod (package kmod) failed on the guest's module set",
    )?;
    add_tree_from(c, &smod, &format!("usr/lib/modules/{}", kernel.version))
}

fn add_tree_from(c: &mut Collector, src: &Path, guest: &str) -> Result<(), VmError> {
    let entries = std::fs::read_dir(src).map_err(io_err(format!("reading {}", src.display())))?;
    let mut list: Vec<_> = entries.flatten().collect();
    list.sort_by_key(|e| e.file_name());
    for e in list {
        let name = e.file_name().to_string_lossy().into_owned();
        let gp = format!("{guest}/{name}");
        let p = e.path();
        if p.is_dir() {
            c.tree.dir(&gp);
            add_tree_from(c, &p, &gp)?;
        } else {
            let data = std::fs::read(&p).map_err(io_err(format!("reading {}", p.display())))?;
            c.tree.file(&gp, data, 0o644);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_paths_are_usr_merged() {
        assert_eq!(
            guest_path(Path::new("/lib/x86_64-linux-gnu/libc.so.6")),
            "usr/lib/x86_64-linux-gnu/libc.so.6"
        );
        assert_eq!(
            guest_path(Path::new("/lib64/ld-linux-x86-64.so.2")),
            "usr/lib64/ld-linux-x86-64.so.2"
        );
        assert_eq!(guest_path(Path::new("/sbin/lvm")), "usr/sbin/lvm");
        assert_eq!(guest_path(Path::new("/usr/sbin/lvm")), "usr/sbin/lvm");
        assert_eq!(guest_path(Path::new("/libexec/x")), "libexec/x");
        assert_eq!(
            guest_path(Path::new("/etc/lvm/lvm.conf")),
            "etc/lvm/lvm.conf"
        );
    }

    #[test]
    fn container_packages_are_installed_by_xtask_deps() {
        for (_, package) in CONTAINER_PROGRAMS.iter().chain(CONTAINER_FILES) {
            assert!(
                crate::HOST_PACKAGES.contains(package),
                "{package} is missing from vmtest::HOST_PACKAGES"
            );
        }
    }

    #[test]
    fn ldd_output_is_parsed() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\tlibudev.so.1 => /lib/x86_64-linux-gnu/libudev.so.1 (0x1)\n\t/lib64/ld-linux-x86-64.so.2 (0x2)\n";
        let libs = parse_ldd(text).expect("parses");
        assert_eq!(
            libs,
            vec![
                PathBuf::from("/lib/x86_64-linux-gnu/libudev.so.1"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2")
            ]
        );
        assert_eq!(
            parse_ldd("\tlibfoo.so.1 => not found\n"),
            Err("libfoo.so.1".to_string())
        );
    }
}
