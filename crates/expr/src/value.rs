//! `Value`: one typed SSIS value, its text and JSON forms, and the cast rules between types.
//!
//! Text forms (decided here, documented in the crate README): dates print as
//! `yyyy-mm-dd hh:mm:ss` with `.fff` only when the milliseconds are not zero; the types with
//! fractional-second digits print exactly that many; booleans cast to a string give
//! `True` / `False`; reals print in their shortest round-trip form, with an exponent
//! (`1E+20`) outside `1e-5 ..< 1e15`; binary values print as lowercase hexadecimal, GUIDs in
//! braces, currency without trailing zeros.

use std::fmt;

use jiff::civil::{Date, DateTime, Time};
use rust_decimal::{Decimal, RoundingStrategy};

use crate::binary;
use crate::datatype::{DECIMAL_PRECISION, DataType, MAX_SCALE};
use crate::error::ExprError;
use crate::temporal;

/// One value of an SSIS type, or a typed NULL.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null(DataType),
    Bool(bool),
    I1(i8),
    I2(i16),
    I4(i32),
    I8(i64),
    UI1(u8),
    UI2(u16),
    UI4(u32),
    UI8(u64),
    R4(f32),
    R8(f64),
    Numeric {
        value: Decimal,
        precision: u8,
        scale: u8,
    },
    Decimal {
        value: Decimal,
        scale: u8,
    },
    WStr(String),
    Str(String),
    DbTimestamp(DateTime),
    DbDate(Date),
    Date(DateTime),
    DbTime(Time),
    DbTime2 {
        value: Time,
        scale: u8,
    },
    DbTimestamp2 {
        value: DateTime,
        scale: u8,
    },
    /// A local date-time and its offset from UTC in minutes (east positive).
    DbTimestampOffset {
        value: DateTime,
        offset: i16,
        scale: u8,
    },
    FileTime(DateTime),
    /// Currency in units of 1/10,000.
    Cy(i64),
    /// A GUID as the 128-bit number its text spells.
    Guid(u128),
    Bytes(Vec<u8>),
    Text(String),
    NText(String),
    Image(Vec<u8>),
}

/// The longest string any operation may produce, in characters.
pub const MAX_STRING_CHARS: usize = 1 << 20;

/// A number seen through the widest lossless lens, for conversions.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Num {
    Int(i128),
    Real(f64),
    Dec(Decimal),
}

impl Value {
    /// The value's type. Strings report an unbounded length.
    pub fn data_type(&self) -> DataType {
        match self {
            Value::Null(t) => t.clone(),
            Value::Bool(_) => DataType::Bool,
            Value::I1(_) => DataType::I1,
            Value::I2(_) => DataType::I2,
            Value::I4(_) => DataType::I4,
            Value::I8(_) => DataType::I8,
            Value::UI1(_) => DataType::UI1,
            Value::UI2(_) => DataType::UI2,
            Value::UI4(_) => DataType::UI4,
            Value::UI8(_) => DataType::UI8,
            Value::R4(_) => DataType::R4,
            Value::R8(_) => DataType::R8,
            Value::Numeric {
                precision, scale, ..
            } => DataType::Numeric {
                precision: *precision,
                scale: *scale,
            },
            Value::Decimal { scale, .. } => DataType::Decimal { scale: *scale },
            Value::WStr(_) => DataType::WStr { len: None },
            Value::Str(_) => DataType::Str {
                len: None,
                codepage: 1252,
            },
            Value::DbTimestamp(_) => DataType::DbTimestamp,
            Value::DbDate(_) => DataType::DbDate,
            Value::Date(_) => DataType::Date,
            Value::DbTime(_) => DataType::DbTime,
            Value::DbTime2 { scale, .. } => DataType::DbTime2 { scale: *scale },
            Value::DbTimestamp2 { scale, .. } => DataType::DbTimestamp2 { scale: *scale },
            Value::DbTimestampOffset { scale, .. } => DataType::DbTimestampOffset { scale: *scale },
            Value::FileTime(_) => DataType::FileTime,
            Value::Cy(_) => DataType::Cy,
            Value::Guid(_) => DataType::Guid,
            Value::Bytes(_) => DataType::Bytes { len: None },
            Value::Text(_) => DataType::Text { codepage: 1252 },
            Value::NText(_) => DataType::NText,
            Value::Image(_) => DataType::Image,
        }
    }

