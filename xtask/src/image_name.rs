//! The image reference in one place: `deploy/image.env` (`IMAGE=<name>:<tag>`,
//! `SOURCE=<repository URL>`), overridden by `LINSTOR_PROVISION_DISK_IMAGE` and
//! `LINSTOR_PROVISION_DISK_SOURCE` (the release workflow sets both from the GitHub
//! repository it runs in). [`render`] writes it into the files that name it: the
//! provisioning container's `image:` in the manifests, the Dockerfile's build comment
//! and source label. Nothing here imports another xtask module but [`crate::packages`].
use std::path::{Path, PathBuf};

/// The setting's file, relative to the workspace.
pub const SETTING_FILE: &str = "deploy/image.env";
const IMAGE_ENV: &str = "LINSTOR_PROVISION_DISK_IMAGE";
const SOURCE_ENV: &str = "LINSTOR_PROVISION_DISK_SOURCE";

/// The Kubernetes manifests that run the image, relative to the workspace.
pub const MANIFESTS: &[&str] = &[
    "deploy/pod-example.yaml",
    "deploy/daemonset.yaml",
    "deploy/linstor-satellite-configuration.yaml",
];
pub const DOCKERFILE: &str = "Dockerfile";

/// The last path segment every reference to this image has (`…/<NAME>:<tag>`).
const NAME: &str = "linstor-provision-disk";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageName {
    /// `registry/owner/linstor-provision-disk:tag`.
    pub image: String,
    /// Where the sources are published (the OCI source label).
    pub source: String,
}

impl ImageName {
    /// The setting file, then the environment's overrides.
    pub fn configured() -> Result<ImageName, String> {
        let path = crate::packages::workspace_root().join(SETTING_FILE);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut name = parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        if let Some(image) = std::env::var_os(IMAGE_ENV) {
            name.image = image.to_string_lossy().into_owned();
        }
        if let Some(source) = std::env::var_os(SOURCE_ENV) {
            name.source = source.to_string_lossy().into_owned();
        }
        name.check()?;
        Ok(name)
    }

    /// `registry/owner/linstor-provision-disk` without the tag.
    pub fn repository(&self) -> &str {
        self.image
            .rsplit_once(':')
            .map_or(&self.image, |(repo, _)| repo)
    }

    pub fn tag(&self) -> &str {
        self.image.rsplit_once(':').map_or("", |(_, tag)| tag)
    }

    fn check(&self) -> Result<(), String> {
        let valid = is_this_image(&self.image)
            && !self.tag().is_empty()
            && !self
                .repository()
                .chars()
                .any(|c| c.is_ascii_uppercase() || c.is_whitespace());
        if !valid {
            return Err(format!(
                "IMAGE `{}` must be `<registry>/<path>/{NAME}:<tag>` in lower case (registries \
                 refuse upper-case names)",
                self.image
            ));
        }
        if !self.source.starts_with("https://") {
            return Err(format!("SOURCE `{}` must be an https:// URL", self.source));
        }
        Ok(())
    }
}

/// `IMAGE=` and `SOURCE=` lines; `#` comments and blank lines skipped.
pub fn parse(text: &str) -> Result<ImageName, String> {
    let mut image = None;
    let mut source = None;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_once('=') {
            Some(("IMAGE", value)) => image = Some(value.trim().to_string()),
            Some(("SOURCE", value)) => source = Some(value.trim().to_string()),
            _ => {
                return Err(format!(
                    "unexpected line `{line}` (only IMAGE= and SOURCE=)"
                ))
            }
        }
    }
    Ok(ImageName {
        image: image.ok_or("no IMAGE= line")?,
        source: source.ok_or("no SOURCE= line")?,
    })
}

/// A reference whose last path segment is this image's name with a tag.
fn is_this_image(reference: &str) -> bool {
    let last = reference.rsplit('/').next().unwrap_or(reference);
    reference.contains('/') && last.starts_with(&format!("{NAME}:"))
}

/// `text` (a manifest or the Dockerfile) with every reference to this image replaced
/// by `name`'s, and the Dockerfile's source and version labels set.
pub fn render_text(text: &str, name: &ImageName, version: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let (body, end) = match line.strip_suffix('\n') {
            Some(body) => (body, "\n"),
            None => (line, ""),
        };
        out.push_str(&render_line(body, name, version));
        out.push_str(end);
    }
    out
}

