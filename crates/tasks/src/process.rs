//! The Execute Process task: a shell `command`, or a `program` with `args`.
//!
//! The child runs in its own process group, so a timeout or Ctrl-C kills the
//! whole tree it started. Each process of the tree carries the task's tag,
//! so a restart ends what a killed run left running before it runs the task
//! again (`leftovers`). Its output is streamed into the run log line by line
//! and, if asked, captured into variables.

use checkflow_expr::{DataType, Value};
use checkflow_model::{TaskDef, pos_of};
use checkflow_plan::{Action, BuildCx, LogLevel, RunCx, TaskError, TaskType, VarValue};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::Arc;

pub(crate) struct ProcessType;

impl TaskType for ProcessType {
    fn name(&self) -> &'static str {
        "process"
    }

    fn fields(&self) -> &'static [&'static str] {
        &[
            "command",
            "program",
            "args",
            "cwd",
            "env",
            "success_codes",
            "stdout_var",
            "stderr_var",
        ]
    }

    fn build(&self, def: &TaskDef, cx: &mut BuildCx<'_>) -> Option<Arc<dyn Action>> {
        let process = def.process();
        let run = match (&process.command, &process.program) {
            (Some(c), None) => Run::Shell(c.value.clone()),
            (None, Some(p)) => {
                Run::Program(p.value.clone(), process.args.clone().unwrap_or_default())
            }
            (Some(_), Some(_)) => {
                cx.error("give `command` or `program`, not both");
                return None;
            }
            (None, None) => {
                cx.error("a process task needs `command` (a shell command line) or `program` (with `args`)");
                return None;
            }
        };
        if process.args.is_some() && process.command.is_some() {
            cx.error("`args` goes with `program`; a `command` is one shell line");
        }
        let capture =
            |v: &Option<checkflow_model::Spanned<String>>, cx: &mut BuildCx<'_>| -> Option<u32> {
                let v = v.as_ref()?;
                let (slot, ty) = cx.writable_var(&v.value, pos_of(v))?;
                if !matches!(ty, DataType::WStr { .. } | DataType::Str { .. }) {
                    cx.error_at(
                        pos_of(v),
                        format!("variable \"{}\" must be a string to hold output", v.value),
                    );
                    return None;
                }
                Some(slot)
            };
        let stdout_var = capture(&process.stdout_var, cx);
        let stderr_var = capture(&process.stderr_var, cx);
        Some(Arc::new(ProcessAction {
            run,
            cwd: process.cwd.clone(),
            env: process.env.clone().unwrap_or_default(),
            success_codes: process.success_codes.clone().unwrap_or_else(|| vec![0]),
            stdout_var,
            stderr_var,
        }))
    }
}

enum Run {
    Shell(String),
    Program(String, Vec<String>),
}

struct ProcessAction {
    run: Run,
    cwd: Option<String>,
    env: BTreeMap<String, String>,
    success_codes: Vec<i32>,
    stdout_var: Option<u32>,
    stderr_var: Option<u32>,
}