    /// True for a NULL of any type.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null(_))
    }

    /// `Some` for a boolean, `None` otherwise (NULL included).
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The string inside a `DT_WSTR` or `DT_STR` value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::WStr(s) | Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// True when the value already has the variant `ty` asks for (lengths and precision
    /// are not compared).
    pub(crate) fn has_kind_of(&self, ty: &DataType) -> bool {
        std::mem::discriminant(&self.data_type()) == std::mem::discriminant(ty)
            && match (self, ty) {
                (
                    Value::Numeric {
                        precision, scale, ..
                    },
                    DataType::Numeric {
                        precision: p,
                        scale: s,
                    },
                ) => precision == p && scale == s,
                (Value::Decimal { scale, .. }, DataType::Decimal { scale: s }) => scale == s,
                (Value::DbTime2 { scale, .. }, DataType::DbTime2 { scale: s })
                | (Value::DbTimestamp2 { scale, .. }, DataType::DbTimestamp2 { scale: s })
                | (
                    Value::DbTimestampOffset { scale, .. },
                    DataType::DbTimestampOffset { scale: s },
                ) => scale == s,
                (Value::Null(t), _) => t == ty,
                _ => true,
            }
    }

    /// The JSON form `checkflow eval --json` prints.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Null(_) => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::I1(v) => J::from(*v),
            Value::I2(v) => J::from(*v),
            Value::I4(v) => J::from(*v),
            Value::I8(v) => J::from(*v),
            Value::UI1(v) => J::from(*v),
            Value::UI2(v) => J::from(*v),
            Value::UI4(v) => J::from(*v),
            Value::UI8(v) => J::from(*v),
            Value::R4(v) => serde_json::Number::from_f64(f64::from(*v)).map_or(J::Null, J::Number),
            Value::R8(v) => serde_json::Number::from_f64(*v).map_or(J::Null, J::Number),
            other => J::String(other.to_string()),
        }
    }

    /// Reads back what `to_json` wrote, for a value of type `ty`.
    pub fn from_json(json: &serde_json::Value, ty: &DataType) -> Result<Value, ExprError> {
        use serde_json::Value as J;
        let bad = |reason: &str| ExprError::Json {
            json: json.to_string(),
            ty: ty.to_string(),
            reason: reason.to_string(),
        };
        match (json, ty) {
            (_, DataType::Object) => Err(bad("object variables have no JSON value form")),
            (J::Null, _) => Ok(Value::Null(ty.clone())),
            (J::Bool(b), DataType::Bool) => Ok(Value::Bool(*b)),
            (J::Number(n), t) if t.is_integer() => {
                let wide: i128 = if let Some(i) = n.as_i64() {
                    i128::from(i)
                } else if let Some(u) = n.as_u64() {
                    i128::from(u)
                } else {
                    return Err(bad("expected a whole number"));
                };
                int_to_type(wide, t).map_err(|_| bad("out of range"))
            }
            (J::Number(n), DataType::R4) => n
                .as_f64()
                .map(|f| Value::R4(f as f32))
                .ok_or_else(|| bad("expected a number")),
            (J::Number(n), DataType::R8) => n
                .as_f64()
                .map(Value::R8)
                .ok_or_else(|| bad("expected a number")),
            (J::String(s), t) if t.is_decimal() => {
                let d: Decimal = s.trim().parse().map_err(|_| bad("expected a decimal"))?;
                Num::Dec(d).to_type(t).map_err(|e| bad(&e.to_string()))
            }
            (J::Number(n), t) if t.is_decimal() => {
                let d: Decimal = n
                    .to_string()
                    .parse()
                    .map_err(|_| bad("expected a decimal"))?;
                Num::Dec(d).to_type(t).map_err(|e| bad(&e.to_string()))
            }
            (J::String(s), DataType::WStr { .. }) => Ok(Value::WStr(s.clone())),
            (J::String(s), DataType::Str { .. }) => Ok(Value::Str(s.clone())),
            (J::String(s), t) if t.is_date() => {
                parse_date_text(s, t).map_err(|e| bad(&e.to_string()))
            }
            // The other types' JSON is their text, which a cast from a string reads back.
            (
                J::String(s),
                t @ (DataType::Cy
                | DataType::Guid
                | DataType::Bytes { .. }
                | DataType::Text { .. }
                | DataType::NText
                | DataType::Image),
            ) => Value::WStr(s.clone())
                .cast_to(t)
                .map_err(|e| bad(&e.to_string())),
            _ => Err(bad("the JSON kind does not match the type")),
        }
    }

    /// Parses configuration or command-line text as a value of `ty`, as a cast from DT_WSTR
    /// would; booleans also accept `1` / `0`.
    pub fn parse_as(text: &str, ty: &DataType) -> Result<Value, ExprError> {
        if *ty == DataType::Object {
            return Err(ExprError::Conversion {
                value: format!("{text:?}"),
                to: "DT_OBJECT".to_string(),
                reason: "object variables cannot be set from text".to_string(),
            });
        }
        Value::WStr(text.to_string()).cast_to(ty)
    }

    /// Guesses a type for untyped text (`--set User::X=VALUE` for an undeclared variable):
    /// `true`/`false` (any case) -> DT_BOOL; a whole number -> DT_I4, or DT_I8 when it does
    /// not fit; a number with a point or an exponent -> DT_R8; an ISO date
    /// (`yyyy-mm-dd[ hh:mm:ss[.fff]]`) -> DT_DBTIMESTAMP; anything else -> DT_WSTR.
    pub fn infer_from_str(text: &str) -> Value {
        let t = text.trim();
        if t.eq_ignore_ascii_case("true") {
            return Value::Bool(true);
        }
        if t.eq_ignore_ascii_case("false") {
            return Value::Bool(false);
        }
        let numeric_chars = !t.is_empty()
            && t.chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E'))
            && t.chars().any(|c| c.is_ascii_digit());
        if numeric_chars {
            if let Ok(i) = t.parse::<i32>() {
                return Value::I4(i);
            }
            if let Ok(i) = t.parse::<i64>() {
                return Value::I8(i);
            }
            if let Ok(f) = t.parse::<f64>()
                && f.is_finite()
            {
                return Value::R8(f);
            }
        }
        if t.len() >= 10
            && t.as_bytes()[4] == b'-'
            && let Ok(v) = parse_date_text(t, &DataType::DbTimestamp)
        {
            return v;
        }
        Value::WStr(text.to_string())
    }

    /// Converts to `ty` with SSIS's cast rules.
    pub fn cast_to(&self, ty: &DataType) -> Result<Value, ExprError> {
        if self.has_kind_of(ty)
            && !matches!(
                ty,
                DataType::WStr { len: Some(_) }
                    | DataType::Str { len: Some(_), .. }
                    | DataType::Bytes { len: Some(_) }
            )
        {
            return Ok(self.clone());
        }
        let fail = |reason: &str| ExprError::Conversion {
            value: self.describe(),
            to: ty.to_string(),
            reason: reason.to_string(),
        };
        if let Value::Null(from) = self {
            if !cast_allowed(from, ty) {
                return Err(fail("the types cannot be converted"));
            }
            return Ok(Value::Null(strip_len(ty)));
        }
        if !cast_allowed(&self.data_type(), ty) {
            return Err(fail("SSIS does not allow this conversion"));
        }
        match ty {
            DataType::Object => Err(fail("no value converts to DT_OBJECT")),
            DataType::WStr { len } => Ok(Value::WStr(truncate(self.to_text(), *len))),
            DataType::Str { len, .. } => Ok(Value::Str(truncate(self.to_text(), *len))),
            DataType::Text { .. } => Ok(Value::Text(self.to_text())),
            DataType::NText => Ok(Value::NText(self.to_text())),
            DataType::Bytes { len } => {
                let mut bytes = self.to_bytes().map_err(&fail)?;
                if let Some(n) = len {
                    bytes.truncate(*n as usize);
                }
                Ok(Value::Bytes(bytes))
            }
            DataType::Image => Ok(Value::Image(self.to_bytes().map_err(&fail)?)),
            DataType::Guid => match self {
                Value::WStr(s) | Value::Str(s) => {
                    Ok(Value::Guid(binary::parse_guid(s).map_err(&fail)?))
                }
                Value::Bytes(b) | Value::Image(b) => binary::guid_from_bytes(b)
                    .map(Value::Guid)
                    .ok_or_else(|| fail("a GUID is made of exactly 16 bytes")),
                _ => Err(fail("the types cannot be converted")),
            },
            DataType::Bool => match self {
                Value::WStr(s) | Value::Str(s) => {
                    parse_bool(s).ok_or_else(|| fail("expected TRUE or FALSE (or 1, 0, -1)"))
                }
                _ => match self.as_num() {
                    Some(Num::Int(i)) => Ok(Value::Bool(i != 0)),
                    Some(Num::Real(f)) => Ok(Value::Bool(f != 0.0)),
                    Some(Num::Dec(d)) => Ok(Value::Bool(!d.is_zero())),
                    None => Err(fail("the types cannot be converted")),
                },
            },
            t if t.is_numeric() => {
                let num = match self {
                    Value::WStr(s) | Value::Str(s) => parse_number_text(s, t)
                        .ok_or_else(|| fail("the text is not a number of that type"))?,
                    Value::Bool(b) => Num::Int(if *b { -1 } else { 0 }),
                    _ => self
                        .as_num()
                        .ok_or_else(|| fail("the types cannot be converted"))?,
                };
                num.to_type(t).map_err(|e| match e {
                    ExprError::Conversion { reason, .. } => fail(&reason),
                    other => other,
                })
            }
            t if t.is_date() => match self {
                Value::WStr(s) | Value::Str(s) => parse_date_text(s, t),
                _ => temporal::convert(self, t).map_err(|r| fail(&r)),
            },
            _ => Err(fail("the types cannot be converted")),
        }
    }

    /// The value as a number, if it is one.
    pub(crate) fn as_num(&self) -> Option<Num> {
        Some(match self {
            Value::I1(v) => Num::Int(i128::from(*v)),
            Value::I2(v) => Num::Int(i128::from(*v)),
            Value::I4(v) => Num::Int(i128::from(*v)),
            Value::I8(v) => Num::Int(i128::from(*v)),
            Value::UI1(v) => Num::Int(i128::from(*v)),
            Value::UI2(v) => Num::Int(i128::from(*v)),
            Value::UI4(v) => Num::Int(i128::from(*v)),
            Value::UI8(v) => Num::Int(i128::from(*v)),
            Value::R4(v) => Num::Real(f64::from(*v)),
            Value::R8(v) => Num::Real(*v),
            Value::Numeric { value, .. } | Value::Decimal { value, .. } => Num::Dec(*value),
            Value::Cy(units) => Num::Dec(binary::cy_decimal(*units)),
            _ => return None,
        })
    }

    /// The bytes of a binary value, of a GUID, or of hexadecimal text.
    fn to_bytes(&self) -> Result<Vec<u8>, &'static str> {
        match self {
            Value::Bytes(b) | Value::Image(b) => Ok(b.clone()),
            Value::Guid(g) => Ok(binary::guid_to_bytes(*g).to_vec()),
            Value::WStr(s) | Value::Str(s) => binary::parse_hex(s),
            _ => Err("the types cannot be converted"),
        }
    }

    /// Short description for error messages: the text and the type.
    pub(crate) fn describe(&self) -> String {
        match self {
            Value::Null(t) => format!("NULL({})", t.ssis_name()),
            Value::WStr(s) | Value::Str(s) | Value::Text(s) | Value::NText(s) => {
                let shown: String = s.chars().take(40).collect();
                let more = if s.chars().count() > 40 { "..." } else { "" };
                format!("{:?}{more} ({})", shown, self.data_type().ssis_name())
            }
            other => format!("{other} ({})", other.data_type().ssis_name()),
        }
    }

    /// The text a cast to DT_WSTR produces.
    pub(crate) fn to_text(&self) -> String {
        match self {
            Value::Bool(true) => "True".to_string(),
            Value::Bool(false) => "False".to_string(),
            other => other.to_string(),
        }
    }
}

