//! Boots the test bed's kernel into a minimal Debian system with systemd as
//! PID 1, to prove how units behave on a real boot (ordering, hardening,
//! `RequiredBy=`), not only what `systemd-analyze verify` says about them.
//!
//! The root file system is an initramfs: a Debian root made by `mmdebstrap
//! --variant=minbase` (cached as one cpio archive, keyed by its inputs), the
//! kernel modules the guest needs, and a small per-boot cpio with the bed's
//! files, the units and their `systemctl enable` links. An initramfs rather than
//! an ext4 root disk because it needs no init of our own: the kernel starts
//! systemd directly (`rdinit=/sbin/init`), udev's coldplug loads virtio_blk as on
//! any host, the bed's disks keep their names (`/dev/vda`, …: no root disk in
//! front of them), and per-boot files are appended the way [`TestBed::boot`]
//! appends its overlay. The price is RAM: the root (~185 MB) lives in tmpfs.
//!
//! A reporter unit (`vmtest-report.service`) runs after `multi-user.target`
//! and the units named in [`SystemdBoot::report_after`]: it runs the report
//! script with the same `step` helper as [`TestBed::boot`]'s scripts, so its
//! results arrive as [`GuestRun::steps`], and then powers the guest off.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::cpio::Tree;
use crate::host::{self, io_err, run};
use crate::initramfs::{self, Collector};
use crate::kernel::{self, Kernel};
use crate::{guest, GuestRun, TestBed, VmError};

/// Debian suite of the root.
pub const SYSTEMD_ROOT_SUITE: &str = "bookworm";
const MIRROR: &str = "http://deb.debian.org/debian";

/// Packages on top of `minbase`: systemd as init, udev (coldplug loads the
/// virtio modules; `systemd-udev-settle`), kmod (`modprobe` for LVM and the
/// kernel), and the LVM userspace a LINSTOR satellite host has anyway (LINSTOR
/// runs `lvs`/`lvcreate`; its udev rules autoactivate VGs at boot).
pub const SYSTEMD_ROOT_PACKAGES: &[&str] = &[
    "systemd-sysv",
    "udev",
    "kmod",
    "lvm2",
    "thin-provisioning-tools",
];

/// Left out of the root to keep the initramfs small (dpkg `path-exclude`).
const EXCLUDED_PATHS: &[&str] = &[
    "/usr/share/doc/*",
    "/usr/share/man/*",
    "/usr/share/info/*",
    "/usr/share/locale/*",
];

/// Kernel modules shipped in `/lib/modules/<version>` (with their
/// dependencies): the virtio drivers udev loads at coldplug, and device-mapper
/// with thin provisioning, left for LVM's `modprobe` to load.
const ROOT_MODULES: &[&str] = &[
    "virtio_pci",
    "virtio_blk",
    "virtio_rng",
    "dm_mod",
    "dm_thin_pool",
];

/// Kernel command line: systemd straight from the initramfs, a panic resets
/// (qemu exits), and the same boot-time savers as [`TestBed::boot`].
const CMDLINE: &str = "console=ttyS0 rdinit=/sbin/init panic=-1 oops=panic loglevel=4 \
     mitigations=off cryptomgr.notests tsc=reliable no_timer_check nokaslr audit=0 \
     random.trust_cpu=on systemd.show_status=1 systemd.unit=multi-user.target";

const REPORT_UNIT: &str = "vmtest-report.service";
const REPORT_SCRIPT: &str = "usr/lib/vmtest/report.sh";
const STEPLIB: &str = "usr/lib/vmtest/steplib.sh";
const USER_SCRIPT: &str = "usr/lib/vmtest/script.sh";

