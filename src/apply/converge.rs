//! The main loop: observe → plan → apply, then observe again until the plan is
//! empty. Re-planning after every applied plan both verifies the result and lets a
//! plan that needed more facts (the seed LV's ID) continue once they are readable.
use super::leftovers::RemovalContext;
use super::lock::{LockError, PartitionLock};
use super::{apply_action, ApplyError, LvmExecutor};
use crate::config::ProvisionConfig;
use crate::observe::partition::DiscoveryBackend;
use crate::observe::phase_timer::PhaseTimer;
use crate::observe::snapshot::{
    observe_preflight, observe_resolved, resolve, Expectations, ObserveError, Resolved, Snapshot,
};
use crate::observe::state::{Preflight, PreflightFacts};
use crate::plan::{host_lvm_warnings, needs_preflight, plan, pool_warnings, Plan, Refusal};
use std::path::Path;
use thiserror::Error;

/// Rounds of observe → plan → apply before giving up (normally one applies and the
/// next finds nothing to do; reading a seed ID adds one).
pub(crate) const MAX_ROUNDS: usize = 5;

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
    ActivityUnknown(#[source] std::sync::Arc<crate::observe::live::LiveError>),
    #[error("the partition did not reach the wanted state after {MAX_ROUNDS} rounds; still planned: {0}. Rerun with LOG_LEVEL=debug and report this")]
    NotConverged(String),
    #[error("LVM reported success for `{0}`, yet nothing was activated: LVM skips LVs that /etc/lvm/lvm.conf's activation/volume_list does not name (it must list the VG, e.g. \"@linstor-vg\" or the VG name). Fix that setting and rerun")]
    ActivationIgnored(String),
}

/// What a run did.
#[derive(Debug)]
pub enum Outcome {
    /// `--dry-run`: the plan that a real run would start with.
    Planned(Plan),
    /// The partition is as wanted; `commands` LVM commands ran to get there, and
    /// `flushes` cache flushes made their writes durable.
    Converged {
        commands: usize,
        flushes: usize,
        rounds: usize,
    },
}

/// What `converge` reads from the machine, and the lock it holds while writing:
/// [`RealMachine`] in the shipped tool, a simulated partition in the unit tests.
pub trait Machine {
    /// Held until dropped.
    type Lock;
    /// Finds the partition labeled `label`.
    fn resolve(&mut self, label: &str, timer: &mut PhaseTimer) -> Result<Resolved, ObserveError>;
    /// One run at a time per partition: waits while another instance holds it.
    fn lock(&mut self, devnode: &Path) -> Result<Self::Lock, LockError>;
    /// Whether taking `lock` had to wait for another instance.
    fn lock_was_contended(lock: &Self::Lock) -> bool;
    /// Fails unless the resolved node still names the device `lock` holds, and that
    /// is the resolved partition: checked before every round and every step, since
    /// every write reaches the partition by name.
    fn reidentify(&mut self, lock: &Self::Lock, resolved: &Resolved) -> Result<(), LockError>;
    /// One read-only pass over the resolved partition.
    fn observe(
        &mut self,
        resolved: &Resolved,
        expect: &Expectations<'_>,
        timer: &mut PhaseTimer,
    ) -> Result<Snapshot, ObserveError>;
    /// What a plan that writes needs established first: the full signature probe,
    /// the partition's users, whether it is read-only.
    fn preflight(
        &mut self,
        resolved: &Resolved,
        timer: &mut PhaseTimer,
    ) -> Result<PreflightFacts, ObserveError>;
}

/// This machine: block devices from `backend`, LVM metadata, device-mapper.
pub struct RealMachine {
    pub backend: DiscoveryBackend,
}

impl Machine for RealMachine {
    type Lock = PartitionLock;

    fn resolve(&mut self, label: &str, timer: &mut PhaseTimer) -> Result<Resolved, ObserveError> {
        resolve(label, self.backend, timer)
    }

    fn lock(&mut self, devnode: &Path) -> Result<PartitionLock, LockError> {
        PartitionLock::acquire(devnode)
    }

    fn lock_was_contended(lock: &PartitionLock) -> bool {
        lock.waited()
    }

    fn reidentify(&mut self, lock: &PartitionLock, resolved: &Resolved) -> Result<(), LockError> {
        let device = &resolved.device;
        lock.holds_device(&device.devnode, device.major, device.minor)?;
        lock.still_names_locked_device(&device.devnode)
    }

    fn observe(
        &mut self,
        resolved: &Resolved,
        expect: &Expectations<'_>,
        timer: &mut PhaseTimer,
    ) -> Result<Snapshot, ObserveError> {
        observe_resolved(resolved, expect, timer)
    }

    fn preflight(
        &mut self,
        resolved: &Resolved,
        timer: &mut PhaseTimer,
    ) -> Result<PreflightFacts, ObserveError> {
        observe_preflight(resolved, timer)
    }
}

pub fn converge(
    config: &ProvisionConfig,
    backend: DiscoveryBackend,
    executor: &mut dyn LvmExecutor,
    dry_run: bool,
    timer: &mut PhaseTimer,
) -> Result<Outcome, ConvergeError> {
    converge_on(
        &mut RealMachine { backend },
        config,
        executor,
        dry_run,
        timer,
    )
}

