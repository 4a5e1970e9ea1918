//! What `run` and `plan` share: load and validate the package, gather its
//! configuration, settle the checkpoint settings and path, read the checkpoint
//! and decide what a restart reuses.

use crate::args::RunOpts;
use crate::checkpoint::CheckpointPlan;
use crate::checkpoint::prefetch::{Loaded, Prefetch, warm_up};
use crate::config::{ConfigValue, gather_config, initial_values};
use crate::exit;
use checkflow_exec::Resume;
use checkflow_journal as journal;
use checkflow_model::LoadError;
use checkflow_plan::{Plan, VarValue};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// An error that ends the command, with its exit code.
#[derive(Debug)]
pub struct Fail {
    pub code: i32,
    pub message: String,
}

impl Fail {
    pub fn new(code: i32, message: impl Into<String>) -> Fail {
        Fail {
            code,
            message: message.into(),
        }
    }

    /// A failure from an error, printed with its whole `source()` chain.
    pub fn chain(code: i32, e: &dyn std::error::Error) -> Fail {
        Fail::new(code, failed_to(e))
    }
}

/// "failed to <error>: <cause>: <cause>..." — the error and every source.
pub fn failed_to(e: &dyn std::error::Error) -> String {
    let mut out = format!("failed to {e}");
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = s.source();
    }
    out
}

/// Loads and validates a package (exit 4 for a missing file, 5 for problems).
pub fn load_plan(path: &Path) -> Result<Plan, Fail> {
    validate_package(&load_package(path, &mut |_, _| {})?.0)
}

/// Reads and parses a package file (exit 4 for a missing file, 5 for bad
/// YAML), through the package cache. `early` gets the package-level fields
/// and folder as soon as they are known. With the package come its task
/// fingerprints when the cache kept them.
fn load_package(
    path: &Path,
    early: &mut dyn FnMut(&checkflow_model::PackageDef, &Path),
) -> Result<
    (
        checkflow_model::LoadedPackage,
        Option<crate::pkgcache::Fingerprints>,
    ),
    Fail,
> {
    let t = crate::timing::start();
    let cache = crate::pkgcache::PackageCache::from_env();
    let store = cache
        .as_ref()
        .map(|c| c as &dyn checkflow_model::ParsedStore);
    let pkg = checkflow_model::load_with(path, store, early).map_err(|e| match &e {
        LoadError::Io { .. } => Fail::new(exit::NOT_FOUND, e.to_string()),
        LoadError::Syntax { snippet, .. } => {
            let mut m = e.to_string();
            if !snippet.is_empty() {
                m.push('\n');
                m.push_str(snippet);
            }
            Fail::new(exit::INVALID, m)
        }
    })?;
    crate::timing::phase("load", t);
    let fingerprints = cache.and_then(|c| c.take_fingerprints());
    Ok((pkg, fingerprints))
}

/// Validates a parsed package (exit 5 for problems).
fn validate_package(pkg: &checkflow_model::LoadedPackage) -> Result<Plan, Fail> {
    validate_package_with(pkg, None)
}

/// [`validate_package`] with task fingerprints that another thread computes
/// meanwhile.
fn validate_package_with(
    pkg: &checkflow_model::LoadedPackage,
    ahead: Option<&checkflow_plan::FingerprintsAhead>,
) -> Result<Plan, Fail> {
    let t = crate::timing::start();
    let registry = crate::registry();
    let plan = checkflow_plan::validate_with(pkg, &registry, ahead)
        .map_err(|e| Fail::new(exit::INVALID, e.to_string()));
    crate::timing::phase("validate", t);
    plan
}

