//! Crash states of a recorded run (the way CrashMonkey and xfstests' `replay-log`
//! build them): what a disk with a volatile write cache may hold after a power loss
//! at any instant of the run.
//!
//! The log is cut into flush epochs: the writes between two cache flushes. After a
//! flush every earlier write is durable; between flushes the cache may have written
//! back any subset of the writes, in any order, except that a FUA write is durable
//! once it completed. So a crash state is: every write of the earlier epochs, plus a
//! subset S of the current epoch's writes such that every FUA write issued before the
//! last write of S is in S. Writes in S are applied in log order (a later write to a
//! sector wins), discards read back as zeros.
//!
//! Per epoch: every prefix (a crash with everything issued so far written back), the
//! "header written, text not" states (an LVM metadata-area header kept while the
//! metadata text it points to was dropped), then every subset while the epoch has at
//! most [`Exploration::exhaustive_up_to`] writes, else each "all but one" state and a
//! seeded random sample. States are deduplicated by the content they leave (a digest
//! of the resulting sector map), so the count is of distinct disk contents.

use std::collections::{BTreeMap, HashSet};
use std::ops::Range;

use sha2::{Digest, Sha256};

use crate::write_log::{LogEntry, WriteLog};

/// LVM's metadata-area header magic (`FMTT_MAGIC`, bytes 4..20 of the header sector).
pub const MDA_HEADER_MAGIC: &[u8; 16] =
    b"\x20\x4c\x56\x4d\x32\x20\x78\x5b\x35\x41\x25\x72\x30\x4e\x2a\x3e";

/// Sectors after a metadata-area header where LVM's metadata text may lie (the
/// default area is 1 MiB, the text buffer follows the header's sector).
const MDA_TEXT_SECTORS: u64 = 2048;

/// How a state was chosen (the first reason wins when two coincide).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StateKind {
    /// The first N writes of the epoch.
    Prefix,
    /// A metadata-area header write kept, the text write before it dropped.
    HeaderWithoutText,
    /// Any subset of a small epoch.
    Subset,
    /// All writes of a large epoch but one.
    AllButOne,
    /// A seeded random subset of a large epoch.
    Sampled,
}

impl StateKind {
    pub fn name(self) -> &'static str {
        match self {
            StateKind::Prefix => "prefix",
            StateKind::HeaderWithoutText => "header-without-text",
            StateKind::Subset => "subset",
            StateKind::AllButOne => "all-but-one",
            StateKind::Sampled => "sampled",
        }
    }
}

/// One crash state: the log entries (indices into the log, ascending) whose
/// writes reached the disk on top of the run's starting image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrashState {
    pub kind: StateKind,
    /// Index of the epoch the crash happened in (0 = before the first flush).
    pub epoch: usize,
    pub entries: Vec<usize>,
    /// SHA-256 of the sector map the entries leave (sector number and content).
    pub digest: [u8; 32],
}

/// Parameters of an exploration.
#[derive(Debug, Clone, Copy)]
pub struct Exploration {
    pub seed: u64,
    /// Epochs with at most this many writes get every subset (2^n states).
    pub exhaustive_up_to: usize,
    /// Random subsets drawn per larger epoch (before deduplication).
    pub sampled_per_epoch: usize,
}

impl Default for Exploration {
    fn default() -> Exploration {
        Exploration {
            seed: 19,
            exhaustive_up_to: 10,
            sampled_per_epoch: 200,
        }
    }
}

/// The flush epochs among `window`'s entries: each the indices of its
/// content-changing entries. A flush entry ends an epoch; a write carrying the
/// flush flag (a pre-flush) starts the next one.
pub fn epochs(log: &WriteLog, window: Range<usize>) -> Vec<Vec<usize>> {
    let mut all = vec![Vec::new()];
    for i in window {
        let entry = &log.entries[i];
        if entry.is_flush() {
            all.push(Vec::new());
        }
        if entry.changes_content() {
            if let Some(current) = all.last_mut() {
                current.push(i);
            }
        }
    }
    all.retain(|e| !e.is_empty());
    all
}

/// Whether `entry` writes an LVM metadata-area header sector; the sector it is at.
fn mda_header_sector(entry: &LogEntry, sector_size: u32) -> Option<u64> {
    if entry.is_discard() {
        return None;
    }
    let ss = sector_size as usize;
    entry
        .data
        .chunks(ss)
        .position(|s| s.len() >= 20 && &s[4..20] == MDA_HEADER_MAGIC)
        .map(|i| entry.sector + i as u64)
}

/// splitmix64: a seeded generator that gives the same sequence on every machine.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// Whether a subset (positions into `epoch`, ascending) is a state a cache can
/// leave: every FUA write issued before its last write is in it.
fn respects_fua(log: &WriteLog, epoch: &[usize], chosen: &[usize]) -> bool {
    let Some(&last) = chosen.last() else {
        return true;
    };
    (0..last).all(|p| !log.entries[epoch[p]].is_fua() || chosen.contains(&p))
}

