//! The built-in functions: their argument and result types (checked at compile time) and
//! their evaluation, with SSIS's NULL handling and documented errors.

use rust_decimal::{Decimal, RoundingStrategy};

use crate::check::{Checker, TExpr, TKind};
use crate::datatype::DataType;
use crate::dates::{self, DatePart};
use crate::error::ExprError;
use crate::eval::{Env, eval};
use crate::lexer::Span;
use crate::value::{MAX_STRING_CHARS, Num, Value, cast_allowed, datetime_as, fit_decimal};

/// A built-in function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Func {
    Len,
    Substring,
    Left,
    Right,
    Upper,
    Lower,
    Trim,
    LTrim,
    RTrim,
    Replace,
    FindString,
    Reverse,
    Replicate,
    Token,
    TokenCount,
    Codepoint,
    Hex,
    Abs,
    Ceiling,
    Floor,
    Round,
    Power,
    Sqrt,
    Square,
    Exp,
    Ln,
    Log,
    Sign,
    GetDate,
    GetUtcDate,
    DateAdd,
    DateDiff,
    DatePart,
    Day,
    Month,
    Year,
    IsNull,
    ReplaceNull,
}

impl Func {
    /// Looks a function up by its (case-insensitive) name.
    pub fn from_name(name: &str) -> Option<Func> {
        Some(match name.to_ascii_uppercase().as_str() {
            "LEN" => Func::Len,
            "SUBSTRING" => Func::Substring,
            "LEFT" => Func::Left,
            "RIGHT" => Func::Right,
            "UPPER" => Func::Upper,
            "LOWER" => Func::Lower,
            "TRIM" => Func::Trim,
            "LTRIM" => Func::LTrim,
            "RTRIM" => Func::RTrim,
            "REPLACE" => Func::Replace,
            "FINDSTRING" => Func::FindString,
            "REVERSE" => Func::Reverse,
            "REPLICATE" => Func::Replicate,
            "TOKEN" => Func::Token,
            "TOKENCOUNT" => Func::TokenCount,
            "CODEPOINT" => Func::Codepoint,
            "HEX" => Func::Hex,
            "ABS" => Func::Abs,
            "CEILING" => Func::Ceiling,
            "FLOOR" => Func::Floor,
            "ROUND" => Func::Round,
            "POWER" => Func::Power,
            "SQRT" => Func::Sqrt,
            "SQUARE" => Func::Square,
            "EXP" => Func::Exp,
            "LN" => Func::Ln,
            "LOG" => Func::Log,
            "SIGN" => Func::Sign,
            "GETDATE" => Func::GetDate,
            "GETUTCDATE" => Func::GetUtcDate,
            "DATEADD" => Func::DateAdd,
            "DATEDIFF" => Func::DateDiff,
            "DATEPART" => Func::DatePart,
            "DAY" => Func::Day,
            "MONTH" => Func::Month,
            "YEAR" => Func::Year,
            "ISNULL" => Func::IsNull,
            "REPLACENULL" => Func::ReplaceNull,
            _ => return None,
        })
    }

