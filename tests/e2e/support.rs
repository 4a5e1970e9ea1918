//! The harness: a sandbox folder holding one package, a builder for
//! `checkflow` invocations, and assertions on what a run did; then the
//! helpers of the tests that stop and kill runs, and the package fixtures
//! the tests share (`package_yaml` and the builders on it), so that a test
//! writes out only the part of its package that is its point.
//!
//! Test packages use `process` tasks whose commands append their name to
//! `ledger.txt`, so a test can say exactly which tasks ran in each run
//! (`Sandbox::take_ledger`).

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_checkflow");

/// A package id for tests that do not care which one.
pub const ID: &str = "0b6f4d1e-7c1a-4a8e-9a53-2d2f1f6e9c11";

/// Another id, for mismatch tests.
pub const OTHER_ID: &str = "7d4c2b1a-0000-4e5f-8a9b-123456789abc";

/// The id of `child.yaml`, the child package of the parent/child tests.
pub const CHILD_ID: &str = "5c3e7a10-2b4d-4f6e-9a8b-0c1d2e3f4a5b";

/// The `connections:` entry of `dw.db`, the SQLite database of most tests.
pub const DW: &str = "{ kind: sqlite, path: dw.db }";

/// A temporary folder holding `package.yaml` and whatever the tasks write.
/// Removed when dropped.
pub struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("checkflow-e2e-")
            .tempdir()
            .expect("create a temp dir");
        Sandbox { dir }
    }

    /// A sandbox with `package.yaml` holding `yaml`.
    pub fn with_package(yaml: &str) -> Self {
        let sb = Sandbox::new();
        sb.write("package.yaml", yaml);
        sb
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, rel: &str) -> PathBuf {
        self.path().join(rel)
    }

    pub fn write(&self, rel: &str, contents: &str) {
        let p = self.join(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).expect("create parent folder");
        }
        fs::write(&p, contents).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
    }

    /// Creates an empty marker file (e.g. `fixed`, read by `test -f fixed`).
    pub fn touch(&self, rel: &str) {
        self.write(rel, "");
    }

    pub fn exists(&self, rel: &str) -> bool {
        self.join(rel).exists()
    }

    pub fn read(&self, rel: &str) -> String {
        let p = self.join(rel);
        fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
    }

    pub fn read_bytes(&self, rel: &str) -> Vec<u8> {
        let p = self.join(rel);
        fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
    }

    /// When the file at `rel` was last written.
    pub fn modified(&self, rel: &str) -> SystemTime {
        fs::metadata(self.join(rel))
            .and_then(|m| m.modified())
            .unwrap_or_else(|e| panic!("mtime of {rel}: {e}"))
    }

    /// The lines of `ledger.txt` (empty if it does not exist).
    pub fn ledger(&self) -> Vec<String> {
        match fs::read_to_string(self.join("ledger.txt")) {
            Ok(s) => s.lines().map(str::to_owned).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// The lines of `ledger.txt`, then empties it: what ran since the last call.
    pub fn take_ledger(&self) -> Vec<String> {
        let lines = self.ledger();
        let _ = fs::remove_file(self.join("ledger.txt"));
        lines
    }

    /// `checkflow ARGS...`, run in the sandbox folder.
    pub fn cmd<I, S>(&self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        Cmd {
            args: args.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            env_removed: Vec::new(),
            cwd: self.path().to_owned(),
        }
    }

    /// `checkflow run package.yaml`.
    pub fn run(&self) -> Cmd {
        self.cmd(["run", "package.yaml"])
    }

    /// `checkflow run package.yaml --log json`, whose output
    /// [`Output::summary`] reads.
    pub fn run_json(&self) -> Cmd {
        self.run().args(["--log", "json"])
    }

    /// Makes `fixed` (the file the tests' failing tasks wait for), runs the
    /// package again, which must succeed, and returns what that run wrote
    /// to the ledger ([`Sandbox::take_ledger`]).
    #[track_caller]
    pub fn rerun_fixed(&self) -> Vec<String> {
        self.touch("fixed");
        self.run().output().exit(0);
        self.take_ledger()
    }

    /// `checkflow checkpoint show REL --json`, which must succeed.
    pub fn show(&self, rel: &str) -> Value {
        self.cmd(["checkpoint", "show", rel, "--json"])
            .output()
            .exit(0)
            .json()
    }

    /// `checkflow plan package.yaml --json`, which must succeed.
    pub fn plan(&self) -> Value {
        self.cmd(["plan", "package.yaml", "--json"])
            .output()
            .exit(0)
            .json()
    }

    /// Paths recorded as completed in the checkpoint at `rel`, with their results.
    pub fn completed(&self, rel: &str) -> Vec<(String, String)> {
        completed_of(&self.show(rel))
    }
}

/// `completed[]` of a `checkpoint show --json` document as (path, result).
pub fn completed_of(doc: &Value) -> Vec<(String, String)> {
    doc["completed"]
        .as_array()
        .unwrap_or_else(|| panic!("no completed[] in {doc}"))
        .iter()
        .map(|c| {
            (
                c["path"].as_str().expect("completed[].path").to_owned(),
                c["result"].as_str().expect("completed[].result").to_owned(),
            )
        })
        .collect()
}

/// The set of paths recorded as completed.
pub fn completed_paths(doc: &Value) -> BTreeSet<String> {
    completed_of(doc).into_iter().map(|(p, _)| p).collect()
}

/// Completed paths, and finished iterations as `Loop[key]`.
pub fn recorded_units(doc: &Value) -> BTreeSet<String> {
    let mut units = completed_paths(doc);
    if let Some(loops) = doc["iterations"].as_object() {
        for (lp, keys) in loops {
            for key in keys.as_array().expect("iteration keys") {
                let key = key.as_str().map_or_else(|| key.to_string(), str::to_owned);
                units.insert(format!("{lp}[{key}]"));
            }
        }
    }
    units
}

/// One invocation of the binary, built up then run.
pub struct Cmd {
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    env_removed: Vec<OsString>,
    cwd: PathBuf,
}

/// Where the binary keeps its package cache during the tests (not the
/// user's home); a test that is about the cache sets its own.
const PACKAGE_CACHE: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/package-cache");

impl Cmd {
    pub fn arg(mut self, a: impl Into<OsString>) -> Self {
        self.args.push(a.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Runs it from `dir` instead of the sandbox folder.
    pub fn current_dir(mut self, dir: &Path) -> Self {
        self.cwd = dir.to_owned();
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    /// Sets a variable whose value need not be UTF-8.
    pub fn env_os(mut self, k: &str, v: impl Into<OsString>) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    /// Stops the run at the crash point `point` (`NAME[@N]=ACTION`, through
    /// `CHECKFLOW_TEST_FAILPOINT`).
    pub fn failpoint(self, point: &str) -> Self {
        self.env("CHECKFLOW_TEST_FAILPOINT", point)
    }

    /// Removes a variable from the environment the binary gets.
    pub fn env_remove(mut self, k: &str) -> Self {
        self.env_removed.push(k.into());
        self
    }

    fn command(&self) -> Command {
        let mut c = Command::new(BIN);
        c.args(&self.args).current_dir(&self.cwd);
        c.env("CHECKFLOW_CACHE_DIR", PACKAGE_CACHE);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        for k in &self.env_removed {
            c.env_remove(k);
        }
        c
    }

    /// Runs to completion and captures everything.
    pub fn output(&self) -> Output {
        self.output_to(Stdio::piped())
    }

    /// Runs to completion with standard output going to `stdout` (captured
    /// if piped; or a closed pipe, `/dev/full`); standard error is captured.
    pub fn output_to(&self, stdout: impl Into<Stdio>) -> Output {
        let out = self
            .command()
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::piped())
            .output()
            .expect("spawn checkflow");
        Output::of(out, self.describe())
    }

    /// Runs to completion with `input` on its standard input; both outputs
    /// captured.
    pub fn output_with_stdin(&self, input: &str) -> Output {
        use std::io::Write;
        let mut child = self
            .command()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn checkflow");
        child
            .stdin
            .take()
            .expect("piped")
            .write_all(input.as_bytes())
            .expect("write its standard input");
        Output::of(child.wait_with_output().expect("wait"), self.describe())
    }

    /// Starts it in the background, output captured (read it with `finish`).
    pub fn spawn(&self) -> Running {
        let child = self
            .command()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn checkflow");
        Running {
            child,
            what: self.describe(),
        }
    }

    fn describe(&self) -> String {
        let args: Vec<_> = self.args.iter().map(|a| a.to_string_lossy()).collect();
        format!("checkflow {}", args.join(" "))
    }
}

/// A run started with `Cmd::spawn`.
pub struct Running {
    pub child: Child,
    what: String,
}

impl Running {
    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).expect("pid fits in i32")
    }

    /// Sends it the signal `sig`, which must reach it.
    #[track_caller]
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on the pid of our own child, which has not been
        // reaped (`finish` and `wait_or_kill` reap it).
        let rc = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(rc, 0, "kill({}, {sig})", self.pid());
    }

    /// Waits for it to end, looking every `poll` whether `kill_now` says to
    /// kill it first: then it is killed with SIGKILL and reaped, and the
    /// answer is `None`; else how it ended.
    pub fn wait_or_kill(
        &mut self,
        poll: Duration,
        mut kill_now: impl FnMut() -> bool,
    ) -> Option<std::process::ExitStatus> {
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if kill_now() {
                self.child.kill().expect("kill -9");
                self.child.wait().expect("reap");
                return None;
            }
            std::thread::sleep(poll);
        }
    }

    /// Waits for it to end and returns what it printed.
    pub fn finish(self) -> Output {
        let out = self.child.wait_with_output().expect("wait for checkflow");
        Output::of(out, self.what)
    }
}

