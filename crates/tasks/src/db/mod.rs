//! Database connections for the `sql` and `bulk_insert` tasks: `kind: sqlite`
//! (rusqlite, the library built in) and `kind: postgres` (the sync `postgres`
//! client, plain TCP or a Unix socket, no TLS).
//!
//! 1. [`Connection`]: a connection manager as validated (where the database is).
//! 2. [`Db`]: one open connection; statements, typed cells, transactions.
//! 3. [`with_db`]: opens one for a task run, or joins the task's transaction
//!    (`cx.transaction()`), in which case the task never commits.
//! 4. [`Watch`]: a helper thread that interrupts a running statement when the
//!    task is cancelled (timeout, Ctrl-C, the package stopping).
//!
//! The items other crates use (the data flow task's database destinations and
//! sources) are public; the rest stays inside `checkflow-tasks`.
//!
//! Secrets: a PostgreSQL URL may hold a password. It is only ever shown through
//! `checkflow_model::redact_url`, and database errors are scrubbed of it
//! ([`Scrub`]).

mod cell;
mod pg;
mod split;
mod sqlite;
#[cfg(test)]
pub(crate) mod testkit;
#[cfg(test)]
mod tests;
mod tx;

pub use cell::{Cell, Rows};
pub use sqlite::param as sqlite_param;

/// What [`Db::query_each`] hands each row to: the column names, and the row
/// (`None` once, before any row); it returns false to stop.
pub type EachRow<'a> = dyn FnMut(&[String], Option<Vec<Cell>>) -> Result<bool, String> + 'a;
pub(crate) use pg::{io_message as pg_io_message, message as pg_message};
pub(crate) use split::split_statements;
pub(crate) use tx::{PostgresProbe, SqliteProbe};

use checkflow_expr::Value;
use checkflow_model::{ConnectionDef, redact_url};
use checkflow_plan::{CancelToken, RunCx, TaskError};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long an SQLite connection waits for another writer's lock before it
/// gives up with "database is locked" (parallel loads into one file take turns).
const SQLITE_BUSY_WAIT: Duration = Duration::from_secs(300);

/// A connection manager of kind `sqlite` or `postgres`, as the package names it.
#[derive(Clone, Debug)]
pub struct Connection {
    /// Its name in `connections:`.
    pub name: String,
    target: Target,
}

#[derive(Clone, Debug)]
enum Target {
    /// The database file (resolved against the package folder).
    Sqlite(PathBuf),
    /// A URL written in the package.
    PgUrl(String),
    /// The environment variable that holds the URL (read when a task runs).
    PgEnv(String),
}

