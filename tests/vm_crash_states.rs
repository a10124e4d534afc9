//! Power loss with a volatile write cache, explored state by state (issue 19): every
//! write, flush and FUA the shipped binary sends to the disk during one start is
//! recorded with QEMU's `blklogwrites` driver; the crash states a cache may leave
//! (vmtest::crash_states: every prefix, every "header written, text not", every
//! subset of a small flush epoch, seeded samples of a large one) are rebuilt from the
//! pre-run image and the log; each state is attached in the guest as a loop device
//! and the same binary, started with the same satellite ID, must converge:
//!
//! - exit 0 (a refusal that wrote nothing is counted apart, "refused safely", and
//!   fails too: every state comes from one of our own starts, and a refusal keeps
//!   the node down on every later start);
//! - the VG carries the ID's tag and the pool is active;
//! - the next start writes nothing (0 write sectors in the loop device's
//!   `/sys/block/loopN/stat`, and `lvm_commands=0`);
//! - LINSTOR's per-volume sequence works: a thin `lvcreate`, a snapshot of it
//!   (`--setactivationskip y --ignoreactivationskip -pr`, as the satellite does), and
//!   `lvremove` of both (the probe volume, `lvchange -ay -K`, `lvresize` and the
//!   `vgs`/`lvs` reports run in vm_linstor, not per state);
//! - a thin volume of the matching ID keeps every byte (sha256 of its first 4 MiB);
//! - the disk's other partition is byte-identical across the start;
//! - `thin_check` passes on the pool's metadata (component-activated read-only after
//!   everything above).
//!
//! Scenarios: a fresh provision; a reset with a thin volume holding data; an
//! activation after a reboot (the recording itself must hold 0 writes); a grow with
//! the pool inactive and with it active (the partition grown on the host between
//! boots); a seed-tool node adopted; a fresh provision and a reset on a host whose
//! LVM uses a devices file (`/etc/lvm` on the disk's third partition, ext4 mounted
//! `noauto_da_alloc`, so its edits — a new file renamed over the old one, the folder
//! fsynced — are crash states too; replayed on a virtio disk of the recorded device
//! name: the host must see the VG through its devices file, left as the host's LVM
//! itself would keep it, with another disk's entry, and run LINSTOR's commands through
//! it). One setup boot, one recording boot for all
//! scenarios; the replay boots run many states each (the base image and every logged
//! write packed on one extra disk, read with `dd`).
//!
//! Settings (environment): `CRASH_STATES` states replayed per scenario and
//! architecture (default 2: the CI sample, "header written, text not" states first; `cargo xtask crash` sets it high),
//! `CRASH_SEED` (default 19), `CRASH_SAMPLES` random subsets drawn per large epoch
//! (default 200), `CRASH_ARCHES` (`x86_64,arm64`; arm64 needs
//! `LINSTOR_PROVISION_DISK_ARM64_BIN`), `CRASH_SCENARIOS` (comma list; default all),
//! `CRASH_ARM64_SCENARIOS` (default `fresh`), `CRASH_BATCH` states per replay
//! boot (default 40), `CRASH_JOBS` replay boots at once (default 1),
//! `CRASH_REPORT_DIR` (default `target/crash/sample`; `cargo xtask crash`: `target/crash`;
//! the recordings are kept there), and
//! `CRASH_REPLAY=<recording folder>` with `CRASH_STATE=<index>` to replay one state
//! of a kept recording (the index the report names).
mod common;

use common::*;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use vmtest::crash_states::{crash_states, sample, CrashState, Exploration};
use vmtest::write_log::{self, WriteLog};
use vmtest::{Arch, BootOptions, DiskSpec, GuestRun, TestBed};

const DISK_MIB: u64 = 96;
const GROWN_SIZE: &str = "128M";
const OTHER_MIB: u64 = 8;
/// The storage partition where a third partition follows it (the host's `/etc/lvm`).
const STORAGE_BESIDE_HOST_MIB: u64 = 80;
/// Another disk's PV in the host's devices file: every start must keep its entry.
const OTHER_DISK_ENTRY: &str =
    "IDTYPE=sys_serial IDNAME=another-disk DEVNAME=/dev/sdz PVID=Z0therD1skPvid0000000000000000aa PART=1";
const KEEP_BYTES: u64 = 4 * 1024 * 1024;
const MARK_BEGIN: &[u8] = b"VMTEST-CRASH-MARK-BEGIN";
const MARK_END: &[u8] = b"VMTEST-CRASH-MARK-END";
const ARM64_ENV: &str = "LINSTOR_PROVISION_DISK_ARM64_BIN";

/// One recorded start.
#[derive(Debug, Clone, Copy)]
struct Scenario {
    name: &'static str,
    /// The ID the recorded start (and every replay) is given.
    id: &'static str,
    /// Guest shell preparing the disk (`$D` the disk, `$S` its storage partition,
    /// `$VG` the VG name, `$ARGS` the tool's flags without the ID).
    setup: &'static str,
    /// Grow the disk on the host between setup and recording.
    grow: bool,
    /// Guest shell run in the recording boot before the recorded start (its writes
    /// are part of the starting image).
    before: &'static str,
    /// A thin volume the start must keep byte for byte.
    keep: Option<&'static str>,
    /// The recorded start must not write at all.
    writes_nothing: bool,
    /// The host's LVM in use: `/etc/lvm` is a folder on the disk's third partition
    /// (ext4, so the host's devices file edits are recorded and replayed like the
    /// partition's writes), with `use_devicesfile = 1` and a devices file listing
    /// another disk's PV. Mounted `noauto_da_alloc`: like XFS, ext4 then commits a
    /// rename before the renamed file's data, so a devices file written without an
    /// fsync of its own can be empty after a power loss. The state is replayed on a
    /// virtio disk of the recorded device name (LVM names a virtio disk's partition
    /// by it, `IDTYPE=devname`), not a loop device.
    host_lvm: bool,
}

