//! A checkpoint kept in a shared store (a PostgreSQL database) instead of a
//! file: where it is (the store's URL and the key), and opening it for a
//! run under a lease or for reading only.
//!
//! The store holds the same frames a file would, so everything after the
//! read — the package id check, the restore, the records — is the file's
//! code. What differs: the lease replaces the file lock, and every write is
//! fenced by it (docs/design/store.md).

use crate::args::RunOpts;
use crate::exit;
use crate::session::Fail;
use checkflow_plan::{Plan, VarValue};
use checkflow_store as store;
use std::time::Duration;

/// The variable a worker hands its store's URL to a run in.
pub(crate) const WORKER_STORE_ENV: &str = "CHECKFLOW_WORKER_STORE";

/// The URL a worker handed this run, taken out of the environment at start
/// ([`take_worker_store`]) so that the run's tasks, which inherit its
/// environment, never see it (it may hold a password).
static WORKER_STORE: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();

/// Takes `CHECKFLOW_WORKER_STORE` out of the environment. Called first thing
/// in `main`, before any thread starts.
pub(crate) fn take_worker_store() {
    let url = std::env::var(WORKER_STORE_ENV).ok();
    if url.is_some() {
        // SAFETY: called at the start of `main`, while the process has one
        // thread: nothing reads the environment concurrently.
        unsafe { std::env::remove_var(WORKER_STORE_ENV) };
    }
    let _ = WORKER_STORE.set(url);
}

/// Where a checkpoint lives in a store.
#[derive(Clone, Debug)]
pub struct StoreTarget {
    pub url: String,
    pub key: String,
    pub lease: Duration,
}

impl StoreTarget {
    /// The checkpoint as messages name it: `KEY in store URL` (no password).
    pub fn shown(&self) -> String {
        format!(
            "{} in store {}",
            self.key,
            checkflow_model::redact_url(&self.url)
        )
    }
}

/// The store the run's checkpoint lives in, if any: `--checkpoint-store`,
/// else the package's `checkpoint.store` connection.
pub(crate) fn target(
    plan: &Plan,
    opts: &RunOpts,
    initial: &[VarValue],
    start_time: jiff::civil::DateTime,
) -> Result<Option<StoreTarget>, Fail> {
    let settings = &plan.package.checkpoint;
    // A worker's run gets the store in the environment (see `--queue-run`).
    let worker_store = opts
        .queue_run
        .and_then(|_| WORKER_STORE.get().cloned().flatten());
    let url = match (
        opts.checkpoint_store.as_ref().or(worker_store.as_ref()),
        &settings.store,
    ) {
        (Some(u), _) => u.clone(),
        (None, Some(name)) => {
            let def = plan.connections.get(name).ok_or_else(|| {
                Fail::new(
                    exit::FAILURE,
                    format!("checkpoint store: no connection named \"{name}\""),
                )
            })?;
            checkflow_tasks::db::Connection::from_def(name, def, &plan.package.dir)
                .and_then(|c| c.pg_url().map_err(|e| e.message))
                .map_err(|e| Fail::new(exit::FAILURE, format!("checkpoint store: {e}")))?
        }
        (None, None) => return Ok(None),
    };
    let key = match (&opts.checkpoint_key, &settings.key) {
        (Some(k), _) => k.clone(),
        (None, Some(k)) => super::setting_text(plan, k, initial, start_time, "key_expr")?,
        (None, None) => plan.package.id.to_lowercase(),
    };
    if key.trim().is_empty() {
        return Err(Fail::new(
            exit::FAILURE,
            "checkpoint key: empty (give a key, or leave it out to use the package id)",
        ));
    }
    // A child package run by a parent's task keeps a checkpoint of its own
    // per task, iteration and parent execution (docs/design/commit-protocols.md §4).
    let key = match &opts.child_of {
        Some(child) => format!("{key}/child/{child}"),
        None => key,
    };
    Ok(Some(StoreTarget {
        url,
        key,
        lease: settings.lease.unwrap_or(store::DEFAULT_LEASE),
    }))
}

/// Connects to the store (a clear error, exit 1, when it cannot).
pub(crate) fn connect(t: &StoreTarget) -> Result<store::Store, Fail> {
    store::Store::open(&t.url).map_err(|e| Fail::chain(exit::FAILURE, &e))
}

/// Takes the lease on the target's key for a run: fails at once naming
/// the holder, or with `--takeover` waits for its lease to expire.
pub(crate) fn take_lease(
    t: &StoreTarget,
    plan: &Plan,
    run_id: &str,
    takeover: bool,
    queue_run: Option<store::Claim>,
) -> Result<store::Lease, Fail> {
    let s = connect(t)?;
    let spec = store::LeaseSpec {
        key: t.key.clone(),
        package_id: plan.package.id.clone(),
        run_id: run_id.to_string(),
        duration: t.lease,
    };
    let stop = crate::ops::run::interrupt_flag();
    let mut lease = store::Lease::acquire(s, spec, takeover, Some(&stop), |h| {
        eprintln!(
            "checkflow: checkpoint {} is held by {h}; waiting for that lease to expire (--takeover)",
            t.shown()
        );
    })
    .map_err(|e| {
        let mut f = Fail::chain(exit::FAILURE, &e);
        if matches!(e, store::StoreError::Held { .. }) {
            f.message.push_str(
                "; nothing ran (wait for it to finish, or use --takeover to take the run over once its lease expires)",
            );
        }
        f
    })?;
    // A worker's run goes ahead only under the run's current claim: one
    // whose claim another worker took over (while this one waited for the
    // lease) leaves the run to that worker's.
    if let Some(claim) = queue_run
        && !lease
            .claim_is_current(claim)
            .map_err(|e| Fail::chain(exit::FAILURE, &e))?
    {
        lease.release();
        return Err(Fail::new(
            exit::FAILURE,
            format!(
                "run {} of the queue was claimed again by another worker; this copy stops before running anything",
                claim.id
            ),
        ));
    }
    Ok(lease)
}
