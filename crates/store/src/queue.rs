//! The run queue: runs submitted to the store, and the workers that run them.
//!
//! A run row moves `queued -> running -> succeeded | failed | retrying`
//! (`retrying` is queued again once its delay has passed). A worker claims a
//! row with `FOR UPDATE SKIP LOCKED`, so two workers never claim the same
//! one, and keeps its claim alive (`claimed_until`) while it runs it. A
//! `running` row is claimed again — taken over — only when both have
//! lapsed: the worker's claim (the worker is gone) and the checkpoint's
//! lease (no run of it is alive). A worker that finishes a run writes its
//! end state only while its claim is still its own.

use std::time::Duration;

use crate::{Store, StoreError};

/// `restart: {attempts, delay, backoff}`: a run that fails with a restart
/// point is queued again after `delay`, times `backoff` for every restart
/// before it, at most `attempts` times.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RestartPolicy {
    pub attempts: u32,
    pub delay: Duration,
    pub backoff: f64,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            attempts: 0,
            delay: Duration::ZERO,
            backoff: 1.0,
        }
    }
}

/// A run to queue.
#[derive(Clone, Debug)]
pub struct NewRun {
    pub queue: String,
    /// The package file, as the workers will open it.
    pub package_path: String,
    /// sha256 of the package file's bytes when submitted.
    pub package_hash: String,
    pub package_id: String,
    /// The checkpoint key the run uses in the store.
    pub key: String,
    /// The run's options (`--set`, `--rerun`, ...), as arguments of `run`.
    pub args: Vec<String>,
    /// The text of its configuration file, if it was given one.
    pub config: Option<String>,
    pub restart: RestartPolicy,
}

/// Where a run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Retrying,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Queued => "queued",
            RunState::Running => "running",
            RunState::Succeeded => "succeeded",
            RunState::Failed => "failed",
            RunState::Retrying => "retrying",
        }
    }

    fn parse(s: &str) -> RunState {
        match s {
            "running" => RunState::Running,
            "succeeded" => RunState::Succeeded,
            "failed" => RunState::Failed,
            "retrying" => RunState::Retrying,
            _ => RunState::Queued,
        }
    }
}

/// A run as `runs` lists it.
#[derive(Clone, Debug)]
pub struct RunRow {
    pub id: i64,
    pub queue: String,
    pub package_path: String,
    pub key: String,
    pub state: RunState,
    pub attempts: i32,
    pub worker: Option<String>,
    pub submitted_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub not_before: String,
    pub exit_code: Option<i32>,
    pub last_error: Option<String>,
}

/// One claim of a run: its id, and the token the claim got (every claim of
/// a run gets a new one). Only the current claim's run and worker may end
/// the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claim {
    pub id: i64,
    pub token: i64,
}

impl Claim {
    /// `ID:TOKEN`, as the worker hands it to the run.
    pub fn parse(s: &str) -> Option<Claim> {
        let (a, b) = s.split_once(':')?;
        Some(Claim {
            id: a.parse().ok()?,
            token: b.parse().ok()?,
        })
    }
}

impl std::fmt::Display for Claim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.id, self.token)
    }
}

/// How a run ended, as the run itself or its worker records it.
#[derive(Clone, Debug, Default)]
pub struct RunEnd {
    /// The run's exit code (`None`: killed by a signal).
    pub exit_code: Option<i32>,
    /// It failed and kept its checkpoint (a restart point).
    pub restart_point: bool,
    /// It was stopped (cancelled, or killed by a signal): back to the queue
    /// as it was, this try not counted, to resume from its checkpoint.
    pub hand_back: bool,
    /// The error it ended with.
    pub error: Option<String>,
}

/// At most this many tries in a row may end by a signal before the run
/// is failed instead of handed back again.
const MAX_INTERRUPTIONS: i32 = 3;

