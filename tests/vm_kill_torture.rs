//! SIGKILL at arbitrary instants — inside LVM commands, not only between them —
//! across a first provision, a reset with thin volumes present, pool activation,
//! seed-tool adoption and growth; part of it with udevd running, as on a real host.
//! After every kill the next start must converge to a correct, active pool, and with
//! a matching satellite ID no thin volume and no byte of its data may be lost.
mod common;

use common::*;
use vmtest::{BootOptions, DiskSpec, GuestRun};

/// Guest helpers. `timed KIND CMD…` runs a command and keeps how long it took (ms) as
/// the reference for KIND. `killat KIND NUM DEN ARGS…` starts the tool in the
/// background, SIGKILLs it after NUM/DEN of KIND's reference time and prints
/// `rc=<exit status>` (137: killed; 0: it had finished first) and the last lines it
/// logged (which step the kill interrupted). Instants relative to a measured run
/// keep landing inside the run on a faster or slower machine.
const HELPERS: &str = r#"
now_ms() { read up _ </proc/uptime; cs=$(echo "$up" | tr -d .); echo $((cs * 10)); }
timed() {
  kind=$1; shift
  t0=$(now_ms); "$@"; rc=$?; t1=$(now_ms)
  echo $((t1 - t0)) >/tmp/ref-$kind
  return $rc
}
killat() {
  ref=$(cat /tmp/ref-$1); ms=$((ref * $2 / $3)); shift 3
  d=$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))
  echo "delay=${d}s of ${ref}ms"
  $LPD "$@" >/tmp/killed.log 2>&1 &
  pid=$!
  sleep "$d"
  kill -9 "$pid" 2>/dev/null
  wait "$pid"
  echo "rc=$?"
  tail -n 2 /tmp/killed.log
  return 0
}
marker() { printf "precious-$2" | dd of="/dev/mapper/$1" conv=fsync 2>/dev/null; }
read_marker() { lvchange -ay "$1" && head -c "$3" "/dev/mapper/$2"; }
pool_state() {
  lvs --noheadings --separator ';' -o lv_name,data_percent,vg_tags "$1/$2" | tr -d ' '
}
# Links a killed run left in /dev/linstor-vg may outlive the VG (LVM removes only
# the links of LVs it deactivates); the next provision must clear them itself.
wipe_storage() {
  vgchange -an linstor-vg && vgremove -ff -y linstor-vg && pvremove -ff -y /dev/vda1 &&
  dd if=/dev/zero of=/dev/vda1 bs=1M count=4 conv=fsync 2>/dev/null
}
seed_layout() {
  pvcreate -q "$1" && vgcreate -q "$2" "$1" &&
  lvcreate -q --type thin-pool -l 100%FREE -n linstor-pool "$2" &&
  lvcreate -q --type thin --virtualsize 100M --thinpool linstor-pool --name metadata "$2" &&
  mkfs.ext4 -q "/dev/mapper/$2-metadata" && mount "/dev/mapper/$2-metadata" /mnt &&
  printf %s "$3" > /mnt/satellite-id && umount /mnt &&
  lvcreate -q -V 32m -T "$2/linstor-pool" -n pvcdata && marker "$2-pvcdata" "$2" &&
  vgchange -an "$2"
}
"#;

/// Kills per scenario. Each lands at its own fraction (20%…85%) of a measured
/// run of the same scenario, where the LVM commands run.
const FRESH_KILLS: usize = 12;
const ACTIVATION_KILLS: usize = 8;
const RESET_KILLS: usize = 12;
/// Seed adoptions and grows: one disk per kill (each can happen once), plus one
/// disk for the reference run.
const SIDE_KILLS: usize = 6;
const UDEV_KILLS: usize = 3;

/// The `n`th of `count` instants, in percent of the reference run.
fn percent(n: usize, count: usize) -> usize {
    20 + 65 * n / count.saturating_sub(1).max(1)
}

