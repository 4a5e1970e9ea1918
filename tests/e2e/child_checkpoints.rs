//! A child package's checkpoint belongs to the parent's task in its
//! iteration, to the parent's execution of it and to the values it bound
//! (docs/design/commit-protocols.md §4): no iteration resumes another's, a
//! checkpoint started with other values is refused, and a child run again
//! after a crash that came before the parent recorded it loads nothing twice.

use crate::pg::Db;
use crate::support::*;

/// `package.yaml`, a parent keeping `parent.ckpt`, with `head` (e.g. its
/// variables) and `tasks`; `child.yaml`, a child keeping `child.ckpt`, with
/// `child_head` and `child_tasks`.
fn family(head: &str, tasks: &str, child_head: &str, child_tasks: &str) -> Sandbox {
    parent_and_child(
        &(checkpoint_at("parent.ckpt") + head),
        tasks,
        &(checkpoint_at("child.ckpt") + child_head),
        child_tasks,
    )
}

/// A foreach over c1, c2, c3 running the child with `Item` bound; the child
/// writes `A:item` then `B:item`, and B fails for c2 until `fixed` exists
/// (keeping the child's checkpoint).
fn foreach_parent() -> Sandbox {
    family(
        ITEM_VARIABLE,
        r#"  - name: Each
    type: foreach
    items: [c1, c2, c3]
    map: [User::Item]
    fail_package_on_failure: true
    tasks:
      - { name: Child, type: package, path: child.yaml, bind: { Item: "@[User::Item]" } }
"#,
        ITEM_VARIABLE,
        r#"  - name: A
    type: process
    command: "true"
    expressions:
      command: '"echo A:" + @[User::Item] + " >> ledger.txt"'
  - name: B
    type: process
    command: "true"
    fail_package_on_failure: true
    expressions:
      command: '"echo B:" + @[User::Item] + " >> ledger.txt; test " + @[User::Item] + " != c2 || test -f fixed"'
"#,
    )
}

#[test]
fn an_iteration_never_resumes_the_child_checkpoint_that_another_iteration_left() {
    let sb = foreach_parent();
    sb.run().output().exit(1);
    assert_eq!(sb.take_ledger(), names(&["A:c1", "B:c1", "A:c2", "B:c2"]));
    assert_eq!(
        child_checkpoints(&sb).len(),
        1,
        "c2's child keeps its checkpoint"
    );

    // The loop runs whole again: c1 starts its child afresh (c2's checkpoint
    // is not c1's), c2 resumes its own (A is restored), c3 runs afresh.
    sb.touch("fixed");
    let out = sb.run().output().exit(0);
    assert_eq!(
        sb.take_ledger(),
        names(&["A:c1", "B:c1", "B:c2", "A:c3", "B:c3"]),
        "{out:?}"
    );
    out.says("[child] restored A");
    assert_no_child_checkpoint(&sb, "after the loop");
    assert!(!sb.exists("parent.ckpt"));
}

#[test]
fn a_child_checkpoint_of_an_abandoned_parent_run_is_removed_not_resumed() {
    let sb = foreach_parent();
    sb.run().output().exit(1);
    assert_eq!(child_checkpoints(&sb).len(), 1);
    sb.take_ledger();

    // The parent's checkpoint is thrown away: the next run is a new
    // execution, and c2's child starts over instead of resuming.
    std::fs::remove_file(sb.join("parent.ckpt")).expect("remove parent.ckpt");
    sb.touch("fixed");
    sb.run().output().exit(0);
    assert_eq!(
        sb.take_ledger(),
        names(&["A:c1", "B:c1", "A:c2", "B:c2", "A:c3", "B:c3"])
    );
    assert_no_child_checkpoint(&sb, "after the new execution");
}

#[test]
fn a_child_checkpoint_started_with_other_bound_values_is_refused() {
    // Inside the loop nothing is recorded, so Stamp reads stamp.txt again on
    // the restart and the child is bound another value for the same iteration.
    let sb = family(
        &format!("{ITEM_VARIABLE}  Stamp: {{ type: string, value: \"\" }}\n"),
        r#"  - name: Each
    type: foreach
    items: [only]
    map: [User::Item]
    fail_package_on_failure: true
    tasks:
      - { name: Stamp, type: process, command: "cat stamp.txt", stdout_var: User::Stamp }
      - { name: Child, type: package, path: child.yaml, bind: { Item: "@[User::Stamp]" } }
"#,
        ITEM_VARIABLE,
        r#"  - { name: A, type: process, command: "echo A >> ledger.txt" }
  - { name: B, type: process, command: "echo B >> ledger.txt; test -f fixed", fail_package_on_failure: true }
"#,
    );
    sb.write("stamp.txt", "one");
    sb.run().output().exit(1);
    assert_eq!(sb.take_ledger(), names(&["A", "B"]));
    let kept = child_checkpoints(&sb);
    assert_eq!(kept.len(), 1);
    let before = sb.read_bytes(&kept[0]);

    sb.write("stamp.txt", "two");
    sb.touch("fixed");
    let out = sb.run().output().exit(1);
    out.says("it was started with other bound values")
        .says("User::Item");
    assert!(sb.take_ledger().is_empty(), "nothing of the child ran");
    assert_eq!(sb.read_bytes(&kept[0]), before, "the file is untouched");
}

