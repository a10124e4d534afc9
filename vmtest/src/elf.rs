//! What an ELF executable or library asks of the dynamic loader, read from its bytes:
//! the machine it is built for, its program interpreter and its `DT_NEEDED` names.
//! Programs of another architecture (the arm64 guest's, the arm64 image's
//! thin_check) cannot be run on this x86_64 machine, so `ldd` cannot answer for
//! them. 64-bit little-endian files only (x86_64 and aarch64).

/// `e_machine` values.
pub const EM_X86_64: u16 = 62;
pub const EM_AARCH64: u16 = 183;

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;
const DT_STRTAB: u64 = 5;
const DT_RPATH: u64 = 15;
const DT_RUNPATH: u64 = 29;
/// Size of one Elf64_Phdr we read up to (`p_filesz` ends at 0x28).
const PHDR_MIN: usize = 0x28;
/// Size of one Elf64_Dyn.
const DYN_SIZE: usize = 16;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoaderNeeds {
    pub machine: u16,
    /// `PT_INTERP`; None for a static file or a library.
    pub interpreter: Option<String>,
    /// `DT_NEEDED`, in file order.
    pub needed: Vec<String>,
    /// Whether the file sets `DT_RPATH` or `DT_RUNPATH` (Debian's packages do not;
    /// the library search here knows only the default folders).
    pub has_search_path: bool,
}

#[derive(Clone, Copy)]
struct Segment {
    kind: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
}

fn bytes_at<const N: usize>(data: &[u8], at: usize) -> Option<[u8; N]> {
    let end = at.checked_add(N)?;
    data.get(at..end)?.try_into().ok()
}

fn u16_at(data: &[u8], at: usize) -> Option<u16> {
    bytes_at(data, at).map(u16::from_le_bytes)
}

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    bytes_at(data, at).map(u32::from_le_bytes)
}

fn u64_at(data: &[u8], at: usize) -> Option<u64> {
    bytes_at(data, at).map(u64::from_le_bytes)
}

fn offset(value: u64, what: &str) -> Result<usize, String> {
    usize::try_from(value).map_err(|_| format!("{what} {value:#x} does not fit in memory"))
}

/// The NUL-terminated UTF-8 string starting at `at`.
fn string_at(data: &[u8], at: usize) -> Option<String> {
    let tail = data.get(at..)?;
    let len = tail.iter().position(|&b| b == 0)?;
    std::str::from_utf8(&tail[..len]).ok().map(str::to_owned)
}

/// Parses the headers of the ELF file `data`.
pub fn loader_needs(data: &[u8]) -> Result<LoaderNeeds, String> {
    if !data.starts_with(b"\x7fELF") {
        return Err("it is not an ELF file (no \\x7fELF magic)".into());
    }
    // e_ident[EI_CLASS] 2 = 64-bit, e_ident[EI_DATA] 1 = little-endian.
    if data.get(4..6) != Some(&[2, 1][..]) {
        return Err("it is not a 64-bit little-endian ELF file".into());
    }
    let short = || "its ELF header is cut short".to_string();
    let machine = u16_at(data, 0x12).ok_or_else(short)?;
    let phoff = offset(u64_at(data, 0x20).ok_or_else(short)?, "e_phoff")?;
    let phentsize = usize::from(u16_at(data, 0x36).ok_or_else(short)?);
    let phnum = usize::from(u16_at(data, 0x38).ok_or_else(short)?);
    if phnum > 0 && phentsize < PHDR_MIN {
        return Err(format!(
            "its program headers are {phentsize} bytes each, expected at least {PHDR_MIN}"
        ));
    }
    let mut segments = Vec::with_capacity(phnum);
    for index in 0..phnum {
        let at = index
            .checked_mul(phentsize)
            .and_then(|o| o.checked_add(phoff))
            .ok_or_else(|| format!("program header {index} lies beyond any file"))?;
        let field = |delta: usize| at.checked_add(delta).and_then(|o| u64_at(data, o));
        let outside = || format!("program header {index} lies outside the file");
        segments.push(Segment {
            kind: u32_at(data, at).ok_or_else(outside)?,
            offset: field(0x08).ok_or_else(outside)?,
            vaddr: field(0x10).ok_or_else(outside)?,
            filesz: field(0x20).ok_or_else(outside)?,
        });
    }
    let mut needs = LoaderNeeds {
        machine,
        ..LoaderNeeds::default()
    };
    if let Some(interp) = segments.iter().find(|s| s.kind == PT_INTERP) {
        let at = offset(interp.offset, "PT_INTERP's offset")?;
        needs.interpreter = Some(
            string_at(data, at).ok_or("PT_INTERP is not a terminated string inside the file")?,
        );
    }
    let Some(dynamic) = segments.iter().find(|s| s.kind == PT_DYNAMIC) else {
        return Ok(needs);
    };
    let mut at = offset(dynamic.offset, "PT_DYNAMIC's offset")?;
    let mut strtab = None;
    let mut name_offsets = Vec::new();
    loop {
        let entry = at
            .checked_add(8)
            .and_then(|value_at| Some((u64_at(data, at)?, u64_at(data, value_at)?)));
        let Some((tag, value)) = entry else {
            return Err("its dynamic section runs past the end of the file".into());
        };
        match tag {
            DT_NULL => break,
            DT_NEEDED => name_offsets.push(value),
            DT_STRTAB => strtab = Some(value),
            DT_RPATH | DT_RUNPATH => needs.has_search_path = true,
            _ => {}
        }
        at = at
            .checked_add(DYN_SIZE)
            .ok_or("its dynamic section runs past any file")?;
    }
    if name_offsets.is_empty() {
        return Ok(needs);
    }
    let strtab = strtab.ok_or("it has DT_NEEDED entries but no DT_STRTAB")?;
    let base = segments
        .iter()
        .filter(|s| s.kind == PT_LOAD)
        .find(|s| strtab >= s.vaddr && strtab - s.vaddr < s.filesz)
        .and_then(|s| (strtab - s.vaddr).checked_add(s.offset))
        .ok_or_else(|| format!("its DT_STRTAB address {strtab:#x} is in no loaded segment"))?;
    let base = offset(base, "DT_STRTAB's file offset")?;
    for name_offset in name_offsets {
        let name = offset(name_offset, "a DT_NEEDED offset")
            .ok()
            .and_then(|o| base.checked_add(o))
            .and_then(|o| string_at(data, o))
            .ok_or("a DT_NEEDED name lies outside the file")?;
        needs.needed.push(name);
    }
    Ok(needs)
}

