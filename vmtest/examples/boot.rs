//! Boots the test bed once and prints the console and the steps:
//! `cargo run -p vmtest --example boot -- [--udevd] 'step x uname -a'`
use std::time::Instant;

use vmtest::{BootOptions, DiskSpec, TestBed};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut opts = BootOptions::default();
    let mut script = String::from("step uname uname -a");
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--udevd" => opts.udevd = true,
            q if q.starts_with("--qemu=") => opts
                .qemu_args
                .extend(q["--qemu=".len()..].split(' ').map(String::from)),
            m if m.starts_with("--mem=") => opts.memory_mib = m[6..].parse()?,
            "--debug" => opts.kernel_args = "loglevel=7 printk.time=1".into(),
            _ => script = arg,
        }
    }
    let t = Instant::now();
    let bed = TestBed::new(vec![
        DiskSpec::new("disk0", 1024).partition("linstor-storage", None)
    ])?;
    let run = bed.boot(&opts, &script)?;
    println!("{}", run.console);
    for s in &run.steps {
        println!(
            "step {:?} exit {}\n{}{}",
            s.name, s.exit_code, s.stdout, s.stderr
        );
    }
    println!(
        "script exit {}; guest uptime at script start {:?}; qemu wall time {:?}; total {:?}",
        run.script_exit_code,
        run.guest_uptime_at_script,
        run.elapsed,
        t.elapsed()
    );
    Ok(())
}
