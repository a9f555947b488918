#!/usr/bin/env bash
# Local single-node Apache Kafka 4.x (KRaft) without Docker: jars from Maven Central, 127.0.0.1 only.
#
# Usage: deploy/kafka/kafka.sh {fetch|start|stop|restart|status|reset|logs}
#
#   fetch    resolve the broker jars into $CAREPATH_CACHE/kafka/$KAFKA_VERSION/libs (once)
#   start    fetch, format storage (first time only), start the broker in the background and wait
#            until it answers a metadata request. No-op if KAFKA_BOOTSTRAP_SERVERS is set
#            (external broker) or if our broker is already running.
#   stop     SIGTERM, wait up to 30 s, then SIGKILL; removes the pid file
#   restart  stop + start (data kept)
#   status   exit 0 if running and answering, 3 if stopped, 1 if in a bad state
#   reset    stop + wipe the data dir and cluster id (next start formats afresh)
#   logs     tail -f the broker log
#   cluster-start        start a 3-node KRaft cluster (combined broker+controller nodes 1-3,
#                        static quorum of 3 controllers) on KAFKA_CLUSTER_PORTS; waits until
#                        describe_cluster shows 3 brokers; prints the bootstrap servers.
#                        Starts only the nodes not running (so it also restarts a killed one).
#   cluster-start-node N start node N (1-3) if it is not running, wait for 3 brokers
#   cluster-stop         stop every node;  cluster-status: 0 all up, 3 none, 1 some
#   cluster-reset        cluster-stop + wipe the cluster's data
#
# Environment (all optional):
#   KAFKA_BOOTSTRAP_SERVERS  if set, `start` only prints it: an external broker is used
#   KAFKA_VERSION            default 4.4.0 (any 4.x on Maven Central)
#   KAFKA_PORT               default 9092 (PLAINTEXT listener, 127.0.0.1)
#   KAFKA_CONTROLLER_PORT    default 9093 (KRaft controller listener, 127.0.0.1)
#   KAFKA_HEAP_OPTS          default "-Xms128m -Xmx512m"
#   KAFKA_START_TIMEOUT      seconds to wait for readiness, default 120
#   RUN_DIR                  default <repo>/.run ; broker files go to $RUN_DIR/kafka
#   KAFKA_CLUSTER_PORTS      cluster brokers, default "39092 39093 39094" (nodes 1, 2, 3)
#   KAFKA_CLUSTER_CONTROLLER_PORTS  cluster controllers, default "39192 39193 39194"
#   KAFKA_CLUSTER_HEAP_OPTS  per node, default "-Xms96m -Xmx384m"
#                            (cluster files: $RUN_DIR/kafka-cluster/node-N/, cluster.id)
#   CAREPATH_CACHE           default ~/.cache/carepath (jar cache)
#   PYTHON                   interpreter used for the readiness check (needs aiokafka); default
#                            <repo>/.venv/bin/python if present, else python3
#   JAVA_HOME                java to use (default: java on PATH; needs 17+)
#
# Opt-in TLS + SASL/SCRAM (the variables Carepath's clients read, plus the broker's own):
#   KAFKA_SECURITY_PROTOCOL  SASL_SSL: the client listener on KAFKA_PORT speaks TLS and takes
#                            SASL SCRAM-SHA-512 logins only (no plaintext listener); the
#                            broker talks to itself over it as user `admin`. The KRaft
#                            controller listener stays plaintext, on 127.0.0.1 only.
#   KAFKA_SSL_CAFILE         PEM CA certificate(s) the broker trusts (truststore)
#   KAFKA_BROKER_KEYSTORE_PEM  PEM file: the broker's PKCS#8 private key and certificate chain
#                            (its names must include 127.0.0.1; Kafka reads PEM keystores)
#   KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD  the client user, created (SCRAM-SHA-512) when
#                            storage is first formatted
#   KAFKA_BROKER_SASL_PASSWORD  the inter-broker `admin` user's password (default: generated
#                            into $RUN_DIR/kafka/admin.password, mode 0600)
#   Users added later: kafka-configs --alter --add-config 'SCRAM-SHA-512=[password=...]'.
#
# Files: $RUN_DIR/kafka/{kafka.pid, broker.log, broker.log.1, format.log, server.properties,
#        cluster.id, data/}
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
RUN_DIR="${RUN_DIR:-$REPO_ROOT/.run}"
KAFKA_VERSION="${KAFKA_VERSION:-4.4.0}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms128m -Xmx512m}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-120}"
CACHE_DIR="${CAREPATH_CACHE:-$HOME/.cache/carepath}/kafka/$KAFKA_VERSION"
LIBS_DIR="$CACHE_DIR/libs"
FETCH_MARKER="$CACHE_DIR/.fetch-complete"