/// A DataType with string lengths dropped (NULLs and values carry no length).
fn strip_len(ty: &DataType) -> DataType {
    match ty {
        DataType::Bytes { .. } => DataType::Bytes { len: None },
        DataType::WStr { .. } => DataType::WStr { len: None },
        DataType::Str { codepage, .. } => DataType::Str {
            len: None,
            codepage: *codepage,
        },
        other => other.clone(),
    }
}

/// Whether an explicit cast from `from` to `to` is legal (the SSIS cast chart).
///
/// Strings convert to and from every type. Numbers (DT_CY included) and DT_BOOL convert
/// among themselves; the date and time types among themselves; DT_TEXT and DT_NTEXT only to
/// each other; DT_BYTES, DT_IMAGE and DT_GUID among themselves (a GUID is 16 bytes).
pub(crate) fn cast_allowed(from: &DataType, to: &DataType) -> bool {
    if *from == DataType::Object || *to == DataType::Object {
        return false;
    }
    if from.is_string() || to.is_string() {
        return true;
    }
    let text = |t: &DataType| matches!(t, DataType::Text { .. } | DataType::NText);
    let binary =
        |t: &DataType| matches!(t, DataType::Bytes { .. } | DataType::Image | DataType::Guid);
    if text(from) || text(to) {
        return text(from) && text(to);
    }
    if binary(from) || binary(to) {
        // DT_IMAGE and DT_GUID do not convert into each other directly.
        return binary(from)
            && binary(to)
            && !matches!(
                (from, to),
                (DataType::Image, DataType::Guid) | (DataType::Guid, DataType::Image)
            );
    }
    if to.is_date() || from.is_date() {
        return from.is_date() && to.is_date();
    }
    // Numbers and booleans convert among themselves.
    true
}

