//! `cargo xtask release [--dry-run]`: what `.github/workflows/release.yml` does on a
//! `v*` tag, except the upload (the workflow attaches `target/release-assets/*` to
//! the GitHub release with `gh`). It builds both static binaries and the multi-arch
//! image (or takes the ones `cargo xtask test` just built), writes the assets —
//! both binaries, the OCI archive, an SPDX SBOM, the manifests naming the released
//! image, `SHA256SUMS` — pushes the image index with `skopeo copy --all` as
//! `<IMAGE>` and `<repository>:latest` (`--dry-run`: into a local OCI layout,
//! `target/release-oci/`, instead of the registry), and verifies what it made:
//! the checksums, the SBOM against the crates cargo links, the pushed index's two
//! architectures, every manifest's image.
mod sbom;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::image_name::{self, ImageName};
use crate::packages::{self, Arch};

/// Where the assets land, below the target folder: exactly what the release gets.
pub const ASSETS_SUBDIR: &str = "release-assets";
/// The dry run's stand-in for the registry: an OCI layout with both tags.
pub const LAYOUT_SUBDIR: &str = "release-oci";
const CHECKSUMS: &str = "SHA256SUMS";
const NAME: &str = "linstor-provision-disk";
/// deploy/ files attached unchanged (they name no image).
const HOST_FILES: &[&str] = &[
    "deploy/linstor-provision-disk.service",
    "deploy/linstor-provision-disk.env.example",
];

/// `cargo xtask release [--dry-run]`: builds everything, then [`assemble`].
pub fn command(args: &[String]) -> Result<(), String> {
    let dry_run = match args {
        [] => false,
        [flag] if flag == "--dry-run" => true,
        _ => {
            return Err(format!(
                "release takes no arguments or `--dry-run`, got {args:?}"
            ))
        }
    };
    let version = packages::package_version()?;
    check_git_tag(&version)?;
    packages::install_packages(packages::IMAGE)?;
    packages::install_packages(packages::IMAGE_ARCHIVES)?;
    let mut artifacts = Vec::new();
    for arch in Arch::ALL {
        packages::install_for_dist(arch)?;
        artifacts.push((arch, crate::dist::run_for(arch)?));
    }
    let built = crate::image::build(
        &artifacts,
        &crate::image::image_dir(crate::image::IMAGE_SUBDIR),
    )?;
    assemble(&artifacts, &built.oci_archive, dry_run)
}

/// In a tag-triggered GitHub run the tag must be `v<Cargo.toml's version>`: the
/// image tag, the binaries' `--version` and the release name agree.
fn check_git_tag(version: &str) -> Result<(), String> {
    if std::env::var("GITHUB_REF_TYPE").as_deref() != Ok("tag") {
        return Ok(());
    }
    let tag = std::env::var("GITHUB_REF_NAME").unwrap_or_default();
    if tag != format!("v{version}") {
        return Err(format!(
            "the release tag is {tag}, but Cargo.toml's version is {version}: tag v{version} \
             (or bump the version, deploy/image.env's tag and CHANGELOG.md first)"
        ));
    }
    Ok(())
}

/// Writes the assets from built `artifacts` (one per architecture) and the image's
/// `oci_archive`, publishes the image (`dry_run`: to the local layout) and verifies.
pub fn assemble(
    artifacts: &[(Arch, PathBuf)],
    oci_archive: &Path,
    dry_run: bool,
) -> Result<(), String> {
    let started = std::time::Instant::now();
    let version = packages::package_version()?;
    let name = ImageName::configured()?;
    if name.tag() != version {
        return Err(format!(
            "the image {} is not tagged with the release version {version}; set the tag in {}",
            name.image,
            image_name::SETTING_FILE
        ));
    }
    let dir = packages::target_dir().join(ASSETS_SUBDIR);
    fresh_dir(&dir)?;
    for (arch, artifact) in artifacts {
        copy(artifact, &dir.join(binary_asset(&version, *arch)))?;
    }
    copy(oci_archive, &dir.join(format!("{NAME}-{version}.oci.tar")))?;
    write_manifests(&name, &version, &dir)?;
    let sbom = sbom_document(&name, &version, artifacts)?;
    write(
        &dir.join(sbom_asset(&version)),
        &serde_json::to_vec_pretty(&sbom).map_err(|e| format!("cannot print the SBOM: {e}"))?,
    )?;
    write_checksums(&dir)?;
    let references = publish(oci_archive, &name, &version, dry_run)?;
    verify(&dir, &name, &version, artifacts, &references)?;
    eprintln!(
        "xtask: release {version}: assets in {}, image {} {}; assembled, published and \
         verified in {:.1?}",
        dir.display(),
        name.image,
        if dry_run {
            "(dry run: pushed to the local OCI layout only)"
        } else {
            "pushed"
        },
        started.elapsed()
    );
    Ok(())
}

fn binary_asset(version: &str, arch: Arch) -> String {
    format!("{NAME}-{version}-{}-linux-musl", arch.name())
}

