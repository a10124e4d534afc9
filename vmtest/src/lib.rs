//! VM test bed: boots Debian's cloud kernel under qemu (TCG) with scratch
//! GPT disks attached as virtio-blk (`/dev/vda`, `/dev/vdb`, …), runs a
//! shell script inside (`/bin/sh` is Debian's dash; busybox supplies the
//! basic utilities that the real packages don't), and hands back what each
//! `step` printed.
//!
//! ```no_run
//! use vmtest::{BootOptions, DiskSpec, TestBed};
//! let bed = TestBed::new(vec![DiskSpec::new("data", 1024).partition("linstor-storage", None)])?;
//! let run = bed.boot(&BootOptions::default(), "step uevent cat /sys/class/block/vda1/uevent")?;
//! assert!(run.expect_success("uevent").stdout.contains("PARTNAME=linstor-storage"));
//! # Ok::<(), vmtest::VmError>(())
//! ```
//!
//! Inside the script, `step NAME CMD ARGS...` runs CMD (stdin is /dev/null)
//! and reports its exit code, stdout and stderr to the host (base64 over a
//! second serial port). Commands not wrapped in `step` print to the console.
//! The guest powers off when the script ends.
//!
//! The guest: Debian's cloud kernel (`linux-image-cloud-amd64`, fetched with
//! `apt-get download`), an initramfs as root file system (tmpfs, nothing
//! persists but the disks), `/proc`, `/sys`, devtmpfs `/dev`, tmpfs `/run` and
//! `/tmp`. Loaded at boot: virtio_pci, virtio_blk, virtio_rng, dm_mod,
//! dm_thin_pool; shipped for `modprobe` (or `BootOptions::modules`, or kernel
//! autoload on mount): dm_crypt, dm_snapshot, dm_zero, dm_flakey, dm_delay,
//! loop, xfs, btrfs, xts, algif_skcipher, algif_hash, md_mod, raid1. Tools
//! copied from the host with their libraries: lvm2 (all `lvm` links), dmsetup,
//! thin-provisioning-tools, e2fsprogs, xfsprogs, btrfs-progs, mkfs.vfat,
//! mkfs.f2fs, mkfs.exfat, make-bcache, mdadm,
//! util-linux (blkid, wipefs, lsblk, blockdev, partx, losetup, findmnt,
//! mount, mkswap), sgdisk,
//! cryptsetup, kmod, udevadm/systemd-udevd with Debian's udev rules.
//! `/etc/lvm/lvm.conf` never waits for or asks udev (`udev_sync = 0`,
//! `udev_rules = 0`, `obtain_device_list_from_udev = 0`) and has no
//! autoactivation (`event_activation = 0`), monitoring, lvmpolld or devices
//! file; a script may overwrite it. `BootOptions::lvm2_userspace = false`
//! leaves out lvm (and its links), dmsetup and lvm.conf, `thin_tools = false`
//! pdata_tools: a guest for a static binary that carries LVM itself.
//!
//! With `BootOptions::udevd`, systemd-udevd runs, all devices are triggered
//! with "add" and settled before the script, so `/run/udev/data` and
//! `/dev/disk/by-*` exist. Disks have virtio serials equal to their names
//! (`/dev/disk/by-id/virtio-<name>`).
//!
//! `BootOptions::arch = Arch::Aarch64` boots Debian's arm64 cloud kernel under
//! `qemu-system-aarch64` (TCG, `-machine virt`) instead, with the same disks,
//! script protocol, modules and lvm.conf, and an arm64 userland (busybox, dash,
//! lvm2, dmsetup, thin-provisioning-tools, util-linux, e2fsprogs, sgdisk, kmod)
//! taken from a Debian arm64 root that `mmdebstrap --variant=extract` unpacks once
//! into the cache; no udevd and no container tooling there.
//!
//! `BootOptions::log_writes` attaches disks through QEMU's `blklogwrites` driver for
//! one boot: every write, flush and FUA is logged on the host in dm-log-writes'
//! format ([`write_log`]); [`crash_states`] builds the states a volatile write
//! cache may leave from such a log (tests/vm_crash_states.rs replays them).
//!
//! Everything downloaded or built is cached under `target/vmtest-cache`
//! (or `$VMTEST_CACHE_DIR`); `$VMTEST_KERNEL_DEB` may name a local
//! linux-image .deb to use instead of downloading one. Set `VMTEST_KEEP=1`
//! to keep disk images and logs (`target/vmtest-runs/bed-*`).

