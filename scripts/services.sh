#!/usr/bin/env bash
# PostgreSQL and Redis for the tests (127.0.0.1:5432 with a `test` database and trust auth for
# `postgres` on loopback; 127.0.0.1:6379). On a fresh Debian/Ubuntu machine it installs them with
# apt-get; where they are installed but down it starts them; where they already answer it only
# checks, silently. Every step is idempotent: `make test` calls this before each pytest run.
set -euo pipefail

PG_HOST=127.0.0.1
PG_PORT=5432
REDIS_PORT=6379

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

pg_ready() { pg_isready -h "$PG_HOST" -p "$PG_PORT" -q 2>/dev/null; }
redis_ready() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1; }
pg_installed() { command -v pg_ctlcluster >/dev/null 2>&1 && ls -d /etc/postgresql/*/main >/dev/null 2>&1; }

# --- install what is missing (only when that service does not answer already) ------------------

missing=()
pg_ready || pg_installed || missing+=(postgresql)
redis_ready || command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if [ "${#missing[@]}" -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 || {
    echo "error: ${missing[*]} missing and no apt-get here: install them, then rerun" >&2
    exit 1
  }
  echo "installing ${missing[*]} (apt-get)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  # The packages' own service start may fail without systemd (containers): started below instead.
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

# --- PostgreSQL ---------------------------------------------------------------------------------

if pg_installed; then
  pg_version="$(ls /etc/postgresql | sort -V | tail -n 1)"
  pg_hba="/etc/postgresql/${pg_version}/main/pg_hba.conf"
  # The tests connect as `postgres` over TCP on loopback without a password. A fresh cluster asks
  # for one (scram-sha-256), so trust rules go first (the first matching line wins).
  pg_hba_changed=false
  trusted='^host[[:space:]]+all[[:space:]]+(all|postgres)[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust'
  if ! as_root grep -Eq "$trusted" "$pg_hba"; then
    echo "PostgreSQL: trusting user postgres on 127.0.0.1 ($pg_hba)"
    rules='host all postgres 127.0.0.1/32 trust\nhost all postgres ::1/128 trust'
    as_root sed -i "0,/^[[:space:]]*[^#[:space:]]/s||${rules}\n&|" "$pg_hba"
    pg_hba_changed=true
  fi
  if ! pg_ready; then
    echo "starting PostgreSQL ${pg_version}"
    as_root pg_ctlcluster --skip-systemctl-redirect "$pg_version" main start
    for _ in $(seq 1 50); do pg_ready && break; sleep 0.2; done
  elif [ "$pg_hba_changed" = true ]; then
    as_root pg_ctlcluster --skip-systemctl-redirect "$pg_version" main reload
  fi
fi
pg_ready || { echo "error: PostgreSQL does not answer on ${PG_HOST}:${PG_PORT}" >&2; exit 1; }

psql_postgres() { psql -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres -tAq "$@"; }
if [ "$(psql_postgres -c "SELECT 1 FROM pg_database WHERE datname = 'test'")" != "1" ]; then
  echo "PostgreSQL: creating database test"
  psql_postgres -c "CREATE DATABASE test"
fi

# --- Redis --------------------------------------------------------------------------------------

if ! redis_ready; then
  echo "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no
  for _ in $(seq 1 50); do redis_ready && break; sleep 0.2; done
  redis_ready || { echo "error: Redis did not come up on 127.0.0.1:${REDIS_PORT}" >&2; exit 1; }
fi
