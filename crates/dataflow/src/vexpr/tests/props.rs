//! Property test: for random batches (NULLs and edge values included) and random
//! expressions over the whole function list, every row's vectorised result — value or
//! error — equals `Compiled::eval` with that row's values bound (what `checkflow eval`
//! gives).

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::vexpr::FlowColumns;
use checkflow_expr::jiff::civil::date;
use checkflow_expr::rust_decimal::Decimal;
use checkflow_expr::{DataType, Value};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;

fn columns() -> FlowColumns {
    FlowColumns::new([
        ("i4", DataType::I4),
        ("i8", DataType::I8),
        ("i2", DataType::I2),
        ("ui1", DataType::UI1),
        ("ui4", DataType::UI4),
        ("r8", DataType::R8),
        ("r4", DataType::R4),
        (
            "num",
            DataType::Numeric {
                precision: 10,
                scale: 2,
            },
        ),
        ("cy", DataType::Cy),
        ("s", DataType::WStr { len: Some(20) }),
        (
            "Unit Name",
            DataType::Str {
                len: Some(10),
                codepage: 1252,
            },
        ),
        ("b", DataType::Bool),
        ("d", DataType::DbTimestamp),
        ("dd", DataType::DbDate),
    ])
}

fn nullable(s: impl Strategy<Value = Value> + 'static, ty: DataType) -> BoxedStrategy<Value> {
    prop_oneof![1 => Just(Value::Null(ty)), 6 => s].boxed()
}

fn int_values<T: Copy + std::fmt::Debug + 'static>(
    edges: Vec<T>,
    range: impl Strategy<Value = T> + 'static,
    make: fn(T) -> Value,
) -> impl Strategy<Value = Value> {
    prop_oneof![prop::sample::select(edges), range].prop_map(make)
}

