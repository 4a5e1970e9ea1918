//! A resumable `bulk_insert` loads every row exactly once, whatever stops
//! the run between its commits and the record of its completion: kill -9,
//! SIGTERM or a failed write at each crash point of its protocol
//! (docs/design/commit-protocols.md §3). A load run again on purpose (a new
//! run, `--rerun`) loads the file again.

use serde_json::Value;

use crate::pg::{Db, databases};
use crate::support::*;

/// (rows, distinct ids) in `fact_sales`.
fn count(sb: &Sandbox, db: &Db) -> (i64, i64) {
    db.id_counts(sb, "fact_sales")
}

/// (rows done, 1 if done) of each progress row.
fn progress(sb: &Sandbox, db: &Db) -> Vec<Vec<Value>> {
    db.progress(sb, "checkflow_load_progress")
}

/// 100 rows, ids 1..=100.
fn sales_csv() -> String {
    id_name_csv(1..=100)
}

/// The load's options: batches of 25 with `resume: true`.
const RESUMABLE: &str = "batch_size: 25, resume: true";

/// Creates `fact_sales` (no key: a row loaded twice shows), loads 100 rows
/// with `load` (e.g. [`RESUMABLE`]), then `After` writes the ledger and
/// `Gate` fails until `fixed` exists (keeping the checkpoint).
fn sales_package(db: &Db, load: &str) -> Sandbox {
    let sb = Sandbox::with_package(&facts(
        db,
        "",
        &format!(
            r#"  - {{ name: Sales, type: bulk_insert, connection: dw, table: fact_sales, file: data/sales.csv, {load}, fail_package_on_failure: true }}
  - {{ name: After, type: process, command: "echo After >> ledger.txt" }}
  - {{ name: Gate, type: process, command: "test -f fixed", fail_package_on_failure: true }}
"#
        ),
    ));
    sb.write("data/sales.csv", &sales_csv());
    sb
}

/// A package on `db` keeping `run.ckpt`, with the `head` lines after its
/// connection, whose first task creates `fact_sales` (no key: a row loaded
/// twice shows); `tasks` follow it.
fn facts(db: &Db, head: &str, tasks: &str) -> String {
    package_yaml(
        "facts",
        &format!(
            "{}{}{head}",
            checkpoint_at("run.ckpt"),
            dw_connection(&db.conn)
        ),
        &format!(
            r#"  - name: Create table
    type: sql
    connection: dw
    sql: CREATE TABLE IF NOT EXISTS fact_sales (id INTEGER NOT NULL, name TEXT NOT NULL)
{tasks}"#
        ),
    )
}

/// Runs the package stopped at `point` (`NAME[@N]=ACTION`), then again to its
/// end; every row must be in the table once.
fn stop_then_finish(db: &Db, point: &str, load: &str) -> (Output, Output) {
    let sb = sales_package(db, load);
    sb.touch("fixed");
    let progress = load
        .contains("resume: true")
        .then_some("checkflow_load_progress");
    db.stop_then_finish(&sb, point, "fact_sales", progress)
}

#[test]
fn a_resumable_bulk_insert_killed_after_its_last_commit_does_not_load_the_file_twice() {
    for point in [
        "bulk-after-last-commit=kill",
        "bulk-after-last-commit=error",
        "record-before-append@2=kill",
        "record-before-append@2=error",
    ] {
        for db in databases("bulk_after_last_commit") {
            let (_, finished) = stop_then_finish(&db, point, RESUMABLE);
            finished.says("already loaded");
        }
    }
    // SIGTERM lets the task end and its completion be recorded: the rerun
    // restores it.
    for point in ["bulk-after-last-commit=term", "record-before-append@2=term"] {
        for db in databases("bulk_after_last_commit") {
            let (_, finished) = stop_then_finish(&db, point, RESUMABLE);
            finished.says("restored Sales");
        }
    }
}