/// A child's one task, `C1`.
const C1: &str = "  - { name: C1, type: process, command: \"echo C1 >> ledger.txt\" }\n";

/// A parent whose child loads 100 rows with `resume: true`, then `After`.
fn parent_of_a_loading_child() -> Sandbox {
    let sb = family(
        "",
        r#"  - { name: Child, type: package, path: child.yaml, fail_package_on_failure: true }
  - { name: After, type: process, command: "echo After >> ledger.txt" }
"#,
        &format!("connections:\n  dw: {DW}\n"),
        r#"  - name: Create table
    type: sql
    connection: dw
    sql: CREATE TABLE IF NOT EXISTS fact_sales (id INTEGER NOT NULL, name TEXT NOT NULL)
  - { name: Load, type: bulk_insert, connection: dw, table: fact_sales, file: sales.csv, batch_size: 25, resume: true, fail_package_on_failure: true }
"#,
    );
    sb.write("sales.csv", &id_name_csv(1..=100));
    sb
}

/// (rows, distinct ids) in the child's `fact_sales`.
fn loaded_rows(sb: &Sandbox) -> (i64, i64) {
    Db::sqlite().id_counts(sb, "fact_sales")
}

#[test]
fn a_child_run_again_before_the_parent_recorded_it_loads_nothing_twice() {
    // (crash point, how the first run ends)
    for (point, code) in [
        ("child-before-start=kill", None),
        ("child-before-start=term", Some(3)),
        ("child-before-start=error", Some(1)),
        ("child-after-exit=kill", None),
        ("child-after-exit=term", Some(3)),
        ("child-after-exit=error", Some(1)),
        // In the child: after its load's last commit, before its record.
        ("bulk-after-last-commit=kill", Some(1)),
        ("record-before-append@2=kill", Some(1)),
    ] {
        let sb = parent_of_a_loading_child();
        let out = sb.run().failpoint(point).output();
        assert_eq!(out.code, code, "{point}\n{out:?}");
        let again = sb.run().output().exit(0);
        assert_eq!(loaded_rows(&sb), (100, 100), "{point}\n{out:?}\n{again:?}");
        assert_eq!(sb.take_ledger(), names(&["After"]), "{point}");
        assert_no_child_checkpoint(&sb, point);
    }
}

/// The parent is killed after its child succeeded and before it recorded the
/// child's task: the child kept its finished checkpoint, so the parent's
/// restart runs the child again and the child restores every task instead of
/// repeating them. Once the parent has recorded the task, the file is gone.
#[test]
fn a_child_that_succeeded_before_its_parent_was_killed_repeats_nothing() {
    for action in ["kill", "term"] {
        let sb = family(
            "",
            r#"  - { name: Child, type: package, path: child.yaml }
  - { name: After, type: process, command: "echo After >> ledger.txt", after: [Child] }
"#,
            "",
            r#"  - { name: C1, type: process, command: "echo C1 >> ledger.txt" }
  - { name: C2, type: process, command: "echo C2 >> ledger.txt" }
"#,
        );
        let out = sb
            .run()
            .failpoint(&format!("child-after-exit={action}"))
            .output();
        assert_ne!(out.code, Some(0), "{action}: stopped\n{out:?}");
        assert_eq!(sb.take_ledger(), names(&["C1", "C2"]), "{action}");
        // Killed: the parent never recorded the task, so the finished
        // child's checkpoint stays. SIGTERM: the task finished and was
        // recorded on the way out, and its file went with that record.
        let left = if action == "kill" { 1 } else { 0 };
        assert_eq!(child_checkpoints(&sb).len(), left, "{action}");

        let out = sb.run().output().exit(0);
        assert_eq!(
            sb.take_ledger(),
            names(&["After"]),
            "{action}: the child repeats nothing\n{out:?}"
        );
        if action == "kill" {
            out.says("[child] restored C2");
        }
        assert_no_child_checkpoint(&sb, action);
    }
}

