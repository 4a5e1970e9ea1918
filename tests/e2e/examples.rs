//! The examples, run as a user runs them: `examples/warehouse` (downloads
//! to aggregates: download one file per dimension and the facts, bulk insert one
//! dimension per task, compute aggregates) from a copy in a temp folder,
//! through the real binary, its first run failing by design and its rerun
//! restarting from the checkpoint.
//!
//! The source files come from the loopback HTTP server of the download tests
//! (it records every request), playing the source system as
//! `examples/warehouse/serve.sh` does: the first time, the products file has
//! a repeated id; by the rerun it is corrected.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::support::*;
use crate::test_server::HttpServer;

/// The example's folder in the repository. (Relative: `cargo test` runs
/// the tests in the package's folder, whereas `env!("CARGO_MANIFEST_DIR")`
/// names the checkout the test binary was built from, which need not be this
/// one when checkouts share a target folder.)
fn example_dir(name: &str) -> PathBuf {
    std::env::current_dir()
        .expect("the current folder")
        .join("examples")
        .join(name)
}

/// Copies `src` into `dst`, leaving out `work/` (what a local run of the
/// example wrote), so the test starts from what the repository holds.
fn copy_example(src: &Path, dst: &Path) {
    for entry in fs::read_dir(src).unwrap_or_else(|e| panic!("read {}: {e}", src.display())) {
        let entry = entry.expect("a folder entry");
        let name = entry.file_name();
        if name == "work" {
            continue;
        }
        let to = dst.join(&name);
        if entry.file_type().expect("file type").is_dir() {
            fs::create_dir_all(&to).expect("create folder");
            copy_example(&entry.path(), &to);
        } else {
            fs::copy(entry.path(), &to)
                .unwrap_or_else(|e| panic!("copy {}: {e}", entry.path().display()));
        }
    }
}

/// The rows `sql` returns from the example's database.
fn query(sb: &Sandbox, sql: &str) -> Vec<Vec<Value>> {
    sql_rows(sb, "{ kind: sqlite, path: work/warehouse.db }", &[], sql)
}

/// Rows and distinct ids of each dimension and of the facts.
fn table_counts(sb: &Sandbox) -> BTreeMap<String, (i64, i64)> {
    let sql = ["dim_customer", "dim_store", "dim_product", "fact_sales"]
        .iter()
        .map(|t| format!("SELECT '{t}', COUNT(*), COUNT(DISTINCT id) FROM {t}"))
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    query(sb, &sql)
        .into_iter()
        .map(|r| {
            (
                r[0].as_str().expect("a table name").to_owned(),
                (
                    r[1].as_i64().expect("a count"),
                    r[2].as_i64().expect("a count"),
                ),
            )
        })
        .collect()
}

/// How many times each path started, over the `--log json` output of runs.
fn starts(runs: &[&Output]) -> BTreeMap<String, usize> {
    let mut n = BTreeMap::new();
    for out in runs {
        for ev in out.json_lines() {
            if ev["event"] == "started" {
                let path = ev["path"].as_str().expect("started.path").to_owned();
                *n.entry(path).or_default() += 1;
            }
        }
    }
    n
}

/// Requests per path the server answered since its hits were last cleared.
fn requests(server: &HttpServer) -> BTreeMap<String, Vec<u16>> {
    let mut by_path: BTreeMap<String, Vec<u16>> = BTreeMap::new();
    for hit in server.hits() {
        by_path.entry(hit.path).or_default().push(hit.status);
    }
    by_path
}

