//! The type checker: `Ast` -> typed tree (`TExpr`), applying SSIS's promotion rules, and
//! folding constant sub-expressions (so `25 / 0` fails at compile time, as in SSIS).

use rust_decimal::Decimal;

use crate::ast::{BinaryOp, Expr, ExprKind, UnaryOp};
use crate::compile::{Scope, VarRef};
use crate::datatype::{DataType, MAX_PRECISION, MAX_SCALE};
use crate::error::{ExprError, Snippet};
use crate::eval::{Env, eval};
use crate::functions::{self, Func};
use crate::lexer::{RealSuffix, Span};
use crate::value::{Value, cast_allowed};

/// A node of the typed tree: what to compute and the type it yields. Read-only outside
/// this crate (through [`crate::Compiled::tree`]): evaluators walk it.
#[derive(Clone, Debug)]
pub struct TExpr {
    pub kind: TKind,
    pub ty: DataType,
    pub span: Span,
}

/// What a typed node computes. Operands of arithmetic keep their own types; the evaluator
/// computes in the domain of the node's type.
#[derive(Clone, Debug)]
pub enum TKind {
    Const(Value),
    Var(u32),
    /// A data-flow column, by the slot the `Scope` gave it.
    Column(u32),
    /// A cast (explicit or implicit) of the operand to the node's type.
    Convert(Box<TExpr>),
    Neg(Box<TExpr>),
    Not(Box<TExpr>),
    BitNot(Box<TExpr>),
    /// `+ - * / %` on numbers, computed in the node's type.
    Arith(BinaryOp, Box<TExpr>, Box<TExpr>),
    /// String `+`.
    Concat(Box<TExpr>, Box<TExpr>),
    /// A comparison; `Domain` says how the operands are compared.
    Compare(BinaryOp, Domain, Box<TExpr>, Box<TExpr>),
    /// `&&` / `||`.
    Logic(BinaryOp, Box<TExpr>, Box<TExpr>),
    /// `& | ^` on integers of the node's type.
    Bitwise(BinaryOp, Box<TExpr>, Box<TExpr>),
    Cond(Box<TExpr>, Box<TExpr>, Box<TExpr>),
    Call(Func, Vec<TExpr>),
}

/// How two values are compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Domain {
    Int,
    Real,
    Decimal,
    Str,
    Date,
    Bool,
    /// DT_BYTES and DT_IMAGE: byte by byte.
    Bytes,
    /// DT_GUID: by the digits of its text.
    Guid,
    /// DT_TEXT and DT_NTEXT: ordinally, like strings.
    Text,
}

/// Where a node sits: casts to DT_STR and NULL(DT_STR) are honoured only at the root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ctx {
    Root,
    CastOperand,
    Inner,
}

pub(crate) struct Checker<'a> {
    pub src: &'a str,
    pub scope: &'a dyn Scope,
    /// Every variable read, in order of first use.
    pub vars: Vec<VarRef>,
    /// Every column read (name, slot), in order of first use.
    pub columns: Vec<(String, u32)>,
}

struct NoEnv;

impl Env for NoEnv {
    fn value(&self, _slot: u32) -> Value {
        Value::Null(DataType::I4)
    }
}

/// The kind of a numeric common type.
enum Common {
    Int(DataType),
    Real(DataType),
    Decimal,
    /// DT_CY with DT_CY or an integer.
    Cy,
}

fn widest_int(signed: bool, width: u8) -> DataType {
    match (signed, width) {
        (true, 1) => DataType::I1,
        (true, 2) => DataType::I2,
        (true, 4) => DataType::I4,
        (true, _) => DataType::I8,
        (false, 1) => DataType::UI1,
        (false, 2) => DataType::UI2,
        (false, 4) => DataType::UI4,
        (false, _) => DataType::UI8,
    }
}

