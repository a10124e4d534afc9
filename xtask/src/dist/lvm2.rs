//! LVM2's liblvm2cmd built statically with musl from Debian's source package.
//!
//! The result is cached under `target/lvm2-musl/<upstream version>-<recipe hash>/`
//! (aarch64: `target/lvm2-musl-aarch64/…`):
//! a rerun with the same recipe finds `lib/` (the five static archives),
//! `include/libdevmapper.h` and `pkgconfig/devmapper.pc` and does nothing. Changing
//! anything in this file's recipe constants changes the hash, so a stale build is
//! never reused; nor is one linked against another libblkid build (its cache key
//! is part of this one). Everything comes from the Debian archive: the sources
//! through a private `deb-src` list (see [`super::source_build`]), the compiler
//! from musl-tools (or its aarch64 counterpart, see [`super::toolchain`]).
use super::libblkid::StaticBlkid;
use super::source_build::{
    cache_key, cflags_for, copy, fetch, fresh_dir, kernel_header_dir, mkdir, run_logged, write,
};
use super::toolchain::CToolchain;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The LVM2 release the recipe (configure flags, source fixes) was verified with.
pub const LVM2_UPSTREAM: &str = "2.03.16";

/// Debian bookworm's device-mapper library version inside LVM2 2.03.16 (VERSION_DM);
/// only reported to devicemapper-sys's pkg-config probe (it wants ≥ 1.02.151).
const DM_VERSION: &str = "1.02.185";

/// Static LVM: no udev (no libudev in a static musl world), no SELinux, no
/// readline, no dmeventd, no translations; the thin-pool target built in; blkid
/// wiping on (linked against the static libblkid), so `pvcreate` sees every
/// signature libblkid knows rather than only md, swap and LUKS.
const CONFIGURE_FLAGS: &[&str] = &[
    "--enable-static_link",
    "--enable-cmdlib",
    "--disable-udev_sync",
    "--disable-selinux",
    "--disable-readline",
    "--enable-blkid_wiping",
    "--with-thin=internal",
    "--disable-dmeventd",
    "--disable-nls",
];

/// Optimised for size; one section per function so the final link drops what the
/// tool never calls (rustc links with --gc-sections).
const CFLAGS: &str = "-Os -ffunction-sections -fdata-sections";

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
    SourceFix {
        file: "lib/device/device_id.c",
        why: "device_ids_write renames the new devices file into place and fsyncs the folder, \
              but never the file: on a file system that commits the rename before the data \
              (XFS, ext4 with noauto_da_alloc) a power loss leaves the host an empty devices \
              file, every other PV's entry gone (found by vm_crash_states' devices-file \
              scenarios); and it renames a file whose writing failed (a full /etc: ENOSPC) \
              over the old one, the same loss without a power cut (vm_host_lvm). The file is \
              written, flushed, synced and closed without error, or it is not renamed and \
              the command fails",
        find: "\tif (fflush(fp))\n\t\tstack;\n\tif (fclose(fp))\n\t\tstack;\n\n\tif (rename(tmppath, cmd->devices_file_path) < 0) {",
        replace: "\tif (fflush(fp) || ferror(fp)) {\n\t\tlog_sys_error(\"write\", tmppath);\n\t\tret = 0;\n\t}\n\tif (ret && fsync(fileno(fp)) < 0) {\n\t\tlog_sys_error(\"fsync\", tmppath);\n\t\tret = 0;\n\t}\n\tif (fclose(fp)) {\n\t\tlog_sys_error(\"fclose\", tmppath);\n\t\tret = 0;\n\t}\n\n\tif (ret && rename(tmppath, cmd->devices_file_path) < 0) {",
    },
];

/// Bumped by hand when the steps below change in a way the constants don't show.
/// 3: configure run as `./configure` (LVM keeps its command line in the library),
/// build paths mapped away ([`cflags_for`]).
const RECIPE_REVISION: u32 = 3;

/// What the static build left for the Rust link.
pub struct StaticLvm {
    /// Folder with liblvm2cmd.a, libdevice-mapper.a, libbase.a, libdaemonclient.a, libaio.a.
    pub lib_dir: PathBuf,
    /// Folder with devmapper.pc (for devicemapper-sys's pkg-config probe).
    pub pkgconfig_dir: PathBuf,
    /// The Debian source package version that was built (e.g. 2.03.16-2).
    pub debian_version: String,
}

fn recipe_hash(toolchain: &CToolchain, blkid: &StaticBlkid) -> u64 {
    let mut text = format!(
        "{LVM2_UPSTREAM}|{DM_VERSION}|{CFLAGS}|{RECIPE_REVISION}|{}",
        blkid.cache_key
    );
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
    text.push_str(&toolchain.cache_text());
    cache_key(&text)
}

/// The cache folder for this recipe.
pub fn cache_dir(target: &Path, toolchain: &CToolchain, blkid: &StaticBlkid) -> PathBuf {
    target
        .join(format!("lvm2-musl{}", toolchain.cache_suffix))
        .join(format!(
            "{LVM2_UPSTREAM}-{:016x}",
            recipe_hash(toolchain, blkid)
        ))
}

