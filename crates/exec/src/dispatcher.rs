//! The dispatcher: one loop owns the run state and orders every event.
//!
//! Tasks run on worker threads (or inline, for cheap ones) and report over a
//! channel. The loop applies results, counts errors, and starts what became
//! ready — but only after every completion so far has been made durable by the
//! [`Recorder`]: records are flushed, in one batch, before anything new starts.

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
    Log {
        node: NodeId,
        level: LogLevel,
        line: String,
    },
    Progress {
        node: NodeId,
        done: u64,
        total: Option<u64>,
        unit: String,
    },
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

/// The local wall-clock time. The system time zone is looked up once: this
/// runs for every executable that starts.
pub fn now_civil() -> jiff::civil::DateTime {
    use std::cell::Cell;
    static TZ: std::sync::OnceLock<jiff::tz::TimeZone> = std::sync::OnceLock::new();
    thread_local! {
        /// The zone's offset in the UTC second it was looked up for: an
        /// offset changes only on a whole second, and a run asks for the
        /// time several times per task.
        static OFFSET: Cell<Option<(i64, jiff::tz::Offset)>> = const { Cell::new(None) };
    }
    let now = jiff::Timestamp::now();
    let second = now.as_second();
    let offset = match OFFSET.get() {
        Some((s, o)) if s == second => o,
        _ => {
            let o = TZ.get_or_init(jiff::tz::TimeZone::system).to_offset(now);
            OFFSET.set(Some((second, o)));
            o
        }
    };
    offset.to_datetime(now)
}

