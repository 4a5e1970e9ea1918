//! SSIS types and values on Arrow: the type mapping, reading one value out of an array and
//! building an array from values.

use std::sync::Arc;

use checkflow_expr::jiff::civil::{Date, DateTime, Time};
use checkflow_expr::rust_decimal::Decimal;
use checkflow_expr::{DataType as Ssis, Value};
use datafusion::arrow::array::{
    Array, ArrayRef, BinaryArray, BinaryBuilder, BooleanArray, BooleanBuilder, Date32Array,
    Date32Builder, Decimal128Array, Decimal128Builder, FixedSizeBinaryArray,
    FixedSizeBinaryBuilder, Float32Array, Float32Builder, Float64Array, Float64Builder, Int8Array,
    Int8Builder, Int16Array, Int16Builder, Int32Array, Int32Builder, Int64Array, Int64Builder,
    NullArray, StringArray, StringBuilder, StructArray, Time32SecondArray, Time32SecondBuilder,
    Time64NanosecondArray, Time64NanosecondBuilder, TimestampMicrosecondArray,
    TimestampMicrosecondBuilder, TimestampMillisecondArray, TimestampMillisecondBuilder,
    TimestampNanosecondArray, TimestampNanosecondBuilder, UInt8Array, UInt8Builder, UInt16Array,
    UInt16Builder, UInt32Array, UInt32Builder, UInt64Array, UInt64Builder,
};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::datatypes::{DataType, Field, Fields, TimeUnit};

use super::VexprError;

/// Precision of DT_DECIMAL (a 96-bit mantissa holds 28 to 29 digits).
const DECIMAL_PRECISION: u8 = 29;
/// DT_CY as a decimal: 19 digits, 4 of them decimals (a 64-bit count of 1/10,000 units).
const CY_PRECISION: u8 = 19;
const CY_SCALE: i8 = 4;
/// Name of the UTC instant field of a DT_DBTIMESTAMPOFFSET struct.
pub const OFFSET_UTC_FIELD: &str = "utc";
/// Name of the offset (minutes east of UTC) field of a DT_DBTIMESTAMPOFFSET struct.
pub const OFFSET_MINUTES_FIELD: &str = "offset_minutes";

const NANOS_PER_DAY: i64 = 86_400_000_000_000;