/// A child whose parent recorded its task leaves no checkpoint behind.
#[test]
fn a_finished_childs_checkpoint_goes_once_the_parent_recorded_it() {
    let sb = family(
        "",
        r#"  - { name: Child, type: package, path: child.yaml }
  - { name: Fail, type: process, command: "test -f fixed", after: [Child], fail_package_on_failure: true }
"#,
        "",
        C1,
    );
    sb.run().output().exit(1);
    assert_no_child_checkpoint(&sb, "the parent failed after recording the child");
    assert!(completed_paths(&sb.show("parent.ckpt")).contains("Child"));
}

/// Stopped before the child starts (kill -9, or a start that fails): the
/// child ran no task, and the restart runs it once. (SIGTERM there lets the
/// start go on and then stops the child as a parent's SIGTERM always does:
/// the "while the child runs" case, which
/// `ctrl_c_on_the_parent_stops_the_child_and_its_processes` tests.)
#[test]
fn a_parent_stopped_before_its_child_starts_runs_the_child_once() {
    for action in ["kill", "error"] {
        let sb = family(
            "",
            "  - { name: Child, type: package, path: child.yaml, fail_package_on_failure: true }\n",
            "",
            C1,
        );
        let out = sb
            .run()
            .failpoint(&format!("child-before-start={action}"))
            .output();
        assert_ne!(out.code, Some(0), "{action}: stopped\n{out:?}");
        assert!(
            sb.take_ledger().is_empty(),
            "{action}: the child never started"
        );
        sb.run().output().exit(0);
        assert_eq!(sb.take_ledger(), names(&["C1"]), "{action}");
        assert_no_child_checkpoint(&sb, action);
    }
}

/// A parent killed (or refused a write) right after it created its
/// checkpoint leaves the file with its header only, no run record. The
/// restart writes the file's first run record, runs the child and is killed
/// after the child succeeded, before it records the task. The next restart
/// must give the child the key the first restart gave it: it finds the
/// child's finished checkpoint and repeats nothing. Before, the first restart
/// named the parent's checkpoint by its creation and every later run by the
/// first run record, which the first restart itself had written: the child
/// got another key, its finished file was removed as stale, and its
/// transaction committed a second time (the soak test's row `d` twice).
#[test]
fn a_child_of_the_first_restart_of_a_checkpoint_without_a_run_record_repeats_nothing() {
    for action in ["kill", "error"] {
        let sb = family(
            "",
            r#"  - { name: Child, type: package, path: child.yaml, fail_package_on_failure: true }
  - { name: After, type: process, command: "echo After >> ledger.txt", after: [Child] }
"#,
            &format!("connections:\n  dw: {DW}\n"),
            r#"  - { name: Create, type: sql, connection: dw, sql: "CREATE TABLE IF NOT EXISTS d (x INTEGER)" }
  - { name: C1, type: process, command: "echo C1 >> ledger.txt", after: [Create] }
  - name: Load
    type: sequence
    transaction: required
    fail_package_on_failure: true
    after: [C1]
    tasks:
      - { name: InsD, type: sql, connection: dw, sql: "INSERT INTO d VALUES (1)" }
"#,
        );
        let point = format!("checkpoint-after-create={action}");
        let out = sb.run().failpoint(&point).output();
        assert_ne!(out.code, Some(0), "{point}: stopped\n{out:?}");
        assert!(sb.exists("parent.ckpt"), "{point}: the file was created");
        let show = sb.show("parent.ckpt");
        assert_eq!(show["runs"], 0, "{point}: no run record\n{show}");
        assert!(sb.take_ledger().is_empty(), "{point}: nothing ran");

        let out = sb.run().failpoint("child-after-exit=kill").output();
        assert_eq!(out.code, None, "{point}: killed after the child\n{out:?}");
        assert_eq!(sb.take_ledger(), names(&["C1"]), "{point}");
        assert_eq!(
            child_checkpoints(&sb).len(),
            1,
            "{point}: the child kept it"
        );

        let again = sb.run().output().exit(0);
        let d = Db::sqlite().rows(&sb, "SELECT COUNT(*) FROM d");
        assert_eq!(d[0][0].as_i64(), Some(1), "{point}: row d once\n{again:?}");
        assert_eq!(
            sb.take_ledger(),
            names(&["After"]),
            "{point}: the child repeats nothing\n{again:?}"
        );
        assert_no_child_checkpoint(&sb, &point);
        again.says("[child] restored Load");
    }
}
