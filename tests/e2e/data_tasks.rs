//! The database tasks through the binary, on SQLite and on PostgreSQL:
//! Scenario 6 of docs/semantics.md §8 (one bulk insert per dimension, one fails, the rerun
//! loads only that table, no row twice), scenario 10 (a transacted container
//! fails half-way: its work is rolled back and the rerun runs it whole), and
//! the resumable bulk insert (beyond SSIS).
//!
//! What a table holds is read back through checkflow itself
//! (`support::sql_rows`).

use serde_json::Value;

use crate::pg::{Db, databases};
use crate::support::*;

/// The rows `sql` returns on this database.
fn rows(sb: &Sandbox, db: &Db, sql: &str) -> Vec<Vec<Value>> {
    db.rows(sb, sql)
}

/// (rows, distinct ids) of a table.
fn count(sb: &Sandbox, db: &Db, table: &str) -> (i64, i64) {
    db.id_counts(sb, table)
}

/// `id,name` lines for ids `1..=n`; the row at `dup_at` repeats id 1.
fn csv(n: usize, dup_at: Option<usize>) -> String {
    let mut s = String::from("id,name\n");
    for i in 1..=n {
        let id = if Some(i) == dup_at { 1 } else { i };
        s.push_str(&format!("{id},name {i}\n"));
    }
    s
}

/// `CREATE TABLE` statements for `tables` (`id` a key, `name`).
fn create_tables(tables: &[&str]) -> Vec<String> {
    tables
        .iter()
        .map(|t| {
            format!("CREATE TABLE IF NOT EXISTS {t} (id INTEGER PRIMARY KEY, name TEXT NOT NULL);")
        })
        .collect()
}

/// A package on `db` keeping `run.ckpt`, whose first task, "Create tables",
/// runs the statements `create`; `tasks` (YAML list items) follow it.
fn creating(name: &str, db: &Db, create: &[String], tasks: &str) -> String {
    package_yaml(
        name,
        &(checkpoint_at("run.ckpt") + &dw_connection(&db.conn)),
        &format!(
            "  - name: Create tables\n    type: sql\n    connection: dw\n    sql: |\n      {}\n{tasks}",
            create.join("\n      ")
        ),
    )
}

/// A package on `db` with a checkpoint whose first task, "Create tables",
/// creates `tables` (`id`, `name`); `tasks` (YAML list items) follow it.
fn with_tables(name: &str, db: &Db, tables: &[&str], tasks: &str) -> String {
    creating(name, db, &create_tables(tables), tasks)
}

/// `run` of the package on `db` with a JSON log, which must succeed.
fn run_json(sb: &Sandbox, db: &Db) -> Output {
    db.run(sb, "package.yaml")
        .args(["--log", "json"])
        .output()
        .exit(0)
}

/// A run of the package on `db` killed at the crash point `point`: only
/// `Inside` of [`transacted_load`] ran.
fn killed_at(sb: &Sandbox, db: &Db, point: &str) {
    let out = db.run(sb, "package.yaml").failpoint(point).output();
    assert_eq!(out.code, None, "{}: killed by SIGKILL\n{out:?}", db.kind);
    assert_eq!(sb.take_ledger(), names(&["Inside"]), "{}", db.kind);
}

/// `table` holds one row; `what` says why it should.
#[track_caller]
fn one_row_in(sb: &Sandbox, db: &Db, table: &str, what: &str) {
    assert_eq!(
        rows(sb, db, &format!("SELECT COUNT(*) FROM {table}")),
        vec![vec![Value::from(1)]],
        "{}: {what}",
        db.kind
    );
}

