//! Opt-in phase timings (`CHECKFLOW_TIMINGS=1`): where start-up time goes,
//! printed to stderr. Used by the benchmarks; silent otherwise.

use std::sync::OnceLock;
use std::time::Instant;

/// When `main` started, the origin of the "ended" figures.
static ORIGIN: OnceLock<Instant> = OnceLock::new();

/// Marks the start of `main`; call it first.
pub fn init() {
    if enabled() {
        ORIGIN.get_or_init(Instant::now);
    }
}

fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("CHECKFLOW_TIMINGS").is_some_and(|v| v != "0"))
}

/// The start of a phase (`None` when timings are off).
pub fn start() -> Option<Instant> {
    enabled().then(Instant::now)
}

/// Prints how long a phase took, and when it ended after `main` started
/// (`timing: PHASE ended: N ms`): the critical path of a restart, read off.
pub fn phase(name: &str, started: Option<Instant>) {
    if let Some(t) = started {
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
        eprintln!("timing: {name}: {:.2} ms", ms(t.elapsed()));
        if let Some(o) = ORIGIN.get() {
            eprintln!("timing: {name} ended: {:.2} ms", ms(o.elapsed()));
        }
    }
}
