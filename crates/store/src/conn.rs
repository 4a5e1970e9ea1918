//! `Conn`: one connection to the store, whose every call has a deadline.
//!
//! A database cut off by a network partition does not answer, and a socket
//! that the kernel still acknowledges never times out: a call that simply
//! waited could wait forever, long after the lease it relies on ran out.
//! So each call runs the asynchronous client on a small runtime of the
//! calling thread, under a timeout at its deadline: past it, the call is
//! given up with its connection (the next call opens a new one). No other
//! thread is involved, so a call costs one round trip and nothing more.

use std::collections::HashMap;
use std::future::Future;
use std::str::FromStr;
use std::time::{Duration, Instant};

use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, NoTls, Row, Statement, ToStatement};

/// How long opening a connection may take when the URL does not say.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a call did not give a result.
#[derive(Debug)]
pub(crate) enum CallError {
    /// The database (or the connection) answered with an error.
    Pg(tokio_postgres::Error),
    /// No answer before the deadline.
    TimedOut,
}

impl From<tokio_postgres::Error> for CallError {
    fn from(e: tokio_postgres::Error) -> Self {
        CallError::Pg(e)
    }
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

    /// The connection cannot be used again.
    fn breaks_connection(&self) -> bool {
        match self {
            CallError::TimedOut => true,
            CallError::Pg(e) => e.is_closed() || e.as_db_error().is_none(),
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
pub(crate) fn pg_message(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return db.message().to_string();
    }
    match std::error::Error::source(e) {
        Some(src) => format!("{e}: {src}"),
        None => e.to_string(),
    }
}

/// An open connection: the client, the task that drives its socket, and
/// the statements prepared on it.
struct Live {
    client: Client,
    driver: tokio::task::JoinHandle<()>,
    prepared: HashMap<&'static str, Statement>,
}

impl Drop for Live {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// Waits for `fut` on `rt` until `deadline`.
fn wait<T>(
    rt: &tokio::runtime::Runtime,
    deadline: Instant,
    fut: impl Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, CallError> {
    let at = tokio::time::Instant::from_std(deadline);
    // The timer is made inside the runtime (it needs its clock).
    match rt.block_on(async move { tokio::time::timeout_at(at, fut).await }) {
        Ok(r) => r.map_err(CallError::Pg),
        Err(_) => Err(CallError::TimedOut),
    }
}

/// One call's view of the connection: each statement waits at most until
/// the call's deadline.
pub(crate) struct Session<'a> {
    live: &'a mut Live,
    rt: &'a tokio::runtime::Runtime,
    deadline: Instant,
    /// A transaction was begun and not yet committed.
    in_tx: bool,
}

type Params<'p> = [&'p (dyn ToSql + Sync)];

impl Session<'_> {
    /// `sql` prepared on this connection (once).
    pub(crate) fn prep(&mut self, sql: &'static str) -> Result<Statement, CallError> {
        if let Some(s) = self.live.prepared.get(sql) {
            return Ok(s.clone());
        }
        let s = wait(self.rt, self.deadline, self.live.client.prepare(sql))?;
        self.live.prepared.insert(sql, s.clone());
        Ok(s)
    }

    pub(crate) fn execute<T>(&mut self, sql: &T, params: &Params<'_>) -> Result<u64, CallError>
    where
        T: ?Sized + ToStatement,
    {
        wait(
            self.rt,
            self.deadline,
            self.live.client.execute(sql, params),
        )
    }

    pub(crate) fn query<T>(&mut self, sql: &T, params: &Params<'_>) -> Result<Vec<Row>, CallError>
    where
        T: ?Sized + ToStatement,
    {
        wait(self.rt, self.deadline, self.live.client.query(sql, params))
    }

    pub(crate) fn query_one<T>(&mut self, sql: &T, params: &Params<'_>) -> Result<Row, CallError>
    where
        T: ?Sized + ToStatement,
    {
        wait(
            self.rt,
            self.deadline,
            self.live.client.query_one(sql, params),
        )
    }

    pub(crate) fn query_opt<T>(
        &mut self,
        sql: &T,
        params: &Params<'_>,
    ) -> Result<Option<Row>, CallError>
    where
        T: ?Sized + ToStatement,
    {
        wait(
            self.rt,
            self.deadline,
            self.live.client.query_opt(sql, params),
        )
    }

    pub(crate) fn batch_execute(&mut self, sql: &str) -> Result<(), CallError> {
        wait(self.rt, self.deadline, self.live.client.batch_execute(sql))
    }

    /// Begins a transaction; the call's end rolls back one not committed.
    pub(crate) fn begin(&mut self) -> Result<(), CallError> {
        self.batch_execute("BEGIN")?;
        self.in_tx = true;
        Ok(())
    }

    pub(crate) fn commit(&mut self) -> Result<(), CallError> {
        self.batch_execute("COMMIT")?;
        self.in_tx = false;
        Ok(())
    }
}

/// A connection to the store, opened on first use and again after a failure.
pub(crate) struct Conn {
    config: Config,
    rt: tokio::runtime::Runtime,
    live: Option<Live>,
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
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the client's runtime: {e}"))?;
        Ok(Conn {
            config,
            rt,
            live: None,
        })
    }

    /// Runs `f` on the connection; every statement it sends waits at most
    /// until `deadline`.
    pub(crate) fn call<R, F>(&mut self, deadline: Instant, f: F) -> Result<R, CallError>
    where
        F: FnOnce(&mut Session) -> Result<R, CallError>,
    {
        if self.live.is_none() {
            let (client, connection) = wait(&self.rt, deadline, self.config.connect(NoTls))?;
            let driver = self.rt.spawn(async move {
                let _ = connection.await;
            });
            self.live = Some(Live {
                client,
                driver,
                prepared: HashMap::new(),
            });
        }
        let live = self.live.as_mut().expect("connected above");
        let mut s = Session {
            live,
            rt: &self.rt,
            deadline,
            in_tx: false,
        };
        let r = f(&mut s);
        let mut broken = r.as_ref().err().is_some_and(CallError::breaks_connection);
        if s.in_tx && !broken {
            // Left in a transaction (an early return): roll it back, briefly.
            s.deadline = Instant::now() + Duration::from_secs(2);
            broken = s.batch_execute("ROLLBACK").is_err();
        }
        if broken {
            self.live = None;
        }
        r
    }

    /// `call`, again on a new connection after a transient failure, until
    /// `deadline`. `f` runs once per attempt, so it must be safe to repeat
    /// (every write of the store is: it checks what is there first).
    pub(crate) fn retry<R, F>(&mut self, deadline: Instant, f: F) -> Result<R, CallError>
    where
        F: Fn(&mut Session) -> Result<R, CallError>,
    {
        let mut pause = Duration::from_millis(50);
        loop {
            // One attempt waits at most half of what is left (and at least
            // a second): a silent connection is given up while a new one
            // can still make it.
            let left = deadline.saturating_duration_since(Instant::now());
            let attempt = deadline.min(Instant::now() + (left / 2).max(Duration::from_secs(1)));
            match self.call(attempt, &f) {
                Err(e) if e.is_transient() && Instant::now() + pause < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(500));
                }
                r => return r,
            }
        }
    }
}
