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

pub use libblkid::UTIL_LINUX_UPSTREAM;
pub use lvm2::LVM2_UPSTREAM;

use std::path::{Path, PathBuf};
use std::process::Command;

pub use crate::packages::Arch;

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
        crate::packages::install_for_dist(arch)?;
        run_for(arch)?;
    }
    Ok(())
}

/// The artifact may not grow beyond this (checked after every build): 5.25 MiB.
/// Measured: 3.8 MiB with liblvm2cmd alone; 4,212,808 bytes (4.02 MiB) once
/// libblkid was linked in (signature probe, LVM's blkid wiping); 5,032,168 bytes
/// (4.80 MiB) once the host lvm.conf filters are matched (the `regex` crate).
/// The same budget holds for aarch64: 4,707,192 bytes (4.49 MiB) against x86_64's
/// 5,065,000 from the same source.
pub const SIZE_BUDGET_BYTES: u64 = 5 * 1024 * 1024 + 256 * 1024;

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

pub use crate::packages::{target_dir, workspace_root};

/// Builds the x86_64 artifact and returns its path.
pub fn run() -> Result<PathBuf, String> {
    run_for(Arch::X86_64)
}

/// What a cargo invocation on the shipped configuration needs: the static LVM2 and
/// libblkid builds for one architecture and the environment that points the Rust
/// build at them (the dist build, and the musl clippy and unit tests of `cargo
/// xtask test`).
pub struct StaticBuild {
    pub arch: Arch,
    lvm: lvm2::StaticLvm,
    blkid: libblkid::StaticBlkid,
}

/// The feature set that ships: no libudev, liblvm2cmd and libblkid linked statically.
pub const SHIPPED_FEATURES: &str = "lvm2cmd,static-blkid";

impl StaticBuild {
    /// Builds (or finds cached) the static LVM2 and libblkid for `arch`, installing
    /// the musl standard library first if needed.
    pub fn ensure(arch: Arch) -> Result<StaticBuild, String> {
        ensure_rust_target(arch.rust_target())?;
        let target = target_dir();
        let c_toolchain = toolchain::for_arch(arch);
        let blkid = libblkid::ensure(&target, &c_toolchain)?;
        let lvm = lvm2::ensure(&target, &c_toolchain, &blkid)?;
        Ok(StaticBuild { arch, lvm, blkid })
    }

    /// `cargo <args…> --target <musl> --no-default-features --features
    /// lvm2cmd,static-blkid` with the environment of the dist build: pkg-config
    /// answers from the static builds only, the static link flags, the paths
    /// remapped (see [`remap_path_flags`]), the aarch64 linker and headers.
    pub fn cargo(&self, args: &[&str]) -> Result<Command, String> {
        let rust_target = self.arch.rust_target();
        // devicemapper-sys asks pkg-config for libdevmapper, libblkid-rs-sys for blkid:
        // answer from the static builds only, never from the host's glibc libraries.
        // devicemapper's build script also links devicemapper-sys built for the host,
        // which sees these folders too: switching between architectures reruns that
        // probe and recompiles the Rust part (about a minute); the output is the same.
        let pkg_config_dirs =
            std::env::join_paths([&self.lvm.pkgconfig_dir, &self.blkid.pkgconfig_dir]).map_err(
                |e| {
                    format!(
                        "cannot put the static builds' pkgconfig folders in PKG_CONFIG_LIBDIR: {e}"
                    )
                },
            )?;
        let remap = remap_path_flags(&build_paths());
        if let Some(flag) = remap.iter().find(|f| f.contains(char::is_whitespace)) {
            return Err(format!(
                "cannot pass `{flag}` to rustc through CARGO_TARGET_*_RUSTFLAGS (space-separated): \
                 build from a checkout, target folder and cargo home without whitespace in their paths"
            ));
        }
        let mut cargo = crate::packages::cargo();
        cargo
            .current_dir(workspace_root())
            .args(args)
            .args(["--target", rust_target])
            .args(["--no-default-features", "--features", SHIPPED_FEATURES])
            .env("LVM2CMD_STATIC_DIR", &self.lvm.lib_dir)
            // `--version` names the LVM2 release linked in (build.rs).
            .env("LVM2CMD_VERSION", &self.lvm.debian_version)
            .env("BLKID_STATIC_DIR", &self.blkid.lib_dir)
            .env("PKG_CONFIG_ALLOW_CROSS", "1")
            .env("PKG_CONFIG_LIBDIR", &pkg_config_dirs)
            .env("PKG_CONFIG_PATH", "")
            .env("PKG_CONFIG_SYSROOT_DIR", "/")
            // A plain static executable (not static-pie), symbols stripped by rustc,
            // and no path of this machine in it.
            .env(
                format!("{}_RUSTFLAGS", cargo_target_env(rust_target)),
                format!(
                    "-C target-feature=+crt-static -C relocation-model=static -C strip=symbols {}",
                    remap.join(" ")
                ),
            );
        if self.arch == Arch::Aarch64 {
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
                eprintln!("xtask: ignoring ${overriding} for the static build (it would replace the static-link flags)");
                cargo.env_remove(overriding);
            }
        }
        Ok(cargo)
    }
}

