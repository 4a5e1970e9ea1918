#!/usr/bin/env python3
"""Data flow benchmarks, driven by scripts/bench-dataflow.sh. Each figure is
taken beside its peer in the same run, on the same files.

1. aggregate: a sales CSV through derived column + conditional split + lookup
   (a 1,000-row dimension) + aggregate, into Parquet and into SQLite; the
   peer is DuckDB running the same pipeline as one query (its Python package,
   in a virtualenv outside the repository), writing the same Parquet file
   and inserting the same rows into SQLite. Goal: at most 1.5x DuckDB.
2. pg: the sales CSV into a PostgreSQL table; the peer is `psql \\copy` of
   the same file. Goal: at most 1.2x.
3. sort: a CSV twice the size sorted under `memory_limit: 256MiB`. Goal: it
   completes and peak RSS stays under 512 MiB.
4. sqlite: the sales CSV's two first columns into a narrow SQLite table.
   Goal: at least 1 million rows/s.

Usage: bench_dataflow.py BINARY WORKDIR --duckdb PYTHON [--rows N] [--reps N]
                         [--only aggregate,pg,sort,sqlite] [--pg-url URL --psql PATH]
                         [--json FILE]
"""

import argparse
import json
import os
import random
import sqlite3
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_data import generated_csv, loadavg, median, psql, say, timed  # noqa: E402

# --- the files ---------------------------------------------------------------

REGIONS = 1000


def make_sales(work, rows):
    """WORK/flow-sales-ROWS.csv: id, region (a dimension code written in lower
    case with spaces around it, so UPPER(TRIM()) has work to do), amount,
    sold_at, customer. Reused when complete."""
    rnd = random.Random(7)
    stamps = [f"20{y:02d}-{m:02d}-{d:02d} {h:02d}:{(d * 7) % 60:02d}:{(h * 13) % 60:02d}"
              for y in (24, 25, 26) for m in range(1, 13) for d in range(1, 29, 3) for h in (3, 11, 19)]

    def line(i):
        r = rnd.randrange(REGIONS)
        return f"{i}, r{r:04d} ,{rnd.randrange(100, 200000) / 100:.2f},{stamps[i % len(stamps)]},{rnd.randrange(50000)}\n"

    return generated_csv(os.path.join(work, f"flow-sales-{rows}.csv"), rows,
                         "id,region,amount,sold_at,customer\n", line)


def make_dimension(work):
    """WORK/dim.db: dim_region (code, region_id), 1,000 rows; and the same as CSV."""
    db = os.path.join(work, "dim.db")
    if os.path.exists(db):
        os.remove(db)
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE dim_region (code TEXT, region_id INTEGER)")
    con.executemany("INSERT INTO dim_region VALUES (?, ?)", [(f"R{r:04d}", 100 + r) for r in range(REGIONS)])
    con.commit()
    con.close()
    csv = os.path.join(work, "dim.csv")
    with open(csv, "w") as f:
        f.write("code,region_id\n")
        for r in range(REGIONS):
            f.write(f"R{r:04d},{100 + r}\n")
    return db, csv


SALES_COLUMNS = """        columns:
          - { name: id, type: DT_I8 }
          - { name: region, type: "DT_WSTR, 20" }
          - { name: amount, type: "DT_NUMERIC, 18, 2" }
          - { name: sold_at, type: DT_DBTIMESTAMP }
          - { name: customer, type: DT_I4 }"""


def package(work, name, body, memory=None, variables=""):
    path = os.path.join(work, f"{name}.yaml")
    mem = f"    memory_limit: {memory}\n" if memory else ""
    with open(path, "w") as f:
        f.write(
            f"id: {uuid.uuid5(uuid.NAMESPACE_URL, 'checkflow-bench-flow/' + name)}\n"
            f"name: {name}\n{variables}"
            "connections:\n"
            f"  dw: {{ kind: sqlite, path: {os.path.join(work, 'dw.db')} }}\n"
            f"  dim: {{ kind: sqlite, path: {os.path.join(work, 'dim.db')} }}\n"
            "tasks:\n"
            f"  - name: Flow\n    type: data_flow\n{mem}    components:\n{body}"
        )
    return path


