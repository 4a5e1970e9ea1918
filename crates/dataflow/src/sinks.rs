//! Destinations that write files or variables. Files are written aside (a
//! hidden `.part` file in the target's folder, never through a link) and
//! renamed into place only when the whole flow succeeded.

use crate::runtime::FlowError;
use crate::spec::CsvFormat;
use crate::types::{Cols, text_of, value_at};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

/// A file written aside, waiting for the flow's end.
pub struct PendingFile {
    pub comp: String,
    pub tmp: PathBuf,
    pub target: PathBuf,
    pub file: File,
    pub overwrite: bool,
}

impl PendingFile {
    /// The file a destination finished writing at `tmp`, synced to disk,
    /// waiting to be renamed to `target`.
    fn synced(
        comp: String,
        tmp: PathBuf,
        target: PathBuf,
        overwrite: bool,
        file: Result<File, String>,
    ) -> Result<PendingFile, FlowError> {
        let file = file
            .and_then(|f| f.sync_all().map(|()| f).map_err(|e| e.to_string()))
            .map_err(|e| FlowError::of(&comp, format!("cannot write {}: {e}", tmp.display())))?;
        Ok(PendingFile {
            comp,
            tmp,
            target,
            file,
            overwrite,
        })
    }

    /// Removes the file a destination gave up on before it finished.
    fn abandoned(comp: String, tmp: PathBuf, file: File) {
        PendingFile {
            comp,
            tmp,
            target: PathBuf::new(),
            file,
            overwrite: true,
        }
        .discard();
    }

    /// Renames it into place.
    pub fn commit(self) -> Result<(), String> {
        if !self.overwrite && std::fs::symlink_metadata(&self.target).is_ok() {
            let msg = format!(
                "component \"{}\": {} already exists (set `overwrite: true` to replace it)",
                self.comp,
                self.target.display()
            );
            self.discard();
            return Err(msg);
        }
        if !checkflow_files::same_file(&self.file, &self.tmp) {
            return Err(format!(
                "component \"{}\": {} was replaced while the flow ran",
                self.comp,
                self.tmp.display()
            ));
        }
        std::fs::rename(&self.tmp, &self.target).map_err(|e| {
            format!(
                "component \"{}\": cannot rename {} to {}: {e}",
                self.comp,
                self.tmp.display(),
                self.target.display()
            )
        })
    }

    /// Removes the file written aside.
    pub fn discard(self) {
        if checkflow_files::same_file(&self.file, &self.tmp) {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Opens the aside file for `target`: `.NAME.PID.checkflow-part` in its folder.
fn open_aside(comp: &str, target: &Path, overwrite: bool) -> Result<(PathBuf, File), FlowError> {
    if let Ok(m) = std::fs::symlink_metadata(target) {
        if m.is_dir() {
            return Err(FlowError::of(
                comp,
                format!("{} is a folder", target.display()),
            ));
        }
        if !overwrite {
            return Err(FlowError::of(
                comp,
                format!(
                    "{} already exists (set `overwrite: true` to replace it)",
                    target.display()
                ),
            ));
        }
    }
    let dir = target
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|e| FlowError::of(comp, format!("cannot create folder {}: {e}", dir.display())))?;
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.checkflow-part", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let f = checkflow_files::open(
        OpenOptions::new().write(true).create_new(true),
        &tmp,
        checkflow_files::Links::Refuse,
    )
    .map_err(|e| FlowError::of(comp, format!("cannot create {}: {e}", tmp.display())))?;
    Ok((tmp, f))
}

/// A destination that writes its file aside and leaves the rename to the
/// flow's commit.
pub trait FileSink: Sized {
    /// Writes one batch.
    fn write(&mut self, b: &RecordBatch) -> Result<(), FlowError>;
    /// Ends the file, synced, as a [`PendingFile`].
    fn finish(self) -> Result<PendingFile, FlowError>;
    /// Gives the file up and removes it.
    fn abandon(self);
}

/// A flat file destination.
pub struct CsvSink {
    comp: String,
    cols: Cols,
    tmp: PathBuf,
    target: PathBuf,
    overwrite: bool,
    w: csv::Writer<std::io::BufWriter<File>>,
    rec: Vec<String>,
}

impl CsvSink {
    pub fn open(
        comp: &str,
        target: PathBuf,
        format: &CsvFormat,
        overwrite: bool,
        cols: Cols,
    ) -> Result<CsvSink, FlowError> {
        let (tmp, f) = open_aside(comp, &target, overwrite)?;
        let mut w = csv::WriterBuilder::new()
            .delimiter(format.delimiter)
            .quote(format.quote.unwrap_or(b'"'))
            .quote_style(if format.quote.is_some() {
                csv::QuoteStyle::Necessary
            } else {
                csv::QuoteStyle::Never
            })
            .from_writer(std::io::BufWriter::with_capacity(1 << 16, f));
        if format.header {
            w.write_record(cols.iter().map(|c| c.name.as_str()))
                .map_err(|e| FlowError::of(comp, format!("cannot write {}: {e}", tmp.display())))?;
        }
        Ok(CsvSink {
            comp: comp.to_string(),
            cols,
            tmp,
            target,
            overwrite,
            w,
            rec: Vec::new(),
        })
    }
}

impl FileSink for CsvSink {
    fn write(&mut self, b: &RecordBatch) -> Result<(), FlowError> {
        for r in 0..b.num_rows() {
            self.rec.clear();
            for (i, c) in self.cols.iter().enumerate() {
                let v = value_at(b.column(i).as_ref(), r, &c.ty);
                self.rec.push(if v.is_null() {
                    String::new()
                } else {
                    text_of(&v)
                });
            }
            self.w.write_record(&self.rec).map_err(|e| {
                FlowError::of(
                    &self.comp,
                    format!("cannot write {}: {e}", self.tmp.display()),
                )
            })?;
        }
        Ok(())
    }

