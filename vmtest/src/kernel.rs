//! Fetches Debian's cloud kernel with apt and unpacks it into the cache.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::host::{self, io_err, run};
use crate::VmError;

const META_PACKAGE: &str = "linux-image-cloud-amd64";

/// An unpacked kernel package.
#[derive(Debug, Clone)]
pub(crate) struct Kernel {
    pub(crate) version: String,
    pub(crate) vmlinuz: PathBuf,
    /// `<root>/lib/modules/<version>` exists, with `modules.dep` (depmod has run).
    pub(crate) root: PathBuf,
}

impl Kernel {
    pub(crate) fn modules_dir(&self) -> PathBuf {
        self.root.join("lib/modules").join(&self.version)
    }
}

/// Returns the cached kernel, downloading and unpacking it on first use.
/// `$VMTEST_KERNEL_DEB` may name a local linux-image .deb to use instead.
pub(crate) fn ensure(cache: &Path) -> Result<Kernel, VmError> {
    let dir = cache.join("kernel");
    let _lock = host::lock_cache(cache, "kernel")?;
    let ready = dir.join("READY");
    if let Ok(version) = std::fs::read_to_string(&ready) {
        let version = version.trim().to_string();
        let k = kernel_at(&dir.join("root"), &version);
        if k.vmlinuz.is_file() && k.modules_dir().join("modules.dep").is_file() {
            return Ok(k);
        }
    }
    for (prog, pkg) in [
        ("dpkg", "dpkg"),
        ("depmod", "kmod"),
        ("apt-get", "apt"),
        ("apt-cache", "apt"),
    ] {
        host::find_program(prog, pkg)?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    let dl = dir.join("download");
    std::fs::create_dir_all(&dl).map_err(io_err(format!("creating {}", dl.display())))?;

    let deb = match std::env::var_os("VMTEST_KERNEL_DEB") {
        Some(p) => PathBuf::from(p),
        None => download(&dl)?,
    };
    let root = dir.join("root");
    run(
        Command::new("dpkg").arg("-x").arg(&deb).arg(&root),
        "the kernel package could not be unpacked; delete target/vmtest-cache/kernel and retry",
    )?;
    let version = find_version(&root)?;
    run(
        Command::new("depmod").arg("-b").arg(&root).arg(&version),
        "depmod (package kmod) failed on the unpacked kernel modules",
    )?;
    let k = kernel_at(&root, &version);
    if !k.vmlinuz.is_file() {
        return Err(VmError::Spec(format!(
            "{} has no {}",
            deb.display(),
            k.vmlinuz.display()
        )));
    }
    host::write_atomic(&ready, version.as_bytes())?;
    let _ = std::fs::remove_file(&deb);
    Ok(k)
}

pub(crate) fn kernel_at(root: &Path, version: &str) -> Kernel {
    Kernel {
        version: version.to_string(),
        vmlinuz: root.join("boot").join(format!("vmlinuz-{version}")),
        root: root.to_path_buf(),
    }
}

pub(crate) fn find_version(root: &Path) -> Result<String, VmError> {
    let boot = root.join("boot");
    let entries = std::fs::read_dir(&boot).map_err(io_err(format!(
        "reading {} (is this a linux-image package?)",
        boot.display()
    )))?;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(v) = name.strip_prefix("vmlinuz-") {
            return Ok(v.to_string());
        }
    }
    Err(VmError::Spec(format!("no vmlinuz-* in {}", boot.display())))
}

fn image_package() -> Result<Option<String>, VmError> {
    let out = Command::new("apt-cache")
        .args(["depends", META_PACKAGE])
        .output()
        .map_err(io_err("running apt-cache (package apt)"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Depends:"))
        .map(|p| p.trim().to_string())
        .find(|p| p.starts_with("linux-image-") && !p.contains(' ')))
}

fn download(dl: &Path) -> Result<PathBuf, VmError> {
    let pkg = match image_package()? {
        Some(p) => p,
        None => {
            run(
                Command::new("apt-get").args(["update", "-q"]),
                "apt-get update failed; the VM tests need Debian's package archive to fetch the kernel",
            )?;
            image_package()?.ok_or_else(|| VmError::MissingTool {
                what: format!("apt metadata for {META_PACKAGE}"),
                package: META_PACKAGE.to_string(),
                detail: "apt-cache knows no such package even after apt-get update; \
                         add Debian's main archive to /etc/apt/sources.list"
                    .to_string(),
            })?
        }
    };
    run(
        Command::new("apt-get")
            .args(["download", "-q", &pkg])
            .current_dir(dl),
        &format!("could not download {pkg}; run `apt-get update` (as root) and retry"),
    )?;
    let entries = std::fs::read_dir(dl).map_err(io_err(format!("reading {}", dl.display())))?;
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "deb") {
            return Ok(p);
        }
    }
    Err(VmError::Spec(format!(
        "apt-get download {pkg} left no .deb in {}",
        dl.display()
    )))
}
