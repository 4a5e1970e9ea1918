//! Opt-in phase timings (`CHECKFLOW_TIMINGS=1`): where start-up time goes,
//! printed to stderr. Used by the benchmarks; silent otherwise.

use std::sync::OnceLock;
use std::time::Instant;

fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("CHECKFLOW_TIMINGS").is_some_and(|v| v != "0"))
}

/// The start of a phase (`None` when timings are off).
pub fn start() -> Option<Instant> {
    enabled().then(Instant::now)
}

/// Prints how long a phase took.
pub fn phase(name: &str, started: Option<Instant>) {
    if let Some(t) = started {
        eprintln!("timing: {name}: {:.2} ms", t.elapsed().as_secs_f64() * 1e3);
    }
}
