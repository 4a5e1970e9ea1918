#!/bin/sh
# Loads one CSV file into work/loaded.csv (run from this folder, as process tasks are).
# A non-numeric amount fails the load until work/fixed exists; the first
# failure creates work/fixed, so the next run succeeds (a fix made overnight).
set -e
f="$1"
if tail -n +2 "$f" | grep -qv ',[0-9.]*$' && [ ! -e work/fixed ]; then
  touch work/fixed
  echo "$(basename "$f"): amount is not a number" >&2
  exit 1
fi
tail -n +2 "$f" >> work/loaded.csv
echo "loaded $(basename "$f")"
