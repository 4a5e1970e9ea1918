//! Crash tests of the whole run path: `run` with the checkpoint on a
//! simulated disk (`checkflow_journal::testing::CrashStorage`) that crashes at
//! the Nth write or sync, for every N of a clean run; then what the crash
//! left is read back and the package restarted through the ordinary path
//! (`run`: `journal::read`, `exec::resume`, a real file journal).
//! Also: a disk that fails one write or sync with ENOSPC.
//!
//! Each test runs itself again in a child process (`as_child`), so the
//! console output of its many runs does not flood the test log; a failure
//! shows the child's output.

use super::{run, run_with};
use crate::args::{Cli, Cmd, RunArgs};
use crate::exit;
use checkflow_journal::testing::{self, CrashStorage, Tail};
use checkflow_journal::{self as journal, Restored, ResumeState, is_at_or_below};
use clap::Parser;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

const CHILD: &str = "CHECKFLOW_CRASH_TEST_CHILD";

/// In the test process: runs test `name` of this module in a child process
/// (stdout captured), fails if it fails, and returns false. In the child:
/// returns true, and the caller runs the test body.
fn as_child(name: &str) -> bool {
    if std::env::var_os(CHILD).is_some() {
        return true;
    }
    let module = module_path!()
        .split_once("::")
        .map_or(module_path!(), |(_, m)| m);
    let exe = std::env::current_exe().expect("the test binary");
    let logs = Scratch::new("log");
    let (out_path, err_path) = (logs.join("stdout"), logs.join("stderr"));
    let mut child = Command::new(exe)
        .args([
            &format!("{module}::{name}"),
            "--exact",
            "--nocapture",
            "--include-ignored",
        ])
        .env(CHILD, "1")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .expect("run the test in a child process");
    // A run that never ends is a failure, not a hung test suite.
    let deadline = Instant::now() + WATCHDOG;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for the child") {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    let tail: Vec<&str> = stdout.lines().rev().take(60).collect();
    assert!(
        status.is_some_and(|s| s.success()),
        "{name} {} in the child process\n--- last stdout lines\n{}\n--- stderr\n{stderr}",
        if status.is_none() {
            "hung (killed by the watchdog)"
        } else {
            "failed"
        },
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    );
    // The child's own notes (counts, timings).
    for line in stderr.lines().filter(|l| l.starts_with("crash test:")) {
        eprintln!("{line}");
    }
    false
}

/// How long a test may take in its child process.
const WATCHDOG: std::time::Duration = std::time::Duration::from_secs(300);

