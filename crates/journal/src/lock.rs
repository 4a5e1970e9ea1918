//! `Lock`: one run at a time per checkpoint, through an exclusive lock on
//! `<checkpoint>.lock` held for the whole run.
//!
//! The holder writes "pid N on host H since T" into the lock file so a second
//! run can say who holds it. On release the guard removes the lock file while
//! still holding the lock; so after locking, `lock` checks that the path still
//! names the file it locked, and starts over if not.
//!
//! The lock file is never opened through a symbolic link (a link at
//! `<checkpoint>.lock` is refused, and its target left alone), and only the
//! file this process locked is ever removed.

use checkflow_files::{Links, same_file};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::JournalError;
use crate::fsutil::{create_dirs, hostname, owner_only, parent_dir, with_suffix};
use crate::time::now_rfc3339;

/// Proof that this process holds a checkpoint's lock. Dropping it releases the lock.
#[derive(Debug)]
pub struct Lock {
    file: File,
    lock_path: PathBuf,
    checkpoint: PathBuf,
}

impl Lock {
    /// The checkpoint this lock is for.
    pub fn checkpoint(&self) -> &Path {
        &self.checkpoint
    }

    /// The lock file, `<checkpoint>.lock`.
    pub fn lock_path(&self) -> &Path {
        &self.lock_path
    }

    /// Fails unless this lock is the one for `path`.
    pub(crate) fn covers(&self, path: &Path) -> Result<(), JournalError> {
        if self.checkpoint == path {
            Ok(())
        } else {
            Err(JournalError::WrongLock {
                path: path.to_path_buf(),
                locked: self.checkpoint.clone(),
            })
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Remove first, then unlock: nobody can lock this inode and take it
        // for the live lock file, because the path no longer names it. Only
        // if the path still names the file locked: whatever took its place
        // (a link, another file) is not ours to remove.
        if same_file(&self.file, &self.lock_path) {
            let _ = std::fs::remove_file(&self.lock_path);
        }
        let _ = self.file.unlock();
    }
}

/// Takes the exclusive lock on `<path>.lock` or fails at once, naming the holder.
pub fn lock(path: &Path) -> Result<Lock, JournalError> {
    let lock_path = with_suffix(path, ".lock");
    create_dirs(&parent_dir(path))
        .map_err(|e| JournalError::io("create the directory of checkpoint", path, e))?;
    // Each retry means a holder released (and removed) the file between our
    // open and our lock; a handful is plenty.
    for _ in 0..16 {
        let mut opts = OpenOptions::new();
        owner_only(opts.read(true).write(true).create(true).truncate(false));
        let mut file = checkflow_files::open(&opts, &lock_path, Links::Refuse)
            .map_err(|e| JournalError::io("open the lock file of checkpoint", path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(JournalError::Locked {
                    path: path.to_path_buf(),
                    holder: if holder.is_empty() {
                        "holder unknown".to_string()
                    } else {
                        holder.to_string()
                    },
                });
            }
            Err(TryLockError::Error(e)) => {
                return Err(JournalError::io("lock checkpoint", path, e));
            }
        }
        if !same_file(&file, &lock_path) {
            continue;
        }
        let holder = format!(
            "pid {} on host {} since {}",
            std::process::id(),
            hostname(),
            now_rfc3339()
        );
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(holder.as_bytes()))
            .map_err(|e| JournalError::io("write the lock file of checkpoint", path, e))?;
        return Ok(Lock {
            file,
            lock_path,
            checkpoint: path.to_path_buf(),
        });
    }
    Err(JournalError::io(
        "lock checkpoint",
        path,
        std::io::Error::other("the lock file kept being replaced"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_fails_and_names_the_holder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ckpt = dir.path().join("sub/run.ckpt");
        let first = lock(&ckpt).expect("first lock");
        assert_eq!(first.lock_path(), dir.path().join("sub/run.ckpt.lock"));
        let err = lock(&ckpt).expect_err("second lock must fail");
        let JournalError::Locked { path, holder } = &err else {
            panic!("expected Locked, got {err:?}");
        };
        assert_eq!(path, &ckpt);
        let pid = format!("pid {} on host ", std::process::id());
        assert!(holder.starts_with(&pid), "holder {holder:?}");
        assert!(err.to_string().contains(&pid), "message {err}");
        assert!(err.to_string().contains(&ckpt.display().to_string()));
    }

    #[test]
    fn another_handle_in_the_same_process_cannot_lock_either() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ckpt = dir.path().join("run.ckpt");
        let _held = lock(&ckpt).expect("lock");
        let other = File::options()
            .read(true)
            .write(true)
            .open(dir.path().join("run.ckpt.lock"))
            .expect("open lock file");
        assert!(matches!(other.try_lock(), Err(TryLockError::WouldBlock)));
    }

    #[test]
    fn drop_releases_and_removes_the_lock_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ckpt = dir.path().join("run.ckpt");
        let held = lock(&ckpt).expect("lock");
        drop(held);
        assert!(!dir.path().join("run.ckpt.lock").exists());
        let again = lock(&ckpt).expect("lock again after release");
        drop(again);
    }

    #[test]
    fn a_lock_on_a_removed_file_is_not_kept() {
        // A stale handle on an unlinked lock file locks fine, but must not
        // count: the path names another file now.
        let dir = tempfile::tempdir().expect("tempdir");
        let lp = dir.path().join("run.ckpt.lock");
        let stale = File::create(&lp).expect("create");
        std::fs::remove_file(&lp).expect("remove");
        File::create(&lp).expect("recreate");
        assert!(!same_file(&stale, &lp));
        let held = lock(&dir.path().join("run.ckpt")).expect("lock");
        assert!(same_file(&held.file, &lp));
    }

    #[cfg(unix)]
    #[test]
    fn a_link_at_the_lock_file_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let decoy = dir.path().join("decoy");
        std::fs::write(&decoy, b"keep").expect("write decoy");
        let lp = dir.path().join("run.ckpt.lock");
        std::os::unix::fs::symlink(&decoy, &lp).expect("symlink");
        let err = lock(&dir.path().join("run.ckpt")).expect_err("a link must be refused");
        let chain = format!(
            "{err}: {}",
            std::error::Error::source(&err).expect("source")
        );
        assert!(
            chain.contains(&format!("{} is a symbolic link", lp.display())),
            "{chain}"
        );
        assert_eq!(std::fs::read(&decoy).expect("read decoy"), b"keep");
        assert!(std::fs::symlink_metadata(&lp).is_ok_and(|m| m.file_type().is_symlink()));
    }

    #[cfg(unix)]
    #[test]
    fn the_guard_does_not_remove_what_took_the_lock_files_place() {
        let dir = tempfile::tempdir().expect("tempdir");
        let held = lock(&dir.path().join("run.ckpt")).expect("lock");
        let lp = held.lock_path().to_path_buf();
        let decoy = dir.path().join("decoy");
        std::fs::write(&decoy, b"keep").expect("write decoy");
        std::fs::remove_file(&lp).expect("remove the lock file");
        std::os::unix::fs::symlink(&decoy, &lp).expect("symlink");
        drop(held);
        assert!(std::fs::symlink_metadata(&lp).is_ok_and(|m| m.file_type().is_symlink()));
        assert_eq!(std::fs::read(&decoy).expect("read decoy"), b"keep");
    }

    #[cfg(unix)]
    #[test]
    fn lock_file_is_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let held = lock(&dir.path().join("run.ckpt")).expect("lock");
        let mode = std::fs::metadata(held.lock_path())
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
