//! `vexpr`: SSIS expressions over Arrow record batches, a batch at a time, for the Derived
//! Column and Conditional Split components.
//!
//! # Compiling
//!
//! An expression is parsed and type-checked by `checkflow-expr`, as everywhere else, with a
//! [`FlowScope`]: variables (`@[User::X]`, `@X`) resolve through the package's scope as
//! usual, and any other identifier is a column of the flow (`amount`, `[Unit Price]`;
//! exact name first, then a unique case-insensitive match). A column has the SSIS type the
//! flow declares for it ([`FlowColumns`]); in a batch it is an array of [`arrow_type`] of
//! that type (the mapping table is on that function). A column's slot is its index in
//! [`FlowColumns`] and in the batch.
//!
//! The typed tree is then walked once per batch, not once per row: every node turns the
//! arrays (or scalars) of its operands into the array of its own type. Constants and
//! variables stay scalars, broadcast over the batch; a sub-expression of scalars only is
//! computed once per batch (so `GETDATE()` gives one instant per batch).
//!
//! # Rules the evaluator keeps (the same as `Compiled::eval`, row by row)
//!
//! - Every row's value, or error, is what `Compiled::eval` gives for that row's values:
//!   the property test in `tests/props.rs` checks it for random batches and
//!   expressions.
//! - A row whose evaluation fails (overflow, a zero divisor, a bad cast or argument) is
//!   reported with its index and the message `Compiled::eval` would give, and is NULL in
//!   the result array; the other rows are unaffected. The component decides what a failed
//!   row means (fail, ignore, redirect). Operands are evaluated left to right as row by
//!   row, so a row reports its first error; once a row has failed nothing else is computed
//!   for it.
//! - `c ? a : b` evaluates `a` only on the rows where `c` is TRUE and `b` only where it is
//!   FALSE (an error in the branch not taken does not count); a NULL condition gives NULL.
//!   `&&` and `||` evaluate both sides, with three-valued logic.
//! - NULL propagates through operators and functions, except in ISNULL, REPLACENULL,
//!   TOKENCOUNT, `&&`/`||` and `? :`.
//!
//! # Kernels
//!
//! Native Arrow kernels (`datafusion::arrow::compute`) are used only where their result is
//! exactly SSIS's:
//! - comparisons of integers (both sides widened to Int64 or UInt64 first), of strings
//!   (Arrow compares UTF-8 bytes, which is the ordinal, case-sensitive order SSIS uses), of
//!   booleans (`==`, `!=`) and of binary values;
//! - `&&`, `||` (Kleene logic is SSIS's three-valued logic), `!`;
//! - `&`, `|`, `^`, `~` on integers (after widening to the result type, where they cannot
//!   overflow);
//! - lossless casts: integer widening, integers and DT_R4 to DT_R8;
//! - ISNULL (`is_null`), the choice of `? :` and REPLACENULL (`zip`, `nullif`).
//!
//! Own kernels, one loop over the arrays, where Arrow's semantics differ:
//! - integer `+ - * / %` in the result type with a per-row overflow and zero-divisor check
//!   (Arrow's checked kernels fail the whole batch); division truncates toward zero and
//!   `%` takes the dividend's sign;
//! - real arithmetic in f64 (DT_R4 results rounded to f32), a zero divisor and a
//!   non-finite result being row errors; real comparisons with IEEE semantics (NaN is
//!   unordered, `-0 == 0`; Arrow orders floats totally);
//! - unary minus on integers (checked) and reals;
//! - string `+` (with the 1,048,576-character limit), casts between string lengths
//!   (truncation to DT_WSTR(n) counts characters, not bytes);
//! - 1-based, character-counting string functions: LEN, LEFT, RIGHT, SUBSTRING, UPPER,
//!   LOWER, TRIM, LTRIM, RTRIM (spaces only), REVERSE, CODEPOINT — written straight into
//!   the output buffers, without a string per row;
//! - date and time comparisons of DT_DBTIMESTAMP, DT_DATE and DT_DBDATE (by the instant);
//!   YEAR, MONTH, DAY and DATEPART with a constant part name over those types.
//!
//! Everything else — decimal and currency arithmetic and comparisons, the other casts,
//! the remaining functions (REPLACE, REPLICATE, TOKEN, TOKENCOUNT, FINDSTRING, HEX, the
//! math functions, DATEADD, DATEDIFF, DATEPART with a computed part name), the other
//! comparison domains (GUID, text, offsets and times) — runs as a per-column loop that
//! calls the scalar implementation `checkflow_expr::scalar` of that one operation on each
//! row's operand values. That is still a batch at a time: the tree is not walked per row.
//! Numbers, dates and booleans become `Value`s without allocating; strings and binary
//! values are copied into a `Value` per row on that path.
//!
//! DT_DBTIMESTAMP2(7) values live in nanosecond timestamps, which reach only the years 1678
//! to 2261; a value outside them cannot be stored (an error for the batch).

mod convert;
mod eval;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;

use checkflow_expr::{
    ColumnInfo, Compiled, DataType as Ssis, Env, ExprError, Scope, VarInfo, VarRef,
};
use datafusion::arrow::array::{Array, ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::error::ArrowError;

pub use convert::{
    OFFSET_MINUTES_FIELD, OFFSET_UTC_FIELD, ValueBuilder, array_of, arrow_type, value_at, values_of,
};

/// A failure of a whole batch (as opposed to one row's [`RowError`]): the batch does not
/// have the columns the expression was compiled for, or an Arrow operation failed.
#[derive(Debug)]
pub enum VexprError {
    /// The batch's columns do not match the flow's.
    Schema(String),
    /// An Arrow kernel failed.
    Arrow(ArrowError),
    /// A value or array the evaluator did not expect (a bug, reported rather than a panic).
    Internal(String),
}

impl fmt::Display for VexprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VexprError::Schema(m) => {
                write!(f, "batch does not match the expression's columns: {m}")
            }
            VexprError::Arrow(e) => write!(f, "arrow: {e}"),
            VexprError::Internal(m) => write!(f, "internal error in the vectorised evaluator: {m}"),
        }
    }
}

