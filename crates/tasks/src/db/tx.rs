//! A database connection as a share of a container's transaction
//! ([`DbTx`]), and the probes that tell, after a crash, whether a
//! transaction's commit marker made it ([`SqliteProbe`], [`PostgresProbe`]).
//!
//! The marker lives in `checkflow_tx_markers(marker TEXT PRIMARY KEY,
//! committed_at ...)`, created on first use, and is written in the same
//! database transaction as the work it vouches for.

use super::{Connection, Db, Kind, first_line, sqlite};
use checkflow_model::ConnectionDef;
use checkflow_plan::{TxError, TxProbe, TxResource};
use std::any::Any;
use std::path::Path;

/// The marker table's name.
pub(crate) const MARKERS: &str = "checkflow_tx_markers";

/// An open connection that has `BEGIN`ed, shared by the tasks of one
/// transaction scope.
pub(crate) struct DbTx {
    pub(crate) db: Db,
    conn: Connection,
    done: bool,
}

impl DbTx {
    pub(crate) fn new(db: Db, conn: Connection) -> DbTx {
        DbTx {
            db,
            conn,
            done: false,
        }
    }
}

fn marker_sql(kind: Kind) -> [&'static str; 2] {
    match kind {
        Kind::Sqlite => [
            "CREATE TABLE IF NOT EXISTS checkflow_tx_markers (marker TEXT PRIMARY KEY, committed_at TEXT NOT NULL)",
            "INSERT INTO checkflow_tx_markers (marker, committed_at) VALUES (?, strftime('%Y-%m-%d %H:%M:%f', 'now')) ON CONFLICT (marker) DO NOTHING",
        ],
        Kind::Postgres => [
            "CREATE TABLE IF NOT EXISTS checkflow_tx_markers (marker TEXT PRIMARY KEY, committed_at TIMESTAMPTZ NOT NULL DEFAULT now())",
            "INSERT INTO checkflow_tx_markers (marker) VALUES ($1) ON CONFLICT (marker) DO NOTHING",
        ],
    }
}

impl TxResource for DbTx {
    fn commit(&mut self, marker: &str) -> Result<(), TxError> {
        if self.done {
            return Err(TxError::Ended {
                conn: self.conn.describe(),
            });
        }
        let [create, insert] = marker_sql(self.db.kind());
        let write = self.db.batch(create).and_then(|()| {
            self.db
                .statement(
                    insert,
                    &[checkflow_expr::Value::WStr(marker.to_string())],
                    false,
                )
                .map(|_| ())
        });
        if let Err(e) = write {
            let _ = self.db.rollback();
            self.done = true;
            return Err(TxError::Marker {
                conn: self.conn.describe(),
                statement: first_line(insert).to_string(),
                cause: e.into(),
            });
        }
        self.done = true;
        self.db.commit().map_err(|e| TxError::Commit {
            conn: self.conn.describe(),
            cause: e.into(),
        })
    }

    fn rollback(&mut self) -> Result<(), TxError> {
        if self.done {
            return Ok(());
        }
        self.done = true;
        self.db.rollback().map_err(|e| TxError::Rollback {
            conn: self.conn.describe(),
            cause: e.into(),
        })
    }

    fn as_any(&mut self) -> &mut dyn Any {
        self
    }
}

impl Drop for DbTx {
    fn drop(&mut self) {
        // Closing the connection rolls back too; saying it keeps intent plain.
        let _ = self.rollback();
    }
}

/// Looks for a marker in an SQLite database (never creates the file).
pub(crate) struct SqliteProbe;

impl TxProbe for SqliteProbe {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    fn committed(&self, def: &ConnectionDef, dir: &Path, marker: &str) -> Result<bool, TxError> {
        sqlite_marker(def, dir, marker).map_err(|e| TxError::Probe { cause: e.into() })
    }
}

/// Whether `marker` is in the SQLite database's marker table (false when
/// the file or the table does not exist).
fn sqlite_marker(def: &ConnectionDef, dir: &Path, marker: &str) -> Result<bool, String> {
    let conn = Connection::from_def("probe", def, dir)?;
    let Some(path) = conn.sqlite_path() else {
        return Err("not a sqlite connection".into());
    };
    if !path.exists() {
        return Ok(false);
    }
    let c =
        sqlite::open(path, false).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let has_table: bool = c
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
            [MARKERS],
            |r| r.get(0),
        )
        .map_err(|e| e.to_string())?;
    if !has_table {
        return Ok(false);
    }
    c.query_row(
        "SELECT EXISTS (SELECT 1 FROM checkflow_tx_markers WHERE marker = ?1)",
        [marker],
        |r| r.get(0),
    )
    .map_err(|e| e.to_string())
}

/// Looks for a marker in a PostgreSQL database.
pub(crate) struct PostgresProbe;

impl TxProbe for PostgresProbe {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    fn committed(&self, def: &ConnectionDef, dir: &Path, marker: &str) -> Result<bool, TxError> {
        pg_marker(def, dir, marker).map_err(|e| TxError::Probe { cause: e.into() })
    }
}

/// Whether `marker` is in the PostgreSQL database's marker table (false when
/// the table does not exist).
fn pg_marker(def: &ConnectionDef, dir: &Path, marker: &str) -> Result<bool, String> {
    let conn = Connection::from_def("probe", def, dir)?;
    let mut db = conn.open().map_err(|e| e.message)?;
    let Db::Pg(c, scrub) = &mut db else {
        return Err("not a postgres connection".into());
    };
    let row = c
        .query_one(
            "SELECT to_regclass('checkflow_tx_markers') IS NOT NULL",
            &[],
        )
        .map_err(|e| scrub.clean(&super::pg::message(&e)))?;
    if !row.get::<_, bool>(0) {
        return Ok(false);
    }
    let row = c
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM checkflow_tx_markers WHERE marker = $1)",
            &[&marker],
        )
        .map_err(|e| scrub.clean(&super::pg::message(&e)))?;
    Ok(row.get::<_, bool>(0))
}
