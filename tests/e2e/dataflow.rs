//! The Data Flow task (`type: data_flow`) through the binary: every
//! component this build runs, every error disposition, the scenarios of a
//! failed flow that leaves nothing behind (20) and of eight flows in one
//! transaction (21), on SQLite and (where the test cluster is up) on
//! PostgreSQL, and a catalogue of bad flows with their messages.

use crate::pg::{Db, databases};
use crate::support::*;

/// A package with the standard `id` and `name`; `body` starts on line 3.
pub(crate) fn pkg(body: &str) -> String {
    format!("id: {ID}\nname: flows\n{body}")
}

/// Runs a package that must succeed.
#[track_caller]
pub(crate) fn ok(sb: &Sandbox) -> Output {
    no_panic(sb.run().output()).exit(0)
}

/// `run` and `validate` reject the package of `body` (see [`pkg`]) with
/// exit 5, naming `package.yaml:{at}` and every word; nothing ran.
#[track_caller]
pub(crate) fn rejected(body: &str, at: &str, words: &[&str]) {
    crate::support::rejected(&pkg(body), at, words);
}

pub(crate) const SALES: &str = "id,region,amount,sold_at\n\
1,north,10.50,2024-01-02 10:00:00\n\
2,south,20.00,2024-01-03 11:00:00\n\
3,north,5.25,2024-01-04 12:00:00\n\
4,east,7.00,2024-01-05 13:00:00\n";

const SALES_COLUMNS: &str = "columns:
        - { name: id, type: DT_I4 }
        - { name: region, type: \"DT_WSTR, 20\" }
        - { name: amount, type: \"DT_NUMERIC, 18, 2\" }
        - { name: sold_at, type: DT_DBTIMESTAMP }";

/// A one-flow package: `components` is the YAML list under `components:`.
pub(crate) fn flow(components: &str) -> String {
    pkg(&format!(
        "tasks:\n  - name: Load\n    type: data_flow\n    components:\n{components}"
    ))
}

pub(crate) fn source(extra: &str) -> String {
    format!(
        "      - name: Sales\n        type: flat_file_source\n        file: in/sales.csv\n        {SALES_COLUMNS}\n{extra}"
    )
}

#[test]
fn csv_to_a_table_created_if_missing_on_every_database() {
    for db in databases("df_csv_to_table") {
        let yaml = pkg(&format!(
            "connections:\n  dw: {}\ntasks:\n  - name: Load\n    type: data_flow\n    components:\n{}      - {{ name: Save, type: table_destination, input: Sales, connection: dw, table: sales, create: if_missing }}\n",
            db.conn,
            source("")
        ));
        let sb = Sandbox::with_package(&yaml);
        sb.write("in/sales.csv", SALES);
        no_panic(db.run(&sb, "package.yaml").output()).exit(0);
        let rows = db.rows(&sb, "SELECT id, region, amount FROM sales ORDER BY id");
        assert_eq!(rows.len(), 4, "{} {rows:?}", db.kind);
        assert_eq!(rows[0][0].as_i64(), Some(1), "{}", db.kind);
        assert_eq!(rows[0][1].as_str(), Some("north"), "{}", db.kind);
        let amount = rows[3][2].to_string();
        assert!(amount.contains('7'), "{} {amount}", db.kind);
        // A second run with truncate: still 4 rows, not 8.
        let yaml2 = yaml.replace("create: if_missing", "create: if_missing, truncate: true");
        sb.write("package.yaml", &yaml2);
        no_panic(db.run(&sb, "package.yaml").output()).exit(0);
        let n = db.rows(&sb, "SELECT COUNT(*) FROM sales");
        assert_eq!(n[0][0].as_i64(), Some(4), "{}", db.kind);
    }
}

#[test]
fn table_destination_maps_and_leaves_out_columns() {
    let sb = Sandbox::with_package(&pkg(&format!(
        "connections:\n  dw: {{ kind: sqlite, path: dw.db }}\ntasks:\n  - name: Make\n    type: sql\n    connection: dw\n    sql: CREATE TABLE t (sale_id INTEGER, total NUMERIC)\n  - name: Load\n    type: data_flow\n    after: [Make]\n    components:\n{}      - {{ name: Save, type: table_destination, input: Sales, connection: dw, table: t, columns: {{ id: sale_id, amount: total, region: null, sold_at: null }} }}\n",
        source("")
    )));
    sb.write("in/sales.csv", SALES);
    ok(&sb);
    let rows = Db::sqlite().rows(&sb, "SELECT sale_id, total FROM t ORDER BY sale_id");
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[1][0].as_i64(), Some(2));
}

#[test]
fn sort_writes_a_flat_file_in_order_and_descending() {
    let sb = Sandbox::with_package(&flow(&format!(
        "{}      - {{ name: Order, type: sort, input: Sales, by: [{{ column: amount, desc: true }}] }}\n      - {{ name: Out, type: flat_file_destination, input: Order, file: out/sorted.csv }}\n",
        source("")
    )));
    sb.write("in/sales.csv", SALES);
    ok(&sb);
    let out = sb.read("out/sorted.csv");
    let ids: Vec<&str> = out
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap_or(""))
        .collect();
    assert_eq!(ids, ["2", "1", "4", "3"], "{out}");
    assert!(out.starts_with("id,region,amount,sold_at\n"), "{out}");
    assert!(out.contains("2024-01-03 11:00:00"), "{out}");
}

