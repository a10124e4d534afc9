//! The seed tool's layout: a thin LV named `metadata` holding ext4 with a file
//! `satellite-id` (no trailing newline). Read without mounting anything.
use ext4_view::Ext4;
use std::path::Path;

/// Name of the seed tool's metadata LV.
pub const SEED_METADATA_LV: &str = "metadata";
/// The file on it that holds the satellite ID.
pub const SEED_ID_FILE: &str = "/satellite-id";
/// Far above any real ID; a bigger file is not the seed's.
const MAX_ID_FILE_BYTES: u64 = 64 * 1024;

/// Reads the seed tool's satellite ID from the ext4 filesystem on `device`.
pub fn read_seed_satellite_id(device: &Path) -> Result<String, String> {
    let context = |what: &str, e: &dyn std::fmt::Display| {
        format!(
            "reading {SEED_ID_FILE} from the seed tool's ext4 on {}: {what}: {e}",
            device.display()
        )
    };
    let fs =
        Ext4::load_from_path(device).map_err(|e| context("not a readable ext4 filesystem", &e))?;
    let length = fs
        .metadata(SEED_ID_FILE)
        .map_err(|e| context("file missing", &e))?
        .len();
    if length > MAX_ID_FILE_BYTES {
        return Err(context("file too large", &format!("{length} bytes")));
    }
    let bytes = fs
        .read(SEED_ID_FILE)
        .map_err(|e| context("read failed", &e))?;
    let id = String::from_utf8(bytes).map_err(|e| context("not UTF-8", &e))?;
    // The seed wrote no newline; tolerate one written by hand.
    let id = id.strip_suffix('\n').unwrap_or(&id).to_owned();
    if id.is_empty() {
        return Err(context("file is empty", &"0 bytes"));
    }
    Ok(id)
}
