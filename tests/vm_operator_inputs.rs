//! What an operator's configuration delivers must never cost a node its data
//! (issue 18), on the shipped artifact with real LVM:
//! - a satellite ID with a trailing newline (a Secret made from a file), a trailing
//!   or leading space, or an inner control character is exit 2 before anything is
//!   read: the VG's seqno and a thin volume's data are unchanged;
//! - a node recorded under `node-01\n` (tag written with LVM's own `vgchange`, as an
//!   earlier version wrote it) and started with `node-01` is re-tagged in one
//!   metadata write (seqno + 1), its data kept, and the next start writes nothing;
//!   a seed node whose `satellite-id` file ends in `\r\n` is adopted, not reset;
//! - an unknown LOG_LEVEL is exit 2 listing the levels; `warning` works as warn;
//! - a file already at HOLD_MARKER is waited on and never truncated; `release` and
//!   the image's `rm` refuse anything but a small regular file; the termination log
//!   is never written through a symlink nor into a block device; `--dry-run` with a
//!   wrong label exits 1 at once instead of holding.
mod common;

use common::*;
use vmtest::{DiskSpec, GuestRun};

/// Provisioning flags for the partition (and VG) `label`, without the ID.
fn tool(label: &str) -> String {
    format!("$LPD --partition-label {label} --volume-group {label} --pool pool --on-failure exit")
}

/// Refusing runs end with the refusal; a wrong label refuses before any disk is read.
const NO_LABEL: &str =
    "--partition-label no-such-label --volume-group nolabel --pool pool --satellite-id node-01";

const SCRIPT_IDS: &str = r#"
# IDs with stray characters. $(...) drops trailing newlines: keep them with a sentinel.
ID_NL=$(printf 'node-01\n.'); ID_NL=${ID_NL%.}
ID_CTRL=$(printf 'node\001-01')
ID_BOM=$(printf '\357\273\277node-01')
ID_ZWSP=$(printf 'node-01\342\200\213')
VGS_IDS='vgs --devices /dev/vda1 --reportformat json -o vg_name,vg_seqno,vg_tags ids'
step ids-prov $IDS --satellite-id node-01
step ids-thin lvcreate -q --type thin --virtualsize 8M --thinpool pool --name data ids
step ids-fill dd if=/dev/urandom of=/dev/mapper/ids-data bs=1M count=8 conv=fsync
step ids-sum-before sha256sum /dev/mapper/ids-data
step ids-vgs-before sh -c "$VGS_IDS"
step id-newline $IDS --satellite-id "$ID_NL"
step id-newline-env env SATELLITE_ID="$ID_NL" $IDS
step id-trailing-space $IDS --satellite-id 'node-01 '
step id-leading-space $IDS --satellite-id ' node-01'
step id-control $IDS --satellite-id "$ID_CTRL"
step id-bom env SATELLITE_ID="$ID_BOM" $IDS
step id-zwsp $IDS --satellite-id "$ID_ZWSP"
step ids-vgs-after sh -c "$VGS_IDS"
step ids-sum-after sha256sum /dev/mapper/ids-data
step ids-steady $IDS --satellite-id node-01
"#;

const SCRIPT_RETAG: &str = r#"
# A node recorded under "node-01\n", the tag in the escaped form this tool's encoding
# (and an earlier version) writes, put there with LVM's own vgchange.
VGS_RETAG='vgs --devices /dev/vdb1 --reportformat json -o vg_name,vg_seqno,vg_tags retag'
step retag-prov $RETAG --satellite-id node-01
step retag-tag vgchange --deltag linstor-satellite-id=node-01 --addtag 'linstor-satellite-id=node-01&0A' retag
step retag-thin lvcreate -q --type thin --virtualsize 8M --thinpool pool --name data retag
step retag-fill dd if=/dev/urandom of=/dev/mapper/retag-data bs=1M count=8 conv=fsync
step retag-sum-before sha256sum /dev/mapper/retag-data
step retag-vgs-before sh -c "$VGS_RETAG"
step retag-status-before $LPD status --partition-label retag --volume-group retag --pool pool --json
step retag-run $RETAG --satellite-id node-01
step retag-vgs-after sh -c "$VGS_RETAG"
step retag-sum-after sha256sum /dev/mapper/retag-data
step retag-again $RETAG --satellite-id node-01
step retag-vgs-again sh -c "$VGS_RETAG"
"#;