/// Writes the end of run `id` if it is still `running` (and, when
/// `worker` is given, claimed by that worker); returns the state written,
/// or the state it already had (`Err`).
pub(crate) fn write_end(
    c: &mut crate::conn::Session,
    claim: Claim,
    worker: Option<&str>,
    end: &RunEnd,
) -> Result<Result<RunState, Option<RunState>>, crate::conn::CallError> {
    let id = claim.id;
    let Some(row) = c.query_opt(
        "SELECT state, worker, attempts, max_attempts, delay_ms, backoff, interruptions, token \
         FROM checkflow_run WHERE id = $1 FOR UPDATE",
        &[&id],
    )?
    else {
        return Ok(Err(None));
    };
    let state = RunState::parse(row.get(0));
    let owner: Option<String> = row.get(1);
    let token: i64 = row.get(7);
    if state != RunState::Running
        || token != claim.token
        || worker.is_some_and(|w| owner.as_deref() != Some(w))
    {
        return Ok(Err(Some(state)));
    }
    let (attempts, max, delay_ms, backoff, interruptions): (i32, i32, i64, f64, i32) =
        (row.get(2), row.get(3), row.get(4), row.get(5), row.get(6));
    let signalled = end.hand_back && end.exit_code.is_none();
    let (state, delay) = if signalled && interruptions >= MAX_INTERRUPTIONS {
        (RunState::Failed, 0.0)
    } else if end.hand_back {
        (RunState::Queued, 0.0)
    } else if end.exit_code == Some(0) {
        (RunState::Succeeded, 0.0)
    } else if end.restart_point && attempts <= max {
        let d = delay_ms as f64 * backoff.powi(attempts - 1) / 1000.0;
        (RunState::Retrying, d)
    } else {
        (RunState::Failed, 0.0)
    };
    let error = if signalled && state == RunState::Failed {
        Some(format!(
            "killed by a signal {} times in a row",
            interruptions + 1
        ))
    } else {
        end.error.clone()
    };
    let finished = matches!(state, RunState::Succeeded | RunState::Failed);
    let handed = state == RunState::Queued;
    c.execute(
        "UPDATE checkflow_run SET state = $2, exit_code = $3, \
           last_error = coalesce($4, last_error), worker = CASE WHEN $5 THEN worker END, \
           attempts = attempts - CASE WHEN $6 THEN 1 ELSE 0 END, \
           interruptions = CASE WHEN $7 THEN interruptions + 1 ELSE 0 END, \
           not_before = now() + make_interval(secs => $8), \
           claimed_until = NULL, \
           finished_at = CASE WHEN $5 THEN now() END \
         WHERE id = $1",
        &[
            &id,
            &state.as_str(),
            &end.exit_code,
            &error,
            &finished,
            &handed,
            &signalled,
            &delay,
        ],
    )?;
    Ok(Ok(state))
}

/// What became of a run's end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// This call wrote it.
    Wrote(RunState),
    /// The run had already recorded it (the run writes its own end).
    Already(RunState),
    /// The run is not this worker's any more.
    NotMine,
}

/// A run a worker claimed.
#[derive(Clone, Debug)]
pub struct Claimed {
    pub id: i64,
    /// This claim's token (see [`Claim`]).
    pub token: i64,
    pub package_path: String,
    pub package_hash: String,
    pub key: String,
    pub args: Vec<String>,
    /// The text of its configuration file, if it was given one.
    pub config: Option<String>,
    /// The run was `running` under a worker that is gone: this is a takeover.
    pub takeover: bool,
    pub attempts: i32,
}

const TS: &str = "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'";

fn ts(col: &str) -> String {
    format!("to_char({col} AT TIME ZONE 'UTC', {TS})")
}

