//! The Bulk Insert task (`type: bulk_insert`): a delimited file into a table.
//!
//! - SQLite: one `INSERT` prepared per batch and executed for each row;
//!   PostgreSQL: `COPY table (columns) FROM STDIN (FORMAT csv)`, the rows
//!   re-encoded as they are read (so both databases see the same fields and
//!   NULLs) and sent in 64 KiB writes. Neither builds SQL text or reads the
//!   clock per row, and memory does not grow with the file.
//! - The file: `delimiter` (default `,`; `\t` or `tab` for tabs), `header`
//!   (default true: the first line names the columns), `quote` (default `"`;
//!   `""` turns quoting off), `null` (a field equal to it is NULL; without it
//!   every field is text as written, an empty one too), `columns` (the table
//!   columns the fields go into, in file order; default: the header's names,
//!   or every column of the table).
//! - By default the whole file is one transaction: a failure leaves no row.
//!   `truncate: true` empties the table in that same transaction.
//! - `batch_size: N` commits every N rows. With `resume: true` (beyond SSIS)
//!   each batch commits together with a progress row in
//!   `checkflow_load_progress`, and a rerun skips the rows already committed:
//!   no row is loaded twice. The progress row also holds a SHA-256 of the
//!   rows it counts (the header and the first `rows_done` records), so a file
//!   fixed after the last committed row (the usual repair of a bad row) resumes,
//!   while a file changed before it is refused, unless `truncate: true`, which
//!   starts over.
//! - The last batch does not remove the progress row: it marks it done by
//!   this execution of the task (`done_by`, see `checkflow_plan::Execution`),
//!   in the batch's transaction. The task's completion is recorded in the
//!   checkpoint only later, so a crash in between restarts the same
//!   execution, which finds its own done row and loads nothing. A done row
//!   of another execution (a new run, another iteration, a recorded
//!   completion, `--rerun`) means the file was loaded and recorded before:
//!   this execution loads it again, and its first commit replaces the row.
//!   See docs/design/commit-protocols.md, section 3.
//! - Inside a transacted container the load joins the container's
//!   transaction: no commit of its own, no batches.

use crate::db::{self, Connection, Db, Kind, Mode, Watch, ident};
use crate::sql::connection;
use checkflow_expr::Value;
use checkflow_model::TaskDef;
use checkflow_plan::{Action, BuildCx, LogLevel, RunCx, SystemVar, TaskError, TaskType};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufReader, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Rows per batch when `resume: true` is given without `batch_size`.
const DEFAULT_RESUME_BATCH: u64 = 10_000;

/// The progress table's name.
const PROGRESS: &str = "checkflow_load_progress";

pub(crate) struct BulkInsertType;

impl TaskType for BulkInsertType {
    fn name(&self) -> &'static str {
        "bulk_insert"
    }

    fn fields(&self) -> &'static [&'static str] {
        &[
            "connection",
            "table",
            "file",
            "delimiter",
            "header",
            "quote",
            "null",
            "columns",
            "truncate",
            "batch_size",
            "resume",
        ]
    }

    fn build(&self, def: &TaskDef, cx: &mut BuildCx<'_>) -> Option<Arc<dyn Action>> {
        let data = def.data();
        let conn = connection(def, cx, "bulk_insert");
        let table = data.table.clone().filter(|t| !t.trim().is_empty());
        if table.is_none() {
            cx.missing("table", "bulk_insert");
        }
        let file = def.file.clone().filter(|t| !t.trim().is_empty());
        if file.is_none() {
            cx.missing("file", "bulk_insert");
        }
        let delimiter = match data.delimiter.as_deref() {
            None => Some(b','),
            Some("\\t" | "tab" | "\t") => Some(b'\t'),
            Some(d) if d.len() == 1 && d.is_ascii() => Some(d.as_bytes()[0]),
            Some(d) => {
                cx.error(format!(
                    "`delimiter: {d:?}` must be one ASCII character (or \\t / tab)"
                ));
                None
            }
        };
        let quote = match data.quote.as_deref() {
            None => Some(Some(b'"')),
            Some("") => Some(None),
            Some(q) if q.len() == 1 && q.is_ascii() => Some(Some(q.as_bytes()[0])),
            Some(q) => {
                cx.error(format!(
                    "`quote: {q:?}` must be one ASCII character (or \"\" for no quoting)"
                ));
                None
            }
        };
        if data.batch_size == Some(0) {
            cx.error("`batch_size` must be at least 1");
            return None;
        }
        if let Some(cols) = &data.columns
            && cols.is_empty()
        {
            cx.error("`columns` is empty (leave it out to use the header's names)");
            return None;
        }
        let resume = data.resume.unwrap_or(false);
        let batch = match (data.batch_size, resume) {
            (Some(n), _) => Some(n),
            (None, true) => Some(DEFAULT_RESUME_BATCH),
            (None, false) => None,
        };
        Some(Arc::new(BulkAction {
            conn: conn?,
            table: table?,
            file: file?,
            delimiter: delimiter?,
            header: data.header.unwrap_or(true),
            quote: quote?,
            null: data.null.clone(),
            columns: data.columns.clone(),
            truncate: data.truncate.unwrap_or(false),
            batch,
            resume,
        }))
    }
}

