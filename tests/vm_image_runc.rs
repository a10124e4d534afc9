//! The container image (`cargo xtask image`: `target/image/linstor-provision-disk.oci.tar`)
//! run the way a kubelet runs the init container, with runc in a VM where udevd runs:
//! the OCI archive is unpacked with umoci and every run gets a runtime config like the
//! one a CRI runtime writes for `deploy/pod-example.yaml` (privileged: all
//! capabilities, no seccomp, every device allowed; `/dev`, `/sys`, `/run/udev` (read
//! only), `/etc/lvm` and `/run/lock/lvm` bound from the node; the seed's four
//! environment variables; `/dev/termination-log` bound to a node file). Covered:
//! - a fresh disk is provisioned (tagged VG, thin pool);
//! - a steady rerun runs no LVM command (`lvm_commands=0`, seqno unchanged);
//! - the seed's invocation `homelab-helper linstor-provision-disk` works unchanged;
//! - a reset (another SATELLITE_ID) removes the old thin volume and retags;
//! - an inactive pool on a grown partition (sgdisk + partx in the running VM) is
//!   grown and activated, and LVM ran the image's own `/usr/sbin/thin_check` on it
//!   and it passed (LVM's "Executing:" line at LOG_LEVEL=debug);
//! - a wrong label with `--on-failure exit` exits non-zero and writes the reason,
//!   naming the label, to the termination message file;
//! - the image's own thin_check starts (`-V`) on the loader and libraries it ships;
//! - the archive's one tag is a multi-arch image index listing linux/amd64 and
//!   linux/arm64; umoci 0.4 cannot choose a platform from an index (it calls the tag
//!   ambiguous), so the test picks the amd64 manifest, as a CRI runtime pulling for an
//!   amd64 node does, and adds it to the guest's copy of `index.json` as
//!   `<tag>-amd64` for umoci to unpack;
//! - the default hold is released by the seed's recovery step, `rm` of the marker
//!   with `runc exec` (the image's `rm` is the binary, which removes only that).
mod common;

use common::*;
use serde_json::{json, Value};
use vmtest::{DiskSpec, GuestRun, TestBed};

/// Where the guest unpacks the image (shared by every run, as a node's image store).
const ROOTFS: &str = "/tmp/image/rootfs";
const ENTRYPOINT: &str = "/usr/local/bin/linstor-provision-disk";

/// Every capability runc 1.1 knows: a privileged container gets them all.
const ALL_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// A bind mount from the node, as a hostPath volume becomes one.
fn host_bind(path: &str, mode: &str) -> Value {
    json!({"destination": path, "type": "bind", "source": path, "options": ["rbind", mode]})
}

/// The OCI runtime config of one init-container start: `args` as the pod spec's
/// command, the seed's environment, the pod example's volumes.
fn runtime_config(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut environment = vec![
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned(),
        "PARTITION_LABEL=linstor-storage".to_owned(),
        "VOLUME_GROUP=linstor-vg".to_owned(),
        "POOL=linstor-pool".to_owned(),
    ];
    for (name, value) in env {
        environment.retain(|e| !e.starts_with(&format!("{name}=")));
        environment.push(format!("{name}={value}"));
    }
    let config = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": environment,
            "cwd": "/",
            "capabilities": {
                "bounding": ALL_CAPABILITIES,
                "effective": ALL_CAPABILITIES,
                "permitted": ALL_CAPABILITIES,
            },
            "noNewPrivileges": false
        },
        "root": {"path": ROOTFS, "readonly": false},
        "hostname": "provision-disk",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            host_bind("/dev", "rw"),
            host_bind("/sys", "rw"),
            host_bind("/run/udev", "ro"),
            host_bind("/etc/lvm", "rw"),
            host_bind("/run/lock/lvm", "rw"),
            {"destination": "/dev/termination-log", "type": "bind",
             "source": "/tmp/termination-log", "options": ["bind", "rw"]},
        ],
        "linux": {
            "namespaces": [
                {"type": "pid"}, {"type": "ipc"}, {"type": "uts"},
                {"type": "mount"}, {"type": "network"}
            ],
            "resources": {"devices": [{"allow": true, "access": "rwm"}]}
        }
    });
    serde_json::to_string_pretty(&config).unwrap_or_else(|e| panic!("runtime config: {e}"))
}

