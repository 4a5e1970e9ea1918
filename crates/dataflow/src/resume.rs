//! A resumable flow (`resume: true`, beyond SSIS): the flow commits its
//! database destination every `commit_rows` source records, together with
//! the source's position, so that a restart after a crash continues after
//! the last committed record and every record lands exactly once.
//!
//! # Which flows can resume
//!
//! [`check`] accepts a flow with one source (read in a stable order: a file,
//! the files of a folder in name order, Parquet files, or a query that
//! orders its rows), transforms that send each batch on as it comes (no
//! sort, aggregate, merge join or union, no lookup on another input), and
//! table destinations on one connection only, since two databases, a file or
//! a variable cannot commit in one transaction with the position.
//!
//! # The protocol
//!
//! 1. In the destination's transaction, the flow reads its row in
//!    `checkflow_flow_progress` (key: the package, the task's path and its
//!    loops' items). `rows_done` is the source records already committed:
//!    the source reads and drops them. A row marked `done_by` another
//!    execution of the task (a new run, another iteration) is stale: the
//!    flow starts over and its first commit replaces the row.
//! 2. Every `commit_rows` records, the source stops at a barrier. When every
//!    batch it sent has been written into the open transaction (the count of
//!    batches in flight is zero), the task's thread upserts the progress row
//!    with the position and commits, then lets the source go on.
//! 3. At the end the last commit writes the final position and marks the row
//!    done by this execution. The checkpoint records the task's completion
//!    only after that, so a crash in between reruns the same execution,
//!    which finds its own done row, skips every record and writes nothing.
//!
//! Crash points: a kill before a segment's COMMIT loses that segment's
//! rows and its position together (the restart reads them again); a kill
//! after it keeps both; a COMMIT that fails rolls both back and fails the
//! flow. Failpoints `dataflow-segment-before-commit` (also `=error`) and
//! `dataflow-segment-after-commit` stop a run at those steps.

use crate::spec::{FlowSpec, Kind, LookupRef};
use checkflow_expr::Value;
use checkflow_tasks::db::{Cell, Db, Kind as DbKind};

/// The progress table's name.
pub const PROGRESS: &str = "checkflow_flow_progress";

/// Source records a segment holds when `commit_rows` is not given.
pub const DEFAULT_COMMIT_ROWS: u64 = 10_000;

/// Why a flow cannot resume, if it cannot.
pub fn check(spec: &FlowSpec) -> Result<(), String> {
    let mut sources = 0;
    let mut conn: Option<&str> = None;
    for c in &spec.comps {
        let why = match &c.kind {
            Kind::FlatFileSource { .. } | Kind::ParquetSource { .. } | Kind::SqlSource { .. } => {
                sources += 1;
                None
            }
            Kind::Sort { .. } | Kind::Aggregate { .. } | Kind::MergeJoin { .. } => Some(
                "it needs all rows before it sends one, so a restart could not continue from a committed position",
            ),
            Kind::UnionAll => Some(
                "it mixes the rows of several inputs in no stable order, so a restart could not continue from a committed position",
            ),
            Kind::Lookup {
                source: LookupRef::Input,
                ..
            } => Some(
                "its reference rows come from another input, which a restart would have to read whole again; look up a connection's query or table instead",
            ),
            Kind::RowCount { .. } | Kind::RecordsetDestination { .. } => Some(
                "it sets a variable at the end of the flow, which cannot be committed together with the rows of each step",
            ),
            Kind::FlatFileDestination { .. } | Kind::ParquetDestination { .. } => Some(
                "a file cannot be committed in one transaction with the rows and the source's position; write into a table",
            ),
            Kind::TableDestination(d) => match conn {
                Some(other) if other != d.conn.name => Some(
                    "the flow's table destinations must all use one connection, so that each step commits in one transaction",
                ),
                _ => {
                    conn = Some(&d.conn.name);
                    None
                }
            },
            _ => None,
        };
        if let Some(why) = why {
            return Err(format!(
                "`resume: true` cannot be used with component \"{}\" (a {}): {why}",
                c.name, c.type_name
            ));
        }
    }
    if sources != 1 {
        return Err(format!(
            "`resume: true` needs exactly one source (the flow has {sources}): its position is what a restart continues from"
        ));
    }
    if conn.is_none() {
        return Err(
            "`resume: true` needs a table_destination: each step commits its rows with the source's position".into(),
        );
    }
    Ok(())
}

