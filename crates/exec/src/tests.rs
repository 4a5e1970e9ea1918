//! Executor tests with scripted fake tasks: no processes, no files.
//!
//! A `fake` task's `command` is its script: `ok`, `fail`, or `sleep:MS` /
//! `sleepfail:MS`. Every start and end goes to a shared log, so tests can
//! check exactly what ran, in which order, and with which results.

use super::*;
use checkflow_model::{LoadedPackage, TaskDef, parse};
use checkflow_plan::{Action, BuildCx, Plan, Registry, RunCx, TaskError, TaskType};
use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Log = Arc<Mutex<Vec<String>>>;

struct FakeType(Log);

impl TaskType for FakeType {
    fn name(&self) -> &'static str {
        "fake"
    }
    fn fields(&self) -> &'static [&'static str] {
        &["command"]
    }
    fn build(&self, def: &TaskDef, _cx: &mut BuildCx<'_>) -> Option<Arc<dyn Action>> {
        let script = def
            .process()
            .command
            .as_ref()
            .map(|c| c.value.clone())
            .unwrap_or_else(|| "ok".into());
        Some(Arc::new(Fake {
            name: def.name.value.clone(),
            script,
            log: self.0.clone(),
        }))
    }
}

struct Fake {
    name: String,
    script: String,
    log: Log,
}

impl Action for Fake {
    fn run(&self, cx: &mut dyn RunCx) -> Result<(), TaskError> {
        self.log
            .lock()
            .unwrap()
            .push(format!("start {}", self.name));
        let script = cx.prop_string("command", &self.script);
        let (kind, ms) = script.split_once(':').unwrap_or((script.as_str(), "0"));
        let ms: u64 = ms.parse().unwrap_or(0);
        let deadline = std::time::Instant::now() + Duration::from_millis(ms);
        while std::time::Instant::now() < deadline {
            if cx.cancel_token().is_cancelled() {
                self.log
                    .lock()
                    .unwrap()
                    .push(format!("cancelled {}", self.name));
                return Err(TaskError::new("cancelled"));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let ok = !kind.contains("fail");
        self.log
            .lock()
            .unwrap()
            .push(format!("{} {}", if ok { "ok" } else { "fail" }, self.name));
        if ok {
            Ok(())
        } else {
            Err(TaskError::new("scripted failure"))
        }
    }

    fn inline(&self) -> bool {
        self.script == "inline"
    }
}

fn plan_of(yaml: &str, log: &Log) -> Plan {
    plan_with(yaml, Box::new(FakeType(log.clone())))
}

/// Validates a test package with one task type registered.
fn plan_with(yaml: &str, task_type: Box<dyn TaskType>) -> Plan {
    let mut r = Registry::new();
    r.add(task_type);
    let text = format!("id: 0b6f4d1e-7c1a-4a8e-9a53-2d2f1f6e9c11\nname: t\n{yaml}");
    let def = parse(Path::new("t.yaml"), &text).expect("test package parses");
    let pkg = LoadedPackage {
        def,
        path: PathBuf::from("t.yaml"),
        dir: PathBuf::from("."),
        text,
    };
    checkflow_plan::validate(&pkg, &r).unwrap_or_else(|e| panic!("{e}"))
}

#[derive(Default)]
struct Collect {
    records: Vec<Record>,
    events: Vec<Event>,
}

impl Recorder for Collect {
    fn record(&mut self, batch: Vec<Record>) -> Result<(), RecordError> {
        self.records.extend(batch);
        Ok(())
    }
}

struct Events<'a>(&'a mut Vec<Event>);
impl Reporter for Events<'_> {
    fn event(&mut self, e: &Event) {
        self.0.push(e.clone());
    }
}

fn run_plan(plan: &Plan, resume: Resume) -> (RunResult, Collect) {
    let mut c = Collect::default();
    let initial = plan.vars.decls.iter().map(|d| d.initial.clone()).collect();
    let opts = RunOptions {
        max_concurrent: 4,
        resume,
        initial,
        interrupt: Arc::new(AtomicBool::new(false)),
        tx_prefix: "test".into(),
        processes: None,
    };
    let mut events = Vec::new();
    let r = run(plan, opts, &mut c, &mut Events(&mut events));
    c.events = events;
    (r, c)
}

