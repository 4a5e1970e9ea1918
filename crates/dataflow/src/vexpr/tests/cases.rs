//! Fixed cases of the vectorised evaluator: each checks the expected values and errors
//! row by row, and that they are what `Compiled::eval` gives for the same row.

use crate::vexpr::{FlowColumns, VectorExpr, arrow_type, value_at};
use checkflow_expr::jiff::civil::{date, datetime};
use checkflow_expr::{DataType, Value};
use datafusion::arrow::datatypes::{DataType as Arrow, TimeUnit};

fn flow() -> FlowColumns {
    FlowColumns::new([
        ("amount", DataType::I4),
        ("Unit Price", DataType::R8),
        ("region", DataType::WStr { len: Some(10) }),
        ("day", DataType::DbTimestamp),
        ("big", DataType::I8),
    ])
}

fn rows() -> Vec<Vec<Value>> {
    let ts = |y, m, d, h| Value::DbTimestamp(datetime(y, m, d, h, 30, 15, 250_000_000));
    vec![
        vec![
            Value::I4(7),
            Value::I4(-7),
            Value::I4(0),
            Value::Null(DataType::I4),
            Value::I4(i32::MIN),
        ],
        vec![
            Value::R8(2.5),
            Value::R8(-1.0),
            Value::R8(0.0),
            Value::Null(DataType::R8),
            Value::R8(1e308),
        ],
        vec![
            Value::WStr("  north ".into()),
            Value::WStr("Süd".into()),
            Value::WStr(String::new()),
            Value::Null(DataType::WStr { len: None }),
            Value::WStr("ΣΑΣ ωΣ".into()),
        ],
        vec![
            ts(2024, 2, 29, 23),
            ts(2000, 2, 29, 0),
            ts(1900, 3, 1, 12),
            Value::Null(DataType::DbTimestamp),
            ts(2023, 12, 31, 1),
        ],
        vec![
            Value::I8(i64::MAX),
            Value::I8(-1),
            Value::I8(0),
            Value::Null(DataType::I8),
            Value::I8(i64::MIN),
        ],
    ]
}

/// Evaluates `src` both ways, checks they agree on every row, and returns the vectorised
/// results as text (`NULL`, the value's display form, or `error: message`).
fn run(src: &str) -> Vec<String> {
    let cols = flow();
    let values = rows();
    let pairs = super::both_ways(src, &cols, &values).unwrap_or_else(|e| panic!("{src}: {e}"));
    for (i, (got, want)) in pairs.iter().enumerate() {
        assert_eq!(got, want, "{src}, row {i}");
    }
    let vars = super::vars();
    let expr = VectorExpr::compile(src, &cols, &vars).expect("compiles");
    let out = expr
        .evaluate(&super::batch(&cols, &values), &vars)
        .expect("evaluates");
    (0..values[0].len())
        .map(|i| match super::vector_row(&expr, &out, i) {
            Ok(Value::Null(_)) => "NULL".to_string(),
            Ok(v) => v.to_string(),
            Err(e) => format!("error: {e}"),
        })
        .collect()
}

#[test]
fn integer_division_truncates_toward_zero() {
    assert_eq!(run("amount / 2"), ["3", "-3", "0", "NULL", "-1073741824"]);
    assert_eq!(run("amount % 3"), ["1", "-1", "0", "NULL", "-2"]);
    assert_eq!(
        run("7 / amount"),
        ["1", "-1", "error: division by zero: 7 / 0", "NULL", "0"]
    );
    assert_eq!(
        run("amount / -1"),
        [
            "-7",
            "7",
            "0",
            "NULL",
            "error: arithmetic overflow: -2147483648 / -1 does not fit DT_I4"
        ]
    );
    assert_eq!(run("big % -1"), ["0", "0", "0", "NULL", "0"]);
}

#[test]
fn overflow_is_a_row_error_not_a_batch_error() {
    let got = run("big + 1");
    assert_eq!(got[1], "0");
    assert!(got[0].starts_with("error: arithmetic overflow"), "{got:?}");
    assert_eq!(got[3], "NULL");
    let got = run("-amount");
    assert!(got[4].contains("does not fit DT_I4"), "{got:?}");
    assert_eq!(got[0], "-7");
    let got = run("[Unit Price] * 10");
    assert!(got[4].starts_with("error: arithmetic overflow"), "{got:?}");
    assert_eq!(got[0], "25");
}