#[test]
fn sort_distinct_keeps_one_row_per_key() {
    let sb = Sandbox::with_package(&flow(&format!(
        "{}      - {{ name: Regions, type: sort, input: Sales, by: [region], distinct: true }}\n      - {{ name: Out, type: flat_file_destination, input: Regions, file: out.csv, header: false }}\n",
        source("")
    )));
    sb.write("in/sales.csv", SALES);
    ok(&sb);
    let out = sb.read("out.csv");
    let regions: Vec<&str> = out
        .lines()
        .map(|l| l.split(',').nth(1).unwrap_or(""))
        .collect();
    assert_eq!(regions, ["east", "north", "south"], "{out}");
}

#[test]
fn aggregate_computes_every_op_per_group() {
    let sb = Sandbox::with_package(&flow(&format!(
        "{}      - name: Totals\n        type: aggregate\n        input: Sales\n        group_by: [region]\n        columns:\n          - {{ name: revenue, op: sum, of: amount }}\n          - {{ name: mean, op: avg, of: id }}\n          - {{ name: first, op: min, of: id }}\n          - {{ name: last, op: max, of: sold_at }}\n          - {{ name: sales, op: count }}\n          - {{ name: ids, op: count_distinct, of: id }}\n      - {{ name: By region, type: sort, input: Totals, by: [region] }}\n      - {{ name: Out, type: flat_file_destination, input: By region, file: totals.csv }}\n",
        source("")
    )));
    sb.write("in/sales.csv", SALES);
    ok(&sb);
    let out = sb.read("totals.csv");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0], "region,revenue,mean,first,last,sales,ids",
        "{out}"
    );
    assert_eq!(lines[1], "east,7.00,4,4,2024-01-05 13:00:00,1,1", "{out}");
    assert_eq!(lines[2], "north,15.75,2,1,2024-01-04 12:00:00,2,2", "{out}");
    assert_eq!(lines.len(), 4, "{out}");
}

#[test]
fn aggregate_without_group_by_gives_one_row() {
    let sb = Sandbox::with_package(&flow(&format!(
        "{}      - {{ name: All, type: aggregate, input: Sales, columns: [{{ name: n, op: count }}, {{ name: total, op: sum, of: amount }}] }}\n      - {{ name: Out, type: flat_file_destination, input: All, file: all.csv, header: false }}\n",
        source("")
    )));
    sb.write("in/sales.csv", SALES);
    ok(&sb);
    assert_eq!(sb.read("all.csv"), "4,42.75\n");
}

#[test]
fn union_all_multicast_and_row_count_set_variables() {
    let sb = Sandbox::with_package(&pkg(&format!(
        "variables:\n  Total: {{ type: int32, value: 0 }}\n  Copies: {{ type: int64, value: 0 }}\ntasks:\n  - name: Load\n    type: data_flow\n    components:\n{}      - name: More\n        type: flat_file_source\n        file: in/more.csv\n        {SALES_COLUMNS}\n      - {{ name: Both, type: union_all, inputs: [Sales, More] }}\n      - {{ name: Count, type: row_count, input: Both, variable: User::Total }}\n      - {{ name: Copy, type: multicast, input: Count }}\n      - {{ name: A, type: flat_file_destination, input: Copy, file: a.csv }}\n      - {{ name: Count copies, type: row_count, input: Copy, variable: User::Copies }}\n  - {{ name: Show, type: process, after: [Load], command: \"true\", expressions: {{ command: '\"echo \" + (DT_WSTR, 10) @[User::Total] + \" \" + (DT_WSTR, 10) @[User::Copies] + \" >> ledger.txt\"' }} }}\n",
        source("")
    )));
    sb.write("in/sales.csv", SALES);
    sb.write(
        "in/more.csv",
        "id,region,amount,sold_at\n9,west,1.00,2024-02-01 00:00:00\n",
    );
    ok(&sb);
    assert_eq!(sb.ledger(), ["5 5"]);
    assert_eq!(sb.read("a.csv").lines().count(), 6);
}

#[test]
fn files_of_a_folder_are_read_in_name_order_with_skip_rows_and_null() {
    let sb = Sandbox::with_package(&flow(
        "      - name: Parts\n        type: flat_file_source\n        files: { folder: in, pattern: \"part_*.txt\" }\n        delimiter: \"|\"\n        null: \"NULL\"\n        skip_rows: 1\n        columns: [{ name: k, type: DT_I4 }, v]\n      - { name: Out, type: flat_file_destination, input: Parts, file: out.csv, delimiter: \";\" }\n",
    ));
    sb.write("in/part_2.txt", "# second\nk|v\n3|c\n");
    sb.write("in/part_1.txt", "# first\nk|v\n1|a\n2|NULL\n");
    sb.write("in/other.txt", "# ignored\nk|v\n9|z\n");
    ok(&sb);
    assert_eq!(sb.read("out.csv"), "k;v\n1;a\n2;\n3;c\n");
}

#[test]
fn a_bad_value_fails_the_flow_naming_component_column_row_and_value() {
    let sb = Sandbox::with_package(&flow(&format!(
        "{}      - {{ name: Out, type: flat_file_destination, input: Sales, file: out.csv }}\n",
        source("")
    )));
    sb.write("in/sales.csv", &SALES.replace("20.00", "twenty"));
    no_panic(sb.run().output())
        .exit(1)
        .says("component \"Sales\"")
        .says("row 2")
        .says("column \"amount\"")
        .says("\"twenty\"");
    assert!(!sb.exists("out.csv"), "a failed flow leaves no file");
    let left: Vec<_> = std::fs::read_dir(sb.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        !left
            .iter()
            .any(|n| n.to_string_lossy().contains("checkflow-part")),
        "{left:?}"
    );
}

