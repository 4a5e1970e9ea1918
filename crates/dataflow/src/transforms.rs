//! The row-by-row transforms: each maps a batch to batches on its outputs
//! (see [`Transform`]): pass-through (multicast, row count), audit, data
//! conversion and lookup.

use crate::runtime::{Emit, FlowError, Transform};
use crate::sources::{CODE_CONVERSION, CODE_NO_MATCH, CODE_TRUNCATION};
use crate::spec::{OnError, error_cols};
use crate::types::{Cols, schema_of, to_array, too_long, unbounded, value_at};
use checkflow_expr::{DataType, Value};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int32Array, StringArray, UInt32Array,
};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use std::collections::HashMap;
use std::sync::Arc;

/// Sends every batch on unchanged, counting its rows (multicast, row count).
pub struct Pass {
    pub rows: u64,
}

impl Transform for Pass {
    fn process(&mut self, batch: RecordBatch, emit: &Emit) -> Result<(), FlowError> {
        self.rows += batch.num_rows() as u64;
        emit.send(0, batch)
    }
}

/// Adds the audit columns, the same value on every row.
pub struct Audit {
    pub name: String,
    pub values: Vec<Value>,
    pub cols: Cols,
    pub schema: SchemaRef,
}

impl Transform for Audit {
    fn process(&mut self, batch: RecordBatch, emit: &Emit) -> Result<(), FlowError> {
        let n = batch.num_rows();
        let mut arrays = batch.columns().to_vec();
        for (v, c) in self.values.iter().zip(&self.cols) {
            arrays.push(
                to_array(&vec![v.clone(); n], &c.ty).map_err(|e| FlowError::of(&self.name, e))?,
            );
        }
        let b = RecordBatch::try_new(self.schema.clone(), arrays)
            .map_err(|e| FlowError::of(&self.name, e))?;
        emit.send(0, b)
    }
}

/// The rows of `batch` where `mask` is true, with the error columns added
/// (for an error or `no_match` output of a transform).
pub(crate) fn error_batch(
    comp: &str,
    batch: &RecordBatch,
    mask: &BooleanArray,
    errors: &[(i32, String, String)],
    schema: &SchemaRef,
) -> Result<RecordBatch, FlowError> {
    let kept = filter_record_batch(batch, mask).map_err(|e| FlowError::of(comp, e))?;
    let mut arrays = kept.columns().to_vec();
    arrays.push(Arc::new(errors.iter().map(|e| e.0).collect::<Int32Array>()));
    arrays.push(Arc::new(
        errors
            .iter()
            .map(|e| Some(e.1.as_str()))
            .collect::<StringArray>(),
    ));
    arrays.push(Arc::new(
        errors
            .iter()
            .map(|e| Some(e.2.as_str()))
            .collect::<StringArray>(),
    ));
    RecordBatch::try_new(schema.clone(), arrays).map_err(|e| FlowError::of(comp, e))
}

/// The error output's schema: the input's columns, then the error columns.
pub fn error_schema(input: &Cols) -> SchemaRef {
    let mut c = input.clone();
    c.extend(error_cols());
    schema_of(&c)
}

/// Converts columns to other SSIS types (SSIS's cast rules), with a
/// disposition for values that do not convert and for those too long.
pub struct DataConversion {
    pub name: String,
    pub input: Cols,
    pub output: Cols,
    pub convert: Vec<(usize, usize, DataType)>,
    pub on_error: OnError,
    pub on_truncation: OnError,
    pub schema: SchemaRef,
    pub err_schema: SchemaRef,
    pub rows: u64,
}

