//! Writing a flow's rows into database tables: the table a destination
//! creates (`create: if_missing`) and empties (`truncate`), and each batch
//! inserted in the open transaction. SQLite takes multi-row INSERTs bound
//! straight from the arrays; PostgreSQL takes `COPY ... FROM STDIN` with
//! the batch encoded as CSV from the arrays.

use crate::spec::{Comp, TableDest};
use crate::types::{Cols, value_at};
use checkflow_expr::{DataType, Value};
use checkflow_plan::TaskError;
use checkflow_tasks::db::{self, Db, Kind as DbKind};
use datafusion::arrow::record_batch::RecordBatch;

/// The SQL type a column gets in a table the flow creates.
pub(crate) fn sql_type(ty: &DataType, k: DbKind) -> String {
    let pg = k == DbKind::Postgres;
    match ty {
        DataType::Bool => if pg { "boolean" } else { "INTEGER" }.into(),
        DataType::I1 | DataType::I2 | DataType::UI1 => {
            if pg { "smallint" } else { "INTEGER" }.into()
        }
        DataType::I4 | DataType::UI2 => if pg { "integer" } else { "INTEGER" }.into(),
        DataType::I8 | DataType::UI4 => if pg { "bigint" } else { "INTEGER" }.into(),
        DataType::UI8 => if pg { "numeric(20,0)" } else { "INTEGER" }.into(),
        DataType::R4 => if pg { "real" } else { "REAL" }.into(),
        DataType::R8 => if pg { "double precision" } else { "REAL" }.into(),
        DataType::Numeric { precision, scale } if pg => format!("numeric({precision},{scale})"),
        DataType::Decimal { scale } if pg => format!("numeric(29,{scale})"),
        DataType::Cy if pg => "numeric(19,4)".into(),
        DataType::Numeric { .. } | DataType::Decimal { .. } | DataType::Cy => "NUMERIC".into(),
        DataType::WStr { len: Some(n) } | DataType::Str { len: Some(n), .. } if pg => {
            format!("varchar({n})")
        }
        DataType::DbTimestamp
        | DataType::Date
        | DataType::DbTimestamp2 { .. }
        | DataType::FileTime
            if pg =>
        {
            "timestamp".into()
        }
        DataType::DbDate if pg => "date".into(),
        DataType::DbTime | DataType::DbTime2 { .. } if pg => "time".into(),
        DataType::Bytes { .. } | DataType::Image => if pg { "bytea" } else { "BLOB" }.into(),
        _ => if pg { "text" } else { "TEXT" }.into(),
    }
}

/// Prepares a destination's table in the open transaction: creates it if
/// asked and missing, and empties it if asked.
pub(crate) fn prepare_table(
    d: &TableDest,
    cols: &Cols,
    db: &mut Db,
    comp: &str,
    truncate: bool,
) -> Result<(), TaskError> {
    let k = db.kind();
    let t = db::ident(&d.table);
    let fail = |what: &str, e: String| {
        TaskError::new(format!(
            "component \"{comp}\": {what} {} on {}: {e}",
            d.table,
            d.conn.describe()
        ))
    };
    if d.create {
        let defs: Vec<String> = d
            .mapping
            .iter()
            .map(|(i, name)| format!("{} {}", db::ident(name), sql_type(&cols[*i].ty, k)))
            .collect();
        db.batch(&format!(
            "CREATE TABLE IF NOT EXISTS {t} ({})",
            defs.join(", ")
        ))
        .map_err(|e| fail("cannot create table", e))?;
    }
    if truncate {
        let sql = match k {
            DbKind::Sqlite => format!("DELETE FROM {t}"),
            DbKind::Postgres => format!("TRUNCATE TABLE {t}"),
        };
        db.batch(&sql).map_err(|e| fail("cannot empty", e))?;
    }
    Ok(())
}

/// Writes one batch into a destination's table.
pub(crate) fn write_table(
    c: &Comp,
    d: &TableDest,
    cols: &Cols,
    db: &mut Db,
    b: &RecordBatch,
    base: u64,
) -> Result<(), TaskError> {
    if let Db::Sqlite(conn) = db {
        return sqlite_insert(conn, c, d, cols, b, base);
    }
    pg_copy(db, c, d, cols, b, base, &mut || None).map(|_| ())
}

