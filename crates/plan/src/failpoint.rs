//! Test crash points: named places between a side effect and the record that
//! describes it, where the end-to-end tests stop a run.
//!
//! `CHECKFLOW_TEST_FAILPOINT` holds a comma-separated list of
//! `NAME[@N][=ACTION]`: at the `N`th time (default: the first) the code
//! passes the point `NAME`, the action is taken:
//!
//! - `kill` (the default): the process sends itself SIGKILL, as `kill -9` or
//!   a power cut would (nothing is flushed, no handler runs);
//! - `term`: the process sends itself SIGTERM and carries on, so the run's
//!   own cancellation handles it, as it would a signal from outside;
//! - `error`: [`failpoint`] returns `true`, and the caller fails the write it
//!   guards as if the disk or the database had refused it.
//!
//! Nothing else reads the variable, and an unset variable costs one look-up
//! per process. Each point is named in `docs/design/commit-protocols.md`,
//! beside the step it stops.

use std::sync::Mutex;
use std::sync::OnceLock;

struct Point {
    name: String,
    at: u64,
    action: Action,
    hits: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Action {
    Kill,
    Term,
    Error,
}

fn points() -> &'static Mutex<Vec<Point>> {
    static POINTS: OnceLock<Mutex<Vec<Point>>> = OnceLock::new();
    POINTS.get_or_init(|| {
        let spec = std::env::var("CHECKFLOW_TEST_FAILPOINT").unwrap_or_default();
        Mutex::new(parse(&spec))
    })
}

fn parse(spec: &str) -> Vec<Point> {
    spec.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .filter_map(|item| {
            let (head, action) = match item.split_once('=') {
                Some((h, "term")) => (h, Action::Term),
                Some((h, "error")) => (h, Action::Error),
                Some((h, "kill")) | Some((h, "")) => (h, Action::Kill),
                Some(_) => return None,
                None => (item, Action::Kill),
            };
            let (name, at) = match head.split_once('@') {
                Some((n, k)) => (n, k.parse().ok()?),
                None => (head, 1),
            };
            Some(Point {
                name: name.to_string(),
                at,
                action,
                hits: 0,
            })
        })
        .collect()
}

/// Passes the crash point `name`. Returns `true` when the test asked this
/// point to fail (`=error`): the caller then fails as if its write had
/// failed. With `kill` this does not return.
pub fn failpoint(name: &str) -> bool {
    let action = {
        let mut points = points().lock().unwrap_or_else(|e| e.into_inner());
        if points.is_empty() {
            return false;
        }
        let mut hit = None;
        for p in points.iter_mut().filter(|p| p.name == name) {
            p.hits += 1;
            if p.hits == p.at {
                hit = Some(p.action);
            }
        }
        hit
    };
    match action {
        None => false,
        Some(Action::Error) => true,
        Some(Action::Kill) => {
            signal_self(true);
            std::process::abort()
        }
        Some(Action::Term) => {
            signal_self(false);
            false
        }
    }
}

#[cfg(unix)]
fn signal_self(kill: bool) {
    let sig = if kill { libc::SIGKILL } else { libc::SIGTERM };
    // SAFETY: kill(2) on our own pid; no memory is involved.
    unsafe {
        libc::kill(libc::getpid(), sig);
    }
    if !kill {
        // The handler runs on its own thread: give it the moment it needs to
        // raise the run's flag, so the code after the point sees a cancelled run.
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[cfg(not(unix))]
fn signal_self(_kill: bool) {
    std::process::abort()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_names_points_hits_and_actions() {
        let p = parse("a, b@3=term ,c=error,d@x,e=bogus,f=kill");
        let got: Vec<(&str, u64, Action)> = p
            .iter()
            .map(|p| (p.name.as_str(), p.at, p.action))
            .collect();
        assert_eq!(
            got,
            vec![
                ("a", 1, Action::Kill),
                ("b", 3, Action::Term),
                ("c", 1, Action::Error),
                ("f", 1, Action::Kill),
            ]
        );
        assert!(parse("").is_empty());
    }
}
