//! The guest architectures the bed boots, and what differs between them on the
//! qemu side: the emulator, the machine, the serial ports.

use std::ffi::OsString;
use std::path::Path;

/// The guest's CPU architecture. Every guest runs under TCG (no KVM here), so an
/// aarch64 guest on an x86_64 host is just slower, not different.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Arch {
    /// `qemu-system-x86_64 -machine pc`, Debian's `linux-image-cloud-amd64`, and
    /// the host's own programs as the guest userland.
    #[default]
    X86_64,
    /// `qemu-system-aarch64 -machine virt`, Debian's `linux-image-cloud-arm64`,
    /// and an arm64 userland from a Debian root (see [`crate::AARCH64_ROOT_PACKAGES`]).
    /// No udevd and no container tooling in this guest.
    Aarch64,
    /// [`Arch::Aarch64`] with 16 KiB pages, the Raspberry Pi 5's page size: Debian's
    /// `linux-image-6.12-arm64-16k` (bookworm-security) on a `cortex-a76`, the same
    /// arm64 userland. Whatever assumes 4 KiB pages (LVM puts its metadata area at
    /// the page size) shows up here.
    Aarch64Pages16K,
}

/// qemu's CPU model for aarch64 guests: `cortex-a57`, ARMv8.0 like the Raspberry
/// Pi 4's Cortex-A72 (the oldest core the artifact must run on). Measured here
/// (a boot running a fresh provision and six resets, 1 vCPU): cortex-a57 8–10 s,
/// neoverse-n1 8–10 s, `max,pauth-impdef=on` 11 s, `max` 27 s — `max`'s pointer
/// authentication, emulated with the architected algorithm, slows TCG down 3×.
pub(crate) const AARCH64_CPU: &str = "cortex-a57";

/// qemu's CPU model for 16 KiB-page guests: `cortex-a76`, the Raspberry Pi 5's core.
/// cortex-a57 implements no 16 KiB translation granule (`ID_AA64MMFR0_EL1.TGran16`
/// is 0), so a 16K kernel stops before its first message there.
pub(crate) const AARCH64_16K_CPU: &str = "cortex-a76";

/// Kernel command line of an aarch64 guest: the PL011 console, results on the PCI
/// serial port (the `virt` machine has one UART), and the x86 line's boot-time savers
/// that apply to arm64.
const AARCH64_CMDLINE: &str = "console=ttyAMA0 rdinit=/init panic=-1 oops=panic loglevel=4 \
     mitigations=off cryptomgr.notests nokaslr audit=0 lsm= random.trust_cpu=on \
     vmtest.results=/dev/ttyS0";

impl Arch {
    /// What `uname -m` says in the guest.
    pub fn uname_machine(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 | Arch::Aarch64Pages16K => "aarch64",
        }
    }

    /// The guest kernel's page size (`getconf PAGESIZE` in the guest).
    pub fn page_size(self) -> u64 {
        match self {
            Arch::X86_64 | Arch::Aarch64 => 4096,
            Arch::Aarch64Pages16K => 16384,
        }
    }

    /// Debian's name for it (`dpkg --print-architecture`).
    pub fn debian_arch(self) -> &'static str {
        match self {
            Arch::X86_64 => "amd64",
            Arch::Aarch64 | Arch::Aarch64Pages16K => "arm64",
        }
    }

    /// The emulator and the Debian package that provides it.
    pub(crate) fn qemu(self) -> (&'static str, &'static str) {
        match self {
            Arch::X86_64 => ("qemu-system-x86_64", "qemu-system-x86"),
            Arch::Aarch64 | Arch::Aarch64Pages16K => ("qemu-system-aarch64", "qemu-system-arm"),
        }
    }

    /// The kernel command line before the bed's `vmtest.*` options.
    pub(crate) fn base_cmdline(self) -> &'static str {
        match self {
            Arch::X86_64 => crate::BASE_CMDLINE,
            Arch::Aarch64 | Arch::Aarch64Pages16K => AARCH64_CMDLINE,
        }
    }

    /// Accelerator, machine and CPU.
    pub(crate) fn machine_args(self) -> [&'static str; 6] {
        match self {
            Arch::X86_64 => ["-accel", "tcg", "-machine", "pc", "-cpu", "max"],
            Arch::Aarch64 => ["-accel", "tcg", "-machine", "virt", "-cpu", AARCH64_CPU],
            Arch::Aarch64Pages16K => ["-accel", "tcg", "-machine", "virt", "-cpu", AARCH64_16K_CPU],
        }
    }

    /// The console (kernel log, init's stages) and the results channel (the
    /// `step` reports): two 16550 UARTs on x86 (ttyS0, ttyS1); on the `virt`
    /// machine its PL011 (ttyAMA0) and a PCI 16550 (ttyS0).
    pub(crate) fn serial_args(self, console: &Path, results: &Path) -> Vec<OsString> {
        let file = |p: &Path| format!("file:{}", p.display());
        match self {
            Arch::X86_64 => vec![
                "-serial".into(),
                file(console).into(),
                "-serial".into(),
                file(results).into(),
            ],
            Arch::Aarch64 | Arch::Aarch64Pages16K => vec![
                "-serial".into(),
                file(console).into(),
                "-chardev".into(),
                format!(
                    "file,id=results,path={}",
                    results.display().to_string().replace(',', ",,")
                )
                .into(),
                "-device".into(),
                "pci-serial,chardev=results".into(),
            ],
        }
    }
}
