//! The expression components of a data flow through the binary: Derived
//! Column and Conditional Split (with every error disposition), the query
//! source on every database, the whole pipeline of the README's example, and
//! the bad flows they can make.

use crate::dataflow::{SALES, bad, flow, ok, pkg, rejected, source};
use crate::pg::databases;
use crate::support::*;

/// The lines of a CSV the flow wrote, without its header.
fn body(sb: &Sandbox, file: &str) -> Vec<String> {
    sb.read(file).lines().skip(1).map(str::to_string).collect()
}

#[test]
fn derived_column_adds_replaces_and_reads_variables() {
    let yaml = flow(&format!(
        "{}      - name: Add\n        type: derived_column\n        input: Sales\n        columns:\n          - {{ name: gross, expr: \"amount * @[User::Rate]\", type: \"DT_NUMERIC, 18, 2\" }}\n          - {{ name: region, expr: \"UPPER(TRIM(region))\", replace: true }}\n          - {{ name: year, expr: \"YEAR(sold_at)\" }}\n          - {{ name: label, expr: \"(DT_WSTR, 10)id + \\\"-\\\" + LEFT(TRIM(region), 1)\" }}\n      - {{ name: Out, type: flat_file_destination, input: Add, file: out.csv }}\n",
        source("")
    ))
    .replace(
        "tasks:",
        "variables:\n  Rate: { type: double, value: 2 }\ntasks:",
    );
    let sb = Sandbox::with_package(&yaml);
    sb.write("in/sales.csv", &SALES.replace("north", "  north "));
    ok(&sb);
    let out = sb.read("out.csv");
    assert!(
        out.starts_with("id,region,amount,sold_at,gross,year,label\n"),
        "{out}"
    );
    let lines = body(&sb, "out.csv");
    assert_eq!(
        lines[0], "1,NORTH,10.50,2024-01-02 10:00:00,21.00,2024,1-n",
        "{out}"
    );
    assert_eq!(
        lines[1], "2,SOUTH,20.00,2024-01-03 11:00:00,40.00,2024,2-s",
        "{out}"
    );
    assert_eq!(lines.len(), 4, "{out}");
}

/// A flow whose derived column divides by `quantity`, zero on row 2.
fn dividing(disposition: &str) -> Sandbox {
    let yaml = flow(&format!(
        "      - {{ name: In, type: flat_file_source, file: in.csv, columns: [name, {{ name: total, type: DT_I4 }}, {{ name: quantity, type: DT_I4 }}] }}\n      - {{ name: Price, type: derived_column, input: In, columns: [{{ name: unit, expr: \"total / quantity\" }}]{disposition} }}\n      - {{ name: Out, type: flat_file_destination, input: Price, file: out.csv }}\n{}",
        if disposition.contains("redirect") {
            "      - { name: Rejects, type: flat_file_destination, input: Price.error, file: rejects.csv }\n"
        } else {
            ""
        }
    ));
    let sb = Sandbox::with_package(&yaml);
    sb.write("in.csv", "name,total,quantity\na,10,2\nb,7,0\nc,9,3\n");
    sb
}

#[test]
fn derived_column_row_error_fails_naming_component_column_row_and_values() {
    let sb = dividing("");
    let out = no_panic(sb.run().output()).exit(1);
    out.says("component \"Price\"")
        .says("row 2, column \"unit\"")
        .says("division by zero")
        .says("quantity = 0");
    assert!(!sb.exists("out.csv"), "a failed flow writes no file");
}

#[test]
fn derived_column_row_error_ignored_gives_null() {
    let sb = dividing(", on_error: ignore");
    ok(&sb);
    assert_eq!(body(&sb, "out.csv"), ["a,10,2,5", "b,7,0,", "c,9,3,3"]);
}

#[test]
fn derived_column_row_error_redirected_with_error_columns() {
    let sb = dividing(", on_error: redirect");
    ok(&sb);
    assert_eq!(body(&sb, "out.csv"), ["a,10,2,5", "c,9,3,3"]);
    let rej = sb.read("rejects.csv");
    let lines: Vec<&str> = rej.lines().collect();
    assert_eq!(
        lines[0],
        "name,total,quantity,ErrorCode,ErrorColumn,ErrorDescription"
    );
    assert!(lines[1].starts_with("b,7,0,1,unit,"), "{rej}");
    assert!(lines[1].contains("row 2: division by zero"), "{rej}");
    assert_eq!(lines.len(), 2, "{rej}");
}

