//! Transactions: a container with `transaction: required` gives the tasks inside
//! it one [`TxScope`]; each connection a task uses joins it as a [`TxResource`],
//! committed together when the container succeeds and rolled back when it fails.
//!
//! Beyond SSIS, a commit writes a marker in the same database transaction, and
//! the executor records its intent to commit in the checkpoint first. If the
//! process dies between the commit and the checkpoint record, the restart asks
//! each connection's [`TxProbe`] whether the marker is there: if it is, the
//! container is treated as completed and never repeated.

use crate::task::TaskError;
use checkflow_model::ConnectionDef;
use std::any::Any;
use std::path::Path;
use std::sync::Mutex;

/// One connection's share of a transaction (for example an open database
/// transaction).
pub trait TxResource: Send {
    /// Commits, writing `marker` in the same transaction first.
    fn commit(&mut self, marker: &str) -> Result<(), TxError>;
    /// Rolls back.
    fn rollback(&mut self) -> Result<(), TxError>;
    /// The concrete resource, for the task type that opened it.
    fn as_any(&mut self) -> &mut dyn Any;
}

/// The cause an error carries: a database's own error, or its message.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// Why a transaction did not commit or roll back.
#[derive(Debug, thiserror::Error)]
pub enum TxError {
    /// The resource's transaction had ended already.
    #[error("{conn} already ended its transaction")]
    Ended {
        /// The connection, as messages describe it.
        conn: String,
    },
    /// The commit marker could not be written: nothing was committed.
    #[error("cannot write the commit marker on {conn} (statement `{statement}`): {cause}")]
    Marker {
        /// The connection.
        conn: String,
        /// The statement that failed (its first line).
        statement: String,
        /// The database's error.
        cause: Cause,
    },
    /// The database refused COMMIT.
    #[error("COMMIT failed on {conn}: {cause}")]
    Commit {
        /// The connection.
        conn: String,
        /// The database's error.
        cause: Cause,
    },
    /// The database refused ROLLBACK.
    #[error("ROLLBACK failed on {conn}: {cause}")]
    Rollback {
        /// The connection.
        conn: String,
        /// The database's error.
        cause: Cause,
    },
    /// One connection of a scope failed; the others were rolled back.
    #[error("{op} on connection \"{key}\" failed: {error}")]
    Connection {
        /// `commit` or `rollback`.
        op: &'static str,
        /// The connection's name.
        key: String,
        /// Its error.
        error: Box<TxError>,
    },
    /// A probe could not read a connection's commit markers, so whether a
    /// transaction committed is not known.
    #[error("cannot read its commit markers: {cause}")]
    Probe {
        /// Why: the connection could not be opened or queried.
        cause: Cause,
    },
    /// A thread panicked while it held the scope.
    #[error("transaction state is poisoned")]
    Poisoned,
}

/// The transaction of one transacted container (or task), for one run of it.
pub struct TxScope {
    path: String,
    marker: String,
    resources: Mutex<Vec<(String, Box<dyn TxResource>)>>,
}

impl TxScope {
    /// A scope for the executable at `path`, whose commit writes `marker`.
    pub fn new(path: impl Into<String>, marker: impl Into<String>) -> TxScope {
        TxScope {
            path: path.into(),
            marker: marker.into(),
            resources: Mutex::new(Vec::new()),
        }
    }

    /// The executable that owns it.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The marker its commit writes.
    pub fn marker(&self) -> &str {
        &self.marker
    }

    /// Runs `f` on the resource for connection `key`, opening it with `open`
    /// the first time a task inside the scope uses that connection. Tasks of
    /// one scope that use the same connection share it, one at a time.
    pub fn with<R>(
        &self,
        key: &str,
        open: impl FnOnce() -> Result<Box<dyn TxResource>, TaskError>,
        f: impl FnOnce(&mut dyn TxResource) -> Result<R, TaskError>,
    ) -> Result<R, TaskError> {
        let mut res = self
            .resources
            .lock()
            .map_err(|_| TaskError::new("transaction state is poisoned"))?;
        let i = match res.iter().position(|(k, _)| k == key) {
            Some(i) => i,
            None => {
                res.push((key.to_string(), open()?));
                res.len() - 1
            }
        };
        f(res[i].1.as_mut())
    }

    /// The connections that joined, in the order they joined.
    pub fn keys(&self) -> Vec<String> {
        self.resources
            .lock()
            .map(|r| r.iter().map(|(k, _)| k.clone()).collect())
            .unwrap_or_default()
    }

