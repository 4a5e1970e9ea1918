//! `Storage`: the few operations the journal performs on where its frames
//! live: a file here (`FileStorage`), a table in a shared database for the
//! store (the `checkflow-store` crate), or a disk that "crashes" in tests
//! (`crash.rs`). The frames, their checks and the reader are the same for all.

use std::fs::File;
use std::io;
use std::path::Path;

/// Where a journal's bytes go. Writes are appends at the end of the frames.
///
/// The journal calls `write_all` with exactly one whole frame, then `sync`:
/// a storage that writes records transactionally may keep the frame until
/// `sync` and write it there, all or nothing.
pub trait Storage: Send {
    /// Appends `buf` (one whole frame) at the end of the frames.
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()>;
    /// Makes every byte written so far durable (`fdatasync`, or a commit).
    fn sync(&mut self) -> io::Result<()>;
    /// Cuts the file to `len` bytes and makes the new length durable.
    fn truncate(&mut self, len: u64) -> io::Result<()>;
    /// The file's length in bytes (frames, then any zeros written ahead).
    fn size(&mut self) -> io::Result<u64>;
    /// The frames end at `len` and every byte after it is zero (the reader
    /// checked): the next append goes there, over the zeros.
    fn continue_at(&mut self, len: u64);
    /// The package succeeded: removes every frame, durably. `name` is the
    /// checkpoint's name (a file's path).
    fn remove(self: Box<Self>, name: &Path) -> io::Result<()>;
}

/// The smallest and largest run of zeros written ahead of the frames.
const AHEAD_MIN: u64 = 64 * 1024;
const AHEAD_MAX: u64 = 8 * 1024 * 1024;
/// Zeros are written ahead in whole pages.
const PAGE: u64 = 4096;

/// The real thing: frames written at `end`, over zeros written ahead of them.
///
/// Appending to a file changes its length, so every `fdatasync` must also
/// commit the new length to the file system's journal: on ext4 that is a
/// second write and flush, about a third of the sync's time. Writing zeros
/// ahead (in runs of half the file's length, 64 KiB to 8 MiB) lets most
/// syncs carry only the frame, as a database preallocates its log. The
/// reader treats zeros after the last frame as the end of the frames
/// (docs/design/journal-format.md, section 3).
pub(crate) struct FileStorage {
    file: File,
    /// Where the next frame goes: the end of the frames.
    end: u64,
    /// The file's length: `end`, then the zeros written ahead of it.
    len: u64,
}

impl FileStorage {
    /// Wraps a file opened for writing (not `O_APPEND`, whose writes ignore
    /// their offset) whose frames end at `end`, with nothing but zeros after.
    pub(crate) fn new(file: File, end: u64) -> io::Result<FileStorage> {
        let len = file.metadata()?.len().max(end);
        Ok(FileStorage { file, end, len })
    }

    /// Writes zeros ahead so that `need` more bytes fit before the file's end.
    /// A failure (a full disk) is not an error here: the frame is then
    /// written past the end, as a plain append, and fails on its own if the
    /// disk has no room for it.
    fn reserve(&mut self, need: u64) {
        if self.end + need <= self.len {
            return;
        }
        let step = (self.len / 2).clamp(AHEAD_MIN, AHEAD_MAX);
        let target = (self.end + need + step).div_ceil(PAGE) * PAGE;
        static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
        let mut at = self.len.max(self.end);
        while at < target {
            let n = (target - at).min(ZEROS.len() as u64) as usize;
            if write_at(&self.file, &ZEROS[..n], at).is_err() {
                // Part of a run may have landed; the file's real length says.
                self.len = self.file.metadata().map_or(at, |m| m.len()).max(at);
                return;
            }
            at += n as u64;
        }
        self.len = target;
    }
}

#[cfg(unix)]
fn write_at(file: &File, buf: &[u8], at: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.write_all_at(buf, at)
}

#[cfg(not(unix))]
fn write_at(mut file: &File, buf: &[u8], at: u64) -> io::Result<()> {
    use std::io::{Seek, SeekFrom, Write};
    file.seek(SeekFrom::Start(at))?;
    file.write_all(buf)
}

impl Storage for FileStorage {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let n = buf.len() as u64;
        self.reserve(n);
        write_at(&self.file, buf, self.end)?;
        self.end += n;
        self.len = self.len.max(self.end);
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        // fdatasync: the data and the file size (needed to read it back), not
        // the timestamps. Over zeros written ahead the size does not change.
        self.file.sync_data()
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.file.set_len(len)?;
        self.file.sync_all()?;
        self.end = len;
        self.len = len;
        Ok(())
    }

    fn size(&mut self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn continue_at(&mut self, len: u64) {
        self.end = len;
    }

    fn remove(self: Box<Self>, name: &Path) -> io::Result<()> {
        drop(self);
        remove_file_durably(name)
    }
}

/// Removes the file and makes the removal durable (the folder synced).
pub(crate) fn remove_file_durably(name: &Path) -> io::Result<()> {
    std::fs::remove_file(name)?;
    crate::fsutil::sync_dir(&crate::fsutil::parent_dir(name))
}
