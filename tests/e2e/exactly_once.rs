//! Exactly once around a commit: the windows between a database commit (or
//! a unit's variables) and the checkpoint record that describes it, each
//! stopped at its crash point (`CHECKFLOW_TEST_FAILPOINT`) through the
//! binary, then restarted. Each test is named after what it reproduces.

use serde_json::Value;

use crate::support::*;

/// A transacted sequence of two inserts and a counter, then a task that
/// writes the counter to the ledger.
fn transacted(extra: &str) -> Sandbox {
    Sandbox::with_package(&package_yaml(
        "tx",
        &format!(
            "{}connections:\n  dw: {DW}\nvariables:\n  Mid: {{ type: int32, value: 0 }}\n",
            checkpoint_at("run.ckpt")
        ),
        &format!(
            r#"  - name: Create
    type: sql
    connection: dw
    sql: "CREATE TABLE IF NOT EXISTS a (x INTEGER); CREATE TABLE IF NOT EXISTS b (x INTEGER);"
{T1_TRANSACTED}  - name: After
    type: process
    after: [T1]
    command: "true"
    expressions:
      command: '"echo mid=" + (DT_WSTR, 10)@[User::Mid] + " >> ledger.txt"'
{extra}"#
        ),
    ))
}

fn rows_of(sb: &Sandbox, table: &str) -> i64 {
    dw_numbers(sb, &[&format!("COUNT(*) FROM {table}")])[0].expect("a count")
}

/// The restart after a commit whose record was lost finds the commit made:
/// it does not repeat it, and `After` sees the variable it committed with.
#[track_caller]
fn restart_finds_the_commit(sb: &Sandbox) {
    sb.run()
        .output()
        .exit(0)
        .says("committed before the last run stopped");
    assert_eq!((rows_of(sb, "a"), rows_of(sb, "b")), (1, 1));
    assert_eq!(sb.take_ledger(), names(&["mid=1"]));
}

/// SIGTERM while the last task of a transacted container runs: the task
/// finishes, so the container commits and is recorded; it used to be rolled
/// back and still recorded as done, and the rerun restored an empty unit.
#[test]
fn sigterm_during_the_last_task_of_a_transaction_keeps_its_rows_and_never_records_a_rollback() {
    let sb = transacted("");
    // Tasks start in order: Create, InsA, Count, InsB.
    let out = sb.run().failpoint("task-start@4=term").output().exit(3);
    let done = completed_paths(&sb.show("run.ckpt"));
    let (a, b) = (rows_of(&sb, "a"), rows_of(&sb, "b"));
    assert!(
        (done.contains("T1") && a == 1 && b == 1) || (!done.contains("T1") && a == 0 && b == 0),
        "a unit recorded as done holds its rows, one not recorded holds none: recorded {done:?}, a={a} b={b}\n{}",
        out.all()
    );
    assert!(sb.take_ledger().is_empty(), "After never started");

    sb.run().output().exit(0);
    assert_eq!(
        (rows_of(&sb, "a"), rows_of(&sb, "b")),
        (1, 1),
        "each row once"
    );
    assert_eq!(sb.take_ledger(), names(&["mid=1"]));
}

/// kill -9 between the commit and the container's record: the restart finds
/// the commit made and does not repeat it, and the variable the container
/// changed has the value it committed with (it was back at 0).
#[test]
fn a_variable_set_inside_a_committed_transaction_survives_a_kill_before_its_record() {
    let sb = transacted("");
    let out = sb.run().failpoint("tx-after-commit").output();
    assert_eq!(out.code, None, "killed by SIGKILL\n{}", out.all());
    assert!(!completed_paths(&sb.show("run.ckpt")).contains("T1"));
    restart_finds_the_commit(&sb);
}

/// The same window, then a second crash right after the restart recorded the
/// commit it found: the variable's value was written down with it, so a
/// third run still has it.
#[test]
fn a_committed_transaction_found_by_a_restart_keeps_its_variables_for_later_restarts() {
    let sb = transacted(
        r#"  - { name: Fail late, type: process, after: [After], command: "test -f fixed", fail_package_on_failure: true }
"#,
    );
    let out = sb.run().failpoint("tx-after-commit").output();
    assert_eq!(out.code, None, "killed by SIGKILL\n{}", out.all());
    sb.run().output().exit(1);
    assert_eq!(sb.take_ledger(), names(&["mid=1"]));
    sb.touch("fixed");
    // After is recorded; rerun it to see the value a third run starts from.
    sb.run().args(["--rerun", "After"]).output().exit(0);
    assert_eq!(sb.take_ledger(), names(&["mid=1"]));
    assert_eq!((rows_of(&sb, "a"), rows_of(&sb, "b")), (1, 1));
}

/// A failed checkpoint write after the commit (the completion's record): the
/// run fails, the intent stays, and the restart finds the commit made.
#[test]
fn a_failed_checkpoint_write_after_a_commit_is_settled_by_the_restart() {
    let sb = transacted("");
    // Writes: Create's completion, then the intent, then T1's completion.
    sb.run()
        .failpoint("checkpoint-write@3=error")
        .output()
        .exit(1)
        .says("simulated write failure");
    assert_eq!((rows_of(&sb, "a"), rows_of(&sb, "b")), (1, 1));
    restart_finds_the_commit(&sb);
}