#[test]
fn a_value_too_long_for_its_column_fails_with_its_length() {
    let sb = Sandbox::with_package(&flow(
        "      - { name: Src, type: flat_file_source, file: in.csv, columns: [{ name: code, type: \"DT_WSTR, 3\" }] }\n      - { name: Out, type: flat_file_destination, input: Src, file: out.csv }\n",
    ));
    sb.write("in.csv", "code\nabc\nabcd\n");
    no_panic(sb.run().output())
        .exit(1)
        .says("row 2")
        .says("column \"code\"")
        .says("longer than 3 characters");
}

#[test]
fn on_error_ignore_makes_bad_values_null() {
    let sb = Sandbox::with_package(&flow(&format!(
        "{}        on_error: ignore\n      - {{ name: Out, type: flat_file_destination, input: Sales, file: out.csv, header: false }}\n",
        source("")
    )));
    sb.write("in/sales.csv", &SALES.replace("20.00", "twenty"));
    ok(&sb);
    let out = sb.read("out.csv");
    assert!(out.contains("2,south,,2024-01-03 11:00:00"), "{out}");
    assert_eq!(out.lines().count(), 4);
}

#[test]
fn on_error_redirect_sends_bad_rows_to_the_error_output() {
    let sb = Sandbox::with_package(&flow(&format!(
        "{}        on_error: redirect\n      - {{ name: Good, type: flat_file_destination, input: Sales, file: good.csv, header: false }}\n      - {{ name: Rejects, type: flat_file_destination, input: Sales.error, file: rejects.csv }}\n",
        source("")
    )));
    sb.write(
        "in/sales.csv",
        &format!("{SALES}5,west,1.0\n").replace("20.00", "twenty"),
    );
    ok(&sb);
    assert_eq!(sb.read("good.csv").lines().count(), 3);
    let rej = sb.read("rejects.csv");
    let lines: Vec<&str> = rej.lines().collect();
    assert_eq!(
        lines[0], "id,region,amount,sold_at,ErrorCode,ErrorColumn,ErrorDescription",
        "{rej}"
    );
    assert!(
        lines[1].starts_with("2,south,twenty,2024-01-03 11:00:00,1,amount,"),
        "{rej}"
    );
    assert!(lines[1].contains("cannot convert"), "{rej}");
    assert!(lines[2].starts_with("5,west,1.0,,3,,"), "{rej}");
    assert!(lines[2].contains("3 field(s), expected 4"), "{rej}");
}

#[test]
fn lookup_from_another_input_adds_columns_and_redirects_no_match() {
    let sb = Sandbox::with_package(&flow(&format!(
        "{}      - {{ name: Regions, type: flat_file_source, file: in/regions.csv, columns: [code, {{ name: region_id, type: DT_I4 }}] }}\n      - {{ name: Find, type: lookup, input: Sales, input_ref: Regions, on: {{ region: code }}, add: [region_id], no_match: redirect }}\n      - {{ name: Out, type: flat_file_destination, input: Find, file: found.csv, header: false }}\n      - {{ name: Missing, type: flat_file_destination, input: Find.no_match, file: missing.csv, header: false }}\n",
        source("")
    )));
    sb.write("in/sales.csv", SALES);
    sb.write("in/regions.csv", "code,region_id\nnorth,1\nsouth,2\n");
    ok(&sb);
    let found = sb.read("found.csv");
    assert!(
        found.contains("1,north,10.50,2024-01-02 10:00:00,1\n"),
        "{found}"
    );
    assert!(
        found.contains("2,south,20.00,2024-01-03 11:00:00,2\n"),
        "{found}"
    );
    assert_eq!(found.lines().count(), 3);
    let missing = sb.read("missing.csv");
    assert!(
        missing.starts_with("4,east,7.00,2024-01-05 13:00:00,4,region,"),
        "{missing}"
    );
}

#[test]
fn lookup_on_a_connection_fails_on_no_match_by_default() {
    for db in databases("df_lookup") {
        let yaml = pkg(&format!(
            "connections:\n  dw: {}\ntasks:\n  - name: Dim\n    type: sql\n    connection: dw\n    sql: |\n      CREATE TABLE dim_region (code TEXT, region_id INTEGER);\n      INSERT INTO dim_region VALUES ('north', 1), ('south', 2);\n  - name: Load\n    type: data_flow\n    after: [Dim]\n    components:\n{}      - {{ name: Find, type: lookup, input: Sales, connection: dw, query: \"SELECT code, region_id FROM dim_region\", on: {{ region: code }}, add: [{{ name: region_id, type: DT_I4 }}] }}\n      - {{ name: Out, type: flat_file_destination, input: Find, file: out.csv, header: false }}\n",
            db.conn,
            source("")
        ));
        let sb = Sandbox::with_package(&yaml);
        sb.write("in/sales.csv", SALES);
        no_panic(db.run(&sb, "package.yaml").output())
            .exit(1)
            .says("component \"Find\"")
            .says("row 4")
            .says("\"region\" = \"east\"");
        assert!(!sb.exists("out.csv"));
        // Without the east row, it passes and adds region_id.
        sb.write(
            "in/sales.csv",
            &SALES.replace("4,east,7.00,2024-01-05 13:00:00\n", ""),
        );
        sb.write(
            "package.yaml",
            &yaml
                .replace(
                    "CREATE TABLE dim_region",
                    "CREATE TABLE IF NOT EXISTS dim_region",
                )
                .replace(
                    "INSERT INTO dim_region VALUES ('north', 1), ('south', 2);",
                    "SELECT 1;",
                ),
        );
        no_panic(db.run(&sb, "package.yaml").output()).exit(0);
        assert_eq!(
            sb.read("out.csv").lines().last(),
            Some("3,north,5.25,2024-01-04 12:00:00,1"),
            "{}",
            db.kind
        );
    }
}

