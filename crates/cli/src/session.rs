//! What `run` and `plan` share: load and validate the package, gather its
//! configuration, settle the checkpoint settings and path, read the checkpoint
//! and decide what a restart reuses.

use crate::args::{Changed, OnOff, Restart, RunOpts};
use crate::exit;
use checkflow_exec::{ChangedPolicy, Outcome, Recorded, Resume, TaskEnv, VarStore, resume};
use checkflow_expr::Value;
use checkflow_journal as journal;
use checkflow_model::{LoadError, Usage};
use checkflow_plan::{CheckpointFile, Plan, SystemVar, VarValue};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
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

/// One configuration value: where it came from and its text.
#[derive(Clone, Debug)]
pub struct ConfigValue {
    pub json: serde_json::Value,
    pub source: String,
}

/// The effective checkpoint settings.
#[derive(Clone, Debug)]
pub struct CheckpointPlan {
    pub path: Option<PathBuf>,
    pub usage: Usage,
    pub save: bool,
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
    pub run_id: String,
    /// Transacted executables whose commit happened before the last run
    /// stopped, though no completion was recorded (record them now): their
    /// paths, and the variables their intent carried (now in `initial`).
    pub committed_tx: Vec<(String, Vec<u32>)>,
}

fn parse_set(s: &str) -> Result<(String, String), Fail> {
    // dtexec's form: a property path, `;`, the value.
    if s.trim_start().starts_with('\\') {
        return parse_dtexec_set(s);
    }
    let (name, value) = s.split_once('=').ok_or_else(|| {
        Fail::new(
            exit::BAD_COMMAND_LINE,
            format!(
                "--set \"{s}\": expected User::Name=VALUE (or dtexec's \\Package.Variables[User::Name].Value;VALUE)"
            ),
        )
    })?;
    let name = name.trim();
    if name.is_empty() {
        return Err(Fail::new(
            exit::BAD_COMMAND_LINE,
            format!("--set \"{s}\": no variable name before '=' (expected User::Name=VALUE)"),
        ));
    }
    Ok((name.to_string(), value.to_string()))
}

/// dtexec's `/SET` value: `\Package.Variables[User::Day].Properties[Value];VALUE`
/// or the short `\Package.Variables[User::Day].Value;VALUE`. The path ends at
/// the first `;` (a path holds none); the value may hold more. As dtexec does,
/// one pair of double quotes around the value is removed (a Windows shell
/// passes them on). `=` after the path is accepted too.
fn parse_dtexec_set(s: &str) -> Result<(String, String), Fail> {
    let bad = |why: &str| {
        Fail::new(
            exit::BAD_COMMAND_LINE,
            format!(
                "--set \"{s}\": {why}; expected \\Package.Variables[User::Name].Value;VALUE or \\Package.Variables[User::Name].Properties[Value];VALUE"
            ),
        )
    };
    let sep = s
        .find([';', '='])
        .ok_or_else(|| bad("no ';' between the property path and the value"))?;
    let (path, value) = (s[..sep].trim(), &s[sep + 1..]);
    let path = path.trim_matches('"');
    let lower = path.to_ascii_lowercase();
    let Some(rest) = lower.strip_prefix("\\package.variables[") else {
        return Err(bad("only package variables can be set"));
    };
    let close = rest
        .find(']')
        .ok_or_else(|| bad("the variable's name is not closed by ']'"))?;
    let property = &rest[close + 1..];
    if property != ".value" && property != ".properties[value]" {
        return Err(bad("only the Value property can be set"));
    }
    // The name keeps its case (names are case-sensitive): cut it from `path`.
    let start = "\\package.variables[".len();
    let name = path[start..start + close].trim();
    if name.is_empty() {
        return Err(bad("no variable name between '[' and ']'"));
    }
    let value = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    Ok((name.to_string(), value.to_string()))
}

#[cfg(test)]
mod set_tests {
    use super::parse_set;

