//! The database layer and the `sql` and `bulk_insert` tasks, on SQLite and, when
//! the test cluster is configured (`CHECKFLOW_TEST_PG_URL`), on PostgreSQL.

use super::testkit::Pkg;
use super::*;
use checkflow_expr::DataType;
use checkflow_plan::{TxError, TxProbe, TxScope, VarValue};
use checkflow_testkit::pg::fresh_db;
use std::sync::Arc;
use std::time::Instant;

/// A backend under test: its `connections:` entry and its placeholder style.
struct Backend {
    kind: Kind,
    conn: String,
}

impl Backend {
    /// `$i` or `?i`.
    fn p(&self, i: usize) -> String {
        match self.kind {
            Kind::Sqlite => format!("?{i}"),
            Kind::Postgres => format!("${i}"),
        }
    }

    /// The `connections:` block naming this backend `db`.
    fn connections(&self) -> String {
        format!("connections:\n  db: {}\n", self.conn)
    }
}

/// SQLite always; PostgreSQL when the test cluster is there.
fn backends(test: &str) -> Vec<Backend> {
    let mut v = vec![Backend {
        kind: Kind::Sqlite,
        conn: "{ kind: sqlite, path: data/t.db }".into(),
    }];
    if let Some(url) = fresh_db(test) {
        v.push(Backend {
            kind: Kind::Postgres,
            conn: format!("{{ kind: postgres, url: \"{url}\" }}"),
        });
    }
    v
}

/// A package with the given variables and tasks on backend `b`.
fn pkg(b: &Backend, vars: &str, tasks: &str, files: &[(&str, &str)]) -> Pkg {
    let mut all: Vec<(&str, &str)> = vec![("data/.keep", "")];
    all.extend_from_slice(files);
    Pkg::new(
        &format!("{}variables:\n{vars}\ntasks:\n{tasks}", b.connections()),
        &all,
    )
}