/// What one invocation did. The assertion methods panic with the whole
/// output, so a failing test shows what the binary said.
pub struct Output {
    /// `None` when killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    what: String,
}

impl Output {
    /// What a finished process left, for the invocation described by `what`.
    fn of(out: std::process::Output, what: String) -> Output {
        Output {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            what,
        }
    }
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` exited with {:?}\n--- stdout\n{}--- stderr\n{}---",
            self.what, self.code, self.stdout, self.stderr
        )
    }
}

impl Output {
    #[track_caller]
    pub fn exit(self, code: i32) -> Self {
        assert_eq!(self.code, Some(code), "unexpected exit code\n{self:?}");
        self
    }

    /// stdout and stderr together.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    #[track_caller]
    pub fn stdout_has(self, needle: &str) -> Self {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}\n{self:?}"
        );
        self
    }

    #[track_caller]
    pub fn stderr_has(self, needle: &str) -> Self {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}\n{self:?}"
        );
        self
    }

    /// Somewhere in stdout or stderr.
    #[track_caller]
    pub fn says(self, needle: &str) -> Self {
        assert!(
            self.all().contains(needle),
            "output lacks {needle:?}\n{self:?}"
        );
        self
    }

    /// Somewhere in stdout or stderr, ignoring case.
    #[track_caller]
    pub fn says_ci(self, needle: &str) -> Self {
        assert!(
            self.all().to_lowercase().contains(&needle.to_lowercase()),
            "output lacks {needle:?} (any case)\n{self:?}"
        );
        self
    }

    /// stdout as one JSON document.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON: {e}\n{self:?}"))
    }

    /// stdout as JSON lines (`--log json`).
    #[track_caller]
    pub fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("log line {l:?} is not JSON: {e}\n{self:?}"))
            })
            .collect()
    }

    /// The `summary` event of a `--log json` run.
    #[track_caller]
    pub fn summary(&self) -> Value {
        self.json_lines()
            .into_iter()
            .find(|v| v["event"] == "summary")
            .unwrap_or_else(|| panic!("no summary event\n{self:?}"))
    }
}

/// Fails if the binary panicked (a panic message, or death by a signal).
#[track_caller]
pub fn no_panic(out: Output) -> Output {
    assert!(
        !out.all().contains("panicked"),
        "the binary panicked\n{out:?}"
    );
    assert!(out.code.is_some(), "killed by a signal\n{out:?}");
    out
}

/// `run` and `validate` both reject the package `yaml` with exit 5; the
/// message names `package.yaml:{at}` and every word; nothing ran. Returns
/// `run`'s output.
#[track_caller]
pub fn rejected(yaml: &str, at: &str, words: &[&str]) -> Output {
    let sb = Sandbox::with_package(yaml);
    let loc = format!("package.yaml:{at}");
    let mut out = no_panic(sb.run().output()).exit(5).says(&loc);
    for w in words {
        out = out.says(w);
    }
    let v = no_panic(sb.cmd(["validate", "package.yaml"]).output())
        .exit(5)
        .says(&loc);
    for w in words {
        assert!(v.all().contains(w), "validate does not say {w:?}\n{v:?}");
    }
    assert!(sb.ledger().is_empty(), "nothing may run: {:?}", sb.ledger());
    out
}

/// `status` of the executable at `path` in a summary or report document.
#[track_caller]
pub fn status_of(summary: &Value, path: &str) -> String {
    executable_of(summary, path)["status"]
        .as_str()
        .expect("status is a string")
        .to_owned()
}

/// The entry of the executable at `path` in a summary, report or plan
/// (`plan --json`) document.
#[track_caller]
pub fn executable_of<'a>(summary: &'a Value, path: &str) -> &'a Value {
    summary["executables"]
        .as_array()
        .unwrap_or_else(|| panic!("no executables[] in {summary}"))
        .iter()
        .find(|e| e["path"] == path)
        .unwrap_or_else(|| panic!("no executable {path:?} in {summary}"))
}

/// `(path, action)` of every executable in `checkflow plan --json` output, in
/// its order.
pub fn plan_actions(plan: &Value) -> Vec<(String, String)> {
    plan["executables"]
        .as_array()
        .unwrap_or_else(|| panic!("no executables[] in {plan}"))
        .iter()
        .map(|e| {
            (
                e["path"].as_str().expect("path").to_owned(),
                e["action"].as_str().expect("action").to_owned(),
            )
        })
        .collect()
}

/// Shorthand for a list of task names in assertions.
pub fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// Sorted copy, for runs whose order is not fixed (parallel tasks).
pub fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// The rows `sql` returns on the database of the `connections:` entry `conn`,
/// read through checkflow itself: a throwaway package next to the test's
/// fills an object variable with `result: full` and keeps its checkpoint on
/// purpose (`exit 3` after the query), and `checkpoint show --json` prints it.
/// `env` is the environment the connection needs (e.g. its `url_env`).
pub fn sql_rows(sb: &Sandbox, conn: &str, env: &[(String, String)], sql: &str) -> Vec<Vec<Value>> {
    sb.write(
        "verify.yaml",
        &format!(
            r#"
id: {OTHER_ID}
name: verify
checkpoint: {{ file: verify.ckpt, usage: never, save: true }}
connections:
  dw: {conn}
variables:
  Rows: {{ type: object }}
tasks:
  - name: Query
    type: sql
    connection: dw
    result: full
    result_var: User::Rows
    sql: |
      {sql}
  - {{ name: Keep the checkpoint, type: process, command: "exit 3", fail_package_on_failure: true, after: [Query] }}
"#
        ),
    );
    let mut c = sb.cmd(["run", "verify.yaml"]);
    for (k, v) in env {
        c = c.env(k, v);
    }
    c.output().exit(1);
    let doc = sb.show("verify.ckpt");
    fs::remove_file(sb.join("verify.ckpt")).expect("remove verify.ckpt");
    doc["variables"]["User::Rows"]["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("no recordset in {doc}"))
        .iter()
        .map(|r| r.as_array().expect("a row").clone())
        .collect()
}

/// One number for each of `exprs` (e.g. `COUNT(*) FROM a`) on `dw.db`, read
/// in one query.
pub fn dw_numbers(sb: &Sandbox, exprs: &[&str]) -> Vec<Option<i64>> {
    let selects: Vec<String> = exprs.iter().map(|e| format!("(SELECT {e})")).collect();
    sql_rows(sb, DW, &[], &format!("SELECT {}", selects.join(", ")))[0]
        .iter()
        .map(Value::as_i64)
        .collect()
}

/// The repository's README (the tests run in the package's folder).
pub fn readme() -> String {
    fs::read_to_string("README.md").expect("read README.md")
}

/// The first ```yaml block of `text` after `heading`.
#[track_caller]
pub fn yaml_block_after<'a>(text: &'a str, heading: &str) -> &'a str {
    let at = text
        .find(heading)
        .unwrap_or_else(|| panic!("no {heading:?} in the text"));
    let start = text[at..]
        .find("```yaml\n")
        .unwrap_or_else(|| panic!("no YAML block after {heading:?}"))
        + at
        + "```yaml\n".len();
    let end = text[start..].find("```").expect("the block's end") + start;
    &text[start..end]
}

