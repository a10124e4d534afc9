//! Turns an action into the LVM command line that carries it out. Pure, so every
//! command line is unit-tested. Every command is scoped to the one partition with
//! `--devices`, so LVM neither scans nor touches other disks, and is told never to
//! wait for udev: in a container (another IPC namespace) or a host without udevd
//! nothing would ever answer.
use super::thin_check::{ThinCheck, SKIP_OVERRIDE};
use crate::observe::seed_layout::SEED_ID_LV;
use crate::plan::Action;
use crate::units::WholeBinaryUnits;
use std::path::Path;

/// LVM settings for every command: no udev synchronisation or udev-driven device
/// lists, no dmeventd monitoring (nothing runs it in an init container).
pub const CONFIG_OVERRIDE: &str = "activation{udev_sync=0}activation{udev_rules=0}\
activation{monitoring=0}devices{obtain_device_list_from_udev=0}";

/// Added to [`CONFIG_OVERRIDE`] for the host devices file edits: this tool's LVM
/// is built with `use_devicesfile` off by default, the host's may be on (the
/// planner edits the file only when the host uses it).
pub const USE_DEVICES_FILE: &str = "devices{use_devicesfile=1}";

/// `lvmdevices` edits the host's devices file as the host's own LVM would (its
/// lock, its atomic rename, its choice of device ID). Not scoped with `--devices`:
/// that option and the devices file exclude each other.
fn devices_file_edit(args: &[&str]) -> Vec<String> {
    let mut line: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    line.extend([
        "--config".to_owned(),
        format!("{CONFIG_OVERRIDE}{USE_DEVICES_FILE}"),
    ]);
    line
}

/// LVM runs thin_check on an active pool's metadata right after deactivating it
/// (`_pool_callback`, lib/activate/dev_manager.c in LVM2 2.03.16), also when the
/// command removes the pool: a process per reset, checking metadata about to be
/// discarded, and one more process a kill can orphan while it holds `_tmeta` open.
/// The reset's removal runs without it (a failed check there only warns); every
/// other command follows [`ThinCheck`].
fn thin_check_override(action: &Action, thin_check: &ThinCheck) -> Option<&'static str> {
    match action {
        Action::RemoveLogicalVolumes { .. } | Action::RemoveStalePool { .. } => Some(SKIP_OVERRIDE),
        _ => thin_check.config_override(),
    }
}

