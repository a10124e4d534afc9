use std::process::ExitCode;

fn main() -> ExitCode {
    linstor_provision_disk::cli::main()
}