fn render_line(line: &str, name: &ImageName, version: &str) -> String {
    let indent = &line[..line.len() - line.trim_start().len()];
    let trimmed = line.trim_start();
    if let Some(value) = trimmed.strip_prefix("image: ") {
        if is_this_image(value.trim()) {
            return format!("{indent}image: {}", name.image);
        }
    }
    if let Some(rest) = trimmed.strip_prefix("#   docker build -t ") {
        if rest.ends_with(" .") {
            return format!("{indent}#   docker build -t {} .", name.image);
        }
    }
    for (label, value) in [
        ("org.opencontainers.image.source=", name.source.as_str()),
        ("org.opencontainers.image.version=", version),
    ] {
        if let Some(rest) = trimmed.strip_prefix(label) {
            let tail = rest.trim_start_matches('"');
            let tail = tail.find('"').map_or("", |end| &tail[end + 1..]);
            return format!("{indent}{label}\"{value}\"{tail}");
        }
    }
    line.to_string()
}

/// Renders [`MANIFESTS`] and the [`DOCKERFILE`] from the workspace into `out`
/// (the same relative paths; `out` = the workspace rewrites them in place). Returns
/// the files written.
pub fn render(name: &ImageName, version: &str, out: &Path) -> Result<Vec<PathBuf>, String> {
    let root = crate::packages::workspace_root();
    let mut written = Vec::new();
    for relative in MANIFESTS.iter().chain([&DOCKERFILE]) {
        let source = root.join(relative);
        let text = std::fs::read_to_string(&source)
            .map_err(|e| format!("cannot read {}: {e}", source.display()))?;
        let target = out.join(relative);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        let rendered = render_text(&text, name, version);
        if rendered != text || target != source {
            std::fs::write(&target, rendered)
                .map_err(|e| format!("cannot write {}: {e}", target.display()))?;
        }
        written.push(target);
    }
    Ok(written)
}

/// `cargo xtask render`: the setting into deploy/ and the Dockerfile, in place.
pub fn command(args: &[String]) -> Result<(), String> {
    if !args.is_empty() {
        return Err(format!("render takes no arguments, got {args:?}"));
    }
    let name = ImageName::configured()?;
    let version = crate::packages::package_version()?;
    for path in render(&name, &version, &crate::packages::workspace_root())? {
        eprintln!("xtask: {} names {}", path.display(), name.image);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mirror() -> ImageName {
        ImageName {
            image: "registry.example:5000/mirror/linstor-provision-disk:9.9.9".into(),
            source: "https://git.example/mirror/linstor-provision-disk".into(),
        }
    }

    #[test]
    fn the_committed_files_are_rendered_from_the_setting() {
        let root = crate::packages::workspace_root();
        let text = std::fs::read_to_string(root.join(SETTING_FILE)).unwrap_or_default();
        let name = parse(&text).unwrap_or_else(|e| panic!("{SETTING_FILE}: {e}"));
        name.check().unwrap_or_else(|e| panic!("{e}"));
        let version = crate::packages::package_version().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            name.tag(),
            version,
            "{SETTING_FILE}'s tag is not Cargo.toml's version"
        );
        for relative in MANIFESTS.iter().chain([&DOCKERFILE]) {
            let text = std::fs::read_to_string(root.join(relative)).unwrap_or_default();
            assert_eq!(
                render_text(&text, &name, &version),
                text,
                "{relative} differs from what {SETTING_FILE} renders: run `cargo xtask render`"
            );
        }
    }

    #[test]
    fn a_mirror_changes_every_reference_and_nothing_else() {
        let root = crate::packages::workspace_root();
        for relative in MANIFESTS.iter().chain([&DOCKERFILE]) {
            let text = std::fs::read_to_string(root.join(relative)).unwrap_or_default();
            let rendered = render_text(&text, &mirror(), "9.9.9");
            let changed: Vec<(&str, &str)> = text
                .lines()
                .zip(rendered.lines())
                .filter(|(a, b)| a != b)
                .collect();
            assert!(!changed.is_empty(), "{relative}: nothing names the image");
            for (_, new) in &changed {
                assert!(
                    new.contains("registry.example:5000/mirror/linstor-provision-disk:9.9.9")
                        || new.contains("https://git.example/mirror/linstor-provision-disk")
                        || new.contains("\"9.9.9\""),
                    "{relative}: unexpected change {new}"
                );
            }
            assert_eq!(text.lines().count(), rendered.lines().count());
        }
    }

    #[test]
    fn only_this_image_is_renamed() {
        let text = "        image: registry.k8s.io/pause:3.10\n          image: drbd.io/linstor-satellite:latest\n";
        assert_eq!(render_text(text, &mirror(), "9.9.9"), text);
    }

    #[test]
    fn bad_settings_are_refused() {
        for image in [
            "linstor-provision-disk:1",
            "ghcr.io/Owner/linstor-provision-disk:1",
            "ghcr.io/o/other:1",
            "ghcr.io/o/linstor-provision-disk",
        ] {
            let name = ImageName {
                image: image.into(),
                source: "https://x".into(),
            };
            assert!(name.check().is_err(), "{image} accepted");
        }
        assert!(parse("IMAGE=a\n").is_err());
        assert!(parse("IMAGE=a\nSOURCE=b\nOTHER=c\n").is_err());
    }
}
