//! Generates the liblvm2cmd bindings from `vendor-headers/lvm2cmd.h` and links the
//! library. `LVM2CMD_STATIC_DIR` points at a folder of static archives (liblvm2cmd.a
//! and its dependencies) for the fully static musl build; otherwise the system's
//! shared liblvm2cmd (Debian: liblvm2-dev) is linked. `BLKID_STATIC_DIR` (with
//! libblkid.a) goes with it when that LVM was built with blkid wiping.
//!
//! It also records two facts for `--version`: the git commit (`git rev-parse`;
//! "unknown" without git or outside a checkout, or `LINSTOR_PROVISION_DISK_GIT_COMMIT`
//! when set, for builds from a source archive) and how LVM is linked.
use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let commit = git_commit();
    println!("cargo:rustc-env=LINSTOR_PROVISION_DISK_GIT_COMMIT={commit}");
    println!(
        "cargo:rustc-env=LINSTOR_PROVISION_DISK_LVM_LINK={}",
        if env::var_os("LVM2CMD_STATIC_DIR").is_some() {
            "linked statically"
        } else {
            "shared libraries"
        }
    );
    println!(
        "cargo:rustc-env=LINSTOR_PROVISION_DISK_LVM_RELEASE={}",
        lvm_release()
    );
    println!("cargo:rerun-if-changed=vendor-headers/lvm2cmd.h");
    println!("cargo:rerun-if-env-changed=LVM2CMD_STATIC_DIR");
    println!("cargo:rerun-if-env-changed=BLKID_STATIC_DIR");
    if env::var_os("CARGO_FEATURE_LVM2CMD").is_none() {
        return;
    }
    let bindings = bindgen::Builder::default()
        .header("vendor-headers/lvm2cmd.h")
        .allowlist_function("lvm2_.*")
        .allowlist_type("lvm2_log_fn_t")
        .allowlist_var("LVM2_.*")
        .generate();
    let bindings = match bindings {
        Ok(bindings) => bindings,
        Err(error) => {
            panic!("bindgen failed on vendor-headers/lvm2cmd.h: {error} (is libclang-dev installed? `cargo xtask deps`)")
        }
    };
    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap_or_default()).join("lvm2cmd.rs");
    if let Err(error) = bindings.write_to_file(&out) {
        panic!("cannot write {}: {error}", out.display());
    }
    match env::var_os("LVM2CMD_STATIC_DIR") {
        Some(dir) => {
            println!(
                "cargo:rustc-link-search=native={}",
                PathBuf::from(&dir).display()
            );
            let dir = PathBuf::from(dir);
            // Link order matters for static archives: each resolves the one before.
            for lib in ["lvm2cmd", "device-mapper", "base", "daemonclient", "aio"] {
                let archive = dir.join(format!("lib{lib}.a"));
                if !archive.is_file() {
                    panic!(
                        "LVM2CMD_STATIC_DIR has no {} (build the static LVM2 with `cargo xtask dist`)",
                        archive.display()
                    );
                }
                println!("cargo:rerun-if-changed={}", archive.display());
                println!("cargo:rustc-link-lib=static={lib}");
            }
            // liblvm2cmd's blkid wiping calls libblkid: its archive must come after
            // LVM's (libblkid-rs-sys links the same archive for the tool's own probe).
            if let Some(blkid_dir) = env::var_os("BLKID_STATIC_DIR") {
                let blkid_dir = PathBuf::from(blkid_dir);
                let archive = blkid_dir.join("libblkid.a");
                if !archive.is_file() {
                    panic!(
                        "BLKID_STATIC_DIR has no {} (build the static libblkid with `cargo xtask dist`)",
                        archive.display()
                    );
                }
                println!("cargo:rerun-if-changed={}", archive.display());
                println!("cargo:rustc-link-search=native={}", blkid_dir.display());
                println!("cargo:rustc-link-lib=static=blkid");
            }
        }
        None => {
            println!("cargo:rustc-link-lib=dylib=lvm2cmd");
            // dm_get_library_version for `--version` (liblvm2cmd's own dependency).
            println!("cargo:rustc-link-lib=dylib=devmapper");
        }
    }
}

/// The LVM2 release built against: `LVM2CMD_VERSION` (xtask sets it to the Debian
/// source version its static build compiled), else the installed `liblvm2-dev`
/// (dpkg), else "unknown". LVM exports no call that returns its own release; its
/// device-mapper library's version is asked at run time.
fn lvm_release() -> String {
    println!("cargo:rerun-if-env-changed=LVM2CMD_VERSION");
    if let Some(version) = env::var_os("LVM2CMD_VERSION") {
        return version.to_string_lossy().into_owned();
    }
    Command::new("dpkg-query")
        .args(["-W", "-f=${Version}", "liblvm2-dev"])
        .output()
        .ok()
        .filter(|out| out.status.success() && !out.stdout.is_empty())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// The commit being built: the override, else `git rev-parse HEAD` (12 hex digits),
/// else "unknown". Reruns when HEAD or the branch it names moves.
fn git_commit() -> String {
    println!("cargo:rerun-if-env-changed=LINSTOR_PROVISION_DISK_GIT_COMMIT");
    if let Some(commit) = env::var_os("LINSTOR_PROVISION_DISK_GIT_COMMIT") {
        return commit.to_string_lossy().into_owned();
    }
    let git = |args: &[&str]| -> Option<String> {
        let output = Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()?;
        let text = String::from_utf8(output.stdout).ok()?;
        (output.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
    };
    let Some(commit) = git(&["rev-parse", "--short=12", "HEAD"]) else {
        return "unknown".into();
    };
    let mut watched = vec!["HEAD".to_string(), "packed-refs".to_string()];
    if let Some(reference) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(reference);
    }
    for name in watched {
        if let Some(path) = git(&["rev-parse", "--path-format=absolute", "--git-path", &name]) {
            if Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
    commit
}
