#!/usr/bin/env bash
# Local Redis for Carepath without Docker: Debian's redis-server, our own instance on 127.0.0.1.
#
# Usage: deploy/redis/redis.sh {start|stop|restart|status|reset}
#
#   start    install redis-server/redis-tools with apt-get if missing, start a daemonized instance
#            and wait for PING -> PONG. No-op if REDIS_URL is set (external Redis) or if our
#            instance is already running.
#   stop     SHUTDOWN (fsyncs the AOF), falling back to SIGTERM/SIGKILL by pid
#   restart  stop + start (data kept)
#   status   exit 0 if our instance answers PING, 3 if stopped, 1 if in a bad state
#   reset    stop + wipe the data dir
#   cluster-start   start a 3-master Redis Cluster (no replicas) on REDIS_CLUSTER_PORTS and
#                   create it with `redis-cli --cluster create` (first time); waits for
#                   cluster_state:ok; prints the URL to use (redis+cluster://127.0.0.1:PORT/0)
#   cluster-stop    SHUTDOWN every node of that cluster
#   cluster-status  exit 0 if every node answers and cluster_state is ok, 3 if stopped
#   cluster-reset   cluster-stop + wipe the nodes' data (next cluster-start creates afresh)
#
# Environment (all optional):
#   REDIS_URL            if set, `start` only prints it: an external Redis is used
#   REDIS_PORT           default 6379 (bound to 127.0.0.1 only)
#   REDIS_START_TIMEOUT  seconds to wait for PONG, default 30
#   RUN_DIR              default <repo>/.run ; files go to $RUN_DIR/redis
#   REDIS_CLUSTER_PORTS  default "7000 7001 7002": the cluster's nodes (the bus port of each is
#                        port + 10000); cluster files go to $RUN_DIR/redis-cluster/<port>/
#
# Opt-in TLS + an ACL user (Debian's redis-server is built with TLS):
#   REDIS_TLS_PORT       serve TLS on this port and close the plaintext one (port 0)
#   REDIS_TLS_CERT_FILE, REDIS_TLS_KEY_FILE  the server's PEM certificate and key
#   REDIS_TLS_CA_CERT_FILE  PEM CA for client certificates and for redis-cli here
#   REDIS_TLS_AUTH_CLIENTS  no (default: no client certificate needed) | optional | yes
#   REDIS_ACL_USER, REDIS_ACL_PASSWORD  the only enabled user (the `default` user is
#                        turned off); required with TLS. Clients then use
#                        REDIS_URL=rediss://USER@127.0.0.1:PORT/0 with REDIS_PASSWORD, or the
#                        password in the URL, and REDIS_SSL_CA_CERTS.
#
# Durability: Redis is the store of record for referrals, so the instance runs with
# appendonly yes + appendfsync everysec (at most ~1 s of writes lost on a crash, none on a clean
# stop) and no RDB snapshots (save ""), which would only duplicate the AOF and fork on a timer.
#
# Files: $RUN_DIR/redis/{redis.conf, redis.pid, redis.log, data/ (appendonlydir/)}
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
RUN_DIR="${RUN_DIR:-$REPO_ROOT/.run}"
REDIS_PORT="${REDIS_PORT:-6379}"
REDIS_START_TIMEOUT="${REDIS_START_TIMEOUT:-30}"
R_DIR="$RUN_DIR/redis"
DATA_DIR="$R_DIR/data"
CONF_FILE="$R_DIR/redis.conf"
PID_FILE="$R_DIR/redis.pid"
LOG_FILE="$R_DIR/redis.log"
TLS_PORT="${REDIS_TLS_PORT:-}"
if [[ -n "$TLS_PORT" ]]; then
  URL="rediss://${REDIS_ACL_USER:-}@127.0.0.1:$TLS_PORT/0"
  LISTEN_PORT="$TLS_PORT"
else
  URL="redis://127.0.0.1:$REDIS_PORT/0"
  LISTEN_PORT="$REDIS_PORT"
fi

