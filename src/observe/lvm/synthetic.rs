//! A LINSTOR-like VG metadata text of any size, for the reader's scale test and
//! `cargo xtask bench --scale`: one PV, a thin pool (`_tdata`, `_tmeta`, the
//! spare), and thin volumes named as LINSTOR names them (`pvc-<uuid>_00000`,
//! tagged), every fifth LV a snapshot of the volume before it (`origin`,
//! `ACTIVATION_SKIP`), as LINSTOR's snapshots are. The layout and fields are what
//! LVM 2.03 writes (`vgcfgbackup` of a real pool), so the reader parses it the way
//! it parses a node's.

use std::fmt::Write as _;

/// LVM uuid text (32 characters in LVM's 6-4-4-4-4-4-6 groups) for number `n`
/// of kind `kind` (one letter), unique per (kind, n).
fn lvm_uuid(kind: char, n: u64) -> String {
    let digits = format!("{kind}{n:031}");
    format!(
        "{}-{}-{}-{}-{}-{}-{}",
        &digits[0..6],
        &digits[6..10],
        &digits[10..14],
        &digits[14..18],
        &digits[18..22],
        &digits[22..26],
        &digits[26..32]
    )
}

/// The metadata text of VG `linstor-vg` holding `lvs` thin LVs (volumes and
/// snapshots) in pool `linstor-pool`.
pub fn linstor_like_metadata_text(lvs: u64) -> String {
    let mut t = String::with_capacity(usize::try_from(lvs).unwrap_or(0).saturating_mul(480) + 4096);
    t.push_str(
        "linstor-vg {\n\
         id = \"Vgvgvg-0000-0000-0000-0000-0000-000001\"\n\
         seqno = 2001\n\
         format = \"lvm2\"\n\
         status = [\"RESIZEABLE\", \"READ\", \"WRITE\"]\n\
         flags = []\n\
         tags = [\"linstor-satellite-id=node-01\"]\n\
         extent_size = 8192\n\
         max_lv = 0\n\
         max_pv = 0\n\
         metadata_copies = 0\n\n\
         physical_volumes {\n\n\
         pv0 {\n\
         id = \"Pvpvpv-0000-0000-0000-0000-0000-000001\"\n\
         device = \"/dev/vda1\"\n\n\
         status = [\"ALLOCATABLE\"]\n\
         flags = []\n\
         dev_size = 2147483648\n\
         pe_start = 2048\n\
         pe_count = 262143\n\
         }\n\
         }\n\n\
         logical_volumes {\n\n",
    );
    let _ = write!(
        t,
        "linstor-pool {{\n\
         id = \"{}\"\n\
         status = [\"READ\", \"WRITE\", \"VISIBLE\"]\n\
         flags = []\n\
         creation_time = 1700000000\n\
         creation_host = \"node-01\"\n\
         segment_count = 1\n\n\
         segment1 {{\n\
         start_extent = 0\n\
         extent_count = 261000\n\n\
         type = \"thin-pool\"\n\
         metadata = \"linstor-pool_tmeta\"\n\
         pool = \"linstor-pool_tdata\"\n\
         transaction_id = {lvs}\n\
         chunk_size = 128\n\
         discards = \"passdown\"\n\
         zero_new_blocks = 1\n\
         }}\n\
         }}\n\n",
        lvm_uuid('P', 1)
    );
    for n in 1..=lvs {
        let snapshot = n % 5 == 0 && n > 1;
        let name = if snapshot {
            format!(
                "snap_pvc-{:08x}-0000-4000-8000-{:012x}_00000_snap1",
                n - 1,
                n - 1
            )
        } else {
            format!("pvc-{n:08x}-0000-4000-8000-{n:012x}_00000")
        };
        let (status, flags, origin) = if snapshot {
            (
                "\"READ\", \"VISIBLE\"",
                "\"ACTIVATION_SKIP\"",
                format!(
                    "origin = \"pvc-{:08x}-0000-4000-8000-{:012x}_00000\"\n",
                    n - 1,
                    n - 1
                ),
            )
        } else {
            ("\"READ\", \"WRITE\", \"VISIBLE\"", "", String::new())
        };
        let _ = write!(
            t,
            "{name} {{\n\
             id = \"{}\"\n\
             status = [{status}]\n\
             flags = [{flags}]\n\
             tags = [\"linstor_rsc_{n}\", \"linstor_vlm_0\"]\n\
             creation_time = {}\n\
             creation_host = \"node-01\"\n\
             segment_count = 1\n\n\
             segment1 {{\n\
             start_extent = 0\n\
             extent_count = 256\n\n\
             type = \"thin\"\n\
             thin_pool = \"linstor-pool\"\n\
             transaction_id = {}\n\
             device_id = {n}\n\
             {origin}\
             }}\n\
             }}\n\n",
            lvm_uuid('T', n),
            1_700_000_000 + n,
            n - 1,
        );
    }
    let _ = write!(
        t,
        "lvol0_pmspare {{\n\
         id = \"{}\"\n\
         status = [\"READ\", \"WRITE\"]\n\
         flags = []\n\
         creation_time = 1700000000\n\
         creation_host = \"node-01\"\n\
         segment_count = 1\n\n\
         segment1 {{\n\
         start_extent = 0\n\
         extent_count = 64\n\n\
         type = \"striped\"\n\
         stripe_count = 1\n\n\
         stripes = [\n\
         \"pv0\", 0\n\
         ]\n\
         }}\n\
         }}\n\n\
         linstor-pool_tmeta {{\n\
         id = \"{}\"\n\
         status = [\"READ\", \"WRITE\"]\n\
         flags = []\n\
         creation_time = 1700000000\n\
         creation_host = \"node-01\"\n\
         segment_count = 1\n\n\
         segment1 {{\n\
         start_extent = 0\n\
         extent_count = 64\n\n\
         type = \"striped\"\n\
         stripe_count = 1\n\n\
         stripes = [\n\
         \"pv0\", 261064\n\
         ]\n\
         }}\n\
         }}\n\n\
         linstor-pool_tdata {{\n\
         id = \"{}\"\n\
         status = [\"READ\", \"WRITE\"]\n\
         flags = []\n\
         creation_time = 1700000000\n\
         creation_host = \"node-01\"\n\
         segment_count = 1\n\n\
         segment1 {{\n\
         start_extent = 0\n\
         extent_count = 261000\n\n\
         type = \"striped\"\n\
         stripe_count = 1\n\n\
         stripes = [\n\
         \"pv0\", 64\n\
         ]\n\
         }}\n\
         }}\n\
         }}\n\n\
         }}\n\
         # Generated by LVM2 version 2.03.16(2) (2022-05-18): Sun Dec  6 23:00:00 2026\n\n\
         contents = \"Text Format Volume Group\"\n\
         version = 1\n\n\
         description = \"\"\n\n\
         creation_host = \"node-01\"\n\
         creation_time = 1700000000\n",
        lvm_uuid('S', 1),
        lvm_uuid('M', 1),
        lvm_uuid('D', 1),
    );
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::lvm::{parse_metadata_text, SegmentKind};

    #[test]
    fn a_10000_lv_linstor_like_text_parses_in_full() {
        let text = linstor_like_metadata_text(10_000);
        let vg = match parse_metadata_text(text.as_bytes()) {
            Ok(vg) => vg,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(vg.name, "linstor-vg");
        // The pool, its two sub-LVs, the spare and the 10,000.
        assert_eq!(vg.logical_volumes.len(), 10_004);
        let thin: Vec<_> = vg
            .logical_volumes
            .iter()
            .filter(|lv| {
                matches!(
                    lv.segments.first().map(|s| &s.kind),
                    Some(SegmentKind::Thin { .. })
                )
            })
            .collect();
        assert_eq!(thin.len(), 10_000);
        let snapshots = vg
            .logical_volumes
            .iter()
            .filter(|lv| lv.name.starts_with("snap_"))
            .count();
        assert_eq!(snapshots, 2_000);
        assert!(vg
            .lv("pvc-00000001-0000-4000-8000-000000000001_00000")
            .is_some());
        assert!(vg.has_tag("linstor-satellite-id=node-01"));
        // ~400 bytes per LV: what the metadata area must hold twice.
        let per_lv = text.len() / 10_000;
        assert!((300..600).contains(&per_lv), "{per_lv} bytes per LV");
    }
}