/// The Arrow type that holds values of an SSIS type in a data flow.
///
/// | SSIS | Arrow |
/// | --- | --- |
/// | DT_BOOL | Boolean |
/// | DT_I1 .. DT_I8, DT_UI1 .. DT_UI8 | Int8 .. Int64, UInt8 .. UInt64 |
/// | DT_R4, DT_R8 | Float32, Float64 |
/// | DT_NUMERIC(p, s) | Decimal128(p, s) |
/// | DT_DECIMAL(s) | Decimal128(29, s) |
/// | DT_CY | Decimal128(19, 4) (the 64-bit count of 1/10,000 units) |
/// | DT_WSTR, DT_STR, DT_TEXT, DT_NTEXT | Utf8 |
/// | DT_BYTES, DT_IMAGE | Binary |
/// | DT_GUID | FixedSizeBinary(16), the 128 bits big-endian (byte order = text order) |
/// | DT_DBDATE | Date32 |
/// | DT_DBTIMESTAMP, DT_DATE, DT_FILETIME | Timestamp(Millisecond) |
/// | DT_DBTIMESTAMP2(0..6) | Timestamp(Microsecond) |
/// | DT_DBTIMESTAMP2(7) | Timestamp(Nanosecond) (years 1678 to 2261 only) |
/// | DT_DBTIME | Time32(Second) |
/// | DT_DBTIME2 | Time64(Nanosecond) |
/// | DT_DBTIMESTAMPOFFSET(fs) | Struct { utc: Timestamp(unit as DT_DBTIMESTAMP2(fs), "+00:00"), offset_minutes: Int16 } |
/// | DT_OBJECT | Null |
///
/// Timestamps have no time zone: they hold the civil date and time, counted from
/// 1970-01-01 00:00 as if it were UTC.
pub fn arrow_type(ty: &Ssis) -> DataType {
    match ty {
        Ssis::Bool => DataType::Boolean,
        Ssis::I1 => DataType::Int8,
        Ssis::I2 => DataType::Int16,
        Ssis::I4 => DataType::Int32,
        Ssis::I8 => DataType::Int64,
        Ssis::UI1 => DataType::UInt8,
        Ssis::UI2 => DataType::UInt16,
        Ssis::UI4 => DataType::UInt32,
        Ssis::UI8 => DataType::UInt64,
        Ssis::R4 => DataType::Float32,
        Ssis::R8 => DataType::Float64,
        Ssis::Numeric { precision, scale } => {
            DataType::Decimal128((*precision).max(1), *scale as i8)
        }
        Ssis::Decimal { scale } => DataType::Decimal128(DECIMAL_PRECISION, *scale as i8),
        Ssis::Cy => DataType::Decimal128(CY_PRECISION, CY_SCALE),
        Ssis::WStr { .. } | Ssis::Str { .. } | Ssis::Text { .. } | Ssis::NText => DataType::Utf8,
        Ssis::Bytes { .. } | Ssis::Image => DataType::Binary,
        Ssis::Guid => DataType::FixedSizeBinary(16),
        Ssis::DbDate => DataType::Date32,
        Ssis::DbTimestamp | Ssis::Date | Ssis::FileTime => {
            DataType::Timestamp(TimeUnit::Millisecond, None)
        }
        Ssis::DbTimestamp2 { scale } => DataType::Timestamp(fraction_unit(*scale), None),
        Ssis::DbTime => DataType::Time32(TimeUnit::Second),
        Ssis::DbTime2 { .. } => DataType::Time64(TimeUnit::Nanosecond),
        Ssis::DbTimestampOffset { scale } => DataType::Struct(offset_fields(*scale)),
        Ssis::Object => DataType::Null,
    }
}

fn fraction_unit(scale: u8) -> TimeUnit {
    if scale <= 6 {
        TimeUnit::Microsecond
    } else {
        TimeUnit::Nanosecond
    }
}

fn offset_fields(scale: u8) -> Fields {
    Fields::from(vec![
        Field::new(
            OFFSET_UTC_FIELD,
            DataType::Timestamp(fraction_unit(scale), Some(Arc::from("+00:00"))),
            true,
        ),
        Field::new(OFFSET_MINUTES_FIELD, DataType::Int16, true),
    ])
}

/// Days since 1970-01-01 of a civil date.
pub(crate) fn date_to_days(d: Date) -> i64 {
    checkflow_expr::dates::days_from_civil(
        i64::from(d.year()),
        i64::from(d.month()),
        i64::from(d.day()),
    )
}

/// The civil date `days` after 1970-01-01.
pub(crate) fn days_to_date(days: i64) -> Option<Date> {
    let z = days.checked_add(719_468)?;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    Date::new(
        i16::try_from(y).ok()?,
        i8::try_from(m).ok()?,
        i8::try_from(d).ok()?,
    )
    .ok()
}

fn time_to_nanos(t: Time) -> i64 {
    ((i64::from(t.hour()) * 60 + i64::from(t.minute())) * 60 + i64::from(t.second()))
        * 1_000_000_000
        + i64::from(t.subsec_nanosecond())
}

fn nanos_to_time(n: i64) -> Option<Time> {
    if !(0..NANOS_PER_DAY).contains(&n) {
        return None;
    }
    let secs = n / 1_000_000_000;
    Time::new(
        (secs / 3600) as i8,
        (secs / 60 % 60) as i8,
        (secs % 60) as i8,
        (n % 1_000_000_000) as i32,
    )
    .ok()
}

