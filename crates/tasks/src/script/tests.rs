//! Script task: validation through `plan::validate`, runs through a fake `RunCx`.

use super::*;
use crate::testcx::TestCx;
use checkflow_plan::{NodeKind, Plan};

const ID: &str = "0b6f4d1e-7c1a-4a8e-9a53-2d2f1f6e9c11";

/// A package folder with `package.yaml` holding these variables and tasks.
struct Pkg {
    dir: tempfile::TempDir,
}

impl Pkg {
    fn new(vars: &str, tasks: &str) -> Pkg {
        let dir = tempfile::tempdir().expect("temp dir");
        let yaml = format!("id: {ID}\nname: t\nvariables:\n{vars}\ntasks:\n{tasks}\n");
        std::fs::write(dir.path().join("package.yaml"), yaml).expect("write package");
        Pkg { dir }
    }

    fn write(&self, rel: &str, text: &str) {
        std::fs::write(self.dir.path().join(rel), text).expect("write file");
    }

    fn plan(&self) -> Result<Plan, String> {
        let pkg = checkflow_model::load(&self.dir.path().join("package.yaml"))
            .map_err(|e| e.to_string())?;
        checkflow_plan::validate(&pkg, &crate::registry()).map_err(|e| e.to_string())
    }
}

/// The problems validation reports, as one text.
fn problems(vars: &str, tasks: &str) -> String {
    match Pkg::new(vars, tasks).plan() {
        Ok(_) => panic!("expected validation errors"),
        Err(e) => e,
    }
}

fn action(plan: &Plan, name: &str) -> Arc<dyn Action> {
    let id = plan.find(name).expect("task exists");
    match &plan.node(id).kind {
        NodeKind::Task { action, .. } => action.clone(),
        _ => panic!("{name} is not a task"),
    }
}

/// Validates a package with one task `S` and runs it.
fn run(vars: &str, task: &str) -> (TestCx, Result<(), TaskError>) {
    let pkg = Pkg::new(vars, task);
    run_pkg(&pkg)
}

fn run_pkg(pkg: &Pkg) -> (TestCx, Result<(), TaskError>) {
    let plan = pkg.plan().unwrap_or_else(|e| panic!("invalid: {e}"));
    let mut cx = TestCx::new(pkg.dir.path(), &plan.vars);
    let r = action(&plan, "S").run(&mut cx);
    (cx, r)
}

fn scalar(v: VarValue) -> Value {
    match v {
        VarValue::Scalar(v) => v,
        VarValue::Object(j) => panic!("expected a scalar, got {j}"),
    }
}

const VARS: &str = r#"
  Count: { type: int32, value: 41 }
  Big:   { type: int64, value: 5 }
  Ratio: { type: double, value: 0.5 }
  Price: { type: decimal, value: "10.25" }
  Name:  { type: string, value: "world" }
  Flag:  { type: boolean, value: false }
  When:  { type: datetime, value: "2026-11-21 04:30:00" }
  Rows:  { type: object, value: [[1, "a"], [2, "b"]] }
  Out:   { type: string, value: "" }
  Fixed: { type: int32, value: 7, read_only: true }
"#;

#[test]
fn read_vars_are_visible_and_write_vars_are_written_back() {
    let (cx, r) = run(
        VARS,
        r#"
  - name: S
    type: script
    read_vars: [User::Name, Ratio, Price, Flag, When, Rows]
    write_vars: [User::Count, Out]
    code: |
      Count += 1;
      Out = `hello ${Name} ${Ratio * 2.0} ${Price + 1.0} ${!Flag} ${When} ${Rows[1][1]} ${Rows.len()}`;
"#,
    );
    r.expect("script runs");
    assert_eq!(scalar(cx.var("User::Count")), Value::I4(42));
    assert_eq!(
        scalar(cx.var("User::Out")),
        Value::WStr("hello world 1.0 11.25 true 2026-11-21 04:30:00 b 2".into())
    );
}

