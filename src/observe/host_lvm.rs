//! The host's own LVM configuration, as far as it decides whether the host (and a
//! satellite that uses the host's LVM configuration) will see the PV this tool
//! creates. Every LVM command this tool runs is scoped with `--devices`, which makes
//! LVM ignore both the devices file and `global_filter`; this module reads what the
//! host's unscoped commands would obey instead. Read-only.
//!
//! Facts from LVM2 2.03.16 this module relies on:
//! - lvm.conf and then lvmlocal.conf are read into one tree; a later value replaces
//!   an earlier one, except that `devices/filter` lists are joined (lvmlocal.conf's
//!   patterns first). Sections of the same name merge; a key may be a path
//!   (`devices/use_devicesfile = 1` at the top level).
//! - The devices file `<etc>/devices/<devices/devicesfile>` (default
//!   `system.devices`) is in use only when `devices/use_devicesfile` is on **and**
//!   the file exists. The compiled default of `use_devicesfile` differs between
//!   builds (Debian 0, RHEL 9 family 1) and cannot be read from the host, so an
//!   unset value with an existing file counts as in use.
//! - While the devices file is in use, `filter` and `global_filter` are ignored.
//! - A filter is a list of `a<sep>regex<sep>` / `r<sep>regex<sep>` patterns. For
//!   every name of a device (its node and each symlink to it under /dev), the first
//!   pattern whose regex occurs in the name decides; the device is accepted if any
//!   name is accepted, rejected if some name is rejected and none accepted, and
//!   accepted if no pattern matches any name.
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The host's LVM configuration directory.
pub const ETC_LVM: &str = "/etc/lvm";
/// LVM's default `global/locking_dir` (the manifests share it with the host).
pub const DEFAULT_LOCKING_DIR: &str = "/run/lock/lvm";
/// LVM's default devices file name (`devices/devicesfile`).
pub const DEFAULT_DEVICES_FILE: &str = "system.devices";
/// Largest lvm.conf / lvmlocal.conf / devices file read (Debian's fully commented
/// lvm.conf is ~110 KiB).
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;
/// Deepest section nesting accepted in a config file (lvm.conf uses 1).
const MAX_DEPTH: usize = 16;
/// Most patterns accepted in one filter list.
const MAX_FILTER_RULES: usize = 1024;
/// Largest compiled size of one filter regex.
const MAX_REGEX_BYTES: usize = 1 << 20;
/// Most /dev/disk and /dev/block entries looked at for a device's names.
const MAX_DEV_ENTRIES: usize = 100_000;
/// Devices file major version LVM 2.03.16 writes and will update.
pub const DEVICES_FILE_MAJOR: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum HostLvmError {
    #[error("cannot read {path}: {source}; the host's LVM configuration decides whether the host will see the new volume group — make it readable (in a pod, mount the host's /etc/lvm)")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is larger than {MAX_FILE_BYTES} bytes; expected an LVM configuration or devices file")]
    TooLarge { path: PathBuf },
    #[error("{path}: {message}, at line {line}; LVM could not read this file either — fix it (`lvmconfig --validate`)")]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}: {setting} = {found} is not a value LVM accepts ({expected})")]
    BadSetting {
        path: PathBuf,
        setting: &'static str,
        found: String,
        expected: &'static str,
    },
    #[error("{path}: {setting} pattern {pattern:?} is invalid: {source}")]
    BadFilter {
        path: PathBuf,
        setting: &'static str,
        pattern: String,
        #[source]
        source: FilterPatternError,
    },
    #[error("{path} has a `tags` section: settings from lvm_<tag>.conf files may override the device filters and devices file, which this tool does not evaluate — move the devices settings into lvm.conf or lvmlocal.conf")]
    TagConfig { path: PathBuf },
    #[error("{path} is not UTF-8 text; expected an LVM devices file (`lvmdevices` writes one)")]
    NotText { path: PathBuf },
}

/// The host's LVM settings that decide whether it sees our PV.
#[derive(Debug, Clone)]
pub struct HostLvm {
    /// The configuration files read, in the order LVM reads them.
    pub config_files: Vec<PathBuf>,
    /// `devices/use_devicesfile` as written; `None` when no file sets it (the
    /// host's compiled default applies, which differs between distributions).
    pub use_devicesfile: Option<bool>,
    /// The devices file named by the configuration, when it exists.
    pub devices_file: Option<DevicesFile>,
    /// `devices/global_filter`, in order (empty: accept all).
    pub global_filter: Vec<FilterRule>,
    /// The file whose `global_filter` applies (the last one that sets it).
    pub global_filter_file: Option<PathBuf>,
    /// `devices/filter`, in order. Hides the VG from the host's own commands but not
    /// from a satellite, which passes its own `filter` with `--config`.
    pub filter: Vec<FilterRule>,
    /// `global/locking_dir`: where LVM's per-VG lock files live (`None`: LVM's
    /// default, `/run/lock/lvm`).
    pub locking_dir: Option<PathBuf>,
    /// `global/use_lvmlockd`: VG locks are lvmlockd's (a shared VG), not flock files.
    pub use_lvmlockd: bool,
    /// The settings that decide whether LVM can build a thin pool at all.
    pub pool_creation: PoolCreationSettings,
}

/// Settings of the host's lvm.conf that this tool's own LVM obeys (it reads the same
/// files) and that only `vgcreate`/`lvcreate` act on — after a reset has already
/// removed the old volume group — so the planner must weigh them first.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PoolCreationSettings {
    /// `activation/volume_list` when set: LVM activates only what it names, and a
    /// thin pool's `lvcreate` must activate the new metadata volume to zero it.
    pub volume_list: Option<Vec<String>>,
    /// `activation/read_only_volume_list` when set: what it names is activated
    /// read-only, so the metadata cannot be zeroed either.
    pub read_only_volume_list: Option<Vec<String>>,
    /// `allocation/thin_pool_metadata_require_separate_pvs`: the pool metadata needs
    /// a PV of its own, which a one-partition VG never has.
    pub metadata_requires_separate_pvs: bool,
    /// `allocation/physical_extent_size` (KiB) when set: the extent size `vgcreate`
    /// gives a new VG (LVM's default is 4 MiB).
    pub physical_extent_size_kib: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevicesFile {
    pub path: PathBuf,
    /// Whether the host's LVM uses it: the file exists and `use_devicesfile` is not
    /// explicitly off.
    pub enabled: bool,
    pub version: Option<DevicesFileVersion>,
    pub system_id: Option<String>,
    pub entries: Vec<DevicesFileEntry>,
}

/// `VERSION=<major>.<minor>.<counter>`; LVM bumps the counter on every write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DevicesFileVersion {
    pub major: u32,
    pub minor: u32,
    pub counter: u32,
}

