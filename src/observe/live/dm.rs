//! Device-mapper state through the `devicemapper` crate (DM ioctls): which LVM
//! volumes are active and open, and how full a thin pool is.
//!
//! LVM names its DM devices by uuid `LVM-<vg uuid><lv uuid>[-<layer>]`, each
//! uuid 32 characters without dashes, so an active volume can be tied to its VG
//! without asking LVM. Parsing of uuids and status lines is pure and tested
//! here; the ioctl calls need a kernel with device-mapper.

use std::fmt;
use std::path::Path;
use std::sync::OnceLock;

use devicemapper::{errors, DevId, DmError, DmFlags, DmName, DmOptions, DmUuid, DM};
use serde::{Serialize, Serializer};

use super::{DmUnavailable, LiveError};
use crate::observe::lvm::uuid::{LvmUuid, LVM_UUID_LEN};
use crate::units::{Bytes, Sectors};

/// Where the device-mapper control node lives.
pub(super) const DM_CONTROL: &str = "/dev/mapper/control";
/// dm-thin metadata blocks are always 4 KiB.
const THIN_METADATA_BLOCK_BYTES: Bytes = Bytes(4096);

/// An active device-mapper device that belongs to LVM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActiveLv {
    /// DM name (`vg-lv`, with `-` in VG/LV names doubled).
    pub dm_name: String,
    pub major: u32,
    pub minor: u32,
    /// How many openers the device has; > 0 means in use (mounted, held, …).
    pub open_count: u32,
    /// VG uuid (shown without dashes, as in the DM uuid).
    #[serde(serialize_with = "LvmUuid::serialize_undashed")]
    pub vg_uuid: LvmUuid,
    /// LV uuid (shown without dashes).
    #[serde(serialize_with = "LvmUuid::serialize_undashed")]
    pub lv_uuid: LvmUuid,
    /// LVM's layer for hidden sub-devices (`None` for the LV itself).
    #[serde(rename = "layer_suffix")]
    pub layer: Option<LvmLayer>,
    /// The device has a live table and is not suspended: it serves I/O. A device an
    /// interrupted activation created but never loaded or resumed does not.
    pub serving: bool,
    /// The device has a live table (even if suspended). A device an interrupted
    /// activation created but never loaded has none and maps nothing.
    pub live_table: bool,
}

/// The layer of an LVM device-mapper device: the `-<layer>` LVM appends to the
/// uuid (and name) of a device that is not the LV itself. The names are LVM2's
/// (`lv_layer()` in lib/metadata/lv.c, `build_dm_uuid()` in lib/misc/lvm-string.c).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LvmLayer {
    /// The thin-pool target of a thin pool that has (or had) thin volumes.
    Tpool,
    /// A thin pool's (or VDO pool's) own device, carrying no target of its own use.
    Pool,
    /// A thin pool's data LV (`<pool>_tdata`).
    Tdata,
    /// A thin pool's metadata LV (`<pool>_tmeta`).
    Tmeta,
    /// The origin below a snapshot, cache or mirror layer.
    Real,
    /// A snapshot's exception store.
    Cow,
    /// A cache pool's data LV.
    Cdata,
    /// A cache pool's metadata LV.
    Cmeta,
    /// A cache volume (writecache/cachevol).
    Cvol,
    /// An integrity metadata LV.
    Imeta,
    /// A VDO pool's data LV.
    Vdata,
    /// A VDO pool.
    Vpool,
    /// Any other layer, kept verbatim (without its `-`).
    Other(String),
}

impl LvmLayer {
    /// The layer named `name` (the text after the `-`).
    pub fn from_name(name: &str) -> Self {
        match name {
            "tpool" => LvmLayer::Tpool,
            "pool" => LvmLayer::Pool,
            "tdata" => LvmLayer::Tdata,
            "tmeta" => LvmLayer::Tmeta,
            "real" => LvmLayer::Real,
            "cow" => LvmLayer::Cow,
            "cdata" => LvmLayer::Cdata,
            "cmeta" => LvmLayer::Cmeta,
            "cvol" => LvmLayer::Cvol,
            "imeta" => LvmLayer::Imeta,
            "vdata" => LvmLayer::Vdata,
            "vpool" => LvmLayer::Vpool,
            other => LvmLayer::Other(other.to_owned()),
        }
    }