#[test]
fn derived_column_truncation_has_its_own_disposition() {
    let make = |extra: &str| {
        flow(&format!(
            "{}      - {{ name: Short, type: derived_column, input: Sales, columns: [{{ name: code, expr: \"UPPER(region)\", type: \"DT_WSTR, 4\" }}]{extra} }}\n      - {{ name: Out, type: flat_file_destination, input: Short, file: out.csv }}\n{}",
            source(""),
            if extra.contains("redirect") {
                "      - { name: Rejects, type: flat_file_destination, input: Short.error, file: rejects.csv }\n"
            } else {
                ""
            }
        ))
    };
    // Default: fail, naming the value and the length.
    let sb = Sandbox::with_package(&make(""));
    sb.write("in/sales.csv", SALES);
    no_panic(sb.run().output())
        .exit(1)
        .says("component \"Short\"")
        .says("row 1, column \"code\"")
        .says("value \"NORTH\" is longer than 4 characters");
    // Redirect truncations, but fail on other errors: "EAST" fits.
    let sb = Sandbox::with_package(&make(", on_truncation: redirect"));
    sb.write("in/sales.csv", SALES);
    ok(&sb);
    let good = body(&sb, "out.csv");
    assert_eq!(good.len(), 1, "{good:?}");
    assert!(good[0].ends_with(",EAST"), "{good:?}");
    let rej = body(&sb, "rejects.csv");
    assert_eq!(rej.len(), 3, "{rej:?}");
    assert!(
        rej[0].contains(",2,code,\"row 1: value \"\"NORTH\"\" is longer than 4 characters\""),
        "{rej:?}"
    );
}

#[test]
fn conditional_split_sends_each_row_to_the_first_true_case() {
    let yaml = flow(&format!(
        "{}      - name: Split\n        type: conditional_split\n        input: Sales\n        outputs:\n          - {{ name: Big, expr: \"amount >= 10\" }}\n          - {{ name: North, expr: \"region == \\\"north\\\"\" }}\n        default: Rest\n      - {{ name: Big, type: flat_file_destination, input: Split.Big, file: big.csv }}\n      - {{ name: North, type: row_count, input: Split.North, variable: User::NorthRows }}\n      - {{ name: Rest, type: flat_file_destination, input: Split.Rest, file: rest.csv }}\n",
        source("")
    ))
    .replace(
        "tasks:",
        "variables:\n  NorthRows: { type: int32, value: 0 }\ntasks:",
    );
    let sb = Sandbox::with_package(&yaml);
    sb.write("in/sales.csv", SALES);
    let out = ok(&sb);
    let ids = |f: &str| -> Vec<String> {
        body(&sb, f)
            .iter()
            .map(|l| l.split(',').next().unwrap_or("").to_string())
            .collect()
    };
    // 1 (north, 10.50) and 2 are big; 3 is north but small; 4 is the rest.
    assert_eq!(ids("big.csv"), ["1", "2"]);
    assert_eq!(ids("rest.csv"), ["4"]);
    out.says("path \"Split.North\" -> \"North\": 1 row(s)")
        .says("path \"Split.Big\" -> \"Big\": 2 row(s)");
}

/// A split on `ratio > 1`, where `ratio` is NULL on row 2.
fn null_condition(extra: &str) -> Sandbox {
    let yaml = flow(&format!(
        "      - {{ name: In, type: flat_file_source, file: in.csv, null: \"\", columns: [name, {{ name: ratio, type: DT_R8 }}] }}\n      - {{ name: Split, type: conditional_split, input: In, outputs: [{{ name: High, expr: \"ratio > 1\" }}]{extra} }}\n      - {{ name: High, type: flat_file_destination, input: Split.High, file: high.csv }}\n      - {{ name: Low, type: flat_file_destination, input: Split.default, file: low.csv }}\n{}",
        if extra.contains("redirect") {
            "      - { name: Rejects, type: flat_file_destination, input: Split.error, file: rejects.csv }\n"
        } else {
            ""
        }
    ));
    let sb = Sandbox::with_package(&yaml);
    sb.write("in.csv", "name,ratio\na,2.5\nb,\nc,0.5\n");
    sb
}

