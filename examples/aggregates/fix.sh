#!/usr/bin/env sh
# Corrects the staged file as an operator would: sale 23's quantity is 1, not 0.
# (examples/run-all.sh runs it between the failing run and the rerun.)
set -eu
cd "$(dirname "$0")"
sed -i 's/^23,west,juice,0,/23,west,juice,1,/' work/sales.csv
