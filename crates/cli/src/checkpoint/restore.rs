//! A restart: what the checkpoint read holds becomes the run's
//! configuration, variables and restore decisions; transaction intents are
//! settled against the databases first.

use crate::args::{Changed, RunOpts};
use crate::config::{ConfigValue, initial_values};
use crate::exit;
use crate::session::Fail;
use checkflow_exec::{ChangedPolicy, Outcome, Recorded, Resume, resume};
use checkflow_journal as journal;
use checkflow_plan::{Plan, VarValue};
use std::collections::BTreeMap;

/// What a restart starts with.
pub(crate) struct Restart {
    /// The configuration in force: the one the first run started with.
    pub config: BTreeMap<String, ConfigValue>,
    /// Variable values at start, as recorded.
    pub initial: Vec<VarValue>,
    /// Transacted executables found committed: their paths, and the slots
    /// of the variables their intents carried.
    pub committed_tx: Vec<(String, Vec<u32>)>,
    /// What the run restores.
    pub resume: Resume,
}

/// Turns the checkpoint read, `st` (named `name` in messages), into the run's
/// starting point; `given` is the configuration given now, `saves` whether
/// this run appends to the file (its run record first, before anything runs).
#[allow(clippy::too_many_arguments)]
pub(crate) fn restore(
    plan: &Plan,
    opts: &RunOpts,
    st: &journal::ResumeState,
    name: &str,
    given: &BTreeMap<String, ConfigValue>,
    saves: bool,
    run_id: &str,
    start_time: jiff::civil::DateTime,
    warnings: &mut Vec<String>,
) -> Result<Restart, Fail> {
    let mut config;
    let mut initial;
    let mut committed_tx = Vec::new();
    let t = crate::timing::start();
    if st.header.package_id.to_lowercase() != plan.package.id.to_lowercase() {
        return Err(Fail::new(
            exit::FAILURE,
            format!(
                "checkpoint {} belongs to package id {}, but {} has id {}; nothing ran and the file is untouched (delete it, or use --restart deny, to start over)",
                name,
                st.header.package_id,
                plan.package.file.display(),
                plan.package.id
            ),
        ));
    }
    if st.torn_tail_bytes > 0 {
        warnings.push(format!(
            "checkpoint {}: dropped a record torn by a crash at its end ({} bytes); restarting from the records before it",
            name,
            st.torn_tail_bytes
        ));
    }
    // The configuration the first run started with is the one in force.
    config = BTreeMap::new();
    for (name, v) in &st.header.config {
        match v {
            journal::Restored::Value(j) => {
                config.insert(
                    name.clone(),
                    ConfigValue {
                        json: j.clone(),
                        source: "checkpoint".into(),
                    },
                );
            }
            journal::Restored::Sealed | journal::Restored::Omitted => match given.get(name) {
                Some(g) => {
                    warnings.push(format!("sensitive configuration {name} is not readable in the checkpoint ({}); using the value given now", sealed_why(v, st)));
                    config.insert(name.clone(), g.clone());
                }
                None => {
                    return Err(Fail::new(
                        exit::FAILURE,
                        format!(
                            "checkpoint {} holds sensitive configuration {name} that cannot be read ({}); give it again (--set {name}=VALUE, --config, or its environment variable) or set CHECKFLOW_KEY",
                            name,
                            sealed_why(v, st)
                        ),
                    ));
                }
            },
        }
    }
    let mut ignored: Vec<String> = given
        .iter()
        .filter(|(k, g)| {
            st.header
                .config
                .get(*k)
                .is_none_or(|s| matches!(s, journal::Restored::Value(j) if *j != g.json))
        })
        .map(|(k, g)| format!("{k} ({})", g.source))
        .collect();
    ignored.sort();
    if opts.child_of.is_some() {
        // A child's checkpoint belongs to the values its parent bound:
        // resuming it with others would run the rest of another load.
        let mut differ: Vec<String> = given
            .iter()
            .filter(|(_, g)| g.source.starts_with("--config"))
            .filter_map(|(k, g)| {
                let then = match st.header.config.get(k) {
                    Some(journal::Restored::Value(j)) if *j == g.json => return None,
                    Some(journal::Restored::Value(j)) => j.to_string(),
                    Some(_) => "a sealed value".to_string(),
                    None => "no value".to_string(),
                };
                Some(format!("{k} ({then} then, {} now)", g.json))
            })
            .collect();
        differ.sort();
        if !differ.is_empty() {
            return Err(Fail::new(
                exit::FAILURE,
                format!(
                    "resume child checkpoint {}: it was started with other bound values: {}; nothing ran and the file is untouched (delete it to start the child over)",
                    name,
                    differ.join(", ")
                ),
            ));
        }
    }
    if !ignored.is_empty() {
        warnings.push(format!(
            "restarting from a checkpoint: configuration given now is ignored, the run uses the values stored in the checkpoint: {}",
            ignored.join(", ")
        ));
    }
    initial = initial_values(plan, &config, run_id, start_time)?;
    // One recorded value into `initial`; `None` if the variable is gone
    // or is a system one.
    let restore_var = |initial: &mut Vec<VarValue>,
                       warnings: &mut Vec<String>,
                       name: &str,
                       v: &journal::Restored,
                       set_by_task: bool|
     -> Result<Option<u32>, Fail> {
        let Some(slot) = plan.vars.slot(name) else {
            return Ok(None);
        };
        let decl = plan.vars.decl(slot);
        if decl.system.is_some() {
            return Ok(None);
        }
        match v {
            journal::Restored::Value(j) => match VarValue::from_json(j, &decl.ty) {
                Ok(val) => initial[slot as usize] = val,
                Err(e) => warnings.push(format!("checkpoint value of {name} does not fit its type now ({e}); using the package's")),
            },
            // Left out or sealed: if no task changed it, it still holds
            // what the first run started with (the package's value, or
            // the configuration settled above), so the restart has it.
            _ if !set_by_task => {}
            _ => {
                return Err(Fail::new(
                    exit::FAILURE,
                    format!(
                        "checkpoint {} holds sensitive variable {name}, which a task changed and which cannot be read ({}); set CHECKFLOW_KEY to the key the checkpoint was written with, or start over with --restart deny",
                        name,
                        sealed_why(v, st)
                    ),
                ));
            }
        }
        Ok(Some(slot))
    };
    for (name, v) in &st.vars {
        let by_task = st.vars_set_by_tasks.contains(name);
        restore_var(&mut initial, warnings, name, v, by_task)?;
    }
    let mut rec = Recorded {
        completed: st
            .completed
            .iter()
            .map(|(k, c)| {
                (
                    k.clone(),
                    (to_exec_outcome(c.outcome), c.fingerprint.clone()),
                )
            })
            .collect(),
        iterations: st.iterations.clone(),
        record_counts: st.record_counts.clone(),
        checkpoint_id: Some(checkpoint_identity(st, name, saves, run_id)),
    };
    // A commit found made brings the variables its completion would
    // have recorded; its intent is the last record the run wrote (nothing
    // is written between an intent and its completion), so they come
    // after every other recorded value. The run records these commits
    // as completed before it starts.
    for path in settle_intents(plan, st, &mut rec, warnings)? {
        let mut slots = Vec::new();
        for (name, v) in &st.tx_intents[&path].vars {
            slots.extend(restore_var(&mut initial, warnings, name, v, true)?);
        }
        *rec.record_counts.entry(path.clone()).or_default() += 1;
        committed_tx.push((path, slots));
    }
    crate::timing::phase("state restored", t);
    let policy = match opts.changed {
        Changed::Keep => ChangedPolicy::Keep,
        Changed::Rerun => ChangedPolicy::Rerun,
        Changed::Refuse => ChangedPolicy::Refuse,
    };
    let t = crate::timing::start();
    let r = resume(plan, &rec, &opts.rerun, policy);
    crate::timing::phase("resume decisions", t);
    let res = r.map_err(|e| {
        let code = match e {
            checkflow_exec::ResumeError::UnknownRerun(_) => exit::BAD_COMMAND_LINE,
            checkflow_exec::ResumeError::Changed(_) => exit::FAILURE,
        };
        Fail::new(code, e.to_string())
    })?;
    warnings.extend(res.warnings.iter().cloned());
    Ok(Restart {
        config,
        initial,
        committed_tx,
        resume: res,
    })
}