/// Digest of the sector map the entries leave, from per-sector digests.
struct Digester<'a> {
    log: &'a WriteLog,
    /// Per entry, per sector: a digest of that sector's content.
    sector_digests: Vec<Vec<[u8; 16]>>,
}

impl<'a> Digester<'a> {
    fn new(log: &'a WriteLog, window: Range<usize>) -> Digester<'a> {
        let ss = log.sector_size as usize;
        let zero = {
            let mut d = [0u8; 16];
            d.copy_from_slice(&Sha256::digest(vec![0u8; ss])[..16]);
            d
        };
        let sector_digests = log
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| {
                if !window.contains(&i) || !e.changes_content() {
                    Vec::new()
                } else if e.is_discard() {
                    vec![zero; e.nr_sectors as usize]
                } else {
                    e.data
                        .chunks(ss)
                        .map(|s| {
                            let mut d = [0u8; 16];
                            d.copy_from_slice(&Sha256::digest(s)[..16]);
                            d
                        })
                        .collect()
                }
            })
            .collect();
        Digester {
            log,
            sector_digests,
        }
    }

    fn digest(&self, entries: &[usize]) -> [u8; 32] {
        let mut map: BTreeMap<u64, [u8; 16]> = BTreeMap::new();
        for &i in entries {
            let first = self.log.entries[i].sector;
            for (k, d) in self.sector_digests[i].iter().enumerate() {
                map.insert(first + k as u64, *d);
            }
        }
        let mut h = Sha256::new();
        for (sector, d) in map {
            h.update(sector.to_le_bytes());
            h.update(d);
        }
        h.finalize().into()
    }
}

/// Every distinct crash state of the entries in `window` (the earlier entries are
/// part of the starting image), in a fixed order for a given log and parameters.
pub fn crash_states(log: &WriteLog, window: Range<usize>, params: Exploration) -> Vec<CrashState> {
    let digester = Digester::new(log, window.clone());
    let mut rng = Rng::new(params.seed);
    let mut seen = HashSet::new();
    let mut states = Vec::new();
    let mut durable: Vec<usize> = Vec::new();
    let mut push = |kind: StateKind, epoch: usize, durable: &[usize], chosen: Vec<usize>| {
        let mut entries = durable.to_vec();
        entries.extend(chosen);
        let digest = digester.digest(&entries);
        if seen.insert(digest) {
            states.push(CrashState {
                kind,
                epoch,
                entries,
                digest,
            });
        }
    };
    let all_epochs = epochs(log, window.clone());
    if all_epochs.is_empty() {
        push(StateKind::Prefix, 0, &[], Vec::new());
    }
    for (k, epoch) in all_epochs.iter().enumerate() {
        let n = epoch.len();
        let pick = |positions: &[usize]| positions.iter().map(|&p| epoch[p]).collect::<Vec<_>>();
        for p in 0..=n {
            let positions: Vec<usize> = (0..p).collect();
            push(StateKind::Prefix, k, &durable, pick(&positions));
        }
        for (h, &entry) in epoch.iter().enumerate() {
            let Some(header) = mda_header_sector(&log.entries[entry], log.sector_size) else {
                continue;
            };
            // LVM writes whole bcache blocks: the text's write may start before the
            // header's sector (and carry the old header); it overlaps the text area.
            let text = (0..h).rev().find(|&t| {
                let e = &log.entries[epoch[t]];
                e.sector <= header + MDA_TEXT_SECTORS && e.sector + e.nr_sectors > header + 1
            });
            if let Some(t) = text {
                let positions: Vec<usize> = (0..=h).filter(|&p| p != t).collect();
                if respects_fua(log, epoch, &positions) {
                    push(StateKind::HeaderWithoutText, k, &durable, pick(&positions));
                }
            }
        }
        if n <= params.exhaustive_up_to {
            for mask in 0u32..(1u32 << n) {
                let positions: Vec<usize> = (0..n).filter(|p| mask & (1 << p) != 0).collect();
                if respects_fua(log, epoch, &positions) {
                    push(StateKind::Subset, k, &durable, pick(&positions));
                }
            }
        } else {
            for drop in 0..n {
                let positions: Vec<usize> = (0..n).filter(|&p| p != drop).collect();
                if respects_fua(log, epoch, &positions) {
                    push(StateKind::AllButOne, k, &durable, pick(&positions));
                }
            }
            for _ in 0..params.sampled_per_epoch {
                let crash_after = rng.below(n);
                let positions: Vec<usize> = (0..=crash_after)
                    .filter(|&p| {
                        p == crash_after
                            || log.entries[epoch[p]].is_fua()
                            || rng.next_u64() & 1 == 1
                    })
                    .collect();
                push(StateKind::Sampled, k, &durable, pick(&positions));
            }
        }
        durable.extend_from_slice(epoch);
    }
    states
}

