//! LVM2's liblvm2cmd built statically with musl from Debian's source package.
//!
//! The result is cached under `target/lvm2-musl/<upstream version>-<recipe hash>/`:
//! a rerun with the same recipe finds `lib/` (the five static archives),
//! `include/libdevmapper.h` and `pkgconfig/devmapper.pc` and does nothing. Changing
//! anything in this file's recipe constants changes the hash, so a stale build is
//! never reused. Everything comes from the Debian archive: the sources through a
//! private `deb-src` list (the system's apt configuration is not touched), the
//! compiler from musl-tools.
use std::path::{Path, PathBuf};
use std::process::Command;

/// The LVM2 release the recipe (configure flags, source fixes) was verified with.
pub const LVM2_UPSTREAM: &str = "2.03.16";

/// Debian bookworm's device-mapper library version inside LVM2 2.03.16 (VERSION_DM);
/// only reported to devicemapper-sys's pkg-config probe (it wants ≥ 1.02.151).
const DM_VERSION: &str = "1.02.185";

/// Static LVM: no udev (no libudev in a static musl world), no SELinux, no
/// readline, no blkid, no dmeventd, no translations; the thin-pool target built in.
const CONFIGURE_FLAGS: &[&str] = &[
    "--enable-static_link",
    "--enable-cmdlib",
    "--disable-udev_sync",
    "--disable-selinux",
    "--disable-readline",
    "--disable-blkid_wiping",
    "--with-thin=internal",
    "--disable-dmeventd",
    "--disable-nls",
];

/// Optimised for size; one section per function so the final link drops what the
/// tool never calls (rustc links with --gc-sections).
const CFLAGS: &str = "-Os -ffunction-sections -fdata-sections";

/// Headers musl's own include folder lacks, linked from the host's linux-libc-dev.
const KERNEL_HEADERS: &[(&str, &str, &str)] = &[
    ("linux", "/usr/include/linux", "linux-libc-dev"),
    ("asm", "/usr/include/x86_64-linux-gnu/asm", "linux-libc-dev"),
    ("asm-generic", "/usr/include/asm-generic", "linux-libc-dev"),
];

/// (archive name in lib/, path inside the built LVM2 tree) in link order.
pub const ARCHIVES: &[(&str, &str)] = &[
    ("liblvm2cmd.a", "tools/liblvm2cmd.a"),
    ("libdevice-mapper.a", "device_mapper/libdevice-mapper.a"),
    ("libbase.a", "base/libbase.a"),
    ("libdaemonclient.a", "libdaemon/client/libdaemonclient.a"),
];

/// A source fix: `find` must occur exactly once in `file`; it becomes `replace`.
struct SourceFix {
    file: &'static str,
    why: &'static str,
    find: &'static str,
    replace: &'static str,
}

const FIXES: &[SourceFix] = &[
    SourceFix {
        file: "lib/mm/memlock.c",
        why: "mallinfo() is glibc's; musl has none (the heuristic it feeds only works around glibc's arenas)",
        find: "\t\tstruct mallinfo inf = mallinfo();\n\t\thblks = inf.hblks;\n",
        replace: "#ifdef __GLIBC__\n\t\tstruct mallinfo inf = mallinfo();\n\t\thblks = inf.hblks;\n#endif\n",
    },
    SourceFix {
        file: "lib/mm/memlock.c",
        why: "second mallinfo() use; without glibc, take every area as reserved",
        find: "\t\tinf = mallinfo();\n\n\t\tif (hblks < inf.hblks) {\n",
        replace: "#ifdef __GLIBC__\n\t\tinf = mallinfo();\n\n\t\tif (hblks < inf.hblks) {\n#else\n\t\t(void) hblks;\n\t\tif (0) {\n#endif\n",
    },
    SourceFix {
        file: "tools/lvmcmdline.c",
        why: "musl's stdin is not assignable; reopen the stream instead",
        find: "!(stdin = fopen(_PATH_DEVNULL, \"r\"))",
        replace: "!freopen(_PATH_DEVNULL, \"r\", stdin)",
    },
    SourceFix {
        file: "tools/lvmcmdline.c",
        why: "musl's stdout is not assignable; reopen the stream instead",
        find: "!(stdout = fopen(_PATH_DEVNULL, \"w\"))",
        replace: "!freopen(_PATH_DEVNULL, \"w\", stdout)",
    },
    SourceFix {
        file: "tools/lvmcmdline.c",
        why: "musl's stderr is not assignable; reopen the stream instead",
        find: "!(stderr = fopen(_PATH_DEVNULL, \"w\"))",
        replace: "!freopen(_PATH_DEVNULL, \"w\", stderr)",
    },
];

