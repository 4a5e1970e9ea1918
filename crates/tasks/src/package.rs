//! The Execute Package task: runs a child package file as a separate
//! `checkflow run` process of the same binary.
//!
//! - `path` is relative to the parent package's folder; the file must exist
//!   when the parent is validated (unless a property expression sets `path`).
//! - `bind: { Var: EXPR }` evaluates each expression in the parent when the
//!   task runs and passes the values on the child's standard input
//!   (`--config -`, a JSON map), not as `--set` arguments, which every user of
//!   the machine can read in the process list, and not in a file, which a
//!   killed parent would leave behind. The child checks the names when it
//!   loads: an undeclared one fails the task.
//! - The child keeps its own checkpoint settings (its own restart
//!   behaviour), but not one file for every run: the parent passes
//!   `--child-of INSTANCE-EXECUTION` (hashes of the task's path and loop
//!   items, and of this execution of the task, `checkflow_plan::Execution`),
//!   and the child's file becomes `child.INSTANCE-EXECUTION.ckpt`. So an
//!   iteration never resumes another's checkpoint, and only a restart of the
//!   same parent execution resumes one. A child checkpoint started with other
//!   bound values is refused, naming the file (it never runs on with values
//!   it was not given), and files left by earlier executions of the same task
//!   and iteration are removed when the child starts. The child's tasks
//!   count as part of the parent's execution, so a child rerun after a crash
//!   that came before the parent recorded it finds what its bulk loads left.
//!   See docs/design/commit-protocols.md, section 4.
//! - The child runs with `--log json`; its events are forwarded into the
//!   parent's log, each line prefixed with `[child name]`. Its exit code is
//!   the task's result: 0 is success, anything else a failure whose message
//!   carries the errors from the child's summary.
//! - The child runs in its own process group. When the task is cancelled
//!   (timeout, Ctrl-C, the package stopping) the child is first asked to stop
//!   (SIGTERM, so it cancels its own tasks and keeps its checkpoint), and its
//!   group is killed if it has not ended within [`GRACE`]. If the parent is
//!   killed, the child gets SIGTERM (Linux); the child run and everything it
//!   starts carry this task's tag, so the parent's restart ends what is left
//!   of them before it runs the task again (`leftovers`).
//!
//! A package that runs itself, directly or through others, is refused when the
//! loop comes round (the chain of running packages is passed down in
//! [`CHAIN_ENV`]), and nesting stops at [`MAX_DEPTH`].

use crate::process::signal_note;
use checkflow_expr::{Compiled, VarRef};
use checkflow_model::TaskDef;
use checkflow_plan::{Action, BuildCx, LogLevel, RunCx, TaskError, TaskType, resolve_path};
use serde_json::Value as Json;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long a cancelled child gets to stop on its own before its process
/// group is killed.
pub(crate) const GRACE: Duration = Duration::from_secs(5);
/// The environment variable that lists the child packages running above this
/// one (canonical paths, separated as in `PATH`).
pub(crate) const CHAIN_ENV: &str = "CHECKFLOW_PACKAGE_CHAIN";
/// The deepest nesting of child packages.
pub(crate) const MAX_DEPTH: usize = 16;
/// The most stderr lines of the child kept for the failure message.
const STDERR_KEPT: usize = 20;

pub(crate) struct PackageType;

impl TaskType for PackageType {
    fn name(&self) -> &'static str {
        "package"
    }

    fn fields(&self) -> &'static [&'static str] {
        &["path", "bind"]
    }

    fn build(&self, def: &TaskDef, cx: &mut BuildCx<'_>) -> Option<Arc<dyn Action>> {
        let Some(path) = &def.child().path else {
            cx.missing("path", "package");
            return None;
        };
        // With a property expression on `path`, the written one may not be
        // the one that runs: the child is checked when the task starts.
        let path_by_expr = def.set_by_expression("path");
        let full = resolve_path(cx.package_dir(), path);
        if !path_by_expr && !full.is_file() {
            cx.error(format!(
                "child package {} does not exist (`path` is relative to the package folder, {})",
                full.display(),
                cx.package_dir().display()
            ));
        }
        let mut binds = Vec::new();
        let mut ok = true;
        for (var, src) in def.child().bind.iter().flatten() {
            let r = VarRef::parse(var);
            if r.name.is_empty() || r.name.contains('=') || r.namespace != "User" {
                cx.error(format!(
                    "bind `{var}`: expected the name of a user variable of the child package"
                ));
                ok = false;
                continue;
            }
            match checkflow_expr::compile(src, cx.vars(), false) {
                Ok(c) => binds.push((r.qualified(), c)),
                Err(e) => {
                    cx.error(format!("bind `{var}`: bad expression: {e}"));
                    ok = false;
                }
            }
        }
        ok.then(|| {
            Arc::new(PackageAction {
                path: path.clone(),
                binds,
            }) as Arc<dyn Action>
        })
    }
}

