//! Recording: the journal of a run opened (a restart's) or created (a first
//! run's) with the run's first records, and every record of the executor
//! written as journal entries. Every conversion from the executor's records
//! to the journal's entries lives here; the way back, a checkpoint read into
//! the executor's `Recorded`, is `restore`'s.

use super::CheckpointPlan;
use crate::config::ConfigValue;
use crate::exit;
use crate::session::Fail;
use checkflow_exec::{Outcome, Record, RecordError, Recorder, Resume};
use checkflow_journal as journal;
use checkflow_plan::{Plan, VarValue};
use std::collections::BTreeMap;

/// Writes completions to the checkpoint journal.
pub(crate) struct JournalRecorder<'p> {
    pub(crate) journal: journal::Journal,
    pub(crate) plan: &'p Plan,
    /// The store's lease, for a checkpoint kept in a store: the run goes on
    /// only while it holds it.
    pub(crate) lease: Option<checkflow_store::LeaseGuard>,
}

fn var_map(plan: &Plan, vars: Vec<(u32, VarValue)>) -> BTreeMap<String, journal::StoredValue> {
    vars.into_iter()
        // System variables are the run's own; expression variables are computed.
        .filter(|(slot, _)| {
            let d = plan.vars.decl(*slot);
            d.system.is_none() && d.expr.is_none()
        })
        .map(|(slot, v)| {
            let d = plan.vars.decl(slot);
            (
                d.name.qualified(),
                journal::StoredValue {
                    value: v.to_json(),
                    sensitive: d.sensitive,
                },
            )
        })
        .collect()
}

fn outcome(o: Outcome) -> journal::RecordedOutcome {
    match o {
        Outcome::Success => journal::RecordedOutcome::Success,
        Outcome::Failure => journal::RecordedOutcome::Failure,
        Outcome::Completion => journal::RecordedOutcome::Completion,
    }
}

impl Recorder for JournalRecorder<'_> {
    fn record(&mut self, batch: Vec<Record>) -> Result<(), RecordError> {
        // A write the tests make fail, as a full disk would: the dispatcher
        // stops as it does for a poisoned journal. `checkpoint-write` is any
        // write; `record-before-append` one that records a completion (a
        // task finished its work and the record of it is not durable yet,
        // docs/design/commit-protocols.md §3 and §4).
        let completes = batch.iter().any(|r| matches!(r, Record::Completed { .. }));
        if checkflow_plan::failpoint("checkpoint-write")
            || (completes && checkflow_plan::failpoint("record-before-append"))
        {
            return Err(RecordError::new(format!(
                "failed to write checkpoint {}: simulated write failure (CHECKFLOW_TEST_FAILPOINT)",
                self.journal.path().display()
            )));
        }
        let mut discard = Vec::new();
        let mut entries = Vec::with_capacity(batch.len());
        for r in batch {
            let entry = match r {
                Record::Discard { paths } => {
                    discard.extend(paths);
                    continue;
                }
                Record::Completed {
                    node,
                    outcome: o,
                    duration,
                    vars,
                } => {
                    let n = self.plan.node(node);
                    journal::Entry::Completed {
                        path: n.path.clone(),
                        outcome: outcome(o),
                        fingerprint: n.fingerprint.clone(),
                        duration_ms: duration.as_millis() as u64,
                        vars: var_map(self.plan, vars),
                    }
                }
                Record::TxCommitting {
                    node,
                    marker,
                    connections,
                    vars,
                } => journal::Entry::TxCommitting {
                    path: self.plan.node(node).path.clone(),
                    marker,
                    connections,
                    vars: var_map(self.plan, vars),
                },
                Record::Iteration { node, key, vars } => journal::Entry::Iteration {
                    loop_path: self.plan.node(node).path.clone(),
                    key,
                    vars: var_map(self.plan, vars),
                },
            };
            entries.push(entry);
        }
        if !entries.is_empty() {
            self.journal
                .append_all(entries)
                .map_err(|e| RecordError::caused_by(crate::session::failed_to(&e), e))?;
        }
        discard_files(discard);
        Ok(())
    }

    fn hold(&mut self) -> Result<(), RecordError> {
        hold(&self.lease)
    }
}

