//! `cargo xtask image`: the container image for amd64 and arm64, built without a
//! daemon from the static artifacts of both architectures and Debian's
//! thin-provisioning-tools of each, as archives under `target/image/`:
//!
//! - `linstor-provision-disk.oci.tar`: an OCI image layout in a tar whose one tag is a
//!   multi-arch image index (`skopeo copy oci-archive:…`, `podman load -i`, `ctr
//!   images import` pick the machine's platform);
//! - `linstor-provision-disk.docker.tar` (amd64) and
//!   `linstor-provision-disk.arm64.docker.tar`: each variant as a docker-archive
//!   (`docker load`, `ctr -n k8s.io images import`), converted by skopeo — a
//!   docker-archive holds one platform, so each architecture gets its own file.
//!
//! `cargo xtask image --rootfs-only` writes only the amd64 image's files to
//! `target/image/rootfs/`; the Dockerfile's final stage copies that folder, so both
//! routes ship the same files (checked by the tests in [`tests`]).
//!
//! One layer per variant, `FROM scratch`: the binary, `homelab-helper` linking to it,
//! thin_check with exactly the loader and libraries it loads (this machine's packages
//! for this machine's architecture, Debian's packages of the other one downloaded and
//! unpacked by [`debs`]), `/tmp`, and the licence texts. Reproducible: fixed
//! timestamps (`SOURCE_DATE_EPOCH`, else the last commit's time), owner 0:0, sorted
//! entries and a fixed gzip header give the same digests on every build.
mod crate_licences;
pub use crate_licences::linked_crates;
mod debs;
mod libraries;
mod licences;
mod oci;
mod rootfs;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::packages::Arch;

/// The architectures the image index lists, in its order.
pub const ARCHES: [Arch; 2] = [Arch::X86_64, Arch::Aarch64];

/// The image's name; the tag is the package version.
pub const NAME: &str = "linstor-provision-disk";

/// Where the image's files and archives land, below the target folder.
pub const IMAGE_SUBDIR: &str = "image";
pub const ROOTFS_SUBDIR: &str = "rootfs";

/// No variant's uncompressed layer may grow beyond this (checked after every build,
/// for each architecture). Measured for amd64 at 0.1.0: 12,614,144 bytes (12.03 MiB):
/// the binary 4.95 MiB (metrics, torn-metadata recovery, sizing and the direct GPT
/// read added 0.17 MiB), thin_check's pdata_tools 1.31 MiB, its libraries and loader
/// 5.31 MiB, licence texts 0.26 MiB, the rest the image's own files.
pub const SIZE_BUDGET_BYTES: u64 = 12 * 1024 * 1024 + 512 * 1024;

/// Runtime settings of the image; the Dockerfile's final stage declares the same.
pub const ENV: &[&str] = &["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"];
pub const ENTRYPOINT: &[&str] = &[rootfs::BINARY];

/// SPDX expression for everything the image ships: this tool and LVM2's command
/// library (GPL-2.0-only), libdevmapper (LGPL-2.1-only), thin-provisioning-tools
/// (GPL-3.0-or-later), glibc, libaio and libblkid (LGPL-2.1-or-later), libstdc++ and
/// libgcc_s (GPL-3.0-or-later WITH GCC-exception-3.1), expat and musl (MIT), and the
/// Rust crates linked in: MIT (every dual-licensed one offers it) and MPL-2.0 (the
/// devicemapper and libblkid-rs bindings).
pub const LICENSES: &str = "GPL-2.0-only AND LGPL-2.1-only AND GPL-3.0-or-later AND \
     LGPL-2.1-or-later AND GPL-3.0-or-later WITH GCC-exception-3.1 AND MIT AND MPL-2.0";

/// What the image is: from the main package's Cargo.toml and the build's clock.
#[derive(Clone, Debug)]
pub struct Metadata {
    pub version: String,
    pub description: String,
    /// Where the sources are published (`SOURCE` of deploy/image.env).
    pub source: String,
    /// Seconds since 1970 for every timestamp in the image.
    pub epoch: u64,
}

impl Metadata {
    pub fn of_workspace() -> Result<Metadata, String> {
        let manifest = workspace_root().join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest)
            .map_err(|e| format!("cannot read {}: {e}", manifest.display()))?;
        let field = |name: &str| {
            package_field(&text, name).ok_or_else(|| {
                format!(
                    "{} has no `{name} = \"…\"` line in its [package] section; the image's \
                     labels need it",
                    manifest.display()
                )
            })
        };
        Ok(Metadata {
            version: field("version")?,
            description: field("description")?,
            source: crate::image_name::ImageName::configured()?.source,
            epoch: source_date_epoch()?,
        })
    }

    /// `linstor-provision-disk:<version>`.
    pub fn reference(&self) -> String {
        format!("{NAME}:{}", self.version)
    }

    /// The image's OCI labels.
    pub fn labels(&self) -> BTreeMap<String, String> {
        [
            ("org.opencontainers.image.title", NAME),
            ("org.opencontainers.image.description", &self.description),
            ("org.opencontainers.image.version", &self.version),
            ("org.opencontainers.image.source", &self.source),
            ("org.opencontainers.image.licenses", LICENSES),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
    }
}