struct PackageAction {
    /// As written.
    path: String,
    /// Child variable (`User::X`) and the parent expression that gives its value.
    binds: Vec<(String, Compiled)>,
}

impl Action for PackageAction {
    fn run(&self, cx: &mut dyn RunCx) -> Result<(), TaskError> {
        let written = cx.prop_string("path", &self.path);
        let path = resolve_path(cx.package_dir(), &written);
        let what = format!("child package {written}");
        if !path.is_file() {
            return Err(TaskError::new(format!(
                "{what}: {} does not exist",
                path.display()
            )));
        }
        let chain = chain_with(&path)?;

        // The child's checkpoint belongs to this task in this iteration and
        // to this execution of it (docs/design/commit-protocols.md §4).
        let execution = cx.execution();
        let child_of = format!("{}-{}", execution.instance_hash(), execution.id_hash());
        let mut args: Vec<std::ffi::OsString> = vec![
            "run".into(),
            path.clone().into(),
            "--log".into(),
            "json".into(),
            "--child-of".into(),
            child_of.into(),
        ];
        // Unless a restart reruns the whole unit around this task anyway,
        // the child keeps its finished checkpoint until this task's record
        // is durable: a restart in between restores the child whole.
        if !cx.reruns_whole() {
            args.push("--keep-finished".into());
        }
        let mut bound = serde_json::Map::new();
        for (var, expr) in &self.binds {
            let v = cx.eval(expr)?;
            if v.is_null() {
                return Err(TaskError::new(format!(
                    "{what}: bind {var}: `{}` is NULL, and a child variable cannot be set to NULL",
                    expr.source()
                )));
            }
            // As `--set` would give it: the value's text.
            bound.insert(var.clone(), Json::String(v.to_string()));
        }
        let config = (!bound.is_empty()).then(|| yaml_safe_json(&Json::Object(bound)));
        if config.is_some() {
            args.push("--config".into());
            args.push("-".into());
        }
        if checkflow_plan::failpoint("child-before-start") {
            return Err(TaskError::new(format!(
                "{what}: cannot start it: refused (test failpoint)"
            )));
        }
        let exe = std::env::current_exe().map_err(|e| {
            TaskError::new(format!("{what}: cannot find the checkflow binary: {e}"))
        })?;
        let mut cmd = Command::new(&exe);
        cmd.args(&args)
            .current_dir(cx.package_dir())
            .env(CHAIN_ENV, chain)
            .stdin(if config.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        own_group(&mut cmd);
        // The child run and everything it starts carry this task's tag; a
        // copy left by a killed run of ours is ended before this one starts.
        crate::leftovers::tag(&mut cmd, cx);
        crate::leftovers::end_before_run(cx)?;
        let mut child = cmd
            .spawn()
            .map_err(|e| TaskError::new(format!("{what}: cannot start {}: {e}", exe.display())))?;
        let pid = child.id();
        // The bound values go in on a thread of their own, so that a child
        // that writes much before it reads them cannot block us both. A child
        // that exits early closes the pipe; its exit code then says why.
        let feeder = match (config, child.stdin.take()) {
            (Some(text), Some(mut stdin)) => Some(std::thread::spawn(move || {
                let _ = std::io::Write::write_all(&mut stdin, text.as_bytes());
            })),
            _ => None,
        };

        // Output: one reader thread per stream, into one channel, so this
        // thread (which owns `cx`) forwards lines in the order they come.
        let (tx, rx) = std::sync::mpsc::channel::<(bool, String)>();
        let mut readers = Vec::new();
        let streams: [(Option<Box<dyn Read + Send>>, bool); 2] = [
            (child.stdout.take().map(|o| Box::new(o) as _), false),
            (child.stderr.take().map(|e| Box::new(e) as _), true),
        ];
        for (stream, is_err) in streams {
            let Some(stream) = stream else { continue };
            let tx = tx.clone();
            readers.push(std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    if tx.send((is_err, line)).is_err() {
                        break;
                    }
                }
            }));
        }
        drop(tx);

        let done = Arc::new(AtomicBool::new(false));
        let watcher = {
            let done = done.clone();
            let token = cx.cancel_token().clone();
            std::thread::spawn(move || watch(pid, &token, &done))
        };

        let fallback = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| written.clone());
        let mut log = ChildLog::new(fallback);
        for (is_err, line) in rx {
            let forwarded = if is_err {
                Some(log.stderr(&line))
            } else {
                log.stdout(&line)
            };
            if let Some((level, text)) = forwarded {
                cx.log(level, &text);
            }
        }
        for r in readers.into_iter().chain(feeder) {
            let _ = r.join();
        }
        let status = child.wait();
        done.store(true, Ordering::SeqCst);
        let _ = watcher.join();
        cx.cancel_token().unregister_group(pid);
        let status = status.map_err(|e| TaskError::new(format!("{what}: cannot wait: {e}")))?;
        // The child succeeded and removed its checkpoint; the parent has not
        // recorded the task yet (docs/design/commit-protocols.md §4).
        if status.success() && checkflow_plan::failpoint("child-after-exit") {
            return Err(TaskError::new(format!(
                "{what}: its result was lost (test failpoint)"
            )));
        }

        match status.code() {
            Some(0) => {
                // The child keeps its finished checkpoint for a restart of
                // this task; it goes once the task's record is durable.
                if let Some(f) = log.kept.take() {
                    cx.discard_when_recorded(PathBuf::from(f));
                }
                Ok(())
            }
            Some(3) => Err(TaskError::new(format!("{what} was cancelled"))),
            Some(1) => Err(TaskError::new(format!(
                "{what} failed{}",
                log.errors_note()
            ))),
            Some(code) => Err(TaskError::new(format!(
                "{what} could not run (exit code {code}){}",
                log.stderr_note()
            ))),
            None => Err(TaskError::new(format!(
                "{what} was killed{}",
                signal_note(&status)
            ))),
        }
    }
}