#[test]
fn lookup_no_match_ignore_adds_nulls() {
    let sb = Sandbox::with_package(&flow(&format!(
        "{}      - {{ name: Regions, type: flat_file_source, file: in/regions.csv, columns: [code, {{ name: region_id, type: DT_I4 }}] }}\n      - {{ name: Find, type: lookup, input: Sales, input_ref: Regions, on: {{ region: code }}, add: [region_id], no_match: ignore }}\n      - {{ name: Out, type: flat_file_destination, input: Find, file: found.csv, header: false }}\n",
        source("")
    )));
    sb.write("in/sales.csv", SALES);
    sb.write("in/regions.csv", "code,region_id\nnorth,1\n");
    ok(&sb);
    let found = sb.read("found.csv");
    assert!(
        found.contains("2,south,20.00,2024-01-03 11:00:00,\n"),
        "{found}"
    );
    assert_eq!(found.lines().count(), 4);
}

#[test]
fn merge_join_inner_and_left() {
    for (kind, expect) in [("inner", 2usize), ("left", 4), ("full", 5)] {
        let sb = Sandbox::with_package(&flow(&format!(
            "{}      - {{ name: Managers, type: flat_file_source, file: in/managers.csv, columns: [area, manager] }}\n      - {{ name: Join, type: merge_join, left: Sales, right: Managers, kind: {kind}, on: {{ region: area }} }}\n      - {{ name: Out, type: flat_file_destination, input: Join, file: joined.csv, header: true }}\n",
            source("")
        )));
        sb.write("in/sales.csv", SALES);
        sb.write("in/managers.csv", "area,manager\nnorth,Ann\nwest,Bo\n");
        ok(&sb);
        let out = sb.read("joined.csv");
        assert!(
            out.starts_with("id,region,amount,sold_at,area,manager\n"),
            "{kind}: {out}"
        );
        assert_eq!(out.lines().count() - 1, expect, "{kind}: {out}");
        assert!(
            out.contains("1,north,10.50,2024-01-02 10:00:00,north,Ann"),
            "{kind}: {out}"
        );
    }
}

#[test]
fn data_conversion_converts_and_redirects_what_does_not_convert() {
    let sb = Sandbox::with_package(&flow(
        "      - { name: Src, type: flat_file_source, file: in.csv, columns: [a, b] }\n      - name: Convert\n        type: data_conversion\n        input: Src\n        columns:\n          - { name: a, type: DT_I4 }\n          - { name: b, type: \"DT_WSTR, 2\", as: b2 }\n        on_error: redirect\n        on_truncation: redirect\n      - { name: Out, type: flat_file_destination, input: Convert, file: out.csv }\n      - { name: Bad, type: flat_file_destination, input: Convert.error, file: bad.csv, header: false }\n",
    ));
    sb.write("in.csv", "a,b\n1,xy\nzz,ok\n3,long\n");
    ok(&sb);
    assert_eq!(sb.read("out.csv"), "a,b,b2\n1,xy,xy\n");
    let bad = sb.read("bad.csv");
    assert!(bad.starts_with("zz,ok,1,a,"), "{bad}");
    assert!(bad.contains("\n3,long,2,b,"), "{bad}");
}

#[test]
fn audit_adds_the_package_and_task_names() {
    let sb = Sandbox::with_package(&flow(
        "      - { name: Src, type: flat_file_source, file: in.csv, columns: [a] }\n      - { name: Stamp, type: audit, input: Src }\n      - { name: Out, type: flat_file_destination, input: Stamp, file: out.csv }\n",
    ));
    sb.write("in.csv", "a\nx\n");
    ok(&sb);
    let out = sb.read("out.csv");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "a,ExecutionInstanceGUID,PackageName,TaskName,ExecutionStartTime,MachineName"
    );
    let f: Vec<&str> = lines[1].split(',').collect();
    assert_eq!((f[0], f[2], f[3]), ("x", "flows", "Load"), "{out}");
    assert!(f[1].len() >= 36, "{out}");
}

#[test]
fn parquet_written_by_one_flow_is_read_by_the_next() {
    let sb = Sandbox::with_package(&pkg(&format!(
        "tasks:\n  - name: Write\n    type: data_flow\n    components:\n{}      - {{ name: P, type: parquet_destination, input: Sales, file: out/sales.parquet }}\n  - name: Read\n    type: data_flow\n    after: [Write]\n    components:\n      - {{ name: P, type: parquet_source, file: out/sales.parquet, columns: [region, {{ name: amount, type: \"DT_NUMERIC, 18, 2\" }}] }}\n      - {{ name: Out, type: flat_file_destination, input: P, file: back.csv, header: false }}\n",
        source("")
    )));
    sb.write("in/sales.csv", SALES);
    ok(&sb);
    assert_eq!(
        sb.read("back.csv"),
        "north,10.50\nsouth,20.00\nnorth,5.25\neast,7.00\n"
    );
}

