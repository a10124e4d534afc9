//! LVM state that belongs to someone else, made by real LVM in the VM, is never
//! overwritten (issue 8, items 1, 4, 5, 6 and 7):
//! - a PV whose metadata area is ignored (`pvcreate --metadataignore y`), member of
//!   a VG kept on another disk: refused, that VG intact and complete — also with
//!   the other disk detached (its virtio device unbound inside the guest);
//! - a PV marked in use whose metadata area is empty and that nothing lists (what a
//!   `vgcreate` cut off before its commit leaves): still re-created;
//! - a PV made with `--pvmetadatacopies 2`: provisioned, then steady (0 LVM
//!   commands, seqno unchanged), then grown with its partition;
//! - an untagged VG of the configured name holding a volume: refused with the
//!   volume named and its data intact; `--force` wipes it;
//! - a VG name on disk that is not a valid LVM name (`-ff`): refused before any
//!   command line;
//! - a thin-pool chunk size on disk past 2^64 bytes: an error, not a wrap.
//!
//! The last two edit the metadata text in the disk image on the host between boots
//! (checksums recomputed), since LVM itself refuses to write such metadata.
//!
//! Every check is collected and the test fails listing all that failed, so a run
//! against an old build (LINSTOR_PROVISION_DISK_BIN) reports every item at once.
mod common;

use common::*;
use linstor_provision_disk::observe::lvm::lvm_crc;
use std::path::Path;
use vmtest::{DiskSpec, GuestRun};

/// Replaces `from` by `to` (once) in the committed metadata text of the PV on the
/// first partition of disk image `image`, and recomputes the text and header
/// checksums, as LVM would have written them. The text must not wrap in the area.
fn edit_metadata(image: &Path, from: &str, to: &str) {
    let mut disk = std::fs::read(image).unwrap_or_else(|e| panic!("{}: {e}", image.display()));
    let u64_at =
        |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or([0; 8]));
    // GPT: partition entry 1 at LBA 2, its first LBA at byte 32 of the entry.
    let part = u64_at(&disk, 1024 + 32) as usize * 512;
    let header = part + 4096;
    assert_eq!(
        &disk[header + 4..header + 20],
        b" LVM2 x[5A%r0N*>",
        "no metadata area at {header}"
    );
    let (offset, size) = (
        u64_at(&disk, header + 40) as usize,
        u64_at(&disk, header + 48) as usize,
    );
    let area_size = u64_at(&disk, header + 32) as usize;
    assert!(
        offset + size <= area_size,
        "the metadata text wraps; pick a fresh VG"
    );
    let text_at = header + offset;
    let text = String::from_utf8_lossy(&disk[text_at..text_at + size]).into_owned();
    assert_eq!(text.matches(from).count(), 1, "{from:?} in:\n{text}");
    let new = text.replacen(from, to, 1);
    // Keep LVM's trailing NUL if there was one.
    assert!(offset + new.len() <= area_size);
    disk[text_at..text_at + new.len()].copy_from_slice(new.as_bytes());
    disk[header + 48..header + 56].copy_from_slice(&(new.len() as u64).to_le_bytes());
    disk[header + 56..header + 60].copy_from_slice(&lvm_crc(new.as_bytes()).to_le_bytes());
    let crc = lvm_crc(&disk[header + 4..header + 512]);
    disk[header..header + 4].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(image, &disk).unwrap_or_else(|e| panic!("{}: {e}", image.display()));
}

/// Empties slot 0 of the metadata area on the first partition of `image` (offset,
/// size and checksum zero, flags kept), header checksum recomputed: what a `vgcreate`
/// cut off between marking the PV in use and committing the VG's first metadata
/// leaves (the power-cut test found this state).
fn empty_committed_slot(image: &Path) {
    let mut disk = std::fs::read(image).unwrap_or_else(|e| panic!("{}: {e}", image.display()));
    let part =
        u64::from_le_bytes(disk[1024 + 32..1024 + 40].try_into().unwrap_or([0; 8])) as usize * 512;
    let header = part + 4096;
    assert_eq!(
        &disk[header + 4..header + 20],
        b" LVM2 x[5A%r0N*>",
        "no metadata area at {header}"
    );
    disk[header + 40..header + 60].fill(0);
    let crc = lvm_crc(&disk[header + 4..header + 512]);
    disk[header..header + 4].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(image, &disk).unwrap_or_else(|e| panic!("{}: {e}", image.display()));
}

const FIRST_BOOT: &str = r#"
VGS='vgs --reportformat json -o vg_name,vg_seqno,pv_count,vg_missing_pv_count,lv_count,vg_attr,vg_tags'
LVS='lvs --reportformat json -o lv_name'

