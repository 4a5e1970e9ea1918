//! The task interface: how a task type is validated ([`TaskType`]) and run ([`Action`]).
//!
//! The executor only knows [`Action`]; each task type lives in `checkflow-tasks`
//! and is registered in a [`Registry`], so new types slot in without touching
//! the executor.

use crate::diag::Diagnostic;
use crate::vars::{VarTable, VarValue};
use checkflow_expr::{Compiled, DataType, Env, Value};
use checkflow_model::{ConnectionDef, SourcePos, Spanned, TaskDef};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// A task failed: the message says why (it becomes `System::ErrorDescription`).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct TaskError {
    /// Why.
    pub message: String,
}

impl TaskError {
    /// A failure with this message.
    pub fn new(message: impl Into<String>) -> TaskError {
        TaskError {
            message: message.into(),
        }
    }
}

/// How loud a task log line is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    /// Normal output (a process's stdout).
    Info,
    /// A warning (a process's stderr).
    Warn,
}

/// Stops a running task: sets a flag and kills registered process groups.
#[derive(Clone, Default)]
pub struct CancelToken {
    inner: Arc<CancelInner>,
}

#[derive(Default)]
struct CancelInner {
    cancelled: AtomicBool,
    groups: Mutex<Vec<u32>>,
}

impl CancelToken {
    /// A fresh token.
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    /// Whether cancellation was asked for.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
    }

    /// Asks running work to stop, and kills every registered process group.
    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::SeqCst);
        let groups = self
            .inner
            .groups
            .lock()
            .map(|g| g.clone())
            .unwrap_or_default();
        for g in groups {
            kill_group(g);
        }
    }

    /// Registers a child process group to kill on cancel. If cancellation
    /// already happened, kills it at once (so no race loses a kill).
    pub fn register_group(&self, pgid: u32) {
        if let Ok(mut g) = self.inner.groups.lock() {
            g.push(pgid);
        }
        if self.is_cancelled() {
            kill_group(pgid);
        }
    }

    /// Forgets a process group that has exited.
    pub fn unregister_group(&self, pgid: u32) {
        if let Ok(mut g) = self.inner.groups.lock() {
            g.retain(|x| *x != pgid);
        }
    }
}

#[cfg(unix)]
fn kill_group(pgid: u32) {
    // SAFETY: kill(2) with a negative pid signals a process group; it has no
    // memory-safety preconditions.
    unsafe {
        libc::kill(-(pgid as i32), libc::SIGKILL);
    }
}

#[cfg(not(unix))]
fn kill_group(_pgid: u32) {}

/// What a running task can see and do.
pub trait RunCx: Send {
    /// The value of a variable.
    fn get(&self, slot: u32) -> VarValue;
    /// Sets a variable (the value must already have the variable's type).
    fn set(&mut self, slot: u32, value: VarValue) -> Result<(), TaskError>;
    /// Evaluates a compiled expression in this task's context.
    fn eval(&self, expr: &Compiled) -> Result<Value, TaskError>;
    /// An expression environment for this task's context.
    fn env(&self) -> &dyn Env;
    /// The value a property expression gave this property, if it has one.
    fn property(&self, name: &str) -> Option<&Value>;
    /// Writes a line to the run log.
    fn log(&self, level: LogLevel, line: &str);
    /// Reports progress of a long task.
    fn progress(&self, done: u64, total: Option<u64>, unit: &str);
    /// Figures about the task's work, shown in the run's summary, its
    /// `--report` and its JSON log (a data flow: rows per path, time per
    /// component). The last report of a run wins. Outside a run, dropped.
    fn metrics(&self, _metrics: serde_json::Value) {}
    /// The cancellation token (timeout, Ctrl-C, package failure).
    fn cancel_token(&self) -> &CancelToken;
    /// The package folder.
    fn package_dir(&self) -> &Path;
    /// The variable table (types and names).
    fn vars(&self) -> &VarTable;

    /// Which execution of the task this is (see [`Execution`]). The default
    /// is for contexts outside a run (tests): every call a new one.
    fn execution(&self) -> Execution {
        Execution::unique()
    }

    /// The transaction this task runs in (`transaction: required` on it or a
    /// container above it), if any.
    fn transaction(&self) -> Option<std::sync::Arc<crate::tx::TxScope>> {
        None
    }

    /// Whether a restart runs this task again with the whole atomic unit
    /// around it (a loop without `checkpoint_iterations`, a transacted or
    /// `restart_unit` container), so that nothing it did is to be resumed.
    fn reruns_whole(&self) -> bool {
        false
    }

    /// Asks for `path` to be removed once the record that covers this task
    /// (its own completion, or its unit's) is durable: until then a restart
    /// may still need it (a child package's finished checkpoint). Outside a
    /// run, nothing is removed.
    fn discard_when_recorded(&self, _path: std::path::PathBuf) {}