fn sbom_asset(version: &str) -> String {
    format!("{NAME}-{version}.spdx.json")
}

fn fresh_dir(dir: &Path) -> Result<(), String> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)
            .map_err(|e| format!("cannot remove {}: {e}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))
}

fn copy(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::copy(from, to)
        .map(drop)
        .map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), to.display()))
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The manifests rendered with the released image, and the host files, flat.
fn write_manifests(name: &ImageName, version: &str, dir: &Path) -> Result<(), String> {
    let rendered = packages::target_dir().join("release-render");
    fresh_dir(&rendered)?;
    image_name::render(name, version, &rendered)?;
    let root = packages::workspace_root();
    let sources = image_name::MANIFESTS
        .iter()
        .map(|m| rendered.join(m))
        .chain(HOST_FILES.iter().map(|f| root.join(f)));
    for source in sources {
        let file = source.file_name().ok_or("a deploy file has no name")?;
        copy(&source, &dir.join(file))?;
    }
    Ok(())
}

fn sbom_document(
    name: &ImageName,
    version: &str,
    artifacts: &[(Arch, PathBuf)],
) -> Result<serde_json::Value, String> {
    let root = packages::workspace_root();
    let mut binary = BTreeMap::new();
    let mut image = BTreeMap::new();
    let static_parts = [
        (
            "lvm2",
            crate::dist::LVM2_UPSTREAM.to_string(),
            "GPL-2.0-only AND LGPL-2.1-only",
        ),
        (
            "util-linux-libblkid",
            crate::dist::UTIL_LINUX_UPSTREAM.to_string(),
            "LGPL-2.1-or-later",
        ),
        (
            "libaio",
            crate::image::installed_version("libaio1", "amd64")?,
            "LGPL-2.1-or-later",
        ),
        (
            "musl",
            crate::image::installed_version("musl", "amd64")?,
            "MIT",
        ),
    ];
    for (arch, _) in artifacts {
        let mut components: Vec<sbom::Component> =
            crate::image::linked_crates(&root, arch.rust_target())?
                .iter()
                .map(|c| sbom::crate_component(&c.name, &c.version, &c.license))
                .collect();
        for (part, part_version, license) in &static_parts {
            components.push(sbom::Component {
                name: part.to_string(),
                version: part_version.clone(),
                license: license.to_string(),
                purl: format!("pkg:generic/{part}@{part_version}"),
            });
        }
        binary.insert(sbom::arch_name(*arch), components);
        let debs = crate::image::debian_packages(*arch)?
            .iter()
            .map(sbom::debian_component)
            .collect::<Result<Vec<_>, _>>()?;
        image.insert(sbom::arch_name(*arch), debs);
    }
    let tool = sbom::Component {
        name: NAME.into(),
        version: version.into(),
        license: "GPL-2.0-only".into(),
        purl: format!(
            "pkg:oci/{NAME}@{version}?repository_url={}",
            name.repository()
        ),
    };
    let created = rfc3339(crate::image::Metadata::of_workspace()?.epoch)?;
    Ok(sbom::document(
        &tool,
        &name.source,
        &name.image,
        &created,
        &sbom::Contents { binary, image },
    ))
}

