//! `metadata DEVICE`: LVM's on-disk structures as this tool reads them.
use super::args::MetadataArgs;
use super::CliError;
use crate::observe::lvm;

pub fn run(args: &MetadataArgs) -> Result<(), CliError> {
    let pv = lvm::read_pv_on_disk(&args.device).map_err(|e| {
        CliError::Failed(format!(
            "reading LVM metadata from {}: {e}",
            args.device.display()
        ))
    })?;
    if args.json {
        let json = serde_json::to_string_pretty(&pv).map_err(CliError::failed)?;
        println!("{json}");
        return Ok(());
    }
    let Some(pv) = pv else {
        println!("{}: no LVM label", args.device.display());
        return Ok(());
    };
    println!("device        {}", args.device.display());
    println!("pv uuid       {}", pv.pv_uuid);
    println!(
        "device size   {} (as recorded in the PV header)",
        pv.device_size
    );
    match &pv.vg_metadata {
        None => println!("volume group  none (orphan PV)"),
        Some(vg) => {
            println!(
                "volume group  {} (uuid {}, seqno {})",
                vg.name, vg.id, vg.seqno
            );
            println!("extent size   {}", vg.extent_size.bytes());
            println!("tags          {}", vg.tags.join(", "));
            println!("pvs           {}", vg.physical_volumes.len());
            for lv in &vg.logical_volumes {
                let kinds: Vec<&str> = lv.segments.iter().map(|s| s.kind.type_name()).collect();
                let hidden = if lv.is_visible() { "" } else { " (hidden)" };
                println!(
                    "lv            {}{hidden}: {}, {}",
                    lv.name,
                    lv.extent_count(),
                    kinds.join("+")
                );
            }
        }
    }
    Ok(())
}
