//! `cargo xtask demo`: the tool's job on a built-in default. Boots a throwaway VM
//! (Debian's cloud kernel under qemu) with a 2 GiB virtual disk whose GPT partition
//! is labeled `linstor-storage` and a second, unlabeled disk, then runs the tool in
//! it — devices, a dry run, the provisioning, status, and a rerun that finds
//! nothing to do — and prints what it printed.
use std::path::PathBuf;
use std::time::Duration;
use vmtest::{BootOptions, DiskSpec, TestBed};

const LABEL: &str = "linstor-storage";
const STEPS: [&str; 5] = ["devices", "dry-run", "provision", "status", "rerun"];

fn build_binary() -> Result<PathBuf, String> {
    crate::packages::run(crate::packages::cargo().args([
        "build",
        "--bin",
        "linstor-provision-disk",
    ]))?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    Ok(target.join("debug").join("linstor-provision-disk"))
}

pub fn run(_args: &[String]) -> Result<(), String> {
    let binary = build_binary()?;
    let bed = TestBed::new(vec![
        DiskSpec::new("storage", 2048).partition(LABEL, None),
        DiskSpec::new("bystander", 512),
    ])
    .map_err(|e| e.to_string())?
    .with_binary(&binary);
    let options = BootOptions {
        timeout: Duration::from_secs(300),
        ..BootOptions::default()
    }
    .with_udevd();
    let provision = format!(
        "linstor-provision-disk --partition-label {LABEL} --volume-group linstor-vg \
         --pool linstor-pool --satellite-id demo-node --on-failure exit"
    );
    let script = format!(
        "step devices linstor-provision-disk devices\n\
         step dry-run {provision} --dry-run\n\
         step provision {provision}\n\
         step status linstor-provision-disk status --partition-label {LABEL} \
         --volume-group linstor-vg --pool linstor-pool\n\
         step rerun {provision}\n"
    );
    eprintln!("xtask: booting the demo VM (TCG; about a minute)…");
    let run = bed.boot(&options, &script).map_err(|e| e.to_string())?;
    let mut failed = Vec::new();
    for name in STEPS {
        let step = run.step(name);
        println!("### {name}   (exit {})", step.exit_code);
        if step.exit_code != 0 {
            failed.push(name);
        }
        print!("{}", step.stdout);
        if !step.stderr.is_empty() {
            print!("{}", step.stderr);
        }
        println!();
    }
    if failed.is_empty() {
        println!("demo: the partition was provisioned, and the rerun found nothing to do");
        Ok(())
    } else {
        Err(format!("demo steps failed: {failed:?}"))
    }
}
