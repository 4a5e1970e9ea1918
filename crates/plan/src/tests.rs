//! Validation tests: good packages build, bad ones report every problem at once
//! with its line and column.

use super::*;
use checkflow_model::{LoadedPackage, TaskDef, parse};
use std::path::{Path, PathBuf};
use std::sync::Arc;

struct Noop;
impl Action for Noop {
    fn run(&self, _: &mut dyn RunCx) -> Result<(), TaskError> {
        Ok(())
    }
}

struct T;
impl TaskType for T {
    fn name(&self) -> &'static str {
        "t"
    }
    fn fields(&self) -> &'static [&'static str] {
        &["command", "expr"]
    }
    fn build(&self, def: &TaskDef, cx: &mut BuildCx<'_>) -> Option<Arc<dyn Action>> {
        if let Some(e) = &def.expr {
            cx.compile(&e.value, true, checkflow_model::pos_of(e))?;
        }
        Some(Arc::new(Noop))
    }
}

fn check(body: &str) -> Result<Plan, ValidationError> {
    let text = format!("id: 0b6f4d1e-7c1a-4a8e-9a53-2d2f1f6e9c11\nname: p\n{body}");
    let def = parse(Path::new("p.yaml"), &text).unwrap_or_else(|e| panic!("{e}"));
    let pkg = LoadedPackage {
        def,
        path: PathBuf::from("p.yaml"),
        dir: PathBuf::from("/pkg"),
        text,
    };
    let mut r = Registry::new();
    r.add(Box::new(T));
    validate(&pkg, &r)
}

