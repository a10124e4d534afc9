//! Generates the liblvm2cmd bindings from `vendor-headers/lvm2cmd.h` and links the
//! library. `LVM2CMD_STATIC_DIR` points at a folder of static archives (liblvm2cmd.a
//! and its dependencies) for the fully static musl build; otherwise the system's
//! shared liblvm2cmd (Debian: liblvm2-dev) is linked. `BLKID_STATIC_DIR` (with
//! libblkid.a) goes with it when that LVM was built with blkid wiping.
use std::env;
use std::path::PathBuf;

fn main() {
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
        None => println!("cargo:rustc-link-lib=dylib=lvm2cmd"),
    }
}