#[test]
fn reals_and_decimals_follow_the_promotion_rules() {
    assert_eq!(
        run("[Unit Price] * 1.2"),
        ["3", "-1.2", "0", "NULL", "1.2E+308"]
    );
    assert_eq!(
        run("[Unit Price] * 2.5"),
        [
            "6.25",
            "-2.5",
            "0",
            "NULL",
            "error: arithmetic overflow: 1E+308 * 2.5 does not fit DT_R8"
        ]
    );
    assert_eq!(
        run("amount * 1.2"),
        ["8.4", "-8.4", "0.0", "NULL", "-2576980377.6"]
    );
    let got = run("[Unit Price] / (DT_R8)amount");
    assert_eq!(got[0], "0.35714285714285715");
    assert!(got[2].starts_with("error: division by zero"), "{got:?}");
}

#[test]
fn substring_is_one_based_and_counts_characters() {
    assert_eq!(
        run("SUBSTRING(region, 3, 3)"),
        ["nor", "d", "", "NULL", "Σ ω"]
    );
    let got = run("SUBSTRING(region, amount, 2)");
    assert_eq!(got[0], "h ");
    assert!(
        got[1].contains("SUBSTRING: the start position must be greater than 0, not -7"),
        "{got:?}"
    );
    assert_eq!(run("LEFT(region, 2)"), ["  ", "Sü", "", "NULL", "ΣΑ"]);
    assert_eq!(run("RIGHT(region, 2)"), ["h ", "üd", "", "NULL", "ωΣ"]);
    assert_eq!(run("LEN(region)"), ["8", "3", "0", "NULL", "6"]);
}

#[test]
fn nulls_propagate_and_replacenull_isnull_handle_them() {
    assert_eq!(
        run("NULL(DT_I4) + amount"),
        ["NULL", "NULL", "NULL", "NULL", "NULL"]
    );
    assert_eq!(
        run("amount + NULL(DT_I4)"),
        ["NULL", "NULL", "NULL", "NULL", "NULL"]
    );
    assert_eq!(
        run("ISNULL(amount)"),
        ["false", "false", "false", "true", "false"]
    );
    assert_eq!(
        run("REPLACENULL(amount, 42)"),
        ["7", "-7", "0", "42", "-2147483648"]
    );
    assert_eq!(
        run("REPLACENULL(region, \"none\")"),
        ["  north ", "Süd", "", "none", "ΣΑΣ ωΣ"]
    );
    // The second argument is cast only where the first is NULL.
    let got = run("REPLACENULL(amount, (DT_WSTR, 3)\"x\")");
    assert_eq!(got[0], "7");
    assert!(got[3].starts_with("error: cannot convert"), "{got:?}");
    assert_eq!(
        run("ISNULL(amount) ? \"missing\" : (DT_WSTR, 11)amount"),
        ["7", "-7", "0", "missing", "-2147483648"]
    );
}

#[test]
fn conditional_evaluates_only_the_branch_taken() {
    assert_eq!(
        run("amount == 0 ? 0 : 100 / amount"),
        ["14", "-14", "0", "NULL", "0"]
    );
    assert_eq!(
        run("amount != 0 ? 100 / amount : -1"),
        ["14", "-14", "-1", "NULL", "0"]
    );
}

#[test]
fn string_functions_and_length_truncation() {
    assert_eq!(
        run("UPPER(TRIM(region))"),
        ["NORTH", "SÜD", "", "NULL", "ΣΑΣ ΩΣ"]
    );
    assert_eq!(
        run("LOWER(region)"),
        ["  north ", "süd", "", "NULL", "σας ως"]
    );
    assert_eq!(run("(DT_WSTR, 2)region"), ["  ", "Sü", "", "NULL", "ΣΑ"]);
    assert_eq!(
        run("(DT_WSTR, 5)amount + \"|\""),
        ["7|", "-7|", "0|", "NULL", "-2147|"]
    );
    assert_eq!(
        run("LTRIM(region) + \"<\""),
        ["north <", "Süd<", "<", "NULL", "ΣΑΣ ωΣ<"]
    );
    assert_eq!(
        run("REVERSE(RTRIM(region))"),
        ["htron  ", "düS", "", "NULL", "Σω ΣΑΣ"]
    );
    assert_eq!(
        run("(DT_STR, 3, 1252)region"),
        ["  n", "Süd", "", "NULL", "ΣΑΣ"]
    );
}

