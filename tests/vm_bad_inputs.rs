//! Bad inputs the other VM tests don't already cover (see docs/bad-inputs.md for
//! the whole table): a corrupted metadata area (header, then text), a foreign
//! swap signature, bad names (LVM's rules, LINSTOR's, a VG name whose /dev path is
//! taken or reserved) and IDs at and over the size limit, and odd IDs
//! (spaces, quotes, a backslash, `&`, non-ASCII) that must round-trip
//! exactly through a real provision and `status`; the same ID plus a trailing space
//! is refused with exit 2.
mod common;

use common::*;
use vmtest::DiskSpec;

/// `node 01 ü "q" \ & 🚀`: every class of byte the tag encoding escapes that a
/// configured ID may hold (a tab is a control character: refused since issue 18).
const ODD_ID: &str = "node 01 ü \"q\" \\ & 🚀";

fn tool(label: &str, id: &str) -> String {
    format!(
        "$LPD --partition-label {label} --volume-group {label} --pool pool --on-failure exit --satellite-id {id}"
    )
}

/// sha256 of the partition's first 4 MiB (label, metadata area, start of data).
fn sum(step: &str, dev: &str) -> String {
    sum_step(step, dev)
}

#[test]
fn corrupted_metadata_odd_ids_and_bad_names() {
    let bed = bed(vec![
        DiskSpec::new("mdahdr", 256).partition("mdahdr", None),
        DiskSpec::new("mdatext", 256).partition("mdatext", None),
        DiskSpec::new("odd", 256).partition("odd", None),
        DiskSpec::new("maxid", 256).partition("maxid", None),
        DiskSpec::new("swap", 256).partition("swap", None),
        DiskSpec::new("stale", 256).partition("stale", None),
    ]);
    let mut script = String::new();
    // Corrupted metadata areas: provision, deactivate, overwrite with garbage.
    // At debug level, so that the absence of LVM's command lines below means
    // something: these first runs must show them.
    for label in ["mdahdr", "mdatext"] {
        script.push_str(&format!(
            "step prov-{label} env LOG_LEVEL=debug {}\n",
            tool(label, "node-01")
        ));
    }
    script.push_str(
        "step deactivate vgchange -an mdahdr mdatext\n\
         step dd-hdr dd if=/dev/urandom of=/dev/vda1 bs=512 seek=8 count=1 conv=notrunc oflag=direct\n\
         step dd-text dd if=/dev/urandom of=/dev/vdb1 bs=512 seek=9 count=2039 conv=notrunc oflag=direct\n",
    );
    for (label, dev) in [("mdahdr", "/dev/vda1"), ("mdatext", "/dev/vdb1")] {
        script.push_str(&sum(&format!("sum-before-{label}"), dev));
        script.push_str(&format!(
            "step corrupt-{label} env LOG_LEVEL=debug {}\n",
            tool(label, "node-01")
        ));
        script.push_str(&format!(
            "step corrupt-reset-{label} env LOG_LEVEL=debug {}\n",
            tool(label, "node-02")
        ));
        script.push_str(&sum(&format!("sum-after-{label}"), dev));
        script.push_str(&format!("step lvm-view-{label} pvs {dev}\n"));
    }
    // A foreign swap signature.
    script.push_str("step mkswap mkswap /dev/vde1\n");
    script.push_str(&sum("sum-before-swap", "/dev/vde1"));
    script.push_str(&format!("step swap-refused {}\n", tool("swap", "node-01")));
    script.push_str(&sum("sum-after-swap", "/dev/vde1"));
    // Odd IDs round-trip exactly; one more trailing space is refused (exit 2), the
    // node left as it is.
    script.push_str(&format!(
        "ODD=$(printf 'node 01 ü \"q\" \\\\ & 🚀')\n\
         step odd-prov {odd}\n\
         step odd-steady {odd}\n\
         step odd-status $LPD status --partition-label odd --volume-group odd --pool pool --json\n\
         step odd-tags vgs --devices /dev/vdc1 --noheadings -o vg_tags odd\n\
         step odd-space {odd_space}\n\
         step odd-status-2 $LPD status --partition-label odd --volume-group odd --pool pool --json\n",
        odd = tool("odd", "\"$ODD\""),
        odd_space = tool("odd", "\"$ODD \""),
    ));
    // IDs at and over the tag size limit (1024 bytes with the 21-byte prefix).
    script.push_str(&format!(
        "MAX=$(printf '%01003d' 0)\n\
         U=$(i=0; s=; while [ $i -lt 335 ]; do s=\"${{s}}ü\"; i=$((i+1)); done; printf %s \"$s\")\n\
         step id-max {max}\n\
         step id-max-status $LPD status --partition-label maxid --volume-group maxid --pool pool --json\n\
         step id-over {over}\n\
         step id-huge {huge}\n\
         step id-over-encoded {enc}\n",
        max = tool("maxid", "\"$MAX\""),
        over = tool("maxid", "\"${MAX}0\""),
        huge = tool("maxid", "\"$(printf '%0100000d' 0)\""),
        // 335 × "ü" = 670 bytes, 2010 once escaped as &C3&BC.
        enc = tool("maxid", "\"$U\""),
    ));
    // Bad names and values: exit 2 before anything is read.
    for (name, args) in [
        (
            "vg-dots",
            "--partition-label maxid --volume-group .. --pool pool",
        ),
        (
            "vg-dash",
            "--partition-label maxid --volume-group=-vg --pool pool",
        ),
        (
            "vg-slash",
            "--partition-label maxid --volume-group a/b --pool pool",
        ),
        (
            "pool-reserved",
            "--partition-label maxid --volume-group maxid --pool pool_tmeta",
        ),
        (
            "label-empty",
            "--partition-label '' --volume-group maxid --pool pool",
        ),
        (
            "chunk-odd",
            "--partition-label maxid --volume-group maxid --pool pool --chunk-size 100K",
        ),
        (
            "vg-mapper",
            "--partition-label maxid --volume-group mapper --pool pool",
        ),
        (
            "vg-devnode",
            "--partition-label maxid --volume-group vda --pool pool",
        ),
        (
            "pool-linstor",
            "--partition-label maxid --volume-group maxid --pool pool.x",
        ),
        (
            "vg-linstor",
            "--partition-label maxid --volume-group vg+1 --pool pool",
        ),
    ] {
        script.push_str(&format!(
            "step bad-{name} $LPD {args} --satellite-id n --on-failure exit\n"
        ));
    }
    // An empty /dev/<vg> (what a killed LVM command leaves) is not a reason to
    // reject the name: it is LVM's folder for that very VG.
    script.push_str(&format!(
        "mkdir /dev/stale\nstep stale-dev-folder {}\n",
        tool("stale", "n")
    ));
    script.push_str("step vgs-end vgs --devices /dev/vdc1 --devices /dev/vdd1 --reportformat json -o vg_name,vg_tags,vg_seqno maxid odd\n");
    let run = boot(&bed, false, &script);

    // Corrupted metadata: refused with a clear error; not a byte written, reset or not.
    for label in ["mdahdr", "mdatext"] {
        let prov = expect_provisioned(&run, &format!("prov-{label}"));
        assert!(
            prov.stderr.contains("running lvm command"),
            "a debug-level run shows no LVM command lines:\n{}",
            prov.stderr
        );
        for step in [format!("corrupt-{label}"), format!("corrupt-reset-{label}")] {
            let s = expect_exit(&run, &step, 1);
            assert!(
                s.stderr.contains("checksum") || s.stderr.contains("metadata"),
                "{step}: no clear error:\n{}",
                s.stderr
            );
            assert!(!s.stderr.contains("running lvm command"), "{}", s.stderr);
            assert!(!s.stderr.contains("completed successfully"), "{}", s.stderr);
            eprintln!("{step}: {}", s.stderr.lines().last().unwrap_or_default());
        }
        assert_eq!(
            run.expect_success(&format!("sum-before-{label}")).stdout,
            run.expect_success(&format!("sum-after-{label}")).stdout,
            "{label}: the tool wrote to a partition with a corrupted metadata area"
        );
    }

    let swap = expect_exit(&run, "swap-refused", 1);
    assert!(swap.stderr.contains("swap"), "{}", swap.stderr);
    assert_eq!(
        run.expect_success("sum-before-swap").stdout,
        run.expect_success("sum-after-swap").stdout
    );

    expect_provisioned(&run, "odd-prov");
    assert!(expect_provisioned(&run, "odd-steady")
        .stderr
        .contains("lvm_commands=0"));
    let status = json(&run, "odd-status");
    assert_eq!(
        status["physical_volume"]["volume_group"]["satellite_id"]["value"], ODD_ID,
        "{status}"
    );
    // (Only the tag line: LVM may warn about the corrupted disks on stdout.)
    let out = &run.expect_success("odd-tags").stdout;
    let tags = out
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("linstor-satellite-id="))
        .unwrap_or_else(|| panic!("no tag in {out:?}"))
        .to_owned();
    assert!(
        tags.starts_with("linstor-satellite-id=node&2001&20&C3&BC&20&22q&22&20&5C&20&26&20&F0"),
        "{tags}"
    );
    let space = expect_exit(&run, "odd-space", 2);
    assert!(
        space.stderr.contains("U+0020 (space) at the end")
            && !space.stderr.contains("satellite id mismatch"),
        "a trailing space is not refused:\n{}",
        space.stderr
    );
    let status = json(&run, "odd-status-2");
    assert_eq!(
        status["physical_volume"]["volume_group"]["satellite_id"]["value"], ODD_ID,
        "{status}"
    );

    expect_provisioned(&run, "id-max");
    let status = json(&run, "id-max-status");
    assert_eq!(
        status["physical_volume"]["volume_group"]["satellite_id"]["value"],
        "0".repeat(1003),
        "{status}"
    );
    for step in ["id-over", "id-huge", "id-over-encoded"] {
        let s = expect_exit(&run, step, 2);
        assert!(s.stderr.contains("1024"), "{step}: {}", s.stderr);
    }
    for (name, says) in [
        ("vg-dots", "path components"),
        ("vg-dash", "must not start with '-'"),
        ("vg-slash", "contains '/'"),
        ("pool-reserved", "_tmeta"),
        ("label-empty", "partition label is empty"),
        ("chunk-odd", "chunk size"),
        ("vg-mapper", "reserved: /dev/mapper"),
        (
            "vg-devnode",
            "/dev/vda already exists and is a block device",
        ),
        ("pool-linstor", "LINSTOR could not use the pool"),
        ("vg-linstor", "LINSTOR could not use the pool"),
    ] {
        let s = expect_exit(&run, &format!("bad-{name}"), 2);
        assert!(s.stderr.contains(says), "bad-{name}: {}", s.stderr);
    }
    let stale = run.step("stale-dev-folder");
    assert!(
        stale.exit_code != 2 && !stale.stderr.contains("invalid VOLUME_GROUP"),
        "an empty /dev/stale was taken for someone else's:\n{}",
        stale.stderr
    );
    // None of the refused runs changed the VGs that exist.
    let vgs = rows(&run, "vgs-end", "vg");
    assert_eq!(vgs.len(), 2, "{vgs:?}");
}
