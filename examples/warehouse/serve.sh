#!/usr/bin/env bash
# Runs a command while the warehouse's source files are served over HTTP on
# 127.0.0.1, with WAREHOUSE_URL set to the server's base URL:
#
#   examples/warehouse/serve.sh checkflow run examples/warehouse/package.yaml
#
# It plays the source system. It publishes copies of data/*.csv in
# work/www/ and serves that folder with `python3 -m http.server`. The first
# time, it publishes the products file with a repeated id
# (data/products-with-duplicate.csv), as a source with a bad export would;
# every later time, the corrected one (data/products.csv). Delete work/ to
# start over.
#
# The server listens on a free port, chosen the first time and kept in
# work/http.port: the checkpoint stores the base URL the first run was given,
# and a restart uses that stored URL, so every later run must find the server
# at the same address. The server's request log goes to stderr, prefixed
# "http |". It is stopped when the command ends; the script exits with the
# command's exit code.
set -euo pipefail

if [ "$#" -eq 0 ]; then
  echo "usage: $0 COMMAND [ARGS...]" >&2
  exit 2
fi

here="$(cd "$(dirname "$0")" && pwd)"
work="$here/work"
www="$work/www"

# Publish the files: the bad products export the first time only.
if [ -e "$www/products.csv" ]; then
  products=products.csv
else
  products=products-with-duplicate.csv
fi
mkdir -p "$www"
cp "$here/data/customers.csv" "$here/data/stores.csv" "$here/data/sales.csv" "$www/"
cp "$here/data/$products" "$www/products.csv"

if [ -f "$work/http.port" ]; then
  port="$(cat "$work/http.port")"
else
  port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  echo "$port" >"$work/http.port"
fi

busy() {
  echo "$0: cannot serve on 127.0.0.1:$port. A restart needs the address of the first run (its checkpoint stores it): free that port, or delete $work to start over." >&2
  exit 1
}
listening() { (: <"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }
listening && busy

# The request log, one line a request: `http | GET /products.csv 200`.
python3 -u -m http.server --bind 127.0.0.1 --directory "$www" "$port" \
  > /dev/null 2> >(sed -u -E 's/^.*\] "([A-Z]+ [^ ]+)[^"]*" ([0-9]+).*$/  http | \1 \2/' >&2) &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' EXIT

# Wait until it accepts connections (or has failed to listen).
ready=false
for _ in $(seq 100); do
  if listening; then
    ready=true
    break
  fi
  kill -0 "$server" 2>/dev/null || break
  sleep 0.1
done
$ready || busy

export WAREHOUSE_URL="http://127.0.0.1:$port"
status=0
"$@" || status=$?
exit "$status"
