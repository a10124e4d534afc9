//! `cargo xtask dist`: the shipping artifact, `target/dist/linstor-provision-disk` —
//! one fully static x86_64 musl executable, stripped, with LVM2's liblvm2cmd and
//! util-linux's libblkid linked in (built by [`lvm2`] and [`libblkid`] from Debian's
//! source packages and cached under `target/`), no libudev (partitions are found
//! through sysfs and the udev database).
mod libblkid;
mod lvm2;
mod source_build;

use std::path::{Path, PathBuf};
use std::process::Command;

pub const TARGET: &str = "x86_64-unknown-linux-musl";

/// The artifact may not grow beyond this (checked after every build): 5.25 MiB.
/// Measured: 3.8 MiB with liblvm2cmd alone; 4,212,808 bytes (4.02 MiB) once
/// libblkid was linked in (signature probe, LVM's blkid wiping); 5,032,168 bytes
/// (4.80 MiB) once the host lvm.conf filters are matched (the `regex` crate).
pub const SIZE_BUDGET_BYTES: u64 = 5 * 1024 * 1024 + 256 * 1024;

/// Debian packages the static build needs (`cargo xtask deps` installs them too;
/// `cargo xtask dist` alone, e.g. in a container build, installs only these).
pub const PACKAGES: &[&str] = &[
    "musl-tools",
    "gcc",
    "make",
    "dpkg-dev",
    "xz-utils",
    "linux-libc-dev",
    "libclang-dev",
    "pkg-config",
];

/// Where the artifact lands, relative to the workspace root.
pub fn artifact_path() -> PathBuf {
    target_dir().join("dist").join("linstor-provision-disk")
}

pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace_root().join(dir),
        None => workspace_root().join("target"),
    }
}

fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Builds the artifact and returns its path.
pub fn run() -> Result<PathBuf, String> {
    let started = std::time::Instant::now();
    ensure_rust_target()?;
    let target = target_dir();
    let blkid = libblkid::ensure(&target)?;
    let lvm = lvm2::ensure(&target, &blkid)?;
    let lvm_ready = started.elapsed();
    // devicemapper-sys asks pkg-config for libdevmapper, libblkid-rs-sys for blkid:
    // answer from the static builds only, never from the host's glibc libraries.
    let pkg_config_dirs = std::env::join_paths([&lvm.pkgconfig_dir, &blkid.pkgconfig_dir])
        .map_err(|e| {
            format!("cannot put the static builds' pkgconfig folders in PKG_CONFIG_LIBDIR: {e}")
        })?;

    let mut cargo = crate::cargo();
    cargo
        .current_dir(workspace_root())
        .args(["build", "--release", "--locked", "--package"])
        .arg("linstor-provision-disk")
        .args(["--bin", "linstor-provision-disk", "--target", TARGET])
        .args([
            "--no-default-features",
            "--features",
            "lvm2cmd,static-blkid",
        ])
        .env("LVM2CMD_STATIC_DIR", &lvm.lib_dir)
        .env("BLKID_STATIC_DIR", &blkid.lib_dir)
        .env("PKG_CONFIG_ALLOW_CROSS", "1")
        .env("PKG_CONFIG_LIBDIR", &pkg_config_dirs)
        .env("PKG_CONFIG_PATH", "")
        .env("PKG_CONFIG_SYSROOT_DIR", "/")
        // A plain static executable (not static-pie), symbols stripped by rustc.
        .env(
            "CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS",
            "-C target-feature=+crt-static -C relocation-model=static -C strip=symbols",
        );
    for overriding in ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS"] {
        if std::env::var_os(overriding).is_some() {
            eprintln!("xtask: ignoring ${overriding} for the dist build (it would replace the static-link flags)");
            cargo.env_remove(overriding);
        }
    }
    crate::run(&mut cargo)?;

    let built = target
        .join(TARGET)
        .join("release")
        .join("linstor-provision-disk");
    let artifact = artifact_path();
    if let Some(dir) = artifact.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    // Copy to a temporary name and rename, so a running VM test never sees half a file.
    let partial = artifact.with_extension("partial");
    std::fs::copy(&built, &partial).map_err(|e| {
        format!(
            "cannot copy {} to {}: {e}",
            built.display(),
            partial.display()
        )
    })?;
    std::fs::rename(&partial, &artifact)
        .map_err(|e| format!("cannot rename into {}: {e}", artifact.display()))?;

    let bytes =
        std::fs::read(&artifact).map_err(|e| format!("cannot read {}: {e}", artifact.display()))?;
    check_static(&bytes).map_err(|why| format!("{} is not usable: {why}", artifact.display()))?;
    let size = bytes.len() as u64;
    eprintln!(
        "xtask: {} — static {TARGET}, stripped, LVM2 {} and libblkid {} linked in, {} bytes \
         ({:.2} MiB of the {:.2} MiB budget); LVM2 and libblkid ready after {:.1?}, total {:.1?}",
        artifact.display(),
        lvm.debian_version,
        blkid.debian_version,
        size,
        size as f64 / 1048576.0,
        SIZE_BUDGET_BYTES as f64 / 1048576.0,
        lvm_ready,
        started.elapsed()
    );
    if size > SIZE_BUDGET_BYTES {
        return Err(format!(
            "{} is {size} bytes, over the budget of {SIZE_BUDGET_BYTES} bytes ({:.2} MiB)",
            artifact.display(),
            SIZE_BUDGET_BYTES as f64 / 1048576.0
        ));
    }
    Ok(artifact)
}

