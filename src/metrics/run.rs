//! How a provisioning run ended, as metrics (written with `--metrics-file`).
use super::families::*;
use super::{Samples, Value};
use std::time::Duration;

/// The three ways a run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    /// The partition is provisioned as configured.
    Success,
    /// Nothing was written because the input or what is on the disk is not what the
    /// tool may act on: invalid settings (exit 2) or a planner refusal (exit 1).
    Refusal,
    /// A failure while reading or writing.
    Error,
}

impl RunOutcome {
    pub const ALL: [RunOutcome; 3] = [RunOutcome::Success, RunOutcome::Refusal, RunOutcome::Error];

    pub fn label(self) -> &'static str {
        match self {
            RunOutcome::Success => "success",
            RunOutcome::Refusal => "refusal",
            RunOutcome::Error => "error",
        }
    }
}

/// What a run reports about itself.
#[derive(Debug, Clone, Copy)]
pub struct RunReport {
    pub outcome: RunOutcome,
    pub exit_code: u8,
    /// Waiting for the hold marker's removal (`--on-failure hold`).
    pub holding: bool,
    pub duration: Duration,
    pub lvm_commands: usize,
}

/// The run's samples, labeled with the configured partition label, VG and pool.
pub fn add_run_samples(samples: &mut Samples, report: &RunReport, labels: &[(&'static str, &str)]) {
    // Every outcome gets a sample (1 or 0), so that an alert on `== 1` sees the
    // series change instead of disappear.
    for outcome in RunOutcome::ALL {
        let mut with_outcome = labels.to_vec();
        with_outcome.push(("outcome", outcome.label()));
        samples.add(
            &RUN_OUTCOME,
            &with_outcome,
            Value::from(outcome == report.outcome),
        );
    }
    samples.add(
        &RUN_EXIT_CODE,
        labels,
        Value::Integer(u128::from(report.exit_code)),
    );
    samples.add(&RUN_HOLDING, labels, Value::from(report.holding));
    samples.add(
        &RUN_DURATION_SECONDS,
        labels,
        Value::Float(report.duration.as_secs_f64()),
    );
    samples.add(
        &RUN_LVM_COMMANDS,
        labels,
        Value::Integer(report.lvm_commands as u128),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_sets_its_outcome_and_clears_the_others() {
        let mut samples = Samples::default();
        let report = RunReport {
            outcome: RunOutcome::Refusal,
            exit_code: 1,
            holding: false,
            duration: Duration::from_millis(1500),
            lvm_commands: 0,
        };
        add_run_samples(&mut samples, &report, &[("partition_label", "p")]);
        let text = samples.render();
        let name = RUN_OUTCOME.name;
        for (outcome, value) in [("success", 0), ("refusal", 1), ("error", 0)] {
            assert!(
                text.contains(&format!(
                    "{name}{{partition_label=\"p\",outcome=\"{outcome}\"}} {value}\n"
                )),
                "{text}"
            );
        }
        assert!(text
            .contains("linstor_provision_disk_run_duration_seconds{partition_label=\"p\"} 1.5\n"));
        assert!(text.contains("linstor_provision_disk_run_exit_code{partition_label=\"p\"} 1\n"));
    }
}