    /// The layer's name, without the `-`.
    pub fn name(&self) -> &str {
        match self {
            LvmLayer::Tpool => "tpool",
            LvmLayer::Pool => "pool",
            LvmLayer::Tdata => "tdata",
            LvmLayer::Tmeta => "tmeta",
            LvmLayer::Real => "real",
            LvmLayer::Cow => "cow",
            LvmLayer::Cdata => "cdata",
            LvmLayer::Cmeta => "cmeta",
            LvmLayer::Cvol => "cvol",
            LvmLayer::Imeta => "imeta",
            LvmLayer::Vdata => "vdata",
            LvmLayer::Vpool => "vpool",
            LvmLayer::Other(name) => name,
        }
    }
}

/// The suffix as it appears in the uuid: `-tpool`.
impl fmt::Display for LvmLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "-{}", self.name())
    }
}

/// JSON shows the suffix (`"-tpool"`).
impl Serialize for LvmLayer {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The parts of an LVM device-mapper uuid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LvmDmUuid {
    #[serde(serialize_with = "LvmUuid::serialize_undashed")]
    pub vg_uuid: LvmUuid,
    #[serde(serialize_with = "LvmUuid::serialize_undashed")]
    pub lv_uuid: LvmUuid,
    #[serde(rename = "layer_suffix")]
    pub layer: Option<LvmLayer>,
}

/// Splits `LVM-<32 vg uuid chars><32 lv uuid chars>[-<layer>]`; `None` for
/// anything else (crypt mappings, multipath, other tools' devices).
pub fn parse_lvm_dm_uuid(uuid: &str) -> Option<LvmDmUuid> {
    let rest = uuid.strip_prefix("LVM-")?.as_bytes();
    let vg_uuid = LvmUuid::from_undashed_bytes(rest.get(..LVM_UUID_LEN)?)?;
    let lv_uuid = LvmUuid::from_undashed_bytes(rest.get(LVM_UUID_LEN..2 * LVM_UUID_LEN)?)?;
    // The ids are ASCII, so the tail starts on a character boundary.
    let tail = uuid.get("LVM-".len() + 2 * LVM_UUID_LEN..)?;
    let layer = match tail {
        "" => None,
        t => match t.strip_prefix('-') {
            Some(name) if !name.is_empty() => Some(LvmLayer::from_name(name)),
            _ => return None,
        },
    };
    Some(LvmDmUuid {
        vg_uuid,
        lv_uuid,
        layer,
    })
}

/// Whether a thin pool accepts writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ThinPoolMode {
    ReadWrite,
    ReadOnly,
    /// Data space is exhausted; writes queue or fail until the pool grows.
    OutOfDataSpace,
}

/// The counters a working thin pool reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ThinPoolCounters {
    pub transaction_id: u64,
    pub metadata_used_blocks: u64,
    pub metadata_total_blocks: u64,
    pub data_used_blocks: u64,
    pub data_total_blocks: u64,
    pub mode: ThinPoolMode,
    /// The kernel found metadata damage; `thin_check` must run before repair.
    pub needs_check: bool,
}

/// A thin pool's status line, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ThinPoolStatus {
    Working(ThinPoolCounters),
    /// The kernel reported `Fail` (or `Error`): no counters are available.
    Failed(String),
}

/// A status or table line that does not have the expected shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {detail} (found {found:?})")]
pub struct DmParseError {
    pub what: &'static str,
    pub found: String,
    pub detail: String,
}

fn parse_err(what: &'static str, found: &str, detail: impl Into<String>) -> DmParseError {
    DmParseError {
        what,
        found: found.to_owned(),
        detail: detail.into(),
    }
}