fn recorded(plan: &Plan, c: &Collect) -> Recorded {
    let mut rec = Recorded::default();
    for r in &c.records {
        match r {
            Record::Completed { node, outcome, .. } => {
                let n = plan.node(*node);
                rec.completed
                    .insert(n.path.clone(), (*outcome, n.fingerprint.clone()));
            }
            Record::Iteration { node, key, .. } => {
                rec.iterations
                    .entry(plan.node(*node).path.clone())
                    .or_default()
                    .push(key.clone());
            }
            Record::TxCommitting { .. } | Record::Discard { .. } => {}
        }
    }
    rec
}

fn started(log: &Log) -> Vec<String> {
    log.lock()
        .unwrap()
        .iter()
        .filter_map(|l| l.strip_prefix("start ").map(String::from))
        .collect()
}

fn status(plan: &Plan, r: &RunResult, path: &str) -> Status {
    let id = plan.find(path).expect("path exists");
    r.summary
        .iter()
        .find(|s| s.node == id)
        .expect("in summary")
        .status
}

#[test]
fn sequence_stops_at_failure_and_records_only_what_finished() {
    let log = Log::default();
    let plan = plan_of(
        "tasks:\n  - {name: A, type: fake}\n  - {name: B, type: fake, command: fail, fail_package_on_failure: true}\n  - {name: C, type: fake}\n",
        &log,
    );
    let (r, c) = run_plan(&plan, Resume::default());
    assert_eq!(r.outcome, PackageOutcome::Failure);
    assert!(r.restart_point);
    assert_eq!(started(&log), ["A", "B"]);
    assert_eq!(status(&plan, &r, "C"), Status::NotRun);
    let rec = recorded(&plan, &c);
    assert_eq!(
        rec.completed.keys().collect::<Vec<_>>(),
        ["A"],
        "the failed restart point is not recorded"
    );

    // Restart: A is restored, B and C run.
    let log2 = Log::default();
    let plan2 = plan_of(
        "tasks:\n  - {name: A, type: fake}\n  - {name: B, type: fake, fail_package_on_failure: true}\n  - {name: C, type: fake}\n",
        &log2,
    );
    let res = resume(&plan2, &rec, &[], ChangedPolicy::Keep).expect("resume");
    let (r2, _) = run_plan(&plan2, res);
    assert_eq!(r2.outcome, PackageOutcome::Success);
    assert_eq!(started(&log2), ["B", "C"]);
    assert_eq!(status(&plan2, &r2, "A"), Status::Restored);
}

#[test]
fn failure_path_within_max_errors_is_recorded_and_taken() {
    let log = Log::default();
    let plan = plan_of(
        "max_errors: 5\ntasks:\n  - {name: A, type: fake, command: fail}\n  - {name: OnFail, type: fake, after: [{task: A, on: failure}]}\n  - {name: OnOk, type: fake, after: [A]}\n",
        &log,
    );
    let (r, c) = run_plan(&plan, Resume::default());
    assert_eq!(r.outcome, PackageOutcome::Success);
    assert_eq!(started(&log), ["A", "OnFail"]);
    assert_eq!(status(&plan, &r, "OnOk"), Status::NotRun);
    let rec = recorded(&plan, &c);
    assert_eq!(rec.completed.get("A").map(|x| x.0), Some(Outcome::Failure));
}

#[test]
fn default_max_errors_runs_the_failure_path_then_fails_the_package() {
    let log = Log::default();
    let plan = plan_of(
        "tasks:\n  - {name: A, type: fake, command: fail}\n  - {name: OnFail, type: fake, after: [{task: A, on: failure}]}\n  - {name: OnOk, type: fake, after: [A]}\n",
        &log,
    );
    let (r, c) = run_plan(&plan, Resume::default());
    assert_eq!(r.outcome, PackageOutcome::Failure);
    assert!(
        !r.restart_point,
        "no fail_package_on_failure: no restart point"
    );
    assert_eq!(
        started(&log),
        ["A", "OnFail"],
        "the failure path runs, as SSIS"
    );
    assert_eq!(status(&plan, &r, "OnOk"), Status::NotRun);
    let rec = recorded(&plan, &c);
    assert!(
        !rec.completed.contains_key("A"),
        "A reached the limit: on the failure chain"
    );
    assert_eq!(
        rec.completed.get("OnFail").map(|x| x.0),
        Some(Outcome::Success)
    );
    assert!(
        r.errors
            .iter()
            .any(|e| e.contains("the number of errors raised (1) reached the maximum allowed (1)")),
        "{:?}",
        r.errors
    );
}

