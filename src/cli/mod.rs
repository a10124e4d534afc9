//! Command line: arguments, logging, and the subcommands' output.
pub mod args;
mod devices;
mod logging;
mod metadata;
mod provision;
mod release;
mod render;
mod status;
mod termination_log;
mod version;

use args::{Cli, Command};
use clap::{CommandFactory, FromArgMatches};
use std::process::ExitCode;

/// Exit code for bad input (invalid flags, names or IDs): nothing was touched.
pub const EXIT_USAGE: u8 = 2;

pub fn main() -> ExitCode {
    let mut timer = crate::observe::phase_timer::PhaseTimer::start("start");
    crate::ffi::allocator::protect_allocator_across_fork();
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if release::invoked_as_rm(&argv) {
        return release::run_as_rm(&argv);
    }
    let argv = args::normalize_invocation(argv);
    let cli = parse(argv);
    timer.lap("parse_args");
    logging::init(cli.global.log_level, cli.global.log_format);
    timer.lap("logging");
    let backend = cli.global.discovery.backend();
    let outcome = match cli.command {
        Some(Command::Status(status_args)) => status::run(&status_args, backend),
        Some(Command::Devices(devices_args)) => devices::run(&devices_args, backend),
        Some(Command::Metadata(metadata_args)) => metadata::run(&metadata_args),
        Some(Command::Release(release_args)) => release::run(&release_args.hold_marker),
        None => provision::run(&cli.provision, backend, timer),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Usage(message)) => {
            tracing::error!("{message}");
            ExitCode::from(EXIT_USAGE)
        }
        Err(CliError::Failed(message)) => {
            tracing::error!("{message}");
            ExitCode::FAILURE
        }
        Err(CliError::Reported) => ExitCode::FAILURE,
    }
}

/// Clap's parse, with the library versions in `--version` (asked of the libraries
/// only when `--version` is on the command line; clap exits after printing it).
fn parse(argv: Vec<std::ffi::OsString>) -> Cli {
    let mut command = Cli::command();
    if argv.iter().skip(1).any(|arg| arg == "--version") {
        // Clap takes a 'static text; the process prints it and exits.
        let text: &'static str = Box::leak(version::long_version().into_boxed_str());
        command = command.long_version(text);
    }
    let matches = command.get_matches_from(argv);
    Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit())
}

/// How a subcommand failed: bad input (exit 2) or a failure while working (exit 1).
#[derive(Debug)]
pub enum CliError {
    Usage(String),
    Failed(String),
    /// Failed, and the reason was already logged.
    Reported,
}

impl CliError {
    pub fn failed(error: impl std::fmt::Display) -> Self {
        CliError::Failed(error.to_string())
    }
}