pub use crate::packages::package_field;

/// `SOURCE_DATE_EPOCH` if set, else the last commit's time, else 0 (a source tree
/// without git, e.g. inside `docker build`).
fn source_date_epoch() -> Result<u64, String> {
    // 9999-12-31T23:59:59Z: timestamps keep four-digit years.
    const LAST: u64 = 253_402_300_799;
    if let Ok(value) = std::env::var("SOURCE_DATE_EPOCH") {
        return match value.trim().parse() {
            Ok(seconds) if seconds <= LAST => Ok(seconds),
            _ => Err(format!(
                "SOURCE_DATE_EPOCH is {value:?}, expected whole seconds since 1970 (at most {LAST})"
            )),
        };
    }
    let commit_time = Command::new("git")
        .current_dir(workspace_root())
        .args(["log", "-1", "--format=%ct"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
        .filter(|seconds| *seconds <= LAST);
    Ok(match commit_time {
        Some(seconds) => {
            eprintln!("xtask: image timestamps: the last commit's time ({seconds})");
            seconds
        }
        None => {
            eprintln!(
                "xtask: image timestamps: 0 (1970) — no SOURCE_DATE_EPOCH and no readable git \
                 history here; set SOURCE_DATE_EPOCH for a meaningful creation date"
            );
            0
        }
    })
}

pub use crate::packages::workspace_root;

/// `target/image/`, or another folder below the target folder.
pub fn image_dir(subdir: &str) -> PathBuf {
    crate::packages::target_dir().join(subdir)
}

pub fn oci_archive_path(dir: &Path) -> PathBuf {
    dir.join(format!("{NAME}.oci.tar"))
}

/// The docker-archive of one variant: amd64 keeps the name it always had.
pub fn docker_archive_path(dir: &Path, arch: Arch) -> PathBuf {
    match arch {
        Arch::X86_64 => dir.join(format!("{NAME}.docker.tar")),
        _ => dir.join(format!("{NAME}.{}.docker.tar", arch.oci_arch())),
    }
}

/// `cargo xtask image [--rootfs-only]`.
pub fn run(args: &[String]) -> Result<(), String> {
    let rootfs_only = match args {
        [] => false,
        [flag] if flag == "--rootfs-only" => true,
        _ => {
            return Err(format!(
                "image takes no arguments or `--rootfs-only`, got {args:?}"
            ))
        }
    };
    crate::packages::install_packages(crate::packages::IMAGE)?;
    if rootfs_only {
        let artifact = crate::dist::run()?;
        let meta = Metadata::of_workspace()?;
        let files = rootfs::plan(&artifact, &meta, Arch::X86_64)?;
        let dir = image_dir(IMAGE_SUBDIR).join(ROOTFS_SUBDIR);
        rootfs::write_dir(&files, &dir, meta.epoch)?;
        eprintln!(
            "xtask: {} — the image's root filesystem ({} entries, {} bytes in files)",
            dir.display(),
            files.len(),
            rootfs::file_bytes(&files)
        );
        return Ok(());
    }
    crate::packages::install_packages(crate::packages::IMAGE_ARCHIVES)?;
    let mut artifacts = Vec::new();
    for arch in ARCHES {
        artifacts.push((arch, crate::dist::run_for(arch)?));
    }
    build(&artifacts, &image_dir(IMAGE_SUBDIR)).map(drop)
}

/// What one build produced.
#[derive(Clone, Debug)]
pub struct Built {
    /// `sha256:…` of the multi-arch image index (the tag's target).
    pub index_digest: String,
    /// Each variant's architecture and image manifest digest.
    pub manifests: Vec<(Arch, String)>,
    pub oci_archive: PathBuf,
}

/// Builds the archives of the image into `dir`, one variant per `(arch, artifact)`.
pub fn build(artifacts: &[(Arch, PathBuf)], dir: &Path) -> Result<Built, String> {
    if artifacts.is_empty() {
        return Err("the image needs the artifact of at least one architecture".into());
    }
    let meta = Metadata::of_workspace()?;
    let mut layers = Vec::new();
    for (index, (arch, artifact)) in artifacts.iter().enumerate() {
        if artifacts[..index].iter().any(|(seen, _)| seen == arch) {
            return Err(format!("two artifacts for {}", arch.oci_arch()));
        }
        rootfs::check_artifact(artifact, *arch)?;
        let files = rootfs::plan(artifact, &meta, *arch)?;
        let layer = rootfs::tar_of(&files, meta.epoch)?;
        let layer_size = layer.len() as u64;
        if layer_size > SIZE_BUDGET_BYTES {
            return Err(format!(
                "the {} image's layer is {layer_size} bytes uncompressed, over the budget of \
                 {SIZE_BUDGET_BYTES} bytes ({:.2} MiB); see what grew with \
                 `cargo xtask image --rootfs-only` (amd64) or `tar tvf` on the layer",
                arch.oci_arch(),
                SIZE_BUDGET_BYTES as f64 / 1048576.0
            ));
        }
        layers.push((*arch, files.len(), layer));
    }
    let variants: Vec<oci::Variant> = layers
        .iter()
        .map(|(arch, _, layer)| oci::Variant {
            arch: *arch,
            layer: layer.as_slice(),
        })
        .collect();
    let image = oci::archive(&variants, &meta)?;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let oci_archive = oci_archive_path(dir);
    write_atomically(&oci_archive, &image.archive)?;
    eprintln!(
        "xtask: {} — image {}, index {}",
        oci_archive.display(),
        meta.reference(),
        image.index_digest
    );
    for ((arch, entries, layer), written) in layers.iter().zip(&image.variants) {
        let docker_archive = docker_archive_path(dir, *arch);
        oci::docker_archive(&oci_archive, &docker_archive, &meta, *arch)?;
        eprintln!(
            "xtask: {} variant: manifest {}, docker-archive {}; one layer of {entries} \
             entries: {} bytes ({:.2} MiB of the {:.2} MiB budget) uncompressed, {} bytes \
             compressed",
            arch.oci_arch(),
            written.manifest_digest,
            docker_archive.display(),
            layer.len(),
            layer.len() as f64 / 1048576.0,
            SIZE_BUDGET_BYTES as f64 / 1048576.0,
            written.layer_compressed_size,
        );
    }
    Ok(Built {
        index_digest: image.index_digest,
        manifests: image
            .variants
            .iter()
            .map(|v| (v.arch, v.manifest_digest.clone()))
            .collect(),
        oci_archive,
    })
}

/// A Debian package whose files the image ships (thin_check, its libraries, loader).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DebianPackage {
    pub name: String,
    pub version: String,
    /// dpkg's architecture of the variant that ships it.
    pub arch: String,
}

/// The Debian packages the `arch` variant's files come from (the owners of thin_check
/// and the libraries it loads, as the image build finds them), with versions.
pub fn debian_packages(arch: Arch) -> Result<Vec<DebianPackage>, String> {
    let packages = debs::for_arch(arch)?;
    let thin_check = Path::new(rootfs::THIN_CHECK);
    let mut shipped = vec![thin_check.to_path_buf()];
    shipped.extend(libraries::closure(&packages, thin_check, arch)?);
    let mut owners = std::collections::BTreeSet::new();
    for path in &shipped {
        owners.insert(licences::owning_package(&packages, path)?);
    }
    let recorded: BTreeMap<&str, &str> = packages
        .versions
        .iter()
        .filter_map(|line| line.split_once(' '))
        .collect();
    owners
        .into_iter()
        .map(|name| {
            let version = match recorded.get(name.as_str()) {
                Some(version) => version.to_string(),
                None => installed_version(&name, arch.debian_arch())?,
            };
            Ok(DebianPackage {
                name,
                version,
                arch: arch.debian_arch().to_string(),
            })
        })
        .collect()
}

/// The version of `package` installed on this machine for `arch` (dpkg-query).
pub fn installed_version(package: &str, arch: &str) -> Result<String, String> {
    for query in [format!("{package}:{arch}"), package.to_string()] {
        let out = Command::new("dpkg-query")
            .args(["-W", "-f=${Version}", &query])
            .output()
            .map_err(|e| format!("cannot run dpkg-query: {e}"))?;
        let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && !version.is_empty() {
            return Ok(version);
        }
    }
    Err(format!("dpkg-query knows no installed {package} ({arch})"))
}

/// Writes under a temporary name and renames, so a reader never sees half a file.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, bytes)
        .map_err(|e| format!("cannot write {}: {e}", partial.display()))?;
    std::fs::rename(&partial, path).map_err(|e| {
        format!(
            "cannot rename {} to {}: {e}",
            partial.display(),
            path.display()
        )
    })
}
