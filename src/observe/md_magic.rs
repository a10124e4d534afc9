//! md raid magic where LVM looks for it, the way LVM looks.
//!
//! `pvremove`, `pvcreate` and `vgcreate` (LVM2 2.03.16, `pvcreate_each_device` in
//! tools/toollib.c) run LVM's *full* md component check (lib/device/dev-md.c): four
//! bytes of md magic at the offsets where md 0.90 and 1.0 keep their superblock at
//! the end of the device, or Intel's IMSM signature near the end, and the device is
//! refused as "an md component". No checksum is verified, so a stale or partly
//! overwritten superblock that libblkid no longer reports (it checks md's checksum)
//! still stops them — after a reset's `lvremove` and `vgremove` have run, which use
//! only the start-of-device check. Reading the same bytes first keeps LVM from being
//! the one that stops a half-done reset. (md 1.1 and 1.2 live at the start, where
//! every LVM command checks them: nothing is lost there.)
//!
//! ```text
//!  0 ........................................................ end (size, 512-byte sectors)
//!  | LVM label, metadata area, extents ...    | 0.90 | ... |1.0 |IMSM|
//!                 0.90: ((size & ~127) - 128) sectors (64 KiB aligned, 64 KiB from the end)
//!                 1.0:  ((size - 16) & ~7) sectors     (8 KiB from the end, 4 KiB aligned)
//!                 IMSM: size×512 − 1024 bytes (− 8192 on 4 KiB logical blocks)
//! ```
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// md's superblock magic; version 1 stores it little-endian, 0.90 in the writer's
/// byte order, and LVM accepts both orders.
const MD_SB_MAGIC: u32 = 0xa92b_4efc;
/// md 0.90 reserves the last 64 KiB (aligned to 64 KiB) for its superblock.
const MD_RESERVED_SECTORS: u64 = 128;
const IMSM_SIGNATURE: &[u8] = b"Intel Raid ISM Cfg Sig. ";
const SECTOR: u64 = 512;

/// Where LVM's full md check would find md metadata on the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MdMagic {
    /// Which superblock format LVM takes it for.
    pub format: &'static str,
    /// Byte offset of the magic on the device.
    pub offset: u64,
}

/// The offsets LVM's full md check reads on a device of `size_sectors` sectors with
/// `logical_block_size`-byte blocks, and what each is for. Devices under 128 KiB
/// are never md components to LVM.
pub fn probe_offsets(size_sectors: u64, logical_block_size: u64) -> Vec<(&'static str, u64)> {
    if size_sectors < MD_RESERVED_SECTORS * 2 {
        return Vec::new();
    }
    let v090 = ((size_sectors & !(MD_RESERVED_SECTORS - 1)) - MD_RESERVED_SECTORS) * SECTOR;
    let v10 = ((size_sectors - 16) & !7) * SECTOR;
    let imsm_back = if logical_block_size == 4096 {
        8192
    } else {
        1024
    };
    let imsm = size_sectors * SECTOR - imsm_back;
    vec![("md 0.90", v090), ("md 1.0", v10), ("Intel IMSM", imsm)]
}

/// Reads the bytes LVM's full md check reads; `Ok(None)` when none holds md metadata.
pub fn find(
    device: &File,
    size_sectors: u64,
    logical_block_size: u64,
) -> io::Result<Option<MdMagic>> {
    for (format, offset) in probe_offsets(size_sectors, logical_block_size) {
        let found = if format == "Intel IMSM" {
            let mut bytes = [0u8; IMSM_SIGNATURE.len()];
            device.read_exact_at(&mut bytes, offset)?;
            bytes == IMSM_SIGNATURE
        } else {
            let mut bytes = [0u8; 4];
            device.read_exact_at(&mut bytes, offset)?;
            is_md_magic(bytes)
        };
        if found {
            return Ok(Some(MdMagic { format, offset }));
        }
    }
    Ok(None)
}

fn is_md_magic(bytes: [u8; 4]) -> bool {
    u32::from_le_bytes(bytes) == MD_SB_MAGIC || u32::from_be_bytes(bytes) == MD_SB_MAGIC
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn offsets_are_lvms() {
        // A 2 GiB partition minus 1 MiB: 4192256 sectors.
        let offsets = probe_offsets(4_192_256, 512);
        assert_eq!(
            offsets,
            vec![
                ("md 0.90", (4_192_256 - 128) * 512),
                ("md 1.0", (4_192_256 - 16) * 512),
                ("Intel IMSM", 4_192_256 * 512 - 1024),
            ]
        );
        // Not 64 KiB aligned: 0.90 rounds the end down first, 1.0 to 4 KiB.
        let odd = probe_offsets(1001, 512);
        assert_eq!(odd[0], ("md 0.90", (896 - 128) * 512));
        assert_eq!(odd[1], ("md 1.0", (985 & !7) * 512));
        assert_eq!(
            probe_offsets(4096, 4096)[2],
            ("Intel IMSM", 4096 * 512 - 8192)
        );
        assert!(probe_offsets(255, 512).is_empty());
    }

    #[test]
    fn magic_in_either_byte_order_is_found_and_zeros_are_not() {
        let path = std::env::temp_dir().join(format!("md-magic-{}", std::process::id()));
        let size_sectors = 2048u64;
        let write = |offset: Option<(u64, &[u8])>| {
            let mut file = match File::create(&path) {
                Ok(f) => f,
                Err(e) => panic!("{e}"),
            };
            if let Err(e) = file.set_len(size_sectors * SECTOR) {
                panic!("{e}");
            }
            if let Some((at, bytes)) = offset {
                if let Err(e) = file.write_all_at(bytes, at) {
                    panic!("{e}");
                }
            }
            if let Err(e) = file.flush() {
                panic!("{e}");
            }
            match File::open(&path) {
                Ok(f) => f,
                Err(e) => panic!("{e}"),
            }
        };
        let blank = write(None);
        assert!(matches!(find(&blank, size_sectors, 512), Ok(None)));
        let v10_at = (size_sectors - 16) * SECTOR;
        let le = write(Some((v10_at, &MD_SB_MAGIC.to_le_bytes())));
        assert!(matches!(
            find(&le, size_sectors, 512),
            Ok(Some(MdMagic { format: "md 1.0", offset })) if offset == v10_at
        ));
        let v090_at = (size_sectors - 128) * SECTOR;
        let be = write(Some((v090_at, &MD_SB_MAGIC.to_be_bytes())));
        assert!(matches!(
            find(&be, size_sectors, 512),
            Ok(Some(MdMagic {
                format: "md 0.90",
                ..
            }))
        ));
        let imsm = write(Some((size_sectors * SECTOR - 1024, IMSM_SIGNATURE)));
        assert!(matches!(
            find(&imsm, size_sectors, 512),
            Ok(Some(MdMagic {
                format: "Intel IMSM",
                ..
            }))
        ));
        let _ = std::fs::remove_file(&path);
    }
}