K_DIR="$RUN_DIR/kafka"
DATA_DIR="$K_DIR/data"
PID_FILE="$K_DIR/kafka.pid"
LOG_FILE="$K_DIR/broker.log"
FORMAT_LOG="$K_DIR/format.log"
CONF_FILE="$K_DIR/server.properties"
CLUSTER_ID_FILE="$K_DIR/cluster.id"
PORTS_FILE="$K_DIR/formatted-ports"
BOOTSTRAP="127.0.0.1:$KAFKA_PORT"
SECURITY="${KAFKA_SECURITY_PROTOCOL:-PLAINTEXT}"
SECURITY_FILE="$K_DIR/formatted-security"
ADMIN_PASSWORD_FILE="$K_DIR/admin.password"

if [[ -n "${JAVA_HOME:-}" ]]; then JAVA="$JAVA_HOME/bin/java"; else JAVA="java"; fi
# Marks our JVM so stop/status find exactly our broker (and never another checkout's).
MARKER="-Dcarepath.kafka.dir=$K_DIR"
JVM_OPTS=(-server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
  -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 -Djava.awt.headless=true
  "-Dlog4j2.configurationFile=$SCRIPT_DIR/log4j2.properties" "-Dkafka.logs.dir=$K_DIR")

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

pick_python() {
  if [[ -n "${PYTHON:-}" ]]; then echo "$PYTHON"
  elif [[ -x "$REPO_ROOT/.venv/bin/python" ]]; then echo "$REPO_ROOT/.venv/bin/python"
  else echo python3; fi
}

# True if something accepts TCP connections on 127.0.0.1:$1.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Pid from the pid file if that process is alive and is our broker, else empty.
our_pid() {
  local pid
  [[ -f "$PID_FILE" ]] || return 0
  pid="$(cat "$PID_FILE" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 0
  if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$MARKER "; then
    echo "$pid"
  fi
}

# Pids of any JVM carrying our marker (e.g. orphaned after the pid file was deleted).
marked_pids() { pgrep -f -- "$MARKER -cp " || true; }

with_lock() { # with_lock LOCKFILE cmd...: serialize concurrent fetch/start callers
  local lockfile="$1"; shift
  if command -v flock >/dev/null 2>&1; then
    mkdir -p "$(dirname "$lockfile")"
    (
      flock -w 600 9 || die "timed out waiting for lock $lockfile"
      "$@"
    ) 9>"$lockfile"
  else
    "$@"
  fi
}

check_java() {
  command -v "$JAVA" >/dev/null 2>&1 || die "java not found (install a JDK 17+ or set JAVA_HOME)"
  local v
  v="$("$JAVA" -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ {print $2}')"
  if ! [[ "${v%%.*}" =~ ^[0-9]+$ ]] || (( ${v%%.*} < 17 )); then
    die "Kafka 4.x needs Java 17+, found '$v' ($JAVA)"
  fi
}

pom_stamp() { echo "$KAFKA_VERSION $(sha256sum "$SCRIPT_DIR/pom.xml" | cut -d' ' -f1)"; }