/// Runs one ad-hoc query on the package's `db` connection.
fn query(p: &Pkg, sql: &str) -> Rows {
    let c = Connection::from_def("db", &p.plan.connections["db"], &p.plan.package.dir).unwrap();
    let mut db = c.open().unwrap();
    db.statement(sql, &[], true)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn count(p: &Pkg, table: &str) -> i64 {
    match &query(p, &format!("SELECT COUNT(*) FROM {table}")).rows[0][0] {
        Cell::Int(n) => *n,
        other => panic!("count is {other:?}"),
    }
}

fn int_column(p: &Pkg, sql: &str) -> Vec<i64> {
    query(p, sql)
        .rows
        .iter()
        .map(|r| match &r[0] {
            Cell::Int(n) => *n,
            other => panic!("not an int: {other:?}"),
        })
        .collect()
}

const NO_VARS: &str = "  Dummy: { type: int32, value: 0 }\n";

// ----- connections, secrets, identifiers -----

#[test]
fn urls_and_key_value_strings_hide_their_passwords() {
    let s = Scrub::of("postgres://etl:p%40ss@h/dw");
    assert_eq!(
        s.clean("bad password p@ss and p%40ss"),
        "bad password *** and ***"
    );
}

#[test]
fn identifiers_stay_plain_or_get_quoted() {
    assert_eq!(ident("dim_customer"), "dim_customer");
    assert_eq!(ident("staging.orders"), "staging.orders");
    assert_eq!(ident("Order Lines"), "\"Order Lines\"");
    assert_eq!(ident("a\"b"), "\"a\"\"b\"");
}

/// A package that only declares connections (`name: { ... }` lines).
fn conns(lines: &str) -> Pkg {
    Pkg::new(&format!("connections:\n{lines}tasks: []\n"), &[])
}

fn conn_of(p: &Pkg, name: &str) -> Connection {
    Connection::from_def(name, &p.plan.connections[name], &p.plan.package.dir).unwrap()
}

#[test]
fn a_missing_url_variable_is_named_and_no_secret_leaks() {
    let p = conns(
        "  env: { kind: postgres, url_env: CHECKFLOW_TEST_SURELY_UNSET_URL }\n  \
         pg: { kind: postgres, url: \"postgres://etl:hunter22@127.0.0.1:1/dw\" }\n",
    );
    let e = conn_of(&p, "env").open().err().expect("fails");
    assert!(
        e.message
            .contains("CHECKFLOW_TEST_SURELY_UNSET_URL is not set"),
        "{}",
        e.message
    );

    // Nothing listens on port 1: the error names the connection, never the password.
    let c = conn_of(&p, "pg");
    assert!(c.describe().contains("etl:***@"), "{}", c.describe());
    let e = c.open().err().expect("fails");
    assert!(e.message.contains("connection \"pg\""), "{}", e.message);
    assert!(!e.message.contains("hunter22"), "{}", e.message);
}

// ----- cells into variables -----

#[test]
fn cells_convert_to_variable_types_or_say_why_not() {
    assert_eq!(Cell::Int(5).to_value(&DataType::I4).unwrap(), Value::I4(5));
    assert_eq!(
        Cell::Real(2.0).to_value(&DataType::I8).unwrap(),
        Value::I8(2)
    );
    assert_eq!(
        Cell::Int(1).to_value(&DataType::Bool).unwrap(),
        Value::Bool(true)
    );
    assert_eq!(
        Cell::Int(7)
            .to_value(&DataType::WStr { len: None })
            .unwrap(),
        Value::WStr("7".into())
    );
    assert!(matches!(
        Cell::Text("2026-11-21 04:30:00".into()).to_value(&DataType::DbTimestamp),
        Ok(Value::DbTimestamp(_))
    ));
    assert_eq!(
        Cell::Null.to_value(&DataType::I4).unwrap(),
        Value::Null(DataType::I4)
    );
    let e = Cell::Text("abc".into())
        .to_value(&DataType::I4)
        .unwrap_err();
    assert!(
        e.contains("'abc'") && e.contains("DT_WSTR") && e.contains("DT_I4"),
        "{e}"
    );
    let e = Cell::Int(1 << 40).to_value(&DataType::I4).unwrap_err();
    assert!(e.contains("DT_I4"), "{e}");
    assert!(Cell::Real(2.5).to_value(&DataType::I4).is_err());
}

// ----- the sql task -----

#[test]
fn sql_runs_statements_with_parameters_and_fills_a_single_row() {
    for b in backends("sql_single_row") {
        let p = pkg(
            &b,
            "  Id: { type: int32, value: 7 }\n  Name: { type: string, value: Ada }\n  \
             N: { type: int64, value: 0 }\n  Label: { type: string, value: \"\" }\n  \
             Total: { type: double, value: 0 }\n",
            &format!(
                "  - {{ name: Setup, type: sql, connection: db, sql: \"CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT, score DOUBLE PRECISION); INSERT INTO people VALUES (1, 'Bob', 1.5)\" }}\n\
                 \x20 - {{ name: Add, type: sql, connection: db, params: [User::Id, User::Name], sql: \"INSERT INTO people (id, name, score) VALUES ({}, {}, 2.25)\" }}\n\
                 \x20 - {{ name: Read, type: sql, connection: db, result: single_row, result_vars: [User::N, User::Label, User::Total], sql: \"SELECT COUNT(*), MAX(name), SUM(score) FROM people\" }}\n",
                b.p(1),
                b.p(2)
            ),
            &[],
        );
        let mut cx = p.cx();
        for t in ["Setup", "Add", "Read"] {
            p.run(t, &mut cx)
                .unwrap_or_else(|e| panic!("{t} on {:?}: {e}", b.kind));
        }
        assert_eq!(cx.scalar("N"), Value::I8(2));
        assert_eq!(cx.scalar("Label"), Value::WStr("Bob".into()));
        assert_eq!(cx.scalar("Total"), Value::R8(3.75));
    }
}

#[test]
fn single_row_errors_say_what_is_wrong() {
    for b in backends("sql_single_row_errors") {
        let p = pkg(
            &b,
            "  N: { type: int32, value: 0 }\n  M: { type: int32, value: 0 }\n",
            "  - { name: Setup, type: sql, connection: db, sql: \"CREATE TABLE t (a TEXT)\" }\n\
             \x20 - { name: NoRow, type: sql, connection: db, result: single_row, result_vars: [User::N], sql: \"SELECT 1 FROM t\" }\n\
             \x20 - { name: Few, type: sql, connection: db, result: single_row, result_vars: [User::N, User::M], sql: \"SELECT 1\" }\n\
             \x20 - { name: Mismatch, type: sql, connection: db, result: single_row, result_vars: [User::N], sql: \"SELECT 'abc'\" }\n\
             \x20 - { name: Broken, type: sql, connection: db, sql: \"SELECT 1;\\nSELEC oops FROM nowhere\\n  WHERE 1\" }\n",
            &[],
        );
        let mut cx = p.cx();
        p.run("Setup", &mut cx).unwrap();
        let e = p.run("NoRow", &mut cx).unwrap_err().message;
        assert!(e.contains("no row"), "{e}");
        let e = p.run("Few", &mut cx).unwrap_err().message;
        assert!(
            e.contains("1 column(s)") && e.contains("2 variable(s)"),
            "{e}"
        );
        let e = p.run("Mismatch", &mut cx).unwrap_err().message;
        assert!(
            e.contains("User::N") && e.contains("DT_I4") && e.contains("DT_WSTR"),
            "{e}"
        );
        let e = p.run("Broken", &mut cx).unwrap_err().message;
        assert!(e.contains("statement 2 of 2"), "{e}");
        assert!(e.contains("`SELEC oops FROM nowhere ...`"), "{e}");
        assert!(e.contains("syntax error"), "the database's message: {e}");
    }
}

#[test]
fn full_result_is_a_recordset_that_foreach_can_iterate() {
    for b in backends("sql_full") {
        let p = pkg(
            &b,
            "  Rows: { type: object }\n",
            "  - { name: Setup, type: sql, connection: db, sql: \"CREATE TABLE t (id INTEGER, name TEXT, amount NUMERIC(10,2)); INSERT INTO t VALUES (1, 'a', 1.50), (2, NULL, 2.25)\" }\n\
             \x20 - { name: All, type: sql, connection: db, result: full, result_var: User::Rows, sql: \"SELECT id, name, amount FROM t ORDER BY id\" }\n",
            &[],
        );
        let mut cx = p.cx();
        p.run("Setup", &mut cx).unwrap();
        p.run("All", &mut cx).unwrap();
        let VarValue::Object(j) = cx.var("Rows") else {
            panic!("not an object")
        };
        assert_eq!(j["columns"], serde_json::json!(["id", "name", "amount"]));
        let rows = j["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0][0], 1);
        assert_eq!(rows[1][1], serde_json::Value::Null);
        // SQLite keeps 1.50 as a real, PostgreSQL as an exact decimal (a string).
        let amount = &rows[0][2];
        assert!(
            amount == &serde_json::json!(1.5) || amount == "1.50",
            "{amount}"
        );
    }
}

#[test]
fn several_statements_are_all_or_nothing() {
    for b in backends("sql_atomic") {
        let p = pkg(
            &b,
            NO_VARS,
            "  - { name: Setup, type: sql, connection: db, sql: \"CREATE TABLE t (id INTEGER PRIMARY KEY)\" }\n\
             \x20 - { name: Two, type: sql, connection: db, sql: \"INSERT INTO t VALUES (1); INSERT INTO t VALUES (1)\" }\n",
            &[],
        );
        let mut cx = p.cx();
        p.run("Setup", &mut cx).unwrap();
        let e = p.run("Two", &mut cx).unwrap_err().message;
        assert!(e.contains("statement 2 of 2"), "{e}");
        assert_eq!(count(&p, "t"), 0, "the first insert is rolled back");
    }
}

#[test]
fn bad_definitions_are_validation_errors() {
    let conn = "connections:\n  db: { kind: sqlite, path: t.db }\n  web: { kind: http }\n";
    let cases = [
        ("  - { name: T, type: sql, connection: db }", "needs `sql`"),
        (
            "  - { name: T, type: sql, sql: 'select 1' }",
            "needs `connection`",
        ),
        (
            "  - { name: T, type: sql, connection: web, sql: 'select 1' }",
            "expected sqlite or postgres",
        ),
        (
            "  - { name: T, type: sql, connection: db, sql: 'select 1', result: many }",
            "unknown `result: many`",
        ),
        (
            "  - { name: T, type: sql, connection: db, sql: 'select 1', result: full, result_var: User::N }",
            "needs an object variable",
        ),
        (
            "  - { name: T, type: sql, connection: db, sql: 'select 1', result: single_row, result_vars: [User::O] }",
            "is an object",
        ),
        (
            "  - { name: T, type: sql, connection: db, sql: 'select 1', result: single_row }",
            "needs `result_vars",
        ),
        (
            "  - { name: T, type: sql, connection: db, sql: 'select 1', params: [User::Nope] }",
            "unknown variable",
        ),
        (
            "  - { name: T, type: bulk_insert, connection: db, file: a.csv }",
            "needs `table`",
        ),
        (
            "  - { name: T, type: bulk_insert, connection: db, table: t, file: a.csv, delimiter: ';;' }",
            "one ASCII character",
        ),
        (
            "  - { name: T, type: bulk_insert, connection: db, table: t, file: a.csv, batch_size: 0 }",
            "at least 1",
        ),
    ];
    for (task, want) in cases {
        let yaml = format!(
            "{conn}variables:\n  N: {{ type: int32, value: 0 }}\n  O: {{ type: object }}\ntasks:\n{task}\n"
        );
        let e = Pkg::try_new(&yaml, &[])
            .err()
            .unwrap_or_else(|| panic!("{task} validated"));
        assert!(e.contains(want), "{task}: {e}");
    }
}

#[test]
fn a_cancelled_query_stops_promptly() {
    for b in backends("sql_cancel") {
        let slow = match b.kind {
            Kind::Sqlite => {
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) FROM c"
            }
            Kind::Postgres => "SELECT pg_sleep(30)",
        };
        let p = pkg(
            &b,
            NO_VARS,
            &format!("  - {{ name: Slow, type: sql, connection: db, sql: \"{slow}\" }}\n"),
            &[],
        );
        let mut cx = p.cx();
        let token = cx.token.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            token.cancel();
        });
        let started = Instant::now();
        let e = p.run("Slow", &mut cx).unwrap_err().message;
        t.join().unwrap();
        assert!(e.contains("cancelled"), "{e}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "took {:?}",
            started.elapsed()
        );
    }
}

