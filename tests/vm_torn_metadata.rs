//! Torn metadata commits made for real in the guest: the metadata area saved with
//! `dd`, the next LVM write run, then the old buffer bytes put back while the new
//! header sector stays — "header written, text not", what a power loss before the
//! disk flushed its cache leaves. LVM then reads VG `[unknown]` forever. The tool:
//! - restores its own VG from the copy committed just before the torn one (`pvck
//!   --repair`, confined to the partition by a device filter) and finishes an
//!   interrupted first provision;
//! - restores a same-ID node's VG with its thin volume, data byte-for-byte, no reset;
//! - starts over after a torn `vgcreate` (the area's first text);
//! - restores the newest intact copy when the one before the torn commit is gone
//!   too (two commits lost in one flush epoch);
//! - refuses, writing nothing, when the copy before the torn one is someone else's
//!   VG or lacks this tool's tag.
//!
//! After each recovery the pool is active, `thin_check` passes on its metadata, and a
//! second start writes nothing (seqno unchanged).
mod common;

use common::*;
use vmtest::{DiskSpec, GuestRun};

/// The tool on the partition labeled `name`, managing the VG `name`.
fn tool(name: &str) -> String {
    format!(
        "$LPD --partition-label {name} --volume-group {name} --pool pool --on-failure exit --satellite-id node-01"
    )
}

/// The same, killed after its `n`th LVM command.
fn tool_killed_after(name: &str, n: u32) -> String {
    format!(
        "env LINSTOR_PROVISION_DISK_TEST_KILL_AFTER={n} {}",
        tool(name)
    )
}

/// `save_mda DEV KEY`: the metadata area (header and buffer, 4096 .. 1 MiB) to a
/// file. `tear DEV KEY`: the saved buffer put back, the current header kept.
const HELPERS: &str = "export LOG_LEVEL=debug\n\
save_mda() { dd if=$1 of=/tmp/mda-$2 bs=512 skip=8 count=2040 2>/dev/null && [ $(wc -c </tmp/mda-$2) -eq 1044480 ]; }\n\
tear() { dd if=/tmp/mda-$2 of=$1 bs=512 skip=1 seek=9 count=2039 conv=notrunc oflag=direct 2>/dev/null && sync && echo 3 >/proc/sys/vm/drop_caches; }\n\
VGS='vgs --reportformat json -o vg_name,vg_seqno,vg_tags'\n";

/// After a recovery of `vg`: a second start, the VG's seqno around it, the pool
/// active, then its metadata checked with `thin_check`.
fn after_recovery(key: &str, vg: &str) -> String {
    format!(
        "step {key}-vgs $VGS {vg}\n\
         step {key}-lvs lvs --reportformat json -o lv_name,lv_active {vg}/pool\n\
         step {key}-steady {tool}\n\
         step {key}-vgs-2 $VGS {vg}\n\
         step {key}-pool-off lvchange -an {vg}/pool\n\
         step {key}-tmeta-on lvchange -ay -y {vg}/pool_tmeta\n\
         step {key}-thin-check thin_check /dev/mapper/{vg}-pool_tmeta\n\
         step {key}-tmeta-off lvchange -an {vg}/pool_tmeta\n",
        tool = tool(vg)
    )
}

fn seqno(run: &GuestRun, step: &str) -> u64 {
    number(&vg_row(run, step)["vg_seqno"])
}

