#!/usr/bin/env bash
# The whole test suite: installs what is missing, then formatting, lints, and every test.
# Used by CI (.ci/run) and by developers: ./scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# Build output is cached outside the clone (a fresh machine simply builds from scratch).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/checkflow/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

# need / apt_install, and start_test_pg (the cluster; shared with the data benchmarks).
. scripts/pg-cluster.sh
need() { pg_need "$@"; }
apt_install() { pg_apt_install "$@"; }
need cargo || { echo "cargo (Rust stable) is required: https://rustup.rs" >&2; exit 1; }
need cc || apt_install gcc
rustup component list --installed 2>/dev/null | grep -q rustfmt || rustup component add rustfmt clippy 2>/dev/null || true

# The FTP download tests run a real server, pyftpdlib, from a venv kept outside the
# clone (created only if missing). Without it those tests say SKIPPED and pass.
venv="$HOME/.cache/checkflow/venv"
if ! "$venv/bin/python" -c 'import pyftpdlib' >/dev/null 2>&1; then
  echo "== installing pyftpdlib (venv $venv)"
  if ! need python3 || ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
    if need apt-get && [ "$(id -u)" = 0 ]; then
      apt-get update -qq >/dev/null 2>&1 || true
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null || true
    fi
  fi
  { [ -x "$venv/bin/python" ] || python3 -m venv "$venv"; } && "$venv/bin/pip" install -q pyftpdlib \
    || echo "pyftpdlib could not be installed: the FTP tests will be skipped" >&2
fi
export CHECKFLOW_TEST_PYTHON="$venv/bin/python"

echo "== cargo fmt --check"
cargo fmt --all -- --check

# Build steps show cargo's progress (a first build of everything, lints and
# tests, fills about 4 GB of disk; see the README for times).
echo "== cargo clippy --all-targets -- -D warnings (lints; builds the crates for checking first)"
cargo clippy --workspace --all-targets -- -D warnings

# PostgreSQL for the database tests (crates/tasks, tests/e2e): a throwaway
# cluster on 127.0.0.1, named in CHECKFLOW_TEST_PG_URL and removed at exit.
# With the variable set, a test that cannot reach it fails; without it (a
# plain `cargo test`), PostgreSQL tests print why and skip.
# The cluster itself is started by scripts/pg-cluster.sh (sourced above).
start_test_pg "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"

echo "== building the tests (cargo test --no-run)"
set +e
cargo test --workspace --no-run
status=$?
set -e
echo "== cargo test (unit, then end-to-end tests through the built binary)"
out="${CARGO_TARGET_DIR}/test-output.txt"
mkdir -p "$CARGO_TARGET_DIR"
if [ "$status" = 0 ]; then
  set +e
  cargo test --workspace -q 2>&1 | tee "$out"
  status=${PIPESTATUS[0]}
  set -e
else
  : > "$out"
fi

# Every fuzz target (expression parser, package loader, checkpoint reader) for a
# short bounded time on its corpus. CHECKFLOW_SKIP_FUZZ=1 skips it locally.
fuzz_status=0
if [ "${CHECKFLOW_SKIP_FUZZ:-0}" != 1 ]; then
  echo "== fuzz smoke (${FUZZ_SECONDS:-10} s per target)"
  FUZZ_SECONDS="${FUZZ_SECONDS:-10}" ./scripts/fuzz-smoke.sh || fuzz_status=$?
fi
# One closing line with the totals over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;?$/) p += $i; if ($(i+1) ~ /^failed;?$/) f += $i; if ($(i+1) ~ /^ignored;?$/) s += $i } }
     END { printf "Tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$out"
[ "$status" = 0 ] || exit "$status"
exit "$fuzz_status"
