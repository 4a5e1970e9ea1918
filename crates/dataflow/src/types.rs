//! SSIS column types in a flow: how a type string reads (`"DT_WSTR, 20"`),
//! which Arrow type holds its values, and how one value crosses between an
//! Arrow array and `checkflow_expr::Value` (whose casts are SSIS's).

use checkflow_expr::{DataType, Value};
use datafusion::arrow::array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float32Array,
    Float64Array, Int8Array, Int16Array, Int32Array, Int64Array, StringArray,
    Time64MicrosecondArray, TimestampMicrosecondArray, UInt8Array, UInt16Array, UInt32Array,
    UInt64Array,
};
use datafusion::arrow::datatypes::{DataType as ArrowType, Field, Schema, SchemaRef, TimeUnit};
use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;
use rust_decimal::Decimal;
use std::sync::Arc;

/// One column of a flow path: its name and SSIS type.
#[derive(Clone, Debug, PartialEq)]
pub struct Col {
    /// The name, as written (case kept; matched exactly).
    pub name: String,
    /// Its SSIS type.
    pub ty: DataType,
}

impl Col {
    /// A column.
    pub fn new(name: impl Into<String>, ty: DataType) -> Col {
        Col {
            name: name.into(),
            ty,
        }
    }
}

/// The columns of a path, in order.
pub type Cols = Vec<Col>;

/// Reads an SSIS type as written in a flow: `DT_I4`, `"DT_WSTR, 20"`,
/// `"DT_NUMERIC, 18, 2"` (or with parentheses, `DT_WSTR(20)`), and checks
/// that a flow can hold it.
pub fn parse_type(text: &str) -> Result<DataType, String> {
    let t = text.trim();
    let (name, rest) = match t.find([',', '(']) {
        Some(i) => (&t[..i], &t[i..]),
        None => (t, ""),
    };
    let rest = rest
        .trim()
        .trim_start_matches('(')
        .trim_end_matches(')')
        .trim_start_matches(',');
    let mut params = Vec::new();
    for p in rest.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        params.push(
            p.parse::<u32>()
                .map_err(|_| format!("type \"{text}\": `{p}` is not a whole number"))?,
        );
    }
    let ty =
        DataType::from_spec(name.trim(), &params).map_err(|e| format!("type \"{text}\": {e}"))?;
    arrow_type(&ty).map_err(|e| format!("type \"{text}\": {e}"))?;
    Ok(ty)
}

/// The Arrow type that holds values of an SSIS type.
pub fn arrow_type(ty: &DataType) -> Result<ArrowType, String> {
    Ok(match ty {
        DataType::Bool => ArrowType::Boolean,
        DataType::I1 => ArrowType::Int8,
        DataType::I2 => ArrowType::Int16,
        DataType::I4 => ArrowType::Int32,
        DataType::I8 => ArrowType::Int64,
        DataType::UI1 => ArrowType::UInt8,
        DataType::UI2 => ArrowType::UInt16,
        DataType::UI4 => ArrowType::UInt32,
        DataType::UI8 => ArrowType::UInt64,
        DataType::R4 => ArrowType::Float32,
        DataType::R8 => ArrowType::Float64,
        DataType::Numeric { precision, scale } => ArrowType::Decimal128(*precision, *scale as i8),
        DataType::Decimal { scale } => {
            ArrowType::Decimal128(checkflow_expr::datatype::DECIMAL_PRECISION, *scale as i8)
        }
        DataType::Cy => ArrowType::Decimal128(19, 4),
        DataType::WStr { .. }
        | DataType::Str { .. }
        | DataType::Text { .. }
        | DataType::NText
        | DataType::Guid => ArrowType::Utf8,
        DataType::DbTimestamp
        | DataType::Date
        | DataType::DbTimestamp2 { .. }
        | DataType::FileTime => ArrowType::Timestamp(TimeUnit::Microsecond, None),
        DataType::DbDate => ArrowType::Date32,
        DataType::DbTime | DataType::DbTime2 { .. } => ArrowType::Time64(TimeUnit::Microsecond),
        DataType::Bytes { .. } | DataType::Image => ArrowType::Binary,
        DataType::DbTimestampOffset { .. } | DataType::Object => {
            return Err(format!(
                "{} is not supported in a data flow",
                ty.ssis_name()
            ));
        }
    })
}

/// The Arrow schema of a path.
pub fn schema_of(cols: &[Col]) -> SchemaRef {
    Arc::new(Schema::new(
        cols.iter()
            .map(|c| Field::new(&c.name, arrow_type(&c.ty).unwrap_or(ArrowType::Utf8), true))
            .collect::<Vec<_>>(),
    ))
}