fn cell(ty: &DataType) -> BoxedStrategy<Value> {
    let s = match ty {
        DataType::I4 => int_values(
            vec![0, 1, -1, 2, 7, -7, i32::MAX, i32::MIN, 100],
            -1000i32..1000,
            Value::I4,
        )
        .boxed(),
        DataType::I8 => int_values(
            vec![0, 1, -1, i64::MAX, i64::MIN, i64::from(i32::MAX) + 1],
            -100_000i64..100_000,
            Value::I8,
        )
        .boxed(),
        DataType::I2 => {
            int_values(vec![0, 1, -1, i16::MAX, i16::MIN], -300i16..300, Value::I2).boxed()
        }
        DataType::UI1 => int_values(vec![0, 1, 255], 0u8..=255, Value::UI1).boxed(),
        DataType::UI4 => int_values(vec![0, 1, u32::MAX], 0u32..5000, Value::UI4).boxed(),
        DataType::R8 => prop_oneof![
            prop::sample::select(vec![0.0, -0.0, 1.5, -2.25, 1e308, -1e-300, 0.1, f64::NAN]),
            -1.0e6f64..1.0e6,
        ]
        .prop_map(Value::R8)
        .boxed(),
        DataType::R4 => prop_oneof![
            prop::sample::select(vec![0.0f32, -0.0, 1.5, 3.4e38, -1e-30]),
            -1.0e4f32..1.0e4,
        ]
        .prop_map(Value::R4)
        .boxed(),
        DataType::Numeric { .. } => prop_oneof![
            prop::sample::select(vec![0i64, 1, -1, 9_999_999_999, -9_999_999_999, 50]),
            -1_000_000i64..1_000_000,
        ]
        .prop_map(|m| Value::Numeric {
            value: Decimal::new(m, 2),
            precision: 10,
            scale: 2,
        })
        .boxed(),
        DataType::Cy => prop_oneof![
            prop::sample::select(vec![0i64, 10_000, -25_000, i64::MAX, i64::MIN]),
            -100_000_000i64..100_000_000,
        ]
        .prop_map(Value::Cy)
        .boxed(),
        DataType::WStr { .. } | DataType::Str { .. } => {
            let str_ty = matches!(ty, DataType::Str { .. });
            prop_oneof![
                prop::sample::select(vec![
                    "",
                    " ",
                    "abc",
                    "  padded  ",
                    "Grüße",
                    "ΣΑΣ",
                    "a,b,,c",
                    "12",
                    "-7",
                    "2024-02-29",
                    "x y z",
                    "日本語",
                    "TRUE",
                    "1.5"
                ])
                .prop_map(str::to_string),
                "[a-c ,Σé]{0,8}",
            ]
            .prop_map(move |s| {
                if str_ty {
                    Value::Str(s.chars().take(10).collect())
                } else {
                    Value::WStr(s.chars().take(20).collect())
                }
            })
            .boxed()
        }
        DataType::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
        DataType::DbTimestamp => prop_oneof![
            prop::sample::select(vec![
                (2024, 2, 29, 0),
                (2000, 2, 29, 1),
                (1900, 3, 1, 2),
                (9999, 12, 31, 3),
                (1, 1, 1, 4),
                (2023, 12, 31, 5),
            ]),
            (1990i16..2030, 1i8..=12, 1i8..=28, 0i32..86_400_000),
        ]
        .prop_map(|(y, m, d, ms)| {
            let t = checkflow_expr::jiff::civil::time(
                (ms / 3_600_000) as i8,
                (ms / 60_000 % 60) as i8,
                (ms / 1000 % 60) as i8,
                ms % 1000 * 1_000_000,
            );
            Value::DbTimestamp(date(y, m, d).to_datetime(t))
        })
        .boxed(),
        DataType::DbDate => prop_oneof![
            prop::sample::select(vec![
                (2024, 2, 29),
                (2000, 2, 29),
                (1, 1, 1),
                (9999, 12, 31)
            ]),
            (1990i16..2030, 1i8..=12, 1i8..=28),
        ]
        .prop_map(|(y, m, d)| Value::DbDate(date(y, m, d)))
        .boxed(),
        _ => Just(Value::Null(ty.clone())).boxed(),
    };
    nullable(s, ty.clone())
}

fn batch_values(rows: usize) -> impl Strategy<Value = Vec<Vec<Value>>> {
    let cols = columns();
    cols.columns()
        .iter()
        .map(|(_, ty)| prop::collection::vec(cell(ty), rows))
        .collect::<Vec<_>>()
}

fn pick(xs: &[&str]) -> BoxedStrategy<String> {
    prop::sample::select(xs.iter().map(|s| s.to_string()).collect::<Vec<_>>()).boxed()
}

fn f1(name: &'static str, a: BoxedStrategy<String>) -> BoxedStrategy<String> {
    a.prop_map(move |a| format!("{name}({a})")).boxed()
}

fn f2(
    name: &'static str,
    a: BoxedStrategy<String>,
    b: BoxedStrategy<String>,
) -> BoxedStrategy<String> {
    (a, b)
        .prop_map(move |(a, b)| format!("{name}({a}, {b})"))
        .boxed()
}

fn f3(
    name: &'static str,
    a: BoxedStrategy<String>,
    b: BoxedStrategy<String>,
    c: BoxedStrategy<String>,
) -> BoxedStrategy<String> {
    (a, b, c)
        .prop_map(move |(a, b, c)| format!("{name}({a}, {b}, {c})"))
        .boxed()
}

fn op(a: BoxedStrategy<String>, ops: &[&str], b: BoxedStrategy<String>) -> BoxedStrategy<String> {
    (a, pick(ops), b)
        .prop_map(|(a, o, b)| format!("({a} {o} {b})"))
        .boxed()
}

fn cond(t: BoxedStrategy<String>, depth: u32) -> BoxedStrategy<String> {
    (boolean(depth), t.clone(), t)
        .prop_map(|(c, a, b)| format!("({c} ? {a} : {b})"))
        .boxed()
}

