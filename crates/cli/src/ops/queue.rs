//! `checkflow submit` and `checkflow runs`: queue a run in a shared store,
//! and list the runs there.

use super::emit;
use crate::args::{RunOpts, SubmitArgs};
use crate::checkpoint::store::{self as cstore, StoreTarget};
use crate::config::{gather_config_from, initial_values, read_config};
use crate::exit;
use crate::session::{Fail, load_plan};
use checkflow_store as store;
use serde_json::json;
use sha2::{Digest, Sha256};

/// sha256 of a package file's bytes, in hex: what a worker checks before it
/// runs a submitted package.
pub(crate) fn package_hash(path: &std::path::Path) -> Result<String, Fail> {
    let bytes = checkflow_files::read(path, checkflow_files::Links::Follow).map_err(|e| {
        Fail::new(
            exit::NOT_FOUND,
            format!("cannot read package {}: {e}", path.display()),
        )
    })?;
    Ok(format!("{:x}", Sha256::digest(&bytes)))
}

/// The arguments of `checkflow run` that give a submitted run the options
/// it was submitted with (the package path and the store come apart).
/// Checkpoints are on and a restart continues from them unless the options
/// say otherwise: restarting is what workers are for.
fn run_args(o: &RunOpts) -> Vec<String> {
    let mut a = Vec::new();
    for s in &o.set {
        a.extend(["--set".to_string(), s.clone()]);
    }
    match o.checkpointing {
        Some(crate::args::OnOff::Off) => a.extend(["--checkpointing".into(), "off".into()]),
        _ => a.extend(["--checkpointing".into(), "on".into()]),
    }
    let restart = match o.restart {
        Some(crate::args::Restart::Deny) => "deny",
        Some(crate::args::Restart::Force) => "force",
        _ => "if_possible",
    };
    a.extend(["--restart".into(), restart.into()]);
    for r in &o.rerun {
        a.extend(["--rerun".to_string(), r.clone()]);
    }
    let changed = match o.changed {
        crate::args::Changed::Keep => "keep",
        crate::args::Changed::Rerun => "rerun",
        crate::args::Changed::Refuse => "refuse",
    };
    a.extend(["--changed".into(), changed.into()]);
    if let Some(n) = o.max_concurrent {
        a.extend(["--max-concurrent".into(), n.to_string()]);
    }
    a
}

pub fn submit(args: &SubmitArgs) -> Result<i32, Fail> {
    let o = &args.run;
    if o.checkpoint_file.is_some() || o.checkpoint_store.is_some() {
        return Err(Fail::new(
            exit::BAD_COMMAND_LINE,
            "submit: a submitted run keeps its checkpoint in the store given by --store; leave out --checkpoint-file and --checkpoint-store",
        ));
    }
    let path = std::path::absolute(&o.package).unwrap_or_else(|_| o.package.clone());
    let plan = load_plan(&path)?;
    let hash = package_hash(&path)?;
    // The configuration goes with the run: a config file's text is kept, and
    // each worker hands it to the run on its standard input.
    let config = o.config.as_deref().map(read_config).transpose()?;
    // The key as the run will compute it (checked now: a bad key_expr fails here).
    let mut with_store = o.clone();
    with_store.checkpoint_store = Some(args.store.clone());
    let given = gather_config_from(&plan, o, config.as_deref())?;
    let run_id = checkflow_model::new_uuid();
    let start = jiff::Zoned::now().datetime();
    let initial = initial_values(&plan, &given, &run_id, start)?;
    let StoreTarget { key, .. } =
        cstore::target(&plan, &with_store, &initial, start)?.expect("a store is given");
    let r = plan.package.restart;
    let new = store::NewRun {
        queue: args.queue.clone(),
        package_path: path.display().to_string(),
        package_hash: hash,
        package_id: plan.package.id.clone(),
        key: key.clone(),
        args: run_args(o),
        config,
        restart: store::RestartPolicy {
            attempts: r.attempts,
            delay: r.delay,
            backoff: r.backoff,
        },
    };
    let mut s = store::Store::open(&args.store).map_err(|e| Fail::chain(exit::FAILURE, &e))?;
    let id = s.submit(&new).map_err(|e| Fail::chain(exit::FAILURE, &e))?;
    let mut out = String::new();
    outln!(
        out,
        "queued run {id}: {} (checkpoint key {key}, queue {})",
        path.display(),
        args.queue
    );
    emit(&out)?;
    Ok(exit::SUCCESS)
}

pub fn runs(url: &str, queue: Option<&str>, as_json: bool) -> Result<i32, Fail> {
    let mut s = store::Store::open(url).map_err(|e| Fail::chain(exit::FAILURE, &e))?;
    let rows = s.runs(queue).map_err(|e| Fail::chain(exit::FAILURE, &e))?;
    let mut out = String::new();
    if as_json {
        let v: Vec<_> = rows
            .iter()
            .map(|r| {
                json!({
                    "id": r.id, "queue": r.queue, "package": r.package_path, "key": r.key,
                    "state": r.state.as_str(), "attempts": r.attempts, "worker": r.worker,
                    "submitted_at": r.submitted_at, "started_at": r.started_at,
                    "finished_at": r.finished_at, "not_before": r.not_before,
                    "exit_code": r.exit_code, "last_error": r.last_error,
                })
            })
            .collect();
        outln!(
            out,
            "{}",
            serde_json::to_string_pretty(&v).unwrap_or_default()
        );
    } else if rows.is_empty() {
        outln!(out, "no runs in {}", checkflow_model::redact_url(url));
    } else {
        outln!(
            out,
            "{:>5}  {:<10} {:>8}  {:<24} {:<24} PACKAGE",
            "ID",
            "STATE",
            "ATTEMPTS",
            "WORKER",
            "SUBMITTED"
        );
        for r in &rows {
            outln!(
                out,
                "{:>5}  {:<10} {:>8}  {:<24} {:<24} {}",
                r.id,
                r.state.as_str(),
                r.attempts,
                r.worker.as_deref().unwrap_or("-"),
                r.submitted_at,
                r.package_path
            );
            if let Some(e) = &r.last_error {
                outln!(out, "       last error: {e}");
            }
        }
    }
    emit(&out)?;
    Ok(exit::SUCCESS)
}