/// The type without its declared length (a cast to it never truncates, so
/// [`too_long`] can then tell a value that does not fit).
pub fn unbounded(ty: &DataType) -> DataType {
    match ty {
        DataType::WStr { .. } => DataType::WStr { len: None },
        DataType::Str { codepage, .. } => DataType::Str {
            len: None,
            codepage: *codepage,
        },
        other => other.clone(),
    }
}

/// Whether a string value exceeds the declared length of its type.
pub fn too_long(v: &Value, ty: &DataType) -> Option<u32> {
    let len = match ty {
        DataType::WStr { len: Some(n) } | DataType::Str { len: Some(n), .. } => *n,
        _ => return None,
    };
    match v {
        Value::WStr(s) | Value::Str(s) if s.chars().count() > len as usize => Some(len),
        _ => None,
    }
}

fn micros(dt: &DateTime) -> Option<i64> {
    dt.to_zoned(TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp().as_microsecond())
}

fn from_micros(us: i64) -> Option<DateTime> {
    jiff::Timestamp::from_microsecond(us)
        .ok()
        .map(|t| t.to_zoned(TimeZone::UTC).datetime())
}

fn days(d: &Date) -> Option<i32> {
    micros(&d.to_datetime(Time::midnight())).map(|us| (us / 86_400_000_000) as i32)
}

fn time_micros(t: &Time) -> i64 {
    (i64::from(t.hour()) * 3600 + i64::from(t.minute()) * 60 + i64::from(t.second())) * 1_000_000
        + i64::from(t.subsec_nanosecond()) / 1000
}

fn decimal_mantissa(d: &Decimal, scale: u8) -> i128 {
    let mut d = *d;
    d.rescale(u32::from(scale));
    d.mantissa()
}

/// Builds the array of one column from values already of its type (`Null`
/// for NULL; a value of another kind becomes NULL too, which the callers
/// prevent by casting first).
pub fn to_array(values: &[Value], ty: &DataType) -> ArrayRef {
    macro_rules! prim {
        ($arr:ty, $($pat:pat => $e:expr),+) => {
            Arc::new(values.iter().map(|v| match v { $($pat => Some($e),)+ _ => None }).collect::<$arr>()) as ArrayRef
        };
    }
    match ty {
        DataType::Bool => prim!(BooleanArray, Value::Bool(b) => *b),
        DataType::I1 => prim!(Int8Array, Value::I1(x) => *x),
        DataType::I2 => prim!(Int16Array, Value::I2(x) => *x),
        DataType::I4 => prim!(Int32Array, Value::I4(x) => *x),
        DataType::I8 => prim!(Int64Array, Value::I8(x) => *x),
        DataType::UI1 => prim!(UInt8Array, Value::UI1(x) => *x),
        DataType::UI2 => prim!(UInt16Array, Value::UI2(x) => *x),
        DataType::UI4 => prim!(UInt32Array, Value::UI4(x) => *x),
        DataType::UI8 => prim!(UInt64Array, Value::UI8(x) => *x),
        DataType::R4 => prim!(Float32Array, Value::R4(x) => *x),
        DataType::R8 => prim!(Float64Array, Value::R8(x) => *x),
        DataType::Numeric { .. } | DataType::Decimal { .. } | DataType::Cy => {
            let (p, s) = match arrow_type(ty) {
                Ok(ArrowType::Decimal128(p, s)) => (p, s),
                _ => (38, 0),
            };
            let scale = s as u8;
            let a = values
                .iter()
                .map(|v| match v {
                    Value::Numeric { value, .. } | Value::Decimal { value, .. } => {
                        Some(decimal_mantissa(value, scale))
                    }
                    Value::Cy(c) => Some(i128::from(*c)),
                    _ => None,
                })
                .collect::<Decimal128Array>();
            Arc::new(
                a.with_precision_and_scale(p, s)
                    .unwrap_or_else(|_| Decimal128Array::from(vec![None::<i128>; values.len()])),
            )
        }
        DataType::WStr { .. } | DataType::Str { .. } | DataType::Text { .. } | DataType::NText => {
            Arc::new(
                values
                    .iter()
                    .map(|v| match v {
                        Value::WStr(s) | Value::Str(s) | Value::Text(s) | Value::NText(s) => {
                            Some(s.as_str())
                        }
                        _ => None,
                    })
                    .collect::<StringArray>(),
            )
        }
        DataType::Guid => Arc::new(
            values
                .iter()
                .map(|v| match v {
                    Value::Null(_) => None,
                    other => Some(other.to_string()),
                })
                .collect::<StringArray>(),
        ),
        DataType::DbTimestamp
        | DataType::Date
        | DataType::DbTimestamp2 { .. }
        | DataType::FileTime => Arc::new(
            values
                .iter()
                .map(|v| match v {
                    Value::DbTimestamp(d)
                    | Value::Date(d)
                    | Value::FileTime(d)
                    | Value::DbTimestamp2 { value: d, .. } => micros(d),
                    _ => None,
                })
                .collect::<TimestampMicrosecondArray>(),
        ),
        DataType::DbDate => Arc::new(
            values
                .iter()
                .map(|v| match v {
                    Value::DbDate(d) => days(d),
                    _ => None,
                })
                .collect::<Date32Array>(),
        ),
        DataType::DbTime | DataType::DbTime2 { .. } => Arc::new(
            values
                .iter()
                .map(|v| match v {
                    Value::DbTime(t) | Value::DbTime2 { value: t, .. } => Some(time_micros(t)),
                    _ => None,
                })
                .collect::<Time64MicrosecondArray>(),
        ),
        DataType::Bytes { .. } | DataType::Image => Arc::new(
            values
                .iter()
                .map(|v| match v {
                    Value::Bytes(b) | Value::Image(b) => Some(b.as_slice()),
                    _ => None,
                })
                .collect::<BinaryArray>(),
        ),
        DataType::DbTimestampOffset { .. } | DataType::Object => {
            Arc::new(StringArray::from(vec![None::<&str>; values.len()]))
        }
    }
}

