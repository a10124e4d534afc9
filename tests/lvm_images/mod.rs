//! LVM fixture images shared by the property and fuzz tests: the `.sparse`
//! fixtures of tests/fixtures/lvm (made by make-fixtures.sh from real LVM) and a
//! checksum fixer so that mutations get past the checksum checks.
#![allow(dead_code)]
use linstor_provision_disk::observe::lvm::{self, lvm_crc, mda};
use std::path::PathBuf;

pub const FIXTURES: &[&str] = &[
    "pv-only",
    "vg-tags",
    "vg-thin",
    "vg-two-a",
    "vg-two-b",
    "vg-wrap",
    "vg-mdas-a",
    "vg-mdas-b",
    "member-ignored-a",
    "member-ignored-b",
    "two-mdas",
];

/// Decodes a `.sparse` fixture (see make-fixtures.sh) into its image.
pub fn load_image(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/lvm")
        .join(format!("{name}.sparse"));
    let raw = std::fs::read(&path).unwrap();
    assert_eq!(&raw[..8], b"LVMSPRS1");
    let u64_at = |at: usize| u64::from_le_bytes(raw[at..at + 8].try_into().unwrap());
    let mut image = vec![0u8; u64_at(8) as usize];
    for i in 0..u64_at(16) as usize {
        let rec = 24 + i * 520;
        let sector = u64_at(rec) as usize * 512;
        image[sector..sector + 512].copy_from_slice(&raw[rec + 8..rec + 520]);
    }
    image
}

pub fn get_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

pub fn put_u32(b: &mut [u8], at: usize, v: u32) {
    if let Some(s) = b.get_mut(at..at + 4) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}

pub fn put_u64(b: &mut [u8], at: usize, v: u64) {
    if let Some(s) = b.get_mut(at..at + 8) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}

/// Recomputes the text, mda-header and label checksums of a (mutated) image
/// wherever the structures still lie inside it, so mutations get past the
/// checksum checks into the parsers behind them.
pub fn fix_checksums(img: &mut [u8]) {
    const MDA: usize = 4096;
    if img.len() >= MDA + 512 && &img[MDA + 4..MDA + 20] == mda::FMTT_MAGIC {
        let size = get_u64(img, MDA + 32).unwrap_or(0);
        let off = get_u64(img, MDA + 40).unwrap_or(0);
        let len = get_u64(img, MDA + 48).unwrap_or(0);
        if size > 512 && off >= 512 && off < size && len > 0 && len <= size - 512 {
            let first = len.min(size - off);
            let a = MDA as u64 + off;
            let b = MDA as u64 + 512;
            let (fa, sb) = (a + first, b + (len - first));
            if fa <= img.len() as u64 && sb <= img.len() as u64 {
                let crc = lvm::calc_crc(
                    lvm_crc(&img[a as usize..fa as usize]),
                    &img[b as usize..sb as usize],
                );
                put_u32(img, MDA + 56, crc);
            }
        }
        let crc = lvm_crc(&img[MDA + 4..MDA + 512]);
        put_u32(img, MDA, crc);
    }
    if img.len() >= 1024 {
        let crc = lvm_crc(&img[512 + 20..1024]);
        put_u32(img, 512 + 16, crc);
    }
}
