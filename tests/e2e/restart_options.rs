//! What a restart reuses beyond the basic rules (docs/semantics.md §3, §5.5, §5.6):
//! recorded failures feeding constraints, `--rerun`, `--changed`,
//! iterations keyed by identity, sensitive values.

use crate::support::*;

const CKPT: &str = "checkpoint: { file: o.ckpt, usage: if_exists, save: true }\n";

/// A, B, then C, a restart point that fails until `fixed` exists.
fn abc(b_command: &str) -> String {
    package_yaml(
        "options",
        CKPT,
        &format!(
            r#"  - {{ name: A, type: process, command: "echo A >> ledger.txt" }}
  - {{ name: B, type: process, command: "{b_command}" }}
  - {{ name: C, type: process, command: "echo C >> ledger.txt; test -f fixed", fail_package_on_failure: true }}
"#
        ),
    )
}

/// [`abc`] with B writing `B`, run once: A, B and C ran, C failed.
fn failed_abc() -> Sandbox {
    let sb = Sandbox::with_package(&abc("echo B >> ledger.txt"));
    sb.run().output().exit(1);
    assert_eq!(sb.take_ledger(), names(&["A", "B", "C"]));
    sb
}

/// Changes B's definition (it writes `B2`) and makes `fixed`.
fn change_b_and_fix(sb: &Sandbox) {
    sb.write("package.yaml", &abc("echo B2 >> ledger.txt"));
    sb.touch("fixed");
}