/// Shell lines writing the bundle `/tmp/bundle-<name>` for one start.
fn bundle(name: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    format!(
        "mkdir -p /tmp/bundle-{name}\ncat >/tmp/bundle-{name}/config.json <<'CONFIG'\n{}\nCONFIG\n",
        runtime_config(args, env)
    )
}

/// One member of the OCI archive, as JSON (`tar -xOf`).
fn archive_json(archive: &std::path::Path, member: &str) -> Value {
    let out = std::process::Command::new("tar")
        .arg("-xOf")
        .arg(archive)
        .arg(member)
        .output()
        .unwrap_or_else(|e| panic!("cannot run tar: {e}"));
    assert!(
        out.status.success(),
        "{} has no {member}: {}",
        archive.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{member} in {} is not JSON: {e}", archive.display()))
}

/// The archive's `index.json` with the amd64 manifest of its multi-arch index added
/// under the tag `<tag>-amd64`, and that tag. Checks on the way that `index.json`
/// holds exactly one tag (`podman load` and `skopeo copy oci-archive:<file>` need
/// that) naming an image index that lists linux/amd64 and linux/arm64.
fn index_with_amd64_tag(archive: &std::path::Path) -> (String, String) {
    const REF_NAME: &str = "org.opencontainers.image.ref.name";
    let mut top = archive_json(archive, "index.json");
    let entries = top["manifests"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        entries.len(),
        1,
        "index.json should hold one tag, the multi-arch image index: {top}"
    );
    let entry = &entries[0];
    assert_eq!(
        text(&entry["mediaType"]),
        "application/vnd.oci.image.index.v1+json",
        "the tag does not name an image index: {entry}"
    );
    let tag = text(&entry["annotations"][REF_NAME]);
    let digest = text(&entry["digest"]);
    let hex = digest
        .strip_prefix("sha256:")
        .unwrap_or_else(|| panic!("the tag's digest is not sha256: {digest}"));
    let index = archive_json(archive, &format!("blobs/sha256/{hex}"));
    let manifests = index["manifests"].as_array().cloned().unwrap_or_default();
    let platforms: Vec<String> = manifests
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                text(&m["platform"]["os"]),
                text(&m["platform"]["architecture"])
            )
        })
        .collect();
    assert_eq!(
        platforms,
        ["linux/amd64", "linux/arm64"],
        "the image index should list both architectures: {index}"
    );
    let mut amd64 = manifests[0].clone();
    amd64["annotations"] = json!({ REF_NAME: format!("{tag}-amd64") });
    let listed = top["manifests"]
        .as_array_mut()
        .unwrap_or_else(|| panic!("index.json has no manifests list"));
    listed.push(amd64);
    (top.to_string(), format!("{tag}-amd64"))
}

fn seqno(run: &GuestRun, step: &str) -> u64 {
    number(&vg_row(run, step)["vg_seqno"])
}

