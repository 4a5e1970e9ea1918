//! Date arithmetic for DATEADD, DATEDIFF and DATEPART, with SQL Server's semantics:
//! DATEDIFF counts boundaries crossed, weeks start on Sunday, DATEADD clamps the day of month.

use jiff::civil::{Date, DateTime};

use crate::error::ExprError;

/// A date part named by its SSIS name or abbreviation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatePart {
    Year,
    Quarter,
    Month,
    DayOfYear,
    Day,
    Week,
    Weekday,
    Hour,
    Minute,
    Second,
    Millisecond,
}

/// The names DATEPART, DATEADD and DATEDIFF accept, for error messages.
pub const DATEPART_NAMES: &str = "year (yy, yyyy), quarter (qq, q), month (mm, m), dayofyear (dy, y), day (dd, d), week (wk, ww), weekday (dw, w), hour (hh), minute (mi, n), second (ss, s), millisecond (ms)";

impl DatePart {
    /// Parses a part name, case-insensitively.
    pub fn parse(name: &str) -> Option<DatePart> {
        Some(match name.trim().to_ascii_lowercase().as_str() {
            "year" | "yy" | "yyyy" => DatePart::Year,
            "quarter" | "qq" | "q" => DatePart::Quarter,
            "month" | "mm" | "m" => DatePart::Month,
            "dayofyear" | "dy" | "y" => DatePart::DayOfYear,
            "day" | "dd" | "d" => DatePart::Day,
            "week" | "wk" | "ww" => DatePart::Week,
            "weekday" | "dw" | "w" => DatePart::Weekday,
            "hour" | "hh" => DatePart::Hour,
            "minute" | "mi" | "n" => DatePart::Minute,
            "second" | "ss" | "s" => DatePart::Second,
            "millisecond" | "ms" => DatePart::Millisecond,
            _ => return None,
        })
    }

    /// The error for an unknown part name.
    pub fn unknown(func: &str, name: &str) -> ExprError {
        ExprError::eval(format!(
            "{func}: \"{name}\" is not a date part; use one of {DATEPART_NAMES}"
        ))
    }
}

const MS_PER_DAY: i64 = 86_400_000;

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_of(d: Date) -> i64 {
    days_from_civil(
        i64::from(d.year()),
        i64::from(d.month()),
        i64::from(d.day()),
    )
}

/// Milliseconds since 1970-01-01 00:00:00.
fn millis_of(dt: &DateTime) -> i64 {
    days_of(dt.date()) * MS_PER_DAY
        + i64::from(dt.hour()) * 3_600_000
        + i64::from(dt.minute()) * 60_000
        + i64::from(dt.second()) * 1000
        + i64::from(dt.subsec_nanosecond() / 1_000_000)
}

