//! Reading a flat file's fields into typed Arrow builders without a `Value`
//! per field, for the canonical forms that make up nearly every file: whole
//! numbers, `12.30`, `2024-01-02 10:00:00[.fff]`, `2024-01-02`, text. Any
//! other form (signs, spaces, exponents, more fraction digits than the
//! column keeps, out-of-range values) is not handled here: the caller then
//! takes SSIS's cast from text (`Value::parse_as`), so a field reads the same
//! either way. The unit tests check that for every form this module accepts.

use checkflow_expr::DataType;

/// A field parsed on the fast path, ready for its column's builder.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fast {
    /// A whole number within the column type's range.
    Int(i64),
    /// A whole number within DT_UI8's range.
    UInt(u64),
    /// A decimal's mantissa at the column's scale.
    Dec(i128),
    /// A real number.
    Real(f64),
    /// Milliseconds since 1970-01-01 00:00 (a civil date and time).
    Ms(i64),
    /// Days since 1970-01-01.
    Days(i32),
    /// The field's text as it is.
    Text,
}

fn digits(b: &[u8]) -> bool {
    !b.is_empty() && b.iter().all(u8::is_ascii_digit)
}

/// `[-]digits`, at most 18 digits (no overflow in i64).
fn whole(t: &str) -> Option<i64> {
    let b = t.as_bytes();
    let (neg, d) = match b.first()? {
        b'-' => (true, &b[1..]),
        _ => (false, b),
    };
    if !digits(d) || d.len() > 18 {
        return None;
    }
    let mut n: i64 = 0;
    for c in d {
        n = n * 10 + i64::from(c - b'0');
    }
    Some(if neg { -n } else { n })
}

/// `[-]digits[.digits]` with at most `scale` fraction digits and at most
/// `int_digits` integer digits: the mantissa at `scale`.
fn decimal(t: &str, scale: u8, int_digits: u32) -> Option<i128> {
    let b = t.as_bytes();
    let (neg, rest) = match b.first()? {
        b'-' => (true, &b[1..]),
        _ => (false, b),
    };
    let (int, frac) = match rest.iter().position(|c| *c == b'.') {
        Some(p) => (&rest[..p], &rest[p + 1..]),
        None => (rest, &rest[rest.len()..]),
    };
    if !digits(int) || (frac.is_empty() && rest.len() != int.len()) {
        return None;
    }
    if !frac.is_empty() && !digits(frac) {
        return None;
    }
    let significant = int.iter().skip_while(|c| **c == b'0').count() as u32;
    if frac.len() > usize::from(scale) || significant > int_digits || int.len() > 30 {
        return None;
    }
    let mut m: i128 = 0;
    for c in int.iter().chain(frac) {
        m = m * 10 + i128::from(c - b'0');
    }
    for _ in frac.len()..usize::from(scale) {
        m *= 10;
    }
    Some(if neg { -m } else { m })
}

fn two(b: &[u8]) -> Option<u32> {
    (b.len() == 2 && digits(b)).then(|| u32::from(b[0] - b'0') * 10 + u32::from(b[1] - b'0'))
}

/// `YYYY-MM-DD` (years 1753..=9999 as DT_DBTIMESTAMP keeps): days since 1970.
fn date_days(b: &[u8]) -> Option<i64> {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' || !digits(&b[..4]) {
        return None;
    }
    let y = b[..4]
        .iter()
        .fold(0i64, |n, c| n * 10 + i64::from(c - b'0'));
    let m = two(&b[5..7])?;
    let d = two(&b[8..10])?;
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if !(1753..=9999).contains(&y) || d == 0 || d > month_days {
        return None;
    }
    Some(checkflow_expr::dates::days_from_civil(
        y,
        i64::from(m),
        i64::from(d),
    ))
}

/// `YYYY-MM-DD HH:MM:SS[.f[f[f]]]`: milliseconds since 1970.
fn timestamp_ms(t: &str) -> Option<i64> {
    let b = t.as_bytes();
    if b.len() < 19 || b[10] != b' ' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let days = date_days(&b[..10])?;
    let (h, mi, s) = (two(&b[11..13])?, two(&b[14..16])?, two(&b[17..19])?);
    if h > 23 || mi > 59 || s > 59 {
        return None;
    }
    let mut ms = 0i64;
    match &b[19..] {
        [] => {}
        [b'.', f @ ..] if !f.is_empty() && f.len() <= 3 && digits(f) => {
            for (i, c) in f.iter().enumerate() {
                ms += i64::from(c - b'0') * [100, 10, 1][i];
            }
        }
        _ => return None,
    }
    Some(((days * 24 + i64::from(h)) * 60 + i64::from(mi)) * 60_000 + i64::from(s) * 1000 + ms)
}