fetch_locked() {
  if [[ -f "$FETCH_MARKER" && "$(cat "$FETCH_MARKER")" == "$(pom_stamp)" && -d "$LIBS_DIR" ]]; then
    return 0
  fi
  command -v mvn >/dev/null 2>&1 || die "mvn not found (apt-get install maven)"
  local tmp="$CACHE_DIR/libs.tmp.$$" t0
  t0="$(now)"
  rm -rf "$tmp"; mkdir -p "$CACHE_DIR"
  log "fetching Kafka $KAFKA_VERSION jars from Maven Central into $LIBS_DIR ..."
  if ! mvn -q -B -Dstyle.color=never -f "$SCRIPT_DIR/pom.xml" dependency:copy-dependencies \
      "-Dkafka.version=$KAFKA_VERSION" "-Dkafka.libs.dir=$tmp" >"$CACHE_DIR/fetch.log" 2>&1; then
    tail -n 50 "$CACHE_DIR/fetch.log" >&2 || true
    rm -rf "$tmp"
    die "mvn dependency:copy-dependencies failed (log: $CACHE_DIR/fetch.log)"
  fi
  [[ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ]] || { rm -rf "$tmp"; die "kafka_2.13-$KAFKA_VERSION.jar missing after fetch"; }
  compgen -G "$tmp/log4j-slf4j*-impl-*.jar" >/dev/null || { rm -rf "$tmp"; die "no SLF4J->Log4j2 binding in fetched jars"; }
  rm -rf "$LIBS_DIR"; mv "$tmp" "$LIBS_DIR"
  pom_stamp >"$FETCH_MARKER"
  log "fetched $(find "$LIBS_DIR" -name '*.jar' | wc -l) jars ($(du -sh "$LIBS_DIR" | cut -f1)) in $(elapsed "$t0")s"
}
cmd_fetch() { with_lock "$CACHE_DIR.lock" fetch_locked; }

admin_password() {
  if [[ -n "${KAFKA_BROKER_SASL_PASSWORD:-}" ]]; then echo "$KAFKA_BROKER_SASL_PASSWORD"; return; fi
  if [[ ! -s "$ADMIN_PASSWORD_FILE" ]]; then
    mkdir -p "$K_DIR"
    (umask 077 && head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$ADMIN_PASSWORD_FILE")
  fi
  cat "$ADMIN_PASSWORD_FILE"
}

check_security() {
  case "$SECURITY" in
    PLAINTEXT) return 0 ;;
    SASL_SSL) ;;
    *) die "KAFKA_SECURITY_PROTOCOL=$SECURITY: this script runs PLAINTEXT or SASL_SSL" ;;
  esac
  [[ -r "${KAFKA_SSL_CAFILE:-}" ]] || die "SASL_SSL needs KAFKA_SSL_CAFILE (a readable PEM CA file)"
  [[ -r "${KAFKA_BROKER_KEYSTORE_PEM:-}" ]] || die "SASL_SSL needs KAFKA_BROKER_KEYSTORE_PEM (PEM key + certificate)"
  [[ -n "${KAFKA_SASL_USERNAME:-}" && -n "${KAFKA_SASL_PASSWORD:-}" ]] || die "SASL_SSL needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
  [[ "$KAFKA_SASL_USERNAME" != admin ]] || die "KAFKA_SASL_USERNAME=admin is the broker's own user; pick another"
}

# The TLS + SCRAM listener instead of the template's PLAINTEXT one.
secure_listeners() {
  local admin
  admin="$(admin_password)"
  grep -v -E '^(listeners|advertised\.listeners|inter\.broker\.listener\.name|listener\.security\.protocol\.map)=' \
    "$CONF_FILE.tmp" >"$CONF_FILE.tmp2"
  cat >>"$CONF_FILE.tmp2" <<CONF

############################# TLS + SASL/SCRAM (KAFKA_SECURITY_PROTOCOL=SASL_SSL) #############################
listeners=SASL_SSL://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=SASL_SSL://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
inter.broker.listener.name=SASL_SSL
listener.security.protocol.map=CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$admin";
ssl.keystore.type=PEM
ssl.keystore.location=$KAFKA_BROKER_KEYSTORE_PEM
ssl.truststore.type=PEM
ssl.truststore.location=$KAFKA_SSL_CAFILE
ssl.enabled.protocols=TLSv1.3,TLSv1.2
ssl.endpoint.identification.algorithm=https
CONF
  mv "$CONF_FILE.tmp2" "$CONF_FILE.tmp"
}