/// How long one run may take before it counts as hung.
const RUN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// A scratch folder, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "checkflow-crash-{tag}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("create the scratch folder");
        Scratch(dir)
    }

    fn join(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }

    /// The lines of `ledger.txt`, then empties it: what ran since the last call.
    fn take_ledger(&self) -> Vec<String> {
        let p = self.join("ledger.txt");
        let lines = std::fs::read_to_string(&p)
            .map(|s| s.lines().map(str::to_owned).collect())
            .unwrap_or_default();
        let _ = std::fs::remove_file(&p);
        lines
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const CKPT: &str = "mix.ckpt";

/// A sequence, parallel branches (two sequences and a task), a foreach with
/// recorded iterations, and expression tasks whose changes are not
/// idempotent, so a task run twice or a variable restored wrong shows in
/// the values `Report` writes to `vars.txt`. Process tasks write their name
/// (loop iterations: the item) to `ledger.txt`.
const PACKAGE: &str = r#"
id: 5f0c2a9e-3b7d-4c1e-8f6a-9d2b4e7c1a30
name: crashmix
max_concurrent: 3
checkpoint: { file: mix.ckpt, usage: if_exists, save: true }
variables:
  Count: { type: int32, value: 0 }
  LeftV: { type: int32, value: 0 }
  RightV: { type: int32, value: 0 }
  Trail: { type: string, value: "" }
  Item: { type: string, value: "" }
tasks:
  - { name: Start, type: process, command: "echo Start >> ledger.txt" }
  - { name: Bump, type: expression, expr: '@[User::Count] = @[User::Count] + 10' }
  - name: Branches
    type: sequence
    flow: parallel
    tasks:
      - name: Left
        type: sequence
        tasks:
          - { name: L1, type: process, command: "echo L1 >> ledger.txt" }
          - { name: L2, type: expression, expr: '@[User::LeftV] = @[User::LeftV] * 2 + 1' }
          - { name: L3, type: process, command: "echo L3 >> ledger.txt" }
      - name: Right
        type: sequence
        tasks:
          - { name: R1, type: expression, expr: '@[User::RightV] = @[User::RightV] + 7' }
          - { name: R2, type: process, command: "echo R2 >> ledger.txt" }
      - { name: Solo, type: process, command: "echo Solo >> ledger.txt" }
  - name: Each
    type: foreach
    items: [a, b, c]
    map: [User::Item]
    checkpoint_iterations: true
    tasks:
      - name: Work
        type: process
        command: "echo placeholder"
        expressions:
          command: '"echo " + @[User::Item] + " >> ledger.txt"'
      - { name: Append, type: expression, expr: '@[User::Trail] = @[User::Trail] + @[User::Item]' }
  - { name: Bump2, type: expression, expr: '@[User::Count] = @[User::Count] * 3' }
  - name: Report
    type: process
    command: "echo placeholder"
    expressions:
      command: '"echo " + (DT_WSTR, 10) @[User::Count] + " " + (DT_WSTR, 10) @[User::LeftV] + " " + (DT_WSTR, 10) @[User::RightV] + " " + @[User::Trail] + " > vars.txt; echo Report >> ledger.txt"'
"#;

/// What `Report` writes after a complete, correct run.
const FINAL_VARS: &str = "30 1 7 abc";

/// The executable (or loop iteration, `Each[item]`) behind a ledger line.
fn path_of(ledger_line: &str) -> String {
    match ledger_line {
        "Start" | "Report" => ledger_line.to_owned(),
        "L1" | "L3" => format!("Branches/Left/{ledger_line}"),
        "R2" => "Branches/Right/R2".to_owned(),
        "Solo" => "Branches/Solo".to_owned(),
        "a" | "b" | "c" => format!("Each[{ledger_line}]"),
        other => panic!("unexpected ledger line {other:?}"),
    }
}

/// Every ledger line a complete run writes.
const ALL_LINES: [&str; 9] = ["Start", "L1", "L3", "R2", "Solo", "a", "b", "c", "Report"];

/// Whether the checkpoint records `unit` (a path, or `Each[item]`) as done,
/// itself or through a recorded container.
fn is_recorded(state: &ResumeState, unit: &str) -> bool {
    if let Some((lp, rest)) = unit.split_once('[') {
        let key = rest.trim_end_matches(']');
        return state
            .iterations
            .get(lp)
            .is_some_and(|k| k.iter().any(|x| x == key))
            || state.completed.keys().any(|c| is_at_or_below(lp, c));
    }
    state.completed.keys().any(|c| is_at_or_below(unit, c))
}

/// A restored variable as JSON; a variable the checkpoint does not hold yet
/// (a crash before the first record) starts from the package's value.
fn restored(state: &ResumeState, name: &str, initial: Value) -> Value {
    match state.vars.get(name) {
        None => initial,
        Some(Restored::Value(v)) => v.clone(),
        Some(other) => panic!("{name} restored as {other:?}"),
    }
}

/// `checkflow run <dir>/package.yaml --log json --report <dir>/report.json
/// --max-concurrent N`, parsed as the command line would be.
fn args(dir: &Path, max_concurrent: usize) -> RunArgs {
    let pkg = dir.join("package.yaml");
    let report = dir.join("report.json");
    let cli = Cli::try_parse_from([
        "checkflow".as_ref(),
        "run".as_ref(),
        pkg.as_os_str(),
        "--log".as_ref(),
        "json".as_ref(),
        "--report".as_ref(),
        report.as_os_str(),
        "--max-concurrent".as_ref(),
        max_concurrent.to_string().as_ref(),
    ])
    .expect("valid arguments");
    match cli.command {
        Cmd::Run(a) => a,
        other => panic!("parsed as {other:?}"),
    }
}

/// Runs the package in `dir` with its new checkpoint on `storage`; returns
/// the exit code, or `None` if the run did not end within `RUN_TIMEOUT`
/// (it is left behind, blocked, holding `dir`'s checkpoint lock).
fn run_on(dir: &Path, max_concurrent: usize, storage: &CrashStorage) -> Option<i32> {
    let (tx, rx) = std::sync::mpsc::channel();
    let (dir, s) = (dir.to_owned(), storage.clone());
    std::thread::spawn(move || {
        let create = move |p: &Path,
                           h: journal::NewHeader,
                           k: Option<&journal::Key>,
                           l: &journal::Lock|
              -> Result<journal::Journal, journal::JournalError> {
            testing::create(p, h, k, l, &s)
        };
        let code = match run_with(&args(&dir, max_concurrent), &create) {
            Ok(code) => code,
            Err(f) => {
                assert!(
                    f.message.contains("checkpoint"),
                    "a run that fails before it starts names the checkpoint: {}",
                    f.message
                );
                f.code
            }
        };
        let _ = tx.send(code);
    });
    rx.recv_timeout(RUN_TIMEOUT).ok()
}

/// A scratch folder holding the package.
fn with_package(tag: &str) -> Scratch {
    let dir = Scratch::new(tag);
    std::fs::write(dir.join("package.yaml"), PACKAGE).expect("write the package");
    dir
}

fn report(dir: &Scratch) -> Value {
    let text = std::fs::read_to_string(dir.join("report.json")).expect("the run wrote a report");
    serde_json::from_str(&text).expect("the report is JSON")
}

/// Checks that the variables a crash image restores are exactly those of
/// the work it records (one task at a time, see `args`).
fn check_restored_vars(state: &ResumeState, ctx: &str) {
    let done = |p: &str| is_recorded(state, p);
    let count = if done("Bump2") {
        30
    } else if done("Bump") {
        10
    } else {
        0
    };
    let trail: String = if done("Each") {
        "abc".into()
    } else {
        state
            .iterations
            .get("Each")
            .map(|k| k.concat())
            .unwrap_or_default()
    };
    let expect = [
        ("User::Count", json!(count)),
        ("User::LeftV", json!(i32::from(done("Branches/Left/L2")))),
        (
            "User::RightV",
            json!(if done("Branches/Right/R1") { 7 } else { 0 }),
        ),
        ("User::Trail", json!(trail)),
    ];
    for (name, want) in expect {
        let got = restored(
            state,
            name,
            if name == "User::Trail" {
                json!("")
            } else {
                json!(0)
            },
        );
        assert_eq!(
            got, want,
            "{name} restored wrong ({ctx}); state: {state:#?}"
        );
    }
}

/// Writes `image` as the checkpoint, reads it like the next run will, and
/// restarts the package through the ordinary path. Checks that the image
/// reads, that the restart finishes the package, runs nothing recorded, and
/// ends with the right variables. Returns how many executables it restored.
fn recover_and_restart(
    dir: &Scratch,
    image: &[u8],
    crash_ledger: &[String],
    strict_vars: bool,
    max_concurrent: usize,
    ctx: &str,
) -> usize {
    let ckpt = dir.join(CKPT);
    std::fs::write(&ckpt, image).expect("write the crash image");
    let state = journal::read(&ckpt, None)
        .unwrap_or_else(|e| panic!("the crash image must read as a valid prefix ({ctx}): {e}"));
    if strict_vars {
        check_restored_vars(&state, ctx);
    }

    let code = run(&args(&dir.0, max_concurrent))
        .unwrap_or_else(|f| panic!("restart failed before it started ({ctx}): {}", f.message));
    let rep = report(dir);
    assert_eq!(
        code,
        exit::SUCCESS,
        "the restart must finish ({ctx}): {rep:#}"
    );
    let rerun = dir.take_ledger();
    for line in &rerun {
        let unit = path_of(line);
        assert!(
            !is_recorded(&state, &unit),
            "{unit} ran again although the checkpoint records it ({ctx}); recorded: {:?}, iterations: {:?}",
            state.completed_order,
            state.iterations
        );
    }
    let mut restored = 0;
    for path in state.completed.keys() {
        let e = rep["executables"]
            .as_array()
            .expect("executables[]")
            .iter()
            .find(|e| e["path"] == path.as_str())
            .unwrap_or_else(|| panic!("no {path} in the report ({ctx})"));
        assert_eq!(
            e["status"], "restored",
            "{path} is recorded, so it is restored ({ctx}): {e}"
        );
        restored += 1;
    }
    // Everything ran, across the crashed run and the restart.
    let ran: BTreeSet<&str> = crash_ledger
        .iter()
        .chain(&rerun)
        .map(String::as_str)
        .collect();
    assert_eq!(
        ran,
        ALL_LINES.into_iter().collect(),
        "every task runs at least once ({ctx})"
    );
    let vars = std::fs::read_to_string(dir.join("vars.txt")).expect("Report wrote vars.txt");
    assert_eq!(vars.trim(), FINAL_VARS, "final variables ({ctx})");
    assert!(!ckpt.exists(), "success deletes the checkpoint ({ctx})");
    restored
}

#[test]
fn crash_at_every_write_and_sync_of_a_mixed_run_then_restart_runs_nothing_recorded() {
    if !as_child("crash_at_every_write_and_sync_of_a_mixed_run_then_restart_runs_nothing_recorded")
    {
        return;
    }
    let started = Instant::now();

    // A clean run on a disk that never fails: how many operations it does.
    let dir = with_package("clean");
    let clean = CrashStorage::new();
    assert_eq!(run_on(&dir.0, 1, &clean), Some(exit::SUCCESS));
    let mut ledger = dir.take_ledger();
    ledger.sort();
    let mut all: Vec<String> = ALL_LINES.iter().map(|s| (*s).to_owned()).collect();
    all.sort();
    assert_eq!(ledger, all);
    let total = clean.ops();
    assert_eq!(clean.writes(), clean.syncs(), "one sync per write");
    assert!(total >= 20, "only {total} operations in a clean run");
    drop(dir);

    // One at a time (`--max-concurrent 1`): the same operations in the same
    // order each run, so crash N lands at the same place every time and the
    // restored variables can be checked exactly. (With tasks in parallel, a
    // record holds the current value of every variable, as SSIS's does,
    // changes by tasks still running included, so those checks would not
    // hold exactly.)
    let (mut images, mut restored, mut hung) = (0, 0, Vec::new());
    for n in 1..=total {
        for (t, tail) in [Tail::Nothing, Tail::All, Tail::Prefix]
            .into_iter()
            .enumerate()
        {
            let ctx = format!("crash at operation {n} of {total}, {tail:?}");
            let dir = with_package("every-n");
            let storage = CrashStorage::crash_at(n);
            let Some(code) = run_on(&dir.0, 1, &storage) else {
                hung.push(ctx);
                continue;
            };
            assert!(storage.crashed(), "the disk must crash ({ctx})");
            assert_eq!(
                code,
                exit::FAILURE,
                "a crashed journal fails the run ({ctx})"
            );
            assert_eq!(
                storage.ops(),
                n,
                "nothing is written after the failed operation ({ctx})"
            );
            let crash_ledger = dir.take_ledger();
            let image = storage.image(tail, (n * 8 + t) as u64);
            restored += recover_and_restart(&dir, &image, &crash_ledger, true, 1, &ctx);
            images += 1;
        }
    }
    let one_at_a_time = started.elapsed();

    // Up to three at a time: interleavings and group commits vary from run
    // to run; every crash must still read, restart and finish, and nothing
    // recorded may run again. (The variable checks need one at a time.)
    let mut crashed_parallel = 0;
    for n in 1..=total {
        let ctx = format!("parallel, crash at operation {n}");
        let dir = with_package("parallel");
        let storage = CrashStorage::crash_at(n);
        let Some(code) = run_on(&dir.0, 3, &storage) else {
            hung.push(ctx);
            continue;
        };
        let crash_ledger = dir.take_ledger();
        if storage.crashed() {
            crashed_parallel += 1;
            assert_eq!(code, exit::FAILURE, "{ctx}");
        } else {
            // Group commits made this run shorter than N operations.
            assert_eq!(code, exit::SUCCESS, "{ctx}");
        }
        let image = storage.image(Tail::Prefix, n as u64);
        restored += recover_and_restart(&dir, &image, &crash_ledger, false, 3, &ctx);
        images += 1;
    }
    eprintln!(
        "crash test: {total} operations in a clean run; {images} crash images recovered and restarted ({restored} executables restored); one at a time {:.1?}, {crashed_parallel} parallel crashes, total {:.1?}; {} runs hung",
        one_at_a_time,
        started.elapsed(),
        hung.len()
    );
    assert!(
        hung.is_empty(),
        "runs that never ended after the disk crashed: {hung:#?}"
    );
}

/// "No space left on device": ENOSPC is 28 on Linux, macOS and the BSDs.
fn enospc() -> std::io::Error {
    std::io::Error::from_raw_os_error(28)
}

#[test]
fn disk_full_on_a_write_or_a_sync_poisons_the_journal_and_fails_the_run_clearly() {
    if !as_child("disk_full_on_a_write_or_a_sync_poisons_the_journal_and_fails_the_run_clearly") {
        return;
    }
    // Operations 1 and 2 write and sync the run's first records; 3 is the
    // first completion's write, 4 its sync, 9 a later write.
    let mut hung = Vec::new();
    for n in [1, 2, 3, 4, 9] {
        let ctx = format!("ENOSPC at operation {n}");
        let dir = with_package("enospc");
        let storage = CrashStorage::fail_at(n, enospc);
        let Some(code) = run_on(&dir.0, 1, &storage) else {
            hung.push(ctx);
            continue;
        };
        assert_eq!(code, exit::FAILURE, "{ctx}");
        // The disk works again after the failed operation, but a poisoned
        // journal writes nothing more: no retried sync ("fsyncgate").
        assert_eq!(storage.ops(), n, "the journal stops at the failure ({ctx})");
        if n > 2 {
            let rep = report(&dir);
            let errors = rep["errors"].to_string();
            assert!(
                errors.contains("No space left on device") && errors.contains(CKPT),
                "the run reports the disk error and names the checkpoint ({ctx}): {rep:#}"
            );
            assert_eq!(rep["checkpoint"]["kept"], true, "{ctx}: {rep:#}");
        }
        let crash_ledger = dir.take_ledger();
        // What reached the disk, whole failed write included: still a valid prefix.
        let image = storage.image(Tail::All, 0);
        recover_and_restart(&dir, &image, &crash_ledger, true, 1, &ctx);
    }
    assert!(
        hung.is_empty(),
        "runs that never ended after the disk failed: {hung:#?}"
    );
}