#[test]
fn recordset_destination_drives_a_foreach_loop() {
    let sb = Sandbox::with_package(&pkg(&format!(
        "variables:\n  Rows: {{ type: object }}\n  Region: {{ type: string, value: '' }}\n  Count: {{ type: int64, value: 0 }}\ntasks:\n  - name: Load\n    type: data_flow\n    components:\n{}      - {{ name: Per region, type: aggregate, input: Sales, group_by: [region], columns: [{{ name: n, op: count }}] }}\n      - {{ name: Regions, type: sort, input: Per region, by: [region] }}\n      - {{ name: Keep, type: recordset_destination, input: Regions, variable: User::Rows }}\n  - name: Each\n    type: foreach\n    after: [Load]\n    rows: User::Rows\n    map: [User::Region, User::Count]\n    tasks:\n      - {{ name: Say, type: process, command: \"true\", expressions: {{ command: '\"echo \" + @[User::Region] + \" \" + (DT_WSTR, 10) @[User::Count] + \" >> ledger.txt\"' }} }}\n",
        source("")
    )));
    sb.write("in/sales.csv", SALES);
    ok(&sb);
    assert_eq!(sb.ledger(), ["east 1", "north 2", "south 1"]);
}

#[test]
fn an_existing_file_is_kept_when_overwrite_is_false() {
    let sb = Sandbox::with_package(&flow(&format!(
        "{}      - {{ name: Out, type: flat_file_destination, input: Sales, file: out.csv, overwrite: false }}\n",
        source("")
    )));
    sb.write("in/sales.csv", SALES);
    sb.write("out.csv", "keep me\n");
    no_panic(sb.run().output()).exit(1).says("already exists");
    assert_eq!(sb.read("out.csv"), "keep me\n");
}

#[cfg(unix)]
#[test]
fn a_flat_file_destination_never_writes_through_a_link() {
    let sb = Sandbox::with_package(&flow(&format!(
        "{}      - {{ name: Out, type: flat_file_destination, input: Sales, file: out.csv }}\n",
        source("")
    )));
    sb.write("in/sales.csv", SALES);
    sb.write("victim.txt", "precious\n");
    std::os::unix::fs::symlink(sb.join("victim.txt"), sb.join("out.csv")).unwrap();
    ok(&sb);
    assert_eq!(sb.read("victim.txt"), "precious\n");
    assert!(sb.read("out.csv").starts_with("id,region"));
}

/// Scenario 20: one data flow per aggregate; one fails; the rerun runs only
/// that one, and the failed flow left no rows in its table.
#[test]
fn scenario_20_one_flow_per_aggregate_the_failed_one_alone_reruns_and_left_nothing() {
    for db in databases("scenario20") {
        let agg = |name: &str, file: &str, table: &str| {
            format!(
                "  - name: {name}\n    type: data_flow\n    after: [Make]\n    fail_package_on_failure: true\n    components:\n      - name: Src\n        type: flat_file_source\n        file: {file}\n        {SALES_COLUMNS}\n      - {{ name: Sum, type: aggregate, input: Src, group_by: [region], columns: [{{ name: total, op: sum, of: amount }}, {{ name: n, op: count }}] }}\n      - {{ name: Save, type: table_destination, input: Sum, connection: dw, table: {table} }}\n      - {{ name: Note, type: flat_file_destination, input: Src, file: out/{table}.csv }}\n"
            )
        };
        let yaml = pkg(&format!(
            "checkpoint: {{ file: run.ckpt, usage: if_exists, save: true }}\nflow: parallel\nconnections:\n  dw: {}\ntasks:\n  - name: Make\n    type: sql\n    connection: dw\n    sql: |\n      CREATE TABLE IF NOT EXISTS totals_a (region TEXT, total NUMERIC(18,2), n INTEGER);\n      CREATE TABLE IF NOT EXISTS totals_b (region TEXT, total NUMERIC(18,2), n INTEGER);\n      CREATE TABLE IF NOT EXISTS totals_c (region TEXT, total NUMERIC(18,2), n INTEGER);\n{}{}{}",
            db.conn,
            agg("By Region", "in/a.csv", "totals_a"),
            agg("By Region Too", "in/b.csv", "totals_b"),
            agg("Third", "in/c.csv", "totals_c"),
        ));
        let sb = Sandbox::with_package(&yaml);
        sb.write("in/a.csv", SALES);
        // The bad row comes after good ones: a partial load would show.
        sb.write(
            "in/b.csv",
            &format!("{SALES}5,west,oops,2024-01-06 00:00:00\n"),
        );
        sb.write("in/c.csv", SALES);
        no_panic(db.run(&sb, "package.yaml").output())
            .exit(1)
            .says("\"oops\"");
        let count = |t: &str| db.rows(&sb, &format!("SELECT COUNT(*) FROM {t}"))[0][0].as_i64();
        assert_eq!(count("totals_a"), Some(3), "{}", db.kind);
        assert_eq!(count("totals_c"), Some(3), "{}", db.kind);
        assert_eq!(
            count("totals_b"),
            Some(0),
            "{}: the failed flow left rows",
            db.kind
        );
        assert!(!sb.exists("out/totals_b.csv"));
        // Fix the file; the rerun runs only the failed flow.
        sb.write("in/b.csv", SALES);
        sb.write("in/a.csv", "garbage that would fail if read again\n");
        no_panic(db.run(&sb, "package.yaml").output()).exit(0);
        assert_eq!(count("totals_a"), Some(3), "{}", db.kind);
        assert_eq!(count("totals_b"), Some(3), "{}", db.kind);
        assert_eq!(count("totals_c"), Some(3), "{}", db.kind);
        let north = db.rows(&sb, "SELECT total, n FROM totals_b WHERE region = 'north'");
        assert!(
            north[0][0].to_string().contains("15.75"),
            "{}: {north:?}",
            db.kind
        );
        assert_eq!(north[0][1].as_i64(), Some(2), "{}", db.kind);
    }
}