/// The value at `row` of a column of SSIS type `ty` (the array must be of
/// [`arrow_type`]`(ty)`; anything else reads as NULL).
pub fn value_at(a: &dyn Array, row: usize, ty: &DataType) -> Value {
    if a.is_null(row) {
        return Value::Null(ty.clone());
    }
    let any = a.as_any();
    macro_rules! get {
        ($arr:ty) => {
            match any.downcast_ref::<$arr>() {
                Some(x) => x.value(row),
                None => return Value::Null(ty.clone()),
            }
        };
    }
    match ty {
        DataType::Bool => Value::Bool(get!(BooleanArray)),
        DataType::I1 => Value::I1(get!(Int8Array)),
        DataType::I2 => Value::I2(get!(Int16Array)),
        DataType::I4 => Value::I4(get!(Int32Array)),
        DataType::I8 => Value::I8(get!(Int64Array)),
        DataType::UI1 => Value::UI1(get!(UInt8Array)),
        DataType::UI2 => Value::UI2(get!(UInt16Array)),
        DataType::UI4 => Value::UI4(get!(UInt32Array)),
        DataType::UI8 => Value::UI8(get!(UInt64Array)),
        DataType::R4 => Value::R4(get!(Float32Array)),
        DataType::R8 => Value::R8(get!(Float64Array)),
        DataType::Numeric { precision, scale } => {
            let m = get!(Decimal128Array);
            match Decimal::try_from_i128_with_scale(m, u32::from(*scale)) {
                Ok(value) => Value::Numeric {
                    value,
                    precision: *precision,
                    scale: *scale,
                },
                Err(_) => Value::Null(ty.clone()),
            }
        }
        DataType::Decimal { scale } => {
            let m = get!(Decimal128Array);
            match Decimal::try_from_i128_with_scale(m, u32::from(*scale)) {
                Ok(value) => Value::Decimal {
                    value,
                    scale: *scale,
                },
                Err(_) => Value::Null(ty.clone()),
            }
        }
        DataType::Cy => match i64::try_from(get!(Decimal128Array)) {
            Ok(c) => Value::Cy(c),
            Err(_) => Value::Null(ty.clone()),
        },
        DataType::WStr { .. } => Value::WStr(get!(StringArray).to_string()),
        DataType::Str { .. } => Value::Str(get!(StringArray).to_string()),
        DataType::Text { .. } => Value::Text(get!(StringArray).to_string()),
        DataType::NText => Value::NText(get!(StringArray).to_string()),
        DataType::Guid => Value::parse_as(get!(StringArray), ty).unwrap_or(Value::Null(ty.clone())),
        DataType::DbTimestamp
        | DataType::Date
        | DataType::DbTimestamp2 { .. }
        | DataType::FileTime => match from_micros(get!(TimestampMicrosecondArray)) {
            Some(d) => match ty {
                DataType::Date => Value::Date(d),
                DataType::FileTime => Value::FileTime(d),
                DataType::DbTimestamp2 { scale } => Value::DbTimestamp2 {
                    value: d,
                    scale: *scale,
                },
                _ => Value::DbTimestamp(d),
            },
            None => Value::Null(ty.clone()),
        },
        DataType::DbDate => match from_micros(i64::from(get!(Date32Array)) * 86_400_000_000) {
            Some(d) => Value::DbDate(d.date()),
            None => Value::Null(ty.clone()),
        },
        DataType::DbTime | DataType::DbTime2 { .. } => {
            let us = get!(Time64MicrosecondArray);
            let t = Time::new(
                (us / 3_600_000_000) as i8,
                (us / 60_000_000 % 60) as i8,
                (us / 1_000_000 % 60) as i8,
                (us % 1_000_000 * 1000) as i32,
            );
            match (t, ty) {
                (Ok(t), DataType::DbTime2 { scale }) => Value::DbTime2 {
                    value: t,
                    scale: *scale,
                },
                (Ok(t), _) => Value::DbTime(t),
                (Err(_), _) => Value::Null(ty.clone()),
            }
        }
        DataType::Bytes { .. } => Value::Bytes(get!(BinaryArray).to_vec()),
        DataType::Image => Value::Image(get!(BinaryArray).to_vec()),
        DataType::DbTimestampOffset { .. } | DataType::Object => Value::Null(ty.clone()),
    }
}