fn rfc3339(epoch: u64) -> Result<String, String> {
    let out = Command::new("date")
        .args(["-u", "-d", &format!("@{epoch}"), "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .map_err(|e| format!("cannot run date: {e}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn sha256_hex(path: &Path) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Every asset's name, sorted (SHA256SUMS excluded).
fn asset_names(dir: &Path) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    for entry in
        std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?
    {
        let name = entry
            .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
            .file_name()
            .to_string_lossy()
            .into_owned();
        if name != CHECKSUMS {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// `sha256sum`'s format: `<hex>  <name>` per asset.
fn write_checksums(dir: &Path) -> Result<(), String> {
    let mut text = String::new();
    for name in asset_names(dir)? {
        text.push_str(&format!("{}  {name}\n", sha256_hex(&dir.join(&name))?));
    }
    write(&dir.join(CHECKSUMS), text.as_bytes())
}

/// Pushes the index under the version and `latest`; returns what to inspect.
fn publish(
    oci_archive: &Path,
    name: &ImageName,
    version: &str,
    dry_run: bool,
) -> Result<Vec<String>, String> {
    let destinations: Vec<String> = if dry_run {
        let layout = packages::target_dir().join(LAYOUT_SUBDIR);
        fresh_dir(&layout)?;
        [version, "latest"]
            .iter()
            .map(|tag| format!("oci:{}:{tag}", layout.display()))
            .collect()
    } else {
        [version, "latest"]
            .iter()
            .map(|tag| format!("docker://{}:{tag}", name.repository()))
            .collect()
    };
    for destination in &destinations {
        packages::run(
            Command::new("skopeo")
                .args(["copy", "--all", "--preserve-digests", "--quiet"])
                .arg(format!("oci-archive:{}", oci_archive.display()))
                .arg(destination),
        )?;
    }
    Ok(destinations)
}

/// The checks `cargo xtask test` relies on.
fn verify(
    dir: &Path,
    name: &ImageName,
    version: &str,
    artifacts: &[(Arch, PathBuf)],
    references: &[String],
) -> Result<(), String> {
    verify_checksums(dir)?;
    verify_sbom(&dir.join(sbom_asset(version)), artifacts)?;
    let mut indexes = BTreeSet::new();
    for reference in references {
        indexes.insert(verify_index(reference)?);
    }
    if indexes.len() != 1 {
        return Err(format!("{references:?} name different image indexes"));
    }
    verify_manifests(dir, name)?;
    verify_binary_version(dir, version)
}

fn verify_checksums(dir: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(dir.join(CHECKSUMS))
        .map_err(|e| format!("cannot read {CHECKSUMS}: {e}"))?;
    let mut listed = Vec::new();
    for line in text.lines() {
        let (hex, file) = line
            .split_once("  ")
            .ok_or_else(|| format!("{CHECKSUMS}: malformed line {line:?}"))?;
        if sha256_hex(&dir.join(file))? != hex {
            return Err(format!("{CHECKSUMS}: {file} does not match its checksum"));
        }
        listed.push(file.to_string());
    }
    if listed != asset_names(dir)? {
        return Err(format!(
            "{CHECKSUMS} lists {listed:?}, the assets are {:?}",
            asset_names(dir)?
        ));
    }
    // And as a user checks them.
    packages::run(
        Command::new("sha256sum")
            .args(["--check", "--quiet", "--strict", CHECKSUMS])
            .current_dir(dir),
    )
}

fn verify_sbom(path: &Path, artifacts: &[(Arch, PathBuf)]) -> Result<(), String> {
    let document: serde_json::Value = serde_json::from_slice(
        &std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?,
    )
    .map_err(|e| format!("{} is not JSON: {e}", path.display()))?;
    let listed: BTreeSet<(String, String)> = sbom::listed_crates(&document).into_iter().collect();
    for (arch, _) in artifacts {
        let linked = crate::image::linked_crates(&packages::workspace_root(), arch.rust_target())?;
        if linked.is_empty() {
            return Err(format!(
                "cargo resolves no crates for the {} binary",
                arch.name()
            ));
        }
        let missing: Vec<String> = linked
            .iter()
            .filter(|c| !listed.contains(&(c.name.clone(), c.version.clone())))
            .map(|c| format!("{} {}", c.name, c.version))
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "the SBOM does not list the {} binary's crates {missing:?}",
                arch.name()
            ));
        }
    }
    Ok(())
}

/// The image index at `reference` lists exactly linux/amd64 and linux/arm64.
/// Returns its digest.
fn verify_index(reference: &str) -> Result<String, String> {
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", reference])
        .output()
        .map_err(|e| format!("cannot run skopeo inspect: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "skopeo inspect --raw {reference} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let index: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("{reference}: the manifest is not JSON: {e}"))?;
    let platforms: BTreeSet<String> = index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            format!(
                "{}/{}",
                m["platform"]["os"].as_str().unwrap_or("?"),
                m["platform"]["architecture"].as_str().unwrap_or("?")
            )
        })
        .collect();
    let expected: BTreeSet<String> = Arch::ALL
        .iter()
        .map(|a| format!("linux/{}", a.oci_arch()))
        .collect();
    if platforms != expected {
        return Err(format!(
            "{reference} is an index of {platforms:?}, expected {expected:?}"
        ));
    }
    Ok(format!("sha256:{:x}", Sha256::digest(&out.stdout)))
}

/// Every YAML asset runs the released image, and names no other build of it.
fn verify_manifests(dir: &Path, name: &ImageName) -> Result<(), String> {
    let mut checked = 0;
    for file in asset_names(dir)?.iter().filter(|n| n.ends_with(".yaml")) {
        let text = std::fs::read_to_string(dir.join(file))
            .map_err(|e| format!("cannot read {file}: {e}"))?;
        let images: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("image: "))
            .map(str::trim)
            .filter(|i| i.contains(&format!("/{NAME}:")))
            .collect();
        if images.is_empty() || images.iter().any(|i| *i != name.image) {
            return Err(format!("{file} names {images:?}, expected {}", name.image));
        }
        checked += 1;
    }
    if checked != image_name::MANIFESTS.len() {
        return Err(format!(
            "{checked} manifests in the assets, expected {}",
            image_name::MANIFESTS.len()
        ));
    }
    Ok(())
}

/// The x86_64 binary (this machine's) says the released version.
fn verify_binary_version(dir: &Path, version: &str) -> Result<(), String> {
    let binary = dir.join(binary_asset(version, Arch::X86_64));
    let out = Command::new(&binary)
        .arg("--version")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || text.lines().next() != Some(&format!("{NAME} {version}")) {
        return Err(format!("{} --version printed {text:?}", binary.display()));
    }
    Ok(())
}
