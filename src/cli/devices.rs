//! `devices`
use super::args::{DevicesArgs, Discovery};
use super::CliError;
pub fn run(_args: &DevicesArgs, _discovery: Discovery) -> Result<(), CliError> {
    Err(CliError::Failed("devices: not wired yet".into()))
}