def aggregate_package(work, sales):
    out = os.path.join(work, "out")
    os.makedirs(out, exist_ok=True)
    body = f"""      - name: Sales
        type: flat_file_source
        file: {sales}
        header: true
{SALES_COLUMNS}
      - name: Derive
        type: derived_column
        input: Sales
        columns:
          - {{ name: gross, expr: "amount * 1.2" }}
          - {{ name: region, expr: "UPPER(TRIM(region))", replace: true }}
          - {{ name: year, expr: "YEAR(sold_at)" }}
      - name: Split
        type: conditional_split
        input: Derive
        outputs:
          - {{ name: Big, expr: "gross > 1000" }}
        default: Small
      - name: Region
        type: lookup
        input: Split.Big
        connection: dim
        table: dim_region
        on: {{ region: code }}
        add: [region_id]
      - name: Totals
        type: aggregate
        input: Region
        group_by: [region_id, year]
        columns:
          - {{ name: revenue, op: sum, of: gross }}
          - {{ name: sales, op: count }}
          - {{ name: customers, op: count_distinct, of: customer }}
      - {{ name: Count Small, type: row_count, input: Split.Small, variable: User::SmallRows }}
      - {{ name: Save Parquet, type: parquet_destination, input: Totals, file: {out}/totals-checkflow.parquet }}
      - {{ name: Save Table, type: table_destination, input: Totals, connection: dw, table: totals_checkflow, create: if_missing, truncate: true }}
"""
    return package(work, "aggregate", body, variables="variables:\n  SmallRows: { type: int64, value: 0 }\n")


DUCKDB_AGGREGATE = r"""
import duckdb, sqlite3, sys
sales, dim, parquet, db = sys.argv[1:5]
con = duckdb.connect()
con.execute(f'''
CREATE TEMP TABLE totals AS
WITH s AS (
  SELECT amount * 1.2 AS gross, upper(trim(region)) AS region, year(sold_at) AS year, customer
  FROM read_csv('{sales}', header = true,
    columns = {{'id': 'BIGINT', 'region': 'VARCHAR', 'amount': 'DECIMAL(18,2)', 'sold_at': 'TIMESTAMP', 'customer': 'INTEGER'}})
), d AS (SELECT * FROM read_csv('{dim}', header = true, columns = {{'code': 'VARCHAR', 'region_id': 'INTEGER'}}))
SELECT d.region_id, s.year, sum(s.gross) AS revenue, count(*) AS sales, count(DISTINCT s.customer) AS customers
FROM s JOIN d ON s.region = d.code
WHERE s.gross > 1000
GROUP BY ALL
''')
small = con.execute(f'''SELECT count(*) FROM read_csv('{sales}', header = true,
    columns = {{'id': 'BIGINT', 'region': 'VARCHAR', 'amount': 'DECIMAL(18,2)', 'sold_at': 'TIMESTAMP', 'customer': 'INTEGER'}})
  WHERE amount * 1.2 <= 1000''').fetchone()[0]
con.execute(f"COPY totals TO '{parquet}' (FORMAT parquet)")
rows = con.execute("SELECT region_id, year, CAST(revenue AS DOUBLE), sales, customers FROM totals").fetchall()
out = sqlite3.connect(db)
out.execute("DROP TABLE IF EXISTS totals_duckdb")
out.execute("CREATE TABLE totals_duckdb (region_id INTEGER, year INTEGER, revenue REAL, sales INTEGER, customers INTEGER)")
out.executemany("INSERT INTO totals_duckdb VALUES (?, ?, ?, ?, ?)", rows)
out.commit()
print(len(rows), small)
"""


def table_sums(db, table):
    con = sqlite3.connect(db)
    row = con.execute(
        f"SELECT count(*), sum(region_id), sum(year), round(sum(revenue), 2), sum(sales), sum(customers) FROM {table}"
    ).fetchone()
    con.close()
    return row


