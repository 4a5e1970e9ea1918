//! `checkflow worker`: runs queued runs from a shared store.
//!
//! 1. Claim a ready run (`SKIP LOCKED`: each run on one worker), up to
//!    `--concurrency` at a time, and keep the claims alive.
//! 2. Run each as a child `checkflow run ... --checkpoint-store URL
//!    --checkpoint-key KEY --takeover`: the child takes the checkpoint's
//!    lease, restarts from its records if there are any, and is fenced like
//!    any run. The child dies with the worker (`PR_SET_PDEATHSIG`), as the
//!    run would with its machine; another worker then takes it over.
//! 3. When a child ends: succeeded, failed, retrying (failed with a restart
//!    point, attempts left), or handed back to the queue (cancelled).
//! 4. SIGTERM or Ctrl-C: claim nothing more, stop the runs (each keeps its
//!    checkpoint) and hand them back, then exit.

use crate::args::{LogFormat, WorkerArgs};
use crate::exit;
use crate::session::Fail;
use checkflow_store as store;
use std::io::{BufRead, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the worker looks for work and at its runs.
const POLL: Duration = Duration::from_millis(200);

struct Running {
    id: i64,
    claim: store::Claim,
    key: String,
    child: Child,
    /// The last error line the run printed.
    last_error: Arc<Mutex<Option<String>>>,
    pipes: Vec<std::thread::JoinHandle<()>>,
}

/// The worker's own lines: text for people, or one JSON object a line.
struct Log {
    json: bool,
}

impl Log {
    fn line(&self, event: &str, run: Option<i64>, text: &str) {
        let mut err = std::io::stderr().lock();
        if self.json {
            let v = serde_json::json!({"event": event, "run": run, "message": text});
            let _ = writeln!(err, "{v}");
        } else {
            match run {
                Some(id) => {
                    let _ = writeln!(err, "worker: run {id}: {text}");
                }
                None => {
                    let _ = writeln!(err, "worker: {text}");
                }
            }
        }
    }
}

pub fn worker(a: &WorkerArgs) -> Result<i32, Fail> {
    // Ctrl-C, SIGTERM and SIGHUP: hand the runs back and stop; a second
    // signal exits at once.
    let stop = super::run::interrupt_flag();
    let log = Log {
        json: a.log == LogFormat::Json,
    };
    let s = store::Store::open(&a.store).map_err(|e| Fail::chain(exit::FAILURE, &e))?;
    let shown = s.shown().to_string();
    let mut w = store::Worker::new(s, &a.queue, a.lease);
    log.line(
        "started",
        None,
        &format!(
            "{} takes runs from queue {} of {shown}, {} at a time",
            w.name, a.queue, a.concurrency
        ),
    );
    let exe = std::env::current_exe().map_err(|e| {
        Fail::new(
            exit::FAILURE,
            format!("cannot find the checkflow binary: {e}"),
        )
    })?;
    let mut running: Vec<Running> = Vec::new();
    let mut beat = Instant::now();
    loop {
        reap(&mut w, &mut running, &log)?;
        if stop.load(Ordering::SeqCst) {
            log.line(
                "stopping",
                None,
                &format!(
                    "stopping: {} run(s) stop and go back to the queue",
                    running.len()
                ),
            );
            for r in &running {
                signal(&r.child, libc::SIGTERM);
            }
            while !running.is_empty() {
                reap(&mut w, &mut running, &log)?;
                std::thread::sleep(POLL);
            }
            return Ok(exit::SUCCESS);
        }
        if beat.elapsed() >= a.lease / 3 {
            beat = Instant::now();
            let claims: Vec<store::Claim> = running.iter().map(|r| r.claim).collect();
            match w.heartbeat(&claims) {
                Ok(lost) => {
                    for claim in lost {
                        // This worker's claim lapsed (it was paused) and the
                        // run is another's now: its child must not go on.
                        let id = claim.id;
                        if let Some(i) = running.iter().position(|r| r.claim == claim) {
                            let mut r = running.remove(i);
                            log.line("lost", Some(id), "this worker's claim lapsed and another took the run; stopping its copy here");
                            let _ = r.child.kill();
                            let _ = r.child.wait();
                        }
                    }
                }
                Err(e) => log.line("warning", None, &crate::session::failed_to(&e)),
            }
        }
        while running.len() < a.concurrency && !stop.load(Ordering::SeqCst) {
            let c = match w.claim() {
                Ok(Some(c)) => {
                    if checkflow_plan::failpoint("worker-after-claim") {
                        // The tests' crash point: claimed, nothing started.
                        break;
                    }
                    c
                }
                Ok(None) => break,
                Err(e) => {
                    log.line("warning", None, &crate::session::failed_to(&e));
                    break;
                }
            };
            match start(&exe, &a.store, &c, &log) {
                Ok(r) => running.push(r),
                Err(msg) => {
                    log.line("failed", Some(c.id), &msg);
                    let end = store::RunEnd {
                        exit_code: None,
                        error: Some(msg),
                        ..Default::default()
                    };
                    let _ = w.finish(
                        store::Claim {
                            id: c.id,
                            token: c.token,
                        },
                        &c.key,
                        |_| end.clone(),
                    );
                }
            }
        }
        if a.exit_when_done && running.is_empty() {
            match w.all_finished() {
                Ok(true) => {
                    log.line("done", None, "every run in the queue has finished");
                    return Ok(exit::SUCCESS);
                }
                Ok(false) => {}
                Err(e) => log.line("warning", None, &crate::session::failed_to(&e)),
            }
        }
        std::thread::sleep(POLL);
    }
}

fn signal(child: &Child, sig: i32) {
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: kill(2) with a pid of our own child and a valid signal.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

/// Starts a claimed run as a child `checkflow run`, after checking that the
/// package file is the one submitted.
fn start(
    exe: &std::path::Path,
    url: &str,
    c: &store::Claimed,
    log: &Log,
) -> Result<Running, String> {
    let path = std::path::Path::new(&c.package_path);
    let now = super::queue::package_hash(path).map_err(|f| f.message)?;
    if now != c.package_hash {
        return Err(format!(
            "package {} changed since it was submitted (sha256 {} when submitted, {now} now); not run (submit it again to run the new one)",
            c.package_path, c.package_hash
        ));
    }
    let what = if c.takeover {
        "taking over (its worker stopped renewing its claim)".to_string()
    } else {
        format!("starting attempt {}", c.attempts)
    };
    log.line(
        "claimed",
        Some(c.id),
        &format!("{what}: {}", c.package_path),
    );
    let mut cmd = Command::new(exe);
    cmd.arg("run")
        .arg(&c.package_path)
        .args(&c.args)
        .args(["--checkpoint-key", &c.key, "--takeover"])
        .args(["--queue-run", &format!("{}:{}", c.id, c.token)])
        // The URL, password and all, goes in the environment, not on a
        // command line other users of the machine can read.
        .env(crate::checkpoint::store::WORKER_STORE_ENV, url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if c.config.is_some() {
        cmd.args(["--config", "-"]).stdin(Stdio::piped());
    } else {
        cmd.stdin(Stdio::null());
    }
    // The run dies with the worker, as it would with its machine.
    checkflow_tasks::die_with_parent(&mut cmd, libc::SIGKILL);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
    if let (Some(text), Some(mut stdin)) = (&c.config, child.stdin.take()) {
        let text = text.clone();
        std::thread::spawn(move || {
            let _ = stdin.write_all(text.as_bytes());
        });
    }
    let last_error = Arc::new(Mutex::new(None));
    let mut pipes = Vec::new();
    let id = c.id;
    if let Some(out) = child.stdout.take() {
        pipes.push(forward(out, id, last_error.clone()));
    }
    if let Some(err) = child.stderr.take() {
        pipes.push(forward(err, id, last_error.clone()));
    }
    Ok(Running {
        id,
        claim: store::Claim { id, token: c.token },
        key: c.key.clone(),
        child,
        last_error,
        pipes,
    })
}

/// Passes a run's output on, each line prefixed with its run id; keeps the
/// last error line (`checkflow: ...`, or the summary's `error: ...`).
fn forward(
    pipe: impl std::io::Read + Send + 'static,
    id: i64,
    last_error: Arc<Mutex<Option<String>>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if let Some(msg) = line
                .strip_prefix("checkflow: ")
                .or_else(|| line.trim_start().strip_prefix("error: "))
            {
                *last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(msg.to_string());
            }
            let mut so = std::io::stdout().lock();
            let _ = writeln!(so, "[run {id}] {line}");
        }
    })
}