#[test]
fn scenario_6_one_failed_dimension_load_is_the_only_one_rerun_and_no_row_is_loaded_twice() {
    for db in databases("scenario6") {
        let yaml = with_tables(
            "dimensions",
            &db,
            &["dim_customer", "dim_product", "dim_store"],
            r#"  - { name: Customers, type: bulk_insert, connection: dw, table: dim_customer, file: data/customers.csv, after: [Create tables], fail_package_on_failure: true }
  - { name: Products, type: bulk_insert, connection: dw, table: dim_product, file: data/products.csv, after: [Create tables], fail_package_on_failure: true }
  - { name: Stores, type: bulk_insert, connection: dw, table: dim_store, file: data/stores.csv, after: [Create tables], fail_package_on_failure: true }
"#,
        );
        let sb = Sandbox::with_package(&yaml);
        sb.write("data/customers.csv", &csv(50, None));
        sb.write("data/products.csv", &csv(40, Some(30)));
        sb.write("data/stores.csv", &csv(10, None));

        db.run(&sb, "package.yaml")
            .output()
            .exit(1)
            .says("line 31 of");
        let done = completed_paths(&sb.show("run.ckpt"));
        for t in ["Create tables", "Customers", "Stores"] {
            assert!(done.contains(t), "{}: {t} recorded: {done:?}", db.kind);
        }
        assert!(!done.contains("Products"), "{}: {done:?}", db.kind);
        assert_eq!(
            count(&sb, &db, "dim_product"),
            (0, 0),
            "{}: all or nothing",
            db.kind
        );

        sb.write("data/products.csv", &csv(40, None));
        let summary = run_json(&sb, &db).summary();
        assert_eq!(status_of(&summary, "Products"), "succeeded", "{}", db.kind);
        for t in ["Create tables", "Customers", "Stores"] {
            assert_eq!(status_of(&summary, t), "restored", "{}: {t}", db.kind);
        }
        assert_eq!(count(&sb, &db, "dim_customer"), (50, 50), "{}", db.kind);
        assert_eq!(count(&sb, &db, "dim_product"), (40, 40), "{}", db.kind);
        assert_eq!(count(&sb, &db, "dim_store"), (10, 10), "{}", db.kind);
    }
}

#[test]
fn resumable_bulk_insert_continues_after_the_last_committed_batch_without_duplicates() {
    for db in databases("resumable_bulk") {
        let yaml = with_tables(
            "facts",
            &db,
            &["fact_sales"],
            r#"  - { name: Sales, type: bulk_insert, connection: dw, table: fact_sales, file: data/sales.csv, batch_size: 25, resume: true, after: [Create tables], fail_package_on_failure: true }
"#,
        );
        let sb = Sandbox::with_package(&yaml);
        // Row 60 repeats id 1: batches 1-25 and 26-50 commit, 51-75 fails.
        sb.write("data/sales.csv", &csv(100, Some(60)));
        db.run(&sb, "package.yaml")
            .output()
            .exit(1)
            .says("line 61 of")
            .says("50 row(s) committed by earlier batches stay");
        assert_eq!(count(&sb, &db, "fact_sales"), (50, 50), "{}", db.kind);
        assert_eq!(
            rows(&sb, &db, "SELECT rows_done FROM checkflow_load_progress"),
            vec![vec![Value::from(50)]],
            "{}",
            db.kind
        );

        // The bad row is repaired; the rerun goes on at row 51.
        sb.write("data/sales.csv", &csv(100, None));
        db.run(&sb, "package.yaml")
            .output()
            .exit(0)
            .says("resuming: 50 row(s)");
        assert_eq!(count(&sb, &db, "fact_sales"), (100, 100), "{}", db.kind);
        // The row stays, marked done by this run of the task (a restart
        // before the completion was recorded must find it).
        assert_eq!(
            db.progress(&sb, "checkflow_load_progress"),
            vec![vec![Value::from(100), Value::from(1)]],
            "{}: the progress row is marked done",
            db.kind
        );
    }
}

