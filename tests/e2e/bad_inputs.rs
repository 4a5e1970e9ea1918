//! Hostile input, through the real binary: a catalogue of bad packages, bad
//! command lines, missing files and damaged checkpoints. Each test pins the
//! exit code (docs/semantics.md §7), the words of the message (file, line and column for a
//! package file) and that nothing ran. None may panic.
//!
//! The cases that `cli.rs` and `checkpoint_rules.rs` already cover (a missing
//! package, an unclosed map, a misspelt task key, the three-task cycle, a
//! mid-file bit flip...) are not repeated here; these are their neighbours.

use std::fs;
use std::io::Write;

use crate::support::*;

/// A package with the standard `id` and `name` on lines 1 and 2: `body`
/// starts on line 3.
fn pkg(body: &str) -> String {
    format!("id: {ID}\nname: bad\n{body}")
}

/// The caret line under a snippet line holding `expr` points at `expr`'s
/// character number `at` (0-based).
#[track_caller]
fn caret_under(out: &Output, expr: &str, at: usize) {
    let all = out.all();
    let lines: Vec<&str> = all.lines().collect();
    let i = lines
        .iter()
        .position(|l| l.ends_with(expr) && l.contains('|'))
        .unwrap_or_else(|| panic!("no snippet line showing {expr:?}\n{out:?}"));
    let start = lines[i].len() - expr.len();
    let caret = lines
        .get(i + 1)
        .and_then(|l| l.find('^'))
        .unwrap_or_else(|| panic!("no caret under {expr:?}\n{out:?}"));
    assert_eq!(caret, start + at, "caret misplaced under {expr:?}\n{out:?}");
}

const ECHO_A: &str = r#"{ name: A, type: process, command: "echo A >> ledger.txt" }"#;

// ---------------------------------------------------------------- malformed YAML

#[test]
fn tab_used_for_indentation_is_a_load_error_on_its_line() {
    rejected(&pkg(&format!("tasks:\n\t- {ECHO_A}\n")), "4:", &["tabs"]);
}

#[test]
fn unclosed_flow_sequence_is_a_load_error_at_its_bracket() {
    rejected(
        &pkg(&format!("tasks: [ {ECHO_A}\n")),
        "3:8",
        &["unclosed bracket"],
    );
}

#[test]
fn key_indented_deeper_than_its_siblings_is_a_load_error_where_it_goes_wrong() {
    rejected(
        &pkg("tasks:\n  - name: A\n     type: process\n    command: \"echo A >> ledger.txt\"\n"),
        "5:10",
        &["mapping values are not allowed"],
    );
}

#[test]
fn list_where_a_map_is_expected_is_a_load_error_at_the_list() {
    rejected(
        &pkg(&format!(
            "checkpoint: [a.ckpt, always]\ntasks:\n  - {ECHO_A}\n"
        )),
        "3:13",
        &["mapping"],
    );
}

#[test]
fn map_where_the_task_list_is_expected_is_a_load_error_at_the_map() {
    rejected(&pkg(&format!("tasks: {ECHO_A}\n")), "3:8", &["sequence"]);
}

#[test]
fn package_file_holding_a_list_is_a_load_error_at_its_start() {
    rejected("- a\n- b\n", "1:1", &["mapping"]);
}

#[test]
fn empty_package_file_is_a_load_error() {
    rejected("", "1:1", &["end of input"]);
}

#[test]
fn second_yaml_document_in_the_package_is_a_load_error_at_its_start() {
    let out = rejected(
        &pkg(&format!("tasks:\n  - {ECHO_A}\n---\nid: 2\n")),
        "6:1",
        &["document"],
    );
    assert!(!out.all().contains("from_str"), "library advice\n{out:?}");
}

#[test]
fn yaml_nested_deeper_than_the_limit_is_a_load_error_saying_so_in_words() {
    let deep = format!("{}1{}", "[".repeat(70), "]".repeat(70));
    let out = rejected(
        &pkg(&format!(
            "variables:\n  O: {{ type: object, value: {deep} }}\ntasks:\n  - {ECHO_A}\n"
        )),
        "4:",
        &["the YAML nests deeper than 64 levels"],
    );
    assert!(!out.all().contains("budget"), "library words\n{out:?}");
}

#[test]
fn yaml_whose_aliases_expand_past_the_limit_is_a_load_error_saying_so_in_words() {
    // 1,001 aliases of a 1,000-item anchor: a million copies to replay. The
    // long comment raises the limits that grow with the file's size, so the
    // copies are the first limit reached.
    let items = vec!["x"; 1000].join(", ");
    let aliases = vec!["*big"; 1001].join(", ");
    let padding = "#".repeat(2_000_000);
    let out = rejected(
        &pkg(&format!(
            "variables:\n  O: {{ type: object, value: {{ a: &big [{items}], b: [{aliases}] }} }}\ntasks:\n  - {ECHO_A}\n{padding}\n"
        )),
        "4:",
        &["the YAML's aliases expand to more than 1000000"],
    );
    assert!(!out.all().contains("budget"), "library words\n{out:?}");
}

// ---------------------------------------------------------------- wrong types

#[test]
fn string_for_an_integer_task_field_is_a_load_error_at_the_value() {
    rejected(
        &pkg(
            "tasks:\n  - name: A\n    type: process\n    command: \"echo A >> ledger.txt\"\n    retries: twice\n",
        ),
        "7:14",
        &["`retries`: expected a whole number, found `twice`"],
    );
}

#[test]
fn yaml_1_1_word_for_a_boolean_field_is_a_load_error_naming_the_field() {
    // The line is long: the snippet shows part of it, and its `-->` still
    // gives the column in the file.
    let out = rejected(
        &pkg(
            "tasks:\n  - { name: A, type: process, command: \"echo A >> ledger.txt\", disabled: yes }\n",
        ),
        "4:",
        &["`disabled`: expected a boolean (true or false), found `yes`"],
    );
    assert!(out.all().contains(" --> package.yaml:4:74"), "{out:?}");
}

#[test]
fn map_for_the_after_list_is_a_load_error_at_the_map() {
    rejected(
        &pkg(&format!(
            "tasks:\n  - {ECHO_A}\n  - {{ name: B, type: process, command: \"true\", after: {{ task: A }} }}\n"
        )),
        "5:55",
        &["sequence"],
    );
}

