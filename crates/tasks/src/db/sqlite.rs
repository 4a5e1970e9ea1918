//! SQLite through rusqlite: opening a file, running one statement with `?`
//! parameters, and reading its rows as [`Cell`]s.

use super::EachRow;
use super::{Cell, Rows, SQLITE_BUSY_WAIT};
use checkflow_expr::Value;
use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{Connection, OpenFlags};
use std::path::Path;

/// Opens (and, if `create`, creates, with its folder) the database file.
pub(super) fn open(path: &Path, create: bool) -> Result<Connection, String> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
        // `path: work/dw.db` works on a fresh checkout: the folder is made too.
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create folder {}: {e}", dir.display()))?;
        }
    }
    let c = Connection::open_with_flags(path, flags).map_err(|e| e.to_string())?;
    c.busy_timeout(SQLITE_BUSY_WAIT)
        .map_err(|e| e.to_string())?;
    Ok(c)
}

/// A variable's value as an SQLite value: booleans are 0 / 1, decimals and
/// dates are text (`2026-11-21 04:30:00`), as SQLite stores them.
/// How a value is bound to a SQLite parameter (also by the data flow's
/// table destination, for the types it does not bind from its arrays).
pub fn param(v: &Value) -> SqlValue {
    match v {
        Value::Null(_) => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
        Value::I1(x) => SqlValue::Integer(i64::from(*x)),
        Value::I2(x) => SqlValue::Integer(i64::from(*x)),
        Value::I4(x) => SqlValue::Integer(i64::from(*x)),
        Value::I8(x) => SqlValue::Integer(*x),
        Value::UI1(x) => SqlValue::Integer(i64::from(*x)),
        Value::UI2(x) => SqlValue::Integer(i64::from(*x)),
        Value::UI4(x) => SqlValue::Integer(i64::from(*x)),
        Value::UI8(x) => match i64::try_from(*x) {
            Ok(i) => SqlValue::Integer(i),
            Err(_) => SqlValue::Text(x.to_string()),
        },
        Value::R4(x) => SqlValue::Real(f64::from(*x)),
        Value::R8(x) => SqlValue::Real(*x),
        Value::WStr(s) | Value::Str(s) => SqlValue::Text(s.clone()),
        other => SqlValue::Text(other.to_string()),
    }
}

/// Runs one statement; binds the first N of `params` to its N placeholders.
pub(super) fn statement(
    c: &Connection,
    sql: &str,
    params: &[Value],
    want_rows: bool,
) -> Result<Rows, String> {
    let mut stmt = c.prepare(sql).map_err(|e| e.to_string())?;
    let n = stmt.parameter_count();
    if n > params.len() {
        return Err(format!(
            "the statement has {n} parameter(s), but `params` gives {}",
            params.len()
        ));
    }
    for (i, p) in params.iter().take(n).enumerate() {
        stmt.raw_bind_parameter(i + 1, param(p))
            .map_err(|e| e.to_string())?;
    }
    let columns: Vec<String> = stmt.column_names().map(String::from).collect();
    if columns.is_empty() {
        let affected = stmt.raw_execute().map_err(|e| e.to_string())?;
        return Ok(Rows {
            affected: affected as u64,
            ..Rows::default()
        });
    }
    let width = columns.len();
    let mut rows = Vec::new();
    let mut q = stmt.raw_query();
    while let Some(r) = q.next().map_err(|e| e.to_string())? {
        if !want_rows {
            continue;
        }
        rows.push(read_row(r, width)?);
    }
    Ok(Rows {
        columns,
        rows,
        affected: 0,
    })
}

fn read_row(r: &rusqlite::Row<'_>, width: usize) -> Result<Vec<Cell>, String> {
    let mut row = Vec::with_capacity(width);
    for i in 0..width {
        row.push(match r.get_ref(i).map_err(|e| e.to_string())? {
            ValueRef::Null => Cell::Null,
            ValueRef::Integer(i) => Cell::Int(i),
            ValueRef::Real(f) => Cell::Real(f),
            ValueRef::Text(t) => Cell::Text(String::from_utf8_lossy(t).into_owned()),
            ValueRef::Blob(b) => Cell::Bytes(b.to_vec()),
        });
    }
    Ok(row)
}

/// Runs a query and hands `each` the columns (with `None`), then each row
/// as it is read (never holding the whole result); `each` returns false to
/// stop early.
pub(super) fn query_each(
    c: &Connection,
    sql: &str,
    params: &[Value],
    each: &mut EachRow<'_>,
) -> Result<(), String> {
    let mut stmt = c.prepare(sql).map_err(|e| e.to_string())?;
    let n = stmt.parameter_count();
    if n > params.len() {
        return Err(format!(
            "the query has {n} parameter(s), but `params` gives {}",
            params.len()
        ));
    }
    for (i, p) in params.iter().take(n).enumerate() {
        stmt.raw_bind_parameter(i + 1, param(p))
            .map_err(|e| e.to_string())?;
    }
    let columns: Vec<String> = stmt.column_names().map(String::from).collect();
    let width = columns.len();
    if !each(&columns, None)? {
        return Ok(());
    }
    let mut q = stmt.raw_query();
    while let Some(r) = q.next().map_err(|e| e.to_string())? {
        if !each(&columns, Some(read_row(r, width)?))? {
            break;
        }
    }
    Ok(())
}