# 1. The issue's reproduction: our partition is an ignored-metadata member of othervg.
step m-pv-ours pvcreate --metadataignore y /dev/vda1
step m-pv-other pvcreate /dev/vdb1
step m-vg vgcreate othervg /dev/vdb1 /dev/vda1
step m-lv lvcreate -an -Zn -l100%PVS -n data othervg /dev/vda1
step m-sum-before sum_head 4194304 /dev/vda1
step m-vgs-before $VGS othervg
step m-refused $LPD $P --satellite-id node-01
step m-sum-after sum_head 4194304 /dev/vda1
step m-vgs-after $VGS othervg
step m-lvs $LVS othervg

# 1b. The same with the other PV's disk detached: nothing on the machine lists ours.
step d-pv-ours pvcreate --metadataignore y /dev/vde1
step d-pv-other pvcreate /dev/vdf1
step d-vg vgcreate othervg2 /dev/vdf1 /dev/vde1
step d-lv lvcreate -an -Zn -l100%PVS -n data othervg2 /dev/vde1
step d-vgs-before $VGS othervg2
step d-sum-before sum_head 4194304 /dev/vde1
step d-detach sh -c 'v=$(basename "$(readlink -f /sys/block/vdf/device)"); echo "$v" > /tmp/vdf-virtio; echo "$v" > /sys/bus/virtio/drivers/virtio_blk/unbind; [ ! -e /sys/block/vdf ] && echo detached'
step d-refused $LPD --partition-label det-ours --volume-group linstor-vg2 --pool pool --satellite-id node-01 --on-failure exit
step d-sum-after sum_head 4194304 /dev/vde1
step d-attach sh -c 'cat /tmp/vdf-virtio > /sys/bus/virtio/drivers/virtio_blk/bind; n=0; while [ ! -e /dev/vdf1 ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n+1)); done; ls /dev/vdf1'
step d-vgs-after $VGS othervg2

# 4. Two metadata areas: provision, then a steady start writes nothing.
step t-pv pvcreate --pvmetadatacopies 2 /dev/vdc1
step t-first $LPD --partition-label mdas --volume-group vgm --pool pool --satellite-id node-01 --on-failure exit
step t-vgs-first vgs --reportformat json -o vg_name,vg_seqno,vg_free_count vgm
step t-steady env LOG_LEVEL=debug $LPD --partition-label mdas --volume-group vgm --pool pool --satellite-id node-01 --on-failure exit
step t-vgs-steady vgs --reportformat json -o vg_name,vg_seqno,vg_free_count vgm

# 5. An untagged VG of our name holding someone's volume.
step u-pv pvcreate /dev/vdd1
step u-vg vgcreate vgu /dev/vdd1
step u-lv lvcreate -Zn -L 8m -n keepme vgu
step u-write sh -c 'echo someone-s-data | dd of=/dev/vgu/keepme conv=fsync 2>/dev/null && echo written'
step u-vgs-before $VGS vgu
step u-refused $LPD --partition-label untagged --volume-group vgu --pool pool --satellite-id node-01 --on-failure exit
step u-vgs-after $VGS vgu
step u-read sh -c 'head -c 14 /dev/vgu/keepme'
step u-forced $LPD --partition-label untagged --volume-group vgu --pool pool --satellite-id node-01 --on-failure exit --force
step u-lvs-forced $LVS vgu
step u-vgs-forced $VGS vgu

# 6/7. VGs whose metadata the host edits before the second boot.
step n-pv pvcreate /dev/vdg1
step n-vg vgcreate --addtag linstor-satellite-id=old vgn /dev/vdg1
step h-first $LPD --partition-label huge --volume-group vgh --pool pool --chunk-size 512K --satellite-id node-01 --on-failure exit

# 1c. A VG whose metadata the host empties: a vgcreate cut off before its commit.
step c-pv pvcreate /dev/vdi1
step c-vg vgcreate cutvg /dev/vdi1
"#;

const SECOND_BOOT: &str = r#"
VGS='vgs --reportformat json -o vg_name,vg_seqno,pv_count,vg_missing_pv_count,lv_count,vg_attr,vg_tags'
# The edited metadata makes LVM's scan of all devices print warnings on stdout:
# reports look only at the devices of the VG they report.
M='--devices /dev/vda1,/dev/vdb1'
T='--devices /dev/vdc1'

# 1. othervg is still whole after a reboot.
step m-vgs-reboot $VGS $M othervg
step m-lvs-reboot lvs --reportformat json -o lv_name $M othervg

# 4. The partition grew: converge, then steady again.
step t-grow $LPD --partition-label mdas --volume-group vgm --pool pool --satellite-id node-01 --on-failure exit
step t-vgs-grown vgs --reportformat json -o vg_name,vg_seqno,vg_free_count,vg_size --units b --nosuffix $T vgm
step t-steady-grown $LPD --partition-label mdas --volume-group vgm --pool pool --satellite-id node-01 --on-failure exit
step t-vgs-steady-grown vgs --reportformat json -o vg_name,vg_seqno,vg_free_count,vg_size --units b --nosuffix $T vgm

