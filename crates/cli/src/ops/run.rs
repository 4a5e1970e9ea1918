//! `checkflow run`: the whole run, from settings to the checkpoint's fate.

use crate::args::RunArgs;
use crate::exit;
use crate::report::{Console, print_summary, summary_json};
use crate::session::{self, Fail, Session};
use checkflow_exec::{Outcome, PackageOutcome, Record, Recorder, RunOptions};
use checkflow_journal as journal;
use checkflow_plan::{Plan, VarValue};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

static INTERRUPT: OnceLock<Arc<AtomicBool>> = OnceLock::new();

fn interrupt_flag() -> Arc<AtomicBool> {
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

/// Writes completions to the checkpoint journal.
struct JournalRecorder<'p> {
    journal: journal::Journal,
    plan: &'p Plan,
}

fn var_map(plan: &Plan, vars: Vec<(u32, VarValue)>) -> BTreeMap<String, journal::VarValue> {
    vars.into_iter()
        // System variables are the run's own; expression variables are computed.
        .filter(|(slot, _)| {
            let d = plan.vars.decl(*slot);
            d.system.is_none() && d.expr.is_none()
        })
        .map(|(slot, v)| {
            let d = plan.vars.decl(slot);
            (
                d.name.qualified(),
                journal::VarValue {
                    value: v.to_json(),
                    sensitive: d.sensitive,
                },
            )
        })
        .collect()
}

fn outcome(o: Outcome) -> journal::Outcome {
    match o {
        Outcome::Success => journal::Outcome::Success,
        Outcome::Failure => journal::Outcome::Failure,
        Outcome::Completion => journal::Outcome::Completion,
    }
}

impl Recorder for JournalRecorder<'_> {
    fn record(&mut self, batch: Vec<Record>) -> Result<(), String> {
        // A write the tests make fail, as a full disk would: the dispatcher
        // stops as it does for a poisoned journal. `checkpoint-write` is any
        // write; `record-before-append` one that records a completion (a
        // task finished its work and the record of it is not durable yet,
        // docs/design/commit-protocols.md §3 and §4).
        let completes = batch.iter().any(|r| matches!(r, Record::Completed { .. }));
        if checkflow_plan::failpoint("checkpoint-write")
            || (completes && checkflow_plan::failpoint("record-before-append"))
        {
            return Err(format!(
                "failed to write checkpoint {}: simulated write failure (CHECKFLOW_TEST_FAILPOINT)",
                self.journal.path().display()
            ));
        }
        let mut discard = Vec::new();
        let mut entries = Vec::with_capacity(batch.len());
        for r in batch {
            let entry = match r {
                Record::Discard { paths } => {
                    discard.extend(paths);
                    continue;
                }
                Record::Completed {
                    node,
                    outcome: o,
                    duration,
                    vars,
                } => {
                    let n = self.plan.node(node);
                    journal::Entry::Completed {
                        path: n.path.clone(),
                        outcome: outcome(o),
                        fingerprint: n.fingerprint.clone(),
                        duration_ms: duration.as_millis() as u64,
                        vars: var_map(self.plan, vars),
                    }
                }
                Record::TxCommitting {
                    node,
                    marker,
                    connections,
                    vars,
                } => journal::Entry::TxCommitting {
                    path: self.plan.node(node).path.clone(),
                    marker,
                    connections,
                    vars: var_map(self.plan, vars),
                },
                Record::Iteration { node, key, vars } => journal::Entry::Iteration {
                    loop_path: self.plan.node(node).path.clone(),
                    key,
                    vars: var_map(self.plan, vars),
                },
            };
            entries.push(entry);
        }
        if !entries.is_empty() {
            self.journal
                .append_all(entries)
                .map_err(|e| crate::session::failed_to(&e))?;
        }
        discard_files(discard);
        Ok(())
    }
}

/// The recorder of a run without a checkpoint: nothing is written, and the
/// files tasks asked to remove once recorded go at once (no restart can
/// need them).
struct NoJournal;