const PARTS: &[&str] = &[
    "\"yy\"", "\"qq\"", "\"mm\"", "\"dy\"", "\"dd\"", "\"wk\"", "\"dw\"", "\"hh\"", "\"mi\"",
    "\"ss\"", "\"ms\"", "\"Year\"",
];

fn int(depth: u32) -> BoxedStrategy<String> {
    let leaf = pick(&[
        "i4",
        "i8",
        "i2",
        "ui1",
        "ui4",
        "[i4]",
        "0",
        "1",
        "-1",
        "7",
        "2147483647",
        "-2147483648",
        "9223372036854775807L",
        "@[User::N]",
        "@Z",
        "NULL(DT_I4)",
        "3U",
    ]);
    if depth == 0 {
        return leaf;
    }
    let d = depth - 1;
    prop_oneof![
        3 => leaf,
        3 => op(int(d), &["+", "-", "*", "/", "%"], int(d)),
        1 => op(int(d), &["&", "|", "^"], int(d)),
        1 => int(d).prop_map(|a| format!("-{a}")).boxed(),
        1 => int(d).prop_map(|a| format!("~{a}")).boxed(),
        1 => f1("ABS", int(d)),
        1 => f1("SIGN", int(d)),
        1 => f1("LEN", string(d)),
        1 => f3("FINDSTRING", string(d), pick(&["\"a\"", "\" \"", "\"\"", "s"]), int(d)),
        1 => f2("TOKENCOUNT", string(d), pick(&["\" \"", "\",\""])),
        1 => f1("CODEPOINT", string(d)),
        1 => (pick(&["DT_I4", "DT_I2", "DT_I8", "DT_UI1", "DT_UI4"]), prop_oneof![int(d), real(d), numeric(d), string(d)])
            .prop_map(|(t, a)| format!("(({t}) {a})")).boxed(),
        1 => f2("DATEPART", pick(PARTS), date_e(d)),
        1 => f2("DATEPART", pick(&["s", "\"xx\""]), date_e(d)),
        1 => f1("YEAR", date_e(d)),
        1 => f1("MONTH", date_e(d)),
        1 => f1("DAY", date_e(d)),
        1 => f3("DATEDIFF", pick(PARTS), date_e(d), date_e(d)),
        1 => f2("REPLACENULL", int(d), int(d)),
        1 => cond(int(d), d),
    ]
    .boxed()
}

fn real(depth: u32) -> BoxedStrategy<String> {
    let leaf = pick(&[
        "r8",
        "r4",
        "1.5E0",
        "0.0E0",
        "2.5F",
        "-3.75E0",
        "NULL(DT_R8)",
    ]);
    if depth == 0 {
        return leaf;
    }
    let d = depth - 1;
    prop_oneof![
        3 => leaf,
        3 => op(prop_oneof![real(d), int(d)].boxed(), &["+", "-", "*", "/", "%"], real(d)),
        1 => real(d).prop_map(|a| format!("-{a}")).boxed(),
        1 => f1("SQRT", real(d)),
        1 => f1("SQUARE", real(d)),
        1 => f1("EXP", real(d)),
        1 => f1("LN", real(d)),
        1 => f1("LOG", real(d)),
        1 => f2("POWER", real(d), real(d)),
        1 => f2("ROUND", real(d), pick(&["0", "2", "-1"])),
        1 => f1("CEILING", real(d)),
        1 => f1("FLOOR", real(d)),
        1 => f1("ABS", real(d)),
        1 => (pick(&["DT_R8", "DT_R4"]), prop_oneof![int(d), real(d), numeric(d), string(d)])
            .prop_map(|(t, a)| format!("(({t}) {a})")).boxed(),
        1 => cond(real(d), d),
    ]
    .boxed()
}