/// The field `t` of a column of type `ty` on the fast path, if its form is
/// one this module reads exactly as SSIS's cast from text does.
pub fn parse(t: &str, ty: &DataType) -> Option<Fast> {
    let int_in = |lo: i64, hi: i64| whole(t).filter(|n| (lo..=hi).contains(n)).map(Fast::Int);
    match ty {
        DataType::WStr { .. } | DataType::Str { .. } | DataType::Text { .. } | DataType::NText => {
            Some(Fast::Text)
        }
        DataType::I1 => int_in(i8::MIN.into(), i8::MAX.into()),
        DataType::I2 => int_in(i16::MIN.into(), i16::MAX.into()),
        DataType::I4 => int_in(i32::MIN.into(), i32::MAX.into()),
        DataType::I8 => int_in(i64::MIN, i64::MAX),
        DataType::UI1 => int_in(0, u8::MAX.into()),
        DataType::UI2 => int_in(0, u16::MAX.into()),
        DataType::UI4 => int_in(0, u32::MAX.into()),
        DataType::UI8 => whole(t)
            .filter(|n| *n >= 0 && !t.starts_with('-'))
            .map(|n| Fast::UInt(n as u64)),
        DataType::Numeric { precision, scale } => {
            decimal(t, *scale, u32::from(precision.saturating_sub(*scale))).map(Fast::Dec)
        }
        DataType::DbTimestamp => timestamp_ms(t).map(Fast::Ms),
        DataType::DbDate => date_days(t.as_bytes())
            .and_then(|d| i32::try_from(d).ok())
            .map(Fast::Days),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{to_array, value_at};
    use checkflow_expr::Value;

    /// The fast path's array value equals the slow path's (SSIS's cast).
    fn same(t: &str, ty: &DataType) {
        let Some(fast) = parse(t, ty) else {
            return;
        };
        let slow = Value::parse_as(t, ty).unwrap_or_else(|e| panic!("{t:?} as {ty}: {e}"));
        let mut b = crate::vexpr::ValueBuilder::new(ty, 1);
        b.push_fast(fast, t).expect("fits");
        let a = b.finish();
        let want = to_array(&[slow], ty).expect("an array");
        assert_eq!(
            value_at(a.as_ref(), 0, ty),
            value_at(want.as_ref(), 0, ty),
            "{t:?} as {ty}"
        );
    }

    #[test]
    fn the_fast_path_reads_every_canonical_form_as_the_cast_does() {
        let types = [
            DataType::I1,
            DataType::I2,
            DataType::I4,
            DataType::I8,
            DataType::UI1,
            DataType::UI4,
            DataType::UI8,
            DataType::Numeric {
                precision: 18,
                scale: 2,
            },
            DataType::Numeric {
                precision: 5,
                scale: 0,
            },
            DataType::DbTimestamp,
            DataType::DbDate,
            DataType::WStr { len: None },
        ];
        let texts = [
            "0",
            "7",
            "-0",
            "007",
            "127",
            "128",
            "-128",
            "-129",
            "255",
            "256",
            "65535",
            "2147483647",
            "2147483648",
            "-2147483648",
            "999999999999999999",
            "12.30",
            "12.3",
            "-0.01",
            "0.5",
            "99999",
            "100000",
            "1.",
            ".5",
            "1.234",
            "0012.10",
            "2024-02-29",
            "2023-02-29",
            "1752-12-31",
            "1753-01-01",
            "9999-12-31",
            "2024-01-02 10:00:00",
            "2024-01-02 23:59:59.999",
            "2024-01-02 10:00:00.5",
            "2024-13-01",
            "2024-01-02 24:00:00",
            "2024-01-02T10:00:00",
            "abc",
            "",
        ];
        for ty in &types {
            for t in texts {
                same(t, ty);
            }
        }
        for i in (-2_000_000i64..2_000_000).step_by(9_973) {
            let t = i.to_string();
            same(&t, &DataType::I4);
            let d = format!("{}.{:02}", i / 100, (i % 100).abs());
            same(&d, &types[7]);
        }
    }

    #[test]
    fn other_forms_take_the_slow_path() {
        let n = DataType::Numeric {
            precision: 18,
            scale: 2,
        };
        for t in ["+5", " 5", "5 ", "1e3", "1.234", "12,5"] {
            assert_eq!(parse(t, &n), None, "{t:?}");
        }
        assert_eq!(parse("128", &DataType::I1), None);
        assert_eq!(parse("2024-1-2", &DataType::DbDate), None);
        assert_eq!(
            parse("2024-01-02 10:00:00", &DataType::DbTimestamp),
            Some(Fast::Ms(1_704_189_600_000))
        );
    }
}
