//! The OCI image layout packed into a tar, and its docker-archive conversion.
//!
//! Manifest, config and index are built with the `oci-spec` crate's typed builders,
//! so field names and media types come from the spec's own types instead of
//! hand-written JSON; the tars with `tar`, the gzip with `flate2`.
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::Command;
use std::str::FromStr;

use flate2::{Compression, GzBuilder};
use oci_spec::image::{
    Arch, ConfigBuilder, Descriptor, DescriptorBuilder, Digest, HistoryBuilder,
    ImageConfigurationBuilder, ImageIndexBuilder, ImageManifestBuilder, MediaType,
    OciLayoutBuilder, Os, Platform, PlatformBuilder, RootFsBuilder, ANNOTATION_REF_NAME,
};
use sha2::{Digest as _, Sha256};

use super::rootfs::{tar_of, Content, Entry, Files};
use super::{Metadata, ENTRYPOINT, ENV};

/// The name containerd (`ctr images import`) and podman give an OCI archive's image;
/// the fully qualified form is what a pod's `image: linstor-provision-disk:<version>`
/// resolves to.
const CONTAINERD_IMAGE_NAME: &str = "io.containerd.image.name";

/// One architecture's image: its platform and its layer (an uncompressed tar).
pub struct Variant<'a> {
    pub arch: crate::packages::Arch,
    pub layer: &'a [u8],
}

/// One variant as written.
pub struct Written {
    pub arch: crate::packages::Arch,
    /// `sha256:…` of its image manifest.
    pub manifest_digest: String,
    pub layer_compressed_size: u64,
}

pub struct Image {
    /// The OCI archive's bytes.
    pub archive: Vec<u8>,
    /// `sha256:…` of the image index listing the variants: the multi-arch image's
    /// identity in a registry (what `image@sha256:…` pins).
    pub index_digest: String,
    pub variants: Vec<Written>,
}

/// The OCI layout (oci-layout, index.json, blobs/sha256/…) of a multi-arch image, as a
/// tar. `index.json` has one entry, tagged with the version: an image index listing one
/// one-layer image manifest per variant, each with its platform — the form registries
/// serve, which `skopeo copy`, `podman load` and containerd resolve to the machine's
/// platform. (umoci 0.4 cannot choose a platform: it calls such a tag ambiguous.)
pub fn archive(variants: &[Variant], meta: &Metadata) -> Result<Image, String> {
    let mut blobs = BTreeMap::new();
    let mut manifests = Vec::new();
    let mut written = Vec::new();
    for variant in variants {
        let (descriptor, layer_compressed_size) = image_manifest(&mut blobs, variant, meta)?;
        written.push(Written {
            arch: variant.arch,
            manifest_digest: descriptor.digest().to_string(),
            layer_compressed_size,
        });
        manifests.push(descriptor);
    }
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(manifests)
        .build()
        .map_err(|e| format!("cannot build the image index: {e}"))?;
    let index_json = canonical_json(&index)?;
    let index_digest = format!("sha256:{}", sha256_hex(&index_json));
    let mut index_descriptor = blob(&mut blobs, MediaType::ImageIndex, index_json)?;
    index_descriptor.set_annotations(Some(HashMap::from([
        // The tag: `skopeo copy oci-archive:<file>:<version>`.
        (ANNOTATION_REF_NAME.to_owned(), meta.version.clone()),
        (
            CONTAINERD_IMAGE_NAME.to_owned(),
            format!("docker.io/library/{}", meta.reference()),
        ),
    ])));

    let top = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![index_descriptor])
        .build()
        .map_err(|e| format!("cannot build index.json: {e}"))?;
    let layout = OciLayoutBuilder::default()
        .image_layout_version("1.0.0")
        .build()
        .map_err(|e| format!("cannot build oci-layout: {e}"))?;

    let mut files = Files::new();
    for dir in ["blobs", "blobs/sha256"] {
        files.insert(dir.to_owned(), entry(Content::Dir, 0o755));
    }
    for (hex, bytes) in blobs {
        files.insert(
            format!("blobs/sha256/{hex}"),
            entry(Content::File(bytes), 0o644),
        );
    }
    files.insert(
        "index.json".to_owned(),
        entry(Content::File(canonical_json(&top)?), 0o644),
    );
    files.insert(
        "oci-layout".to_owned(),
        entry(Content::File(canonical_json(&layout)?), 0o644),
    );
    Ok(Image {
        archive: tar_of(&files, meta.epoch)?,
        index_digest,
        variants: written,
    })
}

/// The OCI platform of `arch`.
fn platform(arch: crate::packages::Arch) -> Result<Platform, String> {
    PlatformBuilder::default()
        .architecture(Arch::from(arch.oci_arch()))
        .os(Os::Linux)
        .build()
        .map_err(|e| format!("cannot build the {} platform: {e}", arch.oci_arch()))
}

