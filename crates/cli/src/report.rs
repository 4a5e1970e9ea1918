//! Reporters: what a run prints. Text for people, JSON lines for machines;
//! both end with a summary of every executable.

use crate::args::LogFormat;
use checkflow_exec::{Event, NodeSummary, PackageOutcome, Reporter, RunResult, Status, humantime};
use checkflow_plan::{LogLevel, NodeId, Plan};
use serde_json::json;
use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

fn ts() -> String {
    String::from_utf8_lossy(&clock()).into_owned()
}

/// The local time of day, `HH:MM:SS`, digit by digit: a text log line per
/// event starts with it.
fn clock() -> [u8; 8] {
    let t = checkflow_exec::now_civil();
    let mut out = *b"00:00:00";
    for (at, v) in [(0, t.hour()), (3, t.minute()), (6, t.second())] {
        let v = v.clamp(0, 99) as u8;
        out[at] = b'0' + v / 10;
        out[at + 1] = b'0' + v % 10;
    }
    out
}

fn rfc3339() -> String {
    let mut s = String::new();
    rfc3339_parts_into(now_parts(), &mut s);
    s
}

/// Now, for a log line's timestamp: read from the system clock as seconds
/// and nanoseconds since 1970 (a restart logs thousands of lines; converting
/// each reading into a `jiff::Timestamp` first cost more than the reading).
fn now_parts() -> (i64, i32) {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| Some((i64::try_from(d.as_secs()).ok()?, d.subsec_nanos() as i32)))
        .unwrap_or_else(|| {
            let t = jiff::Timestamp::now();
            (t.as_second(), t.subsec_nanosecond())
        })
}

/// `t` as jiff writes it (`2026-11-21T10:00:00.5Z`), with the part up to the
/// second formatted once per second: a restart logs thousands of events in
/// one (each `restored` line has a timestamp).
#[cfg(test)]
fn rfc3339_of(t: jiff::Timestamp) -> String {
    let mut s = String::new();
    rfc3339_parts_into((t.as_second(), t.subsec_nanosecond()), &mut s);
    s
}

/// [`rfc3339_of`] the instant `secs` seconds and `nanos` nanoseconds after
/// 1970 began (as jiff counts them: `nanos` negative before 1970), written
/// over `out` (a log line's buffer, reused).
fn rfc3339_parts_into((secs, nanos): (i64, i32), out: &mut String) {
    use std::cell::RefCell;
    thread_local! {
        static SECOND: RefCell<(i64, String)> = const { RefCell::new((i64::MIN, String::new())) };
    }
    out.clear();
    if nanos < 0 {
        // Before 1970: not worth a fast path.
        if let Ok(t) = jiff::Timestamp::new(secs, nanos) {
            out.push_str(&t.to_string());
        }
        return;
    }
    SECOND.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != secs {
            let Ok(whole) = jiff::Timestamp::from_second(secs) else {
                if let Ok(t) = jiff::Timestamp::new(secs, nanos) {
                    out.push_str(&t.to_string());
                }
                return;
            };
            let mut prefix = whole.to_string();
            prefix.pop(); // the 'Z'
            *c = (secs, prefix);
        }
        out.push_str(&c.1);
        if nanos > 0 {
            // The nine digits of the fraction, without its trailing zeros.
            let mut digits = [b'0'; 9];
            let mut v = nanos.unsigned_abs();
            for d in digits.iter_mut().rev() {
                *d = b'0' + (v % 10) as u8;
                v /= 10;
            }
            let len = digits.iter().rposition(|&d| d != b'0').map_or(0, |i| i + 1);
            out.push('.');
            out.extend(digits[..len].iter().map(|&d| char::from(d)));
        }
        out.push('Z');
    })
}

