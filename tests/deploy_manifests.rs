//! Checks the deployment files: the Kubernetes manifests in `deploy/` against
//! Kubernetes' published JSON schemas, the piraeus-operator
//! `LinstorSatelliteConfiguration` against the CRD's field names plus the core
//! schemas for the pod template it carries, the systemd unit with
//! `systemd-analyze verify`, and the `Dockerfile` structurally (no container engine
//! is needed to run this). Each validator is also fed a broken file and must reject
//! it, so a validator that accepts anything fails the test.
//!
//! Tools, never skipped when missing (the test fails and names the install step):
//! - `kubernetes-validate` (PyPI), which ships the Kubernetes JSON schemas for
//!   every release from 1.25 on, offline;
//! - `systemd-analyze` (Debian package `systemd`).

use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The one image reference every manifest uses: `IMAGE=` of `deploy/image.env`
/// (`cargo xtask render` writes it into the manifests and the Dockerfile).
fn image() -> String {
    let text = read(&deploy("image.env"));
    let image = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("IMAGE="))
        .unwrap_or_else(|| panic!("deploy/image.env has no IMAGE= line:\n{text}"))
        .trim()
        .to_string();
    image
}

/// Kubernetes releases the manifests are validated against: the oldest and the
/// newest whose schemas `kubernetes-validate` 1.37 ships.
const KUBERNETES_VERSIONS: &[&str] = &["1.25.0", "1.37.0"];

const KUBERNETES_VALIDATE_INSTALL: &str = "python3 -m venv target/deploy-check/venv && \
target/deploy-check/venv/bin/pip install kubernetes-validate==1.37.0";

/// The seed tool's four environment variables (its pod spec is a contract).
const SEED_ENV: &[&str] = &["PARTITION_LABEL", "POOL", "SATELLITE_ID", "VOLUME_GROUP"];

/// `spec` fields of the piraeus.io/v1 LinstorSatelliteConfiguration CRD
/// (piraeus-operator v2).
const LSC_SPEC_FIELDS: &[&str] = &[
    "internalTLS",
    "ipFamilies",
    "nodeAffinity",
    "nodeSelector",
    "patches",
    "podTemplate",
    "properties",
    "storagePools",
];

/// Storage pool kinds of that CRD's `spec.storagePools[]` (exactly one is set).
const LSC_POOL_KINDS: &[&str] = &[
    "filePool",
    "fileThinPool",
    "lvmPool",
    "lvmThinPool",
    "zfsPool",
    "zfsThinPool",
];

// ---------------------------------------------------------------------------------
// helpers

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn deploy(name: &str) -> PathBuf {
    root().join("deploy").join(name)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn yaml(name: &str) -> Value {
    let path = deploy(name);
    serde_norway::from_str(&read(&path))
        .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()))
}

/// A fresh scratch folder for one test under Cargo's per-target temp dir.
fn scratch(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("deploy_manifests")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

fn output_text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn str_at<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("expected a string at {pointer} in {value:#}"))
}

fn array_at<'a>(value: &'a Value, pointer: &str) -> &'a Vec<Value> {
    value
        .pointer(pointer)
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("expected a list at {pointer} in {value:#}"))
}

/// The pod spec inside a manifest: a Pod's `spec`, a workload's template spec, or
/// a LinstorSatelliteConfiguration's pod template spec.
fn pod_spec(manifest: &Value) -> &Value {
    let pointer = match str_at(manifest, "/kind") {
        "Pod" => "/spec",
        "DaemonSet" => "/spec/template/spec",
        "LinstorSatelliteConfiguration" => "/spec/podTemplate/spec",
        other => panic!("no pod spec known for kind {other}"),
    };
    manifest
        .pointer(pointer)
        .unwrap_or_else(|| panic!("{pointer} missing in {manifest:#}"))
}

/// The init container that provisions (the one running our image).
fn provisioner(manifest: &Value) -> &Value {
    let found: Vec<&Value> = array_at(pod_spec(manifest), "/initContainers")
        .iter()
        .filter(|c| c.get("image").and_then(Value::as_str) == Some(image().as_str()))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected exactly one init container with image {} in {manifest:#}",
        image()
    );
    found[0]
}

fn env_entry<'a>(container: &'a Value, name: &str) -> &'a Value {
    array_at(container, "/env")
        .iter()
        .find(|e| e.get("name").and_then(Value::as_str) == Some(name))
        .unwrap_or_else(|| panic!("env {name} missing in {container:#}"))
}

fn mount<'a>(container: &'a Value, path: &str) -> &'a Value {
    array_at(container, "/volumeMounts")
        .iter()
        .find(|m| m.get("mountPath").and_then(Value::as_str) == Some(path))
        .unwrap_or_else(|| panic!("no volume mounted at {path} in {container:#}"))
}

fn host_path_of_volume<'a>(spec: &'a Value, name: &str) -> &'a str {
    let volume = array_at(spec, "/volumes")
        .iter()
        .find(|v| v.get("name").and_then(Value::as_str) == Some(name))
        .unwrap_or_else(|| panic!("volume {name} is mounted but not declared"));
    str_at(volume, "/hostPath/path")
}

/// Every host path the provisioner needs is mounted from the host at the same path.
fn assert_host_mounts(manifest: &Value) {
    let spec = pod_spec(manifest);
    let container = provisioner(manifest);
    for path in ["/dev", "/sys", "/run/udev"] {
        let m = mount(container, path);
        assert_eq!(
            host_path_of_volume(spec, str_at(m, "/name")),
            path,
            "{path} must be the host's {path}"
        );
    }
    assert_eq!(
        mount(container, "/run/udev").get("readOnly"),
        Some(&Value::Bool(true)),
        "/run/udev must be mounted read-only"
    );
    assert_shares_host_lvm(manifest);
    assert_eq!(
        container.pointer("/securityContext/privileged"),
        Some(&Value::Bool(true)),
        "the provisioner must be privileged"
    );
}

