//! Opening a run's checkpoint: the effective settings and the file's path,
//! the lock, the read, the package id check, and (on a restart) what it
//! restores.

use super::CheckpointPlan;
use super::child::{child_checkpoint_path, remove_stale_child_checkpoints};
use super::prefetch::Prefetch;
use super::store::{self as cstore, StoreTarget};
use crate::args::RunOpts;
use crate::config::{ConfigValue, effective_settings};
use crate::exit;
use crate::session::{Fail, check_rerun};
use checkflow_exec::{ChangedPolicy, Recorded, Resume, resume};
use checkflow_journal as journal;
use checkflow_model::Usage;
use checkflow_plan::{Plan, VarValue};
use std::collections::BTreeMap;

/// A checkpoint opened for a run (or a plan).
pub(crate) struct Opened {
    pub checkpoint: CheckpointPlan,
    /// The checkpoint read for a restart, if any.
    pub state: Option<journal::ResumeState>,
    pub resume: Resume,
    /// Configuration in force (the stored one on a restart).
    pub config: BTreeMap<String, ConfigValue>,
    /// Variable values at start.
    pub initial: Vec<VarValue>,
    pub key: Option<journal::Key>,
    pub lock: Option<journal::Lock>,
    /// The store's lease on the key, for a run whose checkpoint is in a store.
    pub lease: Option<checkflow_store::Lease>,
    /// The frames read from the store (a restart continues after them).
    pub stored: Option<checkflow_store::Stored>,
    /// Transacted executables whose commit happened before the last run
    /// stopped, though no completion was recorded (record them now): their
    /// paths, and the variables their intent carried (now in `initial`).
    pub committed_tx: Vec<(String, Vec<u32>)>,
}

/// Opens the checkpoint of a run of `plan`: `given` is the configuration
/// given now, `initial` the variables it makes; `for_run` takes the lock
/// (`plan` does not). Warnings go to `warnings`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn open(
    plan: &Plan,
    opts: &RunOpts,
    given: BTreeMap<String, ConfigValue>,
    initial: Vec<VarValue>,
    run_id: &str,
    start_time: jiff::civil::DateTime,
    mut prefetch: Option<Prefetch>,
    for_run: bool,
    warnings: &mut Vec<String>,
) -> Result<Opened, Fail> {
    let t = crate::timing::start();
    let (usage, save) = effective_settings(
        plan.package.checkpoint.usage,
        plan.package.checkpoint.save,
        opts,
    );
    // A store replaces the file (the command line's store, the package's
    // file too): the file's name is then not worked out at all.
    let store = cstore::target(plan, opts, &initial, start_time)?;
    let path = match (&store, &opts.checkpoint_file) {
        (Some(_), _) => None,
        (None, Some(p)) => Some(p.clone()),
        (None, None) => match &plan.package.checkpoint.file {
            None => None,
            Some(f) => Some(checkflow_plan::resolve_path(
                &plan.package.dir,
                &super::setting_text(plan, f, &initial, start_time, "file_expr")?,
            )),
        },
    };
    // A child package run by a parent's task keeps one checkpoint per task,
    // iteration and parent execution (docs/design/commit-protocols.md §4).
    let path = match (&opts.child_of, path) {
        (Some(key), Some(p)) => Some(child_checkpoint_path(&p, key)),
        (_, p) => p,
    };
    if path.is_none() && store.is_none() && (save || usage != Usage::Never) {
        return Err(Fail::new(
            exit::FAILURE,
            "checkpoints are on, but no checkpoint file is set (checkpoint.file in the package, or --checkpoint-file)",
        ));
    }
    let checkpoint = CheckpointPlan {
        path: path.clone(),
        usage,
        save,
        store,
    };
    let key = journal::Key::from_env();
    if save && key.is_none() {
        let sensitive: Vec<String> = plan
            .vars
            .decls
            .iter()
            .filter(|d| d.sensitive && d.system.is_none())
            .map(|d| d.name.qualified())
            .collect();
        if !sensitive.is_empty() {
            warnings.push(format!(
                "{} is not set: the values of sensitive variable(s) {} are left out of the checkpoint, so a restart needs the configured ones given again and cannot restore one that a task changed (set {0} to keep them sealed)",
                journal::KEY_ENV,
                sensitive.join(", ")
            ));
        }
    }

    if let Some(target) = &checkpoint.store {
        let (state, lease, stored) = read_store(
            target,
            plan,
            usage,
            save,
            run_id,
            opts,
            for_run,
            key.as_ref(),
        )?;
        crate::timing::phase("settings, lease and read", t);
        return finish(
            plan, opts, checkpoint, state, given, initial, run_id, start_time, warnings, key, None,
            lease, stored,
        );
    }
    // Anything at the name counts, a link included (even one to nothing):
    // reading it then refuses it and says why, rather than starting over.
    let exists = path
        .as_ref()
        .is_some_and(|p| std::fs::symlink_metadata(p).is_ok());
    let mut lock = None;
    if for_run && (save || (usage != Usage::Never && exists)) {
        let p = path.as_ref().expect("checked above");
        lock = Some(journal::lock(p).map_err(|e| Fail::chain(exit::FAILURE, &e))?);
    }
    // Starting over writes a new checkpoint in place of the file there: only
    // if that file is a checkpoint. Anything else at that path is someone's
    // data (a mistyped path), left alone.
    if save
        && usage == Usage::Never
        && exists
        && let Some(p) = &path
        && !journal::is_checkpoint(p).map_err(|e| Fail::chain(exit::FAILURE, &e))?
    {
        return Err(Fail::new(
            exit::FAILURE,
            format!(
                "checkpoint file {} exists and is not a checkflow checkpoint; refusing to replace it with a new one (nothing ran and the file is untouched; move it, or set checkpoint.file or --checkpoint-file to another path)",
                p.display()
            ),
        ));
    }
    if let (Some(key), Some(p), Some(_)) = (&opts.child_of, &path, &lock) {
        remove_stale_child_checkpoints(p, key, warnings);
    }
    crate::timing::phase("settings and lock", t);
    let state = match (usage, &path) {
        (Usage::Never, _) | (_, None) => None,
        (Usage::IfExists, Some(p)) if !exists => {
            let _ = p;
            None
        }
        (Usage::Always, Some(p)) if !exists => {
            return Err(Fail::new(
                exit::FAILURE,
                format!(
                    "checkpoint file {} does not exist, and CheckpointUsage is always (use --restart if_possible to start without one)",
                    p.display()
                ),
            ));
        }
        (_, Some(p)) => {
            let t = crate::timing::start();
            let st = match prefetch.take().and_then(|f| f.take(p)) {
                Some(st) => st,
                None => {
                    journal::read(p, key.as_ref()).map_err(|e| Fail::chain(exit::FAILURE, &e))?
                }
            };
            crate::timing::phase("read checkpoint", t);
            Some(st)
        }
    };

    finish(
        plan, opts, checkpoint, state, given, initial, run_id, start_time, warnings, key, lock,
        None, None,
    )
}