impl Store {
    /// Queues a run; returns its id.
    pub fn submit(&mut self, run: &NewRun) -> Result<i64, StoreError> {
        let r = run.clone();
        let args = serde_json::json!({"args": r.args, "config": r.config}).to_string();
        let busy = self.call("queue the run", move |c| {
            c.begin()?;
            // One live run per checkpoint key: two would restore each
            // other's records (give each its own key, e.g. with key_expr).
            c.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&r.key])?;
            if let Some(row) = c.query_opt(
                "SELECT id FROM checkflow_run WHERE key = $1 \
                 AND state NOT IN ('succeeded', 'failed') LIMIT 1",
                &[&r.key],
            )? {
                return Ok(Err(row.get::<_, i64>(0)));
            }
            let row = c.query_one(
                "INSERT INTO checkflow_run (queue, package_path, package_hash, package_id, key, \
                   args, state, max_attempts, delay_ms, backoff) \
                 VALUES ($1, $2, $3, $4, $5, $6::text::jsonb, 'queued', $7, $8, $9) RETURNING id",
                &[
                    &r.queue,
                    &r.package_path,
                    &r.package_hash,
                    &r.package_id,
                    &r.key,
                    &args,
                    &(r.restart.attempts as i32),
                    &(r.restart.delay.as_millis() as i64),
                    &r.restart.backoff,
                ],
            )?;
            c.commit()?;
            Ok(Ok(row.get(0)))
        })?;
        busy.map_err(|id| StoreError::KeyBusy {
            key: run.key.clone(),
            id,
        })
    }

    /// Runs in `queue` (all queues if `None`), oldest first.
    pub fn runs(&mut self, queue: Option<&str>) -> Result<Vec<RunRow>, StoreError> {
        let queue = queue.map(str::to_string);
        let sql = format!(
            "SELECT id, queue, package_path, key, state, attempts, worker, {}, {}, {}, {}, \
               exit_code, last_error \
             FROM checkflow_run WHERE $1::text IS NULL OR queue = $1 ORDER BY id",
            ts("submitted_at"),
            ts("started_at"),
            ts("finished_at"),
            ts("not_before"),
        );
        let rows = self.call("list the runs", move |c| c.query(&sql, &[&queue]))?;
        Ok(rows
            .iter()
            .map(|r| RunRow {
                id: r.get(0),
                queue: r.get(1),
                package_path: r.get(2),
                key: r.get(3),
                state: RunState::parse(r.get(4)),
                attempts: r.get(5),
                worker: r.get(6),
                submitted_at: r.get(7),
                started_at: r.get(8),
                finished_at: r.get(9),
                not_before: r.get(10),
                exit_code: r.get(11),
                last_error: r.get(12),
            })
            .collect())
    }
}

/// A worker's side of the queue.
pub struct Worker {
    store: Store,
    /// `host:pid`, as run rows name it.
    pub name: String,
    queue: String,
    /// How long a claim lasts without a heartbeat.
    claim: Duration,
}

impl Worker {
    pub fn new(store: Store, queue: &str, claim: Duration) -> Worker {
        Worker {
            store,
            name: format!("{}:{}", checkflow_journal::hostname(), std::process::id()),
            queue: queue.to_string(),
            claim,
        }
    }