def bench_aggregate(a, sales, results):
    say(f"== 1. derived column + split + lookup + aggregate, {a.rows:,} rows, into Parquet and SQLite, vs DuckDB")
    _, dim_csv = make_dimension(a.work)
    pkg = aggregate_package(a.work, sales)
    script = os.path.join(a.work, "duckdb_aggregate.py")
    with open(script, "w") as f:
        f.write(DUCKDB_AGGREGATE)
    dw = os.path.join(a.work, "dw.db")
    parquet = os.path.join(a.work, "out", "totals-duckdb.parquet")
    walls = {"duckdb": [], "checkflow": []}
    rss = {"duckdb": [], "checkflow": []}
    for rep in range(a.reps):
        for who in (["duckdb", "checkflow"] if rep % 2 == 0 else ["checkflow", "duckdb"]):
            cmd = [a.duckdb, script, sales, dim_csv, parquet, dw] if who == "duckdb" else [a.binary, "run", pkg]
            wall, _, peak, _ = timed(cmd)
            walls[who].append(wall)
            rss[who].append(peak)
    ours, theirs = table_sums(dw, "totals_checkflow"), table_sums(dw, "totals_duckdb")
    if ours != theirs:
        raise SystemExit(f"the totals differ: checkflow {ours} / duckdb {theirs}")
    md, mc = median(walls["duckdb"]), median(walls["checkflow"])
    ratio = mc / md
    say(f"   median: DuckDB {md:.2f} s (peak {median(rss['duckdb']):.0f} MiB); checkflow {mc:.2f} s "
        f"(peak {median(rss['checkflow']):.0f} MiB); ratio {ratio:.2f}x; load {loadavg()}")
    say(f"   both totals (count, sum region_id, sum year, revenue, sales, customers) = {ours}")
    say(f"   goal: at most 1.5x DuckDB: {'PASS' if ratio <= 1.5 else 'MISS'}")
    results["aggregate"] = {"duckdb_wall_s": walls["duckdb"], "checkflow_wall_s": walls["checkflow"], "ratio": ratio}