/// Bumped by hand when the steps below change in a way the constants don't show.
const RECIPE_REVISION: u32 = 1;

/// What the static build left for the Rust link.
pub struct StaticLvm {
    /// Folder with liblvm2cmd.a, libdevice-mapper.a, libbase.a, libdaemonclient.a, libaio.a.
    pub lib_dir: PathBuf,
    /// Folder with devmapper.pc (for devicemapper-sys's pkg-config probe).
    pub pkgconfig_dir: PathBuf,
    /// The Debian source package version that was built (e.g. 2.03.16-2).
    pub debian_version: String,
}

fn recipe_hash() -> u64 {
    let mut text = format!("{LVM2_UPSTREAM}|{DM_VERSION}|{CFLAGS}|{RECIPE_REVISION}");
    for flag in CONFIGURE_FLAGS {
        text.push('|');
        text.push_str(flag);
    }
    for (name, path) in ARCHIVES {
        text.push_str(&format!("|{name}={path}"));
    }
    for fix in FIXES {
        text.push_str(&format!("|{}|{}|{}", fix.file, fix.find, fix.replace));
    }
    // FNV-1a: a cache key, not a security boundary.
    text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The cache folder for this recipe.
pub fn cache_dir(target: &Path) -> PathBuf {
    target
        .join("lvm2-musl")
        .join(format!("{LVM2_UPSTREAM}-{:016x}", recipe_hash()))
}

/// Builds (or finds cached) static LVM2 archives for musl.
pub fn ensure(target: &Path) -> Result<StaticLvm, String> {
    let dir = cache_dir(target);
    let stamp = dir.join("complete");
    let result = StaticLvm {
        lib_dir: dir.join("lib"),
        pkgconfig_dir: dir.join("pkgconfig"),
        debian_version: String::new(),
    };
    if let Ok(version) = std::fs::read_to_string(&stamp) {
        eprintln!(
            "xtask: static LVM2 {} (musl) cached in {}",
            version.trim(),
            dir.display()
        );
        return Ok(StaticLvm {
            debian_version: version.trim().to_owned(),
            ..result
        });
    }
    let started = std::time::Instant::now();
    let work = dir.join("work");
    if work.exists() {
        std::fs::remove_dir_all(&work)
            .map_err(|e| format!("cannot clear {}: {e}", work.display()))?;
    }
    mkdir(&work)?;
    let sources = download_sources(&work)?;
    let include = kernel_header_dir(&work)?;
    let cc = format!(
        "musl-gcc -I{} -I{}",
        include.display(),
        sources.libaio.join("src").display()
    );
    build_libaio(&sources.libaio, &include, &work)?;
    apply_fixes(&sources.lvm2)?;
    build_lvm2(&sources.lvm2, &cc, &sources.libaio.join("src"), &work)?;

    let lib_dir = &result.lib_dir;
    mkdir(lib_dir)?;
    for (name, inside) in ARCHIVES {
        copy(&sources.lvm2.join(inside), &lib_dir.join(name))?;
    }
    copy(
        &sources.libaio.join("src/libaio.a"),
        &lib_dir.join("libaio.a"),
    )?;
    let include_out = dir.join("include");
    mkdir(&include_out)?;
    copy(
        &sources.lvm2.join("libdm/libdevmapper.h"),
        &include_out.join("libdevmapper.h"),
    )?;
    mkdir(&result.pkgconfig_dir)?;
    write(
        &result.pkgconfig_dir.join("devmapper.pc"),
        &format!(
            "Name: devmapper\n\
             Description: libdevmapper's header from the static LVM2 build. Nothing to link: \
             devicemapper-sys only takes ioctl definitions from it, and liblvm2cmd brings its own copy\n\
             Version: {DM_VERSION}\n\
             Cflags: -I{}\n\
             Libs:\n",
            include_out.display()
        ),
    )?;
    // The sources and objects are large and no longer needed.
    let _ = std::fs::remove_dir_all(&work);
    write(&stamp, &sources.debian_version)?;
    eprintln!(
        "xtask: built static LVM2 {} (musl) in {:.0?} into {}",
        sources.debian_version,
        started.elapsed(),
        dir.display()
    );
    Ok(StaticLvm {
        debian_version: sources.debian_version,
        ..result
    })
}

struct Sources {
    lvm2: PathBuf,
    libaio: PathBuf,
    debian_version: String,
}

/// apt options that point at a private source list and package index, so the
/// system's apt configuration and lists stay as they are.
fn private_apt(apt_dir: &Path) -> Vec<String> {
    vec![
        "-q".into(),
        "-o".into(),
        format!(
            "Dir::Etc::SourceList={}",
            apt_dir.join("sources.list").display()
        ),
        "-o".into(),
        format!(
            "Dir::Etc::SourceParts={}",
            apt_dir.join("sources.list.d").display()
        ),
        "-o".into(),
        format!("Dir::State::Lists={}", apt_dir.join("lists").display()),
        "-o".into(),
        format!("Dir::Cache={}", apt_dir.join("cache").display()),
        // Downloads land in a root-owned folder; don't drop to the _apt user.
        "-o".into(),
        "APT::Sandbox::User=root".into(),
    ]
}

/// The system's `deb` entries turned into `deb-src` entries (same mirrors, suites,
/// keys), in a private apt folder.
fn write_source_lists(apt_dir: &Path) -> Result<(), String> {
    let parts = apt_dir.join("sources.list.d");
    mkdir(&parts)?;
    mkdir(&apt_dir.join("lists/partial"))?;
    mkdir(&apt_dir.join("cache/archives/partial"))?;
    let mut one_line = String::new();
    let mut deb822 = String::new();
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(entries) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        more.sort();
        files.extend(more);
    }
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let name = file.to_string_lossy();
        if name.ends_with(".list") {
            for line in text.lines() {
                if let Some(rest) = line.trim_start().strip_prefix("deb ") {
                    one_line.push_str(&format!("deb-src {rest}\n"));
                }
            }
        } else if name.ends_with(".sources") {
            for stanza in text.split("\n\n") {
                let is_deb = stanza.lines().any(|l| {
                    l.strip_prefix("Types:")
                        .is_some_and(|t| t.split_whitespace().any(|t| t == "deb"))
                });
                let enabled = !stanza
                    .lines()
                    .any(|l| l.trim().eq_ignore_ascii_case("Enabled: no"));
                if is_deb && enabled {
                    for line in stanza.lines() {
                        if line.starts_with("Types:") {
                            deb822.push_str("Types: deb-src\n");
                        } else if !line.starts_with('#') {
                            deb822.push_str(line);
                            deb822.push('\n');
                        }
                    }
                    deb822.push('\n');
                }
            }
        }
    }
    if one_line.is_empty() && deb822.is_empty() {
        return Err("no `deb` entry found in /etc/apt/sources.list or /etc/apt/sources.list.d/*.{list,sources}: \
             the static LVM2 build downloads Debian's lvm2 and libaio source packages from the same archive; \
             configure apt for a Debian archive first"
            .into());
    }
    write(&apt_dir.join("sources.list"), &one_line)?;
    write(&parts.join("deb-src.sources"), &deb822)
}

