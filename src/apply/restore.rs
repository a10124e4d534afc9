//! Restoring a torn metadata commit with LVM's own `pvck --repair` (see
//! [`crate::plan`]'s torn-metadata state): the planned intact copy is read off the
//! partition again and checked against the checksum the plan recorded, put in an
//! anonymous in-memory file (`memfd`: nothing is left behind on any filesystem, a
//! read-only root included), and pvck reads it through `/proc/self/fd/N` — the same
//! process, since liblvm2cmd runs in it.
use super::command::CONFIG_OVERRIDE;
use super::ApplyError;
use crate::observe::lvm::{mda, LvmReadError, MdaHeader, RawLocn};
use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Where the intact copy to restore is (all from the plan).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyAt {
    pub area_start: u64,
    pub area_size: u64,
    /// From the area start.
    pub offset: u64,
    /// With the terminating NUL.
    pub size: u64,
    pub checksum: u32,
}

/// The copy's text without its terminating NUL (what `pvck -f` reads: it adds the
/// NUL back and sums text and NUL as LVM did), read off `partition` and checked.
pub fn read_copy(partition: &Path, copy: &CopyAt) -> Result<Vec<u8>, ApplyError> {
    let changed = |why: String| ApplyError::MetadataCopyChanged {
        device: partition.to_path_buf(),
        at: copy.area_start.saturating_add(copy.offset),
        why,
    };
    let header = MdaHeader {
        start: copy.area_start,
        size: copy.area_size,
        raw_locns: Vec::new(),
    };
    let locn = RawLocn {
        offset: copy.offset,
        size: copy.size,
        checksum: copy.checksum,
        flags: 0,
    };
    let mut device = crate::ffi::open::open_read_only(partition, 0)
        .map(crate::observe::lvm::PositionedReader::new)
        .map_err(|e| changed(format!("cannot open it: {e}")))?;
    mda::read_metadata_text(&mut device, &header, &locn)
        .map_err(|e: LvmReadError| changed(e.to_string()))
}

/// Zeroes the sector holding LVM's label (`LABELONE`, in the first four sectors),
/// as `pvremove` does, and returns its number. Only for a PV whose first commit
/// tore: LVM's own `pvcreate -ff` and `pvremove -ff` rescan the device first, fail
/// on the torn text and stop ("Failed to rescan devs excl", LVM 2.03.16), and
/// libblkid's wipe erases only the `LVM2 001` type, leaving a label that no longer
/// sums. With the label gone the partition is blank and is provisioned afresh.
pub fn erase_label(partition: &Path) -> std::io::Result<u64> {
    use std::os::unix::fs::FileExt;
    let device = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(partition)?;
    let mut head = [0u8; 2048];
    device.read_exact_at(&mut head, 0)?;
    let sector = head
        .chunks(512)
        .position(|s| s.starts_with(b"LABELONE"))
        .ok_or_else(|| {
            std::io::Error::other("no LVM label (LABELONE) in the first four sectors")
        })?;
    let at = (sector as u64) * 512;
    device.write_all_at(&[0u8; 512], at)?;
    device.sync_all()?;
    Ok(sector as u64)
}

/// An anonymous file holding `text`, and the path this process opens it by.
pub struct TextFile {
    file: File,
    pub path: PathBuf,
}

impl TextFile {
    pub fn new(text: &[u8]) -> Result<TextFile, ApplyError> {
        let io = |e: std::io::Error| ApplyError::TextFile(e);
        let fd = nix::sys::memfd::memfd_create(
            c"linstor-provision-disk-metadata",
            nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC,
        )
        .map_err(|e| io(e.into()))?;
        let mut file = File::from(fd);
        file.write_all(text).map_err(io)?;
        let path = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
        Ok(TextFile { file, path })
    }

    /// Keeps the file open until here.
    pub fn close(self) {
        drop(self.file);
    }
}

