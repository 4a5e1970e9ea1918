//! The command line's contract (docs/semantics.md §7): exit codes, load errors with
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
    let sb = Sandbox::with_package(&package_yaml(
        "x",
        "",
        r#"  - { name: A, type: process, command: "echo A >> ledger.txt" }
  - { name: B, type: process, command: "echo B >> ledger.txt", after: [Nowhere] }
"#,
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
    let sb = Sandbox::with_package(&package_yaml(
        "x",
        "",
        r#"  - { name: A, type: process, command: "echo A >> ledger.txt", after: [C] }
  - { name: B, type: process, command: "echo B >> ledger.txt", after: [A] }
  - { name: C, type: process, command: "echo C >> ledger.txt", after: [B] }
"#,
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
    let yaml = package_yaml(
        "show",
        &(checkpoint_at("show.ckpt")
            + r#"max_errors: 2
variables:
  Greeting: { type: string, value: hi }
  N: { type: int32, value: 0 }
"#),
        r#"  - { name: Count, type: expression, expr: '@[User::N] = 5' }
  - { name: Soft, type: process, command: "exit 1", after: [Count] }
  - { name: Handler, type: process, command: "true", after: [{ task: Soft, on: failure }] }
  - { name: Hard, type: process, command: "exit 1", fail_package_on_failure: true, after: [Handler] }
"#,
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
    let sb = Sandbox::with_package(&package_yaml(
        "allvars",
        &(checkpoint_at("v.ckpt")
            + r#"variables:
  Greeting: { type: string, value: hi }
  N: { type: int32, value: 0 }
"#),
        r#"  - { name: Count, type: expression, expr: '@[User::N] = 5' }
  - { name: Hard, type: process, command: "exit 1", fail_package_on_failure: true }
"#,
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
    let sb = Sandbox::with_package(&package_yaml(
        "mode",
        &checkpoint_at("m.ckpt"),
        r#"  - { name: A, type: process, command: "exit 1", fail_package_on_failure: true }
"#,
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
    let yaml = package_yaml("plan", &checkpoint_at("p.ckpt"), A_FAILING_B_C);
    let sb = Sandbox::with_package(&yaml);
    sb.run().output().exit(1);
    sb.take_ledger();
    let before = sb.read_bytes("p.ckpt");

    let plan = sb.plan();
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
    let sb = Sandbox::with_package(&package_yaml(
        "x",
        r#"variables:
  N: { type: int32, value: 0 }
"#,
        r#"  - { name: Bad, type: expression, expr: '@[User::N] = (1 + ' }
"#,
    ));
    sb.run().output().exit(5).says("(1 + ").says("^");
}

#[test]
fn every_validation_problem_is_reported_at_once() {
    let sb = Sandbox::with_package(&package_yaml(
        "x",
        "",
        r#"  - { name: A, type: process, command: "true", after: [Missing1] }
  - { name: B, type: process, command: "true", after: [Missing2] }
"#,
    ));
    sb.run().output().exit(5).says("Missing1").says("Missing2");
}

#[test]
fn after_naming_a_task_in_another_container_exits_5() {
    let sb = Sandbox::with_package(&package_yaml(
        "x",
        "",
        r#"  - name: Box
    type: sequence
    tasks:
      - { name: Inner, type: process, command: "true" }
  - { name: Outer, type: process, command: "true", after: [Inner] }
"#,
    ));
    sb.run().output().exit(5).says("Inner");
}

/// `checkflow checkpoint show f | head -1`: the reader goes away before the
/// output is written. That is no error (exit 0, nothing on stderr); a full
/// disk behind `> file` is one, with the reason, and never a panic (101).
#[test]
fn output_to_a_closed_pipe_is_quiet_and_to_a_full_disk_is_an_error() {
    let mut yaml = format!(
        "id: {ID}\nname: wide\ncheckpoint: {{ file: w.ckpt, usage: if_exists, save: true }}\ntasks:\n"
    );
    // Enough output that it cannot all fit in the pipe before the write.
    for i in 0..3000 {
        yaml.push_str(&format!(
            "  - {{ name: Task number {i:04} with a long name, type: expression, expr: '1 == 1' }}\n"
        ));
    }
    yaml.push_str(
        "  - { name: Stop, type: process, command: \"false\", fail_package_on_failure: true }\n",
    );
    let sb = Sandbox::with_package(&yaml);
    sb.run().output().exit(1);
    assert!(sb.exists("w.ckpt"));

    let closed = || {
        let (reader, writer) = std::io::pipe().expect("a pipe");
        drop(reader);
        writer
    };
    for args in [
        vec!["checkpoint", "show", "w.ckpt"],
        vec!["checkpoint", "show", "w.ckpt", "--json"],
        vec!["plan", "package.yaml"],
        vec!["graph", "package.yaml"],
        vec!["validate", "package.yaml"],
        vec!["eval", "1 + 1"],
    ] {
        let out = sb.cmd(args.clone()).output_to(closed());
        assert_eq!(out.code, Some(0), "{args:?} into a closed pipe\n{out:?}");
        assert!(
            out.stderr.is_empty(),
            "{args:?}: a reader that left is not an error\n{out:?}"
        );
        if std::path::Path::new("/dev/full").exists() {
            let full = std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .expect("open /dev/full");
            sb.cmd(args.clone())
                .output_to(full)
                .exit(1)
                .stderr_has("cannot write to standard output")
                .stderr_has("No space left");
        }
    }
}

/// YAML 1.1 would read `no` as false, `0123` as 123 and `1.10` as 1.1; a
/// string variable, a loop's items and a `--config` file keep what is
/// written (only `true` and `false` are booleans, as in YAML 1.2), and a
/// decimal keeps digits a binary float would lose.
#[test]
fn plain_scalars_keep_their_text() {
    let sb = Sandbox::with_package(&package_yaml(
        "typing",
        r#"variables:
  Zip:     { type: string, value: 0123 }
  Answer:  { type: string, value: no }
  Version: { type: string, value: 1.10 }
  Hex:     { type: string, value: 0x1F }
  Count:   { type: int32, value: 0042 }
  Flag:    { type: boolean, value: true }
  Amount:  { type: decimal, value: 12345678.1234567891 }
  Item:    { type: string }
  Conf:    { type: string }
"#,
        r#"  - name: Each
    type: foreach
    items: [y, n, off, 007]
    map: [User::Item]
    tasks:
      - name: Note
        type: process
        command: "true"
        expressions: { command: '"echo item " + @[User::Item] + " >> ledger.txt"' }
  - name: Show
    type: process
    command: "true"
    expressions:
      command: '"echo " + @[User::Zip] + " " + @[User::Answer] + " " + @[User::Version] + " " + @[User::Hex] + " " + (DT_WSTR, 10)@[User::Count] + " " + (DT_WSTR, 5)@[User::Flag] + " " + (DT_WSTR, 30)@[User::Amount] + " " + @[User::Conf] + " >> ledger.txt"'
"#,
    ));
    sb.write("conf.yaml", "User::Conf: off\n");
    sb.run().args(["--config", "conf.yaml"]).output().exit(0);
    assert_eq!(
        sb.ledger(),
        [
            "item y",
            "item n",
            "item off",
            "item 007",
            "0123 no 1.10 0x1F 42 True 12345678.1234567891 off"
        ]
    );
    // A boolean field written the YAML 1.1 way is an error, not a guess.
    let sb = Sandbox::with_package(&format!(
        "id: {ID}\nname: x\ntasks:\n  - {{ name: A, type: process, command: \"true\", disabled: yes }}\n"
    ));
    sb.run().output().exit(5).says("package.yaml:4");
}

/// dtexec's `/SET` syntax, both forms, as SSIS job scripts write it.
#[test]
fn set_accepts_dtexecs_property_path_forms() {
    let sb = Sandbox::with_package(&show_day_package("set", ""));
    for set in [
        r"\Package.Variables[User::Day].Properties[Value];2026-11-21",
        r"\Package.Variables[User::Day].Value;2026-11-21",
    ] {
        sb.run().args(["--set", set]).output().exit(0);
        assert_eq!(sb.take_ledger(), names(&["day=2026-11-21"]), "{set}");
    }
    sb.run()
        .args([
            "--set",
            r"\Package.Variables[User::Day].Properties[Description];x",
        ])
        .output()
        .exit(6)
        .says("only the Value property can be set");
}

/// Every SSIS data type evaluates and prints through `checkflow eval --json`, with the
/// examples of Microsoft's cast and data type pages.
#[test]
fn eval_json_handles_every_ssis_data_type() {
    let sb = Sandbox::new();
    let cases = [
        (
            r#"(DT_WSTR,8)(DT_DBTIME)"16:34:52""#,
            json!("16:34:52"),
            "DT_WSTR",
        ),
        (r#"(DT_DBTIME)"16:34:52""#, json!("16:34:52"), "DT_DBTIME"),
        (
            r#"(DT_DBTIMESTAMPOFFSET,3) "1999-10-11 20:34:52.123 -3:30" != (DT_DBDATE)"1999-10-12""#,
            json!(true),
            "DT_BOOL",
        ),
        (
            r#"(DT_DBTIMESTAMPOFFSET,0) "1999-10-12 02:00:00 +02:00" == (DT_DBDATE)"1999-10-12""#,
            json!(true),
            "DT_BOOL",
        ),
        (
            r#"(DT_DBTIME2, 5) "16:34:52.12345""#,
            json!("16:34:52.12345"),
            "DT_DBTIME2",
        ),
        (
            r#"(DT_DBTIMESTAMP2, 4) "1999-10-11 16:34:52.1234""#,
            json!("1999-10-11 16:34:52.1234"),
            "DT_DBTIMESTAMP2",
        ),
        (
            r#"(DT_DBTIMESTAMPOFFSET, 7) "1999-10-11 16:34:52.1234567 + 5:35""#,
            json!("1999-10-11 16:34:52.1234567 +05:35"),
            "DT_DBTIMESTAMPOFFSET",
        ),
        (
            r#"(DT_DBTIMESTAMP)(DT_DBTIMESTAMPOFFSET, 0) "2026-11-21 04:30:00 +02:00""#,
            json!("2026-11-21 02:30:00"),
            "DT_DBTIMESTAMP",
        ),
        (
            r#"(DT_FILETIME) "2026-11-21 04:30:00.005""#,
            json!("2026-11-21 04:30:00:005"),
            "DT_FILETIME",
        ),
        (r#"(DT_CY) 12.5 * 2"#, json!("25"), "DT_CY"),
        (
            r#"(DT_GUID) "{6f9619ff-8b86-d011-b42d-00c04fc964ff}""#,
            json!("{6F9619FF-8B86-D011-B42D-00C04FC964FF}"),
            "DT_GUID",
        ),
        (r#"(DT_BYTES, 2) "0A1B2C""#, json!("0a1b"), "DT_BYTES"),
        (r#"(DT_IMAGE) "0A1B""#, json!("0a1b"), "DT_IMAGE"),
        (r#"(DT_TEXT, 1252) "abc""#, json!("abc"), "DT_TEXT"),
        (
            r#"(DT_NTEXT) "abc" == (DT_NTEXT) "abc""#,
            json!(true),
            "DT_BOOL",
        ),
        (
            r#"DATEPART("hh", (DT_DBTIMESTAMPOFFSET, 0) "2026-11-21 04:30:00 +02:00")"#,
            json!(2),
            "DT_I4",
        ),
        (
            r#"DATEADD("dd", 1, (DT_DBTIMESTAMP2, 4) "1999-10-11 16:34:52.1234")"#,
            json!("1999-10-12 16:34:52.123"),
            "DT_DBTIMESTAMP",
        ),
        (r#"NULL(DT_DBTIME2, 3)"#, json!(null), "DT_DBTIME2"),
    ];
    for (expr, value, ty) in cases {
        let out = sb.cmd(["eval", "--json", expr]).output().exit(0);
        assert_eq!(
            out.json(),
            json!({"value": value, "type": ty}),
            "checkflow eval --json '{expr}'"
        );
    }
    // The plain form prints the text and the type.
    sb.cmd([
        "eval",
        r#"(DT_DBTIMESTAMPOFFSET, 7) "2026-11-21 04:30:00 +02:00""#,
    ])
    .output()
    .exit(0)
    .stdout_has("2026-11-21 04:30:00.0000000 +02:00 (DT_DBTIMESTAMPOFFSET)");
}

/// The casts and comparisons SSIS refuses fail at compile time (exit 5) naming both types.
#[test]
fn eval_refuses_what_ssis_refuses_naming_both_types() {
    let sb = Sandbox::new();
    let cases = [
        (
            r#"(DT_DBTIME)"16:34:52" == (DT_DBDATE)"1999-10-11""#,
            ["DT_DBTIME and DT_DBDATE", "cannot be compared with a date"],
        ),
        (
            r#"(DT_I4)(DT_GUID)"{6F9619FF-8B86-D011-B42D-00C04FC964FF}""#,
            ["cannot cast DT_GUID to DT_I4", "DT_GUID"],
        ),
        (
            r#"(DT_NTEXT)"a" < (DT_NTEXT)"b""#,
            ["DT_NTEXT", "only == and !="],
        ),
        (
            r#"YEAR((DT_DBTIMESTAMP2,4)"1999-10-11 16:34:52.1234")"#,
            ["YEAR does not accept a date literal", "DT_DBTIMESTAMP2"],
        ),
    ];
    for (expr, says) in cases {
        let out = sb.cmd(["eval", "--json", expr]).output().exit(5);
        for s in says {
            assert!(out.stderr.contains(s), "{expr}: {} lacks {s}", out.stderr);
        }
    }
}

/// A value of a type no variable has flows into variables through a cast (to a string) or
/// an implicit conversion (between date types), and the checkpoint keeps the results.
#[test]
fn values_of_the_other_ssis_types_reach_variables() {
    let yaml = package_yaml(
        "types",
        &(checkpoint_at("types.ckpt")
            + r#"variables:
  S: { type: string, value: "" }
  D: { type: datetime, value: "2000-01-01 00:00:00" }
  C: { type: decimal, value: "0" }
"#),
        r#"  - { name: Text, type: expression, expr: '@[User::S] = (DT_WSTR, 40) (DT_DBTIMESTAMPOFFSET, 7) "2026-11-21 04:30:00 +02:00"' }
  - { name: Utc, type: expression, expr: '@[User::D] = (DT_DBTIMESTAMPOFFSET, 3) "1999-10-11 20:34:52.123 -3:30"', after: [Text] }
  - { name: Money, type: expression, expr: '@[User::C] = (DT_CY) 12.5 * 2', after: [Utc] }
  - { name: Stop, type: process, command: "exit 1", fail_package_on_failure: true, after: [Money] }
"#,
    );
    let sb = Sandbox::with_package(&yaml);
    sb.run().output().exit(1);
    let doc = sb.show("types.ckpt");
    assert_eq!(
        doc["variables"]["User::S"],
        json!("2026-11-21 04:30:00.0000000 +02:00"),
        "{doc:#}"
    );
    assert_eq!(
        doc["variables"]["User::D"],
        json!("1999-10-12 00:04:52.123"),
        "{doc:#}"
    );
    assert_eq!(
        doc["variables"]["User::C"],
        json!("25.0000000000"),
        "{doc:#}"
    );
}
