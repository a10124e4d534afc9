//! Fault injection for the VM tests: SIGKILL after the Nth LVM command, a power cut
//! (`sysrq-b`, nothing synced) some milliseconds into the Nth, or a thin volume's
//! device held open for a while as a reset starts removing the devices (what udev's
//! `blkid` does for a moment after a write). It wraps the executor
//! and exists only when the CLI builds it: the settings come from environment
//! variables and act only on a machine whose kernel command line carries
//! [`VM_KEY`], which only the VM test bed passes — so a stray variable on a real
//! node can never kill the tool or reset the machine.
use super::leftovers::RemovalContext;
use super::{ApplyError, LvmExecutor};
use std::path::Path;
use std::time::Duration;

/// SIGKILL this process right after that many LVM commands have run.
pub const KILL_AFTER_ENV: &str = "LINSTOR_PROVISION_DISK_TEST_KILL_AFTER";
/// `N:MS`: when LVM command N (1-based) starts, cut the power MS milliseconds later.
pub const POWERCUT_DURING_ENV: &str = "LINSTOR_PROVISION_DISK_TEST_POWERCUT_DURING";
/// `MS`: when a reset's native removal of thin volumes' devices starts, the first
/// device is opened and held open for MS milliseconds.
pub const HOLD_OPEN_ENV: &str = "LINSTOR_PROVISION_DISK_TEST_HOLD_OPEN";
/// The kernel command-line word that allows the hooks (the VM test bed's).
pub const VM_KEY: &str = "linstor_provision_disk.fault_injection=allow";

/// Where to inject faults, parsed once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FaultPlan {
    pub kill_after: Option<usize>,
    pub power_cut_during: Option<(usize, Duration)>,
    pub hold_open: Option<Duration>,
}

/// What the settings amount to on this machine.
#[derive(Debug, PartialEq, Eq)]
pub enum FaultSettings {
    /// No variable is set: no wrapper.
    Unset,
    /// Set, but the kernel command line lacks [`VM_KEY`]: ignored (a real node).
    NotAllowed,
    Armed(FaultPlan),
}

/// A fault-injection variable holds a value that is not a setting.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FaultSettingError {
    #[error("{KILL_AFTER_ENV} is {value:?}, expected a number of LVM commands (1 or more)")]
    KillAfter { value: String },
    #[error("{POWERCUT_DURING_ENV} is {value:?}, expected N:MS (LVM command N, 1-based; milliseconds into it)")]
    PowerCutDuring { value: String },
    #[error("{HOLD_OPEN_ENV} is {value:?}, expected a number of milliseconds")]
    HoldOpen { value: String },
}

/// Reads the variables and `/proc/cmdline`; a malformed value is an error.
pub fn from_environment() -> Result<FaultSettings, FaultSettingError> {
    let kill = std::env::var(KILL_AFTER_ENV).ok();
    let power = std::env::var(POWERCUT_DURING_ENV).ok();
    let hold = std::env::var(HOLD_OPEN_ENV).ok();
    if kill.is_none() && power.is_none() && hold.is_none() {
        return Ok(FaultSettings::Unset);
    }
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let hold_open = hold
        .map(|v| {
            v.trim()
                .parse::<u64>()
                .map(Duration::from_millis)
                .map_err(|_| FaultSettingError::HoldOpen { value: v.clone() })
        })
        .transpose()?;
    settings_with(kill.as_deref(), power.as_deref(), hold_open, &cmdline)
}

/// The decision, from the variables' values and the kernel command line.
pub fn settings(
    kill_after: Option<&str>,
    power_cut_during: Option<&str>,
    cmdline: &str,
) -> Result<FaultSettings, FaultSettingError> {
    settings_with(kill_after, power_cut_during, None, cmdline)
}