/// The implicit-conversion result of two numeric types, or `None` when SSIS requires a cast
/// (DT_UI8 with a signed integer).
fn numeric_common(a: &DataType, b: &DataType) -> Option<Common> {
    if a.is_integer() && b.is_integer() {
        let (sa, sb) = (a.is_signed_integer(), b.is_signed_integer());
        if sa == sb {
            return Some(Common::Int(widest_int(
                sa,
                a.int_width().max(b.int_width()),
            )));
        }
        let (s, u) = if sa { (a, b) } else { (b, a) };
        if *u == DataType::UI8 {
            return None;
        }
        // A signed integer potentially larger than either argument.
        return Some(Common::Int(widest_int(
            true,
            s.int_width().max(u.int_width() * 2),
        )));
    }
    if *a == DataType::R8 || *b == DataType::R8 {
        return Some(Common::Real(DataType::R8));
    }
    if *a == DataType::Cy || *b == DataType::Cy {
        let other = if *a == DataType::Cy { b } else { a };
        if *other == DataType::Cy || other.is_integer() {
            return Some(Common::Cy);
        }
        if *other == DataType::R4 {
            return Some(Common::Real(DataType::R8));
        }
        return Some(Common::Decimal);
    }
    if *a == DataType::R4 || *b == DataType::R4 {
        let other = if *a == DataType::R4 { b } else { a };
        // DT_R4 keeps 24 bits of mantissa: it holds small integers without loss, but not
        // 4- and 8-byte integers or decimals, which widen to DT_R8.
        if *other == DataType::R4 || (other.is_integer() && other.int_width() <= 2) {
            return Some(Common::Real(DataType::R4));
        }
        return Some(Common::Real(DataType::R8));
    }
    Some(Common::Decimal)
}

/// Result precision and scale of a decimal operation (SQL Server's rules, which SSIS's
/// DT_NUMERIC arithmetic follows), limited to precision 38 and scale 28.
fn decimal_result(op: BinaryOp, (p1, s1): (u8, u8), (p2, s2): (u8, u8)) -> DataType {
    let (p1, s1, p2, s2) = (i32::from(p1), i32::from(s1), i32::from(p2), i32::from(s2));
    let (mut p, mut s) = match op {
        BinaryOp::Mul => (p1 + p2 + 1, s1 + s2),
        BinaryOp::Div => {
            let s = 6.max(s1 + p2 + 1);
            (p1 - s1 + s2 + s, s)
        }
        BinaryOp::Mod => {
            let s = s1.max(s2);
            ((p1 - s1).min(p2 - s2) + s, s)
        }
        _ => {
            let s = s1.max(s2);
            ((p1 - s1).max(p2 - s2) + s + 1, s)
        }
    };
    let max_p = i32::from(MAX_PRECISION);
    if p > max_p {
        let int_digits = p - s;
        s = (max_p - int_digits).max(s.min(6));
        p = max_p;
    }
    s = s.clamp(0, i32::from(MAX_SCALE)).min(p);
    DataType::Numeric {
        precision: p.clamp(1, max_p) as u8,
        scale: s as u8,
    }
}

fn numeric_literal(text: &str) -> Option<Value> {
    let (int_part, frac) = text.split_once('.').unwrap_or((text, ""));
    let int_digits = int_part.trim_start_matches('0').len();
    let scale = frac.len();
    let precision = (int_digits + scale).max(1);
    if scale > usize::from(MAX_SCALE) || precision > usize::from(MAX_PRECISION) {
        return None;
    }
    let normal = format!(
        "{}.{}",
        if int_part.is_empty() { "0" } else { int_part },
        frac
    );
    let value: Decimal = normal.trim_end_matches('.').parse().ok()?;
    let mut value = value;
    value.rescale(scale as u32);
    Some(Value::Numeric {
        value,
        precision: precision as u8,
        scale: scale as u8,
    })
}

fn real_literal(text: &str) -> Option<f64> {
    text.parse::<f64>()
        .ok()
        .or_else(|| text.replace(".e", ".0e").replace(".E", ".0E").parse().ok())
}

/// The string type a node has when used inside an expression: DT_STR becomes DT_WSTR.
fn inner_string_type(ty: &DataType) -> DataType {
    match ty {
        DataType::Str { len, .. } => DataType::WStr { len: *len },
        other => other.clone(),
    }
}

impl<'a> Checker<'a> {
    pub(crate) fn snippet(&self, span: Span) -> Snippet {
        Snippet::new(self.src, span.start, span.end)
    }

    pub(crate) fn type_error(&self, span: Span, message: impl Into<String>) -> ExprError {
        ExprError::Type {
            message: message.into(),
            snippet: self.snippet(span),
        }
    }

    fn node(kind: TKind, ty: DataType, span: Span) -> TExpr {
        TExpr { kind, ty, span }
    }

