//! `ResumeState`: everything a restart needs, derived from the records.
//!
//! Derivation is a fold over the records in file order: last write wins, and
//! `Invalidate` removes a path, everything below it, and its iterations.

use std::collections::{BTreeMap, BTreeSet};

use crate::entry::RecordedOutcome;
use crate::record::{Opener, Record, StoredVars};
use crate::seal::SealedBox;

/// A value as the reader gives it back.
#[derive(Clone, Debug, PartialEq)]
pub enum Restored {
    /// The value, in clear or unsealed with the right key.
    Value(serde_json::Value),
    /// Sealed, but no `CHECKFLOW_KEY` now (or not the one it was sealed with).
    Sealed,
    /// Sensitive, written without a key: left out.
    Omitted,
}

/// The checkpoint's header as read back.
#[derive(Clone, Debug)]
pub struct HeaderInfo {
    pub format_version: u32,
    pub package_id: String,
    pub package_name: String,
    pub package_path: String,
    /// RFC 3339 UTC.
    pub created_at: String,
    /// The configuration the first run started with.
    pub config: BTreeMap<String, Restored>,
}

/// The recorded result of one executable.
#[derive(Clone, Debug)]
pub struct CompletedEntry {
    pub outcome: RecordedOutcome,
    pub fingerprint: String,
    pub duration_ms: u64,
    /// When the record was written, RFC 3339 UTC.
    pub at: String,
}

/// A transacted executable's recorded intent to commit, with no completion
/// recorded after it: the commit may or may not have happened.
#[derive(Clone, Debug, PartialEq)]
pub struct TxIntent {
    /// The marker its commit writes.
    pub marker: String,
    /// The connections that took part.
    pub connections: Vec<String>,
    /// The variables its completion would have carried, as they were at the
    /// commit. They are not in `ResumeState::vars`: they hold only if the
    /// commit was made, which the restart asks the databases.
    pub vars: BTreeMap<String, Restored>,
}

/// One `RunStarted` record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunInfo {
    pub run_id: String,
    pub pid: u32,
    pub host: String,
    /// RFC 3339 UTC.
    pub at: String,
}

/// What the reader learned about the file itself, for `Journal::append_to`.
#[derive(Clone, Debug)]
pub(crate) struct FileFacts {
    pub version: u8,
    pub salt: Vec<u8>,
    pub key_check: Option<SealedBox>,
    /// The file's length when it was read.
    pub len: u64,
}

/// Everything a restart needs, derived from the records.
#[derive(Clone, Debug)]
pub struct ResumeState {
    pub header: HeaderInfo,
    pub completed: BTreeMap<String, CompletedEntry>,
    /// Completed paths in the order they were (last) recorded.
    pub completed_order: Vec<String>,
    /// Loop path -> keys of the iterations done, in order (a key finished
    /// twice, by two equal items, is there twice).
    pub iterations: BTreeMap<String, Vec<String>>,
    /// Transacted executables whose commit was started but not recorded as
    /// completed: path -> intent.
    pub tx_intents: BTreeMap<String, TxIntent>,
    /// The latest value of every variable ever recorded.
    pub vars: BTreeMap<String, Restored>,
    /// The variables a task or an iteration changed (every record but the
    /// first run's snapshot of all values): a sensitive one left out of
    /// the file cannot be known again from the package or its configuration.
    pub vars_set_by_tasks: BTreeSet<String>,
    /// Path -> how many `Completed` and `Invalidate` records named it. Unlike
    /// `completed`, an `Invalidate` does not clear it: it only grows, so an
    /// execution that follows a recorded completion, or one forgotten on
    /// purpose, can be told from one that a crash cut short.
    pub record_counts: BTreeMap<String, u32>,
    /// How many `RunStarted` records the file holds.
    pub runs: u32,
    /// Every `RunStarted` record, oldest first.
    pub run_history: Vec<RunInfo>,
    /// When the last record after the header was written; `None` if there is none.
    pub last_written_at: Option<String>,
    /// Bytes of a torn record dropped at the end (0 if the file ended cleanly);
    /// zeros after them are not counted.
    pub torn_tail_bytes: u64,
    /// Length of the valid prefix. `Journal::append_to` truncates the file to
    /// it if a torn record follows, and otherwise writes its next frame there,
    /// over the zeros written ahead.
    pub valid_len: u64,
    /// A key was given but it does not match the one the file was written with.
    pub key_mismatch: bool,
    pub(crate) file: FileFacts,
}

