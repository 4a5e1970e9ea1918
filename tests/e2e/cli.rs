//! The command line's contract (SPEC §3): exit codes, load errors with
//! locations, `eval`, `checkpoint show --json`, `plan --json`.

use serde_json::json;

use crate::support::*;

#[test]
fn missing_package_file_exits_4() {
    let sb = Sandbox::new();
    sb.cmd(["run", "nope.yaml"])
        .output()
        .exit(4)
        .stderr_has("nope.yaml");
    sb.cmd(["validate", "nope.yaml"]).output().exit(4);
}

#[test]
fn malformed_yaml_exits_5_with_file_line_and_column() {
    let sb = Sandbox::with_package(&format!(
        "id: {ID}\nname: x\ntasks:\n  - {{ name: A, type: process, command: \"true\"\n"
    ));
    let out = sb.run().output().exit(5).says("package.yaml:");
    assert!(
        out.all().contains("package.yaml:4:") || out.all().contains("package.yaml:5:"),
        "no line:col for the unclosed map\n{out:?}"
    );
}

#[test]
fn unknown_key_exits_5_naming_file_line_and_column() {
    let sb = Sandbox::with_package(&format!(
        "id: {ID}\nname: x\ntasks:\n  - name: A\n    type: process\n    comand: \"true\"\n"
    ));
    sb.run()
        .output()
        .exit(5)
        .says("package.yaml:6:5")
        .says("comand");
}

#[test]
fn unknown_after_target_exits_5_naming_it() {
    let sb = Sandbox::with_package(&format!(
        r#"
id: {ID}
name: x
tasks:
  - {{ name: A, type: process, command: "echo A >> ledger.txt" }}
  - {{ name: B, type: process, command: "echo B >> ledger.txt", after: [Nowhere] }}
"#
    ));
    sb.run()
        .output()
        .exit(5)
        .says("Nowhere")
        .says("package.yaml:");
    assert!(sb.ledger().is_empty());
}

#[test]
fn precedence_cycle_exits_5() {
    let sb = Sandbox::with_package(&format!(
        r#"
id: {ID}
name: x
tasks:
  - {{ name: A, type: process, command: "echo A >> ledger.txt", after: [C] }}
  - {{ name: B, type: process, command: "echo B >> ledger.txt", after: [A] }}
  - {{ name: C, type: process, command: "echo C >> ledger.txt", after: [B] }}
"#
    ));
    sb.run().output().exit(5).says_ci("cycle");
    assert!(sb.ledger().is_empty());
}

#[test]
fn bad_option_exits_6() {
    let sb = Sandbox::with_package(&format!(
        "id: {ID}\nname: x\ntasks:\n  - {{ name: A, type: process, command: \"echo A >> ledger.txt\" }}\n"
    ));
    sb.run().args(["--restart", "sometimes"]).output().exit(6);
    sb.run().arg("--no-such-option").output().exit(6);
    sb.cmd(["frobnicate"]).output().exit(6);
    assert!(sb.ledger().is_empty());
}

