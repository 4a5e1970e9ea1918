//! PostgreSQL for end-to-end tests: a fresh database per test on the
//! throwaway cluster that `scripts/test.sh` starts and names in
//! `CHECKFLOW_TEST_PG_URL` (the same contract as the unit tests in
//! crates/tasks: set means required, unset means skip with a note).

pub use checkflow_testkit::pg::fresh_db;

/// A database under test: its `connections:` entry and the environment a run
/// needs (e.g. its `url_env`).
pub struct Db {
    pub kind: &'static str,
    pub conn: String,
    pub env: Vec<(String, String)>,
}

impl Db {
    /// `checkflow run PACKAGE` with this database's environment.
    pub fn run(&self, sb: &crate::support::Sandbox, package: &str) -> crate::support::Cmd {
        let mut c = sb.cmd(["run", package]);
        for (k, v) in &self.env {
            c = c.env(k, v);
        }
        c
    }

    /// The rows `sql` returns on this database.
    pub fn rows(&self, sb: &crate::support::Sandbox, sql: &str) -> Vec<Vec<serde_json::Value>> {
        crate::support::sql_rows(sb, &self.conn, &self.env, sql)
    }
}

/// SQLite always; PostgreSQL when the test cluster is there (its URL comes
/// from the environment, `url_env`, as a package would take a secret).
pub fn databases(test: &str) -> Vec<Db> {
    let mut v = vec![Db {
        kind: "sqlite",
        conn: "{ kind: sqlite, path: dw.db }".into(),
        env: Vec::new(),
    }];
    if let Some(url) = fresh_db(test) {
        v.push(Db {
            kind: "postgres",
            conn: "{ kind: postgres, url_env: CHECKFLOW_E2E_DW_URL }".into(),
            env: vec![("CHECKFLOW_E2E_DW_URL".into(), url)],
        });
    }
    v
}
