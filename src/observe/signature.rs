//! What a device already holds, as libblkid sees it.
//!
//! "Blank" is libblkid's verdict: util-linux's library knows the superblocks of
//! well over a hundred filesystems, raid members, crypto containers and partition
//! tables, and is what `wipefs`, `blkid`, udev and LVM itself consult. Every
//! signature it reports is listed, not only the first: superblocks, raid members
//! and crypto headers from its superblocks chain, partition tables from its
//! partitions chain. A probe that cannot be completed is an error, never "blank".
//!
//! The device is opened here, read-only and without `O_EXCL` (a PV that LVM or
//! device-mapper holds open must still be readable), and handed to libblkid.

use std::fmt;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use libblkid_rs::{BlkidProbe, BlkidProbeRet, BlkidSublks, BlkidSublksFlags};
use serde::Serialize;
use thiserror::Error;

/// libblkid's TYPE for an LVM2 physical volume label.
pub const LVM2_MEMBER: &str = "LVM2_member";

/// What libblkid says a signature is for (its USAGE value; partition tables come
/// from another chain and have none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Usage {
    Filesystem,
    Raid,
    Crypto,
    /// Swap, bcache, jbd and anything else libblkid files as "other".
    Other,
    PartitionTable,
}

impl Usage {
    /// libblkid's USAGE word; `None` for words this version does not know
    /// (reported as [`Usage::Other`], still a signature).
    fn from_blkid(word: &str) -> Option<Usage> {
        match word {
            "filesystem" => Some(Usage::Filesystem),
            "raid" => Some(Usage::Raid),
            "crypto" => Some(Usage::Crypto),
            "other" => Some(Usage::Other),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Usage::Filesystem => "filesystem",
            Usage::Raid => "raid",
            Usage::Crypto => "crypto",
            Usage::Other => "other",
            Usage::PartitionTable => "partition table",
        }
    }
}

/// One signature libblkid found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Signature {
    /// libblkid's TYPE (superblocks) or PTTYPE (partition tables), e.g. `xfs`,
    /// `crypto_LUKS`, `linux_raid_member`, `gpt`.
    #[serde(rename = "type")]
    pub type_name: String,
    pub usage: Usage,
    /// Byte offset of the magic that identified it (libblkid's SBMAGIC_OFFSET);
    /// not reported for partition tables.
    pub offset: Option<u64>,
    /// Volume label, when the format has one and it is set.
    pub label: Option<String>,
    /// The format's uuid (PTUUID for partition tables), as libblkid prints it.
    pub uuid: Option<String>,
}

impl Signature {
    /// An LVM2 PV label: the one signature this tool may find on its own partition.
    pub fn is_lvm_label(&self) -> bool {
        self.type_name == LVM2_MEMBER
    }
}

/// `f2fs (filesystem) at byte 1024, label "data"`: what libblkid found, in its words.
impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.type_name, self.usage.as_str())?;
        if let Some(offset) = self.offset {
            write!(f, " at byte {offset}")?;
        }
        if let Some(label) = &self.label {
            write!(f, ", label {label:?}")?;
        }
        if let Some(uuid) = &self.uuid {
            write!(f, ", uuid {uuid}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Error)]
pub enum ProbeError {
    #[error("cannot open {} read-only to probe it: {source}", path.display())]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "libblkid could not probe {} ({step}: {source}); nothing can be said about what it holds, \
         so it is not treated as blank — check the device (dmesg, `blkid -p {}`)",
        path.display(),
        path.display()
    )]
    Libblkid {
        path: PathBuf,
        step: &'static str,
        #[source]
        source: libblkid_rs::BlkidErr,
    },
}

/// Superblock values asked of libblkid: what is needed to name a signature and
/// where it is. BADCSUM: a superblock with a bad checksum is someone's damaged
/// data, not free space.
fn superblock_flags() -> BlkidSublksFlags {
    BlkidSublksFlags::new(vec![
        BlkidSublks::Type,
        BlkidSublks::Usage,
        BlkidSublks::Label,
        BlkidSublks::Uuid,
        BlkidSublks::Magic,
        BlkidSublks::Badcsum,
    ])
}