/// [`settings`] with the hold-open hook's duration, parsed already.
fn settings_with(
    kill_after: Option<&str>,
    power_cut_during: Option<&str>,
    hold_open: Option<Duration>,
    cmdline: &str,
) -> Result<FaultSettings, FaultSettingError> {
    if kill_after.is_none() && power_cut_during.is_none() && hold_open.is_none() {
        return Ok(FaultSettings::Unset);
    }
    let kill_after = kill_after
        .map(|v| {
            v.trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| FaultSettingError::KillAfter {
                    value: v.to_owned(),
                })
        })
        .transpose()?;
    let power_cut_during = power_cut_during
        .map(|v| {
            v.split_once(':')
                .and_then(|(n, ms)| {
                    let n = n.trim().parse::<usize>().ok().filter(|n| *n > 0)?;
                    let ms = ms.trim().parse::<u64>().ok()?;
                    Some((n, Duration::from_millis(ms)))
                })
                .ok_or_else(|| FaultSettingError::PowerCutDuring {
                    value: v.to_owned(),
                })
        })
        .transpose()?;
    if !cmdline.split_whitespace().any(|word| word == VM_KEY) {
        return Ok(FaultSettings::NotAllowed);
    }
    Ok(FaultSettings::Armed(FaultPlan {
        kill_after,
        power_cut_during,
        hold_open,
    }))
}

/// An executor that injects the planned faults around the real one's commands.
pub struct FaultInjecting<E> {
    inner: E,
    plan: FaultPlan,
}

impl<E: LvmExecutor> FaultInjecting<E> {
    pub fn new(inner: E, plan: FaultPlan) -> Self {
        FaultInjecting { inner, plan }
    }
}

impl<E: LvmExecutor> LvmExecutor for FaultInjecting<E> {
    fn run(&mut self, args: &[String]) -> Result<(), ApplyError> {
        let number = self.inner.commands_run() + 1;
        if let Some((n, delay)) = self.plan.power_cut_during {
            if n == number {
                cut_power_after(delay);
            }
        }
        let result = self.inner.run(args);
        if self.plan.kill_after == Some(self.inner.commands_run()) {
            tracing::warn!(
                commands_run = self.inner.commands_run(),
                "{KILL_AFTER_ENV} reached: killing this process"
            );
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
        }
        result
    }

    fn commands_run(&self) -> usize {
        self.inner.commands_run()
    }

    fn flush_partition(&mut self, partition: &Path, after: &str) -> Result<(), ApplyError> {
        self.inner.flush_partition(partition, after)
    }

    fn flushes(&self) -> usize {
        self.inner.flushes()
    }

    fn sync_devices_file(&mut self, file: &Path, after: &str) -> Result<(), ApplyError> {
        self.inner.sync_devices_file(file, after)
    }

    fn erase_torn_label(&mut self, partition: &Path) -> Result<(), ApplyError> {
        self.inner.erase_torn_label(partition)
    }

    fn read_metadata_copy(
        &mut self,
        partition: &Path,
        copy: &super::restore::CopyAt,
    ) -> Result<Vec<u8>, ApplyError> {
        self.inner.read_metadata_copy(partition, copy)
    }

    fn remove_stale_devices(
        &mut self,
        dm_names: &[String],
        context: &RemovalContext<'_>,
    ) -> Result<(), ApplyError> {
        self.inner.remove_stale_devices(dm_names, context)
    }

    fn remove_stale_volume_group_path(&mut self, path: &Path) -> Result<(), ApplyError> {
        self.inner.remove_stale_volume_group_path(path)
    }

    fn deactivate_thin_volumes(
        &mut self,
        volume_group: &crate::config::names::VgName,
        dm_names: &[String],
        context: &RemovalContext<'_>,
    ) -> Result<(), ApplyError> {
        if let (Some(hold), Some(first)) = (self.plan.hold_open, dm_names.first()) {
            hold_open(first, hold);
        }
        self.inner
            .deactivate_thin_volumes(volume_group, dm_names, context)
    }
}

