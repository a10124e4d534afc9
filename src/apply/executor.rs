//! Runs LVM command lines. [`InProcessLvm`] opens liblvm2cmd lazily, so a run with
//! nothing to do never initialises LVM at all.
use super::leftovers::RemovalContext;
#[cfg(feature = "lvm2cmd")]
use crate::ffi::lvm2cmd::{Lvm2Context, RunStatus};
use std::path::Path;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ApplyError {
    #[error("refusing to run `{0}`: an argument is empty or contains whitespace")]
    UnsafeArgument(String),
    #[cfg(feature = "lvm2cmd")]
    #[error("LVM could not be initialised: {0}")]
    Init(#[source] crate::ffi::lvm2cmd::Lvm2ContextError),
    #[error("`{command}` failed ({status}): {errors}")]
    CommandFailed {
        command: String,
        status: String,
        errors: String,
    },
    #[error("this build has no LVM write support (built without the `lvm2cmd` feature)")]
    Unsupported,
    #[error(transparent)]
    Leftover(#[from] super::leftovers::LeftoverError),
    #[error("the intact metadata copy planned for restoring, at byte {at} of {}, is not what was planned any more ({why}); nothing was restored. Rerun to plan again", device.display())]
    MetadataCopyChanged {
        device: std::path::PathBuf,
        at: u64,
        why: String,
    },
    #[error("cannot erase the LVM label of a PV whose first commit tore: {0}")]
    EraseLabel(String),
    #[error("cannot make the in-memory file pvck reads the metadata copy from: {0}")]
    TextFile(#[source] std::io::Error),
    #[error("cannot flush the write cache of {} after `{after}`: {source}; what LVM wrote may not survive a power loss, so the run stops here", device.display())]
    Flush {
        device: std::path::PathBuf,
        after: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot make the host's devices file {} durable (fsync of it and its folder) after `{after}`: {source}; the edit may not survive a power loss, so the run stops here", file.display())]
    DevicesFileSync {
        file: std::path::PathBuf,
        after: String,
        #[source]
        source: std::io::Error,
    },
}

impl ApplyError {
    /// A removal found the device changed since the plan's observation: observe
    /// again instead of failing.
    pub fn is_changed_since_observed(&self) -> bool {
        matches!(self, ApplyError::Leftover(e) if e.is_changed_since_observed())
    }
}

/// Something that runs LVM commands (program name first).
pub trait LvmExecutor {
    fn run(&mut self, args: &[String]) -> Result<(), ApplyError>;
    /// How many commands ran so far (reported in the final log line).
    fn commands_run(&self) -> usize;
    /// Sends the partition's disk a cache flush (see [`super::flush`]) after a step
    /// that wrote; `after` names the step, for the log and the error.
    fn flush_partition(&mut self, partition: &Path, after: &str) -> Result<(), ApplyError>;
    /// How many flushes were sent so far (reported in the final log line).
    fn flushes(&self) -> usize;
    /// Makes an `lvmdevices` edit of the host's devices file durable (see
    /// [`super::flush::sync_file_and_folder`]); `after` names the step.
    fn sync_devices_file(&mut self, file: &Path, after: &str) -> Result<(), ApplyError> {
        let took = super::flush::sync_file_and_folder(file).map_err(|source| {
            ApplyError::DevicesFileSync {
                file: file.to_path_buf(),
                after: after.to_owned(),
                source,
            }
        })?;
        tracing::debug!(
            file = %file.display(),
            after,
            duration_us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            "synced the host's devices file and its folder"
        );
        Ok(())
    }
    /// Erases the LVM label of a PV whose first commit tore (see
    /// [`super::restore::erase_label`]).
    fn erase_torn_label(&mut self, partition: &Path) -> Result<(), ApplyError> {
        match super::restore::erase_label(partition) {
            Ok(sector) => {
                tracing::debug!(device = %partition.display(), sector, "erased the LVM label");
                Ok(())
            }
            Err(e) => Err(ApplyError::EraseLabel(e.to_string())),
        }
    }
    /// The text of an intact metadata copy on the partition, checked against the
    /// planned checksum (see [`super::restore`]).
    fn read_metadata_copy(
        &mut self,
        partition: &Path,
        copy: &super::restore::CopyAt,
    ) -> Result<Vec<u8>, ApplyError> {
        super::restore::read_copy(partition, copy)
    }
    /// Removes device-mapper devices an interrupted LVM command left (not an LVM
    /// command: see [`super::leftovers`]).
    fn remove_stale_devices(
        &mut self,
        dm_names: &[String],
        context: &RemovalContext<'_>,
    ) -> Result<(), ApplyError> {
        super::leftovers::remove_stale_devices(dm_names, context).map_err(ApplyError::from)
    }
    /// Removes the active thin volumes' devices of a VG a reset wipes (not an LVM
    /// command: see [`super::deactivate`]).
    fn deactivate_thin_volumes(
        &mut self,
        volume_group: &crate::config::names::VgName,
        dm_names: &[String],
        context: &RemovalContext<'_>,
    ) -> Result<(), ApplyError> {
        super::deactivate::deactivate_thin_volumes(volume_group, dm_names, context)
            .map_err(ApplyError::from)
    }
    /// Removes `/dev/<vg>` when it holds only links an interrupted LVM command left.
    fn remove_stale_volume_group_path(&mut self, path: &Path) -> Result<(), ApplyError> {
        super::leftovers::remove_stale_volume_group_path(path).map_err(ApplyError::from)
    }
}

/// liblvm2cmd, in this process.
#[derive(Default)]
pub struct InProcessLvm {
    #[cfg(feature = "lvm2cmd")]
    context: Option<Lvm2Context>,
    commands_run: usize,
    flushes: usize,
}

impl LvmExecutor for InProcessLvm {
    fn run(&mut self, args: &[String]) -> Result<(), ApplyError> {
        let line = args.join(" ");
        if args
            .iter()
            .any(|arg| arg.is_empty() || arg.contains(char::is_whitespace))
        {
            return Err(ApplyError::UnsafeArgument(line));
        }
        self.commands_run += 1;
        tracing::debug!(command = %line, "running lvm command");
        self.run_line(&line)
    }

    fn commands_run(&self) -> usize {
        self.commands_run
    }

    fn flush_partition(&mut self, partition: &Path, after: &str) -> Result<(), ApplyError> {
        self.flushes += 1;
        let took = super::flush::flush_device(partition).map_err(|source| ApplyError::Flush {
            device: partition.to_path_buf(),
            after: after.to_owned(),
            source,
        })?;
        tracing::debug!(
            device = %partition.display(),
            after,
            duration_us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            "flushed the disk's write cache"
        );
        Ok(())
    }

    fn flushes(&self) -> usize {
        self.flushes
    }
}

impl InProcessLvm {
    #[cfg(feature = "lvm2cmd")]
    fn run_line(&mut self, line: &str) -> Result<(), ApplyError> {
        // A devices file edit gets a context of its own, opened before and closed
        // after it: liblvm2cmd keeps that command's devices file state in the
        // context, and the next `--devices` command in it rewrote the host's devices
        // file with only its own device, then aborted (seen in the VM, LVM 2.03.16).
        let isolated = line.starts_with("lvmdevices ");
        if isolated {
            self.context = None;
        }
        let result = self.run_in_context(line);
        if isolated {
            self.context = None;
        }
        result
    }

    #[cfg(feature = "lvm2cmd")]
    fn run_in_context(&mut self, line: &str) -> Result<(), ApplyError> {
        let context = match &mut self.context {
            Some(context) => context,
            empty => empty.insert(Lvm2Context::open().map_err(ApplyError::Init)?),
        };
        let report = context.run(line).map_err(ApplyError::Init)?;
        if report.status == RunStatus::Succeeded {
            return Ok(());
        }
        Err(ApplyError::CommandFailed {
            command: line.to_owned(),
            status: format!("{:?}", report.status),
            errors: if report.error_lines.is_empty() {
                "LVM logged no error; rerun with LOG_LEVEL=debug".to_owned()
            } else {
                report.error_lines.join("; ")
            },
        })
    }

    #[cfg(not(feature = "lvm2cmd"))]
    fn run_line(&mut self, _line: &str) -> Result<(), ApplyError> {
        Err(ApplyError::Unsupported)
    }
}