/// Records the end of every run whose child exited.
fn reap(w: &mut store::Worker, running: &mut Vec<Running>, log: &Log) -> Result<(), Fail> {
    let mut i = 0;
    while i < running.len() {
        let status = match running[i].child.try_wait() {
            Ok(Some(s)) => s,
            Ok(None) => {
                i += 1;
                continue;
            }
            Err(e) => {
                log.line(
                    "warning",
                    Some(running[i].id),
                    &format!("cannot wait for its process: {e}"),
                );
                i += 1;
                continue;
            }
        };
        let mut r = running.remove(i);
        for p in r.pipes.drain(..) {
            let _ = p.join();
        }
        let code = status.code();
        let error = r
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        // The run records its own end; this is for a run that could not:
        // killed by a signal (it resumes from its checkpoint: back to the
        // queue), or stopped before it reached the store.
        // `kept`: whether its checkpoint is in the store, read in the
        // transaction that records the end.
        let end_of = |kept: bool| store::RunEnd {
            exit_code: code,
            restart_point: code != Some(exit::SUCCESS) && kept,
            // A run that says it succeeded but left its checkpoint did not
            // record its end (the store failed it): back to the queue, where
            // the next try restores everything and runs nothing.
            hand_back: code.is_none()
                || code == Some(exit::CANCELLED)
                || (code == Some(exit::SUCCESS) && kept),
            error: error.clone(),
        };
        if checkflow_plan::failpoint("worker-after-run") {
            // The tests' crash point: the run ended, and this worker dies
            // before it looks at the queue.
            return Ok(());
        }
        match w.finish(r.claim, &r.key, end_of) {
            Ok(store::Ended::Wrote(state) | store::Ended::Already(state)) => {
                let how = match (state, code) {
                    (store::RunState::Succeeded, _) => "succeeded".to_string(),
                    (store::RunState::Queued, _) => {
                        "stopped; back in the queue, its checkpoint kept".to_string()
                    }
                    (store::RunState::Retrying, c) => format!(
                        "failed (exit {}) with a restart point; queued again per its restart policy",
                        c.map_or("by a signal".into(), |c| c.to_string())
                    ),
                    (_, c) => format!(
                        "failed (exit {}){}",
                        c.map_or("by a signal".into(), |c| c.to_string()),
                        error.map(|e| format!(": {e}")).unwrap_or_default()
                    ),
                };
                log.line(state.as_str(), Some(r.id), &how);
            }
            Ok(store::Ended::NotMine) => log.line(
                "lost",
                Some(r.id),
                "its claim is no longer this worker's; its end is recorded by the worker that has it",
            ),
            Err(e) => log.line("warning", Some(r.id), &crate::session::failed_to(&e)),
        }
    }
    Ok(())
}
