//! Typed volume-group metadata, built from the parsed text tree.
//!
//! Shape of the text LVM writes (only what this module reads):
//! ```text
//! <vg name> {
//!     id, seqno, format, status, flags, tags, extent_size, max_lv, max_pv,
//!     [system_id, lock_type, ...]
//!     physical_volumes { pv0 { id, device, status, flags, tags, dev_size,
//!                              pe_start, pe_count } ... }
//!     logical_volumes { <lv name> { id, status, flags, tags, creation_time,
//!                                   creation_host, segment_count,
//!                                   segment1 { start_extent, extent_count,
//!                                              type, ... } ... } ... }
//! }
//! contents = "Text Format Volume Group"
//! version = 1
//! description, creation_host, creation_time
//! ```

use serde::Serialize;

use super::text::{Node, Scalar, Section, Tree, Value};
use super::uuid::LvmUuid;
use super::LvmReadError;
use crate::units::{ExtentSize, Extents, Sectors};

/// One volume group's metadata, as committed in a metadata area.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VgMetadata {
    /// VG name (the name of the top-level section).
    pub name: String,
    /// VG uuid.
    pub id: LvmUuid,
    /// Sequence number, incremented by every metadata change.
    pub seqno: u64,
    /// Status words, e.g. `RESIZEABLE`, `READ`, `WRITE`.
    pub status: Vec<String>,
    /// Flag words (usually empty).
    pub flags: Vec<String>,
    /// VG tags, verbatim.
    pub tags: Vec<String>,
    /// Extent size (LVM writes it in 512-byte sectors).
    #[serde(rename = "extent_size_sectors")]
    pub extent_size: ExtentSize,
    /// Most LVs allowed (0 = unlimited).
    pub max_lv: u64,
    /// Most PVs allowed (0 = unlimited).
    pub max_pv: u64,
    /// System ID, when set.
    pub system_id: Option<String>,
    /// Lock type (shared VGs), when set.
    pub lock_type: Option<String>,
    /// The VG's PVs, in text order (`pv0`, `pv1`, ...).
    pub physical_volumes: Vec<PvInMetadata>,
    /// All LVs, hidden sub-LVs included, in text order.
    pub logical_volumes: Vec<LvInMetadata>,
    /// `creation_host` of this metadata text (the host that last wrote it).
    pub creation_host: Option<String>,
    /// `creation_time` of this metadata text (Unix seconds).
    pub creation_time: Option<u64>,
    /// `description` of this metadata text (often the command that wrote it).
    pub description: Option<String>,
}

/// One PV of a VG, as the VG metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PvInMetadata {
    /// Key that segments use to refer to this PV (`pv0`, `pv1`, ...).
    pub key: String,
    /// PV uuid; matches [`super::PvOnDisk::pv_uuid`].
    pub id: LvmUuid,
    /// Device path where LVM last saw the PV (`device = ...`). A hint only:
    /// it may be stale; identify PVs by [`Self::id`].
    pub device_hint: Option<String>,
    /// `device_id` from LVM's devices file, when the VG was written with one.
    pub device_id: Option<String>,
    /// `device_id_type` (e.g. `sys_wwid`, `devname`), when present.
    pub device_id_type: Option<String>,
    /// Status words, e.g. `ALLOCATABLE`.
    pub status: Vec<String>,
    /// Flag words (e.g. `MISSING`).
    pub flags: Vec<String>,
    /// PV tags.
    pub tags: Vec<String>,
    /// Device size, as of the last metadata write.
    pub dev_size_sectors: Sectors,
    /// Where the first extent starts.
    pub pe_start: Sectors,
    /// Number of extents on this PV.
    pub pe_count: Extents,
}

/// One logical volume (visible or hidden).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LvInMetadata {
    /// LV name.
    pub name: String,
    /// LV uuid.
    pub id: LvmUuid,
    /// Status words: `READ`, `WRITE`, `VISIBLE` (absent on hidden sub-LVs).
    pub status: Vec<String>,
    /// Flag words (e.g. `ACTIVATION_SKIP`).
    pub flags: Vec<String>,
    /// LV tags.
    pub tags: Vec<String>,
    /// Creation time (Unix seconds), when recorded.
    pub creation_time: Option<u64>,
    /// Host that created the LV, when recorded.
    pub creation_host: Option<String>,
    /// Segments, in order (`segment1`, `segment2`, ...).
    pub segments: Vec<Segment>,
}

