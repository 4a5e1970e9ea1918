//! The date and time types as one family: building a value of any of them from a civil
//! date-time, converting between them (offsets to UTC, time-only values onto today's date,
//! fractional seconds truncated), their text forms, and the keys they compare by.

use jiff::civil::{Date, DateTime, Time};

use crate::datatype::DataType;
use crate::value::Value;

/// The widest offset DT_DBTIMESTAMPOFFSET accepts, in minutes (14 hours).
const MAX_OFFSET_MINUTES: i32 = 14 * 60;

/// Drops the fractional-second digits past `digits`.
pub(crate) fn truncate_nanos(nanos: i32, digits: u8) -> i32 {
    let unit = 10i32.pow(9 - u32::from(digits.min(9)));
    nanos - nanos % unit
}

fn with_nanos(dt: DateTime, digits: u8) -> DateTime {
    let ns = truncate_nanos(dt.subsec_nanosecond(), digits);
    dt.with().subsec_nanosecond(ns).build().unwrap_or(dt)
}

fn time_with_nanos(t: Time, digits: u8) -> Time {
    let ns = truncate_nanos(t.subsec_nanosecond(), digits);
    t.with().subsec_nanosecond(ns).build().unwrap_or(t)
}

/// `.fffffff` with exactly `digits` digits (nothing for 0).
fn fraction(nanos: i32, digits: u8) -> String {
    if digits == 0 {
        return String::new();
    }
    let all = format!("{:09}", nanos.max(0));
    format!(".{}", &all[..usize::from(digits.min(9))])
}

/// `hh:mm:ss` followed by `digits` fractional digits.
pub(crate) fn format_time(t: &Time, digits: u8) -> String {
    format!(
        "{:02}:{:02}:{:02}{}",
        t.hour(),
        t.minute(),
        t.second(),
        fraction(t.subsec_nanosecond(), digits)
    )
}

/// `yyyy-mm-dd hh:mm:ss` followed by `digits` fractional digits.
pub(crate) fn format_datetime_digits(dt: &DateTime, digits: u8) -> String {
    format!(
        "{:04}-{:02}-{:02} {}",
        dt.year(),
        dt.month(),
        dt.day(),
        format_time(&dt.time(), digits)
    )
}

/// `+hh:mm` / `-hh:mm`.
pub(crate) fn format_offset(minutes: i16) -> String {
    let sign = if minutes < 0 { '-' } else { '+' };
    let m = i32::from(minutes).abs();
    format!("{sign}{:02}:{:02}", m / 60, m % 60)
}

/// DT_FILETIME's text form as the data types page gives it: `yyyy-mm-dd hh:mm:ss:fff`.
pub(crate) fn format_filetime(dt: &DateTime) -> String {
    let base = format_datetime_digits(dt, 0);
    format!("{base}:{:03}", dt.subsec_nanosecond() / 1_000_000)
}

/// Today's date on the local clock: what SSIS puts under a time-only value converted to a
/// type with a date.
fn today() -> Date {
    jiff::Zoned::now().date()
}

/// Shifts a civil date-time by `minutes`, or `None` past the representable range.
fn shift(dt: DateTime, minutes: i32) -> Option<DateTime> {
    dt.checked_add(jiff::Span::new().minutes(i64::from(minutes)))
        .ok()
}

/// A date or time value as a civil date-time (time-only values on `date`) and its offset.
fn moment(v: &Value, date: impl Fn() -> Date) -> Option<(DateTime, Option<i16>)> {
    Some(match v {
        Value::DbTimestamp(d) | Value::Date(d) | Value::FileTime(d) => (*d, None),
        Value::DbTimestamp2 { value, .. } => (*value, None),
        Value::DbTimestampOffset { value, offset, .. } => (*value, Some(*offset)),
        Value::DbDate(d) => (d.to_datetime(Time::midnight()), None),
        Value::DbTime(t) | Value::DbTime2 { value: t, .. } => (date().to_datetime(*t), None),
        _ => return None,
    })
}