/// One `IDTYPE=… IDNAME=… DEVNAME=… PVID=… [PART=…]` line. LVM writes `.` for an
/// absent value; those are `None` here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevicesFileEntry {
    pub id_type: IdType,
    pub id_name: Option<String>,
    pub dev_name: Option<String>,
    /// 32 characters, no dashes, as LVM writes it.
    pub pvid: Option<String>,
    /// Partition number when the ID is the whole disk's (`PART=`).
    pub part: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdType {
    SysWwid,
    SysSerial,
    Devname,
    MpathUuid,
    CryptUuid,
    LvmlvUuid,
    MdUuid,
    LoopFile,
    /// A type this LVM version does not know (a newer host LVM may write more).
    Other(String),
}

impl IdType {
    fn parse(text: &str) -> IdType {
        match text {
            "sys_wwid" => IdType::SysWwid,
            "sys_serial" => IdType::SysSerial,
            "devname" => IdType::Devname,
            "mpath_uuid" => IdType::MpathUuid,
            "crypt_uuid" => IdType::CryptUuid,
            "lvmlv_uuid" => IdType::LvmlvUuid,
            "md_uuid" => IdType::MdUuid,
            "loop_file" => IdType::LoopFile,
            other => IdType::Other(other.to_owned()),
        }
    }
}

/// Why a filter pattern is not one LVM accepts.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FilterPatternError {
    #[error("filter patterns must be quoted strings")]
    NotQuoted,
    #[error("a pattern must begin with 'a' (accept) or 'r' (reject)")]
    NoAction,
    #[error("the pattern has no separator after 'a'/'r'")]
    NoSeparator,
    #[error("the pattern must end with the separator {close:?}")]
    Unterminated { close: char },
    #[error("a backslash ends the regex")]
    TrailingBackslash,
    #[error("a '[' is never closed")]
    UnclosedSet,
    #[error("an incomplete range in '[…]'")]
    IncompleteRange,
    #[error("regex {body:?} does not compile: {source}")]
    Compile {
        body: String,
        #[source]
        source: regex::Error,
    },
}

/// One filter pattern: accept or reject names in which `regex` occurs.
#[derive(Debug, Clone)]
pub struct FilterRule {
    /// The pattern as written in the configuration, e.g. `r|^/dev/vd.*|`.
    pub source: String,
    pub accept: bool,
    regex: regex::bytes::Regex,
}

impl FilterRule {
    /// Parses one LVM filter pattern (`a|…|`, `r|…|`, any separator; `(`, `[`, `{`
    /// close with `)`, `]`, `}`) and compiles its regex in LVM's dialect.
    pub fn parse(pattern: &str) -> Result<FilterRule, FilterPatternError> {
        let mut chars = pattern.chars();
        let accept = match chars.next() {
            Some('a') => true,
            Some('r') => false,
            _ => return Err(FilterPatternError::NoAction),
        };
        let open = chars.next().ok_or(FilterPatternError::NoSeparator)?;
        let close = match open {
            '(' => ')',
            '[' => ']',
            '{' => '}',
            other => other,
        };
        let rest = chars.as_str();
        let body = rest
            .strip_suffix(close)
            .ok_or(FilterPatternError::Unterminated { close })?;
        let translated = translate_lvm_regex(body)?;
        let regex = regex::bytes::RegexBuilder::new(&translated)
            .unicode(false)
            .size_limit(MAX_REGEX_BYTES)
            .build()
            .map_err(|source| FilterPatternError::Compile {
                body: body.to_owned(),
                source,
            })?;
        Ok(FilterRule {
            source: pattern.to_owned(),
            accept,
            regex,
        })
    }

    fn matches(&self, name: &Path) -> bool {
        use std::os::unix::ffi::OsStrExt;
        self.regex.is_match(name.as_os_str().as_bytes())
    }
}

impl PartialEq for FilterRule {
    fn eq(&self, other: &FilterRule) -> bool {
        self.source == other.source
    }
}

/// Rewrites a regex in LVM's own dialect (libdm's matcher: `. [] [^] * + ? | ( ) ^ $`
/// and `\` escapes, every other character literal — `{`, `\d` included) as an
/// equivalent `regex` crate pattern over bytes.
fn translate_lvm_regex(body: &str) -> Result<String, FilterPatternError> {
    let bytes = body.as_bytes();
    let mut out = String::with_capacity(bytes.len() * 4);
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        i += 1;
        match byte {
            b'(' | b')' | b'*' | b'+' | b'?' | b'|' | b'^' | b'$' => out.push(byte as char),
            // libdm: "all but newline", and never NUL or carriage return.
            b'.' => out.push_str(r"[^\n\r\x00]"),
            b'\\' => {
                let escaped = *bytes.get(i).ok_or(FilterPatternError::TrailingBackslash)?;
                i += 1;
                push_literal(&mut out, unescape(escaped));
            }
            b'[' => {
                let mut set = [false; 256];
                let negated = bytes.get(i) == Some(&b'^');
                if negated {
                    i += 1;
                }
                let mut previous: Option<u8> = None;
                loop {
                    let Some(&c) = bytes.get(i) else {
                        return Err(FilterPatternError::UnclosedSet);
                    };
                    i += 1;
                    if c == b']' {
                        break;
                    }
                    let member = if c == b'\\' {
                        let e = *bytes.get(i).ok_or(FilterPatternError::TrailingBackslash)?;
                        i += 1;
                        unescape(e)
                    } else if let (b'-', Some(low)) = (c, previous) {
                        let high = *bytes.get(i).ok_or(FilterPatternError::IncompleteRange)?;
                        i += 1;
                        let (a, b) = if low <= high {
                            (low, high)
                        } else {
                            (high, low)
                        };
                        for m in a..=b {
                            set[usize::from(m)] = true;
                        }
                        previous = Some(high);
                        continue;
                    } else {
                        c
                    };
                    set[usize::from(member)] = true;
                    previous = Some(member);
                }
                if negated {
                    for member in set.iter_mut() {
                        *member = !*member;
                    }
                    set[0] = false;
                }
                if !set.iter().any(|m| *m) {
                    // Matches nothing, as in libdm.
                    out.push_str(r"[^\x00-\xFF]");
                } else {
                    out.push('[');
                    for (value, member) in set.iter().enumerate() {
                        if *member {
                            out.push_str(&format!(r"\x{value:02X}"));
                        }
                    }
                    out.push(']');
                }
            }
            other => push_literal(&mut out, other),
        }
    }
    Ok(out)
}

fn unescape(byte: u8) -> u8 {
    match byte {
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        other => other,
    }
}

fn push_literal(out: &mut String, byte: u8) {
    out.push_str(&format!(r"\x{byte:02X}"));
}

/// What the host's first-match evaluation decides for one device.
fn first_rejecting_rule<'a>(rules: &'a [FilterRule], names: &[PathBuf]) -> Option<&'a FilterRule> {
    let mut rejected_by = None;
    for name in names {
        match rules.iter().find(|rule| rule.matches(name)) {
            Some(rule) if rule.accept => return None,
            Some(rule) => {
                rejected_by.get_or_insert(rule);
            }
            None => {}
        }
    }
    rejected_by
}