    /// The scope that tags this task's processes, and the task's path: set
    /// when the run holds a checkpoint's lock (see [`crate::ProcessScope`]).
    fn processes(&self) -> Option<(&crate::ProcessScope, &str)> {
        None
    }

    /// A string property: its property-expression value if any, else `written`.
    fn prop_string(&self, name: &str, written: &str) -> String {
        match self.property(name) {
            Some(v) if !v.is_null() => v.to_string(),
            _ => written.to_string(),
        }
    }

    /// A path property, resolved against the package folder.
    fn prop_path(&self, name: &str, written: &str) -> PathBuf {
        resolve(self.package_dir(), &self.prop_string(name, written))
    }
}

/// Which execution of a task this is, for work that must happen once per
/// execution although a crash can separate it from the record of its
/// completion (a bulk load's progress row, a child package's checkpoint).
///
/// A task run twice gets the same `Execution` exactly when the second run
/// can only be the first one again, cut short before its completion was
/// recorded: a restart from the same checkpoint, in the same loop iteration,
/// with no record completing or forgetting the task (or an executable around
/// it) written in between. A new checkpoint (or none), another iteration, a
/// recorded completion and `--rerun` all give a new one. Retries of a task
/// share their execution.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Execution {
    /// The package id and the checkpoint file the run uses (none when it has
    /// none): the same for every run of the package that uses this file.
    pub owner: String,
    /// The checkpoint's identity (the id of the run that created it), or the
    /// run's own id when the run restarts none.
    pub checkpoint: String,
    /// The task's path.
    pub path: String,
    /// Each loop around the task, outermost first: its path and its current
    /// iteration (a foreach item's key, or `#N` for a for_loop).
    pub iterations: Vec<(String, String)>,
    /// How many records of the checkpoint completed or forgot the task or an
    /// executable around it. It only grows.
    pub generation: u32,
}

impl Execution {
    /// An execution that shares its identity with no other (outside a run).
    pub fn unique() -> Execution {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Execution {
            checkpoint: format!("unrecorded {} {t} {n}", std::process::id()),
            ..Execution::default()
        }
    }

    /// The identity as one line of text (JSON, so that no two differ only
    /// in where a field ends). The owner is left out: the checkpoint's
    /// identity is unique on its own, and a checkpoint folder reached by
    /// another path must not make a restart a new execution.
    pub fn id(&self) -> String {
        serde_json::json!([self.checkpoint, self.path, self.iterations, self.generation])
            .to_string()
    }

    /// The task in its iteration, the same in every run of the package with
    /// the same checkpoint file: the owner, the task's path and the loops'
    /// current items, as hex (16 digits of a SHA-256), for a file name.
    pub fn instance_hash(&self) -> String {
        short_hash(&serde_json::json!([self.owner, self.path, self.iterations]).to_string())
    }

    /// [`Execution::id`] as hex (16 digits of a SHA-256), for a file name.
    pub fn id_hash(&self) -> String {
        short_hash(&self.id())
    }
}

fn short_hash(text: &str) -> String {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(text.as_bytes());
    h[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Resolves a path against the package folder (absolute paths stay as they are).
pub fn resolve(dir: &Path, p: &str) -> PathBuf {
    let path = Path::new(p);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        dir.join(path)
    }
}

/// What a task does when it runs.
pub trait Action: Send + Sync {
    /// Runs the task; `Ok` is success.
    fn run(&self, cx: &mut dyn RunCx) -> Result<(), TaskError>;

    /// Cheap and never blocks: the executor may run it on its own thread.
    fn inline(&self) -> bool {
        false
    }
}

/// Expressions compiled during one validation, by text: packages generated
/// from templates repeat the same expression in many tasks, and each text is
/// then parsed and type-checked once. Sound because every compile in one
/// validation sees the same, complete variable table; failures are not kept
/// (each is reported where it is written).
#[derive(Default)]
pub(crate) struct ExprMemo {
    /// Indexed by `allow_assign`.
    done: [std::collections::HashMap<Box<str>, Compiled>; 2],
}

impl ExprMemo {
    /// `checkflow_expr::compile`, once per text and `allow_assign`.
    pub(crate) fn compile(
        &mut self,
        src: &str,
        vars: &VarTable,
        allow_assign: bool,
    ) -> Result<Compiled, checkflow_expr::ExprError> {
        let done = &mut self.done[usize::from(allow_assign)];
        if let Some(c) = done.get(src) {
            return Ok(c.clone());
        }
        let c = checkflow_expr::compile(src, vars, allow_assign)?;
        done.insert(Box::from(src), c.clone());
        Ok(c)
    }
}

/// Validation context handed to [`TaskType::build`].
pub struct BuildCx<'a> {
    pub(crate) vars: &'a VarTable,
    pub(crate) memo: &'a mut ExprMemo,
    pub(crate) diags: &'a mut Vec<Diagnostic>,
    pub(crate) dir: &'a Path,
    pub(crate) connections: &'a BTreeMap<String, Spanned<ConnectionDef>>,
    pub(crate) pos: SourcePos,
    pub(crate) task: &'a str,
}

