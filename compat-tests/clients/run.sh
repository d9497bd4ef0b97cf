#!/usr/bin/env bash
# Real-client compatibility run: starts a gregor broker (or uses $GREGOR_BOOTSTRAP), runs every
# scenario in scenarios/ with a timeout, prints a client x scenario table, writes RESULTS.md and
# ends with "clients: N passed, M failed". Exit status is non-zero if any scenario failed.
#
#   compat-tests/clients/run.sh                 # everything
#   compat-tests/clients/run.sh kcat            # only scenarios whose "client/scenario" contains "kcat"
#   GREGOR_BOOTSTRAP=127.0.0.1:9092 compat-tests/clients/run.sh   # against a running broker
#
# Environment: GREGOR_BIN (default <repo>/target/release/gregor), GREGOR_BOOTSTRAP,
# GREGOR_CACHE (venv location), SCENARIO_TIMEOUT (seconds per scenario, default 180),
# BROKER_START_TIMEOUT (seconds, default 30), RESULTS_FILE (default ./RESULTS.md).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CACHE_DIR="${GREGOR_CACHE:-$HOME/.cache/gregor}"
PY="$CACHE_DIR/venv/bin/python"
GREGOR_BIN="${GREGOR_BIN:-$REPO/target/release/gregor}"
SCENARIO_TIMEOUT="${SCENARIO_TIMEOUT:-180}"
BROKER_START_TIMEOUT="${BROKER_START_TIMEOUT:-30}"
RESULTS_FILE="${RESULTS_FILE:-$HERE/RESULTS.md}"
FILTER="${1:-}"

# client id | scenario (column) | script in scenarios/ [variant flags]
SCENARIOS=(
  "kcat|metadata|kcat_metadata.py"
  "kcat|produce-consume|kcat_produce_consume.py"
  "confluent-kafka|produce-consume|ck_produce_consume.py"
  "confluent-kafka|admin|ck_admin.py"
  "confluent-kafka|list-offsets|ck_list_offsets.py"
  "confluent-kafka|idempotent-produce|ck_produce_consume.py --idempotent"
  "kafka-python|admin|kp_admin.py"
  "kafka-python|produce-consume|kp_produce_consume.py"
  "kafka-python|idempotent-produce|kp_produce_consume.py --default-config"
  "aiokafka|produce-consume|aiokafka_produce_consume.py"
)
CLIENTS=(kcat confluent-kafka kafka-python aiokafka)
COLUMNS=(metadata produce-consume idempotent-produce admin list-offsets)

"$HERE/install.sh"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/gregor-clients.XXXXXX")"
BROKER_LOG="$WORK/broker.log"
BROKER_PID=""
KEEP_WORK=0

stop_broker() {
  [ -n "$BROKER_PID" ] || return 0
  if kill -0 "$BROKER_PID" 2>/dev/null; then
    kill -TERM "$BROKER_PID" 2>/dev/null || true
    local end=$((SECONDS + 10))
    while kill -0 "$BROKER_PID" 2>/dev/null && [ "$SECONDS" -lt "$end" ]; do
      sleep 0.1
    done
    if kill -0 "$BROKER_PID" 2>/dev/null; then
      echo "broker did not stop within 10 s of SIGTERM; sending SIGKILL" >&2
      kill -KILL "$BROKER_PID" 2>/dev/null || true
    fi
  fi
  wait "$BROKER_PID" 2>/dev/null || true
  BROKER_PID=""
}

cleanup() {
  stop_broker
  [ "$KEEP_WORK" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

broker_log_tail() {
  if [ -s "$BROKER_LOG" ]; then
    echo "---- last 60 lines of broker log ($BROKER_LOG) ----"
    tail -n 60 "$BROKER_LOG"
    echo "---- end of broker log ----"
  fi
}

port_open() {
  # bash's /dev/tcp: connect and close at once, no extra tool needed.
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

broker_alive() {
  [ -z "$BROKER_PID" ] || kill -0 "$BROKER_PID" 2>/dev/null
}

BROKER_ERROR=""
if [ -n "${GREGOR_BOOTSTRAP:-}" ]; then
  BOOTSTRAP="$GREGOR_BOOTSTRAP"
  BROKER_DESC="external broker at $BOOTSTRAP"
  if ! port_open "${BOOTSTRAP%:*}" "${BOOTSTRAP##*:}"; then
    BROKER_ERROR="nothing listens on GREGOR_BOOTSTRAP=$BOOTSTRAP"
  fi
else
  PORT="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  BOOTSTRAP="127.0.0.1:$PORT"
  DATADIR="$WORK/data"
  mkdir -p "$DATADIR"
  BROKER_DESC="$GREGOR_BIN ($(git -C "$REPO" describe --always --dirty 2>/dev/null || echo 'no git revision'))"
  if [ ! -x "$GREGOR_BIN" ]; then
    BROKER_ERROR="broker binary $GREGOR_BIN not found or not executable (build it with cargo build --release)"
  else
    echo "starting $GREGOR_BIN --listen $BOOTSTRAP --data-dir $DATADIR (log: $BROKER_LOG)"
    "$GREGOR_BIN" --listen "$BOOTSTRAP" --data-dir "$DATADIR" >"$BROKER_LOG" 2>&1 &
    BROKER_PID=$!
    deadline=$((SECONDS + BROKER_START_TIMEOUT))
    until port_open 127.0.0.1 "$PORT"; do
      if ! kill -0 "$BROKER_PID" 2>/dev/null; then
        wait "$BROKER_PID" && rc=0 || rc=$?
        BROKER_PID=""
        BROKER_ERROR="broker exited with status $rc before listening on $BOOTSTRAP"
        break
      fi
      if [ "$SECONDS" -ge "$deadline" ]; then
        BROKER_ERROR="broker did not listen on $BOOTSTRAP within ${BROKER_START_TIMEOUT}s"
        break
      fi
      sleep 0.1
    done
  fi
fi

client_version() {
  case "$1" in
    kcat) kcat -V 2>&1 | sed -n 's/^Version \([^ ]*\) .*librdkafka \([^ ]*\) .*/kcat \1 (librdkafka \2)/p' | head -n1 ;;
    confluent-kafka) "$PY" -c 'import confluent_kafka as c; v = c.version(); v = v[0] if isinstance(v, tuple) else v; print(f"confluent-kafka {v} (librdkafka {c.libversion()[0]})")' ;;
    kafka-python) "$PY" -c 'import kafka; print(f"kafka-python {kafka.__version__}")' ;;
    aiokafka) "$PY" -c 'import aiokafka; print(f"aiokafka {aiokafka.__version__}")' ;;
  esac
}

