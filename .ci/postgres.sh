#!/usr/bin/env bash
# Start a throwaway PostgreSQL cluster on loopback for the store and Dagster-instance tests; print its URL.
# Installs Debian's postgresql package first when the machine lacks it.
set -euo pipefail
PORT="${PGPORT_TEST:-$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")}"
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >&2
fi
BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
DATA=$(mktemp -d /tmp/ml-connector-pg.XXXXXX)
chown postgres:postgres "$DATA"
run() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/bash -c "$*"; else bash -c "$*"; fi; }
run "$BIN/initdb -D $DATA -U postgres -A trust --no-sync" >/dev/null
run "$BIN/pg_ctl -D $DATA -o '-p $PORT -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off' -l $DATA/log -w start" >/dev/null
run "$BIN/createdb -h 127.0.0.1 -p $PORT -U postgres ml_connector_test"
run "$BIN/createdb -h 127.0.0.1 -p $PORT -U postgres dagster_test"
echo "postgresql://postgres@127.0.0.1:$PORT/ml_connector_test $DATA $BIN"
