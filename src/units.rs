//! Storage units as types, so a sector count can't pass for a byte count and
//! arithmetic on numbers read from disk can't wrap.
//!
//! [`Sectors`] (512-byte units, `u64`) and [`Bytes`] (`u128`) come from the
//! devicemapper crate: `Sectors::bytes` cannot overflow (`Bytes::sectors` wraps
//! past 2^64 sectors; this crate does not use it). A byte count is 128 bits wide,
//! but a size a block device, LV or metadata area can have fits 64 bits
//! ([`DeviceRange`]). [`Extents`] counts LVM extents and [`ExtentSize`] is the non-zero size of
//! one, checked when the VG metadata is read. Conversions go through named methods;
//! every method that can overflow returns `Option`. (The devicemapper types also
//! implement unchecked `+ - *`; this crate uses the checked methods here instead.)
use serde::{Serialize, Serializer};
use std::fmt;

pub use devicemapper::{Bytes, Sectors, SECTOR_SIZE};

/// Checked subtraction for the devicemapper units, which only bring `checked_add`.
pub trait CheckedSub: Sized {
    /// `self - other`, `None` below zero.
    fn checked_sub(self, other: Self) -> Option<Self>;
}

impl CheckedSub for Bytes {
    fn checked_sub(self, other: Bytes) -> Option<Bytes> {
        self.0.checked_sub(other.0).map(Bytes)
    }
}

impl CheckedSub for Sectors {
    fn checked_sub(self, other: Sectors) -> Option<Sectors> {
        self.0.checked_sub(other.0).map(Sectors)
    }
}

/// The largest size a block device can have: the kernel reports sizes as 64-bit
/// byte counts (`BLKGETSIZE64`), so no device, LV or metadata area is larger.
pub const MAX_DEVICE_BYTES: Bytes = Bytes(u64::MAX as u128);

/// A byte count checked against [`MAX_DEVICE_BYTES`]: sizes read from disk or
/// planned past it are impossible numbers, not sizes to act on.
pub trait DeviceRange: Sized {
    /// `self`, or `None` past 2^64 - 1 bytes.
    fn within_device_range(self) -> Option<Self>;
}

impl DeviceRange for Bytes {
    fn within_device_range(self) -> Option<Bytes> {
        (self <= MAX_DEVICE_BYTES).then_some(self)
    }
}

/// Whole binary multiples of a byte count, rounded down: how LVM arguments and
/// messages state sizes.
pub trait WholeBinaryUnits {
    fn whole_kib(self) -> u128;
    fn whole_mib(self) -> u128;
}

impl WholeBinaryUnits for Bytes {
    fn whole_kib(self) -> u128 {
        self.0 >> 10
    }

    fn whole_mib(self) -> u128 {
        self.0 >> 20
    }
}

/// A number of LVM extents (a count; extent indices stay plain numbers).
/// Serialises as the bare number.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Extents(u64);

impl Extents {
    pub const ZERO: Extents = Extents(0);

    pub const fn new(count: u64) -> Extents {
        Extents(count)
    }

    pub const fn count(self) -> u64 {
        self.0
    }

    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    pub fn checked_add(self, other: Extents) -> Option<Extents> {
        self.0.checked_add(other.0).map(Extents)
    }

    pub fn checked_sub(self, other: Extents) -> Option<Extents> {
        self.0.checked_sub(other.0).map(Extents)
    }

    /// `self - other`, or none left: for budgets that may be used up on purpose.
    pub fn saturating_sub(self, other: Extents) -> Extents {
        Extents(self.0.saturating_sub(other.0))
    }

    /// `factor` times as many extents.
    pub fn checked_times(self, factor: u64) -> Option<Extents> {
        self.0.checked_mul(factor).map(Extents)
    }

    /// An equal share among `parts` (rounded down); `None` for no parts.
    pub fn checked_share(self, parts: u64) -> Option<Extents> {
        self.0.checked_div(parts).map(Extents)
    }

    /// The bytes these extents span.
    pub fn checked_mul(self, size: ExtentSize) -> Option<Bytes> {
        u128::from(self.0).checked_mul(size.bytes().0).map(Bytes)
    }
}

impl fmt::Display for Extents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} extents", self.0)
    }
}

/// The size of one LVM extent: more than zero and at most `u32::MAX` sectors (LVM
/// keeps it in 32 bits). Serialises as its sector count, the way LVM writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ExtentSize(Sectors);