    fn finish(self) -> Result<PendingFile, FlowError> {
        let file = self
            .w
            .into_inner()
            .map_err(|e| e.to_string())
            .and_then(|b| b.into_inner().map_err(|e| e.to_string()));
        PendingFile::synced(self.comp, self.tmp, self.target, self.overwrite, file)
    }

    fn abandon(self) {
        if let Ok(b) = self.w.into_inner()
            && let Ok(file) = b.into_inner()
        {
            PendingFile::abandoned(self.comp, self.tmp, file);
        }
    }
}

/// A Parquet destination.
pub struct ParquetSink {
    comp: String,
    tmp: PathBuf,
    target: PathBuf,
    overwrite: bool,
    w: ArrowWriter<File>,
}

impl ParquetSink {
    pub fn open(
        comp: &str,
        target: PathBuf,
        overwrite: bool,
        schema: SchemaRef,
    ) -> Result<ParquetSink, FlowError> {
        let (tmp, f) = open_aside(comp, &target, overwrite)?;
        let w = ArrowWriter::try_new(f, schema, None)
            .map_err(|e| FlowError::of(comp, format!("cannot write {}: {e}", tmp.display())))?;
        Ok(ParquetSink {
            comp: comp.to_string(),
            tmp,
            target,
            overwrite,
            w,
        })
    }
}

impl FileSink for ParquetSink {
    fn write(&mut self, b: &RecordBatch) -> Result<(), FlowError> {
        self.w.write(b).map_err(|e| {
            FlowError::of(
                &self.comp,
                format!("cannot write {}: {e}", self.tmp.display()),
            )
        })
    }

    fn finish(self) -> Result<PendingFile, FlowError> {
        let file = self.w.into_inner().map_err(|e| e.to_string());
        PendingFile::synced(self.comp, self.tmp, self.target, self.overwrite, file)
    }

    fn abandon(self) {
        if let Ok(file) = self.w.into_inner() {
            PendingFile::abandoned(self.comp, self.tmp, file);
        }
    }
}

/// A recordset destination: every row, as `foreach rows:` reads an object
/// variable (`{"columns": [...], "rows": [[...], ...]}`).
pub struct Recordset {
    pub cols: Cols,
    pub rows: Vec<serde_json::Value>,
}

impl Recordset {
    pub fn write(&mut self, b: &RecordBatch) {
        for r in 0..b.num_rows() {
            let row: Vec<serde_json::Value> = self
                .cols
                .iter()
                .enumerate()
                .map(|(i, c)| value_at(b.column(i).as_ref(), r, &c.ty).to_json())
                .collect();
            self.rows.push(serde_json::Value::Array(row));
        }
    }

    pub fn finish(self) -> serde_json::Value {
        serde_json::json!({
            "columns": self.cols.iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
            "rows": self.rows,
        })
    }
}