impl HostLvm {
    /// Reads the host's LVM settings below `etc_lvm` (normally [`ETC_LVM`]). A missing
    /// lvm.conf is LVM's defaults; a file that exists but can't be read or parsed is
    /// an error, never "no filter".
    pub fn read(etc_lvm: &Path) -> Result<HostLvm, HostLvmError> {
        let mut config_files = Vec::new();
        let mut settings = Settings::default();
        for name in ["lvm.conf", "lvmlocal.conf"] {
            let path = etc_lvm.join(name);
            let Some(text) = read_bounded(&path)? else {
                continue;
            };
            let parsed = parse_config(&text).map_err(|(line, message)| HostLvmError::Syntax {
                path: path.clone(),
                line,
                message,
            })?;
            if parsed.keys().any(|k| k == "tags" || k.starts_with("tags/")) {
                return Err(HostLvmError::TagConfig { path });
            }
            settings.merge(parsed, &path);
            config_files.push(path);
        }

        let use_devicesfile = match settings.get("devices/use_devicesfile") {
            None => None,
            Some((value, path)) => {
                Some(value.as_bool().ok_or_else(|| HostLvmError::BadSetting {
                    path: path.clone(),
                    setting: "devices/use_devicesfile",
                    found: value.describe(),
                    expected: "0, 1 or a yes/no word",
                })?)
            }
        };
        let file_name = match settings.get("devices/devicesfile") {
            None => DEFAULT_DEVICES_FILE.to_owned(),
            Some((value, path)) => match value.as_str() {
                Some(name) if valid_devices_file_name(name) => name.to_owned(),
                _ => {
                    return Err(HostLvmError::BadSetting {
                        path: path.clone(),
                        setting: "devices/devicesfile",
                        found: value.describe(),
                        expected: "a file name of letters, digits, '+', '_', '.', '-'",
                    })
                }
            },
        };
        let devices_path = etc_lvm.join("devices").join(file_name);
        let devices_file = match read_bounded(&devices_path)? {
            None => None,
            Some(text) => {
                let mut file = parse_devices_file(&text);
                file.path = devices_path;
                file.enabled = use_devicesfile != Some(false);
                Some(file)
            }
        };
        let global_filter = settings.filter_rules("devices/global_filter", "global_filter")?;
        let global_filter_file = settings
            .get("devices/global_filter")
            .map(|(_, path)| path.clone());
        let filter = settings.filter_rules("devices/filter", "filter")?;
        let locking_dir = match settings.get("global/locking_dir") {
            None => None,
            Some((value, path)) => match value.as_str() {
                Some(dir) if dir.starts_with('/') && !dir.contains('\0') => {
                    Some(PathBuf::from(dir))
                }
                _ => {
                    return Err(HostLvmError::BadSetting {
                        path: path.clone(),
                        setting: "global/locking_dir",
                        found: value.describe(),
                        expected: "an absolute path",
                    })
                }
            },
        };
        let use_lvmlockd = match settings.get("global/use_lvmlockd") {
            None => false,
            Some((value, path)) => value.as_bool().ok_or_else(|| HostLvmError::BadSetting {
                path: path.clone(),
                setting: "global/use_lvmlockd",
                found: value.describe(),
                expected: "0 or 1",
            })?,
        };
        let pool_creation = settings.pool_creation()?;
        Ok(HostLvm {
            config_files,
            use_devicesfile,
            devices_file,
            global_filter,
            global_filter_file,
            filter,
            locking_dir,
            use_lvmlockd,
            pool_creation,
        })
    }

    /// Whether the host's LVM restricts itself to the devices file.
    pub fn devices_file_in_use(&self) -> bool {
        self.devices_file.as_ref().is_some_and(|f| f.enabled)
    }

    /// Whether the devices file has an entry for the PV `pvid` (dashed or not) that
    /// the host will match to `devnode`: same PVID, and for a `devname` entry the
    /// same name (LVM drops a devname entry whose PVID is not on that device; an
    /// entry with a stable ID and a stale PVID is not counted — `lvmdevices
    /// --adddev` updates it in place).
    pub fn is_listed(&self, pvid: &str, devnode: &Path) -> bool {
        let wanted: String = pvid.chars().filter(|c| *c != '-').collect();
        let devnode = devnode.to_string_lossy();
        self.devices_file.as_ref().is_some_and(|file| {
            file.entries.iter().any(|entry| {
                entry.pvid.as_deref() == Some(wanted.as_str())
                    && (entry.id_type != IdType::Devname
                        || entry.id_name.as_deref() == Some(devnode.as_ref()))
            })
        })
    }

    /// The `global_filter` rule that makes the host reject a device with these
    /// `names` (its node and every /dev symlink to it), or `None` if the host
    /// accepts it. Only meaningful while the devices file is not in use (LVM
    /// ignores the filters then; see [`HostLvm::devices_file_in_use`]).
    pub fn global_filter_rejects(&self, names: &[PathBuf]) -> Option<String> {
        first_rejecting_rule(&self.global_filter, names).map(|rule| rule.source.clone())
    }

    /// The same for `devices/filter`.
    pub fn filter_rejects(&self, names: &[PathBuf]) -> Option<String> {
        first_rejecting_rule(&self.filter, names).map(|rule| rule.source.clone())
    }
}

/// The names LVM knows a device by: `devnode` itself and every symlink to it in
/// `<dev_dir>/disk/*/` and `<dev_dir>/block/`, written below `/dev` (so a test may
/// pass another folder as `dev_dir`). Bounded; unreadable entries are skipped.
pub fn lvm_device_names(dev_dir: &Path, devnode: &Path) -> std::io::Result<Vec<PathBuf>> {
    let target = std::fs::canonicalize(devnode)?;
    let as_dev_path = |p: &Path| match p.strip_prefix(dev_dir) {
        Ok(rest) => Path::new("/dev").join(rest),
        Err(_) => p.to_path_buf(),
    };
    let mut names = vec![as_dev_path(devnode)];
    let mut folders = vec![dev_dir.join("block")];
    if let Ok(kinds) = std::fs::read_dir(dev_dir.join("disk")) {
        folders.extend(kinds.flatten().map(|e| e.path()));
    }
    let mut seen = 0usize;
    for folder in folders {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            seen += 1;
            if seen > MAX_DEV_ENTRIES {
                return Ok(names);
            }
            let path = entry.path();
            let is_link = entry.file_type().is_ok_and(|t| t.is_symlink());
            if is_link && std::fs::canonicalize(&path).is_ok_and(|p| p == target) {
                names.push(as_dev_path(&path));
            }
        }
    }
    Ok(names)
}

/// LVM's `validate_name` for the devices file name.
fn valid_devices_file_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'_' | b'.' | b'-'))
}

