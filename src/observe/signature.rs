//! What a device already holds, judged by well-known on-disk magic numbers.
//!
//! The tool refuses to turn a partition holding a filesystem, swap or LUKS
//! into a PV unless forced; this is where such content is recognised. Only
//! fixed, documented signatures count — "some non-zero bytes" is not one.
//! Everything is read from the first 128 KiB with one read-only open.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::Serialize;

use crate::observe::live::format_lvm_uuid;

/// Bytes read from the start of the device: covers btrfs's superblock at
/// 64 KiB and swap headers for pages up to 64 KiB.
const PROBE_BYTES: usize = 128 * 1024;

/// A recognised kind of content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureKind {
    LvmPv,
    Luks1,
    Luks2,
    Ext2,
    Ext3,
    Ext4,
    /// An external ext3/ext4 journal device.
    ExtJournal,
    Xfs,
    Btrfs,
    Swap,
    Vfat,
    Ntfs,
    /// A GPT partition table inside the device.
    Gpt,
}

impl SignatureKind {
    /// The name blkid and `lsblk -o FSTYPE` use, so operators can cross-check.
    pub fn blkid_type(self) -> &'static str {
        match self {
            SignatureKind::LvmPv => "LVM2_member",
            SignatureKind::Luks1 | SignatureKind::Luks2 => "crypto_LUKS",
            SignatureKind::Ext2 => "ext2",
            SignatureKind::Ext3 => "ext3",
            SignatureKind::Ext4 => "ext4",
            SignatureKind::ExtJournal => "jbd",
            SignatureKind::Xfs => "xfs",
            SignatureKind::Btrfs => "btrfs",
            SignatureKind::Swap => "swap",
            SignatureKind::Vfat => "vfat",
            SignatureKind::Ntfs => "ntfs",
            SignatureKind::Gpt => "gpt",
        }
    }

    /// A human name for messages.
    pub fn description(self) -> &'static str {
        match self {
            SignatureKind::LvmPv => "LVM2 physical volume",
            SignatureKind::Luks1 => "LUKS1 encrypted volume",
            SignatureKind::Luks2 => "LUKS2 encrypted volume",
            SignatureKind::Ext2 => "ext2 filesystem",
            SignatureKind::Ext3 => "ext3 filesystem",
            SignatureKind::Ext4 => "ext4 filesystem",
            SignatureKind::ExtJournal => "ext3/ext4 external journal",
            SignatureKind::Xfs => "XFS filesystem",
            SignatureKind::Btrfs => "btrfs filesystem",
            SignatureKind::Swap => "swap space",
            SignatureKind::Vfat => "FAT filesystem",
            SignatureKind::Ntfs => "NTFS filesystem",
            SignatureKind::Gpt => "GPT partition table",
        }
    }
}

/// One recognised signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Signature {
    pub kind: SignatureKind,
    /// Byte offset of the magic that identified it.
    pub offset: u64,
    /// Volume label, when the format has one in its header and it is set.
    pub label: Option<String>,
    /// Volume/PV uuid as the format's own tools print it.
    pub uuid: Option<String>,
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({})",
            self.kind.description(),
            self.kind.blkid_type()
        )?;
        if let Some(l) = &self.label {
            write!(f, ", label {l:?}")?;
        }
        if let Some(u) = &self.uuid {
            write!(f, ", uuid {u}")?;
        }
        write!(f, ", magic at byte {}", self.offset)
    }
}

/// The primary signature on the device at `path`, or `None` if it holds none
/// that is recognised. When several are present, an LVM2 PV label wins
/// (pvcreate overwrites the start, so deeper superblocks can be stale
/// leftovers), then LUKS, then the others; [`probe_signatures`] lists all.
pub fn probe_signature(path: &Path) -> io::Result<Option<Signature>> {
    Ok(probe_signatures(path)?.into_iter().next())
}

