//! Provisioning, the default action: validate, converge, and on failure hold (the
//! seed tool's behaviour) or exit — telling Kubernetes why either way.
use super::args::{OnFailure, ProvisionArgs};
use super::CliError;
use crate::apply::converge::{converge, ConvergeError, Outcome};
use crate::apply::fault_injection::{self, FaultInjecting, FaultSettings};
use crate::apply::{InProcessLvm, LvmExecutor};
use crate::config::{ProvisionConfig, ProvisionInputs};
use crate::metrics::partition::add_partition_samples;
use crate::metrics::run::{add_run_samples, RunOutcome, RunReport};
use crate::metrics::textfile::write_atomically;
use crate::metrics::Samples;
use crate::observe::partition::DiscoveryBackend;
use crate::observe::phase_timer::PhaseTimer;
use crate::observe::snapshot::{observe_partition, Expectations};
use crate::plan::Plan;
use std::path::Path;
use std::time::{Duration, Instant};

/// How often a hold checks whether its marker was removed.
const HOLD_POLL: Duration = Duration::from_secs(2);

fn config_from(args: &ProvisionArgs) -> Result<ProvisionConfig, CliError> {
    let required = |value: &Option<String>, flag: &str, env: &str| {
        value
            .clone()
            .ok_or_else(|| CliError::Usage(format!("{flag} (or {env}) is required")))
    };
    let inputs = ProvisionInputs {
        partition_label: required(
            &args.partition_label,
            "--partition-label",
            "PARTITION_LABEL",
        )?,
        volume_group: required(&args.volume_group, "--volume-group", "VOLUME_GROUP")?,
        pool: required(&args.pool, "--pool", "POOL")?,
        satellite_id: required(&args.satellite_id, "--satellite-id", "SATELLITE_ID")?,
        chunk_size: args.chunk_size.clone(),
        zero_new_blocks: args.zero,
        force: args.force,
    };
    ProvisionConfig::from_inputs(inputs).map_err(|e| CliError::Usage(e.to_string()))
}

pub fn run(
    args: &ProvisionArgs,
    backend: DiscoveryBackend,
    mut timer: PhaseTimer,
) -> Result<(), CliError> {
    let metrics = MetricsFile::from_args(args, backend);
    let mut started = Instant::now();
    let config = config_from(args).inspect_err(|_| metrics.usage_refusal(started))?;
    timer.lap("validate_config");
    let faults = match fault_injection::from_environment() {
        Ok(settings) => settings,
        Err(e) => {
            metrics.usage_refusal(started);
            return Err(CliError::Usage(e.to_string()));
        }
    };
    let faults = match faults {
        FaultSettings::Armed(plan) => Some(plan),
        FaultSettings::NotAllowed => {
            tracing::warn!(
                "fault-injection variables are set but ignored: they act only in the VM test bed (kernel command line `{}`)",
                fault_injection::VM_KEY
            );
            None
        }
        FaultSettings::Unset => None,
    };
    loop {
        let mut executor: Box<dyn LvmExecutor> = match faults {
            Some(plan) => Box::new(FaultInjecting::new(InProcessLvm::default(), plan)),
            None => Box::new(InProcessLvm::default()),
        };
        let outcome = converge(
            &config,
            backend,
            executor.as_mut(),
            args.dry_run,
            &mut timer,
        );
        let lvm_commands = executor.commands_run();
        // Close LVM before the metrics' read-only look at the partition.
        drop(executor);
        match outcome {
            Ok(Outcome::Planned(plan)) => return print_plan(&plan, &config, args.json),
            Ok(Outcome::Converged {
                commands,
                flushes,
                rounds,
            }) => {
                tracing::info!(
                    lvm_commands = commands,
                    flushes,
                    rounds,
                    "disk provisioning completed successfully"
                );
                metrics.write(&RunReport {
                    outcome: RunOutcome::Success,
                    exit_code: 0,
                    holding: false,
                    duration: started.elapsed(),
                    lvm_commands: commands,
                });
                return Ok(());
            }
            Err(error) => {
                let message = error.to_string();
                tracing::error!("{message}");
                super::termination_log::write(&args.termination_log, &message);
                // A dry run reports; only a real run waits for someone to fix things.
                if args.dry_run {
                    return Err(CliError::Reported);
                }
                let holding = args.on_failure == OnFailure::Hold;
                let report = RunReport {
                    outcome: outcome_of(&error),
                    exit_code: 1,
                    holding,
                    duration: started.elapsed(),
                    lvm_commands,
                };
                metrics.write(&report);
                if !holding {
                    return Err(CliError::Reported);
                }
                hold(&args.hold_marker).inspect_err(|_| {
                    metrics.write(&RunReport {
                        holding: false,
                        ..report
                    })
                })?;
                timer = PhaseTimer::start("retry");
                started = Instant::now();
            }
        }
    }
}