/// Scenario 21: eight data flows loading eight tables in a transacted
/// sequence; the sixth fails: no table holds rows, and the rerun loads all
/// eight exactly once.
#[test]
fn scenario_21_eight_flows_in_a_transacted_sequence_all_or_nothing() {
    for db in databases("scenario21") {
        let mut tasks = String::new();
        let mut create = String::new();
        for i in 1..=8 {
            create.push_str(&format!(
                "CREATE TABLE IF NOT EXISTS t{i} (id INTEGER, region TEXT);\n          "
            ));
            tasks.push_str(&format!(
                "      - name: Flow {i}\n        type: data_flow\n        components:\n          - {{ name: Src, type: flat_file_source, file: in/{i}.csv, columns: [{{ name: id, type: DT_I4 }}, region] }}\n          - {{ name: Save, type: table_destination, input: Src, connection: dw, table: t{i} }}\n"
            ));
        }
        let yaml = pkg(&format!(
            "checkpoint: {{ file: run.ckpt, usage: if_exists, save: true }}\nconnections:\n  dw: {}\ntasks:\n  - name: Make\n    type: sql\n    connection: dw\n    sql: |\n          {create}\n  - name: Load all\n    type: sequence\n    after: [Make]\n    transaction: required\n    fail_package_on_failure: true\n    tasks:\n{tasks}",
            db.conn
        ));
        let sb = Sandbox::with_package(&yaml);
        for i in 1..=8 {
            let body = if i == 6 {
                "id,region\n1,a\nx,b\n".to_string()
            } else {
                format!("id,region\n{i},a\n{},b\n", i * 10)
            };
            sb.write(&format!("in/{i}.csv"), &body);
        }
        no_panic(db.run(&sb, "package.yaml").output())
            .exit(1)
            .says("component \"Src\"");
        for i in 1..=8 {
            let n = db.rows(&sb, &format!("SELECT COUNT(*) FROM t{i}"))[0][0].as_i64();
            assert_eq!(n, Some(0), "{}: t{i} holds rows after the failure", db.kind);
        }
        sb.write("in/6.csv", "id,region\n6,a\n60,b\n");
        no_panic(db.run(&sb, "package.yaml").output()).exit(0);
        for i in 1..=8 {
            let r = db.rows(&sb, &format!("SELECT COUNT(*), MIN(id) FROM t{i}"));
            assert_eq!(r[0][0].as_i64(), Some(2), "{}: t{i}", db.kind);
            assert_eq!(r[0][1].as_i64(), Some(i), "{}: t{i}", db.kind);
        }
    }
}

#[test]
fn the_run_shows_rows_per_path() {
    let sb = Sandbox::with_package(&flow(&format!(
        "{}      - {{ name: Out, type: flat_file_destination, input: Sales, file: out.csv }}\n",
        source("")
    )));
    sb.write("in/sales.csv", SALES);
    no_panic(sb.cmd(["run", "package.yaml", "--log", "json"]).output())
        .exit(0)
        .says("path \\\"Sales\\\" -> \\\"Out\\\": 4 row(s)")
        .says("\"event\":\"metrics\"");
    // The summary shows the figures under the task; the report holds them.
    let out = no_panic(
        sb.cmd(["run", "package.yaml", "--report", "report.json"])
            .output(),
    )
    .exit(0);
    out.says("4 row(s) read")
        .says("rows: Sales -> Out 4")
        .says("time: Sales ");
    let report: serde_json::Value =
        serde_json::from_str(&sb.read("report.json")).expect("the report is JSON");
    let m = &report["executables"][0]["metrics"];
    assert_eq!(m["rows_read"], 4, "{m}");
    assert_eq!(m["paths"][0]["from"], "Sales", "{m}");
    assert_eq!(m["paths"][0]["to"], "Out", "{m}");
    assert_eq!(m["paths"][0]["rows"], 4, "{m}");
    assert_eq!(m["components"][1]["component"], "Out", "{m}");
    assert!(m["components"][1]["seconds"].is_number(), "{m}");
}

// ---- bad flows: exit 5, the line, the component and the column ----

/// The source of the bad flows: `S` reads `in.csv` (`a`, and `n` a number).
pub(crate) const SRC: &str = "      - { name: S, type: flat_file_source, file: in.csv, columns: [a, { name: n, type: DT_I4 }] }\n";

pub(crate) fn bad(rest: &str) -> String {
    format!("tasks:\n  - name: Load\n    type: data_flow\n    components:\n{SRC}{rest}")
}

#[test]
fn bad_unknown_component_type() {
    rejected(
        &bad("      - { name: X, type: sortt, input: S }\n"),
        "8:",
        &[
            "component \"X\"",
            "unknown component type \"sortt\"",
            "did you mean sort",
        ],
    );
}

#[test]
fn bad_duplicate_component_name() {
    rejected(
        &bad("      - { name: S, type: multicast, input: S }\n"),
        "8:",
        &["component \"S\" is defined twice"],
    );
}