#[test]
fn list_for_the_package_name_is_a_load_error_at_the_list() {
    rejected(
        &format!("id: {ID}\nname: [a, b]\ntasks:\n  - {ECHO_A}\n"),
        "2:7",
        &["string"],
    );
}

#[test]
fn word_for_a_boolean_field_is_a_load_error_at_the_word() {
    rejected(
        &pkg(&format!(
            "checkpoint: {{ file: a.ckpt, save: sometimes }}\ntasks:\n  - {ECHO_A}\n"
        )),
        "3:35",
        &["`save`", "boolean", "`sometimes`"],
    );
}

#[test]
fn unknown_enum_value_is_a_load_error_listing_the_allowed_ones() {
    rejected(
        &pkg(&format!(
            "checkpoint: {{ file: a.ckpt, usage: sometimes }}\ntasks:\n  - {ECHO_A}\n"
        )),
        "3:36",
        &["sometimes", "never", "if_exists", "always"],
    );
}

#[test]
fn variable_value_that_does_not_fit_its_type_is_a_load_error_naming_both_types() {
    rejected(
        &pkg(&format!(
            "variables:\n  N: {{ type: int32, value: abc }}\ntasks:\n  - {ECHO_A}\n"
        )),
        "4:",
        &["\"N\"", "abc", "DT_I4"],
    );
}

#[test]
fn unknown_variable_type_is_a_load_error_listing_the_types() {
    rejected(
        &pkg(&format!(
            "variables:\n  N: {{ type: integer, value: 1 }}\ntasks:\n  - {ECHO_A}\n"
        )),
        "4:14",
        &["integer", "int32", "string"],
    );
}

// ---------------------------------------------------------------- unknown fields, at every level

#[test]
fn unknown_package_field_is_a_load_error_at_the_key() {
    rejected(
        &pkg(&format!("colour: blue\ntasks:\n  - {ECHO_A}\n")),
        "3:1",
        &["colour", "expected one of"],
    );
}

#[test]
fn unknown_checkpoint_field_is_a_load_error_at_the_key() {
    rejected(
        &pkg(&format!(
            "checkpoint: {{ file: a.ckpt, usage: if_exists, sav: true }}\ntasks:\n  - {ECHO_A}\n"
        )),
        "3:47",
        &["sav", "save"],
    );
}

#[test]
fn unknown_variable_field_is_a_load_error_at_the_key() {
    rejected(
        &pkg(&format!(
            "variables:\n  N: {{ type: int32, value: 0, readonly: true }}\ntasks:\n  - {ECHO_A}\n"
        )),
        "4:31",
        &["readonly", "read_only"],
    );
}

#[test]
fn unknown_connection_field_is_a_load_error_at_the_key() {
    rejected(
        &pkg(&format!(
            "connections:\n  dw: {{ kind: sqlite, path: dw.db, pasword: x }}\ntasks:\n  - {ECHO_A}\n"
        )),
        "4:36",
        &["pasword", "password_env"],
    );
}

#[test]
fn unknown_field_of_a_task_nested_in_a_container_is_a_load_error_at_the_key() {
    rejected(
        &pkg(
            "tasks:\n  - name: Box\n    type: sequence\n    tasks:\n      - name: A\n        type: process\n        command: \"echo A >> ledger.txt\"\n        retrys: 2\n",
        ),
        "10:9",
        &["retrys", "retries"],
    );
}

#[test]
fn unknown_field_of_a_constraint_map_is_a_load_error_at_the_key() {
    rejected(
        &pkg(&format!(
            "tasks:\n  - {ECHO_A}\n  - {{ name: B, type: process, command: \"true\", after: [ {{ task: A, when: success }} ] }}\n"
        )),
        "5:68",
        &["when", "task, on, expr"],
    );
}

#[test]
fn unknown_field_of_a_files_enumerator_is_a_load_error_at_the_key() {
    rejected(
        &pkg(
            "variables:\n  F: { type: string, value: '' }\ntasks:\n  - name: L\n    type: foreach\n    files: { folder: in, pattern: '*.csv', recursiv: true }\n    map: [User::F]\n    tasks:\n      - { name: A, type: process, command: \"echo A >> ledger.txt\" }\n",
        ),
        "8:44",
        &["recursiv", "recursive"],
    );
}

// ---------------------------------------------------------------- duplicates

#[test]
fn duplicate_names_inside_a_container_are_a_load_error_naming_the_container() {
    rejected(
        &pkg(&format!(
            "tasks:\n  - name: Box\n    type: sequence\n    tasks:\n      - {ECHO_A}\n      - {ECHO_A}\n"
        )),
        "8:",
        &["duplicate", "\"A\"", "\"Box\""],
    );
}

#[test]
fn duplicate_variable_key_is_a_load_error_at_the_second() {
    rejected(
        &pkg(&format!(
            "variables:\n  N: {{ type: int32, value: 0 }}\n  N: {{ type: int32, value: 1 }}\ntasks:\n  - {ECHO_A}\n"
        )),
        "5:3",
        &["duplicate", "N"],
    );
}

#[test]
fn same_variable_with_and_without_its_namespace_is_declared_twice() {
    rejected(
        &pkg(&format!(
            "variables:\n  N: {{ type: int32, value: 0 }}\n  User::N: {{ type: int32, value: 1 }}\ntasks:\n  - {ECHO_A}\n"
        )),
        "5:",
        &["User::N", "twice"],
    );
}

#[test]
fn duplicate_key_inside_a_task_is_a_load_error_at_the_second() {
    rejected(
        &pkg(
            "tasks:\n  - { name: A, type: process, command: \"true\", command: \"echo A >> ledger.txt\" }\n",
        ),
        "4:48",
        &["duplicate", "command"],
    );
}

#[test]
fn task_name_with_a_slash_is_a_load_error() {
    rejected(
        &pkg("tasks:\n  - { name: A/B, type: process, command: \"echo A >> ledger.txt\" }\n"),
        "4:13",
        &["A/B", "/"],
    );
}