struct BulkAction {
    conn: Connection,
    table: String,
    file: String,
    delimiter: u8,
    header: bool,
    quote: Option<u8>,
    null: Option<String>,
    columns: Option<Vec<String>>,
    truncate: bool,
    batch: Option<u64>,
    resume: bool,
}

impl Action for BulkAction {
    fn run(&self, cx: &mut dyn RunCx) -> Result<(), TaskError> {
        let path = cx.prop_path("file", &self.file);
        let table = cx.prop_string("table", &self.table);
        let mut src = Source::open(&path, self)?;
        let columns = match (&self.columns, src.header.take()) {
            (Some(c), _) => Some(c.clone()),
            (None, Some(h)) => Some(h),
            (None, None) => None,
        };
        if let Some(c) = &columns {
            src.width = Some(c.len());
        }
        let package_id = {
            let slot = cx.vars().system_slot(SystemVar::PackageId);
            cx.get(slot).to_string()
        };
        let key = format!("{package_id}:{table}:{}", path.display());
        let execution = cx.execution().id();
        let token = cx.cancel_token().clone();
        let cx: &dyn RunCx = cx;
        let done = db::with_db(cx, &self.conn, |db, mode| {
            let watch = Watch::start(&token, db.interrupter());
            let mut load = Load {
                db,
                mode,
                conn: &self.conn,
                table: &table,
                columns: columns.as_deref(),
                null: self.null.as_deref(),
                src: &mut src,
                cx,
                last_report: Instant::now(),
                base: 0,
            };
            let r = load.run(self, &key, &execution, &path);
            if r.is_err() && (watch.fired() || token.is_cancelled()) {
                return Err(TaskError::new(format!(
                    "loading {} into {table} was cancelled",
                    path.display()
                )));
            }
            r
        })?;
        cx.progress(done, Some(done), "rows");
        Ok(())
    }
}

/// The delimited file, read record by record.
struct Source {
    rdr: csv::Reader<BufReader<File>>,
    rec: csv::StringRecord,
    /// The header's names (taken once columns are settled).
    header: Option<Vec<String>>,
    /// Fields every record must have (from `columns`, the header, or the first record).
    width: Option<usize>,
    /// The line the current record starts on (1-based).
    line: u64,
    path: String,
    /// A running hash of every record read so far (with `resume`).
    hash: Option<Sha256>,
    /// The file's length, if its last line has no line end.
    unterminated_len: Option<u64>,
    /// Lines end with `\r\n` (judged by the first line end).
    crlf: bool,
    /// The line the reader was on after the previous record.
    end_line: u64,
}