/// The civil date-time a date value is ordered by: UTC for DT_DBTIMESTAMPOFFSET (a value
/// without an offset counts as UTC), and a fixed day under the time-only types (which are
/// only ever compared with each other).
pub(crate) fn compare_key(v: &Value) -> Option<DateTime> {
    let fixed_day = || Date::new(2000, 1, 1).unwrap_or(Date::ZERO);
    let (dt, offset) = moment(v, fixed_day)?;
    match offset {
        Some(o) => shift(dt, -i32::from(o)),
        None => Some(dt),
    }
}

/// Converts a date or time value to another date or time type, as a cast does: an offset
/// value becomes UTC for a type without an offset, a value without one gets `+00:00`; a
/// time-only value is put on today's date; the date is dropped for a time type and the
/// time for DT_DBDATE; fractional seconds are truncated to the target's digits.
pub(crate) fn convert(v: &Value, ty: &DataType) -> Result<Value, String> {
    let (dt, offset) = moment(v, today).ok_or("the value is not a date or time")?;
    if let DataType::DbTimestampOffset { scale } = ty {
        return Ok(Value::DbTimestampOffset {
            value: with_nanos(dt, *scale),
            offset: offset.unwrap_or(0),
            scale: *scale,
        });
    }
    let dt = match offset {
        Some(o) => shift(dt, -i32::from(o)).ok_or("the value in UTC is out of range")?,
        None => dt,
    };
    build(dt, ty)
}

/// Builds a value of the date or time type `ty` (not DT_DBTIMESTAMPOFFSET) from a civil
/// date-time, checking the type's range and truncating fractional seconds.
pub(crate) fn build(dt: DateTime, ty: &DataType) -> Result<Value, String> {
    let year = dt.year();
    let dated = !ty.is_time_only();
    if dated && !(1..=9999).contains(&year) {
        return Err("the year must be between 1 and 9999".to_string());
    }
    Ok(match ty {
        DataType::DbDate => Value::DbDate(dt.date()),
        DataType::Date => Value::Date(with_nanos(dt, 3)),
        DataType::DbTimestamp => Value::DbTimestamp(with_nanos(dt, 3)),
        DataType::FileTime => {
            if year < 1601 {
                return Err(
                    "DT_FILETIME counts from 1601-01-01; earlier dates cannot be held".to_string(),
                );
            }
            Value::FileTime(with_nanos(dt, 3))
        }
        DataType::DbTimestamp2 { scale } => Value::DbTimestamp2 {
            value: with_nanos(dt, *scale),
            scale: *scale,
        },
        DataType::DbTime => Value::DbTime(time_with_nanos(dt.time(), 0)),
        DataType::DbTime2 { scale } => Value::DbTime2 {
            value: time_with_nanos(dt.time(), *scale),
            scale: *scale,
        },
        DataType::DbTimestampOffset { scale } => Value::DbTimestampOffset {
            value: with_nanos(dt, *scale),
            offset: 0,
            scale: *scale,
        },
        other => return Err(format!("{} is not a date or time type", other.ssis_name())),
    })
}

/// Splits a trailing time-zone offset (`+05:35`, `- 3:30`, `+5:35`) off date-time text.
/// Returns the text before it and the offset in minutes, or `None` when there is no offset.
pub(crate) fn split_offset(text: &str) -> Result<(&str, Option<i16>), &'static str> {
    const BAD: &str =
        "expected a time-zone offset such as +05:30 or -03:00, between -14:00 and +14:00";
    let t = text.trim_end();
    // The offset follows the time, so look for its sign after the date's own dashes.
    let Some(time_start) = t.find([' ', 'T']) else {
        return Ok((t, None));
    };
    let Some(rel) = t[time_start..].rfind(['+', '-']) else {
        return Ok((t, None));
    };
    let at = time_start + rel;
    let negative = t.as_bytes()[at] == b'-';
    let body = t[at + 1..].trim_start();
    let (h, m) = body.split_once(':').ok_or(BAD)?;
    let digits_ok = |s: &str, max_len: usize| {
        !s.is_empty() && s.len() <= max_len && s.bytes().all(|b| b.is_ascii_digit())
    };
    if !digits_ok(h, 2) || m.len() != 2 || !digits_ok(m, 2) {
        return Err(BAD);
    }
    let hours: i32 = h.parse().map_err(|_| BAD)?;
    let minutes: i32 = m.parse().map_err(|_| BAD)?;
    if minutes > 59 {
        return Err(BAD);
    }
    let total = hours * 60 + minutes;
    if total > MAX_OFFSET_MINUTES {
        return Err(BAD);
    }
    let total = if negative { -total } else { total };
    Ok((t[..at].trim_end(), Some(total as i16)))
}

