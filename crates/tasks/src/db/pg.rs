//! PostgreSQL through the sync `postgres` client: connecting, running one
//! statement with `$1` parameters converted to the types the server expects,
//! reading rows as [`Cell`]s, and readable error messages.

use super::EachRow;
use super::{Cell, Rows};
use checkflow_expr::{DataType, Value};
use postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use postgres::{Client, NoTls};
use rust_decimal::Decimal;
use std::error::Error as StdError;

/// Connects with a URL (`postgres://user:pw@host:port/db`) or a key=value string.
pub(super) fn connect(url: &str) -> Result<Client, postgres::Error> {
    Client::connect(url, NoTls)
}

/// The message of a client error: for a server error its severity, message,
/// detail, hint and context; else the client's own chain.
pub(crate) fn message(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut m = format!("{}: {}", db.severity(), db.message());
        if let Some(d) = db.detail() {
            m.push_str(&format!(" (DETAIL: {d})"));
        }
        if let Some(h) = db.hint() {
            m.push_str(&format!(" (HINT: {h})"));
        }
        if let Some(w) = db.where_() {
            m.push_str(&format!(" (CONTEXT: {w})"));
        }
        return m;
    }
    let mut m = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !m.contains(&t) {
            m.push_str(": ");
            m.push_str(&t);
        }
        src = s.source();
    }
    m
}

/// The client error inside an I/O error (a `COPY` writer reports through io).
pub(crate) fn io_message(e: &std::io::Error) -> String {
    match e
        .get_ref()
        .and_then(|i| i.downcast_ref::<postgres::Error>())
    {
        Some(pe) => message(pe),
        None => e.to_string(),
    }
}

/// The types a variable can be bound to, and read from.
fn supported(t: &Type) -> bool {
    [
        Type::BOOL,
        Type::INT2,
        Type::INT4,
        Type::INT8,
        Type::OID,
        Type::FLOAT4,
        Type::FLOAT8,
        Type::NUMERIC,
        Type::TEXT,
        Type::VARCHAR,
        Type::BPCHAR,
        Type::NAME,
        Type::UNKNOWN,
        Type::TIMESTAMP,
        Type::TIMESTAMPTZ,
        Type::DATE,
    ]
    .contains(t)
}

/// Runs one statement; binds the first N of `params` to `$1..$N`.
pub(super) fn statement(
    c: &mut Client,
    sql: &str,
    params: &[Value],
    want_rows: bool,
) -> Result<Rows, String> {
    let stmt = c.prepare(sql).map_err(|e| message(&e))?;
    let n = stmt.params().len();
    if n > params.len() {
        return Err(format!(
            "the statement has {n} parameter(s), but `params` gives {}",
            params.len()
        ));
    }
    for (i, t) in stmt.params().iter().enumerate() {
        if !supported(t) {
            return Err(format!(
                "parameter ${} has type {t}, which a variable cannot be bound to; cast it in the statement (${}::text)",
                i + 1,
                i + 1
            ));
        }
    }
    let bound: Vec<Param> = params.iter().take(n).cloned().map(Param).collect();
    let refs: Vec<&(dyn ToSql + Sync)> = bound.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
    if stmt.columns().is_empty() || !want_rows {
        let affected = c.execute(&stmt, &refs).map_err(|e| message(&e))?;
        return Ok(Rows {
            affected,
            ..Rows::default()
        });
    }
    let columns: Vec<String> = stmt
        .columns()
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    check_columns(&stmt)?;
    let found = c.query(&stmt, &refs).map_err(|e| message(&e))?;
    let mut rows = Vec::with_capacity(found.len());
    for r in &found {
        rows.push(read_row(r)?);
    }
    Ok(Rows {
        columns,
        rows,
        affected: 0,
    })
}

fn check_columns(stmt: &postgres::Statement) -> Result<(), String> {
    for col in stmt.columns() {
        if !supported(col.type_()) && ![Type::BYTEA, Type::VOID].contains(col.type_()) {
            return Err(format!(
                "column \"{}\" has type {}, which checkflow cannot read; cast it in the query ({}::text)",
                col.name(),
                col.type_(),
                col.name()
            ));
        }
    }
    Ok(())
}

fn read_row(r: &postgres::Row) -> Result<Vec<Cell>, String> {
    let mut row = Vec::with_capacity(r.columns().len());
    for (i, col) in r.columns().iter().enumerate() {
        row.push(read(r, i, col.type_()).map_err(|e| {
            format!(
                "cannot read column \"{}\" ({}): {e}",
                col.name(),
                col.type_()
            )
        })?);
    }
    Ok(row)
}

/// Runs a query and hands `each` the columns (with `None`), then each row
/// as the server sends it (never holding the whole result); `each` returns
/// false to stop early.
pub(super) fn query_each(
    c: &mut Client,
    sql: &str,
    params: &[Value],
    each: &mut EachRow<'_>,
) -> Result<(), String> {
    use postgres::fallible_iterator::FallibleIterator;
    let stmt = c.prepare(sql).map_err(|e| message(&e))?;
    let n = stmt.params().len();
    if n > params.len() {
        return Err(format!(
            "the query has {n} parameter(s), but `params` gives {}",
            params.len()
        ));
    }
    check_columns(&stmt)?;
    let columns: Vec<String> = stmt
        .columns()
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    if !each(&columns, None)? {
        return Ok(());
    }
    let bound: Vec<Param> = params.iter().take(n).cloned().map(Param).collect();
    let mut it = c
        .query_raw(&stmt, bound.iter().map(|p| p as &(dyn ToSql + Sync)))
        .map_err(|e| message(&e))?;
    while let Some(r) = it.next().map_err(|e| message(&e))? {
        if !each(&columns, Some(read_row(&r)?))? {
            break;
        }
    }
    Ok(())
}