/// True if `p` is `path` or lies below it ("a/b" covers "a/b/c", not "a/bc").
pub fn is_at_or_below(p: &str, path: &str) -> bool {
    match p.strip_prefix(path) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

impl ResumeState {
    /// Folds one record into the state (taking its strings and values).
    pub(crate) fn apply(
        &mut self,
        at: &str,
        record: Record,
        opener: &Opener,
    ) -> Result<(), String> {
        match record {
            Record::RunStarted { run_id, pid, host } => {
                self.runs += 1;
                self.run_history.push(RunInfo {
                    run_id,
                    pid,
                    host,
                    at: at.to_string(),
                });
            }
            Record::Completed {
                path,
                outcome,
                fingerprint,
                duration_ms,
                vars,
            } => {
                self.restore_task_vars(vars, opener)?;
                *self.record_counts.entry(path.clone()).or_default() += 1;
                if !self.tx_intents.is_empty() {
                    self.tx_intents.remove(&path);
                }
                let entry = CompletedEntry {
                    outcome,
                    fingerprint,
                    duration_ms,
                    at: at.to_string(),
                };
                // One search of the map: a path completed again moves to the end.
                if self.completed.insert(path.clone(), entry).is_some() {
                    self.completed_order.retain(|p| *p != path);
                }
                self.completed_order.push(path);
            }
            Record::Iteration {
                loop_path,
                key,
                vars,
            } => {
                self.restore_task_vars(vars, opener)?;
                // Every finished iteration counts, equal keys too: a
                // collection holding an item twice runs it twice, and a
                // restart skips it only as many times as it finished.
                self.iterations.entry(loop_path).or_default().push(key);
            }
            Record::Vars { vars } => {
                self.restore_vars(vars, opener)?;
            }
            Record::Invalidate { path } => {
                *self.record_counts.entry(path.clone()).or_default() += 1;
                self.completed.retain(|p, _| !is_at_or_below(p, &path));
                self.completed_order.retain(|p| !is_at_or_below(p, &path));
                self.iterations.retain(|p, _| !is_at_or_below(p, &path));
                self.tx_intents.retain(|p, _| !is_at_or_below(p, &path));
            }
            Record::TxCommitting {
                path,
                marker,
                connections,
                vars,
            } => {
                let mut restored = BTreeMap::new();
                for (name, v) in vars.0 {
                    let r = opener.restore_owned(&name, v)?;
                    restored.insert(name, r);
                }
                self.tx_intents.insert(
                    path,
                    TxIntent {
                        marker,
                        connections,
                        vars: restored,
                    },
                );
            }
        }
        Ok(())
    }

    fn restore_task_vars(&mut self, vars: StoredVars, opener: &Opener) -> Result<(), String> {
        for (name, _) in &vars.0 {
            if !self.vars_set_by_tasks.contains(name) {
                self.vars_set_by_tasks.insert(name.clone());
            }
        }
        self.restore_vars(vars, opener)
    }

    fn restore_vars(&mut self, vars: StoredVars, opener: &Opener) -> Result<(), String> {
        for (name, v) in vars.0 {
            let r = opener.restore_owned(&name, v)?;
            self.vars.insert(name, r);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_or_below_respects_path_segments() {
        assert!(is_at_or_below("a/b", "a/b"));
        assert!(is_at_or_below("a/b/c", "a/b"));
        assert!(is_at_or_below("a/b/c/d", "a/b"));
        assert!(!is_at_or_below("a/bc", "a/b"));
        assert!(!is_at_or_below("a", "a/b"));
        assert!(!is_at_or_below("x/a/b", "a/b"));
    }
}
