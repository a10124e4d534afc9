//! `--version`: the tool's version, the commit it was built from, and the versions
//! of the LVM and libblkid libraries linked into this binary (asked of the libraries
//! themselves, so a shared-library upgrade shows).

/// The long text `--version` prints after the program name.
pub fn long_version() -> String {
    format!(
        "{}\ncommit: {}\nLVM: {}\nlibblkid: {}",
        env!("CARGO_PKG_VERSION"),
        env!("LINSTOR_PROVISION_DISK_GIT_COMMIT"),
        lvm_version(),
        blkid_version()
    )
}

#[cfg(feature = "lvm2cmd")]
fn lvm_version() -> String {
    let library = crate::ffi::lvm2cmd::library_version().unwrap_or_else(|| "unknown".into());
    format!(
        "{} (device-mapper library {library}; {})",
        env!("LINSTOR_PROVISION_DISK_LVM_RELEASE"),
        env!("LINSTOR_PROVISION_DISK_LVM_LINK")
    )
}

#[cfg(not(feature = "lvm2cmd"))]
fn lvm_version() -> String {
    "not linked (built without the lvm2cmd feature)".into()
}

fn blkid_version() -> String {
    match libblkid_rs::get_library_version() {
        Ok((_, version, date)) => format!("{version} ({date})"),
        Err(_) => "unknown".into(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_long_version_names_the_tool_commit_and_both_libraries() {
        let text = super::long_version();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], env!("CARGO_PKG_VERSION"), "{text}");
        assert!(
            lines[1].starts_with("commit: ") && lines[1].len() > 8,
            "{text}"
        );
        assert!(lines[2].starts_with("LVM: "), "{text}");
        assert!(lines[3].starts_with("libblkid: 2."), "{text}");
        #[cfg(feature = "lvm2cmd")]
        assert!(
            !lines[2].contains("unknown"),
            "LVM's library did not report its version: {text}"
        );
    }
}
