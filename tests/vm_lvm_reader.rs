//! The native LVM reader against LVM's own report, on real layouts in a real kernel:
//! blank partition, PV only, VG with tags, thin pool with several thin LVs (plus a
//! linear LV), a VG spanning two disks, and metadata rewritten 200+ times so the
//! circular metadata buffer wraps. For every device the test compares what
//! `linstor-provision-disk metadata DEV --json` read off the disk with what
//! `pvs`/`vgs`/`lvs --reportformat json` say.
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;
use vmtest::{BootOptions, DiskSpec, GuestRun, TestBed};

const BIN: &str = env!("CARGO_BIN_EXE_linstor-provision-disk");

/// (label, guest device) for every partition the test lays out.
const DEVICES: &[(&str, &str)] = &[
    ("blank", "/dev/vda1"),
    ("pv-only", "/dev/vda2"),
    ("vg-tags", "/dev/vda3"),
    ("vg-thin", "/dev/vda4"),
    ("vg-wrap", "/dev/vda5"),
    ("span-a", "/dev/vdb1"),
    ("span-b", "/dev/vdc1"),
];

const LAYOUT_SCRIPT: &str = r#"
step pv-only pvcreate /dev/vda2
step vg-tags vgcreate --addtag 'linstor-satellite-id=node&2001' --addtag zone:a/b vgtags /dev/vda3
step vg-thin vgcreate -s 1m vgthin /dev/vda4
step pool lvcreate --type thin-pool -L 64m --chunksize 512k --zero n -n linstor-pool vgthin
step thin1 lvcreate -V 1g -T vgthin/linstor-pool -n pvc-1
step thin2 lvcreate -V 2g -T vgthin/linstor-pool -n pvc-2
step thin3 lvcreate -V 10m -T vgthin/linstor-pool -n pvc-3 --addtag keep
step linear lvcreate -L 8m -n plain vgthin
step span vgcreate vgspan /dev/vdb1 /dev/vdc1
step span-lv lvcreate -l 100%FREE -n big vgspan
step wrap-pv pvcreate --metadatasize 32k --dataalignment 64k /dev/vda5
step wrap-vg vgcreate vgwrap /dev/vda5
# 220 metadata updates, fed to one lvm shell (one process instead of 220 boots of lvm).
i=0
: > /tmp/churn
while [ $i -lt 110 ]; do
  echo "vgchange -q --addtag churn-$i vgwrap" >> /tmp/churn
  echo "vgchange -q --deltag churn-$((i - 1)) vgwrap" >> /tmp/churn
  i=$((i + 1))
done
step churn sh -c 'lvm < /tmp/churn > /dev/null'
step wrap-lv lvcreate -L 4m -n after-wrap vgwrap
step pvs pvs --reportformat json --units b --nosuffix -o pv_name,pv_uuid,vg_name,vg_uuid,dev_size,pe_start
step vgs vgs --reportformat json --units b --nosuffix -o vg_name,vg_uuid,vg_seqno,vg_extent_size,vg_tags,pv_count,lv_count
step lvs lvs -a --reportformat json --units b --nosuffix -o vg_name,lv_name,lv_uuid,segtype,pool_lv,data_lv,metadata_lv,lv_tags
step mda pvs --reportformat json --units b --nosuffix -o pv_name,pv_mda_size,pv_mda_free /dev/vda5
"#;

fn layout_bed() -> TestBed {
    let mut main_disk = DiskSpec::new("layouts", 1024);
    for (label, size) in [
        ("blank", 32),
        ("pv-only", 32),
        ("vg-tags", 32),
        ("vg-thin", 256),
        ("vg-wrap", 64),
    ] {
        main_disk = main_disk.partition(label, Some(size));
    }
    let disks = vec![
        main_disk,
        DiskSpec::new("span-a", 128).partition("span-a", None),
        DiskSpec::new("span-b", 128).partition("span-b", None),
    ];
    match TestBed::new(disks) {
        Ok(bed) => bed.with_binary(Path::new(BIN)),
        Err(e) => panic!("could not set up the VM test bed: {e}"),
    }
}

