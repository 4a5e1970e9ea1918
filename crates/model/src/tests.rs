//! Unit tests of loading: good files, and errors with positions.

use super::*;
use std::path::Path;

fn p(text: &str) -> Result<PackageDef, LoadError> {
    parse(Path::new("pkg.yaml"), text)
}

#[test]
fn loads_a_small_package() {
    let def = p(r#"
id: 0b6f4d1e-7c1a-4a8e-9a53-2d2f1f6e9c11
name: demo
checkpoint: { file: state/x.ckpt, usage: if_exists, save: true }
variables:
  Counter: { type: int32, value: 0 }
tasks:
  - { name: Stage, type: process, command: "echo hi", fail_package_on_failure: true }
  - name: Loop
    type: foreach
    items: [a, b]
    map: [User::Item]
    tasks:
      - { name: Count, type: expression, expr: '@[User::Counter] = @[User::Counter] + 1', after: [{ task: X, on: failure }] }
"#)
    .expect("loads");
    assert_eq!(def.name.value, "demo");
    assert_eq!(def.tasks.len(), 2);
    let inner = def.tasks[1].value.tasks.as_ref().expect("children");
    let after = inner[0].value.after.as_ref().expect("after");
    assert_eq!(
        after.value[0],
        AfterDef::Full(ConstraintDef {
            task: "X".into(),
            on: On::Failure,
            expr: None
        })
    );
    assert_eq!(pos_of(&def.tasks[1]).line, 9);
}

#[test]
fn unknown_key_names_line_and_column() {
    let err = p("id: x\nname: n\ntasks:\n  - name: A\n    type: process\n    commandd: echo\n")
        .expect_err("unknown key");
    let text = err.to_string();
    assert!(text.contains("pkg.yaml:6:"), "{text}");
    assert!(text.contains("commandd"), "{text}");
}

#[test]
fn wrong_type_is_located() {
    let err = p("id: x\nname: n\nmax_concurrent: lots\n").expect_err("wrong type");
    let text = err.to_string();
    assert!(text.contains("pkg.yaml:3:"), "{text}");
}

#[test]
fn duplicate_key_is_an_error() {
    let err = p("id: x\nname: n\nname: m\n").expect_err("duplicate");
    assert!(err.to_string().contains("pkg.yaml:3"), "{err}");
}

#[test]
fn malformed_yaml_is_an_error() {
    let err = p("id: x\nname: [unclosed\n").expect_err("bad yaml");
    assert!(matches!(err, LoadError::Syntax { .. }));
}

#[test]
fn missing_file_is_io_error() {
    let err = load(Path::new("/nonexistent/pkg.yaml")).expect_err("missing");
    assert!(matches!(err, LoadError::Io { .. }));
}

#[test]
fn a_second_document_gets_a_message_for_users() {
    let err = p("id: x\nname: n\n---\nid: y\n").expect_err("two documents");
    let LoadError::Syntax {
        message, snippet, ..
    } = &err
    else {
        panic!("{err}")
    };
    assert!(message.contains("one YAML document"), "{message}");
    assert!(!snippet.contains("from_str_multiple"), "{snippet}");
}

#[test]
fn a_package_of_many_tasks_loads() {
    let mut text = String::from("id: x\nname: n\ntasks:\n");
    for i in 0..40_000 {
        text.push_str(&format!(
            "  - {{ name: T{i}, type: expression, expr: '@[User::N] = 1' }}\n"
        ));
    }
    let def = p(&text).expect("a 40,000-task package is within the parser's limits");
    assert_eq!(def.tasks.len(), 40_000);
}

#[test]
fn a_plain_null_key_is_the_bulk_insert_null_marker() {
    // Block style, flow style, and the other spellings of YAML's null.
    let def = p(r#"
id: 0b6f4d1e-7c1a-4a8e-9a53-2d2f1f6e9c11
name: demo
tasks:
  - name: L
    type: bulk_insert
    null: ""
  - { name: M, type: bulk_insert, null: "NULL", table: t }
  - { name: N, type: bulk_insert, NULL: x }
  - { name: O, type: bulk_insert, "null": q }
"#)
    .expect("loads");
    let nulls: Vec<Option<&str>> = def
        .tasks
        .iter()
        .map(|t| t.value.data().null.as_deref())
        .collect();
    assert_eq!(nulls, [Some(""), Some("NULL"), Some("x"), Some("q")]);
    assert_eq!(def.tasks[1].value.data().table.as_deref(), Some("t"));
}

#[test]
fn a_null_value_where_a_string_is_needed_is_still_an_error() {
    let err = p("id: 0b6f4d1e-7c1a-4a8e-9a53-2d2f1f6e9c11\nname: null\n").unwrap_err();
    let text = err.to_string();
    assert!(text.contains("pkg.yaml:2:7"), "{text}");
    assert!(text.contains("null"), "{text}");
}

#[test]
fn errors_after_a_quoted_null_key_keep_their_columns() {
    // `bogus` starts at column 44 of line 4 as the user wrote it.
    let text = "id: 0b6f4d1e-7c1a-4a8e-9a53-2d2f1f6e9c11\nname: demo\ntasks:\n  - { name: M, type: bulk_insert, null: x, bogus: 1 }\n";
    assert_eq!(&text.lines().nth(3).unwrap()[43..48], "bogus");
    let err = p(text).unwrap_err();
    let shown = err.to_string();
    assert!(shown.contains("pkg.yaml:4:44"), "{shown}");
    assert!(shown.contains("unknown field `bogus`"), "{shown}");
}

/// Plain null keys are found in one pass, however many there are (the
/// loader once parsed the whole file again for each one, and gave up after
/// 1,000).
#[test]
fn a_package_with_more_than_a_thousand_plain_null_keys_loads() {
    let mut text = String::from("id: 0b6f4d1e-7c1a-4a8e-9a53-2d2f1f6e9c11\nname: many\ntasks:\n");
    for i in 0..1001 {
        text.push_str(&format!(
            "  - {{ name: L{i}, type: bulk_insert, null: x }}\n"
        ));
    }
    let def = p(&text).expect("1,001 null markers load");
    assert_eq!(def.tasks.len(), 1001);
    assert!(
        def.tasks
            .iter()
            .all(|t| t.value.data().null.as_deref() == Some("x"))
    );
}

#[test]
fn a_tilde_key_is_a_null_key_too_and_columns_after_two_keys_are_right() {
    let def = p("id: 0b6f4d1e-7c1a-4a8e-9a53-2d2f1f6e9c11\nname: demo\ntasks:\n  - { name: M, type: bulk_insert, ~: x }\n")
        .expect("loads");
    assert_eq!(def.tasks[0].value.data().null.as_deref(), Some("x"));
    // Two null keys (the second in the `env` map) before an error on one line.
    let line = "  - { name: M, type: bulk_insert, null: x, env: { null: y }, bogus: 1 }";
    let col = line.find("bogus").expect("bogus") + 1;
    let text = format!("id: 0b6f4d1e-7c1a-4a8e-9a53-2d2f1f6e9c11\nname: demo\ntasks:\n{line}\n");
    let err = p(&text).unwrap_err().to_string();
    assert!(err.contains(&format!("pkg.yaml:4:{col}")), "{err}");
}

/// Every field the model has, once, with positions that differ.
const EVERY_FIELD: &str = r#"
id: 0b6f4d1e-7c1a-4a8e-9a53-2d2f1f6e9c11
name: every
description: all the fields
checkpoint: { file: x.ckpt, file_expr: '"a" + "b"', usage: always, save: true }
max_concurrent: 3
max_errors: 2
flow: parallel
fail_package_on_failure: true
variables:
  N: { type: int32, value: 1.5e3, description: n }
  S: { type: string, expr: '"s"', env: HOME, sensitive: true, read_only: true }
  O: { type: object, value: { a: [1, "two", null, true] } }
connections:
  db: { kind: sqlite, path: a.db }
  pg: { kind: postgres, url: "postgres://x", url_env: U, host: h, port: 5432, user: u, password_env: P }
tasks:
  - name: Loop
    type: foreach
    description: loop
    after: [A, { task: B, on: failure, expr: "1 == 1" }]
    after_logic: or
    disabled: false
    fail_package_on_failure: true
    fail_parent_on_failure: false
    max_errors: 4
    force_result: completion
    transaction: required
    restart_unit: true
    retries: 2
    retry_delay: 1s
    timeout: 5m
    expressions: { command: '"echo"' }
    flow: sequence
    items: [[a, 1], [b, 2.25]]
    files: { folder: in, pattern: "*.csv", recursive: true, retrieve: name }
    rows: User::O
    map: [User::S]
    checkpoint_iterations: true
    tasks:
      - { name: P, type: process, command: "echo hi", program: sh, args: [-c, x], cwd: /tmp, env: { A: b }, success_codes: [0, 3], stdout_var: S, stderr_var: S }
      - { name: E, type: expression, expr: '@[User::N] = 1' }
      - name: Q
        type: sql
        connection: db
        sql: "select 1 -- ünïcode \"quoted\"\n"
        params: [User::N]
        result: single_row
        result_vars: [User::N]
        result_var: User::O
      - { name: B, type: bulk_insert, connection: db, table: t, file: f.csv, delimiter: ";", header: true, quote: "'", null: "", columns: [a, b], truncate: true, batch_size: 10, resume: true }
      - { name: D, type: download, connection: pg, url: "http://x", sha256: abc, file: out }
      - { name: F, type: file, op: copy, from: a, to: b, overwrite: true }
      - { name: S, type: script, code: "print(1)", read_vars: [User::N], write_vars: [User::S] }
      - { name: C, type: package, path: child.yaml, bind: { X: "@[User::N]" } }
  - { name: FL, type: for_loop, init: '@[User::N] = 0', eval: '@[User::N] < 3', assign: '@[User::N] = @[User::N] + 1' }
"#;

#[test]
fn the_cache_codec_gives_back_exactly_what_was_parsed() {
    let mut def = p(EVERY_FIELD).expect("loads");
    let bytes = cache::encode(&mut def).expect("encodes");
    let back = cache::decode(&bytes).expect("decodes");
    assert_eq!(format!("{back:?}"), format!("{def:?}"));
    // Positions survive (a fingerprint-form round trip would lose them).
    let inner = back.tasks[0].value.tasks.as_ref().expect("children");
    assert_eq!(pos_of(&inner[2]).line, 43);
    assert_eq!(pos_of(&back.tasks[1]).column, 5);
}

#[test]
fn the_fingerprint_form_is_unchanged_by_the_cache_codec() {
    let mut def = p(EVERY_FIELD).expect("loads");
    let before = serde_json::to_string(&def.tasks[0].value).expect("serializes");
    cache::encode(&mut def).expect("encodes");
    let after = serde_json::to_string(&def.tasks[0].value).expect("serializes");
    assert_eq!(before, after);
    // The fingerprint form: values only, and no name, description, after or children.
    assert!(
        before.starts_with(r#"{"type":"foreach","disabled":false,"#),
        "{before}"
    );
    for left_out in ["\"name\":", "description", "after", "\"tasks\"", "Loop"] {
        assert!(!before.contains(left_out), "{left_out} in {before}");
    }
}

#[test]
fn cache_bytes_that_do_not_decode_are_an_error_not_a_panic() {
    let mut def = p(EVERY_FIELD).expect("loads");
    let bytes = cache::encode(&mut def).expect("encodes");
    // The package line alone is known before the tasks are decoded.
    let (head, rest) = cache::decode_head(&bytes).expect("the package line");
    assert!(head.tasks.is_empty());
    assert_eq!(
        head.checkpoint
            .expect("checkpoint")
            .value
            .file
            .expect("file")
            .value,
        "x.ckpt"
    );
    assert_eq!(cache::decode_tasks(rest).expect("tasks").len(), 2);
    assert!(cache::decode(&bytes[..bytes.len() / 2]).is_err());
    let nl = bytes.iter().position(|b| *b == b'\n').expect("two lines");
    assert!(cache::decode(&bytes[..nl]).is_err());
    assert!(cache::decode(b"{\"id\": 1}").is_err());
    assert!(cache::decode(b"").is_err());
}

#[test]
fn set_by_expression_names_the_properties_an_expression_sets() {
    let def = p(r#"
id: 0b6f4d1e-7c1a-4a8e-9a53-2d2f1f6e9c11
name: demo
tasks:
  - { name: Child, type: package, path: a.yaml, expressions: { path: '"b.yaml"' } }
  - { name: Plain, type: package, path: a.yaml }
"#)
    .expect("parses");
    let (child, plain) = (&def.tasks[0].value, &def.tasks[1].value);
    assert!(child.set_by_expression("path"));
    assert!(!child.set_by_expression("url"));
    assert!(!plain.set_by_expression("path"));
}

/// Every definition of EVERY_FIELD, parents first.
fn every_task(defs: &[Spanned<Box<TaskDef>>], out: &mut Vec<String>) {
    for d in defs {
        out.push(serde_json::to_string(&d.value).expect("serializes"));
        if let Some(c) = &d.value.tasks {
            every_task(c, out);
        }
    }
}

/// What EVERY_FIELD serializes to: its cache bytes (the faithful form), then
/// each definition's fingerprint form on a line of its own.
fn every_field_serialized() -> String {
    let mut def = p(EVERY_FIELD).expect("loads");
    let mut out = String::from_utf8(cache::encode(&mut def).expect("encodes")).expect("utf-8");
    let mut fps = Vec::new();
    every_task(&def.tasks, &mut fps);
    for f in fps {
        out.push('\n');
        out.push_str(&f);
    }
    out.push('\n');
    out
}

/// Fingerprints are stored in checkpoints and the cache is read back by later
/// builds: how a definition serializes must not change with how it is held
/// in memory. The golden file was written by the build whose `TaskDef` held
/// every field flat.
#[test]
fn task_definitions_serialize_exactly_as_the_golden_file_says() {
    let golden = include_str!("testdata/every_field.golden");
    let got = every_field_serialized();
    if std::env::var_os("CHECKFLOW_BLESS").is_some() {
        std::fs::write(
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/src/testdata/every_field.golden"
            ),
            &got,
        )
        .expect("write the golden file");
    }
    assert_eq!(got, golden);
}

#[test]
fn a_string_variable_keeps_a_number_as_written() {
    let def = p("id: x\nname: n\nvariables:\n  A: { type: string, value: 1.10 }\n  Bé: { type: string, value: 0x1F, sensitive: true }\n  C:\n    type: string\n    value: -2.50e3 # a comment\n  D: { type: double, value: 1.10 }\n  E: { type: string, value: \"1.10\" }\n  F: { type: string, value: 0123 }\n  G: { type: string, value: off }\n  H: { type: decimal, value: 0.1234567890123456789 }\ntasks: []\n")
        .expect("parses");
    let v = |n: &str| def.variables[n].value.value.as_ref().unwrap().value.clone();
    assert_eq!(v("A"), serde_json::json!("1.10"));
    assert_eq!(v("Bé"), serde_json::json!("0x1F"));
    assert_eq!(v("C"), serde_json::json!("-2.50e3"));
    assert_eq!(v("D"), serde_json::json!(1.1), "only string variables");
    assert_eq!(v("E"), serde_json::json!("1.10"));
    assert_eq!(v("F"), serde_json::json!("0123"));
    assert_eq!(v("G"), serde_json::json!("off"));
    assert_eq!(v("H"), serde_json::json!("0.1234567890123456789"));
}

#[test]
fn plain_scalar_at_stops_where_a_flow_entry_or_comment_does() {
    let text = "a: { v: 1.50, w: 2 }\nb: [3.0]\nc: 4 # x\né: { v: 5.0}\n";
    assert_eq!(plain_scalar_at(text, 1, 9), Some("1.50"));
    assert_eq!(plain_scalar_at(text, 2, 5), Some("3.0"));
    assert_eq!(plain_scalar_at(text, 3, 4), Some("4"));
    assert_eq!(plain_scalar_at(text, 4, 9), Some("5.0"));
    assert_eq!(plain_scalar_at(text, 1, 1), None, "not a number");
    assert_eq!(plain_scalar_at(text, 9, 1), None);
    assert_eq!(plain_scalar_at(text, 0, 0), None);
}