// ----- transactions -----

#[test]
fn tasks_in_a_transaction_commit_with_a_marker_or_roll_back_together() {
    for b in backends("sql_tx") {
        let p = pkg(
            &b,
            NO_VARS,
            "  - { name: Setup, type: sql, connection: db, sql: \"CREATE TABLE t (id INTEGER PRIMARY KEY)\" }\n\
             \x20 - { name: A, type: sql, connection: db, sql: \"INSERT INTO t VALUES (1)\" }\n\
             \x20 - { name: B, type: sql, connection: db, sql: \"INSERT INTO t VALUES (2); INSERT INTO t VALUES (3)\" }\n",
            &[],
        );
        let probe: Box<dyn TxProbe> = match b.kind {
            Kind::Sqlite => Box::new(SqliteProbe),
            Kind::Postgres => Box::new(PostgresProbe),
        };
        let def = p.plan.connections["db"].clone();
        let dir = p.plan.package.dir.clone();
        let mut cx = p.cx();
        p.run("Setup", &mut cx).unwrap();
        assert!(
            !probe.committed(&def, &dir, "m-1").unwrap(),
            "no marker table yet"
        );

        // Rolled back: nothing stays.
        let scope = Arc::new(TxScope::new("C", "m-1"));
        cx.tx = Some(scope.clone());
        p.run("A", &mut cx).unwrap();
        p.run("B", &mut cx).unwrap();
        assert_eq!(scope.keys(), ["db"], "one connection, shared");
        assert!(scope.rollback().is_empty());
        assert_eq!(count(&p, "t"), 0);
        assert!(!probe.committed(&def, &dir, "m-1").unwrap());

        // Committed: the rows and the marker.
        let scope = Arc::new(TxScope::new("C", "m-2"));
        cx.tx = Some(scope.clone());
        p.run("A", &mut cx).unwrap();
        p.run("B", &mut cx).unwrap();
        scope.commit().unwrap();
        assert_eq!(count(&p, "t"), 3);
        assert!(probe.committed(&def, &dir, "m-2").unwrap());
        assert!(!probe.committed(&def, &dir, "m-1").unwrap());
    }
}