/// Every signature libblkid finds on the device (or image file) at `path`, in
/// the order it finds them: superblocks first, then partition tables. Each of
/// libblkid's probers reports at most once (a second copy of the same format,
/// such as a GPT's backup header, is not listed again).
pub fn probe_signatures(path: &Path) -> Result<Vec<Signature>, ProbeError> {
    // File::open is O_RDONLY | O_CLOEXEC, never O_EXCL. Declared before the probe
    // so that it is closed after libblkid lets go of the descriptor.
    let device = File::open(path).map_err(|source| ProbeError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let failed = |step: &'static str| {
        move |source: libblkid_rs::BlkidErr| ProbeError::Libblkid {
            path: path.to_path_buf(),
            step,
            source,
        }
    };
    let mut probe = BlkidProbe::new().map_err(failed("creating a probe"))?;
    // Offset 0, size 0: the whole device.
    probe
        .set_device(device.as_raw_fd(), 0, 0)
        .map_err(failed("attaching the device"))?;
    probe
        .enable_superblocks(true)
        .map_err(failed("enabling superblock probing"))?;
    probe
        .set_superblock_flags(superblock_flags())
        .map_err(failed("setting superblock flags"))?;
    probe
        .enable_partitions(true)
        .map_err(failed("enabling partition-table probing"))?;

    let mut found = Vec::new();
    // Each call runs the next prober of the next chain that matches; `Done`
    // when all chains are through.
    while let BlkidProbeRet::Success = probe.do_probe().map_err(failed("probing"))? {
        if let Some(signature) = read_signature(&probe).map_err(failed("reading a result"))? {
            found.push(signature);
        }
    }
    drop(probe);
    drop(device);
    Ok(found)
}

/// The signature of the current probe result, or `None` when the result names
/// no format (on a partition, libblkid's partitions chain also reports the
/// partition's own entry in its parent's table, which is not a signature).
fn read_signature(probe: &BlkidProbe) -> libblkid_rs::Result<Option<Signature>> {
    if let Some(type_name) = value(probe, "TYPE")? {
        let usage = value(probe, "USAGE")?
            .as_deref()
            .and_then(Usage::from_blkid)
            .unwrap_or(Usage::Other);
        let offset = value(probe, "SBMAGIC_OFFSET")?.and_then(|o| o.parse::<u64>().ok());
        return Ok(Some(Signature {
            type_name,
            usage,
            offset,
            label: value(probe, "LABEL")?,
            uuid: value(probe, "UUID")?,
        }));
    }
    if let Some(type_name) = value(probe, "PTTYPE")? {
        return Ok(Some(Signature {
            type_name,
            usage: Usage::PartitionTable,
            offset: None,
            label: None,
            uuid: value(probe, "PTUUID")?,
        }));
    }
    Ok(None)
}

