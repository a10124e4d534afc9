use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::rootfs::{self, Files};
use super::{
    debs, libraries, licences, oci, Metadata, ENTRYPOINT, ENV, IMAGE_SUBDIR, ROOTFS_SUBDIR,
};
use crate::packages::Arch;

/// The Dockerfile's instructions: comments dropped, continuation lines joined.
fn dockerfile_instructions() -> Vec<(String, String)> {
    let path = super::workspace_root().join("Dockerfile");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut instructions = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && pending.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(start) => {
                pending.push_str(start);
                pending.push(' ');
            }
            None => {
                pending.push_str(trimmed);
                let (keyword, args) = pending.split_once(' ').unwrap_or((&pending, ""));
                instructions.push((keyword.to_uppercase(), args.trim().to_owned()));
                pending.clear();
            }
        }
    }
    assert!(
        pending.is_empty(),
        "the Dockerfile ends inside a continued line"
    );
    instructions
}

/// `key=value key="value with spaces"` → pairs, as Docker reads ENV and LABEL.
fn key_values(args: &str) -> Vec<(String, String)> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut chars = args.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '\\' if quoted => word.extend(chars.next()),
            c if c.is_whitespace() && !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    assert!(!quoted, "unbalanced quotes in {args:?}");
    if !word.is_empty() {
        words.push(word);
    }
    words
        .into_iter()
        .map(|w| {
            let (key, value) = w
                .split_once('=')
                .unwrap_or_else(|| panic!("{w:?} in {args:?} is not key=value"));
            (key.to_owned(), value.to_owned())
        })
        .collect()
}

#[test]
fn the_dockerfile_final_stage_is_the_xtask_image() {
    let instructions = dockerfile_instructions();
    let last_from = instructions
        .iter()
        .rposition(|(keyword, _)| keyword == "FROM")
        .expect("the Dockerfile has no FROM");
    let (build_stage, final_stage) = instructions.split_at(last_from);
    assert_eq!(
        final_stage[0].1, "scratch",
        "the final stage starts from scratch"
    );

    // The build stage is named `build` and assembles the folder with the xtask.
    let build_from = build_stage
        .iter()
        .rposition(|(keyword, _)| keyword == "FROM")
        .expect("the Dockerfile has no build stage");
    assert!(
        build_stage[build_from].1.ends_with(" AS build"),
        "{:?}",
        build_stage[build_from]
    );
    assert!(
        build_stage[build_from..]
            .iter()
            .any(|(k, a)| k == "RUN" && a == "cargo xtask image --rootfs-only"),
        "the build stage must run `cargo xtask image --rootfs-only`"
    );

    let mut copies = Vec::new();
    let mut env = Vec::new();
    let mut entrypoint = None;
    let mut labels = BTreeMap::new();
    for (keyword, args) in &final_stage[1..] {
        match keyword.as_str() {
            "COPY" => copies.push(args.clone()),
            "ENV" => env.extend(
                key_values(args)
                    .into_iter()
                    .map(|(k, v)| format!("{k}={v}")),
            ),
            "ENTRYPOINT" => {
                let parsed: Vec<String> = serde_json::from_str(args)
                    .unwrap_or_else(|e| panic!("ENTRYPOINT {args} is not a JSON list: {e}"));
                assert!(entrypoint.replace(parsed).is_none(), "two ENTRYPOINTs");
            }
            "LABEL" => labels.extend(key_values(args)),
            other => panic!("the final stage has {other} {args}; the xtask image has no such step"),
        }
    }
    assert_eq!(
        copies,
        [format!(
            "--from=build /src/target/{IMAGE_SUBDIR}/{ROOTFS_SUBDIR}/ /"
        )]
    );
    assert_eq!(env, ENV);
    assert_eq!(
        entrypoint.expect("the final stage has no ENTRYPOINT"),
        ENTRYPOINT
    );
    let meta = Metadata::of_workspace().expect("Cargo.toml has version and description");
    assert_eq!(labels, meta.labels());
}

/// (path, kind and mode, size or link target) of every entry below `dir`.
fn listing_of_dir(dir: &Path, below: &Path, out: &mut Vec<(String, String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let name = path
            .strip_prefix(below)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let mode = meta.permissions().mode() & 0o7777;
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&path).unwrap();
            out.push((name, "link".into(), target.to_string_lossy().into_owned()));
        } else if meta.is_dir() {
            out.push((name, format!("dir {mode:o}"), String::new()));
            listing_of_dir(&path, below, out);
        } else {
            out.push((name, format!("file {mode:o}"), meta.len().to_string()));
        }
    }
}

