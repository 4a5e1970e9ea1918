//! Durable file-system steps: atomic create (temp + fsync + rename + directory
//! fsync), directory creation and fsync, owner-only modes, and the host name.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use checkflow_files::Links;

use crate::error::JournalError;

/// The directory a path lives in ("." for a bare file name).
pub(crate) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// `path` with `suffix` appended to its file name ("a/b.ckpt" -> "a/b.ckpt.lock").
pub(crate) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s: OsString = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Opens options that create files owner-only (0600) on Unix.
pub(crate) fn owner_only(opts: &mut OpenOptions) -> &mut OpenOptions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts
}

/// Makes a directory's entries (creations, renames, removals) durable.
///
/// On Unix this is `fsync` on the directory; other systems have no such call
/// (Windows makes renames durable with the file system's own journal).
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Creates `dir` and any missing ancestors, and makes each new entry durable
/// by syncing the directory that holds it.
pub(crate) fn create_dirs(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut missing = Vec::new();
    let mut at = Some(dir);
    while let Some(d) = at {
        if d.as_os_str().is_empty() || d.is_dir() {
            break;
        }
        missing.push(d.to_path_buf());
        at = d.parent();
    }
    fs::create_dir_all(dir)?;
    for d in missing.iter().rev() {
        sync_dir(&parent_dir(d))?;
    }
    Ok(())
}

/// Writes `bytes` to a new file that replaces `path` atomically, and returns
/// it open for writing (not `O_APPEND`), positioned after `bytes`.
///
/// Steps: temp file in the same directory (`create_new`, 0600) -> write ->
/// `sync_all` -> rename over `path` -> `fsync` the directory. A crash before
/// the rename leaves `path` as it was (plus a stray temp file); after it,
/// `path` is the complete new file.
pub(crate) fn create_atomically(path: &Path, bytes: &[u8]) -> Result<File, JournalError> {
    let dir = parent_dir(path);
    create_dirs(&dir)
        .map_err(|e| JournalError::io("create the directory of checkpoint", path, e))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let Some(name) = name else {
        return Err(JournalError::io(
            "create checkpoint",
            path,
            io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name"),
        ));
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tmp = dir.join(format!(".{name}.{}.{nanos:09}.tmp", std::process::id()));

    let mut opts = OpenOptions::new();
    owner_only(opts.write(true).create_new(true));
    let mut file = checkflow_files::open(&opts, &tmp, Links::Refuse)
        .map_err(|e| JournalError::io("create the temporary file for checkpoint", path, e))?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| renamed_if_ours(&file, &tmp, path));
    if let Err(e) = written {
        // The target is untouched; the temp file (if the name is still
        // ours) is useless now.
        if checkflow_files::same_file(&file, &tmp) {
            let _ = fs::remove_file(&tmp);
        }
        return Err(JournalError::io("create checkpoint", path, e));
    }
    sync_dir(&dir).map_err(|e| JournalError::io("sync the directory of checkpoint", path, e))?;
    Ok(file)
}

/// Renames `tmp` over `path` if `tmp` still names `file`, the file just
/// written: a rename moves whatever the name holds, and a link or another
/// file put there in the meantime must not become the checkpoint. (A link
/// at `path` itself is replaced by the rename, not written through.)
fn renamed_if_ours(file: &File, tmp: &Path, path: &Path) -> io::Result<()> {
    if !checkflow_files::same_file(file, tmp) {
        return Err(io::Error::other(format!(
            "{} is no longer the file written (it was replaced)",
            tmp.display()
        )));
    }
    fs::rename(tmp, path)
}

/// This machine's name, or "unknown".
pub fn hostname() -> String {
    #[cfg(unix)]
    {
        let mut buf = [0u8; 256];
        // SAFETY: the buffer is valid for `buf.len()` bytes; gethostname
        // writes at most that many and we stop at the first NUL or the end.
        let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
        if rc == 0 {
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            let name = String::from_utf8_lossy(&buf[..end]).into_owned();
            if !name.is_empty() {
                return name;
            }
        }
    }
    std::env::var("COMPUTERNAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_and_parent() {
        assert_eq!(
            with_suffix(Path::new("a/b.ckpt"), ".lock"),
            PathBuf::from("a/b.ckpt.lock")
        );
        assert_eq!(parent_dir(Path::new("b.ckpt")), PathBuf::from("."));
        assert_eq!(parent_dir(Path::new("a/b.ckpt")), PathBuf::from("a"));
    }

    #[test]
    fn create_atomically_replaces_and_creates_parents() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("x/y/z.ckpt");
        drop(create_atomically(&target, b"one").expect("first create"));
        assert_eq!(fs::read(&target).expect("read"), b"one");
        let mut f = create_atomically(&target, b"two").expect("second create");
        f.write_all(b"+more").expect("append");
        assert_eq!(fs::read(&target).expect("read"), b"two+more");
        let leftovers: Vec<_> = fs::read_dir(dir.path().join("x/y"))
            .expect("list")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        assert_eq!(leftovers, vec![OsString::from("z.ckpt")]);
    }

    #[test]
    fn hostname_is_not_empty() {
        assert!(!hostname().is_empty());
    }
}