#[test]
fn date_parts_including_leap_days() {
    assert_eq!(run("YEAR(day)"), ["2024", "2000", "1900", "NULL", "2023"]);
    assert_eq!(run("MONTH(day)"), ["2", "2", "3", "NULL", "12"]);
    assert_eq!(run("DAY(day)"), ["29", "29", "1", "NULL", "31"]);
    assert_eq!(
        run("DATEPART(\"dy\", day)"),
        ["60", "60", "60", "NULL", "365"]
    );
    assert_eq!(run("DATEPART(\"dw\", day)"), ["5", "3", "5", "NULL", "1"]);
    assert_eq!(
        run("DATEPART(\"ms\", day)"),
        ["250", "250", "250", "NULL", "250"]
    );
    assert_eq!(
        run("DATEADD(\"yy\", 1, day)"),
        [
            "2025-02-28 23:30:15.250",
            "2001-02-28 00:30:15.250",
            "1901-03-01 12:30:15.250",
            "NULL",
            "2024-12-31 01:30:15.250"
        ]
    );
    assert_eq!(
        run("DATEDIFF(\"dd\", (DT_DBTIMESTAMP)\"2000-01-01\", day)"),
        ["8825", "59", "-36465", "NULL", "8765"]
    );
    assert_eq!(
        run("day > (DT_DBDATE)\"2000-02-29\""),
        ["true", "true", "false", "NULL", "true"]
    );
}

#[test]
fn comparisons_and_logic() {
    assert_eq!(
        run("amount > 0 && region != \"\""),
        ["true", "false", "false", "NULL", "false"]
    );
    assert_eq!(
        run("amount > 0 || ISNULL(region)"),
        ["true", "false", "false", "true", "false"]
    );
    assert_eq!(
        run("region < \"a\""),
        ["true", "true", "true", "NULL", "false"]
    );
    assert_eq!(
        run("[Unit Price] == -0.0E0"),
        ["false", "false", "true", "NULL", "false"]
    );
    assert_eq!(
        run("big > amount"),
        ["true", "true", "false", "NULL", "false"]
    );
}

#[test]
fn variables_are_broadcast() {
    assert_eq!(
        run("amount * @N"),
        [
            "21",
            "-21",
            "0",
            "NULL",
            "error: arithmetic overflow: -2147483648 * 3 does not fit DT_I4"
        ]
    );
    let got = run("amount / @Z");
    assert!(
        got.iter().enumerate().all(|(i, g)| if i == 3 {
            g == "NULL"
        } else {
            g.starts_with("error: division by zero")
        }),
        "{got:?}"
    );
    assert_eq!(
        run("@[User::S] + region"),
        ["ab c  north ", "ab cSüd", "ab c", "NULL", "ab cΣΑΣ ωΣ"]
    );
}

#[test]
fn column_names_resolve_and_unknown_ones_are_errors() {
    let vars = super::vars();
    let cols = flow();
    assert!(VectorExpr::compile("[Unit Price] + AMOUNT", &cols, &vars).is_ok());
    let e = VectorExpr::compile("nosuch + 1", &cols, &vars).expect_err("unknown");
    assert!(
        e.to_string().contains("unknown identifier \"nosuch\""),
        "{e}"
    );
    let e = VectorExpr::compile("[No Such] + 1", &cols, &vars).expect_err("unknown");
    assert!(e.to_string().contains("column reference [No Such]"), "{e}");
    let c = VectorExpr::compile("region + (DT_WSTR, 5)amount", &cols, &vars).expect("compiles");
    assert_eq!(
        c.compiled().columns(),
        &[("region".to_string(), 2), ("amount".to_string(), 0)]
    );
}

#[test]
fn a_batch_with_other_columns_is_refused() {
    let vars = super::vars();
    let cols = flow();
    let expr = VectorExpr::compile("amount + 1", &cols, &vars).expect("compiles");
    let other = FlowColumns::new([("amount", DataType::I8)]);
    let batch = super::batch(&other, &[vec![Value::I8(1)]]);
    let e = expr.evaluate(&batch, &vars).expect_err("schema");
    assert!(e.to_string().contains("amount"), "{e}");
}

#[test]
fn arrow_types_of_ssis_types() {
    assert_eq!(arrow_type(&DataType::I4), Arrow::Int32);
    assert_eq!(arrow_type(&DataType::UI8), Arrow::UInt64);
    assert_eq!(
        arrow_type(&DataType::Numeric {
            precision: 12,
            scale: 3
        }),
        Arrow::Decimal128(12, 3)
    );
    assert_eq!(arrow_type(&DataType::Cy), Arrow::Decimal128(19, 4));
    assert_eq!(arrow_type(&DataType::WStr { len: Some(5) }), Arrow::Utf8);
    assert_eq!(arrow_type(&DataType::DbDate), Arrow::Date32);
    assert_eq!(
        arrow_type(&DataType::DbTimestamp),
        Arrow::Timestamp(TimeUnit::Millisecond, None)
    );
    assert_eq!(
        arrow_type(&DataType::DbTimestamp2 { scale: 7 }),
        Arrow::Timestamp(TimeUnit::Nanosecond, None)
    );
    assert_eq!(arrow_type(&DataType::Guid), Arrow::FixedSizeBinary(16));
    assert_eq!(arrow_type(&DataType::Bytes { len: Some(4) }), Arrow::Binary);
}