/// The recorder of a run without a checkpoint: nothing is written, and the
/// files tasks asked to remove once recorded go at once (no restart can
/// need them).
pub(crate) struct NoJournal {
    /// A restart from a store that does not save still holds its lease,
    /// and goes on only while it does.
    pub(crate) lease: Option<checkflow_store::LeaseGuard>,
}

impl Recorder for NoJournal {
    fn record(&mut self, batch: Vec<Record>) -> Result<(), RecordError> {
        for r in batch {
            if let Record::Discard { paths } = r {
                discard_files(paths);
            }
        }
        Ok(())
    }

    fn hold(&mut self) -> Result<(), RecordError> {
        hold(&self.lease)
    }
}

/// `Ok` while the run holds its store's lease (or has none to hold).
fn hold(lease: &Option<checkflow_store::LeaseGuard>) -> Result<(), RecordError> {
    match lease {
        Some(l) => l
            .check()
            .map_err(|e| RecordError::caused_by(crate::session::failed_to(&e), e)),
        None => Ok(()),
    }
}

/// Removes child packages' finished checkpoints whose task is now recorded
/// (docs/design/commit-protocols.md §4). Each is locked first, so a child
/// still running is never robbed of its file; one that cannot be removed
/// stays, and the child's next start of the same task removes it.
fn discard_files(paths: Vec<std::path::PathBuf>) {
    for p in paths {
        if let Ok(held) = journal::lock(&p) {
            let _ = journal::delete(&p, &held);
        }
    }
}

/// How a new checkpoint is created: `Journal::create`, or in the crash tests
/// a journal over a simulated disk (`checkflow_journal::testing`).
pub(crate) type CreateJournal<'a> = &'a dyn Fn(
    &std::path::Path,
    journal::NewHeader,
    Option<&journal::Key>,
    &journal::Lock,
) -> Result<journal::Journal, journal::JournalError>;

/// Where a run that saves writes its checkpoint, and what makes it the
/// only writer: a file under its lock, or a store's key under its lease
/// (with the frames a restart read, if it read any).
pub(crate) enum At<'a> {
    File(&'a journal::Lock),
    Store(
        &'a checkflow_store::Lease,
        Option<&'a checkflow_store::Stored>,
    ),
}

impl<'a> At<'a> {
    /// The place of a session's checkpoint; `None` when the run does not save.
    pub(crate) fn of(
        lock: &'a Option<journal::Lock>,
        lease: &'a Option<checkflow_store::Lease>,
        stored: &'a Option<checkflow_store::Stored>,
    ) -> Option<At<'a>> {
        match (lease, lock) {
            (Some(l), _) => Some(At::Store(l, stored.as_ref())),
            (None, Some(k)) => Some(At::File(k)),
            (None, None) => None,
        }
    }
}

