#!/usr/bin/env bash
# The walk-through of examples/warehouse/README.md in one go, from a clean
# work/ folder: the first run fails by design, `checkflow plan` shows what the
# rerun restores and runs, and the rerun finishes the package. The source
# files are served on 127.0.0.1 by serve.sh while each run lasts; its request
# log ("http | GET ...") shows which files each run downloads.
#
# Uses $CHECKFLOW if set, else `checkflow` on PATH, else builds it as
# scripts/quickstart.sh does. Needs python3 (for the HTTP server).
set -euo pipefail
cd "$(dirname "$0")/../.."

. scripts/checkflow-bin.sh
find_checkflow

ex=examples/warehouse
rm -rf "$ex/work"

echo "== first run (the products file arrives with a repeated id: its load fails, by design)"
"$ex/serve.sh" "$bin" run "$ex/package.yaml" 2>&1 || echo "== exit code $? — the checkpoint remembers what finished"
echo
echo "== what a rerun would do"
"$bin" plan "$ex/package.yaml"
echo
echo "== second run (the source has corrected the products file: only it is downloaded and loaded again)"
"$ex/serve.sh" "$bin" run "$ex/package.yaml" 2>&1

if command -v sqlite3 >/dev/null 2>&1; then
  echo
  echo "== rows per table (none twice)"
  sqlite3 "$ex/work/warehouse.db" "
    SELECT 'dim_customer', COUNT(*) FROM dim_customer UNION ALL
    SELECT 'dim_store', COUNT(*) FROM dim_store UNION ALL
    SELECT 'dim_product', COUNT(*) FROM dim_product UNION ALL
    SELECT 'fact_sales', COUNT(*) FROM fact_sales UNION ALL
    SELECT 'agg_store_revenue', COUNT(*) FROM agg_store_revenue UNION ALL
    SELECT 'agg_category_revenue', COUNT(*) FROM agg_category_revenue"
fi