/// The recovery ended provisioned, and everything [`after_recovery`] checks holds.
fn check_recovered(checks: &mut Checks, run: &GuestRun, key: &str) {
    let recover = run.step(&format!("{key}-recover"));
    eprintln!(
        "--- {key}-recover (exit {}) ---\n{}",
        recover.exit_code, recover.stderr
    );
    checks.exit(run, &format!("{key}-recover"), 0);
    if recover.exit_code != 0 {
        return;
    }
    checks.says(
        run,
        &format!("{key}-recover"),
        "disk provisioning completed successfully",
    );
    let lvs = rows(run, &format!("{key}-lvs"), "lv");
    checks.that(
        lvs.len() == 1 && text(&lvs[0]["lv_active"]) == "active",
        format!("{key}: the pool is not active after the recovery: {lvs:?}"),
    );
    checks.steady(run, &format!("{key}-steady"));
    checks.that(
        run.step(&format!("{key}-vgs-2")).exit_code == 0
            && seqno(run, &format!("{key}-vgs")) == seqno(run, &format!("{key}-vgs-2")),
        format!("{key}: the second start changed the seqno"),
    );
    for step in ["pool-off", "tmeta-on", "thin-check", "tmeta-off"] {
        checks.exit(run, &format!("{key}-{step}"), 0);
    }
}