#[test]
fn the_sqlite_probe_never_creates_a_database() {
    let p = conns("  db: { kind: sqlite, path: none.db }\n");
    let def = &p.plan.connections["db"];
    assert!(
        !SqliteProbe
            .committed(def, &p.plan.package.dir, "m")
            .unwrap()
    );
    assert!(!p.path("none.db").exists());
}

#[test]
fn a_probe_that_cannot_read_the_markers_says_so_and_never_guesses() {
    let p = conns(
        "  db: { kind: sqlite, path: garbage.db }\n  pg: { kind: postgres, url: \"postgresql://nobody:secret@127.0.0.1:1/none\" }\n",
    );
    std::fs::write(p.path("garbage.db"), [0x5a_u8; 4096]).unwrap();
    let e = SqliteProbe
        .committed(&p.plan.connections["db"], &p.plan.package.dir, "m")
        .expect_err("not a database");
    assert!(matches!(e, TxError::Probe { .. }), "{e:?}");
    assert!(
        e.to_string()
            .starts_with("cannot read its commit markers: "),
        "{e}"
    );
    let e = PostgresProbe
        .committed(&p.plan.connections["pg"], &p.plan.package.dir, "m")
        .expect_err("nothing listens on port 1");
    assert!(matches!(e, TxError::Probe { .. }), "{e:?}");
    assert!(
        !e.to_string().contains("secret"),
        "the password is redacted: {e}"
    );
}

