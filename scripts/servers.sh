#!/usr/bin/env bash
# The servers the integration tests talk to, on this machine's loopback:
#   Mosquitto 127.0.0.1:1883, PostgreSQL 127.0.0.1:5432, Redis 127.0.0.1:6379, NATS 127.0.0.1:4222,
#   ClickHouse 127.0.0.1:8123 (HTTP), Kafka (a test broker on loopback ports of its own choosing),
#   postgres-logical 127.0.0.1:5433 (a PostgreSQL cluster of our own with wal_level=logical, for change data capture).
#
#   scripts/servers.sh check [mosquitto|postgres|redis|nats|clickhouse|kafka|postgres-logical|all]   does each answer its protocol on its port?
#   scripts/servers.sh start [mosquitto|postgres|redis|nats|clickhouse|kafka|postgres-logical|all]   start those that do not, with the system's
#                                                                  own binaries (Debian packages), then check again
#
# ClickHouse is not one of the machine's services: `start clickhouse` installs Debian's clickhouse-server
# (18.16) when it is missing and runs it on loopback with a config of its own in $GP_CLICKHOUSE_DIR
# (default /tmp/gridpulse-clickhouse: data, logs, config; delete the folder to start from nothing).
#
# Kafka is not one of the machine's services either: `start kafka` runs librdkafka's mock cluster through
# Debian's kcat (installed when missing): 3 brokers on loopback ports it picks, alive while that kcat runs,
# topics auto-created with 4 partitions on first use, everything in memory (a restart starts empty). Its
# files are in $GP_KAFKA_DIR (default /tmp/gridpulse-kafka): `bootstrap` holds the brokers as
# host:port,host:port,host:port (the tests read it, or GP_KAFKA_BOOTSTRAP), `kafka.log` kcat's log, `pid`
# its process group (stop it with: kill -- -$(cat /tmp/gridpulse-kafka/pid)).
#
# postgres-logical is not one of the machine's services either: `start postgres-logical` runs a cluster of its own
# from the installed PostgreSQL 15 binaries, on 127.0.0.1:5433 (trust auth for loopback, user postgres), with
# wal_level=logical, max_replication_slots and max_wal_senders set, so the outbox relay can stream changes through a
# replication slot. initdb runs once, as the postgres user, into $GP_PG_LOGICAL_DIR/data (default
# /tmp/gridpulse-pg-logical/data); existing data is never initialised again. Server log: $GP_PG_LOGICAL_DIR/server.log.
# Stop it with: runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D /tmp/gridpulse-pg-logical/data stop
#
# One line per server. Exit status 0 when every named server answers, 1 otherwise, 2 on bad usage.
# `start` never stops or restarts a server that answers. It uses the commands these machines start their
# services with (see the machine notes): the packages' binaries and configs, not copies of our own.
set -uo pipefail

HOST=127.0.0.1
ALL=(mosquitto postgres redis nats clickhouse kafka postgres-logical)
CLICKHOUSE_DIR=${GP_CLICKHOUSE_DIR:-/tmp/gridpulse-clickhouse}
KAFKA_DIR=${GP_KAFKA_DIR:-/tmp/gridpulse-kafka}
PG_LOGICAL_DIR=${GP_PG_LOGICAL_DIR:-/tmp/gridpulse-pg-logical}
PG_LOGICAL_PORT=5433
PG_BIN=/usr/lib/postgresql/15/bin

usage() {
  echo "usage: scripts/servers.sh check|start [mosquitto|postgres|redis|nats|clickhouse|kafka|postgres-logical|all]" >&2
  exit 2
}

port_of() {
  case $1 in
    mosquitto) echo 1883 ;;
    postgres) echo 5432 ;;
    redis) echo 6379 ;;
    nats) echo 4222 ;;
    clickhouse) echo 8123 ;;
    # The mock cluster picks its ports: the first broker of the recorded list, or "-" before one ran.
    kafka) kafka_first_broker | sed 's/.*://' | grep . || echo - ;;
    postgres-logical) echo "$PG_LOGICAL_PORT" ;;
  esac
}

# The recorded bootstrap list, e.g. 127.0.0.1:41235,127.0.0.1:37411,127.0.0.1:45883 (nothing when none is recorded).
kafka_bootstrap() {
  [ -s "$KAFKA_DIR/bootstrap" ] && head -n 1 "$KAFKA_DIR/bootstrap"
}

kafka_first_broker() {
  kafka_bootstrap | cut -d, -f1
}

