//! The reader against fixtures made by real LVM, checked against LVM's own
//! JSON report of the same devices (see tests/fixtures/lvm/make-fixtures.sh).

use std::io::Cursor;
use std::path::PathBuf;

use serde_json::Value as Json;

use super::*;
use crate::units::{Bytes, Extents, Sectors};

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lvm")
}

/// Decodes a `.sparse` fixture into the image it was taken from.
pub(crate) fn load_image(name: &str) -> Vec<u8> {
    let raw = std::fs::read(fixture_dir().join(format!("{name}.sparse"))).unwrap();
    assert_eq!(&raw[..8], b"LVMSPRS1", "{name}: not a sparse fixture");
    let u64_at = |at: usize| u64::from_le_bytes(raw[at..at + 8].try_into().unwrap());
    let len = u64_at(8) as usize;
    let count = u64_at(16) as usize;
    let mut image = vec![0u8; len];
    for i in 0..count {
        let rec = 24 + i * 520;
        let sector = u64_at(rec) as usize;
        image[sector * 512..sector * 512 + 512].copy_from_slice(&raw[rec + 8..rec + 520]);
    }
    image
}

fn report(name: &str) -> Json {
    let text = std::fs::read_to_string(fixture_dir().join(format!("{name}.json"))).unwrap();
    let v: Json = serde_json::from_str(&text).unwrap();
    v["report"][0].clone()
}

fn read(name: &str) -> Option<PvOnDisk> {
    parse_pv_on_disk(Cursor::new(load_image(name))).unwrap()
}

fn s<'a>(j: &'a Json, k: &str) -> &'a str {
    j[k].as_str().unwrap_or_else(|| panic!("no {k} in {j}"))
}

fn n(j: &Json, k: &str) -> u64 {
    s(j, k)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{k} = {:?}", j[k]))
}

fn list(j: &Json, k: &str) -> Vec<String> {
    let v = s(j, k);
    if v.is_empty() {
        Vec::new()
    } else {
        v.split(',').map(str::to_owned).collect()
    }
}

/// Checks one PV against the report's row for it.
fn check_pv(pv: &PvOnDisk, rep: &Json) {
    let row = rep["pv"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| s(r, "pv_uuid") == pv.pv_uuid.dashed())
        .unwrap_or_else(|| panic!("LVM reports no PV {}", pv.pv_uuid));
    assert_eq!(pv.device_size, Bytes::from(n(row, "dev_size")));
    assert_eq!(pv.pe_start_bytes(), Some(Bytes::from(n(row, "pe_start"))));
    assert_eq!(pv.metadata_areas.len() as u64, n(row, "pv_mda_count"));
    let smallest_mda = pv.metadata_areas.iter().map(|a| a.size).min().unwrap_or(0);
    assert_eq!(smallest_mda, n(row, "pv_mda_size"));
    assert_eq!(u64::from(pv.extension_version), n(row, "pv_ext_vsn"));
    assert_eq!(pv.is_in_vg(), s(row, "pv_in_use") == "used");
    let ba_size = n(row, "pv_ba_size");
    if ba_size == 0 {
        assert!(pv.bootloader_areas.is_empty());
    } else {
        assert_eq!(
            pv.bootloader_areas,
            vec![Area {
                offset: n(row, "pv_ba_start"),
                size: ba_size
            }]
        );
    }
    if let Some(vg) = &pv.vg_metadata {
        let entry = pv.in_vg_metadata().expect("PV listed in its own VG");
        assert_eq!(entry.pe_count, Extents::new(n(row, "pv_pe_count")));
        assert_eq!(entry.pe_start.bytes(), Bytes::from(n(row, "pe_start")));
        assert_eq!(
            entry.dev_size_sectors.bytes(),
            Bytes::from(n(row, "dev_size"))
        );
        assert_eq!(entry.tags, list(row, "pv_tags"));
        assert_eq!(
            entry.status.contains(&"ALLOCATABLE".to_owned()),
            s(row, "pv_allocatable") == "allocatable"
        );
        assert!(vg.physical_volumes.iter().any(|p| p.id == pv.pv_uuid));
    }
}