/// JSON text that a YAML parser reads back as the same value: serde_json
/// leaves DEL and the C1 controls raw, which YAML does not allow in a
/// document, so every character outside YAML's printable set is escaped.
fn yaml_safe_json(v: &Json) -> String {
    let text = v.to_string();
    let printable = |c: char| {
        matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{7e}' | '\u{85}')
            || ('\u{a0}'..='\u{d7ff}').contains(&c)
            || ('\u{e000}'..='\u{fffd}').contains(&c)
            || c >= '\u{10000}'
    };
    if text.chars().all(printable) {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if printable(c) {
            out.push(c);
        } else {
            // Outside strings JSON has only printable ASCII, so c is in a string.
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        }
    }
    out
}

/// The chain of running packages with this one added, or an error if it is
/// already running above (a loop) or the chain is too deep.
fn chain_with(path: &Path) -> Result<std::ffi::OsString, TaskError> {
    let me = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mut chain: Vec<PathBuf> = std::env::var_os(CHAIN_ENV)
        .map(|v| std::env::split_paths(&v).collect())
        .unwrap_or_default();
    if chain.contains(&me) {
        return Err(TaskError::new(format!(
            "child package {} is already running above this one (a package may not run itself)",
            me.display()
        )));
    }
    if chain.len() >= MAX_DEPTH {
        return Err(TaskError::new(format!(
            "child package {}: packages nest more than {MAX_DEPTH} deep",
            me.display()
        )));
    }
    chain.push(me);
    std::env::join_paths(chain)
        .map_err(|e| TaskError::new(format!("child package path cannot be passed on: {e}")))
}

/// Waits for cancellation until the child ends: then asks it to stop, and
/// kills its group after [`GRACE`].
fn watch(pid: u32, token: &checkflow_plan::CancelToken, done: &AtomicBool) {
    let tick = Duration::from_millis(20);
    while !done.load(Ordering::SeqCst) {
        if token.is_cancelled() {
            ask_to_stop(pid);
            let deadline = Instant::now() + GRACE;
            while Instant::now() < deadline {
                if done.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(tick);
            }
            // The token is cancelled, so registering kills the group at once.
            token.register_group(pid);
            return;
        }
        std::thread::sleep(tick);
    }
}