/// The `--log json` line of a `restored` event, byte for byte what
/// serializing its [`JsonEvent`] writes.
fn restored_line(out: &mut impl Write, ts: &str, path: &str, result: &str) -> std::io::Result<()> {
    out.write_all(b"{\"ts\":")?;
    json_str(out, ts)?;
    out.write_all(b",\"event\":\"restored\",\"path\":")?;
    json_str(out, path)?;
    out.write_all(b",\"result\":")?;
    json_str(out, result)?;
    out.write_all(b"}\n")
}

/// A JSON string: as is when nothing in it needs an escape (serde_json
/// escapes only quotes, backslashes and control characters), else by serde.
fn json_str(out: &mut impl Write, s: &str) -> std::io::Result<()> {
    if s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        return serde_json::to_writer(out, s).map_err(std::io::Error::other);
    }
    out.write_all(b"\"")?;
    out.write_all(s.as_bytes())?;
    out.write_all(b"\"")
}

/// One `--log json` line. Built as a struct, not a map, so that a line costs
/// one pass of serialization (the log is written for every executable).
#[derive(serde::Serialize, Default)]
struct JsonEvent<'a> {
    ts: &'a str,
    event: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attempt: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    done: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unit: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics: Option<&'a serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    elapsed_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delay_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
}

/// Prints events as they come.
pub struct Console<'p> {
    plan: &'p Plan,
    format: LogFormat,
    out: std::io::BufWriter<std::io::Stdout>,
    last_progress: HashMap<NodeId, Instant>,
    /// When each task first reported progress, and how much it had done then
    /// (for the rate shown beside its progress).
    progress_since: HashMap<NodeId, (Instant, u64)>,
    /// The timestamp of the JSON line being written (one buffer for all).
    ts: String,
}

impl<'p> Console<'p> {
    pub fn new(plan: &'p Plan, format: LogFormat) -> Console<'p> {
        Console {
            plan,
            format,
            out: std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout()),
            last_progress: HashMap::new(),
            progress_since: HashMap::new(),
            ts: String::new(),
        }
    }

    fn path(&self, n: NodeId) -> &str {
        &self.plan.node(n).path
    }

    fn line(&mut self, s: &str) {
        let _ = writeln!(self.out, "{s}");
    }

    /// One line written as the concatenation of `parts`.
    fn pieces(&mut self, parts: &[&[u8]]) {
        for p in parts {
            let _ = self.out.write_all(p);
        }
    }

    /// A message about the run itself (warnings before it starts, checkpoint notes).
    pub fn note(&mut self, level: &str, message: &str) {
        match self.format {
            LogFormat::Text => self.line(&format!("{} {level}: {message}", ts())),
            LogFormat::Json => {
                let v = json!({"ts": rfc3339(), "event": level, "message": message});
                self.line(&v.to_string());
            }
        }
    }

    /// The start of the run.
    pub fn run_started(&mut self, run_id: &str, restarting: bool, checkpoint: Option<&str>) {
        let name = self.plan.package.name.clone();
        match self.format {
            LogFormat::Text => {
                let how = if restarting {
                    " (restarting from its checkpoint)"
                } else {
                    ""
                };
                self.line(&format!("{} package \"{name}\" started{how}", ts()));
            }
            LogFormat::Json => {
                let v = json!({"ts": rfc3339(), "event": "run_started", "package": name, "package_id": self.plan.package.id,
                    "run_id": run_id, "restarting": restarting, "checkpoint": checkpoint});
                self.line(&v.to_string());
            }
        }
    }
}

