//! The container image (`cargo xtask image`: `target/image/linstor-provision-disk.docker.tar`)
//! as the init container of `deploy/pod-example.yaml`, played by `podman kube play
//! --runtime runc` in a VM where udevd runs. The manifest is copied unchanged into the
//! guest and rewritten there: the init container's image becomes the loaded archive,
//! the satellite (main container) becomes a busybox stand-in imported in the guest that
//! records whether the thin pool's device exists when it starts, and the pod gets
//! `restartPolicy: Never` (podman 4.3 applies the pod's restart policy to init
//! containers as well: under the default `Always` it restarts an init container that
//! succeeded while removing it, and the pod never starts; Kubernetes never restarts a
//! succeeded init container). Covered:
//! - the init container (the manifest's `homelab-helper linstor-provision-disk`)
//!   provisions the disk (the VG is tagged with the manifest's SATELLITE_ID) before
//!   the main container starts: the main container saw the pool's device, and
//!   podman's events show the init container exiting 0 before the main one started;
//! - with a wrong PARTITION_LABEL (and ON_FAILURE=exit) the main container never
//!   starts, and `podman logs` of the init container names the label.
mod common;

use common::*;
use vmtest::{DiskSpec, TestBed};

/// The main container that replaces the satellite: records whether the pool's
/// device existed when it started, then idles like a long-running satellite.
const STAND_IN: &str = r#"      image: localhost/satellite-stand-in:1
      command:
        - /bin/busybox
        - sh
        - -c
        - if [ -e /host-dev/mapper/linstor--vg-linstor--pool ]; then echo pool-present; else echo pool-missing; fi >/marker/started; exec sleep 600
      volumeMounts:
        - name: dev
          mountPath: /host-dev
        - name: marker
          mountPath: /marker
"#;

/// Rewrites /deploy/pod-example.yaml into /tmp/pod.yaml (see the module comment).
const REWRITE: &str = r#"
awk -v image=localhost/linstor-provision-disk:under-test -v standin=/tmp/stand-in.yaml '
  /^spec:$/ { print; print "  restartPolicy: Never"; next }
  /^ *image: [^ ]*\/linstor-provision-disk:[^ ]*$/ { sub(/[^ ]*\/linstor-provision-disk:[^ ]*$/, image) }
  /^ *image: drbd\.io\/linstor-satellite:latest$/ { while ((getline line < standin) > 0) print line; next }
  { print }
  END {
    print "    - name: marker"
    print "      hostPath:"
    print "        path: /tmp/marker"
    print "        type: DirectoryOrCreate"
  }' /deploy/pod-example.yaml >/tmp/pod.yaml
awk '{ print } /^      env:$/ { print "        - name: ON_FAILURE"; print "          value: \"exit\"" }' /tmp/pod.yaml |
  sed 's/value: "linstor-storage"/value: "no-such-label"/' >/tmp/pod-wrong.yaml
"#;

/// What `podman inspect --format "$STATE"` printed for one container.
#[derive(Debug)]
struct ContainerState {
    status: String,
    exit_code: i64,
    never_started: bool,
}

impl ContainerState {
    fn of(run: &vmtest::GuestRun, step: &str) -> ContainerState {
        let out = &run.expect_success(step).stdout;
        let number = |field: &str| -> i128 {
            field
                .parse()
                .unwrap_or_else(|e| panic!("{step}: {field:?} in {out:?}: {e}"))
        };
        match out.split_whitespace().collect::<Vec<_>>().as_slice() {
            [status, code, zero] => ContainerState {
                status: (*status).to_owned(),
                exit_code: number(code) as i64,
                never_started: *zero == "true",
            },
            _ => panic!("{step}: unexpected inspect output {out:?}"),
        }
    }
}