#[test]
fn eval_json_prints_value_and_type() {
    let sb = Sandbox::new();
    let out = sb
        .cmd(["eval", "--json", "1 + 2"])
        .output()
        .exit(0)
        .stdout_has("DT_I4");
    assert_eq!(out.json(), json!({"value": 3, "type": "DT_I4"}));
    assert_eq!(out.stdout.trim(), r#"{"value":3,"type":"DT_I4"}"#);
}

#[test]
fn checkpoint_show_json_lists_package_id_results_and_variables() {
    let yaml = format!(
        r#"
id: {ID}
name: show
max_errors: 2
checkpoint: {{ file: show.ckpt, usage: if_exists, save: true }}
variables:
  Greeting: {{ type: string, value: hi }}
  N: {{ type: int32, value: 0 }}
tasks:
  - {{ name: Count, type: expression, expr: '@[User::N] = 5' }}
  - {{ name: Soft, type: process, command: "exit 1", after: [Count] }}
  - {{ name: Handler, type: process, command: "true", after: [{{ task: Soft, on: failure }}] }}
  - {{ name: Hard, type: process, command: "exit 1", fail_package_on_failure: true, after: [Handler] }}
"#
    );
    let sb = Sandbox::with_package(&yaml);
    sb.run().output().exit(1);

    let doc = sb.show("show.ckpt");
    assert_eq!(doc["package_id"], ID, "{doc:#}");
    let completed = completed_of(&doc);
    for expected in [
        ("Count", "success"),
        ("Soft", "failure"),
        ("Handler", "success"),
    ] {
        assert!(
            completed.contains(&(expected.0.to_owned(), expected.1.to_owned())),
            "{expected:?} not in {completed:?}"
        );
    }
    assert!(!completed.iter().any(|(p, _)| p == "Hard"), "{completed:?}");
    assert_eq!(doc["variables"]["User::N"], json!(5), "{doc:#}");

    // The text form names the same things.
    sb.cmd(["checkpoint", "show", "show.ckpt"])
        .output()
        .exit(0)
        .says(ID)
        .says("Handler")
        .says("User::N");
}

#[test]
fn checkpoint_holds_every_variable_not_only_changed_ones() {
    let sb = Sandbox::with_package(&format!(
        r#"
id: {ID}
name: allvars
checkpoint: {{ file: v.ckpt, usage: if_exists, save: true }}
variables:
  Greeting: {{ type: string, value: hi }}
  N: {{ type: int32, value: 0 }}
tasks:
  - {{ name: Count, type: expression, expr: '@[User::N] = 5' }}
  - {{ name: Hard, type: process, command: "exit 1", fail_package_on_failure: true }}
"#
    ));
    sb.run().output().exit(1);
    let doc = sb.show("v.ckpt");
    assert_eq!(
        doc["variables"],
        json!({"User::Greeting": "hi", "User::N": 5}),
        "{doc:#}"
    );
}

#[test]
fn checkpoint_file_is_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::with_package(&format!(
        r#"
id: {ID}
name: mode
checkpoint: {{ file: m.ckpt, usage: if_exists, save: true }}
tasks:
  - {{ name: A, type: process, command: "exit 1", fail_package_on_failure: true }}
"#
    ));
    sb.run().output().exit(1);
    let mode = std::fs::metadata(sb.join("m.ckpt"))
        .expect("stat")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn plan_json_says_restore_for_recorded_and_run_for_the_rest_and_changes_nothing() {
    let yaml = format!(
        r#"
id: {ID}
name: plan
checkpoint: {{ file: p.ckpt, usage: if_exists, save: true }}
tasks:
  - {{ name: A, type: process, command: "echo A >> ledger.txt" }}
  - {{ name: B, type: process, command: "echo B >> ledger.txt; test -f fixed", fail_package_on_failure: true }}
  - {{ name: C, type: process, command: "echo C >> ledger.txt" }}
"#
    );
    let sb = Sandbox::with_package(&yaml);
    sb.run().output().exit(1);
    sb.take_ledger();
    let before = sb.read_bytes("p.ckpt");

    let plan = sb
        .cmd(["plan", "package.yaml", "--json"])
        .output()
        .exit(0)
        .json();
    let actions = plan_actions(&plan);
    assert_eq!(
        actions,
        vec![
            ("A".to_owned(), "restore".to_owned()),
            ("B".to_owned(), "run".to_owned()),
            ("C".to_owned(), "run".to_owned()),
        ]
    );
    let plan = sb
        .cmd(["plan", "package.yaml", "--json", "--rerun", "A"])
        .output()
        .exit(0)
        .json();
    assert_eq!(plan["executables"][0]["action"], "run", "{plan:#}");
    assert!(sb.ledger().is_empty(), "plan runs nothing");
    assert_eq!(sb.read_bytes("p.ckpt"), before, "plan changes nothing");
}

#[test]
fn duplicate_sibling_names_exit_5_with_the_location_of_the_second() {
    let sb = Sandbox::with_package(&format!(
        "id: {ID}\nname: x\ntasks:\n  - {{ name: A, type: process, command: \"true\" }}\n  - {{ name: A, type: process, command: \"true\" }}\n"
    ));
    sb.run().output().exit(5).says("package.yaml:5:").says("A");
}

#[test]
fn wrong_type_exits_5_with_file_line_and_column() {
    let sb = Sandbox::with_package(&format!(
        "id: {ID}\nname: x\nmax_concurrent: lots\ntasks:\n  - {{ name: A, type: process, command: \"true\" }}\n"
    ));
    sb.run().output().exit(5).says("package.yaml:3:");
}

#[test]
fn malformed_expression_exits_5_showing_the_expression() {
    let sb = Sandbox::with_package(&format!(
        r#"id: {ID}
name: x
variables:
  N: {{ type: int32, value: 0 }}
tasks:
  - {{ name: Bad, type: expression, expr: '@[User::N] = (1 + ' }}
"#
    ));
    sb.run().output().exit(5).says("(1 + ").says("^");
}

#[test]
fn every_validation_problem_is_reported_at_once() {
    let sb = Sandbox::with_package(&format!(
        r#"id: {ID}
name: x
tasks:
  - {{ name: A, type: process, command: "true", after: [Missing1] }}
  - {{ name: B, type: process, command: "true", after: [Missing2] }}
"#
    ));
    sb.run().output().exit(5).says("Missing1").says("Missing2");
}

#[test]
fn after_naming_a_task_in_another_container_exits_5() {
    let sb = Sandbox::with_package(&format!(
        r#"id: {ID}
name: x
tasks:
  - name: Box
    type: sequence
    tasks:
      - {{ name: Inner, type: process, command: "true" }}
  - {{ name: Outer, type: process, command: "true", after: [Inner] }}
"#
    ));
    sb.run().output().exit(5).says("Inner");
}
