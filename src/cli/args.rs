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

Without a subcommand it provisions: all four of --partition-label, --pool,
--satellite-id and --volume-group (or PARTITION_LABEL, POOL, SATELLITE_ID,
VOLUME_GROUP) are required. On success it logs
`disk provisioning completed successfully` and exits 0. On failure it holds by
default: it logs the error, creates /tmp/.disk-provisioner-wait and retries once
that file is removed (--on-failure exit exits 1 instead). Bad names or IDs exit 2
before the disk is touched. --dry-run prints the plan and changes nothing.

Subcommands:
  status    show what is on the partition (PV, VG, thin pool, satellite ID, usage);
            --format openmetrics prints it for Prometheus
  devices   list every disk and partition with label, signature and LVM membership
  metadata  print the LVM metadata read natively off one device
  release   remove the hold marker, so that a run holding after a failure retries

Examples:
  export PARTITION_LABEL=linstor-storage VOLUME_GROUP=linstor-vg POOL=linstor-pool
  SATELLITE_ID=node-01 linstor-provision-disk --dry-run
  linstor-provision-disk status --partition-label linstor-storage
  linstor-provision-disk devices --json
  linstor-provision-disk status --partition-label linstor-storage --volume-group linstor-vg \\
      --pool linstor-pool --format openmetrics";

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

    #[command(flatten)]
    pub provision: ProvisionArgs,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Options every subcommand understands.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Log verbosity: error, warn (or warning), info, debug or trace, in any case;
    /// empty means info. Any other word is refused (exit 2).
    #[arg(
        long,
        env = "LOG_LEVEL",
        default_value = "info",
        value_parser = LogLevel::parse,
        global = true
    )]
    pub log_level: LogLevel,

    /// Log line format: `text` for people, `json` for log collectors.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    /// How partitions are discovered: libudev, or sysfs + the udev database
    /// (the only choice in builds without libudev).
    #[arg(long, env = "DISCOVERY", value_enum, default_value_t = Discovery::default(), global = true)]
    pub discovery: Discovery,
}

/// Provisioning (the default action, without a subcommand).
#[derive(Debug, Args)]
pub struct ProvisionArgs {
    /// GPT partition label of the storage partition (e.g. linstor-storage).
    #[arg(long, env = "PARTITION_LABEL", required = true)]
    pub partition_label: Option<String>,

    /// Name of the LVM thin pool to create and keep (e.g. linstor-pool).
    #[arg(long, env = "POOL", required = true)]
    pub pool: Option<String>,

    /// Stable ID of this satellite, usually the node name. When it differs from the
    /// one recorded on the volume group, the partition's LVM objects are reset.
    /// Any characters are allowed (spaces, quotes, `&`, non-ASCII, emoji) except
    /// leading or trailing whitespace or invisible characters (a byte-order mark, a
    /// zero-width space) and control characters anywhere (exit 2;
    /// a Secret made from a file keeps its trailing newline: trim it). A VG
    /// recorded under this ID plus such characters (by an earlier version or the
    /// seed tool) is the same node: its tag is replaced, nothing is reset.
    #[arg(long, env = "SATELLITE_ID", required = true)]
    pub satellite_id: Option<String>,

    /// Name of the LVM volume group to create and keep (e.g. linstor-vg).
    #[arg(long, env = "VOLUME_GROUP", required = true)]
    pub volume_group: Option<String>,

    /// Thin pool chunk size (64K..1G, a multiple of 64K). Unset: chosen for the
    /// pool's size as LVM's default policy does (64K, doubled while LVM's metadata
    /// estimate exceeds 128 MiB: 64K for 100 GiB, 512K for 1 TiB, 4M for 8 TiB).
    #[arg(long, env = "CHUNK_SIZE")]
    pub chunk_size: Option<String>,

    /// Zero newly provisioned thin pool blocks, so a new volume never reads a deleted
    /// volume's data (on by default; LINSTOR turns it on for any pool without it).
    /// `--zero false` (ZERO=false) turns it off for a new pool; an existing pool keeps
    /// what it has.
    #[arg(
        long,
        env = "ZERO",
        default_value_t = true,
        num_args = 0..=1,
        default_missing_value = "true",
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub zero: bool,

    /// Overwrite a foreign filesystem/LUKS/swap signature, or a VG that records no
    /// satellite ID under another name. Destroys that data.
    #[arg(long, env = "FORCE")]
    pub force: bool,

    /// Print the plan and change nothing.
    #[arg(long, env = "DRY_RUN")]
    pub dry_run: bool,

    /// Print the --dry-run plan as JSON.
    #[arg(long)]
    pub json: bool,

    /// On failure: `hold` (log, create the hold marker, wait until it is removed,
    /// retry — the seed tool's behaviour) or `exit` with a non-zero code.
    #[arg(long, env = "ON_FAILURE", value_enum, default_value_t = OnFailure::Hold)]
    pub on_failure: OnFailure,

