#!/usr/bin/env bash
# Data-task benchmarks (issue 5): bulk_insert of a 5-million-row CSV into
# PostgreSQL (against psql \copy of the same file) and into SQLite, and an
# HTTP / FTP download killed half-way and resumed (bytes the server sends on
# the rerun against the bytes missing). See BENCHMARKS.md, "Data tasks".
#
#   ./scripts/bench-data.sh                    # everything, median of 3
#   ./scripts/bench-data.sh --reps 5           # median of 5 (4 min 17 s for BENCHMARKS.md's figures)
#   ./scripts/bench-data.sh --rows 1000000     # a smaller CSV
#   ./scripts/bench-data.sh --only sqlite,pg   # some of: sqlite, pg, http, ftp
#   ./scripts/bench-data.sh --download-mb 512  # size of the downloaded file (default 1024)
#
# Starts its own PostgreSQL cluster on 127.0.0.1 (scripts/pg-cluster.sh) with
# the server's default durability. The CSV is kept in
# $CARGO_TARGET_DIR/bench-data-work for the next run; the figures go to
# $CARGO_TARGET_DIR/bench-data-results.{txt,json}.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/checkflow/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

args=()
only="sqlite,pg,http,ftp"
while [ $# -gt 0 ]; do
  case "$1" in
    --reps|--rows|--download-mb) args+=("$1" "$2"); shift ;;
    --only) only="$2"; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "bench-data.sh: unknown option $1 (see --help)" >&2; exit 6 ;;
  esac
  shift
done

command -v cargo >/dev/null || { echo "bench-data.sh: cargo is required" >&2; exit 1; }
command -v python3 >/dev/null || { echo "bench-data.sh: python3 is required" >&2; exit 1; }

. scripts/checkflow-bin.sh
machine_banner
echo "== cargo build --release"
build_checkflow

if [[ ",$only," == *,pg,* ]]; then
  . scripts/pg-cluster.sh
  # The server's defaults (fsync, synchronous_commit and full_page_writes on),
  # with room for a 5-million-row load's WAL so no checkpoint starts mid-load.
  start_test_pg "-c max_wal_size=8GB -c checkpoint_timeout=1h"
  args+=(--pg-url "$CHECKFLOW_TEST_PG_URL" --psql "$PG_BIN/psql")
fi

work="$CARGO_TARGET_DIR/bench-data-work"
mkdir -p "$work"
# Only the generated CSV is kept between runs.
find "$work" -mindepth 1 -maxdepth 1 ! -name 'sales-*.csv*' -exec rm -rf {} +
python3 benches/bench_data.py "$bin" "$work" --only "$only" --json "$CARGO_TARGET_DIR/bench-data-results.json" "${args[@]}" \
  | tee "$CARGO_TARGET_DIR/bench-data-results.txt"
find "$work" -mindepth 1 -maxdepth 1 ! -name 'sales-*.csv*' -exec rm -rf {} +