#[test]
fn recorded_failure_feeds_its_successors_constraints_on_restart() {
    let yaml = package_yaml(
        "failure_paths",
        &(CKPT.to_owned()
            + r#"max_errors: 2
"#),
        r#"  - { name: Soft, type: process, command: "echo Soft >> ledger.txt; exit 1" }
  - { name: OnFailure, type: process, command: "echo OnFailure >> ledger.txt", after: [{ task: Soft, on: failure }] }
  - { name: OnSuccess, type: process, command: "echo OnSuccess >> ledger.txt", after: [Soft] }
  - { name: Hard, type: process, command: "echo Hard >> ledger.txt; test -f fixed", after: [OnFailure], fail_package_on_failure: true }
"#,
    );
    let sb = Sandbox::with_package(&yaml);
    sb.run().output().exit(1);
    assert_eq!(sb.take_ledger(), names(&["Soft", "OnFailure", "Hard"]));

    sb.touch("fixed");
    let out = sb.run_json().output();
    assert_eq!(sb.take_ledger(), names(&["Hard"]));
    let summary = out.summary();
    assert_eq!(status_of(&summary, "Soft"), "restored");
    assert_eq!(status_of(&summary, "OnFailure"), "restored");
    assert_eq!(
        status_of(&summary, "OnSuccess"),
        "not_run",
        "the restored failure still rules out the success path"
    );
}

#[test]
fn rerun_option_runs_a_recorded_task_again_and_everything_after_it() {
    let sb = failed_abc();

    sb.touch("fixed");
    sb.run().args(["--rerun", "B"]).output().exit(0);
    assert_eq!(sb.take_ledger(), names(&["B", "C"]));
}

#[test]
fn changed_definition_is_kept_with_a_warning_by_default() {
    let sb = failed_abc();
    change_b_and_fix(&sb);
    sb.run().output().exit(0).says("B").says_ci("changed");
    assert_eq!(sb.take_ledger(), names(&["C"]));
}

#[test]
fn changed_definition_with_changed_rerun_runs_it_and_what_follows() {
    let sb = failed_abc();
    change_b_and_fix(&sb);
    sb.run().args(["--changed", "rerun"]).output().exit(0);
    assert_eq!(sb.take_ledger(), names(&["B2", "C"]));
}

#[test]
fn changed_definition_with_changed_refuse_fails_before_anything_runs() {
    let sb = failed_abc();
    let before = sb.read_bytes("o.ckpt");
    change_b_and_fix(&sb);
    sb.run()
        .args(["--changed", "refuse"])
        .output()
        .exit(1)
        .says("B");
    assert!(sb.ledger().is_empty(), "nothing may run");
    assert_eq!(sb.read_bytes("o.ckpt"), before);
}

#[test]
fn description_change_is_not_a_changed_definition() {
    let sb = failed_abc();
    let edited = abc("echo B >> ledger.txt").replace(
        "{ name: B, type: process,",
        "{ name: B, description: now documented, type: process,",
    );
    assert_ne!(edited, abc("echo B >> ledger.txt"));
    sb.write("package.yaml", &edited);
    sb.touch("fixed");
    sb.run().args(["--changed", "refuse"]).output().exit(0);
    assert_eq!(sb.take_ledger(), names(&["C"]));
}

/// A package whose one task is a loop over `items` that records its
/// iterations ([`foreach_loop`]), running the command of the expression
/// `command` for each.
fn iterations_package(name: &str, items: &str, command: &str) -> String {
    package_yaml(
        name,
        &format!("{CKPT}{ITEM_VARIABLE}"),
        &foreach_loop(&format!("items: [{items}]"), "Item", true, command),
    )
}

#[test]
fn checkpoint_iterations_are_keyed_by_item_not_position_when_the_collection_changes() {
    let sb = Sandbox::with_package(&iterations_package(
        "iterations",
        "a, b, c, d",
        &echo_failing_at_c("Item"),
    ));
    sb.run().output().exit(1);
    assert_eq!(sb.take_ledger(), names(&["a", "b", "c"]));

    // A new item before the done ones, and b removed: a is skipped by
    // identity, the new item and the rest run.
    sb.write(
        "package.yaml",
        &iterations_package("iterations", "new, a, c, d", &echo_failing_at_c("Item")),
    );
    assert_eq!(sb.rerun_fixed(), names(&["new", "c", "d"]));
}

/// A loop over `items` whose work fails the second time it sees the same
/// item, until `fixed` exists.
fn equal_items_package(items: &str) -> String {
    iterations_package(
        "equal_items",
        items,
        r#""echo " + @[User::Item] + " >> ledger.txt; if test -f seen_" + @[User::Item] + " && test ! -f fixed; then exit 1; fi; touch seen_" + @[User::Item]"#,
    )
}

/// The `skipped_iterations` that `checkflow plan --json` shows for `Loop`.
fn plan_skips(sb: &Sandbox) -> u64 {
    executable_of(&sb.plan(), "Loop")["skipped_iterations"]
        .as_u64()
        .unwrap_or(0)
}

#[test]
fn restart_reruns_the_failed_one_of_two_equal_items() {
    let sb = Sandbox::with_package(&equal_items_package("a, a, b"));
    sb.run().output().exit(1);
    assert_eq!(sb.take_ledger(), names(&["a", "a"]));
    // One `a` finished: the restart skips one, and runs the other and b.
    assert_eq!(plan_skips(&sb), 1);
    assert_eq!(sb.rerun_fixed(), names(&["a", "b"]));
}

#[test]
fn equal_items_added_since_run_beyond_those_finished() {
    let sb = Sandbox::with_package(&equal_items_package("a, a, b"));
    sb.run().output().exit(1);
    assert_eq!(sb.take_ledger(), names(&["a", "a"]));
    // A third `a` now: one finished, so two run.
    sb.write("package.yaml", &equal_items_package("a, a, a, b"));
    sb.touch("fixed");
    assert_eq!(plan_skips(&sb), 1);
    sb.run().output().exit(0);
    assert_eq!(sb.take_ledger(), names(&["a", "a", "b"]));
}

#[test]
fn plan_counts_only_finished_files_that_are_still_there() {
    let yaml = package_yaml(
        "files",
        &format!("{CKPT}variables:\n  File: {{ type: string, value: \"\" }}\n"),
        &foreach_loop(
            r#"files: { folder: in, pattern: "*.txt", retrieve: name }"#,
            "File",
            true,
            &echo_failing_at_c("File"),
        ),
    );
    let sb = Sandbox::with_package(&yaml);
    for f in ["a", "b", "c"] {
        sb.write(&format!("in/{f}.txt"), f);
    }
    sb.run().output().exit(1);
    assert_eq!(sb.take_ledger(), names(&["a", "b", "c"]));
    assert_eq!(plan_skips(&sb), 2);

    // a.txt is gone: one finished file is left to skip, as the run does.
    std::fs::remove_file(sb.join("in/a.txt")).expect("remove in/a.txt");
    let text = sb.cmd(["plan", "package.yaml"]).output().exit(0);
    assert_eq!(plan_skips(&sb), 1);
    text.says("skips 1 finished item(s)");
    assert_eq!(sb.rerun_fixed(), names(&["c"]));
}

const SECRET: &str = "hunter2secretvalue";

#[test]
fn sensitive_values_are_sealed_with_the_key_masked_by_show_and_restored_on_restart() {
    let sb = Sandbox::with_package(&secret_package("o.ckpt"));
    let key = "0123456789abcdef0123456789abcdef";
    sb.run()
        .env("CHECKFLOW_KEY", key)
        .args(["--set", &format!("User::Token={SECRET}")])
        .output()
        .exit(1);
    let bytes = sb.read_bytes("o.ckpt");
    assert!(
        !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
        "the secret is in the checkpoint in clear"
    );
    let shown = sb
        .cmd(["checkpoint", "show", "o.ckpt", "--json"])
        .output()
        .exit(0);
    assert!(
        !shown.all().contains(SECRET),
        "show must mask it\n{shown:?}"
    );

    sb.touch("fixed");
    sb.run().env("CHECKFLOW_KEY", key).output().exit(0);
    assert_eq!(sb.read("out.txt").trim(), format!("{SECRET}-used"));
}

#[test]
fn sensitive_values_without_a_key_are_left_out_and_a_restart_needing_them_says_so() {
    let sb = Sandbox::with_package(&secret_package("o.ckpt"));
    sb.run()
        .args(["--set", &format!("User::Token={SECRET}")])
        .output()
        .exit(1);
    assert_eq!(sb.take_ledger(), names(&["Fail"]));
    let bytes = sb.read_bytes("o.ckpt");
    assert!(
        !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
        "the secret is in the checkpoint in clear"
    );

    sb.touch("fixed");
    // Token came from --set: it must be given again. And `Copy` changed it:
    // only the key could give back what it became, not the value given now.
    sb.run()
        .output()
        .exit(1)
        .says("CHECKFLOW_KEY")
        .says("--set User::Token=VALUE");
    sb.run()
        .args(["--set", &format!("User::Token={SECRET}")])
        .output()
        .exit(1)
        .says("CHECKFLOW_KEY")
        .says("a task changed");
    assert!(sb.ledger().is_empty(), "nothing may run");
    assert!(!sb.exists("out.txt"));
}

/// Without a key, a sensitive value no task changed is still known on a
/// restart: from the package, or from the configuration given again. The
/// first run warns that the values are left out.
#[test]
fn sensitive_values_no_task_changed_restart_without_a_key() {
    let sb = Sandbox::with_package(&package_yaml(
        "secrets_kept_as_given",
        &(CKPT.to_owned()
            + r#"variables:
  Token:  { type: string, value: "", env: SECRETS_TOKEN, sensitive: true }
  Salt:   { type: string, value: "pepper", sensitive: true }
"#),
        r#"  - { name: First, type: process, command: "echo First >> ledger.txt" }
  - { name: Gate, type: process, command: "echo Gate >> ledger.txt; test -f fixed", fail_package_on_failure: true }
  - name: Use
    type: process
    command: "true"
    expressions:
      command: '"echo " + @[User::Token] + "/" + @[User::Salt] + " >> out.txt"'
"#,
    ));
    sb.run()
        .env("SECRETS_TOKEN", SECRET)
        .env_remove("CHECKFLOW_KEY")
        .output()
        .exit(1)
        .says("CHECKFLOW_KEY is not set")
        .says("User::Token");
    assert_eq!(sb.take_ledger(), names(&["First", "Gate"]));
    let bytes = sb.read_bytes("o.ckpt");
    assert!(!bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()));

    sb.touch("fixed");
    // The configured one must be given again; the message says how.
    sb.run()
        .env_remove("SECRETS_TOKEN")
        .env_remove("CHECKFLOW_KEY")
        .output()
        .exit(1)
        .says("User::Token")
        .says("--set User::Token=VALUE");
    assert!(sb.ledger().is_empty(), "nothing may run");
    sb.run()
        .env("SECRETS_TOKEN", SECRET)
        .env_remove("CHECKFLOW_KEY")
        .output()
        .exit(0);
    assert_eq!(sb.take_ledger(), names(&["Gate"]));
    assert_eq!(sb.read("out.txt").trim(), format!("{SECRET}/pepper"));
    assert!(!sb.exists("o.ckpt"));
}

#[test]
fn restart_that_then_fails_without_a_restart_point_deletes_the_checkpoint() {
    let yaml = package_yaml(
        "second_failure",
        CKPT,
        r#"  - { name: A, type: process, command: "echo A >> ledger.txt" }
  - { name: B, type: process, command: "echo B >> ledger.txt; test -f fixed", fail_package_on_failure: true }
  - { name: C, type: process, command: "echo C >> ledger.txt; test -f fixed_c" }
"#,
    );
    let sb = Sandbox::with_package(&yaml);
    sb.run().output().exit(1);
    assert_eq!(sb.take_ledger(), names(&["A", "B"]));
    assert!(sb.exists("o.ckpt"));

    sb.touch("fixed");
    sb.run().output().exit(1);
    assert_eq!(sb.take_ledger(), names(&["B", "C"]));
    assert!(
        !sb.exists("o.ckpt"),
        "C has no restart point: the file is deleted"
    );

    sb.touch("fixed_c");
    sb.run().output().exit(0);
    assert_eq!(sb.take_ledger(), names(&["A", "B", "C"]));
}

#[test]
fn restart_point_among_several_failures_keeps_the_file_and_rerun_runs_only_the_restart_point() {
    let yaml = package_yaml(
        "two_failures",
        &(CKPT.to_owned()
            + r#"flow: parallel
max_errors: 5
"#),
        r#"  - { name: Flagged, type: process, command: "echo Flagged >> ledger.txt; test -f fixed", fail_package_on_failure: true }
  - { name: Plain, type: process, command: "echo Plain >> ledger.txt; sleep 0.5; test -f fixed" }
  - { name: Fine, type: process, command: "echo Fine >> ledger.txt; sleep 0.5" }
"#,
    );
    let sb = Sandbox::with_package(&yaml);
    sb.run().output().exit(1);
    assert_eq!(
        sorted(sb.take_ledger()),
        names(&["Fine", "Flagged", "Plain"])
    );
    assert!(
        sb.exists("o.ckpt"),
        "a restart point failed: the file is kept"
    );
    // Plain failed within max_errors without failing the package: recorded
    // as a failure. Flagged, the restart point, is not recorded.
    assert_eq!(
        sorted(
            sb.completed("o.ckpt")
                .into_iter()
                .map(|(p, r)| format!("{p}:{r}"))
                .collect()
        ),
        names(&["Fine:success", "Plain:failure"])
    );

    assert_eq!(sb.rerun_fixed(), names(&["Flagged"]));
}

#[test]
fn for_loop_is_an_atomic_unit_and_reruns_from_its_start() {
    let yaml = package_yaml(
        "for_loop",
        &(CKPT.to_owned()
            + r#"variables:
  i: { type: int32, value: 0 }
"#),
        r#"  - { name: Before, type: process, command: "echo Before >> ledger.txt" }
  - name: Loop
    type: for_loop
    init: '@[User::i] = 0'
    eval: '@[User::i] < 4'
    assign: '@[User::i] = @[User::i] + 1'
    fail_package_on_failure: true
    tasks:
      - name: Body
        type: process
        command: "echo placeholder"
        expressions:
          command: '"echo i" + (DT_WSTR, 5) @[User::i] + " >> ledger.txt; test " + (DT_WSTR, 5) @[User::i] + " -ne 2 || test -f fixed"'
"#,
    );
    let sb = Sandbox::with_package(&yaml);
    sb.run().output().exit(1);
    assert_eq!(sb.take_ledger(), names(&["Before", "i0", "i1", "i2"]));

    assert_eq!(sb.rerun_fixed(), names(&["i0", "i1", "i2", "i3"]));
}

#[test]
fn transacted_container_is_an_atomic_unit_and_reruns_whole() {
    let yaml = package_yaml(
        "transacted",
        CKPT,
        r#"  - { name: Before, type: process, command: "echo Before >> ledger.txt" }
  - name: Tx
    type: sequence
    transaction: required
    fail_package_on_failure: true
    tasks:
      - { name: T1, type: process, command: "echo T1 >> ledger.txt" }
      - { name: T2, type: process, command: "echo T2 >> ledger.txt; test -f fixed" }
"#,
    );
    let sb = Sandbox::with_package(&yaml);
    sb.run().output().exit(1);
    assert_eq!(sb.take_ledger(), names(&["Before", "T1", "T2"]));
    let done = completed_paths(&sb.show("o.ckpt"));
    assert_eq!(done.into_iter().collect::<Vec<_>>(), names(&["Before"]));

    assert_eq!(sb.rerun_fixed(), names(&["T1", "T2"]));
}

/// A script file an earlier task writes is absent when the first run
/// validates and present when the restart does: that is not a change of the
/// script task (a fingerprint covers the definition, not the files it names).
#[test]
fn a_script_file_written_by_an_earlier_task_is_not_a_change_on_restart() {
    let sb = Sandbox::with_package(&package_yaml(
        "generated",
        &(CKPT.to_owned()
            + r#"variables:
  N: { type: int32, value: 0 }
"#),
        r#"  - { name: Generate, type: process, command: "printf 'N = N + 1;' > gen.rhai" }
  - { name: Compute, type: script, file: gen.rhai, write_vars: [User::N], after: [Generate] }
  - { name: C, type: process, command: "echo C >> ledger.txt; test -f fixed", fail_package_on_failure: true, after: [Compute] }
"#,
    ));
    sb.run().output().exit(1);
    sb.take_ledger();
    sb.touch("fixed");
    sb.run().args(["--changed", "refuse"]).output().exit(0);
    assert_eq!(sb.take_ledger(), names(&["C"]));
}
