//! A reset's native first step: the active thin volumes of the VG about to be
//! removed lose their device-mapper devices (`DM_DEV_REMOVE`) before `lvremove`
//! runs. LVM deactivates one volume at a time through its whole activation path:
//! 26 s for 1,000 volumes under TCG, most of a reset. A thin device's removal
//! writes nothing to the pool's metadata; the kernel's cost is waiting for RCU
//! grace periods (~24 ms per device there), which removals from several threads
//! wait for together.
//!
//! The same re-checks as every native removal (see [`super::leftovers`]): under
//! LVM's lock of the VG, each device must still be the one observed (uuid, name,
//! device number) and nothing stacked on it. One open for a moment (or that the
//! kernel refuses with EBUSY, opened since the look) is looked at again for a few
//! seconds, as LVM does; anything else stops the step and the partition is
//! observed again, so a volume put to use since is never pulled away.
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::leftovers::{
    current_device, lock_dir, not_observed, remove_with_node, why_not_remove, ExpectedDevice,
    LeftoverError, RemovalContext,
};
use super::vg_lock::VgLock;
use crate::config::names::VgName;
use crate::ffi::dm_remove::DmRemoveError;
use crate::observe::live::{ActiveLv, LvmLayer};

/// Removals in flight at once: enough to overlap the kernel's waits for 1,000
/// devices, few enough to stay a small burst of threads.
const REMOVAL_THREADS: usize = 16;

/// LVM's patience with a device open for a moment (udev's `blkid` after a write,
/// or while it works through a boot's events): looks 0.2 s apart for ~5 s
/// (`lv_check_not_in_use`, libdm's `retry_remove`) before it calls it in use.
const BUSY_LOOKS: u32 = 25;
const BUSY_PAUSE: Duration = Duration::from_millis(200);
/// The whole step's patience: no device is waited for once this much has passed
/// (or once another removal failed), so LVM's VG lock is never held for long.
const STEP_PATIENCE: Duration = Duration::from_secs(15);

/// Whether a busy device may still be waited for.
struct Patience {
    until: Instant,
    stopped: AtomicBool,
}

impl Patience {
    fn allows_another_look(&self, looks: u32) -> bool {
        looks < BUSY_LOOKS && Instant::now() < self.until && !self.stopped.load(Ordering::Relaxed)
    }
}

/// Removes the devices named `dm_names`, as the plan's observation saw them: the
/// active thin volumes of `volume_group` (in any order, several at once), then any
/// pool `-tpool` listed (held by those volumes only), in order.
pub fn deactivate_thin_volumes(
    volume_group: &VgName,
    dm_names: &[String],
    context: &RemovalContext<'_>,
) -> Result<(), LeftoverError> {
    let Some(first) = dm_names.first() else {
        return Ok(());
    };
    let lock_dir = lock_dir(context, first)?;
    let started = Instant::now();
    let _lvm_lock = VgLock::acquire(lock_dir, volume_group.as_str())?;
    let observed: HashMap<&str, &ActiveLv> = context
        .observed
        .iter()
        .map(|device| (device.dm_name.as_str(), device))
        .collect();
    let mut volumes = Vec::new();
    let mut pools = Vec::new();
    for name in dm_names {
        let device = observed
            .get(name.as_str())
            .ok_or_else(|| not_observed(name))?;
        match device.layer {
            None => volumes.push(ExpectedDevice::of(device, false)),
            Some(LvmLayer::Tpool) => pools.push(ExpectedDevice::of(device, false)),
            // Never another layer: LVM deactivates those with their LV.
            Some(_) => {
                return Err(LeftoverError::ChangedSinceObserved {
                    dm_name: name.clone(),
                    why: "it is a layer device, neither a thin volume's nor a pool's -tpool"
                        .to_owned(),
                })
            }
        }
    }
    let patience = Patience {
        until: started + STEP_PATIENCE,
        stopped: AtomicBool::new(false),
    };
    remove_concurrently(&volumes, &patience)?;
    for pool in &pools {
        remove_checked(pool, &patience)?;
    }
    tracing::info!(
        volume_group = %volume_group,
        devices = dm_names.len(),
        duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "removed the thin volumes' device-mapper devices"
    );
    Ok(())
}