    /// The function's name as SSIS writes it.
    pub fn name(self) -> &'static str {
        match self {
            Func::Len => "LEN",
            Func::Substring => "SUBSTRING",
            Func::Left => "LEFT",
            Func::Right => "RIGHT",
            Func::Upper => "UPPER",
            Func::Lower => "LOWER",
            Func::Trim => "TRIM",
            Func::LTrim => "LTRIM",
            Func::RTrim => "RTRIM",
            Func::Replace => "REPLACE",
            Func::FindString => "FINDSTRING",
            Func::Reverse => "REVERSE",
            Func::Replicate => "REPLICATE",
            Func::Token => "TOKEN",
            Func::TokenCount => "TOKENCOUNT",
            Func::Codepoint => "CODEPOINT",
            Func::Hex => "HEX",
            Func::Abs => "ABS",
            Func::Ceiling => "CEILING",
            Func::Floor => "FLOOR",
            Func::Round => "ROUND",
            Func::Power => "POWER",
            Func::Sqrt => "SQRT",
            Func::Square => "SQUARE",
            Func::Exp => "EXP",
            Func::Ln => "LN",
            Func::Log => "LOG",
            Func::Sign => "SIGN",
            Func::GetDate => "GETDATE",
            Func::GetUtcDate => "GETUTCDATE",
            Func::DateAdd => "DATEADD",
            Func::DateDiff => "DATEDIFF",
            Func::DatePart => "DATEPART",
            Func::Day => "DAY",
            Func::Month => "MONTH",
            Func::Year => "YEAR",
            Func::IsNull => "ISNULL",
            Func::ReplaceNull => "REPLACENULL",
        }
    }

    /// False for the clock functions, which must not be folded at compile time.
    pub fn is_pure(self) -> bool {
        !matches!(self, Func::GetDate | Func::GetUtcDate)
    }

    fn arity(self) -> usize {
        match self {
            Func::GetDate | Func::GetUtcDate => 0,
            Func::Len
            | Func::Upper
            | Func::Lower
            | Func::Trim
            | Func::LTrim
            | Func::RTrim
            | Func::Reverse
            | Func::Codepoint
            | Func::Hex
            | Func::Abs
            | Func::Ceiling
            | Func::Floor
            | Func::Sqrt
            | Func::Square
            | Func::Exp
            | Func::Ln
            | Func::Log
            | Func::Sign
            | Func::Day
            | Func::Month
            | Func::Year
            | Func::IsNull => 1,
            Func::Left
            | Func::Right
            | Func::Replicate
            | Func::TokenCount
            | Func::Round
            | Func::Power
            | Func::DatePart
            | Func::ReplaceNull => 2,
            Func::Substring
            | Func::Replace
            | Func::FindString
            | Func::Token
            | Func::DateAdd
            | Func::DateDiff => 3,
        }
    }
}

const ORDINALS: [&str; 3] = ["first", "second", "third"];

fn ordinal(i: usize) -> &'static str {
    ORDINALS.get(i).copied().unwrap_or("next")
}