#[cfg(unix)]
fn own_group(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
    crate::leftovers::die_with_parent(cmd, libc::SIGTERM);
}

#[cfg(not(unix))]
fn own_group(_cmd: &mut Command) {}

#[cfg(unix)]
fn ask_to_stop(pid: u32) {
    // SAFETY: kill(2) on our own child's pid, which is not reaped before
    // `done` is set; it has no memory-safety preconditions.
    unsafe {
        libc::kill(pid as i32, libc::SIGTERM);
    }
}

#[cfg(not(unix))]
fn ask_to_stop(_pid: u32) {}

/// Turns the child's output into lines for the parent's log, and keeps what
/// the failure message needs.
struct ChildLog {
    /// The child's package name (the file name until it says).
    name: String,
    /// `errors` of its summary line.
    errors: Vec<String>,
    /// Errors of executables that failed, in case the summary has none.
    failed: Vec<String>,
    /// The last lines of its stderr.
    stderr: VecDeque<String>,
    /// The checkpoint the child kept, as its summary names it.
    kept: Option<String>,
}

impl ChildLog {
    fn new(name: String) -> ChildLog {
        ChildLog {
            name,
            errors: Vec::new(),
            failed: Vec::new(),
            stderr: VecDeque::new(),
            kept: None,
        }
    }

    /// A line of the child's stderr (problems it reports before it runs).
    fn stderr(&mut self, line: &str) -> (LogLevel, String) {
        if self.stderr.len() == STDERR_KEPT {
            self.stderr.pop_front();
        }
        if !line.trim().is_empty() {
            self.stderr.push_back(line.trim_end().to_string());
        }
        (LogLevel::Warn, format!("[{}] {line}", self.name))
    }

