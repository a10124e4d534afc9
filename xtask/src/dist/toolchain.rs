//! The C toolchain each architecture's static build compiles libaio, LVM2 and
//! libblkid with, and the Debian packages that bring it.
//!
//! x86_64 is a native build: Debian's `musl-gcc` (musl-tools) and the host's
//! kernel headers (linux-libc-dev).
//!
//! aarch64 is cross-built with the same shape, all from Debian's archive:
//! `aarch64-linux-musl-gcc`, the wrapper Debian's `musl-dev:arm64` ships (it runs
//! the cross gcc of `gcc-aarch64-linux-gnu` with musl's specs file, exactly as
//! `musl-gcc` runs the host gcc), kernel headers from `linux-libc-dev-arm64-cross`,
//! binutils from `binutils-aarch64-linux-gnu`, and the same cross gcc as Rust's
//! linker. Chosen over `zig cc` (PyPI `ziglang`) because it is the x86_64 recipe
//! with one more package set: the same musl release, the same gcc major version
//! and flags, the same autotools cross-compiling conventions (`--host`), versions
//! pinned by the Debian release rather than by a second package registry; and Rust
//! links through a plain gcc driver with its own self-contained musl start files,
//! as on x86_64, instead of through zig's libc and crt objects.
//! The price: `dpkg --add-architecture arm64` (for `musl-dev:arm64`), which
//! `cargo xtask deps` and `cargo xtask dist --target aarch64` do themselves.
use super::Arch;

/// How one architecture's C code is compiled.
pub(super) struct CToolchain {
    /// The compiler command (a musl-gcc style wrapper).
    pub cc: &'static str,
    /// (name in the kernel header folder, host folder it links to, Debian package).
    pub kernel_headers: &'static [(&'static str, &'static str, &'static str)],
    /// Set when the code runs on another machine than the build's.
    pub cross: Option<Cross>,
    /// Appended to the cache folders' names (`target/lvm2-musl<suffix>/`), so each
    /// architecture has its own.
    pub cache_suffix: &'static str,
}

impl CToolchain {
    /// `configure` arguments naming the build and host systems (none for a native build).
    pub fn configure_args(&self) -> Vec<String> {
        match &self.cross {
            None => Vec::new(),
            Some(cross) => vec![
                format!("--host={}", cross.host),
                format!("--build={}", cross.build),
            ],
        }
    }

    /// The cross binutils as make/configure variables (nothing for a native build).
    pub fn binutils(&self) -> Vec<(String, String)> {
        let Some(cross) = &self.cross else {
            return Vec::new();
        };
        ["AR", "RANLIB", "NM", "STRIP", "OBJDUMP"]
            .iter()
            .map(|tool| {
                (
                    (*tool).to_owned(),
                    format!("{}{}", cross.binutils_prefix, tool.to_ascii_lowercase()),
                )
            })
            .collect()
    }

    /// Environment for configure and make: the cross binutils and the configure
    /// answers (nothing for a native build).
    pub fn env(&self) -> Vec<(String, String)> {
        let Some(cross) = &self.cross else {
            return Vec::new();
        };
        let mut env = self.binutils();
        env.extend(
            cross
                .configure_answers
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned())),
        );
        env
    }

    /// Text for the recipe hashes: empty for the native build (its cache keys stay
    /// what they were before there was a second architecture).
    pub fn cache_text(&self) -> String {
        match &self.cross {
            None => String::new(),
            Some(cross) => format!("|{}|{}", self.cc, cross.describe()),
        }
    }
}

/// What autotools and plain Makefiles need to cross-compile.
pub(super) struct Cross {
    /// `configure --host` (the system the code runs on).
    pub host: &'static str,
    /// `configure --build` (this machine).
    pub build: &'static str,
    /// Prefix of the cross binutils (`<prefix>ar`, `<prefix>ranlib`, …).
    pub binutils_prefix: &'static str,
    /// configure results found by running a test program, which a cross build
    /// cannot: given as autoconf cache variables, so the cross build's
    /// configuration headers equal the native one's except for what truly differs
    /// by architecture.
    pub configure_answers: &'static [(&'static str, &'static str)],
}

