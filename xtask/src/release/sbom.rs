//! The release's SBOM, SPDX 2.3 JSON: the tool, the Rust crates linked into each
//! architecture's binary (as cargo resolves them for the shipped target and
//! features: the same list the image's `rust-crates` notice is made from), the C
//! libraries built into it from Debian's sources, and the Debian packages each image
//! variant ships (thin_check with its libraries), each with version and licence.
use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::image::DebianPackage;
use crate::packages::Arch;

/// One entry of the SBOM.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Component {
    pub name: String,
    pub version: String,
    /// An SPDX licence expression.
    pub license: String,
    /// Package URL: `pkg:cargo/…`, `pkg:deb/debian/…`, `pkg:generic/…`.
    pub purl: String,
}

/// SPDX licence expressions of the Debian packages an image variant ships, from
/// their copyright files (bookworm). A package not listed fails the release, naming
/// it: its licence must be read and added here.
const DEBIAN_LICENCES: &[(&str, &str)] = &[
    ("thin-provisioning-tools", "GPL-3.0-or-later"),
    ("libc6", "LGPL-2.1-or-later"),
    ("libaio1", "LGPL-2.1-or-later"),
    ("libexpat1", "MIT"),
    ("libstdc++6", "GPL-3.0-or-later WITH GCC-exception-3.1"),
    ("libgcc-s1", "GPL-3.0-or-later WITH GCC-exception-3.1"),
];

/// A Cargo licence expression in SPDX syntax (old manifests write `MIT/Apache-2.0`).
pub fn spdx_expression(cargo: &str) -> String {
    cargo.replace('/', " OR ")
}

pub fn crate_component(name: &str, version: &str, license: &str) -> Component {
    Component {
        name: name.into(),
        version: version.into(),
        license: spdx_expression(license),
        purl: format!("pkg:cargo/{name}@{version}"),
    }
}

pub fn debian_component(package: &DebianPackage) -> Result<Component, String> {
    let license = DEBIAN_LICENCES
        .iter()
        .find(|(name, _)| *name == package.name)
        .map(|(_, license)| license.to_string())
        .ok_or_else(|| {
            format!(
                "the image ships the Debian package {} ({}), whose licence the SBOM does not \
                 know: read /usr/share/doc/{}/copyright and add it to DEBIAN_LICENCES in {}",
                package.name,
                package.arch,
                package.name,
                file!()
            )
        })?;
    Ok(Component {
        name: package.name.clone(),
        version: package.version.clone(),
        license,
        purl: format!(
            "pkg:deb/debian/{}@{}?arch={}&distro=bookworm",
            package.name, package.version, package.arch
        ),
    })
}

/// Everything the SBOM describes besides the tool itself.
pub struct Contents {
    /// Per architecture: the crates and C libraries in the binary.
    pub binary: BTreeMap<&'static str, Vec<Component>>,
    /// Per architecture: the Debian packages beside it in the image.
    pub image: BTreeMap<&'static str, Vec<Component>>,
}