#[test]
fn conditional_split_null_condition_fails_by_default() {
    let sb = null_condition("");
    no_panic(sb.run().output())
        .exit(1)
        .says("component \"Split\"")
        .says("row 2, output \"High\"")
        .says("gave NULL")
        .says("ratio = NULL");
}

#[test]
fn conditional_split_null_condition_ignored_is_false_or_redirected() {
    let sb = null_condition(", on_error: ignore");
    ok(&sb);
    assert_eq!(body(&sb, "high.csv"), ["a,2.5"]);
    assert_eq!(body(&sb, "low.csv"), ["b,", "c,0.5"]);
    let sb = null_condition(", on_error: redirect");
    ok(&sb);
    assert_eq!(body(&sb, "low.csv"), ["c,0.5"]);
    let rej = body(&sb, "rejects.csv");
    assert_eq!(rej.len(), 1, "{rej:?}");
    assert!(
        rej[0].starts_with("b,,1,High,\"row 2: the condition \"\"ratio > 1\"\" gave NULL"),
        "{rej:?}"
    );
}

#[test]
fn sql_source_reads_a_query_with_params_on_every_database() {
    for db in databases("df_sql_source") {
        let yaml = pkg(&format!(
            "connections:\n  src: {}\nvariables:\n  Min: {{ type: int32, value: 2 }}\ntasks:\n  - name: Make\n    type: sql\n    connection: src\n    sql: \"DROP TABLE IF EXISTS items; CREATE TABLE items (id INTEGER, name VARCHAR(20), price NUMERIC(10,2)); INSERT INTO items VALUES (1, 'pen', 1.50), (2, 'ink', 3.25), (3, 'pad', 2.00), (4, NULL, 9.99)\"\n  - name: Copy\n    type: data_flow\n    after: [Make]\n    components:\n      - {{ name: Items, type: sql_source, connection: src, query: \"SELECT id, name, price FROM items WHERE id >= ? ORDER BY id\", params: [User::Min], columns: [{{ name: id, type: DT_I4 }}, {{ name: NAME, type: \"DT_WSTR, 10\" }}, {{ name: price, type: \"DT_NUMERIC, 10, 2\" }}] }}\n      - {{ name: Twice, type: derived_column, input: Items, columns: [{{ name: double, expr: \"price * 2\" }}] }}\n      - {{ name: Out, type: flat_file_destination, input: Twice, file: out.csv }}\n",
            db.conn
        ));
        let yaml = if db.kind == "postgres" {
            yaml.replace("id >= ?", "id >= $1::int")
        } else {
            yaml
        };
        let sb = Sandbox::with_package(&yaml);
        no_panic(db.run(&sb, "package.yaml").output()).exit(0);
        assert_eq!(
            body(&sb, "out.csv"),
            ["2,ink,3.25,6.50", "3,pad,2.00,4.00", "4,,9.99,19.98"],
            "{}",
            db.kind
        );
    }
}

#[test]
fn sql_source_names_a_column_the_query_lacks() {
    let sb = Sandbox::with_package(&pkg(
        "connections:\n  src: { kind: sqlite, path: s.db }\ntasks:\n  - name: Make\n    type: sql\n    connection: src\n    sql: CREATE TABLE t (a INTEGER)\n  - name: Copy\n    type: data_flow\n    after: [Make]\n    components:\n      - { name: T, type: sql_source, connection: src, table: t, columns: [a, b] }\n      - { name: Out, type: flat_file_destination, input: T, file: out.csv }\n",
    ));
    no_panic(sb.run().output())
        .exit(1)
        .says("component \"T\": the query has no column \"b\" (it has a)");
}

