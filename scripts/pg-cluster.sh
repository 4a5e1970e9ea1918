# A throwaway PostgreSQL cluster on 127.0.0.1, for the tests (scripts/test.sh)
# and the data benchmarks (scripts/bench-data.sh). Source it, then:
#
#   start_test_pg [SERVER OPTIONS]   # e.g. "-c fsync=off"; installs PostgreSQL if missing
#
# It runs initdb in a fresh temporary folder (as user postgres when run as root:
# PostgreSQL refuses to run as root), starts the server on a free loopback port
# with trust authentication, exports CHECKFLOW_TEST_PG_URL and PG_BIN (the
# server's bin folder, for psql of the same version), and stops the server and
# removes the folder when the shell exits.

pg_need() { command -v "$1" >/dev/null 2>&1; }

pg_apt_install() {
  if pg_need apt-get && [ "$(id -u)" = 0 ]; then
    echo "== installing $* (apt-get)"
    apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    echo "missing: $* (install it and rerun)" >&2
    exit 1
  fi
}

free_port() {
  local p
  for p in $(seq 55432 55631); do
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return 0; }
  done
  echo "no free port for the PostgreSQL test cluster" >&2
  exit 1
}

stop_test_pg() {
  "${PG_STOP[@]}" >/dev/null 2>&1 || true
  rm -rf "$PG_DIR"
}

start_test_pg() {
  local opts="${1:-}"
  ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || pg_need pg_ctl || pg_apt_install postgresql
  local bin port as=()
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -n "$bin" ] || bin=$(dirname "$(command -v pg_ctl)")
  PG_BIN="$bin"
  export PG_BIN
  PG_DIR=$(mktemp -d -t checkflow-pg.XXXXXX)
  # PostgreSQL refuses to run as root.
  if [ "$(id -u)" = 0 ]; then
    chown postgres:postgres "$PG_DIR"
    as=(runuser -u postgres --)
  fi
  port=$(free_port)
  PG_STOP=("${as[@]}" "$bin/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop)
  trap stop_test_pg EXIT
  "${as[@]}" "$bin/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 -N \
    >"$PG_DIR/initdb.log" 2>&1 || { cat "$PG_DIR/initdb.log" >&2; exit 1; }
  "${as[@]}" "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/pg.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $PG_DIR $opts" \
    start >/dev/null || { cat "$PG_DIR/pg.log" >&2; exit 1; }
  export CHECKFLOW_TEST_PG_URL="postgres://postgres@127.0.0.1:$port/postgres"
  echo "== PostgreSQL test cluster on 127.0.0.1:$port"
}
