//! Hostile-input properties of the native LVM reader: random bytes and
//! mutated real fixtures (bit flips, truncations, tampered size and offset
//! fields, with checksums recomputed so the damage reaches the deeper
//! parsers) must give `Ok` or an `LvmReadError`, never a panic, hang or
//! runaway allocation. Fixtures: tests/fixtures/lvm/ (see make-fixtures.sh).

use std::io::Cursor;

use linstor_provision_disk::observe::lvm::{
    label, lvm_crc, mda, parse_metadata_text, parse_pv_on_disk, pv_header, text,
};
use proptest::prelude::*;

mod lvm_images;
use lvm_images::{fix_checksums, load_image, put_u32, put_u64, FIXTURES};

fn images() -> Vec<Vec<u8>> {
    FIXTURES.iter().map(|n| load_image(n)).collect()
}

fn read(img: Vec<u8>) {
    // Either answer is fine; what matters is that it returns.
    let _ = parse_pv_on_disk(Cursor::new(img));
}

/// Offsets of the fields a hostile device would tamper with.
fn size_fields() -> Vec<(usize, u8)> {
    // (offset, width): label sector no. + header offset, pv header device size
    // and area lists, mda header start/size, raw_locn offset/size.
    let mut v = vec![(512 + 8, 8), (512 + 20, 4), (544 + 32, 8)];
    for i in 0..8 {
        v.push((544 + 40 + i * 8, 8));
    }
    v.extend([
        (4096 + 24, 8),
        (4096 + 32, 8),
        (4096 + 40, 8),
        (4096 + 48, 8),
        (4096 + 64, 8),
        (4096 + 72, 8),
    ]);
    v
}

fn interesting_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1),
        Just(511),
        Just(512),
        Just(4096),
        Just(65535),
        Just(65536),
        Just(u64::MAX),
        Just(u64::MAX - 511),
        Just(1 << 63),
        Just(u64::from(u32::MAX)),
        any::<u64>(),
        0u64..70_000,
    ]
}

#[test]
fn fixtures_read_cleanly_and_fix_checksums_is_identity() {
    for (name, img) in FIXTURES.iter().zip(images()) {
        let mut fixed = img.clone();
        fix_checksums(&mut fixed);
        assert_eq!(fixed, img, "{name}: checksum helper changed a good image");
        assert!(
            parse_pv_on_disk(Cursor::new(img)).unwrap().is_some(),
            "{name}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_devices(data in proptest::collection::vec(any::<u8>(), 0..6000), label_at in 0usize..5) {
        let mut data = data;
        // Half the time plant a valid-looking label so the PV header parser runs.
        if label_at < 4 && data.len() >= (label_at + 1) * 512 {
            let s = label_at * 512;
            data[s..s + 8].copy_from_slice(b"LABELONE");
            put_u64(&mut data, s + 8, label_at as u64);
            put_u32(&mut data, s + 20, 32);
            data[s + 24..s + 32].copy_from_slice(b"LVM2 001");
            let crc = lvm_crc(&data[s + 20..s + 512]);
            put_u32(&mut data, s + 16, crc);
        }
        read(data);
    }

    #[test]
    fn label_sector_parser(sector in proptest::collection::vec(any::<u8>(), 0..600), idx in 0u64..6) {
        let mut sector = sector;
        if sector.len() >= 8 { sector[..8].copy_from_slice(b"LABELONE"); }
        let _ = label::parse_label_sector(&sector, idx);
        let _ = label::find_label(&sector);
    }

    #[test]
    fn pv_header_parser(sector in proptest::collection::vec(any::<u8>(), 0..600), start in 0usize..600) {
        let _ = pv_header::parse_pv_header(&sector, start, 512);
    }

    #[test]
    fn mda_header_parser(buf in proptest::collection::vec(any::<u8>(), 0..600), start in interesting_u64(), area in interesting_u64(), fix in any::<bool>()) {
        let mut buf = buf;
        if fix && buf.len() >= 512 {
            buf[4..20].copy_from_slice(mda::FMTT_MAGIC);
            put_u32(&mut buf, 20, 1);
            put_u64(&mut buf, 24, start);
            let crc = lvm_crc(&buf[4..512]);
            put_u32(&mut buf, 0, crc);
        }
        if let Ok(h) = mda::parse_mda_header(&buf, start, area) {
            for l in &h.raw_locns {
                let _ = mda::text_ranges(&h, l);
            }
        }
    }

    #[test]
    fn bit_flips_in_fixtures(which in 0..FIXTURES.len(), flips in proptest::collection::vec((0usize..65536, 0u8..8), 1..8), region in 0u8..4, fix in any::<bool>()) {
        let mut img = load_image(FIXTURES[which]);
        for (pos, bit) in flips {
            // Aim most flips at the headers: label/PV header, mda header, text.
            let pos = match region {
                0 => 512 + pos % 512,
                1 => 4096 + pos % 512,
                2 => 4608 + pos % 8192,
                _ => pos,
            };
            if let Some(b) = img.get_mut(pos) { *b ^= 1 << bit; }
        }
        if fix { fix_checksums(&mut img); }
        read(img);
    }

    #[test]
    fn truncated_fixtures(which in 0..FIXTURES.len(), len in 0usize..65536) {
        let mut img = load_image(FIXTURES[which]);
        img.truncate(len);
        read(img);
    }

    #[test]
    fn tampered_size_fields(which in 0..FIXTURES.len(), field in 0usize..20, value in interesting_u64(), fix in any::<bool>()) {
        let mut img = load_image(FIXTURES[which]);
        let fields = size_fields();
        let (at, width) = fields[field % fields.len()];
        if width == 4 { put_u32(&mut img, at, value as u32); } else { put_u64(&mut img, at, value); }
        if fix { fix_checksums(&mut img); }
        read(img);
    }

    #[test]
    fn mutated_metadata_text(which in 1..FIXTURES.len(), edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..6)) {
        let img = load_image(FIXTURES[which]);
        let pv = parse_pv_on_disk(Cursor::new(img.clone())).unwrap().unwrap();
        let Some(st) = pv.metadata_area_states.first() else { return Ok(()) };
        let Some(l) = st.committed else { return Ok(()) };
        // Reassemble the text (it may wrap), then damage it.
        let mut t = Vec::new();
        let first = l.size.min(st.size - l.offset);
        t.extend_from_slice(&img[(st.start + l.offset) as usize..(st.start + l.offset + first) as usize]);
        t.extend_from_slice(&img[(st.start + 512) as usize..(st.start + 512 + l.size - first) as usize]);
        for (pos, byte, op) in edits {
            if t.is_empty() { break; }
            let p = pos % t.len();
            match op {
                0 => t[p] = byte,
                1 => t.insert(p, byte),
                _ => { t.remove(p); }
            }
        }
        let _ = text::parse(&t);
        let _ = parse_metadata_text(&t);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() })]

    /// `text_ranges` is public: any header a caller builds must be safe.
    #[test]
    fn text_ranges_on_any_header(start in interesting_u64(), size in interesting_u64(), off in interesting_u64(), len in interesting_u64()) {
        let h = mda::MdaHeader { start, size, raw_locns: Vec::new() };
        let l = mda::RawLocn { offset: off, size: len, checksum: 0, flags: 0 };
        if let Ok(ranges) = mda::text_ranges(&h, &l) {
            let total: u64 = ranges.iter().map(|r| r.1).sum();
            prop_assert_eq!(total, len);
            for (o, n) in ranges {
                prop_assert!(o >= start && o.checked_add(n).is_some_and(|e| e <= start + size));
            }
        }
    }
}
