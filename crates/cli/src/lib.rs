//! The command line: argv -> invocation -> exit code.
//!
//! 1. clap parses the arguments ([`args`]); a bad command line exits with 6,
//!    and so does no command at all (after printing the help), as dtexec
//!    with no options does.
//! 2. Each command is a thin wrapper over `ops::<verb>`.
//! 3. Errors print their whole message to stderr and map to dtexec's exit codes ([`exit`]).

pub mod args;
mod checkpoint;
mod config;
pub mod exit;
mod ops;
mod pkgcache;
mod report;
mod session;
mod timing;

use args::{CheckpointCmd, Cli, Cmd};
use clap::Parser;

/// Every task type this binary runs: `checkflow-tasks`' types and the data flow.
pub fn registry() -> checkflow_plan::Registry {
    let mut r = checkflow_tasks::registry();
    r.add(Box::new(checkflow_dataflow::DataFlowType));
    r
}

/// Runs the command line and returns the process exit code.
pub fn main() -> i32 {
    checkpoint::store::take_worker_store();
    timing::init();
    checkflow_store::set_failpoint(checkflow_plan::failpoint);
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    exit::SUCCESS
                }
                _ => exit::BAD_COMMAND_LINE,
            };
            let _ = e.print();
            return code;
        }
    };
    let result = match &cli.command {
        Cmd::New { name, dir } => ops::new::new(name, dir),
        Cmd::Run(a) => ops::run::run(a),
        Cmd::Validate { package } => ops::validate::validate(package),
        Cmd::Plan { run, json } => ops::plan::plan(run, *json),
        Cmd::Checkpoint(CheckpointCmd::Show {
            file,
            checkpoint_store,
            json,
        }) => ops::show::show(file, checkpoint_store.as_deref(), *json),
        Cmd::Submit(a) => ops::queue::submit(a),
        Cmd::Worker(a) => ops::worker::worker(a),
        Cmd::Runs { store, queue, json } => ops::queue::runs(store, queue.as_deref(), *json),
        Cmd::Graph { package, format } => ops::graph::graph(package, *format),
        Cmd::Eval { expr, set, json } => ops::eval::eval(expr, set, *json),
    };
    match result {
        Ok(code) => code,
        Err(f) => {
            eprintln!("checkflow: {}", f.message);
            f.code
        }
    }
}
