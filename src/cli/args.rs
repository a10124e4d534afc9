//! Flags and environment variables. The seed tool's names (PARTITION_LABEL, POOL,
//! SATELLITE_ID, VOLUME_GROUP, LOG_LEVEL) are a contract a pod spec relies on.
use clap::{Args, Parser, Subcommand, ValueEnum};

const ABOUT: &str = "Keeps one GPT partition, found by its label, provisioned as an LVM \
physical volume, volume group and thin pool for a LINSTOR satellite.";

const LONG_ABOUT: &str = "\
Keeps one GPT partition, found by its label, provisioned as an LVM physical volume,
volume group and thin pool for a LINSTOR satellite. Runs as a privileged init
container before the satellite (or as a oneshot service on a host).

The satellite ID the storage was made for is recorded on the volume group. When it
differs from --satellite-id (the cluster was reset), the LVM objects on THIS
partition only are removed and fresh storage is provisioned.

Subcommands:
  status    show what is on the partition (PV, VG, thin pool, satellite ID, usage)
  devices   list every disk and partition with label, signature and LVM membership
  metadata  print the LVM metadata read natively off one device

Examples:
  linstor-provision-disk status --partition-label linstor-storage
  linstor-provision-disk devices --json";

/// `linstor-provision-disk`: the whole command line.
#[derive(Debug, Parser)]
#[command(name = "linstor-provision-disk", version, about = ABOUT, long_about = LONG_ABOUT)]
#[command(
    subcommand_negates_reqs = true,
    args_conflicts_with_subcommands = false
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Options every subcommand understands.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Log verbosity: error, warn, info, debug or trace.
    #[arg(long, env = "LOG_LEVEL", default_value = "info", global = true)]
    pub log_level: String,

    /// Log line format: `text` for people, `json` for log collectors.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    /// How partitions are discovered: libudev, or sysfs + the udev database
    /// (the only choice in builds without libudev).
    #[arg(long, env = "DISCOVERY", value_enum, default_value_t = Discovery::default(), global = true)]
    pub discovery: Discovery,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Discovery {
    /// libudev (kernel PARTNAME and udev's ID_PART_ENTRY_NAME).
    #[cfg(feature = "udev")]
    Udev,
    /// /sys/class/block uevents plus /run/udev/data when present.
    Sysfs,
}

impl Discovery {
    pub fn backend(self) -> crate::observe::partition::DiscoveryBackend {
        use crate::observe::partition::DiscoveryBackend;
        match self {
            #[cfg(feature = "udev")]
            Discovery::Udev => DiscoveryBackend::Udev,
            Discovery::Sysfs => DiscoveryBackend::Sysfs,
        }
    }
}

impl Default for Discovery {
    fn default() -> Self {
        #[cfg(feature = "udev")]
        return Discovery::Udev;
        #[cfg(not(feature = "udev"))]
        return Discovery::Sysfs;
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the partition, its PV/VG/thin pool, the recorded satellite ID and pool usage.
    Status(StatusArgs),
    /// List every disk and partition: devnode, maj:min, size, GPT label and uuid,
    /// signature, PV/VG membership and device-mapper holders.
    Devices(DevicesArgs),
    /// Print the LVM label, PV header and VG metadata read natively off one device
    /// (no lvm process, nothing activated). For debugging and for comparing with
    /// `lvm fullreport`.
    Metadata(MetadataArgs),
}

/// `metadata`: raw view of LVM's on-disk structures on one device.
#[derive(Debug, Args)]
pub struct MetadataArgs {
    /// Block device (or image file) to read, e.g. /dev/sdb1.
    pub device: std::path::PathBuf,

    /// Print JSON (`null` when the device has no LVM label) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `status`: read-only report on the labeled partition.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// GPT partition label of the storage partition (e.g. linstor-storage).
    #[arg(long, env = "PARTITION_LABEL")]
    pub partition_label: String,

    /// Volume group expected on the partition (e.g. linstor-vg); reported as missing when absent.
    #[arg(long, env = "VOLUME_GROUP")]
    pub volume_group: Option<String>,

    /// Thin pool expected in the volume group (e.g. linstor-pool).
    #[arg(long, env = "POOL")]
    pub pool: Option<String>,

    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `devices`: read-only enumeration for debugging.
#[derive(Debug, Args)]
pub struct DevicesArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Drops the seed's `homelab-helper linstor-provision-disk` prefix, so a pod spec
/// written for the seed (`command: [homelab-helper, linstor-provision-disk]`) works.
pub fn normalize_invocation(mut argv: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let program_is_seed = argv
        .first()
        .and_then(|arg0| std::path::Path::new(arg0).file_name())
        .is_some_and(|name| name == "homelab-helper");
    if program_is_seed
        && argv
            .get(1)
            .is_some_and(|arg| arg == "linstor-provision-disk")
    {
        argv.remove(0);
    }
    argv
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<std::ffi::OsString> {
        args.iter().map(Into::into).collect()
    }

    #[test]
    fn seed_invocation_is_an_alias() {
        assert_eq!(
            normalize_invocation(os(&[
                "/usr/bin/homelab-helper",
                "linstor-provision-disk",
                "status"
            ])),
            os(&["linstor-provision-disk", "status"])
        );
        assert_eq!(
            normalize_invocation(os(&["linstor-provision-disk", "status"])),
            os(&["linstor-provision-disk", "status"])
        );
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