fn parse_json(run: &GuestRun, step: &str) -> Value {
    let out = &run.expect_success(step).stdout;
    serde_json::from_str(out)
        .unwrap_or_else(|e| panic!("step {step} printed invalid JSON ({e}):\n{out}"))
}

/// Rows of an LVM JSON report: `{"report":[{"pv":[...]}]}` → the array under `kind`.
fn report_rows(report: &Value, kind: &str) -> Vec<Value> {
    report["report"][0][kind]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

fn number(value: &Value) -> u64 {
    text(value)
        .parse()
        .unwrap_or_else(|_| panic!("not a number in LVM's report: {value}"))
}

/// LVM writes hidden LV names in brackets: `[pool_tdata]`.
fn bare_lv_name(name: &str) -> String {
    name.trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned()
}

fn sorted_tags(joined: &str) -> BTreeSet<String> {
    joined
        .split(',')
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Our segment type name, spelled as `lvs -o segtype` spells it.
fn our_segtype(segment: &Value) -> String {
    let kind = &segment["kind"];
    match kind["type"].as_str().unwrap_or_default() {
        "striped" if kind["stripes"].as_array().map_or(0, Vec::len) == 1 => "linear".into(),
        "other" => text(&kind["segment_type"]),
        other => other.into(),
    }
}

fn compare_device(
    label: &str,
    device: &str,
    ours: &Value,
    pvs: &[Value],
    vgs: &[Value],
    lvs: &[Value],
) {
    let pv_row = pvs.iter().find(|row| text(&row["pv_name"]) == device);
    let Some(pv_row) = pv_row else {
        assert!(
            ours.is_null(),
            "{label}: LVM sees no PV on {device}, but we read {ours}"
        );
        return;
    };
    assert!(
        !ours.is_null(),
        "{label}: LVM sees a PV on {device}, we read none"
    );
    assert_eq!(
        text(&ours["pv_uuid"]),
        text(&pv_row["pv_uuid"]),
        "{label}: PV uuid"
    );
    assert_eq!(
        ours["device_size"].as_u64(),
        Some(number(&pv_row["dev_size"])),
        "{label}: device size"
    );
    let vg_name = text(&pv_row["vg_name"]);
    let ours_vg = &ours["metadata"];
    if vg_name.is_empty() {
        assert!(
            ours_vg.is_null(),
            "{label}: orphan PV, but we read a VG: {ours_vg}"
        );
        return;
    }
    let vg_row = vgs
        .iter()
        .find(|row| text(&row["vg_name"]) == vg_name)
        .unwrap_or_else(|| panic!("{label}: vgs lacks {vg_name}"));
    assert_eq!(text(&ours_vg["name"]), vg_name, "{label}: VG name");
    assert_eq!(
        text(&ours_vg["id"]),
        text(&vg_row["vg_uuid"]),
        "{label}: VG uuid"
    );
    assert_eq!(
        ours_vg["seqno"].as_u64(),
        Some(number(&vg_row["vg_seqno"])),
        "{label}: seqno"
    );
    assert_eq!(
        ours_vg["extent_size_sectors"].as_u64().map(|s| s * 512),
        Some(number(&vg_row["vg_extent_size"])),
        "{label}: extent size"
    );
    let our_tags: BTreeSet<String> = ours_vg["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .map(text)
        .collect();
    assert_eq!(
        our_tags,
        sorted_tags(&text(&vg_row["vg_tags"])),
        "{label}: VG tags"
    );

    let lvm_pv_uuids: BTreeSet<String> = pvs
        .iter()
        .filter(|row| text(&row["vg_name"]) == vg_name)
        .map(|row| text(&row["pv_uuid"]))
        .collect();
    let our_pv_uuids: BTreeSet<String> = ours_vg["physical_volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|pv| text(&pv["id"]))
        .collect();
    assert_eq!(our_pv_uuids, lvm_pv_uuids, "{label}: PVs of the VG");

    // name → (uuid, segment types, pool, data, metadata, tags) on both sides.
    type LvView = (
        String,
        Vec<String>,
        String,
        String,
        String,
        BTreeSet<String>,
    );
    let mut lvm_lvs: BTreeMap<String, LvView> = BTreeMap::new();
    for row in lvs.iter().filter(|row| text(&row["vg_name"]) == vg_name) {
        let entry = lvm_lvs
            .entry(bare_lv_name(&text(&row["lv_name"])))
            .or_insert_with(|| {
                (
                    text(&row["lv_uuid"]),
                    Vec::new(),
                    text(&row["pool_lv"]),
                    bare_lv_name(&text(&row["data_lv"])),
                    bare_lv_name(&text(&row["metadata_lv"])),
                    sorted_tags(&text(&row["lv_tags"])),
                )
            });
        entry.1.push(text(&row["segtype"]));
    }
    let mut our_lvs: BTreeMap<String, LvView> = BTreeMap::new();
    for lv in ours_vg["logical_volumes"].as_array().into_iter().flatten() {
        let segments = lv["segments"].as_array().cloned().unwrap_or_default();
        let first = segments
            .first()
            .map(|s| s["kind"].clone())
            .unwrap_or(Value::Null);
        our_lvs.insert(
            text(&lv["name"]),
            (
                text(&lv["id"]),
                segments.iter().map(our_segtype).collect(),
                text(&first["thin_pool"]),
                text(&first["data_lv"]),
                text(&first["metadata_lv"]),
                lv["tags"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(text)
                    .collect(),
            ),
        );
    }
    assert_eq!(our_lvs, lvm_lvs, "{label}: logical volumes");
}

#[test]
fn native_reader_agrees_with_lvm_on_real_layouts() {
    let bed = layout_bed();
    let mut script = String::from(LAYOUT_SCRIPT);
    for (label, device) in DEVICES {
        script.push_str(&format!(
            "step read-{label} linstor-provision-disk metadata {device} --json\n"
        ));
    }
    let options = BootOptions {
        timeout: Duration::from_secs(600),
        ..BootOptions::default()
    };
    let run = bed
        .boot(&options, &script)
        .unwrap_or_else(|e| panic!("VM boot failed: {e}"));
    for step in [
        "pv-only", "vg-tags", "vg-thin", "pool", "thin1", "thin2", "thin3", "linear", "span",
        "span-lv",
    ] {
        run.expect_success(step);
    }
    for step in ["wrap-pv", "wrap-vg", "wrap-lv"] {
        run.expect_success(step);
    }
    let pvs = report_rows(&parse_json(&run, "pvs"), "pv");
    let vgs = report_rows(&parse_json(&run, "vgs"), "vg");
    let lvs = report_rows(&parse_json(&run, "lvs"), "lv");
    for (label, device) in DEVICES {
        let ours = parse_json(&run, &format!("read-{label}"));
        compare_device(label, device, &ours, &pvs, &vgs, &lvs);
    }

    // The wrap layout must really have wrapped: far more metadata was written than
    // the 64 KiB area holds, and the reader followed it (seqno checked above).
    let wrap_vg = vgs
        .iter()
        .find(|row| text(&row["vg_name"]) == "vgwrap")
        .cloned()
        .unwrap_or_default();
    let seqno = number(&wrap_vg["vg_seqno"]);
    assert!(
        seqno > 200,
        "vgwrap seqno is {seqno}; the churn loop did not run 200+ updates"
    );
    let mda = report_rows(&parse_json(&run, "mda"), "pv");
    let mda_size = number(&mda[0]["pv_mda_size"]);
    assert!(
        mda_size <= 128 * 1024,
        "metadata area is {mda_size} bytes; expected a small one so it wraps"
    );

    // The satellite-ID tag with an escaped byte decodes from the native read.
    let tags_read = parse_json(&run, "read-vg-tags");
    assert!(
        tags_read["metadata"]["tags"]
            .as_array()
            .is_some_and(|tags| tags.iter().any(|t| t == "linstor-satellite-id=node&2001")),
        "vg-tags: {tags_read}"
    );
}
