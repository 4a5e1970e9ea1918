//! The command line, as clap parses it.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Runs ETL packages and restarts them from the point of failure.
///
/// A package is a YAML file of tasks and containers joined by precedence
/// constraints. With checkpoints on, every finished executable is recorded
/// durably; when the package fails, the next run restores what finished and
/// resumes at the point of failure (the SSIS checkpoint rules, see README).
#[derive(Parser, Debug)]
#[command(name = "checkflow", version, after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

const EXAMPLES: &str = "\
Examples:
  checkflow new nightly                       # a new package: nightly/package.yaml
  checkflow run nightly/package.yaml          # fails by design; its comments say why
  checkflow run examples/quickstart/package.yaml
  checkflow run nightly.yaml --set User::Day=2026-11-21 --checkpointing on --restart if_possible
  checkflow plan nightly.yaml                 # what a rerun would restore and run
  checkflow checkpoint show state/nightly.ckpt --json
  checkflow eval '\"file_\" + (DT_WSTR, 4) YEAR(GETDATE()) + \".csv\"'
  checkflow run nightly.yaml --checkpoint-store postgres://etl@db/state --takeover
  checkflow submit nightly.yaml --store postgres://etl@db/state   # queue it for the workers
  checkflow worker --store postgres://etl@db/state --concurrency 4

Exit codes (as dtexec): 0 success, 1 package failed, 3 cancelled,
4 package file not found, 5 package not valid, 6 bad command line
(also `checkflow` with no command, which prints this help).

