//! What a restart reuses and what it runs again (docs/semantics.md §5.3, §5.5):
//! scenarios 8, 9, 11, 13 and 14.

use serde_json::{Value, json};

use crate::support::*;

const CKPT: &str = "checkpoint: { file: r.ckpt, usage: if_exists, save: true }\n";

#[test]
fn parallel_branch_that_finishes_is_recorded_and_rerun_runs_only_the_failed_branch() {
    let yaml = package_yaml(
        "branches",
        CKPT,
        r#"  - { name: Fast, type: process, command: "echo Fast >> ledger.txt; test -f fixed", fail_package_on_failure: true }
  - { name: Slow, type: process, command: "sleep 1; echo Slow >> ledger.txt" }
  - { name: Join, type: process, command: "echo Join >> ledger.txt", after: [Fast, Slow] }
  - { name: Next, type: process, command: "echo Next >> ledger.txt", after: [Slow] }
"#,
    );
    let sb = Sandbox::with_package(&yaml);

    sb.run().output().exit(1);
    assert_eq!(
        sb.take_ledger(),
        names(&["Fast", "Slow"]),
        "Slow was already running when Fast failed, and finishes; nothing new starts (Next)"
    );
    assert_eq!(
        sb.completed("r.ckpt"),
        vec![("Slow".to_owned(), "success".to_owned())]
    );

    assert_eq!(sorted(sb.rerun_fixed()), names(&["Fast", "Join", "Next"]));
}