impl Reporter for Console<'_> {
    fn flush(&mut self) {
        let _ = self.out.flush();
    }

    fn event(&mut self, ev: &Event) {
        if self.format == LogFormat::Json {
            let plan = self.plan;
            let path = |n: &NodeId| Some(plan.node(*n).path.as_str());
            rfc3339_parts_into(now_parts(), &mut self.ts);
            if let Event::Restored { node, outcome } = ev {
                // A restart logs one per recorded executable: written
                // directly, as the struct below would serialize it.
                let _ = restored_line(
                    &mut self.out,
                    &self.ts,
                    &plan.node(*node).path,
                    outcome.as_str(),
                );
                return;
            }
            let mut j = JsonEvent {
                ts: &self.ts,
                ..JsonEvent::default()
            };
            match ev {
                Event::Started { node, attempt } => {
                    j.event = "started";
                    j.path = path(node);
                    j.kind = Some(plan.node(*node).kind.type_name());
                    j.attempt = Some(*attempt);
                }
                Event::Restored { node, outcome } => {
                    j.event = "restored";
                    j.path = path(node);
                    j.result = Some(outcome.as_str());
                }
                Event::Iteration { node, index, key } => {
                    j.event = "iteration";
                    j.path = path(node);
                    j.index = Some(*index);
                    j.key = key.as_deref();
                }
                Event::IterationSkipped { node, key } => {
                    j.event = "iteration_skipped";
                    j.path = path(node);
                    j.key = Some(key);
                }
                Event::Log { node, level, line } => {
                    j.event = "output";
                    j.path = path(node);
                    j.stream = Some(if *level == LogLevel::Info {
                        "stdout"
                    } else {
                        "stderr"
                    });
                    j.line = Some(line);
                }
                Event::Progress {
                    node,
                    done,
                    total,
                    unit,
                } => {
                    j.event = "progress";
                    j.path = path(node);
                    j.done = Some(*done);
                    j.total = *total;
                    j.unit = Some(unit);
                }
                Event::Metrics { node, metrics } => {
                    j.event = "metrics";
                    j.path = path(node);
                    j.metrics = Some(metrics);
                }
                Event::Running { node, elapsed } => {
                    j.event = "running";
                    j.path = path(node);
                    j.elapsed_ms = Some(elapsed.as_millis() as u64);
                }
                Event::Retrying {
                    node,
                    attempt,
                    error,
                    delay,
                } => {
                    j.event = "retrying";
                    j.path = path(node);
                    j.attempt = Some(*attempt);
                    j.error = Some(error);
                    j.delay_ms = Some(delay.as_millis() as u64);
                }
                Event::Finished {
                    node,
                    status,
                    duration,
                    error,
                } => {
                    j.event = "finished";
                    j.path = path(node);
                    j.status = Some(status.as_str());
                    j.duration_ms = Some(duration.as_millis() as u64);
                    j.error = error.as_deref();
                }
                Event::Warning { message } => {
                    j.event = "warning";
                    j.message = Some(message);
                }
            }
            // Serialized straight into the buffered output: no string per line.
            let _ = serde_json::to_writer(&mut self.out, &j);
            let _ = self.out.write_all(b"\n");
            return;
        }
        let clock = clock();
        let t = String::from_utf8_lossy(&clock);
        let s = match ev {
            Event::Started { node, attempt } if *attempt > 1 => {
                format!("{t} start    {} (attempt {attempt})", self.path(*node))
            }
            // The lines of every task (it starts, it ends) are written piece
            // by piece: with checkpoints on, formatting them was a good part
            // of the engine's own cost per task.
            Event::Started { node, .. } => {
                let path = self.plan.node(*node).path.as_bytes();
                self.pieces(&[&clock, b" start    ", path, b"\n"]);
                return;
            }
            Event::Restored { node, outcome } => format!(
                "{t} restored {} ({outcome}, recorded by an earlier run)",
                self.path(*node)
            ),
            Event::Iteration { node, index, key } => match key {
                Some(k) => format!("{t} iterate  {} #{index}: {k}", self.path(*node)),
                None => format!("{t} iterate  {} #{index}", self.path(*node)),
            },
            Event::IterationSkipped { node, key } => format!(
                "{t} skip     {} item {key} (done by an earlier run)",
                self.path(*node)
            ),
            // The package's own lines (its event handlers') carry its name.
            Event::Log { node, line, .. } if self.path(*node).is_empty() => {
                format!("{t}   {} | {line}", self.plan.package.name)
            }
            Event::Log { node, line, .. } => format!("{t}   {} | {line}", self.path(*node)),
            Event::Progress {
                node,
                done,
                total,
                unit,
            } => {
                let now = Instant::now();
                if self
                    .last_progress
                    .get(node)
                    .is_some_and(|l| now.duration_since(*l) < Duration::from_secs(1))
                    && total.is_none_or(|t| *done < t)
                {
                    return;
                }
                self.last_progress.insert(*node, now);
                let (t0, d0) = *self.progress_since.entry(*node).or_insert((now, *done));
                let secs = now.duration_since(t0).as_secs_f64();
                let rate = if secs >= 0.5 && *done > d0 {
                    format!(", {:.0} {unit}/s", (*done - d0) as f64 / secs)
                } else {
                    String::new()
                };
                match total {
                    Some(tot) if *tot > 0 => format!(
                        "{t} progress {} {done}/{tot} {unit} ({:.0}%{rate})",
                        self.path(*node),
                        *done as f64 * 100.0 / *tot as f64
                    ),
                    _ if !rate.is_empty() => format!(
                        "{t} progress {} {done} {unit} ({})",
                        self.path(*node),
                        &rate[2..]
                    ),
                    _ => format!("{t} progress {} {done} {unit}", self.path(*node)),
                }
            }
            // Shown under the task in the summary.
            Event::Metrics { .. } => return,
            Event::Running { node, elapsed } => format!(
                "{t} running  {} ({} so far)",
                self.path(*node),
                humantime(*elapsed)
            ),
            Event::Retrying {
                node,
                attempt,
                error,
                delay,
            } => {
                format!(
                    "{t} retry    {} after attempt {attempt} failed: {error} (waiting {})",
                    self.path(*node),
                    humantime(*delay)
                )
            }
            Event::Finished {
                node,
                status,
                duration,
                error,
            } => {
                let word = match status {
                    Status::Succeeded => "ok      ",
                    Status::Failed => "FAILED  ",
                    Status::Completed => "done    ",
                    Status::Disabled => "disabled",
                    Status::Cancelled => "cancel  ",
                    Status::NotRun | Status::Restored => "        ",
                };
                let path = self.plan.node(*node).path.as_bytes();
                let took = humantime(*duration);
                let (sep, err) = error.as_ref().map_or(("", ""), |e| (": ", e.as_str()));
                self.pieces(&[
                    &clock,
                    b" ",
                    word.as_bytes(),
                    b" ",
                    path,
                    b" (",
                    took.as_bytes(),
                    b")",
                    sep.as_bytes(),
                    err.as_bytes(),
                    b"\n",
                ]);
                return;
            }
            Event::Warning { message } => format!("{t} warning: {message}"),
        };
        self.line(&s);
    }
}

