//! checkflow-journal: the crash-safe, append-only checkpoint journal
//! (engine records -> frames on disk -> `ResumeState`).
//!
//! 1. `lock` takes `<checkpoint>.lock` for the whole run (`lock.rs`).
//! 2. `read` turns a file into a `ResumeState`, dropping a torn tail and
//!    failing on corruption before it (`reader.rs`, `state.rs`).
//! 3. `Journal::create` writes a new file atomically; `Journal::append_to`
//!    continues one after `read` (`journal.rs`).
//! 4. `Journal::append` / `append_all` write one checksummed frame and sync
//!    it before returning (`frame.rs`, `record.rs`); sensitive values are
//!    sealed or omitted (`seal.rs`).
//! 5. `Journal::delete` removes the file when the package succeeds.
//! 6. `Storage` is where the frames go: a file (`storage.rs`), or a shared
//!    store's table (`Journal::create_on`, `Journal::resume_on`, and
//!    `read_bytes` over the frames read back).
//!
//! `testing` puts a simulated disk that crashes at the Nth write or sync under
//! a journal, for crash tests here and in other crates.
//!
//! The byte layout and why a crash at any point leaves a readable file are in
//! `docs/design/journal-format.md`.

mod entry;
mod error;
mod frame;
mod fsutil;
mod journal;
mod lock;
mod quick;
mod reader;
mod record;
mod seal;
mod state;
mod storage;
mod time;

/// Test support: a disk that crashes at the Nth write or sync, and journals
/// over it, for crash tests in other crates. Not for production use.
pub mod testing;

#[cfg(test)]
mod crash;
#[cfg(test)]
mod tests;

pub use entry::{Entry, NewHeader, RecordedOutcome, StoredValue};
pub use error::JournalError;
pub use fsutil::hostname;
pub use journal::{Journal, delete};
pub use lock::{Lock, lock};
pub use reader::{is_checkpoint, read, read_bytes};
pub use seal::{KEY_ENV, Key};
pub use state::{
    CompletedEntry, HeaderInfo, Restored, ResumeState, RunInfo, TxIntent, is_at_or_below,
};
pub use storage::Storage;

/// The format this build writes, and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;