    #[test]
    fn dtexec_set_forms_name_the_variable_and_keep_the_value() {
        let ok = |s: &str| parse_set(s).map_err(|e| e.message).expect("parses");
        let day = ("User::Day".to_string(), "2026-11-21".to_string());
        assert_eq!(ok("User::Day=2026-11-21"), day);
        assert_eq!(
            ok("\\Package.Variables[User::Day].Properties[Value];2026-11-21"),
            day
        );
        assert_eq!(ok("\\Package.Variables[User::Day].Value;2026-11-21"), day);
        assert_eq!(ok("\\package.variables[User::Day].VALUE;2026-11-21"), day);
        assert_eq!(ok("\\Package.Variables[User::Day].Value=2026-11-21"), day);
        assert_eq!(
            ok("\\Package.Variables[User::Note].Value;\"a;b = c\""),
            ("User::Note".to_string(), "a;b = c".to_string())
        );
        assert_eq!(
            ok("\\Package.Variables[Day].Value;"),
            ("Day".to_string(), String::new())
        );
        for bad in [
            "\\Package.Connections[dw].Properties[ServerName];x",
            "\\Package.Variables[User::Day].Properties[Description];x",
            "\\Package.Variables[User::Day.Value;x",
            "\\Package.Variables[].Value;x",
            "\\Package.Variables[User::Day].Value",
            "User::Day",
        ] {
            let e = parse_set(bad).expect_err(bad);
            assert_eq!(e.code, crate::exit::BAD_COMMAND_LINE, "{bad}");
            assert!(e.message.contains("expected"), "{bad}: {}", e.message);
        }
    }
}

/// The configuration given now: --config, then --set, then environment bindings.
fn gather_config(plan: &Plan, opts: &RunOpts) -> Result<BTreeMap<String, ConfigValue>, Fail> {
    let mut out = BTreeMap::new();
    let qualify = |name: &str| -> Result<(u32, String), Fail> {
        let slot = plan.vars.slot(name).ok_or_else(|| {
            Fail::new(
                exit::BAD_COMMAND_LINE,
                format!("variable \"{name}\" is not declared in the package"),
            )
        })?;
        let d = plan.vars.decl(slot);
        if d.system.is_some() {
            return Err(Fail::new(
                exit::BAD_COMMAND_LINE,
                format!("variable \"{name}\" is read-only"),
            ));
        }
        Ok((slot, d.name.qualified()))
    };
    if let Some(file) = &opts.config {
        // `-`: standard input (how a parent package passes bound values).
        let text = if file.as_os_str() == "-" {
            let mut t = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut t).map(|_| t)
        } else {
            checkflow_files::read_to_string(file, checkflow_files::Links::Follow)
        }
        .map_err(|e| {
            Fail::new(
                exit::BAD_COMMAND_LINE,
                format!("cannot read config file {}: {e}", file.display()),
            )
        })?;
        let map: BTreeMap<String, serde_json::Value> =
            serde_saphyr::from_str_with_options(&text, checkflow_model::yaml_options()).map_err(
                |e| {
                    Fail::new(
                        exit::BAD_COMMAND_LINE,
                        format!(
                            "config file {}: {}",
                            file.display(),
                            checkflow_model::yaml_error_message(&e)
                        ),
                    )
                },
            )?;
        for (k, v) in map {
            let (_, q) = qualify(&k).map_err(|f| {
                Fail::new(
                    f.code,
                    format!("config file {}: {}", file.display(), f.message),
                )
            })?;
            out.insert(
                q,
                ConfigValue {
                    json: v,
                    source: format!("--config {}", file.display()),
                },
            );
        }
    }
    for s in &opts.set {
        let (k, v) = parse_set(s)?;
        let (_, q) = qualify(&k)?;
        out.insert(
            q,
            ConfigValue {
                json: serde_json::Value::String(v),
                source: "--set".into(),
            },
        );
    }
    for d in &plan.vars.decls {
        if let Some(env) = &d.env {
            let q = d.name.qualified();
            if out.contains_key(&q) {
                continue;
            }
            let v = match std::env::var(env) {
                Ok(v) => v,
                Err(std::env::VarError::NotPresent) => continue,
                // Set but unreadable is a bad value, not an absent one: the
                // package's default would silently stand in for it.
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(Fail::new(
                        exit::BAD_COMMAND_LINE,
                        format!("environment {env} value for {q}: is not valid UTF-8"),
                    ));
                }
            };
            out.insert(
                q,
                ConfigValue {
                    json: serde_json::Value::String(v),
                    source: format!("environment {env}"),
                },
            );
        }
    }
    // Check every value fits its variable now, before anything runs.
    for (k, v) in &out {
        let slot = plan.vars.slot(k).expect("qualified above");
        VarValue::from_written(&v.json, &plan.vars.decl(slot).ty).map_err(|e| {
            Fail::new(
                exit::BAD_COMMAND_LINE,
                format!("{} value for {k}: {e}", v.source),
            )
        })?;
    }
    Ok(out)
}

