#!/usr/bin/env bash
# Builds checkflow and runs the quickstart twice: the first run fails by design,
# the second restarts from the checkpoint and finishes without redoing finished work.
# Ends by saying where the binary is (./scripts/install.sh puts it on PATH).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/checkflow-bin.sh
build_checkflow
ex=examples/quickstart
echo "== removing $ex/work (what an earlier quickstart left)"
rm -rf "$ex/work"
echo

echo "== first run (fails at \"Load\" by design)"
"$bin" run "$ex/package.yaml" || echo "== exit code $? — the checkpoint remembers what finished"
echo
echo "== what a rerun would do"
"$bin" plan "$ex/package.yaml"
echo
echo "== second run (restarts at \"Load\"; Extract is restored, not rerun)"
"$bin" run "$ex/package.yaml"
echo
echo "== checkflow is at $bin"
echo "   ./scripts/install.sh copies it to ~/.local/bin, so that \`checkflow\` works from any folder"