mod aarch64;
mod arch;
mod cpio;
pub mod crash_states;
pub mod elf;
mod guest;
mod host;
mod initramfs;
mod kernel;
pub mod scale;
mod sysroot;
mod system_boot;
pub mod write_log;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use aarch64::{AARCH64_HOST_PACKAGES, AARCH64_ROOT_PACKAGES};
pub use arch::Arch;
pub use guest::Step;
use host::io_err;
pub use system_boot::{
    prepare_systemd_root, SystemdBoot, SystemdRoot, SYSTEMD_ROOT_PACKAGES, SYSTEMD_ROOT_SUITE,
};

/// Everything that can go wrong; every message says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    #[error(
        "{what} is missing on this machine ({detail}); install it with: apt-get install {package}"
    )]
    MissingTool {
        what: String,
        package: String,
        detail: String,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}): {stderr}\n{hint}")]
    Command {
        command: String,
        status: String,
        stderr: String,
        hint: String,
    },
    #[error("invalid test bed: {0}")]
    Spec(String),
    #[error("the guest did not power off within {timeout:?}; qemu was killed.\n--- console tail ---\n{console_tail}")]
    Timeout {
        timeout: Duration,
        console_tail: String,
    },
    #[error("the guest kernel panicked.\n--- console tail ---\n{console_tail}")]
    KernelPanic { console_tail: String },
    #[error("{reason}\n--- console tail ---\n{console_tail}")]
    Guest {
        reason: String,
        console_tail: String,
    },
}

/// The Debian packages the test bed needs on the host (for `apt-get install`).
pub const HOST_PACKAGES: &[&str] = &[
    "qemu-system-x86",
    "gdisk",
    "lvm2",
    "dmsetup",
    "thin-provisioning-tools",
    "udev",
    "kmod",
    "busybox-static",
    "e2fsprogs",
    "xfsprogs",
    "btrfs-progs",
    "cryptsetup-bin",
    "dosfstools",
    "f2fs-tools",
    "exfatprogs",
    "bcache-tools",
    "mdadm",
    "util-linux",
    "mount",
    // BootOptions::containers
    "runc",
    "umoci",
    "podman",
    "conmon",
    "catatonit",
    "netavark",
    "golang-github-containers-common",
];

/// Checks that every host program the bed uses is installed; the error names
/// all missing packages at once.
pub fn check_host() -> Result<(), VmError> {
    let mut missing_pkgs: Vec<&str> = Vec::new();
    let mut missing_progs: Vec<&str> = Vec::new();
    for (prog, pkg) in initramfs::all_programs() {
        if host::find_program(prog, pkg).is_err() {
            missing_progs.push(prog);
            if !missing_pkgs.contains(pkg) {
                missing_pkgs.push(pkg);
            }
        }
    }
    if !Path::new("/usr/lib/systemd/systemd-udevd").exists() {
        missing_progs.push("systemd-udevd");
        if !missing_pkgs.contains(&"udev") {
            missing_pkgs.push("udev");
        }
    }
    if missing_pkgs.is_empty() {
        Ok(())
    } else {
        Err(VmError::MissingTool {
            what: missing_progs.join(", "),
            package: missing_pkgs.join(" "),
            detail: "needed to build the guest".into(),
        })
    }
}

/// What [`prepare`] made ready.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub kernel_version: String,
    pub kernel: PathBuf,
    pub initramfs: PathBuf,
    pub initramfs_bytes: u64,
}

/// Downloads the kernel and builds the base initramfs (both cached) without
/// booting, e.g. for an xtask to warm the cache or to report problems early.
pub fn prepare() -> Result<Prepared, VmError> {
    prepare_arch(Arch::X86_64)
}

/// [`prepare`] for a guest of architecture `arch`.
pub fn prepare_arch(arch: Arch) -> Result<Prepared, VmError> {
    let opts = BootOptions {
        arch,
        ..BootOptions::default()
    };
    check_host_for(&opts)?;
    let cache = host::cache_dir();
    let system = GuestSystem::ensure(&cache, arch)?;
    let (path, bytes) = base_initramfs(&cache, &system, FULL_USERSPACE)?;
    let kernel = system.kernel();
    Ok(Prepared {
        kernel_version: kernel.version.clone(),
        kernel: kernel.vmlinuz.clone(),
        initramfs: path,
        initramfs_bytes: bytes.len() as u64,
    })
}