const SCRIPT_SEED: &str = r#"
# The seed tool's layout, its satellite-id file written from a Secret with a CRLF
# ending (a lone trailing newline was tolerated already).
step seed-layout sh -c 'pvcreate -q /dev/vdd1 && vgcreate -q seed /dev/vdd1 &&
  lvcreate -q --type thin-pool -l 100%FREE -n pool seed &&
  lvcreate -q --type thin --virtualsize 100M --thinpool pool --name metadata seed &&
  mkfs.ext4 -q /dev/mapper/seed-metadata && mount /dev/mapper/seed-metadata /mnt &&
  printf "node-01\r\n" > /mnt/satellite-id && umount /mnt &&
  lvcreate -q -V 8M -T seed/pool -n data &&
  dd if=/dev/urandom of=/dev/mapper/seed-data bs=1M count=8 conv=fsync 2>/dev/null'
step seed-sum-before sha256sum /dev/mapper/seed-data
step seed-run $SEED --satellite-id node-01
step seed-vgs vgs --devices /dev/vdd1 --reportformat json -o vg_name,vg_tags seed
step seed-sum-after sha256sum /dev/mapper/seed-data
step seed-again $SEED --satellite-id node-01
"#;

const SCRIPT_LOG_LEVEL: &str = r#"
step log-verbose env LOG_LEVEL=verbose $IDS --satellite-id node-01
step log-verbose-flag $IDS --satellite-id node-01 --log-level verbose
step log-warning env LOG_LEVEL=warning $LPD $NO_LABEL --on-failure exit
step log-warning-steady env LOG_LEVEL=warning $IDS --satellite-id node-01
step log-debug-upper env LOG_LEVEL=DEBUG $IDS --satellite-id node-01
"#;

const SCRIPT_FILES: &str = r#"
# A file already at HOLD_MARKER: never truncated. A marker-sized one is waited on;
# someone's larger file is no hold marker (rm/release would refuse it): exit 1.
printf 'precious data\n' > /tmp/held
step hold-existing timeout 20 env HOLD_MARKER=/tmp/held $LPD $NO_LABEL
step held-content cat /tmp/held
printf 'x\n' > /tmp/held-small
step hold-small timeout 20 env HOLD_MARKER=/tmp/held-small $LPD $NO_LABEL
step held-small-content cat /tmp/held-small
# release / rm remove only a small regular file.
ln -s $LPD /tmp/rm
step release-big env HOLD_MARKER=/tmp/held $LPD release
step rm-big env HOLD_MARKER=/tmp/held /tmp/rm /tmp/held
step held-still cat /tmp/held
mknod /tmp/held-dev c 1 3
step release-dev env HOLD_MARKER=/tmp/held-dev $LPD release
step rm-dev env HOLD_MARKER=/tmp/held-dev /tmp/rm -f /tmp/held-dev
step held-dev-still stat -c %F /tmp/held-dev
mkdir /tmp/held-dir
step release-dir env HOLD_MARKER=/tmp/held-dir $LPD release
step held-dir-still stat -c %F /tmp/held-dir
touch /tmp/held-ok
step release-ok env HOLD_MARKER=/tmp/held-ok $LPD release
step held-ok-gone sh -c '! test -e /tmp/held-ok'
# The termination log: never through a symlink, never into a block device.
printf keep > /tmp/term-target
ln -s /tmp/term-target /tmp/term-link
step term-link $LPD $NO_LABEL --on-failure exit --termination-log /tmp/term-link
step term-target cat /tmp/term-target
mknod /tmp/term-disk b $(cut -d: -f1 /sys/class/block/vdc1/dev) $(cut -d: -f2 /sys/class/block/vdc1/dev)
step disk-sum-before sum_head 1048576 /dev/vdc1
step term-disk $LPD $NO_LABEL --on-failure exit --termination-log /tmp/term-disk
step disk-sum-after sum_head 1048576 /dev/vdc1
: > /tmp/term-file
step term-file $LPD $NO_LABEL --on-failure exit --termination-log /tmp/term-file
step term-file-content cat /tmp/term-file
# --dry-run never holds.
step dry-refusal timeout 60 env HOLD_MARKER=/tmp/dry-held $LPD $NO_LABEL --dry-run
step dry-no-marker sh -c '! test -e /tmp/dry-held'
"#;