fn truncate(s: String, len: Option<u32>) -> String {
    match len {
        Some(n) => match s.char_indices().nth(n as usize) {
            Some((i, _)) => s[..i].to_string(),
            None => s,
        },
        None => s,
    }
}

fn parse_bool(s: &str) -> Option<Value> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("true") || t == "1" || t == "-1" {
        Some(Value::Bool(true))
    } else if t.eq_ignore_ascii_case("false") || t == "0" {
        Some(Value::Bool(false))
    } else {
        None
    }
}

fn parse_number_text(s: &str, ty: &DataType) -> Option<Num> {
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    if ty.is_integer() {
        return t.parse::<i128>().ok().map(Num::Int);
    }
    if ty.is_decimal() || *ty == DataType::Cy {
        if let Ok(d) = t.parse::<Decimal>() {
            return Some(Num::Dec(d));
        }
        return Decimal::from_scientific(t).ok().map(Num::Dec);
    }
    let f: f64 = t.parse().ok()?;
    f.is_finite().then_some(Num::Real(f))
}

/// Builds an integer value of `ty` from a wide integer, or fails when it does not fit.
pub(crate) fn int_to_type(i: i128, ty: &DataType) -> Result<Value, ()> {
    Ok(match ty {
        DataType::I1 => Value::I1(i8::try_from(i).map_err(|_| ())?),
        DataType::I2 => Value::I2(i16::try_from(i).map_err(|_| ())?),
        DataType::I4 => Value::I4(i32::try_from(i).map_err(|_| ())?),
        DataType::I8 => Value::I8(i64::try_from(i).map_err(|_| ())?),
        DataType::UI1 => Value::UI1(u8::try_from(i).map_err(|_| ())?),
        DataType::UI2 => Value::UI2(u16::try_from(i).map_err(|_| ())?),
        DataType::UI4 => Value::UI4(u32::try_from(i).map_err(|_| ())?),
        DataType::UI8 => Value::UI8(u64::try_from(i).map_err(|_| ())?),
        _ => return Err(()),
    })
}

