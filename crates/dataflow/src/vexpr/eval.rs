//! The batch evaluator: one walk of the typed tree per batch; each node turns its operands'
//! arrays (or scalars) into its own array. See the module documentation for the rules.

use std::fmt::{Display, Write as _};
use std::sync::Arc;

use checkflow_expr::ast::BinaryOp;
use checkflow_expr::dates::{self, DatePart};
use checkflow_expr::functions::Func;
use checkflow_expr::rust_decimal::Decimal;
use checkflow_expr::rust_decimal::prelude::ToPrimitive;
use checkflow_expr::typed::{Domain, TExpr, TKind};
use checkflow_expr::value::MAX_STRING_CHARS;
use checkflow_expr::{Compiled, DataType as Ssis, Env, ExprError, Value, scalar};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Datum, Int32Builder, PrimitiveArray, PrimitiveBuilder,
    RecordBatch, Scalar, StringArray, StringBuilder, UInt16Builder, new_null_array,
};
use datafusion::arrow::compute::kernels::bitwise::{
    bitwise_and, bitwise_not, bitwise_or, bitwise_xor,
};
use datafusion::arrow::compute::kernels::cmp;
use datafusion::arrow::compute::kernels::zip::zip;
use datafusion::arrow::compute::{and_kleene, cast, is_not_null, is_null, not, nullif, or_kleene};
use datafusion::arrow::datatypes::{
    ArrowNativeTypeOp, ArrowPrimitiveType, DataType, Float64Type, Int8Type, Int16Type, Int32Type,
    Int64Type, TimeUnit, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};

use super::convert::{ValueBuilder, array_of, arrow_type, repeat, units_to_datetime, value_at};
use super::{BatchResult, RowError, VexprError};

/// A node's result: one value for every row, or an array.
#[derive(Clone, Debug)]
pub(super) enum Col {
    Scalar(Value),
    Array(ArrayRef),
}

impl Col {
    fn is_scalar(&self) -> bool {
        matches!(self, Col::Scalar(_))
    }

    fn value(&self, i: usize, ty: &Ssis) -> Result<Value, VexprError> {
        match self {
            Col::Scalar(v) => Ok(v.clone()),
            Col::Array(a) => value_at(a.as_ref(), ty, i),
        }
    }

    fn into_array(self, ty: &Ssis, rows: usize) -> Result<ArrayRef, VexprError> {
        match self {
            Col::Array(a) => Ok(a),
            Col::Scalar(Value::Null(_)) => Ok(new_null_array(&arrow_type(ty), rows)),
            Col::Scalar(v) => repeat(&v, ty, rows),
        }
    }

    /// The column as an Arrow datum: an array, or a one-value `Scalar`.
    fn datum(&self, ty: &Ssis, rows: usize) -> Result<Box<dyn Datum>, VexprError> {
        Ok(match self {
            Col::Array(a) => {
                debug_assert_eq!(a.len(), rows);
                Box::new(a.clone())
            }
            Col::Scalar(v) => Box::new(Scalar::new(array_of(std::slice::from_ref(v), ty)?)),
        })
    }
}

fn eval_error(message: String) -> ExprError {
    ExprError::Eval {
        message,
        snippet: None,
    }
}

/// A primitive operand: one value for all rows, or an array.
enum Prim<T: ArrowPrimitiveType> {
    Scalar(Option<T::Native>),
    Array(PrimitiveArray<T>),
}

impl<T: ArrowPrimitiveType> Prim<T> {
    #[inline]
    fn get(&self, i: usize) -> Option<T::Native> {
        match self {
            Prim::Scalar(v) => *v,
            Prim::Array(a) => a.is_valid(i).then(|| a.value(i)),
        }
    }
}

/// A string operand.
enum Str {
    Scalar(Option<String>),
    Array(StringArray),
}

impl Str {
    #[inline]
    fn get(&self, i: usize) -> Option<&str> {
        match self {
            Str::Scalar(v) => v.as_deref(),
            Str::Array(a) => a.is_valid(i).then(|| a.value(i)),
        }
    }
}

fn internal(what: impl Display) -> VexprError {
    VexprError::Internal(what.to_string())
}

/// Reads `col` (of SSIS type `ty`) as Arrow primitive type `T`, casting an array to `T`
/// with Arrow's cast (only used for lossless widenings).
fn prim<T: ArrowPrimitiveType>(col: &Col, ty: &Ssis) -> Result<Prim<T>, VexprError> {
    let arr = match col {
        Col::Scalar(Value::Null(_)) => return Ok(Prim::Scalar(None)),
        Col::Scalar(v) => array_of(std::slice::from_ref(v), ty)?,
        Col::Array(a) => a.clone(),
    };
    let arr = if arr.data_type() == &T::DATA_TYPE {
        arr
    } else {
        cast(&arr, &T::DATA_TYPE)?
    };
    let p = arr
        .as_primitive_opt::<T>()
        .ok_or_else(|| internal(format!("expected {} for {ty}", T::DATA_TYPE)))?
        .clone();
    Ok(match col {
        Col::Scalar(_) => Prim::Scalar(p.is_valid(0).then(|| p.value(0))),
        Col::Array(_) => Prim::Array(p),
    })
}

fn string(col: &Col) -> Result<Str, VexprError> {
    Ok(match col {
        Col::Scalar(Value::WStr(s) | Value::Str(s)) => Str::Scalar(Some(s.clone())),
        Col::Scalar(Value::Null(_)) => Str::Scalar(None),
        Col::Scalar(v) => return Err(internal(format!("a string was expected, not {v:?}"))),
        Col::Array(a) => Str::Array(
            a.as_string_opt::<i32>()
                .ok_or_else(|| internal("a Utf8 array was expected"))?
                .clone(),
        ),
    })
}