/// What one systemd boot installs and what its reporter runs.
#[derive(Debug, Clone)]
pub struct SystemdBoot {
    /// Unit files for `/etc/systemd/system`: (file name, contents), installed byte for byte.
    pub units: Vec<(String, Vec<u8>)>,
    /// Units enabled with the host's `systemctl --root=… enable` (as their
    /// `[Install]` sections say).
    pub enable: Vec<String>,
    /// Further files: (absolute guest path, contents, mode).
    pub files: Vec<(String, Vec<u8>, u32)>,
    /// Units the reporter starts after, besides `multi-user.target` (it starts
    /// even when they fail or never start).
    pub report_after: Vec<String>,
    /// `/bin/sh` script the reporter runs, with `step NAME CMD ARGS...`.
    pub report_script: String,
    pub memory_mib: u32,
    /// Wall-clock limit for the whole boot; qemu is killed after it.
    pub timeout: Duration,
}

impl SystemdBoot {
    pub fn new(report_script: &str) -> SystemdBoot {
        SystemdBoot {
            units: Vec::new(),
            enable: Vec::new(),
            files: Vec::new(),
            report_after: Vec::new(),
            report_script: report_script.to_string(),
            memory_mib: 1024,
            timeout: Duration::from_secs(240),
        }
    }

    /// Installs a unit file (`name` is its file name in `/etc/systemd/system`).
    pub fn unit(mut self, name: &str, text: impl Into<Vec<u8>>) -> SystemdBoot {
        self.units.push((name.to_string(), text.into()));
        self
    }

    /// Installs the unit file at `host_path` unchanged, under its own file name.
    pub fn unit_from(self, host_path: &Path) -> Result<SystemdBoot, VmError> {
        let name = host_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| VmError::Spec(format!("{} names no unit file", host_path.display())))?;
        let text = std::fs::read(host_path)
            .map_err(io_err(format!("reading unit {}", host_path.display())))?;
        Ok(self.unit(&name, text))
    }

    pub fn enable(mut self, unit: &str) -> SystemdBoot {
        self.enable.push(unit.to_string());
        self
    }

    pub fn file(
        mut self,
        guest_path: &str,
        contents: impl Into<Vec<u8>>,
        mode: u32,
    ) -> SystemdBoot {
        self.files
            .push((guest_path.to_string(), contents.into(), mode));
        self
    }

    pub fn report_after(mut self, unit: &str) -> SystemdBoot {
        self.report_after.push(unit.to_string());
        self
    }
}

/// The cached Debian root: one cpio archive.
#[derive(Debug, Clone)]
pub struct SystemdRoot {
    pub cpio: PathBuf,
    pub bytes: u64,
    /// Whether this call ran mmdebstrap (false: it came from the cache).
    pub built: bool,
    pub build_time: Duration,
}

/// Builds the Debian root (or finds it in the cache) without booting.
pub fn prepare_systemd_root() -> Result<SystemdRoot, VmError> {
    systemd_root(&host::cache_dir())
}