#[test]
fn operator_inputs_never_cost_a_node_its_data() {
    let bed = bed(vec![
        DiskSpec::new("ids", 256).partition("ids", None),
        DiskSpec::new("retag", 256).partition("retag", None),
        DiskSpec::new("scratch", 64).partition("scratch", None),
        DiskSpec::new("seed", 256).partition("seed", None),
    ]);
    let script = format!(
        "IDS=\"{}\"\nRETAG=\"{}\"\nSEED=\"{}\"\nNO_LABEL='{NO_LABEL}'\n{SCRIPT_IDS}{SCRIPT_RETAG}{SCRIPT_SEED}{SCRIPT_LOG_LEVEL}{SCRIPT_FILES}",
        tool("ids"),
        tool("retag"),
        tool("seed"),
    );
    let run = boot(&bed, false, &script);
    // For the record: what the operator sees (the line naming `needle`, else the last).
    for (step, needle) in [
        ("id-newline", ""),
        ("id-leading-space", ""),
        ("id-control", ""),
        ("retag-run", "re-tagging"),
        ("log-verbose", "invalid value"),
        ("release-big", ""),
        ("hold-existing", "not holding on"),
        ("hold-small", "holding"),
    ] {
        let s = run.step(step);
        let mut lines = s.stderr.lines().filter(|l| !l.trim().is_empty());
        let line = lines
            .clone()
            .find(|l| !needle.is_empty() && l.contains(needle))
            .or_else(|| lines.next_back())
            .unwrap_or_default();
        eprintln!("{step} (exit {}): {line}", s.exit_code);
    }
    for step in ["retag-vgs-before", "retag-vgs-after", "retag-vgs-again"] {
        eprintln!(
            "{step}: seqno {} tags {}",
            seqno(&run, step),
            tags(&run, step)
        );
    }
    let mut checks = Checks::default();
    stray_ids_are_refused_before_anything_is_read(&run, &mut checks);
    a_recorded_id_with_a_newline_is_re_tagged_once(&run, &mut checks);
    a_seed_file_with_a_newline_is_adopted(&run, &mut checks);
    log_levels_are_checked(&run, &mut checks);
    files_the_tool_did_not_create_are_left_alone(&run, &mut checks);
    checks.finish();
}

fn seqno(run: &GuestRun, step: &str) -> u64 {
    number(&vg_row(run, step)["vg_seqno"])
}

fn tags(run: &GuestRun, step: &str) -> String {
    text(&vg_row(run, step)["vg_tags"])
}

fn stray_ids_are_refused_before_anything_is_read(run: &GuestRun, checks: &mut Checks) {
    expect_provisioned(run, "ids-prov");
    run.expect_success("ids-thin");
    run.expect_success("ids-fill");
    for (step, says) in [
        (
            "id-newline",
            "U+000A (line feed) at the end (character 8, byte offset 7)",
        ),
        ("id-newline-env", "a Secret or ConfigMap made from a file"),
        ("id-trailing-space", "U+0020 (space) at the end"),
        ("id-leading-space", "U+0020 (space) at the start"),
        ("id-control", "U+0001 at character 5 (byte offset 4)"),
        ("id-bom", "U+FEFF"),
        ("id-zwsp", "U+200B"),
    ] {
        checks.exit(run, step, 2);
        checks.says(run, step, says);
        checks.that(
            !run.step(step).stderr.contains("resolved partition"),
            format!(
                "{step}: read the disk before refusing:\n{}",
                run.step(step).stderr
            ),
        );
    }
    checks.that(
        seqno(run, "ids-vgs-before") == seqno(run, "ids-vgs-after")
            && tags(run, "ids-vgs-after") == "linstor-satellite-id=node-01",
        format!(
            "the refused IDs changed the VG: {} → {}",
            run.step("ids-vgs-before").stdout,
            run.step("ids-vgs-after").stdout
        ),
    );
    checks.same(run, "ids-sum-before", "ids-sum-after");
    checks.steady(run, "ids-steady");
}

fn a_recorded_id_with_a_newline_is_re_tagged_once(run: &GuestRun, checks: &mut Checks) {
    expect_provisioned(run, "retag-prov");
    run.expect_success("retag-tag");
    run.expect_success("retag-thin");
    run.expect_success("retag-fill");
    let before = json(run, "retag-status-before");
    checks.that(
        before["physical_volume"]["volume_group"]["satellite_id"]["value"] == "node-01\n",
        format!("the tag does not read as node-01\\n: {before}"),
    );
    checks.that(
        tags(run, "retag-vgs-before") == "linstor-satellite-id=node-01&0A",
        format!("set-up: {}", run.step("retag-vgs-before").stdout),
    );
    let step = "retag-run";
    checks.exit(run, step, 0);
    checks.says(run, step, "lvm_commands=1");
    checks.says(run, step, "re-tagging volume group");
    checks.says(run, step, "old_tag=linstor-satellite-id=node-01&0A");
    checks.says(run, step, "new_tag=linstor-satellite-id=node-01");
    checks.that(
        !run.step(step).stderr.contains("satellite id mismatch"),
        format!("{step} reset the node:\n{}", run.step(step).stderr),
    );
    checks.that(
        seqno(run, "retag-vgs-after") == seqno(run, "retag-vgs-before") + 1,
        format!(
            "not one metadata write: {} → {}",
            run.step("retag-vgs-before").stdout,
            run.step("retag-vgs-after").stdout
        ),
    );
    checks.that(
        tags(run, "retag-vgs-after") == "linstor-satellite-id=node-01",
        format!("tags after: {}", run.step("retag-vgs-after").stdout),
    );
    checks.same(run, "retag-sum-before", "retag-sum-after");
    checks.steady(run, "retag-again");
    checks.that(
        seqno(run, "retag-vgs-again") == seqno(run, "retag-vgs-after"),
        "the start after the re-tag wrote",
    );
}

