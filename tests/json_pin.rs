//! Pins the JSON that `metadata`, `status` and `--dry-run --json` print, the plan
//! lines and the LVM command lines, for representative states: a refactor of the
//! types behind them must leave every byte as it is. The expected texts are in
//! tests/fixtures/json-pin/; `JSON_PIN_WRITE=1 cargo test --test json_pin` rewrites
//! them (only ever on purpose, when the output is meant to change).
use std::io::Cursor;
use std::path::{Path, PathBuf};

use linstor_provision_disk::apply::command::command_line;
use linstor_provision_disk::apply::thin_check::ThinCheck;
use linstor_provision_disk::config::{ProvisionConfig, ProvisionInputs};
use linstor_provision_disk::observe::live::{parse_lvm_dm_uuid, ActiveLv};
use linstor_provision_disk::observe::lvm::{parse_pv_on_disk, PvOnDisk};
use linstor_provision_disk::observe::snapshot::{pv_facts, OtherDevices};
use linstor_provision_disk::observe::state::{
    LvKind, ObservedPartition, PartitionFacts, SatelliteIdReading,
};
use linstor_provision_disk::plan::{plan, Plan};

mod lvm_images;
use lvm_images::load_image;

const MIB: u64 = 1 << 20;

fn check(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/json-pin")
        .join(name);
    if std::env::var_os("JSON_PIN_WRITE").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        expected == actual,
        "{name} changed:\n--- expected\n{expected}\n--- actual\n{actual}"
    );
}

fn read(name: &str) -> PvOnDisk {
    parse_pv_on_disk(Cursor::new(load_image(name)))
        .unwrap()
        .unwrap()
}

fn config(volume_group: &str, satellite_id: &str) -> ProvisionConfig {
    ProvisionConfig::from_inputs_with_dev(
        ProvisionInputs {
            partition_label: "linstor-storage".into(),
            volume_group: volume_group.into(),
            pool: "linstor-pool".into(),
            satellite_id: satellite_id.into(),
            chunk_size: Some("512K".into()),
            zero_new_blocks: false,
            force: true,
        },
        Path::new("/nonexistent-dev-for-json-pin"),
    )
    .unwrap()
}

/// The dm devices LVM makes for `pv`'s VG: every LV by its own uuid, the pool's
/// `-tpool` layer and its `-tdata`/`-tmeta` parts active on their own.
fn active_devices(pv: &PvOnDisk, pool_live: bool) -> Vec<ActiveLv> {
    let vg = pv.vg_metadata.as_ref().unwrap();
    let mut out = Vec::new();
    for (minor, lv) in vg.logical_volumes.iter().enumerate() {
        let base = format!("LVM-{}{}", vg.id.undashed(), lv.id.undashed());
        let layers: &[&str] = match lv.name.as_str() {
            "linstor-pool" => &["-tpool"],
            n if n.ends_with("_tdata") || n.ends_with("_tmeta") => &[""],
            _ => &[],
        };
        for layer in layers {
            let parsed = parse_lvm_dm_uuid(&format!("{base}{layer}")).unwrap();
            out.push(ActiveLv {
                dm_name: format!("{}-{}{layer}", vg.name, lv.name).replace("--", "-"),
                major: 253,
                minor: minor as u32,
                open_count: 0,
                vg_uuid: parsed.vg_uuid,
                lv_uuid: parsed.lv_uuid,
                layer: parsed.layer,
                serving: false,
                live_table: pool_live,
            });
        }
    }
    out
}

fn observed_from(pv: &PvOnDisk, active: &[ActiveLv], size_bytes: u64) -> ObservedPartition {
    let devnode = PathBuf::from("/dev/vda1");
    let facts = pv_facts(
        &devnode,
        pv,
        &Ok(active.to_vec()),
        OtherDevices::default(),
        None,
    )
    .unwrap();
    ObservedPartition {
        partition: PartitionFacts {
            devnode,
            major: 254,
            minor: 1,
            label: "linstor-storage".into(),
            size_bytes: linstor_provision_disk::units::Bytes::from(size_bytes),
        },
        foreign_signature: None,
        physical_volume: Some(facts),
        wanted_vg_name_elsewhere: Vec::new(),
        leftovers: Default::default(),
        host_lvm: Default::default(),
        preflight: Default::default(),
        pool_metadata_usage: None,
    }
}

