//! Leases with fencing: one holder per checkpoint key at a time.
//!
//! - **Take**: one statement inserts the key's lease row, or takes over a
//!   row that expired or was released, adding one to its epoch. Expiry is
//!   the database's clock only (`now()`), so the machines' clocks never
//!   need to agree.
//! - **Renew**: a thread sets the expiry again every third of the lease, if
//!   the epoch is still this run's and the lease has not expired.
//! - **Fence**: every write of the checkpoint checks the epoch in its own
//!   transaction (`frames.rs`), so a holder that lost the lease writes nothing.
//! - **Hold, as the run sees it**: the run may start work only until its
//!   last confirmed renewal plus the lease, measured on this machine's
//!   monotonic clock from *before* the renewal was sent. That time is never
//!   later than the expiry the database set, so by the time another run can
//!   take the key over, this one has stopped starting work — even if it was
//!   paused (SIGSTOP) or cut off from the database in between.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::conn::Conn;
use crate::frames::{self, PgFrames, Stored};
use crate::{Store, StoreError};

/// Whom a lease names, and until when.
#[derive(Clone, Debug)]
pub struct LeaseSpec {
    /// The checkpoint key.
    pub key: String,
    /// The package the key belongs to (shown to a run that finds it held).
    pub package_id: String,
    /// This run's id.
    pub run_id: String,
    /// How long the holder stays the holder without renewing.
    pub duration: Duration,
}

/// The run that holds (or last held) a key.
#[derive(Clone, Debug)]
pub struct Holder {
    pub host: String,
    pub pid: i32,
    pub run_id: String,
    pub epoch: i64,
    /// RFC 3339 UTC.
    pub expires_at: String,
    /// Milliseconds until it expires (negative: expired).
    pub remaining_ms: i64,
    /// The holder gave it back.
    pub released: bool,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "host {}, pid {}, run {}, epoch {}, ",
            self.host, self.pid, self.run_id, self.epoch
        )?;
        if self.released {
            write!(f, "released")
        } else if self.remaining_ms > 0 {
            write!(f, "lease until {}", self.expires_at)
        } else {
            write!(f, "lease expired at {}", self.expires_at)
        }
    }
}

/// What the renewal thread and every write share.
pub(crate) struct Shared {
    pub(crate) key: String,
    /// The store's URL as shown in messages.
    pub(crate) url: String,
    pub(crate) epoch: i64,
    pub(crate) duration: Duration,
    hold: Mutex<Hold>,
    stop: Mutex<bool>,
    wake: Condvar,
}

struct Hold {
    /// On the boot clock ([`boot_now`]).
    valid_until: Duration,
    lost: Option<String>,
}

/// The time since boot, counting time suspended: a holder whose machine
/// or VM was suspended sees that time pass (the monotonic clock of `Instant`
/// stops during a suspend).
pub(crate) fn boot_now() -> Duration {
    #[cfg(target_os = "linux")]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes one timespec, which `ts` is.
        if unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) } == 0 {
            return Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
        }
    }
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}

/// How much of the lease a holder uses: it stops a tenth of the lease
/// before the database's expiry could pass, for clocks that run at slightly
/// different rates.
fn usable(lease: Duration) -> Duration {
    lease - lease / 10
}

impl Shared {
    /// Until when this run may act as the holder (as a deadline for a
    /// call), or why it may not.
    pub(crate) fn check(&self) -> Result<Instant, StoreError> {
        let h = self.hold.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(why) = &h.lost {
            return Err(self.lost(why.clone()));
        }
        let now = boot_now();
        if now >= h.valid_until {
            return Err(self.lost(format!(
                "no renewal reached the store within the lease of {}",
                secs(self.duration)
            )));
        }
        Ok(Instant::now() + (h.valid_until - now))
    }

    /// The store accepted a renewal (or a write, which renews) sent at
    /// `sent` (on the boot clock).
    pub(crate) fn renewed(&self, sent: Duration) {
        let mut h = self.hold.lock().unwrap_or_else(|e| e.into_inner());
        if h.lost.is_none() {
            h.valid_until = h.valid_until.max(sent + usable(self.duration));
        }
    }

    /// The lease is gone: nothing more is written or started.
    pub(crate) fn lose(&self, why: String) {
        let mut h = self.hold.lock().unwrap_or_else(|e| e.into_inner());
        h.lost.get_or_insert(why);
    }