fn effective_settings(mut usage: Usage, mut save: bool, opts: &RunOpts) -> (Usage, bool) {
    match opts.checkpointing {
        Some(OnOff::On) => {
            usage = Usage::Always;
            save = true;
        }
        Some(OnOff::Off) => {
            usage = Usage::Never;
            save = false;
        }
        None => {}
    }
    match opts.restart {
        Some(Restart::Deny) => usage = Usage::Never,
        Some(Restart::Force) => usage = Usage::Always,
        Some(Restart::IfPossible) => usage = Usage::IfExists,
        None => {}
    }
    (usage, save)
}

fn machine_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|s| s.trim().to_string())
        })
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

fn to_exec_outcome(o: journal::Outcome) -> Outcome {
    match o {
        journal::Outcome::Success => Outcome::Success,
        journal::Outcome::Failure => Outcome::Failure,
        journal::Outcome::Completion => Outcome::Completion,
    }
}

/// A checkpoint read on a second thread while the package is validated (a
/// restart of a large package spends about as long in each). It is only a
/// guess made before the lock is taken: [`Prefetch::take`] hands it over only
/// if the file still holds exactly the bytes that were read (compared byte
/// for byte, which costs a small part of parsing them), and otherwise the
/// file is read again under the lock.
struct Prefetch {
    path: PathBuf,
    handle: std::thread::JoinHandle<Option<(journal::ResumeState, Vec<u8>)>>,
    /// Work for the thread once the checkpoint is read: the loaded package,
    /// whose task fingerprints it computes while validation runs. Sent at
    /// most once; the thread ends when it is sent or dropped.
    after: Option<std::sync::mpsc::Sender<Arc<Loaded>>>,
}

/// A loaded package and the fingerprints computed ahead for it.
struct Loaded {
    pkg: checkflow_model::LoadedPackage,
    fingerprints: checkflow_plan::FingerprintsAhead,
}

impl Prefetch {
    /// Starts reading the checkpoint the package names literally (or
    /// `--checkpoint-file`), if that file exists and may be read at all.
    fn start(def: &checkflow_model::PackageDef, dir: &Path, opts: &RunOpts) -> Option<Prefetch> {
        // The settings as validation will make them (same defaults).
        let c = def.checkpoint.as_ref();
        let usage = c.and_then(|c| c.value.usage).unwrap_or_default();
        if effective_settings(usage, false, opts).0 == Usage::Never {
            return None;
        }
        let path = match &opts.checkpoint_file {
            Some(p) => p.clone(),
            None => {
                let f = c?.value.file.as_ref()?;
                checkflow_plan::resolve_path(dir, &f.value)
            }
        };
        Prefetch::spawn(path)
    }

