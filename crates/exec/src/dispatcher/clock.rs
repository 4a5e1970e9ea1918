//! Time: the local wall clock, and durations as logs write them.

use super::*;

/// The local wall-clock time. The system time zone is looked up once: this
/// runs for every executable that starts.
pub fn now_civil() -> jiff::civil::DateTime {
    use std::cell::Cell;
    static TZ: std::sync::OnceLock<jiff::tz::TimeZone> = std::sync::OnceLock::new();
    thread_local! {
        /// The zone's offset in the UTC second it was looked up for: an
        /// offset changes only on a whole second, and a run asks for the
        /// time several times per task.
        static OFFSET: Cell<Option<(i64, jiff::tz::Offset)>> = const { Cell::new(None) };
    }
    let now = jiff::Timestamp::now();
    let second = now.as_second();
    let offset = match OFFSET.get() {
        Some((s, o)) if s == second => o,
        _ => {
            let o = TZ.get_or_init(jiff::tz::TimeZone::system).to_offset(now);
            OFFSET.set(Some((second, o)));
            o
        }
    };
    offset.to_datetime(now)
}

/// `1m30s`-style text for a duration.
pub fn humantime(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        // The common case (a log line per task), digit by digit.
        let mut s = String::with_capacity(5);
        if ms >= 100 {
            s.push(char::from(b'0' + (ms / 100) as u8));
        }
        if ms >= 10 {
            s.push(char::from(b'0' + (ms / 10 % 10) as u8));
        }
        s.push(char::from(b'0' + (ms % 10) as u8));
        s.push_str("ms");
        return s;
    }
    let s = d.as_secs();
    let (h, m, s) = (s / 3600, (s / 60) % 60, s % 60);
    match (h, m) {
        (0, 0) => format!("{:.1}s", d.as_secs_f64()),
        (0, _) => format!("{m}m{s:02}s"),
        _ => format!("{h}h{m:02}m{s:02}s"),
    }
}