fn a_seed_file_with_a_newline_is_adopted(run: &GuestRun, checks: &mut Checks) {
    run.expect_success("seed-layout");
    let step = "seed-run";
    checks.exit(run, step, 0);
    checks.that(
        !run.step(step).stderr.contains("satellite id mismatch"),
        format!("{step} reset the seed node:\n{}", run.step(step).stderr),
    );
    checks.that(
        tags(run, "seed-vgs") == "linstor-satellite-id=node-01",
        format!("seed tags: {}", run.step("seed-vgs").stdout),
    );
    checks.same(run, "seed-sum-before", "seed-sum-after");
    checks.steady(run, "seed-again");
}

fn log_levels_are_checked(run: &GuestRun, checks: &mut Checks) {
    for step in ["log-verbose", "log-verbose-flag"] {
        checks.exit(run, step, 2);
        checks.says(run, step, "verbose");
        checks.says(run, step, "error, warn, info, debug, trace");
    }
    // warn level: the refusal is logged, info lines are not.
    checks.exit(run, "log-warning", 1);
    checks.says(run, "log-warning", "no-such-label");
    checks.exit(run, "log-warning-steady", 0);
    checks.that(
        !run.step("log-warning-steady")
            .stderr
            .contains("completed successfully"),
        "LOG_LEVEL=warning logged info lines",
    );
    checks.exit(run, "log-debug-upper", 0);
    checks.says(run, "log-debug-upper", "completed successfully");
}

fn files_the_tool_did_not_create_are_left_alone(run: &GuestRun, checks: &mut Checks) {
    // busybox timeout: 124, or the TERM signal's 143 when the child is killed.
    let hold = run.step("hold-small");
    checks.that(
        matches!(hold.exit_code, 124 | 143),
        format!(
            "hold-small did not hold (exit {}):\n{}",
            hold.exit_code, hold.stderr
        ),
    );
    checks.says(run, "hold-small", "holding on the existing /tmp/held-small");
    checks.that(
        run.step("held-small-content").stdout == "x\n",
        "held-small-content: the marker-sized file at HOLD_MARKER changed",
    );
    // A larger file is no marker: no hold that nothing in the image could release.
    checks.exit(run, "hold-existing", 1);
    checks.says(
        run,
        "hold-existing",
        "not holding on /tmp/held, which `rm` and `release` would not remove: refusing to remove /tmp/held: it is a file of 14 bytes",
    );
    for step in ["held-content", "held-still"] {
        checks.that(
            run.step(step).stdout == "precious data\n",
            format!(
                "{step}: the file at HOLD_MARKER changed: {:?}",
                run.step(step).stdout
            ),
        );
    }
    for (step, says) in [
        ("release-big", "a file of 14 bytes"),
        ("release-dev", "not a regular file"),
        ("release-dir", "a folder"),
    ] {
        checks.exit(run, step, 1);
        checks.says(run, step, says);
        checks.says(run, step, "refusing to remove /tmp/held");
    }
    for step in ["rm-big", "rm-dev"] {
        checks.exit(run, step, 1);
        checks.says(run, step, "refusing to remove /tmp/held");
    }
    checks.that(
        run.step("held-dev-still").stdout.trim() == "character special file",
        format!("the device node is gone: {:?}", run.step("held-dev-still")),
    );
    checks.that(
        run.step("held-dir-still").stdout.trim() == "directory",
        "the folder is gone",
    );
    checks.exit(run, "release-ok", 0);
    checks.exit(run, "held-ok-gone", 0);

    checks.exit(run, "term-link", 1);
    checks.that(
        run.step("term-target").stdout == "keep",
        format!(
            "written through the symlink: {:?}",
            run.step("term-target").stdout
        ),
    );
    checks.exit(run, "term-disk", 1);
    checks.same(run, "disk-sum-before", "disk-sum-after");
    checks.exit(run, "term-file", 1);
    checks.that(
        run.step("term-file-content")
            .stdout
            .contains("no-such-label"),
        format!(
            "the regular termination log lacks the reason: {:?}",
            run.step("term-file-content").stdout
        ),
    );

    checks.exit(run, "dry-refusal", 1);
    checks.says(run, "dry-refusal", "no-such-label");
    checks.exit(run, "dry-no-marker", 0);
}
