//! Foreign signatures made by the real tools, in a real kernel: f2fs, exFAT, a
//! bcache backing device, xfs, an md raid member (metadata 1.2), LUKS2 and swap.
//! Each partition is refused (exit 1, the message naming what was found and the
//! way to override), no LVM command runs, and its first 4 MiB are byte-identical
//! afterwards. With `FORCE` one of them (xfs) is overwritten and provisioned; an md
//! superblock then written beside its LVM label is still listed by `status`.
mod common;

use common::*;
use vmtest::{DiskSpec, GuestRun};

/// One foreign signature: its partition label, the device it lands on, the
/// command(s) that make it, and libblkid's TYPE for it, which the refusal names.
struct Case {
    label: &'static str,
    dev: &'static str,
    make: &'static str,
    blkid_type: &'static str,
}

const CASES: &[Case] = &[
    Case {
        label: "sig-f2fs",
        dev: "/dev/vda1",
        make: "mkfs.f2fs -q /dev/vda1",
        blkid_type: "f2fs",
    },
    Case {
        label: "sig-exfat",
        dev: "/dev/vdb1",
        make: "mkfs.exfat /dev/vdb1",
        blkid_type: "exfat",
    },
    Case {
        label: "sig-bcache",
        dev: "/dev/vdc1",
        make: "make-bcache -B /dev/vdc1",
        blkid_type: "bcache",
    },
    Case {
        label: "sig-xfs",
        dev: "/dev/vdd1",
        make: "mkfs.xfs -q /dev/vdd1",
        blkid_type: "xfs",
    },
    Case {
        label: "sig-md-a",
        dev: "/dev/vde1",
        // Two members, then the array is stopped: what a disk pulled from a
        // raid set, or a host with mdadm not yet running, looks like.
        make: "sh -c 'mdadm --create /dev/md0 --run --level=1 --raid-devices=2 \
               --metadata=1.2 /dev/vde1 /dev/vde2 && mdadm --stop /dev/md0'",
        blkid_type: "linux_raid_member",
    },
    Case {
        label: "sig-luks",
        dev: "/dev/vdf1",
        // pbkdf2 with the minimum iterations: argon2 would take minutes under TCG.
        make: "sh -c 'printf secret >/tmp/key && cryptsetup luksFormat --batch-mode \
               --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 /dev/vdf1 /tmp/key'",
        blkid_type: "crypto_LUKS",
    },
    Case {
        label: "sig-swap",
        dev: "/dev/vdg1",
        make: "mkswap /dev/vdg1",
        blkid_type: "swap",
    },
];

/// The case overwritten with `FORCE` at the end.
const FORCED: &str = "sig-xfs";

/// A provisioning run at debug level (so an LVM command would show), with a VG
/// name of its own (so one wrongly provisioned case cannot change the next one's
/// outcome).
fn provision(label: &str) -> String {
    format!(
        "env LOG_LEVEL=debug $LPD --partition-label {label} --volume-group {label} --pool pool \
         --satellite-id n --on-failure exit"
    )
}

fn sum(step: &str, dev: &str) -> String {
    sum_step(step, dev)
}

fn script() -> String {
    // md needs its driver; luksFormat checks the cipher through the kernel's crypto API.
    let mut script =
        String::from("step modules modprobe -a md_mod raid1 dm_crypt xts algif_skcipher\n");
    for case in CASES {
        let Case {
            label, dev, make, ..
        } = case;
        script.push_str(&format!("step make-{label} {make}\n"));
        script.push_str(&format!(
            "step blkid-{label} blkid -p -o value -s TYPE {dev}\n"
        ));
        script.push_str(&sum(&format!("before-{label}"), dev));
        script.push_str(&format!("step refused-{label} {}\n", provision(label)));
        script.push_str(&sum(&format!("after-{label}"), dev));
    }
    let forced = CASES
        .iter()
        .find(|c| c.label == FORCED)
        .map_or("", |c| c.dev);
    script.push_str(&format!(
        "step forced env FORCE=true {p}\n\
         step forced-blkid blkid -p -o value -s TYPE {forced}\n\
         step forced-vgs vgs --reportformat json -o vg_name,vg_tags {FORCED}\n\
         step beside-off vgchange -an {FORCED}\n\
         step beside-md mdadm --create /dev/md1 --run --level=1 --raid-devices=2 \
              --metadata=1.0 --bitmap=none {forced} missing\n\
         step beside-md-stop mdadm --stop /dev/md1\n\
         step beside-status $LPD status --partition-label {FORCED} --json\n",
        p = provision(FORCED),
    ));
    script
}

