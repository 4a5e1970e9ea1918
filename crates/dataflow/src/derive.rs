//! The expression transforms: Derived Column and Conditional Split. Each
//! evaluates its expressions a batch at a time ([`crate::vexpr`]); a row
//! whose expression fails goes where the component's disposition says.

use crate::runtime::{Emit, FlowError, Transform};
use crate::sources::{CODE_CONVERSION, CODE_TRUNCATION};
use crate::spec::{Case, Derived, OnError};
use crate::transforms::error_batch;
use crate::types::{Cols, value_at};
use checkflow_expr::{Env, Value};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use std::sync::Arc;

/// The values of the package's variables when the flow starts: expressions
/// in a flow read them, and a flow's own components cannot change them
/// before it ends (row count and recordset destinations set theirs at the
/// end).
pub struct VarSnapshot {
    pub values: Vec<Value>,
}

impl Env for VarSnapshot {
    fn value(&self, slot: u32) -> Value {
        self.values
            .get(slot as usize)
            .cloned()
            .unwrap_or(Value::Null(checkflow_expr::DataType::I4))
    }
}

/// A failed row: error code, column, description.
type Bad = (i32, String, String);

/// The values of the columns an expression reads, for a message about a row:
/// `quantity = 0, price = 1.50`.
fn row_values(batch: &RecordBatch, input: &Cols, cols: &[(String, u32)], row: usize) -> String {
    let shown: Vec<String> = cols
        .iter()
        .filter_map(|(name, slot)| {
            let c = input.get(*slot as usize)?;
            let v = value_at(batch.column(*slot as usize).as_ref(), row, &c.ty);
            Some(match v {
                Value::WStr(s) | Value::Str(s) => format!("{name} = \"{s}\""),
                v if v.is_null() => format!("{name} = NULL"),
                v => format!("{name} = {v}"),
            })
        })
        .collect();
    if shown.is_empty() {
        String::new()
    } else {
        format!(" ({})", shown.join(", "))
    }
}

/// Sends the rows without errors to output 0 and the others, with their
/// error columns, to output `err_out`.
fn split_bad(
    comp: &str,
    out: RecordBatch,
    input: &RecordBatch,
    bad: &[Option<Bad>],
    err_schema: &SchemaRef,
    err_out: usize,
    emit: &Emit,
) -> Result<(), FlowError> {
    let good = BooleanArray::from(bad.iter().map(Option::is_none).collect::<Vec<_>>());
    let mask = BooleanArray::from(bad.iter().map(Option::is_some).collect::<Vec<_>>());
    let errs: Vec<Bad> = bad.iter().flatten().cloned().collect();
    emit.send(
        0,
        filter_record_batch(&out, &good).map_err(|e| FlowError::of(comp, e))?,
    )?;
    emit.send(err_out, error_batch(comp, input, &mask, &errs, err_schema)?)
}

/// Sets the given rows of an array to NULL.
fn null_rows(a: &ArrayRef, rows: &[usize]) -> Result<ArrayRef, FlowError> {
    if rows.is_empty() {
        return Ok(a.clone());
    }
    let mut keep = vec![true; a.len()];
    for r in rows {
        keep[*r] = false;
    }
    let mask = NullBuffer::from(keep);
    let nulls = NullBuffer::union(a.nulls(), Some(&mask));
    let data = a
        .to_data()
        .into_builder()
        .nulls(nulls)
        .build()
        .map_err(|e| FlowError::Failed(format!("cannot set NULLs: {e}")))?;
    Ok(datafusion::arrow::array::make_array(data))
}

/// Adds or replaces columns with the values of expressions.
pub struct DerivedColumn {
    pub name: String,
    pub input: Cols,
    pub columns: Vec<Derived>,
    pub on_error: OnError,
    pub on_truncation: OnError,
    pub schema: SchemaRef,
    pub err_schema: SchemaRef,
    pub vars: Arc<VarSnapshot>,
    /// Rows seen before this batch (for row numbers in messages).
    pub rows: u64,
}

impl DerivedColumn {
    /// Handles row `row`'s failure in column `col`: fails the flow, or notes
    /// the row for the error output.
    fn fail_row(
        &self,
        bad: &mut Vec<Option<Bad>>,
        n: usize,
        row: usize,
        (disp, code): (OnError, i32),
        col: &str,
        desc: String,
    ) -> Result<(), FlowError> {
        let at = self.rows + row as u64 + 1;
        match disp {
            OnError::Ignore => Ok(()),
            OnError::Fail => Err(FlowError::of(
                &self.name,
                format!("row {at}, column \"{col}\": {desc}"),
            )),
            OnError::Redirect => {
                if bad.is_empty() {
                    bad.resize(n, None);
                }
                if bad[row].is_none() {
                    bad[row] = Some((code, col.to_string(), format!("row {at}: {desc}")));
                }
                Ok(())
            }
        }
    }
}

