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
    /// The SQLite database `dw.db` in the sandbox ([`crate::support::DW`]).
    pub fn sqlite() -> Db {
        Db {
            kind: "sqlite",
            conn: crate::support::DW.into(),
            env: Vec::new(),
        }
    }

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

    /// (rows, distinct ids) of `table` (or of any `FROM` clause with an `id`).
    pub fn id_counts(&self, sb: &crate::support::Sandbox, table: &str) -> (i64, i64) {
        let r = self.rows(
            sb,
            &format!("SELECT COUNT(*), COUNT(DISTINCT id) FROM {table}"),
        );
        (
            r[0][0].as_i64().expect("a count"),
            r[0][1].as_i64().expect("a count"),
        )
    }

    /// (rows done, 1 if done) of each row of a progress table
    /// (`checkflow_load_progress`, `checkflow_flow_progress`).
    pub fn progress(
        &self,
        sb: &crate::support::Sandbox,
        table: &str,
    ) -> Vec<Vec<serde_json::Value>> {
        self.rows(
            sb,
            &format!("SELECT rows_done, CASE WHEN done_by IS NULL THEN 0 ELSE 1 END FROM {table}"),
        )
    }
}

impl Db {
    /// Runs `package.yaml`, which loads ids 1 to 100 into `table` (a `FROM`
    /// clause, as for [`Db::id_counts`]), stopped at the crash point `point`
    /// (it must end as [`crate::support::stopped_code`] says), then again to
    /// its end: every row is then in `table` once and, when `progress` names
    /// a progress table, its row says done. Returns both runs' output.
    #[track_caller]
    pub fn stop_then_finish(
        &self,
        sb: &crate::support::Sandbox,
        point: &str,
        table: &str,
        progress: Option<&str>,
    ) -> (crate::support::Output, crate::support::Output) {
        let kind = self.kind;
        let stopped = self.run(sb, "package.yaml").failpoint(point).output();
        assert_eq!(
            stopped.code,
            crate::support::stopped_code(point),
            "{kind}: {point}\n{stopped:?}"
        );
        let finished = self.run(sb, "package.yaml").output().exit(0);
        assert_eq!(
            self.id_counts(sb, table),
            (100, 100),
            "{kind}: stopped at {point}, every row once\n{stopped:?}\n{finished:?}"
        );
        if let Some(progress) = progress {
            assert_eq!(
                self.progress(sb, progress),
                vec![vec![
                    serde_json::Value::from(100),
                    serde_json::Value::from(1)
                ]],
                "{kind}: {point}: the progress row says done"
            );
        }
        (stopped, finished)
    }
}

/// SQLite always; PostgreSQL when the test cluster is there (its URL comes
/// from the environment, `url_env`, as a package would take a secret).
pub fn databases(test: &str) -> Vec<Db> {
    let mut v = vec![Db::sqlite()];
    if let Some(url) = fresh_db(test) {
        v.push(Db {
            kind: "postgres",
            conn: "{ kind: postgres, url_env: CHECKFLOW_E2E_DW_URL }".into(),
            env: vec![("CHECKFLOW_E2E_DW_URL".into(), url)],
        });
    }
    v
}