/// Rounds a decimal to `scale` places (half away from zero) and checks it has at most
/// `precision` digits.
pub(crate) fn fit_decimal(d: Decimal, precision: u8, scale: u8) -> Option<Decimal> {
    let scale = scale.min(MAX_SCALE);
    let mut r = d.round_dp_with_strategy(u32::from(scale), RoundingStrategy::MidpointAwayFromZero);
    r.rescale(u32::from(scale));
    if r.scale() != u32::from(scale) {
        return None;
    }
    let limit = 10i128.checked_pow(u32::from(precision.min(38)))?;
    if r.mantissa().abs() >= limit {
        return None;
    }
    if r.is_zero() {
        r.set_sign_positive(true);
    }
    Some(r)
}

impl Num {
    /// Converts to a numeric type, checking range (integers and reals round half away from
    /// zero when they lose their fraction).
    pub(crate) fn to_type(self, ty: &DataType) -> Result<Value, ExprError> {
        let over = || ExprError::Conversion {
            value: self.to_string(),
            to: ty.to_string(),
            reason: "the value is out of range for the type (overflow)".to_string(),
        };
        match ty {
            t if t.is_integer() => {
                let i = match self {
                    Num::Int(i) => i,
                    Num::Real(f) => {
                        let r = f.round();
                        if !r.is_finite() || r.abs() > 1e38 {
                            return Err(over());
                        }
                        r as i128
                    }
                    Num::Dec(d) => {
                        let r = d.round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero);
                        r.mantissa()
                    }
                };
                int_to_type(i, t).map_err(|_| over())
            }
            DataType::R4 => {
                let f = self.as_f64();
                let g = f as f32;
                if !g.is_finite() {
                    return Err(over());
                }
                Ok(Value::R4(g))
            }
            DataType::R8 => Ok(Value::R8(self.as_f64())),
            DataType::Numeric { precision, scale } => {
                let d = self.as_decimal().ok_or_else(over)?;
                let v = fit_decimal(d, *precision, *scale).ok_or_else(over)?;
                Ok(Value::Numeric {
                    value: v,
                    precision: *precision,
                    scale: *scale,
                })
            }
            DataType::Decimal { scale } => {
                let d = self.as_decimal().ok_or_else(over)?;
                let v = fit_decimal(d, DECIMAL_PRECISION, *scale).ok_or_else(over)?;
                Ok(Value::Decimal {
                    value: v,
                    scale: *scale,
                })
            }
            DataType::Cy => {
                let d = self.as_decimal().ok_or_else(over)?;
                Ok(Value::Cy(binary::decimal_to_cy(d).ok_or_else(over)?))
            }
            _ => Err(over()),
        }
    }

    pub(crate) fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Real(f) => f,
            Num::Dec(d) => {
                use rust_decimal::prelude::ToPrimitive;
                d.to_f64().unwrap_or(f64::NAN)
            }
        }
    }

    pub(crate) fn as_decimal(self) -> Option<Decimal> {
        match self {
            Num::Int(i) => Decimal::try_from_i128_with_scale(i, 0).ok(),
            Num::Real(f) => {
                if !f.is_finite() {
                    return None;
                }
                // Through the shortest text form, so 0.1 stays 0.1 rather than its binary
                // approximation.
                let text = format!("{f}");
                text.parse::<Decimal>()
                    .ok()
                    .or_else(|| Decimal::from_scientific(&format!("{f:e}")).ok())
            }
            Num::Dec(d) => Some(d),
        }
    }
}

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Num::Int(i) => write!(f, "{i}"),
            Num::Real(r) => f.write_str(&format_real(*r)),
            Num::Dec(d) => write!(f, "{d}"),
        }
    }
}

/// Converts a civil date-time to the date type `ty` (dropping the time for DT_DBDATE),
/// truncated to milliseconds as DT_DBTIMESTAMP stores them.
pub(crate) fn datetime_as(dt: DateTime, ty: &DataType) -> Value {
    let ms = dt.subsec_nanosecond() / 1_000_000 * 1_000_000;
    let dt = dt.with().subsec_nanosecond(ms).build().unwrap_or(dt);
    match ty {
        DataType::DbDate => Value::DbDate(dt.date()),
        DataType::Date => Value::Date(dt),
        _ => Value::DbTimestamp(dt),
    }
}

/// Formats a real the way SSIS prints it: shortest round-trip digits, with an exponent for
/// very large or very small magnitudes.
pub(crate) fn format_real(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { "INF" } else { "-INF" }.to_string();
    }
    let a = f.abs();
    if a != 0.0 && !(1e-5..1e15).contains(&a) {
        let s = format!("{f:E}");
        // Rust writes 1E20 / 1E-7; SSIS writes 1E+20 / 1E-07. Keep the sign, pad to 2 digits.
        if let Some((mant, exp)) = s.split_once('E') {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            return format!("{mant}E{sign}{digits:0>2}");
        }
        return s;
    }
    format!("{f}")
}

