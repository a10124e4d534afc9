//! Preflight, then destroy: before the first command of a plan that writes, the tool
//! establishes that every later step will be allowed, and refuses with nothing
//! written otherwise. Each partition is provisioned for satellite `A`, then:
//!
//! - an md 1.0 superblock written at its end beside the LVM label (mdadm, then the
//!   array stopped): a reset (`B`) is refused naming the md superblock — LVM's own
//!   `pvremove` would refuse only after `lvremove`/`vgremove` — the VG, its LVs and
//!   seqno unchanged and a thin LV's data intact; after the `wipefs --types` the
//!   message suggests, the reset goes through;
//! - an md array assembled on it: a reset is refused, with `FORCE` too;
//! - made read-only (`blockdev --setro`): a reset is refused before LVM runs,
//!   the pool stays active;
//! - a swap signature copied beside the label: a reset is refused;
//! - grown on the host between two boots, with an md 1.0 superblock at the new end:
//!   the grow (`A`) is refused, the PV keeps its size;
//! - healthy: a steady start probes nothing and writes nothing.
mod common;

use common::*;
use vmtest::{DiskSpec, GuestRun};

/// `step <name> <a provisioning run of partition <label> for satellite <id>>`.
fn run_line(step: &str, label: &str, id: &str, env: &str) -> String {
    format!(
        "step {step} env LOG_LEVEL=debug {env} $LPD --partition-label {label} --volume-group {label} \
         --pool pool --satellite-id {id} --on-failure exit\n"
    )
}

/// Steps that write 8 MiB of random data to a new thin LV `data` of VG `vg` and
/// record its checksum, then deactivate the VG (mdadm needs the partition free).
fn thin_data(prefix: &str, vg: &str) -> String {
    let dm = format!("/dev/mapper/{}-data", vg.replace('-', "--"));
    format!(
        "step {prefix}-thin lvcreate -V 64m -T {vg}/pool -n data\n\
         step {prefix}-write dd if=/dev/urandom of={dm} bs=1M count=8 conv=fsync\n\
         step {prefix}-sum-before sum_head 8388608 {dm}\n\
         step {prefix}-off vgchange -an {vg}\n"
    )
}

/// Steps that activate `data` again and checksum it.
fn thin_sum_after(prefix: &str, vg: &str) -> String {
    let dm = format!("/dev/mapper/{}-data", vg.replace('-', "--"));
    format!(
        "step {prefix}-on lvchange -ay {vg}/data\n\
         step {prefix}-sum-after sum_head 8388608 {dm}\n"
    )
}

fn md_1_0(step: &str, md: &str, part: &str) -> String {
    format!(
        "step {step} mdadm --create {md} --run --level=1 --raid-devices=2 --metadata=1.0 \
         --bitmap=none {part} missing\n"
    )
}

const VGS: &str = "vgs --reportformat json -o vg_name,vg_seqno,vg_tags,lv_count";
const LVS: &str = "lvs --reportformat json -o lv_name";
const PVS: &str = "pvs --reportformat json --units b --nosuffix -o pv_name,pv_size";