render_config() {
  mkdir -p "$K_DIR"
  (umask 077 && sed -e "s|@KAFKA_PORT@|$KAFKA_PORT|g" \
      -e "s|@KAFKA_CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
      -e "s|@DATA_DIR@|$DATA_DIR|g" \
      "$SCRIPT_DIR/server.properties.template" >"$CONF_FILE.tmp")
  [[ "$SECURITY" == PLAINTEXT ]] || secure_listeners
  mv "$CONF_FILE.tmp" "$CONF_FILE"
}

format_storage() {
  if [[ -f "$DATA_DIR/meta.properties" ]]; then
    # The dynamic quorum stores the controller endpoint in the metadata log at format time.
    if [[ -f "$PORTS_FILE" && "$(cat "$PORTS_FILE")" != "$KAFKA_PORT $KAFKA_CONTROLLER_PORT" ]]; then
      die "storage in $DATA_DIR was formatted for ports '$(cat "$PORTS_FILE")' but now KAFKA_PORT/KAFKA_CONTROLLER_PORT are '$KAFKA_PORT $KAFKA_CONTROLLER_PORT'; use the old ports, another RUN_DIR, or '$0 reset'"
    fi
    if [[ "$SECURITY" != PLAINTEXT && "$(cat "$SECURITY_FILE" 2>/dev/null || echo PLAINTEXT)" != "$SECURITY" ]]; then
      die "storage in $DATA_DIR was formatted without SCRAM users; '$0 reset' (or another RUN_DIR) to format it for $SECURITY"
    fi
    return 0
  fi
  local cid t0
  t0="$(now)"
  mkdir -p "$DATA_DIR"
  if [[ ! -s "$CLUSTER_ID_FILE" ]]; then
    "$JAVA" -cp "$LIBS_DIR/*" "-Dlog4j2.configurationFile=$SCRIPT_DIR/log4j2.properties" \
      kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1 >"$CLUSTER_ID_FILE.tmp"
    mv "$CLUSTER_ID_FILE.tmp" "$CLUSTER_ID_FILE"
  fi
  cid="$(cat "$CLUSTER_ID_FILE")"
  [[ "$cid" =~ ^[A-Za-z0-9_-]{22}$ ]] || die "bad cluster id '$cid' in $CLUSTER_ID_FILE"
  local scram=()
  if [[ "$SECURITY" != PLAINTEXT ]]; then
    # SCRAM credentials go into the metadata log at format time (KIP-900).
    scram=(--add-scram "SCRAM-SHA-512=[name=admin,password=$(admin_password)]"
           --add-scram "SCRAM-SHA-512=[name=$KAFKA_SASL_USERNAME,password=$KAFKA_SASL_PASSWORD]")
  fi
  if ! "$JAVA" -Xmx256m -cp "$LIBS_DIR/*" "${JVM_OPTS[@]}" kafka.tools.StorageTool format \
      --standalone --cluster-id "$cid" --config "$CONF_FILE" "${scram[@]}" >"$FORMAT_LOG" 2>&1; then
    tail -n 50 "$FORMAT_LOG" >&2 || true
    die "StorageTool format failed (log: $FORMAT_LOG)"
  fi
  echo "$KAFKA_PORT $KAFKA_CONTROLLER_PORT" >"$PORTS_FILE"
  echo "$SECURITY" >"$SECURITY_FILE"
  log "formatted $DATA_DIR (cluster id $cid, standalone KRaft quorum) in $(elapsed "$t0")s"
}