    /// A line of the child's `--log json` stdout: the log line it becomes, if any.
    fn stdout(&mut self, line: &str) -> Option<(LogLevel, String)> {
        let Ok(ev) = serde_json::from_str::<Json>(line) else {
            // Not an event (a JSON log line is one object): pass it on as is.
            return Some((LogLevel::Info, format!("[{}] {line}", self.name)));
        };
        let s = |k: &str| ev[k].as_str().unwrap_or("").to_string();
        let path = s("path");
        let (level, text) = match ev["event"].as_str().unwrap_or("") {
            "run_started" => {
                if let Some(p) = ev["package"].as_str() {
                    self.name = p.to_string();
                }
                let how = if ev["restarting"] == Json::Bool(true) {
                    " (restarting from its checkpoint)"
                } else {
                    ""
                };
                (LogLevel::Info, format!("started{how}"))
            }
            "started" => match ev["attempt"].as_u64() {
                Some(a) if a > 1 => (LogLevel::Info, format!("start    {path} (attempt {a})")),
                _ => (LogLevel::Info, format!("start    {path}")),
            },
            "restored" => (
                LogLevel::Info,
                format!(
                    "restored {path} ({}, recorded by an earlier run)",
                    s("result")
                ),
            ),
            "output" => {
                let level = if ev["stream"] == "stderr" {
                    LogLevel::Warn
                } else {
                    LogLevel::Info
                };
                (level, format!("{path} | {}", s("line")))
            }
            "iteration" => {
                let key = ev["key"]
                    .as_str()
                    .map(|k| format!(": {k}"))
                    .unwrap_or_default();
                (
                    LogLevel::Info,
                    format!("iterate  {path} #{}{key}", ev["index"]),
                )
            }
            "retrying" => (LogLevel::Warn, format!("retry    {path}: {}", s("error"))),
            "finished" => {
                let status = s("status");
                let err = ev["error"].as_str();
                if status == "failed"
                    && let Some(e) = err
                {
                    self.failed.push(format!("{path}: {e}"));
                }
                let err = err.map(|e| format!(": {e}")).unwrap_or_default();
                let level = if status == "failed" {
                    LogLevel::Warn
                } else {
                    LogLevel::Info
                };
                (level, format!("{status} {path}{err}"))
            }
            "summary" => {
                self.errors = ev["errors"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|e| e.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default();
                let kept = ev["checkpoint"]["kept"] == Json::Bool(true);
                // Only a file is removed by the parent once its task is
                // recorded; a checkpoint the child keeps in a store stays
                // there (a later execution of the task uses another key).
                let in_store = ev["checkpoint"]["store"].is_object();
                let note = match ev["checkpoint"]["file"].as_str() {
                    Some(f) if kept => {
                        if !in_store {
                            self.kept = Some(f.to_string());
                        }
                        format!(" (checkpoint kept: {f})")
                    }
                    _ => String::new(),
                };
                let outcome = match ev["outcome"].as_str() {
                    Some("success") => "package succeeded".to_string(),
                    Some("failure") => "package FAILED".to_string(),
                    Some("cancelled") => "package was cancelled".to_string(),
                    other => format!("package ended: {}", other.unwrap_or("?")),
                };
                (LogLevel::Info, format!("{outcome}{note}"))
            }
            // Progress ticks and "still running" notes would only add noise.
            "progress" | "running" | "iteration_skipped" => return None,
            other => {
                let msg = ev["message"]
                    .as_str()
                    .map(String::from)
                    .unwrap_or_else(|| line.to_string());
                (LogLevel::Warn, format!("{other}: {msg}"))
            }
        };
        Some((level, format!("[{}] {text}", self.name)))
    }

    /// ": error; error" from the child's summary (or its failed executables,
    /// or its stderr), for the failure message.
    fn errors_note(&self) -> String {
        let list = if !self.errors.is_empty() {
            &self.errors
        } else {
            &self.failed
        };
        if list.is_empty() {
            return self.stderr_note();
        }
        format!(": {}", list.join("; "))
    }

    fn stderr_note(&self) -> String {
        if self.stderr.is_empty() {
            return String::new();
        }
        let lines: Vec<&str> = self.stderr.iter().map(String::as_str).collect();
        format!(": {}", lines.join(" | "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(log: &mut ChildLog, line: &str) -> Option<String> {
        log.stdout(line).map(|(_, t)| t)
    }

    #[test]
    fn child_events_become_prefixed_log_lines() {
        let mut log = ChildLog::new("child".into());
        let lines = [
            r#"{"event":"run_started","package":"nightly","restarting":true}"#,
            r#"{"event":"restored","path":"C1","result":"success"}"#,
            r#"{"event":"started","path":"C2","type":"process","attempt":1}"#,
            r#"{"event":"output","path":"C2","stream":"stderr","line":"oops"}"#,
            r#"{"event":"progress","path":"C2","done":1}"#,
            r#"{"event":"finished","path":"C2","status":"failed","error":"exited with code 1"}"#,
            r#"{"event":"summary","outcome":"failure","errors":["C2: exited with code 1"],"checkpoint":{"file":"c.ckpt","kept":true}}"#,
            "not json",
        ];
        let out: Vec<Option<String>> = lines.iter().map(|l| text(&mut log, l)).collect();
        assert_eq!(
            out,
            vec![
                Some("[nightly] started (restarting from its checkpoint)".into()),
                Some("[nightly] restored C1 (success, recorded by an earlier run)".into()),
                Some("[nightly] start    C2".into()),
                Some("[nightly] C2 | oops".into()),
                None,
                Some("[nightly] failed C2: exited with code 1".into()),
                Some("[nightly] package FAILED (checkpoint kept: c.ckpt)".into()),
                Some("[nightly] not json".into()),
            ]
        );
        assert_eq!(log.errors_note(), ": C2: exited with code 1");
    }

    #[test]
    fn without_a_summary_the_failure_names_failed_tasks_or_stderr() {
        let mut log = ChildLog::new("child".into());
        assert_eq!(log.errors_note(), "");
        log.stderr("checkflow: package child.yaml is not valid");
        assert_eq!(
            log.errors_note(),
            ": checkflow: package child.yaml is not valid"
        );
        text(
            &mut log,
            r#"{"event":"finished","path":"A","status":"failed","error":"boom"}"#,
        );
        assert_eq!(log.errors_note(), ": A: boom");
    }

    #[test]
    fn the_chain_lists_the_child_by_its_canonical_path() {
        let dir = tempfile::tempdir().expect("temp dir");
        let p = dir.path().join("p.yaml");
        std::fs::write(&p, "").expect("write");
        let chain = chain_with(&p).expect("not running yet");
        let listed: Vec<PathBuf> = std::env::split_paths(&chain).collect();
        assert_eq!(
            listed.last(),
            Some(&std::fs::canonicalize(&p).expect("canon"))
        );
    }
}