#[test]
fn values_convert_to_the_declared_type_on_the_way_back() {
    let (cx, r) = run(
        VARS,
        r#"
  - name: S
    type: script
    write_vars: [Count, Big, Ratio, Price, Name, Flag, When, Rows]
    code: |
      Count = "12";
      Big = 9007199254740993;
      Ratio = 3;
      Price = "12345678901234.123456789";
      Name = 5;
      Flag = true;
      When = "2027-01-02 03:04:05";
      Rows = #{ a: [1, 2.5, "x", ()], b: true };
"#,
    );
    r.expect("script runs");
    assert_eq!(scalar(cx.var("Count")), Value::I4(12));
    assert_eq!(scalar(cx.var("Big")), Value::I8(9007199254740993));
    assert_eq!(scalar(cx.var("Ratio")), Value::R8(3.0));
    assert_eq!(
        scalar(cx.var("Price")).to_string().trim_end_matches('0'),
        "12345678901234.123456789"
    );
    assert_eq!(scalar(cx.var("Name")), Value::WStr("5".into()));
    assert_eq!(scalar(cx.var("Flag")), Value::Bool(true));
    assert_eq!(scalar(cx.var("When")).to_string(), "2027-01-02 03:04:05");
    assert_eq!(
        cx.var("Rows"),
        VarValue::Object(serde_json::json!({"a": [1, 2.5, "x", null], "b": true}))
    );
}

#[test]
fn an_unchanged_decimal_is_not_rounded_through_f64() {
    let (cx, r) = run(
        r#"  D: { type: decimal, value: "12345678901234567.891" }"#,
        "  - { name: S, type: script, write_vars: [D], code: 'let x = D;' }",
    );
    r.expect("script runs");
    assert_eq!(
        scalar(cx.var("D")).to_string().trim_end_matches('0'),
        "12345678901234567.891"
    );
}

#[test]
fn a_value_that_does_not_convert_names_the_variable_and_both_types() {
    let (cx, r) = run(
        VARS,
        r#"  - { name: S, type: script, write_vars: [Count, Out], code: 'Out = "changed"; Count = "abc";' }"#,
    );
    let e = r.expect_err("conversion fails").message;
    assert!(e.contains("string \"abc\""), "{e}");
    assert!(e.contains("\"User::Count\""), "{e}");
    assert!(e.contains("DT_I4"), "{e}");
    // Nothing is written when one value is bad.
    assert_eq!(scalar(cx.var("Out")), Value::WStr(String::new()));

    let (_, r) = run(
        VARS,
        "  - { name: S, type: script, write_vars: [Count], code: 'Count = [1, 2];' }",
    );
    let e = r.expect_err("an array is no int").message;
    assert!(e.contains("array") && e.contains("DT_I4"), "{e}");
}

#[test]
fn read_only_script_variables_cannot_be_assigned() {
    let (cx, r) = run(
        VARS,
        "  - { name: S, type: script, read_vars: [Count], code: 'Count = 5;' }",
    );
    let e = r.expect_err("a read var is a constant").message;
    assert!(e.contains("line 1"), "{e}");
    assert!(e.contains("Count"), "{e}");
    assert_eq!(scalar(cx.var("Count")), Value::I4(41));
}

#[test]
fn null_goes_in_as_unit_and_unit_writes_null() {
    let null = VarValue::Scalar(Value::Null(DataType::I4));
    assert!(to_dynamic(&null).is_unit());
    let (cx, r) = run(
        "  M: { type: int32, value: 3 }",
        "  - { name: S, type: script, write_vars: [M], code: 'M = ();' }",
    );
    r.expect("script runs");
    assert!(scalar(cx.var("M")).is_null());
}

#[test]
fn print_and_debug_go_to_the_log() {
    let (cx, r) = run(
        VARS,
        "  - { name: S, type: script, read_vars: [Name], code: \"print(`hi ${Name}`);\\ndebug(1 + 1);\" }",
    );
    r.expect("script runs");
    assert_eq!(cx.lines(), vec!["hi world", "debug (line 2): 2"]);
}

#[test]
fn a_runtime_error_reports_its_line() {
    let (_, r) = run(
        VARS,
        "  - name: S\n    type: script\n    code: |\n      let a = 1;\n      let b = a / 0;\n",
    );
    let e = r.expect_err("division by zero").message;
    assert!(e.starts_with("script failed at line 2"), "{e}");
    assert!(e.to_lowercase().contains("division by zero"), "{e}");

    let (_, r) = run(
        VARS,
        "  - { name: S, type: script, code: 'throw \"bad input\";' }",
    );
    let e = r.expect_err("thrown").message;
    assert!(e.contains("bad input") && e.contains("line 1"), "{e}");
}

#[test]
fn cancellation_stops_a_runaway_script() {
    let pkg = Pkg::new(VARS, "  - { name: S, type: script, code: 'loop { }' }");
    let plan = pkg.plan().expect("valid");
    let mut cx = TestCx::new(pkg.dir.path(), &plan.vars);
    let token = cx.token.clone();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(200));
        token.cancel();
    });
    let t = std::time::Instant::now();
    let e = action(&plan, "S")
        .run(&mut cx)
        .expect_err("stopped")
        .message;
    stopper.join().expect("stopper");
    assert!(e.contains("was stopped"), "{e}");
    assert!(t.elapsed() < std::time::Duration::from_secs(10));
}