/// What reading a store gives: the state, the lease (for a run), the frames.
type StoreRead = (
    Option<journal::ResumeState>,
    Option<checkflow_store::Lease>,
    Option<checkflow_store::Stored>,
);

/// Reads a checkpoint kept in a store: under the key's lease for a run that
/// reads or writes it, else (`plan`) without one.
#[allow(clippy::too_many_arguments)]
fn read_store(
    t: &StoreTarget,
    plan: &Plan,
    usage: Usage,
    save: bool,
    run_id: &str,
    opts: &RunOpts,
    for_run: bool,
    key: Option<&journal::Key>,
) -> Result<StoreRead, Fail> {
    let mut lease = None;
    let stored = if for_run && (save || usage != Usage::Never) {
        let mut l = cstore::take_lease(t, plan, run_id, opts.takeover, opts.queue_run)?;
        let s = if usage == Usage::Never {
            None
        } else {
            l.read().map_err(|e| Fail::chain(exit::FAILURE, &e))?
        };
        lease = Some(l);
        s
    } else if usage != Usage::Never {
        let mut s = cstore::connect(t)?;
        checkflow_store::read(&mut s, &t.key).map_err(|e| Fail::chain(exit::FAILURE, &e))?
    } else {
        None
    };
    let state = match (usage, &stored) {
        (Usage::Never, _) | (Usage::IfExists, None) => None,
        (Usage::Always, None) => {
            return Err(Fail::new(
                exit::FAILURE,
                format!(
                    "checkpoint {} does not exist, and CheckpointUsage is always (use --restart if_possible to start without one)",
                    t.shown()
                ),
            ));
        }
        (_, Some(s)) => Some(
            journal::read_bytes(std::path::Path::new(&t.shown()), &s.bytes, key)
                .map_err(|e| Fail::chain(exit::FAILURE, &e))?,
        ),
    };
    Ok((state, lease, stored))
}

/// What every checkpoint, in a file or a store, does once read: the
/// package id check and the restore, or a start from the beginning.
#[allow(clippy::too_many_arguments)]
fn finish(
    plan: &Plan,
    opts: &RunOpts,
    checkpoint: CheckpointPlan,
    state: Option<journal::ResumeState>,
    given: BTreeMap<String, ConfigValue>,
    mut initial: Vec<VarValue>,
    run_id: &str,
    start_time: jiff::civil::DateTime,
    warnings: &mut Vec<String>,
    key: Option<journal::Key>,
    lock: Option<journal::Lock>,
    lease: Option<checkflow_store::Lease>,
    stored: Option<checkflow_store::Stored>,
) -> Result<Opened, Fail> {
    let mut config = given.clone();
    let mut committed_tx = Vec::new();
    check_rerun(plan, &opts.rerun)?;
    let mut res;
    if let Some(st) = &state {
        let r = super::restore::restore(
            plan,
            opts,
            st,
            &checkpoint.shown().unwrap_or_default(),
            &given,
            checkpoint.save,
            run_id,
            start_time,
            warnings,
        )?;
        config = r.config;
        initial = r.initial;
        committed_tx = r.committed_tx;
        res = r.resume;
    } else {
        res = resume(plan, &Recorded::default(), &[], ChangedPolicy::Keep)
            .map_err(|e| Fail::new(exit::FAILURE, e.to_string()))?;
    }
    res.owner = serde_json::json!([
        plan.package.id.to_lowercase(),
        match &checkpoint.store {
            Some(t) => Some(format!(
                "store {} {}",
                checkflow_model::redact_url(&t.url),
                t.key
            )),
            None => checkpoint.path.as_ref().map(|p| std::path::absolute(p)
                .unwrap_or_else(|_| p.clone())
                .display()
                .to_string()),
        }
    ])
    .to_string();
    if let Some(key) = &opts.child_of {
        // The child's executions belong to the parent's: a child started
        // again by the same parent execution (after a crash before the parent
        // recorded it) finds what its tasks left, even without a checkpoint.
        res.checkpoint_id = Some(format!("child {key}"));
    }
    Ok(Opened {
        checkpoint,
        state,
        resume: res,
        config,
        initial,
        key,
        lock,
        lease,
        stored,
        committed_tx,
    })
}