/// The README's flow: derived columns, a split, a lookup on the database, an
/// aggregate into a table, the small rows counted and the rejects kept.
#[test]
fn the_whole_pipeline_on_every_database() {
    for db in databases("df_pipeline") {
        let yaml = pkg(&format!(
            "connections:\n  dw: {}\nvariables:\n  SmallRows: {{ type: int32, value: 0 }}\ntasks:\n  - name: Dim\n    type: sql\n    connection: dw\n    sql: \"DROP TABLE IF EXISTS dim_region; DROP TABLE IF EXISTS sales_totals; CREATE TABLE dim_region (code VARCHAR(10), region_id INTEGER); INSERT INTO dim_region VALUES ('NORTH', 1), ('SOUTH', 2)\"\n  - name: Load Sales\n    type: data_flow\n    after: [Dim]\n    components:\n{}      - name: Add Columns\n        type: derived_column\n        input: Sales\n        columns:\n          - {{ name: gross, expr: \"amount * 1.2\" }}\n          - {{ name: region, expr: \"UPPER(TRIM(region))\", replace: true }}\n          - {{ name: year, expr: \"YEAR(sold_at)\" }}\n      - name: Split\n        type: conditional_split\n        input: Add Columns\n        outputs:\n          - {{ name: Big, expr: \"gross > 8\" }}\n        default: Small\n      - {{ name: Region, type: lookup, input: Split.Big, connection: dw, query: \"SELECT code, region_id FROM dim_region\", on: {{ region: code }}, add: [{{ name: region_id, type: DT_I4 }}], no_match: redirect }}\n      - {{ name: Totals, type: aggregate, input: Region, group_by: [region_id, year], columns: [{{ name: revenue, op: sum, of: gross }}, {{ name: sales, op: count }}] }}\n      - {{ name: Count Small, type: row_count, input: Split.Small, variable: User::SmallRows }}\n      - {{ name: Save Totals, type: table_destination, input: Totals, connection: dw, table: sales_totals, create: if_missing, truncate: true }}\n      - {{ name: Unknown Regions, type: flat_file_destination, input: Region.no_match, file: out/unknown.csv }}\n  - name: Check\n    type: sql\n    connection: dw\n    after: [Load Sales]\n    sql: \"CREATE TABLE IF NOT EXISTS small_seen (n INTEGER); INSERT INTO small_seen VALUES (?)\"\n    params: [User::SmallRows]\n",
            db.conn,
            source("")
        ));
        let yaml = if db.kind == "postgres" {
            yaml.replace("VALUES (?)", "VALUES ($1::int)")
        } else {
            yaml
        };
        let sb = Sandbox::with_package(&yaml);
        let mut sales = SALES.to_string();
        sales.push_str("5,west,30.00,2024-02-01 09:00:00\n");
        sb.write("in/sales.csv", &sales);
        no_panic(db.run(&sb, "package.yaml").output()).exit(0);
        // Big (gross > 8): 1 (12.6, north), 2 (24, south), 5 (36, west: no
        // match); small: 3 (6.3), 4 (8.4 > 8: big, east: no match).
        let rows = db.rows(
            &sb,
            "SELECT region_id, year, CAST(revenue AS TEXT), sales FROM sales_totals ORDER BY region_id",
        );
        assert_eq!(rows.len(), 2, "{} {rows:?}", db.kind);
        assert_eq!(rows[0][0].as_i64(), Some(1), "{} {rows:?}", db.kind);
        assert_eq!(rows[0][3].as_i64(), Some(1), "{} {rows:?}", db.kind);
        assert!(
            rows[1][2].to_string().contains("24"),
            "{} {rows:?}",
            db.kind
        );
        let unknown = body(&sb, "out/unknown.csv");
        assert_eq!(unknown.len(), 2, "{} {unknown:?}", db.kind);
        assert!(unknown[0].starts_with("4,EAST,"), "{} {unknown:?}", db.kind);
        let small = db.rows(&sb, "SELECT n FROM small_seen");
        assert_eq!(small[0][0].as_i64(), Some(1), "{} {small:?}", db.kind);
    }
}

#[test]
fn bad_derived_column_expression_names_the_column_and_line() {
    rejected(
        &bad(
            "      - name: D\n        type: derived_column\n        input: S\n        columns:\n          - { name: x, expr: \"n + nn\" }\n      - { name: Out, type: flat_file_destination, input: D, file: o.csv }\n",
        ),
        "12:",
        &[
            "component \"D\"",
            "column \"x\"",
            "bad expression \"n + nn\"",
        ],
    );
}