    /// Folds a node whose operands are all constants into a constant.
    pub(crate) fn fold(&self, e: TExpr) -> Result<TExpr, ExprError> {
        let all_const = |xs: &[&TExpr]| xs.iter().all(|x| matches!(x.kind, TKind::Const(_)));
        let foldable = match &e.kind {
            TKind::Const(_) | TKind::Var(_) | TKind::Column(_) => false,
            // A time-only value given a date takes today's date when it runs.
            TKind::Convert(a) if a.ty.is_time_only() && !e.ty.is_time_only() && e.ty.is_date() => {
                false
            }
            TKind::Convert(a) | TKind::Neg(a) | TKind::Not(a) | TKind::BitNot(a) => all_const(&[a]),
            TKind::Arith(_, a, b)
            | TKind::Concat(a, b)
            | TKind::Compare(_, _, a, b)
            | TKind::Logic(_, a, b)
            | TKind::Bitwise(_, a, b) => all_const(&[a, b]),
            TKind::Cond(c, a, b) => all_const(&[c, a, b]),
            TKind::Call(f, args) => {
                f.is_pure() && args.iter().all(|a| matches!(a.kind, TKind::Const(_)))
            }
        };
        if !foldable {
            return Ok(e);
        }
        let v = eval(&e, &NoEnv).map_err(|err| err.with_snippet(self.snippet(e.span)))?;
        Ok(Self::node(TKind::Const(v), e.ty, e.span))
    }

    /// Wraps `e` in a conversion to `ty` unless it already has that type.
    pub(crate) fn convert(&self, e: TExpr, ty: &DataType) -> Result<TExpr, ExprError> {
        if e.ty == *ty {
            return Ok(e);
        }
        let span = e.span;
        self.fold(Self::node(TKind::Convert(Box::new(e)), ty.clone(), span))
    }

    /// Converts a DT_STR operand to DT_WSTR, as SSIS does for every string inside an expression.
    fn widen_string(&self, e: TExpr) -> Result<TExpr, ExprError> {
        let ty = inner_string_type(&e.ty);
        self.convert(e, &ty)
    }

    /// Types one node. The work of each kind lives in its own function so that this
    /// recursive dispatcher keeps a small stack frame (deep expressions recurse through it).
    pub(crate) fn check(&mut self, e: &Expr, ctx: Ctx) -> Result<TExpr, ExprError> {
        let span = e.span;
        match &e.kind {
            ExprKind::Var(v) => self.variable(v, span),
            ExprKind::Column { name, bracketed } => self.column(name, *bracketed, span),
            ExprKind::Unary(op, inner) => self.unary(*op, inner, span),
            ExprKind::Binary(op, l, r) => self.binary(*op, l, r, span),
            ExprKind::Cond(c, a, b) => self.cond(c, a, b, span),
            ExprKind::Cast(ty, inner) => self.cast(ty, inner, ctx, span),
            ExprKind::Call(name, args) => self.call(name, args, span),
            ExprKind::Assign(..) => Err(ExprError::Assignment {
                message: "an assignment can only stand at the top of an expression".to_string(),
                snippet: self.snippet(span),
            }),
            _ => self.literal(e, ctx),
        }
    }

    #[inline(never)]
    fn cast(
        &mut self,
        ty: &DataType,
        inner: &Expr,
        ctx: Ctx,
        span: Span,
    ) -> Result<TExpr, ExprError> {
        let operand = self.check(inner, Ctx::CastOperand)?;
        self.cast_node(ty, operand, ctx, span)
    }

    #[inline(never)]
    fn cast_node(
        &self,
        ty: &DataType,
        operand: TExpr,
        ctx: Ctx,
        span: Span,
    ) -> Result<TExpr, ExprError> {
        if !cast_allowed(&operand.ty, ty) {
            return Err(self.type_error(
                span,
                format!(
                    "cannot cast {} to {}: SSIS does not allow this conversion",
                    operand.ty.ssis_name(),
                    ty.ssis_name()
                ),
            ));
        }
        // Inside an expression a cast to DT_STR becomes a cast to DT_WSTR.
        let target = if ctx == Ctx::Root {
            ty.clone()
        } else {
            inner_string_type(ty)
        };
        let operand = if operand.ty.is_string() {
            self.widen_string(operand)?
        } else {
            operand
        };
        self.fold(Self::node(TKind::Convert(Box::new(operand)), target, span))
    }