/// The value of a number as f64, as the row evaluator converts it for real arithmetic.
fn value_f64(v: &Value) -> Option<f64> {
    Some(match v {
        Value::I1(x) => f64::from(*x),
        Value::I2(x) => f64::from(*x),
        Value::I4(x) => f64::from(*x),
        Value::I8(x) => *x as f64,
        Value::UI1(x) => f64::from(*x),
        Value::UI2(x) => f64::from(*x),
        Value::UI4(x) => f64::from(*x),
        Value::UI8(x) => *x as f64,
        Value::R4(x) => f64::from(*x),
        Value::R8(x) => *x,
        Value::Numeric { value, .. } | Value::Decimal { value, .. } => {
            value.to_f64().unwrap_or(f64::NAN)
        }
        Value::Cy(units) => Decimal::new(*units, 4).to_f64().unwrap_or(f64::NAN),
        _ => return None,
    })
}

/// An integer value as i128.
fn value_int(v: &Value) -> Option<i128> {
    Some(match v {
        Value::I1(x) => i128::from(*x),
        Value::I2(x) => i128::from(*x),
        Value::I4(x) => i128::from(*x),
        Value::I8(x) => i128::from(*x),
        Value::UI1(x) => i128::from(*x),
        Value::UI2(x) => i128::from(*x),
        Value::UI4(x) => i128::from(*x),
        Value::UI8(x) => i128::from(*x),
        _ => return None,
    })
}

/// Whether every value of integer type `from` is a value of integer type `to`.
fn int_widens(from: &Ssis, to: &Ssis) -> bool {
    let w = |t: &Ssis| match t {
        Ssis::I1 | Ssis::UI1 => 1,
        Ssis::I2 | Ssis::UI2 => 2,
        Ssis::I4 | Ssis::UI4 => 4,
        _ => 8,
    };
    match (from.is_signed_integer(), to.is_signed_integer()) {
        (true, true) | (false, false) => w(to) >= w(from),
        (false, true) => w(to) > w(from),
        (true, false) => false,
    }
}

/// Runs `$body` with `$T` the Arrow primitive type of integer SSIS type `$ty`.
macro_rules! with_int {
    ($ty:expr, $T:ident => $body:expr, else $other:expr) => {
        match $ty {
            Ssis::I1 => {
                type $T = Int8Type;
                $body
            }
            Ssis::I2 => {
                type $T = Int16Type;
                $body
            }
            Ssis::I4 => {
                type $T = Int32Type;
                $body
            }
            Ssis::I8 => {
                type $T = Int64Type;
                $body
            }
            Ssis::UI1 => {
                type $T = UInt8Type;
                $body
            }
            Ssis::UI2 => {
                type $T = UInt16Type;
                $body
            }
            Ssis::UI4 => {
                type $T = UInt32Type;
                $body
            }
            Ssis::UI8 => {
                type $T = UInt64Type;
                $body
            }
            _ => $other,
        }
    };
}

struct Ctx<'a> {
    batch: &'a RecordBatch,
    env: &'a dyn Env,
    rows: usize,
    /// Rows whose evaluation has failed.
    failed: Vec<bool>,
    errors: Vec<RowError>,
    /// The rows the current branch of a `? :` evaluates (`None`: all rows).
    select: Option<Arc<Vec<bool>>>,
}

pub(super) fn evaluate(
    compiled: &Compiled,
    batch: &RecordBatch,
    env: &dyn Env,
) -> Result<BatchResult, VexprError> {
    let rows = batch.num_rows();
    let mut cx = Ctx {
        batch,
        env,
        rows,
        failed: vec![false; rows],
        errors: Vec::new(),
        select: None,
    };
    let root = compiled.tree();
    let col = cx.eval(root)?;
    let ty = compiled.result_type();
    let mut values = col.into_array(ty, rows)?;
    if values.data_type() != &arrow_type(ty) {
        return Err(internal(format!(
            "the result is Arrow {}, not {} for {ty}",
            values.data_type(),
            arrow_type(ty)
        )));
    }
    let mut errors = cx.errors;
    if !errors.is_empty() {
        values = nullif(&values, &BooleanArray::from(cx.failed))?;
        errors.sort_by_key(|e| e.row);
    }
    Ok(BatchResult { values, errors })
}