#[test]
fn bad_derived_column_existing_name_without_replace() {
    rejected(
        &bad(
            "      - { name: D, type: derived_column, input: S, columns: [{ name: n, expr: \"n + 1\" }] }\n      - { name: Out, type: flat_file_destination, input: D, file: o.csv }\n",
        ),
        "8:",
        &["column \"n\" already exists", "replace: true"],
    );
}

#[test]
fn bad_derived_column_replace_of_a_missing_column() {
    rejected(
        &bad(
            "      - { name: D, type: derived_column, input: S, columns: [{ name: nm, expr: \"n + 1\", replace: true }] }\n      - { name: Out, type: flat_file_destination, input: D, file: o.csv }\n",
        ),
        "8:",
        &[
            "column \"nm\" has `replace: true`",
            "the input has no such column",
            "it has a, n",
        ],
    );
}

#[test]
fn bad_derived_column_type_the_result_cannot_become() {
    rejected(
        &bad(
            "      - { name: D, type: derived_column, input: S, columns: [{ name: d, expr: \"n > 1\", type: DT_DBDATE }] }\n      - { name: Out, type: flat_file_destination, input: D, file: o.csv }\n",
        ),
        "8:",
        &[
            "column \"d\"",
            "gives DT_BOOL",
            "cannot be converted",
            "DT_DBDATE",
        ],
    );
}

#[test]
fn bad_derived_column_without_columns() {
    rejected(
        &bad(
            "      - { name: D, type: derived_column, input: S }\n      - { name: Out, type: flat_file_destination, input: D, file: o.csv }\n",
        ),
        "8:",
        &["a derived_column needs `columns"],
    );
}

#[test]
fn bad_conditional_split_condition_not_boolean() {
    rejected(
        &bad(
            "      - { name: C, type: conditional_split, input: S, outputs: [{ name: Big, expr: \"n * 2\" }] }\n      - { name: Out, type: flat_file_destination, input: C.Big, file: o.csv }\n",
        ),
        "8:",
        &["output \"Big\"", "gives DT_I4", "must give DT_BOOL"],
    );
}

#[test]
fn bad_conditional_split_output_named_twice() {
    rejected(
        &bad(
            "      - { name: C, type: conditional_split, input: S, outputs: [{ name: Big, expr: \"n > 2\" }, { name: Big, expr: \"n > 1\" }] }\n      - { name: Out, type: flat_file_destination, input: C.Big, file: o.csv }\n",
        ),
        "8:",
        &["output \"Big\" is named twice"],
    );
}

#[test]
fn bad_conditional_split_unknown_output_read() {
    rejected(
        &bad(
            "      - { name: C, type: conditional_split, input: S, outputs: [{ name: Big, expr: \"n > 2\" }] }\n      - { name: Out, type: flat_file_destination, input: C.Bigg, file: o.csv }\n",
        ),
        "9:",
        &["\"C\" has no output \"Bigg\"", "\"C.Big\"", "\"C.default\""],
    );
}

#[test]
fn bad_conditional_split_redirect_without_a_reader() {
    rejected(
        &bad(
            "      - { name: C, type: conditional_split, input: S, on_error: redirect, outputs: [{ name: Big, expr: \"n > 2\" }] }\n      - { name: Out, type: flat_file_destination, input: C.Big, file: o.csv }\n",
        ),
        "8:",
        &["its output \"C.error\" is not read"],
    );
}

#[test]
fn bad_sql_source_without_columns() {
    rejected(
        &format!(
            "connections:\n  dw: {{ kind: sqlite, path: dw.db }}\n{}",
            bad(
                "      - { name: Q, type: sql_source, connection: dw, table: t }\n      - { name: Out, type: flat_file_destination, input: Q, file: o.csv }\n"
            )
        ),
        "10:",
        &["a sql_source needs `columns`"],
    );
}

#[test]
fn bad_sql_source_unknown_parameter_variable() {
    rejected(
        &format!(
            "connections:\n  dw: {{ kind: sqlite, path: dw.db }}\n{}",
            bad(
                "      - { name: Q, type: sql_source, connection: dw, query: \"SELECT a FROM t WHERE a > ?\", params: [User::Nope], columns: [a] }\n      - { name: Out, type: flat_file_destination, input: Q, file: o.csv }\n"
            )
        ),
        "10:",
        &["unknown variable \"User::Nope\""],
    );
}