    #[inline(never)]
    fn call(&mut self, name: &str, args: &[Expr], span: Span) -> Result<TExpr, ExprError> {
        let Some(func) = Func::from_name(name) else {
            return Err(ExprError::UnknownFunction {
                name: name.to_string(),
                snippet: self.snippet(span),
            });
        };
        let mut targs = Vec::with_capacity(args.len());
        for a in args {
            targs.push(self.check(a, Ctx::Inner)?);
        }
        self.call_node(func, targs, span)
    }

    #[inline(never)]
    fn call_node(&self, func: Func, targs: Vec<TExpr>, span: Span) -> Result<TExpr, ExprError> {
        let t = functions::check_call(self, func, targs, span)?;
        self.fold(t)
    }

    #[inline(never)]
    fn literal(&self, e: &Expr, ctx: Ctx) -> Result<TExpr, ExprError> {
        let span = e.span;
        let t = match &e.kind {
            ExprKind::Int {
                value,
                unsigned,
                long,
                hex,
            } => self.int_literal(*value, *unsigned, *long, *hex, false, span)?,
            ExprKind::Numeric(text) => {
                let v = numeric_literal(text).ok_or_else(|| {
                    self.type_error(
                        span,
                        format!(
                            "numeric literal {text} has more than {MAX_PRECISION} digits or more than {MAX_SCALE} decimals"
                        ),
                    )
                })?;
                Self::node(TKind::Const(v.clone()), v.data_type(), span)
            }
            ExprKind::Real(text, suffix) => {
                let f = real_literal(text)
                    .filter(|f| f.is_finite())
                    .ok_or_else(|| {
                        self.type_error(span, format!("real literal {text} is out of range"))
                    })?;
                let v = if *suffix == RealSuffix::F {
                    let g = f as f32;
                    if !g.is_finite() {
                        return Err(self.type_error(
                            span,
                            format!("real literal {text} is out of range for DT_R4"),
                        ));
                    }
                    Value::R4(g)
                } else {
                    Value::R8(f)
                };
                Self::node(TKind::Const(v.clone()), v.data_type(), span)
            }
            ExprKind::Str(s) => Self::node(
                TKind::Const(Value::WStr(s.clone())),
                DataType::WStr {
                    len: Some(s.chars().count() as u32),
                },
                span,
            ),
            ExprKind::Bool(b) => Self::node(TKind::Const(Value::Bool(*b)), DataType::Bool, span),
            ExprKind::Null(ty) => {
                if matches!(ty, DataType::Str { .. }) && ctx == Ctx::Inner {
                    return Err(self.type_error(
                        span,
                        "NULL(DT_STR, ...) can only be used at the root of an expression; inside an expression use NULL(DT_WSTR, ...) or cast it",
                    ));
                }
                let vty = match ty {
                    DataType::WStr { .. } => DataType::WStr { len: None },
                    DataType::Str { codepage, .. } => DataType::Str {
                        len: None,
                        codepage: *codepage,
                    },
                    other => other.clone(),
                };
                let ty = if ctx == Ctx::Root {
                    ty.clone()
                } else {
                    inner_string_type(ty)
                };
                let vty = if ctx == Ctx::Root {
                    vty
                } else {
                    inner_string_type(&vty)
                };
                Self::node(TKind::Const(Value::Null(vty)), ty, span)
            }
            _ => return Err(self.type_error(span, "internal error: not a literal")),
        };
        Ok(t)
    }

    fn int_literal(
        &self,
        value: u64,
        unsigned: bool,
        long: bool,
        hex: bool,
        negated: bool,
        span: Span,
    ) -> Result<TExpr, ExprError> {
        let wide = if negated {
            -i128::from(value)
        } else {
            i128::from(value)
        };
        let v = match (unsigned, long) {
            (false, false) => {
                if hex && !negated && value <= u64::from(u32::MAX) {
                    // A hex literal gives the bits of a DT_I4: 0xFFFFFFFF is -1.
                    Some(Value::I4(value as u32 as i32))
                } else {
                    i32::try_from(wide).ok().map(Value::I4)
                }
            }
            (true, false) => u32::try_from(wide).ok().map(Value::UI4),
            (false, true) => i64::try_from(wide).ok().map(Value::I8),
            (true, true) => u64::try_from(wide).ok().map(Value::UI8),
        };
        let v = v.ok_or_else(|| {
            let advice = match (unsigned, long) {
                (false, false) => "; add the L suffix for a DT_I8 literal",
                (true, false) => "; add the L suffix (UL) for a DT_UI8 literal",
                _ => "",
            };
            let ty = match (unsigned, long) {
                (false, false) => "DT_I4",
                (true, false) => "DT_UI4",
                (false, true) => "DT_I8",
                (true, true) => "DT_UI8",
            };
            self.type_error(
                span,
                format!(
                    "integer literal {}{value} does not fit {ty}{advice}",
                    if negated { "-" } else { "" }
                ),
            )
        })?;
        Ok(Self::node(TKind::Const(v.clone()), v.data_type(), span))
    }