/// A civil date-time as a count of `unit`s since 1970-01-01 00:00 (sub-unit digits are
/// dropped; `None` when it does not fit 64 bits).
pub(crate) fn datetime_to_units(dt: DateTime, unit: TimeUnit) -> Option<i64> {
    let days = i128::from(date_to_days(dt.date()));
    let nanos = days * i128::from(NANOS_PER_DAY) + i128::from(time_to_nanos(dt.time()));
    let per = match unit {
        TimeUnit::Second => 1_000_000_000,
        TimeUnit::Millisecond => 1_000_000,
        TimeUnit::Microsecond => 1_000,
        TimeUnit::Nanosecond => 1,
    };
    i64::try_from(nanos.div_euclid(per)).ok()
}

/// The civil date-time `n` `unit`s after 1970-01-01 00:00.
pub(crate) fn units_to_datetime(n: i64, unit: TimeUnit) -> Option<DateTime> {
    let per: i64 = match unit {
        TimeUnit::Second => 1_000_000_000,
        TimeUnit::Millisecond => 1_000_000,
        TimeUnit::Microsecond => 1_000,
        TimeUnit::Nanosecond => 1,
    };
    let nanos = i128::from(n) * i128::from(per);
    let days = nanos.div_euclid(i128::from(NANOS_PER_DAY));
    let rest = nanos.rem_euclid(i128::from(NANOS_PER_DAY)) as i64;
    let date = days_to_date(i64::try_from(days).ok()?)?;
    Some(date.to_datetime(nanos_to_time(rest)?))
}

fn unit_of(ty: &DataType) -> TimeUnit {
    match ty {
        DataType::Timestamp(u, _) => *u,
        _ => TimeUnit::Nanosecond,
    }
}

fn bad(what: &str, ty: &Ssis) -> VexprError {
    VexprError::Internal(format!("{what} for {ty}"))
}

