#!/usr/bin/env bash
# Data flow benchmarks (issue 17), each beside its peer in the same run:
#   1. CSV -> derived column -> conditional split -> lookup -> aggregate ->
#      Parquet and SQLite, against DuckDB running the same pipeline;
#   2. CSV -> PostgreSQL table, against psql \copy of the same file;
#   3. a sort under memory_limit 256MiB (peak RSS);
#   4. CSV -> a narrow SQLite table (rows/s).
# See BENCHMARKS.md, "Data flow".
#
#   ./scripts/bench-dataflow.sh                     # 10 million rows, median of 3
#   ./scripts/bench-dataflow.sh --rows 1000000      # a smaller file
#   ./scripts/bench-dataflow.sh --only aggregate,sort
#   ./scripts/bench-dataflow.sh --reps 5
#
# DuckDB (the Python package, 2.0.0) is installed into its own virtualenv at
# $CHECKFLOW_BENCH_VENV (default ~/.cache/checkflow/duckdb-venv), outside the
# repository. PostgreSQL is a throwaway cluster on 127.0.0.1
# (scripts/pg-cluster.sh). The generated CSVs are kept in
# $CARGO_TARGET_DIR/bench-dataflow-work for the next run; the figures go to
# $CARGO_TARGET_DIR/bench-dataflow-results.{txt,json}.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/checkflow/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

args=()
only="aggregate,pg,sort,sqlite"
while [ $# -gt 0 ]; do
  case "$1" in
    --reps|--rows) args+=("$1" "$2"); shift ;;
    --only) only="$2"; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "bench-dataflow.sh: unknown option $1 (see --help)" >&2; exit 6 ;;
  esac
  shift
done

command -v cargo >/dev/null || { echo "bench-dataflow.sh: cargo is required" >&2; exit 1; }
command -v python3 >/dev/null || { echo "bench-dataflow.sh: python3 is required" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "bench-dataflow.sh: /usr/bin/time (GNU time) is required for peak RSS" >&2; exit 1; }

. scripts/checkflow-bin.sh
machine_banner
echo "== cargo build --release"
build_checkflow

if [[ ",$only," == *,aggregate,* ]]; then
  venv="${CHECKFLOW_BENCH_VENV:-$HOME/.cache/checkflow/duckdb-venv}"
  if ! "$venv/bin/python" -c 'import duckdb' 2>/dev/null; then
    echo "== installing DuckDB 2.0.0 into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q duckdb==2.0.0
  fi
  args+=(--duckdb "$venv/bin/python")
fi

if [[ ",$only," == *,pg,* ]]; then
  . scripts/pg-cluster.sh
  start_test_pg "-c max_wal_size=8GB -c checkpoint_timeout=1h"
  args+=(--pg-url "$CHECKFLOW_TEST_PG_URL" --psql "$PG_BIN/psql")
fi

work="$CARGO_TARGET_DIR/bench-dataflow-work"
mkdir -p "$work"
find "$work" -mindepth 1 -maxdepth 1 ! -name 'flow-*.csv*' -exec rm -rf {} +
python3 benches/bench_dataflow.py "$bin" "$work" --only "$only" --json "$CARGO_TARGET_DIR/bench-dataflow-results.json" "${args[@]}" \
  | tee "$CARGO_TARGET_DIR/bench-dataflow-results.txt"
find "$work" -mindepth 1 -maxdepth 1 ! -name 'flow-*.csv*' -exec rm -rf {} +
