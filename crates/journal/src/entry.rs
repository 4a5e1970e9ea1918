//! What the engine hands the journal: `Entry`, `NewHeader`, `StoredValue`, `RecordedOutcome`.
//!
//! These are the records as the engine means them; `record.rs` holds their
//! on-disk form, where sensitive values are sealed or left out.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How an executable completed, as SSIS precedence constraints see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordedOutcome {
    Success,
    Failure,
    Completion,
}

impl std::fmt::Display for RecordedOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RecordedOutcome::Success => "success",
            RecordedOutcome::Failure => "failure",
            RecordedOutcome::Completion => "completion",
        })
    }
}

/// A value as the engine hands it over: JSON, and whether it is sensitive.
///
/// Sensitive values are sealed with the file's key, or written as `Omitted`
/// when there is no key; they never reach the disk in clear.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredValue {
    pub value: serde_json::Value,
    pub sensitive: bool,
}

impl StoredValue {
    /// A value that may be written in clear.
    pub fn plain(value: serde_json::Value) -> StoredValue {
        StoredValue {
            value,
            sensitive: false,
        }
    }

    /// A value that must never be written in clear.
    pub fn sensitive(value: serde_json::Value) -> StoredValue {
        StoredValue {
            value,
            sensitive: true,
        }
    }
}

/// What the engine gives when it creates a checkpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct NewHeader {
    pub package_id: String,
    pub package_name: String,
    pub package_path: String,
    /// "User::X" -> the value the first run started with (`--set`, `--config`, environment).
    pub config: BTreeMap<String, StoredValue>,
}

/// One record as the engine appends it.
#[derive(Clone, Debug, PartialEq)]
pub enum Entry {
    /// A run began; lets `show` tell how many runs a file has seen. The
    /// journal adds the process id, host and time.
    RunStarted { run_id: String },
    /// An executable completed: its path ("Load dimensions/Customers"),
    /// outcome, fingerprint (hex), duration, and the variables that changed
    /// since the last record.
    Completed {
        path: String,
        outcome: RecordedOutcome,
        fingerprint: String,
        duration_ms: u64,
        vars: BTreeMap<String, StoredValue>,
    },
    /// One finished iteration of a loop with `checkpoint_iterations`, keyed by the item's identity.
    Iteration {
        loop_path: String,
        key: String,
        vars: BTreeMap<String, StoredValue>,
    },
    /// Variable changes with no completion (e.g. an interrupted loop's variables).
    Vars { vars: BTreeMap<String, StoredValue> },
    /// Forget this path, every path below it ("path/..."), and its iterations.
    Invalidate { path: String },
    /// A transacted executable is about to commit: its transaction writes
    /// `marker` on each of `connections`. Written (durably) before the commit,
    /// so a restart can ask the databases whether the commit happened.
    TxCommitting {
        path: String,
        marker: String,
        connections: Vec<String>,
        /// The variables its completion will carry: restored with it when the
        /// restart finds the commit made.
        vars: BTreeMap<String, StoredValue>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_displays_and_serializes_in_snake_case() {
        for (o, s) in [
            (RecordedOutcome::Success, "success"),
            (RecordedOutcome::Failure, "failure"),
            (RecordedOutcome::Completion, "completion"),
        ] {
            assert_eq!(o.to_string(), s);
            assert_eq!(
                serde_json::to_string(&o).expect("serialize"),
                format!("\"{s}\"")
            );
        }
    }
}
