//! Ending a hold: `release`, and `rm` in the image. The image has no shell and no
//! coreutils, yet operators follow the seed tool's recovery step
//! `kubectl exec … -- rm /tmp/.disk-provisioner-wait`; the image links `rm` to this
//! binary, which then removes the hold marker and nothing else.
use super::CliError;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The marker a hold waits on when `HOLD_MARKER` is not set.
const DEFAULT_HOLD_MARKER: &str = "/tmp/.disk-provisioner-wait";

/// The largest file taken for a hold marker: the tool creates it empty; an operator
/// may have `echo`ed into it. Anything larger is someone's data HOLD_MARKER names.
const MAX_MARKER_BYTES: u64 = 8;

/// Why the file at `marker` is not one to remove: it must be a regular file (found
/// without following a symlink) of at most [`MAX_MARKER_BYTES`]. `Ok` also when
/// nothing is there (removing it then says so).
pub(super) fn check_removable(marker: &Path) -> Result<(), String> {
    let Ok(found) = std::fs::symlink_metadata(marker) else {
        return Ok(());
    };
    let kind = found.file_type();
    let what = if kind.is_symlink() {
        "a symlink".to_owned()
    } else if kind.is_dir() {
        "a folder".to_owned()
    } else if !kind.is_file() {
        "not a regular file (a device, FIFO or socket)".to_owned()
    } else if found.len() > MAX_MARKER_BYTES {
        format!("a file of {} bytes", found.len())
    } else {
        return Ok(());
    };
    Err(format!(
        "refusing to remove {}: it is {what}, not a hold marker (an empty file this tool creates, at most {MAX_MARKER_BYTES} bytes); check HOLD_MARKER, and remove the file yourself if it is one",
        marker.display()
    ))
}

/// Removes the hold marker; a missing marker is an error (nothing was holding there),
/// and so is anything that is not a small regular file.
pub fn run(marker: &Path) -> Result<(), CliError> {
    check_removable(marker).map_err(CliError::Failed)?;
    match std::fs::remove_file(marker) {
        Ok(()) => {
            tracing::info!(marker = %marker.display(), "hold released; the holding run retries");
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(CliError::Failed(format!(
            "no hold to release: {} does not exist (no run is holding, or it was started with another HOLD_MARKER)",
            marker.display()
        ))),
        Err(e) => Err(CliError::Failed(format!(
            "cannot remove the hold marker {}: {e}",
            marker.display()
        ))),
    }
}

/// Whether the program was started under the name `rm` (the image's link).
pub fn invoked_as_rm(argv: &[OsString]) -> bool {
    argv.first()
        .and_then(|arg0| Path::new(arg0).file_name())
        .is_some_and(|name| name == "rm")
}

/// `rm [-f] [--] <hold marker>`: removes the marker only; any other path is refused
/// with what to do instead.
pub fn run_as_rm(argv: &[OsString]) -> ExitCode {
    let marker = std::env::var_os("HOLD_MARKER")
        .filter(|m| !m.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_HOLD_MARKER), PathBuf::from);
    let (force, paths) = match parse_rm(argv.get(1..).unwrap_or_default()) {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("rm: {message}");
            return ExitCode::from(super::EXIT_USAGE);
        }
    };
    if let Some(other) = paths.iter().find(|p| **p != marker) {
        eprintln!(
            "rm: this image's rm removes only the hold marker {} (refusing {}); the image has no other tools",
            marker.display(),
            other.display()
        );
        return ExitCode::from(super::EXIT_USAGE);
    }
    if paths.is_empty() {
        eprintln!("rm: missing operand; usage: rm {}", marker.display());
        return ExitCode::from(super::EXIT_USAGE);
    }
    if let Err(message) = check_removable(&marker) {
        eprintln!("rm: {message}");
        return ExitCode::FAILURE;
    }
    match std::fs::remove_file(&marker) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if force && e.kind() == std::io::ErrorKind::NotFound => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rm: cannot remove {}: {e}", marker.display());
            ExitCode::FAILURE
        }
    }
}

/// Splits `rm` arguments into `-f` and paths; other options are refused.
fn parse_rm(args: &[OsString]) -> Result<(bool, Vec<PathBuf>), String> {
    let mut force = false;
    let mut paths = Vec::new();
    let mut options_done = false;
    for arg in args {
        match arg.to_str() {
            Some("--") if !options_done => options_done = true,
            Some("-f") if !options_done => force = true,
            Some(option) if !options_done && option.starts_with('-') && option.len() > 1 => {
                return Err(format!(
                    "unsupported option {option} (this rm only removes the hold marker; -f is accepted)"
                ))
            }
            _ => paths.push(PathBuf::from(arg)),
        }
    }
    Ok((force, paths))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(Into::into).collect()
    }

    #[test]
    fn only_the_name_rm_is_the_applet() {
        assert!(invoked_as_rm(&os(&["/usr/bin/rm", "/tmp/x"])));
        assert!(invoked_as_rm(&os(&["rm"])));
        assert!(!invoked_as_rm(&os(&[
            "/usr/local/bin/linstor-provision-disk"
        ])));
        assert!(!invoked_as_rm(&os(&["rmdir"])));
    }

    #[test]
    fn rm_arguments_accept_force_and_refuse_other_options() {
        assert_eq!(
            parse_rm(&os(&["-f", "/tmp/m"])),
            Ok((true, vec![PathBuf::from("/tmp/m")]))
        );
        assert_eq!(
            parse_rm(&os(&["--", "-r"])),
            Ok((false, vec![PathBuf::from("-r")]))
        );
        assert!(parse_rm(&os(&["-rf", "/"])).is_err());
    }

    #[test]
    fn release_removes_the_marker_and_says_when_there_is_none() {
        let dir = std::env::temp_dir().join(format!("lpd-release-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let marker = dir.join("wait");
        std::fs::write(&marker, b"").unwrap_or_else(|e| panic!("{e}"));
        assert!(run(&marker).is_ok());
        assert!(!marker.exists());
        match run(&marker) {
            Err(CliError::Failed(message)) => assert!(message.contains("no hold to release")),
            other => panic!("expected an error, got {other:?}"),
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn only_a_small_regular_file_is_removed() {
        let dir = crate::observe::partition::test_tree::TempDir::new("release-kinds");
        let big = dir.path().join("big");
        std::fs::write(&big, b"precious data").unwrap_or_else(|e| panic!("{e}"));
        let folder = dir.path().join("folder");
        std::fs::create_dir(&folder).unwrap_or_else(|e| panic!("{e}"));
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path().join("small"), &link)
            .unwrap_or_else(|e| panic!("{e}"));
        for (path, says) in [
            (&big, "a file of 13 bytes"),
            (&folder, "a folder"),
            (&link, "a symlink"),
        ] {
            match run(path) {
                Err(CliError::Failed(message)) => {
                    assert!(message.contains(says), "{message}");
                    assert!(message.contains(&path.display().to_string()), "{message}");
                }
                other => panic!("{} removed: {other:?}", path.display()),
            }
            assert!(std::fs::symlink_metadata(path).is_ok());
        }
        let small = dir.path().join("small");
        std::fs::write(&small, b"held\n").unwrap_or_else(|e| panic!("{e}"));
        assert!(run(&small).is_ok());
        assert!(std::fs::symlink_metadata(&small).is_err());
        assert!(check_removable(Path::new("/dev/null")).is_err());
    }
}