fn run_args(label: &str, vg: &str, id: &str) -> String {
    format!(
        "--partition-label {label} --volume-group {vg} --pool linstor-pool --on-failure exit --satellite-id {id}"
    )
}

/// The result of one `killat` step: whether the kill landed while the tool ran.
fn was_killed(run: &GuestRun, step: &str) -> bool {
    let out = &run.expect_success(step).stdout;
    match out.lines().find(|l| l.starts_with("rc=")) {
        Some("rc=137") => true,
        Some("rc=0") => false,
        other => panic!("{step}: the tool neither was killed nor succeeded ({other:?}):\n{out}"),
    }
}

/// Checks a `pool_state` line: the thin pool reports its data usage (it is active:
/// LINSTOR reads an empty usage as a full pool) and the VG carries `id`'s tag.
fn assert_pool_state(step: &str, line: &str, id: &str) {
    let cols: Vec<&str> = line.trim().split(';').collect();
    assert_eq!(cols.len(), 3, "{step}: {line:?}");
    assert_eq!(cols[0], "linstor-pool", "{step}: {line:?}");
    assert!(
        cols[1].parse::<f64>().is_ok(),
        "{step}: the pool reports no data usage (not active): {line:?}"
    );
    assert_eq!(
        cols[2],
        format!("linstor-satellite-id={id}"),
        "{step}: {line:?}"
    );
}

/// Asserts the rerun after a kill converged and left an active, tagged pool.
fn assert_converged(run: &GuestRun, rerun: &str, state: &str, id: &str) {
    expect_provisioned(run, rerun);
    assert_pool_state(state, &run.expect_success(state).stdout, id);
}

fn options(udevd: bool) -> BootOptions {
    BootOptions {
        udevd,
        timeout: std::time::Duration::from_secs(1500),
        ..BootOptions::default()
    }
}

fn boot_torture(bed: &vmtest::TestBed, udevd: bool, script: &str) -> GuestRun {
    let script = format!("{PRELUDE}{HELPERS}{script}");
    boot_keeping_console(bed, &options(udevd), &script, "vm_kill_torture")
}

/// Guest steps for the fresh, activation and reset loops on /dev/vda1, each after a
/// reference run that is not killed. Step names are `<tag>-<kind>-<n>-…`.
fn main_disk_loops(tag: &str, fresh: usize, activation: usize, reset: usize) -> String {
    let main = |id: &str| run_args("linstor-storage", "linstor-vg", id);
    // The first run in a boot is slower (the emulator translates the binary's code
    // anew): warm up, then measure.
    let mut s = format!(
        "step {tag}-fresh-warm $LPD {args}\n\
         step {tag}-fresh-warm-wipe wipe_storage\n\
         step {tag}-fresh-ref timed fresh $LPD {args}\n\
         step {tag}-fresh-ref-wipe wipe_storage\n",
        args = main("node-01"),
    );
    for n in 0..fresh {
        s.push_str(&format!(
            "step {tag}-fresh-{n}-kill killat fresh {p} 100 {args}\n\
             step {tag}-fresh-{n}-rerun $LPD {args}\n\
             step {tag}-fresh-{n}-state pool_state linstor-vg linstor-pool\n\
             step {tag}-fresh-{n}-wipe wipe_storage\n",
            p = percent(n, fresh),
            args = main("node-01"),
        ));
    }
    // A provisioned pool with a thin volume whose bytes must survive every kill.
    s.push_str(&format!(
        "step {tag}-setup $LPD {args}\n\
         step {tag}-thin lvcreate -q -V 32m -T linstor-vg/linstor-pool -n keep\n\
         step {tag}-marker marker linstor--vg-keep {tag}\n\
         step {tag}-act-warm-off vgchange -an linstor-vg\n\
         step {tag}-act-warm $LPD {args}\n\
         step {tag}-act-ref-off vgchange -an linstor-vg\n\
         step {tag}-act-ref timed act $LPD {args}\n",
        args = main("node-01"),
    ));
    for n in 0..activation {
        s.push_str(&format!(
            "step {tag}-act-{n}-off vgchange -an linstor-vg\n\
             step {tag}-act-{n}-kill killat act {p} 100 {args}\n\
             step {tag}-act-{n}-rerun $LPD {args}\n\
             step {tag}-act-{n}-state pool_state linstor-vg linstor-pool\n\
             step {tag}-act-{n}-data read_marker linstor-vg/keep linstor--vg-keep {len}\n",
            p = percent(n, activation),
            args = main("node-01"),
            len = format!("precious-{tag}").len(),
        ));
    }
    s.push_str(&format!(
        "step {tag}-reset-ref-thin lvcreate -q -V 32m -T linstor-vg/linstor-pool -n pvc-ref\n\
         step {tag}-reset-ref timed reset $LPD {args}\n",
        args = main("node-02"),
    ));
    for n in 0..reset {
        s.push_str(&format!(
            "step {tag}-reset-{n}-thin lvcreate -q -V 32m -T linstor-vg/linstor-pool -n pvc-{n}\n\
             step {tag}-reset-{n}-kill killat reset {p} 100 {args}\n\
             step {tag}-reset-{n}-rerun $LPD {args}\n\
             step {tag}-reset-{n}-state pool_state linstor-vg linstor-pool\n\
             step {tag}-reset-{n}-lvs sh -c 'lvs --noheadings -o lv_name linstor-vg | tr -d \" \"'\n",
            p = percent(n, reset),
            args = main(reset_target(n)),
        ));
    }
    s
}