fn parse_u64(what: &'static str, line: &str, field: &str) -> Result<u64, DmParseError> {
    field
        .parse()
        .map_err(|_| parse_err(what, line, format!("{field:?} is not a number")))
}

fn parse_ratio(what: &'static str, line: &str, field: &str) -> Result<(u64, u64), DmParseError> {
    let (used, total) = field
        .split_once('/')
        .ok_or_else(|| parse_err(what, line, format!("{field:?} is not <used>/<total>")))?;
    Ok((parse_u64(what, line, used)?, parse_u64(what, line, total)?))
}

/// Parses a thin-pool status line: `<transaction id> <used>/<total metadata
/// blocks> <used>/<total data blocks> <held metadata root> ro|rw|out_of_data_space
/// [no_]discard_passdown [error|queue]_if_no_space needs_check|- …`. Only the
/// first five fields are required (older kernels print fewer).
pub fn parse_thin_pool_status(line: &str) -> Result<ThinPoolStatus, DmParseError> {
    const WHAT: &str = "thin-pool status";
    let fields: Vec<&str> = line.split_whitespace().collect();
    match fields.first() {
        Some(&"Fail") | Some(&"Error") => {
            return Ok(ThinPoolStatus::Failed(line.trim().to_owned()))
        }
        None => return Err(parse_err(WHAT, line, "the status line is empty")),
        _ => {}
    }
    if fields.len() < 5 {
        return Err(parse_err(
            WHAT,
            line,
            format!("expected at least 5 fields, found {}", fields.len()),
        ));
    }
    let transaction_id = parse_u64(WHAT, line, fields[0])?;
    let (metadata_used_blocks, metadata_total_blocks) = parse_ratio(WHAT, line, fields[1])?;
    let (data_used_blocks, data_total_blocks) = parse_ratio(WHAT, line, fields[2])?;
    let mode = match fields[4] {
        "rw" => ThinPoolMode::ReadWrite,
        "ro" => ThinPoolMode::ReadOnly,
        "out_of_data_space" => ThinPoolMode::OutOfDataSpace,
        other => {
            return Err(parse_err(
                WHAT,
                line,
                format!("mode {other:?} is not rw, ro or out_of_data_space"),
            ))
        }
    };
    Ok(ThinPoolStatus::Working(ThinPoolCounters {
        transaction_id,
        metadata_used_blocks,
        metadata_total_blocks,
        data_used_blocks,
        data_total_blocks,
        mode,
        needs_check: fields[5..].contains(&"needs_check"),
    }))
}

/// Parses a thin-pool table line (`<metadata dev> <data dev> <data block size
/// in sectors> <low water mark> [features…]`) and returns the data block size
/// in bytes.
pub fn parse_thin_pool_table(params: &str) -> Result<Bytes, DmParseError> {
    const WHAT: &str = "thin-pool table";
    let fields: Vec<&str> = params.split_whitespace().collect();
    let Some(block) = fields.get(2) else {
        return Err(parse_err(
            WHAT,
            params,
            format!("expected at least 4 fields, found {}", fields.len()),
        ));
    };
    let sectors = parse_u64(WHAT, params, block)?;
    if sectors == 0 {
        return Err(parse_err(WHAT, params, "data block size is 0"));
    }
    Ok(Sectors(sectors).bytes())
}

/// How full a thin pool is, in blocks and bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ThinPoolUsage {
    pub dm_name: String,
    pub transaction_id: u64,
    pub mode: ThinPoolMode,
    pub needs_check: bool,
    pub data_block_size_bytes: Bytes,
    pub data_used_blocks: u64,
    pub data_total_blocks: u64,
    pub data_used_bytes: Bytes,
    pub data_total_bytes: Bytes,
    pub metadata_block_size_bytes: Bytes,
    pub metadata_used_blocks: u64,
    pub metadata_total_blocks: u64,
    pub metadata_used_bytes: Bytes,
    pub metadata_total_bytes: Bytes,
}

