//! A pool sized for a node's life (docs/incoming/wt-sizing.md), on the static
//! artifact in a real kernel:
//!
//! - **the VG metadata area**: a fresh provision of an 8 GiB partition gives the PV
//!   an 18 MiB area (`pv_mda_size`, `pe_start`); a 10,000-LV VG (5,000 thin volumes
//!   `pvc-<uuid>_00000`, 5,000 read-only snapshots of them with origins and
//!   activation skip, each tagged) goes into it in one commit (`vgcfgrestore` of a
//!   text generated here and spliced into the VG's own backup in the guest) — LVM's
//!   default area refuses that text ("exceeds maximum metadata size"); the next
//!   starts read it and write nothing (seqno unchanged); `status` reports the area;
//! - **the pool's metadata**: the fresh pool's `_tmeta` is twice LVM's estimate for
//!   its chunk size (the policy's 64 KiB for 8 GiB) and the VG keeps free what
//!   doubling it once takes (metadata and spare); a 820 GiB partition gets 512 KiB
//!   chunks with zeroing, and LVM's zeroing advice is not logged as a warning;
//! - **metadata at 75%**: a pool made by hand there with 4 MiB of metadata over
//!   ~820 GiB of 64 KiB chunks (the data space map alone fills ~80% of it) and four
//!   free extents: the next start doubles `_tmeta` (`lvextend --poolmetadatasize`)
//!   and says why, `thin_check` finds the metadata clean, and the starts after it
//!   write nothing.
mod common;

use common::*;
use std::fmt::Write as _;
use std::time::Duration;
use vmtest::{BootOptions, DiskSpec, GuestRun};

const THIN_VOLUMES: usize = 5_000;
const EXTENT: u64 = 4 << 20;

/// Deterministic ids (no randomness needed, only distinct values).
struct Ids(u64);