/// How many executables ended in each status, in this order.
#[derive(serde::Serialize, Default)]
struct Counts {
    succeeded: usize,
    failed: usize,
    completed: usize,
    restored: usize,
    not_run: usize,
    disabled: usize,
    cancelled: usize,
}

fn counts(summary: &[NodeSummary]) -> Counts {
    let mut c = Counts::default();
    for s in summary {
        *match s.status {
            Status::Succeeded => &mut c.succeeded,
            Status::Failed => &mut c.failed,
            Status::Completed => &mut c.completed,
            Status::Restored => &mut c.restored,
            Status::NotRun => &mut c.not_run,
            Status::Disabled => &mut c.disabled,
            Status::Cancelled => &mut c.cancelled,
        } += 1;
    }
    c
}

/// One executable in the summary.
#[derive(serde::Serialize)]
struct SummaryExec<'a> {
    path: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    status: &'static str,
    duration_ms: u64,
    runs: u32,
    /// How its runs ended, for one that ended more than once (a loop's
    /// children): `{"succeeded": 2, "failed": 1, "completed": 0}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    ended: Option<checkflow_exec::Tally>,
    error: &'a Option<String>,
    /// Figures the task reported about its work (a data flow's rows per
    /// path and time per component).
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics: &'a Option<serde_json::Value>,
}

