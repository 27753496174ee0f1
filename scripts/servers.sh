#!/usr/bin/env bash
# The servers the PostgreSQL suites run against besides 127.0.0.1:5432 itself:
#   127.0.0.1:6432  PgBouncer, transaction pooling, in front of 127.0.0.1:5432
#   127.0.0.1:6433  PgBouncer, session pooling, in front of 127.0.0.1:5432
#   127.0.0.1:5433  a streaming standby (hot, read-only) of 127.0.0.1:5432
# Idempotent: what already answers is reused; PgBouncer is installed from Debian's package
# if absent. Everything lives in KAVACH_SERVERS_DIR (default /var/lib/kavach-native),
# outside the clone. Run as root (it runs the servers as the postgres user); needs the
# local PostgreSQL running. Usage: scripts/servers.sh [pgbouncer|replica]... (default both)
set -euo pipefail

DIR="${KAVACH_SERVERS_DIR:-/var/lib/kavach-native}"
PRIMARY_PORT=5432
REPLICA_PORT=5433
BOUNCER_TX_PORT=6432
BOUNCER_SESSION_PORT=6433

answers() { (echo > "/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
as_postgres() { runuser -u postgres -- "$@"; }
wait_for() { # port, seconds
  for _ in $(seq 1 "$2"); do answers "$1" && return 0; sleep 0.5; done
  return 1
}

pg_bin() {
  local version
  version="$(ls /etc/postgresql | sort -V | tail -1)"
  echo "/usr/lib/postgresql/$version/bin"
}

install_pgbouncer() {
  command -v pgbouncer >/dev/null && return 0
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q pgbouncer >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q pgbouncer >/dev/null; }
  # The package's own service (empty config, port 6432) is not used.
  if [ -f /var/run/postgresql/pgbouncer.pid ]; then
    kill "$(cat /var/run/postgresql/pgbouncer.pid)" 2>/dev/null || true
    sleep 0.5
  fi
}

# One PgBouncer in front of the local PostgreSQL: $1 pool mode, $2 port, $3 pool size.
# extra_float_digits is ignored only by the transaction-mode one, as most deployments
# configure it (JDBC sends it); the session-mode one keeps PgBouncer's default.
start_pgbouncer() {
  local mode="$1" port="$2" size="$3" conf="$DIR/pgbouncer-$1"
  answers "$port" && return 0
  mkdir -p "$conf"
  echo '"postgres" ""' > "$conf/userlist.txt"
  local ignore=""
  [ "$mode" = transaction ] && ignore="ignore_startup_parameters = extra_float_digits"
  cat > "$conf/pgbouncer.ini" <<EOF
[databases]
* = host=127.0.0.1 port=$PRIMARY_PORT

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $conf/userlist.txt
pool_mode = $mode
default_pool_size = $size
max_client_conn = 2000
server_idle_timeout = 10
logfile = $conf/pgbouncer.log
pidfile = $conf/pgbouncer.pid
$ignore
EOF
  chown -R postgres:postgres "$conf"
  as_postgres pgbouncer -d -q "$conf/pgbouncer.ini"
  wait_for "$port" 20 || { echo "PgBouncer ($mode) did not start; see $conf/pgbouncer.log" >&2; return 1; }
}

# The primary lets 127.0.0.1 stream its WAL (a pg_hba line, then a reload).
allow_replication() {
  local hba
  hba="$(psql -h 127.0.0.1 -p "$PRIMARY_PORT" -U postgres -Atc 'SHOW hba_file')"
  if ! grep -qE '^host\s+replication\s+all\s+127\.0\.0\.1/32\s+trust' "$hba"; then
    echo 'host replication all 127.0.0.1/32 trust' >> "$hba"
    psql -h 127.0.0.1 -p "$PRIMARY_PORT" -U postgres -Atqc 'SELECT pg_reload_conf()' >/dev/null
    sleep 0.5
  fi
}

start_replica() {
  local data="$DIR/replica" bin
  bin="$(pg_bin)"
  if answers "$REPLICA_PORT"; then
    [ "$(psql -h 127.0.0.1 -p "$REPLICA_PORT" -U postgres -Atc 'SELECT pg_is_in_recovery()' 2>/dev/null)" = t ] && return 0
    echo "127.0.0.1:$REPLICA_PORT answers but is not a standby; leaving it alone" >&2
    return 1
  fi
  allow_replication
  mkdir -p "$DIR"
  touch "$DIR/replica.log" && chown postgres:postgres "$DIR/replica.log"
  if [ -f "$data/standby.signal" ]; then
    # A standby made earlier: start it; one too far behind the primary's WAL is made anew.
    if as_postgres "$bin/pg_ctl" -D "$data" -l "$DIR/replica.log" -w -t 30 start >/dev/null 2>&1 \
      && [ "$(psql -h 127.0.0.1 -p "$REPLICA_PORT" -U postgres -Atc 'SELECT pg_is_in_recovery()')" = t ]; then
      return 0
    fi
    as_postgres "$bin/pg_ctl" -D "$data" -m immediate stop >/dev/null 2>&1 || true
  fi
  rm -rf "$data"
  install -d -o postgres -g postgres -m 700 "$data"
  as_postgres "$bin/pg_basebackup" -h 127.0.0.1 -p "$PRIMARY_PORT" -U postgres -D "$data" -R -X stream -c fast
  # Debian keeps the primary's postgresql.conf and pg_hba.conf in /etc: the standby gets its
  # own, with the settings a standby may not have below the primary's.
  local floor=""
  for setting in max_connections max_worker_processes max_wal_senders max_prepared_transactions max_locks_per_transaction; do
    floor+="$setting = $(psql -h 127.0.0.1 -p "$PRIMARY_PORT" -U postgres -Atc "SHOW $setting")"$'\n'
  done
  cat > "$data/postgresql.conf" <<EOF
port = $REPLICA_PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '/var/run/postgresql'
hot_standby = on
shared_buffers = 32MB
${floor}hba_file = '$data/pg_hba.conf'
ident_file = '$data/pg_ident.conf'
EOF
  printf 'local all all trust\nhost all all 127.0.0.1/32 trust\n' > "$data/pg_hba.conf"
  touch "$data/pg_ident.conf"
  chown postgres:postgres "$data/postgresql.conf" "$data/pg_hba.conf" "$data/pg_ident.conf"
  as_postgres "$bin/pg_ctl" -D "$data" -l "$DIR/replica.log" -w -t 60 start >/dev/null
}

what=("$@")
[ ${#what[@]} -eq 0 ] && what=(pgbouncer replica)
for item in "${what[@]}"; do
  case "$item" in
    pgbouncer)
      install_pgbouncer
      start_pgbouncer transaction "$BOUNCER_TX_PORT" 10
      start_pgbouncer session "$BOUNCER_SESSION_PORT" 30
      echo "PgBouncer: 127.0.0.1:$BOUNCER_TX_PORT (transaction pooling), 127.0.0.1:$BOUNCER_SESSION_PORT (session pooling)"
      ;;
    replica)
      start_replica
      echo "standby of 127.0.0.1:$PRIMARY_PORT: 127.0.0.1:$REPLICA_PORT (data $DIR/replica)"
      ;;
    *) echo "unknown: $item (pgbouncer, replica)" >&2; exit 2 ;;
  esac
done