/// The first run was killed right after it created the checkpoint, which
/// holds its header only. The restart loads the file, writing the
/// checkpoint's first run record, and is killed after the load's last commit:
/// the next restart is the same execution of the load (the checkpoint's
/// identity is that first run record in both), finds its done row and loads
/// nothing. Before, the restart named the file by its creation and the next
/// one by the run record: another execution, which loaded the file again.
#[test]
fn a_load_by_the_first_restart_of_a_checkpoint_without_a_run_record_is_not_loaded_twice() {
    for db in databases("bulk_header_only_checkpoint") {
        let sb = sales_package(&db, RESUMABLE);
        sb.touch("fixed");
        let created = db
            .run(&sb, "package.yaml")
            .failpoint("checkpoint-after-create=kill")
            .output();
        assert_eq!(created.code, None, "{}: killed\n{created:?}", db.kind);
        assert_eq!(sb.show("run.ckpt")["runs"], 0, "{}: no run record", db.kind);
        let loaded = db
            .run(&sb, "package.yaml")
            .failpoint("bulk-after-last-commit=kill")
            .output();
        assert_eq!(loaded.code, None, "{}: killed\n{loaded:?}", db.kind);
        assert_eq!(count(&sb, &db), (100, 100), "{}: loaded", db.kind);
        let finished = db.run(&sb, "package.yaml").output().exit(0);
        assert_eq!(
            count(&sb, &db),
            (100, 100),
            "{}: every row once\n{finished:?}",
            db.kind
        );
        finished.says("already loaded");
    }
}

#[test]
fn a_resumable_bulk_insert_stopped_at_any_batch_commit_loads_every_row_once() {
    for point in [
        "bulk-before-batch-commit@2=kill",
        "bulk-before-batch-commit@2=term",
        "bulk-before-batch-commit@2=error",
        "bulk-after-batch-commit@2=kill",
        "bulk-after-batch-commit@2=term",
        "bulk-after-batch-commit@2=error",
        "bulk-before-last-commit=kill",
        "bulk-before-last-commit=term",
        "bulk-before-last-commit=error",
    ] {
        for db in databases("bulk_batch_commits") {
            stop_then_finish(&db, point, RESUMABLE);
        }
    }
}

#[test]
fn truncate_does_not_empty_a_table_that_the_interrupted_run_already_loaded() {
    for db in databases("bulk_truncate_after_last_commit") {
        let (_, finished) = stop_then_finish(
            &db,
            "bulk-after-last-commit=kill",
            "batch_size: 25, resume: true, truncate: true",
        );
        finished.says("already loaded");
    }
}

#[test]
fn a_load_without_resume_and_with_truncate_holds_every_row_once_whatever_stops_it() {
    // One transaction: a crash after its commit reruns it (at least once),
    // and `truncate: true` in the same transaction makes that rerun harmless.
    for point in [
        "bulk-before-commit=kill",
        "bulk-before-commit=term",
        "bulk-before-commit=error",
        "bulk-after-commit=kill",
        "bulk-after-commit=term",
        "bulk-after-commit=error",
    ] {
        for db in databases("bulk_without_resume") {
            stop_then_finish(&db, point, "truncate: true");
        }
    }
}

#[test]
fn a_finished_load_is_loaded_again_by_rerun_and_by_a_new_run() {
    for db in databases("bulk_rerun_loads_again") {
        let sb = sales_package(&db, RESUMABLE);
        // Gate fails: the checkpoint keeps Sales recorded.
        db.run(&sb, "package.yaml").output().exit(1);
        assert_eq!(count(&sb, &db), (100, 100), "{}", db.kind);
        db.run(&sb, "package.yaml")
            .output()
            .exit(1)
            .says("restored Sales");
        assert_eq!(
            count(&sb, &db),
            (100, 100),
            "{}: restored, not run",
            db.kind
        );

        // Run again on purpose: the load runs, and loads the file again.
        db.run(&sb, "package.yaml")
            .args(["--rerun", "Sales"])
            .output()
            .exit(1)
            .says("loading it again");
        assert_eq!(
            count(&sb, &db),
            (200, 100),
            "{}: --rerun loads again",
            db.kind
        );

        // A new run (the package succeeds, the checkpoint goes) loads it again too.
        sb.touch("fixed");
        db.run(&sb, "package.yaml").output().exit(0);
        assert!(!sb.exists("run.ckpt"));
        db.run(&sb, "package.yaml")
            .output()
            .exit(0)
            .says("loading it again");
        assert_eq!(
            count(&sb, &db),
            (300, 100),
            "{}: a new run loads again",
            db.kind
        );
    }
}