/// Writes `b`, then every batch `next` gives, into a PostgreSQL table with
/// one streaming COPY (the server stores each batch while the next is
/// encoded); returns the rows written after `b`.
pub(crate) fn pg_copy(
    db: &mut Db,
    c: &Comp,
    d: &TableDest,
    cols: &Cols,
    b: &RecordBatch,
    base: u64,
    next: &mut dyn FnMut() -> Option<RecordBatch>,
) -> Result<u64, TaskError> {
    let names: Vec<String> = d.mapping.iter().map(|(_, n)| n.clone()).collect();
    let first = encode_csv(d, cols, b);
    let mut more = 0u64;
    let r = db::copy_csv_stream(db, &d.table, &names, &first, &mut |buf| match next() {
        Some(nb) => {
            more += nb.num_rows() as u64;
            buf.extend_from_slice(&encode_csv(d, cols, &nb));
            true
        }
        None => false,
    });
    r.map(|()| more)
        .map_err(|(row, e)| insert_error(c, d, base, row, e))
}

/// A table destination's failed insert: the component, the table, the row
/// (counted from 1 over the whole flow, when the database names one; `row`
/// is its index in the batch starting at flow row `base`) and the cause.
fn insert_error(
    c: &Comp,
    d: &TableDest,
    base: u64,
    row: Option<usize>,
    e: impl std::fmt::Display,
) -> TaskError {
    let at = row
        .map(|r| format!(" at row {}", base + r as u64 + 1))
        .unwrap_or_default();
    TaskError::new(format!(
        "component \"{}\": cannot insert into {}{at} on {}: {e}",
        c.name,
        d.table,
        d.conn.describe()
    ))
}

