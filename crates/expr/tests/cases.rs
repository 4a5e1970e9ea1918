//! Table-driven tests: every `tests/cases/*.txt` file, one case a line.
//!
//! Line format (blank lines and lines starting with `#` are skipped):
//!
//! ```text
//! EXPRESSION => VALUE : TYPE        value as `Value::to_json` prints it; TYPE is the SSIS
//!                                   name (DT_I4), or with parameters (DT_NUMERIC(7,3)) to
//!                                   check them too; VALUE `*` accepts any value
//! EXPRESSION => error: a|b|c        every fragment must appear in the error message
//!                                   (case-insensitive)
//! ```
//!
//! The line splits at the last ` => `. Assignments are compiled with `allow_assign`.
//! All failures are reported together, with file and line.

use std::path::Path;

use checkflow_expr::{DataType, Value, VarMap, compile};

fn vars() -> VarMap {
    let mut v = VarMap::new();
    let mut add = |name: &str, ty: DataType, read_only: bool, value: Value| {
        v.add(name, ty, read_only, value);
    };
    let ty = |n: &str| DataType::from_variable_type(n).expect("known variable type");
    add(
        "User::Dir",
        ty("string"),
        false,
        Value::WStr("C:\\data".into()),
    );
    add("User::N", ty("int32"), false, Value::I4(42));
    add(
        "User::D",
        ty("datetime"),
        false,
        Value::parse_as("2026-11-21 04:30:00", &DataType::DbTimestamp).expect("date"),
    );
    add(
        "User::Nothing",
        ty("string"),
        false,
        Value::Null(ty("string")),
    );
    add(
        "System::PackageName",
        ty("string"),
        true,
        Value::WStr("Nightly".into()),
    );
    add(
        "User::Path",
        ty("string"),
        false,
        Value::WStr("c:\\program files\\data\\myfile.txt".into()),
    );
    add("User::Big", ty("int64"), false, Value::I8(5_000_000_000));
    add(
        "User::Price",
        ty("decimal"),
        false,
        Value::parse_as("12.5", &ty("decimal")).expect("decimal"),
    );
    add("User::Ratio", ty("double"), false, Value::R8(0.25));
    add("User::Flag", ty("boolean"), false, Value::Bool(true));
    add(
        "User::Obj",
        ty("object"),
        false,
        Value::Null(DataType::Object),
    );
    add("User::Start", ty("int32"), false, Value::I4(1));
    add("User::Length", ty("int32"), false, Value::I4(5));
    add(
        "User::Name",
        ty("string"),
        false,
        Value::WStr("Redmond WA".into()),
    );
    add("User::Zero", ty("int32"), false, Value::I4(0));
    v
}

fn json_matches(expected: &serde_json::Value, actual: &serde_json::Value) -> bool {
    match (expected, actual) {
        (serde_json::Value::Number(a), serde_json::Value::Number(b)) => {
            match (a.as_f64(), b.as_f64()) {
                (Some(x), Some(y)) => {
                    x == y || (x - y).abs() <= 1e-6 * x.abs().max(y.abs()).max(1e-300)
                }
                _ => a == b,
            }
        }
        _ => expected == actual,
    }
}

fn run_case(vars: &VarMap, expr: &str, expected: &str) -> Result<(), String> {
    let result = compile(expr, vars, true).and_then(|c| {
        let v = c.eval(vars)?;
        Ok((v, c.result_type().clone()))
    });
    if let Some(frags) = expected.strip_prefix("error:") {
        return match result {
            Ok((v, t)) => Err(format!("expected an error, got {} : {t}", v.to_json())),
            Err(e) => {
                let msg = e.to_string().to_lowercase();
                let missing: Vec<&str> = frags
                    .split('|')
                    .map(str::trim)
                    .filter(|f| !f.is_empty() && !msg.contains(&f.to_lowercase()))
                    .collect();
                if missing.is_empty() {
                    Ok(())
                } else {
                    Err(format!("error lacks {missing:?}:\n{e}"))
                }
            }
        };
    }
    let (want_value, want_type) = expected
        .rsplit_once(" : ")
        .ok_or_else(|| "malformed expectation: want `VALUE : TYPE`".to_string())?;
    let (value, ty) = result.map_err(|e| format!("unexpected error:\n{e}"))?;
    let mut problems = Vec::new();
    let type_text = if want_type.contains('(') {
        ty.to_string()
    } else {
        ty.ssis_name().to_string()
    };
    if type_text != want_type.trim() {
        problems.push(format!("type {type_text}, expected {}", want_type.trim()));
    }
    if value.data_type().ssis_name() != ty.ssis_name() {
        problems.push(format!(
            "value type {} differs from result type {}",
            value.data_type().ssis_name(),
            ty.ssis_name()
        ));
    }
    if want_value.trim() != "*" {
        let want: serde_json::Value = serde_json::from_str(want_value.trim())
            .map_err(|e| format!("expected value is not JSON ({e}): {want_value}"))?;
        let got = value.to_json();
        if !json_matches(&want, &got) {
            problems.push(format!("value {got}, expected {want}"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

#[test]
fn all_case_files() {
    // Relative to the package, where `cargo test` runs its tests (not
    // `env!("CARGO_MANIFEST_DIR")`, which a build reused from another
    // checkout sharing the target folder would point elsewhere).
    let dir = Path::new("tests/cases");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("tests/cases exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    let vars = vars();
    let (mut total, mut failures) = (0, Vec::new());
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable case file");
        let name = file
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            total += 1;
            let Some((expr, expected)) = line.rsplit_once(" => ") else {
                failures.push(format!("{name}:{}: no ` => ` in line", i + 1));
                continue;
            };
            if let Err(why) = run_case(&vars, expr.trim(), expected.trim()) {
                failures.push(format!(
                    "{name}:{}: {expr}\n    {}",
                    i + 1,
                    why.replace('\n', "\n    ")
                ));
            }
        }
    }
    println!("{total} cases in {} files", files.len());
    assert!(total >= 250, "only {total} cases");
    assert!(
        failures.is_empty(),
        "{} of {total} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