fn downcast<'a, T: 'static>(a: &'a dyn Array, ty: &Ssis) -> Result<&'a T, VexprError> {
    a.as_any().downcast_ref::<T>().ok_or_else(|| {
        VexprError::Internal(format!(
            "an array of Arrow type {} where {ty} ({}) was expected",
            a.data_type(),
            arrow_type(ty)
        ))
    })
}

/// The value in row `i` of `a`, an array of `arrow_type(ty)`.
pub fn value_at(a: &dyn Array, ty: &Ssis, i: usize) -> Result<Value, VexprError> {
    if a.is_null(i) {
        return Ok(Value::Null(ty.clone()));
    }
    Ok(match ty {
        Ssis::Bool => Value::Bool(downcast::<BooleanArray>(a, ty)?.value(i)),
        Ssis::I1 => Value::I1(downcast::<Int8Array>(a, ty)?.value(i)),
        Ssis::I2 => Value::I2(downcast::<Int16Array>(a, ty)?.value(i)),
        Ssis::I4 => Value::I4(downcast::<Int32Array>(a, ty)?.value(i)),
        Ssis::I8 => Value::I8(downcast::<Int64Array>(a, ty)?.value(i)),
        Ssis::UI1 => Value::UI1(downcast::<UInt8Array>(a, ty)?.value(i)),
        Ssis::UI2 => Value::UI2(downcast::<UInt16Array>(a, ty)?.value(i)),
        Ssis::UI4 => Value::UI4(downcast::<UInt32Array>(a, ty)?.value(i)),
        Ssis::UI8 => Value::UI8(downcast::<UInt64Array>(a, ty)?.value(i)),
        Ssis::R4 => Value::R4(downcast::<Float32Array>(a, ty)?.value(i)),
        Ssis::R8 => Value::R8(downcast::<Float64Array>(a, ty)?.value(i)),
        Ssis::Numeric { precision, scale } => Value::Numeric {
            value: decimal(downcast::<Decimal128Array>(a, ty)?.value(i), *scale, ty)?,
            precision: *precision,
            scale: *scale,
        },
        Ssis::Decimal { scale } => Value::Decimal {
            value: decimal(downcast::<Decimal128Array>(a, ty)?.value(i), *scale, ty)?,
            scale: *scale,
        },
        Ssis::Cy => {
            let m = downcast::<Decimal128Array>(a, ty)?.value(i);
            Value::Cy(i64::try_from(m).map_err(|_| bad("a currency beyond 64 bits", ty))?)
        }
        Ssis::WStr { .. } => Value::WStr(downcast::<StringArray>(a, ty)?.value(i).to_string()),
        Ssis::Str { .. } => Value::Str(downcast::<StringArray>(a, ty)?.value(i).to_string()),
        Ssis::Text { .. } => Value::Text(downcast::<StringArray>(a, ty)?.value(i).to_string()),
        Ssis::NText => Value::NText(downcast::<StringArray>(a, ty)?.value(i).to_string()),
        Ssis::Bytes { .. } => Value::Bytes(downcast::<BinaryArray>(a, ty)?.value(i).to_vec()),
        Ssis::Image => Value::Image(downcast::<BinaryArray>(a, ty)?.value(i).to_vec()),
        Ssis::Guid => {
            let b = downcast::<FixedSizeBinaryArray>(a, ty)?.value(i);
            let bytes: [u8; 16] = b
                .try_into()
                .map_err(|_| bad("a GUID not of 16 bytes", ty))?;
            Value::Guid(u128::from_be_bytes(bytes))
        }
        Ssis::DbDate => {
            let d = downcast::<Date32Array>(a, ty)?.value(i);
            Value::DbDate(days_to_date(i64::from(d)).ok_or_else(|| bad("a date out of range", ty))?)
        }
        Ssis::DbTimestamp | Ssis::Date | Ssis::FileTime => {
            let ms = downcast::<TimestampMillisecondArray>(a, ty)?.value(i);
            let dt = units_to_datetime(ms, TimeUnit::Millisecond)
                .ok_or_else(|| bad("a timestamp out of range", ty))?;
            match ty {
                Ssis::DbTimestamp => Value::DbTimestamp(dt),
                Ssis::Date => Value::Date(dt),
                _ => Value::FileTime(dt),
            }
        }
        Ssis::DbTimestamp2 { scale } => {
            let n = timestamp_units(a, ty, i)?;
            let value = units_to_datetime(n, fraction_unit(*scale))
                .ok_or_else(|| bad("a timestamp out of range", ty))?;
            Value::DbTimestamp2 {
                value,
                scale: *scale,
            }
        }
        Ssis::DbTime => {
            let s = downcast::<Time32SecondArray>(a, ty)?.value(i);
            Value::DbTime(
                nanos_to_time(i64::from(s) * 1_000_000_000)
                    .ok_or_else(|| bad("a time out of range", ty))?,
            )
        }
        Ssis::DbTime2 { scale } => {
            let n = downcast::<Time64NanosecondArray>(a, ty)?.value(i);
            Value::DbTime2 {
                value: nanos_to_time(n).ok_or_else(|| bad("a time out of range", ty))?,
                scale: *scale,
            }
        }
        Ssis::DbTimestampOffset { scale } => {
            let s = downcast::<StructArray>(a, ty)?;
            let (utc, off) = (s.column(0), s.column(1));
            if utc.is_null(i) || off.is_null(i) {
                return Ok(Value::Null(ty.clone()));
            }
            let n = timestamp_units(utc.as_ref(), ty, i)?;
            let offset = downcast::<Int16Array>(off.as_ref(), ty)?.value(i);
            let unit = fraction_unit(*scale);
            let local = n
                .checked_add(i64::from(offset) * 60 * units_per_second(unit))
                .and_then(|l| units_to_datetime(l, unit))
                .ok_or_else(|| bad("a timestamp out of range", ty))?;
            Value::DbTimestampOffset {
                value: local,
                offset,
                scale: *scale,
            }
        }
        Ssis::Object => Value::Null(Ssis::Object),
    })
}

fn units_per_second(unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => 1,
        TimeUnit::Millisecond => 1_000,
        TimeUnit::Microsecond => 1_000_000,
        TimeUnit::Nanosecond => 1_000_000_000,
    }
}

