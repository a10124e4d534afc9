//! Log setup: `tracing` to stderr, as text or JSON, at the level asked for (validated
//! at argument parsing, see [`LogLevel`]).
use super::args::{LogFormat, LogLevel};
use std::io::IsTerminal;

/// Installs the global subscriber.
pub fn init(level: LogLevel, format: LogFormat) {
    let builder = tracing_subscriber::fmt()
        .with_max_level(level.filter())
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    // Only fails when a subscriber is already installed (tests): keep that one.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