/// " (2 succeeded, 1 failed)" for an executable that ended more than once.
fn ended_text(t: &checkflow_exec::Tally) -> String {
    if t.total() <= 1 {
        return String::new();
    }
    let parts: Vec<String> = [
        (t.succeeded, "succeeded"),
        (t.failed, "failed"),
        (t.completed, "completed"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, k)| format!("{n} {k}"))
    .collect();
    format!(" ({})", parts.join(", "))
}

/// Every executable of the summary, serialized as it is walked: a summary
/// has one per executable, and building them as `serde_json::Value`s first
/// cost a map of seven entries each.
struct SummaryExecs<'a> {
    plan: &'a Plan,
    summary: &'a [NodeSummary],
}

impl serde::Serialize for SummaryExecs<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.summary.iter().map(|x| {
            let n = self.plan.node(x.node);
            SummaryExec {
                path: &n.path,
                kind: n.kind.type_name(),
                status: x.status.as_str(),
                duration_ms: x.duration.as_millis() as u64,
                runs: x.runs,
                ended: Some(x.ended).filter(|t| t.total() > 1),
                error: &x.error,
                metrics: &x.metrics,
            }
        }))
    }
}

/// The summary (for `--report` and the last `--log json` line).
#[derive(serde::Serialize)]
pub struct Summary<'a> {
    package: &'a str,
    package_id: &'a str,
    outcome: PackageOutcome,
    exit_code: i32,
    duration_ms: u64,
    counts: Counts,
    executables: SummaryExecs<'a>,
    errors: &'a [String],
    checkpoint: &'a serde_json::Value,
    /// `"summary"` on the log line; absent from the report.
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ts: Option<String>,
}

/// The summary of a run.
pub fn summary_json<'a>(
    plan: &'a Plan,
    r: &'a RunResult,
    exit_code: i32,
    checkpoint: &'a serde_json::Value,
) -> Summary<'a> {
    Summary {
        package: &plan.package.name,
        package_id: &plan.package.id,
        outcome: r.outcome,
        exit_code,
        duration_ms: r.duration.as_millis() as u64,
        counts: counts(&r.summary),
        executables: SummaryExecs {
            plan,
            summary: &r.summary,
        },
        errors: &r.errors,
        checkpoint,
        event: None,
        ts: None,
    }
}

