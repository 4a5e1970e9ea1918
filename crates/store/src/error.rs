//! `StoreError`: every way using the shared store can fail. Messages read
//! after "failed to ..." and name the store (its URL without a password) or
//! the checkpoint key.

use crate::conn::CallError;

/// An error from the checkpoint store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store's URL does not parse.
    #[error("open the checkpoint store {url}: {reason}")]
    BadUrl { url: String, reason: String },

    /// A call to the store failed (it could not be reached, refused the
    /// credentials, or answered with an error).
    #[error("{action} (checkpoint store {url}): {reason}")]
    Call {
        action: &'static str,
        url: String,
        reason: String,
    },

    /// The store's tables were made by a newer checkflow.
    #[error(
        "open the checkpoint store {url}: its tables are version {found}, made by a newer checkflow; this build knows up to version {supported}"
    )]
    NewerSchema {
        url: String,
        found: i32,
        supported: i32,
    },

    /// Another run holds the key's lease.
    #[error("take the lease on checkpoint {key}: another run holds it ({holder})")]
    Held { key: String, holder: String },

    /// This run no longer holds the key's lease: it writes nothing more.
    #[error("hold checkpoint {key}: this run lost its lease ({why})")]
    Lost { key: String, why: String },

    /// A run of the same checkpoint key is queued or running.
    #[error(
        "queue the run: run {id} of checkpoint key {key} is still queued or running (each run needs a key of its own: set checkpoint.key_expr from a variable, or --checkpoint-key)"
    )]
    KeyBusy { key: String, id: i64 },

    /// A frame already stored under this position is not the one written
    /// (two writers, which the lease rules out, or a damaged table).
    #[error(
        "write checkpoint {key}: record {seq} in the store differs from the one this run wrote"
    )]
    Conflict { key: String, seq: i64 },
}

impl StoreError {
    pub(crate) fn call(action: &'static str, url: &str, e: CallError) -> StoreError {
        StoreError::Call {
            action,
            url: url.to_string(),
            reason: e.to_string(),
        }
    }
}