fn from_millis(ms: i64) -> Option<DateTime> {
    let days = ms.div_euclid(MS_PER_DAY);
    let rest = ms.rem_euclid(MS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    if !(1..=9999).contains(&y) {
        return None;
    }
    DateTime::new(
        y as i16,
        m as i8,
        d as i8,
        (rest / 3_600_000) as i8,
        (rest / 60_000 % 60) as i8,
        (rest / 1000 % 60) as i8,
        (rest % 1000) as i32 * 1_000_000,
    )
    .ok()
}

fn days_in_month(y: i64, m: i64) -> i64 {
    let next = if m == 12 {
        days_from_civil(y + 1, 1, 1)
    } else {
        days_from_civil(y, m + 1, 1)
    };
    next - days_from_civil(y, m, 1)
}

/// Day of the week, Sunday = 1 .. Saturday = 7 (SQL Server's default DATEFIRST 7).
fn weekday(d: Date) -> i64 {
    // 1970-01-01 was a Thursday (5).
    (days_of(d) + 4).rem_euclid(7) + 1
}

/// The value of one part of a date.
pub fn datepart(part: DatePart, dt: &DateTime) -> i64 {
    let d = dt.date();
    match part {
        DatePart::Year => i64::from(d.year()),
        DatePart::Quarter => (i64::from(d.month()) - 1) / 3 + 1,
        DatePart::Month => i64::from(d.month()),
        DatePart::DayOfYear => i64::from(d.day_of_year()),
        DatePart::Day => i64::from(d.day()),
        DatePart::Week => {
            // Week 1 holds January 1st; weeks start on Sunday.
            let jan1 = jiff::civil::Date::new(d.year(), 1, 1).unwrap_or(d);
            let offset = weekday(jan1) - 1;
            (i64::from(d.day_of_year()) + offset - 1) / 7 + 1
        }
        DatePart::Weekday => weekday(d),
        DatePart::Hour => i64::from(dt.hour()),
        DatePart::Minute => i64::from(dt.minute()),
        DatePart::Second => i64::from(dt.second()),
        DatePart::Millisecond => i64::from(dt.subsec_nanosecond() / 1_000_000),
    }
}

fn out_of_range() -> ExprError {
    ExprError::eval("DATEADD: the result is outside the supported dates (years 1 to 9999)")
}

/// Adds `n` units of `part` to a date.
pub fn dateadd(part: DatePart, n: i64, dt: &DateTime) -> Result<DateTime, ExprError> {
    let months = match part {
        DatePart::Year => n.checked_mul(12),
        DatePart::Quarter => n.checked_mul(3),
        DatePart::Month => Some(n),
        _ => None,
    };
    if let Some(months) = months {
        let total = (i64::from(dt.year()) * 12 + i64::from(dt.month()) - 1)
            .checked_add(months)
            .ok_or_else(out_of_range)?;
        let (y, m) = (total.div_euclid(12), total.rem_euclid(12) + 1);
        if !(1..=9999).contains(&y) {
            return Err(out_of_range());
        }
        // Adding months keeps the day, clamped to the end of a shorter month.
        let d = i64::from(dt.day()).min(days_in_month(y, m));
        return DateTime::new(
            y as i16,
            m as i8,
            d as i8,
            dt.hour(),
            dt.minute(),
            dt.second(),
            dt.subsec_nanosecond(),
        )
        .map_err(|_| out_of_range());
    }
    let unit_ms = match part {
        DatePart::DayOfYear | DatePart::Day | DatePart::Weekday => MS_PER_DAY,
        DatePart::Week => 7 * MS_PER_DAY,
        DatePart::Hour => 3_600_000,
        DatePart::Minute => 60_000,
        DatePart::Second => 1000,
        _ => 1,
    };
    let ms = n
        .checked_mul(unit_ms)
        .and_then(|delta| millis_of(dt).checked_add(delta))
        .ok_or_else(out_of_range)?;
    from_millis(ms).ok_or_else(out_of_range)
}

/// Counts the `part` boundaries crossed from `a` to `b` (negative when `b` is earlier).
pub fn datediff(part: DatePart, a: &DateTime, b: &DateTime) -> i64 {
    let months = |dt: &DateTime| i64::from(dt.year()) * 12 + i64::from(dt.month()) - 1;
    match part {
        DatePart::Year => i64::from(b.year()) - i64::from(a.year()),
        DatePart::Quarter => {
            let q = |dt: &DateTime| i64::from(dt.year()) * 4 + (i64::from(dt.month()) - 1) / 3;
            q(b) - q(a)
        }
        DatePart::Month => months(b) - months(a),
        DatePart::DayOfYear | DatePart::Day | DatePart::Weekday => {
            days_of(b.date()) - days_of(a.date())
        }
        DatePart::Week => {
            // Sunday-aligned week numbers: 1970-01-04 was a Sunday.
            let w = |dt: &DateTime| (days_of(dt.date()) + 4).div_euclid(7);
            w(b) - w(a)
        }
        DatePart::Hour => millis_of(b).div_euclid(3_600_000) - millis_of(a).div_euclid(3_600_000),
        DatePart::Minute => millis_of(b).div_euclid(60_000) - millis_of(a).div_euclid(60_000),
        DatePart::Second => millis_of(b).div_euclid(1000) - millis_of(a).div_euclid(1000),
        DatePart::Millisecond => millis_of(b) - millis_of(a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::datetime;

    #[test]
    fn civil_days_round_trip() {
        for z in [-719_162, -1, 0, 1, 10_957, 2_932_896] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn parts() {
        let d = datetime(2026, 11, 21, 4, 30, 0, 0);
        assert_eq!(datepart(DatePart::Weekday, &d), 7); // a Saturday
        assert_eq!(datepart(DatePart::Quarter, &d), 4);
        assert_eq!(datepart(DatePart::DayOfYear, &d), 325);
        assert_eq!(
            datepart(DatePart::Week, &datetime(2026, 1, 4, 0, 0, 0, 0)),
            2
        );
        assert_eq!(
            datepart(DatePart::Week, &datetime(2026, 1, 3, 0, 0, 0, 0)),
            1
        );
    }

    #[test]
    fn add_clamps_and_checks_range() {
        let d = datetime(2024, 1, 31, 0, 0, 0, 0);
        assert_eq!(
            dateadd(DatePart::Month, 1, &d).ok(),
            Some(datetime(2024, 2, 29, 0, 0, 0, 0))
        );
        assert!(dateadd(DatePart::Year, 9000, &d).is_err());
        assert!(dateadd(DatePart::Millisecond, i64::MAX, &d).is_err());
    }

    #[test]
    fn diff_counts_boundaries() {
        let a = datetime(2025, 12, 31, 23, 59, 59, 0);
        let b = datetime(2026, 1, 1, 0, 0, 0, 0);
        assert_eq!(datediff(DatePart::Year, &a, &b), 1);
        assert_eq!(datediff(DatePart::Second, &a, &b), 1);
        assert_eq!(datediff(DatePart::Day, &b, &a), -1);
    }
}