/// A refusal is what the safety rules refuse, with nothing written: the planner's
/// refusals, and a label that names no partition, several, or one that cannot be
/// confirmed. Everything else failed while reading or writing.
fn outcome_of(error: &ConvergeError) -> RunOutcome {
    use crate::observe::partition::ResolveError;
    use crate::observe::snapshot::ObserveError;
    match error {
        ConvergeError::Refused(_)
        | ConvergeError::Observe(ObserveError::Resolve(
            ResolveError::NotFound { .. }
            | ResolveError::Ambiguous { .. }
            | ResolveError::Unconfirmed { .. },
        )) => RunOutcome::Refusal,
        _ => RunOutcome::Error,
    }
}

/// `--metrics-file`: where a run's metrics go, and the labels they carry (the
/// settings as given, so a run refused for a bad setting is labeled too).
struct MetricsFile<'a> {
    path: Option<&'a Path>,
    partition_label: &'a str,
    volume_group: &'a str,
    pool: &'a str,
    backend: DiscoveryBackend,
}

impl<'a> MetricsFile<'a> {
    fn from_args(args: &'a ProvisionArgs, backend: DiscoveryBackend) -> Self {
        let path = args
            .metrics_file
            .as_deref()
            .filter(|p| !p.is_empty())
            .map(Path::new);
        if args.dry_run {
            if let Some(path) = path {
                tracing::info!(path = %path.display(), "a dry run writes no metrics file");
            }
        }
        MetricsFile {
            path: path.filter(|_| !args.dry_run),
            partition_label: args.partition_label.as_deref().unwrap_or_default(),
            volume_group: args.volume_group.as_deref().unwrap_or_default(),
            pool: args.pool.as_deref().unwrap_or_default(),
            backend,
        }
    }

    /// A setting was refused before anything was read (exit 2).
    fn usage_refusal(&self, started: Instant) {
        self.write(&RunReport {
            outcome: RunOutcome::Refusal,
            exit_code: super::EXIT_USAGE,
            holding: false,
            duration: started.elapsed(),
            lvm_commands: 0,
        });
    }

    /// Writes the run's metrics and what the partition holds now. Metrics are for
    /// watching the node: a folder that cannot be written is logged, and the run's
    /// result stays what provisioning decided (a monitoring fault must not keep the
    /// satellite from starting).
    fn write(&self, report: &RunReport) {
        let Some(path) = self.path else { return };
        let labels = [
            ("partition_label", self.partition_label),
            ("vg", self.volume_group),
            ("pool", self.pool),
        ];
        let mut samples = Samples::default();
        add_run_samples(&mut samples, report, &labels);
        let expect = Expectations {
            volume_group: Some(self.volume_group),
            pool: Some(self.pool).filter(|p| !p.is_empty()),
            signatures_beside_lvm_label: false,
            // The pool's own state is always read; thin volumes' are not metrics.
            every_lv_state: false,
            // Resolved and looked at in one go, nothing written between.
            reuse_resolve_dm_list: true,
        };
        // The same look `status` takes; a partition that cannot be read (the reason
        // of a refusal, often) leaves only the run's samples.
        match observe_partition(self.partition_label, self.backend, &expect) {
            Ok(snapshot) => {
                add_partition_samples(&mut samples, &snapshot, self.partition_label, expect.pool)
            }
            Err(e) => tracing::debug!(error = %e, "metrics: the partition's figures are left out"),
        }
        if !path.as_os_str().to_string_lossy().ends_with(".prom") {
            tracing::warn!(path = %path.display(), "the metrics file's name does not end in .prom: node_exporter's textfile collector reads only *.prom");
        }
        match write_atomically(path, &samples.render()) {
            Ok(()) => tracing::debug!(path = %path.display(), "metrics written"),
            Err(e) => tracing::warn!(
                path = %path.display(),
                error = %e,
                "cannot write the metrics file (the run's result is unaffected); check that its folder exists and is writable"
            ),
        }
    }
}

