//! Reads what a dynamic ELF file needs at run time — its program interpreter and
//! its `DT_NEEDED` libraries — straight from the file, for executables of another
//! architecture (an arm64 guest's programs), which the host's `ldd` cannot run.
//! 64-bit little-endian ELF only (x86_64 and aarch64 both are).

/// What the dynamic loader needs to start a program.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct DynamicNeeds {
    /// `e_machine`: 62 for x86_64, [`EM_AARCH64`], …
    pub(crate) machine: u16,
    /// `PT_INTERP`, e.g. `/lib/ld-linux-aarch64.so.1`; None for a static file.
    pub(crate) interpreter: Option<String>,
    /// `DT_NEEDED` names in file order, e.g. `libc.so.6`.
    pub(crate) needed: Vec<String>,
}

pub(crate) const EM_AARCH64: u16 = 183;

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;
const DT_STRTAB: u64 = 5;

fn u16_at(data: &[u8], at: usize) -> Option<u16> {
    let bytes = data.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes([bytes[0], bytes[1]]))
}

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    let bytes = data.get(at..at.checked_add(4)?)?;
    let mut word = [0u8; 4];
    word.copy_from_slice(bytes);
    Some(u32::from_le_bytes(word))
}

fn u64_at(data: &[u8], at: usize) -> Option<u64> {
    let bytes = data.get(at..at.checked_add(8)?)?;
    let mut word = [0u8; 8];
    word.copy_from_slice(bytes);
    Some(u64::from_le_bytes(word))
}

/// A NUL-terminated string at `at`.
fn c_string(data: &[u8], at: usize) -> Option<String> {
    let rest = data.get(at..)?;
    let end = rest.iter().position(|&b| b == 0)?;
    Some(String::from_utf8_lossy(&rest[..end]).into_owned())
}

#[derive(Debug, Clone, Copy)]
struct Segment {
    kind: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
}

/// The file offset of virtual address `vaddr`, through the `PT_LOAD` segment holding it.
fn file_offset(segments: &[Segment], vaddr: u64) -> Option<usize> {
    segments
        .iter()
        .filter(|s| s.kind == PT_LOAD)
        .find(|s| vaddr >= s.vaddr && vaddr - s.vaddr < s.filesz)
        .and_then(|s| usize::try_from(vaddr - s.vaddr + s.offset).ok())
}