    fn variable(&mut self, v: &VarRef, span: Span) -> Result<TExpr, ExprError> {
        let info = self
            .scope
            .lookup(v)
            .ok_or_else(|| ExprError::UnknownVariable {
                name: v.qualified(),
                snippet: self.snippet(span),
            })?;
        if info.ty == DataType::Object {
            return Err(self.type_error(
                span,
                format!(
                    "variable \"{}\" has type DT_OBJECT (object), which cannot be used in an expression",
                    v.qualified()
                ),
            ));
        }
        if !self.vars.contains(v) {
            self.vars.push(v.clone());
        }
        let t = Self::node(TKind::Var(info.slot), info.ty.clone(), span);
        self.widen_string(t)
    }

    #[inline(never)]
    fn column(&mut self, name: &str, bracketed: bool, span: Span) -> Result<TExpr, ExprError> {
        let Some(info) = self.scope.column(name) else {
            let message = if bracketed {
                format!(
                    "column reference [{name}] is not available here (expressions outside a data flow see only variables; write @[User::{name}] for a variable)"
                )
            } else {
                format!(
                    "unknown identifier \"{name}\": write a variable as @[User::{name}] (column references exist only in a data flow), or call a function with parentheses"
                )
            };
            return Err(ExprError::Syntax {
                message,
                snippet: self.snippet(span),
            });
        };
        if info.ty == DataType::Object {
            return Err(self.type_error(
                span,
                format!(
                    "column \"{name}\" has type DT_OBJECT, which cannot be used in an expression"
                ),
            ));
        }
        if !self.columns.iter().any(|(n, _)| n == name) {
            self.columns.push((name.to_string(), info.slot));
        }
        let t = Self::node(TKind::Column(info.slot), info.ty, span);
        self.widen_string(t)
    }

    #[inline(never)]
    fn unary(&mut self, op: UnaryOp, inner: &Expr, span: Span) -> Result<TExpr, ExprError> {
        if op == UnaryOp::Neg
            && let ExprKind::Int {
                value,
                unsigned: false,
                long,
                hex,
            } = inner.kind
        {
            // "-2147483648" is the smallest DT_I4, although 2147483648 alone does not fit.
            return self.int_literal(value, false, long, hex, true, span);
        }
        let e = self.check(inner, Ctx::Inner)?;
        self.unary_node(op, e, span)
    }

    #[inline(never)]
    fn unary_node(&self, op: UnaryOp, e: TExpr, span: Span) -> Result<TExpr, ExprError> {
        let ty = e.ty.clone();
        let kind = match op {
            UnaryOp::Neg => {
                if !ty.is_numeric() || ty.is_unsigned_integer() {
                    let advice = if ty.is_unsigned_integer() {
                        format!(
                            "; cast it to a signed type first, e.g. {}",
                            signed_for(&ty).cast_spec()
                        )
                    } else {
                        String::new()
                    };
                    return Err(self.type_error(
                        span,
                        format!(
                            "the negation operator \"-\" supports only signed numeric types, not {}{advice}",
                            ty.ssis_name()
                        ),
                    ));
                }
                TKind::Neg(Box::new(e))
            }
            UnaryOp::Not => {
                if ty != DataType::Bool {
                    return Err(self.type_error(
                        span,
                        format!(
                            "the logical not operator \"!\" requires a DT_BOOL operand, not {} (nothing converts to DT_BOOL implicitly; compare instead, e.g. x == 0)",
                            ty.ssis_name()
                        ),
                    ));
                }
                TKind::Not(Box::new(e))
            }
            UnaryOp::BitNot => {
                if !ty.is_integer() {
                    return Err(self.type_error(
                        span,
                        format!(
                            "the bitwise not operator \"~\" requires an integer operand, not {}",
                            ty.ssis_name()
                        ),
                    ));
                }
                TKind::BitNot(Box::new(e))
            }
        };
        self.fold(Self::node(kind, ty, span))
    }