    /// Claims the oldest run that is ready: queued (or retrying) and due, or
    /// running under a worker whose claim lapsed and with no live lease on
    /// its checkpoint.
    pub fn claim(&mut self) -> Result<Option<Claimed>, StoreError> {
        let (queue, name, secs) = (
            self.queue.clone(),
            self.name.clone(),
            self.claim.as_secs_f64(),
        );
        let row = self.store.call("claim a run", move |c| {
            c.query_opt(
                "WITH pick AS ( \
                   SELECT r.id, r.state AS was FROM checkflow_run r \
                   WHERE r.queue = $1 AND ( \
                     (r.state IN ('queued', 'retrying') AND r.not_before <= now()) \
                     OR (r.state = 'running' AND r.claimed_until <= now() \
                         AND NOT EXISTS (SELECT 1 FROM checkflow_lease l WHERE l.key = r.key \
                                         AND NOT l.released AND l.expires_at > now()))) \
                   ORDER BY r.id LIMIT 1 FOR UPDATE OF r SKIP LOCKED) \
                 UPDATE checkflow_run r SET state = 'running', worker = $2, \
                   claimed_until = now() + make_interval(secs => $3), \
                   attempts = r.attempts + CASE WHEN pick.was = 'running' THEN 0 ELSE 1 END, \
                   token = r.token + 1, \
                   started_at = coalesce(r.started_at, now()) \
                 FROM pick WHERE r.id = pick.id \
                 RETURNING r.id, r.package_path, r.package_hash, r.key, r.args::text, \
                   pick.was, r.attempts, r.token",
                &[&queue, &name, &secs],
            )
        })?;
        Ok(row.map(|r| {
            let text: String = r.get(4);
            let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            let args = v["args"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            Claimed {
                id: r.get(0),
                package_path: r.get(1),
                package_hash: r.get(2),
                key: r.get(3),
                args,
                config: v["config"].as_str().map(str::to_string),
                takeover: r.get::<_, &str>(5) == "running",
                attempts: r.get(6),
                token: r.get(7),
            }
        }))
    }

    /// Keeps this worker's `claims` alive; returns those another claim has
    /// replaced (the run is another worker's now). A run that ended is not
    /// among them.
    pub fn heartbeat(&mut self, claims: &[Claim]) -> Result<Vec<Claim>, StoreError> {
        if claims.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = claims.iter().map(|c| c.id).collect();
        let tokens: Vec<i64> = claims.iter().map(|c| c.token).collect();
        let secs = self.claim.as_secs_f64();
        let now: Vec<(i64, i64)> = self.store.call("renew the claims", move |c| {
            c.execute(
                "UPDATE checkflow_run r SET claimed_until = now() + make_interval(secs => $1) \
                 FROM unnest($2::bigint[], $3::bigint[]) AS mine(id, token) \
                 WHERE r.id = mine.id AND r.token = mine.token AND r.state = 'running'",
                &[&secs, &ids, &tokens],
            )?;
            Ok(c.query(
                "SELECT id, token FROM checkflow_run WHERE id = ANY($1)",
                &[&ids],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
        })?;
        Ok(claims
            .iter()
            .copied()
            .filter(|c| {
                now.iter()
                    .any(|&(id, token)| id == c.id && token != c.token)
            })
            .collect())
    }

    /// Whether every run of the queue has finished (succeeded or failed).
    pub fn all_finished(&mut self) -> Result<bool, StoreError> {
        let queue = self.queue.clone();
        self.store.call("list the runs", move |c| {
            Ok(c.query_one(
                "SELECT count(*) FROM checkflow_run WHERE queue = $1 \
                 AND state NOT IN ('succeeded', 'failed')",
                &[&queue],
            )?
            .get::<_, i64>(0)
                == 0)
        })
    }

    /// The run's child ended and did not record its end itself (it was
    /// killed, or could not reach the store): records it, if this worker's
    /// claim still holds.
    ///
    /// `end_of` gives the end from whether the run's checkpoint is in the
    /// store, read in the same transaction: a run that left one resumes
    /// from it, and an answer the store could not give never stands in for
    /// it.
    pub fn finish(
        &mut self,
        claim: Claim,
        key: &str,
        end_of: impl Fn(bool) -> RunEnd,
    ) -> Result<Ended, StoreError> {
        let name = self.name.clone();
        let key = key.to_string();
        self.store.call("record the run's end", move |c| {
            c.begin()?;
            let kept = c
                .query_opt(
                    "SELECT 1 FROM checkflow_frame WHERE key = $1 LIMIT 1",
                    &[&key],
                )?
                .is_some();
            let r = write_end(c, claim, Some(&name), &end_of(kept))?;
            c.commit()?;
            Ok(match r {
                Ok(s) => Ended::Wrote(s),
                Err(Some(s)) if s != RunState::Running => Ended::Already(s),
                Err(_) => Ended::NotMine,
            })
        })
    }
}