#[test]
fn names_holding_control_characters_are_load_errors_that_print_them_escaped() {
    let yaml = format!(
        "id: {ID}\nname: \"pkg\\u0000\"\nvariables:\n  \"N\\r\": {{ type: int32, value: 0 }}\nconnections:\n  \"db\\x07\": {{ kind: sqlite, path: x.db }}\ntasks:\n  - {{ name: \"A\\nINFO forged line\", type: process, command: \"echo A >> ledger.txt\" }}\n  - {{ name: B, type: process, command: \"echo B >> ledger.txt\", after: [\"A\\nINFO forged line\"] }}\n"
    );
    let out = rejected(
        &yaml,
        "8:",
        &[
            "package.yaml:2:",
            r#"package name "pkg\0""#,
            r#"variable "N\r""#,
            r#"connection "db\u{7}""#,
            r#"task name "A\nINFO forged line""#,
            "control character",
        ],
    );
    let all = out.all();
    assert!(
        !all.lines().any(|l| l.starts_with("INFO forged line")),
        "a name forged a line\n{out:?}"
    );
    assert!(
        !all.contains('\r') && !all.contains('\0'),
        "raw control characters\n{out:?}"
    );
}

// ---------------------------------------------------------------- graph problems

#[test]
fn two_task_cycle_is_a_load_error_naming_both() {
    rejected(
        &pkg(
            "tasks:\n  - { name: A, type: process, command: \"echo A >> ledger.txt\", after: [B] }\n  - { name: B, type: process, command: \"echo B >> ledger.txt\", after: [A] }\n",
        ),
        "4:",
        &["cycle", "\"A\"", "\"B\""],
    );
}

#[test]
fn three_task_cycle_inside_a_container_is_a_load_error_naming_the_container() {
    rejected(
        &pkg(
            "tasks:\n  - name: Box\n    type: sequence\n    tasks:\n      - { name: A, type: process, command: \"echo A >> ledger.txt\", after: [C] }\n      - { name: B, type: process, command: \"echo B >> ledger.txt\", after: [A] }\n      - { name: C, type: process, command: \"echo C >> ledger.txt\", after: [B] }\n",
        ),
        "7:",
        &["cycle", "\"Box\"", "\"A\"", "\"B\"", "\"C\""],
    );
}

#[test]
fn task_after_itself_is_a_load_error() {
    rejected(
        &pkg(
            "tasks:\n  - { name: A, type: process, command: \"echo A >> ledger.txt\", after: [A] }\n",
        ),
        "4:",
        &["\"A\"", "itself"],
    );
}

#[test]
fn constraint_map_naming_an_unknown_task_is_a_load_error_listing_the_siblings() {
    rejected(
        &pkg(&format!(
            "tasks:\n  - {ECHO_A}\n  - {{ name: B, type: process, command: \"true\", after: [ {{ task: Ghost, on: failure }} ] }}\n"
        )),
        "5:",
        &["Ghost", "\"A\""],
    );
}

// ---------------------------------------------------------------- unknown variables in expressions

#[test]
fn unknown_variable_in_a_constraint_expression_is_a_load_error_with_a_caret() {
    let out = rejected(
        &pkg(&format!(
            "tasks:\n  - {ECHO_A}\n  - {{ name: B, type: process, command: \"true\", after: [ {{ task: A, expr: '@[User::Nope] > 1' }} ] }}\n"
        )),
        "5:",
        &["unknown variable", "User::Nope"],
    );
    caret_under(&out, "@[User::Nope] > 1", 0);
}

#[test]
fn unknown_variable_in_a_property_expression_is_a_load_error_naming_the_property() {
    let out = rejected(
        &pkg(
            "tasks:\n  - { name: A, type: process, command: \"echo A >> ledger.txt\", expressions: { command: '\"echo \" + @[User::Missing]' } }\n",
        ),
        "4:",
        &["\"A\"", "command", "unknown variable", "User::Missing"],
    );
    caret_under(&out, "\"echo \" + @[User::Missing]", 10);
}

#[test]
fn unknown_variable_in_a_for_loop_eval_is_a_load_error_naming_the_loop() {
    rejected(
        &pkg(
            "variables:\n  I: { type: int32, value: 0 }\ntasks:\n  - name: L\n    type: for_loop\n    init: '@[User::I] = 0'\n    eval: '@[User::J] < 3'\n    assign: '@[User::I] = @[User::I] + 1'\n    tasks:\n      - { name: A, type: process, command: \"echo A >> ledger.txt\" }\n",
        ),
        "9:11",
        &["\"L\"", "eval", "unknown variable", "User::J"],
    );
}

#[test]
fn unknown_variable_in_the_checkpoint_file_expr_is_a_load_error() {
    let out = rejected(
        &pkg(&format!(
            "checkpoint: {{ file_expr: '@[User::StateDir] + \"/x.ckpt\"', usage: if_exists, save: true }}\ntasks:\n  - {ECHO_A}\n"
        )),
        "3:26",
        &[
            "1 problem",
            "file_expr",
            "unknown variable",
            "User::StateDir",
        ],
    );
    // A rejected file_expr is still a file setting: no "needs `file`" on top.
    assert!(!out.all().contains("needs `file`"), "{out:?}");
}

#[test]
fn checkpoint_with_both_file_and_file_expr_is_one_load_error() {
    let out = rejected(
        &pkg(&format!(
            "checkpoint: {{ file: a.ckpt, file_expr: '\"b.ckpt\"', save: true }}\ntasks:\n  - {ECHO_A}\n"
        )),
        "3:40",
        &["1 problem", "`file`", "`file_expr`", "not both"],
    );
    assert!(!out.all().contains("needs `file`"), "{out:?}");
}

#[test]
fn unknown_variable_in_a_variable_expression_is_a_load_error_naming_the_variable() {
    rejected(
        &pkg(&format!(
            "variables:\n  InFile: {{ type: string, expr: '@[User::Dir] + \"/in.csv\"' }}\ntasks:\n  - {ECHO_A}\n"
        )),
        "4:33",
        &["\"InFile\"", "unknown variable", "User::Dir"],
    );
}

// ---------------------------------------------------------------- bad expressions

#[test]
fn expression_syntax_error_shows_the_expression_with_a_caret_at_the_fault() {
    let out = rejected(
        &pkg(
            "variables:\n  N: { type: int32, value: 0 }\ntasks:\n  - { name: A, type: expression, expr: '@[User::N] = 1 +* 2' }\n",
        ),
        "6:40",
        &["task \"A\"", "syntax error", "\"*\"", "column 17"],
    );
    caret_under(&out, "@[User::N] = 1 +* 2", 16);
}

