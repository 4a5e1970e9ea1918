//! Executables once validated: the tree of [`Node`]s and package settings.

use crate::task::Action;
use checkflow_expr::Compiled;
use checkflow_model::{ForceResult, Logic, On, Retrieve, SourcePos, Usage};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// An index into `Plan::nodes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u32);

impl NodeId {
    /// As a vector index.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Where the checkpoint file is, as the package says.
#[derive(Clone)]
pub enum CheckpointFile {
    /// A literal path (relative to the package folder).
    Literal(String),
    /// An expression that gives the path.
    Expr(Compiled),
}

/// Checkpoint settings as written in the package (the command line may override them).
#[derive(Clone)]
pub struct CheckpointSettings {
    /// CheckpointFileName.
    pub file: Option<CheckpointFile>,
    /// CheckpointUsage.
    pub usage: Usage,
    /// SaveCheckpoints.
    pub save: bool,
    /// The `postgres` connection whose database is the shared store.
    pub store: Option<String>,
    /// The checkpoint's name in a store (default: the package id).
    pub key: Option<CheckpointFile>,
    /// How long a run holds the store's lease without renewing it.
    pub lease: Option<Duration>,
}

/// `restart:`: how a worker restarts a run that failed with a restart point.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RestartSettings {
    /// How many times the run is queued again at most (0: never).
    pub attempts: u32,
    /// After how long.
    pub delay: Duration,
    /// The delay is multiplied by this for every restart before.
    pub backoff: f64,
}

/// Package-level facts.
#[derive(Clone)]
pub struct PackageInfo {
    /// The package id.
    pub id: String,
    /// The package name.
    pub name: String,
    /// The package file.
    pub file: PathBuf,
    /// The folder relative paths resolve against.
    pub dir: PathBuf,
    /// Checkpoint settings.
    pub checkpoint: CheckpointSettings,
    /// MaxConcurrentExecutables.
    pub max_concurrent: usize,
    /// How a worker restarts a run that failed with a restart point.
    pub restart: RestartSettings,
}

/// An incoming precedence constraint.
#[derive(Clone)]
pub struct Constraint {
    /// The sibling that must finish first.
    pub from: NodeId,
    /// The result it must have.
    pub on: On,
    /// A boolean expression that must also hold (boxed: most constraints
    /// have none, and every task in a sequence has a constraint).
    pub expr: Option<Box<Compiled>>,
}

/// What a `foreach` iterates over.
#[derive(Clone, Debug)]
pub enum Enumerator {
    /// Literal items, each a list of values.
    Items(Vec<Vec<serde_json::Value>>),
    /// Files in a folder.
    Files {
        /// Resolved folder.
        folder: PathBuf,
        /// Wildcard pattern (`*` and `?`).
        pattern: String,
        /// Descend into subfolders.
        recursive: bool,
        /// What each item holds.
        retrieve: Retrieve,
    },
    /// The rows of an object variable (by slot).
    Rows(u32),
}

/// The expressions of a For Loop.
#[derive(Clone)]
pub struct LoopExprs {
    /// InitExpression.
    pub init: Option<Compiled>,
    /// EvalExpression (boolean).
    pub eval: Compiled,
    /// AssignExpression.
    pub assign: Option<Compiled>,
}

/// What kind of executable a node is.
#[derive(Clone)]
pub enum NodeKind {
    /// The package container.
    Package,
    /// A sequence container.
    Sequence,
    /// A For Loop (its expressions boxed: inline, they would triple the
    /// size of every node, and most nodes are tasks).
    ForLoop(Box<LoopExprs>),
    /// A Foreach Loop.
    Foreach {
        /// The collection.
        enumerator: Enumerator,
        /// Variables that receive each item's values, by position.
        map: Vec<u32>,
        /// Each finished iteration is recorded (beyond SSIS).
        checkpoint_iterations: bool,
    },
    /// A task.
    Task {
        /// Its `type:`.
        type_name: &'static str,
        /// What it does.
        action: Arc<dyn Action>,
    },
}

impl NodeKind {
    /// Whether this is a container (has children).
    pub fn is_container(&self) -> bool {
        !matches!(self, NodeKind::Task { .. })
    }