/// The journal a run writes, if it saves checkpoints: the file a restart
/// read, opened for appending (first the commits its probes found made, and
/// what `--rerun` forgets), or a new one made with `create`; then the run's
/// first records.
#[allow(clippy::too_many_arguments)]
pub(crate) fn start_journal(
    plan: &Plan,
    checkpoint: &CheckpointPlan,
    state: &Option<journal::ResumeState>,
    key: &Option<journal::Key>,
    at: Option<At<'_>>,
    committed_tx: &[(String, Vec<u32>)],
    resume: &Resume,
    config: &BTreeMap<String, ConfigValue>,
    initial: &[VarValue],
    run_id: &str,
    create: CreateJournal<'_>,
) -> Result<Option<journal::Journal>, Fail> {
    if !checkpoint.save {
        return Ok(None);
    }
    let at = at.expect("a run that saves holds its checkpoint's lock or lease");
    let shown = checkpoint.shown().unwrap_or_default();
    let name = std::path::Path::new(&shown);
    let j = match &state {
        Some(st) => {
            let mut j = match at {
                At::File(lock) => {
                    let path = checkpoint
                        .path
                        .as_ref()
                        .expect("a file checkpoint has a path");
                    journal::Journal::append_to(path, st, key.as_ref(), lock)
                }
                // A restart from a store read its frames; none read is an
                // empty checkpoint, which `resume_on` refuses as changed.
                At::Store(lease, stored) => journal::Journal::resume_on(
                    name,
                    st,
                    key.as_ref(),
                    Box::new(lease.resume(stored.unwrap_or(&Default::default()))),
                ),
            }
            .map_err(|e| Fail::chain(exit::FAILURE, &e))?;
            // Commits found by the restart's probes: record them as completed.
            // With the variables their intents carried, as restored.
            let done: Vec<journal::Entry> = committed_tx
                .iter()
                .filter_map(|(p, slots)| Some((plan.find(p)?, slots)))
                .map(|(id, slots)| journal::Entry::Completed {
                    path: plan.node(id).path.clone(),
                    outcome: journal::RecordedOutcome::Success,
                    fingerprint: plan.node(id).fingerprint.clone(),
                    duration_ms: 0,
                    vars: var_map(
                        plan,
                        slots
                            .iter()
                            .map(|&s| (s, initial[s as usize].clone()))
                            .collect(),
                    ),
                })
                .collect();
            if !done.is_empty() {
                j.append_all(done)
                    .map_err(|e| Fail::chain(exit::FAILURE, &e))?;
            }
            let inval: Vec<journal::Entry> = resume
                .invalidate
                .iter()
                .map(|p| journal::Entry::Invalidate { path: p.clone() })
                .collect();
            if !inval.is_empty() {
                j.append_all(inval)
                    .map_err(|e| Fail::chain(exit::FAILURE, &e))?;
            }
            j
        }
        None => {
            let header = journal::NewHeader {
                package_id: plan.package.id.clone(),
                package_name: plan.package.name.clone(),
                package_path: plan.package.file.display().to_string(),
                config: config
                    .iter()
                    .map(|(k, v)| {
                        let sensitive = plan
                            .vars
                            .slot(k)
                            .map(|s| plan.vars.decl(s).sensitive)
                            .unwrap_or(false);
                        (
                            k.clone(),
                            journal::StoredValue {
                                value: v.json.clone(),
                                sensitive,
                            },
                        )
                    })
                    .collect(),
            };
            let j = match at {
                At::File(lock) => {
                    let path = checkpoint
                        .path
                        .as_ref()
                        .expect("a file checkpoint has a path");
                    create(path, header, key.as_ref(), lock)
                }
                At::Store(lease, _) => {
                    journal::Journal::create_on(name, header, key.as_ref(), |bytes| {
                        lease
                            .create(bytes)
                            .map(|f| Box::new(f) as Box<dyn journal::Storage>)
                            .map_err(|e| journal::JournalError::Io {
                                action: "create checkpoint",
                                path: name.to_path_buf(),
                                source: std::io::Error::other(e.to_string()),
                            })
                    })
                }
            }
            .map_err(|e| Fail::chain(exit::FAILURE, &e))?;
            // The file exists and holds no run record yet: a crash or a
            // failed write here leaves a checkpoint with its header only
            // (docs/design/commit-protocols.md §3, "Which execution").
            if checkflow_plan::failpoint("checkpoint-after-create") {
                return Err(Fail::new(
                    exit::FAILURE,
                    format!(
                        "failed to write checkpoint {shown}: simulated write failure (CHECKFLOW_TEST_FAILPOINT)"
                    ),
                ));
            }
            j
        }
    };
    let mut j = j;
    let mut first = vec![journal::Entry::RunStarted {
        run_id: run_id.to_string(),
    }];
    if state.is_none() {
        // The checkpoint holds the value of every variable (docs/semantics.md §5.2), not only
        // the ones that change: record them all once, when it is created.
        let all: Vec<(u32, VarValue)> = initial
            .iter()
            .enumerate()
            .map(|(i, v)| (i as u32, v.clone()))
            .collect();
        first.push(journal::Entry::Vars {
            vars: var_map(plan, all),
        });
    }
    j.append_all(first)
        .map_err(|e| Fail::chain(exit::FAILURE, &e))?;
    Ok(Some(j))
}
