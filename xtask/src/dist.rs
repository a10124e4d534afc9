//! `cargo xtask dist [--target <arch>]`: the shipping artifact,
//! `target/dist/linstor-provision-disk` (x86_64) or
//! `target/dist/aarch64/linstor-provision-disk` — one fully static musl executable,
//! stripped, with LVM2's liblvm2cmd and util-linux's libblkid linked in (built by
//! [`lvm2`] and [`libblkid`] from Debian's source packages with the C toolchain of
//! [`toolchain`], cached under `target/` per architecture), no libudev (partitions
//! are found through sysfs and the udev database).
mod libblkid;
mod lvm2;
mod source_build;
mod toolchain;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The architectures the artifact ships for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    pub const ALL: [Arch; 2] = [Arch::X86_64, Arch::Aarch64];

    /// Rust's target triple.
    pub fn rust_target(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-unknown-linux-musl",
            Arch::Aarch64 => "aarch64-unknown-linux-musl",
        }
    }

    /// Debian's name (dpkg architecture).
    pub fn debian_arch(self) -> &'static str {
        match self {
            Arch::X86_64 => "amd64",
            Arch::Aarch64 => "arm64",
        }
    }

    /// The OCI image platform's `architecture`.
    #[allow(dead_code)] // for the multi-arch image (xtask/src/image.rs)
    pub fn oci_arch(self) -> &'static str {
        match self {
            Arch::X86_64 => "amd64",
            Arch::Aarch64 => "arm64",
        }
    }

    /// The ELF header's e_machine (EM_X86_64, EM_AARCH64).
    fn elf_machine(self) -> u16 {
        match self {
            Arch::X86_64 => 62,
            Arch::Aarch64 => 183,
        }
    }

    /// The name `--target` takes; the artifact's folder below `target/dist/`.
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }

    /// One architecture by any of its usual names (Rust's, Debian's, the kernel's).
    pub fn parse(name: &str) -> Option<Arch> {
        match name {
            "x86_64" | "amd64" | "x86_64-unknown-linux-musl" => Some(Arch::X86_64),
            "aarch64" | "arm64" | "aarch64-unknown-linux-musl" => Some(Arch::Aarch64),
            _ => None,
        }
    }
}

/// The value of `dist --target`: one architecture by name, or `all`.
pub fn parse_targets(value: &str) -> Result<Vec<Arch>, String> {
    if value == "all" {
        return Ok(Arch::ALL.to_vec());
    }
    Arch::parse(value).map(|arch| vec![arch]).ok_or_else(|| {
        format!(
            "unknown --target `{value}`: expected aarch64 (or arm64), x86_64 (or amd64), or all"
        )
    })
}

/// `cargo xtask dist [--target <arch>|all]` (default x86_64): installs what each
/// build needs and builds it.
pub fn command(args: &[String]) -> Result<(), String> {
    let arches = match args {
        [] => vec![Arch::X86_64],
        [flag, value] if flag == "--target" => parse_targets(value)?,
        [flag] if flag.starts_with("--target=") => {
            parse_targets(flag.trim_start_matches("--target="))?
        }
        _ => {
            return Err(format!(
                "dist takes no arguments or `--target <aarch64|x86_64|all>`, got {args:?}"
            ))
        }
    };
    for arch in arches {
        install_packages_for(arch)?;
        run_for(arch)?;
    }
    Ok(())
}

/// Installs (as root) the Debian packages the build for `arch` needs, adding the
/// arm64 dpkg architecture first for aarch64 (`musl-dev:arm64`).
pub fn install_packages_for(arch: Arch) -> Result<(), String> {
    crate::deps::install_packages(PACKAGES)?;
    match arch {
        Arch::X86_64 => Ok(()),
        Arch::Aarch64 => {
            crate::deps::ensure_foreign_architecture(arch.debian_arch())?;
            crate::deps::install_packages(toolchain::AARCH64_PACKAGES)
        }
    }
}

/// The artifact may not grow beyond this (checked after every build): 5.25 MiB.
/// Measured: 3.8 MiB with liblvm2cmd alone; 4,212,808 bytes (4.02 MiB) once
/// libblkid was linked in (signature probe, LVM's blkid wiping); 5,032,168 bytes
/// (4.80 MiB) once the host lvm.conf filters are matched (the `regex` crate).
/// The same budget holds for aarch64: 4,707,192 bytes (4.49 MiB) against x86_64's
/// 5,065,000 from the same source.
pub const SIZE_BUDGET_BYTES: u64 = 5 * 1024 * 1024 + 256 * 1024;

/// Debian packages the static build needs (`cargo xtask deps` installs them too;
/// `cargo xtask dist` alone, e.g. in a container build, installs only these). The
/// aarch64 build adds [`toolchain::AARCH64_PACKAGES`].
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