#[test]
fn expression_type_error_names_both_types_and_the_operator() {
    rejected(
        &pkg(
            "variables:\n  N: { type: int32, value: 0 }\n  S: { type: string, value: a }\ntasks:\n  - { name: A, type: expression, expr: '@[User::S] = @[User::S] + @[User::N]' }\n",
        ),
        "7:40",
        &["type error", "DT_WSTR", "DT_I4", "\"+\"", "cast"],
    );
}

#[test]
fn assigning_a_string_to_an_int_variable_names_both_types() {
    rejected(
        &pkg(
            "variables:\n  N: { type: int32, value: 0 }\ntasks:\n  - { name: A, type: expression, expr: '@[User::N] = \"text\"' }\n",
        ),
        "6:40",
        &["DT_WSTR", "DT_I4", "User::N"],
    );
}

#[test]
fn constraint_expression_that_is_not_boolean_is_a_load_error_naming_its_type() {
    rejected(
        &pkg(&format!(
            "tasks:\n  - {ECHO_A}\n  - {{ name: B, type: process, command: \"true\", after: [ {{ task: A, expr: '1 + 2' }} ] }}\n"
        )),
        "5:",
        &["boolean", "1 + 2", "DT_I4"],
    );
}

#[test]
fn assignment_to_a_system_variable_is_a_load_error() {
    rejected(
        &pkg("tasks:\n  - { name: A, type: expression, expr: '@[System::PackageName] = \"x\"' }\n"),
        "4:40",
        &["read-only", "System::PackageName"],
    );
}

#[test]
fn assignment_to_a_read_only_user_variable_is_a_load_error() {
    rejected(
        &pkg(
            "variables:\n  N: { type: int32, value: 0, read_only: true }\ntasks:\n  - { name: A, type: expression, expr: '@[User::N] = 1' }\n",
        ),
        "6:40",
        &["read-only", "User::N"],
    );
}

// ---------------------------------------------------------------- task types and containers

#[test]
fn unknown_task_type_is_a_load_error_listing_the_known_types() {
    rejected(
        &pkg("tasks:\n  - { name: A, type: teleport, command: \"echo A >> ledger.txt\" }\n"),
        "4:22",
        &["teleport", "process", "expression", "sequence"],
    );
}

#[test]
fn unknown_task_type_is_the_only_error_its_successors_after_is_not_reported() {
    // "B" runs after "A", whose type is misspelt: the one problem is A's
    // type. B's `after: [A]` names a task that is there, and C, after B, is
    // tied to B, not to the definition before it.
    let sb = Sandbox::with_package(&pkg("tasks:\n\
         \x20 - { name: A, type: proces, command: \"echo A >> ledger.txt\" }\n\
         \x20 - { name: B, type: process, command: \"echo B >> ledger.txt\", after: [A] }\n\
         \x20 - { name: C, type: process, command: \"echo C >> ledger.txt\", after: [B] }\n"));
    let out = no_panic(sb.cmd(["validate", "package.yaml"]).output())
        .exit(5)
        .says("(1 problem)")
        .says("unknown type \"proces\"");
    assert!(
        !out.all().contains("runs after"),
        "a spurious error about `after`\n{out:?}"
    );
}

#[test]
fn field_of_another_task_type_is_a_load_error_listing_what_the_type_takes() {
    rejected(
        &pkg(
            "tasks:\n  - { name: A, type: process, command: \"echo A >> ledger.txt\", op: copy }\n",
        ),
        "4:",
        &["\"A\"", "`op`", "process", "command"],
    );
}

#[test]
fn tasks_under_a_task_that_is_not_a_container_is_a_load_error() {
    rejected(
        &pkg(&format!(
            "variables:\n  N: {{ type: int32, value: 0 }}\ntasks:\n  - {{ name: T, type: expression, expr: '@[User::N] = 1', tasks: [ {ECHO_A} ] }}\n"
        )),
        "6:",
        &["\"T\"", "`tasks`", "expression"],
    );
}

#[test]
fn for_loop_without_eval_is_a_load_error() {
    rejected(
        &pkg(
            "variables:\n  I: { type: int32, value: 0 }\ntasks:\n  - name: L\n    type: for_loop\n    init: '@[User::I] = 0'\n    assign: '@[User::I] = @[User::I] + 1'\n    tasks:\n      - { name: A, type: process, command: \"echo A >> ledger.txt\" }\n",
        ),
        "6:",
        &["\"L\"", "for_loop", "`eval`"],
    );
}

fn foreach_with(enumerators: &str) -> String {
    pkg(&format!(
        "variables:\n  F: {{ type: string, value: '' }}\ntasks:\n  - name: L\n    type: foreach\n{enumerators}    map: [User::F]\n    tasks:\n      - {ECHO_A}\n"
    ))
}

#[test]
fn foreach_with_two_enumerators_is_a_load_error() {
    rejected(
        &foreach_with("    items: [a, b]\n    files: { folder: in }\n"),
        "6:",
        &["\"L\"", "exactly one enumerator"],
    );
}

#[test]
fn foreach_without_an_enumerator_is_a_load_error() {
    rejected(
        &foreach_with(""),
        "6:",
        &["\"L\"", "exactly one enumerator", "items", "files", "rows"],
    );
}

#[test]
fn foreach_rows_naming_a_non_object_variable_is_a_load_error() {
    rejected(
        &pkg(&format!(
            "variables:\n  F: {{ type: string, value: '' }}\n  R: {{ type: int32, value: 0 }}\ntasks:\n  - name: L\n    type: foreach\n    rows: User::R\n    map: [User::F]\n    tasks:\n      - {ECHO_A}\n"
        )),
        "9:11",
        &["\"L\"", "object", "User::R"],
    );
}

#[test]
fn foreach_map_to_an_unknown_variable_is_a_load_error() {
    rejected(
        &pkg(&format!(
            "tasks:\n  - name: L\n    type: foreach\n    items: [a, b]\n    map: [User::Ghost]\n    tasks:\n      - {ECHO_A}\n"
        )),
        "7:10",
        &["\"L\"", "map", "User::Ghost"],
    );
}

#[test]
fn bad_timeout_is_a_load_error_at_the_value() {
    rejected(
        &pkg(
            "tasks:\n  - { name: A, type: process, command: \"echo A >> ledger.txt\", timeout: 5 parsecs }\n",
        ),
        "4:73",
        &["\"A\"", "timeout", "invalid duration", "5 parsecs"],
    );
}

