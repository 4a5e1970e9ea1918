//! The checkpoint's fate when a run ends: kept (the next run restarts from
//! it) or deleted, and the line that says which and why.

use super::CheckpointPlan;
use checkflow_exec::{PackageOutcome, RunResult};
use checkflow_journal as journal;

/// What became of the checkpoint.
pub(crate) struct Fate {
    /// A checkpoint file is there for the next run.
    pub kept: bool,
    /// The line for the summary (empty when there is nothing to say).
    pub note: String,
    /// A removal that failed.
    pub warning: Option<String>,
}

/// Keeps or deletes the checkpoint after `result`: the journal this run
/// wrote, or the file a restart read (`state`) under `lock`.
/// `finished_child` keeps a child package's finished checkpoint for its
/// parent to remove.
#[allow(clippy::too_many_arguments)]
pub(crate) fn settle(
    result: &RunResult,
    journal: Option<journal::Journal>,
    state: &Option<journal::ResumeState>,
    checkpoint: &CheckpointPlan,
    lock: &Option<journal::Lock>,
    lease: &mut Option<checkflow_store::Lease>,
    queue_run: Option<checkflow_store::Claim>,
    finished_child: bool,
) -> Fate {
    // The rules: docs/semantics.md §5.4.
    let mut note = String::new();
    let mut warning = None;
    let mut kept = false;
    // A child package that succeeded keeps its checkpoint, every task in it
    // recorded: if its parent stops before recording the child's task, the
    // parent's restart runs the child again, which then restores everything
    // and repeats nothing. The parent removes the file once its record of
    // the task is durable (docs/design/commit-protocols.md §4).
    let keep = match result.outcome {
        PackageOutcome::Success => finished_child,
        PackageOutcome::Cancelled => true,
        PackageOutcome::Failure => result.restart_point || result.journal_error.is_some(),
    };
    // A run of the queue records its end with its checkpoint's fate, in one
    // transaction (docs/design/store.md §6).
    if let (Some(l), Some(id)) = (lease.as_mut(), queue_run) {
        return settle_queued(
            result,
            journal.is_some() || state.is_some(),
            keep,
            l,
            id,
            checkpoint,
        );
    }
    // What was removed, and how the removal went. The journal this run wrote
    // goes unless it is kept. A restart that did not write (`save: false`)
    // leaves the file it read as it was, except that a success deletes it,
    // as any success does (a failure keeps it: its restart points still hold).
    let shown = checkpoint.shown().unwrap_or_default();
    let removed = match (journal, &state, &checkpoint.path, &lock) {
        (Some(j), ..) if keep => {
            kept = true;
            note = if finished_child && result.outcome == PackageOutcome::Success {
                format!(
                    "checkpoint kept: {} (finished; the parent package removes it once it has recorded this run)",
                    j.path().display()
                )
            } else {
                format!(
                    "checkpoint kept: {} (the next run restarts from it)",
                    j.path().display()
                )
            };
            None
        }
        (Some(j), ..) => {
            let path = j.path().to_path_buf();
            Some((j.delete(), path))
        }
        (None, Some(_), Some(path), Some(held)) if result.outcome == PackageOutcome::Success => {
            Some((journal::delete(path, held), path.clone()))
        }
        (None, Some(_), Some(_), Some(_)) => {
            kept = true;
            None
        }
        (None, Some(_), None, None) => match lease {
            Some(l) if result.outcome == PackageOutcome::Success => Some((
                l.remove().map_err(|e| journal::JournalError::Io {
                    action: "delete checkpoint",
                    path: shown.clone().into(),
                    source: std::io::Error::other(e.to_string()),
                }),
                shown.clone().into(),
            )),
            Some(_) => {
                kept = true;
                None
            }
            None => None,
        },
        _ => None,
    };
    match removed {
        Some((Ok(()), path)) if result.outcome == PackageOutcome::Success => {
            note = format!(
                "checkpoint {} deleted: the package succeeded",
                path.display()
            );
        }
        Some((Ok(()), path)) => {
            note = format!(
                "checkpoint {} deleted: no failed executable has fail_package_on_failure, so there is no restart point and the next run starts from the beginning",
                path.display()
            );
        }
        Some((Err(e), path)) => {
            warning = Some(crate::session::failed_to(&e));
            // A store's rows stay when their removal failed.
            kept = checkpoint.store.is_some() || path.exists();
        }
        None => {}
    }
    Fate {
        kept,
        note,
        warning,
    }
}

/// The fate of a queued run's checkpoint, and the run's end in the queue,
/// written together.
fn settle_queued(
    result: &RunResult,
    exists: bool,
    keep: bool,
    lease: &mut checkflow_store::Lease,
    claim: checkflow_store::Claim,
    checkpoint: &CheckpointPlan,
) -> Fate {
    let id = claim.id;
    let shown = checkpoint.shown().unwrap_or_default();
    let end = checkflow_store::RunEnd {
        exit_code: Some(crate::exit::of(result.outcome)),
        restart_point: keep && result.outcome == PackageOutcome::Failure,
        hand_back: result.outcome == PackageOutcome::Cancelled,
        error: result
            .journal_error
            .clone()
            .or_else(|| result.errors.first().cloned()),
    };
    let delete = exists && !keep;
    match lease.end_run(claim, end, delete) {
        Ok(state) => {
            let run = match state {
                Some(s) => format!("run {id} recorded as {}", s.as_str()),
                None => format!(
                    "run {id} is another claim's now: its end and checkpoint are left to that run"
                ),
            };
            let note = if delete && state.is_some() {
                format!("checkpoint {shown} deleted; {run}")
            } else if exists {
                format!("checkpoint kept: {shown}; {run}")
            } else {
                run
            };
            Fate {
                kept: exists && !(delete && state.is_some()),
                note,
                warning: None,
            }
        }
        Err(e) => Fate {
            kept: exists,
            note: String::new(),
            warning: Some(crate::session::failed_to(&e)),
        },
    }
}