#[test]
fn every_type_round_trips_through_its_array() {
    use crate::vexpr::array_of;
    use checkflow_expr::rust_decimal::Decimal;
    let samples = vec![
        Value::Bool(true),
        Value::I1(-5),
        Value::UI8(u64::MAX),
        Value::R4(1.5),
        Value::Numeric {
            value: Decimal::new(-12345, 3),
            precision: 9,
            scale: 3,
        },
        Value::Decimal {
            value: Decimal::new(5, 1),
            scale: 1,
        },
        Value::Cy(-125_000),
        Value::WStr("Grüße".into()),
        Value::Str("abc".into()),
        Value::NText("long".into()),
        Value::Bytes(vec![0, 1, 255]),
        Value::Image(vec![9]),
        Value::Guid(0x6F9619FF_8B86_D011_B42D_00C04FC964FF),
        Value::DbDate(date(1, 1, 1)),
        Value::DbDate(date(9999, 12, 31)),
        Value::DbTimestamp(datetime(2024, 2, 29, 23, 59, 59, 999_000_000)),
        Value::Date(datetime(1899, 12, 30, 0, 0, 0, 0)),
        Value::FileTime(datetime(1601, 1, 1, 0, 0, 0, 0)),
        Value::DbTimestamp2 {
            value: datetime(1, 1, 1, 0, 0, 0, 123_456_000),
            scale: 6,
        },
        Value::DbTimestamp2 {
            value: datetime(2026, 11, 21, 4, 30, 0, 123_456_700),
            scale: 7,
        },
        Value::DbTime(checkflow_expr::jiff::civil::time(23, 59, 59, 0)),
        Value::DbTime2 {
            value: checkflow_expr::jiff::civil::time(1, 2, 3, 456_700_000),
            scale: 7,
        },
        Value::DbTimestampOffset {
            value: datetime(2026, 11, 21, 4, 30, 0, 0),
            offset: -210,
            scale: 3,
        },
    ];
    for v in samples {
        let ty = v.data_type();
        let arr = array_of(&[v.clone(), Value::Null(ty.clone())], &ty).expect("builds");
        assert_eq!(arr.data_type(), &arrow_type(&ty), "{ty}");
        assert_eq!(value_at(arr.as_ref(), &ty, 0).expect("reads"), v, "{ty}");
        assert!(
            value_at(arr.as_ref(), &ty, 1).expect("reads").is_null(),
            "{ty}"
        );
    }
}

#[test]
fn a_full_batch_of_8192_rows() {
    let vars = super::vars();
    let cols = FlowColumns::new([
        ("amount", DataType::R8),
        ("region", DataType::WStr { len: Some(12) }),
    ]);
    let n = 8192;
    let amounts: Vec<Value> = (0..n)
        .map(|i| {
            if i % 97 == 0 {
                Value::Null(DataType::R8)
            } else {
                Value::R8(f64::from(i) * 0.5)
            }
        })
        .collect();
    let regions: Vec<Value> = (0..n)
        .map(|i| Value::WStr(format!("  r{}é ", i % 50)))
        .collect();
    let batch = super::batch(&cols, &[amounts.clone(), regions.clone()]);
    let e = VectorExpr::compile("amount * 1.2", &cols, &vars).expect("compiles");
    let out = e.evaluate(&batch, &vars).expect("evaluates");
    assert!(out.errors.is_empty());
    assert_eq!(out.values.len(), n as usize);
    for i in [0usize, 1, 97, 8191] {
        let want = match &amounts[i] {
            Value::R8(x) => Value::R8(x * 1.2),
            other => other.clone(),
        };
        let got = value_at(out.values.as_ref(), e.result_type(), i).expect("reads");
        assert_eq!(format!("{got}"), format!("{want}"), "row {i}");
    }
    let e = VectorExpr::compile("UPPER(TRIM(region))", &cols, &vars).expect("compiles");
    let out = e.evaluate(&batch, &vars).expect("evaluates");
    assert!(out.errors.is_empty());
    assert_eq!(
        value_at(out.values.as_ref(), e.result_type(), 49).expect("reads"),
        Value::WStr("R49É".into())
    );
}
