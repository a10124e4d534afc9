//! Guest shell functions that put a node "at scale" quickly under TCG, shared by
//! `tests/vm_scale.rs` and `cargo xtask bench --scale`.
//!
//! - `add_thins VG POOL N` adds N active thin volumes with LINSTOR's names
//!   (`pvc-<uuid>_00000`, one tag each) to an active thin pool in one metadata
//!   restore: each thin device is created in the pool's kernel metadata with
//!   `dmsetup message … create_thin`, the pool's transaction id is moved on to
//!   match, then `vgcfgrestore --force` of the backup with the LVs spliced in and
//!   one `vgchange -ay`. 1,000 `lvcreate`s take ~10 minutes under TCG; this ~1.
//! - `add_other_devices N` makes N more block devices of another kind: loop
//!   devices (`modprobe loop max_loop=N`). In sysfs they look as DRBD's do —
//!   whole disks under `devices/virtual/block`, no partitions, no `dm/` folder,
//!   not known to device-mapper — which is what a LINSTOR node adds one of per
//!   resource. (dm linear devices would instead look like more LVM volumes to a
//!   `dm-N` walk.)
//!
//! The guest's sh is dash: no arrays, no `pipefail`; only builtins and the
//! tools the test bed ships (lvm, dmsetup, kmod).

/// Defines `add_thins` and `add_other_devices` (see the module docs). Both fail
/// (non-zero) with a message when a step fails.
pub const SCALE_SH: &str = r#"
dm_escape() { _o= _r=$1; while [ -n "$_r" ]; do _c=${_r%"${_r#?}"}; _r=${_r#?}; [ "$_c" = - ] && _c=--; _o=$_o$_c; done; printf %s "$_o"; }
add_thins() {
  _vg=$1 _pool=$2 _n=$3
  _dev=$(dm_escape "$_vg")-$(dm_escape "$_pool")
  dmsetup info "$_dev-tpool" >/dev/null 2>&1 && _dev=$_dev-tpool
  _status=$(dmsetup status "$_dev") || { echo "add_thins: no pool device $_dev" >&2; return 1; }
  set -- $_status
  _t0=$4
  _i=1
  while [ $_i -le $_n ]; do
    dmsetup message "$_dev" 0 "create_thin $((_t0 + _i))" || { echo "add_thins: create_thin $((_t0 + _i)) failed" >&2; return 1; }
    _i=$((_i + 1))
  done
  _t1=$((_t0 + _n))
  dmsetup message "$_dev" 0 "set_transaction_id $_t0 $_t1" || return 1
  vgcfgbackup -q -f /tmp/scale-before.vg "$_vg" >/dev/null || return 1
  : >/tmp/scale-after.vg
  _in_pool=0
  while IFS= read -r _line; do
    case "$_line" in
      *"transaction_id = "*)
        if [ $_in_pool = 1 ]; then _line="${_line%%transaction_id*}transaction_id = $_t1"; _in_pool=0; fi ;;
    esac
    case "$_line" in
      "		$_pool {") _in_pool=1 ;;
    esac
    printf '%s\n' "$_line" >>/tmp/scale-after.vg
    case "$_line" in
      "	logical_volumes {")
        _i=1
        while [ $_i -le $_n ]; do
          _id=$((_t0 + _i))
          printf '\t\tpvc-%08x-0000-4000-8000-%012x_00000 {\n\t\t\tid = "Thin%02d-%04d-%04d-%04d-%04d-%04d-%06d"\n\t\t\tstatus = ["READ", "WRITE", "VISIBLE"]\n\t\t\tflags = []\n\t\t\ttags = ["linstor_rsc_%d"]\n\t\t\tcreation_time = 1700000000\n\t\t\tcreation_host = "node-01"\n\t\t\tsegment_count = 1\n\n\t\t\tsegment1 {\n\t\t\t\tstart_extent = 0\n\t\t\t\textent_count = 1\n\n\t\t\t\ttype = "thin"\n\t\t\t\tthin_pool = "%s"\n\t\t\t\ttransaction_id = %d\n\t\t\t\tdevice_id = %d\n\t\t\t}\n\t\t}\n\n' \
            $_id $_id 0 0 0 0 0 0 $_id $_id "$_pool" $((_id - 1)) $_id >>/tmp/scale-after.vg
          _i=$((_i + 1))
        done ;;
    esac
  done </tmp/scale-before.vg
  vgchange -q -an "$_vg" >/dev/null || return 1
  vgcfgrestore -q --force -f /tmp/scale-after.vg "$_vg" >/dev/null 2>/tmp/scale-restore.err || { cat /tmp/scale-restore.err >&2; return 1; }
  vgchange -q -ay "$_vg" >/dev/null || return 1
}
add_other_devices() {
  modprobe loop max_loop=$1 || return 1
  _have=0
  for _d in /sys/class/block/loop*; do _have=$((_have + 1)); done
  [ $_have -ge $1 ] || { echo "add_other_devices: $_have loop devices, wanted $1" >&2; return 1; }
}
"#;