/// `count` blocks of `size` each. Exact for every block size the kernel allows
/// (dm-thin data blocks are at most 1 GiB); a table claiming more saturates
/// rather than wraps.
fn blocks_of(count: u64, size: Bytes) -> Bytes {
    Bytes(u128::from(count).saturating_mul(size.0))
}

impl ThinPoolUsage {
    /// Combines a parsed status with the data block size from the table.
    pub fn from_parts(
        dm_name: &str,
        counters: &ThinPoolCounters,
        data_block_size_bytes: Bytes,
    ) -> Self {
        let meta = THIN_METADATA_BLOCK_BYTES;
        ThinPoolUsage {
            dm_name: dm_name.to_owned(),
            transaction_id: counters.transaction_id,
            mode: counters.mode,
            needs_check: counters.needs_check,
            data_block_size_bytes,
            data_used_blocks: counters.data_used_blocks,
            data_total_blocks: counters.data_total_blocks,
            data_used_bytes: blocks_of(counters.data_used_blocks, data_block_size_bytes),
            data_total_bytes: blocks_of(counters.data_total_blocks, data_block_size_bytes),
            metadata_block_size_bytes: meta,
            metadata_used_blocks: counters.metadata_used_blocks,
            metadata_total_blocks: counters.metadata_total_blocks,
            metadata_used_bytes: blocks_of(counters.metadata_used_blocks, meta),
            metadata_total_bytes: blocks_of(counters.metadata_total_blocks, meta),
        }
    }
}

/// Among active LVM devices, the one carrying the thin-pool target of the
/// pool LV `pool_lv_uuid` in VG `vg_uuid` (both 32 characters, no dashes):
/// LVM's `-tpool` layer when present, otherwise the LV's own device.
pub fn thin_pool_device<'a>(
    volumes: &'a [ActiveLv],
    vg_uuid: &LvmUuid,
    pool_lv_uuid: &LvmUuid,
) -> Option<&'a ActiveLv> {
    let of_pool = |v: &&ActiveLv| v.vg_uuid == *vg_uuid && v.lv_uuid == *pool_lv_uuid;
    volumes
        .iter()
        .filter(of_pool)
        .find(|v| v.layer == Some(LvmLayer::Tpool))
        .or_else(|| volumes.iter().filter(of_pool).find(|v| v.layer.is_none()))
}

/// The device-mapper targets the kernel has registered (`DM_LIST_VERSIONS`): a
/// target whose module is not loaded is absent.
pub fn target_names() -> Result<Vec<String>, LiveError> {
    let dm = open_dm()?;
    let versions = dm
        .list_versions()
        .map_err(|source| dm_error("list target versions", None, source))?;
    Ok(versions.into_iter().map(|(name, ..)| name).collect())
}

/// The DM control node, opened once per process: a steady start asks device-mapper
/// three times (the list, the pool's devices, the pool's status), and each opening
/// cost a `stat`, an `open`, an `fcntl` and a `close`. The descriptor is
/// close-on-exec, so the programs LVM runs do not inherit it. A failure is not
/// kept: the next call tries again and says why.
fn open_dm() -> Result<&'static DM, LiveError> {
    static SHARED: OnceLock<DM> = OnceLock::new();
    if let Some(dm) = SHARED.get() {
        return Ok(dm);
    }
    if !Path::new(DM_CONTROL).exists() {
        return Err(LiveError::DeviceMapperUnavailable {
            source: DmUnavailable::NoControlNode,
        });
    }
    let dm = DM::new().map_err(|source| LiveError::DeviceMapperUnavailable {
        source: DmUnavailable::CannotOpen { source },
    })?;
    Ok(SHARED.get_or_init(|| dm))
}

fn dm_error(op: &'static str, device: Option<&str>, source: devicemapper::DmError) -> LiveError {
    LiveError::Dm {
        op,
        device: device.map(str::to_owned),
        source,
    }
}

/// A device-mapper device found by its DM uuid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceByUuid {
    pub dm_name: String,
    pub major: u32,
    pub minor: u32,
    pub open_count: u32,
}

