//! `Conn`: one connection to the store, on a thread of its own, so that every
//! call has a deadline.
//!
//! A database cut off by a network partition does not answer, and a socket
//! that the kernel still acknowledges never times out: a call made straight
//! from the run could wait forever, long after the lease it relies on ran
//! out. Here the caller waits at most until its deadline; a call still
//! running then is abandoned with its connection (the thread ends when the
//! call returns, or with the process), and the next call opens a new one.

use std::str::FromStr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use postgres::{Client, Config, NoTls, Statement};
use std::collections::HashMap;

/// How long opening a connection may take when the URL does not say.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a call did not give a result.
#[derive(Debug)]
pub(crate) enum CallError {
    /// The database (or the connection) answered with an error.
    Pg(postgres::Error),
    /// No answer before the deadline.
    TimedOut,
}

impl CallError {
    /// The connection failed or the server is going away: the same call may
    /// succeed on a new connection (an error in the SQL itself would not).
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            CallError::TimedOut => true,
            CallError::Pg(e) => match e.as_db_error() {
                None => true,
                Some(db) => {
                    let code = db.code().code();
                    // Connection exceptions, the server shutting down or
                    // starting, and a conflict a retry resolves.
                    code.starts_with("08")
                        || code.starts_with("57P")
                        || code == "40001"
                        || code == "40P01"
                }
            },
        }
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Pg(e) => write!(f, "{}", pg_message(e)),
            CallError::TimedOut => write!(f, "the store did not answer in time"),
        }
    }
}

/// A PostgreSQL error as one line: the server's message where there is
/// one, else the client's with its cause.
pub(crate) fn pg_message(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return db.message().to_string();
    }
    match std::error::Error::source(e) {
        Some(src) => format!("{e}: {src}"),
        None => e.to_string(),
    }
}

/// An open connection and the statements prepared on it: the writes of a
/// run are prepared once, so each is one round trip.
pub(crate) struct Session {
    client: Client,
    prepared: HashMap<&'static str, Statement>,
}

impl Session {
    /// `sql` prepared on this connection (once).
    pub(crate) fn prep(&mut self, sql: &'static str) -> Result<Statement, postgres::Error> {
        if let Some(s) = self.prepared.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        self.prepared.insert(sql, s.clone());
        Ok(s)
    }
}

impl std::ops::Deref for Session {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

impl std::ops::DerefMut for Session {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}

type Job = Box<dyn FnOnce(&mut Option<Session>) + Send>;

/// A connection to the store, opened on first use and again after a failure.
pub(crate) struct Conn {
    config: Config,
    thread: Option<mpsc::Sender<Job>>,
}

impl Conn {
    /// Parses `url` (a `postgres://` URL or `key=value` settings); connects later.
    pub(crate) fn new(url: &str) -> Result<Conn, String> {
        let mut config = Config::from_str(url).map_err(|e| {
            format!("not a PostgreSQL connection string ({e}); expected postgres://user@host:port/database")
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config.application_name("checkflow");
        // A client that stops in the middle of a transaction (paused, cut
        // off) must not hold the lease row's lock for long: the server ends
        // such a session after 5 s, and gives up on a lock after 5 s, and
        // keepalives find a dead peer.
        let opts = config.get_options().unwrap_or("").to_string();
        config.options(
            format!("{opts} -c idle_in_transaction_session_timeout=5000 -c lock_timeout=5000")
                .trim(),
        );
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(10));
        Ok(Conn {
            config,
            thread: None,
        })
    }

    /// Runs `f` on the connection and waits for its result until `deadline`.
    pub(crate) fn call<R, F>(&mut self, deadline: Instant, f: F) -> Result<R, CallError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Session) -> Result<R, postgres::Error> + Send + 'static,
    {
        let (reply, answer) = mpsc::sync_channel(1);
        let config = self.config.clone();
        let job: Job = Box::new(move |client: &mut Option<Session>| {
            let r = match client {
                Some(c) => f(c),
                None => match config.connect(NoTls) {
                    Ok(c) => f(client.insert(Session {
                        client: c,
                        prepared: HashMap::new(),
                    })),
                    Err(e) => Err(e),
                },
            };
            if let Err(e) = &r
                && (e.is_closed() || e.as_db_error().is_none())
            {
                *client = None;
            }
            let _ = reply.send(r);
        });
        let sent = match &self.thread {
            Some(t) => t.send(job).map_err(|e| e.0),
            None => Err(job),
        };
        if let Err(job) = sent {
            let t = spawn();
            // A new thread has not dropped its receiver.
            let _ = t.send(job);
            self.thread = Some(t);
        }
        let wait = deadline.saturating_duration_since(Instant::now());
        match answer.recv_timeout(wait) {
            Ok(r) => r.map_err(CallError::Pg),
            Err(_) => {
                // Abandon the call and its connection.
                self.thread = None;
                Err(CallError::TimedOut)
            }
        }
    }

    /// `call`, again on a new connection after a transient failure, until
    /// `deadline`. `f` runs once per attempt, so it must be safe to repeat
    /// (every write of the store is: it checks what is there first).
    pub(crate) fn retry<R, F>(&mut self, deadline: Instant, f: F) -> Result<R, CallError>
    where
        R: Send + 'static,
        F: Fn(&mut Session) -> Result<R, postgres::Error> + Send + Sync + Clone + 'static,
    {
        let mut pause = Duration::from_millis(50);
        loop {
            // One attempt waits at most half of what is left (and at least
            // a second): a silent connection is given up while a new one
            // can still make it.
            let left = deadline.saturating_duration_since(Instant::now());
            let attempt = deadline.min(Instant::now() + (left / 2).max(Duration::from_secs(1)));
            match self.call(attempt, f.clone()) {
                Err(e) if e.is_transient() && Instant::now() + pause < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(500));
                }
                r => return r,
            }
        }
    }
}

fn spawn() -> mpsc::Sender<Job> {
    let (tx, rx) = mpsc::channel::<Job>();
    // A thread that cannot start leaves the channel closed: the call waits
    // until its deadline and fails as a store that does not answer.
    let _ = std::thread::Builder::new()
        .name("checkflow-store".into())
        .spawn(move || {
            let mut client = None;
            while let Ok(job) = rx.recv() {
                job(&mut client);
            }
        });
    tx
}