// ----- bulk_insert -----

const DIM: &str = "CREATE TABLE dim (id INTEGER PRIMARY KEY, name TEXT, city TEXT)";

fn bulk_pkg(b: &Backend, task_fields: &str, csv: &str) -> Pkg {
    pkg(
        b,
        NO_VARS,
        &format!(
            "  - {{ name: Setup, type: sql, connection: db, sql: \"{DIM}\" }}\n\
             \x20 - {{ name: Load, type: bulk_insert, connection: db, table: dim, file: in/dim.csv{task_fields} }}\n"
        ),
        &[("in/dim.csv", csv)],
    )
}

#[test]
fn bulk_insert_loads_a_file_with_header_quotes_and_nulls() {
    for b in backends("bulk_basic") {
        let p = bulk_pkg(
            &b,
            ", \"null\": \"NULL\"",
            "id,name,city\n1,\"Smith, Ann\",Oslo\n2,\"Say \"\"hi\"\"\",NULL\n3,,Rome\n",
        );
        let mut cx = p.cx();
        p.run("Setup", &mut cx).unwrap();
        p.run("Load", &mut cx).unwrap();
        let r = query(&p, "SELECT id, name, city FROM dim ORDER BY id");
        assert_eq!(r.rows.len(), 3);
        assert_eq!(r.rows[0][1], Cell::Text("Smith, Ann".into()));
        assert_eq!(r.rows[1][1], Cell::Text("Say \"hi\"".into()));
        assert_eq!(r.rows[1][2], Cell::Null);
        assert_eq!(r.rows[2][1], Cell::Text(String::new()), "empty is not NULL");
        assert_eq!(cx.done().last(), Some(&3));
    }
}