/// Prints the end-of-run summary.
pub fn print_summary(
    plan: &Plan,
    r: &RunResult,
    format: LogFormat,
    exit_code: i32,
    checkpoint: &serde_json::Value,
    note: &str,
) {
    // Stdout writes a line at a time; a summary has a line per executable.
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
    if format == LogFormat::Json {
        let mut v = summary_json(plan, r, exit_code, checkpoint);
        v.event = Some("summary");
        v.ts = Some(rfc3339());
        let _ = serde_json::to_writer(&mut out, &v);
        let _ = out.write_all(b"\n");
        return;
    }
    let outcome = match r.outcome {
        PackageOutcome::Success => "succeeded",
        PackageOutcome::Failure => "FAILED",
        PackageOutcome::Cancelled => "was cancelled",
    };
    let _ = writeln!(
        out,
        "\npackage \"{}\" {outcome} in {}",
        plan.package.name,
        humantime(r.duration)
    );
    let width = r
        .summary
        .iter()
        .map(|s| plan.node(s.node).path.chars().count())
        .max()
        .unwrap_or(4)
        .min(60);
    for s in &r.summary {
        let n = plan.node(s.node);
        let dur = if s.runs > 0 {
            humantime(s.duration)
        } else {
            String::new()
        };
        let runs = if s.runs > 1 {
            format!(" x{}{}", s.runs, ended_text(&s.ended))
        } else {
            String::new()
        };
        let err = s
            .error
            .as_ref()
            .filter(|_| s.status == Status::Failed)
            .map(|e| format!("  {e}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {:<10} {:<width$} {dur}{runs}{err}",
            s.status.as_str(),
            n.path
        );
        // A task's figures, as it wrote them for people (`summary`).
        if let Some(text) = s
            .metrics
            .as_ref()
            .and_then(|m| m.get("summary"))
            .and_then(|t| t.as_str())
        {
            for line in text.lines() {
                let _ = writeln!(out, "  {:<10} {line}", "");
            }
        }
    }
    let c = counts(&r.summary);
    let parts: Vec<String> = [
        ("succeeded", c.succeeded, true),
        ("failed", c.failed, true),
        ("completed", c.completed, false),
        ("restored", c.restored, true),
        ("not_run", c.not_run, false),
        ("disabled", c.disabled, false),
        ("cancelled", c.cancelled, false),
    ]
    .iter()
    .filter(|(_, n, always)| *n > 0 || *always)
    .map(|(k, n, _)| format!("{n} {k}"))
    .collect();
    let _ = writeln!(out, "  {}", parts.join(", "));
    for e in &r.errors {
        let _ = writeln!(out, "  error: {e}");
    }
    if !note.is_empty() {
        let _ = writeln!(out, "{note}");
    }
}

#[cfg(test)]
mod tests {
    use super::{JsonEvent, now_parts, restored_line, rfc3339_of, rfc3339_parts_into};

    #[test]
    fn timestamps_read_as_jiff_writes_them() {
        let base = 1_795_000_000_i64;
        for (s, n) in [
            (base, 0),
            (base, 5),
            (base, 500_000_000),
            (base, 123_456_789),
            (base + 1, 100),
            (base, 999_999_999),
            (0, 0),
            (base + 86_400 * 400, 7_000),
        ] {
            let t = jiff::Timestamp::new(s, n).expect("in range");
            assert_eq!(rfc3339_of(t), t.to_string(), "{s} {n}");
        }
        let now = jiff::Timestamp::now();
        assert_eq!(rfc3339_of(now), now.to_string());
        // Before 1970, and the system clock read as parts.
        let early = jiff::Timestamp::new(-86_400, -5).expect("in range");
        assert_eq!(rfc3339_of(early), early.to_string());
        let before = jiff::Timestamp::now();
        let mut got = String::new();
        rfc3339_parts_into(now_parts(), &mut got);
        let after = jiff::Timestamp::now();
        let read: jiff::Timestamp = got.parse().expect("a timestamp");
        assert!(before <= read && read <= after, "{before} {got} {after}");
    }

    #[test]
    fn restored_lines_are_what_serde_writes() {
        for path in [
            "T1",
            "Load/Dim \"Customer\"",
            "a\\b",
            "tab\there",
            "été/ünï",
            "",
        ] {
            for result in ["success", "failure", "completion"] {
                let ts = "2026-11-22T10:00:00.123456789Z";
                let mut fast = Vec::new();
                restored_line(&mut fast, ts, path, result).expect("write");
                let j = JsonEvent {
                    ts,
                    event: "restored",
                    path: Some(path),
                    result: Some(result),
                    ..JsonEvent::default()
                };
                let mut want = serde_json::to_vec(&j).expect("json");
                want.push(b'\n');
                assert_eq!(String::from_utf8(fast), String::from_utf8(want));
            }
        }
    }

    #[test]
    fn the_clock_of_text_lines_is_the_local_time_of_day() {
        // Read twice around the clock, in case a second turns in between.
        let before = checkflow_exec::now_civil();
        let got = super::clock();
        let after = checkflow_exec::now_civil();
        let text = std::str::from_utf8(&got).expect("ascii");
        let want = |t: jiff::civil::DateTime| {
            format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second())
        };
        assert!(text == want(before) || text == want(after), "{text}");
    }
}
