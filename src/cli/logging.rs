//! Log setup: `tracing` to stderr, as text or JSON, at the level asked for.
use super::args::LogFormat;
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. An unknown level is reported and `info` used,
/// so a typo in LOG_LEVEL never stops provisioning.
pub fn init(level: &str, format: LogFormat) {
    let (filter, bad_level) = match EnvFilter::try_new(level) {
        Ok(filter) => (filter, None),
        Err(_) => (EnvFilter::new("info"), Some(level.to_owned())),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    if installed.is_ok() {
        if let Some(level) = bad_level {
            tracing::warn!(
                level,
                "unknown LOG_LEVEL, using info (expected error, warn, info, debug or trace)"
            );
        }
    }
}