    pub(crate) fn lost(&self, why: String) -> StoreError {
        StoreError::Lost {
            key: self.key.clone(),
            why,
        }
    }

    /// The lease in seconds, as the SQL takes it.
    pub(crate) fn secs(&self) -> f64 {
        self.duration.as_secs_f64()
    }
}

fn secs(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{}ms", ms)
    }
}

/// A cheap handle on a lease: whether this run still holds it.
#[derive(Clone)]
pub struct LeaseGuard(Arc<Shared>);

impl LeaseGuard {
    /// `Ok` while this run holds the lease; else why not (a run stops
    /// starting work, and stops what runs, at the first `Err`).
    pub fn check(&self) -> Result<(), StoreError> {
        self.0.check().map(|_| ())
    }
}

/// This run's lease on a checkpoint key, renewed by a thread until released.
pub struct Lease {
    shared: Arc<Shared>,
    store_url: String,
    store: Store,
    renewer: Option<std::thread::JoinHandle<()>>,
}

const HOLDER_SQL: &str = "SELECT host, pid, run_id, epoch, \
     to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), \
     (extract(epoch FROM (expires_at - now())) * 1000)::bigint, released \
     FROM checkflow_lease WHERE key = $1";

pub(crate) fn holder_of(
    c: &mut crate::conn::Session,
    key: &str,
) -> Result<Option<Holder>, crate::conn::CallError> {
    Ok(c.query_opt(HOLDER_SQL, &[&key])?.map(|r| Holder {
        host: r.get(0),
        pid: r.get(1),
        run_id: r.get(2),
        epoch: r.get(3),
        expires_at: r.get(4),
        remaining_ms: r.get(5),
        released: r.get(6),
    }))
}

/// The renewal: the expiry set again, only by the holder of `epoch`, only
/// while it has not expired.
pub(crate) const RENEW_SQL: &str = "UPDATE checkflow_lease \
     SET expires_at = now() + make_interval(secs => $3) \
     WHERE key = $1 AND epoch = $2 AND NOT released AND expires_at > now()";

impl Lease {
    /// Takes the lease on `spec.key`. Held by another run: fails naming it,
    /// or with `takeover` waits for that lease to expire (calling `waiting`
    /// once with the holder) and takes it then.
    pub fn acquire(
        mut store: Store,
        spec: LeaseSpec,
        takeover: bool,
        stop: Option<&std::sync::atomic::AtomicBool>,
        mut waiting: impl FnMut(&Holder),
    ) -> Result<Lease, StoreError> {
        let host = checkflow_journal::hostname();
        let pid = std::process::id() as i32;
        let mut told = false;
        loop {
            if stop.is_some_and(|s| s.load(std::sync::atomic::Ordering::SeqCst)) {
                return Err(StoreError::Held {
                    key: spec.key,
                    holder: "interrupted while waiting for the lease to expire".into(),
                });
            }
            let sent = boot_now();
            let (key, pkg, run, host2) = (
                spec.key.clone(),
                spec.package_id.clone(),
                spec.run_id.clone(),
                host.clone(),
            );
            let secs = spec.duration.as_secs_f64();
            let took = store.call("take the lease", move |c| {
                let row = c.query_opt(
                    "INSERT INTO checkflow_lease AS l \
                       (key, epoch, package_id, host, pid, run_id, acquired_at, expires_at) \
                     VALUES ($1, 1, $2, $3, $4, $5, now(), now() + make_interval(secs => $6)) \
                     ON CONFLICT (key) DO UPDATE SET epoch = l.epoch + 1, \
                       package_id = EXCLUDED.package_id, host = EXCLUDED.host, pid = EXCLUDED.pid, \
                       run_id = EXCLUDED.run_id, acquired_at = now(), \
                       expires_at = EXCLUDED.expires_at, released = false \
                     WHERE l.released OR l.expires_at <= now() \
                     RETURNING epoch",
                    &[&key, &pkg, &host2, &pid, &run, &secs],
                )?;
                match row {
                    Some(r) => Ok(Ok(r.get::<_, i64>(0))),
                    None => Ok(Err(holder_of(c, &key)?)),
                }
            })?;
            match took {
                Ok(epoch) => return Ok(Lease::start(store, spec, epoch, sent)),
                // Released or expired between the two statements: try again.
                Err(None) => continue,
                // Taken by this very call, whose first answer was lost.
                Err(Some(h)) if h.run_id == spec.run_id && h.pid == pid && !h.released => {
                    return Ok(Lease::start(store, spec, h.epoch, sent));
                }
                Err(Some(holder)) if !takeover => {
                    return Err(StoreError::Held {
                        key: spec.key,
                        holder: holder.to_string(),
                    });
                }
                Err(Some(holder)) => {
                    if !told {
                        waiting(&holder);
                        told = true;
                    }
                    let ms = holder.remaining_ms.clamp(50, 500) as u64;
                    std::thread::sleep(Duration::from_millis(ms));
                }
            }
        }
    }