impl Ctx<'_> {
    #[inline]
    fn live(&self, i: usize) -> bool {
        !self.failed[i] && self.select.as_ref().is_none_or(|s| s[i])
    }

    /// Records `error` for row `i` if the row is being evaluated and has not failed yet.
    fn fail(&mut self, i: usize, error: ExprError) {
        if self.live(i) {
            self.failed[i] = true;
            self.errors.push(RowError { row: i, error });
        }
    }

    /// Records `error` for every row being evaluated.
    fn fail_all(&mut self, error: &ExprError) {
        for i in 0..self.rows {
            self.fail(i, error.clone());
        }
    }

    /// A scalar result: the value, or the error for every row being evaluated.
    fn scalar_result(&mut self, r: Result<Value, ExprError>, ty: &Ssis) -> Col {
        match r {
            Ok(v) => Col::Scalar(v),
            Err(e) => {
                self.fail_all(&e);
                Col::Scalar(Value::Null(ty.clone()))
            }
        }
    }

    fn eval(&mut self, e: &TExpr) -> Result<Col, VexprError> {
        match &e.kind {
            TKind::Const(v) => Ok(Col::Scalar(v.clone())),
            TKind::Var(slot) => {
                let v = self.env.value(*slot);
                Ok(self.scalar_result(scalar::coerce_input(v, &e.ty), &e.ty))
            }
            TKind::Column(slot) => self
                .batch
                .columns()
                .get(*slot as usize)
                .cloned()
                .map(Col::Array)
                .ok_or_else(|| VexprError::Schema(format!("no column in slot {slot}"))),
            TKind::Cond(c, a, b) => self.cond(e, c, a, b),
            TKind::Convert(a) | TKind::Neg(a) | TKind::Not(a) | TKind::BitNot(a) => {
                let x = self.eval(a)?;
                if x.is_scalar() {
                    return self.all_scalar(e, vec![x]);
                }
                self.unary(e, a, x)
            }
            TKind::Arith(_, a, b)
            | TKind::Concat(a, b)
            | TKind::Compare(_, _, a, b)
            | TKind::Logic(_, a, b)
            | TKind::Bitwise(_, a, b) => {
                let x = self.eval(a)?;
                let y = self.eval(b)?;
                if x.is_scalar() && y.is_scalar() {
                    return self.all_scalar(e, vec![x, y]);
                }
                self.binary(e, a, b, x, y)
            }
            TKind::Call(f, args) => {
                let mut cols = Vec::with_capacity(args.len());
                for a in args {
                    cols.push(self.eval(a)?);
                }
                if cols.iter().all(Col::is_scalar) {
                    return self.all_scalar(e, cols);
                }
                self.call(e, *f, args, cols)
            }
        }
    }

    /// A node whose operands are all scalars: computed once.
    fn all_scalar(&mut self, e: &TExpr, cols: Vec<Col>) -> Result<Col, VexprError> {
        let mut vals = Vec::with_capacity(cols.len());
        for c in cols {
            match c {
                Col::Scalar(v) => vals.push(v),
                Col::Array(_) => return Err(internal("an array among scalar operands")),
            }
        }
        Ok(self.scalar_result(scalar::apply(e, vals), &e.ty))
    }

    /// The per-column loop: the scalar implementation of `e` on each row's operand values.
    fn per_row(&mut self, e: &TExpr, kids: &[&TExpr], cols: &[Col]) -> Result<Col, VexprError> {
        let mut b = ValueBuilder::new(&e.ty, self.rows);
        for i in 0..self.rows {
            if !self.live(i) {
                b.push_null();
                continue;
            }
            let mut vals = Vec::with_capacity(cols.len());
            for (c, k) in cols.iter().zip(kids) {
                vals.push(c.value(i, &k.ty)?);
            }
            match scalar::apply(e, vals) {
                Ok(v) => b.push(&v)?,
                Err(err) => {
                    self.fail(i, err);
                    b.push_null();
                }
            }
        }
        Ok(Col::Array(b.finish()))
    }

    /// A per-row loop of a one-operand function `f` (no argument vector per row).
    fn per_row1(
        &mut self,
        ty: &Ssis,
        from: &Ssis,
        x: &Col,
        f: impl Fn(Value) -> Result<Value, ExprError>,
    ) -> Result<Col, VexprError> {
        let mut b = ValueBuilder::new(ty, self.rows);
        for i in 0..self.rows {
            if !self.live(i) {
                b.push_null();
                continue;
            }
            match f(x.value(i, from)?) {
                Ok(v) => b.push(&v)?,
                Err(err) => {
                    self.fail(i, err);
                    b.push_null();
                }
            }
        }
        Ok(Col::Array(b.finish()))
    }

    /// A per-row loop of a two-operand function `f`.
    fn per_row2(
        &mut self,
        e: &TExpr,
        (a, x): (&TExpr, &Col),
        (b, y): (&TExpr, &Col),
        f: impl Fn(&Value, &Value) -> Result<Value, ExprError>,
    ) -> Result<Col, VexprError> {
        let mut out = ValueBuilder::new(&e.ty, self.rows);
        for i in 0..self.rows {
            if !self.live(i) {
                out.push_null();
                continue;
            }
            match f(&x.value(i, &a.ty)?, &y.value(i, &b.ty)?) {
                Ok(v) => out.push(&v)?,
                Err(err) => {
                    self.fail(i, err);
                    out.push_null();
                }
            }
        }
        Ok(Col::Array(out.finish()))
    }

    // ----- `? :` -----

    fn cond(&mut self, e: &TExpr, c: &TExpr, a: &TExpr, b: &TExpr) -> Result<Col, VexprError> {
        let cv = self.eval(c)?;
        let carr = match cv {
            Col::Scalar(Value::Bool(true)) => return self.eval(a),
            Col::Scalar(Value::Bool(false)) => return self.eval(b),
            Col::Scalar(_) => return Ok(Col::Scalar(Value::Null(e.ty.clone()))),
            Col::Array(arr) => arr,
        };
        let carr = carr
            .as_boolean_opt()
            .ok_or_else(|| internal("a condition that is not boolean"))?
            .clone();
        let outer = self.select.clone();
        let pick = |want: bool| -> Arc<Vec<bool>> {
            Arc::new(
                (0..carr.len())
                    .map(|i| {
                        carr.is_valid(i)
                            && carr.value(i) == want
                            && outer.as_ref().is_none_or(|s| s[i])
                    })
                    .collect(),
            )
        };
        let (sel_a, sel_b) = (pick(true), pick(false));
        let va = self.branch(a, sel_a)?;
        let vb = self.branch(b, sel_b)?;
        self.select = outer;
        // Rows whose condition is TRUE take `a`; the others `b`; a NULL condition gives NULL.
        let mask = BooleanArray::from(
            (0..carr.len())
                .map(|i| carr.is_valid(i) && carr.value(i))
                .collect::<Vec<_>>(),
        );
        let ta = va.datum(&e.ty, self.rows)?;
        let tb = vb.datum(&e.ty, self.rows)?;
        let chosen = zip(&mask, ta.as_ref(), tb.as_ref())?;
        let out = if carr.null_count() > 0 {
            nullif(&chosen, &is_null(&carr)?)?
        } else {
            chosen
        };
        Ok(Col::Array(out))
    }

    /// Evaluates a branch of `? :` on the rows `sel` selects (NULL when none).
    fn branch(&mut self, e: &TExpr, sel: Arc<Vec<bool>>) -> Result<Col, VexprError> {
        if !sel.iter().any(|s| *s) {
            return Ok(Col::Scalar(Value::Null(e.ty.clone())));
        }
        self.select = Some(sel);
        self.eval(e)
    }

    // ----- one operand -----

    fn unary(&mut self, e: &TExpr, a: &TExpr, x: Col) -> Result<Col, VexprError> {
        match &e.kind {
            TKind::Convert(_) => self.convert(&e.ty, &a.ty, x),
            TKind::Not(_) => {
                let arr = x.into_array(&a.ty, self.rows)?;
                let b = arr
                    .as_boolean_opt()
                    .ok_or_else(|| internal("! of a non-boolean"))?;
                Ok(Col::Array(Arc::new(not(b)?)))
            }
            TKind::BitNot(_) => with_int!(&e.ty, T => {
                let arr = x.into_array(&a.ty, self.rows)?;
                let p = arr.as_primitive_opt::<T>().ok_or_else(|| internal("~ of a non-integer"))?;
                Ok(Col::Array(Arc::new(bitwise_not(p)?)))
            }, else self.per_row(e, &[a], &[x])),
            TKind::Neg(_) => {
                if e.ty == Ssis::R8 {
                    let p = prim::<Float64Type>(&x, &a.ty)?;
                    let out: PrimitiveArray<Float64Type> =
                        (0..self.rows).map(|i| p.get(i).map(|v| -v)).collect();
                    return Ok(Col::Array(Arc::new(out)));
                }
                with_int!(&e.ty, T => self.int_neg::<T>(&e.ty, &x), else self.per_row(e, &[a], &[x]))
            }
            _ => self.per_row(e, &[a], &[x]),
        }
    }

    fn int_neg<T>(&mut self, ty: &Ssis, x: &Col) -> Result<Col, VexprError>
    where
        T: ArrowPrimitiveType,
        T::Native: ArrowNativeTypeOp + Display,
    {
        let p = prim::<T>(x, ty)?;
        let mut out = PrimitiveBuilder::<T>::with_capacity(self.rows);
        for i in 0..self.rows {
            match p.get(i) {
                Some(v) => match v.neg_checked() {
                    Ok(r) => out.append_value(r),
                    Err(_) => {
                        self.fail(
                            i,
                            eval_error(format!(
                                "arithmetic overflow: -({v}) does not fit {}",
                                ty.ssis_name()
                            )),
                        );
                        out.append_null();
                    }
                },
                None => out.append_null(),
            }
        }
        Ok(Col::Array(Arc::new(out.finish())))
    }

    /// A cast (explicit or implicit) of `x`, of type `from`, to `to`.
    fn convert(&mut self, to: &Ssis, from: &Ssis, x: Col) -> Result<Col, VexprError> {
        if from == to {
            return Ok(x);
        }
        if let Col::Scalar(v) = &x {
            let r = v.cast_to(to);
            return Ok(self.scalar_result(r, to));
        }
        if from.is_string() && to.is_string() {
            let len = match to {
                Ssis::WStr { len } | Ssis::Str { len, .. } => *len,
                _ => None,
            };
            return match len {
                None => Ok(x),
                Some(n) => self.truncate(&x, n as usize),
            };
        }
        let lossless = (from.is_integer() && to.is_integer() && int_widens(from, to))
            || (*to == Ssis::R8 && (from.is_integer() || *from == Ssis::R4));
        if lossless {
            let arr = x.into_array(from, self.rows)?;
            return Ok(Col::Array(cast(&arr, &arrow_type(to))?));
        }
        let target = to.clone();
        self.per_row1(to, from, &x, move |v| v.cast_to(&target))
    }

    /// Strings cut to `n` characters (a cast to a shorter DT_WSTR).
    fn truncate(&mut self, x: &Col, n: usize) -> Result<Col, VexprError> {
        let s = string(x)?;
        let mut out = StringBuilder::with_capacity(self.rows, self.rows * n.min(64));
        for i in 0..self.rows {
            match s.get(i) {
                Some(v) => match v.char_indices().nth(n) {
                    Some((cut, _)) => out.append_value(&v[..cut]),
                    None => out.append_value(v),
                },
                None => out.append_null(),
            }
        }
        Ok(Col::Array(Arc::new(out.finish())))
    }

    // ----- two operands -----

    fn binary(
        &mut self,
        e: &TExpr,
        a: &TExpr,
        b: &TExpr,
        x: Col,
        y: Col,
    ) -> Result<Col, VexprError> {
        match &e.kind {
            TKind::Arith(op, ..) => {
                if e.ty.is_integer() {
                    return with_int!(&e.ty, T => self.int_arith::<T>(*op, e, (a, &x), (b, &y)),
                        else Err(internal("integer arithmetic without an integer type")));
                }
                if e.ty.is_real() {
                    return self.real_arith(*op, e, (a, &x), (b, &y));
                }
                let (op, ty) = (*op, e.ty.clone());
                self.per_row2(e, (a, &x), (b, &y), move |p, q| {
                    scalar::arith(op, p, q, &ty)
                })
            }
            TKind::Concat(..) => self.concat(&x, &y),
            TKind::Compare(op, domain, ..) => self.compare(e, *op, *domain, (a, &x), (b, &y)),
            TKind::Logic(op, ..) => {
                let l = x.into_array(&a.ty, self.rows)?;
                let r = y.into_array(&b.ty, self.rows)?;
                let (l, r) = (
                    l.as_boolean_opt()
                        .ok_or_else(|| internal("logic on non-booleans"))?,
                    r.as_boolean_opt()
                        .ok_or_else(|| internal("logic on non-booleans"))?,
                );
                let out = if *op == BinaryOp::And {
                    and_kleene(l, r)?
                } else {
                    or_kleene(l, r)?
                };
                Ok(Col::Array(Arc::new(out)))
            }
            TKind::Bitwise(op, ..) => with_int!(&e.ty, T => {
                let want = arrow_type(&e.ty);
                let l = cast(&x.into_array(&a.ty, self.rows)?, &want)?;
                let r = cast(&y.into_array(&b.ty, self.rows)?, &want)?;
                let (l, r) = (
                    l.as_primitive_opt::<T>().ok_or_else(|| internal("bitwise operand"))?,
                    r.as_primitive_opt::<T>().ok_or_else(|| internal("bitwise operand"))?,
                );
                let out = match op {
                    BinaryOp::BitAnd => bitwise_and(l, r)?,
                    BinaryOp::BitOr => bitwise_or(l, r)?,
                    _ => bitwise_xor(l, r)?,
                };
                Ok(Col::Array(Arc::new(out)))
            }, else self.per_row(e, &[a, b], &[x, y])),
            _ => self.per_row(e, &[a, b], &[x, y]),
        }
    }

    fn int_arith<T>(
        &mut self,
        op: BinaryOp,
        e: &TExpr,
        (a, x): (&TExpr, &Col),
        (b, y): (&TExpr, &Col),
    ) -> Result<Col, VexprError>
    where
        T: ArrowPrimitiveType,
        T::Native: ArrowNativeTypeOp + Display,
    {
        // Both operands widened to the result type (the checker's promotion makes that
        // lossless); the operation is checked in that type.
        let p = prim::<T>(&widen(x, &a.ty, &e.ty, self.rows)?, &e.ty)?;
        let q = prim::<T>(&widen(y, &b.ty, &e.ty, self.rows)?, &e.ty)?;
        let name = e.ty.ssis_name();
        let sym = op.symbol();
        let mut out = PrimitiveBuilder::<T>::with_capacity(self.rows);
        for i in 0..self.rows {
            let (Some(u), Some(v)) = (p.get(i), q.get(i)) else {
                out.append_null();
                continue;
            };
            let r = match op {
                BinaryOp::Add => u.add_checked(v).ok(),
                BinaryOp::Sub => u.sub_checked(v).ok(),
                BinaryOp::Mul => u.mul_checked(v).ok(),
                BinaryOp::Div => {
                    if v.is_zero() {
                        self.fail(i, eval_error(format!("division by zero: {u} / {v}")));
                        out.append_null();
                        continue;
                    }
                    // Truncates toward zero; MIN / -1 overflows.
                    u.div_checked(v).ok()
                }
                _ => {
                    if v.is_zero() {
                        self.fail(
                            i,
                            eval_error(format!("modulo zero is not legal: {u} % {v}")),
                        );
                        out.append_null();
                        continue;
                    }
                    // The dividend's sign; MIN % -1 is 0.
                    Some(u.mod_wrapping(v))
                }
            };
            match r {
                Some(r) => out.append_value(r),
                None => {
                    self.fail(
                        i,
                        eval_error(format!(
                            "arithmetic overflow: {u} {sym} {v} does not fit {name}"
                        )),
                    );
                    out.append_null();
                }
            }
        }
        Ok(Col::Array(Arc::new(out.finish())))
    }

    fn real_arith(
        &mut self,
        op: BinaryOp,
        e: &TExpr,
        (a, x): (&TExpr, &Col),
        (b, y): (&TExpr, &Col),
    ) -> Result<Col, VexprError> {
        let p = self.f64s(x, &a.ty)?;
        let q = self.f64s(y, &b.ty)?;
        let r4 = e.ty == Ssis::R4;
        let mut out8 =
            PrimitiveBuilder::<Float64Type>::with_capacity(if r4 { 0 } else { self.rows });
        let mut out4 =
            datafusion::arrow::array::Float32Builder::with_capacity(if r4 { self.rows } else { 0 });
        for i in 0..self.rows {
            let (Some(u), Some(v)) = (p.get(i), q.get(i)) else {
                if r4 {
                    out4.append_null();
                } else {
                    out8.append_null();
                }
                continue;
            };
            let r = match op {
                BinaryOp::Add => Ok(u + v),
                BinaryOp::Sub => Ok(u - v),
                BinaryOp::Mul => Ok(u * v),
                BinaryOp::Div if v == 0.0 => Err("division by zero"),
                BinaryOp::Div => Ok(u / v),
                _ if v == 0.0 => Err("modulo zero is not legal"),
                _ => Ok(u % v),
            };
            let r: Result<(), &str> = match r {
                Ok(r) if r4 => {
                    let g = r as f32;
                    if g.is_finite() {
                        out4.append_value(g);
                        continue;
                    }
                    Err("overflow")
                }
                Ok(r) if r.is_finite() => {
                    out8.append_value(r);
                    continue;
                }
                Ok(_) => Err("overflow"),
                Err(m) => Err(m),
            };
            if r4 {
                out4.append_null();
            } else {
                out8.append_null();
            }
            if let Err(kind) = r
                && self.live(i)
            {
                let (vx, vy) = (x.value(i, &a.ty)?, y.value(i, &b.ty)?);
                let message = match kind {
                    "overflow" => format!(
                        "arithmetic overflow: {vx} {} {vy} does not fit {}",
                        op.symbol(),
                        e.ty.ssis_name()
                    ),
                    "division by zero" => format!("division by zero: {vx} / {vy}"),
                    _ => format!("modulo zero is not legal: {vx} % {vy}"),
                };
                self.fail(i, eval_error(message));
            }
        }
        Ok(Col::Array(if r4 {
            Arc::new(out4.finish())
        } else {
            Arc::new(out8.finish())
        }))
    }

    /// A numeric operand as f64 values, converted as the row evaluator converts them.
    fn f64s(&self, x: &Col, ty: &Ssis) -> Result<Prim<Float64Type>, VexprError> {
        if *ty == Ssis::R8 || *ty == Ssis::R4 || ty.is_integer() {
            return prim::<Float64Type>(x, ty);
        }
        Ok(match x {
            Col::Scalar(v) => Prim::Scalar(value_f64(v)),
            Col::Array(arr) => {
                let mut out = PrimitiveBuilder::<Float64Type>::with_capacity(self.rows);
                for i in 0..self.rows {
                    out.append_option(value_f64(&value_at(arr.as_ref(), ty, i)?));
                }
                Prim::Array(out.finish())
            }
        })
    }

    fn concat(&mut self, x: &Col, y: &Col) -> Result<Col, VexprError> {
        let (s, t) = (string(x)?, string(y)?);
        let mut out = StringBuilder::with_capacity(self.rows, self.rows * 16);
        for i in 0..self.rows {
            let (Some(p), Some(q)) = (s.get(i), t.get(i)) else {
                out.append_null();
                continue;
            };
            if p.len() + q.len() > MAX_STRING_CHARS
                && p.chars().count() + q.chars().count() > MAX_STRING_CHARS
            {
                self.fail(
                    i,
                    eval_error(format!(
                        "string concatenation would exceed the limit of {MAX_STRING_CHARS} characters"
                    )),
                );
                out.append_null();
                continue;
            }
            out.write_str(p).map_err(internal)?;
            out.append_value(q);
        }
        Ok(Col::Array(Arc::new(out.finish())))
    }

    fn compare(
        &mut self,
        e: &TExpr,
        op: BinaryOp,
        domain: Domain,
        (a, x): (&TExpr, &Col),
        (b, y): (&TExpr, &Col),
    ) -> Result<Col, VexprError> {
        let native = match domain {
            Domain::Int => {
                let wide = if a.ty.is_unsigned_integer() && b.ty.is_unsigned_integer() {
                    Ssis::UI8
                } else {
                    Ssis::I8
                };
                Some((
                    widen(x, &a.ty, &wide, self.rows)?,
                    widen(y, &b.ty, &wide, self.rows)?,
                    wide,
                ))
            }
            Domain::Str => Some((x.clone(), y.clone(), Ssis::WStr { len: None })),
            Domain::Bool if matches!(op, BinaryOp::Eq | BinaryOp::Ne) => {
                Some((x.clone(), y.clone(), Ssis::Bool))
            }
            Domain::Bytes
                if matches!(a.ty, Ssis::Bytes { .. }) && matches!(b.ty, Ssis::Bytes { .. }) =>
            {
                Some((x.clone(), y.clone(), Ssis::Bytes { len: None }))
            }
            _ => None,
        };
        if let Some((l, r, ty)) = native {
            let (l, r) = (l.datum(&ty, self.rows)?, r.datum(&ty, self.rows)?);
            let (l, r) = (l.as_ref(), r.as_ref());
            let out = match op {
                BinaryOp::Eq => cmp::eq(l, r)?,
                BinaryOp::Ne => cmp::neq(l, r)?,
                BinaryOp::Lt => cmp::lt(l, r)?,
                BinaryOp::Le => cmp::lt_eq(l, r)?,
                BinaryOp::Gt => cmp::gt(l, r)?,
                _ => cmp::gt_eq(l, r)?,
            };
            return Ok(Col::Array(Arc::new(out)));
        }
        let keys = match domain {
            Domain::Real => Some((self.f64s(x, &a.ty)?, self.f64s(y, &b.ty)?)),
            Domain::Date if ms_date(&a.ty) && ms_date(&b.ty) => {
                Some((self.ms_keys(x, &a.ty)?, self.ms_keys(y, &b.ty)?))
            }
            _ => None,
        };
        let Some((p, q)) = keys else {
            return self.per_row2(e, (a, x), (b, y), move |u, v| {
                Ok(scalar::compare(op, domain, u, v))
            });
        };
        let out: BooleanArray = (0..self.rows)
            .map(|i| {
                let (u, v) = (p.get(i)?, q.get(i)?);
                let ord = u.partial_cmp(&v);
                Some(match op {
                    BinaryOp::Eq => ord == Some(std::cmp::Ordering::Equal),
                    BinaryOp::Ne => ord != Some(std::cmp::Ordering::Equal),
                    BinaryOp::Lt => ord == Some(std::cmp::Ordering::Less),
                    BinaryOp::Gt => ord == Some(std::cmp::Ordering::Greater),
                    BinaryOp::Le => matches!(
                        ord,
                        Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
                    ),
                    _ => matches!(
                        ord,
                        Some(std::cmp::Ordering::Greater | std::cmp::Ordering::Equal)
                    ),
                })
            })
            .collect();
        Ok(Col::Array(Arc::new(out)))
    }

    /// A DT_DBTIMESTAMP, DT_DATE or DT_DBDATE operand as milliseconds since 1970 (as f64,
    /// exact for every such value).
    fn ms_keys(&self, x: &Col, ty: &Ssis) -> Result<Prim<Float64Type>, VexprError> {
        let arr = x.clone().into_array(ty, self.rows)?;
        let out: PrimitiveArray<Float64Type> = match arr.data_type() {
            DataType::Date32 => arr
                .as_primitive::<datafusion::arrow::datatypes::Date32Type>()
                .iter()
                .map(|d| d.map(|d| f64::from(d) * 86_400_000.0))
                .collect(),
            _ => arr
                .as_primitive_opt::<datafusion::arrow::datatypes::TimestampMillisecondType>()
                .ok_or_else(|| internal("a date that is not in milliseconds"))?
                .iter()
                .map(|t| t.map(|t| t as f64))
                .collect(),
        };
        Ok(Prim::Array(out))
    }

    // ----- functions -----

    fn call(
        &mut self,
        e: &TExpr,
        func: Func,
        args: &[TExpr],
        cols: Vec<Col>,
    ) -> Result<Col, VexprError> {
        let kids: Vec<&TExpr> = args.iter().collect();
        match func {
            Func::IsNull => {
                let arr = cols[0].clone().into_array(&args[0].ty, self.rows)?;
                Ok(Col::Array(Arc::new(is_null(&arr)?)))
            }
            Func::ReplaceNull => self.replace_null(e, &kids, cols),
            Func::Upper | Func::Lower | Func::Trim | Func::LTrim | Func::RTrim | Func::Reverse
                if !cols[0].is_scalar() =>
            {
                self.string_map(func, &cols[0])
            }
            Func::Len if !cols[0].is_scalar() => self.len(&cols[0]),
            Func::Codepoint if !cols[0].is_scalar() => self.codepoint(&cols[0]),
            Func::Left | Func::Right | Func::Substring => self.substring(func, &kids, &cols),
            Func::Day | Func::Month | Func::Year if ms_date(&args[0].ty) => {
                let part = match func {
                    Func::Day => DatePart::Day,
                    Func::Month => DatePart::Month,
                    _ => DatePart::Year,
                };
                self.datepart(func, part, &args[0].ty, &cols[0])
            }
            Func::DatePart if ms_date(&args[1].ty) => match &cols[0] {
                Col::Scalar(Value::WStr(s)) => match DatePart::parse(s) {
                    Some(part) => self.datepart(func, part, &args[1].ty, &cols[1]),
                    None => self.per_row(e, &kids, &cols),
                },
                _ => self.per_row(e, &kids, &cols),
            },
            _ => self.per_row(e, &kids, &cols),
        }
    }

    fn replace_null(
        &mut self,
        e: &TExpr,
        kids: &[&TExpr],
        cols: Vec<Col>,
    ) -> Result<Col, VexprError> {
        let (first, second) = (&cols[0], &cols[1]);
        let arr = match first {
            Col::Scalar(v) if !v.is_null() => return Ok(first.clone()),
            Col::Scalar(_) => None,
            Col::Array(a) => Some(a.clone()),
        };
        // The second value is cast to the result type only on the rows that use it.
        let outer = self.select.clone();
        let replaced = match &arr {
            None => self.convert(&e.ty, &kids[1].ty, second.clone())?,
            Some(a) => {
                let sel: Vec<bool> = (0..self.rows)
                    .map(|i| a.is_null(i) && outer.as_ref().is_none_or(|s| s[i]))
                    .collect();
                if sel.iter().any(|s| *s) {
                    self.select = Some(Arc::new(sel));
                    let r = self.convert(&e.ty, &kids[1].ty, second.clone());
                    self.select = outer;
                    r?
                } else {
                    Col::Scalar(Value::Null(e.ty.clone()))
                }
            }
        };
        let Some(a) = arr else {
            return Ok(replaced);
        };
        let keep = is_not_null(&a)?;
        let r = replaced.datum(&e.ty, self.rows)?;
        Ok(Col::Array(zip(&keep, &a, r.as_ref())?))
    }

    /// UPPER, LOWER, TRIM, LTRIM, RTRIM and REVERSE, written into one output buffer.
    fn string_map(&mut self, func: Func, x: &Col) -> Result<Col, VexprError> {
        let s = string(x)?;
        let mut out = StringBuilder::with_capacity(self.rows, self.rows * 16);
        for i in 0..self.rows {
            let Some(v) = s.get(i) else {
                out.append_null();
                continue;
            };
            match func {
                Func::Trim => out.append_value(v.trim_matches(' ')),
                Func::LTrim => out.append_value(v.trim_start_matches(' ')),
                Func::RTrim => out.append_value(v.trim_end_matches(' ')),
                Func::Upper => {
                    for c in v.chars() {
                        for u in c.to_uppercase() {
                            out.write_char(u).map_err(internal)?;
                        }
                    }
                    out.append_value("");
                }
                Func::Lower if v.contains('Σ') => {
                    // The final-sigma rule of `str::to_lowercase` looks at neighbours.
                    out.append_value(v.to_lowercase());
                }
                Func::Lower => {
                    for c in v.chars() {
                        for u in c.to_lowercase() {
                            out.write_char(u).map_err(internal)?;
                        }
                    }
                    out.append_value("");
                }
                _ => {
                    for c in v.chars().rev() {
                        out.write_char(c).map_err(internal)?;
                    }
                    out.append_value("");
                }
            }
        }
        Ok(Col::Array(Arc::new(out.finish())))
    }

    fn len(&mut self, x: &Col) -> Result<Col, VexprError> {
        let s = string(x)?;
        let mut out = Int32Builder::with_capacity(self.rows);
        for i in 0..self.rows {
            match s.get(i) {
                Some(v) => {
                    let n = v.chars().count();
                    match i32::try_from(n) {
                        Ok(n) => out.append_value(n),
                        Err(_) => {
                            self.fail(
                                i,
                                eval_error(format!("LEN: the result {n} overflows DT_I4")),
                            );
                            out.append_null();
                        }
                    }
                }
                None => out.append_null(),
            }
        }
        Ok(Col::Array(Arc::new(out.finish())))
    }

    fn codepoint(&mut self, x: &Col) -> Result<Col, VexprError> {
        let s = string(x)?;
        let mut out = UInt16Builder::with_capacity(self.rows);
        let mut buf = [0u16; 2];
        for i in 0..self.rows {
            match s.get(i).and_then(|v| v.chars().next()) {
                Some(c) => out.append_value(c.encode_utf16(&mut buf)[0]),
                None => out.append_null(),
            }
        }
        Ok(Col::Array(Arc::new(out.finish())))
    }

    /// LEFT, RIGHT and SUBSTRING: 1-based, counting characters.
    fn substring(&mut self, func: Func, kids: &[&TExpr], cols: &[Col]) -> Result<Col, VexprError> {
        let s = string(&cols[0])?;
        let mut out = StringBuilder::with_capacity(self.rows, self.rows * 8);
        let name = func.name();
        for i in 0..self.rows {
            if !self.live(i) {
                out.append_null();
                continue;
            }
            let mut ints = [0i128; 2];
            let mut null = s.get(i).is_none();
            for (k, slot) in ints.iter_mut().enumerate().take(cols.len() - 1) {
                match value_int(&cols[k + 1].value(i, &kids[k + 1].ty)?) {
                    Some(n) => *slot = n,
                    None => null = true,
                }
            }
            let Some(v) = s.get(i).filter(|_| !null) else {
                out.append_null();
                continue;
            };
            let error = match func {
                Func::Substring if ints[0] < 1 => Some(format!(
                    "the start position must be greater than 0, not {}",
                    ints[0]
                )),
                Func::Substring if ints[1] < 0 => {
                    Some(format!("the length must not be negative, not {}", ints[1]))
                }
                Func::Left | Func::Right if ints[0] < 0 => Some(format!(
                    "the number of characters must not be negative, not {}",
                    ints[0]
                )),
                _ => None,
            };
            if let Some(m) = error {
                self.fail(i, eval_error(format!("{name}: {m}")));
                out.append_null();
                continue;
            }
            let (skip, take) = match func {
                Func::Substring => (
                    usize::try_from(ints[0] - 1).unwrap_or(usize::MAX),
                    usize::try_from(ints[1]).unwrap_or(usize::MAX),
                ),
                Func::Left => (0, usize::try_from(ints[0]).unwrap_or(usize::MAX)),
                _ => {
                    let n = usize::try_from(ints[0]).unwrap_or(usize::MAX);
                    (v.chars().count().saturating_sub(n), usize::MAX)
                }
            };
            let start = v.char_indices().nth(skip).map_or(v.len(), |(b, _)| b);
            let rest = &v[start..];
            let end = rest.char_indices().nth(take).map_or(rest.len(), |(b, _)| b);
            out.append_value(&rest[..end]);
        }
        Ok(Col::Array(Arc::new(out.finish())))
    }

    /// YEAR, MONTH, DAY and DATEPART over DT_DBTIMESTAMP, DT_DATE or DT_DBDATE values.
    fn datepart(
        &mut self,
        func: Func,
        part: DatePart,
        ty: &Ssis,
        x: &Col,
    ) -> Result<Col, VexprError> {
        let arr = x.clone().into_array(ty, self.rows)?;
        let (unit, values): (TimeUnit, Vec<Option<i64>>) = match arr.data_type() {
            DataType::Date32 => (
                TimeUnit::Millisecond,
                arr.as_primitive::<datafusion::arrow::datatypes::Date32Type>()
                    .iter()
                    .map(|d| d.map(|d| i64::from(d) * 86_400_000))
                    .collect(),
            ),
            _ => (
                TimeUnit::Millisecond,
                arr.as_primitive_opt::<datafusion::arrow::datatypes::TimestampMillisecondType>()
                    .ok_or_else(|| internal("a date that is not in milliseconds"))?
                    .iter()
                    .collect(),
            ),
        };
        let mut out = Int32Builder::with_capacity(self.rows);
        for (i, v) in values.into_iter().enumerate() {
            let Some(v) = v else {
                out.append_null();
                continue;
            };
            let dt = units_to_datetime(v, unit).ok_or_else(|| internal("a date out of range"))?;
            let n = dates::datepart(part, &dt);
            match i32::try_from(n) {
                Ok(n) => out.append_value(n),
                Err(_) => {
                    self.fail(
                        i,
                        eval_error(format!("{}: the result {n} overflows DT_I4", func.name())),
                    );
                    out.append_null();
                }
            }
        }
        Ok(Col::Array(Arc::new(out.finish())))
    }
}

/// DT_DBTIMESTAMP, DT_DATE and DT_DBDATE: the date types kept as milliseconds or days.
fn ms_date(ty: &Ssis) -> bool {
    matches!(ty, Ssis::DbTimestamp | Ssis::Date | Ssis::DbDate)
}

/// An integer operand as integer type `to` (a lossless widening).
fn widen(x: &Col, from: &Ssis, to: &Ssis, rows: usize) -> Result<Col, VexprError> {
    if from == to {
        return Ok(x.clone());
    }
    Ok(match x {
        Col::Scalar(v) => Col::Scalar(
            v.cast_to(to)
                .map_err(|e| internal(format!("widening {v:?} to {to}: {e}")))?,
        ),
        Col::Array(_) => {
            let arr = x.clone().into_array(from, rows)?;
            Col::Array(cast(&arr, &arrow_type(to))?)
        }
    })
}