/// Every signature found on the device at `path`, primary first.
pub fn probe_signatures(path: &Path) -> io::Result<Vec<Signature>> {
    let with_path = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_CLOEXEC)
        .open(path)
        .map_err(with_path)?;
    let buf = read_start(file).map_err(with_path)?;
    Ok(probe_buffer(&buf))
}

/// Reads up to [`PROBE_BYTES`] (less if the device is smaller).
fn read_start(file: File) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(PROBE_BYTES);
    file.take(PROBE_BYTES as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

/// A recogniser for one format, looking at the start of a device.
type Probe = fn(&[u8]) -> Option<Signature>;

/// Every signature in `buf` (the start of a device), primary first.
pub fn probe_buffer(buf: &[u8]) -> Vec<Signature> {
    let probes: [Probe; 9] = [
        probe_lvm_pv,
        probe_luks,
        probe_ext,
        probe_xfs,
        probe_btrfs,
        probe_swap,
        probe_vfat,
        probe_ntfs,
        probe_gpt,
    ];
    probes.iter().filter_map(|p| p(buf)).collect()
}

fn bytes(buf: &[u8], at: usize, len: usize) -> Option<&[u8]> {
    buf.get(at..at.checked_add(len)?)
}

fn le_u16(buf: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes(buf, at, 2)?.try_into().ok()?))
}

fn le_u32(buf: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes(buf, at, 4)?.try_into().ok()?))
}

fn le_u64(buf: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes(buf, at, 8)?.try_into().ok()?))
}

fn has(buf: &[u8], at: usize, magic: &[u8]) -> bool {
    bytes(buf, at, magic.len()) == Some(magic)
}

/// A NUL-padded text field; `None` if empty.
fn text(buf: &[u8], at: usize, len: usize) -> Option<String> {
    let raw = bytes(buf, at, len)?;
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    let s = String::from_utf8_lossy(&raw[..end]).trim_end().to_owned();
    (!s.is_empty()).then_some(s)
}

/// A 16-byte binary uuid as 8-4-4-4-12 lower-case hex; `None` if all zero.
fn uuid16(buf: &[u8], at: usize) -> Option<String> {
    let b = bytes(buf, at, 16)?;
    if b.iter().all(|&x| x == 0) {
        return None;
    }
    let hex: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
    Some(format!(
        "{}-{}-{}-{}-{}",
        hex[..4].concat(),
        hex[4..6].concat(),
        hex[6..8].concat(),
        hex[8..10].concat(),
        hex[10..].concat()
    ))
}

fn sig(
    kind: SignatureKind,
    offset: usize,
    label: Option<String>,
    uuid: Option<String>,
) -> Option<Signature> {
    Some(Signature {
        kind,
        offset: offset as u64,
        label,
        uuid,
    })
}

/// LVM2 label: `LABELONE` at the start of one of the first four 512-byte
/// sectors, recording its own sector number, with type `LVM2 001` at +24;
/// the PV header (uuid first) sits at the offset stored at +20.
fn probe_lvm_pv(buf: &[u8]) -> Option<Signature> {
    (0..4usize).find_map(|sector| {
        let at = sector * 512;
        if !has(buf, at, b"LABELONE") || !has(buf, at + 24, b"LVM2 001") {
            return None;
        }
        if le_u64(buf, at + 8)? != sector as u64 {
            return None;
        }
        let pv_header = at + le_u32(buf, at + 20)? as usize;
        let uuid = bytes(buf, pv_header, 32)
            .and_then(|u| std::str::from_utf8(u).ok())
            .and_then(format_lvm_uuid);
        sig(SignatureKind::LvmPv, at, None, uuid)
    })
}

/// LUKS: `LUKS\xba\xbe` at 0, big-endian version at 6; uuid text at 168;
/// LUKS2 keeps a label at 24.
fn probe_luks(buf: &[u8]) -> Option<Signature> {
    if !has(buf, 0, b"LUKS\xba\xbe") {
        return None;
    }
    let version = u16::from_be_bytes(bytes(buf, 6, 2)?.try_into().ok()?);
    let uuid = text(buf, 168, 40);
    match version {
        1 => sig(SignatureKind::Luks1, 0, None, uuid),
        2 => sig(SignatureKind::Luks2, 0, text(buf, 24, 48), uuid),
        _ => None,
    }
}