#[test]
fn bad_retry_delay_is_a_load_error_at_the_value() {
    rejected(
        &pkg(
            "tasks:\n  - { name: A, type: process, command: \"echo A >> ledger.txt\", retries: 2, retry_delay: soon }\n",
        ),
        "4:89",
        &["\"A\"", "retry_delay", "invalid duration", "soon"],
    );
}

#[test]
fn package_id_that_is_not_a_uuid_is_a_load_error_at_the_id() {
    rejected(
        &format!("id: not-a-uuid\nname: bad\ntasks:\n  - {ECHO_A}\n"),
        "1:5",
        &["not-a-uuid", "UUID"],
    );
}

#[test]
fn package_without_an_id_is_a_load_error() {
    rejected(
        &format!("name: bad\ntasks:\n  - {ECHO_A}\n"),
        "",
        &["missing field `id`"],
    );
}

// ---------------------------------------------------------------- the package file itself (4)

#[test]
fn directory_given_as_the_package_exits_4_for_every_command() {
    let sb = Sandbox::new();
    fs::create_dir(sb.join("pkgdir")).expect("mkdir");
    for cmd in [
        &["run", "pkgdir"][..],
        &["validate", "pkgdir"],
        &["plan", "pkgdir"],
        &["graph", "pkgdir", "--format", "dot"],
    ] {
        no_panic(sb.cmd(cmd).output())
            .exit(4)
            .stderr_has("pkgdir")
            .says_ci("directory");
    }
}

#[test]
fn package_behind_a_symlink_loop_is_unreadable_and_exits_4() {
    // Tests run as root, so permissions cannot make a file unreadable; a
    // symlink loop can (ELOOP).
    let sb = Sandbox::new();
    std::os::unix::fs::symlink("loop2.yaml", sb.join("loop1.yaml")).expect("symlink");
    std::os::unix::fs::symlink("loop1.yaml", sb.join("loop2.yaml")).expect("symlink");
    no_panic(sb.cmd(["run", "loop1.yaml"]).output())
        .exit(4)
        .stderr_has("loop1.yaml")
        .says_ci("symbolic links");
}

#[test]
fn package_file_that_is_not_utf8_is_unreadable_and_exits_4() {
    let sb = Sandbox::new();
    fs::write(sb.join("package.yaml"), b"id: x\nname: \xff\xfe\n").expect("write");
    no_panic(sb.run().output())
        .exit(4)
        .stderr_has("package.yaml")
        .says("UTF-8");
}

#[test]
fn package_path_through_a_regular_file_exits_4() {
    let sb = Sandbox::new();
    sb.write("plain", "not a folder");
    no_panic(sb.cmd(["run", "plain/package.yaml"]).output())
        .exit(4)
        .stderr_has("plain/package.yaml");
}

// ---------------------------------------------------------------- bad command lines (6)

fn good_package() -> Sandbox {
    Sandbox::with_package(&pkg(&format!(
        "variables:\n  N: {{ type: int32, value: 0 }}\ntasks:\n  - {ECHO_A}\n"
    )))
}

#[test]
fn unknown_option_exits_6_for_every_command() {
    let sb = good_package();
    for cmd in [
        &["validate", "package.yaml", "--frobnicate"][..],
        &["plan", "package.yaml", "--frobnicate"],
        &["graph", "package.yaml", "--frobnicate"],
        &["checkpoint", "show", "x.ckpt", "--frobnicate"],
        &["eval", "1", "--frobnicate"],
    ] {
        no_panic(sb.cmd(cmd).output()).exit(6).says("--frobnicate");
    }
    assert!(sb.ledger().is_empty());
}

#[test]
fn set_without_an_equals_sign_exits_6_showing_the_expected_form() {
    let sb = good_package();
    no_panic(sb.run().args(["--set", "N5"]).output())
        .exit(6)
        .says("N5")
        .says("User::Name=VALUE");
    assert!(sb.ledger().is_empty());
}

#[test]
fn set_of_an_undeclared_variable_exits_6_naming_it() {
    let sb = good_package();
    no_panic(sb.run().args(["--set", "User::Nope=5"]).output())
        .exit(6)
        .says("User::Nope")
        .says("not declared");
    assert!(sb.ledger().is_empty());
}

#[test]
fn set_of_a_system_variable_exits_6_saying_it_is_read_only() {
    let sb = good_package();
    no_panic(sb.run().args(["--set", "System::PackageName=x"]).output())
        .exit(6)
        .says("System::PackageName")
        .says("read-only");
    assert!(sb.ledger().is_empty());
}

#[test]
fn set_value_that_does_not_fit_the_variable_type_exits_6_naming_both_types() {
    let sb = good_package();
    no_panic(sb.run().args(["--set", "User::N=abc"]).output())
        .exit(6)
        .says("User::N")
        .says("abc")
        .says("DT_I4");
    assert!(sb.ledger().is_empty());
}

#[test]
fn environment_value_that_is_not_utf8_exits_6_naming_both_variables() {
    use std::os::unix::ffi::OsStringExt;
    let sb = Sandbox::with_package(&pkg(&format!(
        "variables:\n  Day: {{ type: string, value: default-day, env: CHECKFLOW_E2E_DAY }}\ntasks:\n  - {ECHO_A}\n"
    )));
    let bad = std::ffi::OsString::from_vec(b"2026-11-\xff\xfe".to_vec());
    no_panic(sb.run().env_os("CHECKFLOW_E2E_DAY", bad).output())
        .exit(6)
        .says("CHECKFLOW_E2E_DAY")
        .says("User::Day")
        .says("UTF-8");
    assert!(sb.ledger().is_empty());
}

#[test]
fn restart_value_outside_deny_force_if_possible_exits_6_for_plan_too() {
    let sb = good_package();
    no_panic(
        sb.cmd(["plan", "package.yaml", "--restart", "later"])
            .output(),
    )
    .exit(6)
    .says("later")
    .says("if_possible");
}

