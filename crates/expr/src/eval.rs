//! The evaluator: typed tree + variable values (`Env`) -> `Value`. Checked arithmetic only.

use std::cmp::Ordering;

use rust_decimal::Decimal;

use crate::ast::BinaryOp;
use crate::check::{Domain, TExpr, TKind};
use crate::datatype::DataType;
use crate::error::ExprError;
use crate::functions;
use crate::temporal::compare_key;
use crate::value::{MAX_STRING_CHARS, Num, Value, fit_decimal, int_to_type};

/// Supplies variable values at evaluation time, by the slot the `Scope` handed out.
pub trait Env {
    /// The current value of the variable in `slot`.
    fn value(&self, slot: u32) -> Value;

    /// The current row's value of the column in `slot` (data flows only; the default, for
    /// environments whose scope has no columns, is NULL).
    fn column(&self, slot: u32) -> Value {
        let _ = slot;
        Value::Null(DataType::I4)
    }
}

/// Evaluates a typed node. Each kind's work lives in its own function so that this
/// recursive dispatcher keeps a small stack frame.
pub(crate) fn eval(e: &TExpr, env: &dyn Env) -> Result<Value, ExprError> {
    match &e.kind {
        TKind::Const(v) => Ok(v.clone()),
        TKind::Var(slot) => eval_var(*slot, &e.ty, env),
        TKind::Column(slot) => coerce_input(env.column(*slot), &e.ty),
        TKind::Convert(a) => eval_convert(a, &e.ty, env),
        TKind::Neg(a) | TKind::Not(a) | TKind::BitNot(a) => eval_unary(e, a, env),
        TKind::Arith(op, a, b) => eval_arith(*op, a, b, &e.ty, env),
        TKind::Concat(a, b) => eval_concat(a, b, &e.ty, env),
        TKind::Compare(op, domain, a, b) => eval_compare(*op, *domain, a, b, env),
        TKind::Logic(op, a, b) => eval_logic(*op, a, b, env),
        TKind::Bitwise(op, a, b) => eval_bitwise(*op, a, b, &e.ty, env),
        TKind::Cond(c, a, b) => eval_cond(c, a, b, &e.ty, env),
        TKind::Call(f, args) => functions::eval_call(*f, args, &e.ty, env),
    }
}

#[inline(never)]
fn eval_var(slot: u32, ty: &DataType, env: &dyn Env) -> Result<Value, ExprError> {
    coerce_input(env.value(slot), ty)
}

/// A variable's or column's value as the type the checker gave it: NULLs take that type,
/// a value of another kind is cast.
pub(crate) fn coerce_input(v: Value, ty: &DataType) -> Result<Value, ExprError> {
    if v.has_kind_of(ty) {
        Ok(v)
    } else if let Value::Null(_) = v {
        Ok(Value::Null(ty.clone()))
    } else {
        v.cast_to(ty)
    }
}

#[inline(never)]
fn eval_convert(a: &TExpr, ty: &DataType, env: &dyn Env) -> Result<Value, ExprError> {
    let v = eval(a, env)?;
    v.cast_to(ty)
}

#[inline(never)]
fn eval_unary(e: &TExpr, a: &TExpr, env: &dyn Env) -> Result<Value, ExprError> {
    let v = eval(a, env)?;
    unary_value(&e.kind, v, &e.ty)
}

#[inline(never)]
pub(crate) fn unary_value(kind: &TKind, v: Value, ty: &DataType) -> Result<Value, ExprError> {
    match kind {
        TKind::Neg(_) => negate(v, ty),
        TKind::Not(_) => Ok(match v {
            Value::Bool(b) => Value::Bool(!b),
            _ => Value::Null(DataType::Bool),
        }),
        _ => Ok(match v {
            Value::I1(x) => Value::I1(!x),
            Value::I2(x) => Value::I2(!x),
            Value::I4(x) => Value::I4(!x),
            Value::I8(x) => Value::I8(!x),
            Value::UI1(x) => Value::UI1(!x),
            Value::UI2(x) => Value::UI2(!x),
            Value::UI4(x) => Value::UI4(!x),
            Value::UI8(x) => Value::UI8(!x),
            _ => Value::Null(ty.clone()),
        }),
    }
}