    #[inline(never)]
    fn binary(&mut self, op: BinaryOp, l: &Expr, r: &Expr, span: Span) -> Result<TExpr, ExprError> {
        let l = self.check(l, Ctx::Inner)?;
        let r = self.check(r, Ctx::Inner)?;
        self.binary_node(op, l, r, span)
    }

    #[inline(never)]
    fn binary_node(
        &self,
        op: BinaryOp,
        l: TExpr,
        r: TExpr,
        span: Span,
    ) -> Result<TExpr, ExprError> {
        let (lt, rt) = (l.ty.clone(), r.ty.clone());
        let sym = op.symbol();
        let incompatible = |advice: String| {
            self.type_error(
                span,
                format!(
                    "the data types {} and {} are incompatible for the binary operator \"{sym}\"{advice}",
                    lt.ssis_name(),
                    rt.ssis_name()
                ),
            )
        };
        let node = match op {
            BinaryOp::And | BinaryOp::Or => {
                if lt != DataType::Bool || rt != DataType::Bool {
                    return Err(incompatible(format!(
                        "; the operands of \"{sym}\" must be DT_BOOL (nothing converts to DT_BOOL implicitly; use a comparison such as x != 0)"
                    )));
                }
                Self::node(
                    TKind::Logic(op, Box::new(l), Box::new(r)),
                    DataType::Bool,
                    span,
                )
            }
            BinaryOp::Add if lt.is_string() && rt.is_string() => {
                let len = match (&lt, &rt) {
                    (DataType::WStr { len: Some(a) }, DataType::WStr { len: Some(b) }) => {
                        Some(a.saturating_add(*b))
                    }
                    _ => None,
                };
                Self::node(
                    TKind::Concat(Box::new(l), Box::new(r)),
                    DataType::WStr { len },
                    span,
                )
            }
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod => {
                if !lt.is_numeric() || !rt.is_numeric() {
                    return Err(incompatible(arith_advice(op, &lt, &rt)));
                }
                let common = numeric_common(&lt, &rt).ok_or_else(|| incompatible(ui8_advice()))?;
                let ty = match common {
                    Common::Int(t) | Common::Real(t) => t,
                    Common::Cy => DataType::Cy,
                    Common::Decimal => {
                        let ls = lt.decimal_shape().unwrap_or((18, 0));
                        let rs = rt.decimal_shape().unwrap_or((18, 0));
                        decimal_result(op, ls, rs)
                    }
                };
                if op == BinaryOp::Mod && !ty.is_integer() {
                    return Err(self.type_error(
                        span,
                        format!(
                            "the operands of the modulo operator \"%\" must evaluate to signed or unsigned integer data types, not {} and {}",
                            lt.ssis_name(),
                            rt.ssis_name()
                        ),
                    ));
                }
                Self::node(TKind::Arith(op, Box::new(l), Box::new(r)), ty, span)
            }
            BinaryOp::BitAnd | BinaryOp::BitOr | BinaryOp::BitXor => {
                if !lt.is_integer() || !rt.is_integer() {
                    return Err(incompatible(format!(
                        "; the operands of \"{sym}\" must be integers"
                    )));
                }
                if lt.is_signed_integer() != rt.is_signed_integer() {
                    return Err(incompatible(format!(
                        "; the operands of \"{sym}\" must both be signed or both be unsigned integers: cast one, e.g. {}",
                        rt_signed_cast(&lt, &rt)
                    )));
                }
                let ty = widest_int(lt.is_signed_integer(), lt.int_width().max(rt.int_width()));
                Self::node(TKind::Bitwise(op, Box::new(l), Box::new(r)), ty, span)
            }
            BinaryOp::Eq
            | BinaryOp::Ne
            | BinaryOp::Lt
            | BinaryOp::Gt
            | BinaryOp::Le
            | BinaryOp::Ge => {
                let relational = !matches!(op, BinaryOp::Eq | BinaryOp::Ne);
                let domain = if lt.is_numeric() && rt.is_numeric() {
                    match numeric_common(&lt, &rt).ok_or_else(|| incompatible(ui8_advice()))? {
                        Common::Int(_) => Domain::Int,
                        Common::Real(_) => Domain::Real,
                        Common::Decimal | Common::Cy => Domain::Decimal,
                    }
                } else if lt.is_string() && rt.is_string() {
                    Domain::Str
                } else if lt.is_date() && rt.is_date() {
                    if lt.is_time_only() != rt.is_time_only() {
                        return Err(incompatible(
                            "; a time type (DT_DBTIME, DT_DBTIME2) cannot be compared with a date or date/time type: cast one side, e.g. (DT_DBTIME2, 7) on the date/time"
                                .to_string(),
                        ));
                    }
                    Domain::Date
                } else if lt == DataType::Bool && rt == DataType::Bool && !relational {
                    Domain::Bool
                } else if lt == DataType::Guid && rt == DataType::Guid {
                    Domain::Guid
                } else if matches!(lt, DataType::Bytes { .. })
                    && matches!(rt, DataType::Bytes { .. })
                {
                    Domain::Bytes
                } else if lt.is_blob() && rt.is_blob() && lt.ssis_name() == rt.ssis_name() {
                    if relational {
                        return Err(incompatible(format!(
                            "; {} supports only == and != (\">\", \"<\", \">=\" and \"<=\" do not take DT_TEXT, DT_NTEXT or DT_IMAGE)",
                            lt.ssis_name()
                        )));
                    }
                    if lt == DataType::Image {
                        Domain::Bytes
                    } else {
                        Domain::Text
                    }
                } else {
                    return Err(incompatible(compare_advice(&lt, &rt)));
                };
                Self::node(
                    TKind::Compare(op, domain, Box::new(l), Box::new(r)),
                    DataType::Bool,
                    span,
                )
            }
        };
        self.fold(node)
    }