fn timestamp_units(a: &dyn Array, ty: &Ssis, i: usize) -> Result<i64, VexprError> {
    Ok(match unit_of(a.data_type()) {
        TimeUnit::Microsecond => downcast::<TimestampMicrosecondArray>(a, ty)?.value(i),
        TimeUnit::Nanosecond => downcast::<TimestampNanosecondArray>(a, ty)?.value(i),
        TimeUnit::Millisecond => downcast::<TimestampMillisecondArray>(a, ty)?.value(i),
        TimeUnit::Second => return Err(bad("a timestamp in seconds", ty)),
    })
}

fn decimal(mantissa: i128, scale: u8, ty: &Ssis) -> Result<Decimal, VexprError> {
    Decimal::try_from_i128_with_scale(mantissa, u32::from(scale))
        .map_err(|_| bad("a decimal beyond 28 digits", ty))
}

/// Builds an array of `arrow_type(ty)` from values of `ty`, one `push` a row.
pub struct ValueBuilder {
    ty: Ssis,
    inner: Inner,
}

enum Inner {
    Bool(BooleanBuilder),
    I1(Int8Builder),
    I2(Int16Builder),
    I4(Int32Builder),
    I8(Int64Builder),
    UI1(UInt8Builder),
    UI2(UInt16Builder),
    UI4(UInt32Builder),
    UI8(UInt64Builder),
    R4(Float32Builder),
    R8(Float64Builder),
    Dec(Decimal128Builder, u8),
    Str(StringBuilder),
    Bin(BinaryBuilder),
    Guid(FixedSizeBinaryBuilder),
    Date(Date32Builder),
    Ms(TimestampMillisecondBuilder),
    Us(TimestampMicrosecondBuilder),
    Ns(TimestampNanosecondBuilder),
    Time(Time32SecondBuilder),
    Time2(Time64NanosecondBuilder),
    /// DT_DBTIMESTAMPOFFSET: UTC instants, offsets, validity.
    Offset(Vec<i64>, Vec<i16>, Vec<bool>, u8),
    Null(usize),
}

impl ValueBuilder {
    /// A builder for `rows` values of `ty`.
    pub fn new(ty: &Ssis, rows: usize) -> ValueBuilder {
        let inner = match ty {
            Ssis::Bool => Inner::Bool(BooleanBuilder::with_capacity(rows)),
            Ssis::I1 => Inner::I1(Int8Builder::with_capacity(rows)),
            Ssis::I2 => Inner::I2(Int16Builder::with_capacity(rows)),
            Ssis::I4 => Inner::I4(Int32Builder::with_capacity(rows)),
            Ssis::I8 => Inner::I8(Int64Builder::with_capacity(rows)),
            Ssis::UI1 => Inner::UI1(UInt8Builder::with_capacity(rows)),
            Ssis::UI2 => Inner::UI2(UInt16Builder::with_capacity(rows)),
            Ssis::UI4 => Inner::UI4(UInt32Builder::with_capacity(rows)),
            Ssis::UI8 => Inner::UI8(UInt64Builder::with_capacity(rows)),
            Ssis::R4 => Inner::R4(Float32Builder::with_capacity(rows)),
            Ssis::R8 => Inner::R8(Float64Builder::with_capacity(rows)),
            Ssis::Numeric { .. } | Ssis::Decimal { .. } | Ssis::Cy => {
                let (p, s) = match arrow_type(ty) {
                    DataType::Decimal128(p, s) => (p, s),
                    _ => (38, 0),
                };
                Inner::Dec(
                    Decimal128Builder::with_capacity(rows)
                        .with_data_type(DataType::Decimal128(p, s)),
                    s as u8,
                )
            }
            Ssis::WStr { .. } | Ssis::Str { .. } | Ssis::Text { .. } | Ssis::NText => {
                Inner::Str(StringBuilder::with_capacity(rows, rows * 8))
            }
            Ssis::Bytes { .. } | Ssis::Image => {
                Inner::Bin(BinaryBuilder::with_capacity(rows, rows * 8))
            }
            Ssis::Guid => Inner::Guid(FixedSizeBinaryBuilder::with_capacity(rows, 16)),
            Ssis::DbDate => Inner::Date(Date32Builder::with_capacity(rows)),
            Ssis::DbTimestamp | Ssis::Date | Ssis::FileTime => {
                Inner::Ms(TimestampMillisecondBuilder::with_capacity(rows))
            }
            Ssis::DbTimestamp2 { scale } if *scale <= 6 => {
                Inner::Us(TimestampMicrosecondBuilder::with_capacity(rows))
            }
            Ssis::DbTimestamp2 { .. } => Inner::Ns(TimestampNanosecondBuilder::with_capacity(rows)),
            Ssis::DbTime => Inner::Time(Time32SecondBuilder::with_capacity(rows)),
            Ssis::DbTime2 { .. } => Inner::Time2(Time64NanosecondBuilder::with_capacity(rows)),
            Ssis::DbTimestampOffset { scale } => Inner::Offset(
                Vec::with_capacity(rows),
                Vec::with_capacity(rows),
                Vec::with_capacity(rows),
                *scale,
            ),
            Ssis::Object => Inner::Null(0),
        };
        ValueBuilder {
            ty: ty.clone(),
            inner,
        }
    }