#[test]
fn torn_commits_are_restored_restarted_or_refused() {
    let names = [
        "tornpool",
        "tornsame",
        "tornfirst",
        "tornforeign",
        "tornuntagged",
        "tornolder",
    ];
    let bed = bed(names
        .iter()
        .map(|name| DiskSpec::new(name, 256).partition(name, None))
        .collect());
    let mut script = String::from(HELPERS);
    // A: a first provision killed after vgcreate, then a commit whose text was lost
    // (its header kept); a reboot in between (nothing active).
    script.push_str(&format!(
        "step a-vg {killed}\n\
         step a-save save_mda /dev/vda1 a\n\
         step a-pool vgchange --addtag lost-commit tornpool\n\
         step a-off vgchange -an tornpool\n\
         step a-tear tear /dev/vda1 a\n\
         step a-recover {tool}\n",
        killed = tool_killed_after("tornpool", 2),
        tool = tool("tornpool"),
    ));
    script.push_str(&after_recovery("a", "tornpool"));
    // B: a same-ID node with a thin volume holding data; a metadata-only commit tore.
    script.push_str(&format!(
        "step b-prov {tool}\n\
         step b-thin lvcreate -V 64m -T tornsame/pool -n pvc-1\n\
         step b-data dd if=/dev/urandom of=/dev/mapper/tornsame-pvc--1 bs=1M count=8 conv=fsync\n\
         step b-sum-before sum_head 8388608 /dev/mapper/tornsame-pvc--1\n\
         step b-vgs-before $VGS tornsame\n\
         step b-off vgchange -an tornsame\n\
         step b-save save_mda /dev/vdb1 b\n\
         step b-write vgchange --addtag lost-commit tornsame\n\
         step b-tear tear /dev/vdb1 b\n\
         step b-recover {tool}\n",
        tool = tool("tornsame"),
    ));
    script.push_str(&after_recovery("b", "tornsame"));
    script.push_str(
        "step b-thin-on lvchange -ay -K tornsame/pvc-1\n\
         step b-sum-after sum_head 8388608 /dev/mapper/tornsame-pvc--1\n",
    );
    // C: a torn vgcreate: the area's first text lost.
    script.push_str(&format!(
        "step c-pv {killed}\n\
         step c-save save_mda /dev/vdc1 c\n\
         step c-vg {killed}\n\
         step c-tear tear /dev/vdc1 c\n\
         step c-recover {tool}\n",
        killed = tool_killed_after("tornfirst", 1),
        tool = tool("tornfirst"),
    ));
    script.push_str(&after_recovery("c", "tornfirst"));
    // F (before D and E, whose torn areas every later LVM scan reports): two
    // commits lost (texts of seqno 2 and 3, the header pointing at 3): the
    // copy before the torn one is gone too, so the newest intact copy (seqno 1, the
    // tool's vgcreate) is the state before the lost commits: restored, then the pool
    // created.
    script.push_str(&format!(
        "step f-vg {killed}\n\
         step f-save save_mda /dev/vdf1 f\n\
         step f-write vgchange --addtag lost-1 tornolder\n\
         step f-write-2 vgchange --addtag lost-2 tornolder\n\
         step f-tear tear /dev/vdf1 f\n\
         step f-recover {tool}\n",
        killed = tool_killed_after("tornolder", 2),
        tool = tool("tornolder"),
    ));
    script.push_str(&after_recovery("f", "tornolder"));
    // D, E: the only intact copy is another VG, or ours by name without our tag.
    for (key, dev, label, vg) in [
        ("d", "/dev/vdd1", "tornforeign", "othervg"),
        ("e", "/dev/vde1", "tornuntagged", "tornuntagged"),
    ] {
        script.push_str(&format!(
            "step {key}-pv pvcreate {dev}\n\
             step {key}-vg vgcreate {vg} {dev}\n\
             step {key}-save save_mda {dev} {key}\n\
             step {key}-write vgchange --addtag lost-commit {vg}\n\
             step {key}-tear tear {dev} {key}\n\
             {sum_before}\
             step {key}-refused {tool}\n\
             {sum_after}",
            sum_before = sum_step(&format!("{key}-sum-before"), dev),
            sum_after = sum_step(&format!("{key}-sum-after"), dev),
            tool = tool(label),
        ));
    }
    let run = boot_injecting_faults(&bed, false, &script);
    let mut checks = Checks::default();
    for (step, code) in [
        ("a-vg", 137),
        ("a-pool", 0),
        ("c-pv", 137),
        ("c-vg", 137),
        ("f-vg", 137),
    ] {
        checks.exit(&run, step, code);
    }
    for step in [
        "a-save",
        "a-off",
        "a-tear",
        "b-prov",
        "b-thin",
        "b-data",
        "b-off",
        "b-save",
        "b-write",
        "b-tear",
        "c-save",
        "c-tear",
        "d-pv",
        "d-vg",
        "d-save",
        "d-write",
        "d-tear",
        "e-pv",
        "e-vg",
        "e-save",
        "e-write",
        "e-tear",
        "f-save",
        "f-write",
        "f-write-2",
        "f-tear",
    ] {
        checks.exit(&run, step, 0);
    }

    // A: restored, then the pool created as in any interrupted first provision.
    check_recovered(&mut checks, &run, "a");
    checks.says(&run, "a-recover", "restore volume group tornpool");
    checks.says(&run, "a-recover", "create thin pool tornpool/pool");
    checks.that(
        run.step("a-vgs").exit_code == 0
            && text(&vg_row(&run, "a-vgs")["vg_tags"]) == "linstor-satellite-id=node-01",
        "a: the restored VG kept the lost commit's tag or lost its own",
    );

    // B: restored at the seqno before the lost commit, the volume and its data kept,
    // no reset.
    check_recovered(&mut checks, &run, "b");
    checks.says(&run, "b-recover", "restore volume group tornsame");
    let recover = &run.step("b-recover").stderr;
    checks.that(
        !recover.contains("satellite id mismatch") && !recover.contains("removing"),
        format!("b: a same-ID node was reset:\n{recover}"),
    );
    checks.that(
        run.step("b-vgs-before").exit_code == 0
            && seqno(&run, "b-vgs") == seqno(&run, "b-vgs-before"),
        "b: not restored at the seqno before the lost commit",
    );
    checks.that(
        text(&vg_row(&run, "b-vgs")["vg_tags"]) == "linstor-satellite-id=node-01",
        "b: the restored VG lost its tag or kept the lost commit's",
    );
    checks.exit(&run, "b-thin-on", 0);
    checks.same(&run, "b-sum-before", "b-sum-after");

    // C: the PV made again, then provisioned.
    check_recovered(&mut checks, &run, "c");
    checks.says(&run, "c-recover", "erase the LVM label of /dev/vdc1");
    checks.says(&run, "c-recover", "create physical volume on /dev/vdc1");
    checks.that(
        run.step("c-vgs").exit_code == 0
            && text(&vg_row(&run, "c-vgs")["vg_tags"]) == "linstor-satellite-id=node-01",
        "c: the VG made again is not tagged",
    );

    // F: the newest intact copy restored, the lost commits' tags gone, the pool made.
    check_recovered(&mut checks, &run, "f");
    checks.says(
        &run,
        "f-recover",
        "from the newest intact metadata copy (seqno 1",
    );
    checks.says(&run, "f-recover", "create thin pool tornolder/pool");
    checks.that(
        run.step("f-vgs").exit_code == 0
            && text(&vg_row(&run, "f-vgs")["vg_tags"]) == "linstor-satellite-id=node-01",
        "f: the restored VG kept a lost commit's tag or lost its own",
    );

    // D, E: refused, not a byte written.
    for (key, why) in [("d", "othervg"), ("e", "tornuntagged")] {
        let step = format!("{key}-refused");
        checks.refused_before_lvm(
            &run,
            &step,
            &[
                "is torn",
                why,
                "pvck --repair -f FILE",
                "nothing was written",
            ],
        );
        checks.same(
            &run,
            &format!("{key}-sum-before"),
            &format!("{key}-sum-after"),
        );
    }
    checks.finish();
}

