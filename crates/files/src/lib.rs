//! checkflow-files: opening the files checkflow reads and writes so that a
//! path cannot lead it astray.
//!
//! 1. [`open`] opens with the caller's `OpenOptions`, plus: never through a
//!    symbolic link at the last component when asked ([`Links::Refuse`],
//!    `O_NOFOLLOW`), never blocking (`O_NONBLOCK`: a FIFO with no writer would
//!    wait forever, and a signal would not end the wait), and never keeping
//!    what is not a regular file (`fstat` after the open: a FIFO, a device, a
//!    socket or a folder is refused with an error that names the path).
//! 2. [`read`] and [`read_to_string`] read a whole file that way.
//! 3. [`same_file`] says whether a path still names a file held open
//!    (`lstat`: a link put in its place does not count), for the check right
//!    before a rename or a removal.
//! 4. [`list`] lists a folder's files that match a wildcard (a foreach's
//!    `files:` enumerator, a data flow's folder source), and [`wildcard`] is
//!    that match.
//!
//! Every file checkflow writes (checkpoint, lock, temporary, `.part` and
//! report files, the file task's and the download's targets) is opened with
//! [`Links::Refuse`]; inputs a user names (the package, `--config`, a task's
//! input files) may be links ([`Links::Follow`]) but must still be regular
//! files. Links in the folders above the last component are the user's to
//! make and are followed. Depends on no other checkflow crate.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// What to do when the last component of a path is a symbolic link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Links {
    /// Open what the link points at (an input the user named).
    Follow,
    /// Refuse it: a file checkflow writes, creates, truncates or owns.
    Refuse,
}

/// Opens `path` with `opts` (and the mode set on them), without blocking and,
/// with [`Links::Refuse`], without following a link at the last component.
/// Fails, naming `path`, unless what is opened is a regular file.
pub fn open(opts: &OpenOptions, path: &Path, links: Links) -> io::Result<File> {
    let mut opts = opts.clone();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut flags = libc::O_NONBLOCK | libc::O_NOCTTY;
        if links == Links::Refuse {
            flags |= libc::O_NOFOLLOW;
        }
        opts.custom_flags(flags);
    }
    #[cfg(not(unix))]
    if links == Links::Refuse
        && let Ok(m) = fs::symlink_metadata(path)
        && m.file_type().is_symlink()
    {
        return Err(refused(path, "a symbolic link"));
    }
    let file = opts.open(path).map_err(|e| explain(path, links, e))?;
    let ty = file.metadata()?.file_type();
    if !ty.is_file() {
        return Err(refused(path, kind_of(&ty)));
    }
    #[cfg(unix)]
    blocking(&file)?;
    Ok(file)
}

/// Opens `path` for reading: [`open`] with read access only.
pub fn open_read(path: &Path, links: Links) -> io::Result<File> {
    open(OpenOptions::new().read(true), path, links)
}

/// Reads the whole regular file at `path`.
pub fn read(path: &Path, links: Links) -> io::Result<Vec<u8>> {
    let mut file = open_read(path, links)?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Reads the whole regular file at `path` as UTF-8 text.
pub fn read_to_string(path: &Path, links: Links) -> io::Result<String> {
    String::from_utf8(read(path, links)?).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        )
    })
}

/// True if `path` names `file` itself (same device and inode), not a link
/// to it or another file put in its place.
///
/// Checked right before `path` is renamed or removed: a rename moves the
/// directory entry, so the entry must be the file that was written.
pub fn same_file(file: &File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), fs::symlink_metadata(path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        // Windows cannot remove or replace a file that is open without
        // sharing delete access, which std does not grant; what is left to
        // check is that no link took the name.
        let _ = file;
        fs::symlink_metadata(path).is_ok_and(|m| m.is_file())
    }
}

/// The files in `folder` whose names match `pattern` ([`wildcard`]), as
/// full paths in name order; with `recursive`, those of its subfolders too.
///
/// A file is an entry that is not a folder: a regular file, or a link (read
/// later through the link, and refused then if it does not lead to a regular
/// file). Links to folders are not followed down, so a link loop cannot make
/// the walk endless. An error names the folder that could not be read.
pub fn list(folder: &Path, pattern: &str, recursive: bool) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    list_into(folder, pattern, recursive, &mut out)?;
    out.sort();
    Ok(out)
}

fn list_into(dir: &Path, pattern: &str, recursive: bool, out: &mut Vec<PathBuf>) -> io::Result<()> {
    let named = |e: io::Error| {
        io::Error::new(
            e.kind(),
            format!("cannot list folder {}: {e}", dir.display()),
        )
    };
    for entry in fs::read_dir(dir).map_err(named)? {
        let entry = entry.map_err(named)?;
        let path = entry.path();
        let ty = entry.file_type().map_err(|e| {
            io::Error::new(e.kind(), format!("cannot read {}: {e}", path.display()))
        })?;
        if ty.is_dir() {
            if recursive {
                list_into(&path, pattern, true, out)?;
            }
        } else if (ty.is_file() || ty.is_symlink())
            && wildcard(pattern, &entry.file_name().to_string_lossy())
        {
            out.push(path);
        }
    }
    Ok(())
}

/// Windows-style wildcard match, as SSIS's: `*` is any run of characters,
/// `?` any one character, and letters match regardless of case.
pub fn wildcard(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let n: Vec<char> = name.to_lowercase().chars().collect();
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// An open that failed: when the path holds something other than a regular
/// file, says what, instead of the system's less telling error (`ELOOP` for
/// a link refused, `ENXIO` for a FIFO opened for writing with no reader,
/// `EISDIR` for a folder).
fn explain(path: &Path, links: Links, e: io::Error) -> io::Error {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return e;
    };
    let ty = meta.file_type();
    if ty.is_symlink() {
        if links == Links::Refuse {
            return refused(path, "a symbolic link");
        }
        match fs::metadata(path) {
            Ok(target) if !target.is_file() => refused(path, kind_of(&target.file_type())),
            _ => e,
        }
    } else if ty.is_file() {
        e
    } else {
        refused(path, kind_of(&ty))
    }
}

/// What a file that is not a regular file is, in words.
fn kind_of(ty: &fs::FileType) -> &'static str {
    if ty.is_dir() {
        return "a directory";
    }
    if ty.is_symlink() {
        return "a symbolic link";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ty.is_fifo() {
            return "a FIFO";
        }
        if ty.is_socket() {
            return "a socket";
        }
        if ty.is_block_device() || ty.is_char_device() {
            return "a device";
        }
    }
    "not a file"
}

/// The error for a path that holds `kind` where a regular file was expected.
fn refused(path: &Path, kind: &str) -> io::Error {
    let text = if kind == "a symbolic link" {
        format!(
            "{} is a symbolic link, and checkflow does not follow a link to a file it writes",
            path.display()
        )
    } else {
        format!("{} is {kind}, not a regular file", path.display())
    };
    io::Error::new(io::ErrorKind::InvalidInput, text)
}

/// Turns `O_NONBLOCK` off again: it was there for the open only; reads and
/// writes of a regular file do not block on it anyway, but a later reader of
/// the descriptor should not have to know.
#[cfg(unix)]
fn blocking(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: `fd` is open for as long as `file` is borrowed; F_GETFL and
    // F_SETFL only read and set its status flags.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags == -1 || libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) == -1 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests;
