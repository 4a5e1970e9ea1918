//! `Storage`: the few operations the journal performs on its open file, so
//! tests can put a disk that "crashes" underneath (`crash.rs`).

use std::fs::File;
use std::io::{self, Write};

/// Where a journal's bytes go. Writes are appends at the end of the file.
pub(crate) trait Storage: Send {
    /// Appends `buf` at the end.
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()>;
    /// Makes every byte written so far durable (`fdatasync`).
    fn sync(&mut self) -> io::Result<()>;
    /// Cuts the file to `len` bytes and makes the new length durable.
    fn truncate(&mut self, len: u64) -> io::Result<()>;
    /// The current length in bytes.
    fn size(&mut self) -> io::Result<u64>;
}

/// The real thing: a file opened with `O_APPEND`, so every write lands at
/// the end even after a truncation.
pub(crate) struct FileStorage {
    file: File,
}

impl FileStorage {
    /// Wraps a file that was opened for appending.
    pub(crate) fn new(file: File) -> FileStorage {
        FileStorage { file }
    }
}

impl Storage for FileStorage {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.file.write_all(buf)
    }

    fn sync(&mut self) -> io::Result<()> {
        // fdatasync: the data and the file size (needed to read it back), not
        // the timestamps.
        self.file.sync_data()
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.file.set_len(len)?;
        self.file.sync_all()
    }

    fn size(&mut self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }
}