/// The folders of this machine a build may see and must not leave in the artifact.
#[derive(Debug)]
pub struct BuildPaths {
    /// The checkout.
    pub workspace: PathBuf,
    /// `target/` (or `$CARGO_TARGET_DIR`): the LVM2 and libblkid builds, OUT_DIR.
    pub target: PathBuf,
    /// `$CARGO_HOME` (default `~/.cargo`): the registry's sources.
    pub cargo_home: Option<PathBuf>,
    /// `$RUSTUP_HOME` (default `~/.rustup`): the toolchain.
    pub rustup_home: Option<PathBuf>,
}

/// This build's [`BuildPaths`].
pub fn build_paths() -> BuildPaths {
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from);
    let from_env = |name: &str, default: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(default)))
    };
    BuildPaths {
        workspace: workspace_root(),
        target: target_dir(),
        cargo_home: from_env("CARGO_HOME", ".cargo"),
        rustup_home: from_env("RUSTUP_HOME", ".rustup"),
    }
}

/// rustc flags that replace this machine's folders in every path the artifact keeps
/// (panic locations of registry crates, files included from OUT_DIR) with fixed
/// names, so the artifact is the same from any checkout and any cargo home. rustc
/// applies the last matching mapping, so the most specific comes last.
pub fn remap_path_flags(paths: &BuildPaths) -> Vec<String> {
    let mut flags = Vec::new();
    let mut remap = |from: &Path, to: &str| {
        flags.push(format!("--remap-path-prefix={}={to}", from.display()));
    };
    if let Some(rustup) = &paths.rustup_home {
        remap(rustup, "/rustup");
    }
    if let Some(cargo) = &paths.cargo_home {
        remap(cargo, "/cargo");
    }
    remap(&paths.workspace, "/build");
    remap(&paths.target, "/build/target");
    flags
}

/// Fails when `bytes` contain one of `paths`' folders (the checkout, the target
/// folder with the LVM2 and libblkid builds, the cargo and rustup homes): the
/// artifact would then differ between checkouts and tell where it was built.
pub fn check_no_build_paths(bytes: &[u8], paths: &BuildPaths) -> Result<(), String> {
    let folders = [
        ("the checkout", Some(&paths.workspace)),
        ("the target folder", Some(&paths.target)),
        ("the cargo home", paths.cargo_home.as_ref()),
        ("the rustup home", paths.rustup_home.as_ref()),
    ];
    let mut found = Vec::new();
    for (what, folder) in folders {
        let Some(folder) = folder else { continue };
        // "/" alone would match every path; such a folder cannot be told apart.
        if folder.parent().is_none() {
            continue;
        }
        let needle = folder.as_os_str().as_encoded_bytes();
        if let Some(at) = bytes.windows(needle.len()).position(|w| w == needle) {
            let end = bytes[at..]
                .iter()
                .position(|&b| b == 0 || b == b'\n')
                .map_or(bytes.len(), |n| at + n.min(200));
            found.push(format!(
                "{what} {} at byte {at}: {:?}",
                folder.display(),
                String::from_utf8_lossy(&bytes[at..end])
            ));
        }
    }
    if found.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "it embeds a folder of the machine that built it (so it is not the same from \
             another checkout): {}",
            found.join("; ")
        ))
    }
}

/// Builds the artifact for `arch`, checks that it is a static executable for that
/// machine within [`SIZE_BUDGET_BYTES`] that names no folder of the build machine,
/// and returns its path. For aarch64 it first installs the cross toolchain's
/// packages (as the x86_64 build's are installed by its callers).
pub fn run_for(arch: Arch) -> Result<PathBuf, String> {
    let started = std::time::Instant::now();
    if arch != Arch::X86_64 {
        crate::packages::install_for_dist(arch)?;
    }
    let rust_target = arch.rust_target();
    let target = target_dir();
    let build = StaticBuild::ensure(arch)?;
    let lvm_ready = started.elapsed();
    let mut cargo = build.cargo(&[
        "build",
        "--release",
        "--locked",
        "--package",
        "linstor-provision-disk",
        "--bin",
        "linstor-provision-disk",
    ])?;
    crate::packages::run(&mut cargo)?;

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
        .and_then(|()| check_no_build_paths(&bytes, &build_paths()))
        .map_err(|why| format!("{} is not usable: {why}", artifact.display()))?;
    let size = bytes.len() as u64;
    eprintln!(
        "xtask: {} — static {rust_target}, stripped, LVM2 {} and libblkid {} linked in, {} bytes \
         ({:.2} MiB of the {:.2} MiB budget); LVM2 and libblkid ready after {:.1?}, total {:.1?}",
        artifact.display(),
        build.lvm.debian_version,
        build.blkid.debian_version,
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
            crate::packages::run(Command::new("rustup").args(["target", "add", rust_target]))
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
