//! `thin_check` (thin-provisioning-tools): LVM runs it on a thin pool's metadata
//! when it activates an existing pool (extending an inactive pool, activating a thin
//! LV in it) and right after deactivating an active one, never when creating one.
//! When the executable is missing, LVM 2.03.16 warns "Check is skipped" and goes on
//! (`_pool_callback`, lib/activate/dev_manager.c).
//!
//! The deliberate behaviour: when LVM's compiled-in default executable
//! ([`DEFAULT_EXECUTABLE`]) is missing and `/etc/lvm/lvm.conf` does not choose one,
//! every LVM command gets `global{thin_check_executable=""}` (LVM then activates
//! without the check, and without trying to run it), and each action that may
//! activate an existing pool logs a warning saying so and how to install the tool.
//! An lvm.conf that sets `thin_check_executable` is left to LVM: it is the
//! operator's choice — except for the reset's removal of the pool, which never
//! checks metadata it is about to discard (see `command_line`).
use crate::plan::Action;
use std::path::Path;
use std::sync::OnceLock;

/// Where Debian's (and LVM's default) thin_check lives.
pub const DEFAULT_EXECUTABLE: &str = "/usr/sbin/thin_check";

/// The LVM configuration file the in-process LVM reads, if present.
pub const LVM_CONF: &str = "/etc/lvm/lvm.conf";

/// The `--config` fragment that makes LVM skip the metadata check.
pub const SKIP_OVERRIDE: &str = "global{thin_check_executable=\"\"}";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThinCheck {
    /// The default executable exists; LVM checks the metadata as usual.
    Installed,
    /// lvm.conf sets `thin_check_executable`; LVM uses that setting unchanged.
    ConfiguredInLvmConf,
    /// Nothing to run: LVM is told to activate pools without a check.
    Missing,
}

impl ThinCheck {
    /// Decides from the facts: does the default executable exist, and what does
    /// lvm.conf (if readable) say.
    pub fn decide(default_is_executable: bool, lvm_conf: Option<&str>) -> ThinCheck {
        let configured = lvm_conf.is_some_and(|text| {
            text.lines().any(|line| {
                let line = line.split('#').next().unwrap_or_default().trim();
                line.starts_with("thin_check_executable") && line.contains('=')
            })
        });
        if configured {
            ThinCheck::ConfiguredInLvmConf
        } else if default_is_executable {
            ThinCheck::Installed
        } else {
            ThinCheck::Missing
        }
    }

    /// Looks at this machine once per process.
    pub fn detect() -> ThinCheck {
        static DETECTED: OnceLock<ThinCheck> = OnceLock::new();
        DETECTED
            .get_or_init(|| {
                let lvm_conf = std::fs::read_to_string(LVM_CONF).ok();
                let found = ThinCheck::decide(
                    is_executable(Path::new(DEFAULT_EXECUTABLE)),
                    lvm_conf.as_deref(),
                );
                tracing::debug!(thin_check = ?found, executable = DEFAULT_EXECUTABLE, "thin_check");
                found
            })
            .clone()
    }

    /// The extra `--config` fragment for every LVM command, if any.
    pub fn config_override(&self) -> Option<&'static str> {
        match self {
            ThinCheck::Missing => Some(SKIP_OVERRIDE),
            ThinCheck::Installed | ThinCheck::ConfiguredInLvmConf => None,
        }
    }

    /// Logs the warning when `action` may make LVM activate an existing pool
    /// while no thin_check can run.
    pub fn warn_if_unchecked(&self, action: &Action) {
        if *self == ThinCheck::Missing && may_activate_existing_pool(action) {
            tracing::warn!(
                executable = DEFAULT_EXECUTABLE,
                action = %action,
                "thin_check is not installed: where this step activates the existing thin pool, LVM activates it without checking its metadata; install thin-provisioning-tools (apt-get install thin-provisioning-tools) to have it checked"
            );
        }
    }
}

/// Actions during which LVM activates a pool that already exists: resizing an
/// inactive pool activates it temporarily, a thin LV needs its pool. (Removing every
/// LV of the VG removes the pool first and sends it no messages.)
pub fn may_activate_existing_pool(action: &Action) -> bool {
    matches!(
        action,
        Action::ExtendThinPool { .. }
            | Action::ExtendPoolMetadata { .. }
            | Action::GrowFullPoolMetadata { .. }
            | Action::ActivateSeedIdLv { .. }
            | Action::ActivateThinPool { .. }
            | Action::RefreshThinPool { .. }
    )
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::{Bytes, Extents};
    use std::path::PathBuf;

    #[test]
    fn missing_executable_without_configuration_skips_the_check() {
        assert_eq!(ThinCheck::decide(false, None), ThinCheck::Missing);
        assert_eq!(
            ThinCheck::decide(false, Some("activation {\n udev_sync = 0\n}\n")),
            ThinCheck::Missing
        );
        assert_eq!(
            ThinCheck::Missing.config_override(),
            Some("global{thin_check_executable=\"\"}")
        );
    }

    #[test]
    fn installed_or_configured_leaves_lvm_alone() {
        assert_eq!(ThinCheck::decide(true, None), ThinCheck::Installed);
        assert_eq!(ThinCheck::Installed.config_override(), None);
        let conf = "global {\n\tthin_check_executable = \"/opt/bin/thin_check\"\n}\n";
        assert_eq!(
            ThinCheck::decide(false, Some(conf)),
            ThinCheck::ConfiguredInLvmConf
        );
        assert_eq!(ThinCheck::ConfiguredInLvmConf.config_override(), None);
    }

    #[test]
    fn commented_settings_do_not_count() {
        let conf = "global {\n\t# thin_check_executable = \"/usr/sbin/thin_check\"\n}\n";
        assert_eq!(ThinCheck::decide(false, Some(conf)), ThinCheck::Missing);
    }

    #[test]
    fn only_actions_on_an_existing_pool_warn() {
        let extend = Action::ExtendThinPool {
            volume_group: crate::config::names::test_names::vg("vg"),
            pool: crate::config::names::test_names::lv("pool"),
            by_extents: Extents::new(1),
        };
        let create = Action::CreateThinPool {
            volume_group: crate::config::names::test_names::vg("vg"),
            pool: crate::config::names::test_names::lv("pool"),
            chunk_size_bytes: Bytes(512 << 10),
            zero_new_blocks: false,
            data_extents: Extents::new(250),
            metadata_bytes: Bytes(4 << 20),
        };
        let pv = Action::CreatePhysicalVolume {
            device: PathBuf::from("/dev/vda1"),
            overwrite_signature: None,
            metadata_area_bytes: None,
        };
        assert!(may_activate_existing_pool(&extend));
        assert!(!may_activate_existing_pool(&create));
        assert!(!may_activate_existing_pool(&pv));
    }
}