/// One column of a batch as the SQLite writer binds it.
enum Bind<'a> {
    I64(&'a datafusion::arrow::array::Int64Array),
    I32(&'a datafusion::arrow::array::Int32Array),
    F64(&'a datafusion::arrow::array::Float64Array),
    Text(&'a datafusion::arrow::array::StringArray),
    /// Any other type: as the `sql` task binds its value.
    Value(&'a dyn datafusion::arrow::array::Array, &'a DataType),
}

/// How each mapped column of a batch is read.
fn binds_of<'a>(d: &'a TableDest, cols: &'a Cols, b: &'a RecordBatch) -> Vec<Bind<'a>> {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::{Float64Type, Int32Type, Int64Type};
    d.mapping
        .iter()
        .map(|(i, _)| {
            let a = b.column(*i).as_ref();
            match &cols[*i].ty {
                DataType::I8 => Bind::I64(a.as_primitive::<Int64Type>()),
                DataType::I4 => Bind::I32(a.as_primitive::<Int32Type>()),
                DataType::R8 => Bind::F64(a.as_primitive::<Float64Type>()),
                DataType::WStr { .. } | DataType::Str { .. } => Bind::Text(a.as_string::<i32>()),
                ty => Bind::Value(a, ty),
            }
        })
        .collect()
}

/// Binds row `r`'s values to the parameters from `*at` on.
fn bind_row(
    stmt: &mut rusqlite::Statement<'_>,
    binds: &[Bind<'_>],
    r: usize,
    at: &mut usize,
) -> rusqlite::Result<()> {
    use datafusion::arrow::array::Array;
    for bind in binds {
        match bind {
            Bind::I64(a) if a.is_valid(r) => stmt.raw_bind_parameter(*at, a.value(r))?,
            Bind::I32(a) if a.is_valid(r) => stmt.raw_bind_parameter(*at, a.value(r))?,
            Bind::F64(a) if a.is_valid(r) => stmt.raw_bind_parameter(*at, a.value(r))?,
            Bind::Text(a) if a.is_valid(r) => stmt.raw_bind_parameter(*at, a.value(r))?,
            Bind::Value(a, ty) if a.is_valid(r) => {
                stmt.raw_bind_parameter(*at, db::sqlite_param(&value_at(*a, r, ty)))?
            }
            _ => stmt.raw_bind_parameter(*at, rusqlite::types::Null)?,
        }
        *at += 1;
    }
    Ok(())
}

/// Inserts a batch into a SQLite table with multi-row prepared statements, binding
/// whole numbers, reals and text straight from the arrays (the other types
/// as the `sql` task binds a value of them).
fn sqlite_insert(
    conn: &rusqlite::Connection,
    c: &Comp,
    d: &TableDest,
    cols: &Cols,
    b: &RecordBatch,
    base: u64,
) -> Result<(), TaskError> {
    let fail = |row: Option<usize>, e: rusqlite::Error| insert_error(c, d, base, row, e);
    let names = d
        .mapping
        .iter()
        .map(|(_, n)| db::ident(n))
        .collect::<Vec<_>>()
        .join(", ");
    let width = d.mapping.len().max(1);
    // Rows per statement: one INSERT of many rows costs far less per row than
    // a statement a row, within SQLite's limit on parameters.
    let per = (32_000 / width).clamp(1, 128);
    let insert = |rows: usize| {
        let one = format!("({})", vec!["?"; d.mapping.len()].join(", "));
        format!(
            "INSERT INTO {} ({names}) VALUES {}",
            db::ident(&d.table),
            vec![one; rows].join(", ")
        )
    };
    let binds = binds_of(d, cols, b);
    let n = b.num_rows();
    let mut start = 0;
    while start < n {
        let rows = per.min(n - start);
        let mut stmt = conn
            .prepare_cached(&insert(rows))
            .map_err(|e| fail(None, e))?;
        let mut at = 1;
        for r in start..start + rows {
            bind_row(&mut stmt, &binds, r, &mut at).map_err(|e| fail(Some(r), e))?;
        }
        if let Err(e) = stmt.raw_execute() {
            // Which row: the statement's rows one at a time say.
            drop(stmt);
            for r in start..start + rows {
                let mut one = conn.prepare_cached(&insert(1)).map_err(|e| fail(None, e))?;
                bind_row(&mut one, &binds, r, &mut 1).map_err(|e| fail(Some(r), e))?;
                // Nothing of a failed statement stays: these rows are
                // inserted one by one until the one that fails.
                one.raw_execute().map_err(|e| fail(Some(r), e))?;
            }
            return Err(fail(None, e));
        }
        start += rows;
    }
    Ok(())
}

/// A batch as the CSV PostgreSQL's COPY reads: NULL an empty field, every
/// text quoted (so an empty text is `""`), numbers as digits. Whole numbers,
/// reals, text and booleans are written straight from the arrays; the other
/// types as the text of their value, as the `sql` task sends them.
fn encode_csv(d: &TableDest, cols: &Cols, b: &RecordBatch) -> Vec<u8> {
    use datafusion::arrow::array::Array;
    use std::io::Write;
    let quoted = |buf: &mut Vec<u8>, s: &str| {
        buf.push(b'"');
        let mut rest = s.as_bytes();
        while let Some(i) = rest.iter().position(|&c| c == b'"') {
            buf.extend_from_slice(&rest[..=i]);
            buf.push(b'"');
            rest = &rest[i + 1..];
        }
        buf.extend_from_slice(rest);
        buf.push(b'"');
    };
    let binds: Vec<Bind<'_>> = binds_of(d, cols, b);
    let mut buf = Vec::with_capacity(b.num_rows() * 16 * binds.len().max(1));
    for r in 0..b.num_rows() {
        for (k, bind) in binds.iter().enumerate() {
            if k > 0 {
                buf.push(b',');
            }
            // Writing into a Vec cannot fail.
            let _ = match bind {
                Bind::I64(a) if a.is_valid(r) => write!(buf, "{}", a.value(r)),
                Bind::I32(a) if a.is_valid(r) => write!(buf, "{}", a.value(r)),
                Bind::F64(a) if a.is_valid(r) => write!(buf, "{}", a.value(r)),
                Bind::Text(a) if a.is_valid(r) => {
                    quoted(&mut buf, a.value(r));
                    Ok(())
                }
                Bind::Value(a, ty) if a.is_valid(r) => {
                    match value_at(*a, r, ty) {
                        Value::Null(_) => {}
                        Value::Bool(x) => buf.extend_from_slice(if x { b"true" } else { b"false" }),
                        v => quoted(&mut buf, &v.to_string()),
                    }
                    Ok(())
                }
                _ => Ok(()),
            };
        }
        buf.push(b'\n');
    }
    buf
}