#[test]
fn parallel_branch_finishes_and_is_recorded_when_the_other_fails() {
    let log = Log::default();
    let plan = plan_of(
        "flow: parallel\ntasks:\n  - {name: Slow, type: fake, command: 'sleep:80'}\n  - {name: Bad, type: fake, command: 'fail', fail_package_on_failure: true}\n  - {name: Later, type: fake, command: 'ok', after: [Slow, Bad]}\n",
        &log,
    );
    let (r, c) = run_plan(&plan, Resume::default());
    assert_eq!(r.outcome, PackageOutcome::Failure);
    let rec = recorded(&plan, &c);
    assert!(rec.completed.contains_key("Slow"));
    assert!(!rec.completed.contains_key("Bad"));
}

#[test]
fn fail_parent_reruns_the_task_not_skips_it() {
    let log = Log::default();
    let yaml = |cmd: &str| {
        format!(
            "tasks:\n  - name: S\n    type: sequence\n    fail_package_on_failure: true\n    tasks:\n      - {{name: T1, type: fake}}\n      - {{name: T2, type: fake, command: {cmd}, fail_parent_on_failure: true}}\n"
        )
    };
    let plan = plan_of(&yaml("fail"), &log);
    let (r, c) = run_plan(&plan, Resume::default());
    assert!(r.restart_point);
    let rec = recorded(&plan, &c);
    assert_eq!(rec.completed.keys().collect::<Vec<_>>(), ["S/T1"]);
    let log2 = Log::default();
    let plan2 = plan_of(&yaml("ok"), &log2);
    let (r2, _) = run_plan(
        &plan2,
        resume(&plan2, &rec, &[], ChangedPolicy::Keep).expect("resume"),
    );
    assert_eq!(r2.outcome, PackageOutcome::Success);
    assert_eq!(started(&log2), ["T2"]);
}

#[test]
fn foreach_children_are_not_recorded_unless_iterations_are() {
    for (ci, expect_iters) in [(false, 0), (true, 2)] {
        let log = Log::default();
        let plan = plan_of(
            &format!(
                "variables: {{ I: {{type: string}} }}\ntasks:\n  - name: L\n    type: foreach\n    checkpoint_iterations: {ci}\n    items: [a, b, c]\n    map: [User::I]\n    fail_package_on_failure: true\n    tasks:\n      - {{name: T, type: fake}}\n      - {{name: U, type: fake, expressions: {{command: '@[User::I] == \"c\" ? \"fail\" : \"ok\"'}}}}\n"
            ),
            &log,
        );
        let (r, c) = run_plan(&plan, Resume::default());
        assert_eq!(r.outcome, PackageOutcome::Failure);
        let rec = recorded(&plan, &c);
        assert!(
            rec.completed.is_empty(),
            "loop children are never recorded one by one"
        );
        assert_eq!(
            rec.iterations.get("L").map(|v| v.len()).unwrap_or(0),
            expect_iters
        );
        if ci {
            let res = resume(&plan, &rec, &[], ChangedPolicy::Keep).expect("resume");
            assert_eq!(
                res.iterations
                    .get(&plan.find("L").unwrap())
                    .map(|s| s.len()),
                Some(2)
            );
        }
    }
}

#[test]
fn for_loop_counts_and_restart_unit_reruns_whole() {
    let log = Log::default();
    let plan = plan_of(
        "variables: { i: {type: int32}, n: {type: int32} }\ntasks:\n  - name: L\n    type: for_loop\n    init: '@[User::i] = 0'\n    eval: '@[User::i] < 3'\n    assign: '@[User::i] = @[User::i] + 1'\n    tasks:\n      - {name: T, type: fake}\n  - name: U\n    type: sequence\n    restart_unit: true\n    fail_package_on_failure: true\n    tasks:\n      - {name: A, type: fake}\n      - {name: B, type: fake, command: fail}\n",
        &log,
    );
    let (r, c) = run_plan(&plan, Resume::default());
    assert_eq!(started(&log), ["T", "T", "T", "A", "B"]);
    assert!(r.restart_point);
    let rec = recorded(&plan, &c);
    assert_eq!(
        rec.completed.keys().collect::<Vec<_>>(),
        ["L"],
        "children of a restart unit are not recorded"
    );
}