/// The device whose DM uuid is `uuid` (`DM_DEV_STATUS` by uuid), or `None` when no
/// device has it.
pub fn device_by_uuid(uuid: &str) -> Result<Option<DeviceByUuid>, LiveError> {
    let dm_uuid = DmUuid::new(uuid).map_err(|source| LiveError::InvalidName {
        dm_name: uuid.to_owned(),
        source,
    })?;
    let dm = open_dm()?;
    let info = match dm.device_info(&DevId::Uuid(dm_uuid)) {
        Ok(info) => info,
        Err(DmError::Core(errors::Error::Ioctl(_, _, _, errno)))
            if *errno as i32 == nix::libc::ENXIO =>
        {
            return Ok(None)
        }
        Err(e) => return Err(dm_error("status", Some(uuid), e)),
    };
    let device = info.device();
    Ok(Some(DeviceByUuid {
        dm_name: info.name().map(ToString::to_string).unwrap_or_default(),
        major: device.major,
        minor: device.minor,
        open_count: u32::try_from(info.open_count()).unwrap_or(u32::MAX),
    }))
}

/// Every active DM device whose uuid marks it as LVM's, sorted by DM name.
/// Devices that disappear while being listed are skipped.
///
/// One `DM_LIST_DEVICES` carries every device's uuid (see [`crate::ffi::dm_list`]):
/// only LVM's devices are asked for their state (open count, table, suspension),
/// so the other mappings of a node (DRBD's backing devices, crypt, multipath)
/// cost nothing. On a kernel that lists no uuids every device is asked, as before.
pub fn active_lvm_volumes() -> Result<Vec<ActiveLv>, LiveError> {
    active_lvm_volumes_asking(None, &|_| true)
}

/// [`active_lvm_volumes`], asking the state (`DM_DEV_STATUS`) only of the devices
/// `ask` selects. The others are reported from the list alone, as serving and
/// unopened: their state was not read. A steady start so costs no ioctl per
/// thin volume; a plan that changes anything observes again asking every device
/// (see [`crate::observe::snapshot::Expectations::every_lv_state`]).
pub fn active_lvm_volumes_asking(
    already_listed: Option<&Vec<crate::ffi::dm_list::ListedDevice>>,
    ask: &dyn Fn(&LvmDmUuid) -> bool,
) -> Result<Vec<ActiveLv>, LiveError> {
    use crate::ffi::dm_list::{list_devices_with_uuids, ListedDevice, UuidInList};
    let dm = open_dm()?;
    let listed: std::borrow::Cow<'_, [ListedDevice]> = match already_listed {
        Some(listed) => std::borrow::Cow::Borrowed(listed.as_slice()),
        None => std::borrow::Cow::Owned(match list_devices_with_uuids() {
            Ok(listed) => listed,
            Err(e) => {
                tracing::debug!(error = %e, "device-mapper list with uuids failed; listing without");
                dm.list_devices()
                    .map_err(|e| dm_error("list", None, e))?
                    .into_iter()
                    .map(|(name, device, _)| ListedDevice {
                        name: name.to_string(),
                        major: device.major,
                        minor: device.minor,
                        uuid: UuidInList::NotReported,
                    })
                    .collect()
            }
        }),
    };
    let mut out = Vec::new();
    for device in listed.iter() {
        if let UuidInList::Uuid(uuid) = &device.uuid {
            let Some(parsed) = parse_lvm_dm_uuid(uuid) else {
                continue;
            };
            if !ask(&parsed) {
                out.push(ActiveLv {
                    dm_name: device.name.clone(),
                    major: device.major,
                    minor: device.minor,
                    open_count: 0,
                    serving: true,
                    live_table: true,
                    vg_uuid: parsed.vg_uuid,
                    lv_uuid: parsed.lv_uuid,
                    layer: parsed.layer,
                });
                continue;
            }
        } else if device.uuid == UuidInList::None {
            continue;
        }
        let Ok(name) = DmName::new(&device.name) else {
            continue;
        };
        let info = match dm.device_info(&DevId::Name(name)) {
            Ok(info) => info,
            Err(e) => {
                tracing::debug!(dm_name = %name, error = %e, "DM device vanished while listing");
                continue;
            }
        };
        let Some(parsed) = info.uuid().and_then(|u| parse_lvm_dm_uuid(&u.to_string())) else {
            continue;
        };
        // The device's own number, not the list's: a name LVM made again since the
        // list was read has another minor.
        let number = info.device();
        out.push(ActiveLv {
            dm_name: name.to_string(),
            major: number.major,
            minor: number.minor,
            open_count: u32::try_from(info.open_count()).unwrap_or(0),
            serving: info.flags().contains(DmFlags::DM_ACTIVE_PRESENT)
                && !info.flags().contains(DmFlags::DM_SUSPEND),
            live_table: info.flags().contains(DmFlags::DM_ACTIVE_PRESENT),
            vg_uuid: parsed.vg_uuid,
            lv_uuid: parsed.lv_uuid,
            layer: parsed.layer,
        });
    }
    out.sort_by(|a, b| a.dm_name.cmp(&b.dm_name));
    Ok(out)
}