/// Opens `/dev/mapper/<dm_name>` now and closes it `hold` later, from a thread.
fn hold_open(dm_name: &str, hold: Duration) {
    let node = Path::new("/dev/mapper").join(dm_name);
    match std::fs::File::open(&node) {
        Ok(file) => {
            tracing::warn!(
                device = %node.display(),
                hold_ms = u64::try_from(hold.as_millis()).unwrap_or(u64::MAX),
                "{HOLD_OPEN_ENV}: holding the device open"
            );
            std::thread::spawn(move || {
                std::thread::sleep(hold);
                drop(file);
            });
        }
        Err(e) => tracing::warn!(device = %node.display(), "{HOLD_OPEN_ENV}: cannot open: {e}"),
    }
}

/// Resets the machine `delay` from now, without syncing: a power cut inside the
/// command that is starting.
fn cut_power_after(delay: Duration) {
    tracing::warn!(
        delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
        "{POWERCUT_DURING_ENV} reached: cutting the power during this command"
    );
    std::thread::spawn(move || {
        std::thread::sleep(delay);
        // Straight to the console: the step's captured stderr dies with the machine.
        let _ = std::fs::write(
            "/dev/kmsg",
            format!("<2>{POWERCUT_DURING_ENV}: power cut now\n"),
        );
        let _ = std::fs::write("/proc/sysrq-trigger", b"b");
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const VM: &str = "console=ttyS0 linstor_provision_disk.fault_injection=allow quiet";

    #[test]
    fn the_hooks_are_inert_without_the_vm_key() {
        assert_eq!(
            settings(Some("1"), Some("2:150"), "console=ttyS0 quiet"),
            Ok(FaultSettings::NotAllowed)
        );
        // A look-alike word is not the key.
        assert_eq!(
            settings(
                Some("1"),
                None,
                "linstor_provision_disk.fault_injection=allowed"
            ),
            Ok(FaultSettings::NotAllowed)
        );
        assert_eq!(settings(None, None, VM), Ok(FaultSettings::Unset));
    }

    #[test]
    fn settings_are_parsed_once_and_malformed_values_are_errors() {
        assert_eq!(
            settings(Some("3"), Some("2:150"), VM),
            Ok(FaultSettings::Armed(FaultPlan {
                kill_after: Some(3),
                power_cut_during: Some((2, Duration::from_millis(150))),
                hold_open: None,
            }))
        );
        for bad in ["", "x", "0", "-1"] {
            assert_eq!(
                settings(Some(bad), None, VM),
                Err(FaultSettingError::KillAfter {
                    value: bad.to_owned()
                })
            );
        }
        for bad in ["2", "2:", ":5", "0:5", "a:b"] {
            assert_eq!(
                settings(None, Some(bad), VM),
                Err(FaultSettingError::PowerCutDuring {
                    value: bad.to_owned()
                })
            );
        }
        // Malformed is an error on a real node too: never silently ignored.
        assert!(matches!(
            settings(Some("x"), None, "quiet"),
            Err(FaultSettingError::KillAfter { .. })
        ));
    }

    /// Counts commands; fails none.
    struct Counting(usize);
    impl LvmExecutor for Counting {
        fn run(&mut self, _args: &[String]) -> Result<(), ApplyError> {
            self.0 += 1;
            Ok(())
        }
        fn commands_run(&self) -> usize {
            self.0
        }
        fn flush_partition(&mut self, _: &Path, _: &str) -> Result<(), ApplyError> {
            Ok(())
        }
        fn flushes(&self) -> usize {
            0
        }
    }

    #[test]
    fn an_unarmed_wrapper_passes_commands_through() {
        let mut executor = FaultInjecting::new(Counting(0), FaultPlan::default());
        for _ in 0..3 {
            assert!(executor.run(&["vgs".to_owned()]).is_ok());
        }
        assert_eq!(executor.commands_run(), 3);
    }
}