#[test]
fn rerun_runs_the_named_task_and_what_follows() {
    let log = Log::default();
    let plan = plan_of(
        "tasks:\n  - {name: A, type: fake}\n  - {name: B, type: fake}\n  - {name: C, type: fake, command: fail, fail_package_on_failure: true}\n",
        &log,
    );
    let (_, c) = run_plan(&plan, Resume::default());
    let rec = recorded(&plan, &c);
    let res = resume(&plan, &rec, &["B".to_string()], ChangedPolicy::Keep).expect("resume");
    assert!(res.restore.contains_key(&plan.find("A").unwrap()));
    assert!(!res.restore.contains_key(&plan.find("B").unwrap()));
    assert_eq!(res.invalidate, ["B"]);
    assert_eq!(
        resume(&plan, &rec, &["Nope".into()], ChangedPolicy::Keep).unwrap_err(),
        ResumeError::UnknownRerun("Nope".into())
    );
}

#[test]
fn changed_definitions_keep_rerun_or_refuse() {
    let log = Log::default();
    let plan = plan_of(
        "tasks:\n  - {name: A, type: fake}\n  - {name: B, type: fake, command: fail, fail_package_on_failure: true}\n",
        &log,
    );
    let (_, c) = run_plan(&plan, Resume::default());
    let rec = recorded(&plan, &c);
    let changed = plan_of(
        "tasks:\n  - {name: A, type: fake, command: 'sleep:1'}\n  - {name: B, type: fake, fail_package_on_failure: true}\n",
        &log,
    );
    let keep = resume(&changed, &rec, &[], ChangedPolicy::Keep).expect("keep");
    assert_eq!(keep.restore.len(), 1);
    assert!(keep.warnings.iter().any(|w| w.contains("\"A\" changed")));
    let rerun = resume(&changed, &rec, &[], ChangedPolicy::Rerun).expect("rerun");
    assert!(rerun.restore.is_empty());
    assert_eq!(
        resume(&changed, &rec, &[], ChangedPolicy::Refuse).unwrap_err(),
        ResumeError::Changed(vec!["A".into()])
    );
    // A description is not part of what a task does.
    let described = plan_of(
        "tasks:\n  - {name: A, type: fake, description: new words}\n  - {name: B, type: fake, fail_package_on_failure: true}\n",
        &log,
    );
    assert!(resume(&described, &rec, &[], ChangedPolicy::Refuse).is_ok());
}

#[test]
fn timeout_and_retries() {
    let log = Log::default();
    let plan = plan_of(
        "max_errors: 9\nflow: parallel\ntasks:\n  - {name: Slow, type: fake, command: 'sleep:5000', timeout: 50ms}\n  - {name: Flaky, type: fake, command: fail, retries: 2, retry_delay: 1ms}\n",
        &log,
    );
    let (r, _) = run_plan(&plan, Resume::default());
    let slow = r
        .summary
        .iter()
        .find(|s| s.node == plan.find("Slow").unwrap())
        .unwrap();
    assert_eq!(slow.status, Status::Failed);
    assert!(
        slow.error.as_deref().unwrap_or("").contains("timed out"),
        "{:?}",
        slow.error
    );
    assert_eq!(
        started(&log).iter().filter(|n| *n == "Flaky").count(),
        3,
        "one run and two retries"
    );
}

#[test]
fn disabled_counts_as_success_and_force_result_replaces_the_result() {
    let log = Log::default();
    let plan = plan_of(
        "tasks:\n  - {name: A, type: fake, disabled: true}\n  - {name: B, type: fake, command: fail, force_result: success}\n  - {name: C, type: fake, force_result: failure}\n",
        &log,
    );
    let (r, _) = run_plan(&plan, Resume::default());
    assert_eq!(status(&plan, &r, "A"), Status::Disabled);
    assert_eq!(status(&plan, &r, "B"), Status::Succeeded);
    assert_eq!(status(&plan, &r, "C"), Status::Failed);
    assert_eq!(r.outcome, PackageOutcome::Failure);
    assert_eq!(started(&log), ["B", "C"]);
}

