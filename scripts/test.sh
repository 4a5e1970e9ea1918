#!/usr/bin/env bash
# The whole test suite: installs what is missing, then formatting, lints, and every test.
# Used by CI (.ci/run) and by developers: ./scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# Build output is cached outside the clone (a fresh machine simply builds from scratch).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/checkflow/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

need() { command -v "$1" >/dev/null 2>&1; }
apt_install() {
  if need apt-get && [ "$(id -u)" = 0 ]; then
    echo "== installing $* (apt-get)"
    apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    echo "missing: $* (install it and rerun)" >&2
    exit 1
  fi
}
need cargo || { echo "cargo (Rust stable) is required: https://rustup.rs" >&2; exit 1; }
need cc || apt_install gcc
rustup component list --installed 2>/dev/null | grep -q rustfmt || rustup component add rustfmt clippy 2>/dev/null || true

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -q -- -D warnings

echo "== cargo test"
out="${CARGO_TARGET_DIR}/test-output.txt"
mkdir -p "$CARGO_TARGET_DIR"
set +e
cargo test --workspace -q 2>&1 | tee "$out"
status=${PIPESTATUS[0]}
set -e
# One closing line with the totals over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;?$/) p += $i; if ($(i+1) ~ /^failed;?$/) f += $i; if ($(i+1) ~ /^ignored;?$/) s += $i } }
     END { printf "Tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$out"
exit "$status"