/// A fixed seeded selection of at most `limit` states: the "header written, text
/// not" states first, the last metadata commit's first (a run's final commit is the
/// one a power cut right after the tool exits tears), then the rest in a seeded
/// shuffle. Returns indices into `states`, ascending.
pub fn sample(states: &[CrashState], limit: usize, seed: u64) -> Vec<usize> {
    if states.len() <= limit {
        return (0..states.len()).collect();
    }
    let mut chosen: Vec<usize> = (0..states.len())
        .rev()
        .filter(|&i| states[i].kind == StateKind::HeaderWithoutText)
        .take(limit)
        .collect();
    let mut rest: Vec<usize> = (0..states.len())
        .filter(|&i| states[i].kind != StateKind::HeaderWithoutText)
        .collect();
    let mut rng = Rng::new(seed ^ 0x5eed);
    for i in (1..rest.len()).rev() {
        let j = rng.below(i + 1);
        rest.swap(i, j);
    }
    chosen.extend(rest.into_iter().take(limit.saturating_sub(chosen.len())));
    chosen.sort_unstable();
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::write_log::{parse, FLAG_FLUSH, FLAG_FUA};

    fn sector(fill: u8) -> Vec<u8> {
        vec![fill; 512]
    }

    fn log_of(entries: &[(u64, u64, Vec<u8>)]) -> WriteLog {
        parse(&crate::write_log::tests::build(entries, 1)).expect("valid log")
    }

    fn all(log: &WriteLog) -> Range<usize> {
        0..log.entries.len()
    }

    #[test]
    fn a_small_epoch_gives_every_subset_and_flushed_writes_stay() {
        let log = log_of(&[
            (1, 0, sector(1)),
            (2, 0, sector(2)),
            (0, FLAG_FLUSH, Vec::new()),
            (3, 0, sector(3)),
            (4, 0, sector(4)),
        ]);
        let states = crash_states(&log, all(&log), Exploration::default());
        // Epoch 0: 4 subsets; epoch 1: 4 subsets, its empty one equal to epoch 0's
        // full one.
        assert_eq!(states.len(), 7);
        for s in states.iter().filter(|s| s.epoch == 1) {
            assert!(s.entries.starts_with(&[0, 1]), "{s:?}");
        }
    }

    #[test]
    fn a_fua_write_is_never_lost_once_a_later_write_landed() {
        let log = log_of(&[
            (1, 0, sector(1)),
            (2, FLAG_FUA, sector(2)),
            (3, 0, sector(3)),
        ]);
        let states = crash_states(&log, all(&log), Exploration::default());
        for s in &states {
            if s.entries.contains(&2) {
                assert!(s.entries.contains(&1), "FUA write dropped: {s:?}");
            }
        }
        // {}, {0}, {1}, {0,1}, {1,2}, {0,1,2}
        assert_eq!(states.len(), 6);
    }

    #[test]
    fn states_are_distinct_by_content() {
        // Two writes of the same bytes to the same sector: {0} and {1} are one state.
        let log = log_of(&[(1, 0, sector(9)), (1, 0, sector(9))]);
        let states = crash_states(&log, all(&log), Exploration::default());
        assert_eq!(states.len(), 2);
    }

    #[test]
    fn a_header_kept_with_its_text_dropped_is_always_a_state() {
        let mut header = sector(0);
        header[4..20].copy_from_slice(MDA_HEADER_MAGIC);
        let mut entries: Vec<(u64, u64, Vec<u8>)> =
            (0..12).map(|i| (100 + i, 0, sector(i as u8 + 1))).collect();
        entries.push((10, 0, sector(0x77))); // the text, after the header's sector
        entries.push((9, 0, header));
        let log = log_of(&entries);
        let params = Exploration {
            sampled_per_epoch: 3,
            ..Exploration::default()
        };
        let states = crash_states(&log, all(&log), params);
        let torn = states
            .iter()
            .find(|s| s.kind == StateKind::HeaderWithoutText)
            .expect("a header-without-text state");
        assert!(torn.entries.contains(&13) && !torn.entries.contains(&12));
        assert_eq!(torn.entries.len(), 13);
        // Large epoch: prefixes, all-but-one and samples, no 2^14 enumeration.
        assert!(states.len() < 15 + 14 + 3 + 1);
        assert!(sample(&states, 4, 1).contains(
            &states
                .iter()
                .position(|s| s.kind == StateKind::HeaderWithoutText)
                .expect("present")
        ));
    }

    #[test]
    fn the_same_seed_gives_the_same_states() {
        let entries: Vec<(u64, u64, Vec<u8>)> =
            (0..20).map(|i| (i, 0, sector(i as u8 + 1))).collect();
        let log = log_of(&entries);
        let a = crash_states(&log, all(&log), Exploration::default());
        let b = crash_states(&log, all(&log), Exploration::default());
        assert_eq!(a, b);
        let other = Exploration {
            seed: 7,
            ..Exploration::default()
        };
        assert_ne!(a, crash_states(&log, all(&log), other));
        assert_eq!(sample(&a, 10, 3), sample(&a, 10, 3));
        assert_eq!(sample(&a, 10, 3).len(), 10);
    }
}