#[test]
fn bad_unknown_input() {
    rejected(
        &bad("      - { name: Out, type: flat_file_destination, input: Sx, file: o.csv }\n"),
        "8:",
        &[
            "component \"Out\"",
            "input \"Sx\" is not a component of this flow",
        ],
    );
}

#[test]
fn bad_unknown_output_of_a_component() {
    rejected(
        &bad("      - { name: Out, type: flat_file_destination, input: S.error, file: o.csv }\n"),
        "8:",
        &["\"S\" has no output \"error\"", "\"S.output\""],
    );
}

#[test]
fn bad_cycle() {
    rejected(
        &bad(
            "      - { name: A, type: union_all, inputs: [S, B] }\n      - { name: B, type: multicast, input: A }\n      - { name: Out, type: flat_file_destination, input: B, file: o.csv }\n",
        ),
        "8:",
        &["\"A\", \"B\", \"Out\" form a cycle"],
    );
}

#[test]
fn bad_unknown_column_in_sort() {
    rejected(
        &bad(
            "      - { name: O, type: sort, input: S, by: [{ column: nn }] }\n      - { name: Out, type: flat_file_destination, input: O, file: o.csv }\n",
        ),
        "8:",
        &[
            "component \"O\"",
            "unknown column \"nn\" in `by`",
            "the input has a, n",
        ],
    );
}

#[test]
fn bad_unknown_column_in_group_by() {
    rejected(
        &bad(
            "      - { name: G, type: aggregate, input: S, group_by: [zz], columns: [{ name: c, op: count }] }\n      - { name: Out, type: flat_file_destination, input: G, file: o.csv }\n",
        ),
        "8:",
        &["unknown column \"zz\" in `group_by`"],
    );
}

#[test]
fn bad_sum_of_text() {
    rejected(
        &bad(
            "      - { name: G, type: aggregate, input: S, columns: [{ name: c, op: sum, of: a }] }\n      - { name: Out, type: flat_file_destination, input: G, file: o.csv }\n",
        ),
        "8:",
        &["op sum needs a numeric column", "\"a\" is DT_WSTR"],
    );
}

#[test]
fn bad_aggregate_op() {
    rejected(
        &bad(
            "      - { name: G, type: aggregate, input: S, columns: [{ name: c, op: median, of: n }] }\n      - { name: Out, type: flat_file_destination, input: G, file: o.csv }\n",
        ),
        "8:",
        &["unknown op \"median\""],
    );
}

#[test]
fn bad_unread_output() {
    rejected(
        &bad(
            "      - { name: O, type: sort, input: S, by: [n] }\n      - { name: Out, type: flat_file_destination, input: S, file: o.csv }\n",
        ),
        "8:",
        &["component \"O\": its output is not read by any component"],
    );
}

#[test]
fn bad_unread_error_output() {
    rejected(
        "tasks:\n  - name: Load\n    type: data_flow\n    components:\n      - { name: S, type: flat_file_source, file: in.csv, columns: [a], on_error: redirect }\n      - { name: Out, type: flat_file_destination, input: S, file: o.csv }\n",
        "7:",
        &["its output \"S.error\" is not read by any component"],
    );
}

#[test]
fn bad_resume_with_a_sort_says_why() {
    rejected(
        &format!(
            "tasks:\n  - name: Load\n    type: data_flow\n    resume: true\n    components:\n{SRC}      - {{ name: O, type: sort, input: S, by: [n] }}\n      - {{ name: Out, type: flat_file_destination, input: O, file: o.csv }}\n"
        ),
        "4:",
        &[
            "`resume: true` cannot be used with component \"O\" (a sort)",
            "needs all rows before it sends one",
        ],
    );
}

#[test]
fn bad_commit_rows_without_resume() {
    rejected(
        &format!(
            "tasks:\n  - name: Load\n    type: data_flow\n    commit_rows: 100\n    components:\n{SRC}      - {{ name: Out, type: flat_file_destination, input: S, file: o.csv }}\n"
        ),
        "6:",
        &["`commit_rows` needs `resume: true`"],
    );
}

#[test]
fn bad_type_string() {
    rejected(
        "tasks:\n  - name: Load\n    type: data_flow\n    components:\n      - { name: S, type: flat_file_source, file: in.csv, columns: [{ name: a, type: \"DT_WSTR\" }] }\n      - { name: Out, type: flat_file_destination, input: S, file: o.csv }\n",
        "7:",
        &["column \"a\"", "DT_WSTR takes 1 parameter"],
    );
}

#[test]
fn bad_missing_columns_on_a_source() {
    rejected(
        "tasks:\n  - name: Load\n    type: data_flow\n    components:\n      - { name: S, type: flat_file_source, file: in.csv }\n      - { name: Out, type: flat_file_destination, input: S, file: o.csv }\n",
        "7:",
        &["a flat_file_source needs `columns`"],
    );
}

#[test]
fn bad_unknown_field_of_a_component() {
    rejected(
        &bad(
            "      - { name: Out, type: flat_file_destination, input: S, file: o.csv, delimter: \";\" }\n",
        ),
        "8:",
        &[
            "unknown field `delimter` for a flat_file_destination",
            "did you mean `delimiter`",
        ],
    );
}

#[test]
fn bad_on_error_value() {
    rejected(
        "tasks:\n  - name: Load\n    type: data_flow\n    components:\n      - { name: S, type: flat_file_source, file: in.csv, columns: [a], on_error: skip }\n      - { name: Out, type: flat_file_destination, input: S, file: o.csv }\n",
        "7:",
        &["`on_error: skip` must be fail, ignore or redirect"],
    );
}