impl Ids {
    fn next(&mut self) -> u64 {
        // xorshift64
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn uuid(&mut self) -> String {
        let (a, b) = (self.next(), self.next());
        format!(
            "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            b >> 52,
            b & 0xffff_ffff_ffff
        )
    }

    /// An LVM id: 32 characters of [A-Za-z0-9] as 6-4-4-4-4-4-6.
    fn lvm_id(&mut self) -> String {
        const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        let chars: String = (0..32)
            .map(|_| CHARS[(self.next() % CHARS.len() as u64) as usize] as char)
            .collect();
        let cuts = [6, 4, 4, 4, 4, 4, 6];
        let mut parts = Vec::new();
        let mut at = 0;
        for n in cuts {
            parts.push(&chars[at..at + n]);
            at += n;
        }
        parts.join("-")
    }
}

/// One thin LV as LVM's text format writes it; `@TID@` is the pool's transaction id,
/// filled in by the guest.
fn thin_lv(out: &mut String, name: &str, id: &str, device_id: usize, origin: Option<&str>) {
    let (status, flags) = match origin {
        None => ("\"READ\", \"WRITE\", \"VISIBLE\"", ""),
        Some(_) => ("\"READ\", \"VISIBLE\"", "\"ACTIVATION_SKIP\""),
    };
    let _ = write!(
        out,
        "\t\t{name} {{\n\t\t\tid = \"{id}\"\n\t\t\tstatus = [{status}]\n\t\t\tflags = [{flags}]\n\
         \t\t\ttags = [\"linstor-rsc\"]\n\t\t\tcreation_time = 1765000000\n\
         \t\t\tcreation_host = \"node-01\"\n\t\t\tsegment_count = 1\n\n\t\t\tsegment1 {{\n\
         \t\t\t\tstart_extent = 0\n\t\t\t\textent_count = 256\n\n\t\t\t\ttype = \"thin\"\n\
         \t\t\t\tthin_pool = \"linstor-pool\"\n\t\t\t\ttransaction_id = @TID@\n\
         \t\t\t\tdevice_id = {device_id}\n"
    );
    if let Some(origin) = origin {
        let _ = writeln!(out, "\t\t\t\torigin = \"{origin}\"");
    }
    out.push_str("\t\t\t}\n\t\t}\n\n");
}

/// The LV sections of a LINSTOR node with 10,000 LVs.
fn linstor_lvs() -> String {
    let mut ids = Ids(0x9e37_79b9_7f4a_7c15);
    let mut out = String::new();
    let volumes: Vec<String> = (0..THIN_VOLUMES)
        .map(|_| format!("pvc-{}_00000", ids.uuid()))
        .collect();
    for (n, name) in volumes.iter().enumerate() {
        let id = ids.lvm_id();
        thin_lv(&mut out, name, &id, n + 1, None);
    }
    for (n, origin) in volumes.iter().enumerate() {
        let name = format!("{origin}_snapshot-{}", ids.uuid());
        let id = ids.lvm_id();
        thin_lv(&mut out, &name, &id, THIN_VOLUMES + n + 1, Some(origin));
    }
    out
}

/// Splices the LVs into the VG's own backup after `logical_volumes {`, with the
/// pool's transaction id, and restores it in one commit.
const SPLICE: &str = r#"set -e
vgcfgbackup -f /tmp/cur.vg linstor-vg >/dev/null
tid=$(awk '$1 == "linstor-pool" && $2 == "{" {p = 1} p && $1 == "transaction_id" {print $3; exit}' /tmp/cur.vg)
[ -n "$tid" ]
sed "s/@TID@/$tid/" /lvs.txt > /tmp/lvs.txt
awk '{print} $1 == "logical_volumes" && $2 == "{" {while ((getline l < "/tmp/lvs.txt") > 0) print l}' /tmp/cur.vg > /tmp/new.vg
echo "pool transaction_id $tid, text $(wc -c < /tmp/new.vg) bytes"
"#;

fn script() -> String {
    let mut s = String::from(
        r#"
VGS='vgs --reportformat json --units b --nosuffix -o vg_name,vg_seqno,lv_count,vg_free_count,vg_extent_size,vg_mda_size,vg_mda_free'
PVS='pvs --reportformat json --units b --nosuffix -o pv_name,pe_start,pv_mda_size,pv_pe_count'
LVS='lvs -a --reportformat json --units b --nosuffix -o lv_name,lv_size,chunk_size,zero,lv_metadata_size,metadata_percent'
F='--partition-label pool-full --volume-group full-vg --pool linstor-pool --on-failure exit'
step fresh $LPD $P --satellite-id node-01
step fresh-pvs $PVS /dev/vda1
step fresh-vgs $VGS linstor-vg
step fresh-lvs $LVS linstor-vg
step splice sh /splice.sh
step restore vgcfgrestore --force --yes -f /tmp/new.vg linstor-vg
step restored-vgs $VGS linstor-vg
step steady-1 $LPD $P --satellite-id node-01
step steady-2 $LPD $P --satellite-id node-01
step steady-vgs $VGS linstor-vg
step status $LPD status --partition-label linstor-storage --volume-group linstor-vg --pool linstor-pool --json
step status-text $LPD status --partition-label linstor-storage --volume-group linstor-vg --pool linstor-pool
step full-fresh $LPD $F --satellite-id node-01
step full-fresh-lvs $LVS full-vg
step full-rm lvremove -f full-vg/linstor-pool
step full-rm-spare sh -c 'if lvs full-vg/lvol0_pmspare >/dev/null 2>&1; then lvremove -f full-vg/lvol0_pmspare; fi'
step full-hold lvcreate -an -Zn -l 4 -n hold full-vg
step full-make lvcreate -Zn --type thin-pool -l 100%FREE --poolmetadatasize 4m --chunksize 64k -n linstor-pool full-vg
step full-unhold lvremove -f full-vg/hold
step full-made-lvs $LVS full-vg
step full-vgs-before $VGS full-vg
step full-status-before $LPD status --partition-label pool-full --volume-group full-vg --pool linstor-pool --json
step full-grow $LPD $F --satellite-id node-01
step full-lvs-grown $LVS full-vg
step full-vgs-grown $VGS full-vg
step full-status-grown $LPD status --partition-label pool-full --volume-group full-vg --pool linstor-pool --json
step full-steady $LPD $F --satellite-id node-01
step full-off lvchange -an full-vg/linstor-pool
step full-meta-on lvchange -ay -y full-vg/linstor-pool_tmeta
step full-check thin_check /dev/mapper/full--vg-linstor--pool_tmeta
step full-meta-off lvchange -an full-vg/linstor-pool_tmeta
step full-activate $LPD $F --satellite-id node-01
step full-steady-2 $LPD $F --satellite-id node-01
step full-vgs-after $VGS full-vg
"#,
    );
    s.push('\n');
    s
}

fn report(run: &GuestRun, step: &str, kind: &str) -> Vec<serde_json::Value> {
    rows(run, step, kind)
}

fn num(value: &serde_json::Value) -> u64 {
    number(value)
}

/// A number of the tool's own JSON (LVM's reports print numbers as strings); 0
/// when absent (the checks print the object, and none passes on 0).
fn jnum(value: &serde_json::Value) -> u64 {
    value.as_u64().unwrap_or(0)
}

fn lv<'a>(lvs: &'a [serde_json::Value], name: &str) -> &'a serde_json::Value {
    lvs.iter()
        .find(|r| text(&r["lv_name"]) == name)
        .unwrap_or_else(|| panic!("no LV {name} in {lvs:?}"))
}