#[test]
fn bad_sql_source_query_and_table() {
    rejected(
        &format!(
            "connections:\n  dw: {{ kind: sqlite, path: dw.db }}\n{}",
            bad(
                "      - { name: Q, type: sql_source, connection: dw, query: \"SELECT 1 AS a\", table: t, columns: [a] }\n      - { name: Out, type: flat_file_destination, input: Q, file: o.csv }\n"
            )
        ),
        "10:",
        &["give `query` or `table`, not both"],
    );
}

#[test]
fn bad_merge_join_of_two_branches_of_one_source() {
    rejected(
        &bad(
            "      - { name: M, type: multicast, input: S }\n      - { name: J, type: merge_join, left: S, right: M, on: { a: a, n: n } }\n      - { name: Out, type: flat_file_destination, input: J, file: o.csv }\n",
        ),
        "9:",
        &[
            "component \"J\": both its inputs come from \"S\"",
            "would wait on each other",
        ],
    );
}

#[test]
fn bad_lookup_whose_reference_is_its_own_source() {
    rejected(
        &bad(
            "      - { name: L, type: lookup, input: S, input_ref: S, on: { a: a }, add: [{ name: n2, type: DT_I4 }] }\n      - { name: Out, type: flat_file_destination, input: L, file: o.csv }\n",
        ),
        "8:",
        &["component \"L\": both its inputs come from \"S\""],
    );
}

/// Inside a transacted container, a lookup reads its reference rows through
/// the container's transaction: it sees the dimension rows an earlier task
/// of the container inserted and has not committed yet.
#[test]
fn a_lookup_in_a_transaction_sees_the_rows_the_transaction_wrote() {
    for db in databases("df_lookup_in_tx") {
        let yaml = pkg(&format!(
            "connections:\n  dw: {}\ntasks:\n  - name: Make\n    type: sql\n    connection: dw\n    sql: \"DROP TABLE IF EXISTS dim; DROP TABLE IF EXISTS facts; CREATE TABLE dim (code VARCHAR(10), region_id INTEGER)\"\n  - name: Load\n    type: sequence\n    transaction: required\n    after: [Make]\n    tasks:\n      - {{ name: Dim, type: sql, connection: dw, sql: \"INSERT INTO dim VALUES ('north', 1), ('south', 2), ('east', 3)\" }}\n      - name: Facts\n        type: data_flow\n        after: [Dim]\n        components:\n{}      - {{ name: Region, type: lookup, input: Sales, connection: dw, table: dim, on: {{ region: code }}, add: [{{ name: region_id, type: DT_I4 }}] }}\n      - {{ name: Save, type: table_destination, input: Region, connection: dw, table: facts, create: if_missing }}\n",
            db.conn,
            source("")
                .replace("      - name: Sales", "          - name: Sales")
                .replace("\n        ", "\n            ")
                .replace("\n      - {", "\n          - {")
        ));
        let yaml = yaml
            .replace("      - {{ name: Region", "          - { name: Region")
            .replace("\n      - { name: Region", "\n          - { name: Region")
            .replace("\n      - { name: Save", "\n          - { name: Save");
        let sb = Sandbox::with_package(&yaml);
        sb.write("in/sales.csv", SALES);
        no_panic(db.run(&sb, "package.yaml").output()).exit(0);
        let rows = db.rows(&sb, "SELECT id, region_id FROM facts ORDER BY id");
        assert_eq!(rows.len(), 4, "{} {rows:?}", db.kind);
        assert_eq!(rows[3][1].as_i64(), Some(3), "{} {rows:?}", db.kind);
    }
}

#[test]
fn bad_conditional_split_default_named_error() {
    rejected(
        &bad(
            "      - { name: C, type: conditional_split, input: S, default: error, outputs: [{ name: Big, expr: \"n > 2\" }] }\n      - { name: Out, type: flat_file_destination, input: C.Big, file: o.csv }\n",
        ),
        "8:",
        &["`default: error` names the error output"],
    );
}