/// Parses `data` as an ELF file. Err says what is wrong with it; a valid static
/// file gives empty needs.
pub(crate) fn dynamic_needs(data: &[u8]) -> Result<DynamicNeeds, String> {
    if !data.starts_with(b"\x7fELF") {
        return Err("not an ELF file".into());
    }
    // e_ident[EI_CLASS] = 2 (64-bit), e_ident[EI_DATA] = 1 (little-endian).
    if data.get(4) != Some(&2) || data.get(5) != Some(&1) {
        return Err("not a 64-bit little-endian ELF file".into());
    }
    let truncated = || "truncated ELF header".to_string();
    let phoff = usize::try_from(u64_at(data, 0x20).ok_or_else(truncated)?)
        .map_err(|_| "program header offset out of range".to_string())?;
    let phentsize = usize::from(u16_at(data, 0x36).ok_or_else(truncated)?);
    let phnum = usize::from(u16_at(data, 0x38).ok_or_else(truncated)?);
    if phentsize < 0x28 && phnum > 0 {
        return Err(format!("program header entries of {phentsize} bytes"));
    }
    let mut segments = Vec::with_capacity(phnum);
    for i in 0..phnum {
        let at = i
            .checked_mul(phentsize)
            .and_then(|o| o.checked_add(phoff))
            .ok_or("program header table out of range")?;
        let bad = || format!("program header {i} lies outside the file");
        segments.push(Segment {
            kind: u32_at(data, at).ok_or_else(bad)?,
            offset: u64_at(data, at + 0x08).ok_or_else(bad)?,
            vaddr: u64_at(data, at + 0x10).ok_or_else(bad)?,
            filesz: u64_at(data, at + 0x20).ok_or_else(bad)?,
        });
    }
    let mut needs = DynamicNeeds {
        machine: u16_at(data, 0x12).ok_or_else(truncated)?,
        ..DynamicNeeds::default()
    };
    if let Some(interp) = segments.iter().find(|s| s.kind == PT_INTERP) {
        let at = usize::try_from(interp.offset).map_err(|_| "PT_INTERP out of range")?;
        needs.interpreter =
            Some(c_string(data, at).ok_or("PT_INTERP lies outside the file or is unterminated")?);
    }
    let Some(dynamic) = segments.iter().find(|s| s.kind == PT_DYNAMIC) else {
        return Ok(needs);
    };
    let start = usize::try_from(dynamic.offset).map_err(|_| "PT_DYNAMIC out of range")?;
    let mut strtab = None;
    let mut needed_offsets = Vec::new();
    let mut at = start;
    loop {
        let (Some(tag), Some(value)) = (u64_at(data, at), u64_at(data, at + 8)) else {
            return Err("the dynamic section runs past the end of the file".into());
        };
        match tag {
            DT_NULL => break,
            DT_NEEDED => needed_offsets.push(value),
            DT_STRTAB => strtab = Some(value),
            _ => {}
        }
        at += 16;
    }
    if needed_offsets.is_empty() {
        return Ok(needs);
    }
    let strtab = strtab.ok_or("DT_NEEDED entries but no DT_STRTAB")?;
    let base = file_offset(&segments, strtab).ok_or("DT_STRTAB is in no loaded segment")?;
    for offset in needed_offsets {
        let name = usize::try_from(offset)
            .ok()
            .and_then(|o| base.checked_add(o))
            .and_then(|o| c_string(data, o))
            .ok_or("a DT_NEEDED name lies outside the file")?;
        needs.needed.push(name);
    }
    Ok(needs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EM_X86_64: u16 = 62;

    /// A minimal ELF64 LE file: one PT_LOAD mapping the file at 0x400000, a PT_INTERP
    /// and a PT_DYNAMIC naming two libraries.
    fn sample() -> Vec<u8> {
        let mut f = vec![0u8; 0x200];
        f[..4].copy_from_slice(b"\x7fELF");
        f[4] = 2;
        f[5] = 1;
        f[0x12..0x14].copy_from_slice(&EM_AARCH64.to_le_bytes());
        f[0x20..0x28].copy_from_slice(&0x40u64.to_le_bytes());
        f[0x36..0x38].copy_from_slice(&0x38u16.to_le_bytes());
        f[0x38..0x3a].copy_from_slice(&3u16.to_le_bytes());
        let phdr = |f: &mut Vec<u8>, i: usize, kind: u32, offset: u64, vaddr: u64, size: u64| {
            let at = 0x40 + i * 0x38;
            f[at..at + 4].copy_from_slice(&kind.to_le_bytes());
            f[at + 8..at + 16].copy_from_slice(&offset.to_le_bytes());
            f[at + 16..at + 24].copy_from_slice(&vaddr.to_le_bytes());
            f[at + 32..at + 40].copy_from_slice(&size.to_le_bytes());
        };
        phdr(&mut f, 0, PT_LOAD, 0, 0x40_0000, 0x200);
        phdr(&mut f, 1, PT_INTERP, 0x100, 0x40_0100, 27);
        phdr(&mut f, 2, PT_DYNAMIC, 0x140, 0x40_0140, 0x40);
        f[0x100..0x11b].copy_from_slice(b"/lib/ld-linux-aarch64.so.1\0");
        // Strings at 0x180: "\0libaio.so.1\0libc.so.6\0".
        f[0x180..0x197].copy_from_slice(b"\0libaio.so.1\0libc.so.6\0");
        let dyn_entry = |f: &mut Vec<u8>, i: usize, tag: u64, value: u64| {
            let at = 0x140 + i * 16;
            f[at..at + 8].copy_from_slice(&tag.to_le_bytes());
            f[at + 8..at + 16].copy_from_slice(&value.to_le_bytes());
        };
        dyn_entry(&mut f, 0, DT_NEEDED, 1);
        dyn_entry(&mut f, 1, DT_STRTAB, 0x40_0180);
        dyn_entry(&mut f, 2, DT_NEEDED, 13);
        dyn_entry(&mut f, 3, DT_NULL, 0);
        f
    }

    #[test]
    fn interpreter_and_needed_libraries_are_read() {
        assert_eq!(
            dynamic_needs(&sample()),
            Ok(DynamicNeeds {
                machine: EM_AARCH64,
                interpreter: Some("/lib/ld-linux-aarch64.so.1".into()),
                needed: vec!["libaio.so.1".into(), "libc.so.6".into()],
            })
        );
    }

    #[test]
    fn broken_files_are_errors_not_panics() {
        assert!(dynamic_needs(b"#!/bin/sh\n").is_err());
        let full = sample();
        for len in [4, 0x30, 0x60, 0x150, 0x185] {
            assert!(dynamic_needs(&full[..len]).is_err(), "cut at {len:#x}");
        }
        let mut no_strtab = sample();
        no_strtab[0x150..0x160].fill(0xee);
        assert!(dynamic_needs(&no_strtab).is_err());
    }

    #[test]
    fn the_hosts_own_shell_parses() {
        // Debian's /bin/sh (dash) is a dynamic executable.
        let data = std::fs::read("/bin/sh").expect("the host has /bin/sh");
        let needs = dynamic_needs(&data).expect("the host's /bin/sh is valid ELF");
        let host = if cfg!(target_arch = "aarch64") {
            EM_AARCH64
        } else {
            EM_X86_64
        };
        assert_eq!(needs.machine, host, "{needs:?}");
        assert!(needs.interpreter.is_some(), "{needs:?}");
        assert!(
            needs.needed.iter().any(|n| n.starts_with("libc.")),
            "{needs:?}"
        );
    }
}