/// Removes `expected`'s device if it is still the device observed and unheld. A
/// device only open (nothing stacked on it), or one the kernel finds opened since
/// the look (EBUSY), is looked at again while `patience` allows; still busy, it is
/// left, and the partition observed again (an open volume is then the reset's
/// refusal).
fn remove_checked(expected: &ExpectedDevice, patience: &Patience) -> Result<(), LeftoverError> {
    let changed = |why: String| LeftoverError::ChangedSinceObserved {
        dm_name: expected.dm_name.clone(),
        why,
    };
    let mut looks = 0;
    loop {
        looks += 1;
        let patient = patience.allows_another_look(looks);
        let current = current_device(expected)?;
        let only_open = current.as_ref().is_some_and(|c| {
            c.open_count > 0
                && c.holders.is_empty()
                && c.dm_name == expected.dm_name
                && (c.major, c.minor) == (expected.major, expected.minor)
        });
        if only_open && patient {
            std::thread::sleep(BUSY_PAUSE);
            continue;
        }
        if let Some(why) = why_not_remove(expected, current.as_ref(), false) {
            return Err(changed(why));
        }
        match remove_with_node(expected) {
            Ok(()) => break,
            Err(LeftoverError::Device(DmRemoveError::Ioctl {
                errno: nix::errno::Errno::EBUSY,
                ..
            })) => {
                if !patient {
                    return Err(changed(
                        "the kernel still refuses to remove it (EBUSY): it is open".to_owned(),
                    ));
                }
                std::thread::sleep(BUSY_PAUSE);
            }
            Err(e) => return Err(e),
        }
    }
    tracing::debug!(dm_name = %expected.dm_name, dm_uuid = %expected.dm_uuid, looks, "removed a thin volume's device-mapper device");
    Ok(())
}

/// Removes `devices` (none stacked on another) from up to [`REMOVAL_THREADS`]
/// threads; after the first failure no further removal starts and no busy device
/// is waited for. Of several failures, one that is not "observe again" is
/// returned (it would recur), the others logged. A thread that cannot be started
/// leaves its share to the others (the calling thread works too).
fn remove_concurrently(
    devices: &[ExpectedDevice],
    patience: &Patience,
) -> Result<(), LeftoverError> {
    let next = AtomicUsize::new(0);
    let work = || -> Result<(), LeftoverError> {
        while !patience.stopped.load(Ordering::Relaxed) {
            let Some(device) = devices.get(next.fetch_add(1, Ordering::Relaxed)) else {
                break;
            };
            if let Err(e) = remove_checked(device, patience) {
                patience.stopped.store(true, Ordering::Relaxed);
                return Err(e);
            }
        }
        Ok(())
    };
    std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..devices.len().min(REMOVAL_THREADS))
            .filter_map(|_| std::thread::Builder::new().spawn_scoped(scope, work).ok())
            .collect();
        let mut failures: Vec<LeftoverError> = work().err().into_iter().collect();
        for helper in helpers {
            // Only a panic fails a join, and release builds abort on panic.
            match helper.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failures.push(e),
                Err(_) => failures.push(LeftoverError::Recheck {
                    dm_name: String::new(),
                    why: "a removal thread panicked".to_owned(),
                }),
            }
        }
        let hard = failures
            .iter()
            .position(|e| !e.is_changed_since_observed())
            .unwrap_or(0);
        if failures.len() > 1 {
            for (i, other) in failures.iter().enumerate().filter(|(i, _)| *i != hard) {
                tracing::debug!(failure = i, "another removal stopped too: {other}");
            }
        }
        match failures.into_iter().nth(hard) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    })
}