/// The LVM command line (program name first) for `action`, scoped to `partition`
/// with `--devices`; an action that names a device (always the partition, as the
/// planner makes them) is carried out on the device it names. When no thin_check
/// can run, LVM is told to activate pools without it (see [`super::thin_check`]).
///
/// Arguments never contain whitespace: names are
/// [`VgName`](crate::config::names::VgName)s and
/// [`LvName`](crate::config::names::LvName)s, which only the validators make, ids
/// are [`LvmUuid`](crate::observe::lvm::LvmUuid)s, tags are encoded, and device
/// paths come from the kernel (`/dev/<name>`); `lvm2_run` splits on whitespace.
/// `None` for the steps that are not LVM commands (see [`super::leftovers`]).
pub fn command_line(
    action: &Action,
    partition: &Path,
    thin_check: &ThinCheck,
) -> Option<Vec<String>> {
    let scope = partition.display().to_string();
    let mut args: Vec<String> = match action {
        // Not a plain command line: see [`super::restore`].
        Action::RemoveStaleDevices { .. }
        | Action::RemoveThinVolumeDevices { .. }
        | Action::RemoveStaleVolumeGroupPath { .. }
        | Action::RestoreTornMetadata { .. }
        | Action::EraseTornPhysicalVolume { .. } => return None,
        Action::AddToDevicesFile { device, .. } => {
            return Some(devices_file_edit(&[
                "lvmdevices",
                "--adddev",
                &device_arg(device),
            ]))
        }
        // `--yes`: lvmdevices asks before dropping a PV that holds an active LV.
        Action::RemoveFromDevicesFile { pvid, .. } => {
            return Some(devices_file_edit(&[
                "lvmdevices",
                "--yes",
                "--delpvid",
                pvid.undashed(),
            ]))
        }
        Action::DeactivatePoolComponents {
            volume_group,
            names,
        } => {
            let mut args = vec!["lvchange".to_owned(), "--activate".into(), "n".into()];
            args.extend(names.iter().map(|name| format!("{volume_group}/{name}")));
            args
        }
        // --ignoreactivationskip: a pool flagged to be skipped by autoactivation is
        // still activated when asked for by name.
        Action::ActivateThinPool { volume_group, pool } => vec![
            "lvchange".into(),
            "--activate".into(),
            "y".into(),
            "--ignoreactivationskip".into(),
            format!("{volume_group}/{pool}"),
        ],
        Action::RefreshThinPool { volume_group, pool } => vec![
            "lvchange".into(),
            "--refresh".into(),
            format!("{volume_group}/{pool}"),
        ],
        Action::ActivateSeedIdLv { volume_group } => {
            vec![
                "lvchange".into(),
                "--activate".into(),
                "y".into(),
                format!("{volume_group}/{SEED_ID_LV}"),
            ]
        }
        Action::RemoveLogicalVolumes { volume_group, .. } => {
            vec![
                "lvremove".into(),
                "--force".into(),
                volume_group.to_string(),
            ]
        }
        Action::RemoveVolumeGroup { volume_group } => {
            vec![
                "vgremove".into(),
                "--force".into(),
                volume_group.to_string(),
            ]
        }
        Action::RemovePhysicalVolume { device } => {
            vec!["pvremove".into(), "--yes".into(), device_arg(device)]
        }
        Action::CreatePhysicalVolume {
            device,
            overwrite_signature,
            metadata_area_bytes,
        } => {
            // The planner decided; the command states the decision and never
            // leaves it to LVM's "Wipe it? [y/n]" prompt (which reads stdin: a
            // terminal would wait for an answer, and a stray "y" would wipe).
            let decision: &[&str] = if overwrite_signature.is_some() {
                // FORCE: wipe every signature LVM's libblkid finds, no questions,
                // and zero the first sectors (LVM's default, stated).
                &["--force", "--force", "--yes", "--zero", "y"]
            } else {
                // Blank as far as the planner saw. Should LVM find a signature
                // anyway (written since), silent mode (-qq) answers its prompt
                // "no" without reading stdin (yes_no_prompt in LVM2 2.03.16
                // lib/display/display.c), so pvcreate fails and nothing is wiped.
                &["--quiet", "--quiet"]
            };
            let mut args = vec!["pvcreate".to_owned()];
            args.extend(decision.iter().map(|a| (*a).to_owned()));
            if let Some(area) = metadata_area_bytes {
                args.extend(["--metadatasize".into(), format!("{}k", area.whole_kib())]);
            }
            args.push(device_arg(device));
            args
        }
        Action::ReinitializePhysicalVolume {
            device,
            metadata_area_bytes,
            ..
        } => {
            let mut args: Vec<String> = vec!["pvcreate".into(), "-ff".into(), "--yes".into()];
            if let Some(area) = metadata_area_bytes {
                args.extend(["--metadatasize".into(), format!("{}k", area.whole_kib())]);
            }
            args.push(device_arg(device));
            args
        }
        Action::RemoveIncompleteSpare { volume_group, name } => vec![
            "lvremove".into(),
            "--force".into(),
            format!("{volume_group}/{name}"),
        ],
        Action::RemoveIncompletePool { volume_group, pool }
        | Action::RemoveStalePool {
            volume_group, pool, ..
        } => vec![
            "lvremove".into(),
            "--force".into(),
            format!("{volume_group}/{pool}"),
        ],
        Action::ResizePhysicalVolume { device, .. } => vec!["pvresize".into(), device_arg(device)],
        Action::CreateVolumeGroup {
            volume_group,
            satellite_id_tag,
            device,
        } => vec![
            "vgcreate".into(),
            "--addtag".into(),
            satellite_id_tag.clone(),
            volume_group.to_string(),
            device_arg(device),
        ],
        Action::TagVolumeGroup {
            volume_group,
            satellite_id_tag,
        } => vec![
            "vgchange".into(),
            "--addtag".into(),
            satellite_id_tag.clone(),
            volume_group.to_string(),
        ],
        // One command: vgchange applies both and commits once (one seqno).
        Action::RetagVolumeGroup {
            volume_group,
            old_tag,
            new_tag,
        } => vec![
            "vgchange".into(),
            "--deltag".into(),
            old_tag.clone(),
            "--addtag".into(),
            new_tag.clone(),
            volume_group.to_string(),
        ],
        Action::CreateThinPool {
            volume_group,
            pool,
            chunk_size_bytes,
            zero_new_blocks,
            data_extents,
            metadata_bytes,
        } => vec![
            "lvcreate".into(),
            "--yes".into(),
            "--type".into(),
            "thin-pool".into(),
            "--extents".into(),
            data_extents.count().to_string(),
            "--poolmetadatasize".into(),
            format!("{}k", metadata_bytes.whole_kib()),
            "--chunksize".into(),
            format!("{}k", chunk_size_bytes.whole_kib()),
            "--zero".into(),
            if *zero_new_blocks { "y" } else { "n" }.into(),
            "--name".into(),
            pool.to_string(),
            volume_group.to_string(),
        ],
        Action::ExtendPoolMetadata {
            volume_group,
            pool,
            to_bytes,
        }
        | Action::GrowFullPoolMetadata {
            volume_group,
            pool,
            to_bytes,
            ..
        } => vec![
            "lvextend".into(),
            "--poolmetadatasize".into(),
            format!("{}k", to_bytes.whole_kib()),
            format!("{volume_group}/{pool}"),
        ],
        Action::ExtendThinPool {
            volume_group,
            pool,
            by_extents,
        } => vec![
            "lvextend".into(),
            "--extents".into(),
            format!("+{}", by_extents.count()),
            format!("{volume_group}/{pool}"),
        ],
    };
    let mut config = CONFIG_OVERRIDE.to_owned();
    if let Some(extra) = thin_check_override(action, thin_check) {
        config.push_str(extra);
    }
    args.extend(["--devices".into(), scope, "--config".into(), config]);
    Some(args)
}