/// How the lines of `f` end: its length if the last line has no line end
/// (then the last record has none of its own), and whether the first line
/// ends with `\r\n`. Leaves `f` at its start.
fn line_ends(f: &mut File) -> std::io::Result<(Option<u64>, bool)> {
    use std::io::{Read, Seek, SeekFrom};
    let len = f.metadata()?.len();
    if len == 0 {
        return Ok((None, false));
    }
    let mut head = vec![0u8; 64 << 10];
    let n = f.read(&mut head)?;
    let crlf = head[..n]
        .iter()
        .position(|b| *b == b'\n')
        .is_some_and(|i| i > 0 && head[i - 1] == b'\r');
    f.seek(SeekFrom::Start(len - 1))?;
    let mut last = [0u8];
    f.read_exact(&mut last)?;
    f.seek(SeekFrom::Start(0))?;
    Ok(((last[0] != b'\n').then_some(len), crlf))
}

impl Source {
    fn open(path: &Path, a: &BulkAction) -> Result<Source, TaskError> {
        let mut csv = csv::ReaderBuilder::new();
        csv.delimiter(a.delimiter)
            .quote(a.quote.unwrap_or(b'"'))
            .quoting(a.quote.is_some());
        let mut s = Source::with_reader(path, csv, a.resume.then(Sha256::new))?;
        if a.header {
            if s.next()? {
                let names: Vec<String> = s.rec.iter().map(|f| f.trim().to_string()).collect();
                s.header = Some(names);
            }
            // Data rows match the columns, not necessarily the header line.
            s.width = None;
        }
        Ok(s)
    }

    /// The file at `path` read with `csv`'s quoting and delimiter (records of
    /// any width; the header is the caller's), before its first record.
    fn with_reader(
        path: &Path,
        mut csv: csv::ReaderBuilder,
        hash: Option<Sha256>,
    ) -> Result<Source, TaskError> {
        // A link to the data is fine; a FIFO or a device is refused at once.
        let mut f = checkflow_files::open_read(path, checkflow_files::Links::Follow)
            .map_err(|e| TaskError::new(format!("cannot open {}: {e}", path.display())))?;
        let (unterminated_len, crlf) = line_ends(&mut f)
            .map_err(|e| TaskError::new(format!("cannot read {}: {e}", path.display())))?;
        let rdr = csv
            .has_headers(false)
            .flexible(true)
            .from_reader(BufReader::with_capacity(1 << 16, f));
        Ok(Source {
            rdr,
            rec: csv::StringRecord::new(),
            header: None,
            width: None,
            line: 0,
            path: path.display().to_string(),
            hash,
            unterminated_len,
            crlf,
            end_line: 1,
        })
    }

    /// Reads the next record; false at the end of the file.
    fn next(&mut self) -> Result<bool, TaskError> {
        let more = self.rdr.read_record(&mut self.rec).map_err(|e| {
            let line = e.position().map_or(self.line + 1, |p| p.line());
            TaskError::new(format!("line {line} of {}: {e}", self.path))
        })?;
        if !more {
            return Ok(false);
        }
        self.line = self.record_line();
        if let Some(h) = &mut self.hash {
            // Unit and record separators keep field boundaries unambiguous.
            for f in self.rec.iter() {
                h.update(f.as_bytes());
                h.update([0x1f]);
            }
            h.update([0x1e]);
        }
        let n = self.rec.len();
        match self.width {
            None => self.width = Some(n),
            Some(w) if w != n => {
                return Err(TaskError::new(format!(
                    "line {} of {}: {n} field(s), expected {w}",
                    self.line, self.path
                )));
            }
            Some(_) => {}
        }
        Ok(true)
    }

    /// The line the record just read starts on. The csv reader's own
    /// position for a record is where it started looking: before the blank
    /// lines it skipped, and, in a CRLF file, before the `\n` that ends the
    /// previous line. The reader's position after each record is exact, so
    /// count from the end of the previous record: the lines between the two
    /// ends are the skipped ones, the newlines inside the record's fields, and
    /// its own line end (a `\n` unless the file ends lines with `\r\n`, whose
    /// `\n` is skipped before the next record, or this is an unterminated
    /// last line).
    fn record_line(&mut self) -> u64 {
        let end = self.rdr.position().clone();
        let prev = std::mem::replace(&mut self.end_line, end.line());
        let lines = end.line().saturating_sub(prev);
        let own_end = u64::from(!self.crlf && self.unterminated_len != Some(end.byte()));
        let skipped = if lines > own_end {
            let inside = self.rec.as_slice().bytes().filter(|b| *b == b'\n').count() as u64;
            lines.saturating_sub(inside + own_end)
        } else {
            0
        };
        prev + skipped
    }