impl Recorder for NoJournal {
    fn record(&mut self, batch: Vec<Record>) -> Result<(), String> {
        for r in batch {
            if let Record::Discard { paths } = r {
                discard_files(paths);
            }
        }
        Ok(())
    }
}

/// Removes child packages' finished checkpoints whose task is now recorded
/// (docs/design/commit-protocols.md §4). Each is locked first, so a child
/// still running is never robbed of its file; one that cannot be removed
/// stays, and the child's next start of the same task removes it.
fn discard_files(paths: Vec<std::path::PathBuf>) {
    for p in paths {
        if let Ok(held) = journal::lock(&p) {
            let _ = journal::delete(&p, &held);
        }
    }
}

pub fn run(args: &RunArgs) -> Result<i32, Fail> {
    run_with(args, &journal::Journal::create)
}

/// How a new checkpoint is created: `Journal::create`, or in the crash tests
/// a journal over a simulated disk (`checkflow_journal::testing`).
pub(crate) type CreateJournal<'a> = &'a dyn Fn(
    &std::path::Path,
    journal::NewHeader,
    Option<&journal::Key>,
    &journal::Lock,
) -> Result<journal::Journal, journal::JournalError>;

/// `run`, creating a new checkpoint with `create`.
pub(crate) fn run_with(args: &RunArgs, create: CreateJournal<'_>) -> Result<i32, Fail> {
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
        run_id,
        committed_tx,
    } = s;
    let mut console = Console::new(&plan, args.log);
    for w in &warnings {
        console.note("warning", w);
    }
    let ckpt_display = checkpoint.path.as_ref().map(|p| p.display().to_string());

    // Open or create the journal.
    let mut journal = None;
    if checkpoint.save {
        let path = checkpoint.path.as_ref().expect("save implies a path");
        let lock = lock.as_ref().expect("save implies the lock");
        let j = match &state {
            Some(st) => {
                let mut j = journal::Journal::append_to(path, st, key.as_ref(), lock)
                    .map_err(|e| Fail::chain(exit::FAILURE, &e))?;
                // Commits found by the restart's probes: record them as completed.
                // With the variables their intents carried, as restored.
                let done: Vec<journal::Entry> = committed_tx
                    .iter()
                    .filter_map(|(p, slots)| Some((plan.find(p)?, slots)))
                    .map(|(id, slots)| journal::Entry::Completed {
                        path: plan.node(id).path.clone(),
                        outcome: journal::Outcome::Success,
                        fingerprint: plan.node(id).fingerprint.clone(),
                        duration_ms: 0,
                        vars: var_map(
                            &plan,
                            slots
                                .iter()
                                .map(|&s| (s, initial[s as usize].clone()))
                                .collect(),
                        ),
                    })
                    .collect();
                if !done.is_empty() {
                    j.append_all(done)
                        .map_err(|e| Fail::chain(exit::FAILURE, &e))?;
                }
                let inval: Vec<journal::Entry> = resume
                    .invalidate
                    .iter()
                    .map(|p| journal::Entry::Invalidate { path: p.clone() })
                    .collect();
                if !inval.is_empty() {
                    j.append_all(inval)
                        .map_err(|e| Fail::chain(exit::FAILURE, &e))?;
                }
                j
            }
            None => {
                let header = journal::NewHeader {
                    package_id: plan.package.id.clone(),
                    package_name: plan.package.name.clone(),
                    package_path: plan.package.file.display().to_string(),
                    config: config
                        .iter()
                        .map(|(k, v)| {
                            let sensitive = plan
                                .vars
                                .slot(k)
                                .map(|s| plan.vars.decl(s).sensitive)
                                .unwrap_or(false);
                            (
                                k.clone(),
                                journal::VarValue {
                                    value: v.json.clone(),
                                    sensitive,
                                },
                            )
                        })
                        .collect(),
                };
                create(path, header, key.as_ref(), lock)
                    .map_err(|e| Fail::chain(exit::FAILURE, &e))?
            }
        };
        let mut j = j;
        let mut first = vec![journal::Entry::RunStarted {
            run_id: run_id.clone(),
        }];
        if state.is_none() {
            // The checkpoint holds the value of every variable (docs/semantics.md §5.2), not only
            // the ones that change: record them all once, when it is created.
            let all: Vec<(u32, VarValue)> = initial
                .iter()
                .enumerate()
                .map(|(i, v)| (i as u32, v.clone()))
                .collect();
            first.push(journal::Entry::Vars {
                vars: var_map(&plan, all),
            });
        }
        j.append_all(first)
            .map_err(|e| Fail::chain(exit::FAILURE, &e))?;
        journal = Some(j);
    }

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
        processes: lock
            .as_ref()
            .map(|l| Arc::new(checkflow_plan::ProcessScope::new(l.checkpoint(), &run_id))),
    };
    let t = crate::timing::start();
    let result = match journal {
        Some(j) => {
            let mut rec = JournalRecorder {
                journal: j,
                plan: &plan,
            };
            let r = checkflow_exec::run(&plan, opts, &mut rec, &mut console);
            journal = Some(rec.journal);
            r
        }
        None => checkflow_exec::run(&plan, opts, &mut NoJournal, &mut console),
    };

    crate::timing::phase("run", t);
    // Log lines are buffered; they come before the summary.
    checkflow_exec::Reporter::flush(&mut console);
    // The checkpoint's fate (docs/semantics.md §5.4).
    let mut note = String::new();
    let mut kept = false;
    // A child package that succeeded keeps its checkpoint, every task in it
    // recorded: if its parent stops before recording the child's task, the
    // parent's restart runs the child again, which then restores everything
    // and repeats nothing. The parent removes the file once its record of
    // the task is durable (docs/design/commit-protocols.md §4).
    let finished_child = args.run.keep_finished;
    let keep = match result.outcome {
        PackageOutcome::Success => finished_child,
        PackageOutcome::Cancelled => true,
        PackageOutcome::Failure => result.restart_point || result.journal_error.is_some(),
    };
    // What was removed, and how the removal went. The journal this run wrote
    // goes unless it is kept. A restart that did not write (`save: false`)
    // leaves the file it read as it was, except that a success deletes it,
    // as any success does (a failure keeps it: its restart points still hold).
    let removed = match (journal, &state, &checkpoint.path, &lock) {
        (Some(j), ..) if keep => {
            kept = true;
            note = if finished_child && result.outcome == PackageOutcome::Success {
                format!(
                    "checkpoint kept: {} (finished; the parent package removes it once it has recorded this run)",
                    j.path().display()
                )
            } else {
                format!(
                    "checkpoint kept: {} (the next run restarts from it)",
                    j.path().display()
                )
            };
            None
        }
        (Some(j), ..) => {
            let path = j.path().to_path_buf();
            Some((j.delete(), path))
        }
        (None, Some(_), Some(path), Some(held)) if result.outcome == PackageOutcome::Success => {
            Some((journal::delete(path, held), path.clone()))
        }
        (None, Some(_), Some(_), Some(_)) => {
            kept = true;
            None
        }
        _ => None,
    };
    match removed {
        Some((Ok(()), path)) if result.outcome == PackageOutcome::Success => {
            note = format!(
                "checkpoint {} deleted: the package succeeded",
                path.display()
            );
        }
        Some((Ok(()), path)) => {
            note = format!(
                "checkpoint {} deleted: no failed executable has fail_package_on_failure, so there is no restart point and the next run starts from the beginning",
                path.display()
            );
        }
        Some((Err(e), path)) => {
            console.note("warning", &crate::session::failed_to(&e));
            kept = path.exists();
        }
        None => {}
    }
    drop(lock);
    let code = match result.outcome {
        PackageOutcome::Success => exit::SUCCESS,
        PackageOutcome::Failure => exit::FAILURE,
        PackageOutcome::Cancelled => exit::CANCELLED,
    };
    let ck = json!({"file": ckpt_display, "kept": kept, "restarted": state.is_some()});
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