/// Creates the marker and waits until someone removes it. The marker is created
/// with `O_CREAT|O_EXCL`: an existing file there (a hold by an earlier run, or a file
/// HOLD_MARKER names by mistake) is never truncated; it means "still held".
fn hold(marker: &Path) -> Result<(), CliError> {
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(marker);
    match created {
        Ok(_) => tracing::warn!(
            marker = %marker.display(),
            "provisioning failed; holding. Fix the cause, then `rm {}` to retry",
            marker.display()
        ),
        // Only on what `rm`/`release` would remove: a hold on anything else (a
        // folder, someone's file) could never be released from inside the image.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            super::release::check_removable(marker).map_err(|why| {
                CliError::Failed(format!(
                    "provisioning failed; not holding on {}, which `rm` and `release` would not remove: {why}",
                    marker.display()
                ))
            })?;
            tracing::warn!(
                marker = %marker.display(),
                "provisioning failed; holding on the existing {} (left as it is). Fix the cause, then remove it to retry",
                marker.display()
            )
        }
        Err(e) => {
            return Err(CliError::Failed(format!(
                "cannot create the hold marker {}: {e}; use --on-failure exit or set HOLD_MARKER to a writable path",
                marker.display()
            )))
        }
    }
    // lstat: a symlink there holds too, even when it points nowhere.
    while std::fs::symlink_metadata(marker).is_ok() {
        std::thread::sleep(HOLD_POLL);
    }
    tracing::info!("hold marker removed; retrying");
    Ok(())
}