/// A device path as an argument (kernel device names are plain text).
fn device_arg(device: &Path) -> String {
    device.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::names::test_names::{lv, vg};
    use crate::observe::lvm::LvmUuid;
    use crate::units::{Bytes, Extents};
    use std::path::PathBuf;

    fn line(action: Action) -> String {
        command_line(&action, Path::new("/dev/vda1"), &ThinCheck::Installed)
            .map(|args| args.join(" "))
            .unwrap_or_default()
    }

    const SCOPE: &str = "--devices /dev/vda1 --config activation{udev_sync=0}activation{udev_rules=0}activation{monitoring=0}devices{obtain_device_list_from_udev=0}";

    #[test]
    fn command_lines_are_scoped_to_the_partition() {
        let cases = [
            (
                Action::CreatePhysicalVolume {
                    device: PathBuf::from("/dev/vda1"),
                    overwrite_signature: None,
                    metadata_area_bytes: None,
                },
                "pvcreate --quiet --quiet /dev/vda1",
            ),
            (
                Action::CreatePhysicalVolume {
                    device: PathBuf::from("/dev/vda1"),
                    overwrite_signature: None,
                    metadata_area_bytes: Some(Bytes(17 << 20)),
                },
                "pvcreate --quiet --quiet --metadatasize 17408k /dev/vda1",
            ),
            (
                Action::CreatePhysicalVolume {
                    device: PathBuf::from("/dev/vda1"),
                    overwrite_signature: Some("ext4".into()),
                    metadata_area_bytes: None,
                },
                "pvcreate --force --force --yes --zero y /dev/vda1",
            ),
            (
                Action::ReinitializePhysicalVolume {
                    device: PathBuf::from("/dev/vda1"),
                    metadata_area_bytes: None,
                    small_area: false,
                },
                "pvcreate -ff --yes /dev/vda1",
            ),
            (
                Action::RemoveIncompletePool {
                    volume_group: vg("vg"),
                    pool: lv("pool"),
                },
                "lvremove --force vg/pool",
            ),
            (
                Action::CreateVolumeGroup {
                    volume_group: vg("vg"),
                    device: PathBuf::from("/dev/vda1"),
                    satellite_id_tag: "linstor-satellite-id=a&20b".into(),
                },
                "vgcreate --addtag linstor-satellite-id=a&20b vg /dev/vda1",
            ),
            (
                Action::RetagVolumeGroup {
                    volume_group: vg("vg"),
                    old_tag: "linstor-satellite-id=a&0A".into(),
                    new_tag: "linstor-satellite-id=a".into(),
                },
                "vgchange --deltag linstor-satellite-id=a&0A --addtag linstor-satellite-id=a vg",
            ),
            (
                Action::CreateThinPool {
                    volume_group: vg("vg"),
                    pool: lv("pool"),
                    chunk_size_bytes: Bytes(512 << 10),
                    zero_new_blocks: false,
                    data_extents: Extents::new(250),
                    metadata_bytes: Bytes(4 << 20),
                },
                "lvcreate --yes --type thin-pool --extents 250 --poolmetadatasize 4096k --chunksize 512k --zero n --name pool vg",
            ),
            (
                Action::GrowFullPoolMetadata {
                    volume_group: vg("vg"),
                    pool: lv("pool"),
                    from_bytes: Bytes(4 << 20),
                    to_bytes: Bytes(8 << 20),
                    used_percent: 80,
                },
                "lvextend --poolmetadatasize 8192k vg/pool",
            ),
            (Action::RemoveVolumeGroup { volume_group: vg("vg") }, "vgremove --force vg"),
            (
                Action::RemovePhysicalVolume {
                    device: PathBuf::from("/dev/vda1"),
                },
                "pvremove --yes /dev/vda1",
            ),
            (
                Action::ExtendPoolMetadata {
                    volume_group: vg("vg"),
                    pool: lv("pool"),
                    to_bytes: Bytes(8 << 20),
                },
                "lvextend --poolmetadatasize 8192k vg/pool",
            ),
            (
                Action::ExtendThinPool {
                    volume_group: vg("vg"),
                    pool: lv("pool"),
                    by_extents: Extents::new(3),
                },
                "lvextend --extents +3 vg/pool",
            ),
        ];
        for (action, expected) in cases {
            assert_eq!(line(action), format!("{expected} {SCOPE}"));
        }
    }

    /// The reset's removal of the pool never runs a check of its metadata,
    /// whatever the host's thin_check; no other command loses the check.
    #[test]
    fn only_the_reset_removal_skips_the_metadata_check() {
        let skip = "global{thin_check_executable=\"\"}";
        let removal = Action::RemoveLogicalVolumes {
            volume_group: vg("vg"),
            names: vec![lv("pool")],
        };
        let others = [
            Action::RemoveIncompletePool {
                volume_group: vg("vg"),
                pool: lv("pool"),
            },
            Action::RemoveIncompleteSpare {
                volume_group: vg("vg"),
                name: lv("lvol0"),
            },
            Action::RefreshThinPool {
                volume_group: vg("vg"),
                pool: lv("pool"),
            },
            Action::ActivateThinPool {
                volume_group: vg("vg"),
                pool: lv("pool"),
            },
            Action::ActivateSeedIdLv {
                volume_group: vg("vg"),
            },
            Action::DeactivatePoolComponents {
                volume_group: vg("vg"),
                names: vec![lv("pool_tmeta")],
            },
            Action::ExtendPoolMetadata {
                volume_group: vg("vg"),
                pool: lv("pool"),
                to_bytes: Bytes(8 << 20),
            },
            Action::ExtendThinPool {
                volume_group: vg("vg"),
                pool: lv("pool"),
                by_extents: Extents::new(3),
            },
        ];
        for thin_check in [
            ThinCheck::Installed,
            ThinCheck::ConfiguredInLvmConf,
            ThinCheck::Missing,
        ] {
            let line = |action: &Action| {
                command_line(action, Path::new("/dev/vda1"), &thin_check)
                    .unwrap_or_default()
                    .join(" ")
            };
            assert_eq!(
                line(&removal),
                format!("lvremove --force vg {SCOPE}{skip}"),
                "{thin_check:?}"
            );
            for action in &others {
                assert_eq!(
                    line(action).ends_with(skip),
                    thin_check == ThinCheck::Missing,
                    "{action:?} with {thin_check:?}"
                );
            }
        }
    }

    #[test]
    fn no_argument_contains_whitespace() {
        let action = Action::TagVolumeGroup {
            volume_group: vg("vg"),
            satellite_id_tag: "linstor-satellite-id=x".into(),
        };
        for thin_check in [ThinCheck::Installed, ThinCheck::Missing] {
            assert!(command_line(&action, Path::new("/dev/vda1"), &thin_check)
                .unwrap_or_default()
                .iter()
                .all(|arg| !arg.is_empty() && !arg.contains(char::is_whitespace)));
        }
    }

    #[test]
    fn a_missing_thin_check_is_skipped_deliberately() {
        let action = Action::ExtendThinPool {
            volume_group: vg("vg"),
            pool: lv("pool"),
            by_extents: Extents::new(3),
        };
        let with = command_line(&action, Path::new("/dev/vda1"), &ThinCheck::Missing)
            .unwrap_or_default()
            .join(" ");
        assert_eq!(
            with,
            format!("lvextend --extents +3 vg/pool {SCOPE}global{{thin_check_executable=\"\"}}")
        );
        let configured = command_line(
            &action,
            Path::new("/dev/vda1"),
            &ThinCheck::ConfiguredInLvmConf,
        )
        .unwrap_or_default()
        .join(" ");
        assert_eq!(configured, format!("lvextend --extents +3 vg/pool {SCOPE}"));
    }

    const DEVICES_FILE: &str = "/etc/lvm/devices/system.devices";

    #[test]
    fn devices_file_edits_run_without_devices_scoping_and_with_the_file_on() {
        let add = line(Action::AddToDevicesFile {
            device: PathBuf::from("/dev/vda1"),
            devices_file: PathBuf::from(DEVICES_FILE),
        });
        let delete = line(Action::RemoveFromDevicesFile {
            pvid: match LvmUuid::parse("20mUTb8d8EnAE58j0fftwmS1fTfKUGoD") {
                Ok(pvid) => pvid,
                Err(e) => panic!("{e}"),
            },
            devices_file: PathBuf::from(DEVICES_FILE),
        });
        let config = format!("--config {CONFIG_OVERRIDE}devices{{use_devicesfile=1}}");
        assert_eq!(add, format!("lvmdevices --adddev /dev/vda1 {config}"));
        assert_eq!(
            delete,
            format!("lvmdevices --yes --delpvid 20mUTb8d8EnAE58j0fftwmS1fTfKUGoD {config}")
        );
        for text in [&add, &delete] {
            assert!(!text.contains("--devices"), "{text}");
        }
        // No thin_check setting either: lvmdevices activates nothing.
        let missing = command_line(
            &Action::AddToDevicesFile {
                device: PathBuf::from("/dev/vda1"),
                devices_file: PathBuf::from(DEVICES_FILE),
            },
            Path::new("/dev/vda1"),
            &ThinCheck::Missing,
        )
        .unwrap_or_default();
        assert_eq!(missing.join(" "), add);
        assert!(missing
            .iter()
            .all(|arg| !arg.is_empty() && !arg.contains(char::is_whitespace)));
    }
}