impl std::error::Error for VexprError {}

impl From<ArrowError> for VexprError {
    fn from(e: ArrowError) -> VexprError {
        VexprError::Arrow(e)
    }
}

/// One row whose evaluation failed, and why (the message `Compiled::eval` gives).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowError {
    /// The row's index in the batch.
    pub row: usize,
    pub error: ExprError,
}

/// The result of evaluating an expression over a batch.
#[derive(Clone, Debug)]
pub struct BatchResult {
    /// One value a row, of `arrow_type(result_type)`; NULL where the row failed.
    pub values: ArrayRef,
    /// The rows that failed, in row order.
    pub errors: Vec<RowError>,
}

impl BatchResult {
    /// The error of row `row`, if it failed.
    pub fn error_at(&self, row: usize) -> Option<&ExprError> {
        self.errors
            .binary_search_by_key(&row, |e| e.row)
            .ok()
            .map(|i| &self.errors[i].error)
    }
}

/// The columns of a flow, in batch order, with their SSIS types.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlowColumns {
    columns: Vec<(String, Ssis)>,
}

impl FlowColumns {
    /// Columns in batch order.
    pub fn new<S: Into<String>>(columns: impl IntoIterator<Item = (S, Ssis)>) -> FlowColumns {
        FlowColumns {
            columns: columns.into_iter().map(|(n, t)| (n.into(), t)).collect(),
        }
    }

    /// The columns, in batch order.
    pub fn columns(&self) -> &[(String, Ssis)] {
        &self.columns
    }

    /// The slot of the column called `name`: the exact name, else the only column whose
    /// name matches ignoring case.
    pub fn slot(&self, name: &str) -> Option<usize> {
        if let Some(i) = self.columns.iter().position(|(n, _)| n == name) {
            return Some(i);
        }
        let mut found = self
            .columns
            .iter()
            .enumerate()
            .filter(|(_, (n, _))| n.eq_ignore_ascii_case(name));
        match (found.next(), found.next()) {
            (Some((i, _)), None) => Some(i),
            _ => None,
        }
    }

    /// The Arrow schema of the flow's batches (every column nullable).
    pub fn schema(&self) -> Schema {
        Schema::new(
            self.columns
                .iter()
                .map(|(n, t)| Field::new(n, arrow_type(t), true))
                .collect::<Vec<_>>(),
        )
    }
}

/// The scope an expression in a flow compiles against: the package's variables and the
/// flow's columns.
pub struct FlowScope<'a> {
    pub columns: &'a FlowColumns,
    pub variables: &'a dyn Scope,
}

impl Scope for FlowScope<'_> {
    fn lookup(&self, var: &VarRef) -> Option<VarInfo> {
        self.variables.lookup(var)
    }

    fn column(&self, name: &str) -> Option<ColumnInfo> {
        let slot = self.columns.slot(name)?;
        Some(ColumnInfo {
            slot: u32::try_from(slot).ok()?,
            ty: self.columns.columns[slot].1.clone(),
        })
    }
}

/// An expression compiled for a flow, evaluated a batch at a time.
#[derive(Clone, Debug)]
pub struct VectorExpr {
    compiled: Compiled,
    /// The SSIS type of each column slot the expression may read.
    column_types: Arc<[Ssis]>,
}

impl VectorExpr {
    /// Parses and type-checks `src` against the flow's columns and the package's variables.
    pub fn compile(
        src: &str,
        columns: &FlowColumns,
        variables: &dyn Scope,
    ) -> Result<VectorExpr, ExprError> {
        let scope = FlowScope { columns, variables };
        let compiled = checkflow_expr::compile(src, &scope, false)?;
        Ok(VectorExpr {
            compiled,
            column_types: columns.columns.iter().map(|(_, t)| t.clone()).collect(),
        })
    }

    /// The expression as compiled (for `Compiled::eval`, its source and variables).
    pub fn compiled(&self) -> &Compiled {
        &self.compiled
    }

    /// The SSIS type of the result.
    pub fn result_type(&self) -> &Ssis {
        self.compiled.result_type()
    }

    /// The Arrow type of the result array.
    pub fn arrow_type(&self) -> DataType {
        arrow_type(self.compiled.result_type())
    }

    /// Evaluates the expression over every row of `batch`, whose columns are the flow's
    /// (in [`FlowColumns`] order, of their [`arrow_type`]s); `variables` gives the values
    /// of the variables the expression reads.
    pub fn evaluate(
        &self,
        batch: &RecordBatch,
        variables: &dyn Env,
    ) -> Result<BatchResult, VexprError> {
        for (name, slot) in self.compiled.columns() {
            let slot = *slot as usize;
            let ty = self.column_types.get(slot).ok_or_else(|| {
                VexprError::Schema(format!("column {name} has no slot {slot} in the flow"))
            })?;
            let col = batch.columns().get(slot).ok_or_else(|| {
                VexprError::Schema(format!(
                    "column {name} is column {slot} of the flow, but the batch has {} columns",
                    batch.num_columns()
                ))
            })?;
            let want = arrow_type(ty);
            if col.data_type() != &want {
                return Err(VexprError::Schema(format!(
                    "column {name} ({ty}) should be Arrow {want}, the batch has {}",
                    col.data_type()
                )));
            }
        }
        eval::evaluate(&self.compiled, batch, variables)
    }
}