fn errors(body: &str) -> String {
    match check(body) {
        Ok(_) => panic!("expected validation errors for:\n{body}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn builds_paths_edges_and_recordability() {
    let plan = check(
        "tasks:\n  - {name: A, type: t}\n  - name: S\n    type: sequence\n    tasks:\n      - {name: X, type: t}\n      - {name: Y, type: t}\n  - name: L\n    type: foreach\n    items: [1, 2]\n    tasks:\n      - {name: Z, type: t}\n",
    )
    .expect("valid");
    let s = plan.find("S").expect("S");
    let y = plan.find("S/Y").expect("S/Y");
    assert_eq!(
        plan.node(y).preds[0].from,
        plan.find("S/X").unwrap(),
        "sequence flow chains children"
    );
    assert_eq!(plan.node(s).preds[0].from, plan.find("A").unwrap());
    assert!(plan.node(y).recordable);
    assert!(plan.node(plan.find("L").unwrap()).atomic);
    assert!(
        !plan.node(plan.find("L/Z").unwrap()).recordable,
        "loop children are not recorded"
    );
    assert_eq!(
        plan.vars
            .slot("System::PackageName")
            .map(|s| plan.vars.decl(s).read_only),
        Some(true)
    );
}

#[test]
fn parallel_flow_and_graphs_have_no_implied_edges() {
    let plan = check("flow: parallel\ntasks:\n  - {name: A, type: t}\n  - {name: B, type: t}\n")
        .expect("valid");
    assert!(plan.nodes.iter().all(|n| n.preds.is_empty()));
    let plan = check("tasks:\n  - {name: A, type: t}\n  - {name: B, type: t}\n  - {name: C, type: t, after: [A]}\n").expect("valid");
    assert!(
        plan.node(plan.find("B").unwrap()).preds.is_empty(),
        "a graph: B starts at once"
    );
}

#[test]
fn reports_every_problem_with_positions() {
    let e = errors(
        "fail_package_on_failure: true\ntasks:\n  - {name: A, type: t, after: [Nope]}\n  - {name: A, type: t}\n  - {name: 'B/C', type: t}\n  - {name: D, type: nosuch}\n  - {name: E, type: t, expr: '@[User::Missing] + 1'}\n  - {name: F, type: t, timeout: soon}\n",
    );
    for needle in [
        "p.yaml:3:26: fail_package_on_failure is not applicable to the package container",
        "p.yaml:5:",
        "no executable of that name",
        "duplicate name \"A\"",
        "must not contain '/'",
        "unknown type \"nosuch\"",
        "Missing",
        "invalid duration",
    ] {
        assert!(e.contains(needle), "missing {needle:?} in:\n{e}");
    }
    assert!(e.contains("7 problems") || e.contains("problems"), "{e}");
}

#[test]
fn names_with_control_characters_are_reported_alone_and_escaped() {
    // A tab, a line separator, DEL and a C1 control, nested and in `after`;
    // the unknown type is not reported, as its message would quote the name.
    let e = errors(
        "tasks:\n  - name: \"S\\tT\"\n    type: sequence\n    tasks:\n      - {name: \"X\\u2028Y\", type: nosuch}\n  - {name: B, type: t, after: [\"Z\\x7f\"]}\n  - {name: \"C\\u0085\", type: t}\n",
    );
    for needle in [
        r#"task name "S\tT" holds a control character (U+0009)"#,
        r#"task name "X\u{2028}Y" holds a control character (U+2028)"#,
        r#"`after` names task "Z\u{7f}""#,
        r#"task name "C\u{85}""#,
    ] {
        assert!(e.contains(needle), "missing {needle:?} in:\n{e}");
    }
    assert!(e.contains("4 problems"), "{e}");
    assert!(!e.contains("nosuch"), "{e}");
}

#[test]
fn cycles_are_reported() {
    let e = errors(
        "tasks:\n  - {name: A, type: t, after: [B]}\n  - {name: B, type: t, after: [A]}\n  - {name: C, type: t}\n",
    );
    assert!(
        e.contains("cycle") && e.contains("\"A\"") && e.contains("\"B\""),
        "{e}"
    );
}

#[test]
fn fields_must_fit_the_type() {
    let e = errors(
        "tasks:\n  - {name: A, type: t, items: [1]}\n  - {name: S, type: sequence, command: x}\n",
    );
    assert!(e.contains("field `items` does not apply to a t"), "{e}");
    assert!(
        e.contains("field `command` does not apply to a sequence"),
        "{e}"
    );
}

#[test]
fn variables_and_expressions_are_checked() {
    let e = errors(
        "variables:\n  N: {type: int32, value: abc}\n  R: {type: string, expr: '@[User::R] + \"x\"'}\n  K: {type: money}\ntasks:\n  - {name: A, type: t, expr: '@[System::PackageName] = \"x\"'}\n",
    );
    assert!(e.contains("variable \"N\": bad value"), "{e}");
    assert!(e.contains("refers to itself"), "{e}");
    assert!(e.contains("unknown type \"money\""), "{e}");
    assert!(
        e.to_lowercase().contains("read-only") || e.contains("PackageName"),
        "{e}"
    );
}

#[test]
fn foreach_and_for_loop_settings() {
    let e = errors(
        "variables: { X: {type: int32}, O: {type: object} }\ntasks:\n  - {name: A, type: foreach, items: [1], files: {folder: x}}\n  - {name: B, type: foreach, rows: User::X}\n  - {name: C, type: for_loop}\n  - {name: D, type: foreach, items: [[1, 2]], map: [User::X, User::Nope]}\n",
    );
    assert!(e.contains("exactly one enumerator"), "{e}");
    assert!(e.contains("rows needs an object variable"), "{e}");
    assert!(e.contains("needs `eval`"), "{e}");
    assert!(e.contains("unknown variable \"User::Nope\""), "{e}");
}

#[test]
fn checkpoint_settings_are_checked() {
    let e = errors("checkpoint: {file: a, file_expr: '\"b\"'}\n");
    assert!(e.contains("not both"), "{e}");
    let e = errors("checkpoint: {save: true}\n");
    assert!(e.contains("needs `file`, `file_expr` or `store`"), "{e}");
    // A key alone: the store comes from the command line.
    check("checkpoint: {key: nightly, save: true, usage: if_exists}\n").expect("valid");
    // A shared store: a postgres connection, one place, a lease of 1s or more.
    let pg = "connections: { s: { kind: postgres, url: \"postgres://x@h/d\" }, l: { kind: sqlite, path: a.db } }\n";
    let e = errors(&format!(
        "{pg}checkpoint: {{store: s, file: a, lease: 900ms, key: k, key_expr: '\"k\"'}}\n"
    ));
    assert!(
        e.contains("give `store` or `file` / `file_expr`, not both"),
        "{e}"
    );
    assert!(e.contains("900ms is shorter than the minimum of 1s"), "{e}");
    assert!(e.contains("give `key` or `key_expr`, not both"), "{e}");
    let e = errors(&format!(
        "{pg}checkpoint: {{store: l, save: true, key_expr: '1 + 1'}}\n"
    ));
    assert!(e.contains("a shared store is a postgres database"), "{e}");
    assert!(
        e.contains("key_expr must give a string, it gives DT_I4"),
        "{e}"
    );
    let plan = check(&format!("{pg}checkpoint: {{store: s, key: nightly, lease: 2s, usage: if_exists, save: true}}\nrestart: {{attempts: 3, delay: 1m, backoff: 2}}\n")).expect("valid");
    assert_eq!(plan.package.checkpoint.store.as_deref(), Some("s"));
    assert_eq!(
        plan.package.checkpoint.lease,
        Some(std::time::Duration::from_secs(2))
    );
    assert_eq!(plan.package.restart.attempts, 3);
    assert_eq!(
        plan.package.restart.delay,
        std::time::Duration::from_secs(60)
    );
    let e = errors("restart: {attempts: -1, delay: soon, backoff: 0.5}\n");
    assert!(
        e.contains("restart attempts: -1")
            && e.contains("restart delay")
            && e.contains("restart backoff: 0.5"),
        "{e}"
    );
    let plan = check("variables: { D: {type: string, value: st} }\ncheckpoint: {file_expr: '@[User::D] + \"/x.ckpt\"', usage: if_exists, save: true}\n").expect("valid");
    assert!(matches!(
        plan.package.checkpoint.file,
        Some(CheckpointFile::Expr(_))
    ));
}

#[test]
fn fingerprints_ignore_descriptions_but_not_commands() {
    let fp = |body: &str| {
        let p = check(body).expect("valid");
        p.node(p.find("A").unwrap()).fingerprint.clone()
    };
    let base = fp("tasks:\n  - {name: A, type: t, command: x}\n");
    assert_eq!(
        base,
        fp("tasks:\n  - {name: A, type: t, command: x, description: words}\n")
    );
    assert_ne!(base, fp("tasks:\n  - {name: A, type: t, command: y}\n"));
    let parent = |c: &str| {
        let p = check(&format!("tasks:\n  - name: A\n    type: sequence\n    tasks:\n      - {{name: K, type: t, command: {c}}}\n")).expect("valid");
        p.node(p.find("A").unwrap()).fingerprint.clone()
    };
    assert_ne!(
        parent("x"),
        parent("y"),
        "a container's fingerprint covers its children"
    );
}

#[test]
fn bad_package_id_is_an_error() {
    let text = "id: not-a-uuid\nname: p\n";
    let def = parse(Path::new("p.yaml"), text).expect("parses");
    let pkg = LoadedPackage {
        def,
        path: PathBuf::from("p.yaml"),
        dir: PathBuf::from("."),
        text: text.into(),
    };
    let e = validate(&pkg, &Registry::new())
        .err()
        .expect("invalid")
        .to_string();
    assert!(e.contains("is not a UUID"), "{e}");
}

fn loaded(body: &str) -> LoadedPackage {
    let text = format!("id: 0b6f4d1e-7c1a-4a8e-9a53-2d2f1f6e9c11\nname: p\n{body}");
    let def = parse(Path::new("p.yaml"), &text).unwrap_or_else(|e| panic!("{e}"));
    LoadedPackage {
        def,
        path: PathBuf::from("p.yaml"),
        dir: PathBuf::from("/pkg"),
        text,
    }
}

fn fingerprints(plan: &Plan) -> Vec<(String, String)> {
    plan.nodes
        .iter()
        .map(|n| (n.path.clone(), n.fingerprint.clone()))
        .collect()
}

#[test]
fn fingerprints_computed_ahead_equal_those_validation_computes() {
    let body = "tasks:\n  - {name: A, type: t, command: a}\n  - name: S\n    type: sequence\n    tasks:\n      - {name: X, type: t, command: x}\n      - {name: E, type: sequence, tasks: []}\n      - {name: Y, type: t, expr: '1 + 1'}\n  - {name: B, type: t, command: b}\n";
    let pkg = loaded(body);
    let mut r = Registry::new();
    r.add(Box::new(T));
    let plain = fingerprints(&validate(&pkg, &r).expect("valid"));
    // All filled ahead, none, and a package whose definitions differ (its
    // slots must not be taken for these).
    let full = FingerprintsAhead::new(&pkg.def);
    full.fill(&pkg.def);
    let empty = FingerprintsAhead::new(&pkg.def);
    let other = loaded(
        &body
            .replace("command: a}", "command: changed}")
            .replace("x}", "y}"),
    );
    let foreign = FingerprintsAhead::new(&other.def);
    foreign.fill(&other.def);
    for ahead in [&full, &empty, &foreign] {
        let got = fingerprints(&validate_with(&pkg, &r, Some(ahead)).expect("valid"));
        assert_eq!(got, plain);
    }
    // Kept (as the package cache keeps them) and set again on a fresh
    // load: the same, and nothing is left to compute ahead.
    let kept = FingerprintsAhead::kept_form(&pkg.def);
    assert_eq!(kept.len(), 6 * 32);
    assert_eq!(&kept[32..2 * 32], &[b'-'; 32], "S is a container");
    let preset = FingerprintsAhead::from_kept(&pkg.def, kept.clone()).expect("they fit");
    let got = fingerprints(&validate_with(&pkg, &r, Some(&preset)).expect("valid"));
    assert_eq!(got, plain);
    // What was set is what validation takes, unhashed.
    let mut marked = kept.clone();
    marked[..32].fill(b'f');
    let trusted = FingerprintsAhead::from_kept(&pkg.def, marked).expect("they fit");
    let got = fingerprints(&validate_with(&pkg, &r, Some(&trusted)).expect("valid"));
    assert_eq!(got[1], ("A".to_string(), "f".repeat(32)));
    // Bytes that do not fit are refused whole: cut short, a container's
    // place and a task's swapped, not hex, upper case.
    let mut swapped = kept.clone();
    swapped[..2 * 32].rotate_left(32);
    let mut not_hex = kept.clone();
    not_hex[40] = b'g';
    let mut upper = kept.clone();
    upper[..32].fill(b'A');
    for bad in [kept[32..].to_vec(), swapped, not_hex, upper] {
        assert!(FingerprintsAhead::from_kept(&pkg.def, bad).is_none());
    }
    // Filled while validation runs on another thread: still the same.
    let racing = FingerprintsAhead::new(&pkg.def);
    std::thread::scope(|s| {
        s.spawn(|| racing.fill(&pkg.def));
        let got = fingerprints(&validate_with(&pkg, &r, Some(&racing)).expect("valid"));
        assert_eq!(got, plain);
    });
}