    fn start(store: Store, spec: LeaseSpec, epoch: i64, sent: Duration) -> Lease {
        let shared = Arc::new(Shared {
            key: spec.key,
            url: store.shown.clone(),
            epoch,
            duration: spec.duration,
            hold: Mutex::new(Hold {
                valid_until: sent + usable(spec.duration),
                lost: None,
            }),
            stop: Mutex::new(false),
            wake: Condvar::new(),
        });
        let conn = store.reconnect();
        let s = shared.clone();
        let renewer = std::thread::Builder::new()
            .name("checkflow-lease".into())
            .spawn(move || renew_loop(&s, conn))
            .ok();
        Lease {
            shared,
            store_url: store.url.clone(),
            store,
            renewer,
        }
    }

    /// The key's epoch under this run.
    pub fn epoch(&self) -> i64 {
        self.shared.epoch
    }

    /// The checkpoint key.
    pub fn key(&self) -> &str {
        &self.shared.key
    }

    /// A handle to check the lease from the run.
    pub fn guard(&self) -> LeaseGuard {
        LeaseGuard(self.shared.clone())
    }

    /// Whether this run still holds the lease.
    pub fn check(&self) -> Result<(), StoreError> {
        self.shared.check().map(|_| ())
    }

    /// The frames stored under the key now (read under the lease, so no
    /// other run changes them before this one is done).
    pub fn read(&mut self) -> Result<Option<Stored>, StoreError> {
        frames::read(&mut self.store, &self.shared.key)
    }

    /// A new checkpoint under the key: the header frame in place of every
    /// frame stored there, in one transaction. Returns the storage the
    /// journal appends its records to.
    pub fn create(&self, header: &[u8]) -> Result<PgFrames, StoreError> {
        PgFrames::create(self.frames_conn(), self.shared.clone(), header)
    }

    /// The checkpoint `stored` (read under this lease) continued.
    pub fn resume(&self, stored: &Stored) -> PgFrames {
        PgFrames::resume(self.frames_conn(), self.shared.clone(), stored)
    }

    /// Removes every frame stored under the key (the package succeeded, and
    /// the run did not write: a restart with `save: false`).
    pub fn remove(&self) -> Result<(), StoreError> {
        PgFrames::resume(self.frames_conn(), self.shared.clone(), &Stored::default()).remove_all()
    }

    /// A run of the queue (`id`) ended: records its end and, when
    /// `delete_frames`, removes its checkpoint, in one transaction fenced by
    /// the lease — so a worker that dies now cannot make another run it
    /// again, and a run that lost its lease records nothing.
    pub fn end_run(
        &mut self,
        claim: crate::Claim,
        end: crate::RunEnd,
        delete_frames: bool,
    ) -> Result<Option<crate::RunState>, StoreError> {
        let deadline = self.shared.check()?;
        let (key, epoch, secs) = (
            self.shared.key.clone(),
            self.shared.epoch,
            self.shared.secs(),
        );
        let r = self.store.conn.retry(deadline, move |c| {
            c.begin()?;
            if c.execute(RENEW_SQL, &[&key, &epoch, &secs])? != 1 {
                return Ok(None);
            }
            // Only the run of the current claim ends it: a run whose claim
            // was taken over leaves the row, and the frames, to the new one.
            let state = crate::queue::write_end(c, claim, None, &end)?;
            if delete_frames && state.is_ok() {
                c.execute("DELETE FROM checkflow_frame WHERE key = $1", &[&key])?;
            }
            c.commit()?;
            Ok(Some(state.ok()))
        });
        match r {
            Ok(Some(state)) => Ok(state),
            Ok(None) => {
                let why = "its lease expired or another run took the key over".to_string();
                self.shared.lose(why.clone());
                Err(self.shared.lost(why))
            }
            Err(e) => Err(StoreError::call(
                "record the run's end",
                &self.shared.url,
                e,
            )),
        }
    }