#[test]
fn scenario_10_a_transacted_container_that_fails_half_way_is_rolled_back_and_rerun_whole() {
    for db in databases("scenario10") {
        let yaml = with_tables(
            "transacted",
            &db,
            &["dim_customer", "audit"],
            r#"  - name: Load
    type: sequence
    transaction: required
    fail_package_on_failure: true
    after: [Create tables]
    tasks:
      - { name: Customers, type: bulk_insert, connection: dw, table: dim_customer, file: data/customers.csv }
      - { name: Audit, type: sql, connection: dw, sql: "INSERT INTO audit (id, name) VALUES (1, 'customers loaded')" }
      - { name: Check, type: process, command: "echo Check >> ledger.txt; test -f fixed" }
"#,
        );
        let sb = Sandbox::with_package(&yaml);
        sb.write("data/customers.csv", &csv(50, None));

        db.run(&sb, "package.yaml").output().exit(1);
        assert_eq!(sb.take_ledger(), names(&["Check"]));
        assert_eq!(
            count(&sb, &db, "dim_customer"),
            (0, 0),
            "{}: rolled back",
            db.kind
        );
        assert_eq!(count(&sb, &db, "audit"), (0, 0), "{}: rolled back", db.kind);

        sb.touch("fixed");
        let summary = run_json(&sb, &db).summary();
        assert_eq!(status_of(&summary, "Create tables"), "restored");
        for t in ["Load/Customers", "Load/Audit", "Load/Check"] {
            assert_eq!(
                status_of(&summary, t),
                "succeeded",
                "{}: {t} ran again",
                db.kind
            );
        }
        assert_eq!(count(&sb, &db, "dim_customer"), (50, 50), "{}", db.kind);
        assert_eq!(count(&sb, &db, "audit"), (1, 1), "{}", db.kind);
        one_row_in(
            &sb,
            &db,
            "checkflow_tx_markers",
            "the commit wrote its marker",
        );
    }
}

/// Scenario 7 (docs/semantics.md §8): aggregations, one task each; one fails; the rerun
/// recomputes only it (the others' results are not appended twice).
#[test]
fn scenario_7_one_failed_aggregation_is_the_only_one_recomputed() {
    for db in databases("scenario7") {
        let yaml = creating(
            "aggregates",
            &db,
            &[
                "CREATE TABLE IF NOT EXISTS sales (id INTEGER PRIMARY KEY, region TEXT NOT NULL, amount INTEGER NOT NULL);",
                "CREATE TABLE IF NOT EXISTS agg_region (region TEXT NOT NULL, total INTEGER NOT NULL);",
                "CREATE TABLE IF NOT EXISTS agg_total (total INTEGER NOT NULL);",
                "CREATE TABLE IF NOT EXISTS agg_fx (total INTEGER NOT NULL);",
                "CREATE TABLE IF NOT EXISTS agg_log (name TEXT NOT NULL)",
            ]
            .map(String::from),
            r#"  - { name: Load, type: bulk_insert, connection: dw, table: sales, file: data/sales.csv, truncate: true, after: [Create tables] }
  - name: By region
    type: sql
    connection: dw
    after: [Load]
    fail_package_on_failure: true
    sql: |
      INSERT INTO agg_region SELECT region, SUM(amount) FROM sales GROUP BY region;
      INSERT INTO agg_log VALUES ('By region')
  - name: Total
    type: sql
    connection: dw
    after: [Load]
    fail_package_on_failure: true
    sql: |
      INSERT INTO agg_total SELECT SUM(amount) FROM sales;
      INSERT INTO agg_log VALUES ('Total')
  - name: In euro
    type: sql
    connection: dw
    after: [Load]
    fail_package_on_failure: true
    sql: |
      INSERT INTO agg_fx SELECT SUM(s.amount * r.rate) FROM sales s, rates r;
      INSERT INTO agg_log VALUES ('In euro')
"#,
        );
        let sb = Sandbox::with_package(&yaml);
        sb.write(
            "data/sales.csv",
            "id,region,amount\n1,north,10\n2,north,20\n3,south,5\n",
        );

        // First run: the rates table is missing, so "In euro" fails.
        db.run(&sb, "package.yaml").output().exit(1);
        let done = completed_paths(&sb.show("run.ckpt"));
        for t in ["Create tables", "Load", "By region", "Total"] {
            assert!(done.contains(t), "{}: {t} recorded: {done:?}", db.kind);
        }
        assert!(!done.contains("In euro"), "{}: {done:?}", db.kind);

        // The cause is fixed outside the package: the rates arrive.
        sb.write(
            "fix.yaml",
            &other_package_yaml(
                "fix",
                &dw_connection(&db.conn),
                r#"  - name: Rates
    type: sql
    connection: dw
    sql: |
      CREATE TABLE rates (rate INTEGER NOT NULL);
      INSERT INTO rates VALUES (2)
"#,
            ),
        );
        db.run(&sb, "fix.yaml").output().exit(0);

        let summary = run_json(&sb, &db).summary();
        assert_eq!(status_of(&summary, "In euro"), "succeeded", "{}", db.kind);
        for t in ["Create tables", "Load", "By region", "Total"] {
            assert_eq!(status_of(&summary, t), "restored", "{}: {t}", db.kind);
        }
        let log = rows(
            &sb,
            &db,
            "SELECT name, COUNT(*) FROM agg_log GROUP BY name ORDER BY name",
        );
        let log: Vec<(String, i64)> = log
            .iter()
            .map(|r| {
                (
                    r[0].as_str().expect("a name").to_string(),
                    r[1].as_i64().expect("a count"),
                )
            })
            .collect();
        assert_eq!(
            log,
            [
                ("By region".to_string(), 1),
                ("In euro".to_string(), 1),
                ("Total".to_string(), 1)
            ],
            "{}: each aggregate computed once",
            db.kind
        );
        assert_eq!(
            rows(&sb, &db, "SELECT COUNT(*) FROM agg_region")[0][0].as_i64(),
            Some(2),
            "{}",
            db.kind
        );
        assert_eq!(
            rows(&sb, &db, "SELECT total FROM agg_fx")[0][0].as_i64(),
            Some(70),
            "{}",
            db.kind
        );
    }
}