fn listing_of_tar(bytes: &[u8]) -> Vec<(String, String, String, u64)> {
    let mut archive = tar::Archive::new(bytes);
    archive
        .entries()
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let header = entry.header();
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            let path = path.trim_end_matches('/').to_owned();
            let mode = header.mode().unwrap();
            let (kind, detail) = match header.entry_type() {
                tar::EntryType::Directory => (format!("dir {mode:o}"), String::new()),
                tar::EntryType::Symlink => (
                    "link".to_owned(),
                    entry
                        .link_name()
                        .unwrap()
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                ),
                tar::EntryType::Regular => {
                    (format!("file {mode:o}"), header.size().unwrap().to_string())
                }
                other => panic!("{path} is a {other:?} entry"),
            };
            assert_eq!(
                (header.uid().unwrap(), header.gid().unwrap()),
                (0, 0),
                "{path}"
            );
            (path, kind, detail, header.mtime().unwrap())
        })
        .collect()
}

fn test_metadata() -> Metadata {
    Metadata {
        version: "0.0.0-test".into(),
        description: "a test image".into(),
        source: "https://example.org/linstor-provision-disk".into(),
        epoch: 1_700_000_000,
    }
}

/// The rootfs folder (what the Dockerfile copies) and the OCI layer hold the same
/// entries, both from [`rootfs::plan`], with this machine's thin_check.
#[test]
fn the_rootfs_folder_and_the_layer_list_the_same_files() {
    let scratch = tempfile::tempdir().unwrap();
    let artifact = scratch.path().join("linstor-provision-disk");
    std::fs::write(&artifact, b"stand-in for the static binary").unwrap();
    let meta = test_metadata();
    let files: Files = rootfs::plan(&artifact, &meta, Arch::X86_64).unwrap_or_else(|e| {
        panic!(
            "{e} (the image ships this machine's thin-provisioning-tools: `sudo cargo xtask deps`)"
        )
    });
    let dir = scratch.path().join("rootfs");
    rootfs::write_dir(&files, &dir, meta.epoch).unwrap();
    let mut from_dir = Vec::new();
    listing_of_dir(&dir, &dir, &mut from_dir);
    let layer = rootfs::tar_of(&files, meta.epoch).unwrap();
    let from_tar = listing_of_tar(&layer);
    let from_tar_without_times: Vec<_> = from_tar
        .iter()
        .map(|(path, kind, detail, _)| (path.clone(), kind.clone(), detail.clone()))
        .collect();
    assert_eq!(from_dir, from_tar_without_times);
    assert!(from_tar.iter().all(|(_, _, _, mtime)| *mtime == meta.epoch));
    let mtime_on_disk = std::fs::symlink_metadata(dir.join("usr/local/bin"))
        .unwrap()
        .mtime();
    assert_eq!(mtime_on_disk, 1_700_000_000);

    let find = |path: &str| {
        from_dir
            .iter()
            .find(|(p, _, _)| p == path)
            .map(|(_, kind, detail)| (kind.as_str(), detail.as_str()))
            .unwrap_or_else(|| panic!("the image has no /{path}"))
    };
    assert_eq!(
        find("usr/local/bin/linstor-provision-disk"),
        ("file 755", "30")
    );
    assert_eq!(
        find("usr/local/bin/homelab-helper"),
        ("link", "linstor-provision-disk")
    );
    assert_eq!(
        find("usr/bin/rm"),
        ("link", "/usr/local/bin/linstor-provision-disk")
    );
    assert_eq!(find("tmp"), ("dir 1777", ""));
    // thin_check, its loader and libc are executables inside the image.
    for path in [
        "usr/sbin/thin_check",
        "lib64/ld-linux-x86-64.so.2",
        "lib/x86_64-linux-gnu/libc.so.6",
    ] {
        let resolved = resolve_inside(&dir, path);
        let mode = std::fs::metadata(&resolved).unwrap().permissions().mode();
        assert!(
            mode & 0o111 != 0,
            "/{path} → {} has mode {mode:o}",
            resolved.display()
        );
    }
    assert_eq!(find("usr/share/common-licenses/GPL-2").0, "file 644");
    for doc in [
        "thin-provisioning-tools",
        "libc6",
        "lvm2",
        "util-linux",
        "musl",
        "linstor-provision-disk",
    ] {
        find(&format!("usr/share/doc/{doc}"));
    }
}