impl Transform for DataConversion {
    fn process(&mut self, batch: RecordBatch, emit: &Emit) -> Result<(), FlowError> {
        let n = batch.num_rows();
        let mut new_cols: Vec<(usize, Vec<Value>)> = Vec::new();
        let mut bad: Vec<Option<(i32, String, String)>> = vec![None; n];
        for (src, dst, ty) in &self.convert {
            let a = batch.column(*src);
            let from = &self.input[*src];
            let mut vals = Vec::with_capacity(n);
            for (r, slot) in bad.iter_mut().enumerate() {
                let v = value_at(a.as_ref(), r, &from.ty);
                let (res, disp) = match v.cast_to(&unbounded(ty)) {
                    Ok(c) => match too_long(&c, ty) {
                        None => (Ok(c), self.on_error),
                        Some(len) => (
                            Err((
                                CODE_TRUNCATION,
                                format!("value \"{}\" is longer than {len} characters ({ty})", v),
                            )),
                            self.on_truncation,
                        ),
                    },
                    Err(e) => (
                        Err((
                            CODE_CONVERSION,
                            format!("cannot convert {} to {ty}: {}", describe(&v), reason(&e)),
                        )),
                        self.on_error,
                    ),
                };
                match res {
                    Ok(c) => vals.push(c),
                    Err((code, desc)) => {
                        vals.push(Value::Null(ty.clone()));
                        match disp {
                            OnError::Ignore => {}
                            OnError::Fail => {
                                return Err(FlowError::of(
                                    &self.name,
                                    format!(
                                        "row {}, column \"{}\": {desc}",
                                        self.rows + r as u64 + 1,
                                        from.name
                                    ),
                                ));
                            }
                            OnError::Redirect => {
                                if slot.is_none() {
                                    *slot = Some((
                                        code,
                                        from.name.clone(),
                                        format!("row {}: {desc}", self.rows + r as u64 + 1),
                                    ));
                                }
                            }
                        }
                    }
                }
            }
            new_cols.push((*dst, vals));
        }
        self.rows += n as u64;
        let mut arrays: Vec<ArrayRef> = batch.columns().to_vec();
        for (dst, vals) in new_cols {
            let a =
                to_array(&vals, &self.output[dst].ty).map_err(|e| FlowError::of(&self.name, e))?;
            if dst < arrays.len() {
                arrays[dst] = a;
            } else {
                arrays.push(a);
            }
        }
        let out = RecordBatch::try_new(self.schema.clone(), arrays)
            .map_err(|e| FlowError::of(&self.name, e))?;
        if bad.iter().all(Option::is_none) {
            return emit.send(0, out);
        }
        let good = BooleanArray::from(bad.iter().map(|b| b.is_none()).collect::<Vec<_>>());
        let errs: Vec<(i32, String, String)> = bad.iter().flatten().cloned().collect();
        let err_mask = BooleanArray::from(bad.iter().map(|b| b.is_some()).collect::<Vec<_>>());
        emit.send(
            0,
            filter_record_batch(&out, &good).map_err(|e| FlowError::of(&self.name, e))?,
        )?;
        emit.send(
            1,
            error_batch(&self.name, &batch, &err_mask, &errs, &self.err_schema)?,
        )
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::WStr(s) | Value::Str(s) => format!("\"{s}\""),
        other => other.to_string(),
    }
}