impl Cross {
    /// Everything that shapes the build, for the cache keys.
    pub fn describe(&self) -> String {
        let mut text = format!("{}|{}|{}", self.host, self.build, self.binutils_prefix);
        for (name, value) in self.configure_answers {
            text.push_str(&format!("|{name}={value}"));
        }
        text
    }
}

pub(super) fn for_arch(arch: Arch) -> CToolchain {
    match arch {
        Arch::X86_64 => CToolchain {
            cc: "musl-gcc",
            kernel_headers: &[
                ("linux", "/usr/include/linux", "linux-libc-dev"),
                ("asm", "/usr/include/x86_64-linux-gnu/asm", "linux-libc-dev"),
                ("asm-generic", "/usr/include/asm-generic", "linux-libc-dev"),
            ],
            cross: None,
            cache_suffix: "",
        },
        Arch::Aarch64 => CToolchain {
            cc: "aarch64-linux-musl-gcc",
            kernel_headers: AARCH64_KERNEL_HEADERS,
            cross: Some(Cross {
                host: "aarch64-linux-musl",
                build: "x86_64-linux-gnu",
                binutils_prefix: "aarch64-linux-gnu-",
                configure_answers: MUSL_RUN_TEST_ANSWERS,
            }),
            cache_suffix: "-aarch64",
        },
    }
}

/// What LVM2's and util-linux's configure find by running their test programs
/// against musl on Linux (the native x86_64 build's answers, a property of musl and
/// the kernel, not of the CPU). Left to guess, a cross configure assumes the worst:
/// malloc(0)/realloc(NULL, 0) broken (redirected to rpl_malloc/rpl_realloc, which
/// nothing defines), no working mmap, chown, memcmp, mktime or strtod, closedir
/// returning void, stat("") succeeding. Verified by diffing LVM2's
/// include/configure.h and util-linux's config.h of both builds: only the configure
/// line, the multiarch triplet and x86's ioperm/iopl differ.
const MUSL_RUN_TEST_ANSWERS: &[(&str, &str)] = &[
    ("ac_cv_func_malloc_0_nonnull", "yes"),
    ("ac_cv_func_realloc_0_nonnull", "yes"),
    ("ac_cv_func_mmap_fixed_mapped", "yes"),
    ("ac_cv_func_chown_works", "yes"),
    ("ac_cv_func_fork_works", "yes"),
    ("ac_cv_func_vfork_works", "yes"),
    ("ac_cv_func_memcmp_working", "yes"),
    ("ac_cv_func_working_mktime", "yes"),
    ("ac_cv_func_strtod", "yes"),
    ("ac_cv_func_closedir_void", "no"),
    ("ac_cv_func_lstat_dereferences_slashed_symlink", "yes"),
    ("ac_cv_func_lstat_empty_string_bug", "no"),
    ("ac_cv_func_stat_empty_string_bug", "no"),
];

const AARCH64_KERNEL_HEADERS: &[(&str, &str, &str)] = &[
    (
        "linux",
        "/usr/aarch64-linux-gnu/include/linux",
        "linux-libc-dev-arm64-cross",
    ),
    (
        "asm",
        "/usr/aarch64-linux-gnu/include/asm",
        "linux-libc-dev-arm64-cross",
    ),
    (
        "asm-generic",
        "/usr/aarch64-linux-gnu/include/asm-generic",
        "linux-libc-dev-arm64-cross",
    ),
];

/// Rust's linker for the aarch64 musl target (Rust brings its own musl start files
/// and libc.a; the gcc driver finds the cross libgcc and binutils).
pub const AARCH64_RUST_LINKER: &str = "aarch64-linux-gnu-gcc";

/// Where musl-dev:arm64 puts musl's headers, and the kernel headers' folder:
/// bindgen's clang (targeting aarch64-unknown-linux-musl) searches these before the
/// host's x86_64 glibc headers.
pub const AARCH64_BINDGEN_INCLUDES: &[&str] = &[
    "/usr/include/aarch64-linux-musl",
    "/usr/aarch64-linux-gnu/include",
];
