//! RFC 3339 UTC timestamps from `SystemTime`, without a date library.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, as "YYYY-MM-DDTHH:MM:SS.mmmZ".
pub(crate) fn now_rfc3339() -> String {
    rfc3339(SystemTime::now())
}

/// A time as "YYYY-MM-DDTHH:MM:SS.mmmZ" (UTC). Times before 1970 print as the epoch.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, day) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        return by_format(d);
    }
    // Digit by digit: every record frame carries one.
    let mut out = *b"0000-00-00T00:00:00.000Z";
    for (at, width, v) in [
        (0, 4, y as u64),
        (5, 2, u64::from(m)),
        (8, 2, u64::from(day)),
        (11, 2, rem / 3600),
        (14, 2, rem / 60 % 60),
        (17, 2, rem % 60),
        (20, 3, u64::from(d.subsec_millis())),
    ] {
        let mut v = v;
        for c in out[at..at + width].iter_mut().rev() {
            *c = b'0' + (v % 10) as u8;
            v /= 10;
        }
    }
    out.iter().map(|&c| char::from(c)).collect()
}

/// [`rfc3339`] of `d` since the epoch through `format!` (years past 9999,
/// which take five digits; and the reference its tests compare with).
fn by_format(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    let rem = secs % 86_400;
    let (y, m, day) = civil_from_days((secs / 86_400) as i64);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Days since 1970-01-01 -> (year, month, day), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_millis(951_782_400_123)),
            "2000-02-29T00:00:00.123Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_795_000_000)),
            "2026-11-18T11:06:40.000Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_millis(253_402_300_799_999)),
            "9999-12-31T23:59:59.999Z"
        );
        // Past year 9999 the year takes five digits, as `format!` writes it.
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(253_402_300_800)),
            "10000-01-01T00:00:00.000Z"
        );
    }

    /// The digit-by-digit form against `format!`, over a spread of instants.
    #[test]
    fn digit_by_digit_matches_format() {
        let mut t = 0u64;
        while t < 4_102_444_800_000 {
            let d = Duration::from_millis(t);
            assert_eq!(rfc3339(UNIX_EPOCH + d), by_format(d));
            t += 7_777_777_777;
        }
    }
}