#[test]
fn warehouse_example_restarts_at_the_failed_dimension_without_downloading_or_loading_again() {
    let sb = Sandbox::new();
    copy_example(&example_dir("warehouse"), sb.path());
    let data = |name: &str| sb.read_bytes(&format!("data/{name}"));

    // The source system: its first products export repeats an id.
    let server = HttpServer::start();
    for name in ["customers.csv", "stores.csv", "sales.csv"] {
        server.add(&format!("/{name}"), data(name));
    }
    server.add("/products.csv", data("products-with-duplicate.csv"));
    let base = server.url("");
    let run = || sb.run_json().env("WAREHOUSE_URL", &base).output();

    // First run: every file is fetched once; the dimensions before Products
    // load; the Products load fails on the repeated id and keeps the
    // checkpoint (Products is a restart point).
    let first = run()
        .exit(1)
        .says("UNIQUE constraint failed: dim_product.id");
    assert_eq!(
        requests(&server),
        BTreeMap::from(
            [
                "/customers.csv",
                "/products.csv",
                "/sales.csv",
                "/stores.csv"
            ]
            .map(|p| (p.to_owned(), vec![200]))
        ),
        "each file is downloaded once in the first run"
    );
    let summary = first.summary();
    for (path, status) in [
        ("Download/Get Customers", "succeeded"),
        ("Load Dimensions/Customers", "succeeded"),
        ("Load Dimensions/Stores", "succeeded"),
        ("Load Dimensions/Products/Get Products", "succeeded"),
        ("Load Dimensions/Products/Load", "failed"),
        ("Sales", "not_run"),
        ("Revenue by Store", "not_run"),
    ] {
        assert_eq!(status_of(&summary, path), status, "{path} in the first run");
    }
    assert!(
        sb.exists("work/warehouse.ckpt"),
        "the checkpoint is kept\n{first:?}"
    );
    let recorded = completed_paths(&sb.show("work/warehouse.ckpt"));
    let recorded_first: BTreeSet<String> = [
        "Create Tables",
        "Download",
        "Download/Get Customers",
        "Download/Get Stores",
        "Download/Get Sales",
        "Load Dimensions/Customers",
        "Load Dimensions/Stores",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    assert_eq!(recorded, recorded_first, "what the first run recorded");
    let counts = table_counts(&sb);
    assert_eq!(counts["dim_customer"], (8, 8));
    assert_eq!(counts["dim_store"], (3, 3));
    assert_eq!(
        counts["dim_product"],
        (0, 0),
        "the failed load is one transaction: no row is left"
    );
    assert_eq!(counts["fact_sales"], (0, 0));

    // The plan of the rerun restores the downloads and the loads that were
    // recorded, and reruns the Products unit whole (fetch, then load).
    let actions: BTreeMap<String, String> = plan_actions(&sb.plan()).into_iter().collect();
    for path in &recorded_first {
        assert_eq!(actions[path], "restore", "plan for {path}");
    }
    // What the rerun runs: the Products unit's tasks and all that follows.
    let rerun = [
        "Load Dimensions/Products/Get Products",
        "Load Dimensions/Products/Load",
        "Sales",
        "Revenue by Store",
        "Revenue by Category",
        "Totals",
    ];
    for path in rerun.iter().chain(&["Load Dimensions/Products"]) {
        assert_eq!(actions[*path], "run", "plan for {path}");
    }

    // Between the runs the source corrects the products file. A row added
    // to the downloaded customers file would be loaded if the recorded
    // Customers load ran again; it must not be.
    server.replace("/products.csv", data("products.csv"), Some("\"corrected\""));
    server.clear_hits();
    let customers_file = sb.read("work/download/customers.csv");
    sb.write(
        "work/download/customers.csv",
        &format!("{customers_file}9,Not Loaded Again,Nowhere\n"),
    );
    let stores_time = sb.modified("work/download/stores.csv");
    let sales_time = sb.modified("work/download/sales.csv");

    let second = run().exit(0);
    assert_eq!(
        requests(&server),
        BTreeMap::from([("/products.csv".to_owned(), vec![200])]),
        "the rerun downloads only the products file"
    );
    assert_eq!(sb.modified("work/download/stores.csv"), stores_time);
    assert_eq!(sb.modified("work/download/sales.csv"), sales_time);
    let summary = second.summary();
    for path in &recorded_first {
        assert_eq!(status_of(&summary, path), "restored", "{path} in the rerun");
    }
    for path in rerun.iter().chain(&["Print Totals"]) {
        assert_eq!(
            status_of(&summary, path),
            "succeeded",
            "{path} in the rerun"
        );
    }
    // Over both runs, every task started once, except the Products unit,
    // which the restart ran again whole (and its container with it), and
    // the loop body, once per category.
    let twice = [
        "Load Dimensions",
        "Load Dimensions/Products",
        "Load Dimensions/Products/Get Products",
        "Load Dimensions/Products/Load",
    ];
    let started = starts(&[&first, &second]);
    assert_eq!(started.len(), 19, "every executable started: {started:?}");
    for (path, n) in started {
        let want = match path.as_str() {
            p if twice.contains(&p) => 2,
            "Report/Print Category" => 3,
            _ => 1,
        };
        assert_eq!(n, want, "{path} started {n} time(s) over both runs");
    }
    assert!(
        !sb.exists("work/warehouse.ckpt"),
        "success deletes the checkpoint"
    );

    // No table holds a row twice, the customer added after the first run was
    // not loaded, and the aggregates are those of the data.
    let counts = table_counts(&sb);
    assert_eq!(counts["dim_customer"], (8, 8));
    assert_eq!(counts["dim_store"], (3, 3));
    assert_eq!(counts["dim_product"], (6, 6));
    assert_eq!(counts["fact_sales"], (30, 30));
    assert_eq!(
        query(
            &sb,
            "SELECT category, revenue FROM agg_category_revenue ORDER BY category"
        ),
        vec![
            vec![json!("Electronics"), json!(790.92)],
            vec![json!("Furniture"), json!(3150.2)],
            vec![json!("Stationery"), json!(230.5)],
        ]
    );
    assert_eq!(
        query(
            &sb,
            "SELECT store, sales, revenue FROM agg_store_revenue ORDER BY store"
        ),
        vec![
            vec![json!("Harbour"), json!(10), json!(1199.57)],
            vec![json!("High Street"), json!(11), json!(1561.47)],
            vec![json!("Online"), json!(9), json!(1410.58)],
        ]
    );
    let printed: Vec<String> = second
        .json_lines()
        .into_iter()
        .filter(|e| e["event"] == "output" && e["path"] == "Print Totals")
        .map(|e| e["line"].as_str().expect("output.line").to_owned())
        .collect();
    assert_eq!(printed, ["30 sales, revenue 4171.62"]);
}

/// The README's annotated package, as printed there: it is valid, it runs,
/// and its failure path behaves as the README says — `Alert` runs when
/// `Publish` fails within `max_errors: 2`, and, with a limit of 1, it runs
/// too (as SSIS), and then the package fails.
#[test]
fn the_readme_annotated_package_runs_as_described() {
    let readme = readme();
    let yaml = yaml_block_after(&readme, "## A package, annotated");
    assert!(yaml.contains("max_errors: 2") && yaml.contains("command: cat out.csv"));

    let sb = Sandbox::with_package(yaml);
    sb.cmd(["validate", "package.yaml"]).output().exit(0);
    let out = sb.run_json().output().exit(0);
    let summary = out.summary();
    assert_eq!(status_of(&summary, "Publish"), "succeeded");
    assert_eq!(status_of(&summary, "Alert"), "not_run");
    assert_eq!(sb.read("out.csv"), "north,120\nsouth,80\n");

    let failing = yaml.replace("command: cat out.csv", "command: \"false\"");
    sb.write("package.yaml", &failing);
    let out = sb.run_json().output().exit(0);
    let summary = out.summary();
    assert_eq!(status_of(&summary, "Publish"), "failed");
    assert_eq!(status_of(&summary, "Alert"), "succeeded", "{summary:#}");

    sb.write(
        "package.yaml",
        &failing.replace("max_errors: 2", "max_errors: 1"),
    );
    let out = sb
        .run_json()
        .output()
        .exit(1)
        .says("the number of errors raised (1) reached the maximum allowed (1)");
    assert_eq!(status_of(&out.summary(), "Alert"), "succeeded");
}

/// `examples/aggregates`: one Data Flow task per aggregate. Sale 23's
/// quantity of 0 fails the average; the other two flows finish and keep
/// their rows, the failed one leaves none; after `fix.sh` the rerun runs the
/// average alone and restores the rest.
#[test]
fn aggregates_example_recomputes_only_the_failed_aggregate() {
    let sb = Sandbox::new();
    copy_example(&example_dir("aggregates"), sb.path());
    let q = |sql: &str| sql_rows(&sb, "{ kind: sqlite, path: work/dw.db }", &[], sql);
    let first = sb.run().output().exit(1);
    first
        .says("component \"Unit Price\": row 23, column \"unit_price\": division by zero")
        .says("quantity = 0");
    assert_eq!(q("SELECT COUNT(*) FROM revenue_by_region")[0][0], 4);
    assert_eq!(q("SELECT SUM(sales) FROM sales_per_day")[0][0], 40);
    // The failed flow committed nothing (its table may exist, empty).
    let left = q("SELECT COUNT(*) FROM sqlite_master WHERE name = 'unit_price_by_product'");
    if left[0][0] == 1 {
        assert_eq!(q("SELECT COUNT(*) FROM unit_price_by_product")[0][0], 0);
    }
    let fix = std::process::Command::new(sb.path().join("fix.sh"))
        .status()
        .expect("run fix.sh");
    assert!(fix.success());
    let second = sb.run_json().output().exit(0);
    let summary = second.summary();
    for restored in ["Stage", "Revenue by Region", "Sales per Day"] {
        assert_eq!(status_of(&summary, restored), "restored", "{restored}");
    }
    assert_eq!(status_of(&summary, "Average Unit Price"), "succeeded");
    let prices = q("SELECT product, avg_unit_price FROM unit_price_by_product ORDER BY product");
    assert_eq!(prices.len(), 5, "{prices:?}");
    assert_eq!(prices[2][0], "juice", "{prices:?}");
    assert_eq!(q("SELECT SUM(sales) FROM sales_per_day")[0][0], 40);
    assert!(!sb.exists("work/aggregates.ckpt"), "deleted on success");
}

/// The README's data flow, as printed there, runs on a small sales file:
/// the totals are loaded, the small sales counted, the line that does not
/// parse and the region without a key kept in files.
#[test]
fn the_readme_data_flow_runs_as_described() {
    let yaml = format!(
        "id: 3f1a2b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b\nname: readme_flow\n{}",
        yaml_block_after(&readme(), "\n## Data flow\n")
    );
    let sb = Sandbox::with_package(&yaml);
    sb.write(
        "data/sales.csv",
        "id,region,amount,sold_at\n1, north ,10.50,2024-01-02 10:00:00\n2,south,20.00,2024-01-03 11:00:00\n3,north,5.25,2024-01-04 12:00:00\n4,east,7.00,2024-01-05 13:00:00\n5,west,oops,2024-01-06 14:00:00\n",
    );
    sb.cmd(["validate", "package.yaml"]).output().exit(0);
    let out = sb.run().output().exit(0);
    out.says("path \"Split.Small\" -> \"Count Small\": 1 row(s)");
    let totals = sql_rows(
        &sb,
        "{ kind: sqlite, path: work/dw.db }",
        &[],
        "SELECT region_id, year, sales FROM sales_totals ORDER BY region_id",
    );
    assert_eq!(totals.len(), 2, "{totals:?}");
    assert_eq!(totals[0][2], 1, "{totals:?}");
    let rejects = sb.read("work/rejects.csv");
    assert!(rejects.contains("5,west,oops,"), "{rejects}");
    let unknown = sb.read("work/unknown_regions.csv");
    assert!(unknown.contains("4,EAST,"), "{unknown}");
}