/// Installs the musl standard library with rustup unless it is there already.
fn ensure_rust_target() -> Result<(), String> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output();
    match installed {
        Ok(out) if out.status.success() => {
            if String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|line| line.trim() == TARGET)
            {
                return Ok(());
            }
            crate::run(Command::new("rustup").args(["target", "add", TARGET]))
        }
        _ => {
            // No rustup: the toolchain may still ship the target (a distribution's rustc).
            let sysroot = Command::new("rustc")
                .args(["--print", "sysroot"])
                .output()
                .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
                .unwrap_or_default();
            if Path::new(&sysroot)
                .join("lib/rustlib")
                .join(TARGET)
                .is_dir()
            {
                Ok(())
            } else {
                Err(format!(
                    "the Rust standard library for {TARGET} is not installed and rustup is not available; \
                     install rustup (https://rustup.rs) and run `rustup target add {TARGET}`"
                ))
            }
        }
    }
}

/// Checks the ELF header: a 64-bit x86-64 executable of type EXEC (static-pie would
/// be DYN) with no program interpreter and no dynamic section.
fn check_static(bytes: &[u8]) -> Result<(), String> {
    const PT_DYNAMIC: u32 = 2;
    const PT_INTERP: u32 = 3;
    const ET_EXEC: u16 = 2;
    const EM_X86_64: u16 = 62;
    let u16_at = |at: usize| -> Option<u16> {
        Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
    };
    let u32_at = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
    };
    let u64_at = |at: usize| -> Option<u64> {
        Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
    };
    if !bytes.starts_with(b"\x7fELF\x02\x01") {
        return Err("not a 64-bit little-endian ELF file".into());
    }
    if u16_at(18) != Some(EM_X86_64) {
        return Err("not an x86-64 executable".into());
    }
    if u16_at(16) != Some(ET_EXEC) {
        return Err(
            "not a plain static executable (ELF type is not EXEC; static-pie or dynamic)".into(),
        );
    }
    let phoff = u64_at(32).ok_or("truncated ELF header")? as usize;
    let phentsize = usize::from(u16_at(54).ok_or("truncated ELF header")?);
    let phnum = usize::from(u16_at(56).ok_or("truncated ELF header")?);
    for index in 0..phnum {
        let kind = u32_at(phoff + index * phentsize).ok_or("truncated program headers")?;
        if kind == PT_INTERP {
            return Err("it has a program interpreter (dynamically linked)".into());
        }
        if kind == PT_DYNAMIC {
            return Err("it has a dynamic section (needs shared libraries)".into());
        }
    }
    Ok(())
}