/// A run of extents of an LV mapped one way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Segment {
    /// First logical extent of the LV this segment covers.
    pub start_extent: u64,
    /// Number of extents.
    pub extent_count: Extents,
    /// How the extents are mapped.
    pub kind: SegmentKind,
}

/// Segment types this reader understands; everything else is [`SegmentKind::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum SegmentKind {
    /// `striped` (one stripe = linear).
    Striped {
        /// Stripe size (present only with more than one stripe).
        stripe_size: Option<Sectors>,
        /// `(pv key, first physical extent)` per stripe.
        stripes: Vec<(String, u64)>,
    },
    /// `thin-pool`.
    ThinPool {
        /// Name of the metadata sub-LV (normally `<pool>_tmeta`).
        metadata_lv: String,
        /// Name of the data sub-LV (normally `<pool>_tdata`).
        data_lv: String,
        /// Pool transaction id.
        transaction_id: u64,
        /// Chunk size.
        chunk_size_sectors: Sectors,
        /// `ignore`, `nopassdown` or `passdown`, when recorded.
        discards: Option<String>,
        /// Whether newly provisioned blocks are zeroed.
        zero_new_blocks: bool,
    },
    /// `thin`.
    Thin {
        /// Name of the thin-pool LV.
        thin_pool: String,
        /// Pool transaction id when the volume was created.
        transaction_id: u64,
        /// The thin device id inside the pool.
        device_id: u64,
        /// Origin LV of a thin snapshot, if any.
        origin: Option<String>,
    },
    /// Any other segment type (`raid1`, `cache`, `mirror`, `error`, ...).
    Other {
        /// The `type` string.
        segment_type: String,
    },
}

impl SegmentKind {
    /// LVM's name for the segment type.
    pub fn type_name(&self) -> &str {
        match self {
            SegmentKind::Striped { .. } => "striped",
            SegmentKind::ThinPool { .. } => "thin-pool",
            SegmentKind::Thin { .. } => "thin",
            SegmentKind::Other { segment_type } => segment_type,
        }
    }
}

impl VgMetadata {
    /// The LV named `name` (hidden sub-LVs included).
    pub fn lv(&self, name: &str) -> Option<&LvInMetadata> {
        self.logical_volumes.iter().find(|l| l.name == name)
    }

    /// The PV entry with uuid `id`.
    pub fn pv_by_id(&self, id: &LvmUuid) -> Option<&PvInMetadata> {
        self.physical_volumes.iter().find(|p| p.id == *id)
    }

    /// True when the VG carries tag `tag`.
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }

    /// Thin LVs that live in pool `pool`.
    pub fn thin_volumes_of<'a>(
        &'a self,
        pool: &'a str,
    ) -> impl Iterator<Item = &'a LvInMetadata> + 'a {
        self.logical_volumes
            .iter()
            .filter(move |l| l.thin_pool_name() == Some(pool))
    }
}

impl LvInMetadata {
    /// True when `VISIBLE` is among the status words (hidden sub-LVs such as
    /// `pool_tdata`, `pool_tmeta`, `lvol0_pmspare` lack it).
    pub fn is_visible(&self) -> bool {
        self.status.iter().any(|s| s == "VISIBLE")
    }

    /// Total extents over all segments (saturating: for display; the planner's
    /// facts use [`Self::checked_extent_count`]).
    pub fn extent_count(&self) -> Extents {
        self.checked_extent_count()
            .unwrap_or(Extents::new(u64::MAX))
    }

    /// Total extents over all segments; `None` when the metadata's numbers add up
    /// past 2^64 (impossible metadata).
    pub fn checked_extent_count(&self) -> Option<Extents> {
        self.segments
            .iter()
            .try_fold(Extents::ZERO, |n, s| n.checked_add(s.extent_count))
    }

    /// The thin-pool segment, if this LV is a thin pool.
    pub fn as_thin_pool(&self) -> Option<&SegmentKind> {
        self.segments
            .iter()
            .map(|s| &s.kind)
            .find(|k| matches!(k, SegmentKind::ThinPool { .. }))
    }

    /// The pool this LV is a thin volume of.
    pub fn thin_pool_name(&self) -> Option<&str> {
        self.segments.iter().find_map(|s| match &s.kind {
            SegmentKind::Thin { thin_pool, .. } => Some(thin_pool.as_str()),
            _ => None,
        })
    }