fn reason(e: &checkflow_expr::ExprError) -> String {
    match e {
        checkflow_expr::ExprError::Conversion { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}

/// The text a key value matches by: equal keys of different integer or
/// string types match (a DT_I4 code and an SQLite integer).
pub fn key_text(v: &Value) -> Option<String> {
    if v.is_null() {
        return None;
    }
    Some(match v {
        Value::WStr(s) | Value::Str(s) => s.clone(),
        Value::Numeric { value, .. } | Value::Decimal { value, .. } => {
            value.normalize().to_string()
        }
        Value::R8(f) if f.fract() == 0.0 && f.abs() < 9e15 => format!("{}", *f as i64),
        other => other.to_string(),
    })
}

/// A full-cache lookup: every reference row is held in a hash map by key,
/// and each input row takes the added columns of its match.
pub struct Lookup {
    pub name: String,
    pub input: Cols,
    /// Input column indexes of the key.
    pub keys: Vec<usize>,
    /// Key column names in the reference (for messages).
    pub ref_keys: Vec<String>,
    pub add: Cols,
    /// Reference key text -> the added values.
    pub map: HashMap<Vec<String>, Vec<Value>>,
    pub no_match: OnError,
    pub schema: SchemaRef,
    pub err_schema: SchemaRef,
    pub rows: u64,
    /// The reference as arrays, built from `map` before the first batch.
    pub frozen: Option<Frozen>,
}

/// A lookup's reference rows, ready for batches: key text -> row, and the
/// added columns as arrays that each batch takes its matches from.
pub struct Frozen {
    /// Keyed by the one key column's text (a lookup on one text column).
    single: HashMap<String, u32>,
    /// Keyed by every key column's text.
    multi: HashMap<Vec<String>, u32>,
    arrays: Vec<ArrayRef>,
}

impl Lookup {
    /// Adds one reference row (its key values and added values); the first
    /// row of a key wins, as SSIS's full cache keeps it.
    pub fn insert(&mut self, key: &[Value], added: Vec<Value>) {
        let k: Option<Vec<String>> = key.iter().map(key_text).collect();
        if let Some(k) = k {
            self.map.entry(k).or_insert(added);
        }
    }
}

impl Lookup {
    /// Turns the reference rows into a [`Frozen`] index and arrays.
    fn freeze(&mut self) -> Result<Frozen, FlowError> {
        let map = std::mem::take(&mut self.map);
        let text_key = self.keys.len() == 1 && self.input[self.keys[0]].ty.is_string();
        let mut single = HashMap::new();
        let mut multi = HashMap::new();
        let mut cols: Vec<Vec<Value>> = vec![Vec::with_capacity(map.len()); self.add.len()];
        for (i, (key, vals)) in map.into_iter().enumerate() {
            for (c, v) in cols.iter_mut().zip(vals) {
                c.push(v);
            }
            let i = u32::try_from(i)
                .map_err(|_| FlowError::of(&self.name, "more than 4 billion reference rows"))?;
            if text_key {
                single.insert(key.into_iter().next().unwrap_or_default(), i);
            } else {
                multi.insert(key, i);
            }
        }
        let arrays = cols
            .iter()
            .zip(&self.add)
            .map(|(v, c)| to_array(v, &c.ty).map_err(|e| FlowError::of(&self.name, e)))
            .collect::<Result<_, _>>()?;
        Ok(Frozen {
            single,
            multi,
            arrays,
        })
    }
}

impl Transform for Lookup {
    fn process(&mut self, batch: RecordBatch, emit: &Emit) -> Result<(), FlowError> {
        if self.frozen.is_none() {
            self.frozen = Some(self.freeze()?);
        }
        let Some(frozen) = self.frozen.as_ref() else {
            return Err(FlowError::of(
                &self.name,
                "the reference rows are not ready",
            ));
        };
        let n = batch.num_rows();
        let mut found: Vec<Option<u32>> = Vec::with_capacity(n);
        if self.keys.len() == 1 && self.input[self.keys[0]].ty.is_string() {
            let col = batch.column(self.keys[0]).as_string::<i32>();
            for r in 0..n {
                found.push(if col.is_valid(r) {
                    frozen.single.get(col.value(r)).copied()
                } else {
                    None
                });
            }
        } else {
            let mut key = Vec::with_capacity(self.keys.len());
            for r in 0..n {
                key.clear();
                let mut null = false;
                for &k in &self.keys {
                    match key_text(&value_at(batch.column(k).as_ref(), r, &self.input[k].ty)) {
                        Some(t) => key.push(t),
                        None => null = true,
                    }
                }
                found.push(if null {
                    None
                } else {
                    frozen.multi.get(&key).copied()
                });
            }
        }
        let mut matched = Vec::with_capacity(n);
        for (r, hit) in found.iter().enumerate() {
            match hit {
                Some(_) => matched.push(true),
                None => {
                    if self.no_match == OnError::Fail {
                        let shown: Vec<String> = self
                            .keys
                            .iter()
                            .map(|&k| {
                                let v = value_at(batch.column(k).as_ref(), r, &self.input[k].ty);
                                format!("\"{}\" = {}", self.input[k].name, describe(&v))
                            })
                            .collect();
                        return Err(FlowError::of(
                            &self.name,
                            format!(
                                "row {}: no reference row matches {} (column \"{}\"; set `no_match: ignore` or `redirect` to let such rows through)",
                                self.rows + r as u64 + 1,
                                shown.join(", "),
                                self.input[self.keys[0]].name
                            ),
                        ));
                    }
                    matched.push(false);
                }
            }
        }
        let first = self.rows;
        self.rows += n as u64;
        let mut arrays = batch.columns().to_vec();
        let idx = UInt32Array::from(found);
        for a in &frozen.arrays {
            arrays.push(take(a.as_ref(), &idx, None).map_err(|e| FlowError::of(&self.name, e))?);
        }
        let out = RecordBatch::try_new(self.schema.clone(), arrays)
            .map_err(|e| FlowError::of(&self.name, e))?;
        if self.no_match != OnError::Redirect || matched.iter().all(|m| *m) {
            return emit.send(0, out);
        }
        let good = BooleanArray::from(matched.clone());
        let bad = BooleanArray::from(matched.iter().map(|m| !m).collect::<Vec<_>>());
        let col = self.input[self.keys[0]].name.clone();
        let errs: Vec<(i32, String, String)> = matched
            .iter()
            .enumerate()
            .filter(|(_, m)| !**m)
            .map(|(r, _)| {
                (
                    CODE_NO_MATCH,
                    col.clone(),
                    format!(
                        "row {}: no reference row matches on {}",
                        first + r as u64 + 1,
                        self.ref_keys.join(", ")
                    ),
                )
            })
            .collect();
        emit.send(
            0,
            filter_record_batch(&out, &good).map_err(|e| FlowError::of(&self.name, e))?,
        )?;
        emit.send(
            1,
            error_batch(&self.name, &batch, &bad, &errs, &self.err_schema)?,
        )
    }
}

/// The columns of a path and one row of values, for the unit tests.
#[cfg(test)]
pub fn batch_of(cols: &Cols, rows: &[Vec<Value>]) -> RecordBatch {
    let arrays: Vec<ArrayRef> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| {
            to_array(
                &rows.iter().map(|r| r[i].clone()).collect::<Vec<_>>(),
                &c.ty,
            )
            .expect("values of the column's type")
        })
        .collect();
    RecordBatch::try_new(schema_of(cols), arrays).expect("a batch of the schema")
}

/// Unused outside tests: the first column as values.
#[cfg(test)]
pub fn column_values(b: &RecordBatch, i: usize, ty: &DataType) -> Vec<Value> {
    (0..b.num_rows())
        .map(|r| value_at(b.column(i).as_ref(), r, ty))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Col;
    use datafusion::arrow::array::Array;

    #[test]
    fn keys_of_different_integer_types_match() {
        assert_eq!(key_text(&Value::I4(7)), key_text(&Value::I8(7)));
        assert_eq!(key_text(&Value::WStr("a".into())), Some("a".into()));
        assert_eq!(key_text(&Value::Null(DataType::I4)), None);
    }

    #[test]
    fn a_col_list_builds_a_batch() {
        let cols = vec![
            Col::new("a", DataType::I4),
            Col::new("b", DataType::WStr { len: None }),
        ];
        let b = batch_of(&cols, &[vec![Value::I4(1), Value::WStr("x".into())]]);
        assert_eq!(column_values(&b, 0, &DataType::I4), vec![Value::I4(1)]);
        assert!(b.column(1).as_any().downcast_ref::<StringArray>().is_some());
        assert_eq!(b.column(0).len(), 1);
    }
}