def bench_pg(a, sales, results):
    say(f"== 2. {a.rows:,} CSV rows into PostgreSQL vs psql \\copy")
    url = a.pg_url
    fresh = "DROP TABLE IF EXISTS flow_sales; CREATE TABLE flow_sales (id bigint, region text, amount numeric(18,2), sold_at timestamp, customer int)"
    body = f"""      - name: Sales
        type: flat_file_source
        file: {sales}
        header: true
{SALES_COLUMNS}
      - {{ name: Save, type: table_destination, input: Sales, connection: pg, table: flow_sales }}
"""
    pkg = package(a.work, "pg", body)
    with open(pkg) as f:
        text = f.read().replace("connections:\n", f"connections:\n  pg: {{ kind: postgres, url: \"{url}\" }}\n", 1)
    with open(pkg, "w") as f:
        f.write(text)
    copy_cmd = f"\\copy flow_sales FROM '{sales}' WITH (FORMAT csv, HEADER true)"
    check = "SELECT count(*), sum(id), sum(amount), sum(customer) FROM flow_sales"
    walls = {"psql": [], "checkflow": []}
    sums = {}
    for rep in range(a.reps):
        for who in (["psql", "checkflow"] if rep % 2 == 0 else ["checkflow", "psql"]):
            psql(a.psql, url, "-c", fresh)
            cmd = ([a.psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", copy_cmd]
                   if who == "psql" else [a.binary, "run", pkg])
            wall, _, _, _ = timed(cmd)
            walls[who].append(wall)
            sums[who] = psql(a.psql, url, "-Atc", check).strip()
    if sums["psql"] != sums["checkflow"]:
        raise SystemExit(f"the tables differ: psql {sums['psql']} / checkflow {sums['checkflow']}")
    mp, mc = median(walls["psql"]), median(walls["checkflow"])
    ratio = mc / mp
    say(f"   median: psql \\copy {mp:.2f} s; checkflow {mc:.2f} s; ratio {ratio:.2f}x; load {loadavg()}")
    say(f"   goal: at most 1.2x psql \\copy: {'PASS' if ratio <= 1.2 else 'MISS'}")
    results["pg"] = {"psql_wall_s": walls["psql"], "checkflow_wall_s": walls["checkflow"], "ratio": ratio}


def bench_sort(a, results):
    rows = a.rows * 2
    say(f"== 3. sort of {rows:,} rows with memory_limit 256MiB")
    path = os.path.join(a.work, f"flow-sort-{rows}.csv")
    if not os.path.exists(path + ".done"):
        rnd = random.Random(11)
        with open(path, "w", buffering=1 << 20) as f:
            f.write("k,v\n")
            chunk = []
            for i in range(rows):
                chunk.append(f"{rnd.getrandbits(62)},{i}\n")
                if len(chunk) == 20000:
                    f.write("".join(chunk))
                    chunk.clear()
            f.write("".join(chunk))
        open(path + ".done", "w").close()
    out = os.path.join(a.work, "out", "sorted.csv")
    body = f"""      - {{ name: Src, type: flat_file_source, file: {path}, header: true, columns: [{{ name: k, type: DT_I8 }}, {{ name: v, type: DT_I8 }}] }}
      - {{ name: Order, type: sort, input: Src, by: [{{ column: k }}] }}
      - {{ name: Out, type: flat_file_destination, input: Order, file: {out}, header: true, overwrite: true }}
"""
    pkg = package(a.work, "sort", body, memory="256MiB")
    wall, _, peak, _ = timed([a.binary, "run", pkg])
    with open(out) as f:
        next(f)
        last, count, ordered = None, 0, True
        for line in f:
            k = int(line.split(",", 1)[0])
            if last is not None and k < last:
                ordered = False
            last, count = k, count + 1
    if count != rows or not ordered:
        raise SystemExit(f"the sort is wrong: {count} rows, ordered {ordered}")
    say(f"   {wall:.2f} s, peak RSS {peak:.0f} MiB, {count:,} rows in order; load {loadavg()}")
    say(f"   goal: completes with peak RSS under 512 MiB: {'PASS' if peak < 512 else 'MISS'}")
    results["sort"] = {"wall_s": wall, "peak_rss_mib": peak}


def bench_sqlite(a, sales, results):
    say(f"== 4. {a.rows:,} CSV rows into a narrow SQLite table")
    body = f"""      - name: Sales
        type: flat_file_source
        file: {sales}
        header: true
{SALES_COLUMNS}
      - {{ name: Save, type: table_destination, input: Sales, connection: dw, table: narrow, create: if_missing, truncate: true, columns: {{ id: id, region: null, amount: null, sold_at: null, customer: customer }} }}
"""
    pkg = package(a.work, "sqlite", body)
    con = sqlite3.connect(os.path.join(a.work, "dw.db"))
    con.execute("DROP TABLE IF EXISTS narrow")
    con.commit()
    con.close()
    walls = []
    for _ in range(a.reps):
        wall, _, _, _ = timed([a.binary, "run", pkg])
        walls.append(wall)
    con = sqlite3.connect(os.path.join(a.work, "dw.db"))
    # Start from a table of the two columns, even if an older run made it wider.
    count = con.execute("SELECT count(*) FROM narrow").fetchone()[0]
    width = len(con.execute("SELECT * FROM narrow LIMIT 0").description)
    con.close()
    if width != 2:
        raise SystemExit(f"narrow has {width} columns, not 2")
    if count != a.rows:
        raise SystemExit(f"narrow holds {count} rows, not {a.rows}")
    rate = a.rows / median(walls)
    say(f"   median {median(walls):.2f} s: {rate:,.0f} rows/s; load {loadavg()}")
    say(f"   goal: at least 1,000,000 rows/s: {'PASS' if rate >= 1e6 else 'MISS'}")
    results["sqlite"] = {"wall_s": walls, "rows_per_s": rate}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("binary")
    p.add_argument("work")
    p.add_argument("--duckdb", help="the python of a virtualenv with duckdb")
    p.add_argument("--rows", type=int, default=10_000_000)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--only", default="aggregate,pg,sort,sqlite")
    p.add_argument("--pg-url")
    p.add_argument("--psql")
    p.add_argument("--json")
    a = p.parse_args()
    only = set(a.only.split(","))
    say(f"checkflow {subprocess.run([a.binary, '--version'], capture_output=True, text=True).stdout.strip()}, "
        f"{a.rows:,} rows, median of {a.reps}")
    sales = make_sales(a.work, a.rows)
    results = {"rows": a.rows, "reps": a.reps}
    if "aggregate" in only:
        bench_aggregate(a, sales, results)
    if "pg" in only:
        bench_pg(a, sales, results)
    if "sort" in only:
        bench_sort(a, results)
    if "sqlite" in only:
        bench_sqlite(a, sales, results)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