#[test]
fn max_concurrent_bounds_running_tasks() {
    let log = Log::default();
    let tasks: String = (0..8)
        .map(|i| format!("  - {{name: T{i}, type: fake, command: 'sleep:30'}}\n"))
        .collect();
    let plan = plan_of(&format!("flow: parallel\ntasks:\n{tasks}"), &log);
    let mut c = Collect::default();
    let initial = plan.vars.decls.iter().map(|d| d.initial.clone()).collect();
    let opts = RunOptions {
        max_concurrent: 3,
        resume: Resume::default(),
        initial,
        interrupt: Arc::new(AtomicBool::new(false)),
        tx_prefix: "test".into(),
        processes: None,
    };
    let mut ev = Vec::new();
    run(&plan, opts, &mut c, &mut Events(&mut ev));
    let mut running = 0i32;
    let mut peak = 0;
    for l in log.lock().unwrap().iter() {
        if l.starts_with("start") {
            running += 1
        } else {
            running -= 1
        }
        peak = peak.max(running);
    }
    assert!(peak <= 3, "peak {peak}");
    assert_eq!(c.records.len(), 8);
}

/// One random task: whether it fails, its constraints (predecessor, on), and or-logic.
type TaskSpec = (bool, Vec<(usize, u8)>, bool);

/// A random graph of fake tasks: each edge points to an earlier task.
#[derive(Debug, Clone)]
struct Spec {
    tasks: Vec<TaskSpec>,
}

