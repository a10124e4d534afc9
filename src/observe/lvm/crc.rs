//! LVM2's metadata checksum.
//!
//! LVM uses the reflected CRC-32 polynomial (0xEDB88320) with its own initial
//! value and *no* final inversion, so the result differs from zlib's crc32.
//! Because there is no finalisation step, a checksum over a buffer split in two
//! (the wrapped metadata text) is the first part's result fed as the initial
//! value of the second.

/// The initial value LVM uses for every checksum it stores on disk.
pub const INITIAL_CRC: u32 = 0xf597_a6cf;

const TABLE: [u32; 256] = build_table();

const fn build_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut bit = 0;
        while bit < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xedb8_8320
            } else {
                c >> 1
            };
            bit += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

/// Continues an LVM checksum from `crc` over `data`.
pub fn calc_crc(crc: u32, data: &[u8]) -> u32 {
    data.iter()
        .fold(crc, |c, &b| (c >> 8) ^ TABLE[usize::from((c as u8) ^ b)])
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
