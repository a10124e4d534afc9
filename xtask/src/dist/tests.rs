use super::{
    artifact_path_for, check_no_build_paths, check_static, parse_targets, remap_path_flags,
    toolchain, Arch, BuildPaths,
};
use std::path::PathBuf;

/// A minimal 64-bit little-endian ELF header for `machine` of type `kind`, with one
/// program header of type `segment`.
fn elf(machine: u16, kind: u16, segment: u32) -> Vec<u8> {
    let mut bytes = vec![0u8; 64 + 56];
    bytes[..6].copy_from_slice(b"\x7fELF\x02\x01");
    bytes[16..18].copy_from_slice(&kind.to_le_bytes());
    bytes[18..20].copy_from_slice(&machine.to_le_bytes());
    bytes[32..40].copy_from_slice(&64u64.to_le_bytes());
    bytes[54..56].copy_from_slice(&56u16.to_le_bytes());
    bytes[56..58].copy_from_slice(&1u16.to_le_bytes());
    bytes[64..68].copy_from_slice(&segment.to_le_bytes());
    bytes
}

const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;
const PT_LOAD: u32 = 1;
const PT_INTERP: u32 = 3;

#[test]
fn every_spelling_of_an_architecture_is_accepted() {
    for name in ["aarch64", "arm64", "aarch64-unknown-linux-musl"] {
        assert_eq!(parse_targets(name), Ok(vec![Arch::Aarch64]), "{name}");
    }
    for name in ["x86_64", "amd64", "x86_64-unknown-linux-musl"] {
        assert_eq!(parse_targets(name), Ok(vec![Arch::X86_64]), "{name}");
    }
    assert_eq!(parse_targets("all"), Ok(Arch::ALL.to_vec()));
    let refused = parse_targets("riscv64").unwrap_err();
    assert!(
        refused.contains("riscv64") && refused.contains("aarch64"),
        "{refused}"
    );
}

#[test]
fn x86_64_keeps_its_artifact_path_and_aarch64_gets_its_own_folder() {
    let x86 = artifact_path_for(Arch::X86_64);
    assert!(
        x86.ends_with("dist/linstor-provision-disk"),
        "{}",
        x86.display()
    );
    let arm = artifact_path_for(Arch::Aarch64);
    assert!(
        arm.ends_with("dist/aarch64/linstor-provision-disk"),
        "{}",
        arm.display()
    );
}

#[test]
fn the_native_build_keeps_its_cache_keys_and_aarch64_has_its_own_caches() {
    let native = toolchain::for_arch(Arch::X86_64);
    assert_eq!(native.cache_text(), "");
    assert_eq!(native.cache_suffix, "");
    let cross = toolchain::for_arch(Arch::Aarch64);
    assert_ne!(cross.cache_text(), "");
    assert_ne!(cross.cache_suffix, "");
    assert!(native.configure_args().is_empty() && native.env().is_empty());
    assert!(cross
        .configure_args()
        .contains(&"--host=aarch64-linux-musl".to_owned()));
}

#[test]
fn a_static_executable_passes_only_for_its_own_machine() {
    let arm = elf(183, ET_EXEC, PT_LOAD);
    assert_eq!(check_static(&arm, Arch::Aarch64), Ok(()));
    let wrong = check_static(&arm, Arch::X86_64).unwrap_err();
    assert!(wrong.contains("x86_64") && wrong.contains("183"), "{wrong}");
    assert_eq!(
        check_static(&elf(62, ET_EXEC, PT_LOAD), Arch::X86_64),
        Ok(())
    );
}

#[test]
fn static_pie_dynamic_and_truncated_files_are_refused() {
    assert!(check_static(&elf(183, ET_DYN, PT_LOAD), Arch::Aarch64).is_err());
    assert!(check_static(&elf(183, ET_EXEC, PT_INTERP), Arch::Aarch64).is_err());
    let truncated = &elf(183, ET_EXEC, PT_LOAD)[..66];
    assert!(check_static(truncated, Arch::Aarch64).is_err());
    assert!(check_static(b"#!/bin/sh\n", Arch::Aarch64).is_err());
}

fn paths() -> BuildPaths {
    BuildPaths {
        workspace: PathBuf::from("/work/checkout"),
        target: PathBuf::from("/work/checkout/target"),
        cargo_home: Some(PathBuf::from("/root/.cargo")),
        rustup_home: Some(PathBuf::from("/root/.rustup")),
    }
}

#[test]
fn an_artifact_naming_the_checkout_the_cargo_home_or_a_c_build_folder_is_refused() {
    let leaks = [
        (
            "the target folder",
            "/work/checkout/target/lvm2-musl/2.03.16-7fe8b500f54da652/work/lvm2/configure --enable-static_link",
        ),
        (
            "the cargo home",
            "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/uuid-1.29.3/src/error.rs",
        ),
        ("the checkout", "/work/checkout/src/main.rs"),
        (
            "the rustup home",
            "/root/.rustup/toolchains/stable/lib/rustlib/src/rust/library/core/src/lib.rs",
        ),
    ];
    for (what, leak) in leaks {
        let mut bytes = b"\x7fELF\0some code\0".to_vec();
        bytes.extend_from_slice(leak.as_bytes());
        bytes.extend_from_slice(b"\0more\0");
        let refused = check_no_build_paths(&bytes, &paths()).unwrap_err();
        assert!(
            refused.contains(what) && refused.contains(leak),
            "{what}: {refused}"
        );
    }
}

#[test]
fn an_artifact_with_only_remapped_and_fixed_paths_passes() {
    let bytes = b"\0/build/target/x86_64-unknown-linux-musl/release/build/out/lvm2cmd.rs\0\
/cargo/registry/src/index.crates.io-1949cf8c6b5b557f/uuid-1.29.3/src/error.rs\0\
/rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/core/src/str/mod.rs\0\
./configure --enable-static_link\0/etc/lvm/lvm.conf\0/work/checkou\0";
    assert_eq!(check_no_build_paths(bytes, &paths()), Ok(()));
}

#[test]
fn the_root_folder_is_never_taken_for_a_build_folder() {
    let root = BuildPaths {
        workspace: PathBuf::from("/"),
        target: PathBuf::from("/target"),
        cargo_home: None,
        rustup_home: None,
    };
    assert_eq!(check_no_build_paths(b"\0/etc/lvm\0", &root), Ok(()));
}

#[test]
fn every_build_folder_is_remapped_the_most_specific_last() {
    let flags = remap_path_flags(&paths());
    assert_eq!(
        flags,
        [
            "--remap-path-prefix=/root/.rustup=/rustup",
            "--remap-path-prefix=/root/.cargo=/cargo",
            "--remap-path-prefix=/work/checkout=/build",
            "--remap-path-prefix=/work/checkout/target=/build/target",
        ]
    );
}
