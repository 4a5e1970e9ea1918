#!/usr/bin/env bash
# A short, bounded fuzzing pass for CI: builds every cargo-fuzz target in
# fuzz/ and runs each for FUZZ_SECONDS (default 20) on its corpus
# (fuzz/corpus/<target>, seeded with the files named seed-*). Fails if any
# target crashes, panics, leaks or hangs; the reproducing input is left in
# fuzz/artifacts/<target>/.
#
#   ./scripts/fuzz-smoke.sh                 # every target, 20 s each
#   FUZZ_SECONDS=180 ./scripts/fuzz-smoke.sh package
#
# Uses stable Rust: `-s none` builds without sanitizers (cargo-fuzz needs
# nightly only for the address sanitizer).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
seconds="${FUZZ_SECONDS:-20}"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

echo "== cargo fuzz build -s none"
cargo fuzz build -s none

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi

logs="$(mktemp -d -t fuzz-smoke.XXXXXX)"
status=0
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  echo "== fuzz $t for ${seconds}s"
  # -timeout: an input that takes longer than 10 s counts as a hang.
  # -max_len: room for whole package files and checkpoints.
  log="$logs/$t.log"
  set +e
  cargo fuzz run -s none "$t" "corpus/$t" -- \
    -max_total_time="$seconds" -timeout=10 -max_len=16384 -print_final_stats=1 >"$log" 2>&1
  rc=$?
  set -e
  # The totals, and on failure what went wrong.
  grep -E '^(Done [0-9]+ runs|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" || true
  if [ "$rc" -ne 0 ]; then
    tail -n 40 "$log" >&2 || true
    echo "!! fuzz target $t failed (exit $rc): input in fuzz/artifacts/$t/, log in $log" >&2
    status=1
  fi
done
exit "$status"
