//! `checkflow run`: the whole run, from settings to the checkpoint's fate.

use crate::args::RunArgs;
use crate::checkpoint::{fate, record};
use crate::exit;
use crate::report::{Console, print_summary, summary_json};
use crate::session::{self, Fail, Session};
use checkflow_exec::RunOptions;
use checkflow_journal as journal;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

static INTERRUPT: OnceLock<Arc<AtomicBool>> = OnceLock::new();

pub(crate) fn interrupt_flag() -> Arc<AtomicBool> {
    INTERRUPT
        .get_or_init(|| {
            let flag = Arc::new(AtomicBool::new(false));
            let f = flag.clone();
            // Ctrl-C, SIGTERM and SIGHUP: stop starting work, kill running
            // processes, keep what finished. A second signal exits at once.
            let _ = ctrlc::set_handler(move || {
                if f.swap(true, Ordering::SeqCst) {
                    std::process::exit(exit::CANCELLED);
                }
            });
            flag
        })
        .clone()
}

pub fn run(args: &RunArgs) -> Result<i32, Fail> {
    run_with(args, &journal::Journal::create)
}

/// `run`, creating a new checkpoint with `create`.
pub(crate) fn run_with(args: &RunArgs, create: record::CreateJournal<'_>) -> Result<i32, Fail> {
    let interrupt = interrupt_flag();
    let s = session::open(&args.run, true)?;
    let Session {
        plan,
        checkpoint,
        state,
        resume,
        config,
        initial,
        warnings,
        key,
        lock,
        lease,
        stored,
        run_id,
        committed_tx,
    } = s;
    let mut console = Console::new(&plan, args.log);
    for w in &warnings {
        console.note("warning", w);
    }
    let ckpt_display = checkpoint.shown();

    let mut lease = lease;
    let mut journal = record::start_journal(
        &plan,
        &checkpoint,
        &state,
        &key,
        record::At::of(&lock, &lease, &stored),
        &committed_tx,
        &resume,
        &config,
        &initial,
        &run_id,
        create,
    )?;

    console.run_started(&run_id, state.is_some(), ckpt_display.as_deref());
    let opts = RunOptions {
        max_concurrent: args
            .run
            .max_concurrent
            .unwrap_or(plan.package.max_concurrent),
        resume,
        initial,
        interrupt,
        tx_prefix: run_id.clone(),
        // Only the run that holds a checkpoint's lock may take a process
        // carrying its tag for a leftover of another run.
        processes: match (&lock, &lease) {
            (Some(l), _) => Some(Arc::new(checkflow_plan::ProcessScope::new(
                l.checkpoint(),
                &run_id,
            ))),
            (None, Some(_)) => ckpt_display.as_ref().map(|name| {
                Arc::new(checkflow_plan::ProcessScope::new(
                    std::path::Path::new(name),
                    &run_id,
                ))
            }),
            (None, None) => None,
        },
    };
    let t = crate::timing::start();
    let result = match journal {
        Some(j) => {
            let mut rec = record::JournalRecorder {
                journal: j,
                plan: &plan,
                lease: lease.as_ref().map(|l| l.guard()),
            };
            let r = checkflow_exec::run(&plan, opts, &mut rec, &mut console);
            journal = Some(rec.journal);
            r
        }
        None => {
            // A restart that does not save still holds the store's lease.
            let mut rec = record::NoJournal {
                lease: lease.as_ref().map(|l| l.guard()),
            };
            checkflow_exec::run(&plan, opts, &mut rec, &mut console)
        }
    };

    crate::timing::phase("run", t);
    // Log lines are buffered; they come before the summary.
    checkflow_exec::Reporter::flush(&mut console);
    let fate::Fate {
        kept,
        note,
        warning,
    } = fate::settle(
        &result,
        journal,
        &state,
        &checkpoint,
        &lock,
        &mut lease,
        args.run.queue_run,
        args.run.keep_finished,
    );
    if let Some(w) = warning {
        console.note("warning", &w);
    }
    drop(lock);
    if let Some(mut l) = lease {
        // A run fenced off by another holder says who took the key over.
        if let Some(why) = l.why_lost() {
            console.note(
                "error",
                &format!(
                    "lost the lease on checkpoint {}: {why}; this run wrote no record and started no task since",
                    checkpoint.shown().unwrap_or_default()
                ),
            );
        }
        l.release();
    }
    let code = exit::of(result.outcome);
    let ck = json!({"file": ckpt_display, "kept": kept, "restarted": state.is_some(),
                    "store": checkpoint.store.as_ref().map(|t| json!({"key": t.key}))});
    print_summary(&plan, &result, args.log, code, &ck, &note);
    if let Some(rp) = &args.report {
        let v = summary_json(&plan, &result, code, &ck);
        let text = serde_json::to_string_pretty(&v).unwrap_or_default();
        if let Err(e) = write_report(rp, &text) {
            eprintln!("checkflow: failed to write report {}: {e}", rp.display());
        }
    }
    Ok(code)
}

/// Writes the `--report` file: created or truncated, never through a link
/// and never into a FIFO or a device.
fn write_report(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    checkflow_files::open(&opts, path, checkflow_files::Links::Refuse)?.write_all(text.as_bytes())
}

#[cfg(test)]
mod crash_tests;