#[test]
fn bulk_insert_takes_columns_without_a_header_and_other_delimiters() {
    for b in backends("bulk_columns") {
        let p = bulk_pkg(
            &b,
            ", header: false, delimiter: tab, columns: [name, id]",
            "Ann\t1\nBob\t2\n",
        );
        let mut cx = p.cx();
        p.run("Setup", &mut cx).unwrap();
        p.run("Load", &mut cx).unwrap();
        assert_eq!(int_column(&p, "SELECT id FROM dim WHERE name = 'Bob'"), [2]);
    }
}

#[test]
fn a_failed_load_leaves_no_row_and_names_the_line() {
    for b in backends("bulk_atomic") {
        let p = bulk_pkg(
            &b,
            ", truncate: true",
            "id,name,city\n1,a,x\n2,b,y\n2,dup,z\n",
        );
        let mut cx = p.cx();
        p.run("Setup", &mut cx).unwrap();
        query(&p, "INSERT INTO dim VALUES (99, 'old', 'o')");
        let e = p.run("Load", &mut cx).unwrap_err().message;
        assert!(e.contains("line 4 of"), "{e}");
        assert!(
            e.to_lowercase().contains("unique") || e.contains("duplicate key"),
            "{e}"
        );
        assert_eq!(
            int_column(&p, "SELECT id FROM dim"),
            [99],
            "truncate rolled back too"
        );

        // A ragged line is named too.
        std::fs::write(p.path("in/dim.csv"), "id,name,city\n1,a,x\n2,b\n").unwrap();
        let e = p.run("Load", &mut cx).unwrap_err().message;
        assert!(
            e.contains("line 3") && e.contains("2 field(s), expected 3"),
            "{e}"
        );

        std::fs::write(p.path("in/dim.csv"), "id,name,city\n1,a,x\n2,b,y\n").unwrap();
        p.run("Load", &mut cx).unwrap();
        assert_eq!(
            int_column(&p, "SELECT id FROM dim ORDER BY id"),
            [1, 2],
            "truncated, then loaded"
        );
    }
}

#[test]
fn a_rejected_row_after_a_field_spanning_lines_is_named_by_its_own_line() {
    for b in backends("bulk_multiline") {
        let p = bulk_pkg(
            &b,
            "",
            "id,name,city\n1,\"two\nlines\",x\n2,b,y\n2,dup,z\n3,c,w\n",
        );
        let mut cx = p.cx();
        p.run("Setup", &mut cx).unwrap();
        let e = p.run("Load", &mut cx).unwrap_err().message;
        assert!(e.contains("line 5 of"), "{:?}: {e}", b.kind);
        assert_eq!(count(&p, "dim"), 0);
    }
}

fn rows_csv(n: usize, bad_at: Option<usize>) -> String {
    let mut s = String::from("id,name,city\n");
    for i in 1..=n {
        let id = if Some(i) == bad_at { 1 } else { i };
        s.push_str(&format!("{id},n{i},c{i}\n"));
    }
    s
}

#[test]
fn a_resumable_load_continues_after_the_last_committed_batch() {
    for b in backends("bulk_resume") {
        // Row 8 repeats id 1: batches 1-3 and 4-6 commit, 7-9 fails.
        let p = bulk_pkg(&b, ", batch_size: 3, resume: true", &rows_csv(10, Some(8)));
        let mut cx = p.cx();
        p.run("Setup", &mut cx).unwrap();
        let e = p.run("Load", &mut cx).unwrap_err().message;
        assert!(e.contains("line 9 of"), "{e}");
        assert!(
            e.contains("6 row(s) committed by earlier batches stay"),
            "{e}"
        );
        assert_eq!(count(&p, "dim"), 6);
        assert_eq!(
            int_column(&p, "SELECT rows_done FROM checkflow_load_progress"),
            [6]
        );

        // The bad row is fixed (after the committed rows): the rerun goes on at row 7.
        std::fs::write(p.path("in/dim.csv"), rows_csv(10, None)).unwrap();
        let mut cx = p.cx();
        p.run("Load", &mut cx).unwrap();
        assert!(cx.lines().iter().any(|l| l.contains("resuming: 6 row(s)")));
        assert_eq!(
            int_column(&p, "SELECT id FROM dim ORDER BY id"),
            (1..=10).collect::<Vec<i64>>(),
            "every row once"
        );
        assert_eq!(
            int_column(
                &p,
                "SELECT rows_done FROM checkflow_load_progress WHERE done_by IS NOT NULL"
            ),
            [10],
            "done: the row is kept, marked done by that execution"
        );

        // A later execution loads the file again from the beginning (and
        // here fails on the first row).
        let e = p.run("Load", &mut p.cx()).unwrap_err().message;
        assert!(e.contains("line 2 of"), "{e}");
    }
}