/// ext2/3/4: superblock at 1024 with magic 0xEF53 at +56. Which one follows
/// the feature flags: anything ext3 cannot handle makes it ext4; else a
/// journal makes it ext3; else ext2.
fn probe_ext(buf: &[u8]) -> Option<Signature> {
    const SB: usize = 1024;
    const COMPAT_HAS_JOURNAL: u32 = 0x4;
    const INCOMPAT_JOURNAL_DEV: u32 = 0x8;
    // filetype | recover | meta_bg
    const EXT3_INCOMPAT: u32 = 0x2 | 0x4 | 0x10;
    // sparse_super | large_file | btree_dir
    const EXT3_RO_COMPAT: u32 = 0x1 | 0x2 | 0x4;
    if le_u16(buf, SB + 56)? != 0xEF53 {
        return None;
    }
    let compat = le_u32(buf, SB + 92)?;
    let incompat = le_u32(buf, SB + 96)?;
    let ro_compat = le_u32(buf, SB + 100)?;
    let kind = if incompat & INCOMPAT_JOURNAL_DEV != 0 {
        SignatureKind::ExtJournal
    } else if incompat & !EXT3_INCOMPAT != 0 || ro_compat & !EXT3_RO_COMPAT != 0 {
        SignatureKind::Ext4
    } else if compat & COMPAT_HAS_JOURNAL != 0 {
        SignatureKind::Ext3
    } else {
        SignatureKind::Ext2
    };
    sig(
        kind,
        SB + 56,
        text(buf, SB + 120, 16),
        uuid16(buf, SB + 104),
    )
}

/// XFS: `XFSB` at 0; uuid at 32, label (12 bytes) at 108.
fn probe_xfs(buf: &[u8]) -> Option<Signature> {
    if !has(buf, 0, b"XFSB") {
        return None;
    }
    sig(SignatureKind::Xfs, 0, text(buf, 108, 12), uuid16(buf, 32))
}

/// btrfs: superblock at 64 KiB, magic `_BHRfS_M` at +64, fsid at +32,
/// label (256 bytes) at +299.
fn probe_btrfs(buf: &[u8]) -> Option<Signature> {
    const SB: usize = 65536;
    if !has(buf, SB + 64, b"_BHRfS_M") {
        return None;
    }
    sig(
        SignatureKind::Btrfs,
        SB + 64,
        text(buf, SB + 299, 256),
        uuid16(buf, SB + 32),
    )
}

/// swap: `SWAPSPACE2` (or the old `SWAP-SPACE`) in the last 10 bytes of the
/// first page; page sizes from 4 KiB to 64 KiB are tried. Version-1 headers
/// carry a uuid at 1036 and a label at 1052.
fn probe_swap(buf: &[u8]) -> Option<Signature> {
    [4096usize, 8192, 16384, 32768, 65536]
        .iter()
        .find_map(|&page| {
            let at = page - 10;
            if has(buf, at, b"SWAPSPACE2") {
                sig(
                    SignatureKind::Swap,
                    at,
                    text(buf, 1052, 16),
                    uuid16(buf, 1036),
                )
            } else if has(buf, at, b"SWAP-SPACE") {
                sig(SignatureKind::Swap, at, None, None)
            } else {
                None
            }
        })
}