/// Checks the arguments of a call and gives the typed call node.
pub(crate) fn check_call(
    ck: &Checker<'_>,
    func: Func,
    args: Vec<TExpr>,
    span: Span,
) -> Result<TExpr, ExprError> {
    let name = func.name();
    if args.len() != func.arity() {
        let n = func.arity();
        return Err(ck.type_error(
            span,
            format!(
                "{name} takes {n} argument{}, not {}",
                if n == 1 { "" } else { "s" },
                args.len()
            ),
        ));
    }
    let arg_error = |i: usize, a: &TExpr, want: &str, advice: String| {
        ck.type_error(
            a.span,
            format!(
                "the {} argument of {name} must be {want}, not {}{advice}",
                ordinal(i),
                a.ty.ssis_name()
            ),
        )
    };
    let mut out = Vec::with_capacity(args.len());
    // What each argument position needs.
    for (i, a) in args.into_iter().enumerate() {
        let need = arg_kind(func, i);
        let a = match need {
            Arg::Str => {
                if !a.ty.is_string() {
                    let advice = format!("; cast it with (DT_WSTR, {})", a.ty.display_len());
                    return Err(arg_error(i, &a, "a string (DT_WSTR)", advice));
                }
                let ty = match &a.ty {
                    DataType::Str { len, .. } => DataType::WStr { len: *len },
                    other => other.clone(),
                };
                ck.convert(a, &ty)?
            }
            Arg::Int => {
                if !a.ty.is_integer() {
                    return Err(arg_error(
                        i,
                        &a,
                        "an integer",
                        " ; cast it with (DT_I4)".replace(" ;", ";"),
                    ));
                }
                a
            }
            Arg::Num => {
                if !a.ty.is_numeric() {
                    return Err(arg_error(i, &a, "numeric", String::new()));
                }
                a
            }
            Arg::Date => {
                if matches!(func, Func::Day | Func::Month | Func::Year)
                    && matches!(
                        a.ty,
                        DataType::DbTimestamp2 { .. } | DataType::DbTimestampOffset { .. }
                    )
                    && matches!(a.kind, TKind::Const(_))
                {
                    // Documented on the DAY, MONTH and YEAR pages.
                    return Err(ck.type_error(
                        a.span,
                        format!(
                            "{name} does not accept a date literal cast to {}; use DATEPART(\"{}\", ...) or cast the literal to DT_DBTIMESTAMP",
                            a.ty.ssis_name(),
                            name.to_ascii_lowercase()
                        ),
                    ));
                }
                if a.ty.is_string()
                    || (a.ty.is_date()
                        && !matches!(
                            a.ty,
                            DataType::DbTimestamp | DataType::DbDate | DataType::Date
                        ))
                {
                    // "an expression that returns a valid date or a string in date format";
                    // the date functions compute in DT_DBTIMESTAMP (an offset value in UTC,
                    // a time-only value on today's date).
                    ck.convert(a, &DataType::DbTimestamp)?
                } else if !a.ty.is_date() {
                    return Err(arg_error(
                        i,
                        &a,
                        "a date",
                        "; cast it with (DT_DBTIMESTAMP)".to_string(),
                    ));
                } else {
                    a
                }
            }
            Arg::Part => {
                if !a.ty.is_string() {
                    return Err(arg_error(
                        i,
                        &a,
                        "a date part name in quotation marks, such as \"dd\"",
                        String::new(),
                    ));
                }
                if let TKind::Const(Value::WStr(s)) = &a.kind
                    && DatePart::parse(s).is_none()
                {
                    return Err(ck.type_error(
                        a.span,
                        format!(
                            "{name}: \"{s}\" is not a date part; use one of {}",
                            dates::DATEPART_NAMES
                        ),
                    ));
                }
                a
            }
            Arg::Any => {
                if a.ty == DataType::Object {
                    return Err(arg_error(i, &a, "a value", String::new()));
                }
                if func == Func::ReplaceNull && a.ty.is_blob() {
                    return Err(arg_error(
                        i,
                        &a,
                        "a value of a type other than DT_TEXT, DT_NTEXT or DT_IMAGE",
                        format!(
                            "; cast it first, e.g. {}",
                            DataType::WStr { len: Some(4000) }.cast_spec()
                        ),
                    ));
                }
                let ty = match &a.ty {
                    DataType::Str { len, .. } => DataType::WStr { len: *len },
                    other => other.clone(),
                };
                ck.convert(a, &ty)?
            }
        };
        out.push(a);
    }
    let first = out.first().map(|a| a.ty.clone());
    let ty = match func {
        Func::Len
        | Func::FindString
        | Func::TokenCount
        | Func::Sign
        | Func::DateDiff
        | Func::DatePart
        | Func::Day
        | Func::Month
        | Func::Year => DataType::I4,
        Func::Codepoint => DataType::UI2,
        Func::Power | Func::Sqrt | Func::Square | Func::Exp | Func::Ln | Func::Log => DataType::R8,
        Func::GetDate | Func::GetUtcDate | Func::DateAdd => DataType::DbTimestamp,
        Func::IsNull => DataType::Bool,
        Func::Abs | Func::Ceiling | Func::Floor | Func::Round => first.unwrap_or(DataType::R8),
        Func::ReplaceNull => {
            let (a, b) = (&out[0].ty, &out[1].ty);
            if !(a == b
                || (a.is_string() && b.is_string())
                || (a.is_numeric() && b.is_numeric())
                || cast_allowed(b, a))
            {
                return Err(ck.type_error(
                    span,
                    format!(
                        "REPLACENULL cannot convert its second argument ({}) to the type of the first ({})",
                        b.ssis_name(),
                        a.ssis_name()
                    ),
                ));
            }
            match a {
                DataType::WStr { .. } => DataType::WStr { len: None },
                other => other.clone(),
            }
        }
        Func::Upper | Func::Lower | Func::Trim | Func::LTrim | Func::RTrim | Func::Reverse => {
            match first {
                Some(DataType::WStr { len }) => DataType::WStr { len },
                _ => DataType::WStr { len: None },
            }
        }
        Func::Hex => DataType::WStr { len: Some(16) },
        _ => DataType::WStr { len: None },
    };
    Ok(TExpr {
        kind: TKind::Call(func, out),
        ty,
        span,
    })
}

enum Arg {
    Str,
    Int,
    Num,
    Date,
    Part,
    Any,
}