fn ph(k: DbKind, i: usize) -> String {
    match k {
        DbKind::Sqlite => format!("?{i}"),
        DbKind::Postgres => format!("${i}"),
    }
}

/// Reads (creating the table if needed) the committed position of `key` in
/// the open transaction: the records to skip, and whether the row was
/// marked done by this very execution.
pub fn start(db: &mut Db, key: &str, execution: &str) -> Result<(u64, bool), String> {
    let ddl = match db.kind() {
        DbKind::Sqlite => format!(
            "CREATE TABLE IF NOT EXISTS {PROGRESS} (task_key TEXT PRIMARY KEY, rows_done INTEGER NOT NULL, done_by TEXT)"
        ),
        DbKind::Postgres => format!(
            "CREATE TABLE IF NOT EXISTS {PROGRESS} (task_key TEXT PRIMARY KEY, rows_done BIGINT NOT NULL, done_by TEXT)"
        ),
    };
    db.batch(&ddl)
        .map_err(|e| format!("cannot create table {PROGRESS}: {e}"))?;
    let sql = format!(
        "SELECT rows_done, done_by FROM {PROGRESS} WHERE task_key = {}",
        ph(db.kind(), 1)
    );
    let found = db
        .statement(&sql, &[Value::WStr(key.to_string())], true)
        .map_err(|e| format!("cannot read {PROGRESS}: {e}"))?;
    let Some(row) = found.rows.first() else {
        return Ok((0, false));
    };
    let rows = match &row[0] {
        Cell::Int(n) => u64::try_from(*n).unwrap_or(0),
        Cell::Dec(d) => d.to_string().parse().unwrap_or(0),
        _ => 0,
    };
    match &row[1] {
        Cell::Text(by) if by != execution => Ok((0, false)),
        Cell::Text(_) => Ok((rows, true)),
        _ => Ok((rows, false)),
    }
}

/// Upserts the position in the open transaction; `done_by` marks the last
/// step of an execution.
pub fn save(db: &mut Db, key: &str, rows: u64, done_by: Option<&str>) -> Result<(), String> {
    let k = db.kind();
    let sql = format!(
        "INSERT INTO {PROGRESS} (task_key, rows_done, done_by) VALUES ({}, {}, {}) \
         ON CONFLICT (task_key) DO UPDATE SET rows_done = excluded.rows_done, done_by = excluded.done_by",
        ph(k, 1),
        ph(k, 2),
        ph(k, 3)
    );
    db.statement(
        &sql,
        &[
            [Value::WStr(key.to_string())].as_slice(),
            &checkflow_tasks::db::progress_params(rows, done_by),
        ]
        .concat(),
        false,
    )
    .map(|_| ())
    .map_err(|e| format!("cannot record the flow's position in {PROGRESS}: {e}"))
}

/// Commits one step: the position, COMMIT, and a new transaction.
pub fn commit_step(db: &mut Db, key: &str, rows: u64) -> Result<(), String> {
    save(db, key, rows, None)?;
    if checkflow_plan::failpoint("dataflow-segment-before-commit") {
        return Err("COMMIT failed: refused (test failpoint)".into());
    }
    db.commit().map_err(|e| format!("COMMIT failed: {e}"))?;
    if checkflow_plan::failpoint("dataflow-segment-after-commit") {
        return Err("cannot begin a transaction: refused (test failpoint)".into());
    }
    db.begin()
        .map_err(|e| format!("cannot begin a transaction: {e}"))
}