/// A loop changes a variable and fails while a parallel sibling finishes:
/// the sibling's record must not carry the loop's unfinished changes, or the
/// rerun of the whole loop adds them a second time (the total was 9, not 5).
#[test]
fn a_loop_variable_does_not_leak_into_a_parallel_siblings_record() {
    let sb = Sandbox::with_package(&package_yaml(
        "leak",
        &(checkpoint_at("run.ckpt")
            + r#"max_concurrent: 4
variables:
  Total: { type: int32, value: 0 }
  Item: { type: int32, value: 0 }
"#),
        r#"  - name: Par
    type: sequence
    flow: parallel
    tasks:
      - name: Loop
        type: foreach
        items: [1, 2, 3, 4, 5]
        map: [User::Item]
        fail_package_on_failure: true
        tasks:
          - { name: Inc, type: expression, expr: "@[User::Total] = @[User::Total] + 1" }
          - name: Check
            type: process
            after: [Inc]
            command: "true"
            expressions:
              command: '"test " + (DT_WSTR, 4)@[User::Item] + " != 4 || { while [ ! -f sibling.done ]; do sleep 0.02; done; sleep 0.3; test -f fixed; }"'
      - name: Sibling
        type: process
        command: "echo Sibling >> ledger.txt; touch sibling.done"
  - name: Report
    type: process
    after: [Par]
    command: "true"
    expressions:
      command: '"echo total=" + (DT_WSTR, 10)@[User::Total] + " >> ledger.txt"'
"#,
    ));
    sb.run().output().exit(1);
    assert_eq!(sb.take_ledger(), names(&["Sibling"]));
    let doc = sb.show("run.ckpt");
    assert!(completed_paths(&doc).contains("Par/Sibling"), "{doc}");
    assert_eq!(
        doc["variables"]["User::Total"],
        Value::from(0),
        "the loop's unfinished changes are not in the checkpoint: {doc}"
    );
    assert_eq!(sb.rerun_fixed(), names(&["total=5"]));
}

/// A failure restored from the checkpoint still counts against `max_errors`:
/// with a limit of 2, one recorded failure and one new one fail the package,
/// as the same two failures in one run do.
#[test]
fn a_restored_failure_counts_against_max_errors() {
    let yaml = package_yaml(
        "errors",
        &(checkpoint_at("run.ckpt")
            + r#"max_errors: 2
"#),
        r#"  - { name: A, type: process, command: "echo A >> ledger.txt; exit 1" }
  - { name: C, type: process, after: [{ task: A, on: completion }], fail_package_on_failure: true, command: "echo C >> ledger.txt; test -f fixed" }
  - { name: D, type: process, after: [C], command: "echo D >> ledger.txt; exit 1" }
  - { name: Alert, type: process, after: [{ task: D, on: failure }], command: "echo Alert >> ledger.txt" }
"#,
    );
    // In one run: A and D fail, two errors, the package fails.
    let one = Sandbox::with_package(&yaml);
    one.touch("fixed");
    one.run().output().exit(1);

    // The same results over two runs: A's failure is restored, D's is new.
    let sb = Sandbox::with_package(&yaml);
    sb.run().output().exit(1);
    assert_eq!(sb.take_ledger(), names(&["A", "C"]));
    assert_eq!(
        completed_of(&sb.show("run.ckpt")),
        vec![("A".into(), "failure".into())]
    );
    sb.touch("fixed");
    let out = sb.run_json().output().exit(1);
    assert_eq!(status_of(&out.summary(), "A"), "restored");
    assert_eq!(status_of(&out.summary(), "D"), "failed");
}

/// A parallel branch that fails after another branch has already failed the
/// package: its failure would have failed the package too, so it is on the
/// failure chain and not recorded. It was recorded as a failure, and the
/// restart restored it instead of running it again.
#[test]
fn a_branch_failing_after_the_package_failed_is_not_recorded_and_runs_again() {
    let sb = Sandbox::with_package(&package_yaml(
        "late",
        &checkpoint_at("run.ckpt"),
        r#"  - name: Par
    type: sequence
    flow: parallel
    tasks:
      - { name: Early, type: process, fail_package_on_failure: true, command: "echo Early >> ledger.txt; test -f fixed" }
      - name: Branch
        type: sequence
        fail_package_on_failure: true
        tasks:
          - { name: Late, type: process, command: "echo Late >> ledger.txt; while [ ! -f ledger.txt ]; do sleep 0.01; done; sleep 0.3; test -f fixed" }
"#,
    ));
    sb.run().output().exit(1);
    assert_eq!(sorted(sb.take_ledger()), names(&["Early", "Late"]));
    assert!(
        completed_of(&sb.show("run.ckpt")).is_empty(),
        "nothing on the failure chain is recorded: {:?}",
        sb.completed("run.ckpt")
    );
    assert_eq!(sorted(sb.rerun_fixed()), names(&["Early", "Late"]));
}
