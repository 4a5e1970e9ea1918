#!/usr/bin/env bash
# The shared store's benchmarks (issue 19): the durable cost per task with the
# PostgreSQL store beside one bare commit (pgbench) on the same cluster, the
# time from a holder's kill -9 to the first task of the takeover, and runs per
# second through 3 workers. See BENCHMARKS.md, "Shared store".
#
#   ./scripts/bench-store.sh              # 2,000 tasks, median of 3, 60 runs
#   ./scripts/bench-store.sh --tasks 5000 --reps 5 --runs 120
#
# Starts its own PostgreSQL cluster on 127.0.0.1 (scripts/pg-cluster.sh) with
# the server's default durability (fsync and synchronous_commit on). Figures
# go to $CARGO_TARGET_DIR/bench-store-results.{txt,json}.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/checkflow/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --tasks|--reps|--runs) args+=("$1" "$2"); shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "bench-store.sh: unknown option $1 (see --help)" >&2; exit 6 ;;
  esac
  shift
done

command -v python3 >/dev/null || { echo "bench-store.sh: python3 is required" >&2; exit 1; }
. scripts/checkflow-bin.sh
machine_banner
echo "== cargo build --release"
build_checkflow
. scripts/pg-cluster.sh
start_test_pg
[ -x "$PG_BIN/pgbench" ] || { echo "bench-store.sh: pgbench not found in $PG_BIN" >&2; exit 1; }
work=$(mktemp -d -t checkflow-bench-store.XXXXXX)
trap 'rm -rf "$work"; stop_test_pg' EXIT
python3 benches/bench_store.py "$bin" "$work" --url "$CHECKFLOW_TEST_PG_URL" \
  --pgbench "$PG_BIN/pgbench" --psql "$PG_BIN/psql" \
  --json "$CARGO_TARGET_DIR/bench-store-results.json" "${args[@]}" \
  | tee "$CARGO_TARGET_DIR/bench-store-results.txt"