fn format_real32(f: f32) -> String {
    // Print the shortest form that reads back as the same f32, not the f64 widening.
    let a = f.abs();
    if a != 0.0 && !(1e-5..1e15).contains(&a) {
        return format_real(f64::from(f));
    }
    format!("{f}")
}

/// `yyyy-mm-dd hh:mm:ss[.fff]`.
pub(crate) fn format_datetime(dt: &DateTime) -> String {
    let ms = dt.subsec_nanosecond() / 1_000_000;
    let base = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    );
    if ms != 0 {
        format!("{base}.{ms:03}")
    } else {
        base
    }
}

/// Parses the date and date-time text forms SSIS accepts: ISO `yyyy-mm-dd[( |T)hh:mm[:ss[.fff]]]`,
/// US `mm/dd/yyyy[ hh:mm[:ss[.fff]][ AM|PM]]`, and `yyyy/mm/dd`.
///
/// DT_DBTIME and DT_DBTIME2 read `hh:mm:ss[.fffffff]`; DT_DBTIMESTAMPOFFSET takes an
/// optional trailing offset (`+05:35`, `- 3:30`; none means `+00:00`); DT_FILETIME also
/// reads its documented `yyyy-mm-dd hh:mm:ss:fff`.
pub fn parse_date_text(text: &str, ty: &DataType) -> Result<Value, ExprError> {
    let fail = |reason: &str| ExprError::Conversion {
        value: format!("{text:?}"),
        to: ty.ssis_name().to_string(),
        reason: reason.to_string(),
    };
    if ty.is_time_only() {
        let t = temporal::parse_time(text).map_err(fail)?;
        let day = Date::new(2000, 1, 1).map_err(|_| fail("internal date error"))?;
        return temporal::build(day.to_datetime(t), ty).map_err(|r| fail(&r));
    }
    if let DataType::DbTimestampOffset { scale } = ty {
        let (rest, offset) = temporal::split_offset(text).map_err(fail)?;
        let dt = parse_civil(rest, ty)?;
        if !(1..=9999).contains(&dt.year()) {
            return Err(fail("the year must be between 1 and 9999"));
        }
        return match temporal::build(dt, ty).map_err(|r| fail(&r))? {
            Value::DbTimestampOffset { value, .. } => Ok(Value::DbTimestampOffset {
                value,
                offset: offset.unwrap_or(0),
                scale: *scale,
            }),
            other => Ok(other),
        };
    }
    if *ty == DataType::FileTime {
        // `yyyy-mm-dd hh:mm:ss:fff`: the milliseconds follow a colon.
        let t = text.trim();
        if let Some(i) = t.find(' ')
            && t[i..].matches(':').count() == 3
            && let Some(last) = t.rfind(':')
        {
            let dotted = format!("{}.{}", &t[..last], &t[last + 1..]);
            let dt = parse_civil(&dotted, ty)?;
            return temporal::build(dt, ty).map_err(|r| fail(&r));
        }
    }
    let dt = parse_civil(text, ty)?;
    temporal::build(dt, ty).map_err(|r| fail(&r))
}