declare -A RESULT DETAIL VERSION
for client in "${CLIENTS[@]}"; do
  VERSION[$client]="$(client_version "$client" || true)"
  [ -n "${VERSION[$client]}" ] || VERSION[$client]="$client (version unknown)"
done

passed=0
failed=0
for entry in "${SCENARIOS[@]}"; do
  IFS='|' read -r client scenario script <<<"$entry"
  id="$client/$scenario"
  if [ -n "$FILTER" ] && [[ "$id" != *"$FILTER"* ]]; then
    continue
  fi
  out="$WORK/${client}-${scenario}.log"
  if [ -n "$BROKER_ERROR" ]; then
    RESULT[$id]="FAIL"
    DETAIL[$id]="not run: $BROKER_ERROR"
    failed=$((failed + 1))
    continue
  fi
  printf '%-36s ' "$id"
  start=$SECONDS
  if BOOTSTRAP="$BOOTSTRAP" PYTHONUNBUFFERED=1 timeout --kill-after=10 "$SCENARIO_TIMEOUT" \
       "$PY" "$HERE/scenarios/"$script >"$out" 2>&1; then   # unquoted: "script --flag"
    rc=0
  else
    rc=$?
  fi
  took=$((SECONDS - start))
  if [ "$rc" = 0 ]; then
    RESULT[$id]="pass"
    passed=$((passed + 1))
    echo "pass (${took}s)"
  else
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
      RESULT[$id]="timeout"
      echo "TIMEOUT after ${SCENARIO_TIMEOUT}s" >>"$out"
    else
      RESULT[$id]="FAIL"
    fi
    failed=$((failed + 1))
    # librdkafka's own log lines (%N|...) can flood the output; keep the scenario's verdict.
    noise=$(grep -c '^%[0-7]|' "$out" || true)
    DETAIL[$id]="$(grep -v -e '^\s*$' -e '^%[0-7]|' "$out" | tail -n 25)"
    if [ "$noise" -gt 0 ]; then
      DETAIL[$id]+=$'\n'"($noise librdkafka log lines omitted; last: $(grep '^%[0-7]|' "$out" | tail -n 1 | cut -c1-200))"
    fi
    echo "${RESULT[$id]} (${took}s, exit $rc)"
    sed 's/^/    | /' <<<"${DETAIL[$id]}"
  fi
  if ! broker_alive; then
    wait "$BROKER_PID" && rc=0 || rc=$?
    BROKER_PID=""
    BROKER_ERROR="broker process exited (status $rc) during $id"
    echo "!! $BROKER_ERROR"
  fi
done

# ---- table (terminal and RESULTS.md) -------------------------------------------------------
cell() {
  local id="$1/$2"
  if [ -n "${RESULT[$id]+x}" ]; then echo "${RESULT[$id]}"; else echo "–"; fi
}
render_table() {
  local header="| client |" sep="|---|"
  for col in "${COLUMNS[@]}"; do header+=" $col |"; sep+="---|"; done
  echo "$header"
  echo "$sep"
  for client in "${CLIENTS[@]}"; do
    local row="| ${VERSION[$client]} |"
    for col in "${COLUMNS[@]}"; do row+=" $(cell "$client" "$col") |"; done
    echo "$row"
  done
}

TABLE="$(render_table)"
echo
echo "$TABLE"

{
  echo "# Real-client compatibility results"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- broker: $BROKER_DESC"
  [ -z "$FILTER" ] || echo "- partial run: only scenarios matching \`$FILTER\`"
  echo "- result: $passed passed, $failed failed (\`–\`: scenario not applicable to that client)"
  echo
  echo "$TABLE"
  if [ "$failed" -gt 0 ]; then
    echo
    echo "## Failures"
    for entry in "${SCENARIOS[@]}"; do
      IFS='|' read -r client scenario _ <<<"$entry"
      id="$client/$scenario"
      if [ -n "${RESULT[$id]+x}" ] && [ "${RESULT[$id]}" != pass ]; then
        echo
        echo "### $id (${VERSION[$client]})"
        echo
        echo '```'
        echo "${DETAIL[$id]:-}"
        echo '```'
      fi
    done
  fi
} >"$RESULTS_FILE"
echo
echo "wrote $RESULTS_FILE"

if [ "$failed" -gt 0 ]; then
  [ -z "$BROKER_ERROR" ] || echo "broker problem: $BROKER_ERROR"
  broker_log_tail
  KEEP_WORK=1
  echo "scenario and broker logs kept in $WORK"
fi
echo "clients: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