impl BuildCx<'_> {
    /// Reports a problem at the task's position.
    pub fn error(&mut self, message: impl Into<String>) {
        let message = format!("task \"{}\": {}", self.task, message.into());
        self.diags.push(Diagnostic {
            pos: Some(self.pos),
            message,
        });
    }

    /// Reports a problem at a given position.
    pub fn error_at(&mut self, pos: SourcePos, message: impl Into<String>) {
        let message = format!("task \"{}\": {}", self.task, message.into());
        self.diags.push(Diagnostic {
            pos: Some(pos),
            message,
        });
    }

    /// Reports a missing required field.
    pub fn missing(&mut self, field: &str, kind: &str) {
        self.error(format!("a {kind} task needs `{field}`"));
    }

    /// Compiles an expression; reports errors at `pos`.
    pub fn compile(&mut self, src: &str, allow_assign: bool, pos: SourcePos) -> Option<Compiled> {
        match self.memo.compile(src, self.vars, allow_assign) {
            Ok(c) => Some(c),
            Err(e) => {
                self.error_at(pos, format!("bad expression: {e}"));
                None
            }
        }
    }

    /// Resolves a variable that the task will write; reports unknown or read-only ones.
    pub fn writable_var(&mut self, name: &str, pos: SourcePos) -> Option<(u32, DataType)> {
        let Some(slot) = self.vars.slot(name) else {
            self.error_at(pos, format!("unknown variable \"{name}\""));
            return None;
        };
        let d = self.vars.decl(slot);
        if d.read_only || d.system.is_some() || d.expr.is_some() {
            self.error_at(pos, format!("variable \"{name}\" is read-only"));
            return None;
        }
        Some((slot, d.ty.clone()))
    }

    /// Resolves a variable that the task will read.
    pub fn readable_var(&mut self, name: &str, pos: SourcePos) -> Option<(u32, DataType)> {
        match self.vars.slot(name) {
            Some(slot) => Some((slot, self.vars.decl(slot).ty.clone())),
            None => {
                self.error_at(pos, format!("unknown variable \"{name}\""));
                None
            }
        }
    }

    /// Checks that a connection exists and has one of `kinds`.
    pub fn connection(&mut self, name: &str, kinds: &[&str]) -> Option<ConnectionDef> {
        match self.connections.get(name) {
            None => {
                self.error(format!("unknown connection \"{name}\""));
                None
            }
            Some(c) if !kinds.is_empty() && !kinds.contains(&c.value.kind.value.as_str()) => {
                self.error(format!(
                    "connection \"{name}\" is of kind {}, expected {}",
                    c.value.kind.value,
                    kinds.join(" or ")
                ));
                None
            }
            Some(c) => Some(c.value.clone()),
        }
    }

    /// The package folder.
    pub fn package_dir(&self) -> &Path {
        self.dir
    }

    /// The variable table.
    pub fn vars(&self) -> &VarTable {
        self.vars
    }

    /// The task's position.
    pub fn pos(&self) -> SourcePos {
        self.pos
    }
}

/// A task type: which fields it takes and how it builds its [`Action`].
pub trait TaskType: Send + Sync {
    /// The `type:` name.
    fn name(&self) -> &'static str;
    /// The type-specific fields it accepts.
    fn fields(&self) -> &'static [&'static str];
    /// Checks the definition and builds the action (problems go to `cx`).
    fn build(&self, def: &TaskDef, cx: &mut BuildCx<'_>) -> Option<Arc<dyn Action>>;
}

/// The task types a run knows.
#[derive(Default)]
pub struct Registry {
    types: BTreeMap<&'static str, Box<dyn TaskType>>,
    probes: BTreeMap<&'static str, Box<dyn crate::tx::TxProbe>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Adds a task type.
    pub fn add(&mut self, t: Box<dyn TaskType>) {
        self.types.insert(t.name(), t);
    }

    /// Looks a type up.
    pub fn get(&self, name: &str) -> Option<&dyn TaskType> {
        self.types.get(name).map(|b| b.as_ref())
    }

    /// Adds a transaction-marker probe for a connection kind.
    pub fn add_probe(&mut self, p: Box<dyn crate::tx::TxProbe>) {
        self.probes.insert(p.kind(), p);
    }

    /// The probe for a connection kind.
    pub fn probe(&self, kind: &str) -> Option<&dyn crate::tx::TxProbe> {
        self.probes.get(kind).map(|b| b.as_ref())
    }

    /// All type names.
    pub fn names(&self) -> Vec<&'static str> {
        self.types.keys().copied().collect()
    }
}
