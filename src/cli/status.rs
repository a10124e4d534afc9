//! `status`
use super::args::{Discovery, StatusArgs};
use super::CliError;
pub fn run(_args: &StatusArgs, _discovery: Discovery) -> Result<(), CliError> {
    Err(CliError::Failed("status: not wired yet".into()))
}