/// Reads date or date-time text as a civil date-time (years 1 to 9999, up to nine
/// fractional digits).
fn parse_civil(text: &str, ty: &DataType) -> Result<DateTime, ExprError> {
    let fail = |reason: &str| ExprError::Conversion {
        value: format!("{text:?}"),
        to: ty.ssis_name().to_string(),
        reason: reason.to_string(),
    };
    let t = text.trim();
    let (date_part, time_part) = match t.find([' ', 'T']) {
        Some(i) => (&t[..i], t[i + 1..].trim()),
        None => (t, ""),
    };
    let nums: Vec<&str> = date_part.split(['-', '/', '.']).collect();
    if nums.len() != 3
        || nums
            .iter()
            .any(|n| n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(fail("expected a date such as 2026-11-21 or 11/21/2026"));
    }
    let sep = date_part.as_bytes()[nums[0].len()];
    let (y, m, d) = if nums[0].len() == 4 {
        (nums[0], nums[1], nums[2])
    } else if sep == b'/' && nums[2].len() == 4 {
        (nums[2], nums[0], nums[1])
    } else {
        return Err(fail("expected yyyy-mm-dd or mm/dd/yyyy"));
    };
    let num = |s: &str| s.parse::<i32>().map_err(|_| fail("number out of range"));
    let (y, m, d) = (num(y)?, num(m)?, num(d)?);
    let (mut hh, mut mi, mut ss, mut nanos) = (0i32, 0i32, 0i32, 0i32);
    if !time_part.is_empty() {
        let upper = time_part.to_ascii_uppercase();
        let (clock, ampm) = if let Some(c) = upper.strip_suffix("AM") {
            (c.trim().to_string(), Some(false))
        } else if let Some(c) = upper.strip_suffix("PM") {
            (c.trim().to_string(), Some(true))
        } else {
            (upper.clone(), None)
        };
        let (hms, frac) = match clock.split_once('.') {
            Some((a, b)) => (a.to_string(), Some(b.to_string())),
            None => (clock.clone(), None),
        };
        let parts: Vec<&str> = hms.split(':').collect();
        if !(2..=3).contains(&parts.len())
            || parts
                .iter()
                .any(|p| p.is_empty() || p.len() > 2 || !p.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(fail("expected a time such as 04:30:00"));
        }
        hh = num(parts[0])?;
        mi = num(parts[1])?;
        ss = if parts.len() == 3 { num(parts[2])? } else { 0 };
        if let Some(f) = frac {
            if f.is_empty() || f.len() > 9 || !f.bytes().all(|b| b.is_ascii_digit()) {
                return Err(fail("expected up to 9 digits of fractional seconds"));
            }
            let padded = format!("{f:0<9}");
            nanos = padded.parse::<i32>().map_err(|_| fail("bad fraction"))?;
        }
        if let Some(pm) = ampm {
            if !(1..=12).contains(&hh) {
                return Err(fail("hour must be 1 to 12 with AM/PM"));
            }
            hh = match (pm, hh) {
                (false, 12) => 0,
                (true, 12) => 12,
                (true, h) => h + 12,
                (false, h) => h,
            };
        }
    }
    if !(1..=9999).contains(&y) {
        return Err(fail("the year must be between 1 and 9999"));
    }
    DateTime::new(
        y as i16,
        i8::try_from(m).map_err(|_| fail("invalid month"))?,
        i8::try_from(d).map_err(|_| fail("invalid day"))?,
        i8::try_from(hh).map_err(|_| fail("invalid hour"))?,
        i8::try_from(mi).map_err(|_| fail("invalid minute"))?,
        i8::try_from(ss).map_err(|_| fail("invalid second"))?,
        nanos,
    )
    .map_err(|_| fail("not a valid date or time"))
}

