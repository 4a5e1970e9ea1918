//! checkflow-store: checkpoints kept in a PostgreSQL database that several
//! machines share, so that a run stopped on one can restart on another.
//!
//! 1. `Store::open` connects and creates the tables on first use (`schema.rs`).
//! 2. `Lease::acquire` makes this run the holder of a checkpoint key, with an
//!    epoch that grows with every new holder; a thread renews it (`lease.rs`).
//! 3. The journal writes its frames through `Lease::create` / `Lease::resume`
//!    (`frames.rs`): every frame is one row, inserted in a transaction that
//!    first checks the epoch, so a holder that lost its lease writes nothing.
//! 4. `read` gives back the frames of a key as the bytes of a file, which the
//!    journal's reader checks exactly as it checks a file.
//! 5. `queue.rs`: runs submitted for workers, claimed with `SKIP LOCKED`.
//!
//! Every call has a deadline (`conn.rs`); the argument for why no recorded
//! task runs twice and no record is lost is in `docs/design/store.md`.

mod conn;
mod error;
mod frames;
mod lease;
mod queue;
mod schema;

pub use error::StoreError;
pub use frames::{Stored, read};
pub use lease::{Holder, Lease, LeaseGuard, LeaseSpec};
pub use queue::{Claim, Claimed, Ended, NewRun, RestartPolicy, RunEnd, RunRow, RunState, Worker};

use checkflow_model::redact_url;
use std::time::{Duration, Instant};

/// The tests' crash points (`CHECKFLOW_TEST_FAILPOINT`): the command line
/// installs its failpoint function here; without one, none fires.
static FAILPOINT: std::sync::OnceLock<fn(&str) -> bool> = std::sync::OnceLock::new();

/// Installs the function that says whether a named crash point fires.
pub fn set_failpoint(f: fn(&str) -> bool) {
    let _ = FAILPOINT.set(f);
}

pub(crate) fn failpoint(name: &str) -> bool {
    FAILPOINT.get().is_some_and(|f| f(name))
}

/// The lease when the package does not give one.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(15);

/// How long a one-off call (open, read, list) may wait for the store.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A shared checkpoint store: a PostgreSQL database.
pub struct Store {
    url: String,
    shown: String,
    pub(crate) conn: conn::Conn,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("url", &self.shown).finish()
    }
}

impl Store {
    /// Connects to the store at `url` and makes sure its tables exist (and
    /// are of a version this build knows).
    pub fn open(url: &str) -> Result<Store, StoreError> {
        let shown = redact_url(url);
        let conn = conn::Conn::new(url).map_err(|reason| StoreError::BadUrl {
            url: shown.clone(),
            reason,
        })?;
        let mut store = Store {
            url: url.to_string(),
            shown,
            conn,
        };
        schema::migrate(&mut store)?;
        Ok(store)
    }

    /// The URL with any password hidden, for messages.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// A second connection to the same store (for a thread of its own).
    pub(crate) fn reconnect(&self) -> conn::Conn {
        conn::Conn::new(&self.url).expect("the URL parsed when the store was opened")
    }

    /// A call made once (opening the store: a store that cannot be reached
    /// now fails the command at once, with the reason).
    pub(crate) fn call_once<R, F>(&mut self, action: &'static str, f: F) -> Result<R, StoreError>
    where
        F: FnOnce(&mut conn::Session) -> Result<R, crate::conn::CallError>,
    {
        let deadline = Instant::now() + CALL_TIMEOUT;
        self.conn
            .call(deadline, f)
            .map_err(|e| StoreError::call(action, &self.shown, e))
    }

    /// A one-off call, retried over transient failures for `CALL_TIMEOUT`.
    pub(crate) fn call<R, F>(&mut self, action: &'static str, f: F) -> Result<R, StoreError>
    where
        F: Fn(&mut conn::Session) -> Result<R, crate::conn::CallError>,
    {
        let deadline = Instant::now() + CALL_TIMEOUT;
        self.conn
            .retry(deadline, f)
            .map_err(|e| StoreError::call(action, &self.shown, e))
    }
}

#[cfg(test)]
mod tests;