fn spec() -> impl Strategy<Value = Spec> {
    (2usize..10).prop_flat_map(|n| {
        let task = |i: usize| {
            (
                any::<bool>(),
                proptest::collection::vec((0..i.max(1), 0u8..3), if i == 0 { 0..1 } else { 0..3 }),
                any::<bool>(),
            )
                .prop_map(move |(f, preds, or)| (f, if i == 0 { vec![] } else { preds }, or))
        };
        (0..n)
            .map(task)
            .collect::<Vec<_>>()
            .prop_map(|tasks| Spec { tasks })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn each_task_runs_at_most_once_and_only_after_its_constraints_hold(s in spec()) {
        let mut yaml = String::from("max_errors: 100\nflow: parallel\ntasks:\n");
        for (i, (fails, preds, or)) in s.tasks.iter().enumerate() {
            let mut after: Vec<String> = Vec::new();
            let mut seen = std::collections::HashSet::new();
            for (p, on) in preds {
                if seen.insert(*p) {
                    let on = ["success", "failure", "completion"][*on as usize];
                    after.push(format!("{{task: T{p}, on: {on}}}"));
                }
            }
            let after = if after.is_empty() { String::new() } else { format!(", after: [{}], after_logic: {}", after.join(", "), if *or {"or"} else {"and"}) };
            yaml.push_str(&format!("  - {{name: T{i}, type: fake, command: '{}'{after}}}\n", if *fails {"sleepfail:1"} else {"sleep:1"}));
        }
        let log = Log::default();
        let plan = plan_of(&yaml, &log);
        let (_r, _) = run_plan(&plan, Resume::default());
        let lines = log.lock().unwrap().clone();
        // Result of each task at each moment, in log order.
        let mut result: std::collections::HashMap<String, bool> = Default::default();
        let mut starts: std::collections::HashMap<String, u32> = Default::default();
        for l in &lines {
            let (what, name) = l.split_once(' ').unwrap();
            match what {
                "start" => {
                    *starts.entry(name.to_string()).or_default() += 1;
                    let i: usize = name[1..].parse().unwrap();
                    let (_, preds, or) = &s.tasks[i];
                    let mut uniq: Vec<(usize, u8)> = Vec::new();
                    for p in preds { if !uniq.iter().any(|u| u.0 == p.0) { uniq.push(*p) } }
                    let holds: Vec<bool> = uniq.iter().map(|(p, on)| match result.get(&format!("T{p}")) {
                        None => false,
                        Some(ok) => match on { 0 => *ok, 1 => !*ok, _ => true },
                    }).collect();
                    let ok = holds.is_empty() || if *or { holds.iter().any(|h| *h) } else { holds.iter().all(|h| *h) };
                    prop_assert!(ok, "{name} started before its constraints held: {lines:?}");
                }
                "ok" => { result.insert(name.to_string(), true); }
                "fail" => { result.insert(name.to_string(), false); }
                _ => {}
            }
        }
        for (n, c) in starts {
            prop_assert!(c == 1, "{n} ran {c} times");
        }
    }
}

#[test]
fn a_container_that_finished_is_recorded_even_while_the_package_stops() {
    let log = Log::default();
    let plan = plan_of(
        "flow: parallel\ntasks:\n  - name: S\n    type: sequence\n    tasks:\n      - {name: A, type: fake, command: 'sleep:60'}\n  - {name: Bad, type: fake, command: fail, fail_package_on_failure: true}\n  - name: L\n    type: for_loop\n    init: '@[User::i] = 0'\n    eval: '@[User::i] < 1000'\n    assign: '@[User::i] = @[User::i] + 1'\n    tasks:\n      - {name: T, type: fake, command: 'sleep:5'}\nvariables: { i: {type: int32} }\n",
        &log,
    );
    let (r, c) = run_plan(&plan, Resume::default());
    assert_eq!(r.outcome, PackageOutcome::Failure);
    assert_eq!(status(&plan, &r, "S"), Status::Succeeded);
    assert_eq!(
        status(&plan, &r, "L"),
        Status::Cancelled,
        "a loop cut short is not complete"
    );
    let rec = recorded(&plan, &c);
    assert!(rec.completed.contains_key("S") && rec.completed.contains_key("S/A"));
    assert!(!rec.completed.contains_key("L"));
}

#[test]
fn a_container_timeout_stops_its_tasks_and_fails_it() {
    let log = Log::default();
    let plan = plan_of(
        "tasks:\n  - name: S\n    type: sequence\n    timeout: 50ms\n    tasks:\n      - {name: Long, type: fake, command: 'sleep:5000'}\n      - {name: Next, type: fake}\n",
        &log,
    );
    let (r, c) = run_plan(&plan, Resume::default());
    assert_eq!(r.outcome, PackageOutcome::Failure);
    assert_eq!(status(&plan, &r, "S"), Status::Failed);
    assert_eq!(status(&plan, &r, "S/Next"), Status::NotRun);
    let s = r
        .summary
        .iter()
        .find(|x| x.node == plan.find("S").unwrap())
        .unwrap();
    assert!(
        s.error.as_deref().unwrap_or("").contains("timed out"),
        "{:?}",
        s.error
    );
    let long = r
        .summary
        .iter()
        .find(|x| x.node == plan.find("S/Long").unwrap())
        .unwrap();
    assert!(
        long.error
            .as_deref()
            .unwrap_or("")
            .contains("container \"S\" timed out"),
        "{:?}",
        long.error
    );
    assert!(log.lock().unwrap().contains(&"cancelled Long".to_string()));
    assert!(c.records.is_empty());
}

#[test]
fn a_failure_within_max_errors_while_the_package_stops_is_recorded() {
    let log = Log::default();
    let plan = plan_of(
        "flow: parallel\nmax_errors: 5\ntasks:\n  - {name: First, type: fake, command: fail, fail_package_on_failure: true}\n  - {name: Later, type: fake, command: 'sleepfail:60'}\n  - {name: Fine, type: fake, command: 'sleep:60'}\n",
        &log,
    );
    let (r, c) = run_plan(&plan, Resume::default());
    assert_eq!(r.outcome, PackageOutcome::Failure);
    let rec = recorded(&plan, &c);
    // docs/semantics.md §5.3: a failure that did not itself fail the package is recorded.
    assert_eq!(rec.completed.keys().collect::<Vec<_>>(), ["Fine", "Later"]);
    assert!(!rec.completed.contains_key("First"));
}

/// A task that joins its transaction with a resource logging commit/rollback.
struct TxType(Log);

impl TaskType for TxType {
    fn name(&self) -> &'static str {
        "txfake"
    }
    fn fields(&self) -> &'static [&'static str] {
        &["command"]
    }
    fn build(&self, def: &TaskDef, _cx: &mut BuildCx<'_>) -> Option<Arc<dyn Action>> {
        let fail = def
            .process()
            .command
            .as_ref()
            .is_some_and(|c| c.value == "fail");
        Some(Arc::new(TxTask {
            name: def.name.value.clone(),
            fail,
            log: self.0.clone(),
        }))
    }
}

struct TxTask {
    name: String,
    fail: bool,
    log: Log,
}

struct TxRes(Log);

