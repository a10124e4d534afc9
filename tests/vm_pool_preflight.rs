//! What only the later LVM commands of a reset check, checked before the first one.
//! Each partition is provisioned for satellite `A` (with a thin LV holding data),
//! then something the hostile review of LVM2 2.03.16 found is put in place, and a
//! reset to `B` must be refused with nothing written — where, before, `lvremove` and
//! `vgremove` ran and the pool's `lvcreate` (or `pvremove`) refused afterwards:
//!
//! - md 1.0 magic (four bytes, no valid superblock: libblkid sees nothing) where
//!   LVM's full md check reads it, 8 KiB from the end;
//! - the host's `activation/volume_list` not admitting the VG;
//! - `allocation/thin_pool_metadata_require_separate_pvs = 1`;
//! - a chunk size larger than the partition's data space;
//! - an extent size (`allocation/physical_extent_size`) that leaves no room for
//!   the pool's metadata, its spare and data;
//!
//! - no thin-pool target in the kernel and no modprobe where LVM runs it;
//!
//! and a `volume_list` that names the VG still provisions (no refusal where LVM
//! would succeed). The settings go into `/etc/lvm/lvmlocal.conf`, which both LVM and
//! the tool read, and are removed before the guest's own LVM checks the result.
mod common;

use common::*;
use vmtest::{DiskSpec, GuestRun};

fn run_line(step: &str, label: &str, id: &str, env: &str) -> String {
    format!(
        "step {step} env {env} $LPD --partition-label {label} --volume-group {label} \
         --pool pool --satellite-id {id} --on-failure exit\n"
    )
}

/// A thin LV with 8 MiB of random data, its checksum, and the VG's report.
fn provision_with_data(prefix: &str, vg: &str) -> String {
    let dm = format!("/dev/mapper/{}-data", vg.replace('-', "--"));
    let mut s = run_line(&format!("{prefix}-prov"), vg, "A", "");
    s += &format!(
        "step {prefix}-thin lvcreate -V 64m -T {vg}/pool -n data\n\
         step {prefix}-write dd if=/dev/urandom of={dm} bs=1M count=8 conv=fsync\n\
         step {prefix}-sum-before sum_head 8388608 {dm}\n\
         step {prefix}-vgs-before {VGS} {vg}\n\
         step {prefix}-lvs-before {LVS} {vg}\n"
    );
    s
}

/// The VG's report and the thin LV's checksum after the refused run.
fn after(prefix: &str, vg: &str) -> String {
    let dm = format!("/dev/mapper/{}-data", vg.replace('-', "--"));
    format!(
        "step {prefix}-vgs-after {VGS} {vg}\n\
         step {prefix}-lvs-after {LVS} {vg}\n\
         step {prefix}-on lvchange -ay {vg}/data\n\
         step {prefix}-sum-after sum_head 8388608 {dm}\n"
    )
}

/// Writes `text` as /etc/lvm/lvmlocal.conf and shows what LVM reads of `setting`.
fn local_conf(prefix: &str, text: &str, setting: &str) -> String {
    format!(
        "step {prefix}-conf sh -c 'printf \"%s\\n\" \"{text}\" > /etc/lvm/lvmlocal.conf'\n\
         step {prefix}-lvmconfig lvmconfig {setting}\n"
    )
}

const VGS: &str = "vgs --reportformat json -o vg_name,vg_seqno,vg_tags,vg_uuid,lv_count";
const LVS: &str = "lvs --reportformat json -o lv_name,lv_uuid";
const NO_LOCAL_CONF: &str = "rm -f /etc/lvm/lvmlocal.conf";

