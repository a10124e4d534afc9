//! LVM2's metadata checksum.
//!
//! LVM uses the reflected CRC-32 polynomial (0xEDB88320) with its own initial
//! value and *no* final inversion, so the result differs from zlib's crc32.
//! Because there is no finalisation step, a checksum over a buffer split in two
//! (the wrapped metadata text) is the first part's result fed as the initial
//! value of the second.

/// The initial value LVM uses for every checksum it stores on disk.
pub const INITIAL_CRC: u32 = 0xf597_a6cf;

/// LVM's checksum as a CRC catalogue entry: the reflected CRC-32 polynomial, LVM's
/// initial value (reflected, as the `crc` crate expects a reflected algorithm's
/// `init`), no final inversion.
const LVM_CRC32: crc::Algorithm<u32> = crc::Algorithm {
    width: 32,
    poly: 0x04c1_1db7,
    init: INITIAL_CRC.reverse_bits(),
    refin: true,
    refout: true,
    xorout: 0,
    check: 0x4991_cf02,
    residue: 0,
};

/// Slicing by 16 bytes: a node's metadata text is megabytes at 10,000 volumes and
/// is checked on every start; byte at a time it cost as much as parsing it.
static LVM_CRC: crc::Crc<u32, crc::Table<16>> = crc::Crc::<u32, crc::Table<16>>::new(&LVM_CRC32);

/// Continues an LVM checksum from `crc` over `data`.
pub fn calc_crc(crc: u32, data: &[u8]) -> u32 {
    // The crate reflects the initial value it is given; reflecting it first hands it
    // `crc` as the register's value, which is how LVM chains a checksum.
    let mut digest = LVM_CRC.digest_with_initial(crc.reverse_bits());
    digest.update(data);
    digest.finalize()
}

/// The LVM checksum of `data`, starting from [`INITIAL_CRC`].
pub fn lvm_crc(data: &[u8]) -> u32 {
    calc_crc(INITIAL_CRC, data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Bitwise reference implementation, one bit at a time.
    fn slow(mut crc: u32, data: &[u8]) -> u32 {
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        crc
    }

    #[test]
    fn catalogue_check_value_is_lvms() {
        assert_eq!(LVM_CRC.checksum(b"123456789"), LVM_CRC32.check);
        assert_eq!(lvm_crc(b"123456789"), LVM_CRC32.check);
        assert_eq!(slow(INITIAL_CRC, b"123456789"), LVM_CRC32.check);
    }

    #[test]
    fn empty_input_keeps_initial_value() {
        assert_eq!(lvm_crc(&[]), INITIAL_CRC);
    }

    #[test]
    fn matches_zlib_crc32_when_seeded_like_zlib() {
        // zlib's crc32 = !calc(!0, data); "123456789" -> 0xCBF43926.
        assert_eq!(!calc_crc(!0, b"123456789"), 0xcbf4_3926);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn table_matches_bitwise(data in proptest::collection::vec(any::<u8>(), 0..600), seed in any::<u32>()) {
            prop_assert_eq!(calc_crc(seed, &data), slow(seed, &data));
        }

        #[test]
        fn split_chains(data in proptest::collection::vec(any::<u8>(), 0..600), cut in any::<usize>()) {
            let cut = if data.is_empty() { 0 } else { cut % data.len() };
            let (a, b) = data.split_at(cut);
            prop_assert_eq!(calc_crc(lvm_crc(a), b), lvm_crc(&data));
        }
    }
}