/// [`check_host`] for the architecture (and options) of a boot.
fn check_host_for(opts: &BootOptions) -> Result<(), VmError> {
    match opts.arch {
        Arch::X86_64 => check_host(),
        Arch::Aarch64 | Arch::Aarch64Pages16K => aarch64::check(opts),
    }
}

/// The kernel, and where the guest's programs come from.
enum GuestSystem {
    /// Debian's amd64 cloud kernel; programs from the host.
    X86_64(kernel::Kernel),
    /// Kernel and programs from the cached arm64 Debian root.
    Aarch64(aarch64::Root),
}

impl GuestSystem {
    fn ensure(cache: &Path, arch: Arch) -> Result<GuestSystem, VmError> {
        Ok(match arch {
            Arch::X86_64 => GuestSystem::X86_64(kernel::ensure(cache)?),
            arm64 => GuestSystem::Aarch64(aarch64::ensure(cache, arm64)?),
        })
    }

    fn arch(&self) -> Arch {
        match self {
            GuestSystem::X86_64(_) => Arch::X86_64,
            GuestSystem::Aarch64(root) => root.arch,
        }
    }

    fn kernel(&self) -> &kernel::Kernel {
        match self {
            GuestSystem::X86_64(kernel) => kernel,
            GuestSystem::Aarch64(root) => &root.kernel,
        }
    }

    fn base_tree(&self, userspace: initramfs::Userspace) -> Result<cpio::Tree, VmError> {
        match self {
            GuestSystem::X86_64(kernel) => initramfs::base_tree(kernel, userspace),
            GuestSystem::Aarch64(root) => aarch64::base_tree(root, userspace),
        }
    }

    /// Collects the per-boot files (their libraries from the same place).
    fn overlay(&self) -> initramfs::Collector {
        match self {
            GuestSystem::X86_64(_) => initramfs::Collector::new(),
            GuestSystem::Aarch64(root) => initramfs::Collector::in_root(root.sysroot.clone()),
        }
    }
}

/// A scratch disk: a sparse raw image; with partitions, a GPT made by sgdisk.
#[derive(Debug, Clone)]
pub struct DiskSpec {
    /// File stem of the image and virtio serial (`/dev/disk/by-id/virtio-<name>`):
    /// 1–20 characters of `[A-Za-z0-9_-]`.
    pub name: String,
    pub size_mib: u64,
    /// Partitions 1, 2, … in order. Empty: a blank disk without partition table.
    pub partitions: Vec<PartitionSpec>,
}

#[derive(Debug, Clone)]
pub struct PartitionSpec {
    /// GPT partition name (what `PARTNAME` / `ID_PART_ENTRY_NAME` show).
    pub label: String,
    /// None: the rest of the disk (only allowed for the last partition).
    pub size_mib: Option<u64>,
}

impl DiskSpec {
    pub fn new(name: &str, size_mib: u64) -> DiskSpec {
        DiskSpec {
            name: name.to_string(),
            size_mib,
            partitions: Vec::new(),
        }
    }

    pub fn partition(mut self, label: &str, size_mib: Option<u64>) -> DiskSpec {
        self.partitions.push(PartitionSpec {
            label: label.to_string(),
            size_mib,
        });
        self
    }
}

