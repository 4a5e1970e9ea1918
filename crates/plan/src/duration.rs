//! Durations as written in packages: `500ms`, `30s`, `5m`, `2h`, `1d`, or bare seconds.

use std::time::Duration;

/// Parses `30s`, `5m`, `2h`, `1d`, `500ms`, `1.5s` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| {
        format!("invalid duration \"{text}\": expected a number and a unit, like 30s, 5m, 2h")
    })?;
    let secs = match unit.trim() {
        "" | "s" | "sec" | "secs" => n,
        "ms" => n / 1000.0,
        "m" | "min" | "mins" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        other => {
            return Err(format!(
                "invalid duration \"{text}\": unknown unit \"{other}\" (expected ms, s, m, h or d)"
            ));
        }
    };
    if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
        return Err(format!("invalid duration \"{text}\": out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The shortest lease on a shared store's checkpoint or a worker's claim:
/// the holder renews it every third of its length, which must leave time for
/// a round trip to the database.
pub const MIN_LEASE: Duration = Duration::from_secs(1);

/// Parses a lease: a duration ([`parse_duration`]) of at least [`MIN_LEASE`].
pub fn parse_lease(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d < MIN_LEASE {
        return Err(format!(
            "{text} is shorter than the minimum of 1s (the holder renews it every third of the lease, which must leave time for a round trip to the database)"
        ));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_at_least_one_second() {
        assert_eq!(parse_lease("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_lease("2m"), Ok(Duration::from_secs(120)));
        let e = parse_lease("900ms").unwrap_err();
        assert!(
            e.starts_with("900ms is shorter than the minimum of 1s"),
            "{e}"
        );
        assert!(
            parse_lease("soon")
                .unwrap_err()
                .contains("invalid duration")
        );
    }

    #[test]
    fn parses_units() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5y").is_err());
    }
}
