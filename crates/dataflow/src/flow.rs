//! Running a validated flow: channels, one thread per component, the
//! database destinations written from the task's own thread (which holds the
//! connections, or the container's transaction), and the commit at the end.

use crate::derive::{ConditionalSplit, DerivedColumn, VarSnapshot};
use crate::resume;
use crate::runtime::{
    CHANNEL_BATCHES, Cursor, Emit, FlowError, PathStat, Readers, Shared, run_transform,
};
use crate::sinks::{CsvSink, FileSink, ParquetSink, PendingFile, Recordset};
use crate::sources::{FlatFileSource, ParquetSource, SqlSource, list_files};
use crate::spec::{Comp, FlowSpec, Kind, LookupRef};
use crate::tables::{pg_copy, prepare_table, write_table};
use crate::transforms::{Audit, DataConversion, Lookup, Pass, error_schema};
use crate::types::{Cols, schema_of, value_at};
use checkflow_expr::{DataType, Env, Value};
use checkflow_plan::{LogLevel, RunCx, SystemVar, TaskError, VarValue};
use checkflow_tasks::db::{self, Connection, Db};
use datafusion::arrow::record_batch::RecordBatch;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::{Receiver, channel};

/// What a component leaves for the end of the flow.
enum Done {
    Nothing,
    Count(u64),
    File(PendingFile),
    Recordset(serde_json::Value),
}

/// The database connections of the flow's destinations.
enum Dbs {
    /// Opened by the flow, each in a transaction it commits at the end.
    Own(Vec<Db>),
    /// The container's transaction: every use goes through it.
    Joined,
}

impl Dbs {
    fn with<R>(
        &mut self,
        cx: &dyn RunCx,
        conns: &[Connection],
        i: usize,
        f: impl FnOnce(&mut Db) -> Result<R, TaskError>,
    ) -> Result<R, TaskError> {
        match self {
            Dbs::Own(dbs) => f(&mut dbs[i]),
            Dbs::Joined => db::with_db(cx, &conns[i], |d, _| f(d)),
        }
    }
}

/// What a component's thread gets besides its channels.
struct Extras {
    /// The audit columns' values.
    audit_values: Vec<Value>,
    /// The variables, as the flow started.
    vars: Arc<VarSnapshot>,
    /// A source's position (a resumable flow's).
    cursor: Cursor,
    /// A lookup's reference rows, read before the flow started.
    reference: Option<db::Rows>,
}

/// Everything one component's thread needs.
struct Job {
    index: usize,
    inputs: Vec<Receiver<RecordBatch>>,
    emit: Emit,
}

