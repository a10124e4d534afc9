//! Bounded-time fuzzing on stable Rust (cargo-fuzz needs nightly): one loop per
//! parser that reads something a hostile or broken machine controls. Each loop
//! starts from a committed seed corpus of real LVM / kernel / udev output
//! (tests/fuzz-corpus/<target>/, see its README), mutates it for a fixed time,
//! and keeps every mutant that produced a new *outcome* (a new error kind, a new
//! shape of result) as a further seed — output feedback in place of the edge
//! coverage a nightly fuzzer would use. Every input must:
//!
//! - return (a `Result`, whatever it says) — a panic fails the test;
//! - return within [`PER_INPUT_TIMEOUT`] — a watchdog aborts the test binary on a
//!   hang after saving the input;
//! - allocate a bounded amount — a counting global allocator measures each
//!   input's peak and aborts on any single request over [`HARD_CAP`] (a hostile
//!   size field taken at its word).
//!
//! Failing inputs are saved under `target/fuzz-failures/<target>/`. Knobs:
//! `FUZZ_SECONDS` (per target, default 6), `FUZZ_SEED` (default: from the clock,
//! printed).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Cursor;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use linstor_provision_disk::observe::lvm::{self, mda, parse_pv_on_disk};

mod lvm_images;
use linstor_provision_disk::observe::partition::parsers::{
    decode_udev_escapes, parse_udev_db, parse_uevent,
};
use linstor_provision_disk::observe::partition::SysfsBackend;
use linstor_provision_disk::satellite_id::{decode_tag, encode_tag, TAG_PREFIX};
use lvm_images::{fix_checksums, load_image, FIXTURES};

// ---------------------------------------------------------------------------
// Allocation accounting

/// No single allocation may ask for more than this while an input is parsed.
const HARD_CAP: usize = 256 << 20;
/// An input taking longer than this (debug build, loaded CI machine) is a hang.
const PER_INPUT_TIMEOUT: Duration = Duration::from_secs(5);

struct Counting;

thread_local! {
    static LIVE: Cell<i64> = const { Cell::new(0) };
    static PEAK: Cell<i64> = const { Cell::new(0) };
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static CURRENT: Cell<(*const u8, usize)> = const { Cell::new((std::ptr::null(), 0)) };
    static TARGET: Cell<&'static str> = const { Cell::new("") };
}

fn account(delta: i64, request: usize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
    if request > HARD_CAP && ARMED.try_with(Cell::get).unwrap_or(false) {
        oversized(request);
    }
}

/// A parser asked for more than HARD_CAP: save the input, then abort (an
/// allocator cannot unwind).
#[cold]
fn oversized(request: usize) -> ! {
    let _ = ARMED.try_with(|a| a.set(false));
    let (ptr, len) = CURRENT.try_with(Cell::get).unwrap_or((std::ptr::null(), 0));
    let target = TARGET.try_with(Cell::get).unwrap_or("unknown");
    let input = if ptr.is_null() {
        Vec::new()
    } else {
        // SAFETY: CURRENT points at the input being parsed by this very thread,
        // which is blocked inside this allocation call.
        unsafe { std::slice::from_raw_parts(ptr, len) }.to_vec()
    };
    let saved = save_failure(target, &input);
    eprintln!(
        "fuzz {target}: an input made the parser request {request} bytes at once (cap {HARD_CAP}); saved as {}",
        saved.display()
    );
    std::process::abort();
}