fn print_plan(plan: &Plan, config: &ProvisionConfig, json: bool) -> Result<(), CliError> {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(plan).map_err(CliError::failed)?
        );
        return Ok(());
    }
    if plan.is_empty() {
        println!(
            "nothing to do: {}/{} on the partition labeled {:?} is provisioned for satellite {:?}",
            config.volume_group, config.pool, config.partition_label, config.satellite_id
        );
        return Ok(());
    }
    if let Some(reset) = &plan.reset {
        println!(
            "satellite id mismatch: existing={:?} expected={:?} — the LVM objects on this partition will be removed",
            reset.existing_shown(), reset.expected
        );
    }
    println!("plan (dry run, nothing was changed):");
    for (index, action) in plan.actions.iter().enumerate() {
        println!("  {}. {action}", index + 1);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::hold;
    use crate::apply::converge::ConvergeError;
    use crate::observe::live::{DmUnavailable, LiveError};
    use crate::observe::snapshot::{LeftoversError, ObserveError};
    use crate::observe::{device_size, lvm, signature};
    use std::path::{Path, PathBuf};

    #[test]
    fn a_hold_leaves_an_existing_marker_as_it_is_and_waits_for_its_removal() {
        let dir = crate::observe::partition::test_tree::TempDir::new("hold-existing");
        let marker = dir.path().join("wait");
        if let Err(e) = std::fs::write(&marker, b"precious") {
            panic!("{e}");
        }
        let waiting = {
            let marker = marker.clone();
            std::thread::spawn(move || hold(&marker).is_ok())
        };
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert!(!waiting.is_finished(), "the hold did not wait");
        assert_eq!(
            std::fs::read(&marker).ok().as_deref(),
            Some(&b"precious"[..])
        );
        if let Err(e) = std::fs::remove_file(&marker) {
            panic!("{e}");
        }
        assert!(waiting.join().unwrap_or(false));
    }

    #[test]
    fn no_hold_on_a_file_that_is_no_marker() {
        let dir = crate::observe::partition::test_tree::TempDir::new("hold-no-marker");
        let marker = dir.path().join("notes");
        if let Err(e) = std::fs::write(&marker, b"someone's notes\n") {
            panic!("{e}");
        }
        let refused = match hold(&marker) {
            Err(crate::cli::CliError::Failed(message)) => message,
            other => panic!("expected a refusal to hold, got {other:?}"),
        };
        assert!(refused.contains("a file of 16 bytes"), "{refused}");
        assert_eq!(
            std::fs::read(&marker).ok().as_deref(),
            Some(&b"someone's notes\n"[..])
        );
        let folder = dir.path().join("folder");
        if let Err(e) = std::fs::create_dir(&folder) {
            panic!("{e}");
        }
        assert!(hold(&folder).is_err());
    }

    #[test]
    fn refusals_are_what_the_safety_rules_refuse_and_the_rest_are_errors() {
        use super::outcome_of;
        use crate::metrics::run::RunOutcome;
        use crate::observe::partition::ResolveError;
        let refused = ConvergeError::Refused(crate::plan::Refusal::ForeignSignature {
            device: PathBuf::from("/dev/vda1"),
            signature: "ext4".to_owned(),
        });
        let no_label = ConvergeError::Observe(ObserveError::Resolve(ResolveError::NotFound {
            label: "linstor-storage".to_owned(),
            existing_labels: Vec::new(),
        }));
        let size = ObserveError::Size {
            device: PathBuf::from("/dev/vda1"),
            source: match device_size::size_and_logical_sector(Path::new("/nonexistent/lpd")) {
                Err(e) => e,
                Ok(_) => panic!("a missing path has a size"),
            },
        };
        assert_eq!(outcome_of(&refused), RunOutcome::Refusal);
        assert_eq!(outcome_of(&no_label), RunOutcome::Refusal);
        assert_eq!(outcome_of(&ConvergeError::Observe(size)), RunOutcome::Error);
        assert_eq!(
            outcome_of(&ConvergeError::NotConverged("x".to_owned())),
            RunOutcome::Error
        );
    }

    /// What `run` logs and writes to the termination log for a failure: the error's
    /// Display. These pins keep the operator's text identical while the causes
    /// travel as typed errors.
    #[test]
    fn failure_text_is_pinned() {
        let missing = Path::new("/nonexistent/lpd-pin");
        let device = PathBuf::from("/dev/vda1");
        let Err(size) = device_size::size_and_logical_sector(missing) else {
            panic!("a missing path has a size");
        };
        let Err(lvm) = lvm::read_pv_on_disk(missing) else {
            panic!("a missing path was read");
        };
        let Err(probe) = signature::probe_signatures(missing) else {
            panic!("a missing path was probed");
        };
        let unavailable = LiveError::DeviceMapperUnavailable {
            source: DmUnavailable::NoControlNode,
        };
        let cases: Vec<(ConvergeError, &str)> = vec![
            (
                ObserveError::Size { device: device.clone(), source: size }.into(),
                "cannot read the size of /dev/vda1: cannot open /nonexistent/lpd-pin read-only to ask its size: No such file or directory (os error 2)",
            ),
            (
                ObserveError::Lvm { device: device.clone(), source: Box::new(lvm) }.into(),
                "cannot read LVM metadata on /dev/vda1: cannot read device (opening read-only) at byte 0 of /nonexistent/lpd-pin: No such file or directory (os error 2); the metadata may be damaged — inspect with `pvck /dev/vda1` before anything else",
            ),
            (
                ObserveError::Probe { device: device.clone(), source: probe }.into(),
                "cannot probe /dev/vda1 for signatures: cannot open /nonexistent/lpd-pin read-only to probe it: No such file or directory (os error 2)",
            ),
            (
                ObserveError::Leftovers {
                    device: device.clone(),
                    source: LeftoversError::VgDevDir {
                        name: "linstor-vg".to_owned(),
                        source: std::io::Error::from_raw_os_error(13),
                    },
                }
                .into(),
                "cannot read what interrupted LVM commands may have left on /dev/vda1: cannot read /dev/linstor-vg: Permission denied (os error 13)",
            ),
            (
                ConvergeError::ActivityUnknown(std::sync::Arc::new(unavailable)),
                "a reset needs to know which logical volumes are open, but device-mapper could not be queried: device-mapper is not available: /dev/mapper/control does not exist (no dm-mod in this kernel, or /dev is not the host's). Load the kernel modules (`modprobe dm_mod dm_thin_pool`) and, in a container, make the host's /dev/mapper/control visible",
            ),
            #[cfg(feature = "lvm2cmd")]
            (
                crate::apply::ApplyError::Init(crate::ffi::lvm2cmd::Lvm2ContextError::AlreadyOpen)
                .into(),
                "LVM could not be initialised: another liblvm2cmd context is already open in this process",
            ),
        ];
        for (error, text) in cases {
            assert_eq!(error.to_string(), text);
        }
    }
}
