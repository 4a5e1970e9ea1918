#!/usr/bin/env bash
# Smoke check for the examples (not part of the test suite).
#
#   examples/run-all.sh          # `checkflow validate` every package file under examples/
#   examples/run-all.sh --run    # also run each one twice from a clean work/ folder:
#                                # the first run must fail (exit 1), the rerun must succeed (exit 0)
#
# An example whose folder holds a serve.sh (warehouse: its source files over
# HTTP on 127.0.0.1) runs through it: `serve.sh checkflow run ...` serves the
# files while the run lasts. That needs python3. One whose folder holds a fix.sh
# (aggregates: a bad row in the staged file) runs it between the two runs.
#
# Uses $CHECKFLOW if set, else `checkflow` on PATH, else builds it as scripts/quickstart.sh does.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/checkflow-bin.sh
find_checkflow

run=false
[ "${1:-}" = --run ] && run=true

failures=0
check() { # description, expected exit code, command...
  local what="$1" want="$2"; shift 2
  local got=0
  "$@" >/dev/null 2>&1 || got=$?
  if [ "$got" = "$want" ]; then
    echo "ok    $what (exit $got)"
  else
    echo "FAIL  $what: exit $got, expected $want"
    failures=$((failures + 1))
  fi
}

for pkg in examples/*/*.yaml; do
  check "validate $pkg" 0 "$bin" validate "$pkg"
done

if $run; then
  for pkg in examples/*/*.yaml; do
    work="$(dirname "$pkg")/work"
    # Each example's files share one work/ folder; start every package from a clean one.
    serve=()
    [ -x "$(dirname "$pkg")/serve.sh" ] && serve=("$(dirname "$pkg")/serve.sh")
    rm -rf "$work"
    check "run $pkg (fails by design)" 1 ${serve[@]+"${serve[@]}"} "$bin" run "$pkg"
    # An example whose failure is bad data has a fix.sh that corrects it.
    [ -x "$(dirname "$pkg")/fix.sh" ] && "$(dirname "$pkg")/fix.sh"
    check "second run $pkg (succeeds)" 0 ${serve[@]+"${serve[@]}"} "$bin" run "$pkg"
    rm -rf "$work"
  done
fi

if [ "$failures" -gt 0 ]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "all examples ok"
