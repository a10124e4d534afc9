//! The loader and the shared libraries an executable loads, found the way glibc's
//! loader finds them in an image without `/etc/ld.so.cache`: `PT_INTERP`, then every
//! `DT_NEEDED` name, transitively, in Debian's default library folders. On this
//! machine's own thin_check the answer is what `ldd` lists (checked by a test); for
//! another architecture's, `ldd` cannot run it.
use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use super::debs::PackageRoot;
use crate::packages::Arch;
use vmtest::elf;

/// `e_machine` of `arch`'s executables.
pub fn elf_machine(arch: Arch) -> u16 {
    match arch {
        Arch::X86_64 => elf::EM_X86_64,
        Arch::Aarch64 => elf::EM_AARCH64,
    }
}

/// Debian's multiarch tuple (`x86_64-linux-gnu`).
fn multiarch(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "x86_64-linux-gnu",
        Arch::Aarch64 => "aarch64-linux-gnu",
    }
}

/// Where Debian's glibc looks for a library with no cache and no search path set.
fn search_folders(arch: Arch) -> Vec<PathBuf> {
    let tuple = multiarch(arch);
    vec![
        PathBuf::from(format!("/lib/{tuple}")),
        PathBuf::from(format!("/usr/lib/{tuple}")),
        PathBuf::from("/lib"),
        PathBuf::from("/usr/lib"),
    ]
}

/// Reads the ELF file at image path `path` in `packages`, checking its machine.
fn needs_of(packages: &PackageRoot, path: &Path, arch: Arch) -> Result<elf::LoaderNeeds, String> {
    let file = packages.host_path(&resolve(packages, path)?);
    let bytes = std::fs::read(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let needs = elf::loader_needs(&bytes).map_err(|why| format!("{}: {why}", file.display()))?;
    let expected = elf_machine(arch);
    if needs.machine != expected {
        return Err(format!(
            "{} is built for {}, expected {} for the {} image variant",
            file.display(),
            elf::machine_name(needs.machine),
            elf::machine_name(expected),
            arch.oci_arch()
        ));
    }
    if needs.has_search_path {
        return Err(format!(
            "{} sets an RPATH/RUNPATH; the image's library search knows only Debian's \
             default folders",
            file.display()
        ));
    }
    Ok(needs)
}

/// The image paths of the loader and every library `executable` (an image path in
/// `packages`) loads: the interpreter as `PT_INTERP` names it, each library in the
/// first default folder that has it (links are followed when the files are copied).
pub fn closure(
    packages: &PackageRoot,
    executable: &Path,
    arch: Arch,
) -> Result<Vec<PathBuf>, String> {
    let needs = needs_of(packages, executable, arch)?;
    let interpreter = needs.interpreter.clone().ok_or_else(|| {
        format!(
            "{} has no program interpreter: expected a dynamic executable",
            executable.display()
        )
    })?;
    let mut found = vec![PathBuf::from(&interpreter)];
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut todo: Vec<(String, PathBuf)> = needs
        .needed
        .into_iter()
        .map(|name| (name, executable.to_path_buf()))
        .collect();
    todo.reverse();
    while let Some((name, wanted_by)) = todo.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let path = find_library(packages, &name, arch).ok_or_else(|| {
            format!(
                "{} needs {name}, which is in none of {} below {}; the package that \
                 provides it is missing",
                wanted_by.display(),
                search_folders(arch)
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                packages.root.display()
            )
        })?;
        let mut more = needs_of(packages, &path, arch)?.needed;
        more.reverse();
        todo.extend(more.into_iter().map(|more| (more, path.clone())));
        found.push(path);
    }
    Ok(found)
}

fn find_library(packages: &PackageRoot, name: &str, arch: Arch) -> Option<PathBuf> {
    if name.contains('/') {
        return None;
    }
    search_folders(arch)
        .into_iter()
        .map(|folder| folder.join(name))
        .find(|path| resolve(packages, path).is_ok_and(|file| packages.host_path(&file).is_file()))
}

/// The image path that image path `path` leads to in `packages`, following symlinks
/// as they resolve inside the image (the last one is not a symlink).
pub fn resolve(packages: &PackageRoot, path: &Path) -> Result<PathBuf, String> {
    let mut path = path.to_path_buf();
    for _ in 0..16 {
        match std::fs::read_link(packages.host_path(&path)) {
            Ok(target) => {
                let parent = path.parent().unwrap_or(Path::new("/"));
                path = normalize(&parent.join(target));
            }
            Err(_) => return Ok(path),
        }
    }
    Err(format!(
        "{} is a chain of more than 16 links",
        path.display()
    ))
}

/// Resolves `.` and `..` lexically, never above `/`.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(part) => out.push(part),
            _ => {}
        }
    }
    out
}