    #[inline(never)]
    fn cond(&mut self, c: &Expr, a: &Expr, b: &Expr, span: Span) -> Result<TExpr, ExprError> {
        let c = self.check(c, Ctx::Inner)?;
        if c.ty != DataType::Bool {
            return Err(self.cond_type_error(&c));
        }
        let a = self.check(a, Ctx::Inner)?;
        let b = self.check(b, Ctx::Inner)?;
        self.cond_node(c, a, b, span)
    }

    #[inline(never)]
    fn cond_type_error(&self, c: &TExpr) -> ExprError {
        self.type_error(
            c.span,
            format!(
                "the condition of \"? :\" must be DT_BOOL, not {} (nothing converts to DT_BOOL implicitly)",
                c.ty.ssis_name()
            ),
        )
    }

    #[inline(never)]
    fn cond_node(&self, c: TExpr, a: TExpr, b: TExpr, span: Span) -> Result<TExpr, ExprError> {
        let (at, bt) = (a.ty.clone(), b.ty.clone());
        let ty = if at.is_string() && bt.is_string() {
            let len = match (&at, &bt) {
                (DataType::WStr { len: Some(x) }, DataType::WStr { len: Some(y) }) => {
                    Some(*x.max(y))
                }
                _ => None,
            };
            DataType::WStr { len }
        } else if at.is_numeric() && bt.is_numeric() {
            match numeric_common(&at, &bt) {
                Some(Common::Int(t)) | Some(Common::Real(t)) => t,
                Some(Common::Cy) => DataType::Cy,
                Some(Common::Decimal) => {
                    let (p1, s1) = at.decimal_shape().unwrap_or((18, 0));
                    let (p2, s2) = bt.decimal_shape().unwrap_or((18, 0));
                    let s = s1.max(s2);
                    DataType::Numeric {
                        precision: ((p1 - s1).max(p2 - s2) + s).min(MAX_PRECISION),
                        scale: s,
                    }
                }
                None => {
                    return Err(self.type_error(
                        span,
                        format!(
                            "the branches of \"? :\" have incompatible types {} and {}; {}",
                            at.ssis_name(),
                            bt.ssis_name(),
                            ui8_advice().trim_start_matches("; ")
                        ),
                    ));
                }
            }
        } else if at.is_date() && bt.is_date() {
            date_common(&at, &bt).ok_or_else(|| {
                self.type_error(
                    span,
                    format!(
                        "the branches of \"? :\" have incompatible types {} and {}: a time type cannot meet a date or date/time type; cast one branch",
                        at.ssis_name(),
                        bt.ssis_name()
                    ),
                )
            })?
        } else if let (DataType::Bytes { len: x }, DataType::Bytes { len: y }) = (&at, &bt) {
            DataType::Bytes {
                len: x.zip(*y).map(|(x, y)| x.max(y)),
            }
        } else if at == bt || (at.is_blob() && at.ssis_name() == bt.ssis_name()) {
            // The same type; DT_TEXT values of two code pages meet in the first's.
            at.clone()
        } else {
            return Err(self.type_error(
                span,
                format!(
                    "the branches of \"? :\" have incompatible types {} and {}; cast one branch to the other's type, e.g. {}",
                    at.ssis_name(),
                    bt.ssis_name(),
                    if at.is_string() || bt.is_string() {
                        let other = if at.is_string() { &bt } else { &at };
                        format!("(DT_WSTR, {})", other.display_len())
                    } else {
                        at.cast_spec()
                    }
                ),
            ));
        };
        let conv_ty = |t: &DataType| -> DataType {
            match (&ty, t) {
                (DataType::WStr { .. }, DataType::WStr { len }) => DataType::WStr { len: *len },
                _ => ty.clone(),
            }
        };
        let a_ty = conv_ty(&at);
        let b_ty = conv_ty(&bt);
        let a = self.convert(a, &a_ty)?;
        let b = self.convert(b, &b_ty)?;
        self.fold(Self::node(
            TKind::Cond(Box::new(c), Box::new(a), Box::new(b)),
            ty,
            span,
        ))
    }
}