fn arg_kind(func: Func, i: usize) -> Arg {
    match (func, i) {
        (
            Func::Len
            | Func::Upper
            | Func::Lower
            | Func::Trim
            | Func::LTrim
            | Func::RTrim
            | Func::Reverse
            | Func::Codepoint
            | Func::Replace
            | Func::TokenCount
            | Func::Substring
            | Func::Left
            | Func::Right
            | Func::Replicate
            | Func::FindString
            | Func::Token,
            0,
        ) => Arg::Str,
        (Func::Replace, _) | (Func::TokenCount, _) => Arg::Str,
        (Func::FindString | Func::Token, 1) => Arg::Str,
        (
            Func::Substring
            | Func::Left
            | Func::Right
            | Func::Replicate
            | Func::FindString
            | Func::Token,
            _,
        ) => Arg::Int,
        (Func::Hex, _) => Arg::Int,
        (Func::Round, 1) => Arg::Int,
        (
            Func::Abs
            | Func::Ceiling
            | Func::Floor
            | Func::Round
            | Func::Power
            | Func::Sqrt
            | Func::Square
            | Func::Exp
            | Func::Ln
            | Func::Log
            | Func::Sign,
            _,
        ) => Arg::Num,
        (Func::DateAdd | Func::DateDiff | Func::DatePart, 0) => Arg::Part,
        (Func::DateAdd, 1) => Arg::Int,
        (
            Func::DateAdd | Func::DateDiff | Func::DatePart | Func::Day | Func::Month | Func::Year,
            _,
        ) => Arg::Date,
        _ => Arg::Any,
    }
}

fn err(func: Func, message: impl std::fmt::Display) -> ExprError {
    ExprError::eval(format!("{}: {message}", func.name()))
}

fn int_arg(v: &Value) -> i128 {
    match v.as_num() {
        Some(Num::Int(i)) => i,
        _ => 0,
    }
}

fn str_arg(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn check_len(func: Func, chars: usize) -> Result<(), ExprError> {
    if chars > MAX_STRING_CHARS {
        return Err(err(
            func,
            format!(
                "the result would be {chars} characters, more than the limit of {MAX_STRING_CHARS}"
            ),
        ));
    }
    Ok(())
}

fn date_arg(v: &Value) -> Option<jiff::civil::DateTime> {
    match v {
        Value::DbTimestamp(d) | Value::Date(d) => Some(*d),
        Value::DbDate(d) => Some(d.to_datetime(jiff::civil::Time::midnight())),
        _ => None,
    }
}

fn part_arg(func: Func, v: &Value) -> Result<DatePart, ExprError> {
    let s = str_arg(v);
    DatePart::parse(s).ok_or_else(|| DatePart::unknown(func.name(), s))
}

fn i4(func: Func, n: i128) -> Result<Value, ExprError> {
    i32::try_from(n)
        .map(Value::I4)
        .map_err(|_| err(func, format!("the result {n} overflows DT_I4")))
}

fn real(func: Func, f: f64) -> Result<Value, ExprError> {
    if f.is_finite() {
        Ok(Value::R8(f))
    } else {
        Err(err(func, "the result is not a finite real number"))
    }
}

/// Splits like SSIS's TOKEN: any delimiter character separates, empty tokens are skipped.
fn tokens<'s>(s: &'s str, delims: &str) -> impl Iterator<Item = &'s str> {
    let delims: Vec<char> = delims.chars().collect();
    s.split(move |c: char| delims.contains(&c))
        .filter(|t| !t.is_empty())
}

fn with_decimal(v: &Value, f: impl Fn(Decimal) -> Decimal) -> Option<Value> {
    Some(match v {
        Value::Numeric {
            value,
            precision,
            scale,
        } => Value::Numeric {
            value: fit_decimal(f(*value), *precision, *scale)?,
            precision: *precision,
            scale: *scale,
        },
        Value::Decimal { value, scale } => Value::Decimal {
            value: fit_decimal(f(*value), 29, *scale)?,
            scale: *scale,
        },
        Value::Cy(units) => Value::Cy(crate::binary::decimal_to_cy(f(crate::binary::cy_decimal(
            *units,
        )))?),
        _ => return None,
    })
}