    /// PV keys this LV's striped segments use.
    pub fn pv_keys(&self) -> Vec<&str> {
        let mut keys: Vec<&str> = Vec::new();
        for s in &self.segments {
            if let SegmentKind::Striped { stripes, .. } = &s.kind {
                for (k, _) in stripes {
                    if !keys.contains(&k.as_str()) {
                        keys.push(k);
                    }
                }
            }
        }
        keys
    }
}

/// Builds typed metadata from a parsed text tree.
pub fn from_tree(tree: &Tree<'_>) -> Result<VgMetadata, LvmReadError> {
    let root = tree.root();
    let top = Ctx::root("", root);
    match top.s.value("contents") {
        Some(Value::Str("Text Format Volume Group")) => {}
        other => return Err(top.err("contents", describe(other), "\"Text Format Volume Group\"")),
    }
    match top.s.value("version") {
        Some(Value::Int(1)) => {}
        other => return Err(top.err("version", describe(other), "1")),
    }
    let mut vgs = root.sections();
    let (name, vg) = vgs
        .next()
        .ok_or_else(|| top.err("", "no section".into(), "one section named after the VG"))?;
    if let Some((second, _)) = vgs.next() {
        return Err(top.err(
            second,
            format!("a second top-level section {second:?} after {name:?}"),
            "exactly one VG section",
        ));
    }
    let vg = Ctx::root(name, vg);
    let mut physical_volumes = Vec::new();
    if let Some(pvs) = vg.opt_section("physical_volumes")? {
        for (key, s) in pvs.s.sections() {
            physical_volumes.push(pv_in_metadata(&pvs.child(key, s), key)?);
        }
    }
    let mut logical_volumes = Vec::new();
    if let Some(lvs) = vg.opt_section("logical_volumes")? {
        logical_volumes.reserve(lvs.s.len());
        for (key, s) in lvs.s.sections() {
            logical_volumes.push(lv_in_metadata(&lvs.child(key, s), key)?);
        }
    }
    Ok(VgMetadata {
        name: name.to_owned(),
        id: vg.uuid("id")?,
        seqno: vg.uint("seqno")?,
        status: vg.words("status")?,
        flags: vg.opt_words("flags")?,
        tags: vg.opt_words("tags")?,
        extent_size: vg.extent_size("extent_size")?,
        max_lv: vg.opt_uint("max_lv")?.unwrap_or(0),
        max_pv: vg.opt_uint("max_pv")?.unwrap_or(0),
        system_id: vg.opt_string("system_id")?,
        lock_type: vg.opt_string("lock_type")?,
        physical_volumes,
        logical_volumes,
        creation_host: top.opt_string("creation_host")?,
        creation_time: top.opt_uint("creation_time")?,
        description: top.opt_string("description")?,
    })
}

fn pv_in_metadata(c: &Ctx<'_, '_>, key: &str) -> Result<PvInMetadata, LvmReadError> {
    Ok(PvInMetadata {
        key: key.to_owned(),
        id: c.uuid("id")?,
        device_hint: c.opt_string("device")?,
        device_id: c.opt_string("device_id")?,
        device_id_type: c.opt_string("device_id_type")?,
        status: c.opt_words("status")?,
        flags: c.opt_words("flags")?,
        tags: c.opt_words("tags")?,
        dev_size_sectors: Sectors(c.opt_uint("dev_size")?.unwrap_or(0)),
        pe_start: Sectors(c.uint("pe_start")?),
        pe_count: Extents::new(c.uint("pe_count")?),
    })
}

fn lv_in_metadata(c: &Ctx<'_, '_>, name: &str) -> Result<LvInMetadata, LvmReadError> {
    let count = c.opt_uint("segment_count")?;
    let mut segments = Vec::new();
    for (key, s) in c.s.sections() {
        if key.starts_with("segment") {
            segments.push(segment(&c.child(key, s))?);
        }
    }
    if let Some(n) = count {
        if n != segments.len() as u64 {
            return Err(c.err(
                "segment_count",
                format!(
                    "segment_count = {n} with {} segment sections",
                    segments.len()
                ),
                "as many segment sections as segment_count says",
            ));
        }
    }
    Ok(LvInMetadata {
        name: name.to_owned(),
        id: c.uuid("id")?,
        status: c.words("status")?,
        flags: c.opt_words("flags")?,
        tags: c.opt_words("tags")?,
        creation_time: c.opt_uint("creation_time")?,
        creation_host: c.opt_string("creation_host")?,
        segments,
    })
}