impl ExtentSize {
    /// LVM's default extent size (`allocation/physical_extent_size`, 4 MiB).
    pub const DEFAULT: ExtentSize = ExtentSize(Sectors(8192));
    /// LVM's bound: `extent_size` is a 32-bit sector count.
    pub const MAX_SECTORS: u64 = u32::MAX as u64;

    /// `None` for zero or more than [`Self::MAX_SECTORS`].
    pub fn from_sectors(sectors: Sectors) -> Option<ExtentSize> {
        (1..=Self::MAX_SECTORS)
            .contains(&sectors.0)
            .then_some(ExtentSize(sectors))
    }

    pub fn sectors(self) -> Sectors {
        self.0
    }

    pub fn bytes(self) -> Bytes {
        self.0.bytes()
    }

    /// Whole extents that fit in `bytes` (rounded down); `None` past 2^64 extents.
    pub fn extents_in(self, bytes: Bytes) -> Option<Extents> {
        u64::try_from(bytes.0 / self.bytes().0).ok().map(Extents)
    }

    /// Extents needed to hold `bytes` (rounded up); `None` past 2^64 extents.
    pub fn extents_covering(self, bytes: Bytes) -> Option<Extents> {
        u64::try_from(bytes.0.div_ceil(self.bytes().0))
            .ok()
            .map(Extents)
    }

    /// Serialises the size in bytes (for fields named `..._bytes`).
    pub fn serialize_as_bytes<S: Serializer>(
        size: &ExtentSize,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        size.bytes().serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(sectors: u64) -> ExtentSize {
        match ExtentSize::from_sectors(Sectors(sectors)) {
            Some(size) => size,
            None => panic!("{sectors} sectors rejected"),
        }
    }

    #[test]
    fn extent_sizes_are_never_zero_nor_wider_than_lvm_keeps_them() {
        assert_eq!(ExtentSize::from_sectors(Sectors(0)), None);
        assert_eq!(ExtentSize::from_sectors(Sectors(1 << 32)), None);
        assert_eq!(size(8192).bytes(), Bytes(4 << 20));
        assert_eq!(size(u32::MAX.into()).sectors(), Sectors(u32::MAX.into()));
    }

    #[test]
    fn extents_and_bytes_convert_by_name() {
        let four_mib = size(8192);
        assert_eq!(
            four_mib.extents_in(Bytes((8 << 20) - 1)),
            Some(Extents::new(1))
        );
        assert_eq!(
            four_mib.extents_covering(Bytes((8 << 20) + 1)),
            Some(Extents::new(3))
        );
        assert_eq!(four_mib.extents_covering(Bytes(0)), Some(Extents::ZERO));
        assert_eq!(Extents::new(3).checked_mul(four_mib), Some(Bytes(12 << 20)));
        // One-sector extents over the largest byte count: more than 2^64 extents.
        assert_eq!(size(1).extents_covering(Bytes(u128::MAX)), None);
        assert_eq!(size(1).extents_in(Bytes(u128::MAX)), None);
    }

    #[test]
    fn overflow_is_none_never_a_wrapped_number() {
        let most = Extents::new(u64::MAX);
        assert_eq!(most.checked_add(Extents::new(1)), None);
        assert_eq!(Extents::ZERO.checked_sub(Extents::new(1)), None);
        assert_eq!(most.checked_times(2), None);
        assert_eq!(most.checked_share(0), None);
        assert_eq!(Extents::new(7).checked_share(2), Some(Extents::new(3)));
        assert_eq!(Extents::new(1).saturating_sub(most), Extents::ZERO);
        assert_eq!(
            most.checked_mul(size(u32::MAX.into())),
            Some(Bytes(u128::from(u64::MAX) * u128::from(u32::MAX) * 512))
        );
        assert_eq!(Bytes(1).checked_sub(Bytes(2)), None);
        assert_eq!(Sectors(1).checked_sub(Sectors(2)), None);
    }

    #[test]
    fn whole_binary_units_round_down() {
        assert_eq!(Bytes((512 << 10) + 1023).whole_kib(), 512);
        assert_eq!(Bytes((3 << 20) - 1).whole_mib(), 2);
    }

    #[test]
    fn units_serialise_as_bare_numbers() {
        let json = serde_json::to_string(&(Extents::new(5), size(8192), Bytes(1 << 40)));
        assert_eq!(json.ok().as_deref(), Some("[5,8192,1099511627776]"));
    }
}