log() { printf 'redis.sh: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

cli() {
  if [[ -n "$TLS_PORT" ]]; then
    REDISCLI_AUTH="$REDIS_ACL_PASSWORD" redis-cli -h 127.0.0.1 -p "$TLS_PORT" --tls \
      --cacert "$REDIS_TLS_CA_CERT_FILE" --user "$REDIS_ACL_USER" --no-auth-warning "$@"
  else
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"
  fi
}
ping_ok() { [[ "$(cli ping 2>/dev/null || true)" == "PONG" ]]; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$LISTEN_PORT") 2>/dev/null; }

check_tls() {
  [[ -n "$TLS_PORT" ]] || return 0
  local f
  for f in REDIS_TLS_CERT_FILE REDIS_TLS_KEY_FILE REDIS_TLS_CA_CERT_FILE; do
    [[ -r "${!f:-}" ]] || die "REDIS_TLS_PORT needs $f (a readable PEM file)"
  done
  [[ -n "${REDIS_ACL_USER:-}" && -n "${REDIS_ACL_PASSWORD:-}" ]] || die "REDIS_TLS_PORT needs REDIS_ACL_USER and REDIS_ACL_PASSWORD"
  [[ "$REDIS_ACL_USER" =~ ^[A-Za-z0-9_.-]+$ ]] || die "REDIS_ACL_USER: letters, digits, _ . - only"
  [[ "$REDIS_ACL_PASSWORD" =~ ^[^[:space:]\<\>]+$ ]] || die "REDIS_ACL_PASSWORD: no spaces or < >"
}

# The TLS listener and the ACL user (appended to the generated config; file mode 0600, since
# it holds the password).
tls_conf() {
  cat <<EOF
# TLS only (REDIS_TLS_PORT): no plaintext port.
port 0
tls-port $TLS_PORT
tls-cert-file $REDIS_TLS_CERT_FILE
tls-key-file $REDIS_TLS_KEY_FILE
tls-ca-cert-file $REDIS_TLS_CA_CERT_FILE
tls-auth-clients ${REDIS_TLS_AUTH_CLIENTS:-no}
tls-protocols "TLSv1.2 TLSv1.3"
# One enabled ACL user; the passwordless default user is off.
user default off
user $REDIS_ACL_USER on >$REDIS_ACL_PASSWORD ~* &* +@all
EOF
}

# Pid from our pid file if alive and a redis-server, else empty.
our_pid() {
  local pid
  [[ -f "$PID_FILE" ]] || return 0
  pid="$(cat "$PID_FILE" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 0
  if kill -0 "$pid" 2>/dev/null && grep -q 'redis-server' "/proc/$pid/cmdline" 2>/dev/null; then
    echo "$pid"
  fi
}

ensure_installed() {
  if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
    return 0
  fi
  local sudo="" policy_created=""
  if [[ "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "redis-server missing and not root (install redis-server redis-tools)"
    sudo="sudo"
  fi
  log "installing redis-server + redis-tools with apt-get ..."
  # Keep the Debian package from starting its own service on 6379 (we run our own instance).
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod +x /usr/sbin/policy-rc.d
    policy_created=1
  fi
  local rc=0
  {
    $sudo apt-get update -q &&
      $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        redis-server redis-tools
  } >"${TMPDIR:-/tmp}/carepath-redis-apt.log" 2>&1 || rc=$?
  [[ -z "$policy_created" ]] || $sudo rm -f /usr/sbin/policy-rc.d
  if (( rc != 0 )); then
    tail -n 30 "${TMPDIR:-/tmp}/carepath-redis-apt.log" >&2 || true
    die "apt-get install redis-server redis-tools failed"
  fi
  command -v redis-server >/dev/null 2>&1 || die "redis-server still missing after apt-get install"
  log "installed $(redis-server --version | awk '{print $3}')"
}

write_conf() {
  mkdir -p "$DATA_DIR"
  (umask 077 && : >"$CONF_FILE.tmp")
  cat >"$CONF_FILE.tmp" <<EOF
# Generated by deploy/redis/redis.sh on every start; edit the script, not this file.
bind 127.0.0.1
protected-mode yes
port $REDIS_PORT
daemonize yes
pidfile $PID_FILE
logfile $LOG_FILE
loglevel notice
dir $DATA_DIR
# Store of record (referrals): AOF, fsync once a second; no RDB snapshots.
appendonly yes
appendfsync everysec
appenddirname appendonlydir
aof-use-rdb-preamble yes
save ""
# Never evict: data loss by policy is worse than an OOM error for a store of record.
maxmemory-policy noeviction
EOF
  if [[ -n "$TLS_PORT" ]]; then
    # port 0 must come after the plaintext port line above: the last one wins.
    tls_conf >>"$CONF_FILE.tmp"
  fi
  mv "$CONF_FILE.tmp" "$CONF_FILE"
}

cmd_start() {
  if [[ -n "${REDIS_URL:-}" ]]; then
    log "REDIS_URL is set: using the external Redis, not starting one"
    echo "$REDIS_URL"
    return 0
  fi
  ensure_installed
  check_tls
  mkdir -p "$R_DIR"
  local pid
  pid="$(our_pid)"
  if [[ -n "$pid" ]] && ping_ok; then
    log "already running (pid $pid) on 127.0.0.1:$REDIS_PORT"
    echo "$URL"
    return 0
  fi
  if [[ -z "$pid" ]]; then
    rm -f "$PID_FILE"
    port_open && die "127.0.0.1:$LISTEN_PORT is in use by something that is not our Redis (set REDIS_PORT/REDIS_TLS_PORT, or REDIS_URL to use it)"
    write_conf
    redis-server "$CONF_FILE" || { tail -n 30 "$LOG_FILE" >&2 || true; die "redis-server failed to start"; }
  fi
  local deadline=$((SECONDS + REDIS_START_TIMEOUT))
  until ping_ok; do
    if (( SECONDS >= deadline )); then
      tail -n 50 "$LOG_FILE" >&2 || true
      die "Redis did not answer PING within ${REDIS_START_TIMEOUT}s"
    fi
    sleep 0.1
  done
  pid="$(our_pid)"
  log "Redis $(cli info server | awk -F: '/^redis_version/ {print $2}' | tr -d '\r') ready on 127.0.0.1:$LISTEN_PORT${TLS_PORT:+ (TLS, ACL user $REDIS_ACL_USER)} (pid ${pid:-?}, aof everysec, log $LOG_FILE)"
  log "use: export REDIS_URL=$URL"
  echo "$URL"
}

cmd_stop() {
  local pid i
  pid="$(our_pid)"
  if [[ -z "$pid" ]]; then
    log "not running (no live pid in $PID_FILE)"
    rm -f "$PID_FILE"
    return 0
  fi
  # SHUTDOWN writes/fsyncs the AOF and exits; fall back to signals.
  cli shutdown >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 300; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "pid $pid still alive after 30 s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.5
  fi
  kill -0 "$pid" 2>/dev/null && die "could not stop redis pid $pid"
  rm -f "$PID_FILE"
  log "stopped redis pid $pid"
}

cmd_status() {
  local pid
  pid="$(our_pid)"
  if [[ -z "$pid" ]]; then
    echo "redis: stopped (run dir $R_DIR)"
    [[ -n "${REDIS_URL:-}" ]] && echo "redis: REDIS_URL=$REDIS_URL (external)"
    return 3
  fi
  if ping_ok; then
    echo "redis: running pid=$pid url=$URL log=$LOG_FILE data=$DATA_DIR"
    return 0
  fi
  echo "redis: pid $pid alive but not answering PING on 127.0.0.1:$REDIS_PORT; log=$LOG_FILE"
  return 1
}

cmd_reset() {
  cmd_stop
  rm -rf "$DATA_DIR"
  log "wiped $DATA_DIR"
}

# ---- Redis Cluster (3 masters, loopback) -------------------------------------------------------
REDIS_CLUSTER_PORTS="${REDIS_CLUSTER_PORTS:-7000 7001 7002}"
C_DIR="$RUN_DIR/redis-cluster"
read -r -a C_PORTS <<<"$REDIS_CLUSTER_PORTS"

ccli() { local port="$1"; shift; redis-cli -h 127.0.0.1 -p "$port" "$@"; }
node_ok() { [[ "$(ccli "$1" ping 2>/dev/null || true)" == "PONG" ]]; }
cluster_ok() { ccli "${C_PORTS[0]}" cluster info 2>/dev/null | grep -q '^cluster_state:ok'; }
known_nodes() { ccli "${C_PORTS[0]}" cluster info 2>/dev/null | awk -F: '/^cluster_known_nodes/ {print $2}' | tr -d '\r'; }

write_node_conf() {
  local port="$1" dir="$C_DIR/$1"
  mkdir -p "$dir/data"
  cat >"$dir/redis.conf" <<EOF
# Generated by deploy/redis/redis.sh cluster-start; edit the script, not this file.
bind 127.0.0.1
protected-mode yes
port $port
daemonize yes
pidfile $dir/redis.pid
logfile $dir/redis.log
dir $dir/data
cluster-enabled yes
cluster-config-file $dir/data/nodes.conf
cluster-node-timeout 3000
# Three masters without replicas: a stopped node leaves its slots unserved (no failover).
cluster-require-full-coverage yes
appendonly yes
appendfsync everysec
save ""
maxmemory-policy noeviction
EOF
}

cmd_cluster_start() {
  ensure_installed
  local port nodes=() deadline
  (( ${#C_PORTS[@]} >= 3 )) || die "REDIS_CLUSTER_PORTS needs 3 ports (got '${REDIS_CLUSTER_PORTS}')"
  for port in "${C_PORTS[@]}"; do
    nodes+=("127.0.0.1:$port")
    if node_ok "$port"; then continue; fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      die "127.0.0.1:$port is in use by something that is not answering PING"
    fi
    write_node_conf "$port"
    redis-server "$C_DIR/$port/redis.conf" || die "redis-server on $port failed to start"
  done
  deadline=$((SECONDS + REDIS_START_TIMEOUT))
  for port in "${C_PORTS[@]}"; do
    until node_ok "$port"; do
      (( SECONDS < deadline )) || die "node $port did not answer PING"
      sleep 0.1
    done
  done
  # First start: the nodes know only themselves; join them and spread the 16384 slots.
  if [[ "$(known_nodes)" == "1" ]]; then
    redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes \
      >"$C_DIR/create.log" 2>&1 \
      || { tail -n 30 "$C_DIR/create.log" >&2; die "redis-cli --cluster create failed"; }
  fi
  until cluster_ok; do
    (( SECONDS < deadline + 30 )) || die "cluster_state is not ok (see $C_DIR/*/redis.log)"
    sleep 0.2
  done
  log "Redis Cluster ready: ${nodes[*]} (3 masters)"
  log "use: export REDIS_URL=redis+cluster://${nodes[0]}/0"
  echo "redis+cluster://${nodes[0]}/0"
}

cmd_cluster_stop() {
  local port pid i
  for port in "${C_PORTS[@]}"; do
    pid="$(cat "$C_DIR/$port/redis.pid" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] || continue
    kill -0 "$pid" 2>/dev/null && grep -q redis-server "/proc/$pid/cmdline" 2>/dev/null || continue
    ccli "$port" shutdown >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    log "stopped cluster node $port (pid $pid)"
  done
  return 0
}

cmd_cluster_status() {
  local port up=0
  for port in "${C_PORTS[@]}"; do if node_ok "$port"; then up=$((up + 1)); fi; done
  if (( up == 0 )); then echo "redis-cluster: stopped"; return 3; fi
  if (( up == ${#C_PORTS[@]} )) && cluster_ok; then
    echo "redis-cluster: ok, ${up} nodes: ${C_PORTS[*]}"; return 0
  fi
  echo "redis-cluster: ${up}/${#C_PORTS[@]} nodes up, state not ok"; return 1
}

case "${1:-}" in
  cluster-start) cmd_cluster_start; exit 0 ;;
  cluster-stop) cmd_cluster_stop; exit 0 ;;
  cluster-status) rc=0; cmd_cluster_status || rc=$?; exit "$rc" ;;
  cluster-reset) cmd_cluster_stop; rm -rf "$C_DIR"; log "wiped $C_DIR"; exit 0 ;;
esac

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  restart) cmd_stop; cmd_start ;;
  status) cmd_status ;;
  reset) cmd_reset ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