# Each probe speaks the server's protocol (a bare TCP connect would also "succeed" against the wrong
# program) and prints a short description of what answered. Status 0 when it answered.
probe_mosquitto() {
  # MQTT 3.1.1 CONNECT (clean session, keepalive 60 s, empty client id); a broker answers CONNACK 20 02 00 00.
  local reply
  reply=$(timeout 3 bash -c '
    exec 3<>/dev/tcp/'"$HOST"'/1883 || exit 1
    printf "\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00" >&3
    head -c 4 <&3 | od -An -tx1 | tr -d " \n"
    printf "\xe0\x00" >&3
  ' 2>/dev/null) || return 1
  [ "$reply" = 20020000 ] || return 1
  echo "answers MQTT (CONNACK accepted)"
}

probe_postgres() {
  if command -v pg_isready >/dev/null; then
    pg_isready -q -h "$HOST" -p 5432 -t 3 || return 1
    echo "accepting connections (pg_isready)"
    return 0
  fi
  timeout 3 bash -c "exec 3<>/dev/tcp/$HOST/5432" 2>/dev/null || return 1
  echo "port open (pg_isready not installed)"
}

probe_redis() {
  local reply
  reply=$(timeout 3 bash -c '
    exec 3<>/dev/tcp/'"$HOST"'/6379 || exit 1
    printf "PING\r\n" >&3
    head -c 5 <&3
  ' 2>/dev/null) || return 1
  [ "$reply" = "+PONG" ] || return 1
  echo "answers PING with PONG"
}

probe_nats() {
  # A NATS server greets every connection with an INFO line.
  local line
  line=$(timeout 3 bash -c '
    exec 3<>/dev/tcp/'"$HOST"'/4222 || exit 1
    IFS= read -r line <&3 && printf "%s" "$line"
  ' 2>/dev/null) || return 1
  case $line in
    INFO*) ;;
    *) return 1 ;;
  esac
  local version
  version=$(printf '%s' "$line" | sed -n 's/.*"version":"\([^"]*\)".*/\1/p')
  echo "answers with INFO${version:+ (nats-server $version)}"
}

probe_clickhouse() {
  # The HTTP interface answers GET /ping with "Ok."; then ask its version.
  local reply version
  reply=$(timeout 3 bash -c '
    exec 3<>/dev/tcp/'"$HOST"'/8123 || exit 1
    printf "GET /ping HTTP/1.0\r\nHost: localhost\r\n\r\n" >&3
    cat <&3
  ' 2>/dev/null) || return 1
  case $reply in
    *"Ok."*) ;;
    *) return 1 ;;
  esac
  version=$(timeout 3 bash -c '
    exec 3<>/dev/tcp/'"$HOST"'/8123 || exit 1
    printf "GET /?query=SELECT%%20version() HTTP/1.0\r\nHost: localhost\r\n\r\n" >&3
    cat <&3 | tail -n 1
  ' 2>/dev/null)
  echo "answers /ping${version:+ (ClickHouse $version)}"
}

probe_kafka() {
  # Kafka ApiVersions v0 (api key 18, correlation id 1, client id "gp") to every recorded broker; each must
  # answer with correlation id 1 and error code 0.
  local list broker host port reply count=0
  list=$(kafka_bootstrap) || return 1
  [ -n "$list" ] || return 1
  for broker in ${list//,/ }; do
    host=${broker%:*}
    port=${broker##*:}
    reply=$(timeout 3 bash -c '
      exec 3<>/dev/tcp/'"$host"'/'"$port"' || exit 1
      printf "\x00\x00\x00\x0c\x00\x12\x00\x00\x00\x00\x00\x01\x00\x02gp" >&3
      head -c 10 <&3 | od -An -tx1 | tr -d " \n"
    ' 2>/dev/null) || return 1
    # 4 bytes of length, then correlation id 00000001 and error code 0000.
    [ "${reply:8:12}" = 000000010000 ] || return 1
    count=$((count + 1))
  done
  echo "$count brokers answer ApiVersions (bootstrap $list, in $KAFKA_DIR/bootstrap)"
}

# Our own cluster for change data capture: it must accept connections AND run with wal_level=logical (a server
# on 5433 without it would make the outbox tests fall back to polling and prove nothing about the slot).
probe_postgres-logical() {
  command -v psql >/dev/null || return 1
  local level
  level=$(PGCONNECT_TIMEOUT=3 timeout 5 psql -X -w -h "$HOST" -p "$PG_LOGICAL_PORT" -U postgres -d postgres -Atc 'SHOW wal_level' 2>/dev/null) || return 1
  [ "$level" = logical ] || return 1
  echo "accepting connections, wal_level=logical (data in $PG_LOGICAL_DIR/data)"
}

# initdb once (as the postgres user: initdb refuses root), then our settings in an included file rewritten on
# every start, then pg_ctl start. pg_ctl's postmaster gets /dev/null and the log file for its descriptors and a
# session of its own (setsid), so nothing of the caller's (a test runner's pipes, its process group) stays tied to it.
start_postgres_logical() {
  [ -x "$PG_BIN/initdb" ] || { echo "PostgreSQL 15 binaries are not installed in $PG_BIN (Debian package postgresql-15)"; return 1; }
  local d=$PG_LOGICAL_DIR data=$PG_LOGICAL_DIR/data
  mkdir -p "$d" || return 1
  chown postgres:postgres "$d" || return 1
  if ! [ -s "$data/PG_VERSION" ]; then
    runuser -u postgres -- "$PG_BIN/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
      </dev/null >"$d/initdb.log" 2>&1 || { echo "initdb failed: $(tail -n 3 "$d/initdb.log" | tr '\n' ' ')"; return 1; }
  fi
  cat >"$data/gridpulse.conf" <<EOF
# Written by scripts/servers.sh start postgres-logical on every start; edit the script, not this file.
listen_addresses = '$HOST'
port = $PG_LOGICAL_PORT
unix_socket_directories = '$d'
wal_level = logical
max_replication_slots = 64
max_wal_senders = 32
wal_sender_timeout = 60s
EOF
  chown postgres:postgres "$data/gridpulse.conf"
  grep -q "^include_if_exists = 'gridpulse.conf'" "$data/postgresql.conf" ||
    echo "include_if_exists = 'gridpulse.conf'" >>"$data/postgresql.conf"
  # A postmaster.pid left by a killed server: pg_ctl itself checks whether that process still runs.
  setsid runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$data" -l "$d/server.log" -w -t 30 start \
    </dev/null >"$d/pg_ctl.log" 2>&1 || { echo "pg_ctl start failed: $(tail -n 3 "$d/server.log" "$d/pg_ctl.log" 2>/dev/null | tr '\n' ' ')"; return 1; }
}

# librdkafka's mock cluster (through kcat, which keeps it alive while it runs): it logs the brokers it
# listens on ("Mock cluster enabled: ... replaced with 127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3"); that
# list goes to $KAFKA_DIR/bootstrap.
start_kafka() {
  if ! command -v kcat >/dev/null; then
    echo "installing Debian package kcat" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat; } >/dev/null 2>&1 ||
      { echo "kcat is not installed and apt-get install kcat failed"; return 1; }
  fi
  local d=$KAFKA_DIR tries=0 list
  mkdir -p "$d" || return 1
  # A cluster recorded earlier that no longer answers: forget it (and end its kcat if it still runs).
  if [ -s "$d/pid" ] && kill -0 -- "-$(cat "$d/pid")" 2>/dev/null; then kill -- "-$(cat "$d/pid")" 2>/dev/null; fi
  rm -f "$d/bootstrap" "$d/pid" "$d/kafka.log"
  # kcat produces from its stdin, which `sleep infinity` keeps open and empty. Detached from this script
  # in a session of its own (its id, written to pid, is the process group to kill).
  (cd "$d" && exec setsid bash -c 'echo $$ >pid; sleep infinity | kcat -P -t _gridpulse_probe -b 127.0.0.1:1 -X test.mock.num.brokers=3 2>kafka.log' \
    </dev/null >/dev/null 2>&1 &) </dev/null >/dev/null 2>&1
  while [ $tries -lt 50 ]; do
    list=$(sed -n 's/.*Mock cluster enabled.* replaced with \([0-9.:,]*\).*/\1/p' "$d/kafka.log" 2>/dev/null | head -n 1)
    if [ -n "$list" ]; then
      echo "$list" >"$d/bootstrap"
      return 0
    fi
    sleep 0.1
    tries=$((tries + 1))
  done
  echo "kcat did not report a mock cluster in $d/kafka.log: $(head -c 300 "$d/kafka.log" 2>/dev/null)"
  return 1
}

# A ClickHouse of our own: loopback only, user default without password, everything under one folder.
start_clickhouse() {
  if ! [ -x /usr/sbin/clickhouse-server ]; then
    echo "installing Debian package clickhouse-server" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clickhouse-server; } >/dev/null 2>&1 ||
      { echo "clickhouse-server is not installed and apt-get install clickhouse-server failed"; return 1; }
  fi
  local d=$CLICKHOUSE_DIR
  mkdir -p "$d/data" "$d/tmp" "$d/user_files" "$d/log" || return 1
  cat >"$d/config.xml" <<EOF
<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>$d/log/server.log</log><errorlog>$d/log/error.log</errorlog><size>10M</size><count>2</count></logger>
  <http_port>8123</http_port>
  <tcp_port>19000</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <path>$d/data/</path>
  <tmp_path>$d/tmp/</tmp_path>
  <user_files_path>$d/user_files/</user_files_path>
  <users_config>$d/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>268435456</mark_cache_size>
  <max_concurrent_queries>100</max_concurrent_queries>
</yandex>
EOF
  cat >"$d/users.xml" <<EOF
<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>4000000000</max_memory_usage></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
EOF
  # Detached from this script: no descriptor of ours (the caller may be reading our output) stays open in it.
  (cd "$d" && exec setsid /usr/sbin/clickhouse-server --config-file="$d/config.xml" </dev/null >"$d/log/stdout.log" 2>&1 &) </dev/null >/dev/null 2>&1
}

# Starts one server the way this machine's services are started. Prints nothing on success.
start_server() {
  case $1 in
    mosquitto)
      command -v mosquitto >/dev/null || { echo "mosquitto is not installed (Debian package mosquitto)"; return 1; }
      # The packaged config writes its pid file to /run/mosquitto and drops privileges to user mosquitto.
      [ -d /run/mosquitto ] || install -d -o mosquitto -g mosquitto /run/mosquitto 2>/dev/null
      mosquitto -d -c /etc/mosquitto/mosquitto.conf 2>&1
      ;;
    postgres)
      command -v pg_ctlcluster >/dev/null || { echo "PostgreSQL is not installed (Debian package postgresql)"; return 1; }
      [ -d /var/run/postgresql ] || install -d -o postgres -g postgres -m 2775 /var/run/postgresql 2>/dev/null
      local version status=0
      for version in $(ls /etc/postgresql 2>/dev/null); do
        pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>&1 || status=1
      done
      return $status
      ;;
    redis)
      command -v redis-server >/dev/null || { echo "redis-server is not installed (Debian package redis-server)"; return 1; }
      [ -d /var/lib/redis ] || install -d /var/lib/redis
      [ -d /var/log/redis ] || install -d /var/log/redis
      redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/ci.log 2>&1
      ;;
    nats)
      [ -x /usr/sbin/nats-server ] || { echo "nats-server is not installed (Debian package nats-server)"; return 1; }
      [ -d /var/lib/nats-server ] || install -d -m 750 /var/lib/nats-server
      start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
        -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log 2>&1
      ;;
    clickhouse) start_clickhouse ;;
    kafka) start_kafka ;;
    postgres-logical) start_postgres_logical ;;
  esac
}