#[test]
fn bad_missing_input() {
    rejected(
        &bad(
            "      - { name: Out, type: flat_file_destination, file: o.csv }\n      - { name: M, type: multicast, input: S }\n      - { name: O2, type: flat_file_destination, input: M, file: p.csv }\n",
        ),
        "8:",
        &["a flat_file_destination needs `input`"],
    );
}

#[test]
fn bad_input_on_a_source() {
    rejected(
        &bad(
            "      - { name: T, type: flat_file_source, input: S, file: in.csv, columns: [a] }\n      - { name: Out, type: flat_file_destination, input: T, file: o.csv }\n",
        ),
        "8:",
        &[
            "`input` is not a field of flat_file_source",
            "reads no input",
        ],
    );
}

#[test]
fn bad_union_all_with_one_input() {
    rejected(
        &bad(
            "      - { name: U, type: union_all, inputs: [S] }\n      - { name: Out, type: flat_file_destination, input: U, file: o.csv }\n",
        ),
        "8:",
        &["a union_all needs at least two `inputs`"],
    );
}

#[test]
fn bad_union_all_type_mismatch() {
    rejected(
        &bad(
            "      - { name: T, type: flat_file_source, file: in.csv, columns: [{ name: n, type: DT_DBDATE }] }\n      - { name: U, type: union_all, inputs: [S, T] }\n      - { name: Out, type: flat_file_destination, input: U, file: o.csv }\n",
        ),
        "9:",
        &["column \"n\" is DT_I4 in \"S\" but DT_DBDATE in \"T\""],
    );
}

#[test]
fn bad_merge_join_unknown_right_column() {
    rejected(
        &bad(
            "      - { name: T, type: flat_file_source, file: in.csv, columns: [b] }\n      - { name: J, type: merge_join, left: S, right: T, on: { a: c } }\n      - { name: Out, type: flat_file_destination, input: J, file: o.csv }\n",
        ),
        "9:",
        &["unknown column \"c\" in `on` (right input)"],
    );
}

#[test]
fn bad_merge_join_types_do_not_compare() {
    rejected(
        &bad(
            "      - { name: T, type: flat_file_source, file: in.csv, columns: [b] }\n      - { name: J, type: merge_join, left: S, right: T, on: { n: b } }\n      - { name: Out, type: flat_file_destination, input: J, file: o.csv }\n",
        ),
        "9:",
        &["cannot join column \"n\" (DT_I4) with \"b\" (DT_WSTR)"],
    );
}

#[test]
fn bad_row_count_variable() {
    rejected(
        &bad("      - { name: C, type: row_count, input: S, variable: User::Nope }\n"),
        "8:",
        &["unknown variable \"User::Nope\""],
    );
}

#[test]
fn bad_recordset_needs_an_object_variable() {
    rejected(
        &format!(
            "variables:\n  N: {{ type: int32, value: 0 }}\n{}",
            bad("      - { name: R, type: recordset_destination, input: S, variable: User::N }\n")
        ),
        "10:",
        &["a recordset_destination needs an object variable"],
    );
}

#[test]
fn bad_table_destination_unknown_connection() {
    rejected(
        &bad(
            "      - { name: T, type: table_destination, input: S, connection: nope, table: t }\n",
        ),
        "4:",
        &["unknown connection \"nope\""],
    );
}

#[test]
fn bad_table_destination_mapping_unknown_column() {
    rejected(
        &format!(
            "connections:\n  dw: {{ kind: sqlite, path: dw.db }}\n{}",
            bad(
                "      - { name: T, type: table_destination, input: S, connection: dw, table: t, columns: { zz: x } }\n"
            )
        ),
        "10:",
        &["unknown column \"zz\" in `columns`"],
    );
}

#[test]
fn bad_memory_limit() {
    rejected(
        &format!(
            "tasks:\n  - name: Load\n    type: data_flow\n    memory_limit: lots\n    components:\n{SRC}      - {{ name: Out, type: flat_file_destination, input: S, file: o.csv }}\n"
        ),
        "6:",
        &["`memory_limit: lots` is not a size"],
    );
}

#[test]
fn bad_empty_components() {
    rejected(
        "tasks:\n  - name: Load\n    type: data_flow\n    components: []\n",
        "6:",
        &["`components` is empty"],
    );
}

#[test]
fn bad_lookup_add_column_unknown_in_reference() {
    rejected(
        &bad(
            "      - { name: R, type: flat_file_source, file: r.csv, columns: [a, id] }\n      - { name: L, type: lookup, input: S, input_ref: R, on: { a: a }, add: [idd] }\n      - { name: Out, type: flat_file_destination, input: L, file: o.csv }\n",
        ),
        "9:",
        &["unknown column \"idd\" in `add`"],
    );
}

#[test]
fn bad_data_conversion_type() {
    rejected(
        &bad(
            "      - { name: C, type: data_conversion, input: S, columns: [{ name: a, type: DT_NOPE }] }\n      - { name: Out, type: flat_file_destination, input: C, file: o.csv }\n",
        ),
        "8:",
        &["column \"a\"", "DT_NOPE"],
    );
}

#[test]
fn bad_sort_without_by() {
    rejected(
        &bad(
            "      - { name: O, type: sort, input: S }\n      - { name: Out, type: flat_file_destination, input: O, file: o.csv }\n",
        ),
        "8:",
        &["a sort needs `by"],
    );
}