#[test]
fn bulk_insert_null_marker_can_be_written_as_a_plain_yaml_key() {
    // docs/semantics.md §1.4 names the field `null`; in YAML a plain `null:` key is null
    // itself, and the loader must still read it as the field.
    for db in databases("nullkey") {
        let sb = Sandbox::with_package(&package_yaml(
            "nulls",
            &dw_connection(&db.conn),
            r#"  - name: Create
    type: sql
    connection: dw
    sql: CREATE TABLE IF NOT EXISTS people (id INTEGER PRIMARY KEY, city TEXT)
  - name: Load
    type: bulk_insert
    connection: dw
    table: people
    file: people.csv
    null: ""
    after: [Create]
"#,
        ));
        sb.write("people.csv", "id,city\n1,Oslo\n2,\n3,Lima\n");
        db.run(&sb, "package.yaml").output().exit(0);
        let r = rows(
            &sb,
            &db,
            "SELECT COUNT(*), COUNT(city) FROM people WHERE city IS NULL OR city <> ''",
        );
        assert_eq!(r[0][0].as_i64(), Some(3), "{}: {r:?}", db.kind);
        assert_eq!(
            r[0][1].as_i64(),
            Some(2),
            "{}: one NULL city: {r:?}",
            db.kind
        );
    }
}

/// The package of the transaction kill tests: a transacted container loads a
/// table and appends an event row (no key: a repeat would show as a second
/// row), and a ledger shows which tasks ran.
fn transacted_load(db: &Db) -> Sandbox {
    let mut create = create_tables(&["dim_customer"]);
    create.push("CREATE TABLE IF NOT EXISTS events (what TEXT NOT NULL);".into());
    let yaml = creating(
        "transacted",
        db,
        &create,
        r#"  - name: Load
    type: sequence
    transaction: required
    fail_package_on_failure: true
    after: [Create tables]
    tasks:
      - { name: Customers, type: bulk_insert, connection: dw, table: dim_customer, file: data/customers.csv }
      - { name: Event, type: sql, connection: dw, sql: "INSERT INTO events (what) VALUES ('customers loaded')" }
      - { name: Inside, type: process, command: "echo Inside >> ledger.txt" }
  - { name: After, type: process, command: "echo After >> ledger.txt", after: [Load] }
"#,
    );
    let sb = Sandbox::with_package(&yaml);
    sb.write("data/customers.csv", &csv(50, None));
    sb
}