# Waits up to ~15 s for a started server to answer; prints what answered.
wait_until_up() {
  local name=$1 tries=0 what
  while [ $tries -lt 30 ]; do
    if what=$("probe_$name"); then
      echo "$what"
      return 0
    fi
    sleep 0.5
    tries=$((tries + 1))
  done
  return 1
}

action=${1:-}
target=${2:-all}
[ $# -le 2 ] || usage
case $action in check | start) ;; *) usage ;; esac
case $target in
  all) names=("${ALL[@]}") ;;
  mosquitto | postgres | redis | nats | clickhouse | kafka | postgres-logical) names=("$target") ;;
  *) usage ;;
esac

failures=0
for name in "${names[@]}"; do
  port=$(port_of "$name")
  label=$(printf '%-9s %s:%-5s' "$name" "$HOST" "$port")
  if what=$("probe_$name"); then
    echo "$label up: $what"
    continue
  fi
  if [ "$action" = check ]; then
    echo "$label DOWN: does not answer (start it with scripts/servers.sh start $name)"
    failures=$((failures + 1))
    continue
  fi
  output=$(start_server "$name")
  started=$?
  if [ $started -eq 0 ] && what=$(wait_until_up "$name"); then
    echo "$label started: $what"
  else
    detail=$(printf '%s' "$output" | tr '\n' ' ' | cut -c1-300)
    echo "$label DOWN: failed to start${detail:+: $detail}"
    failures=$((failures + 1))
  fi
done
[ $failures -eq 0 ]