fn segment(c: &Ctx<'_, '_>) -> Result<Segment, LvmReadError> {
    let segment_type = c.string("type")?;
    let kind = match segment_type.as_str() {
        "striped" => {
            let raw = c.array("stripes")?;
            if raw.len() % 2 != 0 {
                return Err(c.err(
                    "stripes",
                    format!("{} elements", raw.len()),
                    "pairs of \"pv key\", start extent",
                ));
            }
            let mut stripes = Vec::with_capacity(raw.len() / 2);
            for pair in raw.chunks_exact(2) {
                let [a, b] = pair else { continue };
                match (a, b) {
                    (Scalar::Str(pv), Scalar::Int(pe)) if *pe >= 0 => {
                        stripes.push((pv.as_ref().to_owned(), *pe as u64));
                    }
                    (a, b) => {
                        return Err(c.err(
                            "stripes",
                            format!("the pair {a:?}, {b:?}"),
                            "a quoted pv key and a non-negative extent number",
                        ))
                    }
                }
            }
            if let Some(n) = c.opt_uint("stripe_count")? {
                if n != stripes.len() as u64 {
                    return Err(c.err(
                        "stripe_count",
                        format!("stripe_count = {n} with {} stripes", stripes.len()),
                        "as many stripes as stripe_count says",
                    ));
                }
            }
            SegmentKind::Striped {
                stripe_size: c.opt_uint("stripe_size")?.map(Sectors),
                stripes,
            }
        }
        "thin-pool" => SegmentKind::ThinPool {
            metadata_lv: c.string("metadata")?,
            data_lv: c.string("pool")?,
            transaction_id: c.uint("transaction_id")?,
            chunk_size_sectors: Sectors(c.uint("chunk_size")?),
            discards: c.opt_string("discards")?,
            zero_new_blocks: c.opt_uint("zero_new_blocks")?.unwrap_or(0) != 0,
        },
        "thin" => SegmentKind::Thin {
            thin_pool: c.string("thin_pool")?,
            transaction_id: c.uint("transaction_id")?,
            device_id: c.uint("device_id")?,
            origin: c.opt_string("origin")?,
        },
        _ => SegmentKind::Other { segment_type },
    };
    Ok(Segment {
        start_extent: c.uint("start_extent")?,
        extent_count: Extents::new(c.uint("extent_count")?),
        kind,
    })
}

fn describe(v: Option<Value<'_>>) -> String {
    match v {
        None => "nothing".into(),
        Some(Value::Str(s)) => format!("{s:?}"),
        Some(Value::Int(i)) => i.to_string(),
        Some(Value::Float(f)) => f.to_string(),
        Some(Value::Array(a)) => format!("an array of {} elements", a.len()),
    }
}

/// [`describe`] for an array element.
fn describe_scalar(v: &Scalar<'_>) -> String {
    match v {
        Scalar::Str(s) => format!("{s:?}"),
        Scalar::Int(i) => i.to_string(),
        Scalar::Float(f) => f.to_string(),
    }
}

/// A section and the way to it, for error messages. The path is spelled out only
/// when an error needs it: building it for every volume cost more than reading one.
struct Ctx<'t, 'p> {
    key: &'t str,
    parent: Option<&'p Ctx<'t, 'p>>,
    s: Section<'t>,
}

impl<'t, 'p> Ctx<'t, 'p> {
    fn root(key: &'t str, s: Section<'t>) -> Self {
        Ctx {
            key,
            parent: None,
            s,
        }
    }