impl checkflow_plan::TxResource for TxRes {
    fn commit(&mut self, marker: &str) -> Result<(), checkflow_plan::TxError> {
        self.0.lock().unwrap().push(format!(
            "commit {}",
            marker.split(':').next_back().unwrap_or("")
        ));
        Ok(())
    }
    fn rollback(&mut self) -> Result<(), checkflow_plan::TxError> {
        self.0.lock().unwrap().push("rollback".into());
        Ok(())
    }
    fn as_any(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

impl Action for TxTask {
    fn run(&self, cx: &mut dyn RunCx) -> Result<(), TaskError> {
        match cx.transaction() {
            Some(scope) => {
                let log = self.log.clone();
                scope.with("db", || Ok(Box::new(TxRes(log))), |_| Ok(()))?;
                self.log
                    .lock()
                    .unwrap()
                    .push(format!("{} in {}", self.name, scope.path()));
            }
            None => self
                .log
                .lock()
                .unwrap()
                .push(format!("{} alone", self.name)),
        }
        if self.fail {
            Err(TaskError::new("scripted failure"))
        } else {
            Ok(())
        }
    }
}

fn tx_plan(yaml: &str, log: &Log) -> Plan {
    plan_with(yaml, Box::new(TxType(log.clone())))
}

#[test]
fn a_transacted_container_commits_after_recording_its_intent_or_rolls_back() {
    let body = |second: &str| {
        format!(
            "tasks:\n  - name: T\n    type: sequence\n    transaction: required\n    fail_package_on_failure: true\n    tasks:\n      - {{name: A, type: txfake}}\n      - name: Inner\n        type: sequence\n        transaction: required\n        tasks:\n          - {{name: B, type: txfake, command: {second}}}\n      - {{name: C, type: txfake, transaction: not_supported}}\n"
        )
    };
    let log = Log::default();
    let plan = tx_plan(&body("ok"), &log);
    let (r, c) = run_plan(&plan, Resume::default());
    assert_eq!(r.outcome, PackageOutcome::Success);
    assert_eq!(
        *log.lock().unwrap(),
        ["A in T", "B in T", "C alone", "commit T"],
        "Inner joins T's transaction"
    );
    let kinds: Vec<String> = c
        .records
        .iter()
        .map(|r| match r {
            Record::TxCommitting { node, .. } => format!("intent {}", plan.node(*node).path),
            Record::Completed { node, .. } => format!("done {}", plan.node(*node).path),
            Record::Iteration { .. } => "iteration".into(),
            Record::Discard { .. } => "discard".into(),
        })
        .collect();
    assert_eq!(
        kinds,
        ["intent T", "done T"],
        "children of a transacted container are not recorded"
    );

    let log = Log::default();
    let plan = tx_plan(&body("fail"), &log);
    let (r, c) = run_plan(&plan, Resume::default());
    assert_eq!(r.outcome, PackageOutcome::Failure);
    assert_eq!(*log.lock().unwrap(), ["A in T", "B in T", "rollback"]);
    assert!(c.records.is_empty());
}

#[derive(Default)]
struct CountFlushes {
    batches: Vec<usize>,
}

impl Recorder for CountFlushes {
    fn record(&mut self, batch: Vec<Record>) -> Result<(), RecordError> {
        self.batches.push(batch.len());
        Ok(())
    }
}

#[test]
fn completions_of_parallel_inline_tasks_share_a_flush() {
    let log = Log::default();
    // Eight branches of ten inline tasks: each round completes one task per
    // branch, so a flush carries eight records.
    let mut yaml = String::from("flow: parallel\ntasks:\n");
    for b in 0..8 {
        yaml.push_str(&format!("  - name: B{b}\n    type: sequence\n    tasks:\n"));
        for i in 0..10 {
            yaml.push_str(&format!(
                "      - {{name: T{i}, type: fake, command: inline}}\n"
            ));
        }
    }
    let plan = plan_of(&yaml, &log);
    let mut c = CountFlushes::default();
    let initial = plan.vars.decls.iter().map(|d| d.initial.clone()).collect();
    let opts = RunOptions {
        max_concurrent: 8,
        resume: Resume::default(),
        initial,
        interrupt: Arc::new(AtomicBool::new(false)),
        tx_prefix: "t".into(),
        processes: None,
    };
    let mut ev = Vec::new();
    let res = run(&plan, opts, &mut c, &mut Events(&mut ev));
    assert_eq!(res.outcome, PackageOutcome::Success);
    let records: usize = c.batches.iter().sum();
    assert_eq!(records, 8 * 10 + 8);
    assert!(
        c.batches.len() <= 12 + 2,
        "80 task records in {} flushes: {:?}",
        c.batches.len(),
        c.batches
    );
}

#[test]
fn a_foreach_over_a_missing_folder_fails_without_starting_its_children() {
    let log = Log::default();
    let plan = plan_of(
        "tasks:\n  - name: L\n    type: foreach\n    files: { folder: /nonexistent/checkflow-test-folder }\n    tasks:\n      - {name: T, type: fake}\n",
        &log,
    );
    let (r, _) = run_plan(&plan, Resume::default());
    assert_eq!(r.outcome, PackageOutcome::Failure);
    assert_eq!(status(&plan, &r, "L"), Status::Failed);
    assert_eq!(status(&plan, &r, "L/T"), Status::NotRun);
    assert!(started(&log).is_empty());
}

#[test]
fn humantime_writes_durations_as_people_read_them() {
    for ms in [0u64, 1, 9, 10, 99, 100, 101, 999] {
        assert_eq!(humantime(Duration::from_millis(ms)), format!("{ms}ms"));
    }
    assert_eq!(humantime(Duration::from_millis(1500)), "1.5s");
    assert_eq!(humantime(Duration::from_secs(61)), "1m01s");
    assert_eq!(humantime(Duration::from_secs(3_661)), "1h01m01s");
}

#[test]
fn now_civil_is_the_system_zone_time_of_now() {
    let tz = jiff::tz::TimeZone::system();
    for _ in 0..3 {
        let before = tz.to_datetime(jiff::Timestamp::now());
        let got = now_civil();
        let after = tz.to_datetime(jiff::Timestamp::now());
        assert!(before <= got && got <= after, "{before} {got} {after}");
    }
}

/// A task type that writes down the execution it was given.
struct ExecutionType(Arc<Mutex<Vec<checkflow_plan::Execution>>>);

struct ExecutionTask(Arc<Mutex<Vec<checkflow_plan::Execution>>>);

impl TaskType for ExecutionType {
    fn name(&self) -> &'static str {
        "fake"
    }
    fn fields(&self) -> &'static [&'static str] {
        &["command"]
    }
    fn build(&self, _def: &TaskDef, _cx: &mut BuildCx<'_>) -> Option<Arc<dyn Action>> {
        Some(Arc::new(ExecutionTask(self.0.clone())))
    }
}