impl fmt::Display for Value {
    /// The human form: the JSON text without quotes; NULL prints as `NULL`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null(_) => f.write_str("NULL"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::I1(v) => write!(f, "{v}"),
            Value::I2(v) => write!(f, "{v}"),
            Value::I4(v) => write!(f, "{v}"),
            Value::I8(v) => write!(f, "{v}"),
            Value::UI1(v) => write!(f, "{v}"),
            Value::UI2(v) => write!(f, "{v}"),
            Value::UI4(v) => write!(f, "{v}"),
            Value::UI8(v) => write!(f, "{v}"),
            Value::R4(v) => f.write_str(&format_real32(*v)),
            Value::R8(v) => f.write_str(&format_real(*v)),
            Value::Numeric { value, scale, .. } | Value::Decimal { value, scale } => {
                let mut v = *value;
                v.rescale(u32::from(*scale));
                write!(f, "{v}")
            }
            Value::WStr(s) | Value::Str(s) => f.write_str(s),
            Value::DbTimestamp(dt) | Value::Date(dt) => f.write_str(&format_datetime(dt)),
            Value::DbDate(d) => write!(f, "{:04}-{:02}-{:02}", d.year(), d.month(), d.day()),
            Value::DbTime(t) => f.write_str(&temporal::format_time(t, 0)),
            Value::DbTime2 { value, scale } => f.write_str(&temporal::format_time(value, *scale)),
            Value::DbTimestamp2 { value, scale } => {
                f.write_str(&temporal::format_datetime_digits(value, *scale))
            }
            Value::DbTimestampOffset {
                value,
                offset,
                scale,
            } => write!(
                f,
                "{} {}",
                temporal::format_datetime_digits(value, *scale),
                temporal::format_offset(*offset)
            ),
            Value::FileTime(dt) => f.write_str(&temporal::format_filetime(dt)),
            Value::Cy(units) => f.write_str(&binary::format_cy(*units)),
            Value::Guid(g) => f.write_str(&binary::format_guid(*g)),
            Value::Bytes(b) | Value::Image(b) => f.write_str(&binary::format_hex(b)),
            Value::Text(s) | Value::NText(s) => f.write_str(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(s: &str) -> DateTime {
        match parse_date_text(s, &DataType::DbTimestamp) {
            Ok(Value::DbTimestamp(d)) => d,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn json_round_trips_every_type() {
        let values = vec![
            Value::Null(DataType::I4),
            Value::Bool(true),
            Value::I1(-5),
            Value::I2(300),
            Value::I4(-42),
            Value::I8(i64::MIN),
            Value::UI1(255),
            Value::UI2(65535),
            Value::UI4(u32::MAX),
            Value::UI8(u64::MAX),
            Value::R4(1.1),
            Value::R8(0.1),
            Value::R8(1e300),
            Value::Numeric {
                value: Decimal::new(4000000, 3),
                precision: 7,
                scale: 3,
            },
            Value::Decimal {
                value: Decimal::new(50000, 2),
                scale: 2,
            },
            Value::WStr("C:\\data \"x\"".into()),
            Value::Str("abc".into()),
            Value::DbTimestamp(dt("2026-11-21 04:30:00")),
            Value::DbTimestamp(dt("2026-11-21 04:30:00.120")),
            Value::Date(dt("1999-01-02 03:04:05")),
            Value::DbDate(jiff::civil::date(2026, 2, 28)),
            Value::DbTime(jiff::civil::time(16, 34, 52, 0)),
            Value::DbTime2 {
                value: jiff::civil::time(16, 34, 52, 123_450_000),
                scale: 5,
            },
            Value::DbTimestamp2 {
                value: jiff::civil::datetime(1999, 10, 11, 16, 34, 52, 123_400_000),
                scale: 4,
            },
            Value::DbTimestampOffset {
                value: jiff::civil::datetime(1999, 10, 11, 16, 34, 52, 123_456_700),
                offset: -210,
                scale: 7,
            },
            Value::DbTimestampOffset {
                value: jiff::civil::datetime(2026, 11, 21, 4, 30, 0, 0),
                offset: 120,
                scale: 0,
            },
            Value::FileTime(dt("2026-11-21 04:30:00.005")),
            Value::Cy(-125_000),
            Value::Cy(i64::MAX),
            Value::Guid(0x6F9619FF_8B86_D011_B42D_00C04FC964FF),
            Value::Bytes(vec![0, 0x0a, 0xff]),
            Value::Image(vec![0xde, 0xad]),
            Value::Text("long text".into()),
            Value::NText("Grüße".into()),
        ];
        for v in values {
            let ty = v.data_type();
            let j = v.to_json();
            let text = serde_json::to_string(&j).expect("serialises");
            let back: serde_json::Value = serde_json::from_str(&text).expect("parses");
            assert_eq!(Value::from_json(&back, &ty), Ok(v.clone()), "{text}");
        }
    }

    #[test]
    fn json_shapes() {
        let n = Value::Numeric {
            value: Decimal::new(4000, 0),
            precision: 7,
            scale: 3,
        };
        assert_eq!(n.to_json(), serde_json::json!("4000.000"));
        assert_eq!(
            Value::DbTimestamp(dt("2026-11-21 04:30:00")).to_json(),
            serde_json::json!("2026-11-21 04:30:00")
        );
        assert_eq!(
            Value::DbTimestamp(dt("2026-11-21 04:30:00.5")).to_json(),
            serde_json::json!("2026-11-21 04:30:00.500")
        );
        assert_eq!(Value::Null(DataType::Bool).to_string(), "NULL");
        assert_eq!(Value::Cy(125_000).to_json(), serde_json::json!("12.5"));
        assert_eq!(
            Value::DbTimestampOffset {
                value: dt("2026-11-21 04:30:00"),
                offset: 120,
                scale: 7,
            }
            .to_json(),
            serde_json::json!("2026-11-21 04:30:00.0000000 +02:00")
        );
        assert_eq!(
            Value::Bytes(vec![0x0a, 0xff]).to_json(),
            serde_json::json!("0aff")
        );
    }

    #[test]
    fn infer_picks_types() {
        assert_eq!(Value::infer_from_str("42"), Value::I4(42));
        assert_eq!(
            Value::infer_from_str("3000000000"),
            Value::I8(3_000_000_000)
        );
        assert_eq!(Value::infer_from_str("1.5"), Value::R8(1.5));
        assert_eq!(Value::infer_from_str("TRUE"), Value::Bool(true));
        assert_eq!(
            Value::infer_from_str("2026-11-21 04:30:00"),
            Value::DbTimestamp(dt("2026-11-21 04:30:00"))
        );
        assert_eq!(Value::infer_from_str("hello"), Value::WStr("hello".into()));
        assert_eq!(Value::infer_from_str("-"), Value::WStr("-".into()));
    }

    #[test]
    fn parse_as_uses_cast_rules() {
        assert_eq!(Value::parse_as("1", &DataType::Bool), Ok(Value::Bool(true)));
        assert_eq!(
            Value::parse_as("False", &DataType::Bool),
            Ok(Value::Bool(false))
        );
        assert_eq!(Value::parse_as(" 12 ", &DataType::I4), Ok(Value::I4(12)));
        assert!(Value::parse_as("12.5", &DataType::I4).is_err());
        assert!(Value::parse_as("99999999999", &DataType::I4).is_err());
        assert_eq!(
            Value::parse_as("11/04/2002", &DataType::DbTimestamp),
            Ok(Value::DbTimestamp(dt("2002-11-04 00:00:00")))
        );
        assert_eq!(
            Value::parse_as("5/24/2012 5:12:34 PM", &DataType::DbTimestamp),
            Ok(Value::DbTimestamp(dt("2012-05-24 17:12:34")))
        );
        assert!(Value::parse_as("2026-02-30", &DataType::DbDate).is_err());
    }

    #[test]
    fn reals_print_like_ssis() {
        assert_eq!(format_real(1.5), "1.5");
        assert_eq!(format_real(1e20), "1E+20");
        assert_eq!(format_real(1.5e-7), "1.5E-07");
        assert_eq!(format_real(100.0), "100");
    }
}