/// `pvck --repair` from `file` onto `partition`: it rewrites the PV header and the
/// metadata area (text right after the header, then the header pointing at it),
/// the PV's uuid kept from its header (LVM 2.03.16 `tools/pvck.c`,
/// `_repair_pv_header`, `_repair_metadata`). Without `--file` LVM 2.03.16 refuses.
/// Not scoped with `--devices`: pvck's repair sets up the one device it is given
/// without the devices list and then refuses it as "not in devices list" (seen in
/// the VM). The devices file is turned off for the same reason (the PV may not be
/// entered yet). Without either, pvck looks for the PV's uuid on every device of
/// the host (`label_scan_for_pvid`); a device filter accepting only the partition
/// keeps it to that one device.
pub fn command_line(partition: &Path, file: &Path) -> Vec<String> {
    let only = only_this_device(partition);
    vec![
        "pvck".into(),
        "--repair".into(),
        "--yes".into(),
        "--file".into(),
        file.display().to_string(),
        partition.display().to_string(),
        "--config".into(),
        format!("{CONFIG_OVERRIDE}{NO_DEVICES_FILE}devices{{filter={only}global_filter={only}}}"),
    ]
}

/// See [`command_line`].
const NO_DEVICES_FILE: &str = "devices{use_devicesfile=0}";

/// An LVM filter list accepting the device at `partition` (by that name) and
/// rejecting every other: `["a|^/dev/vda1$|","r|.*|"]`, regex metacharacters of the
/// name escaped.
fn only_this_device(partition: &Path) -> String {
    let mut pattern = String::from("^");
    for c in partition.display().to_string().chars() {
        if "\\^$.|?*+()[]{}\"".contains(c) {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    format!("[\"a|{pattern}$|\",\"r|.*|\"]")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn the_text_file_reads_back_through_proc() {
        let file = match TextFile::new(b"vg {\n}\n") {
            Ok(f) => f,
            Err(e) => panic!("{e}"),
        };
        let mut back = String::new();
        let opened = File::open(&file.path).and_then(|mut f| f.read_to_string(&mut back));
        assert!(opened.is_ok(), "{opened:?}");
        assert_eq!(back, "vg {\n}\n");
        let line = command_line(Path::new("/dev/vda1"), &file.path);
        assert_eq!(
            line[..6].join(" "),
            format!(
                "pvck --repair --yes --file {} /dev/vda1",
                file.path.display()
            )
        );
        assert_eq!(
            line[7..].join(" "),
            format!(
                "{CONFIG_OVERRIDE}devices{{use_devicesfile=0}}devices{{filter=[\"a|^/dev/vda1$|\",\"r|.*|\"]global_filter=[\"a|^/dev/vda1$|\",\"r|.*|\"]}}"
            )
        );
        assert!(line.iter().all(|arg| !arg.contains(char::is_whitespace)));
        assert_eq!(
            only_this_device(Path::new("/dev/md/a.b+1")),
            r#"["a|^/dev/md/a\.b\+1$|","r|.*|"]"#
        );
        file.close();
    }

    #[test]
    fn erasing_the_label_zeroes_its_sector_only() {
        let path = std::env::temp_dir().join(format!("lpd-erase-{}", std::process::id()));
        let mut image = vec![7u8; 4096];
        image[512..520].copy_from_slice(b"LABELONE");
        assert!(std::fs::write(&path, &image).is_ok());
        assert_eq!(erase_label(&path).ok(), Some(1));
        let after = std::fs::read(&path).unwrap_or_default();
        assert!(after[512..1024].iter().all(|b| *b == 0));
        assert!(after[..512].iter().chain(&after[1024..]).all(|b| *b == 7));
        assert!(erase_label(&path).is_err(), "no label left to erase");
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_copy_that_changed_since_planned_is_not_restored() {
        let path = std::env::temp_dir().join(format!("lpd-restore-{}", std::process::id()));
        let mut image = vec![0u8; 8192];
        image[4096 + 512..4096 + 512 + 6].copy_from_slice(b"vg {\n}");
        assert!(std::fs::write(&path, &image).is_ok());
        let mut copy = CopyAt {
            area_start: 4096,
            area_size: 4096,
            offset: 512,
            size: 7,
            checksum: crate::observe::lvm::lvm_crc(b"vg {\n}\0"),
        };
        assert_eq!(read_copy(&path, &copy).ok(), Some(b"vg {\n}".to_vec()));
        copy.checksum ^= 1;
        assert!(matches!(
            read_copy(&path, &copy),
            Err(ApplyError::MetadataCopyChanged { at: 4608, .. })
        ));
        let _ = std::fs::remove_file(&path);
    }
}