Environment:
  CHECKFLOW_KEY        secret that seals sensitive values in checkpoints (files and stores)
  CHECKFLOW_CACHE_DIR  where parsed packages of 64 KiB and more are kept, so an
                       unchanged one is not parsed again (default
                       ~/.cache/checkflow/packages; `off` turns it off)";

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Start a new package: NAME/package.yaml, with a fresh id, a checkpoint, and a task that fails once to show a restart.
    New {
        /// The package's name, and the folder made for it.
        name: String,
        /// The folder to make it in.
        #[arg(long, value_name = "DIR", default_value = ".")]
        dir: PathBuf,
    },
    /// Run a package (restarting from its checkpoint where the settings say so).
    Run(RunArgs),
    /// Load and validate a package; report every problem at once.
    Validate {
        /// The package file.
        package: PathBuf,
    },
    /// Show what a run would do now: each executable restored or run, and why. Changes nothing.
    Plan {
        #[command(flatten)]
        run: RunOpts,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Inspect checkpoint files.
    #[command(subcommand)]
    Checkpoint(CheckpointCmd),
    /// Print the control flow as a graph (Graphviz dot or Mermaid).
    Graph {
        /// The package file.
        package: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
        format: GraphFormat,
    },
    /// Queue a run of a package in a shared store, for `checkflow worker` to run.
    Submit(SubmitArgs),
    /// Run queued runs from a shared store, and take over runs whose worker died.
    Worker(WorkerArgs),
    /// List the runs queued in a shared store: state, attempts, worker, times, last error.
    Runs {
        /// The store (postgres://user@host:port/db).
        #[arg(long, value_name = "URL")]
        store: String,
        /// Only this queue.
        #[arg(long, value_name = "Q")]
        queue: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Evaluate one SSIS expression and print its value and type.
    Eval {
        /// The expression, e.g. '(DT_WSTR, 10) 42 + "x"' (it may start with '-').
        #[arg(allow_hyphen_values = true)]
        expr: String,
        /// Give a variable a value (type inferred: integer, real, boolean, date or string).
        #[arg(long = "set", value_name = "User::X=VALUE")]
        set: Vec<String>,
        /// Print `{"value": ..., "type": "DT_..."}`.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum CheckpointCmd {
    /// Show a checkpoint: package id, completed executables, variables (sensitive ones masked), configuration.
    Show {
        /// The checkpoint file (with --checkpoint-store: the checkpoint's key).
        file: PathBuf,
        /// Read the checkpoint from this shared store; FILE is then its key.
        #[arg(long, value_name = "URL")]
        checkpoint_store: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Copy, Clone, Debug, ValueEnum)]
pub enum GraphFormat {
    Dot,
    Mermaid,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

/// dtexec's /Restart: deny = never, force = always, if_possible = if_exists.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum Restart {
    Deny,
    Force,
    IfPossible,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Changed {
    Keep,
    Rerun,
    Refuse,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Options shared by `run` and `plan`.
#[derive(Args, Debug, Clone)]
pub struct RunOpts {
    /// The package file.
    pub package: PathBuf,
    /// Set a variable: User::X=VALUE (typed by the variable). Repeatable. Configuration: stored in the checkpoint.
    #[arg(long = "set", value_name = "User::X=VALUE")]
    pub set: Vec<String>,
    /// A YAML file mapping variables to values (configuration); `-` reads it from standard input.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// on = save checkpoints and always restart from one (dtexec /CheckPointing on); off = neither.
    #[arg(long, value_enum)]
    pub checkpointing: Option<OnOff>,
    /// deny = never use an existing checkpoint; force = it must exist; if_possible = use it if it exists.
    #[arg(long, value_enum)]
    pub restart: Option<Restart>,
    /// The checkpoint file (relative to the current folder).
    #[arg(long, value_name = "PATH", conflicts_with = "checkpoint_store")]
    pub checkpoint_file: Option<PathBuf>,
    /// Keep the checkpoint in a shared store, a PostgreSQL database
    /// (postgres://user@host:port/db), instead of a file: runs on other
    /// machines can then restart it. The package's `checkpoint.key` names it.
    #[arg(long, value_name = "URL")]
    pub checkpoint_store: Option<String>,
    /// The checkpoint's name in the store (default: the package's
    /// `checkpoint.key`, else its id).
    #[arg(long, value_name = "KEY")]
    pub checkpoint_key: Option<String>,
    /// If another run holds the checkpoint's lease in the store, wait for it
    /// to expire, then take the run over from its records.
    #[arg(long)]
    pub takeover: bool,
    /// Run this executable again even though it is recorded, and everything after it. Repeatable.
    #[arg(long, value_name = "PATH")]
    pub rerun: Vec<String>,
    /// What to do with a recorded executable whose definition changed since.
    #[arg(long, value_enum, default_value_t = Changed::Keep)]
    pub changed: Changed,
    /// MaxConcurrentExecutables for this run (1 or more).
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    pub max_concurrent: Option<usize>,
    /// Set by a parent's `package` task: `INSTANCE-EXECUTION` (hex) names the
    /// task in its iteration and the parent's execution of it. The child's
    /// checkpoint file carries it, and a checkpoint started with other bound
    /// values is refused (docs/design/commit-protocols.md, section 4).
    #[arg(long, hide = true, value_name = "KEY", value_parser = child_key)]
    pub child_of: Option<String>,
    /// Set by `checkflow worker`: the queued run this is, and its claim
    /// (`ID:TOKEN`). The run goes ahead only while that claim is the run's
    /// current one, and records its own end in the queue in the transaction
    /// that settles its checkpoint (docs/design/store.md §6). The store's
    /// URL comes in `CHECKFLOW_WORKER_STORE` (not on the command line, where
    /// other users could read a password).
    #[arg(long, hide = true, value_name = "ID:TOKEN", value_parser = claim)]
    pub queue_run: Option<checkflow_store::Claim>,
    /// Set by a parent's `package` task whose own record covers it: a child
    /// that succeeds keeps its finished checkpoint, and the parent removes it
    /// once that record is durable (docs/design/commit-protocols.md, section 4).
    #[arg(long, hide = true, requires = "child_of")]
    pub keep_finished: bool,
}

/// `--child-of`: two runs of hex digits joined by `-` (it becomes part of a file name).
fn child_key(s: &str) -> Result<String, String> {
    let ok = s.split_once('-').is_some_and(|(a, b)| {
        [a, b]
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 64 && p.bytes().all(|c| c.is_ascii_hexdigit()))
    });
    if ok {
        Ok(s.to_string())
    } else {
        Err("expected INSTANCE-EXECUTION in hex digits".into())
    }
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub run: RunOpts,
    /// Log format: text for people, json for machines (one object a line).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log: LogFormat,
    /// Write the run summary as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

/// `--max-concurrent`: a whole number, 1 or more (as `max_concurrent` in a package).
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be 1 or more (0 would run nothing)".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("expected a whole number: {e}")),
    }
}

#[derive(Args, Debug)]
pub struct SubmitArgs {
    #[command(flatten)]
    pub run: RunOpts,
    /// The store that holds the queue and the run's checkpoint.
    #[arg(long, value_name = "URL")]
    pub store: String,
    /// The queue (workers take runs from the queues they are given).
    #[arg(long, value_name = "Q", default_value = "default")]
    pub queue: String,
}

#[derive(Args, Debug)]
pub struct WorkerArgs {
    /// The store that holds the queue and the runs' checkpoints.
    #[arg(long, value_name = "URL")]
    pub store: String,
    /// The queue to take runs from.
    #[arg(long, value_name = "Q", default_value = "default")]
    pub queue: String,
    /// How many runs at a time.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = at_least_one)]
    pub concurrency: usize,
    /// Stop once every run in the queue has finished (succeeded or failed).
    #[arg(long)]
    pub exit_when_done: bool,
    /// How long this worker's claim on a run lasts without renewal: after
    /// that (and once the run's own lease has expired), another worker takes
    /// the run over. At least 1s.
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = checkflow_plan::parse_lease)]
    pub lease: std::time::Duration,
    /// Log format of the worker's own lines (each run's lines are passed on as it writes them).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log: LogFormat,
}

/// `--queue-run`: `ID:TOKEN`.
fn claim(s: &str) -> Result<checkflow_store::Claim, String> {
    checkflow_store::Claim::parse(s).ok_or_else(|| "expected ID:TOKEN".to_string())
}
