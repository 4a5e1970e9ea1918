//! The store's tables, created on first use and versioned.
//!
//! One transaction, under an advisory lock so that two machines starting at
//! once do not both create them: read the version; none -> create every
//! table and write version 1; newer than this build -> refuse.

use crate::{Store, StoreError};

/// The version of the tables this build makes and reads.
pub(crate) const VERSION: i32 = 1;

const CREATE: &str = "
CREATE TABLE checkflow_lease (
    key          text PRIMARY KEY,
    epoch        bigint NOT NULL,
    package_id   text NOT NULL,
    host         text NOT NULL,
    pid          integer NOT NULL,
    run_id       text NOT NULL,
    acquired_at  timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    released     boolean NOT NULL DEFAULT false
);
CREATE TABLE checkflow_frame (
    key         text NOT NULL,
    seq         bigint NOT NULL,
    bytes       bytea NOT NULL,
    written_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (key, seq)
);
CREATE TABLE checkflow_run (
    id            bigserial PRIMARY KEY,
    queue         text NOT NULL,
    package_path  text NOT NULL,
    package_hash  text NOT NULL,
    package_id    text NOT NULL,
    key           text NOT NULL,
    args          jsonb NOT NULL,
    state         text NOT NULL,
    attempts      integer NOT NULL DEFAULT 0,
    max_attempts  integer NOT NULL,
    delay_ms      bigint NOT NULL,
    backoff       double precision NOT NULL,
    not_before    timestamptz NOT NULL DEFAULT now(),
    worker        text,
    claimed_until timestamptz,
    submitted_at  timestamptz NOT NULL DEFAULT now(),
    started_at    timestamptz,
    finished_at   timestamptz,
    exit_code     integer,
    last_error    text,
    interruptions integer NOT NULL DEFAULT 0,
    token         bigint NOT NULL DEFAULT 0
);
CREATE INDEX checkflow_run_ready ON checkflow_run (queue, state, not_before);
";

pub(crate) fn migrate(store: &mut Store) -> Result<(), StoreError> {
    let found = store.call_once("connect and create the tables", |c| {
        // Made already (the usual case): no lock, so one stuck client cannot
        // hold up every run that opens the store.
        if c.query_one(
            "SELECT to_regclass('checkflow_store_version') IS NOT NULL",
            &[],
        )?
        .get::<_, bool>(0)
            && let Some(r) = c.query_opt("SELECT version FROM checkflow_store_version", &[])?
        {
            return Ok(r.get::<_, i32>(0));
        }
        c.begin()?;
        c.execute("SELECT pg_advisory_xact_lock(7418221300001)", &[])?;
        c.batch_execute(
            "CREATE TABLE IF NOT EXISTS checkflow_store_version (version integer NOT NULL)",
        )?;
        let row = c.query_opt("SELECT version FROM checkflow_store_version", &[])?;
        let found = match row {
            Some(r) => r.get::<_, i32>(0),
            None => {
                c.batch_execute(CREATE)?;
                c.execute(
                    "INSERT INTO checkflow_store_version (version) VALUES ($1)",
                    &[&VERSION],
                )?;
                VERSION
            }
        };
        c.commit()?;
        Ok(found)
    })?;
    if found > VERSION {
        return Err(StoreError::NewerSchema {
            url: store.shown.clone(),
            found,
            supported: VERSION,
        });
    }
    Ok(())
}
