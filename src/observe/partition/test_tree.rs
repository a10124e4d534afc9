//! Test support: a temporary folder, and a fake sysfs + udev database in it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use super::gpt_entries::{GptEntryReader, GptNames, GptReadError};
use libblkid_rs::BlkidErr;

/// A temporary folder removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("lpd-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        if let Err(e) = fs::create_dir_all(&path) {
            panic!("cannot create temp dir {}: {e}", path.display());
        }
        TempDir(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

pub(crate) fn write(path: &Path, text: &str) {
    if let Some(dir) = path.parent() {
        if let Err(e) = fs::create_dir_all(dir) {
            panic!("cannot create {}: {e}", dir.display());
        }
    }
    if let Err(e) = fs::write(path, text) {
        panic!("cannot write {}: {e}", path.display());
    }
}

/// The GPTs of a fake machine's disks, by disk name, as libblkid would read them.
#[derive(Debug, Default)]
pub(crate) struct FakeGpts {
    names: Mutex<BTreeMap<String, GptNames>>,
    unreadable: Mutex<BTreeSet<String>>,
    /// Every disk read, in order (to check that only the needed ones are).
    pub reads: Mutex<Vec<String>>,
}

impl FakeGpts {
    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn reads(&self) -> Vec<String> {
        Self::lock(&self.reads).clone()
    }
}

impl GptEntryReader for FakeGpts {
    fn read_names(&self, disk: &Path) -> Result<GptNames, GptReadError> {
        let name = disk
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Self::lock(&self.reads).push(name.clone());
        if Self::lock(&self.unreadable).contains(&name) {
            return Err(GptReadError::Open(BlkidErr::IO(
                std::io::Error::from_raw_os_error(5),
            )));
        }
        Self::lock(&self.names)
            .get(&name)
            .cloned()
            .ok_or(GptReadError::NoTable(BlkidErr::LibErr(-22)))
    }
}

/// A fake `/sys` and `/run/udev` laid out like the kernel's: device folders
/// under `devices/virtual/block/<disk>[/<part>]`, symlinked from `class/block`;
/// and the disks' GPT entry names.
pub(crate) struct FakeSysfs {
    pub dir: TempDir,
    pub gpts: Arc<FakeGpts>,
}

impl FakeSysfs {
    pub(crate) fn new() -> Self {
        FakeSysfs {
            dir: TempDir::new("sysfs"),
            gpts: Arc::new(FakeGpts::default()),
        }
    }

    /// Sets the name of GPT entry `partn` on `disk` (`None`: no name).
    pub(crate) fn set_gpt_name(&self, disk: &str, partn: u32, name: Option<&str>) {
        FakeGpts::lock(&self.gpts.names)
            .entry(disk.to_owned())
            .or_default()
            .insert(partn, name.map(str::to_owned));
    }

    /// Reading `disk`'s GPT fails from now on.
    pub(crate) fn make_gpt_unreadable(&self, disk: &str) {
        FakeGpts::lock(&self.gpts.unreadable).insert(disk.to_owned());
    }

    pub(crate) fn sys(&self) -> PathBuf {
        self.dir.path().join("sys")
    }

    pub(crate) fn run_udev(&self) -> PathBuf {
        self.dir.path().join("run/udev")
    }

    /// A backend over the fake tree, reading the fake GPTs.
    pub(crate) fn backend(&self) -> super::SysfsBackend {
        super::SysfsBackend::with_roots(self.sys(), self.run_udev())
            .with_gpt_reader(self.gpts.clone())
    }

    fn link(&self, name: &str, rel_dev_dir: &str) -> PathBuf {
        let class = self.sys().join("class/block");
        if let Err(e) = fs::create_dir_all(&class) {
            panic!("cannot create {}: {e}", class.display());
        }
        let target = format!("../../devices/virtual/block/{rel_dev_dir}");
        let link = class.join(name);
        if let Err(e) = std::os::unix::fs::symlink(&target, &link) {
            panic!("cannot link {}: {e}", link.display());
        }
        self.sys().join("devices/virtual/block").join(rel_dev_dir)
    }

    fn common(dir: &Path, major: u32, minor: u32, sectors: u64, uevent: &str) {
        write(&dir.join("dev"), &format!("{major}:{minor}\n"));
        write(&dir.join("size"), &format!("{sectors}\n"));
        write(&dir.join("uevent"), uevent);
    }

    pub(crate) fn add_disk(&self, name: &str, major: u32, minor: u32, sectors: u64) {
        let dir = self.link(name, name);
        let uevent = format!("MAJOR={major}\nMINOR={minor}\nDEVNAME={name}\nDEVTYPE=disk\n");
        Self::common(&dir, major, minor, sectors, &uevent);
    }

    /// A partition; `partname` is both its GPT entry name and the kernel's
    /// `PARTNAME` (absent if `None`), as for an ASCII name.
    pub(crate) fn add_partition(
        &self,
        disk: &str,
        name: &str,
        devno: (u32, u32),
        partn: u32,
        sectors: u64,
        partname: Option<&str>,
    ) {
        self.add_partition_bytes(
            disk,
            name,
            devno,
            partn,
            sectors,
            partname.map(str::as_bytes),
        );
        self.set_gpt_name(disk, partn, partname);
    }

    /// A partition whose kernel `PARTNAME` is exactly `partname` (any bytes);
    /// its GPT entry is left for [`FakeSysfs::set_gpt_name`].
    pub(crate) fn add_partition_bytes(
        &self,
        disk: &str,
        name: &str,
        (major, minor): (u32, u32),
        partn: u32,
        sectors: u64,
        partname: Option<&[u8]>,
    ) {
        let dir = self.link(name, &format!("{disk}/{name}"));
        let mut uevent = format!(
            "MAJOR={major}\nMINOR={minor}\nDEVNAME={name}\nDEVTYPE=partition\nDISKSEQ=9\nPARTN={partn}\n"
        )
        .into_bytes();
        if let Some(p) = partname {
            uevent.extend_from_slice(b"PARTNAME=");
            uevent.extend_from_slice(p);
            uevent.push(b'\n');
        }
        write(&dir.join("dev"), &format!("{major}:{minor}\n"));
        write(&dir.join("size"), &format!("{sectors}\n"));
        if let Err(e) = fs::write(dir.join("uevent"), &uevent) {
            panic!("cannot write {}: {e}", dir.join("uevent").display());
        }
        write(&dir.join("partition"), &format!("{partn}\n"));
    }

    pub(crate) fn add_dm(&self, name: &str, minor: u32, dm_name: &str, dm_uuid: &str) {
        let dir = self.link(name, name);
        let uevent = format!("MAJOR=253\nMINOR={minor}\nDEVNAME={name}\nDEVTYPE=disk\n");
        Self::common(&dir, 253, minor, 8192, &uevent);
        write(&dir.join("dm/name"), &format!("{dm_name}\n"));
        write(&dir.join("dm/uuid"), &format!("{dm_uuid}\n"));
    }

    pub(crate) fn add_holder(&self, dev_rel_dir: &str, holder: &str) {
        let holders = self
            .sys()
            .join("devices/virtual/block")
            .join(dev_rel_dir)
            .join("holders");
        if let Err(e) = fs::create_dir_all(&holders) {
            panic!("cannot create {}: {e}", holders.display());
        }
        let target = format!("../../../../../devices/virtual/block/{holder}");
        let target = if dev_rel_dir.contains('/') {
            format!("../{target}")
        } else {
            target
        };
        if let Err(e) = std::os::unix::fs::symlink(target, holders.join(holder)) {
            panic!("cannot link holder {holder}: {e}");
        }
    }

    /// udev database entry for `major:minor` with the given `E:` properties.
    pub(crate) fn add_udev_db(&self, major: u32, minor: u32, props: &[(&str, &str)]) {
        let mut text = String::from("S:disk/by-id/fake\nI:1234\n");
        for (k, v) in props {
            text.push_str(&format!("E:{k}={v}\n"));
        }
        text.push_str("G:systemd\nV:1\n");
        write(
            &self.run_udev().join(format!("data/b{major}:{minor}")),
            &text,
        );
    }
}