impl<'a> Dispatcher<'a> {
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
            Msg::Log { node, level, line } => {
                let warning = (level == LogLevel::Warn).then(|| line.clone());
                self.reporter.event(&Event::Log { node, level, line });
                if let Some(line) = warning
                    && let Some(e) = self.fire(HandlerEvent::OnWarning, node, 0, &line)
                {
                    if self.rt[node.index()].state.is_terminal() {
                        self.errors.push(format!("{}: {e}", self.label(node)));
                    } else {
                        self.rt[node.index()].handler_error.get_or_insert(e);
                    }
                }
            }
            Msg::Progress {
                node,
                done,
                total,
                unit,
            } => self.reporter.event(&Event::Progress {
                node,
                done,
                total,
                unit,
            }),
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
                    if self.stopping {
                        let err = rt.last_error.clone().unwrap_or_default();
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

    // ----- readiness -----

    /// Settles a pending executable whose constraints may have changed:
    /// `true` if it can start now (the caller starts it), marks it not run if
    /// they can no longer hold.
    fn check(&mut self, n: NodeId) -> bool {
        if self.rt[n.index()].state != State::Pending {
            return false;
        }
        let node = self.plan.node(n);
        let Some(parent) = node.parent else {
            return false;
        };
        if self.rt[parent.index()].state != State::Active {
            return false;
        }
        match self.ready(n) {
            Ready::Yes => true,
            Ready::No => {
                self.set_terminal(n, State::NotRun);
                false
            }
            Ready::Wait => false,
        }
    }

    fn ready(&self, n: NodeId) -> Ready {
        let node = self.plan.node(n);
        if node.preds.is_empty() {
            return Ready::Yes;
        }
        let (mut any_true, mut any_false, mut any_open) = (false, false, false);
        for c in &node.preds {
            match self.constraint_holds(n, c.from, c.on, c.expr.as_deref()) {
                Some(true) => any_true = true,
                Some(false) => any_false = true,
                None => any_open = true,
            }
        }
        match node.logic {
            Logic::And if any_false => Ready::No,
            Logic::And if any_open => Ready::Wait,
            Logic::And => Ready::Yes,
            Logic::Or if any_true => Ready::Yes,
            Logic::Or if any_open => Ready::Wait,
            Logic::Or => Ready::No,
        }
    }

    /// `None` while the predecessor has not finished.
    fn constraint_holds(
        &self,
        n: NodeId,
        from: NodeId,
        on: On,
        expr: Option<&Compiled>,
    ) -> Option<bool> {
        let result = match self.rt[from.index()].state {
            State::Done(o) | State::Restored(o) => Some(o),
            State::Disabled => Some(Outcome::Success),
            State::NotRun | State::Cancelled => None,
            _ => return None,
        };
        let Some(result) = result else {
            return Some(false);
        };
        let matches = match on {
            On::Success => result == Outcome::Success,
            On::Failure => result == Outcome::Failure,
            On::Completion => true,
        };
        if !matches {
            return Some(false);
        }
        match expr {
            None => Some(true),
            Some(e) => {
                let env = self.env_for(n, self.rt[from.index()].last_error.as_deref());
                Some(matches!(e.eval(&env), Ok(Value::Bool(true))))
            }
        }
    }

    fn env_for<'s>(&'s self, n: NodeId, error: Option<&'s str>) -> TaskEnv<'s> {
        let rt = &self.rt[n.index()];
        TaskEnv {
            store: &self.store,
            task_name: &self.plan.node(n).name,
            start: rt.start_time.unwrap_or_else(now_civil),
            error,
            unit: self.units[n.index()],
        }
    }

    /// `System::ErrorDescription` for an executable on a failure path: the
    /// error of the failed predecessor that let it start.
    fn failed_pred_error(&self, n: NodeId) -> Option<String> {
        self.plan
            .node(n)
            .preds
            .iter()
            .find_map(|c| match self.rt[c.from.index()].state {
                State::Done(Outcome::Failure) | State::Restored(Outcome::Failure) => {
                    self.rt[c.from.index()].last_error.clone()
                }
                _ => None,
            })
    }

    /// "the number of errors raised (N) reached the maximum allowed (M)", as
    /// SSIS says it.
    fn max_errors_message(&self, c: NodeId) -> String {
        format!(
            "the number of errors raised ({}) reached the maximum allowed ({})",
            self.rt[c.index()].errors,
            self.plan.node(c).max_errors
        )
    }

    /// Whether `n` may start under the containers above it that reached
    /// their `max_errors`: only what follows one of the failures that
    /// brought them there (through precedence, at the level where `n`'s
    /// branch leaves the failed one's) may.
    fn enabled_by_failures(&self, n: NodeId) -> bool {
        self.plan.ancestors(n).all(|a| {
            let failing = &self.rt[a.index()].failing;
            failing.is_empty() || failing.iter().any(|&o| self.follows_failure(n, o))
        })
    }

    /// `n` lies on a path that the failure of `o` enables: where their
    /// branches part, `n`'s side follows `o`'s through precedence.
    fn follows_failure(&self, n: NodeId, o: NodeId) -> bool {
        let chain_o: Vec<NodeId> = std::iter::once(o).chain(self.plan.ancestors(o)).collect();
        // Up from `n` to the lowest common ancestor, keeping `n`'s side.
        let (mut side, mut x) = (n, n);
        loop {
            if let Some(i) = chain_o.iter().position(|&c| c == x) {
                // `n` on the failure's own chain (or inside it): not a new start.
                if x == n || i == 0 {
                    return true;
                }
                return self.follows(chain_o[i - 1], side);
            }
            let Some(p) = self.plan.node(x).parent else {
                return false;
            };
            side = x;
            x = p;
        }
    }

    /// Whether `to` is reachable from `from` through precedence constraints.
    fn follows(&self, from: NodeId, to: NodeId) -> bool {
        let mut seen = HashSet::new();
        let mut stack = self.plan.node(from).succs.clone();
        while let Some(s) = stack.pop() {
            if s == to {
                return true;
            }
            if seen.insert(s) {
                stack.extend(self.plan.node(s).succs.iter().copied());
            }
        }
        false
    }

    /// Which execution of task `n` is starting: the checkpoint, the loops'
    /// current iterations, and the records that completed or forgot it or a
    /// container around it (see [`Execution`]).
    fn execution(&self, n: NodeId) -> Execution {
        let counts = &self.resume.record_counts;
        let mut iterations = Vec::new();
        let mut generation = counts.get(&self.plan.node(n).path).copied().unwrap_or(0);
        for a in self.plan.ancestors(n) {
            let node = self.plan.node(a);
            if let Some(c) = counts.get(&node.path) {
                generation = generation.saturating_add(*c);
            }
            let rt = &self.rt[a.index()];
            match &node.kind {
                NodeKind::Foreach { .. } => iterations.push((
                    node.path.clone(),
                    rt.current_key.clone().unwrap_or_default(),
                )),
                NodeKind::ForLoop(_) => {
                    iterations.push((node.path.clone(), format!("#{}", rt.iteration)));
                }
                _ => {}
            }
        }
        iterations.reverse();
        Execution {
            owner: self.resume.owner.clone(),
            checkpoint: self
                .resume
                .checkpoint_id
                .clone()
                .unwrap_or_else(|| self.tx_prefix.clone()),
            path: self.plan.node(n).path.clone(),
            iterations,
            generation,
        }
    }

    fn halted_above(&self, n: NodeId) -> bool {
        self.plan.ancestors(n).any(|a| self.rt[a.index()].halted)
    }

    // ----- starting -----

    fn begin(&mut self, n: NodeId) {
        if self.stopping || self.halted_above(n) {
            return;
        }
        if !self.enabled_by_failures(n) {
            self.set_terminal(n, State::NotRun);
            return;
        }
        if !self.flush() {
            return;
        }
        let node = self.plan.node(n);
        if node.recordable
            && let Some(&o) = self.resume.restore.get(&n)
        {
            // Its descendants are restored with it; it becomes terminal below.
            if !node.children.is_empty() {
                for d in self.plan.subtree(n).into_iter().skip(1) {
                    self.rt[d.index()].state = State::Restored(o);
                    self.count_restored_failure(d);
                }
            }
            self.count_restored_failure(n);
            self.reporter.event(&Event::Restored {
                node: n,
                outcome: o,
            });
            self.set_terminal(n, State::Restored(o));
            return;
        }
        // Property expressions, evaluated just before it runs.
        let mut props = HashMap::new();
        if !node.prop_exprs.is_empty() {
            self.rt[n.index()].start_time = Some(now_civil());
            for (name, e) in &node.prop_exprs {
                let env = self.env_for(n, None);
                match e.eval(&env) {
                    Ok(v) => {
                        props.insert(name.clone(), v);
                    }
                    Err(err) => {
                        self.rt[n.index()].props = Arc::new(props);
                        let msg = format!("property expression `{name}` failed: {err}");
                        self.rt[n.index()].state = State::Running;
                        self.finish_task(n, Err(msg), Duration::ZERO);
                        return;
                    }
                }
            }
        }
        let disabled = node.disabled || matches!(props.get("disabled"), Some(Value::Bool(true)));
        self.rt[n.index()].props = Arc::new(props);
        if disabled {
            self.reporter.event(&Event::Finished {
                node: n,
                status: Status::Disabled,
                duration: Duration::ZERO,
                error: None,
            });
            self.set_terminal(n, State::Disabled);
            return;
        }
        if let Some(e) = self.fire(HandlerEvent::OnPreExecute, n, 0, "") {
            // Its own on_pre_execute handler failed: it fails without running.
            self.rt[n.index()].state = State::Running;
            self.finish_task(n, Err(e), Duration::ZERO);
            return;
        }
        if self.stopping || self.halted_above(n) {
            // A handler above failed and stopped what it holds.
            return;
        }
        match &node.kind {
            NodeKind::Task { action, .. } => {
                if action.inline() || self.running < self.max_concurrent {
                    self.spawn(n);
                } else {
                    self.rt[n.index()].state = State::Queued;
                    self.queue.push_back(n);
                }
            }
            _ => self.start_container(n),
        }
    }

    fn start_queued(&mut self) -> bool {
        if self.running >= self.max_concurrent {
            return false;
        }
        let Some(n) = self.queue.pop_front() else {
            return false;
        };
        // The journal failing here stops the run: the task never starts, and
        // its container must learn that, or it would wait for it forever.
        if self.stopping || self.halted_above(n) || !self.flush() {
            self.rt[n.index()].state = State::Pending;
            if let Some(p) = self.plan.node(n).parent {
                self.agenda.push_back(Work::ChildDone(p));
            }
            return true;
        }
        if !self.enabled_by_failures(n) {
            self.set_terminal(n, State::NotRun);
            return true;
        }
        self.spawn(n);
        true
    }

    fn spawn(&mut self, n: NodeId) {
        let node = self.plan.node(n);
        let NodeKind::Task { action, .. } = &node.kind else {
            return;
        };
        let error = self.failed_pred_error(n);
        if node.starts_transaction {
            self.rt[n.index()].tx = Some(self.new_scope(n));
        }
        let tx = self.tx_for(n);
        let execution = self.execution(n);
        let reruns_whole = self.reruns_whole(n);
        let rt = &mut self.rt[n.index()];
        rt.attempt += 1;
        rt.state = State::Running;
        rt.started = Some(Instant::now());
        rt.start_time = Some(now_civil());
        rt.timed_out = false;
        rt.stop_reason = None;
        let token = CancelToken::new();
        rt.cancel = Some(token.clone());
        rt.deadline = node.timeout.map(|t| Instant::now() + t);
        rt.heartbeat = Some(Instant::now() + HEARTBEAT);
        let attempt = rt.attempt;
        self.reporter.event(&Event::Started { node: n, attempt });
        // The tests' way to stop a run while a given task runs (`task-start@N`).
        checkflow_plan::failpoint("task-start");
        let cx = ThreadCx {
            store: self.store.clone(),
            tx: self.tx.clone(),
            node: n,
            task_name: node.name.clone(),
            start: rt.start_time.unwrap_or_else(now_civil),
            error,
            unit: self.units[n.index()],
            reruns_whole,
            txn: tx,
            props: rt.props.clone(),
            cancel: token,
            dir: self.plan.package.dir.clone(),
            processes: self
                .processes
                .as_ref()
                .map(|p| (p.clone(), node.path.clone())),
            execution,
        };
        let action = action.clone();
        if action.inline() {
            let t0 = Instant::now();
            let mut cx = cx;
            let result = action.run(&mut cx).map_err(|e| e.message);
            self.results.push_back(TaskDone {
                node: n,
                result,
                elapsed: t0.elapsed(),
                inline: true,
            });
            return;
        }
        self.running += 1;
        self.busy.insert(n);
        let tx = self.tx.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("task-{}", n.0))
            .spawn(move || {
                let t0 = Instant::now();
                let mut cx = cx;
                let result =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| action.run(&mut cx)))
                        .unwrap_or_else(|_| {
                            Err(TaskError::new(
                                "the task panicked (a bug in checkflow; please report it)",
                            ))
                        })
                        .map_err(|e| e.message);
                let _ = tx.send(Msg::Done(TaskDone {
                    node: n,
                    result,
                    elapsed: t0.elapsed(),
                    inline: false,
                }));
            });
        if let Err(e) = spawned {
            self.results.push_back(TaskDone {
                node: n,
                result: Err(format!("cannot start a thread: {e}")),
                elapsed: Duration::ZERO,
                inline: false,
            });
        }
    }

    // ----- results -----

    fn on_result(&mut self, r: TaskDone) {
        if !r.inline {
            self.running = self.running.saturating_sub(1);
        }
        let n = r.node;
        let node = self.plan.node(n);
        let rt = &mut self.rt[n.index()];
        rt.runs += 1;
        let mut result = r.result;
        if let Some(reason) = rt.stop_reason.take() {
            // Stopped by the engine: part of the failure that stopped it.
            rt.chain = true;
            result = Err(reason);
        }
        if let Err(e) = &result {
            rt.last_error = Some(e.clone());
            if self.cancelled {
                rt.total += r.elapsed;
                self.busy.remove(&n);
                self.reporter.event(&Event::Finished {
                    node: n,
                    status: Status::Cancelled,
                    duration: r.elapsed,
                    error: Some(e.clone()),
                });
                self.set_terminal(n, State::Cancelled);
                return;
            }
            if rt.attempt <= node.retries && !self.stopping {
                rt.total += r.elapsed;
                let delay = node.retry_delay;
                rt.state = State::Waiting;
                rt.retry_at = Some(Instant::now() + delay);
                self.busy.insert(n);
                let attempt = rt.attempt;
                self.reporter.event(&Event::Retrying {
                    node: n,
                    attempt,
                    error: e.clone(),
                    delay,
                });
                return;
            }
        }
        self.busy.remove(&n);
        self.finish_task(n, result, r.elapsed);
    }

    fn finish_task(&mut self, n: NodeId, result: Result<(), String>, elapsed: Duration) {
        let node = self.plan.node(n);
        let mut result = result;
        if let Some(e) = self.rt[n.index()].handler_error.take()
            && result.is_ok()
        {
            result = Err(e);
        }
        let mut outcome = if result.is_ok() {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        if let Some(f) = node.force_result {
            outcome = forced(f);
        }
        let mut error = result.err();
        // One measurement for the log line and the summary: the task's own
        // time (measured where it ran), its handlers, and its commit.
        let settling = Instant::now();
        // Its handlers run before its commit: one that fails makes it fail,
        // and a failure must roll back, never follow a commit.
        if outcome == Outcome::Failure {
            let code = if self.rt[n.index()].timed_out {
                codes::TIMEOUT
            } else {
                codes::FAILED
            };
            let msg = error.clone().unwrap_or_else(|| FORCED.into());
            self.fire_failure(n, code, &msg);
        }
        if let Some(e) = self.fire_post_execute(n, outcome) {
            outcome = Outcome::Failure;
            error = Some(e);
        }
        if let Err(e) = self.settle_tx(n, outcome) {
            self.fire_failure(n, codes::COMMIT, &e);
            outcome = Outcome::Failure;
            error = Some(e);
        }
        let duration = elapsed + settling.elapsed();
        self.rt[n.index()].total += duration;
        self.reporter.event(&Event::Finished {
            node: n,
            status: State::Done(outcome).status(),
            duration,
            error: error.clone(),
        });
        if outcome == Outcome::Failure {
            let msg = error.unwrap_or_else(|| FORCED.into());
            self.rt[n.index()].last_error = Some(msg.clone());
            self.fail(n, &msg);
        }
        self.complete(n, outcome, duration);
    }

    // ----- event handlers -----

    /// Fires `event` for `source`: its own handler for that event, then each
    /// ancestor's up to the package, until one sets `System::Propagate` to
    /// false. Handlers run here, before anything else moves: the executable
    /// waits for them. A failed handler counts as an error of the executable
    /// it is attached to; the error of `source`'s own is returned, for the
    /// caller to fail it with. No handler runs once the run is interrupted.
    fn fire(
        &mut self,
        event: HandlerEvent,
        source: NodeId,
        code: i32,
        description: &str,
    ) -> Option<String> {
        if self.cancelled || !self.any_handlers {
            return None;
        }
        let plan = self.plan;
        let mut own = None;
        for a in std::iter::once(source).chain(plan.ancestors(source)) {
            let Some(handler) = plan.node(a).handlers.as_ref().and_then(|h| h.get(event)) else {
                continue;
            };
            let (failed, propagate) =
                self.run_handler(handler, event, a, source, code, description);
            if self.interrupt.load(Ordering::SeqCst) {
                // Interrupted while it ran: the run stops as on any signal.
                // What the handler was for ends as it would have without
                // it (handlers are never recorded, so none is owed later).
                self.cancel_run();
                break;
            }
            if let Some(msg) = failed {
                let msg = format!("its {} handler failed: {msg}", event.key());
                if a == source {
                    own = Some(msg);
                } else {
                    self.handler_failed(a, msg);
                }
            }
            if !propagate || self.cancelled {
                break;
            }
        }
        own
    }

    /// OnError, then OnTaskFailed, for an executable that fails with `msg`.
    /// Its own handlers failing add errors to one it already has.
    fn fire_failure(&mut self, n: NodeId, code: i32, msg: &str) {
        for event in [HandlerEvent::OnError, HandlerEvent::OnTaskFailed] {
            if let Some(e) = self.fire(event, n, code, msg) {
                self.errors.push(format!("{}: {e}", self.label(n)));
            }
        }
    }

    /// OnPostExecute for an executable ending with `outcome`: the error that
    /// fails it if its own handler failed (the failure events fire for it).
    fn fire_post_execute(&mut self, n: NodeId, outcome: Outcome) -> Option<String> {
        let e = self.fire(HandlerEvent::OnPostExecute, n, 0, "")?;
        if outcome == Outcome::Failure {
            self.errors.push(format!("{}: {e}", self.label(n)));
            return None;
        }
        self.fire_failure(n, codes::HANDLER, &e);
        Some(e)
    }

    /// A handler attached to `a` failed while `a` runs (for a descendant's
    /// event): one more error of `a`'s, which fails it at its `max_errors`.
    fn handler_failed(&mut self, a: NodeId, msg: String) {
        let rt = &mut self.rt[a.index()];
        if rt.state.is_terminal() || rt.halted {
            self.errors.push(format!("{}: {msg}", self.label(a)));
            return;
        }
        rt.errors += 1;
        if rt.errors >= self.plan.node(a).max_errors {
            rt.last_error = Some(msg.clone());
            self.fail(a, &msg);
        } else {
            self.errors.push(format!("{}: {msg}", self.label(a)));
        }
    }

    /// Runs one handler to its end, on a copy of the variables with the
    /// event's system values set; the variables it changes are copied back.
    /// Returns its error if it failed, and whether the event propagates.
    fn run_handler(
        &mut self,
        handler: &Plan,
        event: HandlerEvent,
        attached: NodeId,
        source: NodeId,
        code: i32,
        description: &str,
    ) -> (Option<String>, bool) {
        let vars = &handler.vars;
        let before = self.store.snapshot();
        let mut initial = before.clone();
        let source_node = self.plan.node(source);
        for (var, value) in [
            (SystemVar::SourceName, Value::WStr(source_node.name.clone())),
            (SystemVar::SourceId, Value::WStr(source_node.path.clone())),
            (SystemVar::ErrorCode, Value::I4(code)),
            (SystemVar::ErrorDescription, Value::WStr(description.into())),
            (SystemVar::Propagate, Value::Bool(true)),
        ] {
            initial[vars.system_slot(var) as usize] = VarValue::Scalar(value);
        }
        let store = Arc::new(VarStore::new(Arc::new(vars.clone()), initial));
        let title = format!("{} handler of {}", event.key(), self.label(attached));
        let about = if source == attached {
            String::new()
        } else {
            format!(" for {}", self.label(source))
        };
        self.reporter.event(&Event::Log {
            node: attached,
            level: LogLevel::Info,
            line: format!("{title}{about}: started"),
        });
        self.handler_seq += 1;
        let opts = RunOptions {
            max_concurrent: handler.package.max_concurrent,
            resume: Resume::default(),
            initial: Vec::new(),
            interrupt: self.interrupt.clone(),
            tx_prefix: format!("{}:handler{}", self.tx_prefix, self.handler_seq),
            processes: None,
        };
        let mut reporter = HandlerReporter {
            inner: &mut *self.reporter,
            handler,
            attached,
            key: event.key(),
        };
        let result = run_on(handler, store.clone(), opts, &mut NoRecorder, &mut reporter);
        let after = store.snapshot();
        let unit = self.units[source.index()];
        for (slot, (old, new)) in before.iter().zip(&after).enumerate() {
            if old != new && vars.decls[slot].system.is_none() {
                self.store.set(slot as u32, new.clone(), unit);
            }
        }
        let propagate = !matches!(
            after[vars.system_slot(SystemVar::Propagate) as usize],
            VarValue::Scalar(Value::Bool(false))
        );
        let failed = match result.outcome {
            PackageOutcome::Success => None,
            PackageOutcome::Cancelled => Some("interrupted".to_string()),
            PackageOutcome::Failure => Some(
                result
                    .errors
                    .first()
                    .cloned()
                    .unwrap_or_else(|| "it failed".into()),
            ),
        };
        self.reporter.event(&Event::Log {
            node: attached,
            level: if failed.is_some() {
                LogLevel::Warn
            } else {
                LogLevel::Info
            },
            line: match &failed {
                None => format!("{title}{about}: succeeded"),
                Some(e) => format!("{title}{about}: failed: {e}"),
            },
        });
        (failed, propagate)
    }

    /// An executable as messages name it: its path, or the package's name.
    fn label(&self, n: NodeId) -> String {
        if n == Plan::ROOT {
            self.plan.package.name.clone()
        } else {
            self.plan.node(n).path.clone()
        }
    }

    /// Records (when allowed) and marks the executable done.
    fn complete(&mut self, n: NodeId, outcome: Outcome, duration: Duration) {
        let node = self.plan.node(n);
        if node.parent.is_some() && node.recordable && !self.rt[n.index()].chain {
            let vars = self.store.take_dirty(n);
            self.pending_records.push(Record::Completed {
                node: n,
                outcome,
                duration,
                vars,
            });
            self.push_discards(n);
        }
        self.set_terminal(n, State::Done(outcome));
    }

    fn set_terminal(&mut self, n: NodeId, state: State) {
        debug_assert!(
            self.rt[n.index()].state.can_move_to(state) || self.rt[n.index()].state == state,
            "{:?} -> {state:?}",
            self.rt[n.index()].state
        );
        let was_open = !self.rt[n.index()].state.is_terminal();
        if was_open && let State::Done(o) = state {
            self.rt[n.index()].ended.add(o);
        }
        self.rt[n.index()].state = state;
        if was_open && let Some(p) = self.plan.node(n).parent {
            let open = &mut self.rt[p.index()].open;
            *open = open.saturating_sub(1);
        }
        let node = self.plan.node(n);
        for &s in &node.succs {
            self.agenda.push_back(Work::Check(s));
        }
        if let Some(p) = node.parent {
            self.agenda.push_back(Work::ChildDone(p));
        }
    }

    // ----- failures -----

    /// Whether a restart reruns `n` with the whole atomic unit around it: its
    /// unit is neither itself nor a loop that records its iterations.
    fn reruns_whole(&self, n: NodeId) -> bool {
        let unit = self.units[n.index()];
        unit != n
            && !matches!(
                self.plan.node(unit).kind,
                NodeKind::Foreach {
                    checkpoint_iterations: true,
                    ..
                }
            )
    }

    /// The files `unit`'s tasks asked to remove, after the record just pushed.
    fn push_discards(&mut self, unit: NodeId) {
        if self.discards.is_empty() {
            return;
        }
        let (mine, rest) = std::mem::take(&mut self.discards)
            .into_iter()
            .partition(|(u, _)| *u == unit);
        self.discards = rest;
        let paths: Vec<PathBuf> = mine.into_iter().map(|(_, p)| p).collect();
        if !paths.is_empty() {
            self.pending_records.push(Record::Discard { paths });
        }
    }

    /// A new transaction for `n`, with a marker unique to this run.
    fn new_scope(&mut self, n: NodeId) -> Arc<TxScope> {
        self.tx_seq += 1;
        let path = &self.plan.node(n).path;
        Arc::new(TxScope::new(
            path.clone(),
            format!("{}:{}:{}", self.tx_prefix, self.tx_seq, path),
        ))
    }

    /// The transaction `n` runs in: its own, or the nearest transacted container's.
    fn tx_for(&self, n: NodeId) -> Option<Arc<TxScope>> {
        if !self.plan.node(n).transacted {
            return None;
        }
        std::iter::once(n)
            .chain(self.plan.ancestors(n))
            .find(|a| self.plan.node(*a).starts_transaction)
            .and_then(|a| self.rt[a.index()].tx.clone())
    }

    /// Ends the transaction `n` started, if any: rolled back unless `outcome`
    /// is a success or completion; otherwise the intent to commit is made
    /// durable, then the databases commit. A failed commit is the error.
    ///
    /// A run being cancelled does not roll back a unit whose every part
    /// finished: it commits and is recorded like any executable that
    /// finished before the signal (rolling it back while recording it as
    /// done would lose its work for good). The steps and why each crash
    /// point between them is safe: docs/design/commit-protocols.md §1.
    fn settle_tx(&mut self, n: NodeId, outcome: Outcome) -> Result<(), String> {
        let Some(scope) = self.rt[n.index()].tx.take() else {
            return Ok(());
        };
        if outcome == Outcome::Failure {
            for e in scope.rollback() {
                self.reporter.event(&Event::Warning {
                    message: format!("{}: {e}", self.plan.node(n).path),
                });
            }
            return Ok(());
        }
        let connections = scope.keys();
        if connections.is_empty() {
            return Ok(());
        }
        if self.plan.node(n).recordable {
            // The variables its completion will carry ride with the intent: a
            // restart that finds the commit made restores them with it.
            let vars = self.store.peek_dirty(n);
            self.pending_records.push(Record::TxCommitting {
                node: n,
                marker: scope.marker().to_string(),
                connections,
                vars,
            });
            if !self.flush() {
                scope.rollback();
                return Err(
                    "the checkpoint could not record the intent to commit; rolled back".into(),
                );
            }
            checkflow_plan::failpoint("tx-after-intent");
        }
        let committed = scope.commit();
        if committed.is_ok() {
            checkflow_plan::failpoint("tx-after-commit");
        }
        committed
    }

    /// An executable failed: count errors up the tree, apply FailParentOnFailure
    /// and FailPackageOnFailure, and mark the chain if the package failed.
    fn fail(&mut self, n: NodeId, msg: &str) {
        let label = self.label(n);
        self.errors.push(format!("{label}: {msg}"));
        let mut cascade = Vec::new();
        let reached_limit = self.fail_rec(n, &mut cascade);
        // Not recorded: the chain that failed the package, and any failure
        // inside a container on that chain (the container reruns, so must its
        // failed children) or caused by the engine stopping the task (its
        // container timed out). A failure after the package has already
        // failed (a parallel branch still running when it stopped) that
        // would have failed it is not recorded either: its cascade stops at
        // the package, which failed already, and a restart must run it again.
        let inside_chain = self.rt[n.index()].chain
            || self
                .plan
                .ancestors(n)
                .any(|a| a != Plan::ROOT && self.rt[a.index()].chain);
        // A failure that brought a container to its `max_errors` is on the
        // chain too: that container fails once the failure's paths end.
        if cascade.contains(&Plan::ROOT) || inside_chain || reached_limit {
            for c in cascade {
                self.rt[c.index()].chain = true;
            }
        }
    }

    /// Fails `n` and what its failure fails at once, into `cascade`. `true`
    /// if the failure brought a container to its `max_errors`, or failed (or
    /// would have failed, had it not failed already) the package through
    /// `fail_package_on_failure`.
    fn fail_rec(&mut self, n: NodeId, cascade: &mut Vec<NodeId>) -> bool {
        cascade.push(n);
        let node = self.plan.node(n);
        if node.kind.is_container() {
            self.rt[n.index()].halted = true;
        }
        if n == Plan::ROOT {
            self.stop();
            return false;
        }
        let mut reached = false;
        let ancestors: Vec<NodeId> = self.plan.ancestors(n).collect();
        for a in ancestors {
            let rt = &mut self.rt[a.index()];
            rt.errors += 1;
            if rt.errors >= self.plan.node(a).max_errors {
                // As SSIS: the count reaching the limit does not cut off the
                // paths this failure enables; the container fails when they
                // end (`end_container`). A container that already failed
                // (the package stopping, say) would have failed by it.
                if !rt.halted {
                    rt.failing.push(n);
                }
                reached = true;
            }
        }
        if node.fail_parent
            && let Some(p) = node.parent
            && !self.rt[p.index()].halted
        {
            reached |= self.fail_rec(p, cascade);
        }
        if node.fail_package {
            self.restart_point = true;
            reached = true;
            if !self.rt[0].halted {
                self.fail_rec(Plan::ROOT, cascade);
            }
        }
        reached
    }

    /// A restored failure counts against `max_errors` as it did in the run
    /// that recorded it: one error for every container above it. It raised
    /// no container to its limit then (it would not have been recorded), so
    /// nothing fails now; a failure of this run adds to the count.
    fn count_restored_failure(&mut self, n: NodeId) {
        if !self.resume.restored_failures.contains(&n) {
            return;
        }
        let ancestors: Vec<NodeId> = self.plan.ancestors(n).collect();
        for a in ancestors {
            self.rt[a.index()].errors += 1;
        }
    }

    /// The package stops: nothing new starts; what runs finishes.
    fn stop(&mut self) {
        if self.stopping {
            return;
        }
        self.stopping = true;
        self.rt[0].halted = true;
        // Queued tasks never started.
        while let Some(q) = self.queue.pop_front() {
            self.rt[q.index()].state = State::Pending;
        }
        // Let every running container notice (deepest first).
        for i in (0..self.rt.len()).rev() {
            if self.rt[i].state == State::Active {
                self.agenda.push_back(Work::ChildDone(NodeId(i as u32)));
            }
        }
    }

    fn cancel_run(&mut self) {
        self.cancelled = true;
        self.reporter.event(&Event::Warning {
            message: "interrupted: stopping running tasks; what finished is kept".into(),
        });
        self.stop();
        for n in self.busy.clone() {
            let rt = &mut self.rt[n.index()];
            if let Some(t) = &rt.cancel {
                t.cancel();
            }
            if rt.state == State::Waiting {
                self.busy.remove(&n);
                self.reporter.event(&Event::Finished {
                    node: n,
                    status: Status::Cancelled,
                    duration: Duration::ZERO,
                    error: None,
                });
                self.set_terminal(n, State::Cancelled);
            }
        }
    }

    /// Writes pending records; `false` if the journal failed (the run stops).
    fn flush(&mut self) -> bool {
        if self.journal_error.is_some() {
            return false;
        }
        if self.pending_records.is_empty() {
            return true;
        }
        let batch = std::mem::take(&mut self.pending_records);
        match self.recorder.record(batch) {
            Ok(()) => true,
            Err(e) => {
                self.errors.push(format!("checkpoint: {e}"));
                self.journal_error = Some(e);
                self.stop();
                for n in self.busy.clone() {
                    if let Some(t) = &self.rt[n.index()].cancel {
                        t.cancel();
                    }
                }
                false
            }
        }
    }

    // ----- containers -----

    fn start_container(&mut self, n: NodeId) {
        let rt = &mut self.rt[n.index()];
        rt.state = State::Active;
        rt.started = Some(Instant::now());
        rt.start_time = Some(now_civil());
        rt.iteration = 0;
        rt.cut = false;
        rt.timed_out = false;
        rt.deadline = self.plan.node(n).timeout.map(|t| Instant::now() + t);
        let scope = self
            .plan
            .node(n)
            .starts_transaction
            .then(|| self.new_scope(n));
        let rt = &mut self.rt[n.index()];
        rt.tx = scope;
        // Its children are all pending until they start (a loop that fails to
        // enumerate never starts them).
        rt.open = self.plan.node(n).children.len();
        if rt.deadline.is_some() {
            self.busy.insert(n);
        }
        if n != Plan::ROOT {
            self.reporter.event(&Event::Started {
                node: n,
                attempt: 1,
            });
        }
        let node = self.plan.node(n);
        match &node.kind {
            NodeKind::ForLoop(l) => {
                if let Some(init) = &l.init {
                    let env = self.env_for(n, None);
                    if let Err(e) = eval_and_assign(init, &env) {
                        self.container_error(
                            n,
                            codes::FAILED,
                            format!("for_loop init failed: {e}"),
                        );
                        return;
                    }
                }
                self.next_iteration(n);
            }
            NodeKind::Foreach { enumerator, .. } => {
                let skip = self.resume.iterations.get(&n).cloned().unwrap_or_default();
                match enumerate(enumerator, &self.store, &self.plan.vars) {
                    Ok(items) => {
                        let (keep, skipped) = split_finished(items, &skip);
                        for key in skipped {
                            self.reporter
                                .event(&Event::IterationSkipped { node: n, key });
                        }
                        self.rt[n.index()].items = VecDeque::from(keep);
                        self.next_iteration(n);
                    }
                    Err(e) => self.container_error(n, codes::FAILED, e),
                }
            }
            _ => self.start_children(n),
        }
    }

    fn container_error(&mut self, n: NodeId, code: i32, msg: String) {
        self.rt[n.index()].last_error = Some(msg.clone());
        if let Some(e) = self.fire(HandlerEvent::OnError, n, code, &msg) {
            self.errors.push(format!("{}: {e}", self.label(n)));
        }
        self.fail(n, &msg);
        self.agenda.push_back(Work::ChildDone(n));
    }

    /// A container ran past its `timeout`: it fails at once, its running tasks
    /// are stopped, and nothing new starts inside it.
    fn container_timeout(&mut self, n: NodeId) {
        let t = self.plan.node(n).timeout.unwrap_or_default();
        let msg = format!("timed out after {}", humantime(t));
        let path = self.plan.node(n).path.clone();
        for d in self.plan.subtree(n).into_iter().skip(1) {
            let rt = &mut self.rt[d.index()];
            if rt.state == State::Running {
                rt.stop_reason = Some(format!("stopped: container \"{path}\" {msg}"));
                if let Some(tok) = &rt.cancel {
                    tok.cancel();
                }
            }
        }
        self.container_error(n, codes::TIMEOUT, msg);
    }

    fn start_children(&mut self, n: NodeId) {
        let node = self.plan.node(n);
        self.rt[n.index()].open = node.children.len();
        if node.children.is_empty() {
            self.agenda.push_back(Work::ChildDone(n));
        }
        for &c in &node.children {
            self.agenda.push_back(Work::Check(c));
        }
    }

    fn reset_children(&mut self, n: NodeId) {
        for d in self.plan.subtree(n).into_iter().skip(1) {
            let rt = &mut self.rt[d.index()];
            rt.state = State::Pending;
            rt.errors = 0;
            rt.halted = false;
            rt.chain = false;
            rt.attempt = 0;
            rt.timed_out = false;
            rt.stop_reason = None;
        }
    }

    /// Starts the next loop iteration, or completes the loop.
    fn next_iteration(&mut self, n: NodeId) {
        if self.stopping
            || self.rt[n.index()].halted
            || !self.rt[n.index()].failing.is_empty()
            || self.halted_above(n)
        {
            self.rt[n.index()].cut = true;
            self.end_container(n);
            return;
        }
        let node = self.plan.node(n);
        match &node.kind {
            NodeKind::ForLoop(l) => {
                let env = self.env_for(n, None);
                match l.eval.eval(&env) {
                    Ok(Value::Bool(true)) => {}
                    Ok(_) => {
                        self.end_container(n);
                        return;
                    }
                    Err(e) => {
                        self.container_error(
                            n,
                            codes::FAILED,
                            format!("for_loop eval failed: {e}"),
                        );
                        return;
                    }
                }
                self.rt[n.index()].current_key = None;
            }
            NodeKind::Foreach { map, .. } => {
                let Some((position, item)) = self.rt[n.index()].items.pop_front() else {
                    self.end_container(n);
                    return;
                };
                // Numbered by its place in the collection, so a restart that
                // skips finished items goes on from #3, not from #1 again.
                self.rt[n.index()].iteration = position - 1;
                for (slot, value) in map.iter().zip(item.values) {
                    let ty = &self.plan.vars.decl(*slot).ty;
                    match VarValue::from_written(&value, ty) {
                        Ok(v) => self.store.set(*slot, v, self.units[n.index()]),
                        Err(e) => {
                            let vn = self.plan.vars.decl(*slot).name.qualified();
                            self.container_error(
                                n,
                                codes::FAILED,
                                format!("item \"{}\" does not fit {vn}: {e}", item.key),
                            );
                            return;
                        }
                    }
                }
                self.rt[n.index()].current_key = Some(item.key);
            }
            _ => {
                self.end_container(n);
                return;
            }
        }
        let rt = &mut self.rt[n.index()];
        rt.iteration += 1;
        let (index, key) = (rt.iteration, rt.current_key.clone());
        self.reporter.event(&Event::Iteration {
            node: n,
            index,
            key,
        });
        self.reset_children(n);
        self.start_children(n);
    }

    fn child_done(&mut self, c: NodeId) {
        if self.rt[c.index()].state != State::Active {
            return;
        }
        let node = self.plan.node(c);
        let all_terminal = self.rt[c.index()].open == 0;
        debug_assert_eq!(
            self.rt[c.index()].open,
            node.children
                .iter()
                .filter(|ch| !self.rt[ch.index()].state.is_terminal())
                .count(),
            "open-children count of {}",
            node.path
        );
        let cut_short = self.stopping || self.rt[c.index()].halted || self.halted_above(c);
        // Only a container that is being cut short needs to know whether some
        // child is still busy; that happens once per stop, so a scan is fine.
        let any_busy = cut_short
            && !all_terminal
            && node
                .children
                .iter()
                .any(|ch| self.rt[ch.index()].state.is_busy());
        if all_terminal && !cut_short {
            self.iteration_done(c);
        } else if (all_terminal || cut_short) && !any_busy {
            // A for_loop stopped between iterations did not reach its end.
            if matches!(node.kind, NodeKind::ForLoop(_)) {
                self.rt[c.index()].cut = true;
            }
            self.end_container(c);
        }
    }

    /// Every child of the current iteration finished normally.
    fn iteration_done(&mut self, c: NodeId) {
        let node = self.plan.node(c);
        match &node.kind {
            NodeKind::Foreach {
                checkpoint_iterations,
                ..
            } => {
                if *checkpoint_iterations
                    && node.recordable
                    && self.rt[c.index()].failing.is_empty()
                    && let Some(key) = self.rt[c.index()].current_key.clone()
                {
                    let vars = self.store.take_dirty(c);
                    self.pending_records
                        .push(Record::Iteration { node: c, key, vars });
                    self.push_discards(c);
                }
                self.next_iteration(c);
            }
            NodeKind::ForLoop(l) => {
                if let Some(a) = &l.assign {
                    let env = self.env_for(c, None);
                    if let Err(e) = eval_and_assign(a, &env) {
                        self.container_error(
                            c,
                            codes::FAILED,
                            format!("for_loop assign failed: {e}"),
                        );
                        return;
                    }
                }
                self.next_iteration(c);
            }
            _ => self.end_container(c),
        }
    }

    /// The container is finished: with failure if it failed, cancelled if it was
    /// cut short by something else, success otherwise.
    fn end_container(&mut self, c: NodeId) {
        if self.rt[c.index()].state != State::Active {
            return;
        }
        self.busy.remove(&c);
        let node = self.plan.node(c);
        let rt = &self.rt[c.index()];
        let incomplete = node.children.iter().any(|ch| {
            !self.rt[ch.index()].state.is_terminal()
                || self.rt[ch.index()].state == State::Cancelled
        }) || !rt.items.is_empty()
            || rt.cut;
        let duration = rt.started.map(|s| s.elapsed()).unwrap_or_default();
        self.rt[c.index()].total += duration;
        self.rt[c.index()].runs += 1;
        let over_max = !self.rt[c.index()].failing.is_empty() && !self.rt[c.index()].halted;
        if c == Plan::ROOT {
            if over_max && !self.cancelled {
                let msg = self.max_errors_message(c);
                self.errors
                    .push(format!("{}: {msg}", self.plan.package.name));
                self.rt[0].last_error = Some(msg.clone());
                if let Some(e) = self.fire(HandlerEvent::OnError, c, codes::MAX_ERRORS, &msg) {
                    self.errors.push(format!("{}: {e}", self.label(c)));
                }
            }
            let mut o = if self.rt[0].halted || over_max || self.journal_error.is_some() {
                Outcome::Failure
            } else {
                Outcome::Success
            };
            if !self.cancelled {
                if o == Outcome::Failure {
                    let msg = self.rt[0]
                        .last_error
                        .clone()
                        .or_else(|| self.errors.first().cloned())
                        .unwrap_or_default();
                    if let Some(e) = self.fire(HandlerEvent::OnTaskFailed, c, codes::FAILED, &msg) {
                        self.errors.push(format!("{}: {e}", self.label(c)));
                    }
                }
                if let Some(e) = self.fire_post_execute(c, o) {
                    self.errors.push(format!("{}: {e}", self.label(c)));
                    o = Outcome::Failure;
                }
            }
            self.rt[0].state = if self.cancelled {
                State::Cancelled
            } else {
                State::Done(o)
            };
            return;
        }
        if over_max && !self.cancelled {
            // The paths its failures enabled have ended: now it fails, and
            // ends as a container halted by a failure does (`fail` halts it).
            let msg = self.max_errors_message(c);
            self.rt[c.index()].last_error = Some(msg.clone());
            if let Some(e) = self.fire(HandlerEvent::OnError, c, codes::MAX_ERRORS, &msg) {
                self.errors.push(format!("{}: {e}", self.label(c)));
            }
            self.fail(c, &msg);
        }
        if self.rt[c.index()].halted {
            if !self.cancelled {
                let msg = self.rt[c.index()].last_error.clone().unwrap_or_default();
                if let Some(e) = self.fire(HandlerEvent::OnTaskFailed, c, codes::FAILED, &msg) {
                    self.errors.push(format!("{}: {e}", self.label(c)));
                }
                self.fire_post_execute(c, Outcome::Failure);
            }
            let _ = self.settle_tx(c, Outcome::Failure);
            self.reporter.event(&Event::Finished {
                node: c,
                status: Status::Failed,
                duration,
                error: self.rt[c.index()].last_error.clone(),
            });
            self.complete(c, Outcome::Failure, duration);
            return;
        }
        if incomplete {
            let _ = self.settle_tx(c, Outcome::Failure);
            self.reporter.event(&Event::Finished {
                node: c,
                status: Status::Cancelled,
                duration,
                error: None,
            });
            self.set_terminal(c, State::Cancelled);
            return;
        }
        let mut outcome = Outcome::Success;
        if let Some(f) = node.force_result {
            outcome = forced(f);
        }
        let mut error = (outcome == Outcome::Failure).then(|| FORCED.to_string());
        if let Some(e) = &error
            && !self.cancelled
        {
            self.fire_failure(c, codes::FAILED, e);
        }
        if !self.cancelled
            && let Some(e) = self.fire_post_execute(c, outcome)
        {
            outcome = Outcome::Failure;
            error = Some(e);
        }
        if let Err(e) = self.settle_tx(c, outcome) {
            self.fire_failure(c, codes::COMMIT, &e);
            outcome = Outcome::Failure;
            error = Some(e);
        }
        self.reporter.event(&Event::Finished {
            node: c,
            status: State::Done(outcome).status(),
            duration,
            error: error.clone(),
        });
        if let Some(msg) = error.filter(|_| outcome == Outcome::Failure) {
            self.rt[c.index()].last_error = Some(msg.clone());
            self.fail(c, &msg);
        }
        self.complete(c, outcome, duration);
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

/// `System::ErrorCode` in an event handler, by what raised the error.
mod codes {
    /// The executable's own error (a task failing, a loop's expression).
    pub const FAILED: i32 = 1;
    /// It ran past its `timeout`.
    pub const TIMEOUT: i32 = 2;
    /// Its error count reached its `max_errors`.
    pub const MAX_ERRORS: i32 = 3;
    /// An event handler of its own failed.
    pub const HANDLER: i32 = 4;
    /// Its transaction could not commit.
    pub const COMMIT: i32 = 5;
}

/// Passes a handler's events on as lines of the executable it is attached
/// to: its executables are not the package's, and nothing records them.
struct HandlerReporter<'r> {
    inner: &'r mut dyn Reporter,
    handler: &'r Plan,
    attached: NodeId,
    key: &'static str,
}

impl Reporter for HandlerReporter<'_> {
    fn event(&mut self, ev: &Event) {
        let path = |n: &NodeId| self.handler.node(*n).path.as_str();
        let (level, text) = match ev {
            Event::Started { node, .. } if *node != Plan::ROOT => {
                (LogLevel::Info, format!("start {}", path(node)))
            }
            Event::Finished {
                node,
                status,
                duration,
                error,
            } if *node != Plan::ROOT => {
                let level = match status {
                    Status::Failed | Status::Cancelled => LogLevel::Warn,
                    _ => LogLevel::Info,
                };
                let mut line = format!("{status} {} ({})", path(node), humantime(*duration));
                if let Some(e) = error {
                    line.push_str(": ");
                    line.push_str(e);
                }
                (level, line)
            }
            Event::Log { node, level, line } => (*level, format!("{} | {line}", path(node))),
            Event::Retrying {
                node,
                attempt,
                error,
                ..
            } => (
                LogLevel::Warn,
                format!("retry {} after attempt {attempt}: {error}", path(node)),
            ),
            Event::Warning { message } => (LogLevel::Warn, message.clone()),
            _ => return,
        };
        self.inner.event(&Event::Log {
            node: self.attached,
            level,
            line: format!("{} | {text}", self.key),
        });
    }

    fn flush(&mut self) {
        self.inner.flush();
    }
}

