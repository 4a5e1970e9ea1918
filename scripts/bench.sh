#!/usr/bin/env bash
# Benchmarks (issue 4, "Prove it"): builds the release binary, generates packages,
# times whole runs of it and prints the figures with PASS/MISS against each goal.
# See BENCHMARKS.md for what is measured and how.
#
#   ./scripts/bench.sh               # whole runs (about 10 minutes, most of it fsyncs)
#   ./scripts/bench.sh --quick       # without the largest chain with checkpoints on
#   ./scripts/bench.sh --reps 5      # median of 5 runs per figure (default 3)
#   ./scripts/bench.sh --criterion   # then the micro-benchmarks (journal append, dispatcher)
#
# Packages and checkpoints go to $CARGO_TARGET_DIR/bench-work (the disk being
# measured); the figures to $CARGO_TARGET_DIR/bench-results.{txt,json}.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/checkflow/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

args=()
criterion=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) args+=(--quick) ;;
    --reps) args+=(--reps "$2"); shift ;;
    --criterion) criterion=1 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown option $1 (see --help)" >&2; exit 6 ;;
  esac
  shift
done

need() { command -v "$1" >/dev/null 2>&1 || { echo "bench.sh: $1 is required" >&2; exit 1; }; }
need cargo
need python3
need strace   # counts and times the syncs of a run (goals 2 and 3)
[ -x /usr/bin/time ] || { echo "bench.sh: /usr/bin/time (GNU time) is required for peak RSS" >&2; exit 1; }

. scripts/checkflow-bin.sh
machine_banner
echo "== cargo build --release"
build_checkflow

work="$CARGO_TARGET_DIR/bench-work"
rm -rf "$work"
mkdir -p "$work"
python3 benches/bench.py "$bin" "$work" --json "$CARGO_TARGET_DIR/bench-results.json" "${args[@]}" \
  | tee "$CARGO_TARGET_DIR/bench-results.txt"
rm -rf "$work"

if [ "$criterion" = 1 ]; then
  echo "== cargo bench (criterion)"
  cargo bench -q -p checkflow-journal --bench append
  cargo bench -q -p checkflow-exec --bench dispatch
  cargo bench -q -p checkflow-expr --bench eval
fi
