//! `--version` names the tool's version, the commit it was built from and the LVM and
//! libblkid versions linked in — asked of the libraries themselves. Checks the debug
//! build (shared libdevmapper and libblkid) and, when `LINSTOR_PROVISION_DISK_DIST`
//! names it (as `cargo xtask test` does), the static artifact with LVM2 2.03.16 and
//! util-linux 2.38.1 inside. No VM: nothing here touches a disk.
use std::process::Command;

fn version_of(binary: &str) -> String {
    let output = Command::new(binary)
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {binary}: {e}"));
    assert!(
        output.status.success(),
        "{binary} --version failed: {output:?}"
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The commit `git` reports for this checkout, or "unknown" without git.
fn expected_commit() -> String {
    Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn assert_lines(text: &str, lvm: &str, blkid: &str) {
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert_eq!(
        lines[0],
        concat!("linstor-provision-disk ", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(lines[1], format!("commit: {}", expected_commit()), "{text}");
    assert!(lines[2].starts_with(&format!("LVM: {lvm}")), "{text}");
    assert!(
        lines[3].starts_with(&format!("libblkid: {blkid}")),
        "{text}"
    );
}

#[test]
fn the_debug_build_names_its_commit_and_the_shared_libraries() {
    let text = version_of(env!("CARGO_BIN_EXE_linstor-provision-disk"));
    // Debian bookworm's libdevmapper (LVM 2.03.16's) and libblkid.
    assert_lines(&text, "2.03.", "2.");
    assert!(text.contains("(device-mapper library 1.02."), "{text}");
    assert!(text.contains("; shared libraries)"), "{text}");
}

#[test]
fn the_static_artifact_names_its_commit_and_the_libraries_linked_in() {
    let Some(artifact) = std::env::var_os("LINSTOR_PROVISION_DISK_DIST") else {
        panic!(
            "LINSTOR_PROVISION_DISK_DIST is not set: build the artifact (`cargo xtask dist`) \
             and set it to target/dist/linstor-provision-disk (`cargo xtask test` does)"
        );
    };
    let text = version_of(&artifact.to_string_lossy());
    assert_lines(
        &text,
        "2.03.16-2 (device-mapper library 1.02.185 (2022-05-18); linked statically)",
        "2.38.1 (04-Aug-2022)",
    );
}
