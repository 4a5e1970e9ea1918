//! The dispatcher: one loop owns the run state and orders every event.
//!
//! Tasks run on worker threads (or inline, for cheap ones) and report over a
//! channel. The loop applies results, counts errors, and starts what became
//! ready — but only after every completion so far has been made durable by the
//! [`Recorder`]: records are flushed, in one batch, before anything new starts.
//!
//! The loop and the run state live here; each concern has a file of its own:
//! `readiness` (constraints, failure paths), `start` (begin, spawn),
//! `results` (a task's end), `failures` (errors up the tree, stopping),
//! `tx` (transactions and discards), `containers` (containers and loops),
//! `handlers` (event handlers), `context` (what a running task sees) and
//! `clock` (time).

mod clock;
mod containers;
mod context;
mod failures;
mod handlers;
mod readiness;
mod results;
mod start;
mod tx;

pub use clock::{humantime, now_civil};
use context::ThreadCx;
use handlers::codes;

use crate::enumerate::{Item, enumerate, split_finished};
use crate::event::*;
use crate::resume::Resume;
use crate::state::State;
use crate::vars::{TaskEnv, VarStore, eval_and_assign};
use checkflow_expr::{Compiled, Env, Value};
use checkflow_model::{ForceResult, Logic, On};
use checkflow_plan::{
    CancelToken, Execution, HandlerEvent, LogLevel, NodeId, NodeKind, Plan, ProcessScope, RunCx,
    SystemVar, TaskError, TxScope, VarTable, VarValue,
};
use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::{Duration, Instant};

/// How to run.
pub struct RunOptions {
    /// MaxConcurrentExecutables (tasks running at once).
    pub max_concurrent: usize,
    /// What to restore from a checkpoint.
    pub resume: Resume,
    /// Every variable's value at start (defaults, configuration, restored values, system values).
    pub initial: Vec<VarValue>,
    /// Set by Ctrl-C / SIGTERM.
    pub interrupt: Arc<AtomicBool>,
    /// Makes transaction markers unique to this run (e.g. the run id).
    pub tx_prefix: String,
    /// Tags the processes tasks start, when the run holds a checkpoint's lock.
    pub processes: Option<Arc<ProcessScope>>,
}

/// Runs a package to its end.
pub fn run(
    plan: &Plan,
    mut opts: RunOptions,
    recorder: &mut dyn Recorder,
    reporter: &mut dyn Reporter,
) -> RunResult {
    let initial = std::mem::take(&mut opts.initial);
    let store = Arc::new(VarStore::new(Arc::new(plan.vars.clone()), initial));
    run_on(plan, store, opts, recorder, reporter)
}

/// Runs a package on a store the caller keeps (`opts.initial` is not read).
fn run_on(
    plan: &Plan,
    store: Arc<VarStore>,
    opts: RunOptions,
    recorder: &mut dyn Recorder,
    reporter: &mut dyn Reporter,
) -> RunResult {
    let (tx, rx) = channel();
    let n = plan.nodes.len();
    let mut d = Dispatcher {
        plan,
        units: units(plan),
        rt: (0..n).map(|_| Rt::default()).collect(),
        store,
        resume: opts.resume,
        recorder,
        reporter,
        tx,
        rx,
        results: VecDeque::new(),
        agenda: VecDeque::new(),
        queue: VecDeque::new(),
        running: 0,
        max_concurrent: opts.max_concurrent.max(1),
        busy: HashSet::new(),
        pending_records: Vec::new(),
        stopping: false,
        cancelled: false,
        journal_error: None,
        restart_point: false,
        errors: Vec::new(),
        interrupt: opts.interrupt,
        started: Instant::now(),
        tx_prefix: opts.tx_prefix,
        tx_seq: 0,
        processes: opts.processes,
        discards: Vec::new(),
        handler_seq: 0,
        any_handlers: plan.nodes.iter().any(|n| n.handlers.is_some()),
    };
    d.main_loop();
    d.finish()
}

#[derive(Default)]
struct Rt {
    state: State,
    errors: u32,
    halted: bool,
    chain: bool,
    attempt: u32,
    started: Option<Instant>,
    start_time: Option<jiff::civil::DateTime>,
    total: Duration,
    runs: u32,
    /// How its runs ended, counted each time it finishes (a loop's children
    /// once per iteration).
    ended: Tally,
    last_error: Option<String>,
    cancel: Option<CancelToken>,
    deadline: Option<Instant>,
    timed_out: bool,
    /// Why a running task was stopped (its own or its container's timeout).
    stop_reason: Option<String>,
    retry_at: Option<Instant>,
    heartbeat: Option<Instant>,
    props: Arc<HashMap<String, Value>>,
    /// A foreach's items still to run, each with its 1-based position in
    /// the collection (items done by an earlier run are not here, but they
    /// keep their places in the numbering).
    items: VecDeque<(u64, Item)>,
    iteration: u64,
    current_key: Option<String>,
    /// A loop stopped before its collection or condition was exhausted.
    cut: bool,
    /// A container whose error count reached its `max_errors`: the failed
    /// executables that brought it there. Only the paths those failures
    /// enable (their successors, and what follows them) still start in it;
    /// when they end, it fails.
    failing: Vec<NodeId>,
    /// The transaction this executable started (`transaction: required`).
    tx: Option<Arc<TxScope>>,
    /// A container's children that have not finished in the current
    /// iteration: kept so a completion costs O(1), not a scan of the siblings.
    open: usize,
    /// An event handler attached to this executable failed while it ran
    /// (on a warning it logged): its result is a failure.
    handler_error: Option<String>,
    /// The figures it reported last (`RunCx::metrics`).
    metrics: Option<serde_json::Value>,
}