fn script() -> String {
    let mut s = String::from("step modules modprobe -a md_mod raid1\n");
    // md 1.0 beside the label, then a reset (the case).
    s += &run_line("md-prov", "pf-md", "A", "");
    s += &thin_data("md", "pf-md");
    s += &md_1_0("md-create", "/dev/md0", "/dev/vda1");
    s += "step md-stop mdadm --stop /dev/md0\n";
    s += "step md-wipefs wipefs /dev/vda1\n";
    s += &format!("step md-vgs-before {VGS} pf-md\n");
    s += &format!("step md-lvs-before {LVS} pf-md\n");
    s += "step md-dry $LPD --partition-label pf-md --volume-group pf-md --pool pool \
          --satellite-id B --on-failure exit --dry-run\n";
    s += &run_line("md-reset", "pf-md", "B", "");
    s += &run_line("md-forced", "pf-md", "B", "FORCE=true");
    s += &format!("step md-vgs-after {VGS} pf-md\n");
    s += &format!("step md-lvs-after {LVS} pf-md\n");
    s += &thin_sum_after("md", "pf-md");
    s += "step md-off-again vgchange -an pf-md\n";
    s += "step md-wipe wipefs --all --types linux_raid_member /dev/vda1\n";
    s += &run_line("md-reset-wiped", "pf-md", "B", "");
    s += &format!("step md-vgs-wiped {VGS} pf-md\n");

    // An assembled md array on the partition.
    s += &run_line("arr-prov", "pf-array", "A", "");
    s += "step arr-off vgchange -an pf-array\n";
    s += &md_1_0("arr-create", "/dev/md1", "/dev/vdb1");
    s += "step arr-holders ls /sys/class/block/vdb1/holders\n";
    s += &format!("step arr-vgs-before {VGS} pf-array\n");
    s += &run_line("arr-reset", "pf-array", "B", "");
    s += &run_line("arr-forced", "pf-array", "B", "FORCE=true");
    s += "step arr-stop mdadm --stop /dev/md1\n";
    s += &format!("step arr-vgs-after {VGS} pf-array\n");

    // Read-only.
    s += &run_line("ro-prov", "pf-ro", "A", "");
    s += &format!("step ro-vgs-before {VGS} pf-ro\n");
    s += "step ro-set blockdev --setro /dev/vdc1\n";
    s += "step ro-get blockdev --getro /dev/vdc1\n";
    s += &run_line("ro-reset", "pf-ro", "B", "");
    s += "step ro-dm dmsetup ls\n";
    s += "step ro-setrw blockdev --setrw /dev/vdc1\n";
    s += &format!("step ro-vgs-after {VGS} pf-ro\n");

    // Swap beside the label: sectors 2-7 of a swap area (its header at 1024 and
    // SWAPSPACE2 at 4086) copied from a scratch partition; the LVM label (sector 1)
    // and metadata area (from 4096) are untouched.
    s += &run_line("sw-prov", "pf-swap", "A", "");
    s += "step sw-src mkswap /dev/vdd2\n";
    s += "step sw-copy dd if=/dev/vdd2 of=/dev/vdd1 bs=512 skip=2 seek=2 count=6 \
          conv=notrunc,fsync\n";
    s += "step sw-wipefs wipefs /dev/vdd1\n";
    s += &format!("step sw-vgs-before {VGS} pf-swap\n");
    s += &run_line("sw-reset", "pf-swap", "B", "");
    s += &format!("step sw-vgs-after {VGS} pf-swap\n");

    // To be grown between the boots: provisioned, data written, deactivated.
    s += &run_line("gr-prov", "pf-grow", "A", "");
    s += &thin_data("gr", "pf-grow");
    s += &format!("step gr-vgs-before {VGS} pf-grow\n");
    s += &format!("step gr-pvs-before {PVS} /dev/vde1\n");

    // A healthy node's steady start.
    s += &run_line("st-prov", "pf-steady", "A", "");
    s += &format!("step st-vgs-before {VGS} pf-steady\n");
    s += &run_line("st-steady", "pf-steady", "A", "");
    s += &format!("step st-vgs-after {VGS} pf-steady\n");
    s
}

/// LVM's own commands in the second boot: with the device larger than the PV, LVM's
/// "auto" md check looks at the end too and would hide the PV from the checks.
const NO_MD_CHECK: &str = "--config devices{md_component_detection=0}";