/// Builds (or finds cached) static LVM2 archives for musl with `toolchain`, linked
/// against `blkid`.
pub fn ensure(
    target: &Path,
    toolchain: &CToolchain,
    blkid: &StaticBlkid,
) -> Result<StaticLvm, String> {
    let dir = cache_dir(target, toolchain, blkid);
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
        // A cache written by an older recipe named its own folder in the file.
        write_pkgconfig(&result.pkgconfig_dir)?;
        return Ok(StaticLvm {
            debian_version: version.trim().to_owned(),
            ..result
        });
    }
    let started = std::time::Instant::now();
    let work = dir.join("work");
    fresh_dir(&work)?;
    let sources = download_sources(&work)?;
    let include = kernel_header_dir(&work, toolchain)?;
    let cc = format!(
        "{} -I{} -I{}",
        toolchain.cc,
        include.display(),
        sources.libaio.join("src").display()
    );
    let cflags = cflags_for(CFLAGS, target);
    build_libaio(&sources.libaio, toolchain, &include, &cflags, &work)?;
    apply_fixes(&sources.lvm2)?;
    build_lvm2(
        &sources.lvm2,
        toolchain,
        &cc,
        &cflags,
        &sources.libaio.join("src"),
        blkid,
        &work,
    )?;

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
    write_pkgconfig(&result.pkgconfig_dir)?;
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

/// Writes `devmapper.pc` into `dir` (`<cache>/pkgconfig`), naming the header folder
/// relative to the file (`${pcfiledir}`): a cache copied to another checkout then
/// answers with its own folder, never with the one it was built in.
fn write_pkgconfig(dir: &Path) -> Result<(), String> {
    mkdir(dir)?;
    write(
        &dir.join("devmapper.pc"),
        &format!(
            "prefix=${{pcfiledir}}/..\n\
             Name: devmapper\n\
             Description: libdevmapper's header from the static LVM2 build. Nothing to link: \
             devicemapper-sys only takes ioctl definitions from it, and liblvm2cmd brings its own copy\n\
             Version: {DM_VERSION}\n\
             Cflags: -I${{prefix}}/include\n\
             Libs:\n"
        ),
    )
}

struct Sources {
    lvm2: PathBuf,
    libaio: PathBuf,
    debian_version: String,
}

fn download_sources(work: &Path) -> Result<Sources, String> {
    let mut unpacked = fetch(work, &["lvm2", "libaio"])?.into_iter();
    let (Some(lvm2), Some(libaio)) = (unpacked.next(), unpacked.next()) else {
        return Err("apt-get source did not unpack both lvm2 and libaio".into());
    };
    let debian_version = lvm2.debian_version;
    if !debian_version.starts_with(&format!("{LVM2_UPSTREAM}-")) {
        return Err(format!(
            "Debian's lvm2 source package is now {debian_version}, but the static build recipe \
             (xtask/src/dist/lvm2.rs: configure flags and source fixes) was verified with {LVM2_UPSTREAM}; \
             check the fixes against the new source and update LVM2_UPSTREAM"
        ));
    }
    Ok(Sources {
        lvm2: lvm2.dir,
        libaio: libaio.dir,
        debian_version,
    })
}

fn build_libaio(
    libaio: &Path,
    toolchain: &CToolchain,
    include: &Path,
    cflags: &str,
    work: &Path,
) -> Result<(), String> {
    let mut make = Command::new("make");
    make.arg("-C")
        .arg(libaio.join("src"))
        .arg(format!("CC={} -I{}", toolchain.cc, include.display()))
        .arg(format!("CFLAGS={cflags} -Wall"));
    // libaio's Makefile has no configure: the cross binutils go on make's command line.
    make.args(
        toolchain
            .binutils()
            .iter()
            .map(|(name, value)| format!("{name}={value}")),
    );
    run_logged(
        make.arg("libaio.a"),
        &work.join("libaio-make.log"),
        &format!(
            "building libaio.a with {} failed (see `cargo xtask deps`)",
            toolchain.cc
        ),
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

fn build_lvm2(
    lvm2: &Path,
    toolchain: &CToolchain,
    cc: &str,
    cflags: &str,
    libaio_dir: &Path,
    blkid: &StaticBlkid,
    work: &Path,
) -> Result<(), String> {
    // configure records its command line ("$0 $@") in the library (LVM_CONFIGURE_LINE,
    // `lvm version`): run it by a relative name, so the line names no folder here.
    let mut configure = Command::new("sh");
    configure.arg("./configure").args(CONFIGURE_FLAGS);
    configure
        .args(toolchain.configure_args())
        .envs(toolchain.env());
    run_logged(
        configure
            .env("CC", cc)
            .env("CFLAGS", cflags)
            .env("LDFLAGS", format!("-L{}", libaio_dir.display()))
            // configure takes these instead of asking pkg-config (whose answer
            // would be the host's glibc libblkid).
            .env("BLKID_CFLAGS", format!("-I{}", blkid.header_dir.display()))
            .env(
                "BLKID_LIBS",
                format!("-L{} -lblkid", blkid.lib_dir.display()),
            )
            .current_dir(lvm2),
        &work.join("lvm2-configure.log"),
        &format!(
            "LVM2's configure failed with {} (see `cargo xtask deps`)",
            toolchain.cc
        ),
    )?;
    let jobs = format!(
        "-j{}",
        std::thread::available_parallelism().map_or(2, |n| n.get())
    );
    // Only the libraries: the shared liblvm2cmd.so and the lvm binaries would need
    // a dynamic musl libaio, and the tool needs neither.
    run_logged(
        Command::new("make")
            .envs(toolchain.env())
            .arg(&jobs)
            .arg("lib")
            .current_dir(lvm2),
        &work.join("lvm2-make-lib.log"),
        &format!("building LVM2's libraries with {} failed", toolchain.cc),
    )?;
    run_logged(
        Command::new("make")
            .envs(toolchain.env())
            .arg(&jobs)
            .args(["-C", "tools", "liblvm2cmd.a"])
            .current_dir(lvm2),
        &work.join("lvm2-make-tools.log"),
        &format!(
            "building LVM2's tools/liblvm2cmd.a with {} failed",
            toolchain.cc
        ),
    )
}
