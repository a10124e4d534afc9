//! The main loop: observe → plan → apply, then observe again until the plan is
//! empty. Re-planning after every applied plan both verifies the result and lets a
//! plan that needed more facts (the seed LV's ID) continue once they are readable.
use super::lock::{LockError, PartitionLock};
use super::{apply_action, ApplyError, LvmExecutor};
use crate::config::ProvisionConfig;
use crate::observe::partition::DiscoveryBackend;
use crate::observe::snapshot::{observe_resolved, resolve, Expectations, ObserveError};
use crate::plan::{host_lvm_warnings, plan, Plan, Refusal};
use thiserror::Error;

/// Rounds of observe → plan → apply before giving up (normally one applies and the
/// next finds nothing to do; reading a seed ID adds one).
const MAX_ROUNDS: usize = 4;

#[derive(Debug, Error)]
pub enum ConvergeError {
    #[error(transparent)]
    Observe(#[from] ObserveError),
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error("a reset needs to know which logical volumes are open, but device-mapper could not be queried: {0}")]
    ActivityUnknown(String),
    #[error("the partition did not reach the wanted state after {MAX_ROUNDS} rounds; still planned: {0}. Rerun with LOG_LEVEL=debug and report this")]
    NotConverged(String),
    #[error("LVM reported success for `{0}`, yet nothing was activated: LVM skips LVs that /etc/lvm/lvm.conf's activation/volume_list does not name (it must list the VG, e.g. \"@linstor-vg\" or the VG name). Fix that setting and rerun")]
    ActivationIgnored(String),
}

/// Environment variable that makes the process SIGKILL itself after that many LVM
/// commands: the VM tests use it to prove a run killed at any step boundary
/// converges when rerun. Unset in production, where this is a no-op.
pub const KILL_AFTER_ENV: &str = "LINSTOR_PROVISION_DISK_TEST_KILL_AFTER";

fn crash_point(commands_run: usize) {
    let wanted = std::env::var(KILL_AFTER_ENV)
        .ok()
        .and_then(|v| v.parse::<usize>().ok());
    if wanted == Some(commands_run) {
        tracing::warn!(
            commands_run,
            "{KILL_AFTER_ENV} reached: killing this process"
        );
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    }
}

/// Environment variable `N:MS`: when LVM command N (1-based) starts, a thread
/// writes `b` to `/proc/sysrq-trigger` MS milliseconds later, which resets the
/// machine at once, without syncing — a power cut in the middle of that command.
/// The VM tests use it to prove a run cut off inside any write step converges
/// after a reboot. Unset in production, where this is a no-op.
pub const POWERCUT_DURING_ENV: &str = "LINSTOR_PROVISION_DISK_TEST_POWERCUT_DURING";

fn arm_power_cut(next_command: usize) {
    let Some((command, delay)) = std::env::var(POWERCUT_DURING_ENV).ok().and_then(|v| {
        let (n, ms) = v.split_once(':')?;
        Some((n.parse::<usize>().ok()?, ms.parse::<u64>().ok()?))
    }) else {
        return;
    };
    if command != next_command {
        return;
    }
    tracing::warn!(
        command,
        delay_ms = delay,
        "{POWERCUT_DURING_ENV} reached: cutting the power during this command"
    );
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(delay));
        // Straight to the console: the step's captured stderr dies with the machine.
        let _ = std::fs::write(
            "/dev/kmsg",
            format!("<2>{POWERCUT_DURING_ENV}: power cut now\n"),
        );
        let _ = std::fs::write("/proc/sysrq-trigger", b"b");
    });
}

/// What a run did.
#[derive(Debug)]
pub enum Outcome {
    /// `--dry-run`: the plan that a real run would start with.
    Planned(Plan),
    /// The partition is as wanted; `commands` LVM commands ran to get there.
    Converged { commands: usize, rounds: usize },
}

pub fn converge(
    config: &ProvisionConfig,
    backend: DiscoveryBackend,
    executor: &mut dyn LvmExecutor,
    dry_run: bool,
) -> Result<Outcome, ConvergeError> {
    let resolved = resolve(&config.partition_label, backend)?;
    let devnode = resolved.device.devnode.clone();
    tracing::info!(partition = %devnode.display(), label = %config.partition_label, "resolved partition");
    let _lock = if dry_run {
        None
    } else {
        Some(PartitionLock::acquire(&devnode)?)
    };
    // Pool usage is for `status`; planning needs no extra device-mapper queries.
    let expect = Expectations {
        volume_group: Some(&config.volume_group),
        pool: None,
    };
    let mut applied: Vec<crate::plan::Action> = Vec::new();
    for round in 0..MAX_ROUNDS {
        let snapshot = observe_resolved(&resolved, &expect)?;
        if round == 0 {
            for warning in host_lvm_warnings(&snapshot.observed, config) {
                tracing::warn!("{warning}");
            }
        }
        let plan = plan(&snapshot.observed, config)?;
        // An activation that "succeeded" and is needed again did nothing: LVM
        // filtered it out. Say why instead of looping.
        if let Some(again) = plan
            .actions
            .iter()
            .find(|a| is_activation(a) && applied.contains(a))
        {
            return Err(ConvergeError::ActivationIgnored(again.to_string()));
        }
        if dry_run {
            return Ok(Outcome::Planned(plan));
        }
        if plan.is_empty() {
            return Ok(Outcome::Converged {
                commands: executor.commands_run(),
                rounds: round,
            });
        }
        if let Some(reset) = &plan.reset {
            if let Err(e) = &snapshot.active_volumes {
                return Err(ConvergeError::ActivityUnknown(e.clone()));
            }
            tracing::warn!(
                existing = %reset.existing,
                expected = %reset.expected,
                "satellite id mismatch, resetting lvm configuration"
            );
        }
        for action in &plan.actions {
            arm_power_cut(executor.commands_run() + 1);
            apply_action(executor, action, &devnode)?;
            crash_point(executor.commands_run());
        }
        applied.extend(plan.actions);
    }
    let snapshot = observe_resolved(&resolved, &expect)?;
    let leftover = plan(&snapshot.observed, config)?;
    if leftover.is_empty() {
        return Ok(Outcome::Converged {
            commands: executor.commands_run(),
            rounds: MAX_ROUNDS,
        });
    }
    let steps: Vec<String> = leftover.actions.iter().map(ToString::to_string).collect();
    Err(ConvergeError::NotConverged(steps.join("; ")))
}

/// Steps that activate something and write no metadata.
fn is_activation(action: &crate::plan::Action) -> bool {
    use crate::plan::Action;
    matches!(
        action,
        Action::ActivateThinPool { .. }
            | Action::RefreshThinPool { .. }
            | Action::ActivateSeedMetadataLv { .. }
    )
}