    /// `sha256:<hex>` of the records read so far.
    fn digest(&self) -> String {
        let h = self.hash.clone().unwrap_or_default().finalize();
        let hex: String = h.iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256:{hex}")
    }

    /// The current record's fields, NULL where the field equals the marker.
    fn fields<'a>(&'a self, null: Option<&'a str>) -> impl Iterator<Item = Option<&'a str>> {
        self.rec.iter().map(move |f| match null {
            Some(n) if f == n => None,
            _ => Some(f),
        })
    }
}

/// One run of the load on one connection.
struct Load<'a> {
    db: &'a mut Db,
    mode: Mode,
    conn: &'a Connection,
    table: &'a str,
    columns: Option<&'a [String]>,
    null: Option<&'a str>,
    src: &'a mut Source,
    cx: &'a dyn RunCx,
    last_report: Instant,
    /// Rows committed before the current batch (for progress reports).
    base: u64,
}

impl Load<'_> {
    fn err(&self, what: &str, e: impl std::fmt::Display) -> TaskError {
        TaskError::new(format!("{what} on {}: {e}", self.conn.describe()))
    }

    fn run(
        &mut self,
        a: &BulkAction,
        key: &str,
        execution: &str,
        path: &Path,
    ) -> Result<u64, TaskError> {
        let own = self.mode == Mode::Own;
        if !own && (a.batch.is_some() || a.resume) {
            self.cx.log(
                LogLevel::Info,
                "bulk_insert joins the container's transaction: batch_size and resume are off",
            );
        }
        let batch = if own { a.batch } else { None };
        let resume = own && a.resume;
        let mut start = 0;
        let mut truncate = a.truncate;
        if resume {
            self.prepare_progress_table()?;
            let found = self
                .db
                .statement(
                    &format!(
                        "SELECT rows_sha256, rows_done, done_by FROM {PROGRESS} WHERE task_key = {}",
                        ph(self.db.kind(), 1)
                    ),
                    &[Value::WStr(key.to_string())],
                    true,
                )
                .map_err(|e| self.err("cannot read checkflow_load_progress", e))?;
            let row = found.rows.first();
            // A done row of another execution: that load finished and its
            // completion was recorded (or belongs to another run); this
            // execution loads the file again, and its first commit replaces
            // the row. A done row of this very execution is resumed like a
            // partial one: a crash came between its last commit and the
            // record of its completion, and the rows are all there.
            let stale = match row.map(|r| &r[2]) {
                Some(db::Cell::Text(by)) if by != execution => {
                    self.cx.log(
                        LogLevel::Info,
                        &format!(
                            "{} was loaded into {} by an earlier run of the task; loading it again",
                            path.display(),
                            self.table
                        ),
                    );
                    true
                }
                _ => false,
            };
            if let Some(row) = row.filter(|_| !stale) {
                let (db::Cell::Text(old_id), db::Cell::Int(n)) = (&row[0], &row[1]) else {
                    return Err(self.err("cannot read checkflow_load_progress", "unexpected row"));
                };
                let finished = matches!(row[2], db::Cell::Text(_));
                let n = u64::try_from(*n).unwrap_or(0);
                let mut read = 0;
                while read < n && self.src.next()? {
                    read += 1;
                }
                if read == n && self.src.digest() == *old_id {
                    start = n;
                    truncate = false;
                    let line = if finished {
                        format!(
                            "already loaded: this run of the task committed all {n} row(s) of {} before it was interrupted; loading only rows added since",
                            path.display()
                        )
                    } else {
                        format!("resuming: {n} row(s) were committed before; skipping them")
                    };
                    self.cx.log(LogLevel::Info, &line);
                } else if a.truncate {
                    self.cx.log(
                        LogLevel::Warn,
                        &format!(
                            "the first {n} row(s) of {} changed since they were committed; truncate is on, starting over",
                            path.display()
                        ),
                    );
                    *self.src = Source::open(path, a)?;
                    self.src.header = None;
                    self.src.width = self.columns.map(<[String]>::len);
                } else {
                    return Err(TaskError::new(format!(
                        "the first {n} row(s) of {} changed since they were committed into {}; \
                         restore the file, or set `truncate: true` to load it again from the start",
                        path.display(),
                        self.table
                    )));
                }
            }
        }
        let mut done = start;
        loop {
            if own {
                self.db
                    .begin()
                    .map_err(|e| self.err("cannot begin a transaction", e))?;
            }
            self.base = done;
            let r = self
                .batch(truncate, batch.unwrap_or(u64::MAX))
                .and_then(|(n, eof)| {
                    if resume {
                        let id = self.src.digest();
                        let by = eof.then_some(execution);
                        self.save_progress(key, &id, done + n, by)?;
                    }
                    Ok((n, eof))
                });
            let (n, eof) = match r {
                Ok(x) => x,
                Err(e) => {
                    if own {
                        let _ = self.db.rollback();
                    }
                    let kept = if done > 0 && batch.is_some() {
                        format!(" ({done} row(s) committed by earlier batches stay)")
                    } else {
                        String::new()
                    };
                    return Err(TaskError::new(format!("{}{kept}", e.message)));
                }
            };
            if own {
                // Crash points around each commit (docs/design/commit-protocols.md §3).
                let (before, after) = match (resume, eof) {
                    (true, false) => ("bulk-before-batch-commit", "bulk-after-batch-commit"),
                    (true, true) => ("bulk-before-last-commit", "bulk-after-last-commit"),
                    (false, _) => ("bulk-before-commit", "bulk-after-commit"),
                };
                if checkflow_plan::failpoint(before) {
                    let _ = self.db.rollback();
                    return Err(self.err("COMMIT failed", "refused (test failpoint)"));
                }
                self.db.commit().map_err(|e| self.err("COMMIT failed", e))?;
                if checkflow_plan::failpoint(after) {
                    return Err(self.err(
                        "COMMIT failed",
                        "its acknowledgement was lost (test failpoint)",
                    ));
                }
            }
            truncate = false;
            done += n;
            self.cx.progress(done, None, "rows");
            if eof {
                break;
            }
        }
        Ok(done)
    }

    /// Creates the progress table, or adds `done_by` to one made before it
    /// existed (whose rows are all partial loads: the column stays NULL).
    fn prepare_progress_table(&mut self) -> Result<(), TaskError> {
        let k = self.db.kind();
        self.db
            .batch(&progress_table_sql(k))
            .map_err(|e| self.err("cannot create table checkflow_load_progress", e))?;
        let probe = format!("SELECT done_by FROM {PROGRESS} LIMIT 0");
        if self.db.statement(&probe, &[], true).is_ok() {
            return Ok(());
        }
        let add = match k {
            Kind::Sqlite => format!("ALTER TABLE {PROGRESS} ADD COLUMN done_by TEXT"),
            Kind::Postgres => {
                format!("ALTER TABLE {PROGRESS} ADD COLUMN IF NOT EXISTS done_by TEXT")
            }
        };
        if let Err(e) = self.db.batch(&add) {
            // Another load on the same database may have added it meanwhile.
            if self.db.statement(&probe, &[], true).is_err() {
                return Err(self.err("cannot add column done_by to checkflow_load_progress", e));
            }
        }
        Ok(())
    }

    /// Upserts the progress row in the batch's transaction, so it holds
    /// exactly the committed rows; `done_by` marks the file done by that
    /// execution of the task (the last batch).
    fn save_progress(
        &mut self,
        key: &str,
        digest: &str,
        rows: u64,
        done_by: Option<&str>,
    ) -> Result<(), TaskError> {
        let k = self.db.kind();
        self.db
            .statement(
                &format!(
                    "INSERT INTO {PROGRESS} (task_key, rows_sha256, rows_done, done_by) VALUES ({}, {}, {}, {}) \
                     ON CONFLICT (task_key) DO UPDATE SET rows_sha256 = excluded.rows_sha256, rows_done = excluded.rows_done, done_by = excluded.done_by",
                    ph(k, 1),
                    ph(k, 2),
                    ph(k, 3),
                    ph(k, 4)
                ),
                &[
                    [Value::WStr(key.to_string()), Value::WStr(digest.to_string())].as_slice(),
                    &db::progress_params(rows, done_by),
                ]
                .concat(),
                false,
            )
            .map(|_| ())
            .map_err(|e| self.err("cannot record the load's progress", e))
    }

    /// Loads up to `limit` rows in the open transaction: (rows, end of file).
    fn batch(&mut self, truncate: bool, limit: u64) -> Result<(u64, bool), TaskError> {
        if truncate {
            let sql = match self.db.kind() {
                Kind::Sqlite => format!("DELETE FROM {}", ident(self.table)),
                Kind::Postgres => format!("TRUNCATE TABLE {}", ident(self.table)),
            };
            self.db
                .batch(&sql)
                .map_err(|e| self.err(&format!("cannot empty {}", self.table), e))?;
        }
        match self.db {
            Db::Sqlite(_) => self.batch_sqlite(limit),
            Db::Pg(..) => self.batch_pg(limit),
        }
    }

    fn column_list(&self) -> String {
        match self.columns {
            Some(c) => format!(
                " ({})",
                c.iter().map(|c| ident(c)).collect::<Vec<_>>().join(", ")
            ),
            None => String::new(),
        }
    }

    fn batch_sqlite(&mut self, limit: u64) -> Result<(u64, bool), TaskError> {
        let cols = self.column_list();
        let Db::Sqlite(c) = &mut *self.db else {
            unreachable!("batch_sqlite runs on sqlite connections only");
        };
        // Prepared at the first record and reused for every row of the batch:
        // `Source::next` refuses a record whose width differs, so one
        // statement fits them all (no SQL text built or looked up per row).
        let mut stmt: Option<rusqlite::CachedStatement<'_>> = None;
        let mut n = 0u64;
        while n < limit {
            if !self.src.next()? {
                return Ok((n, true));
            }
            if n.is_multiple_of(256) {
                if self.cx.cancel_token().is_cancelled() {
                    return Err(TaskError::new("cancelled"));
                }
                report(&mut self.last_report, self.cx, self.base + n);
            }
            let stmt = match &mut stmt {
                Some(s) => s,
                None => {
                    let sql = insert_sql(self.table, &cols, self.src.rec.len());
                    stmt.insert(c.prepare_cached(&sql).map_err(|e| {
                        TaskError::new(format!(
                            "cannot prepare the insert into {} on {}: {e}",
                            self.table,
                            self.conn.describe()
                        ))
                    })?)
                }
            };
            stmt.execute(rusqlite::params_from_iter(self.src.fields(self.null)))
                .map_err(|e| {
                    TaskError::new(format!(
                        "line {} of {}: {e} (inserting into {} on {})",
                        self.src.line,
                        self.src.path,
                        self.table,
                        self.conn.describe()
                    ))
                })?;
            n += 1;
        }
        Ok((n, false))
    }

    fn batch_pg(&mut self, limit: u64) -> Result<(u64, bool), TaskError> {
        let sql = format!(
            "COPY {}{} FROM STDIN (FORMAT csv)",
            ident(self.table),
            self.column_list()
        );
        let Db::Pg(client, scrub) = &mut *self.db else {
            unreachable!("batch_pg runs on postgres connections only");
        };
        let scrub = scrub.clone();
        let describe = self.conn.describe();
        let mut w = client.copy_in(&sql).map_err(|e| {
            TaskError::new(format!(
                "cannot start COPY into {} on {describe}: {}",
                self.table,
                scrub.clean(&db::pg_message(&e))
            ))
        })?;
        // The file line of each row sent, to name it when the server rejects one.
        let mut lines = RowLines::default();
        let mut buf = Vec::with_capacity(1 << 16);
        let mut n = 0u64;
        let mut eof = false;
        let fail = |lines: &RowLines, msg: String, path: &str| -> TaskError {
            match db::copy_row(&msg).and_then(|r| lines.get(r as u64)) {
                Some(fl) => TaskError::new(format!("line {fl} of {path}: {msg}")),
                None => TaskError::new(format!("{msg} (loading {path})")),
            }
        };
        while n < limit {
            if !self.src.next()? {
                eof = true;
                break;
            }
            if n.is_multiple_of(256) {
                if self.cx.cancel_token().is_cancelled() {
                    return Err(TaskError::new("cancelled"));
                }
                report(&mut self.last_report, self.cx, self.base + n);
            }
            lines.push(self.src.line);
            encode_csv_row(&mut buf, self.src.fields(self.null));
            if buf.len() >= 1 << 16 {
                w.write_all(&buf).map_err(|e| {
                    fail(&lines, scrub.clean(&db::pg_io_message(&e)), &self.src.path)
                })?;
                buf.clear();
            }
            n += 1;
        }
        w.write_all(&buf)
            .map_err(|e| fail(&lines, scrub.clean(&db::pg_io_message(&e)), &self.src.path))?;
        w.finish().map_err(|e| {
            let m = scrub.clean(&db::pg_message(&e));
            fail(
                &lines,
                format!("COPY into {} failed: {m}", self.table),
                &self.src.path,
            )
        })?;
        Ok((n, eof))
    }
}

