//! What the vexpr tests share: a flow's columns, variables, batches from row values, and
//! the row-at-a-time reference (`Compiled::eval` with one row's values bound).

#![allow(dead_code)]

mod cases;
mod props;

use crate::vexpr::{BatchResult, FlowColumns, VectorExpr, array_of, value_at};
use checkflow_expr::{DataType, Env, ExprError, Value, VarMap};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::Schema;
use std::sync::Arc;

/// Package variables: `User::N` (DT_I4 3), `User::Z` (DT_I4 0), `User::S` (string "ab c"),
/// `User::D` (datetime 2024-02-29 13:45:10.250), `User::Nothing` (string NULL).
pub fn vars() -> VarMap {
    let mut v = VarMap::new();
    let mut add = |name: &str, ty: DataType, value: Value| {
        v.add(name, ty, false, value);
    };
    add("User::N", DataType::I4, Value::I4(3));
    add("User::Z", DataType::I4, Value::I4(0));
    add(
        "User::S",
        DataType::WStr { len: None },
        Value::WStr("ab c".into()),
    );
    add(
        "User::D",
        DataType::DbTimestamp,
        Value::parse_as("2024-02-29 13:45:10.250", &DataType::DbTimestamp).expect("date"),
    );
    add(
        "User::Nothing",
        DataType::WStr { len: None },
        Value::Null(DataType::WStr { len: None }),
    );
    v
}

/// One row bound for `Compiled::eval`: the variables and the row's column values.
pub struct RowEnv<'a> {
    pub vars: &'a VarMap,
    pub row: Vec<Value>,
}

impl Env for RowEnv<'_> {
    fn value(&self, slot: u32) -> Value {
        self.vars.value(slot)
    }

    fn column(&self, slot: u32) -> Value {
        self.row[slot as usize].clone()
    }
}

/// A batch of the flow's columns from column-major values.
pub fn batch(columns: &FlowColumns, values: &[Vec<Value>]) -> RecordBatch {
    let arrays = columns
        .columns()
        .iter()
        .zip(values)
        .map(|((_, ty), vals)| array_of(vals, ty).expect("values fit their arrays"))
        .collect::<Vec<_>>();
    let schema: Arc<Schema> = Arc::new(columns.schema());
    RecordBatch::try_new(schema, arrays).expect("batch")
}

/// A comparable form of one result: the value's debug form (NULLs of any type alike), or
/// the error.
pub fn shown(r: &Result<Value, ExprError>) -> Result<String, ExprError> {
    match r {
        Ok(Value::Null(_)) => Ok("NULL".to_string()),
        Ok(v) => Ok(format!("{v:?}")),
        Err(e) => Err(e.clone()),
    }
}

/// The vectorised result of row `i`, as `Compiled::eval` would give it.
pub fn vector_row(expr: &VectorExpr, out: &BatchResult, i: usize) -> Result<Value, ExprError> {
    if let Some(e) = out.error_at(i) {
        return Err(e.clone());
    }
    Ok(value_at(out.values.as_ref(), expr.result_type(), i).expect("result array readable"))
}

/// Evaluates `src` over the rows (column-major `values`) both ways and returns, per row,
/// (vectorised, row-at-a-time).
#[allow(clippy::type_complexity)]
pub fn both_ways(
    src: &str,
    columns: &FlowColumns,
    values: &[Vec<Value>],
) -> Result<Vec<(Result<String, ExprError>, Result<String, ExprError>)>, ExprError> {
    let vars = vars();
    let expr = VectorExpr::compile(src, columns, &vars)?;
    let b = batch(columns, values);
    let out = expr.evaluate(&b, &vars).expect("batch evaluates");
    assert_eq!(out.values.len(), b.num_rows(), "{src}");
    assert_eq!(out.values.data_type(), &expr.arrow_type(), "{src}");
    let rows = b.num_rows();
    Ok((0..rows)
        .map(|i| {
            let row = values.iter().map(|c| c[i].clone()).collect();
            let env = RowEnv { vars: &vars, row };
            let want = expr.compiled().eval(&env);
            (shown(&vector_row(&expr, &out, i)), shown(&want))
        })
        .collect())
}