#[test]
fn string_and_array_sizes_are_capped() {
    let (_, r) = run(
        VARS,
        "  - { name: S, type: script, code: 'let s = \"x\"; loop { s += s; }' }",
    );
    let e = r.expect_err("string cap").message;
    assert!(e.to_lowercase().contains("length of string"), "{e}");

    let (_, r) = run(
        VARS,
        "  - { name: S, type: script, code: 'let a = [1]; loop { a += a; }' }",
    );
    let e = r.expect_err("array cap").message;
    assert!(e.to_lowercase().contains("size of array"), "{e}");
}

#[test]
fn the_sandbox_has_no_import_or_eval() {
    for code in ["import \"x\" as y;", "eval(\"1\");"] {
        let p = problems(
            VARS,
            &format!("  - {{ name: S, type: script, code: '{code}' }}"),
        );
        assert!(p.contains("`code` does not compile"), "{code}: {p}");
    }
}

#[test]
fn a_script_file_is_read_when_the_task_runs() {
    let pkg = Pkg::new(
        VARS,
        "  - { name: S, type: script, file: scripts/s.rhai, write_vars: [Count] }",
    );
    // Missing at validation is fine: an earlier task may write it.
    let plan = pkg.plan().expect("valid without the file");
    let mut cx = TestCx::new(pkg.dir.path(), &plan.vars);
    let e = action(&plan, "S")
        .run(&mut cx)
        .expect_err("no file")
        .message;
    assert!(
        e.contains("cannot read script file") && e.contains("s.rhai"),
        "{e}"
    );

    std::fs::create_dir_all(pkg.dir.path().join("scripts")).expect("mkdir");
    pkg.write("scripts/s.rhai", "Count = Count * 2;\n");
    let (cx, r) = run_pkg(&pkg);
    r.expect("runs");
    assert_eq!(scalar(cx.var("Count")), Value::I4(82));

    pkg.write("scripts/s.rhai", "let x = 1;\nlet y = ;\n");
    let (_, r) = run_pkg(&pkg);
    let e = r.expect_err("syntax error").message;
    assert!(
        e.contains("does not compile") && e.contains("line 2"),
        "{e}"
    );
}

#[test]
fn validation_reports_every_problem() {
    let p = problems(
        VARS,
        r#"
  - { name: Both, type: script, code: "1", file: x.rhai }
  - { name: Neither, type: script }
  - { name: Unknown, type: script, read_vars: [Nope], write_vars: [Nada], code: "1" }
  - { name: ReadOnly, type: script, write_vars: [Fixed, System::PackageName], code: "1" }
  - { name: Syntax, type: script, code: "let x = 1;\nlet y = (;" }
  - { name: Undeclared, type: script, read_vars: [Count], code: "Cuont + 1" }
"#,
    );
    for needle in [
        "\"Both\": give `code` or `file`, not both",
        "\"Neither\": a script task needs `code`",
        "unknown variable \"Nope\"",
        "unknown variable \"Nada\"",
        "variable \"Fixed\" is read-only",
        "variable \"System::PackageName\" is read-only",
        "\"Syntax\": `code` does not compile: line 2, column",
        "\"Undeclared\": `code` does not compile: line 1, column 1: Undefined variable: Cuont",
    ] {
        assert!(p.contains(needle), "lacks {needle:?} in\n{p}");
    }
}

#[test]
fn two_variables_with_one_bare_name_are_refused() {
    let p = problems(
        "  PackageName: { type: string, value: x }",
        "  - { name: S, type: script, read_vars: [User::PackageName, System::PackageName], code: '1' }",
    );
    assert!(p.contains("would both be `PackageName`"), "{p}");
}

#[test]
fn objects_round_trip_through_arrays_and_maps() {
    let d = json_to_dynamic(&serde_json::json!([{"id": 1, "v": [1.5, null, "s"]}, true]));
    let back = dynamic_to_json(&d).expect("json");
    assert_eq!(
        back,
        serde_json::json!([{"id": 1, "v": [1.5, null, "s"]}, true])
    );
    assert!(same(&d, &json_to_dynamic(&back)));
    assert!(!same(&d, &Dynamic::from_array(vec![])));
}
