//! What the operator asked for, validated before the disk is touched: a bad name or
//! ID is rejected (exit code 2) before anything is read or written.
pub mod names;
pub mod size;
pub mod vg_path;

use crate::satellite_id::{self, SatelliteIdError};
use crate::units::Bytes;
use names::{LvName, PartitionLabel, VgName};
use serde::Serialize;
use std::path::Path;
use thiserror::Error;

/// A validated provisioning request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProvisionConfig {
    pub partition_label: PartitionLabel,
    pub volume_group: VgName,
    pub pool: LvName,
    pub satellite_id: String,
    /// The VG tag that records `satellite_id`.
    pub satellite_id_tag: String,
    /// CHUNK_SIZE when set; `None`: chosen for the pool's size as LVM's default
    /// `thin_pool_chunk_size_policy` ("generic") would (see `plan::sizing`).
    pub chunk_size_bytes: Option<Bytes>,
    pub zero_new_blocks: bool,
    /// Overwrite a foreign signature or a foreign VG on the partition.
    pub force: bool,
}

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("the partition label is empty; set PARTITION_LABEL (or --partition-label) to the GPT partition name, e.g. linstor-storage")]
    EmptyLabel,
    #[error("invalid VOLUME_GROUP: {0}")]
    VolumeGroup(names::NameError),
    #[error("invalid VOLUME_GROUP: {0}")]
    VolumeGroupPath(vg_path::VgPathError),
    #[error("invalid POOL: {0}")]
    Pool(names::NameError),
    #[error("invalid SATELLITE_ID: {0}")]
    SatelliteId(SatelliteIdError),
    #[error("invalid chunk size: {0}")]
    ChunkSize(size::SizeError),
}

/// The raw inputs, as flags or environment variables gave them.
#[derive(Debug, Clone)]
pub struct ProvisionInputs {
    pub partition_label: String,
    pub volume_group: String,
    pub pool: String,
    pub satellite_id: String,
    /// `None`: not set (the chunk size follows the pool's size).
    pub chunk_size: Option<String>,
    pub zero_new_blocks: bool,
    pub force: bool,
}

#[cfg(test)]
impl ProvisionInputs {
    /// The seed documentation's example values, for tests.
    pub(crate) fn example() -> Self {
        ProvisionInputs {
            partition_label: "linstor-storage".into(),
            volume_group: "linstor-vg".into(),
            pool: "linstor-pool".into(),
            satellite_id: "node-01".into(),
            chunk_size: Some("512K".into()),
            zero_new_blocks: false,
            force: false,
        }
    }
}

impl ProvisionConfig {
    /// Validates `inputs` against LVM's and LINSTOR's naming rules and this
    /// machine's `/dev` (LVM refuses a VG name whose `/dev/<name>` is taken).
    pub fn from_inputs(inputs: ProvisionInputs) -> Result<Self, ConfigError> {
        Self::from_inputs_with_dev(inputs, Path::new(vg_path::DEV_DIR))
    }

    /// [`Self::from_inputs`] with `dev` standing for `/dev`.
    pub fn from_inputs_with_dev(inputs: ProvisionInputs, dev: &Path) -> Result<Self, ConfigError> {
        let partition_label =
            PartitionLabel::new(&inputs.partition_label).map_err(|_| ConfigError::EmptyLabel)?;
        let volume_group =
            VgName::wanted(&inputs.volume_group).map_err(ConfigError::VolumeGroup)?;
        let pool = LvName::wanted_pool(&inputs.pool).map_err(ConfigError::Pool)?;
        vg_path::check_vg_path_free(dev, &volume_group).map_err(ConfigError::VolumeGroupPath)?;
        satellite_id::check_configured(&inputs.satellite_id).map_err(ConfigError::SatelliteId)?;
        let satellite_id_tag =
            satellite_id::encode_tag(&inputs.satellite_id).map_err(ConfigError::SatelliteId)?;
        let chunk_size_bytes = inputs
            .chunk_size
            .as_deref()
            .map(size::parse_thin_chunk_size)
            .transpose()
            .map_err(ConfigError::ChunkSize)?;
        Ok(ProvisionConfig {
            partition_label,
            volume_group,
            pool,
            satellite_id: inputs.satellite_id,
            satellite_id_tag,
            chunk_size_bytes,
            zero_new_blocks: inputs.zero_new_blocks,
            force: inputs.force,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::partition::test_tree::TempDir;

    fn inputs() -> ProvisionInputs {
        ProvisionInputs::example()
    }

    #[test]
    fn seed_defaults_validate() {
        let config = ProvisionConfig::from_inputs(inputs());
        assert!(
            matches!(config, Ok(ref c) if c.chunk_size_bytes == Some(Bytes(512 << 10))
            && c.satellite_id_tag == "linstor-satellite-id=node-01")
        );
    }

    #[test]
    fn bad_inputs_are_rejected_before_anything_runs() {
        type Mutation = Box<dyn Fn(&mut ProvisionInputs)>;
        let cases: Vec<Mutation> = vec![
            Box::new(|i| i.partition_label.clear()),
            Box::new(|i| i.volume_group = "bad name".into()),
            Box::new(|i| i.pool = "pool_tmeta".into()),
            Box::new(|i| i.satellite_id.clear()),
            Box::new(|i| i.satellite_id = "x".repeat(5000)),
            Box::new(|i| i.satellite_id = "node-01\n".into()),
            Box::new(|i| i.satellite_id = "node-01 ".into()),
            Box::new(|i| i.satellite_id = " node-01".into()),
            Box::new(|i| i.satellite_id = "node\u{1b}-01".into()),
            Box::new(|i| i.chunk_size = Some("100K".into())),
            Box::new(|i| i.volume_group = "vg.data".into()),
            Box::new(|i| i.pool = "pool+1".into()),
            Box::new(|i| i.volume_group = "mapper".into()),
            Box::new(|i| i.volume_group = "null".into()),
        ];
        let dev = TempDir::new("config-dev");
        if let Err(e) = std::fs::write(dev.path().join("null"), "") {
            panic!("{e}");
        }
        for (index, mutate) in cases.iter().enumerate() {
            let mut bad = inputs();
            mutate(&mut bad);
            assert!(
                ProvisionConfig::from_inputs_with_dev(bad, dev.path()).is_err(),
                "case {index}"
            );
        }
        assert!(ProvisionConfig::from_inputs_with_dev(inputs(), dev.path()).is_ok());
    }

    #[test]
    fn name_errors_say_which_setting_and_why() {
        let dev = TempDir::new("config-dev-messages");
        if let Err(e) = std::fs::write(dev.path().join("vda"), "") {
            panic!("{e}");
        }
        let error = |mutate: &dyn Fn(&mut ProvisionInputs)| {
            let mut bad = inputs();
            mutate(&mut bad);
            match ProvisionConfig::from_inputs_with_dev(bad, dev.path()) {
                Ok(_) => panic!("accepted"),
                Err(e) => e.to_string(),
            }
        };
        let pool = error(&|i| i.pool = "pool.x".into());
        assert!(
            pool.starts_with("invalid POOL:") && pool.contains("LINSTOR could not use the pool"),
            "{pool}"
        );
        let taken = error(&|i| i.volume_group = "vda".into());
        assert!(
            taken.starts_with("invalid VOLUME_GROUP:") && taken.contains("already exists"),
            "{taken}"
        );
        let mapper = error(&|i| i.volume_group = "mapper".into());
        assert!(mapper.contains("reserved"), "{mapper}");
    }
}