/// The second boot: the partition doubled on the host, an md 1.0 superblock at its
/// new end, then a start with the same satellite ID (a grow).
fn grow_script() -> String {
    let mut s = String::from("step modules modprobe -a md_mod raid1\n");
    s += &md_1_0("gr-md", "/dev/md2", "/dev/vde1");
    s += "step gr-md-stop mdadm --stop /dev/md2\n";
    s += "step gr-size blockdev --getsize64 /dev/vde1\n";
    s += &format!("step gr-vgs-between {VGS} {NO_MD_CHECK} pf-grow\n");
    s += &format!("step gr-pvs-between {PVS} {NO_MD_CHECK} /dev/vde1\n");
    s += "step gr-dry $LPD --partition-label pf-grow --volume-group pf-grow --pool pool \
          --satellite-id A --on-failure exit --dry-run\n";
    s += &run_line("gr-run", "pf-grow", "A", "");
    s += &format!("step gr-vgs-after {VGS} {NO_MD_CHECK} pf-grow\n");
    s += &format!("step gr-pvs-after {PVS} {NO_MD_CHECK} /dev/vde1\n");
    s += "step gr-on lvchange -ay --config devices{md_component_detection=0} pf-grow/data\n";
    s += "step gr-sum-after sum_head 8388608 /dev/mapper/pf--grow-data\n";
    s
}