// ---------------------------------------------------------------- runs stopped, killed, waited for

/// Polls `done` every 10 ms until it holds (`true`) or `limit` has passed
/// (`false`).
pub fn within(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    loop {
        if done() {
            return true;
        }
        if t.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// How a run stopped at the crash point `point` (`NAME[@N]=ACTION`) exits:
/// killed by a signal for `kill` (no code), 3 for `term`, 1 for `error`.
pub fn stopped_code(point: &str) -> Option<i32> {
    if point.ends_with("=term") {
        Some(3)
    } else if point.ends_with("=error") {
        Some(1)
    } else {
        None
    }
}

/// One run of a random-kill test: `run` is started and, after `kill_after`
/// (if any), killed with SIGKILL. Returns whether it was killed, and whether
/// the package is done: it succeeded, or the kill landed after it had (its
/// checkpoint `ckpt` deleted, `After` in the ledger). Any other end fails,
/// with `ctx` in the message.
pub fn run_killed_after(
    sb: &Sandbox,
    run: Cmd,
    kill_after: Option<Duration>,
    ckpt: &str,
    ctx: &str,
) -> (bool, bool) {
    let run = run.spawn();
    if let Some(wait) = kill_after {
        std::thread::sleep(wait);
        run.signal(libc::SIGKILL);
    }
    let out = run.finish();
    match out.code {
        Some(0) => (false, true),
        // Success deletes the checkpoint, and a kill can land after that and
        // before the process exits: the package is done (a further run would
        // be a new one).
        None => (
            true,
            !sb.exists(ckpt) && sb.ledger().iter().any(|l| l == "After"),
        ),
        _ => panic!("{ctx}\n{out:?}"),
    }
}

/// The seed of a randomised test: `CHECKFLOW_E2E_SEED` when set (to replay a
/// failure), else `default`.
pub fn seed_or(default: u64) -> u64 {
    std::env::var("CHECKFLOW_E2E_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// The seeded generator of the kill tests, so a failing run can be replayed
/// by its seed (`CHECKFLOW_E2E_SEED`).
pub use checkflow_journal::testing::Rng;

// ---------------------------------------------------------------- package fixtures

/// A package's YAML: `id: ID`, `name: NAME`, the `head` lines (a
/// checkpoint, connections, variables, options; each ending in a newline),
/// then `tasks:` and `tasks`, the YAML list of its tasks.
pub fn package_yaml(name: &str, head: &str, tasks: &str) -> String {
    yaml_of(ID, name, head, tasks)
}

/// A second package beside the test's (`id: OTHER_ID`), as [`package_yaml`].
pub fn other_package_yaml(name: &str, head: &str, tasks: &str) -> String {
    yaml_of(OTHER_ID, name, head, tasks)
}

/// `child.yaml` of the parent/child tests: `id: CHILD_ID`, `name: child`,
/// then as [`package_yaml`].
pub fn child_yaml(head: &str, tasks: &str) -> String {
    yaml_of(CHILD_ID, "child", head, tasks)
}

fn yaml_of(id: &str, name: &str, head: &str, tasks: &str) -> String {
    format!("id: {id}\nname: {name}\n{head}tasks:\n{tasks}")
}

/// The `checkpoint:` line of a package that restarts from `file` when it
/// exists and keeps it when it fails (`usage: if_exists, save: true`).
pub fn checkpoint_at(file: &str) -> String {
    format!("checkpoint: {{ file: {file}, usage: if_exists, save: true }}\n")
}

/// The `connections:` head of a package whose one connection, `dw`, is
/// `conn` (e.g. [`DW`], or a test database's entry).
pub fn dw_connection(conn: &str) -> String {
    format!("connections:\n  dw: {conn}\n")
}

/// The `variables:` head declaring `Item`, a string.
pub const ITEM_VARIABLE: &str = "variables:\n  Item: { type: string, value: \"\" }\n";

/// Task list items: one `process` task per name of `names`, in a row, each
/// writing its name to the ledger.
pub fn ledger_tasks(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| {
            format!("  - {{ name: {n}, type: process, command: \"echo {n} >> ledger.txt\" }}\n")
        })
        .collect()
}

/// A package's tasks: `A`, then `B`, which fails the package until `fixed`
/// exists (a restart point), then `C`.
pub const A_FAILING_B_C: &str = r#"  - { name: A, type: process, command: "echo A >> ledger.txt" }
  - { name: B, type: process, command: "echo B >> ledger.txt; test -f fixed", fail_package_on_failure: true }
  - { name: C, type: process, command: "echo C >> ledger.txt" }
"#;

/// `Loop` (a task list item), a foreach over `over` (`items: [...]`, or a
/// `files:` enumerator) that maps each item to `User::{var}`, fails the
/// package when it fails and records its iterations when
/// `checkpoint_iterations`; its one task, `Work`, runs the command that the
/// expression `command` makes.
pub fn foreach_loop(over: &str, var: &str, checkpoint_iterations: bool, command: &str) -> String {
    let iterations = if checkpoint_iterations {
        "    checkpoint_iterations: true\n"
    } else {
        ""
    };
    format!(
        r#"  - name: Loop
    type: foreach
    {over}
    map: [User::{var}]
{iterations}    fail_package_on_failure: true
    tasks:
      - name: Work
        type: process
        command: "echo placeholder"
        expressions:
          command: '{command}'
"#
    )
}

/// The expression of a command that writes `User::{var}` to the ledger and
/// fails for the item `c` until `fixed` exists.
pub fn echo_failing_at_c(var: &str) -> String {
    format!(
        r#""echo " + @[User::{var}] + " >> ledger.txt; test " + @[User::{var}] + " != c || test -f fixed""#
    )
}

/// A package (`name`, with the `head` lines) whose variable `Day` ("none"
/// unless set) its one task, `Show`, writes to the ledger as `day=DAY`.
pub fn show_day_package(name: &str, head: &str) -> String {
    package_yaml(
        name,
        &format!("{head}variables:\n  Day: {{ type: string, value: \"none\" }}\n"),
        r#"  - name: Show
    type: process
    command: "true"
    expressions:
      command: '"echo day=" + @[User::Day] + " >> ledger.txt"'
"#,
    )
}

/// A package keeping `checkpoint_file` whose sensitive `Token` is changed
/// by `Copy` (it gets `-used` appended), then `Fail` fails the package until
/// `fixed` exists, then `Use` writes `Token` to `out.txt`.
pub fn secret_package(checkpoint_file: &str) -> String {
    package_yaml(
        "secrets",
        &(checkpoint_at(checkpoint_file)
            + r#"variables:
  Token: { type: string, value: "", sensitive: true }
  Seen: { type: string, value: "" }
"#),
        r#"  - { name: Copy, type: expression, expr: '@[User::Token] = @[User::Token] + "-used"' }
  - { name: Fail, type: process, command: "echo Fail >> ledger.txt; test -f fixed", fail_package_on_failure: true }
  - name: Use
    type: process
    command: "echo placeholder"
    expressions:
      command: '"echo " + @[User::Token] + " >> out.txt"'
"#,
    )
}

/// A package over the 64 KiB the package cache starts at: `head`, then `n`
/// Expression tasks `T1`.. `Tn` evaluating `expr`, then `last` (task list
/// items, or nothing).
pub fn cacheable_package(head: &str, n: usize, expr: &str, last: &str) -> String {
    let mut tasks = String::new();
    for i in 1..=n {
        tasks.push_str(&format!(
            "  - {{ name: T{i}, type: expression, expr: '{expr}' }}\n"
        ));
    }
    tasks.push_str(last);
    let y = package_yaml("big", head, &tasks);
    assert!(
        y.len() >= 64 * 1024,
        "{} bytes is under the cache's minimum",
        y.len()
    );
    y
}

/// A sandbox holding a parent package, `package.yaml` (`name: parent`, with
/// `head` and `tasks` as in [`package_yaml`]), and its child, `child.yaml`
/// (with `child_head` and `child_tasks`, see [`child_yaml`]).
pub fn parent_and_child(head: &str, tasks: &str, child_head: &str, child_tasks: &str) -> Sandbox {
    let sb = Sandbox::with_package(&package_yaml("parent", head, tasks));
    sb.write("child.yaml", &child_yaml(child_head, child_tasks));
    sb
}

/// A parent's tasks: `P1`, then `Child`, which runs `child.yaml` and fails
/// the package when it fails (a restart point), then `P2`.
pub const P1_CHILD_P2: &str = r#"  - { name: P1, type: process, command: "echo P1 >> ledger.txt" }
  - { name: Child, type: package, path: child.yaml, fail_package_on_failure: true }
  - { name: P2, type: process, command: "echo P2 >> ledger.txt" }
"#;

/// A child's tasks: `C1`, then `C2`, which fails the package until `fixed`
/// exists, then `C3`.
pub const C1_FAILING_C2_C3: &str = r#"  - { name: C1, type: process, command: "echo C1 >> ledger.txt" }
  - { name: C2, type: process, command: "echo C2 >> ledger.txt; test -f fixed", fail_package_on_failure: true }
  - { name: C3, type: process, command: "echo C3 >> ledger.txt" }
"#;

/// The child checkpoints (`child.*.ckpt`) in the sandbox, sorted.
pub fn child_checkpoints(sb: &Sandbox) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(sb.path())
        .expect("read the sandbox")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("child.") && n.ends_with(".ckpt"))
        .collect();
    v.sort();
    v
}

/// Fails unless the sandbox holds no child checkpoint; `ctx` starts the
/// message.
#[track_caller]
pub fn assert_no_child_checkpoint(sb: &Sandbox, ctx: &str) {
    let left = child_checkpoints(sb);
    assert!(left.is_empty(), "{ctx}: child checkpoints left: {left:?}");
}

/// `T1`, a transacted container run after `Create` (task list items): it
/// inserts a row into `a`, adds 1 to `User::Mid` and inserts a row into `b`,
/// on the connection `dw`.
pub const T1_TRANSACTED: &str = r#"  - name: T1
    type: sequence
    transaction: required
    fail_package_on_failure: true
    after: [Create]
    tasks:
      - { name: InsA, type: sql, connection: dw, sql: "INSERT INTO a VALUES (1)" }
      - { name: Count, type: expression, expr: "@[User::Mid] = @[User::Mid] + 1" }
      - { name: InsB, type: sql, connection: dw, sql: "INSERT INTO b VALUES (1)" }
"#;

/// What differs between the packages of the crash tests (`crash_matrix`,
/// `soak`); see [`protocols_package`].
pub struct Protocols<'a> {
    pub name: &'a str,
    /// The SQL of `Create`, which makes the tables (`a`, `b` and `c` at least).
    pub create: &'a str,
    /// Tasks run after `T1` and before the loop, which runs after `each_after`.
    pub after_t1: &'a str,
    pub each_after: &'a str,
    /// The loop's items, and its task after `Inc` (a flow mapping).
    pub items: &'a str,
    pub work: &'a str,
    /// The parallel branches beside `T2` (task list items).
    pub branches: &'a str,
}

/// The package of the crash tests, one task or container for each commit
/// protocol: `Create`; `T1` ([`T1_TRANSACTED`]); `after_t1`; `Each`, a loop
/// recording its iterations that adds 1 to `User::Total` in each; `Par`,
/// parallel branches of which `T2`, transacted, inserts a row into `c` and
/// adds 1 to `User::Mid2`; then `Report` writes `final mid=M mid2=M2
/// total=T` to `final.txt`.
pub fn protocols_package(p: &Protocols) -> String {
    let Protocols {
        name,
        create,
        after_t1,
        each_after,
        items,
        work,
        branches,
    } = p;
    format!(
        r#"id: {ID}
name: {name}
checkpoint: {{ file: run.ckpt, usage: if_exists, save: true }}
max_concurrent: 3
connections:
  dw: {DW}
variables:
  Mid: {{ type: int32, value: 0 }}
  Mid2: {{ type: int32, value: 0 }}
  Total: {{ type: int32, value: 0 }}
  Item: {{ type: string, value: "" }}
tasks:
  - name: Create
    type: sql
    connection: dw
    sql: "{create}"
{T1_TRANSACTED}{after_t1}  - name: Each
    type: foreach
    items: [{items}]
    map: [User::Item]
    checkpoint_iterations: true
    fail_package_on_failure: true
    after: [{each_after}]
    tasks:
      - {{ name: Inc, type: expression, expr: "@[User::Total] = @[User::Total] + 1" }}
      - {work}
  - name: Par
    type: sequence
    flow: parallel
    fail_package_on_failure: true
    after: [Each]
    tasks:
      - name: T2
        type: sequence
        transaction: required
        tasks:
          - {{ name: InsC, type: sql, connection: dw, sql: "INSERT INTO c VALUES (1)" }}
          - {{ name: Count2, type: expression, expr: "@[User::Mid2] = @[User::Mid2] + 1" }}
{branches}  - name: Report
    type: process
    after: [Par]
    command: "true"
    expressions:
      command: '"echo final mid=" + (DT_WSTR, 4)@[User::Mid] + " mid2=" + (DT_WSTR, 4)@[User::Mid2] + " total=" + (DT_WSTR, 4)@[User::Total] + " > final.txt"'
"#
    )
}

/// `id,name` lines with a header, one `ID,name ID` line for each of `ids`.
pub fn id_name_csv(ids: std::ops::RangeInclusive<u32>) -> String {
    let mut s = String::from("id,name\n");
    for i in ids {
        s.push_str(&format!("{i},name {i}\n"));
    }
    s
}
