//! A resumable data flow (`resume: true`, `commit_rows`) loads every source
//! row exactly once, whatever stops the run: kill -9, SIGTERM or a failed
//! COMMIT at each step of its protocol (docs/design/commit-protocols.md §8),
//! and kill -9 at random moments many times over (scenario 22).

use serde_json::Value;

use crate::dataflow::{SRC, rejected};
use crate::pg::{Db, databases};
use crate::support::*;

/// The two tables together, as a `FROM` clause.
const BOTH_TABLES: &str = "(SELECT id FROM even_sales UNION ALL SELECT id FROM odd_sales) x";

/// (rows, distinct ids) in the two tables together.
fn count(sb: &Sandbox, db: &Db) -> (i64, i64) {
    db.id_counts(sb, BOTH_TABLES)
}

/// `progress`, or no row while the flow has not made its progress table
/// yet (a kill can land before its first step).
fn progress_so_far(sb: &Sandbox, db: &Db) -> Vec<Vec<Value>> {
    let exists = if db.kind == "sqlite" {
        "SELECT count(*) FROM sqlite_master WHERE name = 'checkflow_flow_progress'"
    } else {
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'checkflow_flow_progress'"
    };
    if db.rows(sb, exists)[0][0].as_i64() == Some(0) {
        return Vec::new();
    }
    progress(sb, db)
}

/// (rows done, 1 if done) of each progress row.
fn progress(sb: &Sandbox, db: &Db) -> Vec<Vec<Value>> {
    db.progress(sb, "checkflow_flow_progress")
}

/// A package whose resumable flow reads `rows` ids, upper-cases the names
/// and splits even and odd ids into two tables on one connection, in steps
/// of `commit_rows`; `After` writes the ledger.
fn package(db: &Db, rows: u32, commit_rows: u32) -> Sandbox {
    let sb = Sandbox::with_package(&package_yaml(
        "flows",
        &(checkpoint_at("run.ckpt")
            + &format!(
                r#"connections:
  dw: {conn}
"#,
                conn = db.conn
            )),
        &format!(
            r#"  - name: Load
    type: data_flow
    resume: true
    commit_rows: {commit_rows}
    fail_package_on_failure: true
    components:
      - {{ name: Sales, type: flat_file_source, file: data/sales.csv, columns: [{{ name: id, type: DT_I4 }}, name] }}
      - {{ name: Upper, type: derived_column, input: Sales, columns: [{{ name: name, expr: "UPPER(name)", replace: true }}] }}
      - {{ name: Split, type: conditional_split, input: Upper, outputs: [{{ name: Even, expr: "id % 2 == 0" }}], default: Odd }}
      - {{ name: Evens, type: table_destination, input: Split.Even, connection: dw, table: even_sales, create: if_missing }}
      - {{ name: Odds, type: table_destination, input: Split.Odd, connection: dw, table: odd_sales, create: if_missing }}
  - {{ name: After, type: process, command: "echo After >> ledger.txt", after: [Load] }}
"#
        ),
    ));
    sb.write("data/sales.csv", &id_name_csv(1..=rows));
    sb
}

/// Runs the package stopped at `point` (`NAME[@N]=ACTION`), then again to its
/// end: every row is in the tables once and the progress row says done.
fn stop_then_finish(db: &Db, point: &str) -> (Output, Output) {
    let sb = package(db, 100, 25);
    let ran = db.stop_then_finish(&sb, point, BOTH_TABLES, Some("checkflow_flow_progress"));
    assert_eq!(sb.ledger(), ["After"], "{}: {point}", db.kind);
    ran
}

#[test]
fn a_resumable_flow_stopped_at_any_step_loads_every_row_once() {
    for point in [
        "dataflow-segment-before-commit@2=kill",
        "dataflow-segment-before-commit@2=term",
        "dataflow-segment-before-commit@2=error",
        "dataflow-segment-after-commit@2=kill",
        "dataflow-segment-after-commit@2=term",
        "dataflow-segment-after-commit@2=error",
        "dataflow-before-commit=kill",
        "dataflow-before-commit=term",
        "dataflow-before-commit=error",
    ] {
        for db in databases("df_resume_steps") {
            let (_, finished) = stop_then_finish(&db, point);
            if point.contains("@2=kill") || point.contains("@2=error") {
                // Two steps of 25 were committed before the stop.
                let skipped = if point.contains("after") { 50 } else { 25 };
                finished.says(&format!(
                    "resuming: {skipped} source row(s) were committed before"
                ));
            }
        }
    }
}