/// The text a flat file holds for a value (NULL is the caller's business).
pub fn text_of(v: &Value) -> String {
    match v {
        Value::WStr(s) | Value::Str(s) | Value::Text(s) | Value::NText(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_strings_read_as_ssis_types() {
        assert_eq!(parse_type("DT_I4").unwrap(), DataType::I4);
        assert_eq!(
            parse_type("DT_WSTR, 20").unwrap(),
            DataType::WStr { len: Some(20) }
        );
        assert_eq!(
            parse_type("DT_NUMERIC, 18, 2").unwrap(),
            DataType::Numeric {
                precision: 18,
                scale: 2
            }
        );
        assert_eq!(
            parse_type("dt_wstr(5)").unwrap(),
            DataType::WStr { len: Some(5) }
        );
        assert!(
            parse_type("DT_WSTR")
                .unwrap_err()
                .contains("takes 1 parameter")
        );
        assert!(parse_type("DT_NOPE").is_err());
        assert!(
            parse_type("DT_I4, x")
                .unwrap_err()
                .contains("not a whole number")
        );
        assert!(
            parse_type("DT_DBTIMESTAMPOFFSET, 3")
                .unwrap_err()
                .contains("not supported")
        );
    }

    #[test]
    fn values_cross_arrow_and_back() {
        let cases = [
            ("DT_I4", "42"),
            ("DT_I8", "-7"),
            ("DT_UI2", "9"),
            ("DT_R8", "1.5"),
            ("DT_BOOL", "true"),
            ("DT_NUMERIC, 18, 2", "12.30"),
            ("DT_WSTR, 10", "abc"),
            ("DT_DBTIMESTAMP", "2024-02-29 13:45:10"),
            ("DT_DBDATE", "2024-02-29"),
            ("DT_DBTIME", "13:45:10"),
            ("DT_CY", "3.1416"),
        ];
        for (t, text) in cases {
            let ty = parse_type(t).unwrap();
            let v = Value::parse_as(text, &ty).unwrap();
            let a = to_array(&[v.clone(), Value::Null(ty.clone())], &ty);
            assert_eq!(a.data_type(), &arrow_type(&ty).unwrap(), "{t}");
            assert_eq!(value_at(a.as_ref(), 0, &ty), v, "{t}");
            assert!(value_at(a.as_ref(), 1, &ty).is_null(), "{t}");
        }
    }

    #[test]
    fn a_too_long_text_is_caught_before_any_truncation() {
        let ty = parse_type("DT_WSTR, 3").unwrap();
        let v = Value::parse_as("abcd", &unbounded(&ty)).unwrap();
        assert_eq!(too_long(&v, &ty), Some(3));
    }

    #[test]
    fn declared_lengths_are_checked() {
        let ty = DataType::WStr { len: Some(3) };
        assert_eq!(too_long(&Value::WStr("abcd".into()), &ty), Some(3));
        assert_eq!(too_long(&Value::WStr("abc".into()), &ty), None);
        assert_eq!(
            too_long(&Value::WStr("abcd".into()), &DataType::WStr { len: None }),
            None
        );
    }
}