/// Checks VG metadata against the report.
fn check_vg(vg: &VgMetadata, rep: &Json) {
    let row = &rep["vg"][0];
    assert_eq!(vg.name, s(row, "vg_name"));
    assert_eq!(vg.id.dashed(), s(row, "vg_uuid"));
    assert_eq!(vg.seqno, n(row, "vg_seqno"));
    assert_eq!(
        vg.extent_size.bytes(),
        Bytes::from(n(row, "vg_extent_size"))
    );
    assert_eq!(vg.max_lv, n(row, "max_lv"));
    assert_eq!(vg.max_pv, n(row, "max_pv"));
    let mut tags = vg.tags.clone();
    tags.sort();
    assert_eq!(tags, list(row, "vg_tags"));
    assert_eq!(vg.physical_volumes.len() as u64, n(row, "pv_count"));
    let mut ids: Vec<String> = vg.physical_volumes.iter().map(|p| p.id.dashed()).collect();
    let mut rep_ids: Vec<&str> = rep["pv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| s(r, "pv_uuid"))
        .collect();
    ids.sort();
    rep_ids.sort();
    assert_eq!(ids, rep_ids);

    let rep_lvs = rep["lv"].as_array().unwrap();
    assert_eq!(vg.logical_volumes.len(), rep_lvs.len());
    let visible = vg.logical_volumes.iter().filter(|l| l.is_visible()).count();
    assert_eq!(visible as u64, n(row, "lv_count"));
    for r in rep_lvs {
        let raw_name = s(r, "lv_name");
        let hidden = raw_name.starts_with('[');
        let name = raw_name.trim_matches(|c| c == '[' || c == ']');
        let lv = vg.lv(name).unwrap_or_else(|| panic!("no LV {name}"));
        assert_eq!(lv.id.dashed(), s(r, "lv_uuid"));
        assert_eq!(lv.is_visible(), !hidden, "{name}");
        assert_eq!(lv.tags, list(r, "lv_tags"));
        assert_eq!(lv.creation_host.as_deref(), Some(s(r, "lv_host")));
        assert_eq!(
            lv.extent_count().checked_mul(vg.extent_size),
            Some(Bytes::from(n(r, "lv_size"))),
            "{name}"
        );
        let strip = |v: &str| v.trim_matches(|c| c == '[' || c == ']').to_owned();
        match lv.as_thin_pool() {
            Some(SegmentKind::ThinPool {
                metadata_lv,
                data_lv,
                ..
            }) => {
                assert_eq!(*metadata_lv, strip(s(r, "metadata_lv")));
                assert_eq!(*data_lv, strip(s(r, "data_lv")));
                assert!(!vg.lv(data_lv).unwrap().is_visible());
                assert!(!vg.lv(metadata_lv).unwrap().is_visible());
            }
            _ => assert_eq!(s(r, "data_lv"), ""),
        }
        assert_eq!(lv.thin_pool_name().unwrap_or(""), s(r, "pool_lv"));
    }

    let segs = rep["seg"].as_array().unwrap();
    let total: usize = vg.logical_volumes.iter().map(|l| l.segments.len()).sum();
    assert_eq!(total, segs.len());
    for r in segs {
        let lv = vg
            .logical_volumes
            .iter()
            .find(|l| l.id.dashed() == s(r, "lv_uuid"))
            .unwrap();
        let seg = lv
            .segments
            .iter()
            .find(|g| g.start_extent == n(r, "seg_start_pe"))
            .unwrap();
        assert_eq!(seg.extent_count, Extents::new(n(r, "seg_size_pe")));
        let segtype = s(r, "segtype");
        match &seg.kind {
            SegmentKind::Striped { stripes, .. } => {
                assert_eq!(
                    segtype,
                    if stripes.len() == 1 {
                        "linear"
                    } else {
                        "striped"
                    }
                );
                assert_eq!(stripes.len() as u64, n(r, "stripes"));
                // devices = "/dev/loopN(start)" per stripe, named by the PV's hint.
                let want: Vec<String> = stripes
                    .iter()
                    .map(|(key, pe)| {
                        let pv = vg.physical_volumes.iter().find(|p| &p.key == key).unwrap();
                        format!("{}({pe})", pv.device_hint.as_deref().unwrap())
                    })
                    .collect();
                assert_eq!(want.join(","), s(r, "devices"));
            }
            SegmentKind::ThinPool {
                transaction_id,
                chunk_size_sectors,
                discards,
                ..
            } => {
                assert_eq!(segtype, "thin-pool");
                assert_eq!(*transaction_id, n(r, "transaction_id"));
                assert_eq!(chunk_size_sectors.bytes(), Bytes::from(n(r, "chunk_size")));
                assert_eq!(discards.as_deref(), Some(s(r, "discards")));
            }
            SegmentKind::Thin {
                transaction_id,
                device_id,
                ..
            } => {
                assert_eq!(segtype, "thin");
                assert_eq!(*transaction_id, n(r, "transaction_id"));
                assert_eq!(*device_id, n(r, "thin_id"));
            }
            SegmentKind::Other { segment_type } => assert_eq!(segment_type, segtype),
        }
    }
}

#[test]
fn blank_device_has_no_label() {
    assert_eq!(read("blank"), None);
    assert_eq!(report("blank")["pv"].as_array().unwrap().len(), 0);
}

#[test]
fn empty_and_tiny_sources_have_no_label() {
    assert_eq!(parse_pv_on_disk(Cursor::new(Vec::new())).unwrap(), None);
    assert_eq!(parse_pv_on_disk(Cursor::new(vec![0u8; 700])).unwrap(), None);
}

#[test]
fn orphan_pv() {
    let pv = read("pv-only").unwrap();
    check_pv(&pv, &report("pv-only"));
    assert_eq!(pv.label_sector, 1);
    assert!(pv.vg_metadata.is_none());
    assert_eq!(pv.mda_seqno, None);
    assert!(!pv.is_in_vg());
    assert_eq!(pv.metadata_area_states.len(), 1);
    assert_eq!(pv.metadata_area_states[0].committed, None);
}

#[test]
fn vg_with_tags() {
    let pv = read("vg-tags").unwrap();
    let rep = report("vg-tags");
    check_pv(&pv, &rep);
    let vg = pv.vg_metadata.as_ref().unwrap();
    check_vg(vg, &rep);
    assert!(vg.has_tag("linstor-satellite-id=node-1.example"));
    assert!(vg.has_tag("a+b/c:d&e"));
    assert_eq!(pv.mda_seqno, Some(vg.seqno));
    let plain = vg.lv("plain").unwrap();
    assert!(plain.is_visible());
    assert!(plain.creation_time.is_some());
    assert!(vg.creation_time.is_some() && vg.creation_host.is_some());
    assert_eq!(
        vg.physical_volumes[0].device_hint.as_deref(),
        Some(s(&rep["pv"][0], "pv_name"))
    );
}

#[test]
fn vg_with_thin_pool() {
    let pv = read("vg-thin").unwrap();
    let rep = report("vg-thin");
    check_pv(&pv, &rep);
    let vg = pv.vg_metadata.as_ref().unwrap();
    check_vg(vg, &rep);
    let pool = vg.lv("linstor-pool").unwrap();
    assert_eq!(
        pool.as_thin_pool(),
        Some(&SegmentKind::ThinPool {
            metadata_lv: "linstor-pool_tmeta".into(),
            data_lv: "linstor-pool_tdata".into(),
            transaction_id: 3,
            chunk_size_sectors: Sectors(128),
            discards: Some("passdown".into()),
            zero_new_blocks: false,
        })
    );
    let thins: Vec<&str> = vg
        .thin_volumes_of("linstor-pool")
        .map(|l| l.name.as_str())
        .collect();
    assert_eq!(thins, ["metadata", "pvc-0001", "pvc-0002"]);
    assert!(!vg.lv("lvol0_pmspare").unwrap().is_visible());
}

#[test]
fn vg_on_two_pvs() {
    let rep = report("vg-two");
    let a = read("vg-two-a").unwrap();
    let b = read("vg-two-b").unwrap();
    for pv in [&a, &b] {
        check_pv(pv, &rep);
        check_vg(pv.vg_metadata.as_ref().unwrap(), &rep);
    }
    assert_ne!(a.pv_uuid, b.pv_uuid);
    assert_eq!(a.vg_metadata, b.vg_metadata);
    let vg = a.vg_metadata.as_ref().unwrap();
    assert_eq!(vg.physical_volumes.len(), 2);
    assert_eq!(vg.lv("span").unwrap().pv_keys(), ["pv0", "pv1"]);
}

#[test]
fn vg_with_two_and_zero_metadata_copies() {
    let rep = report("vg-mdas");
    let a = read("vg-mdas-a").unwrap();
    let b = read("vg-mdas-b").unwrap();
    check_pv(&a, &rep);
    check_pv(&b, &rep);
    assert_eq!(a.metadata_areas.len(), 2);
    let seqnos: Vec<Option<u64>> = a.metadata_area_states.iter().map(|s| s.seqno).collect();
    assert_eq!(seqnos, [a.mda_seqno, a.mda_seqno]);
    let vg = a.vg_metadata.as_ref().unwrap();
    check_vg(vg, &rep);
    // B holds no VG text, yet belongs to the VG: not an orphan.
    assert!(b.metadata_areas.is_empty());
    assert!(b.vg_metadata.is_none());
    assert!(b.is_in_vg());
    let b_key = &vg.pv_by_id(&b.pv_uuid).unwrap().key;
    assert_eq!(vg.lv("on-b").unwrap().pv_keys(), [b_key.as_str()]);
}

#[test]
fn ignored_metadata_area_is_read_as_ignored() {
    // `pvcreate --metadataignore y`: the area header's slot 0 is
    // {offset 0, size 0, checksum 0, flags RAW_LOCN_IGNORED}.
    let rep = report("member-ignored");
    let a = read("member-ignored-a").unwrap();
    let b = read("member-ignored-b").unwrap();
    check_pv(&a, &rep);
    check_pv(&b, &rep);
    let row = rep["pv"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| s(r, "pv_uuid") == a.pv_uuid.dashed())
        .unwrap();
    assert_eq!(n(row, "pv_mda_used_count"), 0);
    assert_eq!(a.metadata_area_states.len(), 1);
    assert!(a.metadata_area_states[0].ignored);
    assert!(a.metadata_area_states[0].committed.is_none());
    assert!(a.vg_metadata.is_none() && a.is_in_vg());
    // The other PV carries othervg, which lists A and holds A's LV.
    let vg = b.vg_metadata.as_ref().unwrap();
    check_vg(vg, &rep);
    assert_eq!(vg.name, "othervg");
    let a_key = &vg.pv_by_id(&a.pv_uuid).unwrap().key;
    assert_eq!(vg.lv("data").unwrap().pv_keys(), [a_key.as_str()]);
}

#[test]
fn both_raw_locn_slots_are_read_by_position() {
    let mut img = load_image("member-ignored-a");
    let raw = &img[4096..4096 + 512];
    let h = mda::parse_mda_header(raw, 4096, 0).unwrap();
    assert_eq!(h.raw_locns.len(), 2);
    assert!(h.is_ignored() && h.committed().is_none());
    // Clearing the flag leaves an empty slot 0: in use, no metadata.
    img[4096 + 60] = 0;
    let crc = lvm_crc(&img[4096 + 4..4096 + 512]);
    img[4096..4100].copy_from_slice(&crc.to_le_bytes());
    let h = mda::parse_mda_header(&img[4096..4096 + 512], 4096, 0).unwrap();
    assert!(!h.is_ignored() && h.committed().is_none());
}

#[test]
fn second_area_at_the_end_is_left_out_of_the_extents() {
    // LVM2: pe_count = (device size - pe_start - size of the area at the end)
    // / extent size. The fixture's size makes the naive count one too many.
    let rep = report("two-mdas");
    let pv = read("two-mdas").unwrap();
    check_pv(&pv, &rep);
    let vg = pv.vg_metadata.as_ref().unwrap();
    let pe_start = pv.pe_start_bytes().unwrap();
    let at_end: u64 = pv
        .metadata_areas
        .iter()
        .filter(|a| Bytes::from(a.offset) >= pe_start)
        .map(|a| a.size)
        .sum();
    assert!(at_end > 0);
    let at_end = Bytes::from(at_end);
    let extent = vg.extent_size;
    let entry = pv.in_vg_metadata().unwrap();
    assert_eq!(
        Some(entry.pe_count),
        extent.extents_in(pv.device_size - pe_start - at_end)
    );
    assert_eq!(
        entry.pe_count.checked_add(Extents::new(1)),
        extent.extents_in(pv.device_size - pe_start)
    );
}

#[test]
fn second_metadata_copy_is_verified_too() {
    let good = load_image("vg-mdas-a");
    let pv = parse_pv_on_disk(Cursor::new(good.clone()))
        .unwrap()
        .unwrap();
    let st = &pv.metadata_area_states[1];
    let locn = st.committed.unwrap();
    let mut img = good;
    img[(st.start + locn.offset + 5) as usize] ^= 0x20;
    // Torn (or damaged) in the second area: reported as such, the first area's copy
    // still read, and the damaged text itself never offered as an intact copy (a
    // flipped letter in the VG name still parses).
    let pv = parse_pv_on_disk(Cursor::new(img)).unwrap().unwrap();
    assert_eq!(pv.torn_areas.len(), 1);
    assert_eq!(pv.torn_areas[0].start, st.start);
    assert!(pv.torn_areas[0]
        .copies
        .iter()
        .all(|c| c.offset != locn.offset));
    assert!(pv.torn_areas[0].copies.iter().all(|c| c.seqno < 2));
}

#[test]
fn wrapped_metadata_buffer() {
    let pv = read("vg-wrap").unwrap();
    let rep = report("vg-wrap");
    check_pv(&pv, &rep);
    check_vg(pv.vg_metadata.as_ref().unwrap(), &rep);
    let st = &pv.metadata_area_states[0];
    let locn = st.committed.unwrap();
    assert!(
        locn.offset + locn.size > st.size,
        "fixture should hold text that wraps: {locn:?} in {} bytes",
        st.size
    );
    assert!(pv.mda_seqno.unwrap() > 200);
}

#[test]
fn metadata_serialises_to_json() {
    let pv = read("vg-thin").unwrap();
    let j = serde_json::to_value(&pv).unwrap();
    assert_eq!(j["metadata"]["name"], "vg-thin");
    let lvs = j["metadata"]["logical_volumes"].as_array().unwrap();
    let pool = lvs.iter().find(|l| l["name"] == "linstor-pool").unwrap();
    assert_eq!(pool["segments"][0]["kind"]["type"], "thin-pool");
    assert_eq!(pool["segments"][0]["kind"]["data_lv"], "linstor-pool_tdata");
}

#[test]
fn damaged_checksums_are_errors_not_blank() {
    let good = load_image("vg-tags");
    // label: flip a byte inside the CRC-covered part of sector 1
    let mut img = good.clone();
    img[512 + 40] ^= 0x01;
    let e = parse_pv_on_disk(Cursor::new(img)).unwrap_err();
    assert!(
        matches!(e, LvmReadError::LabelChecksum { offset: 512, .. }),
        "{e}"
    );
    // mda header
    let mut img = good.clone();
    img[4096 + 100] ^= 0x01;
    let e = parse_pv_on_disk(Cursor::new(img)).unwrap_err();
    assert!(
        matches!(e, LvmReadError::MdaHeaderChecksum { offset: 4096, .. }),
        "{e}"
    );
    // metadata text: find it via the header and damage it
    let pv = parse_pv_on_disk(Cursor::new(good.clone()))
        .unwrap()
        .unwrap();
    let locn = pv.metadata_area_states[0].committed.unwrap();
    let mut img = good.clone();
    img[(4096 + locn.offset + 10) as usize] ^= 0x01;
    let torn = parse_pv_on_disk(Cursor::new(img)).unwrap().unwrap();
    assert!(torn.vg_metadata.is_none(), "damaged text read as a VG");
    assert_eq!(torn.torn_areas.len(), 1);
    assert_eq!(torn.torn_areas[0].committed, locn);
    assert!(torn.torn_areas[0].computed_checksum != locn.checksum);
    // Its own damaged copy is not among the intact ones.
    assert!(torn.torn_areas[0]
        .copies
        .iter()
        .all(|c| c.offset != locn.offset));
    // a device cut short inside the metadata area
    let e = parse_pv_on_disk(Cursor::new(good[..4096 + 256].to_vec())).unwrap_err();
    assert!(
        matches!(e, LvmReadError::Truncated { offset: 4096, .. }),
        "{e}"
    );
}

#[test]
fn read_physical_volume_opens_files() {
    let dir = std::env::temp_dir().join(format!("lvm-reader-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("vg-tags.img");
    std::fs::write(&path, load_image("vg-tags")).unwrap();
    let pv = read_pv_on_disk(&path).unwrap().unwrap();
    assert_eq!(pv.vg_metadata.unwrap().name, "vg-tags");
    let missing = read_pv_on_disk(&dir.join("nope")).unwrap_err().to_string();
    assert!(missing.contains("nope"), "{missing}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `metadata --json` prints the reader's structures: their JSON is pinned byte for
/// byte against files written by the build before units became types.
#[test]
fn metadata_json_is_pinned() {
    for name in ["vg-thin", "vg-two-a", "two-mdas"] {
        let json = serde_json::to_string_pretty(&read(name)).unwrap();
        let pin = fixture_dir().join(format!("{name}.reader.json"));
        let pinned = std::fs::read_to_string(&pin).unwrap();
        assert!(
            json == pinned,
            "{name}: JSON differs from {}",
            pin.display()
        );
    }
}

/// Every size derived from the extent size would be wrong (or a division by zero):
/// a zero extent size, or one wider than LVM's 32 bits, is damaged metadata.
#[test]
fn impossible_extent_sizes_are_read_errors() {
    let text = |extent_size: &str| {
        format!(
            "vg {{\nid = \"Dpy7Vo-YKkR-w5nA-h5WA-Lmf5-Sxnr-bQnBd9\"\nseqno = 1\nstatus = [\"READ\"]\nextent_size = {extent_size}\n}}\n\
             contents = \"Text Format Volume Group\"\nversion = 1\n"
        )
    };
    let good = parse_metadata_text(text("8192").as_bytes()).unwrap();
    assert_eq!(good.extent_size.sectors(), Sectors(8192));
    for (written, found) in [("0", "0 sectors"), ("4294967296", "4294967296 sectors")] {
        match parse_metadata_text(text(written).as_bytes()) {
            Err(LvmReadError::Metadata {
                path,
                found: what,
                expected,
                ..
            }) => {
                assert_eq!(path, "vg/extent_size");
                assert_eq!(what, found);
                assert_eq!(expected, "1 to 4294967295 sectors");
            }
            other => panic!("extent_size = {written}: {other:?}"),
        }
    }
    assert!(parse_metadata_text(text("4294967295").as_bytes()).is_ok());
}

/// Rewrites the committed slot of the area at 4096 of `img` and the header's checksum.
fn point_committed_slot(img: &mut [u8], offset: u64, size: u64, checksum: u32) {
    img[4096 + 40..4096 + 48].copy_from_slice(&offset.to_le_bytes());
    img[4096 + 48..4096 + 56].copy_from_slice(&size.to_le_bytes());
    img[4096 + 56..4096 + 60].copy_from_slice(&checksum.to_le_bytes());
    let crc = lvm_crc(&img[4096 + 4..4096 + 512]);
    img[4096..4100].copy_from_slice(&crc.to_le_bytes());
}

/// "Header written, text not": the header's slot points at a new text right after
/// the committed one, whose block never reached the disk. The reader reports the
/// torn slot and every intact copy, the last commit newest.
#[test]
fn a_header_whose_text_never_arrived_is_torn_with_the_older_copies_listed() {
    let good = load_image("vg-thin");
    let pv = read("vg-thin").unwrap();
    let committed = pv.metadata_area_states[0].committed.unwrap();
    let seqno = pv.mda_seqno.unwrap();
    let next = (committed.offset + committed.size).div_ceil(512) * 512;
    let mut img = good.clone();
    point_committed_slot(&mut img, next, 2279, 0x1234_5678);
    let torn = parse_pv_on_disk(Cursor::new(img)).unwrap().unwrap();
    assert!(torn.vg_metadata.is_none());
    let area = &torn.torn_areas[0];
    assert_eq!(area.committed.offset, next);
    let newest = area.copies.iter().max_by_key(|c| c.seqno).unwrap();
    assert_eq!(newest.seqno, seqno);
    assert_eq!(
        (newest.offset, newest.size),
        (committed.offset, committed.size)
    );
    assert_eq!(
        newest.checksum, committed.checksum,
        "the copy sums as LVM recorded"
    );
    assert_eq!(newest.metadata, pv.vg_metadata.clone().unwrap());
    // Every earlier commit is still there, each intact and checksummed.
    assert!(
        area.copies.len() as u64 >= seqno.min(3),
        "{:?}",
        area.copies.len()
    );
    for copy in &area.copies {
        assert!(copy.seqno <= seqno);
        assert_eq!(copy.metadata.name, "vg-thin");
        assert!(copy.padded, "LVM pads every commit: {}", copy.offset);
    }
    // LVM wrote each commit where `next_text_offset` says: every copy but the newest
    // is followed by the next seqno's.
    assert_eq!(
        mda::next_text_offset(area.size, newest.offset, newest.size),
        Some(next)
    );
    for copy in area.copies.iter().filter(|c| c.seqno < seqno) {
        let after = mda::next_text_offset(area.size, copy.offset, copy.size);
        let follower = area.copies.iter().find(|c| Some(c.offset) == after);
        assert_eq!(follower.map(|c| c.seqno), Some(copy.seqno + 1));
    }
    // Nothing in the buffer but copies, the torn slot and zeros.
    assert_eq!(area.stray_sectors, Vec::<u64>::new());
    // The reader's JSON of a PV without a torn area is unchanged (no new field).
    let plain = serde_json::to_value(&pv).unwrap();
    assert!(plain.get("torn_areas").is_none());
}

/// A label whose metadata area's header sector never reached the disk (all zeros):
/// read as an unwritten area, with what its buffer holds, not as an error. One
/// non-zero byte in the header is still a malformed header.
#[test]
fn a_header_sector_of_zeros_is_an_unwritten_area_with_its_buffer_searched() {
    let mut pv_only = load_image("pv-only");
    pv_only[4096..4608].fill(0);
    let pv = parse_pv_on_disk(Cursor::new(pv_only.clone()))
        .unwrap()
        .unwrap();
    assert!(pv.vg_metadata.is_none() && pv.torn_areas.is_empty());
    let area = &pv.unwritten_areas[0];
    assert_eq!((area.start, area.copies.len()), (4096, 0));
    assert_eq!(area.stray_sectors, Vec::<u64>::new());
    assert_eq!(area.pv_uuid_at, Vec::<u64>::new());
    assert_eq!(pv.metadata_area_states[0].committed, None);
    // A VG's PV with its header lost: the buffer's copies are found and named.
    let mut thin = load_image("vg-thin");
    thin[4096..4608].fill(0);
    let pv = parse_pv_on_disk(Cursor::new(thin)).unwrap().unwrap();
    let area = &pv.unwritten_areas[0];
    assert!(!area.copies.is_empty());
    assert!(area.copies.iter().all(|c| c.metadata.name == "vg-thin"));
    // Its copies name the PV: the uuid is found in the buffer, as LVM writes it.
    let first = area.copies.iter().map(|c| c.offset).min().unwrap();
    assert!(
        area.pv_uuid_at.first().is_some_and(|at| *at > first),
        "{:?}",
        area.pv_uuid_at
    );
    // Anything in the buffer that is no copy is a stray sector.
    let mut stray = pv_only.clone();
    stray[4096 + 8192] = 1;
    let pv = parse_pv_on_disk(Cursor::new(stray)).unwrap().unwrap();
    assert_eq!(pv.unwritten_areas[0].stray_sectors, vec![8192]);
    // Not all zeros: a malformed header, as before.
    pv_only[4096 + 100] = 1;
    assert!(parse_pv_on_disk(Cursor::new(pv_only)).is_err());
}

/// A copy that wraps past the end of the buffer is found whole, and a copy whose
/// sectors were partly overwritten is not taken for intact.
#[test]
fn ring_search_follows_wrapped_copies_and_rejects_mixed_ones() {
    let img = load_image("vg-wrap");
    let pv = read("vg-wrap").unwrap();
    let st = &pv.metadata_area_states[0];
    let committed = st.committed.unwrap();
    assert!(
        committed.offset + committed.size > st.size,
        "fixture does not wrap"
    );
    let area = &img[st.start as usize..(st.start + st.size) as usize];
    let copies = mda::search_area(area);
    let wrapped = copies
        .iter()
        .find(|c| c.offset == committed.offset)
        .expect("the wrapped committed copy was not found");
    assert_eq!(wrapped.size, committed.size);
    assert_eq!(wrapped.checksum, committed.checksum);
    assert_eq!(Some(wrapped.seqno), pv.mda_seqno);
    // Overwrite the middle of an older, unwrapped copy with bytes of another
    // sector: it no longer parses or no longer ends as LVM ends a copy.
    let older = copies
        .iter()
        .find(|c| c.offset + c.size < st.size && c.size > 600 && c.offset != committed.offset)
        .expect("no older copy of more than one sector");
    let mut mixed = area.to_vec();
    let middle = (older.offset as usize / 512 + 1) * 512;
    let other = (wrapped.offset as usize / 512) * 512;
    mixed.copy_within(other..other + 512, middle);
    assert!(mda::search_area(&mixed)
        .iter()
        .all(|c| c.offset != older.offset || c.checksum == older.checksum));
    // A header whose slot points at the wrapped copy with a wrong checksum: torn,
    // and the copies before it are listed.
    let mut torn_img = img.clone();
    point_committed_slot(
        &mut torn_img,
        committed.offset,
        committed.size,
        committed.checksum ^ 1,
    );
    let torn = parse_pv_on_disk(Cursor::new(torn_img)).unwrap().unwrap();
    // (all but the one the slot points at: that is the torn text itself)
    assert_eq!(torn.torn_areas[0].copies.len(), copies.len() - 1);
    // The commit before the wrapped one ends where LVM started the wrapped one.
    let before = torn.torn_areas[0]
        .copies
        .iter()
        .filter(|c| mda::next_text_offset(st.size, c.offset, c.size) == Some(committed.offset))
        .map(|c| c.seqno)
        .collect::<Vec<_>>();
    assert_eq!(before, vec![wrapped.seqno - 1]);
}

/// `pvck --repair` writes its copy without zero padding: the copy is still found
/// (as text in the buffer) but marked unpadded; bytes no copy accounts for are
/// reported as stray sectors, a torn first commit's own extent is not.
#[test]
fn unpadded_copies_are_text_and_unknown_bytes_are_strays() {
    let img = load_image("vg-thin");
    let pv = read("vg-thin").unwrap();
    let st = &pv.metadata_area_states[0];
    let committed = st.committed.unwrap();
    let end = (committed.offset + committed.size) as usize;
    assert!(
        !end.is_multiple_of(512),
        "fixture's newest copy fills its last sector"
    );
    let mut area = img[st.start as usize..(st.start + st.size) as usize].to_vec();
    area[end] = b'x';
    let copies = mda::search_area(&area);
    let newest = copies
        .iter()
        .find(|c| c.offset == committed.offset)
        .expect("an unpadded copy is still found");
    assert!(!newest.padded);
    assert_eq!(newest.checksum, committed.checksum);
    // Its tail sector belongs to it; a far sector of garbage does not.
    let far = area.len() - 1024;
    assert!(
        area[far..].iter().all(|b| *b == 0),
        "fixture fills its area"
    );
    area[far + 3] = 1;
    let copies = mda::search_area(&area);
    assert_eq!(
        mda::stray_sectors(&area, 40_000, 100, &copies),
        vec![far as u64]
    );
    // A sector starting like a copy that does not parse is not a copy: a stray.
    let mut broken = area.clone();
    broken[far + 3] = 0;
    broken[committed.offset as usize + 20] = b'{';
    let copies = mda::search_area(&broken);
    assert!(copies.iter().all(|c| c.offset != committed.offset));
    assert!(mda::stray_sectors(&broken, 40_000, 100, &copies).contains(&committed.offset));
    // The torn text's own sectors are not strays, wrapped ones included.
    let mut first = vec![0u8; area.len()];
    first[512..1500].fill(b'y');
    assert!(mda::stray_sectors(&first, 512, 988, &[]).is_empty());
    first[1536] = 1;
    assert_eq!(mda::stray_sectors(&first, 512, 988, &[]), vec![1536]);
    let mut wrapping = vec![0u8; area.len()];
    wrapping[area.len() - 512..].fill(b'z');
    wrapping[512..700].fill(b'z');
    let at = area.len() as u64 - 512;
    assert!(mda::stray_sectors(&wrapping, at, 700, &[]).is_empty());
    assert_eq!(mda::stray_sectors(&wrapping, at, 512, &[]), vec![512]);
}
