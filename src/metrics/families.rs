//! Every metric family the tool emits: name and help text, in one list that the
//! deploy checks read (`tests/deploy_manifests.rs` takes the alert rules' names from
//! [`ALL_FAMILIES`]).

/// One metric family (all are gauges).
#[derive(Debug, PartialEq, Eq)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
}

macro_rules! families {
    ($($constant:ident = $name:literal, $help:literal;)*) => {
        $(pub const $constant: Family = Family { name: $name, help: $help };)*
        /// Every family, in the order they are printed.
        pub const ALL_FAMILIES: &[Family] = &[$($constant),*];
    };
}

families! {
    SATELLITE_ID_INFO = "linstor_provision_disk_satellite_id_info",
        "The satellite ID recorded on the volume group (value always 1; the ID is the satellite_id label, source says where it is kept).";
    VG_FREE_EXTENTS = "linstor_provision_disk_vg_free_extents",
        "Extents of the volume group not allocated to any logical volume (vgs vg_free_count).";
    VG_FREE_BYTES = "linstor_provision_disk_vg_free_bytes",
        "Bytes of the volume group not allocated to any logical volume (vgs vg_free).";
    VG_METADATA_AREA_SIZE_BYTES = "linstor_provision_disk_vg_metadata_area_size_bytes",
        "Size of the partition's LVM metadata area, its 512-byte header included (vgs vg_mda_size).";
    VG_METADATA_AREA_USED_BYTES = "linstor_provision_disk_vg_metadata_area_used_bytes",
        "Size of the committed VG metadata text in the metadata area (LVM keeps room for two copies of it).";
    VG_METADATA_AREA_FREE_BYTES = "linstor_provision_disk_vg_metadata_area_free_bytes",
        "How much the VG metadata text may still grow before LVM refuses every change (vgs vg_mda_free).";
    POOL_ACTIVE = "linstor_provision_disk_pool_active",
        "1 when the thin pool's device serves I/O, 0 when it is inactive (LINSTOR then reads the pool as full).";
    POOL_DATA_USED_BYTES = "linstor_provision_disk_pool_data_used_bytes",
        "Bytes of the thin pool's data device holding data (device-mapper thin-pool status).";
    POOL_DATA_SIZE_BYTES = "linstor_provision_disk_pool_data_size_bytes",
        "Size of the thin pool's data device (lvs lv_size).";
    POOL_METADATA_USED_BYTES = "linstor_provision_disk_pool_metadata_used_bytes",
        "Bytes of the thin pool's metadata device in use (device-mapper thin-pool status); a full one stops the pool.";
    POOL_METADATA_SIZE_BYTES = "linstor_provision_disk_pool_metadata_size_bytes",
        "Size of the thin pool's metadata device (lvs lv_metadata_size).";
    RUN_OUTCOME = "linstor_provision_disk_run_outcome",
        "How the last provisioning run ended: 1 for its outcome (success, refusal or error), 0 for the others.";
    RUN_EXIT_CODE = "linstor_provision_disk_run_exit_code",
        "Exit code of the last provisioning run (while it holds after a failure: 1, the code of --on-failure exit).";
    RUN_HOLDING = "linstor_provision_disk_run_holding",
        "1 while the last provisioning run holds after a failure, waiting for its hold marker to be removed.";
    RUN_DURATION_SECONDS = "linstor_provision_disk_run_duration_seconds",
        "Wall-clock duration of the last provisioning run (of its last attempt, after a hold).";
    RUN_LVM_COMMANDS = "linstor_provision_disk_run_lvm_commands",
        "LVM commands the last provisioning run ran (0 on a steady start).";
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names are what Prometheus accepts and what the exposition writer prints; help
    /// texts need no escaping in either text format.
    #[test]
    fn names_and_help_texts_need_no_escaping() {
        let mut seen = std::collections::BTreeSet::new();
        for family in ALL_FAMILIES {
            assert!(seen.insert(family.name), "{} twice", family.name);
            assert!(family.name.starts_with("linstor_provision_disk_"));
            assert!(family
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
            assert!(!family.name.ends_with("_total"), "{}: a gauge", family.name);
            assert!(!family.help.contains(['\\', '"', '\n']), "{}", family.name);
        }
    }
}