/// The file's text, `None` if it does not exist.
fn read_bounded(path: &Path) -> Result<Option<String>, HostLvmError> {
    let file = match crate::ffi::open::open_read_only(path, 0) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(HostLvmError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    // Sized up front, the file is read in one call instead of doubling reads from 32
    // bytes (Debian's lvm.conf is 110 KiB).
    let expected = file.metadata().map_or(0, |m| m.len()).min(MAX_FILE_BYTES) + 1;
    let mut bytes = Vec::with_capacity(usize::try_from(expected).unwrap_or(0));
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| HostLvmError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(HostLvmError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| HostLvmError::NotText {
            path: path.to_path_buf(),
        })
}

// ---------------------------------------------------------------------------------
// devices file

/// Parses a devices file the way LVM 2.03.16 reads it: `#` lines are comments,
/// `SYSTEMID=` and `VERSION=` lines are header values, and any other line needs both
/// `IDTYPE=` and `IDNAME=` or LVM skips it (so do we).
fn parse_devices_file(text: &str) -> DevicesFile {
    let mut file = DevicesFile {
        path: PathBuf::new(),
        enabled: false,
        version: None,
        system_id: None,
        entries: Vec::new(),
    };
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        if let Some(value) = line.strip_prefix("SYSTEMID=") {
            file.system_id = present(first_word(value));
            continue;
        }
        if let Some(value) = line.strip_prefix("VERSION=") {
            file.version = parse_version(first_word(value));
            continue;
        }
        let mut fields: BTreeMap<&str, &str> = BTreeMap::new();
        for word in line.split_whitespace() {
            if let Some((key, value)) = word.split_once('=') {
                fields.entry(key).or_insert(value);
            }
        }
        let (Some(id_type), Some(id_name)) = (fields.get("IDTYPE"), fields.get("IDNAME")) else {
            continue;
        };
        file.entries.push(DevicesFileEntry {
            id_type: IdType::parse(id_type),
            id_name: present(id_name),
            dev_name: fields.get("DEVNAME").and_then(|v| present(v)),
            pvid: fields.get("PVID").and_then(|v| present(v)),
            part: fields
                .get("PART")
                .and_then(|v| v.parse::<u32>().ok())
                .filter(|p| *p > 0),
        });
    }
    file
}

fn first_word(value: &str) -> &str {
    value.split_whitespace().next().unwrap_or("")
}

/// LVM writes `.` (or nothing) for an absent value.
fn present(value: &str) -> Option<String> {
    (!value.is_empty() && !value.starts_with('.')).then(|| value.to_owned())
}

fn parse_version(text: &str) -> Option<DevicesFileVersion> {
    let mut parts = text.split('.').map(|p| p.parse::<u32>().ok());
    let version = DevicesFileVersion {
        major: parts.next()??,
        minor: parts.next()??,
        counter: parts.next()??,
    };
    parts.next().is_none().then_some(version)
}

// ---------------------------------------------------------------------------------
// lvm.conf

#[derive(Debug, Clone, PartialEq)]
enum Scalar {
    Int(i64),
    Float(String),
    Str(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Scalar(Scalar),
    Array(Vec<Scalar>),
}

impl Value {
    fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Scalar(Scalar::Int(i)) => Some(*i != 0),
            Value::Scalar(Scalar::Str(s)) => match s.to_ascii_lowercase().as_str() {
                "y" | "yes" | "on" | "true" => Some(true),
                "n" | "no" | "off" | "false" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Value::Scalar(Scalar::Str(s)) => Some(s),
            _ => None,
        }
    }

    fn describe(&self) -> String {
        format!("{self:?}")
    }
}

/// The merged settings of lvm.conf and lvmlocal.conf, each with the file it came from.
#[derive(Default)]
struct Settings {
    values: BTreeMap<String, (Value, PathBuf)>,
}

impl Settings {
    fn merge(&mut self, parsed: BTreeMap<String, Value>, path: &Path) {
        for (key, value) in parsed {
            let value = match (key.as_str(), self.values.remove(&key)) {
                // LVM joins filter lists across files, the later file's patterns first.
                ("devices/filter", Some((old, _))) => {
                    let mut joined = scalars(&value);
                    joined.extend(scalars(&old));
                    Value::Array(joined)
                }
                _ => value,
            };
            self.values.insert(key, (value, path.to_path_buf()));
        }
    }

    fn get(&self, key: &str) -> Option<(&Value, &PathBuf)> {
        self.values.get(key).map(|(v, p)| (v, p))
    }

    fn pool_creation(&self) -> Result<PoolCreationSettings, HostLvmError> {
        let string_list = |key: &str| {
            self.get(key).map(|(value, _)| {
                scalars(value)
                    .into_iter()
                    .filter_map(|s| match s {
                        Scalar::Str(text) => Some(text),
                        _ => None,
                    })
                    .collect::<Vec<_>>()
            })
        };
        let metadata_requires_separate_pvs =
            match self.get("allocation/thin_pool_metadata_require_separate_pvs") {
                None => false,
                Some((value, path)) => value.as_bool().ok_or_else(|| HostLvmError::BadSetting {
                    path: path.clone(),
                    setting: "allocation/thin_pool_metadata_require_separate_pvs",
                    found: value.describe(),
                    expected: "0 or 1",
                })?,
            };
        let physical_extent_size_kib = match self.get("allocation/physical_extent_size") {
            None => None,
            Some((Value::Scalar(Scalar::Int(kib)), _)) if *kib > 0 => u64::try_from(*kib).ok(),
            Some((value, path)) => {
                return Err(HostLvmError::BadSetting {
                    path: path.clone(),
                    setting: "allocation/physical_extent_size",
                    found: value.describe(),
                    expected: "a size in KiB",
                })
            }
        };
        Ok(PoolCreationSettings {
            volume_list: string_list("activation/volume_list"),
            read_only_volume_list: string_list("activation/read_only_volume_list"),
            metadata_requires_separate_pvs,
            physical_extent_size_kib,
        })
    }

    fn filter_rules(
        &self,
        key: &str,
        setting: &'static str,
    ) -> Result<Vec<FilterRule>, HostLvmError> {
        let Some((value, path)) = self.get(key) else {
            return Ok(Vec::new());
        };
        let list = scalars(value);
        if list.len() > MAX_FILTER_RULES {
            return Err(HostLvmError::BadSetting {
                path: path.clone(),
                setting: if setting == "filter" {
                    "devices/filter"
                } else {
                    "devices/global_filter"
                },
                found: format!("{} patterns", list.len()),
                expected: "at most 1024 patterns",
            });
        }
        list.iter()
            .map(|item| {
                let Scalar::Str(pattern) = item else {
                    return Err(HostLvmError::BadFilter {
                        path: path.clone(),
                        setting,
                        pattern: format!("{item:?}"),
                        source: FilterPatternError::NotQuoted,
                    });
                };
                FilterRule::parse(pattern).map_err(|source| HostLvmError::BadFilter {
                    path: path.clone(),
                    setting,
                    pattern: pattern.clone(),
                    source,
                })
            })
            .collect()
    }
}