const PROVISIONED_WITH_DATA: &str = "$LPD $ARGS --satellite-id node-01 >/dev/null 2>&1 && \
     lvcreate -q -V 16m -T $VG/pool -n keep && \
     dd if=/dev/urandom of=/dev/$VG/keep bs=1M count=4 conv=fsync 2>/dev/null && \
     vgchange -q -an $VG";

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "fresh",
        id: "node-01",
        setup: "true",
        grow: false,
        before: "",
        keep: None,
        writes_nothing: false,
        host_lvm: false,
    },
    Scenario {
        name: "reset",
        id: "node-02",
        setup: PROVISIONED_WITH_DATA,
        grow: false,
        before: "",
        keep: None,
        writes_nothing: false,
        host_lvm: false,
    },
    Scenario {
        name: "activate",
        id: "node-01",
        setup: PROVISIONED_WITH_DATA,
        grow: false,
        before: "",
        keep: Some("keep"),
        writes_nothing: true,
        host_lvm: false,
    },
    Scenario {
        name: "grow-inactive",
        id: "node-01",
        setup: PROVISIONED_WITH_DATA,
        grow: true,
        before: "",
        keep: Some("keep"),
        writes_nothing: false,
        host_lvm: false,
    },
    Scenario {
        name: "grow-active",
        id: "node-01",
        setup: PROVISIONED_WITH_DATA,
        grow: true,
        before: "vgchange -q -ay $VG",
        keep: Some("keep"),
        writes_nothing: false,
        host_lvm: false,
    },
    Scenario {
        name: "seed",
        id: "node-01",
        setup: "pvcreate -q $S && vgcreate -q $VG $S && \
             lvcreate -q --type thin-pool -l 100%FREE -n pool $VG && \
             lvcreate -q -V 100M -T $VG/pool -n metadata && mkfs.ext4 -q /dev/$VG/metadata && \
             mount /dev/$VG/metadata /mnt && printf node-01 > /mnt/satellite-id && umount /mnt && \
             lvcreate -q -V 16m -T $VG/pool -n keep && \
             dd if=/dev/urandom of=/dev/$VG/keep bs=1M count=4 conv=fsync 2>/dev/null && \
             vgchange -q -an $VG",
        grow: false,
        before: "",
        keep: Some("keep"),
        writes_nothing: false,
        host_lvm: false,
    },
    Scenario {
        name: "devices-file",
        id: "node-01",
        setup: "true",
        grow: false,
        before: "",
        keep: None,
        writes_nothing: false,
        host_lvm: true,
    },
    Scenario {
        name: "devices-file-reset",
        id: "node-02",
        setup: PROVISIONED_WITH_DATA,
        grow: false,
        before: "",
        keep: None,
        writes_nothing: false,
        host_lvm: true,
    },
];

impl Scenario {
    fn label(&self) -> String {
        format!("crash-{}", self.name)
    }
    fn vg(&self) -> String {
        format!("vg-{}", self.name)
    }
    fn args(&self) -> String {
        format!(
            "--partition-label {} --volume-group {} --pool pool --on-failure exit",
            self.label(),
            self.vg()
        )
    }
}

#[derive(Debug, Clone)]
struct Settings {
    states: usize,
    seed: u64,
    samples: usize,
    arches: Vec<Arch>,
    scenarios: Vec<String>,
    arm64_scenarios: Vec<String>,
    batch: usize,
    jobs: usize,
    report_dir: PathBuf,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v
            .parse()
            .unwrap_or_else(|_| panic!("${name}={v:?} is not a valid value")),
        _ => default,
    }
}

fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

impl Settings {
    fn from_env() -> Settings {
        let all: Vec<&str> = SCENARIOS.iter().map(|s| s.name).collect();
        let scenarios = env_list("CRASH_SCENARIOS", &all.join(","));
        let arm64_scenarios = env_list("CRASH_ARM64_SCENARIOS", "fresh");
        for s in scenarios.iter().chain(&arm64_scenarios) {
            assert!(
                all.contains(&s.as_str()),
                "unknown crash scenario {s:?} (known: {all:?})"
            );
        }
        let arches = env_list("CRASH_ARCHES", "x86_64,arm64")
            .iter()
            .map(|a| match a.as_str() {
                "x86_64" => Arch::X86_64,
                "arm64" | "aarch64" => Arch::Aarch64,
                other => panic!("$CRASH_ARCHES: unknown architecture {other:?}"),
            })
            .collect();
        let report_dir = std::env::var_os("CRASH_REPORT_DIR")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/crash/sample"));
        Settings {
            states: env_or("CRASH_STATES", 2),
            seed: env_or("CRASH_SEED", 19),
            samples: env_or("CRASH_SAMPLES", 200),
            arches,
            scenarios,
            arm64_scenarios,
            batch: env_or("CRASH_BATCH", 40usize).max(1),
            jobs: env_or("CRASH_JOBS", 1usize).max(1),
            report_dir,
        }
    }

    fn scenarios_for(&self, arch: Arch) -> Vec<Scenario> {
        let wanted = match arch {
            Arch::X86_64 => &self.scenarios,
            _ => &self.arm64_scenarios,
        };
        SCENARIOS
            .iter()
            .filter(|s| wanted.iter().any(|w| w == s.name))
            .copied()
            .collect()
    }
}

fn arch_name(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "x86_64",
        _ => "arm64",
    }
}

fn binary_for(arch: Arch) -> PathBuf {
    match arch {
        Arch::X86_64 => binary_under_test(),
        _ => {
            let path = std::env::var_os(ARM64_ENV)
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    panic!(
                        "${ARM64_ENV} is not set: build the arm64 artifact (`cargo xtask dist \
                         --target aarch64`) and point it there, or set CRASH_ARCHES=x86_64"
                    )
                });
            assert!(
                path.is_file(),
                "${ARM64_ENV} names {}, which does not exist",
                path.display()
            );
            path
        }
    }
}

fn boot_options(arch: Arch, timeout: Duration) -> BootOptions {
    BootOptions {
        arch,
        timeout,
        modules: vec!["loop".to_owned(), "dm_snapshot".to_owned()],
        ..BootOptions::default()
    }
}

fn boot_or_panic(bed: &TestBed, options: &BootOptions, script: &str, what: &str) -> GuestRun {
    match bed.boot(options, &format!("{PRELUDE}{script}")) {
        Ok(run) => {
            eprintln!("{what}: {} steps in {:?}", run.steps.len(), run.elapsed);
            run
        }
        Err(e) => panic!("{what}: VM boot failed: {e}"),
    }
}

fn run_host(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Grows the disk image and its last (storage) partition, keeping its start and label.
fn grow_storage(image: &Path, label: &str) {
    let info = Command::new("sgdisk")
        .arg("--info=2")
        .arg(image)
        .output()
        .expect("sgdisk --info");
    let info = String::from_utf8_lossy(&info.stdout).into_owned();
    let first = info
        .lines()
        .find_map(|l| l.strip_prefix("First sector: "))
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("sgdisk shows no first sector:\n{info}"))
        .to_owned();
    run_host(
        Command::new("truncate")
            .args(["--size", GROWN_SIZE])
            .arg(image),
    );
    run_host(
        Command::new("sgdisk")
            .arg("--move-second-header")
            .arg(image),
    );
    run_host(
        Command::new("sgdisk")
            .arg("--delete=2")
            .arg(format!("--new=2:{first}:0"))
            .arg(format!("--change-name=2:{label}"))
            .arg("--typecode=2:8300")
            .arg(image),
    );
}

fn sparse_copy(from: &Path, to: &Path) {
    run_host(Command::new("cp").arg("--sparse=always").arg(from).arg(to));
}

/// A kept recording: what a replay needs (saved as `recording.json` beside
/// `pre-run.img` and `writes.wlog`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Recording {
    arch: String,
    scenario: String,
    id: String,
    label: String,
    vg: String,
    keep: Option<String>,
    keep_sum: Option<String>,
    /// Log entries before `window.0` are part of the starting image; the explored
    /// entries are `window.0..window.1`.
    window: (usize, usize),
    image_bytes: u64,
    seed: u64,
    samples: usize,
    /// The disk's third partition holds the host's `/etc/lvm` (see
    /// [`Scenario::host_lvm`]); the recording's disk name is its scenario's name.
    #[serde(default)]
    host_lvm: bool,
    /// The disk's device node in the recording boot (`/dev/vdh`): a host-LVM
    /// state is replayed on a disk of that name, since LVM names a virtio disk's
    /// partition in the devices file by its device name.
    #[serde(default)]
    disk: String,
}