/// Usage of the active thin pool with DM name `dm_name` (LVM's `vg-pool-tpool`
/// device, which carries the thin-pool target).
pub fn thin_pool_usage(dm_name: &str) -> Result<ThinPoolUsage, LiveError> {
    let name = DmName::new(dm_name).map_err(|source| LiveError::InvalidName {
        dm_name: dm_name.to_owned(),
        source,
    })?;
    let dm = open_dm()?;
    let id = DevId::Name(name);
    let (_, table) = dm
        .table_status(
            &id,
            DmOptions::default().set_flags(DmFlags::DM_STATUS_TABLE),
        )
        .map_err(|e| dm_error("table", Some(dm_name), e))?;
    // DM_NOFLUSH: without it dm-thin commits its metadata before reporting (a write
    // and a cache flush on the partition), and a steady start must write nothing.
    let (_, status) = dm
        .table_status(&id, DmOptions::default().set_flags(DmFlags::DM_NOFLUSH))
        .map_err(|e| dm_error("status", Some(dm_name), e))?;
    let to_live = |source: DmParseError| LiveError::Parse {
        dm_name: dm_name.to_owned(),
        source,
    };
    let (table_target, table_params) = single_target(dm_name, &table)?;
    if table_target != "thin-pool" {
        return Err(LiveError::NotAThinPool {
            dm_name: dm_name.to_owned(),
            found: table_target.to_owned(),
        });
    }
    let block_bytes = parse_thin_pool_table(table_params).map_err(to_live)?;
    let (_, status_line) = single_target(dm_name, &status)?;
    match parse_thin_pool_status(status_line).map_err(to_live)? {
        ThinPoolStatus::Working(counters) => {
            Ok(ThinPoolUsage::from_parts(dm_name, &counters, block_bytes))
        }
        ThinPoolStatus::Failed(status) => Err(LiveError::ThinPoolFailed {
            dm_name: dm_name.to_owned(),
            status,
        }),
    }
}

