#!/usr/bin/env bash
# Starts the four services and the console in the foreground of this shell; Ctrl-C (or SIGTERM) stops them
# cleanly. Kafka and Redis must be up (`make infra-up` does it).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="$ROOT/.venv/bin"
LOG_DIR="$ROOT/.run/logs"
SECRET_FILE="$ROOT/.run/webhook-secret"
mkdir -p "$LOG_DIR"

# A local webhook receiver, unless the caller configured a real one. Its signing secret is
# generated on the first start and kept in .run/webhook-secret (mode 0600): no secret in the
# repository signs anything. The receiver is on loopback, so it is allowlisted for the
# notifications service's SSRF guard (which refuses loopback and private addresses otherwise).
if [[ -z "${CAREPATH_WEBHOOK_URL:-}" ]]; then
  RECEIVER_PORT="${RECEIVER_PORT:-8099}"
  if [[ ! -s "$SECRET_FILE" ]]; then
    (umask 077 && "$BIN/python" -c \
      'from carepath_notifications.domain.signing import generate_secret; print(generate_secret())' \
      >"$SECRET_FILE.tmp" && mv "$SECRET_FILE.tmp" "$SECRET_FILE")
    echo "generated the local webhook receiver's secret in $SECRET_FILE"
  fi
  chmod 600 "$SECRET_FILE"
  CAREPATH_WEBHOOK_SECRET="$(cat "$SECRET_FILE")"
  export CAREPATH_WEBHOOK_SECRET
  export CAREPATH_WEBHOOK_URL="http://127.0.0.1:$RECEIVER_PORT/webhook"
  export CAREPATH_WEBHOOK_ALLOWLIST="127.0.0.1:$RECEIVER_PORT${CAREPATH_WEBHOOK_ALLOWLIST:+,$CAREPATH_WEBHOOK_ALLOWLIST}"
  "$BIN/python" -m carepath.webhook_receiver --port "$RECEIVER_PORT" \
    >"$LOG_DIR/webhook-receiver.log" 2>&1 &
  PIDS=($!)
else
  PIDS=()
fi

for svc in intake pathway referrals notifications console; do
  "$BIN/carepath-$svc" >"$LOG_DIR/$svc.log" 2>&1 &
  PIDS+=($!)
done

stop() {
  echo "stopping services..."
  kill -TERM "${PIDS[@]}" 2>/dev/null || true
  wait "${PIDS[@]}" 2>/dev/null || true
  echo "stopped."
}
trap stop INT TERM EXIT

for port in ${INTAKE_PORT:-8001} ${PATHWAY_PORT:-8002} ${REFERRALS_PORT:-8003} ${NOTIFICATIONS_PORT:-8004} ${CONSOLE_PORT:-8000}; do
  for _ in $(seq 1 60); do
    if curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1; then break; fi
    sleep 0.5
  done
done

cat <<MSG

Carepath is running.
  console        http://127.0.0.1:${CONSOLE_PORT:-8000}   the web console (sign in as a development identity)
  intake         http://127.0.0.1:${INTAKE_PORT:-8001}   POST /episodes, POST /episodes/{id}/outcomes
  pathway        http://127.0.0.1:${PATHWAY_PORT:-8002}   GET /health
  referrals      http://127.0.0.1:${REFERRALS_PORT:-8003}   GET /episodes/{id}/referrals, GET /episodes/{id}/careplan
  notifications  http://127.0.0.1:${NOTIFICATIONS_PORT:-8004}   GET /health
  webhooks       ${CAREPATH_WEBHOOK_URL}   (receiver log: .run/logs/webhook-receiver.log,
                 signing secret: .run/webhook-secret, allowlist: ${CAREPATH_WEBHOOK_ALLOWLIST:-none})
  Kafka          ${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:9092}    Redis ${REDIS_URL:-redis://127.0.0.1:6379/0}
  logs           .run/logs/

Try:
  curl -s -XPOST http://127.0.0.1:${INTAKE_PORT:-8001}/episodes -H 'content-type: application/json' \\
    -H 'Authorization: Bearer dev-ehr-token' \\
    -d '{"episode_id":"ep-demo-1","region":"lumbar","medial_branch_blocks":[{"relief_percent":80}],"imaging_done":["mri"]}'

Ctrl-C stops the services (Kafka and Redis keep running; \`make stop\` stops them).
MSG
wait