enum Work {
    Check(NodeId),
    ChildDone(NodeId),
}

struct TaskDone {
    node: NodeId,
    result: Result<(), String>,
    elapsed: Duration,
    inline: bool,
}

enum Msg {
    Done(TaskDone),
    /// A file to remove once the task's record (or its unit's) is durable.
    Discard {
        node: NodeId,
        path: PathBuf,
    },
    /// What a task reports as it runs (`Event::Log`, `Progress` or
    /// `Metrics`), passed to the reporter in order.
    Report(Event),
}

enum Ready {
    Yes,
    No,
    Wait,
}

struct Dispatcher<'a> {
    plan: &'a Plan,
    /// Per node: the unit whose record carries its changes to variables.
    units: Vec<NodeId>,
    rt: Vec<Rt>,
    store: Arc<VarStore>,
    resume: Resume,
    recorder: &'a mut dyn Recorder,
    reporter: &'a mut dyn Reporter,
    tx: Sender<Msg>,
    rx: Receiver<Msg>,
    results: VecDeque<TaskDone>,
    agenda: VecDeque<Work>,
    queue: VecDeque<NodeId>,
    running: usize,
    max_concurrent: usize,
    busy: HashSet<NodeId>,
    pending_records: Vec<Record>,
    stopping: bool,
    cancelled: bool,
    journal_error: Option<String>,
    restart_point: bool,
    errors: Vec<String>,
    interrupt: Arc<AtomicBool>,
    started: Instant,
    tx_prefix: String,
    tx_seq: u64,
    processes: Option<Arc<ProcessScope>>,
    /// Files to remove once their unit's record is durable, by unit.
    discards: Vec<(NodeId, PathBuf)>,
    /// Event handler runs so far (each gets transaction markers of its own).
    handler_seq: u64,
    /// Some executable has an event handler (most packages have none).
    any_handlers: bool,
}

/// Per node, the unit whose record carries the variables it changes: the
/// nearest executable, itself or an ancestor, whose completion is recorded
/// (the package for what nothing records).
fn units(plan: &Plan) -> Vec<NodeId> {
    let mut units = vec![Plan::ROOT; plan.nodes.len()];
    // Parents come before their children in a subtree walk.
    for n in plan.subtree(Plan::ROOT).into_iter().skip(1) {
        let node = plan.node(n);
        units[n.index()] = match node.parent {
            _ if node.recordable => n,
            Some(p) => units[p.index()],
            None => Plan::ROOT,
        };
    }
    units
}

/// How often a long task reports that it is still running.
const HEARTBEAT: Duration = Duration::from_secs(10);