/// Which database a [`Connection`] reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Connection {
    /// The connection manager `name` as written (already checked by
    /// `plan::validate`: kind, and `path` or `url` / `url_env`).
    pub fn from_def(
        name: &str,
        def: &ConnectionDef,
        package_dir: &Path,
    ) -> Result<Connection, String> {
        let target = match def.kind.value.as_str() {
            "sqlite" => {
                let p = def.path.as_deref().ok_or_else(|| {
                    format!("connection \"{name}\": a sqlite connection needs `path`")
                })?;
                Target::Sqlite(checkflow_plan::resolve_path(package_dir, p))
            }
            "postgres" => match (&def.url, &def.url_env) {
                (Some(u), None) => Target::PgUrl(u.clone()),
                (None, Some(e)) => Target::PgEnv(e.clone()),
                (Some(_), Some(_)) => {
                    return Err(format!(
                        "connection \"{name}\": give `url` or `url_env`, not both"
                    ));
                }
                (None, None) => {
                    return Err(format!(
                        "connection \"{name}\": a postgres connection needs `url` or `url_env`"
                    ));
                }
            },
            other => {
                return Err(format!(
                    "connection \"{name}\" is of kind {other}, expected sqlite or postgres"
                ));
            }
        };
        Ok(Connection {
            name: name.to_string(),
            target,
        })
    }

    /// `connection "dw" (sqlite /abs/dw.db)`, with any password hidden.
    pub fn describe(&self) -> String {
        match &self.target {
            Target::Sqlite(p) => format!("connection \"{}\" (sqlite {})", self.name, p.display()),
            Target::PgUrl(u) => format!("connection \"{}\" ({})", self.name, redact_url(u)),
            Target::PgEnv(e) => format!("connection \"{}\" (postgres, URL from ${e})", self.name),
        }
    }

    /// Opens it. Errors name the connection, never its password.
    pub fn open(&self) -> Result<Db, TaskError> {
        match &self.target {
            Target::Sqlite(p) => sqlite::open(p, true)
                .map(Db::Sqlite)
                .map_err(|e| TaskError::new(format!("cannot open {}: {e}", self.describe()))),
            Target::PgUrl(_) | Target::PgEnv(_) => {
                let url = self.pg_url()?;
                let scrub = Scrub::of(&url);
                pg::connect(&url)
                    .map(|c| Db::Pg(Box::new(c), scrub.clone()))
                    .map_err(|e| {
                        TaskError::new(scrub.clean(&format!(
                            "cannot connect to {}: {}",
                            self.describe(),
                            pg::message(&e)
                        )))
                    })
            }
        }
    }

    /// The SQLite file, if it is one.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match &self.target {
            Target::Sqlite(p) => Some(p),
            _ => None,
        }
    }

    /// The PostgreSQL URL (read from the environment for `url_env`).
    pub fn pg_url(&self) -> Result<String, TaskError> {
        match &self.target {
            Target::PgUrl(u) => Ok(u.clone()),
            Target::PgEnv(e) => {
                url_from_env(e).map_err(|m| TaskError::new(format!("{}: {m}", self.describe())))
            }
            Target::Sqlite(_) => Err(TaskError::new(format!(
                "{} is not a postgres connection",
                self.describe()
            ))),
        }
    }
}

/// The URL in the environment variable a connection's `url_env` names: set
/// and not blank, or an error naming the variable.
pub fn url_from_env(var: &str) -> Result<String, String> {
    match std::env::var(var) {
        Ok(u) if !u.trim().is_empty() => Ok(u),
        Ok(_) => Err(format!(
            "environment variable {var} is empty (the connection's `url_env`)"
        )),
        Err(std::env::VarError::NotPresent) => Err(format!(
            "environment variable {var} is not set (the connection's `url_env`)"
        )),
        Err(std::env::VarError::NotUnicode(_)) => Err(format!(
            "environment variable {var} is not valid UTF-8 (the connection's `url_env`)"
        )),
    }
}

/// One open connection.
pub enum Db {
    /// SQLite.
    Sqlite(rusqlite::Connection),
    /// PostgreSQL (boxed: the client is large), with what to hide in its errors.
    Pg(Box<postgres::Client>, Scrub),
}

impl Db {
    /// Which database this is.
    pub fn kind(&self) -> Kind {
        match self {
            Db::Sqlite(_) => Kind::Sqlite,
            Db::Pg(..) => Kind::Postgres,
        }
    }

    /// Starts a transaction. SQLite takes the write lock at once (`BEGIN
    /// IMMEDIATE`), so two writers wait for each other instead of failing
    /// half-way with "database is locked".
    pub fn begin(&mut self) -> Result<(), String> {
        match self {
            Db::Sqlite(c) => c
                .execute_batch("BEGIN IMMEDIATE")
                .map_err(|e| e.to_string()),
            Db::Pg(c, s) => c
                .batch_execute("BEGIN")
                .map_err(|e| s.clean(&pg::message(&e))),
        }
    }

    /// Commits the open transaction.
    pub fn commit(&mut self) -> Result<(), String> {
        self.batch("COMMIT")
    }

    /// Rolls the open transaction back.
    pub fn rollback(&mut self) -> Result<(), String> {
        self.batch("ROLLBACK")
    }

    /// Runs statements without parameters or results.
    pub fn batch(&mut self, sql: &str) -> Result<(), String> {
        match self {
            Db::Sqlite(c) => c.execute_batch(sql).map_err(|e| e.to_string()),
            Db::Pg(c, s) => c.batch_execute(sql).map_err(|e| s.clean(&pg::message(&e))),
        }
    }