/// The type two different date or time types meet in, for comparisons and `? :` (SSIS's
/// order: DT_DBTIMESTAMPOFFSET, then DT_DBTIMESTAMP2, then DT_DBTIME2, else DT_DBTIMESTAMP),
/// keeping the larger number of fractional digits. `None` when a time type meets a type
/// with a date, which SSIS refuses.
pub(crate) fn date_common(a: &DataType, b: &DataType) -> Option<DataType> {
    if a == b {
        return Some(a.clone());
    }
    if a.is_time_only() != b.is_time_only() {
        return None;
    }
    let scale = a.fraction_digits().max(b.fraction_digits());
    let either = |f: fn(&DataType) -> bool| f(a) || f(b);
    Some(
        if either(|t| matches!(t, DataType::DbTimestampOffset { .. })) {
            DataType::DbTimestampOffset { scale }
        } else if either(|t| matches!(t, DataType::DbTimestamp2 { .. })) {
            DataType::DbTimestamp2 { scale }
        } else if either(|t| matches!(t, DataType::DbTime2 { .. })) {
            DataType::DbTime2 { scale }
        } else {
            DataType::DbTimestamp
        },
    )
}

fn signed_for(ty: &DataType) -> DataType {
    match ty {
        DataType::UI1 => DataType::I2,
        DataType::UI2 => DataType::I4,
        _ => DataType::I8,
    }
}

fn rt_signed_cast(l: &DataType, r: &DataType) -> String {
    let unsigned = if l.is_unsigned_integer() { l } else { r };
    signed_for(unsigned).cast_spec()
}

fn ui8_advice() -> String {
    "; combining DT_UI8 with a signed integer requires an explicit cast, e.g. (DT_I8) or (DT_UI8)"
        .to_string()
}

fn arith_advice(op: BinaryOp, l: &DataType, r: &DataType) -> String {
    let generic = "; the operand types cannot be implicitly cast into compatible types, so one or both operands need an explicit cast";
    if op == BinaryOp::Add && (l.is_string() || r.is_string()) {
        let other = if l.is_string() { r } else { l };
        return format!(
            "{generic}: to concatenate, cast the {} operand with (DT_WSTR, {})",
            other.ssis_name(),
            other.display_len()
        );
    }
    if l.is_date() || r.is_date() {
        return format!("{generic}; use DATEADD or DATEDIFF for date arithmetic");
    }
    if *l == DataType::Bool || *r == DataType::Bool {
        return format!("{generic}, e.g. (DT_I4) on the DT_BOOL operand");
    }
    if l.is_string() || r.is_string() {
        let num = if l.is_string() { r } else { l };
        return format!("{generic}, e.g. {} on the string", num.cast_spec());
    }
    generic.to_string()
}

fn compare_advice(l: &DataType, r: &DataType) -> String {
    let generic = "; the operand types cannot be implicitly cast into compatible types, so one or both operands need an explicit cast";
    if l.is_string() != r.is_string() {
        let other = if l.is_string() { r } else { l };
        return format!(
            "{generic}, e.g. {} on the string or (DT_WSTR, {}) on the {}",
            other.cast_spec(),
            other.display_len(),
            other.ssis_name()
        );
    }
    if *l == DataType::Bool && *r == DataType::Bool {
        return "; DT_BOOL values can only be compared with == and !=".to_string();
    }
    generic.to_string()
}