#[inline(never)]
fn eval_arith(
    op: BinaryOp,
    a: &TExpr,
    b: &TExpr,
    ty: &DataType,
    env: &dyn Env,
) -> Result<Value, ExprError> {
    let x = eval(a, env)?;
    let y = eval(b, env)?;
    arith(op, &x, &y, ty)
}

#[inline(never)]
fn eval_concat(a: &TExpr, b: &TExpr, ty: &DataType, env: &dyn Env) -> Result<Value, ExprError> {
    let x = eval(a, env)?;
    let y = eval(b, env)?;
    concat(x, y, ty)
}

#[inline(never)]
pub(crate) fn concat(x: Value, y: Value, ty: &DataType) -> Result<Value, ExprError> {
    match (x, y) {
        (Value::WStr(mut s) | Value::Str(mut s), Value::WStr(t) | Value::Str(t)) => {
            if s.len() + t.len() > MAX_STRING_CHARS
                && s.chars().count() + t.chars().count() > MAX_STRING_CHARS
            {
                return Err(ExprError::eval(format!(
                    "string concatenation would exceed the limit of {MAX_STRING_CHARS} characters"
                )));
            }
            s.push_str(&t);
            Ok(Value::WStr(s))
        }
        _ => Ok(Value::Null(ty.clone())),
    }
}

#[inline(never)]
fn eval_compare(
    op: BinaryOp,
    domain: Domain,
    a: &TExpr,
    b: &TExpr,
    env: &dyn Env,
) -> Result<Value, ExprError> {
    let x = eval(a, env)?;
    let y = eval(b, env)?;
    Ok(compare_values(op, domain, &x, &y))
}

/// `x op y` for a comparison: NULL when either side is NULL.
pub(crate) fn compare_values(op: BinaryOp, domain: Domain, x: &Value, y: &Value) -> Value {
    if x.is_null() || y.is_null() {
        return Value::Null(DataType::Bool);
    }
    let ord = compare(domain, x, y);
    let r = match op {
        BinaryOp::Eq => ord == Some(Ordering::Equal),
        BinaryOp::Ne => ord != Some(Ordering::Equal),
        BinaryOp::Lt => ord == Some(Ordering::Less),
        BinaryOp::Gt => ord == Some(Ordering::Greater),
        BinaryOp::Le => matches!(ord, Some(Ordering::Less | Ordering::Equal)),
        _ => matches!(ord, Some(Ordering::Greater | Ordering::Equal)),
    };
    Value::Bool(r)
}

#[inline(never)]
fn eval_logic(op: BinaryOp, a: &TExpr, b: &TExpr, env: &dyn Env) -> Result<Value, ExprError> {
    // Both operands are evaluated (SSIS gives no short-circuit guarantee); NULL follows
    // three-valued logic.
    let x = eval(a, env)?;
    let y = eval(b, env)?;
    Ok(logic_values(op, &x, &y))
}

/// `x && y` / `x || y` with three-valued logic.
pub(crate) fn logic_values(op: BinaryOp, x: &Value, y: &Value) -> Value {
    let (x, y) = (x.as_bool(), y.as_bool());
    let r = match op {
        BinaryOp::And => match (x, y) {
            (Some(false), _) | (_, Some(false)) => Some(false),
            (Some(true), Some(true)) => Some(true),
            _ => None,
        },
        _ => match (x, y) {
            (Some(true), _) | (_, Some(true)) => Some(true),
            (Some(false), Some(false)) => Some(false),
            _ => None,
        },
    };
    r.map_or(Value::Null(DataType::Bool), Value::Bool)
}

#[inline(never)]
fn eval_bitwise(
    op: BinaryOp,
    a: &TExpr,
    b: &TExpr,
    ty: &DataType,
    env: &dyn Env,
) -> Result<Value, ExprError> {
    let x = eval(a, env)?;
    let y = eval(b, env)?;
    bitwise_values(op, &x, &y, ty)
}

