//! The planner's plain-data summary of the host's LVM configuration for one
//! partition: is the host's devices file in use, does it list the partition's PV,
//! and would the host's filters hide the partition. Read from
//! [`super::host_lvm::HostLvm`] once per observation; `/etc/lvm` and `/dev` are
//! parameters so tests can point them at scratch folders.
use super::host_lvm::{
    lvm_device_names, HostLvm, IdType, PoolCreationSettings, DEFAULT_LOCKING_DIR,
    DEVICES_FILE_MAJOR,
};
use super::lvm::LvmUuid;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// What the host's LVM configuration means for the partition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HostLvmFacts {
    pub devices_file: DevicesFileFacts,
    /// The `global_filter` pattern that makes the host reject the partition. Only
    /// set while no devices file is in use (LVM ignores the filters then).
    pub global_filter_rejects: Option<FilterRejection>,
    /// The same for `devices/filter`: hides the VG from the host's own commands,
    /// not from a satellite (which passes its own `filter`).
    pub filter_rejects: Option<FilterRejection>,
    /// Why the host's configuration could not be read; the other fields are then
    /// their defaults and mean nothing.
    pub error: Option<String>,
    /// How the host's LVM locks a VG: what a removal this tool does itself (not
    /// through LVM) must take first. Shown only when it is not LVM's default.
    #[serde(skip_serializing_if = "VgLocking::is_default")]
    pub vg_locking: VgLocking,
    /// What decides whether LVM can build the thin pool (not in `status`'s JSON).
    #[serde(skip)]
    pub pool_creation: PoolCreationSettings,
}

/// How LVM on the host serialises commands on one VG.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum VgLocking {
    /// An exclusive `flock` on `V_<vg>` in `dir` (`global/locking_dir`).
    Files { dir: PathBuf },
    /// lvmlockd (`global/use_lvmlockd = 1`): its locks are not files this tool can
    /// take, so it cannot keep its own removals from racing an LVM command.
    Lvmlockd,
}

impl Default for VgLocking {
    fn default() -> Self {
        VgLocking::Files {
            dir: PathBuf::from(DEFAULT_LOCKING_DIR),
        }
    }
}

impl VgLocking {
    /// What `host`'s settings say.
    pub fn of(host: &HostLvm) -> VgLocking {
        match (&host.locking_dir, host.use_lvmlockd) {
            (_, true) => VgLocking::Lvmlockd,
            (Some(dir), false) => VgLocking::Files { dir: dir.clone() },
            (None, false) => VgLocking::default(),
        }
    }

    pub fn is_default(&self) -> bool {
        *self == VgLocking::default()
    }
}

/// A filter pattern that rejects the partition, and where it is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FilterRejection {
    /// The pattern as written, e.g. `r|^/dev/vda1$|`.
    pub rule: String,
    /// The configuration file that sets the list (`None`: unknown).
    pub file: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum DevicesFileFacts {
    /// No devices file, or `use_devicesfile = 0`: the host sees every device its
    /// filters accept.
    #[default]
    NotInUse,
    /// The host's LVM sees only the devices listed in `path`.
    InUse {
        path: PathBuf,
        /// An entry for the partition's current PV that the host matches to the
        /// partition (same PVID; for a `devname` entry, the same node).
        listed: bool,
        /// The partition's current PVID (shown undashed, as in the file) when any
        /// entry carries it: what `lvmdevices --delpvid` removes before that PV is
        /// destroyed.
        #[serde(serialize_with = "LvmUuid::serialize_undashed_option")]
        listed_pvid: Option<LvmUuid>,
        /// `VERSION=` as written.
        version: Option<String>,
        /// The file's folder cannot be written (a read-only mount): `lvmdevices`
        /// would fail after a reset had removed the old PV.
        #[serde(skip)]
        folder_read_only: bool,
        /// The file's major version is newer than the one this tool's LVM writes:
        /// LVM would refuse to edit it.
        version_too_new: bool,
        /// PVIDs of `devname` entries naming the partition that are not its PV's:
        /// dead lines a reset made behind the host's back leaves.
        dead_pvids: Vec<String>,
    },
}

impl DevicesFileFacts {
    /// `listed`, `not listed`, `not in use`: what `status` shows.
    pub fn summary(&self) -> &'static str {
        match self {
            DevicesFileFacts::NotInUse => "not in use",
            DevicesFileFacts::InUse { listed: true, .. } => "listed",
            DevicesFileFacts::InUse { listed: false, .. } => "not listed",
        }
    }
}