#[test]
fn other_option_values_outside_their_sets_exit_6() {
    let sb = good_package();
    for (opt, val) in [
        ("--checkpointing", "sometimes"),
        ("--changed", "sometimes"),
        ("--log", "xml"),
        ("--max-concurrent", "zero"),
        ("--max-concurrent", "0"),
    ] {
        no_panic(sb.run().args([opt, val]).output())
            .exit(6)
            .says(opt)
            .says(val);
    }
    no_panic(
        sb.cmd(["graph", "package.yaml", "--format", "svg"])
            .output(),
    )
    .exit(6)
    .says("svg");
    no_panic(sb.run().arg("--checkpoint-file").output()).exit(6);
    assert!(sb.ledger().is_empty());
}

#[test]
fn rerun_of_a_path_the_package_does_not_have_exits_6_naming_it() {
    let sb = good_package();
    no_panic(sb.run().args(["--rerun", "Ghost/Task"]).output())
        .exit(6)
        .says("Ghost/Task");
    no_panic(
        sb.cmd(["plan", "package.yaml", "--rerun", "Ghost"])
            .output(),
    )
    .exit(6)
    .says("Ghost");
    assert!(sb.ledger().is_empty());
}

#[test]
fn config_file_that_does_not_exist_exits_6_naming_it() {
    let sb = good_package();
    no_panic(sb.run().args(["--config", "nope.yaml"]).output())
        .exit(6)
        .says("nope.yaml");
    assert!(sb.ledger().is_empty());
}

#[test]
fn config_file_that_is_not_a_map_exits_6_with_its_line_and_column() {
    let sb = good_package();
    sb.write("cfg.yaml", "User::N: [1\n");
    no_panic(sb.run().args(["--config", "cfg.yaml"]).output())
        .exit(6)
        .says("cfg.yaml")
        .says("line 1");
    sb.write("cfg.yaml", "- a\n");
    no_panic(sb.run().args(["--config", "cfg.yaml"]).output())
        .exit(6)
        .says("cfg.yaml");
    let deep = format!("User::N: {}1{}\n", "[".repeat(70), "]".repeat(70));
    sb.write("cfg.yaml", &deep);
    no_panic(sb.run().args(["--config", "cfg.yaml"]).output())
        .exit(6)
        .says("cfg.yaml: line 1 column")
        .says("the YAML nests deeper than 64 levels");
    sb.write("cfg.yaml", "User::Ghost: 1\n");
    no_panic(sb.run().args(["--config", "cfg.yaml"]).output())
        .exit(6)
        .says("User::Ghost");
    assert!(sb.ledger().is_empty());
}

// ---------------------------------------------------------------- missing files at run time (1)

#[test]
fn file_task_copying_a_missing_file_fails_the_package_naming_the_path() {
    let sb = Sandbox::with_package(&pkg(
        "tasks:\n  - { name: Copy, type: file, op: copy, from: data/missing.csv, to: out.csv }\n  - { name: After, type: process, command: \"echo After >> ledger.txt\" }\n",
    ));
    no_panic(sb.run().output())
        .exit(1)
        .says("Copy")
        .says("data/missing.csv");
    assert!(sb.ledger().is_empty(), "nothing runs after the failure");
    assert!(!sb.exists("out.csv"));
}

#[test]
fn file_task_moving_from_a_missing_folder_fails_the_package_naming_the_path() {
    let sb = Sandbox::with_package(&pkg(
        "tasks:\n  - { name: Move, type: file, op: move, from: nowhere/in.txt, to: out.txt }\n",
    ));
    no_panic(sb.run().output())
        .exit(1)
        .says("Move")
        .says("nowhere/in.txt");
}

#[test]
fn foreach_over_a_missing_folder_fails_the_loop_naming_the_folder() {
    let sb = Sandbox::with_package(&pkg(&format!(
        "variables:\n  F: {{ type: string, value: '' }}\ntasks:\n  - name: L\n    type: foreach\n    files: {{ folder: no_such_folder, pattern: '*.csv' }}\n    map: [User::F]\n    tasks:\n      - {ECHO_A}\n"
    )));
    no_panic(sb.run().output())
        .exit(1)
        .says("cannot list folder")
        .says("no_such_folder");
    assert!(sb.ledger().is_empty());
}

// ---------------------------------------------------------------- checkpoints (1)

const SAVE: &str = "checkpoint: { file: c.ckpt, usage: if_exists, save: true }";

/// A package whose A is recorded and whose B, a restart point, fails until
/// `fixed` exists.
fn restartable(id: &str, name: &str) -> String {
    format!(
        "id: {id}\nname: {name}\n{SAVE}\ntasks:\n  - {ECHO_A}\n  - {{ name: B, type: process, command: \"echo B >> ledger.txt; test -f fixed\", fail_package_on_failure: true }}\n"
    )
}

/// A sandbox holding `c.ckpt` with A recorded; the ledger is empty and
/// `fixed` exists, so a run that restarts from the file would succeed.
fn with_checkpoint() -> Sandbox {
    let sb = Sandbox::with_package(&restartable(ID, "restartable"));
    no_panic(sb.run().output()).exit(1);
    assert_eq!(sb.take_ledger(), names(&["A", "B"]));
    assert!(sb.exists("c.ckpt"));
    sb.touch("fixed");
    sb
}

/// Replaces `c.ckpt` with `bytes`, then asserts that a run fails before
/// anything runs, saying each word, and leaves the file as it was.
#[track_caller]
fn refused(sb: &Sandbox, bytes: &[u8], words: &[&str]) -> Output {
    fs::write(sb.join("c.ckpt"), bytes).expect("write the checkpoint");
    let mut out = no_panic(sb.run().output()).exit(1).says("c.ckpt");
    for w in words {
        out = out.says_ci(w);
    }
    assert!(sb.ledger().is_empty(), "nothing may run: {:?}", sb.ledger());
    assert_eq!(sb.read_bytes("c.ckpt"), bytes, "the file is left alone");
    out
}

#[test]
fn usage_never_refuses_to_replace_a_file_that_is_not_a_checkpoint() {
    let sb = Sandbox::with_package(&pkg(&format!(
        "checkpoint: {{ file: data.csv, usage: never, save: true }}\ntasks:\n  - {ECHO_A}\n"
    )));
    sb.write("data.csv", "id,amount\n1,10\n");
    no_panic(sb.run().output())
        .exit(1)
        .says("data.csv")
        .says("not a checkflow checkpoint");
    assert!(sb.ledger().is_empty(), "nothing may run");
    assert_eq!(
        sb.read("data.csv"),
        "id,amount\n1,10\n",
        "the file is left alone"
    );
    // --restart deny makes any usage never: the same rule.
    sb.write(
        "package.yaml",
        &sb.read("package.yaml")
            .replace("usage: never", "usage: if_exists"),
    );
    fs::write(sb.join("data.csv"), b"").expect("empty the file");
    no_panic(sb.run().args(["--restart", "deny"]).output())
        .exit(1)
        .says("not a checkflow checkpoint");
    assert!(sb.ledger().is_empty(), "nothing may run");
    assert_eq!(sb.read("data.csv"), "", "the file is left alone");
}