    /// Commits every resource, each with the marker. Stops at the first error
    /// (the rest are rolled back); see the module docs for what a partial
    /// commit across several connections means.
    pub fn commit(&self) -> Result<(), TxError> {
        let mut res = self.resources.lock().map_err(|_| TxError::Poisoned)?;
        let mut taken = std::mem::take(&mut *res).into_iter();
        for (key, mut r) in taken.by_ref() {
            if let Err(e) = r.commit(&self.marker) {
                for (_, mut rest) in taken {
                    let _ = rest.rollback();
                }
                return Err(TxError::Connection {
                    op: "commit",
                    key,
                    error: Box::new(e),
                });
            }
            crate::failpoint("tx-after-connection-commit");
        }
        Ok(())
    }

    /// Rolls every resource back; returns the errors (the rollback of the
    /// others goes on).
    pub fn rollback(&self) -> Vec<TxError> {
        let Ok(mut res) = self.resources.lock() else {
            return vec![TxError::Poisoned];
        };
        std::mem::take(&mut *res)
            .into_iter()
            .filter_map(|(key, mut r)| {
                r.rollback().err().map(|e| TxError::Connection {
                    op: "rollback",
                    key,
                    error: Box::new(e),
                })
            })
            .collect()
    }
}

impl Drop for TxScope {
    fn drop(&mut self) {
        // A scope dropped without commit (a crash path, a bug) never commits.
        let _ = self.rollback();
    }
}

/// Tells whether a transaction's marker was committed on a connection.
pub trait TxProbe: Send + Sync {
    /// The connection kind it serves (`sqlite`, `postgres`).
    fn kind(&self) -> &'static str;
    /// Whether `marker` is committed on this connection; [`TxError::Probe`]
    /// when that cannot be read.
    fn committed(
        &self,
        conn: &ConnectionDef,
        package_dir: &Path,
        marker: &str,
    ) -> Result<bool, TxError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    struct Rec(Arc<Mutex<Vec<String>>>, &'static str, bool);
    impl TxResource for Rec {
        fn commit(&mut self, marker: &str) -> Result<(), TxError> {
            self.0
                .lock()
                .unwrap()
                .push(format!("commit {} {marker}", self.1));
            if self.2 {
                Err(TxError::Commit {
                    conn: self.1.into(),
                    cause: "boom".into(),
                })
            } else {
                Ok(())
            }
        }
        fn rollback(&mut self) -> Result<(), TxError> {
            self.0.lock().unwrap().push(format!("rollback {}", self.1));
            Ok(())
        }
        fn as_any(&mut self) -> &mut dyn Any {
            self
        }
    }

    /// Joins a recording resource under `key` to `s`; `fail` makes its
    /// commit fail.
    fn join(s: &TxScope, log: &Arc<Mutex<Vec<String>>>, key: &'static str, fail: bool) {
        s.with(
            key,
            || Ok(Box::new(Rec(log.clone(), key, fail))),
            |_| Ok(()),
        )
        .unwrap();
    }

    #[test]
    fn opens_once_per_key_and_commits_all_with_the_marker() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let s = TxScope::new("S", "m1");
        for _ in 0..2 {
            join(&s, &log, "a", false);
        }
        join(&s, &log, "b", false);
        assert_eq!(s.keys(), ["a", "b"]);
        s.commit().unwrap();
        assert_eq!(*log.lock().unwrap(), ["commit a m1", "commit b m1"]);
    }

    #[test]
    fn a_failed_commit_rolls_back_the_rest_and_drop_rolls_back() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let s = TxScope::new("S", "m");
        join(&s, &log, "a", true);
        join(&s, &log, "b", false);
        let e = s.commit().unwrap_err();
        assert!(
            matches!(&e, TxError::Connection { key, .. } if key == "a"),
            "{e}"
        );
        assert_eq!(
            e.to_string(),
            "commit on connection \"a\" failed: COMMIT failed on a: boom"
        );
        assert_eq!(*log.lock().unwrap(), ["commit a m", "rollback b"]);
        let log2 = Arc::new(Mutex::new(Vec::new()));
        {
            let s = TxScope::new("S", "m");
            s.with(
                "c",
                || Ok(Box::new(Rec(log2.clone(), "c", false))),
                |_| Ok(()),
            )
            .unwrap();
        }
        assert_eq!(*log2.lock().unwrap(), ["rollback c"]);
    }
}