fn numeric(depth: u32) -> BoxedStrategy<String> {
    let leaf = pick(&[
        "num",
        "cy",
        "1.25",
        "0.5",
        "100.00",
        "(DT_CY)2.5",
        "NULL(DT_NUMERIC, 5, 2)",
    ]);
    if depth == 0 {
        return leaf;
    }
    let d = depth - 1;
    prop_oneof![
        3 => leaf,
        2 => op(numeric(d), &["+", "-", "*", "/"], prop_oneof![numeric(d), int(d)].boxed()),
        1 => numeric(d).prop_map(|a| format!("-{a}")).boxed(),
        1 => f2("ROUND", numeric(d), pick(&["0", "1", "3"])),
        1 => f1("ABS", numeric(d)),
        1 => f1("FLOOR", numeric(d)),
        1 => f1("SIGN", numeric(d)),
        1 => prop_oneof![int(d), real(d), string(d), numeric(d)]
            .prop_map(|a| format!("((DT_NUMERIC, 12, 3) {a})")).boxed(),
        1 => cond(numeric(d), d),
    ]
    .boxed()
}

fn string(depth: u32) -> BoxedStrategy<String> {
    let leaf = pick(&[
        "s",
        "[Unit Name]",
        "[unit name]",
        "\"\"",
        "\"abc\"",
        "\"  x  \"",
        "\"ΣΑΣ\"",
        "@[User::S]",
        "@Nothing",
        "NULL(DT_WSTR, 5)",
        "\"2024-02-29\"",
        "\"12\"",
    ]);
    if depth == 0 {
        return leaf;
    }
    let d = depth - 1;
    prop_oneof![
        4 => leaf,
        1 => f1("UPPER", string(d)),
        1 => f1("LOWER", string(d)),
        1 => f1("TRIM", string(d)),
        1 => f1("LTRIM", string(d)),
        1 => f1("RTRIM", string(d)),
        1 => f1("REVERSE", string(d)),
        1 => f3("SUBSTRING", string(d), int(d), int(d)),
        1 => f2("LEFT", string(d), int(d)),
        1 => f2("RIGHT", string(d), int(d)),
        2 => op(string(d), &["+"], string(d)),
        1 => f3("REPLACE", string(d), pick(&["\"a\"", "\"\"", "\" \""]), string(d)),
        1 => f2("REPLICATE", string(d), pick(&["0", "2", "-1", "ui1 % 3"])),
        1 => f3("TOKEN", string(d), pick(&["\" \"", "\",\""]), int(d)),
        1 => f1("HEX", int(d)),
        1 => f2("REPLACENULL", string(d), string(d)),
        1 => (pick(&["3", "12", "30"]), prop_oneof![string(d), int(d), real(d), numeric(d), date_e(d), boolean(d)])
            .prop_map(|(n, a)| format!("((DT_WSTR, {n}) {a})")).boxed(),
        1 => cond(string(d), d),
    ]
    .boxed()
}

fn date_e(depth: u32) -> BoxedStrategy<String> {
    let leaf = pick(&[
        "d",
        "dd",
        "@D",
        "(DT_DBTIMESTAMP)\"2024-02-29 23:59:59.999\"",
        "(DT_DBDATE)\"2000-02-29\"",
        "NULL(DT_DBTIMESTAMP)",
    ]);
    if depth == 0 {
        return leaf;
    }
    let d = depth - 1;
    prop_oneof![
        3 => leaf,
        1 => f3("DATEADD", pick(PARTS), int(d), date_e(d)),
        1 => string(d).prop_map(|a| format!("((DT_DBTIMESTAMP) {a})")).boxed(),
        1 => date_e(d).prop_map(|a| format!("((DT_DBDATE) {a})")).boxed(),
        1 => date_e(d).prop_map(|a| format!("((DT_DBTIMESTAMP2, 3) {a})")).boxed(),
        1 => cond(date_e(d), d),
        1 => f2("REPLACENULL", date_e(d), date_e(d)),
    ]
    .boxed()
}