#[test]
fn checkpoint_folder_under_a_regular_file_fails_at_start_naming_the_path_and_the_cause() {
    let sb = Sandbox::with_package(&pkg(&format!(
        "checkpoint: {{ file: plain/sub/x.ckpt, usage: if_exists, save: true }}\ntasks:\n  - {ECHO_A}\n"
    )));
    sb.write("plain", "a regular file");
    no_panic(sb.run().output())
        .exit(1)
        .says("plain/sub/x.ckpt")
        .says_ci("not a directory");
    assert!(sb.ledger().is_empty(), "nothing may run");
    assert_eq!(sb.read("plain"), "a regular file");
}

#[test]
fn checkpoint_written_by_another_package_fails_naming_both_ids() {
    let sb = with_checkpoint();
    sb.write("other.yaml", &restartable(OTHER_ID, "other"));
    sb.write(
        "other.yaml",
        &sb.read("other.yaml").replace("c.ckpt", "other.ckpt"),
    );
    fs::remove_file(sb.join("fixed")).expect("rm fixed");
    no_panic(sb.cmd(["run", "other.yaml"]).output()).exit(1);
    sb.take_ledger();
    sb.touch("fixed");
    let before = sb.read_bytes("other.ckpt");

    no_panic(sb.run().args(["--checkpoint-file", "other.ckpt"]).output())
        .exit(1)
        .says("other.ckpt")
        .says(ID)
        .says(OTHER_ID);
    assert!(sb.ledger().is_empty(), "nothing may run");
    assert_eq!(
        sb.read_bytes("other.ckpt"),
        before,
        "the file is left alone"
    );
}

#[test]
fn checkpoint_cut_inside_its_frame_header_fails_before_anything_runs() {
    let sb = with_checkpoint();
    let bytes = sb.read_bytes("c.ckpt");
    refused(&sb, &bytes[..7], &["not a checkflow checkpoint", "short"]);
    refused(&sb, &bytes[..2], &["not a checkflow checkpoint"]);
    refused(&sb, b"", &["not a checkflow checkpoint"]);
}

#[test]
fn checkpoint_with_a_bit_flipped_in_its_header_fails_naming_the_checksum() {
    let sb = with_checkpoint();
    let mut bytes = sb.read_bytes("c.ckpt");
    bytes[20] ^= 0x20;
    refused(&sb, &bytes, &["checksum"]);
    let show = no_panic(sb.cmd(["checkpoint", "show", "c.ckpt"]).output());
    show.exit(1).says("c.ckpt");
}

#[test]
fn checkpoint_with_a_bit_flipped_in_its_length_field_fails_before_anything_runs() {
    let sb = with_checkpoint();
    let mut bytes = sb.read_bytes("c.ckpt");
    // Byte 7 is the high byte of the header's length: it now claims ~16 MiB.
    bytes[7] ^= 0x01;
    refused(&sb, &bytes, &["not a checkflow checkpoint"]);
}

/// CRC-32C (Castagnoli), bit by bit: enough for one small test frame.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A frame as crates/journal/src/frame.rs lays it out: "CFJ", version,
/// u32 LE length, CRC-32C of the length field then the payload, payload.
fn frame(version: u8, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len())
        .expect("small payload")
        .to_le_bytes();
    let mut crc_input = len.to_vec();
    crc_input.extend_from_slice(payload);
    let mut out = b"CFJ".to_vec();
    out.push(version);
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc32c(&crc_input).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

#[test]
fn crc32c_matches_the_frames_the_engine_writes() {
    let sb = with_checkpoint();
    let bytes = sb.read_bytes("c.ckpt");
    let len = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes")) as usize;
    assert_eq!(
        frame(bytes[3], &bytes[12..12 + len]),
        bytes[..12 + len].to_vec(),
        "the test's frame encoder must agree with the journal's"
    );
}