/// Stores the layer, config and manifest of `variant`; returns the manifest's
/// descriptor (with its platform) and the compressed layer's size.
fn image_manifest(
    blobs: &mut BTreeMap<String, Vec<u8>>,
    variant: &Variant,
    meta: &Metadata,
) -> Result<(Descriptor, u64), String> {
    let compressed = gzip(variant.layer)?;
    let layer_size = compressed.len() as u64;
    let layer_descriptor = blob(blobs, MediaType::ImageLayerGzip, compressed)?;
    let config = ImageConfigurationBuilder::default()
        .created(rfc3339(meta.epoch))
        .architecture(Arch::from(variant.arch.oci_arch()))
        .os(Os::Linux)
        .config(
            ConfigBuilder::default()
                .env(strings(ENV))
                .entrypoint(strings(ENTRYPOINT))
                .labels(meta.labels().into_iter().collect::<HashMap<_, _>>())
                .build()
                .map_err(|e| format!("cannot build the image's runtime config: {e}"))?,
        )
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(vec![format!("sha256:{}", sha256_hex(variant.layer))])
                .build()
                .map_err(|e| format!("cannot build the image's rootfs: {e}"))?,
        )
        .history(vec![HistoryBuilder::default()
            .created(rfc3339(meta.epoch))
            .created_by("cargo xtask image")
            .build()
            .map_err(|e| format!("cannot build the image's history: {e}"))?])
        .build()
        .map_err(|e| format!("cannot build the image configuration: {e}"))?;
    let config_descriptor = blob(blobs, MediaType::ImageConfig, canonical_json(&config)?)?;
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config_descriptor)
        .layers(vec![layer_descriptor])
        .build()
        .map_err(|e| format!("cannot build the image manifest: {e}"))?;
    let mut descriptor = blob(blobs, MediaType::ImageManifest, canonical_json(&manifest)?)?;
    descriptor.set_platform(Some(platform(variant.arch)?));
    Ok((descriptor, layer_size))
}

fn entry(content: Content, mode: u32) -> Entry {
    Entry { mode, content }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Stores `bytes` as a blob and describes it.
fn blob(
    blobs: &mut BTreeMap<String, Vec<u8>>,
    media_type: MediaType,
    bytes: Vec<u8>,
) -> Result<Descriptor, String> {
    let hex = sha256_hex(&bytes);
    let digest = Digest::from_str(&format!("sha256:{hex}"))
        .map_err(|e| format!("sha256:{hex} is not a digest: {e}"))?;
    let descriptor = DescriptorBuilder::default()
        .media_type(media_type)
        .digest(digest)
        .size(bytes.len() as u64)
        .build()
        .map_err(|e| format!("cannot describe blob sha256:{hex}: {e}"))?;
    blobs.insert(hex, bytes);
    Ok(descriptor)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// JSON with every object's keys sorted: oci-spec keeps labels and annotations in
/// HashMaps, whose order changes from run to run, and a digest needs the same bytes.
pub fn canonical_json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, String> {
    // serde_json's Map is a BTreeMap (this workspace does not enable `preserve_order`).
    let tree = serde_json::to_value(value).map_err(|e| format!("cannot serialize: {e}"))?;
    serde_json::to_vec(&tree).map_err(|e| format!("cannot serialize: {e}"))
}

/// gzip with no file name and mtime 0 in its header: the same input gives the same bytes.
fn gzip(bytes: &[u8]) -> Result<Vec<u8>, String> {
    use std::io::Write;
    let mut encoder = GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), Compression::best());
    encoder
        .write_all(bytes)
        .and_then(|()| encoder.finish())
        .map_err(|e| format!("cannot gzip the layer: {e}"))
}

/// `2026-11-27T03:29:43Z` for seconds since 1970 (days to civil date after Howard
/// Hinnant's `civil_from_days`).
pub fn rfc3339(epoch: u64) -> String {
    let days = i64::try_from(epoch / 86_400).unwrap_or(0);
    let seconds = epoch % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

/// Converts the `arch` variant of the OCI archive into a docker-archive tagged
/// `linstor-provision-disk:<version>` (a docker-archive holds one platform's image).
pub fn docker_archive(
    oci: &Path,
    docker: &Path,
    meta: &Metadata,
    arch: crate::packages::Arch,
) -> Result<(), String> {
    let partial = docker.with_extension("partial");
    // skopeo refuses to add to an existing docker-archive.
    for stale in [&partial, &docker.to_path_buf()] {
        if stale.exists() {
            std::fs::remove_file(stale)
                .map_err(|e| format!("cannot remove the old {}: {e}", stale.display()))?;
        }
    }
    crate::packages::run(
        Command::new("skopeo")
            // Local file to local file: no registry, so no signature policy to consult.
            .args(["--insecure-policy", "--override-os", "linux"])
            .args(["--override-arch", arch.oci_arch()])
            .args(["copy", "--quiet"])
            .arg(format!("oci-archive:{}:{}", oci.display(), meta.version))
            .arg(format!(
                "docker-archive:{}:{}",
                partial.display(),
                meta.reference()
            )),
    )?;
    std::fs::rename(&partial, docker).map_err(|e| {
        format!(
            "cannot rename {} to {}: {e}",
            partial.display(),
            docker.display()
        )
    })
}