/// The ID the `n`th reset goes to: the reference reset went to node-02, then the
/// ID alternates so that every round is a reset.
fn reset_target(n: usize) -> &'static str {
    if n.is_multiple_of(2) {
        "node-01"
    } else {
        "node-02"
    }
}

/// Checks the loops of [`main_disk_loops`]; returns the number of landed kills.
fn check_main_disk_loops(
    run: &GuestRun,
    tag: &str,
    fresh: usize,
    activation: usize,
    reset: usize,
) -> usize {
    let mut killed = 0;
    expect_provisioned(run, &format!("{tag}-fresh-warm"));
    run.expect_success(&format!("{tag}-fresh-warm-wipe"));
    expect_provisioned(run, &format!("{tag}-fresh-ref"));
    run.expect_success(&format!("{tag}-fresh-ref-wipe"));
    for n in 0..fresh {
        killed += usize::from(was_killed(run, &format!("{tag}-fresh-{n}-kill")));
        assert_converged(
            run,
            &format!("{tag}-fresh-{n}-rerun"),
            &format!("{tag}-fresh-{n}-state"),
            "node-01",
        );
        run.expect_success(&format!("{tag}-fresh-{n}-wipe"));
    }
    for s in [
        "setup",
        "thin",
        "marker",
        "act-warm-off",
        "act-warm",
        "act-ref-off",
    ] {
        run.expect_success(&format!("{tag}-{s}"));
    }
    expect_provisioned(run, &format!("{tag}-act-ref"));
    for n in 0..activation {
        run.expect_success(&format!("{tag}-act-{n}-off"));
        killed += usize::from(was_killed(run, &format!("{tag}-act-{n}-kill")));
        assert_converged(
            run,
            &format!("{tag}-act-{n}-rerun"),
            &format!("{tag}-act-{n}-state"),
            "node-01",
        );
        assert_eq!(
            run.expect_success(&format!("{tag}-act-{n}-data")).stdout,
            format!("precious-{tag}"),
            "{tag}-act-{n}: the thin volume's data changed"
        );
    }
    run.expect_success(&format!("{tag}-reset-ref-thin"));
    expect_provisioned(run, &format!("{tag}-reset-ref"));
    for n in 0..reset {
        run.expect_success(&format!("{tag}-reset-{n}-thin"));
        killed += usize::from(was_killed(run, &format!("{tag}-reset-{n}-kill")));
        assert_converged(
            run,
            &format!("{tag}-reset-{n}-rerun"),
            &format!("{tag}-reset-{n}-state"),
            reset_target(n),
        );
        assert_eq!(
            run.expect_success(&format!("{tag}-reset-{n}-lvs"))
                .stdout
                .trim(),
            "linstor-pool",
            "{tag}-reset-{n}: after a reset only the new pool is left"
        );
    }
    killed
}