/// A thin pool has exactly one target line; returns its type and parameters.
fn single_target<'a>(
    dm_name: &str,
    lines: &'a [(u64, u64, String, String)],
) -> Result<(&'a str, &'a str), LiveError> {
    match lines {
        [(_, _, target, params)] => Ok((target.as_str(), params.as_str())),
        _ => Err(LiveError::NotAThinPool {
            dm_name: dm_name.to_owned(),
            found: format!(
                "{} targets ({})",
                lines.len(),
                lines
                    .iter()
                    .map(|l| l.2.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VG: &str = "Xq3cN1m0a2b3c4d5e6f7g8h9i0j1k2l3";
    const LV: &str = "abcdefABCDEF0123456789ghijklmnop";

    fn id(text: &str) -> LvmUuid {
        match LvmUuid::parse(text) {
            Ok(id) => id,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn parses_lvm_dm_uuids() {
        let plain = parse_lvm_dm_uuid(&format!("LVM-{VG}{LV}"));
        assert_eq!(
            plain,
            Some(LvmDmUuid {
                vg_uuid: id(VG),
                lv_uuid: id(LV),
                layer: None
            })
        );
        for (suffix, layer) in [
            ("-tpool", LvmLayer::Tpool),
            ("-tdata", LvmLayer::Tdata),
            ("-tmeta", LvmLayer::Tmeta),
            ("-pool", LvmLayer::Pool),
            ("-real", LvmLayer::Real),
            ("-cow", LvmLayer::Cow),
            ("-vpool", LvmLayer::Vpool),
            ("-x_y", LvmLayer::Other("x_y".into())),
        ] {
            let p = parse_lvm_dm_uuid(&format!("LVM-{VG}{LV}{suffix}"));
            assert_eq!(p.and_then(|p| p.layer), Some(layer.clone()));
            assert_eq!(layer.to_string(), suffix);
            assert_eq!(LvmLayer::from_name(layer.name()), layer);
        }
        let json = parse_lvm_dm_uuid(&format!("LVM-{VG}{LV}-tpool"))
            .and_then(|p| serde_json::to_string(&p).ok());
        assert_eq!(
            json.as_deref(),
            Some(
                format!(r#"{{"vg_uuid":"{VG}","lv_uuid":"{LV}","layer_suffix":"-tpool"}}"#)
                    .as_str()
            )
        );
    }

    #[test]
    fn rejects_non_lvm_uuids() {
        assert_eq!(parse_lvm_dm_uuid("CRYPT-LUKS2-0123456789abcdef-luks"), None);
        assert_eq!(parse_lvm_dm_uuid(&format!("LVM-{VG}")), None);
        assert_eq!(parse_lvm_dm_uuid(&format!("LVM-{VG}{LV}x")), None);
        assert_eq!(parse_lvm_dm_uuid(&format!("LVM-{VG}{LV}-")), None);
        assert_eq!(parse_lvm_dm_uuid(&format!("LVM-{VG}-{LV}")), None);
        assert_eq!(
            parse_lvm_dm_uuid("mpath-3600508b400105e210000900000490000"),
            None
        );
        assert_eq!(parse_lvm_dm_uuid(""), None);
    }

    #[test]
    fn parses_a_full_thin_pool_status() {
        let line = "5 280/4096 1234/81920 - rw no_discard_passdown queue_if_no_space - 1024";
        let Ok(ThinPoolStatus::Working(c)) = parse_thin_pool_status(line) else {
            panic!("not parsed: {:?}", parse_thin_pool_status(line));
        };
        assert_eq!(c.transaction_id, 5);
        assert_eq!(
            (c.metadata_used_blocks, c.metadata_total_blocks),
            (280, 4096)
        );
        assert_eq!((c.data_used_blocks, c.data_total_blocks), (1234, 81920));
        assert_eq!(c.mode, ThinPoolMode::ReadWrite);
        assert!(!c.needs_check);

        let usage = ThinPoolUsage::from_parts("vg-pool-tpool", &c, Bytes(65536));
        assert_eq!(usage.data_used_bytes, Bytes(1234 * 65536));
        assert_eq!(usage.data_total_bytes, Bytes(81920 * 65536));
        assert_eq!(usage.metadata_used_bytes, Bytes(280 * 4096));
        assert_eq!(usage.metadata_total_bytes, Bytes(4096 * 4096));
    }

    #[test]
    fn parses_degraded_and_failed_pools() {
        let ro = parse_thin_pool_status(
            "0 10/100 0/10 17 ro discard_passdown error_if_no_space needs_check",
        );
        assert!(
            matches!(ro, Ok(ThinPoolStatus::Working(ref c)) if c.mode == ThinPoolMode::ReadOnly && c.needs_check),
            "{ro:?}"
        );
        let full = parse_thin_pool_status("1 10/100 10/10 - out_of_data_space");
        assert!(
            matches!(full, Ok(ThinPoolStatus::Working(ref c)) if c.mode == ThinPoolMode::OutOfDataSpace)
        );
        assert!(matches!(
            parse_thin_pool_status("Fail"),
            Ok(ThinPoolStatus::Failed(_))
        ));
    }

    #[test]
    fn malformed_status_says_what_is_wrong() {
        for (line, needle) in [
            ("", "empty"),
            ("1 2/3", "at least 5"),
            ("x 1/2 3/4 - rw", "\"x\" is not a number"),
            ("1 12 3/4 - rw", "not <used>/<total>"),
            ("1 1/2 3/4 - rx", "mode \"rx\""),
        ] {
            let e = parse_thin_pool_status(line)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.contains(needle), "{line:?}: {e}");
        }
    }

    #[test]
    fn table_gives_data_block_size() {
        assert_eq!(
            parse_thin_pool_table("253:0 253:1 128 0 1 skip_block_zeroing"),
            Ok(Bytes(65536))
        );
        assert_eq!(
            parse_thin_pool_table("253:0 253:1 1024 0"),
            Ok(Bytes(524288))
        );
        assert!(parse_thin_pool_table("253:0 253:1").is_err());
        assert!(parse_thin_pool_table("253:0 253:1 0 0").is_err());
    }

    #[test]
    fn finds_the_tpool_layer_of_a_pool() {
        let lv = |name: &str, lv_uuid: &str, layer: Option<LvmLayer>| ActiveLv {
            dm_name: name.into(),
            major: 253,
            minor: 0,
            open_count: 0,
            serving: true,
            live_table: true,
            vg_uuid: id(VG),
            lv_uuid: id(lv_uuid),
            layer,
        };
        let vols = [
            lv("vg-pool", LV, None),
            lv("vg-pool_tdata", LV, Some(LvmLayer::Tdata)),
            lv("vg-pool-tpool", LV, Some(LvmLayer::Tpool)),
        ];
        assert_eq!(
            thin_pool_device(&vols, &id(VG), &id(LV)).map(|v| v.dm_name.as_str()),
            Some("vg-pool-tpool")
        );
        assert_eq!(
            thin_pool_device(&vols[..2], &id(VG), &id(LV)).map(|v| v.dm_name.as_str()),
            Some("vg-pool")
        );
        assert!(thin_pool_device(&vols, &id(LV), &id(VG)).is_none());
    }

    /// `status` shows these texts (device_mapper_error, pool_usage_error); pinned
    /// while their causes travel as typed errors.
    #[test]
    fn live_error_text_is_pinned() {
        let dm = dm_error(
            "status",
            Some("vg-pool-tpool"),
            devicemapper::DmError::Dm(devicemapper::ErrorEnum::NotFound, "no such device".into()),
        );
        assert_eq!(
            dm.to_string(),
            "device-mapper status failed for \"vg-pool-tpool\": DM error: NotFound: no such device"
        );
        let Err(parse) = parse_thin_pool_status("1 2/3") else {
            panic!("a short status line parsed");
        };
        let parse = LiveError::Parse {
            dm_name: "vg-pool-tpool".into(),
            source: parse,
        };
        assert_eq!(
            parse.to_string(),
            "cannot understand thin-pool status of \"vg-pool-tpool\": expected at least 5 fields, found 2 (found \"1 2/3\")"
        );
    }

    /// This machine's kernel has no device-mapper: the error must say so
    /// rather than panic. On a machine with DM the calls must simply work.
    #[test]
    fn missing_device_mapper_is_a_clear_error() {
        match active_lvm_volumes() {
            Err(e @ LiveError::DeviceMapperUnavailable { .. }) => {
                let text = e.to_string();
                eprintln!("{text}");
                assert!(
                    text.contains("/dev/mapper/control") && text.contains("modprobe"),
                    "{text}"
                )
            }
            Ok(_) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
        match thin_pool_usage("no-such-pool-tpool") {
            Err(LiveError::DeviceMapperUnavailable { .. } | LiveError::Dm { .. }) => {}
            other => panic!("unexpected: {other:?}"),
        }
    }
}