    /// The `type:` name.
    pub fn type_name(&self) -> &str {
        match self {
            NodeKind::Package => "package",
            NodeKind::Sequence => "sequence",
            NodeKind::ForLoop(_) => "for_loop",
            NodeKind::Foreach { .. } => "foreach",
            NodeKind::Task { type_name, .. } => type_name,
        }
    }
}

/// One validated executable.
#[derive(Clone)]
pub struct Node {
    /// Its id.
    pub id: NodeId,
    /// Its name.
    pub name: String,
    /// Its path: ancestors' names and its own joined by `/` (empty for the package).
    pub path: String,
    /// Its container (`None` for the package).
    pub parent: Option<NodeId>,
    /// What it is.
    pub kind: NodeKind,
    /// Its children, in file order.
    pub children: Vec<NodeId>,
    /// Incoming constraints (from siblings).
    pub preds: Vec<Constraint>,
    /// Siblings that have a constraint on this one.
    pub succs: Vec<NodeId>,
    /// How `preds` combine.
    pub logic: Logic,
    /// Not run; counts as success.
    pub disabled: bool,
    /// FailPackageOnFailure.
    pub fail_package: bool,
    /// FailParentOnFailure.
    pub fail_parent: bool,
    /// MaximumErrorCount.
    pub max_errors: u32,
    /// ForceExecutionResult.
    pub force_result: Option<ForceResult>,
    /// Runs in a transaction (its own or an ancestor's).
    pub transacted: bool,
    /// Starts a transaction of its own (`transaction: required`).
    pub starts_transaction: bool,
    /// Retries before a failure counts.
    pub retries: u32,
    /// Wait between retries.
    pub retry_delay: Duration,
    /// Fail after this long.
    pub timeout: Option<Duration>,
    /// Property expressions: property name and expression.
    pub prop_exprs: Vec<(String, Compiled)>,
    /// Hash of every field that affects what it does (children included).
    pub fingerprint: String,
    /// Its completion is recorded (it is not inside an atomic unit).
    pub recordable: bool,
    /// It is an atomic unit: its children are not recorded.
    pub atomic: bool,
    /// Where it is defined.
    pub pos: SourcePos,
    /// Its event handlers, if it has any.
    pub handlers: Option<Box<Handlers>>,
}

/// The events an event handler runs for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HandlerEvent {
    /// An executable raised an error.
    OnError,
    /// An executable failed.
    OnTaskFailed,
    /// An executable is about to run.
    OnPreExecute,
    /// An executable has finished running.
    OnPostExecute,
    /// An executable logged a warning.
    OnWarning,
}

impl HandlerEvent {
    /// Every event, in the order of the package format.
    pub const ALL: [HandlerEvent; 5] = [
        HandlerEvent::OnError,
        HandlerEvent::OnTaskFailed,
        HandlerEvent::OnPreExecute,
        HandlerEvent::OnPostExecute,
        HandlerEvent::OnWarning,
    ];

    /// Its key under `event_handlers:`.
    pub fn key(self) -> &'static str {
        match self {
            HandlerEvent::OnError => "on_error",
            HandlerEvent::OnTaskFailed => "on_task_failed",
            HandlerEvent::OnPreExecute => "on_pre_execute",
            HandlerEvent::OnPostExecute => "on_post_execute",
            HandlerEvent::OnWarning => "on_warning",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// An executable's event handlers: for each event, the executables that run
/// when it fires, as a plan of their own (its package node stands for the
/// handler; nothing in it is ever recorded).
#[derive(Clone, Default)]
pub struct Handlers {
    plans: [Option<Arc<crate::Plan>>; 5],
}

impl Handlers {
    /// The handler for an event.
    pub fn get(&self, event: HandlerEvent) -> Option<&Arc<crate::Plan>> {
        self.plans[event.index()].as_ref()
    }

    /// Sets the handler for an event.
    pub fn set(&mut self, event: HandlerEvent, plan: crate::Plan) {
        self.plans[event.index()] = Some(Arc::new(plan));
    }
}