    /// Appends a NULL.
    pub fn push_null(&mut self) {
        match &mut self.inner {
            Inner::Bool(b) => b.append_null(),
            Inner::I1(b) => b.append_null(),
            Inner::I2(b) => b.append_null(),
            Inner::I4(b) => b.append_null(),
            Inner::I8(b) => b.append_null(),
            Inner::UI1(b) => b.append_null(),
            Inner::UI2(b) => b.append_null(),
            Inner::UI4(b) => b.append_null(),
            Inner::UI8(b) => b.append_null(),
            Inner::R4(b) => b.append_null(),
            Inner::R8(b) => b.append_null(),
            Inner::Dec(b, _) => b.append_null(),
            Inner::Str(b) => b.append_null(),
            Inner::Bin(b) => b.append_null(),
            Inner::Guid(b) => b.append_null(),
            Inner::Date(b) => b.append_null(),
            Inner::Ms(b) => b.append_null(),
            Inner::Us(b) => b.append_null(),
            Inner::Ns(b) => b.append_null(),
            Inner::Time(b) => b.append_null(),
            Inner::Time2(b) => b.append_null(),
            Inner::Offset(u, o, v, _) => {
                u.push(0);
                o.push(0);
                v.push(false);
            }
            Inner::Null(n) => *n += 1,
        }
    }

    /// Appends a field read on the flat file's fast path (`crate::text`):
    /// `text` is the field, for [`crate::text::Fast::Text`].
    pub fn push_fast(&mut self, v: crate::text::Fast, text: &str) -> Result<(), VexprError> {
        use crate::text::Fast;
        let range = || VexprError::Internal(format!("{text:?} is out of the range of {}", self.ty));
        match (&mut self.inner, v) {
            (Inner::Str(b), Fast::Text) => b.append_value(text),
            (Inner::I1(b), Fast::Int(n)) => b.append_value(i8::try_from(n).map_err(|_| range())?),
            (Inner::I2(b), Fast::Int(n)) => b.append_value(i16::try_from(n).map_err(|_| range())?),
            (Inner::I4(b), Fast::Int(n)) => b.append_value(i32::try_from(n).map_err(|_| range())?),
            (Inner::I8(b), Fast::Int(n)) => b.append_value(n),
            (Inner::UI1(b), Fast::Int(n)) => b.append_value(u8::try_from(n).map_err(|_| range())?),
            (Inner::UI2(b), Fast::Int(n)) => b.append_value(u16::try_from(n).map_err(|_| range())?),
            (Inner::UI4(b), Fast::Int(n)) => b.append_value(u32::try_from(n).map_err(|_| range())?),
            (Inner::UI8(b), Fast::UInt(n)) => b.append_value(n),
            (Inner::R8(b), Fast::Real(x)) => b.append_value(x),
            (Inner::Dec(b, _), Fast::Dec(m)) => b.append_value(m),
            (Inner::Ms(b), Fast::Ms(ms)) => b.append_value(ms),
            (Inner::Date(b), Fast::Days(d)) => b.append_value(d),
            _ => {
                return Err(VexprError::Internal(format!(
                    "a fast-path value {v:?} for a column of {}",
                    self.ty
                )));
            }
        }
        Ok(())
    }

