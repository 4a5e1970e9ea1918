//! Sources: a flat file (or a folder of them) read with SSIS's conversions
//! and error dispositions, and Parquet files.

use crate::runtime::{BATCH_ROWS, Cursor, Emit, FlowError};
use crate::spec::{CsvFormat, Files, OnError, error_cols};
use crate::text::Fast;
use crate::types::{Col, Cols, schema_of, to_array, too_long, unbounded};
use crate::vexpr::ValueBuilder;
use checkflow_expr::{DataType, Value};
use datafusion::arrow::array::{ArrayRef, Int32Array, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `ErrorCode` of a value that does not convert to its column's type.
pub const CODE_CONVERSION: i32 = 1;
/// `ErrorCode` of a value longer than its column's declared length.
pub const CODE_TRUNCATION: i32 = 2;
/// `ErrorCode` of a line with the wrong number of fields.
pub const CODE_FIELDS: i32 = 3;
/// `ErrorCode` of a lookup row without a match.
pub const CODE_NO_MATCH: i32 = 4;

/// The files of a source, in name order.
pub fn list_files(files: &Files, dir: &Path) -> Result<Vec<PathBuf>, String> {
    match files {
        Files::One(f) => Ok(vec![checkflow_plan::resolve_path(dir, f)]),
        Files::Folder { folder, pattern } => {
            checkflow_files::list(&checkflow_plan::resolve_path(dir, folder), pattern, false)
                .map_err(|e| e.to_string())
        }
    }
}

/// A flat file source.
pub struct FlatFileSource {
    pub name: String,
    pub files: Vec<PathBuf>,
    pub format: CsvFormat,
    pub null: Option<String>,
    pub skip_rows: u64,
    pub on_error: OnError,
    pub cols: Cols,
}

/// One bad row: the column (if one), the code and the description.
struct RowError {
    column: Option<usize>,
    code: i32,
    desc: String,
}

fn shorten(s: &str) -> String {
    if s.chars().count() > 60 {
        format!("{}...", s.chars().take(60).collect::<String>())
    } else {
        s.to_string()
    }
}

impl FlatFileSource {
    /// Reads every file, sending batches to output 0 (rows) and 1 (errors),
    /// from the cursor's position on.
    pub fn run(
        &self,
        emit: &Emit,
        stopping: &dyn Fn() -> bool,
        cursor: &mut Cursor,
    ) -> Result<(), FlowError> {
        let schema = schema_of(&self.cols);
        let width = self.cols.len();
        let mut rows = Builders::new(&self.cols);
        // Each column's type without its length: a too-long value is read
        // whole, then reported.
        let parse_tys: Vec<DataType> = self.cols.iter().map(|c| unbounded(&c.ty)).collect();
        let mut errs = ErrRows::new(width);
        let mut err_cols: Cols = self
            .cols
            .iter()
            .map(|c| Col::new(c.name.clone(), DataType::WStr { len: None }))
            .collect();
        err_cols.extend(error_cols());
        let err_schema = schema_of(&err_cols);
        let mut row_no: u64 = 0;
        let mut row: Vec<Cell> = Vec::with_capacity(width);
        for path in &self.files {
            let f =
                checkflow_files::open_read(path, checkflow_files::Links::Follow).map_err(|e| {
                    FlowError::of(&self.name, format!("cannot open {}: {e}", path.display()))
                })?;
            let mut rdr = csv::ReaderBuilder::new()
                .delimiter(self.format.delimiter)
                .quote(self.format.quote.unwrap_or(b'"'))
                .quoting(self.format.quote.is_some())
                .has_headers(false)
                .flexible(true)
                .from_reader(std::io::BufReader::with_capacity(1 << 16, f));
            let mut rec = csv::StringRecord::new();
            let mut skip = self.skip_rows + u64::from(self.format.header);
            let shown = path.display().to_string();
            loop {
                let more = rdr.read_record(&mut rec).map_err(|e| {
                    let line = e.position().map_or(0, |p| p.line());
                    FlowError::of(&self.name, format!("line {line} of {shown}: {e}"))
                })?;
                if !more {
                    break;
                }
                if skip > 0 {
                    skip -= 1;
                    continue;
                }
                row_no += 1;
                if row_no.is_multiple_of(1024) && stopping() {
                    return Err(FlowError::Stopped);
                }
                if !cursor.take() {
                    continue;
                }
                let line = rec.position().map_or(0, |p| p.line());
                row.clear();
                let mut err: Option<RowError> = None;
                if rec.len() != width {
                    err = Some(RowError {
                        column: None,
                        code: CODE_FIELDS,
                        desc: format!("the line has {} field(s), expected {width}", rec.len()),
                    });
                } else {
                    for (i, c) in self.cols.iter().enumerate() {
                        let text = &rec[i];
                        if self.null.as_deref() == Some(text)
                            || (text.is_empty() && !c.ty.is_string())
                        {
                            row.push(Cell::Null);
                            continue;
                        }
                        if let Some(f) = crate::text::parse(text, &c.ty)
                            && !(f == Fast::Text && text_too_long(text, &c.ty))
                        {
                            row.push(Cell::Fast(f));
                            continue;
                        }
                        let checked = match Value::parse_as(text, &parse_tys[i]) {
                            Ok(v) => match too_long(&v, &c.ty) {
                                None => Ok(v),
                                Some(n) => Err((
                                    CODE_TRUNCATION,
                                    format!(
                                        "value \"{}\" is longer than {n} characters ({})",
                                        shorten(text),
                                        c.ty
                                    ),
                                )),
                            },
                            Err(e) => Err((
                                CODE_CONVERSION,
                                format!(
                                    "cannot convert \"{}\" to {}: {}",
                                    shorten(text),
                                    c.ty,
                                    reason(&e)
                                ),
                            )),
                        };
                        let v = match checked {
                            Ok(v) => v,
                            Err(_) if self.on_error == OnError::Ignore => Value::Null(c.ty.clone()),
                            Err((code, desc)) => {
                                err = Some(RowError {
                                    column: Some(i),
                                    code,
                                    desc,
                                });
                                break;
                            }
                        };
                        row.push(Cell::Slow(v));
                    }
                }
                match err {
                    None => {
                        rows.push(&row, &rec)
                            .map_err(|e| FlowError::of(&self.name, e))?;
                        if rows.len >= BATCH_ROWS {
                            self.send_rows(&schema, &mut rows, emit)?;
                        }
                    }
                    Some(e) => match self.on_error {
                        OnError::Fail | OnError::Ignore => {
                            let col = e
                                .column
                                .map(|i| format!(", column \"{}\"", self.cols[i].name))
                                .unwrap_or_default();
                            return Err(FlowError::of(
                                &self.name,
                                format!("row {row_no} (line {line} of {shown}){col}: {}", e.desc),
                            ));
                        }
                        OnError::Redirect => {
                            errs.push(
                                (0..width).map(|i| rec.get(i).map(str::to_string)),
                                e.code,
                                e.column
                                    .map(|i| self.cols[i].name.clone())
                                    .unwrap_or_default(),
                                format!("row {row_no} (line {line} of {shown}): {}", e.desc),
                            );
                            if errs.len() >= BATCH_ROWS {
                                emit.send(1, errs.take(&self.name, &err_schema)?)?;
                            }
                        }
                    },
                }
                if cursor.segment_full() {
                    self.send_rows(&schema, &mut rows, emit)?;
                    if !errs.is_empty() {
                        emit.send(1, errs.take(&self.name, &err_schema)?)?;
                    }
                    emit.shared().segment_end(cursor.read)?;
                }
            }
        }
        self.send_rows(&schema, &mut rows, emit)?;
        if !errs.is_empty() {
            emit.send(1, errs.take(&self.name, &err_schema)?)?;
        }
        emit.shared().set_end(cursor.read);
        Ok(())
    }

    fn send_rows(
        &self,
        schema: &SchemaRef,
        rows: &mut Builders,
        emit: &Emit,
    ) -> Result<(), FlowError> {
        if rows.len == 0 {
            return Ok(());
        }
        let b = RecordBatch::try_new(schema.clone(), rows.take())
            .map_err(|e| FlowError::of(&self.name, e))?;
        emit.send(0, b)
    }
}

/// One field of a line, parsed: NULL, on the fast path, or as a value.
enum Cell {
    Null,
    Fast(Fast),
    Slow(Value),
}

/// Whether a text is longer than its column's declared length.
fn text_too_long(t: &str, ty: &DataType) -> bool {
    match ty {
        DataType::WStr { len: Some(n) } | DataType::Str { len: Some(n), .. } => {
            t.len() > *n as usize && t.chars().count() > *n as usize
        }
        _ => false,
    }
}

/// The columns of the batch being built.
struct Builders {
    tys: Vec<DataType>,
    cols: Vec<ValueBuilder>,
    len: usize,
}

impl Builders {
    fn new(cols: &Cols) -> Builders {
        let tys: Vec<DataType> = cols.iter().map(|c| c.ty.clone()).collect();
        Builders {
            cols: tys
                .iter()
                .map(|t| ValueBuilder::new(t, BATCH_ROWS))
                .collect(),
            tys,
            len: 0,
        }
    }

    /// Appends one line's fields (`rec` holds their text).
    fn push(&mut self, row: &[Cell], rec: &csv::StringRecord) -> Result<(), String> {
        for (i, (b, cell)) in self.cols.iter_mut().zip(row).enumerate() {
            match cell {
                Cell::Null => b.push_null(),
                Cell::Fast(f) => b.push_fast(*f, &rec[i]).map_err(|e| e.to_string())?,
                Cell::Slow(v) => b.push(v).map_err(|e| e.to_string())?,
            }
        }
        self.len += 1;
        Ok(())
    }

    /// The arrays built so far; the builders start over.
    fn take(&mut self) -> Vec<ArrayRef> {
        self.len = 0;
        self.cols
            .iter_mut()
            .zip(&self.tys)
            .map(|(b, t)| std::mem::replace(b, ValueBuilder::new(t, BATCH_ROWS)).finish())
            .collect()
    }
}

/// The reason of a conversion error, without the value (already shown).
fn reason(e: &checkflow_expr::ExprError) -> String {
    match e {
        checkflow_expr::ExprError::Conversion { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}

/// Rows for an error output: the input's columns as text, then `ErrorCode`,
/// `ErrorColumn`, `ErrorDescription`.
pub struct ErrRows {
    cols: Vec<Vec<Option<String>>>,
    code: Vec<i32>,
    column: Vec<String>,
    desc: Vec<String>,
}

impl ErrRows {
    pub fn new(width: usize) -> ErrRows {
        ErrRows {
            cols: vec![Vec::new(); width],
            code: Vec::new(),
            column: Vec::new(),
            desc: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.code.len()
    }

    pub fn is_empty(&self) -> bool {
        self.code.is_empty()
    }

    pub fn push(
        &mut self,
        fields: impl Iterator<Item = Option<String>>,
        code: i32,
        column: String,
        desc: String,
    ) {
        for (c, f) in self.cols.iter_mut().zip(fields) {
            c.push(f);
        }
        self.code.push(code);
        self.column.push(column);
        self.desc.push(desc);
    }

    /// The rows as a batch of the error output's schema (all text columns).
    pub fn take(&mut self, comp: &str, schema: &SchemaRef) -> Result<RecordBatch, FlowError> {
        let mut arrays: Vec<ArrayRef> = self
            .cols
            .iter_mut()
            .map(|c| Arc::new(std::mem::take(c).into_iter().collect::<StringArray>()) as ArrayRef)
            .collect();
        arrays.push(Arc::new(Int32Array::from(std::mem::take(&mut self.code))));
        arrays.push(Arc::new(StringArray::from(std::mem::take(
            &mut self.column,
        ))));
        arrays.push(Arc::new(StringArray::from(std::mem::take(&mut self.desc))));
        RecordBatch::try_new(schema.clone(), arrays).map_err(|e| FlowError::of(comp, e))
    }
}

/// Renames a batch's columns to `schema`'s (same types, same order).
pub fn with_schema(
    comp: &str,
    schema: &SchemaRef,
    b: RecordBatch,
) -> Result<RecordBatch, FlowError> {
    RecordBatch::try_new(schema.clone(), b.columns().to_vec()).map_err(|e| FlowError::of(comp, e))
}

/// A query source: the declared columns, found by name in the query's result
/// (exact name first, else ignoring case), each value converted to its
/// column's type. Rows stream from the database a batch at a time.
pub struct SqlSource {
    pub name: String,
    pub conn: checkflow_tasks::db::Connection,
    pub query: String,
    pub params: Vec<Value>,
    pub cols: Cols,
}

impl SqlSource {
    pub fn run(
        &self,
        emit: &Emit,
        stopping: &dyn Fn() -> bool,
        cursor: &mut Cursor,
    ) -> Result<(), FlowError> {
        let mut db = self
            .conn
            .open()
            .map_err(|e| FlowError::of(&self.name, e.message))?;
        let schema = schema_of(&self.cols);
        let mut idx: Option<Vec<usize>> = None;
        let mut values: Vec<Vec<Value>> = vec![Vec::with_capacity(BATCH_ROWS); self.cols.len()];
        let mut row_no: u64 = 0;
        let mut failure: Option<FlowError> = None;
        let mut each =
            |names: &[String],
             row: Option<Vec<checkflow_tasks::db::Cell>>|
             -> Result<bool, String> {
                if stopping() {
                    failure = Some(FlowError::Stopped);
                    return Ok(false);
                }
                let idx = match &idx {
                    Some(i) => i,
                    None => {
                        let mut found = Vec::new();
                        for c in &self.cols {
                            let i = names.iter().position(|n| *n == c.name).or_else(|| {
                                names.iter().position(|n| n.eq_ignore_ascii_case(&c.name))
                            });
                            match i {
                                Some(i) => found.push(i),
                                None => {
                                    failure = Some(FlowError::of(
                                        &self.name,
                                        format!(
                                            "the query has no column \"{}\" (it has {})",
                                            c.name,
                                            names.join(", ")
                                        ),
                                    ));
                                    return Ok(false);
                                }
                            }
                        }
                        idx.insert(found)
                    }
                };
                let Some(row) = row else {
                    return Ok(true);
                };
                row_no += 1;
                if !cursor.take() {
                    return Ok(true);
                }
                for ((c, i), vals) in self.cols.iter().zip(idx.iter()).zip(values.iter_mut()) {
                    let v = row[*i].to_value(&unbounded(&c.ty)).and_then(|v| {
                        match too_long(&v, &c.ty) {
                            None => Ok(v),
                            Some(n) => Err(format!(
                                "value \"{v}\" is longer than {n} characters ({})",
                                c.ty
                            )),
                        }
                    });
                    match v {
                        Ok(v) => vals.push(v),
                        Err(e) => {
                            failure = Some(FlowError::of(
                                &self.name,
                                format!("row {row_no}, column \"{}\": {e}", c.name),
                            ));
                            return Ok(false);
                        }
                    }
                }
                if values[0].len() >= BATCH_ROWS || cursor.segment_full() {
                    let r = self.flush(&schema, &mut values, emit).and_then(|()| {
                        if cursor.segment_full() {
                            emit.shared().segment_end(cursor.read)
                        } else {
                            Ok(())
                        }
                    });
                    if let Err(e) = r {
                        failure = Some(e);
                        return Ok(false);
                    }
                }
                Ok(true)
            };
        let r = db.query_each(&self.query, &self.params, &mut each);
        if let Some(f) = failure {
            return Err(f);
        }
        r.map_err(|e| {
            FlowError::of(
                &self.name,
                format!("query failed on {}: {e}", self.conn.describe()),
            )
        })?;
        self.flush(&schema, &mut values, emit)?;
        emit.shared().set_end(cursor.read);
        Ok(())
    }

    fn flush(
        &self,
        schema: &SchemaRef,
        values: &mut [Vec<Value>],
        emit: &Emit,
    ) -> Result<(), FlowError> {
        if values.first().is_none_or(Vec::is_empty) {
            return Ok(());
        }
        let arrays: Vec<ArrayRef> = values
            .iter_mut()
            .zip(&self.cols)
            .map(|(v, c)| {
                let a = to_array(v, &c.ty).map_err(|e| FlowError::of(&self.name, e));
                v.clear();
                a
            })
            .collect::<Result<_, _>>()?;
        let b = RecordBatch::try_new(schema.clone(), arrays)
            .map_err(|e| FlowError::of(&self.name, e))?;
        emit.send(0, b)
    }
}

/// A Parquet source: the declared columns, by name, cast to their types.
pub struct ParquetSource {
    pub name: String,
    pub files: Vec<PathBuf>,
    pub cols: Cols,
}

impl ParquetSource {
    pub fn run(
        &self,
        emit: &Emit,
        stopping: &dyn Fn() -> bool,
        cursor: &mut Cursor,
    ) -> Result<(), FlowError> {
        use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
        let schema = schema_of(&self.cols);
        for path in &self.files {
            let f =
                checkflow_files::open_read(path, checkflow_files::Links::Follow).map_err(|e| {
                    FlowError::of(&self.name, format!("cannot open {}: {e}", path.display()))
                })?;
            let builder = ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| {
                FlowError::of(&self.name, format!("cannot read {}: {e}", path.display()))
            })?;
            let file_schema = builder.schema().clone();
            let mut idx = Vec::new();
            for c in &self.cols {
                match file_schema.index_of(&c.name) {
                    Ok(i) => idx.push(i),
                    Err(_) => {
                        let have: Vec<&str> = file_schema
                            .fields()
                            .iter()
                            .map(|f| f.name().as_str())
                            .collect();
                        return Err(FlowError::of(
                            &self.name,
                            format!(
                                "{} has no column \"{}\" (it has {})",
                                path.display(),
                                c.name,
                                have.join(", ")
                            ),
                        ));
                    }
                }
            }
            let reader = builder.with_batch_size(BATCH_ROWS).build().map_err(|e| {
                FlowError::of(&self.name, format!("cannot read {}: {e}", path.display()))
            })?;
            for b in reader {
                if stopping() {
                    return Err(FlowError::Stopped);
                }
                let b = b.map_err(|e| {
                    FlowError::of(&self.name, format!("cannot read {}: {e}", path.display()))
                })?;
                let mut arrays = Vec::with_capacity(idx.len());
                for (c, i) in self.cols.iter().zip(&idx) {
                    let want = schema
                        .field_with_name(&c.name)
                        .map(|f| f.data_type().clone())
                        .map_err(|e| FlowError::of(&self.name, e))?;
                    let a = b.column(*i);
                    arrays.push(if a.data_type() == &want {
                        a.clone()
                    } else {
                        cast(a, &want).map_err(|e| {
                            FlowError::of(
                                &self.name,
                                format!(
                                    "column \"{}\" of {} ({}) does not convert to {}: {e}",
                                    c.name,
                                    path.display(),
                                    a.data_type(),
                                    c.ty
                                ),
                            )
                        })?
                    });
                }
                let out = RecordBatch::try_new(schema.clone(), arrays)
                    .map_err(|e| FlowError::of(&self.name, e))?;
                send_from(&out, cursor, emit)?;
            }
        }
        emit.shared().set_end(cursor.read);
        Ok(())
    }
}

/// Sends the rows of `b` after the cursor's skipped records, cut where its
/// segments end (each end waits for its commit).
fn send_from(b: &RecordBatch, cursor: &mut Cursor, emit: &Emit) -> Result<(), FlowError> {
    let n = b.num_rows() as u64;
    let mut off = 0;
    while off < n {
        if cursor.read < cursor.skip {
            let k = (cursor.skip - cursor.read).min(n - off);
            cursor.read += k;
            off += k;
            continue;
        }
        let mut len = n - off;
        if let Some(every) = cursor.every {
            len = len.min(every - (cursor.read - cursor.skip) % every);
        }
        emit.send(0, b.slice(off as usize, len as usize))?;
        cursor.read += len;
        off += len;
        if cursor.segment_full() {
            emit.shared().segment_end(cursor.read)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_rows_make_a_batch() {
        let mut e = ErrRows::new(2);
        e.push(
            [Some("1".to_string()), None].into_iter(),
            1,
            "a".into(),
            "bad".into(),
        );
        let mut cols = vec![
            Col::new("a", DataType::WStr { len: None }),
            Col::new("b", DataType::WStr { len: None }),
        ];
        cols.extend(error_cols());
        let b = e.take("x", &schema_of(&cols)).unwrap();
        assert_eq!(b.num_rows(), 1);
        assert_eq!(b.num_columns(), 5);
        assert_eq!(e.len(), 0);
    }
}