    /// Runs one statement with positional parameters; returns its rows when
    /// `want_rows` (else they are read and dropped, whatever their types).
    pub fn statement(
        &mut self,
        sql: &str,
        params: &[Value],
        want_rows: bool,
    ) -> Result<Rows, String> {
        match self {
            Db::Sqlite(c) => sqlite::statement(c, sql, params, want_rows),
            Db::Pg(c, s) => pg::statement(c, sql, params, want_rows).map_err(|e| s.clean(&e)),
        }
    }

    /// Runs a query with positional parameters and hands each row to `each`
    /// as it is read, with the column names: first once with `None` (the
    /// columns alone, before any row), then once per row; `each` returns
    /// false to stop.
    pub fn query_each(
        &mut self,
        sql: &str,
        params: &[Value],
        each: &mut EachRow<'_>,
    ) -> Result<(), String> {
        match self {
            Db::Sqlite(c) => sqlite::query_each(c, sql, params, each),
            Db::Pg(c, s) => pg::query_each(c, sql, params, each).map_err(|e| s.clean(&e)),
        }
    }

    /// A handle that interrupts the statement running on this connection.
    pub fn interrupter(&self) -> Interrupter {
        match self {
            Db::Sqlite(c) => Interrupter::Sqlite(c.get_interrupt_handle()),
            Db::Pg(c, _) => Interrupter::Pg(c.cancel_token()),
        }
    }
}

/// Stops the statement running on a connection, from another thread.
pub enum Interrupter {
    /// `sqlite3_interrupt`.
    Sqlite(rusqlite::InterruptHandle),
    /// A PostgreSQL cancel request (a second, short connection to the server).
    Pg(postgres::CancelToken),
}

impl Interrupter {
    fn interrupt(&self) {
        match self {
            Interrupter::Sqlite(h) => h.interrupt(),
            Interrupter::Pg(t) => {
                let _ = t.cancel_query(postgres::NoTls);
            }
        }
    }
}