fn boolean(depth: u32) -> BoxedStrategy<String> {
    let leaf = pick(&["b", "TRUE", "FALSE", "NULL(DT_BOOL)"]);
    if depth == 0 {
        return leaf;
    }
    let d = depth - 1;
    let cmp = &["==", "!=", "<", ">", "<=", ">="];
    prop_oneof![
        2 => leaf,
        2 => op(int(d), cmp, int(d)),
        1 => op(real(d), cmp, prop_oneof![real(d), int(d)].boxed()),
        1 => op(numeric(d), cmp, prop_oneof![numeric(d), int(d)].boxed()),
        2 => op(string(d), cmp, string(d)),
        1 => op(date_e(d), cmp, date_e(d)),
        1 => op(boolean(d), &["==", "!=", "&&", "||"], boolean(d)),
        1 => boolean(d).prop_map(|a| format!("!{a}")).boxed(),
        1 => f1("ISNULL", prop_oneof![int(d), string(d), date_e(d), real(d)].boxed()),
        1 => cond(boolean(d), d),
        1 => prop_oneof![string(d), int(d)].prop_map(|a| format!("((DT_BOOL) {a})")).boxed(),
    ]
    .boxed()
}

fn expression() -> BoxedStrategy<String> {
    prop_oneof![
        int(3),
        real(3),
        numeric(3),
        string(3),
        date_e(2),
        boolean(3),
        string(2)
            .prop_map(|a| format!("(DT_STR, 4, 1252) {a}"))
            .boxed(),
    ]
    .boxed()
}

#[test]
fn vectorised_equals_row_at_a_time() {
    let cases = std::env::var("VEXPR_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(128);
    // A fixed seed, so that a run is repeatable; VEXPR_SEED explores others.
    let seed: u64 = std::env::var("VEXPR_SEED")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(0x5eed_0017);
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let rng = proptest::test_runner::TestRng::from_seed(
        proptest::test_runner::RngAlgorithm::ChaCha,
        &bytes,
    );
    let mut runner = TestRunner::new_with_rng(
        ProptestConfig {
            cases,
            max_global_rejects: 1_000_000,
            max_shrink_iters: 32,
            max_shrink_time: 60_000,
            failure_persistence: None,
            ..ProptestConfig::default()
        },
        rng,
    );
    let strategy = (1usize..24)
        .prop_flat_map(batch_values)
        .prop_flat_map(|v| (Just(v), expression()));
    let compiled = AtomicUsize::new(0);
    let rejected = AtomicUsize::new(0);
    let rows_seen = AtomicUsize::new(0);
    let row_errors = AtomicUsize::new(0);
    let result = runner.run(&strategy, |(values, src)| {
        let cols = columns();
        let Ok(rows) = super::both_ways(&src, &cols, &values) else {
            // A random expression that does not type-check (or fails when folded).
            rejected.fetch_add(1, Ordering::Relaxed);
            return Err(TestCaseError::reject("does not compile"));
        };
        compiled.fetch_add(1, Ordering::Relaxed);
        for (i, (got, want)) in rows.iter().enumerate() {
            rows_seen.fetch_add(1, Ordering::Relaxed);
            if want.is_err() {
                row_errors.fetch_add(1, Ordering::Relaxed);
            }
            let row: Vec<String> = values.iter().map(|c| format!("{:?}", c[i])).collect();
            prop_assert_eq!(got, want, "expression {} row {} = {:?}", src, i, row);
        }
        Ok(())
    });
    eprintln!(
        "vexpr property test (seed {seed}): {} expressions compared over {} rows ({} rows with an error), {} generated expressions did not compile",
        compiled.load(Ordering::Relaxed),
        rows_seen.load(Ordering::Relaxed),
        row_errors.load(Ordering::Relaxed),
        rejected.load(Ordering::Relaxed),
    );
    if let Err(e) = result {
        panic!("{e}");
    }
}