/// Everything wrong with one case, or nothing.
fn problems(run: &GuestRun, case: &Case) -> Vec<String> {
    let label = case.label;
    let mut found = Vec::new();
    let blkid = run
        .expect_success(&format!("blkid-{label}"))
        .stdout
        .trim()
        .to_owned();
    assert_eq!(
        blkid, case.blkid_type,
        "{label}: the tool that should have made a {} signature made {blkid:?}",
        case.blkid_type
    );
    let refused = run.step(&format!("refused-{label}"));
    if refused.exit_code != 1 {
        found.push(format!("exited {} (expected 1)", refused.exit_code));
    }
    if !refused.stderr.contains(case.blkid_type) {
        found.push(format!("the message does not name {:?}", case.blkid_type));
    }
    if !refused.stderr.to_lowercase().contains("force") {
        found.push("the message does not say how to override".into());
    }
    if refused.stderr.contains("running lvm command") {
        found.push("an LVM command ran".into());
    }
    if run.expect_success(&format!("before-{label}")).stdout
        != run.expect_success(&format!("after-{label}")).stdout
    {
        found.push("the first 4 MiB changed".into());
    }
    if !found.is_empty() {
        found.push(format!("--- stderr ---\n{}", refused.stderr));
    }
    found
}

#[test]
fn signatures_made_by_real_tools_are_refused_and_left_intact() {
    let mut disks: Vec<DiskSpec> = CASES
        .iter()
        .filter(|c| c.label != "sig-md-a")
        .map(|c| {
            // mkfs.xfs refuses file systems under 300 MiB.
            let size = if c.label == "sig-xfs" { 512 } else { 256 };
            DiskSpec::new(c.label, size).partition(c.label, None)
        })
        .collect();
    disks.insert(
        4,
        DiskSpec::new("sig-md", 512)
            .partition("sig-md-a", Some(200))
            .partition("sig-md-b", None),
    );
    let bed = bed(disks);
    let run = boot(&bed, false, &script());
    run.expect_success("modules");
    for case in CASES {
        run.expect_success(&format!("make-{}", case.label));
    }

    let mut failures = Vec::new();
    for case in CASES {
        let found = problems(&run, case);
        let verdict = if found.is_empty() {
            "refused, intact"
        } else {
            "NOT REFUSED"
        };
        let said = run
            .step(&format!("refused-{}", case.label))
            .stderr
            .trim_end();
        let last = said.lines().last().unwrap_or_default();
        eprintln!("{}: {verdict}: {last}", case.label);
        if !found.is_empty() {
            failures.push(format!("{}:\n  {}", case.label, found.join("\n  ")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // FORCE overwrites the xfs and provisions; at debug level the LVM commands show
    // (so their absence above means something).
    let forced = expect_provisioned(&run, "forced");
    assert!(
        forced.stderr.contains("running lvm command"),
        "{}",
        forced.stderr
    );
    assert_eq!(
        run.expect_success("forced-blkid").stdout.trim(),
        "LVM2_member"
    );
    assert_eq!(
        text(&vg_row(&run, "forced-vgs")["vg_tags"]),
        "linstor-satellite-id=n"
    );

    // An md 1.0 superblock (at the end) written beside our LVM label: provisioning
    // skips the signature probe when it finds the label, `status` must not.
    run.expect_success("beside-off");
    run.expect_success("beside-md");
    run.expect_success("beside-md-stop");
    let status: serde_json::Value =
        serde_json::from_str(&run.expect_success("beside-status").stdout)
            .unwrap_or_else(|e| panic!("status --json is not JSON: {e}"));
    let signatures: Vec<&str> = status["signatures"]
        .as_array()
        .map(|list| list.iter().filter_map(|s| s.as_str()).collect())
        .unwrap_or_default();
    assert!(
        signatures.contains(&"linux_raid_member"),
        "status must list the md superblock beside the LVM label: {status}"
    );
    assert!(
        !status["physical_volume"].is_null(),
        "the LVM label is still there: {status}"
    );
}