#[test]
fn podman_plays_the_pod_example_and_the_init_container_gates_the_satellite() {
    let archive = image_archive("linstor-provision-disk.docker.tar");
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/pod-example.yaml");
    let bed = TestBed::new(vec![
        DiskSpec::new("storage", 512).partition("linstor-storage", None)
    ])
    .unwrap_or_else(|e| panic!("could not set up the VM test bed: {e}"))
    .with_file(&archive, "/image/linstor-provision-disk.docker.tar")
    .with_file(&manifest, "/deploy/pod-example.yaml");

    let script = format!(
        r#"
cat >/tmp/stand-in.yaml <<'YAML'
{STAND_IN}YAML
{REWRITE}
VGS='vgs --reportformat json -o vg_name,vg_seqno,vg_tags'
INIT=linstor-satellite-provision-disk
MAIN=linstor-satellite-satellite
STATE='{{{{.State.Status}}}} {{{{.State.ExitCode}}}} {{{{.State.StartedAt.IsZero}}}}'
mkdir -p /tmp/stand-in/bin /tmp/marker
cp /usr/bin/busybox /tmp/stand-in/bin/busybox
ln -s busybox /tmp/stand-in/bin/sh
step load podman load --quiet --input /image/linstor-provision-disk.docker.tar
step tag sh -c 'podman tag "$(podman images --quiet | head -n 1)" localhost/linstor-provision-disk:under-test'
step stand-in sh -c 'tar -C /tmp/stand-in -cf - . | podman import --quiet - localhost/satellite-stand-in:1'
step rewritten cat /tmp/pod.yaml
step rewritten-wrong cat /tmp/pod-wrong.yaml
step play podman --runtime runc kube play --network none /tmp/pod.yaml
step marker cat /tmp/marker/started
step init-gone podman container exists $INIT
step events podman events --stream=false --filter type=container --format '{{{{.Status}}}} {{{{.Name}}}} {{{{.ContainerExitCode}}}}'
step main-times podman inspect --format "$STATE" $MAIN
step vgs $VGS linstor-vg
step down podman pod rm --force --time 0 linstor-satellite
rm -f /tmp/marker/started
step play-wrong podman --runtime runc kube play --network none /tmp/pod-wrong.yaml
step wrong-log podman logs $INIT
step wrong-init podman inspect --format "$STATE" $INIT
step wrong-main podman inspect --format "$STATE" $MAIN
step wrong-marker test -e /tmp/marker/started
step vgs-wrong $VGS linstor-vg
step down-wrong podman pod rm --force --time 0 linstor-satellite
"#
    );
    let run = boot_keeping_console(
        &bed,
        &container_boot_options(),
        &format!("{PRELUDE}{script}"),
        "vm_image_podman",
    );
    eprintln!(
        "guest ran {} steps in {:?} (script started at {:?})",
        run.steps.len(),
        run.elapsed,
        run.guest_uptime_at_script
    );
    for step in ["load", "tag", "stand-in", "down", "down-wrong"] {
        run.expect_success(step);
    }

    // The copy of the manifest: the init container runs the image under test, the
    // satellite is the stand-in, everything else as in deploy/.
    let pod = &run.expect_success("rewritten").stdout;
    for wanted in [
        "image: localhost/linstor-provision-disk:under-test",
        "image: localhost/satellite-stand-in:1",
        "- homelab-helper",
        "value: \"linstor-storage\"",
        "privileged: true",
        "path: /tmp/marker",
    ] {
        assert!(
            pod.contains(wanted),
            "the rewritten pod lacks {wanted:?}:\n{pod}"
        );
    }
    assert!(
        !pod.contains("ghcr.io/") && !pod.contains("drbd.io/"),
        "an image reference was not rewritten:\n{pod}"
    );
    let wrong_pod = &run.expect_success("rewritten-wrong").stdout;
    assert!(
        wrong_pod.contains("value: \"no-such-label\"") && wrong_pod.contains("name: ON_FAILURE"),
        "{wrong_pod}"
    );

    // The pod: the init container provisioned, then the satellite started and saw the pool.
    run.expect_success("play");
    // podman removes an init container that succeeded; its events remain.
    assert_eq!(
        run.step("init-gone").exit_code,
        1,
        "the succeeded init container was kept"
    );
    let events: Vec<&str> = run.expect_success("events").stdout.lines().collect();
    let position = |event: &str| {
        events
            .iter()
            .position(|line| line.trim() == event)
            .unwrap_or_else(|| panic!("no event {event:?} in:\n{}", events.join("\n")))
    };
    let init_died = position("died linstor-satellite-provision-disk 0");
    let main_started = position("start linstor-satellite-satellite 0");
    assert!(
        init_died < main_started,
        "the main container started before the init container exited:\n{}",
        events.join("\n")
    );
    assert_eq!(
        run.expect_success("marker").stdout.trim(),
        "pool-present",
        "the main container started before the pool existed"
    );
    let main = ContainerState::of(&run, "main-times");
    assert_eq!(main.status, "running", "main container: {main:?}");
    let vg = vg_row(&run, "vgs");
    assert_eq!(text(&vg["vg_tags"]), "linstor-satellite-id=node-01");

    // A wrong label: the init container fails with the reason, the satellite never starts.
    let wrong_log = &run.step("wrong-log");
    let wrong_output = format!("{}{}", wrong_log.stdout, wrong_log.stderr);
    assert!(
        wrong_output.contains("no-such-label"),
        "the init container's log does not name the label (play exited {}):\n{wrong_output}",
        run.step("play-wrong").exit_code
    );
    let failed = ContainerState::of(&run, "wrong-init");
    assert_eq!(
        (failed.status.as_str(), failed.exit_code),
        ("exited", 1),
        "the failing init container"
    );
    let never = ContainerState::of(&run, "wrong-main");
    assert!(
        never.never_started && never.status != "running",
        "the main container ran despite the failed init container: {never:?}"
    );
    assert_eq!(
        run.step("wrong-marker").exit_code,
        1,
        "the main container wrote its marker"
    );
    assert_eq!(
        vg_row(&run, "vgs-wrong"),
        vg,
        "the failed start changed the VG"
    );
}
