//! What a run tells the outside world: [`Event`]s for reporters, [`Record`]s
//! for the journal, and the final [`RunResult`].

use checkflow_plan::{LogLevel, NodeId, VarValue};
use std::time::Duration;

/// An executable's result, as SSIS's DTSExecResult.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Succeeded.
    Success,
    /// Failed.
    Failure,
    /// Completed (ForceExecutionResult = completion).
    Completion,
}

impl Outcome {
    /// Its name, as logs and the checkpoint spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Completion => "completion",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an executable ended, for the summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Ran and succeeded.
    Succeeded,
    /// Ran and failed.
    Failed,
    /// Ran; its result was forced to completion.
    Completed,
    /// Not run: recorded as completed by an earlier run.
    Restored,
    /// Never started (constraints could not hold, or the package stopped first).
    NotRun,
    /// Disabled.
    Disabled,
    /// Stopped before it finished (Ctrl-C, or its container was cut short).
    Cancelled,
}

impl Status {
    /// Its name, as logs and the summary spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::Completed => "completed",
            Status::Restored => "restored",
            Status::NotRun => "not_run",
            Status::Disabled => "disabled",
            Status::Cancelled => "cancelled",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something that happened during a run.
#[derive(Clone, Debug)]
pub enum Event {
    /// An executable started (attempt counts from 1).
    Started { node: NodeId, attempt: u32 },
    /// An executable was restored from the checkpoint instead of run.
    Restored { node: NodeId, outcome: Outcome },
    /// An iteration of a loop started: index from 1 (a foreach item's place in
    /// its collection, counting items an earlier run finished); key for foreach.
    Iteration {
        node: NodeId,
        index: u64,
        key: Option<String>,
    },
    /// A foreach item was skipped: recorded as done by an earlier run.
    IterationSkipped { node: NodeId, key: String },
    /// A line of task output.
    Log {
        node: NodeId,
        level: LogLevel,
        line: String,
    },
    /// Progress of a long task.
    Progress {
        node: NodeId,
        done: u64,
        total: Option<u64>,
        unit: String,
    },
    /// Figures a task reported about its work (`RunCx::metrics`).
    Metrics {
        node: NodeId,
        metrics: serde_json::Value,
    },
    /// A task is still running (every 10 seconds after its first 10).
    Running { node: NodeId, elapsed: Duration },
    /// A failed attempt will be retried.
    Retrying {
        node: NodeId,
        attempt: u32,
        error: String,
        delay: Duration,
    },
    /// An executable ended.
    Finished {
        node: NodeId,
        status: Status,
        duration: Duration,
        error: Option<String>,
    },
    /// A warning about the run itself.
    Warning { message: String },
}

/// Receives events (console, JSON log, progress bars).
pub trait Reporter {
    /// Called in order, from the dispatcher thread.
    fn event(&mut self, event: &Event);

    /// The dispatcher is about to wait: write out anything buffered.
    fn flush(&mut self) {}
}

/// A completion to make durable.
#[derive(Clone, Debug)]
pub enum Record {
    /// Files to remove once the records before it in the batch are durable
    /// (a child package's finished checkpoint, which its restart needed
    /// until the parent recorded the task). Not a record of the journal.
    Discard {
        /// The files.
        paths: Vec<std::path::PathBuf>,
    },
    /// An executable completed.
    Completed {
        /// Which.
        node: NodeId,
        /// With what result.
        outcome: Outcome,
        /// How long it took.
        duration: Duration,
        /// Variables changed since the last record.
        vars: Vec<(u32, VarValue)>,
    },
    /// A transacted executable is about to commit (made durable before the
    /// commit, so a restart can ask the databases whether it happened).
    TxCommitting {
        /// The executable that owns the transaction.
        node: NodeId,
        /// The marker its commit writes.
        marker: String,
        /// The connections that took part.
        connections: Vec<String>,
        /// The variables its completion will carry, as they are at the
        /// commit: a restart that finds the commit made restores them.
        vars: Vec<(u32, VarValue)>,
    },
    /// An iteration of a `checkpoint_iterations` loop finished.
    Iteration {
        /// The loop.
        node: NodeId,
        /// The item's identity.
        key: String,
        /// Variables changed since the last record.
        vars: Vec<(u32, VarValue)>,
    },
}

/// Makes records durable (the journal); the executor never touches files.
pub trait Recorder {
    /// Writes a batch; returns only when it is durable. An error stops the run.
    fn record(&mut self, batch: Vec<Record>) -> Result<(), RecordError>;

    /// Whether the run may go on writing and starting work: `Err` when it
    /// lost what makes it the checkpoint's only writer (a shared store's
    /// lease). Asked before every start and at every turn of the
    /// dispatcher's loop; an error stops the run as a failed write does.
    fn hold(&mut self) -> Result<(), RecordError> {
        Ok(())
    }
}

/// Why a batch of records could not be made durable: the run stops, and
/// its message is the run's error.
#[derive(Debug)]
pub struct RecordError {
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl RecordError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> RecordError {
        RecordError {
            message: message.into(),
            source: None,
        }
    }

    /// An error with this message, caused by `source` (the journal's error).
    pub fn caused_by(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> RecordError {
        RecordError {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RecordError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// A recorder that keeps nothing (checkpoints off).
pub struct NoRecorder;

impl Recorder for NoRecorder {
    fn record(&mut self, _batch: Vec<Record>) -> Result<(), RecordError> {
        Ok(())
    }
}

/// How the package ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PackageOutcome {
    /// Every executable that had to run succeeded.
    Success,
    /// The package failed.
    Failure,
    /// Ctrl-C or SIGTERM.
    Cancelled,
}

/// One executable's line in the summary.
#[derive(Clone, Debug)]
pub struct NodeSummary {
    /// Which.
    pub node: NodeId,
    /// How it ended (its last run, for loop children).
    pub status: Status,
    /// Time spent running it (all runs).
    pub duration: Duration,
    /// How many times it ran.
    pub runs: u32,
    /// How those runs ended: a loop's children end once per iteration, so
    /// `status` (the last) does not tell the whole story.
    pub ended: Tally,
    /// Its last error.
    pub error: Option<String>,
    /// The figures it reported about its work (a data flow's rows per path
    /// and time per component), if any.
    pub metrics: Option<serde_json::Value>,
}

/// How many times an executable ended with each result in one run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Tally {
    pub succeeded: u32,
    pub failed: u32,
    pub completed: u32,
}

impl Tally {
    /// Counts one more end with `o`.
    pub fn add(&mut self, o: Outcome) {
        match o {
            Outcome::Success => self.succeeded += 1,
            Outcome::Failure => self.failed += 1,
            Outcome::Completion => self.completed += 1,
        }
    }

    /// How many ends were counted.
    pub fn total(&self) -> u32 {
        self.succeeded + self.failed + self.completed
    }
}

/// What a run did.
#[derive(Clone, Debug)]
pub struct RunResult {
    /// How the package ended.
    pub outcome: PackageOutcome,
    /// An executable with `fail_package_on_failure` failed: the checkpoint is kept.
    pub restart_point: bool,
    /// Every executable but the package, in plan order.
    pub summary: Vec<NodeSummary>,
    /// The journal could not be written: the run stopped.
    pub journal_error: Option<String>,
    /// Wall time.
    pub duration: Duration,
    /// The errors that failed the package, in order.
    pub errors: Vec<String>,
}