/// Where the artifact for `arch` lands: `target/dist/linstor-provision-disk` for
/// x86_64 (the path everything else has always used), `target/dist/<arch>/…` for
/// the others.
pub fn artifact_path_for(arch: Arch) -> PathBuf {
    let dist = target_dir().join("dist");
    match arch {
        Arch::X86_64 => dist.join("linstor-provision-disk"),
        Arch::Aarch64 => dist.join(arch.name()).join("linstor-provision-disk"),
    }
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

/// Builds the x86_64 artifact and returns its path.
pub fn run() -> Result<PathBuf, String> {
    run_for(Arch::X86_64)
}

/// Builds the artifact for `arch`, checks that it is a static executable for that
/// machine within [`SIZE_BUDGET_BYTES`], and returns its path. For aarch64 it first
/// installs the cross toolchain's packages (as the x86_64 build's are installed by
/// its callers).
pub fn run_for(arch: Arch) -> Result<PathBuf, String> {
    let started = std::time::Instant::now();
    if arch != Arch::X86_64 {
        install_packages_for(arch)?;
    }
    let rust_target = arch.rust_target();
    ensure_rust_target(rust_target)?;
    let target = target_dir();
    let c_toolchain = toolchain::for_arch(arch);
    let blkid = libblkid::ensure(&target, &c_toolchain)?;
    let lvm = lvm2::ensure(&target, &c_toolchain, &blkid)?;
    let lvm_ready = started.elapsed();
    // devicemapper-sys asks pkg-config for libdevmapper, libblkid-rs-sys for blkid:
    // answer from the static builds only, never from the host's glibc libraries.
    // devicemapper's build script also links devicemapper-sys built for the host,
    // which sees these folders too: switching between architectures reruns that
    // probe and recompiles the Rust part (about a minute); the output is the same.
    let pkg_config_dirs = std::env::join_paths([&lvm.pkgconfig_dir, &blkid.pkgconfig_dir])
        .map_err(|e| {
            format!("cannot put the static builds' pkgconfig folders in PKG_CONFIG_LIBDIR: {e}")
        })?;

    let mut cargo = crate::cargo();
    cargo
        .current_dir(workspace_root())
        .args(["build", "--release", "--locked", "--package"])
        .arg("linstor-provision-disk")
        .args(["--bin", "linstor-provision-disk", "--target", rust_target])
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
            format!("{}_RUSTFLAGS", cargo_target_env(rust_target)),
            "-C target-feature=+crt-static -C relocation-model=static -C strip=symbols",
        );
    if arch == Arch::Aarch64 {
        cargo.env(
            format!("{}_LINKER", cargo_target_env(rust_target)),
            toolchain::AARCH64_RUST_LINKER,
        );
        // bindgen's clang gets `--target` from cargo; it must also read musl's
        // aarch64 headers, not the host's x86_64 glibc ones.
        let includes: Vec<String> = toolchain::AARCH64_BINDGEN_INCLUDES
            .iter()
            .map(|dir| format!("-isystem{dir}"))
            .collect();
        cargo.env(
            format!("BINDGEN_EXTRA_CLANG_ARGS_{}", rust_target.replace('-', "_")),
            includes.join(" "),
        );
    }
    for overriding in ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS"] {
        if std::env::var_os(overriding).is_some() {
            eprintln!("xtask: ignoring ${overriding} for the dist build (it would replace the static-link flags)");
            cargo.env_remove(overriding);
        }
    }
    crate::run(&mut cargo)?;

    let built = target
        .join(rust_target)
        .join("release")
        .join("linstor-provision-disk");
    let artifact = artifact_path_for(arch);
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
    check_static(&bytes, arch)
        .map_err(|why| format!("{} is not usable: {why}", artifact.display()))?;
    let size = bytes.len() as u64;
    eprintln!(
        "xtask: {} — static {rust_target}, stripped, LVM2 {} and libblkid {} linked in, {} bytes \
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

/// `CARGO_TARGET_<TRIPLE>`, the prefix of cargo's per-target settings.
fn cargo_target_env(rust_target: &str) -> String {
    format!(
        "CARGO_TARGET_{}",
        rust_target.to_ascii_uppercase().replace('-', "_")
    )
}

/// Installs the musl standard library with rustup unless it is there already.
fn ensure_rust_target(rust_target: &str) -> Result<(), String> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output();
    match installed {
        Ok(out) if out.status.success() => {
            if String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|line| line.trim() == rust_target)
            {
                return Ok(());
            }
            crate::run(Command::new("rustup").args(["target", "add", rust_target]))
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
                .join(rust_target)
                .is_dir()
            {
                Ok(())
            } else {
                Err(format!(
                    "the Rust standard library for {rust_target} is not installed and rustup is not available; \
                     install rustup (https://rustup.rs) and run `rustup target add {rust_target}`"
                ))
            }
        }
    }
}

/// Checks the ELF header: a 64-bit executable for `arch`'s machine of type EXEC
/// (static-pie would be DYN) with no program interpreter and no dynamic section.
fn check_static(bytes: &[u8], arch: Arch) -> Result<(), String> {
    const PT_DYNAMIC: u32 = 2;
    const PT_INTERP: u32 = 3;
    const ET_EXEC: u16 = 2;
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
    if u16_at(18) != Some(arch.elf_machine()) {
        return Err(format!(
            "not an {} executable (ELF machine {:?}, expected {})",
            arch.name(),
            u16_at(18),
            arch.elf_machine()
        ));
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

#[cfg(test)]
mod tests;