/// Reads `h[h]:mm[:ss[.fffffff]]` (the forms of DT_DBTIME and DT_DBTIME2) as a time.
pub(crate) fn parse_time(text: &str) -> Result<Time, &'static str> {
    const FORM: &str = "expected a time such as 16:34:52 or 16:34:52.1234567";
    let t = text.trim();
    let (hms, frac) = match t.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (t, None),
    };
    let parts: Vec<&str> = hms.split(':').collect();
    if !(2..=3).contains(&parts.len())
        || parts
            .iter()
            .any(|p| p.is_empty() || p.len() > 2 || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(FORM);
    }
    let n = |s: &str| s.parse::<i8>().map_err(|_| FORM);
    let (h, m) = (n(parts[0])?, n(parts[1])?);
    let s = if parts.len() == 3 { n(parts[2])? } else { 0 };
    let nanos = match frac {
        Some(f) => {
            if f.is_empty() || f.len() > 9 || !f.bytes().all(|b| b.is_ascii_digit()) {
                return Err("expected up to 9 digits of fractional seconds");
            }
            format!("{f:0<9}").parse::<i32>().map_err(|_| FORM)?
        }
        None => 0,
    };
    Time::new(h, m, s, nanos).map_err(|_| "not a valid time of day")
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::{datetime, time};

    #[test]
    fn offsets_split_off_the_text() {
        assert_eq!(
            split_offset("1999-10-11 16:34:52.1234567 + 5:35"),
            Ok(("1999-10-11 16:34:52.1234567", Some(335)))
        );
        assert_eq!(
            split_offset("1999-10-11 20:34:52.123 -3:30"),
            Ok(("1999-10-11 20:34:52.123", Some(-210)))
        );
        assert_eq!(split_offset("1999-10-11"), Ok(("1999-10-11", None)));
        assert_eq!(
            split_offset("1999-10-11 04:30:00"),
            Ok(("1999-10-11 04:30:00", None))
        );
        assert!(split_offset("1999-10-11 04:30:00 +15:00").is_err());
        assert!(split_offset("1999-10-11 04:30:00 +01:60").is_err());
    }

    #[test]
    fn texts_have_the_types_digits() {
        let t = time(16, 34, 52, 123_456_700);
        assert_eq!(format_time(&t, 0), "16:34:52");
        assert_eq!(format_time(&t, 5), "16:34:52.12345");
        assert_eq!(format_offset(-210), "-03:30");
        assert_eq!(format_offset(120), "+02:00");
        assert_eq!(
            format_filetime(&datetime(2026, 11, 21, 4, 30, 0, 5_000_000)),
            "2026-11-21 04:30:00:005"
        );
    }

    #[test]
    fn offset_values_become_utc_without_an_offset() {
        let v = Value::DbTimestampOffset {
            value: datetime(1999, 10, 11, 20, 34, 52, 0),
            offset: -210,
            scale: 0,
        };
        assert_eq!(
            convert(&v, &DataType::DbTimestamp),
            Ok(Value::DbTimestamp(datetime(1999, 10, 12, 0, 4, 52, 0)))
        );
        assert_eq!(compare_key(&v), Some(datetime(1999, 10, 12, 0, 4, 52, 0)));
    }

    #[test]
    fn parse_time_accepts_the_documented_forms() {
        assert_eq!(parse_time("16:34:52"), Ok(time(16, 34, 52, 0)));
        assert_eq!(
            parse_time("16:34:52.12345"),
            Ok(time(16, 34, 52, 123_450_000))
        );
        assert!(parse_time("25:00:00").is_err());
        assert!(parse_time("1999-10-11").is_err());
    }
}
