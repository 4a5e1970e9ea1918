//! `JournalError`: every way reading, writing or locking a checkpoint can fail.
//!
//! Messages are lowercase phrases that read after "failed to ..." and name the
//! file; I/O errors keep their `source()` so the CLI can print the chain.

use std::io;
use std::path::PathBuf;

/// An error from the checkpoint journal. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// An operating-system call on the checkpoint (or its lock or directory) failed.
    #[error("{action} {}", path.display())]
    Io {
        /// What was being done, e.g. "write to checkpoint".
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The file does not start with a valid checkpoint header.
    #[error("read checkpoint {}: not a checkflow checkpoint ({reason})", path.display())]
    NotACheckpoint { path: PathBuf, reason: String },

    /// The header says the file was written by a newer format than this build reads.
    #[error(
        "read checkpoint {}: written by a newer checkflow, format version {found}; this build reads up to {supported}",
        path.display()
    )]
    NewerFormat {
        path: PathBuf,
        found: u32,
        supported: u32,
    },

    /// A record before the end of the file fails its integrity check or cannot be decoded.
    #[error("read checkpoint {}: corrupt record at byte {offset} ({reason})", path.display())]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },

    /// Another run holds the checkpoint's lock.
    #[error("lock checkpoint {}: another run holds it ({holder})", path.display())]
    Locked {
        /// The checkpoint path (not the `.lock` file).
        path: PathBuf,
        /// What the holder wrote into the lock file: "pid N on host H since T".
        holder: String,
    },

    /// An earlier write or sync failed, so the journal refuses further records.
    #[error(
        "append to checkpoint {}: an earlier write failed ({cause}), so the journal accepts no more records",
        path.display()
    )]
    Poisoned { path: PathBuf, cause: String },

    /// `CHECKFLOW_KEY` is set but is not the key the checkpoint was written with.
    #[error(
        "append to checkpoint {}: CHECKFLOW_KEY does not match the key this checkpoint was written with",
        path.display()
    )]
    KeyMismatch { path: PathBuf },

    /// `create` or `append_to` was given a lock for another checkpoint.
    #[error("write checkpoint {}: the lock held is for {}", path.display(), locked.display())]
    WrongLock { path: PathBuf, locked: PathBuf },

    /// `append_to` found the file different from the state it was given.
    #[error("append to checkpoint {}: the file changed since it was read ({reason})", path.display())]
    Stale { path: PathBuf, reason: String },

    /// A record could not be encoded (too large, or sealing failed).
    #[error("write checkpoint {}: {reason}", path.display())]
    Encode { path: PathBuf, reason: String },
}

impl JournalError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        JournalError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_lowercase_and_name_the_file() {
        let e = JournalError::Corrupt {
            path: PathBuf::from("/tmp/x.ckpt"),
            offset: 42,
            reason: "bad checksum".into(),
        };
        assert_eq!(
            e.to_string(),
            "read checkpoint /tmp/x.ckpt: corrupt record at byte 42 (bad checksum)"
        );
        let e = JournalError::NewerFormat {
            path: PathBuf::from("a"),
            found: 7,
            supported: 1,
        };
        assert!(
            e.to_string()
                .contains("format version 7; this build reads up to 1")
        );
    }

    #[test]
    fn io_errors_keep_their_source() {
        use std::error::Error as _;
        let e = JournalError::io("open checkpoint", "/x", io::Error::other("boom"));
        assert_eq!(e.to_string(), "open checkpoint /x");
        assert_eq!(e.source().map(|s| s.to_string()), Some("boom".to_string()));
    }
}