/// The checkpoint's identity, which every execution of a task on it carries
/// (`checkflow_plan::Execution`): the id of the file's first run record. It
/// must be the same in every run that restarts the file, since a task that
/// ran and was not recorded runs again as the same execution only if it is.
///
/// A file without a run record holds its header only: the run that created
/// it stopped (a crash, a failed write) before its first record, so nothing
/// ran on it. A run that saves writes its own run record there before
/// anything runs, and that record is the file's first from then on: it takes
/// its own id, the one every later restart reads. Naming the file by its
/// creation instead, as before, gave the tasks of that run another identity
/// than every later restart gives them: a child package it ran got another
/// key, so the next restart removed the child's finished checkpoint as stale
/// and ran the child again whole (docs/design/commit-protocols.md §4). A run
/// that does not save writes no record and names the file by its creation,
/// as every such run does.
fn checkpoint_identity(st: &journal::ResumeState, name: &str, saves: bool, run_id: &str) -> String {
    match st.run_history.first() {
        Some(first) => first.run_id.clone(),
        None if saves => run_id.to_string(),
        None => format!("{} {name}", st.header.created_at),
    }
}

/// For each transacted executable whose intent to commit was recorded but not
/// its completion, asks its connections whether the commit's marker is there.
/// If it is on all of them, the executable is treated as completed (never
/// repeated); if none can tell, the run stops before anything runs.
fn settle_intents(
    plan: &Plan,
    st: &journal::ResumeState,
    rec: &mut Recorded,
    warnings: &mut Vec<String>,
) -> Result<Vec<String>, Fail> {
    let registry = crate::registry();
    let mut committed = Vec::new();
    for (path, intent) in &st.tx_intents {
        let Some(id) = plan.find(path) else { continue };
        if rec.completed.contains_key(path) {
            continue;
        }
        let mut seen = Vec::new();
        for c in &intent.connections {
            let Some(def) = plan.connections.get(c) else {
                warnings.push(format!(
                    "\"{path}\": connection \"{c}\" of its last transaction is gone; it runs again"
                ));
                seen.push(false);
                continue;
            };
            let Some(probe) = registry.probe(&def.kind.value) else {
                seen.push(false);
                continue;
            };
            let yes = probe.committed(def, &plan.package.dir, &intent.marker).map_err(|e| {
                Fail::new(
                    exit::FAILURE,
                    format!("cannot tell whether the transaction of \"{path}\" committed on connection \"{c}\" before the last run stopped: {e}; nothing ran"),
                )
            })?;
            seen.push(yes);
        }
        if !seen.is_empty() && seen.iter().all(|s| *s) {
            rec.completed.insert(
                path.clone(),
                (Outcome::Success, plan.node(id).fingerprint.clone()),
            );
            committed.push(path.clone());
            warnings.push(format!("the transaction of \"{path}\" committed before the last run stopped; it is not repeated"));
        } else if seen.iter().any(|s| *s) {
            warnings.push(format!(
                "the transaction of \"{path}\" committed on some of its connections only before the last run stopped; it runs again"
            ));
        }
    }
    Ok(committed)
}

fn sealed_why(v: &journal::Restored, st: &journal::ResumeState) -> &'static str {
    match v {
        journal::Restored::Omitted => "it was left out: no CHECKFLOW_KEY when it was written",
        _ if st.key_mismatch => "CHECKFLOW_KEY does not match the key it was sealed with",
        _ => "it is sealed and CHECKFLOW_KEY is not set",
    }
}

fn to_exec_outcome(o: journal::RecordedOutcome) -> Outcome {
    match o {
        journal::RecordedOutcome::Success => Outcome::Success,
        journal::RecordedOutcome::Failure => Outcome::Failure,
        journal::RecordedOutcome::Completion => Outcome::Completion,
    }
}