impl Action for ProcessAction {
    fn run(&self, cx: &mut dyn RunCx) -> Result<(), TaskError> {
        let mut cmd = match &self.run {
            Run::Shell(c) => {
                let line = cx.prop_string("command", c);
                shell(&line)
            }
            Run::Program(p, args) => {
                let mut c = Command::new(cx.prop_path("program", p));
                c.args(args);
                c
            }
        };
        let cwd = match &self.cwd {
            Some(d) => cx.prop_path("cwd", d),
            None => cx.package_dir().to_path_buf(),
        };
        cmd.current_dir(&cwd)
            .envs(&self.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
        }
        crate::leftovers::die_with_parent(&mut cmd, libc::SIGTERM);
        // Every process of this copy carries the task's tag (after `env`, so
        // a package cannot unset it); a copy left by a killed run of ours is
        // ended first, so the two never run side by side.
        crate::leftovers::tag(&mut cmd, cx);
        crate::leftovers::end_before_run(cx)?;
        let what = match &self.run {
            Run::Shell(c) => format!("command `{}`", short(&cx.prop_string("command", c))),
            Run::Program(p, _) => format!("program {p}"),
        };
        let token = cx.cancel_token().clone();
        if token.is_cancelled() {
            return Err(TaskError::new(format!(
                "{what} was not started: the task was cancelled"
            )));
        }
        let mut child = cmd.spawn().map_err(|e| {
            TaskError::new(format!("cannot start {what} in {}: {e}", cwd.display()))
        })?;
        let pgid = child.id();
        token.register_group(pgid);
        // The process runs, and nothing on disk says so: its tag is its record.
        let _ = checkflow_plan::failpoint("process-after-spawn");

        let out = child.stdout.take();
        let err = child.stderr.take();
        let (out_tx, out_rx) = std::sync::mpsc::channel::<(LogLevel, String)>();
        let readers: Vec<_> = [
            (
                out.map(|o| Box::new(o) as Box<dyn Read + Send>),
                LogLevel::Info,
            ),
            (
                err.map(|e| Box::new(e) as Box<dyn Read + Send>),
                LogLevel::Warn,
            ),
        ]
        .into_iter()
        .filter_map(|(r, level)| r.map(|r| (r, level)))
        .map(|(r, level)| {
            let tx = out_tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(r).lines() {
                    let Ok(line) = line else { break };
                    if tx.send((level, line)).is_err() {
                        break;
                    }
                }
            })
        })
        .collect();
        drop(out_tx);
        let (mut stdout, mut stderr) = (String::new(), String::new());
        for (level, line) in out_rx {
            cx.log(level, &line);
            let buf = if level == LogLevel::Info {
                &mut stdout
            } else {
                &mut stderr
            };
            if buf.len() < 16 << 20 {
                buf.push_str(&line);
                buf.push('\n');
            }
        }
        for r in readers {
            let _ = r.join();
        }
        let status = child
            .wait()
            .map_err(|e| TaskError::new(format!("cannot wait for {what}: {e}")))?;
        token.unregister_group(pgid);
        if let Some(slot) = self.stdout_var {
            cx.set(
                slot,
                VarValue::Scalar(Value::WStr(stdout.trim_end_matches('\n').to_string())),
            )?;
        }
        if let Some(slot) = self.stderr_var {
            cx.set(
                slot,
                VarValue::Scalar(Value::WStr(stderr.trim_end_matches('\n').to_string())),
            )?;
        }
        match status.code() {
            Some(code) if self.success_codes.contains(&code) => Ok(()),
            Some(code) => {
                let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
                let detail = if tail.is_empty() {
                    String::new()
                } else {
                    format!(
                        ": {}",
                        tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                    )
                };
                Err(TaskError::new(format!(
                    "{what} exited with code {code}{detail}"
                )))
            }
            None => Err(TaskError::new(format!(
                "{what} was killed{}",
                signal_note(&status)
            ))),
        }
    }
}

/// The first line of a command, cut to a readable length, for messages.
fn short(cmd: &str) -> String {
    let first = cmd.trim().lines().next().unwrap_or("");
    let multi = cmd.trim().lines().count() > 1;
    let cut: String = first.chars().take(60).collect();
    if multi || cut.len() < first.len() {
        format!("{cut} ...")
    } else {
        cut
    }
}

#[cfg(unix)]
fn shell(line: &str) -> Command {
    let mut c = Command::new("/bin/sh");
    c.arg("-c").arg(line);
    c
}

#[cfg(windows)]
fn shell(line: &str) -> Command {
    let mut c = Command::new("cmd");
    c.arg("/C").arg(line);
    c
}

/// " by signal N" when a child process was killed by a signal (also used by
/// the package task for its child run).
#[cfg(unix)]
pub(crate) fn signal_note(status: &std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    status
        .signal()
        .map(|s| format!(" by signal {s}"))
        .unwrap_or_default()
}

#[cfg(not(unix))]
pub(crate) fn signal_note(_: &std::process::ExitStatus) -> String {
    String::new()
}