    /// Starts reading `path` on a second thread, if it is a file.
    fn spawn(path: PathBuf) -> Option<Prefetch> {
        // Only a file that is there, and not through a link or a FIFO (the
        // main read refuses those and says why).
        if !std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
            return None;
        }
        let p = path.clone();
        let (after, next) = std::sync::mpsc::channel::<Arc<Loaded>>();
        let handle = std::thread::Builder::new()
            .name("checkpoint-prefetch".into())
            .spawn(move || {
                // The state of exactly these bytes, kept to compare with the
                // file under the lock.
                let t = crate::timing::start();
                let bytes = checkflow_files::read(&p, checkflow_files::Links::Refuse).ok();
                let st = bytes.as_ref().and_then(|b| {
                    journal::read_bytes(&p, b, journal::Key::from_env().as_ref()).ok()
                });
                crate::timing::phase("checkpoint read ahead (second thread)", t);
                // What validation will ask for next.
                warm_up();
                // Then the task fingerprints, if the package loaded (the
                // sender is dropped otherwise).
                if let Ok(loaded) = next.recv() {
                    let t = crate::timing::start();
                    loaded.fingerprints.fill(&loaded.pkg.def);
                    crate::timing::phase("fingerprints ahead (second thread)", t);
                }
                Some((st?, bytes?))
            })
            .ok()?;
        Some(Prefetch {
            path,
            handle,
            after: Some(after),
        })
    }

    /// Hands the thread the loaded package (once): whether it took it.
    fn hand_over(&mut self, loaded: &Arc<Loaded>) -> bool {
        self.after
            .take()
            .is_some_and(|tx| tx.send(Arc::clone(loaded)).is_ok())
    }

    /// The state read ahead, if it is of `path` and the file still holds the
    /// bytes it was read from. (A run holds the lock by now, so the file
    /// cannot change after this check; `plan` takes no lock and reads a
    /// snapshot either way.)
    fn take(mut self, path: &Path) -> Option<journal::ResumeState> {
        if self.path != path {
            return None;
        }
        // No more work is coming: a thread still waiting for it ends.
        self.after = None;
        let (st, bytes) = self.handle.join().ok()??;
        holds_exactly(path, &bytes).then_some(st)
    }
}

/// Looks up, off the critical path, what a session asks the system for
/// once: the CPU count (validation's default for max_concurrent; it reads
/// cgroup files) and the local time zone (the run's start time; finding its
/// name walks the zoneinfo folder, about a millisecond here). Both are kept
/// for the process, so a later ask is free.
fn warm_up() {
    checkflow_plan::cpus();
    let _ = jiff::tz::TimeZone::try_system();
}