#[derive(Debug, Clone)]
pub struct BootOptions {
    /// Start systemd-udevd, trigger "add" for all devices and settle before the script.
    pub udevd: bool,
    pub memory_mib: u32,
    pub cpus: u32,
    /// Wall-clock limit for the whole boot; qemu is killed after it.
    pub timeout: Duration,
    /// Extra kernel modules to load before the script (e.g. "dm_crypt", "xfs").
    pub modules: Vec<String>,
    /// Appended to the kernel command line.
    pub kernel_args: String,
    /// Extra qemu arguments (appended last).
    pub qemu_args: Vec<String>,
    /// Ship lvm2's userspace (lvm and all its links, dmsetup, /etc/lvm/lvm.conf).
    /// Off: the guest has no LVM tools at all, as a host running only a static
    /// binary with LVM linked in.
    pub lvm2_userspace: bool,
    /// Ship thin-provisioning-tools (pdata_tools: thin_check, thin_dump, …).
    pub thin_tools: bool,
    /// The script may end with a power cut (`echo b > /proc/sysrq-trigger`: an
    /// instant reset, nothing synced; qemu runs with `-no-reboot`, so it exits).
    /// A guest that resets before the script exits is then a normal end,
    /// reported as [`GuestRun::power_cut`], instead of an error.
    pub power_cut_expected: bool,
    /// The guest's architecture: [`Arch::X86_64`] (the default) or
    /// [`Arch::Aarch64`] (an arm64 kernel and userland under
    /// `qemu-system-aarch64`; binaries shipped with [`TestBed::with_binary`] must
    /// be arm64 builds). Same disks, same script protocol.
    pub arch: Arch,
    /// Ship runc, umoci and podman (with conmon, catatonit, netavark and a
    /// configuration for vfs storage on tmpfs, cgroupfs, file events, runc).
    /// The guest's root then moves from the initramfs to a tmpfs before
    /// anything else (runtimes can't pivot_root out of an initramfs), and the
    /// cgroup v1 controllers are mounted under /sys/fs/cgroup. Costs boot time
    /// and memory: give the guest 1.5 GiB or more.
    pub containers: bool,
    /// Disks (by name) attached through QEMU's `blklogwrites` driver this boot:
    /// every write, flush and FUA the guest sends them is logged on the host in
    /// dm-log-writes' format to [`TestBed::write_log_path`] (see [`write_log`]),
    /// while the guest sees the same plain virtio disk.
    pub log_writes: Vec<String>,
}

impl Default for BootOptions {
    fn default() -> BootOptions {
        BootOptions {
            udevd: false,
            memory_mib: 768,
            cpus: 1,
            timeout: Duration::from_secs(240),
            modules: Vec::new(),
            kernel_args: String::new(),
            qemu_args: Vec::new(),
            power_cut_expected: false,
            lvm2_userspace: true,
            thin_tools: true,
            containers: false,
            arch: Arch::X86_64,
            log_writes: Vec::new(),
        }
    }
}

impl BootOptions {
    pub fn with_udevd(mut self) -> BootOptions {
        self.udevd = true;
        self
    }
}

/// The result of one boot.
#[derive(Debug, Clone)]
pub struct GuestRun {
    pub steps: Vec<Step>,
    /// The whole serial console (kernel log, init stages, step summaries).
    pub console: String,
    /// Exit status of the script (that of its last command unless it `exit`s);
    /// -1 after a power cut.
    pub script_exit_code: i32,
    /// The guest reset before the script exited (only with
    /// `BootOptions::power_cut_expected`; otherwise that is an error).
    pub power_cut: bool,
    /// Guest uptime when the script started (kernel boot + init + modules + udev).
    pub guest_uptime_at_script: Option<Duration>,
    /// Host wall-clock time of the whole qemu run.
    pub elapsed: Duration,
}

impl GuestRun {
    /// The first step called `name`; panics with the console tail if absent.
    pub fn step(&self, name: &str) -> &Step {
        match self.try_step(name) {
            Some(s) => s,
            None => panic!(
                "the guest reported no step {name:?} (steps: {:?}; script exit code {}).\n--- console tail ---\n{}",
                self.steps.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
                self.script_exit_code,
                self.console_tail(60)
            ),
        }
    }