/// Steps on the seed-tool disks (`seed0` is the reference): build the seed's layout,
/// adopt it under a kill, rerun, check the ID tag, the pool and the data.
fn seed_steps(dev: &dyn Fn(usize) -> String) -> String {
    let args = |n: usize| run_args(&format!("seed{n}"), &format!("seed{n}"), "node-01");
    let mut s = String::new();
    for n in 0..=SIDE_KILLS {
        s.push_str(&format!(
            "step seed-{n}-layout seed_layout {d} seed{n} node-01\n",
            d = dev(n)
        ));
    }
    s.push_str(&format!("step seed-ref timed seed $LPD {}\n", args(0)));
    for n in 1..=SIDE_KILLS {
        s.push_str(&format!(
            "step seed-{n}-kill killat seed {p} 100 {args}\n\
             step seed-{n}-rerun $LPD {args}\n\
             step seed-{n}-state pool_state seed{n} linstor-pool\n\
             step seed-{n}-data read_marker seed{n}/pvcdata seed{n}-pvcdata {len}\n",
            p = percent(n - 1, SIDE_KILLS),
            args = args(n),
            len = format!("precious-seed{n}").len(),
        ));
    }
    s
}

fn check_seed_steps(run: &GuestRun) -> usize {
    let mut killed = 0;
    for n in 0..=SIDE_KILLS {
        run.expect_success(&format!("seed-{n}-layout"));
    }
    expect_provisioned(run, "seed-ref");
    for n in 1..=SIDE_KILLS {
        killed += usize::from(was_killed(run, &format!("seed-{n}-kill")));
        expect_provisioned(run, &format!("seed-{n}-rerun"));
        let step = format!("seed-{n}-state");
        assert_pool_state(&step, &run.expect_success(&step).stdout, "node-01");
        assert_eq!(
            run.expect_success(&format!("seed-{n}-data")).stdout,
            format!("precious-seed{n}"),
            "seed{n}: adoption lost data"
        );
    }
    killed
}

/// Provisions the grow disks (`grow0` is the reference) with a thin volume holding
/// a marker, and leaves them inactive.
fn grow_setup_steps() -> String {
    let mut s = String::new();
    for n in 0..=SIDE_KILLS {
        let args = run_args(&format!("grow{n}"), &format!("grow{n}"), "node-01");
        s.push_str(&format!(
            "step grow-{n}-setup $LPD {args}\n\
             step grow-{n}-thin lvcreate -q -V 32m -T grow{n}/linstor-pool -n keep\n\
             step grow-{n}-marker marker grow{n}-keep grow{n}\n\
             step grow-{n}-off vgchange -an grow{n}\n",
        ));
    }
    s
}

/// After the grow disks doubled: the reference grow, then one kill per disk.
fn grow_steps() -> String {
    let args = |n: usize| run_args(&format!("grow{n}"), &format!("grow{n}"), "node-01");
    let mut s = format!("step grow-ref timed grow $LPD {}\n", args(0));
    for n in 1..=SIDE_KILLS {
        s.push_str(&format!(
            "step grow-{n}-kill killat grow {p} 100 {args}\n\
             step grow-{n}-rerun $LPD {args}\n\
             step grow-{n}-state pool_state grow{n} linstor-pool\n\
             step grow-{n}-free vgs --noheadings -o vg_free_count,pv_count,vg_size --units m --nosuffix grow{n}\n\
             step grow-{n}-data read_marker grow{n}/keep grow{n}-keep {len}\n",
            p = percent(n - 1, SIDE_KILLS),
            args = args(n),
            len = format!("precious-grow{n}").len(),
        ));
    }
    s
}