/// A label whose metadata area's header never reached the disk (its sector zeroed
/// after the label was written: what a power loss inside `pvcreate` can keep, seen 8
/// times in the full crash-state run). LVM reads no VG there and its `pvcreate -ff`
/// refuses the device. The tool:
/// - G: erases the label and starts over after an interrupted first `pvcreate`;
/// - H: the same after a reset's `pvcreate`, with the removed PV's copies still in
///   the buffer (they name another PV);
/// - I: refuses, writing nothing, a provisioned PV whose header alone is gone (its
///   label marks it in use; its buffer holds its copies);
/// - J: refuses a member of a VG whose metadata lives on a disk that is absent.
#[test]
fn a_label_whose_metadata_header_never_arrived_starts_over_or_is_refused() {
    let names = ["hdrfirst", "hdrreset", "hdrlived", "hdrmember"];
    let bed = bed(names
        .iter()
        .map(|name| DiskSpec::new(name, 256).partition(name, None))
        .collect());
    let mut script = String::from(HELPERS);
    script.push_str(
        "unheader() { dd if=/dev/zero of=$1 bs=512 seek=8 count=1 conv=notrunc oflag=direct 2>/dev/null && sync && echo 3 >/proc/sys/vm/drop_caches; }\n\
         header_magic() { dd if=$1 bs=1 skip=4100 count=16 2>/dev/null | od -An -c | tr -d ' \\n'; }\n",
    );
    // G: killed after its pvcreate, then the header lost.
    script.push_str(&format!(
        "step g-pv {killed}\n\
         step g-magic-before header_magic /dev/vda1\n\
         step g-unheader unheader /dev/vda1\n\
         step g-magic header_magic /dev/vda1\n\
         step g-recover {tool}\n",
        killed = tool_killed_after("hdrfirst", 1),
        tool = tool("hdrfirst"),
    ));
    script.push_str(&after_recovery("g", "hdrfirst"));
    // H: a provisioned VG removed by hand as a reset does, a new PV made, its header
    // lost.
    script.push_str(&format!(
        "step h-prov {tool}\n\
         step h-vgremove vgremove -f hdrreset\n\
         step h-pvremove pvremove -y /dev/vdb1\n\
         step h-pv pvcreate /dev/vdb1\n\
         step h-unheader unheader /dev/vdb1\n\
         step h-recover {tool}\n",
        tool = tool("hdrreset"),
    ));
    script.push_str(&after_recovery("h", "hdrreset"));
    // I: a provisioned VG whose header is lost: its copies name this PV.
    script.push_str(&format!(
        "step i-prov {tool}\n\
         step i-off vgchange -an hdrlived\n\
         step i-unheader unheader /dev/vdc1\n\
         {sum_before}\
         step i-refused {tool}\n\
         {sum_after}",
        tool = tool("hdrlived"),
        sum_before = sum_step("i-sum-before", "/dev/vdc1"),
        sum_after = sum_step("i-sum-after", "/dev/vdc1"),
    ));
    // J: a member of an operator's VG whose metadata lives on another disk (this
    // PV's area ignored, so its buffer holds no text), its header lost and that disk
    // absent (a loop device detached): the label says "in a VG"; refused.
    script.push_str(&format!(
        "step j-img truncate -s 64M /tmp/member.img\n\
         step j-modprobe modprobe loop\n\
         J=$(losetup -f --show /tmp/member.img)\n\
         step j-loop test -b \"$J\"\n\
         D=\"--devices /dev/vdd1,$J\"\n\
         step j-pv pvcreate $D --metadataignore y /dev/vdd1\n\
         step j-pv-2 pvcreate $D \"$J\"\n\
         step j-vg vgcreate $D memberx \"$J\" /dev/vdd1\n\
         step j-lv lvcreate $D -n data -L 8m memberx /dev/vdd1\n\
         step j-off vgchange $D -an memberx\n\
         step j-unheader unheader /dev/vdd1\n\
         step j-detach losetup -d \"$J\"\n\
         {sum_before}\
         step j-refused {tool}\n\
         {sum_after}",
        tool = tool("hdrmember"),
        sum_before = sum_step("j-sum-before", "/dev/vdd1"),
        sum_after = sum_step("j-sum-after", "/dev/vdd1"),
    ));
    let run = boot_injecting_faults(&bed, false, &script);
    let mut checks = Checks::default();
    checks.exit(&run, "g-pv", 137);
    for step in [
        "g-magic-before",
        "g-unheader",
        "g-magic",
        "h-prov",
        "h-vgremove",
        "h-pvremove",
        "h-pv",
        "h-unheader",
        "i-prov",
        "i-off",
        "i-unheader",
        "j-img",
        "j-modprobe",
        "j-loop",
        "j-pv",
        "j-pv-2",
        "j-vg",
        "j-lv",
        "j-off",
        "j-unheader",
        "j-detach",
    ] {
        checks.exit(&run, step, 0);
    }
    // The killed pvcreate wrote the header; the test then took it away.
    checks.that(
        run.step("g-magic-before").stdout.contains("LVM2"),
        format!(
            "g: the killed pvcreate wrote no header: {}",
            run.step("g-magic-before").stdout
        ),
    );
    checks.that(
        run.step("g-magic").stdout.trim() == "\\0".repeat(16),
        format!("g: the header is not zeros: {}", run.step("g-magic").stdout),
    );
    for key in ["g", "h"] {
        check_recovered(&mut checks, &run, key);
        checks.says(
            &run,
            &format!("{key}-recover"),
            "header never reached the disk",
        );
        checks.says(&run, &format!("{key}-recover"), "create physical volume on");
        checks.that(
            run.step(&format!("{key}-vgs")).exit_code == 0
                && text(&vg_row(&run, &format!("{key}-vgs"))["vg_tags"])
                    == "linstor-satellite-id=node-01",
            format!("{key}: the VG made again is not tagged"),
        );
    }
    checks.refused_before_lvm(
        &run,
        "i-refused",
        &[
            "whose header was never written",
            "marks it as a member of a volume group",
            "wipefs --all --types LVM2_member /dev/vdc1",
            "nothing was written",
        ],
    );
    checks.same(&run, "i-sum-before", "i-sum-after");
    checks.refused_before_lvm(
        &run,
        "j-refused",
        &[
            "whose header was never written",
            "marks it as a member of a volume group",
            "nothing was written",
        ],
    );
    checks.same(&run, "j-sum-before", "j-sum-after");
    checks.finish();
}