impl Transform for DerivedColumn {
    fn process(&mut self, batch: RecordBatch, emit: &Emit) -> Result<(), FlowError> {
        let n = batch.num_rows();
        let mut bad: Vec<Option<Bad>> = Vec::new();
        let mut arrays: Vec<ArrayRef> = batch.columns().to_vec();
        for d in &self.columns {
            let res = d
                .expr
                .evaluate(&batch, &*self.vars)
                .map_err(|e| FlowError::of(&self.name, format!("column \"{}\": {e}", d.name)))?;
            for e in &res.errors {
                let shown = row_values(&batch, &self.input, d.expr.compiled().columns(), e.row);
                self.fail_row(
                    &mut bad,
                    n,
                    e.row,
                    (self.on_error, CODE_CONVERSION),
                    &d.name,
                    format!("{}{shown}", e.error),
                )?;
            }
            let mut values = res.values;
            if let Some(max) = d.max_len {
                let mut long = Vec::new();
                let text = values.as_string::<i32>();
                for r in 0..n {
                    if text.is_valid(r) && text.value(r).chars().count() > max as usize {
                        long.push(r);
                    }
                }
                for &r in &long {
                    let v = text.value(r);
                    self.fail_row(
                        &mut bad,
                        n,
                        r,
                        (self.on_truncation, CODE_TRUNCATION),
                        &d.name,
                        format!("value \"{v}\" is longer than {max} characters"),
                    )?;
                }
                values = null_rows(&values, &long)?;
            }
            if d.dst < arrays.len() {
                arrays[d.dst] = values;
            } else {
                arrays.push(values);
            }
        }
        self.rows += n as u64;
        let out = RecordBatch::try_new(self.schema.clone(), arrays)
            .map_err(|e| FlowError::of(&self.name, e))?;
        if bad.iter().all(Option::is_none) {
            return emit.send(0, out);
        }
        split_bad(&self.name, out, &batch, &bad, &self.err_schema, 1, emit)
    }
}

/// Sends each row to the output of the first case whose condition is TRUE,
/// else to the default output.
pub struct ConditionalSplit {
    pub name: String,
    pub input: Cols,
    pub cases: Vec<Case>,
    pub on_error: OnError,
    pub err_schema: SchemaRef,
    pub vars: Arc<VarSnapshot>,
    pub rows: u64,
}

/// A row not yet sent anywhere.
const OPEN: u32 = u32::MAX;
/// A row for the error output.
const ERROR: u32 = u32::MAX - 1;

impl Transform for ConditionalSplit {
    fn process(&mut self, batch: RecordBatch, emit: &Emit) -> Result<(), FlowError> {
        let n = batch.num_rows();
        let mut to = vec![OPEN; n];
        let mut bad: Vec<Option<Bad>> = Vec::new();
        let mut open = n;
        for (k, case) in self.cases.iter().enumerate() {
            if open == 0 {
                break;
            }
            let res = case.expr.evaluate(&batch, &*self.vars).map_err(|e| {
                FlowError::of(&self.name, format!("output \"{}\": {e}", case.output))
            })?;
            let cond = res.values.as_boolean();
            for (r, slot) in to.iter_mut().enumerate() {
                if *slot != OPEN {
                    continue;
                }
                let why = if let Some(e) = res.error_at(r) {
                    e.to_string()
                } else if cond.is_null(r) {
                    format!(
                        "the condition \"{}\" gave NULL, but a split needs TRUE or FALSE (set `on_error: ignore` to treat NULL as FALSE)",
                        case.expr.compiled().source()
                    )
                } else {
                    if cond.value(r) {
                        *slot = k as u32;
                        open -= 1;
                    }
                    continue;
                };
                let at = self.rows + r as u64 + 1;
                let shown = row_values(&batch, &self.input, case.expr.compiled().columns(), r);
                match self.on_error {
                    OnError::Ignore => {}
                    OnError::Fail => {
                        return Err(FlowError::of(
                            &self.name,
                            format!("row {at}, output \"{}\": {why}{shown}", case.output),
                        ));
                    }
                    OnError::Redirect => {
                        if bad.is_empty() {
                            bad.resize(n, None);
                        }
                        bad[r] = Some((
                            CODE_CONVERSION,
                            case.output.clone(),
                            format!("row {at}: {why}{shown}"),
                        ));
                        *slot = ERROR;
                        open -= 1;
                    }
                }
            }
        }
        self.rows += n as u64;
        let default = self.cases.len() as u32;
        for slot in to.iter_mut() {
            if *slot == OPEN {
                *slot = default;
            }
        }
        for out in 0..=default {
            if !emit.has_readers(out as usize) {
                continue;
            }
            if to.iter().all(|t| *t == out) {
                emit.send(out as usize, batch.clone())?;
                continue;
            }
            let mask = BooleanArray::from(to.iter().map(|t| *t == out).collect::<Vec<_>>());
            emit.send(
                out as usize,
                filter_record_batch(&batch, &mask).map_err(|e| FlowError::of(&self.name, e))?,
            )?;
        }
        if bad.iter().any(Option::is_some) {
            let mask = BooleanArray::from(to.iter().map(|t| *t == ERROR).collect::<Vec<_>>());
            let errs: Vec<Bad> = bad.iter().flatten().cloned().collect();
            emit.send(
                default as usize + 1,
                error_batch(&self.name, &batch, &mask, &errs, &self.err_schema)?,
            )?;
        }
        Ok(())
    }
}