/// [`converge`] on any [`Machine`].
pub fn converge_on<M: Machine>(
    machine: &mut M,
    config: &ProvisionConfig,
    executor: &mut dyn LvmExecutor,
    dry_run: bool,
    timer: &mut PhaseTimer,
) -> Result<Outcome, ConvergeError> {
    let resolved = machine.resolve(&config.partition_label, timer)?;
    let devnode = resolved.device.devnode.clone();
    tracing::info!(partition = %devnode.display(), label = %config.partition_label, "resolved partition");
    let lock = if dry_run {
        None
    } else {
        Some(machine.lock(&devnode)?)
    };
    timer.lap("lock");
    // The pool's usage: the planner doubles its metadata at 75% (one status
    // query of the pool's device, when it serves I/O).
    let expect = Expectations {
        volume_group: Some(&config.volume_group),
        pool: Some(&config.pool),
        signatures_beside_lvm_label: false,
        every_lv_state: false,
        reuse_resolve_dm_list: false,
    };
    // The first look takes the VG's devices from the list the label search read a
    // moment ago, unless another instance held the partition meanwhile (it may
    // have changed them). Every later look, and every plan that writes, lists anew.
    let first_look = Expectations {
        reuse_resolve_dm_list: !lock.as_ref().is_some_and(M::lock_was_contended),
        ..expect
    };
    // A plan that changes anything is decided with every LV's state (open counts:
    // a reset refuses to remove an open LV).
    let every_state = Expectations {
        every_lv_state: true,
        ..expect
    };
    let mut applied: Vec<crate::plan::Action> = Vec::new();
    'rounds: for round in 0..MAX_ROUNDS {
        if let Some(lock) = &lock {
            machine.reidentify(lock, &resolved)?;
        }
        let look = if round == 0 { &first_look } else { &expect };
        let mut snapshot = machine.observe(&resolved, look, timer)?;
        if round == 0 {
            for warning in host_lvm_warnings(&snapshot.observed, config) {
                tracing::warn!("{warning}");
            }
        }
        // The first look reads what a steady start needs; anything else — a plan, or
        // a refusal, which may rest on what that look left unread (thin volumes'
        // states, where `/dev/<vg>`'s links lead) — is decided again with all of it.
        let mut plan = match plan(&snapshot.observed, config) {
            Ok(plan) if plan.is_empty() || expect.every_lv_state => plan,
            Err(refusal) if expect.every_lv_state => return Err(refusal.into()),
            Ok(_) | Err(_) => {
                snapshot = machine.observe(&resolved, &every_state, timer)?;
                crate::plan::plan(&snapshot.observed, config)?
            }
        };
        // Preflight, then destroy: a plan that writes is decided again with what
        // every one of its steps needs (a steady start never gets here).
        if needs_preflight(&snapshot.observed, &plan) {
            snapshot.observed.preflight = Preflight::Gathered(machine.preflight(&resolved, timer)?);
            plan = crate::plan::plan(&snapshot.observed, config)?;
        }
        timer.lap("plan");
        if round == 0 {
            timer.log();
            for warning in pool_warnings(&snapshot.observed, config, &plan) {
                tracing::warn!("{warning}");
            }
        }
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
                flushes: executor.flushes(),
                rounds: round,
            });
        }
        if let Some(reset) = &plan.reset {
            if let Err(e) = &snapshot.active_volumes {
                return Err(ConvergeError::ActivityUnknown(e.clone()));
            }
            tracing::warn!(
                existing = %reset.existing_shown(),
                expected = %reset.expected,
                "satellite id mismatch, resetting lvm configuration"
            );
        }
        let removal = RemovalContext::of(&snapshot);
        for action in &plan.actions {
            if let Some(lock) = &lock {
                machine.reidentify(lock, &resolved)?;
            }
            match apply_action(executor, action, &devnode, &removal) {
                // The plan no longer fits what is there: plan again from a new look.
                Err(e) if e.is_changed_since_observed() => {
                    tracing::warn!("{e}");
                    continue 'rounds;
                }
                result => result?,
            }
            applied.push(action.clone());
            if sizes_later_steps(action, &plan.actions) {
                // The pool's data extents come from the VG as LVM made it (its
                // `pe_start` follows the device's I/O hints): plan again.
                continue 'rounds;
            }
        }
    }
    // With everything a plan that writes is decided on: a first look's unread
    // `/dev/<vg>` would turn a leftover reset into a refusal naming that folder.
    let snapshot = machine.observe(&resolved, &every_state, timer)?;
    let leftover = plan(&snapshot.observed, config)?;
    if leftover.is_empty() {
        return Ok(Outcome::Converged {
            commands: executor.commands_run(),
            flushes: executor.flushes(),
            rounds: MAX_ROUNDS,
        });
    }
    let steps: Vec<String> = leftover.actions.iter().map(ToString::to_string).collect();
    Err(ConvergeError::NotConverged(steps.join("; ")))
}

/// `vgcreate` followed by the pool in the same plan: the pool was sized from
/// a predicted VG, and is planned again from the one observed.
fn sizes_later_steps(action: &crate::plan::Action, plan: &[crate::plan::Action]) -> bool {
    use crate::plan::Action;
    matches!(action, Action::CreateVolumeGroup { .. })
        && plan
            .iter()
            .any(|a| matches!(a, Action::CreateThinPool { .. }))
}

/// Steps that activate something and write no metadata.
fn is_activation(action: &crate::plan::Action) -> bool {
    use crate::plan::Action;
    matches!(
        action,
        Action::ActivateThinPool { .. }
            | Action::RefreshThinPool { .. }
            | Action::ActivateSeedIdLv { .. }
    )
}