impl TestBed {
    /// Boots the bed's disks (and files, e.g. [`TestBed::with_binary`]) into a
    /// Debian root running systemd, with `spec`'s units installed, and returns
    /// the reporter's steps after the guest powered off. Failing units are not
    /// an error; a guest that panics, hangs or never runs the reporter is.
    pub fn boot_systemd(&self, spec: &SystemdBoot) -> Result<GuestRun, VmError> {
        crate::check_syntax(&spec.report_script)?;
        let cache = host::cache_dir();
        let kernel = kernel::ensure(&cache)?;
        let root = systemd_root(&cache)?;
        let qemu = host::find_program("qemu-system-x86_64", "qemu-system-x86")?;
        let modules = modules_tree(&kernel)?.to_cpio();
        let overlay = self.systemd_overlay(spec)?.to_cpio();

        let n = self.boots.fetch_add(1, Ordering::SeqCst);
        let initrd_path = self.path.join(format!("boot{n}-systemd-initrd.cpio"));
        {
            use std::io::Write;
            let mut out = std::fs::File::create(&initrd_path)
                .map_err(io_err(format!("creating {}", initrd_path.display())))?;
            let mut base = std::fs::File::open(&root.cpio)
                .map_err(io_err(format!("opening {}", root.cpio.display())))?;
            std::io::copy(&mut base, &mut out)
                .and_then(|_| out.write_all(&modules))
                .and_then(|()| out.write_all(&overlay))
                .map_err(io_err(format!("writing {}", initrd_path.display())))?;
        }
        let console_path = self.path.join(format!("boot{n}-console.log"));
        let results_path = self.path.join(format!("boot{n}-results.log"));
        let qemu_log = self.path.join(format!("boot{n}-qemu.log"));

        let mut cmd = Command::new(&qemu);
        cmd.args(["-accel", "tcg", "-machine", "pc", "-cpu", "max"])
            .args(["-nodefaults", "-no-user-config", "-display", "none"])
            .args(["-monitor", "none", "-no-reboot"])
            .arg("-m")
            .arg(spec.memory_mib.to_string())
            .args(["-smp", "1"])
            .arg("-serial")
            .arg(format!("file:{}", console_path.display()))
            .arg("-serial")
            .arg(format!("file:{}", results_path.display()))
            .arg("-kernel")
            .arg(&kernel.vmlinuz)
            .arg("-initrd")
            .arg(&initrd_path)
            .arg("-append")
            .arg(CMDLINE)
            .args(["-device", "virtio-rng-pci"]);
        for (i, d) in self.disks.iter().enumerate() {
            let img = self.disk_path(&d.name);
            cmd.arg("-drive").arg(format!(
                "file={},if=none,id=disk{i},format=raw,cache=unsafe,discard=unmap",
                img.display().to_string().replace(',', ",,")
            ));
            cmd.arg("-device")
                .arg(format!("virtio-blk-pci,drive=disk{i},serial={}", d.name));
        }
        let (status, elapsed) = crate::run_qemu(&mut cmd, &qemu, &qemu_log, spec.timeout)?;
        if self.dir.is_some() {
            let _ = std::fs::remove_file(&initrd_path);
        }
        let console =
            String::from_utf8_lossy(&std::fs::read(&console_path).unwrap_or_default()).into_owned();
        let results =
            String::from_utf8_lossy(&std::fs::read(&results_path).unwrap_or_default()).into_owned();
        let console_tail = crate::tail(&console, 80);
        if console.contains("Kernel panic") {
            return Err(VmError::KernelPanic { console_tail });
        }
        let Some(status) = status else {
            return Err(VmError::Timeout {
                timeout: spec.timeout,
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
        let report = guest::parse_report(&results);
        let Some(started) = report.script_started_at else {
            return Err(VmError::Guest {
                reason: format!(
                    "systemd never ran {REPORT_UNIT} (did the boot reach multi-user.target?)"
                ),
                console_tail,
            });
        };
        let Some(script_exit_code) = report.script_exit else {
            return Err(VmError::Guest {
                reason: format!(
                    "the guest powered off before {REPORT_UNIT} finished ({} steps reported)",
                    report.steps.len()
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
        Ok(GuestRun {
            steps: report.steps,
            console,
            script_exit_code,
            power_cut: false,
            guest_uptime_at_script: Duration::try_from_secs_f64(started).ok(),
            elapsed,
        })
    }

    /// The per-boot cpio: the bed's files, the spec's units, files and enable
    /// links, and the reporter.
    fn systemd_overlay(&self, spec: &SystemdBoot) -> Result<Tree, VmError> {
        let mut overlay = Collector::new();
        for (host_path, guest_path) in &self.files {
            if !host_path.is_file() {
                return Err(VmError::Spec(format!(
                    "{} (to be copied to the guest's {guest_path}) does not exist",
                    host_path.display()
                )));
            }
            overlay.add_file_as(host_path, &initramfs::guest_path(Path::new(guest_path)))?;
        }
        let tree = &mut overlay.tree;
        for (path, contents, mode) in &spec.files {
            if !path.starts_with('/') {
                return Err(VmError::Spec(format!(
                    "guest path {path:?} is not absolute"
                )));
            }
            tree.file(
                &initramfs::guest_path(Path::new(path)),
                contents.clone(),
                *mode,
            );
        }
        tree.file("etc/hostname", b"vmtest-node\n".to_vec(), 0o644);
        tree.file(STEPLIB, guest::STEPLIB.as_bytes().to_vec(), 0o644);
        tree.file(USER_SCRIPT, spec.report_script.as_bytes().to_vec(), 0o644);
        tree.file(REPORT_SCRIPT, REPORTER_SH.as_bytes().to_vec(), 0o755);

        let mut units = spec.units.clone();
        units.push((REPORT_UNIT.to_string(), report_unit(&spec.report_after)?));
        let mut enable = spec.enable.clone();
        enable.push(REPORT_UNIT.to_string());
        for (name, text) in &units {
            check_unit_name(name)?;
            tree.file(&format!("etc/systemd/system/{name}"), text.clone(), 0o644);
        }
        for (link, target) in enable_links(&units, &enable)? {
            tree.symlink(&link, &target);
        }
        Ok(overlay.tree)
    }
}

/// Run by the reporter unit: the result protocol of [`TestBed::boot`]'s init
/// (script start and exit on the second serial port, `step` in between).
const REPORTER_SH: &str = r#"#!/bin/sh
R=/dev/ttyS1
stty -F "$R" raw -echo 2>/dev/null
export VMTEST_RESULTS=$R LANG=C SYSTEMD_COLORS=0 SYSTEMD_PAGER=
read up _ </proc/uptime
echo "@@VMTEST:SCRIPT-START:$up" >"$R"
echo "vmtest-stage: report-start uptime=$up"
sh -c '. /usr/lib/vmtest/steplib.sh; . /usr/lib/vmtest/script.sh' </dev/null
rc=$?
echo "@@VMTEST:SCRIPT-EXIT:$rc" >"$R"
echo "vmtest-stage: report-exit $rc"
exit 0
"#;

/// The reporter: ordered after `multi-user.target` (so after everything the
/// boot starts) and `after`; `DefaultDependencies=no` lets `multi-user.target`
/// want it without being ordered after it. It powers off however it ends.
fn report_unit(after: &[String]) -> Result<Vec<u8>, VmError> {
    for unit in after {
        check_unit_name(unit)?;
    }
    Ok(format!(
        "[Unit]\n\
         Description=vmtest: report to the host, then power off\n\
         DefaultDependencies=no\n\
         After=multi-user.target {}\n\
         SuccessAction=poweroff-immediate\n\
         FailureAction=poweroff-immediate\n\n\
         [Service]\n\
         Type=oneshot\n\
         ExecStart=/{REPORT_SCRIPT}\n\
         StandardOutput=tty\n\
         StandardError=tty\n\
         TTYPath=/dev/console\n\n\
         [Install]\n\
         WantedBy=multi-user.target\n",
        after.join(" ")
    )
    .into_bytes())
}

fn check_unit_name(name: &str) -> Result<(), VmError> {
    let ok = !name.is_empty()
        && name.contains('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.@:\\".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(VmError::Spec(format!(
            "{name:?} is not a systemd unit name"
        )))
    }
}

/// The symlinks `systemctl enable` makes for `enable`, found by running the
/// host's systemctl on a scratch root holding `units`: (guest path, target).
fn enable_links(
    units: &[(String, Vec<u8>)],
    enable: &[String],
) -> Result<Vec<(String, String)>, VmError> {
    let systemctl = host::find_program("systemctl", "systemd")?;
    let stage = tempfile::tempdir().map_err(io_err("creating a temporary folder"))?;
    let unit_dir = stage.path().join("etc/systemd/system");
    std::fs::create_dir_all(&unit_dir)
        .map_err(io_err(format!("creating {}", unit_dir.display())))?;
    for (name, text) in units {
        let p = unit_dir.join(name);
        std::fs::write(&p, text).map_err(io_err(format!("writing {}", p.display())))?;
    }
    if !enable.is_empty() {
        run(
            Command::new(systemctl)
                .arg(format!("--root={}", stage.path().display()))
                .arg("enable")
                .args(enable),
            "systemctl could not enable the units (see its message)",
        )?;
    }
    let mut links = Vec::new();
    collect_links(stage.path(), &unit_dir, &mut links)?;
    links.sort();
    Ok(links)
}

fn collect_links(
    root: &Path,
    dir: &Path,
    links: &mut Vec<(String, String)>,
) -> Result<(), VmError> {
    let entries = std::fs::read_dir(dir).map_err(io_err(format!("reading {}", dir.display())))?;
    for e in entries.flatten() {
        let p = e.path();
        let meta =
            std::fs::symlink_metadata(&p).map_err(io_err(format!("reading {}", p.display())))?;
        if meta.file_type().is_symlink() {
            let target =
                std::fs::read_link(&p).map_err(io_err(format!("reading {}", p.display())))?;
            let rel = p.strip_prefix(root).map_err(|_| {
                VmError::Spec(format!("{} is outside {}", p.display(), root.display()))
            })?;
            links.push((
                rel.to_string_lossy().into_owned(),
                target.to_string_lossy().into_owned(),
            ));
        } else if meta.is_dir() {
            collect_links(root, &p, links)?;
        }
    }
    Ok(())
}

/// `ROOT_MODULES` and their dependencies under `usr/lib/modules/<version>`,
/// indexed by depmod (so `modprobe` and udev's autoload work in the guest).
fn modules_tree(kernel: &Kernel) -> Result<Tree, VmError> {
    let mdir = kernel.modules_dir();
    let stage = tempfile::tempdir().map_err(io_err("creating a temporary folder"))?;
    let smod = stage.path().join("lib/modules").join(&kernel.version);
    for m in ROOT_MODULES {
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
        for path in out.lines().filter_map(|l| {
            l.trim()
                .strip_prefix("insmod ")
                .and_then(|rest| rest.split_whitespace().next())
        }) {
            let path = Path::new(path);
            let rel = path.strip_prefix(&mdir).map_err(|_| {
                VmError::Spec(format!(
                    "module {} is outside {}",
                    path.display(),
                    mdir.display()
                ))
            })?;
            let dst = smod.join(rel);
            if let Some(parent) = dst.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(io_err(format!("creating {}", parent.display())))?;
            }
            std::fs::copy(path, &dst).map_err(io_err(format!("copying {}", path.display())))?;
        }
    }
    for index in [
        "modules.order",
        "modules.builtin",
        "modules.builtin.modinfo",
    ] {
        let src = mdir.join(index);
        if src.is_file() {
            std::fs::copy(&src, smod.join(index))
                .map_err(io_err(format!("copying {}", src.display())))?;
        }
    }
    run(
        Command::new("depmod")
            .arg("-b")
            .arg(stage.path())
            .arg(&kernel.version),
        "depmod (package kmod) failed on the guest's module set",
    )?;
    let mut tree = Tree::new();
    add_files(
        &mut tree,
        &smod,
        &format!("usr/lib/modules/{}", kernel.version),
    )?;
    Ok(tree)
}

fn add_files(tree: &mut Tree, src: &Path, guest: &str) -> Result<(), VmError> {
    let entries = std::fs::read_dir(src).map_err(io_err(format!("reading {}", src.display())))?;
    for e in entries.flatten() {
        let p = e.path();
        let gp = format!("{guest}/{}", e.file_name().to_string_lossy());
        if p.is_dir() {
            add_files(tree, &p, &gp)?;
        } else {
            let data = std::fs::read(&p).map_err(io_err(format!("reading {}", p.display())))?;
            tree.file(&gp, data, 0o644);
        }
    }
    Ok(())
}

/// What the root is made from; its hash names the cached archive, so changing
/// any input builds a new one.
fn root_inputs() -> String {
    format!(
        "mmdebstrap --variant=minbase suite={SYSTEMD_ROOT_SUITE} mirror={MIRROR} \
         include={} exclude={} archive=find|cpio-newc v1",
        SYSTEMD_ROOT_PACKAGES.join(","),
        EXCLUDED_PATHS.join(",")
    )
}

fn systemd_root(cache: &Path) -> Result<SystemdRoot, VmError> {
    let dir = cache.join("systemd-root");
    let prefix = format!("root-{SYSTEMD_ROOT_SUITE}-");
    let cpio = dir.join(format!(
        "{prefix}{:016x}.cpio",
        crate::content_hash(root_inputs().as_bytes())
    ));
    let _lock = host::lock_cache(cache, "systemd-root")?;
    if let Ok(meta) = std::fs::metadata(&cpio) {
        return Ok(SystemdRoot {
            cpio,
            bytes: meta.len(),
            built: false,
            build_time: Duration::ZERO,
        });
    }
    let started = Instant::now();
    build_root(&dir, &cpio)?;
    // Roots built from other inputs are only garbage now.
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(&prefix) && e.path() != cpio {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    let bytes = std::fs::metadata(&cpio)
        .map_err(io_err(format!("reading {}", cpio.display())))?
        .len();
    let build_time = started.elapsed();
    eprintln!(
        "vmtest: built {} ({} MiB) in {build_time:.0?}",
        cpio.display(),
        bytes >> 20
    );
    Ok(SystemdRoot {
        cpio,
        bytes,
        built: true,
        build_time,
    })
}

/// mmdebstrap into a scratch folder, then `find | cpio` it (file owners and
/// modes as dpkg left them) into `out`.
fn build_root(dir: &Path, out: &Path) -> Result<(), VmError> {
    let mmdebstrap = host::find_program("mmdebstrap", "mmdebstrap")?;
    let cpio_prog = host::find_program("cpio", "cpio")?;
    let find = host::find_program("find", "findutils")?;
    let is_root = run(Command::new("id").arg("-u"), "`id -u` failed")?.trim() == "0";
    if !is_root {
        return Err(VmError::Spec(
            "building the systemd test root needs root: mmdebstrap's root mode keeps the \
             owners of the root's files (as on CI); run the test as root once to fill \
             target/vmtest-cache/systemd-root"
                .into(),
        ));
    }
    std::fs::create_dir_all(dir).map_err(io_err(format!("creating {}", dir.display())))?;
    let stage = tempfile::Builder::new()
        .prefix("build-")
        .tempdir_in(dir)
        .map_err(io_err(format!("creating a folder in {}", dir.display())))?;
    let root = stage.path().join("root");
    let mut cmd = Command::new(mmdebstrap);
    cmd.args([
        "--mode=root",
        "--format=directory",
        "--variant=minbase",
        "--quiet",
    ])
    .arg(format!("--include={}", SYSTEMD_ROOT_PACKAGES.join(",")));
    for path in EXCLUDED_PATHS {
        cmd.arg(format!("--dpkgopt=path-exclude={path}"));
    }
    cmd.arg(SYSTEMD_ROOT_SUITE).arg(&root).arg(MIRROR);
    eprintln!("vmtest: building the systemd root with mmdebstrap (once; cached)");
    run(
        &mut cmd,
        "mmdebstrap could not build the Debian root; it needs Debian's archive \
         (deb.debian.org) and root",
    )?;

    let archive = stage.path().join("root.cpio");
    let archive_file = std::fs::File::create(&archive)
        .map_err(io_err(format!("creating {}", archive.display())))?;
    let mut lister = Command::new(find)
        .args([".", "-print0"])
        .current_dir(&root)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(io_err("starting find (package findutils)"))?;
    let names = lister
        .stdout
        .take()
        .ok_or_else(|| VmError::Spec("find's output was not captured".into()))?;
    let packed = Command::new(cpio_prog)
        .args([
            "--null",
            "--create",
            "--format=newc",
            "--quiet",
            "--reproducible",
        ])
        .current_dir(&root)
        .stdin(names)
        .stdout(archive_file)
        .stderr(Stdio::piped())
        .output()
        .map_err(io_err("running cpio (package cpio)"))?;
    let listed = lister.wait().map_err(io_err("waiting for find"))?;
    if !listed.success() || !packed.status.success() {
        return Err(VmError::Command {
            command: format!("find . -print0 | cpio --create (in {})", root.display()),
            status: format!("find: {listed}, cpio: {}", packed.status),
            stderr: String::from_utf8_lossy(&packed.stderr).trim().to_string(),
            hint: "could not pack the Debian root into a cpio archive".into(),
        });
    }
    std::fs::rename(&archive, out).map_err(io_err(format!(
        "moving {} to {}",
        archive.display(),
        out.display()
    )))?;
    Ok(())
}