fn script() -> String {
    let mut s = String::new();
    // md 1.0 magic alone at LVM's offset: ((sectors - 16) & ~7) × 512.
    s += &provision_with_data("md", "pp-md");
    s += "step md-magic sh -c 'S=$(blockdev --getsz /dev/vda1); \
          printf \"\\374\\116\\053\\251\" | dd of=/dev/vda1 bs=1 seek=$(( ((S - 16) & ~7) * 512 )) \
          conv=notrunc,fsync'\n";
    s += "step md-wipefs wipefs /dev/vda1\n";
    s += &run_line("md-reset", "pp-md", "B", "");
    s += &after("md", "pp-md");

    // volume_list without the VG.
    s += &provision_with_data("vl", "pp-vl");
    s += &local_conf(
        "vl",
        "activation { volume_list = [ \\\"nosuchvg\\\" ] }",
        "activation/volume_list",
    );
    s += &run_line("vl-reset", "pp-vl", "B", "");
    s += &format!("step vl-unconf {NO_LOCAL_CONF}\n");
    s += &after("vl", "pp-vl");

    // Pool metadata on a separate PV required.
    s += &provision_with_data("sp", "pp-sep");
    s += &local_conf(
        "sp",
        "allocation { thin_pool_metadata_require_separate_pvs = 1 }",
        "allocation/thin_pool_metadata_require_separate_pvs",
    );
    s += &run_line("sp-reset", "pp-sep", "B", "");
    s += &format!("step sp-unconf {NO_LOCAL_CONF}\n");
    s += &after("sp", "pp-sep");

    // A 1 GiB chunk on a 256 MiB partition.
    s += &provision_with_data("ch", "pp-chunk");
    s += &run_line("ch-reset", "pp-chunk", "B", "CHUNK_SIZE=1G");
    s += &after("ch", "pp-chunk");

    // 128 MiB extents on a 256 MiB partition: one extent for pool, metadata, spare.
    s += &provision_with_data("ex", "pp-ext");
    s += &local_conf(
        "ex",
        "allocation { physical_extent_size = 131072 }",
        "allocation/physical_extent_size",
    );
    s += &run_line("ex-reset", "pp-ext", "B", "");
    s += &format!("step ex-unconf {NO_LOCAL_CONF}\n");
    s += &after("ex", "pp-ext");

    // A volume_list that admits the VG: provisioning goes ahead.
    s += &local_conf(
        "ok",
        "activation { volume_list = [ \\\"pp-ok\\\" ] }",
        "activation/volume_list",
    );
    s += &run_line("ok-prov", "pp-ok", "A", "");
    s += &format!("step ok-unconf {NO_LOCAL_CONF}\n");
    s += &format!("step ok-vgs {VGS} pp-ok\n");

    // No thin-pool target and no modprobe (a container image): every pool in the
    // guest deactivated, the module unloaded, modprobe moved away.
    s += &run_line("tt-prov", "pp-target", "A", "");
    s += "step tt-all-off vgchange -an\n";
    s += "step tt-rmmod rmmod dm_thin_pool\n";
    s += "step tt-hide sh -c 'for p in /usr/sbin/modprobe /sbin/modprobe; do \
          if [ -e $p ]; then mv $p $p.off; fi; done'\n";
    s += "step tt-targets dmsetup targets\n";
    s += &format!("step tt-vgs-before {VGS} pp-target\n");
    s += &run_line("tt-reset", "pp-target", "B", "");
    s += "step tt-unhide sh -c 'for p in /usr/sbin/modprobe /sbin/modprobe; do \
          if [ -e $p.off ]; then mv $p.off $p; fi; done'\n";
    s += &format!("step tt-vgs-after {VGS} pp-target\n");
    s
}

/// The VG, its LVs and the thin LV's data are as they were before `prefix`'s run.
fn untouched(checks: &mut Checks, run: &GuestRun, prefix: &str) {
    checks.same(
        run,
        &format!("{prefix}-vgs-before"),
        &format!("{prefix}-vgs-after"),
    );
    checks.same(
        run,
        &format!("{prefix}-lvs-before"),
        &format!("{prefix}-lvs-after"),
    );
    checks.exit(run, &format!("{prefix}-on"), 0);
    checks.same(
        run,
        &format!("{prefix}-sum-before"),
        &format!("{prefix}-sum-after"),
    );
}