/// The host's LVM state folders, shared so that LVM's metadata backups, archives and
/// devices file (/etc/lvm) and its locks (/run/lock/lvm) are the host's own.
const HOST_LVM_PATHS: &[&str] = &["/etc/lvm", "/run/lock/lvm"];

/// Every manifest mounts [`HOST_LVM_PATHS`] writable from the same host paths, and
/// creates them on a host that has none (a host without LVM userspace).
fn assert_shares_host_lvm(manifest: &Value) {
    let spec = pod_spec(manifest);
    let container = provisioner(manifest);
    for path in HOST_LVM_PATHS {
        let m = mount(container, path);
        assert_ne!(
            m.get("readOnly"),
            Some(&Value::Bool(true)),
            "{path} must be writable: LVM writes backups, the devices file and locks there"
        );
        let name = str_at(m, "/name");
        assert_eq!(
            host_path_of_volume(spec, name),
            *path,
            "{path} must be the host's {path}"
        );
        let volume = array_at(spec, "/volumes")
            .iter()
            .find(|v| v.get("name").and_then(Value::as_str) == Some(name))
            .unwrap_or_else(|| panic!("volume {name} is mounted but not declared"));
        assert_eq!(
            str_at(volume, "/hostPath/type"),
            "DirectoryOrCreate",
            "{path} may not exist yet on a host without LVM userspace"
        );
    }
}

// ---------------------------------------------------------------------------------
// kubernetes-validate

fn kubernetes_validate() -> PathBuf {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(path) = std::env::var_os("KUBERNETES_VALIDATE") {
        candidates.push(path.into());
    }
    candidates.push(root().join("target/deploy-check/venv/bin/kubernetes-validate"));
    candidates.push("kubernetes-validate".into());
    for candidate in &candidates {
        let works = Command::new(candidate)
            .arg("--version")
            .output()
            .is_ok_and(|out| out.status.success());
        if works {
            return candidate.clone();
        }
    }
    panic!(
        "kubernetes-validate (PyPI; ships Kubernetes' JSON schemas offline) was not found \
         (tried $KUBERNETES_VALIDATE, target/deploy-check/venv/bin/, $PATH). Install it from \
         the workspace root with:\n  {KUBERNETES_VALIDATE_INSTALL}"
    );
}

/// Runs `kubernetes-validate --strict` (unknown fields rejected) on `files` for one
/// Kubernetes release.
fn run_kubernetes_validate(files: &[PathBuf], version: &str) -> Output {
    Command::new(kubernetes_validate())
        .args(["--strict", "--kubernetes-version", version])
        .args(files)
        .output()
        .unwrap_or_else(|e| panic!("cannot run kubernetes-validate: {e}"))
}

/// Asserts every file passes for every release: exit 0, one `passed` line per file
/// and release, and no warning (kubernetes-validate only warns, exit 0, for a kind
/// it has no schema for).
fn assert_schema_valid(files: &[PathBuf]) {
    for version in KUBERNETES_VERSIONS {
        let output = run_kubernetes_validate(files, version);
        let text = output_text(&output);
        assert!(
            output.status.success(),
            "kubernetes-validate rejected a manifest for Kubernetes {version}:\n{text}"
        );
        for file in files {
            let name = file.display().to_string();
            let passed = text.lines().any(|line| {
                line.starts_with("INFO") && line.contains(&name) && line.contains(" passed ")
            });
            assert!(
                passed,
                "no `passed` line for {name} (Kubernetes {version}):\n{text}"
            );
        }
        assert!(
            !text
                .lines()
                .any(|l| l.starts_with("WARN") || l.starts_with("ERROR")),
            "kubernetes-validate warned for Kubernetes {version}:\n{text}"
        );
    }
}