    pub fn try_step(&self, name: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.name == name)
    }

    /// Like [`GuestRun::step`], and also panics (with its output and the
    /// console tail) unless it exited 0.
    pub fn expect_success(&self, name: &str) -> &Step {
        let s = self.step(name);
        if s.exit_code != 0 {
            panic!(
                "guest step {name:?} exited {}\n--- stdout ---\n{}\n--- stderr ---\n{}\n--- console tail ---\n{}",
                s.exit_code,
                s.stdout,
                s.stderr,
                self.console_tail(60)
            );
        }
        s
    }

    /// Panics with `msg` and the console tail unless `cond`.
    pub fn check(&self, cond: bool, msg: &str) {
        if !cond {
            panic!("{msg}\n--- console tail ---\n{}", self.console_tail(80));
        }
    }

    pub fn console_tail(&self, lines: usize) -> String {
        tail(&self.console, lines)
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Scratch disks in a private folder, kept across boots (so a test can boot,
/// alter an image, and boot again), removed on drop unless `VMTEST_KEEP` is set.
#[derive(Debug)]
pub struct TestBed {
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
    disks: Vec<DiskSpec>,
    files: Vec<(PathBuf, String)>,
    boots: AtomicU32,
}

impl TestBed {
    pub fn new(disks: Vec<DiskSpec>) -> Result<TestBed, VmError> {
        let runs = host::target_dir().join("vmtest-runs");
        std::fs::create_dir_all(&runs).map_err(io_err(format!("creating {}", runs.display())))?;
        let dir = tempfile::Builder::new()
            .prefix("bed-")
            .tempdir_in(&runs)
            .map_err(io_err(format!("creating a folder in {}", runs.display())))?;
        let keep = std::env::var_os("VMTEST_KEEP").is_some();
        let (dir, path) = if keep {
            let path = dir.keep();
            eprintln!("vmtest: keeping {}", path.display());
            (None, path)
        } else {
            let path = dir.path().to_path_buf();
            (Some(dir), path)
        };
        let bed = TestBed {
            dir,
            path,
            disks: Vec::new(),
            files: Vec::new(),
            boots: AtomicU32::new(0),
        };
        let mut bed = bed;
        let mut seen = std::collections::BTreeSet::new();
        for d in &disks {
            validate_disk(d)?;
            if !seen.insert(d.name.clone()) {
                return Err(VmError::Spec(format!("two disks are named {:?}", d.name)));
            }
        }
        if disks.len() > 26 {
            return Err(VmError::Spec("at most 26 disks (vda..vdz)".into()));
        }
        // sgdisk sleeps a second after writing; partition all disks at once.
        let mut pending = Vec::new();
        for d in &disks {
            if let Some(child) = make_disk(&bed.disk_path(&d.name), d)? {
                pending.push(child);
            }
        }
        for (cmd, child) in pending {
            let out = child
                .wait_with_output()
                .map_err(io_err("waiting for sgdisk"))?;
            if !out.status.success() {
                return Err(VmError::Command {
                    command: cmd,
                    status: out.status.to_string(),
                    stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
                    hint: "sgdisk could not write the partition table".into(),
                });
            }
        }
        bed.disks = disks;
        Ok(bed)
    }

    /// Copies a host executable into the guest as `/usr/local/bin/<file name>`,
    /// together with the shared libraries it needs.
    pub fn with_binary(self, host_path: &Path) -> TestBed {
        let name = host_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.with_file(host_path, &format!("/usr/local/bin/{name}"))
    }

    /// Copies any host file into the guest at `guest_path` (executables bring
    /// their shared libraries).
    pub fn with_file(mut self, host_path: &Path, guest_path: &str) -> TestBed {
        self.files
            .push((host_path.to_path_buf(), guest_path.to_string()));
        self
    }

    /// The image file of disk `name` (to grow or alter it between boots).
    pub fn disk_path(&self, name: &str) -> PathBuf {
        self.path.join(format!("{name}.img"))
    }

    /// The write log of disk `name`, rewritten by each boot that lists it in
    /// [`BootOptions::log_writes`].
    pub fn write_log_path(&self, name: &str) -> PathBuf {
        self.path.join(format!("{name}.wlog"))
    }

    /// The folder holding images and per-boot logs.
    pub fn dir(&self) -> &Path {
        &self.path
    }

    /// Boots the guest, runs `script` (`/bin/sh`, with `step` defined),
    /// waits for power-off and returns the steps. A script that exits non-zero
    /// is not an error; a guest that panics, hangs or never reaches the
    /// script is.
    pub fn boot(&self, opts: &BootOptions, script: &str) -> Result<GuestRun, VmError> {
        check_host_for(opts)?;
        check_syntax(script)?;
        let cache = host::cache_dir();
        let system = GuestSystem::ensure(&cache, opts.arch)?;
        let kernel = system.kernel();
        let userspace = initramfs::Userspace {
            lvm2: opts.lvm2_userspace,
            thin_tools: opts.thin_tools,
            containers: opts.containers,
        };
        let (_, base) = base_initramfs(&cache, &system, userspace)?;
        let (qemu_program, qemu_package) = opts.arch.qemu();
        let qemu = host::find_program(qemu_program, qemu_package)?;

        for m in &opts.modules {
            if m.is_empty()
                || !m
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return Err(VmError::Spec(format!(
                    "module name {m:?} is not a kernel module name"
                )));
            }
        }
        let n = self.boots.fetch_add(1, Ordering::SeqCst);
        let mut overlay = system.overlay();
        overlay
            .tree
            .file("vmtest/script.sh", script.as_bytes().to_vec(), 0o755);
        for (host_path, guest_path) in &self.files {
            if !host_path.is_file() {
                return Err(VmError::Spec(format!(
                    "{} (to be copied to the guest's {guest_path}) does not exist",
                    host_path.display()
                )));
            }
            overlay.add_file_as(host_path, &initramfs::guest_path(Path::new(guest_path)))?;
        }
        let mut initrd = Vec::with_capacity(base.len() + (1 << 20));
        initrd.extend_from_slice(&base);
        initrd.extend_from_slice(&overlay.tree.to_cpio());
        let initrd_path = self.path.join(format!("boot{n}-initrd.cpio"));
        std::fs::write(&initrd_path, &initrd)
            .map_err(io_err(format!("writing {}", initrd_path.display())))?;
        drop(initrd);

        let console_path = self.path.join(format!("boot{n}-console.log"));
        let results_path = self.path.join(format!("boot{n}-results.log"));
        let qemu_log = self.path.join(format!("boot{n}-qemu.log"));

        let mut cmdline = format!(
            "{} vmtest.udevd={} vmtest.disks={}",
            opts.arch.base_cmdline(),
            u8::from(opts.udevd),
            self.disks.len()
        );
        if opts.containers {
            cmdline.push_str(" vmtest.containers=1");
        }
        if !opts.modules.is_empty() {
            cmdline.push_str(&format!(" vmtest.modules={}", opts.modules.join(",")));
        }
        if !opts.kernel_args.is_empty() {
            cmdline.push(' ');
            cmdline.push_str(&opts.kernel_args);
        }

        let mut cmd = Command::new(&qemu);
        cmd.args(opts.arch.machine_args())
            .args(["-nodefaults", "-no-user-config", "-display", "none"])
            .args(["-monitor", "none", "-no-reboot"])
            .arg("-m")
            .arg(opts.memory_mib.to_string())
            .arg("-smp")
            .arg(opts.cpus.max(1).to_string())
            .args(opts.arch.serial_args(&console_path, &results_path))
            .arg("-kernel")
            .arg(&kernel.vmlinuz)
            .arg("-initrd")
            .arg(&initrd_path)
            .arg("-append")
            .arg(&cmdline)
            .args(["-device", "virtio-rng-pci"]);
        for name in &opts.log_writes {
            if !self.disks.iter().any(|d| &d.name == name) {
                return Err(VmError::Spec(format!(
                    "BootOptions::log_writes names {name:?}, which is no disk of this bed"
                )));
            }
        }
        for (i, d) in self.disks.iter().enumerate() {
            let img = self.disk_path(&d.name);
            let escaped = |p: &Path| p.display().to_string().replace(',', ",,");
            if opts.log_writes.contains(&d.name) {
                // The log file must exist; blklogwrites writes a fresh superblock.
                let log = self.write_log_path(&d.name);
                std::fs::File::create(&log)
                    .map_err(io_err(format!("creating {}", log.display())))?;
                cmd.arg("-blockdev").arg(format!(
                    "driver=file,filename={},node-name=disk{i}f,cache.direct=off,cache.no-flush=on,discard=unmap",
                    escaped(&img)
                ));
                cmd.arg("-blockdev").arg(format!(
                    "driver=file,filename={},node-name=disk{i}l,cache.no-flush=on",
                    escaped(&log)
                ));
                cmd.arg("-blockdev").arg(format!(
                    "driver=blklogwrites,file=disk{i}f,log=disk{i}l,node-name=disk{i},discard=unmap"
                ));
            } else {
                cmd.arg("-drive").arg(format!(
                    "file={},if=none,id=disk{i},format=raw,cache=unsafe,discard=unmap",
                    escaped(&img)
                ));
            }
            cmd.arg("-device")
                .arg(format!("virtio-blk-pci,drive=disk{i},serial={}", d.name));
        }
        cmd.args(&opts.qemu_args);
        let (status, elapsed) = run_qemu(&mut cmd, &qemu, &qemu_log, opts.timeout)?;
        let console =
            String::from_utf8_lossy(&std::fs::read(&console_path).unwrap_or_default()).into_owned();
        let results =
            String::from_utf8_lossy(&std::fs::read(&results_path).unwrap_or_default()).into_owned();
        let console_tail = tail(&console, 80);

        if console.contains("Kernel panic") {
            return Err(VmError::KernelPanic { console_tail });
        }
        let Some(status) = status else {
            return Err(VmError::Timeout {
                timeout: opts.timeout,
                console_tail,
            });
        };
        if !status.success() {
            let qlog = std::fs::read_to_string(&qemu_log).unwrap_or_default();
            return Err(VmError::Guest {
                reason: format!("qemu exited with {status}: {}", qlog.trim()),
                console_tail,
            });
        }
        let mut report = guest::parse_report(&results);
        if report.script_started_at.is_none() {
            // No second serial port in the guest: the init script falls back to the console.
            let from_console = guest::parse_report(&console);
            if from_console.script_started_at.is_some() {
                report = from_console;
            }
        }
        let Some(started) = report.script_started_at else {
            return Err(VmError::Guest {
                reason: "the guest never started the test script (see the last vmtest-stage line)"
                    .into(),
                console_tail,
            });
        };
        let power_cut = report.script_exit.is_none() && opts.power_cut_expected;
        if power_cut {
            // A step still writing its report when the power went is no garbling.
            report.problems.retain(|p| !p.ends_with("was cut off"));
        }
        let Some(script_exit_code) = report.script_exit.or(power_cut.then_some(-1)) else {
            return Err(VmError::Guest {
                reason: format!(
                    "the guest powered off before the test script finished ({} steps reported{})",
                    report.steps.len(),
                    if report.problems.is_empty() {
                        String::new()
                    } else {
                        format!("; {}", report.problems.join("; "))
                    }
                ),
                console_tail,
            });
        };
        if !report.problems.is_empty() {
            return Err(VmError::Guest {
                reason: format!("garbled step report: {}", report.problems.join("; ")),
                console_tail,
            });
        }
        if self.dir.is_some() {
            let _ = std::fs::remove_file(&initrd_path);
        }
        Ok(GuestRun {
            steps: report.steps,
            console,
            script_exit_code,
            power_cut,
            guest_uptime_at_script: Duration::try_from_secs_f64(started).ok(),
            elapsed,
        })
    }
}

/// Quiet console on ttyS0, reboot (= qemu exit) on panic, and boot-time
/// savers that matter under TCG: no crypto self-tests, no TSC recalibration,
/// no LSMs or audit.
pub(crate) const BASE_CMDLINE: &str = "console=ttyS0 rdinit=/init panic=-1 oops=panic loglevel=4 \
     mitigations=off cryptomgr.notests tsc=reliable no_timer_check nokaslr audit=0 lsm= \
     random.trust_cpu=on";

/// A fast non-cryptographic hash (a cache key, not a security boundary).
fn content_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h ^ u64::from_le_bytes(w))
            .wrapping_mul(0x0000_0100_0000_01b3)
            .rotate_left(29);
    }
    for &b in chunks.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// `sh -n` on the host (dash, the guest's shell): a syntax error costs no boot.