/// Follows symlinks the way they resolve inside the image rooted at `root`.
fn resolve_inside(root: &Path, path: &str) -> std::path::PathBuf {
    let mut path = root.join(path);
    for _ in 0..8 {
        let Ok(target) = std::fs::read_link(&path) else {
            return path;
        };
        path = match target.strip_prefix("/") {
            Ok(absolute) => root.join(absolute),
            Err(_) => path.parent().unwrap().join(target),
        };
    }
    panic!("{} is a symlink loop", path.display())
}

/// Paths from `ldd` output: `name => /path (0x…)` and the loader's `/path (0x…)`;
/// the vDSO (no path) is part of the kernel.
fn parse_ldd(output: &str) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    for line in output.lines().map(str::trim) {
        assert!(!line.contains("not found"), "ldd: {line}");
        let resolved = line.split_once("=>").map_or(line, |(_, rest)| rest.trim());
        let first = resolved.split_whitespace().next().unwrap_or("");
        if first.starts_with('/') {
            paths.push(PathBuf::from(first));
        }
    }
    paths
}

/// On this machine, whose thin_check `ldd` can run, the ELF-based search finds the
/// same files `ldd` lists (the way the arm64 variant's libraries are found).
#[test]
fn the_library_search_finds_what_ldd_lists() {
    let out = std::process::Command::new("ldd")
        .arg(rootfs::THIN_CHECK)
        .output()
        .unwrap();
    assert!(out.status.success(), "ldd {}: {out:?}", rootfs::THIN_CHECK);
    let canonical = |paths: Vec<PathBuf>| -> BTreeSet<PathBuf> {
        paths
            .into_iter()
            .map(|p| std::fs::canonicalize(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
            .collect()
    };
    let from_ldd = canonical(parse_ldd(&String::from_utf8_lossy(&out.stdout)));
    assert!(from_ldd.len() >= 5, "{from_ldd:?}");
    let packages = debs::for_arch(Arch::X86_64).unwrap();
    assert_eq!(
        packages.root,
        Path::new("/"),
        "this test expects an amd64 machine"
    );
    let found = libraries::closure(&packages, Path::new(rootfs::THIN_CHECK), Arch::X86_64)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(found[0], Path::new("/lib64/ld-linux-x86-64.so.2"));
    assert_eq!(canonical(found), from_ldd);
}

/// The amd64 thin_check is not an arm64 executable: the search checks every file's
/// machine, so a package of the wrong architecture cannot slip into a variant.
#[test]
fn a_file_of_another_machine_is_refused() {
    let packages = debs::for_arch(Arch::X86_64).unwrap();
    let err =
        libraries::closure(&packages, Path::new(rootfs::THIN_CHECK), Arch::Aarch64).unwrap_err();
    assert!(err.contains("built for x86-64, expected aarch64"), "{err}");
    let err = rootfs::check_artifact(Path::new("/usr/sbin/pdata_tools"), Arch::X86_64).unwrap_err();
    assert!(err.contains("expected a static executable"), "{err}");
    let err =
        rootfs::check_artifact(Path::new("/usr/sbin/pdata_tools"), Arch::Aarch64).unwrap_err();
    assert!(err.contains("--target aarch64"), "{err}");
}

#[test]
fn depends_fields_name_the_first_alternative_without_versions() {
    assert_eq!(
        debs::depends(
            "libaio1 (>= 0.3.93), libc6 (>= 2.33), default-mta | mail-transport-agent, python3:any"
        ),
        ["libaio1", "libc6", "default-mta", "python3"]
    );
    assert!(debs::depends("").is_empty());
}

#[test]
fn copyright_files_cite_common_licences() {
    let text = "in `/usr/share/common-licenses/GPL-2'.\n can be found in /usr/share/common-licenses/LGPL.\n\
                \"/usr/share/common-licenses/LGPL-2.1\" and /usr/share/common-licenses/";
    assert_eq!(
        licences::cited_licences(text),
        ["GPL-2", "LGPL", "LGPL-2.1"]
    );
}

#[test]
fn timestamps_are_rfc3339_in_utc() {
    assert_eq!(oci::rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(oci::rfc3339(951_825_599), "2000-02-29T11:59:59Z");
    assert_eq!(oci::rfc3339(1_795_750_183), "2026-11-27T03:29:43Z");
    assert_eq!(oci::rfc3339(253_402_300_799), "9999-12-31T23:59:59Z");
}

#[test]
fn package_fields_come_from_the_package_section_only() {
    let toml = "[workspace]\nversion = \"9\"\n[package]\nname = \"x\"\nversion = \"1.2.3\"\n\
                description = \"what it does\"\n[dependencies]\ndescription = \"no\"\n";
    assert_eq!(
        super::package_field(toml, "version").as_deref(),
        Some("1.2.3")
    );
    assert_eq!(
        super::package_field(toml, "description").as_deref(),
        Some("what it does")
    );
    assert_eq!(super::package_field(toml, "license"), None);
}

/// The same layer and metadata give the same archive bytes (labels and annotations
/// live in HashMaps inside oci-spec; the JSON must not follow their order).
#[test]
fn the_oci_archive_is_the_same_for_the_same_inputs() {
    let mut files = Files::new();
    files.insert(
        "hello".into(),
        rootfs::Entry {
            mode: 0o644,
            content: rootfs::Content::File(b"hi".to_vec()),
        },
    );
    let meta = test_metadata();
    let layer = rootfs::tar_of(&files, meta.epoch).unwrap();
    let variants = [
        oci::Variant {
            arch: Arch::X86_64,
            layer: &layer,
        },
        oci::Variant {
            arch: Arch::Aarch64,
            layer: &layer,
        },
    ];
    let first = oci::archive(&variants, &meta).unwrap();
    let second = oci::archive(&variants, &meta).unwrap();
    assert_eq!(first.index_digest, second.index_digest);
    assert!(first.archive == second.archive);
    let in_hash_order: std::collections::HashMap<_, _> = meta.labels().into_iter().collect();
    let json = String::from_utf8(oci::canonical_json(&in_hash_order).unwrap()).unwrap();
    let description = json.find("image.description").unwrap();
    let version = json.find("image.version").unwrap();
    assert!(description < version, "keys are sorted: {json}");
}

/// The archive's `index.json` has one entry, the tag, naming an image index (what
/// `podman load` and `skopeo copy oci-archive:<file>` need: they refuse a layout with
/// several entries), and that index lists one manifest per platform whose config
/// says the same architecture.
#[test]
fn the_archive_tags_one_index_listing_every_platform() {
    let blob_of = |files: &BTreeMap<String, Vec<u8>>, digest: &serde_json::Value| {
        let hex = digest.as_str().unwrap().strip_prefix("sha256:").unwrap();
        let bytes = files[&format!("blobs/sha256/{hex}")].clone();
        assert_eq!(
            oci::sha256_hex(&bytes),
            hex,
            "blob content matches its name"
        );
        serde_json::from_slice::<serde_json::Value>(&bytes).unwrap_or(serde_json::Value::Null)
    };
    let meta = test_metadata();
    let amd64 = rootfs::tar_of(&Files::new(), meta.epoch).unwrap();
    let mut arm64_files = Files::new();
    arm64_files.insert(
        "arm".into(),
        rootfs::Entry {
            mode: 0o644,
            content: rootfs::Content::File(b"64".to_vec()),
        },
    );
    let arm64 = rootfs::tar_of(&arm64_files, meta.epoch).unwrap();
    let image = oci::archive(
        &[
            oci::Variant {
                arch: Arch::X86_64,
                layer: &amd64,
            },
            oci::Variant {
                arch: Arch::Aarch64,
                layer: &arm64,
            },
        ],
        &meta,
    )
    .unwrap();
    let mut files = BTreeMap::new();
    let mut archive = tar::Archive::new(image.archive.as_slice());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
        files.insert(path, bytes);
    }
    let top: serde_json::Value = serde_json::from_slice(&files["index.json"]).unwrap();
    let entries = top["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{top}");
    assert_eq!(
        entries[0]["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(
        entries[0]["annotations"]["org.opencontainers.image.ref.name"],
        "0.0.0-test"
    );
    assert_eq!(
        entries[0]["annotations"]["io.containerd.image.name"],
        "docker.io/library/linstor-provision-disk:0.0.0-test"
    );
    assert_eq!(entries[0]["digest"], image.index_digest.as_str());
    let index = blob_of(&files, &entries[0]["digest"]);
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 2, "{index}");
    for ((descriptor, arch), written) in manifests
        .iter()
        .zip(["amd64", "arm64"])
        .zip(&image.variants)
    {
        assert_eq!(descriptor["platform"]["architecture"], arch);
        assert_eq!(descriptor["platform"]["os"], "linux");
        assert_eq!(descriptor["digest"], written.manifest_digest.as_str());
        let manifest = blob_of(&files, &descriptor["digest"]);
        let config = blob_of(&files, &manifest["config"]["digest"]);
        assert_eq!(config["architecture"], arch);
        assert_eq!(config["config"]["Entrypoint"][0], rootfs::BINARY);
    }
    let arm64_manifest = blob_of(&files, &manifests[1]["digest"]);
    let arm64_config = blob_of(&files, &arm64_manifest["config"]["digest"]);
    assert_eq!(
        arm64_config["rootfs"]["diff_ids"][0],
        format!("sha256:{}", oci::sha256_hex(&arm64)).as_str(),
        "the arm64 manifest carries the arm64 layer"
    );
}

/// The arm64 variant's files from Debian's arm64 packages (downloaded into
/// `target/image-debs/` on first use): the same layout as the amd64 variant outside
/// the library folders, thin_check, the loader and every library aarch64 ELF files,
/// and the copyright files of the packages they come from.
#[test]
fn the_arm64_variant_ships_arm64_thin_check_with_its_libraries() {
    let scratch = tempfile::tempdir().unwrap();
    let artifact = scratch.path().join("linstor-provision-disk");
    std::fs::write(&artifact, b"stand-in for the static binary").unwrap();
    let meta = test_metadata();
    let arm64 = rootfs::plan(&artifact, &meta, Arch::Aarch64).unwrap_or_else(|e| panic!("{e}"));
    let amd64 = rootfs::plan(&artifact, &meta, Arch::X86_64).unwrap_or_else(|e| panic!("{e}"));
    let is_library_folder = |path: &str| {
        ["lib/", "lib64/", "usr/lib/"]
            .iter()
            .any(|prefix| path.starts_with(prefix))
            || ["lib", "lib64", "usr/lib"].contains(&path)
    };
    let outside_libraries = |files: &Files| -> Vec<(String, String)> {
        files
            .iter()
            .filter(|(path, _)| !is_library_folder(path))
            .map(|(path, entry)| {
                let kind = match &entry.content {
                    rootfs::Content::Dir => "dir".to_owned(),
                    rootfs::Content::File(_) => "file".to_owned(),
                    rootfs::Content::Symlink(target) => format!("link {target}"),
                };
                (path.clone(), format!("{kind} {:o}", entry.mode))
            })
            .collect()
    };
    assert_eq!(outside_libraries(&arm64), outside_libraries(&amd64));

    let entry = |path: &str| {
        arm64
            .get(path)
            .unwrap_or_else(|| panic!("the arm64 image has no /{path}"))
    };
    assert_eq!(
        entry("usr/sbin/thin_check").content,
        rootfs::Content::Symlink("pdata_tools".into())
    );
    assert_eq!(
        entry("lib/ld-linux-aarch64.so.1").content,
        rootfs::Content::Symlink("aarch64-linux-gnu/ld-linux-aarch64.so.1".into())
    );
    let mut elf_files = 0;
    for (path, entry) in &arm64 {
        let rootfs::Content::File(bytes) = &entry.content else {
            continue;
        };
        if path == "usr/sbin/pdata_tools" || is_library_folder(path) {
            let needs = vmtest::elf::loader_needs(bytes).unwrap_or_else(|e| panic!("/{path}: {e}"));
            assert_eq!(needs.machine, vmtest::elf::EM_AARCH64, "/{path}");
            elf_files += 1;
        }
    }
    // pdata_tools, the loader, libc, libm, libdl, libstdc++, libgcc_s, libaio, libexpat.
    assert_eq!(elf_files, 9, "{:?}", arm64.keys().collect::<Vec<_>>());
    for path in [
        "lib/aarch64-linux-gnu/ld-linux-aarch64.so.1",
        "lib/aarch64-linux-gnu/libc.so.6",
    ] {
        assert!(entry(path).mode & 0o111 != 0, "/{path} is not executable");
    }
    for doc in ["thin-provisioning-tools", "libc6", "gcc-12-base", "libaio1"] {
        entry(&format!("usr/share/doc/{doc}/copyright"));
    }
}

/// qemu's user-mode emulator for aarch64 (Debian package [`QEMU_USER_PACKAGE`],
/// installed by `cargo xtask deps`).
const QEMU_AARCH64: &str = "/usr/bin/qemu-aarch64-static";
const QEMU_USER_PACKAGE: &str = "qemu-user-static";

/// The upstream part of a Debian version: `0.9.0` of `0.9.0-2` or `1:0.9.0-2`.
fn upstream_version(debian: &str) -> &str {
    let without_epoch = debian.split_once(':').map_or(debian, |(_, rest)| rest);
    without_epoch
        .rsplit_once('-')
        .map_or(without_epoch, |(upstream, _)| upstream)
}

#[test]
fn cargo_xtask_deps_installs_qemu_user() {
    assert!(crate::packages::DEV.contains(&QEMU_USER_PACKAGE));
}

#[test]
fn upstream_versions_drop_epoch_and_debian_revision() {
    assert_eq!(upstream_version("0.9.0-2"), "0.9.0");
    assert_eq!(upstream_version("1:2.03.16-2"), "2.03.16");
    assert_eq!(upstream_version("1.0"), "1.0");
}

/// Runs the arm64 `thin_check -V` of the rootfs in `dir` under qemu-user, which
/// looks up the loader and libraries in `dir` first (`-L`).
fn run_arm64_thin_check(dir: &Path) -> std::process::Output {
    std::process::Command::new(QEMU_AARCH64)
        .arg("-L")
        .arg(dir)
        .arg(dir.join(rootfs::THIN_CHECK.trim_start_matches('/')))
        .arg("-V")
        .env_clear()
        .output()
        .unwrap_or_else(|e| panic!("cannot run {QEMU_AARCH64}: {e}"))
}

/// The arm64 variant's thin_check runs: qemu-user executes it with the image's
/// rootfs as its root (`-L`), its loader and libraries taken from the image, and it
/// prints the version of the package it came from. qemu falls back to this
/// machine's paths for a file the image lacks, so the run is repeated without
/// libaio: it must fail, or this machine's arm64 libraries could be standing in
/// for the image's. Never skipped: without qemu-aarch64-static it fails.
#[test]
fn the_arm64_thin_check_runs_with_only_the_image_files() {
    assert!(
        Path::new(QEMU_AARCH64).is_file(),
        "{QEMU_AARCH64} is missing, so the arm64 image's thin_check cannot be run here; install \
         it with `sudo cargo xtask deps` (or `sudo apt-get install {QEMU_USER_PACKAGE}`)"
    );
    let scratch = tempfile::tempdir().unwrap();
    let artifact = scratch.path().join("linstor-provision-disk");
    std::fs::write(&artifact, b"stand-in for the static binary").unwrap();
    let meta = test_metadata();
    let files = rootfs::plan(&artifact, &meta, Arch::Aarch64).unwrap_or_else(|e| panic!("{e}"));
    let dir = scratch.path().join("rootfs");
    rootfs::write_dir(&files, &dir, meta.epoch).unwrap();

    let packages = debs::for_arch(Arch::Aarch64).unwrap_or_else(|e| panic!("{e}"));
    let packaged = packages
        .versions
        .iter()
        .find_map(|line| line.strip_prefix(&format!("{} ", debs::THIN_CHECK_PACKAGE)))
        .unwrap_or_else(|| {
            panic!(
                "no {} among the arm64 packages: {:?}",
                debs::THIN_CHECK_PACKAGE,
                packages.versions
            )
        });
    let out = run_arm64_thin_check(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the arm64 image's thin_check -V failed ({}): {}{}",
        out.status,
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.trim(),
        upstream_version(packaged),
        "thin_check -V does not print the version of {} {packaged}",
        debs::THIN_CHECK_PACKAGE
    );
    let libaio = files
        .keys()
        .find(|path| path.contains("/libaio.so.1"))
        .unwrap_or_else(|| panic!("the arm64 image has no libaio.so.1"));
    std::fs::remove_file(dir.join(libaio)).unwrap();
    let without = run_arm64_thin_check(&dir);
    let stderr = String::from_utf8_lossy(&without.stderr);
    assert!(
        !without.status.success() && stderr.contains("libaio.so.1"),
        "thin_check ran without the image's /{libaio} ({}): this machine's arm64 libraries \
         stand in for the image's, so the run above proves nothing; stderr: {stderr}",
        without.status
    );
}