fn scalars(value: &Value) -> Vec<Scalar> {
    match value {
        Value::Scalar(s) => vec![s.clone()],
        Value::Array(items) => items.clone(),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    SectionBegin,
    SectionEnd,
    ArrayBegin,
    ArrayEnd,
    Comma,
    Equals,
    /// An identifier, or a bare word where a value is expected.
    Word(String),
    Quoted(String),
    Int(i64),
    Float(String),
}

/// Splits LVM config text into tokens with their line numbers (libdm's tokenizer:
/// numbers and bare words only where a value may start).
fn tokenize(text: &str) -> Result<Vec<(Token, usize)>, (usize, String)> {
    let bytes = text.as_bytes();
    let mut tokens: Vec<(Token, usize)> = Vec::new();
    let mut line = 1usize;
    let mut i = 0usize;
    while let Some(&b) = bytes.get(i) {
        if b == b'\n' {
            line += 1;
            i += 1;
            continue;
        }
        if b.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if b == b'#' {
            while bytes.get(i).is_some_and(|c| *c != b'\n') {
                i += 1;
            }
            continue;
        }
        let value_allowed = matches!(
            tokens.last(),
            Some((Token::Equals | Token::ArrayBegin | Token::Comma, _))
        );
        let start = i;
        let token = match b {
            b'{' => {
                i += 1;
                Token::SectionBegin
            }
            b'}' => {
                i += 1;
                Token::SectionEnd
            }
            b'[' => {
                i += 1;
                Token::ArrayBegin
            }
            b']' => {
                i += 1;
                Token::ArrayEnd
            }
            b',' => {
                i += 1;
                Token::Comma
            }
            b'=' => {
                i += 1;
                Token::Equals
            }
            b'"' => {
                i += 1;
                let mut out = String::new();
                loop {
                    let Some(&c) = bytes.get(i) else {
                        return Err((line, "a \"string\" is never closed".into()));
                    };
                    i += 1;
                    match c {
                        b'"' => break,
                        b'\\' if matches!(bytes.get(i), Some(b'"' | b'\\')) => {
                            out.push(char::from(bytes[i]));
                            i += 1;
                        }
                        b'\n' => {
                            line += 1;
                            out.push('\n');
                        }
                        _ => {
                            // Copy the whole UTF-8 sequence starting here.
                            let end = next_char_boundary(text, i - 1);
                            out.push_str(&text[i - 1..end]);
                            i = end;
                        }
                    }
                }
                Token::Quoted(out)
            }
            b'\'' => {
                i += 1;
                let end = text[i..]
                    .find('\'')
                    .ok_or((line, "a 'string' is never closed".to_owned()))?;
                let s = &text[i..i + end];
                line += s.matches('\n').count();
                i += end + 1;
                Token::Quoted(s.to_owned())
            }
            b'0'..=b'9' | b'+' | b'-' | b'.' if value_allowed => {
                i += 1;
                let mut float = b == b'.';
                while let Some(&c) = bytes.get(i) {
                    if c.is_ascii_digit() {
                        i += 1;
                    } else if c == b'.' && !float {
                        float = true;
                        i += 1;
                    } else {
                        break;
                    }
                }
                let number = &text[start..i];
                if float {
                    Token::Float(number.to_owned())
                } else {
                    Token::Int(parse_int(number).ok_or((line, format!("bad number {number}")))?)
                }
            }
            _ => {
                while bytes
                    .get(i)
                    .is_some_and(|c| !c.is_ascii_whitespace() && !b"#={}".contains(c))
                {
                    i += 1;
                }
                Token::Word(text[start..i].to_owned())
            }
        };
        tokens.push((token, line));
    }
    Ok(tokens)
}

fn next_char_boundary(text: &str, at: usize) -> usize {
    let mut end = at + 1;
    while end < text.len() && !text.is_char_boundary(end) {
        end += 1;
    }
    end
}

/// `strtoll(…, 0)`: decimal, `0x` hex or leading-zero octal, with a sign.
fn parse_int(text: &str) -> Option<i64> {
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let magnitude = if digits.len() > 1 && digits.starts_with('0') {
        i64::from_str_radix(&digits[1..], 8).ok()?
    } else {
        digits.parse::<i64>().ok()?
    };
    if negative {
        magnitude.checked_neg()
    } else {
        Some(magnitude)
    }
}

/// Parses LVM config text into `section/…/key → value`, merging sections of the same
/// name and letting a later value replace an earlier one, as libdm does.
fn parse_config(text: &str) -> Result<BTreeMap<String, Value>, (usize, String)> {
    let tokens = tokenize(text)?;
    let mut values = BTreeMap::new();
    let mut path: Vec<String> = Vec::new();
    let mut i = 0usize;
    let last_line = tokens.last().map_or(1, |(_, l)| *l);
    let line_at = |i: usize| tokens.get(i).map_or(last_line, |(_, l)| *l);
    while let Some((token, line)) = tokens.get(i) {
        let line = *line;
        i += 1;
        let name = match token {
            Token::SectionEnd => {
                if path.pop().is_none() {
                    return Err((line, "a '}' closes no section".into()));
                }
                continue;
            }
            Token::Word(w) | Token::Quoted(w) if !w.is_empty() => w.clone(),
            other => {
                return Err((
                    line,
                    format!("expected a setting or section name, found {other:?}"),
                ))
            }
        };
        match tokens.get(i).map(|(t, _)| t) {
            Some(Token::SectionBegin) => {
                i += 1;
                if path.len() >= MAX_DEPTH {
                    return Err((line, format!("sections nested deeper than {MAX_DEPTH}")));
                }
                path.push(name);
            }
            Some(Token::Equals) => {
                i += 1;
                let value = match tokens.get(i).map(|(t, _)| t) {
                    Some(Token::ArrayBegin) => {
                        i += 1;
                        let mut items = Vec::new();
                        loop {
                            match tokens.get(i).map(|(t, _)| t) {
                                Some(Token::ArrayEnd) => {
                                    i += 1;
                                    break;
                                }
                                Some(t) => {
                                    items.push(scalar(t).ok_or((
                                        line_at(i),
                                        format!("expected a value in the list, found {t:?}"),
                                    ))?);
                                    i += 1;
                                    if tokens.get(i).map(|(t, _)| t) == Some(&Token::Comma) {
                                        i += 1;
                                    }
                                }
                                None => return Err((line, "a '[' list is never closed".into())),
                            }
                        }
                        Value::Array(items)
                    }
                    Some(t) => {
                        let v = scalar(t)
                            .ok_or((line_at(i), format!("expected a value, found {t:?}")))?;
                        i += 1;
                        Value::Scalar(v)
                    }
                    None => return Err((line, format!("{name} = has no value"))),
                };
                let mut key = path.join("/");
                if !key.is_empty() {
                    key.push('/');
                }
                key.push_str(name.trim_matches('/'));
                values.insert(key, value);
            }
            _ => return Err((line, format!("expected '=' or '{{' after {name}"))),
        }
    }
    if !path.is_empty() {
        return Err((
            last_line,
            format!("section {} is never closed", path.join("/")),
        ));
    }
    Ok(values)
}

fn scalar(token: &Token) -> Option<Scalar> {
    match token {
        Token::Int(i) => Some(Scalar::Int(*i)),
        Token::Float(f) => Some(Scalar::Float(f.clone())),
        Token::Quoted(s) | Token::Word(s) => Some(Scalar::Str(s.clone())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch /etc/lvm with the given files.
    fn etc(test: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir = std::env::temp_dir()
            .join("host_lvm_tests")
            .join(format!("{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("devices")).unwrap();
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
        dir
    }

    fn fixture(name: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/host-lvm")
            .join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn names(list: &[&str]) -> Vec<PathBuf> {
        list.iter().map(PathBuf::from).collect()
    }

    const VDA1: &[&str] = &[
        "/dev/vda1",
        "/dev/disk/by-partlabel/linstor-storage",
        "/dev/disk/by-path/pci-0000:00:04.0-part1",
        "/dev/block/254:1",
    ];

    #[test]
    fn debian_default_has_no_filter_and_no_devices_file() {
        let dir = etc("debian", &[("lvm.conf", &fixture("debian-lvm.conf"))]);
        let host = HostLvm::read(&dir).unwrap();
        assert_eq!(host.use_devicesfile, None);
        assert!(host.devices_file.is_none());
        assert!(!host.devices_file_in_use());
        assert!(host.global_filter.is_empty() && host.filter.is_empty());
        assert_eq!(host.global_filter_rejects(&names(VDA1)), None);
        assert!(!host.is_listed("6WD02yOe07ph7unIIO1aeqYITr1Qakd1", Path::new("/dev/vda1")));
    }

    #[test]
    fn rhel9_devices_file_is_in_use_and_lists_by_pvid() {
        let dir = etc(
            "rhel9",
            &[
                ("lvm.conf", &fixture("rhel9-lvm.conf")),
                ("devices/system.devices", &fixture("rhel9-system.devices")),
            ],
        );
        let host = HostLvm::read(&dir).unwrap();
        // RHEL 9 leaves the setting commented out (its compiled default is on).
        assert_eq!(host.use_devicesfile, None);
        assert!(host.devices_file_in_use());
        // Present but ignored by LVM while the devices file is in use.
        assert_eq!(host.global_filter.len(), 1);
        let file = host.devices_file.as_ref().unwrap();
        assert_eq!(file.path, dir.join("devices/system.devices"));
        assert_eq!(
            file.version,
            Some(DevicesFileVersion {
                major: 1,
                minor: 1,
                counter: 3
            })
        );
        assert_eq!(file.entries.len(), 2);
        assert_eq!(file.entries[1].id_type, IdType::SysWwid);
        assert_eq!(file.entries[1].part, Some(1));
        // Dashed or not.
        assert!(host.is_listed(
            "kmRHSe-oa6h-Lm0F-X7Yq-2ymd-0Mhc-NZ5cPm",
            Path::new("/dev/sdb1")
        ));
        assert!(host.is_listed("kmRHSeoa6hLm0FX7Yq2ymd0MhcNZ5cPm", Path::new("/dev/sdb1")));
        assert!(!host.is_listed("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", Path::new("/dev/sdb1")));
    }

    #[test]
    fn devices_file_made_by_lvmdevices_parses() {
        // Written by Debian's LVM 2.03.16 `lvmdevices --adddev` on a loop device.
        let file = parse_devices_file(&fixture("lvmdevices-loop_file.devices"));
        assert_eq!(
            file.version,
            Some(DevicesFileVersion {
                major: 1,
                minor: 1,
                counter: 1
            })
        );
        assert_eq!(
            file.entries,
            [DevicesFileEntry {
                id_type: IdType::LoopFile,
                id_name: Some("/tmp/hostlvm-fixture/disk.img".into()),
                dev_name: Some("/dev/loop0".into()),
                pvid: Some("6WD02yOe07ph7unIIO1aeqYITr1Qakd1".into()),
                part: None,
            }]
        );
        let file = parse_devices_file(&fixture("lvmdevices-devname.devices"));
        assert_eq!(file.entries[0].id_type, IdType::Devname);
        assert_eq!(file.entries[0].id_name.as_deref(), Some("/dev/loop0"));
    }

    #[test]
    fn a_devname_entry_invalidated_by_the_host_does_not_list_the_pv() {
        // What the host's `pvs` leaves after a PV was recreated behind its back.
        let file = parse_devices_file(&fixture("lvmdevices-invalidated.devices"));
        let host = HostLvm {
            config_files: vec![],
            use_devicesfile: Some(true),
            devices_file: Some(DevicesFile {
                enabled: true,
                ..file
            }),
            global_filter: vec![],
            global_filter_file: None,
            filter: vec![],
            locking_dir: None,
            use_lvmlockd: false,
            pool_creation: PoolCreationSettings::default(),
        };
        assert!(!host.is_listed("6WD02yOe07ph7unIIO1aeqYITr1Qakd1", Path::new("/dev/loop0")));
        assert!(host.is_listed("fS5LNqX2LN8UfRfPmjR8aSb3KsUAvO0w", Path::new("/dev/loop0")));
    }

    #[test]
    fn devices_file_exists_but_use_devicesfile_is_off() {
        let dir = etc(
            "off",
            &[
                ("lvm.conf", "devices {\n\tuse_devicesfile = 0\n}\n"),
                ("devices/system.devices", &fixture("rhel9-system.devices")),
            ],
        );
        let host = HostLvm::read(&dir).unwrap();
        assert!(host.devices_file.is_some());
        assert!(!host.devices_file_in_use());
    }

    #[test]
    fn unset_use_devicesfile_with_an_existing_file_counts_as_in_use() {
        let dir = etc(
            "unset",
            &[("devices/system.devices", &fixture("rhel9-system.devices"))],
        );
        assert!(HostLvm::read(&dir).unwrap().devices_file_in_use());
    }

    #[test]
    fn lvmlocal_overrides_lvm_conf_and_names_another_devices_file() {
        let dir = etc(
            "local",
            &[
                ("lvm.conf", "devices { use_devicesfile = 0 global_filter = [ \"r|.*|\" ] }"),
                (
                    "lvmlocal.conf",
                    "devices/use_devicesfile = \"yes\"\ndevices { devicesfile = \"node.devices\" }\n",
                ),
                ("devices/node.devices", "VERSION=1.1.1\n"),
            ],
        );
        let host = HostLvm::read(&dir).unwrap();
        assert_eq!(host.use_devicesfile, Some(true));
        assert_eq!(
            host.devices_file.as_ref().map(|f| f.path.clone()),
            Some(dir.join("devices/node.devices"))
        );
        assert_eq!(host.global_filter.len(), 1);
    }

    #[test]
    fn global_filter_rejecting_virtio_disks_names_the_rule() {
        let dir = etc(
            "reject-vd",
            &[(
                "lvm.conf",
                "devices {\n  # keep LVM off the virtio disks\n  global_filter = [ \"a|^/dev/sda|\", \"r|^/dev/vd.*|\" ]\n}\n",
            )],
        );
        let host = HostLvm::read(&dir).unwrap();
        // /dev/vda1 matches the reject rule; the symlinks match nothing.
        assert_eq!(
            host.global_filter_rejects(&names(VDA1)),
            Some("r|^/dev/vd.*|".to_owned())
        );
        assert_eq!(host.global_filter_rejects(&names(&["/dev/sda3"])), None);
    }

    #[test]
    fn accepting_any_name_of_the_device_accepts_it() {
        let host = host_with_global_filter(&["a|/dev/disk/by-partlabel/|", "r|.*|"]);
        assert_eq!(host.global_filter_rejects(&names(VDA1)), None);
        assert_eq!(
            host.global_filter_rejects(&names(&["/dev/vda1", "/dev/block/254:1"])),
            Some("r|.*|".into())
        );
    }

    #[test]
    fn accept_all_and_unmatched_names_are_accepted() {
        assert_eq!(
            host_with_global_filter(&["a|.*|"]).global_filter_rejects(&names(VDA1)),
            None
        );
        assert_eq!(
            host_with_global_filter(&["r|^/dev/drbd|"]).global_filter_rejects(&names(VDA1)),
            None
        );
        assert_eq!(
            host_with_global_filter(&[]).global_filter_rejects(&names(VDA1)),
            None
        );
    }

    /// The global_filter Talos-based distributions write (keep LVM off DRBD, DM,
    /// ZFS and loop devices) leaves an NVMe partition visible.
    #[test]
    fn talos_style_filter_accepts_a_disk_partition() {
        let dir = etc(
            "talos",
            &[(
                "lvm.conf",
                "backup {\n  backup = 0\n  archive = 0\n}\ndevices {\n  global_filter = [ \"r|^/dev/drbd.*|\", \"r|^/dev/dm-.*|\", \"r|^/dev/zd.*|\", \"r|^/dev/loop.*|\" ]\n}\n",
            )],
        );
        let host = HostLvm::read(&dir).unwrap();
        assert_eq!(host.global_filter.len(), 4);
        let nvme = names(&["/dev/nvme0n1p3", "/dev/disk/by-partlabel/linstor-storage"]);
        assert_eq!(host.global_filter_rejects(&nvme), None);
        assert_eq!(
            host.global_filter_rejects(&names(&["/dev/loop3"])),
            Some("r|^/dev/loop.*|".into())
        );
    }

    #[test]
    fn first_matching_rule_wins() {
        let host = host_with_global_filter(&["r|vda|", "a|.*|"]);
        assert_eq!(
            host.global_filter_rejects(&names(&["/dev/vda1"])),
            Some("r|vda|".into())
        );
        let host = host_with_global_filter(&["a|vda|", "r|.*|"]);
        assert_eq!(host.global_filter_rejects(&names(&["/dev/vda1"])), None);
    }

    #[test]
    fn lvm_regex_dialect_is_translated_not_guessed() {
        // `{` and `\d` are literal characters to libdm; `.` never matches a newline.
        let brace = FilterRule::parse("r|vd{1}|").unwrap();
        assert!(brace.matches(Path::new("/dev/vd{1}")));
        assert!(!brace.matches(Path::new("/dev/vd")));
        let backslash_d = FilterRule::parse(r"r|sd\d|").unwrap();
        assert!(backslash_d.matches(Path::new("/dev/sdd")));
        assert!(!backslash_d.matches(Path::new("/dev/sd1")));
        let ranges = FilterRule::parse("r(/dev/[a-c]d[^0-9]$)").unwrap();
        assert!(ranges.matches(Path::new("/dev/bdx")));
        assert!(!ranges.matches(Path::new("/dev/bd1")));
        assert!(!ranges.matches(Path::new("/dev/ddx")));
        let dot = FilterRule::parse("r|^a.b$|").unwrap();
        assert!(dot.matches(Path::new("a-b")) && !dot.matches(Path::new("a\nb")));
        // Other separators.
        assert!(FilterRule::parse("a{x}").unwrap().accept);
        assert!(FilterRule::parse("r#/dev/sda#").is_ok());
    }

    /// Verdicts of Debian's LVM 2.03.16 (`pvs` with `use_devicesfile = 0` and this
    /// `global_filter` in lvm.conf, on /dev/loop0): true = the PV was hidden.
    #[test]
    fn verdicts_match_lvm_2_03_16() {
        let dir = etc(
            "verdicts",
            &[(
                "lvm.conf",
                r#"devices { global_filter = [ "r|loo\\p0|" ] }"#,
            )],
        );
        let unescaped = HostLvm::read(&dir).unwrap();
        assert_eq!(unescaped.global_filter[0].source, r"r|loo\p0|");
        for (pattern, hidden) in [
            ("r|loop0|", true),
            ("r|loop{0}|", false),
            (r"r|loo\p0|", true),
            ("r|^/dev/loop[0-9]$|", true),
            ("r|^/dev/loo$|", false),
            (r"r|sd\d|", false),
            ("a|.*|", false),
        ] {
            let host = host_with_global_filter(&[pattern]);
            let verdict = host.global_filter_rejects(&names(&["/dev/loop0"]));
            assert_eq!(verdict.is_some(), hidden, "{pattern}");
        }
    }

    #[test]
    fn invalid_patterns_are_errors_not_no_filter() {
        for (bad, why) in [
            ("x|.*|", FilterPatternError::NoAction),
            ("r|.*", FilterPatternError::Unterminated { close: '|' }),
            ("a", FilterPatternError::NoSeparator),
            ("r|[abc|", FilterPatternError::UnclosedSet),
            (r"r|abc\|", FilterPatternError::TrailingBackslash),
        ] {
            assert_eq!(FilterRule::parse(bad).err(), Some(why), "{bad}");
        }
        let dir = etc(
            "bad-filter",
            &[("lvm.conf", "devices { global_filter = [ \"q|.*|\" ] }")],
        );
        let err = HostLvm::read(&dir).unwrap_err();
        assert!(
            matches!(
                err,
                HostLvmError::BadFilter {
                    source: FilterPatternError::NoAction,
                    ..
                }
            ),
            "{err}"
        );
        // The message names the pattern, as written.
        assert!(err.to_string().contains("q|.*|"), "{err}");
        let dir = etc(
            "unquoted-filter",
            &[("lvm.conf", "devices { global_filter = [ 1 ] }")],
        );
        assert!(matches!(
            HostLvm::read(&dir),
            Err(HostLvmError::BadFilter {
                source: FilterPatternError::NotQuoted,
                ..
            })
        ));
    }

    #[test]
    fn unparsable_config_is_an_error() {
        for (name, text) in [
            ("unclosed-section", "devices {\n use_devicesfile = 1\n"),
            ("unclosed-string", "devices { global_filter = [ \"r|x| ] }"),
            ("no-value", "devices { use_devicesfile = }"),
            ("stray-close", "}\n"),
            ("unclosed-list", "devices { filter = [ \"a|x|\" "),
        ] {
            let dir = etc(name, &[("lvm.conf", text)]);
            let err = HostLvm::read(&dir).unwrap_err();
            assert!(matches!(err, HostLvmError::Syntax { .. }), "{name}: {err}");
        }
        let dir = etc(
            "bad-bool",
            &[("lvm.conf", "devices { use_devicesfile = \"maybe\" }")],
        );
        assert!(matches!(
            HostLvm::read(&dir),
            Err(HostLvmError::BadSetting { .. })
        ));
        let dir = etc(
            "bad-name",
            &[("lvm.conf", "devices { devicesfile = \"../x\" }")],
        );
        assert!(matches!(
            HostLvm::read(&dir),
            Err(HostLvmError::BadSetting { .. })
        ));
        let dir = etc("tags", &[("lvm.conf", "tags { hosttags = 1 }")]);
        assert!(matches!(
            HostLvm::read(&dir),
            Err(HostLvmError::TagConfig { .. })
        ));
    }

    #[test]
    fn oversized_config_is_an_error() {
        let big = "#".repeat(usize::try_from(MAX_FILE_BYTES).unwrap() + 1);
        let dir = etc("big", &[("lvm.conf", &big)]);
        assert!(matches!(
            HostLvm::read(&dir),
            Err(HostLvmError::TooLarge { .. })
        ));
    }

    #[test]
    fn later_values_replace_earlier_ones_and_sections_merge() {
        let parsed = parse_config(
            "devices { use_devicesfile = 0 }\nactivation { x = 1.5 }\ndevices {\n use_devicesfile = 1\n}\n",
        )
        .unwrap();
        assert_eq!(
            parsed["devices/use_devicesfile"],
            Value::Scalar(Scalar::Int(1))
        );
        assert_eq!(
            parsed["activation/x"],
            Value::Scalar(Scalar::Float("1.5".into()))
        );
        let parsed = parse_config("a { b = 'single' c = bare e = -010 f = \"q\\\"x\" }").unwrap();
        assert_eq!(parsed["a/b"], Value::Scalar(Scalar::Str("single".into())));
        assert_eq!(parsed["a/c"], Value::Scalar(Scalar::Str("bare".into())));
        assert_eq!(parsed["a/e"], Value::Scalar(Scalar::Int(-8)));
        assert_eq!(parsed["a/f"], Value::Scalar(Scalar::Str("q\"x".into())));
        // libdm reads `0x10` as the number 0 followed by a stray word: an error.
        assert!(parse_config("a { d = 0x10 }").is_err());
    }

    #[test]
    fn filter_lists_of_lvm_conf_and_lvmlocal_conf_are_joined() {
        let dir = etc(
            "join",
            &[
                ("lvm.conf", "devices { filter = [ \"r|main|\" ] }"),
                ("lvmlocal.conf", "devices { filter = \"a|local|\" }"),
            ],
        );
        let host = HostLvm::read(&dir).unwrap();
        let sources: Vec<&str> = host.filter.iter().map(|r| r.source.as_str()).collect();
        assert_eq!(sources, ["a|local|", "r|main|"]);
        assert_eq!(
            host.filter_rejects(&names(&["/dev/main"])),
            Some("r|main|".into())
        );
    }

    #[test]
    fn device_names_include_symlinks_below_dev() {
        let dir = etc("names", &[]);
        let dev = dir.join("dev");
        std::fs::create_dir_all(dev.join("disk/by-partlabel")).unwrap();
        std::fs::create_dir_all(dev.join("block")).unwrap();
        std::fs::write(dev.join("vda1"), "").unwrap();
        std::fs::write(dev.join("vda2"), "").unwrap();
        std::os::unix::fs::symlink("../../vda1", dev.join("disk/by-partlabel/linstor-storage"))
            .unwrap();
        std::os::unix::fs::symlink("../vda1", dev.join("block/254:1")).unwrap();
        std::os::unix::fs::symlink("../vda2", dev.join("block/254:2")).unwrap();
        let mut found = lvm_device_names(&dev, &dev.join("vda1")).unwrap();
        found.sort();
        assert_eq!(
            found,
            names(&[
                "/dev/block/254:1",
                "/dev/disk/by-partlabel/linstor-storage",
                "/dev/vda1"
            ])
        );
    }

    fn host_with_global_filter(patterns: &[&str]) -> HostLvm {
        HostLvm {
            config_files: vec![],
            use_devicesfile: None,
            devices_file: None,
            global_filter: patterns
                .iter()
                .map(|p| FilterRule::parse(p).unwrap())
                .collect(),
            global_filter_file: None,
            filter: vec![],
            locking_dir: None,
            use_lvmlockd: false,
            pool_creation: PoolCreationSettings::default(),
        }
    }

    #[test]
    fn the_locking_dir_and_lvmlockd_are_read_and_lvmlocal_wins() {
        let default = HostLvm::read(&etc("locking-default", &[])).unwrap();
        assert_eq!(default.locking_dir, None);
        assert!(!default.use_lvmlockd);
        let dir = etc(
            "locking-set",
            &[
                (
                    "lvm.conf",
                    "global {\n locking_dir = \"/run/lvm-locks-test\"\n use_lvmlockd = 0\n}\n",
                ),
                ("lvmlocal.conf", "global/use_lvmlockd = 1\n"),
            ],
        );
        let host = HostLvm::read(&dir).unwrap();
        assert_eq!(host.locking_dir, Some(PathBuf::from("/run/lvm-locks-test")));
        assert!(host.use_lvmlockd);
    }

    #[test]
    fn a_relative_locking_dir_or_a_word_for_use_lvmlockd_is_an_error() {
        for (test, text, setting) in [
            (
                "locking-relative",
                "global { locking_dir = \"lock\" }\n",
                "global/locking_dir",
            ),
            (
                "locking-number",
                "global { locking_dir = 5 }\n",
                "global/locking_dir",
            ),
            (
                "lvmlockd-word",
                "global { use_lvmlockd = \"maybe\" }\n",
                "global/use_lvmlockd",
            ),
        ] {
            match HostLvm::read(&etc(test, &[("lvm.conf", text)])) {
                Err(HostLvmError::BadSetting { setting: s, .. }) => assert_eq!(s, setting),
                other => panic!("{test}: {other:?}"),
            }
        }
    }

    #[test]
    fn pool_creation_settings_are_read_from_both_files() {
        let dir = etc(
            "pool-creation",
            &[
                (
                    "lvm.conf",
                    "activation {\n volume_list = [ \"vg0\", \"@keep\" ]\n}\nallocation { physical_extent_size = 65536 }\n",
                ),
                (
                    "lvmlocal.conf",
                    "allocation/thin_pool_metadata_require_separate_pvs = 1\nactivation { read_only_volume_list = [] }\n",
                ),
            ],
        );
        let host = match HostLvm::read(&dir) {
            Ok(host) => host,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(
            host.pool_creation,
            PoolCreationSettings {
                volume_list: Some(vec!["vg0".into(), "@keep".into()]),
                read_only_volume_list: Some(vec![]),
                metadata_requires_separate_pvs: true,
                physical_extent_size_kib: Some(65536),
            }
        );
        let defaults = etc("pool-creation-defaults", &[("lvm.conf", "devices { }\n")]);
        assert!(
            matches!(HostLvm::read(&defaults), Ok(h) if h.pool_creation == PoolCreationSettings::default())
        );
        let bad = etc(
            "pool-creation-bad",
            &[(
                "lvm.conf",
                "allocation { physical_extent_size = \"big\" }\n",
            )],
        );
        assert!(matches!(
            HostLvm::read(&bad),
            Err(HostLvmError::BadSetting {
                setting: "allocation/physical_extent_size",
                ..
            })
        ));
    }
}