#[test]
fn each_iteration_of_a_loop_loads_its_file_and_a_restart_loads_none_twice() {
    for db in databases("bulk_in_a_loop") {
        let sb = Sandbox::with_package(&facts(
            &db,
            "variables:\n  Day: { type: string, value: \"\" }\n",
            r#"  - name: Days
    type: foreach
    items: [d1, d2]
    map: [User::Day]
    fail_package_on_failure: true
    tasks:
      - name: Sales
        type: bulk_insert
        connection: dw
        table: fact_sales
        file: data/d1.csv
        batch_size: 25
        resume: true
        expressions:
          file: '"data/" + @[User::Day] + ".csv"'
"#,
        ));
        sb.write("data/d1.csv", &sales_csv());
        sb.write("data/d2.csv", &id_name_csv(101..=150));
        // Killed after d2's last commit: the loop reruns whole on restart,
        // and neither day is loaded twice.
        let out = db
            .run(&sb, "package.yaml")
            .failpoint("bulk-after-last-commit@2=kill")
            .output();
        assert_eq!(out.code, None, "{}: {out:?}", db.kind);
        db.run(&sb, "package.yaml")
            .output()
            .exit(0)
            .says("already loaded");
        assert_eq!(count(&sb, &db), (150, 150), "{}", db.kind);
    }
}

#[test]
fn a_progress_table_made_before_done_rows_existed_gets_its_new_column() {
    for db in databases("bulk_progress_table_upgrade") {
        let sb = sales_package(&db, RESUMABLE);
        sb.touch("fixed");
        // The table as earlier versions created it (no `done_by`).
        sb.write(
            "setup.yaml",
            &other_package_yaml(
                "setup",
                &dw_connection(&db.conn),
                r#"  - name: Old progress table
    type: sql
    connection: dw
    sql: CREATE TABLE checkflow_load_progress (task_key TEXT PRIMARY KEY, rows_sha256 TEXT NOT NULL, rows_done BIGINT NOT NULL)
"#,
            ),
        );
        db.run(&sb, "setup.yaml").output().exit(0);
        db.run(&sb, "package.yaml").output().exit(0);
        assert_eq!(count(&sb, &db), (100, 100), "{}", db.kind);
        assert_eq!(
            progress(&sb, &db),
            vec![vec![Value::from(100), Value::from(1)]],
            "{}",
            db.kind
        );
    }
}

#[test]
fn a_resumable_bulk_insert_killed_at_random_moments_loads_every_row_once() {
    let seed = seed_or(0xB0_1C_10_AD);
    let mut rng = Rng::new(seed);
    let db = &databases("bulk_random_kills")[0];
    let sb = Sandbox::with_package(&facts(
        db,
        "",
        r#"  - { name: Sales, type: bulk_insert, connection: dw, table: fact_sales, file: data/sales.csv, batch_size: 2000, resume: true }
  - { name: After, type: process, command: "echo After >> ledger.txt" }
"#,
    ));
    sb.write("data/sales.csv", &id_name_csv(1..=40_000));
    let mut kills = 0;
    for attempt in 0.. {
        assert!(attempt < 200, "seed {seed:#x}: no end after {attempt} runs");
        // Later attempts wait longer, so the load always gets further.
        let ms = rng.below(40 + 10 * attempt);
        let (killed, done) = run_killed_after(
            &sb,
            sb.run(),
            Some(std::time::Duration::from_millis(ms)),
            "run.ckpt",
            &format!("seed {seed:#x}: attempt {attempt}"),
        );
        kills += usize::from(killed);
        if done {
            break;
        }
    }
    assert!(kills > 0, "seed {seed:#x}: no run was killed");
    assert_eq!(
        count(&sb, db),
        (40_000, 40_000),
        "seed {seed:#x}, {kills} kill(s)"
    );
}