impl Action for ExecutionTask {
    fn run(&self, cx: &mut dyn RunCx) -> Result<(), TaskError> {
        self.0.lock().unwrap().push(cx.execution());
        Ok(())
    }
}

#[test]
fn a_task_execution_names_its_checkpoint_loop_items_and_the_records_about_it() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let plan = plan_with(
        "variables: { I: {type: string} }\ntasks:\n  - name: L\n    type: foreach\n    items: [a, b]\n    map: [User::I]\n    tasks:\n      - {name: T, type: fake}\n  - {name: U, type: fake}\n",
        Box::new(ExecutionType(seen.clone())),
    );
    // A restart of checkpoint "ck", where L was completed once and U forgotten once.
    let rec = Recorded {
        record_counts: [("L".to_string(), 1), ("U".to_string(), 1)].into(),
        checkpoint_id: Some("ck".into()),
        ..Recorded::default()
    };
    let res = resume(&plan, &rec, &[], ChangedPolicy::Keep).expect("resume");
    run_plan(&plan, res);
    let got = seen.lock().unwrap().clone();
    let exec = |path: &str, item: Option<&str>| checkflow_plan::Execution {
        owner: String::new(),
        checkpoint: "ck".into(),
        path: path.into(),
        iterations: item
            .map(|k| vec![("L".to_string(), k.to_string())])
            .unwrap_or_default(),
        generation: 1,
    };
    assert_eq!(
        got,
        [
            exec("L/T", Some("a")),
            exec("L/T", Some("b")),
            exec("U", None)
        ]
    );

    // Without a checkpoint the run's own id (its transaction prefix) stands for it.
    seen.lock().unwrap().clear();
    run_plan(&plan, Resume::default());
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .all(|e| e.checkpoint == "test" && e.generation == 0)
    );
}

#[test]
fn rerun_of_a_recorded_task_counts_as_a_record_about_it() {
    let log = Log::default();
    let plan = plan_of(
        "tasks:\n  - {name: A, type: fake}\n  - {name: B, type: fake}\n",
        &log,
    );
    let (_, c) = run_plan(&plan, Resume::default());
    let mut rec = recorded(&plan, &c);
    rec.record_counts = [("A".to_string(), 1), ("B".to_string(), 1)].into();
    let res = resume(&plan, &rec, &["B".to_string()], ChangedPolicy::Keep).expect("resume");
    assert_eq!(res.record_counts.get("A"), Some(&1));
    assert_eq!(
        res.record_counts.get("B"),
        Some(&2),
        "the invalidation it writes"
    );
}