fn spdx_id(kind: &str, component: &Component) -> String {
    let raw = format!("SPDXRef-{kind}-{}-{}", component.name, component.version);
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

fn package(id: &str, component: &Component, location: &str) -> Value {
    json!({
        "SPDXID": id,
        "name": component.name,
        "versionInfo": component.version,
        "downloadLocation": location,
        "filesAnalyzed": false,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": component.license,
        "copyrightText": "NOASSERTION",
        "externalRefs": [{
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": component.purl,
        }],
    })
}

/// The SPDX document. `created` is RFC 3339 (the release's source date).
pub fn document(
    tool: &Component,
    source: &str,
    image: &str,
    created: &str,
    contents: &Contents,
) -> Value {
    let root = "SPDXRef-linstor-provision-disk";
    let mut packages = vec![package(root, tool, source)];
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": root,
    })];
    let mut seen = BTreeMap::new();
    let mut add = |kind: &str, parent: &str, component: &Component, packages: &mut Vec<Value>| {
        let id = spdx_id(kind, component);
        if seen.insert(id.clone(), ()).is_none() {
            packages.push(package(&id, component, "NOASSERTION"));
        }
        json!({
            "spdxElementId": parent,
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": id,
        })
    };
    for (arch, components) in &contents.binary {
        for component in components {
            let kind = if component.purl.starts_with("pkg:cargo/") {
                "crate"
            } else {
                "lib"
            };
            let mut relationship = add(kind, root, component, &mut packages);
            relationship["comment"] = json!(format!("linked into the {arch} binary"));
            relationships.push(relationship);
        }
    }
    for (arch, components) in &contents.image {
        let variant = format!("SPDXRef-image-{arch}");
        packages.push(json!({
            "SPDXID": variant,
            "name": format!("{image} ({arch})"),
            "versionInfo": tool.version,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
        }));
        relationships.push(json!({
            "spdxElementId": variant,
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": root,
        }));
        for component in components {
            // One package per architecture: the same version differs per arch.
            let kind = format!("deb-{arch}");
            relationships.push(add(&kind, &variant, component, &mut packages));
        }
    }
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{}-{}", tool.name, tool.version),
        "documentNamespace": format!("{source}/releases/{}/sbom.spdx.json", tool.version),
        "creationInfo": {
            "created": created,
            "creators": ["Tool: cargo xtask release"],
        },
        "packages": packages,
        "relationships": relationships,
    })
}

/// `(name, version)` of every `pkg:cargo` package in an SPDX document.
pub fn listed_crates(document: &Value) -> Vec<(String, String)> {
    document["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| {
            p["externalRefs"][0]["referenceLocator"]
                .as_str()
                .is_some_and(|purl| purl.starts_with("pkg:cargo/"))
        })
        .map(|p| {
            (
                p["name"].as_str().unwrap_or_default().to_string(),
                p["versionInfo"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The architectures' names as the SBOM's comments and image variants use them.
pub fn arch_name(arch: Arch) -> &'static str {
    arch.debian_arch()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_cargo_licence_syntax_becomes_spdx() {
        assert_eq!(spdx_expression("MIT/Apache-2.0"), "MIT OR Apache-2.0");
        assert_eq!(spdx_expression("MPL-2.0"), "MPL-2.0");
    }

    #[test]
    fn an_unknown_debian_package_is_refused_by_name() {
        let package = DebianPackage {
            name: "libnew1".into(),
            version: "1".into(),
            arch: "amd64".into(),
        };
        let error = debian_component(&package).unwrap_err();
        assert!(error.contains("libnew1"), "{error}");
    }

    #[test]
    fn the_document_lists_every_crate_once_and_each_image_variant() {
        let tool = Component {
            name: "linstor-provision-disk".into(),
            version: "1.0.0".into(),
            license: "GPL-2.0-only".into(),
            purl: "pkg:generic/linstor-provision-disk@1.0.0".into(),
        };
        let serde = crate_component("serde", "1.0.0", "MIT OR Apache-2.0");
        let libc = debian_component(&DebianPackage {
            name: "libc6".into(),
            version: "2.36-9".into(),
            arch: "arm64".into(),
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let contents = Contents {
            binary: BTreeMap::from([("amd64", vec![serde.clone()]), ("arm64", vec![serde])]),
            image: BTreeMap::from([("arm64", vec![libc])]),
        };
        let doc = document(
            &tool,
            "https://x/y",
            "r/y:1.0.0",
            "2026-01-01T00:00:00Z",
            &contents,
        );
        assert_eq!(listed_crates(&doc), vec![("serde".into(), "1.0.0".into())]);
        let names: Vec<&str> = doc["packages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert!(
            names.contains(&"libc6") && names.contains(&"r/y:1.0.0 (arm64)"),
            "{names:?}"
        );
    }
}