# Waits until the broker answers a metadata request (aiokafka admin list_topics) or, without
# aiokafka, until it logged "Kafka Server started" and the port accepts connections.
wait_ready() {
  local pid="$1" deadline=$((SECONDS + KAFKA_START_TIMEOUT)) py
  py="$(pick_python)"
  while ! grep -q 'Kafka Server started' "$LOG_FILE" 2>/dev/null || ! port_open "$KAFKA_PORT"; do
    kill -0 "$pid" 2>/dev/null || { log "broker process $pid exited during startup"; return 1; }
    (( SECONDS < deadline )) || { log "timed out after ${KAFKA_START_TIMEOUT}s waiting for 'Kafka Server started'"; return 1; }
    sleep 0.2
  done
  if "$py" -c 'import aiokafka' >/dev/null 2>&1; then
    local left=$((deadline - SECONDS)); (( left > 5 )) || left=5
    "$py" - "$BOOTSTRAP" "$left" <<'PY' || { log "broker did not answer admin list_topics"; return 1; }
import asyncio, sys, time
from aiokafka.admin import AIOKafkaAdminClient

def client_options() -> dict:
    # TLS/SASL from the environment the services read too (KAFKA_SECURITY_PROTOCOL, ...).
    try:
        from carepath_runtime.settings import Settings
        from carepath_runtime.transport_security import kafka_client_options
        return kafka_client_options(Settings())
    except ImportError:
        return {}


async def main(bootstrap: str, budget: float) -> None:
    deadline = time.monotonic() + budget
    options = client_options()
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000,
                                    **options)
        try:
            await admin.start()
            await admin.list_topics()
            return
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready yet"
            if time.monotonic() > deadline:
                raise SystemExit(f"not ready: {exc!r}")
            await asyncio.sleep(0.3)
        finally:
            await admin.close()

asyncio.run(main(sys.argv[1], float(sys.argv[2])))
PY
  else
    log "($py cannot import aiokafka: readiness = log line + TCP port only)"
  fi
}

start_locked() {
  local pid t0
  pid="$(our_pid)"
  if [[ -n "$pid" ]]; then
    if port_open "$KAFKA_PORT"; then
      log "already running (pid $pid) on $BOOTSTRAP"
      echo "$BOOTSTRAP"
      return 0
    fi
    log "pid $pid is alive but $BOOTSTRAP is not answering yet; waiting"
    wait_ready "$pid" || { tail -n 50 "$LOG_FILE" >&2 || true; die "broker (pid $pid) not ready; try '$0 restart'"; }
    echo "$BOOTSTRAP"; return 0
  fi
  rm -f "$PID_FILE"
  if port_open "$KAFKA_PORT"; then
    die "127.0.0.1:$KAFKA_PORT is in use by a process that is not our broker (set KAFKA_PORT, or KAFKA_BOOTSTRAP_SERVERS to use it)"
  fi
  if port_open "$KAFKA_CONTROLLER_PORT"; then
    die "127.0.0.1:$KAFKA_CONTROLLER_PORT (controller) is in use (set KAFKA_CONTROLLER_PORT)"
  fi
  check_java
  check_security
  fetch_locked_wrapper
  render_config
  format_storage
  [[ -f "$LOG_FILE" ]] && mv -f "$LOG_FILE" "$LOG_FILE.1"
  t0="$(now)"
  # setsid: own session, so the broker survives the calling shell/CI step and its Ctrl-C.
  # In a non-interactive bash the background child is not a group leader, so setsid execs java
  # in place and $! is the JVM's pid.
  # shellcheck disable=SC2086 # KAFKA_HEAP_OPTS is a list of JVM flags
  nohup setsid "$JAVA" $KAFKA_HEAP_OPTS "${JVM_OPTS[@]}" "$MARKER" -cp "$LIBS_DIR/*" \
    kafka.Kafka "$CONF_FILE" >"$LOG_FILE" 2>&1 </dev/null 9>&- &   # 9>&-: don't inherit the start lock
  pid=$!
  echo "$pid" >"$PID_FILE"
  if ! wait_ready "$pid"; then
    log "---- last 50 lines of $LOG_FILE ----"
    tail -n 50 "$LOG_FILE" >&2 || true
    stop_pid "$pid" >/dev/null 2>&1 || true
    rm -f "$PID_FILE"
    die "Kafka did not come up"
  fi
  log "Kafka $KAFKA_VERSION ready on $BOOTSTRAP in $(elapsed "$t0")s (pid $pid, rss $(rss_of "$pid"), log $LOG_FILE)"
  log "use: export KAFKA_BOOTSTRAP_SERVERS=$BOOTSTRAP (security: $SECURITY)"
  echo "$BOOTSTRAP"
}
fetch_locked_wrapper() { with_lock "$CACHE_DIR.lock" fetch_locked; }