/// `aarch64` for [`EM_AARCH64`], … for messages.
pub fn machine_name(machine: u16) -> String {
    match machine {
        EM_X86_64 => "x86-64".into(),
        EM_AARCH64 => "aarch64".into(),
        other => format!("e_machine {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 64-bit ELF: header, two program headers (PT_LOAD of the whole file at
    /// 0x1000, PT_DYNAMIC), an interpreter string, a string table and a dynamic
    /// section with two DT_NEEDED entries.
    fn sample() -> Vec<u8> {
        let mut file = vec![0u8; 0x200];
        file[..4].copy_from_slice(b"\x7fELF");
        file[4] = 2;
        file[5] = 1;
        file[0x12..0x14].copy_from_slice(&EM_AARCH64.to_le_bytes());
        file[0x20..0x28].copy_from_slice(&0x40u64.to_le_bytes());
        file[0x36..0x38].copy_from_slice(&0x38u16.to_le_bytes());
        file[0x38..0x3a].copy_from_slice(&3u16.to_le_bytes());
        let phdr = |file: &mut Vec<u8>, at: usize, kind: u32, off: u64, vaddr: u64, size: u64| {
            file[at..at + 4].copy_from_slice(&kind.to_le_bytes());
            file[at + 8..at + 16].copy_from_slice(&off.to_le_bytes());
            file[at + 16..at + 24].copy_from_slice(&vaddr.to_le_bytes());
            file[at + 32..at + 40].copy_from_slice(&size.to_le_bytes());
        };
        phdr(&mut file, 0x40, PT_LOAD, 0, 0x1000, 0x200);
        phdr(&mut file, 0x78, PT_DYNAMIC, 0x180, 0x1180, 0x40);
        phdr(&mut file, 0xb0, PT_INTERP, 0x100, 0x1100, 0x20);
        file[0x100..0x119].copy_from_slice(b"/lib/ld-linux-aarch64.so\0");
        // String table at file 0x140 (vaddr 0x1140): "\0libc.so.6\0libm.so.6\0".
        file[0x140..0x155].copy_from_slice(b"\0libc.so.6\0libm.so.6\0");
        let dyn_entry = |file: &mut Vec<u8>, at: usize, tag: u64, value: u64| {
            file[at..at + 8].copy_from_slice(&tag.to_le_bytes());
            file[at + 8..at + 16].copy_from_slice(&value.to_le_bytes());
        };
        dyn_entry(&mut file, 0x180, DT_NEEDED, 1);
        dyn_entry(&mut file, 0x190, DT_STRTAB, 0x1140);
        dyn_entry(&mut file, 0x1a0, DT_NEEDED, 11);
        dyn_entry(&mut file, 0x1b0, DT_NULL, 0);
        file
    }

    #[test]
    fn interpreter_and_needed_names_are_read() {
        let needs = loader_needs(&sample()).unwrap();
        assert_eq!(
            needs,
            LoaderNeeds {
                machine: EM_AARCH64,
                interpreter: Some("/lib/ld-linux-aarch64.so".into()),
                needed: vec!["libc.so.6".into(), "libm.so.6".into()],
                has_search_path: false,
            }
        );
    }

    #[test]
    fn damaged_files_are_errors() {
        let file = sample();
        for cut in [0, 3, 0x30, 0x90, 0x185, 0x1b5] {
            assert!(loader_needs(&file[..cut]).is_err(), "cut at {cut:#x}");
        }
        let mut no_strtab = file.clone();
        no_strtab[0x190..0x198].copy_from_slice(&0x7fu64.to_le_bytes());
        assert!(loader_needs(&no_strtab).unwrap_err().contains("DT_STRTAB"));
        let mut far_name = file.clone();
        far_name[0x188..0x190].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(loader_needs(&far_name).is_err());
        let mut big_endian = file;
        big_endian[5] = 2;
        assert!(loader_needs(&big_endian).is_err());
    }

    #[test]
    fn this_machines_thin_check_is_dynamic_x86_64() {
        let bytes = std::fs::read("/usr/sbin/pdata_tools")
            .unwrap_or_else(|e| panic!("{e}: install thin-provisioning-tools"));
        let needs = loader_needs(&bytes).unwrap();
        assert_eq!(needs.machine, EM_X86_64);
        assert_eq!(
            needs.interpreter.as_deref(),
            Some("/lib64/ld-linux-x86-64.so.2")
        );
        assert!(needs.needed.iter().any(|n| n == "libc.so.6"), "{needs:?}");
    }
}