/// `x & y`, `x | y`, `x ^ y` in the integer type `ty`.
pub(crate) fn bitwise_values(
    op: BinaryOp,
    x: &Value,
    y: &Value,
    ty: &DataType,
) -> Result<Value, ExprError> {
    match (x.as_num(), y.as_num()) {
        (Some(Num::Int(p)), Some(Num::Int(q))) => {
            let r = match op {
                BinaryOp::BitAnd => p & q,
                BinaryOp::BitOr => p | q,
                _ => p ^ q,
            };
            int_to_type(r, ty).map_err(|_| overflow(op, x, y, ty))
        }
        _ => Ok(Value::Null(ty.clone())),
    }
}

#[inline(never)]
fn eval_cond(
    c: &TExpr,
    a: &TExpr,
    b: &TExpr,
    ty: &DataType,
    env: &dyn Env,
) -> Result<Value, ExprError> {
    // Only the selected branch is evaluated; a NULL condition gives NULL.
    match eval(c, env)? {
        Value::Bool(true) => eval(a, env),
        Value::Bool(false) => eval(b, env),
        _ => Ok(Value::Null(ty.clone())),
    }
}

fn overflow(op: BinaryOp, x: &Value, y: &Value, ty: &DataType) -> ExprError {
    ExprError::eval(format!(
        "arithmetic overflow: {x} {} {y} does not fit {}",
        op.symbol(),
        ty.ssis_name()
    ))
}

/// A decimal zero has no sign (`-(0.00)` is `0.00`, as SSIS shows it and as
/// an Arrow decimal stores it).
fn unsigned_zero(d: rust_decimal::Decimal) -> rust_decimal::Decimal {
    if d.is_zero() { d.abs() } else { d }
}

fn negate(v: Value, ty: &DataType) -> Result<Value, ExprError> {
    let over = || {
        ExprError::eval(format!(
            "arithmetic overflow: -({v}) does not fit {}",
            ty.ssis_name()
        ))
    };
    Ok(match &v {
        Value::I1(x) => Value::I1(x.checked_neg().ok_or_else(over)?),
        Value::I2(x) => Value::I2(x.checked_neg().ok_or_else(over)?),
        Value::I4(x) => Value::I4(x.checked_neg().ok_or_else(over)?),
        Value::I8(x) => Value::I8(x.checked_neg().ok_or_else(over)?),
        Value::R4(x) => Value::R4(-x),
        Value::R8(x) => Value::R8(-x),
        Value::Numeric {
            value,
            precision,
            scale,
        } => Value::Numeric {
            value: unsigned_zero(-*value),
            precision: *precision,
            scale: *scale,
        },
        Value::Decimal { value, scale } => Value::Decimal {
            value: unsigned_zero(-*value),
            scale: *scale,
        },
        Value::Cy(x) => Value::Cy(x.checked_neg().ok_or_else(over)?),
        _ => Value::Null(ty.clone()),
    })
}