#[test]
fn the_image_provisions_resets_and_grows_under_runc() {
    let archive = image_archive("linstor-provision-disk.oci.tar");
    let (amd64_index, amd64_tag) = index_with_amd64_tag(&archive);
    // 512 MiB partition with 512 MiB free behind it, to grow into while the VM runs.
    let bed = TestBed::new(vec![
        DiskSpec::new("storage", 1024).partition("linstor-storage", Some(512))
    ])
    .unwrap_or_else(|e| panic!("could not set up the VM test bed: {e}"))
    .with_file(&archive, "/image/linstor-provision-disk.oci.tar")
    .with_file(&binary_under_test(), "/image/binary-under-test");

    let mut script = String::new();
    for (name, args, env) in [
        ("fresh", vec![ENTRYPOINT], vec![("SATELLITE_ID", "node-01")]),
        (
            "steady",
            vec![ENTRYPOINT],
            vec![("SATELLITE_ID", "node-01")],
        ),
        (
            "seed",
            vec!["homelab-helper", "linstor-provision-disk"],
            vec![("SATELLITE_ID", "node-01")],
        ),
        ("reset", vec![ENTRYPOINT], vec![("SATELLITE_ID", "node-02")]),
        (
            "grow",
            vec![ENTRYPOINT],
            vec![("SATELLITE_ID", "node-02"), ("LOG_LEVEL", "debug")],
        ),
        (
            "thin-check-version",
            vec!["/usr/sbin/thin_check", "-V"],
            vec![],
        ),
        (
            "hold",
            vec![ENTRYPOINT],
            vec![
                ("SATELLITE_ID", "node-02"),
                ("PARTITION_LABEL", "no-such-label"),
            ],
        ),
        (
            "wrong",
            vec![ENTRYPOINT, "--on-failure", "exit"],
            vec![
                ("SATELLITE_ID", "node-02"),
                ("PARTITION_LABEL", "no-such-label"),
            ],
        ),
    ] {
        script.push_str(&bundle(name, &args, &env));
    }
    assert!(
        amd64_tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)),
        "the image's tag {amd64_tag:?} has characters an OCI tag cannot have"
    );
    script.push_str(&format!(
        "AMD64_TAG={amd64_tag}\ncat >/tmp/index-amd64.json <<'INDEX'\n{amd64_index}\nINDEX\n"
    ));
    script.push_str(
        r#"
VGS='vgs --reportformat json -o vg_name,vg_seqno,vg_tags,vg_free_count,vg_size --units m --nosuffix'
LVS='lvs -a --reportformat json -o lv_name,lv_active --units m --nosuffix'
mkdir -p /run/lock/lvm /tmp/oci
: >/tmp/termination-log
step untar tar -xf /image/linstor-provision-disk.oci.tar -C /tmp/oci
step select-amd64 cp /tmp/index-amd64.json /tmp/oci/index.json
step tags umoci ls --layout /tmp/oci
step unpack umoci unpack --image "/tmp/oci:$AMD64_TAG" /tmp/image
step image-files ls /tmp/image/rootfs/usr/local/bin /tmp/image/rootfs/usr/sbin
step same-binary cmp /tmp/image/rootfs/usr/local/bin/linstor-provision-disk /image/binary-under-test
step fresh runc run --bundle /tmp/bundle-fresh lpd-fresh
step vgs-fresh $VGS linstor-vg
step lvs-fresh $LVS linstor-vg
step steady runc run --bundle /tmp/bundle-steady lpd-steady
step vgs-steady $VGS linstor-vg
step seed runc run --bundle /tmp/bundle-seed lpd-seed
step vgs-seed $VGS linstor-vg
step thin lvcreate -q -V 64m -T linstor-vg/linstor-pool -n pvc-1
step reset runc run --bundle /tmp/bundle-reset lpd-reset
step vgs-reset $VGS linstor-vg
step lvs-reset $LVS linstor-vg
step pool-off vgchange -an linstor-vg
step lvs-off $LVS linstor-vg
START=$(sgdisk --info=1 /dev/vda | sed -n 's/^First sector: \([0-9]*\).*/\1/p')
step grow-part sgdisk --delete=1 --new=1:$START:0 --change-name=1:linstor-storage --typecode=1:8300 /dev/vda
step partx partx --update --nr 1 /dev/vda
step settle udevadm settle --timeout=60
step part-size cat /sys/class/block/vda1/size
step grow runc run --bundle /tmp/bundle-grow lpd-grow
step vgs-grow $VGS linstor-vg
step lvs-grow $LVS linstor-vg
step pool-table dmsetup table linstor--vg-linstor--pool
step wrong runc run --bundle /tmp/bundle-wrong lpd-wrong
step termination cat /tmp/termination-log
step vgs-wrong $VGS linstor-vg
step thin-check-version runc run --bundle /tmp/bundle-thin-check-version lpd-thin-check
step hold-start sh -c 'runc run --detach --bundle /tmp/bundle-hold lpd-hold >/tmp/hold.log 2>&1'
step hold-wait sh -c 'for i in $(seq 1 600); do [ -e /tmp/image/rootfs/tmp/.disk-provisioner-wait ] && exit 0; sleep 0.1; done; exit 1'
step hold-refuse runc exec lpd-hold rm /etc/passwd
step hold-release runc exec lpd-hold rm /tmp/.disk-provisioner-wait
step hold-retried sh -c 'for i in $(seq 1 600); do grep -q "hold marker removed; retrying" /tmp/hold.log && exit 0; sleep 0.1; done; exit 1'
step hold-stop sh -c 'runc kill lpd-hold KILL; sleep 1; runc delete --force lpd-hold'
step hold-log cat /tmp/hold.log
step runc-list runc list --quiet
"#,
    );
    let run = boot_keeping_console(
        &bed,
        &container_boot_options(),
        &format!("{PRELUDE}{script}"),
        "vm_image_runc",
    );
    eprintln!(
        "guest ran {} steps in {:?} (script started at {:?})",
        run.steps.len(),
        run.elapsed,
        run.guest_uptime_at_script
    );
    for step in [
        "untar",
        "select-amd64",
        "unpack",
        "thin",
        "pool-off",
        "grow-part",
        "partx",
        "settle",
    ] {
        run.expect_success(step);
    }
    let tags = &run.expect_success("tags").stdout;
    assert!(
        tags.lines().any(|line| line.trim() == amd64_tag),
        "umoci ls does not list the amd64 tag {amd64_tag}:\n{tags}"
    );
    run.check(
        run.step("same-binary").exit_code == 0,
        "the image holds another build than the binary under test: rebuild it with \
         `cargo xtask image` (or point LINSTOR_PROVISION_DISK_BIN at target/dist)",
    );
    let files = &run.expect_success("image-files").stdout;
    for name in ["linstor-provision-disk", "homelab-helper", "thin_check"] {
        assert!(files.contains(name), "the image lacks {name}:\n{files}");
    }

    // (a) A fresh disk: tagged VG with a thin pool taking all of it.
    expect_provisioned(&run, "fresh");
    let fresh = vg_row(&run, "vgs-fresh");
    assert_eq!(text(&fresh["vg_tags"]), "linstor-satellite-id=node-01");
    // Free: the room to double the pool's metadata and its spare once (one extent each; docs/incoming/wt-sizing.md).
    assert_eq!(number(&fresh["vg_free_count"]), 2, "{fresh}");
    assert!(lv_names(&run, "lvs-fresh").contains(&"linstor-pool".to_owned()));

    // (b) The same ID again: nothing written.
    let mut checks = Checks::default();
    checks.steady(&run, "steady");
    checks.that(
        seqno(&run, "vgs-steady") == seqno(&run, "vgs-fresh"),
        "the steady start changed the VG seqno",
    );
    // (e) The seed's pod spec command, unchanged: also a steady start.
    checks.steady(&run, "seed");
    checks.says(&run, "seed", "disk provisioning completed successfully");
    checks.that(
        seqno(&run, "vgs-seed") == seqno(&run, "vgs-fresh"),
        "the seed-invocation start changed the VG seqno",
    );
    checks.finish();

    // (c) Another ID: the old thin volume is gone, the pool is tagged for node-02.
    let reset = expect_provisioned(&run, "reset");
    assert!(
        reset
            .stderr
            .contains("satellite id mismatch, resetting lvm configuration"),
        "{}",
        reset.stderr
    );
    assert_eq!(
        text(&vg_row(&run, "vgs-reset")["vg_tags"]),
        "linstor-satellite-id=node-02"
    );
    let after_reset = lv_names(&run, "lvs-reset");
    assert!(
        !after_reset.contains(&"pvc-1".to_owned()),
        "{after_reset:?}"
    );
    assert!(after_reset.contains(&"linstor-pool".to_owned()));

    // (d) An inactive pool on a partition grown in place: grown, activated, and the
    // image's thin_check ran on the activation and passed.
    let pool_active = |step: &str| -> String {
        rows(&run, step, "lv")
            .iter()
            .find(|row| text(&row["lv_name"]) == "linstor-pool")
            .map(|row| text(&row["lv_active"]))
            .unwrap_or_else(|| panic!("{step}: no linstor-pool row"))
    };
    assert_eq!(
        pool_active("lvs-off"),
        "",
        "vgchange -an left the pool active"
    );
    let sectors: u64 = run
        .expect_success("part-size")
        .stdout
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("partition size: {e}"));
    assert!(
        sectors > 1000 * 2048,
        "the partition did not grow: {sectors} sectors"
    );
    let grow = expect_provisioned(&run, "grow");
    let thin_check_line = grow
        .stderr
        .lines()
        .find(|line| line.contains("Executing:") && line.contains("/usr/sbin/thin_check"));
    assert!(
        thin_check_line.is_some(),
        "LVM did not run the image's /usr/sbin/thin_check while activating the pool:\n{}",
        grow.stderr
    );
    assert!(
        !grow.stderr.contains("thin_check is not installed")
            && !grow.stderr.contains("Check of pool")
            && !grow.stderr.contains("Check is skipped")
            && !grow.stderr.contains("Integrity check of metadata"),
        "thin_check was skipped or failed:\n{}",
        grow.stderr
    );
    let grown = vg_row(&run, "vgs-grow");
    let size_mib: f64 = text(&grown["vg_size"]).parse().unwrap_or(0.0);
    assert!(size_mib > 1000.0, "the VG did not grow: {grown}");
    // Free: the room to double the pool's metadata and its spare once (one extent each; docs/incoming/wt-sizing.md).
    assert_eq!(number(&grown["vg_free_count"]), 2, "{grown}");
    assert_eq!(pool_active("lvs-grow"), "active");
    assert!(
        run.expect_success("pool-table")
            .stdout
            .contains(" thin-pool "),
        "the pool's device is not loaded"
    );

    // (f) A wrong label: non-zero exit, the reason (naming the label) in the
    // termination message file the runtime bound, and nothing written.
    let wrong = run.step("wrong");
    assert_ne!(
        wrong.exit_code, 0,
        "a wrong label exited 0:\n{}",
        wrong.stderr
    );
    let message = &run.expect_success("termination").stdout;
    assert!(
        message.contains("no-such-label"),
        "the termination message does not name the label: {message:?}"
    );
    assert_eq!(
        seqno(&run, "vgs-wrong"),
        seqno(&run, "vgs-grow"),
        "the failed start wrote metadata"
    );
    // The image's thin_check starts on its own loader and libraries.
    let version = &run.expect_success("thin-check-version").stdout;
    assert!(
        version.trim().starts_with("0.") || version.trim().starts_with("1."),
        "thin_check -V printed no version: {version:?}"
    );

    // The default on failure is to hold; the seed's recovery step, `rm` of the
    // marker inside the container (which has no shell or coreutils), releases it,
    // and the image's rm refuses anything else.
    run.expect_success("hold-start");
    run.expect_success("hold-wait");
    let refused = run.step("hold-refuse");
    assert_eq!(
        refused.exit_code, 2,
        "the image's rm did not refuse /etc/passwd: {refused:?}"
    );
    assert!(
        refused.stderr.contains("removes only the hold marker"),
        "{}",
        refused.stderr
    );
    run.expect_success("hold-release");
    run.check(
        run.step("hold-retried").exit_code == 0,
        &format!(
            "the holding run did not retry after the release:\n{}",
            run.step("hold-log").stdout
        ),
    );
    run.expect_success("hold-stop");
    run.expect_success("hold-log");
    // runc removed every container it ran.
    assert_eq!(run.expect_success("runc-list").stdout.trim(), "");
}