    /// The file whose removal releases a hold.
    #[arg(
        long,
        env = "HOLD_MARKER",
        default_value = "/tmp/.disk-provisioner-wait"
    )]
    pub hold_marker: std::path::PathBuf,

    /// Kubernetes termination message file; a one-line reason is written there on
    /// failure when it exists.
    #[arg(long, env = "TERMINATION_LOG", default_value = "/dev/termination-log")]
    pub termination_log: std::path::PathBuf,

    /// Write Prometheus metrics to this file when the run ends (success, refusal or
    /// error, and when it starts holding): the pool's and the VG's figures as
    /// `status --format openmetrics` prints them, plus the run's outcome, exit code,
    /// duration and number of LVM commands. For node_exporter's textfile collector
    /// (name it `*.prom` in the collector's folder, e.g.
    /// /var/lib/node_exporter/textfile_collector/linstor-provision-disk.prom). Written
    /// atomically (temporary file in the same folder, fsync, rename); a failure to
    /// write it is logged and does not fail the run. Empty: no file. --dry-run
    /// writes none.
    #[arg(long, env = "METRICS_FILE", value_name = "PATH")]
    pub metrics_file: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnFailure {
    Hold,
    Exit,
}

/// How much is logged. Unknown words are refused at argument parsing: a filter
/// built from one (tracing's target syntax) would silence every line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    /// The level `word` names, in any case; `warning` is warn, and an empty value
    /// (`LOG_LEVEL=` from a template with no value) the default, info.
    pub fn parse(word: &str) -> Result<LogLevel, String> {
        match word.to_ascii_lowercase().as_str() {
            "error" => Ok(LogLevel::Error),
            "warn" | "warning" => Ok(LogLevel::Warn),
            "info" | "" => Ok(LogLevel::Info),
            "debug" => Ok(LogLevel::Debug),
            "trace" => Ok(LogLevel::Trace),
            _ => Err(
                "unknown log level; valid values: error, warn, info, debug, trace (any case; warning = warn)"
                    .to_owned(),
            ),
        }
    }

    pub fn filter(self) -> tracing::level_filters::LevelFilter {
        use tracing::level_filters::LevelFilter;
        match self {
            LogLevel::Error => LevelFilter::ERROR,
            LogLevel::Warn => LevelFilter::WARN,
            LogLevel::Info => LevelFilter::INFO,
            LogLevel::Debug => LevelFilter::DEBUG,
            LogLevel::Trace => LevelFilter::TRACE,
        }
    }
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
    /// Release a hold: remove the hold marker, so that a run holding after a failure
    /// retries. In the image, `rm /tmp/.disk-provisioner-wait` does the same (the
    /// image has no shell; its `rm` is this binary and removes only the marker).
    Release(ReleaseArgs),
}

/// `release`: ends a hold (`--on-failure hold`) by removing its marker.
#[derive(Debug, Args)]
pub struct ReleaseArgs {
    /// The hold marker the holding run waits on.
    #[arg(
        long,
        env = "HOLD_MARKER",
        default_value = "/tmp/.disk-provisioner-wait"
    )]
    pub hold_marker: std::path::PathBuf,
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

    /// Print JSON instead of a table (the same as --format json).
    #[arg(long)]
    pub json: bool,

    /// Output format: `text` (a table), `json`, or `openmetrics`: Prometheus text for
    /// node_exporter's textfile collector (pool data and metadata, VG metadata area,
    /// free extents, the satellite ID as an info metric; ends with `# EOF`).
    #[arg(long, value_enum, conflicts_with = "json")]
    pub format: Option<StatusFormat>,
}

/// What `status` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusFormat {
    Text,
    Json,
    Openmetrics,
}

impl StatusArgs {
    /// `--format`, or `json` for `--json`; a table by default.
    pub fn output_format(&self) -> StatusFormat {
        match (self.format, self.json) {
            (Some(format), _) => format,
            (None, true) => StatusFormat::Json,
            (None, false) => StatusFormat::Text,
        }
    }
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

    fn log_level(args: &[&str]) -> Result<LogLevel, clap::Error> {
        let mut argv = vec!["linstor-provision-disk"];
        argv.extend(args);
        argv.push("status");
        argv.extend(["--partition-label", "x"]);
        Cli::try_parse_from(argv).map(|cli| cli.global.log_level)
    }

    #[test]
    fn log_levels_are_the_five_words_in_any_case_and_warning() {
        for (word, level) in [
            ("error", LogLevel::Error),
            ("warn", LogLevel::Warn),
            ("warning", LogLevel::Warn),
            ("WARNING", LogLevel::Warn),
            ("info", LogLevel::Info),
            ("Debug", LogLevel::Debug),
            ("DEBUG", LogLevel::Debug),
            ("trace", LogLevel::Trace),
        ] {
            assert_eq!(
                log_level(&["--log-level", word]).ok(),
                Some(level),
                "{word}"
            );
        }
        assert_eq!(log_level(&[]).ok(), Some(LogLevel::Info));
        assert_eq!(log_level(&["--log-level", ""]).ok(), Some(LogLevel::Info));
    }

    #[test]
    fn an_unknown_log_level_is_a_usage_error_listing_the_levels() {
        for word in ["verbose", "linstor_provision_disk=debug", "5", "info,debug"] {
            match log_level(&["--log-level", word]) {
                Ok(level) => panic!("{word:?} accepted as {level:?}"),
                Err(e) => {
                    assert_eq!(e.exit_code(), 2, "{word:?}");
                    let text = e.to_string();
                    assert!(
                        text.contains("error, warn, info, debug, trace") && text.contains(word),
                        "{word:?}: {text}"
                    );
                }
            }
        }
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