fn forced(f: ForceResult) -> Outcome {
    match f {
        ForceResult::Success => Outcome::Success,
        ForceResult::Failure => Outcome::Failure,
        ForceResult::Completion => Outcome::Completion,
    }
}

/// `1m30s`-style text for a duration.
pub fn humantime(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        // The common case (a log line per task), digit by digit.
        let mut s = String::with_capacity(5);
        if ms >= 100 {
            s.push(char::from(b'0' + (ms / 100) as u8));
        }
        if ms >= 10 {
            s.push(char::from(b'0' + (ms / 10 % 10) as u8));
        }
        s.push(char::from(b'0' + (ms % 10) as u8));
        s.push_str("ms");
        return s;
    }
    let s = d.as_secs();
    let (h, m, s) = (s / 3600, (s / 60) % 60, s % 60);
    match (h, m) {
        (0, 0) => format!("{:.1}s", d.as_secs_f64()),
        (0, _) => format!("{m}m{s:02}s"),
        _ => format!("{h}h{m:02}m{s:02}s"),
    }
}

/// The context of a running task (worker thread or inline).
struct ThreadCx {
    store: Arc<VarStore>,
    tx: Sender<Msg>,
    node: NodeId,
    task_name: String,
    start: jiff::civil::DateTime,
    error: Option<String>,
    /// The unit whose record carries the variables this task changes.
    unit: NodeId,
    /// A restart reruns the atomic unit around it whole.
    reruns_whole: bool,
    txn: Option<Arc<TxScope>>,
    props: Arc<HashMap<String, Value>>,
    cancel: CancelToken,
    dir: PathBuf,
    /// The run's process scope and this task's path.
    processes: Option<(Arc<ProcessScope>, String)>,
    execution: Execution,
}