#[test]
fn a_reset_lvm_could_not_finish_is_refused_before_it_starts() {
    let bed = bed(vec![
        DiskSpec::new("pp-md", 256).partition("pp-md", None),
        DiskSpec::new("pp-vl", 256).partition("pp-vl", None),
        DiskSpec::new("pp-sep", 256).partition("pp-sep", None),
        DiskSpec::new("pp-chunk", 256).partition("pp-chunk", None),
        DiskSpec::new("pp-ext", 256).partition("pp-ext", None),
        DiskSpec::new("pp-ok", 256).partition("pp-ok", None),
        DiskSpec::new("pp-target", 256).partition("pp-target", None),
    ]);
    let run = boot(&bed, false, &script());
    for prefix in ["md", "vl", "sp", "ch", "ex"] {
        expect_provisioned(&run, &format!("{prefix}-prov"));
        for step in ["thin", "write", "sum-before"] {
            run.expect_success(&format!("{prefix}-{step}"));
        }
    }
    for step in [
        "md-magic",
        "vl-conf",
        "vl-unconf",
        "sp-conf",
        "sp-unconf",
        "ex-conf",
        "ex-unconf",
        "ok-conf",
        "ok-unconf",
    ] {
        run.expect_success(step);
    }
    let mut checks = Checks::default();
    // The guest's LVM reads the settings the tool must weigh.
    for (step, value) in [
        ("vl-lvmconfig", "nosuchvg"),
        ("sp-lvmconfig", "thin_pool_metadata_require_separate_pvs=1"),
        ("ex-lvmconfig", "physical_extent_size=131072"),
        ("ok-lvmconfig", "pp-ok"),
    ] {
        checks.that(
            run.expect_success(step).stdout.contains(value),
            format!(
                "{step}: LVM does not read {value}: {}",
                run.step(step).stdout
            ),
        );
    }

    // libblkid sees no md superblock (only the magic is there); LVM's check would.
    let listed = &run.expect_success("md-wipefs").stdout;
    checks.that(
        listed.contains("LVM2_member") && !listed.contains("linux_raid_member"),
        format!("md-wipefs: expected only our label:\n{listed}"),
    );
    checks.refused_before_lvm(
        &run,
        "md-reset",
        &["md 1.0 metadata magic at byte", "mdadm --examine /dev/vda1"],
    );
    untouched(&mut checks, &run, "md");

    checks.refused_before_lvm(
        &run,
        "vl-reset",
        &[
            "activation/volume_list",
            "\"nosuchvg\"",
            "Nothing was written",
        ],
    );
    untouched(&mut checks, &run, "vl");

    checks.refused_before_lvm(
        &run,
        "sp-reset",
        &["thin_pool_metadata_require_separate_pvs"],
    );
    untouched(&mut checks, &run, "sp");

    checks.refused_before_lvm(&run, "ch-reset", &["a chunk size of 1 GiB is larger than"]);
    untouched(&mut checks, &run, "ch");

    checks.refused_before_lvm(
        &run,
        "ex-reset",
        &["room for 1 extents of 128 MiB", "physical_extent_size"],
    );
    untouched(&mut checks, &run, "ex");

    // No thin-pool target LVM could load.
    expect_provisioned(&run, "tt-prov");
    for step in ["tt-all-off", "tt-rmmod", "tt-hide", "tt-unhide"] {
        run.expect_success(step);
    }
    checks.that(
        !run.expect_success("tt-targets")
            .stdout
            .contains("thin-pool"),
        format!(
            "tt-targets: thin-pool still registered:\n{}",
            run.step("tt-targets").stdout
        ),
    );
    checks.refused_before_lvm(
        &run,
        "tt-reset",
        &["no device-mapper thin-pool target", "modprobe dm_thin_pool"],
    );
    checks.same(&run, "tt-vgs-before", "tt-vgs-after");

    // Admitted by name: provisioned and tagged.
    expect_provisioned(&run, "ok-prov");
    checks.that(
        text(&vg_row(&run, "ok-vgs")["vg_tags"]) == "linstor-satellite-id=A",
        "ok-vgs: the VG admitted by volume_list was not provisioned for A",
    );
    checks.finish();
}