/// A text value of the current result. A value that is not valid text (a label
/// in a legacy code page) is reported as such rather than failing the probe:
/// the signature is there either way.
fn value(probe: &BlkidProbe, name: &str) -> libblkid_rs::Result<Option<String>> {
    if !probe.has_value(name)? {
        return Ok(None);
    }
    match probe.lookup_value(name) {
        Ok(text) => Ok(Some(text)),
        Err(
            libblkid_rs::BlkidErr::UTF8(_)
            | libblkid_rs::BlkidErr::FromUTF8(_)
            | libblkid_rs::BlkidErr::BytesWithNull(_),
        ) => Ok(Some("(not valid UTF-8)".to_owned())),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::partition::test_tree::TempDir;
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

    fn probe(path: &Path) -> Vec<Signature> {
        match probe_signatures(path) {
            Ok(found) => found,
            Err(e) => panic!("{}: {e}", path.display()),
        }
    }

    /// The one signature on `path`, which must be of `type_name`.
    fn only(path: &Path, type_name: &str) -> Signature {
        let found = probe(path);
        match found.as_slice() {
            [one] if one.type_name == type_name => one.clone(),
            _ => panic!(
                "{}: expected only {type_name}, found {found:?}",
                path.display()
            ),
        }
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_owned())
    }

    #[test]
    fn zeroed_device_is_blank_and_unreadable_is_an_error() {
        let dir = TempDir::new("sig-none");
        let zero = image(&dir, "zero.img", 1);
        assert_eq!(probe(&zero), []);
        match probe_signatures(Path::new("/nonexistent/device")) {
            Err(e @ ProbeError::Open { .. }) => {
                let text = e.to_string();
                assert!(text.contains("/nonexistent/device"), "{text}");
            }
            other => panic!("expected ProbeError::Open, got {other:?}"),
        }
    }

    #[test]
    fn filesystems_with_label_uuid_and_offset() {
        let dir = TempDir::new("sig-fs");
        let img = image(&dir, "ext4.img", 16);
        let uuid = "0d6f0c1e-6a3b-4a5e-9c41-1f2e3d4c5b6a";
        run(
            "mkfs.ext4",
            "e2fsprogs",
            &[
                "-q",
                "-F",
                "-L",
                "data vol",
                "-U",
                uuid,
                &img.to_string_lossy(),
            ],
        );
        let ext4 = only(&img, "ext4");
        assert_eq!(
            (
                ext4.usage,
                ext4.offset,
                ext4.label.clone(),
                ext4.uuid.clone()
            ),
            (Usage::Filesystem, Some(1080), s("data vol"), s(uuid))
        );
        assert_eq!(
            ext4.to_string(),
            format!("ext4 (filesystem) at byte 1080, label \"data vol\", uuid {uuid}")
        );

        let img = image(&dir, "xfs.img", 320);
        run(
            "mkfs.xfs",
            "xfsprogs",
            &["-q", "-f", "-L", "xfslabel", &img.to_string_lossy()],
        );
        let xfs = only(&img, "xfs");
        assert_eq!((xfs.usage, xfs.offset), (Usage::Filesystem, Some(0)));
        assert_eq!(xfs.label, s("xfslabel"));

        let img = image(&dir, "f2fs.img", 128);
        run(
            "mkfs.f2fs",
            "f2fs-tools",
            &["-q", "-f", "-l", "flash", &img.to_string_lossy()],
        );
        let f2fs = only(&img, "f2fs");
        assert_eq!((f2fs.usage, f2fs.offset), (Usage::Filesystem, Some(1024)));
        assert_eq!(f2fs.label, s("flash"));
        assert_eq!(
            f2fs.to_string().split(',').next(),
            Some("f2fs (filesystem) at byte 1024")
        );

        let img = image(&dir, "exfat.img", 16);
        run(
            "mkfs.exfat",
            "exfatprogs",
            &["-L", "camera", &img.to_string_lossy()],
        );
        // libblkid 2.38 also reads the exFAT boot sector's 0x55AA as an MBR
        // (`wipefs` lists both); either way the device is not blank.
        let found = probe(&img);
        let types: Vec<&str> = found.iter().map(|s| s.type_name.as_str()).collect();
        assert_eq!(types, ["exfat", "dos"], "{found:?}");
        assert_eq!(
            (found[0].usage, found[0].offset, found[0].label.clone()),
            (Usage::Filesystem, Some(3), s("camera"))
        );
        assert_eq!(found[1].usage, Usage::PartitionTable);
    }

    #[test]
    fn swap_and_luks() {
        let dir = TempDir::new("sig-swap-luks");
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
        let swap = only(&img, "swap");
        assert_eq!((swap.usage, swap.label.clone()), (Usage::Other, s("swp")));
        assert_eq!(swap.uuid, s("11111111-2222-4333-8444-555555555555"));
        assert_eq!(swap.offset, Some(4086));

        let key = dir.path().join("key");
        if let Err(e) = std::fs::write(&key, b"test passphrase") {
            panic!("{e}");
        }
        let img = image(&dir, "luks.img", 32);
        run(
            "cryptsetup",
            "cryptsetup-bin",
            &[
                "luksFormat",
                "--batch-mode",
                "--type",
                "luks2",
                "--key-file",
                &key.to_string_lossy(),
                "--pbkdf",
                "pbkdf2",
                "--pbkdf-force-iterations",
                "1000",
                "--uuid",
                "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
                &img.to_string_lossy(),
            ],
        );
        let luks = only(&img, "crypto_LUKS");
        assert_eq!(
            (luks.usage, luks.uuid.clone()),
            (Usage::Crypto, s("9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"))
        );
    }

    #[test]
    fn partition_table_and_a_filesystem_are_both_reported() {
        let dir = TempDir::new("sig-gpt");
        let img = image(&dir, "gpt.img", 16);
        run(
            "sgdisk",
            "gdisk",
            &[
                "--clear",
                "--disk-guid=8d3a7b1c-2e4f-4a6b-9c8d-7e6f5a4b3c2d",
                "--new=1:2048:+4M",
                &img.to_string_lossy(),
            ],
        );
        let gpt = only(&img, "gpt");
        assert_eq!(gpt.usage, Usage::PartitionTable);
        assert_eq!(gpt.uuid, s("8d3a7b1c-2e4f-4a6b-9c8d-7e6f5a4b3c2d"));
        assert_eq!(
            gpt.to_string(),
            "gpt (partition table), uuid 8d3a7b1c-2e4f-4a6b-9c8d-7e6f5a4b3c2d"
        );

        // A filesystem made over the whole device keeps the GPT's headers
        // (vfat writes only its boot sector): libblkid reports both.
        run(
            "mkfs.vfat",
            "dosfstools",
            &["-F", "16", "-n", "EFI", &img.to_string_lossy()],
        );
        let types: Vec<String> = probe(&img).into_iter().map(|s| s.type_name).collect();
        assert!(types.contains(&"vfat".to_owned()), "{types:?}");
    }

    /// An LVM2 label built by hand (the LVM tools cannot run in unit tests): the
    /// layout of LVM2's `label_header` and `pv_header`, as libblkid's lvm2 prober
    /// checks it (label CRC over bytes 20..512 of the label sector).
    #[test]
    fn lvm2_label_is_ours_and_other_types_are_not() {
        let dir = TempDir::new("sig-lvm");
        let img = image(&dir, "pv.img", 4);
        let mut sector = vec![0u8; 512];
        sector[0..8].copy_from_slice(b"LABELONE");
        sector[8..16].copy_from_slice(&1u64.to_le_bytes());
        sector[20..24].copy_from_slice(&32u32.to_le_bytes());
        sector[24..32].copy_from_slice(b"LVM2 001");
        sector[32..64].copy_from_slice(b"Xq3cN1m0a2b3c4d5e6f7g8h9i0j1k2l3");
        let crc = crate::observe::lvm::lvm_crc(&sector[20..]);
        sector[16..20].copy_from_slice(&crc.to_le_bytes());
        let written = std::fs::OpenOptions::new()
            .write(true)
            .open(&img)
            .and_then(|f| {
                use std::os::unix::fs::FileExt;
                f.write_all_at(&sector, 512)
            });
        if let Err(e) = written {
            panic!("{e}");
        }
        let pv = only(&img, LVM2_MEMBER);
        assert!(pv.is_lvm_label());
        assert_eq!((pv.usage, pv.offset), (Usage::Raid, Some(536)));
        assert_eq!(pv.uuid, s("Xq3cN1-m0a2-b3c4-d5e6-f7g8-h9i0-j1k2l3"));

        let other = Signature {
            type_name: "linux_raid_member".into(),
            usage: Usage::Raid,
            offset: Some(4096),
            label: None,
            uuid: None,
        };
        assert!(!other.is_lvm_label());
        assert_eq!(other.to_string(), "linux_raid_member (raid) at byte 4096");
    }
}