#[test]
fn a_resumable_flow_killed_after_its_last_commit_loads_nothing_again() {
    for point in ["record-before-append=kill", "record-before-append=error"] {
        for db in databases("df_resume_last") {
            let (_, finished) = stop_then_finish(&db, point);
            finished.says("already loaded");
        }
    }
}

#[test]
fn a_new_run_of_a_finished_resumable_flow_loads_the_file_again() {
    for db in databases("df_resume_again") {
        let sb = package(&db, 100, 30);
        db.run(&sb, "package.yaml").output().exit(0);
        db.run(&sb, "package.yaml").output().exit(0);
        assert_eq!(count(&sb, &db), (200, 100), "{}", db.kind);
    }
}

#[test]
fn scenario_22_a_resumable_flow_killed_at_random_moments_loads_every_row_once() {
    let seed = seed_or(0x5CE_0022);
    let mut rng = Rng::new(seed);
    let db = &databases("df_random_kills")[0];
    let rows = 1_000_000;
    let sb = package(db, rows, 2000);
    let (mut kills, mut mid_load) = (0, 0);
    let mut last = 0;
    for attempt in 0.. {
        assert!(attempt < 300, "seed {seed:#x}: no end after {attempt} runs");
        // Kill 20 runs or more at random moments, then let one finish.
        let kill_after =
            (kills < 20).then(|| std::time::Duration::from_millis(40 + rng.below(120)));
        let (killed, done) = run_killed_after(
            &sb,
            db.run(&sb, "package.yaml"),
            kill_after,
            "run.ckpt",
            &format!("seed {seed:#x}: attempt {attempt}"),
        );
        kills += u32::from(killed);
        if done {
            break;
        }
        // How far the committed steps got.
        if let Some(done) = progress_so_far(&sb, db)
            .first()
            .and_then(|r| r[0].as_i64())
            .filter(|d| *d > last && *d < i64::from(rows))
        {
            mid_load += 1;
            last = done;
        }
    }
    eprintln!("seed {seed:#x}: {kills} kill(s), {mid_load} while loading");
    assert!(kills >= 20, "seed {seed:#x}: only {kills} kill(s)");
    assert!(
        mid_load >= 3,
        "seed {seed:#x}: only {mid_load} kill(s) landed while the flow was loading"
    );
    assert_eq!(
        count(&sb, db),
        (i64::from(rows), i64::from(rows)),
        "seed {seed:#x}, {kills} kill(s), {mid_load} mid-load"
    );
}

fn resumable(rest: &str) -> String {
    format!(
        "connections:\n  dw: {{ kind: sqlite, path: dw.db }}\n  other: {{ kind: sqlite, path: other.db }}\ntasks:\n  - name: Load\n    type: data_flow\n    resume: true\n    components:\n{SRC}{rest}"
    )
}

#[test]
fn bad_resume_with_a_file_destination() {
    rejected(
        &resumable("      - { name: Out, type: flat_file_destination, input: S, file: o.csv }\n"),
        "7:",
        &[
            "`resume: true` cannot be used with component \"Out\" (a flat_file_destination)",
            "a file cannot be committed",
        ],
    );
}

#[test]
fn bad_resume_with_two_connections() {
    rejected(
        &resumable(
            "      - { name: M, type: multicast, input: S }\n      - { name: A, type: table_destination, input: M, connection: dw, table: a }\n      - { name: B, type: table_destination, input: M, connection: other, table: b }\n",
        ),
        "7:",
        &["component \"B\"", "must all use one connection"],
    );
}

#[test]
fn bad_resume_with_two_sources() {
    rejected(
        &resumable(
            "      - { name: T, type: flat_file_source, file: t.csv, columns: [a] }\n      - { name: A, type: table_destination, input: S, connection: dw, table: a }\n      - { name: B, type: table_destination, input: T, connection: dw, table: b }\n",
        ),
        "7:",
        &["`resume: true` needs exactly one source (the flow has 2)"],
    );
}

#[test]
fn bad_resume_with_a_row_count() {
    rejected(
        &format!(
            "variables:\n  N: {{ type: int32, value: 0 }}\n{}",
            resumable(
                "      - { name: C, type: row_count, input: S, variable: User::N }\n      - { name: A, type: table_destination, input: C, connection: dw, table: a }\n"
            )
        ),
        "9:",
        &[
            "component \"C\" (a row_count)",
            "sets a variable at the end",
        ],
    );
}

#[test]
fn bad_commit_rows_zero() {
    rejected(
        &resumable(
            "      - { name: A, type: table_destination, input: S, connection: dw, table: a }\n",
        )
        .replace("resume: true\n", "resume: true\n    commit_rows: 0\n"),
        "10:",
        &["`commit_rows` must be 1 or more"],
    );
}