fn download_sources(work: &Path) -> Result<Sources, String> {
    let apt_dir = work.join("apt");
    write_source_lists(&apt_dir)?;
    let apt = private_apt(&apt_dir);
    run_logged(
        Command::new("apt-get").args(&apt).arg("update"),
        &work.join("apt-update.log"),
        "apt-get update (deb-src lists) failed; is the Debian archive reachable?",
    )?;
    let download = work.join("download");
    mkdir(&download)?;
    run_logged(
        Command::new("apt-get")
            .args(&apt)
            .args(["source", "--download-only", "lvm2", "libaio"])
            .current_dir(&download),
        &work.join("apt-source.log"),
        "apt-get source --download-only lvm2 libaio failed",
    )?;
    let lvm2_dsc = find_dsc(&download, "lvm2_")?;
    let libaio_dsc = find_dsc(&download, "libaio_")?;
    let debian_version = lvm2_dsc
        .file_stem()
        .map(|s| s.to_string_lossy().trim_start_matches("lvm2_").to_owned())
        .unwrap_or_default();
    if !debian_version.starts_with(&format!("{LVM2_UPSTREAM}-")) {
        return Err(format!(
            "Debian's lvm2 source package is now {debian_version}, but the static build recipe \
             (xtask/src/dist/lvm2.rs: configure flags and source fixes) was verified with {LVM2_UPSTREAM}; \
             check the fixes against the new source and update LVM2_UPSTREAM"
        ));
    }
    let lvm2 = work.join("lvm2");
    let libaio = work.join("libaio");
    for (dsc, dest) in [(&lvm2_dsc, &lvm2), (&libaio_dsc, &libaio)] {
        // apt verified the files against the archive's signed index already.
        run_logged(
            Command::new("dpkg-source")
                .args(["--no-check", "-x"])
                .arg(dsc)
                .arg(dest),
            &work.join("dpkg-source.log"),
            "dpkg-source -x failed (packages dpkg-dev, xz-utils)",
        )?;
    }
    Ok(Sources {
        lvm2,
        libaio,
        debian_version,
    })
}