/// Issue 5: a kill -9 after the databases committed a container's transaction
/// but before its completion reached the checkpoint. The rerun finds the
/// commit's marker and does not run the container again (SSIS would).
#[test]
fn a_transaction_killed_after_its_commit_is_not_repeated() {
    for db in databases("txkill_commit") {
        let sb = transacted_load(&db);
        killed_at(&sb, &db, "tx-after-commit");
        assert!(sb.exists("run.ckpt"), "{}: checkpoint kept", db.kind);
        let done = completed_paths(&sb.show("run.ckpt"));
        assert!(
            !done.contains("Load"),
            "{}: not recorded: {done:?}",
            db.kind
        );

        let out = run_json(&sb, &db).says("committed before the last run stopped");
        assert_eq!(status_of(&out.summary(), "Load"), "restored", "{}", db.kind);
        assert_eq!(
            sb.take_ledger(),
            names(&["After"]),
            "{}: Load not rerun",
            db.kind
        );
        assert_eq!(count(&sb, &db, "dim_customer"), (50, 50), "{}", db.kind);
        one_row_in(&sb, &db, "events", "the event row once");
    }
}

/// The other side of the window: killed after the intent to commit was
/// recorded but before the databases committed. The connections died with
/// their transaction open, so nothing was written; the rerun finds no marker
/// and runs the container again, once.
#[test]
fn a_transaction_killed_before_its_commit_is_rolled_back_and_run_again() {
    for db in databases("txkill_intent") {
        let sb = transacted_load(&db);
        killed_at(&sb, &db, "tx-after-intent");
        assert_eq!(
            count(&sb, &db, "dim_customer"),
            (0, 0),
            "{}: nothing committed",
            db.kind
        );

        let summary = run_json(&sb, &db).summary();
        assert_eq!(status_of(&summary, "Load"), "succeeded", "{}", db.kind);
        assert_eq!(
            status_of(&summary, "Create tables"),
            "restored",
            "{}",
            db.kind
        );
        assert_eq!(sb.take_ledger(), names(&["Inside", "After"]), "{}", db.kind);
        assert_eq!(count(&sb, &db, "dim_customer"), (50, 50), "{}", db.kind);
        one_row_in(&sb, &db, "events", "the event row once");
    }
}

/// A rejected row is named by the line it is on, also in a file with Windows
/// line ends and a blank line before it (the csv reader's own positions are
/// one line early in both cases).
#[test]
fn a_rejected_row_in_a_crlf_file_after_a_blank_line_is_named_by_its_line() {
    for db in databases("crlf_lines") {
        let sb = Sandbox::with_package(&package_yaml(
            "crlf",
            &dw_connection(&db.conn),
            r#"  - { name: Create, type: sql, connection: dw, sql: "CREATE TABLE IF NOT EXISTS people (id INTEGER PRIMARY KEY, name TEXT NOT NULL)" }
  - { name: Load, type: bulk_insert, connection: dw, table: people, file: people.csv, after: [Create] }
"#,
        ));
        // Line 1 header, 2 and 3 rows, 4 blank, 5 repeats id 1.
        sb.write("people.csv", "id,name\r\n1,a\r\n2,b\r\n\r\n1,again\r\n");
        db.run(&sb, "package.yaml")
            .output()
            .exit(1)
            .says("line 5 of");
    }
}

/// The kill tests above start with no marker table, so a probe that took any
/// marker table for a commit (ignoring the marker itself) would pass them.
/// Here an earlier transaction left its marker; the one killed before its
/// commit must still run again.
#[test]
fn a_transaction_killed_before_its_commit_runs_again_when_older_markers_exist() {
    for db in databases("txkill_oldmarkers") {
        let sb = transacted_load(&db);
        sb.write(
            "warmup.yaml",
            &other_package_yaml(
                "warmup",
                &dw_connection(&db.conn),
                r#"  - name: Tx
    type: sequence
    transaction: required
    tasks:
      - { name: Make, type: sql, connection: dw, sql: "CREATE TABLE IF NOT EXISTS warmup (x INTEGER)" }
"#,
            ),
        );
        db.run(&sb, "warmup.yaml").output().exit(0);
        one_row_in(
            &sb,
            &db,
            "checkflow_tx_markers",
            "the warm-up left one marker",
        );

        killed_at(&sb, &db, "tx-after-intent");
        assert_eq!(
            status_of(&run_json(&sb, &db).summary(), "Load"),
            "succeeded",
            "{}",
            db.kind
        );
        assert_eq!(count(&sb, &db, "dim_customer"), (50, 50), "{}", db.kind);
    }
}