/// Everything ready for a run (or a plan).
pub struct Session {
    pub plan: Plan,
    pub checkpoint: CheckpointPlan,
    /// The checkpoint read for a restart, if any.
    pub state: Option<journal::ResumeState>,
    pub resume: Resume,
    /// Configuration in force (the stored one on a restart).
    pub config: BTreeMap<String, ConfigValue>,
    /// Variable values at start.
    pub initial: Vec<VarValue>,
    pub warnings: Vec<String>,
    pub key: Option<journal::Key>,
    pub lock: Option<journal::Lock>,
    /// The store's lease, when the checkpoint lives in a store.
    pub lease: Option<checkflow_store::Lease>,
    /// The frames a restart read from the store.
    pub stored: Option<checkflow_store::Stored>,
    pub run_id: String,
    /// Transacted executables whose commit happened before the last run
    /// stopped, though no completion was recorded (record them now): their
    /// paths, and the variables their intent carried (now in `initial`).
    pub committed_tx: Vec<(String, Vec<u32>)>,
}

/// Opens a session. `for_run` takes the checkpoint lock; `plan` does not.
pub fn open(opts: &RunOpts, for_run: bool) -> Result<Session, Fail> {
    // The checkpoint is read on a second thread as soon as the package says
    // where it is (with a package cache hit, before its tasks are decoded).
    let mut prefetch = None;
    let mut warming = false;
    let (pkg, kept) = load_package(&opts.package, &mut |def, dir| {
        if prefetch.is_none() && !warming {
            prefetch = Prefetch::start(def, dir, opts);
            if prefetch.is_none() {
                // No read-ahead thread to look things up meanwhile: a short one.
                warming = std::thread::Builder::new()
                    .name("warm-up".into())
                    .spawn(warm_up)
                    .is_ok();
            }
        }
    })?;
    let kept = kept.and_then(|k| checkflow_plan::FingerprintsAhead::from_kept(&pkg.def, k));
    let is_kept = kept.is_some();
    let fingerprints = kept.unwrap_or_else(|| checkflow_plan::FingerprintsAhead::new(&pkg.def));
    let pkg = Arc::new(Loaded { pkg, fingerprints });
    // Validation takes the fingerprints kept with the package, or those the
    // read-ahead thread computes meanwhile; else it hashes every task itself.
    let handed = prefetch.as_mut().is_some_and(|p| p.hand_over(&pkg));
    let ahead = (handed || is_kept).then_some(&pkg.fingerprints);
    let plan = validate_package_with(&pkg.pkg, ahead)?;
    // Freeing every task definition takes a millisecond or two for a large
    // package; a restart should not wait for it.
    if plan.nodes.len() > 1000 {
        let _ = std::thread::Builder::new()
            .name("free-package".into())
            .spawn(move || drop(pkg));
    } else {
        drop(pkg);
    }
    let mut warnings = Vec::new();
    let given = gather_config(&plan, opts)?;
    let run_id = checkflow_model::new_uuid();
    let start_time = jiff::Zoned::now().datetime();

    // Variables as the configuration given now makes them (used for file_expr).
    let initial = initial_values(&plan, &given, &run_id, start_time)?;
    let o = crate::checkpoint::open::open(
        &plan,
        opts,
        given,
        initial,
        &run_id,
        start_time,
        prefetch,
        for_run,
        &mut warnings,
    )?;
    Ok(Session {
        plan,
        checkpoint: o.checkpoint,
        state: o.state,
        resume: o.resume,
        config: o.config,
        initial: o.initial,
        warnings,
        key: o.key,
        lock: o.lock,
        lease: o.lease,
        stored: o.stored,
        run_id,
        committed_tx: o.committed_tx,
    })
}

/// Every `--rerun` path names an executable of the package; a misspelt one
/// is a bad command line, with the closest path when one is close.
pub(crate) fn check_rerun(plan: &Plan, rerun: &[String]) -> Result<(), Fail> {
    for r in rerun {
        if plan.find(r).is_none() {
            let paths = plan.nodes.iter().skip(1).map(|n| n.path.as_str());
            let hint = match checkflow_model::closest(r, paths) {
                Some(p) => format!(" (did you mean \"{p}\"?)"),
                None => String::new(),
            };
            return Err(Fail::new(
                exit::BAD_COMMAND_LINE,
                format!("--rerun \"{r}\": the package has no executable with that path{hint}"),
            ));
        }
    }
    Ok(())
}