fn find_dsc(dir: &Path, prefix: &str) -> Result<PathBuf, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    entries
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name().is_some_and(|n| {
                let n = n.to_string_lossy();
                n.starts_with(prefix) && n.ends_with(".dsc")
            })
        })
        .ok_or_else(|| format!("apt-get source left no {prefix}*.dsc in {}", dir.display()))
}

/// A folder with `linux`, `asm`, `asm-generic` linked from the host's kernel
/// headers: musl-gcc searches only musl's include folder.
fn kernel_header_dir(work: &Path) -> Result<PathBuf, String> {
    let dir = work.join("kernel-headers");
    mkdir(&dir)?;
    for (name, host, package) in KERNEL_HEADERS {
        if !Path::new(host).is_dir() {
            return Err(format!(
                "{host} is missing; install it with: apt-get install {package}"
            ));
        }
        std::os::unix::fs::symlink(host, dir.join(name))
            .map_err(|e| format!("cannot link {} to {host}: {e}", dir.join(name).display()))?;
    }
    Ok(dir)
}

fn build_libaio(libaio: &Path, include: &Path, work: &Path) -> Result<(), String> {
    run_logged(
        Command::new("make")
            .arg("-C")
            .arg(libaio.join("src"))
            .arg(format!("CC=musl-gcc -I{}", include.display()))
            .arg(format!("CFLAGS={CFLAGS} -Wall"))
            .arg("libaio.a"),
        &work.join("libaio-make.log"),
        "building libaio.a with musl-gcc failed (packages musl-tools, make)",
    )
}

fn apply_fixes(lvm2: &Path) -> Result<(), String> {
    for fix in FIXES {
        let path = lvm2.join(fix.file);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let count = text.matches(fix.find).count();
        if count != 1 {
            return Err(format!(
                "source fix for {} ({}) expects its anchor exactly once, found it {count} times: \
                 the Debian source changed; update FIXES in xtask/src/dist/lvm2.rs",
                fix.file, fix.why
            ));
        }
        write(&path, &text.replacen(fix.find, fix.replace, 1))?;
    }
    Ok(())
}

fn build_lvm2(lvm2: &Path, cc: &str, libaio_dir: &Path, work: &Path) -> Result<(), String> {
    run_logged(
        Command::new(lvm2.join("configure"))
            .args(CONFIGURE_FLAGS)
            .env("CC", cc)
            .env("CFLAGS", CFLAGS)
            .env("LDFLAGS", format!("-L{}", libaio_dir.display()))
            .current_dir(lvm2),
        &work.join("lvm2-configure.log"),
        "LVM2's configure failed with musl-gcc (packages musl-tools, make, linux-libc-dev)",
    )?;
    let jobs = format!(
        "-j{}",
        std::thread::available_parallelism().map_or(2, |n| n.get())
    );
    // Only the libraries: the shared liblvm2cmd.so and the lvm binaries would need
    // a dynamic musl libaio, and the tool needs neither.
    run_logged(
        Command::new("make").arg(&jobs).arg("lib").current_dir(lvm2),
        &work.join("lvm2-make-lib.log"),
        "building LVM2's libraries with musl-gcc failed",
    )?;
    run_logged(
        Command::new("make")
            .arg(&jobs)
            .args(["-C", "tools", "liblvm2cmd.a"])
            .current_dir(lvm2),
        &work.join("lvm2-make-tools.log"),
        "building LVM2's tools/liblvm2cmd.a with musl-gcc failed",
    )
}

/// Runs a command with its output in `log`; on failure the error carries the
/// log's tail, the hint and the log's path.
fn run_logged(command: &mut Command, log: &Path, hint: &str) -> Result<(), String> {
    eprintln!("xtask: running {command:?} (log: {})", log.display());
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let err = file
        .try_clone()
        .map_err(|e| format!("cannot open {}: {e}", log.display()))?;
    let status = command
        .stdout(file)
        .stderr(err)
        .status()
        .map_err(|e| format!("cannot start {command:?}: {e}; {hint}"))?;
    if status.success() {
        return Ok(());
    }
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(25)..].join("\n");
    Err(format!(
        "{command:?} failed with {status}\n--- last lines of {} ---\n{tail}\n---\n{hint}",
        log.display()
    ))
}

fn mkdir(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))
}

fn copy(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::copy(from, to)
        .map(|_| ())
        .map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), to.display()))
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
