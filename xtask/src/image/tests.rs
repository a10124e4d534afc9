use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use super::rootfs::{self, Files};
use super::{licences, oci, Metadata, ENTRYPOINT, ENV, IMAGE_SUBDIR, ROOTFS_SUBDIR};

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
    let files: Files = rootfs::plan(&artifact, &meta).unwrap_or_else(|e| {
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

#[test]
fn ldd_output_gives_the_libraries_and_the_loader() {
    let output = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                  \tlibaio.so.1 => /lib/x86_64-linux-gnu/libaio.so.1 (0x00007fb9)\n\
                  \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007fb8)\n\
                  \t/lib64/ld-linux-x86-64.so.2 (0x00007fb7)\n";
    let paths = rootfs::parse_ldd(output).unwrap();
    assert_eq!(
        paths,
        [
            "/lib/x86_64-linux-gnu/libaio.so.1",
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/lib64/ld-linux-x86-64.so.2"
        ]
        .map(std::path::PathBuf::from)
    );
    let missing = rootfs::parse_ldd("\tlibaio.so.1 => not found\n").unwrap_err();
    assert!(missing.contains("libaio.so.1"), "{missing}");
    assert!(rootfs::parse_ldd("\tstatically linked\n").is_err());
    assert!(rootfs::parse_ldd("\tnot a dynamic executable\n").is_err());
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
    let first = oci::archive(&layer, &meta).unwrap();
    let second = oci::archive(&layer, &meta).unwrap();
    assert_eq!(first.manifest_digest, second.manifest_digest);
    assert!(first.archive == second.archive);
    let in_hash_order: std::collections::HashMap<_, _> = meta.labels().into_iter().collect();
    let json = String::from_utf8(oci::canonical_json(&in_hash_order).unwrap()).unwrap();
    let description = json.find("image.description").unwrap();
    let version = json.find("image.version").unwrap();
    assert!(description < version, "keys are sorted: {json}");
}
