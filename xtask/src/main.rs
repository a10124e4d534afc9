//! Project automation: `cargo xtask <command>`.
//!
//! - `deps`  installs the Debian packages the build and the VM tests need (as root);
//! - `test`  runs every check and test: fmt, clippy, unit tests, fuzz-style tests,
//!   and the VM tests (a VM that cannot start fails the run, it never skips);
//! - `demo`  boots a throwaway VM with a labeled virtual disk and runs the tool in it.
mod demo;
mod deps;

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("deps") => deps::install(),
        Some("test") => deps::install().and_then(|()| test(&args[1..])),
        Some("demo") => deps::install().and_then(|()| demo::run(&args[1..])),
        _ => {
            eprintln!(
                "usage: cargo xtask <deps|test|demo>\n\
                 \x20 deps   install the Debian packages needed to build and test (needs root)\n\
                 \x20 test   fmt + clippy + unit tests + VM tests (everything CI runs)\n\
                 \x20 demo   boot a throwaway VM with a disk labeled linstor-storage and run the tool"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a command, failing with its name when it does not succeed.
pub fn run(command: &mut Command) -> Result<(), String> {
    eprintln!("xtask: running {command:?}");
    let status = command
        .status()
        .map_err(|e| format!("cannot start {command:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{command:?} failed with {status}"))
    }
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn test(extra: &[String]) -> Result<(), String> {
    run(cargo().args(["fmt", "--all", "--check"]))?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    // One test thread per core at most: every VM test boots a TCG guest.
    run(cargo()
        .args(["test", "--workspace", "--all-targets"])
        .args(extra)
        .env("LINSTOR_PROVISION_DISK_REQUIRE_VM", "1"))?;
    Ok(())
}