#[test]
fn checkpoint_from_a_newer_format_version_fails_saying_so() {
    let sb = with_checkpoint();
    let header = sb.read_bytes("c.ckpt");
    assert_eq!(header[3], 1, "this build writes format 1");
    let payload = format!(r#"{{"kind":"header","package_id":"{ID}","format":"from the future"}}"#);
    let future = frame(2, payload.as_bytes());
    refused(&sb, &future, &["newer", "format version 2"]);
    no_panic(sb.cmd(["checkpoint", "show", "c.ckpt"]).output())
        .exit(1)
        .says_ci("newer");
    no_panic(sb.cmd(["plan", "package.yaml"]).output())
        .exit(1)
        .says_ci("newer");
}

#[test]
fn checkpoint_with_format_version_zero_is_not_a_checkpoint() {
    let sb = with_checkpoint();
    let payload = format!(r#"{{"kind":"header","package_id":"{ID}"}}"#);
    refused(&sb, &frame(0, payload.as_bytes()), &["version 0"]);
}

#[test]
fn checkpoint_whose_valid_frame_holds_no_header_fails_before_anything_runs() {
    let sb = with_checkpoint();
    refused(
        &sb,
        &frame(1, b"[1, 2, 3]"),
        &["not a checkflow checkpoint"],
    );
    refused(
        &sb,
        &frame(1, b"\xff\xfe not json"),
        &["not a checkflow checkpoint"],
    );
}

#[test]
fn checkpoint_locked_by_another_process_fails_at_start_naming_the_holder_it_wrote() {
    let sb = with_checkpoint();
    let before = sb.read_bytes("c.ckpt");
    let mut lock = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(sb.join("c.ckpt.lock"))
        .expect("open the lock file");
    lock.write_all(b"pid 4242 on host bad-inputs-test since 2026-01-01T00:00:00Z")
        .expect("write the holder");
    lock.lock().expect("take the lock");

    no_panic(sb.run().output())
        .exit(1)
        .says("c.ckpt")
        .says("pid 4242 on host bad-inputs-test");
    assert!(sb.ledger().is_empty(), "nothing may run");
    assert_eq!(sb.read_bytes("c.ckpt"), before);

    lock.unlock().expect("release the lock");
    drop(lock);
    no_panic(sb.run().output()).exit(0);
    assert_eq!(sb.take_ledger(), names(&["B"]));
}

#[test]
fn sealed_sensitive_value_without_the_key_or_with_another_key_fails_the_restart() {
    let sb = Sandbox::with_package(&secret_package("c.ckpt"));
    let key = "0123456789abcdef0123456789abcdef";
    no_panic(
        sb.run()
            .env("CHECKFLOW_KEY", key)
            .args(["--set", "User::Token=s3cret"])
            .output(),
    )
    .exit(1);
    assert_eq!(sb.take_ledger(), names(&["Fail"]));
    sb.touch("fixed");
    let before = sb.read_bytes("c.ckpt");

    no_panic(sb.run().output())
        .exit(1)
        .says("CHECKFLOW_KEY")
        .says("User::Token");
    no_panic(
        sb.run()
            .env("CHECKFLOW_KEY", "another key entirely, not the one")
            .output(),
    )
    .exit(1)
    .says("CHECKFLOW_KEY")
    .says("User::Token");
    assert!(sb.ledger().is_empty(), "nothing may run");
    assert!(!sb.exists("out.txt"));
    assert_eq!(sb.read_bytes("c.ckpt"), before, "the file is left alone");

    no_panic(sb.run().env("CHECKFLOW_KEY", key).output()).exit(0);
    assert_eq!(sb.read("out.txt").trim(), "s3cret-used");
}

#[test]
fn changed_refuse_names_the_changed_task_inside_a_container_and_its_container() {
    let yaml = pkg(&format!(
        "{SAVE}\ntasks:\n  - name: Box\n    type: sequence\n    tasks:\n      - {ECHO_A}\n      - {{ name: B, type: process, command: \"echo B >> ledger.txt\" }}\n  - {{ name: C, type: process, command: \"echo C >> ledger.txt; test -f fixed\", fail_package_on_failure: true }}\n"
    ));
    let sb = Sandbox::with_package(&yaml);
    no_panic(sb.run().output()).exit(1);
    assert_eq!(sb.take_ledger(), names(&["A", "B", "C"]));
    sb.touch("fixed");
    let before = sb.read_bytes("c.ckpt");

    sb.write("package.yaml", &yaml.replace("echo B >>", "echo B2 >>"));
    no_panic(sb.run().args(["--changed", "refuse"]).output())
        .exit(1)
        .says("--changed refuse")
        .says("\"Box/B\"");
    no_panic(
        sb.cmd(["plan", "package.yaml", "--changed", "refuse"])
            .output(),
    )
    .exit(1)
    .says("\"Box/B\"");
    assert!(sb.ledger().is_empty(), "nothing may run");
    assert_eq!(sb.read_bytes("c.ckpt"), before, "the file is left alone");
}

// ---------------------------------------------------------------- checkpoint show, eval, graph

#[test]
fn checkpoint_show_of_a_missing_file_exits_1_saying_there_is_no_checkpoint() {
    // Exit 4 means the package file was not found (as dtexec's): a missing
    // checkpoint is an ordinary failure.
    let sb = Sandbox::new();
    no_panic(sb.cmd(["checkpoint", "show", "nope.ckpt"]).output())
        .exit(1)
        .stderr_has("no checkpoint at nope.ckpt");
    no_panic(
        sb.cmd(["checkpoint", "show", "nope.ckpt", "--json"])
            .output(),
    )
    .exit(1)
    .stderr_has("no checkpoint at nope.ckpt");
}

#[test]
fn checkpoint_show_of_a_garbage_file_exits_1_saying_it_is_not_a_checkpoint() {
    let sb = Sandbox::new();
    let garbage: Vec<u8> = (0u32..300)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    fs::write(sb.join("garbage.ckpt"), &garbage).expect("write");
    no_panic(sb.cmd(["checkpoint", "show", "garbage.ckpt"]).output())
        .exit(1)
        .says("garbage.ckpt")
        .says("not a checkflow checkpoint");
    // A package file is not a checkpoint either.
    sb.write("package.yaml", &pkg(&format!("tasks:\n  - {ECHO_A}\n")));
    no_panic(
        sb.cmd(["checkpoint", "show", "package.yaml", "--json"])
            .output(),
    )
    .exit(1)
    .says("not a checkflow checkpoint");
}

#[test]
fn eval_syntax_error_exits_5_with_a_caret_at_the_fault() {
    let sb = Sandbox::new();
    let out = no_panic(sb.cmd(["eval", "LEN(\"abc\" 2)"]).output())
        .exit(5)
        .says("syntax error");
    caret_under(&out, "LEN(\"abc\" 2)", 10);
}

#[test]
fn eval_type_error_exits_5_naming_both_types_and_the_operator() {
    let sb = Sandbox::new();
    no_panic(sb.cmd(["eval", "\"a\" + 1"]).output())
        .exit(5)
        .says("type error")
        .says("DT_WSTR")
        .says("DT_I4")
        .says("\"+\"");
    no_panic(sb.cmd(["eval", "--json", "TRUE * 2.5"]).output()).exit(5);
}

#[test]
fn eval_of_an_unknown_function_or_variable_exits_5_naming_it() {
    let sb = Sandbox::new();
    no_panic(sb.cmd(["eval", "FROBNICATE(1)"]).output())
        .exit(5)
        .says_ci("frobnicate");
    no_panic(sb.cmd(["eval", "@[User::Nope] + 1"]).output())
        .exit(5)
        .says("User::Nope");
}

#[test]
fn graph_of_an_invalid_package_exits_5_with_the_location() {
    let sb = Sandbox::with_package(&pkg(
        "tasks:\n  - { name: A, type: process, command: \"echo A >> ledger.txt\", after: [Ghost] }\n",
    ));
    for format in ["dot", "mermaid"] {
        let out = no_panic(
            sb.cmd(["graph", "package.yaml", "--format", format])
                .output(),
        )
        .exit(5)
        .says("package.yaml:4:")
        .says("Ghost");
        assert!(
            !out.stdout.contains("digraph") && !out.stdout.contains("flowchart"),
            "no graph for an invalid package\n{out:?}"
        );
    }
}