/// How a host-LVM scenario's file system is mounted (see [`Scenario::host_lvm`]).
const HOST_LVM_MOUNT_OPTIONS: &str = "noatime,noauto_da_alloc";

/// Where a host-LVM scenario's third partition is mounted in the guest.
fn host_lvm_dir(scenario: &str) -> String {
    format!("/mnt/host-lvm-{scenario}")
}

fn host_lvm_mount(disk: &str, scenario: &str) -> String {
    let dir = host_lvm_dir(scenario);
    format!("mkdir -p {dir} && mount -o {HOST_LVM_MOUNT_OPTIONS} {disk}3 {dir}")
}

/// The host's devices file after a start: the other disk's entry kept, and (when
/// `ours` is expected) one entry for the storage partition (part 2 of the disk whose
/// serial is the scenario's name).
fn expect_devices_file(file: &str, s: &Scenario, partition: &str, ours: bool, when: &str) {
    let entries: Vec<&str> = file.lines().filter(|l| l.starts_with("IDTYPE=")).collect();
    assert!(
        entries.contains(&OTHER_DISK_ENTRY),
        "{}: after the {when} the host's devices file lost the other disk's entry:\n{file}",
        s.name
    );
    let here: Vec<&&str> = entries
        .iter()
        .filter(|e| names_storage_partition(e, s.name, partition))
        .collect();
    assert_eq!(
        here.len(),
        usize::from(ours),
        "{}: after the {when} the host's devices file should list the storage partition {}:\n{file}",
        s.name,
        if ours { "once" } else { "not at all" }
    );
}

/// A devices file entry for the storage partition: by its device name (LVM's
/// `devname` type, what LVM 2.03.16 uses for a virtio disk, which has no wwid or
/// serial in sysfs) or, should a disk show a serial (the disk's name), by it and the
/// partition number.
fn names_storage_partition(entry: &str, scenario: &str, partition: &str) -> bool {
    entry.contains(&format!(" IDNAME={partition} "))
        || (entry.contains(&format!(" IDNAME={scenario} ")) && entry.ends_with(" PART=2"))
}

impl Recording {
    fn dir(settings: &Settings, arch: &str, scenario: &str) -> PathBuf {
        settings.report_dir.join(arch).join(scenario)
    }

    fn load(dir: &Path) -> (Recording, WriteLog, Vec<u8>) {
        let meta: Recording = serde_json::from_slice(
            &std::fs::read(dir.join("recording.json"))
                .unwrap_or_else(|e| panic!("{}: {e}", dir.join("recording.json").display())),
        )
        .expect("recording.json");
        let log = write_log::parse(&std::fs::read(dir.join("writes.wlog")).expect("writes.wlog"))
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let pre = std::fs::read(dir.join("pre-run.img")).expect("pre-run.img");
        (meta, log, pre)
    }

    fn exploration(&self) -> Exploration {
        Exploration {
            seed: self.seed,
            sampled_per_epoch: self.samples,
            ..Exploration::default()
        }
    }
}

/// The index of the entry holding a sector that starts with `mark` (the guest writes
/// it back as part of a page).
fn mark_index(log: &WriteLog, mark: &[u8], what: &str) -> usize {
    let found: Vec<usize> = (0..log.entries.len())
        .filter(|&i| log.entries[i].data.chunks(512).any(|s| s.starts_with(mark)))
        .collect();
    match found.as_slice() {
        [one] => *one,
        other => panic!(
            "{what}: expected one write of the mark {:?}, found {other:?}",
            String::from_utf8_lossy(mark)
        ),
    }
}

