//! The seed tool's layout: a thin LV named `metadata` holding ext4 with a file
//! `satellite-id` (no trailing newline). Read without mounting anything.
use ext4_view::{Ext4, Ext4Error};
use std::path::{Path, PathBuf};

/// Name of the seed tool's LV that holds the satellite-ID file (the seed names it
/// `metadata`; no relation to LVM's or a thin pool's metadata).
pub const SEED_ID_LV: &str = "metadata";
/// The file on it that holds the satellite ID.
pub const SEED_ID_FILE: &str = "/satellite-id";
/// Far above any real ID; a bigger file is not the seed's.
const MAX_ID_FILE_BYTES: u64 = 64 * 1024;

/// The seed tool's satellite ID could not be read from `device`.
#[derive(Debug, thiserror::Error)]
#[error("reading {SEED_ID_FILE} from the seed tool's ext4 on {}: {problem}", device.display())]
pub struct SeedIdError {
    pub device: PathBuf,
    #[source]
    pub problem: SeedIdProblem,
}

/// What was wrong with the seed tool's ID file or its filesystem.
#[derive(Debug, thiserror::Error)]
pub enum SeedIdProblem {
    #[error("not a readable ext4 filesystem: {0}")]
    NotExt4(#[source] Ext4Error),
    #[error("file missing: {0}")]
    Missing(#[source] Ext4Error),
    #[error("file too large: {length} bytes")]
    TooLarge { length: u64 },
    #[error("read failed: {0}")]
    Read(#[source] Ext4Error),
    #[error("not UTF-8: {0}")]
    NotUtf8(#[source] std::string::FromUtf8Error),
    #[error("file is empty: 0 bytes")]
    Empty,
}

/// Reads the seed tool's satellite ID from the ext4 filesystem on `device`.
pub fn read_seed_satellite_id(device: &Path) -> Result<String, SeedIdError> {
    let failed = |problem| SeedIdError {
        device: device.to_owned(),
        problem,
    };
    let fs = Ext4::load_from_path(device).map_err(|e| failed(SeedIdProblem::NotExt4(e)))?;
    let length = fs
        .metadata(SEED_ID_FILE)
        .map_err(|e| failed(SeedIdProblem::Missing(e)))?
        .len();
    if length > MAX_ID_FILE_BYTES {
        return Err(failed(SeedIdProblem::TooLarge { length }));
    }
    let bytes = fs
        .read(SEED_ID_FILE)
        .map_err(|e| failed(SeedIdProblem::Read(e)))?;
    let id = String::from_utf8(bytes).map_err(|e| failed(SeedIdProblem::NotUtf8(e)))?;
    // The seed wrote no newline; tolerate one written by hand.
    let id = id.strip_suffix('\n').unwrap_or(&id).to_owned();
    if id.is_empty() {
        return Err(failed(SeedIdProblem::Empty));
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::partition::test_tree::TempDir;
    use std::process::Command;

    /// An ext4 image populated from a folder by mkfs.ext4 (no mount needed).
    fn ext4_image_with(dir: &TempDir, content: Option<&[u8]>) -> std::path::PathBuf {
        let root = dir.path().join("root");
        let image = dir.path().join("fs.img");
        std::fs::create_dir_all(&root).unwrap_or_else(|e| panic!("mkdir: {e}"));
        if let Some(bytes) = content {
            std::fs::write(root.join("satellite-id"), bytes)
                .unwrap_or_else(|e| panic!("write: {e}"));
        }
        let status = Command::new("mkfs.ext4")
            .args(["-q", "-F", "-d"])
            .arg(&root)
            .arg(&image)
            .arg("8M")
            .status()
            .unwrap_or_else(|e| panic!("mkfs.ext4 missing (apt-get install e2fsprogs): {e}"));
        assert!(status.success(), "mkfs.ext4 failed");
        image
    }

    #[test]
    fn reads_the_seed_id_without_mounting() {
        let dir = TempDir::new("seed-id");
        let image = ext4_image_with(&dir, Some(b"node-01"));
        let id = read_seed_satellite_id(&image);
        assert!(matches!(&id, Ok(id) if id == "node-01"), "{id:?}");
    }

    #[test]
    fn missing_or_empty_id_files_are_errors_not_ids() {
        let dir = TempDir::new("seed-missing");
        let error = read_seed_satellite_id(&ext4_image_with(&dir, None));
        assert!(
            matches!(
                error,
                Err(SeedIdError {
                    problem: SeedIdProblem::Missing(_),
                    ..
                })
            ),
            "{error:?}"
        );
        let dir = TempDir::new("seed-empty");
        let error = read_seed_satellite_id(&ext4_image_with(&dir, Some(b"")));
        assert!(
            matches!(
                error,
                Err(SeedIdError {
                    problem: SeedIdProblem::Empty,
                    ..
                })
            ),
            "{error:?}"
        );
        let error = read_seed_satellite_id(Path::new("/dev/null"));
        assert!(
            matches!(
                error,
                Err(SeedIdError {
                    problem: SeedIdProblem::NotExt4(_),
                    ..
                })
            ),
            "{error:?}"
        );
    }
}