/// The LinstorSatelliteConfiguration's pod template as the Pod it patches: the
/// template (metadata and spec) plus a placeholder for the operator's satellite
/// container, which the core schema requires and the sparse template leaves out.
fn satellite_pod_from_template(lsc: &Value) -> Value {
    let template = lsc
        .pointer("/spec/podTemplate")
        .unwrap_or_else(|| panic!("spec.podTemplate missing in {lsc:#}"));
    let mut metadata = template
        .get("metadata")
        .cloned()
        .unwrap_or_else(|| json!({}));
    metadata["name"] = json!("satellite-pod-template");
    let mut spec = template
        .get("spec")
        .cloned()
        .unwrap_or_else(|| panic!("spec.podTemplate.spec missing in {lsc:#}"));
    if spec.get("containers").is_none() {
        spec["containers"] = json!([{
            "name": "linstor-satellite",
            "image": "placeholder.invalid/linstor-satellite:latest"
        }]);
    }
    json!({ "apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec })
}

#[test]
fn kubernetes_manifests_pass_the_published_schemas() {
    let dir = scratch("schemas");
    let template_pod = dir.join("linstor-satellite-configuration.pod-template.json");
    let lsc = yaml("linstor-satellite-configuration.yaml");
    write(
        &template_pod,
        &satellite_pod_from_template(&lsc).to_string(),
    );
    assert_schema_valid(&[
        deploy("pod-example.yaml"),
        deploy("daemonset.yaml"),
        template_pod,
    ]);
}

#[test]
fn schema_validation_rejects_broken_manifests() {
    let dir = scratch("schemas-negative");
    let pod = yaml("pod-example.yaml");

    // `privileged` as a string, as a hand-written manifest might have it.
    let mut wrong_type = pod.clone();
    wrong_type["spec"]["initContainers"][0]["securityContext"]["privileged"] = json!("yes");
    // A misspelt field, which a lenient apply would silently drop.
    let mut unknown_field = pod.clone();
    unknown_field["spec"]["initContainers"][0]["volumeMount"] = json!([]);
    // An env var whose value comes from nowhere known.
    let mut bad_env = pod;
    bad_env["spec"]["initContainers"][0]["env"][0]["valueFrom"] = json!({ "nodeRef": "x" });

    for (name, manifest, needle) in [
        ("wrong-type.json", wrong_type, "privileged"),
        ("unknown-field.json", unknown_field, "volumeMount"),
        ("bad-env.json", bad_env, "nodeRef"),
    ] {
        let path = dir.join(name);
        write(&path, &manifest.to_string());
        for version in KUBERNETES_VERSIONS {
            let output = run_kubernetes_validate(std::slice::from_ref(&path), version);
            let text = output_text(&output);
            assert!(
                !output.status.success() && text.contains(needle),
                "kubernetes-validate accepted {name} for Kubernetes {version} \
                 (expected a complaint about `{needle}`):\n{text}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------
// what the manifests must say

#[test]
fn pod_example_keeps_the_seed_contract() {
    let pod = yaml("pod-example.yaml");
    let container = provisioner(&pod);
    assert_eq!(
        container.get("command"),
        Some(&json!(["homelab-helper", "linstor-provision-disk"])),
        "the seed's command must be used unchanged"
    );
    for name in SEED_ENV {
        let entry = env_entry(container, name);
        assert!(
            entry
                .get("value")
                .and_then(Value::as_str)
                .is_some_and(|v| !v.is_empty()),
            "{name} must have a value: {entry:#}"
        );
    }
    assert_host_mounts(&pod);
    // A fixed satellite ID is only safe on the node it names.
    assert_eq!(
        str_at(&pod, "/spec/nodeName"),
        str_at(env_entry(container, "SATELLITE_ID"), "/value"),
        "the pod with a fixed SATELLITE_ID must be pinned to that node"
    );
}

fn assert_satellite_id_is_node_name(manifest: &Value) {
    let container = provisioner(manifest);
    assert_eq!(
        env_entry(container, "SATELLITE_ID").pointer("/valueFrom/fieldRef/fieldPath"),
        Some(&json!("spec.nodeName")),
        "SATELLITE_ID must come from the node name"
    );
    for name in SEED_ENV {
        env_entry(container, name);
    }
    let on_failure = str_at(env_entry(container, "ON_FAILURE"), "/value");
    assert!(
        ["hold", "exit"].contains(&on_failure),
        "ON_FAILURE must be hold or exit, not {on_failure:?}"
    );
}

#[test]
fn daemonset_provisions_in_an_init_container_with_the_node_name_as_id() {
    let ds = yaml("daemonset.yaml");
    assert_satellite_id_is_node_name(&ds);
    assert_host_mounts(&ds);
    let selector = ds
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .unwrap_or_else(|| panic!("spec.selector.matchLabels missing"));
    for (key, value) in selector {
        assert_eq!(
            ds.pointer("/spec/template/metadata/labels")
                .and_then(|labels| labels.get(key)),
            Some(value),
            "the selector's label {key} must be on the pod template"
        );
    }
    let node_selector = ds
        .pointer("/spec/template/spec/nodeSelector")
        .and_then(Value::as_object)
        .unwrap_or_else(|| {
            panic!("the DaemonSet needs a nodeSelector (which nodes carry the partition)")
        });
    assert!(
        !node_selector.is_empty(),
        "the nodeSelector must name a label"
    );
    assert!(
        !array_at(&ds, "/spec/template/spec/containers").is_empty(),
        "a DaemonSet needs a main container"
    );
}

#[test]
fn satellite_configuration_matches_the_piraeus_crd() {
    let lsc = yaml("linstor-satellite-configuration.yaml");
    assert_eq!(str_at(&lsc, "/apiVersion"), "piraeus.io/v1");
    assert_eq!(str_at(&lsc, "/kind"), "LinstorSatelliteConfiguration");
    let name = str_at(&lsc, "/metadata/name");
    let dns_subdomain = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    assert!(
        dns_subdomain,
        "metadata.name {name:?} is not a DNS subdomain"
    );
    assert!(
        lsc.pointer("/metadata/namespace").is_none(),
        "LinstorSatelliteConfiguration is cluster-scoped: no namespace"
    );

    let spec = lsc
        .get("spec")
        .and_then(Value::as_object)
        .unwrap_or_else(|| panic!("spec missing"));
    for key in spec.keys() {
        assert!(
            LSC_SPEC_FIELDS.contains(&key.as_str()),
            "spec.{key} is not a field of LinstorSatelliteConfiguration"
        );
    }
    if let Some(selector) = spec.get("nodeSelector") {
        let all_strings = selector
            .as_object()
            .is_some_and(|map| map.values().all(Value::is_string));
        assert!(all_strings, "spec.nodeSelector must map strings to strings");
    }
    let template = spec
        .get("podTemplate")
        .and_then(Value::as_object)
        .unwrap_or_else(|| panic!("spec.podTemplate must be an object"));
    for key in template.keys() {
        assert!(
            key == "metadata" || key == "spec",
            "spec.podTemplate.{key} is not part of a pod template"
        );
    }

    // The storage pool registered in LINSTOR is the thin pool the tool keeps.
    let container = provisioner(&lsc);
    let volume_group = str_at(env_entry(container, "VOLUME_GROUP"), "/value");
    let pool = str_at(env_entry(container, "POOL"), "/value");
    let pools = array_at(&lsc, "/spec/storagePools");
    for entry in pools {
        let pool_name = str_at(entry, "/name");
        assert!(
            pool_name.len() >= 3,
            "storage pool name {pool_name:?} is shorter than 3"
        );
        let kinds: Vec<&str> = LSC_POOL_KINDS
            .iter()
            .copied()
            .filter(|kind| entry.get(*kind).is_some())
            .collect();
        assert_eq!(
            kinds.len(),
            1,
            "storage pool {pool_name} must set exactly one kind: {entry:#}"
        );
    }
    let thin = pools
        .iter()
        .find_map(|p| p.get("lvmThinPool"))
        .unwrap_or_else(|| panic!("no lvmThinPool storage pool"));
    assert_eq!(str_at(thin, "/volumeGroup"), volume_group);
    assert_eq!(str_at(thin, "/thinPool"), pool);

    assert_satellite_id_is_node_name(&lsc);
    assert_host_mounts(&lsc);
}

/// The host LVM check notices a manifest without the mounts, with a read-only one,
/// or with one that is not the host's path.
#[test]
fn host_lvm_check_rejects_manifests_without_the_host_lvm_folders() {
    let good = yaml("daemonset.yaml");
    assert_shares_host_lvm(&good);
    const MOUNTS: &str = "/spec/template/spec/initContainers/0/volumeMounts";
    const VOLUMES: &str = "/spec/template/spec/volumes";
    type Breakage = fn(&mut Value);
    let breakages: [(&str, Breakage); 3] = [
        ("no /etc/lvm mount", |m: &mut Value| {
            let list = m.pointer_mut(MOUNTS).and_then(Value::as_array_mut).unwrap();
            list.retain(|v| v.get("mountPath") != Some(&json!("/etc/lvm")));
        }),
        ("read-only /run/lock/lvm", |m: &mut Value| {
            let list = m.pointer_mut(MOUNTS).and_then(Value::as_array_mut).unwrap();
            for v in list.iter_mut() {
                if v.get("mountPath") == Some(&json!("/run/lock/lvm")) {
                    v["readOnly"] = json!(true);
                }
            }
        }),
        ("/etc/lvm from another host path", |m: &mut Value| {
            let list = m
                .pointer_mut(VOLUMES)
                .and_then(Value::as_array_mut)
                .unwrap();
            for v in list.iter_mut() {
                if v.pointer("/hostPath/path") == Some(&json!("/etc/lvm")) {
                    v["hostPath"]["path"] = json!("/var/lib/lvm");
                }
            }
        }),
    ];
    for (what, breakage) in breakages {
        let mut broken = good.clone();
        breakage(&mut broken);
        let caught = std::panic::catch_unwind(|| assert_shares_host_lvm(&broken));
        assert!(caught.is_err(), "a manifest with {what} passed the check");
    }
}

/// The operator's satellite pod has its own `run` and `run-lock` emptyDirs; a
/// volume of ours with one of those names would be merged into them.
#[test]
fn satellite_configuration_does_not_reuse_the_satellites_emptydir_names() {
    let lsc = yaml("linstor-satellite-configuration.yaml");
    for volume in array_at(pod_spec(&lsc), "/volumes") {
        let name = str_at(volume, "/name");
        assert!(
            !["run", "run-lock", "tmp"].contains(&name),
            "volume {name} would merge with the satellite's emptyDir of that name"
        );
    }
}

#[test]
fn every_volume_mount_names_a_declared_volume() {
    for file in [
        "pod-example.yaml",
        "daemonset.yaml",
        "linstor-satellite-configuration.yaml",
    ] {
        let manifest = yaml(file);
        let spec = pod_spec(&manifest);
        let declared: BTreeSet<&str> = array_at(spec, "/volumes")
            .iter()
            .map(|v| str_at(v, "/name"))
            .collect();
        let containers = ["/initContainers", "/containers"]
            .iter()
            .filter_map(|p| spec.pointer(p).and_then(Value::as_array))
            .flatten();
        for container in containers {
            let mounts = container.get("volumeMounts").and_then(Value::as_array);
            for m in mounts.into_iter().flatten() {
                let name = str_at(m, "/name");
                assert!(
                    declared.contains(name),
                    "{file}: volume {name} is mounted but not declared"
                );
            }
        }
    }
}

#[test]
fn every_manifest_uses_the_same_image() {
    for file in [
        "pod-example.yaml",
        "daemonset.yaml",
        "linstor-satellite-configuration.yaml",
    ] {
        provisioner(&yaml(file));
    }
    let image = image();
    let dockerfile = read(&root().join("Dockerfile"));
    assert!(
        dockerfile.contains(&format!("docker build -t {image} .")),
        "the Dockerfile's build comment should name the image the manifests use ({image})"
    );
}

/// The image's tag is the release version, and no file names a placeholder
/// organisation or an image other than the configured one.
#[test]
fn the_image_setting_is_the_release_version_and_the_only_image_named() {
    let image = image();
    let (repository, tag) = image
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("IMAGE {image} has no tag"));
    assert_eq!(
        tag,
        env!("CARGO_PKG_VERSION"),
        "IMAGE's tag is not Cargo.toml's version"
    );
    assert!(
        repository.ends_with("/linstor-provision-disk") && repository == repository.to_lowercase(),
        "IMAGE {image}: expected <registry>/<owner>/linstor-provision-disk in lower case"
    );
    let source = read(&deploy("image.env"));
    let source = source
        .lines()
        .find_map(|line| line.trim().strip_prefix("SOURCE="))
        .unwrap_or_else(|| panic!("deploy/image.env has no SOURCE= line"));
    let dockerfile = read(&root().join("Dockerfile"));
    assert!(
        dockerfile.contains(&format!("org.opencontainers.image.source=\"{source}\"")),
        "the Dockerfile's source label is not SOURCE={source}"
    );
    assert!(
        dockerfile.contains(&format!("org.opencontainers.image.version=\"{tag}\"")),
        "the Dockerfile's version label is not {tag}"
    );
    let mut files = vec![root().join("Dockerfile")];
    for entry in std::fs::read_dir(root().join("deploy")).expect("deploy/ is listable") {
        files.push(entry.expect("deploy/ entry").path());
    }
    for file in files {
        let text = read(&file);
        assert!(
            !text.to_lowercase().contains(concat!("your", "-org")),
            "{} names a placeholder organisation",
            file.display()
        );
        for line in text
            .lines()
            .filter(|l| l.contains("linstor-provision-disk:"))
        {
            let named = line
                .split(|c: char| c.is_whitespace() || c == '=')
                .find(|w| w.contains("/linstor-provision-disk:"));
            if let Some(named) = named {
                assert_eq!(
                    named,
                    image,
                    "{}: `{line}` names another image",
                    file.display()
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// the image: the seed's invocation through the symlink, and the Dockerfile

/// The image's layout in miniature: the binary and the `homelab-helper` symlink in
/// one folder on PATH, invoked by name as Kubernetes does with `command:`.
#[test]
fn seed_invocation_works_through_the_homelab_helper_symlink() {
    let dir = scratch("symlink");
    let binary = dir.join("linstor-provision-disk");
    std::fs::copy(env!("CARGO_BIN_EXE_linstor-provision-disk"), &binary)
        .unwrap_or_else(|e| panic!("cannot copy the binary: {e}"));
    std::os::unix::fs::symlink("linstor-provision-disk", dir.join("homelab-helper"))
        .unwrap_or_else(|e| panic!("cannot create the symlink: {e}"));
    let path = match std::env::var_os("PATH") {
        Some(old) => {
            let mut paths = vec![dir.clone()];
            paths.extend(std::env::split_paths(&old));
            std::env::join_paths(paths).unwrap_or_else(|e| panic!("bad PATH: {e}"))
        }
        None => dir.clone().into_os_string(),
    };
    let run = |args: &[&str]| {
        let output = Command::new("homelab-helper")
            .args(args)
            .env("PATH", &path)
            .output()
            .unwrap_or_else(|e| panic!("cannot run homelab-helper: {e}"));
        let text = output_text(&output);
        assert!(
            output.status.success(),
            "homelab-helper {args:?} failed:\n{text}"
        );
        text
    };
    let version = run(&["linstor-provision-disk", "--version"]);
    assert!(
        version.starts_with("linstor-provision-disk "),
        "unexpected --version output: {version}"
    );
    let help = run(&["linstor-provision-disk", "--help"]);
    for name in SEED_ENV {
        assert!(
            help.contains(&format!("[env: {name}")),
            "--help does not list the seed's {name}:\n{help}"
        );
    }
}

/// One Dockerfile instruction: keyword (upper case) and the rest of the line, with
/// continuation lines joined.
fn dockerfile_instructions(text: &str) -> Vec<(String, String)> {
    let mut instructions = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if pending.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if trimmed.starts_with('#') {
            continue; // a comment inside a continued instruction
        }
        if let Some(body) = trimmed.strip_suffix('\\') {
            pending.push_str(body.trim_end());
            pending.push(' ');
            continue;
        }
        pending.push_str(trimmed);
        let (keyword, rest) = pending
            .split_once(char::is_whitespace)
            .unwrap_or((&pending, ""));
        instructions.push((keyword.to_ascii_uppercase(), rest.trim().to_string()));
        pending.clear();
    }
    assert!(
        pending.is_empty(),
        "the Dockerfile ends inside a continued line"
    );
    instructions
}

#[test]
fn dockerfile_builds_the_static_binary_and_ships_it_with_thin_check() {
    const KNOWN: &[&str] = &[
        "FROM",
        "RUN",
        "CMD",
        "LABEL",
        "EXPOSE",
        "ENV",
        "ADD",
        "COPY",
        "ENTRYPOINT",
        "VOLUME",
        "USER",
        "WORKDIR",
        "ARG",
        "ONBUILD",
        "STOPSIGNAL",
        "HEALTHCHECK",
        "SHELL",
    ];
    let instructions = dockerfile_instructions(&read(&root().join("Dockerfile")));
    for (keyword, _) in &instructions {
        assert!(
            KNOWN.contains(&keyword.as_str()),
            "unknown instruction {keyword}"
        );
    }

    // Stages, split at FROM; ARGs before the first FROM are the global ones.
    let mut global_args = BTreeSet::new();
    let mut stages: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for (keyword, rest) in instructions {
        if keyword == "FROM" {
            stages.push((rest, Vec::new()));
        } else if let Some((_, body)) = stages.last_mut() {
            body.push((keyword, rest));
        } else {
            assert_eq!(keyword, "ARG", "only ARG may precede the first FROM");
            let name = rest
                .split('=')
                .next()
                .unwrap_or_default()
                .trim()
                .to_string();
            global_args.insert(name);
        }
    }
    assert!(
        stages.len() >= 2,
        "expected a build stage and a final stage"
    );
    for (from, _) in &stages {
        let mut rest = from.as_str();
        while let Some(start) = rest.find("${") {
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .unwrap_or_else(|| panic!("unclosed ${{ in FROM {from}"));
            assert!(
                global_args.contains(&after[..end]),
                "FROM {from} uses ${{{}}}, which no ARG before the first FROM declares",
                &after[..end]
            );
            rest = &after[end..];
        }
    }

    let (build_from, build) = &stages[0];
    let words: Vec<&str> = build_from.split_whitespace().collect();
    assert!(
        words.len() == 3 && words[1].eq_ignore_ascii_case("AS"),
        "the first stage must be named: FROM <image> AS <name>, got {build_from}"
    );
    let build_name = words[2];
    let workdir = build
        .iter()
        .rev()
        .find(|(k, _)| k == "WORKDIR")
        .map(|(_, dir)| dir.trim_end_matches('/').to_string())
        .unwrap_or_else(|| panic!("the build stage must set WORKDIR"));
    assert!(
        build
            .iter()
            .any(|(k, r)| k == "RUN" && r.contains("cargo xtask image --rootfs-only")),
        "the build stage must run `cargo xtask image --rootfs-only` (the static binary, \
         thin_check with its libraries, the homelab-helper link, /tmp and the licences)"
    );

    let (final_from, last) = &stages[stages.len() - 1];
    assert_eq!(
        final_from, "scratch",
        "the final stage must be FROM scratch, as `cargo xtask image` builds it"
    );
    let expected_copy = format!("--from={build_name} {workdir}/target/image/rootfs/ /");
    let copies: Vec<&str> = last
        .iter()
        .filter(|(k, _)| k == "COPY" || k == "ADD")
        .map(|(_, r)| r.as_str())
        .collect();
    assert_eq!(
        copies,
        [expected_copy.as_str()],
        "the final stage must copy exactly the rootfs `cargo xtask image --rootfs-only` assembles"
    );
    assert!(
        !last.iter().any(|(k, _)| k == "RUN"),
        "a FROM scratch stage has no shell to RUN anything"
    );
    let entrypoints: Vec<&str> = last
        .iter()
        .filter(|(k, _)| k == "ENTRYPOINT")
        .map(|(_, r)| r.as_str())
        .collect();
    assert_eq!(entrypoints.len(), 1, "the final stage needs one ENTRYPOINT");
    let entrypoint: Vec<String> = serde_json::from_str(entrypoints[0])
        .unwrap_or_else(|e| panic!("ENTRYPOINT must be exec form (a JSON list): {e}"));
    assert_eq!(entrypoint, ["/usr/local/bin/linstor-provision-disk"]);
    assert!(
        !last.iter().any(|(k, _)| k == "CMD"),
        "no CMD: without arguments the tool provisions from its environment"
    );
}

#[test]
fn dockerfile_parser_sees_a_broken_dockerfile() {
    // The structural check must notice a missing symlink and a shell-form entrypoint.
    let broken = "FROM rust:1 AS build\nWORKDIR /src\nRUN cargo xtask dist\n\
                  FROM debian:bookworm-slim\nENTRYPOINT linstor-provision-disk\n";
    let instructions = dockerfile_instructions(broken);
    assert!(!instructions
        .iter()
        .any(|(k, r)| k == "RUN" && r.contains("/usr/local/bin/homelab-helper")));
    let entrypoint = instructions
        .iter()
        .find(|(k, _)| k == "ENTRYPOINT")
        .map(|(_, r)| r.as_str())
        .unwrap_or_default();
    assert!(serde_json::from_str::<Vec<String>>(entrypoint).is_err());
    // Continuation lines are joined into one instruction.
    let joined = dockerfile_instructions("RUN a \\\n    && b\n");
    assert_eq!(joined, [("RUN".to_string(), "a && b".to_string())]);
}

// ---------------------------------------------------------------------------------
// systemd

const UNIT: &str = "linstor-provision-disk.service";

/// `key=value` lines of one section of a unit file (keys may repeat).
fn unit_section(text: &str, section: &str) -> Vec<(String, String)> {
    let header = format!("[{section}]");
    let mut inside = false;
    let mut entries = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            inside = line == header;
        } else if inside && !line.is_empty() && !line.starts_with('#') && !line.starts_with(';') {
            let (key, value) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("not key=value in [{section}]: {line}"));
            entries.push((key.trim().to_string(), value.trim().to_string()));
        }
    }
    entries
}

fn unit_values(entries: &[(String, String)], key: &str) -> Vec<String> {
    entries
        .iter()
        .filter(|(k, _)| k == key)
        .flat_map(|(_, v)| v.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .collect()
}

/// Runs `systemd-analyze verify` on a copy of `unit_text` whose ExecStart points at
/// a copy of the built binary. Returns the output and the lines about this unit.
fn systemd_verify(test: &str, unit_text: &str) -> (Output, Vec<String>) {
    let dir = scratch(test);
    let binary = dir.join("linstor-provision-disk");
    std::fs::copy(env!("CARGO_BIN_EXE_linstor-provision-disk"), &binary)
        .unwrap_or_else(|e| panic!("cannot copy the binary: {e}"));
    let unit = dir.join(UNIT);
    write(
        &unit,
        &unit_text.replace(
            "/usr/local/bin/linstor-provision-disk",
            &binary.display().to_string(),
        ),
    );
    let output = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&unit)
        .env("SYSTEMD_LOG_COLOR", "0")
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run systemd-analyze ({e}); install it with `apt-get install systemd`")
        });
    let about_unit = output_text(&output)
        .lines()
        .filter(|line| line.contains(UNIT))
        .map(str::to_string)
        .collect();
    (output, about_unit)
}

#[test]
fn systemd_unit_passes_systemd_analyze_verify() {
    let (output, complaints) = systemd_verify("unit", &read(&deploy(UNIT)));
    assert!(
        output.status.success() && complaints.is_empty(),
        "systemd-analyze verify complained about {UNIT}:\n{}",
        output_text(&output)
    );
}

#[test]
fn systemd_analyze_verify_rejects_broken_units() {
    let good = read(&deploy(UNIT));
    // A misspelt key (systemd ignores it with a warning, exit 0: we count warnings).
    let misspelt = good.replace("RemainAfterExit=yes", "RemainAfterExitt=yes");
    let (output, complaints) = systemd_verify("unit-misspelt", &misspelt);
    assert!(
        !output.status.success() || !complaints.is_empty(),
        "a misspelt key went unnoticed:\n{}",
        output_text(&output)
    );
    // An ExecStart whose binary does not exist (exit 1).
    let missing = good.replace(
        "ExecStart=/usr/local/bin/linstor-provision-disk",
        "ExecStart=/nonexistent/linstor-provision-disk",
    );
    let (output, _) = systemd_verify("unit-missing-binary", &missing);
    assert!(
        !output.status.success(),
        "a missing ExecStart binary went unnoticed:\n{}",
        output_text(&output)
    );
}

#[test]
fn systemd_unit_runs_once_before_the_satellite_and_can_reach_block_devices() {
    let text = read(&deploy(UNIT));
    let unit = unit_section(&text, "Unit");
    let service = unit_section(&text, "Service");
    let install = unit_section(&text, "Install");
    assert_eq!(unit_values(&service, "Type"), ["oneshot"]);
    assert_eq!(unit_values(&service, "RemainAfterExit"), ["yes"]);
    assert!(unit_values(&unit, "Before").contains(&"linstor-satellite.service".to_string()));
    let after = unit_values(&unit, "After");
    assert!(
        after
            .iter()
            .any(|u| u == "local-fs.target" || u == "systemd-udev-settle.service"),
        "order after local-fs.target or systemd-udev-settle.service"
    );
    assert!(unit_values(&install, "RequiredBy").contains(&"linstor-satellite.service".to_string()));
    assert_eq!(
        unit_values(&service, "ExecStart").join(" "),
        "/usr/local/bin/linstor-provision-disk --on-failure exit"
    );
    assert_eq!(
        unit_values(&service, "EnvironmentFile"),
        ["-/etc/default/linstor-provision-disk"]
    );
    // Settings that would hide the partition or device-mapper, or stop LVM loading
    // dm-thin-pool, must not creep in with later hardening.
    for (key, forbidden) in [
        ("PrivateDevices", "yes"),
        ("DevicePolicy", "closed"),
        ("DevicePolicy", "strict"),
        ("ProtectKernelModules", "yes"),
        ("DynamicUser", "yes"),
        ("ProtectSystem", "strict"),
    ] {
        assert!(
            !unit_values(&service, key).iter().any(|v| v == forbidden),
            "{key}={forbidden} would break provisioning"
        );
    }
    // LVM writes /etc/lvm/{backup,archive,devices} (ProtectSystem=full makes /etc
    // read-only, so /etc/lvm must be listed) and /run/lock/lvm (writable under
    // ProtectSystem=full unless hidden or made read-only).
    assert!(
        unit_values(&service, "ReadWritePaths")
            .iter()
            .any(|p| p.trim_start_matches(['-', '+']) == "/etc/lvm"),
        "ReadWritePaths must include /etc/lvm"
    );
    for key in ["ReadOnlyPaths", "InaccessiblePaths", "TemporaryFileSystem"] {
        for value in unit_values(&service, key) {
            let path = value.trim_start_matches(['-', '+']);
            let path = path.split(':').next().unwrap_or(path);
            assert!(
                !["/", "/run", "/run/lock", "/run/lock/lvm", "/etc/lvm"].contains(&path),
                "{key}={value} would stop LVM writing its locks or backups"
            );
        }
    }
    if let Some(user) = unit_values(&service, "User").first() {
        assert_eq!(user, "root", "LVM needs root");
    }
}

/// Every setting in the environment file example (set or commented out) is one the
/// binary reads.
#[test]
fn env_example_names_only_variables_the_binary_reads() {
    let output = Command::new(env!("CARGO_BIN_EXE_linstor-provision-disk"))
        .arg("--help")
        .output()
        .unwrap_or_else(|e| panic!("cannot run --help: {e}"));
    let help = output_text(&output);
    let text = read(&deploy("linstor-provision-disk.env.example"));
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let setting = line.trim().trim_start_matches('#');
        let Some((name, _)) = setting.split_once('=') else {
            continue;
        };
        let is_name = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        if is_name {
            names.insert(name.to_string());
        }
    }
    for name in SEED_ENV {
        assert!(names.contains(*name), "the env example must set {name}");
    }
    for name in &names {
        assert!(
            help.contains(&format!("[env: {name}")),
            "{name} in the env example is not read by the binary (not in --help):\n{help}"
        );
    }
}

// ---------------------------------------------------------------------------------
// metrics: the textfile collector folder and the alert rules

const PROMTOOL_INSTALL: &str = "apt-get install prometheus (or `cargo xtask deps`)";

/// The provisioner writes its metrics file into a folder mounted from the same host
/// path (where the host's node_exporter reads it), writable, and named `*.prom`.
#[test]
fn manifests_mount_the_folder_the_metrics_file_is_written_to() {
    for file in ["daemonset.yaml", "linstor-satellite-configuration.yaml"] {
        let manifest = yaml(file);
        let container = provisioner(&manifest);
        let path = Path::new(str_at(env_entry(container, "METRICS_FILE"), "/value"));
        assert_eq!(
            path.extension().and_then(|e| e.to_str()),
            Some("prom"),
            "{file}: node_exporter's textfile collector reads only *.prom"
        );
        let folder = path
            .parent()
            .and_then(Path::to_str)
            .unwrap_or_else(|| panic!("{file}: {} has no folder", path.display()));
        let m = mount(container, folder);
        assert_ne!(
            m.get("readOnly"),
            Some(&Value::Bool(true)),
            "{file}: {folder} must be writable"
        );
        assert_eq!(
            host_path_of_volume(pod_spec(&manifest), str_at(m, "/name")),
            folder,
            "{file}: {folder} must be the host's, where node_exporter reads it"
        );
    }
    let help = output_text(
        &Command::new(env!("CARGO_BIN_EXE_linstor-provision-disk"))
            .arg("--help")
            .output()
            .unwrap_or_else(|e| panic!("cannot run --help: {e}")),
    );
    assert!(
        help.contains("--metrics-file") && help.contains("[env: METRICS_FILE"),
        "the binary does not read METRICS_FILE:\n{help}"
    );
}

/// The rule groups of deploy/prometheus-rule.yaml (a PrometheusRule).
fn rule_groups() -> Value {
    let rule = yaml("prometheus-rule.yaml");
    assert_eq!(str_at(&rule, "/apiVersion"), "monitoring.coreos.com/v1");
    assert_eq!(str_at(&rule, "/kind"), "PrometheusRule");
    rule.pointer("/spec")
        .cloned()
        .unwrap_or_else(|| panic!("PrometheusRule without spec"))
}

/// `alert name → expr` of every rule.
fn rule_exprs(groups: &Value) -> Vec<(String, String)> {
    array_at(groups, "/groups")
        .iter()
        .flat_map(|g| array_at(g, "/rules"))
        .map(|r| {
            (
                str_at(r, "/alert").to_owned(),
                str_at(r, "/expr").to_owned(),
            )
        })
        .collect()
}

/// Words of `expr` that name one of our metrics (`linstor_provision_disk_…`).
fn our_metric_names(expr: &str) -> Vec<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| word.starts_with("linstor_provision_disk_"))
        .map(str::to_owned)
        .collect()
}

/// Every metric an alert uses is one the tool emits: the names come from the
/// code's list of families, not from a copy.
#[test]
fn alert_rules_use_only_metrics_the_tool_emits() {
    let emitted: BTreeSet<&str> = linstor_provision_disk::metrics::ALL_FAMILIES
        .iter()
        .map(|f| f.name)
        .collect();
    let rules = rule_exprs(&rule_groups());
    assert!(!rules.is_empty(), "no rules");
    for (alert, expr) in &rules {
        let used = our_metric_names(expr);
        assert!(
            !used.is_empty(),
            "{alert} uses none of the tool's metrics: {expr}"
        );
        for name in used {
            assert!(
                emitted.contains(name.as_str()),
                "{alert} uses {name}, which the tool does not emit (it emits {emitted:?})"
            );
        }
    }
    // The check itself: a misspelt name is caught.
    assert!(!emitted.contains("linstor_provision_disk_pool_metadata_percent"));
}

fn promtool(args: &[&str], dir: &Path) -> Output {
    Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run promtool ({e}); install it: {PROMTOOL_INSTALL}"))
}

/// `promtool check rules` accepts the rule group, and `promtool test rules` shows
/// that each threshold alert's expression (read from the file) selects a pool at
/// 80% metadata and a metadata area at 50%, and not one just below.
#[test]
fn alert_rules_pass_promtool_and_fire_at_their_thresholds() {
    let dir = scratch("prometheus-rules");
    let groups = rule_groups();
    write(&dir.join("rules.json"), &groups.to_string());
    let check = promtool(&["check", "rules", "rules.json"], &dir);
    assert!(
        check.status.success(),
        "promtool check rules:\n{}",
        output_text(&check)
    );
    let exprs: std::collections::BTreeMap<String, String> =
        rule_exprs(&groups).into_iter().collect();
    let expr = |alert: &str| {
        exprs
            .get(alert)
            .cloned()
            .unwrap_or_else(|| panic!("no alert {alert}"))
    };
    let series = |name: &str, labels: &str, value: u64| json!({ "series": format!("linstor_provision_disk_{name}{{{labels}}}"), "values": format!("{value}x10") });
    let pool = |p: &str| format!("partition_label=\"l\",vg=\"vg\",pool=\"{p}\"");
    let vg = |v: &str| format!("partition_label=\"l\",vg=\"{v}\"");
    let tests = json!({
        "rule_files": ["rules.json"],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [
                series("pool_metadata_used_bytes", &pool("at80"), 80),
                series("pool_metadata_size_bytes", &pool("at80"), 100),
                series("pool_metadata_used_bytes", &pool("at79"), 79),
                series("pool_metadata_size_bytes", &pool("at79"), 100),
                series("vg_metadata_area_used_bytes", &vg("at50"), 5000),
                series("vg_metadata_area_free_bytes", &vg("at50"), 5000),
                series("vg_metadata_area_used_bytes", &vg("at49"), 4900),
                series("vg_metadata_area_free_bytes", &vg("at49"), 5100),
            ],
            "promql_expr_test": [
                {
                    "expr": expr("LinstorThinPoolMetadataHigh"),
                    "eval_time": "5m",
                    "exp_samples": [{ "labels": format!("{{{}}}", pool("at80")), "value": 0.8 }]
                },
                {
                    "expr": expr("LinstorVgMetadataAreaHigh"),
                    "eval_time": "5m",
                    "exp_samples": [{ "labels": format!("{{{}}}", vg("at50")), "value": 0.5 }]
                }
            ]
        }]
    });
    write(&dir.join("tests.json"), &tests.to_string());
    let test = promtool(&["test", "rules", "tests.json"], &dir);
    assert!(
        test.status.success(),
        "promtool test rules:\n{}",
        output_text(&test)
    );
}