/// The file line each row of a `COPY` starts on, kept as the rows where the
/// numbering jumps (after a quoted field that spans lines, or a blank line):
/// its size follows those, not the number of rows.
#[derive(Debug, Default)]
struct RowLines {
    /// (row, its line) where the line is not the previous row's plus one.
    jumps: Vec<(u64, u64)>,
    rows: u64,
    next_line: u64,
}

impl RowLines {
    /// Adds the next row, which starts on `line`.
    fn push(&mut self, line: u64) {
        if self.rows == 0 || line != self.next_line {
            self.jumps.push((self.rows, line));
        }
        self.rows += 1;
        self.next_line = line + 1;
    }

    /// The line row `row` (0-based) starts on, if it was added.
    fn get(&self, row: u64) -> Option<u64> {
        if row >= self.rows {
            return None;
        }
        let k = self.jumps.partition_point(|&(r, _)| r <= row);
        let (r, line) = self.jumps[k.checked_sub(1)?];
        Some(line + (row - r))
    }
}

/// A field list as one CSV line for `COPY ... (FORMAT csv)`: every value
/// quoted, NULL as an unquoted empty field.
pub(crate) fn encode_csv_row<'a>(buf: &mut Vec<u8>, fields: impl Iterator<Item = Option<&'a str>>) {
    for (i, f) in fields.enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        if let Some(s) = f {
            buf.push(b'"');
            // Most fields hold no quote: copy them whole rather than byte by byte.
            let mut rest = s.as_bytes();
            while let Some(i) = rest.iter().position(|&b| b == b'"') {
                buf.extend_from_slice(&rest[..=i]);
                buf.push(b'"');
                rest = &rest[i + 1..];
            }
            buf.extend_from_slice(rest);
            buf.push(b'"');
        }
    }
    buf.push(b'\n');
}

