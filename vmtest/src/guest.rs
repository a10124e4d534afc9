//! What runs inside the guest (init, the `step` helper, config files) and
//! the host-side parser for what the guest reports.

/// PID 1. Options arrive on the kernel command line (`vmtest.*=`); the test
/// script arrives in the per-boot initramfs overlay as /vmtest/script.sh.
pub(crate) const INIT: &str = r#"#!/bin/sh
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/usr/lib/vmtest/busybox
export HOME=/root TERM=dumb LANG=C
# A foreign-architecture guest brings its busybox without applet links (the host
# can't run that busybox to list them): it makes them itself.
[ -e /usr/lib/vmtest/busybox/cat ] || /usr/bin/busybox --install -s /usr/lib/vmtest/busybox
stage() { read _vt_up _ </proc/uptime; echo "vmtest-stage: $* (uptime $_vt_up)"; }
mount -t proc proc /proc
containers=0
case " $(cat /proc/cmdline) " in *" vmtest.containers=1 "*) containers=1 ;; esac
if [ "$containers" = 1 ] && [ ! -e /.vmtest-tmpfs-root ]; then
  # Container runtimes pivot_root into the container, which the kernel
  # refuses while / is the initramfs: copy / to a tmpfs and start over there.
  mkdir /newroot
  mount -t tmpfs -o mode=0755 tmpfs /newroot
  for f in /*; do
    case "$f" in /proc|/newroot) ;; *) cp -a "$f" /newroot/ ;; esac
  done
  mkdir /newroot/proc
  : >/newroot/.vmtest-tmpfs-root
  stage "root copied to a tmpfs"
  umount /proc
  exec switch_root /newroot /init
fi
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /tmp
mkdir -p /run/lock /run/lvm /run/udev /run/cryptsetup
hostname vmtest
if [ "$containers" = 1 ]; then
  # cgroup v1, one hierarchy per controller: podman (cgroupfs manager) and
  # runc both run privileged containers under it.
  mount -t tmpfs -o mode=0755 cgroup /sys/fs/cgroup
  for c in $(awk 'NR > 1 && $4 == 1 { print $1 }' /proc/cgroups); do
    mkdir -p "/sys/fs/cgroup/$c"
    mount -t cgroup -o "$c" cgroup "/sys/fs/cgroup/$c" || echo "vmtest: cgroup $c FAILED"
  done
  mkdir -p /var/lib/containers /run/containers /var/tmp
fi
stage mounted
udevd=0; modules=; disks=0; results=/dev/ttyS1
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    vmtest.udevd=*) udevd=${arg#*=} ;;
    vmtest.results=*) results=${arg#*=} ;;
    vmtest.modules=*) modules=$(echo "${arg#*=}" | tr , ' ') ;;
    vmtest.disks=*) disks=${arg#*=} ;;
  esac
done
for m in $(cat /etc/vmtest/boot-modules) $modules; do
  modprobe "$m" || echo "vmtest: modprobe $m FAILED"
done
stage modules
i=0
while [ "$(ls /sys/class/block | grep -c '^vd[a-z]*$')" -lt "$disks" ]; do
  i=$((i+1))
  if [ $i -gt 200 ]; then echo "vmtest: only $(ls /sys/class/block | tr '\n' ' ') after 20s, expected $disks virtio disks"; break; fi
  sleep 0.1
done
stage disks
if [ "$udevd" = 1 ]; then
  /usr/lib/systemd/systemd-udevd --daemon --resolve-names=never
  # Block devices and misc (device-mapper control) only: triggering all
  # ~230 devices costs seconds under TCG and tells a disk tool nothing.
  udevadm trigger --type=devices --action=add --subsystem-match=block --subsystem-match=misc
  udevadm settle --timeout=60 || echo "vmtest: udevadm settle timed out"
  stage udev
fi
R=$results
if [ -c "$R" ]; then stty -F "$R" raw -echo 2>/dev/null; else R=/dev/console; fi
export VMTEST_RESULTS=$R
read up _ </proc/uptime
echo "@@VMTEST:SCRIPT-START:$up" >"$R"
stage "script-start uptime=$up"
sh -c '. /usr/lib/vmtest/steplib.sh; . /vmtest/script.sh' </dev/null
rc=$?
read up _ </proc/uptime
echo "@@VMTEST:SCRIPT-EXIT:$rc" >"$R"
stage "script-exit $rc uptime=$up"
sync
poweroff -f
echo o >/proc/sysrq-trigger
sleep 30
"#;

/// Sourced before the test script: defines `step NAME CMD ARGS...`.
pub(crate) const STEPLIB: &str = r#"
step() {
  _vt_name=$1
  shift
  "$@" >/tmp/.vmtest-out 2>/tmp/.vmtest-err </dev/null
  _vt_rc=$?
  {
    echo "@@VMTEST:STEP-BEGIN:$_vt_name"
    echo "@@VMTEST:RC:$_vt_rc"
    echo "@@VMTEST:STDOUT"
    base64 </tmp/.vmtest-out
    echo "@@VMTEST:STDERR"
    base64 </tmp/.vmtest-err
    echo "@@VMTEST:STEP-END"
  } >"$VMTEST_RESULTS"
  echo "vmtest-step: $_vt_name exit=$_vt_rc"
  head -n 40 /tmp/.vmtest-out | while IFS= read -r _vt_l; do echo "  $_vt_name out| $_vt_l"; done
  head -n 40 /tmp/.vmtest-err | while IFS= read -r _vt_l; do echo "  $_vt_name err| $_vt_l"; done
  return $_vt_rc
}
"#;

/// LVM configuration for a guest where udev may not run: never wait for
/// udev, never ask it for the device list, no daemons.
pub(crate) const LVM_CONF: &str = r#"# written by vmtest
devices {
    obtain_device_list_from_udev = 0
    external_device_info_source = "none"
    use_devicesfile = 0
}
activation {
    udev_sync = 0
    udev_rules = 0
    monitoring = 0
}
global {
    use_lvmpolld = 0
    event_activation = 0
}
"#;

/// Container policy for `BootOptions::containers`: every image is trusted
/// (they come from the test, never from a registry).
pub(crate) const CONTAINERS_POLICY: &str =
    "{\"default\": [{\"type\": \"insecureAcceptAnything\"}]}\n";

/// Image storage on the guest's tmpfs root; vfs needs no overlay module.
pub(crate) const CONTAINERS_STORAGE: &str = r#"# written by vmtest
[storage]
driver = "vfs"
runroot = "/run/containers/storage"
graphroot = "/var/lib/containers/storage"
"#;

/// No systemd and no journald in the guest; runc is the runtime that works
/// with the guest's cgroup v1 hierarchies.
pub(crate) const CONTAINERS_CONF: &str = r#"# written by vmtest
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
conmon_path = ["/usr/bin/conmon"]
init_path = "/usr/bin/catatonit"

[network]
network_backend = "netavark"
"#;

pub(crate) const HOSTS: &str = "127.0.0.1 localhost\n::1 localhost\n";

pub(crate) const PASSWD: &str =
    "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";

pub(crate) const GROUP: &str = "root:x:0:\ntty:x:5:\ndisk:x:6:\nlp:x:7:\nkmem:x:15:\ndialout:x:20:\nfloppy:x:25:\ncdrom:x:24:\ntape:x:26:\naudio:x:29:\nvideo:x:44:\ninput:x:101:\nkvm:x:102:\nrender:x:103:\nsgx:x:104:\nnogroup:x:65534:\n";

/// One `step` as reported by the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub name: String,
    pub exit_code: i32,
    /// stdout decoded as UTF-8 (lossy); `stdout_raw` has the exact bytes.
    pub stdout: String,
    pub stderr: String,
    pub stdout_raw: Vec<u8>,
    pub stderr_raw: Vec<u8>,
}

#[derive(Debug, Default)]
pub(crate) struct Report {
    pub(crate) steps: Vec<Step>,
    pub(crate) script_started_at: Option<f64>,
    pub(crate) script_exit: Option<i32>,
    pub(crate) problems: Vec<String>,
}

const P: &str = "@@VMTEST:";

/// Parses the result channel. Lines not starting with the marker prefix are
/// ignored outside a step (so the console can be parsed as a fallback).
pub(crate) fn parse_report(text: &str) -> Report {
    let mut r = Report::default();
    let mut cur: Option<(String, Option<i32>, String, String, u8)> = None; // name, rc, out, err, section
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(rest) = line.strip_prefix(P) {
            if let Some(name) = rest.strip_prefix("STEP-BEGIN:") {
                if let Some((n, ..)) = cur.take() {
                    r.problems.push(format!("step {n:?} was not terminated"));
                }
                cur = Some((name.to_string(), None, String::new(), String::new(), 0));
            } else if let Some(rc) = rest.strip_prefix("RC:") {
                if let Some(c) = cur.as_mut() {
                    c.1 = rc.trim().parse().ok();
                }
            } else if rest == "STDOUT" {
                if let Some(c) = cur.as_mut() {
                    c.4 = 1;
                }
            } else if rest == "STDERR" {
                if let Some(c) = cur.as_mut() {
                    c.4 = 2;
                }
            } else if rest == "STEP-END" {
                if let Some((name, rc, out, err, _)) = cur.take() {
                    let stdout_raw = decode_base64(&out).unwrap_or_else(|e| {
                        r.problems.push(format!("step {name:?}: stdout: {e}"));
                        Vec::new()
                    });
                    let stderr_raw = decode_base64(&err).unwrap_or_else(|e| {
                        r.problems.push(format!("step {name:?}: stderr: {e}"));
                        Vec::new()
                    });
                    r.steps.push(Step {
                        exit_code: rc.unwrap_or_else(|| {
                            r.problems.push(format!("step {name:?} has no exit code"));
                            -1
                        }),
                        name,
                        stdout: String::from_utf8_lossy(&stdout_raw).into_owned(),
                        stderr: String::from_utf8_lossy(&stderr_raw).into_owned(),
                        stdout_raw,
                        stderr_raw,
                    });
                }
            } else if let Some(t) = rest.strip_prefix("SCRIPT-START:") {
                r.script_started_at = t.trim().parse().ok();
            } else if let Some(rc) = rest.strip_prefix("SCRIPT-EXIT:") {
                r.script_exit = rc.trim().parse().ok();
            }
        } else if let Some(c) = cur.as_mut() {
            match c.4 {
                1 => c.2.push_str(line.trim()),
                2 => c.3.push_str(line.trim()),
                _ => {}
            }
        }
    }
    if let Some((n, ..)) = cur {
        r.problems.push(format!("step {n:?} was cut off"));
    }
    r
}

fn decode_base64(s: &str) -> Result<Vec<u8>, String> {
    fn val(c: u8) -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some((c - b'A') as u32),
            b'a'..=b'z' => Some((c - b'a') as u32 + 26),
            b'0'..=b'9' => Some((c - b'0') as u32 + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let bytes: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !bytes.len().is_multiple_of(4) {
        return Err(format!(
            "base64 length {} is not a multiple of 4",
            bytes.len()
        ));
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for chunk in bytes.chunks(4) {
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            let v = if i >= 4 - pad {
                0
            } else {
                val(c).ok_or_else(|| format!("invalid base64 byte {c:#x}"))?
            };
            n = (n << 6) | v;
        }
        let b = n.to_be_bytes();
        out.extend_from_slice(&b[1..4 - pad]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_known_values() {
        assert_eq!(decode_base64("").unwrap(), b"");
        assert_eq!(decode_base64("Zg==").unwrap(), b"f");
        assert_eq!(decode_base64("Zm8=").unwrap(), b"fo");
        assert_eq!(decode_base64("Zm9v\nYmFy").unwrap(), b"foobar");
        assert_eq!(decode_base64("AP8K").unwrap(), vec![0, 255, 10]);
        assert!(decode_base64("Zm9").is_err());
    }

    #[test]
    fn report_is_parsed() {
        let text = "noise\n@@VMTEST:SCRIPT-START:1.50\r\n@@VMTEST:STEP-BEGIN:a b\n@@VMTEST:RC:3\n@@VMTEST:STDOUT\naGVs\nbG8K\n@@VMTEST:STDERR\n@@VMTEST:STEP-END\n@@VMTEST:SCRIPT-EXIT:0\n";
        let r = parse_report(text);
        assert_eq!(r.steps.len(), 1);
        assert_eq!(r.steps[0].name, "a b");
        assert_eq!(r.steps[0].exit_code, 3);
        assert_eq!(r.steps[0].stdout, "hello\n");
        assert_eq!(r.steps[0].stderr, "");
        assert_eq!(r.script_started_at, Some(1.5));
        assert_eq!(r.script_exit, Some(0));
        assert!(r.problems.is_empty());
    }
}
