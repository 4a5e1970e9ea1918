//! A checkpoint's whole life, in one place:
//!
//! 1. [`open`]: the effective settings and the file's path, the lock, the
//!    read (ahead on a second thread, [`prefetch`]), the package id check;
//!    on a restart ([`restore`]) the configuration and variables it holds,
//!    the transaction intents settled against the databases, and what the
//!    run restores ([`checkflow_exec::Resume`]).
//! 2. [`record`]: the journal opened or created with the run's first
//!    records, and every conversion of the executor's records into journal
//!    entries ([`record::JournalRecorder`]).
//! 3. [`fate`]: when the run ends, the file is kept or deleted, and the line
//!    that says which and why.
//!
//! [`store`]: the same checkpoint kept in a shared store under a lease.
//!
//! A child package run by a parent's task keeps a checkpoint of its own per
//! task, iteration and parent execution ([`child`]).

pub(crate) mod child;
pub(crate) mod fate;
pub(crate) mod open;
pub(crate) mod prefetch;
pub(crate) mod record;
pub(crate) mod restore;
pub(crate) mod store;

use crate::exit;
use crate::session::Fail;
use checkflow_exec::{TaskEnv, VarStore};
use checkflow_model::Usage;
use checkflow_plan::{CheckpointFile, Plan, VarValue};
use std::path::PathBuf;
use std::sync::Arc;

/// The effective checkpoint settings.
#[derive(Clone, Debug)]
pub struct CheckpointPlan {
    /// The checkpoint file (`None` when it lives in a store).
    pub path: Option<PathBuf>,
    pub usage: Usage,
    pub save: bool,
    /// The store and key, when the checkpoint lives in a shared store.
    pub store: Option<store::StoreTarget>,
}

impl CheckpointPlan {
    /// The checkpoint as messages name it: the file's path, or the key and
    /// the store.
    pub fn shown(&self) -> Option<String> {
        match &self.store {
            Some(t) => Some(t.shown()),
            None => self.path.as_ref().map(|p| p.display().to_string()),
        }
    }
}

/// A checkpoint setting's text (`file` / `file_expr`, `key` / `key_expr`):
/// as written, or its expression evaluated against the variables at start.
/// `name` names the expression's setting in the error.
pub(crate) fn setting_text(
    plan: &Plan,
    setting: &CheckpointFile,
    initial: &[VarValue],
    start_time: jiff::civil::DateTime,
    name: &str,
) -> Result<String, Fail> {
    match setting {
        CheckpointFile::Literal(text) => Ok(text.clone()),
        CheckpointFile::Expr(e) => {
            let vars = VarStore::new(Arc::new(plan.vars.clone()), initial.to_vec());
            let env = TaskEnv {
                store: &vars,
                task_name: &plan.package.name,
                start: start_time,
                error: None,
                unit: Plan::ROOT,
            };
            e.eval(&env)
                .map(|v| v.to_string())
                .map_err(|err| Fail::new(exit::FAILURE, format!("checkpoint {name} failed: {err}")))
        }
    }
}