/// Computes `x op y` in the domain of the result type `ty`.
pub(crate) fn arith(op: BinaryOp, x: &Value, y: &Value, ty: &DataType) -> Result<Value, ExprError> {
    let (Some(a), Some(b)) = (x.as_num(), y.as_num()) else {
        return Ok(Value::Null(ty.clone()));
    };
    if ty.is_integer() {
        let (Num::Int(p), Num::Int(q)) = (a, b) else {
            return Err(ExprError::eval(
                "internal error: integer arithmetic on non-integers",
            ));
        };
        let r = match op {
            BinaryOp::Add => p.checked_add(q),
            BinaryOp::Sub => p.checked_sub(q),
            BinaryOp::Mul => p.checked_mul(q),
            BinaryOp::Div => {
                if q == 0 {
                    return Err(ExprError::eval(format!("division by zero: {x} / {y}")));
                }
                // Integer division truncates toward zero.
                p.checked_div(q)
            }
            _ => {
                if q == 0 {
                    return Err(ExprError::eval(format!(
                        "modulo zero is not legal: {x} % {y}"
                    )));
                }
                // The remainder takes the sign of the dividend.
                p.checked_rem(q)
            }
        };
        return r
            .ok_or_else(|| overflow(op, x, y, ty))
            .and_then(|r| int_to_type(r, ty).map_err(|_| overflow(op, x, y, ty)));
    }
    if ty.is_real() {
        let (p, q) = (a.as_f64(), b.as_f64());
        let r = match op {
            BinaryOp::Add => p + q,
            BinaryOp::Sub => p - q,
            BinaryOp::Mul => p * q,
            BinaryOp::Div => {
                if q == 0.0 {
                    return Err(ExprError::eval(format!("division by zero: {x} / {y}")));
                }
                p / q
            }
            _ => {
                if q == 0.0 {
                    return Err(ExprError::eval(format!(
                        "modulo zero is not legal: {x} % {y}"
                    )));
                }
                p % q
            }
        };
        return match ty {
            DataType::R4 => {
                let g = r as f32;
                if g.is_finite() {
                    Ok(Value::R4(g))
                } else {
                    Err(overflow(op, x, y, ty))
                }
            }
            _ => {
                if r.is_finite() {
                    Ok(Value::R8(r))
                } else {
                    Err(overflow(op, x, y, ty))
                }
            }
        };
    }
    let (Some(p), Some(q)) = (a.as_decimal(), b.as_decimal()) else {
        return Err(overflow(op, x, y, ty));
    };
    let r: Option<Decimal> = match op {
        BinaryOp::Add => p.checked_add(q),
        BinaryOp::Sub => p.checked_sub(q),
        BinaryOp::Mul => p.checked_mul(q),
        BinaryOp::Div => {
            if q.is_zero() {
                return Err(ExprError::eval(format!("division by zero: {x} / {y}")));
            }
            p.checked_div(q)
        }
        _ => {
            if q.is_zero() {
                return Err(ExprError::eval(format!(
                    "modulo zero is not legal: {x} % {y}"
                )));
            }
            p.checked_rem(q)
        }
    };
    let r = r.ok_or_else(|| overflow(op, x, y, ty))?;
    if *ty == DataType::Cy {
        return Num::Dec(r).to_type(ty).map_err(|_| overflow(op, x, y, ty));
    }
    let (precision, scale) = ty.decimal_shape().unwrap_or((38, 0));
    let value = fit_decimal(r, precision, scale).ok_or_else(|| overflow(op, x, y, ty))?;
    Ok(match ty {
        DataType::Decimal { scale } => Value::Decimal {
            value,
            scale: *scale,
        },
        _ => Value::Numeric {
            value,
            precision,
            scale,
        },
    })
}

/// Orders two non-null values in a comparison domain; `None` for unordered reals (NaN).
fn compare(domain: Domain, x: &Value, y: &Value) -> Option<Ordering> {
    match domain {
        Domain::Int => match (x.as_num(), y.as_num()) {
            (Some(Num::Int(p)), Some(Num::Int(q))) => Some(p.cmp(&q)),
            _ => None,
        },
        Domain::Real => match (x.as_num(), y.as_num()) {
            (Some(p), Some(q)) => p.as_f64().partial_cmp(&q.as_f64()),
            _ => None,
        },
        Domain::Decimal => match (
            x.as_num().and_then(Num::as_decimal),
            y.as_num().and_then(Num::as_decimal),
        ) {
            (Some(p), Some(q)) => Some(p.cmp(&q)),
            _ => None,
        },
        Domain::Str => match (x.as_str(), y.as_str()) {
            // Ordinal comparison: case-, accent-, kana- and width-sensitive, no padding.
            (Some(p), Some(q)) => Some(p.cmp(q)),
            _ => None,
        },
        // Offsets compare in UTC; a value without one counts as UTC. Missing fractional
        // digits count as zeros.
        Domain::Date => match (compare_key(x), compare_key(y)) {
            (Some(p), Some(q)) => Some(p.cmp(&q)),
            _ => None,
        },
        Domain::Bool => match (x.as_bool(), y.as_bool()) {
            (Some(p), Some(q)) => Some(p.cmp(&q)),
            _ => None,
        },
        Domain::Bytes => match (x, y) {
            (Value::Bytes(p) | Value::Image(p), Value::Bytes(q) | Value::Image(q)) => {
                Some(p.cmp(q))
            }
            _ => None,
        },
        Domain::Guid => match (x, y) {
            (Value::Guid(p), Value::Guid(q)) => Some(p.cmp(q)),
            _ => None,
        },
        Domain::Text => match (x, y) {
            (Value::Text(p) | Value::NText(p), Value::Text(q) | Value::NText(q)) => Some(p.cmp(q)),
            _ => None,
        },
    }
}