/// Reads the host's LVM configuration below `etc_lvm` and summarises it for the
/// partition `devnode` (names looked up below `dev_dir`) carrying PV `pv_uuid`.
pub fn read_host_lvm_facts(
    etc_lvm: &Path,
    dev_dir: &Path,
    devnode: &Path,
    pv_uuid: Option<&LvmUuid>,
) -> HostLvmFacts {
    match HostLvm::read(etc_lvm) {
        Ok(host) => HostLvmFacts {
            vg_locking: VgLocking::of(&host),
            pool_creation: host.pool_creation.clone(),
            ..summarise(&host, dev_dir, devnode, pv_uuid)
        },
        Err(e) => HostLvmFacts {
            error: Some(e.to_string()),
            ..HostLvmFacts::default()
        },
    }
}

/// `lvmdevices` writes a temporary file beside the devices file and renames it.
fn is_read_only_folder(folder: &Path) -> bool {
    matches!(
        nix::unistd::access(folder, nix::unistd::AccessFlags::W_OK),
        Err(nix::errno::Errno::EROFS | nix::errno::Errno::EACCES)
    )
}

fn summarise(
    host: &HostLvm,
    dev_dir: &Path,
    devnode: &Path,
    pv_uuid: Option<&LvmUuid>,
) -> HostLvmFacts {
    if let Some(file) = host
        .devices_file
        .as_ref()
        .filter(|_| host.devices_file_in_use())
    {
        let pvid = pv_uuid.map(LvmUuid::undashed);
        let devnode_text = devnode.to_string_lossy();
        let names_partition = |name: &Option<String>| name.as_deref() == Some(&*devnode_text);
        let mut dead_pvids: Vec<String> = file
            .entries
            .iter()
            .filter(|e| e.id_type == IdType::Devname)
            .filter(|e| names_partition(&e.id_name) || names_partition(&e.dev_name))
            .filter_map(|e| e.pvid.clone())
            .filter(|p| Some(p.as_str()) != pvid)
            .collect();
        dead_pvids.dedup();
        return HostLvmFacts {
            devices_file: DevicesFileFacts::InUse {
                path: file.path.clone(),
                listed: pv_uuid.is_some_and(|uuid| host.is_listed(uuid.undashed(), devnode)),
                listed_pvid: pv_uuid.copied().filter(|uuid| {
                    file.entries
                        .iter()
                        .any(|e| e.pvid.as_deref() == Some(uuid.undashed()))
                }),
                version: file
                    .version
                    .map(|v| format!("{}.{}.{}", v.major, v.minor, v.counter)),
                version_too_new: file.version.is_some_and(|v| v.major > DEVICES_FILE_MAJOR),
                folder_read_only: file.path.parent().is_some_and(is_read_only_folder),
                dead_pvids,
            },
            ..HostLvmFacts::default()
        };
    }
    if host.global_filter.is_empty() && host.filter.is_empty() {
        return HostLvmFacts::default();
    }
    let names = match lvm_device_names(dev_dir, devnode) {
        Ok(names) => names,
        Err(e) => {
            return HostLvmFacts {
                error: Some(format!(
                    "cannot list the names of {} below {} to match them against the host's LVM filters: {e}",
                    devnode.display(),
                    dev_dir.display()
                )),
                ..HostLvmFacts::default()
            }
        }
    };
    let config_file = host.config_files.last().cloned();
    HostLvmFacts {
        global_filter_rejects: host
            .global_filter_rejects(&names)
            .map(|rule| FilterRejection {
                rule,
                file: host.global_filter_file.clone(),
            }),
        filter_rejects: host.filter_rejects(&names).map(|rule| FilterRejection {
            rule,
            // lvmlocal.conf's and lvm.conf's lists are joined: name the last file read.
            file: config_file,
        }),
        ..HostLvmFacts::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch /etc/lvm and /dev with the given files.
    fn scratch(test: &str, files: &[(&str, &str)]) -> (PathBuf, PathBuf) {
        let root = std::env::temp_dir()
            .join("host_lvm_facts_tests")
            .join(format!("{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let (etc, dev) = (root.join("etc/lvm"), root.join("dev"));
        for dir in [etc.join("devices"), dev.join("disk/by-partlabel")] {
            if let Err(e) = std::fs::create_dir_all(&dir) {
                panic!("{}: {e}", dir.display());
            }
        }
        for (name, text) in files {
            if let Err(e) = std::fs::write(etc.join(name), text) {
                panic!("{name}: {e}");
            }
        }
        if let Err(e) = std::fs::write(dev.join("vda1"), b"") {
            panic!("vda1: {e}");
        }
        if let Err(e) =
            std::os::unix::fs::symlink("../../vda1", dev.join("disk/by-partlabel/linstor-storage"))
        {
            panic!("symlink: {e}");
        }
        (etc, dev)
    }

    const OURS: &str = "20mUTb8d-8EnA-E58j-0fft-wmS1-fTfK-UGoD";

    fn ours() -> Option<LvmUuid> {
        LvmUuid::parse(OURS).ok()
    }

    fn facts(test: &str, files: &[(&str, &str)], pv: Option<&str>) -> HostLvmFacts {
        let (etc, dev) = scratch(test, files);
        let pv = pv.map(LvmUuid::parse).transpose().ok().flatten();
        read_host_lvm_facts(&etc, &dev, &dev.join("vda1"), pv.as_ref())
    }

    #[test]
    fn no_configuration_is_lvm_defaults() {
        let found = facts("none", &[], Some(OURS));
        assert_eq!(found, HostLvmFacts::default());
        assert_eq!(found.devices_file.summary(), "not in use");
    }

    #[test]
    fn a_devices_file_lists_our_pv_and_reports_dead_lines() {
        let (etc, dev) = scratch(
            "listed",
            &[
                ("lvm.conf", "devices { use_devicesfile = 1 global_filter = [ \"r|.*|\" ] }\n"),
                (
                    "devices/system.devices",
                    "VERSION=1.1.3\n\
                     IDTYPE=devname IDNAME=/dev/vdb1 DEVNAME=/dev/vdb1 PVID=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa PART=1\n\
                     IDTYPE=devname IDNAME=. DEVNAME=DEVNODE PVID=deaddeaddeaddeaddeaddeaddeaddead PART=1\n",
                ),
            ],
        );
        let devnode = dev.join("vda1");
        let text = std::fs::read_to_string(etc.join("devices/system.devices"))
            .unwrap_or_default()
            .replace("DEVNODE", &devnode.to_string_lossy());
        let line = format!(
            "IDTYPE=devname IDNAME={0} DEVNAME={0} PVID=20mUTb8d8EnAE58j0fftwmS1fTfKUGoD PART=1\n",
            devnode.display()
        );
        let write = |t: &str| {
            if let Err(e) = std::fs::write(etc.join("devices/system.devices"), t) {
                panic!("{e}");
            }
        };
        write(&text);
        let not_listed = read_host_lvm_facts(&etc, &dev, &devnode, ours().as_ref());
        assert_eq!(not_listed.devices_file.summary(), "not listed");
        // The filters are ignored while the devices file is in use.
        assert_eq!(not_listed.global_filter_rejects, None);
        match &not_listed.devices_file {
            DevicesFileFacts::InUse {
                listed_pvid,
                version,
                version_too_new,
                dead_pvids,
                ..
            } => {
                assert_eq!(listed_pvid, &None);
                assert_eq!(version.as_deref(), Some("1.1.3"));
                assert!(!version_too_new);
                assert_eq!(dead_pvids, &["deaddeaddeaddeaddeaddeaddeaddead"]);
            }
            other => panic!("{other:?}"),
        }
        write(&format!("{text}{line}"));
        let listed = read_host_lvm_facts(&etc, &dev, &devnode, ours().as_ref());
        assert_eq!(listed.devices_file.summary(), "listed");
        assert!(matches!(
            &listed.devices_file,
            DevicesFileFacts::InUse { listed_pvid: Some(p), .. } if p.undashed() == "20mUTb8d8EnAE58j0fftwmS1fTfKUGoD"
        ));
        write(&format!(
            "{}{line}",
            text.replace("VERSION=1.1.3", "VERSION=2.0.1")
        ));
        let newer = read_host_lvm_facts(&etc, &dev, &devnode, ours().as_ref());
        assert!(matches!(
            newer.devices_file,
            DevicesFileFacts::InUse {
                version_too_new: true,
                ..
            }
        ));
    }

    #[test]
    fn use_devicesfile_without_a_file_is_not_in_use() {
        let found = facts(
            "nofile",
            &[("lvm.conf", "devices { use_devicesfile = 1 }\n")],
            Some(OURS),
        );
        assert_eq!(found.devices_file, DevicesFileFacts::NotInUse);
    }

    #[test]
    fn a_global_filter_rejecting_a_symlink_name_is_reported_with_its_file() {
        let (etc, dev) = scratch(
            "global",
            &[(
                "lvm.conf",
                "devices { global_filter = [ \"r|/by-partlabel/linstor|\" ] filter = [ \"r|.*|\" ] }\n",
            )],
        );
        let found = read_host_lvm_facts(&etc, &dev, &dev.join("vda1"), None);
        assert_eq!(
            found.global_filter_rejects,
            Some(FilterRejection {
                rule: "r|/by-partlabel/linstor|".into(),
                file: Some(etc.join("lvm.conf")),
            })
        );
        assert_eq!(
            found.filter_rejects.map(|r| r.rule).as_deref(),
            Some("r|.*|")
        );
        assert_eq!(found.error, None);
    }

    #[test]
    fn an_unparsable_configuration_is_an_error_naming_the_file() {
        let found = facts(
            "broken",
            &[("lvm.conf", "devices { global_filter = [ \"q|.*|\" ] }\n")],
            None,
        );
        let error = found.error.unwrap_or_default();
        assert!(error.contains("lvm.conf"), "{error}");
        assert_eq!(found.devices_file, DevicesFileFacts::NotInUse);
    }
}