/// Runs the flow; on success, sets the variables its row counts and
/// recordsets fill.
pub fn run(spec: &FlowSpec, cx: &mut dyn RunCx) -> Result<(), TaskError> {
    let started = Instant::now();
    let dir = cx.package_dir().to_path_buf();
    let shared = Arc::new(Shared::default());
    // 1. Channels and paths.
    let n = spec.comps.len();
    let mut ports: Vec<Vec<Readers>> = spec
        .comps
        .iter()
        .map(|c| vec![Vec::new(); c.outputs.len()])
        .collect();
    let mut inputs: Vec<Vec<Receiver<RecordBatch>>> = (0..n).map(|_| Vec::new()).collect();
    let mut stats = Vec::new();
    let mut read_paths = Vec::new();
    for (i, c) in spec.comps.iter().enumerate() {
        for e in &c.inputs {
            let (tx, rx) = channel(CHANNEL_BATCHES);
            let from = &spec.comps[e.from];
            let out = &from.outputs[e.output].name;
            let stat = Arc::new(PathStat {
                from: if out == "output" {
                    from.name.clone()
                } else {
                    format!("{}.{out}", from.name)
                },
                to: c.name.clone(),
                rows: Default::default(),
            });
            // The rows the sources read: the first reader of each of a
            // source's outputs (its rows and its error rows).
            if from.inputs.is_empty()
                && !read_paths
                    .iter()
                    .any(|(f, o, _): &(usize, usize, Arc<PathStat>)| *f == e.from && *o == e.output)
            {
                read_paths.push((e.from, e.output, stat.clone()));
            }
            stats.push(stat.clone());
            ports[e.from][e.output].push((tx, stat));
            inputs[i].push(rx);
        }
    }
    let mut jobs: Vec<Option<Job>> = ports
        .into_iter()
        .zip(inputs)
        .enumerate()
        .map(|(index, (p, inputs))| {
            Some(Job {
                index,
                inputs,
                emit: Emit::new(p, shared.clone()),
            })
        })
        .collect();
    // 2. Database destinations: one connection each, in a transaction.
    let mut conns: Vec<Connection> = Vec::new();
    let mut conn_of: HashMap<usize, usize> = HashMap::new();
    for (i, c) in spec.comps.iter().enumerate() {
        if let Kind::TableDestination(d) = &c.kind {
            let k = match conns.iter().position(|x| x.name == d.conn.name) {
                Some(k) => k,
                None => {
                    conns.push(d.conn.clone());
                    conns.len() - 1
                }
            };
            conn_of.insert(i, k);
        }
    }
    let mut dbs = if cx.transaction().is_some() {
        Dbs::Joined
    } else {
        let mut v = Vec::new();
        for c in &conns {
            let mut d = c.open()?;
            if d.kind() == db::Kind::Sqlite {
                // The flow's transaction may hold many pages: a larger page
                // cache on this connection (not a setting of the database)
                // spares SQLite from writing them out before the commit.
                let _ = d.batch("PRAGMA cache_size = -131072");
            }
            d.begin().map_err(|e| {
                TaskError::new(format!(
                    "cannot begin a transaction on {}: {e}",
                    c.describe()
                ))
            })?;
            v.push(d);
        }
        Dbs::Own(v)
    };
    let rollback = |dbs: &mut Dbs| {
        if let Dbs::Own(v) = dbs {
            for d in v {
                let _ = d.rollback();
            }
        }
    };
    // A resumable flow: where its source starts, in the same transaction.
    let mut cursor = Cursor::default();
    let mut resume_key: Option<(String, String)> = None;
    if let Some(every) = spec.resume {
        match &mut dbs {
            Dbs::Own(v) if v.len() == 1 => {
                let exec = cx.execution();
                let package_id = sys_text(&*cx, SystemVar::PackageId);
                let key = serde_json::json!([package_id, exec.path, exec.iterations]).to_string();
                let execution = exec.id();
                match resume::start(&mut v[0], &key, &execution) {
                    Ok((skip, done)) => {
                        if done {
                            cx.log(LogLevel::Info, &format!("already loaded: this run of the task committed all {skip} source row(s) before it was interrupted; loading only rows added since"));
                        } else if skip > 0 {
                            cx.log(LogLevel::Info, &format!("resuming: {skip} source row(s) were committed before; skipping them"));
                        }
                        cursor = Cursor {
                            skip,
                            every: Some(every),
                            read: 0,
                        };
                        resume_key = Some((key, execution));
                    }
                    Err(e) => {
                        rollback(&mut dbs);
                        return Err(TaskError::new(format!("{} on {}", e, conns[0].describe())));
                    }
                }
            }
            _ => cx.log(
                LogLevel::Info,
                "the flow joins the container's transaction: it commits once, with the container (resume is off)",
            ),
        }
    }
    for (i, c) in spec.comps.iter().enumerate() {
        if let Kind::TableDestination(d) = &c.kind {
            let cols = &spec.comps[c.inputs[0].from].outputs[c.inputs[0].output].cols;
            let truncate = d.truncate && cursor.skip == 0;
            if let Err(e) = dbs.with(&*cx, &conns, conn_of[&i], |db| {
                prepare_table(d, cols, db, &c.name, truncate)
            }) {
                rollback(&mut dbs);
                return Err(e);
            }
        }
    }
    // Lookups' reference rows, read on this thread: inside a transacted
    // container through its transaction, so they see what it wrote.
    let mut references: HashMap<usize, db::Rows> = HashMap::new();
    for (i, c) in spec.comps.iter().enumerate() {
        if let Kind::Lookup {
            source: LookupRef::Query(conn, sql),
            ..
        } = &c.kind
        {
            let rows = db::with_db(&*cx, conn, |d, _| {
                d.statement(sql, &[], true).map_err(|e| {
                    TaskError::new(format!(
                        "component \"{}\": the reference query failed on {}: {e}",
                        c.name,
                        conn.describe()
                    ))
                })
            });
            match rows {
                Ok(r) => {
                    references.insert(i, r);
                }
                Err(e) => {
                    rollback(&mut dbs);
                    return Err(e);
                }
            }
        }
    }
    // 3. Values the audit columns carry.
    let sys = |cx: &dyn RunCx, v: SystemVar| cx.get(cx.vars().system_slot(v));
    let scalar = |v: VarValue| match v {
        VarValue::Scalar(s) => s,
        VarValue::Object(_) => Value::Null(DataType::WStr { len: None }),
    };
    // The task's name: the last step of its path.
    let path = cx.execution().path;
    let task_name = path.rsplit(['/', '\\']).next().unwrap_or(&path).to_string();
    let audit_values: Vec<Value> = vec![
        scalar(sys(&*cx, SystemVar::ExecutionInstanceGuid)),
        scalar(sys(&*cx, SystemVar::PackageName)),
        Value::WStr(task_name),
        scalar(sys(&*cx, SystemVar::StartTime)),
        scalar(sys(&*cx, SystemVar::MachineName)),
    ];
    // The variables expressions and queries read, as the flow starts.
    let vars = Arc::new(VarSnapshot {
        values: (0..cx.vars().decls.len() as u32)
            .map(|slot| cx.env().value(slot))
            .collect(),
    });
    // 4. The async runtime for DataFusion, if a component needs it.
    let needs_df = spec.comps.iter().any(|c| {
        matches!(
            c.kind,
            Kind::Sort { .. } | Kind::Aggregate { .. } | Kind::UnionAll | Kind::MergeJoin { .. }
        )
    });
    let rt = if needs_df {
        Some(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("checkflow-dataflow")
                .enable_all()
                .build()
                .map_err(|e| {
                    TaskError::new(format!("cannot start the data flow's runtime: {e}"))
                })?,
        )
    } else {
        None
    };
    let session = if needs_df {
        Some(
            crate::ops::session(spec.memory_limit)
                .map_err(|e| TaskError::new(format!("cannot start DataFusion: {e}")))?,
        )
    } else {
        None
    };
    // 5. The threads, and the database writes on this one.
    let (funnel_tx, funnel_rx) =
        std::sync::mpsc::sync_channel::<(usize, RecordBatch)>(CHANNEL_BATCHES * 2);
    let mut written: HashMap<usize, u64> = HashMap::new();
    let token = cx.cancel_token().clone();
    let results: Vec<(usize, Result<Done, FlowError>, Duration)> = std::thread::scope(|s| {
        let mut handles = Vec::new();
        for &i in &spec.order {
            let job = jobs[i].take().expect("each component is started once");
            let c = &spec.comps[i];
            let shared2 = shared.clone();
            let funnel = funnel_tx.clone();
            let dir = dir.clone();
            let rt = rt.as_ref();
            let session = session.clone();
            let audit_values = audit_values.clone();
            let reference = references.remove(&i);
            let vars = vars.clone();
            let h = std::thread::Builder::new()
                .name(format!("checkflow-df-{i}"))
                .spawn_scoped(s, move || {
                    let t0 = Instant::now();
                    let Job {
                        index,
                        inputs,
                        emit,
                    } = job;
                    let r = run_component(
                        c,
                        spec,
                        inputs,
                        &emit,
                        &shared2,
                        &dir,
                        rt,
                        session,
                        funnel,
                        Extras {
                            audit_values,
                            vars,
                            cursor,
                            reference,
                        },
                    );
                    if let Err(FlowError::Failed(m)) = &r {
                        shared2.fail(Some(m.clone()));
                    }
                    drop(emit);
                    (index, r, t0.elapsed())
                });
            match h {
                Ok(h) => handles.push(h),
                Err(e) => shared.fail(Some(format!(
                    "cannot start a thread for component \"{}\": {e}",
                    c.name
                ))),
            }
        }
        drop(funnel_tx);
        let mut last_report = Instant::now();
        // A resumable flow's source waits at each step's end: look often.
        let tick = Duration::from_millis(if resume_key.is_some() { 5 } else { 100 });
        // A message a PostgreSQL COPY read ahead and left for this loop.
        let mut stash: Option<(usize, RecordBatch)> = None;
        loop {
            if last_report.elapsed() >= Duration::from_secs(1) {
                last_report = Instant::now();
                cx.progress(rows_read(&read_paths), None, "rows");
            }
            if token.is_cancelled() {
                shared.fail(Some("the data flow was cancelled".into()));
                break;
            }
            let msg = match stash.take() {
                Some(m) => Ok(m),
                None => funnel_rx.recv_timeout(tick),
            };
            match msg {
                Ok((i, batch)) => {
                    let c = &spec.comps[i];
                    let Kind::TableDestination(d) = &c.kind else {
                        continue;
                    };
                    let in_cols = &spec.comps[c.inputs[0].from].outputs[c.inputs[0].output].cols;
                    let base = *written.get(&i).unwrap_or(&0);
                    let r = if d.conn.sqlite_path().is_none() {
                        // PostgreSQL: one COPY for this batch and the ones
                        // for the same table that follow it. A batch counts
                        // as handled once the next is asked for (it is on
                        // its way to the server); a step of a resumable flow
                        // ends the COPY, so the step can commit.
                        let cxr: &dyn RunCx = &*cx;
                        let mut owed = 1;
                        let mut last = Instant::now();
                        let mut next = || -> Option<RecordBatch> {
                            for _ in 0..owed {
                                shared.handled();
                            }
                            owed = 0;
                            loop {
                                if token.is_cancelled()
                                    || shared.stopping()
                                    || shared.segment_ready().is_some()
                                {
                                    return None;
                                }
                                if last.elapsed() >= Duration::from_secs(1) {
                                    last = Instant::now();
                                    cxr.progress(rows_read(&read_paths), None, "rows");
                                }
                                match funnel_rx.recv_timeout(tick) {
                                    Ok((j, nb)) if j == i => {
                                        owed = 1;
                                        return Some(nb);
                                    }
                                    Ok(other) => {
                                        stash = Some(other);
                                        return None;
                                    }
                                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                                        return None;
                                    }
                                }
                            }
                        };
                        let r = dbs.with(cxr, &conns, conn_of[&i], |db| {
                            pg_copy(db, c, d, in_cols, &batch, base, &mut next)
                        });
                        for _ in 0..owed {
                            shared.handled();
                        }
                        r.map(|more| more + batch.num_rows() as u64)
                    } else {
                        dbs.with(&*cx, &conns, conn_of[&i], |db| {
                            write_table(c, d, in_cols, db, &batch, base)
                        })
                        .map(|()| {
                            shared.handled();
                            batch.num_rows() as u64
                        })
                    };
                    match r {
                        Ok(rows) => {
                            *written.entry(i).or_default() += rows;
                        }
                        Err(e) => {
                            shared.fail(Some(e.message));
                            break;
                        }
                    }
                    if let Err(e) = commit_ready_step(&shared, &mut dbs, &resume_key, &conns) {
                        shared.fail(Some(e));
                        break;
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    if shared.stopping() && handles.iter().all(|h| h.is_finished()) {
                        break;
                    }
                    if let Err(e) = commit_ready_step(&shared, &mut dbs, &resume_key, &conns) {
                        shared.fail(Some(e));
                        break;
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        drop(funnel_rx);
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    (
                        usize::MAX,
                        Err(FlowError::Failed("a component's thread panicked".into())),
                        Duration::ZERO,
                    )
                })
            })
            .collect()
    });
    drop(rt);
    // 6. The outcome.
    let mut failure = shared.failure();
    if failure.is_none() {
        failure = results.iter().find_map(|(_, r, _)| match r {
            Err(FlowError::Failed(m)) => Some(m.clone()),
            Err(FlowError::Stopped) => Some("the data flow was stopped".to_string()),
            Ok(_) => None,
        });
    }
    let mut files = Vec::new();
    let mut sets = Vec::new();
    let mut times = Vec::new();
    for (i, r, t) in results {
        if i != usize::MAX {
            times.push((i, t));
        }
        match r {
            Ok(Done::File(f)) => files.push(f),
            Ok(Done::Count(rows)) => {
                if let Kind::RowCount { slot, .. } = &spec.comps[i].kind {
                    sets.push((*slot, VarValue::Scalar(Value::I8(rows as i64))));
                }
            }
            Ok(Done::Recordset(j)) => {
                if let Kind::RecordsetDestination { slot, .. } = &spec.comps[i].kind {
                    sets.push((*slot, VarValue::Object(j)));
                }
            }
            _ => {}
        }
    }
    if let Some(msg) = failure {
        rollback(&mut dbs);
        for f in files {
            f.discard();
        }
        return Err(TaskError::new(msg));
    }
    // 7. Commit: every database, then every file.
    if let (Dbs::Own(v), Some((key, execution))) = (&mut dbs, &resume_key)
        && let Err(e) = resume::save(&mut v[0], key, shared.end(), Some(execution))
    {
        rollback(&mut dbs);
        for f in files {
            f.discard();
        }
        return Err(TaskError::new(format!("{e} on {}", conns[0].describe())));
    }
    if let Dbs::Own(v) = &mut dbs {
        if checkflow_plan::failpoint("dataflow-before-commit") {
            rollback(&mut dbs);
            for f in files {
                f.discard();
            }
            return Err(TaskError::new("COMMIT failed: refused (test failpoint)"));
        }
        for (d, c) in v.iter_mut().zip(&conns) {
            if let Err(e) = d.commit() {
                rollback(&mut dbs);
                for f in files {
                    f.discard();
                }
                return Err(TaskError::new(format!(
                    "COMMIT failed on {}: {e}",
                    c.describe()
                )));
            }
        }
    }
    let mut first_err = None;
    for f in files {
        if let Err(e) = f.commit()
            && first_err.is_none()
        {
            first_err = Some(e);
        }
    }
    if let Some(e) = first_err {
        return Err(TaskError::new(e));
    }
    for (slot, v) in sets {
        let (slot, v) = match v {
            VarValue::Scalar(val) => {
                let ty = cx.vars().decl(slot).ty.clone();
                let val = val
                    .cast_to(&ty)
                    .map_err(|e| TaskError::new(format!("cannot set the row count: {e}")))?;
                (slot, VarValue::Scalar(val))
            }
            o => (slot, o),
        };
        cx.set(slot, v)?;
    }
    // 8. What the run shows: rows per path, time per component.
    for s in &stats {
        cx.log(
            LogLevel::Info,
            &format!(
                "path \"{}\" -> \"{}\": {} row(s)",
                s.from,
                s.to,
                s.rows.load(Ordering::Relaxed)
            ),
        );
    }
    times.sort_by_key(|(i, _)| *i);
    for (i, t) in &times {
        cx.log(
            LogLevel::Info,
            &format!(
                "component \"{}\": {:.3}s",
                spec.comps[*i].name,
                t.as_secs_f64()
            ),
        );
    }
    let total = rows_read(&read_paths);
    cx.progress(total, Some(total), "rows");
    let secs = started.elapsed().as_secs_f64();
    cx.log(LogLevel::Info, &format!("data flow finished in {secs:.3}s"));
    // The same figures for the run's summary, its report and its JSON log.
    let path_rows: Vec<(String, u64)> = stats
        .iter()
        .map(|s| {
            (
                format!("{} -> {}", s.from, s.to),
                s.rows.load(Ordering::Relaxed),
            )
        })
        .collect();
    let rate = if secs > 0.0 { total as f64 / secs } else { 0.0 };
    let summary = format!(
        "{total} row(s) read, {rate:.0} rows/s\nrows: {}\ntime: {}",
        path_rows
            .iter()
            .map(|(p, n)| format!("{p} {n}"))
            .collect::<Vec<_>>()
            .join(", "),
        times
            .iter()
            .map(|(i, t)| format!("{} {:.3}s", spec.comps[*i].name, t.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    cx.metrics(serde_json::json!({
        "rows_read": total,
        "seconds": secs,
        "rows_per_second": rate.round(),
        "paths": stats.iter().map(|s| serde_json::json!({
            "from": s.from,
            "to": s.to,
            "rows": s.rows.load(Ordering::Relaxed),
        })).collect::<Vec<_>>(),
        "components": times.iter().map(|(i, t)| serde_json::json!({
            "component": spec.comps[*i].name,
            "seconds": t.as_secs_f64(),
        })).collect::<Vec<_>>(),
        "summary": summary,
    }));
    Ok(())
}

/// Commits a resumable flow's step once its source waits at the step's end
/// and every batch it sent is written; then lets the source go on.
fn commit_ready_step(
    shared: &Shared,
    dbs: &mut Dbs,
    resume_key: &Option<(String, String)>,
    conns: &[Connection],
) -> Result<(), String> {
    let (Some((key, _)), Dbs::Own(v)) = (resume_key, dbs) else {
        return Ok(());
    };
    let Some(position) = shared.segment_ready() else {
        return Ok(());
    };
    resume::commit_step(&mut v[0], key, position)
        .map_err(|e| format!("{e} on {}", conns[0].describe()))?;
    shared.release();
    Ok(())
}

/// The rows the flow's sources have sent so far.
fn rows_read(paths: &[(usize, usize, Arc<PathStat>)]) -> u64 {
    paths
        .iter()
        .map(|(_, _, p)| p.rows.load(Ordering::Relaxed))
        .sum()
}

/// The text of a system variable.
fn sys_text(cx: &dyn RunCx, v: SystemVar) -> String {
    cx.get(cx.vars().system_slot(v)).to_string()
}

/// Writes every batch of `rx` to a file destination; the file is removed
/// if a write fails or the flow is stopping.
fn fill<S: FileSink>(
    mut sink: S,
    rx: &mut Receiver<RecordBatch>,
    shared: &Shared,
) -> Result<Done, FlowError> {
    while let Some(b) = rx.blocking_recv() {
        if let Err(e) = sink.write(&b) {
            sink.abandon();
            return Err(e);
        }
    }
    if shared.stopping() {
        sink.abandon();
        return Err(FlowError::Stopped);
    }
    Ok(Done::File(sink.finish()?))
}

#[allow(clippy::too_many_arguments)]
fn run_component(
    c: &Comp,
    spec: &FlowSpec,
    mut inputs: Vec<Receiver<RecordBatch>>,
    emit: &Emit,
    shared: &Arc<Shared>,
    dir: &std::path::Path,
    rt: Option<&tokio::runtime::Runtime>,
    session: Option<datafusion::prelude::SessionContext>,
    funnel: std::sync::mpsc::SyncSender<(usize, RecordBatch)>,
    extras: Extras,
) -> Result<Done, FlowError> {
    let Extras {
        audit_values,
        vars,
        mut cursor,
        reference,
    } = extras;
    let in_cols = |k: usize| -> Cols {
        let e = c.inputs[k];
        spec.comps[e.from].outputs[e.output].cols.clone()
    };
    let stopping = || shared.stopping();
    let take_input =
        |inputs: &mut Vec<Receiver<RecordBatch>>| -> Result<Receiver<RecordBatch>, FlowError> {
            if inputs.is_empty() {
                Err(FlowError::of(&c.name, "has no input"))
            } else {
                Ok(inputs.remove(0))
            }
        };
    match &c.kind {
        Kind::FlatFileSource {
            files,
            format,
            null,
            skip_rows,
            on_error,
        } => {
            let files = list_files(files, dir).map_err(|e| FlowError::of(&c.name, e))?;
            let src = FlatFileSource {
                name: c.name.clone(),
                files,
                format: format.clone(),
                null: null.clone(),
                skip_rows: *skip_rows,
                on_error: *on_error,
                cols: c.outputs[0].cols.clone(),
            };
            src.run(emit, &stopping, &mut cursor)?;
            Ok(Done::Nothing)
        }
        Kind::ParquetSource { files } => {
            let files = list_files(files, dir).map_err(|e| FlowError::of(&c.name, e))?;
            let src = ParquetSource {
                name: c.name.clone(),
                files,
                cols: c.outputs[0].cols.clone(),
            };
            src.run(emit, &stopping, &mut cursor)?;
            Ok(Done::Nothing)
        }
        Kind::Multicast | Kind::RowCount { .. } => {
            let mut t = Pass { rows: 0 };
            run_transform(&mut t, take_input(&mut inputs)?, emit)?;
            Ok(if matches!(c.kind, Kind::RowCount { .. }) {
                Done::Count(t.rows)
            } else {
                Done::Nothing
            })
        }
        Kind::Audit => {
            let cols = crate::spec::audit_cols();
            let values = audit_values
                .iter()
                .zip(&cols)
                .map(|(v, col)| v.cast_to(&col.ty).unwrap_or(Value::Null(col.ty.clone())))
                .collect();
            let mut t = Audit {
                name: c.name.clone(),
                values,
                cols,
                schema: schema_of(&c.outputs[0].cols),
            };
            run_transform(&mut t, take_input(&mut inputs)?, emit)?;
            Ok(Done::Nothing)
        }
        Kind::SqlSource {
            conn,
            query,
            params,
        } => {
            let src = SqlSource {
                name: c.name.clone(),
                conn: conn.clone(),
                query: query.clone(),
                params: params.iter().map(|s| vars.value(*s)).collect(),
                cols: c.outputs[0].cols.clone(),
            };
            src.run(emit, &stopping, &mut cursor)?;
            Ok(Done::Nothing)
        }
        Kind::DerivedColumn {
            columns,
            on_error,
            on_truncation,
        } => {
            let input = in_cols(0);
            let mut t = DerivedColumn {
                name: c.name.clone(),
                err_schema: error_schema(&input),
                input,
                columns: columns.clone(),
                on_error: *on_error,
                on_truncation: *on_truncation,
                schema: schema_of(&c.outputs[0].cols),
                vars,
                rows: 0,
            };
            run_transform(&mut t, take_input(&mut inputs)?, emit)?;
            Ok(Done::Nothing)
        }
        Kind::ConditionalSplit { cases, on_error } => {
            let input = in_cols(0);
            let mut t = ConditionalSplit {
                name: c.name.clone(),
                err_schema: error_schema(&input),
                input,
                cases: cases.clone(),
                on_error: *on_error,
                vars,
                rows: 0,
            };
            run_transform(&mut t, take_input(&mut inputs)?, emit)?;
            Ok(Done::Nothing)
        }
        Kind::DataConversion {
            convert,
            on_error,
            on_truncation,
        } => {
            let input = in_cols(0);
            let mut t = DataConversion {
                name: c.name.clone(),
                err_schema: error_schema(&input),
                input,
                output: c.outputs[0].cols.clone(),
                convert: convert.clone(),
                on_error: *on_error,
                on_truncation: *on_truncation,
                schema: schema_of(&c.outputs[0].cols),
                rows: 0,
            };
            run_transform(&mut t, take_input(&mut inputs)?, emit)?;
            Ok(Done::Nothing)
        }
        Kind::Lookup {
            source,
            on,
            add,
            no_match,
        } => {
            let input = in_cols(0);
            let mut t = Lookup {
                name: c.name.clone(),
                err_schema: error_schema(&input),
                keys: on.iter().map(|(i, _)| *i).collect(),
                ref_keys: on.iter().map(|(_, r)| r.clone()).collect(),
                input,
                add: add.clone(),
                map: HashMap::new(),
                frozen: None,
                no_match: *no_match,
                schema: schema_of(&c.outputs[0].cols),
                rows: 0,
            };
            let main = take_input(&mut inputs)?;
            load_reference(c, spec, source, reference, &mut t, inputs, &stopping)?;
            run_transform(&mut t, main, emit)?;
            Ok(Done::Nothing)
        }
        Kind::Sort { .. } | Kind::Aggregate { .. } | Kind::UnionAll | Kind::MergeJoin { .. } => {
            let (Some(rt), Some(ctx)) = (rt, session) else {
                return Err(FlowError::of(
                    &c.name,
                    "the DataFusion runtime did not start",
                ));
            };
            let ins: Vec<(Receiver<RecordBatch>, Cols)> = inputs
                .into_iter()
                .enumerate()
                .map(|(k, rx)| (rx, in_cols(k)))
                .collect();
            rt.block_on(crate::ops::run(c, ctx, ins, emit))?;
            if shared.stopping() {
                return Err(FlowError::Stopped);
            }
            Ok(Done::Nothing)
        }
        Kind::TableDestination(_) => {
            let mut rx = take_input(&mut inputs)?;
            while let Some(b) = rx.blocking_recv() {
                funnel
                    .send((spec_index(spec, c), b))
                    .map_err(|_| FlowError::Stopped)?;
            }
            Ok(Done::Nothing)
        }
        Kind::FlatFileDestination {
            file,
            format,
            overwrite,
        } => {
            let mut rx = take_input(&mut inputs)?;
            let target: PathBuf = checkflow_plan::resolve_path(dir, file);
            let sink = CsvSink::open(&c.name, target, format, *overwrite, in_cols(0))?;
            fill(sink, &mut rx, shared)
        }
        Kind::ParquetDestination { file, overwrite } => {
            let mut rx = take_input(&mut inputs)?;
            let target: PathBuf = checkflow_plan::resolve_path(dir, file);
            let sink = ParquetSink::open(&c.name, target, *overwrite, schema_of(&in_cols(0)))?;
            fill(sink, &mut rx, shared)
        }
        Kind::RecordsetDestination { .. } => {
            let mut rx = take_input(&mut inputs)?;
            let mut r = Recordset {
                cols: in_cols(0),
                rows: Vec::new(),
            };
            while let Some(b) = rx.blocking_recv() {
                r.write(&b);
            }
            if shared.stopping() {
                return Err(FlowError::Stopped);
            }
            Ok(Done::Recordset(r.finish()))
        }
    }
}

fn spec_index(spec: &FlowSpec, c: &Comp) -> usize {
    spec.comps
        .iter()
        .position(|x| std::ptr::eq(x, c))
        .unwrap_or(usize::MAX)
}

/// Fills a lookup's cache: from its connection's query, or from the rows of
/// its `input_ref` component (read to the end first).
fn load_reference(
    c: &Comp,
    spec: &FlowSpec,
    source: &LookupRef,
    reference: Option<db::Rows>,
    t: &mut Lookup,
    mut inputs: Vec<Receiver<RecordBatch>>,
    stopping: &dyn Fn() -> bool,
) -> Result<(), FlowError> {
    match source {
        LookupRef::Query(..) => {
            let rows = reference
                .ok_or_else(|| FlowError::of(&c.name, "its reference rows were not read"))?;
            let find = |name: &str| -> Result<usize, FlowError> {
                rows.columns.iter().position(|c| c == name).ok_or_else(|| {
                    FlowError::of(
                        &c.name,
                        format!(
                            "the reference query returns no column \"{name}\" (it returns {})",
                            rows.columns.join(", ")
                        ),
                    )
                })
            };
            let key_idx: Vec<usize> = t
                .ref_keys
                .iter()
                .map(|k| find(k))
                .collect::<Result<_, _>>()?;
            let add_idx: Vec<usize> = t
                .add
                .iter()
                .map(|a| find(&a.name))
                .collect::<Result<_, _>>()?;
            for row in &rows.rows {
                let key: Vec<Value> = key_idx
                    .iter()
                    .map(|&i| {
                        row[i]
                            .to_value(&DataType::WStr { len: None })
                            .unwrap_or(Value::Null(DataType::I4))
                    })
                    .collect();
                let mut added = Vec::with_capacity(add_idx.len());
                for (&i, col) in add_idx.iter().zip(&t.add) {
                    added.push(row[i].to_value(&col.ty).map_err(|e| {
                        FlowError::of(&c.name, format!("reference column \"{}\": {e}", col.name))
                    })?);
                }
                t.insert(&key, added);
            }
            Ok(())
        }
        LookupRef::Input => {
            let e = c.inputs[c.inputs.len() - 1];
            let ref_cols = spec.comps[e.from].outputs[e.output].cols.clone();
            let mut rx = inputs
                .pop()
                .ok_or_else(|| FlowError::of(&c.name, "has no reference input"))?;
            let key_idx: Vec<usize> = t
                .ref_keys
                .iter()
                .filter_map(|k| ref_cols.iter().position(|c| c.name == *k))
                .collect();
            let add_idx: Vec<usize> = t
                .add
                .iter()
                .filter_map(|a| ref_cols.iter().position(|c| c.name == a.name))
                .collect();
            while let Some(b) = rx.blocking_recv() {
                if stopping() {
                    return Err(FlowError::Stopped);
                }
                for r in 0..b.num_rows() {
                    let key: Vec<Value> = key_idx
                        .iter()
                        .map(|&i| value_at(b.column(i).as_ref(), r, &ref_cols[i].ty))
                        .collect();
                    let mut added = Vec::with_capacity(add_idx.len());
                    for (&i, col) in add_idx.iter().zip(&t.add) {
                        let v = value_at(b.column(i).as_ref(), r, &ref_cols[i].ty);
                        added.push(v.cast_to(&col.ty).map_err(|e| {
                            FlowError::of(
                                &c.name,
                                format!("reference column \"{}\": {e}", col.name),
                            )
                        })?);
                    }
                    t.insert(&key, added);
                }
            }
            Ok(())
        }
    }
}