    /// Appends a value of the builder's type (a NULL of any type appends a NULL).
    pub fn push(&mut self, v: &Value) -> Result<(), VexprError> {
        if v.is_null() {
            self.push_null();
            return Ok(());
        }
        let ty = &self.ty;
        let mismatch = || VexprError::Internal(format!("a value {v:?} where {ty} was expected"));
        let range = || VexprError::Internal(format!("{v} is out of the Arrow range of {ty}"));
        match (&mut self.inner, v) {
            (Inner::Bool(b), Value::Bool(x)) => b.append_value(*x),
            (Inner::I1(b), Value::I1(x)) => b.append_value(*x),
            (Inner::I2(b), Value::I2(x)) => b.append_value(*x),
            (Inner::I4(b), Value::I4(x)) => b.append_value(*x),
            (Inner::I8(b), Value::I8(x)) => b.append_value(*x),
            (Inner::UI1(b), Value::UI1(x)) => b.append_value(*x),
            (Inner::UI2(b), Value::UI2(x)) => b.append_value(*x),
            (Inner::UI4(b), Value::UI4(x)) => b.append_value(*x),
            (Inner::UI8(b), Value::UI8(x)) => b.append_value(*x),
            (Inner::R4(b), Value::R4(x)) => b.append_value(*x),
            (Inner::R8(b), Value::R8(x)) => b.append_value(*x),
            (Inner::Dec(b, s), Value::Numeric { value, .. } | Value::Decimal { value, .. }) => {
                let mut d = *value;
                d.rescale(u32::from(*s));
                if d.scale() != u32::from(*s) {
                    return Err(range());
                }
                b.append_value(d.mantissa());
            }
            (Inner::Dec(b, _), Value::Cy(units)) => b.append_value(i128::from(*units)),
            (Inner::Str(b), Value::WStr(s) | Value::Str(s) | Value::Text(s) | Value::NText(s)) => {
                b.append_value(s)
            }
            (Inner::Bin(b), Value::Bytes(x) | Value::Image(x)) => b.append_value(x),
            (Inner::Guid(b), Value::Guid(g)) => b
                .append_value(g.to_be_bytes())
                .map_err(|e| VexprError::Internal(e.to_string()))?,
            (Inner::Date(b), Value::DbDate(d)) => {
                b.append_value(i32::try_from(date_to_days(*d)).map_err(|_| range())?)
            }
            (Inner::Ms(b), Value::DbTimestamp(dt) | Value::Date(dt) | Value::FileTime(dt)) => {
                b.append_value(datetime_to_units(*dt, TimeUnit::Millisecond).ok_or_else(range)?)
            }
            (Inner::Us(b), Value::DbTimestamp2 { value, .. }) => {
                b.append_value(datetime_to_units(*value, TimeUnit::Microsecond).ok_or_else(range)?)
            }
            (Inner::Ns(b), Value::DbTimestamp2 { value, .. }) => {
                b.append_value(datetime_to_units(*value, TimeUnit::Nanosecond).ok_or_else(range)?)
            }
            (Inner::Time(b), Value::DbTime(t)) => {
                b.append_value((time_to_nanos(*t) / 1_000_000_000) as i32)
            }
            (Inner::Time2(b), Value::DbTime2 { value, .. }) => {
                b.append_value(time_to_nanos(*value))
            }
            (Inner::Offset(u, o, valid, scale), Value::DbTimestampOffset { value, offset, .. }) => {
                let unit = fraction_unit(*scale);
                let local = datetime_to_units(*value, unit).ok_or_else(range)?;
                let utc = local
                    .checked_sub(i64::from(*offset) * 60 * units_per_second(unit))
                    .ok_or_else(range)?;
                u.push(utc);
                o.push(*offset);
                valid.push(true);
            }
            _ => return Err(mismatch()),
        }
        Ok(())
    }