fn check_syntax(script: &str) -> Result<(), VmError> {
    let dash = host::find_program("dash", "dash")?;
    let out = Command::new(dash)
        .arg("-n")
        .arg("-c")
        .arg(script)
        .output()
        .map_err(io_err("running dash -n"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(VmError::Spec(format!(
            "the guest script has a shell syntax error: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

fn validate_disk(d: &DiskSpec) -> Result<(), VmError> {
    let ok_name = !d.name.is_empty()
        && d.name.len() <= 20
        && d.name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok_name {
        return Err(VmError::Spec(format!(
            "disk name {:?}: use 1-20 characters of [A-Za-z0-9_-] (it is the virtio serial)",
            d.name
        )));
    }
    if d.size_mib < 2 {
        return Err(VmError::Spec(format!(
            "disk {:?} is smaller than 2 MiB",
            d.name
        )));
    }
    for (i, p) in d.partitions.iter().enumerate() {
        if p.size_mib.is_none() && i + 1 != d.partitions.len() {
            return Err(VmError::Spec(format!(
                "disk {:?}: only the last partition may take the rest of the disk",
                d.name
            )));
        }
        if p.label.chars().count() > 36 || p.label.contains(':') {
            return Err(VmError::Spec(format!(
                "partition label {:?}: GPT names hold at most 36 characters, and sgdisk can't take ':'",
                p.label
            )));
        }
    }
    Ok(())
}

/// Creates the sparse image and starts sgdisk on it (if it gets partitions).
fn make_disk(path: &Path, d: &DiskSpec) -> Result<Option<(String, std::process::Child)>, VmError> {
    let f = std::fs::File::create(path).map_err(io_err(format!("creating {}", path.display())))?;
    f.set_len(d.size_mib << 20)
        .map_err(io_err(format!("sizing {}", path.display())))?;
    drop(f);
    if d.partitions.is_empty() {
        return Ok(None);
    }
    let sgdisk = host::find_program("sgdisk", "gdisk")?;
    let mut cmd = Command::new(sgdisk);
    cmd.arg("--clear");
    for (i, p) in d.partitions.iter().enumerate() {
        let n = i + 1;
        let end = match p.size_mib {
            Some(s) => format!("+{s}M"),
            None => "0".to_string(),
        };
        cmd.arg(format!("--new={n}:0:{end}"))
            .arg(format!("--change-name={n}:{}", p.label))
            .arg(format!("--typecode={n}:8300"));
    }
    cmd.arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let shown = format!("{cmd:?}");
    let child = cmd
        .spawn()
        .map_err(io_err(format!("starting {shown} (package gdisk)")))?;
    Ok(Some((shown, child)))
}

/// The base initramfs, built once per process and cached on disk by content.
const FULL_USERSPACE: initramfs::Userspace = initramfs::Userspace {
    lvm2: true,
    thin_tools: true,
    containers: false,
};

/// A base initramfs (one per userspace variant), built once per process and
/// cached on disk by content.
fn base_initramfs(
    cache: &Path,
    system: &GuestSystem,
    userspace: initramfs::Userspace,
) -> Result<(PathBuf, Arc<Vec<u8>>), VmError> {
    type Built = (Arch, initramfs::Userspace, PathBuf, Arc<Vec<u8>>);
    static BASES: Mutex<Vec<Built>> = Mutex::new(Vec::new());
    let mut guard = BASES.lock().unwrap_or_else(|e| e.into_inner());
    let arch = system.arch();
    if let Some((.., path, bytes)) = guard
        .iter()
        .find(|(a, u, ..)| *a == arch && *u == userspace)
    {
        return Ok((path.clone(), bytes.clone()));
    }
    let kernel = system.kernel();
    let tree = system.base_tree(userspace)?;
    let bytes = tree.to_cpio();
    let hash = content_hash(&bytes);
    let dir = cache.join("initramfs");
    let prefix = format!("base-{}{}-", userspace.tag(), kernel.version);
    let path = dir.join(format!("{prefix}{hash:016x}.cpio"));
    if !path.is_file() {
        let _lock = host::lock_cache(cache, "initramfs")?;
        if !path.is_file() {
            // Older bases of this variant are only garbage now.
            if let Ok(entries) = std::fs::read_dir(&dir) {
                for e in entries.flatten() {
                    if e.file_name().to_string_lossy().starts_with(&prefix) {
                        let _ = std::fs::remove_file(e.path());
                    }
                }
            }
            host::write_atomic(&path, &bytes)?;
        }
    }
    let bytes = Arc::new(bytes);
    guard.push((arch, userspace, path.clone(), bytes.clone()));
    Ok((path, bytes))
}

/// Runs qemu with its output in `qemu_log`; kills it after `timeout`. Returns its
/// exit status (`None` after a timeout) and how long it ran.
pub(crate) fn run_qemu(
    cmd: &mut Command,
    qemu: &Path,
    qemu_log: &Path,
    timeout: Duration,
) -> Result<(Option<std::process::ExitStatus>, Duration), VmError> {
    let log = std::fs::File::create(qemu_log)
        .map_err(io_err(format!("creating {}", qemu_log.display())))?;
    let log2 = log
        .try_clone()
        .map_err(io_err(format!("opening {}", qemu_log.display())))?;
    cmd.stdin(Stdio::null()).stdout(log).stderr(log2);

    let start = Instant::now();
    let package = if qemu.ends_with("qemu-system-aarch64") {
        Arch::Aarch64.qemu().1
    } else {
        Arch::X86_64.qemu().1
    };
    let mut child = cmd.spawn().map_err(io_err(format!(
        "starting {} (package {package})",
        qemu.display()
    )))?;
    let status = loop {
        match child.try_wait().map_err(io_err("waiting for qemu"))? {
            Some(status) => break Some(status),
            None if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    Ok((status, start.elapsed()))
}