#[test]
fn a_load_of_many_rows_in_batches_inserts_each_row_once() {
    // More rows than one progress stride (256) and batches that do not divide
    // it: the insert prepared at a batch's first row serves the whole batch,
    // and the next batch starts where the last one stopped.
    for b in backends("bulk_many") {
        let p = bulk_pkg(&b, ", batch_size: 300", &rows_csv(1000, None));
        let mut cx = p.cx();
        p.run("Setup", &mut cx).unwrap();
        p.run("Load", &mut cx).unwrap();
        assert_eq!(
            int_column(&p, "SELECT id FROM dim ORDER BY id"),
            (1..=1000).collect::<Vec<i64>>()
        );
        assert_eq!(
            int_column(
                &p,
                "SELECT COUNT(*) FROM dim WHERE name = 'n' || id AND city = 'c' || id"
            ),
            [1000],
            "every field in its column"
        );
        let progress = cx.done();
        assert!(progress.is_sorted(), "{progress:?}");
        assert_eq!(progress.last(), Some(&1000));
    }
}

#[test]
fn a_resumable_load_refuses_a_file_changed_before_the_committed_rows() {
    for b in backends("bulk_resume_changed") {
        let p = bulk_pkg(&b, ", batch_size: 2, resume: true", &rows_csv(5, Some(4)));
        let mut cx = p.cx();
        p.run("Setup", &mut cx).unwrap();
        p.run("Load", &mut cx).unwrap_err();
        assert_eq!(count(&p, "dim"), 2);
        let mut changed = rows_csv(5, None);
        changed = changed.replace("n1,", "CHANGED,");
        std::fs::write(p.path("in/dim.csv"), &changed).unwrap();
        let e = p.run("Load", &mut p.cx()).unwrap_err().message;
        assert!(
            e.contains("the first 2 row(s)") && e.contains("changed"),
            "{e}"
        );
        assert_eq!(count(&p, "dim"), 2);
    }
}

#[test]
fn bulk_insert_joins_a_transaction() {
    for b in backends("bulk_tx") {
        let p = bulk_pkg(&b, ", batch_size: 1, resume: true", &rows_csv(4, None));
        let mut cx = p.cx();
        p.run("Setup", &mut cx).unwrap();
        let scope = Arc::new(TxScope::new("C", "m-bulk"));
        cx.tx = Some(scope.clone());
        p.run("Load", &mut cx).unwrap();
        assert!(scope.rollback().is_empty());
        assert_eq!(count(&p, "dim"), 0, "rolled back with the container");
        let scope = Arc::new(TxScope::new("C", "m-bulk2"));
        cx.tx = Some(scope.clone());
        p.run("Load", &mut cx).unwrap();
        scope.commit().unwrap();
        assert_eq!(count(&p, "dim"), 4);
    }
}

#[test]
fn copy_context_gives_the_row() {
    assert_eq!(
        super::copy_row("ERROR: bad (CONTEXT: COPY t, line 17, column id: \"x\")"),
        Some(16),
        "line 17 is the 17th row sent, 0-based 16"
    );
    assert_eq!(
        super::copy_row("ERROR: bad (CONTEXT: COPY t, line 0)"),
        None
    );
    assert_eq!(super::copy_row("ERROR: other"), None);
}