    fn child<'q>(&'q self, key: &'t str, s: Section<'t>) -> Ctx<'t, 'q> {
        Ctx {
            key,
            parent: Some(self),
            s,
        }
    }

    fn path(&self) -> String {
        match self.parent {
            None => self.key.to_owned(),
            Some(parent) => parent.join(self.key),
        }
    }

    fn join(&self, key: &str) -> String {
        let path = self.path();
        match (path.is_empty(), key.is_empty()) {
            (true, _) => key.to_owned(),
            (false, true) => path,
            (false, false) => format!("{path}/{key}"),
        }
    }

    fn err(&self, key: &str, found: String, expected: &str) -> LvmReadError {
        let path = self.join(key);
        LvmReadError::Metadata {
            mda_offset: 0,
            path: if path.is_empty() {
                "top level".into()
            } else {
                path
            },
            found,
            expected: expected.to_owned(),
        }
    }

    /// The value entry `key`; `Err` names a section where a value belongs.
    fn opt_value(&self, key: &str, expected: &str) -> Result<Option<Value<'t>>, LvmReadError> {
        match self.s.get(key) {
            None => Ok(None),
            Some(Node::Value(v)) => Ok(Some(v)),
            Some(Node::Section(_)) => Err(self.err(key, "a section { ... }".into(), expected)),
        }
    }

    fn opt_section(&self, key: &'t str) -> Result<Option<Ctx<'t, '_>>, LvmReadError> {
        match self.s.get(key) {
            None => Ok(None),
            Some(Node::Section(s)) => Ok(Some(self.child(key, s))),
            Some(Node::Value(_)) => Err(self.err(key, "a value".into(), "a section { ... }")),
        }
    }

    fn opt_string(&self, key: &str) -> Result<Option<String>, LvmReadError> {
        const EXPECTED: &str = "a quoted string";
        match self.opt_value(key, EXPECTED)? {
            None => Ok(None),
            Some(Value::Str(s)) => Ok(Some(s.to_owned())),
            other => Err(self.err(key, describe(other), EXPECTED)),
        }
    }

    fn string(&self, key: &str) -> Result<String, LvmReadError> {
        self.opt_string(key)?
            .ok_or_else(|| self.err(key, "nothing".into(), "a quoted string"))
    }

    /// An id (`id = "..."`): LVM's dashed form, or any form LVM itself reads.
    fn uuid(&self, key: &str) -> Result<LvmUuid, LvmReadError> {
        const EXPECTED: &str = "a quoted string";
        let text = match self.opt_value(key, EXPECTED)? {
            Some(Value::Str(s)) => s,
            None => return Err(self.err(key, "nothing".into(), EXPECTED)),
            other => return Err(self.err(key, describe(other), EXPECTED)),
        };
        LvmUuid::parse(text).map_err(|e| {
            self.err(
                key,
                e.to_string(),
                "an LVM uuid: 32 characters from 0-9 a-z A-Z ! #, dashed 6-4-4-4-4-4-6",
            )
        })
    }

    fn opt_uint(&self, key: &str) -> Result<Option<u64>, LvmReadError> {
        const EXPECTED: &str = "a non-negative integer";
        match self.opt_value(key, EXPECTED)? {
            None => Ok(None),
            Some(Value::Int(i)) if i >= 0 => Ok(Some(i as u64)),
            other => Err(self.err(key, describe(other), EXPECTED)),
        }
    }

    fn uint(&self, key: &str) -> Result<u64, LvmReadError> {
        self.opt_uint(key)?
            .ok_or_else(|| self.err(key, "nothing".into(), "a non-negative integer"))
    }

    /// An extent size: zero or wider than LVM's 32 bits is damaged metadata, and
    /// every size computed from it would be wrong.
    fn extent_size(&self, key: &str) -> Result<ExtentSize, LvmReadError> {
        let sectors = self.uint(key)?;
        ExtentSize::from_sectors(Sectors(sectors)).ok_or_else(|| {
            self.err(
                key,
                format!("{sectors} sectors"),
                &format!("1 to {} sectors", ExtentSize::MAX_SECTORS),
            )
        })
    }

    fn opt_array(&self, key: &str) -> Result<Option<&'t [Scalar<'t>]>, LvmReadError> {
        const EXPECTED: &str = "an array [ ... ]";
        match self.opt_value(key, EXPECTED)? {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            other => Err(self.err(key, describe(other), EXPECTED)),
        }
    }

    fn array(&self, key: &str) -> Result<&'t [Scalar<'t>], LvmReadError> {
        self.opt_array(key)?
            .ok_or_else(|| self.err(key, "nothing".into(), "an array [ ... ]"))
    }

    fn opt_words(&self, key: &str) -> Result<Vec<String>, LvmReadError> {
        match self.opt_array(key)? {
            None => Ok(Vec::new()),
            Some(items) => self.strings(key, items),
        }
    }

    fn words(&self, key: &str) -> Result<Vec<String>, LvmReadError> {
        self.strings(key, self.array(key)?)
    }

    fn strings(&self, key: &str, items: &[Scalar<'_>]) -> Result<Vec<String>, LvmReadError> {
        let mut words = Vec::with_capacity(items.len());
        for v in items {
            match v {
                Scalar::Str(s) => words.push(s.as_ref().to_owned()),
                other => {
                    return Err(self.err(key, describe_scalar(other), "an array of quoted strings"))
                }
            }
        }
        Ok(words)
    }
}