impl Dispatcher<'_> {
    fn main_loop(&mut self) {
        let pre = self.fire(HandlerEvent::OnPreExecute, Plan::ROOT, 0, "");
        self.start_container(Plan::ROOT);
        if let Some(e) = pre {
            self.container_error(Plan::ROOT, codes::HANDLER, e);
        }
        loop {
            self.drain();
            if self.rt[0].state.is_terminal() {
                break;
            }
            let wait = self
                .next_timer()
                .map(|t| t.saturating_duration_since(Instant::now()))
                .unwrap_or(Duration::from_millis(200));
            // Before waiting, make every completion so far durable: a task that
            // finished with nothing new to start must not wait for the next start.
            self.flush();
            self.reporter.flush();
            match self.rx.recv_timeout(wait.min(Duration::from_millis(200))) {
                Ok(msg) => {
                    self.on_msg(msg);
                    while let Ok(m) = self.rx.try_recv() {
                        self.on_msg(m);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {}
            }
            self.check_timers();
            if self.interrupt.load(Ordering::SeqCst) && !self.cancelled {
                self.cancel_run();
            }
        }
        self.flush();
    }

    fn on_msg(&mut self, msg: Msg) {
        match msg {
            Msg::Done(d) => self.results.push_back(d),
            Msg::Discard { node, path } => self.discards.push((self.units[node.index()], path)),
            Msg::Report(event) => {
                self.reporter.event(&event);
                match event {
                    Event::Log {
                        node,
                        level: LogLevel::Warn,
                        line,
                    } => {
                        if let Some(e) = self.fire(HandlerEvent::OnWarning, node, 0, &line) {
                            if self.rt[node.index()].state.is_terminal() {
                                self.errors.push(format!("{}: {e}", self.label(node)));
                            } else {
                                self.rt[node.index()].handler_error.get_or_insert(e);
                            }
                        }
                    }
                    Event::Metrics { node, metrics } => {
                        self.rt[node.index()].metrics = Some(metrics);
                    }
                    _ => {}
                }
            }
        }
    }

    /// Applies every result, then every check, until nothing moves.
    /// Moves the run forward in rounds until nothing moves: apply every
    /// result, then every check; then make the round's completions durable
    /// with one flush (group commit) and start everything that became ready.
    fn drain(&mut self) {
        let mut ready = Vec::new();
        loop {
            while let Some(r) = self.results.pop_front() {
                self.on_result(r);
            }
            while let Some(w) = self.agenda.pop_front() {
                match w {
                    Work::Check(n) => {
                        if self.check(n) {
                            ready.push(n);
                        }
                    }
                    Work::ChildDone(c) => self.child_done(c),
                }
            }
            if !ready.is_empty() {
                self.flush();
                for n in ready.drain(..) {
                    if self.rt[n.index()].state == State::Pending {
                        self.begin(n);
                    }
                }
                continue;
            }
            if !self.results.is_empty() || !self.agenda.is_empty() || self.start_queued() {
                continue;
            }
            break;
        }
    }

    fn next_timer(&self) -> Option<Instant> {
        self.busy
            .iter()
            .filter_map(|n| {
                let rt = &self.rt[n.index()];
                match rt.state {
                    State::Running | State::Active => rt.deadline,
                    State::Waiting => rt.retry_at,
                    _ => None,
                }
            })
            .min()
    }

    fn check_timers(&mut self) {
        let now = Instant::now();
        let busy: Vec<NodeId> = self.busy.iter().copied().collect();
        for n in busy {
            let rt = &mut self.rt[n.index()];
            match rt.state {
                State::Running
                    if rt.heartbeat.is_some_and(|h| h <= now)
                        && rt.deadline.is_none_or(|d| d > now) =>
                {
                    rt.heartbeat = Some(now + HEARTBEAT);
                    let elapsed = rt
                        .started
                        .map(|s| now.duration_since(s))
                        .unwrap_or_default();
                    self.reporter.event(&Event::Running { node: n, elapsed });
                }
                State::Running if rt.deadline.is_some_and(|d| d <= now) && !rt.timed_out => {
                    rt.timed_out = true;
                    let t = self.plan.node(n).timeout.unwrap_or_default();
                    rt.stop_reason = Some(format!("timed out after {}", humantime(t)));
                    if let Some(t) = &rt.cancel {
                        t.cancel();
                    }
                }
                State::Waiting if rt.retry_at.is_some_and(|d| d <= now) => {
                    rt.retry_at = None;
                    let err = rt.last_error.clone().unwrap_or_default();
                    if self.stopping || !self.flush() {
                        self.busy.remove(&n);
                        self.finish_task(n, Err(err), Duration::ZERO);
                    } else {
                        self.spawn(n);
                    }
                }
                State::Active if rt.deadline.is_some_and(|d| d <= now) && !rt.timed_out => {
                    rt.timed_out = true;
                    self.container_timeout(n);
                }
                _ => {}
            }
        }
    }

    fn finish(self) -> RunResult {
        let outcome = match self.rt[0].state {
            State::Cancelled => PackageOutcome::Cancelled,
            State::Done(Outcome::Success) if self.journal_error.is_none() => {
                PackageOutcome::Success
            }
            _ => PackageOutcome::Failure,
        };
        let summary = self
            .plan
            .nodes
            .iter()
            .skip(1)
            .map(|n| {
                let rt = &self.rt[n.id.index()];
                NodeSummary {
                    node: n.id,
                    status: rt.state.status(),
                    duration: rt.total,
                    runs: rt.runs,
                    ended: rt.ended,
                    error: rt.last_error.clone(),
                    metrics: rt.metrics.clone(),
                }
            })
            .collect();
        RunResult {
            outcome,
            restart_point: self.restart_point,
            summary,
            journal_error: self.journal_error,
            duration: self.started.elapsed(),
            errors: self.errors,
        }
    }
}

/// The result of `force_result: failure`, as an error.
const FORCED: &str = "forced to fail (force_result: failure)";

fn forced(f: ForceResult) -> Outcome {
    match f {
        ForceResult::Success => Outcome::Success,
        ForceResult::Failure => Outcome::Failure,
        ForceResult::Completion => Outcome::Completion,
    }
}