fn with_real(v: &Value, f: impl Fn(f64) -> f64) -> Option<Value> {
    Some(match v {
        Value::R4(x) => Value::R4(f(f64::from(*x)) as f32),
        Value::R8(x) => Value::R8(f(*x)),
        _ => return None,
    })
}

fn now(utc: bool) -> jiff::civil::DateTime {
    if utc {
        jiff::Timestamp::now()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .datetime()
    } else {
        jiff::Zoned::now().datetime()
    }
}

/// Evaluates a call.
#[inline(never)]
pub(crate) fn eval_call(
    func: Func,
    args: &[TExpr],
    ty: &DataType,
    env: &dyn Env,
) -> Result<Value, ExprError> {
    let mut vals = Vec::with_capacity(args.len());
    for a in args {
        vals.push(eval(a, env)?);
    }
    apply(func, vals, ty)
}

/// Applies a function to evaluated arguments.
#[inline(never)]
pub(crate) fn apply(func: Func, mut vals: Vec<Value>, ty: &DataType) -> Result<Value, ExprError> {
    // NULL handling that differs from plain propagation.
    match func {
        Func::IsNull => return Ok(Value::Bool(vals[0].is_null())),
        Func::ReplaceNull => {
            return if vals[0].is_null() {
                if vals[1].is_null() {
                    Ok(Value::Null(ty.clone()))
                } else {
                    vals[1].cast_to(ty)
                }
            } else {
                Ok(vals.swap_remove(0))
            };
        }
        Func::TokenCount if vals[0].is_null() => return Ok(Value::I4(0)),
        _ => {}
    }
    if vals.iter().any(Value::is_null) {
        return Ok(Value::Null(ty.clone()));
    }
    let no_arg = Value::Null(DataType::I4);
    let v0 = vals.first().unwrap_or(&no_arg);
    match func {
        Func::GetDate | Func::GetUtcDate => Ok(datetime_as(
            now(func == Func::GetUtcDate),
            &DataType::DbTimestamp,
        )),
        Func::Len => i4(func, str_arg(v0).chars().count() as i128),
        Func::Substring => {
            let (pos, len) = (int_arg(&vals[1]), int_arg(&vals[2]));
            if pos < 1 {
                return Err(err(
                    func,
                    format!("the start position must be greater than 0, not {pos}"),
                ));
            }
            if len < 0 {
                return Err(err(
                    func,
                    format!("the length must not be negative, not {len}"),
                ));
            }
            let skip = usize::try_from(pos - 1).unwrap_or(usize::MAX);
            let take = usize::try_from(len).unwrap_or(usize::MAX);
            Ok(Value::WStr(
                str_arg(v0).chars().skip(skip).take(take).collect(),
            ))
        }
        Func::Left | Func::Right => {
            let n = int_arg(&vals[1]);
            if n < 0 {
                return Err(err(
                    func,
                    format!("the number of characters must not be negative, not {n}"),
                ));
            }
            let s = str_arg(v0);
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            if func == Func::Left {
                Ok(Value::WStr(s.chars().take(n).collect()))
            } else {
                let count = s.chars().count();
                Ok(Value::WStr(
                    s.chars().skip(count.saturating_sub(n)).collect(),
                ))
            }
        }
        Func::Upper => Ok(Value::WStr(str_arg(v0).to_uppercase())),
        Func::Lower => Ok(Value::WStr(str_arg(v0).to_lowercase())),
        // TRIM removes spaces only, not tabs or line feeds.
        Func::Trim => Ok(Value::WStr(str_arg(v0).trim_matches(' ').to_string())),
        Func::LTrim => Ok(Value::WStr(str_arg(v0).trim_start_matches(' ').to_string())),
        Func::RTrim => Ok(Value::WStr(str_arg(v0).trim_end_matches(' ').to_string())),
        Func::Reverse => Ok(Value::WStr(str_arg(v0).chars().rev().collect())),
        Func::Replace => {
            let (s, from, to) = (str_arg(v0), str_arg(&vals[1]), str_arg(&vals[2]));
            if from.is_empty() {
                return Err(err(
                    func,
                    "the length of the search string must not be zero",
                ));
            }
            let count = s.matches(from).count();
            let len = s.chars().count() + count * to.chars().count();
            check_len(func, len.saturating_sub(count * from.chars().count()))?;
            Ok(Value::WStr(s.replace(from, to)))
        }
        Func::FindString => {
            let (s, needle, occ) = (str_arg(v0), str_arg(&vals[1]), int_arg(&vals[2]));
            if occ < 1 {
                return Err(err(
                    func,
                    format!("the occurrence must be an integer greater than 0, not {occ}"),
                ));
            }
            if needle.is_empty() {
                return Ok(Value::I4(0));
            }
            let mut found = 0i128;
            for (byte, _) in s.char_indices() {
                if s[byte..].starts_with(needle) {
                    found += 1;
                    if found == occ {
                        return i4(func, s[..byte].chars().count() as i128 + 1);
                    }
                }
            }
            Ok(Value::I4(0))
        }
        Func::Replicate => {
            let (s, n) = (str_arg(v0), int_arg(&vals[1]));
            if n < 0 {
                return Err(err(
                    func,
                    format!("the number of times must not be negative, not {n}"),
                ));
            }
            let chars = s.chars().count();
            let total = (chars as u128).saturating_mul(n as u128);
            check_len(func, usize::try_from(total).unwrap_or(usize::MAX))?;
            Ok(Value::WStr(s.repeat(n as usize)))
        }
        Func::Token => {
            let occ = int_arg(&vals[2]);
            if occ < 1 {
                return Err(err(
                    func,
                    format!("the occurrence must be greater than 0, not {occ}"),
                ));
            }
            let skip = usize::try_from(occ - 1).unwrap_or(usize::MAX);
            let t = tokens(str_arg(v0), str_arg(&vals[1]))
                .nth(skip)
                .unwrap_or("");
            Ok(Value::WStr(t.to_string()))
        }
        Func::TokenCount => i4(func, tokens(str_arg(v0), str_arg(&vals[1])).count() as i128),
        Func::Codepoint => {
            let mut buf = [0u16; 2];
            Ok(match str_arg(v0).chars().next() {
                Some(c) => Value::UI2(c.encode_utf16(&mut buf)[0]),
                None => Value::Null(DataType::UI2),
            })
        }
        Func::Hex => {
            let text = match v0 {
                Value::I1(x) => format!("{:X}", *x as u8),
                Value::I2(x) => format!("{:X}", *x as u16),
                Value::I4(x) => format!("{:X}", *x as u32),
                Value::I8(x) => format!("{:X}", *x as u64),
                Value::UI1(x) => format!("{x:X}"),
                Value::UI2(x) => format!("{x:X}"),
                Value::UI4(x) => format!("{x:X}"),
                Value::UI8(x) => format!("{x:X}"),
                _ => return Err(err(func, "the argument must be an integer")),
            };
            Ok(Value::WStr(text))
        }
        Func::Abs => {
            let over = || {
                err(
                    func,
                    format!("the absolute value of {v0} overflows {}", ty.ssis_name()),
                )
            };
            Ok(match v0 {
                Value::I1(x) => Value::I1(x.checked_abs().ok_or_else(over)?),
                Value::I2(x) => Value::I2(x.checked_abs().ok_or_else(over)?),
                Value::I4(x) => Value::I4(x.checked_abs().ok_or_else(over)?),
                Value::I8(x) => Value::I8(x.checked_abs().ok_or_else(over)?),
                Value::R4(x) => Value::R4(x.abs()),
                Value::R8(x) => Value::R8(x.abs()),
                Value::Numeric { .. } | Value::Decimal { .. } => {
                    with_decimal(v0, |d| d.abs()).ok_or_else(over)?
                }
                Value::Cy(x) => Value::Cy(x.checked_abs().ok_or_else(over)?),
                other => other.clone(),
            })
        }
        Func::Ceiling | Func::Floor => {
            let up = func == Func::Ceiling;
            if let Some(v) = with_real(v0, |x| if up { x.ceil() } else { x.floor() }) {
                return Ok(v);
            }
            if v0.data_type().is_decimal() || v0.data_type() == DataType::Cy {
                return with_decimal(v0, |d| if up { d.ceil() } else { d.floor() })
                    .ok_or_else(|| err(func, "the result overflows its type"));
            }
            Ok(v0.clone())
        }
        Func::Round => {
            let len = int_arg(&vals[1]);
            if len < 0 {
                return Err(err(
                    func,
                    format!(
                        "the length argument must evaluate to a positive integer or zero, not {len}"
                    ),
                ));
            }
            let len = u32::try_from(len).unwrap_or(u32::MAX);
            if let Some(v) = with_real(v0, |x| {
                if len > 15 {
                    return x;
                }
                let m = 10f64.powi(len as i32);
                let r = (x * m).round() / m;
                if r.is_finite() { r } else { x }
            }) {
                return Ok(v);
            }
            if v0.data_type().is_decimal() || v0.data_type() == DataType::Cy {
                return with_decimal(v0, |d| {
                    d.round_dp_with_strategy(len.min(28), RoundingStrategy::MidpointAwayFromZero)
                })
                .ok_or_else(|| err(func, "the result overflows its type"));
            }
            Ok(v0.clone())
        }
        Func::Power => {
            let (a, b) = (num_f64(v0), num_f64(&vals[1]));
            if a == 0.0 && b < 0.0 {
                return Err(err(func, "zero cannot be raised to a negative power"));
            }
            let r = a.powf(b);
            if r.is_nan() {
                return Err(err(func, format!("{a} raised to {b} is not a real number")));
            }
            real(func, r)
        }
        Func::Sqrt => {
            let x = num_f64(v0);
            if x < 0.0 {
                return Err(err(
                    func,
                    format!("the argument must not be negative, not {v0}"),
                ));
            }
            real(func, x.sqrt())
        }
        Func::Square => {
            let x = num_f64(v0);
            real(func, x * x)
        }
        Func::Exp => real(func, num_f64(v0).exp()),
        Func::Ln | Func::Log => {
            let x = num_f64(v0);
            // The logarithm of zero or a negative number is NULL, not an error.
            if x <= 0.0 {
                return Ok(Value::Null(DataType::R8));
            }
            real(func, if func == Func::Ln { x.ln() } else { x.log10() })
        }
        Func::Sign => Ok(Value::I4(match v0.as_num() {
            Some(Num::Int(i)) => i.signum() as i32,
            Some(Num::Real(f)) => {
                if f > 0.0 {
                    1
                } else if f < 0.0 {
                    -1
                } else {
                    0
                }
            }
            Some(Num::Dec(d)) => {
                if d.is_zero() {
                    0
                } else if d.is_sign_negative() {
                    -1
                } else {
                    1
                }
            }
            None => 0,
        })),
        Func::DateAdd => {
            let part = part_arg(func, v0)?;
            let n = i64::try_from(int_arg(&vals[1]))
                .map_err(|_| err(func, "the number is too large"))?;
            let d =
                date_arg(&vals[2]).ok_or_else(|| err(func, "the third argument is not a date"))?;
            Ok(Value::DbTimestamp(dates::dateadd(part, n, &d)?))
        }
        Func::DateDiff => {
            let part = part_arg(func, v0)?;
            let a = date_arg(&vals[1]).ok_or_else(|| err(func, "the start date is not a date"))?;
            let b = date_arg(&vals[2]).ok_or_else(|| err(func, "the end date is not a date"))?;
            i4(func, i128::from(dates::datediff(part, &a, &b)))
        }
        Func::DatePart => {
            let part = part_arg(func, v0)?;
            let d =
                date_arg(&vals[1]).ok_or_else(|| err(func, "the second argument is not a date"))?;
            i4(func, i128::from(dates::datepart(part, &d)))
        }
        Func::Day | Func::Month | Func::Year => {
            let d = date_arg(v0).ok_or_else(|| err(func, "the argument is not a date"))?;
            let part = match func {
                Func::Day => DatePart::Day,
                Func::Month => DatePart::Month,
                _ => DatePart::Year,
            };
            i4(func, i128::from(dates::datepart(part, &d)))
        }
        Func::IsNull | Func::ReplaceNull => Ok(v0.clone()),
    }
}

fn num_f64(v: &Value) -> f64 {
    v.as_num().map_or(f64::NAN, Num::as_f64)
}
