//! Parses a generated LINSTOR-like VG metadata text of N LVs
//! (`src/observe/lvm/synthetic.rs`) RUNS times with the tool's own reader and
//! prints `N BYTES MEDIAN_US MIN_US SCAN_US`: SCAN_US is the median of one pass
//! over the text's bytes that only counts its newlines (vectorised), the floor of
//! any reader that looks at every byte (the text's braces and quotes must be seen
//! to find where a section ends). `cargo xtask bench --scale` runs it inside
//! the benchmark VM (qemu TCG), so the figure is the reader's cost on that guest.
//!
//! Usage: parse_scale [N=10000] [RUNS=11]
use std::time::Instant;

use linstor_provision_disk::observe::lvm::{parse_metadata_text, synthetic};

fn arg(n: usize, default: u64) -> u64 {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let (lvs, runs) = (arg(1, 10_000), arg(2, 11).max(1));
    let text = synthetic::linstor_like_metadata_text(lvs);
    let mut micros = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        match parse_metadata_text(text.as_bytes()) {
            Ok(vg) => {
                if vg.logical_volumes.len() as u64 != lvs + 4 {
                    eprintln!(
                        "parse_scale: parsed {} LVs, expected {}",
                        vg.logical_volumes.len(),
                        lvs + 4
                    );
                    std::process::exit(1);
                }
            }
            Err(e) => {
                eprintln!("parse_scale: {e}");
                std::process::exit(1);
            }
        }
        micros.push(start.elapsed().as_micros());
    }
    micros.sort_unstable();
    let mut scans = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        let lines = std::hint::black_box(text.as_bytes())
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        std::hint::black_box(lines);
        scans.push(start.elapsed().as_micros());
    }
    scans.sort_unstable();
    println!(
        "{lvs} {} {} {} {}",
        text.len(),
        micros[micros.len() / 2],
        micros[0],
        scans[scans.len() / 2]
    );
}