impl ThreadCx {
    fn task_env(&self) -> TaskEnv<'_> {
        TaskEnv {
            store: &self.store,
            task_name: &self.task_name,
            start: self.start,
            error: self.error.as_deref(),
            unit: self.unit,
        }
    }
}

impl Env for ThreadCx {
    fn value(&self, slot: u32) -> Value {
        self.task_env().value(slot)
    }
}

impl RunCx for ThreadCx {
    fn execution(&self) -> Execution {
        self.execution.clone()
    }

    fn get(&self, slot: u32) -> VarValue {
        match &self.store.table().decl(slot).expr {
            Some(_) => VarValue::Scalar(self.value(slot)),
            None => self.store.raw(slot),
        }
    }

    fn set(&mut self, slot: u32, value: VarValue) -> Result<(), TaskError> {
        self.store.set(slot, value, self.unit);
        Ok(())
    }

    fn eval(&self, expr: &Compiled) -> Result<Value, TaskError> {
        eval_and_assign(expr, &self.task_env()).map_err(TaskError::new)
    }

    fn env(&self) -> &dyn Env {
        self
    }

    fn property(&self, name: &str) -> Option<&Value> {
        self.props.get(name)
    }

    fn log(&self, level: LogLevel, line: &str) {
        let _ = self.tx.send(Msg::Log {
            node: self.node,
            level,
            line: line.to_string(),
        });
    }

    fn progress(&self, done: u64, total: Option<u64>, unit: &str) {
        let _ = self.tx.send(Msg::Progress {
            node: self.node,
            done,
            total,
            unit: unit.to_string(),
        });
    }

    fn cancel_token(&self) -> &CancelToken {
        &self.cancel
    }

    fn reruns_whole(&self) -> bool {
        self.reruns_whole
    }

    fn discard_when_recorded(&self, path: PathBuf) {
        let _ = self.tx.send(Msg::Discard {
            node: self.node,
            path,
        });
    }

    fn transaction(&self) -> Option<Arc<TxScope>> {
        self.txn.clone()
    }

    fn package_dir(&self) -> &Path {
        &self.dir
    }

    fn processes(&self) -> Option<(&ProcessScope, &str)> {
        self.processes
            .as_ref()
            .map(|(p, path)| (&**p, path.as_str()))
    }

    fn vars(&self) -> &VarTable {
        self.store.table()
    }
}