// SAFETY: forwards to the system allocator; the bookkeeping touches only
// const-initialised thread-locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        account(layout.size() as i64, layout.size());
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        account(layout.size() as i64, layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        account(-(layout.size() as i64), 0);
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        account(new_size as i64 - layout.size() as i64, new_size);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` on `input` and returns its result and the peak bytes it held.
fn measured<R>(target: &'static str, input: &[u8], f: impl FnOnce() -> R) -> (R, u64) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    TARGET.with(|t| t.set(target));
    CURRENT.with(|c| c.set((input.as_ptr(), input.len())));
    ARMED.with(|a| a.set(true));
    let result = f();
    ARMED.with(|a| a.set(false));
    CURRENT.with(|c| c.set((std::ptr::null(), 0)));
    let peak = PEAK.with(Cell::get) - base;
    (result, peak.max(0) as u64)
}

// ---------------------------------------------------------------------------
// Corpus, mutation, the loop

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn save_failure(target: &str, input: &[u8]) -> PathBuf {
    let dir = root().join("target/fuzz-failures").join(target);
    let _ = std::fs::create_dir_all(&dir);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in input {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    let path = dir.join(format!("{h:016x}"));
    let _ = std::fs::write(&path, input);
    path
}

/// The committed seeds of a target; an empty or missing folder fails the test.
fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = root().join("tests/fuzz-corpus").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("seed corpus {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "seed corpus {} is empty", dir.display());
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

/// xorshift64*: small, fast, reproducible from the printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const INTERESTING: [u64; 14] = [
    0,
    1,
    0x7f,
    0x80,
    0xff,
    511,
    512,
    4096,
    65536,
    u32::MAX as u64,
    1 << 31,
    1 << 63,
    u64::MAX,
    u64::MAX - 511,
];

/// One to four byte-level mutations, with tokens from the target's dictionary
/// and splices with other corpus entries.
fn mutate(rng: &mut Rng, input: &mut Vec<u8>, other: &[u8], dict: &[&[u8]]) {
    for _ in 0..1 + rng.below(4) {
        let len = input.len();
        match rng.below(10) {
            0 if len > 0 => {
                let at = rng.below(len);
                input[at] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let at = rng.below(len);
                input[at] = INTERESTING[rng.below(INTERESTING.len())] as u8;
            }
            2 if len >= 8 => {
                let width = if rng.below(2) == 0 { 4 } else { 8 };
                let mut at = rng.below(len - width + 1);
                if rng.below(2) == 0 {
                    at &= !(width - 1);
                }
                let mut v = INTERESTING[rng.below(INTERESTING.len())];
                if rng.below(4) == 0 {
                    v = rng.next();
                }
                input[at..at + width].copy_from_slice(&v.to_le_bytes()[..width]);
            }
            3 => {
                let at = rng.below(len + 1);
                let n = 1 + rng.below(16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                input.splice(at..at, bytes);
            }
            4 if len > 0 => {
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(64));
                input.drain(at..at + n);
            }
            5 if len > 0 => {
                let from = rng.below(len);
                let n = 1 + rng.below((len - from).min(256));
                let chunk = input[from..from + n].to_vec();
                let at = rng.below(len + 1);
                input.splice(at..at, chunk);
            }
            6 if !other.is_empty() => {
                let cut = rng.below(len + 1);
                let from = rng.below(other.len());
                input.truncate(cut);
                input.extend_from_slice(&other[from..]);
            }
            7 if len > 0 => input.truncate(rng.below(len)),
            8 | 9 if !dict.is_empty() => {
                let token = dict[rng.below(dict.len())];
                let at = rng.below(len + 1);
                if rng.below(2) == 0 {
                    input.splice(at..at, token.iter().copied());
                } else {
                    let end = (at + token.len()).min(len);
                    input.splice(at..end, token.iter().copied());
                }
            }
            _ => {
                let at = rng.below(len + 1);
                input.insert(at, rng.next() as u8);
            }
        }
    }
}

struct Target {
    name: &'static str,
    dict: &'static [&'static [u8]],
    /// Applied to each mutant before the run (e.g. recompute checksums).
    fix: fn(&mut Rng, &mut [u8]),
    /// Parses; returns the outcome's signature (what counts as "new behaviour").
    run: fn(&[u8]) -> String,
    /// Most bytes an input of this length may hold at its peak.
    alloc_bound: fn(usize) -> u64,
    max_len: usize,
}

struct Stats {
    executions: u64,
    corpus: usize,
    outcomes: usize,
    max_peak: u64,
}

fn fuzz(t: &Target) -> Stats {
    let seeds = corpus(t.name);
    let seconds: u64 = std::env::var("FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6);
    let seed: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        })
        | 1;
    eprintln!(
        "fuzz {}: {} seeds, {seconds} s, FUZZ_SEED={seed}",
        t.name,
        seeds.len()
    );

    // Watchdog: a run that outlasts PER_INPUT_TIMEOUT is saved and aborts the binary.
    let started_ms = Arc::new(AtomicU64::new(0));
    let current = Arc::new(Mutex::new(Vec::<u8>::new()));
    let done = Arc::new(AtomicBool::new(false));
    let epoch = Instant::now();
    let watchdog = {
        let (started_ms, current, done, name) =
            (started_ms.clone(), current.clone(), done.clone(), t.name);
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                let s = started_ms.load(Ordering::Relaxed);
                let now = epoch.elapsed().as_millis() as u64;
                if s != 0 && now.saturating_sub(s) > PER_INPUT_TIMEOUT.as_millis() as u64 {
                    let input = current.lock().map(|g| g.clone()).unwrap_or_default();
                    let saved = save_failure(name, &input);
                    eprintln!(
                        "fuzz {name}: an input ran longer than {PER_INPUT_TIMEOUT:?} (a hang); saved as {}",
                        saved.display()
                    );
                    std::process::abort();
                }
            }
        })
    };

    let mut rng = Rng(seed);
    let mut pool = seeds;
    let mut outcomes = BTreeSet::new();
    let mut max_peak = 0;
    let mut executions = 0u64;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut i = 0usize;
    while Instant::now() < deadline {
        // The seeds themselves go first, unmutated.
        let mut input = pool[i % pool.len()].clone();
        if i >= pool.len() {
            let other = pool[rng.below(pool.len())].clone();
            mutate(&mut rng, &mut input, &other, t.dict);
            input.truncate(t.max_len);
            (t.fix)(&mut rng, &mut input);
        }
        i += 1;
        if let Ok(mut g) = current.lock() {
            g.clone_from(&input);
        }
        started_ms.store(epoch.elapsed().as_millis().max(1) as u64, Ordering::Relaxed);
        let (result, peak) = measured(t.name, &input, || {
            catch_unwind(AssertUnwindSafe(|| (t.run)(&input)))
        });
        started_ms.store(0, Ordering::Relaxed);
        executions += 1;
        let signature = match result {
            Ok(sig) => sig,
            Err(panic) => {
                let saved = save_failure(t.name, &input);
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                done.store(true, Ordering::Relaxed);
                panic!(
                    "fuzz {}: the parser panicked ({msg}) on the input saved as {} (FUZZ_SEED={seed})",
                    t.name,
                    saved.display()
                );
            }
        };
        let bound = (t.alloc_bound)(input.len());
        if peak > bound {
            let saved = save_failure(t.name, &input);
            done.store(true, Ordering::Relaxed);
            panic!(
                "fuzz {}: a {}-byte input made the parser hold {peak} bytes (bound {bound}); saved as {}",
                t.name,
                input.len(),
                saved.display()
            );
        }
        max_peak = max_peak.max(peak);
        if outcomes.insert(signature) && pool.len() < 2048 {
            pool.push(input);
        }
    }
    done.store(true, Ordering::Relaxed);
    let _ = watchdog.join();
    let stats = Stats {
        executions,
        corpus: pool.len(),
        outcomes: outcomes.len(),
        max_peak,
    };
    eprintln!(
        "fuzz {}: {} executions, {} distinct outcomes, corpus grew to {}, largest peak allocation {} bytes",
        t.name, stats.executions, stats.outcomes, stats.corpus, stats.max_peak
    );
    stats
}

fn check(stats: Stats) {
    assert!(
        stats.executions > 100,
        "only {} executions",
        stats.executions
    );
    assert!(stats.outcomes > 1, "the mutants never changed the outcome");
}

/// An error's kind without its numbers (so "offset 512" and "offset 4096" are one
/// outcome).
fn kind(error: &dyn std::fmt::Display) -> String {
    error
        .to_string()
        .chars()
        .filter(|c| !c.is_ascii_digit())
        .take(60)
        .collect()
}

fn no_fix(_: &mut Rng, _: &mut [u8]) {}

/// The accounting sees what a parser allocates (else the bounds prove nothing).
#[test]
fn allocation_accounting_sees_allocations() {
    let (_, peak) = measured("self-test", b"", || {
        let v = vec![1u8; 3 << 20];
        v.iter().map(|&b| u64::from(b)).sum::<u64>()
    });
    assert!((3 << 20..4 << 20).contains(&peak), "peak {peak}");
}

// ---------------------------------------------------------------------------
// Targets

/// Recomputes the label, mda-header and text checksums (half the time) so
/// mutations reach the parsers behind the checksum checks.
fn fix_pv_checksums(rng: &mut Rng, img: &mut [u8]) {
    if rng.below(2) == 0 {
        return;
    }
    fix_checksums(img);
}

fn run_pv(input: &[u8]) -> String {
    match parse_pv_on_disk(Cursor::new(input)) {
        Ok(None) => "no label".into(),
        Ok(Some(pv)) => format!(
            "pv mdas={} areas={} committed={:?} ext={}",
            pv.metadata_areas.len(),
            pv.data_areas.len(),
            pv.metadata_area_states
                .iter()
                .map(|s| s.committed.is_some())
                .collect::<Vec<_>>(),
            pv.extension_version
        ),
        Err(e) => kind(&e),
    }
}

fn run_text(input: &[u8]) -> String {
    match lvm::parse_metadata_text(input) {
        Ok(vg) => format!(
            "vg pvs={} lvs={}",
            vg.physical_volumes.len(),
            vg.logical_volumes.len()
        ),
        Err(e) => kind(&e),
    }
}

/// blkid's encoding, as udev applies it to ID_PART_ENTRY_NAME: whitespace, a
/// backslash and unsafe ASCII become `\xNN`, valid UTF-8 stays.
fn blkid_encode(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii() && (c.is_ascii_alphanumeric() || "#+-.:=@_".contains(c)) || !c.is_ascii() {
            out.push(c);
        } else {
            out.push_str(&format!("\\x{:02x}", c as u32));
        }
    }
    out
}

fn run_udev_db(input: &[u8]) -> String {
    let text = String::from_utf8_lossy(input);
    let props = parse_udev_db(&text);
    for (k, v) in &props {
        assert!(
            !k.contains('\n') && !v.contains('\n'),
            "a value spans lines"
        );
        let _ = decode_udev_escapes(v);
    }
    // Decoding undoes blkid's encoding exactly, whatever the label.
    let label = props
        .get("ID_PART_ENTRY_NAME")
        .map(|v| decode_udev_escapes(v))
        .unwrap_or_else(|| text.chars().take(72).collect());
    assert_eq!(decode_udev_escapes(&blkid_encode(&label)), label);
    format!(
        "db keys={} name={} escapes={}",
        props.len().min(40),
        props.contains_key("ID_PART_ENTRY_NAME"),
        props
            .get("ID_PART_ENTRY_NAME")
            .is_some_and(|v| v.contains("\\x"))
    )
}

fn run_uevent(input: &[u8]) -> String {
    let text = String::from_utf8_lossy(input);
    let props = parse_uevent(&text);
    // Writing the properties back out and parsing them again changes nothing
    // (except a value ending in CR: `lines()` takes CR LF as one line end).
    let kept: BTreeMap<String, String> = props
        .iter()
        .filter(|(_, v)| !v.ends_with('\r'))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let again: String = kept.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    assert_eq!(parse_uevent(&again), kept);
    format!(
        "uevent keys={} partname={} major={}",
        props.len().min(40),
        props.contains_key("PARTNAME"),
        props
            .get("MAJOR")
            .map(|m| m.parse::<u32>().is_ok())
            .unwrap_or(false)
    )
}

fn run_tag(input: &[u8]) -> String {
    let tag = String::from_utf8_lossy(input);
    match decode_tag(&tag) {
        Ok(None) => "not a satellite tag".into(),
        Ok(Some(id)) => {
            // The canonical encoding of what was decoded decodes to the same ID.
            let canonical = encode_tag(&id);
            if let Ok(canonical) = &canonical {
                assert_eq!(
                    decode_tag(canonical).ok().flatten().as_deref(),
                    Some(id.as_str())
                );
            }
            format!("id canonical={}", canonical.is_ok_and(|c| c == tag))
        }
        Err(e) => {
            let outcome = kind(&e.to_string().replace(&*tag, ""));
            // Any string taken as an ID round-trips (or is refused as too long).
            let id = tag.strip_prefix(TAG_PREFIX).unwrap_or(&tag);
            if let Ok(encoded) = encode_tag(id) {
                assert_eq!(decode_tag(&encoded).ok().flatten().as_deref(), Some(id));
            }
            outcome
        }
    }
}

// ---------------------------------------------------------------------------
// Tests

#[test]
fn fuzz_lvm_label_pv_header_and_metadata_area() {
    check(fuzz(&Target {
        name: "pv",
        dict: &[
            b"LABELONE",
            b"LVM2 001",
            b"\x20LVM2 x[5A%r0N*>",
            b"\x01\0\0\0",
            b"\0\x02\0\0\0\0\0\0",
        ],
        fix: fix_pv_checksums,
        run: run_pv,
        // Reads are capped at MAX_METADATA_TEXT (16 MiB); a few may be held at once.
        alloc_bound: |len| 4 * mda::MAX_METADATA_TEXT + 16 * len as u64,
        max_len: 1 << 20,
    }));
}

#[test]
fn fuzz_lvm_metadata_text() {
    check(fuzz(&Target {
        name: "metadata-text",
        dict: &[
            b"{",
            b"}",
            b"[",
            b"]",
            b"\"",
            b" = ",
            b"\n",
            b"#",
            b"\\\"",
            b"id = \"",
            b"seqno = ",
            b"status = [\"READ\", \"WRITE\"]",
            b"extent_size = 8192",
            b"physical_volumes {",
            b"logical_volumes {",
            b"segment1 {",
            b"start_extent = ",
            b"extent_count = ",
            b"type = \"thin-pool\"",
            b"stripes = [\"pv0\", 0]",
            b"tags = [\"",
            b"pe_count = ",
            b"segment_count = ",
            b"18446744073709551615",
            b"-1",
            b"1e999",
        ],
        fix: no_fix,
        run: run_text,
        alloc_bound: |len| (1 << 20) + 256 * len as u64,
        max_len: 256 << 10,
    }));
}

#[test]
fn fuzz_udev_database() {
    check(fuzz(&Target {
        name: "udev-db",
        dict: &[
            b"E:",
            b"S:",
            b"I:",
            b"ID_PART_ENTRY_NAME=",
            b"\\x20",
            b"\\x",
            b"\\x5c",
            b"\\xzz",
            b"=",
            b"\n",
            b"\xc3\xa9",
            b"\xff",
        ],
        fix: no_fix,
        run: run_udev_db,
        alloc_bound: |len| (64 << 10) + 16 * len as u64,
        max_len: 64 << 10,
    }));
}

#[test]
fn fuzz_uevent() {
    check(fuzz(&Target {
        name: "uevent",
        dict: &[
            b"MAJOR=",
            b"MINOR=",
            b"PARTN=",
            b"PARTNAME=",
            b"DEVNAME=",
            b"DEVTYPE=partition",
            b"=",
            b"\n",
            b"\r\n",
            b"4294967296",
        ],
        fix: no_fix,
        run: run_uevent,
        alloc_bound: |len| (64 << 10) + 16 * len as u64,
        max_len: 64 << 10,
    }));
}

#[test]
fn fuzz_satellite_id_tag() {
    check(fuzz(&Target {
        name: "satellite-id",
        dict: &[
            b"linstor-satellite-id=",
            b"&",
            b"&2",
            b"&20",
            b"&zz",
            b"&C3&A9",
            b"&FF",
            b"\xc3\xa9",
            b" ",
        ],
        fix: no_fix,
        run: run_tag,
        alloc_bound: |len| (16 << 10) + 16 * len as u64,
        max_len: 4096,
    }));
}

/// The whole sysfs backend over a fake `/sys` + `/run/udev` built from the
/// seed uevent and udev-database files, mutated: it returns devices or a
/// `DiscoveryError`, never panics.
#[test]
fn fuzz_sysfs_backend_over_mutated_trees() {
    let uevents = corpus("uevent");
    let dbs = corpus("udev-db");
    let tmp = tempfile_dir();
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut runs = 0;
    while Instant::now() < deadline || runs < 50 {
        let sys = tmp.join(format!("t{runs}"));
        let class = sys.join("sys/class/block/vda1");
        std::fs::create_dir_all(&class).unwrap();
        std::fs::create_dir_all(sys.join("run/udev/data")).unwrap();
        let mut uevent = uevents[rng.below(uevents.len())].clone();
        let mut db = dbs[rng.below(dbs.len())].clone();
        if runs > 0 {
            mutate(&mut rng, &mut uevent, &[], &[b"MAJOR=", b"MINOR="]);
            mutate(&mut rng, &mut db, &[], &[b"E:ID_PART_ENTRY_NAME="]);
        }
        let props = parse_uevent(&String::from_utf8_lossy(&uevent));
        let (major, minor) = (
            props.get("MAJOR").cloned().unwrap_or_default(),
            props.get("MINOR").cloned().unwrap_or_default(),
        );
        std::fs::write(class.join("uevent"), &uevent).unwrap();
        std::fs::write(class.join("size"), b"2097152\n").unwrap();
        std::fs::write(class.join("partition"), b"1\n").unwrap();
        if !major.contains('/') && !minor.contains('/') && major.len() + minor.len() < 200 {
            let _ = std::fs::write(sys.join(format!("run/udev/data/b{major}:{minor}")), &db);
        }
        let backend = SysfsBackend::with_roots(sys.join("sys"), sys.join("run/udev"));
        let result = catch_unwind(AssertUnwindSafe(|| backend.list_block_devices()));
        assert!(
            result.is_ok(),
            "the sysfs backend panicked on uevent {:?} / db {:?}",
            String::from_utf8_lossy(&uevent),
            String::from_utf8_lossy(&db)
        );
        std::fs::remove_dir_all(&sys).unwrap();
        runs += 1;
    }
    eprintln!("fuzz sysfs-backend: {runs} trees");
}

fn tempfile_dir() -> PathBuf {
    let dir = root()
        .join("target/fuzz-tmp")
        .join(format!("{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

// ---------------------------------------------------------------------------
// The seed corpus: reproducible from the LVM fixtures and the VM's files

/// What the `pv` and `metadata-text` seed folders must hold: each fixture's first
/// 64 KiB (label, PV header, first metadata area; vg-mdas-a's second area, 8 MiB
/// in, is cut off) and its committed metadata text.
fn derived_seeds() -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for name in FIXTURES {
        let img = load_image(name);
        let head = img[..img.len().min(64 << 10)].to_vec();
        let pv = parse_pv_on_disk(Cursor::new(&img)).unwrap().unwrap();
        out.insert(format!("pv/{name}.pv"), head);
        if let Some(st) = pv.metadata_area_states.first() {
            if let Some(l) = st.committed {
                let first = l.size.min(st.size - l.offset);
                let mut t = img
                    [(st.start + l.offset) as usize..(st.start + l.offset + first) as usize]
                    .to_vec();
                t.extend_from_slice(
                    &img[(st.start + 512) as usize..(st.start + 512 + l.size - first) as usize],
                );
                while t.last() == Some(&0) {
                    t.pop();
                }
                out.insert(format!("metadata-text/{name}.vg"), t);
            }
        }
    }
    out
}

/// The committed `pv` and `metadata-text` seeds are exactly what the fixtures
/// yield (`FUZZ_WRITE_CORPUS=1` rewrites them); the VM-sourced seeds are real
/// kernel/udev files of a labeled GPT partition.
#[test]
fn seed_corpus_is_real_lvm_kernel_and_udev_output() {
    let base = root().join("tests/fuzz-corpus");
    let write = std::env::var_os("FUZZ_WRITE_CORPUS").is_some();
    for (rel, bytes) in derived_seeds() {
        let path = base.join(&rel);
        if write {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &bytes).unwrap();
        }
        let committed = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (FUZZ_WRITE_CORPUS=1 writes it)", path.display()));
        assert!(
            committed == bytes,
            "{} differs from its fixture",
            path.display()
        );
    }
    let uevents = corpus("uevent");
    assert!(uevents
        .iter()
        .any(|u| parse_uevent(&String::from_utf8_lossy(u)).contains_key("PARTNAME")));
    let dbs = corpus("udev-db");
    assert!(dbs
        .iter()
        .any(|d| parse_udev_db(&String::from_utf8_lossy(d)).contains_key("ID_PART_ENTRY_NAME")));
    for seed in corpus("satellite-id") {
        let tag = String::from_utf8(seed).unwrap();
        assert!(decode_tag(tag.trim_end()).unwrap().is_some(), "{tag}");
    }
}