    /// Whether `claim` is still the queue's current claim of its run
    /// (checked once the lease is taken, before anything runs).
    pub fn claim_is_current(&mut self, claim: crate::Claim) -> Result<bool, StoreError> {
        self.store.call("read the run", move |c| {
            Ok(c.query_opt(
                "SELECT 1 FROM checkflow_run WHERE id = $1 AND token = $2 AND state = 'running'",
                &[&claim.id, &claim.token],
            )?
            .is_some())
        })
    }

    fn frames_conn(&self) -> Conn {
        Conn::new(&self.store_url).expect("the URL parsed when the store was opened")
    }

    /// Why this run lost the lease, naming who holds it now (asks the store,
    /// briefly): for the run's last message.
    pub fn why_lost(&mut self) -> Option<String> {
        let e = self.shared.check().err()?;
        let key = self.shared.key.clone();
        // Briefly: a store cut off must not hold up the run's last words.
        let deadline = Instant::now() + Duration::from_secs(2);
        let now = self
            .store
            .conn
            .call(deadline, move |c| holder_of(c, &key))
            .ok()
            .flatten();
        let why = match e {
            StoreError::Lost { why, .. } => why,
            other => other.to_string(),
        };
        Some(match now {
            Some(h) if h.epoch != self.shared.epoch => format!("{why}; it is now held by {h}"),
            _ => why,
        })
    }

    /// Gives the lease back (another run may take the key at once) and stops
    /// renewing it. A lease that was lost is left as it is.
    pub fn release(mut self) {
        self.stop_renewing();
        if self.shared.check().is_err() {
            return;
        }
        let (key, epoch) = (self.shared.key.clone(), self.shared.epoch);
        // A release that fails is harmless: the lease expires on its own.
        let deadline = Instant::now() + Duration::from_secs(2);
        let _ = self.store.conn.call(deadline, move |c| {
            c.execute(
                "UPDATE checkflow_lease SET released = true, expires_at = now() \
                 WHERE key = $1 AND epoch = $2",
                &[&key, &epoch],
            )
        });
    }

    pub(crate) fn stop_renewing(&mut self) {
        *self.shared.stop.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.renewer.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.stop_renewing();
    }
}

/// Renews every third of the lease; after a failure, again every 200 ms
/// until the lease is renewed or runs out.
fn renew_loop(s: &Shared, mut conn: Conn) {
    let mut wait = s.duration / 3;
    loop {
        {
            let stop = s.stop.lock().unwrap_or_else(|e| e.into_inner());
            let (stop, _) = s
                .wake
                .wait_timeout_while(stop, wait, |stop| !*stop)
                .unwrap_or_else(|e| e.into_inner());
            if *stop {
                return;
            }
        }
        let Ok(valid_until) = s.check() else {
            return;
        };
        let sent = boot_now();
        let (key, epoch, secs) = (s.key.clone(), s.epoch, s.secs());
        // One attempt waits at most a third of the lease: a connection that
        // went silent is given up early enough to try a new one.
        let attempt =
            valid_until.min(Instant::now() + (s.duration / 3).max(Duration::from_millis(500)));
        let r = conn.call(attempt, move |c| {
            let renew = c.prep(RENEW_SQL)?;
            c.execute(&renew, &[&key, &epoch, &secs])
        });
        match r {
            Ok(1) => {
                s.renewed(sent);
                wait = s.duration / 3;
            }
            Ok(_) => {
                let key = s.key.clone();
                let deadline = Instant::now() + Duration::from_secs(2);
                let why = match conn.call(deadline, move |c| holder_of(c, &key)) {
                    Ok(Some(h)) if h.epoch != s.epoch => format!("it is now held by {h}"),
                    Ok(Some(h)) => format!("it expired before this run renewed it ({h})"),
                    _ => "its row is gone from the store".to_string(),
                };
                s.lose(why);
                return;
            }
            Err(e) if e.is_transient() => {
                // Writes renew the lease too: only the hold as it is now says
                // whether it ran out.
                if s.check().is_err() {
                    s.lose(format!(
                        "the store could not be reached to renew it within the lease ({e})"
                    ));
                    return;
                }
                wait = Duration::from_millis(200);
            }
            Err(e) => {
                s.lose(format!("renewing it failed: {e}"));
                return;
            }
        }
    }
}