/// Setup boot and recording boot for `scenarios` on `arch`; saves each recording.
fn record(settings: &Settings, arch: Arch, scenarios: &[Scenario]) -> Vec<PathBuf> {
    let disks: Vec<DiskSpec> = scenarios
        .iter()
        .map(|s| {
            let disk = DiskSpec::new(s.name, DISK_MIB).partition("other", Some(OTHER_MIB));
            if s.host_lvm {
                disk.partition(&s.label(), Some(STORAGE_BESIDE_HOST_MIB))
                    .partition("host-etc-lvm", None)
            } else {
                disk.partition(&s.label(), None)
            }
        })
        .collect();
    let bed = TestBed::new(disks)
        .unwrap_or_else(|e| panic!("test bed: {e}"))
        .with_binary(&binary_for(arch));
    let dev = |i: usize| format!("/dev/vd{}", (b'a' + i as u8) as char);
    let mut setup = String::new();
    for (i, s) in scenarios.iter().enumerate() {
        let d = dev(i);
        if s.host_lvm {
            let _ = writeln!(
                setup,
                "step host-lvm-{n} sh -c 'mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 {d}3 && \
                 {mount} && mkdir -p {dir}/devices && \
                 sed \"s/use_devicesfile = 0/use_devicesfile = 1/\" /etc/lvm/lvm.conf >{dir}/lvm.conf && \
                 grep -q \"use_devicesfile = 1\" {dir}/lvm.conf && \
                 printf \"%s\\n\" \"# LVM uses devices listed in this file.\" VERSION=1.1.1 \"{OTHER_DISK_ENTRY}\" \
                   >{dir}/devices/system.devices && mount --bind {dir} /etc/lvm'",
                n = s.name,
                mount = host_lvm_mount(&d, s.name),
                dir = host_lvm_dir(s.name),
            );
        }
        let _ = writeln!(
            setup,
            "D={d}; S={d}2; VG={vg}; ARGS='{args}'\n\
             step other-{n} dd if=/dev/urandom of={d}1 bs=64k count=16 conv=fsync\n\
             step setup-{n} sh -c \"{cmd}\"",
            vg = s.vg(),
            args = s.args(),
            n = s.name,
            cmd = s
                .setup
                .replace("$LPD", "/usr/local/bin/linstor-provision-disk")
                .replace("$ARGS", &s.args())
                .replace("$VG", &s.vg())
                .replace("$S", &format!("{d}2"))
        );
        if s.keep.is_some() {
            let _ = writeln!(
                setup,
                "vgchange -q -ay {vg} >/dev/null 2>&1\nstep keep-{n} sum_head {KEEP_BYTES} /dev/{vg}/keep\nvgchange -q -an {vg} >/dev/null 2>&1",
                vg = s.vg(),
                n = s.name
            );
        }
        if s.host_lvm {
            let _ = writeln!(
                setup,
                "step host-lvm-setup-file-{n} cat /etc/lvm/devices/system.devices\n\
                 step host-lvm-off-{n} sh -c 'umount /etc/lvm && umount {dir}'",
                n = s.name,
                dir = host_lvm_dir(s.name),
            );
        }
    }
    let options = boot_options(arch, Duration::from_secs(900));
    let run = boot_or_panic(&bed, &options, &setup, &format!("{arch:?} setup"));
    for (i, s) in scenarios.iter().enumerate() {
        let d = dev(i);
        run.expect_success(&format!("other-{}", s.name));
        if s.host_lvm {
            run.expect_success(&format!("host-lvm-{}", s.name));
            run.expect_success(&format!("host-lvm-off-{}", s.name));
            let file = run
                .expect_success(&format!("host-lvm-setup-file-{}", s.name))
                .stdout
                .clone();
            expect_devices_file(&file, s, &format!("{d}2"), s.setup != "true", "setup");
        }
        run.expect_success(&format!("setup-{}", s.name));
        if s.grow {
            grow_storage(&bed.disk_path(s.name), &s.label());
        }
    }
    let keep_sums: BTreeMap<&str, String> = scenarios
        .iter()
        .filter(|s| s.keep.is_some())
        .map(|s| {
            (
                s.name,
                run.expect_success(&format!("keep-{}", s.name))
                    .stdout
                    .trim()
                    .to_owned(),
            )
        })
        .collect();
    let pre_dir = bed.dir().join("pre");
    std::fs::create_dir_all(&pre_dir).expect("mkdir");
    for s in scenarios {
        sparse_copy(
            &bed.disk_path(s.name),
            &pre_dir.join(format!("{}.img", s.name)),
        );
    }

    let mut script = String::new();
    let mark = |d: &str, text: &[u8]| {
        format!(
            "printf '%s' {} | dd of={d}1 bs=512 seek={} count=1 conv=sync,fsync oflag=direct 2>/dev/null\n",
            String::from_utf8_lossy(text),
            OTHER_MIB * 2048 - 1
        )
    };
    for (i, s) in scenarios.iter().enumerate() {
        let d = dev(i);
        if !s.before.is_empty() {
            let _ = writeln!(
                script,
                "step before-{} {}",
                s.name,
                s.before.replace("$VG", &s.vg())
            );
        }
        if s.host_lvm {
            let _ = writeln!(
                script,
                "step host-lvm-on-{n} sh -c '{mount} && mount --bind {dir} /etc/lvm'",
                n = s.name,
                mount = host_lvm_mount(&d, s.name),
                dir = host_lvm_dir(s.name),
            );
        }
        script.push_str(&mark(&d, MARK_BEGIN));
        let _ = writeln!(
            script,
            "step record-{} $LPD {} --satellite-id {}",
            s.name,
            s.args(),
            s.id
        );
        if s.host_lvm {
            // What the host writes back after the start (its page cache, LVM's
            // backup files) belongs to the explored window too.
            let _ = writeln!(
                script,
                "step host-lvm-sync-{n} sync\nstep host-lvm-file-{n} cat /etc/lvm/devices/system.devices",
                n = s.name
            );
        }
        script.push_str(&mark(&d, MARK_END));
        if s.host_lvm {
            let _ = writeln!(
                script,
                "step host-lvm-off-{n} sh -c 'umount /etc/lvm && umount {dir}'",
                n = s.name,
                dir = host_lvm_dir(s.name),
            );
        }
    }
    let options = BootOptions {
        log_writes: scenarios.iter().map(|s| s.name.to_owned()).collect(),
        ..boot_options(arch, Duration::from_secs(900))
    };
    let run = boot_or_panic(&bed, &options, &script, &format!("{arch:?} recording"));
    let mut dirs = Vec::new();
    for (i, s) in scenarios.iter().enumerate() {
        let d = dev(i);
        if !s.before.is_empty() {
            run.expect_success(&format!("before-{}", s.name));
        }
        expect_provisioned(&run, &format!("record-{}", s.name));
        if s.host_lvm {
            run.expect_success(&format!("host-lvm-on-{}", s.name));
            run.expect_success(&format!("host-lvm-sync-{}", s.name));
            run.expect_success(&format!("host-lvm-off-{}", s.name));
            let file = run
                .expect_success(&format!("host-lvm-file-{}", s.name))
                .stdout
                .clone();
            expect_devices_file(&file, s, &format!("{d}2"), true, "recorded start");
        }
        let log_bytes = std::fs::read(bed.write_log_path(s.name)).expect("write log");
        let log = write_log::parse(&log_bytes)
            .unwrap_or_else(|e| panic!("{}: {e}", bed.write_log_path(s.name).display()));
        // The log is complete: replaying it all onto the pre-run image gives the disk.
        let pre_path = pre_dir.join(format!("{}.img", s.name));
        let mut image = std::fs::read(&pre_path).expect("pre-run image");
        for e in &log.entries {
            write_log::apply(&mut image, e, log.sector_size);
        }
        let after = std::fs::read(bed.disk_path(s.name)).expect("disk image");
        assert!(
            image == after,
            "{}: replaying the whole write log onto the pre-run image does not give the disk \
             (the log misses writes)",
            s.name
        );
        let begin = mark_index(&log, MARK_BEGIN, s.name);
        let end = mark_index(&log, MARK_END, s.name);
        let window = (begin + 1, end);
        let writes = log.entries[window.0..window.1]
            .iter()
            .filter(|e| e.changes_content())
            .count();
        if s.writes_nothing {
            assert_eq!(
                writes, 0,
                "{}: the start must write nothing, but the recording holds {writes} writes",
                s.name
            );
        }
        let dir = Recording::dir(settings, arch_name(arch), s.name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("mkdir report dir");
        sparse_copy(&pre_path, &dir.join("pre-run.img"));
        std::fs::write(dir.join("writes.wlog"), &log_bytes).expect("save log");
        let meta = Recording {
            arch: arch_name(arch).to_owned(),
            scenario: s.name.to_owned(),
            id: s.id.to_owned(),
            label: s.label(),
            vg: s.vg(),
            keep: s.keep.map(str::to_owned),
            keep_sum: keep_sums.get(s.name).cloned(),
            window,
            image_bytes: after.len() as u64,
            seed: settings.seed,
            samples: settings.samples,
            host_lvm: s.host_lvm,
            disk: d.clone(),
        };
        std::fs::write(
            dir.join("recording.json"),
            serde_json::to_vec_pretty(&meta).expect("json"),
        )
        .expect("save recording.json");
        dirs.push(dir);
    }
    dirs
}

/// The starting image of the explored window: the pre-run image and the entries
/// before it (the marks, and whatever the scenario's `before` wrote).
fn start_image(meta: &Recording, log: &WriteLog, pre: &[u8]) -> Vec<u8> {
    let mut image = pre.to_vec();
    for e in &log.entries[..meta.window.0] {
        write_log::apply(&mut image, e, log.sector_size);
    }
    image.resize(meta.image_bytes as usize, 0);
    image
}

/// Extents (byte offset, length) of `image` that hold anything but zeros, at 64 KiB
/// granularity, merged.
fn data_extents(image: &[u8]) -> Vec<(u64, u64)> {
    const BLOCK: usize = 64 * 1024;
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (i, chunk) in image.chunks(BLOCK).enumerate() {
        if chunk.iter().all(|&b| b == 0) {
            continue;
        }
        let start = (i * BLOCK) as u64;
        match out.last_mut() {
            Some((s, l)) if *s + *l == start => *l += chunk.len() as u64,
            _ => out.push((start, chunk.len() as u64)),
        }
    }
    out
}

/// One state to replay.
#[derive(Debug, Clone)]
struct Job {
    recording: usize,
    index: usize,
    state: CrashState,
}

/// The pack disk: per recording its starting image's data and its window's writes,
/// and the guest shell functions that rebuild a state from them.
struct Pack {
    bytes: Vec<u8>,
    functions: String,
}

fn pad(bytes: &mut Vec<u8>) {
    let rem = bytes.len() % 512;
    if rem != 0 {
        bytes.resize(bytes.len() + 512 - rem, 0);
    }
}

fn build_pack(recordings: &[(Recording, WriteLog, Vec<u8>)], used: &[usize]) -> Pack {
    let mut bytes = b"VMTEST-CRASH-PACK (no partition table)\n".to_vec();
    pad(&mut bytes);
    let mut functions = String::new();
    for &r in used {
        let (meta, log, pre) = &recordings[r];
        let image = start_image(meta, log, pre);
        let _ = writeln!(functions, "base_{r}() {{");
        for (offset, len) in data_extents(&image) {
            let at = bytes.len() as u64 / 512;
            bytes.extend_from_slice(&image[offset as usize..(offset + len) as usize]);
            let _ = writeln!(
                functions,
                "  dd if=$PACK of=$IMG bs=512 skip={at} seek={} count={} conv=notrunc 2>/dev/null || return 1",
                offset / 512,
                len / 512
            );
        }
        functions.push_str("}\n");
        for i in meta.window.0..meta.window.1 {
            let e = &log.entries[i];
            if !e.changes_content() {
                continue;
            }
            let scale = u64::from(log.sector_size) / 512;
            let (seek, count) = (e.sector * scale, e.nr_sectors * scale);
            if e.is_discard() {
                let _ = writeln!(
                    functions,
                    "e_{r}_{i}() {{ dd if=/dev/zero of=$IMG bs=512 seek={seek} count={count} conv=notrunc 2>/dev/null; }}"
                );
            } else {
                let at = bytes.len() as u64 / 512;
                bytes.extend_from_slice(&e.data);
                pad(&mut bytes);
                let _ = writeln!(
                    functions,
                    "e_{r}_{i}() {{ dd if=$PACK of=$IMG bs=512 skip={at} seek={seek} count={count} conv=notrunc 2>/dev/null; }}"
                );
            }
        }
    }
    Pack { bytes, functions }
}

/// Guest shell that rebuilds one state on a loop device and checks it. Prints
/// `KEY values` lines the host reads ([`Outcome::parse`]).
const CHECK_STATE: &str = r#"
PACK=${PACK:-/dev/vda}
HOST_LVM_MOUNT=${HOST_LVM_MOUNT:-noatime}
IMG=/tmp/state.img
writes() { blockdev --flushbufs "$1" 2>/dev/null; awk '{print $7}' /sys/block/${1#/dev/}/stat; }
# dm-thin commits its metadata by itself (a second after a change): a commit due from
# the first start's pool work is counted as that start's writes, not the next start's.
settled_writes() {
  a=$(writes $1); n=0
  while [ $n -lt 10 ]; do sleep 1.2; b=$(writes $1); [ "$a" = "$b" ] && break; a=$b; n=$((n+1)); done
  echo $b
}
# A state of a host-LVM scenario is built on the virtio disk given as $8 (its serial
# is what the host's devices file names), not a loop device; its third partition is
# the host's /etc/lvm.
check_state() {
  r=$1; entries=$2; size=$3; id=$4; vg=$5; label=$6; keep=$7; disk=$8
  t0=$(cut -d' ' -f1 /proc/uptime)
  if [ -n "$disk" ]; then
    IMG=$disk
    dd if=/dev/zero of=$IMG bs=1M count=$((size / 1048576)) conv=fsync 2>/dev/null || { echo "BUILD zero"; return 0; }
  else
    IMG=/tmp/state.img; rm -f $IMG; truncate -s "$size" $IMG
  fi
  base_$r || { echo "BUILD base"; return 0; }
  for e in $entries; do e_${r}_$e || { echo "BUILD entry $e"; return 0; }; done
  if [ -n "$disk" ]; then
    blockdev --flushbufs $disk; echo 3 >/proc/sys/vm/drop_caches
    blockdev --rereadpt $disk || { echo "BUILD rereadpt"; return 0; }
    loop=$disk; p=$disk
  else
    loop=$(losetup -P -f --show $IMG) || { echo "BUILD losetup"; return 0; }
    p=${loop}p
  fi
  i=0; while [ ! -b ${p}2 ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
  part=${p}2; other=${p}1; D="--devices $part"
  if [ -n "$disk" ]; then
    i=0; while [ ! -b ${p}3 ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
    mkdir -p /mnt/host-lvm && mount -o $HOST_LVM_MOUNT ${p}3 /mnt/host-lvm && mount --bind /mnt/host-lvm /etc/lvm
    echo "HOSTMOUNT $?"
    # LINSTOR's commands go through the host's devices file, as on the node.
    D=""
  fi
  echo "OTHER1 $(sum_head 8388608 $other)"
  args="--partition-label $label --volume-group $vg --pool pool --on-failure exit --satellite-id $id"
  w0=$(writes $loop)
  timeout 300 $LPD $args >/tmp/run1.out 2>&1; rc1=$?
  [ -z "$disk" ] || sync
  w1=$(settled_writes $loop)
  echo "RUN1 $rc1 $((w1-w0))"
  tail -n 2 /tmp/run1.out | sed 's/^/LOG1 /'
  timeout 300 $LPD $args >/tmp/run2.out 2>&1; rc2=$?
  [ -z "$disk" ] || sync
  w2=$(writes $loop)
  echo "RUN2 $rc2 $((w2-w1)) $(grep -c 'lvm_commands=0' /tmp/run2.out)"
  [ $rc2 -eq 0 ] || tail -n 2 /tmp/run2.out | sed 's/^/LOG2 /'
  echo "LVS $(lvs $D --noheadings --separator ';' -o vg_tags,lv_attr,data_percent $vg/pool 2>/dev/null | tr -d ' ')"
  if [ -n "$disk" ]; then
    # The devices file as the start left it, then the host's own view through it:
    # a first host command that has to fix the file is a finding, not a pass.
    grep '^IDTYPE=' /etc/lvm/devices/system.devices 2>/dev/null | sed 's/^/HOSTENTRY /'
    echo "HOSTFILE1 $(grep -v '^#' /etc/lvm/devices/system.devices 2>/dev/null | sha256sum | cut -c1-16)"
    echo "HOSTVG $(vgs --noheadings -o vg_tags $vg 2>/dev/null | tr -d ' ')"
    echo "HOSTFILE2 $(grep -v '^#' /etc/lvm/devices/system.devices 2>/dev/null | sha256sum | cut -c1-16)"
  fi
  lvcreate $D -q -V 65536k -T $vg/pool -n crash_00000 >/tmp/l.out 2>&1; echo "LINSTOR create $?"
  lvcreate $D -q --snapshot --setactivationskip y --ignoreactivationskip --activate y --name $vg/crash_00000_snap $vg/crash_00000 -pr >>/tmp/l.out 2>&1; echo "LINSTOR snapshot $?"
  lvremove $D -q -f $vg/crash_00000_snap $vg/crash_00000 >>/tmp/l.out 2>&1; echo "LINSTOR remove $?"
  grep -v '^ *WARNING' /tmp/l.out | head -n 2 | sed 's/^/LOGL /'
  if [ -n "$keep" ]; then
    lvchange $D -q -ay -K $vg/$keep >/dev/null 2>&1
    echo "KEEP $(sum_head 4194304 /dev/$vg/$keep 2>/dev/null)"
  fi
  echo "OTHER2 $(sum_head 8388608 $other)"
  vgchange $D -q -an $vg >/dev/null 2>&1
  dm=$(echo "$vg" | sed 's/-/--/g')-pool_tmeta
  lvchange $D -q -y -ay $vg/pool_tmeta >/dev/null 2>&1
  thin_check -q /dev/mapper/$dm >/tmp/tc.out 2>&1; echo "THINCHECK $?"
  dmsetup remove_all >/dev/null 2>&1
  if [ -n "$disk" ]; then
    umount /etc/lvm; umount /mnt/host-lvm
    blockdev --flushbufs $disk
  else
    losetup -d $loop; rm -f $IMG
  fi
  rm -rf /dev/$vg /etc/lvm/backup /etc/lvm/archive /run/lvm/hints /run/lvm/searched_devnames
  echo "TIME $t0 $(cut -d' ' -f1 /proc/uptime)"
}
"#;

/// What one state's checks found.
#[derive(Debug, Clone, Default)]
struct Outcome {
    converged: bool,
    refused_safely: bool,
    failures: Vec<String>,
    message: String,
    seconds: f64,
}

impl Outcome {
    fn parse(out: &str, meta: &Recording) -> Outcome {
        let mut fields: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        let mut logs = Vec::new();
        let mut host_entries: Vec<String> = Vec::new();
        for line in out.lines() {
            let (key, rest) = line.split_once(' ').unwrap_or((line, ""));
            if key == "LOG1" || key == "LOG2" || key == "LOGL" {
                logs.push(rest.trim().to_owned());
            } else if key == "HOSTENTRY" {
                host_entries.push(rest.trim().to_owned());
            } else if key == "LINSTOR" {
                fields.insert(
                    match rest.split(' ').next() {
                        Some("create") => "LINSTOR_create",
                        Some("snapshot") => "LINSTOR_snapshot",
                        _ => "LINSTOR_remove",
                    },
                    rest.split(' ').skip(1).collect(),
                );
            } else {
                fields.insert(key, rest.split(' ').collect());
            }
        }
        let get = |k: &str, i: usize| fields.get(k).and_then(|v| v.get(i)).copied().unwrap_or("");
        let mut o = Outcome {
            message: logs.first().cloned().unwrap_or_default(),
            ..Outcome::default()
        };
        if let Some(build) = fields.get("BUILD") {
            o.failures
                .push(format!("the state could not be built: {build:?}"));
            return o;
        }
        if let (Ok(t0), Ok(t1)) = (get("TIME", 0).parse::<f64>(), get("TIME", 1).parse::<f64>()) {
            o.seconds = t1 - t0;
        }
        let mut fail = |ok: bool, what: String| {
            if !ok {
                o.failures.push(what);
            }
        };
        if meta.host_lvm && get("HOSTMOUNT", 0) != "0" {
            o.failures
                .push("the state's host file system (/etc/lvm) could not be mounted".to_owned());
            return o;
        }
        let other_same = !get("OTHER1", 0).is_empty() && get("OTHER1", 0) == get("OTHER2", 0);
        if get("RUN1", 0) != "0" {
            if get("RUN1", 1) == "0" && other_same {
                o.refused_safely = true;
                o.message = logs.join(" | ");
                return o;
            }
            fail(
                false,
                format!(
                    "the start exited {} after writing {} sectors: {}",
                    get("RUN1", 0),
                    get("RUN1", 1),
                    logs.join(" | ")
                ),
            );
            return o;
        }
        fail(
            get("RUN2", 0) == "0" && get("RUN2", 1) == "0" && get("RUN2", 2) != "0",
            format!(
                "the next start exited {} after writing {} sectors (lvm_commands=0 lines: {})",
                get("RUN2", 0),
                get("RUN2", 1),
                get("RUN2", 2)
            ),
        );
        let lvs: Vec<&str> = get("LVS", 0).split(';').collect();
        let column = |i: usize| lvs.get(i).copied().unwrap_or("");
        let (tags, attr, data_percent) = (column(0), column(1), column(2));
        fail(
            tags.split(',')
                .any(|t| t == format!("linstor-satellite-id={}", meta.id)),
            format!("the VG's tags {tags:?} lack the ID {:?}", meta.id),
        );
        // Active as LINSTOR sees it: it reads data_percent, and an inactive pool
        // reports none (LINSTOR then takes it as full).
        fail(
            attr.starts_with('t') && data_percent.parse::<f64>().is_ok(),
            format!(
                "the pool is not an active thin pool (lv_attr {attr:?}, data_percent {data_percent:?})"
            ),
        );
        for step in ["create", "snapshot", "remove"] {
            let key = format!("LINSTOR_{step}");
            fail(
                get(&key, 0) == "0",
                format!(
                    "LINSTOR's thin {step} exited {:?} ({})",
                    get(&key, 0),
                    logs.join(" | ")
                ),
            );
        }
        if let Some(expected) = &meta.keep_sum {
            fail(
                get("KEEP", 0) == expected.split_whitespace().next().unwrap_or(""),
                format!(
                    "the thin volume {:?} lost data (sha256 {:?})",
                    meta.keep,
                    get("KEEP", 0)
                ),
            );
        }
        fail(other_same, "the disk's other partition changed".to_owned());
        if meta.host_lvm {
            // The host must see the VG through its own devices file, and keep the
            // other disk's entry.
            fail(
                get("HOSTVG", 0)
                    .split(',')
                    .any(|t| t == format!("linstor-satellite-id={}", meta.id)),
                format!(
                    "the host's LVM (its devices file) does not show the VG with the ID: \
                     vg_tags {:?}; devices file entries {host_entries:?}",
                    get("HOSTVG", 0)
                ),
            );
            fail(
                host_entries.iter().any(|e| e == OTHER_DISK_ENTRY),
                format!("the host's devices file lost the other disk's entry: {host_entries:?}"),
            );
            fail(
                !get("HOSTFILE1", 0).is_empty() && get("HOSTFILE1", 0) == get("HOSTFILE2", 0),
                format!(
                    "the host's first LVM command rewrote the devices file the start left \
                     (entries before it: {host_entries:?})"
                ),
            );
            fail(
                host_entries
                    .iter()
                    .filter(|e| {
                        names_storage_partition(e, &meta.scenario, &format!("{}2", meta.disk))
                    })
                    .count()
                    == 1,
                format!(
                    "the host's devices file should list the storage partition's disk once: \
                     {host_entries:?}"
                ),
            );
        }
        fail(
            get("THINCHECK", 0) == "0",
            format!("thin_check exited {:?}", get("THINCHECK", 0)),
        );
        o.converged = o.failures.is_empty();
        o
    }
}

/// Replays `jobs` in boots of `settings.batch` states; returns each job's outcome.
fn replay(
    settings: &Settings,
    arch: Arch,
    recordings: &[(Recording, WriteLog, Vec<u8>)],
    jobs: &[Job],
) -> Vec<Outcome> {
    let binary = binary_for(arch);
    let batches: Vec<&[Job]> = jobs.chunks(settings.batch).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(vec![None; jobs.len()]);
    std::thread::scope(|scope| {
        for _ in 0..settings.jobs.min(batches.len()) {
            scope.spawn(|| loop {
                let b = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(batch) = batches.get(b) else { break };
                let outcomes = replay_batch(&binary, arch, recordings, batch, b, batches.len());
                let mut all = results.lock().unwrap_or_else(|e| e.into_inner());
                for (k, o) in outcomes.into_iter().enumerate() {
                    all[b * settings.batch + k] = Some(o);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|o| o.expect("every batch ran"))
        .collect()
}

fn replay_batch(
    binary: &Path,
    arch: Arch,
    recordings: &[(Recording, WriteLog, Vec<u8>)],
    batch: &[Job],
    number: usize,
    of: usize,
) -> Vec<Outcome> {
    let mut used: Vec<usize> = batch.iter().map(|j| j.recording).collect();
    used.sort_unstable();
    used.dedup();
    let pack = build_pack(recordings, &used);
    let pack_mib = (pack.bytes.len() as u64 >> 20) + 2;
    // A host-LVM recording's states are built on a disk of its recording's name
    // (the serial its devices file entries name): /dev/vdb, /dev/vdc, … after the pack.
    // A host-LVM recording's states are built on a disk of the recording's device
    // name (what its devices file entries name), small filler disks taking the
    // letters before it; the pack comes after them.
    let letter = |dev: &str| -> usize {
        match dev.strip_prefix("/dev/vd").map(str::as_bytes) {
            Some([c]) if c.is_ascii_lowercase() => usize::from(c - b'a'),
            _ => panic!("recorded disk {dev:?} is not a /dev/vdX node"),
        }
    };
    let mut slots: Vec<Option<usize>> = Vec::new();
    for &r in used.iter().filter(|&&r| recordings[r].0.host_lvm) {
        let at = letter(&recordings[r].0.disk);
        if slots.len() <= at {
            slots.resize(at + 1, None);
        }
        assert!(
            slots[at].is_none(),
            "two host-LVM recordings of one replay boot were made on {}",
            recordings[r].0.disk
        );
        slots[at] = Some(r);
    }
    let mut disks = Vec::new();
    for (at, slot) in slots.iter().enumerate() {
        disks.push(match slot {
            Some(r) => DiskSpec::new(
                &recordings[*r].0.scenario,
                recordings[*r].0.image_bytes.div_ceil(1 << 20),
            ),
            None => DiskSpec::new(&format!("filler{at}"), 2),
        });
    }
    let pack_dev = format!("/dev/vd{}", (b'a' + slots.len() as u8) as char);
    disks.push(DiskSpec::new("pack", pack_mib));
    let disk_of = |r: usize| {
        if recordings[r].0.host_lvm {
            recordings[r].0.disk.clone()
        } else {
            String::new()
        }
    };
    let bed = TestBed::new(disks)
        .unwrap_or_else(|e| panic!("test bed: {e}"))
        .with_binary(binary);
    std::fs::write(bed.disk_path("pack"), &pack.bytes).expect("write pack");
    std::fs::File::options()
        .write(true)
        .open(bed.disk_path("pack"))
        .and_then(|f| f.set_len(pack_mib << 20))
        .expect("size pack");
    let mut script = format!(
        "PACK={pack_dev}\nHOST_LVM_MOUNT={HOST_LVM_MOUNT_OPTIONS}\n{CHECK_STATE}{}",
        pack.functions
    );
    for (k, job) in batch.iter().enumerate() {
        let meta = &recordings[job.recording].0;
        let entries: Vec<String> = job
            .state
            .entries
            .iter()
            .filter(|&&i| i >= meta.window.0)
            .map(|i| i.to_string())
            .collect();
        let _ = writeln!(
            script,
            "step st{k} check_state {} '{}' {} '{}' {} {} '{}' '{}'",
            job.recording,
            entries.join(" "),
            meta.image_bytes,
            meta.id,
            meta.vg,
            meta.label,
            meta.keep.clone().unwrap_or_default(),
            disk_of(job.recording)
        );
    }
    let timeout = Duration::from_secs(300 + 120 * batch.len() as u64);
    let started = Instant::now();
    let run = boot_or_panic(
        &bed,
        &boot_options(arch, timeout),
        &script,
        &format!(
            "{arch:?} replay boot {}/{of} ({} states)",
            number + 1,
            batch.len()
        ),
    );
    eprintln!(
        "{arch:?} replay boot {}/{of}: {:.1} s per state",
        number + 1,
        started.elapsed().as_secs_f64() / batch.len() as f64
    );
    let mut outcomes: Vec<Outcome> = batch
        .iter()
        .enumerate()
        .map(|(k, job)| {
            let step = run.step(&format!("st{k}"));
            Outcome::parse(&step.stdout, &recordings[job.recording].0)
        })
        .collect();
    // The guest's clock drifts under TCG on a loaded host (seen: 9× fast): scale the
    // states' guest seconds so they add up to the boot's host wall clock (which
    // also spreads the boot itself over the states).
    let guest_total: f64 = outcomes.iter().map(|o| o.seconds).sum();
    if guest_total > 0.0 {
        let scale = run.elapsed.as_secs_f64() / guest_total;
        for o in &mut outcomes {
            o.seconds *= scale;
        }
    }
    outcomes
}

/// The states of one recording (the same for the same log and parameters).
fn states_of(meta: &Recording, log: &WriteLog) -> Vec<CrashState> {
    crash_states(log, meta.window.0..meta.window.1, meta.exploration())
}

/// Per (arch, scenario) numbers for the report.
#[derive(Debug, Default, Clone, serde::Serialize)]
struct ScenarioReport {
    arch: String,
    scenario: String,
    entries: usize,
    writes: usize,
    flushes: usize,
    fua: usize,
    epochs: usize,
    distinct_states: usize,
    /// Distinct states by how they were chosen (prefix, header-without-text, …).
    kinds: BTreeMap<String, usize>,
    replayed: usize,
    converged: usize,
    refused_safely: usize,
    failed: usize,
    seconds_total: f64,
    slowest_state: Option<(usize, f64)>,
    refusals: Vec<String>,
    failures: Vec<String>,
}

fn write_report(settings: &Settings, reports: &[ScenarioReport], wall: Duration) -> PathBuf {
    std::fs::create_dir_all(&settings.report_dir).expect("mkdir report");
    let json = settings.report_dir.join("report.json");
    std::fs::write(&json, serde_json::to_vec_pretty(reports).expect("json")).expect("report.json");
    let mut md = format!(
        "# Crash-state exploration\n\nBinary: {}\nSeed {}, up to {} states per scenario and \
         architecture, {} random subsets per large epoch; wall clock {:.0} s.\n\n\
         | arch | scenario | log entries (writes/flushes/FUA) | epochs | distinct states | replayed | converged | refused safely | failed | s/state (mean) | s (all states) | slowest state |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|\n",
        binary_under_test().display(),
        settings.seed,
        settings.states,
        settings.samples,
        wall.as_secs_f64()
    );
    for r in reports {
        let _ = writeln!(
            md,
            "| {} | {} | {} ({}/{}/{}) | {} | {} | {} | {} | {} | {} | {:.1} | {:.0} | {} |",
            r.arch,
            r.scenario,
            r.entries,
            r.writes,
            r.flushes,
            r.fua,
            r.epochs,
            r.distinct_states,
            r.replayed,
            r.converged,
            r.refused_safely,
            r.failed,
            if r.replayed > 0 {
                r.seconds_total / r.replayed as f64
            } else {
                0.0
            },
            r.seconds_total,
            r.slowest_state
                .map(|(i, s)| format!("#{i} {s:.1} s"))
                .unwrap_or_default()
        );
    }
    let _ = writeln!(md, "\nDistinct states by kind:\n");
    for r in reports {
        let _ = writeln!(md, "- {} {}: {:?}", r.arch, r.scenario, r.kinds);
    }
    for r in reports {
        for (title, list) in [("Refused safely", &r.refusals), ("Failed", &r.failures)] {
            if list.is_empty() {
                continue;
            }
            let _ = writeln!(md, "\n## {title}: {} {}\n", r.arch, r.scenario);
            for line in list {
                let _ = writeln!(md, "- {line}");
            }
        }
    }
    let _ = writeln!(
        md,
        "\nReproduce one state: `CRASH_REPLAY={}/<arch>/<scenario> CRASH_STATE=<n> cargo test \
         --test vm_crash_states -- --nocapture` (with the same LINSTOR_PROVISION_DISK_BIN), or \
         `cargo xtask crash --replay <folder> --state <n>`.",
        settings.report_dir.display()
    );
    let path = settings.report_dir.join("report.md");
    std::fs::write(&path, md).expect("report.md");
    path
}

fn explore(settings: &Settings) -> Vec<ScenarioReport> {
    let mut reports = Vec::new();
    for &arch in &settings.arches {
        let scenarios = settings.scenarios_for(arch);
        if scenarios.is_empty() {
            continue;
        }
        let dirs = record(settings, arch, &scenarios);
        let recordings: Vec<(Recording, WriteLog, Vec<u8>)> =
            dirs.iter().map(|d| Recording::load(d)).collect();
        let mut jobs = Vec::new();
        let mut per: Vec<ScenarioReport> = Vec::new();
        for (r, (meta, log, _)) in recordings.iter().enumerate() {
            let states = states_of(meta, log);
            let window = &log.entries[meta.window.0..meta.window.1];
            let chosen = sample(&states, settings.states, settings.seed);
            eprintln!(
                "{} {}: {} log entries, {} distinct crash states, replaying {}",
                meta.arch,
                meta.scenario,
                window.len(),
                states.len(),
                chosen.len()
            );
            per.push(ScenarioReport {
                arch: meta.arch.clone(),
                scenario: meta.scenario.clone(),
                entries: window.len(),
                writes: window.iter().filter(|e| e.changes_content()).count(),
                flushes: window.iter().filter(|e| e.is_flush()).count(),
                fua: window.iter().filter(|e| e.is_fua()).count(),
                epochs: vmtest::crash_states::epochs(log, meta.window.0..meta.window.1).len(),
                distinct_states: states.len(),
                kinds: states.iter().fold(BTreeMap::new(), |mut m, s| {
                    *m.entry(s.kind.name().to_owned()).or_insert(0) += 1;
                    m
                }),
                replayed: chosen.len(),
                ..ScenarioReport::default()
            });
            for index in chosen {
                jobs.push(Job {
                    recording: r,
                    index,
                    state: states[index].clone(),
                });
            }
        }
        let outcomes = replay(settings, arch, &recordings, &jobs);
        for (job, outcome) in jobs.iter().zip(outcomes) {
            let report = &mut per[job.recording];
            let dir = &dirs[job.recording];
            report.seconds_total += outcome.seconds;
            if report
                .slowest_state
                .is_none_or(|(_, s)| outcome.seconds > s)
            {
                report.slowest_state = Some((job.index, outcome.seconds));
            }
            let what = format!(
                "state #{} ({}, epoch {}, {} of the window's writes): ",
                job.index,
                job.state.kind.name(),
                job.state.epoch,
                job.state
                    .entries
                    .iter()
                    .filter(|&&i| i >= recordings[job.recording].0.window.0)
                    .count()
            );
            if outcome.converged {
                report.converged += 1;
            } else if outcome.refused_safely {
                report.refused_safely += 1;
                report.refusals.push(format!("{what}{}", outcome.message));
            } else {
                report.failed += 1;
                report.failures.push(format!(
                    "{what}{} — reproduce: CRASH_REPLAY={} CRASH_STATE={}",
                    outcome.failures.join("; "),
                    dir.display(),
                    job.index
                ));
            }
        }
        reports.extend(per);
    }
    reports
}

fn replay_one(dir: &Path, index: usize) {
    let (meta, log, pre) = Recording::load(dir);
    let states = states_of(&meta, &log);
    let state = states
        .get(index)
        .unwrap_or_else(|| panic!("{} has {} states; no #{index}", dir.display(), states.len()))
        .clone();
    eprintln!("replaying {} state #{index}: {state:?}", dir.display());
    let arch = if meta.arch == "x86_64" {
        Arch::X86_64
    } else {
        Arch::Aarch64
    };
    let recordings = vec![(meta, log, pre)];
    let settings = Settings {
        batch: 1,
        jobs: 1,
        ..Settings::from_env()
    };
    let outcome = replay(
        &settings,
        arch,
        &recordings,
        &[Job {
            recording: 0,
            index,
            state,
        }],
    );
    eprintln!("{:#?}", outcome[0]);
    assert!(
        outcome[0].converged,
        "state #{index} of {} did not converge: {:?} {}",
        dir.display(),
        outcome[0].failures,
        outcome[0].message
    );
}

#[test]
fn every_crash_state_converges() {
    if let Some(dir) = std::env::var_os("CRASH_REPLAY").filter(|d| !d.is_empty()) {
        let index: usize = env_or("CRASH_STATE", usize::MAX);
        assert!(
            index != usize::MAX,
            "CRASH_REPLAY needs CRASH_STATE=<index>"
        );
        replay_one(Path::new(&dir), index);
        return;
    }
    let settings = Settings::from_env();
    let started = Instant::now();
    let reports = explore(&settings);
    let path = write_report(&settings, &reports, started.elapsed());
    eprintln!("report: {}", path.display());
    eprintln!("{}", std::fs::read_to_string(&path).unwrap_or_default());
    // Every state here comes from one of our own starts (a first provisioning, a
    // same-ID node, a reset of our tagged VG): a refusal, even one that wrote
    // nothing, leaves the node down on every later start. Listed apart, both fail.
    let failed: Vec<String> = reports
        .iter()
        .flat_map(|r| {
            let refused = r
                .refusals
                .iter()
                .map(move |f| format!("{} {}: refused (nothing written) {f}", r.arch, r.scenario));
            r.failures
                .iter()
                .map(move |f| format!("{} {}: {f}", r.arch, r.scenario))
                .chain(refused)
        })
        .collect();
    let replayed: usize = reports.iter().map(|r| r.replayed).sum();
    assert!(replayed > 0, "no crash state was replayed");
    assert!(
        failed.is_empty(),
        "{} of {replayed} crash states did not converge (report: {}):\n{}",
        failed.len(),
        path.display(),
        failed.join("\n")
    );
}