/// Reports `done` rows at most once a second. The loaders call it every 256
/// rows, so the clock is not read for every row.
fn report(last: &mut Instant, cx: &dyn RunCx, done: u64) {
    if last.elapsed() >= Duration::from_secs(1) {
        *last = Instant::now();
        cx.progress(done, None, "rows");
    }
}

/// The SQLite `INSERT` of one record of `width` fields (`cols`: the column
/// list, with its leading space, or empty for every column of the table).
fn insert_sql(table: &str, cols: &str, width: usize) -> String {
    let mut marks = "?, ".repeat(width);
    marks.truncate(marks.len().saturating_sub(2));
    format!("INSERT INTO {}{cols} VALUES ({marks})", ident(table))
}

/// A placeholder for parameter `i` (1-based).
fn ph(k: Kind, i: usize) -> String {
    match k {
        Kind::Sqlite => format!("?{i}"),
        Kind::Postgres => format!("${i}"),
    }
}

fn progress_table_sql(k: Kind) -> String {
    match k {
        Kind::Sqlite => format!(
            "CREATE TABLE IF NOT EXISTS {PROGRESS} (task_key TEXT PRIMARY KEY, rows_sha256 TEXT NOT NULL, rows_done INTEGER NOT NULL, done_by TEXT)"
        ),
        Kind::Postgres => format!(
            "CREATE TABLE IF NOT EXISTS {PROGRESS} (task_key TEXT PRIMARY KEY, rows_sha256 TEXT NOT NULL, rows_done BIGINT NOT NULL, done_by TEXT)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_for_copy_quote_every_value_and_leave_nulls_bare() {
        let mut b = Vec::new();
        encode_csv_row(
            &mut b,
            [Some("a"), None, Some(""), Some("x\"y,z")].into_iter(),
        );
        assert_eq!(String::from_utf8(b).unwrap(), "\"a\",,\"\",\"x\"\"y,z\"\n");
        let mut b = Vec::new();
        encode_csv_row(&mut b, [Some("\"\"a\"\nb\""), Some("é\"")].into_iter());
        assert_eq!(
            String::from_utf8(b).unwrap(),
            "\"\"\"\"\"a\"\"\nb\"\"\",\"é\"\"\"\n"
        );
    }

    #[test]
    fn sqlite_insert_has_one_placeholder_per_field() {
        assert_eq!(
            insert_sql("sales", " (id, name)", 2),
            "INSERT INTO sales (id, name) VALUES (?, ?)"
        );
        assert_eq!(
            insert_sql("my table", "", 1),
            "INSERT INTO \"my table\" VALUES (?)"
        );
    }

    #[test]
    fn row_lines_follow_jumps_and_keep_only_them() {
        let mut l = RowLines::default();
        // Rows on lines 2, 3, 4; a row spanning lines 5-7; then 8, 9; a blank line; 11.
        for line in [2, 3, 4, 5, 8, 9, 11] {
            l.push(line);
        }
        let got: Vec<_> = (0..8).map(|r| l.get(r)).collect();
        assert_eq!(
            got,
            [2, 3, 4, 5, 8, 9, 11]
                .map(Some)
                .into_iter()
                .chain([None])
                .collect::<Vec<_>>()
        );
        assert_eq!(l.jumps, [(0, 2), (4, 8), (6, 11)]);

        let mut many = RowLines::default();
        for line in 2..1_000_002 {
            many.push(line);
        }
        assert_eq!(many.jumps.len(), 1, "one entry for a file of one-line rows");
        assert_eq!(many.get(999_999), Some(1_000_001));
        assert_eq!(RowLines::default().get(0), None);
    }

    /// The line each record of `text` is said to start on.
    fn record_lines(text: &str) -> Vec<u64> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.csv");
        std::fs::write(&path, text).unwrap();
        let mut s = Source::with_reader(&path, csv::ReaderBuilder::new(), None).unwrap();
        let mut lines = Vec::new();
        while s.next().unwrap() {
            lines.push(s.line);
        }
        lines
    }

    #[test]
    fn records_are_numbered_by_the_line_they_start_on() {
        assert_eq!(record_lines("id,n\n1,a\n2,b\n"), [1, 2, 3]);
        // Blank lines are skipped, and the next record is on the line after them.
        assert_eq!(record_lines("id,n\n1,a\n\n2,b\n"), [1, 2, 4]);
        assert_eq!(
            record_lines("id,n\n1,a\n\n\n2,b"),
            [1, 2, 5],
            "no final newline"
        );
        assert_eq!(
            record_lines("id,n\r\n1,a\r\n\r\n2,b\r\n"),
            [1, 2, 4],
            "CRLF"
        );
        // A quoted field spanning lines, alone and after a blank line.
        assert_eq!(record_lines("id,n\n1,\"a\nb\"\n2,c\n"), [1, 2, 4]);
        assert_eq!(record_lines("id,n\n\n1,\"a\nb\nc\"\n2,c"), [1, 3, 6]);
        assert_eq!(
            record_lines("id,n\n\n1,\"a\nb\""),
            [1, 3],
            "last, unterminated"
        );
        assert_eq!(
            record_lines("id,n\r\n1,\"a\r\nb\"\r\n\r\n2,c"),
            [1, 2, 5],
            "CRLF, quoted"
        );
        assert_eq!(record_lines("\n\nid,n\n1,a\n"), [3, 4], "blank lines first");
    }
}