type BoxErr = Box<dyn StdError + Sync + Send>;

fn read(r: &postgres::Row, i: usize, t: &Type) -> Result<Cell, BoxErr> {
    fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> Cell) -> Cell {
        v.map_or(Cell::Null, f)
    }
    Ok(match *t {
        Type::BOOL => opt(r.try_get::<_, Option<bool>>(i)?, Cell::Bool),
        Type::INT2 => opt(r.try_get::<_, Option<i16>>(i)?, |v| Cell::Int(v.into())),
        Type::INT4 => opt(r.try_get::<_, Option<i32>>(i)?, |v| Cell::Int(v.into())),
        Type::INT8 => opt(r.try_get::<_, Option<i64>>(i)?, Cell::Int),
        Type::OID => opt(r.try_get::<_, Option<u32>>(i)?, |v| Cell::Int(v.into())),
        Type::FLOAT4 => opt(r.try_get::<_, Option<f32>>(i)?, |v| Cell::Real(v.into())),
        Type::FLOAT8 => opt(r.try_get::<_, Option<f64>>(i)?, Cell::Real),
        Type::NUMERIC => opt(r.try_get::<_, Option<Decimal>>(i)?, Cell::Dec),
        Type::TIMESTAMP => opt(
            r.try_get::<_, Option<jiff::civil::DateTime>>(i)?,
            Cell::Timestamp,
        ),
        Type::TIMESTAMPTZ => opt(r.try_get::<_, Option<jiff::Timestamp>>(i)?, |v| {
            Cell::Timestamp(v.to_zoned(jiff::tz::TimeZone::UTC).datetime())
        }),
        Type::DATE => opt(r.try_get::<_, Option<jiff::civil::Date>>(i)?, Cell::Date),
        Type::BYTEA => opt(r.try_get::<_, Option<Vec<u8>>>(i)?, Cell::Bytes),
        Type::VOID => Cell::Null,
        _ => opt(r.try_get::<_, Option<String>>(i)?, Cell::Text),
    })
}

/// A variable's value bound as a parameter, converted to the type the server
/// inferred for it (an `int8` variable compared with an `int4` column is
/// sent as `int4`, range-checked).
#[derive(Debug, Clone)]
struct Param(Value);

impl Param {
    fn cast(&self, ty: DataType) -> Result<Value, BoxErr> {
        self.0.cast_to(&ty).map_err(|e| e.to_string().into())
    }
}

impl ToSql for Param {
    fn to_sql(
        &self,
        t: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> Result<IsNull, BoxErr>
    where
        Self: Sized,
    {
        if self.0.is_null() {
            return Ok(IsNull::Yes);
        }
        match *t {
            Type::BOOL => match self.cast(DataType::Bool)? {
                Value::Bool(b) => b.to_sql(t, out),
                _ => Err("not a boolean".into()),
            },
            Type::INT2 => match self.cast(DataType::I2)? {
                Value::I2(v) => v.to_sql(t, out),
                _ => Err("not a smallint".into()),
            },
            Type::INT4 => match self.cast(DataType::I4)? {
                Value::I4(v) => v.to_sql(t, out),
                _ => Err("not an integer".into()),
            },
            Type::INT8 => match self.cast(DataType::I8)? {
                Value::I8(v) => v.to_sql(t, out),
                _ => Err("not a bigint".into()),
            },
            Type::OID => match self.cast(DataType::UI4)? {
                Value::UI4(v) => v.to_sql(t, out),
                _ => Err("not an oid".into()),
            },
            Type::FLOAT4 => match self.cast(DataType::R4)? {
                Value::R4(v) => v.to_sql(t, out),
                _ => Err("not a real".into()),
            },
            Type::FLOAT8 => match self.cast(DataType::R8)? {
                Value::R8(v) => v.to_sql(t, out),
                _ => Err("not a double precision".into()),
            },
            Type::NUMERIC => {
                let d: Decimal = match &self.0 {
                    Value::Numeric { value, .. } | Value::Decimal { value, .. } => *value,
                    Value::R4(f) => Decimal::try_from(f64::from(*f))?,
                    Value::R8(f) => Decimal::try_from(*f)?,
                    other => other
                        .to_string()
                        .trim()
                        .parse()
                        .map_err(|_| format!("{other} is not a number"))?,
                };
                d.to_sql(t, out)
            }
            Type::TIMESTAMP | Type::TIMESTAMPTZ | Type::DATE => {
                let dt = match self.cast(DataType::DbTimestamp)? {
                    Value::DbTimestamp(dt) => dt,
                    _ => return Err("not a date".into()),
                };
                match *t {
                    Type::TIMESTAMP => dt.to_sql(t, out),
                    Type::DATE => dt.date().to_sql(t, out),
                    _ => dt
                        .to_zoned(jiff::tz::TimeZone::UTC)?
                        .timestamp()
                        .to_sql(t, out),
                }
            }
            _ => {
                let text = match &self.0 {
                    Value::WStr(s) | Value::Str(s) => s.clone(),
                    other => other.to_string(),
                };
                text.to_sql(t, out)
            }
        }
    }

    fn accepts(t: &Type) -> bool
    where
        Self: Sized,
    {
        supported(t)
    }

    to_sql_checked!();
}