    /// The array built so far.
    pub fn finish(self) -> ArrayRef {
        match self.inner {
            Inner::Bool(mut b) => Arc::new(b.finish()),
            Inner::I1(mut b) => Arc::new(b.finish()),
            Inner::I2(mut b) => Arc::new(b.finish()),
            Inner::I4(mut b) => Arc::new(b.finish()),
            Inner::I8(mut b) => Arc::new(b.finish()),
            Inner::UI1(mut b) => Arc::new(b.finish()),
            Inner::UI2(mut b) => Arc::new(b.finish()),
            Inner::UI4(mut b) => Arc::new(b.finish()),
            Inner::UI8(mut b) => Arc::new(b.finish()),
            Inner::R4(mut b) => Arc::new(b.finish()),
            Inner::R8(mut b) => Arc::new(b.finish()),
            Inner::Dec(mut b, _) => Arc::new(b.finish()),
            Inner::Str(mut b) => Arc::new(b.finish()),
            Inner::Bin(mut b) => Arc::new(b.finish()),
            Inner::Guid(mut b) => Arc::new(b.finish()),
            Inner::Date(mut b) => Arc::new(b.finish()),
            Inner::Ms(mut b) => Arc::new(b.finish()),
            Inner::Us(mut b) => Arc::new(b.finish()),
            Inner::Ns(mut b) => Arc::new(b.finish()),
            Inner::Time(mut b) => Arc::new(b.finish()),
            Inner::Time2(mut b) => Arc::new(b.finish()),
            Inner::Offset(u, o, valid, scale) => {
                let fields = offset_fields(scale);
                let nulls = NullBuffer::from(valid);
                let utc: ArrayRef = match fraction_unit(scale) {
                    TimeUnit::Nanosecond => Arc::new(
                        TimestampNanosecondArray::new(u.into(), Some(nulls.clone()))
                            .with_timezone("+00:00"),
                    ),
                    _ => Arc::new(
                        TimestampMicrosecondArray::new(u.into(), Some(nulls.clone()))
                            .with_timezone("+00:00"),
                    ),
                };
                let off: ArrayRef = Arc::new(Int16Array::new(o.into(), Some(nulls.clone())));
                Arc::new(StructArray::new(fields, vec![utc, off], Some(nulls)))
            }
            Inner::Null(n) => Arc::new(NullArray::new(n)),
        }
    }
}

/// An array of `rows` copies of `v` (of type `ty`).
pub fn repeat(v: &Value, ty: &Ssis, rows: usize) -> Result<ArrayRef, VexprError> {
    let mut b = ValueBuilder::new(ty, rows);
    for _ in 0..rows {
        b.push(v)?;
    }
    Ok(b.finish())
}

/// Reads a whole array of `arrow_type(ty)` as values (for tests and tools).
pub fn values_of(a: &dyn Array, ty: &Ssis) -> Result<Vec<Value>, VexprError> {
    (0..a.len()).map(|i| value_at(a, ty, i)).collect()
}

/// Builds an array of `arrow_type(ty)` from values.
pub fn array_of(values: &[Value], ty: &Ssis) -> Result<ArrayRef, VexprError> {
    let mut b = ValueBuilder::new(ty, values.len());
    for v in values {
        b.push(v)?;
    }
    Ok(b.finish())
}