/// FAT: boot-sector signature 0x55AA at 510 plus the file-system type text
/// (`FAT12   `/`FAT16   ` at 54, `FAT32   ` at 82); label and serial sit just
/// before it.
fn probe_vfat(buf: &[u8]) -> Option<Signature> {
    if !has(buf, 510, &[0x55, 0xAA]) {
        return None;
    }
    let (label_at, serial_at, magic_at) = if has(buf, 82, b"FAT32   ") {
        (71, 67, 82)
    } else if has(buf, 54, b"FAT12   ") || has(buf, 54, b"FAT16   ") {
        (43, 39, 54)
    } else {
        return None;
    };
    let label = text(buf, label_at, 11).filter(|l| l != "NO NAME");
    let serial = le_u32(buf, serial_at).map(|s| format!("{:04X}-{:04X}", s >> 16, s & 0xffff));
    sig(SignatureKind::Vfat, magic_at, label, serial)
}

/// NTFS: OEM id `NTFS    ` at 3.
fn probe_ntfs(buf: &[u8]) -> Option<Signature> {
    has(buf, 3, b"NTFS    ").then_some(())?;
    sig(SignatureKind::Ntfs, 3, None, None)
}

/// GPT: header `EFI PART` at the second logical block (512- or 4096-byte sectors).
fn probe_gpt(buf: &[u8]) -> Option<Signature> {
    [512usize, 4096]
        .iter()
        .find(|&&at| has(buf, at, b"EFI PART"))
        .and_then(|&at| sig(SignatureKind::Gpt, at, None, None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::partition::test_tree::TempDir;
    use std::path::PathBuf;
    use std::process::Command;

    /// Finds `tool` on PATH or in the sbin folders (mkfs tools live there and
    /// test runners' PATH may lack them). A missing tool fails the test.
    fn tool(name: &str, package: &str) -> PathBuf {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let dirs = std::env::split_paths(&path)
            .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from));
        for dir in dirs {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
        panic!("{name} is needed by this test but not installed: apt-get install {package}");
    }

    fn run(name: &str, package: &str, args: &[&str]) {
        let out = Command::new(tool(name, package)).args(args).output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => panic!(
                "{name} {args:?} failed ({}): {}",
                o.status,
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => panic!("cannot run {name} (Debian package {package}): {e}"),
        }
    }

    /// A sparse image of `mib` MiB in `dir`.
    fn image(dir: &TempDir, name: &str, mib: u64) -> PathBuf {
        let path = dir.path().join(name);
        let made = File::create(&path).and_then(|f| f.set_len(mib << 20));
        if let Err(e) = made {
            panic!("cannot create {}: {e}", path.display());
        }
        path
    }

    fn probe(path: &Path) -> Signature {
        match probe_signature(path) {
            Ok(Some(s)) => s,
            other => panic!("{}: expected a signature, got {other:?}", path.display()),
        }
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_owned())
    }

    #[test]
    fn empty_and_random_data_are_not_signatures() {
        let dir = TempDir::new("sig-none");
        let zero = image(&dir, "zero.img", 1);
        assert!(matches!(probe_signature(&zero), Ok(None)));
        // Non-zero bytes that match no format are not a signature.
        let noise: Vec<u8> = (0..PROBE_BYTES as u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        assert!(probe_buffer(&noise).is_empty());
        // Shorter than any superblock offset.
        assert!(probe_buffer(b"LUKS").is_empty());
        let missing = probe_signature(Path::new("/nonexistent/device"));
        let text = missing.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(text.contains("/nonexistent/device"), "{text}");
    }

    #[test]
    fn ext2_ext3_ext4() {
        let dir = TempDir::new("sig-ext");
        let uuid = "0d6f0c1e-6a3b-4a5e-9c41-1f2e3d4c5b6a";
        for (mkfs, kind) in [
            ("mkfs.ext2", SignatureKind::Ext2),
            ("mkfs.ext3", SignatureKind::Ext3),
            ("mkfs.ext4", SignatureKind::Ext4),
        ] {
            let img = image(&dir, &format!("{mkfs}.img"), 16);
            let img_s = img.to_string_lossy().into_owned();
            run(
                mkfs,
                "e2fsprogs",
                &["-q", "-F", "-L", "data vol", "-U", uuid, &img_s],
            );
            let got = probe(&img);
            assert_eq!(got.kind, kind, "{mkfs}: {got}");
            assert_eq!(got.label, s("data vol"));
            assert_eq!(got.uuid, s(uuid));
        }
        // ext4 without a journal is still ext4.
        let img = image(&dir, "nojournal.img", 16);
        run(
            "mkfs.ext4",
            "e2fsprogs",
            &["-q", "-F", "-O", "^has_journal", &img.to_string_lossy()],
        );
        assert_eq!(probe(&img).kind, SignatureKind::Ext4);
    }

    #[test]
    fn xfs() {
        let dir = TempDir::new("sig-xfs");
        let img = image(&dir, "xfs.img", 320);
        run(
            "mkfs.xfs",
            "xfsprogs",
            &[
                "-q",
                "-f",
                "-L",
                "xfslabel",
                "-m",
                "uuid=3b8a1c2d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
                &img.to_string_lossy(),
            ],
        );
        let got = probe(&img);
        assert_eq!(
            (got.kind, got.label.clone()),
            (SignatureKind::Xfs, s("xfslabel")),
            "{got}"
        );
        assert_eq!(got.uuid, s("3b8a1c2d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"));
    }

    #[test]
    fn btrfs() {
        let dir = TempDir::new("sig-btrfs");
        let img = image(&dir, "btrfs.img", 128);
        run(
            "mkfs.btrfs",
            "btrfs-progs",
            &[
                "-q",
                "-f",
                "-L",
                "my btrfs",
                "-U",
                "5c6d7e8f-9a0b-4c1d-8e2f-3a4b5c6d7e8f",
                &img.to_string_lossy(),
            ],
        );
        let got = probe(&img);
        assert_eq!(
            (got.kind, got.offset),
            (SignatureKind::Btrfs, 65536 + 64),
            "{got}"
        );
        assert_eq!(got.label, s("my btrfs"));
        assert_eq!(got.uuid, s("5c6d7e8f-9a0b-4c1d-8e2f-3a4b5c6d7e8f"));
    }

    #[test]
    fn swap() {
        let dir = TempDir::new("sig-swap");
        let img = image(&dir, "swap.img", 8);
        run(
            "mkswap",
            "util-linux",
            &[
                "-q",
                "-L",
                "swp",
                "-U",
                "11111111-2222-4333-8444-555555555555",
                &img.to_string_lossy(),
            ],
        );
        let got = probe(&img);
        assert_eq!(
            (got.kind, got.label.clone()),
            (SignatureKind::Swap, s("swp")),
            "{got}"
        );
        assert_eq!(got.uuid, s("11111111-2222-4333-8444-555555555555"));
    }

    #[test]
    fn luks1_and_luks2() {
        let dir = TempDir::new("sig-luks");
        let key = dir.path().join("key");
        if let Err(e) = std::fs::write(&key, b"test passphrase") {
            panic!("{e}");
        }
        let key_s = key.to_string_lossy().into_owned();
        let uuid = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";
        for (ty, kind) in [
            ("luks1", SignatureKind::Luks1),
            ("luks2", SignatureKind::Luks2),
        ] {
            let img = image(&dir, &format!("{ty}.img"), 32);
            let mut args = vec![
                "luksFormat",
                "--batch-mode",
                "--type",
                ty,
                "--key-file",
                &key_s,
                "--pbkdf",
                "pbkdf2",
                "--pbkdf-force-iterations",
                "1000",
                "--uuid",
                uuid,
            ];
            if ty == "luks2" {
                args.extend(["--label", "secret"]);
            }
            let img_s = img.to_string_lossy().into_owned();
            args.push(&img_s);
            run("cryptsetup", "cryptsetup-bin", &args);
            let got = probe(&img);
            assert_eq!(got.kind, kind, "{got}");
            assert_eq!(got.uuid, s(uuid));
            assert_eq!(got.label, (ty == "luks2").then(|| "secret".to_owned()));
        }
    }

    #[test]
    fn vfat() {
        let dir = TempDir::new("sig-vfat");
        for (bits, mib) in [("16", 16), ("32", 64)] {
            let img = image(&dir, &format!("fat{bits}.img"), mib);
            run(
                "mkfs.vfat",
                "dosfstools",
                &[
                    "-F",
                    bits,
                    "-n",
                    "EFI",
                    "-i",
                    "1234ABCD",
                    &img.to_string_lossy(),
                ],
            );
            let got = probe(&img);
            assert_eq!(
                (got.kind, got.label.clone()),
                (SignatureKind::Vfat, s("EFI")),
                "{got}"
            );
            assert_eq!(got.uuid, s("1234-ABCD"));
        }
    }

    /// An LVM2 label built by hand (the LVM tools cannot run in unit tests);
    /// the layout is that of LVM2's `label_header` and `pv_header`.
    #[test]
    fn lvm2_pv_label_in_any_of_the_first_sectors() {
        for sector in 0..4usize {
            let mut buf = vec![0u8; 4096];
            let at = sector * 512;
            buf[at..at + 8].copy_from_slice(b"LABELONE");
            buf[at + 8..at + 16].copy_from_slice(&(sector as u64).to_le_bytes());
            buf[at + 20..at + 24].copy_from_slice(&32u32.to_le_bytes());
            buf[at + 24..at + 32].copy_from_slice(b"LVM2 001");
            buf[at + 32..at + 64].copy_from_slice(b"Xq3cN1m0a2b3c4d5e6f7g8h9i0j1k2l3");
            let sigs = probe_buffer(&buf);
            assert_eq!(sigs.len(), 1, "{sigs:?}");
            assert_eq!(sigs[0].kind, SignatureKind::LvmPv);
            assert_eq!(sigs[0].offset, at as u64);
            assert_eq!(sigs[0].uuid, s("Xq3cN1-m0a2-b3c4-d5e6-f7g8-h9i0-j1k2l3"));
            // A label that names another sector is not trusted.
            buf[at + 8] ^= 0x10;
            assert!(probe_buffer(&buf).is_empty());
        }
    }

    #[test]
    fn lvm_label_is_primary_over_stale_deeper_superblock() {
        let mut buf = vec![0u8; PROBE_BYTES];
        buf[65536 + 64..65536 + 72].copy_from_slice(b"_BHRfS_M");
        buf[512..520].copy_from_slice(b"LABELONE");
        buf[520..528].copy_from_slice(&1u64.to_le_bytes());
        buf[532..536].copy_from_slice(&32u32.to_le_bytes());
        buf[536..544].copy_from_slice(b"LVM2 001");
        let kinds: Vec<SignatureKind> = probe_buffer(&buf).iter().map(|s| s.kind).collect();
        assert_eq!(kinds, [SignatureKind::LvmPv, SignatureKind::Btrfs]);
    }

    #[test]
    fn ntfs_and_gpt_magic() {
        let mut buf = vec![0u8; 8192];
        buf[3..11].copy_from_slice(b"NTFS    ");
        buf[512..520].copy_from_slice(b"EFI PART");
        let kinds: Vec<SignatureKind> = probe_buffer(&buf).iter().map(|s| s.kind).collect();
        assert_eq!(kinds, [SignatureKind::Ntfs, SignatureKind::Gpt]);
    }

    #[test]
    fn display_reads_well() {
        let sig = Signature {
            kind: SignatureKind::Ext4,
            offset: 1080,
            label: s("data"),
            uuid: s("0d6f0c1e-6a3b-4a5e-9c41-1f2e3d4c5b6a"),
        };
        assert_eq!(
            sig.to_string(),
            "ext4 filesystem (ext4), label \"data\", uuid 0d6f0c1e-6a3b-4a5e-9c41-1f2e3d4c5b6a, magic at byte 1080"
        );
    }
}