#[test]
fn flow_parallel_branch_that_finishes_is_recorded_and_rerun_runs_only_the_failed_branch() {
    let yaml = package_yaml(
        "flow_parallel",
        &(CKPT.to_owned()
            + r#"flow: parallel
"#),
        r#"  - { name: Fast, type: process, command: "echo Fast >> ledger.txt; test -f fixed", fail_package_on_failure: true }
  - { name: Slow, type: process, command: "sleep 1; echo Slow >> ledger.txt" }
"#,
    );
    let sb = Sandbox::with_package(&yaml);

    sb.run().output().exit(1);
    assert_eq!(sorted(sb.take_ledger()), names(&["Fast", "Slow"]));
    assert_eq!(
        sb.completed("r.ckpt"),
        vec![("Slow".to_owned(), "success".to_owned())]
    );

    assert_eq!(sb.rerun_fixed(), names(&["Fast"]));
}

/// A task, then a foreach over a..e whose third item fails until `fixed`
/// exists; the loop is the restart point.
fn foreach_package(checkpoint_iterations: bool) -> String {
    package_yaml(
        "loop",
        &format!("{CKPT}{ITEM_VARIABLE}"),
        &format!(
            "  - {{ name: Before, type: process, command: \"echo Before >> ledger.txt\" }}\n{}",
            foreach_loop(
                "items: [a, b, c, d, e]",
                "Item",
                checkpoint_iterations,
                &echo_failing_at_c("Item")
            )
        ),
    )
}

#[test]
fn foreach_failing_at_third_item_reruns_the_whole_loop() {
    let sb = Sandbox::with_package(&foreach_package(false));

    sb.run().output().exit(1);
    assert_eq!(sb.take_ledger(), names(&["Before", "a", "b", "c"]));
    assert_eq!(
        sb.completed("r.ckpt"),
        vec![("Before".to_owned(), "success".to_owned())],
        "a loop's children are not recorded"
    );

    assert_eq!(sb.rerun_fixed(), names(&["a", "b", "c", "d", "e"]));
}

#[test]
fn foreach_with_checkpoint_iterations_reruns_only_the_third_to_fifth_items() {
    let sb = Sandbox::with_package(&foreach_package(true));

    sb.run().output().exit(1);
    assert_eq!(sb.take_ledger(), names(&["Before", "a", "b", "c"]));

    sb.touch("fixed");
    let out = sb.run_json().output().exit(0);
    assert_eq!(sb.take_ledger(), names(&["c", "d", "e"]));
    // The log skips a and b, and numbers the rest by their places (3 to 5).
    let lines = out.json_lines();
    let skipped: Vec<&Value> = lines
        .iter()
        .filter(|l| l["event"] == "iteration_skipped")
        .map(|l| &l["key"])
        .collect();
    assert_eq!(skipped, [&json!("a"), &json!("b")]);
    let numbered: Vec<(Value, Value)> = lines
        .iter()
        .filter(|l| l["event"] == "iteration")
        .map(|l| (l["index"].clone(), l["key"].clone()))
        .collect();
    assert_eq!(
        numbered,
        [
            (json!(3), json!("c")),
            (json!(4), json!("d")),
            (json!(5), json!("e"))
        ]
    );
}

/// A package keeping `r.ckpt` with the `variables` (lines under
/// `variables:`): the tasks `before`, then `Fail`, which fails the package
/// until `fixed` exists, then `Report`, which writes the value of the
/// expression `value` to `out.txt`.
fn fail_then_report(name: &str, variables: &str, before: &str, value: &str) -> String {
    package_yaml(
        name,
        &format!("{CKPT}variables:\n{variables}"),
        &format!(
            r#"{before}  - {{ name: Fail, type: process, command: "echo Fail >> ledger.txt; test -f fixed", fail_package_on_failure: true }}
  - name: Report
    type: process
    command: "echo placeholder"
    expressions:
      command: '"echo " + {value} + " >> out.txt"'
"#
        ),
    )
}

/// Makes `fixed`, then runs `restart`, which gives `var` another value than
/// the failed run did: it succeeds saying the new value of `var` is ignored,
/// and `Report` writes `kept`, the value of the failed run.
#[track_caller]
fn restart_ignores(sb: &Sandbox, restart: Cmd, var: &str, kept: &str) {
    sb.touch("fixed");
    restart.output().exit(0).says(var).says_ci("ignored");
    assert_eq!(sb.read("out.txt").trim(), kept);
}

#[test]
fn variable_set_before_the_failure_is_restored_and_set_on_rerun_is_ignored() {
    let yaml = fail_then_report(
        "vars",
        "  Base: { type: int32, value: 1 }\n  X: { type: int32, value: 0 }\n",
        "  - { name: SetX, type: expression, expr: '@[User::X] = @[User::X] + @[User::Base]' }\n",
        "(DT_WSTR, 10) @[User::X]",
    );
    let sb = Sandbox::with_package(&yaml);

    sb.run().args(["--set", "User::Base=100"]).output().exit(1);
    assert_eq!(sb.take_ledger(), names(&["Fail"]));
    let doc = sb.show("r.ckpt");
    assert_eq!(doc["variables"]["User::X"], json!(100), "{doc:#}");

    // SetX run again would make X 200 (stored configuration) or 107 (new --set).
    restart_ignores(
        &sb,
        sb.run().args(["--set", "User::Base=7"]),
        "User::Base",
        "100",
    );
    assert_eq!(sb.take_ledger(), names(&["Fail"]));
}

#[test]
fn task_failing_its_parent_sequence_runs_again_on_restart_and_recorded_siblings_do_not() {
    let yaml = package_yaml(
        "nested",
        CKPT,
        r#"  - { name: First, type: process, command: "echo First >> ledger.txt" }
  - name: Seq
    type: sequence
    fail_package_on_failure: true
    tasks:
      - { name: S1, type: process, command: "echo S1 >> ledger.txt" }
      - { name: S2, type: process, command: "echo S2 >> ledger.txt; test -f fixed", fail_parent_on_failure: true }
      - { name: S3, type: process, command: "echo S3 >> ledger.txt" }
  - { name: Last, type: process, command: "echo Last >> ledger.txt" }
"#,
    );
    let sb = Sandbox::with_package(&yaml);

    sb.run().output().exit(1);
    assert_eq!(sb.take_ledger(), names(&["First", "S1", "S2"]));
    let done = completed_paths(&sb.show("r.ckpt"));
    assert!(
        done.contains("First") && done.contains("Seq/S1"),
        "{done:?}"
    );
    assert!(
        !done.contains("Seq/S2") && !done.contains("Seq"),
        "the failure chain is not recorded: {done:?}"
    );

    assert_eq!(sb.rerun_fixed(), names(&["S2", "S3", "Last"]));
}

#[test]
fn restart_unit_sequence_runs_again_whole_but_steps_before_it_do_not() {
    let yaml = package_yaml(
        "unit",
        CKPT,
        r#"  - { name: Step1, type: process, command: "echo Step1 >> ledger.txt" }
  - { name: Step2, type: process, command: "echo Step2 >> ledger.txt" }
  - name: Unit
    type: sequence
    restart_unit: true
    fail_package_on_failure: true
    tasks:
      - { name: Step3, type: process, command: "echo Step3 >> ledger.txt" }
      - { name: Step4, type: process, command: "echo Step4 >> ledger.txt; test -f fixed" }
"#,
    );
    let sb = Sandbox::with_package(&yaml);

    sb.run().output().exit(1);
    assert_eq!(
        sb.take_ledger(),
        names(&["Step1", "Step2", "Step3", "Step4"])
    );
    let done = completed_paths(&sb.show("r.ckpt"));
    assert_eq!(
        done.into_iter().collect::<Vec<_>>(),
        names(&["Step1", "Step2"]),
        "children of a restart unit are not recorded"
    );

    assert_eq!(sb.rerun_fixed(), names(&["Step3", "Step4"]));
}

#[test]
fn environment_binding_of_the_first_run_is_reused_on_restart_and_a_new_value_ignored() {
    let yaml = fail_then_report(
        "env_config",
        "  Day: { type: string, env: CHECKFLOW_E2E_DAY }\n",
        "",
        "@[User::Day]",
    );
    let sb = Sandbox::with_package(&yaml);
    sb.run().env("CHECKFLOW_E2E_DAY", "monday").output().exit(1);
    assert_eq!(sb.take_ledger(), names(&["Fail"]));

    restart_ignores(
        &sb,
        sb.run().env("CHECKFLOW_E2E_DAY", "tuesday"),
        "User::Day",
        "monday",
    );
}

#[test]
fn config_file_of_the_first_run_is_reused_on_restart_and_a_new_one_ignored() {
    let yaml = fail_then_report(
        "config_file",
        "  Target: { type: string, value: default }\n",
        "",
        "@[User::Target]",
    );
    let sb = Sandbox::with_package(&yaml);
    sb.write("first.yaml", "User::Target: staging\n");
    sb.write("second.yaml", "User::Target: production\n");
    sb.run().args(["--config", "first.yaml"]).output().exit(1);
    assert_eq!(sb.take_ledger(), names(&["Fail"]));

    restart_ignores(
        &sb,
        sb.run().args(["--config", "second.yaml"]),
        "User::Target",
        "staging",
    );
}

#[test]
fn result_is_recorded_durably_before_a_dependent_task_starts() {
    // B looks at the checkpoint from inside the run, before doing anything.
    let yaml = package_yaml(
        "durable",
        CKPT,
        r#"  - { name: A, type: process, command: "echo A >> ledger.txt" }
  - { name: B, type: process, command: "\"$CHECKFLOW_BIN\" checkpoint show r.ckpt --json > seen_by_b.json; echo B >> ledger.txt" }
  - { name: C, type: process, command: "echo C >> ledger.txt; test -f fixed", fail_package_on_failure: true }
"#,
    );
    let sb = Sandbox::with_package(&yaml);
    sb.run().env("CHECKFLOW_BIN", BIN).output().exit(1);
    assert_eq!(sb.take_ledger(), names(&["A", "B", "C"]));
    let seen: serde_json::Value =
        serde_json::from_str(&sb.read("seen_by_b.json")).expect("B saw a readable checkpoint");
    assert_eq!(
        completed_of(&seen),
        vec![("A".to_owned(), "success".to_owned())],
        "A must be recorded before B starts"
    );
}