/// Twice LVM's estimate (64 bytes per chunk, at least 2 MiB), in whole extents:
/// the formula of docs/incoming/wt-sizing.md, written out again here.
fn lifetime_metadata_extents(data_bytes: u64, chunk: u64) -> u64 {
    let estimate = (data_bytes / chunk * 64).max(2 << 20);
    (2 * estimate).div_ceil(EXTENT)
}

#[test]
fn a_pool_for_ten_thousand_lvs_and_metadata_that_grows_before_it_fills() {
    let dir = std::env::temp_dir().join(format!("vm-pool-life-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let lvs_file = dir.join("lvs.txt");
    let splice_file = dir.join("splice.sh");
    std::fs::write(&lvs_file, linstor_lvs()).unwrap();
    std::fs::write(&splice_file, SPLICE).unwrap();
    let bed = bed(vec![
        DiskSpec::new("storage", 8192).partition("linstor-storage", None),
        DiskSpec::new("full", 820 << 10).partition("pool-full", None),
    ])
    .with_file(&lvs_file, "/lvs.txt")
    .with_file(&splice_file, "/splice.sh");
    let options = BootOptions {
        timeout: Duration::from_secs(1500),
        memory_mib: 1024,
        ..BootOptions::default()
    };
    let run = match bed.boot(&options, &format!("{PRELUDE}{}", script())) {
        Ok(run) => run,
        Err(e) => panic!("VM boot failed: {e}"),
    };
    eprintln!("guest ran {} steps in {:?}", run.steps.len(), run.elapsed);
    let _ = std::fs::remove_dir_all(&dir);
    check(&run);
}

fn check(run: &GuestRun) {
    let mut c = Checks::default();
    // The fresh PV: an area for 10,000 LVs, extents after it.
    expect_provisioned(run, "fresh");
    let pv = &report(run, "fresh-pvs", "pv")[0];
    c.that(
        num(&pv["pv_mda_size"]) == (18 << 20) - 4096 && num(&pv["pe_start"]) == 18 << 20,
        format!("fresh PV: want an 18 MiB − 4 KiB area and pe_start 18 MiB: {pv}"),
    );
    // The fresh pool: chunk by LVM's policy, metadata twice LVM's estimate, and the
    // VG keeps what doubling it once takes (metadata + spare).
    let vg = &report(run, "fresh-vgs", "vg")[0];
    let lvs = report(run, "fresh-lvs", "lv");
    let pool = lv(&lvs, "linstor-pool");
    let pe_count = num(&pv["pv_pe_count"]);
    let chunk = num(&pool["chunk_size"]);
    let tmeta = num(&lv(&lvs, "[linstor-pool_tmeta]")["lv_size"]);
    let spare = num(&lv(&lvs, "[lvol0_pmspare]")["lv_size"]);
    let want_meta = lifetime_metadata_extents(pe_count * EXTENT, chunk);
    c.that(
        chunk == 64 << 10,
        format!("8 GiB: LVM's policy chunk is 64 KiB: {pool}"),
    );
    c.that(
        tmeta == want_meta * EXTENT && spare == tmeta,
        format!(
            "_tmeta {tmeta} and spare {spare}, want {} extents each",
            want_meta
        ),
    );
    c.that(
        num(&vg["vg_free_count"]) == 2 * want_meta,
        format!(
            "free extents: want {} (double the metadata and its spare once): {vg}",
            2 * want_meta
        ),
    );
    c.that(
        text(&pool["zero"]) == "zero",
        format!("zeroing on by default: {pool}"),
    );
    // 10,000 LVs in one commit.
    let spliced = expect_exit(run, "splice", 0);
    eprintln!("splice: {}", spliced.stdout.trim());
    let restore = run.step("restore");
    c.that(
        restore.exit_code == 0,
        format!(
            "vgcfgrestore of the 10,000-LV VG failed (LVM's default area holds ~1,200 LVs):\n{}",
            restore.stderr
        ),
    );
    let restored = &report(run, "restored-vgs", "vg")[0];
    c.that(
        num(&restored["lv_count"]) == 2 * THIN_VOLUMES as u64 + 1,
        format!("restored VG: want {} LVs: {restored}", 2 * THIN_VOLUMES + 1),
    );
    // The next starts read it and write nothing.
    c.steady(run, "steady-1");
    c.steady(run, "steady-2");
    let steady = &report(run, "steady-vgs", "vg")[0];
    c.that(
        steady["vg_seqno"] == restored["vg_seqno"],
        format!("seqno changed after the restore: {restored} → {steady}"),
    );
    // status: the area, the largest text (the area's rule, and what LVM's default
    // io_memory_size lets it hold: 7 MiB), the use of that; a warning only from 50%.
    let status: serde_json::Value =
        serde_json::from_str(&run.step("status").stdout).unwrap_or_default();
    let area = &status["metadata_area"];
    let used = jnum(&area["used_percent"]);
    c.that(
        jnum(&area["size_bytes"]) == (18 << 20) - 4096
            && jnum(&area["largest_text_bytes"]) == ((18 << 20) - 4096 - 512) / 2 - 512
            && jnum(&area["usable_text_bytes"]) == 7 << 20
            && jnum(&area["text_bytes"]) > 4_000_000
            && used == jnum(&area["text_bytes"]) * 100 / (7 << 20)
            && used > 30
            && area["warning"].is_null() == (used < 50),
        format!("status metadata_area: {area}"),
    );
    eprintln!("10,000 LVs: metadata area {area}");
    let status_text = &run.step("status-text").stdout;
    c.that(
        status_text.contains(
            "metadata area 18.0 MiB, largest VG text 7.0 MiB (within the default io_memory_size)",
        ),
        format!("status text:\n{status_text}"),
    );
    // 820 GiB: 512 KiB chunks with zeroing; LVM's advice is a note, not our warning.
    let full = expect_provisioned(run, "full-fresh");
    let full_pool = lv(&report(run, "full-fresh-lvs", "lv"), "linstor-pool").clone();
    c.that(
        num(&full_pool["chunk_size"]) == 512 << 10 && text(&full_pool["zero"]) == "zero",
        format!("820 GiB: 512 KiB chunks, zeroing: {full_pool}"),
    );
    c.that(
        full.stderr
            .contains("LVM's advice, not a problem of this node: Pool zeroing")
            && !full
                .stderr
                .lines()
                .any(|l| l.contains("WARN") && l.contains("zeroing")),
        format!("zeroing advice:\n{}", full.stderr),
    );
    // A pool whose metadata is ≥ 75% used, and room for doubling it.
    for step in [
        "full-rm",
        "full-rm-spare",
        "full-hold",
        "full-make",
        "full-unhold",
    ] {
        c.exit(run, step, 0);
    }
    let made = report(run, "full-made-lvs", "lv");
    c.that(
        num(&lv(&made, "[linstor-pool_tmeta]")["lv_size"]) == EXTENT
            && num(&lv(&made, "[lvol0_pmspare]")["lv_size"]) == EXTENT,
        format!("hand-made pool: 4 MiB metadata and spare: {made:?}"),
    );
    let before: serde_json::Value =
        serde_json::from_str(&run.step("full-status-before").stdout).unwrap_or_default();
    let usage = &before["pool_usage"];
    let used_before =
        jnum(&usage["metadata_used_blocks"]) * 100 / jnum(&usage["metadata_total_blocks"]).max(1);
    eprintln!("hand-made pool: metadata {used_before}% used ({usage})");
    c.that(
        used_before >= 75,
        format!("the hand-made pool's metadata should be ≥ 75% used: {usage}"),
    );
    c.exit(run, "full-grow", 0);
    c.says(run, "full-grow", "% used (at 75% it is doubled");
    let grown = report(run, "full-lvs-grown", "lv");
    c.that(
        num(&lv(&grown, "[linstor-pool_tmeta]")["lv_size"]) == 8 << 20,
        format!("_tmeta after the growth: {grown:?}"),
    );
    let grown_vg = &report(run, "full-vgs-grown", "vg")[0];
    let before_vg = &report(run, "full-vgs-before", "vg")[0];
    c.that(
        num(&grown_vg["vg_seqno"]) == num(&before_vg["vg_seqno"]) + 1,
        format!("one metadata write: {before_vg} → {grown_vg}"),
    );
    let after: serde_json::Value =
        serde_json::from_str(&run.step("full-status-grown").stdout).unwrap_or_default();
    let usage = &after["pool_usage"];
    c.that(
        jnum(&usage["metadata_total_blocks"]) == 2048
            && jnum(&usage["metadata_used_blocks"]) * 100 / 2048 < 75,
        format!("after doubling: 8 MiB of metadata, under 75% used: {usage}"),
    );
    c.steady(run, "full-steady");
    for step in ["full-off", "full-meta-on", "full-check", "full-meta-off"] {
        c.exit(run, step, 0);
    }
    c.exit(run, "full-activate", 0);
    c.steady(run, "full-steady-2");
    let after_vg = &report(run, "full-vgs-after", "vg")[0];
    c.that(
        after_vg["vg_seqno"] == grown_vg["vg_seqno"],
        format!("writes after the growth: {grown_vg} → {after_vg}"),
    );
    c.finish();
}