/// Whether the file at `path` holds exactly `expected`: read through one
/// small buffer, not into a second copy of the file (megabytes of fresh
/// memory for a large checkpoint).
fn holds_exactly(path: &Path, expected: &[u8]) -> bool {
    use std::io::Read;
    let Ok(mut f) = checkflow_files::open_read(path, checkflow_files::Links::Refuse) else {
        return false;
    };
    let mut buf = vec![0u8; 64 * 1024];
    let mut at = 0;
    loop {
        match f.read(&mut buf) {
            Ok(0) => return at == expected.len(),
            Ok(n) => {
                if expected.get(at..at + n) != Some(&buf[..n]) {
                    return false;
                }
                at += n;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
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
    let t = crate::timing::start();
    let mut warnings = Vec::new();
    let given = gather_config(&plan, opts)?;
    let (usage, save) = effective_settings(
        plan.package.checkpoint.usage,
        plan.package.checkpoint.save,
        opts,
    );
    let run_id = checkflow_model::new_uuid();
    let start_time = jiff::Zoned::now().datetime();

    // Variables as the configuration given now makes them (used for file_expr).
    let mut initial = initial_values(&plan, &given, &run_id, start_time)?;

    let path = match &opts.checkpoint_file {
        Some(p) => Some(p.clone()),
        None => match &plan.package.checkpoint.file {
            None => None,
            Some(CheckpointFile::Literal(p)) => {
                Some(checkflow_plan::resolve_path(&plan.package.dir, p))
            }
            Some(CheckpointFile::Expr(e)) => {
                let store = VarStore::new(Arc::new(plan.vars.clone()), initial.clone());
                let env = TaskEnv {
                    store: &store,
                    task_name: &plan.package.name,
                    start: start_time,
                    error: None,
                    unit: Plan::ROOT,
                };
                let v = e.eval(&env).map_err(|err| {
                    Fail::new(exit::FAILURE, format!("checkpoint file_expr failed: {err}"))
                })?;
                Some(checkflow_plan::resolve_path(
                    &plan.package.dir,
                    &v.to_string(),
                ))
            }
        },
    };
    // A child package run by a parent's task keeps one checkpoint per task,
    // iteration and parent execution (docs/design/commit-protocols.md §4).
    let path = match (&opts.child_of, path) {
        (Some(key), Some(p)) => Some(child_checkpoint_path(&p, key)),
        (_, p) => p,
    };
    if path.is_none() && (save || usage != Usage::Never) {
        return Err(Fail::new(
            exit::FAILURE,
            "checkpoints are on, but no checkpoint file is set (checkpoint.file in the package, or --checkpoint-file)",
        ));
    }
    let checkpoint = CheckpointPlan {
        path: path.clone(),
        usage,
        save,
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
        remove_stale_child_checkpoints(p, key, &mut warnings);
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
    let t = crate::timing::start();

    let mut config = given.clone();
    let mut committed_tx = Vec::new();
    check_rerun(&plan, &opts.rerun)?;
    let mut res;
    if let Some(st) = &state {
        let p = path.as_ref().expect("state implies a path");
        if st.header.package_id.to_lowercase() != plan.package.id.to_lowercase() {
            return Err(Fail::new(
                exit::FAILURE,
                format!(
                    "checkpoint {} belongs to package id {}, but {} has id {}; nothing ran and the file is untouched (delete it, or use --restart deny, to start over)",
                    p.display(),
                    st.header.package_id,
                    plan.package.file.display(),
                    plan.package.id
                ),
            ));
        }
        if st.torn_tail_bytes > 0 {
            warnings.push(format!(
                "checkpoint {}: dropped a record torn by a crash at its end ({} bytes); restarting from the records before it",
                p.display(),
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
                                p.display(),
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
                        p.display(),
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
        initial = initial_values(&plan, &config, &run_id, start_time)?;
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
                            p.display(),
                            sealed_why(v, st)
                        ),
                    ));
                }
            }
            Ok(Some(slot))
        };
        for (name, v) in &st.vars {
            let by_task = st.vars_set_by_tasks.contains(name);
            restore_var(&mut initial, &mut warnings, name, v, by_task)?;
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
            // The run that created the file; a file without a run record
            // (none was written before a crash) is named by its creation.
            checkpoint_id: Some(
                st.run_history
                    .first()
                    .map(|r| r.run_id.clone())
                    .unwrap_or_else(|| format!("{} {}", st.header.created_at, p.display())),
            ),
        };
        // A commit found made brings the variables its completion would
        // have recorded; its intent is the last record the run wrote (nothing
        // is written between an intent and its completion), so they come
        // after every other recorded value. The run records these commits
        // as completed before it starts.
        for path in settle_intents(&plan, st, &mut rec, &mut warnings)? {
            let mut slots = Vec::new();
            for (name, v) in &st.tx_intents[&path].vars {
                slots.extend(restore_var(&mut initial, &mut warnings, name, v, true)?);
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
        let r = resume(&plan, &rec, &opts.rerun, policy);
        crate::timing::phase("resume decisions", t);
        res = r.map_err(|e| {
            let code = match e {
                checkflow_exec::ResumeError::UnknownRerun(_) => exit::BAD_COMMAND_LINE,
                checkflow_exec::ResumeError::Changed(_) => exit::FAILURE,
            };
            Fail::new(code, e.to_string())
        })?;
        warnings.extend(res.warnings.iter().cloned());
    } else {
        res = resume(&plan, &Recorded::default(), &[], ChangedPolicy::Keep)
            .map_err(|e| Fail::new(exit::FAILURE, e.to_string()))?;
    }
    res.owner = serde_json::json!([
        plan.package.id.to_lowercase(),
        checkpoint.path.as_ref().map(|p| std::path::absolute(p)
            .unwrap_or_else(|_| p.clone())
            .display()
            .to_string())
    ])
    .to_string();
    if let Some(key) = &opts.child_of {
        // The child's executions belong to the parent's: a child started
        // again by the same parent execution (after a crash before the parent
        // recorded it) finds what its tasks left, even without a checkpoint.
        res.checkpoint_id = Some(format!("child {key}"));
    }
    Ok(Session {
        plan,
        checkpoint,
        state,
        resume: res,
        config,
        initial,
        warnings,
        key,
        lock,
        run_id,
        committed_tx,
    })
}

/// The checkpoint file of a child run by a parent's task (`--child-of KEY`):
/// `KEY` inserted before the extension (`child.ckpt` -> `child.KEY.ckpt`).
fn child_checkpoint_path(p: &Path, key: &str) -> PathBuf {
    let stem = p.file_stem().map(|s| s.to_string_lossy().into_owned());
    let name = match (stem, p.extension()) {
        (Some(stem), Some(ext)) => format!("{stem}.{key}.{}", ext.to_string_lossy()),
        (Some(stem), None) => format!("{stem}.{key}"),
        (None, _) => key.to_string(),
    };
    p.with_file_name(name)
}

/// Removes the checkpoints that other parent executions of the same task in
/// the same iteration left beside `mine` (a child that failed, then a parent
/// that went on without it, or a parent started over): no run will resume
/// them, since the parent execution they belong to is over. One another run
/// holds is left alone.
fn remove_stale_child_checkpoints(mine: &Path, key: &str, warnings: &mut Vec<String>) {
    let (Some(dir), Some(name)) = (mine.parent(), mine.file_name()) else {
        return;
    };
    let name = name.to_string_lossy();
    let Some((instance, _)) = key.split_once('-') else {
        return;
    };
    let Some(at) = name.find(key) else {
        return;
    };
    let (head, tail) = (&name[..at], &name[at + key.len()..]);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let other = e.file_name().to_string_lossy().into_owned();
        let Some(mid) = other
            .strip_prefix(head)
            .and_then(|r| r.strip_suffix(tail))
            .and_then(|r| r.strip_prefix(instance))
            .and_then(|r| r.strip_prefix('-'))
        else {
            continue;
        };
        if other == name || mid.is_empty() || !mid.bytes().all(|c| c.is_ascii_hexdigit()) {
            continue;
        }
        let path = dir.join(&other);
        let removed = journal::lock(&path).and_then(|held| journal::delete(&path, &held));
        if let Err(e) = removed
            && !matches!(e, journal::JournalError::Locked { .. })
        {
            warnings.push(failed_to(&e));
        }
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

/// Defaults, then configuration, then system values.
fn initial_values(
    plan: &Plan,
    config: &BTreeMap<String, ConfigValue>,
    run_id: &str,
    start: jiff::civil::DateTime,
) -> Result<Vec<VarValue>, Fail> {
    let mut values: Vec<VarValue> = plan.vars.decls.iter().map(|d| d.initial.clone()).collect();
    for (name, v) in config {
        let Some(slot) = plan.vars.slot(name) else {
            continue;
        };
        let decl = plan.vars.decl(slot);
        let val = VarValue::from_written(&v.json, &decl.ty).map_err(|e| {
            Fail::new(
                exit::BAD_COMMAND_LINE,
                format!("{} value for {name}: {e}", v.source),
            )
        })?;
        values[slot as usize] = val;
    }
    let set = |values: &mut Vec<VarValue>, sv: SystemVar, v: Value| {
        values[plan.vars.system_slot(sv) as usize] = VarValue::Scalar(v)
    };
    set(&mut values, SystemVar::StartTime, Value::DbTimestamp(start));
    set(
        &mut values,
        SystemVar::ExecutionInstanceGuid,
        Value::WStr(format!("{{{}}}", run_id.to_uppercase())),
    );
    set(
        &mut values,
        SystemVar::MachineName,
        Value::WStr(machine_name()),
    );
    Ok(values)
}

#[cfg(test)]
mod prefetch_tests {
    use super::*;

    fn completed(path: &str) -> journal::Entry {
        journal::Entry::Completed {
            path: path.into(),
            outcome: journal::Outcome::Success,
            fingerprint: "f".into(),
            duration_ms: 1,
            vars: BTreeMap::new(),
        }
    }

    /// A new checkpoint at `path` recording `task`, and the lock it is held by.
    fn journal_with(path: &Path, task: &str) -> (journal::Lock, journal::Journal) {
        let lock = journal::lock(path).expect("lock");
        let header = journal::NewHeader {
            package_id: "id".into(),
            package_name: "p".into(),
            package_path: "p.yaml".into(),
            config: BTreeMap::new(),
        };
        let mut j = journal::Journal::create(path, header, None, &lock).expect("create");
        j.append_all(vec![completed(task)]).expect("append");
        (lock, j)
    }

    /// Waits until the thread has read the file (it is given no package, so
    /// it ends there).
    fn wait(p: &mut Prefetch) {
        p.after = None;
        while !p.handle.is_finished() {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    #[test]
    fn a_prefetched_checkpoint_is_used_only_if_the_file_is_unchanged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.ckpt");
        let (_lock, mut j) = journal_with(&path, "A");

        // Unchanged: handed over, with what the file holds.
        let pf = Prefetch::spawn(path.clone()).expect("a file to read");
        let st = pf.take(&path).expect("unchanged, so used");
        assert!(st.completed.contains_key("A"));

        // Another path: not used.
        let pf = Prefetch::spawn(path.clone()).expect("a file to read");
        assert!(pf.take(&dir.path().join("other.ckpt")).is_none());

        // Appended to after it was read: not used (the caller reads again).
        let mut pf = Prefetch::spawn(path.clone()).expect("a file to read");
        wait(&mut pf);
        j.append_all(vec![completed("B")]).expect("append");
        assert!(pf.take(&path).is_none());

        // Not a journal: nothing to hand over; the caller's read reports it.
        std::fs::write(dir.path().join("junk.ckpt"), b"junk").expect("write");
        let pf = Prefetch::spawn(dir.path().join("junk.ckpt")).expect("a file");
        assert!(pf.take(&dir.path().join("junk.ckpt")).is_none());

        // No file: no thread.
        assert!(Prefetch::spawn(dir.path().join("none.ckpt")).is_none());
    }

    #[test]
    fn holds_exactly_compares_every_byte_and_the_length() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        // Larger than the comparison buffer, so more than one read.
        let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &bytes).expect("write");
        assert!(holds_exactly(&path, &bytes));
        assert!(
            !holds_exactly(&path, &bytes[..bytes.len() - 1]),
            "file longer"
        );
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(!holds_exactly(&path, &longer), "file shorter");
        let mut flipped = bytes.clone();
        flipped[150_000] ^= 1;
        assert!(!holds_exactly(&path, &flipped), "one byte differs");
        assert!(!holds_exactly(&dir.path().join("none"), &bytes), "no file");
    }

    /// (inode, length, mtime) would not identify the contents: the mtime can
    /// be set back (`cp -p`, `touch -r`, a restore), or not move on a file
    /// system with coarse times. The bytes are compared instead.
    #[test]
    fn a_prefetched_checkpoint_is_not_used_after_an_in_place_rewrite_that_keeps_its_mtime() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.ckpt");
        let other = dir.path().join("y.ckpt");
        journal_with(&path, "A");
        journal_with(&other, "B");
        let new_bytes = std::fs::read(&other).expect("read");
        assert_eq!(
            std::fs::metadata(&path).expect("stat").len(),
            new_bytes.len() as u64,
            "same length, different records"
        );

        let mut pf = Prefetch::spawn(path.clone()).expect("a file to read");
        wait(&mut pf);
        let mtime = std::fs::metadata(&path)
            .expect("stat")
            .modified()
            .expect("mtime");
        std::fs::write(&path, &new_bytes).expect("rewrite in place");
        std::fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(mtime))
            .expect("set the mtime back");

        let used = pf.take(&path);
        assert!(
            used.as_ref()
                .is_none_or(|st| st.completed.contains_key("B")),
            "the prefetched state of the old contents was used: {:?}",
            used.map(|st| st.completed.keys().cloned().collect::<Vec<_>>())
        );
    }
}

/// Every `--rerun` path names an executable of the package; a misspelt one
/// is a bad command line, with the closest path when one is close.
fn check_rerun(plan: &Plan, rerun: &[String]) -> Result<(), Fail> {
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