fn describe_plan(plan: &Plan) -> String {
    let mut out = serde_json::to_string_pretty(plan).unwrap();
    out.push('\n');
    for action in &plan.actions {
        out.push_str(&format!("{action}\n"));
        for thin_check in [ThinCheck::Installed, ThinCheck::Missing] {
            if let Some(line) = command_line(action, Path::new("/dev/vda1"), &thin_check) {
                out.push_str(&format!("  {}\n", line.join(" ")));
            }
        }
    }
    out
}

#[test]
fn metadata_json_is_pinned() {
    for name in ["vg-thin", "vg-tags", "two-mdas"] {
        let pv = read(name);
        check(
            &format!("metadata-{name}.json"),
            &serde_json::to_string_pretty(&pv).unwrap(),
        );
    }
}

#[test]
fn observed_state_and_devices_json_is_pinned() {
    let pv = read("vg-thin");
    let active = active_devices(&pv, true);
    check(
        "active-vg-thin.json",
        &serde_json::to_string_pretty(&active).unwrap(),
    );
    let observed = observed_from(&pv, &active, 128 * MIB);
    check(
        "observed-vg-thin.json",
        &serde_json::to_string_pretty(&observed).unwrap(),
    );
    let unloaded = observed_from(&pv, &active_devices(&pv, false), 128 * MIB);
    check(
        "observed-vg-thin-unloaded.json",
        &serde_json::to_string_pretty(&unloaded).unwrap(),
    );
}

#[test]
fn plans_are_pinned() {
    let pv = read("vg-thin");
    let vg_name = pv.vg_metadata.as_ref().unwrap().name.clone();
    let mut out = String::new();
    // A VG of another satellite: reset, with the suspended pool refreshed first.
    let mut suspended = observed_from(&pv, &active_devices(&pv, true), 128 * MIB);
    if let Some(vg) = suspended
        .physical_volume
        .as_mut()
        .and_then(|p| p.volume_group.as_mut())
    {
        vg.satellite_id = SatelliteIdReading::Tag("node-00".into());
        for lv in &mut vg.logical_volumes {
            if let LvKind::ThinPool {
                unheld_pool_device, ..
            } = &mut lv.kind
            {
                *unheld_pool_device = None;
            }
        }
    }
    out.push_str(&describe_plan(
        &plan(&suspended, &config("linstor-vg", "node-01")).unwrap(),
    ));
    // Ours, grown, its pool idle with a never-loaded pool device and stranded parts.
    let mut idle = observed_from(&pv, &active_devices(&pv, false), 512 * MIB);
    if let Some(vg) = idle
        .physical_volume
        .as_mut()
        .and_then(|p| p.volume_group.as_mut())
    {
        vg.satellite_id = SatelliteIdReading::Tag("node-01".into());
        for lv in &mut vg.logical_volumes {
            if let LvKind::ThinPool {
                pool_device_present,
                ..
            } = &mut lv.kind
            {
                *pool_device_present = false;
            }
        }
    }
    out.push_str(&describe_plan(
        &plan(&idle, &config(&vg_name, "node-01")).unwrap(),
    ));
    // The seed tool's layout whose metadata LV is inactive.
    let mut seed = idle.clone();
    if let Some(vg) = seed
        .physical_volume
        .as_mut()
        .and_then(|p| p.volume_group.as_mut())
    {
        vg.satellite_id = SatelliteIdReading::SeedLvInactive;
    }
    out.push_str(&describe_plan(
        &plan(&seed, &config(&vg_name, "node-01")).unwrap(),
    ));
    // Adopted from the seed tool: tagged now, the unheld pool device removed first.
    let mut adopted = observed_from(&pv, &active_devices(&pv, true), 128 * MIB);
    if let Some(vg) = adopted
        .physical_volume
        .as_mut()
        .and_then(|p| p.volume_group.as_mut())
    {
        vg.satellite_id = SatelliteIdReading::SeedFile("node-01".into());
    }
    out.push_str(&describe_plan(
        &plan(&adopted, &config(&vg_name, "node-01")).unwrap(),
    ));
    // A blank partition with a foreign signature (--force).
    let mut blank = suspended.clone();
    blank.physical_volume = None;
    blank.foreign_signature = Some("ext4".into());
    out.push_str(&describe_plan(
        &plan(&blank, &config("linstor-vg", "node-01")).unwrap(),
    ));
    check("plans.txt", &out);
    let config_json = serde_json::to_string_pretty(&config("linstor-vg", "node-01")).unwrap();
    check("config.json", &config_json);
}