cmd_start() {
  if [[ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ]]; then
    log "KAFKA_BOOTSTRAP_SERVERS is set: using the external broker, not starting one"
    echo "$KAFKA_BOOTSTRAP_SERVERS"
    return 0
  fi
  mkdir -p "$K_DIR"
  with_lock "$K_DIR/.lock" start_locked
}

rss_of() { awk '/VmRSS/ {printf "%d MiB", $2/1024}' "/proc/$1/status" 2>/dev/null || echo "?"; }

stop_pid() { # SIGTERM, wait up to 30 s, SIGKILL
  local pid="$1" i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 300; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  log "pid $pid still alive after 30 s: SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  return 1
}

cmd_stop() {
  local pid t0 p others
  pid="$(our_pid)"
  t0="$(now)"
  if [[ -n "$pid" ]]; then
    stop_pid "$pid" || die "could not stop pid $pid"
    log "stopped broker pid $pid in $(elapsed "$t0")s"
  else
    log "not running (no live pid in $PID_FILE)"
  fi
  rm -f "$PID_FILE"
  for p in $(marked_pids); do   # orphans of ours (pid file lost)
    log "stopping orphaned broker pid $p"
    stop_pid "$p" || true
  done
  [[ -z "$(marked_pids)" ]] || die "a broker of ours is still running: $(marked_pids)"
  others="$(pgrep -f 'kafka\.Kafka' || true)"
  [[ -z "$others" ]] || log "note: other kafka.Kafka processes (not ours, left alone): $others"
}

cmd_status() {
  local pid
  pid="$(our_pid)"
  if [[ -z "$pid" ]]; then
    echo "kafka: stopped (run dir $K_DIR)"
    [[ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ]] && echo "kafka: KAFKA_BOOTSTRAP_SERVERS=$KAFKA_BOOTSTRAP_SERVERS (external)"
    return 3
  fi
  if port_open "$KAFKA_PORT"; then
    echo "kafka: running pid=$pid bootstrap=$BOOTSTRAP rss=$(rss_of "$pid") log=$LOG_FILE data=$DATA_DIR"
    return 0
  fi
  echo "kafka: pid $pid alive but $BOOTSTRAP not accepting connections (starting or wedged); log=$LOG_FILE"
  return 1
}

cmd_reset() {
  cmd_stop
  rm -rf "$DATA_DIR" "$CLUSTER_ID_FILE" "$PORTS_FILE" "$SECURITY_FILE"
  log "wiped $DATA_DIR and the cluster id; next start formats new storage"
}

# ---- 3-node KRaft cluster (loopback) -----------------------------------------------------------
# Three combined broker+controller nodes (node ids 1-3, a static quorum of the three
# controllers), from the same jars as the single broker. Internal topics and defaults: RF 3,
# min.insync.replicas 2; Carepath's own topics derive the same from the cluster size.
KAFKA_CLUSTER_PORTS="${KAFKA_CLUSTER_PORTS:-39092 39093 39094}"
KAFKA_CLUSTER_CONTROLLER_PORTS="${KAFKA_CLUSTER_CONTROLLER_PORTS:-39192 39193 39194}"
KAFKA_CLUSTER_HEAP_OPTS="${KAFKA_CLUSTER_HEAP_OPTS:--Xms96m -Xmx384m}"
read -r -a KC_PORTS <<<"$KAFKA_CLUSTER_PORTS"
read -r -a KC_CPORTS <<<"$KAFKA_CLUSTER_CONTROLLER_PORTS"
KC_DIR="$RUN_DIR/kafka-cluster"

kc_bootstrap() { local p out=(); for p in "${KC_PORTS[@]}"; do out+=("127.0.0.1:$p"); done; (IFS=,; echo "${out[*]}"); }
kc_voters() { local i out=(); for i in 0 1 2; do out+=("$((i + 1))@127.0.0.1:${KC_CPORTS[$i]}"); done; (IFS=,; echo "${out[*]}"); }
kc_marker() { echo "-Dcarepath.kafka.dir=$KC_DIR/node-$1"; }
kc_pid() { # pid of node $1 if alive and ours
  local f="$KC_DIR/node-$1/kafka.pid" pid
  [[ -f "$f" ]] || return 0
  pid="$(cat "$f" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 0
  if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$(kc_marker "$1") "; then
    echo "$pid"
  fi
}