/// Watches a task's cancel token while a statement runs, and interrupts the
/// statement when it fires. Stopped (and joined) when dropped.
pub struct Watch {
    stop: Arc<AtomicBool>,
    fired: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Watch {
    /// Starts watching `token` for the connection behind `int`.
    pub fn start(token: &CancelToken, int: Interrupter) -> Watch {
        let stop = Arc::new(AtomicBool::new(false));
        let fired = Arc::new(AtomicBool::new(false));
        let (s, f, t) = (stop.clone(), fired.clone(), token.clone());
        let thread = std::thread::Builder::new()
            .name("checkflow-db-watch".into())
            .spawn(move || {
                while !s.load(Ordering::SeqCst) {
                    if t.is_cancelled() {
                        f.store(true, Ordering::SeqCst);
                        int.interrupt();
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
            .ok();
        Watch {
            stop,
            fired,
            thread,
        }
    }

    /// Whether it interrupted the connection.
    pub fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Whether a task runs on its own connection or inside a transaction it
/// shares with its container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Its own connection: the task commits its own work.
    Own,
    /// The container's transaction: the task never commits or rolls back;
    /// the container does.
    Joined,
}

/// Runs `f` on a connection for this task: the transaction's (opened with
/// `BEGIN` the first time a task of the scope uses the connection) when the
/// task runs in one, else a connection of its own, closed afterwards.
pub fn with_db<R>(
    cx: &dyn RunCx,
    conn: &Connection,
    f: impl FnOnce(&mut Db, Mode) -> Result<R, TaskError>,
) -> Result<R, TaskError> {
    match cx.transaction() {
        Some(scope) => scope.with(
            &conn.name,
            || {
                let mut db = conn.open()?;
                db.begin().map_err(|e| {
                    TaskError::new(format!(
                        "cannot begin a transaction on {}: {e}",
                        conn.describe()
                    ))
                })?;
                Ok(Box::new(tx::DbTx::new(db, conn.clone())))
            },
            |res| {
                let db = res
                    .as_any()
                    .downcast_mut::<tx::DbTx>()
                    .map(|t| &mut t.db)
                    .ok_or_else(|| {
                        TaskError::new(format!(
                            "{} is used by another kind of task in this transaction",
                            conn.describe()
                        ))
                    })?;
                f(db, Mode::Joined)
            },
        ),
        None => {
            let mut db = conn.open()?;
            f(&mut db, Mode::Own)
        }
    }
}

/// The password of a connection URL, to scrub from any message that might
/// echo it (a driver error quoting the URL).
#[derive(Clone, Debug, Default)]
pub struct Scrub {
    secrets: Vec<String>,
}

impl Scrub {
    /// What to hide for this URL.
    pub fn of(url: &str) -> Scrub {
        let mut secrets = Vec::new();
        if let Some(scheme_end) = url.find("://") {
            let rest = &url[scheme_end + 3..];
            let auth = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
            if let Some(at) = auth.rfind('@')
                && let Some((_, pw)) = auth[..at].split_once(':')
            {
                secrets.push(pw.to_string());
                secrets.push(percent_decode(pw));
            }
            if let Some(q) = rest.find('?') {
                for kv in rest[q + 1..].split('&') {
                    if let Some((k, v)) = kv.split_once('=')
                        && k.eq_ignore_ascii_case("password")
                    {
                        secrets.push(v.to_string());
                        secrets.push(percent_decode(v));
                    }
                }
            }
        } else {
            let red = redact_url(url);
            // Whatever the redaction removed is secret: take the tokens that differ.
            let a: Vec<&str> = url.split_whitespace().collect();
            let b: Vec<&str> = red.split_whitespace().collect();
            for (x, y) in a.iter().zip(&b) {
                if x != y
                    && let Some((_, v)) = x.split_once('=')
                {
                    secrets.push(v.trim_matches('\'').to_string());
                }
            }
        }
        secrets.retain(|s| s.len() >= 3);
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Scrub { secrets }
    }

    /// `msg` with every secret replaced by `***`.
    pub fn clean(&self, msg: &str) -> String {
        let mut m = msg.to_string();
        for s in &self.secrets {
            m = m.replace(s.as_str(), "***");
        }
        m
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            let v = (h * 16 + l) as u8;
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The parameters of a progress row: its rows done, as a BIGINT, and the
/// execution that finished it, or NULL while it is under way.
pub fn progress_params(rows: u64, done_by: Option<&str>) -> [Value; 2] {
    [
        Value::I8(i64::try_from(rows).unwrap_or(i64::MAX)),
        match done_by {
            Some(by) => Value::WStr(by.to_string()),
            None => Value::Null(checkflow_expr::DataType::WStr { len: None }),
        },
    ]
}

/// An identifier for SQL text: kept as written when it is a plain (possibly
/// schema-qualified) name, so the database folds its case as usual; quoted
/// otherwise.
pub fn ident(name: &str) -> String {
    let plain = |s: &str| {
        let mut ch = s.chars();
        matches!(ch.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
            && ch.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
    };
    let quoted = |s: &str| s.len() >= 2 && s.starts_with('"') && s.ends_with('"');
    if name.split('.').all(|p| plain(p) || quoted(p)) {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// The first line of a statement, cut to a readable length, for messages.
pub(crate) fn first_line(sql: &str) -> String {
    let t = sql.trim();
    let first = t.lines().next().unwrap_or("").trim();
    let cut: String = first.chars().take(80).collect();
    if t.lines().count() > 1 || cut.len() < first.len() {
        format!("{cut} ...")
    } else {
        cut
    }
}

/// Inserts rows into `table` (`columns` in the order of each row's values) in
/// the open transaction: SQLite runs one prepared `INSERT` per row,
/// PostgreSQL takes them through `COPY ... FROM STDIN (FORMAT csv)`. Values
/// are bound as the `sql` task binds parameters (SQLite) or sent as their
/// SSIS text form (PostgreSQL, which converts them to the column types).
/// On failure, the error names the (0-based) row it was about, if known.
pub fn insert_rows(
    db: &mut Db,
    table: &str,
    columns: &[String],
    rows: &[Vec<Value>],
) -> Result<(), (Option<usize>, String)> {
    if rows.is_empty() {
        return Ok(());
    }
    let cols = columns
        .iter()
        .map(|c| ident(c))
        .collect::<Vec<_>>()
        .join(", ");
    match db {
        Db::Sqlite(c) => {
            let mut marks = "?, ".repeat(columns.len());
            marks.truncate(marks.len().saturating_sub(2));
            let sql = format!("INSERT INTO {} ({cols}) VALUES ({marks})", ident(table));
            let mut stmt = c.prepare_cached(&sql).map_err(|e| (None, e.to_string()))?;
            for (i, r) in rows.iter().enumerate() {
                stmt.execute(rusqlite::params_from_iter(r.iter().map(sqlite::param)))
                    .map_err(|e| (Some(i), e.to_string()))?;
            }
            Ok(())
        }
        Db::Pg(client, scrub) => {
            let sql = format!("COPY {} ({cols}) FROM STDIN (FORMAT csv)", ident(table));
            let mut w = client
                .copy_in(&sql)
                .map_err(|e| (None, scrub.clean(&pg::message(&e))))?;
            let mut buf = Vec::with_capacity(1 << 16);
            let mut texts: Vec<Option<String>> = Vec::with_capacity(columns.len());
            for r in rows {
                texts.clear();
                texts.extend(r.iter().map(|v| match v {
                    Value::Null(_) => None,
                    Value::Bool(b) => Some(if *b { "true" } else { "false" }.to_string()),
                    other => Some(other.to_string()),
                }));
                crate::bulk::encode_csv_row(&mut buf, texts.iter().map(|t| t.as_deref()));
                if buf.len() >= 1 << 16 {
                    std::io::Write::write_all(&mut w, &buf)
                        .map_err(|e| (None, scrub.clean(&pg::io_message(&e))))?;
                    buf.clear();
                }
            }
            std::io::Write::write_all(&mut w, &buf)
                .map_err(|e| (None, scrub.clean(&pg::io_message(&e))))?;
            w.finish().map_err(|e| {
                let m = scrub.clean(&pg::message(&e));
                (copy_row(&m), m)
            })?;
            Ok(())
        }
    }
}

/// Sends rows already encoded as CSV (`bulk::encode_csv_row`'s form: every
/// text quoted, NULL an empty field) into `table` (`columns` in their order)
/// with one PostgreSQL `COPY ... FROM STDIN (FORMAT csv)` in the open
/// transaction, streaming: `first` is sent, then `more` fills the buffer it
/// is given with the next rows and returns false when there are no more; the
/// server stores each part while the next is made. On failure, the error
/// names the (0-based) row of the COPY, if known.
pub fn copy_csv_stream(
    db: &mut Db,
    table: &str,
    columns: &[String],
    first: &[u8],
    more: &mut dyn FnMut(&mut Vec<u8>) -> bool,
) -> Result<(), (Option<usize>, String)> {
    let Db::Pg(client, scrub) = db else {
        return Err((None, "COPY needs a PostgreSQL connection".into()));
    };
    let cols = columns
        .iter()
        .map(|c| ident(c))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!("COPY {} ({cols}) FROM STDIN (FORMAT csv)", ident(table));
    let mut w = client
        .copy_in(&sql)
        .map_err(|e| (None, scrub.clean(&pg::message(&e))))?;
    let io = |e: std::io::Error| (None, scrub.clean(&pg::io_message(&e)));
    std::io::Write::write_all(&mut w, first).map_err(io)?;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if !more(&mut buf) {
            break;
        }
        std::io::Write::write_all(&mut w, &buf).map_err(io)?;
    }
    w.finish().map_err(|e| {
        let m = scrub.clean(&pg::message(&e));
        (copy_row(&m), m)
    })?;
    Ok(())
}

/// The 0-based row of a server's `COPY t, line N` context.
pub(crate) fn copy_row(msg: &str) -> Option<usize> {
    let i = msg.find("COPY ")?;
    let rest = &msg[i..];
    let j = rest.find(", line ")?;
    let digits: String = rest[j + 7..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse::<usize>().ok()?.checked_sub(1)
}