/// The start timings line a debug run logs.
fn timings(run: &GuestRun, step: &str) -> String {
    run.step(step)
        .stderr
        .lines()
        .find(|l| l.contains("start timings"))
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn plans_that_write_are_refused_before_anything_is_written() {
    let bed = bed(vec![
        DiskSpec::new("pf-md", 256).partition("pf-md", None),
        DiskSpec::new("pf-array", 256).partition("pf-array", None),
        DiskSpec::new("pf-ro", 256).partition("pf-ro", None),
        DiskSpec::new("pf-swap", 512)
            .partition("pf-swap", Some(256))
            .partition("pf-swap-src", None),
        DiskSpec::new("pf-grow", 256).partition("pf-grow", None),
        DiskSpec::new("pf-steady", 256).partition("pf-steady", None),
    ]);
    let run = boot(&bed, false, &script());
    for step in [
        "modules",
        "md-thin",
        "md-write",
        "md-off",
        "md-create",
        "md-stop",
        "arr-off",
        "arr-create",
        "arr-stop",
        "ro-set",
        "ro-setrw",
        "sw-src",
        "sw-copy",
        "gr-thin",
        "gr-write",
        "gr-off",
    ] {
        run.expect_success(step);
    }
    for step in [
        "md-prov", "arr-prov", "ro-prov", "sw-prov", "gr-prov", "st-prov",
    ] {
        expect_provisioned(&run, step);
    }
    let mut checks = Checks::default();

    // md 1.0 beside the label: both signatures are there, the reset is refused
    // (also forced and dry), the VG is as it was, the thin LV's data intact.
    let listed = &run.expect_success("md-wipefs").stdout;
    checks.that(
        listed.contains("LVM2_member") && listed.contains("linux_raid_member"),
        format!("md-wipefs: expected both signatures:\n{listed}"),
    );
    for step in ["md-reset", "md-forced"] {
        checks.refused_before_lvm(
            &run,
            step,
            &[
                "linux_raid_member",
                "md component",
                "wipefs --all --types linux_raid_member /dev/vda1",
            ],
        );
    }
    checks.exit(&run, "md-dry", 1);
    checks.says(&run, "md-dry", "linux_raid_member");
    checks.same(&run, "md-vgs-before", "md-vgs-after");
    checks.same(&run, "md-lvs-before", "md-lvs-after");
    checks.exit(&run, "md-on", 0);
    checks.same(&run, "md-sum-before", "md-sum-after");
    // The suggested wipefs removes only the md superblock: the reset then works.
    checks.exit(&run, "md-off-again", 0);
    checks.exit(&run, "md-wipe", 0);
    expect_provisioned(&run, "md-reset-wiped");
    // A reset (a plan that writes) is decided with the preflight pass.
    let line = timings(&run, "md-reset-wiped");
    checks.that(
        line.contains("probe_signatures=") && line.contains("preflight="),
        format!("md-reset-wiped: the reset ran no preflight: {line:?}"),
    );
    checks.that(
        text(&vg_row(&run, "md-vgs-wiped")["vg_tags"]) == "linstor-satellite-id=B",
        "md-vgs-wiped: the reset after wipefs did not tag the VG for B",
    );

    // An assembled array: refused, FORCE or not; nothing written.
    checks.that(
        run.expect_success("arr-holders").stdout.trim() == "md1",
        format!(
            "arr-holders: md1 should hold vdb1: {:?}",
            run.step("arr-holders").stdout
        ),
    );
    for step in ["arr-reset", "arr-forced"] {
        checks.refused_before_lvm(
            &run,
            step,
            &[
                "md1 (an assembled md raid array)",
                "--force does not override",
            ],
        );
    }
    checks.same(&run, "arr-vgs-before", "arr-vgs-after");

    // Read-only: refused before LVM runs; the pool is still active.
    checks.that(
        run.expect_success("ro-get").stdout.trim() == "1",
        "ro-get: blockdev --setro did not take",
    );
    checks.refused_before_lvm(
        &run,
        "ro-reset",
        &["/dev/vdc1 is read-only (", "blockdev --setrw /dev/vdc1"],
    );
    checks.that(
        run.expect_success("ro-dm")
            .stdout
            .lines()
            .any(|l| l.split_whitespace().next() == Some("pf--ro-pool")),
        format!(
            "ro-dm: the pool is no longer active:\n{}",
            run.step("ro-dm").stdout
        ),
    );
    checks.same(&run, "ro-vgs-before", "ro-vgs-after");

    // Swap beside the label.
    let listed = &run.expect_success("sw-wipefs").stdout;
    checks.that(
        listed.contains("LVM2_member") && listed.contains("swap"),
        format!("sw-wipefs: expected both signatures:\n{listed}"),
    );
    checks.refused_before_lvm(
        &run,
        "sw-reset",
        &[
            "swap (other) at byte 4086",
            "wipefs --all --types swap /dev/vdd1",
        ],
    );
    checks.same(&run, "sw-vgs-before", "sw-vgs-after");

    // Steady: no probe, no preflight, no command, seqno unchanged.
    checks.steady(&run, "st-steady");
    let line = timings(&run, "st-steady");
    checks.that(
        !line.is_empty() && !line.contains("probe_signatures=") && !line.contains("preflight="),
        format!("st-steady: a steady start must not probe: {line:?}"),
    );
    checks.same(&run, "st-vgs-before", "st-vgs-after");

    // The grow, in a second boot: the partition doubled on the host, md 1.0 at
    // its new end; refused, the PV and VG unchanged, the data intact.
    grow_disk(&bed.disk_path("pf-grow"), "512M", "pf-grow");
    let second = boot(&bed, false, &grow_script());
    for step in ["modules", "gr-md", "gr-md-stop"] {
        second.expect_success(step);
    }
    checks.that(
        second
            .expect_success("gr-size")
            .stdout
            .trim()
            .parse::<u64>()
            .ok()
            > Some(400 << 20),
        format!(
            "gr-size: the partition did not grow: {}",
            second.step("gr-size").stdout
        ),
    );
    // The same VG and PV as the first boot left them (seqno, size).
    for (first, between) in [
        ("gr-vgs-before", "gr-vgs-between"),
        ("gr-pvs-before", "gr-pvs-between"),
    ] {
        checks.that(
            run.step(first).stdout == second.step(between).stdout,
            format!("{between}: not what the first boot left"),
        );
    }
    checks.exit(&second, "gr-dry", 1);
    checks.refused_before_lvm(
        &second,
        "gr-run",
        &[
            "linux_raid_member",
            "/dev/vde1 carries this tool's LVM label",
        ],
    );
    checks.same(&second, "gr-vgs-between", "gr-vgs-after");
    checks.same(&second, "gr-pvs-between", "gr-pvs-after");
    checks.exit(&second, "gr-on", 0);
    checks.that(
        run.step("gr-sum-before").stdout == second.step("gr-sum-after").stdout,
        "gr-sum-after: the thin LV's data changed",
    );
    checks.finish();
}