# 1c. An interrupted vgcreate (nothing on the machine lists the PV) is recovered.
step c-recovered $LPD --partition-label cut --volume-group cutvg --pool pool --satellite-id node-01 --on-failure exit
step c-vgs vgs --reportformat json -o vg_name,vg_tags --devices /dev/vdi1 cutvg

# 6. A VG named `-ff` on disk.
step n-sum-before sum_head 4194304 /dev/vdg1
step n-refused $LPD --partition-label names --volume-group vgn --pool pool --satellite-id node-01 --on-failure exit --force
step n-sum-after sum_head 4194304 /dev/vdg1

# 7. A chunk size past 2^64 bytes.
step h-sum-before sum_head 4194304 /dev/vdh1
step h-refused $LPD --partition-label huge --volume-group vgh --pool pool --satellite-id node-01 --on-failure exit
step h-sum-after sum_head 4194304 /dev/vdh1
"#;

fn vg_field(run: &GuestRun, step: &str, field: &str) -> String {
    let rows = json_rows(run, step, "vg");
    rows.first()
        .map(|row| match &row[field] {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .unwrap_or_default()
}

/// Rows of an LVM JSON report; empty when the step failed or printed none.
fn json_rows(run: &GuestRun, step: &str, kind: &str) -> Vec<serde_json::Value> {
    let s = run.step(step);
    serde_json::from_str::<serde_json::Value>(&s.stdout)
        .ok()
        .and_then(|v| v["report"][0][kind].as_array().cloned())
        .unwrap_or_default()
}

fn lvs(run: &GuestRun, step: &str) -> Vec<String> {
    json_rows(run, step, "lv")
        .iter()
        .map(|row| text(&row["lv_name"]))
        .collect()
}

#[test]
fn foreign_lvm_state_is_never_overwritten() {
    let bed = bed(vec![
        DiskSpec::new("ours", 128).partition("linstor-storage", None),
        DiskSpec::new("other", 128).partition("other", None),
        // 515 MiB: (partition - pe_start) leaves less than the second area's size
        // over whole extents, so forgetting that area plans one extent too many.
        DiskSpec::new("mdas", 515).partition("mdas", None),
        DiskSpec::new("untagged", 128).partition("untagged", None),
        DiskSpec::new("det-ours", 128).partition("det-ours", None),
        DiskSpec::new("det-other", 128).partition("det-other", None),
        DiskSpec::new("names", 64).partition("names", None),
        DiskSpec::new("huge", 128).partition("huge", None),
        DiskSpec::new("cut", 64).partition("cut", None),
    ]);
    let mut checks = Checks::default();
    let first = boot(&bed, false, FIRST_BOOT);
    let run = &first;
    for step in [
        "m-pv-ours",
        "m-pv-other",
        "m-vg",
        "m-lv",
        "d-pv-ours",
        "d-pv-other",
        "d-vg",
        "d-lv",
        "d-detach",
        "d-attach",
        "t-pv",
        "u-pv",
        "u-vg",
        "u-lv",
        "u-write",
        "n-pv",
        "n-vg",
        "c-pv",
        "c-vg",
    ] {
        run.expect_success(step);
    }
    assert!(run.step("d-detach").stdout.contains("detached"));

    // 1. Refused, naming othervg and the disk carrying it; nothing written.
    checks.exit(run, "m-refused", 1);
    checks.says(
        run,
        "m-refused",
        "volume group othervg on /dev/vdb1 lists this PV",
    );
    checks.says(run, "m-refused", "marked ignored");
    checks.same(run, "m-sum-before", "m-sum-after");
    checks.same(run, "m-vgs-before", "m-vgs-after");
    checks.that(
        vg_field(run, "m-vgs-after", "pv_count") == "2"
            && vg_field(run, "m-vgs-after", "vg_missing_pv_count") == "0",
        format!(
            "othervg is not complete: {}",
            run.step("m-vgs-after").stdout
        ),
    );
    checks.that(
        lvs(run, "m-lvs") == ["data"],
        format!("othervg/data is gone: {}", run.step("m-lvs").stdout),
    );

    // 1b. Detached: refused with "may be detached"; othervg2 whole once reattached.
    checks.exit(run, "d-refused", 1);
    checks.says(run, "d-refused", "the other PVs of its VG may be detached");
    checks.same(run, "d-sum-before", "d-sum-after");
    checks.same(run, "d-vgs-before", "d-vgs-after");

    // 4. Two metadata areas: provisioned, and a second start runs no LVM command.
    checks.exit(run, "t-first", 0);
    checks.exit(run, "t-steady", 0);
    checks.says(run, "t-steady", "lvm_commands=0");
    checks.that(
        !run.step("t-steady").stderr.contains("running lvm command"),
        format!(
            "t-steady ran LVM commands:\n{}",
            run.step("t-steady").stderr
        ),
    );
    checks.same(run, "t-vgs-first", "t-vgs-steady");
    checks.that(
        // Free: the room to double the pool's metadata and its spare once (one extent each; docs/incoming/wt-sizing.md).
        vg_field(run, "t-vgs-first", "vg_free_count") == "2",
        format!(
            "the pool did not take all space: {}",
            run.step("t-vgs-first").stdout
        ),
    );

    // 5. Refused with the volume named, data intact; --force wipes it.
    checks.exit(run, "u-refused", 1);
    checks.says(run, "u-refused", "holds logical volumes: keepme");
    checks.same(run, "u-vgs-before", "u-vgs-after");
    checks.that(
        run.step("u-read").stdout == "someone-s-data",
        format!("keepme lost its data: {:?}", run.step("u-read").stdout),
    );
    checks.exit(run, "u-forced", 0);
    checks.that(
        lvs(run, "u-lvs-forced") == ["pool"],
        format!("--force left: {}", run.step("u-lvs-forced").stdout),
    );
    checks.that(
        vg_field(run, "u-vgs-forced", "vg_tags") == "linstor-satellite-id=node-01",
        format!(
            "--force did not re-provision: {}",
            run.step("u-vgs-forced").stdout
        ),
    );
    checks.exit(run, "h-first", 0);

    // Between boots: grow the two-area disk, rename vgn to `-ff` and make the pool's
    // chunk size impossible, the way only an editor (or corruption) could.
    grow_disk(&bed.disk_path("mdas"), "600M", "mdas");
    edit_metadata(&bed.disk_path("names"), "vgn {", "-ff {");
    empty_committed_slot(&bed.disk_path("cut"));
    edit_metadata(
        &bed.disk_path("huge"),
        "chunk_size = 1024",
        "chunk_size = 36028797018963968",
    );

    let second = boot(&bed, false, SECOND_BOOT);
    let run = &second;
    checks.that(
        first.step("m-vgs-before").stdout == run.step("m-vgs-reboot").stdout,
        format!(
            "othervg changed across the reboot:\n{}\n---\n{}",
            first.step("m-vgs-before").stdout,
            run.step("m-vgs-reboot").stdout
        ),
    );
    checks.that(
        vg_field(run, "m-vgs-reboot", "vg_missing_pv_count") == "0"
            && lvs(run, "m-lvs-reboot") == ["data"],
        format!(
            "othervg after reboot: {} {}",
            run.step("m-vgs-reboot").stdout,
            run.step("m-lvs-reboot").stdout
        ),
    );

    // 4. Growth converges, the pool takes the new space, then steady again.
    checks.exit(run, "t-grow", 0);
    checks.says(run, "t-grow", "grow physical volume");
    let grown_size: u64 = vg_field(run, "t-vgs-grown", "vg_size").parse().unwrap_or(0);
    checks.that(
        grown_size > 515 << 20,
        format!("the VG did not grow past the old 515 MiB disk: {grown_size} bytes"),
    );
    checks.that(
        vg_field(run, "t-vgs-grown", "vg_free_count") == "2",
        format!("after growth: {}", run.step("t-vgs-grown").stdout),
    );
    checks.exit(run, "t-steady-grown", 0);
    checks.says(run, "t-steady-grown", "lvm_commands=0");
    checks.same(run, "t-vgs-grown", "t-vgs-steady-grown");

    // 1c. A genuine interrupted vgcreate is still re-created and provisioned.
    checks.exit(run, "c-recovered", 0);
    checks.says(run, "c-recovered", "re-create physical volume on /dev/vdi1");
    checks.that(
        vg_field(run, "c-vgs", "vg_tags") == "linstor-satellite-id=node-01",
        format!("cutvg not provisioned: {}", run.step("c-vgs").stdout),
    );

    // 6. The name is refused before any command line, even with --force.
    checks.exit(run, "n-refused", 1);
    checks.says(
        run,
        "n-refused",
        "volume group `-ff` that is not a valid LVM name",
    );
    checks.that(
        !run.step("n-refused").stderr.contains("running lvm command"),
        format!("n-refused ran LVM:\n{}", run.step("n-refused").stderr),
    );
    checks.same(run, "n-sum-before", "n-sum-after");

    // 7. The impossible chunk size is an error, never a wrapped number.
    checks.exit(run, "h-refused", 1);
    checks.says(run, "h-refused", "impossible number");
    checks.says(run, "h-refused", "chunk size of 36028797018963968 sectors");
    checks.same(run, "h-sum-before", "h-sum-after");

    checks.finish();
}