kc_render() { # kc_render NODE_ID
  local id="$1" dir="$KC_DIR/node-$1" port="${KC_PORTS[$(($1 - 1))]}" cport="${KC_CPORTS[$(($1 - 1))]}"
  mkdir -p "$dir/data"
  cat >"$dir/server.properties" <<EOF
# Generated by deploy/kafka/kafka.sh cluster-start; edit the script, not this file.
process.roles=broker,controller
node.id=$id
controller.quorum.voters=$(kc_voters)
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
num.network.threads=2
num.io.threads=2
background.threads=2
num.recovery.threads.per.data.dir=1
num.replica.fetchers=1
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=8388608
log.dirs=$dir/data
auto.create.topics.enable=false
delete.topic.enable=true
num.partitions=6
default.replication.factor=3
min.insync.replicas=2
offsets.topic.replication.factor=3
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
transaction.state.log.num.partitions=3
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
share.coordinator.state.topic.num.partitions=3
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000
broker.session.timeout.ms=3000
broker.heartbeat.interval.ms=1000
# A killed leader's partitions move to an in-sync follower within a few seconds; the restarted
# node catches up and becomes preferred leader again.
replica.lag.time.max.ms=10000
unclean.leader.election.enable=false
# Slow, shared 2-core machines: give a starting broker time to find the controller quorum.
initial.broker.registration.timeout.ms=180000
EOF
}

kc_format() { # kc_format NODE_ID (first time only)
  local id="$1" dir="$KC_DIR/node-$1" cid
  [[ -f "$dir/data/meta.properties" ]] && return 0
  if [[ ! -s "$KC_DIR/cluster.id" ]]; then
    "$JAVA" -cp "$LIBS_DIR/*" "-Dlog4j2.configurationFile=$SCRIPT_DIR/log4j2.properties" \
      kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1 >"$KC_DIR/cluster.id"
  fi
  cid="$(cat "$KC_DIR/cluster.id")"
  "$JAVA" -Xmx256m -cp "$LIBS_DIR/*" "-Dlog4j2.configurationFile=$SCRIPT_DIR/log4j2.properties" \
    "-Dkafka.logs.dir=$dir" kafka.tools.StorageTool format --cluster-id "$cid" \
    --config "$dir/server.properties" >"$dir/format.log" 2>&1 \
    || { tail -n 30 "$dir/format.log" >&2; die "StorageTool format failed for node $id"; }
}

kc_start_node() { # kc_start_node NODE_ID: start it unless running
  local id="$1" dir="$KC_DIR/node-$1" pid
  pid="$(kc_pid "$id")"
  [[ -z "$pid" ]] || return 0
  port_open "${KC_PORTS[$((id - 1))]}" && die "127.0.0.1:${KC_PORTS[$((id - 1))]} is in use by a process that is not node $id"
  kc_render "$id"
  kc_format "$id"
  [[ -f "$dir/broker.log" ]] && mv -f "$dir/broker.log" "$dir/broker.log.1"
  # shellcheck disable=SC2086 # heap opts are a list of flags
  nohup setsid "$JAVA" $KAFKA_CLUSTER_HEAP_OPTS "${JVM_OPTS[@]/-Dkafka.logs.dir=$K_DIR/-Dkafka.logs.dir=$dir}" \
    "$(kc_marker "$id")" -cp "$LIBS_DIR/*" kafka.Kafka "$dir/server.properties" \
    >"$dir/broker.log" 2>&1 </dev/null 9>&- &
  echo "$!" >"$dir/kafka.pid"
}