fn check_grow_steps(run: &GuestRun) -> usize {
    let mut killed = 0;
    expect_provisioned(run, "grow-ref");
    for n in 1..=SIDE_KILLS {
        killed += usize::from(was_killed(run, &format!("grow-{n}-kill")));
        expect_provisioned(run, &format!("grow-{n}-rerun"));
        let step = format!("grow-{n}-state");
        assert_pool_state(&step, &run.expect_success(&step).stdout, "node-01");
        let free = &run.expect_success(&format!("grow-{n}-free")).stdout;
        let cols: Vec<&str> = free.split_whitespace().collect();
        assert_eq!(
            cols.first(),
            Some(&"0"),
            "grow{n}: space left unused: {free:?}"
        );
        let vg_mib: f64 = cols
            .get(2)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("grow{n}: {free:?}"));
        assert!(vg_mib > 400.0, "grow{n}: the VG did not grow: {free:?}");
        assert_eq!(
            run.expect_success(&format!("grow-{n}-data")).stdout,
            format!("precious-grow{n}"),
            "grow{n}: the thin volume's data changed"
        );
    }
    killed
}

#[test]
fn kills_at_any_instant_converge_and_keep_matching_data() {
    let mut disks = vec![DiskSpec::new("storage", 1024).partition("linstor-storage", None)];
    for n in 0..=SIDE_KILLS {
        disks.push(DiskSpec::new(&format!("seed{n}"), 256).partition(&format!("seed{n}"), None));
    }
    for n in 0..=SIDE_KILLS {
        disks.push(DiskSpec::new(&format!("grow{n}"), 256).partition(&format!("grow{n}"), None));
    }
    let bed = bed(disks);
    let seed_dev = |n: usize| format!("/dev/vd{}1", char::from(b'b' + n as u8));

    // Boot 1: the main disk's loops; seed-tool nodes adopted under kills; the disks
    // that will grow are provisioned with a thin volume holding a marker.
    let script = format!(
        "{}{}{}",
        main_disk_loops("b1", FRESH_KILLS, ACTIVATION_KILLS, RESET_KILLS),
        seed_steps(&seed_dev),
        grow_setup_steps()
    );
    let first = boot_torture(&bed, false, &script);
    let mut killed =
        check_main_disk_loops(&first, "b1", FRESH_KILLS, ACTIVATION_KILLS, RESET_KILLS);
    killed += check_seed_steps(&first);
    for n in 0..=SIDE_KILLS {
        for s in ["setup", "thin", "marker", "off"] {
            first.expect_success(&format!("grow-{n}-{s}"));
        }
    }

    // Boot 2: every grow disk doubled; each grow is killed at its own instant.
    for n in 0..=SIDE_KILLS {
        let name = format!("grow{n}");
        grow_disk(&bed.disk_path(&name), "512M", &name);
    }
    let second = boot_torture(&bed, false, &grow_steps());
    killed += check_grow_steps(&second);

    // Boot 3: udevd running (it races LVM for /dev entries, as on a real host).
    let script = format!(
        "step b3-pre wipe_storage\n{}",
        main_disk_loops("b3", UDEV_KILLS, UDEV_KILLS, UDEV_KILLS)
    );
    let third = boot_torture(&bed, true, &script);
    third.expect_success("b3-pre");
    killed += check_main_disk_loops(&third, "b3", UDEV_KILLS, UDEV_KILLS, UDEV_KILLS);

    let instants = FRESH_KILLS + ACTIVATION_KILLS + RESET_KILLS + 2 * SIDE_KILLS + 3 * UDEV_KILLS;
    eprintln!("{killed} of {instants} kills landed while the tool was running");
    assert!(
        killed >= 40,
        "only {killed} of {instants} kills landed while the tool ran"
    );
}