kc_wait_ready() { # every node started and the cluster reports 3 brokers
  local deadline=$((SECONDS + KAFKA_START_TIMEOUT)) id py
  for id in 1 2 3; do
    while ! grep -q 'Kafka Server started' "$KC_DIR/node-$id/broker.log" 2>/dev/null; do
      # The launched process itself, not kc_pid: until it has exec'd java its command line
      # lacks the node's marker, and a loaded machine can take a while to get there.
      kill -0 "$(cat "$KC_DIR/node-$id/kafka.pid" 2>/dev/null || echo 0)" 2>/dev/null \
        || { tail -n 30 "$KC_DIR/node-$id/broker.log" >&2; die "node $id exited during startup"; }
      (( SECONDS < deadline )) || die "node $id not started after ${KAFKA_START_TIMEOUT}s"
      sleep 0.3
    done
  done
  py="$(pick_python)"
  "$py" - "$(kc_bootstrap)" "$((deadline - SECONDS > 10 ? deadline - SECONDS : 10))" <<'PY' || die "cluster did not report 3 brokers"
import asyncio, sys, time
from aiokafka.admin import AIOKafkaAdminClient

async def main(bootstrap: str, budget: float) -> None:
    deadline = time.monotonic() + budget
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
        try:
            await admin.start()
            if len((await admin.describe_cluster())["brokers"]) >= 3:
                return
        except Exception as exc:  # noqa: BLE001 - not ready yet
            if time.monotonic() > deadline:
                raise SystemExit(f"not ready: {exc!r}")
        finally:
            await admin.close()
        if time.monotonic() > deadline:
            raise SystemExit("fewer than 3 brokers registered")
        await asyncio.sleep(0.5)

asyncio.run(main(sys.argv[1], float(sys.argv[2])))
PY
}

cmd_cluster_start() {
  local t0 id
  (( ${#KC_PORTS[@]} == 3 && ${#KC_CPORTS[@]} == 3 )) || die "KAFKA_CLUSTER_PORTS and KAFKA_CLUSTER_CONTROLLER_PORTS need 3 ports each"
  check_java
  fetch_locked_wrapper
  mkdir -p "$KC_DIR"
  t0="$(now)"
  # Format every node first (in parallel: one JVM each), then start them together, so no
  # controller waits alone for a quorum while the next node is still being formatted.
  if [[ ! -s "$KC_DIR/cluster.id" ]]; then
    "$JAVA" -cp "$LIBS_DIR/*" "-Dlog4j2.configurationFile=$SCRIPT_DIR/log4j2.properties" \
      kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1 >"$KC_DIR/cluster.id"
  fi
  for id in 1 2 3; do
    if [[ -z "$(kc_pid "$id")" ]]; then kc_render "$id"; kc_format "$id" & fi
  done
  wait
  for id in 1 2 3; do kc_start_node "$id"; done
  kc_wait_ready
  log "3-node KRaft cluster ready on $(kc_bootstrap) in $(elapsed "$t0")s"
  log "use: export KAFKA_BOOTSTRAP_SERVERS=$(kc_bootstrap)"
  kc_bootstrap
}

cmd_cluster_stop() {
  local id pid
  for id in 1 2 3; do
    pid="$(kc_pid "$id")"
    [[ -n "$pid" ]] || continue
    stop_pid "$pid" || true
    log "stopped cluster node $id (pid $pid)"
  done
  rm -f "$KC_DIR"/node-*/kafka.pid
}

cmd_cluster_status() {
  local id up=0
  for id in 1 2 3; do
    if [[ -n "$(kc_pid "$id")" ]] && port_open "${KC_PORTS[$((id - 1))]}"; then up=$((up + 1)); fi
  done
  echo "kafka-cluster: $up/3 nodes up, bootstrap $(kc_bootstrap)"
  (( up == 3 )) && return 0
  (( up == 0 )) && return 3
  return 1
}

case "${1:-}" in
  cluster-start) cmd_cluster_start; exit 0 ;;
  cluster-stop) cmd_cluster_stop; exit 0 ;;
  cluster-status) rc=0; cmd_cluster_status || rc=$?; exit "$rc" ;;
  cluster-reset) cmd_cluster_stop; rm -rf "$KC_DIR"; log "wiped $KC_DIR"; exit 0 ;;
  cluster-start-node) mkdir -p "$KC_DIR"; check_java; kc_start_node "${2:?node id 1-3}"; kc_wait_ready; exit 0 ;;
esac

case "${1:-}" in
  fetch) mkdir -p "$CACHE_DIR"; cmd_fetch ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  restart) cmd_stop; cmd_start ;;
  status) cmd_status ;;
  reset) cmd_reset ;;
  logs) exec tail -n 100 -F "$LOG_FILE" ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
